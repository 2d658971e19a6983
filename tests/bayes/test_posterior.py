"""bayes_mlr.bayes.posterior: which sampler ``sample_posterior`` runs."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.bayes import posterior
from tests import _bayes_helpers as h


@functools.cache
def _fitted(kind: str = "plain"):
    d = h.data()
    if kind == "plain":
        return MixtureOfRegressions(2, random_state=0).fit(d.X, d.y)
    if kind == "weights":
        w = np.random.default_rng(1).uniform(0.5, 2.0, size=d.y.size)  # not integers
        return MixtureOfRegressions(2, random_state=0).fit(d.X, d.y, sample_weight=w)
    if kind == "integer_weights":
        w = np.random.default_rng(1).integers(1, 3, size=d.y.size).astype(float)
        return MixtureOfRegressions(2, random_state=0).fit(d.X, d.y, sample_weight=w)
    if kind == "poisson":
        counts = simulate(300, **h.TRUTH, random_state=2)
        y = np.random.default_rng(3).poisson(np.exp(0.3 * counts.X[:, 0] + 1.0))
        return MixtureOfRegressions(2, family="poisson", random_state=0).fit(counts.X, y)
    if kind == "groups":
        groups = np.repeat(np.arange(d.y.size // 3), 3)
        return MixtureOfRegressions(2, random_state=0).fit(d.X, d.y, groups=groups)
    raise ValueError(kind)


@pytest.fixture
def small_threshold(monkeypatch):
    """Every test model counts as large enough for the Gibbs sampler."""
    monkeypatch.setattr(posterior, "GIBBS_AUTO_MIN_ROWS", 10)


def test_auto_is_nuts_below_the_row_threshold():
    assert h.N < posterior.GIBBS_AUTO_MIN_ROWS
    assert posterior.auto_sampler(_fitted()) == "pymc"


@pytest.mark.usefixtures("small_threshold")
def test_auto_is_gibbs_where_it_covers_the_model():
    assert posterior.auto_sampler(_fitted()) == "gibbs"
    assert posterior.auto_sampler(_fitted("integer_weights")) == "gibbs"
    # the workflow's arguments are the Gibbs sampler's too
    assert posterior.auto_sampler(_fitted(), target_accept=0.9, cores=1, starts="em") == "gibbs"


@pytest.mark.usefixtures("small_threshold")
@pytest.mark.parametrize("kind", ["weights", "poisson", "groups"])
def test_auto_is_nuts_where_gibbs_does_not_cover_the_model(kind):
    assert posterior.auto_sampler(_fitted(kind)) == "pymc"


@pytest.mark.usefixtures("small_threshold")
def test_auto_is_nuts_with_a_pymc_model_or_pymc_arguments():
    assert posterior.auto_sampler(_fitted(), pm_model=object()) == "pymc"
    assert posterior.auto_sampler(_fitted(), init="adapt_diag") == "pymc"


@pytest.mark.usefixtures("small_threshold")
def test_sample_posterior_auto_runs_the_chosen_sampler():
    idata = _fitted().sample_posterior(50, 60, 2, random_seed=1, progressbar=False)
    assert idata["posterior"].attrs["sampler"] == "gibbs"
