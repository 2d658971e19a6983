"""EM over a component model, a mixing model and a grouping: concomitant variables, grouped
rows and shared coefficients, alone or together.

The loop knows three objects and nothing else:

* a **component model** (:mod:`bayes_mlr.core.components`): each row's log density under each
  component, and a weighted M-step;
* a **mixing model** (:mod:`bayes_mlr.core.mixing`): the log prior weights of each group, and
  its M-step (constant weights, or a multinomial logit in concomitant variables);
* a **grouping** (:mod:`bayes_mlr.core.grouping`): which rows share one hidden label.

One EM iteration, with ``c_g`` the replication weight of group ``g``:

* **E-step** — ``a_gj = log π_gj + Σ_{i∈g} log f_j(y_i | x_i)``, ``ℓ_g = logsumexp_j a_gj`` and
  ``γ_gj = exp(a_gj − ℓ_g)`` (Bayes' rule per group); the log-likelihood is ``Σ_g c_g ℓ_g``.
* **M-step** — the component model is fitted with row weights ``c_g γ_gj`` for every row of
  ``g``, the mixing model to the group responsibilities. Both steps raise the expected
  complete-data log-likelihood, so the log-likelihood never decreases.

Without groups every row is its own group; with constant mixing and no shared coefficient this is
the plain EM of :mod:`bayes_mlr.core.em`, which remains the fast path for that model (threaded
block statistics, scouting on a subsample, SQUAREM). Here every start runs plain EM steps to
convergence, each iteration one pass over the data, which lie in parts that hold whole groups
(:mod:`bayes_mlr.core.group_data`: one part in memory, one per chunk of Dask data). Data are
standardised as in the fast path (the concomitant variables too), and results mapped back to
the original units.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_mlr._validation import (
    check_concomitant,
    check_data,
    check_shared,
    check_sizes,
    is_dask_collection,
)
from bayes_mlr.core import em
from bayes_mlr.core.components import Family, resolve_family
from bayes_mlr.core.components.family import row_vector
from bayes_mlr.core.components.glm import SEPARATION_SLOPE
from bayes_mlr.core.data import InMemoryData, Scaler, blas_single_thread, moments
from bayes_mlr.core.group_data import (
    GroupedData,
    bayes_rule,
    part_null_sums,
    part_pass,
    standardised_design,
)
from bayes_mlr.core.grouping import Grouping, group_constant
from bayes_mlr.core.mixing import ConstantMixing, MultinomialLogit, log_softmax
from bayes_mlr.core.stats import sum_stats
from bayes_mlr.exceptions import SeparationWarning
from bayes_mlr.results import EMProgress, EMResult

__all__ = [
    "e_step_structured",
    "family_rows",
    "fit_structured",
    "linear_predictor",
    "mixing_weights",
    "row_log_density",
]

#: A concomitant slope (log odds per standard deviation of its variable) above this means the
#: gating model separates the components: exp(15) ~ 3e6, far beyond any slope real data
#: estimate, reached only when the Newton steps chase an infinite maximum. The same threshold
#: as a GLM component's slopes (:data:`bayes_mlr.core.components.glm.SEPARATION_SLOPE`).
SEPARATION_LOGIT = SEPARATION_SLOPE
#: Step halvings of a GLM's Newton M-step before the iteration is taken as it is.
MAX_HALVINGS = 30
#: Newton steps that fit a GLM's random start to its own random responsibilities.
START_NEWTON_STEPS = 8


# ---------------------------------------------------------------------------------------------
# The problem on the internal (standardised) scale
# ---------------------------------------------------------------------------------------------


@dataclass
class _State:
    """beta (K, q), sigma (K,), gate (K, r1) on the internal scale; df (K,) for a Student-t
    family, else None."""

    beta: np.ndarray
    sigma: np.ndarray
    gate: np.ndarray
    df: np.ndarray | None = None

    def towards(self, other: _State, t: float) -> _State:
        """The point ``self + t (other − self)``."""

        def mix(a, b):
            return None if a is None else a + t * (b - a)

        return _State(
            mix(self.beta, other.beta),
            mix(self.sigma, other.sigma),
            mix(self.gate, other.gate),
            mix(self.df, other.df),
        )


@dataclass
class _StructuredRun(em._Run):
    """An EM run (as :class:`bayes_mlr.core.em._Run`, whose ``params.weights`` are the mean prior
    weights over the rows) with the mixing coefficients it ended at."""

    gate: np.ndarray | None = None
    df: np.ndarray | None = None
    separated: np.ndarray | None = None  # components whose linear predictor diverged (GLMs)


@dataclass
class _Structured:
    """Data, component model and mixing model of one fit; the data in parts that each hold
    whole groups (:class:`~bayes_mlr.core.group_data.GroupedData`)."""

    data: GroupedData
    components: Any  # a component model (bayes_mlr.core.components)
    mixing: ConstantMixing | MultinomialLogit
    w_shift: np.ndarray | None  # the concomitant variables' standardisation
    w_scale: np.ndarray | None
    base: em._Problem  # the plain problem: starts, ranking, degeneracy, optima

    @property
    def n_obs(self) -> float:
        return self.base.n_obs

    def sweep(self, state: _State, entropy: int | None = None, hard: bool = False) -> tuple:
        """One pass over the data: the E-step at ``state`` (or, with ``entropy``, random
        responsibilities drawn from that seed in each part: a random partition with ``hard``)
        and the M-step statistics.

        Returns the mixing model's statistics, the log-likelihood and the component model's
        statistics, each summed (or joined) over the parts.
        """
        n_parts = len(self.data.parts)
        starts = [None if entropy is None else (entropy, i, hard) for i in range(n_parts)]
        out = self.data.map(
            part_pass,
            starts,
            self.components,
            self.mixing,
            state.beta,
            state.sigma,
            state.df,
            state.gate,
            self.w_shift,
            self.w_scale,
        )
        return (
            self.mixing.combine([o[0] for o in out]),
            float(sum(o[1] for o in out)),
            sum_stats(o[2] for o in out),
        )

    def m_step(self, state: _State, stats: tuple) -> _State:
        """New parameters from the statistics of a pass (ECM for shared coefficients, Newton
        steps for a concomitant model)."""
        mixing_stats, _, component_stats = stats
        beta, sigma, df = self.components.m_step_from_stats(
            component_stats, state.beta, state.sigma, state.df
        )
        return _State(beta, sigma, self.mixing.m_step(mixing_stats, state.gate), df)

    def mean_weights(self, gate: np.ndarray) -> np.ndarray:
        """The prior weights averaged over the rows (sample-weighted), shape (K,)."""
        pi = np.exp(self.mixing.log_prior(gate))
        if pi.shape[0] == 1:
            return pi[0]
        return (self.data.group_weight * self.data.sizes) @ pi / self.n_obs

    def degenerate(self, state: _State, component_stats) -> bool:
        """The plain model's rule (a collapsed σ or too few rows), on the statistics whose
        M-step gave ``state``."""
        return self.base.is_degenerate(em._Params(None, state.beta, state.sigma), component_stats)

    def run(
        self, stats: tuple, state: _State, max_iter: int, tol: float, label: tuple[int, int]
    ) -> _StructuredRun:
        """EM from a start: the statistics ``stats`` of a first pass at (or, for random
        responsibilities, towards) ``state``. Stops when the gain per observation is at most
        ``tol`` (``tol=0``: after ``max_iter`` iterations) or the run degenerates. The trace
        starts at the start's log-likelihood (after the M-step of random responsibilities)."""
        fitted = stats[2]  # the component statistics whose M-step gives the current state
        if not np.isfinite(stats[1]):  # random responsibilities: no log-likelihood before
            state = self.m_step(state, stats)  # their M-step
            stats = self.sweep(state)
        trace, n_iter, converged, degenerate = [stats[1]], 0, False, False
        while n_iter < max_iter:
            state, stats, fitted = self.ascend(state, stats)
            trace.append(stats[1])
            n_iter += 1
            self._report(label, n_iter, trace[-1])
            if self.degenerate(state, fitted):
                degenerate = True
                break
            if tol > 0 and abs(trace[-1] - trace[-2]) <= tol * self.n_obs:
                converged = True
                break
        self._report(
            label, n_iter, trace[-1], done=True, converged=converged, degenerate=degenerate
        )
        spurious = self.components.spurious(fitted, state.sigma)
        params = em._Params(self.mean_weights(state.gate), state.beta, state.sigma)
        separated = getattr(self.components, "separated", None)
        return _StructuredRun(
            params,
            trace,
            n_iter,
            converged,
            degenerate,
            spurious,
            state.gate,
            state.df,
            None if separated is None else separated(fitted, state.beta),
        )

    def ascend(self, state: _State, stats: tuple) -> tuple[_State, tuple, Any]:
        """One EM iteration from ``state`` (whose pass gave ``stats``): the M-step, then a pass
        at the new point. An inexact M-step (a GLM's Newton step, the Student-t's joint step)
        that lowers the log-likelihood is halved, up to ``MAX_HALVINGS`` times, towards
        ``state`` (an ascent direction: the gradient of the observed log-likelihood equals that
        of the expected complete-data one there). Returns the new state, its pass, and the
        component statistics whose M-step gave it."""
        new = self.m_step(state, stats)
        fitted = stats[2]
        new_stats = self.sweep(new)
        slack = 1e-12 * (abs(stats[1]) + self.n_obs)
        exact = getattr(self.components, "exact_m_step", True)
        for _ in range(0 if exact else MAX_HALVINGS):
            if not new_stats[1] < stats[1] - slack:
                break
            new = state.towards(new, 0.5)
            new_stats = self.sweep(new)
        return new, new_stats, fitted

    def _report(self, label, n_iter, ll, *, done=False, converged=False, degenerate=False):
        if self.base.callback is not None:
            self.base.callback(
                EMProgress(
                    stage="run",
                    start=label[0],
                    n_starts=label[1],
                    n_iter=n_iter,
                    log_likelihood=ll - self.n_obs * self.base.log_y_scale,
                    done=done,
                    converged=converged,
                    degenerate=degenerate,
                )
            )

    # -- starts: the statistics of a first pass, and the state whose σ weights its M-step ----

    def start_random(
        self, K: int, rng: np.random.Generator, hard: bool = False
    ) -> tuple[tuple, _State]:
        """Random group responsibilities: Dirichlet(1) rows (with ``hard``, a random
        partition), drawn inside each part from the start's seed and the part's index (with
        Dask input they depend on the chunking)."""
        sigma, df = self.components.start_params(K)
        state = _State(None, sigma, self.mixing.zeros(K), df)
        entropy = int(rng.integers(2**63))
        stats = self.sweep(state, entropy=entropy, hard=hard)
        if self.components.variance == "none":
            # A GLM's M-step is one Newton step: iterate it on the start's own responsibilities
            # (drawn again from the same seed), so that each component starts at the fit to its
            # random share of the data rather than one step away from the common fit.
            for _ in range(START_NEWTON_STEPS):
                state = self.m_step(state, stats)
                stats = self.sweep(state, entropy=entropy, hard=hard)
        return stats, state

    def start_partition(self, K: int, rng: np.random.Generator) -> tuple[tuple, _State]:
        """A random partition of the groups (flexmix's default start): its first M-step fits
        each component to a random subset of about 1/K of the rows, so that GLM components
        start apart (from soft Dirichlet responsibilities they start near the common fit)."""
        return self.start_random(K, rng, hard=True)

    def start_subsets(self, K: int, rng: np.random.Generator) -> tuple[tuple, _State]:
        """Minimal-subset starts of the plain EM (:func:`bayes_mlr.core.em._init_subsets`), the
        shared coefficients set to their mean over the components, equal prior weights."""
        p = em._init_subsets(self.base, K, rng)
        beta = p.beta.copy()
        shared = self.components.shared
        beta[:, shared] = beta[:, shared].mean(axis=0)
        state = _State(beta, p.sigma, self.mixing.zeros(K), self.components.start_params(K)[1])
        return self.sweep(state), state


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------


