"""Bayesian posterior of a mixture of linear regressions with PyMC, started from EM.

The model is the one EM fits, with the component memberships marginalised out::

    y_i ~ sum_j weights_j * Normal(intercept_j + coef_j . x_i, sigma_j ** 2)

This module is the only one in ``bayes_mlr`` that imports PyMC and PyTensor; it is imported
lazily (``import bayes_mlr`` stays light).

* :func:`build_model` writes that model in PyMC (variables ``weights``, ``intercept``,
  ``coef``, ``sigma``; dims ``component`` (always first), ``feature``, ``obs``) with
  data-scaled default priors (:func:`default_priors`), for users to extend;
* :func:`sample_posterior` samples it with PyMC's NUTS, nutpie or numpyro, chains started at
  the distinct EM optima and over-dispersed points (:mod:`bayes_mlr.bayes.starts`), and returns an
  ``xarray.DataTree`` aligned to the EM labelling, with the pointwise log-likelihood, the EM
  estimates (group ``em``) and the posterior modes the chains sit in (group ``modes``,
  :mod:`bayes_mlr.bayes.modes`);
* :func:`align_posterior` relabels draws (see :mod:`bayes_mlr.core.labels`).

Models with concomitant variables, grouped rows or shared coefficients are built and sampled by
:mod:`bayes_mlr.bayes.structured`, to which :func:`build_model` and :func:`sample_posterior` hand
them.

The speed over a hand-written ``pm.NormalMixture`` model comes from three places: the
likelihood is one fused PyTensor Op (:mod:`bayes_mlr.bayes.mixture_op`: compiled loops over
component-major arrays, an analytic gradient reusing the responsibilities), cheaper per
gradient (``tests/benchmarks/bench_sampling.py`` prints both with its commit); a dense mass
matrix set from the curvature of the log-posterior at EM (PyMC and numpyro
back-ends); and chains in parallel on every core by default (PyMC's default assumes
hyper-threads and uses half).

Label switching is handled twice over: every chain starts *exactly* at its start (no jitter)
on every back-end, and afterwards each draw is relabelled to the EM labelling by
:mod:`bayes_mlr.core.labels`. Modes that relabelling cannot merge are reported, not averaged away.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayes_mlr.bayes import starts as _starts
from bayes_mlr.bayes import stephens as stephens_mod
from bayes_mlr.bayes.mixture_op import mixture_regression_logp, pointwise_logp_draws
from bayes_mlr.bayes.priors import default_priors, describe_priors, merge_priors

# The machinery shared with the structured models lives in bayes.sampling; the names are
# imported here, where they were first defined, so `bayes_mlr.bayes.model._problem` etc. still
# resolve (and tests may patch them here).
from bayes_mlr.bayes.sampling import _BACKENDS as _BACKENDS
from bayes_mlr.bayes.sampling import _PARALLEL_WORK as _PARALLEL_WORK
from bayes_mlr.bayes.sampling import _SAMPLER_MODULES as _SAMPLER_MODULES
from bayes_mlr.bayes.sampling import (
    AMBIGUOUS_GAP_PER_FEATURE,
    SAMPLERS,
    _add_modes,
    _auto_sampler,
    _compile_kwargs,
    _em_dataset,
    _em_scales,
    _em_values,
    _first_seed,
    _initial_point,
    _is_structured,
    _Problem,
    _problem,
    _resolve_sampler,
    available_samplers,
    finish_posterior,
    run_sampler,
)
from bayes_mlr.bayes.sampling import RELABEL_WARN_FRACTION as RELABEL_WARN_FRACTION
from bayes_mlr.bayes.sampling import _default_cores as _default_cores
from bayes_mlr.bayes.sampling import _hessian_covariance as _hessian_covariance
from bayes_mlr.bayes.sampling import _logp_dlogp as _logp_dlogp
from bayes_mlr.bayes.sampling import _value_vars_and_point as _value_vars_and_point
from bayes_mlr.core.labels import (
    RELABEL_METHODS,
    LabelSwitchingWarning,
    apply_permutations,
    assign_from_cost,
    assignment_cost,
    component_features,
    cost_gap,
)

__all__ = [
    "SAMPLERS",
    "LabelSwitchingWarning",
    "align_posterior",
    "available_samplers",
    "build_model",
    "default_priors",
    "em_initial_point",
    "sample_posterior",
]

_PARAMS = ("weights", "intercept", "coef", "sigma")


# --------------------------------------------------------------------------------------------
# Likelihood: the marginal mixture density (logsumexp over components)
# --------------------------------------------------------------------------------------------


def _core(x, ndim: int):
    """Drop the (length-1) batch dimensions PyMC prepends to a parameter's core dimensions."""
    return x[(0,) * (x.ndim - ndim)] if x.ndim > ndim else x


