"""Small linear algebra shared by the M-steps: symmetric positive semi-definite solves."""

from __future__ import annotations

import numpy as np
from scipy import linalg

__all__ = ["solve_weighted_least_squares"]

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
