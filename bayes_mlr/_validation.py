"""Input checks shared by every entry point.

Every check runs before any computation and raises ``TypeError`` (wrong kind of object) or
``ValueError`` (right kind, bad value) with a message naming the argument, what was expected and
what was received.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

VARIANCE_MODES = ("component", "shared", "fixed")
INIT_STRATEGIES = ("auto", "random", "subsets", "short_runs")
PARAM_NAMES = ("weights", "intercept", "coef", "sigma")


def is_dask_collection(obj: Any) -> bool:
    """True for Dask arrays and DataFrames, without importing Dask."""
    return type(obj).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(
        obj, "__dask_graph__"
    )


def _feature_names(X: Any) -> np.ndarray | None:
    """Column names of a pandas-like frame when they are all strings, else None."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = list(columns)
    if names and all(isinstance(c, str) for c in names):
        return np.asarray(names, dtype=object)
    return None


def _as_float_array(value: Any, name: str) -> np.ndarray:
    """Convert to a float64 ndarray, refusing non-numeric data with a TypeError."""
    if hasattr(value, "dtypes") and hasattr(value, "columns"):  # pandas DataFrame
        for col, dtype in zip(value.columns, value.dtypes, strict=True):
            # .kind works for numpy dtypes and pandas extension dtypes (Int64, string, category)
            if getattr(dtype, "kind", "O") not in "biuf":
                raise TypeError(
                    f"{name} must be numeric; column {col!r} has dtype {dtype}. "
                    "Encode categorical columns first (e.g. with a formula or one-hot encoding)."
                )
    sparse = sys.modules.get("scipy.sparse")  # a sparse input means scipy.sparse is loaded
    if sparse is not None and sparse.issparse(value):
        raise TypeError(
            f"{name} is a scipy sparse matrix; sparse input is not supported: pass a dense "
            f"array ({name}.toarray())."
        )
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} could not be converted to a numeric array: {exc}") from exc
    if arr.dtype == object:  # e.g. DataFrame.values of mixed frames: numbers held as objects
        if any(isinstance(v, str | bytes) for v in arr.flat):
            raise TypeError(f"{name} must be numeric; got strings in an array of dtype object.")
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be numeric; an object array entry failed: {exc}") from exc
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric; got an array of dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}.")
    return np.asarray(arr, dtype=np.float64)


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite value(s); "
            "remove or impute them before fitting."
        )


def check_X(X: Any, *, n_features: int | None = None) -> np.ndarray:
    """Validate a feature matrix.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples,)
        A 1-D input is taken as a single feature.
    n_features : int, optional
        Expected number of columns (for prediction with a fitted model).

    Returns
    -------
    ndarray of shape (n_samples, n_features), float64, C-contiguous.
    """
    if X is None:
        raise TypeError("X must be an array-like of shape (n_samples, n_features); got None.")
    arr = _as_float_array(X, "X")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D of shape (n_samples, n_features); got {arr.ndim}-D input.")
    if arr.shape[0] == 0:
        raise ValueError("X is empty: it has 0 rows; at least one observation is needed.")
    if arr.shape[1] == 0:
        raise ValueError(
            f"X has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required; pass at "
            "least one feature (use fit_intercept for a constant)."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"X has {arr.shape[1]} features, but the model was fitted with {n_features} features."
        )
    _check_finite(arr, "X")
    return np.ascontiguousarray(arr)


def check_y(y: Any, n_samples: int) -> np.ndarray:
    """Validate the response: 1-D (or a single column), numeric, finite, of length n_samples."""
    if y is None:
        raise ValueError("This estimator requires y to be passed, but the target y is None.")
    arr = _as_float_array(y, "y")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"y must be 1-D of shape (n_samples,); got shape {arr.shape}.")
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"X and y have different lengths: X has {n_samples} rows, y has {arr.shape[0]}."
        )
    _check_finite(arr, "y")
    return np.ascontiguousarray(arr)


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """Validate replication weights: 1-D, finite, non-negative, with a positive sum."""
    if sample_weight is None:
        return None
    arr = _as_float_array(sample_weight, "sample_weight")
    if arr.ndim == 0:
        arr = np.full(n_samples, float(arr))
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},) to match X; got shape {arr.shape}."
        )
    _check_finite(arr, "sample_weight")
    if np.any(arr < 0):
        raise ValueError("sample_weight must be non-negative; got negative entries.")
    if arr.sum() <= 0:
        raise ValueError("sample_weight sums to zero; at least one observation needs weight.")
    return np.ascontiguousarray(arr)


