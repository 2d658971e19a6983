"""Data sources for EM: everything an EM run needs from the data, behind one small interface.

An EM run only touches the data through :class:`InMemoryData`'s methods: block sufficient
statistics at given parameters, statistics from random responsibilities, a few rows by index, and
the spread around a set of lines. :mod:`bayes_mlr.core.dask_data` implements the same methods
over Dask arrays, so that the EM loop in :mod:`bayes_mlr.core.em` is written once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from bayes_mlr.core.stats import (
    DEFAULT_BLOCK_ROWS,
    SufficientStats,
    augment,
    block_stats,
    iter_blocks,
    nearest_line_sq,
    random_resp,
    sum_stats,
)


class _SharedBlasLimit:
    """One BLAS thread while any threaded fit runs (the fit's own threads do the parallel
    work; BLAS threads on top would oversubscribe the cores).

    BLAS thread counts are process-wide, so concurrent fits share one limit, counted: the first
    to enter sets it and the last to leave restores the original, whatever order they finish
    in (a per-fit limit restored by an earlier-started fit would otherwise stay set forever).
    The limit changes speed, not results beyond rounding.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._limiter = None

    def acquire(self) -> None:
        from threadpoolctl import threadpool_limits

        with self._lock:
            if self._count == 0:
                self._limiter = threadpool_limits(limits=1, user_api="blas")
            self._count += 1

    def release(self) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0 and self._limiter is not None:
                self._limiter.restore_original_limits()
                self._limiter = None


_BLAS_LIMIT = _SharedBlasLimit()


@contextmanager
def blas_single_thread() -> Iterator[None]:
    """One BLAS thread inside the block (shared and counted with the threaded fits: see
    :class:`_SharedBlasLimit`)."""
    _BLAS_LIMIT.acquire()
    try:
        yield
    finally:
        _BLAS_LIMIT.release()


def moments(X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None):
    """Weighted means and central variances ``(x_mean, x_var, y_mean, y_var)`` of in-memory
    data, as :meth:`Scaler.from_moments` takes them."""
    w = sample_weight
    x_mean = np.average(X, axis=0, weights=w)
    y_mean = float(np.average(y, weights=w))
    x_var = np.average((X - x_mean) ** 2, axis=0, weights=w)
    y_var = float(np.average((y - y_mean) ** 2, weights=w))
    return x_mean, x_var, y_mean, y_var


