"""Model specifications in TOML: what ``bayes-mlr run SPEC`` fits, documented in models/README.md.

A spec names the data (a CSV/Parquet file and a formula, or data simulated from given true
parameters), the model (``n_components``, ``variance``, and optionally concomitant variables of
the mixing weights and coefficients shared by all components), the EM settings, the posterior
settings and, optionally, diagnostic thresholds and the K range of ``select-k``::

    name = "prices"
    [data]
    path = "prices.csv"          # relative to the spec file
    formula = "price ~ size + age | seller"   # "| g": all rows of a group share a component
    [model]
    n_components = 2
    variance = "component"       # component | shared | fixed (then sigma = ...)
    concomitant = "~ region"     # mixing weights: a multinomial logit in these variables
    shared = "~ age"             # one coefficient of age for all components
    # family = "poisson"         # gaussian | poisson | binomial | student_t (then df = ...)
    # offset = "np.log(Hours)"   # poisson, binomial: added to the linear predictor
    # trials = "Total"           # binomial: the number of trials of each row
    [em]
    n_init = 10
    random_state = 0
    [posterior]
    draws = 1000
    tune = 1000
    chains = 4
    random_seed = 1

:func:`load_spec` validates everything before any computation and raises :class:`SpecError`
with a one-line message that names the file and the key. Unknown keys are errors (with a
suggestion), so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayes_mlr._validation import SPURIOUS_MODES
from bayes_mlr.bayes.priors import PRIOR_ARGUMENTS
from bayes_mlr.bayes.starts import STARTS
from bayes_mlr.core.labels import RELABEL_METHODS
from bayes_mlr.workflow.plots import DEFAULT_DPI, VECTOR_FORMATS

__all__ = [
    "DataSpec",
    "DiagnosticsSettings",
    "EMSettings",
    "LoadedData",
    "ModelSettings",
    "PlotSettings",
    "PosteriorSettings",
    "SelectKSettings",
    "SimulateSpec",
    "Spec",
    "SpecError",
    "check_one_sided",
    "load_data",
    "load_spec",
    "parse_spec",
    "read_table",
    "simulated_frame",
]

VARIANCES = ("component", "shared", "fixed")
FAMILY_NAMES = ("gaussian", "poisson", "binomial", "student_t")
#: The families with a sigma (the others' variance is a function of the mean).
SIGMA_FAMILIES = ("gaussian", "student_t")
#: Columns of simulated data that hold each row's exposure (Poisson) and number of trials
#: (binomial), and the [model] offset / trials that read them by default.
SIMULATED_EXPOSURE = "exposure"
SIMULATED_TRIALS = "trials"
SIMULATED_OFFSET = f"np.log({SIMULATED_EXPOSURE})"
INITS = ("auto", "random", "subsets", "short_runs")
SAMPLERS = ("auto", "nutpie", "pymc", "numpyro", "gibbs")
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: The column of simulated data that holds each row's group (``[data.simulate] n_groups``).
SIMULATED_GROUP = "group"


class SpecError(ValueError):
    """A model specification is invalid; the message names the file and the key."""


# --------------------------------------------------------------------------------------------
# The parsed specification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulateSpec:
    """``[data.simulate]``: draw data from known parameters (see :func:`bayes_mlr.simulate`)."""

    n: int
    coef: list[list[float]]
    weights: list[float] | None = None
    intercept: list[float] | None = None
    sigma: list[float] | float | None = None
    random_state: int | None = None
    feature_names: list[str] | None = None
    n_groups: int | None = None
    concomitant_intercept: list[float] | None = None
    concomitant_coef: list[list[float]] | None = None
    concomitant_names: list[str] | None = None
    family: str = "gaussian"
    df: list[float] | float | None = None
    trials: list[int] | int | None = None
    exposure: list[float] | None = None

    @property
    def n_components(self) -> int:
        return len(self.coef)

    @property
    def n_features(self) -> int:
        return len(self.coef[0])

    def names(self) -> list[str]:
        """Column names of the features (``x0, x1, ...`` unless given)."""
        if self.feature_names is not None:
            return list(self.feature_names)
        return [f"x{k}" for k in range(self.n_features)]

    def concomitant_columns(self) -> list[str]:
        """Column names of the concomitant variables (``w0, w1, ...`` unless given; none
        without ``concomitant_coef``)."""
        if self.concomitant_coef is None:
            return []
        if self.concomitant_names is not None:
            return list(self.concomitant_names)
        return [f"w{k}" for k in range(len(self.concomitant_coef[0]))]

    def default_formula(self) -> str:
        """``y ~ x0 + x1 + ...``, with ``| group`` when the rows are grouped."""
        formula = "y ~ " + " + ".join(self.names())
        return formula + (f" | {SIMULATED_GROUP}" if self.n_groups is not None else "")

    def row_columns(self) -> dict[str, str]:
        """The per-row columns the family adds (``exposure`` of a Poisson simulation with an
        exposure range, ``trials`` of a binomial one), by the [model] key that reads them,
        with the expression it reads them by: ``{"offset": "np.log(exposure)"}``."""
        if self.family == "poisson" and self.exposure is not None:
            return {"offset": SIMULATED_OFFSET}
        if self.family == "binomial":
            return {"trials": SIMULATED_TRIALS}
        return {}


@dataclass(frozen=True)
class DataSpec:
    """``[data]``: a table file and a formula, or simulated data."""

    path: Path | None = None
    formula: str | None = None
    simulate: SimulateSpec | None = None
    sample_weight: str | None = None
    na_action: str = "raise"


@dataclass(frozen=True)
class ModelSettings:
    """``[model]``.

    ``family`` is the component family (``df`` fixes the degrees of freedom of Student-t
    components); ``offset`` and ``trials`` are expressions over the data's columns
    (``"np.log(Hours)"``, ``"Total"``), evaluated like :func:`bayes_mlr.formula.
    evaluate_expression`.
    """

    n_components: int = 2
    variance: str = "component"
    sigma: float | None = None
    concomitant: str | None = None
    shared: str | None = None
    family: str = "gaussian"
    df: float | None = None
    offset: str | None = None
    trials: str | None = None

    def family_object(self) -> Any:
        """``family=`` of the estimator: the name, or ``StudentT(df=df)`` with a fixed df."""
        if self.family == "student_t" and self.df is not None:
            from bayes_mlr.core.components import StudentT

            return StudentT(df=self.df)
        return self.family


@dataclass(frozen=True)
class EMSettings:
    """``[em]``: arguments of :class:`~bayes_mlr.MixtureOfRegressions`."""

    n_init: int = 10
    max_iter: int = 1000
    tol: float = 1e-8
    init: str = "auto"
    random_state: int | None = None
    spurious: str = "avoid"
    min_weight: float | None = None


@dataclass(frozen=True)
class PosteriorSettings:
    """``[posterior]``: arguments of :func:`bayes_mlr.bayes.model.sample_posterior`."""

    enabled: bool = True
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    random_seed: int | None = None
    sampler: str = "auto"
    target_accept: float = 0.8
    log_likelihood: bool = True
    cores: int | None = None
    starts: str = "dispersed"
    relabel: str = "em"
    priors: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sampler_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``pymc.sample`` (``cores`` when given)."""
        return {} if self.cores is None else {"cores": self.cores}


