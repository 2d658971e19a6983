"""bayes_mlr.bayes.structured: the posterior of concomitant, grouped and shared models (#11).

The likelihood the PyMC model uses is checked against EM's to rounding at the EM estimate (the
strongest check that both fit the same model); the priors against scipy; the four models of
the issue are sampled once per session (:mod:`tests._bayes_helpers`) and checked for
convergence and for EM sitting inside the posterior.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats

from bayes_mlr import MixtureOfRegressions
from bayes_mlr.bayes import model as bayes
from bayes_mlr.bayes import structured as st
from bayes_mlr.bayes.diagnostics import compare_em_posterior, diagnose
from bayes_mlr.core.structured import e_step_structured
from tests import _bayes_helpers as h

KINDS = list(h.STRUCTURED_MODELS)


# --------------------------------------------------------------------------------------------
# Fits beyond the four of the helpers: other settings of the same data
# --------------------------------------------------------------------------------------------


def _frame():
    return h.structured_frame(0)


def _replication_weights(frame) -> np.ndarray:
    """Integer weights 1..3, constant within each group (as grouped fits require)."""
    per_group = np.random.default_rng(3).integers(1, 4, size=frame["id"].max() + 1)
    return per_group[frame["id"].to_numpy()].astype(float)


def _fit(**settings):
    """(estimator, frame, sample weights or None) of the settings of one of :data:`CONFIGS`."""
    frame = _frame()
    sw = _replication_weights(frame) if settings.pop("sample_weight", False) else None
    n_components = settings.pop("n_components", 2)
    groups = frame["id"] if settings.pop("groups", False) else None
    concomitant = frame[["z"]] if settings.pop("concomitant", False) else None
    columns = ["x", "w"] if settings.get("shared") is not None else ["x"]
    sigma = 0.45 if settings.get("variance") == "fixed" else None
    model = MixtureOfRegressions(n_components, random_state=0, sigma=sigma, **settings)
    model.fit(frame[columns], frame["y"], sample_weight=sw, groups=groups, concomitant=concomitant)
    return model, frame, sw


CONFIGS = [pytest.param("helper", {"kind": k}, id=k) for k in KINDS] + [
    pytest.param("fit", {"concomitant": True, "n_components": 3}, id="concomitant-K3"),
    pytest.param("fit", {"shared": ["intercept"]}, id="shared-intercept"),
    pytest.param(
        "fit", {"shared": ["w", "intercept"], "groups": True}, id="shared-w-and-intercept-grouped"
    ),
    pytest.param(
        "fit",
        {"shared": ["w"], "groups": True, "concomitant": True, "sample_weight": True},
        id="combined-weighted",
    ),
    pytest.param("fit", {"concomitant": True, "variance": "shared"}, id="concomitant-shared-var"),
    pytest.param("fit", {"groups": True, "variance": "fixed"}, id="grouped-fixed-var"),
    pytest.param(
        "fit", {"shared": ["w"], "fit_intercept": False, "concomitant": True}, id="no-intercept"
    ),
]


def _configured(source: str, config: dict):
    """(estimator, frame, sample weights, PyMC model)."""
    if source == "helper":
        model = h.structured_fitted(config["kind"])
        frame, sw = None, None
    else:
        with warnings.catch_warnings():
            # a model misspecified on purpose (an intercept through 0, all coefficients shared)
            # may end at a spurious or non-converged optimum: the likelihood check holds anyway
            warnings.simplefilter("ignore")
            model, frame, sw = _fit(**config)
    return model, frame, sw, bayes.build_model(model)


def _em_point(model, pm_model):
    """The EM estimate on the unconstrained scale, keyed by value-variable name."""
    start = st.initial_point(st.em_values(model), pm_model)
    return bayes._value_vars_and_point(pm_model, start)[1]


# --------------------------------------------------------------------------------------------
# The likelihood is EM's
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "config"), CONFIGS)
def test_log_likelihood_at_em_is_ems(source, config):
    model, *_, pm_model = _configured(source, config)
    point = _em_point(model, pm_model)
    ll = pm_model.compile_logp(vars=[pm_model["y"]], jacobian=False)(point)
    # The same sum in another order and on another scale (EM works on standardised data):
    # measured agreement 1e-15 relative.
    assert ll == pytest.approx(model.log_likelihood_, rel=1e-10)
    # Term by term: one per group (per row without groups), c_g * ell_g of EM's E-step.
    terms = pm_model.compile_logp(vars=[pm_model["y"]], jacobian=False, sum=False)(point)[0]
    _, ell, grouping = e_step_structured(
        model.result_,
        model._fit_X,
        model._fit_y,
        groups=model._fit_groups,
        concomitant=model._fit_concomitant,
    )
    sw = model._fit_sample_weight
    weight = np.ones(ell.shape) if sw is None else grouping.first(sw)
    np.testing.assert_allclose(terms, weight * ell, rtol=1e-10)
    unit = "group" if model._fit_groups is not None else "obs"
    assert pm_model.named_vars_to_dims["y"] == (unit,)


def _contrast_log_prior(value: np.ndarray, scale: float) -> float:
    """log density of the contrasts ``value[1:] - value[0]`` (value[0] = 0) under the prior of
    default_priors (logits iid Normal(0, scale)), plus the constant that maps it to the
    standardised raw coordinates at their centred start:
    log N_K(raw) = log MvN(x; 0, scale^2 (I + 11')) + (K-1) log scale + log(K)/2 - log(2 pi)/2."""
    K = value.shape[0]
    x = value[1:]
    cov = scale**2 * (np.eye(K - 1) + np.ones((K - 1, K - 1)))
    density = stats.multivariate_normal(np.zeros(K - 1), cov).logpdf(x)
    return float(density + (K - 1) * np.log(scale) + 0.5 * np.log(K) - 0.5 * np.log(2 * np.pi))


def _scipy_log_prior(model, frame_sw=None) -> float:
    """The default log prior at the EM estimate, computed independently with scipy.stats."""
    X, y = model._fit_X, model._fit_y
    w = np.ones(len(y)) if frame_sw is None else frame_sw
    K = model.n_components_
    m_y = np.average(y, weights=w)
    s_y = np.sqrt(np.average((y - m_y) ** 2, weights=w))
    m_x = np.average(X, axis=0, weights=w)
    s_x = np.sqrt(np.average((X - m_x) ** 2, axis=0, weights=w))
    shared, shared_intercept = model.shared_, model.result_.shared_intercept
    total = 0.0
    if model.fit_intercept:
        sd = 2.5 * s_y * np.sqrt(1 + np.sum((m_x / s_x) ** 2))
        values = model.intercept_[:1] if shared_intercept else model.intercept_
        total += stats.norm(m_y, sd).logpdf(values).sum()
    coef_sd = 2.5 * s_y / s_x
    total += stats.norm(0.0, coef_sd[shared]).logpdf(model.coef_[0, shared]).sum()
    total += stats.norm(0.0, coef_sd[~shared]).logpdf(model.coef_[:, ~shared]).sum()
    if model.variance == "component":
        total += stats.halfnorm(scale=s_y).logpdf(model.sigma_).sum()
    elif model.variance == "shared":
        total += stats.halfnorm(scale=s_y).logpdf(model.sigma_[0])
    W = model._fit_concomitant
    if W is None:
        if K > 1:
            total += stats.dirichlet(np.full(K, 2.0)).logpdf(model.weights_)
        return float(total)
    m_w = np.average(W, axis=0, weights=w)
    s_w = np.sqrt(np.average((W - m_w) ** 2, axis=0, weights=w))
    total += _contrast_log_prior(
        model.concomitant_intercept_, 2.5 * np.sqrt(1 + np.sum((m_w / s_w) ** 2))
    )
    for j in range(W.shape[1]):
        total += _contrast_log_prior(model.concomitant_coef_[:, j], 2.5 / s_w[j])
    return float(total)


@pytest.mark.parametrize(("source", "config"), CONFIGS)
def test_log_prior_at_em_is_the_documented_prior(source, config):
    model, _, sw, pm_model = _configured(source, config)
    point = _em_point(model, pm_model)
    logp = pm_model.compile_logp(jacobian=False)(point)
    expected = model.log_likelihood_ + _scipy_log_prior(model, sw)
    # scipy's densities and PyMC's agree to rounding (measured 1e-14 relative)
    assert logp == pytest.approx(expected, rel=1e-10)


def test_compiled_gradient_matches_finite_differences():
    """The gradient NUTS uses is that of the log-density (the combined model, C linker)."""
    model = h.structured_fitted("combined")
    pm_model = bayes.build_model(model)
    free, point = bayes._value_vars_and_point(
        pm_model, st.initial_point(st.em_values(model), pm_model)
    )
    _, func = bayes._logp_dlogp(pm_model, free, point)
    x = pm.blocking.DictToArrayBijection.map(point).data
    x = x + np.random.default_rng(0).normal(scale=0.05, size=x.size)
    step = 1e-6
    numeric = np.array(
        [(func(x + step * e)[0] - func(x - step * e)[0]) / (2 * step) for e in np.eye(x.size)]
    )
    # central differences of a log-density of size ~1e2: errors ~1e-7
    np.testing.assert_allclose(func(x)[1], numeric, rtol=1e-5, atol=1e-4)


# --------------------------------------------------------------------------------------------
# Variables, dims, data
# --------------------------------------------------------------------------------------------


def test_variables_and_dims_of_the_combined_model():
    model = h.structured_fitted("combined")
    pm_model = bayes.build_model(model)
    assert {rv.name for rv in pm_model.free_RVs} == {
        "coef_shared",
        "coef_varying",
        "intercept",
        "sigma",
        "concomitant_intercept_raw",
        "concomitant_coef_raw",
    }
    dims = pm_model.named_vars_to_dims
    assert dims["coef"] == ("component", "feature")
    assert dims["coef_shared"] == ("feature_shared",)
    assert dims["coef_varying"] == ("component", "feature_varying")
    assert dims["concomitant_intercept"] == ("component",)
    assert dims["concomitant_coef"] == ("component", "concomitant")
    assert dims["weights"] == ("component",)
    assert dims["y"] == ("group",)
    assert dims["W"] == ("group", "concomitant")
    assert list(pm_model.coords["feature_shared"]) == ["w"]
    assert list(pm_model.coords["concomitant"]) == ["z"]
    assert len(pm_model.coords["group"]) == h.N_GROUPS
    # every variable with a component dim has it first
    assert all(d[0] == "component" for d in dims.values() if "component" in d)
    # at the EM start the Deterministics are EM's estimates
    start = st.initial_point(st.em_values(model), pm_model)
    values = pm_model.compile_fn(
        [
            pm_model[n]
            for n in ("coef", "intercept", "concomitant_intercept", "concomitant_coef", "weights")
        ],
        inputs=pm_model.free_RVs,
        on_unused_input="ignore",
    )(start)
    np.testing.assert_allclose(values[0], model.coef_, rtol=1e-12)
    np.testing.assert_allclose(values[1], model.intercept_, rtol=1e-12)
    np.testing.assert_allclose(values[2], model.concomitant_intercept_, atol=1e-12)
    np.testing.assert_allclose(values[3], model.concomitant_coef_, atol=1e-12)
    # the mean prior weight over the rows, as EM's weights_ (EM's own convergence: 1e-8)
    np.testing.assert_allclose(values[4], model.weights_, rtol=1e-7)


def test_the_plain_model_keeps_its_own_path():
    pm_model = bayes.build_model(h.fitted())
    assert pm_model.observed_RVs and not pm_model.potentials
    assert not st.is_structured(h.fitted())


def test_build_model_with_new_data_groups_and_concomitant():
    model = h.structured_fitted("combined")
    frame = h.structured_frame(1)
    X = frame[["x", "w"]].to_numpy()
    pm_model = bayes.build_model(model, X, frame["y"], groups=frame["id"], concomitant=frame[["z"]])
    assert len(pm_model.coords["group"]) == h.N_GROUPS
    assert len(pm_model.coords["obs"]) == len(frame)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_bad_input_is_refused_with_a_clear_error():
    model = h.structured_fitted("combined")
    frame = h.structured_frame(1)
    X, y = frame[["x", "w"]].to_numpy(), frame["y"].to_numpy()
    with pytest.raises(ValueError, match="pass concomitant"):
        bayes.build_model(model, X, y, groups=frame["id"])
    with pytest.raises(ValueError, match="one label per row"):
        bayes.build_model(model, X, y, groups=frame["id"][:-1], concomitant=frame[["z"]])
    z = frame[["z"]].to_numpy().copy()
    z[1] += 1.0  # now varies within group 0
    with pytest.raises(ValueError, match="concomitant varies within group"):
        bayes.build_model(model, X, y, groups=frame["id"], concomitant=z)
    with pytest.raises(ValueError, match="2 column"):
        bayes.build_model(model, X, y, groups=frame["id"], concomitant=frame[["z", "x"]])
    with pytest.raises(ValueError, match="pass X and y too"):
        bayes.build_model(model, groups=frame["id"])
    with pytest.raises(ValueError, match="no prior of their own"):
        bayes.build_model(model, priors={"weights": {"alpha": 1.0}})
    with pytest.raises(ValueError, match="differs between components for a shared"):
        bayes.build_model(model, priors={"coef": {"sigma": [[1.0, 1.0], [1.0, 2.0]]}})
    with pytest.raises(ValueError, match="must be positive"):
        bayes.build_model(model, priors={"concomitant_coef": {"sigma": -1.0}})
    with pytest.raises(ValueError, match="no concomitant variables"):
        bayes.build_model(
            h.structured_fitted("grouped"), priors={"concomitant_coef": {"sigma": 1.0}}
        )
    with pytest.raises(ValueError, match="fitted without concomitant"):
        bayes.build_model(
            h.structured_fitted("grouped"),
            frame[["x"]].to_numpy(),
            y,
            concomitant=frame[["z"]],
        )
    with pytest.raises(TypeError, match="sortable"):
        bayes.build_model(
            model,
            X,
            y,
            groups=np.array([1, "a"] * (len(y) // 2), dtype=object),
            concomitant=frame[["z"]],
        )
    with pytest.raises(ValueError, match="starts must be one of"):
        bayes.sample_posterior(model, starts="everywhere")


def test_approximate_posterior_refuses_a_structured_model():
    from bayes_mlr.bayes.approx import approximate_posterior

    with pytest.raises(NotImplementedError, match="use sample_posterior"):
        approximate_posterior(h.structured_fitted("shared"))


# --------------------------------------------------------------------------------------------
# Starts
# --------------------------------------------------------------------------------------------


def test_dispersed_starts_keep_the_structure():
    model = h.structured_fitted("combined")
    problem = st.structured_problem(model)
    starts, optima = st.chain_starts(model, problem, 6, "dispersed", random_state=1)
    # a concomitant model's other EM optima carry no concomitant coefficients: EM only
    assert len(optima) == 1 and starts[0].source == "EM estimate"
    np.testing.assert_array_equal(starts[0].values["concomitant_coef"], model.concomitant_coef_)
    for start in starts[1:]:
        assert start.source == "over-dispersed around EM optimum 0"
        v = start.values
        np.testing.assert_array_equal(v["coef"][:, 1], v["coef"][0, 1])  # w: shared
        assert v["concomitant_intercept"][0] == 0 and v["concomitant_coef"][0, 0] == 0
        assert not np.allclose(v["concomitant_coef"], model.concomitant_coef_)
    em_starts, _ = st.chain_starts(model, problem, 3, "em")
    assert all(s.source == "EM estimate" for s in em_starts)


def test_starts_of_a_model_without_concomitant_include_the_fits_optima():
    model = h.structured_fitted("grouped")
    problem = st.structured_problem(model)
    starts, optima = st.chain_starts(model, problem, 4, "dispersed", random_state=1)
    assert optima[0]["source"] == "fit" and starts[0].source == "EM estimate"
    assert len(starts) == 4
    # every start is a finite point of the model
    pm_model = bayes.build_model(model)
    logp = pm_model.compile_logp()
    for start in starts:
        point = bayes._value_vars_and_point(pm_model, st.initial_point(start.values, pm_model))
        assert np.isfinite(logp(point[1]))


# --------------------------------------------------------------------------------------------
# Sampling: the four models of the issue
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_posterior_converges_and_holds_em(kind):
    idata = h.structured_posterior(kind)
    report = diagnose(idata)
    # R-hat <= 1.01, bulk/tail ESS >= 400, no divergence, BFMI, one mode, labels identified
    assert report.ok, str(report)
    assert report.table["r_hat"].max() <= 1.01
    assert report.n_divergences == 0
    assert idata["posterior"].attrs["relabelled_fraction"] == 0.0
    table = compare_em_posterior(h.structured_fitted(kind), idata, ci_prob=0.99)
    # EM inside every 99% HDI, and the posterior mean within 0.5 posterior sd of EM: 240 rows
    # (60 groups), weak priors, so the MLE sits in the bulk. Measured over data seeds 0-3 and
    # the four models: |shift| 0.28-0.36 sd at most (the sigmas, whose posterior is skewed);
    # the MC error of a mean is about 0.03 sd at these ESS.
    assert table["em_in_hdi"].all(), table
    assert (table["shift_sd"].abs() < 0.5).all(), table
    # EM standard errors (observed information) and posterior sd agree: measured ratios
    # 0.95-1.10 over the same 16 runs; 20% leaves room for the asymptotics at 60 groups
    np.testing.assert_allclose(table["sd"], table["em_se"], rtol=0.2)


def test_rows_of_the_comparison_cover_the_new_parameters():
    table = compare_em_posterior(
        h.structured_fitted("combined"), h.structured_posterior("combined")
    )
    assert list(table.index) == [
        "weights[0]",
        "weights[1]",
        "intercept[0]",
        "intercept[1]",
        "coef[0, x]",
        "coef[shared, w]",  # one row for the shared coefficient
        "coef[1, x]",
        "sigma[0]",
        "sigma[1]",
        "concomitant_intercept[1]",  # component 0 is the reference: no row
        "concomitant_coef[1, z]",
    ]
    assert table.loc["coef[shared, w]", "component"] is pd.NA
    assert (
        table.loc["concomitant_coef[1, z]", "em"]
        == h.structured_fitted("combined").concomitant_coef_[1, 0]
    )


def test_draws_keep_the_structure_and_the_reference():
    post = h.structured_posterior("combined")["posterior"]
    coef = post["coef"].to_numpy()
    np.testing.assert_array_equal(coef[:, :, 0, 1], coef[:, :, 1, 1])  # w shared
    np.testing.assert_array_equal(post["concomitant_intercept"].isel(component=0), 0.0)
    np.testing.assert_array_equal(post["concomitant_coef"].isel(component=0), 0.0)
    assert post.attrs["concomitant_reference_changed"] == 0.0
    assert json.loads(post.attrs["shared_features"]) == ["w"]
    assert json.loads(post.attrs["concomitant"]) == ["z"]
    assert post.attrs["log_likelihood_unit"] == "group"
    assert "optima (" in h.structured_posterior("combined")["modes"].attrs["starts_note"]
    recorded = json.loads(post.attrs["priors"])
    parameters = {(r["parameter"], r["component"], r["feature"]) for r in recorded["rows"]}
    assert ("coef", "shared", "w") in parameters
    assert ("concomitant_coef", None, "z") in parameters
    assert not any(r["parameter"] == "weights" for r in recorded["rows"])


@pytest.mark.parametrize("kind", ["grouped", "concomitant"])
def test_pointwise_log_likelihood_is_per_group_and_loo_runs(kind):
    idata = h.structured_posterior(kind)
    model = h.structured_fitted(kind)
    ll = idata["log_likelihood"]["y"]
    unit = "group" if kind == "grouped" else "obs"
    assert ll.dims == ("chain", "draw", unit)
    # its sum is the total the sampler saw, stored per draw in sample_stats
    np.testing.assert_allclose(
        ll.sum(unit).to_numpy(), idata["sample_stats"]["log_likelihood"].to_numpy(), rtol=1e-10
    )
    # recompute one draw with numpy: EM's E-step at the draw's parameters
    from bayes_mlr.results import EMResult

    sel = {"chain": 2, "draw": 11}
    post = idata["posterior"]
    draw = {n: post[n].isel(sel).to_numpy() for n in ("weights", "intercept", "coef", "sigma")}
    extra = {}
    if "concomitant_coef" in post:
        extra = {
            "concomitant_intercept": post["concomitant_intercept"].isel(sel).to_numpy(),
            "concomitant_coef": post["concomitant_coef"].isel(sel).to_numpy(),
        }
    result = EMResult(
        **draw, log_likelihood=0.0, log_likelihood_trace=[0.0], n_iter=0, converged=True, **extra
    )
    _, ell, _ = e_step_structured(
        result,
        model._fit_X,
        model._fit_y,
        groups=model._fit_groups,
        concomitant=model._fit_concomitant,
    )
    np.testing.assert_allclose(ll.isel(sel).to_numpy(), ell, rtol=1e-10)
    loo = azs.loo(idata, var_name="y")  # leave-one-group-out with groups
    assert np.isfinite(loo.elpd) and loo.elpd < model.log_likelihood_


def test_posterior_predictive_draws_share_a_component_within_a_group():
    idata = h.structured_posterior("grouped")
    pp = idata["posterior_predictive"]["y"]
    y = h.structured_fitted("grouped")._fit_y
    assert pp.dims == ("chain", "draw", "obs") and pp.sizes["obs"] == len(y)
    # predictive draws have the data's spread (the mixture of two lines)
    assert 0.9 < float(pp.std()) / float(np.std(y)) < 1.1


def test_synthetic_relabelling_is_undone_and_rereferenced():
    """Draws with swapped labels (the concomitant coefficients then relative to the other
    component, as a chain in that labelling samples them) come back exactly."""
    model = h.structured_fitted("combined")
    idata = h.structured_posterior("combined").copy(deep=True)
    original = idata["posterior"].to_dataset()
    flip = np.random.default_rng(5).random((original.sizes["chain"], original.sizes["draw"])) < 0.3
    scrambled = original.copy(deep=True)
    for name, da in original.data_vars.items():
        if "component" not in da.dims:
            continue
        values = da.transpose("chain", "draw", "component", ...).to_numpy().copy()
        values[flip] = values[flip][:, ::-1]
        if name in st.CONCOMITANT:
            values = values - values[:, :, :1]  # re-referenced to the new component 0
        scrambled[name] = da.copy(
            data=values if da.dims[2] == "component" else np.moveaxis(values, 2, -1)
        )
    idata["posterior"] = scrambled
    out = st._align(idata, model, st.em_values(model), st.structured_problem(model), relabel="em")
    for name in ("weights", "intercept", "coef", "sigma", *st.CONCOMITANT):
        np.testing.assert_allclose(
            out["posterior"][name].to_numpy(), original[name].to_numpy(), atol=1e-12
        )
    attrs = out["posterior"].attrs
    assert attrs["relabelled_fraction"] == pytest.approx(flip.mean())
    assert attrs["concomitant_reference_changed"] == pytest.approx(flip.mean())
    assert attrs["relabel_agreement"] == 1.0  # Stephens' method agrees


def test_other_settings_end_to_end():
    """A shared intercept with sample weights and groups, and a concomitant model with one
    sigma: short runs through sampling, alignment and the comparison."""
    for config in (
        {"shared": ["w", "intercept"], "groups": True, "sample_weight": True},
        {"shared": ["w"], "concomitant": True, "variance": "shared"},
    ):
        model, *_ = _fit(**config)
        idata = bayes.sample_posterior(
            model, draws=300, tune=300, chains=2, random_seed=3, progressbar=False
        )
        table = compare_em_posterior(model, idata, ci_prob=0.99)
        assert table["em_in_hdi"].all(), table
        rhat = azs.rhat(idata["posterior"].to_dataset()[["coef", "sigma"]])
        # 2 x 300 draws: a plumbing check, not a convergence study
        assert float(rhat.to_array().max()) < 1.05


@pytest.mark.parametrize("sampler", h.SAMPLERS)
def test_every_back_end_samples_a_structured_model(sampler):
    """nutpie and numpyro run the PyTensor likelihood too (numpyro through JAX): short runs
    from EM, through relabelling (Stephens' method applied), into the comparison."""
    model = h.structured_fitted("combined")
    idata = bayes.sample_posterior(
        model,
        draws=200,
        tune=200,
        chains=2,
        sampler=sampler,
        starts="em",
        relabel="stephens",
        random_seed=4,
        progressbar=False,
    )
    post = idata["posterior"]
    assert post.attrs["sampler"] == sampler and post.attrs["relabel"] == "stephens"
    np.testing.assert_array_equal(post["concomitant_coef"].isel(component=0), 0.0)
    table = compare_em_posterior(model, idata, ci_prob=0.99)
    # 2 x 200 draws: plumbing, with a loose check that the draws surround EM
    assert table["em_in_hdi"].all(), table
    assert list(idata["modes"]["chain_start"].values) == ["EM estimate"] * 2


def test_an_extended_structured_model_can_be_sampled():
    model = h.structured_fitted("concomitant")
    pm_model = bayes.build_model(model)
    with pm_model:
        pm.Deterministic("odds_ratio", pm.math.exp(pm_model["concomitant_coef"][1, 0]))
    idata = bayes.sample_posterior(
        model, draws=150, tune=150, chains=2, pm_model=pm_model, random_seed=5, progressbar=False
    )
    assert "odds_ratio" in idata["posterior"]
    assert json.loads(idata["posterior"].attrs["priors"])["source"] == "custom"
    with pytest.raises(ValueError, match="pass priors to build_model"):
        bayes.sample_posterior(model, pm_model=pm_model, priors={"coef": {"sigma": 1.0}})


def test_concomitant_optima_start_chains_with_their_own_coefficients():
    """Every distinct regular optimum of a concomitant fit carries its mixing coefficients, so
    dispersed chains can start there (not only at EM)."""
    from bayes_mlr import MixtureOfRegressions
    from bayes_mlr.bayes.structured import _optima, structured_problem

    peers = Path(__file__).resolve().parents[1] / "peers" / "structure"
    data = pd.read_csv(peers / "ChickWeight_grouped_concomitant.csv")
    model = MixtureOfRegressions.from_formula(
        "weight ~ Time | Chick", data, 2, concomitant="~ C(Diet)", random_state=0
    )
    assert len(model.result_.optima) >= 2  # -2708.55 and a lower optimum at -2713.22
    first = model.result_.optima[0]
    np.testing.assert_array_equal(first.concomitant_coef, model.concomitant_coef_)
    found = _optima(model, structured_problem(model))
    assert len(found) >= 2
    assert all(f["concomitant_coef"].shape == model.concomitant_coef_.shape for f in found)
    assert all(np.all(f["concomitant_coef"][0] == 0) for f in found)  # reference row