def _mixture_logp(value, X, log_w, intercept, coef, sigma):
    """Pointwise log-density ``log sum_k w_k N(value | intercept_k + coef_k . x, sigma_k)``.

    Computed by the fused Op of :mod:`bayes_mlr.bayes.mixture_op` (numpy over component-major
    ``(K, n)`` arrays, with an analytic gradient that reuses the responsibilities).
    """
    return mixture_regression_logp(
        value, X, _core(log_w, 1), _core(intercept, 1), _core(coef, 2), _core(sigma, 1)
    )


def _weighted_mixture_logp(value, X, log_w, intercept, coef, sigma, sample_weight):
    """``sample_weight * log p(value)``: replication weights."""
    return sample_weight * _mixture_logp(value, X, log_w, intercept, coef, sigma)


def _mixture_random(X, log_w, intercept, coef, sigma, *sample_weight, rng=None, size=None):
    """Draw y from the mixture given X (prior and posterior predictive draws).

    Parameters carry batch dimensions in front of their core dimensions (``(..., p)`` for
    ``X``, ``(..., K)``, ``(..., K, p)``); ``sample_weight`` does not affect the draws.
    """
    rng = np.random.default_rng(rng)
    X, log_w, intercept, coef, sigma = (
        np.asarray(a, dtype=float) for a in (X, log_w, intercept, coef, sigma)
    )
    mu = intercept + np.einsum("...j,...kj->...k", X, coef)
    n_components = mu.shape[-1]
    shape = (
        tuple(size)
        if size is not None
        else np.broadcast_shapes(mu.shape, sigma.shape, log_w.shape)[:-1]
    )
    mu = np.broadcast_to(mu, (*shape, n_components))
    scale = np.broadcast_to(sigma, (*shape, n_components))
    log_w = np.broadcast_to(log_w, (*shape, n_components))
    weights = np.exp(log_w - log_w.max(axis=-1, keepdims=True))
    cumulative = np.cumsum(weights, axis=-1)
    u = rng.uniform(size=shape) * cumulative[..., -1]
    component = np.minimum((u[..., None] >= cumulative).sum(axis=-1), n_components - 1)
    loc = np.take_along_axis(mu, component[..., None], axis=-1)[..., 0]
    sd = np.take_along_axis(scale, component[..., None], axis=-1)[..., 0]
    return rng.normal(loc, sd)


# --------------------------------------------------------------------------------------------
# Model builder
# --------------------------------------------------------------------------------------------


def build_model(
    model: Any,
    X: Any = None,
    y: Any = None,
    *,
    sample_weight: Any = None,
    priors: Mapping[str, Mapping[str, Any]] | None = None,
    groups: Any = None,
    concomitant: Any = None,
    offset: Any = None,
    trials: Any = None,
) -> pm.Model:
    """Build the PyMC model of the mixture of regressions that ``model`` describes.

    The component memberships are marginalised out: the observed ``y`` has the density
    ``sum_k weights[k] * Normal(intercept[k] + coef[k] @ x, sigma[k])``, written as a
    ``logsumexp`` over the last (mixture) axis. With ``sample_weight`` (replication weights)
    observation ``i`` contributes ``sample_weight[i] * log p(y_i | theta)``, and the pointwise
    log-likelihood that :func:`sample_posterior` stores holds these weighted terms, so its sum
    over ``obs`` is the likelihood the posterior uses (EM's sample-weighted log-likelihood).

    Variables (``component`` first in every one):

    * ``weights`` ``(component,)``: Dirichlet; absent when ``n_components == 1``;
    * ``intercept`` ``(component,)``: Normal; absent when ``fit_intercept=False``;
    * ``coef`` ``(component, feature)``: Normal;
    * ``sigma``: HalfNormal ``(component,)`` for ``variance="component"``, one scalar for
      ``"shared"``; for ``"fixed"`` it is data (``pm.Data`` ``(component,)``), not a variable;
    * data: ``X`` ``(obs, feature)``, ``sample_weight`` ``(obs,)`` when given, and the
      observed ``y`` ``(obs,)``.

    The default priors are those of :func:`default_priors`; ``priors`` overrides any of their
    arguments.

    A model with concomitant variables, groups or shared coefficients (fitted with them, or
    given ``groups``/``concomitant`` here) is built by
    :func:`bayes_mlr.bayes.structured.build_structured`: the likelihood is then the
    ``pm.Potential`` ``"y"`` (one term per group, dim ``group``, or per row), and ``coef``,
    ``intercept`` and ``weights`` may be Deterministics of the free variables ``coef_shared``
    ``(feature_shared,)``, ``coef_varying`` ``(component, feature_varying)``,
    ``intercept_shared`` and the concomitant coefficients; ``concomitant_intercept``
    ``(component,)`` and ``concomitant_coef`` ``(component, concomitant)`` (row 0 zero, the
    reference) are added. See :mod:`bayes_mlr.bayes.structured`.

    Parameters
    ----------
    model : MixtureOfRegressions
        Supplies ``n_components``, ``variance``, ``sigma`` (for ``"fixed"``),
        ``fit_intercept`` and, if fitted, the feature names and training data.
    X : array-like of shape (n, p), optional
        Defaults to the estimator's training data (then also ``y`` and ``sample_weight``).
    y : array-like of shape (n,), optional
    sample_weight : array-like of shape (n,), optional
        Replication weights.
    priors : dict, optional
        E.g. ``{"coef": {"sigma": 1.0}, "weights": {"alpha": [1, 1, 1]}}``; keys and
        arguments as returned by :func:`default_priors`.
    groups : array-like of shape (n,), optional
        Group labels of the rows of ``X`` (with ``X`` and ``y``; by default the training
        data's).
    concomitant : array-like of shape (n, r), optional
        Concomitant variables of the rows of ``X`` (needed with ``X`` and ``y`` when the
        estimator has a concomitant model).
    offset, trials : array-like of shape (n,), optional
        The offset (Poisson, binomial) and the number of trials (binomial) of the rows of
        ``X`` (needed with ``X`` and ``y`` when the estimator was fitted with them; by default
        the training data's).

    Returns
    -------
    pymc.Model
        Extend it with ``with model: ...`` before sampling if you wish.

    Raises
    ------
    ValueError
        Data of the wrong shape, non-finite values, an unfitted estimator without data, unknown
        priors, or (structured models) concomitant variables or sample weights that vary within
        a group.
    """
    if any(v is not None for v in (groups, concomitant, offset, trials)) or _is_structured(model):
        from bayes_mlr.bayes import structured

        problem = structured.structured_problem(
            model,
            X,
            y,
            sample_weight=sample_weight,
            groups=groups,
            concomitant=concomitant,
            offset=offset,
            trials=trials,
        )
        return structured.build_structured(problem, priors)
    problem = _problem(model, X, y, sample_weight)
    return _build(problem, priors)