@dataclass(frozen=True)
class DiagnosticsSettings:
    """``[diagnostics]``: thresholds of :func:`bayes_mlr.diagnose` and the interval width."""

    rhat_max: float = 1.01
    ess_bulk_min: float = 400.0
    ess_tail_min: float = 400.0
    max_divergences: int = 0
    bfmi_min: float = 0.3
    relabelled_max: float = 0.05
    agreement_min: float = 0.95
    ci_prob: float = 0.94

    def thresholds(self) -> dict[str, float]:
        """The keyword arguments of :func:`bayes_mlr.diagnose`."""
        out = dataclasses.asdict(self)
        out.pop("ci_prob")
        return out


@dataclass(frozen=True)
class SelectKSettings:
    """``[select_k]``: the K values that ``bayes-mlr select-k`` compares."""

    n_components: list[int] | None = None
    loo: bool = True


@dataclass(frozen=True)
class PlotSettings:
    """``[plots]``: the resolution of the PNG files and an optional vector copy of each."""

    dpi: int = DEFAULT_DPI
    vector_format: str | None = None


@dataclass(frozen=True)
class Spec:
    """A validated model specification (see the module docstring and models/README.md)."""

    name: str
    data: DataSpec
    model: ModelSettings = ModelSettings()
    em: EMSettings = EMSettings()
    posterior: PosteriorSettings = PosteriorSettings()
    diagnostics: DiagnosticsSettings = DiagnosticsSettings()
    select_k: SelectKSettings = SelectKSettings()
    plots: PlotSettings = PlotSettings()
    description: str = ""
    path: Path | None = None

    def estimator(
        self,
        *,
        fit_intercept: bool = True,
        n_components: int | None = None,
        shared: list[str] | None = None,
    ):
        """A fresh :class:`~bayes_mlr.MixtureOfRegressions` with this spec's settings.

        Parameters
        ----------
        fit_intercept : bool
            From the formula (:attr:`LoadedData.fit_intercept`).
        n_components : int, optional
            Default ``[model] n_components``.
        shared : list of str, optional
            The shared features (and ``"intercept"``) of the evaluated ``[model] shared``
            formula (:attr:`LoadedData.shared`).
        """
        from bayes_mlr.estimator import MixtureOfRegressions

        return MixtureOfRegressions(
            self.model.n_components if n_components is None else n_components,
            variance=self.model.variance,
            sigma=self.model.sigma,
            fit_intercept=fit_intercept,
            init=self.em.init,
            n_init=self.em.n_init,
            max_iter=self.em.max_iter,
            tol=self.em.tol,
            random_state=self.em.random_state,
            spurious=self.em.spurious,
            min_weight=self.em.min_weight,
            shared=shared,
            family=self.model.family_object(),
        )

    @property
    def grouped(self) -> bool:
        """Whether the rows are grouped (``| g`` in the formula, or simulated groups)."""
        return _is_grouped(self.data)

    @property
    def structured(self) -> bool:
        """Whether the model has groups, concomitant variables or shared coefficients."""
        return self.grouped or self.model.concomitant is not None or self.model.shared is not None

    def k_values(self) -> list[int]:
        """The K values of ``select-k``: ``[select_k] n_components`` or 1 .. K + 1."""
        if self.select_k.n_components is not None:
            return list(self.select_k.n_components)
        return list(range(1, max(self.model.n_components + 1, 3) + 1))

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (paths as strings), e.g. for ``run.json``."""

        def plain(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value

        return plain(dataclasses.asdict(self))


# --------------------------------------------------------------------------------------------
# Validation helpers: every message names the file, the table and the key
# --------------------------------------------------------------------------------------------


class _Reader:
    """Reads one TOML table, checking keys and types; errors say where."""

    def __init__(self, table: Any, section: str, source: str, allowed: tuple[str, ...]):
        self.source, self.section = source, section
        where = f"[{section}]" if section else "the top level"
        if not isinstance(table, Mapping):
            raise SpecError(f"{source}: {where} must be a table; got {type(table).__name__}")
        self.table = table
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SpecError(
                    f"{source}: unknown key {self.label(key)}{hint}; allowed in {where}: "
                    f"{', '.join(allowed)}"
                )

    def label(self, key: str) -> str:
        return f"[{self.section}] {key}" if self.section else key

    def fail(self, key: str, message: str) -> SpecError:
        return SpecError(f"{self.source}: {self.label(key)} {message}")

    def has(self, key: str) -> bool:
        return key in self.table

    def raw(self, key: str, default: Any = None) -> Any:
        return self.table.get(key, default)

    def integer(self, key: str, default: Any, low: int | None = None) -> Any:
        value = self.table.get(key, default)
        if value is None and key not in self.table:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer; got {value!r}")
        if low is not None and value < low:
            raise self.fail(key, f"must be an integer >= {low}; got {value}")
        return int(value)

    def number(
        self,
        key: str,
        default: Any,
        *,
        positive: bool = False,
        low: float | None = None,
        high: float | None = None,
        open_high: bool = False,
    ) -> Any:
        value = self.table.get(key, default)
        if value is None and key not in self.table:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self.fail(key, f"must be a number; got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise self.fail(key, f"must be finite; got {value}")
        if positive and value <= 0:
            raise self.fail(key, f"must be positive; got {value:g}")
        if low is not None and value < low:
            raise self.fail(key, f"must be >= {low:g}; got {value:g}")
        if high is not None and (value >= high if open_high else value > high):
            raise self.fail(key, f"must be {'<' if open_high else '<='} {high:g}; got {value:g}")
        return value

    def string(self, key: str, default: Any, choices: tuple[str, ...] | None = None) -> Any:
        value = self.table.get(key, default)
        if value is None and key not in self.table:
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string; got {value!r}")
        if choices is not None and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.fail(
                key, f"must be one of {', '.join(map(repr, choices))}; got {value!r}{hint}"
            )
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false; got {value!r}")
        return value

    def vector(self, key: str, length: int | None = None, *, positive: bool = False) -> Any:
        value = self.table.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
        ):
            raise self.fail(key, f"must be a non-empty list of numbers; got {value!r}")
        out = [float(v) for v in value]
        if not all(math.isfinite(v) for v in out):
            raise self.fail(key, f"must hold finite numbers; got {value!r}")
        if length is not None and len(out) != length:
            raise self.fail(key, f"must have {length} entries (one per component); got {len(out)}")
        if positive and any(v <= 0 for v in out):
            raise self.fail(key, f"must hold positive numbers; got {value!r}")
        return out


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _parse_simulate(table: Any, source: str) -> SimulateSpec:
    r = _Reader(
        table,
        "data.simulate",
        source,
        (
            "n",
            "weights",
            "intercept",
            "coef",
            "sigma",
            "random_state",
            "feature_names",
            "n_groups",
            "concomitant_intercept",
            "concomitant_coef",
            "concomitant_names",
            "family",
            "df",
            "trials",
            "exposure",
        ),
    )
    if not r.has("n"):
        raise r.fail("n", "is required: the number of observations to simulate")
    n = r.integer("n", None, low=1)
    coef = r.raw("coef")
    if coef is None:
        raise r.fail(
            "coef",
            "is required: one list of coefficients per component, e.g. coef = [[1.5], [-1.0]]",
        )
    if (
        isinstance(coef, list)
        and coef
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in coef)
    ):
        coef = [[v] for v in coef]  # one feature: coef = [1.5, -1.0]
    if (
        not isinstance(coef, list)
        or not coef
        or not all(isinstance(row, list) and row for row in coef)
        or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for row in coef for v in row
        )
    ):
        raise r.fail(
            "coef", f"must be a list of lists of numbers (components x features); got {coef!r}"
        )
    if len({len(row) for row in coef}) != 1:
        raise r.fail(
            "coef",
            "rows must all have the same length (one entry per feature); "
            f"got lengths {[len(row) for row in coef]}",
        )
    coef = [[float(v) for v in row] for row in coef]
    if not all(math.isfinite(v) for row in coef for v in row):
        raise r.fail("coef", "must hold finite numbers")
    K, p = len(coef), len(coef[0])
    weights = r.vector("weights", K)
    if weights is not None and (any(w < 0 for w in weights) or abs(sum(weights) - 1) > 1e-8):
        raise r.fail(
            "weights", f"must be non-negative and sum to 1; got {weights} (sum {sum(weights):g})"
        )
    intercept = r.vector("intercept", K)
    family = r.string("family", "gaussian", FAMILY_NAMES)
    sigma: Any = r.raw("sigma")
    if sigma is not None and not isinstance(sigma, list):
        sigma = r.number("sigma", None, positive=True)
    elif sigma is not None:
        sigma = r.vector("sigma", K, positive=True)
    df, trials, exposure = _parse_simulated_family(r, family, K)
    random_state = r.integer("random_state", None, low=0)
    names = r.raw("feature_names")
    if names is not None:
        if (
            not isinstance(names, list)
            or len(names) != p
            or not all(isinstance(v, str) and _IDENTIFIER.match(v) for v in names)
            or len(set(names)) != p
            or "y" in names
        ):
            raise r.fail(
                "feature_names",
                f"must be {p} distinct names usable in a formula "
                f"(letters, digits, _; not 'y'); got {names!r}",
            )
    n_groups = r.integer("n_groups", None, low=1)
    if n_groups is not None and n_groups > n:
        raise r.fail(
            "n_groups", f"must be at most n = {n} (every group gets a row); got {n_groups}"
        )
    gamma, alpha, conc_names = _parse_simulated_concomitant(r, K, weights)
    features = names or [f"x{k}" for k in range(p)]
    if n_groups is not None and SIMULATED_GROUP in features:
        raise r.fail("feature_names", f"cannot hold {SIMULATED_GROUP!r} (the column of the groups)")
    row_column = {"poisson": SIMULATED_EXPOSURE, "binomial": SIMULATED_TRIALS}.get(family)
    if row_column is not None and row_column in features:
        raise r.fail(
            "feature_names", f"cannot hold {row_column!r} (the column of the {family} rows' data)"
        )
    if gamma is not None:
        columns = conc_names or [f"w{k}" for k in range(len(gamma[0]))]
        clash = sorted((set(features) | {"y", SIMULATED_GROUP, row_column or "y"}) & set(columns))
        if clash:
            raise r.fail(
                "concomitant_names",
                f"must differ from the feature names, 'y' and {SIMULATED_GROUP!r}; "
                f"{', '.join(map(repr, clash))} is taken (columns {columns})",
            )
    return SimulateSpec(
        n=n,
        coef=coef,
        weights=weights,
        intercept=intercept,
        sigma=sigma,
        random_state=random_state,
        feature_names=names,
        n_groups=n_groups,
        concomitant_intercept=alpha,
        concomitant_coef=gamma,
        concomitant_names=conc_names,
        family=family,
        df=df,
        trials=trials,
        exposure=exposure,
    )


def _parse_simulated_family(r: _Reader, family: str, K: int) -> tuple[Any, Any, Any]:
    """``df`` (Student-t), ``trials`` (binomial) and ``exposure`` (Poisson) of
    ``[data.simulate]``, each refused with another family; ``sigma`` refused for the families
    without one."""
    owners = {"df": "student_t", "trials": "binomial", "exposure": "poisson"}
    for key, owner in owners.items():
        if r.has(key) and family != owner:
            raise r.fail(key, f'is only used with family = "{owner}"; family is {family!r}')
    if r.has("sigma") and family not in SIGMA_FAMILIES:
        raise r.fail(
            "sigma",
            f"is not used with family = {family!r}: its variance is a function of its mean",
        )
    df: Any = r.raw("df")
    if df is not None:
        df = (
            r.vector("df", K, positive=True)
            if isinstance(df, list)
            else r.number("df", None, positive=True)
        )
    trials: Any = r.raw("trials")
    if trials is not None:
        pair = isinstance(trials, list)
        values = trials if pair else [trials]
        if (
            len(values) not in ((2,) if pair else (1,))
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)
            or values[0] > values[-1]
        ):
            raise r.fail(
                "trials",
                f"must be a positive integer (every row's) or a range [low, high] of them; "
                f"got {trials!r}",
            )
    exposure: Any = r.raw("exposure")
    if exposure is not None:
        exposure = r.vector("exposure", positive=True)
        if len(exposure) != 2 or exposure[0] > exposure[1]:
            raise r.fail(
                "exposure", f"must be a range [low, high] of positive numbers; got {exposure!r}"
            )
    return df, trials, exposure


def _parse_simulated_concomitant(
    r: _Reader, K: int, weights: list[float] | None
) -> tuple[list[list[float]] | None, list[float] | None, list[str] | None]:
    """``concomitant_coef`` (K x r, row 0 zeros), ``concomitant_intercept`` (K, entry 0 zero)
    and ``concomitant_names`` of ``[data.simulate]``."""
    gamma = r.raw("concomitant_coef")
    for key in ("concomitant_intercept", "concomitant_names"):
        if gamma is None and r.has(key):
            raise r.fail(key, "is only used with concomitant_coef (the concomitant model)")
    if gamma is None:
        return None, None, None
    if weights is not None:
        raise r.fail(
            "weights",
            "cannot be given with concomitant_coef: the concomitant model sets the weights",
        )
    if (
        not isinstance(gamma, list)
        or len(gamma) != K
        or not all(isinstance(row, list) and row for row in gamma)
        or len({len(row) for row in gamma}) != 1
        or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            for row in gamma
            for v in row
        )
    ):
        raise r.fail(
            "concomitant_coef",
            f"must be {K} lists (one per component) of the same length, one finite number per "
            f"concomitant variable, e.g. [[0.0], [1.5]]; got {gamma!r}",
        )
    gamma = [[float(v) for v in row] for row in gamma]
    if any(v != 0 for v in gamma[0]):
        raise r.fail(
            "concomitant_coef",
            f"row 0 must be zeros (component 0 is the reference); got {gamma[0]}",
        )
    alpha = r.vector("concomitant_intercept", K)
    if alpha is not None and alpha[0] != 0:
        raise r.fail(
            "concomitant_intercept",
            f"entry 0 must be 0 (component 0 is the reference); got {alpha[0]:g}",
        )
    n_conc = len(gamma[0])
    names = r.raw("concomitant_names")
    if names is not None and (
        not isinstance(names, list)
        or len(names) != n_conc
        or not all(isinstance(v, str) and _IDENTIFIER.match(v) for v in names)
        or len(set(names)) != n_conc
    ):
        raise r.fail(
            "concomitant_names",
            f"must be {n_conc} distinct names usable in a formula (letters, digits, _); "
            f"got {names!r}",
        )
    return gamma, alpha, names


def _parse_data(table: Any, source: str, base_dir: Path) -> DataSpec:
    r = _Reader(
        table, "data", source, ("path", "formula", "simulate", "sample_weight", "na_action")
    )
    path_text = r.string("path", None)
    formula = r.string("formula", None)
    simulate = r.raw("simulate")
    if path_text is not None and simulate is not None:
        raise SpecError(f"{source}: [data] has both path and simulate; give one of them")
    if path_text is None and simulate is None:
        raise SpecError(
            f"{source}: [data] needs path (a CSV or Parquet file) and formula, or a "
            "[data.simulate] table"
        )
    sample_weight = r.string("sample_weight", None)
    na_action = r.string("na_action", "raise", ("raise", "drop"))
    if formula is not None:
        _check_grouping(r, formula)
    if path_text is not None:
        if formula is None:
            raise r.fail("formula", 'is required with path, e.g. formula = "price ~ size + age"')
        path = Path(path_text).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if path.suffix.lower() not in TABLE_SUFFIXES:
            raise r.fail(
                "path",
                f"must be a CSV (.csv, .tsv) or Parquet (.parquet, .pq) file; got {path_text!r}",
            )
        if not path.is_file():
            raise r.fail("path", f"names a file that does not exist: {path}")
        return DataSpec(
            path=path, formula=formula, sample_weight=sample_weight, na_action=na_action
        )
    if sample_weight is not None:
        raise r.fail("sample_weight", "is only used with path (a column of the data file)")
    sim = _parse_simulate(simulate, source)
    if formula is not None and "~" not in formula:
        raise r.fail("formula", f"must look like 'y ~ x0 + x1'; got {formula!r}")
    return DataSpec(formula=formula, simulate=sim, na_action=na_action)


def _check_grouping(r: _Reader, formula: str) -> None:
    """Refuse a malformed grouping term (``"y ~ x | a + b"``) before any data are read."""
    from bayes_mlr.formula import FormulaError, split_groups

    try:
        split_groups(formula)
    except FormulaError as exc:
        raise r.fail("formula", f"is not a valid grouped formula: {exc}") from exc


#: Examples shown in the messages about ``[model] concomitant`` and ``shared``.
ONE_SIDED_EXAMPLES = {"concomitant": "~ z1 + C(z2)", "shared": "~ w"}


def check_one_sided(text: str, key: str) -> str:
    """Check a one-sided formula of ``[model] concomitant`` or ``shared`` (``"~ z1 + C(z2)"``).

    Parameters
    ----------
    text : str
    key : {"concomitant", "shared"}
        Which one (for the example in the message).

    Returns
    -------
    str
        ``text`` without surrounding spaces.

    Raises
    ------
    ValueError
        The text is not ``~`` followed by terms, or holds a grouping term ``|``; the message
        starts with "must" (callers put the key or the option in front).
    """
    stripped = text.strip()
    if not stripped.startswith("~") or not stripped[1:].strip() or "~" in stripped[1:]:
        raise ValueError(
            f"must be a one-sided formula such as {ONE_SIDED_EXAMPLES[key]!r} (nothing left of "
            f"'~'); got {text!r}"
        )
    depth, bar = 0, False  # a '|' inside parentheses is Python's "or" (I(a | b))
    for char in stripped:
        depth += (char == "(") - (char == ")")
        bar = bar or (char == "|" and depth == 0)
    if bar:
        raise ValueError(
            f"must not hold a grouping term '|' (group the rows in the model formula, "
            f"'y ~ x | g'); got {text!r}"
        )
    return stripped


def _one_sided(r: _Reader, key: str) -> str | None:
    """``[model] concomitant`` or ``shared``: a one-sided formula, or None."""
    text = r.string(key, None)
    if text is None:
        return None
    try:
        return check_one_sided(text, key)
    except ValueError as exc:
        raise r.fail(key, str(exc)) from None


def _expression(r: _Reader, key: str, default: str | None) -> str | None:
    """``[model] offset`` or ``trials``: a non-empty expression over the data's columns."""
    text = r.string(key, default)
    if text is not None and not text.strip():
        raise r.fail(key, 'must be an expression over the data\'s columns, e.g. "np.log(Hours)"')
    return None if text is None else text.strip()


