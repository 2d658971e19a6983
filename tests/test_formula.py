"""Model formulas: MixtureOfRegressions.from_formula and prediction on raw data frames."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.formula import FormulaError
from tests.conftest import TRUTH_2

# ---------------------------------------------------------------------------------------------
# MixtureOfRegressions.from_formula (the estimator side)
# ---------------------------------------------------------------------------------------------


def frame(n=600, seed=0):
    """TRUTH_2 data as a frame with a numeric x, a three-level group and a positive z."""
    data = simulate(n, **TRUTH_2, random_state=seed)
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": data.X[:, 0],
            "g": rng.choice(["a", "b", "c"], size=n),
            "z": rng.uniform(1.0, 3.0, size=n),
            "y": data.y,
        }
    )


def test_from_formula_equals_fit_on_the_same_columns():
    df = frame()
    model = MixtureOfRegressions.from_formula("y ~ x", df, random_state=0)
    plain = MixtureOfRegressions(2, random_state=0).fit(df[["x"]], df["y"])
    np.testing.assert_array_equal(model.coef_, plain.coef_)
    np.testing.assert_array_equal(model.intercept_, plain.intercept_)
    assert model.formula_ == "y ~ x" and model.response_ == "y"
    assert model.feature_names_in_.tolist() == ["x"] and model.fit_intercept
    np.testing.assert_array_equal(model.predict(df), plain.predict(df[["x"]]))


def test_constructor_arguments_pass_through():
    df = frame()
    model = MixtureOfRegressions.from_formula(
        "y ~ x", df, n_components=3, variance="shared", n_init=2, random_state=1
    )
    assert (model.n_components, model.variance, model.n_init) == (3, "shared", 2)
    assert np.ptp(model.sigma_) == 0


def test_categorical_and_transforms_encode_new_data_like_the_fit():
    df = frame()
    model = MixtureOfRegressions.from_formula(
        "y ~ x + C(g) + center(np.log(z))", df, random_state=0
    )
    names = model.feature_names_in_.tolist()
    assert names == ["x", "C(g)[T.b]", "C(g)[T.c]", "center(np.log(z))"]
    new = pd.DataFrame({"x": [0.5, -1.0], "g": ["c", "a"], "z": [2.0, 1.5]})
    # Encoded by hand: reference level "a" dropped; centred with the *training* mean.
    centre = np.log(df["z"]).mean()
    design = np.array(
        [[0.5, 0.0, 1.0, np.log(2.0) - centre], [-1.0, 0.0, 0.0, np.log(1.5) - centre]]
    )
    np.testing.assert_allclose(model.predict(new), model.predict(design), rtol=1e-12)
    # Column order and extra columns of the raw frame do not matter.
    shuffled = new.assign(extra=1.0)[["extra", "z", "g", "x"]]
    np.testing.assert_allclose(model.predict(shuffled), model.predict(design), rtol=1e-12)


def test_methods_with_y_take_raw_frames():
    df = frame()
    model = MixtureOfRegressions.from_formula("y ~ x + C(g)", df, random_state=0)
    design = model._fit_X
    np.testing.assert_allclose(
        model.responsibilities(df, df["y"]), model.responsibilities(design, df["y"]), rtol=1e-12
    )
    assert model.log_likelihood(df, df["y"]) == pytest.approx(model.log_likelihood_, rel=1e-12)
    assert model.bic(df, df["y"]) == pytest.approx(model.bic(design, df["y"]), rel=1e-12)
    assert model.score(df, df["y"]) == pytest.approx(model.score(design, df["y"]), rel=1e-12)


def test_an_encoded_design_frame_passes_unchanged():
    df = frame()
    model = MixtureOfRegressions.from_formula("y ~ x + C(g)", df, random_state=0)
    encoded = pd.DataFrame(model._fit_X, columns=model.feature_names_in_)
    np.testing.assert_array_equal(model.predict(encoded), model.predict(df))


def test_formula_without_intercept():
    df = frame()
    model = MixtureOfRegressions.from_formula("y ~ x - 1", df, random_state=0)
    assert not model.fit_intercept and np.all(model.intercept_ == 0)
    with pytest.raises(TypeError, match="'y ~ x - 1'"):
        MixtureOfRegressions.from_formula("y ~ x", df, fit_intercept=False)


def test_response_transform_is_recorded():
    df = frame().assign(y=lambda d: np.exp(d["y"] / 5))
    model = MixtureOfRegressions.from_formula("np.log(y) ~ x", df, random_state=0)
    assert model.response_ == "np.log(y)"
    np.testing.assert_allclose(model._fit_y, np.log(df["y"]), rtol=1e-12)


def test_new_data_that_cannot_be_encoded_is_refused():
    df = frame()
    model = MixtureOfRegressions.from_formula("y ~ x + C(g)", df, random_state=0)
    with pytest.raises(FormulaError, match=r"could not be encoded.*columns in X: x"):
        model.predict(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(FormulaError, match="could not be encoded"):
        model.predict(pd.DataFrame({"x": [1.0], "g": ["unseen"]}))
    with pytest.raises(ValueError, match="NaN"):  # missing values are not silently dropped
        model.predict(pd.DataFrame({"x": [1.0, np.nan], "g": ["a", "b"]}))


def test_sample_weight_as_column_and_with_dropped_rows():
    df = frame(300)
    df["w"] = np.random.default_rng(0).integers(1, 4, size=300).astype(float)
    by_name = MixtureOfRegressions.from_formula("y ~ x", df, sample_weight="w", random_state=0)
    by_array = MixtureOfRegressions.from_formula(
        "y ~ x", df, sample_weight=df["w"].to_numpy(), random_state=0
    )
    np.testing.assert_array_equal(by_name.coef_, by_array.coef_)
    assert by_name.result_.n_obs == df["w"].sum()
    holes = df.copy()
    holes.loc[[3, 50, 200], "x"] = np.nan
    dropped = MixtureOfRegressions.from_formula(
        "y ~ x", holes, sample_weight="w", na_action="drop", random_state=0
    )
    assert dropped.result_.n_obs == df["w"].drop(index=[3, 50, 200]).sum()
    with pytest.raises(ValueError, match="not a column"):
        MixtureOfRegressions.from_formula("y ~ x", df, sample_weight="weights")


def test_bad_formula_is_a_formula_error():
    with pytest.raises(FormulaError):
        MixtureOfRegressions.from_formula("y ~ nope", frame())


def test_plain_refit_and_clone_forget_the_formula():
    sklearn_base = pytest.importorskip("sklearn.base")
    df = frame()
    model = MixtureOfRegressions.from_formula("y ~ x + C(g)", df, random_state=0)
    copy = sklearn_base.clone(model)
    assert not hasattr(copy, "formula_") and copy.get_params() == model.get_params()
    model.fit(df[["x"]], df["y"])
    assert not hasattr(model, "formula_") and not hasattr(model, "response_")
    with pytest.raises(ValueError, match="feature names"):
        model.predict(df)  # raw columns x, g, z, y are no longer encoded


def test_pickle_keeps_the_formula():
    df = frame()
    model = MixtureOfRegressions.from_formula("y ~ x + C(g) + center(z)", df, random_state=0)
    again = pickle.loads(pickle.dumps(model))
    assert again.formula_ == model.formula_
    np.testing.assert_array_equal(again.predict(df), model.predict(df))


# ---------------------------------------------------------------------------------------------
# y taken from the formula's response term
# ---------------------------------------------------------------------------------------------

_Y_METHODS = (
    "responsibilities",
    "predict_component",
    "score_samples",
    "log_likelihood",
    "bic",
    "aic",
    "icl",
)


def log_frame(seed=0):
    return frame(seed=seed).assign(y=lambda d: np.exp(d["y"] / 5))


@pytest.mark.parametrize("seed", [0, 1])
def test_methods_take_y_from_the_response_term(seed):
    df = log_frame(seed)
    model = MixtureOfRegressions.from_formula("np.log(y) ~ x + C(g)", df, random_state=seed)
    design, log_y = model._fit_X, np.log(df["y"]).to_numpy()
    for name in _Y_METHODS:
        method = getattr(model, name)
        # the same numbers through the same code: equal to rounding
        np.testing.assert_allclose(method(df), method(design, log_y), rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(method(df, log_y), method(design, log_y), rtol=1e-12)
    assert model.log_likelihood(df) == pytest.approx(model.log_likelihood_, rel=1e-10)


def test_y_on_the_wrong_scale_is_refused():
    df = log_frame()
    model = MixtureOfRegressions.from_formula("np.log(y) ~ x", df, random_state=0)
    for name in _Y_METHODS:
        with pytest.raises(ValueError, match=r"does not match the response 'np\.log\(y\)'"):
            getattr(model, name)(df, df["y"])
    # one value off is caught too, and named by its row
    off = np.log(df["y"].to_numpy())
    off[7] += 1e-3
    with pytest.raises(ValueError, match=r"1 of 600 values differ \(row 7"):
        model.bic(df, off)


def test_y_is_required_where_it_cannot_be_computed():
    df = log_frame()
    model = MixtureOfRegressions.from_formula("np.log(y) ~ x", df, random_state=0)
    with pytest.raises(ValueError, match=r"y is required: X lacks the columns of the response"):
        model.bic(df[["x"]])
    # without the response column, y is taken as given
    log_y = np.log(df["y"])
    assert model.bic(df[["x"]], log_y) == pytest.approx(model.bic(df), rel=1e-12)
    plain = MixtureOfRegressions(2, random_state=0).fit(df[["x"]], log_y)
    with pytest.raises(ValueError, match="y is required"):
        plain.responsibilities(df[["x"]])


def test_response_term_survives_save_and_load(tmp_path):
    df = log_frame()
    for i, formula in enumerate(["np.log(y) ~ x + C(g)", "np.log(y) ~ x - 1"]):
        model = MixtureOfRegressions.from_formula(formula, df, random_state=0)
        loaded = MixtureOfRegressions.load(model.save(tmp_path / str(i)))
        assert loaded.bic(df) == pytest.approx(model.bic(df), rel=1e-12)
        with pytest.raises(ValueError, match="does not match the response"):
            loaded.bic(df, df["y"])


# ---------------------------------------------------------------------------------------------
# Formulas refused with a clear message before any computation
# ---------------------------------------------------------------------------------------------


def test_grouping_bar_groups_the_rows():
    df = frame()
    df["g"] = np.arange(len(df)) // 3
    model = MixtureOfRegressions.from_formula("y ~ x | g", df, random_state=0)
    assert model.n_groups_ == df["g"].nunique() and model.formula_ == "y ~ x | g"
    # a '|' inside a call is Python's "or", not grouping
    df["a"], df["b"] = df["x"] > 0, df["z"] > 2
    model = MixtureOfRegressions.from_formula("y ~ x + I(a | b)", df, random_state=0)
    assert model.feature_names_in_.tolist() == ["x", "I(a | b)"]


def test_r_power_inside_I_is_refused():
    df = frame()
    df["k"] = np.arange(len(df)) % 5  # integers: x ^ 2 would silently be a bitwise xor
    for formula in ("y ~ I(x^2)", "y ~ x + I(k ^ 2)", "y ~ I((x + 1)^2)"):
        with pytest.raises(FormulaError, match=r"bitwise xor.*I\(x\*\*2\)"):
            MixtureOfRegressions.from_formula(formula, df)
    model = MixtureOfRegressions.from_formula("y ~ I(x**2) + (x + z)^2", df, random_state=0)
    assert model.feature_names_in_.tolist() == ["I(x ** 2)", "x", "z", "x:z"]


def stray_csv(tmp_path, bad):
    """A CSV of 200 rows whose x column holds the values ``bad`` (row -> text) among numbers."""
    df = frame(200).drop(columns="z")
    x = df["x"].map(repr).astype(object)
    for row, text in bad.items():
        x[row] = text
    df["x"] = x
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    return pd.read_csv(path)


def test_stray_text_in_a_numeric_column_is_refused(tmp_path):
    df = stray_csv(tmp_path, {17: "?"})
    assert not pd.api.types.is_numeric_dtype(df["x"])  # pandas reads the column as text
    with pytest.raises(
        FormulaError,
        match=r"column 'x'.*1 of its 200 values is not a number: "
        r"'\?' \(row 17\)",
    ):
        MixtureOfRegressions.from_formula("y ~ x + g", df)
    many = stray_csv(tmp_path, dict.fromkeys(range(3, 30, 3), "unknown"))
    with pytest.raises(
        FormulaError,
        match=r"9 of its 200 values are not numbers: 'unknown' \(row 3\)"
        r", 'unknown' \(row 6\).*\(row 15\) and 4 more",
    ):
        MixtureOfRegressions.from_formula("y ~ x", many)
    # a column the formula does not use is not checked
    model = MixtureOfRegressions.from_formula("y ~ g", df, random_state=0)
    assert model.feature_names_in_.tolist() == ["g[T.b]", "g[T.c]"]


def test_text_columns_that_are_mostly_text_stay_categorical():
    df = frame(300)
    df["g"] = df["g"].where(np.arange(300) % 3 != 0, "7")  # a third numeric-looking codes
    model = MixtureOfRegressions.from_formula("y ~ x + g", df, random_state=0)
    assert model.feature_names_in_.tolist() == ["x", "g[T.a]", "g[T.b]", "g[T.c]"]  # "7" first


# --- grouping, concomitant and shared formulas ------------------------------------------


def test_split_groups_only_at_top_level():
    from bayes_mlr.formula import split_groups

    assert split_groups("y ~ x + I(x**2) | id") == ("y ~ x + I(x**2)", "id")
    assert split_groups("y ~ I(a | b)") == ("y ~ I(a | b)", None)
    with pytest.raises(FormulaError, match="one column name"):
        split_groups("y ~ x | a + b")
    with pytest.raises(FormulaError, match="only one grouping"):
        split_groups("y ~ x | a | b")


def test_structured_design_columns():
    import pandas as pd

    from bayes_mlr.formula import structured_design

    frame = pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            "w": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0],
            "z": ["a", "a", "b", "b", "c", "c"],
            "id": [1, 1, 2, 2, 3, 3],
        }
    )
    d = structured_design("y ~ x | id", frame, concomitant="~ z", shared="~ w")
    assert d.feature_names == ["x", "w"] and d.shared == ["w"] and d.group == "id"
    assert list(d.concomitant.columns) == ["z[T.b]", "z[T.c]"]
    np.testing.assert_array_equal(d.groups, frame["id"])
    shared_one = structured_design("y ~ 0 + x", frame, shared="~ 1")
    assert shared_one.shared == ["intercept"] and shared_one.fit_intercept
    with pytest.raises(FormulaError, match="grouping column 'g' is not in the data"):
        structured_design("y ~ x | g", frame)
    with pytest.raises(FormulaError, match="one-sided formula"):
        structured_design("y ~ x", frame, concomitant="z")
