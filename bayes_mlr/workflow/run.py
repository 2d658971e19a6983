"""The steps behind ``bayes-mlr run``: data, EM, posterior, checks, plots, report, in a folder.

:func:`run_spec` is the whole pipeline for a :class:`~bayes_mlr.workflow.spec.Spec`;
:func:`fit_spec` is EM alone and :func:`select_k` the comparison of several K. The command line
(:mod:`bayes_mlr.workflow.cli`) only parses arguments and prints; notebooks can call these
directly.

Artifacts of a run (names in :data:`ARTIFACTS`), written into a fresh folder that replaces the
run folder when the run succeeds, so that the folder holds exactly what its last run wrote:

``spec.toml``, ``run.json`` (what ran: spec, truth of simulated data, timings, versions,
warnings, the list of artifacts), ``em.json``, ``model/`` (the estimator:
``MixtureOfRegressions.load``), ``posterior.nc``, ``comparison.csv``, ``diagnostics.json``,
the PNG plots of :data:`bayes_mlr.workflow.plots.PLOT_FILES` and ``report.md``.
"""

from __future__ import annotations

import contextlib
import json
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayes_mlr.workflow.spec import (
    DataSpec,
    LoadedData,
    ModelSettings,
    SimulateSpec,
    Spec,
    load_data,
)

__all__ = [
    "ARTIFACTS",
    "RUN_SCHEMA_VERSION",
    "RunResult",
    "diagnosis_to_dict",
    "fit_spec",
    "redraw_plots",
    "run_data",
    "run_spec",
    "select_k",
    "summary_table",
]

RUN_SCHEMA_VERSION = 1
ARTIFACTS = {
    "spec": "spec.toml",
    "run": "run.json",
    "em": "em.json",
    "model": "model",
    "posterior": "posterior.nc",
    "comparison": "comparison.csv",
    "diagnostics": "diagnostics.json",
    "report": "report.md",
}

Echo = Callable[[str], None]
# Warnings meant for developers of the libraries we call; a run does not report them.
_DEVELOPER_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _collect_warnings(stage: str, sink: list[str], echo: Echo) -> Iterator[None]:
    """Record warnings of a stage, print each once as one line, keep them for the report."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = set()
    for w in caught:
        if issubclass(w.category, _DEVELOPER_WARNINGS):
            continue  # about library internals, not about this fit
        text = f"{stage}: {w.category.__name__}: {str(w.message).strip()}"
        if text not in seen:
            seen.add(text)
            sink.append(text)
            echo(f"  warning: {text}")


@contextlib.contextmanager
def _spinner(message: str, enabled: bool) -> Iterator[None]:
    """A spinner on a terminal (rich, which PyMC brings); nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield
        return
    try:
        from rich.console import Console
    except ImportError:  # pragma: no cover - rich comes with PyMC
        yield
        return
    with Console(stderr=True).status(message):
        yield


@dataclass
class RunResult:
    """What :func:`run_spec` produced.

    Attributes
    ----------
    directory : pathlib.Path
    model : MixtureOfRegressions
    data : LoadedData
    posterior : xarray.DataTree or None
    comparison : pandas.DataFrame or None
        :func:`bayes_mlr.compare_em_posterior`.
    diagnosis : Diagnosis or None
        :func:`bayes_mlr.diagnose`.
    artifacts : dict of str to pathlib.Path
    warnings : list of str
    """

    directory: Path
    model: Any
    data: LoadedData
    posterior: Any = None
    comparison: Any = None
    diagnosis: Any = None
    artifacts: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.artifacts["report"]

    @property
    def ok(self) -> bool | None:
        """Whether the diagnostics passed (None without a posterior)."""
        return None if self.diagnosis is None else bool(self.diagnosis.ok)


# --------------------------------------------------------------------------------------------
# EM
# --------------------------------------------------------------------------------------------


