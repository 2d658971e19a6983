"""Every bad input raises a ValueError or TypeError that names the problem, before any work."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from bayes_mlr import MixtureOfRegressions, NotFittedError, fit_em

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 2))
y = rng.normal(size=40)


def with_value(arr, index, value):
    out = np.array(arr, dtype=float)
    out[index] = value
    return out


BAD_DATA = [
    # (id, X, y, sample_weight, exception, message)
    ("nan in X", with_value(X, (3, 1), np.nan), y, None, ValueError, "X contains 1 NaN"),
    ("inf in X", with_value(X, (0, 0), np.inf), y, None, ValueError, "X contains 0 NaN and 1 inf"),
    ("nan in y", X, with_value(y, 5, np.nan), None, ValueError, "y contains 1 NaN"),
    ("-inf in y", X, with_value(y, 5, -np.inf), None, ValueError, "y contains 0 NaN and 1 inf"),
    ("lengths differ", X, y[:-1], None, ValueError, "different lengths"),
    ("3-D X", X.reshape(40, 2, 1), y, None, ValueError, "X must be 2-D"),
    ("2-D y", X, np.column_stack([y, y]), None, ValueError, "y must be 1-D"),
    ("string X", np.array([["a", "b"]] * 40), y, None, TypeError, "X must be numeric"),
    ("object y", X, np.array(["1"] * 40, dtype=object), None, TypeError, "y must be numeric"),
    ("complex X", X + 1j, y, None, ValueError, "Complex data not supported"),
    ("empty", np.empty((0, 2)), np.empty(0), None, ValueError, "X is empty"),
    ("no columns", np.empty((40, 0)), y, None, ValueError, r"0 feature\(s\)"),
    ("None X", None, y, None, TypeError, "X must be an array-like"),
    ("None y", X, None, None, ValueError, "requires y to be passed"),
    ("sparse X", sparse.csr_matrix(X), y, None, TypeError, "sparse input is not supported"),
    (
        "object X of words",
        np.array([[1.0, "b"]] * 40, dtype=object),
        y,
        None,
        TypeError,
        "got strings",
    ),
    ("weight length", X, y, np.ones(39), ValueError, "sample_weight must have shape"),
    ("negative weight", X, y, with_value(np.ones(40), 2, -1), ValueError, "non-negative"),
    ("zero weights", X, y, np.zeros(40), ValueError, "sums to zero"),
    ("nan weight", X, y, with_value(np.ones(40), 2, np.nan), ValueError, "sample_weight contains"),
]


@pytest.mark.parametrize(
    ("X_", "y_", "sw", "exc", "msg"), [c[1:] for c in BAD_DATA], ids=[c[0] for c in BAD_DATA]
)
def test_bad_data_is_refused_by_fit_em_and_the_estimator(X_, y_, sw, exc, msg):
    with pytest.raises(exc, match=msg):
        fit_em(X_, y_, 2, sample_weight=sw)
    with pytest.raises(exc, match=msg):
        MixtureOfRegressions(2).fit(X_, y_, sample_weight=sw)


def test_non_numeric_dataframe_column_is_named():
    df = pd.DataFrame({"size": np.arange(40.0), "colour": ["red"] * 40})
    with pytest.raises(TypeError, match="column 'colour'"):
        MixtureOfRegressions(2).fit(df, y)


BAD_SETTINGS = [
    ({"n_components": 0}, ValueError, "n_components must be an integer >= 1"),
    ({"n_components": 2.5}, TypeError, "n_components must be an integer"),
    ({"n_components": 41}, ValueError, "larger than the number of observations"),
    ({"n_components": 12}, ValueError, "Too few rows for the coefficients"),
    ({"variance": "diagonal"}, ValueError, "variance must be one of"),
    ({"variance": "fixed"}, ValueError, "pass sigma="),
    ({"variance": "fixed", "sigma": 0.0}, ValueError, "sigma must be a positive"),
    ({"variance": "fixed", "sigma": -1.0}, ValueError, "sigma must be a positive"),
    ({"variance": "fixed", "sigma": "1"}, TypeError, "sigma must be a positive float"),
    ({"sigma": 1.0}, ValueError, 'only used with variance="fixed"'),
    ({"fit_intercept": "yes"}, TypeError, "fit_intercept must be True or False"),
    ({"init": "kmeans"}, ValueError, "init must be one of"),
    ({"init": 3}, TypeError, "init must be a string"),
    ({"init": {"coef": np.zeros((3, 2))}}, ValueError, r"init\['coef'\] must have shape"),
    ({"init": {"weights": [0.5, 0.5]}}, ValueError, "need 'coef'"),
    ({"init": {"coef": np.zeros((2, 2)), "beta": 1}}, ValueError, "unknown key"),
    ({"n_init": 0}, ValueError, "n_init must be an integer >= 1"),
    ({"max_iter": 0}, ValueError, "max_iter must be an integer >= 1"),
    ({"tol": -1e-3}, ValueError, "tol must be a finite float >= 0"),
    ({"tol": np.nan}, ValueError, "tol must be a finite float >= 0"),
]


@pytest.mark.parametrize(
    ("kwargs", "exc", "msg"), BAD_SETTINGS, ids=[str(c[0]) for c in BAD_SETTINGS]
)
def test_bad_settings_are_refused(kwargs, exc, msg):
    kwargs = dict(kwargs)
    K = kwargs.pop("n_components", 2)
    with pytest.raises(exc, match=msg):
        fit_em(X, y, K, **kwargs)
    with pytest.raises(exc, match=msg):
        MixtureOfRegressions(K, **kwargs).fit(X, y)


def test_object_array_of_numbers_is_accepted():
    # e.g. DataFrame.values of a mixed frame: numbers held as Python objects
    model = MixtureOfRegressions(1).fit(X.astype(object), y)
    np.testing.assert_allclose(model.coef_, MixtureOfRegressions(1).fit(X, y).coef_)


def test_one_dimensional_X_is_one_feature():
    model = MixtureOfRegressions(1).fit(X[:, 0], y)
    assert model.coef_.shape == (1, 1)


def test_predict_before_fit_and_with_wrong_width():
    model = MixtureOfRegressions(2, random_state=0)
    for call in (
        lambda: model.predict(X),
        lambda: model.responsibilities(X, y),
        lambda: model.standard_errors_,
        lambda: model.bic(X, y),
    ):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()
    model.fit(X, y)
    with pytest.raises(
        ValueError, match="X has 3 features, but MixtureOfRegressions is expecting 2 features"
    ):
        model.predict(np.ones((5, 3)))
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        model.predict(with_value(X, (0, 0), np.nan))


def test_renamed_columns_at_predict_are_refused():
    df = pd.DataFrame(X, columns=["a", "b"])
    model = MixtureOfRegressions(2, random_state=0).fit(df, y)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(df.rename(columns={"a": "c"}))


def test_failed_fit_leaves_a_fitted_model_untouched():
    model = MixtureOfRegressions(2, random_state=0).fit(X, y)
    coef = model.coef_.copy()
    with pytest.raises(ValueError):
        model.fit(with_value(X, (0, 0), np.nan), y)
    np.testing.assert_array_equal(model.coef_, coef)
