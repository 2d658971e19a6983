"""Observed information of concomitant, grouped and shared models
(bayes_mlr.frequentist.structured_information): against the plain model's analytic information,
finite differences of the log-likelihood, and flexmix refit() (in tests/core/test_structured.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.core.structured import fit_structured
from bayes_mlr.frequentist import information
from bayes_mlr.frequentist import structured_information as si


@pytest.mark.parametrize("variance", ["component", "shared", "fixed"])
def test_plain_model_equals_the_analytic_information(variance):
    sim = simulate(300, n_components=2, n_features=2, random_state=1)
    sigma = 0.5 if variance == "fixed" else None
    model = MixtureOfRegressions(2, variance=variance, sigma=sigma, random_state=0).fit(
        sim.X, sim.y
    )
    args = (sim.X, sim.y, model.weights_, model.intercept_, model.coef_, model.sigma_)
    old = information.standard_errors(*args, variance=variance, fit_intercept=True)
    new = si.standard_errors(model.result_, sim.X, sim.y)
    for key in old:  # the same algebra in another layout: rounding only
        np.testing.assert_allclose(new[key], old[key], rtol=1e-8, atol=1e-12)


def _finite_difference_hessian(f, theta, h=1e-4):
    P = theta.size
    H = np.empty((P, P))
    for i in range(P):
        for j in range(i, P):
            ei, ej = np.eye(P)[i] * h, np.eye(P)[j] * h
            H[i, j] = H[j, i] = (
                f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)
            ) / (4 * h * h)
    return H


@pytest.mark.parametrize("seed", [0, 1])
def test_information_is_minus_the_hessian_of_the_log_likelihood(seed):
    sim = simulate(
        240,
        intercept=[-1.0, 1.0],
        coef=[[1.0, 0.4], [-1.0, 0.4]],
        sigma=[0.5, 0.7],
        n_groups=80,
        concomitant_intercept=[0.0, 0.2],
        concomitant_coef=[[0.0], [1.0]],
        random_state=seed,
    )
    res = fit_structured(
        sim.X,
        sim.y,
        2,
        groups=sim.groups,
        concomitant=sim.concomitant,
        shared=[1],
        random_state=seed,
    )
    kwargs = {"groups": sim.groups, "concomitant": sim.concomitant}
    info, labels = si.observed_information(res, sim.X, sim.y, **kwargs)
    assert len(labels) == res.n_parameters == info.shape[0]
    lay = si._layout(res, ["x0", "x1"], ["w0"])
    theta = si._theta(lay=lay, result=res)

    def f(t):
        return si.log_likelihood_at(t, res, sim.X, sim.y, **kwargs)

    assert f(theta) == pytest.approx(res.log_likelihood, rel=1e-12)
    H = _finite_difference_hessian(f, theta)
    # central differences with h = 1e-4 on a sum of 240 rows: about 1e-5 of the largest entry
    np.testing.assert_allclose(info, -H, atol=1e-5 * np.abs(info).max())


def test_standard_errors_keys_and_shapes():
    sim = simulate(
        300,
        n_groups=100,
        concomitant_intercept=[0.0, 0.1],
        concomitant_coef=[[0.0, 0.0], [1.0, -0.5]],
        random_state=3,
    )
    model = MixtureOfRegressions(2, shared=["intercept"], random_state=0).fit(
        sim.X, sim.y, groups=sim.groups, concomitant=sim.concomitant
    )
    se = model.standard_errors_
    assert se["concomitant_coef"].shape == (2, 2) and np.all(se["concomitant_coef"][0] == 0)
    assert se["concomitant_intercept"][0] == 0 and se["concomitant_intercept"][1] > 0
    assert se["intercept"][0] == se["intercept"][1] > 0  # one shared intercept
    cov = model.covariance_
    assert cov.shape == (len(model.covariance_labels_),) * 2
    np.testing.assert_allclose(cov, cov.T)


def _family_data(family: str, seed: int, n: int = 360):
    """Two components of each family, with a concomitant variable and groups of 3 rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    groups = np.repeat(np.arange(n // 3), 3)
    w = np.repeat(rng.normal(size=n // 3), 3)
    z = (rng.random(n // 3) < 1 / (1 + np.exp(-w[::3])))[groups]
    eta = np.where(z, 0.5 + X[:, 0], 1.5 - 0.5 * X[:, 0]) + 0.3 * X[:, 1]
    kwargs: dict = {}
    if family == "poisson":
        kwargs["offset"] = rng.normal(scale=0.2, size=n)
        y = rng.poisson(np.exp(eta + kwargs["offset"])).astype(float)
    elif family == "binomial":
        kwargs["trials"] = rng.integers(1, 15, n).astype(float)
        y = rng.binomial(kwargs["trials"].astype(int), 1 / (1 + np.exp(-eta))).astype(float)
    else:
        y = eta + 0.4 * rng.standard_t(3, n)
    return X, y, groups, w[:, None], kwargs


@pytest.mark.parametrize("family", ["poisson", "binomial", "student_t"])
@pytest.mark.parametrize("seed", [0, 1])
def test_family_information_is_minus_the_hessian(family, seed):
    """Every family through the same Louis assembly, with its own derivatives; grouped, with
    a concomitant variable and a shared coefficient."""
    X, y, groups, W, kwargs = _family_data(family, seed)
    res = fit_structured(
        X,
        y,
        2,
        groups=groups,
        concomitant=W,
        shared=[1],
        family=family,
        random_state=seed,
        **kwargs,
    )
    kwargs.update(groups=groups, concomitant=W)
    info, labels = si.observed_information(res, X, y, **kwargs)
    assert len(labels) == res.n_parameters == info.shape[0]
    theta = si._theta(res, si._prepare(res, None, None))

    def f(t):
        return si.log_likelihood_at(t, res, X, y, **kwargs)

    assert f(theta) == pytest.approx(res.log_likelihood, rel=1e-12)
    H = _finite_difference_hessian(f, theta)
    # as above; the Student-t's own second derivatives are differences (1e-9): 1e-5 holds
    np.testing.assert_allclose(info, -H, atol=1e-5 * np.abs(info).max())
    se = si.standard_errors(res, X, y, **kwargs)
    assert ("sigma" in se) == (family == "student_t") == ("df" in se)
    assert np.all(np.isfinite(se["coef"])) and np.all(se["coef"] > 0)
