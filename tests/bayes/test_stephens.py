"""bayes_mlr.bayes.stephens: Stephens' KL relabelling on classification probabilities (numpy only;
tests/bayes/test_model.py runs it on sampled posteriors)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.bayes import stephens
from bayes_mlr.bayes.stephens import classification_probabilities, stephens_permutations
from tests.conftest import TRUTH_3


def test_classification_probabilities_are_the_responsibilities():
    data = simulate(300, **TRUTH_3, random_state=0)
    model = MixtureOfRegressions(3, random_state=0).fit(data.X, data.y)
    values = {
        name: np.asarray(getattr(model, f"{name}_"))[None]
        for name in ("weights", "intercept", "coef", "sigma")
    }
    P = classification_probabilities(data.X, data.y, values)
    # Bayes' rule twice, in two code paths: equal to rounding
    np.testing.assert_allclose(P[0], model.responsibilities(data.X, data.y), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_randomly_permuted_draws_are_put_back_in_one_labelling(seed):
    rng = np.random.default_rng(seed)
    S, n, K = 200, 60, 3
    base = rng.dirichlet(np.full(K, 0.3), size=n)  # (n, K): confident classifications
    noisy = base[None] + 0.02 * rng.random((S, n, K))
    noisy /= noisy.sum(axis=-1, keepdims=True)
    true = np.array([rng.permutation(K) for _ in range(S)])  # draw s shows label j as true[s, j]
    P = np.empty_like(noisy)
    for s in range(S):
        P[s][:, true[s]] = noisy[s]
    start = np.tile(np.arange(K), (S, 1))  # no prior alignment at all
    perms, n_iter, converged = stephens_permutations(P, start)
    assert converged and n_iter <= 10
    aligned = np.take_along_axis(P, perms[:, None, :], axis=2)
    # every draw now in one labelling: the same as draw 0's, up to the noise
    assert np.max(np.abs(aligned - aligned[0])) < 0.05
    # and the permutations are the true ones up to one global relabelling
    relative = np.array([np.argsort(true[s])[perms[s]] for s in range(S)])
    assert (relative == relative[0]).all()


def test_a_good_start_is_kept():
    rng = np.random.default_rng(1)
    P = rng.dirichlet([0.2, 0.2], size=(50, 40))
    P = np.repeat(P[:1], 50, axis=0)  # identical draws: the identity is optimal
    perms, n_iter, converged = stephens_permutations(P, np.tile([0, 1], (50, 1)))
    assert converged and n_iter == 1
    np.testing.assert_array_equal(perms, np.tile([0, 1], (50, 1)))


def test_initial_permutations_must_fit():
    with pytest.raises(ValueError, match="initial must have shape"):
        stephens_permutations(np.full((4, 5, 2), 0.5), np.zeros((4, 3), dtype=int))


# --------------------------------------------------------------------------------------------
# Structured models: classification probabilities per group
# --------------------------------------------------------------------------------------------


def _structured_values(rng, S=3, K=2, p=2, r=1):
    return {
        "weights": rng.dirichlet(np.ones(K), size=S),
        "intercept": rng.normal(size=(S, K)),
        "coef": rng.normal(size=(S, K, p)),
        "sigma": rng.uniform(0.5, 1.5, size=(S, K)),
        "concomitant_intercept": np.column_stack([np.zeros(S), rng.normal(size=(S, K - 1))]),
        "concomitant_coef": np.concatenate(
            [np.zeros((S, 1, r)), rng.normal(size=(S, K - 1, r))], axis=1
        ),
    }


def test_group_probabilities_without_structure_are_the_plain_ones():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 2)), rng.normal(size=20)
    values = _structured_values(rng)
    np.testing.assert_allclose(
        stephens.group_classification_probabilities(X, y, values),
        stephens.classification_probabilities(X, y, values),
        rtol=1e-12,
    )


def test_group_probabilities_are_bayes_rule_per_group():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(12, 2)), rng.normal(size=12)
    groups = np.repeat(np.arange(4), 3)[rng.permutation(12)]
    W = rng.normal(size=(4, 1))
    values = _structured_values(rng)
    P = stephens.group_classification_probabilities(X, y, values, groups=groups, concomitant=W)
    assert P.shape == (3, 4, 2)
    # brute force with scipy, draw by draw and group by group
    for s in range(3):
        for g in range(4):
            rows = groups == g
            eta = values["concomitant_intercept"][s] + values["concomitant_coef"][s] @ W[g]
            log_joint = [
                eta[k]
                - logsumexp(eta)
                + stats.norm(
                    values["intercept"][s, k] + X[rows] @ values["coef"][s, k],
                    values["sigma"][s, k],
                )
                .logpdf(y[rows])
                .sum()
                for k in range(2)
            ]
            expected = np.exp(np.array(log_joint) - logsumexp(log_joint))
            np.testing.assert_allclose(P[s, g], expected, rtol=1e-10)
