"""The bayes-mlr command: one real ``run`` on a tiny spec (shared by many tests), the other
subcommands, exit codes and messages.

Commands run in-process through ``cli.main`` except for two subprocess tests of the installed
console script.
"""

from __future__ import annotations

import contextlib
import io as _io
import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_mlr import MixtureOfRegressions
from bayes_mlr.workflow import cli, io

TINY_SPEC = """
name = "tiny"
description = "A tiny spec for the tests."

[data.simulate]
n = 150
coef = [[1.5], [-1.0]]
intercept = [-2.0, 2.0]
sigma = [0.5, 0.6]
random_state = 0
feature_names = ["x"]

[em]
n_init = 4
random_state = 0

[posterior]
draws = 200
tune = 200
chains = 2
random_seed = 1
sampler = "pymc"
cores = 1       # no fork: JAX (imported by other tests) warns at os.fork()

[diagnostics]   # lenient: 2 x 200 draws do not reach the default ESS of 400
ess_bulk_min = 40
ess_tail_min = 40
rhat_max = 1.1

[select_k]
n_components = [1, 2]
"""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(*argv):
    """``cli.main(argv)`` in-process; returns (exit code, stdout, stderr)."""
    out, err = _io.StringIO(), _io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("specs") / "tiny.toml"
    path.write_text(TINY_SPEC)
    return path