def fit_structured(
    X: Any,
    y: Any,
    n_components: int,
    *,
    groups: Any = None,
    concomitant: Any = None,
    shared: Any = None,
    variance: str = "component",
    sigma: float | None = None,
    fit_intercept: bool = True,
    sample_weight: Any = None,
    init: str = "auto",
    n_init: int = 10,
    max_iter: int = 1000,
    tol: float = 1e-8,
    random_state: int | np.random.Generator | None = None,
    callback: Callable[[EMProgress], Any] | None = None,
    spurious: str = "avoid",
    family: Any = "gaussian",
    offset: Any = None,
    trials: Any = None,
) -> EMResult:
    """Fit a mixture of regressions of any family, with concomitant variables, grouped rows
    and/or coefficients shared across components, by (generalised) EM.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    n_components : int
    groups : array-like of shape (n_samples,), optional
        Group labels: all rows of a group share one component (flexmix's ``y ~ x | id``).
    concomitant : array-like of shape (n_samples, r), optional
        Concomitant variables ``w``: the prior weights are ``π_ij = softmax_j(α_j + w_iᵀγ_j)``
        with component 0 the reference (flexmix's ``FLXPmultinom``). With ``groups`` they
        must be constant within each group.
    shared : sequence of str or int, or boolean mask, optional
        Columns of ``X`` (names for a DataFrame, or indices) whose coefficient is one number for
        all components; ``"intercept"`` shares the intercept.
    variance, sigma, fit_intercept, max_iter, tol, random_state, callback, spurious
        As in :func:`bayes_mlr.fit_em`.
    sample_weight : array-like of shape (n_samples,), optional
        Replication weights; with ``groups`` they must be constant within each group (a group
        of weight 2 counts as two independent groups).
    init : {"auto", "random", "subsets", "short_runs"}, default="auto"
        ``"random"`` and ``"subsets"`` as in :func:`bayes_mlr.fit_em`; ``"auto"`` and
        ``"short_runs"`` alternate the two. Every start runs to convergence on all rows.
    n_init : int, default=10
        Number of starts (up to four more rounds when every run is degenerate or spurious).
    family : {"gaussian", "poisson", "binomial", "student_t"} or Family, default="gaussian"
        The component family (:mod:`bayes_mlr.core.components`). Poisson and binomial have no
        σ (``variance`` must stay "component" and ``sigma`` None); their starts are random
        (``init="subsets"`` is refused).
    offset : array-like of shape (n_samples,), optional
        Added to the linear predictor (poisson and binomial): e.g. ``log(exposure)``.
    trials : array-like of shape (n_samples,), optional
        Number of trials of each row (binomial; default 1), ``y`` counting successes.

    Returns
    -------
    EMResult
        With ``concomitant_intercept``, ``concomitant_coef``, ``shared``,
        ``shared_intercept``, ``n_groups``, ``family`` and ``df`` set; ``weights`` are the
        prior weights averaged over the training rows; ``sigma`` is NaN for a family without
        σ. Components are in the canonical order (ascending mean
        prediction), and component 0 is the reference of the concomitant model.

    Raises
    ------
    ValueError
        Bad shapes, values that vary within a group where they may not, too few groups for
        the components, or (Dask input) a group whose rows lie in more than one chunk.

    Notes
    -----
    Dask arrays (``X``, ``y``, ``sample_weight``, ``groups``, ``concomitant``, row-aligned) are
    processed chunk by chunk, one pass per EM iteration, as the plain model's Dask path; every
    group must lie inside one chunk (checked in the first pass). The client holds, besides one
    chunk per worker, the groups' weights, sizes and concomitant rows and, for a concomitant
    model, their responsibilities: memory of order ``n_groups × (K + r)`` (with a concomitant
    model and no ``groups`` every row is a group), and constant otherwise.
    """
    em.check_arguments(
        callback,
        spurious=spurious,
        min_weight=None,
        n_components=n_components,
        variance=variance,
        sigma=sigma,
        fit_intercept=fit_intercept,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
    )
    if not isinstance(init, str):
        raise TypeError(
            "init must be one of 'auto', 'random', 'subsets', 'short_runs' for a model with "
            "concomitant variables, groups, shared coefficients or a non-Gaussian family; got "
            f"{type(init).__name__}."
        )
    family = resolve_family(family)
    _check_family_settings(family, variance, sigma, init)
    K = int(n_components)
    rows = (X, y, groups, concomitant, sample_weight, offset, trials)
    extra = (family, offset, trials)
    if any(is_dask_collection(v) for v in rows):
        source = _dask_source(
            X, y, sample_weight, groups, concomitant, shared, fit_intercept, extra
        )
    else:
        source = _memory_source(
            X, y, sample_weight, groups, concomitant, shared, fit_intercept, extra
        )
    data, scaler, points, n_rows, mask, shared_intercept = source
    if not family.has_sigma:  # the EM core sees a unit "σ", fixed: the family has none
        variance, sigma = "fixed", 1.0
    p = mask.shape[0]
    check_sizes(n_rows, p, K, fit_intercept=bool(fit_intercept), variance=variance)
    n_groups = int(np.count_nonzero(data.group_weight))
    if K > n_groups:
        raise ValueError(f"n_components={K} is larger than the number of groups ({n_groups}).")
    design_shared = np.concatenate([[shared_intercept], mask]) if fit_intercept else mask
    sigma_fixed = None if sigma is None else sigma / scaler.y_scale
    w_shift, w_scale = _concomitant_scaler(data.concomitant, data.group_weight)
    if data.concomitant is None:
        mixing = ConstantMixing()
    else:
        Wd = standardised_design(data.concomitant, w_shift, w_scale)
        mixing = MultinomialLogit(Wd, data.group_weight)
    q = design_shared.shape[0]
    null_beta = np.zeros(q)
    if fit_intercept:
        sums = data.map(part_null_sums, [None] * len(data.parts), family, q)
        null_beta[0] = family.null_eta(np.sum(sums, axis=0))
    components = family.components(
        design_shared,
        variance=variance,
        sigma_fixed=sigma_fixed,
        sigma_floor=em.SIGMA_FLOOR_REL,
        null_beta=null_beta,
        intercept=bool(fit_intercept),
    )
    rng = np.random.default_rng(random_state)
    # One BLAS thread: the products here are skinny (K or r1 columns), where OpenBLAS's own
    # threads cost more than they gain (measured: 2.4 s against 1.15 s for a fit at n=100k,
    # 20k groups, on 2 cores, `python -m tests.benchmarks.bench_structured --n 100000`); Dask
    # runs its chunks in parallel instead.
    with points, blas_single_thread():
        base = em._Problem(
            data=points,
            n_obs=points.n_obs,
            variance=variance,
            sigma_fixed=sigma_fixed,
            sigma_floor=em.SIGMA_FLOOR_REL,
            min_count=q + (variance == "component"),
            callback=callback,
            log_y_scale=math.log(scaler.y_scale),
            avoid_spurious=spurious == "avoid",
        )
        model = _Structured(data, components, mixing, w_shift, w_scale, base)
        runs = _restarts(model, K, init, int(n_init), int(max_iter), float(tol), rng)
        best = em._best_run(runs, base)
        n_spurious = em.warn_outcome(runs, best, spurious=spurious, max_iter=max_iter, tol=tol)
        separated = data.concomitant is not None and _separated(best.gate)
        separated = _separated_components(best, family) or separated
        if not family.has_sigma:
            sigma = float("nan")
        optima = em._distinct_optima(runs, best, scaler, base, sigma)
        conc_scaler = None if data.concomitant is None else (w_shift, w_scale)
        optima = [(_with_run(opt, group[0], scaler, conc_scaler), group) for opt, group in optima]
    return _result(
        best,
        runs,
        optima,
        scaler,
        base,
        sigma=sigma,
        variance=variance,
        mask=mask,
        shared_intercept=shared_intercept,
        concomitant=None if data.concomitant is None else (w_shift, w_scale),
        n_groups=data.n_groups if data.grouped else None,
        n_spurious=n_spurious,
        separated=separated,
        family=family,
    )


