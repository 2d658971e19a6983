"""EM over Dask arrays: the data source of :mod:`bayes_mlr.core.data`, chunk by chunk.

Each EM pass maps a small function over the row chunks of ``X`` and ``y``; each chunk returns
its :class:`~bayes_mlr.core.stats.SufficientStats` (a few hundred numbers), which are summed on the
client in chunk order. Chunks are standardised and processed in cache-sized sub-blocks inside
the task, so memory stays bounded by a few chunks at a time, whatever the number of rows. The
same code runs under Dask's threaded scheduler and a ``dask.distributed`` cluster (the current
client, if any, is used, as with any ``dask.compute``).

Only imported when ``fit_em`` receives a Dask collection, so ``import bayes_mlr`` never imports
Dask.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np

from bayes_mlr.core.data import Scaler
from bayes_mlr.core.stats import (
    SufficientStats,
    block_stats,
    iter_blocks,
    nearest_line_sq,
    random_resp,
    sum_stats,
)

__all__ = ["DaskData", "moments_and_checks", "prepare"]


# -- per-chunk functions (module level, so a distributed cluster can pickle them) ---------------


def _chunk_moments(X, y, w):
    """Weighted count, means, central second moments and non-finite counts of one chunk."""
    bad = (
        int(np.size(X) - np.count_nonzero(np.isfinite(X))),
        int(np.size(y) - np.count_nonzero(np.isfinite(y))),
        0 if w is None else int(np.size(w) - np.count_nonzero(np.isfinite(w))),
        0 if w is None else int(np.count_nonzero(w < 0)),
    )
    if any(bad):
        return bad, None
    wsum = float(w.sum()) if w is not None else float(X.shape[0])
    if wsum <= 0:
        return bad, (0.0, 0.0, 0.0, 0.0, 0.0)
    xm = np.average(X, axis=0, weights=w)
    ym = float(np.average(y, weights=w))
    xm2 = np.average((X - xm) ** 2, axis=0, weights=w) * wsum
    ym2 = float(np.average((y - ym) ** 2, weights=w)) * wsum
    return bad, (wsum, xm, xm2, ym, ym2)


def _combine_moments(parts):
    """Chan et al.'s pairwise update: exact central moments from per-chunk ones."""
    n = 0.0
    xm = xm2 = ym = ym2 = 0.0
    for wsum, bxm, bxm2, bym, bym2 in parts:
        if wsum <= 0:
            continue
        tot = n + wsum
        dx, dy = bxm - xm, bym - ym
        xm = xm + dx * wsum / tot
        ym = ym + dy * wsum / tot
        xm2 = xm2 + bxm2 + dx**2 * n * wsum / tot
        ym2 = ym2 + bym2 + dy**2 * n * wsum / tot
        n = tot
    return n, xm, xm2 / n, ym, ym2 / n


def _chunk_stats(X, y, w, scaler: Scaler, log_weights, beta, sigma, block_rows: int):
    Z = scaler.augmented(np.asarray(X, float), np.asarray(y, float))
    return sum_stats(
        block_stats(Z[sl], log_weights, beta, sigma, None if w is None else w[sl])
        for sl in iter_blocks(Z.shape[0], block_rows)
    )


def _chunk_random_stats(X, y, w, scaler: Scaler, offset, entropy, n_components, block_rows):
    Z = scaler.augmented(np.asarray(X, float), np.asarray(y, float))
    return sum_stats(
        block_stats(
            Z[sl],
            None,
            None,
            None,
            None if w is None else w[sl],
            resp=random_resp(entropy, n_components, offset + sl.start, offset + sl.stop),
        )
        for sl in iter_blocks(Z.shape[0], block_rows)
    )


def _chunk_spread(X, y, w, scaler: Scaler, beta):
    return nearest_line_sq(scaler.augmented(np.asarray(X, float), np.asarray(y, float)), beta, w)


# -- validation and preparation ------------------------------------------------------------------


