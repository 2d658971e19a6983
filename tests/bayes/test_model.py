"""bayes_mlr.bayes.model: the PyMC model, the EM start, sampling back-ends and alignment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats
from scipy.special import logsumexp

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.bayes import model as bayes
from bayes_mlr.bayes.diagnostics import compare_em_posterior, diagnose
from bayes_mlr.core.labels import LabelSwitchingWarning
from tests import _bayes_helpers as h

TRUTH_3 = {
    "weights": np.array([0.5, 0.3, 0.2]),
    "intercept": np.array([-3.0, 0.0, 3.0]),
    "coef": np.array([[2.0, -1.0], [-1.0, 0.5], [0.5, 2.0]]),
    "sigma": np.array([0.6, 0.4, 0.8]),
}
TRUTH_NO_INTERCEPT = {**h.TRUTH, "intercept": np.zeros(2), "coef": np.array([[2.0], [-2.0]])}


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _em_point(model, pm_model):
    """The EM estimate on the unconstrained scale, keyed by value-variable name."""
    start = bayes.em_initial_point(model, pm_model)
    return bayes._value_vars_and_point(pm_model, start)[1]


def _scipy_log_prior(model, X, y, sample_weight=None) -> float:
    """The default log prior at the EM estimate, computed independently with scipy.stats."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    K = model.n_components
    m_y = np.average(y, weights=w)
    s_y = np.sqrt(np.average((y - m_y) ** 2, weights=w))
    m_x = np.average(X, axis=0, weights=w)
    s_x = np.sqrt(np.average((X - m_x) ** 2, axis=0, weights=w))
    total = 0.0
    if K > 1:
        total += stats.dirichlet(np.full(K, 2.0)).logpdf(model.weights_)
    if model.fit_intercept:
        sd = 2.5 * s_y * np.sqrt(1 + np.sum((m_x / s_x) ** 2))
        total += stats.norm(m_y, sd).logpdf(model.intercept_).sum()
    total += stats.norm(0.0, 2.5 * s_y / s_x).logpdf(model.coef_).sum()
    if model.variance == "component":
        total += stats.halfnorm(scale=s_y).logpdf(model.sigma_).sum()
    elif model.variance == "shared":
        total += stats.halfnorm(scale=s_y).logpdf(model.sigma_[0])
    return float(total)


def _fit(n_components=2, variance="component", fit_intercept=True, sample_weight=None, **kw):
    # Without an intercept the model only fits data whose regressions pass through 0.
    d = h.data() if fit_intercept else simulate(h.N, **TRUTH_NO_INTERCEPT, random_state=4)
    model = h.estimator(n_components, variance, fit_intercept, **kw)
    return model.fit(d.X, d.y, sample_weight=sample_weight), d.X, d.y


def _replication_weights(n: int) -> np.ndarray:
    return np.random.default_rng(3).integers(1, 4, size=n).astype(float)


# --------------------------------------------------------------------------------------------
# Import hygiene
# --------------------------------------------------------------------------------------------


