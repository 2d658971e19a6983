"""Gaussian components: ``y | x, z = j ~ N(x1ᵀβ_j, σ_j²)``, with optionally shared coefficients.

Shared coefficients (flexmix's ``FLXMRglmfix(fixed = ~ w)``, Stata's ``lcinvariant``) are design
columns whose coefficient is one number for all components. The M-step is then one joint
weighted least-squares problem, solved from the same per-component Gram matrices
``S_j = Σ_i r_ij z_i z_iᵀ`` (``z = [x1, y]``) as the plain M-step: with ``s`` the shared columns
and ``p`` the component-wise ones, the normal equations of
``Σ_j Σ_i r_ij (y_i − x_isᵀ b_s − x_ipᵀ b_pj)² / σ_j²`` are

    [Σ_j S_j[s,s]/σ_j²   S_1[s,p]/σ_1²  …] [b_s ]   [Σ_j S_j[s,y]/σ_j²]
    [S_1[p,s]/σ_1²       S_1[p,p]/σ_1²   ] [b_p1] = [S_1[p,y]/σ_1²    ]
    [  ⋮                          ⋱     ] [ ⋮  ]   [  ⋮              ]

With one σ per component this is an ECM step (Meng & Rubin 1993): the coefficients given the
current σ, then σ given the new coefficients; each step raises the expected complete-data
log-likelihood, so EM stays monotone. (flexmix pools the shared columns without the ``1/σ_j²``
factors, so its estimates are not the maximum likelihood ones when the σ_j differ.)
"""

from __future__ import annotations

import math

import numpy as np

from bayes_mlr.core.components.family import NUMPY_OPS, Family
from bayes_mlr.core.linalg import solve_weighted_least_squares, solve_weighted_least_squares_batch
from bayes_mlr.core.spurious import spurious_components
from bayes_mlr.core.stats import (
    SufficientStats,
    block_stats,
    component_log_density,
    iter_blocks,
    residual_sums,
    sum_stats,
)

__all__ = ["Gaussian", "GaussianComponents", "sigma_from_rss", "solve_components"]

_LOG_2PI = math.log(2.0 * math.pi)


class Gaussian(Family):
    """Normal linear regression components (the default family).

    ``log f(y | η, σ) = −(y − η)² / (2σ²) − log σ − log(2π) / 2``, with
    ``variance="component"``, ``"shared"`` or ``"fixed"`` σ.
    """

    name = "gaussian"
    has_sigma = True
    nuisance = ("log_sigma",)

    def log_density(self, y, eta, extra, sigma, df=None, xp=NUMPY_OPS):
        return -0.5 * ((y[:, None] - eta) / sigma) ** 2 - xp.log(sigma) - 0.5 * _LOG_2PI

    def draw(self, eta, extra, sigma, df, rng):
        return rng.normal(eta, sigma)

    def derivatives(self, y, eta, extra, sigma, df=None):
        """In ``(η, log σ)``: score ``(e/σ², e²/σ² − 1)``; Hessian
        ``[[−1/σ², −2e/σ²], [−2e/σ², −2e²/σ²]]``."""
        e = y[:, None] - eta
        inv_var = sigma**-2.0
        score = np.stack([e * inv_var, e * e * inv_var - 1.0], axis=-1)
        cross = -2.0 * e * inv_var
        hess = np.stack(
            [
                np.stack([-np.broadcast_to(inv_var, e.shape), cross], -1),
                np.stack([cross, -2.0 * e * e * inv_var], -1),
            ],
            axis=-2,
        )
        return score, hess

    def components(
        self, shared, *, variance, sigma_fixed, sigma_floor, null_beta=None, intercept=True
    ):
        return GaussianComponents(
            shared, variance=variance, sigma_fixed=sigma_fixed, sigma_floor=sigma_floor
        )


def sigma_from_rss(
    rss: np.ndarray,
    nk: np.ndarray,
    *,
    variance: str,
    sigma_fixed: float | None,
    sigma_floor: float,
) -> np.ndarray:
    """The σ M-step from weighted residual sums of squares.

    Parameters
    ----------
    rss : ndarray of shape (K,)
        ``Σ_i r_ij (y_i − x1_iᵀβ_j)²``.
    nk : ndarray of shape (K,)
        ``Σ_i r_ij``.
    variance : {"component", "shared", "fixed"}
    sigma_fixed : float or None
        The known σ for ``"fixed"``.
    sigma_floor : float
        Lower bound for estimated σ.

    Returns
    -------
    ndarray of shape (K,)
    """
    K = nk.shape[0]
    if variance == "fixed":
        return np.full(K, float(sigma_fixed))
    if variance == "shared":
        sigma = np.full(K, math.sqrt(rss.sum() / nk.sum()))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma = np.sqrt(np.where(nk > 0, rss / nk, 0.0))
    return np.maximum(sigma, sigma_floor)