def fit_spec(
    spec: Spec,
    data: LoadedData | None = None,
    *,
    n_components: int | None = None,
    echo: Echo = _stderr,
    progress: bool = True,
    warnings_sink: list[str] | None = None,
):
    """Fit EM as ``spec`` says (on ``data``, loaded from the spec when not given).

    Returns
    -------
    model : MixtureOfRegressions
    data : LoadedData
    """
    if data is None:
        data = load_data(spec)
    sink = [] if warnings_sink is None else warnings_sink
    model = spec.estimator(
        fit_intercept=data.fit_intercept, n_components=n_components, shared=data.shared
    )
    n, p = data.X.shape
    echo(
        f"EM: K = {model.n_components}, {_family_text(spec.model)}, {model.n_init} starts "
        f"(init = {model.init}) on {n} observations x {p} feature(s)"
        + "".join(f"; {part}" for part in _structure_phrases(data, spec))
    )
    start = time.perf_counter()
    with _spinner("EM restarts running", progress), _collect_warnings("EM", sink, echo):
        model.fit(
            data.X,
            data.y,
            sample_weight=data.sample_weight,
            groups=data.groups,
            concomitant=data.concomitant,
            offset=data.offset,
            trials=data.trials,
        )
    if data.design is not None:  # a saved model then encodes raw data frames, as from_formula's
        model._remember_formula(data.design, offset=spec.model.offset, trials=spec.model.trials)
    elapsed = time.perf_counter() - start
    echo(
        f"EM: {'converged' if model.converged_ else 'NOT converged'} after {model.n_iter_} "
        f"iterations in {elapsed:.2f} s, log-likelihood {model.log_likelihood_:.4f}"
    )
    return model, data


def _family_text(model: ModelSettings) -> str:
    """``variance = component`` (Gaussian), ``family = poisson, offset np.log(Hours)``,
    ``family = student_t (df = 4), variance = component``: the component model in one line."""
    if model.family == "gaussian":
        return f"variance = {model.variance}"
    text = f"family = {model.family}"
    if model.df is not None:
        text += f" (df = {model.df:g})"
    for key in ("offset", "trials"):
        if getattr(model, key) is not None:
            text += f", {key} {getattr(model, key)}"
    if model.family == "student_t":
        text += f", variance = {model.variance}"
    return text


def _structure_phrases(data: LoadedData, spec: Spec | None = None) -> list[str]:
    """Short phrases for the structure of a model: groups, mixing model, shared coefficients.

    Returns
    -------
    list of str
        E.g. ``["120 groups (id)", "mixing weights ~ z", "shared: w"]``; empty for the plain
        model.
    """
    out = []
    if data.groups is not None:
        out.append(f"{len(np.unique(data.groups))} groups ({data.group})")
    if data.concomitant is not None:
        formula = spec.model.concomitant if spec is not None else None
        out.append(f"mixing weights {formula or '~ ' + ' + '.join(data.concomitant.columns)}")
    if data.shared:
        out.append("shared: " + ", ".join(data.shared))
    return out


