"""The priors of the Bayesian model: data-scaled defaults, user overrides, and a record of both.

* :data:`PRIOR_ARGUMENTS`: the parameters that have a prior and the arguments of each;
* :func:`default_priors`: weakly informative priors scaled to the data;
* :func:`merge_priors`: the defaults with a user's overrides (``priors=``, ``[posterior.priors]``);
* :func:`describe_priors`: the priors a posterior was sampled under, as plain data, for
  ``diagnostics.json`` and the report.

Models with concomitant variables (a mixture of experts) have no ``weights`` prior: their prior
weights are a softmax of a linear predictor, whose coefficients have the priors
``concomitant_intercept`` and ``concomitant_coef`` (see :func:`default_priors`).

The component family (``family=`` of the estimator) decides the rest: Poisson and binomial
components have their coefficients on the link scale and no ``sigma``; Student-t components add
the degrees of freedom ``df`` (see :func:`default_priors`).

numpy only: reading a spec and writing a report do not import PyMC. The PyMC model that uses
these arguments is :func:`bayes_mlr.bayes.model.build_model`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["PRIOR_ARGUMENTS", "default_priors", "describe_priors", "merge_priors"]

#: The parameters with a prior, and the arguments of each prior.
PRIOR_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "weights": ("alpha",),
    "intercept": ("mu", "sigma"),
    "coef": ("mu", "sigma"),
    "sigma": ("sigma",),
    "concomitant_intercept": ("sigma",),
    "concomitant_coef": ("sigma",),
    "df": ("alpha", "beta"),
}
#: The distribution of each parameter's prior (the names PyMC gives them). For the concomitant
#: coefficients it is that of every component's logit coefficient; the model's parameters are
#: their contrasts to component 0 (see :func:`default_priors`).
DISTRIBUTIONS = {
    "weights": "Dirichlet",
    "intercept": "Normal",
    "coef": "Normal",
    "sigma": "HalfNormal",
    "concomitant_intercept": "Normal",
    "concomitant_coef": "Normal",
    "df": "Gamma",
}
#: The priors that only a model with concomitant variables has.
CONCOMITANT_PRIORS = ("concomitant_intercept", "concomitant_coef")
#: The Gamma(alpha, beta) prior (rate beta) of the Student-t degrees of freedom: mean 20, mode
#: 10, with about 5% of its mass below 3.6 (Juárez & Steel 2010).
DF_PRIOR = {"alpha": 2.0, "beta": 0.1}
#: Why a prior the defaults lack does not apply (:func:`merge_priors`).
_NOT_APPLICABLE = {
    "sigma": "the family has no sigma (its variance is a function of its mean)",
    "df": "only Student-t components with estimated degrees of freedom have df",
}


def _weighted_mean_sd(values: np.ndarray, weight: np.ndarray | None) -> tuple[Any, Any]:
    w = np.ones(values.shape[0]) if weight is None else weight
    total = w.sum()
    mean = (w @ values) / total
    sd = np.sqrt((w @ (values - mean) ** 2) / total)
    return mean, np.where(sd > 0, sd, 1.0)


def default_priors(
    X: Any,
    y: Any,
    n_components: int,
    sample_weight: Any = None,
    *,
    concomitant: Any = None,
    family: Any = None,
    extra: Any = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Weakly informative priors scaled to the data.

    With ``m_y, s_y`` the (sample-weighted) mean and standard deviation of ``y`` and
    ``m_j, s_j`` those of feature ``j``:

    * ``weights ~ Dirichlet(alpha = 2, ..., 2)``: mildly keeps components from vanishing;
    * ``coef[k, j] ~ Normal(0, 2.5 * s_y / s_j)``: a one-sd change in ``x_j`` moves the
      regression by at most a few sd of ``y``;
    * ``intercept[k] ~ Normal(m_y, 2.5 * s_y * sqrt(1 + sum_j (m_j / s_j) ** 2))``: the
      implied prior of the intercept at ``x = 0`` when the intercept at the mean of ``x`` is
      ``Normal(m_y, 2.5 * s_y)`` and the slopes have the prior above;
    * ``sigma[k] ~ HalfNormal(s_y)`` (one ``sigma`` for ``variance="shared"``, none for
      ``"fixed"``).

    With ``concomitant`` variables ``w`` (means ``m_w``, sds ``s_w``) the prior weights are
    ``softmax_k(concomitant_intercept[k] + w . concomitant_coef[k])`` with component 0 the
    reference (row 0 is zero). Every component ``k`` has logit coefficients ``b_k``, ``g_k``
    with

    * ``g[k, j] ~ Normal(0, 2.5 / s_wj)`` and
    * ``b[k] ~ Normal(0, 2.5 * sqrt(1 + sum_j (m_wj / s_wj) ** 2))`` (``Normal(0, 2.5)`` for
      the logit at the mean of ``w``, as for the regression intercept),

    independent across components, and the parameters are their contrasts
    ``concomitant_intercept[k] = b[k] - b[0]``, ``concomitant_coef[k] = g[k] - g[0]``. This
    prior is exchangeable in the labels (relabelling the components and re-referencing to the
    new component 0 leaves it unchanged), unlike independent priors on the contrasts; two
    components' log-odds at the mean of ``w`` differ by about ``Normal(0, 3.5)``. The
    ``weights`` entry then only fixes ``K`` (the weights are no free parameter).

    The component family changes the regression priors (``family``; Gaussian by default):

    * ``"student_t"``: as the Gaussian (``sigma`` is the scale of the t errors), plus
      ``df[k] ~ Gamma(alpha = 2, beta = 0.1)`` (rate ``beta``: mean 20, mode 10; Juárez & Steel
      2010, "Model-based clustering of non-Gaussian panel data based on skew-t distributions",
      JBES 28), which keeps ``df`` away from 0 without ruling out heavy tails and lets the data
      pull it towards the Gaussian; with ``StudentT(df=k)`` the degrees of freedom are fixed
      and have no prior;
    * ``"poisson"`` and ``"binomial"``: the coefficients act on the link scale (log rate,
      log-odds), where a unit is a unit whatever the data, so the scales are those of
      rstanarm's default priors for GLMs (Gabry & Goodrich, "Prior distributions for rstanarm
      models") with y's spread left out: ``coef[k, j] ~ Normal(0, 2.5 / s_j)`` (a one-sd
      change in ``x_j`` multiplies the rate or the odds by ``exp(2.5) = 12`` at one prior sd)
      and ``intercept[k] ~ Normal(eta_0, 2.5 * sqrt(1 + sum_j (m_j / s_j) ** 2))``, centred
      at the link of the intercept-only fit ``eta_0`` (log of the rate per unit of exposure,
      ``log(sum w y / sum w exp(offset))``; logit of the success share,
      ``logit(sum w y / sum w m)``) as the Gaussian intercept is at the mean of ``y``, and
      ``Normal(eta_0, 2.5)`` at the mean of ``x``. There is no ``sigma``.

    A constant feature, concomitant variable or ``y`` uses scale 1 in place of a zero sd.

    Parameters
    ----------
    X : array-like of shape (n, p)
    y : array-like of shape (n,)
    n_components : int
    sample_weight : array-like of shape (n,), optional
        Replication weights.
    concomitant : array-like of shape (n, r), optional
        Concomitant variables (one row per observation).
    family : str or Family, optional
        The component family (a name or an object such as ``bayes_mlr.StudentT(df=4)``);
        Gaussian by default.
    extra : array-like of shape (n, m), optional
        The family's row columns (:meth:`Family.row_columns <bayes_mlr.core.components.family.
        Family.row_columns>`: offset, trials) for the intercept's centre; by default those of
        ``y`` without offset or trials.

    Returns
    -------
    dict
        ``{"weights": {"alpha": (K,)}, "intercept": {"mu": (), "sigma": ()},
        "coef": {"mu": (), "sigma": (p,)}, "sigma": {"sigma": ()}}``, the format of the
        ``priors`` argument of :func:`build_model`; with ``concomitant`` also
        ``"concomitant_intercept": {"sigma": ()}`` and ``"concomitant_coef": {"sigma": (r,)}``;
        without ``"sigma"`` for Poisson and binomial components; with
        ``"df": {"alpha": (), "beta": ()}`` for Student-t components with estimated ``df``.
    """
    from bayes_mlr.core.components import resolve_family

    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    y = np.asarray(y, dtype=float).reshape(-1)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    m_y, s_y = _weighted_mean_sd(y, sw)
    m_x, s_x = _weighted_mean_sd(X, sw)
    fam = resolve_family("gaussian" if family is None else family)
    out = {
        "weights": {"alpha": np.full(n_components, 2.0)},
        "intercept": {
            "mu": np.asarray(m_y),
            "sigma": np.asarray(2.5 * s_y * np.sqrt(1.0 + np.sum((m_x / s_x) ** 2))),
        },
        "coef": {"mu": np.asarray(0.0), "sigma": 2.5 * s_y / s_x},
        "sigma": {"sigma": np.asarray(s_y)},
    }
    if not fam.has_sigma:  # a GLM: coefficients on the link scale, no sigma
        rows = fam.row_columns(y, None, None) if extra is None else np.asarray(extra, float)
        weight = np.ones(y.shape[0]) if sw is None else sw
        eta_0 = fam.null_eta(fam.null_sums(y, rows, weight))
        out["intercept"] = {
            "mu": np.asarray(eta_0),
            "sigma": np.asarray(2.5 * np.sqrt(1.0 + np.sum((m_x / s_x) ** 2))),
        }
        out["coef"] = {"mu": np.asarray(0.0), "sigma": 2.5 / s_x}
        del out["sigma"]
    if fam.has_df and getattr(fam, "df", None) is None:
        out["df"] = {k: np.asarray(v) for k, v in DF_PRIOR.items()}
    if concomitant is not None:
        W = np.asarray(concomitant, dtype=float)
        W = W[:, None] if W.ndim == 1 else W
        if W.ndim != 2 or W.shape[0] != y.shape[0]:
            raise ValueError(
                f"concomitant must have shape (n, r) with n = len(y) = {y.shape[0]}; got {W.shape}"
            )
        m_w, s_w = _weighted_mean_sd(W, sw)
        out["concomitant_intercept"] = {
            "sigma": np.asarray(2.5 * np.sqrt(1.0 + np.sum((m_w / s_w) ** 2)))
        }
        out["concomitant_coef"] = {"sigma": 2.5 / s_w}
    return out


