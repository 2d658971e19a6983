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

from bayes_mlr.core.linalg import solve_weighted_least_squares
from bayes_mlr.core.stats import (
    SufficientStats,
    block_stats,
    component_log_density,
    iter_blocks,
    sum_stats,
)

__all__ = ["GaussianComponents", "sigma_from_rss"]


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

    def log_density(self, Z: np.ndarray, beta: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """log N(y_i | x1_iᵀβ_j, σ_j²), shape (n, K), from the augmented data Z = [X1, y]."""
        return component_log_density(Z, beta, sigma).T

    def stats(
        self, Z: np.ndarray, R: np.ndarray, beta: np.ndarray | None, sigma: np.ndarray | None
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
        self, stats: SufficientStats, beta: np.ndarray | None, sigma: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
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
        """
        gram, nk = stats.gram, stats.nk
        beta = self.solve(gram, sigma)
        q = self.n_coef
        G, b, yy = gram[:, :q, :q], gram[:, :q, q], gram[:, q, q]
        # Σ_i r_ij (y_i - x1_iᵀβ_j)²; the three-term form stays valid for minimum-norm solutions.
        rss = yy - 2.0 * np.einsum("kq,kq->k", beta, b) + np.einsum("kq,kqr,kr->k", beta, G, beta)
        rss = np.maximum(rss, 0.0)
        new_sigma = sigma_from_rss(
            rss,
            nk,
            variance=self.variance,
            sigma_fixed=self.sigma_fixed,
            sigma_floor=self.sigma_floor,
        )
        return beta, new_sigma

    def solve(self, gram: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """The coefficients (K, q) from the Gram matrices (K, q + 1, q + 1) at the given σ."""
        K, q = gram.shape[0], self.n_coef
        if not self.shared.any():
            return np.stack([solve_weighted_least_squares(g[:q, :q], g[:q, q]) for g in gram])
        s, p = np.flatnonzero(self.shared), np.flatnonzero(~self.shared)
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