def summary_table(model: Any, truth: dict[str, np.ndarray] | None = None) -> Any:
    """EM estimates with standard errors (and the truth, for simulated data), one row each.

    A shared coefficient (or intercept) is one row, component ``"shared"``. A model with
    concomitant variables adds ``concomitant_intercept`` and ``concomitant_coef`` rows for
    components 1 .. K-1 (component 0 is the reference, its entries are 0). The rows are the
    family's parameters: no ``sigma`` for Poisson and binomial, ``df`` for Student-t.

    Returns
    -------
    pandas.DataFrame
        Index like ``"coef[0, size]"``, ``"coef[shared, w]"``, ``"concomitant_coef[1, z]"``;
        columns ``parameter``, ``component``, ``feature``, ``em``, ``em_se`` and, with
        ``truth``, ``truth``.
    """
    import pandas as pd

    from bayes_mlr.workflow.io import parameter_names

    se = dict(model.standard_errors_)
    names = model.feature_names
    shared = np.asarray(getattr(model, "shared_", np.zeros(len(names), bool)), dtype=bool)
    shared_intercept = bool(getattr(model.result_, "shared_intercept", False))
    conc = getattr(model, "concomitant_coef_", None) is not None
    conc_names = [str(n) for n in model.concomitant_names_in_] if conc else []
    rows, index = [], []

    def add(name: str, value: Any, error: Any, idx: tuple, component: Any, feature: Any):
        label = f"{name}[{component}" + (f", {feature}]" if feature is not None else "]")
        row = {
            "parameter": name,
            "component": component,
            "feature": feature,
            "em": float(value[idx]),
            "em_se": float(np.asarray(error)[idx]),
        }
        if truth is not None:
            t = truth.get(name)
            t = None if t is None else np.asarray(t, dtype=float)
            row["truth"] = float(t[idx]) if t is not None and t.shape == value.shape else np.nan
        rows.append(row)
        index.append(label)

    for name in parameter_names(model):
        value = np.asarray(getattr(model, f"{name}_"))
        se.setdefault(name, np.full(value.shape, np.nan))  # a fixed df has none
        later = []  # a parameter all components share: one row, after the others
        for idx in np.ndindex(value.shape):
            feature = names[idx[1]] if name == "coef" else None
            is_shared = (name == "coef" and shared[idx[1]]) or (
                name == "intercept" and shared_intercept
            )
            if not is_shared:
                add(name, value, se[name], idx, idx[0], feature)
            elif idx[0] == 0:
                later.append((idx, feature))
        for idx, feature in later:
            add(name, value, se[name], idx, "shared", feature)
    if conc:
        for name in ("concomitant_intercept", "concomitant_coef"):
            value = np.asarray(getattr(model, f"{name}_"))
            for idx in np.ndindex(value.shape):
                if idx[0] == 0:
                    continue  # the reference component: fixed at 0
                feature = conc_names[idx[1]] if name == "concomitant_coef" else None
                add(name, value, se[name], idx, idx[0], feature)
    return pd.DataFrame(rows, index=index)


# --------------------------------------------------------------------------------------------
# Diagnostics as JSON
# --------------------------------------------------------------------------------------------


def diagnosis_to_dict(diagnosis: Any, posterior: Any = None) -> dict[str, Any]:
    """The content of ``diagnostics.json``: verdict, problems, thresholds, per-parameter table.

    Keys: ``ok``, ``verdict`` (``"passed"``/``"failed"``), ``problems``, ``n_divergences``,
    ``bfmi``, ``relabelled_fraction``, ``thresholds``, ``sampling`` (sampler, chains, draws,
    tune, wall time), ``priors`` (the priors the draws came from, as
    :func:`bayes_mlr.bayes.priors.describe_priors` records them; None if unknown), ``invariant``
    (R-hat and ESS of the label-invariant lp and log-likelihood), ``modes`` (one record per
    posterior mode: chains, mean lp, estimated share, nearest EM optimum; None if not
    recorded) and ``table``
    (one record per parameter: ``label``, ``parameter``, ``component``, ``feature``, ``mean``,
    ``sd``, ``hdi_low``, ``hdi_high``, ``ess_bulk``, ``ess_tail``, ``r_hat``, ...).
    """
    table = diagnosis.table.copy()
    table.insert(0, "label", table.index.astype(str))
    records = []
    for rec in table.to_dict(orient="records"):
        records.append({k: (None if _is_missing(v) else v) for k, v in rec.items()})
    sampling: dict[str, Any] = {}
    priors = None
    if posterior is not None:
        post = posterior["posterior"]
        attrs = post.attrs
        sampling = {
            "sampler": attrs.get("sampler"),
            "chains": int(post.sizes["chain"]),
            "draws": int(post.sizes["draw"]),
            "tune": attrs.get("tuning_steps"),
            "sampling_wall_time": attrs.get("sampling_wall_time"),
        }
        if attrs.get("priors"):
            priors = json.loads(attrs["priors"])
        if "modes" in posterior.children:
            modes = posterior["modes"]
            sampling["starts"] = modes.attrs.get("starts")
            sampling["chain_starts"] = [str(v) for v in modes["chain_start"].values]
    return {
        "ok": bool(diagnosis.ok),
        "verdict": "passed" if diagnosis.ok else "failed",
        "problems": list(diagnosis.problems),
        "n_divergences": diagnosis.n_divergences,
        "bfmi": None if diagnosis.bfmi is None else np.asarray(diagnosis.bfmi),
        "relabelled_fraction": diagnosis.relabelled_fraction,
        "relabel_agreement": diagnosis.relabel_agreement,
        "relabel_ambiguous_share": diagnosis.ambiguous_share,
        "identified": bool(diagnosis.identified),
        "thresholds": dict(diagnosis.thresholds),
        "sampling": sampling,
        "priors": priors,
        "invariant": _records(diagnosis.invariant, "quantity"),
        "modes": None if diagnosis.modes is None else _records(diagnosis.modes, "mode"),
        "table": records,
    }


