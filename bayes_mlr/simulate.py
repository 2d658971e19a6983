"""Simulated data with known truth, for tests, notebooks and the demo.

:func:`simulate` draws from a mixture of regressions with Gaussian components (the default),
or with Poisson (log link, optional exposure), binomial (logit link, a number of trials per row)
or Student-t components (``family=``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FAMILIES", "SimulatedData", "default_truth", "draw_response", "simulate"]

#: The families :func:`simulate` draws from.
FAMILIES = ("gaussian", "poisson", "binomial", "student_t")
#: Defaults of the family settings: the t's degrees of freedom and the binomial trials range.
DEFAULT_DF = 4.0
DEFAULT_TRIALS = (5, 30)


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
        ``weights`` (K,), ``intercept`` (K,), ``coef`` (K, p), ``sigma`` (K,) (not for the
        Poisson and binomial families), ``df`` (K,) (Student-t); with concomitant variables
        also ``concomitant_intercept`` (K,) and ``concomitant_coef`` (K, r), row 0 zeros
        (``weights`` are then the mean prior over the rows).
    groups : ndarray of int, shape (n_samples,) or None
        Group of each row, when ``n_groups`` was given.
    concomitant : ndarray of shape (n_samples, r) or None
        Concomitant variables, standard normal (constant within a group).
    offset : ndarray of shape (n_samples,) or None
        Poisson with ``exposure``: ``log`` of each row's exposure, added to the linear
        predictor.
    trials : ndarray of shape (n_samples,) or None
        Binomial: the number of trials of each row (``y`` counts the successes).
    family : str
        The family the data were drawn from.
    """

    X: np.ndarray
    y: np.ndarray
    z: np.ndarray
    truth: dict[str, np.ndarray]
    groups: np.ndarray | None = None
    concomitant: np.ndarray | None = None
    offset: np.ndarray | None = None
    trials: np.ndarray | None = None
    family: str = "gaussian"


