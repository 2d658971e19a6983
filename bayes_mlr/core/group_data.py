"""Data for the structured EM (:mod:`bayes_mlr.core.structured`): rows in parts that each hold
whole groups.

In memory there is one part; with Dask input, one part per row chunk, so that a pass over the
data maps a small function over the chunks and sums what they return (as
:mod:`bayes_mlr.core.dask_data` does for the plain model). A part's function needs all rows of
its groups, so **every group must lie inside one chunk**: :meth:`GroupedData.from_dask` checks
it in its first pass and names a group that spans chunks.

What a pass returns per part is small: the components' block statistics (``K (q+1)²``
numbers), the log-likelihood, and what the mixing model needs (``Σ c_g γ_g`` for constant
weights; the group responsibilities ``γ`` (G_part, K) for a concomitant model, whose Newton
M-step runs on the client over all groups). Memory on the client is therefore bounded by the
number of groups times ``K + r`` for a concomitant model (one "group" per row without
``groups``) and by a constant otherwise, besides the chunks being processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_mlr._validation import is_dask_collection
from bayes_mlr.core.grouping import Grouping, group_constant

__all__ = [
    "GroupedData",
    "Part",
    "bayes_rule",
    "dask_concomitant",
    "dask_group_codes",
    "load_part",
    "part_null_sums",
    "part_pass",
]


@dataclass
class Part:
    """One part of the data, standardised.

    Attributes
    ----------
    Z : ndarray of shape (n_part, q + 1 + m)
        Standardised ``[X1, y]``, then the family's ``m`` row columns (offset, trials, ...:
        :meth:`~bayes_mlr.core.components.family.Family.row_columns`).
    row_weight : ndarray of shape (n_part,)
    grouping : Grouping
    group_weight : ndarray of shape (G_part,)
        The (constant) sample weight of each group.
    concomitant : ndarray of shape (G_part, r) or None
        The concomitant variables of each group, in the data's units.
    """

    Z: np.ndarray
    row_weight: np.ndarray
    grouping: Grouping
    group_weight: np.ndarray
    concomitant: np.ndarray | None


def load_part(X, y, w, g, W, scaler, family=None, offset=None, trials=None) -> Part:
    """A :class:`Part` from raw rows (module level: a distributed cluster can pickle it).

    Raises ``ValueError`` when the sample weights or concomitant variables vary within a group,
    or ``y``, ``offset``, ``trials`` are not valid for the ``family`` (default Gaussian).
    """
    y = np.asarray(y, dtype=float)
    Z = scaler.augmented(np.asarray(X, dtype=float), y)
    if family is not None:
        offset = None if offset is None else np.asarray(offset, dtype=float).reshape(-1)
        trials = None if trials is None else np.asarray(trials, dtype=float).reshape(-1)
        family.check_response(y, offset, trials)
        extra = family.row_columns(y, offset, trials)
        if extra.shape[1]:
            Z = np.column_stack([Z, extra])
    n = Z.shape[0]
    row_weight = np.ones(n) if w is None else np.asarray(w, dtype=float)
    grouping = Grouping(None if g is None else np.asarray(g), n)
    group_weight = group_constant(grouping, row_weight, "sample_weight")
    groups_w = None
    if W is not None:
        W = np.asarray(W, dtype=float).reshape(n, -1)
        groups_w = group_constant(grouping, W, "concomitant")
    return Part(Z, row_weight, grouping, group_weight, groups_w)


def bayes_rule(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities ``γ_gj = exp(a_gj − ℓ_g)`` and ``ℓ_g = logsumexp_j a_gj`` from the
    joint log densities ``a`` (G, K)."""
    top = a.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    ell = top[:, 0] + np.log(np.exp(a - top).sum(axis=1))
    return np.exp(a - ell[:, None]), ell


