"""bayes_mlr.frequentist.information: observed information, standard errors, criteria."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from scipy.stats import norm

from bayes_mlr.frequentist import information as inference
from bayes_mlr.frequentist.information import (
    SingularInformationWarning,
    covariance,
    information_criteria,
    n_parameters,
    observed_information,
    standard_errors,
)

VARIANCES = ("component", "shared", "fixed")

# --------------------------------------------------------------------------------------------
# Independent reference implementation (does not use the module's layout helpers)
# --------------------------------------------------------------------------------------------


def _pack(intercept, coef, sigma, weights, *, variance, fit_intercept):
    """theta = [per component: (intercept_j), coef_j] + log sigma + logits (last as reference)."""
    parts = []
    for j in range(len(weights)):
        if fit_intercept:
            parts.append([intercept[j]])
        parts.append(coef[j])
    if variance == "component":
        parts.append(np.log(sigma))
    elif variance == "shared":
        parts.append([np.log(sigma[0])])
    parts.append(np.log(weights[:-1]) - np.log(weights[-1]))
    return np.concatenate([np.asarray(x, dtype=float) for x in parts])


def _unpack(theta, *, n_components, n_features, variance, fit_intercept, fixed_sigma, offset):
    k, p = n_components, n_features
    d = p + int(fit_intercept)
    beta = theta[: k * d].reshape(k, d)
    intercept = beta[:, 0] if fit_intercept else offset
    coef = beta[:, 1:] if fit_intercept else beta
    pos = k * d
    if variance == "component":
        sigma = np.exp(theta[pos : pos + k])
        pos += k
    elif variance == "shared":
        sigma = np.full(k, np.exp(theta[pos]))
        pos += 1
    else:
        sigma = fixed_sigma
    weights = softmax(np.append(theta[pos:], 0.0))
    return weights, intercept, coef, sigma


def _loglik(X, y, weights, intercept, coef, sigma, sample_weight=None):
    """sum_i w_i log sum_j pi_j N(y_i | intercept_j + coef_j . x_i, sigma_j^2)."""
    mean = intercept + X @ coef.T
    per_row = logsumexp(np.log(weights) + norm.logpdf(y[:, None], loc=mean, scale=sigma), axis=1)
    return float(per_row.sum() if sample_weight is None else sample_weight @ per_row)


def _numerical_hessian(f, theta, step):
    """Central-difference Hessian, (f(++) - f(+-) - f(-+) + f(--)) / (4 h^2)."""
    size = theta.size
    shifts = np.eye(size) * step
    hess = np.empty((size, size))
    for a in range(size):
        for b in range(a, size):
            ea, eb = shifts[a], shifts[b]
            value = (
                f(theta + ea + eb) - f(theta + ea - eb) - f(theta - ea + eb) + f(theta - ea - eb)
            ) / (4.0 * step**2)
            hess[a, b] = hess[b, a] = value
    return hess


def _random_problem(rng, *, n, p, k, variance, fit_intercept):
    """Data simulated from one parameter point, returned with a *different* (non-optimal) one."""
    X = rng.normal(size=(n, p))
    true_coef = rng.normal(scale=2.0, size=(k, p))
    true_intercept = rng.normal(scale=2.0, size=k) if fit_intercept else np.zeros(k)
    labels = rng.integers(0, k, size=n)
    y = true_intercept[labels] + np.einsum("ij,ij->i", X, true_coef[labels])
    y = y + rng.normal(scale=0.8, size=n)
    # Evaluation point: perturbed away from the truth, so it is not a maximum of the likelihood.
    weights = rng.dirichlet(np.full(k, 4.0))
    intercept = true_intercept + rng.normal(scale=0.5, size=k) if fit_intercept else np.zeros(k)
    coef = true_coef + rng.normal(scale=0.5, size=(k, p))
    if variance == "shared":
        sigma = np.full(k, rng.uniform(0.7, 1.4))
    else:
        sigma = rng.uniform(0.7, 1.4, size=k)
    return X, y, weights, intercept, coef, sigma


def _separated_problem(rng, *, k, variance, fit_intercept, n=3000, p=2):
    """Well-separated components, evaluated at the truth with large n (information PD)."""
    X = rng.normal(size=(n, p))
    weights = rng.dirichlet(np.full(k, 10.0))
    intercept = 6.0 * np.arange(k) - 3.0 if fit_intercept else np.zeros(k)
    coef = rng.normal(size=(k, p)) + 4.0 * np.arange(k)[:, None]
    sigma = np.full(k, 0.9) if variance == "shared" else rng.uniform(0.6, 1.2, size=k)
    labels = rng.choice(k, size=n, p=weights)
    y = intercept[labels] + np.einsum("ij,ij->i", X, coef[labels])
    y = y + sigma[labels] * rng.normal(size=n)
    return X, y, weights, intercept, coef, sigma


def _ols(X, y, sample_weight=None, fit_intercept=True):
    """Weighted least squares MLE: beta, sigma_ML and ML covariance sigma^2 (Z'WZ)^-1."""
    Z = np.column_stack([np.ones(len(y)), X]) if fit_intercept else X
    w = np.ones(len(y)) if sample_weight is None else sample_weight
    gram = Z.T @ (Z * w[:, None])
    beta = np.linalg.solve(gram, Z.T @ (w * y))
    resid = y - Z @ beta
    sigma2 = (w @ resid**2) / w.sum()
    return beta, np.sqrt(sigma2), sigma2 * np.linalg.inv(gram)


# --------------------------------------------------------------------------------------------
# n_parameters and labels
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "p", "variance", "fit_intercept", "expected"),
    [
        (1, 3, "shared", True, 4 + 1 + 0),
        (1, 3, "fixed", False, 3),
        (2, 3, "component", True, 2 * 4 + 2 + 1),
        (2, 3, "shared", True, 2 * 4 + 1 + 1),
        (3, 2, "fixed", True, 3 * 3 + 0 + 2),
        (3, 2, "component", False, 3 * 2 + 3 + 2),
        (4, 0, "component", True, 4 + 4 + 3),
    ],
)
def test_n_parameters(k, p, variance, fit_intercept, expected):
    assert n_parameters(k, p, variance=variance, fit_intercept=fit_intercept) == expected


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 2, "shared", True), "n_components"),
        ((2, -1, "shared", True), "n_features"),
        ((2, 2, "diagonal", True), "variance"),
        ((2.0, 2, "shared", True), "n_components"),
        ((2, 2, "shared", 1), "fit_intercept"),
    ],
)
def test_n_parameters_rejects_bad_arguments(args, match):
    k, p, variance, fit_intercept = args
    with pytest.raises(ValueError, match=match):
        n_parameters(k, p, variance=variance, fit_intercept=fit_intercept)


