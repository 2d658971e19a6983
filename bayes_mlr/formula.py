"""Model formulas (``"price ~ size + age"``) to the arrays the estimator takes, via formulaic.

One helper, :func:`design_from_formula`, shared by the command line, the TOML model specs and
``MixtureOfRegressions.from_formula``: it builds ``y`` and the feature matrix ``X`` from a data
frame, drops formulaic's ``Intercept`` column (the estimator's ``fit_intercept`` supplies the
intercept) and reports whether the formula asked for one (``- 1`` or ``+ 0`` means
``fit_intercept=False``). Categorical columns are one-hot encoded by formulaic, with a reference
level dropped when the formula has an intercept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Design", "FormulaError", "design_from_formula"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m|[⧚⧛]")


class FormulaError(ValueError):
    """The formula cannot be parsed or evaluated on the data."""


@dataclass(frozen=True)
class Design:
    """The arrays a formula describes.

    Attributes
    ----------
    X : pandas.DataFrame of shape (n_samples, n_features)
        Float columns named after the formula's terms (``"size"``, ``"g[T.b]"``,
        ``"np.log(x)"``), without an intercept column.
    y : ndarray of shape (n_samples,)
    feature_names : list of str
        ``list(X.columns)``.
    fit_intercept : bool
        False when the formula removed the intercept (``- 1`` or ``+ 0``).
    response : str
        Name of the response term (``"price"``, ``"np.log(price)"``).
    formula : str
        The formula as given.
    model_spec : object
        formulaic's ``ModelSpec`` of the right-hand side; ``model_spec.get_model_matrix(new)``
        encodes new data the same way (same categories, same transforms).
    """

    X: Any
    y: np.ndarray
    feature_names: list[str]
    fit_intercept: bool
    response: str
    formula: str
    model_spec: Any


def _one_line(exc: BaseException) -> str:
    text = _ANSI.sub("", str(exc)).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def design_from_formula(formula: str, data: Any, *, na_action: str = "raise") -> Design:
    """Build ``X``, ``y`` and the intercept setting from a formula and a data frame.

    Parameters
    ----------
    formula : str
        A Wilkinson formula with one response, e.g. ``"price ~ size + age"``,
        ``"y ~ x + C(group)"``, ``"np.log(y) ~ x - 1"``, ``"y ~ ."`` (all other columns).
        The intercept is not a feature: ``- 1`` or ``+ 0`` sets ``fit_intercept=False``.
    data : pandas.DataFrame or mapping of column name to array
    na_action : {"raise", "drop", "ignore"}, default="raise"
        What to do with rows that have missing values in the variables the formula uses.

    Returns
    -------
    Design

    Raises
    ------
    FormulaError
        The formula has no response or several, no feature, a syntax error, names a column
        that the data lack, or (``na_action="raise"``) meets missing values. The message is one
        line.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayes_mlr.formula import design_from_formula
    >>> df = pd.DataFrame({"y": [1.0, 2.0, 4.0], "x": [0.0, 1.0, 2.0], "g": ["a", "b", "a"]})
    >>> d = design_from_formula("y ~ x + g", df)
    >>> d.feature_names, d.fit_intercept
    (['x', 'g[T.b]'], True)
    >>> design_from_formula("y ~ x - 1", df).fit_intercept
    False
    """
    import formulaic
    import pandas as pd

    if not isinstance(formula, str) or "~" not in formula:
        raise FormulaError(
            f"formula must be a string like 'y ~ x1 + x2' with the response left of '~'; "
            f"got {formula!r}"
        )
    lhs_text = formula.split("~", 1)[0].strip()
    if not lhs_text:
        raise FormulaError(f"formula {formula!r} has no response: write it as 'y ~ x1 + x2'")
    if na_action not in ("raise", "drop", "ignore"):
        raise FormulaError(f"na_action must be 'raise', 'drop' or 'ignore'; got {na_action!r}")
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    try:
        matrices = formulaic.model_matrix(formula, frame, na_action=na_action)
    except formulaic.errors.FormulaSyntaxError as exc:
        raise FormulaError(f"formula {formula!r} has a syntax error: {_one_line(exc)}") from exc
    except formulaic.errors.FactorEvaluationError as exc:
        columns = ", ".join(map(str, frame.columns))
        raise FormulaError(
            f"formula {formula!r} cannot be evaluated: {_one_line(exc)} "
            f"(columns in the data: {columns})"
        ) from exc
    except ValueError as exc:
        message = _one_line(exc)
        if "null values" in message:
            message += " Remove or impute the missing values (or use na_action='drop')."
        raise FormulaError(f"formula {formula!r}: {message}") from exc
    except formulaic.errors.FormulaicError as exc:
        raise FormulaError(f"formula {formula!r}: {_one_line(exc)}") from exc
    lhs, rhs = matrices.lhs, matrices.rhs
    if lhs.shape[1] != 1 and "+" not in lhs_text:
        raise FormulaError(
            f"formula {formula!r}: the response {lhs_text!r} must be numeric; it was encoded "
            f"as a categorical variable with columns {list(lhs.columns)}"
        )
    if lhs.shape[1] != 1:
        raise FormulaError(
            f"formula {formula!r} must have exactly one response left of '~'; "
            f"got {lhs.shape[1]} columns: {list(lhs.columns)}"
        )
    fit_intercept = "Intercept" in rhs.columns
    X = pd.DataFrame(rhs).drop(columns="Intercept", errors="ignore")
    if X.shape[1] == 0:
        raise FormulaError(
            f"formula {formula!r} has no features right of '~' (the intercept is not a "
            "feature): add at least one column, e.g. 'y ~ x'"
        )
    X = X.astype(float)
    X.columns = [str(c) for c in X.columns]
    y = np.ascontiguousarray(np.asarray(lhs.iloc[:, 0], dtype=float))
    return Design(
        X=X,
        y=y,
        feature_names=list(X.columns),
        fit_intercept=fit_intercept,
        response=str(lhs.columns[0]),
        formula=formula,
        model_spec=rhs.model_spec,
    )