def standardised_design(W: np.ndarray | None, shift, scale) -> np.ndarray | None:
    """The mixing design ``[1, (W − shift) / scale]`` of groups (None without concomitant)."""
    if W is None:
        return None
    return np.column_stack([np.ones(W.shape[0]), (W - shift) / scale])


def part_pass(part: Part, start, components, mixing, beta, sigma, df, gate, w_shift, w_scale):
    """One part's share of an EM pass: the E-step, then the M-step statistics.

    ``start`` is None for an E-step at ``(beta, sigma, df, gate)``, or ``(entropy, index, hard)``
    for a random start drawn from that seed: Dirichlet(1) responsibilities per group, or with
    ``hard`` a random partition of the groups (the log-likelihood is then NaN).

    Returns
    -------
    mixing_stats : object
        ``mixing.reduce(γ, c)``.
    log_likelihood : float
        ``Σ_g c_g ℓ_g`` over the part's groups.
    component_stats : object
        ``components.stats(Z, R, beta, sigma)`` with row weights ``R = c γ`` (summable, with
        ``nk``).
    """
    grouping = part.grouping
    if start is None:
        Wd = standardised_design(part.concomitant, w_shift, w_scale)
        a = grouping.sum(components.log_density(part.Z, beta, sigma, df))
        gamma, ell = bayes_rule(a + mixing.log_prior_of(Wd, gate))
        ll = float(part.group_weight @ ell)
    else:
        K = gate.shape[0]
        entropy, index, hard = start
        rng = np.random.default_rng([entropy, index])
        if hard:  # a random partition of the groups
            gamma = np.eye(K)[rng.integers(K, size=grouping.n_groups)]
        else:
            gamma = rng.dirichlet(np.ones(K), size=grouping.n_groups)
        ll = float("nan")
    R = grouping.expand(gamma) * part.row_weight[:, None]
    stats = components.stats(part.Z, R, beta, sigma, df)
    return mixing.reduce(gamma, part.group_weight), ll, stats


def part_null_sums(part: Part, _, family, q: int) -> np.ndarray:
    """A part's sums for the family's intercept-only fit (:meth:`Family.null_sums`)."""
    return family.null_sums(part.Z[:, q], part.Z[:, q + 1 :], part.row_weight)


def _part_groups(part: Part):
    """What the client keeps of a part's groups: labels, weights, sizes, concomitant rows."""
    labels = part.grouping.labels
    return labels, part.group_weight, part.grouping.sizes(), part.concomitant


class GroupedData:
    """The rows of a structured fit, in parts that each hold whole groups.

    Use :meth:`in_memory` or :meth:`from_dask`. Attributes are the client's view of the groups,
    in part order (and, within a part, sorted by label):

    Attributes
    ----------
    n_groups : int
    group_weight : ndarray of shape (n_groups,)
    sizes : ndarray of int, shape (n_groups,)
        Rows per group.
    concomitant : ndarray of shape (n_groups, r) or None
    grouped : bool
        Whether ``groups`` were given (else every row is its own group).
    """

    def __init__(self, parts: list, lazy: bool, summaries: list, grouped: bool) -> None:
        self.parts, self.lazy, self.grouped = parts, lazy, grouped
        labels, weights, sizes, conc = zip(*summaries, strict=True)
        self.group_weight = np.concatenate(weights)
        self.sizes = np.concatenate(sizes)
        self.concomitant = None if conc[0] is None else np.concatenate(conc)
        self.n_groups = int(self.group_weight.shape[0])
        if grouped and lazy:
            _check_groups_in_one_part(labels)

    @classmethod
    def in_memory(
        cls, X, y, w, groups, W, scaler, family=None, offset=None, trials=None
    ) -> GroupedData:
        part = load_part(X, y, w, groups, W, scaler, family, offset, trials)
        return cls([part], False, [_part_groups(part)], groups is not None)

    @classmethod
    def from_dask(
        cls, X, y, w, groups, W, scaler, family=None, offset=None, trials=None
    ) -> GroupedData:
        """Parts from Dask arrays with aligned row chunks (``groups``, ``W``, ``offset``,
        ``trials`` may be None)."""
        import dask

        def blocks(arr):
            return None if arr is None else list(arr.to_delayed().ravel())

        xb, yb, wb, gb, Wb, ob, tb = map(blocks, (X, y, w, groups, W, offset, trials))

        def block(b, i):
            return None if b is None else b[i]

        parts = [
            dask.delayed(load_part)(
                xb[i],
                yb[i],
                block(wb, i),
                block(gb, i),
                block(Wb, i),
                scaler,
                family,
                block(ob, i),
                block(tb, i),
            )
            for i in range(len(xb))
        ]
        summaries = dask.compute(*[dask.delayed(_part_groups)(p) for p in parts])
        return cls(parts, True, list(summaries), groups is not None)

    def map(self, fn, per_part: list, *args) -> list:
        """``fn(part, per_part[i], *args)`` for every part ``i``, in part order (computed by
        Dask when lazy)."""
        items = zip(self.parts, per_part, strict=True)
        if not self.lazy:
            return [fn(part, own, *args) for part, own in items]
        import dask

        return list(dask.compute(*[dask.delayed(fn)(part, own, *args) for part, own in items]))