def _priors_of(
    problem: _Problem, priors: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, np.ndarray]]:
    """The prior arguments of ``problem``'s model: the data-scaled defaults with ``priors``."""
    defaults = default_priors(problem.X, problem.y, problem.n_components, problem.sample_weight)
    return merge_priors(defaults, priors)


def _prior_record(
    problem: _Problem, priors: Mapping[str, Mapping[str, Any]] | None, pm_model: Any = None
) -> dict[str, Any]:
    """What ``posterior.attrs["priors"]`` records (JSON): the priors the draws came from."""
    if pm_model is not None:  # a model the user built or extended: its own description
        return {"source": "custom", "overridden": [], "rows": [], "model": pm_model.str_repr()}
    return describe_priors(
        _priors_of(problem, priors),
        feature_names=problem.feature_names,
        variance=problem.variance,
        fit_intercept=problem.fit_intercept,
        fixed_sigma=problem.fixed_sigma,
        overrides=priors,
    )


def _build(problem: _Problem, priors: Mapping[str, Mapping[str, Any]] | None) -> pm.Model:
    K = problem.n_components
    n, p = problem.X.shape
    prior = _priors_of(problem, priors)
    coords = {
        "component": np.arange(K),
        "feature": list(problem.feature_names),
        "obs": np.arange(n),
    }
    with pm.Model(coords=coords) as pm_model:
        # Fortran order: the likelihood Op's matrix products take X.T, then contiguous.
        X_data = pm.Data("X", np.asfortranarray(problem.X), dims=("obs", "feature"))
        y_data = pm.Data("y_observed", problem.y, dims="obs")
        if K > 1:
            weights = pm.Dirichlet(
                "weights", a=np.broadcast_to(prior["weights"]["alpha"], (K,)), dims="component"
            )
            log_w = pt.log(weights)
        else:
            log_w = pt.zeros(1)
        coef = pm.Normal(
            "coef",
            mu=np.broadcast_to(prior["coef"]["mu"], (K, p)),
            sigma=np.broadcast_to(prior["coef"]["sigma"], (K, p)),
            dims=("component", "feature"),
        )
        if problem.fit_intercept:
            intercept = pm.Normal(
                "intercept",
                mu=prior["intercept"]["mu"],
                sigma=prior["intercept"]["sigma"],
                dims="component",
            )
        else:
            intercept = pt.zeros(K)
        if problem.variance == "component":
            sigma = pm.HalfNormal(
                "sigma", sigma=np.broadcast_to(prior["sigma"]["sigma"], (K,)), dims="component"
            )
        elif problem.variance == "shared":
            sigma = pm.HalfNormal("sigma", sigma=prior["sigma"]["sigma"]) * pt.ones(K)
        else:
            sigma = pm.Data("sigma", problem.fixed_sigma, dims="component")
        params = [X_data, log_w, intercept, coef, sigma]
        if problem.sample_weight is None:
            logp, signature = _mixture_logp, "(p),(k),(k),(k,p),(k)->()"
        else:
            params.append(pm.Data("sample_weight", problem.sample_weight, dims="obs"))
            logp, signature = _weighted_mixture_logp, "(p),(k),(k),(k,p),(k),()->()"
        # The marginal mixture density of y as a CustomDist: y is an observed variable with a
        # pointwise log-likelihood and predictive draws.
        pm.CustomDist(
            "y",
            *params,
            logp=logp,
            random=_mixture_random,
            signature=signature,
            observed=y_data,
            dims="obs",
        )
    return pm_model


