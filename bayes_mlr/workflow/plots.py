"""Figures of a fitted mixture of regressions and its posterior.

* :func:`plot_fit`: the data coloured by responsibility with each component's fitted curve, an
  EM band (delta method from the observed information) and a posterior band. A formula model
  drawn with its data frame (``data=``) gets one panel per *original* variable of the formula
  (``y ~ x + I(x**2)`` shows the fitted curve in ``x``); other models one panel per feature.
  With several panels the points are partial residuals (the other variables' contribution moved
  to their typical value).
* :func:`plot_mixing`: for a model with concomitant variables, each component's prior
  probability against each concomitant variable (curves with a rug; bars per level).
* :func:`plot_log_likelihood_trace`: EM's log-likelihood per iteration and its gap to the end.
* :func:`plot_trace`: per parameter group, the marginal densities (left, with titles) and the
  chains (right), coloured by component like ``fit.png``, with a component legend.
* :func:`plot_rank`: ArviZ's rank plot (``arviz_plots``, matplotlib backend), one-line titles.
* :func:`plot_forest`: EM (normal approximation) beside the posterior, one panel per parameter
  group (weights, intercepts, the slopes of each feature, sigma), so every group has its scale.
* :func:`plot_ppc`: posterior predictive check, the density of the observed ``y`` against the
  densities of replicated data sets.
* :func:`write_plots` writes them all (PNG, optionally a PDF or SVG copy of each) and
  :func:`save_figure` one.

A band that cannot be computed (singular information, NaN standard errors, a posterior without
coefficients) is never dropped silently: :class:`MissingBandWarning` says which and why.

matplotlib and arviz_plots are imported inside the functions. Each function returns a
``matplotlib.figure.Figure``; our own figures are created without pyplot (no global state).
"""

from __future__ import annotations

import io as _io
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PLOT_FILES",
    "VECTOR_FORMATS",
    "MissingBandWarning",
    "plot_fit",
    "plot_forest",
    "plot_log_likelihood_trace",
    "plot_mixing",
    "plot_names",
    "plot_ppc",
    "plot_rank",
    "plot_trace",
    "save_figure",
    "write_plots",
]

#: File names that :func:`write_plots` writes, by plot.
PLOT_FILES = {
    "fit": "fit.png",
    "mixing": "mixing.png",
    "em_trace": "em_trace.png",
    "trace": "trace.png",
    "rank": "rank.png",
    "forest": "forest.png",
    "ppc": "ppc.png",
}
#: Vector formats :func:`write_plots` can add beside each PNG.
VECTOR_FORMATS = ("pdf", "svg")
#: Resolution of the PNG files (dots per inch): sharp in print and on high-density screens.
DEFAULT_DPI = 150
_PARAMS = ("weights", "intercept", "coef", "sigma", "df")
_MAX_PANELS = 9
_RUG_Y = -0.04  # where plot_mixing draws its rug, below the probabilities
_MAX_BAND_DRAWS = 1000
_GRID_SIZE = 200


class MissingBandWarning(UserWarning):
    """A band or interval of a figure could not be computed and is not drawn."""


def _colors(n_components: int) -> np.ndarray:
    """One RGB colour per component (matplotlib's tab10, cycling)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return np.array([cmap(j % 10)[:3] for j in range(n_components)])


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(
    fig: Any,
    path: str | Path,
    *,
    dpi: int = DEFAULT_DPI,
    vector_format: str | None = None,
) -> Path:
    """Write ``fig`` atomically in the format of ``path``'s suffix, then close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : path-like
        ``.png`` (or ``.pdf``, ``.svg``).
    dpi : int, default=150
        Resolution of raster output (and of rasterized artists in vector output).
    vector_format : {"pdf", "svg"}, optional
        Also write the figure in this vector format, beside ``path`` with that suffix.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from bayes_mlr.workflow.io import write_bytes

    path = Path(path)
    _check_vector_format(vector_format)
    fmt = path.suffix.lstrip(".").lower() or "png"
    targets = [(path, fmt)]
    if vector_format is not None and vector_format != fmt:
        targets.append((path.with_suffix(f".{vector_format}"), vector_format))
    try:
        for target, kind in targets:
            buffer = _io.BytesIO()
            metadata = {"Software": None} if kind == "png" else None
            fig.savefig(buffer, format=kind, dpi=dpi, metadata=metadata)
            write_bytes(target, buffer.getvalue())
    finally:
        _close(fig)
    return path


def _check_vector_format(vector_format: str | None) -> None:
    if vector_format is not None and vector_format not in VECTOR_FORMATS:
        raise ValueError(
            f"vector_format must be one of {', '.join(VECTOR_FORMATS)} or None; "
            f"got {vector_format!r}"
        )


def _close(fig: Any) -> None:
    """Release a pyplot-managed figure (arviz_plots makes those); ours have no manager."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


def _warn_band(message: str) -> None:
    warnings.warn(message, MissingBandWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------
# Posterior draws as arrays
# --------------------------------------------------------------------------------------------


def _posterior_dataset(posterior: Any) -> Any:
    try:
        return posterior["posterior"].to_dataset()
    except KeyError:
        return None


def _stacked(post: Any, name: str, K: int) -> np.ndarray:
    """Draws of one variable as (S, K, ...) (a shared sigma is repeated over components)."""
    da = post[name]
    if "component" not in da.dims:
        da = da.expand_dims(component=K)
    da = da.transpose("chain", "draw", "component", ...)
    values = da.to_numpy()
    return values.reshape(-1, *values.shape[2:])


def _posterior_draws(posterior: Any, K: int, p: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Thinned posterior draws of the intercepts (S, K) and coefficients (S, K, p)."""
    if posterior is None:
        return None
    post = _posterior_dataset(posterior)
    if post is None or "coef" not in post:
        _warn_band(
            "fit plot: the posterior has no 'coef' draws, so no posterior curves or bands are "
            "drawn (only EM's)"
        )
        return None
    coef = _stacked(post, "coef", K)
    intercept = _stacked(post, "intercept", K) if "intercept" in post else np.zeros(coef.shape[:2])
    step = max(1, math.ceil(coef.shape[0] / _MAX_BAND_DRAWS))
    return intercept[::step], coef[::step]


def _em_line_covariance(model: Any) -> list[np.ndarray] | None:
    """Covariance of ``[intercept_j, coef_j]`` per component (NaN where singular).

    A grouped, concomitant or shared-coefficient fit takes its own observed information
    (``model.covariance_``, where a shared coefficient is one parameter of every line).
    None, with a :class:`MissingBandWarning`, when the covariance cannot be computed.
    """
    from bayes_mlr.frequentist.information import SingularInformationWarning, covariance

    K, p = model.coef_.shape
    try:
        with warnings.catch_warnings():
            # Known and already reported when the standard errors were computed; the bands of
            # the affected components are reported below (NaN entries).
            warnings.simplefilter("ignore", SingularInformationWarning)
            if getattr(model.result_, "structured", False):
                cov, labels = model._covariance_and_labels()
            else:
                cov, labels = covariance(
                    model._fit_X,
                    model._fit_y,
                    model.weights_,
                    model.intercept_,
                    model.coef_,
                    model.sigma_,
                    variance=model.variance,
                    fit_intercept=bool(model.fit_intercept),
                    sample_weight=model._fit_sample_weight,
                )
    except (ValueError, np.linalg.LinAlgError) as exc:
        _warn_band(f"fit plot: no EM bands, the covariance of the estimates failed: {exc}")
        return None
    index = {label: i for i, label in enumerate(labels)}
    blocks = []
    for j in range(K):
        names = ([f"intercept[{j}]"] if model.fit_intercept else []) + [
            f"coef[{j},{k}]" for k in range(p)
        ]
        if not all(n in index for n in names):
            _warn_band(f"fit plot: no EM bands, the covariance lacks {names} of component {j}")
            return None
        rows = [index[n] for n in names]
        block = cov[np.ix_(rows, rows)]
        if not model.fit_intercept:  # pad a zero-variance intercept
            block = np.pad(block, ((1, 0), (1, 0)))
        blocks.append(block)
    return blocks


# --------------------------------------------------------------------------------------------
# Data with the fitted curves
# --------------------------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _expit(eta: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(eta)


def _identity(values: np.ndarray) -> np.ndarray:
    return values


#: Link and inverse link of each family with a non-identity link (canonical links).
_LINKS = {"poisson": (np.log, np.exp), "binomial": (_logit, _expit)}
_LOG_OF = re.compile(r"^\s*(?:np\.|numpy\.)?log\((?P<inner>.+)\)\s*$")


@dataclass
class _ResponseScale:
    """How :func:`plot_fit` draws a family's response and component means.

    ``shown`` (n,) is the response as drawn: ``y`` (Gaussian, Student-t), the rate
    ``y / exp(offset)`` (Poisson: the curves are ``exp(η)``, the mean per unit of exposure) or
    the proportion ``y / trials`` (binomial: the curves are ``expit(η + reference)``).
    ``offset`` (n,) is the part of each row's linear predictor that ``shown`` still carries (a
    binomial offset), ``reference`` the offset of the curves (its mean). ``link`` and
    ``inverse`` map between the response and the linear predictor.
    """

    family: str
    shown: np.ndarray
    offset: np.ndarray | float
    reference: float
    label: str
    link: Any = _identity
    inverse: Any = _identity
    divisor: np.ndarray | None = None  # shown = y / divisor (exposure, trials)

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """Where the shown response lives: counts from 0, proportions in [0, 1]."""
        return {"poisson": (0.0, None), "binomial": (0.0, 1.0)}.get(self.family, (None, None))

    def show(self, values: np.ndarray) -> np.ndarray:
        """Responses (``y`` or replicates of it, last axis the rows) as drawn."""
        return values if self.divisor is None else values / self.divisor

    def partial(self, eta_full: np.ndarray, eta_part: np.ndarray) -> np.ndarray:
        """Partial residuals on the link scale, drawn on the response scale: each observation
        moved by the change of its component's linear predictor when the other variables go
        to their typical values (``y - μ(x) + μ(x')`` for an identity link; a count or
        proportion of 0 stays 0, a proportion of 1 stays 1)."""
        with np.errstate(divide="ignore"):
            moved = self.link(self.shown) - (eta_full + self.offset) + (eta_part + self.reference)
        return self.inverse(moved)


