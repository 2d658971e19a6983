"""bayes_mlr.bayes.gibbs and gibbs_sweep: the data-augmentation Gibbs sampler.

Four kinds of checks:

* the conditional draws, against independent computations: the statistics of a labelling, the
  coefficients' Gaussian conditional (to 1e-10), the label frequencies (the responsibilities)
  and the sigma step (it leaves its one-dimensional target invariant);
* the target: the log density and log-likelihood of every draw equal the PyMC model's
  (``build_model``), so both samplers target one posterior;
* the output: the DataTree of the NUTS path, reproducible draws whatever the cores or the
  Dask chunking, clear refusals;
* agreement with NUTS on several problems (slow): means within 0.15 posterior sd and sds within
  10%.
"""

from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import pytest
from scipy import stats

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.bayes import gibbs, gibbs_sweep
from bayes_mlr.bayes.diagnostics import compare_em_posterior, diagnose
from bayes_mlr.core.data import Scaler
from bayes_mlr.core.em import e_step
from tests import _bayes_helpers as h

#: Two lines that cross inside the data, noise large against their gap: the labels of many rows
#: are uncertain, so the Gibbs chain moves more slowly (slowest lag-1 autocorrelation about 0.5,
#: 0.28 bulk ESS per draw, against 0.2 and 0.6 on the separated problem) while the components
#: stay identified.
OVERLAPPING = {
    "weights": np.array([0.6, 0.4]),
    "intercept": np.array([-0.8, 0.8]),
    "coef": np.array([[1.0], [-0.6]]),
    "sigma": np.array([0.7, 0.6]),
}
#: Three components, two features (shared and fixed variance problems).
TRUTH_3 = {
    "weights": np.array([0.5, 0.3, 0.2]),
    "intercept": np.array([-3.0, 0.0, 3.0]),
    "coef": np.array([[2.0, -1.0], [-1.0, 0.5], [0.5, 2.0]]),
    "sigma": np.array([0.6, 0.6, 0.6]),
}


def _gibbs(model, draws=200, tune=50, chains=2, seed=1, **kwargs):
    return model.sample_posterior(
        draws, tune, chains, sampler="gibbs", random_seed=seed, progressbar=False, **kwargs
    )


@functools.cache
def _weighted_model():
    """Integer replication weights (0, 1, 2, 3), no intercept."""
    d = simulate(300, **{**h.TRUTH, "intercept": np.zeros(2)}, random_state=3)
    w = np.random.default_rng(4).integers(0, 4, size=300).astype(float)
    model = MixtureOfRegressions(2, fit_intercept=False, random_state=0)
    return model.fit(d.X, d.y, sample_weight=w)


@functools.cache
def _model(kind: str):
    """Fitted estimators of the problems below (cached: EM is the same every time)."""
    if kind == "separated":
        return h.fitted()
    if kind == "overlapping":
        d = simulate(400, **OVERLAPPING, random_state=5)
        return MixtureOfRegressions(2, random_state=0).fit(d.X, d.y)
    if kind in ("shared", "fixed"):
        d = simulate(400, **TRUTH_3, random_state=6)
        sigma = 0.6 if kind == "fixed" else None
        return MixtureOfRegressions(3, variance=kind, sigma=sigma, random_state=0).fit(d.X, d.y)
    if kind == "weighted":
        return _weighted_model()
    if kind == "one_component":
        d = h.data()
        return MixtureOfRegressions(1, random_state=0).fit(d.X, d.y)
    raise ValueError(kind)


# --------------------------------------------------------------------------------------------
# The conditional draws
# --------------------------------------------------------------------------------------------


def _augmented(model):
    X, y = np.asarray(model._fit_X), np.asarray(model._fit_y)
    scaler = Scaler.from_arrays(X, y, model._fit_sample_weight, model.fit_intercept)
    return X, y, scaler, scaler.augmented(X, y)