def test_labels_and_shape():
    rng = np.random.default_rng(0)
    X, y, weights, intercept, coef, sigma = _random_problem(
        rng, n=30, p=2, k=2, variance="component", fit_intercept=True
    )
    info, labels = observed_information(
        X, y, weights, intercept, coef, sigma, variance="component", fit_intercept=True
    )
    assert labels == [
        "intercept[0]",
        "coef[0,0]",
        "coef[0,1]",
        "intercept[1]",
        "coef[1,0]",
        "coef[1,1]",
        "log_sigma[0]",
        "log_sigma[1]",
        "logit[0]",
    ]
    assert info.shape == (9, 9)
    np.testing.assert_array_equal(info, info.T)

    _, labels = observed_information(
        X, y, weights, np.zeros(2), coef, np.full(2, 1.0), variance="shared", fit_intercept=False
    )
    assert labels == ["coef[0,0]", "coef[0,1]", "coef[1,0]", "coef[1,1]", "log_sigma", "logit[0]"]


# --------------------------------------------------------------------------------------------
# Observed information against a numerical Hessian
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no_intercept"])
@pytest.mark.parametrize("variance", VARIANCES)
def test_information_matches_numerical_hessian(variance, fit_intercept, k, weighted):
    p, n = 2, 60
    for seed in range(3):
        rng = np.random.default_rng(1000 * seed + 10 * k + int(fit_intercept))
        X, y, weights, intercept, coef, sigma = _random_problem(
            rng, n=n, p=p, k=k, variance=variance, fit_intercept=fit_intercept
        )
        sample_weight = rng.uniform(0.0, 3.0, size=n) if weighted else None
        theta = _pack(
            intercept, coef, sigma, weights, variance=variance, fit_intercept=fit_intercept
        )

        def loglik(t, X=X, y=y, sigma=sigma, intercept=intercept, sample_weight=sample_weight):
            params = _unpack(
                t,
                n_components=k,
                n_features=p,
                variance=variance,
                fit_intercept=fit_intercept,
                fixed_sigma=sigma,
                offset=intercept,
            )
            return _loglik(X, y, *params, sample_weight=sample_weight)

        info, labels = observed_information(
            X,
            y,
            weights,
            intercept,
            coef,
            sigma,
            variance=variance,
            fit_intercept=fit_intercept,
            sample_weight=sample_weight,
        )
        expected_size = n_parameters(k, p, variance=variance, fit_intercept=fit_intercept)
        assert info.shape == (expected_size, expected_size) == (theta.size, theta.size)
        assert len(labels) == theta.size
        numeric = -_numerical_hessian(loglik, theta, step=1e-4)
        # Tolerance: with h = 1e-4 the O(h^2) truncation error is ~1e-8 relative and the
        # rounding error eps * |loglik| / h^2 ~ 1e-6 absolute against entries of order n = 60,
        # so both are far below 1e-5 of the largest entry; a wrong term (a missing factor 2, a
        # dropped cross-derivative) shows up at order 1e-1 or more.
        scale = np.abs(info).max()
        np.testing.assert_allclose(info, numeric, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("variance", VARIANCES)
def test_integer_sample_weight_equals_replication(variance):
    rng = np.random.default_rng(7)
    X, y, weights, intercept, coef, sigma = _random_problem(
        rng, n=80, p=3, k=3, variance=variance, fit_intercept=True
    )
    counts = rng.integers(0, 4, size=80)  # zeros drop rows
    kwargs = {"variance": variance, "fit_intercept": True}
    weighted, labels_w = observed_information(
        X, y, weights, intercept, coef, sigma, sample_weight=counts.astype(float), **kwargs
    )
    repeated, labels_r = observed_information(
        np.repeat(X, counts, axis=0),
        np.repeat(y, counts),
        weights,
        intercept,
        coef,
        sigma,
        **kwargs,
    )
    assert labels_w == labels_r
    np.testing.assert_allclose(weighted, repeated, rtol=1e-10, atol=1e-10 * np.abs(repeated).max())


@pytest.mark.parametrize("variance", VARIANCES)
def test_integer_sample_weight_equals_replication_for_standard_errors(variance):
    rng = np.random.default_rng(17)
    X, y, weights, intercept, coef, sigma = _separated_problem(
        rng, k=2, variance=variance, fit_intercept=True, n=400
    )
    counts = rng.integers(0, 4, size=400)
    kwargs = {"variance": variance, "fit_intercept": True}
    se_w = standard_errors(
        X, y, weights, intercept, coef, sigma, sample_weight=counts.astype(float), **kwargs
    )
    X_rep, y_rep = np.repeat(X, counts, axis=0), np.repeat(y, counts)
    se_r = standard_errors(X_rep, y_rep, weights, intercept, coef, sigma, **kwargs)
    assert set(se_w) == set(se_r)
    for key in se_r:
        np.testing.assert_allclose(se_w[key], se_r[key], rtol=1e-8)
        assert np.all(np.isfinite(se_w[key]))


def test_block_processing_gives_same_result(monkeypatch):
    rng = np.random.default_rng(3)
    X, y, weights, intercept, coef, sigma = _random_problem(
        rng, n=203, p=2, k=3, variance="component", fit_intercept=True
    )
    sample_weight = rng.uniform(0.5, 2.0, size=203)
    args = (X, y, weights, intercept, coef, sigma)
    kwargs = {"variance": "component", "fit_intercept": True, "sample_weight": sample_weight}
    whole, _ = observed_information(*args, **kwargs)
    monkeypatch.setattr(inference, "_BLOCK_ROWS", 7)  # 29 blocks, the last one short
    blocked, _ = observed_information(*args, **kwargs)
    np.testing.assert_allclose(blocked, whole, rtol=1e-12, atol=1e-12 * np.abs(whole).max())


def test_intercept_is_a_fixed_offset_without_fit_intercept():
    rng = np.random.default_rng(11)
    X, y, weights, _, coef, sigma = _random_problem(
        rng, n=50, p=2, k=2, variance="component", fit_intercept=False
    )
    offset = np.array([0.3, -1.2])
    kwargs = {"variance": "component", "fit_intercept": False}
    shifted, _ = observed_information(X, y, weights, offset, coef, sigma, **kwargs)
    # With fit_intercept=False a non-zero intercept shifts each component's mean but is not a
    # parameter: the information is still the numerical Hessian in (coef, log sigma, logits).
    theta = _pack(offset, coef, sigma, weights, **kwargs)

    def loglik(t):
        params = _unpack(
            t,
            n_components=2,
            n_features=2,
            fixed_sigma=sigma,
            offset=offset,
            **kwargs,
        )
        return _loglik(X, y, *params)

    numeric = -_numerical_hessian(loglik, theta, step=1e-4)
    scale = np.abs(shifted).max()
    np.testing.assert_allclose(shifted, numeric, rtol=1e-5, atol=1e-5 * scale)


# --------------------------------------------------------------------------------------------
# Standard errors and the delta method
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no_intercept"])
@pytest.mark.parametrize("variance", VARIANCES)
def test_standard_errors_delta_method(variance, fit_intercept):
    k, p = 3, 2
    rng = np.random.default_rng(21)
    X, y, weights, intercept, coef, sigma = _separated_problem(
        rng, k=k, variance=variance, fit_intercept=fit_intercept
    )
    kwargs = {"variance": variance, "fit_intercept": fit_intercept}
    info, labels = observed_information(X, y, weights, intercept, coef, sigma, **kwargs)
    assert np.linalg.eigvalsh(info).min() > 0  # precondition: a regular point
    cov_theta = np.linalg.inv(info)
    se_theta = np.sqrt(np.diag(cov_theta))

    se = standard_errors(X, y, weights, intercept, coef, sigma, **kwargs)
    assert set(se) == {"weights", "intercept", "coef", "sigma"}
    assert se["weights"].shape == (k,)
    assert se["intercept"].shape == (k,)
    assert se["coef"].shape == (k, p)
    assert se["sigma"].shape == (k,)

    # Regression coefficients: straight from the diagonal of the inverse.
    d = p + int(fit_intercept)
    beta_se = se_theta[: k * d].reshape(k, d)
    np.testing.assert_allclose(se["coef"], beta_se[:, int(fit_intercept) :], rtol=1e-8)
    if fit_intercept:
        np.testing.assert_allclose(se["intercept"], beta_se[:, 0], rtol=1e-8)
    else:
        np.testing.assert_array_equal(se["intercept"], np.zeros(k))

    # Weights: numerical Jacobian of softmax([eta, 0]) with respect to eta.
    logit_idx = [i for i, name in enumerate(labels) if name.startswith("logit")]
    eta = np.log(weights[:-1]) - np.log(weights[-1])
    h = 1e-6
    jac = np.column_stack(
        [
            (softmax(np.append(eta + h * e, 0.0)) - softmax(np.append(eta - h * e, 0.0))) / (2 * h)
            for e in np.eye(k - 1)
        ]
    )
    cov_eta = cov_theta[np.ix_(logit_idx, logit_idx)]
    expected_weights_se = np.sqrt(np.diag(jac @ cov_eta @ jac.T))
    np.testing.assert_allclose(se["weights"], expected_weights_se, rtol=1e-6)

    # Sigma: SE(sigma) = sigma * SE(log sigma).
    sigma_idx = [i for i, name in enumerate(labels) if name.startswith("log_sigma")]
    if variance == "component":
        np.testing.assert_allclose(se["sigma"], sigma * se_theta[sigma_idx], rtol=1e-8)
    elif variance == "shared":
        assert len(sigma_idx) == 1
        assert np.all(se["sigma"] == se["sigma"][0])
        np.testing.assert_allclose(se["sigma"][0], sigma[0] * se_theta[sigma_idx[0]], rtol=1e-8)
    else:
        np.testing.assert_array_equal(se["sigma"], np.zeros(k))
    for value in se.values():
        assert np.all(np.isfinite(value))


@pytest.mark.parametrize("variance", VARIANCES)
def test_covariance_consistent_with_standard_errors(variance):
    k = 2
    rng = np.random.default_rng(5)
    X, y, weights, intercept, coef, sigma = _separated_problem(
        rng, k=k, variance=variance, fit_intercept=True, n=1500
    )
    kwargs = {"variance": variance, "fit_intercept": True}
    cov, labels = covariance(X, y, weights, intercept, coef, sigma, **kwargs)
    se = standard_errors(X, y, weights, intercept, coef, sigma, **kwargs)
    sigma_labels = {"component": ["sigma[0]", "sigma[1]"], "shared": ["sigma"], "fixed": []}
    assert labels == [
        "intercept[0]",
        "coef[0,0]",
        "coef[0,1]",
        "intercept[1]",
        "coef[1,0]",
        "coef[1,1]",
        *sigma_labels[variance],
        "weights[0]",
        "weights[1]",
    ]
    np.testing.assert_allclose(cov, cov.T, rtol=0, atol=1e-15 * np.abs(cov).max())
    sd = dict(zip(labels, np.sqrt(np.diag(cov)), strict=True))
    for j in range(k):
        assert sd[f"intercept[{j}]"] == pytest.approx(se["intercept"][j], rel=1e-12)
        assert sd[f"coef[{j},1]"] == pytest.approx(se["coef"][j, 1], rel=1e-12)
        assert sd[f"weights[{j}]"] == pytest.approx(se["weights"][j], rel=1e-12)
    # The weights sum to one, so their variances are equal and perfectly anti-correlated (K=2).
    assert cov[-1, -2] == pytest.approx(-cov[-1, -1], rel=1e-10)
    assert se["weights"][0] == pytest.approx(se["weights"][1], rel=1e-10)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no_intercept"])
def test_single_component_matches_ols(fit_intercept, weighted):
    rng = np.random.default_rng(42)
    n, p = 150, 3
    X = rng.normal(size=(n, p)) * [1.0, 10.0, 0.1]  # different scales on purpose
    y = 1.5 + X @ np.array([0.5, -0.2, 3.0]) + rng.normal(scale=0.7, size=n)
    sample_weight = rng.uniform(0.2, 3.0, size=n) if weighted else None
    beta, sigma_ml, cov_ml = _ols(X, y, sample_weight, fit_intercept)
    intercept = np.array([beta[0]]) if fit_intercept else np.zeros(1)
    coef = beta[int(fit_intercept) :][None, :]
    for variance in ("shared", "component"):
        se = standard_errors(
            X,
            y,
            np.ones(1),
            intercept,
            coef,
            np.array([sigma_ml]),
            variance=variance,
            fit_intercept=fit_intercept,
            sample_weight=sample_weight,
        )
        ols_se = np.sqrt(np.diag(cov_ml))
        np.testing.assert_allclose(se["coef"][0], ols_se[int(fit_intercept) :], rtol=1e-9)
        if fit_intercept:
            assert se["intercept"][0] == pytest.approx(ols_se[0], rel=1e-9)
        n_eff = n if sample_weight is None else sample_weight.sum()
        # At the MLE the (beta, log sigma) cross-information vanishes and I(log sigma) = 2n.
        assert se["sigma"][0] == pytest.approx(sigma_ml / np.sqrt(2 * n_eff), rel=1e-9)
        np.testing.assert_array_equal(se["weights"], np.zeros(1))


@pytest.mark.slow
def test_single_component_interval_coverage():
    rng = np.random.default_rng(2024)
    n, n_rep = 200, 2000
    X = rng.normal(size=(n, 2))
    true_beta = np.array([1.0, -2.0, 0.5])
    true_sigma = 1.3
    hits = np.zeros(4)
    for _ in range(n_rep):
        y = true_beta[0] + X @ true_beta[1:] + true_sigma * rng.normal(size=n)
        beta, sigma_ml, _ = _ols(X, y)
        se = standard_errors(
            X,
            y,
            np.ones(1),
            beta[:1],
            beta[None, 1:],
            np.array([sigma_ml]),
            variance="shared",
            fit_intercept=True,
        )
        estimate = np.append(beta, sigma_ml)
        stderr = np.concatenate([se["intercept"], se["coef"][0], se["sigma"]])
        truth = np.append(true_beta, true_sigma)
        hits += np.abs(estimate - truth) <= 1.959964 * stderr
    coverage = hits / n_rep
    # Expected coverage is a little under 0.95 (ML variance estimate divides by n, normal
    # quantile, n = 200): about 0.947 for the coefficients and similar for sigma. With 2000
    # replicates the Monte Carlo standard deviation is about 0.005, so [0.93, 0.965] allows
    # over three standard deviations either side, while SEs off by 10% (coverage ~0.922 or
    # ~0.969) fall outside.
    assert np.all(coverage >= 0.93), coverage
    assert np.all(coverage <= 0.965), coverage


# --------------------------------------------------------------------------------------------
# Singular information
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variance", VARIANCES)
def test_duplicated_components_warn_and_give_nan(variance):
    rng = np.random.default_rng(8)
    n = 300
    X = rng.normal(size=(n, 2))
    y = 0.5 + X @ np.array([1.0, -1.0]) + rng.normal(size=n)
    beta, sigma_ml, _ = _ols(X, y)
    intercept = np.full(2, beta[0])
    coef = np.tile(beta[1:], (2, 1))
    sigma = np.full(2, sigma_ml)
    with pytest.warns(
        SingularInformationWarning, match="standard errors of .* are set to NaN"
    ) as record:
        se = standard_errors(
            X,
            y,
            np.array([0.4, 0.6]),
            intercept,
            coef,
            sigma,
            variance=variance,
            fit_intercept=True,
        )
    assert record[0].filename == __file__  # attributed to the caller, not to inference.py
    assert np.all(np.isnan(se["weights"]))
    assert np.all(np.isnan(se["coef"]))
    assert np.all(np.isnan(se["intercept"]))
    if variance == "fixed":
        np.testing.assert_array_equal(se["sigma"], np.zeros(2))


def test_collinear_features_give_nan_only_for_affected_parameters():
    rng = np.random.default_rng(9)
    n = 200
    x = rng.normal(size=n)
    X = np.column_stack([x, x])  # identical columns: only coef[0,0] + coef[0,1] is identified
    y = 2.0 + 1.5 * x + rng.normal(scale=0.5, size=n)
    beta, sigma_ml, cov_ml = _ols(x[:, None], y)
    with pytest.warns(SingularInformationWarning, match=r"coef\[0,0\], coef\[0,1\]"):
        se = standard_errors(
            X,
            y,
            np.ones(1),
            beta[:1],
            np.array([[beta[1] / 2, beta[1] / 2]]),
            np.array([sigma_ml]),
            variance="shared",
            fit_intercept=True,
        )
    assert np.all(np.isnan(se["coef"]))
    # The intercept and sigma are orthogonal to the null direction, so their SEs are those of
    # the model with the column once.
    assert se["intercept"][0] == pytest.approx(np.sqrt(cov_ml[0, 0]), rel=1e-7)
    assert se["sigma"][0] == pytest.approx(sigma_ml / np.sqrt(2 * n), rel=1e-7)


def test_empty_component_gives_nan_for_that_component_only():
    rng = np.random.default_rng(10)
    n = 250
    X = rng.normal(size=(n, 2))
    y = 1.0 + X @ np.array([1.0, 2.0]) + rng.normal(scale=0.8, size=n)
    beta, sigma_ml, _ = _ols(X, y)
    # Component 1 sits 1e3 away from every point: its responsibilities are exactly zero, so
    # the log-likelihood is log(0.7) + the single-regression one and does not depend on it.
    weights = np.array([0.7, 0.3])
    intercept = np.array([beta[0], 1e3])
    coef = np.vstack([beta[1:], beta[1:]])
    sigma = np.array([sigma_ml, 1.0])
    with pytest.warns(SingularInformationWarning, match=r"intercept\[1\], coef\[1,0\]"):
        se = standard_errors(
            X, y, weights, intercept, coef, sigma, variance="component", fit_intercept=True
        )
    single = standard_errors(
        X,
        y,
        np.ones(1),
        intercept[:1],
        coef[:1],
        sigma[:1],
        variance="component",
        fit_intercept=True,
    )
    assert np.isnan(se["intercept"][1]) and np.isnan(se["sigma"][1])
    assert np.all(np.isnan(se["coef"][1]))
    np.testing.assert_allclose(se["intercept"][0], single["intercept"][0], rtol=1e-8)
    np.testing.assert_allclose(se["coef"][0], single["coef"][0], rtol=1e-8)
    np.testing.assert_allclose(se["sigma"][0], single["sigma"][0], rtol=1e-8)
    # The logit is informed only through log(weights[0]): I(eta) = n pi0 pi1, and the delta
    # method gives SE(weights) = pi0 pi1 SE(eta) = sqrt(pi0 pi1 / n), the binomial value.
    np.testing.assert_allclose(se["weights"], np.sqrt(0.7 * 0.3 / n), rtol=1e-8)


def test_nonfinite_information_warns():
    X = np.array([[0.0], [1.0], [2.0]])
    y = np.array([0.0, 1.0, 1e200])  # squared residual overflows to inf
    with pytest.warns(SingularInformationWarning), np.errstate(over="ignore", invalid="ignore"):
        se = standard_errors(
            X,
            y,
            np.ones(1),
            np.zeros(1),
            np.ones((1, 1)),
            np.ones(1),
            variance="shared",
            fit_intercept=True,
        )
    assert np.isnan(se["coef"]).all()


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _valid_args():
    rng = np.random.default_rng(0)
    return _random_problem(rng, n=20, p=2, k=2, variance="component", fit_intercept=True)


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("X", np.zeros(20), "X must be 2-dimensional"),
        ("y", np.zeros(19), "y must have shape"),
        ("weights", np.array([0.5, 0.6]), "weights must sum to 1"),
        ("weights", np.array([1.0, 0.0]), "weights must be strictly positive"),
        ("intercept", np.zeros(3), "intercept must have shape"),
        ("coef", np.zeros((2, 3)), "coef must have shape"),
        ("sigma", np.array([1.0, -1.0]), "sigma must be strictly positive"),
        ("sigma", np.array([1.0, np.nan]), "sigma contains NaN"),
    ],
)
def test_observed_information_rejects_bad_arguments(name, value, match):
    X, y, weights, intercept, coef, sigma = _valid_args()
    args = {"X": X, "y": y, "weights": weights, "intercept": intercept, "coef": coef}
    args["sigma"] = sigma
    args[name] = value
    with pytest.raises(ValueError, match=match):
        observed_information(**args, variance="component", fit_intercept=True)


