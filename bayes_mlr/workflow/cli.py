"""The ``bayes-mlr`` command: run model specs, fit, simulate, choose K, rebuild reports.

::

    bayes-mlr run models/demo.toml            # EM, posterior, checks, plots, report
    bayes-mlr fit data.csv --formula "y ~ x" -k 2
    bayes-mlr simulate --n 500 --coef "1.5;-1" --out sim.csv
    bayes-mlr select-k models/demo.toml --k 1-4
    bayes-mlr report runs/demo

Bad input (a missing file, an invalid spec, a formula that does not fit the data, impossible
settings) prints one line to stderr and exits with status 2; ``--debug`` shows the traceback
instead. Progress goes to stderr, results (tables, the report's path) to stdout.

Heavy libraries (pandas, PyMC, ArviZ, matplotlib) are imported inside the commands, so
``bayes-mlr --help`` is quick.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import linecache
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from bayes_mlr.workflow.plots import VECTOR_FORMATS

__all__ = ["build_parser", "main"]

PROG = "bayes-mlr"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors become one line (``bayes-mlr run: error: ...``) via UsageError."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------------------------
# Argument helpers
# --------------------------------------------------------------------------------------------


def _bounded(convert: Any, ok: Any, expected: str) -> Any:
    """An argparse ``type`` that converts with ``convert`` and accepts values where ``ok``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _bounded(int, lambda v: v >= 1, "a positive integer")
_nonneg_int = _bounded(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _bounded(float, lambda v: 0 < v < float("inf"), "a positive number")


def _floats(text: str) -> list[float]:
    """``"0.5,0.5"`` or ``"[0.5, 0.5]"``."""
    try:
        value = (
            json.loads(text)
            if text.strip().startswith("[")
            else [float(v) for v in text.split(",") if v.strip()]
        )
        if not isinstance(value, list) or not value:
            raise ValueError
        return [float(v) for v in value]
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers like 0.5,0.5; got {text!r}"
        ) from None


def _matrix(text: str) -> list[list[float]]:
    """``"1.5;-1"`` (rows separated by ';', entries by ',') or JSON ``"[[1.5], [-1]]"``."""
    try:
        if text.strip().startswith("["):
            value = json.loads(text)
            rows = [[float(v) for v in (row if isinstance(row, list) else [row])] for row in value]
        else:
            rows = [[float(v) for v in row.split(",")] for row in text.split(";") if row.strip()]
        if not rows or len({len(r) for r in rows}) != 1:
            raise ValueError
        return rows
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(
            "expected one row of coefficients per component, rows separated by ';' and "
            f"features by ',' (e.g. '1.5,0.2;-1,0.4'); got {text!r}"
        ) from None


