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
        True component labels.
    truth : dict
        ``weights`` (K,), ``intercept`` (K,), ``coef`` (K, p), ``sigma`` (K,).
    """

    X: np.ndarray
    y: np.ndarray
    z: np.ndarray
    truth: dict[str, np.ndarray]


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
) -> SimulatedData:
    """Draw ``(X, y)`` from ``y ~ Σ_j π_j N(intercept_j + coef_j·x, σ_j²)`` with ``x ~ N(0, I)``.

    Parameters
    ----------
    n_samples : int
    weights : array-like of shape (K,), optional
    intercept : array-like of shape (K,), optional
    coef : array-like of shape (K, p), optional
    sigma : float or array-like of shape (K,), optional
        Missing parameters come from :func:`default_truth` (``n_components``, ``n_features``).
    random_state : int, numpy Generator or None

    Returns
    -------
    SimulatedData
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
    y, z = draw_response(truth, X, rng, return_labels=True)
    return SimulatedData(X, y, z, truth)


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