def test_import_bayes_mlr_labels_diagnostics_stays_light():
    code = (
        "import sys, bayes_mlr, bayes_mlr.core.labels, bayes_mlr.bayes.diagnostics\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'arviz_stats') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------
# The model: log-density at the EM point
# --------------------------------------------------------------------------------------------

CONFIGS = [
    pytest.param({}, id="component-variance"),
    pytest.param({"variance": "shared"}, id="shared-variance"),
    pytest.param({"variance": "fixed"}, id="fixed-variance"),  # sigma is data, no prior
    pytest.param({"fit_intercept": False}, id="no-intercept"),
    pytest.param({"n_components": 1}, id="one-component"),  # no weights variable
    pytest.param({"sample_weight": "replication"}, id="sample-weights"),
]


def _fit_config(config):
    """(fitted estimator, X, y, sample weights or None) for one of CONFIGS."""
    config = dict(config)
    sw = _replication_weights(h.N) if config.pop("sample_weight", None) else None
    return *_fit(sample_weight=sw, **config), sw


def _configured(config):
    """:func:`_fit_config` and the PyMC model built from it."""
    model, X, y, sw = _fit_config(config)
    return model, X, y, sw, bayes.build_model(model)


@pytest.mark.parametrize("config", CONFIGS)
def test_logp_at_em_is_loglik_plus_log_prior(config):
    model, X, y, sw, pm_model = _configured(config)
    point = _em_point(model, pm_model)
    logp = pm_model.compile_logp(jacobian=False)(point)
    expected = model.log_likelihood_ + _scipy_log_prior(model, X, y, sw)
    assert logp == pytest.approx(expected, rel=1e-10, abs=1e-8)
    # The observed term alone, pointwise, is EM's (sample-weighted) log-density.
    pointwise = pm_model.compile_logp(vars=[pm_model["y"]], jacobian=False, sum=False)(point)[0]
    weight = np.ones(h.N) if sw is None else sw
    np.testing.assert_allclose(pointwise, weight * model.score_samples(X, y), rtol=1e-10)
    assert pointwise.sum() == pytest.approx(model.log_likelihood_, rel=1e-10)


@pytest.mark.parametrize("config", CONFIGS)
def test_compiled_gradient_matches_finite_differences(config):
    """The gradient NUTS uses (fused likelihood Op, C linker) is that of the log-density."""
    model, *_, pm_model = _configured(config)
    start = bayes.em_initial_point(model, pm_model)
    free, point = bayes._value_vars_and_point(pm_model, start)
    _, func = bayes._logp_dlogp(pm_model, free, point)
    x = pm.blocking.DictToArrayBijection.map(point).data
    x = x + np.random.default_rng(0).normal(scale=0.05, size=x.size)  # a little away from EM
    grad = func(x)[1]
    step = 1e-6
    numeric = np.array(
        [(func(x + step * e)[0] - func(x - step * e)[0]) / (2 * step) for e in np.eye(x.size)]
    )
    # Central differences of a log-density of size ~1e3: errors ~1e-7 relative.
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4)


def test_logp_three_components_pandas_features():
    d = simulate(400, **TRUTH_3, random_state=2)
    X = pd.DataFrame(d.X, columns=["age", "dose"])
    model = MixtureOfRegressions(3, random_state=0).fit(X, d.y)
    pm_model = bayes.build_model(model)
    assert list(pm_model.coords["feature"]) == ["age", "dose"]
    logp = pm_model.compile_logp(jacobian=False)(_em_point(model, pm_model))
    expected = model.log_likelihood_ + _scipy_log_prior(model, d.X, d.y)
    assert logp == pytest.approx(expected, rel=1e-10)


def test_replication_weights_equal_duplicated_rows():
    d = h.data()
    sw = _replication_weights(h.N)
    model = MixtureOfRegressions(2, random_state=0).fit(d.X, d.y, sample_weight=sw)
    weighted = bayes.build_model(model)
    reps = sw.astype(int)
    duplicated = bayes.build_model(model, np.repeat(d.X, reps, axis=0), np.repeat(d.y, reps))
    point = _em_point(model, weighted)
    # The default priors are scaled by weighted moments, which equal the duplicated ones.
    a = weighted.compile_logp(jacobian=False)(point)
    b = duplicated.compile_logp(jacobian=False)(point)
    assert a == pytest.approx(b, rel=1e-11)


# --------------------------------------------------------------------------------------------
# The model: structure, names, priors
# --------------------------------------------------------------------------------------------


def test_variables_dims_and_data():
    model = h.fitted()
    pm_model = bayes.build_model(model)
    assert {rv.name for rv in pm_model.free_RVs} == {"weights", "intercept", "coef", "sigma"}
    dims = pm_model.named_vars_to_dims
    assert dims["weights"] == ("component",)
    assert dims["intercept"] == ("component",)
    assert dims["coef"] == ("component", "feature")
    assert dims["sigma"] == ("component",)
    assert dims["y"] == ("obs",)
    assert dims["X"] == ("obs", "feature")
    assert list(pm_model.coords["feature"]) == ["x0"]
    assert len(pm_model.coords["obs"]) == h.N
    assert {d.name for d in pm_model.data_vars} >= {"X", "y_observed"}


def test_fixed_variance_has_no_sigma_variable():
    model = h.fitted(variance="fixed")
    pm_model = bayes.build_model(model)
    assert "sigma" not in {rv.name for rv in pm_model.free_RVs}
    np.testing.assert_array_equal(pm_model["sigma"].get_value(), [0.6, 0.6])


def test_shared_variance_has_one_sigma():
    pm_model = bayes.build_model(h.fitted(variance="shared"))
    assert pm_model["sigma"].ndim == 0