def _k_list(text: str) -> list[int]:
    """``"1-4"`` or ``"1,2,3"``."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    try:
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            if low < 1 or high < low:
                raise ValueError
            return list(range(low, high + 1))
        values = [int(v) for v in text.split(",") if v.strip()]
        if not values or min(values) < 1 or len(set(values)) != len(values):
            raise ValueError
        return values
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a range like 1-4 or a list like 1,2,3 of K >= 1; got {text!r}"
        ) from None


def _add_em_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and EM (override the spec)")
    g.add_argument(
        "-k", "--n-components", type=_positive_int, metavar="K", help="number of components"
    )
    g.add_argument(
        "--variance",
        choices=("component", "shared", "fixed"),
        help="one sigma per component, one shared sigma, or a known sigma",
    )
    g.add_argument("--sigma", type=_positive_float, help="the known sigma (--variance fixed)")
    g.add_argument(
        "--family",
        choices=("gaussian", "poisson", "binomial", "student_t"),
        help="the distribution of y within a component: normal (default), Poisson counts (log "
        "link), binomial successes (logit link), Student-t errors (robust to outliers)",
    )
    g.add_argument(
        "--df",
        type=_positive_float,
        help="fixed degrees of freedom of --family student_t (default: estimated)",
    )
    g.add_argument(
        "--offset",
        metavar="EXPR",
        help="poisson, binomial: an expression over the data's columns added to the linear "
        "predictor, e.g. 'np.log(Hours)'",
    )
    g.add_argument(
        "--trials",
        metavar="EXPR",
        help="binomial: the number of trials of each row, e.g. 'Total' (y counts successes)",
    )
    g.add_argument(
        "--concomitant",
        metavar="FORMULA",
        help="concomitant variables of the mixing weights (a multinomial logit in them), e.g. "
        "'~ z1 + C(z2)'",
    )
    g.add_argument(
        "--shared",
        metavar="FORMULA",
        help="variables whose coefficient all components share, e.g. '~ w' ('~ 1 + w' shares "
        "the intercept too)",
    )
    g.add_argument("--n-init", type=_positive_int, metavar="N", help="EM starts")
    g.add_argument("--seed", type=_nonneg_int, metavar="N", help="EM random_state")


def _add_data_options(p: argparse.ArgumentParser, *, weights: bool) -> None:
    g = p.add_argument_group("data file (a spec sets these in its [data] table)")
    g.add_argument(
        "--na-action",
        choices=("raise", "drop"),
        help="rows with missing values in the formula's variables: refuse them (default) or "
        "drop them",
    )
    if weights:
        g.add_argument(
            "--weights",
            metavar="COLUMN",
            help="the column of the data file holding replication weights (sample_weight)",
        )


def _add_posterior_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("posterior (override the spec's [posterior])")
    g.add_argument("--draws", type=_positive_int, metavar="N", help="draws per chain")
    g.add_argument("--tune", type=_nonneg_int, metavar="N", help="tuning steps per chain")
    g.add_argument("--chains", type=_positive_int, metavar="N", help="number of chains")
    g.add_argument(
        "--sampler",
        choices=("auto", "nutpie", "pymc", "numpyro", "gibbs"),  # spec.SAMPLERS (tested)
        help="NUTS back-end, or gibbs (Gaussian components with constant weights)",
    )
    g.add_argument("--cores", type=_positive_int, metavar="N", help="chains sampled in parallel")
    g.add_argument(
        "--starts",
        choices=("dispersed", "em"),
        help="chain starts: distinct EM optima and over-dispersed points, or all at EM",
    )
    g.add_argument(
        "--posterior-seed", type=_nonneg_int, metavar="N", help="random_seed of the sampler"
    )


def _add_progress_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bars (step lines are still printed)"
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print only the results (implies --no-progress)"
    )


# --------------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bayes-mlr`` (subcommands run, fit, simulate, select-k, report)."""
    from bayes_mlr._version import __version__

    parser = _Parser(
        prog=PROG,
        description="Mixtures of linear regressions: soft-EM estimates and a PyMC posterior "
        "started from them, with ArviZ diagnostics, plots and a report.",
        epilog="Run 'bayes-mlr COMMAND --help' for the options of a command. Model specs "
        "(TOML) are documented in models/README.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "run",
        help="fit a TOML model spec end to end and write a report",
        description="Run a model spec: EM (restarts), the posterior started at EM, the "
        "EM-vs-posterior comparison, ArviZ diagnostics, plots and report.md, all written to "
        "--out (default runs/<name>/).",
    )
    p.add_argument("spec", metavar="SPEC", help="a model spec (.toml), see models/README.md")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default runs/<name>/)")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 when the posterior diagnostics fail (for scripts and CI)",
    )
    p.add_argument(
        "--em-only",
        action="store_true",
        help="skip the posterior (and its comparison, diagnostics and plots)",
    )
    _add_posterior_options(p)
    _add_progress_options(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "fit",
        help="fit EM only and print the estimates",
        description="Fit the mixture by soft EM and print estimates with standard errors. "
        "SOURCE is a model spec (.toml) or a data file (.csv, .tsv, .parquet) with --formula.",
    )
    p.add_argument("source", metavar="SOURCE", help="a model spec (.toml) or a data file")
    p.add_argument(
        "-f",
        "--formula",
        help="e.g. 'price ~ size + age' (with a data file); '| g' groups the rows by column g",
    )
    _add_data_options(p, weights=True)
    _add_em_options(p)
    p.add_argument(
        "--save",
        metavar="DIR",
        help="also save the model (MixtureOfRegressions.load(DIR)) and em.json",
    )
    p.add_argument("--json", action="store_true", help="print em.json instead of a table")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print only the results (no step lines)"
    )
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser(
        "simulate",
        help="write simulated data (CSV or Parquet)",
        description="Draw data from a mixture of regressions with known parameters, x ~ N(0, I). "
        "Give the parameters as options, or a spec with a [data.simulate] table.",
    )
    p.add_argument(
        "spec",
        metavar="SPEC",
        nargs="?",
        help="take the parameters from this spec's [data.simulate]",
    )
    p.add_argument(
        "-o", "--out", metavar="FILE", required=True, help="output file: .csv, .tsv or .parquet"
    )
    p.add_argument("--n", type=_positive_int, help="number of observations")
    p.add_argument(
        "--coef",
        type=_matrix,
        help="coefficients: rows (components) separated by ';', features by ','",
    )
    p.add_argument("--weights", type=_floats, help="mixing proportions, e.g. 0.6,0.4")
    p.add_argument("--intercept", type=_floats, help="intercepts, e.g. -2,2")
    p.add_argument("--sigma", type=_floats, help="noise sd: one value or one per component")
    p.add_argument(
        "--family",
        choices=("gaussian", "poisson", "binomial", "student_t"),
        help="the distribution of y within a component (default gaussian)",
    )
    p.add_argument("--df", type=_floats, help="student_t: degrees of freedom (default 4)")
    p.add_argument(
        "--trials",
        type=_floats,
        metavar="M",
        help="binomial: every row's number of trials, or a range low,high (default 5,30)",
    )
    p.add_argument(
        "--exposure",
        type=_floats,
        metavar="LOW,HIGH",
        help="poisson: each row's exposure ~ U(low, high), written as column 'exposure'",
    )
    p.add_argument("--seed", type=_nonneg_int, metavar="N", help="random_state")
    p.add_argument(
        "--feature-names",
        metavar="NAMES",
        help="comma-separated column names (default x0, x1, ...)",
    )
    p.add_argument(
        "--labels",
        action="store_true",
        help="add a column 'component' with the true component of each row",
    )
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser(
        "select-k",
        help="compare K by BIC/ICL and PSIS-LOO",
        description="Fit EM for each K (and, unless --no-loo, sample each posterior for "
        "PSIS-LOO) and print BIC, AIC, ICL and LOO side by side.",
    )
    p.add_argument("source", metavar="SOURCE", help="a model spec (.toml) or a data file")
    p.add_argument(
        "-f",
        "--formula",
        help="e.g. 'price ~ size + age' (with a data file); '| g' groups the rows by column g",
    )
    p.add_argument(
        "--k",
        type=_k_list,
        metavar="KS",
        help="K values: a range 1-4 or a list 1,2,3 (default [select_k] or 1..K+1)",
    )
    _add_data_options(p, weights=False)
    loo = p.add_mutually_exclusive_group()
    loo.add_argument(
        "--loo",
        dest="loo",
        action="store_true",
        default=None,
        help="also compute PSIS-LOO (samples one posterior per K)",
    )
    loo.add_argument(
        "--no-loo",
        "--em-only",
        dest="loo",
        action="store_false",
        help="EM criteria only (fast): the table of bayes_mlr.select_n_components",
    )
    _add_em_options(p)
    _add_posterior_options(p)
    p.add_argument("-o", "--out", metavar="DIR", help="also write DIR/select_k.csv")
    _add_progress_options(p)
    p.set_defaults(func=_cmd_select_k)

    p = sub.add_parser(
        "report",
        help="rebuild report.md (and the plots) of a run folder",
        description="Rebuild report.md of a folder written by 'bayes-mlr run' from its saved "
        "artifacts (model/, posterior.nc, comparison.csv, diagnostics.json), redrawing the "
        "plots unless --no-plots.",
    )
    p.add_argument("directory", metavar="DIR", help="a run folder (with em.json)")
    p.add_argument("--no-plots", action="store_true", help="keep the existing PNG files")
    p.add_argument(
        "--dpi", type=_positive_int, default=None, help="PNG resolution (default: the run's)"
    )
    p.add_argument(
        "--vector-format",
        choices=VECTOR_FORMATS,
        default=None,
        help="also write a PDF or SVG copy of each plot (default: the run's [plots] setting)",
    )
    p.set_defaults(func=_cmd_report)
    return parser


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def _echo_for(args: argparse.Namespace):
    if getattr(args, "quiet", False):
        return lambda message: None
    return lambda message: print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _pymc_logging(args: argparse.Namespace, sampling: bool) -> Iterator[None]:
    """With --quiet, silence PyMC's INFO lines ("NUTS: [...]", "Sampling 4 chains ...")."""
    if not (getattr(args, "quiet", False) and sampling):
        yield
        return
    import pymc  # noqa: F401  (PyMC sets its logger's level when imported)

    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _out_folder(value: str | None, flag: str) -> None:
    """Refuse, before any work, an output folder option that names an existing file."""
    if value is not None and Path(value).exists() and not Path(value).is_dir():
        raise UsageError(f"{PROG}: error: {flag} {value} is a file; it must name a folder")