@pytest.mark.parametrize("kind", ["separated", "weighted", "shared"])  # intercept or not, K=2, 3
def test_internal_prior_is_the_original_prior(kind):
    """exp(log prior) of internal coefficients β equals the original normal density at
    θ = c + Aβ, up to the constant Jacobian: differences between points agree to 1e-10."""
    model = _model(kind)
    scaler = _augmented(model)[2]
    K, p = model.coef_.shape
    prior = gibbs._Data(model, None).prior
    internal = gibbs_sweep.internal_prior(prior, scaler, K, p, model.variance)
    A, c = gibbs_sweep.design_map(scaler, p)
    rng = np.random.default_rng(0)
    q = A.shape[0]
    beta = rng.normal(size=(2, K, q))
    theta = c + beta @ A.T
    mean = np.broadcast_to(prior["coef"]["mu"], (K, p))
    sd = np.broadcast_to(prior["coef"]["sigma"], (K, p))
    if model.fit_intercept:
        mean = np.column_stack([np.broadcast_to(prior["intercept"]["mu"], (K,)), mean])
        sd = np.column_stack([np.broadcast_to(prior["intercept"]["sigma"], (K,)), sd])
    original = stats.norm(mean, sd).logpdf(theta).sum(axis=(1, 2))
    quad = np.einsum("skq,kqr,skr->s", beta, internal.precision, beta)
    lin = np.einsum("skq,kq->s", beta, internal.linear)
    internal_logp = -0.5 * quad + lin  # up to a constant
    np.testing.assert_allclose(
        internal_logp[1] - internal_logp[0], original[1] - original[0], rtol=1e-10
    )
    np.testing.assert_allclose(
        internal.sigma_scale, np.broadcast_to(prior["sigma"]["sigma"], (K,)) / scaler.y_scale
    )


def test_sorted_grams_equal_each_components_own_gram():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(1000, 5))
    z = rng.integers(0, 3, size=1000).astype(np.int8)
    z[:7] = 3  # label K: left out (rows of weight 0 or > 1 take another path)
    gram, nk = np.zeros((3, 5, 5)), np.zeros(3)
    gibbs_sweep._sorted_grams(Z, z.copy(), 3, gram, nk)
    for k in range(3):
        rows = Z[z == k]
        np.testing.assert_allclose(gram[k], rows.T @ rows, rtol=1e-12, atol=1e-12)
        assert nk[k] == rows.shape[0]


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_coefficient_conditional_equals_the_direct_computation(fit_intercept):
    """Given labels and sigma, the conditional of each component's [intercept, coef] is the
    Bayesian linear regression of its rows: mean and covariance computed in original units from
    X1, y and the original priors agree with the sweep's (standardised scale, mapped back)."""
    d = simulate(200, **TRUTH_3, random_state=2)
    X, y = d.X * 30.0 + 100.0, d.y * 5.0 + 40.0  # far from standardised
    K, p = 3, 2
    scaler = Scaler.from_arrays(X, y, None, fit_intercept)
    Z = scaler.augmented(X, y)
    z = np.asarray(d.z, dtype=np.int8)
    gram, nk = np.zeros((K, Z.shape[1], Z.shape[1])), np.zeros(K)
    gibbs_sweep._sorted_grams(Z, z.copy(), K, gram, nk)
    from bayes_mlr.bayes.priors import default_priors, merge_priors

    prior = merge_priors(default_priors(X, y, K), {"coef": {"mu": [[0.5, -0.2]] * 3}})
    internal = gibbs_sweep.internal_prior(prior, scaler, K, p, "component")
    sigma_orig = np.array([3.0, 2.0, 4.0])
    mean_s, chol = gibbs_sweep.coefficient_conditional(gram, sigma_orig / scaler.y_scale, internal)
    cov_s = np.linalg.inv(chol @ np.swapaxes(chol, -1, -2))
    A, c = gibbs_sweep.design_map(scaler, p)
    for k in range(K):
        rows = z == k
        X1 = np.column_stack([np.ones(rows.sum()), X[rows]]) if fit_intercept else X[rows]
        mu0 = np.broadcast_to(prior["coef"]["mu"], (K, p))[k]
        sd0 = np.broadcast_to(prior["coef"]["sigma"], (p,))
        if fit_intercept:
            mu0 = np.r_[prior["intercept"]["mu"], mu0]
            sd0 = np.r_[prior["intercept"]["sigma"], sd0]
        precision = X1.T @ X1 / sigma_orig[k] ** 2 + np.diag(1.0 / sd0**2)
        cov = np.linalg.inv(precision)
        mean = cov @ (X1.T @ y[rows] / sigma_orig[k] ** 2 + mu0 / sd0**2)
        np.testing.assert_allclose(c + A @ mean_s[k], mean, rtol=1e-10)
        np.testing.assert_allclose(A @ cov_s[k] @ A.T, cov, rtol=1e-10, atol=1e-14)


