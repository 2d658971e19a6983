"""workflow/run.py for grouped, concomitant and shared-coefficient specs (issue #11): a run
fits the model the spec describes, writes its artifacts (mixing.png included) and redraws them;
``summary_table`` and ``select_k`` keep the structure.

The runs are EM only (small data, a few starts) but one, with a tiny posterior.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_mlr import MixtureOfRegressions
from bayes_mlr.workflow import io, run
from bayes_mlr.workflow.spec import load_data, load_spec, parse_spec

STRUCTURE = Path(__file__).resolve().parents[1] / "peers" / "structure"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Grouped rows, a concomitant variable of the group and a shared slope (flexmix's combined_sim)
COMBINED = f"""
name = "combined"
[data]
path = "{STRUCTURE / "combined_sim.csv"}"
formula = "y ~ x | id"
[model]
concomitant = "~ z"
shared = "~ w"
[em]
n_init = 3
random_state = 0
[posterior]
enabled = false
"""


def quiet(message):
    """An ``echo`` that drops the step lines."""


@pytest.fixture(scope="module")
def combined(tmp_path_factory):
    """One EM-only run of the combined spec, inspected by several tests."""
    folder = tmp_path_factory.mktemp("specs")
    path = folder / "combined.toml"
    path.write_text(COMBINED)
    result = run.run_spec(load_spec(path), folder / "run", progress=False, echo=quiet)
    return path, result


def test_a_run_fits_the_structured_model(combined):
    _, result = combined
    frame = pd.read_csv(STRUCTURE / "combined_sim.csv")
    direct = MixtureOfRegressions.from_formula(
        "y ~ x | id", frame, concomitant="~ z", shared="~ w", n_init=3, random_state=0
    )
    model = result.model
    assert model.n_groups_ == 120 and model.shared_.tolist() == [False, True]
    assert model.feature_names == ["x", "w"]
    # the same fit as from_formula: same data, same settings, same starts
    np.testing.assert_allclose(model.coef_, direct.coef_, rtol=1e-10)
    np.testing.assert_allclose(model.concomitant_coef_, direct.concomitant_coef_, rtol=1e-10)
    assert model.log_likelihood_ == pytest.approx(direct.log_likelihood_, rel=1e-12)


def test_a_run_writes_the_structure(combined):
    _, result = combined
    out = result.directory
    assert {p.name for p in out.iterdir()} == {
        "spec.toml",
        "run.json",
        "em.json",
        "model",
        "report.md",
        "fit.png",
        "mixing.png",
        "em_trace.png",
    }
    assert (out / "mixing.png").read_bytes().startswith(PNG_MAGIC)
    manifest = io.read_json(out / "run.json")
    assert manifest["artifacts"]["mixing"] == "mixing.png"
    data = manifest["data"]
    assert (data["group"], data["n_groups"]) == ("id", 120)
    assert (data["concomitant"], data["concomitant_names"], data["shared"]) == ("~ z", ["z"], "~ w")
    em = io.read_json(out / "em.json")
    assert em["n_groups"] == 120 and em["shared"]["features"] == ["w"]
    assert em["concomitant"]["names"] == ["z"]
    # BIC of the grouped, concomitant model: the estimator's own, with the training structure
    model = result.model
    assert em["bic"] == pytest.approx(
        model.bic(model._fit_X, model._fit_y, **model._training_structure()), rel=1e-12
    )
    loaded = MixtureOfRegressions.load(out / "model")
    frame = pd.read_csv(STRUCTURE / "combined_sim.csv")
    np.testing.assert_allclose(loaded.predict(frame), model.predict(frame), rtol=1e-12)


def test_report_command_redraws_a_structured_run(combined, tmp_path):
    _, result = combined
    copy = tmp_path / "copy"
    shutil.copytree(result.directory, copy)
    (copy / "mixing.png").unlink()
    written = run.redraw_plots(copy, dpi=60)
    assert set(written) == {"fit", "mixing", "em_trace"}
    assert (copy / "mixing.png").read_bytes().startswith(PNG_MAGIC)
    data = run.run_data(io.read_json(copy / "run.json"), result.model)
    assert data is not None and data.concomitant is not None and data.groups is not None


def test_summary_table_rows_of_a_structured_model(combined):
    _, result = combined
    table = run.summary_table(result.model)
    assert "coef[shared, w]" in table.index
    assert not {"coef[0, w]", "coef[1, w]"} & set(table.index)  # the shared slope is one row
    assert "concomitant_coef[1, z]" in table.index and "concomitant_intercept[1]" in table.index
    assert "concomitant_coef[0, z]" not in table.index  # the reference, fixed at 0
    model = result.model
    se = model.standard_errors_
    row = table.loc["concomitant_coef[1, z]"]
    assert (row["em"], row["em_se"]) == (
        model.concomitant_coef_[1, 0],
        se["concomitant_coef"][1, 0],
    )
    shared = table.loc["coef[shared, w]"]
    assert shared["component"] == "shared" and shared["em"] == model.coef_[0, 1]
    # the shared row comes after the per-component rows of coef
    labels = list(table.index)
    assert labels.index("coef[shared, w]") == labels.index("coef[1, x]") + 1


def test_summary_table_truth_of_simulated_structure():
    spec = parse_spec(
        {
            "name": "s",
            "data": {
                "simulate": {
                    "n": 300,
                    "coef": [[1.5, 0.7], [-1.0, 0.7]],
                    "intercept": [2.0, -2.0],
                    "concomitant_coef": [[0.0], [1.0]],
                    "random_state": 0,
                }
            },
            "model": {"concomitant": "~ w0", "shared": "~ x1"},
            "em": {"n_init": 3, "random_state": 0},
        }
    )
    model, data = run.fit_spec(spec, echo=quiet, progress=False)
    table = run.summary_table(model, data.truth)
    assert table.loc["coef[shared, x1]", "truth"] == 0.7
    assert table.loc["concomitant_coef[1, w0]", "truth"] == 1.0
    assert table.loc["concomitant_intercept[1]", "truth"] == 0.0


def test_a_structured_run_with_a_tiny_posterior(tmp_path):
    # grouped rows and a concomitant variable; 2 x 60 draws: the pipeline, not the inference
    path = tmp_path / "grouped.toml"
    path.write_text(
        "[data.simulate]\nn = 160\nn_groups = 40\ncoef = [[1.5], [-1.0]]\n"
        "intercept = [-2.0, 2.0]\nconcomitant_coef = [[0.0], [1.0]]\nrandom_state = 0\n"
        '[model]\nconcomitant = "~ w0"\n[em]\nn_init = 2\nrandom_state = 0\n'
        '[posterior]\ndraws = 60\ntune = 60\nchains = 2\ncores = 1\nsampler = "pymc"\n'
        "random_seed = 1\n"
    )
    result = run.run_spec(load_spec(path), tmp_path / "run", progress=False, echo=quiet)
    names = {p.name for p in result.directory.iterdir()}
    assert {"posterior.nc", "comparison.csv", "diagnostics.json", "mixing.png"} <= names
    assert {"trace.png", "rank.png", "forest.png", "ppc.png"} <= names
    comparison = pd.read_csv(result.directory / "comparison.csv", index_col="label")
    assert any(label.startswith("concomitant_coef") for label in comparison.index)
    text = (result.directory / "report.md").read_text()
    assert "## Posterior" in text and "concomitant_coef[1, w0]" in text


def test_select_k_of_a_structured_spec(combined):
    path, _ = combined
    table = run.select_k(load_spec(path), [1, 2], loo=False, progress=False, echo=quiet)
    assert table["best_bic"].tolist() == [False, True]
    # each row is the criterion of the structured fit (groups and concomitant variables)
    spec = load_spec(path)
    model, _ = run.fit_spec(spec, load_data(spec), n_components=2, echo=quiet, progress=False)
    assert table.loc[2, "bic"] == pytest.approx(
        model.bic(model._fit_X, model._fit_y, **model._training_structure()), rel=1e-10
    )


# -- component families (issue #12) ----------------------------------------------------------

FAMILIES = Path(__file__).resolve().parents[1] / "peers" / "families"
SEIZURE = f"""
name = "seizure"
[data]
path = "{FAMILIES / "seizure_poisson.csv"}"
formula = "Seizures ~ Treatment * np.log(Day)"
[model]
family = "poisson"
offset = "np.log(Hours)"
[em]
n_init = 5
random_state = 0
[posterior]
enabled = false
"""


@pytest.fixture(scope="module")
def seizure_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    path = folder / "seizure.toml"
    path.write_text(SEIZURE)
    return run.run_spec(load_spec(path), folder / "run", progress=False, echo=quiet)


def test_a_poisson_run_fits_and_records_the_family(seizure_run):
    model, out = seizure_run.model, seizure_run.directory
    direct = MixtureOfRegressions.from_formula(
        "Seizures ~ Treatment * np.log(Day)",
        pd.read_csv(FAMILIES / "seizure_poisson.csv"),
        family="poisson",
        offset="np.log(Hours)",
        n_init=5,
        random_state=0,
    )
    assert model.log_likelihood_ == pytest.approx(direct.log_likelihood_, rel=1e-12)
    assert model.log_likelihood_ == pytest.approx(-376.176205, abs=1e-5)  # flexmix's
    manifest = io.read_json(out / "run.json")
    assert (manifest["data"]["family"], manifest["data"]["offset"]) == ("poisson", "np.log(Hours)")
    em = io.read_json(out / "em.json")
    assert em["family"] == {"name": "poisson"} and "sigma" not in em["parameters"]
    assert em["data"]["source"]["offset"] == "np.log(Hours)"
    # the saved model computes the offset of a new frame from its expression
    loaded = MixtureOfRegressions.load(out / "model")
    frame = pd.read_csv(FAMILIES / "seizure_poisson.csv")
    np.testing.assert_array_equal(loaded.predict(frame), direct.predict(frame))
    table = run.summary_table(model)
    assert not any(label.startswith("sigma") for label in table.index)


def test_a_poisson_run_is_redrawn_from_its_data(seizure_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(seizure_run.directory, copy)
    data = run.run_data(io.read_json(copy / "run.json"), seizure_run.model)
    assert data is not None  # the data file, formula and offset give the training data again
    np.testing.assert_array_equal(data.offset, seizure_run.model._fit_offset)
    written = run.redraw_plots(copy, dpi=60)
    assert set(written) == {"fit", "em_trace"}
    text = (copy / "report.md").read_text()
    assert "Poisson components" in text


def test_run_data_refuses_a_changed_offset_column(seizure_run, tmp_path):
    frame = pd.read_csv(FAMILIES / "seizure_poisson.csv")
    frame["Hours"] = frame["Hours"] + 1.0  # same X and y, another exposure
    changed = tmp_path / "seizure.csv"
    frame.to_csv(changed, index=False)
    manifest = io.read_json(seizure_run.directory / "run.json")
    manifest["spec"]["data"]["path"] = str(changed)
    with pytest.warns(UserWarning, match="differ from the data the model was fitted on"):
        assert run.run_data(manifest, seizure_run.model) is None


def test_summary_table_of_a_student_t_fit_has_df_rows_with_the_truth():
    spec = parse_spec(
        {
            "name": "t",
            "data": {
                "simulate": {
                    "n": 300,
                    "coef": [[1.5], [-1.0]],
                    "intercept": [-2.0, 2.0],
                    "family": "student_t",
                    "df": 3.0,
                    "random_state": 0,
                }
            },
            "em": {"n_init": 3, "random_state": 0},
        }
    )
    model, data = run.fit_spec(spec, echo=quiet, progress=False)
    table = run.summary_table(model, data.truth)
    assert table.loc["df[0]", "truth"] == 3.0
    assert table.loc["df[1]", "em"] == model.df_[1]
    assert table.loc["df[1]", "em_se"] == model.standard_errors_["df"][1]


@pytest.mark.parametrize("family", ["binomial", "student_t"])
def test_a_family_run_with_a_tiny_posterior(tmp_path, family):
    # the pipeline with a posterior, 2 x 60 draws: every figure drawn from a real posterior of
    # a family without sigma (binomial, grouped, a shared effect) and of one with df (t)
    pytest.importorskip("bayes_mlr.bayes.families", reason="the posterior of families")
    path = tmp_path / f"{family}.toml"
    if family == "binomial":
        data = (
            f'[data]\npath = "{FAMILIES / "betablocker_grouped_shared.csv"}"\n'
            'formula = "Deaths ~ 1 | Center"\n'
            '[model]\nn_components = 3\nfamily = "binomial"\ntrials = "Total"\n'
            'shared = "~ Treatment"\n'
        )
    else:
        data = (
            "[data.simulate]\nn = 200\ncoef = [[1.5], [-1.0]]\nintercept = [-2.0, 2.0]\n"
            'family = "student_t"\ndf = 3.0\nrandom_state = 0\n'
        )
    path.write_text(
        data + "[em]\nn_init = 2\nrandom_state = 0\n"
        '[posterior]\ndraws = 60\ntune = 60\nchains = 2\ncores = 1\nsampler = "pymc"\n'
        "random_seed = 1\n"
    )
    result = run.run_spec(load_spec(path), tmp_path / "run", progress=False, echo=quiet)
    names = {p.name for p in result.directory.iterdir()}
    assert {"posterior.nc", "comparison.csv", "diagnostics.json", "fit.png"} <= names
    assert {"trace.png", "rank.png", "forest.png", "ppc.png"} <= names
    comparison = pd.read_csv(result.directory / "comparison.csv", index_col="label")
    assert any(label.startswith("sigma") for label in comparison.index) == (family != "binomial")
    assert any(label.startswith("df") for label in comparison.index) == (family == "student_t")
    text = (result.directory / "report.md").read_text()
    assert "## Posterior" in text
