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
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_mlr import MixtureOfRegressions, cli, io

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
    }
    assert {p.name for p in out.iterdir()} == expected  # and no temporary file left
    manifest = io.read_json(out / "run.json")
    assert set(manifest["artifacts"].values()) == expected
    assert manifest["truth"]["coef"] == [[1.5], [-1.0]]


def test_em_json(run):
    out, _, _ = run
    em = io.read_json(out / "em.json")
    assert em["schema_version"] == 1
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
        "z",
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


def test_interrupted_run_leaves_a_consistent_folder(run, spec_path, tmp_path, monkeypatch):
    out, _, _ = run
    folder = tmp_path / "again"
    shutil.copytree(out, folder)  # a complete earlier run in the same folder

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MixtureOfRegressions, "sample_posterior", interrupt)
    code, _, stderr = run_cli("run", spec_path, "--out", folder, "-q")
    assert code == 130
    assert stderr.strip().startswith("bayes-mlr: interrupted")
    assert not list(folder.rglob("*.tmp"))  # no half-written file
    manifest = io.read_json(folder / "run.json")
    assert manifest["status"] == "running"
    assert set(manifest["artifacts"]) == {"run", "spec", "model", "em"}
    # the earlier run's posterior files are still there but no longer belong to this run
    assert (folder / "posterior.nc").exists()
    code, _, _ = run_cli("report", folder, "--no-plots")
    assert code == 0
    text = (folder / "report.md").read_text()
    assert "**This run did not finish**" in text
    assert "**Diagnostics: NOT RUN**" in text and "## Posterior" not in text


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
