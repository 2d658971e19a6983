"""EM for concomitant, grouped and shared models (bayes_mlr.core.structured), side by side with
flexmix on the reference fits of tests/peers/structure, and against the truth and invariants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from bayes_mlr import MixtureOfRegressions, fit_em, simulate
from bayes_mlr.core.structured import fit_structured

PEERS = Path(__file__).resolve().parents[1] / "peers" / "structure"

# case: (our formula, concomitant, shared, {flexmix name: our feature name})
CASES = {
    "concomitant_sim": ("y ~ x", "~ z", None, {}),
    "concomitant_sim3": ("y ~ x", "~ z1 + z2", None, {"z2b": "z2[T.b]", "z2c": "z2[T.c]"}),
    "grouped_sim": ("y ~ x | id", None, None, {}),
    "NPreg_grouped": ("yn ~ x + I(x**2) | id2", None, None, {"I(x^2)": "I(x ** 2)"}),
    "shared_sim": ("y ~ x", None, "~ w", {}),
    # flexmix's spelling of one intercept for all: ~ 0 + x with fixed = ~ 1
    "shared_intercept_sim": ("y ~ 0 + x", None, "~ 1", {}),
    "combined_sim": ("y ~ x | id", "~ z", "~ w", {}),
    "NregFix_shared": ("y ~ x1", None, "~ C(x2)", {"x21": "C(x2)[T.1]"}),
    "NregFix_concomitant": (
        "y ~ x1 + C(x2)",
        "~ C(w)",
        None,
        {"x21": "C(x2)[T.1]", "w1": "C(w)[T.1]"},
    ),
    # real data: R's ChickWeight, growth curves grouped by chick, diet as the concomitant
    "ChickWeight_grouped_concomitant": (
        "weight ~ Time | Chick",
        "~ C(Diet)",
        None,
        {f"factor(Diet){k}": f"C(Diet)[T.{k}]" for k in (2, 3, 4)},
    ),
    "NregFix_shared_concomitant": (
        "y ~ x1",
        "~ C(w)",
        "~ C(x2)",
        {"x21": "C(x2)[T.1]", "w1": "C(w)[T.1]"},
    ),
}


def _reference(case: str):
    ref = json.loads((PEERS / f"{case}.json").read_text())
    data = pd.read_csv(PEERS / f"{case}.csv")
    return ref, data


def _flexmix_components(ref, rename):
    """Per flexmix component: {name: estimate} of the regression at the polished MLE (BFGS on
    flexmix's own likelihood, gradient ~1e-5), its log sigma, the refit() standard errors, and
    the concomitant logits against Comp.1.

    refit() lists the estimates per component by name; the polished optimum only as a flat
    vector with refit()'s keys, so each (component, name) is found by its refit value."""
    K = ref["K"]
    all_coef, all_se = ref["refit"]["all_coef"], ref["refit"]["all_se"]
    polished = ref["refit"]["polished_mle"]["coef"]

    def at_mle(value):
        key = next(k for k, v in all_coef.items() if v == value)
        return polished[key]

    comps = []
    for k in range(1, K + 1):
        reg = ref["refit"]["regression"][f"Comp.{k}"]
        est = {rename.get(n, n): at_mle(v) for n, v in reg["estimate"].items()}
        se = {rename.get(n, n): v for n, v in reg["std_error"].items()}
        key = next(n for n in all_coef if f"Comp.{k}" in n and "log(sigma)" in n)
        comps.append(
            {"coef": est, "se": se, "log_sigma": polished[key], "se_log_sigma": all_se[key]}
        )
    conc = ref["refit"].get("concomitant") or {}
    for k in range(2, K + 1):
        if f"Comp.{k}" in conc:
            block = conc[f"Comp.{k}"]
            comps[k - 1]["gate"] = {
                rename.get(n, n): at_mle(v) for n, v in block["estimate"].items()
            }
            comps[k - 1]["gate_se"] = {rename.get(n, n): v for n, v in block["std_error"].items()}
    return comps


def _ours(model, k):
    names = ["(Intercept)", *model.feature_names]
    values = [model.intercept_[k], *model.coef_[k]]
    return dict(zip(names, values, strict=True))


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_flexmix(case):
    """Log-likelihood at least flexmix's (ours is the exact MLE; flexmix's EM sits below it),
    and estimates and standard errors equal to flexmix's refit() up to the label order."""
    formula, concomitant, shared, rename = CASES[case]
    ref, data = _reference(case)
    model = MixtureOfRegressions.from_formula(
        formula, data, ref["K"], concomitant=concomitant, shared=shared, random_state=0
    )
    polished = ref["refit"]["polished_mle"]["logLik"]
    assert model.log_likelihood_ >= ref["logLik"] - 1e-9
    # flexmix's polished optimum stops at a gradient of ~1e-5: equal to about 1e-5
    assert model.log_likelihood_ == pytest.approx(polished, abs=2e-5)
    theirs = _flexmix_components(ref, rename)
    K = ref["K"]
    ours = [_ours(model, k) for k in range(K)]
    names = sorted(theirs[0]["coef"])
    cost = np.array([[sum(abs(o[n] - t["coef"][n]) for n in names) for t in theirs] for o in ours])
    rows, cols = linear_sum_assignment(cost)
    se = model.standard_errors_
    for k, m in zip(rows, cols, strict=True):
        t = theirs[m]
        for n in names:
            # refit() stops near the MLE (relative differences ~1e-6): four digits
            assert ours[k][n] == pytest.approx(t["coef"][n], rel=1e-4, abs=1e-4), (k, n)
            j = model.feature_names.index(n) if n != "(Intercept)" else None
            mine = se["intercept"][k] if j is None else se["coef"][k, j]
            assert mine == pytest.approx(t["se"][n], rel=2e-3), ("se", k, n)
        assert np.log(model.sigma_[k]) == pytest.approx(t["log_sigma"], abs=1e-4)
        assert se["sigma"][k] / model.sigma_[k] == pytest.approx(t["se_log_sigma"], rel=2e-3)
    if concomitant is None:
        return
    # logits against the component matched to flexmix's Comp.1 (its reference)
    ref_k = rows[list(cols).index(0)]
    gate_names = ["(Intercept)", *map(str, model.concomitant_names_in_)]
    gate = np.column_stack([model.concomitant_intercept_, model.concomitant_coef_])
    gate = gate - gate[ref_k]
    for k, m in zip(rows, cols, strict=True):
        if m == 0:
            continue
        for i, n in enumerate(gate_names):
            assert gate[k, i] == pytest.approx(theirs[m]["gate"][n], rel=1e-3, abs=1e-3), (k, n)
            if ref_k == 0:  # same reference: the standard errors are comparable directly
                mine = (
                    model.standard_errors_["concomitant_intercept"][k]
                    if i == 0
                    else model.standard_errors_["concomitant_coef"][k, i - 1]
                )
                assert mine == pytest.approx(theirs[m]["gate_se"][n], rel=2e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_truth_recovered_combined(seed):
    """Grouped + concomitant + shared data with known truth: estimates within a few standard
    errors of the truth (statistical: 5 SEs leaves room for 3 seeds x 12 parameters)."""
    truth = {
        "intercept": [-1.0, 1.5],
        "coef": [[1.0, 0.5], [-1.0, 0.5]],
        "sigma": [0.5, 0.8],
        "concomitant_intercept": [0.0, 0.3],
        "concomitant_coef": [[0.0], [1.2]],
    }
    sim = simulate(3000, n_groups=600, random_state=seed, **truth)
    model = MixtureOfRegressions(2, shared=[1], random_state=seed).fit(
        sim.X, sim.y, groups=sim.groups, concomitant=sim.concomitant
    )
    se = model.standard_errors_
    # canonical order sorts by mean prediction: -1 < 1.5, so labels agree with the truth
    for name in ("intercept", "coef", "sigma", "concomitant_intercept", "concomitant_coef"):
        est, true = getattr(model, f"{name}_"), np.asarray(truth[name])
        err = np.where(se[name] > 0, se[name], 1.0)
        assert np.all(np.abs(est - true) <= 5 * err), (name, est, true, se[name])
    assert model.coef_[0, 1] == model.coef_[1, 1]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_log_likelihood_monotone_with_concomitant_m_step(seed):
    """Generalised EM: the Newton steps of the gating M-step never lower the likelihood."""
    sim = simulate(
        800,
        intercept=[-1.0, 0.0, 1.0],
        coef=[[1.0], [-1.0], [0.5]],
        sigma=0.7,
        concomitant_intercept=[0.0, 0.5, -0.5],
        concomitant_coef=[[0.0, 0.0], [1.0, -1.0], [2.0, 0.5]],
        random_state=seed,
    )
    for init in ("random", "subsets"):
        res = fit_structured(
            sim.X, sim.y, 3, concomitant=sim.concomitant, init=init, n_init=2, random_state=seed
        )
        trace = res.log_likelihood_trace
        # rounding of a sum over 800 rows: 1e-9 relative
        assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:])), np.diff(trace).min()