def test_priors_can_be_overridden():
    model = h.fitted()
    default = bayes.build_model(model)
    tight = bayes.build_model(model, priors={"coef": {"sigma": 0.1}, "weights": {"alpha": 1}})
    point = _em_point(model, default)
    delta = tight.compile_logp(jacobian=False)(point) - default.compile_logp(jacobian=False)(point)
    sd_default = bayes.default_priors(model._fit_X, model._fit_y, 2)["coef"]["sigma"]
    expected = (
        stats.norm(0, 0.1).logpdf(model.coef_).sum()
        - stats.norm(0, sd_default).logpdf(model.coef_).sum()
        + stats.dirichlet([1.0, 1.0]).logpdf(model.weights_)
        - stats.dirichlet([2.0, 2.0]).logpdf(model.weights_)
    )
    assert delta == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(
    ("priors", "match"),
    [
        ({"slope": {"sigma": 1.0}}, "unknown prior 'slope'"),
        ({"coef": {"scale": 1.0}}, "unknown argument 'scale' of the coef prior"),
    ],
)
def test_unknown_priors_are_rejected(priors, match):
    with pytest.raises(ValueError, match=match):
        bayes.build_model(h.fitted(), priors=priors)


def test_build_model_needs_both_X_and_y():
    with pytest.raises(ValueError, match="both X and y"):
        bayes.build_model(h.fitted(), X=h.data().X)


# --------------------------------------------------------------------------------------------
# Sampler selection: errors before any computation
# --------------------------------------------------------------------------------------------