def default_truth(
    n_components: int = 2, n_features: int = 1, family: str = "gaussian"
) -> dict[str, np.ndarray]:
    """Well-separated parameters: intercepts spread over [-3, 3], alternating slopes.

    For ``family="poisson"`` the intercepts spread over [0.5, 2.5] and the slopes are halved
    (log means of moderate counts); for ``"binomial"`` they spread over [-1.5, 1.5]; neither
    has a ``sigma``. ``"student_t"`` adds ``df`` (4 for every component).
    """
    K, p = n_components, n_features
    intercept = np.linspace(-3.0, 3.0, K) if K > 1 else np.zeros(1)
    signs = np.where(np.arange(K) % 2 == 0, 1.0, -1.0)
    coef = signs[:, None] * (1.0 + np.arange(K)[:, None] * 0.5) * np.ones((K, p))
    coef = coef / np.sqrt(np.arange(1, p + 1))[None, :]
    truth = {
        "weights": np.full(K, 1.0 / K),
        "intercept": intercept,
        "coef": coef,
        "sigma": np.full(K, 0.5),
    }
    if family == "poisson":
        truth["intercept"] = np.linspace(0.5, 2.5, K) if K > 1 else np.ones(1)
        truth["coef"] = 0.5 * coef
    elif family == "binomial":
        truth["intercept"] = np.linspace(-1.5, 1.5, K) if K > 1 else np.zeros(1)
    if family in ("poisson", "binomial"):
        del truth["sigma"]
    if family == "student_t":
        truth["df"] = np.full(K, DEFAULT_DF)
    return truth


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
    family: str = "gaussian",
    df=None,
    trials=None,
    exposure=None,
) -> SimulatedData:
    """Draw ``(X, y)`` from ``y ~ Σ_j π_j N(intercept_j + coef_j·x, σ_j²)`` with ``x ~ N(0, I)``
    (or another component family).

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
    family : {"gaussian", "poisson", "binomial", "student_t"}, default="gaussian"
        The distribution of ``y`` given its component ``j``, with ``η = intercept_j +
        coef_j·x``: ``N(η, σ_j²)``; ``Poisson(exposure · exp(η))``; ``Binomial(m,
        expit(η))`` with ``m`` trials; ``η + σ_j t_ν_j``. The Gaussian draws are those of
        earlier versions, number for number.
    df : float or array-like of shape (K,), optional
        Student-t degrees of freedom (default 4).
    trials : int or (low, high), optional
        Binomial: every row's number of trials, or a range each row's is drawn from
        uniformly (both ends included); default (5, 30).
    exposure : (low, high), optional
        Poisson: each row's exposure ``h ~ U(low, high)``, the offset ``log h`` kept in
        :attr:`SimulatedData.offset`; default none (exposure 1, no offset).

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
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}; got {family!r}.")
    glm = family in ("poisson", "binomial")
    for name, value, owner in (
        ("sigma", sigma if glm else None, "the gaussian and student_t families"),
        ("df", df if family != "student_t" else None, "the student_t family"),
        ("trials", trials if family != "binomial" else None, "the binomial family"),
        ("exposure", exposure if family != "poisson" else None, "the poisson family"),
    ):
        if value is not None:
            raise ValueError(f"{name} applies to {owner}, not to {family!r}.")
    if coef is not None:
        coef_arr = np.atleast_2d(np.asarray(coef, dtype=float))
        n_components, n_features = coef_arr.shape
    base = default_truth(n_components, n_features, family)
    given = {"weights": weights, "intercept": intercept, "coef": coef, "sigma": sigma}
    if glm:
        del given["sigma"]
    truth = {k: np.asarray(v if v is not None else base[k], dtype=float) for k, v in given.items()}
    K = truth["weights"].shape[0]
    truth["coef"] = truth["coef"].reshape(K, -1)
    if not glm:
        truth["sigma"] = np.broadcast_to(truth["sigma"], (K,)).copy()
    if family == "student_t":
        truth["df"] = np.broadcast_to(np.asarray(DEFAULT_DF if df is None else df, float), (K,))
        truth["df"] = truth["df"].copy()
        if not np.all(np.isfinite(truth["df"]) & (truth["df"] > 0)):
            raise ValueError(f"df must be positive; got {df!r}.")
    if not np.isclose(truth["weights"].sum(), 1.0) or np.any(truth["weights"] < 0):
        raise ValueError("weights must be non-negative and sum to one.")
    if not glm and np.any(truth["sigma"] <= 0):
        raise ValueError("sigma must be positive.")
    low_high = _range_of("trials", DEFAULT_TRIALS if trials is None else trials, integer=True)
    exposure_range = None if exposure is None else _range_of("exposure", exposure)
    rng = np.random.default_rng(random_state)
    p = truth["coef"].shape[1]
    X = rng.normal(size=(n_samples, p))
    if family == "gaussian" and n_groups is None and concomitant_coef is None:
        y, z = draw_response(truth, X, rng, return_labels=True)
        return SimulatedData(X, y, z, truth)
    if n_groups is None and concomitant_coef is None:
        w = truth["weights"]
        z = rng.choice(K, size=n_samples, p=w / w.sum())
        y, rows = _family_response(family, truth, X, z, low_high, exposure_range, rng)
        return SimulatedData(X, y, z, truth, family=family, **rows)
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
    groups_out = groups if n_groups is not None else None
    if family != "gaussian":
        y, rows = _family_response(family, truth, X, z, low_high, exposure_range, rng)
        return SimulatedData(X, y, z, truth, groups_out, W, family=family, **rows)
    mean = truth["intercept"][z] + np.einsum("ij,ij->i", X, truth["coef"][z])
    y = mean + truth["sigma"][z] * rng.normal(size=n_samples)
    return SimulatedData(X, y, z, truth, groups_out, W)


def _range_of(name: str, value, *, integer: bool = False) -> tuple[float, float]:
    """``(low, high)`` from one number or a pair; positive, ``low <= high`` (integers for the
    trials)."""
    values = np.atleast_1d(np.asarray(value, dtype=float))
    if values.shape not in ((1,), (2,)):
        raise ValueError(f"{name} must be a number or a (low, high) pair; got {value!r}.")
    low, high = float(values[0]), float(values[-1])
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
        raise ValueError(f"{name} must be positive with low <= high; got {value!r}.")
    if integer and (low != int(low) or high != int(high)):
        raise ValueError(f"{name} must be whole numbers; got {value!r}.")
    return low, high


def _family_response(family, truth, X, z, trials, exposure, rng):
    """``y`` of a non-Gaussian family at the rows' components ``z`` (drawn by the family,
    :meth:`~bayes_mlr.core.components.family.Family.draw`), and the per-row data drawn with it
    (``offset``, ``trials``) as keywords of :class:`SimulatedData`."""
    from bayes_mlr.core.components import resolve_family

    n = X.shape[0]
    fam = resolve_family(family)
    eta = truth["intercept"][z] + np.einsum("ij,ij->i", X, truth["coef"][z])
    rows: dict = {}
    if family == "poisson":
        rows["offset"] = None if exposure is None else np.log(rng.uniform(*exposure, size=n))
    if family == "binomial":
        rows["trials"] = rng.integers(int(trials[0]), int(trials[1]) + 1, size=n).astype(float)
    extra = fam.row_columns(np.zeros(n), rows.get("offset"), rows.get("trials"))
    eta = eta + fam.offset_of(extra)
    sigma = truth["sigma"][z] if "sigma" in truth else None
    df = truth["df"][z] if "df" in truth else None
    return fam.draw(eta, extra, sigma, df, rng), rows


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
