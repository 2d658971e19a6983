"""The posterior of structured mixtures: concomitant variables, grouped rows, shared
coefficients, and components of any family.

The model is the one :func:`bayes_mlr.core.structured.fit_structured` fits by EM. With ``g``
the groups (each row its own group without ``groups``) and ``c_g`` their replication weights::

    ell_g = logsumexp_k( log pi_gk + sum_{i in g} log f(y_i | eta_ik, sigma_k, df_k) )
    log p(y | theta) = sum_g c_g ell_g

with ``eta_ik = offset_i + intercept_k + coef_k . x_i`` and ``f`` the component family's
density (:mod:`bayes_mlr.bayes.families`): Normal (the default), Poisson (log link, optional
``offset``), binomial (logit link, ``trials``, optional ``offset``) or Student-t (scale
``sigma_k``, degrees of freedom ``df_k``). Every model with a non-Gaussian family is built
here, with or without structure.

with ``pi_gk = softmax_k(concomitant_intercept_k + w_g . concomitant_coef_k)`` (component 0 the
reference, its row zero) when there are concomitant variables ``w``, else ``pi_gk = weights_k``.
Shared columns of ``coef`` (and a shared intercept) are one number for all components.

PyMC variables (``component`` first in every one):

* ``intercept`` ``(component,)``: Normal; with a shared intercept the free variable is the
  scalar ``intercept_shared`` and ``intercept`` a Deterministic;
* ``coef`` ``(component, feature)``: Normal; with shared columns the free variables are
  ``coef_shared`` ``(feature_shared,)`` and ``coef_varying`` ``(component, feature_varying)``
  (when any column is not shared), and ``coef`` is the Deterministic that combines them;
* ``sigma`` as in :func:`bayes_mlr.bayes.model.build_model`, for the Gaussian and Student-t
  families only (Poisson and binomial components have none: ``variance="none"``);
* ``df`` ``(component,)``: Student-t degrees of freedom, Gamma (see
  :func:`~bayes_mlr.bayes.priors.default_priors`); for ``StudentT(df=k)`` data
  (``pm.Data``), not a variable;
* without concomitant variables, ``weights`` ``(component,)``: Dirichlet;
* with them, ``concomitant_intercept`` ``(component,)`` and ``concomitant_coef``
  ``(component, concomitant)``: Deterministics, row 0 zero, from the free standardised logit
  coefficients ``concomitant_intercept_raw`` ``(component,)`` and ``concomitant_coef_raw``
  ``(component, concomitant)`` (independent ``Normal(0, 1)``): with ``b = scale * raw``,
  ``concomitant_intercept[k] = b[k] - b[0]`` (the prior of :func:`default_priors`, which is
  exchangeable in the labels). ``weights`` is then the Deterministic mean prior weight over the
  training rows (sample-weighted), as EM's ``weights_``;
* the likelihood is the ``pm.Potential`` ``"y"``, one term ``c_g ell_g`` per group (dim
  ``group``) or per row (dim ``obs``) without groups;
* data: ``X`` ``(obs, feature)``, ``y_observed`` ``(obs,)``, ``group_index`` ``(obs,)`` (group
  of each row), ``W`` ``(group | obs, concomitant)`` (the concomitant variables, one row per group),
  ``sample_weight`` ``(group | obs,)``, the prior scales ``concomitant_intercept_scale``,
  ``concomitant_coef_scale``, and the family's ``offset`` ``(obs,)`` (when fitted with one) and
  ``trials`` ``(obs,)`` (binomial). The constants ``-log y!`` and ``log C(m, y)`` come from the
  family's row columns, so the log-likelihood is EM's to rounding.

The pointwise log-likelihood that :func:`sample_posterior` stores (group ``log_likelihood``,
variable ``y``) has one term per group: ``arviz_stats.loo`` on it is **leave-one-group-out**
cross-validation (without groups, leave-one-row-out as for the plain model).

Relabelling (:func:`_align`) matches each draw to EM on the component-wise parameters and the
*centred* concomitant coefficients (each minus its mean over the components, which a relabelling
permutes), then re-references the concomitant coefficients to the new component 0 (subtracting
its row): the share of draws whose reference changed is recorded as the posterior attribute
``concomitant_reference_changed``.

The posterior's attributes record the family (``posterior.attrs["family"]``, JSON such as
``{"name": "student_t", "df": null}``), which :mod:`bayes_mlr.bayes.diagnostics` and
:mod:`bayes_mlr.bayes.predictive` read.

The plain Gaussian model (no structure) keeps its own path in :mod:`bayes_mlr.bayes.model` (the
fused likelihood Op); this one is written in plain PyTensor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pytensor.graph.replace import clone_replace

from bayes_mlr.bayes import families as _families
from bayes_mlr.bayes import sampling as _sampling
from bayes_mlr.bayes import starts as _starts
from bayes_mlr.bayes import stephens as stephens_mod
from bayes_mlr.bayes.priors import default_priors, describe_priors, merge_priors
from bayes_mlr.core.grouping import Grouping, group_constant
from bayes_mlr.core.labels import (
    RELABEL_METHODS,
    apply_permutations,
    assign_from_cost,
    assignment_cost,
    component_features,
    cost_gap,
)

__all__ = ["build_structured", "is_structured", "sample_structured", "structured_problem"]

#: True when an estimator has concomitant variables, groups or shared coefficients.
is_structured = _sampling._is_structured

#: The concomitant variables of a posterior (``concomitant_intercept``, ``concomitant_coef``).
CONCOMITANT = ("concomitant_intercept", "concomitant_coef")


# --------------------------------------------------------------------------------------------
# The data and settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StructuredProblem(_sampling._Problem):
    groups: np.ndarray | None  # (n,) group index 0..G-1 of each row; None without groups
    n_groups: int  # G (= n without groups)
    concomitant: np.ndarray | None  # (G, r): one row per group
    concomitant_names: list[str]
    group_weight: np.ndarray  # (G,) replication weight c_g
    group_size: np.ndarray  # (G,) rows per group
    shared: np.ndarray  # (p,) bool
    shared_intercept: bool
    family: Any  # the component family (bayes_mlr.core.components)
    extra: np.ndarray  # (n, m): the family's row columns (offset, trials, constants)
    offset: np.ndarray | None  # (n,) when given (Poisson, binomial); trials live in `extra`

    @property
    def grouped(self) -> bool:
        return self.groups is not None

    @property
    def df_fixed(self) -> float | None:
        """The known degrees of freedom of ``StudentT(df=...)`` components, else None."""
        return getattr(self.family, "df", None) if self.family.has_df else None

    @property
    def unit(self) -> str:
        """The dim of the likelihood terms: ``"group"`` or ``"obs"``."""
        return "group" if self.grouped else "obs"

    def concomitant_rows(self) -> np.ndarray | None:
        """The concomitant variables at every row, (n, r)."""
        if self.concomitant is None:
            return None
        return self.concomitant[self.groups] if self.grouped else self.concomitant


def _shared_of(model: Any, p: int, names: list[str]) -> tuple[np.ndarray, bool]:
    result = getattr(model, "result_", None)
    if result is not None:
        mask = np.asarray(result.shared, dtype=bool)
        if mask.shape != (p,):
            raise ValueError(f"the estimator was fitted with {mask.size} features; X has {p}")
        return mask, bool(result.shared_intercept)
    from bayes_mlr._validation import check_shared

    return check_shared(
        getattr(model, "shared", None),
        p,
        names,
        fit_intercept=bool(getattr(model, "fit_intercept", True)),
    )


def structured_problem(
    model: Any,
    X: Any = None,
    y: Any = None,
    *,
    sample_weight: Any = None,
    groups: Any = None,
    concomitant: Any = None,
    offset: Any = None,
    trials: Any = None,
) -> _StructuredProblem:
    """Collect the data and settings of a structured model.

    ``X``, ``y`` (and ``sample_weight``, ``groups``, ``concomitant``, ``offset``, ``trials``)
    default to the data the estimator was fitted on; with ``X`` and ``y`` given, the others are
    those of the new data (``concomitant`` is required when the estimator has a concomitant
    model, ``offset`` / ``trials`` when it was fitted with them). The component family is the
    estimator's; a family without sigma (Poisson, binomial) has ``variance="none"``.

    Raises
    ------
    ValueError
        Shapes that do not match, concomitant variables or sample weights that vary within a
        group, fewer groups than components, concomitant variables, an offset or trials the
        estimator does not have (or lacks), or a response the family does not take (counts
        for Poisson, successes out of the trials for binomial).
    """
    from bayes_mlr._validation import check_concomitant

    base = _sampling._problem(model, X, y, sample_weight)
    n, p = base.X.shape
    if X is None and y is None:
        if any(v is not None for v in (groups, concomitant, offset, trials)):
            raise ValueError(
                "groups, concomitant, offset and trials go with new data: pass X and y too, or "
                "neither (the estimator's training data, groups and concomitant variables)"
            )
        groups = getattr(model, "_fit_groups", None)
        concomitant = getattr(model, "_fit_concomitant", None)
        offset = getattr(model, "_fit_offset", None)
        trials = getattr(model, "_fit_trials", None)
    else:
        for name, value in (("offset", offset), ("trials", trials)):
            if value is None and getattr(model, f"_fit_{name}", None) is not None:
                raise ValueError(
                    f"the estimator was fitted with {name}=: pass {name} for the new rows too "
                    "(an array of shape (n,))"
                )
    family = _families.family_of(model)
    extra = _families.row_columns(family, base.y, offset, trials)
    fitted_coef = getattr(model, "concomitant_coef_", None)
    W = names = None
    if concomitant is not None:
        W, names = check_concomitant(concomitant, n)
        if hasattr(model, "result_") and fitted_coef is None:
            raise ValueError(
                "the estimator was fitted without concomitant variables; pass concomitant=None"
            )
        if fitted_coef is not None and W.shape[1] != fitted_coef.shape[1]:
            raise ValueError(
                f"concomitant has {W.shape[1]} column(s), but the estimator was fitted with "
                f"{fitted_coef.shape[1]}"
            )
    elif fitted_coef is not None:
        raise ValueError(
            f"the estimator has {fitted_coef.shape[1]} concomitant variable(s): pass "
            "concomitant, an array of shape (n, r)"
        )
    if W is not None:
        fitted_names = getattr(model, "concomitant_names_in_", None)
        if fitted_names is not None and len(fitted_names) == W.shape[1]:
            names = fitted_names
        names = (
            [str(v) for v in names] if names is not None else [f"w{j}" for j in range(W.shape[1])]
        )
    grouping = Grouping(groups, n)
    weight = np.ones(n) if base.sample_weight is None else base.sample_weight
    group_weight = group_constant(grouping, weight, "sample_weight")
    W_groups = None if W is None else group_constant(grouping, W, "concomitant")
    K = base.n_components
    n_units = int(np.count_nonzero(group_weight))
    if K > n_units:
        unit = "groups" if not grouping.trivial else "rows of positive weight"
        raise ValueError(f"n_components={K} is larger than the number of {unit} ({n_units})")
    mask, shared_intercept = _shared_of(model, p, base.feature_names)
    if shared_intercept and not base.fit_intercept:
        raise ValueError("a shared intercept needs fit_intercept=True")
    fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
    if not family.has_sigma:  # Poisson, binomial: the variance is a function of the mean
        fields.update(variance="none", fixed_sigma=None)
    return _StructuredProblem(
        **fields,
        groups=None if grouping.trivial else np.asarray(grouping.index, dtype=np.int64),
        n_groups=int(grouping.n_groups),
        concomitant=W_groups,
        concomitant_names=list(names) if W is not None else [],
        group_weight=np.asarray(group_weight, dtype=float),
        group_size=np.asarray(grouping.sizes(), dtype=float),
        shared=mask,
        shared_intercept=bool(shared_intercept),
        family=family,
        extra=extra,
        offset=None if offset is None else _families.offset_of(family, extra).copy(),
    )


# --------------------------------------------------------------------------------------------
# Priors
# --------------------------------------------------------------------------------------------


def _priors_of(
    problem: _StructuredProblem, priors: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, np.ndarray]]:
    """The data-scaled defaults (:func:`default_priors`) with the user's ``priors``."""
    if problem.concomitant is not None and priors and "weights" in priors:
        raise ValueError(
            "with concomitant variables the weights are a softmax of a linear predictor and "
            "have no prior of their own: set 'concomitant_intercept' and 'concomitant_coef' "
            "instead of 'weights'"
        )
    defaults = default_priors(
        problem.X,
        problem.y,
        problem.n_components,
        problem.sample_weight,
        concomitant=problem.concomitant_rows(),
        family=problem.family,
        extra=problem.extra,
    )
    prior = merge_priors(defaults, priors)
    K, p = problem.n_components, problem.X.shape[1]
    for name, shape, mask in (
        ("coef", (K, p), problem.shared),
        ("intercept", (K,), np.array(problem.shared_intercept)),
    ):
        for arg, value in prior[name].items():
            full = np.broadcast_to(value, shape)
            part = full[:, mask] if full.ndim == 2 else (full if mask else full[:0])
            if part.size and not np.allclose(part, part[:1], rtol=1e-12, atol=0.0):
                raise ValueError(
                    f"the {name} prior's {arg!r} differs between components for a shared "
                    "coefficient, which is one number for all components: give it once"
                )
    for name in CONCOMITANT:
        if name in prior and not np.all(np.asarray(prior[name]["sigma"]) > 0):
            raise ValueError(f"the {name} prior's 'sigma' must be positive")
    for arg in ("alpha", "beta") if "df" in prior else ():
        if not np.all(np.asarray(prior["df"][arg]) > 0):
            raise ValueError(f"the df prior's {arg!r} must be positive")
    return prior