@contextlib.contextmanager
def _data_file_wording(args: argparse.Namespace) -> Iterator[None]:
    """Errors about a data file given on the command line name the command's options (the
    library's messages name the Python arguments, e.g. ``na_action='drop'``)."""
    from bayes_mlr.formula import NA_DROP_HINT
    from bayes_mlr.workflow.spec import SpecError

    try:
        yield
    except SpecError as exc:
        if Path(args.source).suffix.lower() == ".toml":
            raise
        text = str(exc).replace(NA_DROP_HINT, "use --na-action drop")
        text = re.sub(r"the model's family = '(\w+)'", r"--family \1", text)
        for key in ("offset", "trials"):  # the spec built from the options
            text = text.replace(f"the model's {key}", f"--{key}")
        text = text.replace("set [model] trials", "pass --trials")
        if text == str(exc):
            raise
        raise SpecError(text) from exc


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the command: one clean line, without the source path."""
    text = " ".join(str(message).split())
    print(f"{PROG}: warning: {category.__name__}: {text}", file=file or sys.stderr, flush=True)


def _headless_plots() -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window


def _spec_from_source(args: argparse.Namespace):
    """A Spec from SOURCE (.toml) or a data file with --formula, with the EM options applied."""
    from bayes_mlr.workflow.spec import TABLE_SUFFIXES, family_problem, load_spec, parse_spec

    source = Path(args.source)
    na_action, weights = getattr(args, "na_action", None), getattr(args, "weights", None)
    if source.suffix.lower() == ".toml":
        for flag, value, key in (
            ("--formula", args.formula, "formula"),
            ("--na-action", na_action, "na_action"),
            ("--weights", weights, "sample_weight"),
        ):
            if value:
                raise UsageError(
                    f"{PROG}: error: {flag} is for data files; the spec {source} sets "
                    f"[data] {key} itself"
                )
        spec = load_spec(source)
    else:
        if source.suffix.lower() not in TABLE_SUFFIXES:
            raise UsageError(
                f"{PROG}: error: SOURCE must be a spec (.toml) or a data file "
                f"(.csv, .tsv, .parquet, .pq); got {args.source!r}"
            )
        if not source.is_file():
            raise FileNotFoundError(f"no such data file: {source}")
        if not args.formula:
            raise UsageError(
                f"{PROG}: error: --formula is required with a data file, e.g. --formula 'y ~ x'"
            )
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", source.stem) or "data"
        data: dict[str, Any] = {"path": str(source.resolve()), "formula": args.formula}
        if na_action is not None:
            data["na_action"] = na_action
        if weights is not None:
            data["sample_weight"] = weights
        spec = parse_spec({"name": name, "data": data}, base_dir=Path.cwd(), source="command line")
    model = spec.model
    variance = args.variance or model.variance
    sigma = args.sigma if args.sigma is not None else (model.sigma if variance == "fixed" else None)
    if variance == "fixed" and sigma is None:
        raise UsageError(f"{PROG}: error: --variance fixed needs --sigma (the known noise sd)")
    if variance != "fixed" and args.sigma is not None:
        raise UsageError(f"{PROG}: error: --sigma is only used with --variance fixed")
    structure = {
        key: _one_sided_option(flag, value)
        for key, flag, value in (
            ("concomitant", "--concomitant", args.concomitant),
            ("shared", "--shared", args.shared),
        )
        if value is not None
    }
    family_options = {
        key: value
        for key, value in (
            ("family", args.family),
            ("df", args.df),
            ("offset", _expression_option("--offset", args.offset)),
            ("trials", _expression_option("--trials", args.trials)),
        )
        if value is not None
    }
    if args.family is not None and args.family != model.family:
        # another family: the spec's family settings do not carry over to it
        family_options = {"df": None, "offset": None, "trials": None, **family_options}
    model = dataclasses.replace(
        model,
        variance=variance,
        sigma=sigma,
        n_components=args.n_components or model.n_components,
        **structure,
        **family_options,
    )
    problem = family_problem(model)
    if problem is not None:
        key, message = problem
        given = f"--{key}" if getattr(args, key, None) is not None else f"the spec's [model] {key}"
        raise UsageError(f"{PROG}: error: {given} {message}")
    em = spec.em
    em = dataclasses.replace(
        em,
        n_init=args.n_init or em.n_init,
        random_state=args.seed if args.seed is not None else em.random_state,
    )
    spec = dataclasses.replace(spec, model=model, em=em)
    if (spec.structured or model.family != "gaussian") and em.min_weight is not None:
        raise UsageError(
            f"{PROG}: error: the spec's [em] min_weight is not available with groups, "
            "concomitant variables, shared coefficients or a non-Gaussian family"
        )
    return spec


def _expression_option(flag: str, value: str | None) -> str | None:
    """``--offset`` / ``--trials``: a non-empty expression over the data's columns."""
    if value is not None and not value.strip():
        raise UsageError(
            f"{PROG}: error: {flag} must be an expression over the data's columns, e.g. "
            "'np.log(Hours)'"
        )
    return None if value is None else value.strip()