def _check_family_settings(family: Family, variance, sigma, init) -> None:
    """Settings that do not apply to the family: refused before any computation."""
    if family.has_sigma:
        return
    if variance != "component" or sigma is not None:
        raise ValueError(
            f"family={family.name!r} has no sigma (its variance is a function of its mean): leave "
            "variance='component' and sigma=None."
        )
    if init == "subsets":
        raise ValueError(
            f"init='subsets' fits lines by least squares, which family={family.name!r} has no "
            "use for; use init='auto' or 'random'."
        )


def _scaler(moments, shared_intercept: bool, fit_intercept: bool, family: Family) -> Scaler:
    """The standardisation of x and y; without shifting x when the intercept is shared
    (shifting x would make a shared intercept component-specific), and without touching y for
    a family of counts."""
    x_mean, x_var, y_mean, y_var = moments
    if not shared_intercept:
        scaler = Scaler.from_moments(x_mean, x_var, y_mean, y_var, bool(fit_intercept))
    else:
        scaler = Scaler.from_moments(x_mean, x_var, y_mean, y_var, False)
        scaler = dataclasses.replace(scaler, fit_intercept=True, x_mean=np.asarray(x_mean, float))
    if not family.standardise_y:
        scaler = dataclasses.replace(scaler, y_shift=0.0, y_scale=1.0)
    return scaler


