"""Poisson components with a log link: ``y | x, z = j ~ Poisson(exp(offset + x1ᵀβ_j))``.

Counts of events in an exposure (hours observed, person-years, area) enter with
``offset = log(exposure)``. Fitted by one IRLS step per EM iteration
(:mod:`bayes_mlr.core.components.glm`). There is no σ: the variance equals the mean.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from bayes_mlr.core.components.family import NUMPY_OPS, Family
from bayes_mlr.core.components.glm import GLMComponents

__all__ = ["Poisson"]

# exp(η) overflows past ~709; a linear predictor this large is a run going astray.
_ETA_MAX = 700.0


class Poisson(Family):
    """Poisson regression components, log link, with an optional offset.

    ``log f(y | η) = y η − exp(η) − log y!`` with ``η = offset + x1ᵀβ_j``; ``y`` must be
    non-negative integers. Components have no σ (``sigma_`` is not set).

    Examples
    --------
    >>> from bayes_mlr import MixtureOfRegressions, Poisson
    >>> MixtureOfRegressions(2, family=Poisson()).family
    Poisson()
    """

    name = "poisson"
    takes_offset = True
    standardise_y = False
    bounded = False

    def check_response(self, y, offset, trials) -> None:
        super().check_response(y, offset, trials)
        if np.any(y < 0) or np.any(y != np.round(y)):
            raise ValueError(
                "family='poisson' needs y to be counts (non-negative integers); got "
                f"{'negative' if np.any(y < 0) else 'non-integer'} values."
            )

    def row_columns(self, y, offset, trials) -> np.ndarray:
        """``[offset, −log y!]``."""
        off = np.zeros_like(y) if offset is None else offset
        return np.column_stack([off, -gammaln(y + 1.0)])

    def offset_of(self, extra):
        return extra[:, 0]

    def trials_of(self, extra) -> np.ndarray:
        return np.ones(extra.shape[0])

    def log_density(self, y, eta, extra, sigma=None, df=None, xp=NUMPY_OPS):
        eta = xp.minimum(eta, _ETA_MAX)
        return y[:, None] * eta - xp.exp(eta) + extra[:, 1:2]

    def draw(self, eta, extra, sigma, df, rng):
        return rng.poisson(self.mean(eta)).astype(float)

    def mean(self, eta, extra=None) -> np.ndarray:
        return np.exp(np.minimum(eta, _ETA_MAX))

    def variance_function(self, eta, extra) -> np.ndarray:
        return self.mean(eta)

    def derivatives(self, y, eta, extra, sigma=None, df=None):
        mu = self.mean(eta)
        return (y[:, None] - mu)[..., None], -mu[..., None, None]

    def null_sums(self, y, extra, weight) -> np.ndarray:
        return np.array([weight @ y, weight @ np.exp(extra[:, 0])])

    def null_eta(self, sums) -> float:
        """``log(Σ w y / Σ w exposure)``: the rate of the intercept-only fit."""
        return float(np.log(max(sums[0], 1e-10) / sums[1]))

    def components(self, shared, *, variance, sigma_fixed, sigma_floor, null_beta, intercept):
        return GLMComponents(self, shared, null_beta, intercept)
