"""Component families in the EM (bayes_mlr.core.components): Poisson with an offset, binomial
with trials, Student-t; against the truth, invariants and the guards. The side-by-side checks
with flexmix and mixtools are in tests/core/test_families_peers.py."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit

from bayes_mlr import (
    Binomial,
    MixtureOfRegressions,
    Poisson,
    SeparationWarning,
    StudentT,
    fit_structured,
)
from bayes_mlr.core.components import FAMILIES, resolve_family
from bayes_mlr.core.components.glm import GLMComponents, GLMStats
from bayes_mlr.core.structured import e_step_structured

SEEDS = (0, 1, 2)


def _counts(seed: int, n: int = 1500, *, groups: bool = False, concomitant: bool = False):
    """Two Poisson regressions with exposure: log μ = log h + (0.5 + x0, 2 − 0.5 x0) + 0.3 x1
    (the x1 slope the same in both, so it can be shared)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    h = rng.uniform(0.5, 2.0, n)
    w = rng.normal(size=n)
    g = np.repeat(np.arange(n // 5), 5) if groups else np.arange(n)
    G = g.max() + 1
    w = w[g] if not groups else np.repeat(rng.normal(size=G), 5)
    prob = expit(-0.4 + 1.2 * w) if concomitant else np.full(n, 0.4)
    z = (rng.random(G) < prob[np.searchsorted(g, np.arange(G))])[g]
    eta = np.where(z, 0.5 + 1.0 * X[:, 0], 2.0 - 0.5 * X[:, 0]) + 0.3 * X[:, 1] + np.log(h)
    y = rng.poisson(np.exp(eta)).astype(float)
    return X, y, np.log(h), g, w


def _proportions(seed: int, n: int = 1500):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 1))
    m = rng.integers(5, 30, n).astype(float)
    z = rng.random(n) < 0.4
    y = rng.binomial(m.astype(int), expit(np.where(z, -1.0 + 1.5 * X[:, 0], 1.0 - X[:, 0])))
    return X, y.astype(float), m


