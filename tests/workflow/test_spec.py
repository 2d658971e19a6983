"""TOML model specs (validation, data loading) and formulas to design matrices."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_mlr.formula import FormulaError, design_from_formula
from bayes_mlr.workflow.spec import SpecError, load_data, load_spec, parse_spec

MODELS = Path(__file__).resolve().parents[2] / "models"
SIMULATED = {"simulate": {"n": 50, "coef": [[1.0], [-1.0]], "random_state": 0}}


def spec_of(document, tmp_path=None):
    return parse_spec(document, base_dir=tmp_path or ".", source="test.toml")


# -- the shipped specs --------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_specs_are_valid_and_load_their_data(path):
    spec = load_spec(path)
    assert spec.name == tomllib.loads(path.read_text())["name"]
    data = load_data(spec)
    assert data.X.shape[0] == data.y.shape[0] >= 44  # binomial.toml: 22 centres x 2 arms
    assert np.isfinite(data.y).all()


def test_shipped_specs_cover_the_variance_modes():
    specs = [load_spec(p) for p in MODELS.glob("*.toml")]
    assert {s.model.variance for s in specs} == {"component", "shared", "fixed"}
    assert any(s.model.n_components == 3 for s in specs)
    assert any(s.data.path is not None for s in specs)  # one reads a CSV
    demo = load_spec(MODELS / "demo.toml")
    assert demo.data.simulate is not None  # make demo needs no files


def test_defaults():
    spec = spec_of({"name": "x", "data": SIMULATED})
    assert spec.model.n_components == 2 and spec.model.variance == "component"
    assert spec.em.n_init == 10 and spec.em.random_state is None
    assert (spec.posterior.draws, spec.posterior.tune, spec.posterior.chains) == (1000, 1000, 4)
    assert spec.posterior.sampler == "auto" and spec.posterior.enabled
    assert spec.diagnostics.thresholds()["rhat_max"] == 1.01
    assert spec.k_values() == [1, 2, 3]
    assert (spec.plots.dpi, spec.plots.vector_format) == (150, None)
    assert spec.posterior.starts == "dispersed" and spec.posterior.relabel == "em"


def test_every_sampler_is_a_spec_and_cli_choice():
    """``[posterior] sampler`` and ``--sampler`` take the same names, Gibbs included."""
    from bayes_mlr.workflow.cli import build_parser
    from bayes_mlr.workflow.spec import SAMPLERS

    assert "gibbs" in SAMPLERS
    spec = spec_of({"name": "x", "data": SIMULATED, "posterior": {"sampler": "gibbs"}})
    assert spec.posterior.sampler == "gibbs"
    choices = {
        tuple(action.choices)
        for sub in build_parser()._subparsers._group_actions
        for parser in sub.choices.values()
        for action in parser._actions
        if "--sampler" in action.option_strings
    }
    assert choices == {SAMPLERS}


def test_plot_settings():
    spec = spec_of({"name": "x", "data": SIMULATED, "plots": {"dpi": 300, "vector_format": "pdf"}})
    assert (spec.plots.dpi, spec.plots.vector_format) == (300, "pdf")
    none = spec_of({"name": "x", "data": SIMULATED, "plots": {"vector_format": "none"}})
    assert none.plots.vector_format is None


def test_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "my-model.toml"
    path.write_text("[data.simulate]\nn = 10\ncoef = [1.0, 2.0]\n")
    spec = load_spec(path)
    assert spec.name == "my-model"
    assert spec.data.simulate.coef == [[1.0], [2.0]]  # a flat list is one feature


# -- validation errors name the key ----------------------------------------------------------


@pytest.mark.parametrize(
    "document, message",
    [
        # a typo gets a suggestion
        (
            {"name": "x", "data": SIMULATED, "model": {"n_component": 2}},
            r"unknown key \[model\] n_component \(did you mean 'n_components'\?\)",
        ),
        ({"name": "x", "data": SIMULATED, "modle": {}}, r"unknown key modle \(did you mean"),
        (
            {"name": "x", "data": SIMULATED, "model": {"variance": "diagonal"}},
            r"\[model\] variance must be one of 'component', 'shared', 'fixed'; got 'diagonal'",
        ),
        (
            {"name": "x", "data": SIMULATED, "model": {"variance": "fixed"}},
            r'\[model\] sigma is required with variance = "fixed"',
        ),
        (
            {"name": "x", "data": SIMULATED, "model": {"sigma": 0.5}},
            r"\[model\] sigma is only used with variance",
        ),
        (
            {"name": "x", "data": SIMULATED, "model": {"n_components": 0}},
            r"\[model\] n_components must be an integer >= 1; got 0",
        ),
        (
            {"name": "x", "data": SIMULATED, "model": {"n_components": 2.5}},
            r"\[model\] n_components must be an integer; got 2.5",
        ),
        ({"name": "x", "data": SIMULATED, "em": {"tol": -1.0}}, r"\[em\] tol must be >= 0"),
        (
            {"name": "x", "data": SIMULATED, "posterior": {"target_accept": 1.0}},
            r"\[posterior\] target_accept must be < 1",
        ),
        (
            {"name": "x", "data": SIMULATED, "posterior": {"cores": 0}},
            r"\[posterior\] cores must be an integer >= 1; got 0",
        ),
        (
            {"name": "x", "data": SIMULATED, "posterior": {"sampler": "stan"}},
            r"\[posterior\] sampler must be one of",
        ),
        (
            {"name": "x", "data": SIMULATED, "posterior": {"priors": {"coef": {"scale": 1}}}},
            r"unknown key \[posterior.priors.coef\] scale",
        ),
        (
            {"name": "x", "data": SIMULATED, "select_k": {"n_components": [1, 1]}},
            r"\[select_k\] n_components must be a list of distinct integers",
        ),
        ({"name": "bad name!", "data": SIMULATED}, r"name must be letters, digits"),
        ({"name": "x"}, r"the \[data\] table is required"),
        ({"name": "x", "data": {}}, r"\[data\] needs path .* or a \[data.simulate\] table"),
        (
            {"name": "x", "data": {"path": "a.csv", "formula": "y ~ x", **SIMULATED}},
            r"\[data\] has both path and simulate",
        ),
        (
            {"name": "x", "data": {"path": "a.xlsx", "formula": "y ~ x"}},
            r"\[data\] path must be a CSV .* or Parquet",
        ),
        (
            {"name": "x", "data": {"path": "missing.csv", "formula": "y ~ x"}},
            r"\[data\] path names a file that does not exist",
        ),
        ({"name": "x", "data": {"simulate": {"n": 10}}}, r"\[data.simulate\] coef is required"),
        (
            {"name": "x", "data": {"simulate": {"coef": [[1.0]]}}},
            r"\[data.simulate\] n is required",
        ),
        (
            {"name": "x", "data": {"simulate": {"n": 10, "coef": [[1.0, 2.0], [1.0]]}}},
            r"\[data.simulate\] coef rows must all have the same length",
        ),
        (
            {
                "name": "x",
                "data": {"simulate": {"n": 10, "coef": [[1.0], [2.0]], "weights": [0.5, 0.6]}},
            },
            r"\[data.simulate\] weights must be non-negative and sum to 1",
        ),
        (
            {
                "name": "x",
                "data": {"simulate": {"n": 10, "coef": [[1.0], [2.0]], "intercept": [0.0]}},
            },
            r"\[data.simulate\] intercept must have 2 entries \(one per component\); got 1",
        ),
        (
            {"name": "x", "data": {"simulate": {"n": 10, "coef": [[1.0], [2.0]], "sigma": -1}}},
            r"\[data.simulate\] sigma must be positive",
        ),
        (
            {
                "name": "x",
                "data": {"simulate": {"n": 10, "coef": [[1.0], [2.0]], "feature_names": ["a b"]}},
            },
            r"\[data.simulate\] feature_names must be 1 distinct names",
        ),
        (
            {"name": "x", "data": SIMULATED, "plots": {"vector_format": "eps"}},
            r"\[plots\] vector_format must be one of 'none', 'pdf', 'svg'; got 'eps'",
        ),
        (
            {"name": "x", "data": SIMULATED, "posterior": {"starts": "random"}},
            r"\[posterior\] starts must be one of 'dispersed', 'em'; got 'random'",
        ),
        (
            {"name": "x", "data": SIMULATED, "plots": {"dpi": 20}},
            r"\[plots\] dpi must be an integer >= 50; got 20",
        ),
        (
            {"name": "x", "data": SIMULATED, "plots": {"format": "pdf"}},
            r"unknown key \[plots\] format",
        ),
    ],
)
def test_invalid_specs_name_file_and_key(tmp_path, document, message):
    with pytest.raises(SpecError, match=message) as info:
        spec_of(document, tmp_path)
    text = str(info.value)
    assert text.startswith("test.toml: ")
    assert "\n" not in text


def test_toml_syntax_error_and_missing_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("name = \n")
    with pytest.raises(SpecError, match=r"bad.toml: not valid TOML"):
        load_spec(path)
    with pytest.raises(SpecError, match=r"no such spec file"):
        load_spec(tmp_path / "missing.toml")


# -- data -------------------------------------------------------------------------------------


def write_csv(tmp_path, n=120, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "size": rng.uniform(40, 160, n),
            "region": rng.choice(["north", "south", "east"], n),
            "w": rng.integers(1, 3, n).astype(float),
        }
    )
    df["price"] = 50 + 2 * df["size"] + rng.normal(0, 5, n)
    df.to_csv(tmp_path / "prices.csv", index=False)
    return df


def test_simulated_data_and_truth():
    spec = spec_of(
        {
            "name": "x",
            "data": {
                "simulate": {
                    "n": 80,
                    "coef": [[1.0, 0.5], [-1.0, 0.0]],
                    "weights": [0.3, 0.7],
                    "sigma": 0.4,
                    "random_state": 3,
                    "feature_names": ["a", "b"],
                }
            },
        }
    )
    data = load_data(spec)
    assert data.feature_names == ["a", "b"]
    assert data.formula == "y ~ a + b"
    assert data.fit_intercept
    np.testing.assert_array_equal(data.truth["weights"], [0.3, 0.7])
    np.testing.assert_array_equal(data.truth["sigma"], [0.4, 0.4])
    again = load_data(spec)  # seeded: the same data every time
    np.testing.assert_array_equal(again.y, data.y)


def test_csv_with_formula_categories_and_weights(tmp_path):
    df = write_csv(tmp_path)
    spec = spec_of(
        {
            "name": "p",
            "data": {
                "path": "prices.csv",
                "sample_weight": "w",
                "formula": "price ~ size + C(region)",
            },
        },
        tmp_path,
    )
    data = load_data(spec)
    assert data.feature_names == ["size", "C(region)[T.north]", "C(region)[T.south]"]
    np.testing.assert_array_equal(data.y, df["price"].to_numpy())
    np.testing.assert_array_equal(data.sample_weight, df["w"].to_numpy())
    assert data.source["path"].endswith("prices.csv")


def test_parquet_and_no_intercept(tmp_path):
    df = write_csv(tmp_path)
    df.to_parquet(tmp_path / "prices.parquet")
    spec = spec_of(
        {"name": "p", "data": {"path": "prices.parquet", "formula": "price ~ size - 1"}}, tmp_path
    )
    data = load_data(spec)
    assert not data.fit_intercept
    assert data.feature_names == ["size"]


def test_data_errors_are_spec_errors(tmp_path):
    write_csv(tmp_path)
    spec = spec_of(
        {"name": "p", "data": {"path": "prices.csv", "formula": "price ~ area"}}, tmp_path
    )
    # a spec without a file: the message starts with the data file, not with "<spec>"
    with pytest.raises(SpecError, match=r"^\S*prices.csv: formula 'price ~ area'.*`area` is not"):
        load_data(spec)
    spec = spec_of(
        {
            "name": "p",
            "data": {"path": "prices.csv", "formula": "price ~ size", "sample_weight": "weight"},
        },
        tmp_path,
    )
    with pytest.raises(SpecError, match=r"prices.csv: the weights are column 'weight', which"):
        load_data(spec)


def test_missing_values_raise_or_drop(tmp_path):
    df = write_csv(tmp_path)
    df.loc[3, "size"] = np.nan
    df.to_csv(tmp_path / "prices.csv", index=False)
    spec = spec_of(
        {
            "name": "p",
            "data": {"path": "prices.csv", "formula": "price ~ size", "sample_weight": "w"},
        },
        tmp_path,
    )
    with pytest.raises(SpecError, match="missing values"):
        load_data(spec)
    spec = spec_of(
        {
            "name": "p",
            "data": {
                "path": "prices.csv",
                "formula": "price ~ size",
                "sample_weight": "w",
                "na_action": "drop",
            },
        },
        tmp_path,
    )
    data = load_data(spec)
    assert data.X.shape[0] == len(df) - 1 == data.sample_weight.shape[0]
    np.testing.assert_array_equal(data.sample_weight, df["w"].drop(index=3).to_numpy())


# -- formulas ----------------------------------------------------------------------------------


FRAME = pd.DataFrame(
    {
        "y": [1.0, 2.0, 4.0, 3.0, 5.0, 7.0],
        "x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        "z": [1.0, 1.5, 0.5, 2.0, 1.0, 0.0],
        "g": ["a", "b", "a", "c", "b", "a"],
    }
)


@pytest.mark.parametrize(
    "formula, names, intercept",
    [
        ("y ~ x", ["x"], True),
        ("y ~ x + z", ["x", "z"], True),
        ("y ~ x - 1", ["x"], False),  # "- 1" removes the intercept
        ("y ~ 0 + x", ["x"], False),  # and so does "0 +"
        ("y ~ x + g", ["x", "g[T.b]", "g[T.c]"], True),  # reference level dropped
        ("y ~ x + g - 1", ["x", "g[a]", "g[b]", "g[c]"], False),  # full dummies without one
        ("y ~ x:z", ["x:z"], True),
        ("np.log(y) ~ x", ["x"], True),
        ("y ~ .", ["x", "z", "g[T.b]", "g[T.c]"], True),
    ],
)
def test_design_from_formula(formula, names, intercept):
    design = design_from_formula(formula, FRAME)
    assert design.feature_names == names == list(design.X.columns)
    assert design.fit_intercept is intercept
    assert "Intercept" not in design.X.columns
    assert design.X.dtypes.map(lambda d: d.kind).eq("f").all()
    assert design.y.shape == (6,)


def test_design_values_and_response():
    design = design_from_formula("np.log(y) ~ x + z", FRAME)
    np.testing.assert_array_equal(design.y, np.log(FRAME["y"].to_numpy()))
    np.testing.assert_array_equal(design.X.to_numpy(), FRAME[["x", "z"]].to_numpy())
    assert design.response == "np.log(y)"


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y ~ (x", "syntax error"),
        ("y ~ w", "`w` is not present"),
        ("~ x", "has no response"),
        ("y", "must be a string like 'y ~ x1 \\+ x2'"),
        ("y ~ 1", "has no features"),
        ("g ~ x", "must be numeric"),
        ("y + z ~ x", "exactly one response"),
    ],
)
def test_formula_errors_are_one_line(formula, message):
    with pytest.raises(FormulaError, match=message) as info:
        design_from_formula(formula, FRAME)
    assert "\n" not in str(info.value)
    assert "\x1b" not in str(info.value)  # no terminal colour codes


def test_em_guard_settings_reach_the_estimator():
    def spec(**em):
        return spec_of({"name": "x", "data": SIMULATED, "em": em})

    model = spec(spurious="allow", min_weight=0.05).estimator()
    assert (model.spurious, model.min_weight) == ("allow", 0.05)
    assert (spec().estimator().spurious, spec().estimator().min_weight) == ("avoid", None)
    with pytest.raises(SpecError, match=r"\[em\] spurious"):
        spec(spurious="drop")
    with pytest.raises(SpecError, match=r"\[em\] min_weight"):
        spec(min_weight=1.5)


# -- concomitant variables, grouped rows, shared coefficients (issue #11) ---------------------

STRUCTURE = Path(__file__).resolve().parents[1] / "peers" / "structure"


def test_shipped_specs_cover_the_structures():
    specs = [load_spec(p) for p in MODELS.glob("*.toml")]
    assert any(s.model.concomitant is not None for s in specs)
    assert any(s.model.shared is not None for s in specs)
    assert any(s.grouped for s in specs)


def test_structure_keys_are_read():
    spec = spec_of(
        {
            "name": "x",
            "data": {"path": str(STRUCTURE / "combined_sim.csv"), "formula": "y ~ x | id"},
            "model": {"concomitant": " ~ z ", "shared": "~ w"},
        }
    )
    assert (spec.model.concomitant, spec.model.shared) == ("~ z", "~ w")  # spaces stripped
    assert spec.grouped and spec.structured
    # a '|' inside parentheses is Python's "or", not a grouping term
    spec = spec_of({"name": "x", "data": SIMULATED, "model": {"concomitant": "~ I(a | b)"}})
    assert spec.model.concomitant == "~ I(a | b)" and not spec.grouped
    plain = spec_of({"name": "x", "data": SIMULATED})
    assert not plain.grouped and not plain.structured
    assert (plain.model.concomitant, plain.model.shared) == (None, None)


def test_structured_csv_data():
    spec = spec_of(
        {
            "name": "x",
            "data": {"path": str(STRUCTURE / "combined_sim.csv"), "formula": "y ~ x | id"},
            "model": {"concomitant": "~ z", "shared": "~ w"},
        }
    )
    data = load_data(spec)
    frame = pd.read_csv(STRUCTURE / "combined_sim.csv")
    assert data.feature_names == ["x", "w"]  # the shared variable joins the features
    assert data.shared == ["w"] and data.group == "id"
    np.testing.assert_array_equal(data.groups, frame["id"].to_numpy())
    assert list(data.concomitant.columns) == ["z"]
    np.testing.assert_array_equal(data.concomitant["z"], frame["z"])
    model = spec.estimator(fit_intercept=data.fit_intercept, shared=data.shared)
    assert model.shared == ["w"]


def test_categorical_concomitant_and_shared_intercept():
    spec = spec_of(
        {
            "name": "x",
            "data": {"path": str(STRUCTURE / "concomitant_sim3.csv"), "formula": "y ~ 0 + x"},
            "model": {"concomitant": "~ z1 + C(z2)", "shared": "~ 1"},
        }
    )
    data = load_data(spec)
    assert list(data.concomitant.columns) == ["z1", "C(z2)[T.b]", "C(z2)[T.c]"]
    assert data.shared == ["intercept"] and data.fit_intercept  # one intercept for all
    assert data.groups is None


def test_simulated_structure_and_truth():
    spec = spec_of(
        {
            "name": "x",
            "data": {
                "simulate": {
                    "n": 90,
                    "coef": [[1.0, 0.5], [-1.0, 0.5]],
                    "n_groups": 30,
                    "concomitant_intercept": [0.0, 0.4],
                    "concomitant_coef": [[0.0], [1.5]],
                    "concomitant_names": ["age"],
                    "random_state": 2,
                }
            },
            "model": {"concomitant": "~ age", "shared": "~ x1"},
        }
    )
    data = load_data(spec)
    assert data.formula == "y ~ x0 + x1 | group"  # the default formula groups the rows
    assert list(data.frame.columns) == ["x0", "x1", "age", "group", "y"]
    assert len(np.unique(data.groups)) == 30
    # the concomitant variable belongs to the group: one value per group
    assert (data.frame.groupby("group")["age"].nunique() == 1).all()
    np.testing.assert_array_equal(data.truth["concomitant_coef"], [[0.0], [1.5]])
    np.testing.assert_array_equal(data.truth["concomitant_intercept"], [0.0, 0.4])
    assert data.truth["weights"].shape == (2,)  # the mean prior over the rows
    np.testing.assert_array_equal(load_data(spec).y, data.y)  # seeded


def test_simulated_concomitant_names_default_to_w():
    spec = spec_of(
        {
            "name": "x",
            "data": {"simulate": {"n": 40, "coef": [1.0, -1.0], "concomitant_coef": [[0], [1]]}},
        }
    )
    data = load_data(spec)
    assert list(data.frame.columns) == ["x0", "w0", "y"]
    assert data.formula == "y ~ x0" and data.concomitant is None  # used only when modelled


SIM = {"n": 20, "coef": [[1.0], [-1.0]]}


@pytest.mark.parametrize(
    "document, message",
    [
        (
            {"name": "x", "data": SIMULATED, "model": {"concomitant": "z"}},
            r"\[model\] concomitant must be a one-sided formula such as '~ z1 \+ C\(z2\)' "
            r"\(nothing left of '~'\); got 'z'",
        ),
        (
            {"name": "x", "data": SIMULATED, "model": {"shared": "y ~ w"}},
            r"\[model\] shared must be a one-sided formula such as '~ w'",
        ),
        (
            {"name": "x", "data": SIMULATED, "model": {"shared": "~ "}},
            r"\[model\] shared must be a one-sided formula",
        ),
        (
            {"name": "x", "data": SIMULATED, "model": {"concomitant": "~ z | id"}},
            r"\[model\] concomitant must not hold a grouping term '\|'",
        ),
        (
            {"name": "x", "data": SIMULATED, "model": {"concomitant": ["~ z"]}},
            r"\[model\] concomitant must be a string; got \['~ z'\]",
        ),
        (
            {"name": "x", "data": SIMULATED, "model": {"concommitant": "~ z"}},
            r"unknown key \[model\] concommitant \(did you mean 'concomitant'\?\)",
        ),
        (
            {"name": "x", "data": {"simulate": SIM, "formula": "y ~ x0 | a + b"}},
            r"\[data\] formula is not a valid grouped formula: .*must be one column name",
        ),
        (
            {"name": "x", "data": {"simulate": SIM, "formula": "y ~ x0 | g | h"}},
            r"\[data\] formula is not a valid grouped formula: .*only one grouping term",
        ),
        (
            {
                "name": "x",
                "data": SIMULATED,
                "model": {"shared": "~ x0"},
                "em": {"min_weight": 0.05},
            },
            r"\[em\] min_weight is not available with \[model\] shared; leave it out",
        ),
        (
            {"name": "x", "data": {"simulate": {**SIM, "n_groups": 5}}, "em": {"min_weight": 0.1}},
            r"\[em\] min_weight is not available with a grouping term",
        ),
        (
            {"name": "x", "data": {"simulate": {**SIM, "n_groups": 21}}},
            r"\[data.simulate\] n_groups must be at most n = 20",
        ),
        (
            {"name": "x", "data": {"simulate": {**SIM, "concomitant_coef": [[1.0], [1.0]]}}},
            r"\[data.simulate\] concomitant_coef row 0 must be zeros \(component 0 is the",
        ),
        (
            {"name": "x", "data": {"simulate": {**SIM, "concomitant_coef": [[0.0]]}}},
            r"\[data.simulate\] concomitant_coef must be 2 lists \(one per component\)",
        ),
        (
            {
                "name": "x",
                "data": {
                    "simulate": {**SIM, "weights": [0.5, 0.5], "concomitant_coef": [[0], [1]]}
                },
            },
            r"\[data.simulate\] weights cannot be given with concomitant_coef",
        ),
        (
            {"name": "x", "data": {"simulate": {**SIM, "concomitant_intercept": [0.0, 1.0]}}},
            r"\[data.simulate\] concomitant_intercept is only used with concomitant_coef",
        ),
        (
            {
                "name": "x",
                "data": {
                    "simulate": {
                        **SIM,
                        "concomitant_coef": [[0], [1]],
                        "concomitant_intercept": [1.0, 0.0],
                    }
                },
            },
            r"\[data.simulate\] concomitant_intercept entry 0 must be 0",
        ),
        (
            {
                "name": "x",
                "data": {
                    "simulate": {
                        **SIM,
                        "concomitant_coef": [[0], [1]],
                        "concomitant_names": ["x0"],
                    }
                },
            },
            r"\[data.simulate\] concomitant_names must differ from the feature names",
        ),
        (
            {
                "name": "x",
                "data": {"simulate": {**SIM, "n_groups": 4, "feature_names": ["group"]}},
            },
            r"\[data.simulate\] feature_names cannot hold 'group'",
        ),
    ],
)
def test_invalid_structure_keys_name_the_key(tmp_path, document, message):
    with pytest.raises(SpecError, match=message) as info:
        spec_of(document, tmp_path)
    assert str(info.value).startswith("test.toml: ") and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "model, message",
    [
        # a column the data lack: the key is named, not the combined model formula
        ({"concomitant": "~ q"}, r"\[model\] concomitant '~ q' uses column\(s\) 'q' that the"),
        ({"shared": "~ x + q"}, r"\[model\] shared '~ x \+ q' uses column\(s\) 'q'"),
        ({"shared": "~ w +"}, r"\[model\] shared '~ w \+' has a syntax error: Operator"),
        ({"concomitant": "~ (z"}, r"\[model\] concomitant '~ \(z' has a syntax error"),
    ],
)
def test_structure_data_errors_name_the_key(tmp_path, model, message):
    spec_file = tmp_path / "s.toml"
    data = STRUCTURE / "combined_sim.csv"
    lines = [f'[data]\npath = "{data}"\nformula = "y ~ x"\n[model]']
    lines += [f'{k} = "{v}"' for k, v in model.items()]
    spec_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecError, match=message) as info:
        load_data(load_spec(spec_file))
    assert str(info.value).startswith(f"{spec_file}: ")


def test_grouping_column_missing_is_a_formula_error(tmp_path):
    spec_file = tmp_path / "s.toml"
    spec_file.write_text(
        f'[data]\npath = "{STRUCTURE / "combined_sim.csv"}"\nformula = "y ~ x | subject"\n'
    )
    with pytest.raises(SpecError, match=r"\[data\] formula: .*grouping column 'subject' is not"):
        load_data(load_spec(spec_file))


# -- component families (issue #12) ----------------------------------------------------------

PEERS = Path(__file__).resolve().parents[1] / "peers" / "families"
SEIZURE = {"path": str(PEERS / "seizure_poisson.csv"), "formula": "Seizures ~ np.log(Day)"}
BETABLOCKER = {
    "path": str(PEERS / "betablocker_grouped_shared.csv"),
    "formula": "Deaths ~ Treatment",
}


def test_family_keys_are_read_and_reach_the_estimator():
    import bayes_mlr

    spec = spec_of(
        {"name": "x", "data": SEIZURE, "model": {"family": "poisson", "offset": "np.log(Hours)"}}
    )
    assert (spec.model.family, spec.model.offset, spec.model.trials) == (
        "poisson",
        "np.log(Hours)",
        None,
    )
    assert spec.estimator().family == "poisson"
    t = spec_of({"name": "x", "data": SIMULATED, "model": {"family": "student_t", "df": 4}})
    assert t.estimator().family == bayes_mlr.StudentT(df=4.0)
    assert spec_of({"name": "x", "data": SIMULATED}).estimator().family == "gaussian"


def test_offset_and_trials_are_evaluated_on_the_data():
    spec = spec_of(
        {"name": "x", "data": SEIZURE, "model": {"family": "poisson", "offset": "np.log(Hours)"}}
    )
    data = load_data(spec)
    frame = pd.read_csv(PEERS / "seizure_poisson.csv")
    np.testing.assert_array_equal(data.offset, np.log(frame.Hours))
    assert data.trials is None and data.source["offset"] == "np.log(Hours)"
    data = load_data(
        spec_of(
            {"name": "x", "data": BETABLOCKER, "model": {"family": "binomial", "trials": "Total"}}
        )
    )
    np.testing.assert_array_equal(data.trials, pd.read_csv(PEERS / "betablocker_shared.csv").Total)


def test_simulated_families_default_the_model_to_their_own():
    poisson = {"simulate": {**SIMULATED["simulate"], "family": "poisson", "exposure": [0.5, 2]}}
    spec = spec_of({"name": "x", "data": poisson})
    assert (spec.model.family, spec.model.offset) == ("poisson", "np.log(exposure)")
    data = load_data(spec)
    assert data.frame.columns.tolist() == ["x0", "exposure", "y"]
    np.testing.assert_allclose(np.exp(data.offset), data.frame.exposure)
    assert "sigma" not in data.truth
    binomial = {"simulate": {**SIMULATED["simulate"], "family": "binomial", "trials": [2, 9]}}
    spec = spec_of({"name": "x", "data": binomial})
    assert (spec.model.family, spec.model.trials) == ("binomial", "trials")
    data = load_data(spec)
    assert data.trials.min() >= 2 and data.trials.max() <= 9
    assert (data.y <= data.trials).all()
    t = {"simulate": {**SIMULATED["simulate"], "family": "student_t", "df": [3, 8]}}
    data = load_data(spec_of({"name": "x", "data": t}))
    np.testing.assert_array_equal(data.truth["df"], [3.0, 8.0])
    # another [model] family: no defaults taken from the simulation
    spec = spec_of({"name": "x", "data": binomial, "model": {"family": "poisson"}})
    assert spec.model.trials is None


FAMILY_ERRORS = [
    (
        {"model": {"family": "poison"}},
        r"\[model\] family must be one of 'gaussian', 'poisson', 'binomial', 'student_t'; "
        r"got 'poison' \(did you mean 'poisson'\?\)",
    ),
    ({"model": {"df": 4}}, r'\[model\] df is only used with family = "student_t"'),
    ({"model": {"family": "student_t", "df": 0}}, r"\[model\] df must be positive"),
    (
        {"model": {"offset": "np.log(h)"}},
        r'\[model\] offset applies to family = "poisson" or "binomial" .*family is '
        r"'gaussian'",
    ),
    (
        {"model": {"family": "poisson", "trials": "m"}},
        r'\[model\] trials applies to family = "binomial" only; family is \'poisson\'',
    ),
    (
        {"model": {"family": "binomial", "variance": "shared"}},
        r"\[model\] variance is not used with family = 'binomial': it has no sigma",
    ),
    ({"model": {"family": "poisson", "offset": " "}}, r"\[model\] offset must be an expression"),
    ({"model": {"family": "poisson", "offset": 1.0}}, r"\[model\] offset must be a string"),
    (
        {"model": {"family": "poisson"}, "em": {"min_weight": 0.05}},
        r"\[em\] min_weight is not available with \[model\] family = 'poisson'",
    ),
    (
        {"simulate": {"family": "poisson", "sigma": 0.5}},
        r"\[data.simulate\] sigma is not used with family = 'poisson'",
    ),
    ({"simulate": {"df": 3}}, r'\[data.simulate\] df is only used with family = "student_t"'),
    (
        {"simulate": {"family": "binomial", "trials": [9, 2]}},
        r"\[data.simulate\] trials must be a positive integer .* or a range",
    ),
    (
        {"simulate": {"family": "binomial", "trials": 2.5}},
        r"\[data.simulate\] trials must be a positive integer",
    ),
    (
        {"simulate": {"family": "poisson", "exposure": [2.0]}},
        r"\[data.simulate\] exposure must be a range \[low, high\]",
    ),
    (
        {"simulate": {"family": "poisson", "exposure": [1, 2], "feature_names": ["exposure"]}},
        r"\[data.simulate\] feature_names cannot hold 'exposure'",
    ),
    (
        {"simulate": {"family": "gamma"}},
        r"\[data.simulate\] family must be one of",
    ),
]


@pytest.mark.parametrize("change, message", FAMILY_ERRORS)
def test_invalid_family_settings_name_the_key(change, message):
    document = {"name": "x", "data": {"simulate": dict(SIMULATED["simulate"])}}
    document["data"]["simulate"].update(change.get("simulate", {}))
    for table in ("model", "em"):
        if table in change:
            document[table] = change[table]
    with pytest.raises(SpecError, match=message):
        spec_of(document)


@pytest.mark.parametrize(
    "data, model, message",
    [
        (
            SEIZURE,
            {"family": "poisson", "offset": "np.log(Hourz)"},
            r"\[model\] offset 'np.log\(Hourz\)' does not fit the data: .*Hourz",
        ),
        (
            BETABLOCKER,
            {"family": "binomial"},
            r"\[model\] family = 'binomial' does not fit the data: .* set \[model\] trials",
        ),
        (
            {**BETABLOCKER, "formula": "Total ~ Treatment"},
            {"family": "binomial", "trials": "Deaths"},
            r"\[model\] family = 'binomial' with trials 'Deaths' does not fit the data: .*"
            r"between 0 and trials",
        ),
        (
            {**SEIZURE, "formula": "np.log(Seizures + 1) ~ Day"},
            {"family": "poisson"},
            r"\[model\] family = 'poisson' does not fit the data: .*counts",
        ),
    ],
    ids=["unknown-column", "binomial-without-trials", "more-successes", "poisson-not-counts"],
)
def test_family_data_errors_name_the_key_before_any_fit(tmp_path, data, model, message):
    path = tmp_path / "spec.toml"
    lines = ["[data]"] + [f"{k} = {v!r}" for k, v in data.items()]
    lines += ["[model]"] + [f"{k} = {v!r}" for k, v in model.items()]
    path.write_text("\n".join(lines).replace("'", '"') + "\n")
    with pytest.raises(SpecError, match=rf"spec.toml: {message}"):
        load_data(load_spec(path))


def test_shipped_specs_cover_the_families():
    specs = {p.stem: load_spec(p) for p in MODELS.glob("*.toml")}
    poisson, binomial, robust = specs["poisson"], specs["binomial"], specs["robust"]
    assert (poisson.model.family, poisson.model.offset) == ("poisson", "np.log(Hours)")
    assert (binomial.model.family, binomial.model.trials) == ("binomial", "Total")
    assert binomial.grouped and binomial.model.shared == "~ Treatment"
    assert robust.model.family == "student_t"
    frame = pd.read_csv(MODELS / "data" / "robust.csv")
    assert frame.outlier.sum() >= 10 and (frame.y[frame.outlier == 1].abs() > 8).all()
    # the data files are the peers' copies of flexmix's data sets
    peers = Path(__file__).resolve().parents[1] / "peers" / "families"
    pd.testing.assert_frame_equal(
        pd.read_csv(MODELS / "data" / "seizure.csv"), pd.read_csv(peers / "seizure_poisson.csv")
    )