def test_single_row_groups_equal_no_groups():
    """Every row its own group is the ungrouped model (same starts, same EM steps)."""
    sim = simulate(400, n_features=2, random_state=4)
    ids = np.arange(400)[::-1]  # any labels, in any order
    a = fit_structured(sim.X, sim.y, 2, groups=ids, random_state=1)
    b = fit_structured(sim.X, sim.y, 2, shared=[], random_state=1)
    c = fit_em(sim.X, sim.y, 2, random_state=1)
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=1e-12)
    # the plain fast path reaches the same optimum (tol 1e-8 per row: 1e-6 in total)
    assert a.log_likelihood == pytest.approx(c.log_likelihood, abs=1e-5)
    np.testing.assert_allclose(a.coef, c.coef, atol=1e-4)
    assert a.n_groups == 400 and b.n_groups is None


@pytest.mark.parametrize("variance", ["shared", "fixed"])
def test_everything_shared_is_one_regression(variance):
    """All coefficients shared (K=2) with one sigma: the K=1 regression, weights anything."""
    sim = simulate(300, n_features=2, random_state=5)
    sigma = 1.3 if variance == "fixed" else None
    res = fit_structured(
        sim.X, sim.y, 2, shared=["intercept", 0, 1], variance=variance, sigma=sigma, random_state=0
    )
    one = fit_em(sim.X, sim.y, 1, variance=variance, sigma=sigma, random_state=0)
    np.testing.assert_allclose(res.coef, np.repeat(one.coef, 2, axis=0), atol=1e-10)
    np.testing.assert_allclose(res.intercept, np.repeat(one.intercept, 2), atol=1e-10)
    assert res.log_likelihood == pytest.approx(one.log_likelihood, rel=1e-12)
    assert res.weights.sum() == pytest.approx(1.0)