def merge_priors(
    defaults: dict[str, dict[str, np.ndarray]], priors: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, np.ndarray]]:
    """``defaults`` with the arguments that ``priors`` gives replaced (as float arrays).

    Raises
    ------
    ValueError
        An unknown prior or argument (names in :data:`PRIOR_ARGUMENTS`), or a prior the model
        does not have (a concomitant prior without concomitant variables, ``sigma`` for
        Poisson or binomial components, ``df`` for any but Student-t components with estimated
        degrees of freedom).
    """
    merged = {name: dict(values) for name, values in defaults.items()}
    for name, values in (priors or {}).items():
        if name not in PRIOR_ARGUMENTS:
            raise ValueError(f"unknown prior {name!r}; expected one of {sorted(PRIOR_ARGUMENTS)}")
        if name not in merged:
            reason = _NOT_APPLICABLE.get(name, "the model has no concomitant variables")
            raise ValueError(f"prior {name!r} does not apply: {reason}")
        for key, value in values.items():
            if key not in PRIOR_ARGUMENTS[name]:
                raise ValueError(
                    f"unknown argument {key!r} of the {name} prior; expected one of "
                    f"{list(PRIOR_ARGUMENTS[name])}"
                )
            merged[name][key] = np.asarray(value, dtype=float)
    return merged