def _outliers(seed: int, n: int = 300, n_out: int = 12):
    """Two lines y = 1 + 2x and y = −1 − 2x (σ = 0.3) for x in [−2, 2], then ``n_out`` gross
    outliers with leverage: x in [1.5, 2], y ≈ −20."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 1))
    z = rng.random(n) < 0.5
    y = np.where(z, 1.0 + 2.0 * X[:, 0], -1.0 - 2.0 * X[:, 0]) + 0.3 * rng.normal(size=n)
    out = rng.choice(n, n_out, replace=False)
    X[out, 0] = rng.uniform(1.5, 2.0, n_out)
    y[out] = -20.0 + rng.normal(size=n_out)
    return X, y


def _within(est, se, truth, k=5.0):
    """|estimate − truth| ≤ k SE (a loose statistical check: 5 SE is exceeded with probability
    ~6e-7 per parameter under the asymptotic normal)."""
    np.testing.assert_array_less(np.abs(np.asarray(est) - truth), k * np.asarray(se))


# -- families: names, objects, errors ---------------------------------------------------------


def test_family_names_and_objects_resolve():
    for name, cls in FAMILIES.items():
        assert isinstance(resolve_family(name), cls)
        assert resolve_family(cls()) == cls()
        assert resolve_family(resolve_family(name).to_dict()) == cls()
    assert resolve_family({"name": "student_t", "df": 4.0}) == StudentT(df=4)
    with pytest.raises(ValueError, match="family must be one of"):
        MixtureOfRegressions(family="gamma").fit(np.ones((5, 1)), np.ones(5))
    with pytest.raises(TypeError, match="family must be one of"):
        MixtureOfRegressions(family=3).fit(np.ones((5, 1)), np.ones(5))
    with pytest.raises(ValueError, match="df must be"):
        StudentT(df=-1)


@pytest.mark.parametrize(
    ("family", "y", "kwargs", "match"),
    [
        ("poisson", [0, 1, -1, 2], {}, "non-negative integers"),
        ("poisson", [0, 1.5, 1, 2], {}, "non-integer"),
        ("binomial", [0, 1, 2, 1], {}, "pass trials="),
        ("binomial", [0, 1, 3, 1], {"trials": [2, 2, 2, 2]}, "between 0 and trials"),
        ("binomial", [0, 1, 1, 1], {"trials": [2, 0, 2, 2]}, "trials must be positive"),
        ("gaussian", [0.1, 1, 2, 1], {"offset": [0, 0, 0, 0]}, "subtract it from y"),
        ("poisson", [0, 1, 2, 1], {"trials": [2, 2, 2, 2]}, "binomial family only"),
        ("poisson", [0, 1, 2, 1], {"offset": [0, 0, np.inf, 0]}, "offset contains NaN"),
        ("poisson", [0, 1, 2, 1], {"offset": [0, 0, 0]}, r"offset must have shape \(4,\)"),
    ],
)
def test_bad_responses_are_refused_before_fitting(family, y, kwargs, match):
    X = np.arange(4.0)[:, None]
    with pytest.raises(ValueError, match=match):
        MixtureOfRegressions(1, family=family).fit(X, np.asarray(y, float), **kwargs)


def test_settings_a_family_has_no_use_for_are_refused():
    X, y, _, _, _ = _counts(0, 100)
    for kwargs in ({"variance": "shared"}, {"variance": "fixed", "sigma": 1.0}):
        with pytest.raises(ValueError, match="has no sigma"):
            MixtureOfRegressions(2, family="poisson", **kwargs).fit(X, y)
    with pytest.raises(ValueError, match="init='subsets'"):
        MixtureOfRegressions(2, family="binomial", init="subsets").fit(X, np.minimum(y, 1))
    with pytest.raises(ValueError, match="min_weight"):
        MixtureOfRegressions(2, family="poisson", min_weight=0.1).fit(X, y)


# -- Poisson ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_poisson_with_offset_recovers_the_truth(seed):
    X, y, off, _, _ = _counts(seed)
    model = MixtureOfRegressions(2, family="poisson", random_state=seed).fit(X, y, offset=off)
    se = model.standard_errors_
    _within(model.intercept_, se["intercept"], [0.5, 2.0])
    _within(model.coef_, se["coef"], [[1.0, 0.3], [-0.5, 0.3]])
    _within(model.weights_, se["weights"], [0.4, 0.6])
    assert not hasattr(model, "sigma_") and not hasattr(model, "df_")
    assert "sigma" not in se
    assert model.result_.variance == "none"
    assert model.result_.n_parameters == 2 * 3 + 1  # no sigma
    # predict: the mixture mean on the response scale, exposure included
    eta = X @ model.coef_.T + model.intercept_ + off[:, None]
    np.testing.assert_allclose(
        model.predict(X, offset=off), np.exp(eta) @ model.weights_, rtol=1e-12
    )
    with pytest.raises(ValueError, match="fitted with offset="):
        model.predict(X)


@pytest.mark.parametrize("seed", SEEDS)
def test_glm_log_likelihood_never_decreases(seed):
    """EM with one Newton step per iteration, halved when it overshoots: monotone up to
    rounding (1e-9 relative)."""
    X, y, off, g, w = _counts(seed, 600, groups=True)
    for fit in (
        fit_structured(X, y, 2, family="poisson", offset=off, random_state=seed, n_init=2),
        fit_structured(X, y, 2, family="poisson", groups=g, concomitant=w, shared=[1], n_init=2),
    ):
        trace = np.asarray(fit.log_likelihood_trace)
        assert np.diff(trace).min() >= -1e-9 * abs(trace[-1])


@pytest.mark.parametrize("seed", SEEDS)
def test_student_t_log_likelihood_never_decreases_and_converges_fast(seed):
    """The joint (β, σ, ν) step (halved if it would overshoot): monotone up to rounding, and
    converged in far fewer iterations than the u-based ν step needs (thousands here)."""
    X, y = _outliers(seed)
    fit = fit_structured(X, y, 2, family="student_t", random_state=seed, n_init=3)
    trace = np.asarray(fit.log_likelihood_trace)
    assert np.diff(trace).min() >= -1e-9 * abs(trace[-1])
    assert fit.converged and fit.n_iter < 200


def test_poisson_combines_with_concomitant_groups_and_shared():
    """The truth is recovered (x1's slope shared; mixing by w) over rows in groups of 5."""
    for seed in SEEDS:
        X, y, off, g, w = _counts(seed, 3000, groups=True, concomitant=True)
        model = MixtureOfRegressions(2, family="poisson", shared=[1], random_state=seed)
        model.fit(X, y, groups=g, concomitant=w[:, None], offset=off)
        se = model.standard_errors_
        assert model.coef_[0, 1] == model.coef_[1, 1]
        _within(model.coef_, se["coef"], [[1.0, 0.3], [-0.5, 0.3]])
        _within(model.intercept_, se["intercept"], [0.5, 2.0])
        # component 0 (mean ~ e^0.5) is z = True: log odds of component 1 = 0.4 − 1.2 w
        _within(model.concomitant_coef_[1], se["concomitant_coef"][1], [-1.2])
        assert model.result_.n_parameters == 1 + 2 * 2 + 2


def test_single_row_groups_equal_no_groups_and_dask_equals_memory():
    import dask.array as da

    X, y, off, _, _ = _counts(4, 900)
    plain = fit_structured(X, y, 2, family="poisson", offset=off, random_state=0, n_init=3)
    grouped = fit_structured(
        X, y, 2, family="poisson", offset=off, groups=np.arange(900), random_state=0, n_init=3
    )
    # the same EM on the same numbers: equal to rounding
    assert grouped.log_likelihood == pytest.approx(plain.log_likelihood, abs=1e-9)
    np.testing.assert_allclose(grouped.coef, plain.coef, atol=1e-8)
    chunks = 300
    lazy = MixtureOfRegressions(2, family="poisson", n_init=3, random_state=0).fit(
        da.from_array(X, chunks=(chunks, 2)),
        da.from_array(y, chunks=chunks),
        offset=da.from_array(off, chunks=chunks),
    )
    eager = MixtureOfRegressions(2, family="poisson", n_init=3, random_state=0).fit(
        X, y, offset=off
    )
    # both reach the same optimum (1e-6 of the log-likelihood: EM's stopping rule)
    assert lazy.log_likelihood_ == pytest.approx(eager.log_likelihood_, rel=1e-6)
    np.testing.assert_allclose(lazy.coef_, eager.coef_, atol=1e-4)
    np.testing.assert_allclose(
        lazy.standard_errors_["coef"], eager.standard_errors_["coef"], rtol=1e-3
    )


def test_collapsed_poisson_component_on_few_rows_is_spurious():
    """The trust rule for counts: a component whose mean collapses to 0 is spurious when it
    rests on few rows, and separation (not spurious) when large."""
    comp = GLMComponents(Poisson(), np.zeros(2, bool), np.zeros(2), intercept=True)
    nk = np.array([4.0, 196.0])
    stats = GLMStats(
        nk=nk,
        gram=np.zeros((2, 3, 3)),
        fitted=np.array([1e-9, 400.0]),
        observed=np.array([0.0, 400.0]),
        size=nk.copy(),
    )
    np.testing.assert_array_equal(comp.spurious(stats, None), [True, False])
    large = GLMStats(nk[::-1].copy(), stats.gram, stats.fitted, stats.observed, nk[::-1].copy())
    np.testing.assert_array_equal(comp.spurious(large, None), [False, False])
    np.testing.assert_array_equal(comp.separated(large, np.zeros((2, 2))), [True, False])


# -- binomial -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_binomial_with_trials_recovers_the_truth(seed):
    X, y, m = _proportions(seed)
    model = MixtureOfRegressions(2, family=Binomial(), random_state=seed).fit(X, y, trials=m)
    se = model.standard_errors_
    _within(model.intercept_, se["intercept"], [-1.0, 1.0])
    _within(model.coef_, se["coef"], [[1.5], [-1.0]])
    p = expit(X @ model.coef_.T + model.intercept_)
    np.testing.assert_allclose(model.predict(X, trials=m), (m[:, None] * p) @ model.weights_)
    # responsibilities by Bayes' rule sum to one; log-likelihood equals the fit's
    resp, ll, _ = e_step_structured(model.result_, X, y, trials=m)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    assert ll.sum() == pytest.approx(model.log_likelihood_, rel=1e-10)


def test_binomial_grouped_with_shared_effect():
    """The issue's example: binomial, grouped by centre, with a shared treatment effect."""
    rng = np.random.default_rng(3)
    n_centres = 60
    centre = np.repeat(np.arange(n_centres), 2)
    treated = np.tile([0.0, 1.0], n_centres)
    level = np.where(rng.random(n_centres) < 0.5, -2.5, -1.0)[centre]
    m = rng.integers(50, 300, centre.size).astype(float)
    y = rng.binomial(m.astype(int), expit(level - 0.3 * treated)).astype(float)
    model = MixtureOfRegressions(2, family="binomial", shared=[0], random_state=0)
    model.fit(treated[:, None], y, groups=centre, trials=m)
    se = model.standard_errors_
    _within(model.coef_[:, 0], se["coef"][:, 0], -0.3)
    _within(model.intercept_, se["intercept"], [-2.5, -1.0])
    assert model.n_groups_ == n_centres


def test_separation_within_a_component_is_flagged():
    """0/1 data that one x separates: the coefficients run off, and the fit says so."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 1))
    y = (X[:, 0] > 0).astype(float)
    with pytest.warns(SeparationWarning, match="separation"):
        model = MixtureOfRegressions(1, family="binomial", random_state=0).fit(X, y)
    assert model.result_.separated


# -- Student-t ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_student_t_recovers_lines_where_gaussian_em_fails(seed):
    """12 gross outliers among 300 rows: Gaussian EM is pulled off the lines (or spends a
    component on the outliers); t components recover both lines."""
    X, y = _outliers(seed)
    truth_int, truth_coef = np.array([-1.0, 1.0]), np.array([-2.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gauss = MixtureOfRegressions(2, random_state=seed).fit(X, y)
    robust = MixtureOfRegressions(2, family="student_t", random_state=seed).fit(X, y)
    se = robust.standard_errors_
    _within(robust.intercept_, se["intercept"], truth_int)
    _within(robust.coef_[:, 0], se["coef"][:, 0], truth_coef)
    assert robust.df_.min() < 5  # the outliers are heavy tails of (at least) one component
    best = robust.result_.optima[0]  # every optimum records its own degrees of freedom
    np.testing.assert_allclose(best.df, robust.df_)
    assert all(o.df is not None and o.df.shape == (2,) for o in robust.result_.optima)
    g_err = np.abs(np.sort(gauss.coef_[:, 0]) - truth_coef).max()
    assert g_err > 10 * np.abs(np.sort(robust.coef_[:, 0]) - truth_coef).max()
    assert robust.result_.n_parameters == 2 * 2 + 2 + 2 + 1


@pytest.mark.parametrize("seed", SEEDS)
def test_student_t_on_clean_data_stays_close_to_gaussian(seed):
    """Without outliers ν grows large and the t fit is the Gaussian one to within a small
    fraction of a standard error."""
    X, y = _outliers(seed, n_out=0)
    gauss = MixtureOfRegressions(2, random_state=seed).fit(X, y)
    robust = MixtureOfRegressions(2, family="student_t", random_state=seed).fit(X, y)
    se = gauss.standard_errors_
    _within(robust.coef_, se["coef"], gauss.coef_, k=0.5)
    _within(robust.intercept_, se["intercept"], gauss.intercept_, k=0.5)
    assert np.all(robust.df_ > 20)
    # the t likelihood nests the Gaussian (ν → ∞): never much below it
    assert robust.log_likelihood_ >= gauss.log_likelihood_ - 0.5


def test_student_t_with_fixed_df_and_shared_variance():
    X, y = _outliers(5)
    model = MixtureOfRegressions(2, family=StudentT(df=3), variance="shared", random_state=0)
    model.fit(X, y)
    np.testing.assert_array_equal(model.df_, [3.0, 3.0])
    assert model.sigma_[0] == model.sigma_[1]
    assert "df" in model.standard_errors_
    np.testing.assert_array_equal(model.standard_errors_["df"], [0.0, 0.0])  # fixed
    assert model.result_.n_parameters == 2 * 2 + 1 + 1
    table = model.summary()
    assert "df" not in set(table["parameter"])
    assert table.header["df"] == "fixed at 3"


# -- frequentist tools with families -----------------------------------------------------------


def test_select_n_components_takes_the_family_and_its_row_data():
    from bayes_mlr import select_n_components

    X, y, off, _, _ = _counts(0, 600)
    table = select_n_components(
        X, y, range(1, 4), family="poisson", offset=off, random_state=0, n_init=4
    )
    assert table.attrs["best_bic"] == 2
    # BIC counts K (p + 1) coefficients and K − 1 weights: no sigma
    assert list(table["n_parameters"]) == [3, 7, 11]


def test_bootstraps_refuse_what_they_would_get_wrong():
    from bayes_mlr import bootstrap_lrt

    X, y, off, _, _ = _counts(0, 200)
    model = MixtureOfRegressions(2, family="poisson", random_state=0).fit(X, y, offset=off)
    with pytest.raises(NotImplementedError, match="observed information"):
        model.bootstrap_standard_errors(n_boot=5)
    with pytest.raises(NotImplementedError, match="'poisson' responses"):
        bootstrap_lrt(X, y, (1, 2), n_boot=3, family="poisson")
