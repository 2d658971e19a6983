"""Warnings and errors raised by bayes_mlr.

They subclass the standard classes (``UserWarning``, ``ValueError``) so that code catching the
standard ones keeps working, while users can filter ours precisely.
"""

from __future__ import annotations

__all__ = [
    "ConvergenceWarning",
    "DegenerateFitWarning",
    "MultimodalPosteriorWarning",
    "NotFittedError",
    "SeparationWarning",
    "SpuriousFitWarning",
]


class ConvergenceWarning(UserWarning):
    """The best EM run stopped at ``max_iter`` before meeting ``tol``."""


class DegenerateFitWarning(UserWarning):
    """Every EM run ended in a degenerate optimum (a component with a collapsed sigma or weight)."""


class SpuriousFitWarning(DegenerateFitWarning):
    """Every EM run ended with a spurious component: a handful of observations fitted with a
    sigma far below the other components' (McLachlan & Peel 2000, §3.10). The best such run is
    returned and flagged (``EMResult.spurious``); see :mod:`bayes_mlr.core.spurious` for the
    rule."""


class SeparationWarning(UserWarning):
    """Some maximum likelihood coefficients are infinite, so EM stopped at large finite values
    whose size and standard errors mean nothing. Either the concomitant variables predict the
    components (almost) perfectly (the regression coefficients of each component may still be
    fine), or, for a Poisson or binomial family, a component's linear predictor diverges:
    complete or quasi-complete separation within the component, or a fitted mean collapsing to
    the boundary (a Poisson mean of 0, a probability of 0 or 1). The fit is flagged
    (``EMResult.separated``)."""


class MultimodalPosteriorWarning(UserWarning):
    """The posterior has several modes that the chains do not move between, or EM's estimate
    is not the highest optimum found: no single mode summarises the posterior
    (:func:`bayes_mlr.diagnose` names the modes and their estimated shares)."""


class NotFittedError(ValueError, AttributeError):
    """An estimator method that needs a fitted model was called before ``fit``."""
