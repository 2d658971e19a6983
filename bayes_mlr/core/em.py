"""Soft EM for mixtures of linear regressions.

The model is ``y_i ~ Σ_j π_j N(x1_iᵀ β_j, σ_j²)`` with hidden labels ``z_i`` and design rows
``x1_i = [1, x_i]`` (the intercept column only when fitted). Following the derivation in the
project's seed question:

* **E-step** — Bayes' rule gives the responsibilities
  ``γ_ij = π_j N(y_i | x1_iᵀβ_j, σ_j²) / Σ_k π_k N(y_i | x1_iᵀβ_k, σ_k²)`` (computed in log space).
* **M-step** — the expected complete-data log-likelihood
  ``Σ_ij γ_ij log π_j + Σ_ij γ_ij log N(y_i | x1_iᵀβ_j, σ_j²)`` keeps γ_ij *outside* the logs, so
  it separates: ``π_j = Σ_i γ_ij / n`` and each ``β_j`` solves a weighted least-squares problem with
  weights γ_ij; ``σ_j²`` is the γ-weighted mean squared residual (pooled over components for
  ``variance="shared"``; given for ``variance="fixed"``).

Each iteration is written as an accumulation of sufficient statistics over row blocks
(:mod:`bayes_mlr.core.stats`) followed by an M-step solved from the totals. Internally the data are
centred and scaled (which leaves the model unchanged) so that values around 1e8 or 1e-8 fit as
well as values around 1; results are mapped back to the original units.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_mlr._validation import (
    check_data,
    check_guard,
    check_settings,
    check_sizes,
    check_start_values,
    is_dask_collection,
)
from bayes_mlr.core.components.gaussian import sigma_from_rss
from bayes_mlr.core.data import InMemoryData, Scaler
from bayes_mlr.core.linalg import solve_weighted_least_squares_batch
from bayes_mlr.core.spurious import spurious_components
from bayes_mlr.core.stats import (
    SufficientStats,
    augment,
    block_stats,
    block_stats_products,
    density_terms,
    log_resp,
    pair_products,
    residual_sums,
    unpack_gram,
)
from bayes_mlr.exceptions import ConvergenceWarning, DegenerateFitWarning, SpuriousFitWarning
from bayes_mlr.results import EMProgress, EMResult, Optimum

__all__ = ["e_step", "fit_em", "m_step"]

# A component's sigma may not fall below this fraction of the response's standard deviation:
# the mixture likelihood is unbounded as sigma_j -> 0 on a handful of points, and a run that
# reaches the floor is reported as degenerate.
SIGMA_FLOOR_REL = 1e-6
# init="auto"/"short_runs": iterations of every start before only the best continue.
SHORT_RUN_ITER = 20
# ... on a random subsample of this many rows when the data have more than twice as many
# (on smaller data every start is run to convergence, which costs little there).
SHORT_RUN_ROWS = 20_000
# On subsampled scouting a start is continued when it ranks among the best SHORT_RUN_KEEP of the
# starts so far (itself included): a rule that depends only on earlier starts, so that more
# starts with the same seed continue a superset of the runs and never end lower.
SHORT_RUN_KEEP = 2
# On data small enough to run every start to convergence: when every run is degenerate or
# spurious, up to this many more rounds of n_init starts look for a regular optimum.
SPURIOUS_EXTRA_ROUNDS = 4
# Two runs reached the same optimum (EMResult.optima) when their log-likelihoods agree to this
# per observation and their standardised parameters to OPTIMUM_PARAM_TOL: both well above the
# differences that the stopping rule tol=1e-8 leaves, well below those between distinct optima.
OPTIMUM_LL_TOL = 1e-5
OPTIMUM_PARAM_TOL = 1e-2
# init="subsets": the start sigma of a component is the scale of the rows nearest its line
# (_consensus_sigma), measured on at most this many random rows and at least this large on the
# standardised scale (sd(y) = 1); 1e-3 lets a start sit in the basin of a line that a third of
# the rows share to within 0.5% of sd(y), as a real data set has (tonedata, tests/core/test_em.py).
CONSENSUS_ROWS = 2000
CONSENSUS_SIGMA_MIN = 1e-3
# In-memory data keep the pair products of their rows (_ProductData) when these (and, without an
# intercept, a transposed copy of the data) take at most this many bytes: m (m + 1) / 2 numbers a
# row for the m = q + 1 columns of [X1, y] (m more without an intercept), 3.5 times the data for
# 4 features and an intercept (17 MB for 100,000 rows), 6.5 times for 11. Larger data use the
# plain block statistics, which need no extra memory.
PRODUCTS_MAX_BYTES = 128 * 2**20
# ... in blocks of this many rows (bench_em's 100,000 x 6: 2.2 ms a pass against 2.5 ms for
# 4,096 rows; 16,384 was slower again).
PRODUCT_BLOCK_ROWS = 8_192


# ---------------------------------------------------------------------------------------------
# Parameters on the internal (standardised) scale
# ---------------------------------------------------------------------------------------------


@dataclass
class _Params:
    """weights (K,), beta (K, q) with the intercept first when fitted, sigma (K,)."""

    weights: np.ndarray
    beta: np.ndarray
    sigma: np.ndarray


def _to_internal(scaler: Scaler, weights, intercept, coef, sigma) -> _Params:
    """Parameters in the original units -> the standardised scale of the data source."""
    coef_s = coef * scaler.x_scale / scaler.y_scale
    beta = coef_s
    if scaler.fit_intercept:
        int_s = (intercept + coef @ scaler.x_shift - scaler.y_shift) / scaler.y_scale
        beta = np.column_stack([int_s, coef_s])
    return _Params(np.asarray(weights, float), beta, np.asarray(sigma, float) / scaler.y_scale)


def _to_external(scaler: Scaler, params: _Params):
    """Return (weights, intercept, coef, sigma) in the original units."""
    beta = params.beta
    coef_s = beta[:, 1:] if scaler.fit_intercept else beta
    coef = coef_s * scaler.y_scale / scaler.x_scale
    if scaler.fit_intercept:
        intercept = scaler.y_shift + scaler.y_scale * beta[:, 0] - coef @ scaler.x_shift
    else:
        intercept = np.zeros(beta.shape[0])
    return params.weights.copy(), intercept, coef, params.sigma * scaler.y_scale


# ---------------------------------------------------------------------------------------------
# In-memory data with precomputed pair products
# ---------------------------------------------------------------------------------------------


class _ProductData(InMemoryData):
    """:class:`~bayes_mlr.core.data.InMemoryData` that also keeps the data transposed and the
    pair products ``z_ia z_ib`` of every row (:func:`~bayes_mlr.core.stats.pair_products`;
    with an intercept, the first m of them are the transposed data), computed once per fit, so
    that each E-step's K Gram matrices are one matrix product a block
    (:func:`~bayes_mlr.core.stats.block_stats_products`). The statistics equal the plain ones
    up to rounding at about half the cost of a pass.
    """

    def __init__(self, Z: np.ndarray, sample_weight: np.ndarray | None) -> None:
        super().__init__(Z, sample_weight, block_rows=PRODUCT_BLOCK_ROWS)
        self.Zt = np.ascontiguousarray(self.Z.T)
        self.Ut = pair_products(self.Zt)
        if _has_ones_column(self.Z):  # the products 1 * z_ib are the data themselves
            self.Zt = self.Ut[: self.q + 1]

    def stats(self, log_weights, beta, sigma) -> SufficientStats:
        C, const = density_terms(log_weights, beta, sigma)
        packed = self._sum(
            lambda sl: block_stats_products(self.Zt[:, sl], self.Ut[:, sl], C, const, self._w(sl))
        )
        return dataclasses.replace(packed, gram=unpack_gram(packed.gram, self.q + 1))


def _has_ones_column(Z: np.ndarray) -> bool:
    """Whether the first column is the intercept's column of ones."""
    return bool(np.all(Z[:, 0] == 1.0))