def _one_sided_option(flag: str, value: str) -> str:
    """Check a one-sided formula option (``--concomitant '~ z'``) as the spec checks its key."""
    from bayes_mlr.workflow.spec import check_one_sided

    try:
        return check_one_sided(value, flag.lstrip("-"))
    except ValueError as exc:
        raise UsageError(f"{PROG}: error: {flag} {exc}") from None


def _posterior_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "sampler": args.sampler,
        "random_seed": args.posterior_seed,
        "cores": args.cores,
        "starts": args.starts,
    }


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from bayes_mlr.workflow.run import run_spec
    from bayes_mlr.workflow.spec import load_spec

    _out_folder(args.out, "--out")
    spec = load_spec(args.spec)
    _headless_plots()
    with _pymc_logging(args, sampling=not args.em_only):
        result = run_spec(
            spec,
            args.out,
            posterior=False if args.em_only else None,
            progress=not (args.no_progress or args.quiet),
            echo=_echo_for(args),
            **_posterior_overrides(args),
        )
    if result.diagnosis is None:
        print("Diagnostics: not run (EM only)")
    else:
        verdict = "PASSED" if result.diagnosis.ok else "FAILED"
        problems = len(result.diagnosis.problems)
        print(
            f"Diagnostics: {verdict}"
            + (f" ({problems} problem(s), see the report)" if problems else "")
        )
    print(f"Report: {result.report}")
    if args.check and result.diagnosis is not None and not result.diagnosis.ok:
        return EXIT_FAILURE
    return EXIT_OK


