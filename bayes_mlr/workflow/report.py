"""``report.md``: one page that ties a run's artifacts together.

:func:`build_report` reads only the saved artifacts of a run folder (``run.json``, ``em.json``,
``comparison.csv``, ``diagnostics.json`` and the PNG plots), so ``bayes-mlr report DIR``
rebuilds the page without refitting anything. The first lines say plainly whether the
posterior diagnostics passed.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bayes_mlr.workflow.io import read_json, write_text
from bayes_mlr.workflow.plots import PLOT_FILES, VECTOR_FORMATS

__all__ = ["build_report", "markdown_table", "render_report"]

_FILES = {
    "spec.toml": "the model specification that ran",
    "run.json": "what ran: settings, truth of simulated data, timings, versions, warnings",
    "em.json": "EM estimates, standard errors, log-likelihood, BIC/AIC/ICL, data hash",
    "model/": 'the fitted estimator: `MixtureOfRegressions.load("model")`',
    "posterior.nc": 'the posterior DataTree: `xarray.open_datatree("posterior.nc")`',
    "comparison.csv": "EM next to the posterior, one row per parameter",
    "diagnostics.json": "convergence checks, verdict and per-parameter R-hat / ESS",
    "fit.png": "the data coloured by responsibility with each component's mean curve and bands",
    "mixing.png": "the mixing weights (prior probability of each component) against each "
    "concomitant variable",
    "em_trace.png": "EM log-likelihood per iteration",
    "trace.png": "ArviZ trace plot of the posterior",
    "rank.png": "ArviZ rank plot of the posterior",
    "forest.png": "EM (normal approximation) beside the posterior, one panel per group",
    "ppc.png": "posterior predictive check: the density of y against replicated data",
    "report.md": "this page",
}


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "—"
    return f"{number:.{digits}g}"


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None
) -> str:
    """A GitHub-flavoured Markdown table; ``align`` is one of ``l``/``r`` per column."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    for row in rows:
        cells = [str(c).replace("|", "\\|").replace("\n", " ") for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _label(name: str, index: Sequence[int], feature_names: Sequence[str]) -> str:
    if name == "coef":
        return f"coef[{index[0]}, {feature_names[index[1]]}]"
    return f"{name}[{index[0]}]"


def _entry(values: Any, k: int, f: int | None = None) -> Any:
    """``values[k]`` (or ``values[k][f]``) of a nested list, None when out of range."""
    if values is None or k >= len(values):
        return None
    if f is None:
        return values[k]
    return values[k][f] if f < len(values[k]) else None


def _param_rows(em: dict[str, Any], truth: dict[str, Any] | None) -> list[list[str]]:
    """One row per parameter: a shared coefficient (or intercept) once, as ``[shared]``; the
    concomitant coefficients of components 1 .. K-1 (component 0 is the reference)."""
    rows = []
    names = em["feature_names"]
    shared = em.get("shared") or {}
    shared_features = set(shared.get("features") or [])
    shared_intercept = bool(shared.get("intercept"))

    def add(label: str, value: Any, se: Any, true: Any) -> None:
        rows.append([label, _fmt(value), _fmt(se)] + ([_fmt(true)] if truth else []))

    for name in em["parameters"]:  # the family's: no sigma (Poisson, binomial), df (t)
        values, ses = em["parameters"][name], em["standard_errors"].get(name)
        if ses is None:
            ses = [None] * len(values)
        true = truth.get(name) if truth else None
        if name == "intercept" and shared_intercept:
            add("intercept[shared]", values[0], ses[0], _entry(true, 0))
            continue
        for k, value in enumerate(values):
            if name != "coef":
                add(_label(name, (k,), names), value, ses[k], _entry(true, k))
                continue
            for f, v in enumerate(value):
                if names[f] not in shared_features:
                    add(_label(name, (k, f), names), v, ses[k][f], _entry(true, k, f))
        if name == "coef":  # a coefficient all components share: one row, after the others
            for f, feature in enumerate(names):
                if feature in shared_features:
                    add(f"coef[shared, {feature}]", values[0][f], ses[0][f], _entry(true, 0, f))
    conc = em.get("concomitant")
    if conc:
        ses = em["standard_errors"]
        true_a = truth.get("concomitant_intercept") if truth else None
        true_g = truth.get("concomitant_coef") if truth else None
        for k in range(1, len(conc["intercept"])):  # component 0 is the reference
            add(
                f"concomitant_intercept[{k}]",
                conc["intercept"][k],
                _entry(ses.get("concomitant_intercept"), k),
                _entry(true_a, k),
            )
            for f, v in enumerate(conc["coef"][k]):
                add(
                    f"concomitant_coef[{k}, {conc['names'][f]}]",
                    v,
                    _entry(ses.get("concomitant_coef"), k, f),
                    _entry(true_g, k, f),
                )
    return rows


#: How the report names each family's components.
_FAMILY_TEXT = {
    "gaussian": "normal (Gaussian) components",
    "poisson": "Poisson components (log link)",
    "binomial": "binomial components (logit link)",
    "student_t": "Student-t components (robust to outliers)",
}


def _family_rows(em: dict[str, Any], data: dict[str, Any]) -> list[list[str]]:
    """The data table's rows for the family's per-row data: the offset and the trials."""
    rows = []
    for key, what in (
        ("offset", "added to each component's linear predictor"),
        ("trials", "the number of trials of each row (the response counts successes)"),
    ):
        if em.get(key):
            expression = data.get(key)
            rows.append([key, (f"`{expression}`: " if expression else "") + what])
    return rows


def _family_sentence(em: dict[str, Any]) -> str:
    """``K = 2 Poisson components (log link)`` or, for a Gaussian fit, the variance setting."""
    family = (em.get("family") or {}).get("name", "gaussian")
    s = em["settings"]
    text = f"K = {em['n_components']} {_FAMILY_TEXT.get(family, family + ' components')}"
    if family in ("gaussian", "student_t"):
        variance = s.get("variance")
        if variance == "fixed":
            variance = f"fixed (sigma = {s.get('sigma')})"
        text += f", variance = {variance}"
    if family == "student_t":
        df = (em.get("family") or {}).get("df")
        text += f", degrees of freedom {'fixed at ' + _fmt(df) if df is not None else 'estimated'}"
    return text


def _group_row(em: dict[str, Any], data: dict[str, Any]) -> list[list[str]]:
    """The data table's row for grouped rows (none without groups)."""
    if em.get("n_groups") is None:
        return []
    column = f"column `{data['group']}`: " if data.get("group") else ""
    return [["groups", f"{column}{em['n_groups']} groups; all rows of a group share one component"]]


def _structure_sentences(em: dict[str, Any], data: dict[str, Any]) -> str:
    """The mixing model and the shared coefficients, for the EM section ("" for neither)."""
    out = []
    conc = em.get("concomitant")
    if conc:
        formula = data.get("concomitant")
        names = ", ".join(f"`{n}`" for n in conc["names"])
        out.append(
            f"Mixing weights: a multinomial logit in {names}"
            + (f" (`{formula}`)" if formula else "")
            + "; component 0 is the reference."
        )
    shared = em.get("shared") or {}
    parts = (["intercept"] if shared.get("intercept") else []) + list(shared.get("features") or [])
    if parts:
        out.append(
            "Shared by all components: "
            + ", ".join(f"`{p}`" for p in parts)
            + (f" (`{data['shared']}`)" if data.get("shared") else "")
            + "."
        )
    return (" " + " ".join(out)) if out else ""


def _verdict(diagnostics: dict[str, Any] | None, em: dict[str, Any]) -> list[str]:
    lines = []
    if diagnostics is None:
        lines.append(
            "**Diagnostics: NOT RUN** — this run fitted EM only (no posterior), so "
            "there are no convergence checks to report."
        )
    elif diagnostics["ok"]:
        t = diagnostics["thresholds"]
        lines.append(
            "**Diagnostics: PASSED** — the posterior passed every check: R-hat ≤ "
            f"{t['rhat_max']}, bulk and tail ESS ≥ {t['ess_bulk_min']:.0f} / "
            f"{t['ess_tail_min']:.0f}, {_divergence_limit(t['max_divergences'])}, "
            f"BFMI ≥ {t['bfmi_min']}, at most {t['relabelled_max']:.0%} of draws relabelled"
            + (
                f", EM alignment and Stephens' relabelling agreeing on at least "
                f"{t['agreement_min']:.0%} of draws."
                if "agreement_min" in t
                else "."
            )
        )
    else:
        lines.append(
            "**Diagnostics: FAILED** — do not rely on the posterior summaries below "
            "until these problems are fixed:"
        )
        lines.append("")
        lines.extend(f"- {p}" for p in diagnostics["problems"])
    lines.append("")
    if em.get("spurious") and not em.get("degenerate"):
        flags = em.get("spurious_components") or []
        which = [j for j, f in enumerate(flags) if f]
        lines.append(
            f"**EM: SPURIOUS** — component(s) {which} rest on a handful of observations with a "
            "sigma far below the others' (McLachlan & Peel 2000, §3.10), in every EM run. The "
            "log-likelihood, BIC and AIC overstate this fit: try fewer components, more "
            '`[em] n_init` or variance = "shared".'
        )
        lines.append("")
    if em.get("separated"):
        lines.append(
            "**EM: SEPARATED** — the concomitant variables separate the components: the "
            "maximum likelihood mixing coefficients are infinite, so their estimates and "
            "standard errors below mean nothing (the regression lines may still be fine). Drop "
            "or coarsen the separating variable, or use fewer components."
        )
        lines.append("")
    if em.get("degenerate"):
        lines.append(
            "**EM: DEGENERATE** — the best EM run is a degenerate optimum (a collapsed "
            "sigma or an empty component): try fewer components or variance = "
            '"shared".'
        )
    elif em["converged"]:
        lines.append(f"**EM: converged** after {em['n_iter']} iterations.")
    else:
        lines.append(
            f"**EM: NOT converged** after {em['n_iter']} iterations: raise "
            "`[em] max_iter` or `tol`."
        )
    return lines


def render_report(directory: str | Path, *, shown_as: str | Path | None = None) -> str:
    """The Markdown text of a run folder's report (see :func:`build_report` for ``shown_as``).

    Raises
    ------
    FileNotFoundError
        ``em.json`` is missing (not a run folder).
    """
    directory = Path(directory)
    if not (directory / "em.json").is_file():
        raise FileNotFoundError(f"{directory} has no em.json: not a bayes-mlr run folder")
    em = read_json(directory / "em.json")
    run = read_json(directory / "run.json") if (directory / "run.json").is_file() else {}
    listed = set(run.get("artifacts", {}).values()) if run else None

    def present(name: str) -> bool:
        return (directory / name).exists() and (listed is None or name in listed)

    diagnostics = read_json(directory / "diagnostics.json") if present("diagnostics.json") else None
    comparison = _read_csv(directory / "comparison.csv") if present("comparison.csv") else None
    truth = run.get("truth")
    name = run.get("name") or directory.name
    out: list[str] = [f"# bayes-mlr report: {name}", ""]
    if run.get("description"):
        out += [run["description"].strip(), ""]
    if run and run.get("status", "complete") != "complete":
        out += [
            "**This run did not finish** (it was interrupted or failed): the page shows "
            "only the files it wrote.",
            "",
        ]
    out += _verdict(diagnostics, em)
    out.append("")

    # -- data
    data = run.get("data", {})
    source = (
        "simulated from known parameters (truth below)"
        if "simulate" in data
        else (f"`{data['path']}`" if "path" in data else "—")
    )
    features = ", ".join(f"`{f}`" for f in em["feature_names"])
    rows = [
        ["source", source],
        ["formula", f"`{data['formula']}`" if data.get("formula") else "—"],
        ["observations", str(em["n_obs"])],
        ["features", features],
        [
            "intercept",
            "fitted"
            if em["settings"].get("fit_intercept", True)
            else "none (formula without intercept)",
        ],
        [
            "sample weights",
            f"column `{data['sample_weight']}`" if data.get("sample_weight") else "none",
        ],
        *_group_row(em, data),
        *_family_rows(em, data),
        [
            "sha256 of X and y"
            + (" (and offset, trials)" if em.get("offset") or em.get("trials") else ""),
            f"`{em['data']['sha256']}`",
        ],
    ]
    out += ["## Data", "", markdown_table(["", ""], rows, "ll"), ""]

    # -- EM
    s = em["settings"]
    out += [
        "## EM estimates",
        "",
        f"{_family_sentence(em)}, {s.get('n_init')} starts "
        f"(init = {s.get('init')}, random_state = {s.get('random_state')})."
        + _structure_sentences(em, data),
        "",
        markdown_table(
            ["log-likelihood", "parameters", "BIC", "AIC", "ICL"],
            [
                [
                    _fmt(em["log_likelihood"], 8),
                    str(em["n_parameters"]),
                    _fmt(em["bic"], 8),
                    _fmt(em["aic"], 8),
                    _fmt(em["icl"], 8),
                ]
            ],
            "rrrrr",
        ),
        "",
        "Standard errors come from the observed information (delta method for weights"
        + (" and sigma" if "sigma" in em["parameters"] else "")
        + (", and for df from log df" if "df" in em["parameters"] else "")
        + "). BIC, AIC and ICL: lower is better."
        + _family_note(em)
        + (
            " With concomitant variables the weights are the mean prior over the rows, and "
            "`concomitant_intercept[j]`, `concomitant_coef[j, variable]` are the multinomial "
            "logit's coefficients of component j against component 0 (the reference, fixed at "
            "0)."
            if em.get("concomitant")
            else ""
        )
        + (
            " A `[shared]` row is one coefficient for all components."
            if any((em.get("shared") or {}).values())
            else ""
        ),
        "",
    ]
    headers = ["parameter", "EM", "SE"] + (["truth"] if truth else [])
    out += [markdown_table(headers, _param_rows(em, truth)), ""]
    out += _optima_lines(em)
    for png, caption in (
        ("fit.png", "Data and fitted component means"),
        ("mixing.png", "Mixing weights against the concomitant variables"),
        ("em_trace.png", "EM log-likelihood trace"),
    ):
        if present(png):
            out += [f"![{caption}]({png})", ""]

    # -- posterior
    if diagnostics is not None:
        sampling = diagnostics.get("sampling", {})
        out += ["## Posterior", ""]
        out.append(
            f"Sampler {sampling.get('sampler', '—')}: {sampling.get('chains', '—')} chains x "
            f"{sampling.get('draws', '—')} draws after {sampling.get('tune', '—')} tuning "
            f"steps, {_starts_text(sampling)}; draws relabelled to the EM "
            f"labelling: {_fmt_fraction(diagnostics.get('relabelled_fraction'))}"
            f"{_agreement_text(diagnostics)}; divergent "
            f"transitions: {_fmt(diagnostics.get('n_divergences'))}; sampling took "
            f"{_fmt(sampling.get('sampling_wall_time'), 3)} s."
        )
        out.append("")
        out += _mode_lines(diagnostics)
        by_label = {r["label"]: r for r in diagnostics.get("table", [])}
        if comparison:
            rows = []
            for r in comparison:
                d = by_label.get(r["label"], {})
                rows.append(
                    [
                        r["label"],
                        _fmt(r["em"]),
                        _fmt(r["em_se"]),
                        _fmt(r["mean"]),
                        _fmt(r["sd"]),
                        f"[{_fmt(r['hdi_low'])}, {_fmt(r['hdi_high'])}]",
                        "yes" if r["em_in_hdi"] == "True" else "**no**",
                        _fmt(r["shift_sd"], 2),
                        _fmt(d.get("r_hat")),
                        _fmt_count(d.get("ess_bulk")),
                    ]
                )
            out += [
                markdown_table(
                    [
                        "parameter",
                        "EM",
                        "EM SE",
                        "mean",
                        "sd",
                        "HDI",
                        "EM in HDI",
                        "(mean - EM) / sd",
                        "R-hat",
                        "bulk ESS",
                    ],
                    rows,
                    "lrrrrrlrrr",
                ),
                "",
                "HDI: highest-density interval of the posterior; (mean - EM) / sd: the "
                "posterior mean's distance from EM in posterior sds. EM and the posterior "
                "should agree closely when the sample is large and the components are well "
                "separated.",
                "",
            ]
        out += _prior_lines(diagnostics.get("priors"))
        for png, caption in (
            ("forest.png", "EM and posterior intervals"),
            ("ppc.png", "Posterior predictive check"),
            ("trace.png", "Trace plot"),
            ("rank.png", "Rank plot"),
        ):
            if present(png):
                out += [f"![{caption}]({png})", ""]

    # -- warnings, files, reproduce
    if run.get("warnings"):
        out += ["## Warnings", ""] + [f"- {w}" for w in run["warnings"]] + [""]
    out += ["## Files", ""]
    for file, what in _FILES.items():
        if file == "report.md" or present(file.rstrip("/")):
            out.append(f"- `{file}`: {what}")
    for fmt in VECTOR_FORMATS:
        copies = [p.replace(".png", f".{fmt}") for p in PLOT_FILES.values()]
        copies = [c for c in copies if present(c)]
        if copies:
            names = ", ".join(f"`{c}`" for c in copies)
            out.append(f"- {names}: the plots in {fmt.upper()} (vector)")
    out.append("")
    out += ["## Reproduce", "", "```bash"]
    spec_path = run.get("spec_path") or ("spec.toml" if present("spec.toml") else "SPEC.toml")
    shown = directory if shown_as is None else shown_as
    out += [
        f"bayes-mlr run {spec_path} --out {shown}",
        f"bayes-mlr report {shown}   # rebuild this page and the plots",
        "```",
        "",
    ]
    timings = run.get("timings")
    if timings:
        out.append("Time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + ".")
    versions = run.get("versions")
    if versions:
        out.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    return "\n".join(out).rstrip() + "\n"


def _agreement_text(diagnostics: dict[str, Any]) -> str:
    agreement = diagnostics.get("relabel_agreement")
    if agreement is None:
        return ""
    text = f" (Stephens' relabelling agrees on {_fmt_fraction(agreement)} of draws)"
    if diagnostics.get("identified") is False:
        text += (
            "; **the components are not identified**: per-component rows below describe no "
            "component"
        )
    return text


def _starts_text(sampling: dict[str, Any]) -> str:
    starts = sampling.get("chain_starts")
    if not starts:
        return "every chain started at the EM estimate"
    if all(s == "EM estimate" for s in starts):
        return "every chain started at the EM estimate"
    return "chains started at " + "; ".join(f"{c}: {s}" for c, s in enumerate(starts))


def _family_note(em: dict[str, Any]) -> str:
    """What a family's coefficients mean (nothing for the Gaussian)."""
    family = (em.get("family") or {}).get("name", "gaussian")
    if family == "poisson":
        return (
            " The intercept and coef are on the log scale: exp(coef) multiplies a component's "
            "mean count" + (" per unit of exposure (the offset)" if em.get("offset") else "") + "."
        )
    if family == "binomial":
        return (
            " The intercept and coef are on the logit scale: exp(coef) multiplies a "
            "component's odds of success."
        )
    if family == "student_t":
        from bayes_mlr.core.components.student_t import DF_MAX

        df = em["parameters"].get("df")
        df = [] if df is None else list(df)
        bound = [j for j, v in enumerate(df) if v is not None and v >= DF_MAX * (1 - 1e-9)]
        return (
            " sigma is the scale of a component's t errors (their sd is sigma sqrt(df / (df - 2))"
            " for df > 2); a small df gives heavy tails that absorb outliers."
            + (
                f" df of component(s) {bound} sits at {DF_MAX:g}, the upper bound of its "
                "estimate: such a component is practically normal, and its df standard error "
                "means nothing."
                if bound
                else ""
            )
        )
    return ""


def _optima_lines(em: dict[str, Any]) -> list[str]:
    """The distinct optima EM's restarts reached (``em.json`` ``optima``)."""
    optima = em.get("optima") or []
    if len(optima) <= 1:
        runs = optima[0]["n_runs"] if optima else None
        return [f"Every EM run ({runs}) ended at this optimum.", ""] if runs else []
    rows = []
    with_sigma = all("sigma" in o for o in optima)  # not for Poisson and binomial fits
    for i, o in enumerate(optima):
        flags = [f for f in ("degenerate", "spurious") if o.get(f)]
        rows.append(
            [
                "fit" if i == 0 else str(i),
                _fmt(o["log_likelihood"], 8),
                str(o["n_runs"]),
                ", ".join(_fmt(w, 3) for w in o["weights"]),
                *([", ".join(_fmt(v, 3) for v in o["sigma"])] if with_sigma else []),
                ", ".join(flags) or "—",
            ]
        )
    headers = ["optimum", "log-likelihood", "runs", "weights"]
    headers += ["sigma", "flags"] if with_sigma else ["flags"]
    return [
        f"EM's restarts reached {len(optima)} distinct optima (the fit is the best regular one):",
        "",
        markdown_table(headers, rows, "lrrlll" if with_sigma else "lrrll"),
        "",
    ]


def _mode_lines(diagnostics: dict[str, Any]) -> list[str]:
    """The posterior modes the chains sit in (``diagnostics.json`` ``modes``)."""
    modes = diagnostics.get("modes")
    if not modes:
        return []
    if len(modes) == 1:
        return [
            "All chains sit in one posterior mode (compared on label-invariant quantities: "
            "lp, the log-likelihood, sorted component parameters).",
            "",
        ]
    rows = [
        [
            str(m["mode"]),
            ", ".join(map(str, m["chains"])),
            _fmt(m["mean_lp"], 6),
            _fmt(m["optimum_log_likelihood"], 6),
            _fmt(m["share"], 2),
        ]
        for m in modes
    ]
    return [
        f"**The chains sit in {len(modes)} posterior modes** that they do not move between. "
        "The per-parameter summaries below pool them and describe no single mode; "
        "`bayes_mlr.summarise_modes` summarises each. Shares are Gaussian approximations of "
        "each mode's mass.",
        "",
        markdown_table(
            ["mode", "chains", "mean lp", "nearest EM optimum (log-likelihood)", "share"],
            rows,
            "llrrr",
        ),
        "",
    ]


def _prior_lines(priors: dict[str, Any] | None) -> list[str]:
    """The report's "Priors" section from ``diagnostics.json``'s ``priors`` record."""
    out = ["### Priors", ""]
    if priors is None:
        return [*out, "Not recorded (the posterior was sampled by an older version).", ""]
    if priors.get("source") == "custom":
        model = str(priors.get("model", "")).strip()
        intro = "A PyMC model of your own (`pm_model=`); as PyMC describes it:"
        return [*out, intro, "", "```", model, "```", ""]
    rows = []
    for row in priors["rows"]:
        component = row["component"]
        label = row["parameter"]
        if row["parameter"] == "coef":
            label += f"[{'k' if component is None else component}, {row['feature']}]"
        elif row["parameter"] != "weights":
            label += f"[{'k' if component is None else component}]"
        args = ", ".join(f"{k} = {_fmt_argument(v)}" for k, v in row["arguments"].items())
        if row["distribution"] == "fixed":
            rows.append([label, f"fixed at {_fmt_argument(row['arguments']['value'])}"])
        else:
            rows.append([label, f"{row['distribution']}({args})"])
    overridden = priors.get("overridden") or []
    source = (
        "The data-scaled defaults of `bayes_mlr.default_priors`"
        + (
            f", with {', '.join(f'`{o}`' for o in overridden)} set by the spec or `priors=`"
            if overridden
            else ""
        )
        + "; `k` stands for every component."
    )
    return [*out, source, "", markdown_table(["parameter", "prior"], rows, "ll"), ""]


def _fmt_argument(value: Any) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return _fmt(value)


def _divergence_limit(limit: int) -> str:
    return "no divergent transitions" if limit == 0 else f"at most {limit} divergent transitions"


def _fmt_count(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if math.isnan(number) else f"{number:.0f}"


def _fmt_fraction(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def build_report(directory: str | Path, *, shown_as: str | Path | None = None) -> Path:
    """Write ``report.md`` into a run folder from its saved artifacts (atomically).

    Parameters
    ----------
    directory : path-like
        A folder written by ``bayes-mlr run`` (:func:`bayes_mlr.workflow.run.run_spec`).
    shown_as : path-like, optional
        The folder's name in the page's commands, when it is being built elsewhere (a run is
        built in a temporary folder, then moved to its place). Default ``directory``.

    Returns
    -------
    pathlib.Path
        The report's path.
    """
    directory = Path(directory)
    return write_text(directory / "report.md", render_report(directory, shown_as=shown_as))