@pytest.fixture(scope="module")
def run(spec_path, tmp_path_factory):
    """One ``bayes-mlr run`` of the tiny spec; its folder is inspected by many tests."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    code, stdout, stderr = run_cli("run", spec_path, "--out", out, "--no-progress")
    assert code == 0, stderr
    return out, stdout, stderr


# -- bayes-mlr run ---------------------------------------------------------------------------


def test_run_prints_progress_and_where_the_report_is(run):
    out, stdout, stderr = run
    assert stdout.splitlines()[-1] == f"Report: {out / 'report.md'}"
    assert "Diagnostics: PASSED" in stdout
    for step in (
        "EM: K = 2",
        "EM: converged",
        "Posterior: 2 chains x (200 tune + 200 draws)",
        "Diagnostics: max R-hat",
        "Plots: fit.png",
    ):
        assert step in stderr, step


def test_run_writes_every_artifact(run):
    out, _, _ = run
    expected = {
        "spec.toml",
        "run.json",
        "em.json",
        "model",
        "posterior.nc",
        "comparison.csv",
        "diagnostics.json",
        "report.md",
        "fit.png",
        "em_trace.png",
        "trace.png",
        "rank.png",
        "forest.png",
        "ppc.png",
    }
    assert {p.name for p in out.iterdir()} == expected  # and no temporary file left
    manifest = io.read_json(out / "run.json")
    assert set(manifest["artifacts"].values()) == expected
    assert manifest["truth"]["coef"] == [[1.5], [-1.0]]


def test_em_json(run):
    out, _, _ = run
    em = io.read_json(out / "em.json")
    assert em["schema_version"] == io.EM_SCHEMA_VERSION == 2
    for key in (
        "parameters",
        "standard_errors",
        "log_likelihood",
        "bic",
        "aic",
        "icl",
        "settings",
        "feature_names",
        "data",
    ):
        assert key in em
    assert em["feature_names"] == ["x"]
    assert len(em["data"]["sha256"]) == 64
    model = MixtureOfRegressions.load(out / "model")
    assert em["parameters"]["coef"] == model.coef_.tolist()
    assert em["log_likelihood"] == model.log_likelihood_
    np.testing.assert_allclose(np.sort(model.intercept_), [-2.0, 2.0], atol=0.3)


def test_posterior_nc_opens_with_open_datatree(run):
    out, _, _ = run
    em = io.read_json(out / "em.json")
    with xr.open_datatree(out / "posterior.nc") as tree:
        assert {
            "posterior",
            "sample_stats",
            "observed_data",
            "constant_data",
            "log_likelihood",
            "em",
        } <= set(tree.children)
        assert tree["posterior"]["coef"].dims == ("chain", "draw", "component", "feature")
        assert tree["posterior"].sizes["draw"] == 200
        assert list(tree["posterior"]["feature"].values) == ["x"]
        assert tree.attrs["data_sha256"] == em["data"]["sha256"]


def test_comparison_and_diagnostics(run):
    out, _, _ = run
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.columns) == [
        "label",
        "parameter",
        "component",
        "feature",
        "em",
        "em_se",
        "mean",
        "sd",
        "hdi_low",
        "hdi_high",
        "em_in_hdi",
        "shift_sd",
    ]
    assert set(table["parameter"]) == {"weights", "intercept", "coef", "sigma"}
    assert table["em_in_hdi"].all()
    diagnostics = io.read_json(out / "diagnostics.json")
    assert diagnostics["ok"] is True and diagnostics["verdict"] == "passed"
    assert diagnostics["problems"] == []
    assert diagnostics["thresholds"]["ess_bulk_min"] == 40  # from the spec
    assert diagnostics["sampling"]["chains"] == 2
    assert {r["label"] for r in diagnostics["table"]} == set(table["label"])


def test_plots_are_valid_pngs(run):
    out, _, _ = run
    for name in ("fit.png", "em_trace.png", "trace.png", "rank.png", "forest.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 5_000, name


def test_report_says_whether_the_diagnostics_passed(run):
    out, _, _ = run
    text = (out / "report.md").read_text()
    assert "**Diagnostics: PASSED**" in text
    assert "A tiny spec for the tests." in text
    for png in ("fit.png", "forest.png", "trace.png", "rank.png", "em_trace.png"):
        assert f"]({png})" in text


def test_report_command_rebuilds_the_same_page(run, tmp_path):
    out, _, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    original = (copy / "report.md").read_text()
    (copy / "report.md").unlink()
    (copy / "fit.png").unlink()
    code, stdout, _ = run_cli("report", copy)
    assert code == 0
    assert stdout.strip() == f"Report: {copy / 'report.md'}"
    assert (copy / "report.md").read_text() == original.replace(str(out), str(copy))
    assert (copy / "fit.png").read_bytes().startswith(PNG_MAGIC)


def test_run_records_the_chain_starts_and_modes(run):
    out, _, stderr = run
    diagnostics = io.read_json(out / "diagnostics.json")
    starts = diagnostics["sampling"]["chain_starts"]
    assert diagnostics["sampling"]["starts"] == "dispersed" and starts[0] == "EM estimate"
    assert len(diagnostics["modes"]) == 1 and diagnostics["modes"][0]["chains"] == [0, 1]
    assert {r["quantity"] for r in diagnostics["invariant"]} == {
        "lp",
        "log_likelihood",
        "predictive_mean",
    }
    assert "1 posterior mode" in stderr
    text = (out / "report.md").read_text()
    assert "All chains sit in one posterior mode" in text and "chains started at 0: EM" in text


def test_report_states_the_priors(run):
    out, _, _ = run
    text = (out / "report.md").read_text()
    section = text.split("### Priors")[1].split("![")[0]
    assert "The data-scaled defaults of `bayes_mlr.default_priors`" in section
    for row in ("| weights | Dirichlet(alpha = (2, 2)) |", "| coef[k, x] | Normal(mu = 0,"):
        assert row in section
    priors = io.read_json(out / "diagnostics.json")["priors"]
    assert priors["source"] == "default"


@pytest.fixture
def fit_plot_arguments(monkeypatch):
    """The keyword arguments that plots.plot_fit receives (it still draws)."""
    from bayes_mlr.workflow import plots

    seen = {}
    original = plots.plot_fit

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_fit", spy)
    return seen


def test_report_command_redraws_with_a_vector_copy_from_the_data(run, tmp_path, fit_plot_arguments):
    from bayes_mlr.workflow import plots

    out, _, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    seen = fit_plot_arguments
    code, _, stderr = run_cli("report", copy, "--vector-format", "svg", "--dpi", 100)
    assert code == 0, stderr
    # the simulated data are drawn again from their seed, so fit.png has the formula's panels
    assert seen["data"] is not None and seen["formula"] == "y ~ x"
    assert list(seen["data"].columns) == ["x", "y"]
    model = MixtureOfRegressions.load(copy / "model")
    for key in plots.plot_names(model, posterior=True):  # all but mixing.png (no concomitant)
        name = plots.PLOT_FILES[key]
        assert (copy / name.replace(".png", ".svg")).read_bytes().startswith(b"<?xml"), name
    listed = io.read_json(copy / "run.json")["artifacts"]
    assert listed["fit_svg"] == "fit.svg"
    assert "`fit.svg`" in (copy / "report.md").read_text()


def test_report_command_does_not_draw_changed_data(csv_path, tmp_path, fit_plot_arguments):
    seen = fit_plot_arguments
    data = tmp_path / "data.csv"
    shutil.copy(csv_path, data)
    spec = tmp_path / "csv.toml"
    spec.write_text(
        f'name = "csv"\n[data]\npath = "{data}"\nformula = "y ~ x0 + I(x0**2)"\n'
        '[em]\nrandom_state = 0\n[plots]\nvector_format = "pdf"\n'
    )
    out = tmp_path / "run"
    code, _, stderr = run_cli("run", spec, "--out", out, "--em-only", "-q")
    assert code == 0, stderr
    assert (out / "fit.pdf").read_bytes().startswith(b"%PDF")
    # the run draws fit.png against x0 (the formula's variable), not x0 and I(x0 ** 2)
    assert seen["formula"] == "y ~ x0 + I(x0**2)" and list(seen["data"].columns) == ["x0", "y"]
    from bayes_mlr.workflow.run import run_data

    model = MixtureOfRegressions.load(out / "model")
    manifest = io.read_json(out / "run.json")
    assert run_data(manifest, model).frame.shape == (200, 2)  # unchanged: read again
    frame = pd.read_csv(data)
    frame.loc[0, "y"] += 1.0
    frame.to_csv(data, index=False)
    with pytest.warns(UserWarning, match="differ from the data the model was fitted on"):
        assert run_data(manifest, model) is None
    data.unlink()
    with pytest.warns(UserWarning, match="cannot be read again"):
        assert run_data(manifest, model) is None
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as outside the test suite (which raises them)
        code, _, stderr = run_cli("report", out)
    assert code == 0 and "bayes-mlr: warning: UserWarning: the run's data cannot be read" in stderr
    assert (out / "fit.png").read_bytes().startswith(PNG_MAGIC)


def test_report_command_states_failure(run, tmp_path):
    out, _, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    diagnostics = io.read_json(copy / "diagnostics.json")
    diagnostics.update(ok=False, verdict="failed", problems=["bulk ESS below 400"])
    io.write_json(copy / "diagnostics.json", diagnostics)
    code, _, _ = run_cli("report", copy, "--no-plots")
    assert code == 0
    text = (copy / "report.md").read_text()
    assert "**Diagnostics: FAILED**" in text and "- bulk ESS below 400" in text


def test_run_check_fails_on_failed_diagnostics(spec_path, tmp_path):
    strict = tmp_path / "strict.toml"
    strict.write_text(TINY_SPEC.replace("ess_bulk_min = 40", "ess_bulk_min = 100000"))
    code, stdout, _ = run_cli(
        "run", strict, "--out", tmp_path / "out", "--check", "-q", "--draws", 50, "--tune", 50
    )
    assert code == 1
    assert "Diagnostics: FAILED" in stdout
    assert "**Diagnostics: FAILED**" in (tmp_path / "out" / "report.md").read_text()


def folder_contents(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("error, code", [(KeyboardInterrupt, 130), (RuntimeError, 1)])
def test_failed_rerun_leaves_the_previous_run_folder(
    run, spec_path, tmp_path, monkeypatch, error, code
):
    out, _, _ = run
    folder = tmp_path / "again"
    shutil.copytree(out, folder)  # a complete earlier run in the same folder
    before = folder_contents(folder)

    def fail(self, *args, **kwargs):
        raise error("stopped while sampling")

    monkeypatch.setattr(MixtureOfRegressions, "sample_posterior", fail)
    status, _, stderr = run_cli("run", spec_path, "--out", folder, "-q")
    assert status == code, stderr
    assert folder_contents(folder) == before  # byte for byte the earlier run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]  # no temporary folder left
    assert io.read_json(folder / "run.json")["status"] == "complete"


def test_rerun_holds_only_what_the_last_run_wrote(run, spec_path, tmp_path):
    out, _, _ = run
    folder = tmp_path / "again"
    shutil.copytree(out, folder)
    (folder / "notes.txt").write_text("left by the user inside a run folder")
    status, stdout, stderr = run_cli("run", spec_path, "--out", folder, "--em-only", "-q")
    assert status == 0, stderr
    assert stdout.splitlines()[-1] == f"Report: {folder / 'report.md'}"
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "spec.toml",
        "run.json",
        "em.json",
        "model",
        "fit.png",
        "em_trace.png",
        "report.md",
    }
    manifest = io.read_json(folder / "run.json")
    assert set(manifest["artifacts"].values()) == names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]
    # the page's commands name the folder, not the temporary one it was built in
    assert f"--out {folder}\n" in (folder / "report.md").read_text()


def test_run_refuses_a_folder_that_is_not_a_run_folder(spec_path, tmp_path):
    (tmp_path / "thesis.tex").write_text("not to be replaced")
    status, stdout, stderr = run_cli("run", spec_path, "--out", tmp_path, "--em-only", "-q")
    assert status == 2 and stdout == ""
    assert re.fullmatch(r"bayes-mlr: error: .* is not empty and holds no run.json.*\n", stderr)
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_run_em_only(spec_path, tmp_path):
    code, stdout, _ = run_cli("run", spec_path, "--out", tmp_path, "--em-only", "-q")
    assert code == 0
    assert "Diagnostics: not run (EM only)" in stdout
    assert not (tmp_path / "posterior.nc").exists()
    assert {"em.json", "fit.png", "em_trace.png", "report.md"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert "**Diagnostics: NOT RUN**" in (tmp_path / "report.md").read_text()


def test_run_default_folder_is_runs_name(spec_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = run_cli("run", spec_path, "--em-only", "-q")
    assert code == 0
    assert (tmp_path / "runs" / "tiny" / "report.md").is_file()
    assert stdout.strip().endswith(str(Path("runs") / "tiny" / "report.md"))


# -- simulate, fit, select-k -----------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "sim.csv"
    code, _, stderr = run_cli(
        "simulate",
        "--n",
        200,
        "--coef",
        "-1;1.5",
        "--intercept",
        "2,-2",
        "--sigma",
        "0.5",
        "--seed",
        3,
        "--out",
        path,
    )
    assert code == 0, stderr
    return path


def test_simulate_writes_csv(csv_path):
    frame = pd.read_csv(csv_path)
    assert list(frame.columns) == ["x0", "y"] and len(frame) == 200


def test_simulate_from_spec_to_parquet_with_labels(spec_path, tmp_path):
    path = tmp_path / "sim.parquet"
    code, _, stderr = run_cli("simulate", spec_path, "--out", path, "--labels")
    assert code == 0, stderr
    frame = pd.read_parquet(path)
    assert list(frame.columns) == ["x", "y", "component"] and len(frame) == 150
    assert set(frame["component"]) == {0, 1}


def test_fit_prints_a_table_and_saves(csv_path, tmp_path):
    code, stdout, _ = run_cli(
        "fit", csv_path, "--formula", "y ~ x0", "-k", 2, "--seed", 0, "--save", tmp_path / "m"
    )
    assert code == 0
    assert "coef[0, x0]" in stdout and "em_se" in stdout
    assert "BIC" in stdout and "converged" in stdout
    model = MixtureOfRegressions.load(tmp_path / "m")
    assert model.feature_names == ["x0"]
    assert io.read_json(tmp_path / "m" / "em.json")["n_obs"] == 200


def test_fit_json_and_spec_source(spec_path):
    code, stdout, _ = run_cli("fit", spec_path, "--json", "--variance", "shared")
    assert code == 0
    em = json.loads(stdout)
    assert em["settings"]["variance"] == "shared"
    assert em["n_components"] == 2


def test_select_k_without_loo(csv_path, tmp_path):
    code, stdout, _ = run_cli(
        "select-k",
        csv_path,
        "-f",
        "y ~ x0",
        "--k",
        "1-3",
        "--no-loo",
        "--seed",
        0,
        "--out",
        tmp_path,
        "-q",
    )
    assert code == 0
    assert "Best K by BIC: 2" in stdout
    table = pd.read_csv(tmp_path / "select_k.csv", index_col="n_components")
    assert list(table.index) == [1, 2, 3]
    assert {"log_likelihood", "bic", "aic", "icl", "best_bic"} <= set(table.columns)


def test_saved_models_keep_their_formula(run, csv_path, tmp_path):
    frame = pd.read_csv(csv_path)
    code, _, stderr = run_cli("fit", csv_path, "-f", "y ~ x0", "--seed", 0, "--save", tmp_path)
    assert code == 0, stderr
    loaded = MixtureOfRegressions.load(tmp_path)
    direct = MixtureOfRegressions.from_formula("y ~ x0", frame, n_init=10, random_state=0)
    assert loaded.formula_ == "y ~ x0" and loaded.response_ == "y"
    raw = frame.assign(extra="raw columns are encoded")[["extra", "y", "x0"]]
    np.testing.assert_array_equal(loaded.predict(raw), direct.predict(frame))
    assert loaded.bic(raw) == direct.bic(frame)  # y from the response column
    out, _, _ = run  # the model of a run folder, on simulated data
    model = MixtureOfRegressions.load(out / "model")
    assert model.formula_ == "y ~ x"
    assert model.predict(pd.DataFrame({"x": [0.0, 1.0]})).shape == (2,)


def test_fit_data_options(csv_path, tmp_path):
    frame = pd.read_csv(csv_path)
    frame["w"] = np.tile([1.0, 2.0, 3.0, 1.0], 50)
    frame.loc[[5, 77], "x0"] = np.nan
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    # the missing-values message names the command's flag, and has no "<spec>" prefix
    code, _, stderr = run_cli("fit", path, "-f", "y ~ x0")
    assert code == 2
    assert stderr.startswith(f"bayes-mlr: error: {path}: formula 'y ~ x0'")
    assert "(or use --na-action drop)" in stderr and "<spec>" not in stderr
    code, stdout, stderr = run_cli(
        "fit", path, "-f", "y ~ x0", "--na-action", "drop", "--weights", "w", "--json", "-q"
    )
    assert code == 0 and stderr == ""
    em = json.loads(stdout)
    assert em["n_obs"] == 198 and em["data"]["sample_weight"]  # two rows with a NaN dropped
    direct = MixtureOfRegressions.from_formula(
        "y ~ x0", frame, sample_weight="w", na_action="drop", n_init=10, random_state=0
    )
    # the same optimum (other EM starts): equal to EM's convergence tolerance
    np.testing.assert_allclose(em["parameters"]["coef"], direct.coef_, rtol=1e-6)
    unweighted = MixtureOfRegressions.from_formula(
        "y ~ x0", frame, na_action="drop", n_init=10, random_state=0
    )
    # the weights were used: far from the unweighted fit
    assert not np.allclose(em["parameters"]["coef"], unweighted.coef_, rtol=1e-4)
    code, stdout, _ = run_cli(
        "select-k", path, "-f", "y ~ x0", "--k", "1,2", "--no-loo", "--na-action", "drop", "-q"
    )
    assert code == 0 and "Best K by BIC: 2" in stdout


def test_fit_quiet_prints_only_the_results(csv_path):
    code, stdout, stderr = run_cli("fit", csv_path, "-f", "y ~ x0", "-q")
    assert code == 0 and stderr == ""
    assert stdout.startswith("sim: y ~ x0, n = 200") and "coef[0, x0]" in stdout


def test_stray_text_in_a_numeric_column_is_named(csv_path, tmp_path):
    frame = pd.read_csv(csv_path).astype({"x0": object})
    frame.loc[17, "x0"] = "?"
    path = tmp_path / "stray.csv"
    frame.to_csv(path, index=False)
    code, stdout, stderr = run_cli("fit", path, "-f", "y ~ x0")
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    assert "column 'x0' holds numbers, but 1 of its 200 values is not a number: '?' (row 17)" in (
        stderr
    )


def test_warnings_are_one_clean_line(csv_path):
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as outside the test suite (which raises them)
        code, _, stderr = run_cli("fit", csv_path, "-f", "y ~ x0 + I(2 * x0)", "--seed", 0)
    assert code == 0
    lines = [line for line in stderr.splitlines() if "Warning" in line]
    assert lines and all(
        line.startswith("bayes-mlr: warning: SingularInformationWarning: ") for line in lines
    )
    assert ".py:" not in stderr and "warnings.warn" not in stderr


def test_select_k_with_loo(spec_path):
    code, stdout, stderr = run_cli(
        "select-k", spec_path, "--draws", 60, "--tune", 60, "--no-progress"
    )
    assert code == 0, stderr
    assert "elpd_loo" in stdout and "Best K by BIC" in stdout and "by LOO: 2" in stdout


# -- bad input: one line on stderr, exit status 2 ----------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "missing.toml"], r"missing.toml: no such spec file"),
        (["run"], r"the following arguments are required: SPEC"),
        (["frobnicate"], r"invalid choice: 'frobnicate'"),
        (["fit", "data.xlsx", "-f", "y ~ x"], r"SOURCE must be a spec \(.toml\) or a data file"),
        (["fit", "nowhere.csv", "-f", "y ~ x"], r"no such data file: nowhere.csv"),
        (["select-k", "{spec}", "--k", "0-2"], r"expected a range like 1-4"),
        (["fit", "{spec}", "--variance", "fixed"], r"--variance fixed needs --sigma"),
        (["fit", "{csv}"], r"--formula is required with a data file"),
        (["fit", "{csv}", "-f", "y ~ size"], r"`size` is not present"),
        (["fit", "{csv}", "-f", "y ~ x0", "-k", "-1"], r"expected a positive integer"),
        (["simulate", "--out", "x.csv"], r"give --n and --coef"),
        (
            ["simulate", "--n", "10", "--coef", "1;x", "--out", "x.csv"],
            r"one row of coefficients per component",
        ),
        (["report", "."], r"has no em.json"),
        (["run", "{spec}", "--out", "{csv}"], r"^bayes-mlr: error: --out \S*sim.csv is a file"),
        (["fit", "{csv}", "-f", "y ~ x0", "--save", "{csv}"], r"--save \S*sim.csv is a file"),
        (["select-k", "{csv}", "-f", "y ~ x0", "--out", "{csv}"], r"--out \S*sim.csv is a file"),
        (["fit", "{spec}", "--weights", "w"], r"--weights is for data files"),
        (["select-k", "{spec}", "--na-action", "drop"], r"--na-action is for data files"),
        (
            ["fit", "{csv}", "-f", "y ~ x0 | g"],
            r"^bayes-mlr: error: \S*sim.csv: formula .*the grouping column 'g' is not in the data",
        ),
        (
            ["fit", "{csv}", "-f", "y ~ x0", "--concomitant", "x0"],
            r"^bayes-mlr: error: --concomitant must be a one-sided formula such as '~ z1",
        ),
        (
            ["fit", "{csv}", "-f", "y ~ x0", "--shared", "~ z"],
            r"sim.csv: the shared formula '~ z' uses column\(s\) 'z' that the data lack",
        ),
        (["fit", "{csv}", "-f", "y ~ I(x0^2)"], r"write the power as I\(x\*\*2\)"),
        (
            ["fit", "{csv}", "-f", "y ~ x0", "--weights", "w"],
            r"sim.csv: the weights are column 'w'",
        ),
        (["run", "{bad_spec}"], r"\[model\] variance must be one of"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv, message, spec_path, csv_path, tmp_path, monkeypatch
):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_SPEC + '\n[model]\nvariance = "x"\n')
    monkeypatch.chdir(tmp_path)
    argv = [a.format(spec=spec_path, csv=csv_path, bad_spec=bad) for a in argv]
    code, stdout, stderr = run_cli(*argv)
    assert code == 2
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("bayes-mlr")
    assert "Traceback" not in stderr
    assert re.search(message, lines[0]), lines[0]


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="no such spec file"):
        run_cli("--debug", "run", tmp_path / "missing.toml")


@pytest.mark.parametrize("command", ["run", "fit", "simulate", "select-k", "report"])
def test_help_of_every_command(command):
    code, stdout, _ = run_cli(command, "--help")
    assert code == 0
    assert stdout.startswith(f"usage: bayes-mlr {command}")


def test_version():
    from bayes_mlr import __version__

    code, stdout, _ = run_cli("--version")
    assert code == 0 and stdout.strip() == f"bayes-mlr {__version__}"


# -- the installed console script ---------------------------------------------------------------


def console_script() -> str:
    script = Path(sys.executable).with_name("bayes-mlr")
    found = str(script) if script.exists() else shutil.which("bayes-mlr")
    if found is None:
        pytest.skip("the bayes-mlr console script is not installed (pip install -e .)")
    return found


def test_console_script_help():
    result = subprocess.run(
        [console_script(), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    for command in ("run", "fit", "simulate", "select-k", "report"):
        assert command in result.stdout


def test_console_script_bad_input(tmp_path):
    result = subprocess.run(
        [console_script(), "run", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        result.stderr.strip() == f"bayes-mlr: error: {tmp_path / 'missing.toml'}: no such spec file"
    )


def test_select_k_em_only_prints_the_select_n_components_table(csv_path):
    from bayes_mlr import select_n_components

    code, stdout, _ = run_cli(
        "select-k", csv_path, "-f", "y ~ x0", "--k", "1-3", "--em-only", "--seed", 0, "-q"
    )
    assert code == 0
    header = stdout.splitlines()[0].split()
    frame = pd.read_csv(csv_path)
    expected = select_n_components(frame[["x0"]], frame["y"], range(1, 4), random_state=0)
    assert header == list(expected.columns)
    rows = [line.split() for line in stdout.splitlines()[1:4]]
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    # the same fits: the printed BIC (6 significant digits) is the function's
    np.testing.assert_allclose([float(r[3]) for r in rows], expected["bic"], rtol=1e-5)
    assert f"Best K by BIC: {expected.attrs['best_bic']}" in stdout


def test_an_internal_error_is_not_reported_as_bad_input(csv_path, monkeypatch):
    # A ValueError from inside numpy (a bug or unhandled case) is status 1 and says so; a
    # bayes_mlr validation message stays status 2.
    from bayes_mlr import estimator

    def broken_fit_em(*args, **kwargs):
        return np.linalg.cholesky(-np.eye(2))  # raises LinAlgError, a ValueError, in numpy

    monkeypatch.setattr(estimator, "fit_em", broken_fit_em)
    code, _, stderr = run_cli("fit", csv_path, "-f", "y ~ x0", "-q")
    assert code == 1
    assert "internal error, not your input" in stderr and "LinAlgError" in stderr
    monkeypatch.undo()
    code, _, stderr = run_cli("fit", csv_path, "-f", "y ~ nonexistent", "-q")
    assert code == 2 and "internal error" not in stderr


# -- grouped, concomitant and shared-coefficient models (issue #11) ---------------------------

STRUCTURE = Path(__file__).resolve().parents[1] / "peers" / "structure"


def test_fit_with_concomitant_and_shared_options(tmp_path):
    data = STRUCTURE / "combined_sim.csv"
    argv = ["fit", data, "-f", "y ~ x | id", "--concomitant", "~ z", "--shared", "~ w"]
    code, stdout, stderr = run_cli(*argv, "--seed", 0, "--n-init", 3, "--save", tmp_path / "m")
    assert code == 0, stderr
    assert "120 groups (id), mixing weights ~ z, shared: w" in stdout.splitlines()[0]
    for row in ("coef[shared, w]", "concomitant_coef[1, z]", "concomitant_intercept[1]"):
        assert row in stdout
    assert "EM: K = 2" in stderr and "120 groups (id)" in stderr
    loaded = MixtureOfRegressions.load(tmp_path / "m")
    frame = pd.read_csv(data)
    direct = MixtureOfRegressions.from_formula(
        "y ~ x | id", frame, concomitant="~ z", shared="~ w", n_init=3, random_state=0
    )
    np.testing.assert_allclose(loaded.coef_, direct.coef_, rtol=1e-10)
    assert loaded.n_groups_ == 120 and loaded.concomitant_names_in_.tolist() == ["z"]
    em = io.read_json(tmp_path / "m" / "em.json")
    assert em["bic"] == pytest.approx(direct.bic(frame), rel=1e-10)  # with groups and z


def test_fit_options_override_a_spec(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(
        f'[data]\npath = "{STRUCTURE / "shared_sim.csv"}"\nformula = "y ~ x + w"\n'
        "[em]\nn_init = 3\nrandom_state = 0\n"
    )
    code, stdout, stderr = run_cli("fit", spec, "--shared", "~ w", "--json", "-q")
    assert code == 0, stderr
    em = json.loads(stdout)
    assert em["shared"] == {"intercept": False, "features": ["w"]}
    coef = np.asarray(em["parameters"]["coef"])
    assert coef[0, 1] == coef[1, 1]  # one slope in w for both components


def test_select_k_of_a_grouped_csv(tmp_path):
    code, stdout, stderr = run_cli(
        "select-k",
        STRUCTURE / "grouped_sim.csv",
        "-f",
        "y ~ x | id",
        "--k",
        "1,2",
        "--seed",
        0,
        "--n-init",
        3,
        "--no-loo",
        "-q",
    )
    assert code == 0, stderr
    assert "Best K by BIC: 2" in stdout
    frame = pd.read_csv(STRUCTURE / "grouped_sim.csv")
    model = MixtureOfRegressions.from_formula("y ~ x | id", frame, n_init=3, random_state=0)
    bic = float(re.search(r"\n\s*2\s+\S+\s+\d+\s+(\S+)", stdout).group(1))
    assert bic == pytest.approx(model.bic(frame), rel=1e-5)  # the grouped BIC (6 digits shown)


def test_simulate_a_structured_spec(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(
        "[data.simulate]\nn = 60\nn_groups = 20\ncoef = [[1.0], [-1.0]]\n"
        "concomitant_coef = [[0.0], [2.0]]\nconcomitant_names = ['age']\nrandom_state = 0\n"
    )
    out = tmp_path / "sim.csv"
    code, _, stderr = run_cli("simulate", spec, "--out", out, "--labels")
    assert code == 0, stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["x0", "age", "group", "y", "component"]
    by_group = frame.groupby("group")
    assert by_group.ngroups == 20
    assert (by_group["age"].nunique() == 1).all() and (by_group["component"].nunique() == 1).all()


# -- component families (issue #12) ----------------------------------------------------------

FAMILIES_DATA = Path(__file__).resolve().parents[1] / "peers" / "families"


def test_fit_a_poisson_model_with_an_offset(tmp_path):
    code, stdout, stderr = run_cli(
        "fit",
        FAMILIES_DATA / "seizure_poisson.csv",
        "-f",
        "Seizures ~ Treatment * np.log(Day)",
        "--family",
        "poisson",
        "--offset",
        "np.log(Hours)",
        "-k",
        "2",
        "--seed",
        "0",
        "--save",
        tmp_path / "m",
    )
    assert code == 0, stderr
    assert "K = 2, family = poisson, offset np.log(Hours)" in stdout
    assert "sigma" not in stdout
    # flexmix's optimum (tests/peers/families: logLik -376.176205, BIC 796.8272)
    assert "log-likelihood -376.176205" in stdout and "BIC 796.8272" in stdout
    model = MixtureOfRegressions.load(tmp_path / "m")
    assert model.result_.family.name == "poisson"
    assert model._formula_state().offset == "np.log(Hours)"
    frame = pd.read_csv(FAMILIES_DATA / "seizure_poisson.csv")
    np.testing.assert_array_equal(model._fit_offset, np.log(frame.Hours))
    em = io.read_json(tmp_path / "m" / "em.json")
    assert em["family"] == {"name": "poisson"} and em["offset"] is True


def test_fit_json_of_a_grouped_binomial_with_trials_and_a_shared_effect():
    code, stdout, stderr = run_cli(
        "fit",
        FAMILIES_DATA / "betablocker_grouped_shared.csv",
        "-f",
        "Deaths ~ 1 | Center",
        "--family",
        "binomial",
        "--trials",
        "Total",
        "--shared",
        "~ Treatment",
        "-k",
        "3",
        "--seed",
        "0",
        "--json",
        "-q",
    )
    assert code == 0, stderr
    em = json.loads(stdout)
    assert em["family"] == {"name": "binomial"} and em["trials"] is True
    assert list(em["parameters"]) == ["weights", "intercept", "coef"]
    assert em["shared"]["features"] == ["Treatment[T.Treated]"] and em["n_groups"] == 22
    assert em["log_likelihood"] == pytest.approx(-159.360520, abs=1e-5)  # flexmix's


def test_fit_a_student_t_model_with_a_fixed_df(tmp_path):
    csv = tmp_path / "robust.csv"
    from tests.workflow.families import robust_frame

    robust_frame().to_csv(csv, index=False)
    code, stdout, stderr = run_cli(
        "fit", csv, "-f", "y ~ x", "--family", "student_t", "--df", "4", "--seed", "0", "--json"
    )
    assert code == 0, stderr
    em = json.loads(stdout)
    assert em["family"] == {"name": "student_t", "df": 4.0}
    assert em["parameters"]["df"] == [4.0, 4.0]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--offset", "np.log(Hours)"], r"--offset applies to family = \"poisson\" or"),
        (
            ["--family", "poisson", "--trials", "Hours"],
            r"--trials applies to family = \"binomial\"",
        ),
        (["--family", "poisson", "--df", "3"], r"--df is only used with family = \"student_t\""),
        (["--family", "poisson", "--variance", "shared"], r"--variance is not used with family"),
        (["--family", "poison"], r"argument --family: invalid choice: 'poison'"),
        (["--family", "poisson", "--offset", "np.log(Hourz)"], r"--offset 'np.log\(Hourz\)'"),
        (["--family", "binomial"], r"--family binomial does not fit the data: .*pass --trials"),
        (["--family", "poisson", "--offset", " "], r"--offset must be an expression"),
    ],
)
def test_family_options_are_checked_before_any_fit(options, message):
    code, stdout, stderr = run_cli(
        "fit", FAMILIES_DATA / "seizure_poisson.csv", "-f", "Seizures ~ Day", *options
    )
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    assert re.search(message, stderr), stderr


def test_family_options_override_a_spec(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(
        '[data.simulate]\nn = 200\ncoef = [1.0, -1.0]\nfamily = "poisson"\n'
        "exposure = [0.5, 2.0]\nrandom_state = 0\n[em]\nn_init = 2\nrandom_state = 0\n"
    )
    code, stdout, _ = run_cli("fit", path, "--json", "-q")
    assert code == 0 and json.loads(stdout)["offset"] is True  # the simulation's exposure
    # another family: the spec's offset does not carry over
    code, stdout, stderr = run_cli("fit", path, "--family", "student_t", "--json", "-q")
    assert code == 0, stderr
    em = json.loads(stdout)
    assert em["family"]["name"] == "student_t" and em["offset"] is False


def test_simulate_families(tmp_path):
    out = tmp_path / "b.csv"
    code, _, stderr = run_cli(
        "simulate", "--n", "60", "--coef", "1;-1", "--family", "binomial", "--trials", "3,8",
        "--seed", "1", "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    frame = pd.read_csv(out)
    assert frame.columns.tolist() == ["x0", "trials", "y"]
    assert frame.trials.between(3, 8).all() and (frame.y <= frame.trials).all()
    code, _, stderr = run_cli(
        "simulate", "--n", "60", "--coef", "1;-1", "--family", "poisson", "--exposure", "1,3",
        "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    assert pd.read_csv(out).exposure.between(1, 3).all()
    code, _, stderr = run_cli(
        "simulate", "--n", "6", "--coef", "1;-1", "--trials", "3", "--out", out
    )
    assert code == 2 and "[data.simulate] trials is only used with family" in stderr


def test_select_k_of_a_poisson_spec(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(
        '[data.simulate]\nn = 300\ncoef = [0.5, -0.5]\nintercept = [0.5, 2.0]\nfamily = "poisson"\n'
        "random_state = 0\n[em]\nn_init = 2\nrandom_state = 0\n"
    )
    code, stdout, stderr = run_cli("select-k", path, "--k", "1-3", "--no-loo", "-q")
    assert code == 0, stderr
    assert "Best K by BIC: 2" in stdout
