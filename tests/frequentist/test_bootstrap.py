"""Bootstrap standard errors with aligned labels (bayes_mlr.frequentist.bootstrap)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.frequentist import bootstrap as bootstrap_module


def fitted(seed: int, n: int = 500):
    data = simulate(
        n,
        weights=[0.6, 0.4],
        intercept=[-2.0, 2.0],
        coef=[[1.5], [-1.0]],
        sigma=[0.5, 0.7],
        random_state=seed,
    )
    return MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["parametric", "empirical"])
def test_bootstrap_agrees_with_the_observed_information(seed, kind):
    model = fitted(seed)
    boot = model.bootstrap_standard_errors(n_boot=60, kind=kind, random_state=seed)
    se = model.standard_errors_
    assert set(boot) == set(se)
    for name in se:
        assert boot[name].shape == se[name].shape and not boot[name].flags.writeable
        ratio = boot[name] / se[name]
        # 60 replicates: an SE estimate has about 9% relative sd, so a ratio within
        # [0.7, 1.4] is a loose check (measured 0.86-1.18 over these seeds)
        assert np.all((ratio > 0.7) & (ratio < 1.4)), (name, ratio)


def test_replicates_are_aligned_to_the_fit(monkeypatch):
    # Every replicate comes back with its components in reverse order: without alignment the
    # intercept SE would be about 2.8 (half the gap between -2 and 2 times sqrt 2).
    model = fitted(0)
    original_fit = MixtureOfRegressions.fit

    def reversed_fit(self, X, y, sample_weight=None):
        original_fit(self, X, y, sample_weight)
        for name in ("weights_", "intercept_", "coef_", "sigma_"):
            setattr(self, name, getattr(self, name)[::-1].copy())
        return self

    monkeypatch.setattr(MixtureOfRegressions, "fit", reversed_fit)
    boot = bootstrap_module.bootstrap_standard_errors(model, n_boot=20, random_state=0)
    monkeypatch.undo()
    assert np.all(boot["intercept"] < 0.1)
    ratio = boot["intercept"] / model.standard_errors_["intercept"]
    assert np.all((ratio > 0.6) & (ratio < 1.6))


def test_same_seed_same_result():
    model = fitted(1, 200)
    a = model.bootstrap_standard_errors(n_boot=10, random_state=4)
    b = model.bootstrap_standard_errors(n_boot=10, random_state=4)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_boot": 1}, "n_boot must be an integer >= 2"),
        ({"n_boot": 2.5}, "n_boot must be an integer >= 2"),
        ({"kind": "jackknife"}, "kind must be one of"),
    ],
)
def test_bad_arguments_fail_before_any_refit(kwargs, match, monkeypatch):
    model = fitted(0, 100)
    monkeypatch.setattr(MixtureOfRegressions, "fit", None)  # any refit would fail loudly
    with pytest.raises(ValueError, match=match):
        model.bootstrap_standard_errors(**kwargs)


def test_unfitted_model_is_refused():
    from bayes_mlr import NotFittedError

    with pytest.raises(NotFittedError):
        MixtureOfRegressions(2).bootstrap_standard_errors(n_boot=5)
