"""bayes_mlr.bayes.gibbs_proposal: the independence Metropolis move of the Gibbs sampler.

* algebra (tight): the gradient is the derivative of the target; the target is the PyMC
  model's log density up to a constant, in every variance mode and with replication weights;
* the proposal is the Laplace approximation: its spread equals the EM's standard errors
  (loose: two approximations of one posterior);
* the sampler uses and reports the move, and leaves it out with the reason where there is no
  Laplace approximation.

That the composed sampler targets the posterior is checked against NUTS in
``tests/bayes/test_gibbs.py::test_gibbs_and_nuts_agree`` (with and without the move).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.bayes import gibbs, gibbs_proposal, gibbs_sweep
from bayes_mlr.core.em import _Params, _to_external
from tests import _bayes_helpers as h

TRUTH_3 = {
    "weights": np.array([0.5, 0.3, 0.2]),
    "intercept": np.array([-3.0, 0.0, 3.0]),
    "coef": np.array([[2.0, -1.0], [-1.0, 0.5], [0.5, 2.0]]),
    "sigma": np.array([0.6, 0.6, 0.6]),
}
KINDS = ["component", "shared", "fixed", "weighted", "no_intercept", "one_component"]


@functools.cache
def _model(kind: str, n: int = 300):
    if kind in ("shared", "fixed"):
        d = simulate(n, **TRUTH_3, random_state=6)
        sigma = 0.6 if kind == "fixed" else None
        return MixtureOfRegressions(3, variance=kind, sigma=sigma, random_state=0).fit(d.X, d.y)
    d = h.data(n)
    if kind == "component":
        return MixtureOfRegressions(2, random_state=0).fit(d.X, d.y)
    if kind == "weighted":
        w = np.random.default_rng(4).integers(0, 4, size=n).astype(float)
        return MixtureOfRegressions(2, random_state=0).fit(d.X, d.y, sample_weight=w)
    if kind == "no_intercept":
        return MixtureOfRegressions(2, fit_intercept=False, random_state=0).fit(d.X, d.y)
    if kind == "one_component":
        return MixtureOfRegressions(1, random_state=0).fit(d.X, d.y)
    raise ValueError(kind)


def _setup(kind: str, n: int = 300):
    model = _model(kind, n)
    data = gibbs._Data(model, None)
    K, p = data.problem.n_components, data.problem.X.shape[1]
    prior = gibbs_sweep.internal_prior(data.prior, data.scaler, K, p, data.problem.variance)
    start = gibbs._internal(gibbs._em_values(model), data)
    layout = gibbs_proposal.Layout(K, start.beta.shape[1], data.problem.variance, start.sigma)
    return model, data, prior, layout, start


def _points(layout, start, seed, count=4, spread=0.05):
    """The EM estimate and points around it, in the unconstrained coordinates."""
    phi = layout.pack(start.weights, start.beta, start.sigma)
    rng = np.random.default_rng(seed)
    return [phi] + [phi + spread * rng.standard_normal(phi.size) for _ in range(count - 1)]


@pytest.mark.parametrize("kind", KINDS)
def test_layout_round_trips(kind):
    _, _, _, layout, start = _setup(kind)
    phi = layout.pack(start.weights, start.beta, start.sigma)
    assert phi.size == layout.size
    log_w, beta, sigma = layout.unpack(phi)
    np.testing.assert_allclose(np.exp(log_w), start.weights, rtol=1e-12)
    np.testing.assert_array_equal(beta, start.beta)
    np.testing.assert_allclose(sigma, start.sigma, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_is_the_derivative_of_the_target(kind, seed):
    """Against central differences of the target (step 1e-6: the differences' truncation and
    rounding errors are both below 1e-6 of the gradient's scale)."""
    _, data, prior, layout, start = _setup(kind)
    for phi in _points(layout, start, seed, count=2):
        _, grad = gibbs_proposal._target_and_gradient(data.rows, phi, layout, prior)
        step = 1e-6
        numeric = np.empty_like(phi)
        for i in range(phi.size):
            e = np.zeros_like(phi)
            e[i] = step
            up = gibbs_proposal._target_and_gradient(data.rows, phi + e, layout, prior)[0]
            down = gibbs_proposal._target_and_gradient(data.rows, phi - e, layout, prior)[0]
            numeric[i] = (up - down) / (2 * step)
        scale = max(1.0, np.abs(grad).max())
        np.testing.assert_allclose(grad, numeric, rtol=0, atol=1e-5 * scale)


def _external(layout, phi, data):
    """The PyMC model's values (original units) of the point ``φ``."""
    log_w, beta, sigma = layout.unpack(phi)
    weights, intercept, coef, sig = _to_external(data.scaler, _Params(np.exp(log_w), beta, sigma))
    problem = data.problem
    values = {"coef": coef, "weights": weights, "intercept": intercept, "sigma": sig}
    if problem.variance == "shared":
        values["sigma"] = sig[0]
    elif problem.variance == "fixed":
        del values["sigma"]
    if not problem.fit_intercept:
        del values["intercept"]
    if problem.n_components == 1:
        del values["weights"]
    return values


@pytest.mark.parametrize("kind", KINDS)
def test_target_is_the_models_log_density_up_to_a_constant(kind):
    """log-likelihood + the move's prior term minus (log-likelihood + the PyMC model's log
    prior on its unconstrained scale, :func:`gibbs.log_prior`, which tests/bayes/test_gibbs.py
    checks against PyMC) is one constant over points: the two coordinate systems differ by
    linear maps, whose Jacobians are constants. Tolerance: rounding of sums of ~300 terms."""
    _, data, prior, layout, start = _setup(kind)
    problem = data.problem
    gaps = []
    for phi in _points(layout, start, seed=3, count=5, spread=0.1):
        ll = gibbs_proposal.soft_stats(data.rows, *layout.unpack(phi)).log_likelihood
        ours = ll + gibbs_proposal.log_target_prior(phi, layout, prior)
        theirs = ll + float(
            gibbs.log_prior(
                _external(layout, phi, data),
                data.prior,
                variance=problem.variance,
                fit_intercept=problem.fit_intercept,
            )
        )
        gaps.append(ours - theirs)
    np.testing.assert_allclose(gaps, gaps[0], rtol=0, atol=1e-8)


@pytest.mark.parametrize("kind", ["component", "shared"])
def test_proposal_spread_equals_the_em_standard_errors(kind):
    """The proposal's covariance (the Laplace approximation of the posterior, mapped to the
    original coefficients) against the EM's observed-information standard errors: two
    approximations of one posterior at n = 2,000 with weak priors, so within 5%."""
    model, data, prior, layout, start = _setup(kind, n=2000)
    proposal, reason = gibbs_proposal.laplace_proposal(
        data.rows, prior, layout, start.weights, start.beta, start.sigma
    )
    assert proposal is not None, reason
    cov = proposal.chol @ proposal.chol.T
    K, q = layout.n_components, layout.n_coef
    A, _ = gibbs_sweep.design_map(data.scaler, q - int(data.problem.fit_intercept))
    se = model.standard_errors_
    for j in range(K):
        block = slice(K - 1 + j * q, K - 1 + (j + 1) * q)
        sd = np.sqrt(np.diag(A @ cov[block, block] @ A.T))
        np.testing.assert_allclose(sd[1:], se["coef"][j], rtol=0.05)
        np.testing.assert_allclose(sd[0], se["intercept"][j], rtol=0.05)


def test_no_proposal_without_a_laplace_approximation():
    _, data, prior, layout, start = _setup("component")
    weights = np.array([1.0, 0.0])  # an empty component: no mode in the open simplex
    proposal, reason = gibbs_proposal.laplace_proposal(
        data.rows, prior, layout, weights, start.beta, start.sigma
    )
    assert proposal is None
    assert "empty component" in reason


def test_the_sampler_uses_and_reports_the_move():
    model = _model("component")
    idata = model.sample_posterior(200, 100, 2, sampler="gibbs", random_seed=1, progressbar=False)
    attrs = idata["posterior"].attrs
    assert attrs["gibbs_move"] == "independence Metropolis"
    accepted = idata["sample_stats"]["accepted"].to_numpy()
    assert accepted.shape == (2, 200) and accepted.dtype == bool
    assert attrs["gibbs_acceptance_rate"] == pytest.approx(accepted.mean())
    # n = 300, 7 parameters: the posterior is near normal, so most proposals are accepted
    assert attrs["gibbs_acceptance_rate"] > 0.5

    plain = model.sample_posterior(
        200, 100, 2, sampler="gibbs", random_seed=1, progressbar=False, metropolis=False
    )
    assert plain["posterior"].attrs["gibbs_move"] == "none (metropolis=False)"
    assert "accepted" not in plain["sample_stats"]
    assert "gibbs_acceptance_rate" not in plain["posterior"].attrs


def test_the_sampler_goes_on_without_a_proposal(monkeypatch):
    monkeypatch.setattr(
        gibbs_proposal, "laplace_proposal", lambda *a, **k: (None, "no mode here (test)")
    )
    idata = _model("component").sample_posterior(
        50, 20, 2, sampler="gibbs", random_seed=1, progressbar=False
    )
    assert idata["posterior"].attrs["gibbs_move"] == "none: no mode here (test)"
    assert "accepted" not in idata["sample_stats"]


def test_metropolis_must_be_a_bool():
    with pytest.raises(TypeError, match="metropolis must be True or False"):
        _model("component").sample_posterior(
            10, 10, 1, sampler="gibbs", progressbar=False, metropolis="yes"
        )


def test_metropolis_steps_follow_the_acceptance_rate():
    assert gibbs_sweep.metropolis_steps(0.9) == 7
    assert gibbs_sweep.metropolis_steps(0.8) == 7
    assert gibbs_sweep.metropolis_steps(0.6) == 3
    assert gibbs_sweep.metropolis_steps(0.2) == 0


@pytest.mark.parametrize(("tune", "scheduled"), [(40, False), (300, True)])
def test_move_only_iterations_are_chosen_early_in_the_burn_in(tune, scheduled):
    """With fewer than 2 x ADAPT_MIN_SWEEPS burn-in iterations every iteration sweeps; with
    more, the schedule follows the acceptance rate of the first iterations, and the draws'
    log-likelihoods are those of the draws (the move-only draws' come from the proposal's
    pass, or repeat the previous draw's after a rejection)."""
    _, data, prior, layout, start = _setup("component", n=2000)
    proposal, _ = gibbs_proposal.laplace_proposal(
        data.rows, prior, layout, start.weights, start.beta, start.sigma
    )
    job = gibbs._chain_job(
        data, prior, start, draws=60, tune=tune, seed=np.random.SeedSequence(5), proposal=proposal
    )
    result = gibbs_sweep.run_chain(job)
    expected = gibbs_sweep.metropolis_steps(result.accepted_tune / tune) if scheduled else 0
    assert result.metropolis_steps == expected
    if scheduled:  # n = 2,000, 7 parameters: the posterior is near normal
        assert result.metropolis_steps > 0
    log_y = np.log(data.scaler.y_scale)
    for d in range(0, 60, 7):
        params = (np.log(result.weights[d]), result.beta[d], result.sigma[d])
        ll = gibbs_proposal.soft_stats(data.rows, *params).log_likelihood - data.n_rows * log_y
        # the sweep's and the EM's log-likelihood of the same parameters: rounding only
        assert result.log_likelihood[d] == pytest.approx(ll, rel=1e-10)