# --------------------------------------------------------------------------------------------
# The EM start
# --------------------------------------------------------------------------------------------


def em_initial_point(model: Any, pm_model: pm.Model) -> dict[str, np.ndarray]:
    """The EM estimate as a start for every chain (constrained values, by variable name).

    Weights on the boundary of the simplex are nudged inside (``>= 1e-8``) so that the start
    has a finite log-density.

    Parameters
    ----------
    model : MixtureOfRegressions
        A fitted estimator.
    pm_model : pymc.Model
        The model from :func:`build_model`.

    Returns
    -------
    dict
        ``{"weights": (K,), "intercept": (K,), "coef": (K, p), "sigma": (K,) or ()}``,
        restricted to the free variables of ``pm_model``.
    """
    return _initial_point(_em_values(model), pm_model)


# --------------------------------------------------------------------------------------------
# Aligning the draws and assembling the DataTree
# --------------------------------------------------------------------------------------------


def _add_log_likelihood(
    idata: xr.DataTree, pm_model: pm.Model, problem: _Problem | None = None
) -> xr.DataTree:
    """Add the pointwise log-likelihood of ``y`` (group ``log_likelihood``) to ``idata``.

    ``sample_weight`` times the log-density when the model has sample weights. With ``problem``
    (``pm_model`` is :func:`_build`'s model of it, not extended), evaluated directly by the
    likelihood Op's own code (:func:`bayes_mlr.bayes.mixture_op.pointwise_logp_draws`: the
    same numbers, on every core); otherwise by PyMC, compiled as for sampling.
    """
    group, _ = _log_likelihood_group(idata, pm_model, problem)
    idata["log_likelihood"] = xr.DataTree(group)
    return idata


def _log_likelihood_group(
    idata: xr.DataTree, pm_model: pm.Model, problem: _Problem | None = None
) -> tuple[xr.Dataset, np.ndarray]:
    """The group :func:`_add_log_likelihood` adds, and the log-likelihood per draw
    ``(chain, draw)``: the sum over the observations of every observed variable's terms."""
    if problem is None:
        group = pm.compute_log_likelihood(
            idata,
            model=pm_model,
            extend_inferencedata=False,
            progressbar=False,
            compile_kwargs=_compile_kwargs() or None,
        )
        group = group.to_dataset() if hasattr(group, "to_dataset") else group
        total = sum(
            group[name].sum([d for d in group[name].dims if d not in ("chain", "draw")])
            for name in group.data_vars
        )
        return group, total.transpose("chain", "draw").to_numpy()
    post = idata["posterior"]
    C, D = post.sizes["chain"], post.sizes["draw"]
    K, (n, p) = problem.n_components, problem.X.shape

    def draws(name: str, *core: str) -> np.ndarray:
        return post[name].transpose("chain", "draw", *core).to_numpy().reshape(C * D, -1)

    ones = np.ones((C * D, K))
    with np.errstate(divide="ignore"):
        log_w = np.log(draws("weights", "component")) if "weights" in post else 0.0 * ones
    intercept = draws("intercept", "component") if problem.fit_intercept else 0.0 * ones
    if problem.variance == "component":
        sigma = draws("sigma", "component")
    elif problem.variance == "shared":
        sigma = draws("sigma") * ones
    else:
        sigma = problem.fixed_sigma * ones
    coef = draws("coef", "component", "feature").reshape(C * D, K, p)
    values, totals = pointwise_logp_draws(
        problem.y, problem.X, log_w, intercept, coef, sigma, sample_weight=problem.sample_weight
    )
    attrs = {
        k: v
        for k, v in post.attrs.items()
        if k.startswith(("creation_", "inference_")) or k == "sample_dims"
    }
    group = xr.Dataset(
        {"y": (("chain", "draw", "obs"), values.reshape(C, D, n))},
        coords={
            "chain": post["chain"].to_numpy(),
            "draw": post["draw"].to_numpy(),
            "obs": np.arange(n),
        },
        attrs={"created_at": datetime.now(UTC).isoformat(), **attrs},
    )
    return group, totals.reshape(C, D)


