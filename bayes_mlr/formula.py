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
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_mlr._validation import is_dask_collection

__all__ = [
    "Design",
    "FormulaError",
    "FormulaState",
    "design_from_formula",
    "evaluate_expression",
    "split_groups",
    "structured_design",
]

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
    response_spec : object
        formulaic's ``ModelSpec`` of the response (left-hand side), to compute the response
        of new data the same way.
    groups : ndarray of shape (n_samples,) or None
        The grouping column named after ``|`` (``"y ~ x | id"``), if any.
    group : str or None
        Its name.
    concomitant : pandas.DataFrame of shape (n_samples, r) or None
        The concomitant design (:func:`structured_design`), without an intercept column.
    concomitant_formula : str or None
    concomitant_spec : object
        formulaic's ``ModelSpec`` of the concomitant formula.
    shared : list of str or None
        Feature names (columns of ``X``) whose coefficient is shared; ``"intercept"`` when the
        shared formula names ``1``.
    shared_formula : str or None
    """

    X: Any
    y: np.ndarray
    feature_names: list[str]
    fit_intercept: bool
    response: str
    formula: str
    model_spec: Any
    response_spec: Any = None
    groups: np.ndarray | None = None
    group: str | None = None
    concomitant: Any = None
    concomitant_formula: str | None = None
    concomitant_spec: Any = None
    shared: list[str] | None = None
    shared_formula: str | None = None


# How the missing-values message tells the user to drop incomplete rows; callers that offer
# the choice under another name (the command line's --na-action) replace this text.
NA_DROP_HINT = "use na_action='drop'"

# A column is "mostly numbers" when more than this fraction of its non-missing values parse as
# numbers: then the other values are typos (a stray "?"), not categories.
MOSTLY_NUMERIC = 0.5
# At most this many offending values are listed in the message.
_SHOW_BAD_VALUES = 5

# ``^`` inside ``I(...)`` is Python's bitwise xor, not a power (R's I(x^2) is I(x**2) here).
_XOR_IN_I = re.compile(r"(?<![A-Za-z0-9_.])I\((?:[^()]|\([^()]*\))*\^")


def _top_level(text: str) -> str:
    """``text`` without what stands inside parentheses (``"x + I(a | b)"`` -> ``"x + I()"``)."""
    out, depth = [], 0
    for char in text:
        depth -= char == ")"
        if depth <= 0:
            out.append(char)
        depth += char == "("
    return "".join(out)


def split_groups(formula: str) -> tuple[str, str | None]:
    """Split flexmix's grouping term off a formula: ``"y ~ x | id"`` -> ``("y ~ x", "id")``.

    Only a ``|`` outside parentheses counts (``I(a | b)`` is Python's bitwise or).

    >>> split_groups("y ~ x + I(x**2) | id")
    ('y ~ x + I(x**2)', 'id')
    >>> split_groups("y ~ x")
    ('y ~ x', None)
    """
    if "~" not in formula:
        return formula, None
    lhs, rhs = formula.split("~", 1)
    top = _top_level(rhs)
    if "|" not in top:
        return formula, None
    if top.count("|") > 1:
        raise FormulaError(f"formula {formula!r}: only one grouping term '| g' is allowed")
    # the position of the top-level bar in rhs: walk rhs with the same depth rule
    depth, cut = 0, None
    for i, char in enumerate(rhs):
        depth -= char == ")"
        if depth <= 0 and char == "|":
            cut = i
            break
        depth += char == "("
    group = rhs[cut + 1 :].strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", group):
        raise FormulaError(
            f"formula {formula!r}: the grouping term after '|' must be one column name "
            f"(as in 'y ~ x | id'); got {group!r}"
        )
    return f"{lhs.rstrip()} ~ {rhs[:cut].strip()}", group


def _check_formula_text(formula: str) -> None:
    """Refuse, before any evaluation, formula syntax that bayes_mlr does not (yet) model."""
    if _XOR_IN_I.search(formula):
        raise FormulaError(
            f"formula {formula!r}: '^' inside I(...) is Python's bitwise xor, not a power; "
            "write the power as I(x**2)"
        )


def _check_numeric_columns(formula: str, frame: Any) -> None:
    """Refuse a text column of the formula that is mostly numbers with a few stray values.

    pandas reads a CSV column of numbers with one stray ``"?"`` as text, and formulaic would
    encode it as a categorical variable with one dummy column per distinct number. A column
    whose non-missing values parse as numbers for more than :data:`MOSTLY_NUMERIC` of them is
    taken to be a numeric column with bad values; genuinely categorical columns pass.
    """
    import formulaic
    import pandas as pd

    try:
        variables = formulaic.Formula(formula).required_variables
    except Exception:  # syntax errors are reported by the evaluation, with formulaic's message
        return
    for name in frame.columns:
        if name not in variables:
            continue
        column = frame[name]
        if not (pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column)):
            continue
        present = column[column.notna()]
        if len(present) == 0:
            continue
        values = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
        bad = present[values.isna()]
        if len(bad) == 0 or (len(present) - len(bad)) <= MOSTLY_NUMERIC * len(present):
            continue
        shown = ", ".join(f"{v!r} (row {i})" for i, v in bad.iloc[:_SHOW_BAD_VALUES].items())
        more = f" and {len(bad) - _SHOW_BAD_VALUES} more" if len(bad) > _SHOW_BAD_VALUES else ""
        rows = (
            "rows count from 0 at the first row below a file's header"
            if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
            else "rows are labels of the data frame's index"
        )
        raise FormulaError(
            f"column {str(name)!r} holds numbers, but {len(bad)} of its {len(present)} values "
            f"{'is not a number' if len(bad) == 1 else 'are not numbers'}: {shown}{more} "
            f"({rows}). Correct or remove those rows, or read "
            "them as missing (e.g. pandas.read_csv(..., na_values=['?']))"
        )


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
        The formula has no response or several, no feature, a syntax error, a grouping term
        (``y ~ x | g``, not supported yet) or ``^`` inside ``I(...)`` (write ``I(x**2)``);
        names a column that the data lack; uses a text column that is mostly numbers (a stray
        ``"?"``: the message names the column, the bad values and their rows); or
        (``na_action="raise"``) meets missing values. The message is one line.

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
    _check_formula_text(formula)
    main, group = split_groups(formula)
    if group is not None:
        return _with_groups(formula, main, group, data, na_action)
    if is_dask_collection(data):
        return _design_from_dask(formula, data, na_action)
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    _check_numeric_columns(formula, frame)
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
            message += f" Remove or impute the missing values (or {NA_DROP_HINT})."
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
        response_spec=lhs.model_spec,
    )


def _with_groups(formula: str, main: str, group: str, data: Any, na_action: str) -> Design:
    """The design of ``main`` with the grouping column ``group`` (rows dropped alike)."""
    import dataclasses

    import pandas as pd

    if is_dask_collection(data):
        raise FormulaError(
            f"formula {formula!r}: grouping ('| {group}') needs the data in memory, not Dask"
        )
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    if group not in frame.columns:
        raise FormulaError(
            f"formula {formula!r}: the grouping column {group!r} is not in the data (columns: "
            f"{', '.join(map(str, frame.columns))})"
        )
    labels = frame[group]
    if labels.isna().any():
        if na_action != "drop":
            raise FormulaError(
                f"formula {formula!r}: the grouping column {group!r} has "
                f"{int(labels.isna().sum())} missing value(s) ({NA_DROP_HINT})"
            )
        frame = frame[labels.notna()]
    design = design_from_formula(main, frame, na_action=na_action)
    groups = frame[group].loc[design.X.index].to_numpy()
    return dataclasses.replace(design, formula=formula, groups=groups, group=group)


def _rhs_terms(formula: str, what: str) -> str:
    """The right-hand side of a one-sided formula such as ``"~ z1 + C(z2)"``."""
    text = formula.strip()
    if not text.startswith("~") or not text[1:].strip():
        raise FormulaError(f"{what} must be a one-sided formula such as '~ z'; got {formula!r}")
    return text[1:].strip()


def _names_one(rhs: str) -> bool:
    """Whether a right-hand side writes the intercept ``1`` as a term (``"1 + w"``)."""
    return any(term.strip() == "1" for term in _top_level(rhs).split("+"))


def structured_design(
    formula: str,
    data: Any,
    *,
    concomitant: str | None = None,
    shared: str | None = None,
    na_action: str = "raise",
) -> Design:
    """:func:`design_from_formula` plus concomitant variables and shared coefficients.

    Parameters
    ----------
    formula : str
        The model formula, optionally with a grouping term (``"y ~ x | id"``).
    data : pandas.DataFrame or mapping of column name to array
    concomitant : str, optional
        A one-sided formula of the concomitant variables, e.g. ``"~ z1 + C(z2)"``; encoded like
        the main formula (its intercept is the mixing model's own).
    shared : str, optional
        A one-sided formula of the variables whose coefficient is shared by all components,
        e.g. ``"~ w"``; its columns are added to ``X``. Writing ``1`` as a term
        (``"~ 1 + w"``, or ``"~ 1"`` alone) shares the intercept too (flexmix's
        ``FLXMRglmfix(fixed = ~ 1)``).
    na_action : {"raise", "drop", "ignore"}

    Returns
    -------
    Design
        With ``concomitant`` (a float DataFrame), ``concomitant_spec``, ``shared`` (feature
        names, and ``"intercept"``) set as asked.
    """
    import dataclasses

    import pandas as pd

    main, group = split_groups(formula)
    shared_names: list[str] = []
    combined = formula
    if shared is not None:
        rhs = _rhs_terms(shared, "shared")
        share_one = _names_one(rhs)
        terms = [t for t in _top_level(rhs).split("+") if t.strip() not in ("1", "0", "-1")]
        if terms:
            lhs_main, rhs_main = main.split("~", 1)
            combined = f"{lhs_main.rstrip()} ~ {rhs_main.strip()} + {rhs}"
            if group is not None:
                combined += f" | {group}"
        if share_one:
            shared_names.append("intercept")
    design = design_from_formula(combined, data, na_action=na_action)
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    if shared is not None:
        rhs = _rhs_terms(shared, "shared")
        if any(t.strip() not in ("1", "0", "-1") for t in _top_level(rhs).split("+")):
            import formulaic

            try:
                own = formulaic.model_matrix(f"~ {rhs}", frame.loc[design.X.index])
            except Exception as exc:
                raise FormulaError(f"shared formula {shared!r}: {_one_line(exc)}") from exc
            names = [str(c) for c in own.columns if str(c) != "Intercept"]
            missing = [n for n in names if n not in design.feature_names]
            if missing:
                raise FormulaError(
                    f"shared formula {shared!r} gives columns {missing} that the model's design "
                    f"does not have (its columns: {design.feature_names}); write the shared "
                    "variables as plain terms"
                )
            shared_names.extend(names)
        if "intercept" in shared_names and not design.fit_intercept:
            # flexmix's spelling: 'y ~ 0 + x' with fixed = ~ 1 is one intercept for all
            design = dataclasses.replace(design, fit_intercept=True)
    conc = conc_spec = None
    if concomitant is not None:
        import formulaic

        rhs = _rhs_terms(concomitant, "concomitant")
        try:
            matrix = formulaic.model_matrix(
                f"~ {rhs}", frame.loc[design.X.index], na_action="raise"
            )
        except Exception as exc:
            raise FormulaError(f"concomitant formula {concomitant!r}: {_one_line(exc)}") from exc
        conc_spec = matrix.model_spec
        conc = pd.DataFrame(matrix).drop(columns="Intercept", errors="ignore").astype(float)
        conc.columns = [str(c) for c in conc.columns]
        if conc.shape[1] == 0:
            raise FormulaError(
                f"concomitant formula {concomitant!r} has no variables; leave it out for "
                "constant mixing weights"
            )
    return dataclasses.replace(
        design,
        formula=formula,
        concomitant=conc,
        concomitant_formula=concomitant,
        concomitant_spec=conc_spec,
        shared=shared_names or None,
        shared_formula=shared,
    )


def _encode_partition(part, lhs_spec, rhs_spec, names: list[str]):
    """Encode one partition of a Dask DataFrame with the specs learned on the first one."""
    import pandas as pd
    from formulaic.errors import DataMismatchWarning

    part = _plain_strings(part)
    try:
        with warnings.catch_warnings():
            # a category the first partition lacked would silently become all-zero dummies
            warnings.simplefilter("error", DataMismatchWarning)
            rhs = pd.DataFrame(rhs_spec.get_model_matrix(part, na_action="raise"))
            lhs = pd.DataFrame(lhs_spec.get_model_matrix(part, na_action="raise"))
    except (DataMismatchWarning, ValueError) as exc:
        raise FormulaError(
            f"a partition of the Dask data cannot be encoded like the first one: "
            f"{_one_line(exc)} (the encoding, e.g. the categories, is learned on the first "
            "partition: make sure it holds every category, or encode the column beforehand)"
        ) from exc
    rhs.columns = [str(c) for c in rhs.columns]
    out = rhs[names].astype(float)
    out[_RESPONSE_COLUMN] = np.asarray(lhs.iloc[:, 0], dtype=float)
    return out


_RESPONSE_COLUMN = "__bayes_mlr_response__"


def _design_from_dask(formula: str, data: Any, na_action: str) -> Design:
    """A formula over a Dask DataFrame: the encoding (categories, transform parameters) is
    learned on the first partition and applied lazily to every partition, so the data are never
    gathered. A category absent from the first partition, or a missing value, raises when that
    partition is read (``na_action="drop"`` is not available: it would misalign the rows)."""
    import pandas as pd

    if na_action == "drop":
        raise FormulaError(
            "na_action='drop' is not supported for Dask data; drop missing rows first "
            "(ddf.dropna()) so that every column stays aligned"
        )
    first = _plain_strings(data.get_partition(0).compute())
    design = design_from_formula(formula, first, na_action=na_action)
    lhs_spec = formulaic_lhs_spec(formula, first)
    names = design.feature_names
    meta = pd.DataFrame({c: pd.Series(dtype=float) for c in [*names, _RESPONSE_COLUMN]})
    encoded = data.map_partitions(_encode_partition, lhs_spec, design.model_spec, names, meta=meta)
    return Design(
        X=encoded[names],
        y=encoded[_RESPONSE_COLUMN],
        feature_names=names,
        fit_intercept=design.fit_intercept,
        response=design.response,
        formula=formula,
        model_spec=design.model_spec,
        response_spec=lhs_spec,
    )


def _plain_strings(frame: Any) -> Any:
    """Dask hands string columns over as ``string[pyarrow]``, which formulaic takes for
    numbers; as plain Python strings they are categorical, as in pandas."""
    import pandas as pd

    strings = [c for c, t in frame.dtypes.items() if isinstance(t, pd.StringDtype)]
    return frame.astype(dict.fromkeys(strings, object)) if strings else frame


def formulaic_lhs_spec(formula: str, frame: Any):
    """formulaic's ModelSpec of the response side of ``formula``, learned on ``frame``."""
    import formulaic

    return formulaic.model_matrix(formula, frame).lhs.model_spec


@dataclass(frozen=True)
class FormulaState:
    """What :meth:`MixtureOfRegressions.from_formula` keeps to encode new data frames."""

    formula: str
    response: str
    feature_names: list[str]
    model_spec: Any  # formulaic ModelSpec of the right-hand side
    result: Any  # EMResult: the fit it belongs to: a later plain fit() makes the state stale
    response_spec: Any = None  # of the response; None in models saved before it was kept
    group: str | None = None  # the grouping column of "y ~ x | id"
    concomitant_formula: str | None = None
    concomitant_spec: Any = None  # formulaic ModelSpec of the concomitant formula
    concomitant_names: list[str] | None = None
    shared_formula: str | None = None
    offset: str | None = None  # the expression of from_formula(offset=...)
    trials: str | None = None  # the expression of from_formula(trials=...)

    def groups_of(self, data: Any) -> np.ndarray | None:
        """The grouping column of a data frame (None without groups or without the column)."""
        if self.group is None or self.group not in getattr(data, "columns", ()):
            return None
        return np.asarray(data[self.group])

    def concomitant_of(self, data: Any) -> np.ndarray | None:
        """The concomitant design of a raw data frame (None when the model has none or the
        frame lacks its variables)."""
        if self.concomitant_spec is None:
            return None
        needed = set(self.concomitant_spec.required_variables)
        if not needed <= set(map(str, getattr(data, "columns", ()))):
            return None
        matrix = self.concomitant_spec.get_model_matrix(data, na_action="ignore")
        matrix.columns = [str(c) for c in matrix.columns]
        return np.asarray(matrix[self.concomitant_names], dtype=float)

    def response_of(self, data: Any) -> np.ndarray | None:
        """The response term computed from the raw columns of ``data`` (a pandas DataFrame),
        or None when ``data`` lacks the columns it needs (e.g. an encoded design)."""
        if self.response_spec is None or not set(self.response_spec.required_variables) <= set(
            map(str, data.columns)
        ):
            return None
        matrix = self.response_spec.get_model_matrix(data, na_action="ignore")
        matrix.columns = [str(c) for c in matrix.columns]
        # by name: a reloaded spec is rebuilt from its formula text, with an intercept column
        return np.asarray(matrix[self.response], dtype=float)

    def encode(self, data: Any) -> Any:
        """The design matrix (a float DataFrame with the fitted feature names) of raw data."""
        from formulaic.errors import DataMismatchWarning, FormulaicError

        try:
            with warnings.catch_warnings():
                # an unseen category would silently become an all-zero dummy row
                warnings.simplefilter("error", DataMismatchWarning)
                matrix = self.model_spec.get_model_matrix(data, na_action="ignore")
        except (FormulaicError, DataMismatchWarning) as exc:
            text = str(exc).strip().splitlines()
            raise FormulaError(
                f"X could not be encoded with the formula {self.formula!r}: "
                f"{text[0] if text else type(exc).__name__} (columns in X: "
                f"{', '.join(map(str, data.columns))})"
            ) from exc
        matrix.columns = [str(c) for c in matrix.columns]
        return matrix[self.feature_names].astype(float)


def evaluate_expression(expression: str, data: Any, name: str) -> np.ndarray:
    """A numeric expression over the columns of a data frame, one value per row: the
    ``offset`` (``"np.log(Hours)"``) or ``trials`` (``"Total"``) of a formula fit.

    Evaluated by formulaic as one Python term (``{...}``), so ``np`` and the columns are in
    scope, and arithmetic such as ``"Total - Deaths"`` means what it says.

    Raises
    ------
    FormulaError
        The expression cannot be evaluated on ``data`` or does not give one number per row.
    """
    import formulaic

    if not isinstance(expression, str) or not expression.strip():
        raise TypeError(f"{name} must be an expression over the data's columns; got {expression!r}")
    if hasattr(data, "map_partitions"):  # a Dask DataFrame
        raise FormulaError(f"{name}={expression!r}: pass Dask data's {name} as an array")
    try:
        matrix = formulaic.model_matrix(f"{{{expression}}} - 1", data, na_action="ignore")
    except Exception as exc:
        raise FormulaError(f"{name}={expression!r}: {_one_line(exc)}") from exc
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.shape[1] != 1:
        raise FormulaError(
            f"{name}={expression!r} must give one number per row; got {values.shape[1]} columns"
        )
    return values[:, 0]