def family_problem(model: ModelSettings) -> tuple[str, str] | None:
    """The first ``[model]`` setting that does not go with ``model.family``, as ``(key,
    message)`` (the message starts with the verb; callers put the key or option in front), or
    None. Used by the spec parser and by the command line's options alike.
    """
    family = model.family
    if model.df is not None and family != "student_t":
        return "df", f'is only used with family = "student_t"; family is {family!r}'
    if model.offset is not None and family not in ("poisson", "binomial"):
        return (
            "offset",
            f'applies to family = "poisson" or "binomial" (added to the linear predictor, '
            f"e.g. a log exposure); family is {family!r}",
        )
    if model.trials is not None and family != "binomial":
        return "trials", f'applies to family = "binomial" only; family is {family!r}'
    if family not in SIGMA_FAMILIES and (model.variance != "component" or model.sigma is not None):
        key = "variance" if model.variance != "component" else "sigma"
        return (
            key,
            f"is not used with family = {family!r}: it has no sigma (its variance is a "
            "function of its mean); leave it out",
        )
    return None


def _parse_priors(table: Any, source: str) -> dict[str, dict[str, Any]]:
    r = _Reader(table, "posterior.priors", source, tuple(PRIOR_ARGUMENTS))
    out: dict[str, dict[str, Any]] = {}
    for name, args in r.table.items():
        inner = _Reader(args, f"posterior.priors.{name}", source, PRIOR_ARGUMENTS[name])
        out[name] = {}
        for key, value in inner.table.items():
            if isinstance(value, list):
                out[name][key] = inner.vector(key, positive=key in ("alpha", "sigma"))
            else:
                out[name][key] = inner.number(key, None, positive=key in ("alpha", "sigma"))
    return out