def _align_to_em(
    idata: Any, model: Any, em: dict[str, np.ndarray], problem: _Problem, relabel: str = "em"
) -> Any:
    """Relabel every draw (EM alignment or Stephens' method), recording both methods'
    agreement and which parameters had no usable SE."""
    scales, fallen = _em_scales(model, em)
    idata = align_posterior(idata, em, scales, relabel=relabel, problem=problem)
    idata.attrs["alignment_scale_fallback"] = ",".join(fallen)
    return idata


def align_posterior(
    posterior: xr.DataTree,
    reference: Mapping[str, np.ndarray],
    scale: Mapping[str, np.ndarray],
    *,
    relabel: str = "em",
    problem: Any = None,
) -> xr.DataTree:
    """Relabel every draw of ``posterior`` to the labelling of ``reference`` (in place).

    Every posterior variable with a ``component`` dimension (the model's and any the user
    added) is reordered draw by draw; the pointwise log-likelihood and predictive draws are
    label-invariant. The EM alignment (``relabel="em"``) matches ``weights``, ``intercept``,
    ``coef`` and ``sigma`` (those present, per component) standardised by ``scale`` to the
    reference (see :mod:`bayes_mlr.core.labels`). With the data (``problem``), Stephens' method
    (:mod:`bayes_mlr.bayes.stephens`) is run too, started from the EM alignment so that it keeps the
    reference's label names, and ``relabel="stephens"`` applies its permutations instead.

    Parameters
    ----------
    posterior : xarray.DataTree
        With a ``posterior`` group of dims ``(chain, draw, component, ...)``.
    reference : mapping
        Reference (EM) values, e.g. ``{"weights": (K,), "coef": (K, p), ...}``.
    scale : mapping
        Positive scales of the same shapes (e.g. EM standard errors).
    relabel : {"em", "stephens"}, default="em"
    problem : optional
        The data (internal): needed for Stephens' method.

    Returns
    -------
    xarray.DataTree
        ``posterior``, with ``sample_stats`` variables ``relabelled`` (chain, draw: the draw
        was permuted), ``permutation`` (chain, draw, component: label ``k`` took the draw's
        component ``permutation[k]``) and ``relabel_cost_gap`` (chain, draw: how much worse,
        in squared standardised distances, the second-best EM assignment is; small =
        ambiguous), and the posterior attributes ``relabel``, ``relabelled_fraction``,
        ``relabel_ambiguous_share`` (share of draws with a cost gap below
        ``AMBIGUOUS_GAP_PER_FEATURE`` per compared feature) and, with Stephens' method run,
        ``relabel_agreement`` (share of draws both methods label alike) and
        ``stephens_iterations``.
    """
    if relabel not in RELABEL_METHODS:
        raise ValueError(f"relabel must be one of {list(RELABEL_METHODS)}; got {relabel!r}")
    if relabel == "stephens" and problem is None:
        raise ValueError("relabel='stephens' needs the data (use sample_posterior)")
    post = posterior["posterior"].to_dataset()
    K = post.sizes["component"]
    names = [n for n in _PARAMS if n in post and "component" in post[n].dims]
    draws = {n: post[n].transpose("chain", "draw", "component", ...).to_numpy() for n in names}
    features = component_features(draws, K)
    ref = component_features({n: np.asarray(reference[n]) for n in names}, K)
    sc = component_features({n: np.asarray(scale[n]) for n in names}, K)
    cost = assignment_cost(features, ref, sc)
    perms = assign_from_cost(cost)
    gap = cost_gap(cost)
    attrs: dict[str, Any] = {}
    if problem is not None and K > 1:
        stephens, n_iter = _stephens(post, perms, problem)
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
    for name in ("concomitant_intercept", "concomitant_coef"):  # component 0: the reference
        if name in new_vars:
            da = new_vars[name].transpose("chain", "draw", "component", ...)
            data = da.to_numpy()
            new_vars[name] = da.copy(data=data - data[:, :, :1]).transpose(*post[name].dims)
    post = post.assign(new_vars)
    threshold = AMBIGUOUS_GAP_PER_FEATURE * features.shape[-1]
    post.attrs.update(
        relabel=relabel,
        relabelled_fraction=float(relabelled.mean()),
        relabel_ambiguous_share=float(np.mean(gap < threshold)) if K > 1 else 0.0,
        **attrs,
    )
    posterior["posterior"] = xr.DataTree(post)
    stats = posterior["sample_stats"].to_dataset()
    stats["relabelled"] = (("chain", "draw"), relabelled)
    stats["permutation"] = (("chain", "draw", "component"), perms)
    stats["relabel_cost_gap"] = (("chain", "draw"), gap)
    posterior["sample_stats"] = xr.DataTree(stats)
    return posterior


