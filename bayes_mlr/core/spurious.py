"""Spurious components: what they are, and the rule that recognises them.

The likelihood of a mixture of regressions with one σ per component is unbounded: a component
that passes exactly through ``q`` points (``q`` coefficients) has σ → 0 and ℓ → ∞. Besides these
degenerate points, the likelihood has many *spurious local maximisers* (McLachlan & Peel 2000,
§3.10): a component fitted to a handful of points that happen to lie close to one line, with a
σ far below the other components'. Such a component has no meaning for the population, yet its
log-likelihood is often above every regular optimum, so picking the highest likelihood, and BIC
or AIC after it, choose it.

The rule (:func:`spurious_components`) follows McLachlan & Peel's description of these optima.
A component is spurious when **both**

1. it rests on few observations: its effective size ``n_j = Σ_i w_i γ_ij`` is below
   ``SPURIOUS_POINTS_PER_PARAMETER`` (5) observations per parameter of the component, i.e.
   ``n_j < 5 (q + 1)`` with ``q`` coefficients (the intercept included) and its σ, and below
   the average size ``n / K`` (so that on small data sets a component is small relative to the
   others, not merely by count); and
2. its σ is far below the others': ``σ_j < SPURIOUS_SIGMA_RATIO`` (1/3) times the smallest σ
   among the components that are *not* small by (1) (at least one is never small: the largest
   has at least ``n / K``).

Condition (1) is what separates the spurious case from a legitimate tight component: many
observations lying exactly on one line (a measurement that is exact for one class) make a
component with a tiny σ and a large size, which is kept. Condition (2) keeps small components
whose noise is in line with the rest (a small class, or a split of a large one). With one σ for
all components (``variance="shared"`` or ``"fixed"``) the likelihood is bounded (Hathaway 1985
shows that constraining σ ratios removes the degeneracy) and no component is spurious.

How the fit uses it (:func:`bayes_mlr.fit_em`, ``spurious="avoid"``): among the EM runs from the
different starts, the best run *without* a spurious component is kept; when every run has one, the
best is returned, flagged (``EMResult.spurious``) and a :class:`~bayes_mlr.SpuriousFitWarning` is
issued. Alternatives in the literature, and why they are not the default here:

- a penalised likelihood that keeps σ away from 0 (Chen, Tan & Zhang 2008) is consistent, but it
  changes every σ estimate, so regular fits would no longer agree with flexmix and mixtools;
- constrained σ ratios (Hathaway 1985) also reject the legitimate tight component;
- flexmix's ``minprior`` removes components whose weight falls below a threshold during EM, so a
  user may get fewer components than asked for; it is available as ``min_weight``.

References
----------
Chen, J., Tan, X. and Zhang, R. (2008). Inference for normal mixtures in mean and variance.
*Statistica Sinica* 18, 443-465.
Hathaway, R. J. (1985). A constrained formulation of maximum-likelihood estimation for normal
mixture distributions. *Annals of Statistics* 13, 795-800.
McLachlan, G. J. and Peel, D. (2000). *Finite Mixture Models*, §3.10. Wiley.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SPURIOUS_POINTS_PER_PARAMETER",
    "SPURIOUS_SIGMA_RATIO",
    "small_components",
    "spurious_components",
]

#: A component is small when it has fewer effective observations than this per parameter.
SPURIOUS_POINTS_PER_PARAMETER = 5.0
#: ... and spurious when, besides, its σ is below this fraction of every sizeable component's.
SPURIOUS_SIGMA_RATIO = 1.0 / 3.0


def spurious_components(
    nk: np.ndarray, sigma: np.ndarray, n_coef: int, *, variance: str = "component"
) -> np.ndarray:
    """Which components are spurious, by the rule of this module's docstring.

    Parameters
    ----------
    nk : ndarray of shape (n_components,)
        Effective number of observations of each component, ``Σ_i w_i γ_ij``.
    sigma : ndarray of shape (n_components,)
        Noise standard deviations (any common unit).
    n_coef : int
        Regression coefficients per component, the intercept included (``q``).
    variance : {"component", "shared", "fixed"}
        Only ``"component"`` can have spurious components.

    Returns
    -------
    ndarray of bool, shape (n_components,)

    Examples
    --------
    >>> import numpy as np
    >>> spurious_components(np.array([4.0, 96.0]), np.array([0.02, 2.0]), 2)
    array([ True, False])
    >>> spurious_components(np.array([55.0, 95.0]), np.array([1e-4, 0.1]), 2)  # large: kept
    array([False, False])
    """
    sigma = np.asarray(sigma, dtype=float)
    if variance != "component":
        return np.zeros(np.shape(nk), dtype=bool)
    small = small_components(nk, n_coef + 1)
    if not small.any():
        return small
    reference = float(np.min(sigma[~small]))
    return small & (sigma < SPURIOUS_SIGMA_RATIO * reference)


def small_components(nk: np.ndarray, n_parameters: int) -> np.ndarray:
    """Condition (1) of the rule: components with fewer than ``SPURIOUS_POINTS_PER_PARAMETER``
    effective observations per parameter and fewer than the average ``n / K``.

    Parameters
    ----------
    nk : ndarray of shape (n_components,)
    n_parameters : int
        Parameters of one component (coefficients, and its σ where it has one).

    Returns
    -------
    ndarray of bool, shape (n_components,)
        All False with one component, or when every component is small (only when every
        ``n_j`` equals ``n / K``).
    """
    nk = np.asarray(nk, dtype=float)
    if nk.size < 2:
        return np.zeros(nk.shape, dtype=bool)
    small = nk < min(SPURIOUS_POINTS_PER_PARAMETER * n_parameters, nk.sum() / nk.size)
    return small if not small.all() else np.zeros(nk.shape, dtype=bool)
