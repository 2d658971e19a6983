"""Student-t components: ``y | x, z = j ~ t_ν_j(x1ᵀβ_j, σ_j)``, robust to gross outliers.

The t density is a scale mixture of normals: ``y | u ~ N(x1ᵀβ_j, σ_j² / u)`` with
``u ~ Gamma(ν_j/2, ν_j/2)``. Given the component, the E-step weights each row by

    u_ij = (ν_j + 1) / (ν_j + δ_ij²),    δ_ij = (y_i − x1_iᵀβ_j) / σ_j,

so outliers (large ``δ``) get small weights. The M-step is then ECM (Peel & McLachlan 2000;
Yao, Wei & Yu 2014): weighted least squares with weights ``r_ij u_ij`` (the Gaussian M-step on
``u``-weighted Gram matrices, shared columns included), ``σ_j² = Σ r u e² / Σ r``, and
``ν_j`` the root of

    1 − ψ(ν/2) + log(ν/2) + Σ_i r_ij (log u_ij − u_ij) / n_j + ψ((ν_old+1)/2) − log((ν_old+1)/2) = 0

(or ``ν`` fixed by the user: ``StudentT(df=4)``). Every step raises the expected complete-data
log-likelihood, so the log-likelihood never decreases. ``ν`` is kept in ``[DF_MIN, DF_MAX]``;
at ``DF_MAX`` a component is, for practical purposes, Gaussian.

References
----------
Peel, D. and McLachlan, G. J. (2000). Robust mixture modelling using the t distribution.
*Statistics and Computing* 10, 339-348.
Yao, W., Wei, Y. and Yu, C. (2014). Robust mixture regression using the t-distribution.
*Computational Statistics & Data Analysis* 71, 116-127.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import digamma, gammaln

from bayes_mlr.core.components.family import Family
from bayes_mlr.core.components.gaussian import GaussianComponents, sigma_from_rss, solve_components
from bayes_mlr.core.stats import block_stats, iter_blocks

__all__ = ["DF_MAX", "DF_MIN", "StudentT", "StudentTComponents"]

#: Bounds of the estimated degrees of freedom.
DF_MIN, DF_MAX = 0.5, 200.0
#: Start of an estimated ν (a moderately heavy tail).
DF_START = 10.0


class StudentT(Family):
    """Student-t regression components with scale ``σ_j`` and degrees of freedom ``ν_j``.

    Parameters
    ----------
    df : float, optional
        Fixed degrees of freedom for every component; by default each ``ν_j`` is estimated
        (``df_``).
    """

    name = "student_t"
    has_sigma = True
    nuisance = ("log_sigma", "log_df")

    def __init__(self, df: float | None = None) -> None:
        if df is not None:
            if isinstance(df, bool) or not isinstance(df, numbers.Real):
                raise TypeError(f"df must be a positive number or None; got {df!r}.")
            if not (np.isfinite(df) and df > 0):
                raise ValueError(f"df must be a positive finite number; got {df!r}.")
            df = float(df)
        self.df = df

    @property
    def has_df(self) -> bool:
        return True

    def get_params(self) -> dict:
        return {"df": self.df}

    def n_nuisance(self, n_components: int, variance: str) -> int:
        return super().n_nuisance(n_components, variance) + (n_components if self.df is None else 0)

    def log_density(self, y, eta, extra, sigma, df) -> np.ndarray:
        delta2 = ((y[:, None] - eta) / sigma) ** 2
        return (
            gammaln((df + 1.0) / 2.0)
            - gammaln(df / 2.0)
            - 0.5 * np.log(df * np.pi)
            - np.log(sigma)
            - 0.5 * (df + 1.0) * np.log1p(delta2 / df)
        )

    def _score(self, y, eta, log_sigma, log_df) -> np.ndarray:
        sigma, df = np.exp(log_sigma), np.exp(log_df)
        delta = (y[:, None] - eta) / sigma
        d2 = delta * delta
        u = (df + 1.0) / (df + d2)
        s_df = (
            0.5
            * df
            * (
                digamma((df + 1.0) / 2.0)
                - digamma(df / 2.0)
                - 1.0 / df
                - np.log1p(d2 / df)
                + u * d2 / df
            )
        )
        return np.stack([u * delta / sigma, u * d2 - 1.0, s_df], axis=-1)

    def derivatives(self, y, eta, extra, sigma, df):
        """In ``(η, log σ, log ν)``: the score in closed form; the Hessian by central
        differences of the score (steps 1e-5 relative; symmetrised), accurate to about 1e-9."""
        eta = np.asarray(eta, float)
        base = [
            eta,
            np.broadcast_to(np.log(sigma), eta.shape),
            np.broadcast_to(np.log(df), eta.shape),
        ]
        score = self._score(y, *base)
        steps = [1e-5 * np.broadcast_to(sigma, eta.shape), 1e-5, 1e-5]
        cols = []
        for k, h in enumerate(steps):
            up, down = list(base), list(base)
            up[k] = base[k] + h
            down[k] = base[k] - h
            cols.append(
                (self._score(y, *up) - self._score(y, *down)) / (2.0 * np.asarray(h)[..., None])
            )
        hess = np.stack(cols, axis=-1)
        return score, 0.5 * (hess + np.swapaxes(hess, -1, -2))

    def components(
        self, shared, *, variance, sigma_fixed, sigma_floor, null_beta=None, intercept=True
    ):
        return StudentTComponents(
            shared,
            variance=variance,
            sigma_fixed=sigma_fixed,
            sigma_floor=sigma_floor,
            df_fixed=self.df,
        )


@dataclass
class TStats:
    """Summable ECM statistics: ``nk = Σ r``, ``gram = Σ r u z zᵀ``, ``log_u = Σ r (log u − u)``."""

    nk: np.ndarray
    gram: np.ndarray
    log_u: np.ndarray

    def __add__(self, other: TStats) -> TStats:
        return TStats(self.nk + other.nk, self.gram + other.gram, self.log_u + other.log_u)


class StudentTComponents(GaussianComponents):
    """ECM for Student-t components (this module's docstring); σ as in the Gaussian model."""

    def __init__(self, shared, *, variance, sigma_fixed, sigma_floor, df_fixed=None) -> None:
        super().__init__(
            shared, variance=variance, sigma_fixed=sigma_fixed, sigma_floor=sigma_floor
        )
        self.df_fixed = df_fixed
        self.family = StudentT(df_fixed)

    def n_parameters(self, n_components: int) -> int:
        return super().n_parameters(n_components) + (n_components if self.df_fixed is None else 0)

    def log_density(self, Z, beta, sigma, df=None) -> np.ndarray:
        q = self.n_coef
        return self.family.log_density(Z[:, q], Z[:, :q] @ beta.T, None, sigma, df)

    def stats(self, Z, R, beta, sigma, df=None) -> TStats:
        K = R.shape[1]
        q = self.n_coef
        gram = np.zeros((K, q + 1, q + 1))
        log_u = np.zeros(K)
        for sl in iter_blocks(len(Z)):
            r = R[sl]
            if beta is None:  # a random start: the Gaussian step (u = 1)
                u = np.ones_like(r)
            else:
                d2 = ((Z[sl, q][:, None] - Z[sl, :q] @ beta.T) / sigma) ** 2
                u = (df + 1.0) / (df + d2)
            gram += block_stats(Z[sl], None, None, None, None, resp=r * u).gram
            log_u += np.einsum("ik,ik->k", r, np.log(u) - u)
        return TStats(R.sum(axis=0), gram, log_u)

    def m_step_from_stats(self, stats: TStats, beta, sigma, df=None):
        gram, nk = stats.gram, stats.nk
        beta = solve_components(gram, self.shared, sigma)
        q = self.n_coef
        G, b, yy = gram[:, :q, :q], gram[:, :q, q], gram[:, q, q]
        rss = yy - 2.0 * np.einsum("kq,kq->k", beta, b) + np.einsum("kq,kqr,kr->k", beta, G, beta)
        new_sigma = sigma_from_rss(
            np.maximum(rss, 0.0),
            nk,
            variance=self.variance,
            sigma_fixed=self.sigma_fixed,
            sigma_floor=self.sigma_floor,
        )
        return beta, new_sigma, self.update_df(stats, df)

    def update_df(self, stats: TStats, df) -> np.ndarray:
        """The CM-step for ν (fixed ν returned as is)."""
        K = stats.nk.shape[0]
        if self.df_fixed is not None:
            return np.full(K, self.df_fixed)
        df = np.full(K, DF_START) if df is None else np.asarray(df, float)
        new = df.copy()
        for j in range(K):
            if stats.nk[j] <= 0:
                continue
            half = (df[j] + 1.0) / 2.0
            c = 1.0 + stats.log_u[j] / stats.nk[j] + digamma(half) - np.log(half)

            def equation(log_nu, c=c):
                nu = np.exp(log_nu)
                return c - digamma(nu / 2.0) + np.log(nu / 2.0)

            lo, hi = np.log(DF_MIN), np.log(DF_MAX)
            f_lo, f_hi = equation(lo), equation(hi)
            if f_hi > 0:  # even the largest ν leaves the equation positive: Gaussian-like
                new[j] = DF_MAX
            elif f_lo < 0:
                new[j] = DF_MIN
            else:
                new[j] = np.exp(brentq(equation, lo, hi, xtol=1e-12))
        return new

    def start_params(self, n_components: int):
        df = DF_START if self.df_fixed is None else self.df_fixed
        return np.ones(n_components), np.full(n_components, df)
