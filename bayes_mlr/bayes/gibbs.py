"""``sample_posterior(sampler="gibbs")``: the data-augmentation Gibbs sampler, as a posterior.

The sweep is :mod:`bayes_mlr.bayes.gibbs_sweep` (numpy: labels drawn block by block with the
EM's statistics, then weights, coefficients and sigma from their conditionals). This module
checks that the model is one the sampler is exact for, prepares the data (in memory or Dask),
runs the chains in parallel worker processes and returns the DataTree of the NUTS path
(:func:`bayes_mlr.bayes.model.sample_posterior`):

* ``posterior``: ``weights``, ``intercept``, ``coef``, ``sigma`` with ``component`` first,
  present exactly where the PyMC model (:func:`bayes_mlr.bayes.model.build_model`) has them;
* ``sample_stats``: ``lp``, the log posterior density on the unconstrained scale PyMC's NUTS
  reports (Jacobians of the log and simplex transforms included), ``log_density`` (the same
  on the relabelled draws) and ``log_likelihood`` (total), the relabelling records, and
  ``n_empty`` (components without rows in the labels of the draw);
* ``observed_data``, ``constant_data``, ``log_likelihood`` (pointwise, ``w_i log p(y_i)``),
  ``modes`` and ``em``, the labels aligned to EM by the same machinery.

What the sampler covers: Gaussian components with constant weights (no groups, concomitant
variables or shared coefficients), every variance mode, and integer sample weights, which
are exact as replication counts (a row of weight 2 is two rows, each with its own label). Other
models are refused with the reason.

The priors are those of :func:`bayes_mlr.bayes.priors.default_priors` with the user's
``priors=`` overrides (:func:`bayes_mlr.bayes.priors.merge_priors`), as the PyMC model uses
them, so that both samplers target one posterior (tested against PyMC's log density).

The independence Metropolis move (:mod:`bayes_mlr.bayes.gibbs_proposal`, on by default): a
plain sweep moves the parameters only through the labels, and its slowest direction has a lag-1
autocorrelation equal to the largest fraction of missing information, which is also EM's rate
of convergence (0.73 on ``tests/benchmarks/bench_gibbs.py``'s problem, where the plain sampler
gets 0.18 min bulk ESS per draw against the NUTS baseline's 1.38). The move proposes the
parameters afresh from the Laplace approximation at the posterior mode and accepts them by
Metropolis-Hastings; where it is accepted often (in the first 100 burn-in iterations), iterations
of the move alone, one log-likelihood pass each, run between the sweeps
(:func:`bayes_mlr.bayes.gibbs_sweep.metropolis_steps`). Every kernel leaves the posterior
invariant, and the sweeps keep the chain moving where proposals are rejected; the move is
left out, with the reason in ``posterior.attrs["gibbs_move"]``, where the log posterior is
not concave at the EM estimate. ``metropolis=False`` runs the plain sampler.

Where it is the faster sampler: with many rows, where the posterior is close to normal.
``sampler="auto"`` picks it from ``bayes_mlr.bayes.posterior.GIBBS_AUTO_MIN_ROWS`` rows on
(measurements in :mod:`bayes_mlr.bayes.posterior`; ``make bench`` prints the figures against
the ``pm.NormalMixture`` baseline). It also samples Dask data, streamed chunk by chunk
(1,000,000 rows x 10 features: ``bench_gibbs``).
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import xarray as xr
from scipy.special import gammaln

from bayes_mlr._validation import is_dask_collection
from bayes_mlr.bayes import gibbs_proposal as _proposals
from bayes_mlr.bayes import gibbs_sweep as _sweep
from bayes_mlr.bayes import starts as _starts
from bayes_mlr.bayes import stephens as _stephens
from bayes_mlr.bayes.priors import default_priors, describe_priors, merge_priors
from bayes_mlr.bayes.sampling import (
    _add_modes,
    _em_dataset,
    _em_values,
    _first_seed,
    _Problem,
    _problem,
    finish_posterior,
)
from bayes_mlr.core.data import Scaler
from bayes_mlr.core.em import _Params, _to_external, _to_internal
from bayes_mlr.core.labels import RELABEL_METHODS

__all__ = [
    "GIBBS_PARALLEL_WORK",
    "LOG_LIKELIHOOD_MAX_BYTES",
    "gibbs_supported",
    "non_integer_weights",
    "sample_gibbs",
]

#: Below this much work (chains x sweeps x rows x components) the chains run one after the
#: other in this process: starting worker processes would cost more than they save.
GIBBS_PARALLEL_WORK = 5e7
#: The pointwise log-likelihood (chains x draws x rows doubles) is stored only up to this
#: size; beyond, it is left out with a warning (ask for fewer draws or log_likelihood=False).
LOG_LIKELIHOOD_MAX_BYTES = 2 * 1024**3
_LOG_2 = float(np.log(2.0))
_HALF_LOG_2PI = 0.5 * float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------------------------
# Which models the sampler covers
# --------------------------------------------------------------------------------------------


def gibbs_supported(model: Any) -> tuple[bool, str]:
    """Whether ``sampler="gibbs"`` is exact for the fitted ``model``, and if not, why."""
    from bayes_mlr.bayes.families import family_of

    family = family_of(model).name
    if family != "gaussian":
        return False, (
            f"its components are {family!r}; the sampler draws the coefficients from their "
            "Gaussian conditional, which exists only for Gaussian components"
        )
    result = getattr(model, "result_", None)
    if result is None:
        return False, "the estimator is not fitted: call fit(X, y) first"
    if getattr(result, "structured", False):
        return False, (
            "it has groups, concomitant variables or shared coefficients; the sampler covers "
            "constant weights and component-wise coefficients"
        )
    return True, ""


def _check_model(model: Any) -> None:
    ok, why = gibbs_supported(model)
    if not ok:
        raise ValueError(
            f"sampler='gibbs' cannot sample this model: {why}. Use sampler='pymc' (NUTS), "
            "which samples every model bayes_mlr fits."
        )


def non_integer_weights(sample_weight: Any) -> int:
    """How many sample weights (in memory or Dask) are not whole numbers."""
    if sample_weight is None:
        return 0
    if is_dask_collection(sample_weight):
        import dask

        return int(dask.compute((sample_weight != np.round(sample_weight)).sum())[0])
    w = np.asarray(sample_weight, dtype=float)
    return int(np.count_nonzero(w != np.round(w)))


def _check_integer_weights(sample_weight: Any) -> None:
    """Replication weights must be whole numbers for the labels to be exact."""
    bad = non_integer_weights(sample_weight)
    if bad:
        raise ValueError(
            f"sampler='gibbs' takes integer sample weights only (replication counts: a row of "
            f"weight 2 is two rows, each with its own label); {bad} weight(s) are not whole "
            "numbers. Use sampler='pymc' (NUTS), whose likelihood weights each row's "
            "log-density by any non-negative weight."
        )


# --------------------------------------------------------------------------------------------
# The data and the priors
# --------------------------------------------------------------------------------------------


class _Data:
    """The rows the sweep reads, the scaler, the priors in original units and the problem
    (the data and settings of :func:`bayes_mlr.bayes.sampling._problem`, for the relabelling
    and the EM group: all rows in memory, a subsample of Dask data for Stephens' method)."""

    def __init__(self, model: Any, priors: Mapping[str, Mapping[str, Any]] | None) -> None:
        if not hasattr(model, "_fit_X"):
            raise ValueError("the estimator holds no training data: fit it first")
        X = model._fit_X
        y = model._fit_y
        sw = getattr(model, "_fit_sample_weight", None)
        fit_intercept = bool(getattr(model, "fit_intercept", True))
        K = int(getattr(model, "n_components_", model.n_components))
        self.lazy = any(is_dask_collection(a) for a in (X, y, sw))
        _check_integer_weights(sw)
        if not self.lazy:
            self.problem = _problem(model)
            p = self.problem
            self.scaler = Scaler.from_arrays(p.X, p.y, p.sample_weight, fit_intercept)
            self.rows = _sweep.ArrayRows(self.scaler.augmented(p.X, p.y), p.sample_weight)
            defaults = default_priors(p.X, p.y, K, p.sample_weight)
            self.X, self.y, self.sample_weight = p.X, p.y, p.sample_weight
        else:
            from bayes_mlr.core import dask_data

            X, y, sw, _ = dask_data.prepare(X, y, sw)
            _, x_mean, x_var, y_mean, y_var = dask_data.moments_and_checks(X, y, sw)
            self.scaler = Scaler.from_moments(x_mean, x_var, y_mean, y_var, fit_intercept)
            self.rows = _sweep.DaskRows(X, y, sw, self.scaler)
            defaults = default_priors(*_moment_rows(x_mean, x_var, y_mean, y_var), K)
            self.problem = _subsample_problem(model, X, y, sw)
            self.X, self.y, self.sample_weight = X, y, sw
        self.prior = merge_priors(defaults, priors)
        self.n_rows = self.rows.n_rows


def _moment_rows(x_mean, x_var, y_mean, y_var) -> tuple[np.ndarray, np.ndarray]:
    """Two rows whose mean and standard deviation are the given moments: the data-scaled
    default priors of Dask data, computed by :func:`default_priors` itself (to rounding)."""
    sx, sy = np.sqrt(np.clip(x_var, 0.0, None)), np.sqrt(max(float(y_var), 0.0))
    X = np.vstack([x_mean - sx, x_mean + sx])
    y = np.array([y_mean - sy, y_mean + sy])
    return X, y


def _subsample_problem(model: Any, X: Any, y: Any, sw: Any) -> _Problem:
    """The problem of the rows Stephens' relabelling reads (the rows the NUTS path would pick
    from the same data), computed from Dask."""
    import dask

    n = int(X.shape[0])
    rows = np.arange(n)
    if n > _stephens.MAX_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, _stephens.MAX_ROWS, replace=False))
    parts = [X[rows], y[rows]] + ([] if sw is None else [sw[rows]])
    got = dask.compute(*parts)
    return _problem(model, got[0], got[1], None if sw is None else got[2])


