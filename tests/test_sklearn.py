"""MixtureOfRegressions under scikit-learn: check_estimator, clone, Pipeline, GridSearchCV, score.

scikit-learn is a development dependency only; ``import bayes_mlr`` never imports it (see
tests/test_estimator.py). Everything here imports it at the top, so skip cleanly without it.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from bayes_mlr import MixtureOfRegressions, NotFittedError
from tests.conftest import TRUTH_2, TRUTH_3, make_data

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone, is_regressor  # noqa: E402
from sklearn.exceptions import NotFittedError as SklearnNotFittedError  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402

# ---------------------------------------------------------------------------------------------
# check_estimator
# ---------------------------------------------------------------------------------------------

# Checks that do not apply to a mixture of regressions, whatever the core does.
NOT_APPLICABLE = {
    "check_sample_weight_equivalence_on_dense_data": (
        "fits 15 rows with 30 features: no mixture of regressions (not even K=1) is "
        "identified there, and the estimator refuses with 'Too few rows'. Weights against "
        "repeated/removed rows are checked on identifiable data in this file."
    ),
    "check_methods_sample_order_invariance": (
        "calls score_samples(X), but score_samples(X, y) is the log-density of y given x and "
        "needs y. predict and score_samples are checked for order/subset invariance here."
    ),
    "check_methods_subset_invariance": "as check_methods_sample_order_invariance",
    "check_supervised_y_2d": (
        "wants scikit-learn's own DataConversionWarning for a column y; bayes_mlr takes a "
        "single-column y as 1-D silently (documented in check_y) and cannot raise "
        "scikit-learn's warning class without importing scikit-learn. Predictions are equal, "
        "which is the part of the check that matters."
    ),
    "check_fit1d": (
        "a 1-D X is read as a single feature by design (y ~ x is the common case; fit_em and "
        "the estimator agree). predict on a 1-D X for a model with several features raises "
        "a ValueError that says 'Reshape your data' (check_fit2d_predict1d passes)."
    ),
}
# K=2 only: 10 rows cannot carry 2 components x (1 + 4) coefficients + sigma; the property
# the check is about (no decision_function / predict_proba) is asserted in this file.
NOT_APPLICABLE_K2 = {
    "check_regressors_no_decision_function": "10 rows x 4 features cannot fit K=2 components",
}


def expected_failures(n_components: int) -> dict[str, str]:
    extra = NOT_APPLICABLE_K2 if n_components > 1 else {}
    return {**NOT_APPLICABLE, **extra}


# Checks scikit-learn itself skips here, and why (any other skip fails the test).
EXPECTED_SKIPS = {
    "check_array_api_input": "needs SCIPY_ARRAY_API=1 and an array-API library; numpy-only here",
}


# MixtureOfRegressions does not inherit from BaseEstimator (import bayes_mlr must not import
# scikit-learn); check_estimator warns about that once, which is expected here. Its data are
# uniform noise with small integer targets, on which EM rightly warns that a fit is degenerate
# or slow to converge: those warnings are about the data, not the API.
@pytest.mark.filterwarnings("ignore:Estimator MixtureOfRegressions does not inherit:UserWarning")
@pytest.mark.filterwarnings("ignore::bayes_mlr.DegenerateFitWarning")
@pytest.mark.filterwarnings("ignore::bayes_mlr.ConvergenceWarning")
@pytest.mark.parametrize(
    "n_components",
    [
        1,  # a single component: ordinary least squares with an estimated sigma
        2,  # the default, a true mixture
    ],
)
def test_check_estimator(n_components):
    expected = expected_failures(n_components)
    results = check_estimator(
        MixtureOfRegressions(n_components),
        expected_failed_checks=expected,
        on_skip=None,  # check_array_api_input skips without SCIPY_ARRAY_API
        on_fail=None,
    )
    failed = {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    assert failed == {}
    # A skipped check is not a pass: only the declared ones may skip, each for its reason.
    skipped = {r["check_name"]: str(r["exception"]) for r in results if r["status"] == "skipped"}
    unexpected = {name: why for name, why in skipped.items() if name not in EXPECTED_SKIPS}
    assert unexpected == {}, unexpected
    xfailed = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert xfailed <= set(expected)
    # Every check scikit-learn runs on a regressor was run (about 59 in scikit-learn 1.9).
    assert len(results) > 50


def test_tags_say_regressor():
    model = MixtureOfRegressions()
    tags = get_tags(model)
    assert is_regressor(model) and tags.estimator_type == "regressor"
    assert tags.target_tags.required and tags.target_tags.single_output
    assert not tags.input_tags.sparse and not tags.input_tags.allow_nan
    assert not hasattr(model, "decision_function") and not hasattr(model, "predict_proba")


def test_not_fitted_error_is_also_sklearns():
    model = MixtureOfRegressions()
    with pytest.raises(SklearnNotFittedError) as info:
        model.predict(np.ones((3, 1)))
    assert isinstance(info.value, NotFittedError)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(model)
    # pickles (e.g. across joblib workers) as the plain bayes_mlr error
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is NotFittedError and str(again) == str(info.value)
    data = make_data(200, seed=1)
    check_is_fitted(model.fit(data.X, data.y))


# ---------------------------------------------------------------------------------------------
# clone, pickle, Pipeline, GridSearchCV
# ---------------------------------------------------------------------------------------------


def test_clone_copies_parameters_not_fit():
    init = {"coef": [[1.0], [-1.0]]}
    model = MixtureOfRegressions(2, variance="shared", init=init, n_init=3, random_state=5)
    data = make_data(300, seed=2)
    model.fit(data.X, data.y)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert copy.init is not model.init  # parameters are deep-copied, not shared
    assert not hasattr(copy, "result_") and not hasattr(copy, "coef_")
    np.testing.assert_allclose(copy.fit(data.X, data.y).coef_, model.coef_, rtol=1e-12)


def test_pickle_round_trip_keeps_predictions():
    data = make_data(300, seed=3)
    model = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(data.X), model.predict(data.X))
    np.testing.assert_array_equal(
        again.score_samples(data.X, data.y), model.score_samples(data.X, data.y)
    )


def test_pipeline_with_standard_scaler():
    data = make_data(800, TRUTH_3, seed=3)
    X = data.X * [100.0, 0.01] + [5.0, -3.0]  # features on very different scales
    pipe = make_pipeline(StandardScaler(), MixtureOfRegressions(3, random_state=0))
    pipe.fit(X, data.y)
    direct = MixtureOfRegressions(3, random_state=0).fit(X, data.y)
    # A mixture of regressions with intercepts is equivariant under affine maps of X, and EM
    # standardises internally, so scaling first changes nothing beyond rounding.
    np.testing.assert_allclose(pipe.predict(X), direct.predict(X), rtol=1e-7, atol=1e-9)
    fitted = pipe[-1]
    assert fitted.log_likelihood_ == pytest.approx(direct.log_likelihood_, rel=1e-9)
    np.testing.assert_allclose(
        fitted.coef_ / StandardScaler().fit(X).scale_, direct.coef_, rtol=1e-6
    )
    assert pipe.score(X, data.y) == pytest.approx(direct.score(X, data.y), rel=1e-9)
    # fit parameters are routed to the step by name
    sw = np.random.default_rng(0).integers(1, 3, size=X.shape[0])
    pipe.fit(X, data.y, mixtureofregressions__sample_weight=sw)
    assert pipe[-1]._fit_sample_weight is not None


def _mean_log_likelihood(estimator, X, y):
    """Held-out log-likelihood per observation: the score that can choose K."""
    return estimator.log_likelihood(X, y) / len(y)


# K=4 on three-component data has a redundant component, which EM approaches slowly.
@pytest.mark.filterwarnings("ignore::bayes_mlr.ConvergenceWarning")
def test_grid_search_over_n_components_finds_the_truth():
    data = make_data(900, TRUTH_3, seed=4)
    search = GridSearchCV(
        MixtureOfRegressions(random_state=0, n_init=4),
        {"n_components": [1, 2, 3, 4]},
        scoring=_mean_log_likelihood,
        cv=KFold(3, shuffle=True, random_state=0),
    )
    search.fit(data.X, data.y)
    # Three well separated components: 1 and 2 are far worse; 4 may tie 3 but must not win
    # by more than noise, so accept 3 or a 4 within 0.01 nats per observation.
    scores = dict(zip([1, 2, 3, 4], search.cv_results_["mean_test_score"], strict=True))
    assert scores[3] > scores[2] + 0.1 > scores[1] + 0.2
    assert search.best_params_["n_components"] == 3 or scores[4] - scores[3] < 0.01
    assert search.best_estimator_.n_components == search.best_params_["n_components"]


def test_default_scoring_is_r2_in_cross_validation():
    data = make_data(600, TRUTH_2, seed=5)
    cv = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(MixtureOfRegressions(2, random_state=0), data.X, data.y, cv=cv)
    assert scores.shape == (3,)
    # Against the oracle: the R² of the true mixture mean Σ π_j (a_j + b_j·x) on each test
    # fold. The lines cross, so that mean is nearly flat and R² about 0 (oracle -0.006 ..
    # -0.009; fitted -0.035 .. 0.000): predicting either component's line instead would give
    # an R² far below 0.
    truth = TRUTH_2
    oracle_mean = truth["weights"] @ (truth["intercept"][:, None] + truth["coef"] @ data.X.T)
    oracle = [r2_score(data.y[test], oracle_mean[test]) for _, test in cv.split(data.X)]
    np.testing.assert_allclose(scores, oracle, atol=0.05)


# ---------------------------------------------------------------------------------------------
# score, invariances, sample weights
# ---------------------------------------------------------------------------------------------


def test_score_is_r2_like_sklearn():
    data = make_data(400, TRUTH_3, seed=6)
    model = MixtureOfRegressions(3, random_state=0).fit(data.X, data.y)
    pred = model.predict(data.X)
    assert model.score(data.X, data.y) == pytest.approx(r2_score(data.y, pred), rel=1e-12)
    sw = np.random.default_rng(1).uniform(0.1, 2.0, size=400)
    assert model.score(data.X, data.y, sample_weight=sw) == pytest.approx(
        r2_score(data.y, pred, sample_weight=sw), rel=1e-12
    )


def test_score_of_a_constant_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 1))
    model = MixtureOfRegressions(1, random_state=0).fit(X, 2.0 * X[:, 0] + rng.normal(size=40))
    const = np.full(40, 3.0)
    assert model.score(X, const) == r2_score(const, model.predict(X)) == 0.0


def test_predict_and_score_samples_invariant_to_order_and_subsets():
    data = make_data(300, TRUTH_2, seed=7)
    model = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)
    perm = np.random.default_rng(0).permutation(300)
    full_pred, full_ll = model.predict(data.X), model.score_samples(data.X, data.y)
    np.testing.assert_allclose(model.predict(data.X[perm]), full_pred[perm], rtol=1e-12)
    np.testing.assert_allclose(
        model.score_samples(data.X[perm], data.y[perm]), full_ll[perm], rtol=1e-12
    )
    batches = np.array_split(np.arange(300), 7)
    np.testing.assert_allclose(
        np.concatenate([model.predict(data.X[b]) for b in batches]), full_pred, rtol=1e-12
    )
    np.testing.assert_allclose(
        np.concatenate([model.score_samples(data.X[b], data.y[b]) for b in batches]),
        full_ll,
        rtol=1e-12,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_integer_weights_equal_repeated_rows(seed):
    # From the same start (random starts depend on the row count, so they would differ), weight k
    # is k copies of the row and weight 0 removes it: EM follows the same path to ~1e-12.
    data = make_data(200, TRUTH_2, seed=seed)
    sw = np.random.default_rng(seed).integers(0, 4, size=200)
    start = {"coef": [[1.0], [-0.5]], "intercept": [-1.0, 1.0]}
    weighted = MixtureOfRegressions(2, init=start).fit(data.X, data.y, sample_weight=sw)
    repeated = MixtureOfRegressions(2, init=start).fit(
        np.repeat(data.X, sw, axis=0), np.repeat(data.y, sw)
    )
    assert weighted.n_iter_ == repeated.n_iter_
    for name in ("weights_", "intercept_", "coef_", "sigma_"):
        np.testing.assert_allclose(
            getattr(weighted, name), getattr(repeated, name), rtol=1e-9, atol=1e-12
        )
    np.testing.assert_allclose(weighted.predict(data.X), repeated.predict(data.X), rtol=1e-9)


def test_predict_refuses_wrong_width_with_sklearn_wording():
    data = make_data(300, TRUTH_3, seed=8)
    model = MixtureOfRegressions(3, random_state=0).fit(data.X, data.y)
    with pytest.raises(ValueError, match="X has 1 features, but MixtureOfRegressions is expecting"):
        model.predict(data.X[:, [0]])
    with pytest.raises(ValueError, match="Reshape your data"):
        model.predict(data.X[0])
    one = MixtureOfRegressions(2, random_state=0).fit(data.X[:, :1], data.y)
    assert one.predict(data.X[:5, 0]).shape == (5,)  # 1-D X: a single feature, as in fit