def test_rejects_bad_options():
    X, y, weights, intercept, coef, sigma = _valid_args()
    args = (X, y, weights, intercept, coef, sigma)
    with pytest.raises(ValueError, match="variance must be one of"):
        standard_errors(*args, variance="diagonal", fit_intercept=True)
    with pytest.raises(ValueError, match="equal entries for variance='shared'"):
        standard_errors(*args, variance="shared", fit_intercept=True)
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        covariance(*args, variance="component", fit_intercept=True, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        observed_information(
            *args, variance="component", fit_intercept=True, sample_weight=-np.ones(20)
        )


# --------------------------------------------------------------------------------------------
# Information criteria
# --------------------------------------------------------------------------------------------


def test_information_criteria_by_hand():
    resp = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])
    # ICL as flexmix and mclust (Biernacki et al. 2000): -2 Σ log γ at the MAP component
    map_penalty = -(np.log(1.0) + np.log(0.5) + np.log(0.8))
    out = information_criteria(-100.0, resp, n_params=5, n_obs=3)
    assert set(out) == {"bic", "aic", "icl"}
    assert out["bic"] == pytest.approx(200.0 + 5 * np.log(3.0), rel=1e-14)
    assert out["aic"] == pytest.approx(210.0, rel=1e-14)
    assert out["icl"] == pytest.approx(200.0 + 5 * np.log(3.0) + 2 * map_penalty, rel=1e-14)
    assert out["icl"] >= out["bic"]


