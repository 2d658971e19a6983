"""The spurious-optimum guard: the rule (bayes_mlr.core.spurious) and how fit_em uses it."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest

from bayes_mlr import MixtureOfRegressions, SpuriousFitWarning, fit_em
from bayes_mlr.core.em import _records
from bayes_mlr.core.spurious import spurious_components

# mixtools' CO2data (Hurn, Justel & Robert 2003): GNP and CO2 emission per capita, 28 countries.
# flexmix and the literature choose K = 2 for CO2 ~ GNP; the plain highest-likelihood K = 3 fit
# has a component of about 4 countries with sigma about 1% of the others'.
# fmt: off
GNP = [19.02, 3.67, 28.2, 40.94, 10.61, 20.09, 15.72, 28.11, 26.44, 4.74, 32.1, 23.24, 26.27,
       28.87, 11.46, 4.34, 17.11, 19.88, 25.94, 24.51, 3.23, 10.16, 14.35, 25.71, 44.35, 2.83,
       19.6, 2.41]
CO2 = [14.7, 3.9, 20.8, 9.0, 8.3, 16.0, 7.6, 7.4, 10.2, 10.8, 10.5, 10.0, 5.8, 10.2, 7.3, 5.5,
       9.0, 7.2, 8.8, 16.6, 8.8, 5.2, 5.9, 5.0, 5.5, 2.7, 9.3, 12.3]
# fmt: on


def npreg():
    """flexmix's NPreg (tests/data/README.md): X = [x, x²], y = yn."""
    d = np.loadtxt(Path(__file__).parents[1] / "data" / "npreg.csv", delimiter=",", skiprows=1)
    return np.column_stack([d[:, 0], d[:, 0] ** 2]), d[:, 1]


def npreg_like(seed: int, n: int = 200):
    """flexmix's NPreg design: a line and a parabola in x ~ U(0, 10), noise sd 3, half each."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    z = rng.random(n) < 0.5
    y = np.where(z, 5 * x, 15 + 10 * x - x**2) + 3 * rng.normal(size=n)
    return np.column_stack([x, x**2]), y


def line_plus_exact_points(seed: int):
    """40 noisy points on one line and 4 points exactly on another: with K = 2 the 4 points
    make a spurious component (the likelihood's highest optimum), the regular fit splits the
    noisy line."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, 40)
    y = 1.0 + 2.0 * x + rng.normal(size=40)
    x4 = np.array([-1.5, -0.5, 0.5, 1.5])
    return np.concatenate([x, x4]), np.concatenate([y, 3.0 - 1.0 * x4 + 1e-4 * rng.normal(size=4)])


# -- the rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nk", "sigma", "expected"),
    [
        ([4.0, 96.0], [0.02, 2.0], [True, False]),  # a handful of points, sigma 1%
        ([55.0, 95.0], [1e-4, 0.1], [False, False]),  # many points on one line: legitimate
        ([12.0, 88.0, 100.0], [0.78, 2.9, 3.5], [True, False, False]),  # 12 points, 0.27
        ([12.0, 88.0, 100.0], [1.5, 2.9, 3.5], [False, False, False]),  # noise in line
        ([6.9, 21.1], [0.81, 2.05], [False, False]),  # CO2data K=2: small, ratio 0.39
        ([50.0, 50.0], [0.01, 1.0], [False, False]),  # equal sizes: none is small
        ([100.0], [0.01], [False]),  # one component
    ],
)
def test_rule(nk, sigma, expected):
    got = spurious_components(np.array(nk), np.array(sigma), 2)
    np.testing.assert_array_equal(got, expected)


def test_rule_small_is_relative_to_the_average_size():
    # On 28 rows and K = 4 every component has fewer than 5 (q + 1) = 15 points; the ones
    # below n / K = 7 are small, and the 13.5-point component is the reference.
    got = spurious_components(np.array([3.9, 13.5, 4.3, 6.3]), np.array([0.06, 2.0, 0.05, 0.8]), 2)
    np.testing.assert_array_equal(got, [True, False, True, False])


@pytest.mark.parametrize("variance", ["shared", "fixed"])
def test_one_sigma_for_all_has_no_spurious_components(variance):
    assert not spurious_components(
        np.array([4.0, 96.0]), np.array([1.0, 1.0]), 2, variance=variance
    ).any()


def test_records_are_prefix_closed():
    # Whether start i is continued depends only on starts 0..i: the chosen set for the first m
    # starts is the chosen set for all of them, cut at m.
    rng = np.random.default_rng(0)
    for _ in range(200):
        keys = list(rng.normal(size=int(rng.integers(1, 30))))
        full = _records(keys, 2)
        for m in range(1, len(keys) + 1):
            assert _records(keys[:m], 2) == [i for i in full if i < m]
        best = int(np.argmin(keys))
        assert best in full  # the best start is always continued


# -- fit_em and the estimator --------------------------------------------------------------