class GaussianComponents:
    """Normal linear regressions, one per component, some coefficients possibly shared.

    Parameters
    ----------
    shared : ndarray of bool, shape (q,)
        Which design columns (the intercept column first when fitted) have one coefficient
        for all components.
    variance : {"component", "shared", "fixed"}
    sigma_fixed : float or None
        The known σ (on the scale of the data the model sees) for ``"fixed"``.
    sigma_floor : float
        Lower bound for estimated σ.
    """

    name = "gaussian"

    def __init__(
        self,
        shared: np.ndarray,
        *,
        variance: str,
        sigma_fixed: float | None,
        sigma_floor: float,
    ) -> None:
        self.shared = np.asarray(shared, dtype=bool)
        self.variance = variance
        self.sigma_fixed = sigma_fixed
        self.sigma_floor = sigma_floor

    @property
    def n_coef(self) -> int:
        """Design columns ``q``."""
        return int(self.shared.shape[0])

    def n_parameters(self, n_components: int) -> int:
        """Free parameters: private coefficients per component, shared ones once, the σs."""
        n_shared = int(self.shared.sum())
        n_sigma = {"component": n_components, "shared": 1, "fixed": 0}[self.variance]
        return n_components * (self.n_coef - n_shared) + n_shared + n_sigma

    def log_density(self, Z: np.ndarray, beta: np.ndarray, sigma: np.ndarray, df=None):
        """log N(y_i | x1_iᵀβ_j, σ_j²), shape (n, K), from the augmented data Z = [X1, y]."""
        return component_log_density(Z, beta, sigma).T

    def stats(
        self,
        Z: np.ndarray,
        R: np.ndarray,
        beta: np.ndarray | None,
        sigma: np.ndarray | None,
        df=None,
    ) -> SufficientStats:
        """Block sufficient statistics of the weighted M-step.

        Parameters
        ----------
        Z : ndarray of shape (n, q + 1)
            Augmented data [X1, y].
        R : ndarray of shape (n, K)
            Row weights ``r_ij = c_i γ_ij`` (sample weight times responsibility).
        beta : ndarray of shape (K, q) or None
        sigma : ndarray of shape (K,) or None
            The current parameters (None at a random start). The Gaussian statistics do not
            depend on them; a family fitted by IRLS would linearise at them.

        Returns
        -------
        SufficientStats
            ``nk`` = ``Σ_i r_ij`` and ``gram`` = ``Σ_i r_ij z_i z_iᵀ`` (K, q + 1, q + 1),
            accumulated over cache-sized row blocks; summable over parts with ``+``.
        """
        return sum_stats(
            block_stats(Z[sl], None, None, None, None, resp=R[sl]) for sl in iter_blocks(len(Z))
        )

    def m_step_from_stats(
        self, stats: SufficientStats, beta: np.ndarray | None, sigma: np.ndarray, df=None
    ) -> tuple[np.ndarray, np.ndarray, None]:
        """Weighted M-step from the statistics of :meth:`stats` (summed over any row blocks).

        Parameters
        ----------
        stats : SufficientStats
        beta : ndarray of shape (K, q) or None
            The current coefficients (not needed: the Gaussian step is in closed form).
        sigma : ndarray of shape (K,)
            The current σ, which weights the shared columns' equations.

        Returns
        -------
        beta : ndarray of shape (K, q)
        sigma : ndarray of shape (K,)
        df : None
        """
        gram, nk = stats.gram, stats.nk
        beta = solve_components(gram, self.shared, sigma)
        rss = residual_sums(gram, beta)  # Σ_i r_ij (y_i - x1_iᵀβ_j)²
        new_sigma = sigma_from_rss(
            rss,
            nk,
            variance=self.variance,
            sigma_fixed=self.sigma_fixed,
            sigma_floor=self.sigma_floor,
        )
        return beta, new_sigma, None

    def start_params(self, n_components: int):
        """``(sigma, df)`` of a random start: unit σ on the standardised scale."""
        return np.ones(n_components), None

    def spurious(self, stats, sigma: np.ndarray) -> np.ndarray:
        """The trust rule of :mod:`bayes_mlr.core.spurious` (few rows, a tiny σ)."""
        return spurious_components(stats.nk, sigma, self.n_coef, variance=self.variance)


def solve_components(gram: np.ndarray, shared: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The coefficients (K, q) from the per-component normal equations ``gram`` (K, q + 1,
    q + 1), ``[[A_j, b_j], [·, ·]]``, columns ``shared`` solved jointly with weights 1/σ_j²."""
    K, q = gram.shape[0], shared.shape[0]
    if not shared.any():
        return solve_weighted_least_squares_batch(gram[:, :q, :q], gram[:, :q, q])
    s, p = np.flatnonzero(shared), np.flatnonzero(~shared)
    ns, npv = s.size, p.size
    scaled = gram / (sigma**2)[:, None, None]
    size = ns + K * npv
    A = np.zeros((size, size))
    rhs = np.zeros(size)
    A[:ns, :ns] = scaled[:, s][:, :, s].sum(axis=0)
    rhs[:ns] = scaled[:, s, q].sum(axis=0)
    for j in range(K):
        blk = slice(ns + j * npv, ns + (j + 1) * npv)
        A[blk, blk] = scaled[j][np.ix_(p, p)]
        A[:ns, blk] = scaled[j][np.ix_(s, p)]
        A[blk, :ns] = A[:ns, blk].T
        rhs[blk] = scaled[j][p, q]
    theta = solve_weighted_least_squares(A, rhs)
    beta = np.empty((K, q))
    beta[:, s] = theta[:ns]
    beta[:, p] = theta[ns:].reshape(K, npv)
    return beta