def test_information_criteria_with_sample_weight():
    resp = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])
    sample_weight = np.array([1.0, 2.0, 3.0])
    map_penalty = -(2.0 * np.log(0.5) + 3.0 * np.log(0.8))
    out = information_criteria(-50.0, resp, 4, 3, sample_weight=sample_weight)
    assert out["bic"] == pytest.approx(100.0 + 4 * np.log(6.0), rel=1e-14)
    assert out["aic"] == pytest.approx(108.0, rel=1e-14)
    assert out["icl"] == pytest.approx(out["bic"] + 2 * map_penalty, rel=1e-14)
    # Integer weights equal replication of the rows.
    replicated = information_criteria(-50.0, np.repeat(resp, [1, 2, 3], axis=0), 4, 6)
    for key in out:
        assert out[key] == pytest.approx(replicated[key], rel=1e-14)


def test_information_criteria_hard_assignments_and_random():
    hard = np.eye(3)[[0, 1, 2, 2, 1]]  # exact zeros: 0 log 0 = 0, no warning
    out = information_criteria(-10.0, hard, 8, 5)
    assert out["icl"] == out["bic"]
    rng = np.random.default_rng(1)
    resp = rng.dirichlet(np.ones(3), size=40)
    out = information_criteria(-80.0, resp, 8, 40)
    assert out["icl"] > out["bic"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_obs": 4}, "resp must have n_obs=4 rows"),
        ({"n_params": -1}, "n_params"),
        ({"log_likelihood": np.nan}, "log_likelihood must be finite"),
        ({"resp": np.array([[1.5, -0.5], [0.5, 0.5], [0.5, 0.5]])}, r"resp must lie in \[0, 1\]"),
        ({"sample_weight": np.ones(2)}, "sample_weight must have shape"),
    ],
)
def test_information_criteria_rejects_bad_arguments(kwargs, match):
    args = {
        "log_likelihood": -1.0,
        "resp": np.full((3, 2), 0.5),
        "n_params": 3,
        "n_obs": 3,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        information_criteria(**args)


@pytest.mark.slow
def test_em_standard_errors_cover_the_truth_for_a_two_component_mixture():
    """Coverage by simulation through the whole EM fit (K=2, component variances): Wald
    intervals estimate ± 1.96 SE should contain the true value about 95% of the time."""
    from bayes_mlr import MixtureOfRegressions, simulate

    truth = {
        "weights": np.array([0.4, 0.6]),
        "intercept": np.array([-2.0, 2.0]),
        "coef": np.array([[1.5], [-1.0]]),
        "sigma": np.array([0.5, 0.7]),
    }
    n_rep, hits, total = 200, 0, 0
    for seed in range(n_rep):
        data = simulate(400, **truth, random_state=1000 + seed)
        model = MixtureOfRegressions(2, n_init=3, random_state=seed).fit(data.X, data.y)
        se = model.standard_errors_
        for name in ("weights", "intercept", "coef", "sigma"):
            est = getattr(model, f"{name}_")
            inside = np.abs(est - truth[name]) <= 1.96 * se[name]
            hits += int(inside.sum())
            total += inside.size
    coverage = hits / total
    # 200 fits x 8 parameters, correlated within a fit: the Monte Carlo sd of the pooled rate
    # is about 0.01; n=400 is asymptotic enough for the Wald intervals to be near nominal.
    assert 0.92 <= coverage <= 0.975, coverage