# --------------------------------------------------------------------------------------------
# The log density, as PyMC's NUTS reports it
# --------------------------------------------------------------------------------------------


def log_prior(
    values: Mapping[str, np.ndarray],
    prior: Mapping[str, Mapping[str, Any]],
    *,
    variance: str,
    fit_intercept: bool,
) -> np.ndarray:
    """Log prior density on PyMC's unconstrained scale, per draw.

    The terms of :func:`bayes_mlr.bayes.model.build_model`'s free variables with the Jacobians
    of their transforms (simplex for ``weights``: ``log K + Σ log w``; log for ``sigma``:
    ``log σ``), as ``model.logp(jacobian=True)`` without the likelihood.

    Parameters
    ----------
    values : mapping
        ``weights`` (..., K) (absent for K = 1), ``intercept`` (..., K), ``coef`` (..., K, p),
        ``sigma`` (..., K) or (...) for ``variance="shared"``.
    prior : mapping
        The merged priors (original units).

    Returns
    -------
    ndarray of shape (...)
    """
    coef = np.asarray(values["coef"], dtype=float)
    K, p = coef.shape[-2:]
    out = _normal_logpdf(coef, prior["coef"]["mu"], prior["coef"]["sigma"], (K, p)).sum((-2, -1))
    if "weights" in values and K > 1:
        w = np.asarray(values["weights"], dtype=float)
        alpha = np.broadcast_to(np.asarray(prior["weights"]["alpha"], float), (K,))
        log_w = np.log(w)
        out = out + gammaln(alpha.sum()) - gammaln(alpha).sum() + ((alpha - 1.0) * log_w).sum(-1)
        out = out + np.log(K) + log_w.sum(-1)  # simplex transform
    if fit_intercept:
        intercept = np.asarray(values["intercept"], dtype=float)
        i_prior = prior["intercept"]
        out = out + _normal_logpdf(intercept, i_prior["mu"], i_prior["sigma"], (K,)).sum(-1)
    if variance in ("component", "shared"):
        sigma = np.asarray(values["sigma"], dtype=float)
        raw = np.asarray(prior["sigma"]["sigma"], dtype=float)
        shape = (K,) if variance == "component" else ()
        scale = np.broadcast_to(raw, shape) if variance == "component" else raw.reshape(-1)[0]
        term = _LOG_2 + _normal_logpdf(sigma, 0.0, scale, shape) + np.log(sigma)  # log transform
        out = out + (term.sum(-1) if variance == "component" else term)
    return out


