"""Posterior modes: which chains sit in which mode, and how much of the posterior each holds.

A mixture posterior can have several modes that no chain moves between: distinct EM optima
(a wide fit and a narrow one, say) each carry a mode. Chains started in different modes each
look converged on their own, and R-hat of the *aligned* parameters can miss it when the
modes differ in a way alignment absorbs. This module compares chains on quantities that do
not depend on the labelling (Stan User's Guide, "Finite mixtures"; Betancourt, "Identifying
Bayesian Mixture Models"):

* the log density ``lp`` and the total log-likelihood of each draw;
* each parameter's component values *sorted* (sorted weights, sorted sigma, sorted intercepts,
  sorted slopes of each feature), which no relabelling changes.

* :func:`invariant_draws`: those quantities per draw, ``(chain, draw, quantity)``;
* :func:`group_chains`: chains whose label-invariant distributions overlap form one mode;
* :func:`log_mass`: a mode's log posterior mass from its draws (Gaussian approximation);
* :func:`mode_table`: the modes side by side (chains, mean lp, share, nearest EM optimum).

numpy only; :func:`bayes_mlr.bayes.model.sample_posterior` records the modes in the DataTree (group
``modes``) and :func:`bayes_mlr.diagnose` reports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

__all__ = [
    "MODE_COLUMNS",
    "MODE_SEPARATION",
    "group_chains",
    "invariant_draws",
    "log_mass",
    "mode_table",
    "renumber",
    "sorted_parameters",
]

#: Two chains are in different modes when some label-invariant quantity has chain means this
#: many pooled within-chain standard deviations apart. Chains of one mode have means a small
#: fraction of a standard deviation apart (about sqrt(2 / ESS)); at 2 sd two equal normal
#: distributions share under a third of their mass, and the modes this is meant for (a narrow
#: optimum beside a wide one) are tens of sd apart.
MODE_SEPARATION = 2.0
_PARAMS = ("weights", "intercept", "coef", "sigma")
#: The per-mode numbers of :func:`mode_table` (after ``chains``), as the ``modes`` group of a
#: posterior stores them.
MODE_COLUMNS = (
    "n_chains",
    "mean_lp",
    "mean_log_likelihood",
    "log_mass",
    "share",
    "nearest_optimum",
    "optimum_log_likelihood",
    "optimum_distance",
)


def sorted_parameters(values: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Each parameter's component values sorted: quantities no relabelling changes.

    Parameters
    ----------
    values : mapping of str to ndarray
        ``weights``, ``intercept``, ``sigma`` of shape ``(..., K)`` and ``coef`` of shape
        ``(..., K, p)`` (any subset; a shared ``sigma`` of shape ``(...)`` is kept as is).

    Returns
    -------
    names : list of str
        ``"weights (sorted) 0"``, ..., ``"coef[x0] (sorted) 1"``, ...
    array : ndarray of shape (..., F)
    """
    names: list[str] = []
    columns: list[np.ndarray] = []
    for name in _PARAMS:
        if name not in values:
            continue
        value = np.asarray(values[name], dtype=float)
        if name == "coef":
            for f in range(value.shape[-1]):
                part = np.sort(value[..., f], axis=-1)
                columns.append(part)
                names += [f"coef[{f}] (sorted) {k}" for k in range(part.shape[-1])]
            continue
        if name == "sigma" and "weights" in values and value.ndim < np.ndim(values["weights"]):
            columns.append(value[..., None])  # one shared sigma
            names.append("sigma")
            continue
        part = np.sort(value, axis=-1)
        columns.append(part)
        names += [f"{name} (sorted) {k}" for k in range(part.shape[-1])]
    return names, np.concatenate(columns, axis=-1)


