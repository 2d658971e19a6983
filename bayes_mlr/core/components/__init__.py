"""Component models: the distribution of ``y`` given ``x`` within one component.

A family (:class:`~bayes_mlr.core.components.family.Family`) is what users pass as ``family=``;
it builds the component model that the EM loop (:mod:`bayes_mlr.core.structured`) runs. A
component model gives the loop what it needs and nothing more:

- ``log_density(Z, beta, sigma, df)``: the log density of every row under every component
  (n, K), from the augmented data ``Z = [X1, y, row columns...]``;
- ``stats(Z, R, beta, sigma, df)``: block statistics of the weighted M-step with row weights
  ``R = c γ`` (n, K) at the current parameters, an object that adds up over parts of the data
  (``+``) and has ``nk``;
- ``m_step_from_stats(stats, beta, sigma, df)``: new ``(beta, sigma, df)`` that do not lower
  the expected complete-data log-likelihood (closed form for the Gaussian, ECM for the t, one
  Newton step for a GLM, whose overshoots the loop halves);
- ``spurious(stats, sigma)``, ``start_params(K)``, ``n_parameters(K)``, ``n_coef``.

Modules: :mod:`~.gaussian` (normal linear regression, shared coefficients by ECM),
:mod:`~.student_t`, :mod:`~.glm` (the IRLS machinery of canonical-link GLMs) with
:mod:`~.poisson` and :mod:`~.binomial`. A new family is one new module and one entry in
``FAMILIES``.
"""

from __future__ import annotations

from typing import Any

from bayes_mlr.core.components.binomial import Binomial
from bayes_mlr.core.components.family import Family
from bayes_mlr.core.components.gaussian import Gaussian, GaussianComponents, sigma_from_rss
from bayes_mlr.core.components.poisson import Poisson
from bayes_mlr.core.components.student_t import StudentT

__all__ = [
    "FAMILIES",
    "Binomial",
    "Family",
    "Gaussian",
    "GaussianComponents",
    "Poisson",
    "StudentT",
    "resolve_family",
    "sigma_from_rss",
]

#: The names ``family=`` takes, and their classes.
FAMILIES: dict[str, type[Family]] = {
    "gaussian": Gaussian,
    "poisson": Poisson,
    "binomial": Binomial,
    "student_t": StudentT,
}


def resolve_family(family: Any) -> Family:
    """A :class:`Family` from a name in ``FAMILIES``, a family object, or a saved
    ``{"name": ..., **options}`` dict.

    Raises
    ------
    ValueError
        An unknown name.
    TypeError
        Anything else.
    """
    if isinstance(family, Family):
        return family
    if isinstance(family, dict) and family.get("name") in FAMILIES:
        options = {k: v for k, v in family.items() if k != "name"}
        return FAMILIES[family["name"]](**options)
    if isinstance(family, str):
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {tuple(FAMILIES)}; got {family!r}.")
        return FAMILIES[family]()
    raise TypeError(
        f"family must be one of {tuple(FAMILIES)} or a family object (e.g. "
        f"bayes_mlr.StudentT(df=4)); got {type(family).__name__}."
    )
