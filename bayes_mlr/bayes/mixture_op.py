"""A fused PyTensor ``Op`` for the pointwise log-density of the mixture of regressions.

The marginal density ``log p(y_i) = logsumexp_k(log w_k + log N(y_i | b_k + a_k . x_i,
sigma_k))`` is where NUTS spends its time. Written as a PyTensor graph it becomes many passes
over ``(n, K)`` arrays, forward and backward, each a scalar loop with its own ``exp``/``log``;
the reductions over the short trailing axis of length K are particularly slow.
:class:`MixtureRegressionLogp` does it over *component-major* ``(K, n)`` arrays: one matrix
product for the means (BLAS), one vectorised ``exp`` per element and one ``log`` per row
(numpy), and everything else in a few compiled loops (numba, nopython, compiled on first use
and cached on disk) that run over contiguous rows, one pass where numpy needed one per
operation. It also returns the responsibilities and standardised residuals, which the gradient
(:class:`MixtureRegressionLogpGrad`) reuses (one compiled pass and one matrix product), so a
log-density-and-gradient evaluation computes each ``exp`` once. The log-density is the plain
numpy arithmetic's, bit for bit; the gradient's sums are accumulated in another order (equal to
rounding). :func:`pointwise_logp_draws` evaluates the log-density at many draws (the pointwise
log-likelihood) with the same code, in threads.

``tests/benchmarks/bench_sampling.py`` prints, with its commit, one log-density-and-gradient
evaluation of the whole model on its problem (n = 20,000, K = 3, p = 3) against the
hand-written ``pm.NormalMixture`` model's and against the same arithmetic in plain numpy.

Linkers: the Ops run their Python code under PyTensor's C virtual machine and Python linkers,
in object mode under the numba linker (PyTensor's default; registered here without its
warning), and as JAX code under the JAX linker (numpyro), registered by :func:`register_jax`,
which imports JAX and so is called only when that back-end is used. The graph around the Op
needs no BLAS from PyTensor: the matrix products are numpy's.

This module imports PyTensor; only :mod:`bayes_mlr.bayes.model` imports it.
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

__all__ = [
    "MixtureRegressionLogp",
    "MixtureRegressionLogpGrad",
    "mixture_regression_logp",
    "pointwise_logp_draws",
    "register_jax",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
#: ``exp`` of arguments below this underflows to subnormal numbers, which are slow on x86 and
#: contribute nothing next to the largest term (which is exp(0) = 1); they are clamped here.
_EXP_FLOOR = -700.0


def _float_inputs(values, spec: tuple[tuple[str, int], ...]) -> list:
    """The Op's inputs as float64 tensors, checked against ``spec`` ``((name, ndim), ...)``."""
    inputs = []
    for x, (name, ndim) in zip(values, spec, strict=True):
        x = pt.as_tensor_variable(x)
        if x.ndim != ndim:
            raise TypeError(f"{name} must be a {ndim}-dimensional tensor, got {x.ndim} dimensions")
        inputs.append(pt.cast(x, "float64") if x.dtype != "float64" else x)
    return inputs


def _float_outputs(*ndims: int) -> list:
    """Fresh float64 output variables of the given ranks."""
    return [pt.tensor(dtype="float64", shape=(None,) * ndim) for ndim in ndims]


# The passes over the (K, n) arrays are compiled loops (numba, nopython; compiled on first use
# and cached on disk), except ``exp`` and ``log``, which stay numpy's (vectorised) and the matrix
# products (BLAS). Each loop runs component by component over contiguous rows, so it vectorises.
# The forward loops repeat numpy's operations in numpy's order, so the log-density is the same,
# bit for bit, as the plain numpy code it replaced; the gradient's sums are accumulated in
# another order (vectorised), equal to rounding.
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _log_terms(z, y, intercept, inv_sigma, const, floor):  # pragma: no cover - compiled
    """In place, ``z`` ``(K, n)`` holding ``coef @ X.T`` becomes the standardised residuals
    ``(y - coef @ X.T - intercept) * inv_sigma``. Returns the log terms ``const - z**2 / 2``
    less their column maximum (clamped below at ``floor``), that maximum ``top`` ``(n,)`` (NaN if
    any term is), and whether it is not finite anywhere; where it is not, nothing is
    subtracted."""
    K, n = z.shape
    terms = np.empty((K, n))
    top = np.empty(n)
    for k in range(K):
        bk = intercept[k]
        sk = inv_sigma[k]
        ck = const[k]
        for i in range(n):
            zi = (y[i] - z[k, i] - bk) * sk
            z[k, i] = zi
            v = zi * zi * -0.5 + ck
            terms[k, i] = v
            if k == 0 or v > top[i] or v != v:
                top[i] = v
    shift = np.empty(n)
    degenerate = False
    for i in range(n):
        finite = top[i] - top[i] == 0.0
        shift[i] = top[i] if finite else 0.0
        degenerate |= not finite
    for k in range(K):
        for i in range(n):
            v = terms[k, i] - shift[i]
            terms[k, i] = floor if v < floor else v
    return terms, top, shift, degenerate


