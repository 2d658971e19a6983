"""The sampling machinery that the plain model and the structured ones share.

* the data and settings a model is built from (:class:`_Problem`, :func:`_problem`);
* the EM estimate as a start of PyMC's free variables, the compiled log density and its
  curvature at EM (the initial dense mass matrix);
* the sampling back-ends (PyMC's NUTS, nutpie, numpyro), each starting every chain exactly at
  its start, without jitter, and the choice among them;
* after sampling: the per-draw log density and log-likelihood and the posterior modes the
  chains sit in (group ``modes``), the scales of the label alignment, the EM group.

:mod:`bayes_mlr.bayes.model` (the plain mixture, with the fused likelihood Op) and
:mod:`bayes_mlr.bayes.structured` (concomitant variables, groups, shared coefficients) build
their models and call these. Imports PyMC and PyTensor (lazily imported, like both).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor
import xarray as xr
from pymc.blocking import DictToArrayBijection
from pymc.initial_point import make_initial_point_fn
from pytensor.graph.fg import MissingInputError

from bayes_mlr.bayes import modes as _modes
from bayes_mlr.bayes.mixture_op import register_jax
from bayes_mlr.core.labels import LabelSwitchingWarning
from bayes_mlr.exceptions import MultimodalPosteriorWarning

__all__ = ["AMBIGUOUS_GAP_PER_FEATURE", "RELABEL_WARN_FRACTION", "SAMPLERS", "available_samplers"]

#: The sampling back-ends (``sampler="auto"`` is PyMC's NUTS; see
#: :func:`bayes_mlr.bayes.model.sample_posterior`).
SAMPLERS: tuple[str, ...] = ("pymc", "nutpie", "numpyro")


_SAMPLER_MODULES = {"pymc": "pymc", "nutpie": "nutpie", "numpyro": "numpyro"}


#: A draw's assignment is ambiguous when the second-best one costs less than this many squared
#: standardised units more per compared feature (each component's weight, intercept, slopes
#: and sigma): the draw then sits about as close to a relabelled EM estimate as to EM itself.
AMBIGUOUS_GAP_PER_FEATURE = 1.0


#: Fraction of relabelled draws above which :func:`sample_posterior` warns.
RELABEL_WARN_FRACTION = 0.05


# --------------------------------------------------------------------------------------------
# The data and settings a model is built from
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    X: np.ndarray  # (n, p)
    y: np.ndarray  # (n,)
    sample_weight: np.ndarray | None  # (n,)
    n_components: int
    variance: str
    fixed_sigma: np.ndarray | None  # (K,) for variance="fixed"
    fit_intercept: bool
    feature_names: list[str]


def _feature_names(model: Any, X: Any, p: int) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    if names is None and hasattr(X, "columns"):
        columns = list(X.columns)
        if all(isinstance(c, str) for c in columns):
            names = columns
    if names is None:
        return [f"x{j}" for j in range(p)]
    names = [str(name) for name in names]
    if len(names) != p:
        raise ValueError(f"model has {len(names)} feature names but X has {p} columns")
    return names


def _problem(model: Any, X: Any = None, y: Any = None, sample_weight: Any = None) -> _Problem:
    """Collect data and settings; ``X``/``y`` default to the data the estimator was fitted on."""
    if X is None and y is None:
        if not hasattr(model, "_fit_X"):
            raise ValueError("the estimator holds no training data: fit it first, or pass X and y")
        X, y = model._fit_X, model._fit_y
        if sample_weight is None:
            sample_weight = getattr(model, "_fit_sample_weight", None)
    elif X is None or y is None:
        raise ValueError("pass both X and y, or neither (to use the estimator's training data)")
    Xa = np.asarray(X, dtype=float)
    ya = np.asarray(y, dtype=float).reshape(-1)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    if Xa.ndim != 2 or Xa.shape[0] != ya.shape[0]:
        raise ValueError(f"X must have shape (n, p) with n = len(y) = {ya.shape[0]}")
    if not (np.all(np.isfinite(Xa)) and np.all(np.isfinite(ya))):
        raise ValueError("X and y must be finite")
    sw = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=float).reshape(-1)
        if sw.shape != ya.shape or np.any(sw < 0) or not np.all(np.isfinite(sw)):
            raise ValueError("sample_weight must be finite, non-negative and of shape (n,)")
    K = int(getattr(model, "n_components_", model.n_components))
    if K < 1:
        raise ValueError(f"n_components must be >= 1, got {K}")
    variance = str(getattr(model, "variance", "component"))
    if variance not in ("component", "shared", "fixed"):
        raise ValueError(f"variance must be 'component', 'shared' or 'fixed', got {variance!r}")
    fixed = None
    if variance == "fixed":
        value = getattr(model, "sigma_", None)
        if value is None:
            value = model.sigma
        if value is None:
            raise ValueError("variance='fixed' needs the estimator's sigma")
        fixed = np.broadcast_to(np.asarray(value, dtype=float), (K,)).copy()
        if not np.all(fixed > 0):
            raise ValueError("the fixed sigma must be positive")
    return _Problem(
        X=Xa,
        y=ya,
        sample_weight=sw,
        n_components=K,
        variance=variance,
        fixed_sigma=fixed,
        fit_intercept=bool(getattr(model, "fit_intercept", True)),
        feature_names=_feature_names(model, X, Xa.shape[1]),
    )


def _is_structured(model: Any) -> bool:
    """True for an estimator with concomitant variables, groups or shared coefficients, or
    with components of another family than the Gaussian (all built by
    :mod:`bayes_mlr.bayes.structured`)."""
    result = getattr(model, "result_", None)
    if result is not None:
        return bool(getattr(result, "structured", False))
    if getattr(model, "shared", None) is not None:
        return True
    from bayes_mlr.bayes.families import family_of

    return family_of(model).name != "gaussian"


# --------------------------------------------------------------------------------------------
# The EM start and the initial mass matrix
# --------------------------------------------------------------------------------------------


def _em_values(model: Any) -> dict[str, np.ndarray]:
    """The EM estimates ``weights``, ``intercept``, ``coef``, and ``sigma`` where the family
    has one (not Poisson or binomial), ``df`` for Student-t components."""
    from bayes_mlr.bayes.families import family_of

    has_sigma = family_of(model).has_sigma
    for attr in ("weights_", "coef_", "sigma_") if has_sigma else ("weights_", "coef_"):
        if not hasattr(model, attr):
            raise ValueError("the estimator is not fitted: call fit(X, y) first")
    values = {
        "weights": np.asarray(model.weights_, dtype=float),
        "intercept": np.asarray(model.intercept_, dtype=float),
        "coef": np.asarray(model.coef_, dtype=float),
    }
    if has_sigma:
        values["sigma"] = np.asarray(model.sigma_, dtype=float)
    if getattr(model, "df_", None) is not None:
        values["df"] = np.asarray(model.df_, dtype=float)
    return values


def _initial_point(values: Mapping[str, np.ndarray], pm_model: pm.Model) -> dict[str, np.ndarray]:
    """``values`` (weights, intercept, coef, sigma, df) as a start for ``pm_model``'s free
    variables."""
    free = {rv.name for rv in pm_model.free_RVs}
    start: dict[str, np.ndarray] = {}
    if "weights" in free:
        w = np.clip(np.asarray(values["weights"], dtype=float), 1e-8, None)
        start["weights"] = w / w.sum()
    if "intercept" in free:
        start["intercept"] = np.asarray(values["intercept"], dtype=float)
    if "coef" in free:
        start["coef"] = np.asarray(values["coef"], dtype=float)
    if "sigma" in free:
        sigma = np.asarray(values["sigma"], dtype=float)
        start["sigma"] = sigma if pm_model["sigma"].ndim == 1 else np.asarray(sigma[0])
    if "df" in free:
        start["df"] = np.asarray(values["df"], dtype=float)
    return start


def _value_vars_and_point(
    pm_model: pm.Model, start: Mapping[str, np.ndarray]
) -> tuple[list, dict[str, np.ndarray]]:
    """The model's free variables and the start on the unconstrained (transformed) scale.

    The point's keys are the value-variable names (e.g. ``weights_simplex__``), in the order of
    the free variables: the flat vector layout the samplers use.
    """
    point = make_initial_point_fn(
        model=pm_model, overrides=dict(start), jitter_rvs=set(), return_transformed=True
    )(0)
    free = list(pm_model.free_RVs)
    return free, {
        pm_model.rvs_to_values[rv].name: point[pm_model.rvs_to_values[rv].name] for rv in free
    }


def _compile_kwargs() -> dict[str, str]:
    """``{"mode": "CVM"}`` (PyTensor's C virtual machine) when a C++ compiler is configured.

    Otherwise empty: PyTensor's default linker.

    The likelihood Op runs numpy code, as fast under either linker (its log-density and
    gradient time is printed by ``bench_sampling``). But the C linker caches its compiled
    modules on disk (0.7 s to compile, 0.05 s to rebuild in a worker process that unpickles
    it), whereas the
    numba linker recompiles a graph holding an object-mode Op each time: 2.7 s for every
    :func:`sample_posterior` call, and again for the pointwise log-likelihood.
    """
    return {"mode": "CVM"} if pytensor.config.cxx else {}


def _logp_dlogp(pm_model: pm.Model, free_rvs: list, point: dict[str, np.ndarray]):
    """The compiled ``x -> (logp, dlogp)`` on the flat unconstrained vector, as NUTS uses it."""
    value_vars = [pm_model.rvs_to_values[rv] for rv in free_rvs]
    func = pm_model.logp_dlogp_function(
        value_vars, ravel_inputs=True, initial_point=point, **_compile_kwargs()
    )
    # Skip the input checks on every call: the samplers pass float64 vectors of the right size.
    # (PyMC's ValueGradFunction has no trust_input of its own; its compiled function has.)
    func._pytensor_function.trust_input = True
    return value_vars, func


def _hessian_covariance(func: Any, x0: np.ndarray) -> np.ndarray:
    """Inverse of minus the Hessian of the log-posterior at ``x0`` (unconstrained scale).

    Central differences of the compiled gradient ``func(x) -> (logp, dlogp)``; eigenvalues of
    ``-H`` are floored so that the result is positive definite even away from a mode.
    """
    d = x0.size
    hessian = np.empty((d, d))
    step = 1e-5 * np.maximum(1.0, np.abs(x0))
    for i in range(d):
        e = np.zeros(d)
        e[i] = step[i]
        hessian[:, i] = (func(x0 + e)[1] - func(x0 - e)[1]) / (2 * step[i])
    neg = -0.5 * (hessian + hessian.T)
    if not np.all(np.isfinite(neg)):
        return np.eye(d)
    eigval, eigvec = np.linalg.eigh(neg)
    floor = max(eigval.max(), 1.0) * 1e-10
    eigval = np.maximum(np.abs(eigval), floor)
    return (eigvec / eigval) @ eigvec.T


# --------------------------------------------------------------------------------------------
# Sampler selection
# --------------------------------------------------------------------------------------------


def available_samplers() -> list[str]:
    """The sampling back-ends installed here."""
    return [s for s in SAMPLERS if importlib.util.find_spec(_SAMPLER_MODULES[s]) is not None]


#: Below this much work (chains x iterations x n x K) the pymc back-end samples in one process.
_PARALLEL_WORK = 1e8


def _default_cores(backend: str, problem: _Problem, chains: int, iterations: int) -> int:
    """Chains run in parallel by default (see ``cores`` in :func:`sample_posterior`)."""
    cores = max(1, min(chains, os.cpu_count() or 1))
    work = chains * iterations * problem.X.shape[0] * problem.n_components
    if backend == "pymc" and work < _PARALLEL_WORK:
        return 1
    return cores


def _auto_sampler(problem: _Problem, chains: int, iterations: int) -> str:
    """PyMC's NUTS, at every size (measured in ``tests/benchmarks/bench_sampling.py``).

    The likelihood is numpy code in a PyTensor Op (:mod:`bayes_mlr.bayes.mixture_op`): PyMC's
    sampler runs it in one worker process per core, while nutpie would call it from threads
    that share one interpreter lock (measured once, by hand, at n = 20,000, K = 3, 4 x 2000
    iterations: pymc 25.5 s, nutpie 43.3 s, similar ESS; not a ``make bench`` figure). Kept as
    a function so that the choice can depend on the problem again.
    """
    return "pymc"


def _resolve_sampler(sampler: str) -> str:
    if sampler == "auto":
        return "pymc"  # refined by _auto_sampler once the data size is known
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; expected 'auto' or one of {list(SAMPLERS)}")
    if importlib.util.find_spec(_SAMPLER_MODULES[sampler]) is None:
        raise ImportError(
            f"sampler {sampler!r} needs the {_SAMPLER_MODULES[sampler]!r} package, which is not "
            f"installed (pip install {_SAMPLER_MODULES[sampler]}); installed: "
            f"{available_samplers()}"
        )
    return sampler


# --------------------------------------------------------------------------------------------
# Sampling back-ends: each starts every chain at its start, without jitter
# --------------------------------------------------------------------------------------------


def _jax_backends_initialised() -> bool:
    """True once JAX has started its (multithreaded) runtime in this process."""
    bridge = sys.modules.get("jax._src.xla_bridge")
    check = getattr(bridge, "backends_are_initialized", None)
    return bool(check()) if callable(check) else False


def _sample_pymc(
    pm_model: pm.Model,
    start: list[dict[str, np.ndarray]],
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seed: Any,
    progressbar: bool,
    target_accept: float,
    kwargs: dict[str, Any],
) -> xr.DataTree:
    from pymc.step_methods.hmc.quadpotential import QuadPotentialFullAdapt

    free, point = _value_vars_and_point(pm_model, start[0])
    value_vars, func = _logp_dlogp(pm_model, free, point)
    x0 = DictToArrayBijection.map(point).data
    cov = _hessian_covariance(func, x0)
    with warnings.catch_warnings():
        # "QuadPotentialFullAdapt is an experimental feature": a dense mass matrix adapted from
        # the EM curvature; we checked it (tests/bayes/test_model.py) and want no warning for users.
        warnings.filterwarnings("ignore", "QuadPotentialFullAdapt", UserWarning)
        potential = QuadPotentialFullAdapt(
            x0.size, x0, initial_cov=cov, initial_weight=max(10, 2 * x0.size)
        )
    if _jax_backends_initialised() and kwargs.get("cores", 1) > 1:
        # JAX's runtime (started e.g. by a numpyro run) is multithreaded: forking would risk a
        # deadlock and JAX warns about it, so worker processes come from a fork server instead.
        kwargs.setdefault("mp_ctx", "forkserver")
    with pm_model:
        # The step reuses the function compiled for the curvature (one compilation).
        step = pm.NUTS(
            vars=value_vars,
            potential=potential,
            target_accept=target_accept,
            logp_dlogp_func=func,
            initial_point=point,
        )
        # With an explicit step PyMC starts every chain at its `initvals` without jitter.
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            step=step,
            initvals=start,
            random_seed=random_seed,
            progressbar=progressbar,
            compute_convergence_checks=False,
            **kwargs,
        )


def _sample_nutpie(
    pm_model: pm.Model,
    start: list[dict[str, np.ndarray]],
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seed: Any,
    progressbar: bool,
    target_accept: float,
    kwargs: dict[str, Any],
) -> xr.DataTree:
    nuts = dict(kwargs.pop("nuts", {}))
    nuts.setdefault("target_accept", target_accept)
    compile_kwargs = dict(kwargs.pop("compile_kwargs", {}))
    # nutpie jitters every free variable unless `jitter_rvs` is empty; `initial_points` is the
    # start (PyMC forwards both to nutpie.compile_pymc_model).
    compile_kwargs["jitter_rvs"] = set()
    if all(_same_point(point, start[0]) for point in start):
        runs = [(chains, start[0], random_seed)]
    else:  # nutpie takes one start for all chains: with per-chain starts, one run per chain
        seeds = np.random.SeedSequence(random_seed).generate_state(chains)
        runs = [(1, start[c], int(seeds[c])) for c in range(chains)]
    trees = []
    for n_chains, initvals, seed in runs:
        with pm_model:
            trees.append(
                pm.sample(
                    draws=draws,
                    tune=tune,
                    chains=n_chains,
                    nuts_sampler="nutpie",
                    initvals=initvals,
                    random_seed=seed,
                    progressbar=progressbar,
                    compute_convergence_checks=False,
                    compile_kwargs=dict(compile_kwargs),
                    nuts=dict(nuts),
                    **kwargs,
                )
            )
    return trees[0] if len(trees) == 1 else _concat_chains(trees)


def _same_point(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _concat_chains(trees: list[xr.DataTree]) -> xr.DataTree:
    """One DataTree from single-chain runs (chains numbered 0, 1, ...)."""
    out = {}
    for name in trees[0].children:
        datasets = [t[name].to_dataset() for t in trees]
        if "chain" in datasets[0].dims:
            merged = xr.concat(datasets, dim="chain", combine_attrs="override")
            merged = merged.assign_coords(chain=np.arange(merged.sizes["chain"]))
        else:
            merged = datasets[0]
        out[name] = merged
    tree = xr.DataTree.from_dict(out)
    tree.attrs.update(trees[0].attrs)
    return tree


def _sample_numpyro(
    pm_model: pm.Model,
    start: list[dict[str, np.ndarray]],
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seed: Any,
    progressbar: bool,
    target_accept: float,
    kwargs: dict[str, Any],
) -> xr.DataTree:
    register_jax()  # the likelihood Op's JAX implementation
    free, point = _value_vars_and_point(pm_model, start[0])
    _, func = _logp_dlogp(pm_model, free, point)
    cov = _hessian_covariance(func, DictToArrayBijection.map(point).data)
    nuts = dict(kwargs.pop("nuts", {}))
    nuts.setdefault("target_accept", target_accept)
    nuts["jitter"] = False  # start every chain exactly at `initvals`
    nuts.setdefault("chain_method", "vectorized")
    nuts.setdefault("dense_mass", True)
    if nuts["dense_mass"] is True:
        nuts.setdefault("inverse_mass_matrix", cov)
    with pm_model:
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            nuts_sampler="numpyro",
            initvals=start,
            random_seed=random_seed,
            progressbar=progressbar,
            compute_convergence_checks=False,
            nuts=nuts,
            **kwargs,
        )


_BACKENDS = {"pymc": _sample_pymc, "nutpie": _sample_nutpie, "numpyro": _sample_numpyro}


# --------------------------------------------------------------------------------------------
# After sampling: per-draw invariants, modes, alignment scales, the EM group
# --------------------------------------------------------------------------------------------


def _first_seed(random_seed: Any) -> Any:
    """An integer seed (or None) for numpy from ``pm.sample``'s ``random_seed``."""
    if random_seed is None or isinstance(random_seed, int | np.integer):
        return random_seed
    if isinstance(random_seed, list | tuple) and random_seed:
        return _first_seed(random_seed[0])
    return None


def _invariants(
    idata: xr.DataTree, pm_model: pm.Model, log_likelihood: np.ndarray | None = None
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Per draw: the log density on the sampler's unconstrained scale (with the Jacobian), the
    total log-likelihood, and the unconstrained point; ``(chain, draw)``, ``(chain, draw)``,
    ``(chain, draw, d)``. All None when the model's transforms cannot be evaluated alone (a
    model of yours whose transforms depend on other variables).

    ``log_likelihood`` ``(chain, draw)``: the total log-likelihood, when it is known already
    (summed from the pointwise one); then only the other terms of the log density (priors,
    Jacobians) are evaluated here, not the likelihood again (over every row, at every draw)."""
    free = list(pm_model.free_RVs)
    post = idata["posterior"]
    if any(rv.name not in post for rv in free):
        return None, None, None
    try:
        inputs, outputs = [], []
        for rv in free:
            x = rv.type()
            inputs.append(x)
            transform = pm_model.rvs_to_transforms.get(rv)
            outputs.append(x if transform is None else transform.forward(x, *rv.owner.inputs))
        forward = pytensor.function(inputs, outputs, on_unused_input="ignore", mode="FAST_RUN")
        values = [pm_model.rvs_to_values[rv] for rv in free]
        likelihood = _likelihood_terms(pm_model)
        if log_likelihood is None:
            outputs = [pm_model.logp(jacobian=True), pm_model.logp(vars=likelihood)]
        else:
            terms = [*pm_model.free_RVs, *pm_model.observed_RVs, *pm_model.potentials]
            rest = [v for v in terms if v not in likelihood]
            outputs = [pm_model.logp(vars=rest, jacobian=True)]
        logp = pytensor.function(values, outputs, on_unused_input="ignore", **_compile_kwargs())
    except (MissingInputError, NotImplementedError, TypeError, ValueError) as exc:
        warnings.warn(
            f"the log density of the draws cannot be evaluated for this model ({exc}); the "
            "modes are compared on the sorted parameters alone, without estimated shares",
            MultimodalPosteriorWarning,
            stacklevel=4,
        )
        return None, None, None
    C, S = post.sizes["chain"], post.sizes["draw"]
    arrays = [
        post[rv.name].transpose("chain", "draw", *post[rv.name].dims[2:]).to_numpy() for rv in free
    ]
    lp = np.empty((C, S))
    ll = np.empty((C, S))
    phi = None
    for c in range(C):
        for d in range(S):
            point = forward(*[a[c, d] for a in arrays])
            if log_likelihood is None:
                lp[c, d], ll[c, d] = (float(v) for v in logp(*point))
            else:
                ll[c, d] = log_likelihood[c, d]
                lp[c, d] = ll[c, d] + float(logp(*point)[0])
            flat = np.concatenate([np.ravel(v) for v in point])
            if phi is None:
                phi = np.empty((C, S, flat.size))
            phi[c, d] = flat
    return lp, ll, phi


def _likelihood_terms(pm_model: pm.Model) -> list:
    """The model's likelihood terms: its observed variables, or (a structured model, see
    :mod:`bayes_mlr.bayes.structured`) the ``pm.Potential`` named ``"y"``."""
    if pm_model.observed_RVs:
        return list(pm_model.observed_RVs)
    return [v for v in pm_model.potentials if v.name == "y"]


def _add_modes(
    idata: xr.DataTree,
    pm_model: pm.Model,
    chain_starts: list[Any],
    optima: list[dict],
    problem: _Problem,
    starts: str,
    extra_invariants: Mapping[str, np.ndarray] | None = None,
    invariants: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    log_likelihood: np.ndarray | None = None,
) -> xr.DataTree:
    """Add ``log_density`` and ``log_likelihood`` to ``sample_stats`` and the group ``modes``:
    which chains sit in which posterior mode and each mode's estimated share
    (:mod:`bayes_mlr.bayes.modes`). ``extra_invariants`` are more label-invariant quantities,
    each ``(chain, draw)``, to compare the chains on. ``invariants``: the ``(lp, ll, phi)`` of
    :func:`_invariants`, when the sampler has them already (the Gibbs sampler);
    ``log_likelihood``: the total log-likelihood per draw, when it is known already."""
    if invariants is None:
        lp, ll, phi = _invariants(idata, pm_model, log_likelihood)
    else:
        lp, ll, phi = invariants
    post = idata["posterior"]
    stats = idata["sample_stats"].to_dataset()
    extra: dict[str, np.ndarray] = {}
    if lp is not None:
        stats["log_density"] = (("chain", "draw"), lp)
        stats["log_likelihood"] = (("chain", "draw"), ll)
        extra = {"lp": lp, "log_likelihood": ll}
    extra.update(extra_invariants or {})
    idata["sample_stats"] = xr.DataTree(stats)
    values = {
        name: post[name].transpose("chain", "draw", ...).to_numpy()
        for name in ("weights", "intercept", "coef", "sigma")
        if name in post
    }
    names, features = _modes.invariant_draws(values, extra)
    chain_mode = _modes.group_chains(features)
    n_modes = int(chain_mode.max()) + 1
    masses = None
    if phi is not None:
        masses = [
            _modes.log_mass(
                phi[chain_mode == m].reshape(-1, phi.shape[-1]), lp[chain_mode == m].ravel()
            )
            for m in range(n_modes)
        ]
    shown = [{**o, "sigma": o["sigma"][0]} if problem.variance == "shared" else o for o in optima]
    if problem.variance == "fixed":
        shown = [{k: v for k, v in o.items() if k != "sigma"} for o in optima]
    table = _modes.mode_table(chain_mode, features, names, log_masses=masses, optima=shown)
    chain_mode = _modes.renumber(chain_mode, list(table["chains"]))
    numbers = {
        col: ("mode", table[col].to_numpy(dtype=float))
        for col in _modes.MODE_COLUMNS
        if col != "nearest_optimum"
    }
    ds = xr.Dataset(numbers, coords={"mode": np.arange(len(table))})
    ds["nearest_optimum"] = (
        "mode",
        np.array([-1 if v is None or v != v else int(v) for v in table["nearest_optimum"]]),
    )
    ds["chain_mode"] = ("chain", chain_mode)
    ds["chain_start"] = ("chain", np.array([c.source for c in chain_starts], dtype=str))
    ds["chain_start_optimum"] = ("chain", np.array([c.optimum for c in chain_starts]))
    ds["em_optimum_log_likelihood"] = (
        "optimum",
        np.array([o["log_likelihood"] for o in optima], dtype=float),
    )
    ds.attrs.update(starts=starts, n_modes=len(table), separation=_modes.MODE_SEPARATION)
    idata["modes"] = xr.DataTree(ds)
    if len(table) > 1:
        shares = ", ".join(
            f"mode {m} (chains {', '.join(map(str, row.chains))}): share {row.share:.2f}"
            if row.share == row.share
            else f"mode {m}: chains {row.chains}"
            for m, row in enumerate(table.itertuples())
        )
        warnings.warn(
            f"the chains sit in {len(table)} posterior modes that they do not move between: "
            f"{shares}. No single mode summarises the posterior; diagnose() names them.",
            MultimodalPosteriorWarning,
            stacklevel=3,
        )
    return idata


def _em_scales(model: Any, em: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    """EM standard errors where usable; elsewhere a small fraction of the parameter's size,
    with an :class:`~bayes_mlr.core.labels.AlignmentScaleWarning` naming the parameters (also
    returned, second, as a list of names)."""
    from bayes_mlr.core.labels import AlignmentScaleWarning

    reason = ""
    try:
        se = {k: np.asarray(v, dtype=float) for k, v in model.standard_errors_.items()}
    except (ValueError, np.linalg.LinAlgError) as exc:  # singular information and the like
        se, reason = {}, f" (the standard errors failed: {exc})"
    scales, fallen = {}, []
    for name, value in em.items():
        fallback = 0.05 * np.maximum(np.abs(value), np.abs(value).mean() + 1e-3)
        s = np.broadcast_to(se.get(name, fallback), value.shape).astype(float)
        bad = ~(np.isfinite(s) & (s > 0))
        # an SE of exactly 0 is a parameter that is not estimated (a fixed sigma, the weight of
        # K = 1, intercepts without fit_intercept): any positive scale will do, no warning
        if name not in se or not np.all(np.isfinite(s)):
            fallen.append(name)
        scales[name] = np.where(bad, fallback, s)
    if fallen:
        warnings.warn(
            f"No usable EM standard error for {', '.join(fallen)}{reason}: the label alignment "
            "standardises them by 5% of their size instead, which can misassign draws of "
            "poorly determined components; check diagnose() and the relabelled share.",
            AlignmentScaleWarning,
            stacklevel=3,
        )
    return scales, fallen


def _em_dataset(model: Any, problem: _Problem) -> xr.Dataset:
    em = _em_values(model)
    try:
        se = {k: np.asarray(v, dtype=float) for k, v in model.standard_errors_.items()}
    except (AttributeError, ValueError, np.linalg.LinAlgError):
        se = {k: np.full_like(v, np.nan) for k, v in em.items()}
    dims = {
        "weights": ("component",),
        "intercept": ("component",),
        "coef": ("component", "feature"),
        "sigma": ("component",),
        "df": ("component",),
    }
    data = {}
    for name, value in em.items():
        data[name] = (dims[name], value)
        data[f"{name}_se"] = (dims[name], np.broadcast_to(se.get(name, np.nan), value.shape))
    ds = xr.Dataset(
        data,
        coords={
            "component": np.arange(problem.n_components),
            "feature": list(problem.feature_names),
        },
    )
    ds.attrs["log_likelihood"] = float(getattr(model, "log_likelihood_", np.nan))
    return ds


def run_sampler(
    backend: str,
    pm_model: Any,
    start: list,
    problem: Any,
    *,
    draws: int,
    tune: int,
    chains: int,
    cores: int | None,
    random_seed: Any,
    progressbar: bool,
    target_accept: float,
    kwargs: dict,
) -> tuple[Any, float]:
    """Sample ``pm_model`` with a back-end from per-chain starts; returns the DataTree and the
    wall-clock seconds. ``cores=None`` picks the back-end's default for this problem."""
    if cores is None:
        cores = _default_cores(backend, problem, chains, draws + tune)
    t0 = time.perf_counter()
    idata = _BACKENDS[backend](
        pm_model,
        start,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        progressbar=progressbar,
        target_accept=target_accept,
        kwargs={**kwargs, "cores": cores},
    )
    return idata, time.perf_counter() - t0