def _memory_source(X, y, sample_weight, groups, concomitant, shared, fit_intercept, extra):
    """In-memory data: one part; the plain problem's data source for the starts."""
    family, offset, trials = extra
    X_arr, y_arr, sw, names = check_data(X, y, sample_weight)
    n = X_arr.shape[0]
    mask, shared_intercept = check_shared(
        shared, X_arr.shape[1], names, fit_intercept=bool(fit_intercept)
    )
    W = None if concomitant is None else check_concomitant(concomitant, n)[0]
    offset, trials = row_vector(offset, "offset", n), row_vector(trials, "trials", n)
    family.check_response(y_arr, offset, trials)
    scaler = _scaler(moments(X_arr, y_arr, sw), shared_intercept, fit_intercept, family)
    data = GroupedData.in_memory(X_arr, y_arr, sw, groups, W, scaler, family, offset, trials)
    q = X_arr.shape[1] + int(bool(fit_intercept))
    points = InMemoryData(np.ascontiguousarray(data.parts[0].Z[:, : q + 1]), sw)
    n_rows = n if sw is None else int(np.count_nonzero(sw))
    return data, scaler, points, n_rows, mask, shared_intercept


def _dask_source(X, y, sample_weight, groups, concomitant, shared, fit_intercept, extra):
    """Dask data: one part per row chunk (every group inside one chunk, checked)."""
    family, offset, trials = extra
    import dask.array as da

    from bayes_mlr.core import dask_data as _dask

    X, y, sw, names = _dask.prepare(X, y, sample_weight)
    chunks = X.chunks[0]

    def aligned(value, name, ndim):
        if value is None:
            return None
        if hasattr(value, "to_dask_array"):  # a Dask Series or DataFrame
            value = value.to_dask_array(lengths=True)
        arr = value if is_dask_collection(value) else da.from_array(np.asarray(value))
        if arr.ndim == 1 and ndim == 2:
            arr = arr[:, None]
        if arr.shape[0] != X.shape[0] or arr.ndim != ndim:
            raise ValueError(
                f"{name} must have {X.shape[0]} rows, as X, and {ndim} dimension(s); got shape "
                f"{arr.shape}."
            )
        return arr.rechunk((chunks,) + ((-1,) if ndim == 2 else ()))

    g = aligned(groups, "groups", 1)
    W = aligned(concomitant, "concomitant", 2)
    offset, trials = aligned(offset, "offset", 1), aligned(trials, "trials", 1)
    if W is not None and not np.issubdtype(W.dtype, np.number):
        raise TypeError(f"concomitant must be numeric; got a Dask array of dtype {W.dtype}.")
    mask, shared_intercept = check_shared(shared, X.shape[1], names, fit_intercept=fit_intercept)
    n_obs, x_mean, x_var, y_mean, y_var = _dask.moments_and_checks(X, y, sw)
    if not n_obs > 0:
        raise ValueError("sample_weight sums to zero; at least one observation needs weight.")
    scaler = _scaler((x_mean, x_var, y_mean, y_var), shared_intercept, fit_intercept, family)
    data = GroupedData.from_dask(X, y, sw, g, W, scaler, family, offset, trials)
    if data.concomitant is not None and not np.all(np.isfinite(data.concomitant)):
        raise ValueError("concomitant contains NaN or infinite values; clean the data first.")
    points = _dask.DaskData(X, y, sw, scaler, n_obs)
    return data, scaler, points, points.n_rows, mask, shared_intercept