def _records(table: Any, index_name: str) -> list[dict[str, Any]]:
    """A table as JSON-ready records, its index as the first field."""
    out = []
    for key, row in table.iterrows():
        record = {index_name: key if not isinstance(key, np.integer) else int(key)}
        for k, v in row.items():
            if isinstance(v, tuple):
                v = [int(x) for x in v]
            record[k] = None if not isinstance(v, list) and _is_missing(v) else v
        out.append(record)
    return out


def _is_missing(value: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("bayes_mlr", "numpy", "scipy", "pandas", "xarray", "pymc", "arviz_stats"):
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None) if module is not None else None
        if version is not None:
            out[name] = str(version)
    return out


def run_spec(
    spec: Spec,
    directory: str | Path | None = None,
    *,
    posterior: bool | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    sampler: str | None = None,
    random_seed: int | None = None,
    cores: int | None = None,
    starts: str | None = None,
    progress: bool = True,
    echo: Echo = _stderr,
) -> RunResult:
    """Run a spec end to end and write every artifact into ``directory``.

    EM (restarts), then, unless disabled, the posterior (chains started at the distinct EM
    optima and over-dispersed points, or all at EM with ``starts="em"``), the EM-vs-posterior
    comparison, the diagnostics, the plots and ``report.md``. The keyword arguments override
    the spec's ``[posterior]`` settings.

    Parameters
    ----------
    spec : Spec
    directory : path-like, optional
        Default ``runs/<spec.name>`` in the current directory. The run is written into a
        fresh sibling folder that replaces ``directory`` when the run succeeds
        (:func:`bayes_mlr.workflow.io.fresh_directory`): the folder then holds exactly this run's
        files, and a failed or interrupted run leaves the previous folder as it was. An
        existing ``directory`` must be a run folder (with ``run.json``) or empty.
    posterior : bool, optional
        False: EM only (no posterior, comparison or diagnostics).
    draws, tune, chains, sampler, random_seed, cores, starts : optional
        Overrides of ``[posterior]``.
    progress : bool
        Show PyMC's progress bar (and a spinner during EM on a terminal).
    echo : callable
        Receives one line per step (default: print to stderr).

    Returns
    -------
    RunResult

    Raises
    ------
    FileExistsError
        ``directory`` is a file.
    ValueError
        ``directory`` is a non-empty folder that is not a run folder, or the current
        directory (or one of its parents).
    """
    from bayes_mlr.workflow import io, plots, report

    final = Path(directory) if directory is not None else Path("runs") / spec.name
    if final.is_dir() and any(final.iterdir()) and not (final / ARTIFACTS["run"]).is_file():
        raise ValueError(
            f"{final} is not empty and holds no {ARTIFACTS['run']}: it is not a run folder, and "
            "a run replaces its whole folder; choose a new or empty folder"
        )
    settings = spec.posterior
    do_posterior = settings.enabled if posterior is None else posterior
    draws = settings.draws if draws is None else draws
    tune = settings.tune if tune is None else tune
    chains = settings.chains if chains is None else chains
    sampler = settings.sampler if sampler is None else sampler
    random_seed = settings.random_seed if random_seed is None else random_seed
    starts = settings.starts if starts is None else starts
    timings: dict[str, float] = {}
    artifacts: dict[str, Path] = {}
    sink: list[str] = []
    manifest: dict[str, Any] = {
        "schema_version": RUN_SCHEMA_VERSION,
        "format": "bayes_mlr.run",
        "status": "running",
        "name": spec.name,
        "description": spec.description,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "spec_path": str(spec.path) if spec.path is not None else None,
        "spec": spec.to_dict(),
        "data": None,
        "truth": None,
        "posterior": {
            "enabled": bool(do_posterior),
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "sampler": sampler,
            "random_seed": random_seed,
            "starts": starts,
            "relabel": settings.relabel,
        },
        "timings": timings,
        "versions": _versions(),
        "warnings": sink,
        "artifacts": {"run": ARTIFACTS["run"]},
    }

    def record(key: str, path: Path | None = None) -> None:
        """Note an artifact in run.json as soon as it is written, so that the manifest always
        lists exactly what the run has written so far."""
        if path is not None:
            artifacts[key] = Path(path)
            manifest["artifacts"][key] = str(Path(path).relative_to(directory))
        manifest["versions"] = _versions()
        io.write_json(directory / ARTIFACTS["run"], manifest)

    # The run is written into a fresh sibling folder that replaces ``final`` at the end: the
    # folder holds exactly what its last run wrote, and a failed run leaves the previous one.
    with io.fresh_directory(final) as directory:
        echo(f"bayes-mlr run {spec.name}: writing to {final}/")
        record("run")
        if spec.path is not None:
            record(
                "spec",
                io.write_text(directory / ARTIFACTS["spec"], spec.path.read_text(encoding="utf-8")),
            )
        t0 = time.perf_counter()
        data = load_data(spec)
        timings["data"] = time.perf_counter() - t0
        manifest["data"] = {
            **data.source,
            "n_obs": int(data.X.shape[0]),
            "feature_names": data.feature_names,
            "fit_intercept": data.fit_intercept,
            "response": _response(data.formula),
            "group": data.group,
            "n_groups": None if data.groups is None else len(np.unique(data.groups)),
            "concomitant": spec.model.concomitant,
            "concomitant_names": (
                None if data.concomitant is None else [str(c) for c in data.concomitant.columns]
            ),
            "shared": spec.model.shared,
            "family": spec.model.family,
            "offset": spec.model.offset,
            "trials": spec.model.trials,
        }
        manifest["truth"] = data.truth
        source = "simulated" if data.truth is not None else str(spec.data.path)
        echo(f"Data: {data.X.shape[0]} observations from {source}; formula {data.formula}")

        t0 = time.perf_counter()
        model, data = fit_spec(spec, data, echo=echo, progress=progress, warnings_sink=sink)
        with _collect_warnings("standard errors", sink, echo):
            _ = model.standard_errors_
        timings["em"] = time.perf_counter() - t0
        record("model", model.save(directory / ARTIFACTS["model"]))
        record(
            "em",
            io.write_json(directory / ARTIFACTS["em"], io.em_summary(model, source=data.source)),
        )

        tree = comparison = diagnosis = None
        if do_posterior:
            from bayes_mlr.bayes.diagnostics import compare_em_posterior, diagnose

            echo(
                f"Posterior: {chains} chains x ({tune} tune + {draws} draws), sampler = {sampler}, "
                + (
                    "chains started at the distinct EM optima and over-dispersed points"
                    if starts == "dispersed"
                    else "every chain started at the EM estimate"
                )
            )
            t0 = time.perf_counter()
            with _collect_warnings("posterior", sink, echo):
                tree = model.sample_posterior(
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    sampler=sampler,
                    random_seed=random_seed,
                    progressbar=progress,
                    priors=settings.priors or None,
                    target_accept=settings.target_accept,
                    log_likelihood=settings.log_likelihood,
                    starts=starts,
                    relabel=settings.relabel,
                    **_sampler_kwargs(settings, cores),
                )
            timings["posterior"] = time.perf_counter() - t0
            tree.attrs["data_sha256"] = io.training_data_hash(model)
            tree.attrs["spec_name"] = spec.name
            echo(
                f"Posterior: sampled in {timings['posterior']:.1f} s "
                f"({tree['posterior'].attrs.get('sampler')}); writing {ARTIFACTS['posterior']}"
            )
            record("posterior", io.write_datatree(tree, directory / ARTIFACTS["posterior"]))
            t0 = time.perf_counter()
            with _collect_warnings("diagnostics", sink, echo):
                comparison = compare_em_posterior(model, tree, ci_prob=spec.diagnostics.ci_prob)
                diagnosis = diagnose(tree, **spec.diagnostics.thresholds())
            timings["diagnostics"] = time.perf_counter() - t0
            record(
                "comparison",
                io.write_text(
                    directory / ARTIFACTS["comparison"], comparison.to_csv(index_label="label")
                ),
            )
            record(
                "diagnostics",
                io.write_json(
                    directory / ARTIFACTS["diagnostics"], diagnosis_to_dict(diagnosis, tree)
                ),
            )
            echo(_diagnosis_line(diagnosis) + "".join(f"\n  - {p}" for p in diagnosis.problems))

        shown = [plots.PLOT_FILES[k] for k in plots.plot_names(model, tree)]
        if spec.plots.vector_format is not None:
            shown.append(f"a {spec.plots.vector_format.upper()} copy of each")
        echo("Plots: " + ", ".join(shown))
        t0 = time.perf_counter()
        with _collect_warnings("plots", sink, echo):
            written = plots.write_plots(
                directory,
                model,
                tree,
                data=data.frame,
                formula=data.formula,
                response=_response(data.formula),
                ci_prob=spec.diagnostics.ci_prob,
                dpi=spec.plots.dpi,
                vector_format=spec.plots.vector_format,
            )
        for key, path in written.items():
            artifacts[key] = path
            manifest["artifacts"][key] = path.name
        timings["plots"] = time.perf_counter() - t0

        manifest["status"] = "complete"
        manifest["artifacts"]["report"] = ARTIFACTS["report"]
        record("run", directory / ARTIFACTS["run"])
        artifacts["report"] = report.build_report(directory, shown_as=final)
    artifacts = {key: final / path.relative_to(directory) for key, path in artifacts.items()}
    return RunResult(
        directory=final,
        model=model,
        data=data,
        posterior=tree,
        comparison=comparison,
        diagnosis=diagnosis,
        artifacts=artifacts,
        warnings=sink,
    )


