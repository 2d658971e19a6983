"""Choosing the number of components: a table of criteria per K, and the bootstrap LRT.

:func:`select_n_components` is the analogue of flexmix's ``stepFlexmix``: EM for each K, with
the spurious-optimum guard of :func:`bayes_mlr.fit_em`, and BIC, AIC and ICL side by side.
:func:`bootstrap_lrt` is the parametric bootstrap likelihood-ratio test of McLachlan (1987), as
mixtools' ``boot.comp``: the null distribution of ``2(ℓ_k1 − ℓ_k0)`` is not χ² for mixtures
(the null sits on the boundary of the parameter space), so it is simulated from the fitted
``k0``-component model.

References
----------
McLachlan, G. J. (1987). On bootstrapping the likelihood ratio test statistic for the number of
components in a normal mixture. *Applied Statistics* 36, 318-324.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayes_mlr._validation import check_data
from bayes_mlr.core.components import resolve_family
from bayes_mlr.estimator import MixtureOfRegressions
from bayes_mlr.exceptions import ConvergenceWarning, DegenerateFitWarning
from bayes_mlr.simulate import draw_response

__all__ = ["BootstrapLRT", "bootstrap_lrt", "criteria_row", "select_n_components"]

#: The columns of :func:`select_n_components`, in order.
COLUMNS = (
    "n_components",
    "log_likelihood",
    "n_parameters",
    "bic",
    "aic",
    "icl",
    "converged",
    "spurious",
    "degenerate",
    "n_components_fit",
)


def _check_ks(n_components: Any) -> list[int]:
    if isinstance(n_components, int | np.integer) and not isinstance(n_components, bool):
        n_components = [n_components]
    if not isinstance(n_components, Iterable) or isinstance(n_components, str):
        raise TypeError(
            f"n_components must be an iterable of positive integers; got {n_components!r}."
        )
    ks = list(n_components)
    if not ks or any(
        isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1 for k in ks
    ):
        raise ValueError(f"n_components must hold positive integers; got {ks!r}.")
    if len(set(ks)) != len(ks):
        raise ValueError(f"n_components must not repeat a K; got {ks!r}.")
    return [int(k) for k in ks]


def criteria_row(model: MixtureOfRegressions, X, y, sample_weight=None) -> dict[str, Any]:
    """One row of :func:`select_n_components` for a fitted model (in :data:`COLUMNS` order)."""
    structure = model._training_structure()
    return {
        "n_components": int(model.n_components),
        "log_likelihood": float(model.log_likelihood_),
        "n_parameters": int(model.result_.n_parameters),
        "bic": model.bic(X, y, sample_weight=sample_weight, **structure),
        "aic": model.aic(X, y, sample_weight=sample_weight, **structure),
        "icl": model.icl(X, y, sample_weight=sample_weight, **structure),
        "converged": bool(model.converged_),
        "spurious": bool(model.result_.spurious),
        "degenerate": bool(model.result_.degenerate),
        "n_components_fit": int(model.n_components_),
    }


def criteria_table(rows: list[dict[str, Any]]):
    """The DataFrame of :func:`select_n_components` from its rows, with the choices in
    ``attrs``: ``best_bic``, ``best_aic``, ``best_icl``, each the K of the lowest criterion among
    the fits that are neither spurious nor degenerate (None when there is none)."""
    import pandas as pd

    table = pd.DataFrame(rows, columns=list(COLUMNS))
    regular = table[~(table["spurious"] | table["degenerate"])]
    for name in ("bic", "aic", "icl"):
        table.attrs[f"best_{name}"] = (
            int(regular.loc[regular[name].idxmin(), "n_components"]) if len(regular) else None
        )
    return table


def select_n_components(
    X: Any,
    y: Any,
    n_components: Iterable[int] = range(1, 5),
    *,
    n_init: int = 10,
    random_state: int | None = None,
    sample_weight: Any = None,
    groups: Any = None,
    concomitant: Any = None,
    offset: Any = None,
    trials: Any = None,
    **estimator_kwargs: Any,
):
    """Fit EM for each number of components and tabulate the criteria (flexmix's
    ``stepFlexmix``).

    Every fit uses the spurious-optimum guard of :func:`bayes_mlr.fit_em` (the best run without
    a spurious component); a K whose every run was spurious is kept in the table, flagged, and
    left out of the choices in ``attrs``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    n_components : iterable of int, default=range(1, 5)
        The K values, each fitted once.
    n_init : int, default=10
        EM starts per K.
    random_state : int or None
        Seed of every fit (the same for each K).
    sample_weight : array-like of shape (n_samples,), optional
    groups, concomitant, offset, trials : array-like, optional
        As in :meth:`~bayes_mlr.MixtureOfRegressions.fit`, for every K.
    **estimator_kwargs
        Other arguments of :class:`~bayes_mlr.MixtureOfRegressions` (``family``,
        ``variance``, ``shared``, ``spurious``, ``min_weight``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per K with the columns ``n_components``, ``log_likelihood``,
        ``n_parameters``, ``bic``, ``aic``, ``icl`` (lower is better; ICL as flexmix and
        mclust, see :meth:`~bayes_mlr.MixtureOfRegressions.icl`), ``converged``, ``spurious``,
        then ``degenerate`` and ``n_components_fit`` (below ``n_components`` when
        ``min_weight`` removed components). ``attrs["best_bic"]`` (and ``best_aic``,
        ``best_icl``) is the K of the lowest criterion among the regular fits.

    Warns
    -----
    SpuriousFitWarning, DegenerateFitWarning, ConvergenceWarning
        As each fit does.

    Examples
    --------
    >>> from bayes_mlr import select_n_components, simulate
    >>> data = simulate(400, weights=[0.5, 0.5], intercept=[-2, 2], coef=[[1.0], [-1.0]],
    ...                 sigma=[0.5, 0.5], random_state=0)
    >>> table = select_n_components(data.X, data.y, range(1, 4), random_state=0)
    >>> table.attrs["best_bic"]
    2
    """
    ks = _check_ks(n_components)
    X_arr, y_arr, sw, _ = check_data(X, y, sample_weight)
    rows = []
    for k in ks:
        model = MixtureOfRegressions(
            k, n_init=n_init, random_state=random_state, **estimator_kwargs
        ).fit(
            X_arr,
            y_arr,
            sample_weight=sw,
            groups=groups,
            concomitant=concomitant,
            offset=offset,
            trials=trials,
        )
        rows.append(criteria_row(model, X_arr, y_arr, sw))
    return criteria_table(rows)


# ---------------------------------------------------------------------------------------------
# The parametric bootstrap likelihood-ratio test
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapLRT:
    """Result of :func:`bootstrap_lrt`.

    Attributes
    ----------
    statistic : float
        ``2 (ℓ_k1 − ℓ_k0)`` on the data (at least 0).
    p_value : float
        ``(1 + #{b : T_b ≥ statistic}) / (n_boot + 1)``.
    null_statistics : ndarray of shape (n_boot,)
        The statistic on each data set simulated from the ``k0`` fit.
    n_components : tuple of int
        ``(k0, k1)``.
    log_likelihood : tuple of float
        ``(ℓ_k0, ℓ_k1)`` on the data.
    n_flagged : int
        Bootstrap fits (of either K) that were spurious or degenerate even with the guard;
        their statistic is kept (it can only be larger, which makes the test conservative).
    """

    statistic: float
    p_value: float
    null_statistics: np.ndarray
    n_components: tuple[int, int]
    log_likelihood: tuple[float, float]
    n_flagged: int = 0
    null_model: Any = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        k0, k1 = self.n_components
        return (
            f"Bootstrap LRT of {k0} against {k1} components: statistic {self.statistic:.4g}, "
            f"p = {self.p_value:.4g} ({self.null_statistics.size} bootstrap samples; "
            f"{self.n_flagged} flagged fits)"
        )


def _fit_pair(X, y, ks, settings, seed) -> tuple[float, float, int]:
    """ℓ of the k0 and k1 fits to (X, y), and how many of the two were flagged."""
    lls, flagged = [], 0
    with warnings.catch_warnings():
        # counted below through the flags on the result, not printed once per replicate
        warnings.simplefilter("ignore", DegenerateFitWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in ks:
            m = MixtureOfRegressions(k, random_state=seed, **settings).fit(X, y)
            lls.append(m.log_likelihood_)
            flagged += bool(m.result_.spurious or m.result_.degenerate)
    return lls[0], lls[1], flagged


def _replicate(args) -> tuple[float, float, int]:
    X, null_params, ks, settings, seed = args
    rng = np.random.default_rng(seed)
    y = draw_response(null_params, X, rng)
    return _fit_pair(X, y, ks, settings, int(rng.integers(2**32)))


def bootstrap_lrt(
    X: Any,
    y: Any,
    n_components: tuple[int, int] = (1, 2),
    n_boot: int = 99,
    random_state: int | None = None,
    *,
    n_jobs: int | None = None,
    **estimator_kwargs: Any,
) -> BootstrapLRT:
    """Parametric bootstrap likelihood-ratio test of ``k0`` against ``k1`` components.

    McLachlan (1987), as mixtools' ``boot.comp``: fit both K to the data; simulate ``n_boot``
    responses at the observed X from the ``k0`` fit; fit both K to each; the p-value is the
    share of simulated statistics at least the observed one. Every fit uses the spurious guard
    of :func:`bayes_mlr.fit_em`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    n_components : (int, int), default=(1, 2)
        ``(k0, k1)`` with ``k0 < k1``.
    n_boot : int, default=99
        Bootstrap samples (99 gives p-values in steps of 0.01).
    random_state : int or None
        Seed of the whole test; the result does not depend on ``n_jobs``.
    n_jobs : int, optional
        Worker processes for the bootstrap fits; default all cores, 1 runs them here.
    **estimator_kwargs
        Other arguments of :class:`~bayes_mlr.MixtureOfRegressions` (``variance``,
        ``n_init``, ...); ``sample_weight`` is not supported (the simulation would need to
        know what the weights mean).

    Returns
    -------
    BootstrapLRT
        With ``statistic``, ``p_value`` and ``null_statistics`` (length ``n_boot``).

    Examples
    --------
    >>> from bayes_mlr import bootstrap_lrt, simulate
    >>> data = simulate(200, weights=[0.5, 0.5], intercept=[-2, 2], coef=[[1.0], [-1.0]],
    ...                 sigma=[0.5, 0.5], random_state=0)
    >>> test = bootstrap_lrt(data.X, data.y, (1, 2), n_boot=19, random_state=0, n_jobs=1)
    >>> test.p_value
    0.05
    """
    if not (
        isinstance(n_components, tuple | list)
        and len(n_components) == 2
        and all(isinstance(k, int | np.integer) and not isinstance(k, bool) for k in n_components)
    ):
        raise TypeError(f"n_components must be a pair of integers (k0, k1); got {n_components!r}.")
    k0, k1 = (int(k) for k in n_components)
    if not 1 <= k0 < k1:
        raise ValueError(f"n_components must satisfy 1 <= k0 < k1; got ({k0}, {k1}).")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}.")
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1
    ):
        raise ValueError(f"n_jobs must be a positive integer or None; got {n_jobs!r}.")
    if "sample_weight" in estimator_kwargs:
        raise TypeError("bootstrap_lrt does not take sample_weight")
    structure = ("shared", "groups", "concomitant", "offset", "trials")
    family = resolve_family(estimator_kwargs.get("family", "gaussian"))
    if family.name != "gaussian" or any(estimator_kwargs.get(k) is not None for k in structure):
        raise NotImplementedError(
            "bootstrap_lrt simulates from the plain Gaussian mixture; it does not simulate "
            f"{family.name!r} responses, groups, concomitant variables, shared coefficients, "
            "offsets or trials. Compare such models with select_n_components (BIC, ICL)."
        )
    X_arr, y_arr, _, _ = check_data(X, y, None)
    MixtureOfRegressions(k1, **estimator_kwargs)  # unknown arguments fail here, before fitting
    seeds = np.random.SeedSequence(random_state)
    fit_seed, *boot_seeds = (int(s.generate_state(1)[0]) for s in seeds.spawn(n_boot + 1))
    settings = dict(estimator_kwargs)
    null = MixtureOfRegressions(k0, random_state=fit_seed, **settings).fit(X_arr, y_arr)
    alt = MixtureOfRegressions(k1, random_state=fit_seed, **settings).fit(X_arr, y_arr)
    statistic = max(0.0, 2.0 * (alt.log_likelihood_ - null.log_likelihood_))
    null_params = {name: np.asarray(v) for name, v in null.result_.params().items()}
    jobs = [(X_arr, null_params, (k0, k1), settings, s) for s in boot_seeds]
    workers = min(os.cpu_count() or 1, n_boot) if n_jobs is None else min(int(n_jobs), n_boot)
    if workers > 1:
        # A fork server, not fork: forking a process with threads running (BLAS, a JAX
        # runtime started by a sampler) can deadlock the child.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            out = list(pool.map(_replicate, jobs, chunksize=max(1, n_boot // (4 * workers))))
    else:
        out = [_replicate(job) for job in jobs]
    ll0, ll1, flagged = (np.array(v) for v in zip(*out, strict=True))
    null_stats = np.maximum(0.0, 2.0 * (ll1 - ll0))
    null_stats.setflags(write=False)
    p_value = float((1 + np.count_nonzero(null_stats >= statistic)) / (n_boot + 1))
    return BootstrapLRT(
        statistic=float(statistic),
        p_value=p_value,
        null_statistics=null_stats,
        n_components=(k0, k1),
        log_likelihood=(float(null.log_likelihood_), float(alt.log_likelihood_)),
        n_flagged=int(flagged.sum()),
        null_model=null,
    )