def _separated(gate: np.ndarray) -> bool:
    """Whether the concomitant slopes (per standard deviation of their variable) are so large
    that the gating model separates the components, and warn if so (:class:`SeparationWarning`).
    """
    slopes = np.abs(gate[:, 1:] - gate[0, 1:])
    if not slopes.size or slopes.max() <= SEPARATION_LOGIT:
        return False
    warnings.warn(
        "The concomitant variables separate the components: a change of one standard deviation "
        f"multiplies a component's odds by more than exp({SEPARATION_LOGIT:g}), so the maximum "
        "likelihood concomitant coefficients are infinite. Their values and standard errors are "
        "not meaningful (the fit is flagged: result_.separated); the regression coefficients "
        "may still be. Use fewer concomitant variables, or the posterior, whose priors keep "
        "the coefficients finite.",
        SeparationWarning,
        stacklevel=em._user_stacklevel(),
    )
    return True


def _separated_components(best: _StructuredRun, family: Family) -> bool:
    """Whether a GLM component's linear predictor diverged (separation, or a mean collapsing
    onto the boundary), and warn if so (:class:`SeparationWarning`)."""
    if best.separated is None or not best.separated.any():
        return False
    which = ", ".join(map(str, np.flatnonzero(best.separated)))
    warnings.warn(
        f"family={family.name!r}: the linear predictor of component(s) {which} (before the "
        "canonical reordering) diverges: a slope beyond "
        f"{SEPARATION_SLOPE:g} per standard deviation of its column, or a fitted mean "
        "collapsing to the boundary (a Poisson mean of 0, a probability of 0 or 1). The data "
        "separate within that component (complete or quasi-complete separation), so some "
        "maximum likelihood coefficients are infinite; their values and standard errors are "
        "not meaningful (the fit is flagged: result_.separated). Drop or merge the separating "
        "columns, use fewer components, or use the posterior, whose priors keep the "
        "coefficients finite.",
        SeparationWarning,
        stacklevel=em._user_stacklevel(),
    )
    return True