def _normal_logpdf(x: np.ndarray, mu: Any, sd: Any, shape: tuple[int, ...]) -> np.ndarray:
    mu = np.broadcast_to(np.asarray(mu, float), shape)
    sd = np.broadcast_to(np.asarray(sd, float), shape)
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - _HALF_LOG_2PI


def unconstrained_point(values: Mapping[str, np.ndarray], variance: str) -> np.ndarray:
    """The draws on PyMC's unconstrained scale, flattened in the order of the model's free
    variables (``weights`` by the simplex transform, ``coef``, ``intercept``, ``log sigma``):
    ``(..., d)``, as :func:`bayes_mlr.bayes.sampling._invariants` gives them."""
    parts = []
    coef = np.asarray(values["coef"], dtype=float)
    lead = coef.shape[:-2]
    if "weights" in values:
        log_w = np.log(np.asarray(values["weights"], dtype=float))
        parts.append(log_w[..., :-1] - log_w.mean(-1, keepdims=True))
    parts.append(coef.reshape(*lead, -1))
    if "intercept" in values:
        parts.append(np.asarray(values["intercept"], dtype=float))
    if "sigma" in values and variance != "fixed":
        parts.append(np.log(np.asarray(values["sigma"], dtype=float)).reshape(*lead, -1))
    return np.concatenate(parts, axis=-1)


