"""report.md from saved artifacts: the verdict is stated plainly, tables and plots are linked.

The run folders here are assembled from a fitted model and a synthetic posterior (no
sampling); tests/workflow/test_cli.py checks the report of a real ``bayes-mlr run``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.bayes.diagnostics import compare_em_posterior, diagnose
from bayes_mlr.workflow import io, report
from bayes_mlr.workflow.run import diagnosis_to_dict
from tests.conftest import TRUTH_2, make_data
from tests.workflow import families
from tests.workflow.test_plots import fake_posterior


@pytest.fixture(scope="module")
def fitted():
    data = make_data(300)
    return MixtureOfRegressions(2, random_state=0).fit(pd.DataFrame(data.X, columns=["x"]), data.y)


def make_folder(path, model, *, posterior=True, ok=None, truth=True):
    """A run folder as run_spec writes it (optionally forcing the verdict)."""
    path.mkdir(parents=True, exist_ok=True)
    io.write_json(path / "em.json", io.em_summary(model, source={"formula": "y ~ x"}))
    artifacts = {"em": "em.json"}
    if posterior:
        tree = fake_posterior(model)
        comparison = compare_em_posterior(model, tree)
        io.write_text(path / "comparison.csv", comparison.to_csv(index_label="label"))
        diagnostics = diagnosis_to_dict(
            diagnose(tree, ess_bulk_min=10, ess_tail_min=10, rhat_max=1.1), tree
        )
        if ok is not None:
            diagnostics["ok"] = ok
            diagnostics["problems"] = [] if ok else ["R-hat above 1.01 for 3 of 8 parameters"]
        io.write_json(path / "diagnostics.json", diagnostics)
        artifacts.update(comparison="comparison.csv", diagnostics="diagnostics.json")
    run = {
        "name": "unit",
        "description": "A folder made by a test.",
        "data": {"simulate": {"n": 300}, "formula": "y ~ x", "response": "y"},
        "truth": {k: v.tolist() for k, v in TRUTH_2.items()} if truth else None,
        "warnings": ["EM: ConvergenceWarning: something to show"],
        "artifacts": artifacts,
        "spec_path": "models/unit.toml",
        "timings": {"em": 0.1},
        "versions": {"python": "3.12"},
    }
    io.write_json(path / "run.json", run)
    return path


def test_passed_report(fitted, tmp_path):
    folder = make_folder(tmp_path / "run", fitted, ok=True)
    text = report.build_report(folder).read_text()
    assert text.startswith("# bayes-mlr report: unit")
    assert "**Diagnostics: PASSED**" in text
    assert "FAILED" not in text
    assert "**EM: converged**" in text
    assert "A folder made by a test." in text
    assert "coef[0, x]" in text and "truth" in text
    header = "| parameter | EM | EM SE | mean | sd | HDI | EM in HDI | (mean - EM) / sd |"
    assert header + " R-hat | bulk ESS |" in text
    assert "ConvergenceWarning: something to show" in text
    assert "bayes-mlr run models/unit.toml" in text
    assert io.read_json(folder / "em.json")["data"]["sha256"] in text


def test_failed_report_lists_the_problems_first(fitted, tmp_path):
    folder = make_folder(tmp_path / "run", fitted, ok=False)
    text = report.render_report(folder)
    head = text.split("## Data")[0]
    assert "**Diagnostics: FAILED**" in head
    assert "- R-hat above 1.01 for 3 of 8 parameters" in head
    assert "PASSED" not in text


def test_em_only_report(fitted, tmp_path):
    folder = make_folder(tmp_path / "run", fitted, posterior=False, truth=False)
    text = report.render_report(folder)
    assert "**Diagnostics: NOT RUN**" in text
    assert "## Posterior" not in text
    assert "| parameter | EM | SE |" in text


def test_artifacts_not_listed_in_run_json_are_ignored(fitted, tmp_path):
    folder = make_folder(tmp_path / "run", fitted, posterior=False)
    # stale files of an earlier run with a posterior
    (folder / "diagnostics.json").write_text(
        json.dumps({"ok": False, "problems": ["stale-problem"]})
    )
    (folder / "forest.png").write_bytes(b"old")
    text = report.render_report(folder)
    assert "NOT RUN" in text and "stale-problem" not in text and "forest.png" not in text


def test_plots_are_linked_when_present(fitted, tmp_path):
    folder = make_folder(tmp_path / "run", fitted, ok=True)
    run = io.read_json(folder / "run.json")
    for name in ("fit.png", "forest.png"):
        (folder / name).write_bytes(b"\x89PNG")
        run["artifacts"][name.removesuffix(".png")] = name
    io.write_json(folder / "run.json", run)
    text = report.render_report(folder)
    assert "![Data and fitted component means](fit.png)" in text
    assert "![EM and posterior intervals](forest.png)" in text
    assert "rank.png" not in text


def test_priors_are_stated(fitted, tmp_path):
    from bayes_mlr.bayes.priors import default_priors, describe_priors, merge_priors

    folder = make_folder(tmp_path / "run", fitted, ok=True)
    assert "### Priors" in report.render_report(folder)
    assert "Not recorded" in report.render_report(folder)  # the fake posterior has none
    prior = merge_priors(
        default_priors(fitted._fit_X, fitted._fit_y, 2), {"intercept": {"mu": [-1.0, 1.0]}}
    )
    record = describe_priors(prior, feature_names=["x"], overrides={"intercept": {"mu": 0}})
    diagnostics = io.read_json(folder / "diagnostics.json")
    diagnostics["priors"] = record
    io.write_json(folder / "diagnostics.json", diagnostics)
    text = report.render_report(folder)
    section = text.split("### Priors")[1].split("![")[0]
    assert "with `intercept.mu` set by the spec or `priors=`" in section
    assert "| weights | Dirichlet(alpha = (2, 2)) |" in section
    assert "| intercept[0] | Normal(mu = -1, sigma = " in section
    assert "| intercept[1] | Normal(mu = 1, sigma = " in section
    sd = report._fmt(float(prior["coef"]["sigma"][0]))
    assert f"| coef[k, x] | Normal(mu = 0, sigma = {sd}) |" in section
    assert "| sigma[k] | HalfNormal(sigma = " in section

    diagnostics["priors"] = {"source": "custom", "rows": [], "model": "coef ~ Normal(0, 1)"}
    io.write_json(folder / "diagnostics.json", diagnostics)
    assert "coef ~ Normal(0, 1)" in report.render_report(folder)


def test_optima_and_modes_are_shown(fitted, tmp_path):
    folder = make_folder(tmp_path / "run", fitted, ok=False)
    text = report.render_report(folder)
    assert "Every EM run (" in text and "ended at this optimum" in text
    em = io.read_json(folder / "em.json")
    second = dict(em["optima"][0], log_likelihood=em["log_likelihood"] - 3.0, n_runs=2)
    em["optima"].append(second)
    io.write_json(folder / "em.json", em)
    diagnostics = io.read_json(folder / "diagnostics.json")
    diagnostics["sampling"]["chain_starts"] = ["EM estimate", "EM optimum 1 (log-likelihood 1)"]
    diagnostics["modes"] = [
        {"mode": 0, "chains": [0], "mean_lp": -10.0, "optimum_log_likelihood": -5.0, "share": 0.7},
        {"mode": 1, "chains": [1], "mean_lp": -9.0, "optimum_log_likelihood": -8.0, "share": 0.3},
    ]
    io.write_json(folder / "diagnostics.json", diagnostics)
    text = report.render_report(folder)
    assert "EM's restarts reached 2 distinct optima" in text
    assert "| optimum | log-likelihood | runs | weights | sigma | flags |" in text
    assert "chains started at 0: EM estimate; 1: EM optimum 1 (log-likelihood 1)" in text
    assert "**The chains sit in 2 posterior modes**" in text
    assert "| 0 | 0 | -10 | -5 | 0.7 |" in text and "| 1 | 1 | -9 | -8 | 0.3 |" in text
    diagnostics["modes"] = diagnostics["modes"][:1]
    io.write_json(folder / "diagnostics.json", diagnostics)
    assert "All chains sit in one posterior mode" in report.render_report(folder)


def test_vector_copies_are_listed(fitted, tmp_path):
    folder = make_folder(tmp_path / "run", fitted, ok=True)
    run = io.read_json(folder / "run.json")
    for name in ("fit.pdf", "forest.pdf"):
        (folder / name).write_bytes(b"%PDF")
        run["artifacts"][name.replace(".", "_")] = name
    io.write_json(folder / "run.json", run)
    assert "- `fit.pdf`, `forest.pdf`: the plots in PDF (vector)" in report.render_report(folder)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no em\.json"):
        report.build_report(tmp_path)


def test_markdown_table_escapes_pipes():
    table = report.markdown_table(["a", "b"], [["x|y", 1.5]])
    assert table.splitlines() == ["| a | b |", "| :--- | ---: |", "| x\\|y | 1.5 |"]


@pytest.mark.parametrize(
    "value, text", [(None, "—"), (np.nan, "—"), (1.23456, "1.235"), (True, "yes"), (7, "7")]
)
def test_number_formatting(value, text):
    assert report._fmt(value) == text


# -- grouped, concomitant and shared-coefficient models (issue #11) ---------------------------


@pytest.fixture(scope="module")
def structured():
    """Groups of 4 rows, a group-level concomitant w0 and a slope in x1 shared by both lines."""
    sim = simulate(
        400,
        intercept=[-2.0, 2.0],
        coef=[[1.5, 0.7], [-1.0, 0.7]],
        n_groups=100,
        concomitant_intercept=[0.0, 0.3],
        concomitant_coef=[[0.0], [1.2]],
        random_state=0,
    )
    X = pd.DataFrame(sim.X, columns=["x", "w"])
    W = pd.DataFrame(sim.concomitant, columns=["z"])
    model = MixtureOfRegressions(2, shared=["w"], n_init=3, random_state=0)
    return model.fit(X, sim.y, groups=sim.groups, concomitant=W), sim.truth


def structured_folder(path, model, truth, **run_fields):
    folder = make_folder(path, model, posterior=False)
    run = io.read_json(folder / "run.json")
    run["truth"] = {k: np.asarray(v).tolist() for k, v in truth.items()}
    run["data"].update(group="id", concomitant="~ z", shared="~ w", formula="y ~ x + w | id")
    run.update(run_fields)
    io.write_json(folder / "run.json", run)
    return folder


def test_structured_report_shows_groups_mixing_and_shared_rows(structured, tmp_path):
    model, truth = structured
    folder = structured_folder(tmp_path / "run", model, truth)
    text = report.render_report(folder)
    assert "| groups | column `id`: 100 groups; all rows of a group share one component |" in text
    assert "Mixing weights: a multinomial logit in `z` (`~ z`); component 0 is the reference." in (
        text
    )
    assert "Shared by all components: `w` (`~ w`)." in text
    se = model.standard_errors_
    f = report._fmt
    # the shared slope is one row, with the truth; the concomitant rows of component 1 follow
    assert f"| coef[shared, w] | {f(model.coef_[0, 1])} | {f(se['coef'][0, 1])} | 0.7 |" in text
    assert "coef[0, w]" not in text and "coef[1, w]" not in text
    assert (
        f"| concomitant_intercept[1] | {f(model.concomitant_intercept_[1])} | "
        f"{f(se['concomitant_intercept'][1])} | 0.3 |" in text
    )
    assert (
        f"| concomitant_coef[1, z] | {f(model.concomitant_coef_[1, 0])} | "
        f"{f(se['concomitant_coef'][1, 0])} | 1.2 |" in text
    )
    assert "concomitant_coef[0, z]" not in text  # the reference is fixed at 0
    assert "A `[shared]` row is one coefficient for all components." in text


def test_mixing_plot_is_linked_and_listed(structured, tmp_path):
    model, truth = structured
    folder = structured_folder(tmp_path / "run", model, truth)
    run = io.read_json(folder / "run.json")
    (folder / "mixing.png").write_bytes(b"\x89PNG")
    run["artifacts"]["mixing"] = "mixing.png"
    io.write_json(folder / "run.json", run)
    text = report.render_report(folder)
    assert "![Mixing weights against the concomitant variables](mixing.png)" in text
    assert "- `mixing.png`: the mixing weights" in text


def test_separation_is_stated(structured, tmp_path):
    model, truth = structured
    folder = structured_folder(tmp_path / "run", model, truth)
    assert "SEPARATED" not in report.render_report(folder)
    em = io.read_json(folder / "em.json")
    em["separated"] = True
    io.write_json(folder / "em.json", em)
    assert "**EM: SEPARATED**" in report.render_report(folder)


def test_shared_intercept_is_one_row(tmp_path):
    sim = simulate(300, intercept=[1.0, 1.0], coef=[[2.0], [-1.0]], random_state=1)
    model = MixtureOfRegressions(2, shared=["intercept"], n_init=3, random_state=0)
    model.fit(pd.DataFrame(sim.X, columns=["x"]), sim.y)
    text = report.render_report(make_folder(tmp_path / "run", model, posterior=False))
    assert "| intercept[shared] |" in text and "intercept[0]" not in text
    assert "Shared by all components: `intercept`." in text


# -- component families (issue #12) ----------------------------------------------------------


def family_folder(path, model, data):
    """An EM-only run folder of a family fit, with the run.json data record of a spec run."""
    path.mkdir(parents=True, exist_ok=True)
    io.write_json(path / "em.json", io.em_summary(model, source=data))
    io.write_json(
        path / "run.json",
        {"name": "family", "data": data, "artifacts": {"em": "em.json"}, "truth": None},
    )
    return path


def test_report_of_a_poisson_fit_states_the_family_and_offset(tmp_path):
    model = families.seizure()
    data = {"path": "seizure.csv", "formula": "Seizures ~ Treatment * np.log(Day)"}
    text = report.render_report(family_folder(tmp_path, model, {**data, "offset": "np.log(Hours)"}))
    assert "K = 2 Poisson components (log link), 10 starts" in text
    assert "| offset | `np.log(Hours)`: added to each component's linear predictor |" in text
    assert "sha256 of X and y (and offset, trials)" in text
    assert "exp(coef) multiplies a component's mean count per unit of exposure" in text
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    assert "coef[1, Treatment[T.Yes]:np.log(Day)]" in rows
    assert not any(r.startswith("sigma") for r in rows)
    # EM's restarts reach flexmix's two optima (-376.18 and -380.77): a table without sigma
    (header,) = [line for line in text.splitlines() if line.startswith("| optimum")]
    assert header == "| optimum | log-likelihood | runs | weights | flags |"


def test_report_of_a_binomial_fit_states_the_trials(tmp_path):
    model = families.betablocker()
    data = {"path": "betablocker.csv", "formula": "Deaths ~ 1 | Center", "trials": "Total"}
    text = report.render_report(family_folder(tmp_path, model, data))
    assert "K = 3 binomial components (logit link)" in text
    assert "| trials | `Total`: the number of trials of each row" in text
    assert "| coef[shared, Treatment[T.Treated]] |" in text
    assert "odds of success" in text


def test_report_of_a_student_t_fit_lists_df(tmp_path):
    model = families.student_t()
    text = report.render_report(family_folder(tmp_path, model, {"formula": "y ~ x"}))
    assert "Student-t components (robust to outliers), variance = component, degrees of " in text
    assert "freedom estimated" in text
    for j in range(2):
        assert f"| df[{j}] | {report._fmt(model.df_[j])} |" in text
    assert "delta method for weights and sigma, and for df from log df" in text
    fixed = families.student_t(df=4.0)
    text = report.render_report(family_folder(tmp_path / "fixed", fixed, {"formula": "y ~ x"}))
    assert "degrees of freedom fixed at 4" in text


def test_report_says_when_df_sits_at_its_bound(tmp_path):
    from bayes_mlr.core.components.student_t import DF_MAX

    model = families.student_t()
    em = io.em_summary(model, source={"formula": "y ~ x"})
    assert "upper bound" not in report._family_note(em)  # df 0.74 and 50.5
    em["parameters"]["df"][1] = DF_MAX
    assert "df of component(s) [1] sits at 200, the upper bound" in report._family_note(em)