def _external_gate(gate: np.ndarray, order: np.ndarray, concomitant_scaler) -> tuple:
    """Mixing coefficients on the standardised scale -> ``(concomitant_intercept (K,),
    concomitant_coef (K, r))`` in the data's units, in the component ``order`` given, row 0
    the reference."""
    shift, scale = concomitant_scaler
    gate = gate[order]
    coef = gate[:, 1:] / scale
    intercept = gate[:, 0] - coef @ shift
    return intercept - intercept[0], coef - coef[0]


def _with_run(optimum, run, scaler: Scaler, concomitant_scaler):
    """``optimum`` (of :func:`bayes_mlr.core.em._distinct_optima`, from ``run``) with what the
    plain optimum does not hold: the run's concomitant coefficients (when
    ``concomitant_scaler`` is given) and degrees of freedom, in the optimum's canonical
    component order."""
    weights, intercept, coef, _ = em._to_external(scaler, run.params)
    order = em.canonical_order(weights, intercept, coef, scaler.x_mean)
    extra = {}
    if concomitant_scaler is not None:
        c_intercept, c_coef = _external_gate(run.gate, order, concomitant_scaler)
        extra.update(concomitant_intercept=c_intercept, concomitant_coef=c_coef)
    if run.df is not None:
        extra["df"] = run.df[order]
    return dataclasses.replace(optimum, **extra) if extra else optimum


