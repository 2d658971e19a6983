"""bayes_mlr.bayes.sparse: the posterior of the number of filled components (sparse finite mixture,
Gibbs sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_mlr import posterior_n_components, simulate
from bayes_mlr.bayes.sparse import prior_n_filled
from bayes_mlr.simulate import default_truth


@pytest.mark.parametrize("K", [2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_k_plus_is_recovered(K, seed):
    # well-separated components (default_truth), n = 300, K_max = 6. Measured: the true K+
    # gets posterior probability 0.985-0.994 for K = 2, 3, 4 and seeds 0, 1 (1000 draws)
    data = simulate(300, **default_truth(K), random_state=seed)
    result = posterior_n_components(data.X, data.y, 6, draws=600, tune=300, random_state=seed)
    assert result.mode == K
    assert result.probabilities[K] > 0.8
    assert result.probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    assert result.probabilities.index.name == "K+"
    assert result.n_filled.shape == (2, 600)
    post = result.posterior["posterior"]
    assert post["coef"].dims == ("chain", "draw", "component", "feature")
    assert post.sizes["component"] == 6
    # the superfluous components are nearly empty: their weights sum to little
    sorted_w = np.sort(post["weights"].values, axis=-1)
    assert float(np.median(sorted_w[..., : 6 - K].sum(axis=-1))) < 0.05


def test_the_prior_on_k_plus_that_e0_implies():
    # e0 = 1 (uniform weights), n = 1000, K = 3: every component gets rows almost surely
    uniform = prior_n_filled(1000, 3, 1.0, n_draws=2000)
    assert uniform.index.tolist() == [3] or uniform[3] > 0.99
    # a tiny e0 puts most prior mass on one filled component (measured 0.73 for e0 = 0.01,
    # K = 6, n = 300): the sparse prior is conservative about adding components
    sparse = prior_n_filled(300, 6, 0.01, n_draws=5000)
    assert sparse.sum() == pytest.approx(1.0)
    assert 0.6 < sparse[1] < 0.85 and sparse.idxmax() == 1
    # a Gamma(10, 60) hyperprior on e0 (mean 1/6) fills more components a priori
    assert prior_n_filled(300, 6, "gamma", n_draws=5000)[1] < sparse[1]


def test_e0_with_a_hyperprior_also_recovers_k():
    data = simulate(300, **default_truth(3), random_state=2)
    result = posterior_n_components(
        data.X, data.y, 6, e0="gamma", draws=600, tune=300, random_state=0
    )
    assert result.mode == 3
    e0 = result.posterior["posterior"]["e0"].values
    assert np.all(e0 > 0) and e0.std() > 0  # it moved
    assert "Posterior of the number of filled components" in str(result)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_components": 1}, ValueError, "max_components must be >= 2"),
        ({"max_components": 2.5}, TypeError, "max_components must be an integer"),
        ({"e0": 0.0}, ValueError, "e0 must be a number in"),
        ({"e0": "uniform"}, ValueError, "e0 must be a number in"),
        ({"draws": 0}, ValueError, "draws must be an integer >= 1"),
        ({"variance": "shared"}, ValueError, "one sigma per component"),
    ],
)
def test_bad_settings_are_refused(kwargs, error, match):
    data = simulate(50, **default_truth(2), random_state=0)
    with pytest.raises(error, match=match):
        posterior_n_components(data.X, data.y, **kwargs)