def finish_posterior(
    idata: Any,
    em_dataset: Any,
    problem: Any,
    *,
    backend: str,
    wall: float,
    prior_record: Any,
    stacklevel: int,
    **extra_attrs: Any,
) -> Any:
    """The ``em`` group and the posterior's attributes (sampler, variance, intercept, wall
    time, priors and ``extra_attrs``); a :class:`LabelSwitchingWarning` when more than
    ``RELABEL_WARN_FRACTION`` of the draws were relabelled (``stacklevel`` counted from the
    caller)."""
    import json

    idata["em"] = xr.DataTree(em_dataset)
    attrs = idata["posterior"].attrs
    attrs.update(
        sampler=backend,
        variance=problem.variance,
        fit_intercept=int(problem.fit_intercept),
        sampling_wall_time=wall,
        priors=json.dumps(prior_record),
        **extra_attrs,
    )
    fraction = attrs["relabelled_fraction"]
    if fraction > RELABEL_WARN_FRACTION:
        warnings.warn(
            f"{fraction:.1%} of the draws were relabelled to the EM labelling: the chains "
            "switched labels. The aligned posterior is usable if diagnose() passes; otherwise "
            "the components may not be well separated.",
            LabelSwitchingWarning,
            stacklevel=stacklevel + 1,
        )
    return idata