def test_concomitant_constant_within_groups_and_weights():
    sim = simulate(200, n_groups=40, random_state=0)
    varying = np.arange(200, dtype=float)
    with pytest.raises(ValueError, match="concomitant varies within group"):
        fit_structured(sim.X, sim.y, 2, groups=sim.groups, concomitant=varying)
    with pytest.raises(ValueError, match="sample_weight varies within group"):
        fit_structured(sim.X, sim.y, 2, groups=sim.groups, sample_weight=np.arange(1.0, 201.0))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"groups": np.zeros(10)}, ValueError, "groups must have shape"),
        ({"concomitant": np.ones((10, 1))}, ValueError, "concomitant must have shape"),
        ({"concomitant": np.full((100, 1), np.nan)}, ValueError, "NaN"),
        ({"shared": ["nope"]}, ValueError, "not a column of X"),
        ({"shared": [5]}, ValueError, "out of range"),
        ({"shared": [1.5]}, TypeError, "shared must hold"),
        ({"groups": np.repeat([0], 100)}, ValueError, "larger than the number of groups"),
        ({"init": {"coef": [[1.0], [2.0]]}}, TypeError, "init must be one of"),
    ],
)
def test_bad_input_is_refused_before_fitting(kwargs, error, match):
    sim = simulate(100, random_state=0)
    with pytest.raises(error, match=match):
        fit_structured(sim.X, sim.y, 2, **kwargs)


def test_weights_are_the_mean_prior_and_sample_weights_replicate_groups():
    """weights = mean prior over the rows; a group of weight 2 counts as two groups."""
    sim = simulate(
        300,
        n_groups=60,
        concomitant_intercept=[0.0, 0.2],
        concomitant_coef=[[0.0], [1.0]],
        random_state=2,
    )
    model = MixtureOfRegressions(2, random_state=0).fit(
        sim.X, sim.y, groups=sim.groups, concomitant=sim.concomitant
    )
    np.testing.assert_allclose(
        model.weights_, model.mixing_weights(sim.concomitant).mean(axis=0), atol=1e-12
    )
    # doubling the weight of the first group = duplicating its rows under a new label
    first = sim.groups == sim.groups[0]
    sw = np.where(first, 2.0, 1.0)
    weighted = MixtureOfRegressions(2, random_state=0).fit(
        sim.X, sim.y, sw, groups=sim.groups, concomitant=sim.concomitant
    )
    X2 = np.vstack([sim.X, sim.X[first]])
    y2 = np.concatenate([sim.y, sim.y[first]])
    g2 = np.concatenate([sim.groups, np.full(first.sum(), -1)])
    W2 = np.vstack([sim.concomitant, sim.concomitant[first]])
    copied = MixtureOfRegressions(2, random_state=0).fit(X2, y2, groups=g2, concomitant=W2)
    assert weighted.log_likelihood_ == pytest.approx(copied.log_likelihood_, rel=1e-8)
    np.testing.assert_allclose(weighted.coef_, copied.coef_, atol=1e-5)


def test_separating_concomitant_is_flagged():
    """z decides the component exactly: the ML gating slopes are infinite; say so."""
    from bayes_mlr import SeparationWarning

    rng = np.random.default_rng(0)
    z = rng.normal(size=400)
    x = rng.normal(size=400)
    y = np.where(z > 0, 2.0 + x, -2.0 - x) + 0.3 * rng.normal(size=400)
    with pytest.warns(SeparationWarning, match="separate the components"):
        res = fit_structured(x, y, 2, concomitant=z, random_state=0)
    assert res.separated
    # the regression lines are still found
    np.testing.assert_allclose(np.sort(res.intercept), [-2.0, 2.0], atol=0.1)
    ok = fit_structured(x, y, 2, concomitant=rng.normal(size=400), random_state=0)
    assert not ok.separated