def _in_memory(Z: np.ndarray, sample_weight: np.ndarray | None) -> InMemoryData:
    """The data source of in-memory data: with pair products when they take at most
    ``PRODUCTS_MAX_BYTES``."""
    m = Z.shape[1]
    rows = m * (m + 1) // 2 + (0 if _has_ones_column(Z) else m)
    if Z.shape[0] * rows * 8 <= PRODUCTS_MAX_BYTES:
        return _ProductData(Z, sample_weight)
    return InMemoryData(Z, sample_weight)


# ---------------------------------------------------------------------------------------------
# E-step and M-step
# ---------------------------------------------------------------------------------------------


def e_step(
    X1: np.ndarray, y: np.ndarray, weights: np.ndarray, beta: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities by Bayes' rule, computed in log space.

    Parameters
    ----------
    X1 : ndarray of shape (n, q)
        Design matrix (with the intercept column if one is fitted).
    y : ndarray of shape (n,)
    weights : ndarray of shape (K,)
    beta : ndarray of shape (K, q)
    sigma : ndarray of shape (K,)

    Returns
    -------
    resp : ndarray of shape (n, K)
        γ_ij; rows sum to one.
    loglik : ndarray of shape (n,)
        Per-row observed-data log-likelihood log Σ_j π_j N(y_i | x1_iᵀβ_j, σ_j²).
    """
    log_gamma, loglik = log_resp(augment(X1, y), _log(weights), beta, sigma)
    return np.exp(log_gamma).T, loglik


def _log(weights: np.ndarray) -> np.ndarray:
    """log π, with log 0 = -inf (an emptied component) and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(weights)


def m_step_from_stats(
    stats: SufficientStats, *, variance: str, sigma_fixed: float | None, sigma_floor: float
) -> _Params:
    """M-step from the sufficient statistics of one E-step (see :mod:`bayes_mlr.core.stats`)."""
    nk, gram = stats.nk, stats.gram
    q = gram.shape[1] - 1
    weights = nk / nk.sum()
    beta = solve_weighted_least_squares_batch(gram[:, :q, :q], gram[:, :q, q])
    rss = residual_sums(gram, beta)  # Σ_i γ_ij (y_i - x1_iᵀβ_j)²
    sigma = sigma_from_rss(
        rss, nk, variance=variance, sigma_fixed=sigma_fixed, sigma_floor=sigma_floor
    )
    return _Params(weights, beta, sigma)


def m_step(
    X1: np.ndarray,
    y: np.ndarray,
    resp: np.ndarray,
    *,
    variance: str = "component",
    sigma: float | None = None,
    sample_weight: np.ndarray | None = None,
    sigma_floor: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """M-step from given responsibilities.

    Parameters
    ----------
    X1 : ndarray of shape (n, q)
    y : ndarray of shape (n,)
    resp : ndarray of shape (n, K)
        Responsibilities γ_ij.
    variance : {"component", "shared", "fixed"}
    sigma : float, optional
        The known noise scale for ``variance="fixed"``.
    sample_weight : ndarray of shape (n,), optional
        Replication weights.
    sigma_floor : float
        Lower bound for estimated sigmas.

    Returns
    -------
    weights : ndarray of shape (K,)
        π_j = Σ_i w_i γ_ij / Σ_i w_i.
    beta : ndarray of shape (K, q)
        Weighted least-squares solutions with weights w_i γ_ij.
    sigma : ndarray of shape (K,)
    """
    stats = block_stats(augment(X1, y), None, None, None, sample_weight, resp=resp)
    p = m_step_from_stats(stats, variance=variance, sigma_fixed=sigma, sigma_floor=sigma_floor)
    return p.weights, p.beta, p.sigma


# ---------------------------------------------------------------------------------------------
# One EM run
# ---------------------------------------------------------------------------------------------


@dataclass
class _Run:
    params: _Params
    trace: list[float]
    n_iter: int
    converged: bool
    degenerate: bool
    spurious: np.ndarray  # (K,) bool: which components are spurious (bayes_mlr.core.spurious)

    @property
    def log_likelihood(self) -> float:
        return self.trace[-1]

    @property
    def is_spurious(self) -> bool:
        return bool(self.spurious.any())


@dataclass
class _Problem:
    """Everything a run needs besides its start: the data source and the M-step's settings."""

    data: Any  # InMemoryData or bayes_mlr.core.dask_data.DaskData
    n_obs: float
    variance: str
    sigma_fixed: float | None
    sigma_floor: float
    min_count: float
    accelerate: bool = True
    # spurious="avoid": runs with a spurious component rank after every run without one.
    avoid_spurious: bool = True
    # flexmix's minprior: components whose weight falls below this are removed during EM.
    min_weight: float | None = None
    # Progress reports (fit_em's callback): who is running, and the log-likelihood's offset
    # to the data's units, n_obs * log(y_scale).
    callback: Callable[[EMProgress], Any] | None = None
    stage: str = "run"
    start: int = 0
    n_starts: int = 1
    log_y_scale: float = 0.0

    def labelled(self, stage: str, start: int, n_starts: int) -> _Problem:
        """The same problem, its runs reported as start ``start`` of ``n_starts`` in ``stage``."""
        return dataclasses.replace(self, stage=stage, start=start, n_starts=n_starts)

    def report(self, tracker: _Tracker, done: bool = False) -> None:
        if self.callback is not None:
            self.callback(
                EMProgress(
                    stage=self.stage,
                    start=self.start,
                    n_starts=self.n_starts,
                    n_iter=tracker.n_iter,
                    log_likelihood=tracker.trace[-1] - self.n_obs * self.log_y_scale,
                    done=done,
                    converged=tracker.converged,
                    degenerate=tracker.degenerate,
                )
            )

    def stats(self, params: _Params) -> SufficientStats:
        return self.data.stats(_log(params.weights), params.beta, params.sigma)

    def m_step(self, stats: SufficientStats) -> _Params:
        params = m_step_from_stats(
            stats,
            variance=self.variance,
            sigma_fixed=self.sigma_fixed,
            sigma_floor=self.sigma_floor,
        )
        return self.prune(params)

    def prune(self, params: _Params) -> _Params:
        """``min_weight``: drop the components whose weight is below it (the largest stays)."""
        if self.min_weight is None or params.weights.size < 2:
            return params
        keep = params.weights >= self.min_weight
        if keep.all():
            return params
        keep[np.argmax(params.weights)] = True
        w = params.weights[keep]
        return _Params(w / w.sum(), params.beta[keep], params.sigma[keep])

    def rank_key(self, run: _Run) -> tuple[bool, bool, float]:
        """Sort key: non-degenerate runs first, then (``spurious="avoid"``) runs without a
        spurious component, then by log-likelihood (higher first)."""
        return (run.degenerate, self.avoid_spurious and run.is_spurious, -run.log_likelihood)

    def is_regular(self, run: _Run) -> bool:
        """Neither degenerate nor (with ``spurious="avoid"``) spurious."""
        return not any(self.rank_key(run)[:2])

    def spurious(self, params: _Params, stats: SufficientStats) -> np.ndarray:
        return spurious_components(stats.nk, params.sigma, self.data.q, variance=self.variance)

    def is_degenerate(self, params: _Params, stats: SufficientStats) -> bool:
        if np.any(stats.nk < self.min_count):
            return True
        return self.variance != "fixed" and bool(
            np.any(params.sigma <= self.sigma_floor * (1.0 + 1e-9))
        )


def _to_theta(params: _Params, variance: str) -> np.ndarray | None:
    """Unconstrained parameter vector: K-1 logits, β, log σ (one if shared, none if fixed)."""
    if np.any(params.weights <= 0):
        return None
    logw = np.log(params.weights)
    parts = [logw[:-1] - logw[-1], params.beta.ravel()]
    if variance == "component":
        parts.append(np.log(params.sigma))
    elif variance == "shared":
        parts.append(np.log(params.sigma[:1]))
    return np.concatenate(parts)


def _from_theta(theta: np.ndarray, like: _Params, variance: str, floor: float) -> _Params:
    K, q = like.beta.shape
    eta = np.append(theta[: K - 1], 0.0)
    weights = np.exp(eta - eta.max())
    weights /= weights.sum()
    beta = theta[K - 1 : K - 1 + K * q].reshape(K, q)
    rest = theta[K - 1 + K * q :]
    if variance == "component":
        sigma = np.maximum(np.exp(rest), floor)
    elif variance == "shared":
        sigma = np.full(K, max(float(np.exp(rest[0])), floor))
    else:
        sigma = like.sigma.copy()
    return _Params(weights, beta, sigma)


class _Tracker:
    """Bookkeeping of one run: the trace, the iteration count and the stopping rules."""

    def __init__(self, problem: _Problem, params: _Params, stats: SufficientStats, tol: float):
        self.problem, self.tol = problem, tol
        self.params, self.stats = params, stats
        self.trace = [stats.log_likelihood]
        self.n_iter = 0
        self.converged = self.degenerate = False

    def accept(self, params: _Params, stats: SufficientStats, check: bool = True) -> bool:
        """Record an EM update; return True when the run should stop.

        ``check=False`` records without testing convergence on this one step (degeneracy is
        always tested).
        """
        self.params, self.stats = params, stats
        self.trace.append(stats.log_likelihood)
        self.n_iter += 1
        if self.problem.is_degenerate(params, stats):
            self.degenerate = True
        elif check:
            self.check_converged(len(self.trace) - 2)
        self.problem.report(self)
        return self.degenerate or self.converged

    def check_converged(self, since: int) -> bool:
        """Converged if the gain since trace entry ``since`` is at most tol per observation."""
        gain = self.trace[-1] - self.trace[since]
        if self.tol > 0 and abs(gain) <= self.tol * self.problem.n_obs:
            self.converged = True
        return self.converged

    def result(self) -> _Run:
        self.problem.report(self, done=True)
        spurious = self.problem.spurious(self.params, self.stats)
        return _Run(self.params, self.trace, self.n_iter, self.converged, self.degenerate, spurious)


def _run_em(problem: _Problem, params: _Params, max_iter: int, tol: float) -> _Run:
    """Iterate E and M steps from ``params`` until the log-likelihood gain per observation is
    at most ``tol`` (``tol=0``: exactly ``max_iter`` iterations) or the run degenerates.

    With ``problem.accelerate``, every two EM steps are followed by a SQUAREM extrapolation
    (Varadhan & Roland, 2008, scheme S3) in the unconstrained parameters (logits, β, log σ)
    and one stabilising EM step from the extrapolated point. The extrapolation is kept only if
    it ends at a log-likelihood at least that of the two plain steps and is not degenerate, so
    the recorded trace stays monotone; otherwise the plain steps stand. Every recorded entry is
    the result of an M-step, and ``n_iter`` counts the recorded entries. Convergence is then
    judged on the gain of a whole cycle (two EM steps and the extrapolation), so that a slow
    stretch of plain EM does not stop a run that extrapolation still improves.
    """
    run = _Tracker(problem, params, problem.stats(params), tol)

    def em_step(st: SufficientStats) -> tuple[_Params, SufficientStats]:
        new = problem.m_step(st)
        return new, problem.stats(new)

    if not problem.accelerate:
        while run.n_iter < max_iter and not run.accept(*em_step(run.stats)):
            pass
        return run.result()

    step_max = 1.0
    while run.n_iter < max_iter:
        cycle_start, start = len(run.trace) - 1, run.params
        if run.accept(*em_step(run.stats), check=False) or run.n_iter >= max_iter:
            break
        first = run.params
        if run.accept(*em_step(run.stats), check=False) or run.n_iter >= max_iter:
            break
        step_max = _extrapolate(problem, run, (start, first, run.params), step_max, em_step)
        if run.degenerate or run.check_converged(cycle_start):
            break
    return run.result()


def _extrapolate(problem, run, points, step_max, em_step) -> float:
    """One safeguarded SQUAREM jump from three successive EM iterates; a kept jump is recorded
    in ``run``. Returns the step cap for the next cycle."""
    thetas = [_to_theta(p, problem.variance) for p in points]
    alpha = None
    if all(t is not None for t in thetas) and len({t.size for t in thetas}) == 1:
        r = thetas[1] - thetas[0]
        v = thetas[2] - 2.0 * thetas[1] + thetas[0]
        v_norm = float(np.linalg.norm(v))
        if v_norm > 0.0:
            alpha = -min(max(float(np.linalg.norm(r)) / v_norm, 1.0), step_max)
    if alpha is not None and alpha < -1.0:  # alpha = -1 would land on the last EM iterate
        theta = thetas[0] - 2.0 * alpha * r + alpha**2 * v
        jump = _from_theta(theta, points[0], problem.variance, problem.sigma_floor)
        jump_stats = problem.stats(jump)
        if np.isfinite(jump_stats.log_likelihood):
            new, new_stats = em_step(jump_stats)
            if new_stats.log_likelihood >= run.stats.log_likelihood and not (
                problem.is_degenerate(new, new_stats)
            ):
                run.accept(new, new_stats, check=False)
                return step_max * 4.0 if alpha == -step_max else step_max  # cap bound: widen
        return max(1.0, step_max / 4.0)  # the jump overshot: shorter steps from now on
    return step_max * 4.0 if alpha == -step_max else step_max


def _continue(problem: _Problem, run: _Run, max_iter: int, tol: float) -> _Run:
    """Continue a run for up to ``max_iter`` more iterations, joining the traces."""
    more = _run_em(problem, run.params, max_iter, tol)
    return _Run(
        more.params,
        run.trace + more.trace[1:],
        run.n_iter + more.n_iter,
        more.converged,
        more.degenerate,
        more.spurious,
    )


# ---------------------------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------------------------


def _init_random(problem: _Problem, K: int, rng: np.random.Generator) -> _Params:
    """Random soft responsibilities (Dirichlet(1) rows), then one M-step."""
    entropy = int(rng.integers(2**63))
    return problem.m_step(problem.data.random_resp_stats(entropy, K))


def _start_sigma(problem: _Problem, beta: np.ndarray) -> np.ndarray:
    """A common start sigma: the typical distance of the data to the nearest component line
    (at least 0.05 on the standardised scale, where sd(y) = 1); the given one if fixed."""
    K = beta.shape[0]
    if problem.variance == "fixed":
        return np.full(K, problem.sigma_fixed)
    return np.full(K, max(problem.data.spread(beta), 0.05))


def _init_subsets(problem: _Problem, K: int, rng: np.random.Generator) -> _Params:
    """Each component fitted by least squares to its own random subset of q + 1 rows.

    A minimal subset, as in RANSAC (Fischler & Bolles 1981): a line through q + 1 rows that
    lie on one component's line *is* that line, and a line that many rows share exactly (a
    sizeable component with a tiny sigma) is found this way and by hardly any other start.
    Each component starts with the scale of its consensus set (:func:`_consensus_sigma`), so
    EM begins inside such a narrow basin instead of stepping over it.
    """
    n, q = problem.data.n_rows, problem.data.q
    size = min(n, q + 1)
    beta = np.empty((K, q))
    for j in range(K):
        Z, _ = problem.data.take(rng.choice(n, size=size, replace=False))
        X1, y = Z[:, :-1], Z[:, -1]
        beta[j] = np.linalg.lstsq(X1, y, rcond=None)[0]
    if problem.variance == "component":
        sigma = _consensus_sigma(problem, beta, rng)
    else:
        sigma = _start_sigma(problem, beta)
    return _Params(np.full(K, 1.0 / K), beta, sigma)


def _consensus_sigma(problem: _Problem, beta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-component start sigma: the robust scale of the rows closest to each line.

    For line ``j`` the ``m = max(q + 2, n / (2K))`` rows with the smallest absolute residuals
    form its consensus set; the start sigma is ``1.4826 * median`` of those residuals (the MAD
    scale), at least ``CONSENSUS_SIGMA_MIN`` on the standardised scale. A line through one
    component's rows gets about that component's sigma, a line through nothing a large one.
    The residuals are taken on at most ``CONSENSUS_ROWS`` random rows.
    """
    data = problem.data
    K, q = beta.shape
    n = data.n_rows
    rows = rng.choice(n, size=min(n, CONSENSUS_ROWS), replace=False)
    Z, _ = data.take(rows)
    residuals = np.abs(Z[:, -1:] - Z[:, :-1] @ beta.T)  # (m, K)
    m = min(residuals.shape[0], max(q + 2, residuals.shape[0] // (2 * K)))
    nearest = np.partition(residuals, m - 1, axis=0)[:m]
    return np.maximum(1.4826 * np.median(nearest, axis=0), CONSENSUS_SIGMA_MIN)


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def fit_em(
    X: Any,
    y: Any,
    n_components: int,
    *,
    variance: str = "component",
    sigma: float | None = None,
    fit_intercept: bool = True,
    sample_weight: Any = None,
    init: str | dict | EMResult = "auto",
    n_init: int = 10,
    max_iter: int = 1000,
    tol: float = 1e-8,
    random_state: int | np.random.Generator | None = None,
    accelerate: bool = True,
    callback: Callable[[EMProgress], Any] | None = None,
    spurious: str = "avoid",
    min_weight: float | None = None,
) -> EMResult:
    """Fit a mixture of linear regressions by soft EM.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples,)
        Features; a 1-D array is one feature. Do not include a constant column when
        ``fit_intercept=True``.
    y : array-like of shape (n_samples,)
        Response.
    n_components : int
        Number of mixture components K >= 1.
    variance : {"component", "shared", "fixed"}, default="component"
        One sigma per component (as flexmix and mixtools), one sigma shared by all components,
        or a known sigma given by ``sigma`` (the seed's model: only weights and coefficients are
        estimated).
    sigma : float, optional
        The known noise standard deviation; required for, and only allowed with,
        ``variance="fixed"``.
    fit_intercept : bool, default=True
        Whether each component has an intercept.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative replication weights; they enter both the E-step log-likelihood and the
        M-step sums.
    init : {"auto", "random", "subsets", "short_runs"}, mapping or EMResult, default="auto"
        Start strategy:

        - ``"random"``: random soft responsibilities (Dirichlet rows), then an M-step;
        - ``"subsets"``: each component fitted to its own random subset of ``q + 1`` rows
          (a minimal subset, as in RANSAC), starting with the scale of the rows nearest its
          line, so that a line many rows share exactly (a narrow basin) is reached;
        - ``"short_runs"``: ``n_init`` starts of both kinds, in turn. On data of at most
          ``2 * SHORT_RUN_ROWS`` rows every start runs to convergence; on larger data each
          scouts for ``SHORT_RUN_ITER`` iterations on a random subsample of ``SHORT_RUN_ROWS``
          rows and continues on all rows when it ranks among the best ``SHORT_RUN_KEEP``
          scouts so far (see :func:`_short_runs_then_best`); the best run is kept;
        - ``"auto"``: currently ``"short_runs"``;
        - a mapping with ``coef`` (K, p) and optionally ``intercept`` (K,), ``weights`` (K,) and
          ``sigma`` (K,) or an :class:`EMResult`: a single run from those values.
    n_init : int, default=10
        Number of starts; the best non-degenerate run is returned.
    max_iter : int, default=1000
        Maximum EM iterations per run (short pre-runs included).
    tol : float, default=1e-8
        Stop when the log-likelihood increases by at most ``tol`` per observation between
        iterations. ``tol=0`` runs exactly ``max_iter`` iterations (no convergence warning).
    random_state : int, numpy Generator or None
        Seed for the starts; a given seed gives identical results.
    accelerate : bool, default=True
        SQUAREM extrapolation between EM steps (safeguarded so the log-likelihood trace stays
        monotone); often several times fewer passes over the data when components overlap.
        ``False`` gives the plain EM sequence of the derivation, step by step.
    callback : callable, optional
        Called with an :class:`~bayes_mlr.results.EMProgress` after every recorded EM update
        of every run and once when each run stops: for progress bars and logs on long fits
        (each update of a Dask fit is a pass over the data). Its return value is ignored; an
        exception raised in it stops the fit and propagates.
    spurious : {"avoid", "allow"}, default="avoid"
        How runs that end with a *spurious* component are treated: a handful of observations
        (fewer than 5 per parameter of the component) fitted with a sigma below a third of
        every sizeable component's (McLachlan & Peel 2000, §3.10; the rule is documented in
        :mod:`bayes_mlr.core.spurious`). Such optima often have the highest likelihood, and BIC
        then picks too many components. ``"avoid"`` keeps the best run without one;
        ``"allow"`` keeps the run of highest likelihood whatever it is. Either way a spurious
        returned fit is flagged (``EMResult.spurious``) and warned about. A sizeable component
        with a tiny sigma (many points exactly on one line) is not spurious.
    min_weight : float in (0, 1), optional
        flexmix's ``minprior``: a component whose weight falls below ``min_weight`` during EM
        is removed and EM goes on with the others, so the result may have fewer than
        ``n_components`` components (``EMResult.n_removed`` says how many went). The
        log-likelihood trace drops where a component is removed. ``None`` (the default)
        removes nothing.

    Returns
    -------
    EMResult
        Components are sorted by their mean prediction over the training data,
        ``intercept_j + coef_j · x̄`` (ascending), so that results are reproducible and labels
        comparable across runs.

    Warns
    -----
    ConvergenceWarning
        If the returned run did not meet ``tol`` within ``max_iter`` iterations.
    SpuriousFitWarning
        If the returned run has a spurious component (with ``spurious="avoid"``: every run
        had one); the fit is flagged with ``EMResult.spurious``.
    DegenerateFitWarning
        If every run ended degenerate (a sigma collapsed to the floor
        ``SIGMA_FLOOR_REL * std(y)`` or a component with fewer effective observations than
        coefficients); the best degenerate run is returned and flagged.

    Examples
    --------
    >>> import numpy as np
    >>> from bayes_mlr import fit_em
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=500)
    >>> z = rng.random(500) < 0.4
    >>> y = np.where(z, 2.0 + 3.0 * x, -1.0 - 2.0 * x) + 0.3 * rng.normal(size=500)
    >>> res = fit_em(x, y, 2, random_state=0)
    >>> np.round(res.coef.ravel(), 1)
    array([-2.,  3.])
    """
    check_arguments(
        callback,
        spurious=spurious,
        min_weight=min_weight,
        n_components=n_components,
        variance=variance,
        sigma=sigma,
        fit_intercept=fit_intercept,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
    )
    K = int(n_components)
    fit_intercept = bool(fit_intercept)
    lazy = is_dask_collection(X) or is_dask_collection(y)
    if lazy:
        data, scaler = _dask_source(X, y, sample_weight, fit_intercept)
        p, n_rows = data.q - int(fit_intercept), data.n_rows
    else:
        X_arr, y_arr, sw, _ = check_data(X, y, sample_weight)
        p = X_arr.shape[1]
        n_rows = int(np.count_nonzero(sw)) if sw is not None else X_arr.shape[0]
    check_sizes(n_rows, p, K, fit_intercept=fit_intercept, variance=variance)
    start = None if isinstance(init, str) else check_start_values(init, K, p)
    rng = np.random.default_rng(random_state)
    if not lazy:
        scaler = Scaler.from_arrays(X_arr, y_arr, sw, fit_intercept)
        data = _in_memory(scaler.augmented(X_arr, y_arr), sw)
    with data:
        return _fit_source(
            data,
            scaler,
            K,
            variance=variance,
            sigma=sigma,
            init=init,
            start=start,
            n_init=int(n_init),
            max_iter=int(max_iter),
            tol=float(tol),
            rng=rng,
            accelerate=bool(accelerate),
            callback=callback,
            spurious=spurious,
            min_weight=None if min_weight is None else float(min_weight),
        )


def check_arguments(callback: Any, *, spurious: Any, min_weight: Any, **settings: Any) -> None:
    """Validate the arguments every EM entry point shares, before any computation."""
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None; got {type(callback).__name__}")
    check_guard(spurious=spurious, min_weight=min_weight)
    check_settings(**settings)


def _dask_source(X, y, sample_weight, fit_intercept: bool):
    """Validate Dask inputs (one pass for NaN/inf and the moments) and wrap them."""
    from bayes_mlr.core import dask_data as _dask

    X, y, sw, _ = _dask.prepare(X, y, sample_weight)
    n_obs, x_mean, x_var, y_mean, y_var = _dask.moments_and_checks(X, y, sw)
    if not n_obs > 0:
        raise ValueError("sample_weight sums to zero; at least one observation needs weight.")
    scaler = Scaler.from_moments(x_mean, x_var, y_mean, y_var, fit_intercept)
    return _dask.DaskData(X, y, sw, scaler, n_obs), scaler


def _short_runs_then_best(
    problem: _Problem, K: int, n_init: int, max_iter: int, tol: float, rng: np.random.Generator
) -> list[_Run]:
    """``init="short_runs"``: ``n_init`` starts (subset and random starts in turn).

    On data of at most ``2 * SHORT_RUN_ROWS`` rows every start runs to convergence (after
    ``SHORT_RUN_ITER`` scouting iterations that are part of its trace), so the best of ``n_init``
    starts is never below the best of fewer starts with the same seed. When every run ends
    degenerate or (with ``spurious="avoid"``) spurious, up to ``SPURIOUS_EXTRA_ROUNDS`` more
    rounds of ``n_init`` starts follow, drawn from the same stream (start ``i`` is the same start
    whatever ``n_init``), until a round has a regular run.

    On larger data the starts scout for ``SHORT_RUN_ITER`` iterations on a random subsample of
    ``SHORT_RUN_ROWS`` rows, which is as good for telling basins apart and costs a fraction of a
    pass over the data. A start then runs to convergence on all rows when it ranked among the
    best ``SHORT_RUN_KEEP`` scouts up to and including itself (:func:`_records`); only those
    iterations on all rows count in ``n_iter``. If every such run ends degenerate or spurious
    (with ``spurious="avoid"``), the remaining scouts are continued too, best first.
    """
    short_iter = min(SHORT_RUN_ITER, max_iter)
    makers = (_init_subsets, _init_random)
    data = problem.data
    if data.n_rows <= 2 * SHORT_RUN_ROWS:
        runs: list[_Run] = []
        for _ in range(1 + SPURIOUS_EXTRA_ROUNDS):
            for i in range(len(runs), len(runs) + n_init):
                r = _run_em(
                    problem.labelled("scout", i, n_init),
                    makers[i % 2](problem, K, rng),
                    short_iter,
                    tol,
                )
                if not (r.converged or r.degenerate or r.n_iter >= max_iter):
                    r = _continue(problem.labelled("run", i, n_init), r, max_iter - r.n_iter, tol)
                runs.append(r)
            if any(map(problem.is_regular, runs)):
                break
        return runs
    Z, w = data.take(rng.choice(data.n_rows, size=SHORT_RUN_ROWS, replace=False))
    with _in_memory(Z, w) as sample:
        scout = dataclasses.replace(problem, data=sample, n_obs=sample.n_obs)
        shorts = [
            _run_em(
                scout.labelled("scout", i, n_init), makers[i % 2](scout, K, rng), short_iter, tol
            )
            for i in range(n_init)
        ]
    keys = [problem.rank_key(r) for r in shorts]
    chosen = _records(keys, SHORT_RUN_KEEP)
    rest = sorted(set(range(n_init)) - set(chosen), key=keys.__getitem__)
    runs = [
        _run_em(problem.labelled("run", i, len(chosen)), shorts[s].params, max_iter, tol)
        for i, s in enumerate(chosen)
    ]
    for s in rest:  # only when every continued run is degenerate or (avoided) spurious
        if any(map(problem.is_regular, runs)):
            break
        runs.append(
            _run_em(problem.labelled("run", len(runs), n_init), shorts[s].params, max_iter, tol)
        )
    return runs


def _best_run(runs: list[_Run], problem: _Problem) -> _Run:
    """The best run by ``problem.rank_key``; of runs that reached the best optimum to within
    ``OPTIMUM_LL_TOL`` per observation, the first. Runs at one optimum differ by rounding and
    the stopping rule only, so the first is as good, and the choice does not flip with
    rounding (an affine rescaling of X, another BLAS)."""
    top = min(runs, key=problem.rank_key)
    slack = OPTIMUM_LL_TOL * problem.n_obs
    for run in runs:
        key, best = problem.rank_key(run), problem.rank_key(top)
        if key[:2] == best[:2] and run.log_likelihood >= top.log_likelihood - slack:
            return run
    return top


def _records(keys: list, keep: int) -> list[int]:
    """Indices ``i`` whose key is among the ``keep`` smallest of ``keys[: i + 1]``.

    Whether a start is chosen depends only on the starts before it, so the chosen set for a
    prefix of the starts is a subset of the chosen set for all of them.

    >>> _records([5, 3, 4, 1, 2, 6], 1)
    [0, 1, 3]
    >>> _records([5, 3, 4, 1, 2, 6], 2)
    [0, 1, 2, 3, 4]
    """
    chosen = []
    for i, key in enumerate(keys):
        if sum(k < key for k in keys[:i]) < keep:
            chosen.append(i)
    return chosen


def _fit_source(
    data,
    scaler: Scaler,
    K,
    *,
    variance,
    sigma,
    init,
    start,
    n_init,
    max_iter,
    tol,
    rng,
    accelerate=True,
    callback=None,
    spurious="avoid",
    min_weight=None,
) -> EMResult:
    """The restart logic and the final result, for any data source."""
    problem = _Problem(
        data=data,
        n_obs=data.n_obs,
        variance=variance,
        sigma_fixed=None if sigma is None else sigma / scaler.y_scale,
        sigma_floor=SIGMA_FLOOR_REL,
        min_count=data.q + (variance == "component"),
        accelerate=accelerate,
        callback=callback,
        log_y_scale=math.log(scaler.y_scale),
        avoid_spurious=spurious == "avoid",
        min_weight=min_weight,
    )
    if start is not None:
        p0 = _to_internal(scaler, start["weights"], start["intercept"], start["coef"], np.ones(K))
        if start["sigma"] is not None and variance != "fixed":
            p0.sigma = start["sigma"] / scaler.y_scale
        else:
            p0.sigma = _start_sigma(problem, p0.beta)
        runs = [_run_em(problem, p0, max_iter, tol)]
    elif init in ("auto", "short_runs"):
        runs = _short_runs_then_best(problem, K, n_init, max_iter, tol, rng)
    else:
        maker = _init_random if init == "random" else _init_subsets
        runs = [
            _run_em(problem.labelled("run", i, n_init), maker(problem, K, rng), max_iter, tol)
            for i in range(n_init)
        ]

    best = _best_run(runs, problem)
    n_spurious = warn_outcome(runs, best, spurious=spurious, max_iter=max_iter, tol=tol)
    optima = _distinct_optima(runs, best, scaler, problem, sigma)
    top = optima[0][0]
    return EMResult(
        weights=top.weights,
        intercept=top.intercept,
        coef=top.coef,
        sigma=top.sigma,
        spurious_components=top.spurious_components,
        n_removed=K - top.weights.shape[0],
        **run_summary(best, runs, n_spurious, optima, scaler, problem),
    )


def run_summary(best, runs, n_spurious, optima, scaler: Scaler, problem: _Problem) -> dict:
    """The :class:`EMResult` fields that describe the runs (not the parameters): the trace and
    log-likelihood in the original units, convergence and flags, run counts and the optima."""
    # log-likelihood in the original units = standardised one - n_obs log(y_scale)
    trace = np.asarray(best.trace) - problem.n_obs * math.log(scaler.y_scale)
    return {
        "log_likelihood": float(trace[-1]),
        "log_likelihood_trace": trace,
        "n_iter": best.n_iter,
        "converged": best.converged,
        "variance": problem.variance,
        "fit_intercept": scaler.fit_intercept,
        "n_obs": problem.n_obs,
        "degenerate": best.degenerate,
        "spurious": best.is_spurious,
        "n_runs": len(runs),
        "n_spurious_runs": n_spurious,
        "optima": tuple(o for o, _ in optima),
    }


def warn_outcome(runs: list, best, *, spurious: str, max_iter: int, tol: float) -> int:
    """Warn when the returned run is spurious, degenerate or did not converge.

    ``runs`` are the runs of a fit (anything with ``degenerate``, ``is_spurious``,
    ``converged`` and ``trace``), ``best`` the one returned. The warnings are attributed to
    the user's call (``fit_em``, ``fit_structured`` or the estimator's ``fit``). Returns how
    many runs ended spurious (and not degenerate).
    """
    n_spurious = sum(r.is_spurious and not r.degenerate for r in runs)
    if best.is_spurious and not best.degenerate:
        n_degenerate = sum(r.degenerate for r in runs)
        if spurious == "allow":
            how = f"{n_spurious} of {len(runs)} EM run(s) ended"
        elif n_degenerate:
            how = f"All {len(runs)} EM runs ended degenerate ({n_degenerate}) or"
        else:
            how = "The EM run ended" if len(runs) == 1 else f"All {len(runs)} EM runs ended"
        warnings.warn(
            f"{how} with a spurious component: a handful of observations fitted with a sigma "
            "far below the other components' (McLachlan & Peel 2000, §3.10). The returned fit "
            "is flagged (result_.spurious, result_.spurious_components); its log-likelihood, "
            "BIC and AIC overstate the fit. Try fewer components, more starts (n_init), "
            "variance='shared', or min_weight.",
            SpuriousFitWarning,
            stacklevel=_user_stacklevel(),
        )
    elif best.degenerate:
        warnings.warn(
            f"All {len(runs)} EM run(s) ended in a degenerate optimum: a component's sigma "
            "collapsed to the floor or its weight fell below the minimum (fewer effective "
            "observations than coefficients). The returned fit is degenerate; try fewer "
            "components, variance='shared', or more starts (n_init).",
            DegenerateFitWarning,
            stacklevel=_user_stacklevel(),
        )
    elif not best.converged and tol > 0:
        warnings.warn(
            f"EM did not converge within max_iter={max_iter} iterations (last log-likelihood "
            f"change {best.trace[-1] - best.trace[-2]:.3g}, tol={tol:g} per observation). "
            "Increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=_user_stacklevel(),
        )
    return n_spurious


def _user_stacklevel() -> int:
    """The stack level of the first frame outside bayes_mlr (where the user called in)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("bayes_mlr"):
        frame, level = frame.f_back, level + 1
    return level