def _cmd_fit(args: argparse.Namespace) -> int:
    from bayes_mlr.workflow import io
    from bayes_mlr.workflow.run import _family_text, _structure_phrases, fit_spec, summary_table

    _out_folder(args.save, "--save")
    spec = _spec_from_source(args)
    echo = _echo_for(args)
    with _data_file_wording(args):
        model, data = fit_spec(spec, echo=echo, progress=False)
    summary = io.em_summary(model, source=data.source)
    if args.save:
        folder = Path(args.save)
        model.save(folder)
        io.write_json(folder / "em.json", summary)
        echo(f"Saved: {folder}/ (MixtureOfRegressions.load('{folder}'), em.json)")
    if args.json:
        print(json.dumps(io.to_jsonable(summary), indent=2, allow_nan=False))
        return EXIT_OK
    table = summary_table(model, data.truth)
    print(
        f"{spec.name}: {data.formula}, n = {data.X.shape[0]}, K = {model.n_components}, "
        f"{_family_text(spec.model)}"
        + "".join(f", {part}" for part in _structure_phrases(data, spec))
    )
    print(
        table.drop(columns=["parameter", "component", "feature"]).to_string(
            float_format=lambda v: f"{v:.6g}"
        )
    )
    print(
        f"log-likelihood {summary['log_likelihood']:.6f}   BIC {summary['bic']:.4f}   "
        f"AIC {summary['aic']:.4f}   ICL {summary['icl']:.4f}"
    )
    print(
        f"EM {'converged' if summary['converged'] else 'did NOT converge'} after "
        f"{summary['n_iter']} iterations"
    )
    return EXIT_OK