def describe_priors(
    prior: Mapping[str, Mapping[str, Any]],
    *,
    feature_names: Sequence[str],
    variance: str = "component",
    fit_intercept: bool = True,
    fixed_sigma: Any = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    shared: Sequence[bool] | None = None,
    shared_intercept: bool = False,
    concomitant_names: Sequence[str] | None = None,
    fixed_df: Any = None,
) -> dict[str, Any]:
    """The priors of a model as plain data: one row per parameter (and feature, for ``coef``).

    Arguments equal for every component are given once (``component`` is None); otherwise
    each component has its row. A coefficient shared by all components (``shared``,
    ``shared_intercept``) has one row with ``component="shared"``, as a shared sigma. With
    concomitant variables there is no ``weights`` row; ``concomitant_intercept`` has one row
    and ``concomitant_coef`` one per concomitant variable (its name in ``feature``), with the
    prior of every component's logit coefficient (see :func:`default_priors`). Student-t
    components add ``df`` rows (Gamma, or ``"fixed"`` with ``fixed_df``); ``variance="none"``
    (Poisson, binomial) has no ``sigma`` rows.

    Parameters
    ----------
    prior : dict
        The arguments in use, as :func:`merge_priors` returns them.
    feature_names : sequence of str, length p
    variance : {"component", "shared", "fixed", "none"}
        ``"none"``: a family without sigma.
    fit_intercept : bool
    fixed_sigma : array-like of shape (K,), optional
        The known sigma of ``variance="fixed"``.
    overrides : dict, optional
        The user's overrides (``priors=``), recorded as ``overridden``.
    shared : sequence of bool, length p, optional
        Which features have one coefficient for all components.
    shared_intercept : bool, default=False
        Whether the intercept is one number for all components.
    concomitant_names : sequence of str, length r, optional
        The concomitant variables (a model with a concomitant model).
    fixed_df : float, optional
        The known degrees of freedom of ``StudentT(df=...)`` components.

    Returns
    -------
    dict
        ``{"source": "default" | "overridden", "overridden": ["coef.sigma", ...],
        "rows": [{"parameter", "component", "feature", "distribution", "arguments"}, ...]}``
        with ``arguments`` a dict of floats (``weights``: the list ``alpha``).
    """
    K = int(np.size(prior["weights"]["alpha"])) if np.ndim(prior["weights"]["alpha"]) else None
    names = [str(f) for f in feature_names]
    p = len(names)
    if K is None:
        raise ValueError("prior['weights']['alpha'] must have one entry per component")
    rows: list[dict[str, Any]] = []

    def add(parameter: str, arguments: dict[str, np.ndarray], feature: str | None) -> None:
        # arguments: each of shape (K,); one row when all components agree
        same = all(np.allclose(a, a[0], rtol=1e-12, atol=0.0) for a in arguments.values())
        for k in [None] if same else range(K):
            j = 0 if k is None else k
            rows.append(
                {
                    "parameter": parameter,
                    "component": k,
                    "feature": feature,
                    "distribution": DISTRIBUTIONS[parameter],
                    "arguments": {a: float(v[j]) for a, v in arguments.items()},
                }
            )

    def add_shared(parameter: str, arguments: dict[str, np.ndarray], feature: str | None) -> None:
        # arguments: each of shape (K,); a shared coefficient has the prior of component 0
        rows.append(
            {
                "parameter": parameter,
                "component": "shared",
                "feature": feature,
                "distribution": DISTRIBUTIONS[parameter],
                "arguments": {a: float(v[0]) for a, v in arguments.items()},
            }
        )

    mask = np.zeros(p, bool) if shared is None else np.asarray(shared, dtype=bool)
    if mask.shape != (p,):
        raise ValueError(f"shared must have one entry per feature ({p}); got {mask.shape}")
    if K > 1 and concomitant_names is None:
        alpha = np.broadcast_to(np.asarray(prior["weights"]["alpha"], dtype=float), (K,))
        rows.append(
            {
                "parameter": "weights",
                "component": None,
                "feature": None,
                "distribution": DISTRIBUTIONS["weights"],
                "arguments": {"alpha": [float(a) for a in alpha]},
            }
        )
    if fit_intercept:
        (add_shared if shared_intercept else add)(
            "intercept",
            {
                a: np.broadcast_to(prior["intercept"][a], (K,)).astype(float)
                for a in ("mu", "sigma")
            },
            None,
        )
    coef = {a: np.broadcast_to(prior["coef"][a], (K, p)).astype(float) for a in ("mu", "sigma")}
    for f, name in enumerate(names):
        (add_shared if mask[f] else add)("coef", {a: v[:, f] for a, v in coef.items()}, name)
    if variance == "component":
        add("sigma", {"sigma": np.broadcast_to(prior["sigma"]["sigma"], (K,)).astype(float)}, None)
    elif variance == "shared":
        rows.append(
            {
                "parameter": "sigma",
                "component": "shared",
                "feature": None,
                "distribution": DISTRIBUTIONS["sigma"],
                "arguments": {"sigma": float(np.ravel(prior["sigma"]["sigma"])[0])},
            }
        )
    elif variance == "fixed":
        fixed = np.broadcast_to(np.asarray(fixed_sigma, dtype=float), (K,))
        for k in range(K):
            rows.append(
                {
                    "parameter": "sigma",
                    "component": k,
                    "feature": None,
                    "distribution": "fixed",
                    "arguments": {"value": float(fixed[k])},
                }
            )
    if "df" in prior:
        add(
            "df",
            {a: np.broadcast_to(prior["df"][a], (K,)).astype(float) for a in ("alpha", "beta")},
            None,
        )
    elif fixed_df is not None:
        rows.append(
            {
                "parameter": "df",
                "component": None,
                "feature": None,
                "distribution": "fixed",
                "arguments": {"value": float(fixed_df)},
            }
        )
    if concomitant_names is not None and K > 1:
        conc = [str(c) for c in concomitant_names]
        rows.append(
            {
                "parameter": "concomitant_intercept",
                "component": None,
                "feature": None,
                "distribution": DISTRIBUTIONS["concomitant_intercept"],
                "arguments": {"sigma": float(np.ravel(prior["concomitant_intercept"]["sigma"])[0])},
            }
        )
        scale = np.broadcast_to(
            np.asarray(prior["concomitant_coef"]["sigma"], dtype=float), (len(conc),)
        )
        for j, name in enumerate(conc):
            rows.append(
                {
                    "parameter": "concomitant_coef",
                    "component": None,
                    "feature": name,
                    "distribution": DISTRIBUTIONS["concomitant_coef"],
                    "arguments": {"sigma": float(scale[j])},
                }
            )
    overridden = sorted(f"{name}.{arg}" for name, args in (overrides or {}).items() for arg in args)
    return {
        "source": "overridden" if overridden else "default",
        "overridden": overridden,
        "rows": rows,
    }
