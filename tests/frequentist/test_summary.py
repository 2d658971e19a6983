"""MixtureOfRegressions.summary() and covariance_ (bayes_mlr.frequentist.summary, the estimator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.frequentist.summary import SUMMARY_COLUMNS


@pytest.fixture(scope="module", params=["component", "shared", "fixed"])
def model(request):
    data = simulate(
        400,
        weights=[0.6, 0.4],
        intercept=[-2.0, 2.0],
        coef=[[1.5, 0.5], [-1.0, 0.0]],
        sigma=[0.5, 0.5],
        random_state=3,
    )
    sigma = 0.5 if request.param == "fixed" else None
    return MixtureOfRegressions(2, variance=request.param, sigma=sigma, random_state=0).fit(
        pd.DataFrame(data.X, columns=["size", "age"]), data.y
    )


def test_summary_rows_columns_and_values(model):
    table = model.summary()
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    se = model.standard_errors_
    n_sigma = {"component": 2, "shared": 1, "fixed": 0}[model.variance]
    assert len(table) == 2 + 2 + 4 + n_sigma  # weights, intercepts, coefs, sigmas
    for name, attr in (("weights", "weights_"), ("intercept", "intercept_"), ("sigma", "sigma_")):
        part = table[table["parameter"] == name]
        comps = part["component"].fillna(0).astype(int).to_numpy()
        np.testing.assert_array_equal(part["estimate"], getattr(model, attr)[comps])
        np.testing.assert_array_equal(part["std_error"], se[name][comps])
    coef = table[table["parameter"] == "coef"]
    assert list(coef["feature"]) == ["size", "age", "size", "age"]
    np.testing.assert_array_equal(coef["estimate"], model.coef_.ravel())
    np.testing.assert_array_equal(coef["std_error"], se["coef"].ravel())
    # Wald quantities, against scipy (algebra: exact up to rounding)
    z = table["estimate"] / table["std_error"]
    np.testing.assert_allclose(table["z"], z, rtol=1e-14)
    np.testing.assert_allclose(table["p_value"], 2 * stats.norm.sf(np.abs(z)), rtol=1e-12)
    q = stats.norm.ppf(0.975)
    np.testing.assert_allclose(table["ci_lower"], table["estimate"] - q * table["std_error"])
    np.testing.assert_allclose(table["ci_upper"], table["estimate"] + q * table["std_error"])
    if model.variance == "shared":
        assert table[table["parameter"] == "sigma"]["component"].isna().all()


def test_summary_prints_a_readable_table(model):
    text = str(model.summary())
    assert text.startswith("Mixture of linear regressions")
    assert "log-likelihood" in text and "BIC" in text and "flags: none" in text
    best = model.result_.optima[0]
    assert f"optima reached: {len(model.result_.optima)}: {best.log_likelihood:.2f} (" in text
    header = [line for line in text.splitlines() if line.startswith("parameter")]
    assert header and header[0].split() == list(SUMMARY_COLUMNS)
    assert repr(model.summary()) == text


def test_summary_lists_the_distinct_optima():
    import pandas as pd

    frame = pd.read_csv(Path(__file__).parents[1] / "data" / "tonedata.csv")
    model = MixtureOfRegressions(2, random_state=3).fit(frame[["stretchratio"]], frame["tuned"])
    # the restarts of this seed reach three optima (tests/bayes/test_starts.py)
    assert model.summary().header["optima reached"] == (
        "3: 145.42 (2 runs), 141.20 (7 runs), 72.72 (1 run)"
    )


def test_summary_interval_coverage_is_a_setting(model):
    wide = model.summary(ci_prob=0.99)
    q = stats.norm.ppf(0.995)
    np.testing.assert_allclose(wide["ci_upper"], wide["estimate"] + q * wide["std_error"])
    with pytest.raises(ValueError, match="ci_prob"):
        model.summary(ci_prob=1.5)


def test_covariance_matches_the_standard_errors(model):
    cov, labels = model.covariance_, model.covariance_labels_
    assert cov.shape == (len(labels), len(labels)) and not cov.flags.writeable
    np.testing.assert_allclose(cov, cov.T, rtol=0, atol=1e-15)
    se = dict(zip(labels, np.sqrt(np.diag(cov)), strict=True))
    assert se["coef[1,0]"] == pytest.approx(model.standard_errors_["coef"][1, 0], rel=1e-12)
    assert se["weights[0]"] == pytest.approx(model.standard_errors_["weights"][0], rel=1e-12)
    assert labels[:3] == ["intercept[0]", "coef[0,0]", "coef[0,1]"]
    assert labels[-2:] == ["weights[0]", "weights[1]"]
    assert ("sigma" in labels) == (model.variance == "shared")


def test_standard_errors_are_read_only(model):
    for value in model.standard_errors_.values():
        assert not value.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            value[...] = 0.0


def test_nan_standard_errors_are_flagged():
    # Two identical columns: the information is singular along their difference.
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    z = rng.random(300) < 0.5
    y = np.where(z, 2 + x, -2 - x) + 0.3 * rng.normal(size=300)
    from bayes_mlr import SingularInformationWarning
    from bayes_mlr.workflow.io import em_summary

    model = MixtureOfRegressions(2, random_state=0).fit(np.column_stack([x, x]), y)
    with pytest.warns(SingularInformationWarning):
        table = model.summary()
    assert table["std_error"].isna().any()
    assert "without a standard error" in table.header["flags"]
    assert em_summary(model)["standard_errors_finite"] is False
