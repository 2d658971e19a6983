"""Mixing models: the prior probability of each component, per group of rows.

A mixing model holds its design ``W`` of shape (n_groups, r1), whose first column is ones, and
its coefficients ``gate`` of shape (n_components, r1), row 0 all zeros (component 0 is the
reference). The prior weights are ``π_gj = softmax_j(W_g · gate_j)``. The EM loop
(:mod:`bayes_mlr.core.structured`) uses only these methods:

- ``log_prior_of(W, gate)``: log π of some groups, shape (G, n_components) (or (1, K) when
  it is the same for all), evaluated inside each part of the data;
- ``reduce(gamma, c)`` and ``combine(parts)``: what the M-step needs of the responsibilities,
  per part and joined (the sums ``Σ c γ`` for constant weights, all of γ for a logit);
- ``m_step(stats, gate)``: new coefficients, never lowering ``Σ_g c_g Σ_j γ_gj log π_gj``
  (so the log-likelihood stays monotone);
- ``n_parameters(n_components)``: free parameters, for BIC.

:class:`ConstantMixing` (one weight vector for all rows) and :class:`MultinomialLogit`
(concomitant variables, a mixture of experts) are the two models; a new one is one new module.
"""

from bayes_mlr.core.mixing.constant import ConstantMixing
from bayes_mlr.core.mixing.multinomial import MultinomialLogit, log_softmax

__all__ = ["ConstantMixing", "MultinomialLogit", "log_softmax"]
