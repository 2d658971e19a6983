"""Generalised linear model components with a canonical link: the EM by Newton (IRLS) steps.

For a family with ``log f(y | η) = y η − m b(η) + c(y)`` (Poisson: ``m = 1``, ``b = exp``;
binomial: ``m`` trials, ``b(η) = log(1 + e^η)``) the expected complete-data log-likelihood of
component ``j`` with row weights ``r_ij`` is concave in ``β_j``, with gradient and Hessian

    g_j = Σ_i r_ij (y_i − μ_ij) x1_i,        H_j = −Σ_i r_ij v_ij x1_i x1_iᵀ,

``μ = m b'(η)``, ``v = m b''(η)``. Each EM iteration takes **one Newton step** from the current
``β_j``, written as a weighted least-squares problem (iteratively reweighted least squares):
``β_new`` solves ``(Σ r v x1 x1ᵀ) β = Σ r v x1 z`` with the working response
``z = η − offset + (y − μ) / v``. These are the same per-component Gram matrices as the
Gaussian M-step, so shared columns are solved jointly by the same code
(:func:`bayes_mlr.core.components.gaussian.solve_components`).

One Newton step per iteration is Lange's EM gradient algorithm (Lange 1995), which converges
at EM's rate near the optimum. A Newton step can overshoot far from it; the EM loop
(:mod:`bayes_mlr.core.structured`) then halves the step until the observed log-likelihood does
not decrease (the step is an ascent direction of the observed log-likelihood, whose gradient
equals that of the expected complete-data log-likelihood at the current point), so the
log-likelihood stays monotone.

Two guards follow the trust rules of :mod:`bayes_mlr.core.spurious`:

* a component whose fitted mean collapses to the boundary (a Poisson mean → 0 on rows of zero
  counts, a binomial probability → 0 or 1) has an infinite linear predictor: when it rests on few
  rows it is *spurious*; when large, it is reported as separation;
* a slope above ``SEPARATION_SLOPE`` on the standardised scale (complete or quasi-complete
  separation within a component) is reported as separation (:class:`~bayes_mlr.SeparationWarning`).

Reference: Lange, K. (1995). A gradient algorithm locally equivalent to the EM algorithm.
*JRSS B* 57, 425-437.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_mlr.core.components.gaussian import solve_components
from bayes_mlr.core.spurious import small_components
from bayes_mlr.core.stats import iter_blocks

__all__ = ["COLLAPSE_RATIO", "SEPARATION_SLOPE", "GLMComponents", "GLMStats"]

#: A component is collapsed when its fitted mean (per trial) is below this fraction of the data's
#: (or its failures' fraction is, for a binomial): e.g. a Poisson mean 1e-6 times the mean count.
COLLAPSE_RATIO = 1e-6
#: A slope (change of the linear predictor per standard deviation of its column) above this
#: means separation: exp(15) ~ 3e6 times the mean or odds per standard deviation.
SEPARATION_SLOPE = 15.0


@dataclass
class GLMStats:
    """Summable statistics of one Newton step.

    Attributes
    ----------
    nk : ndarray of shape (K,)
        ``Σ_i r_ij``.
    gram : ndarray of shape (K, q + 1, q + 1)
        ``[[Σ r v x1 x1ᵀ, Σ r v x1 z], [·, 0]]``: the IRLS normal equations.
    fitted, observed, size : ndarray of shape (K,)
        ``Σ r μ``, ``Σ r y`` and ``Σ r m`` (trials; 1 per row for a Poisson).
    """

    nk: np.ndarray
    gram: np.ndarray
    fitted: np.ndarray
    observed: np.ndarray
    size: np.ndarray

    def __add__(self, other: GLMStats) -> GLMStats:
        return GLMStats(
            self.nk + other.nk,
            self.gram + other.gram,
            self.fitted + other.fitted,
            self.observed + other.observed,
            self.size + other.size,
        )


class GLMComponents:
    """Components of a canonical-link GLM family, fitted by one IRLS step per EM iteration.

    Parameters
    ----------
    family : Family
        Supplies ``log_density``, ``mean``, ``variance_function`` and the row columns.
    shared : ndarray of bool, shape (q,)
        Design columns whose coefficient all components share.
    null_beta : ndarray of shape (q,)
        The coefficients a random start linearises at (the intercept-only fit).
    intercept : bool
        Whether column 0 is the intercept (not a slope, for the separation check).
    """

    variance = "none"
    sigma_floor = 0.0
    exact_m_step = False  # a Newton step may overshoot: the loop halves it

    def __init__(self, family, shared: np.ndarray, null_beta: np.ndarray, intercept: bool) -> None:
        self.family = family
        self.intercept = bool(intercept)
        self.shared = np.asarray(shared, dtype=bool)
        self.null_beta = np.asarray(null_beta, dtype=float)

    @property
    def n_coef(self) -> int:
        return int(self.shared.shape[0])

    def n_parameters(self, n_components: int) -> int:
        n_shared = int(self.shared.sum())
        return n_components * (self.n_coef - n_shared) + n_shared

    def _split(self, Z: np.ndarray):
        q = self.n_coef
        return Z[:, :q], Z[:, q], Z[:, q + 1 :]

    def _eta(self, X1, extra, beta) -> np.ndarray:
        return X1 @ beta.T + np.reshape(self.family.offset_of(extra), (-1, 1))

    def log_density(self, Z: np.ndarray, beta: np.ndarray, sigma=None, df=None) -> np.ndarray:
        """``log f(y_i | η_ij)``, shape (n, K)."""
        X1, y, extra = self._split(Z)
        return self.family.log_density(y, self._eta(X1, extra, beta), extra, None, None)

    def stats(self, Z: np.ndarray, R: np.ndarray, beta, sigma=None, df=None) -> GLMStats:
        """The IRLS normal equations at ``beta`` (the null fit when None) with row weights
        ``R`` (n, K), accumulated over row blocks."""
        K = R.shape[1]
        q = self.n_coef
        if beta is None:
            beta = np.broadcast_to(self.null_beta, (K, q))
        gram = np.zeros((K, q + 1, q + 1))
        fitted, observed, size = np.zeros(K), np.zeros(K), np.zeros(K)
        for sl in iter_blocks(len(Z)):
            X1, y, extra = self._split(Z[sl])
            eta = self._eta(X1, extra, beta)
            mu = self.family.mean(eta, extra)
            v = np.maximum(self.family.variance_function(eta, extra), 1e-300)
            r = R[sl]
            rv = r * v
            # Σ r v x1 x1ᵀ and Σ r v x1 z = Σ r (y − μ) x1 + (Σ r v x1 x1ᵀ) β
            G = np.matmul(X1.T, rv.T[:, :, None] * X1)
            gram[:, :q, :q] += G
            gram[:, :q, q] += (r * (y[:, None] - mu)).T @ X1 + np.einsum("kab,kb->ka", G, beta)
            fitted += np.einsum("ik,ik->k", r, mu)
            observed += y @ r
            size += self.family.trials_of(extra) @ r
        gram[:, q, :q] = gram[:, :q, q]
        return GLMStats(R.sum(axis=0), gram, fitted, observed, size)

    def m_step_from_stats(self, stats: GLMStats, beta, sigma, df=None):
        """One Newton step for every component (shared columns jointly): ``(beta, sigma, df)``
        with ``sigma`` passed through."""
        return solve_components(stats.gram, self.shared, np.ones(stats.nk.shape[0])), sigma, None

    def start_params(self, n_components: int):
        """``(sigma, df)`` of a start: unit placeholders (the family has no σ)."""
        return np.ones(n_components), None

    # -- guards --------------------------------------------------------------------------------

    def collapsed(self, stats: GLMStats) -> np.ndarray:
        """Components whose fitted mean sits at the boundary, shape (K,) of bool."""
        total = float(stats.observed.sum()) / max(float(stats.size.sum()), 1e-300)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(stats.size > 0, stats.fitted / stats.size, total)
        low = rate < COLLAPSE_RATIO * max(total, 1e-300)
        high = self.family.bounded and (1.0 - rate) < COLLAPSE_RATIO * max(1.0 - total, 1e-300)
        return low | high

    def spurious(self, stats: GLMStats, sigma) -> np.ndarray:
        """Collapsed components that rest on few rows (the trust rule's size condition)."""
        return self.collapsed(stats) & small_components(stats.nk, self.n_coef)

    def separated(self, stats: GLMStats, beta: np.ndarray) -> np.ndarray:
        """Components with a diverging linear predictor: collapsed, or a slope (per standard
        deviation) above ``SEPARATION_SLOPE``; shape (K,) of bool."""
        slopes = np.abs(beta[:, int(self.intercept) :])
        steep = slopes.max(axis=1, initial=0.0) > SEPARATION_SLOPE
        return steep | self.collapsed(stats)