def run_data(run: dict[str, Any], model: Any) -> LoadedData | None:
    """The data a run folder's model was fitted on, read again from what ``run.json`` records.

    The data file is read again (or the simulated data drawn again from their seed) and
    encoded with the run's formula; the result is used only if its SHA-256 equals that of the
    model's training data, so a file edited since the run is never drawn beside the old fit.

    Parameters
    ----------
    run : dict
        The content of ``run.json``.
    model : MixtureOfRegressions
        The run's fitted model (``model/``).

    Returns
    -------
    LoadedData or None
        None when the file is gone, unreadable or changed (a :class:`UserWarning` says which).
    """
    from bayes_mlr.workflow import io
    from bayes_mlr.workflow.spec import SpecError

    recorded = (run.get("spec") or {}).get("data") or {}
    recorded_model = (run.get("spec") or {}).get("model") or {}
    simulate = recorded.get("simulate")
    try:
        data_spec = DataSpec(
            path=Path(recorded["path"]) if recorded.get("path") else None,
            formula=recorded.get("formula"),
            simulate=SimulateSpec(**simulate) if simulate else None,
            sample_weight=recorded.get("sample_weight"),
            na_action=recorded.get("na_action", "raise"),
        )
        structure = ModelSettings(
            concomitant=recorded_model.get("concomitant"),
            shared=recorded_model.get("shared"),
            family=recorded_model.get("family", "gaussian"),
            df=recorded_model.get("df"),
            offset=recorded_model.get("offset"),
            trials=recorded_model.get("trials"),
        )
        data = load_data(Spec(name=run.get("name") or "run", data=data_spec, model=structure))
    except (SpecError, TypeError, KeyError, ValueError, OSError) as exc:
        warnings.warn(
            f"the run's data cannot be read again ({exc}); fit.png shows one panel per "
            "feature column instead of the formula's variables",
            UserWarning,
            stacklevel=2,
        )
        return None
    if io.data_hash(
        data.X.to_numpy(dtype=float), data.y, data.offset, data.trials
    ) != io.training_data_hash(model):
        warnings.warn(
            f"the data at {recorded.get('path') or 'the simulation settings'} differ from the "
            "data the model was fitted on; fit.png shows the model's own training data, one "
            "panel per feature column",
            UserWarning,
            stacklevel=2,
        )
        return None
    return data