def _concomitant_scaler(W: np.ndarray | None, weight: np.ndarray):
    """Weighted mean and standard deviation of each concomitant column (1 for a constant one)."""
    if W is None:
        return None, None
    shift = np.average(W, axis=0, weights=weight)
    scale = np.sqrt(np.average((W - shift) ** 2, axis=0, weights=weight))
    scale = np.where(scale > 1e-12 * np.maximum(np.abs(shift), 1.0), scale, 1.0)
    return shift, scale


def _restarts(model: _Structured, K, init, n_init, max_iter, tol, rng) -> list[_StructuredRun]:
    """``n_init`` starts (subsets and random in turn for "auto"/"short_runs"), each run to
    convergence; up to ``em.SPURIOUS_EXTRA_ROUNDS`` more rounds while no run is regular."""
    if init == "random":
        makers = (model.start_random,)
    elif model.components.variance == "none":  # a GLM: no lines to start from
        makers = (model.start_partition, model.start_random)
    elif init == "subsets":
        makers = (model.start_subsets,)
    else:
        makers = (model.start_subsets, model.start_random)
    runs: list[_StructuredRun] = []
    for _ in range(1 + em.SPURIOUS_EXTRA_ROUNDS):
        for i in range(len(runs), len(runs) + n_init):
            stats, state = makers[i % len(makers)](K, rng)
            runs.append(model.run(stats, state, max_iter, tol, (i, n_init)))
        if any(map(model.base.is_regular, runs)):
            break
    return runs


def _result(
    best,
    runs,
    optima,
    scaler,
    base,
    *,
    sigma,
    variance,
    mask,
    shared_intercept,
    concomitant,
    n_groups,
    n_spurious,
    separated,
    family,
) -> EMResult:
    weights, intercept, coef, sig = em._to_external(scaler, best.params)
    if variance == "fixed" or not family.has_sigma:  # as given (NaN: the family has no σ)
        sig = np.full(weights.shape[0], float(sigma))
    order = em.canonical_order(weights, intercept, coef, scaler.x_mean)
    c_intercept = c_coef = None
    if concomitant is not None:
        c_intercept, c_coef = _external_gate(best.gate, order, concomitant)
    coef = coef[order]
    coef[:, mask] = coef[:, mask].mean(axis=0)  # equal up to rounding: make them equal
    intercept = intercept[order]
    if shared_intercept:
        intercept[:] = intercept.mean()
    summary = em.run_summary(best, runs, n_spurious, optima, scaler, base)
    if not family.has_sigma:
        summary["variance"] = "none"
    return EMResult(
        weights=weights[order],
        intercept=intercept,
        coef=coef,
        sigma=sig[order],
        spurious_components=best.spurious[order],
        shared=mask,
        shared_intercept=shared_intercept,
        concomitant_intercept=c_intercept,
        concomitant_coef=c_coef,
        n_groups=n_groups,
        separated=separated,
        family=family,
        df=None if best.df is None else best.df[order],
        **summary,
    )