def _prior_record(
    problem: _StructuredProblem,
    priors: Mapping[str, Mapping[str, Any]] | None,
    pm_model: Any = None,
) -> dict[str, Any]:
    """What ``posterior.attrs["priors"]`` records (JSON)."""
    if pm_model is not None:
        return {"source": "custom", "overridden": [], "rows": [], "model": pm_model.str_repr()}
    return describe_priors(
        _priors_of(problem, priors),
        feature_names=problem.feature_names,
        variance=problem.variance,
        fit_intercept=problem.fit_intercept,
        fixed_sigma=problem.fixed_sigma,
        overrides=priors,
        shared=problem.shared,
        shared_intercept=problem.shared_intercept,
        concomitant_names=problem.concomitant_names if problem.concomitant is not None else None,
        fixed_df=problem.df_fixed,
    )


# --------------------------------------------------------------------------------------------
# The PyMC model
# --------------------------------------------------------------------------------------------


def build_structured(
    problem: _StructuredProblem, priors: Mapping[str, Mapping[str, Any]] | None
) -> pm.Model:
    """The PyMC model of a structured mixture (see the module docstring for its variables)."""
    K = problem.n_components
    n, p = problem.X.shape
    prior = _priors_of(problem, priors)
    names = list(problem.feature_names)
    idx_s, idx_v = np.flatnonzero(problem.shared), np.flatnonzero(~problem.shared)
    coords: dict[str, Any] = {"component": np.arange(K), "feature": names, "obs": np.arange(n)}
    if problem.grouped:
        coords["group"] = np.arange(problem.n_groups)
    if idx_s.size:
        coords["feature_shared"] = [names[j] for j in idx_s]
    if idx_s.size and idx_v.size:
        coords["feature_varying"] = [names[j] for j in idx_v]
    if problem.concomitant is not None:
        coords["concomitant"] = list(problem.concomitant_names)
    unit = problem.unit
    with pm.Model(coords=coords) as pm_model:
        X_data = pm.Data("X", problem.X, dims=("obs", "feature"))
        y_data = pm.Data("y_observed", problem.y, dims="obs")
        coef = _coefficients(prior, K, p, idx_s, idx_v)
        intercept = _intercept(problem, prior, K)
        sigma = _sigma(problem, prior, K)
        df = _degrees_of_freedom(problem, prior, K)
        log_pi = _log_prior_weights(problem, prior, K, unit)  # (G | 1, K)
        # Row log densities under each component, summed per group, mixed on the log scale.
        eta = intercept[None, :] + pt.dot(X_data, coef.T)  # (n, K)
        if problem.offset is not None:
            eta = eta + pm.Data("offset", problem.offset, dims="obs")[:, None]
        trials = _families.trials_of(problem.family, problem.extra)
        if trials is not None:  # recorded with the data; the density reads the row columns
            pm.Data("trials", trials, dims="obs")
        extra = pt.as_tensor(np.asarray(problem.extra, dtype=float))
        log_f = _families.log_density(problem.family, y_data, eta, extra, sigma=sigma, df=df)
        if problem.grouped:
            index = pm.Data("group_index", problem.groups, dims="obs")
            log_f = pt.inc_subtensor(pt.zeros((problem.n_groups, K))[index], log_f)
        ell = pt.logsumexp(log_f + log_pi, axis=1)
        if problem.sample_weight is not None:
            ell = pm.Data("sample_weight", problem.group_weight, dims=unit) * ell
        pm.Potential("y", ell, dims=unit)
    return pm_model