# --------------------------------------------------------------------------------------------
# Running the chains
# --------------------------------------------------------------------------------------------


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _default_cores(chains: int, sweeps: int, n_rows: int, n_components: int) -> int:
    """Chains in parallel, one process each up to the cores, when there is work enough."""
    if chains * sweeps * n_rows * n_components < GIBBS_PARALLEL_WORK:
        return 1
    return max(1, min(chains, _available_cores()))


def _pool_context() -> Any:
    """How worker processes start: by fork where that is safe, as PyMC's own default on Linux
    (no Python thread but this one, no JAX runtime), else from a fork server (as
    bootstrap_lrt), whose workers import the main module: a script then needs
    ``if __name__ == "__main__":``."""
    from bayes_mlr.bayes.sampling import _jax_backends_initialised

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and not _jax_backends_initialised():
        return multiprocessing.get_context("fork")
    # forking a process with threads running (a Dask pool, a JAX runtime) can deadlock it
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _run_chains(jobs: list[_sweep.ChainJob], cores: int) -> list[_sweep.ChainResult]:
    """Run the chains: ``cores`` worker processes each run their share of the chains in
    lockstep (:func:`bayes_mlr.bayes.gibbs_sweep.run_chains`); one process runs them all."""
    groups = min(cores, len(jobs))
    if groups <= 1:
        return _sweep.run_chains(jobs)
    shares = [jobs[g::groups] for g in range(groups)]
    with ProcessPoolExecutor(max_workers=groups, mp_context=_pool_context()) as pool:
        done = list(pool.map(_sweep.run_chains, shares))
    results: list[Any] = [None] * len(jobs)
    for g, share in enumerate(done):
        results[g::groups] = share
    return results


def _chain_seeds(random_seed: Any, chains: int) -> list[np.random.SeedSequence]:
    if isinstance(random_seed, Sequence) and not isinstance(random_seed, str):
        if len(random_seed) != chains:
            raise ValueError(
                f"random_seed: give one seed, or one per chain ({chains}); got {len(random_seed)}"
            )
        return [np.random.SeedSequence(int(s)) for s in random_seed]
    if random_seed is not None and not isinstance(random_seed, int | np.integer):
        raise TypeError(f"random_seed must be an int, a list of ints or None; got {random_seed!r}")
    return np.random.SeedSequence(random_seed).spawn(chains)


def _starting_points(
    model: Any, data: _Data, chains: int, starts: str, random_seed: Any
) -> tuple[list[_starts.Start], list[dict], list[_Params]]:
    """The chains' starts (the NUTS path's: :mod:`bayes_mlr.bayes.starts`), and each on the
    standardised scale of the sweep."""
    with warnings.catch_warnings():
        # the starts read the size of Dask training data with numpy's np.size / np.shape,
        # which Dask answers (without computing) behind a FutureWarning
        warnings.filterwarnings("ignore", "The `numpy.", FutureWarning)
        if starts == "dispersed":
            chain_starts, optima = _starts.chain_starts(
                model, chains, random_state=_first_seed(random_seed)
            )
        else:
            chain_starts = [_starts.Start(_em_values(model), "EM estimate", 0)] * chains
            optima = _starts.em_optima(model, search=False)
    internal = [_internal(start.values, data) for start in chain_starts]
    return chain_starts, optima, internal