@_jit
def _normalise(scaled):  # pragma: no cover - compiled
    """In place, the columns of ``scaled`` ``(K, n)`` divided by their sums, which it returns
    (summed in numpy's order; divided as a product with the reciprocal: one division a row)."""
    K, n = scaled.shape
    total = scaled[0].copy()
    for k in range(1, K):
        for i in range(n):
            total[i] += scaled[k, i]
    inverse = 1.0 / total
    for k in range(K):
        for i in range(n):
            scaled[k, i] *= inverse[i]
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _weighted_sums(resp, z, g, weighted):  # pragma: no cover - compiled
    """``weighted = g resp z`` (written into ``weighted``) and per component ``sum g resp``,
    ``sum g resp z`` and ``sum g resp z**2``, each ``(K,)``."""
    K, n = resp.shape
    s0 = np.empty(K)
    s1 = np.empty(K)
    s2 = np.empty(K)
    for k in range(K):
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        for i in range(n):
            r = resp[k, i] * g[i]
            rz = r * z[k, i]
            weighted[k, i] = rz
            a0 += r
            a1 += rz
            a2 += rz * z[k, i]
        s0[k] = a0
        s1[k] = a1
        s2[k] = a2
    return s0, s1, s2


def _forward(y, X, intercept, coef, log_w, sigma):
    """``(logp (n,), resp (K, n), z (K, n))``; ``z = (y - intercept - coef @ X.T) / sigma``.

    The means are formed component-major, ``(K, n)``, so that every later pass and reduction
    runs over contiguous rows (``X`` in Fortran order makes ``X.T`` contiguous for BLAS:
    :func:`bayes_mlr.bayes.model.build_model` stores it so).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        inv_sigma = 1.0 / sigma
        const = log_w + np.log(inv_sigma) - _LOG_SQRT_2PI
        z = np.dot(coef, X.T)  # (K, n), component-major
        terms, top, shift, degenerate = _log_terms(
            z, np.ascontiguousarray(y), intercept, inv_sigma, const, _EXP_FLOOR
        )
        np.exp(terms, out=terms)
        total = _normalise(terms)
        # Where the largest term is not finite (every term -inf: no component can produce
        # y_i), logp is that term, as for a plain logsumexp.
        logp = np.log(total, out=total)
        logp += shift
        if degenerate:
            where = ~np.isfinite(top)
            logp[where] = top[where]
    return logp, terms, z


def _backward(X, resp, z, sigma, g):
    """Gradients of ``sum_i g[i] logp[i]`` for intercept, coef, log_w and sigma."""
    inv_sigma = 1.0 / sigma
    weighted = np.empty_like(resp)  # g resp z
    d_log_w, s1, s2 = _weighted_sums(resp, z, np.ascontiguousarray(g), weighted)
    d_sigma = (s2 - d_log_w) * inv_sigma
    d_intercept = s1 * inv_sigma
    d_coef = np.dot(weighted, X) * inv_sigma[:, None]
    return d_intercept, d_coef, d_log_w, d_sigma


def _logp_only(y, X, intercept, coef, log_w, sigma):
    """``_forward``'s ``logp`` alone (the same numbers, bit for bit), without the
    responsibilities."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        inv_sigma = 1.0 / sigma
        const = log_w + np.log(inv_sigma) - _LOG_SQRT_2PI
        terms, top, shift, degenerate = _log_terms(
            np.dot(coef, X.T), y, intercept, inv_sigma, const, _EXP_FLOOR
        )
        np.exp(terms, out=terms)
        logp = terms.sum(axis=0)  # in row order, as _normalise sums
        np.log(logp, out=logp)
        logp += shift
        if degenerate:
            where = ~np.isfinite(top)
            logp[where] = top[where]
    return logp


def _fresh_array(shape: tuple[int, ...]) -> np.ndarray:
    """``np.empty(shape)`` (float64) in an anonymous memory map of its own.

    numpy advises the kernel to back large arrays with huge pages; where the kernel compacts
    memory on those page faults (transparent huge pages with ``defrag=madvise``, a common
    default), first writing a fresh array of hundreds of MB is several times slower (measured
    on the benchmark machine: 1.2 s against 0.23 s to fill 640 MB). The pointwise
    log-likelihood of a long run is such an array (8000 draws x 20,000 rows: 1.3 GB).
    """
    import mmap

    count = math.prod(shape)
    if count == 0:
        return np.empty(shape)
    return np.frombuffer(mmap.mmap(-1, count * 8), dtype=np.float64).reshape(shape)


