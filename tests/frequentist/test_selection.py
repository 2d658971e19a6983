"""select_n_components (flexmix's stepFlexmix) and bootstrap_lrt (mixtools' boot.comp)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bayes_mlr import (
    BootstrapLRT,
    MixtureOfRegressions,
    SpuriousFitWarning,
    bootstrap_lrt,
    select_n_components,
    simulate,
)
from bayes_mlr.frequentist.selection import COLUMNS
from tests.core.test_spurious import CO2, GNP, npreg


def two_lines(seed: int, n: int = 200):
    return simulate(
        n,
        weights=[0.5, 0.5],
        intercept=[-2.0, 2.0],
        coef=[[1.0], [-1.0]],
        sigma=[0.7, 0.7],
        random_state=seed,
    )


# -- select_n_components --------------------------------------------------------------------


def test_table_columns_and_values_match_the_fits():
    X, y = npreg()
    table = select_n_components(X, y, range(1, 4), random_state=0)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns)[:8] == [
        "n_components",
        "log_likelihood",
        "n_parameters",
        "bic",
        "aic",
        "icl",
        "converged",
        "spurious",
    ]
    assert list(table.columns) == list(COLUMNS)
    assert list(table["n_components"]) == [1, 2, 3]
    for k in (1, 2, 3):
        m = MixtureOfRegressions(k, random_state=0).fit(X, y)
        row = table.set_index("n_components").loc[k]
        assert row["log_likelihood"] == pytest.approx(m.log_likelihood_, rel=1e-12)
        assert row["bic"] == pytest.approx(m.bic(X, y), rel=1e-12)
        assert row["icl"] == pytest.approx(m.icl(X, y), rel=1e-12)
        # BIC by hand: K-1 weights, K (1 + 2) coefficients, K sigmas
        P = (k - 1) + 3 * k + k
        assert row["n_parameters"] == P
        assert row["bic"] == pytest.approx(-2 * row["log_likelihood"] + P * np.log(200), rel=1e-12)
        assert row["aic"] == pytest.approx(-2 * row["log_likelihood"] + 2 * P, rel=1e-12)
    # flexmix's stepFlexmix picks K = 2 on NPreg by BIC; so does AIC now (K = 4 before the guard)
    assert table.attrs == {"best_bic": 2, "best_aic": 2, "best_icl": 2}


def test_spurious_fits_are_flagged_and_not_chosen():
    X, y = np.array(GNP)[:, None], np.array(CO2)
    with pytest.warns(SpuriousFitWarning):
        table = select_n_components(X, y, range(1, 5), random_state=3, spurious="allow")
    row3 = table.set_index("n_components").loc[3]
    # the unguarded K = 3 fit has the lowest BIC (measured 155.89 against 157.20 for K = 2) ...
    assert row3["spurious"] and row3["bic"] < table.set_index("n_components").loc[2, "bic"]
    # ... but is flagged, and the choice is made among the regular fits
    assert table.attrs["best_bic"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpuriousFitWarning)
        guarded = select_n_components(X, y, range(1, 4), random_state=3)
    assert not guarded["spurious"].any() and guarded.attrs["best_bic"] == 2


def test_icl_is_bic_minus_twice_the_map_log_responsibilities():
    # Biernacki, Celeux & Govaert (2000), as flexmix's ICL(): an independent computation
    data = two_lines(1)
    table = select_n_components(data.X, data.y, [2], random_state=0)
    m = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)
    gamma = m.responsibilities(data.X, data.y)
    icl = m.bic(data.X, data.y) - 2 * np.log(gamma.max(axis=1)).sum()
    assert table.loc[0, "icl"] == pytest.approx(icl, rel=1e-12)
    # and not the entropy form, which is larger by 2 Σ_i (H_i + log max_j γ_ij) >= 0
    entropy = -(gamma * np.log(np.clip(gamma, 1e-300, None))).sum()
    assert table.loc[0, "bic"] + 2 * entropy > table.loc[0, "icl"]


def test_min_weight_rows_report_the_fitted_count():
    X, y = npreg()
    table = select_n_components(X, y, [5], random_state=0, min_weight=0.1)
    assert table.loc[0, "n_components"] == 5 and table.loc[0, "n_components_fit"] < 5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_components": []}, ValueError, "positive integers"),
        ({"n_components": [0, 1]}, ValueError, "positive integers"),
        ({"n_components": [2, 2]}, ValueError, "must not repeat"),
        ({"n_components": "12"}, TypeError, "iterable of positive integers"),
        ({"n_components": [1], "colour": "red"}, TypeError, "colour"),
    ],
)
def test_select_bad_arguments(kwargs, error, match):
    data = two_lines(0, 50)
    with pytest.raises(error, match=match):
        select_n_components(data.X, data.y, **kwargs)


# -- bootstrap_lrt ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_bootstrap_lrt_on_a_known_two_component_mixture(seed):
    data = two_lines(seed)
    one_two = bootstrap_lrt(data.X, data.y, (1, 2), n_boot=19, random_state=seed, n_jobs=1)
    assert isinstance(one_two, BootstrapLRT)
    assert one_two.null_statistics.shape == (19,)
    assert not one_two.null_statistics.flags.writeable
    # two well-separated lines: no null replicate comes near, so p is its floor 1 / (B + 1)
    assert one_two.p_value == pytest.approx(1 / 20)
    assert one_two.statistic > 10 * one_two.null_statistics.max()
    ll0, ll1 = one_two.log_likelihood
    assert one_two.statistic == pytest.approx(2 * (ll1 - ll0), rel=1e-12)
    # the true K against one more: measured p = 0.25 and 0.6 for these seeds
    two_three = bootstrap_lrt(data.X, data.y, (2, 3), n_boot=19, random_state=seed, n_jobs=1)
    assert two_three.p_value > 0.1
    assert "Bootstrap LRT of 2 against 3 components" in str(two_three)


def test_bootstrap_lrt_does_not_depend_on_the_worker_count():
    data = two_lines(2, 120)
    serial = bootstrap_lrt(data.X, data.y, (1, 2), n_boot=6, random_state=5, n_jobs=1)
    parallel = bootstrap_lrt(data.X, data.y, (1, 2), n_boot=6, random_state=5, n_jobs=2)
    np.testing.assert_array_equal(serial.null_statistics, parallel.null_statistics)
    assert serial.p_value == parallel.p_value and serial.statistic == parallel.statistic


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_components": (2, 2)}, ValueError, "k0 < k1"),
        ({"n_components": (0, 1)}, ValueError, "k0 < k1"),
        ({"n_components": 2}, TypeError, "pair of integers"),
        ({"n_boot": 0}, ValueError, "n_boot must be a positive integer"),
        ({"n_jobs": 0}, ValueError, "n_jobs must be a positive integer"),
        ({"sample_weight": np.ones(50)}, TypeError, "sample_weight"),
        ({"colour": "red"}, TypeError, "colour"),
    ],
)
def test_bootstrap_bad_arguments_fail_before_fitting(kwargs, error, match):
    data = two_lines(0, 50)
    with pytest.raises(error, match=match):
        bootstrap_lrt(data.X, data.y, **kwargs)