def _response_scale(
    model: Any, y: np.ndarray, offset: Any, trials: Any, response: str
) -> _ResponseScale:
    """The :class:`_ResponseScale` of a fit's family for the rows ``y`` with their ``offset``
    and ``trials`` (None where the fit has none)."""
    family = model.result_.family.name
    state = model._formula_state()
    if family == "poisson":
        if offset is None:
            return _ResponseScale(family, y, 0.0, 0.0, response, *_LINKS[family])
        expression = getattr(state, "offset", None)
        match = _LOG_OF.match(expression) if expression else None
        exposure = match["inner"].strip() if match else f"exp({expression or 'offset'})"
        divisor = np.exp(np.asarray(offset, dtype=float))
        label = f"{response} / {exposure}"
        return _ResponseScale(family, y / divisor, 0.0, 0.0, label, *_LINKS[family], divisor)
    if family == "binomial":
        m = np.ones_like(y) if trials is None else np.asarray(trials, dtype=float)
        expression = getattr(state, "trials", None) or "trials"
        label = f"{response} / {expression}" if trials is not None else f"{response} (0/1)"
        rows = 0.0 if offset is None else np.asarray(offset, dtype=float)
        reference = float(np.mean(rows)) if offset is not None else 0.0
        return _ResponseScale(family, y / m, rows, reference, label, *_LINKS[family], m)
    return _ResponseScale(family, y, 0.0, 0.0, response)


def _family_phrase(model: Any) -> str:
    """The component model for titles: ``variance = component`` (Gaussian), ``Poisson, offset
    np.log(Hours)``, ``binomial, trials Total``, ``Student-t, df = 2.1, 7.9``."""
    family = model.result_.family
    state = model._formula_state()
    structure = model._training_structure()
    if family.name == "poisson" or family.name == "binomial":
        text = "Poisson" if family.name == "poisson" else "binomial"
        for key in ("offset", "trials"):
            if structure.get(key) is not None:
                text += f", {key} {getattr(state, key, None) or '(array)'}"
        return text
    text = f"variance = {model.variance}"
    if family.name == "student_t":
        df = np.asarray(getattr(model, "df_", []), dtype=float)
        fixed = getattr(family, "df", None) is not None
        values = (
            f"{float(df[0]):.3g} (fixed)"
            if fixed
            else ", ".join(f"{v:.3g}" + (" (bound)" if _at_df_bound(v) else "") for v in df)
        )
        text = f"Student-t errors, df = {values}, {text}"
    return text


@dataclass
class _Panel:
    """One panel of :func:`plot_fit`: a variable on the x axis and the encoded rows to draw.

    ``x`` (n,) places the points; ``grid`` (T,) the curve, whose encoded features are
    ``grid_features`` (T, p); ``partial_features`` (n, p) are the encoded observations with every
    other variable at its typical value (the partial residuals). ``levels`` names the
    categories of a categorical variable (then ``x`` and ``grid`` are level codes). ``rows``
    (n,) marks the observations the panel shows (None: all), for a panel of one level of a
    categorical variable that interacts with ``name``.
    """

    name: str
    x: np.ndarray
    grid: np.ndarray
    grid_features: np.ndarray
    partial_features: np.ndarray
    held: str
    levels: list[str] | None = None
    rows: np.ndarray | None = None


def _typical(column: Any, by_level: bool = False) -> Any:
    """The mean of a numeric column, the most frequent value of any other (or of a numeric
    column that the formula encodes by level, ``by_level``)."""
    if not by_level and not _is_categorical(column):
        return float(column.mean())
    return column.mode(dropna=True).iloc[0]


def _is_categorical(column: Any) -> bool:
    import pandas as pd

    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _by_level(frame: Any, variable: str, encoded_names: Sequence[str]) -> bool:
    """Whether a formula treats ``variable`` as categorical: a text column, or a number it
    encodes by level (``C(Diet)`` gives the columns ``C(Diet)[T.2]``, ...)."""
    starts = (f"{variable}[", f"C({variable})", f"C({variable},")
    return _is_categorical(frame[variable]) or any(n.startswith(starts) for n in encoded_names)


def _format_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _feature_panels(X: np.ndarray, names: Sequence[str]) -> list[_Panel]:
    """One panel per column of a plain feature matrix, the others at their mean."""
    n, p = X.shape
    mean = X.mean(axis=0)
    panels = []
    for f in range(min(p, _MAX_PANELS)):
        grid = np.linspace(X[:, f].min(), X[:, f].max(), _GRID_SIZE)
        grid_features = np.tile(mean, (grid.size, 1))
        grid_features[:, f] = grid
        partial = np.tile(mean, (n, 1))
        partial[:, f] = X[:, f]
        held = "other features at their mean" if p > 1 else ""
        panels.append(_Panel(names[f], X[:, f], grid, grid_features, partial, held))
    return panels


def _formula_panels(frame: Any, model_spec: Any, feature_names: Sequence[str]) -> list[_Panel]:
    """One panel per original variable of a formula's right-hand side.

    Curves and partial residuals are encoded through ``model_spec`` (the transforms and
    categories of the fit), with the other variables at their typical values. A numeric
    variable that shares a term with categorical ones (``y ~ g * x``) gets one panel per
    observed combination of their levels instead, each over the range of ``x`` at that
    combination, and the categorical variables get no panel of their own: held at one value of
    ``x``, their comparison would hold only there (and may lie where a level has no data).
    """
    import pandas as pd

    populated = _populated(model_spec, frame)
    required = {str(v) for v in populated.required_variables}
    variables = [str(c) for c in frame.columns if str(c) in required]
    by_level = {v: _by_level(frame, v, feature_names) for v in variables}
    typical = {v: _typical(frame[v], by_level[v]) for v in variables}
    n = len(frame)

    def encode(table: Any) -> np.ndarray:
        with warnings.catch_warnings():
            # the one-row-per-level grids hold only some categories: formulaic says so
            from formulaic.errors import DataMismatchWarning

            warnings.simplefilter("ignore", DataMismatchWarning)
            matrix = pd.DataFrame(model_spec.get_model_matrix(table, na_action="ignore"))
        if len(matrix) != len(table):  # pragma: no cover - na_action="ignore" keeps every row
            raise ValueError("the formula dropped rows while encoding the plot grid")
        matrix.columns = [str(c) for c in matrix.columns]
        return matrix[list(feature_names)].to_numpy(dtype=float)

    def held_at(table: Any, keep: str) -> Any:
        out = table.copy()
        for v in variables:
            if v != keep:
                # a mean of integers is not an integer: numeric columns are held as floats
                dtype = frame[v].dtype if by_level[v] else float
                out[v] = pd.Series([typical[v]] * len(out), index=out.index, dtype=dtype)
        return out

    partners = _interactions(populated, variables)
    panels: list[_Panel] = []
    for v in variables:
        if len(panels) >= _MAX_PANELS:
            break
        column = frame[v]
        if by_level[v] and any(not by_level[o] for o in partners[v]):
            continue  # drawn through the panels of the numeric variables it interacts with
        if by_level[v]:
            partial = encode(held_at(frame, v))
            cats = _levels_of(column)
            codes = {c: i for i, c in enumerate(cats)}
            x = column.map(codes).to_numpy(dtype=float)
            grid = np.arange(len(cats), dtype=float)
            base = held_at(frame.iloc[[0] * len(cats)].reset_index(drop=True), v)
            base[v] = pd.Series(cats, dtype=column.dtype)
            others = [f"{o} = {_format_value(typical[o])}" for o in variables if o != v]
            held = ("at " + ", ".join(others)) if others else ""
            panels.append(_Panel(v, x, grid, encode(base), partial, held, [str(c) for c in cats]))
            continue
        # A numeric variable that interacts with categorical ones (y ~ g * x) gets one panel
        # per observed combination of their levels, over the range of x at that combination:
        # one curve at the most frequent level would run where that level has no data.
        split = [o for o in variables if by_level[o] and o in partners[v]]
        combos = (
            frame[split].drop_duplicates().sort_values(split).to_dict("records") if split else [{}]
        )
        for combo in combos:
            rows = np.ones(n, dtype=bool)
            for o, level in combo.items():
                rows &= (frame[o] == level).to_numpy()
            keep = {v, *combo}
            partial = encode(_with_levels(held_at(frame, v), frame, combo))
            x = column.to_numpy(dtype=float)
            grid = np.linspace(np.nanmin(x[rows]), np.nanmax(x[rows]), _GRID_SIZE)
            base = _with_levels(
                held_at(frame.iloc[[0] * grid.size].reset_index(drop=True), v), frame, combo
            )
            base[v] = grid
            fixed = [f"{o} = {_format_value(level)}" for o, level in combo.items()]
            others = [f"{o} = {_format_value(typical[o])}" for o in variables if o not in keep]
            held = ", ".join(fixed + (["at " + ", ".join(others)] if others else []))
            panels.append(
                _Panel(v, x, grid, encode(base), partial, held, None, rows if combo else None)
            )
    return panels[:_MAX_PANELS]


def _levels_of(column: Any) -> list[Any]:
    """The categories of a categorical column (its order, or sorted as text)."""
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):
        return list(column.cat.categories)
    return sorted(column.dropna().unique(), key=str)


def _with_levels(table: Any, frame: Any, combo: dict[str, Any]) -> Any:
    """``table`` with the categorical columns of ``combo`` set to its levels."""
    import pandas as pd

    for o, level in combo.items():
        table[o] = pd.Series([level] * len(table), index=table.index, dtype=frame[o].dtype)
    return table


def _populated(model_spec: Any, frame: Any) -> Any:
    """The spec of a fresh encoding of ``frame`` by ``model_spec``: a spec rebuilt from its
    formula (a loaded model) knows which variables and terms it reads (a categorical column,
    ``Treatment``) only once it has encoded data."""
    from formulaic.errors import DataMismatchWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataMismatchWarning)
            return model_spec.get_model_matrix(frame, na_action="ignore").model_spec
    except Exception:  # the caller's own encoding reports the problem
        return model_spec


def _interactions(model_spec: Any, variables: Sequence[str]) -> dict[str, set[str]]:
    """For each variable, the other variables that share a term of the (populated) formula
    with it (``Treatment * np.log(Day)``: Treatment and Day)."""
    out: dict[str, set[str]] = {v: set() for v in variables}
    try:
        terms = list(model_spec.term_variables.values())
    except RuntimeError:  # a spec without term information: no interactions
        terms = []
    for names in terms:
        present = {str(name) for name in names} & set(variables)
        for v in present:
            out[v] |= present - {v}
    return out


def _design_of(model: Any, data: Any, formula: str | None):
    """The model's formula evaluated on a raw data frame: the :class:`~bayes_mlr.formula.Design`
    (with the groups, the concomitant design and the shared columns of the fit) and the rows
    of ``data`` it kept."""
    from bayes_mlr.formula import structured_design

    state = model._formula_state()
    formula = formula or (state.formula if state is not None else None)
    if formula is None:
        raise ValueError(
            "data= needs the model's formula: fit with MixtureOfRegressions.from_formula "
            "or pass formula="
        )
    design = structured_design(
        formula,
        data,
        concomitant=None if state is None else state.concomitant_formula,
        shared=None if state is None else state.shared_formula,
        na_action="drop",
    )
    if design.feature_names != model.feature_names:
        raise ValueError(
            f"the formula {formula!r} encodes the columns {design.feature_names}, but the "
            f"model was fitted on {model.feature_names}"
        )
    frame = data.loc[design.X.index] if hasattr(data, "loc") else design.X
    return design, frame.reset_index(drop=True)


