"""Aligning posterior draws to the EM labelling (label switching).

A mixture's likelihood is invariant under permutations of the component labels, so MCMC chains
may visit any of the ``K!`` labellings. The functions here choose, for every draw, the
permutation of its components that brings it closest to the EM estimate, measured on a
standardised parameter distance, and solve the assignment with the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`).

This module is numpy/scipy only; :mod:`bayes_mlr.bayes.model` applies it to a sampled ``DataTree``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "MAX_ENUMERATED_COMPONENTS",
    "RELABEL_METHODS",
    "LabelSwitchingWarning",
    "apply_permutations",
    "assign_from_cost",
    "assignment_cost",
    "component_features",
    "cost_gap",
    "match_components",
]

#: The relabelling methods: matching to the EM estimate, or Stephens' KL method
#: (:mod:`bayes_mlr.bayes.stephens`).
RELABEL_METHODS = ("em", "stephens")
#: :func:`cost_gap` enumerates the K! assignments up to this K (720 at K = 6).
MAX_ENUMERATED_COMPONENTS = 6


class LabelSwitchingWarning(UserWarning):
    """Many draws had to be relabelled: the chains visited other labellings of the mixture."""


class AlignmentScaleWarning(UserWarning):
    """Some EM standard errors were unavailable, so the label alignment standardised those
    parameters by a stand-in scale (recorded in the posterior's ``alignment_scale_fallback``
    attribute)."""


# --------------------------------------------------------------------------------------------
# Per-component feature vectors
# --------------------------------------------------------------------------------------------


def component_features(
    params: Mapping[str, np.ndarray],
    n_components: int,
) -> np.ndarray:
    """Stack the component-indexed parameters into one feature vector per component.

    Parameters
    ----------
    params : mapping of str to ndarray
        Parameter arrays whose axis ``-1`` (for ``weights``, ``intercept``, ``sigma``) or
        axis ``-2`` (for ``coef``, shape ``(..., K, p)``) indexes the components. Arrays whose
        component axis does not have length ``n_components`` (e.g. a shared scalar ``sigma``) are
        skipped, because they do not distinguish the components.
    n_components : int
        Number of components ``K``.

    Returns
    -------
    ndarray of shape (..., K, m)
        ``m`` numbers per component, in the order of ``params``.
    """
    columns = []
    for name, value in params.items():
        value = np.asarray(value, dtype=float)
        if name == "coef":
            if value.ndim >= 2 and value.shape[-2] == n_components:
                columns.append(value)
        elif value.ndim >= 1 and value.shape[-1] == n_components:
            columns.append(value[..., None])
    if not columns:
        raise ValueError("no component-indexed parameters to align on")
    batch = np.broadcast_shapes(*(c.shape[:-2] for c in columns))
    columns = [np.broadcast_to(c, (*batch, *c.shape[-2:])) for c in columns]
    return np.concatenate(columns, axis=-1)


# --------------------------------------------------------------------------------------------
# Assignment
# --------------------------------------------------------------------------------------------


def match_components(
    draws: np.ndarray,
    reference: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    """Find, for every draw, the relabelling that best matches the reference labelling.

    The cost of giving the draw's component ``j`` the reference label ``k`` is the squared
    standardised distance ``sum_m ((draws[j, m] - reference[k, m]) / scale[k, m]) ** 2``; the
    assignment with the smallest total cost is found by the Hungarian algorithm.

    Parameters
    ----------
    draws : ndarray of shape (..., K, m)
        Per-component feature vectors of each draw (see :func:`component_features`).
    reference : ndarray of shape (K, m)
        The same features at the reference (EM) estimate.
    scale : ndarray of shape (K, m) or (m,)
        Positive scale of each feature, e.g. the EM standard errors.

    Returns
    -------
    ndarray of int, shape (..., K)
        ``perm`` such that ``draws[..., perm, :]`` is in the reference labelling: the reference
        label ``k`` takes the draw's component ``perm[..., k]``. The identity where no
        relabelling is needed.
    """
    return assign_from_cost(assignment_cost(draws, reference, scale))


def assign_from_cost(cost: np.ndarray) -> np.ndarray:
    """The optimal assignment of every draw from its cost matrix (:func:`assignment_cost`).

    Returns
    -------
    ndarray of int, shape (..., K)
        As :func:`match_components`.
    """
    n_components = cost.shape[-1]
    batch = cost.shape[:-2]
    cost = cost.reshape(-1, n_components, n_components)
    perms = np.empty((cost.shape[0], n_components), dtype=np.intp)
    identity = np.arange(n_components)
    # Fast path: a draw whose every component is nearest to its own reference label keeps its
    # labels, since then the identity is the optimal assignment.
    own = cost[:, identity, identity]
    nearest = np.all(own <= cost.min(axis=1), axis=1)
    perms[nearest] = identity
    for d in np.flatnonzero(~nearest):
        rows, cols = linear_sum_assignment(cost[d])
        perms[d, cols] = rows
    return perms.reshape(*batch, n_components)


def assignment_cost(draws: np.ndarray, reference: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``cost[..., j, k]``: squared standardised distance of a draw's component ``j`` to the
    reference component ``k`` (see :func:`match_components` for the arguments).

    Returns
    -------
    ndarray of shape (..., K, K)
    """
    draws = np.asarray(draws, dtype=float)
    reference = np.asarray(reference, dtype=float)
    scale = np.broadcast_to(np.asarray(scale, dtype=float), reference.shape)
    if draws.shape[-2:] != reference.shape:
        raise ValueError(
            f"draws have components x features {draws.shape[-2:]}, reference has {reference.shape}"
        )
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError("scale must be finite and positive")
    batch = draws.shape[:-2]
    flat = draws.reshape(-1, *reference.shape)
    cost = (((flat[:, :, None, :] - reference[None, None]) / scale[None, None]) ** 2).sum(-1)
    return cost.reshape(*batch, *cost.shape[1:])