def parse_spec(
    document: Mapping[str, Any],
    *,
    base_dir: str | Path = ".",
    source: str = "<spec>",
    default_name: str | None = None,
) -> Spec:
    """Validate a parsed TOML document and build a :class:`Spec`.

    Parameters
    ----------
    document : mapping
        The result of ``tomllib.loads``.
    base_dir : path-like
        Directory that relative data paths are resolved against (the spec file's).
    source : str
        Shown at the start of every error message (the spec file's path).
    default_name : str, optional
        Used when the spec has no ``name`` (the file's stem).

    Returns
    -------
    Spec

    Raises
    ------
    SpecError
    """
    top = _Reader(
        document,
        "",
        source,
        (
            "name",
            "description",
            "data",
            "model",
            "em",
            "posterior",
            "diagnostics",
            "select_k",
            "plots",
        ),
    )
    name = top.string("name", default_name)
    if name is None:
        raise SpecError(f"{source}: name is required (it names the output folder runs/<name>/)")
    if not _NAME.match(name):
        raise top.fail(
            "name",
            f"must be letters, digits, '_', '-' or '.' (it names the output folder); got {name!r}",
        )
    description = top.string("description", "")
    if "data" not in document:
        raise SpecError(f"{source}: the [data] table is required")
    data = _parse_data(document["data"], source, Path(base_dir))

    m = _Reader(
        document.get("model", {}),
        "model",
        source,
        (
            "n_components",
            "family",
            "variance",
            "sigma",
            "df",
            "offset",
            "trials",
            "concomitant",
            "shared",
        ),
    )
    sim = data.simulate
    # simulated data: the model's family defaults to the simulation's, and its offset and
    # trials to the columns the simulation adds
    family = m.string("family", sim.family if sim is not None else "gaussian", FAMILY_NAMES)
    defaults = sim.row_columns() if sim is not None and sim.family == family else {}
    variance = m.string("variance", "component", VARIANCES)
    sigma = m.number("sigma", None, positive=True)
    if variance == "fixed" and sigma is None:
        raise m.fail("sigma", 'is required with variance = "fixed" (the known noise sd)')
    if variance != "fixed" and sigma is not None:
        raise m.fail("sigma", f'is only used with variance = "fixed"; variance is {variance!r}')
    model = ModelSettings(
        n_components=m.integer("n_components", 2, low=1),
        variance=variance,
        sigma=sigma,
        concomitant=_one_sided(m, "concomitant"),
        shared=_one_sided(m, "shared"),
        family=family,
        df=m.number("df", None, positive=True),
        offset=_expression(m, "offset", defaults.get("offset")),
        trials=_expression(m, "trials", defaults.get("trials")),
    )
    problem = family_problem(model)
    if problem is not None:
        raise m.fail(*problem)

    e = _Reader(
        document.get("em", {}),
        "em",
        source,
        ("n_init", "max_iter", "tol", "init", "random_state", "spurious", "min_weight"),
    )
    em = EMSettings(
        n_init=e.integer("n_init", 10, low=1),
        max_iter=e.integer("max_iter", 1000, low=1),
        tol=e.number("tol", 1e-8, low=0.0),
        init=e.string("init", "auto", INITS),
        random_state=e.integer("random_state", None, low=0),
        spurious=e.string("spurious", "avoid", SPURIOUS_MODES),
        min_weight=e.number("min_weight", None, positive=True, high=1.0, open_high=True),
    )
    structure = [
        what
        for what, present in (
            ("[model] concomitant", model.concomitant is not None),
            ("[model] shared", model.shared is not None),
            ("a grouping term '| g' in [data] formula", _is_grouped(data)),
            (f"[model] family = {model.family!r}", model.family != "gaussian"),
        )
        if present
    ]
    if em.min_weight is not None and structure:
        raise e.fail(
            "min_weight",
            f"is not available with {' and '.join(structure)}; leave it out",
        )

    p = _Reader(
        document.get("posterior", {}),
        "posterior",
        source,
        (
            "enabled",
            "draws",
            "tune",
            "chains",
            "random_seed",
            "sampler",
            "target_accept",
            "log_likelihood",
            "cores",
            "starts",
            "relabel",
            "priors",
        ),
    )
    posterior = PosteriorSettings(
        enabled=p.boolean("enabled", True),
        draws=p.integer("draws", 1000, low=1),
        tune=p.integer("tune", 1000, low=0),
        chains=p.integer("chains", 4, low=1),
        random_seed=p.integer("random_seed", None, low=0),
        sampler=p.string("sampler", "auto", SAMPLERS),
        target_accept=p.number("target_accept", 0.8, low=0.0, high=1.0, open_high=True),
        log_likelihood=p.boolean("log_likelihood", True),
        cores=p.integer("cores", None, low=1),
        starts=p.string("starts", "dispersed", STARTS),
        relabel=p.string("relabel", "em", RELABEL_METHODS),
        priors=_parse_priors(p.raw("priors", {}), source),
    )

    d = _Reader(
        document.get("diagnostics", {}),
        "diagnostics",
        source,
        tuple(f.name for f in dataclasses.fields(DiagnosticsSettings)),
    )
    diagnostics = DiagnosticsSettings(
        rhat_max=d.number("rhat_max", 1.01, low=1.0),
        ess_bulk_min=d.number("ess_bulk_min", 400.0, low=0.0),
        ess_tail_min=d.number("ess_tail_min", 400.0, low=0.0),
        max_divergences=d.integer("max_divergences", 0, low=0),
        bfmi_min=d.number("bfmi_min", 0.3, low=0.0),
        relabelled_max=d.number("relabelled_max", 0.05, low=0.0, high=1.0),
        agreement_min=d.number("agreement_min", 0.95, low=0.0, high=1.0),
        ci_prob=d.number("ci_prob", 0.94, positive=True, high=1.0, open_high=True),
    )

    s = _Reader(document.get("select_k", {}), "select_k", source, ("n_components", "loo"))
    ks = s.raw("n_components")
    if ks is not None and (
        not isinstance(ks, list)
        or not ks
        or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks)
        or len(set(ks)) != len(ks)
    ):
        raise s.fail("n_components", f"must be a list of distinct integers >= 1; got {ks!r}")
    select_k = SelectKSettings(n_components=ks, loo=s.boolean("loo", True))

    g = _Reader(document.get("plots", {}), "plots", source, ("dpi", "vector_format"))
    vector_format = g.string("vector_format", "none", ("none", *VECTOR_FORMATS))
    plots = PlotSettings(
        dpi=g.integer("dpi", DEFAULT_DPI, low=50),
        vector_format=None if vector_format == "none" else vector_format,
    )

    return Spec(
        name=name,
        description=description,
        data=data,
        model=model,
        em=em,
        posterior=posterior,
        diagnostics=diagnostics,
        select_k=select_k,
        plots=plots,
    )