def _cmd_simulate(args: argparse.Namespace) -> int:
    from bayes_mlr.workflow import io
    from bayes_mlr.workflow.spec import SimulateSpec, load_spec, parse_spec, simulated_frame

    if args.spec is not None:
        spec = load_spec(args.spec)
        if spec.data.simulate is None:
            raise UsageError(f"{PROG}: error: {args.spec} has no [data.simulate] table")
        sim = spec.data.simulate
        overrides = {
            k: getattr(args, k)
            for k in ("n", "coef", "weights", "intercept")
            if getattr(args, k) is not None
        }
        if args.sigma is not None:
            overrides["sigma"] = args.sigma
        if args.seed is not None:
            overrides["random_state"] = args.seed
        overrides.update(_simulated_family_options(args))
        table = {**{k: v for k, v in dataclasses.asdict(sim).items() if v is not None}, **overrides}
    else:
        if args.n is None or args.coef is None:
            raise UsageError(
                f"{PROG} simulate: error: give --n and --coef (or a SPEC with [data.simulate])"
            )
        table = {"n": args.n, "coef": args.coef}
        for key in ("weights", "intercept", "sigma"):
            if getattr(args, key) is not None:
                table[key] = getattr(args, key)
        if args.seed is not None:
            table["random_state"] = args.seed
        table.update(_simulated_family_options(args))
    if args.feature_names:
        table["feature_names"] = [v.strip() for v in args.feature_names.split(",")]
    if isinstance(table.get("sigma"), list) and len(table["sigma"]) == 1:
        table["sigma"] = table["sigma"][0]
    sim = parse_spec(
        {"name": "simulate", "data": {"simulate": table}}, source="command line"
    ).data.simulate
    assert isinstance(sim, SimulateSpec)
    frame, _truth = simulated_frame(sim, labels=args.labels)
    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        io.write_text(out, frame.to_csv(index=False))
    elif suffix == ".tsv":
        io.write_text(out, frame.to_csv(index=False, sep="\t"))
    elif suffix in (".parquet", ".pq"):
        import io as _bytes_io

        buffer = _bytes_io.BytesIO()
        frame.to_parquet(buffer, index=False)
        io.write_bytes(out, buffer.getvalue())
    else:
        raise UsageError(
            f"{PROG} simulate: error: --out must end in .csv, .tsv or .parquet; got {args.out!r}"
        )
    print(
        f"Wrote {out}: {sim.n} rows, columns {', '.join(map(str, frame.columns))}", file=sys.stderr
    )
    return EXIT_OK


def _simulated_family_options(args: argparse.Namespace) -> dict[str, Any]:
    """``family``, ``df``, ``trials``, ``exposure`` of ``bayes-mlr simulate`` as
    ``[data.simulate]`` keys (a single number for one value; trials as integers)."""
    out: dict[str, Any] = {}
    if args.family is not None:
        out["family"] = args.family
    if args.df is not None:
        out["df"] = args.df[0] if len(args.df) == 1 else args.df
    if args.trials is not None:
        if not all(v == int(v) for v in args.trials):
            raise UsageError(
                f"{PROG} simulate: error: --trials must be whole numbers; got {args.trials}"
            )
        trials = [int(v) for v in args.trials]
        out["trials"] = trials[0] if len(trials) == 1 else trials
    if args.exposure is not None:
        out["exposure"] = args.exposure
    return out


