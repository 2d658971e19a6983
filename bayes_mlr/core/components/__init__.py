"""Component models: the distribution of ``y`` given ``x`` within one component.

A component model gives the EM loop (:mod:`bayes_mlr.core.structured`) what it needs and
nothing more:

- ``log_density(Z, beta, sigma)``: the log density of every row under every component (n, K);
- ``stats(Z, R, beta, sigma)``: block statistics of the weighted M-step with row weights
  ``R = c γ`` (n, K), an object that adds up over parts of the data (``+``) and has ``nk``;
- ``m_step_from_stats(stats, beta, sigma)``: new ``beta``, ``sigma`` that never lower the
  expected complete-data log-likelihood (a closed form for the Gaussian; one IRLS step
  linearised at ``beta`` would serve a GLM family);
- ``n_parameters(K)`` and ``n_coef``.

:class:`GaussianComponents` is the normal linear regression, with columns whose coefficient may
be shared by all components; a new family is one new module with these methods.
"""

from bayes_mlr.core.components.gaussian import GaussianComponents, sigma_from_rss

__all__ = ["GaussianComponents", "sigma_from_rss"]
