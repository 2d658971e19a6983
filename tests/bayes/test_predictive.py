"""bayes_mlr.bayes.predictive: posterior predictive draws at new x and predictive intervals.

The posteriors here are synthetic (draws around EM, or every draw at EM), so the algebra can
be checked exactly; tests/bayes/test_model.py samples real ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from bayes_mlr import MixtureOfRegressions, posterior_predictive, predictive_interval, simulate
from tests import _bayes_helpers as h
from tests.conftest import TRUTH_2, make_data
from tests.workflow.test_plots import fake_posterior


@pytest.fixture(scope="module")
def model():
    data = make_data(400, TRUTH_2, seed=2)
    return MixtureOfRegressions(2, random_state=0).fit(pd.DataFrame(data.X, columns=["x"]), data.y)


def _point_mass(model, chains=2, draws=3000):
    """A posterior whose every draw is the EM estimate."""
    post = fake_posterior(model, chains=chains, draws=draws)
    for name in ("weights", "intercept", "coef", "sigma"):
        da = post["posterior"][name]
        value = np.broadcast_to(getattr(model, f"{name}_"), da.shape[:2] + da.shape[2:])
        post["posterior"][name] = da.copy(data=np.array(value))
    return post


def test_dims_and_component_means(model):
    post = fake_posterior(model, chains=2, draws=50)
    X_new = pd.DataFrame({"x": [-1.0, 0.0, 2.5]})
    pred = posterior_predictive(model, post, X_new, random_seed=0)
    assert isinstance(pred, xr.Dataset)
    assert pred["y"].dims == ("chain", "draw", "obs") and pred["y"].shape == (2, 50, 3)
    assert pred["component_mean"].dims == ("chain", "draw", "component", "obs")
    # the component means are intercept + coef . x of each draw, exactly (algebra)
    p = post["posterior"]
    expected = p["intercept"].values[..., None] + p["coef"].values[..., 0, None] * X_new["x"].values
    np.testing.assert_allclose(pred["component_mean"].values, expected, rtol=1e-12)


def test_a_point_mass_posterior_predicts_the_em_mixture(model):
    X_new = pd.DataFrame({"x": [-1.0, 0.5, 2.0]})
    pred = posterior_predictive(model, _point_mass(model), X_new, random_seed=1)
    # the mixture mean of every draw is model.predict, to rounding
    np.testing.assert_allclose(
        pred["mean"].values, np.broadcast_to(model.predict(X_new), (2, 3000, 3)), rtol=1e-12
    )
    # y at each x follows the EM mixture: compare the empirical CDF with the exact one
    # (Kolmogorov-Smirnov on 6000 draws; a wrong component choice or sigma fails at p << 1e-6)
    mu = model.predict_components(X_new)  # (n, K)
    for i in range(3):
        draws = pred["y"].values[..., i].ravel()

        def cdf(t, i=i):
            return sum(
                w * stats.norm.cdf(t, m, s)
                for w, m, s in zip(model.weights_, mu[i], model.sigma_, strict=True)
            )

        assert stats.kstest(draws, cdf).pvalue > 1e-3


@pytest.mark.parametrize("seed", range(3))
def test_predictive_intervals_cover_new_data(seed):
    truth = TRUTH_2
    data = simulate(400, **truth, random_state=seed)
    model = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)
    fresh = simulate(2000, **truth, random_state=100 + seed)
    pred = posterior_predictive(model, fake_posterior(model, draws=400), fresh.X, random_seed=seed)
    table = predictive_interval(pred, prob=0.9)
    inside = (fresh.y >= table["lower"].to_numpy()) & (fresh.y <= table["upper"].to_numpy())
    # 90% intervals on 2000 fresh rows: the binomial sd of the coverage is 0.7%, the interval
    # itself has Monte Carlo error from 800 draws; 0.86-0.94 is a loose band
    assert 0.86 < inside.mean() < 0.94
    assert set(table.columns) == {"mean", "sd", "lower", "upper", "mean_lower", "mean_upper"}
    assert (table["mean_lower"] <= table["mean_upper"]).all()
    assert (table["upper"] - table["lower"] > table["mean_upper"] - table["mean_lower"]).all()


def test_shared_and_fixed_variance(model):
    data = make_data(300, TRUTH_2, seed=4)
    X_new = np.array([[0.0], [1.0]])
    for kwargs in ({"variance": "shared"}, {"variance": "fixed", "sigma": 0.5}):
        fitted = MixtureOfRegressions(2, random_state=0, **kwargs).fit(data.X, data.y)
        pred = posterior_predictive(fitted, fake_posterior(fitted), X_new, random_seed=0)
        assert pred["y"].shape == (2, 60, 2) and np.all(np.isfinite(pred["y"].values))


def test_formula_model_takes_a_raw_frame():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.uniform(-2, 2, 300)})
    frame["y"] = np.where(rng.random(300) < 0.5, 1 + frame.x**2, -1 - frame.x) + rng.normal(
        0, 0.2, 300
    )
    model = MixtureOfRegressions.from_formula("y ~ x + I(x**2)", frame, 2, random_state=0)
    pred = posterior_predictive(model, _point_mass(model, draws=10), pd.DataFrame({"x": [1.0]}))
    np.testing.assert_allclose(pred["mean"].values, model.predict(pd.DataFrame({"x": [1.0]}))[0])


def test_bad_input_is_refused(model):
    post = fake_posterior(model)
    with pytest.raises(ValueError, match="feature"):
        posterior_predictive(model, post, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="'posterior' group"):
        posterior_predictive(model, xr.DataTree(), np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"prob must be in \(0, 1\)"):
        predictive_interval(posterior_predictive(model, post, np.zeros((2, 1))), prob=1.5)


# --------------------------------------------------------------------------------------------
# Structured models: per-row prior weights (concomitant), one component per group
# --------------------------------------------------------------------------------------------


def test_concomitant_model_predicts_with_each_rows_weights():
    model = h.structured_fitted("concomitant")
    frame = h.structured_frame(1).iloc[:6]
    pred = posterior_predictive(model, h.structured_point_mass(model), frame, random_seed=1)
    # every draw at EM: the mixture mean is EM's predict (per-row weights), to rounding
    np.testing.assert_allclose(
        pred["mean"].values, np.broadcast_to(model.predict(frame), (2, 2000, 6)), rtol=1e-12
    )
    # the component drawn follows each row's own weights: the share of draws nearer
    # component 1's line matches mixing_weights (2 x 2000 draws, sd of a share < 0.012, and
    # the two lines are 6 sigma apart at these x: 0.05 is a loose margin)
    means = model.predict_components(frame)  # (n, K)
    nearer_1 = np.abs(pred["y"].values - means[:, 1]) < np.abs(pred["y"].values - means[:, 0])
    np.testing.assert_allclose(
        nearer_1.mean(axis=(0, 1)), model.mixing_weights(frame)[:, 1], atol=0.05
    )
    with pytest.raises(ValueError, match="concomitant"):
        posterior_predictive(model, h.structured_point_mass(model), frame[["x"]].to_numpy())


def test_rows_of_a_new_group_share_one_component(model):
    plain = model
    model = h.structured_fitted("grouped")
    X_new = pd.DataFrame({"x": [0.0, 0.0, 0.0, 0.0]})
    groups = [7, 7, 8, 8]
    pred = posterior_predictive(
        model, h.structured_point_mass(model), X_new, groups=groups, random_seed=2
    )
    means = model.predict_components(X_new)
    component = np.abs(pred["y"].values - means[:, 1]) < np.abs(pred["y"].values - means[:, 0])
    # at x = 0 the lines are 3.1 apart and sigma <= 0.48: a draw is misread with probability
    # about 0.1%; rows of one group agree in every draw, rows of two groups half the time
    assert (component[..., 0] == component[..., 1]).mean() > 0.99
    assert 0.4 < (component[..., 0] == component[..., 2]).mean() < 0.6
    with pytest.raises(ValueError, match="groups and concomitant apply"):
        posterior_predictive(plain, _point_mass(plain), X_new, groups=groups)
