"""Simulated data with known truth, for tests, notebooks and the demo."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SimulatedData", "default_truth", "draw_response", "simulate"]


@dataclass(frozen=True)
class SimulatedData:
    """Data drawn from a mixture of linear regressions, with the truth that generated it.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    z : ndarray of shape (n_samples,) of int
        True component labels (equal within a group).
    truth : dict
        ``weights`` (K,), ``intercept`` (K,), ``coef`` (K, p), ``sigma`` (K,); with
        concomitant variables also ``concomitant_intercept`` (K,) and ``concomitant_coef``
        (K, r), row 0 zeros (``weights`` are then the mean prior over the rows).
    groups : ndarray of int, shape (n_samples,) or None
        Group of each row, when ``n_groups`` was given.
    concomitant : ndarray of shape (n_samples, r) or None
        Concomitant variables, standard normal (constant within a group).
    """

    X: np.ndarray
    y: np.ndarray
    z: np.ndarray
    truth: dict[str, np.ndarray]
    groups: np.ndarray | None = None
    concomitant: np.ndarray | None = None


def default_truth(n_components: int = 2, n_features: int = 1) -> dict[str, np.ndarray]:
    """Well-separated parameters: intercepts spread over [-3, 3], alternating slopes."""
    K, p = n_components, n_features
    intercept = np.linspace(-3.0, 3.0, K) if K > 1 else np.zeros(1)
    signs = np.where(np.arange(K) % 2 == 0, 1.0, -1.0)
    coef = signs[:, None] * (1.0 + np.arange(K)[:, None] * 0.5) * np.ones((K, p))
    coef = coef / np.sqrt(np.arange(1, p + 1))[None, :]
    return {
        "weights": np.full(K, 1.0 / K),
        "intercept": intercept,
        "coef": coef,
        "sigma": np.full(K, 0.5),
    }


def simulate(
    n_samples: int,
    weights=None,
    intercept=None,
    coef=None,
    sigma=None,
    *,
    n_components: int = 2,
    n_features: int = 1,
    random_state: int | np.random.Generator | None = None,
    n_groups: int | None = None,
    concomitant_intercept=None,
    concomitant_coef=None,
) -> SimulatedData:
    """Draw ``(X, y)`` from ``y ~ Σ_j π_j N(intercept_j + coef_j·x, σ_j²)`` with ``x ~ N(0, I)``.

    Parameters
    ----------
    n_samples : int
    weights : array-like of shape (K,), optional
    intercept : array-like of shape (K,), optional
    coef : array-like of shape (K, p), optional
        Equal entries in a column make a shared coefficient.
    sigma : float or array-like of shape (K,), optional
        Missing parameters come from :func:`default_truth` (``n_components``, ``n_features``).
    random_state : int, numpy Generator or None
    n_groups : int, optional
        Rows are dealt to this many groups at random (each group gets at least one row); all
        rows of a group share one component.
    concomitant_intercept : array-like of shape (K,), optional
    concomitant_coef : array-like of shape (K, r), optional
        A concomitant model: ``w ~ N(0, I_r)`` (one draw per group) and prior weights
        ``softmax_j(concomitant_intercept_j + w·concomitant_coef_j)``; row 0 is the reference
        and must be zero. ``weights`` must then be left out.

    Returns
    -------
    SimulatedData

    Examples
    --------
    >>> from bayes_mlr import simulate
    >>> sim = simulate(200, n_groups=50, concomitant_intercept=[0, 0.5],
    ...                concomitant_coef=[[0.0], [1.5]], random_state=0)
    >>> sim.groups.shape, sim.concomitant.shape, sim.truth["concomitant_coef"].shape
    ((200,), (200, 1), (2, 1))
    """
    if coef is not None:
        coef_arr = np.atleast_2d(np.asarray(coef, dtype=float))
        n_components, n_features = coef_arr.shape
    base = default_truth(n_components, n_features)
    given = {"weights": weights, "intercept": intercept, "coef": coef, "sigma": sigma}
    truth = {k: np.asarray(v if v is not None else base[k], dtype=float) for k, v in given.items()}
    K = truth["weights"].shape[0]
    truth["coef"] = truth["coef"].reshape(K, -1)
    truth["sigma"] = np.broadcast_to(truth["sigma"], (K,)).copy()
    if not np.isclose(truth["weights"].sum(), 1.0) or np.any(truth["weights"] < 0):
        raise ValueError("weights must be non-negative and sum to one.")
    if np.any(truth["sigma"] <= 0):
        raise ValueError("sigma must be positive.")
    rng = np.random.default_rng(random_state)
    p = truth["coef"].shape[1]
    X = rng.normal(size=(n_samples, p))
    if n_groups is None and concomitant_coef is None:
        y, z = draw_response(truth, X, rng, return_labels=True)
        return SimulatedData(X, y, z, truth)
    if n_groups is not None and not 1 <= int(n_groups) <= n_samples:
        raise ValueError(f"n_groups must be in [1, n_samples]; got {n_groups!r}.")
    G = n_samples if n_groups is None else int(n_groups)
    # every group gets one row, the rest are dealt at random
    groups = np.concatenate([np.arange(G), rng.integers(0, G, size=n_samples - G)])
    groups = np.sort(rng.permutation(groups)) if n_groups is not None else np.arange(G)
    log_prior = np.log(np.broadcast_to(truth["weights"], (G, K)))
    W = None
    if concomitant_coef is not None:
        if weights is not None:
            raise ValueError("give weights or a concomitant model (concomitant_coef), not both.")
        gamma = np.atleast_2d(np.asarray(concomitant_coef, dtype=float))
        alpha = (
            np.zeros(K)
            if concomitant_intercept is None
            else np.asarray(concomitant_intercept, float)
        )
        if gamma.shape[0] != K or alpha.shape != (K,):
            raise ValueError(
                f"concomitant_intercept must have shape ({K},) and concomitant_coef ({K}, r)."
            )
        if np.any(gamma[0] != 0) or alpha[0] != 0:
            raise ValueError("row 0 of the concomitant model is the reference and must be zero.")
        W_groups = rng.normal(size=(G, gamma.shape[1]))
        eta = alpha + W_groups @ gamma.T
        log_prior = eta - np.logaddexp.reduce(eta, axis=1, keepdims=True)
        truth["concomitant_intercept"], truth["concomitant_coef"] = alpha, gamma
        truth["weights"] = np.exp(log_prior[groups]).mean(axis=0)
        W = W_groups[groups]
    u = rng.random(G)[:, None]
    z_groups = (u > np.cumsum(np.exp(log_prior), axis=1)).sum(axis=1).clip(max=K - 1)
    z = z_groups[groups]
    mean = truth["intercept"][z] + np.einsum("ij,ij->i", X, truth["coef"][z])
    y = mean + truth["sigma"][z] * rng.normal(size=n_samples)
    return SimulatedData(X, y, z, truth, groups if n_groups is not None else None, W)


def draw_response(params, X: np.ndarray, rng: np.random.Generator, *, return_labels: bool = False):
    """Draw y at the rows of X from the mixture with these parameters.

    Parameters
    ----------
    params : mapping
        ``weights`` (K,), ``intercept`` (K,), ``coef`` (K, p), ``sigma`` (K,).
    X : ndarray of shape (n_samples, p)
    rng : numpy Generator
    return_labels : bool, default=False
        Also return the drawn component labels.

    Returns
    -------
    y : ndarray of shape (n_samples,)
    z : ndarray of int, shape (n_samples,)
        Only with ``return_labels=True``.
    """
    weights = np.asarray(params["weights"], dtype=float)
    z = rng.choice(weights.shape[0], size=X.shape[0], p=weights / weights.sum())
    mean = np.asarray(params["intercept"])[z] + np.einsum(
        "ij,ij->i", X, np.asarray(params["coef"])[z]
    )
    y = mean + np.asarray(params["sigma"])[z] * rng.normal(size=X.shape[0])
    return (y, z) if return_labels else y
