"""Tests of bayes_mlr.core.labels: matching posterior draws to the EM labelling (numpy only)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bayes_mlr.core.labels import apply_permutations, component_features, match_components

REFERENCE = {
    "weights": np.array([0.2, 0.3, 0.5]),
    "intercept": np.array([-2.0, 0.0, 2.0]),
    "coef": np.array([[1.0, 0.5], [-1.0, 0.0], [0.3, -2.0]]),
    "sigma": np.array([0.5, 1.0, 0.7]),
}
SCALE = {
    "weights": np.full(3, 0.02),
    "intercept": np.full(3, 0.05),
    "coef": np.full((3, 2), 0.05),
    "sigma": np.full(3, 0.03),
}


def _random_perms(rng: np.random.Generator, shape: tuple[int, ...], K: int) -> np.ndarray:
    return np.argsort(rng.random((*shape, K)), axis=-1)


def _noisy_draws(rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Draws scattered around REFERENCE by one standard error, in the reference labelling."""
    return {
        name: value + SCALE[name] * rng.normal(size=(*shape, *value.shape))
        for name, value in REFERENCE.items()
    }


def test_component_features_layout():
    feats = component_features(REFERENCE, 3)
    # weights, intercept, 2 coefs, sigma per component, in the order of the mapping.
    assert feats.shape == (3, 5)
    np.testing.assert_array_equal(feats[:, 0], REFERENCE["weights"])
    np.testing.assert_array_equal(feats[:, 2:4], REFERENCE["coef"])
    np.testing.assert_array_equal(feats[:, 4], REFERENCE["sigma"])


def test_component_features_skips_shared_sigma_and_broadcasts_batches():
    draws = {"coef": np.zeros((4, 7, 3, 2)), "sigma": np.ones((4, 7)), "weights": np.ones(3)}
    feats = component_features(draws, 3)
    # The shared (scalar per draw) sigma cannot tell components apart and is left out.
    assert feats.shape == (4, 7, 3, 3)


def test_component_features_needs_component_parameters():
    with pytest.raises(ValueError, match="no component-indexed"):
        component_features({"sigma": np.ones((5,))}, 3)


def test_reference_itself_keeps_its_labels():
    ref = component_features(REFERENCE, 3)
    perms = match_components(ref[None], ref, component_features(SCALE, 3))
    np.testing.assert_array_equal(perms, [[0, 1, 2]])


def test_synthetically_permuted_draws_are_recovered():
    rng = np.random.default_rng(0)
    shape = (4, 250)  # (chain, draw)
    draws = _noisy_draws(rng, shape)
    truth = _random_perms(rng, shape, 3)
    scrambled = {name: apply_permutations(value, truth, axis=2) for name, value in draws.items()}
    perms = match_components(
        component_features(scrambled, 3),
        component_features(REFERENCE, 3),
        component_features(SCALE, 3),
    )
    aligned = {name: apply_permutations(v, perms, axis=2) for name, v in scrambled.items()}
    for name in draws:
        np.testing.assert_array_equal(aligned[name], draws[name])
    # About 5/6 of the random permutations were not the identity.
    assert 0.7 < np.any(truth != np.arange(3), axis=-1).mean() < 0.95


def test_hungarian_matches_brute_force():
    """The assignment minimises the total standardised cost over all K! relabellings."""
    rng = np.random.default_rng(1)
    K, m = 4, 3
    reference = rng.normal(size=(K, m))
    scale = rng.uniform(0.5, 2.0, size=(K, m))
    draws = rng.normal(size=(50, K, m)) * 2
    perms = match_components(draws, reference, scale)
    for d in range(draws.shape[0]):

        def cost(perm, d=d):
            return (((draws[d, list(perm)] - reference) / scale) ** 2).sum()

        best = min(itertools.permutations(range(K)), key=cost)
        assert cost(perms[d]) == pytest.approx(cost(best), rel=1e-12)


def test_apply_permutations_on_inner_axis():
    values = np.arange(2 * 3 * 3 * 2).reshape(2, 3, 3, 2)  # (chain, draw, component, feature)
    perms = np.array([[[2, 0, 1]] * 3, [[0, 1, 2]] * 3])
    out = apply_permutations(values, perms, axis=2)
    np.testing.assert_array_equal(out[0, :, 0], values[0, :, 2])
    np.testing.assert_array_equal(out[0, :, 1], values[0, :, 0])
    np.testing.assert_array_equal(out[1], values[1])


def test_apply_permutations_checks_shapes():
    with pytest.raises(ValueError, match="leading dimensions"):
        apply_permutations(np.zeros((2, 5, 3)), np.zeros((2, 4, 3), dtype=int), axis=2)


@pytest.mark.parametrize(
    "scale",
    [
        np.zeros((3, 5)),  # zero scale: distances undefined
        np.full((3, 5), np.nan),  # missing standard errors
    ],
)
def test_match_components_rejects_bad_scale(scale):
    ref = component_features(REFERENCE, 3)
    with pytest.raises(ValueError, match="finite and positive"):
        match_components(ref[None], ref, scale)


def test_match_components_rejects_shape_mismatch():
    ref = component_features(REFERENCE, 3)
    with pytest.raises(ValueError, match="components x features"):
        match_components(np.zeros((5, 2, 5)), ref, np.ones((3, 5)))


def test_cost_gap_is_the_second_best_minus_the_best_assignment():
    from bayes_mlr.core.labels import cost_gap

    # cost[j, k]: identity costs 1 + 2 = 3, the swap 5 + 4 = 9
    cost = np.array([[[1.0, 5.0], [4.0, 2.0]]])
    assert cost_gap(cost).tolist() == [6.0]
    # three components: all 6 assignments enumerated
    rng = np.random.default_rng(0)
    c3 = rng.random((4, 3, 3))
    totals = np.array(
        [[sum(c[p[k], k] for k in range(3)) for p in itertools.permutations(range(3))] for c in c3]
    )
    expected = np.sort(totals, axis=1)[:, 1] - np.sort(totals, axis=1)[:, 0]
    np.testing.assert_allclose(cost_gap(c3), expected, rtol=1e-12)
    assert cost_gap(np.zeros((2, 1, 1))).tolist() == [np.inf, np.inf]
    assert np.isnan(cost_gap(np.zeros((1, 7, 7)))).all()