def test_drawn_coefficients_have_the_conditional_moments():
    """The draw β = m + L⁻ᵀε has mean m and covariance (L Lᵀ)⁻¹ (Monte Carlo, 40,000 draws:
    the tolerance is about 5 standard errors)."""
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(50, 4))
    gram = np.stack([Z.T @ Z, 2.0 * Z.T @ Z])
    internal = gibbs_sweep.InternalPrior(
        np.ones(2), np.stack([np.eye(3), 3.0 * np.eye(3)]), np.ones((2, 3)), np.ones(2)
    )
    sigma = np.array([0.7, 1.3])
    mean, chol = gibbs_sweep.coefficient_conditional(gram, sigma, internal)
    cov = np.linalg.inv(chol @ np.swapaxes(chol, -1, -2))
    draws = np.stack(
        [gibbs_sweep.draw_coefficients(gram, sigma, internal, rng) for _ in range(40_000)]
    )
    for k in range(2):
        se = np.sqrt(np.diag(cov[k]) / draws.shape[0])
        np.testing.assert_array_less(np.abs(draws[:, k].mean(0) - mean[k]), 5 * se)
        np.testing.assert_allclose(
            np.cov(draws[:, k].T), cov[k], rtol=0.05, atol=0.05 * cov[k].max()
        )


def test_label_frequencies_are_the_responsibilities():
    """Labels drawn from one uniform per row by inversion follow the E-step's γ: 20,000 passes
    over 6 rows, each frequency within 4.5 binomial standard errors."""
    model = _model("overlapping")
    X, y, scaler, Z = _augmented(model)
    rows = np.arange(6) * 50
    from bayes_mlr.core.em import _to_internal

    params = _to_internal(scaler, model.weights_, model.intercept_, model.coef_, model.sigma_)
    C = gibbs_sweep._scaled_residual_coefficients(params.beta, params.sigma)
    const = np.log(params.weights) - np.log(params.sigma)
    rng = np.random.default_rng(5)
    n_rep = 20_000
    counts = np.zeros((rows.size, 2))
    for _ in range(n_rep):
        z, _, _ = gibbs_sweep._block_labels(Z[rows], C, const, rng.random(rows.size))
        counts[np.arange(rows.size), z] += 1
    X1 = np.column_stack([np.ones(X.shape[0]), X])
    beta = np.column_stack([model.intercept_, model.coef_])
    gamma, _ = e_step(X1[rows], y[rows], model.weights_, beta, model.sigma_)
    se = np.sqrt(gamma * (1 - gamma) / n_rep)
    np.testing.assert_array_less(np.abs(counts / n_rep - gamma), 4.5 * se + 1e-12)
    assert np.any((gamma[:, 0] > 0.05) & (gamma[:, 0] < 0.95))  # some rows are uncertain


def _sigma_cdf(x, n, rss, scale):
    """CDF of σ when τ = σ⁻² has the density ∝ τ^((n-3)/2) exp(-rss τ/2 - τ⁻¹/(2 scale²)):
    a generalised inverse Gaussian in τ (a half-normal σ without rows)."""
    if n == 0 and rss == 0:
        return stats.halfnorm(scale=scale).cdf(x)
    lam, a, b = (n - 1) / 2, rss, 1 / scale**2
    tau = stats.geninvgauss(lam, np.sqrt(a * b), scale=np.sqrt(b / a))
    return tau.sf(1 / np.asarray(x) ** 2)


def _sigma_exact(size, n, rss, scale, rng):
    if n == 0 and rss == 0:
        return np.abs(rng.normal(size=size)) * scale
    lam, a, b = (n - 1) / 2, rss, 1 / scale**2
    tau = stats.geninvgauss(lam, np.sqrt(a * b), scale=np.sqrt(b / a))
    return 1 / np.sqrt(tau.rvs(size=size, random_state=rng))