def canonical_order(weights, intercept, coef, x_mean) -> np.ndarray:
    """The canonical component order: ascending mean prediction ``intercept + coef · x̄``,
    ties broken by descending weight."""
    return np.lexsort((-np.asarray(weights), intercept + coef @ x_mean))


def _optimum(run: _Run, scaler: Scaler, problem: _Problem, sigma, n_runs: int) -> Optimum:
    """A run's end point in the original units and the canonical component order."""
    weights, intercept, coef, sig = _to_external(scaler, run.params)
    if problem.variance == "fixed":  # exactly as given, not via the internal scale
        sig = np.full(weights.shape[0], float(sigma))
    order = canonical_order(weights, intercept, coef, scaler.x_mean)
    return Optimum(
        weights=weights[order],
        intercept=intercept[order],
        coef=coef[order],
        sigma=sig[order],
        log_likelihood=run.log_likelihood - problem.n_obs * math.log(scaler.y_scale),
        n_runs=n_runs,
        converged=run.converged,
        degenerate=run.degenerate,
        spurious_components=run.spurious[order],
    )


def _distinct_optima(runs: list[_Run], best: _Run, scaler: Scaler, problem: _Problem, sigma):
    """Group the runs by the optimum they reached, best (by ``problem.rank_key``) first.

    Two runs reached the same optimum when their log-likelihoods agree to ``OPTIMUM_LL_TOL``
    per observation and their parameters, in the canonical order on the standardised scale
    (weights, coefficients, log sigma), to ``OPTIMUM_PARAM_TOL``. Returns a list of
    ``(Optimum, runs)`` pairs, the optimum taken from the best run of its group (``best``, the
    returned fit, first). Degenerate runs are left out unless all are.
    """
    groups: list[list[_Run]] = []
    keyed = [best] + [r for r in sorted(runs, key=problem.rank_key) if r is not best]
    # A degenerate run stopped where its sigma collapsed, at no optimum: listed only when
    # every run is degenerate (the returned fit is then the best of them).
    keyed = [r for r in keyed if not r.degenerate] or keyed[:1]
    for run in keyed:
        for group in groups:
            if _same_optimum(group[0], run, problem):
                group.append(run)
                break
        else:
            groups.append([run])
    return [(_optimum(g[0], scaler, problem, sigma, len(g)), g) for g in groups]


def _same_optimum(a: _Run, b: _Run, problem: _Problem) -> bool:
    if a.params.weights.shape != b.params.weights.shape:
        return False
    if abs(a.log_likelihood - b.log_likelihood) > OPTIMUM_LL_TOL * problem.n_obs:
        return False

    def vector(p: _Params) -> np.ndarray:
        order = np.lexsort((-p.weights, p.beta[:, 0]))
        return np.concatenate([p.weights[order], p.beta[order].ravel(), np.log(p.sigma[order])])

    return bool(np.max(np.abs(vector(a.params) - vector(b.params))) <= OPTIMUM_PARAM_TOL)
