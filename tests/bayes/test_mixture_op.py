"""Tests of bayes_mlr.bayes.mixture_op: the fused mixture log-density Op and its gradient.

Everything here is algebra, so tolerances are tight: the Op must equal the textbook formula
(``scipy.special.logsumexp`` of ``log w + log N``) and its gradient must equal PyTensor's
automatic gradient of the plain ``pt.logsumexp`` graph, on every linker the samplers use.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import NullTypeGradError
from scipy import stats
from scipy.special import logsumexp

from bayes_mlr.bayes.mixture_op import (
    MixtureRegressionLogp,
    mixture_regression_logp,
    pointwise_logp_draws,
    register_jax,
)

SEEDS = [0, 1, 2]


def _problem(seed: int, n: int = 50, p: int = 2, K: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = rng.normal(scale=2.0, size=n)
    w = rng.dirichlet(np.ones(K))
    return {
        "y": y,
        "X": X,
        "log_w": np.log(w),
        "intercept": rng.normal(size=K),
        "coef": rng.normal(size=(K, p)),
        "sigma": rng.uniform(0.3, 2.0, size=K),
    }


def _reference_logp(y, X, log_w, intercept, coef, sigma):
    mu = intercept + X @ coef.T  # (n, K)
    return logsumexp(log_w + stats.norm.logpdf(y[:, None], mu, sigma), axis=1)


_NAMES = ("log_w", "intercept", "coef", "sigma")


def _symbolic():
    """Symbolic inputs and the fused and plain pointwise log-densities built on them."""
    y, log_w, intercept, sigma = pt.dvector("y"), pt.dvector("lw"), pt.dvector("b"), pt.dvector("s")
    X, coef = pt.dmatrix("X"), pt.dmatrix("A")
    fused = mixture_regression_logp(y, X, log_w, intercept, coef, sigma)
    mu = pt.dot(X, coef.T) + intercept
    plain = pt.logsumexp(
        log_w - pt.log(sigma) - 0.5 * np.log(2 * np.pi) - 0.5 * pt.sqr((y[:, None] - mu) / sigma),
        axis=1,
    )
    return [y, X, log_w, intercept, coef, sigma], fused, plain


def _values(problem):
    return [problem[k] for k in ("y", "X", "log_w", "intercept", "coef", "sigma")]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("K", [1, 2, 4])
def test_logp_equals_the_textbook_formula(seed, K):
    problem = _problem(seed, K=K)
    inputs, fused, _ = _symbolic()
    got = pytensor.function(inputs, fused)(*_values(problem))
    np.testing.assert_allclose(got, _reference_logp(**problem), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_responsibilities_and_residuals(seed):
    problem = _problem(seed)
    y, X, log_w, intercept, coef, sigma = _values(problem)
    outputs = MixtureRegressionLogp()(y, X, intercept, coef, log_w, sigma)
    logp, resp, z = (np.asarray(o.eval()) for o in outputs)
    mu = intercept[:, None] + coef @ X.T
    np.testing.assert_allclose(z, (y - mu) / sigma[:, None], rtol=1e-13)
    joint = log_w[:, None] + stats.norm.logpdf(y, mu, sigma[:, None])
    np.testing.assert_allclose(resp, np.exp(joint - logp), rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(resp.sum(axis=0), 1.0, rtol=1e-13)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mode", ["CVM", "NUMBA", "FAST_COMPILE"])
def test_gradient_equals_autodiff_of_the_plain_graph(seed, mode):
    """Gradient of sum(g * logp) for a non-trivial g, every input, on the linkers we use."""
    problem = _problem(seed)
    inputs, fused, plain = _symbolic()
    g = np.random.default_rng(seed + 100).uniform(0.5, 2.0, size=problem["y"].size)
    wrt = inputs  # the parameters, and the data y and X too
    outs = []
    for logp, linker in ((fused, mode), (plain, None)):
        total = pt.sum(g * logp)
        outs.append(pytensor.function(inputs, [total, *pt.grad(total, wrt)], mode=linker))
    got, want = (f(*_values(problem)) for f in outs)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_gradient_against_finite_differences(seed):
    problem = _problem(seed, n=20)
    y, X = problem["y"], problem["X"]

    def f(log_w, intercept, coef, sigma):
        return mixture_regression_logp(y, X, log_w, intercept, coef, sigma)

    pytensor.gradient.verify_grad(
        f,
        [problem[k] for k in _NAMES],
        rng=np.random.default_rng(seed),
        abs_tol=1e-6,
        rel_tol=1e-6,
    )


def test_well_separated_components_underflow_cleanly():
    """Terms far below the largest (exp underflow) are clamped without changing the result."""
    problem = _problem(0)
    problem["intercept"] = np.array([-200.0, 0.0, 300.0])
    problem["sigma"] = np.array([0.1, 0.2, 0.1])
    inputs, fused, plain = _symbolic()
    wrt = inputs[2:]
    f = pytensor.function(inputs, [fused, *pt.grad(fused.sum(), wrt)])
    f_plain = pytensor.function(inputs, [plain, *pt.grad(plain.sum(), wrt)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = f(*_values(problem))
    np.testing.assert_allclose(got[0], _reference_logp(**problem), rtol=1e-12)
    for a, b in zip(got[1:], f_plain(*_values(problem))[1:], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_zero_weight_and_impossible_points_give_minus_infinity_quietly():
    problem = _problem(1)
    inputs, fused, _ = _symbolic()
    f = pytensor.function(inputs, fused)
    values = _values(problem)
    values[2] = np.array([0.0, -np.inf, -np.inf])  # all weight on component 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = f(*values)
        np.testing.assert_allclose(
            got, stats.norm.logpdf(values[0], values[3][0] + values[1] @ values[4][0], values[5][0])
        )
        values[2] = np.full(3, -np.inf)  # no component can produce y
        assert np.all(f(*values) == -np.inf)


def test_only_logp_is_differentiable():
    problem = _problem(0)
    y, X, log_w, _, coef, sigma = _values(problem)
    b = pt.dvector("b")
    _, resp, _ = MixtureRegressionLogp()(y, X, b, coef, log_w, sigma)
    with pytest.raises(NullTypeGradError):
        pt.grad(resp.sum(), b)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_jax_implementation_matches(seed):
    pytest.importorskip("jax")
    register_jax()
    problem = _problem(seed)
    inputs, fused, _ = _symbolic()
    wrt = inputs
    total = fused.sum()
    outs = [total, *pt.grad(total, wrt)]
    got = pytensor.function(inputs, outs, mode="JAX")(*_values(problem))
    want = pytensor.function(inputs, outs)(*_values(problem))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-10, atol=1e-10)


def test_bad_input_ranks_are_refused():
    with pytest.raises(TypeError, match="X must be a 2-dimensional"):
        MixtureRegressionLogp()(
            np.zeros(3), np.zeros(3), np.zeros(1), np.zeros((1, 1)), np.zeros(1), np.ones(1)
        )


@pytest.mark.parametrize("threads", [1, 3])
def test_pointwise_logp_at_many_draws_equals_the_op(threads):
    """The pointwise log-likelihood's evaluator gives the Op's logp at every draw, weighted."""
    problem = _problem(0, n=40)
    rng = np.random.default_rng(5)
    S, K, p = 7, 3, problem["X"].shape[1]
    log_w = np.log(rng.dirichlet(np.ones(K), size=S))
    log_w[0, 1] = -np.inf  # a component without weight
    intercept, coef = rng.normal(size=(S, K)), rng.normal(size=(S, K, p))
    sigma = rng.uniform(0.3, 2.0, size=(S, K))
    weights = rng.integers(1, 4, size=problem["y"].size).astype(float)
    values, totals = pointwise_logp_draws(
        problem["y"], problem["X"], log_w, intercept, coef, sigma,
        sample_weight=weights, threads=threads,
    )  # fmt: skip
    inputs, fused, _ = _symbolic()
    f = pytensor.function(inputs, fused)
    for s in range(S):
        want = weights * f(problem["y"], problem["X"], log_w[s], intercept[s], coef[s], sigma[s])
        np.testing.assert_allclose(values[s], want, rtol=1e-13)
    np.testing.assert_allclose(totals, values.sum(axis=1), rtol=1e-13)