def pointwise_logp_draws(
    y, X, log_w, intercept, coef, sigma, *, sample_weight=None, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The pointwise log-density at many parameter draws, and its sum over the rows.

    ``log_w``, ``intercept``, ``sigma`` ``(S, K)`` and ``coef`` ``(S, K, p)`` hold ``S`` draws;
    returns ``(S, n)`` (row ``s``: :class:`MixtureRegressionLogp`'s ``logp`` at draw ``s``,
    times ``sample_weight`` when given) and its row sums ``(S,)``. The draws are shared out
    among ``threads`` threads (default: one per CPU); the compiled loops, numpy's ``exp``/``log``
    and BLAS release the interpreter lock, so they run in parallel.
    """
    import itertools
    import os
    from concurrent.futures import ThreadPoolExecutor

    y = np.ascontiguousarray(y, dtype=float)
    X = np.asfortranarray(X, dtype=float)
    S, n = np.shape(log_w)[0], y.shape[0]
    out = _fresh_array((S, n))
    totals = np.empty(S)

    def work(lo: int, hi: int) -> None:
        for s in range(lo, hi):
            row = _logp_only(y, X, intercept[s], coef[s], log_w[s], sigma[s])
            if sample_weight is not None:
                row *= sample_weight
            out[s] = row
            totals[s] = row.sum()

    threads = max(1, min(threads or os.cpu_count() or 1, S))
    bounds = np.linspace(0, S, threads + 1).astype(int)
    if threads == 1:
        work(0, S)
    else:
        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(work, lo, hi) for lo, hi in itertools.pairwise(bounds)]:
                future.result()
    return out, totals


class MixtureRegressionLogp(Op):
    """Pointwise log-density of a mixture of linear regressions, with what its gradient needs.

    Inputs ``y`` ``(n,)``, ``X`` ``(n, p)``, ``intercept`` ``(K,)``, ``coef`` ``(K, p)``,
    ``log_w`` ``(K,)``, ``sigma`` ``(K,)``. Outputs ``logp`` ``(n,)``,
    ``logp[i] = log sum_k exp(log_w[k]) N(y[i] | intercept[k] + coef[k] . X[i], sigma[k])``;
    the responsibilities ``resp`` ``(K, n)`` (each column sums to 1); and the standardised
    residuals ``z`` ``(K, n)``. Only ``logp`` is differentiable.
    """

    __props__ = ()

    _spec = (("y", 1), ("X", 2), ("intercept", 1), ("coef", 2), ("log_w", 1), ("sigma", 1))

    def make_node(self, y, X, intercept, coef, log_w, sigma):
        inputs = _float_inputs((y, X, intercept, coef, log_w, sigma), self._spec)
        return Apply(self, inputs, _float_outputs(1, 2, 2))

    def perform(self, node, inputs, output_storage):
        for storage, value in zip(output_storage, _forward(*inputs), strict=True):
            storage[0] = value

    def infer_shape(self, node, shapes):
        y_shape, _, intercept_shape, *_ = shapes
        kn = (intercept_shape[0], y_shape[0])
        return [y_shape, kn, kn]

    def pullback(self, inputs, outputs, cotangents):
        X, coef, sigma = inputs[1], inputs[3], inputs[5]
        _, resp, z = outputs
        if not all(isinstance(c.type, DisconnectedType) for c in cotangents[1:]):
            return [
                grad_not_implemented(self, i, x, "only logp is differentiable")
                for i, x in enumerate(inputs)
            ]
        g = cotangents[0]
        if isinstance(g.type, DisconnectedType):
            return [DisconnectedType()() for _ in inputs]
        d_intercept, d_coef, d_log_w, d_sigma = MixtureRegressionLogpGrad()(X, resp, z, sigma, g)
        # Gradients with respect to the data, symbolic, computed only if asked for; written
        # without a matrix product so that the graph needs no BLAS from PyTensor.
        d_mu = g * resp * z / sigma[:, None]  # (K, n)
        d_X = (d_mu[:, :, None] * coef[:, None, :]).sum(axis=0)  # (n, p)
        return [-d_mu.sum(axis=0), d_X, d_intercept, d_coef, d_log_w, d_sigma]


class MixtureRegressionLogpGrad(Op):
    """The gradient of :class:`MixtureRegressionLogp`, from its ``resp`` and ``z``.

    Inputs ``X`` ``(n, p)``, ``resp`` and ``z`` ``(K, n)``, ``sigma`` ``(K,)`` and the output
    gradient ``g`` ``(n,)``. Outputs the gradients of ``sum_i g[i] logp[i]`` with respect to
    ``intercept`` ``(K,)`` (``(g resp z).sum(1) / sigma``), ``coef`` ``(K, p)``
    (``(g resp z) @ X / sigma``), ``log_w`` ``(K,)`` (``resp @ g``) and ``sigma`` ``(K,)``
    (``(g resp (z**2 - 1)).sum(1) / sigma``).
    """

    __props__ = ()

    _spec = (("X", 2), ("resp", 2), ("z", 2), ("sigma", 1), ("g", 1))

    def make_node(self, X, resp, z, sigma, g):
        inputs = _float_inputs((X, resp, z, sigma, g), self._spec)
        return Apply(self, inputs, _float_outputs(1, 2, 1, 1))

    def perform(self, node, inputs, output_storage):
        for storage, value in zip(output_storage, _backward(*inputs), strict=True):
            storage[0] = value

    def infer_shape(self, node, shapes):
        X_shape, _, _, sigma_shape, _ = shapes
        return [sigma_shape, (sigma_shape[0], X_shape[1]), sigma_shape, sigma_shape]


def mixture_regression_logp(y, X, log_w, intercept, coef, sigma):
    """Pointwise log-density ``(n,)`` of the mixture of regressions, as a PyTensor graph.

    ``y`` ``(n,)``, ``X`` ``(n, p)``, ``log_w``, ``intercept``, ``sigma`` ``(K,)``, ``coef``
    ``(K, p)``: ``log sum_k w_k N(y_i | intercept_k + coef_k . x_i, sigma_k)``.
    """
    return MixtureRegressionLogp()(y, X, intercept, coef, log_w, sigma)[0]


# --------------------------------------------------------------------------------------------
# Linkers: numba (PyTensor's default) runs the numpy code in object mode; JAX gets its own.
# --------------------------------------------------------------------------------------------


def _register_numba() -> None:
    from pytensor.link.numba.dispatch import basic as numba_basic

    def object_mode(op, node=None, **kwargs):
        with warnings.catch_warnings():
            # "Numba will use object mode to run ...": intended; the numpy code is the point.
            warnings.filterwarnings("ignore", "Numba will use object mode", UserWarning)
            return numba_basic.generate_fallback_impl(op, node, **kwargs)

    for op_type in (MixtureRegressionLogp, MixtureRegressionLogpGrad):
        numba_basic.numba_funcify.register(op_type)(object_mode)


def _detect_blas_quietly() -> None:
    """Let PyTensor look up its BLAS flags now, without its warning when it finds none.

    The C linker (used by :mod:`bayes_mlr.bayes.model` when a C++ compiler is configured) looks
    them up once per process, including PyMC's worker processes, which import this module to
    unpickle the graph, and with pip-installed PyTensor warns that it found no BLAS. These
    graphs need no BLAS from PyTensor (their matrix products are numpy's), so the warning
    would only alarm. Costs about 0.3 s once.
    """
    if not pytensor.config.cxx:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PyTensor could not link to a BLAS", UserWarning)
        _ = pytensor.config.blas__ldflags


_register_numba()
_detect_blas_quietly()
_jax_registered = False


def register_jax() -> None:
    """Give both Ops JAX implementations (imports JAX; idempotent)."""
    global _jax_registered
    if _jax_registered:
        return
    import jax.numpy as jnp
    from pytensor.link.jax.dispatch import jax_funcify

    @jax_funcify.register(MixtureRegressionLogp)
    def _jax_forward(op, **kwargs):
        def forward(y, X, intercept, coef, log_w, sigma):
            z = (y - intercept[:, None] - coef @ X.T) / sigma[:, None]
            terms = (log_w - jnp.log(sigma) - _LOG_SQRT_2PI)[:, None] - 0.5 * z * z
            top = jnp.max(terms, axis=0)
            safe_top = jnp.where(jnp.isfinite(top), top, 0.0)
            scaled = jnp.exp(terms - safe_top)
            total = scaled.sum(axis=0)
            logp = jnp.where(jnp.isfinite(top), jnp.log(total) + safe_top, top)
            return logp, scaled / total, z

        return forward

    @jax_funcify.register(MixtureRegressionLogpGrad)
    def _jax_backward(op, **kwargs):
        def backward(X, resp, z, sigma, g):
            weighted = resp * g
            d_log_w = weighted.sum(axis=1)
            weighted = weighted * z
            d_sigma = ((weighted * z).sum(axis=1) - d_log_w) / sigma
            d_intercept = weighted.sum(axis=1) / sigma
            d_coef = (weighted @ X) / sigma[:, None]
            return d_intercept, d_coef, d_log_w, d_sigma

        return backward

    _jax_registered = True