def _stephens(post: xr.Dataset, perms: np.ndarray, problem: _Problem) -> tuple[np.ndarray, int]:
    """Stephens' permutations of the raw draws, started from ``perms`` (chain, draw, K)."""
    C, D, K = perms.shape
    S = C * D

    def flat(name: str, default: np.ndarray) -> np.ndarray:
        if name not in post:
            return default
        da = post[name]
        if "component" not in da.dims:  # one shared sigma
            return np.repeat(da.transpose("chain", "draw").to_numpy().reshape(S, 1), K, 1)
        return (
            da.transpose("chain", "draw", "component", ...).to_numpy().reshape(S, K, *da.shape[3:])
        )

    sigma = np.broadcast_to(
        problem.fixed_sigma if problem.fixed_sigma is not None else np.ones(K), (S, K)
    )
    values = {
        "weights": flat("weights", np.ones((S, K))),
        "intercept": flat("intercept", np.zeros((S, K))),
        "coef": flat("coef", np.zeros((S, K, problem.X.shape[1]))),
        "sigma": flat("sigma", sigma),
    }
    rows = np.arange(problem.y.shape[0])
    if rows.size > stephens_mod.MAX_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, stephens_mod.MAX_ROWS, replace=False))
    P = stephens_mod.classification_probabilities(problem.X[rows], problem.y[rows], values)
    out, n_iter, _ = stephens_mod.stephens_permutations(P, perms.reshape(S, K))
    return out.reshape(C, D, K), n_iter