def _family_data_of_frame(model: Any, frame: Any) -> dict[str, Any]:
    """``offset`` and ``trials`` of the rows of a raw data frame, from the expressions of a
    formula fit (``from_formula(offset="np.log(Hours)")``); None where the fit has none.

    Raises
    ------
    ValueError
        The fit has an offset (trials) but no expression to compute it from a frame.
    """
    from bayes_mlr.formula import evaluate_expression

    state = model._formula_state()
    out = {}
    for name in ("offset", "trials"):
        expression = getattr(state, name, None) if state is not None else None
        if expression is not None:
            out[name] = evaluate_expression(expression, frame, name)
        elif getattr(model, f"_fit_{name}", None) is not None:
            raise ValueError(
                f"the model was fitted with {name}= as an array, so data= cannot give the rows' "
                f"{name}: fit with from_formula(..., {name}='expression'), or pass X, y and "
                f"{name}="
            )
        else:
            out[name] = None
    return out


def _fit_inputs(
    model: Any, X: Any, y: Any, data: Any, formula: str | None, structure: dict[str, Any]
):
    """The arrays, panels, default response label and structure (``groups``,
    ``concomitant``, ``offset``, ``trials`` keywords of ``responsibilities``) of
    :func:`plot_fit`."""
    state = model._formula_state()
    if data is not None:
        if X is not None or y is not None:
            raise ValueError("pass data (a data frame for the formula) or X and y, not both")
        design, frame = _design_of(model, data, formula)
        spec = state.model_spec if state is not None else design.model_spec
        X_arr = design.X.to_numpy(dtype=float)
        panels = _formula_panels(frame, spec, model.feature_names)
        conc = None if design.concomitant is None else design.concomitant.to_numpy(dtype=float)
        structure = {
            "groups": design.groups,
            "concomitant": conc,
            **_family_data_of_frame(model, frame),
        }
        return X_arr, np.asarray(design.y, dtype=float), panels, design.response, structure
    if X is None and y is None:
        X_arr, y_arr = np.asarray(model._fit_X, dtype=float), np.asarray(model._fit_y)
        structure = {
            k: None if v is None else np.asarray(v) for k, v in model._training_structure().items()
        }
    elif X is None or y is None:
        raise ValueError("pass both X and y, or neither (to use the training data)")
    else:
        X_arr = np.asarray(model._check_X(X), dtype=float)
        y_arr = np.asarray(y, dtype=float).reshape(-1)
    response = state.response if state is not None else "y"
    return X_arr, y_arr, _feature_panels(X_arr, model.feature_names), response, structure


def plot_fit(
    model: Any,
    posterior: Any = None,
    *,
    X: Any = None,
    y: Any = None,
    data: Any = None,
    formula: str | None = None,
    response: str | None = None,
    ci_prob: float = 0.94,
    max_points: int = 5000,
    random_state: int = 0,
    groups: Any = None,
    concomitant: Any = None,
    offset: Any = None,
    trials: Any = None,
):
    """The data coloured by responsibility, with each component's fitted curve and its bands.

    Each point's colour mixes the component colours by its EM responsibilities (an ambiguous
    point looks blended); in a grouped model every row has its group's responsibilities. Each
    component has its EM curve (solid), a ``ci_prob`` band from the EM standard errors (delta
    method, shaded) and, with a posterior, the posterior mean curve (dashed) with the central
    ``ci_prob`` interval of the curve over the draws (dotted edges).

    Panels. With ``data`` (the data frame of a formula model) there is one panel per original
    variable of the formula's right-hand side: for ``y ~ x + I(x**2)`` the curve
    ``intercept_j + coef_j1 x + coef_j2 x^2`` in ``x``; a categorical variable gets one point
    estimate with its intervals per level. Without ``data`` there is one panel per feature
    column. The other variables are held at their typical value (mean, or most frequent level)
    and, with more than one panel, the points are partial residuals
    ``y_i - mu_c(x_i) + mu_c(x_i with the other variables at their typical value)``, ``c`` the
    most probable component of observation ``i``. At most 9 panels.

    Parameters
    ----------
    model : MixtureOfRegressions
        Fitted; its training data are used unless ``X`` and ``y`` or ``data`` are given.
    posterior : xarray.DataTree, optional
        From :func:`bayes_mlr.bayes.model.sample_posterior`.
    X : array-like of shape (n_samples, n_features), optional
    y : array-like of shape (n_samples,), optional
    data : pandas.DataFrame, optional
        Raw columns of a formula model (the response and the formula's variables).
    formula : str, optional
        The formula ``data`` is encoded with; default: the model's ``formula_``. It must
        produce the model's feature columns.
    response : str, optional
        Label of the y axis; default: the formula's response, else ``"y"``.
    ci_prob : float
        Probability of the bands.
    max_points : int
        At most this many points are drawn (a seeded random subset).
    random_state : int
        Seed of that subset.
    groups : array-like of shape (n_samples,), optional
        The groups of the rows of ``X`` (a grouped model; the training data and ``data`` bring
        their own).
    concomitant : array-like of shape (n_samples, r), optional
        The concomitant variables of the rows of ``X`` (required then for a model with them).
    offset, trials : array-like of shape (n_samples,), optional
        The offset and number of trials of the rows of ``X`` (required then for a model
        fitted with them; the training data and ``data`` bring their own).

    Returns
    -------
    matplotlib.figure.Figure

    Warns
    -----
    MissingBandWarning
        A band that cannot be computed (singular information, a posterior without ``coef``).

    Notes
    -----
    Curves are component means on the response scale. Poisson: the points are the rates
    ``y / exp(offset)`` (``Seizures / Hours`` for ``offset="np.log(Hours)"``) and the curves
    ``exp(η_j)``, the mean count per unit of exposure. Binomial: the points are the
    proportions ``y / trials`` and the curves ``expit(η_j)``. Bands are the EM (Wald) and
    posterior intervals of ``η_j`` mapped through the inverse link, so they stay positive (in
    [0, 1]); partial residuals are taken on the link scale (a zero count stays zero). Student-t
    components are drawn as Gaussian ones (their curve is the regression line); the bands
    are intervals for the line, not for ``y``, so they need no σ (families without one, Poisson
    and binomial, are drawn alike).
    """
    from scipy.stats import norm

    model._check_fitted()
    if not 0.0 < float(ci_prob) < 1.0:
        raise ValueError(f"ci_prob must be in (0, 1); got {ci_prob!r}")
    X_arr, y_arr, panels, default_response, structure = _fit_inputs(
        model,
        X,
        y,
        data,
        formula,
        {"groups": groups, "concomitant": concomitant, "offset": offset, "trials": trials},
    )
    response = response or default_response
    K, p = model.coef_.shape
    resp = model.responsibilities(X_arr, y_arr, **structure)
    scale = _response_scale(model, y_arr, structure["offset"], structure["trials"], response)
    component = resp.argmax(axis=1)
    colors = _colors(K)
    point_colors = np.clip(resp @ colors, 0.0, 1.0)
    rng = np.random.default_rng(random_state)
    shown = np.arange(y_arr.shape[0])
    if shown.size > max_points:
        shown = np.sort(rng.choice(shown, size=max_points, replace=False))
    draws = _posterior_draws(posterior, K, p)
    em_cov = _em_line_covariance(model)
    if em_cov is not None:
        for j, block in enumerate(em_cov):
            if not np.all(np.isfinite(block)):
                _warn_band(
                    f"fit plot: no EM band for component {j}: its standard errors are NaN "
                    "(singular observed information)"
                )
    z = float(norm.ppf(0.5 + ci_prob / 2))
    tail = (1 - ci_prob) / 2
    fitted = model.intercept_[component] + np.einsum("ij,ij->i", X_arr, model.coef_[component])
    shared = np.asarray(getattr(model, "shared_", np.zeros(p, dtype=bool)), dtype=bool)
    outlier = _t_outliers(model, y_arr, fitted, component)

    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure(4.6 * ncols + 2.2, 3.9 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    several = len(panels) > 1
    for ax, panel in zip(axes, panels, strict=False):
        part = model.intercept_[component] + np.einsum(
            "ij,ij->i", panel.partial_features, model.coef_[component]
        )
        drawn = shown if panel.rows is None else shown[panel.rows[shown]]
        # partial residuals where the panel holds other variables at typical values (a panel
        # of one level of an interacting factor may hold nothing: its points are the data)
        moved = several and not np.array_equal(panel.partial_features[drawn], X_arr[drawn])
        points = scale.partial(fitted, part) if moved else scale.shown
        x = panel.x
        if panel.levels is not None:  # jitter the points of a level
            x = x + rng.uniform(-0.3, 0.3, size=x.size)
        size = 10 if drawn.size <= 1000 else 4
        kept = drawn if outlier is None else drawn[~outlier[drawn]]
        ax.scatter(
            x[kept],
            points[kept],
            c=point_colors[kept],
            s=size,
            alpha=0.6,
            linewidths=0,
            rasterized=drawn.size > 2000,
        )
        if outlier is not None and outlier[drawn].any():  # open circles: downweighted by t
            far = drawn[outlier[drawn]]
            ax.scatter(
                x[far],
                points[far],
                facecolors="none",
                edgecolors=point_colors[far],
                s=size * 2,
                alpha=0.8,
                linewidths=0.8,
            )
        G = np.column_stack([np.ones(panel.grid.size), panel.grid_features])  # (T, p + 1)
        for j in range(K):
            beta = np.concatenate([[model.intercept_[j]], model.coef_[j]])
            eta = G @ beta + scale.reference
            band = None
            if em_cov is not None and np.all(np.isfinite(em_cov[j])):
                var = np.einsum("ti,ij,tj->t", G, em_cov[j], G)
                half = z * np.sqrt(np.maximum(var, 0.0))
                band = (scale.inverse(eta - half), scale.inverse(eta + half))
            post = None
            if draws is not None:
                a, b = draws
                curves = scale.inverse(
                    a[:, j, None] + b[:, j] @ panel.grid_features.T + scale.reference
                )  # (S, T)
                post = (curves.mean(axis=0), *np.quantile(curves, [tail, 1 - tail], axis=0))
            if panel.levels is None:
                _draw_curve(ax, panel.grid, scale.inverse(eta), band, post, colors[j])
            else:
                offset_x = (j - (K - 1) / 2) * 0.12
                _draw_levels(ax, panel.grid + offset_x, scale.inverse(eta), band, post, colors[j])
        if panel.levels is not None:
            ax.set_xticks(panel.grid, panel.levels)
        varying = np.ptp(panel.grid_features, axis=0) > 0
        if varying.any() and shared[varying].all():  # parallel curves: say why
            ax.set_xlabel(f"{panel.name} (coefficient shared by all components)")
        else:
            ax.set_xlabel(panel.name)
        ax.set_ylabel(f"{scale.label} (partial residual)" if moved else scale.label)
        if scale.family in _LINKS:  # counts and proportions: from 0 (to at most 1)
            top = ax.get_ylim()[1]
            top = min(top, 1.0) if scale.family == "binomial" else top
            ax.set_ylim(-0.02 * top, top * 1.02)
        if panel.held:
            ax.set_title(panel.held, fontsize="small", wrap=True)
    _fit_legend(
        fig,
        colors,
        ci_prob,
        with_posterior=draws is not None,
        with_em_band=em_cov is not None,
        mean_label=_mean_label(scale),
        with_outliers=outlier is not None and bool(outlier.any()),
    )
    state = model._formula_state()
    shown_formula = formula or (state.formula if state is not None else None)
    if shown_formula is None:
        shown_formula = f"{response} ~ {' + '.join(model.feature_names)}"
    title = f"{shown_formula}: K = {K}, {_family_phrase(model)}"
    title += "".join(f", {part}" for part in _structure_phrases(model))
    if len(panels) == _MAX_PANELS and p > _MAX_PANELS:
        title += f" (first {_MAX_PANELS} panels)"
    fig.suptitle(_wrapped(title, fig.get_figwidth()))
    return fig


def _wrapped(title: str, width_inches: float) -> str:
    """A title broken into lines that fit a figure ``width_inches`` wide (about ten
    characters per inch at the title's size)."""
    import textwrap

    # lines break between phrases, never inside "variance = component"
    title = title.replace(" = ", "\u00a0=\u00a0")
    return textwrap.fill(title, width=max(40, int(width_inches * 10)), break_long_words=False)


def _at_df_bound(value: float) -> bool:
    """Whether an EM estimate of a t's degrees of freedom sits on a bound of its search."""
    from bayes_mlr.core.components.student_t import DF_MAX, DF_MIN

    return bool(value >= DF_MAX * (1 - 1e-9) or value <= DF_MIN * (1 + 1e-9))


#: Student-t fits: points whose E-step weight ``u`` is below this are drawn as open circles.
T_OUTLIER_WEIGHT = 0.1


def _t_outliers(model: Any, y: np.ndarray, fitted: np.ndarray, component: np.ndarray):
    """For a Student-t fit, which observations the t tails downweight: the E-step weight
    ``u_i = (ν_c + 1) / (ν_c + δ_i²)``, ``δ_i = (y_i − μ_c(x_i)) / σ_c`` in the most probable
    component ``c``, below :data:`T_OUTLIER_WEIGHT` (None for other families)."""
    if model.result_.family.name != "student_t":
        return None
    df = np.asarray(model.df_, dtype=float)[component]
    delta = (y - fitted) / np.asarray(model.sigma_, dtype=float)[component]
    return (df + 1.0) / (df + delta**2) < T_OUTLIER_WEIGHT


def _mean_label(scale: _ResponseScale) -> str:
    """The legend entry of the EM curves: what a curve is on the response scale."""
    if scale.family == "poisson":
        exposure = " / " in scale.label  # drawn as a rate: the mean per unit of exposure
        return "EM fit: component mean\nexp(η)" + (" per unit of exposure" if exposure else "")
    if scale.family == "binomial":
        return "EM fit: component mean\nexpit(η), a proportion"
    return "EM fit"


def _structure_phrases(model: Any) -> list[str]:
    """``["120 groups", "mixing weights ~ z", "shared: w"]`` for a structured fit."""
    out = []
    if getattr(model, "n_groups_", None) is not None:
        out.append(f"{model.n_groups_} groups")
    if getattr(model, "concomitant_coef_", None) is not None:
        state = model._formula_state()
        formula = None if state is None else state.concomitant_formula
        names = [str(n) for n in model.concomitant_names_in_]
        out.append(f"mixing weights {formula or '~ ' + ' + '.join(names)}")
    shared = [
        n for n, s in zip(model.feature_names, getattr(model, "shared_", ()), strict=False) if s
    ]
    if getattr(model.result_, "shared_intercept", False):
        shared.insert(0, "intercept")
    if shared:
        out.append("shared: " + ", ".join(shared))
    return out


def _draw_curve(ax, grid, curve, band, post, color) -> None:
    ax.plot(grid, curve, color=color, lw=2)
    if band is not None:
        ax.fill_between(grid, *band, color=color, alpha=0.25, lw=0)
    if post is not None:
        mean, lo, hi = post
        ax.plot(grid, mean, color=color, lw=1.5, ls="--")
        for edge in (lo, hi):
            ax.plot(grid, edge, color=color, lw=1, ls=":")


def _draw_levels(ax, x, value, band, post, color) -> None:
    """Point estimates per level of a categorical variable, with their intervals."""
    yerr = None if band is None else np.vstack([value - band[0], band[1] - value])
    ax.errorbar(
        x, value, yerr=yerr, fmt="o", color=color, ms=6, lw=3, alpha=0.8, capsize=0, zorder=3
    )
    if post is not None:
        mean, lo, hi = post
        ax.errorbar(
            x + 0.05,
            mean,
            yerr=[mean - lo, hi - mean],
            fmt="D",
            mfc="white",
            color=color,
            ms=5,
            lw=1,
            ls="none",
            capsize=3,
            zorder=3,
        )


def _fit_legend(
    fig,
    colors,
    ci_prob,
    *,
    with_posterior,
    with_em_band,
    mean_label="EM fit",
    with_outliers=False,
) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=c, lw=2, label=f"component {j}") for j, c in enumerate(colors)]
    handles.append(Line2D([], [], color="0.3", lw=2, label=mean_label))
    if with_em_band:
        handles.append(Patch(color="0.3", alpha=0.25, label=f"EM {ci_prob:.0%} band (SE)"))
    if with_posterior:
        handles.append(Line2D([], [], color="0.3", lw=1.5, ls="--", label="posterior mean"))
        handles.append(
            Line2D([], [], color="0.3", lw=1, ls=":", label=f"posterior {ci_prob:.0%} interval")
        )
    handles.append(
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            color="0.5",
            label="points: colour mixes the\ncomponents by responsibility",
        )
    )
    if with_outliers:
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                mfc="none",
                color="0.5",
                label=f"open: outliers, t weight\nu < {T_OUTLIER_WEIGHT:g} in their component",
            )
        )
    # outside the axes, below the title: the legend never hides the title or the data
    fig.legend(handles=handles, loc="outside right center", fontsize="small", frameon=False)