def test_co2data_default_fit_is_regular_and_bic_picks_two():
    X, y = np.array(GNP)[:, None], np.array(CO2)
    bics, lls = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpuriousFitWarning)
        for seed in range(5):
            for K in (1, 2, 3):
                m = MixtureOfRegressions(K, random_state=seed).fit(X, y)
                assert not m.result_.spurious
                bics.setdefault(K, []).append(m.bic(X, y))
                lls.setdefault(K, []).append(m.log_likelihood_)
    # Measured: -77.95, -66.94, -65.78 for every seed; the spurious K = 3 optimum is -59.62.
    for K in (1, 2, 3):
        assert np.ptp(lls[K]) < 0.05
    assert lls[3][0] < -65.0
    assert min(bics, key=lambda K: bics[K][0]) == 2


def test_co2data_allow_returns_the_spurious_optimum_flagged():
    X, y = np.array(GNP)[:, None], np.array(CO2)
    with pytest.warns(SpuriousFitWarning, match="spurious component"):
        res = fit_em(X, y, 3, random_state=0, spurious="allow")
    assert res.spurious and res.spurious_components.sum() == 1
    j = int(np.flatnonzero(res.spurious_components)[0])
    # about 4 countries with sigma a few % of the others' (measured: 4.7 countries, sigma 0.048
    # against 0.81 and 1.94, log-likelihood -58.82; the rule needs less than 1/3)
    assert res.weights[j] * 28 < 5 and res.sigma[j] < 0.1 * np.delete(res.sigma, j).min()
    assert res.n_spurious_runs >= 1 and res.n_runs == 10
    regular = fit_em(X, y, 3, random_state=0)
    assert res.log_likelihood > regular.log_likelihood + 5  # why BIC was fooled


def test_k3_on_two_components_is_reproducible_over_seeds():
    # The target on flexmix's NPreg (200 rows, two components): the same
    # log-likelihood (within 0.05) for random_state 0..4. Before the guard it gave
    # -631.6 .. -637.4, every one spurious; now -638.43 each time (a regular split).
    X, y = npreg()
    lls = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpuriousFitWarning)
        for seed in range(5):
            res = fit_em(X, y, 3, random_state=seed)
            assert not res.spurious and not res.degenerate
            lls.append(res.log_likelihood)
    assert np.ptp(lls) < 0.05


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_more_starts_never_end_lower(seed):
    X, y = npreg() if seed == 0 else npreg_like(seed)
    lls = [fit_em(X, y, 3, n_init=n, random_state=seed).log_likelihood for n in (3, 5, 10, 20)]
    assert np.all(np.diff(lls) >= -1e-9 * abs(lls[0]))  # rounding only


@pytest.mark.parametrize("seed", [0, 2])
def test_every_run_spurious_warns_after_the_extra_rounds(seed):
    # Every start is drawn to the 4 exact points (measured: 48-49 of 50 runs spurious, the rest
    # degenerate, for these seeds): the best is returned, flagged, with a warning.
    X, y = line_plus_exact_points(seed)
    with pytest.warns(SpuriousFitWarning, match="All 50 EM runs ended"):
        res = fit_em(X, y, 2, random_state=seed)
    assert res.spurious and res.n_runs == 50 and res.n_spurious_runs >= 45
    j = int(np.flatnonzero(res.spurious_components)[0])
    assert res.weights[j] * 44 == pytest.approx(4, abs=0.5) and res.sigma[j] < 1e-3


def test_allow_and_avoid_on_npreg():
    X, y = npreg()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpuriousFitWarning)
        avoided = fit_em(X, y, 3, random_state=0)
    with pytest.warns(SpuriousFitWarning, match=r"of 10 EM run\(s\) ended"):
        allowed = fit_em(X, y, 3, random_state=0, spurious="allow")
    assert not avoided.spurious and avoided.n_spurious_runs >= 1
    assert allowed.spurious and allowed.log_likelihood > avoided.log_likelihood + 5
    j = int(np.flatnonzero(allowed.spurious_components)[0])
    assert allowed.weights[j] * 200 < 10  # about 7 points, sigma about 1% of the others'
    assert allowed.sigma[j] < 0.05 * np.delete(allowed.sigma, j).min()


def test_a_single_spurious_run_warns_and_is_flagged_everywhere(tmp_path):
    X, y = line_plus_exact_points(0)
    start = {"coef": [[2.0], [-1.0]], "intercept": [1.0, 3.0], "weights": [0.9, 0.1]}
    with pytest.warns(SpuriousFitWarning, match="The EM run ended with a spurious component"):
        model = MixtureOfRegressions(2, init=start).fit(X, y)
    assert model.result_.spurious and model.result_.n_runs == 1
    flags = model.result_.spurious_components
    assert flags.shape == (2,) and flags.sum() == 1 and not flags.flags.writeable
    # The component order is the canonical one: the flag follows its component.
    assert model.sigma_[flags][0] < 1e-2 and model.weights_[flags][0] * 44 < 5
    from bayes_mlr.workflow.io import em_summary

    summary = em_summary(model)
    assert summary["spurious"] is True
    np.testing.assert_array_equal(summary["spurious_components"], flags)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sizeable_component_with_a_tiny_sigma_is_kept(seed):
    # 60 of 150 points exactly on one line (a measurement exact for one class), 90 noisy:
    # legitimate, the highest optimum, kept without a warning.
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 4, 150)
    exact = np.arange(150) < 60
    y = np.where(exact, 2.0 + 0.0 * x + 1e-4 * rng.normal(size=150), x + 0.3 * rng.normal(size=150))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpuriousFitWarning)
        res = fit_em(x, y, 2, random_state=seed)
    assert not res.spurious
    j = int(np.argmin(res.sigma))
    assert res.weights[j] == pytest.approx(0.4, abs=0.02) and res.sigma[j] < 1e-3