def invariant_draws(
    values: Mapping[str, np.ndarray], extra: Mapping[str, np.ndarray] | None = None
) -> tuple[list[str], np.ndarray]:
    """The label-invariant quantities of every draw.

    Parameters
    ----------
    values : mapping of str to ndarray of shape (chain, draw, K[, p])
        Posterior draws of ``weights``, ``intercept``, ``coef``, ``sigma``.
    extra : mapping of str to ndarray of shape (chain, draw), optional
        Per-draw scalars that are label-invariant already (``lp``, ``log_likelihood``); they
        come first.

    Returns
    -------
    names : list of str
    array : ndarray of shape (chain, draw, F)
    """
    names, array = sorted_parameters(values)
    if extra:
        front = [np.asarray(v, dtype=float)[..., None] for v in extra.values()]
        return [*extra, *names], np.concatenate([*front, array], axis=-1)
    return names, array


def _separation(features: np.ndarray) -> np.ndarray:
    """Largest standardised distance between the chain means, ``(chain, chain)``."""
    mean = features.mean(axis=1)  # (C, F)
    var = features.var(axis=1)
    scale = np.sqrt((var[:, None, :] + var[None, :, :]) / 2.0)
    gap = np.abs(mean[:, None, :] - mean[None, :, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, gap / scale, np.where(gap > 0, np.inf, 0.0))
    return z.max(axis=-1)


def group_chains(features: np.ndarray, *, separation: float = MODE_SEPARATION) -> np.ndarray:
    """Group chains into modes by their label-invariant quantities.

    Chains ``i`` and ``j`` are linked when every quantity has chain means within
    ``separation`` pooled within-chain standard deviations; a mode is a connected set of
    linked chains (single linkage). A chain that moves between two modes has a wide spread and
    links to both: they are then one mode, and R-hat judges the mixing.

    Parameters
    ----------
    features : ndarray of shape (chain, draw, F)
        From :func:`invariant_draws`.
    separation : float, default=MODE_SEPARATION

    Returns
    -------
    ndarray of int, shape (chain,)
        The mode of each chain, numbered from 0 in order of first appearance.
    """
    features = np.asarray(features, dtype=float)
    if features.ndim != 3:
        raise ValueError(f"features must have shape (chain, draw, F); got {features.shape}")
    linked = _separation(features) <= separation
    n = linked.shape[0]
    mode = np.full(n, -1)
    current = 0
    for start in range(n):
        if mode[start] >= 0:
            continue
        stack = [start]
        mode[start] = current
        while stack:
            i = stack.pop()
            for j in np.flatnonzero(linked[i] & (mode < 0)):
                mode[j] = current
                stack.append(j)
        current += 1
    return mode


def log_mass(phi: np.ndarray, lp: np.ndarray) -> float:
    """Log posterior mass of a mode from its draws, by a Gaussian approximation.

    If the unnormalised density is ``Z * Normal(mu, Sigma)`` on the mode, then
    ``E[lp] = log Z - d/2 - (d/2) log(2 pi) - (1/2) log|Sigma|``, so

    ``log Z = mean(lp) + (d/2) (1 + log 2 pi) + (1/2) log|Sigma|``

    with ``Sigma`` the sample covariance of the draws. The mean of ``lp`` is far steadier than
    its maximum (a Laplace estimate at the best draw). It is exact for a Gaussian mode and
    rough for a skewed one: a share estimate to tell a 20% mode from a 0.1% one, not a
    marginal likelihood.

    Parameters
    ----------
    phi : ndarray of shape (S, d)
        Draws on the unconstrained scale of the sampler (``lp`` is their log density there,
        with the Jacobian of the transform).
    lp : ndarray of shape (S,)

    Returns
    -------
    float
        ``-inf`` when the covariance is singular (fewer draws than dimensions).
    """
    phi = np.asarray(phi, dtype=float)
    lp = np.asarray(lp, dtype=float)
    if phi.ndim != 2 or lp.shape != (phi.shape[0],):
        raise ValueError(f"phi must be (S, d) and lp (S,); got {phi.shape} and {lp.shape}")
    S, d = phi.shape
    if S <= d:
        return -np.inf
    sign, logdet = np.linalg.slogdet(np.atleast_2d(np.cov(phi, rowvar=False)))
    if sign <= 0:
        return -np.inf
    return float(lp.mean() + 0.5 * d * (1.0 + np.log(2.0 * np.pi)) + 0.5 * logdet)


def mode_table(
    chain_mode: np.ndarray,
    features: np.ndarray,
    names: Sequence[str],
    *,
    log_masses: Sequence[float] | None = None,
    optima: Sequence[Mapping[str, Any]] = (),
) -> pd.DataFrame:
    """One row per mode: its chains, mean lp and log-likelihood, share, nearest EM optimum.

    Parameters
    ----------
    chain_mode : ndarray of int, shape (chain,)
        From :func:`group_chains`.
    features : ndarray of shape (chain, draw, F)
        From :func:`invariant_draws`, with ``lp`` (and ``log_likelihood``) first.
    names : sequence of str
        Their names.
    log_masses : sequence of float, optional
        Per mode, from :func:`log_mass`; the ``share`` column is their softmax.
    optima : sequence of mapping
        EM optima, each with ``weights``, ``intercept``, ``coef``, ``sigma`` and
        ``log_likelihood``; each mode is matched to the one nearest to its mean, in units of
        the mode's standard deviations of the sorted parameters.

    Returns
    -------
    pandas.DataFrame
        Index ``mode``; columns ``chains`` (tuple of int), ``n_chains``, ``mean_lp``,
        ``mean_log_likelihood``, ``log_mass``, ``share``, ``nearest_optimum``,
        ``optimum_log_likelihood``, ``optimum_distance``. Modes are numbered by decreasing
        share (by decreasing mean lp without shares).
    """
    names = list(names)
    chain_mode = np.asarray(chain_mode)
    n_modes = int(chain_mode.max()) + 1
    rows = []
    param_cols = [i for i, nm in enumerate(names) if nm not in ("lp", "log_likelihood")]
    optimum_vectors = [sorted_parameters(o)[1] for o in optima]
    for m in range(n_modes):
        chains = tuple(int(c) for c in np.flatnonzero(chain_mode == m))
        draws = features[list(chains)].reshape(-1, features.shape[-1])
        row: dict[str, Any] = {"chains": chains, "n_chains": len(chains)}
        for col in ("lp", "log_likelihood"):
            row[f"mean_{col}"] = (
                float(draws[:, names.index(col)].mean()) if col in names else np.nan
            )
        row["log_mass"] = float(log_masses[m]) if log_masses is not None else np.nan
        row["nearest_optimum"], row["optimum_log_likelihood"], row["optimum_distance"] = _nearest(
            draws[:, param_cols], optimum_vectors, optima
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    if log_masses is not None and np.isfinite(table["log_mass"]).any():
        table["share"] = np.exp(table["log_mass"] - logsumexp(table["log_mass"]))
        order = np.argsort(-table["share"].to_numpy(), kind="stable")
    else:
        table["share"] = np.nan
        order = np.argsort(-table["mean_lp"].fillna(-np.inf).to_numpy(), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    table.index.name = "mode"
    return table[["chains", *MODE_COLUMNS]]


def renumber(chain_mode: np.ndarray, table_order: Sequence[tuple[int, ...]]) -> np.ndarray:
    """``chain_mode`` renumbered so that chain tuples ``table_order[m]`` are mode ``m``."""
    out = np.empty_like(np.asarray(chain_mode))
    for m, chains in enumerate(table_order):
        out[list(chains)] = m
    return out


def _nearest(
    draws: np.ndarray, vectors: Sequence[np.ndarray], optima: Sequence[Mapping[str, Any]]
) -> tuple[Any, float, float]:
    if not vectors or any(v.shape[-1] != draws.shape[-1] for v in vectors):
        return None, np.nan, np.nan
    mean, sd = draws.mean(axis=0), draws.std(axis=0)
    sd = np.where(sd > 0, sd, np.abs(mean) * 1e-3 + 1e-12)
    distance = [float(np.sqrt(np.mean(((v - mean) / sd) ** 2))) for v in vectors]
    best = int(np.argmin(distance))
    return best, float(optima[best]["log_likelihood"]), distance[best]