# --------------------------------------------------------------------------------------------
# Mixing weights of a concomitant model
# --------------------------------------------------------------------------------------------


@dataclass
class _MixingPanel:
    """One panel of :func:`plot_mixing`: a concomitant variable, where its curve (or its
    levels) is evaluated, the encoded concomitant rows there (T, r) and the observed values
    (for the rug, or the counts per level)."""

    name: str
    grid: np.ndarray
    encoded: np.ndarray
    observed: np.ndarray
    held: str
    levels: list[str] | None = None


def _mixing_panels_of_frame(frame: Any, state: Any) -> list[_MixingPanel]:
    """One panel per original variable of the concomitant formula, the others held at their
    mean (numeric) or first level (categorical), encoded through the fit's formula."""
    import pandas as pd
    from formulaic.errors import DataMismatchWarning

    spec = state.concomitant_spec
    required = {str(v) for v in _populated(spec, frame).required_variables}
    variables = [str(c) for c in frame.columns if str(c) in required]
    names = list(state.concomitant_names)

    def categorical(v: str) -> bool:
        return _by_level(frame, v, names)

    def first_level(column: Any) -> Any:
        if isinstance(column.dtype, pd.CategoricalDtype):
            return column.cat.categories[0]
        return sorted(column.dropna().unique(), key=str)[0]

    typical = {
        v: first_level(frame[v]) if categorical(v) else float(frame[v].mean()) for v in variables
    }

    def encode(table: Any) -> np.ndarray:
        with warnings.catch_warnings():
            # a grid holds only some of the categories: formulaic says so
            warnings.simplefilter("ignore", DataMismatchWarning)
            matrix = pd.DataFrame(spec.get_model_matrix(table, na_action="ignore"))
        matrix.columns = [str(c) for c in matrix.columns]
        return matrix[list(state.concomitant_names)].to_numpy(dtype=float)

    panels = []
    for v in variables[:_MAX_PANELS]:
        column = frame[v]
        size = _GRID_SIZE
        levels = None
        if categorical(v):
            cats = (
                list(column.cat.categories)
                if isinstance(column.dtype, pd.CategoricalDtype)
                else sorted(column.dropna().unique(), key=str)
            )
            size, levels = len(cats), [str(c) for c in cats]
            values = pd.Series(cats, dtype=column.dtype)
            grid = np.arange(size, dtype=float)
            observed = column.map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=float)
        else:
            observed = column.to_numpy(dtype=float)
            grid = np.linspace(np.nanmin(observed), np.nanmax(observed), size)
            values = grid
        table = pd.DataFrame(
            {
                o: pd.Series([typical[o]] * size, dtype=frame[o].dtype if categorical(o) else float)
                for o in variables
                if o != v
            }
        )
        table[v] = values
        others = [
            f"{o} = {_format_value(typical[o])}"
            + (" (first level)" if categorical(o) else " (mean)")
            for o in variables
            if o != v
        ]
        held = ("at " + ", ".join(others)) if others else ""
        panels.append(_MixingPanel(v, grid, encode(table), observed, held, levels))
    return panels


def _mixing_panels_of_array(W: np.ndarray, names: Sequence[str]) -> list[_MixingPanel]:
    """One panel per column of an encoded concomitant matrix, the others at their mean; a
    0/1 column (a dummy) gets its two levels."""
    r = W.shape[1]
    mean = W.mean(axis=0)
    panels = []
    for k in range(min(r, _MAX_PANELS)):
        column = W[:, k]
        dummy = bool(np.all(np.isin(column, (0.0, 1.0))))
        grid = (
            np.array([0.0, 1.0]) if dummy else np.linspace(column.min(), column.max(), _GRID_SIZE)
        )
        encoded = np.tile(mean, (grid.size, 1))
        encoded[:, k] = grid
        held = "other variables at their mean" if r > 1 else ""
        levels = ["0", "1"] if dummy else None
        panels.append(_MixingPanel(str(names[k]), grid, encoded, column, held, levels))
    return panels