def _internal(values: Mapping[str, Any], data: _Data) -> _Params:
    """Parameter values (original units, as :func:`bayes_mlr.bayes.sampling._em_values`) on
    the standardised scale of the sweep."""
    problem = data.problem
    K = problem.n_components
    w = np.clip(np.asarray(values["weights"], dtype=float), 1e-8, None)
    sigma = np.broadcast_to(np.asarray(values["sigma"], dtype=float), (K,))
    if problem.variance == "fixed":
        sigma = problem.fixed_sigma
    elif problem.variance == "shared":
        sigma = np.full(K, sigma[0])
    return _to_internal(data.scaler, w / w.sum(), values["intercept"], values["coef"], sigma)


def _chain_job(
    data: _Data,
    prior: _sweep.InternalPrior,
    start: _Params,
    *,
    draws: int,
    tune: int,
    seed: np.random.SeedSequence,
    proposal: _proposals.IndependenceProposal | None,
    pointwise: tuple[str, tuple[int, int, int], int] | None = None,
) -> _sweep.ChainJob:
    """One chain's job from its start (standardised scale)."""
    return _sweep.ChainJob(
        rows=data.rows,
        prior=prior,
        variance=data.problem.variance,
        weights=start.weights,
        beta=start.beta,
        sigma=start.sigma,
        draws=draws,
        tune=tune,
        seed=seed,
        log_y_scale=float(np.log(data.scaler.y_scale)),
        pointwise=pointwise,
        proposal=proposal,
    )


def _proposal(
    data: _Data, prior: _sweep.InternalPrior, em: Mapping[str, Any], metropolis: bool
) -> tuple[_proposals.IndependenceProposal | None, str]:
    """The independence Metropolis move's proposal around the posterior mode next to EM, and
    its description (or why there is none)."""
    if not metropolis:
        return None, "none (metropolis=False)"
    start = _internal(em, data)
    layout = _proposals.Layout(
        start.beta.shape[0], start.beta.shape[1], data.problem.variance, start.sigma
    )
    proposal, reason = _proposals.laplace_proposal(
        data.rows, prior, layout, start.weights, start.beta, start.sigma
    )
    if proposal is None:
        return None, f"none: {reason}"
    return proposal, "independence Metropolis"


# --------------------------------------------------------------------------------------------
# The DataTree
# --------------------------------------------------------------------------------------------


def _external_draws(
    results: list[_sweep.ChainResult], scaler: Scaler, problem: _Problem
) -> dict[str, np.ndarray]:
    """The draws in original units, ``(chain, draw, ...)``, by the EM's own map."""
    C = len(results)
    D, K, q = results[0].beta.shape
    params = _Params(
        np.concatenate([r.weights for r in results]).reshape(-1),
        np.concatenate([r.beta for r in results]).reshape(-1, q),
        np.concatenate([r.sigma for r in results]).reshape(-1),
    )
    weights, intercept, coef, sigma = _to_external(scaler, params)
    out = {
        "coef": coef.reshape(C, D, K, -1),
        "intercept": intercept.reshape(C, D, K),
        "weights": weights.reshape(C, D, K),
        "sigma": sigma.reshape(C, D, K),
    }
    if K == 1:
        del out["weights"]
    if not problem.fit_intercept:
        del out["intercept"]
    if problem.variance == "shared":
        out["sigma"] = out["sigma"][..., 0]
    elif problem.variance == "fixed":
        del out["sigma"]
    return out


def _posterior_dataset(draws: dict[str, np.ndarray], problem: _Problem) -> xr.Dataset:
    dims = {
        "coef": ("chain", "draw", "component", "feature"),
        "intercept": ("chain", "draw", "component"),
        "weights": ("chain", "draw", "component"),
        "sigma": ("chain", "draw", "component"),
    }
    data = {}
    for name, value in draws.items():
        data[name] = (dims[name][: value.ndim], value)
    C, D = draws["coef"].shape[:2]
    return xr.Dataset(
        data,
        coords={
            "chain": np.arange(C),
            "draw": np.arange(D),
            "component": np.arange(problem.n_components),
            "feature": list(problem.feature_names),
        },
    )


