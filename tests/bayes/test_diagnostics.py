"""Tests of bayes_mlr.bayes.diagnostics: diagnose, compare_em_posterior, membership, choosing K.

Most tests use synthetic DataTrees (independent normal draws around the EM estimate), so that
the expected answer is known exactly; a few use the session's real posteriors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_mlr.bayes.diagnostics import (
    Diagnosis,
    compare_em_posterior,
    compare_n_components,
    diagnose,
    posterior_membership,
    summary_table,
)
from tests import _bayes_helpers as h

CHAINS, DRAWS = 4, 1000


def _synthetic(model, *, seed=0, chains=CHAINS, draws=DRAWS, spread=1.0) -> xr.DataTree:
    """Independent draws ~ N(EM, (spread * SE)^2): a perfectly mixed posterior."""
    rng = np.random.default_rng(seed)
    se = model.standard_errors_
    K, p = model.coef_.shape
    coords = {
        "chain": np.arange(chains),
        "draw": np.arange(draws),
        "component": np.arange(K),
        "feature": [f"x{j}" for j in range(p)],
    }

    def around(value, scale):
        return value + spread * scale * rng.normal(size=(chains, draws, *np.shape(value)))

    weights = np.abs(around(model.weights_, se["weights"]))
    post = xr.Dataset(
        {
            "weights": (("chain", "draw", "component"), weights / weights.sum(-1, keepdims=True)),
            "intercept": (
                ("chain", "draw", "component"),
                around(model.intercept_, se["intercept"]),
            ),
            "coef": (("chain", "draw", "component", "feature"), around(model.coef_, se["coef"])),
            "sigma": (("chain", "draw", "component"), around(model.sigma_, se["sigma"])),
        },
        coords=coords,
    )
    post.attrs["relabelled_fraction"] = 0.0
    stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), np.zeros((chains, draws), dtype=bool)),
            "energy": (("chain", "draw"), rng.normal(size=(chains, draws))),
        },
        coords={"chain": coords["chain"], "draw": coords["draw"]},
    )
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def _with_posterior(tree: xr.DataTree, post: xr.Dataset) -> xr.DataTree:
    tree = tree.copy(deep=True)
    tree["posterior"] = xr.DataTree(post)
    return tree


# --------------------------------------------------------------------------------------------
# diagnose
# --------------------------------------------------------------------------------------------


def test_diagnose_passes_a_well_mixed_posterior():
    report = diagnose(_synthetic(h.fitted()))
    assert isinstance(report, Diagnosis)
    assert report.ok and bool(report)
    assert report.problems == []
    assert report.n_divergences == 0
    assert report.bfmi.shape == (CHAINS,)
    assert report.relabelled_fraction == 0.0


def test_diagnose_table_is_numeric_and_correctly_labelled():
    tree = _synthetic(h.fitted())
    table = diagnose(tree).table
    assert list(table.index) == [
        "weights[0]",
        "weights[1]",
        "intercept[0]",
        "intercept[1]",
        "coef[0, x0]",
        "coef[1, x0]",
        "sigma[0]",
        "sigma[1]",
    ]
    numeric = ["mean", "sd", "hdi_low", "hdi_high", "ess_bulk", "ess_tail", "r_hat"]
    assert all(pd.api.types.is_float_dtype(table[c]) for c in numeric)
    post = tree["posterior"]
    # Row labels point at the right numbers (the ArviZ 1.3 mislabelling trap).
    assert table.loc["coef[1, x0]", "mean"] == pytest.approx(
        float(post["coef"].sel(component=1, feature="x0").mean())
    )
    assert table.loc["sigma[0]", "mean"] == pytest.approx(
        float(post["sigma"].sel(component=0).mean())
    )
    assert table.loc["coef[1, x0]", "component"] == 1
    assert table.loc["coef[1, x0]", "feature"] == "x0"
    assert (table["r_hat"] < 1.01).all()


def test_diagnose_says_no_to_switched_labels():
    tree = _synthetic(h.fitted())
    post = tree["posterior"].to_dataset()
    for name in ("weights", "intercept", "coef", "sigma"):
        values = post[name].to_numpy().copy()
        values[2:] = values[2:, :, ::-1]  # chains 2 and 3 in the other labelling
        post[name] = post[name].copy(data=values)
    report = diagnose(_with_posterior(tree, post))
    assert not report.ok
    assert any("R-hat" in p for p in report.problems)
    assert any("ESS" in p for p in report.problems)


def test_diagnose_says_no_to_divergences():
    tree = _synthetic(h.fitted())
    stats = tree["sample_stats"].to_dataset()
    diverging = stats["diverging"].to_numpy().copy()
    diverging[1, :3] = True
    stats["diverging"] = stats["diverging"].copy(data=diverging)
    tree["sample_stats"] = xr.DataTree(stats)
    report = diagnose(tree)
    assert not report.ok
    assert report.n_divergences == 3
    assert any("3 divergent" in p for p in report.problems)
    # The limit is a keyword argument.
    assert diagnose(tree, max_divergences=3).ok


def test_diagnose_says_no_to_low_bfmi():
    tree = _synthetic(h.fitted())
    stats = tree["sample_stats"].to_dataset()
    energy = stats["energy"].to_numpy().copy()
    # A random walk in energy: successive differences tiny next to the spread, BFMI ~ 0.
    energy[0] = np.cumsum(np.random.default_rng(1).normal(size=DRAWS))
    stats["energy"] = stats["energy"].copy(data=energy)
    tree["sample_stats"] = xr.DataTree(stats)
    report = diagnose(tree)
    assert not report.ok
    assert report.bfmi[0] < 0.3 <= report.bfmi[1:].min()
    assert any("BFMI" in p and "[0]" in p for p in report.problems)


def test_diagnose_says_no_to_few_draws_and_many_relabelled():
    tree = _synthetic(h.fitted(), draws=60)  # 240 draws: ESS < 400
    tree["posterior"].attrs["relabelled_fraction"] = 0.2
    report = diagnose(tree)
    assert not report.ok
    assert any("bulk ESS" in p for p in report.problems)
    assert any("20.0% of draws were relabelled" in p for p in report.problems)
    # With laxer limits (R-hat of 60-draw chains fluctuates above 1.01) the same run passes.
    relaxed = diagnose(tree, rhat_max=1.1, ess_bulk_min=50, ess_tail_min=50, relabelled_max=0.25)
    assert relaxed.ok, str(relaxed)


def test_diagnose_report_is_readable():
    tree = _synthetic(h.fitted(), draws=60)
    text = str(diagnose(tree))
    assert text.startswith("Posterior diagnosis: PROBLEMS FOUND")
    assert "max R-hat" in text and "divergences 0" in text and "coef[0, x0]" in text
    assert "Posterior diagnosis: OK" in str(diagnose(_synthetic(h.fitted())))


def test_summary_table_without_sample_stats():
    tree = xr.DataTree.from_dict({"posterior": _synthetic(h.fitted())["posterior"].to_dataset()})
    report = diagnose(tree)
    assert report.ok and report.n_divergences is None and report.bfmi is None
    assert len(summary_table(tree, var_names=["coef"])) == 2


# --------------------------------------------------------------------------------------------
# compare_em_posterior
# --------------------------------------------------------------------------------------------


def test_compare_em_posterior_values():
    model = h.fitted()
    tree = _synthetic(model)
    table = compare_em_posterior(model, tree)
    assert len(table) == 8
    assert list(table.columns) == [
        "parameter",
        "component",
        "feature",
        "em",
        "em_se",
        "mean",
        "sd",
        "hdi_low",
        "hdi_high",
        "em_in_hdi",
        "shift_sd",
    ]
    row = table.loc["coef[1, x0]"]
    draws = tree["posterior"]["coef"].sel(component=1, feature="x0").to_numpy().ravel()
    assert row["em"] == model.coef_[1, 0]
    assert row["em_se"] == model.standard_errors_["coef"][1, 0]
    assert row["mean"] == pytest.approx(draws.mean(), rel=1e-12)
    assert row["sd"] == pytest.approx(draws.std(ddof=1), rel=1e-12)
    assert row["shift_sd"] == pytest.approx((draws.mean() - row["em"]) / draws.std(ddof=1))
    # A 94% HDI of normal draws holds about 94% of them.
    inside = ((draws >= row["hdi_low"]) & (draws <= row["hdi_high"])).mean()
    assert inside == pytest.approx(0.94, abs=0.01)
    assert table["em_in_hdi"].dtype == bool and table["em_in_hdi"].all()
    assert table.loc[table["parameter"] == "coef", "component"].tolist() == [0, 1]


def test_compare_em_posterior_hdi_probability_and_em_outside():
    model = h.fitted()
    post = _synthetic(model)["posterior"].to_dataset()
    post["intercept"] = post["intercept"] + 10 * model.standard_errors_["intercept"]
    tree = _with_posterior(_synthetic(model), post)
    wide = compare_em_posterior(model, tree, ci_prob=0.99)
    narrow = compare_em_posterior(model, tree, ci_prob=0.5)
    assert (wide["hdi_high"] - wide["hdi_low"] > narrow["hdi_high"] - narrow["hdi_low"]).all()
    shifted = wide[wide["parameter"] == "intercept"]
    assert not shifted["em_in_hdi"].any()
    assert (shifted["shift_sd"] > 5).all()
    with pytest.raises(ValueError, match="ci_prob"):
        compare_em_posterior(model, tree, ci_prob=1.5)


def test_compare_em_posterior_from_the_em_group():
    idata = h.posterior("pymc")
    from_group = compare_em_posterior(None, idata)
    from_model = compare_em_posterior(h.fitted(), idata)
    pd.testing.assert_frame_equal(from_group, from_model)


def test_compare_em_posterior_shared_sigma_is_one_row():
    model = h.fitted(variance="shared")
    post = _synthetic(model)["posterior"].to_dataset()
    post["sigma"] = post["sigma"].isel(component=0, drop=True)
    table = compare_em_posterior(model, _with_posterior(_synthetic(model), post))
    sigma = table[table["parameter"] == "sigma"]
    assert list(sigma.index) == ["sigma"]
    assert pd.isna(sigma["component"].iloc[0])
    assert sigma["em"].iloc[0] == model.sigma_[0]


# --------------------------------------------------------------------------------------------
# posterior_membership
# --------------------------------------------------------------------------------------------


def test_membership_of_a_point_posterior_is_em_responsibilities():
    model = h.fitted()
    tree = _synthetic(model, draws=5, spread=0.0)  # every draw is the EM estimate
    gamma = posterior_membership(model, tree)
    d = h.data()
    np.testing.assert_allclose(gamma, model.responsibilities(d.X, d.y), rtol=1e-10, atol=1e-14)


def test_membership_of_a_real_posterior():
    model, idata = h.fitted(), h.posterior("pymc")
    gamma = posterior_membership(model, idata, chunk_size=97)
    d = h.data()
    assert gamma.shape == (h.N, 2)
    np.testing.assert_allclose(gamma.sum(axis=1), 1.0, rtol=1e-12)
    # Well separated: memberships agree with EM's and with the true labels.
    assert np.abs(gamma - model.responsibilities(d.X, d.y)).max() < 0.2
    em_labels = model.responsibilities(d.X, d.y).argmax(axis=1)
    assert (gamma.argmax(axis=1) == em_labels).mean() > 0.98
    # The two lines cross near x = 1.6, where membership is genuinely uncertain.
    assert (gamma.argmax(axis=1) == d.z).mean() > 0.9
    # Without the estimator the data come from the DataTree.
    np.testing.assert_allclose(posterior_membership(None, idata), gamma, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# compare_n_components
# --------------------------------------------------------------------------------------------


def test_compare_n_components_prefers_the_true_k():
    from bayes_mlr.bayes.model import sample_posterior

    one = h.fitted(1)
    posterior_one = sample_posterior(
        one, draws=300, tune=300, chains=2, sampler="pymc", random_seed=1, progressbar=False
    )
    table = compare_n_components([one, h.fitted()], [posterior_one, h.posterior("pymc")])
    assert list(table.index) == [1, 2]
    for column in ("elpd_loo", "se", "p_loo", "elpd_diff", "bic", "aic", "icl"):
        assert pd.api.types.is_float_dtype(table[column]), column
    assert table.loc[2, "best_loo"] and table.loc[2, "best_bic"]
    assert table.loc[2, "elpd_diff"] == 0 and table.loc[1, "elpd_diff"] < -50
    d = h.data()
    assert table.loc[2, "bic"] == pytest.approx(h.fitted().bic(d.X, d.y))
    # Mappings with the same keys work too.
    named = compare_n_components(
        {"a": one, "b": h.fitted()}, {"a": posterior_one, "b": h.posterior()}
    )
    assert list(named.index) == ["a", "b"]


def test_compare_n_components_checks_its_inputs():
    with pytest.raises(ValueError, match="pair them up"):
        compare_n_components([h.fitted()], [])
    with pytest.raises(ValueError, match="same keys"):
        compare_n_components({"a": h.fitted()}, {"b": h.posterior()})


def test_label_invariant_checks_come_first():
    from bayes_mlr.bayes.diagnostics import _predictive_mean_at_data, invariant_table

    idata = h.posterior("pymc")
    table = invariant_table(idata)
    assert list(table.index) == ["lp", "log_likelihood", "predictive_mean"]
    # a converged run (4 x 400 draws; measured R-hat <= 1.004, ESS >= 800)
    assert (table["r_hat"] < 1.01).all() and (table["ess_bulk"] > 400).all()
    # the predictive mean at the data is computed from the draws: equal to the aligned or the
    # unaligned draws (label-invariant), and for one draw to the mixture mean at that draw
    post = idata["posterior"]
    X = idata["constant_data"]["X"].values
    w, a, b = (post[v].values[0, 0] for v in ("weights", "intercept", "coef"))
    expected = (a[None, :] + X @ b.T) @ w
    got = _predictive_mean_at_data(idata).values[0, 0]
    rows = np.unique(np.linspace(0, X.shape[0] - 1, min(200, X.shape[0])).astype(int))
    np.testing.assert_allclose(got, expected[rows], rtol=1e-12)


def test_disagreeing_chains_fail_the_label_invariant_check():
    idata = h.posterior("pymc").copy(deep=True)  # the shared posterior stays as it was
    stats = idata["sample_stats"].to_dataset()
    shifted = stats["log_density"].values.copy()
    shifted[0] += 10.0  # chain 0 sits 10 units of lp higher: another mode
    stats["log_density"] = (("chain", "draw"), shifted)
    idata["sample_stats"] = xr.DataTree(stats)
    diagnosis = diagnose(idata)
    assert not diagnosis.ok
    assert diagnosis.problems[0].startswith("the chains disagree on label-invariant quantities")
    assert "lp" in diagnosis.problems[0]


# --------------------------------------------------------------------------------------------
# Structured models (concomitant variables, groups, shared coefficients)
# --------------------------------------------------------------------------------------------


def test_diagnose_table_has_the_new_parameters_once():
    table = diagnose(h.structured_posterior("combined")).table
    assert "coef[shared, w]" in table.index and "coef[0, w]" not in table.index
    assert {"concomitant_intercept[1]", "concomitant_coef[1, z]"} <= set(table.index)
    # the reference row is zero by definition: no R-hat or ESS to check
    assert "concomitant_intercept[0]" not in table.index
    assert table["r_hat"].notna().all()


def test_compare_em_posterior_of_a_structured_model_from_the_em_group():
    idata = h.structured_posterior("combined")
    from_group = compare_em_posterior(None, idata)
    from_model = compare_em_posterior(h.structured_fitted("combined"), idata)
    pd.testing.assert_frame_equal(from_group, from_model)
    with pytest.raises(ValueError, match="no 'concomitant_intercept'"):
        compare_em_posterior(h.fitted(), idata)


@pytest.mark.parametrize("kind", ["combined", "grouped"])
def test_membership_of_a_structured_point_posterior_is_em_responsibilities(kind):
    model = h.structured_fitted(kind)
    tree = h.structured_point_mass(model, draws=3)  # every draw is the EM estimate
    gamma = posterior_membership(model, tree)
    expected = model.responsibilities(
        model._fit_X, model._fit_y, groups=model._fit_groups, concomitant=model._fit_concomitant
    )
    np.testing.assert_allclose(gamma, expected, rtol=1e-10, atol=1e-14)


def test_membership_of_a_structured_posterior():
    model, idata = h.structured_fitted("combined"), h.structured_posterior("combined")
    gamma = posterior_membership(model, idata, chunk_size=333)
    em = model.responsibilities(
        model._fit_X, model._fit_y, groups=model._fit_groups, concomitant=model._fit_concomitant
    )
    np.testing.assert_allclose(gamma.sum(axis=1), 1.0, rtol=1e-12)
    # rows of a group share their group's membership
    ids = model._fit_groups
    np.testing.assert_allclose(gamma, gamma[np.unique(ids, return_index=True)[1]][ids])
    # well separated groups of 4 rows: the posterior average is close to EM's plug-in
    assert np.abs(gamma - em).max() < 0.2
    # without the estimator, the data, groups and concomitant variables come from the DataTree
    np.testing.assert_allclose(posterior_membership(None, idata), gamma, rtol=1e-12)


def test_compare_n_components_passes_the_groups():
    model = h.structured_fitted("grouped")
    table = compare_n_components([model], [h.structured_posterior("grouped")])
    assert table["bic"].iloc[0] == pytest.approx(model.result_.bic, rel=1e-12)
    assert np.isfinite(table["elpd_loo"].iloc[0])
