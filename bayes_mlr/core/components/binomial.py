"""Binomial components with a logit link: ``y | x, z = j ~ Binomial(m, expit(offset + x1ᵀβ_j))``.

``y`` is the number of successes out of ``m`` trials (``trials``; 0/1 data are ``m = 1``).
Fitted by one IRLS step per EM iteration (:mod:`bayes_mlr.core.components.glm`). There is no
σ: the variance is ``m p (1 − p)``.

A mixture of logistic regressions for 0/1 data with one row per unit is weakly identified:
one Bernoulli draw says little about which component it came from. Repeated trials (``m > 1``)
or groups of rows (``groups=``) give the components something to hold on to.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, gammaln

from bayes_mlr.core.components.family import NUMPY_OPS, Family
from bayes_mlr.core.components.glm import GLMComponents

__all__ = ["Binomial"]


class Binomial(Family):
    """Binomial regression components, logit link, with trials and an optional offset.

    ``log f(y | η) = y η − m log(1 + e^η) + log C(m, y)``; ``y`` counts successes out of
    ``trials`` ``m`` (default 1: 0/1 data). Components have no σ (``sigma_`` is not set).
    """

    name = "binomial"
    takes_offset = True
    takes_trials = True
    standardise_y = False
    bounded = True

    def check_response(self, y, offset, trials) -> None:
        super().check_response(y, offset, trials)
        m = np.ones_like(y) if trials is None else trials
        if trials is not None and (
            not np.all(np.isfinite(m)) or np.any(m < 1) or np.any(m != np.round(m))
        ):
            raise ValueError("trials must be positive integers (the number of trials per row).")
        if np.any(y < 0) or np.any(y != np.round(y)) or np.any(y > m):
            what = "0/1 values" if trials is None else "integers between 0 and trials"
            raise ValueError(
                f"family='binomial' needs y to be the number of successes: {what}"
                + ("; pass trials= for counts out of several trials." if trials is None else ".")
            )

    def row_columns(self, y, offset, trials) -> np.ndarray:
        """``[offset, trials, log C(m, y)]``."""
        off = np.zeros_like(y) if offset is None else offset
        m = np.ones_like(y) if trials is None else trials
        log_choose = gammaln(m + 1.0) - gammaln(y + 1.0) - gammaln(m - y + 1.0)
        return np.column_stack([off, m, log_choose])

    def offset_of(self, extra):
        return extra[:, 0]

    def trials_of(self, extra) -> np.ndarray:
        return extra[:, 1]

    def log_density(self, y, eta, extra, sigma=None, df=None, xp=NUMPY_OPS):
        # y η − m log(1 + e^η) = y log p + (m − y) log(1 − p), stably for large |η|
        m = extra[:, 1:2]
        yy = y[:, None]
        return yy * xp.log_expit(eta) + (m - yy) * xp.log_expit(-eta) + extra[:, 2:3]

    def draw(self, eta, extra, sigma, df, rng):
        m = np.broadcast_to(self.trials_of(extra), np.shape(eta)).astype(np.int64)
        return rng.binomial(m, expit(eta)).astype(float)

    def mean(self, eta, extra) -> np.ndarray:
        return extra[:, 1:2] * expit(eta)

    def variance_function(self, eta, extra) -> np.ndarray:
        p = expit(eta)
        return extra[:, 1:2] * p * (1.0 - p)

    def derivatives(self, y, eta, extra, sigma=None, df=None):
        mu = self.mean(eta, extra)
        return (y[:, None] - mu)[..., None], -self.variance_function(eta, extra)[..., None, None]

    def null_sums(self, y, extra, weight) -> np.ndarray:
        return np.array([weight @ y, weight @ extra[:, 1]])

    def null_eta(self, sums) -> float:
        """``logit(Σ w y / Σ w m)``, the success rate of the intercept-only fit (clipped)."""
        p = min(max(sums[0] / sums[1], 1e-6), 1.0 - 1e-6)
        return float(np.log(p / (1.0 - p)))

    def components(self, shared, *, variance, sigma_fixed, sigma_floor, null_beta, intercept):
        return GLMComponents(self, shared, null_beta, intercept)