def check_data(X: Any, y: Any, sample_weight: Any = None):
    """Validate X, y and sample_weight together.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    sample_weight : ndarray of shape (n_samples,) or None
    feature_names : ndarray of str or None
        Column names when X is a pandas DataFrame with string column names.
    """
    names = _feature_names(X)
    X_arr = check_X(X)
    y_arr = check_y(y, X_arr.shape[0])
    sw = check_sample_weight(sample_weight, X_arr.shape[0])
    return X_arr, y_arr, sw, names


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer >= {low}; got {value!r} ({type(value).__name__})."
        )
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value}.")
    return int(value)


SPURIOUS_MODES = ("avoid", "allow")


def check_guard(*, spurious: Any, min_weight: Any) -> None:
    """Validate the spurious-optimum settings of :func:`bayes_mlr.fit_em`."""
    if not isinstance(spurious, str) or spurious not in SPURIOUS_MODES:
        raise ValueError(f"spurious must be one of {SPURIOUS_MODES}; got {spurious!r}.")
    if min_weight is not None:
        if isinstance(min_weight, bool) or not isinstance(min_weight, numbers.Real):
            raise TypeError(f"min_weight must be a float in (0, 1) or None; got {min_weight!r}.")
        if not 0.0 < float(min_weight) < 1.0:
            raise ValueError(f"min_weight must lie in (0, 1); got {min_weight!r}.")


def check_settings(
    *,
    n_components: Any,
    variance: Any,
    sigma: Any,
    fit_intercept: Any,
    init: Any,
    n_init: Any,
    max_iter: Any,
    tol: Any,
) -> None:
    """Validate the estimator's settings; raise before any computation."""
    _check_int(n_components, "n_components", 1)
    if not isinstance(variance, str) or variance not in VARIANCE_MODES:
        raise ValueError(f"variance must be one of {VARIANCE_MODES}; got {variance!r}.")
    if variance == "fixed":
        if sigma is None:
            raise ValueError('variance="fixed" needs the noise scale: pass sigma=<positive float>.')
    if sigma is not None:
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
            raise TypeError(f"sigma must be a positive float; got {sigma!r}.")
        if not np.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"sigma must be a positive, finite float; got {sigma!r}.")
        if variance != "fixed":
            raise ValueError(
                f'sigma is only used with variance="fixed"; got sigma={sigma!r} with '
                f"variance={variance!r}."
            )
    if not isinstance(fit_intercept, bool | np.bool_):
        raise TypeError(f"fit_intercept must be True or False; got {fit_intercept!r}.")
    if isinstance(init, str):
        if init not in INIT_STRATEGIES:
            raise ValueError(
                f"init must be one of {INIT_STRATEGIES}, a mapping of start values or an "
                f"EMResult; got {init!r}."
            )
    elif not isinstance(init, Mapping) and not hasattr(init, "weights"):
        raise TypeError(
            "init must be a string, a mapping of start values or an EMResult; "
            f"got {type(init).__name__}."
        )
    _check_int(n_init, "n_init", 1)
    _check_int(max_iter, "max_iter", 1)
    if (
        isinstance(tol, bool)
        or not isinstance(tol, numbers.Real)
        or not np.isfinite(tol)
        or tol < 0
    ):
        raise ValueError(f"tol must be a finite float >= 0 (0 runs exactly max_iter); got {tol!r}.")


def check_sizes(
    n_samples: int, n_features: int, n_components: int, *, fit_intercept: bool, variance: str
) -> None:
    """Refuse problems with too few rows for the components or their coefficients."""
    if n_components > n_samples:
        raise ValueError(
            f"n_components={n_components} is larger than the number of observations ({n_samples})."
        )
    n_coef = n_features + int(fit_intercept)
    per_component = n_coef + (variance != "fixed")
    needed = n_components * per_component
    if n_samples < needed:
        raise ValueError(
            f"Too few rows for the coefficients: {n_components} component(s) with {n_coef} "
            f"regression coefficient(s) each need at least {needed} observations; "
            f"got n_samples={n_samples}."
        )