@pytest.fixture
def no_computation(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("computation started before the sampler was checked")

    monkeypatch.setattr(bayes, "_build", fail)
    monkeypatch.setattr(bayes, "_problem", fail)


def test_unknown_sampler_is_a_value_error(no_computation):
    with pytest.raises(ValueError, match="unknown sampler 'stan'"):
        bayes.sample_posterior(h.fitted(), sampler="stan")


def test_missing_sampler_is_an_import_error(no_computation, monkeypatch):
    monkeypatch.setitem(bayes._SAMPLER_MODULES, "nutpie", "nutpie_is_not_installed_here")
    with pytest.raises(ImportError, match="sampler 'nutpie' needs"):
        bayes.sample_posterior(h.fitted(), sampler="nutpie")


def test_auto_takes_pymc_and_its_cores_by_size():
    problem = bayes._problem(h.fitted())  # n = 300, K = 2
    long_run = 4 * 2000 * 20_000 * 3
    assert long_run >= bayes._PARALLEL_WORK
    big = bayes._Problem(**{**problem.__dict__, "X": np.zeros((20_000, 1)), "n_components": 3})
    # The fused likelihood is numpy code: PyMC's processes beat nutpie's threads at any size.
    assert bayes._auto_sampler(problem, 4, 2000) == "pymc"
    assert bayes._auto_sampler(big, 4, 2000) == "pymc"
    # PyMC's sampler runs short jobs in one process, long ones on every core.
    assert bayes._default_cores("pymc", problem, 4, 2000) == 1
    assert bayes._default_cores("pymc", big, 4, 2000) == min(4, os.cpu_count() or 1)


def test_unfitted_estimator_is_rejected():
    with pytest.raises(ValueError, match="not fitted"):
        bayes.sample_posterior(MixtureOfRegressions(2), sampler="pymc")


# --------------------------------------------------------------------------------------------
# Every back-end: starts at EM, passes diagnostics, EM inside the posterior's bulk
# --------------------------------------------------------------------------------------------


def _captured_per_chain(run, chains):
    """The captured starts grouped by chain (the spies record one or two per chain)."""
    per = len(run.starts) // chains
    assert per * chains == len(run.starts), len(run.starts)
    return [run.starts[c * per : (c + 1) * per] for c in range(chains)]


def _assert_start(captured, expected, names):
    # Each captured start is the expected point exactly, not jittered, value by value: each
    # number belongs to its own parameter.
    if isinstance(captured, dict):
        assert set(captured) == set(names)
        for name in names:
            np.testing.assert_allclose(captured[name], expected[name], rtol=1e-12, atol=1e-12)
    else:  # in the model's value-variable order
        flat = np.concatenate([np.ravel(v) for v in captured])
        flat_expected = np.concatenate([np.ravel(expected[name]) for name in names])
        np.testing.assert_allclose(flat, flat_expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sampler", h.SAMPLERS)
def test_every_chain_starts_exactly_at_em(sampler):
    run = h.posterior_run(sampler, "em")
    pm_model = bayes.build_model(h.fitted())
    expected = _em_point(h.fitted(), pm_model)
    names = [v.name for v in pm_model.value_vars]
    assert run.starts, f"no initial points were captured for {sampler}"
    for start in run.starts:
        _assert_start(start, expected, names)
    assert list(run.idata["modes"]["chain_start"].values) == ["EM estimate"] * h.CHAINS


@pytest.mark.parametrize("sampler", h.SAMPLERS)
def test_dispersed_chains_start_exactly_at_their_starts(sampler):
    from bayes_mlr.bayes.starts import chain_starts

    run = h.posterior_run(sampler)
    model = h.fitted()
    pm_model = bayes.build_model(model)
    names = [v.name for v in pm_model.value_vars]
    # the starts are a function of the seed: computed again, they are the ones sampled from
    expected, _ = chain_starts(model, h.CHAINS, random_state=h.SEED)
    recorded = list(run.idata["modes"]["chain_start"].values)
    assert recorded == [s.source for s in expected]
    assert recorded[0] == "EM estimate"
    assert all(s.startswith(("EM optimum", "over-dispersed")) for s in recorded[1:])
    for c, captured in enumerate(_captured_per_chain(run, h.CHAINS)):
        point = bayes._value_vars_and_point(
            pm_model, bayes._initial_point(expected[c].values, pm_model)
        )[1]
        for start in captured:
            _assert_start(start, point, names)
    # chain 0 is EM exactly; an over-dispersed start is away from EM
    em = _em_point(model, pm_model)
    _assert_start(_captured_per_chain(run, h.CHAINS)[0][0], em, names)
    assert not np.allclose(expected[-1].values["coef"], model.coef_)


@pytest.mark.parametrize("sampler", h.SAMPLERS)
def test_sampler_diagnostics_pass_and_em_is_in_the_bulk(sampler):
    idata = h.posterior(sampler)
    report = diagnose(idata)
    assert report.ok, str(report)
    assert idata["posterior"].attrs["sampler"] == sampler
    recorded = json.loads(idata["posterior"].attrs["priors"])
    assert recorded["source"] == "default"
    assert {r["parameter"] for r in recorded["rows"]} == {"weights", "intercept", "coef", "sigma"}
    # Chains started at EM never needed relabelling.
    assert idata["posterior"].attrs["relabelled_fraction"] == 0.0
    table = compare_em_posterior(h.fitted(), idata)
    assert table["em_in_hdi"].all(), table
    # The MLE sits in the bulk: within 3 posterior sd of the mean (n=300, weak priors).
    assert (table["shift_sd"].abs() < 3).all(), table
    # EM standard errors and posterior sd agree to within 30% at this n.
    np.testing.assert_allclose(table["sd"], table["em_se"], rtol=0.3)


@pytest.mark.parametrize("sampler", h.SAMPLERS)
def test_groups_and_pointwise_log_likelihood(sampler):
    idata = h.posterior(sampler)
    for group in ("posterior", "sample_stats", "observed_data", "constant_data", "em"):
        assert group in idata.children, group
    post = idata["posterior"]
    assert post["coef"].dims == ("chain", "draw", "component", "feature")
    assert post["weights"].dims == ("chain", "draw", "component")
    assert post.sizes["chain"] == h.CHAINS and post.sizes["draw"] == h.DRAWS
    ll = idata["log_likelihood"]["y"]
    assert ll.dims == ("chain", "draw", "obs")
    # Recompute draw (1, 7) with numpy.
    d = h.data()
    sel = {"chain": 1, "draw": 7}
    w = post["weights"].isel(sel).to_numpy()
    b = post["intercept"].isel(sel).to_numpy()
    B = post["coef"].isel(sel).to_numpy()
    s = post["sigma"].isel(sel).to_numpy()
    mu = b + d.X @ B.T
    expected = logsumexp(np.log(w) + stats.norm(mu, s).logpdf(d.y[:, None]), axis=1)
    np.testing.assert_allclose(ll.isel(sel).to_numpy(), expected, rtol=1e-10)
    em = idata["em"]
    np.testing.assert_array_equal(em["coef"].to_numpy(), h.fitted().coef_)
    np.testing.assert_array_equal(em["sigma_se"].to_numpy(), h.fitted().standard_errors_["sigma"])
    assert idata["sample_stats"]["relabelled"].dims == ("chain", "draw")


def test_per_draw_log_density_and_log_likelihood_are_the_models():
    """sample_stats' log_density (with the Jacobian) and log_likelihood at a draw equal the PyMC
    model's, and the log_likelihood is the sum of the pointwise group."""
    idata = h.posterior("pymc")
    post, stats_ = idata["posterior"], idata["sample_stats"]
    pm_model = bayes.build_model(h.fitted())
    logp = pm_model.compile_logp(jacobian=True)
    loglik = pm_model.compile_logp(vars=pm_model.observed_RVs)
    for sel in ({"chain": 0, "draw": 3}, {"chain": 2, "draw": 211}):
        values = {
            k: post[k].isel(sel).to_numpy() for k in ("weights", "intercept", "coef", "sigma")
        }
        point = bayes._value_vars_and_point(pm_model, values)[1]
        np.testing.assert_allclose(stats_["log_density"].isel(sel), logp(point), rtol=1e-10)
        np.testing.assert_allclose(stats_["log_likelihood"].isel(sel), loglik(point), rtol=1e-10)
    np.testing.assert_allclose(
        stats_["log_likelihood"], idata["log_likelihood"]["y"].sum("obs"), rtol=1e-12
    )


def test_loo_runs_on_the_posterior():
    loo = azs.loo(h.posterior("pymc"), var_name="y")
    assert np.isfinite(loo.elpd)
    # elpd_loo sits a little below the in-sample log-likelihood (p_loo > 0, about 6 params).
    assert loo.elpd < h.fitted().log_likelihood_
    assert 2 < loo.p < 12


# --------------------------------------------------------------------------------------------
# Alignment of a real run whose chains start in different labellings
# --------------------------------------------------------------------------------------------


def test_chains_started_in_swapped_labellings_come_out_aligned():
    model = h.fitted()
    pm_model = bayes.build_model(model)
    start = bayes.em_initial_point(model, pm_model)
    swapped = {name: value[::-1] for name, value in start.items()}
    with pm_model:
        step = pm.NUTS()
        idata = pm.sample(
            draws=300,
            tune=300,
            chains=4,
            step=step,
            initvals=[start, swapped, start, swapped],
            random_seed=7,
            progressbar=False,
            compute_convergence_checks=False,
        )
    before = azs.rhat(idata["posterior"].to_dataset()[["intercept"]])["intercept"]
    assert float(before.max()) > 1.5  # the test is meaningful: chains disagree
    em = bayes._em_values(model)
    aligned = bayes.align_posterior(idata, em, bayes._em_scales(model, em)[0])
    assert aligned["posterior"].attrs["relabelled_fraction"] == pytest.approx(0.5, abs=0.01)
    after = azs.rhat(aligned["posterior"].to_dataset()[["weights", "intercept", "coef", "sigma"]])
    # 4 x 300 draws: measured 1.002 and 1.011 on two EM fits of these data (sampling noise at
    # this length); an alignment that failed leaves R-hat above 1.5, as before
    assert max(float(after[v].max()) for v in after.data_vars) <= 1.02
    relabelled = aligned["sample_stats"]["relabelled"].mean("draw").to_numpy()
    np.testing.assert_allclose(relabelled, [0, 1, 0, 1], atol=0.01)


def test_synthetic_permutations_are_undone_exactly():
    idata = h.posterior("pymc").copy(deep=True)
    original = idata["posterior"].to_dataset()
    rng = np.random.default_rng(5)
    flip = rng.random((h.CHAINS, h.DRAWS)) < 0.3
    scrambled = original.copy(deep=True)
    for name in ("weights", "intercept", "coef", "sigma"):
        values = scrambled[name].to_numpy()
        values[flip] = values[flip][:, ::-1]
        scrambled[name] = scrambled[name].copy(data=values)
    idata["posterior"] = scrambled
    em = bayes._em_values(h.fitted())
    out = bayes.align_posterior(idata, em, bayes._em_scales(h.fitted(), em)[0])
    for name in ("weights", "intercept", "coef", "sigma"):
        np.testing.assert_array_equal(out["posterior"][name].to_numpy(), original[name].to_numpy())
    assert out["posterior"].attrs["relabelled_fraction"] == pytest.approx(flip.mean())


# --------------------------------------------------------------------------------------------
# Other model settings end to end (short runs: plumbing, shapes and rows)
# --------------------------------------------------------------------------------------------

SETTINGS = [
    # (estimator settings, expected rows of compare_em_posterior)
    pytest.param({"variance": "shared"}, 2 + 2 + 2 + 1, id="shared"),  # one sigma row
    pytest.param({"variance": "fixed"}, 2 + 2 + 2, id="fixed"),  # no sigma rows
    pytest.param({"fit_intercept": False}, 2 + 2 + 2, id="no-intercept"),
    pytest.param({"n_components": 1}, 1 + 1 + 1, id="one-component"),  # no weights rows
    pytest.param({"sample_weight": "replication"}, 8, id="sample-weights"),
]


@pytest.mark.parametrize(("config", "n_rows"), SETTINGS)
def test_other_settings_end_to_end(config, n_rows):
    model, _, y, _ = _fit_config(config)
    idata = bayes.sample_posterior(
        model,
        draws=100,
        tune=100,
        chains=2,
        sampler="pymc",
        random_seed=3,
        progressbar=False,
        posterior_predictive=True,
    )
    table = compare_em_posterior(model, idata)
    assert len(table) == n_rows
    # EM inside every 94% HDI, the posterior mean within 0.5 sd of it (measured: all inside,
    # |shift| <= 0.27 sd with these short runs; the MC error of a mean is about 0.1 sd).
    assert table["em_in_hdi"].all(), table
    assert (table["shift_sd"].abs() < 0.5).all(), table
    pp = idata["posterior_predictive"]["y"]
    assert pp.dims == ("chain", "draw", "obs")
    # Predictive draws have the data's spread (measured 0.999-1.011 over these settings).
    assert 0.95 < float(pp.std()) / float(np.std(y)) < 1.05
    # Near the MLE the log-likelihood of posterior draws averages about l_hat - P / 2 (half a
    # chi-square with P degrees of freedom): measured gaps -1.5 .. -3.9 for P = 3 .. 7, i.e.
    # within 0.5 of -P / 2; its draw-to-draw sd is sqrt(P / 2) < 2, so 1.5 is a loose margin.
    from bayes_mlr.frequentist.information import n_parameters

    P = n_parameters(
        model.n_components_,
        model.n_features_in_,
        variance=model.variance,
        fit_intercept=model.fit_intercept,
    )
    ll = idata["log_likelihood"]["y"].sum("obs").mean().item()
    assert ll - model.log_likelihood_ == pytest.approx(-P / 2, abs=1.5)


def test_many_relabelled_draws_warn(monkeypatch):
    # Half of the draws come back in the swapped labelling: 50% relabelled, far above the
    # threshold, so the warning must fire (the threshold is not forced).
    original = bayes.align_posterior

    def swap_half(idata, reference, scale, **kwargs):
        post = idata["posterior"]
        for name in ("weights", "intercept", "coef", "sigma"):
            if name in post:
                da = post[name]
                half = da.isel(draw=slice(0, da.sizes["draw"] // 2))
                flipped = half.isel(component=slice(None, None, -1)).to_numpy()
                values = da.to_numpy().copy()
                values[:, : da.sizes["draw"] // 2] = flipped
                post[name] = da.copy(data=values)
        return original(idata, reference, scale, **kwargs)

    monkeypatch.setattr(bayes, "align_posterior", swap_half)
    with pytest.warns(LabelSwitchingWarning, match="relabelled"):
        idata = bayes.sample_posterior(
            h.fitted(), draws=20, tune=20, chains=1, sampler="pymc", progressbar=False
        )
    assert idata["posterior"].attrs["relabelled_fraction"] == pytest.approx(0.5, abs=0.01)


def test_no_warnings_from_a_clean_run():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bayes.sample_posterior(
            h.fitted(), draws=20, tune=20, chains=2, sampler="pymc", progressbar=False
        )


def test_an_extended_model_can_be_sampled():
    model = h.fitted()
    pm_model = bayes.build_model(model)
    with pm_model:
        # A user-defined quantity per component (relabelled with the rest) and a scalar one.
        pm.Deterministic(
            "slope_gap", pm_model["coef"][:, 0] - pm_model["coef"][::-1, 0], dims="component"
        )
        pm.Deterministic("intercept_gap", pm_model["intercept"][1] - pm_model["intercept"][0])
    idata = bayes.sample_posterior(
        model,
        draws=100,
        tune=100,
        chains=2,
        sampler="pymc",
        random_seed=2,
        progressbar=False,
        pm_model=pm_model,
    )
    post = idata["posterior"]
    assert post["slope_gap"].dims == ("chain", "draw", "component")
    assert json.loads(post.attrs["priors"])["source"] == "custom"
    assert "slope_gap" in json.loads(post.attrs["priors"])["model"]
    gap = float(post["intercept_gap"].mean())
    assert gap == pytest.approx(model.intercept_[1] - model.intercept_[0], abs=0.2)
    with pytest.raises(ValueError, match="pass priors to build_model"):
        bayes.sample_posterior(model, pm_model=pm_model, priors={"coef": {"sigma": 1.0}})


def test_alignment_scale_fallback_warns_and_names_the_parameters():
    from types import SimpleNamespace

    from bayes_mlr.bayes.model import _em_scales
    from bayes_mlr.core.labels import AlignmentScaleWarning

    em = {"weights": np.array([0.5, 0.5]), "coef": np.array([[1.0], [-1.0]]), "sigma": np.ones(2)}
    se = {
        "weights": np.array([0.1, 0.1]),
        "coef": np.array([[np.nan], [0.2]]),
        "sigma": np.zeros(2),
    }
    with pytest.warns(AlignmentScaleWarning, match="No usable EM standard error for coef"):
        scales, fallen = _em_scales(SimpleNamespace(standard_errors_=se), em)
    assert fallen == ["coef"]  # sigma's SE of 0: not estimated, no warning
    assert np.all(np.isfinite(scales["coef"])) and np.all(scales["coef"] > 0)
    np.testing.assert_array_equal(scales["weights"], se["weights"])


# --------------------------------------------------------------------------------------------
# Relabelling that can be audited: permutations, cost gaps, Stephens' method, the bowtie
# --------------------------------------------------------------------------------------------


def test_every_draw_keeps_its_permutation_and_both_methods_agree_when_separated():
    idata = h.posterior("pymc")
    stats = idata["sample_stats"]
    K = h.fitted().n_components_
    perms = stats["permutation"].values
    assert stats["permutation"].dims == ("chain", "draw", "component")
    assert perms.shape == (h.CHAINS, h.DRAWS, K)
    np.testing.assert_array_equal(
        stats["relabelled"].values, np.any(perms != np.arange(K), axis=-1)
    )
    attrs = idata["posterior"].attrs
    # well-separated components (n = 300): nothing relabelled, both methods label every draw
    # alike, and every draw's second-best assignment costs far more (measured gaps > 1e4)
    assert attrs["relabel"] == "em" and attrs["relabel_agreement"] == 1.0
    assert attrs["relabel_ambiguous_share"] == 0.0
    assert float(stats["relabel_cost_gap"].min()) > 100.0
    diagnosis = diagnose(idata)
    assert diagnosis.identified and diagnosis.relabel_agreement == 1.0
    assert diagnosis.table["identified"].all()


def test_stephens_relabelling_matches_em_on_separated_data():
    model = h.fitted()
    kwargs = dict(draws=100, tune=100, chains=2, sampler="pymc", random_seed=5, progressbar=False)
    em = bayes.sample_posterior(model, relabel="em", **kwargs)
    st = bayes.sample_posterior(model, relabel="stephens", **kwargs)
    assert st["posterior"].attrs["relabel"] == "stephens"
    for name in ("weights", "intercept", "coef", "sigma"):
        np.testing.assert_array_equal(st["posterior"][name].values, em["posterior"][name].values)


def test_the_bowtie_is_flagged_as_not_identified():
    # two components with the same intercept, slopes +-0.5 and sigma 1 (n = 200): they
    # overlap so much that the posterior holds both labellings (Betancourt's bowtie).
    # Measured: about 51% of draws relabelled, the two methods agreeing on about 67%.
    data = simulate(
        200,
        weights=[0.5, 0.5],
        intercept=[0.0, 0.0],
        coef=[[0.5], [-0.5]],
        sigma=[1.0, 1.0],
        random_state=0,
    )
    model = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelSwitchingWarning)
        idata = bayes.sample_posterior(
            model, draws=300, tune=300, chains=4, sampler="pymc", random_seed=1, progressbar=False
        )
    diagnosis = diagnose(idata)
    assert not diagnosis.ok and not diagnosis.identified
    assert diagnosis.relabel_agreement < 0.9
    assert any("not identified" in p for p in diagnosis.problems)
    components = diagnosis.table[diagnosis.table["component"].notna()]
    assert not components["identified"].any()