def redraw_plots(
    directory: str | Path,
    *,
    dpi: int | None = None,
    vector_format: str | None = None,
) -> dict[str, Path]:
    """Draw the plots of a run folder again from its saved files (``bayes-mlr report``).

    Parameters
    ----------
    directory : path-like
        A folder written by :func:`run_spec`.
    dpi, vector_format : optional
        Default: the run's ``[plots]`` settings.

    Returns
    -------
    dict of str to pathlib.Path
        The files written, as :func:`bayes_mlr.workflow.plots.write_plots` returns them;
        ``run.json`` lists them.

    Raises
    ------
    ValueError
        ``posterior.nc`` was sampled on other data than ``model/`` holds.
    """
    from bayes_mlr.estimator import MixtureOfRegressions
    from bayes_mlr.workflow import io, plots

    directory = Path(directory)
    model = MixtureOfRegressions.load(directory / ARTIFACTS["model"])
    run_file = directory / ARTIFACTS["run"]
    run = io.read_json(run_file) if run_file.is_file() else {}
    listed = set(run.get("artifacts", {}).values()) if run else {ARTIFACTS["posterior"]}
    posterior = None
    if (directory / ARTIFACTS["posterior"]).is_file() and ARTIFACTS["posterior"] in listed:
        posterior = io.read_datatree(directory / ARTIFACTS["posterior"])
        expected = io.training_data_hash(model)
        if posterior.attrs.get("data_sha256", expected) != expected:
            raise ValueError(
                f"{directory}/{ARTIFACTS['posterior']} was sampled on other data than "
                f"{ARTIFACTS['model']}/ holds; rerun 'bayes-mlr run'"
            )
    settings = run.get("spec", {})
    shown = settings.get("plots", {})
    data = run_data(run, model) if run else None
    written = plots.write_plots(
        directory,
        model,
        posterior,
        data=None if data is None else data.frame,
        formula=None if data is None else data.formula,
        response=run.get("data", {}).get("response", "y"),
        ci_prob=settings.get("diagnostics", {}).get("ci_prob", 0.94),
        dpi=shown.get("dpi", plots.DEFAULT_DPI) if dpi is None else dpi,
        vector_format=shown.get("vector_format") if vector_format is None else vector_format,
    )
    if run:  # the redrawn plots belong to this run folder now
        run.setdefault("artifacts", {}).update({k: p.name for k, p in written.items()})
        io.write_json(run_file, run)
    return written


