"""simulate(family=...): Poisson, binomial and Student-t draws, and Gaussian draws unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayes_mlr import simulate
from bayes_mlr.simulate import DEFAULT_TRIALS, default_truth


def test_gaussian_draws_are_those_of_the_first_version():
    # numbers printed by the version before families (commit dac1dfa), seed 3
    data = simulate(5, random_state=3)
    x0 = [2.04091912, -2.55566503, 0.41809885, -0.56776961, -0.45264929]
    np.testing.assert_allclose(data.X[:, 0], x0, atol=1e-8)
    y = [-0.84618757, -5.73198043, -2.72254486, 3.51763124, -3.98022457]
    np.testing.assert_allclose(data.y, y, atol=1e-8)
    grouped = simulate(6, n_groups=3, random_state=3)
    y = [-0.58895396, 6.63809706, -2.34092846, -3.68704641, -2.97376994, 3.22349468]
    np.testing.assert_allclose(grouped.y, y, atol=1e-8)
    np.testing.assert_array_equal(grouped.groups, [0, 0, 1, 1, 1, 2])
    assert data.family == "gaussian" and data.offset is None and data.trials is None
    assert set(data.truth) == {"weights", "intercept", "coef", "sigma"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poisson_with_exposure(seed):
    data = simulate(
        4000,
        intercept=[0.5, 2.0],
        coef=[[1.0], [-0.5]],
        family="poisson",
        exposure=(0.5, 2.0),
        random_state=seed,
    )
    assert data.family == "poisson" and data.trials is None
    assert "sigma" not in data.truth
    h = np.exp(data.offset)
    assert h.min() >= 0.5 and h.max() <= 2.0
    assert np.all(data.y == np.round(data.y)) and data.y.min() >= 0
    mean = np.exp(data.truth["intercept"][data.z] + data.X[:, 0] * data.truth["coef"][data.z, 0])
    # E[y / (h mu)] = 1; the sd of the mean of 4000 such ratios is below 0.02: 4 sd allowed
    assert np.mean(data.y / (h * mean)) == pytest.approx(1.0, abs=0.08)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binomial_trials(seed):
    data = simulate(3000, family="binomial", random_state=seed)
    low, high = DEFAULT_TRIALS
    assert data.trials.min() >= low and data.trials.max() <= high
    assert set(np.unique(data.trials)) == set(range(low, high + 1))
    assert np.all((data.y >= 0) & (data.y <= data.trials))
    eta = data.truth["intercept"][data.z] + data.X[:, 0] * data.truth["coef"][data.z, 0]
    expected = data.trials / (1 + np.exp(-eta))
    # the mean of y - m p over 3000 rows has sd below 0.05: 4 sd allowed
    assert np.mean(data.y - expected) == pytest.approx(0.0, abs=0.2)
    fixed = simulate(50, family="binomial", trials=12, random_state=seed)
    assert np.all(fixed.trials == 12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_student_t_residuals_have_the_t_distribution(seed):
    data = simulate(3000, sigma=0.5, family="student_t", df=3.0, random_state=seed)
    np.testing.assert_array_equal(data.truth["df"], [3.0, 3.0])
    eta = data.truth["intercept"][data.z] + data.X[:, 0] * data.truth["coef"][data.z, 0]
    residual = (data.y - eta) / 0.5
    assert stats.kstest(residual, stats.t(df=3.0).cdf).pvalue > 1e-3


def test_families_with_groups_and_concomitant_variables():
    data = simulate(
        300,
        n_groups=60,
        concomitant_coef=[[0.0], [1.0]],
        family="poisson",
        random_state=0,
    )
    assert data.offset is None
    for g in np.unique(data.groups):
        assert len(set(data.z[data.groups == g])) == 1


def test_default_truth_per_family():
    assert "sigma" not in default_truth(2, 1, "poisson")
    np.testing.assert_array_equal(default_truth(3, 1, "student_t")["df"], [4.0, 4.0, 4.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"family": "gamma"}, "family must be one of"),
        ({"family": "poisson", "sigma": 0.5}, "sigma applies to the gaussian and student_t"),
        ({"df": 3.0}, "df applies to the student_t family"),
        ({"family": "poisson", "trials": 5}, "trials applies to the binomial family"),
        ({"family": "binomial", "exposure": (1, 2)}, "exposure applies to the poisson family"),
        ({"family": "binomial", "trials": (5.5, 9)}, "whole numbers"),
        ({"family": "poisson", "exposure": (2, 1)}, "low <= high"),
        ({"family": "student_t", "df": -1.0}, "df must be positive"),
    ],
)
def test_invalid_family_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate(10, **kwargs)
