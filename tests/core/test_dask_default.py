"""The default fit through Dask on more rows than the scouting subsample threshold.

On more than ``2 * SHORT_RUN_ROWS`` rows the default start strategy (``init="auto"``) scouts on
a random subsample drawn through Dask (``DaskData.take``), then continues the best scouts to
convergence over every chunk. ``tests/core/test_dask_data.py`` covers smaller data, where every
start runs on all rows; this file covers the subsampled path that ``bench_dask`` measures.
"""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

from bayes_mlr import MixtureOfRegressions, fit_em, simulate  # noqa: E402
from bayes_mlr.core import dask_data  # noqa: E402
from bayes_mlr.core.em import SHORT_RUN_ROWS  # noqa: E402
from tests.conftest import TRUTH_3  # noqa: E402

N_ROWS = 2 * SHORT_RUN_ROWS + 10_000  # above the threshold: the subsampled default path
TOL = 1e-8  # fit_em's default stopping rule: gain per observation


@pytest.fixture(scope="module")
def data():
    return simulate(N_ROWS, **TRUTH_3, random_state=7)


@pytest.fixture
def takes(monkeypatch):
    """Rows requested through ``DaskData.take`` (the scouting subsample), call by call."""
    calls: list[int] = []
    original = dask_data.DaskData.take

    def take(self, rows):
        calls.append(len(rows))
        return original(self, rows)

    monkeypatch.setattr(dask_data.DaskData, "take", take)
    return calls


def test_default_dask_fit_on_more_than_40000_rows_equals_the_in_memory_fit(data, takes):
    assert N_ROWS > 40_000 and N_ROWS > 2 * SHORT_RUN_ROWS
    ref = fit_em(data.X, data.y, 3, random_state=5)
    res = fit_em(
        da.from_array(data.X, chunks=(12_500, 2)),
        da.from_array(data.y, chunks=12_500),
        3,
        random_state=5,
    )
    # The subsample was drawn through Dask, once, with SHORT_RUN_ROWS rows.
    assert takes == [SHORT_RUN_ROWS]
    assert res.converged and ref.converged
    assert res.n_runs == ref.n_runs and res.n_iter == ref.n_iter
    # Only the order of floating-point sums differs; EM's own tolerance (TOL per observation)
    # bounds what a stopping decision flipped by rounding could change.
    assert abs(res.log_likelihood - ref.log_likelihood) <= TOL * N_ROWS
    for name in ("weights", "intercept", "coef", "sigma"):
        np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=1e-6, atol=1e-8)
    # And the fit is right: the truth recovered to sampling error at n = 50,000.
    order = np.argsort(res.intercept)
    np.testing.assert_allclose(res.intercept[order], TRUTH_3["intercept"], atol=0.05)
    np.testing.assert_allclose(res.coef[order], TRUTH_3["coef"], atol=0.05)
    np.testing.assert_allclose(res.weights[order], TRUTH_3["weights"], atol=0.02)


def test_the_estimator_default_on_dask_input_matches_in_memory(data, takes):
    # What a user runs: the estimator with its defaults (n_init=10, init="auto").
    ref = MixtureOfRegressions(3, random_state=0).fit(data.X, data.y)
    model = MixtureOfRegressions(3, random_state=0).fit(
        da.from_array(data.X, chunks=(10_000, 2)), da.from_array(data.y, chunks=10_000)
    )
    assert takes == [SHORT_RUN_ROWS]
    assert abs(model.log_likelihood_ - ref.log_likelihood_) <= TOL * N_ROWS
    for name in ("weights_", "intercept_", "coef_", "sigma_"):  # both in the canonical order
        np.testing.assert_allclose(getattr(model, name), getattr(ref, name), rtol=1e-6, atol=1e-8)
