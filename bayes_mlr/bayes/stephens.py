"""Stephens' relabelling: permutations that make the draws' classification probabilities agree.

Stephens (2000, "Dealing with label switching in mixture models", JRSS B 62, 795-809),
algorithm 2 with the Kullback-Leibler loss: for every draw ``s`` the classification
probabilities ``P_s[i, l] = P(z_i = l | y_i, theta_s)`` (computed from the marginalised model,
no sampled allocations needed). Starting from given permutations (the EM alignment), repeat

1. ``Q = mean_s P_s[:, nu_s]``, the average classification matrix in the current labelling;
2. for each draw choose ``nu_s`` minimising ``sum_i sum_j P_s[i, nu_s(j)] log(P_s[i, nu_s(j)]
   / Q[i, j])``, an assignment problem (Hungarian algorithm),

until no permutation changes. Each step lowers the total loss, so it stops after finitely
many steps. Unlike the EM alignment, which compares parameters, this compares what the draws
say about the observations, so the two are an independent check of each other
(Papastamoulis 2016, R package ``label.switching``).

numpy/scipy only. For large data the probabilities are computed on a random subset of at most
``MAX_ROWS`` rows (the labelling of a draw is decided by any few hundred informative rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp

__all__ = [
    "MAX_ROWS",
    "classification_probabilities",
    "group_classification_probabilities",
    "stephens_permutations",
]

#: Rows on which the classification probabilities are computed (a random subset beyond).
MAX_ROWS = 500
_EPS = 1e-300


def classification_probabilities(
    X: np.ndarray, y: np.ndarray, values: Mapping[str, np.ndarray]
) -> np.ndarray:
    """``P(z_i = l | y_i, theta_s)`` for every draw ``s``.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    y : ndarray of shape (n,)
    values : mapping
        ``weights`` (S, K), ``intercept`` (S, K), ``coef`` (S, K, p), ``sigma`` (S, K).

    Returns
    -------
    ndarray of shape (S, n, K)
        Rows sum to one.
    """
    weights = np.asarray(values["weights"], dtype=float)
    intercept = np.asarray(values["intercept"], dtype=float)
    coef = np.asarray(values["coef"], dtype=float)
    sigma = np.asarray(values["sigma"], dtype=float)
    # component-major (S, K, n), in place: one batched product, then K-wide reductions
    # (0.07 s against 0.78 s with einsum and scipy's logsumexp at S = 4000, n = 500, K = 3,
    # p = 3; measured once by hand)
    log_p = coef @ np.asarray(X, dtype=float).T
    log_p += intercept[:, :, None]
    np.subtract(y, log_p, out=log_p)
    log_p /= sigma[:, :, None]
    np.square(log_p, out=log_p)
    log_p *= -0.5
    log_p += (np.log(np.maximum(weights, _EPS)) - np.log(sigma))[:, :, None]
    log_p -= log_p.max(axis=1, keepdims=True)
    np.exp(log_p, out=log_p)
    log_p /= log_p.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(log_p.transpose(0, 2, 1))


def group_classification_probabilities(
    X: np.ndarray,
    y: np.ndarray,
    values: Mapping[str, np.ndarray],
    *,
    groups: np.ndarray | None = None,
    concomitant: np.ndarray | None = None,
    family: Any = None,
    extra: np.ndarray | None = None,
) -> np.ndarray:
    """``P(z_g = l | y_g, theta_s)`` for every draw ``s`` and group ``g`` of a structured model.

    A group's rows share one label: its log density under component ``l`` is the sum of its
    rows', and its prior weights come from the concomitant model
    ``softmax_l(concomitant_intercept_l + w_g . concomitant_coef_l)`` when there is one (else
    ``weights``). Without ``groups`` every row is its own group.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    y : ndarray of shape (n,)
    values : mapping
        ``weights`` (S, K), ``intercept`` (S, K), ``coef`` (S, K, p), ``sigma`` (S, K) and, with
        ``concomitant``, ``concomitant_intercept`` (S, K) and ``concomitant_coef`` (S, K, r).
    groups : ndarray of int, shape (n,), optional
        Group index ``0 .. G-1`` of each row.
    concomitant : ndarray of shape (G, r), optional
        The concomitant variables of each group.
    family : Family, optional
        The component family (:mod:`bayes_mlr.core.components`), whose ``log_density`` gives
        the rows' log densities; Gaussian by default. Student-t components need ``df`` (S, K)
        in ``values``; Poisson and binomial ones ignore ``sigma``.
    extra : ndarray of shape (n, m), optional
        The family's row columns (offset, trials, ...); required for Poisson and binomial.

    Returns
    -------
    ndarray of shape (S, G, K)
        Rows sum to one.
    """
    from bayes_mlr.core.grouping import Grouping

    intercept = np.asarray(values["intercept"], dtype=float)
    coef = np.asarray(values["coef"], dtype=float)
    sigma = np.asarray(values["sigma"], dtype=float)
    S, K = intercept.shape
    mean = intercept[:, None, :] + np.einsum("np,skp->snk", X, coef)  # (S, n, K)
    if family is None or family.name == "gaussian":
        log_f = (
            -np.log(sigma)[:, None, :] - 0.5 * ((y[None, :, None] - mean) / sigma[:, None, :]) ** 2
        )
    else:
        log_f = _family_log_density(family, X, y, mean, values, extra)
    if groups is not None:
        grouping = Grouping(np.asarray(groups), X.shape[0])
        rows = log_f.transpose(1, 0, 2).reshape(X.shape[0], S * K)
        log_f = grouping.sum(rows).reshape(grouping.n_groups, S, K).transpose(1, 0, 2)
    if concomitant is not None:
        eta = np.asarray(values["concomitant_intercept"], dtype=float)[:, None, :] + np.einsum(
            "gr,skr->sgk", concomitant, np.asarray(values["concomitant_coef"], dtype=float)
        )
        log_pi = eta - logsumexp(eta, axis=-1, keepdims=True)
    else:
        log_pi = np.log(np.maximum(np.asarray(values["weights"], dtype=float), _EPS))[:, None]
    log_p = log_f + log_pi
    return np.exp(log_p - logsumexp(log_p, axis=-1, keepdims=True))


def _family_log_density(
    family: Any,
    X: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    values: Mapping[str, np.ndarray],
    extra: np.ndarray | None,
) -> np.ndarray:
    """The family's ``log f(y_i | eta_sik)`` of every draw, ``(S, n, K)``: its own
    ``log_density`` on the draws side by side (rows first, draws x components as columns)."""
    S, n, K = mean.shape
    if extra is None:
        extra = family.row_columns(y, None, None)
    offset = np.broadcast_to(np.asarray(family.offset_of(extra), dtype=float), (n,))
    eta = (mean + offset[None, :, None]).transpose(1, 0, 2).reshape(n, S * K)
    sigma = np.asarray(values.get("sigma", np.ones((S, K))), dtype=float).reshape(S * K)
    df = values.get("df")
    df = None if df is None else np.asarray(df, dtype=float).reshape(S * K)
    log_f = family.log_density(y, eta, extra, sigma, df)
    return np.asarray(log_f).reshape(n, S, K).transpose(1, 0, 2)


def _assign(cost: np.ndarray) -> np.ndarray:
    """Per draw, the permutation ``nu`` minimising ``sum_j cost[s, j, nu[j]]``."""
    S, K, _ = cost.shape
    perms = np.empty((S, K), dtype=np.intp)
    for s in range(S):
        rows, cols = linear_sum_assignment(cost[s])
        perms[s, rows] = cols
    return perms


def stephens_permutations(
    probabilities: np.ndarray, initial: np.ndarray, *, max_iter: int = 100
) -> tuple[np.ndarray, int, bool]:
    """Stephens' KL relabelling of draws, started from ``initial`` permutations.

    Parameters
    ----------
    probabilities : ndarray of shape (S, n, K)
        From :func:`classification_probabilities` (the draws' own labelling).
    initial : ndarray of int, shape (S, K)
        Start permutations (``perm[s, j]`` = the draw's component that gets label ``j``), e.g.
        the EM alignment: the result then keeps the EM label names.
    max_iter : int, default=100

    Returns
    -------
    perms : ndarray of int, shape (S, K)
        ``perm[s, j]``: the component of draw ``s`` that takes label ``j``.
    n_iter : int
    converged : bool
        No permutation changed in the last step.
    """
    P = np.asarray(probabilities, dtype=float)
    perms = np.array(initial, dtype=np.intp)
    S, _, K = P.shape
    if perms.shape != (S, K):
        raise ValueError(f"initial must have shape {(S, K)}; got {perms.shape}")
    log_p = np.log(np.maximum(P, _EPS))
    for it in range(1, max_iter + 1):
        aligned = np.take_along_axis(P, perms[:, None, :], axis=2)  # (S, n, K)
        log_q = np.log(np.maximum(aligned.mean(axis=0), _EPS))  # (n, K)
        # cost[s, j, l] = sum_i P_s[i, l] (log P_s[i, l] - log Q[i, j]): label j takes l
        entropy = np.einsum("sil,sil->sl", P, log_p)  # (S, K)
        cross = np.einsum("sil,ij->sjl", P, log_q)  # (S, K, K)
        new = _assign(entropy[:, None, :] - cross)
        if np.array_equal(new, perms):
            return perms, it, True
        perms = new
    return perms, max_iter, False
