"""MixtureOfRegressions: scikit-learn conventions, fitted attributes, prediction and criteria."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_mlr import MixtureOfRegressions, fit_em
from tests.conftest import TRUTH_3, make_data


@pytest.fixture(scope="module")
def fitted():
    data = make_data(1500, TRUTH_3, seed=1)
    return MixtureOfRegressions(3, random_state=0).fit(data.X, data.y), data


def test_constructor_stores_arguments_untouched():
    init = {"coef": np.zeros((2, 1))}
    m = MixtureOfRegressions(4, variance="fixed", sigma=2, init=init, n_init=3, random_state=7)
    assert m.get_params() == {
        "n_components": 4,
        "variance": "fixed",
        "sigma": 2,
        "fit_intercept": True,
        "init": init,
        "n_init": 3,
        "max_iter": 1000,
        "tol": 1e-8,
        "random_state": 7,
        "verbose": 0,
        "spurious": "avoid",
        "min_weight": None,
        "shared": None,
        "family": "gaussian",
    }
    assert m.init is init
    assert repr(m).startswith("MixtureOfRegressions(n_components=4, variance='fixed'")


def test_set_params_round_trip_and_unknown_name():
    m = MixtureOfRegressions().set_params(n_components=3, tol=1e-4)
    assert (m.n_components, m.tol) == (3, 1e-4)
    with pytest.raises(ValueError, match="Invalid parameter 'n_comp'"):
        m.set_params(n_comp=2)


def test_fit_returns_self_and_sets_attributes(fitted):
    model, data = fitted
    K, p = 3, data.X.shape[1]
    assert model.weights_.shape == (K,) and model.intercept_.shape == (K,)
    assert model.coef_.shape == (K, p) and model.sigma_.shape == (K,)
    assert isinstance(model.log_likelihood_, float)
    assert model.log_likelihood_trace_[-1] == model.log_likelihood_
    assert model.n_iter_ == model.result_.n_iter and model.converged_
    assert model.n_features_in_ == p and not hasattr(model, "feature_names_in_")
    res = fit_em(data.X, data.y, 3, random_state=0)
    np.testing.assert_array_equal(model.coef_, res.coef)


def test_shared_and_fixed_sigma_have_equal_entries():
    data = make_data(600, seed=2)
    shared = MixtureOfRegressions(2, variance="shared", random_state=0).fit(data.X, data.y)
    assert np.ptp(shared.sigma_) == 0
    fixed = MixtureOfRegressions(2, variance="fixed", sigma=0.4, random_state=0).fit(data.X, data.y)
    np.testing.assert_array_equal(fixed.sigma_, 0.4)


def test_predict_is_the_mixture_mean(fitted):
    model, data = fitted
    expected = (model.intercept_ + data.X @ model.coef_.T) @ model.weights_
    np.testing.assert_allclose(model.predict(data.X), expected, rtol=1e-12)
    assert model.predict_components(data.X).shape == (1500, 3)


def test_responsibilities_and_log_likelihood(fitted):
    model, data = fitted
    dens = model.weights_ * stats.norm.pdf(
        data.y[:, None], loc=model.predict_components(data.X), scale=model.sigma_
    )
    resp = model.responsibilities(data.X, data.y)
    np.testing.assert_allclose(resp, dens / dens.sum(1, keepdims=True), rtol=1e-9, atol=1e-300)
    assert model.log_likelihood(data.X, data.y) == pytest.approx(model.log_likelihood_, rel=1e-12)
    assert model.log_likelihood(data.X, data.y) == pytest.approx(
        np.log(dens.sum(1)).sum(), rel=1e-12
    )
    agree = (model.predict_component(data.X, data.y) == resp.argmax(1)).mean()
    assert agree == 1.0


def test_information_criteria(fitted):
    model, data = fitted
    ll, n, P = model.log_likelihood_, 1500, 3 * 3 + 3 + 2
    assert model.bic(data.X, data.y) == pytest.approx(-2 * ll + P * np.log(n), rel=1e-12)
    assert model.aic(data.X, data.y) == pytest.approx(-2 * ll + 2 * P, rel=1e-12)
    resp = model.responsibilities(data.X, data.y)
    # ICL as flexmix and mclust: -2 Σ_i log γ at the MAP component
    map_penalty = -np.sum(np.log(resp.max(axis=1)))
    assert model.icl(data.X, data.y) == pytest.approx(
        model.bic(data.X, data.y) + 2 * map_penalty, rel=1e-9
    )


def test_bic_prefers_the_true_number_of_components():
    data = make_data(1500, TRUTH_3, seed=4)
    bics = {
        k: MixtureOfRegressions(k, random_state=0).fit(data.X, data.y).bic(data.X, data.y)
        for k in (1, 2, 3, 4)
    }
    assert min(bics, key=bics.get) == 3


def test_standard_errors_shapes_and_lazy(fitted):
    model, _ = fitted
    assert model._standard_errors is None or isinstance(model._standard_errors, dict)
    se = model.standard_errors_
    assert set(se) == {"weights", "intercept", "coef", "sigma"}
    for name in se:
        assert se[name].shape == getattr(model, f"{name}_").shape
        assert np.all(np.isfinite(se[name])) and np.all(se[name] > 0)
    assert model.standard_errors_ is se  # cached


def test_pandas_feature_names_are_kept():
    data = make_data(400, seed=5)
    df = pd.DataFrame(data.X, columns=["size"])
    model = MixtureOfRegressions(2, random_state=0).fit(df, pd.Series(data.y, name="price"))
    assert list(model.feature_names_in_) == ["size"]
    assert model.feature_names == ["size"]
    np.testing.assert_allclose(model.predict(df), model.predict(data.X))
    refit = model.fit(data.X, data.y)
    assert not hasattr(refit, "feature_names_in_") and refit.feature_names == ["x0"]


def test_sample_weight_in_fit_and_scoring():
    data = make_data(300, seed=6)
    counts = np.random.default_rng(0).integers(1, 3, size=300)
    model = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y, sample_weight=counts)
    ll_w = model.log_likelihood(data.X, data.y, sample_weight=counts)
    assert ll_w == pytest.approx(model.log_likelihood_, rel=1e-12)


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_prints_progress(capsys, verbose):
    data = make_data(600, TRUTH_3, seed=2)
    model = MixtureOfRegressions(3, n_init=4, random_state=0, verbose=verbose).fit(data.X, data.y)
    lines = capsys.readouterr().out.splitlines()
    done = [line for line in lines if line.endswith(("(converged)", "(stopped)", "(degenerate)"))]
    # One line per finished run: each of the four starts scouts, then (on data this small)
    # runs on to convergence unless its scout converged.
    assert 4 <= len(done) <= 8 and done[0].startswith("EM scout 1/4: iteration ")
    assert sum(line.startswith("EM scout ") for line in done) == 4
    assert all(line.startswith(("EM scout ", "EM run ")) for line in done)
    assert any(f"{model.log_likelihood_:.6f} (converged)" in line for line in done)
    if verbose == 1:
        assert lines == done
    else:  # and every VERBOSE_INTERVAL iterations
        assert any(line.startswith("EM scout 1/4: iteration 10, ") for line in lines)


def test_silent_by_default(capsys):
    data = make_data(300, TRUTH_3, seed=2)
    MixtureOfRegressions(3, n_init=2, random_state=0).fit(data.X, data.y)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("verbose", [-1, 1.5, "yes", True])
def test_bad_verbose_is_refused_before_fitting(verbose):
    with pytest.raises(ValueError, match="verbose must be an integer"):
        MixtureOfRegressions(2, verbose=verbose).fit(np.zeros((5, 1)), np.zeros(5))


# --- concomitant variables, groups and shared coefficients ---------------------------------


def _structured_data(seed=0):
    from bayes_mlr import simulate

    sim = simulate(
        400,
        intercept=[-1.5, 1.5],
        coef=[[1.0, 0.5], [-1.0, 0.5]],
        sigma=[0.4, 0.6],
        n_groups=100,
        concomitant_intercept=[0.0, 0.3],
        concomitant_coef=[[0.0], [1.5]],
        random_state=seed,
    )
    frame = pd.DataFrame(
        {"x": sim.X[:, 0], "w": sim.X[:, 1], "z": sim.concomitant[:, 0], "id": sim.groups}
    )
    frame["y"] = sim.y
    return sim, frame


def test_structured_fit_attributes_and_formula_agree():
    _, frame = _structured_data()
    arrays = MixtureOfRegressions(2, shared=["w"], random_state=0).fit(
        frame[["x", "w"]], frame["y"], groups=frame["id"], concomitant=frame[["z"]]
    )
    formula = MixtureOfRegressions.from_formula(
        "y ~ x | id", frame, 2, concomitant="~ z", shared="~ w", random_state=0
    )
    assert formula.log_likelihood_ == pytest.approx(arrays.log_likelihood_, rel=1e-12)
    np.testing.assert_allclose(formula.concomitant_coef_, arrays.concomitant_coef_, rtol=1e-10)
    assert list(formula.concomitant_names_in_) == ["z"] and formula.n_groups_ == 100
    assert formula.shared_.tolist() == [False, True]
    assert formula.coef_[0, 1] == formula.coef_[1, 1]
    assert formula.concomitant_intercept_[0] == 0 and np.all(formula.concomitant_coef_[0] == 0)
    # the data frame alone serves every method of a formula fit
    assert formula.log_likelihood(frame) == pytest.approx(formula.log_likelihood_, rel=1e-12)
    w = formula.mixing_weights(frame)
    np.testing.assert_allclose(w, arrays.mixing_weights(frame[["z"]]), rtol=1e-10)
    means = formula.predict_components(frame)
    np.testing.assert_allclose(formula.predict(frame), (means * w).sum(axis=1), rtol=1e-12)
    resp = formula.responsibilities(frame)
    # rows of one group share their group's responsibilities
    first = frame["id"] == frame["id"].iloc[0]
    assert np.ptp(resp[first.to_numpy(), 0]) == 0.0
    bic = formula.bic(frame)
    n_params = 2 * 3 - 1 + 2 + 2  # 2x(intercept, x) + shared w, 2 sigmas, (K-1)(r+1)
    assert formula.result_.n_parameters == n_params
    assert bic == pytest.approx(-2 * formula.log_likelihood_ + n_params * np.log(400), rel=1e-12)
    assert formula.icl(frame) >= bic


def test_structured_model_round_trips_through_save(tmp_path):
    _, frame = _structured_data(1)
    model = MixtureOfRegressions.from_formula(
        "y ~ x | id", frame, 2, concomitant="~ z", shared="~ w", random_state=0
    )
    loaded = MixtureOfRegressions.load(model.save(tmp_path / "m"))
    assert loaded.formula_ == "y ~ x | id"
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    assert loaded.bic(frame) == model.bic(frame)
    for key, value in model.standard_errors_.items():
        np.testing.assert_array_equal(loaded.standard_errors_[key], value)


def test_structured_misuse_is_refused():
    sim, frame = _structured_data(2)
    model = MixtureOfRegressions(2, random_state=0).fit(sim.X, sim.y, concomitant=sim.concomitant)
    with pytest.raises(ValueError, match="concomitant variable"):
        model.predict(sim.X)
    plain = MixtureOfRegressions(2, random_state=0).fit(sim.X, sim.y)
    with pytest.raises(ValueError, match="fitted without concomitant"):
        plain.responsibilities(sim.X, sim.y, concomitant=sim.concomitant)
    with pytest.raises(ValueError, match="min_weight is not available"):
        MixtureOfRegressions(2, min_weight=0.1).fit(sim.X, sim.y, groups=sim.groups)
    with pytest.raises(ValueError, match="concomitant has 2 column"):
        model.mixing_weights(np.ones((3, 2)))
    with pytest.raises(TypeError, match="formula such as"):
        MixtureOfRegressions.from_formula("y ~ x", frame, shared=["w"])
    # without a concomitant model the weights are the same on every row
    np.testing.assert_allclose(plain.mixing_weights(sim.X), np.tile(plain.weights_, (400, 1)))


def test_grouped_responsibilities_multiply_the_rows_densities():
    sim, _ = _structured_data(3)
    model = MixtureOfRegressions(2, random_state=0).fit(sim.X, sim.y, groups=sim.groups)
    rows = model.score_samples(sim.X, sim.y)  # each row on its own
    resp = model.responsibilities(sim.X, sim.y, groups=sim.groups)
    g = sim.groups == sim.groups[0]
    log_f = np.log(model.responsibilities(sim.X[g], sim.y[g])) + rows[g][:, None]
    joint = np.log(model.weights_) + (log_f - np.log(model.weights_)).sum(axis=0)
    expected = np.exp(joint - np.logaddexp.reduce(joint))
    np.testing.assert_allclose(resp[g][0], expected, rtol=1e-10)
