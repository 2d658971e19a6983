"""The component families in the Bayesian layer: log densities in PyTensor, draws in numpy.

A family object of :mod:`bayes_mlr.core.components` (``Gaussian``, ``Poisson``, ``Binomial``,
``StudentT``) holds the density of one observation given its linear predictor
``eta_ij = offset_i + intercept_j + coef_j . x_i`` in numpy, for EM. The posterior needs the same
density as a PyTensor graph (NUTS differentiates it), so :func:`log_density` writes each
family's ``log_density`` again in PyTensor, term for term:

* ``gaussian``: ``-(y - eta)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2``;
* ``poisson``: ``y eta - exp(eta) - log y!``;
* ``binomial``: ``y log expit(eta) + (m - y) log expit(-eta) + log C(m, y)`` (``log expit``
  as ``-softplus(-eta)``, stable for any ``eta``);
* ``student_t``: ``lgamma((nu + 1) / 2) - lgamma(nu / 2) - log(nu pi) / 2 - log sigma
  - (nu + 1) / 2 log1p(((y - eta) / sigma)^2 / nu)``.

Everything that is data rather than parameters comes from the family itself: the offset, the
number of trials and the constants ``-log y!`` and ``log C(m, y)`` are the family's row columns
(:meth:`~bayes_mlr.core.components.family.Family.row_columns`, computed once in numpy), read
through :func:`offset_of`, :func:`trials_of` and :func:`constant_of`. ``tests/bayes/
test_families.py`` checks each graph against the family's numpy ``log_density`` to rounding.

:func:`draw` draws ``y`` given the linear predictor (posterior predictive draws, numpy).

numpy at import: :func:`log_density` imports PyTensor when called, so the numpy modules of
this package (:mod:`~bayes_mlr.bayes.predictive`, :mod:`~bayes_mlr.bayes.stephens`) can use the
rest without it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from scipy.special import expit

from bayes_mlr.core.components import Family, resolve_family

__all__ = [
    "constant_of",
    "draw",
    "family_of",
    "family_of_posterior",
    "log_density",
    "mean",
    "offset_of",
    "row_columns",
    "trials_of",
]

_LOG_2PI = math.log(2.0 * math.pi)


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


def _row_vector(value: Any, name: str, n: int) -> np.ndarray | None:
    if value is None:
        return None
    out = np.asarray(value, dtype=float).reshape(-1)
    if out.shape != (n,):
        raise ValueError(f"{name} must have shape (n,) with n = len(y) = {n}; got {out.shape}")
    return out


def row_columns(family: Family, y: np.ndarray, offset: Any, trials: Any) -> np.ndarray:
    """The family's row columns ``(n, m)`` of ``y`` with ``offset`` and ``trials``, validated
    by the family (counts for Poisson, successes out of ``trials`` for binomial, ...)."""
    n = y.shape[0]
    offset, trials = _row_vector(offset, "offset", n), _row_vector(trials, "trials", n)
    family.check_response(y, offset, trials)
    return np.asarray(family.row_columns(y, offset, trials), dtype=float).reshape(n, -1)


def offset_of(family: Family, extra: np.ndarray) -> np.ndarray:
    """The offset ``(n,)`` of the row columns (zeros for a family without one)."""
    return np.broadcast_to(np.asarray(family.offset_of(extra), dtype=float), (extra.shape[0],))


def trials_of(family: Family, extra: np.ndarray) -> np.ndarray | None:
    """The number of trials ``(n,)`` (binomial), else None."""
    if not family.takes_trials:
        return None
    return np.asarray(family.trials_of(extra), dtype=float)


def constant_of(family: Family, extra: np.ndarray) -> np.ndarray | None:
    """The parameter-free term of ``log f`` per row: ``-log y!`` (Poisson), ``log C(m, y)``
    (binomial), the last row column of both; None for the other families."""
    if family.name in ("poisson", "binomial"):
        return np.asarray(extra[:, -1], dtype=float)
    return None


# --------------------------------------------------------------------------------------------
# The log density as a PyTensor graph
# --------------------------------------------------------------------------------------------


def log_density(
    family: Family,
    y: Any,
    eta: Any,
    *,
    sigma: Any = None,
    df: Any = None,
    trials: Any = None,
    constant: Any = None,
) -> Any:
    """``log f(y_i | eta_ij, sigma_j, nu_j)`` as a PyTensor graph of shape ``(n, K)``.

    Parameters
    ----------
    family : Family
    y : tensor of shape (n,)
    eta : tensor of shape (n, K)
        The linear predictor, offset included.
    sigma, df : tensor of shape (K,), optional
        Scales (Gaussian, Student-t) and degrees of freedom (Student-t).
    trials : tensor of shape (n,), optional
        Binomial trials ``m``.
    constant : tensor of shape (n,), optional
        :func:`constant_of` (Poisson, binomial); left out, the density lacks it (it does not
        depend on the parameters).
    """
    import pytensor.tensor as pt

    yy = y[:, None]
    name = family.name
    if name == "gaussian":
        z = (yy - eta) / sigma[None, :]
        out = -0.5 * z**2 - pt.log(sigma)[None, :] - 0.5 * _LOG_2PI
    elif name == "student_t":
        nu = df[None, :]
        delta2 = ((yy - eta) / sigma[None, :]) ** 2
        out = (
            pt.gammaln((nu + 1.0) / 2.0)
            - pt.gammaln(nu / 2.0)
            - 0.5 * pt.log(nu * math.pi)
            - pt.log(sigma)[None, :]
            - 0.5 * (nu + 1.0) * pt.log1p(delta2 / nu)
        )
    elif name == "poisson":
        out = yy * eta - pt.exp(eta)
    elif name == "binomial":
        m = trials[:, None]
        out = -yy * pt.softplus(-eta) - (m - yy) * pt.softplus(eta)
    else:
        raise NotImplementedError(
            f"family {name!r} has no PyTensor log density in bayes_mlr.bayes.families: the "
            "posterior supports 'gaussian', 'poisson', 'binomial' and 'student_t'"
        )
    if constant is not None:
        out = out + constant[:, None]
    return out


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
    ``sigma``/``df`` of the same shape where the family has them and ``extra`` ``(n, m)``."""
    name = family.name
    if name == "gaussian":
        return rng.normal(eta, sigma)
    if name == "student_t":
        return eta + sigma * rng.standard_t(df)
    if name == "poisson":
        return rng.poisson(mean(family, eta, extra)).astype(float)
    if name == "binomial":
        m = np.broadcast_to(family.trials_of(extra), eta.shape).astype(np.int64)
        return rng.binomial(m, expit(eta)).astype(float)
    raise NotImplementedError(f"no predictive draws for family {name!r}")


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
