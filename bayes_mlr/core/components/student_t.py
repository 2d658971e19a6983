"""Student-t components: ``y | x, z = j ~ t_ν_j(x1ᵀβ_j, σ_j)``, robust to gross outliers.

The t density is a scale mixture of normals: ``y | u ~ N(x1ᵀβ_j, σ_j² / u)`` with
``u ~ Gamma(ν_j/2, ν_j/2)``. Given the component, the E-step weights each row by

    u_ij = (ν_j + 1) / (ν_j + δ_ij²),    δ_ij = (y_i − x1_iᵀβ_j) / σ_j,

so outliers (large ``δ``) get small weights. An iteration is then (Peel & McLachlan 2000;
Yao, Wei & Yu 2014):

* weighted least squares with weights ``r_ij u_ij`` (the Gaussian M-step on ``u``-weighted Gram
  matrices, shared columns included) and ``σ_j² = Σ r u e² / Σ r`` -- the ECM steps of the
  scale-mixture augmentation;
* ``ν_j`` maximising ``Σ_i r_ij log t(y_i | x1_iᵀβ_j, σ_j, ν)`` with only the labels as missing
  data (the "alternating" ECM of Meng & van Dyk 1997; Liu & Rubin's ECME in spirit). The u-based
  CM step for ν converges very slowly when the likelihood in ν is flat (thousands of
  iterations on 300 rows with a few outliers); this one converges in tens. Each pass evaluates
  the objective on a log-spaced grid around the current ν_j (:func:`df_grid`, summable over
  parts of the data), and the step takes the vertex of a parabola through the best three
  points.

The two steps are taken together; the EM loop halves the joint step in the rare case where the
log-likelihood would decrease, so it never does. ``ν`` may instead be fixed by the user
(``StudentT(df=4)``), and is kept in ``[DF_MIN, DF_MAX]``; at ``DF_MAX`` a component is, for
practical purposes, Gaussian.

References
----------
Peel, D. and McLachlan, G. J. (2000). Robust mixture modelling using the t distribution.
*Statistics and Computing* 10, 339-348.
Meng, X.-L. and van Dyk, D. (1997). The EM algorithm -- an old folk-song sung to a fast new
tune. *JRSS B* 59, 511-567.
Yao, W., Wei, Y. and Yu, C. (2014). Robust mixture regression using the t-distribution.
*Computational Statistics & Data Analysis* 71, 116-127.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

from bayes_mlr.core.components.family import NUMPY_OPS, Family
from bayes_mlr.core.components.gaussian import GaussianComponents, sigma_from_rss, solve_components
from bayes_mlr.core.stats import block_stats, iter_blocks, residual_sums

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

    def log_density(self, y, eta, extra, sigma, df, xp=NUMPY_OPS):
        delta2 = ((y[:, None] - eta) / sigma) ** 2
        return (
            xp.gammaln((df + 1.0) / 2.0)
            - xp.gammaln(df / 2.0)
            - 0.5 * xp.log(df * np.pi)
            - xp.log(sigma)
            - 0.5 * (df + 1.0) * xp.log1p(delta2 / df)
        )

    def draw(self, eta, extra, sigma, df, rng):
        return eta + sigma * rng.standard_t(df)

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


#: The ν grid of a pass: ν_j exp(DF_GRID_STEP k), k = −DF_GRID_HALF .. DF_GRID_HALF.
DF_GRID_STEP, DF_GRID_HALF = 0.15, 6


def df_grid(df: np.ndarray) -> np.ndarray:
    """The ν values (K, 2 DF_GRID_HALF + 1) at which a pass evaluates the ν objective: a
    log-spaced grid around each current ν_j (which is its middle point), clipped to
    [DF_MIN, DF_MAX]."""
    steps = DF_GRID_STEP * np.arange(-DF_GRID_HALF, DF_GRID_HALF + 1)
    return np.clip(np.asarray(df, float)[:, None] * np.exp(steps), DF_MIN, DF_MAX)


@dataclass
class TStats:
    """Summable statistics of one pass: ``nk = Σ r``, ``gram = Σ r u z zᵀ`` and the ν objective
    ``objective[j, g] = Σ_i r_ij log t(y_i | x1_iᵀβ_j, σ_j, ν_jg)`` on :func:`df_grid`."""

    nk: np.ndarray
    gram: np.ndarray
    objective: np.ndarray

    def __add__(self, other: TStats) -> TStats:
        return TStats(self.nk + other.nk, self.gram + other.gram, self.objective + other.objective)


class StudentTComponents(GaussianComponents):
    """EM for Student-t components (this module's docstring); σ as in the Gaussian model."""

    exact_m_step = False  # the joint (β, σ, ν) step may overshoot: the loop halves it

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
        grid = None if beta is None or self.df_fixed is not None else df_grid(df)
        objective = np.zeros((K, 0 if grid is None else grid.shape[1]))
        for sl in iter_blocks(len(Z)):
            r = R[sl]
            if beta is None:  # a random start: the Gaussian step (u = 1)
                u = np.ones_like(r)
            else:
                d2 = ((Z[sl, q][:, None] - Z[sl, :q] @ beta.T) / sigma) ** 2
                u = (df + 1.0) / (df + d2)
                if grid is not None:  # Σ r log t over the grid (the σ term does not vary)
                    objective += _t_kernel(d2, r, grid)
            gram += block_stats(Z[sl], None, None, None, None, resp=r * u).gram
        return TStats(R.sum(axis=0), gram, objective)

    def m_step_from_stats(self, stats: TStats, beta, sigma, df=None):
        gram, nk = stats.gram, stats.nk
        beta = solve_components(gram, self.shared, sigma)
        new_sigma = sigma_from_rss(
            residual_sums(gram, beta),
            nk,
            variance=self.variance,
            sigma_fixed=self.sigma_fixed,
            sigma_floor=self.sigma_floor,
        )
        return beta, new_sigma, self.update_df(stats, df)

    def update_df(self, stats: TStats, df) -> np.ndarray:
        """The CM-step for ν: the maximum over ν_j of the ν objective of the pass (a parabola
        through the best grid point and its neighbours, in log ν); fixed ν returned as is."""
        K = stats.nk.shape[0]
        if self.df_fixed is not None:
            return np.full(K, self.df_fixed)
        if df is None or stats.objective.shape[1] == 0:
            return np.full(K, DF_START) if df is None else np.asarray(df, float)
        grid = df_grid(df)
        log_grid = np.log(grid)
        new = np.asarray(df, float).copy()
        for j in range(K):
            f = stats.objective[j]
            if stats.nk[j] <= 0 or not np.all(np.isfinite(f)):
                continue
            b = int(np.argmax(f))
            x = log_grid[j, b - 1 : b + 2] if 0 < b < f.size - 1 else None
            if x is not None and x[0] < x[1] < x[2]:  # three distinct points (not clipped)
                x0, x1, x2 = x
                f0, f1, f2 = f[b - 1 : b + 2]
                denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
                a2 = (x2 * (f1 - f0) + x1 * (f0 - f2) + x0 * (f2 - f1)) / denom
                a1 = (x2**2 * (f0 - f1) + x1**2 * (f2 - f0) + x0**2 * (f1 - f2)) / denom
                vertex = -a1 / (2.0 * a2) if a2 < 0 else log_grid[j, b]
                new[j] = np.exp(np.clip(vertex, x0, x2))
            else:
                new[j] = grid[j, b]
        return np.clip(new, DF_MIN, DF_MAX)

    def start_params(self, n_components: int):
        df = DF_START if self.df_fixed is None else self.df_fixed
        return np.ones(n_components), np.full(n_components, df)


def _t_kernel(d2: np.ndarray, r: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``Σ_i r_ij [log Γ((ν+1)/2) − log Γ(ν/2) − log(νπ)/2 − (ν+1)/2 log(1 + δ_ij²/ν)]`` for
    every ``ν = grid[j, g]``, shape (K, G): the t log density without its ``−log σ_j``."""
    nu = grid[None, :, :]  # (1, K, G)
    const = gammaln((grid + 1.0) / 2.0) - gammaln(grid / 2.0) - 0.5 * np.log(grid * np.pi)
    log_kernel = -0.5 * (nu + 1.0) * np.log1p(d2[:, :, None] / nu)  # (n, K, G)
    return np.einsum("ik,ikg->kg", r, log_kernel) + r.sum(axis=0)[:, None] * const