def test_min_weight_removes_small_components_like_flexmix_minprior():
    X, y = npreg_like(0)
    model = MixtureOfRegressions(5, min_weight=0.1, random_state=0).fit(X, y)
    res = model.result_
    assert model.n_components_ == res.n_components == 5 - res.n_removed < 5
    assert model.weights_.min() >= 0.1 and model.weights_.sum() == pytest.approx(1.0, abs=1e-12)
    assert model.coef_.shape == (model.n_components_, 2)
    assert model.responsibilities(X, y).shape == (200, model.n_components_)
    se = model.standard_errors_
    assert se["coef"].shape == model.coef_.shape and np.all(np.isfinite(se["coef"]))
    # BIC counts the parameters of the components that remain
    from bayes_mlr.frequentist.information import n_parameters

    P = n_parameters(model.n_components_, 2, variance="component", fit_intercept=True)
    assert model.bic(X, y) == pytest.approx(-2 * model.log_likelihood_ + P * np.log(200), rel=1e-12)
    # without min_weight nothing is removed (K = 5 on 200 rows: spurious or degenerate runs)
    with pytest.warns(SpuriousFitWarning):
        assert MixtureOfRegressions(5, random_state=0).fit(X, y).n_components_ == 5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"spurious": "drop"}, ValueError, "spurious must be one of"),
        ({"spurious": None}, ValueError, "spurious must be one of"),
        ({"min_weight": 1.5}, ValueError, r"min_weight must lie in \(0, 1\)"),
        ({"min_weight": 0.0}, ValueError, r"min_weight must lie in \(0, 1\)"),
        ({"min_weight": "0.1"}, TypeError, "min_weight must be a float"),
        ({"min_weight": True}, TypeError, "min_weight must be a float"),
    ],
)
def test_bad_guard_settings_are_refused_before_fitting(kwargs, error, match):
    X, y = npreg_like(0)
    with pytest.raises(error, match=match):
        fit_em(X, y, 2, **kwargs)
    with pytest.raises(error, match=match):
        MixtureOfRegressions(2, **kwargs).fit(X, y)


def test_distinct_optima_are_kept_on_the_result(tmp_path):
    X, y = npreg()
    res = fit_em(X, y, 3, random_state=0)
    optima = res.optima
    assert sum(o.n_runs for o in optima) <= res.n_runs == 10  # degenerate runs left out
    first = optima[0]  # the returned fit, with every run that reached it
    assert first.log_likelihood == pytest.approx(res.log_likelihood, rel=1e-12)
    np.testing.assert_array_equal(first.coef, res.coef)
    assert not first.spurious and first.n_runs >= 2
    # the spurious optima that the guard passed over are there, flagged, with higher likelihood
    passed_over = [o for o in optima if o.spurious]
    assert 1 <= len(passed_over) <= res.n_spurious_runs
    assert max(o.log_likelihood for o in passed_over) > res.log_likelihood + 5
    # distinct: no two share both the log-likelihood and the parameters
    for a, b in itertools.combinations(optima, 2):
        assert (
            abs(a.log_likelihood - b.log_likelihood) > 1e-6 or np.abs(a.coef - b.coef).max() > 1e-3
        )
    # and they survive a save and load
    model = MixtureOfRegressions(3, random_state=0).fit(X, y)
    model.save(tmp_path / "m")
    back = MixtureOfRegressions.load(tmp_path / "m").result_.optima
    assert isinstance(back, tuple) and len(back) == len(model.result_.optima)
    for a, b in zip(back, model.result_.optima, strict=True):
        assert a.log_likelihood == b.log_likelihood and a.n_runs == b.n_runs
        np.testing.assert_array_equal(a.spurious_components, b.spurious_components)


def test_runs_at_one_optimum_are_counted_once():
    # Well-separated lines: every start reaches the same optimum.
    rng = np.random.default_rng(4)
    x = rng.normal(size=400)
    z = rng.random(400) < 0.5
    y = np.where(z, 3 + 2 * x, -3 - 2 * x) + 0.3 * rng.normal(size=400)
    res = fit_em(x, y, 2, random_state=0)
    degenerate = res.n_runs - res.optima[0].n_runs  # a subset start through exact points
    assert len(res.optima) == 1 and degenerate <= 1