def _coefficients(prior, K: int, p: int, idx_s: np.ndarray, idx_v: np.ndarray):
    mu = np.broadcast_to(np.asarray(prior["coef"]["mu"], dtype=float), (K, p))
    sd = np.broadcast_to(np.asarray(prior["coef"]["sigma"], dtype=float), (K, p))
    if not idx_s.size:
        return pm.Normal("coef", mu=mu, sigma=sd, dims=("component", "feature"))
    shared = pm.Normal("coef_shared", mu=mu[0, idx_s], sigma=sd[0, idx_s], dims="feature_shared")
    coef = pt.zeros((K, p))
    coef = pt.set_subtensor(coef[:, idx_s], pt.broadcast_to(shared[None, :], (K, idx_s.size)))
    if idx_v.size:
        varying = pm.Normal(
            "coef_varying",
            mu=mu[:, idx_v],
            sigma=sd[:, idx_v],
            dims=("component", "feature_varying"),
        )
        coef = pt.set_subtensor(coef[:, idx_v], varying)
    return pm.Deterministic("coef", coef, dims=("component", "feature"))


def _sigma(problem: _StructuredProblem, prior, K: int):
    """``sigma`` (K,): HalfNormal per component or one shared, data for ``"fixed"``; None for
    a family without sigma (``variance="none"``)."""
    if problem.variance == "component":
        return pm.HalfNormal(
            "sigma", sigma=np.broadcast_to(prior["sigma"]["sigma"], (K,)), dims="component"
        )
    if problem.variance == "shared":
        return pm.HalfNormal("sigma", sigma=prior["sigma"]["sigma"]) * pt.ones(K)
    if problem.variance == "fixed":
        return pm.Data("sigma", problem.fixed_sigma, dims="component")
    return None