# ---------------------------------------------------------------------------------------------
# Evaluation at given parameters (original units)
# ---------------------------------------------------------------------------------------------


def mixing_weights(result: EMResult, concomitant: Any = None, n_samples: int | None = None):
    """Prior component probabilities of each row, shape (n, K).

    Parameters
    ----------
    result : EMResult
    concomitant : array-like of shape (n, r), optional
        Required when the model has concomitant variables; otherwise ignored unless given
        (then only its row count is used).
    n_samples : int, optional
        Number of rows when ``concomitant`` is not needed.

    Returns
    -------
    ndarray of shape (n, K)
    """
    if result.concomitant_coef is None:
        n = n_samples if concomitant is None else np.shape(concomitant)[0]
        if n is None:
            raise ValueError("mixing_weights needs the number of rows (n_samples).")
        return np.broadcast_to(result.weights, (int(n), result.n_components)).copy()
    if concomitant is None:
        raise ValueError(
            f"This model has {result.n_concomitant} concomitant variable(s): pass concomitant, "
            "an array of shape (n_samples, r) (or the data frame, for a formula fit)."
        )
    W = check_concomitant(concomitant, np.shape(concomitant)[0])[0]
    if W.shape[1] != result.n_concomitant:
        raise ValueError(
            f"concomitant has {W.shape[1]} column(s), but the model was fitted with "
            f"{result.n_concomitant}."
        )
    if n_samples is not None and W.shape[0] != n_samples:
        raise ValueError(f"concomitant has {W.shape[0]} rows, X has {n_samples}.")
    eta = result.concomitant_intercept + W @ result.concomitant_coef.T
    return np.exp(log_softmax(eta))


def e_step_structured(
    result: EMResult,
    X: np.ndarray,
    y: np.ndarray,
    *,
    groups: Any = None,
    concomitant: Any = None,
    offset: Any = None,
    trials: Any = None,
) -> tuple[np.ndarray, np.ndarray, Grouping]:
    """The E-step of a fitted model on data in the original units.

    Parameters
    ----------
    result : EMResult
    X : ndarray of shape (n, p)
    y : ndarray of shape (n,)
    groups : array-like of shape (n,), optional
    concomitant : array-like of shape (n, r), optional
    offset, trials : array-like of shape (n,), optional
        For the poisson and binomial families.

    Returns
    -------
    resp : ndarray of shape (n, K)
        Responsibilities; every row of a group carries its group's.
    loglik : ndarray of shape (n_groups,)
        ``ℓ_g = log Σ_j π_gj Π_{i∈g} f_j(y_i | ·)`` of each group (of each row without groups).
    grouping : Grouping
    """
    n = X.shape[0]
    grouping = Grouping(groups, n)
    pi = mixing_weights(result, concomitant, n)
    log_pi = group_constant(grouping, np.log(np.maximum(pi, 1e-300)), "concomitant")
    log_f = row_log_density(result, X, y, offset, trials)
    gamma, ell = bayes_rule(grouping.sum(log_f) + log_pi)
    return grouping.expand(gamma), ell, grouping


def family_rows(result: EMResult, y: np.ndarray, offset: Any, trials: Any) -> np.ndarray:
    """The family's row columns (offset, trials, ...) of data scored by a fitted model,
    validated: shape (n, m) (:meth:`Family.rows <bayes_mlr.core.components.family.Family.rows>`)."""
    return result.family.rows(y, offset, trials)


def row_log_density(
    result: EMResult, X: np.ndarray, y: np.ndarray, offset: Any = None, trials: Any = None
) -> np.ndarray:
    """``log f_j(y_i | x_i)`` of every row under every component, shape (n, K), at the
    estimates of ``result`` (original units)."""
    extra = family_rows(result, y, offset, trials)
    return result.family.log_density(
        y, linear_predictor(result, X, extra), extra, np.asarray(result.sigma), result.df
    )


def linear_predictor(
    result: EMResult, X: np.ndarray, extra: np.ndarray, beta: np.ndarray | None = None
) -> np.ndarray:
    """``η_ij = offset_i + intercept_j + coef_j · x_i`` (n, K), at ``beta`` (K, q) or the
    estimates."""
    if beta is None:
        beta = (
            np.column_stack([result.intercept, result.coef])
            if result.fit_intercept
            else np.asarray(result.coef)
        )
    X1 = np.column_stack([np.ones(X.shape[0]), X]) if result.fit_intercept else X
    return X1 @ beta.T + np.reshape(result.family.offset_of(extra), (-1, 1))