@pytest.mark.parametrize(
    "n, rss, scale, slices",
    [
        (50, 40.0, 1.0, "none"),  # many rows: the exact Gamma rejection, accepted at once
        (4, 30.0, 0.5, "most"),  # sigma far above its prior scale: rejected, then slice steps
        (1, 0.3, 1.0, "all"),  # one row: a slice step
        (0, 0.0, 2.0, "none"),  # no rows: the prior, exactly
    ],
)
def test_sigma_step_leaves_its_conditional_invariant(n, rss, scale, slices):
    """Start 20,000 sigmas at exact draws of the conditional (scipy's generalised inverse
    Gaussian), take one step from each: the results must still follow the conditional. A
    Kolmogorov-Smirnov test (its p-value under 1e-3 would fail a correct step one time in a
    thousand; the seeds are fixed) and the mean within 5 standard errors."""
    rng = np.random.default_rng(7)
    size = 20_000
    start = _sigma_exact(size, n, rss, scale, rng)
    out, n_slice = gibbs_sweep.draw_sigma(
        start, np.full(size, float(n)), np.full(size, rss), np.full(size, scale), rng
    )
    assert np.all(out > 0) and not np.array_equal(out, start)
    assert stats.kstest(out, lambda x: _sigma_cdf(x, n, rss, scale)).pvalue > 1e-3
    reference = _sigma_exact(size, n, rss, scale, np.random.default_rng(8))
    se = np.sqrt(reference.var() / size * 2)
    assert abs(out.mean() - reference.mean()) < 5 * se
    share = n_slice / size  # the path each case is meant to exercise
    assert {"none": share == 0, "most": share > 0.9, "all": share == 1}[slices], share


def test_slice_step_alone_leaves_its_target_invariant():
    """The slice step on log σ (no rejection before it), from exact draws: KS as above."""
    rng = np.random.default_rng(9)
    n, rss, scale = 12, 9.0, 1.5
    start = _sigma_exact(5000, n, rss, scale, rng)
    out = np.array([gibbs_sweep.slice_log_sigma(s, n, rss, scale, rng) for s in start])
    assert stats.kstest(out, lambda x: _sigma_cdf(x, n, rss, scale)).pvalue > 1e-3