def _cmd_select_k(args: argparse.Namespace) -> int:
    from bayes_mlr.workflow import io
    from bayes_mlr.workflow.run import select_k

    _out_folder(args.out, "--out")
    spec = _spec_from_source(args)
    with _pymc_logging(args, sampling=args.loo is not False), _data_file_wording(args):
        table = select_k(
            spec,
            args.k,
            loo=args.loo,
            progress=not (args.no_progress or args.quiet),
            echo=_echo_for(args),
            **_posterior_overrides(args),
        )
    shown = table.drop(columns=["best_bic", "best_icl", "best_loo"], errors="ignore")
    print(shown.reset_index().to_string(index=False, float_format=lambda v: f"{v:.6g}"))

    def best(column: str) -> str:
        chosen = table.index[table[column].astype(bool)]
        return str(int(chosen[0])) if len(chosen) else "none (every fit is spurious or degenerate)"

    line = f"Best K by BIC: {best('best_bic')}; by ICL: {best('best_icl')}"
    if "best_loo" in table:
        line += f"; by LOO: {best('best_loo')}"
    if table["spurious"].any():
        flagged = ", ".join(str(k) for k in table.index[table["spurious"]])
        line += f" (K = {flagged} flagged spurious, not chosen)"
    print(line)
    if args.out:
        path = io.write_text(
            Path(args.out) / "select_k.csv", table.to_csv(index_label="n_components")
        )
        print(f"Wrote {path}", file=sys.stderr)
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from bayes_mlr.workflow import report
    from bayes_mlr.workflow.run import redraw_plots

    directory = Path(args.directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no such run folder: {directory}")
    if not (directory / "em.json").is_file():
        raise FileNotFoundError(
            f"{directory} has no em.json: not a folder written by 'bayes-mlr run'"
        )
    if not args.no_plots:
        _headless_plots()
        redraw_plots(directory, dpi=args.dpi, vector_format=args.vector_format)
    path = report.build_report(directory)
    print(f"Report: {path}")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _one_line(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Options whose values may start with a minus sign ("--intercept -2,2"): argparse would read
# such a value as an option, so it is attached ("--intercept=-2,2") before parsing.
_NUMERIC_OPTIONS = ("--coef", "--weights", "--intercept", "--sigma")


def _attach_negative_values(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _NUMERIC_OPTIONS and i + 1 < len(argv) and re.match(r"-[\d.]", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bayes-mlr`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    0: success; 2: bad input (one line on stderr); 1: another failure (or, for ``run --check``,
    failed diagnostics); 130: interrupted.
    """
    parser = build_parser()
    argv = _attach_negative_values(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in argv
    try:
        with warnings.catch_warnings():  # restores showwarning (and the filters) afterwards
            if not debug:
                warnings.showwarning = _show_warning
            args = parser.parse_args(argv)
            return int(args.func(args))
    except SystemExit as exc:  # --help, --version
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted (files written so far are complete; none is half-written)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            raise
        if _is_input_error(exc):
            print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        print(
            f"{PROG}: failed: {type(exc).__name__}: {_one_line(exc)} (an internal error, not "
            "your input: rerun with --debug for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def _is_input_error(exc: BaseException) -> bool:
    """Whether ``exc`` reports bad input (status 2) rather than a bug (status 1).

    Bad input is what bayes_mlr's own checks say: a ValueError or TypeError raised by a
    ``raise`` statement in bayes_mlr's code (every validation message is one), an exception
    class of bayes_mlr's own (FormulaError, SpecError), or a missing file or optional package.
    The same classes raised from inside numpy, pandas, PyMC or by the interpreter (a wrong call
    in our code) are bugs or unhandled cases, and are not reported as the user's fault.
    """
    if isinstance(exc, FileNotFoundError | ImportError | IsADirectoryError | NotADirectoryError):
        return True
    if not isinstance(exc, ValueError | TypeError):
        return False
    if type(exc).__module__.startswith("bayes_mlr"):
        return True
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    package = os.path.dirname(os.path.abspath(__file__))
    if not os.path.abspath(filename).startswith(package + os.sep):
        return False
    line = linecache.getline(filename, tb.tb_lineno).strip()
    return line.startswith("raise")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