def check_start_values(init: Any, n_components: int, n_features: int) -> dict[str, np.ndarray]:
    """Validate user-given start values (a mapping or an EMResult) and return them as arrays.

    ``coef`` is required; ``intercept`` defaults to zeros, ``weights`` to uniform and ``sigma``
    to None (estimated from the residuals of the start).
    """
    get = init.get if isinstance(init, Mapping) else lambda k, d=None: getattr(init, k, d)
    if isinstance(init, Mapping):
        unknown = set(init) - set(PARAM_NAMES)
        if unknown:
            raise ValueError(f"init has unknown key(s) {sorted(unknown)}; allowed: {PARAM_NAMES}.")
    K, p = n_components, n_features
    coef = get("coef")
    if coef is None:
        raise ValueError("init start values need 'coef' of shape (n_components, n_features).")
    coef = _as_float_array(coef, "init['coef']").reshape(K, p) if np.size(coef) == K * p else None
    if coef is None:
        raise ValueError(f"init['coef'] must have shape ({K}, {p}).")
    out = {"coef": coef}
    defaults = {"intercept": np.zeros(K), "weights": np.full(K, 1.0 / K), "sigma": None}
    for key, default in defaults.items():
        value = get(key)
        if value is None:
            out[key] = default
            continue
        arr = _as_float_array(value, f"init[{key!r}]").ravel()
        if arr.size == 1 and key == "sigma":
            arr = np.full(K, arr[0])
        if arr.shape != (K,):
            raise ValueError(f"init[{key!r}] must have shape ({K},); got {arr.shape}.")
        out[key] = arr
    for key, arr in out.items():
        if arr is not None:
            _check_finite(arr, f"init[{key!r}]")
    if np.any(out["weights"] <= 0):
        raise ValueError("init['weights'] must be positive.")
    out["weights"] = out["weights"] / out["weights"].sum()
    if out["sigma"] is not None and np.any(out["sigma"] <= 0):
        raise ValueError("init['sigma'] must be positive.")
    return out


def check_concomitant(concomitant: Any, n_samples: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate concomitant variables: numeric, finite, shape (n_samples, r) or (n_samples,).

    Returns
    -------
    W : ndarray of shape (n_samples, r)
    names : ndarray of str or None
        The column names of a pandas DataFrame.
    """
    names = _feature_names(concomitant)
    arr = _as_float_array(concomitant, "concomitant")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] != n_samples:
        raise ValueError(
            f"concomitant must have shape (n_samples, r) with n_samples={n_samples} rows, as X; "
            f"got shape {arr.shape}."
        )
    if arr.shape[1] == 0:
        raise ValueError("concomitant has 0 columns; pass None for constant mixing weights.")
    _check_finite(arr, "concomitant")
    return np.ascontiguousarray(arr), names


def check_shared(
    shared: Any, n_features: int, feature_names: Any = None, *, fit_intercept: bool = True
) -> tuple[np.ndarray, bool]:
    """Resolve ``shared`` (column names, integer indices or a boolean mask of X's columns; the
    string ``"intercept"`` shares the intercept) into a mask and a flag.

    Returns
    -------
    mask : ndarray of bool, shape (n_features,)
    shared_intercept : bool
    """
    mask = np.zeros(n_features, dtype=bool)
    if shared is None:
        return mask, False
    if isinstance(shared, str):
        shared = [shared]
    items = (
        list(np.asarray(shared, dtype=object).ravel()) if not isinstance(shared, list) else shared
    )
    if items and all(isinstance(v, bool | np.bool_) for v in items):
        if len(items) != n_features:
            raise ValueError(
                f"shared as a boolean mask must have one entry per feature ({n_features}); "
                f"got {len(items)}."
            )
        return np.asarray(items, dtype=bool), False
    names = [str(n) for n in feature_names] if feature_names is not None else None
    shared_intercept = False
    for item in items:
        if isinstance(item, str):
            if item == "intercept":
                if not fit_intercept:
                    raise ValueError("shared names 'intercept', but fit_intercept=False.")
                shared_intercept = True
            elif names is not None and item in names:
                mask[names.index(item)] = True
            else:
                known = f"the feature names {names}" if names is not None else "no feature names"
                raise ValueError(
                    f"shared names {item!r}, which is not a column of X (X has {known}); "
                    "give column names, integer indices, or 'intercept'."
                )
        elif isinstance(item, numbers.Integral) and not isinstance(item, bool | np.bool_):
            if not -n_features <= int(item) < n_features:
                raise ValueError(
                    f"shared index {item} is out of range for X with {n_features} feature(s)."
                )
            mask[int(item)] = True
        else:
            raise TypeError(
                "shared must hold column names, integer indices or a boolean mask; got "
                f"{item!r} ({type(item).__name__})."
            )
    return mask, shared_intercept