def _sampler_kwargs(settings: Any, cores: int | None) -> dict[str, Any]:
    kwargs = settings.sampler_kwargs()
    if cores is not None:
        kwargs["cores"] = cores
    return kwargs


def _diagnosis_line(diagnosis: Any) -> str:
    table = diagnosis.table
    parts = []
    if len(table):
        parts.append(f"max R-hat {table['r_hat'].max():.3f}")
        parts.append(f"min bulk ESS {table['ess_bulk'].min():.0f}")
        parts.append(f"min tail ESS {table['ess_tail'].min():.0f}")
    if diagnosis.n_divergences is not None:
        parts.append(f"{diagnosis.n_divergences} divergences")
    if diagnosis.relabelled_fraction is not None:
        parts.append(f"{diagnosis.relabelled_fraction:.1%} relabelled")
    if diagnosis.modes is not None:
        parts.append(f"{diagnosis.n_modes} posterior mode{'s' if diagnosis.n_modes > 1 else ''}")
    status = "all checks passed" if diagnosis.ok else f"{len(diagnosis.problems)} problem(s)"
    return f"Diagnostics: {', '.join(parts)}: {status}"


def _response(formula: str) -> str:
    return formula.split("~", 1)[0].strip() or "y"


# --------------------------------------------------------------------------------------------
# Choosing K
# --------------------------------------------------------------------------------------------