def _data_groups(data: _Data, problem: _Problem) -> dict[str, xr.Dataset]:
    """``observed_data`` and ``constant_data`` as PyMC stores them (Dask data stay lazy)."""
    n = data.n_rows
    obs = np.arange(n)
    observed = xr.Dataset({"y": (("obs",), data.y)}, coords={"obs": obs})
    constant = {"X": (("obs", "feature"), data.X)}
    if data.sample_weight is not None:
        constant["sample_weight"] = (("obs",), data.sample_weight)
    coords: dict[str, Any] = {"obs": obs, "feature": list(problem.feature_names)}
    if problem.variance == "fixed":
        constant["sigma"] = (("component",), problem.fixed_sigma)
        coords["component"] = np.arange(problem.n_components)
    return {"observed_data": observed, "constant_data": xr.Dataset(constant, coords=coords)}


def _scratch_dir() -> str | None:
    """Where the chains write the pointwise log-likelihood: shared memory where the system has
    it (``/dev/shm``; reading 640 MB back from a disk-backed /tmp took 8 times longer)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _read_pointwise(path: str, shape: tuple[int, int, int]) -> np.ndarray:
    """The chains' pointwise log-likelihood file as an array. A file in shared memory is
    mapped, not copied (the mapping outlives the file's removal, on the systems that have
    ``/dev/shm``): copying the 640 MB of ``bench_gibbs`` took 1.7-2.6 s on a loaded 2-core
    machine (measured once by hand with cProfile). Elsewhere the file is read."""
    if _scratch_dir() is not None:
        return np.memmap(path, dtype=np.float64, mode="r+", shape=shape).view(np.ndarray)
    out = np.empty(shape)
    with open(path, "rb") as f:
        f.readinto(memoryview(out).cast("B"))
    return out


def _pointwise_target(
    log_likelihood: bool, chains: int, draws: int, n_rows: int, stacklevel: int
) -> bool:
    """Whether to store the pointwise log-likelihood (warn when it is too large)."""
    if not log_likelihood:
        return False
    size = chains * draws * n_rows * 8
    if size > LOG_LIKELIHOOD_MAX_BYTES:
        warnings.warn(
            f"the pointwise log-likelihood would hold {chains} chains x {draws} draws x "
            f"{n_rows} rows ({size / 1024**3:.1f} GiB, more than LOG_LIKELIHOOD_MAX_BYTES = "
            f"{LOG_LIKELIHOOD_MAX_BYTES / 1024**3:.0f} GiB): the log_likelihood group is left "
            "out. Pass log_likelihood=False to silence this, or fewer draws to keep it.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
        return False
    return True


# --------------------------------------------------------------------------------------------
# The sampler
# --------------------------------------------------------------------------------------------


def sample_gibbs(
    model: Any,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    *,
    random_seed: Any = None,
    progressbar: bool = True,
    priors: Mapping[str, Mapping[str, Any]] | None = None,
    pm_model: Any = None,
    cores: int | None = None,
    log_likelihood: bool = True,
    posterior_predictive: bool = False,
    starts: str = "dispersed",
    relabel: str = "em",
    target_accept: float | None = None,
    metropolis: bool = True,
    **kwargs: Any,
) -> xr.DataTree:
    """Sample the posterior of a fitted mixture of regressions with the data-augmentation
    Gibbs sampler (``sample_posterior(sampler="gibbs")``).

    The model, priors, starts, relabelling, modes and output are those of
    :func:`bayes_mlr.bayes.model.sample_posterior`; only the sampler differs (see
    :mod:`bayes_mlr.bayes.gibbs_sweep`). ``tune`` iterations are discarded as burn-in.

    Parameters
    ----------
    model : MixtureOfRegressions
        Fitted, with Gaussian components and constant weights (no groups, concomitant
        variables or shared coefficients); any variance mode; training data in memory or Dask.
    draws, tune, chains : int
        Kept iterations (draws) per chain, burn-in iterations per chain, number of chains. An
        iteration is a sweep, the Metropolis move and a sweep, or the move alone (``metropolis``).
    random_seed : int, list of int (one per chain) or None
        The draws depend on the seed only: not on ``cores``, nor on how Dask chunks the rows.
    progressbar : bool
        Accepted for the common signature; the sampler shows none.
    priors : dict, optional
        Overrides of the default priors (:func:`bayes_mlr.bayes.priors.default_priors`).
    pm_model : None
        A PyMC model of yours cannot be sampled by Gibbs (refused).
    cores : int, optional
        Processes running chains in parallel; by default one per chain up to the CPUs this
        process may use, or 1 when the whole run is short (``chains * (tune + draws) * n * K <
        GIBBS_PARALLEL_WORK``).
    log_likelihood : bool
        Store the pointwise log-likelihood (group ``log_likelihood``), computed in the sweep
        at no extra pass; left out with a warning above ``LOG_LIKELIHOOD_MAX_BYTES``.
    posterior_predictive : bool
        Draw ``y`` from the posterior predictive (in-memory data only), as the NUTS path does.
    starts : {"dispersed", "em"}
    relabel : {"em", "stephens"}
    target_accept : ignored
        NUTS only.
    metropolis : bool
        Before each sweep's labels, propose the parameters from a multivariate t around the
        posterior mode with the Laplace covariance and accept or reject the proposal by
        Metropolis-Hastings (:mod:`bayes_mlr.bayes.gibbs_proposal`); where the first 100
        burn-in proposals are accepted often, iterations of the move alone run between the
        sweeps (:func:`bayes_mlr.bayes.gibbs_sweep.metropolis_steps`). The move leaves the
        posterior invariant and makes successive draws far less correlated where the posterior
        is near normal; where no Laplace approximation exists at the EM estimate (an empty or
        degenerate component) it is left out, and ``posterior.attrs["gibbs_move"]`` says why.
        ``False``: the plain data-augmentation sampler.
    **kwargs
        None are accepted (they are PyMC's).

    Returns
    -------
    xarray.DataTree
        As :func:`bayes_mlr.bayes.model.sample_posterior`, with ``posterior.attrs["sampler"]``
        ``"gibbs"``, ``tuning_steps``, ``gibbs_slice_steps`` (sigma draws that fell back to
        a slice step), ``gibbs_move`` (``"independence Metropolis"``, or why there is none)
        and, with the move, ``gibbs_acceptance_rate`` (over the kept draws),
        ``gibbs_metropolis_steps`` (per chain: move-only iterations between sweeps) and
        ``sample_stats["accepted"]`` (chain, draw).

    Raises
    ------
    ValueError
        A model the sampler does not cover, non-integer sample weights, a ``pm_model``,
        invalid arguments.
    TypeError
        Arguments for PyMC's samplers.
    """
    del progressbar, target_accept  # no progress bar; no step size to adapt
    _check_model(model)
    if kwargs:
        raise TypeError(f"sampler='gibbs' takes no PyMC sampling arguments; got {sorted(kwargs)}")
    if pm_model is not None:
        raise ValueError(
            "sampler='gibbs' samples the model of build_model with its priors (pass priors=); "
            "a pm_model of yours needs a NUTS sampler (sampler='auto')"
        )
    if not isinstance(metropolis, bool | np.bool_):
        raise TypeError(f"metropolis must be True or False; got {metropolis!r}")
    if starts not in _starts.STARTS:
        raise ValueError(f"starts must be one of {list(_starts.STARTS)}; got {starts!r}")
    if relabel not in RELABEL_METHODS:
        raise ValueError(f"relabel must be one of {list(RELABEL_METHODS)}; got {relabel!r}")
    for name, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    draws, tune, chains = int(draws), int(tune), int(chains)
    if cores is not None and (
        isinstance(cores, bool) or not isinstance(cores, int | np.integer) or cores < 1
    ):
        raise ValueError(f"cores must be a positive integer or None; got {cores!r}")
    em = _em_values(model)
    data = _Data(model, priors)
    if posterior_predictive and data.lazy:
        raise ValueError(
            "posterior_predictive=True needs the training data in memory; with Dask data draw "
            "predictions from the posterior yourself (bayes_mlr.bayes.predictive)"
        )
    problem = data.problem
    K, p = problem.n_components, problem.X.shape[1]
    prior = _sweep.internal_prior(data.prior, data.scaler, K, p, problem.variance)
    seeds = _chain_seeds(random_seed, chains)
    chain_starts, optima, internal = _starting_points(model, data, chains, starts, random_seed)
    proposal, move = _proposal(data, prior, em, metropolis)
    store = _pointwise_target(log_likelihood, chains, draws, data.n_rows, stacklevel=3)
    if cores is None:
        cores = _default_cores(chains, tune + draws, data.n_rows, K)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bayes_mlr_gibbs_", dir=_scratch_dir()) as tmp:
        target = None
        if store:  # the chains write their rows of one file, read back once
            path = os.path.join(tmp, "pointwise.f8")
            with open(path, "wb") as f:
                f.truncate(chains * draws * data.n_rows * 8)
            target = (path, (chains, draws, data.n_rows))
        jobs = [
            _chain_job(
                data, prior, start, draws=draws, tune=tune, seed=seeds[c], proposal=proposal,
                pointwise=None if target is None else (*target, c),
            )
            for c, start in enumerate(internal)
        ]  # fmt: skip
        results = _run_chains(jobs, cores)
        pointwise = None if target is None else _read_pointwise(*target)
    wall = time.perf_counter() - t0
    raw = _external_draws(results, data.scaler, problem)
    ll = np.stack([r.log_likelihood for r in results])
    lp = ll + log_prior(
        raw, data.prior, variance=problem.variance, fit_intercept=problem.fit_intercept
    )
    stats = xr.Dataset(
        {
            "lp": (("chain", "draw"), lp),
            "n_empty": (("chain", "draw"), np.stack([r.n_empty for r in results])),
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    move_attrs: dict[str, Any] = {"gibbs_move": move}
    if proposal is not None:
        accepted = np.stack([r.accepted for r in results])
        stats["accepted"] = (("chain", "draw"), accepted)
        move_attrs["gibbs_acceptance_rate"] = float(accepted.mean())
        move_attrs["gibbs_metropolis_steps"] = [int(r.metropolis_steps) for r in results]
    idata = xr.DataTree.from_dict(
        {
            "posterior": _posterior_dataset(raw, problem),
            "sample_stats": stats,
            **_data_groups(data, problem),
        }
    )
    from bayes_mlr.bayes.model import _align_to_em

    idata = _align_to_em(idata, model, em, problem, relabel)
    post = idata["posterior"]
    aligned = {name: post[name].to_numpy() for name in raw}
    log_density = ll + log_prior(
        aligned, data.prior, variance=problem.variance, fit_intercept=problem.fit_intercept
    )
    phi = unconstrained_point(aligned, problem.variance)
    if pointwise is not None:  # before the modes, in the NUTS path's order
        idata["log_likelihood"] = xr.DataTree(
            xr.Dataset(
                {"y": (("chain", "draw", "obs"), pointwise)},
                coords={
                    "chain": np.arange(chains),
                    "draw": np.arange(draws),
                    "obs": np.arange(data.n_rows),
                },
            )
        )
    idata = _add_modes(
        idata, None, chain_starts, optima, problem, starts, invariants=(log_density, ll, phi)
    )
    if posterior_predictive:
        _add_posterior_predictive(idata, problem, priors, random_seed)
    record = describe_priors(
        data.prior,
        feature_names=problem.feature_names,
        variance=problem.variance,
        fit_intercept=problem.fit_intercept,
        fixed_sigma=problem.fixed_sigma,
        overrides=priors,
    )
    return finish_posterior(
        idata,
        _em_dataset(model, problem),
        problem,
        backend="gibbs",
        wall=wall,
        prior_record=record,
        stacklevel=3,
        tuning_steps=tune,
        gibbs_slice_steps=int(sum(r.n_slice for r in results)),
        cores=int(cores),
        **move_attrs,
    )


def _add_posterior_predictive(
    idata: xr.DataTree, problem: _Problem, priors: Any, random_seed: Any
) -> None:
    """Posterior predictive draws of ``y`` by PyMC from the draws, as the NUTS path makes them."""
    import pymc as pm

    from bayes_mlr.bayes.model import _build

    pm.sample_posterior_predictive(
        idata,
        model=_build(problem, priors),
        extend_inferencedata=True,
        random_seed=_first_seed(random_seed),
        progressbar=False,
        compile_kwargs={"mode": "FAST_COMPILE"},
    )