def prepare(X: Any, y: Any, sample_weight: Any = None):
    """Check shapes and dtypes lazily and align the row chunks of X, y and sample_weight.

    Returns
    -------
    X : dask array of shape (n_samples, n_features), one chunk along the columns
    y : dask array of shape (n_samples,), chunked like X's rows
    sample_weight : dask array or None
    feature_names : ndarray of str or None
    """
    names = None
    if hasattr(X, "columns"):  # Dask DataFrame
        cols = list(X.columns)
        if cols and all(isinstance(c, str) for c in cols):
            names = np.asarray(cols, dtype=object)
        for col, dtype in zip(cols, X.dtypes, strict=True):
            if getattr(dtype, "kind", "O") not in "biuf":
                raise TypeError(f"X must be numeric; column {col!r} has dtype {dtype}.")
        X = X.to_dask_array(lengths=True)
    if hasattr(y, "to_dask_array"):
        y = y.to_dask_array(lengths=True)
    X = da.asarray(X)
    y = da.asarray(y)
    for arr, name in ((X, "X"), (y, "y")):
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{name} must be numeric; got a Dask array of dtype {arr.dtype}.")
        if np.issubdtype(arr.dtype, np.complexfloating):
            raise TypeError(f"{name} must be real-valued; got complex dtype {arr.dtype}.")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D of shape (n_samples, n_features); got {X.ndim}-D input.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D of shape (n_samples,); got shape {y.shape}.")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if any(np.isnan(c) for c in y.chunks[0]):
        y = y.compute_chunk_sizes()
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y have different lengths: X has {X.shape[0]} rows, y has {y.shape[0]}."
        )
    if X.shape[0] == 0:
        raise ValueError("X is empty: it has 0 rows; at least one observation is needed.")
    if X.shape[1] == 0:
        raise ValueError("X has 0 columns; pass at least one feature.")
    X = X.rechunk({1: -1})
    y = y.rechunk((X.chunks[0],))
    if sample_weight is not None:
        if hasattr(sample_weight, "to_dask_array"):  # a Dask Series (e.g. a column)
            sample_weight = sample_weight.to_dask_array(lengths=True)
        sample_weight = da.asarray(sample_weight)
        if sample_weight.ndim != 1 or sample_weight.shape[0] != X.shape[0]:
            raise ValueError(
                f"sample_weight must have shape ({X.shape[0]},) to match X; "
                f"got shape {sample_weight.shape}."
            )
        sample_weight = sample_weight.rechunk((X.chunks[0],))
    return X, y, sample_weight, names


def _blocks(arr) -> list:
    return list(arr.to_delayed().ravel()) if arr is not None else None


def moments_and_checks(X, y, sample_weight):
    """One pass over the data: refuse NaN/inf/negative weights, return the scaler's moments."""
    xb, yb, wb = _blocks(X), _blocks(y), _blocks(sample_weight)
    tasks = [
        dask.delayed(_chunk_moments)(xb[i], yb[i], wb[i] if wb is not None else None)
        for i in range(len(xb))
    ]
    results = dask.compute(*tasks)
    bad = np.sum([r[0] for r in results], axis=0)
    for count, what in zip(
        bad,
        ("X contains", "y contains", "sample_weight contains", "sample_weight has negative"),
        strict=True,
    ):
        if count:
            kind = "negative entries" if "negative" in what else "NaN or infinite value(s)"
            raise ValueError(f"{what} {count} {kind}; clean the data before fitting.")
    return _combine_moments([r[1] for r in results])


class DaskData:
    """The data-source interface of :class:`bayes_mlr.core.data.InMemoryData`, over Dask arrays."""

    def __init__(
        self, X, y, sample_weight, scaler: Scaler, n_obs: float, block_rows: int = 8_192
    ) -> None:
        self.X, self.y, self.sw = X, y, sample_weight
        self.scaler = scaler
        self._xb, self._yb, self._wb = _blocks(X), _blocks(y), _blocks(sample_weight)
        self.offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(int)
        self.n_rows = int(X.shape[0])
        self.n_obs = float(n_obs)
        self.q = int(X.shape[1]) + int(scaler.fit_intercept)
        self.block_rows = block_rows

    def __enter__(self) -> DaskData:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def _map(self, fn, *args, with_offset: bool = False):
        """Run ``fn(X_chunk, y_chunk, w_chunk, scaler, [offset,] *args)`` on every chunk."""
        tasks = []
        for i, (xb, yb) in enumerate(zip(self._xb, self._yb, strict=True)):
            w = self._wb[i] if self._wb is not None else None
            head = (int(self.offsets[i]),) if with_offset else ()
            tasks.append(dask.delayed(fn)(xb, yb, w, self.scaler, *head, *args))
        return dask.compute(*tasks)

    def stats(self, log_weights, beta, sigma) -> SufficientStats:
        return sum_stats(self._map(_chunk_stats, log_weights, beta, sigma, self.block_rows))

    def random_resp_stats(self, entropy: int, n_components: int) -> SufficientStats:
        return sum_stats(
            self._map(_chunk_random_stats, entropy, n_components, self.block_rows, with_offset=True)
        )

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        rows = np.sort(rows)
        parts = [self.X[rows], self.y[rows]] + ([self.sw[rows]] if self.sw is not None else [])
        got = dask.compute(*parts)
        Z = self.scaler.augmented(np.asarray(got[0], float), np.asarray(got[1], float))
        return Z, np.asarray(got[2], float) if self.sw is not None else None

    def spread(self, beta: np.ndarray) -> float:
        total = sum(self._map(_chunk_spread, beta))
        return float(np.sqrt(total / self.n_obs))