def select_k(
    spec: Spec,
    k_values: list[int] | None = None,
    *,
    loo: bool | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    sampler: str | None = None,
    random_seed: int | None = None,
    cores: int | None = None,
    starts: str | None = None,
    progress: bool = True,
    echo: Echo = _stderr,
    warnings_sink: list[str] | None = None,
) -> Any:
    """Fit EM for each K (and sample each posterior for PSIS-LOO) and tabulate the criteria.

    Parameters
    ----------
    spec : Spec
        Data and settings; ``[model] n_components`` is replaced by each K.
    k_values : list of int, optional
        Default :meth:`Spec.k_values`.
    loo : bool, optional
        Also sample posteriors and compute PSIS-LOO (default ``[select_k] loo``).
    draws, tune, chains, sampler, random_seed, cores, starts : optional
        Overrides of ``[posterior]`` for the LOO posteriors.

    Returns
    -------
    pandas.DataFrame
        One row per K (index ``n_components``): the columns of
        :func:`bayes_mlr.select_n_components` (``log_likelihood``, ``n_parameters``, ``bic``,
        ``aic``, ``icl``, lower is better, ``converged``, ``spurious``, ``degenerate``,
        ``n_components_fit``), then ``best_bic``, ``best_icl`` (among the fits neither
        spurious nor degenerate) and, with
        LOO, the columns of :func:`bayes_mlr.bayes.diagnostics.compare_n_components` (``elpd_loo``,
        ``se``, ``p_loo``, ``elpd_diff``, ``loo_warning``, ``best_loo``).
    """
    from bayes_mlr.frequentist.selection import criteria_row, criteria_table

    ks = list(k_values) if k_values is not None else spec.k_values()
    loo = spec.select_k.loo if loo is None else loo
    settings = spec.posterior
    sink = [] if warnings_sink is None else warnings_sink
    data = load_data(spec)
    models, posteriors, rows = {}, {}, []
    for i, k in enumerate(ks, start=1):
        echo(f"[{i}/{len(ks)}] K = {k}")
        model, _ = fit_spec(
            spec, data, n_components=k, echo=echo, progress=progress, warnings_sink=sink
        )
        rows.append(criteria_row(model, model._fit_X, model._fit_y, model._fit_sample_weight))
        models[k] = model
        if loo:
            n_draws = settings.draws if draws is None else draws
            n_chains = settings.chains if chains is None else chains
            echo(f"  posterior for LOO: {n_chains} chains x {n_draws} draws")
            with _collect_warnings(f"posterior K={k}", sink, echo):
                posteriors[k] = model.sample_posterior(
                    draws=n_draws,
                    tune=settings.tune if tune is None else tune,
                    chains=n_chains,
                    sampler=settings.sampler if sampler is None else sampler,
                    random_seed=settings.random_seed if random_seed is None else random_seed,
                    progressbar=progress,
                    priors=settings.priors or None,
                    target_accept=settings.target_accept,
                    starts=settings.starts if starts is None else starts,
                    relabel=settings.relabel,
                    **_sampler_kwargs(settings, cores),
                )
    em_table = criteria_table(rows)
    table = em_table.set_index("n_components")
    # the choices among the fits that are neither spurious nor degenerate
    table["best_bic"] = table.index == em_table.attrs["best_bic"]
    table["best_icl"] = table.index == em_table.attrs["best_icl"]
    if loo:
        from bayes_mlr.bayes.diagnostics import compare_n_components

        with _collect_warnings("LOO", sink, echo):
            loo_table = compare_n_components(models, posteriors)
        loo_cols = ["elpd_loo", "se", "p_loo", "elpd_diff", "loo_warning", "best_loo"]
        table = table.join(loo_table[loo_cols])
    return table