def cost_gap(cost: np.ndarray) -> np.ndarray:
    """How much worse the second-best assignment of each draw is than the best.

    A small gap means the draw sits about as close to another labelling of the reference as
    to its own: its assignment is ambiguous (overlapping components).

    Parameters
    ----------
    cost : ndarray of shape (..., K, K)
        From :func:`assignment_cost`.

    Returns
    -------
    ndarray of shape (...)
        Total cost of the second-best minus the best of the ``K!`` assignments (in the units
        of the cost: squared standardised distances); ``inf`` for K = 1, NaN for K above
        :data:`MAX_ENUMERATED_COMPONENTS`.
    """
    cost = np.asarray(cost, dtype=float)
    K = cost.shape[-1]
    batch = cost.shape[:-2]
    if K == 1:
        return np.full(batch, np.inf)
    if K > MAX_ENUMERATED_COMPONENTS:
        return np.full(batch, np.nan)
    perms = np.array(list(itertools.permutations(range(K))))  # (P, K): perm[k] -> label k
    flat = cost.reshape(-1, K, K)
    totals = flat[:, perms, np.arange(K)].sum(axis=-1)  # (S, P)
    two = np.partition(totals, 1, axis=1)[:, :2]
    return (two[:, 1] - two[:, 0]).reshape(batch)


def apply_permutations(values: np.ndarray, perms: np.ndarray, axis: int) -> np.ndarray:
    """Reorder the component axis of ``values`` draw by draw.

    Parameters
    ----------
    values : ndarray of shape (*batch, ..., K, ...)
        Array whose leading dimensions match ``perms.shape[:-1]`` (e.g. ``(chain, draw)``) and
        whose axis ``axis`` indexes the components.
    perms : ndarray of int, shape (*batch, K)
        Permutations from :func:`match_components`.
    axis : int
        The component axis of ``values`` (counted from the start, ``>= perms.ndim - 1``).

    Returns
    -------
    ndarray
        ``values`` with ``out[b, ..., k, ...] = values[b, ..., perms[b, k], ...]``.
    """
    values = np.asarray(values)
    nbatch = perms.ndim - 1
    if axis < nbatch or values.shape[:nbatch] != perms.shape[:-1]:
        raise ValueError("the leading dimensions of values must match those of perms")
    index_shape = [1] * values.ndim
    index_shape[:nbatch] = perms.shape[:-1]
    index_shape[axis] = perms.shape[-1]
    index = perms.reshape(index_shape)
    target = list(values.shape)
    target[axis] = perms.shape[-1]
    return np.take_along_axis(values, np.broadcast_to(index, target), axis=axis)