def test_weighted_rows_count_as_replicated_rows():
    """A row of weight w enters the statistics as w rows: with certain labels (far apart
    components) the weighted statistics equal those of the data with every row repeated."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(400, 2))
    comp = rng.integers(0, 2, size=400)
    y = np.where(comp == 0, 50.0, -50.0) + X @ [1.0, -1.0] + rng.normal(size=400) * 0.1
    w = rng.integers(0, 4, size=400).astype(float)
    scaler = Scaler.from_arrays(X, y, w, True)
    beta = np.array([[50.0, 1.0, -1.0], [-50.0, 1.0, -1.0]])
    beta[:, 0] = (beta[:, 0] - scaler.y_shift) / scaler.y_scale
    beta[:, 1:] *= scaler.x_scale / scaler.y_scale
    sigma = np.full(2, 0.1 / scaler.y_scale)
    args = (np.log([0.5, 0.5]), beta, sigma)
    weighted = gibbs_sweep.label_pass(
        gibbs_sweep.ArrayRows(scaler.augmented(X, y), w, block_rows=64),
        *args,
        np.random.default_rng(0),
        np.random.default_rng(1),
    )
    reps = np.repeat(np.arange(400), w.astype(int))
    replicated = gibbs_sweep.label_pass(
        gibbs_sweep.ArrayRows(scaler.augmented(X[reps], y[reps]), None),
        *args,
        np.random.default_rng(0),
        np.random.default_rng(1),
    )
    np.testing.assert_allclose(weighted.nk, replicated.nk)
    np.testing.assert_allclose(weighted.gram, replicated.gram, rtol=1e-10)
    assert weighted.log_likelihood == pytest.approx(replicated.log_likelihood, rel=1e-10)


# --------------------------------------------------------------------------------------------
# The target: PyMC's model
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, priors, tune",
    [
        ("separated", None, 5),
        ("separated", {"sigma": {"sigma": 0.3}, "weights": {"alpha": [1.0, 4.0]}}, 5),
        ("shared", None, 5),
        ("fixed", None, 5),
        ("weighted", None, 5),  # integer weights, no intercept
        ("one_component", None, 5),
        # long enough a burn-in for move-only iterations between the sweeps
        ("separated", None, 120),
    ],
)
def test_log_density_and_log_likelihood_are_the_pymc_models(kind, priors, tune):
    """Every draw's ``lp``, total log-likelihood and unconstrained point equal what PyMC's model
    (build_model, the NUTS path's) gives for it: both samplers target one posterior. The
    pointwise log-likelihood of every draw sums to its total."""
    from bayes_mlr.bayes.model import build_model
    from bayes_mlr.bayes.sampling import _invariants

    model = _model(kind)
    idata = _gibbs(model, draws=15, tune=tune, priors=priors)
    if tune > 100:
        assert min(idata["posterior"].attrs["gibbs_metropolis_steps"]) > 0
    lp, ll, phi = _invariants(idata, build_model(model, priors=priors))
    stats_ = idata["sample_stats"]
    np.testing.assert_allclose(stats_["log_density"].to_numpy(), lp, rtol=1e-10)
    np.testing.assert_allclose(stats_["log_likelihood"].to_numpy(), ll, rtol=1e-10)
    pointwise = idata["log_likelihood"]["y"].sum("obs").to_numpy()
    np.testing.assert_allclose(pointwise, ll, rtol=1e-10)
    post = idata["posterior"]
    aligned = {name: post[name].to_numpy() for name in post.data_vars}
    np.testing.assert_allclose(gibbs.unconstrained_point(aligned, model.variance), phi, atol=1e-10)
    if not np.any(stats_["relabelled"].to_numpy()):  # raw draws = aligned ones
        np.testing.assert_allclose(stats_["lp"].to_numpy(), lp, rtol=1e-10)
    # pointwise: w_i log p(y_i | θ) of one draw, by scipy
    sel = {"chain": 1, "draw": 4}
    X, y = np.asarray(model._fit_X), np.asarray(model._fit_y)
    w = np.ones(y.size) if model._fit_sample_weight is None else model._fit_sample_weight
    K = model.n_components_
    weights = post["weights"].isel(sel).to_numpy() if K > 1 else np.ones(1)
    b = post["intercept"].isel(sel).to_numpy() if model.fit_intercept else np.zeros(K)
    sigma = (
        np.broadcast_to(post["sigma"].isel(sel).to_numpy(), (K,))
        if model.variance != "fixed"
        else np.broadcast_to(model.sigma_, (K,))
    )
    mu = b + X @ post["coef"].isel(sel).to_numpy().T
    dens = np.log(weights) + stats.norm(mu, sigma).logpdf(y[:, None])
    expected = w * np.logaddexp.reduce(dens, axis=1)
    np.testing.assert_allclose(
        idata["log_likelihood"]["y"].isel(sel).to_numpy(), expected, rtol=1e-10
    )
    assert json.loads(post.attrs["priors"])["source"] == ("overridden" if priors else "default")


# --------------------------------------------------------------------------------------------
# The output
# --------------------------------------------------------------------------------------------


def _layout(idata, skip=("sample_stats",)):
    """Groups, variables with dims, and coordinates other than chain/draw."""
    out = {}
    for name, group in idata.children.items():
        if name in skip:
            continue
        ds = group.to_dataset()
        out[name] = {
            "vars": {v: ds[v].dims for v in ds.data_vars},
            "coords": {
                c: list(np.asarray(ds[c].values)) for c in ds.coords if c not in ("chain", "draw")
            },
        }
    return out


def test_layout_equals_the_nuts_one():
    nuts = h.posterior("pymc")
    ours = _gibbs(h.fitted(), draws=h.DRAWS, tune=100, chains=h.CHAINS, seed=h.SEED)
    assert _layout(ours) == _layout(nuts)
    assert list(ours.children) == list(nuts.children)
    for name in ("lp", "log_density", "log_likelihood", "relabelled", "permutation"):
        assert ours["sample_stats"][name].dims == nuts["sample_stats"][name].dims, name
    custom = set(nuts["posterior"].attrs) - {
        "created_at", "creation_library", "creation_library_version",
        "creation_library_language", "inference_library", "inference_library_version",
        "sample_dims", "sampling_time",
    }  # fmt: skip
    assert custom <= set(ours["posterior"].attrs)
    assert ours["posterior"].attrs["sampler"] == "gibbs"
    assert set(ours.attrs) == set(nuts.attrs)
    assert ours["posterior"].sizes["draw"] == h.DRAWS


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["shared", "fixed", "weighted", "one_component"])
def test_layout_equals_the_nuts_one_in_every_mode(kind):
    model = _model(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short NUTS runs: ESS and relabelling warnings
        nuts = model.sample_posterior(
            30, 30, 2, sampler="pymc", random_seed=1, progressbar=False, starts="em"
        )
    ours = _gibbs(model, draws=30, tune=5, starts="em")
    assert _layout(ours) == _layout(nuts)
    assert list(ours.children) == list(nuts.children)


def test_diagnose_and_compare_em_posterior_read_it():
    model = h.fitted()
    idata = _gibbs(model, draws=1000, tune=100, chains=4)
    diagnosis = diagnose(idata)
    assert diagnosis.ok, diagnosis
    assert diagnosis.identified and diagnosis.n_modes == 1
    table = compare_em_posterior(model, idata)
    assert table["em_in_hdi"].all(), table
    np.testing.assert_allclose(table["sd"], table["em_se"], rtol=0.3)
    assert (idata["sample_stats"]["n_empty"] == 0).all()


def test_draws_depend_on_the_seed_only():
    model = h.fitted()
    one = _gibbs(model, draws=40, tune=10, chains=3, cores=1, seed=3)
    two = _gibbs(model, draws=40, tune=10, chains=3, cores=2, seed=3)
    for name in ("weights", "intercept", "coef", "sigma"):
        np.testing.assert_array_equal(one["posterior"][name], two["posterior"][name])
    np.testing.assert_array_equal(one["log_likelihood"]["y"], two["log_likelihood"]["y"])
    other = _gibbs(model, draws=40, tune=10, chains=3, cores=1, seed=4)
    assert not np.array_equal(one["posterior"]["coef"], other["posterior"]["coef"])
    assert one["posterior"].attrs["cores"] == 1 and two["posterior"].attrs["cores"] == 2


def test_dask_input_gives_the_in_memory_posterior():
    """The labels use one uniform per row in row order, so Dask chunks (not multiples of the
    row block) give the draws of the same data in memory, to rounding."""
    da = pytest.importorskip("dask.array")
    d = simulate(900, **h.TRUTH, random_state=12)
    w = np.random.default_rng(2).integers(1, 3, size=900).astype(float)
    dense = MixtureOfRegressions(2, random_state=0).fit(d.X, d.y, sample_weight=w)
    lazy = MixtureOfRegressions(2, random_state=0).fit(
        da.from_array(d.X, chunks=(250, 1)),
        da.from_array(d.y, chunks=250),
        sample_weight=da.from_array(w, chunks=250),
    )
    a = _gibbs(dense, draws=50, tune=10, starts="em", seed=5)
    b = _gibbs(lazy, draws=50, tune=10, starts="em", seed=5)
    for name in ("weights", "intercept", "coef", "sigma"):
        np.testing.assert_allclose(b["posterior"][name], a["posterior"][name], rtol=1e-8)
    np.testing.assert_allclose(b["log_likelihood"]["y"], a["log_likelihood"]["y"], rtol=1e-8)
    np.testing.assert_allclose(b["observed_data"]["y"], a["observed_data"]["y"])
    assert diagnose(b).relabelled_fraction == 0.0


def test_pointwise_log_likelihood_is_left_out_beyond_the_limit(monkeypatch):
    monkeypatch.setattr(gibbs, "LOG_LIKELIHOOD_MAX_BYTES", 1000)
    with pytest.warns(UserWarning, match="log_likelihood group is left out"):
        idata = _gibbs(h.fitted(), draws=10, tune=2)
    assert "log_likelihood" not in idata.children
    quiet = _gibbs(h.fitted(), draws=10, tune=2, log_likelihood=False)
    assert "log_likelihood" not in quiet.children


def test_posterior_predictive_draws():
    idata = _gibbs(h.fitted(), draws=20, tune=5, posterior_predictive=True)
    pp = idata["posterior_predictive"]["y"]
    assert pp.dims == ("chain", "draw", "obs") and pp.shape == (2, 20, h.N)
    assert abs(float(pp.mean()) - float(np.mean(h.data().y))) < 0.5


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------


def test_refuses_structured_models():
    d = h.data()
    groups = np.repeat(np.arange(h.N // 3), 3)
    grouped = MixtureOfRegressions(2, random_state=0).fit(d.X, d.y, groups=groups)
    with pytest.raises(ValueError, match="groups, concomitant variables or shared"):
        _gibbs(grouped)
    concomitant = MixtureOfRegressions(2, random_state=0).fit(d.X, d.y, concomitant=d.X[:, 0])
    with pytest.raises(ValueError, match="sampler='gibbs' cannot sample this model"):
        _gibbs(concomitant)


def test_refuses_other_families():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 1))
    y = rng.poisson(np.exp(1.0 + 0.5 * X[:, 0])).astype(float)
    model = MixtureOfRegressions(2, family="poisson", random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"'poisson'.*Gaussian conditional"):
        _gibbs(model)


def test_refuses_non_integer_weights():
    d = h.data()
    w = np.full(h.N, 1.5)
    model = MixtureOfRegressions(2, random_state=0).fit(d.X, d.y, sample_weight=w)
    with pytest.raises(ValueError, match=r"integer sample weights only.*300 weight"):
        _gibbs(model)


def test_refuses_pymc_arguments():
    model = h.fitted()
    with pytest.raises(TypeError, match="no PyMC sampling arguments"):
        _gibbs(model, nuts={"max_treedepth": 5})
    with pytest.raises(ValueError, match="pm_model"):
        _gibbs(model, pm_model=object())
    with pytest.raises(ValueError, match="draws must be an integer >= 1"):
        _gibbs(model, draws=0)
    with pytest.raises(ValueError, match="starts must be one of"):
        _gibbs(model, starts="random")
    with pytest.raises(ValueError, match="not fitted"):
        _gibbs(MixtureOfRegressions(2))


# --------------------------------------------------------------------------------------------
# Agreement with NUTS
# --------------------------------------------------------------------------------------------


def _summary(idata):
    post = idata["posterior"].to_dataset()
    out = {}
    for name in ("weights", "intercept", "coef", "sigma"):
        if name not in post:
            continue
        values = post[name].to_numpy().reshape(-1, *post[name].shape[2:])
        flat = values.reshape(values.shape[0], -1)
        for j in range(flat.shape[1]):
            out[f"{name}[{j}]"] = (flat[:, j].mean(), flat[:, j].std())
    return out


@functools.cache
def _nuts(kind: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _model(kind).sample_posterior(
            1500, 1000, 4, sampler="pymc", random_seed=2, progressbar=False
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "metropolis"),
    [(k, True) for k in ("separated", "overlapping", "shared", "fixed", "weighted")]
    + [("separated", False), ("overlapping", False)],
)
def test_gibbs_and_nuts_agree(kind, metropolis):
    """Posterior means within 0.15 posterior sd and sds within 10% of NUTS's, for every scalar
    parameter, with the independence Metropolis move (the default) and without it (the plain
    data-augmentation sampler). Both runs are long enough that Monte Carlo error stays several
    times below these tolerances (bulk ESS of at least 1,500 per parameter in either run,
    checked)."""
    import arviz_stats as azs

    model = _model(kind)
    nuts = _nuts(kind)
    ours = _gibbs(model, draws=6000, tune=500, chains=4, seed=2, metropolis=metropolis)
    move = ours["posterior"].attrs["gibbs_move"]
    assert move == ("independence Metropolis" if metropolis else "none (metropolis=False)")
    for idata in (nuts, ours):
        names = [v for v in ("weights", "intercept", "coef", "sigma") if v in idata["posterior"]]
        ess = azs.ess(idata["posterior"].to_dataset()[names], method="bulk")
        assert min(float(ess[v].min()) for v in ess.data_vars) > 1500
        assert diagnose(idata).identified
    a, b = _summary(ours), _summary(nuts)
    assert a.keys() == b.keys()
    for key in a:
        (m_g, s_g), (m_n, s_n) = a[key], b[key]
        assert abs(m_g - m_n) < 0.15 * s_n, (key, m_g, m_n, s_n)
        assert abs(s_g / s_n - 1) < 0.10, (key, s_g, s_n)