def _check_groups_in_one_part(labels: tuple) -> None:
    """Refuse a group whose rows lie in more than one Dask chunk."""
    every = np.concatenate(labels)
    part = np.repeat(np.arange(len(labels)), [len(lab) for lab in labels])
    order = np.argsort(every, kind="stable")
    repeated = np.flatnonzero(every[order][1:] == every[order][:-1])
    if repeated.size:
        first, second = order[repeated[0]], order[repeated[0] + 1]
        key = every[first].item() if hasattr(every[first], "item") else every[first]
        raise ValueError(
            f"group {key!r} has rows in Dask chunks {part[first]} and {part[second]}: with Dask "
            "input every group must lie inside one chunk (all rows of a group share one "
            "component, and a chunk is processed on its own). Sort the rows by group and "
            "rechunk at group boundaries, e.g. ddf.set_index(group_column) or "
            "X.rechunk({0: sizes}) with sizes that end where groups end."
        )


def dask_concomitant(concomitant: Any) -> tuple[Any, Any]:
    """A Dask concomitant (array or DataFrame) as a 2-D Dask array, with its column names."""
    names = None
    if hasattr(concomitant, "columns"):
        names = np.asarray([str(c) for c in concomitant.columns], dtype=object)
        concomitant = concomitant.to_dask_array(lengths=True)
    elif hasattr(concomitant, "to_dask_array"):  # a Series
        concomitant = concomitant.to_dask_array(lengths=True)
    return (concomitant[:, None] if concomitant.ndim == 1 else concomitant), names


def dask_group_codes(groups: Any, chunks: tuple) -> Any:
    """Group codes ``0 .. G-1`` of Dask data, lazily: within a chunk its groups in sorted
    order, after the groups of the chunks before (every group lies in one chunk, as the fit
    checks). One pass over the group column counts each chunk's groups."""
    import dask
    import dask.array as da

    if hasattr(groups, "to_dask_array"):
        groups = groups.to_dask_array(lengths=True)
    groups = (groups if is_dask_collection(groups) else da.from_array(np.asarray(groups))).rechunk(
        (chunks,)
    )
    counts = dask.compute(*[dask.delayed(_n_distinct)(b) for b in groups.to_delayed().ravel()])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(float)

    def codes(block, block_info=None):
        offset = offsets[block_info[0]["chunk-location"][0]]
        return np.unique(block, return_inverse=True)[1].reshape(-1).astype(float) + offset

    return groups.map_blocks(codes, dtype=float)


def _n_distinct(block: np.ndarray) -> int:
    return int(np.unique(block).size)
