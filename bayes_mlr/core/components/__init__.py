"""Component models: the distribution of ``y`` given ``x`` within one component.

A component model gives the EM loop (:mod:`bayes_mlr.core.structured`) what it needs and
nothing more: the log density of every row under every component (``log_density``), a weighted
M-step from row weights ``c_i γ_ij`` (``m_step``) that never lowers the expected complete-data
log-likelihood, and its parameter count. :class:`GaussianComponents` is the normal linear
regression, with columns whose coefficient may be shared by all components; a new family is
one new module.
"""

from bayes_mlr.core.components.gaussian import GaussianComponents, sigma_from_rss

__all__ = ["GaussianComponents", "sigma_from_rss"]