def _is_grouped(data: DataSpec) -> bool:
    from bayes_mlr.formula import split_groups

    sim = data.simulate
    formula = data.formula or (sim.default_formula() if sim is not None else "")
    return split_groups(formula)[1] is not None


def load_spec(path: str | Path) -> Spec:
    """Read and validate a TOML model specification.

    Parameters
    ----------
    path : path-like
        The ``.toml`` file; data paths in it are relative to its directory.

    Returns
    -------
    Spec

    Raises
    ------
    SpecError
        The file is missing, is not valid TOML, or breaks the schema (one-line message naming
        the file and the key).
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not a UTF-8 text file ({exc.reason})") from exc
    spec = parse_spec(
        document, base_dir=path.resolve().parent, source=str(path), default_name=path.stem
    )
    return dataclasses.replace(spec, path=path.resolve())


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedData:
    """The data a spec describes, ready for the estimator.

    Attributes
    ----------
    X : pandas.DataFrame of shape (n_samples, n_features)
        Feature columns named after the formula's terms.
    y : ndarray of shape (n_samples,)
    sample_weight : ndarray of shape (n_samples,) or None
    fit_intercept : bool
    formula : str
    frame : pandas.DataFrame
        The table the formula was evaluated on (simulated: features and ``y``).
    truth : dict or None
        For simulated data: ``weights``, ``intercept``, ``coef``, ``sigma`` that generated it.
    source : dict
        Where the data came from (``path`` or ``simulate``, ``formula``), for reports.
    design : bayes_mlr.formula.Design or None
        The evaluated formula (its encoding of new data frames travels with a fitted model),
        with the grouping column, the concomitant design and the shared features of
        ``[model] concomitant`` and ``shared``
        (:func:`bayes_mlr.formula.structured_design`).
    offset, trials : ndarray of shape (n_samples,) or None
        ``[model] offset`` and ``trials`` evaluated on the rows of ``X``.
    """

    X: Any
    y: np.ndarray
    sample_weight: np.ndarray | None
    fit_intercept: bool
    formula: str
    frame: Any
    truth: dict[str, np.ndarray] | None
    source: dict[str, Any]
    design: Any = None
    offset: np.ndarray | None = None
    trials: np.ndarray | None = None

    @property
    def feature_names(self) -> list[str]:
        return [str(c) for c in self.X.columns]

    @property
    def groups(self) -> np.ndarray | None:
        """The group of each row (``| g`` in the formula), or None."""
        return None if self.design is None else self.design.groups

    @property
    def group(self) -> str | None:
        """The name of the grouping column, or None."""
        return None if self.design is None else self.design.group

    @property
    def concomitant(self) -> Any:
        """The encoded concomitant variables (a float DataFrame of shape (n_samples, r),
        numbered like ``X``), or None."""
        conc = None if self.design is None else self.design.concomitant
        return None if conc is None else conc.reset_index(drop=True)

    @property
    def shared(self) -> list[str] | None:
        """The features with a shared coefficient (``"intercept"`` too when shared), or None."""
        return None if self.design is None else self.design.shared


def read_table(path: str | Path) -> Any:
    """Read a CSV, TSV or Parquet file into a pandas DataFrame, by its suffix.

    Raises
    ------
    ValueError
        Unknown suffix, or a file that cannot be parsed (one-line message).
    FileNotFoundError
    """
    import pandas as pd

    path = Path(path)
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: unknown table format; use .csv, .tsv, .parquet or .pq")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file")
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except (ValueError, OSError, ImportError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: cannot read the {kind} file: {text}") from exc


def simulated_frame(
    sim: SimulateSpec, *, labels: bool = False
) -> tuple[Any, dict[str, np.ndarray]]:
    """Draw the data of a ``[data.simulate]`` table.

    Parameters
    ----------
    sim : SimulateSpec
    labels : bool
        Add a column ``component`` with each row's true component.

    Returns
    -------
    frame : pandas.DataFrame
        The feature columns, the concomitant variables (``w0, ...`` or ``concomitant_names``),
        the column ``group`` (with ``n_groups``), ``exposure`` (Poisson with an exposure
        range), ``trials`` (binomial) and ``y`` (and ``component``).
    truth : dict
        ``weights``, ``intercept``, ``coef``, ``sigma`` (Gaussian and Student-t), ``df``
        (Student-t) that generated the data; with a concomitant model also
        ``concomitant_intercept`` and ``concomitant_coef`` (``weights`` are then the mean
        prior over the rows).
    """
    import pandas as pd

    from bayes_mlr.simulate import simulate

    data = simulate(
        sim.n,
        weights=sim.weights,
        intercept=sim.intercept,
        coef=sim.coef,
        sigma=sim.sigma,
        random_state=sim.random_state,
        n_groups=sim.n_groups,
        concomitant_intercept=sim.concomitant_intercept,
        concomitant_coef=sim.concomitant_coef,
        **_simulated_family(sim),
    )
    frame = pd.DataFrame(data.X, columns=sim.names())
    if data.concomitant is not None:
        for k, name in enumerate(sim.concomitant_columns()):
            frame[name] = data.concomitant[:, k]
    if data.groups is not None:
        frame[SIMULATED_GROUP] = data.groups
    if data.offset is not None:
        frame[SIMULATED_EXPOSURE] = np.exp(data.offset)
    if data.trials is not None:
        frame[SIMULATED_TRIALS] = data.trials.astype(np.int64)
    frame["y"] = data.y
    if labels:
        frame["component"] = data.z
    return frame, {k: np.asarray(v) for k, v in data.truth.items()}


def _simulated_family(sim: SimulateSpec) -> dict[str, Any]:
    """The family keywords of :func:`bayes_mlr.simulate` from ``[data.simulate]`` (none for
    Gaussian data, whose draws stay those of earlier versions)."""
    if sim.family == "gaussian":
        return {}
    out: dict[str, Any] = {"family": sim.family}
    for key in ("df", "trials", "exposure"):
        if getattr(sim, key) is not None:
            out[key] = getattr(sim, key)
    return out


def _row_data(spec: Spec, frame: Any, design: Any, y: np.ndarray) -> dict[str, Any]:
    """``[model] offset`` and ``trials`` evaluated on the rows the formula kept, checked with
    the response against the family before any fit; errors name the key."""
    from bayes_mlr.core.components import resolve_family
    from bayes_mlr.formula import FormulaError, evaluate_expression

    model = spec.model
    rows = frame.loc[design.X.index] if hasattr(design.X, "index") else frame
    out: dict[str, Any] = {"offset": None, "trials": None}
    where = f"{spec.path}: [model] " if spec.path is not None else "the model's "
    for key in out:
        expression = getattr(model, key)
        if expression is None:
            continue
        try:
            out[key] = evaluate_expression(expression, rows, key)
        except FormulaError as exc:
            raise SpecError(f"{where}{key} {expression!r} does not fit the data: {exc}") from exc
    try:
        family = resolve_family(model.family_object())
        family.check_response(np.asarray(y, dtype=float), out["offset"], out["trials"])
    except ValueError as exc:
        given = [f"{k} {getattr(model, k)!r}" for k in out if out[k] is not None]
        text = str(exc).replace("pass trials= for", "set [model] trials for")
        raise SpecError(
            f"{where}family = {model.family!r}"
            + (f" with {' and '.join(given)}" if given else "")
            + f" does not fit the data: {text}"
        ) from exc
    return out


def _check_model_variables(spec: Spec, frame: Any) -> None:
    """Refuse, naming the key, a ``[model] concomitant`` or ``shared`` formula that uses a
    column the data lack (evaluated inside the model formula, the error would name that)."""
    import formulaic

    columns = [str(c) for c in frame.columns]
    for key in ("concomitant", "shared"):
        text = getattr(spec.model, key)
        if text is None:
            continue
        subject = (
            f"{spec.path}: [model] {key}"
            if spec.path is not None
            else f"{spec.data.path or 'the data'}: the {key} formula"
        )
        try:
            needed = set(formulaic.Formula(text).required_variables)
        except formulaic.errors.FormulaicError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
            raise SpecError(f"{subject} {text!r} has a syntax error: {first}") from exc
        missing = sorted(needed - set(columns))
        if missing:
            raise SpecError(
                f"{subject} {text!r} uses column(s) {', '.join(map(repr, missing))} that the "
                f"data lack (columns: {', '.join(columns)})"
            )


def load_data(spec: Spec) -> LoadedData:
    """Read or simulate the data of ``spec`` and apply its formula.

    Raises
    ------
    SpecError
        The formula (or ``[model] concomitant`` or ``shared``) does not fit the data, the
        sample-weight column is missing, or the data cannot be read.
    """
    from bayes_mlr.formula import NA_DROP_HINT, FormulaError, structured_design

    # Messages start with the spec file and its table; without a file (a spec built on the
    # command line or from a dict) the data file, which every message below names, suffices.
    where = f"{spec.path}: [data] " if spec.path is not None else ""
    data = spec.data
    truth = None
    if data.simulate is not None:
        frame, truth = simulated_frame(data.simulate)
        formula = data.formula or data.simulate.default_formula()
        source: dict[str, Any] = {"simulate": dataclasses.asdict(data.simulate), "formula": formula}
    else:
        assert data.path is not None and data.formula is not None
        try:
            frame = read_table(data.path)
        except (ValueError, FileNotFoundError) as exc:
            raise SpecError(f"{where}path: {exc}" if where else str(exc)) from exc
        formula = data.formula
        source = {"path": str(data.path), "formula": formula}
    model = spec.model
    _check_model_variables(spec, frame)
    try:
        design = structured_design(
            formula,
            frame,
            concomitant=model.concomitant,
            shared=model.shared,
            na_action=data.na_action,
        )
    except FormulaError as exc:
        text = str(exc)
        key = next(
            (k for k in ("concomitant", "shared") if text.startswith((f"{k} formula", f"{k} "))),
            None,
        )
        if where:
            prefix = f"{where}formula: " if key is None else f"{spec.path}: [model] {key}: "
            message = prefix + text.replace(NA_DROP_HINT, 'set na_action = "drop" in [data]')
        else:
            message = f"{data.path}: {exc}" if data.path is not None else text
        raise SpecError(message) from exc
    sample_weight = None
    if data.sample_weight is not None:
        if data.sample_weight not in frame.columns:
            subject = f"{where}sample_weight names" if where else f"{data.path}: the weights are"
            raise SpecError(
                f"{subject} column {data.sample_weight!r}, which the data lack "
                f"(columns: {', '.join(map(str, frame.columns))})"
            )
        if data.na_action == "drop":
            frame = frame.loc[design.X.index]
        sample_weight = np.asarray(frame[data.sample_weight], dtype=float)
        source["sample_weight"] = data.sample_weight
    rows = _row_data(spec, frame, design, design.y)
    for key, value in rows.items():
        if value is not None:
            source[key] = getattr(model, key)
    X = design.X.reset_index(drop=True)
    return LoadedData(
        X=X,
        y=design.y,
        sample_weight=sample_weight,
        fit_intercept=design.fit_intercept,
        formula=formula,
        frame=frame,
        truth=truth,
        source=source,
        design=design,
        **rows,
    )
