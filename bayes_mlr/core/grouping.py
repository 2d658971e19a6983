"""Grouped observations: rows that share one hidden label (flexmix's ``y ~ x | id``).

With groups, the E-step works on groups, not rows: the log density of group ``g`` under
component ``j`` is the sum of its rows' log densities, Bayes' rule gives one responsibility
``γ_gj`` per group, and every row of ``g`` takes ``γ_gj`` as its weight in the M-step. A
:class:`Grouping` sorts the rows by group once and then sums row quantities per group
(:meth:`Grouping.sum`) and spreads group quantities back to rows (:meth:`Grouping.expand`).
Without groups every row is its own group and both are the identity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Grouping", "group_constant"]


class Grouping:
    """Which rows form which group.

    Parameters
    ----------
    labels : array-like of shape (n,), optional
        Group label of each row (any hashable values numpy can sort: ints, strings). ``None``:
        every row is its own group.
    n_rows : int
        Number of rows (checked against ``labels``).

    Attributes
    ----------
    n_groups : int
    index : ndarray of int, shape (n,)
        Group of each row, ``0 .. n_groups - 1`` in the sorted order of the labels.
    labels : ndarray of shape (n_groups,) or None
        The distinct labels, in group order (``None`` without groups).
    """

    def __init__(self, labels: Any, n_rows: int) -> None:
        self.n_rows = int(n_rows)
        if labels is None:
            self.labels = None
            self.index = np.arange(self.n_rows)
            self.n_groups = self.n_rows
            self._order = self._starts = None
            return
        arr = np.asarray(labels)
        if arr.ndim != 1 or arr.shape[0] != self.n_rows:
            raise ValueError(
                f"groups must have shape ({self.n_rows},), one label per row; got shape "
                f"{arr.shape}."
            )
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            raise ValueError("groups contains NaN; every row needs a group label.")
        if arr.dtype.kind == "O" and any(v is None for v in arr):
            raise ValueError("groups contains None; every row needs a group label.")
        try:
            self.labels, self.index = np.unique(arr, return_inverse=True)
        except TypeError as exc:
            raise TypeError(f"groups labels must be sortable (ints or strings): {exc}") from None
        self.n_groups = int(self.labels.shape[0])
        self._order = np.argsort(self.index, kind="stable")
        self._starts = np.searchsorted(self.index[self._order], np.arange(self.n_groups))

    @property
    def trivial(self) -> bool:
        """True when every row is its own group (no ``groups`` given)."""
        return self._order is None

    def sum(self, rows: np.ndarray) -> np.ndarray:
        """Sum a row quantity of shape (n, ...) per group: shape (n_groups, ...)."""
        if self.trivial:
            return rows
        return np.add.reduceat(rows[self._order], self._starts, axis=0)

    def expand(self, groups: np.ndarray) -> np.ndarray:
        """A group quantity of shape (n_groups, ...) at every row: shape (n, ...)."""
        return groups if self.trivial else groups[self.index]

    def first(self, rows: np.ndarray) -> np.ndarray:
        """The value of a row quantity at the first row of each group: (n_groups, ...)."""
        return rows if self.trivial else rows[self._order[self._starts]]

    def sizes(self) -> np.ndarray:
        """Rows per group, shape (n_groups,)."""
        if self.trivial:
            return np.ones(self.n_rows, dtype=int)
        return np.bincount(self.index, minlength=self.n_groups)


def group_constant(grouping: Grouping, values: np.ndarray, name: str) -> np.ndarray:
    """The per-group value of a row quantity that must not vary within a group.

    Parameters
    ----------
    grouping : Grouping
    values : ndarray of shape (n,) or (n, r)
    name : str
        What the values are, for the error message (``"concomitant"``, ``"sample_weight"``).

    Returns
    -------
    ndarray of shape (n_groups,) or (n_groups, r)

    Raises
    ------
    ValueError
        If a group holds different values (as flexmix refuses them: "model variables have to
        be constant for grouping variable").
    """
    first = grouping.first(values)
    if grouping.trivial:
        return first
    spread = np.abs(values - grouping.expand(first))
    scale = 1e-12 * np.maximum(1.0, np.abs(values))
    bad = spread > scale
    if bad.ndim > 1:
        bad = bad.any(axis=tuple(range(1, bad.ndim)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        label = grouping.labels[grouping.index[row]]
        label = label.item() if hasattr(label, "item") else label
        raise ValueError(
            f"{name} varies within group {label!r} (row {row}); with groups, {name} must be "
            "constant within each group, since all rows of a group share one component."
        )
    return first
