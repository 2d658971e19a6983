"""The component families in the Bayesian layer: log densities in PyTensor, draws in numpy.

A family object of :mod:`bayes_mlr.core.components` (``Gaussian``, ``Poisson``, ``Binomial``,
``StudentT``) holds the density of one observation given its linear predictor
``eta_ij = offset_i + intercept_j + coef_j . x_i``, written once with an array namespace
``xp``: numpy's functions for EM, PyTensor's (:func:`pytensor_ops`) for the posterior, which
NUTS differentiates. A new family is therefore one module of the core, and the posterior
follows. Everything that is data rather than parameters comes from the family itself: the
offset, the number of trials and the constants ``-log y!`` and ``log C(m, y)`` are the family's
row columns (:meth:`~bayes_mlr.core.components.family.Family.row_columns`, computed once in
numpy), read through :func:`offset_of` and :func:`trials_of`. ``tests/bayes/test_families.py``
checks each graph against the numpy density to rounding.

:func:`draw` draws ``y`` given the linear predictor (posterior predictive draws, numpy), by the
family's own ``draw``.

numpy at import: :func:`log_density` imports PyTensor when called, so the numpy modules of
this package (:mod:`~bayes_mlr.bayes.predictive`, :mod:`~bayes_mlr.bayes.stephens`) can use the
rest without it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from bayes_mlr.core.components import Family, resolve_family

__all__ = [
    "draw",
    "family_of",
    "family_of_posterior",
    "log_density",
    "mean",
    "offset_of",
    "pytensor_ops",
    "row_columns",
    "trials_of",
]

# --------------------------------------------------------------------------------------------
# The family of an estimator or a posterior, and its row columns
# --------------------------------------------------------------------------------------------


def family_of(model: Any) -> Family:
    """The family of an estimator: its fit's, else the one its ``family`` argument names."""
    result = getattr(model, "result_", None)
    if result is not None and getattr(result, "family", None) is not None:
        return result.family
    return resolve_family(getattr(model, "family", "gaussian"))


def family_of_posterior(posterior: Any) -> Family:
    """The family a posterior was sampled under (``posterior.attrs["family"]``, JSON), Gaussian
    for a posterior that records none (the plain model, or one saved before families)."""
    try:
        attrs = posterior["posterior"].attrs
    except (KeyError, TypeError):
        attrs = {}
    recorded = attrs.get("family")
    if not recorded:
        return resolve_family("gaussian")
    return resolve_family(json.loads(recorded) if isinstance(recorded, str) else recorded)


def row_columns(family: Family, y: np.ndarray, offset: Any, trials: Any) -> np.ndarray:
    """The family's row columns ``(n, m)`` of ``y`` with ``offset`` and ``trials``, validated
    by the family (counts for Poisson, successes out of ``trials`` for binomial, ...)."""
    return np.asarray(family.rows(y, offset, trials), dtype=float).reshape(y.shape[0], -1)


def offset_of(family: Family, extra: np.ndarray) -> np.ndarray:
    """The offset ``(n,)`` of the row columns (zeros for a family without one)."""
    return np.broadcast_to(np.asarray(family.offset_of(extra), dtype=float), (extra.shape[0],))


def trials_of(family: Family, extra: np.ndarray) -> np.ndarray | None:
    """The number of trials ``(n,)`` (binomial), else None."""
    if not family.takes_trials:
        return None
    return np.asarray(family.trials_of(extra), dtype=float)


# --------------------------------------------------------------------------------------------
# The log density as a PyTensor graph
# --------------------------------------------------------------------------------------------


def pytensor_ops() -> Any:
    """PyTensor's versions of the array functions a family's ``log_density`` uses
    (:data:`bayes_mlr.core.components.family.NUMPY_OPS`)."""
    from types import SimpleNamespace

    import pytensor.tensor as pt

    return SimpleNamespace(
        exp=pt.exp,
        log=pt.log,
        log1p=pt.log1p,
        minimum=pt.minimum,
        gammaln=pt.gammaln,
        log_expit=lambda x: -pt.softplus(-x),  # stable for any x
    )


def log_density(
    family: Family, y: Any, eta: Any, extra: Any, *, sigma: Any = None, df: Any = None
) -> Any:
    """``log f(y_i | eta_ij, sigma_j, nu_j)`` as a PyTensor graph of shape ``(n, K)``: the
    family's own ``log_density``, evaluated with PyTensor's functions.

    Parameters
    ----------
    family : Family
    y : tensor of shape (n,)
    eta : tensor of shape (n, K)
        The linear predictor, offset included.
    extra : tensor of shape (n, m)
        The family's row columns (:func:`row_columns`): trials, constants.
    sigma, df : tensor of shape (K,), optional
        Scales (Gaussian, Student-t) and degrees of freedom (Student-t).
    """
    return family.log_density(y, eta, extra, sigma, df, xp=pytensor_ops())


# --------------------------------------------------------------------------------------------
# Draws of y
# --------------------------------------------------------------------------------------------


def draw(
    family: Family,
    eta: np.ndarray,
    extra: np.ndarray,
    sigma: np.ndarray | None,
    df: np.ndarray | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """One draw of ``y`` per entry of ``eta`` (any shape ``(..., n)``, offset included), with
    ``sigma``/``df`` of the same shape where the family has them and ``extra`` ``(n, m)``: the
    family's own :meth:`~bayes_mlr.core.components.family.Family.draw`."""
    return family.draw(eta, extra, sigma, df, rng)


def mean(family: Family, eta: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """``E[y | eta]`` on the response scale (the family's ``mean``), ``eta`` of any shape
    ``(..., n)`` (offset included) with ``extra`` ``(n, m)``."""
    eta = np.asarray(eta, dtype=float)
    if family.name in ("gaussian", "student_t"):
        return eta
    n = eta.shape[-1]
    rows = np.moveaxis(eta, -1, 0).reshape(n, -1)  # (n, S): the layout the family expects
    out = np.asarray(family.mean(rows, extra), dtype=float)
    return np.moveaxis(out.reshape(n, *eta.shape[:-1]), 0, -1)
