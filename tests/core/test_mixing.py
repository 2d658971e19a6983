"""Mixing models (bayes_mlr.core.mixing): the gating M-step against an independent optimiser."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from bayes_mlr.core.mixing import ConstantMixing, MultinomialLogit, log_softmax


def _problem(seed, K=3, G=200, r=2):
    rng = np.random.default_rng(seed)
    W = np.column_stack([np.ones(G), rng.normal(size=(G, r))])
    gamma = rng.dirichlet(np.ones(K), size=G)
    c = rng.uniform(0.5, 2.0, size=G)
    return W, gamma, c


def test_log_softmax_is_stable_and_normalised():
    eta = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    out = log_softmax(eta)
    np.testing.assert_allclose(np.exp(out).sum(axis=1), 1.0, rtol=1e-15)
    assert np.isfinite(out[0, :2]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_newton_m_step_reaches_the_maximum(seed):
    """Repeated M-steps reach the maximiser of Q found by BFGS (a concave problem)."""
    W, gamma, c = _problem(seed)
    mix = MultinomialLogit(W, c)
    gate = mix.zeros(3)
    values = [mix.objective(gamma, gate)]
    for _ in range(10):
        gate = mix.m_step(gamma, gate)
        values.append(mix.objective(gamma, gate))
    assert np.all(np.diff(values) >= -1e-12 * abs(values[0]))  # never lowers Q

    def negative(free):
        full = np.vstack([np.zeros((1, 3)), free.reshape(2, 3)])
        return -mix.objective(gamma, full)

    best = minimize(negative, np.zeros(6), method="BFGS", options={"gtol": 1e-10})
    assert -best.fun == pytest.approx(values[-1], rel=1e-10)
    np.testing.assert_allclose(gate[1:].ravel(), best.x, atol=1e-5)  # BFGS's own accuracy
    assert np.all(gate[0] == 0.0)


def test_gradient_and_hessian_by_finite_differences():
    W, gamma, c = _problem(3, K=3, G=50)
    mix = MultinomialLogit(W, c)
    gate = np.random.default_rng(1).normal(size=(3, 3)) * 0.3
    gate[0] = 0.0
    grad, neg_hess = mix.gradient_hessian(gamma, np.exp(mix.log_prior(gate)))
    h = 1e-5
    for i in range(6):
        step = np.zeros(6)
        step[i] = h
        up, down = gate.copy(), gate.copy()
        up[1:] += step.reshape(2, 3)
        down[1:] -= step.reshape(2, 3)
        fd = (mix.objective(gamma, up) - mix.objective(gamma, down)) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=1e-6, abs=1e-6)  # central differences
        g_up = mix.gradient_hessian(gamma, np.exp(mix.log_prior(up)))[0]
        g_down = mix.gradient_hessian(gamma, np.exp(mix.log_prior(down)))[0]
        np.testing.assert_allclose(-neg_hess[:, i], (g_up - g_down) / (2 * h), atol=1e-5)


def test_constant_mixing_m_step_is_the_closed_form():
    """π_j = Σ_g c_g γ_gj / Σ_g c_g, as the seed's derivation."""
    _, gamma, c = _problem(4)
    mix = ConstantMixing(c)
    halves = [mix.reduce(gamma[:100], c[:100]), mix.reduce(gamma[100:], c[100:])]
    gate = mix.m_step(mix.combine(halves), mix.zeros(3))  # the sums, part by part
    pi = np.exp(mix.log_prior(gate))[0]
    np.testing.assert_allclose(pi, c @ gamma / c.sum(), rtol=1e-12)
    assert (
        mix.n_parameters(3) == 2
        and MultinomialLogit(np.ones((5, 3)), np.ones(5)).n_parameters(3) == 6
    )