def _mixing_band_maker(model: Any, ci_prob: float):
    """A function ``(W (T, r), π (T, K)) -> half-widths (T, K)`` of pointwise ``ci_prob``
    intervals of
    the prior weights by the delta method from the EM covariance of the concomitant
    coefficients (``None`` when it has no finite entries); ``.available`` says which.

    ``dπ_j / d(α_k, γ_k) = π_j (δ_jk − π_k) [1, w]`` for the free components ``k >= 1``.
    """
    import warnings

    from scipy.stats import norm

    z = float(norm.ppf(0.5 + ci_prob / 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular information is flagged elsewhere
        cov, labels = model.covariance_, model.covariance_labels_
    K, r = model.concomitant_coef_.shape
    index = {label: i for i, label in enumerate(labels)}
    order = [
        index[name]
        for k in range(1, K)
        for name in [f"concomitant_intercept[{k}]"]
        + [f"concomitant_coef[{k},{c}]" for c in range(r)]
    ]
    sub = cov[np.ix_(order, order)]
    usable = bool(np.all(np.isfinite(sub)))

    def band(W: np.ndarray, pi: np.ndarray) -> np.ndarray | None:
        if not usable:
            return None
        design = np.column_stack([np.ones(W.shape[0]), np.asarray(W, dtype=float)])  # (T, r1)
        half = np.empty_like(pi)
        for j in range(K):
            # gradient of π_j over the free blocks k = 1..K-1, each [1, w] scaled
            grad = np.concatenate(
                [(pi[:, j] * ((j == k) - pi[:, k]))[:, None] * design for k in range(1, K)], axis=1
            )
            half[:, j] = z * np.sqrt(np.maximum(np.einsum("ti,ij,tj->t", grad, sub, grad), 0))
        return half

    band.available = usable
    return band


def plot_mixing(
    model: Any,
    *,
    data: Any = None,
    formula: str | None = None,
    concomitant: Any = None,
    max_rug: int = 2000,
    random_state: int = 0,
    ci_prob: float = 0.94,
):
    """The mixing weights of a concomitant model: each component's prior probability
    ``π_j(w) = softmax_j(α_j + wᵀγ_j)`` against each concomitant variable.

    One panel per variable. A numeric variable gets one curve per component as it runs over
    its observed range, the other variables held at their mean (numeric) or first level
    (categorical), with a rug of the observed values; a categorical variable (or, without a
    data frame, a 0/1 dummy column) gets one bar per component at each level, with the
    number of rows at that level. Colours are those of :func:`plot_fit`. Shaded bands (curves)
    and error bars (bars) are pointwise ``ci_prob`` intervals by the delta method from the EM
    covariance of the concomitant coefficients (left out when it is singular), as the EM
    bands of :func:`plot_fit`.

    Parameters
    ----------
    model : MixtureOfRegressions
        Fitted with concomitant variables (``concomitant_coef_``).
    data : pandas.DataFrame, optional
        The raw data frame of a formula fit: one panel per original variable of the
        concomitant formula (``~ z1 + C(z2)`` gives the panels ``z1`` and ``z2``).
    formula : str, optional
        The model formula ``data`` is encoded with (default the model's); it selects the rows
        the fit used.
    concomitant : array-like of shape (n_samples, r), optional
        Without ``data``: encoded concomitant variables, one panel per column (default the
        training data's).
    max_rug : int
        At most this many rug marks (a seeded random subset).
    random_state : int
        Seed of that subset.
    ci_prob : float, default=0.94
        Coverage of the intervals (that of :func:`plot_fit`'s bands).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        The model has no concomitant variables.
    """
    from matplotlib.lines import Line2D

    model._check_fitted()
    if not 0.0 < float(ci_prob) < 1.0:
        raise ValueError(f"ci_prob must be in (0, 1); got {ci_prob!r}")
    if getattr(model, "concomitant_coef_", None) is None:
        raise ValueError(
            "plot_mixing needs a model with concomitant variables (fit(..., concomitant=) or "
            "from_formula(..., concomitant=)); this model's weights are constant"
        )
    state = model._formula_state()
    if data is not None:
        if state is None or state.concomitant_spec is None:
            raise ValueError(
                "data= needs a model fitted from a formula with a concomitant formula; pass "
                "the encoded concomitant= instead"
            )
        _, frame = _design_of(model, data, formula)
        panels = _mixing_panels_of_frame(frame, state)
        n_rows = len(frame)
    else:
        W = model._fit_concomitant if concomitant is None else concomitant
        W = np.asarray(W, dtype=float)
        if W.ndim != 2 or W.shape[1] != model.concomitant_coef_.shape[1]:
            raise ValueError(
                f"concomitant must have shape (n_samples, {model.concomitant_coef_.shape[1]}); "
                f"got {W.shape}"
            )
        panels = _mixing_panels_of_array(W, [str(n) for n in model.concomitant_names_in_])
        n_rows = W.shape[0]
    K = model.coef_.shape[0]
    colors = _colors(K)
    rng = np.random.default_rng(random_state)
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure(max(4.6 * ncols + 1.8, 7.5), 3.6 * nrows + 0.6)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    bottom = 2 * _RUG_Y if any(panel.levels is None for panel in panels) else 0.0
    band = _mixing_band_maker(model, ci_prob)
    for ax, panel in zip(axes, panels, strict=False):
        weights = model.mixing_weights(panel.encoded)  # (T, K)
        half = band(panel.encoded, weights)  # (T, K) half-widths of the intervals
        if panel.levels is None:
            for j in range(K):
                ax.plot(panel.grid, weights[:, j], color=colors[j], lw=2)
                if half is not None:
                    ax.fill_between(
                        panel.grid,
                        np.clip(weights[:, j] - half[:, j], 0.0, 1.0),
                        np.clip(weights[:, j] + half[:, j], 0.0, 1.0),
                        color=colors[j],
                        alpha=0.18,
                        lw=0,
                    )
            rug = panel.observed[np.isfinite(panel.observed)]
            if rug.size > max_rug:
                rug = rng.choice(rug, size=max_rug, replace=False)
            # the rug sits below zero, under the curves, so that it never hides them
            ax.plot(
                rug,
                np.full(rug.size, _RUG_Y),
                "|",
                color="0.25",
                ms=7,
                alpha=0.5 if rug.size > 200 else 0.8,
            )
            ax.axhline(0.0, color="0.6", lw=0.6)
            ax.set_xlim(panel.grid[0], panel.grid[-1])
        else:
            width = 0.8 / K
            for j in range(K):
                low = (
                    None
                    if half is None
                    else weights[:, j] - np.clip(weights[:, j] - half[:, j], 0.0, 1.0)
                )
                high = (
                    None
                    if half is None
                    else np.clip(weights[:, j] + half[:, j], 0.0, 1.0) - weights[:, j]
                )
                ax.bar(
                    panel.grid + (j - (K - 1) / 2) * width,
                    weights[:, j],
                    width=width * 0.95,
                    color=colors[j],
                    yerr=None if half is None else np.vstack([low, high]),
                    error_kw={"ecolor": "0.2", "capsize": 3, "lw": 1},
                )
            counts = [int(np.sum(panel.observed == g)) for g in panel.grid]
            ax.set_xticks(
                panel.grid, [f"{lv}\n(n = {c})" for lv, c in zip(panel.levels, counts, strict=True)]
            )
        ax.set_ylim(bottom, 1.02)  # one scale in every panel
        ax.set_yticks(np.linspace(0.0, 1.0, 6))
        ax.set_xlabel(panel.name)
        ax.set_ylabel("prior probability of the component")
        ax.grid(axis="y", alpha=0.3)
        if panel.held:
            ax.set_title(panel.held, fontsize="small", wrap=True)
    handles = [Line2D([], [], color=c, lw=6, label=f"component {j}") for j, c in enumerate(colors)]
    if band.available:
        handles.append(
            Line2D(
                [],
                [],
                color="0.6",
                lw=6,
                alpha=0.4,
                label=f"EM {ci_prob:.0%} interval (delta method)",
            )
        )
    if any(panel.levels is None for panel in panels):
        handles.append(
            Line2D([], [], ls="", marker="|", ms=8, color="0.25", label="rug: observed values")
        )
    fig.legend(
        handles=handles,
        loc="outside right center",
        fontsize="small",
        frameon=False,
        title="component 0 is\nthe reference",
        title_fontsize="small",
    )
    formula_text = None if state is None else state.concomitant_formula
    shown = formula_text or "~ " + " + ".join(str(n) for n in model.concomitant_names_in_)
    n_groups = getattr(model, "n_groups_", None)
    rows = f"n = {n_rows}" + (f" rows in {n_groups} groups" if n_groups is not None else "")
    fig.suptitle(f"Mixing weights {shown} (multinomial logit, {rows})")
    return fig


# --------------------------------------------------------------------------------------------
# EM convergence
# --------------------------------------------------------------------------------------------


def plot_log_likelihood_trace(model: Any):
    """EM's log-likelihood after every iteration, and its gap to the final value (log scale).

    Parameters
    ----------
    model : MixtureOfRegressions or array-like
        A fitted estimator (its ``log_likelihood_trace_``) or the trace itself.

    Returns
    -------
    matplotlib.figure.Figure
    """
    trace = np.asarray(getattr(model, "log_likelihood_trace_", model), dtype=float).ravel()
    if trace.size == 0:
        raise ValueError("the log-likelihood trace is empty")
    fig = _new_figure(10, 3.8)
    left, right = fig.subplots(1, 2)
    it = np.arange(trace.size)
    left.plot(it, trace, marker="o" if trace.size <= 60 else None, ms=3)
    left.set_xlabel("EM iteration")
    left.set_ylabel("log-likelihood")
    left.set_title("log-likelihood (never decreases)", fontsize="medium")
    gap = trace[-1] - trace
    keep = gap > 0
    if np.any(keep):
        right.semilogy(it[keep], gap[keep], marker="o" if keep.sum() <= 60 else None, ms=3)
    else:
        right.text(
            0.5, 0.5, "a single value: nothing to show", ha="center", transform=right.transAxes
        )
    right.set_xlabel("EM iteration")
    right.set_ylabel("final minus current")
    right.set_title("distance to the final log-likelihood", fontsize="medium")
    status = ""
    if hasattr(model, "converged_"):
        status = (
            f": {'converged' if model.converged_ else 'NOT converged'} after "
            f"{model.n_iter_} iterations"
        )
    fig.suptitle(f"EM log-likelihood trace{status}")
    return fig


# --------------------------------------------------------------------------------------------
# Densities (binned Gaussian kernel: fast for large n and many replicates)
# --------------------------------------------------------------------------------------------


def _bandwidth(values: np.ndarray) -> float:
    """Silverman's rule of thumb (a positive fallback for constant values)."""
    values = np.asarray(values, dtype=float).ravel()
    sd = values.std()
    iqr = np.subtract(*np.percentile(values, [75, 25])) / 1.349
    spread = min(sd, iqr) if iqr > 0 else sd
    if not spread > 0:
        spread = max(abs(values.mean()), 1.0) * 1e-3
    return 0.9 * spread * values.size ** (-0.2)


def _density(
    values: np.ndarray, grid: np.ndarray, bandwidth: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Gaussian kernel density of ``values`` on the evenly spaced ``grid`` (binned, exact to
    the bin width); mass outside the grid is counted in the normalisation."""
    dx = grid[1] - grid[0]
    edges = np.append(grid - dx / 2, grid[-1] + dx / 2)
    counts, _ = np.histogram(values, bins=edges, weights=weights)
    total = float(np.sum(weights)) if weights is not None else float(np.size(values))
    half = max(1, math.ceil(4 * bandwidth / dx))
    offsets = np.arange(-half, half + 1) * dx
    kernel = np.exp(-0.5 * (offsets / bandwidth) ** 2)
    kernel /= kernel.sum() * dx
    smooth = np.convolve(counts, kernel, mode="full")[half : half + grid.size]
    return smooth / total


def _grid_for(values: np.ndarray, bandwidth: float, size: int = 256) -> np.ndarray:
    lo, hi = np.nanmin(values) - 3 * bandwidth, np.nanmax(values) + 3 * bandwidth
    return np.linspace(lo, hi, size)


# --------------------------------------------------------------------------------------------
# Posterior: trace, rank and forest plots
# --------------------------------------------------------------------------------------------


def _var_names(posterior: Any) -> list[str]:
    post = posterior["posterior"]
    return [v for v in _PARAMS if v in post.data_vars]


@dataclass
class _Group:
    """A parameter group with one scale: weights, intercept, the slopes of one feature, sigma,
    and with concomitant variables their intercepts and the slopes of one variable."""

    name: str  # variable
    title: str
    feature: Any = None  # coordinate of the feature dim (coef) or the concomitant dim
    dim: str = "feature"
    components: tuple[int, ...] | None = None  # the components shown (None: all)
    shared: bool = False  # one value for all components: drawn once
    log_scale: bool = False  # drawn on a log axis (degrees of freedom)

    def component_ids(self, K: int) -> list[int]:
        return list(range(K)) if self.components is None else list(self.components)


def _is_shared(da: Any) -> bool:
    """Whether every component's draws are the same numbers (a shared coefficient)."""
    if "component" not in da.dims or da.sizes["component"] < 2:
        return False
    values = da.transpose(..., "component").to_numpy()
    return bool(np.all(values == values[..., :1]))


def _groups(post: Any) -> list[_Group]:
    groups = []
    for name in _PARAMS:
        if name not in post:
            continue
        if name == "coef":
            for f in post["feature"].values:
                if _is_shared(post[name].sel(feature=f)):
                    groups.append(
                        _Group(name, f"coef of {f} (shared)", f, components=(0,), shared=True)
                    )
                else:
                    groups.append(_Group(name, f"coef of {f}", f))
        elif name == "df":
            shared_df = "component" not in post[name].dims
            title = "df" + (" (shared)" if shared_df else "") + " (log scale)"
            groups.append(_Group(name, title, log_scale=True))
        elif "component" not in post[name].dims:
            groups.append(_Group(name, f"{name} (shared)"))
        elif name == "intercept" and _is_shared(post[name]):
            groups.append(_Group(name, "intercept (shared)", components=(0,), shared=True))
        else:
            groups.append(_Group(name, name))
    K = int(post.sizes.get("component", 1))
    others = tuple(range(1, K))  # component 0 is the reference of the mixing model: zeros
    if "concomitant_intercept" in post and others:
        groups.append(_Group("concomitant_intercept", "concomitant intercept", components=others))
    if "concomitant_coef" in post and others:
        for v in post["concomitant"].values:
            groups.append(
                _Group(
                    "concomitant_coef",
                    f"concomitant coef of {v}",
                    v,
                    dim="concomitant",
                    components=others,
                )
            )
    return groups


def _group_draws(post: Any, group: _Group) -> np.ndarray:
    """Draws (chain, draw, m) of a group; m is the number of components shown (1 when
    shared)."""
    da = post[group.name]
    if group.feature is not None:
        da = da.sel({group.dim: group.feature})
    if "component" not in da.dims:
        da = da.expand_dims(component=1)
    elif group.components is not None:
        da = da.isel(component=list(group.components))
    return da.transpose("chain", "draw", "component").to_numpy()


def _group_labels(group: _Group, m: int, K: int) -> list[str]:
    """Row labels of a group: ``component j``, or ``shared`` for one value of all."""
    if group.shared or (m == 1 and K > 1 and group.components is None):
        return ["shared"]
    return [f"component {j}" for j in group.component_ids(K)[:m]]


def _component_legend(fig, colors, labels: Sequence[str], *, extra: Sequence[Any] = ()) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=c, lw=2, label=lab) for c, lab in zip(colors, labels, strict=True)
    ]
    fig.legend(
        handles=[*handles, *extra],
        loc="outside lower center",  # below the panels: the title keeps the top
        ncols=min(len(handles) + len(extra), 6),
        fontsize="small",
        frameon=False,
    )


def plot_trace(posterior: Any):
    """Trace plot: per parameter group, the marginal density of each chain (left) and the
    chains against the draw (right), coloured by component as in :func:`plot_fit`.

    A chain in another mode (or another labelling) shows as a density that disagrees with the
    others and a trace at another level. A coefficient all components share is drawn once, in
    grey; concomitant coefficients are drawn for components 1 .. K-1 (0 is the reference).
    Degrees of freedom of Student-t components (``df``) are drawn on a log axis. A family
    without sigma (Poisson, binomial) has no sigma row.

    Parameters
    ----------
    posterior : xarray.DataTree
        With a ``posterior`` group (dims ``chain``, ``draw``, ``component``, ``feature``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    post = _posterior_dataset(posterior)
    if post is None or not _var_names(posterior):
        raise ValueError(
            "the posterior has none of the variables weights, intercept, coef, sigma, df"
        )
    groups = _groups(post)
    K = int(post.sizes.get("component", 1))
    colors = _colors(K)
    with_shared = any(g.shared or "component" not in post[g.name].dims for g in groups)
    styles = ["-", "--", ":", "-."]
    n_chains = int(post.sizes["chain"])
    fig = _new_figure(11, 1.9 * len(groups) + 0.9)
    axes = fig.subplots(len(groups), 2, squeeze=False, width_ratios=[1, 2])
    for (left, right), group in zip(axes, groups, strict=True):
        values = _group_draws(post, group)
        ids = group.component_ids(K)
        for j in range(values.shape[2]):
            shared = group.shared or (values.shape[2] == 1 and K > 1 and group.components is None)
            color = "0.25" if shared else colors[ids[j]]
            chain_values = values[:, :, j]
            # degrees of freedom: densities of log df, drawn on a log axis
            scaled = np.log(chain_values) if group.log_scale else chain_values
            bw_j = _bandwidth(scaled)
            grid = _grid_for(scaled, bw_j)
            for c in range(n_chains):
                left.plot(
                    np.exp(grid) if group.log_scale else grid,
                    _density(scaled[c], grid, bw_j),
                    color=color,
                    lw=1,
                    ls=styles[c % len(styles)],
                )
                right.plot(chain_values[c], color=color, lw=0.5, alpha=0.6, ls="-")
        if group.log_scale:
            left.set_xscale("log")
            right.set_yscale("log")
        left.set_title(group.title, fontsize="medium")
        left.set_yticks([])
        left.set_ylabel("density")
        left.set_xlabel(group.title, fontsize="small")
        right.set_ylabel(group.title, fontsize="small")
        right.set_title(f"{group.title}: chains", fontsize="medium")
    axes[-1, 1].set_xlabel("draw")
    chain_handles = [
        Line2D([], [], color="0.3", lw=1, ls=styles[c % len(styles)], label=f"chain {c}")
        for c in range(min(n_chains, len(styles)))
    ]
    if with_shared and K > 1:
        chain_handles.insert(0, Line2D([], [], color="0.25", lw=2, label="shared"))
    _component_legend(fig, colors, [f"component {j}" for j in range(K)], extra=chain_handles)
    fig.suptitle(f"Posterior trace: {n_chains} chains x {post.sizes['draw']} draws")
    return fig


def _flat_labeller():
    """One-line panel titles, ``coef[0, size]``, so that titles never run into tick labels."""
    from arviz_base.labels import BaseLabeller

    class _Flat(BaseLabeller):
        def sel_to_str(self, sel, isel):
            return ", ".join(str(v) for v in sel.values())

        def make_label_vert(self, var_name, sel, isel):
            return self.make_label_flat(var_name, sel, isel)

    return _Flat()


def plot_rank(posterior: Any):
    """ArviZ's rank plot (``arviz_plots.plot_rank``): fractional-rank ECDFs of each chain.

    Well-mixed chains stay inside the envelope; a chain in another mode (e.g. another
    labelling) leaves it. Titles are one line (``coef[0, size]``) and the layout is
    constrained, so titles, p-values and tick labels do not overlap.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz_plots as azp
    import xarray as xr

    post = _rank_dataset(posterior["posterior"].to_dataset())
    names = list(post.data_vars)
    n_panels = sum(int(np.prod([post.sizes[d] for d in post[v].dims[2:]])) for v in names)
    ncols = min(4, n_panels)
    nrows = math.ceil(n_panels / ncols)
    pc = azp.plot_rank(
        xr.DataTree.from_dict({"posterior": post}),
        var_names=names,
        labeller=_flat_labeller(),
        backend="matplotlib",
        figure_kwargs={"figsize": (3.2 * ncols, 2.3 * nrows + 0.6), "layout": "constrained"},
    )
    fig = _figure_of(pc)
    fig.suptitle("Rank plot: fractional-rank ECDF of each chain minus uniform")
    return fig


def _rank_dataset(post: Any) -> Any:
    """The variables of the rank plot: weights, intercept, coef, sigma, with a coefficient all
    components share once (``coef_shared``, ``intercept_shared``) and, with concomitant
    variables, their coefficients of components 1 .. K-1 (0 is the reference, fixed at 0)."""
    import xarray as xr

    out = {}
    for name in _PARAMS:
        if name not in post:
            continue
        da = post[name]
        if name == "coef":
            shared = [f for f in da["feature"].values if _is_shared(da.sel(feature=f))]
            varying = [f for f in da["feature"].values if f not in shared]
            if varying:
                out["coef"] = da.sel(feature=varying)
            if shared:  # its own dim: a Dataset aligns variables on a shared dim name
                shared_da = da.sel(feature=shared).isel(component=0, drop=True)
                out["coef_shared"] = shared_da.rename(feature="shared_feature")
        elif name == "intercept" and _is_shared(da):
            out["intercept_shared"] = da.isel(component=0, drop=True)
        else:
            out[name] = da
    K = int(post.sizes.get("component", 1))
    for name in ("concomitant_intercept", "concomitant_coef"):
        if name in post and K > 1:  # components 1 .. K-1, on a dim of their own
            da = post[name].isel(component=slice(1, None))
            out[name] = da.rename(component="mixing_component")
    return xr.Dataset(out)


def _figure_of(pc: Any):
    return pc.viz.ds["figure"].item()


def _em_rows(posterior: Any, group: _Group, m: int) -> tuple[np.ndarray, np.ndarray] | None:
    """EM estimate and SE (m,) of a group, from the posterior's ``em`` group."""
    if "em" not in posterior.children:
        return None
    em = posterior["em"].to_dataset()
    if group.name not in em or f"{group.name}_se" not in em:
        return None
    value, se = em[group.name], em[f"{group.name}_se"]
    if group.feature is not None:
        value, se = value.sel({group.dim: group.feature}), se.sel({group.dim: group.feature})
    value, se = value.to_numpy().astype(float), se.to_numpy().astype(float)
    if group.components is not None and value.ndim == 1 and value.size > 1:
        value, se = value[list(group.components)], se[list(group.components)]
    return value[:m], se[:m]


def plot_forest(posterior: Any, *, ci_prob: float = 0.94):
    """Forest plot of EM (normal approximation) beside the posterior, one panel per group.

    The groups are ``weights``, ``intercept``, the slopes of each feature (``coef of x``) and
    ``sigma`` (and ``df`` of Student-t components, on a log axis, its EM interval normal on
    ``log df``), each on its own axis so that a small slope or sigma is not squeezed to a dot by
    a large intercept; a coefficient all components share is one row (``shared``), and a model
    with concomitant variables adds their intercepts and slopes for components 1 .. K-1
    (component 0 is the reference). Per component: EM as ``estimate +- z SE`` and the
    posterior as median and equal-tailed intervals; thick the 50% interval, thin the
    ``ci_prob`` one.

    Parameters
    ----------
    posterior : xarray.DataTree
        With the ``em`` group that :func:`~bayes_mlr.bayes.model.sample_posterior` adds.
    ci_prob : float
        Probability of the outer interval (the inner one is 50%).

    Returns
    -------
    matplotlib.figure.Figure

    Warns
    -----
    MissingBandWarning
        An EM standard error is NaN (its interval is not drawn, the estimate is).
    """
    from matplotlib.lines import Line2D
    from scipy.stats import norm

    if "em" not in posterior.children:
        raise ValueError("the posterior has no 'em' group (sample it with sample_posterior)")
    if not 0.5 < float(ci_prob) < 1.0:
        raise ValueError(f"ci_prob must be in (0.5, 1); got {ci_prob!r}")
    post = _posterior_dataset(posterior)
    groups = _groups(post)
    K = int(post.sizes.get("component", 1))
    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    fig = _new_figure(4.3 * ncols, (0.55 * K + 1.3) * nrows + 0.8)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    tail = (1 - ci_prob) / 2
    probs = [tail, 0.25, 0.5, 0.75, 1 - tail]
    z = norm.ppf(probs)
    em_color, post_color = "0.35", "tab:blue"
    missing, at_bound = [], []
    for ax, group in zip(axes, groups, strict=False):
        draws = _group_draws(post, group)
        m = draws.shape[2]
        rows = np.arange(m)[::-1].astype(float)
        q = np.quantile(draws.reshape(-1, m), probs, axis=0)  # (5, m)
        em = _em_rows(posterior, group, m)
        for y0, (lo, l50, mid, h50, hi) in zip(rows - 0.15, q.T, strict=True):
            ax.plot([lo, hi], [y0, y0], color=post_color, lw=1.2)
            ax.plot([l50, h50], [y0, y0], color=post_color, lw=3.5, solid_capstyle="butt")
            ax.plot([mid], [y0], "o", color=post_color, ms=5, mfc="white")
        if em is not None:
            for y0, value, se in zip(rows + 0.15, *em, strict=True):
                if group.name == "df" and _at_df_bound(value):
                    at_bound.append(value)  # an estimate on its bound has no Wald interval
                elif np.isfinite(se) and group.log_scale:  # normal on log df (delta method)
                    lo, l50, _, h50, hi = value * np.exp(se / value * z)
                    ax.plot([lo, hi], [y0, y0], color=em_color, lw=1.2)
                    ax.plot([l50, h50], [y0, y0], color=em_color, lw=3.5, solid_capstyle="butt")
                elif np.isfinite(se):
                    lo, l50, _, h50, hi = value + se * z
                    ax.plot([lo, hi], [y0, y0], color=em_color, lw=1.2)
                    ax.plot([l50, h50], [y0, y0], color=em_color, lw=3.5, solid_capstyle="butt")
                else:
                    missing.append(group.title)
                ax.plot([value], [y0], "s", color=em_color, ms=5, mfc="white")
        ax.set_yticks(rows, _group_labels(group, m, K))
        ax.set_ylim(-0.7, m - 0.3)
        if group.log_scale:
            ax.set_xscale("log")
        ax.set_title(group.title, fontsize="medium")
        ax.grid(axis="x", alpha=0.3)
    if missing:
        _warn_band(
            "forest plot: no EM interval where the standard error is NaN (singular observed "
            f"information): {', '.join(dict.fromkeys(missing))}"
        )
    if at_bound:
        _warn_band(
            "forest plot: no EM interval for df at the bound of its estimate "
            f"({', '.join(f'{v:g}' for v in at_bound)}): a Wald interval means nothing there "
            "(at the upper bound a component is practically normal)"
        )
    handles = [
        Line2D([], [], color=em_color, marker="s", mfc="white", lw=2, label="EM, normal approx."),
        Line2D([], [], color=post_color, marker="o", mfc="white", lw=2, label="posterior"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(
        f"EM vs posterior: point (EM estimate, posterior median), 50% and {ci_prob:.0%} intervals"
    )
    return fig


# --------------------------------------------------------------------------------------------
# Posterior predictive check
# --------------------------------------------------------------------------------------------


def _replicate_y(model: Any, posterior: Any, n_replicates: int, rng: np.random.Generator):
    """Replicated data sets ``y_rep`` (R, n) at the training ``X``, one per posterior draw.

    Uses the ``posterior_predictive`` group's ``y`` when the posterior has one; otherwise, for
    ``R`` evenly spaced draws, each observation's component is drawn from the weights (with
    concomitant variables, from its own prior; with groups, one component per group) and
    ``y_rep`` from the component's family at ``η = intercept_z + x . coef_z``: Normal(η, σ_z),
    η + σ_z t_{ν_z}, Poisson(exp(offset + η)) or Binomial(trials, expit(offset + η))
    (:func:`_draw_given`). (One helper, to be replaced by a public ``posterior_predictive``
    when the package has one.)
    """
    if "posterior_predictive" in posterior.children:
        pp = posterior["posterior_predictive"].to_dataset()
        if "y" in pp:
            values = pp["y"].transpose("chain", "draw", ...).to_numpy()
            values = values.reshape(-1, values.shape[-1])
            pick = np.linspace(0, values.shape[0] - 1, min(n_replicates, values.shape[0]))
            return values[np.round(pick).astype(int)]
    post = _posterior_dataset(posterior)
    if post is None or "coef" not in post:
        raise ValueError("the posterior has no 'coef' draws to replicate y from")
    X = np.asarray(model._fit_X, dtype=float)
    K = model.coef_.shape[0]
    coef = _stacked(post, "coef", K)
    S = coef.shape[0]
    pick = np.round(np.linspace(0, S - 1, min(n_replicates, S))).astype(int)
    coef = coef[pick]
    intercept = (
        _stacked(post, "intercept", K)[pick] if "intercept" in post else np.zeros((pick.size, K))
    )
    family = model.result_.family
    nuisance = {}  # (R, K) draws of sigma and df, as the family has them
    for name, has in (("sigma", family.has_sigma), ("df", family.has_df)):
        if name in post:
            nuisance[name] = _stacked(post, name, K)[pick]
        elif has:  # fixed (variance="fixed", StudentT(df=...)): the model's value
            value = np.asarray(getattr(model, f"{name}_"), dtype=float)
            nuisance[name] = np.broadcast_to(value, (pick.size, K))
    weights = _stacked(post, "weights", K)[pick] if "weights" in post else np.ones((pick.size, K))
    structure = model._training_structure()
    rows = {k: _plain(structure[k]) for k in ("offset", "trials")}

    def draw(r: int, z: np.ndarray) -> np.ndarray:
        eta = intercept[r, z] + np.einsum("ij,ij->i", X, coef[r, z])
        params = {k: v[r, z] for k, v in nuisance.items()}
        return _draw_given(family.name, eta, params, rows, rng)

    if structure["groups"] is not None or structure["concomitant"] is not None:
        prior = _row_priors(model, post, pick, weights)
        return _replicate_structured(prior, draw, structure["groups"], rng)
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    out = np.empty((pick.size, X.shape[0]))
    for r in range(pick.size):
        u = rng.uniform(size=X.shape[0])
        z = np.minimum(np.searchsorted(cumulative[r], u, side="right"), K - 1)
        out[r] = draw(r, z)
    return out


def _plain(values: Any) -> np.ndarray | None:
    """Per-row training data as a float array (a Dask array computed), or None."""
    return None if values is None else np.asarray(values, dtype=float)


def _draw_given(
    family: str,
    eta: np.ndarray,
    params: dict[str, np.ndarray],
    rows: dict[str, np.ndarray | None],
    rng: np.random.Generator,
) -> np.ndarray:
    """One draw of ``y`` per row given its linear predictor ``eta`` (n,) (the offset not
    included), the row's ``sigma`` and ``df`` in ``params`` and the ``offset`` and ``trials``
    of the rows (None where the fit has none)."""
    offset = 0.0 if rows.get("offset") is None else rows["offset"]
    if family == "poisson":
        return rng.poisson(np.exp(eta + offset)).astype(float)
    if family == "binomial":
        from scipy.special import expit

        trials = 1 if rows.get("trials") is None else np.rint(rows["trials"]).astype(np.int64)
        return rng.binomial(trials, expit(eta + offset)).astype(float)
    if family == "student_t":
        return eta + params["sigma"] * rng.standard_t(params["df"])
    return rng.normal(eta, params["sigma"])


def _row_priors(model: Any, post: Any, pick: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Prior probabilities (R, n, K) of each training row's component at the picked draws:
    the weights, or with concomitant variables their multinomial logit."""
    W = model._training_structure()["concomitant"]
    n, K = model._fit_X.shape[0], weights.shape[1]
    if W is None or "concomitant_coef" not in post:
        w = weights / weights.sum(axis=1, keepdims=True)
        return np.broadcast_to(w[:, None, :], (pick.size, n, K))
    alpha = _stacked(post, "concomitant_intercept", K)[pick]  # (R, K)
    gamma = _stacked(post, "concomitant_coef", K)[pick]  # (R, K, r)
    eta = alpha[:, None, :] + np.einsum("nr,skr->snk", np.asarray(W, dtype=float), gamma)
    eta -= eta.max(axis=2, keepdims=True)
    prior = np.exp(eta)
    return prior / prior.sum(axis=2, keepdims=True)


def _replicate_structured(prior, draw, groups, rng) -> np.ndarray:
    """Replicates of a grouped or concomitant model: one component per group (each row its own
    group without groups) drawn from the group's prior, then ``y`` given the components
    (``draw(r, z)``: replicate ``r``'s ``y`` at the rows' components ``z``)."""
    R, n, K = prior.shape
    if groups is None:
        first, inverse = np.arange(n), np.arange(n)
    else:
        _, first, inverse = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    out = np.empty((R, n))
    for r in range(R):
        cumulative = np.cumsum(prior[r, first], axis=1)  # (G, K): constant within a group
        u = rng.uniform(size=first.size)[:, None]
        z = np.minimum((u > cumulative).sum(axis=1), K - 1)[inverse]
        out[r] = draw(r, z)
    return out


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, probs) -> np.ndarray:
    """Quantiles ``probs`` of each row of ``values`` (the last axis) with the row weights
    ``weights`` (the inverse of the weighted empirical distribution function, as
    ``np.quantile(..., method="inverted_cdf")`` for equal weights); shape ``(..., len(probs))``.
    """
    order = np.argsort(values, axis=-1)
    ordered = np.take_along_axis(values, order, axis=-1)
    cumulative = np.cumsum(np.asarray(weights, dtype=float)[order], axis=-1)
    cumulative /= cumulative[..., -1:]
    out = np.empty((*values.shape[:-1], len(probs)))
    for k, prob in enumerate(probs):
        index = np.minimum((cumulative < prob).sum(axis=-1), values.shape[-1] - 1)
        out[..., k] = np.take_along_axis(ordered, index[..., None], axis=-1)[..., 0]
    return out


def plot_ppc(
    model: Any,
    posterior: Any,
    *,
    n_replicates: int = 100,
    response: str | None = None,
    random_state: int = 0,
):
    """Posterior predictive check: the density of the observed ``y`` against replicates.

    ``n_replicates`` data sets are drawn from the mixture at the training ``X``, one per
    posterior draw (:func:`_replicate_y`); each is drawn as a thin kernel density, the observed
    ``y`` as a thick one, all with the observed data's bandwidth (sample weights, if the fit
    had them, weight every density). If the model describes the data, the observed curve lies
    within the bundle of replicates. The titles give posterior predictive p-values,
    ``P(T(y_rep) >= T(y))``, of the mean and the standard deviation (near 0 or 1: misfit);
    for Student-t components, which may have no mean or variance, of the median and the
    interquartile range.
    Poisson and binomial fits are checked on the response as :func:`plot_fit` draws it (the
    rate ``y / exposure`` with an offset, the proportion ``y / trials``), with the densities
    reflected at 0 (and 1) so that none leaks below 0 (above 1).

    Parameters
    ----------
    model : MixtureOfRegressions
        Fitted (its training data are the observed data).
    posterior : xarray.DataTree
    n_replicates : int, default=100
    response : str, optional
        Label of the x axis; default the formula's response, else ``"y"``.
    random_state : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    model._check_fitted()
    if (
        isinstance(n_replicates, bool)
        or not isinstance(n_replicates, int | np.integer)
        or n_replicates < 1
    ):
        raise ValueError(f"n_replicates must be a positive integer; got {n_replicates!r}")
    if response is None:
        state = model._formula_state()
        response = state.response if state is not None else "y"
    rng = np.random.default_rng(random_state)
    y = np.asarray(model._fit_y, dtype=float)
    sw = getattr(model, "_fit_sample_weight", None)
    sw = None if sw is None else np.asarray(sw, dtype=float)
    y_rep = _replicate_y(model, posterior, n_replicates, rng)
    structure = model._training_structure()
    scale = _response_scale(
        model, y, _plain(structure["offset"]), _plain(structure["trials"]), response
    )
    y, y_rep, response = scale.shown, scale.show(y_rep), scale.label
    bw = _bandwidth(y)
    low, high = scale.bounds
    lo = min(y.min(), np.quantile(y_rep, 0.001)) - 3 * bw
    hi = max(y.max(), np.quantile(y_rep, 0.999)) + 3 * bw
    # heavy tails (Student-t with small df) may replicate far beyond the data: the view stays
    # within half the data's range of it (mass outside still counts in each density)
    reach = 0.5 * (y.max() - y.min()) + 3 * bw
    lo, hi = max(lo, y.min() - reach), min(hi, y.max() + reach)
    lo, hi = (lo if low is None else max(lo, low)), (hi if high is None else min(hi, high))
    grid = np.linspace(lo, hi, 400)

    def density(values: np.ndarray) -> np.ndarray:
        """Kernel density, reflected at the bounds of counts and proportions (so that no
        mass falls below 0 or above 1)."""
        out = _density(values, grid, bw, sw)
        for bound in (b for b in (low, high) if b is not None):
            out = out + _density(2 * bound - values, grid, bw, sw)
        return out

    fig = _new_figure(7.5, 4.6)
    ax = fig.subplots()
    for rep in y_rep:
        ax.plot(grid, density(rep), color="tab:blue", lw=0.6, alpha=0.2)
    ax.plot(grid, density(y), color="black", lw=2.2)

    def stat(values, kind):
        """Weighted mean, sd, median or interquartile range of each replicate (the last
        axis), or of the data."""
        w = np.ones(values.shape[-1]) if sw is None else np.asarray(sw, dtype=float)
        if kind in ("median", "IQR"):
            q = _weighted_quantiles(values, w, [0.25, 0.5, 0.75])
            return q[..., 1] if kind == "median" else q[..., 2] - q[..., 0]
        mean = values @ w / w.sum()
        if kind == "mean":
            return mean
        return np.sqrt(((values - np.asarray(mean)[..., None]) ** 2) @ w / w.sum())

    # t components may have no mean or variance (df <= 2): robust statistics instead
    kinds = ("median", "IQR") if model.result_.family.name == "student_t" else ("mean", "sd")
    p_values = {k: float(np.mean(stat(y_rep, k) >= stat(y, k))) for k in kinds}
    ax.set_xlabel(response)
    ax.set_ylabel("density")
    ax.set_ylim(bottom=0)
    ax.set_xlim(lo, hi)
    ax.set_title(
        "posterior predictive p-values: " + ", ".join(f"{k} {v:.2f}" for k, v in p_values.items()),
        fontsize="medium",
    )
    handles = [
        Line2D([], [], color="black", lw=2.2, label=f"observed {response}"),
        Line2D(
            [], [], color="tab:blue", lw=1, alpha=0.6, label=f"{len(y_rep)} replicated data sets"
        ),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize="small", frameon=False)
    fig.suptitle(f"Posterior predictive check: density of {response}, n = {y.size}")
    return fig


# --------------------------------------------------------------------------------------------
# All plots
# --------------------------------------------------------------------------------------------


def plot_names(model: Any, posterior: Any = None) -> list[str]:
    """The plots :func:`write_plots` draws for ``model`` (keys of :data:`PLOT_FILES`).

    ``fit`` and ``em_trace`` always; ``mixing`` for a model with concomitant variables; with a
    posterior ``trace``, ``rank``, ``forest`` and ``ppc``.
    """
    names = ["fit"]
    if getattr(model, "concomitant_coef_", None) is not None:
        names.append("mixing")
    names.append("em_trace")
    if posterior is not None:
        names += ["trace", "rank", "forest", "ppc"]
    return names


def write_plots(
    directory: str | Path,
    model: Any,
    posterior: Any = None,
    *,
    data: Any = None,
    formula: str | None = None,
    response: str | None = None,
    ci_prob: float = 0.94,
    dpi: int = DEFAULT_DPI,
    vector_format: str | None = None,
) -> dict[str, Path]:
    """Write every plot as a PNG into ``directory`` (names in :data:`PLOT_FILES`).

    Without a posterior only ``fit.png`` (EM bands) and ``em_trace.png`` are written, and
    ``mixing.png`` for a model with concomitant variables.

    Parameters
    ----------
    directory : path-like
    model : MixtureOfRegressions
    posterior : xarray.DataTree, optional
    data, formula : optional
        The raw data frame and formula of a formula model: ``fit.png`` then has a panel per
        original variable (see :func:`plot_fit`).
    response : str, optional
        Label of the response.
    ci_prob : float
    dpi : int, default=150
    vector_format : {"pdf", "svg"}, optional
        Also write each figure in this vector format (``fit.pdf``, ...).

    Returns
    -------
    dict of str to pathlib.Path
        The files written, by plot name (the PNG files); with ``vector_format`` also
        ``"<name>_<format>"`` (e.g. ``"fit_pdf"``) for the vector copies.
    """
    _check_vector_format(vector_format)
    directory = Path(directory)
    makers: dict[str, Any] = {
        "fit": lambda: plot_fit(
            model, posterior, data=data, formula=formula, response=response, ci_prob=ci_prob
        ),
        "mixing": lambda: plot_mixing(model, data=data, formula=formula, ci_prob=ci_prob),
        "em_trace": lambda: plot_log_likelihood_trace(model),
        "trace": lambda: plot_trace(posterior),
        "rank": lambda: plot_rank(posterior),
        "forest": lambda: plot_forest(posterior, ci_prob=ci_prob),
        "ppc": lambda: plot_ppc(model, posterior, response=response),
    }
    out = {}
    for name in plot_names(model, posterior):
        make = makers[name]
        path = directory / PLOT_FILES[name]
        out[name] = save_figure(make(), path, dpi=dpi, vector_format=vector_format)
        if vector_format is not None:
            out[f"{name}_{vector_format}"] = path.with_suffix(f".{vector_format}")
    return out