def _degrees_of_freedom(problem: _StructuredProblem, prior, K: int):
    """Student-t ``df`` (K,): Gamma per component, or data when fixed (``StudentT(df=k)``);
    None for the other families."""
    if not problem.family.has_df:
        return None
    if problem.df_fixed is not None:
        return pm.Data("df", np.full(K, float(problem.df_fixed)), dims="component")
    return pm.Gamma(
        "df",
        alpha=np.broadcast_to(prior["df"]["alpha"], (K,)),
        beta=np.broadcast_to(prior["df"]["beta"], (K,)),
        dims="component",
    )


def _intercept(problem: _StructuredProblem, prior, K: int):
    if not problem.fit_intercept:
        return pt.zeros(K)
    mu = np.broadcast_to(np.asarray(prior["intercept"]["mu"], dtype=float), (K,))
    sd = np.broadcast_to(np.asarray(prior["intercept"]["sigma"], dtype=float), (K,))
    if problem.shared_intercept:
        shared = pm.Normal("intercept_shared", mu=mu[0], sigma=sd[0])
        return pm.Deterministic("intercept", shared * pt.ones(K), dims="component")
    return pm.Normal("intercept", mu=mu, sigma=sd, dims="component")


def _log_prior_weights(problem: _StructuredProblem, prior, K: int, unit: str):
    """log pi, (G, K) with concomitant variables, else (1, K); adds the weights variables."""
    if problem.concomitant is None:
        if K == 1:
            return pt.zeros((1, 1))
        weights = pm.Dirichlet(
            "weights", a=np.broadcast_to(prior["weights"]["alpha"], (K,)), dims="component"
        )
        return pt.log(weights)[None, :]
    r = problem.concomitant.shape[1]
    scale_a = pm.Data(
        "concomitant_intercept_scale", np.asarray(prior["concomitant_intercept"]["sigma"], float)
    )
    scale_g = pm.Data(
        "concomitant_coef_scale",
        np.broadcast_to(np.asarray(prior["concomitant_coef"]["sigma"], float), (r,)).copy(),
        dims="concomitant",
    )
    raw_a = pm.Normal("concomitant_intercept_raw", 0.0, 1.0, dims="component")
    raw_g = pm.Normal("concomitant_coef_raw", 0.0, 1.0, dims=("component", "concomitant"))
    alpha = pm.Deterministic(
        "concomitant_intercept", scale_a * (raw_a - raw_a[0]), dims="component"
    )
    gamma = pm.Deterministic(
        "concomitant_coef",
        scale_g[None, :] * (raw_g - raw_g[0][None, :]),
        dims=("component", "concomitant"),
    )
    W = pm.Data("W", problem.concomitant, dims=(unit, "concomitant"))
    eta = alpha[None, :] + pt.dot(W, gamma.T)  # (G, K)
    log_pi = eta - pt.logsumexp(eta, axis=1, keepdims=True)
    mass = problem.group_weight * problem.group_size  # rows a group stands for
    pm.Deterministic("weights", pt.dot(mass / mass.sum(), pt.exp(log_pi)), dims="component")
    return log_pi


# --------------------------------------------------------------------------------------------
# EM values and starts
# --------------------------------------------------------------------------------------------


def em_values(model: Any) -> dict[str, np.ndarray]:
    """The EM estimates: ``weights``, ``intercept``, ``coef``, ``sigma`` (not for Poisson or
    binomial components), ``df`` (Student-t) and, with a concomitant model,
    ``concomitant_intercept`` (K,) and ``concomitant_coef`` (K, r)."""
    values = _sampling._em_values(model)
    if getattr(model, "concomitant_coef_", None) is not None:
        values["concomitant_intercept"] = np.asarray(model.concomitant_intercept_, dtype=float)
        values["concomitant_coef"] = np.asarray(model.concomitant_coef_, dtype=float)
    return values