@dataclass
class Scaler:
    """Affine change of units: x_s = (x - x_shift) / x_scale, y_s = (y - y_shift) / y_scale.

    Standardising leaves the model unchanged (coefficients, intercepts and sigmas map back
    exactly) and keeps the normal equations well conditioned for data around 1e8 or 1e-8.
    """

    x_shift: np.ndarray
    x_scale: np.ndarray
    y_shift: float
    y_scale: float
    fit_intercept: bool
    x_mean: np.ndarray

    @classmethod
    def from_moments(cls, x_mean, x_var, y_mean, y_var, fit_intercept: bool) -> Scaler:
        """From weighted means and (central) variances of x and y, so that any data source
        (in memory, Dask) can supply them."""
        x_mean, x_var = np.asarray(x_mean, float), np.clip(np.asarray(x_var, float), 0.0, None)
        y_mean, y_var = float(y_mean), max(float(y_var), 0.0)
        if fit_intercept:
            x_shift, y_shift = x_mean, y_mean
            x_scale, y_scale = np.sqrt(x_var), float(np.sqrt(y_var))
        else:  # without an intercept, shifting would change the model: scale by the RMS
            x_shift, y_shift = np.zeros_like(x_mean), 0.0
            x_scale, y_scale = np.sqrt(x_var + x_mean**2), float(np.sqrt(y_var + y_mean**2))
        # Constant columns (spread at rounding level) keep unit scale.
        x_scale = np.where(x_scale > 1e-12 * np.abs(x_shift), x_scale, 1.0)
        x_scale = np.where(x_scale > 0, x_scale, 1.0)
        if not (y_scale > 0 and y_scale > 1e-12 * abs(y_shift)):
            y_scale = max(abs(y_shift), 1.0)
        return cls(x_shift, x_scale, y_shift, y_scale, fit_intercept, x_mean)

    @classmethod
    def from_arrays(cls, X, y, sample_weight, fit_intercept: bool) -> Scaler:
        return cls.from_moments(*moments(X, y, sample_weight), fit_intercept)

    def design(self, X: np.ndarray) -> np.ndarray:
        """Standardised design matrix (n, q), intercept column first when fitted."""
        Xs = (X - self.x_shift) / self.x_scale
        if self.fit_intercept:
            return np.hstack([np.ones((X.shape[0], 1)), Xs])
        return np.ascontiguousarray(Xs)

    def augmented(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Standardised augmented data Z = [X1, y] of shape (n, q + 1)."""
        return augment(self.design(X), (y - self.y_shift) / self.y_scale)


# Data sets with fewer rows are processed on one thread (measured: at 100,000 rows the pool's
# dispatch made an iteration 2x slower; at 2,000,000 rows two threads were 1.1-1.3x faster).
PARALLEL_MIN_ROWS = 500_000


def default_n_threads() -> int:
    """Worker threads for block statistics: the CPUs this process may run on (at most 8)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


class InMemoryData:
    """Standardised in-memory (or memory-mapped) data, processed in row blocks by a thread pool.

    numpy's ufuncs and BLAS release the GIL, so blocks run in parallel; BLAS itself is limited to
    one thread meanwhile so that the workers do not oversubscribe the cores. Block results are
    summed in a fixed order, so results do not depend on the number of threads.
    """

    def __init__(
        self,
        Z: np.ndarray,
        sample_weight: np.ndarray | None,
        *,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        n_threads: int | None = None,
    ) -> None:
        self.Z = Z  # standardised [X1, y], see Scaler.augmented
        self.sw = sample_weight
        self.n_rows = self.Z.shape[0]
        self.n_obs = float(sample_weight.sum()) if sample_weight is not None else float(self.n_rows)
        self.q = self.Z.shape[1] - 1
        self.blocks = list(iter_blocks(self.n_rows, block_rows))
        if n_threads is None:  # below this size, dispatch costs more than a core gains
            n_threads = default_n_threads() if self.n_rows >= PARALLEL_MIN_ROWS else 1
        self._pool = (
            ThreadPoolExecutor(n_threads) if n_threads > 1 and len(self.blocks) > 1 else None
        )
        self._limiter = None

    # Context management: the pool and the BLAS thread limit live as long as the fit.
    def __enter__(self) -> InMemoryData:
        if self._pool is not None:
            _BLAS_LIMIT.acquire()
            self._limiter = True
        return self

    def __exit__(self, *exc) -> None:
        if self._limiter is not None:
            _BLAS_LIMIT.release()
            self._limiter = None
        if self._pool is not None:
            self._pool.shutdown()

    def _sum(self, fn) -> SufficientStats:
        return sum_stats(
            self._pool.map(fn, self.blocks) if self._pool is not None else map(fn, self.blocks)
        )

    def _w(self, sl: slice):
        return self.sw[sl] if self.sw is not None else None

    def stats(self, log_weights, beta, sigma) -> SufficientStats:
        """E-step statistics at the given (standardised) parameters."""
        return self._sum(lambda sl: block_stats(self.Z[sl], log_weights, beta, sigma, self._w(sl)))

    def random_resp_stats(self, entropy: int, n_components: int) -> SufficientStats:
        """Statistics of random Dirichlet(1) responsibilities (the "random" start)."""
        return self._sum(
            lambda sl: block_stats(
                self.Z[sl],
                None,
                None,
                None,
                self._w(sl),
                resp=random_resp(entropy, n_components, sl.start, sl.stop),
            )
        )

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Standardised rows [X1, y] (len(rows), q + 1) and their sample weights."""
        rows = np.sort(rows)
        return self.Z[rows], self.sw[rows] if self.sw is not None else None

    def spread(self, beta: np.ndarray) -> float:
        """sqrt of the weighted mean squared distance to the nearest component line."""
        total = sum(nearest_line_sq(self.Z[sl], beta, self._w(sl)) for sl in self.blocks)
        return float(np.sqrt(total / self.n_obs))
