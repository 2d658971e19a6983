"""Small linear algebra shared by the M-steps: symmetric positive semi-definite solves."""

from __future__ import annotations

import numpy as np
from scipy import linalg

__all__ = ["solve_weighted_least_squares", "solve_weighted_least_squares_batch"]

# Pivots below this (on the unit-diagonal scaled Gram matrix) mean "rank deficient".
_RANK_TOL = 1e-10


def solve_weighted_least_squares(gram: np.ndarray, xty: np.ndarray) -> np.ndarray:
    """Solve ``gram @ beta = xty`` for a weighted Gram matrix, stably.

    The system is scaled to unit diagonal (Jacobi) and solved by Cholesky. When it is rank
    deficient (collinear columns, a component with too little weight) the least-squares
    solution of minimum norm in those unit-diagonal coordinates is returned instead
    (eigen-decomposition with a relative cutoff), so collinear designs still give finite
    coefficients.

    Parameters
    ----------
    gram : ndarray of shape (q, q)
        ``X1ᵀ Γ X1``, symmetric positive semi-definite.
    xty : ndarray of shape (q,)
        ``X1ᵀ Γ y``.

    Returns
    -------
    ndarray of shape (q,)
    """
    d = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    beta = np.zeros_like(xty)
    if d.max(initial=0.0) <= 0:
        return beta
    active = d > _RANK_TOL * d.max()
    da = d[active]
    g = gram[np.ix_(active, active)] / np.outer(da, da)
    b = xty[active] / da
    try:
        chol, lower = linalg.cho_factor(g, lower=True, check_finite=False)
        if np.min(np.diag(chol)) ** 2 < _RANK_TOL:
            raise linalg.LinAlgError("rank deficient")
        x = linalg.cho_solve((chol, lower), b, check_finite=False)
    except linalg.LinAlgError:
        evals, evecs = linalg.eigh(g, check_finite=False)
        keep = evals > _RANK_TOL * evals.max()
        x = evecs[:, keep] @ ((evecs[:, keep].T @ b) / evals[keep])
    beta[active] = x / da
    return beta


def solve_weighted_least_squares_batch(gram: np.ndarray, xty: np.ndarray) -> np.ndarray:
    """:func:`solve_weighted_least_squares` for K systems at once.

    When every system is of full rank as that function judges it (every diagonal entry above
    the rank tolerance, and every Cholesky pivot of the unit-diagonal matrices too), they are
    solved together in a few batched calls, which saves most of an M-step's time at small q;
    otherwise each goes through :func:`solve_weighted_least_squares` (its minimum-norm
    solution included).

    Parameters
    ----------
    gram : ndarray of shape (K, q, q)
    xty : ndarray of shape (K, q)

    Returns
    -------
    ndarray of shape (K, q)
    """
    d = np.sqrt(np.clip(np.diagonal(gram, axis1=1, axis2=2), 0.0, None))
    d_max = d.max(axis=1, keepdims=True)
    if np.all(d_max > 0) and np.all(d > _RANK_TOL * d_max):
        g = gram / (d[:, :, None] * d[:, None, :])
        try:
            chol = np.linalg.cholesky(g)
        except np.linalg.LinAlgError:
            chol = None
        if chol is not None and np.min(np.diagonal(chol, axis1=1, axis2=2)) ** 2 >= _RANK_TOL:
            return np.linalg.solve(g, (xty / d)[:, :, None])[:, :, 0] / d
    return np.array([solve_weighted_least_squares(G, b) for G, b in zip(gram, xty, strict=True)])