def initial_point(values: Mapping[str, np.ndarray], pm_model: pm.Model) -> dict[str, np.ndarray]:
    """``values`` (the names of :func:`em_values`) as a start for ``pm_model``'s free variables.

    The standardised logit coefficients start at the centred representative
    (``raw = v / scale - mean_k(v / scale)``), the mode of their prior along the direction
    the likelihood does not see.
    """
    free = {rv.name for rv in pm_model.free_RVs}
    start = _sampling._initial_point(values, pm_model)
    features = list(pm_model.coords["feature"])
    coef = np.asarray(values["coef"], dtype=float)
    if "intercept_shared" in free:
        start["intercept_shared"] = np.asarray(np.mean(values["intercept"]))
    for name, dim in (("coef_shared", "feature_shared"), ("coef_varying", "feature_varying")):
        if name in free:
            idx = [features.index(f) for f in pm_model.coords[dim]]
            start[name] = coef[:, idx].mean(axis=0) if name == "coef_shared" else coef[:, idx]
    for name in CONCOMITANT:
        if f"{name}_raw" in free:
            scale = np.asarray(pm_model[f"{name}_scale"].get_value(), dtype=float)
            v = np.asarray(values[name], dtype=float) / scale
            start[f"{name}_raw"] = v - v.mean(axis=0)
    return start


def _optima(model: Any, problem: _StructuredProblem) -> list[dict]:
    """EM's estimate first, then the fit's other regular optima within the window of
    :func:`bayes_mlr.bayes.starts.em_optima` (with a concomitant model, each with its own
    concomitant coefficients). The optima of a family without sigma have none; those of
    Student-t components carry their own degrees of freedom (EM's where an optimum saved by an
    older version has none)."""
    from bayes_mlr.core.em import OPTIMUM_LL_TOL

    em = em_values(model)
    fit = {**em, "log_likelihood": float(model.log_likelihood_), "n_runs": None, "source": "fit"}
    found = [fit]
    result = getattr(model, "result_", None)
    if result is None:
        return found
    floor = fit["log_likelihood"] - _starts.LL_WINDOW_PER_PARAMETER * int(result.n_parameters)
    slack = OPTIMUM_LL_TOL * float(result.n_obs)
    for optimum in sorted(result.optima, key=lambda o: -o.log_likelihood):
        if not _starts._regular(optimum) or optimum.log_likelihood < floor:
            continue
        if any(abs(optimum.log_likelihood - f["log_likelihood"]) <= slack for f in found):
            continue
        if problem.concomitant is not None and optimum.concomitant_coef is None:
            continue  # saved by an older version: no concomitant coefficients to start from
        values = {k: np.array(v, dtype=float) for k, v in optimum.params().items()}
        if not problem.family.has_sigma:
            del values["sigma"]
        if "df" in em and values.get("df") is None:
            values["df"] = np.array(em["df"])
        values["coef"][:, problem.shared] = values["coef"][:, problem.shared].mean(axis=0)
        if problem.shared_intercept:
            values["intercept"][:] = values["intercept"].mean()
        found.append(
            {
                **values,
                "log_likelihood": float(optimum.log_likelihood),
                "n_runs": int(optimum.n_runs),
                "source": "fit",
            }
        )
    return found