def sample_posterior(
    model: Any,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    *,
    sampler: str = "auto",
    random_seed: int | None = None,
    progressbar: bool = True,
    priors: Mapping[str, Mapping[str, Any]] | None = None,
    pm_model: pm.Model | None = None,
    target_accept: float = 0.8,
    cores: int | None = None,
    log_likelihood: bool = True,
    posterior_predictive: bool = False,
    starts: str = "dispersed",
    relabel: str = "em",
    **kwargs: Any,
) -> xr.DataTree:
    """Sample the posterior of a fitted mixture of regressions, started from EM.

    With ``starts="dispersed"`` (default) chain 0 starts exactly at the EM estimate, the next
    chains at the other distinct regular EM optima (the fit's restarts and a search of
    minimal-subset starts) and the rest at over-dispersed points around them
    (:mod:`bayes_mlr.bayes.starts`); with ``starts="em"`` every chain starts exactly at the EM
    estimate. No back-end jitters a start. Afterwards every draw is relabelled to the EM
    labelling (Hungarian assignment on parameters standardised by the EM standard errors, see
    :func:`align_posterior`); a :class:`~bayes_mlr.core.labels.LabelSwitchingWarning` is issued
    when more than 5% of the draws needed relabelling. The chains are then grouped into
    posterior modes on label-invariant quantities (:mod:`bayes_mlr.bayes.modes`): group ``modes``
    of the result, and a :class:`~bayes_mlr.MultimodalPosteriorWarning` when there are
    several.

    Parameters
    ----------
    model : MixtureOfRegressions
        A fitted estimator; its training data and settings define the model
        (:func:`build_model`).
    draws, tune, chains : int
        Draws kept per chain, tuning steps per chain, number of chains.
    sampler : {"auto", "pymc", "nutpie", "numpyro", "gibbs"}
        NUTS back-end, or ``"gibbs"``: the data-augmentation Gibbs sampler of
        :func:`bayes_mlr.bayes.gibbs.sample_gibbs` (Gaussian components, constant weights,
        integer sample weights; with a Metropolis move from the Laplace approximation).
        ``"auto"`` (through :func:`bayes_mlr.sample_posterior` and the estimator's method) is
        the Gibbs sampler where it covers the model and there are at least
        ``bayes_mlr.bayes.posterior.GIBBS_AUTO_MIN_ROWS`` rows and no PyMC arguments are given
        (measured faster there: :mod:`bayes_mlr.bayes.posterior`), and otherwise PyMC's own
        NUTS, the fastest NUTS back-end in every case we measured:
        for short runs nutpie's compilation dominates, and for long ones the likelihood Op's
        numpy code runs in parallel in PyMC's worker processes while nutpie's threads share
        one interpreter lock (measured once by hand at n = 20,000, K = 3, 4 x 2000 iterations:
        25.5 s against 43.3 s).
        How each honours the EM start:
        ``pymc`` runs with an explicit NUTS step, which PyMC starts at ``initvals`` without
        jitter, and a dense mass matrix initialised from the curvature of the log-posterior at
        EM; ``nutpie`` compiles with ``initial_points`` = EM and ``jitter_rvs=set()`` (its
        default jitters every variable); ``numpyro`` runs with ``jitter=False`` and the same
        dense mass matrix.
    random_seed : int, optional
    progressbar : bool
    priors : dict, optional
        Overrides of the default priors (:func:`default_priors`).
    pm_model : pymc.Model, optional
        A model from :func:`build_model` that you extended (extra variables, other priors);
        by default one is built from ``model`` and ``priors``. Free variables you added start
        at their default initial values, without jitter.
    target_accept : float
        NUTS target acceptance rate.
    cores : int, optional
        Chains run in parallel. By default ``min(chains, os.cpu_count())`` (PyMC's own default
        assumes hyper-threads and halves it), except that the ``pymc`` back-end runs short
        jobs (``chains * (draws + tune) * n * K < 1e8``) in one process, where starting worker
        processes costs more than it saves (measured: n = 2000, K = 3, 4 x 400 iterations took
        9.6 s in two processes and 3.2 s in one).
    log_likelihood : bool
        Store the pointwise log-likelihood (group ``log_likelihood``, variable ``y``, dims
        ``(chain, draw, obs)``) that ``arviz_stats.loo`` needs. With sample weights each term
        is ``sample_weight[i] * log p(y_i | theta)``.
    posterior_predictive : bool
        Also draw ``y`` from the posterior predictive (group ``posterior_predictive``).
    starts : {"dispersed", "em"}, default="dispersed"
        Where the chains start (above). nutpie takes one start for all chains, so with
        distinct starts it runs once per chain.
    relabel : {"em", "stephens"}, default="em"
        How draws are relabelled: matched to the EM estimate (parameters standardised by the
        EM standard errors), or Stephens' (2000) KL method on the draws' classification
        probabilities. Both are run and their agreement recorded
        (``posterior.attrs["relabel_agreement"]``); every draw's permutation is stored
        (``sample_stats["permutation"]``) with the cost gap to its second-best EM assignment.
    **kwargs
        Passed to :func:`pymc.sample` (e.g. ``cores``, ``nuts={...}``).

    Notes
    -----
    A model with concomitant variables, groups or shared coefficients, or with components of
    another family than the Gaussian (``family="poisson"``, ``"binomial"``, ``"student_t"``),
    is sampled by :func:`bayes_mlr.bayes.structured.sample_structured` (the model of
    :func:`bayes_mlr.bayes.structured.build_structured`), with these differences:

    * the likelihood is the family's (:mod:`bayes_mlr.bayes.families`, with the training
      ``offset`` and ``trials``); Poisson and binomial components have no ``sigma`` (none in the
      posterior, the ``em`` group or :func:`~bayes_mlr.compare_em_posterior`; their
      coefficients act on the log / logit scale) and Student-t components add ``df``
      ``(component,)`` (a data value for ``StudentT(df=k)``); ``posterior.attrs["family"]``
      records the family (JSON); see :func:`~bayes_mlr.bayes.priors.default_priors` for the
      priors;

    * the posterior also holds ``concomitant_intercept`` ``(component,)`` and
      ``concomitant_coef`` ``(component, concomitant)`` (row 0 zero: component 0 is the
      reference) with their standardised free variables ``*_raw``, and ``coef_shared``,
      ``coef_varying``, ``intercept_shared`` where coefficients are shared; ``weights`` is then
      the mean prior weight over the training rows, as EM's ``weights_``;
    * relabelling matches the draws to EM on the component-wise parameters and the centred
      concomitant coefficients, then re-references the concomitant coefficients to the new
      component 0 (``posterior.attrs["concomitant_reference_changed"]``: the share of draws);
    * the ``log_likelihood`` group has one term per group (dim ``group``), so
      ``arviz_stats.loo`` on it is leave-one-group-out; without groups, one per row;
    * ``starts="dispersed"`` uses the fit's own EM optima (with a concomitant model only the EM
      estimate, as the other optima carry no concomitant coefficients) and over-dispersed
      points around them: the minimal-subset search for other optima is not run;
    * posterior predictive draws (``posterior_predictive=True``) take one component per group
      from the group's prior weights;
    * ``posterior.attrs`` add ``structured``, ``grouped``, ``n_groups``,
      ``log_likelihood_unit``, ``shared_features``, ``shared_intercept`` and ``concomitant``
      (JSON lists for the names).

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (``weights``, ``intercept``, ``coef``, ``sigma``, component
        first), ``sample_stats`` (with ``relabelled`` and, per draw, ``log_density``, the log
        density on the sampler's unconstrained scale, and ``log_likelihood``, the total
        log-likelihood), ``modes`` (per mode: ``n_chains``, ``mean_lp``, ``share``,
        ``nearest_optimum``, ...; per chain: ``chain_mode``, ``chain_start``), ``observed_data``,
        ``constant_data``,
        ``log_likelihood`` and ``em`` (EM estimates and ``*_se`` standard errors), plus
        ``posterior_predictive`` when asked. ``posterior.attrs`` records ``sampler``,
        ``variance``, ``fit_intercept`` (0/1), ``relabelled_fraction``,
        ``sampling_wall_time`` and ``priors`` (JSON: the priors the draws came from, as
        :func:`bayes_mlr.bayes.priors.describe_priors` gives them; ``"source": "custom"`` with
        the model's own description for a ``pm_model`` of yours).

    Examples
    --------
    >>> from bayes_mlr import MixtureOfRegressions, diagnose, simulate
    >>> data = simulate(500, random_state=0)
    >>> model = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)
    >>> posterior = model.sample_posterior(1000, 1000, 4, random_seed=1)  # doctest: +SKIP
    >>> diagnose(posterior).ok  # doctest: +SKIP
    True
    >>> posterior["modes"]["chain_start"].values  # doctest: +SKIP
    array(['EM estimate', 'over-dispersed around EM optimum 0', ...], dtype='<U34')

    Raises
    ------
    ValueError
        Unknown sampler, or an unfitted estimator.
    ImportError
        The chosen sampler is not installed.
    """
    if sampler == "gibbs":
        raise ValueError(
            "sampler='gibbs' runs through bayes_mlr.sample_posterior (or the estimator's "
            "sample_posterior()), which dispatches to bayes_mlr.bayes.gibbs.sample_gibbs; this "
            "function is the NUTS path."
        )
    if _is_structured(model):
        from bayes_mlr.bayes.structured import sample_structured

        return sample_structured(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            sampler=sampler,
            random_seed=random_seed,
            progressbar=progressbar,
            priors=priors,
            pm_model=pm_model,
            target_accept=target_accept,
            cores=cores,
            log_likelihood=log_likelihood,
            posterior_predictive=posterior_predictive,
            starts=starts,
            relabel=relabel,
            kwargs=kwargs,
        )
    backend = _resolve_sampler(sampler)
    if starts not in _starts.STARTS:
        raise ValueError(f"starts must be one of {list(_starts.STARTS)}; got {starts!r}")
    if relabel not in RELABEL_METHODS:
        raise ValueError(f"relabel must be one of {list(RELABEL_METHODS)}; got {relabel!r}")
    em = _em_values(model)
    problem = _problem(model)
    if draws < 1 or tune < 0 or chains < 1:
        raise ValueError("draws and chains must be >= 1 and tune >= 0")
    if sampler == "auto":
        backend = _auto_sampler(problem, chains, draws + tune)
    built = pm_model is None  # our own model of `problem` (the log-likelihood's fast path)
    if built:
        prior_record = _prior_record(problem, priors)
        pm_model = _build(problem, priors)
    elif priors is not None:
        raise ValueError("pass priors to build_model, not with an existing pm_model")
    else:
        prior_record = _prior_record(problem, None, pm_model)
    if starts == "dispersed":
        chain_starts, optima = _starts.chain_starts(
            model, chains, random_state=_first_seed(random_seed)
        )
        start = [_initial_point(c.values, pm_model) for c in chain_starts]
    else:
        em_start = em_initial_point(model, pm_model)
        chain_starts = [_starts.Start(em, "EM estimate", 0)] * chains
        optima = _starts.em_optima(model, search=False)
        start = [em_start] * chains
    idata, wall = run_sampler(
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
    idata = _align_to_em(idata, model, em, problem, relabel)
    total = None  # the log-likelihood per draw: the mode analysis needs it too
    if log_likelihood:
        group, total = _log_likelihood_group(idata, pm_model, problem if built else None)
        idata["log_likelihood"] = xr.DataTree(group)
    idata = _add_modes(idata, pm_model, chain_starts, optima, problem, starts, log_likelihood=total)
    if posterior_predictive:
        pm.sample_posterior_predictive(
            idata,
            model=pm_model,
            extend_inferencedata=True,
            random_seed=random_seed,
            progressbar=False,
            # The mixture's random draw is Python (numpy); the numba linker would run it in
            # object mode and warn, so this small graph runs on PyTensor's Python linker.
            compile_kwargs={"mode": "FAST_COMPILE"},
        )
    return finish_posterior(
        idata,
        _em_dataset(model, problem),
        problem,
        backend=backend,
        wall=wall,
        prior_record=prior_record,
        stacklevel=2,
    )