def _standard_errors(model: Any, em: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """EM standard errors of every parameter, 10% of the value where none is usable."""
    extra = {name: np.asarray(em[name], dtype=float) for name in (*CONCOMITANT, "df") if name in em}
    return _starts._standard_errors(model, extra)


def chain_starts(
    model: Any, problem: _StructuredProblem, chains: int, starts: str, random_state: Any = None
) -> tuple[list[_starts.Start], list[dict]]:
    """Where the chains start, and the EM optima the modes are compared with.

    ``starts="em"``: every chain at the EM estimate. ``starts="dispersed"``: chain 0 at the EM
    estimate, then the fit's other regular optima (the minimal-subset search of the plain
    model is not run),
    then over-dispersed points (:data:`bayes_mlr.bayes.starts.DISPERSION` EM standard errors
    from an optimum; shared coefficients moved as one, the reference row of the concomitant
    coefficients kept at zero).
    """
    optima = _optima(model, problem)
    em = {k: v for k, v in optima[0].items() if isinstance(v, np.ndarray)}
    if starts == "em":
        return [_starts.Start(em, "EM estimate", 0)] * chains, optima
    rng = np.random.default_rng(random_state)
    se = _standard_errors(model, em)
    out: list[_starts.Start] = []
    for c in range(chains):
        if c < len(optima):
            values = {k: np.array(v) for k, v in optima[c].items() if isinstance(v, np.ndarray)}
            source = "EM estimate" if c == 0 else _starts._optimum_name(c, optima[c])
            out.append(_starts.Start(values, source, c))
            continue
        j = (c - len(optima)) % len(optima)
        base = {k: np.array(v) for k, v in optima[j].items() if isinstance(v, np.ndarray)}
        values = _starts._over_dispersed(base, se, optima[0], rng, problem.variance)
        if problem.df_fixed is not None:
            values["df"] = base["df"]  # known, not a parameter
        values["coef"][:, problem.shared] = values["coef"][0, problem.shared]
        if problem.shared_intercept:
            values["intercept"][:] = values["intercept"][0]
        for name in CONCOMITANT:
            if name in base:
                moved = base[name] + _starts.DISPERSION * se[name] * rng.standard_normal(
                    base[name].shape
                )
                values[name] = moved - moved[0]  # the reference row stays zero
        out.append(_starts.Start(values, f"over-dispersed around EM optimum {j}", j))
    return out, optima


# --------------------------------------------------------------------------------------------
# Relabelling
# --------------------------------------------------------------------------------------------


def _centred(value: np.ndarray, axis: int) -> np.ndarray:
    return value - value.mean(axis=axis, keepdims=True)


def _alignment_features(
    values: Mapping[str, np.ndarray], problem: _StructuredProblem, axis: int
) -> dict[str, np.ndarray]:
    """The component-wise quantities a relabelling permutes, each ``(..., K)`` (``coef``:
    ``(..., K, p_varying)``); ``axis`` is the component axis (0 for EM, 2 for draws).

    Student-t ``df`` is left out of the match (it is permuted with the rest): its posterior is
    wide and skewed and its EM standard error often unusable (``df`` at the bound), so it would
    add noise to the cost, while the weights, coefficients and scales identify the components.
    """
    out: dict[str, np.ndarray] = {}
    if "weights" in values:
        out["weights"] = values["weights"]
    if "intercept" in values and not problem.shared_intercept:
        out["intercept"] = values["intercept"]
    if "coef" in values and (~problem.shared).any():
        out["coef"] = values["coef"][..., ~problem.shared]
    if "sigma" in values and problem.variance == "component":
        out["sigma"] = values["sigma"]
    if "concomitant_intercept" in values:
        out["concomitant_intercept"] = _centred(values["concomitant_intercept"], axis)
        coef = _centred(values["concomitant_coef"], axis)
        for j in range(coef.shape[-1]):
            out[f"concomitant_coef[{j}]"] = coef[..., j]
    return out


def _alignment_scales(
    model: Any, em: Mapping[str, np.ndarray], problem: _StructuredProblem
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Scales of the features of :func:`_alignment_features` at EM: standard errors (the RMS
    over the non-reference rows for the centred concomitant coefficients), with the fallback of
    :func:`bayes_mlr.bayes.model._em_scales` and its warning."""
    plain = {k: em[k] for k in ("weights", "intercept", "coef", "sigma") if k in em}
    conc = {k: em[k] for k in CONCOMITANT if k in em}
    scales, fallen = _sampling._em_scales(model, {**plain, **conc})
    out = dict(scales)
    K = em["weights"].shape[0]
    if conc and K > 1:
        for name in CONCOMITANT:
            s = np.sqrt(np.mean(np.asarray(scales[name])[1:] ** 2, axis=0))
            out[name] = np.broadcast_to(s, em[name].shape)
    features = _alignment_features(out, problem, 0)
    if conc:  # the centring does not apply to scales: take them as they are
        features["concomitant_intercept"] = out["concomitant_intercept"]
        for j in range(em["concomitant_coef"].shape[1]):
            features[f"concomitant_coef[{j}]"] = out["concomitant_coef"][:, j]
    return features, fallen


def _draw_values(post: xr.Dataset, problem: _StructuredProblem) -> dict[str, np.ndarray]:
    """``(chain, draw, K[, ...])`` arrays of the parameters (fixed ones filled in)."""
    coef = post["coef"].transpose("chain", "draw", "component", "feature").to_numpy()
    C, D, K, _ = coef.shape
    out = {"coef": coef}

    def get(name: str) -> np.ndarray | None:
        if name not in post:
            return None
        da = post[name]
        if "component" not in da.dims:
            return np.repeat(da.transpose("chain", "draw").to_numpy()[..., None], K, axis=-1)
        return da.transpose("chain", "draw", "component", ...).to_numpy()

    weights = get("weights")
    out["weights"] = np.ones((C, D, K)) if weights is None else weights
    intercept = get("intercept")
    out["intercept"] = np.zeros((C, D, K)) if intercept is None else intercept
    sigma = get("sigma")
    if sigma is None:  # fixed, or (variance="none") none at all: unit scales, never used
        fixed = problem.fixed_sigma if problem.fixed_sigma is not None else 1.0
        sigma = np.broadcast_to(fixed, (C, D, K))
    out["sigma"] = sigma
    df = get("df")
    if df is None and problem.df_fixed is not None:
        df = np.full((C, D, K), float(problem.df_fixed))
    if df is not None:
        out["df"] = df
    for name in CONCOMITANT:
        value = get(name)
        if value is not None:
            out[name] = value
    return out


def _stephens(
    values: Mapping[str, np.ndarray], perms: np.ndarray, problem: _StructuredProblem
) -> tuple[np.ndarray, int]:
    """Stephens' permutations from the group classification probabilities."""
    C, D, K = perms.shape
    S = C * D
    flat = {k: np.asarray(v).reshape(S, *np.shape(v)[2:]) for k, v in values.items()}
    units = np.arange(problem.n_groups)
    if units.size > stephens_mod.MAX_ROWS:
        units = np.sort(
            np.random.default_rng(0).choice(units, stephens_mod.MAX_ROWS, replace=False)
        )
    if problem.grouped:
        rows = np.flatnonzero(np.isin(problem.groups, units))
        groups = np.searchsorted(units, problem.groups[rows])
    else:
        rows, groups = units, None
    W = None if problem.concomitant is None else problem.concomitant[units]
    P = stephens_mod.group_classification_probabilities(
        problem.X[rows],
        problem.y[rows],
        flat,
        groups=groups,
        concomitant=W,
        family=problem.family,
        extra=problem.extra[rows],
    )
    out, n_iter, _ = stephens_mod.stephens_permutations(P, perms.reshape(S, K))
    return out.reshape(C, D, K), n_iter


def _align(
    idata: xr.DataTree,
    model: Any,
    em: Mapping[str, np.ndarray],
    problem: _StructuredProblem,
    relabel: str,
) -> xr.DataTree:
    """Relabel every draw to the EM labelling (as :func:`bayes_mlr.align_posterior`), then
    re-reference the concomitant coefficients to the new component 0."""
    post = idata["posterior"].to_dataset()
    K = post.sizes["component"]
    values = _draw_values(post, problem)
    ref_scale, fallen = _alignment_scales(model, em, problem)
    draws = component_features(_alignment_features(values, problem, 2), K)
    ref = component_features(_alignment_features(em, problem, 0), K)
    sc = component_features(ref_scale, K)
    cost = assignment_cost(draws, ref, sc)
    perms = assign_from_cost(cost)
    gap = cost_gap(cost)
    attrs: dict[str, Any] = {}
    if K > 1:
        stephens, n_iter = _stephens(values, perms, problem)
        attrs["relabel_agreement"] = float(np.mean(np.all(stephens == perms, axis=-1)))
        attrs["stephens_iterations"] = n_iter
        if relabel == "stephens":
            perms = stephens
    relabelled = np.any(perms != np.arange(K), axis=-1)
    new_vars = {}
    for name, da in post.data_vars.items():
        if "component" in da.dims and da.dims[:2] == ("chain", "draw"):
            axis = da.dims.index("component")
            new_vars[name] = da.copy(data=apply_permutations(da.to_numpy(), perms, axis))
    for name in CONCOMITANT:  # back to component 0 as the reference
        if name in new_vars:
            da = new_vars[name].transpose("chain", "draw", "component", ...)
            data = da.to_numpy()
            new_vars[name] = da.copy(data=data - data[:, :, :1]).transpose(*post[name].dims)
    post = post.assign(new_vars)
    threshold = _sampling.AMBIGUOUS_GAP_PER_FEATURE * draws.shape[-1]
    post.attrs.update(
        relabel=relabel,
        relabelled_fraction=float(relabelled.mean()),
        relabel_ambiguous_share=float(np.mean(gap < threshold)) if K > 1 else 0.0,
        **attrs,
    )
    if problem.concomitant is not None:
        post.attrs["concomitant_reference_changed"] = float(np.mean(perms[..., 0] != 0))
    idata["posterior"] = xr.DataTree(post)
    stats = idata["sample_stats"].to_dataset()
    stats["relabelled"] = (("chain", "draw"), relabelled)
    stats["permutation"] = (("chain", "draw", "component"), perms)
    stats["relabel_cost_gap"] = (("chain", "draw"), gap)
    idata["sample_stats"] = xr.DataTree(stats)
    idata.attrs["alignment_scale_fallback"] = ",".join(fallen)
    return idata


# --------------------------------------------------------------------------------------------
# After sampling: log-likelihood, predictive draws, EM group
# --------------------------------------------------------------------------------------------


def _per_draw(idata: xr.DataTree, pm_model: pm.Model, output: Any) -> np.ndarray:
    """``output`` (a graph of the free variables) at every draw, ``(chain, draw, ...)``."""
    free = list(pm_model.free_RVs)
    post = idata["posterior"]
    inputs = [rv.type(name=rv.name) for rv in free]
    graph = clone_replace(output, dict(zip(free, inputs, strict=True)))
    fn = pytensor.function(inputs, graph, on_unused_input="ignore", **_sampling._compile_kwargs())
    arrays = [
        post[rv.name].transpose("chain", "draw", *post[rv.name].dims[2:]).to_numpy() for rv in free
    ]
    C, D = post.sizes["chain"], post.sizes["draw"]
    first = np.asarray(fn(*[a[0, 0] for a in arrays]))
    out = np.empty((C, D, *first.shape))
    for c in range(C):
        for d in range(D):
            out[c, d] = fn(*[a[c, d] for a in arrays])
    return out


def _add_log_likelihood(
    idata: xr.DataTree, pm_model: pm.Model, problem: _StructuredProblem
) -> xr.DataTree:
    """Group ``log_likelihood``: variable ``y``, one term ``c_g ell_g`` per group (dim
    ``group``; per row, dim ``obs``, without groups)."""
    terms = _per_draw(idata, pm_model, pm_model["y"])
    unit = problem.unit
    ds = xr.Dataset(
        {"y": (("chain", "draw", unit), terms)},
        coords={
            "chain": idata["posterior"]["chain"].values,
            "draw": idata["posterior"]["draw"].values,
            unit: np.arange(terms.shape[-1]),
        },
    )
    ds.attrs["unit"] = unit
    idata["log_likelihood"] = xr.DataTree(ds)
    return idata


def _log_prior_weights_np(
    values: Mapping[str, np.ndarray], problem: _StructuredProblem
) -> np.ndarray:
    """log pi ``(S, G | 1, K)`` from flat draws."""
    if problem.concomitant is None:
        with np.errstate(divide="ignore"):
            return np.log(values["weights"])[:, None, :]
    eta = values["concomitant_intercept"][:, None, :] + np.einsum(
        "gr,skr->sgk", problem.concomitant, values["concomitant_coef"]
    )
    top = eta.max(axis=-1, keepdims=True)
    return eta - top - np.log(np.exp(eta - top).sum(axis=-1, keepdims=True))


def _add_posterior_predictive(
    idata: xr.DataTree, problem: _StructuredProblem, random_seed: Any
) -> xr.DataTree:
    """Group ``posterior_predictive``: ``y`` ``(chain, draw, obs)`` drawn with one component
    per group (per row without groups), from the prior weights of its group, and from that
    component's family density (:func:`bayes_mlr.bayes.families.draw`)."""
    rng = np.random.default_rng(_sampling._first_seed(random_seed))
    values = _draw_values(idata["posterior"].to_dataset(), problem)
    C, D, K = values["weights"].shape
    S = C * D
    flat = {k: np.asarray(v).reshape(S, *np.shape(v)[2:]) for k, v in values.items()}
    log_pi = np.broadcast_to(_log_prior_weights_np(flat, problem), (S, problem.n_groups, K))
    cumulative = np.cumsum(np.exp(log_pi), axis=-1)
    u = rng.uniform(size=(S, problem.n_groups, 1)) * cumulative[..., -1:]
    z = np.minimum((u >= cumulative).sum(axis=-1), K - 1)  # (S, G)
    rows = z if not problem.grouped else z[:, problem.groups]  # (S, n)
    eta = flat["intercept"][:, None, :] + np.einsum("np,skp->snk", problem.X, flat["coef"])
    eta = eta + _families.offset_of(problem.family, problem.extra)[None, :, None]
    loc = np.take_along_axis(eta, rows[..., None], axis=-1)[..., 0]
    scale = np.take_along_axis(flat["sigma"], rows, axis=-1)
    df = np.take_along_axis(flat["df"], rows, axis=-1) if "df" in flat else None
    y = _families.draw(problem.family, loc, problem.extra, scale, df, rng).reshape(C, D, -1)
    ds = xr.Dataset(
        {"y": (("chain", "draw", "obs"), y)},
        coords={
            "chain": idata["posterior"]["chain"].values,
            "draw": idata["posterior"]["draw"].values,
            "obs": np.arange(y.shape[-1]),
        },
    )
    idata["posterior_predictive"] = xr.DataTree(ds)
    return idata


def _em_dataset(model: Any, problem: _StructuredProblem) -> xr.Dataset:
    ds = _sampling._em_dataset(model, problem)
    if problem.concomitant is None:
        return ds
    try:
        se = {k: np.asarray(v, dtype=float) for k, v in model.standard_errors_.items()}
    except (AttributeError, ValueError, np.linalg.LinAlgError):
        se = {}
    em = em_values(model)
    ds = ds.assign_coords(concomitant=list(problem.concomitant_names))
    for name, dims in (
        ("concomitant_intercept", ("component",)),
        ("concomitant_coef", ("component", "concomitant")),
    ):
        value = em[name]
        ds[name] = (dims, value)
        ds[f"{name}_se"] = (dims, np.broadcast_to(se.get(name, np.nan), value.shape))
    return ds


def _observed_data(idata: xr.DataTree, problem: _StructuredProblem) -> None:
    """Group ``observed_data``: ``y`` (obs,), as the plain model's observed variable gives it
    (here the likelihood is a Potential, so PyMC leaves the group empty; ``constant_data``
    holds the model's data as usual)."""
    ds = xr.Dataset({"y": ("obs", problem.y)}, coords={"obs": np.arange(problem.y.shape[0])})
    idata["observed_data"] = xr.DataTree(ds)


def _structure_attrs(problem: _StructuredProblem) -> dict[str, Any]:
    names = list(problem.feature_names)
    return {
        "structured": 1,
        "grouped": int(problem.grouped),
        "n_groups": int(problem.n_groups),
        "log_likelihood_unit": problem.unit,
        "shared_features": json.dumps([names[j] for j in np.flatnonzero(problem.shared)]),
        "shared_intercept": int(problem.shared_intercept),
        "concomitant": json.dumps(list(problem.concomitant_names)),
        "family": json.dumps(problem.family.to_dict()),
    }


def _concomitant_invariants(idata: xr.DataTree, problem: _StructuredProblem) -> dict:
    """Per draw, the centred concomitant coefficients sorted over the components: quantities no
    relabelling changes, for the modes."""
    if problem.concomitant is None:
        return {}
    post = idata["posterior"]
    out = {}
    for name in CONCOMITANT:
        value = post[name].transpose("chain", "draw", "component", ...).to_numpy()
        value = np.sort(_centred(value, 2), axis=2)
        value = value.reshape(*value.shape[:3], -1)
        for k in range(value.shape[2]):
            for j in range(value.shape[3]):
                out[f"{name} (centred, sorted) {k},{j}"] = value[:, :, k, j]
    return out


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def sample_structured(
    model: Any,
    *,
    draws: int,
    tune: int,
    chains: int,
    sampler: str,
    random_seed: Any,
    progressbar: bool,
    priors: Mapping[str, Mapping[str, Any]] | None,
    pm_model: pm.Model | None,
    target_accept: float,
    cores: int | None,
    log_likelihood: bool,
    posterior_predictive: bool,
    starts: str,
    relabel: str,
    kwargs: dict[str, Any],
) -> xr.DataTree:
    """:func:`bayes_mlr.sample_posterior` for a structured model (same arguments and result,
    with the differences its docstring lists)."""
    backend = _sampling._resolve_sampler(sampler)
    if starts not in _starts.STARTS:
        raise ValueError(f"starts must be one of {list(_starts.STARTS)}; got {starts!r}")
    if relabel not in RELABEL_METHODS:
        raise ValueError(f"relabel must be one of {list(RELABEL_METHODS)}; got {relabel!r}")
    em = em_values(model)
    problem = structured_problem(model)
    if draws < 1 or tune < 0 or chains < 1:
        raise ValueError("draws and chains must be >= 1 and tune >= 0")
    if sampler == "auto":
        backend = _sampling._auto_sampler(problem, chains, draws + tune)
    if pm_model is None:
        prior_record = _prior_record(problem, priors)
        pm_model = build_structured(problem, priors)
    elif priors is not None:
        raise ValueError("pass priors to build_model, not with an existing pm_model")
    else:
        prior_record = _prior_record(problem, None, pm_model)
    chain_start, optima = chain_starts(
        model, problem, chains, starts, random_state=_sampling._first_seed(random_seed)
    )
    start = [initial_point(c.values, pm_model) for c in chain_start]
    idata, wall = _sampling.run_sampler(
        backend,
        pm_model,
        start,
        problem,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        random_seed=random_seed,
        progressbar=progressbar,
        target_accept=target_accept,
        kwargs=kwargs,
    )
    idata = _align(idata, model, em, problem, relabel)
    idata = _sampling._add_modes(
        idata,
        pm_model,
        chain_start,
        optima,
        problem,
        starts,
        extra_invariants=_concomitant_invariants(idata, problem),
    )
    if starts == "dispersed":
        idata["modes"].attrs["starts_note"] = (
            f"structured model: chains start at the fit's own regular EM optima ({len(optima)} "
            "found) and over-dispersed points around them; the minimal-subset search for other "
            "optima of the plain model is not run"
        )
    _observed_data(idata, problem)
    if log_likelihood:
        idata = _add_log_likelihood(idata, pm_model, problem)
    if posterior_predictive:
        idata = _add_posterior_predictive(idata, problem, random_seed)
    return _sampling.finish_posterior(
        idata,
        _em_dataset(model, problem),
        problem,
        backend=backend,
        wall=wall,
        prior_record=prior_record,
        stacklevel=3,
        **_structure_attrs(problem),
    )
