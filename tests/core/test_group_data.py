"""Rows in parts that hold whole groups (bayes_mlr.core.group_data): the structured EM over Dask
chunks equals the in-memory fit, and a group that spans chunks is refused."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.core.data import Scaler
from bayes_mlr.core.group_data import GroupedData, load_part, part_pass

da = pytest.importorskip("dask.array")


def _data(seed, n=2400, n_groups=240):
    return simulate(
        n,
        intercept=[-1.5, 1.5],
        coef=[[1.0, 0.5], [-1.0, 0.5]],
        sigma=[0.4, 0.6],
        n_groups=n_groups,
        concomitant_intercept=[0.0, 0.3],
        concomitant_coef=[[0.0], [1.5]],
        random_state=seed,
    )


def _chunks_at_group_ends(groups, n_chunks):
    """Row chunk sizes whose boundaries fall between groups (groups are sorted)."""
    ends = np.flatnonzero(np.diff(groups)) + 1
    cuts = [ends[ends.searchsorted(len(groups) * k // n_chunks)] for k in range(1, n_chunks)]
    return tuple(np.diff([0, *cuts, len(groups)]))


@pytest.mark.parametrize(
    ("seed", "kwargs"),
    [
        (0, {"shared": [1]}),  # grouped, concomitant, shared
        (1, {"variance": "shared"}),
        (2, {"shared": ["intercept"]}),
    ],
)
def test_dask_fit_equals_the_in_memory_fit(seed, kwargs):
    sim = _data(seed)
    sizes = _chunks_at_group_ends(sim.groups, 3)
    lazy_args = (
        da.from_array(sim.X, chunks=(sizes, -1)),
        da.from_array(sim.y, chunks=(sizes,)),
    )
    structure = {"groups": sim.groups, "concomitant": sim.concomitant}
    lazy_structure = {
        "groups": da.from_array(sim.groups, chunks=(sizes,)),
        "concomitant": da.from_array(sim.concomitant, chunks=(sizes, -1)),
    }
    memory = MixtureOfRegressions(2, random_state=0, **kwargs).fit(sim.X, sim.y, **structure)
    lazy = MixtureOfRegressions(2, random_state=0, **kwargs).fit(*lazy_args, **lazy_structure)
    # the same optimum (random starts differ with the chunking): EM's tolerance
    assert lazy.log_likelihood_ == pytest.approx(memory.log_likelihood_, abs=1e-5)
    np.testing.assert_allclose(lazy.coef_, memory.coef_, atol=1e-4)
    np.testing.assert_allclose(lazy.concomitant_coef_, memory.concomitant_coef_, atol=1e-3)
    for key, value in memory.standard_errors_.items():  # sums over chunks: rounding
        np.testing.assert_allclose(lazy.standard_errors_[key], value, rtol=1e-3, atol=1e-8)


def test_concomitant_without_groups_over_dask_rows():
    sim = simulate(
        2000, concomitant_intercept=[0.0, 0.2], concomitant_coef=[[0.0], [1.0]], random_state=3
    )
    X = da.from_array(sim.X, chunks=(500, -1))
    y = da.from_array(sim.y, chunks=500)
    W = da.from_array(sim.concomitant, chunks=(700, -1))  # other chunks: rechunked like X
    lazy = MixtureOfRegressions(2, random_state=0).fit(X, y, concomitant=W)
    memory = MixtureOfRegressions(2, random_state=0).fit(sim.X, sim.y, concomitant=sim.concomitant)
    assert lazy.log_likelihood_ == pytest.approx(memory.log_likelihood_, abs=1e-5)


def test_a_group_across_two_chunks_is_named():
    sim = _data(4)
    X = da.from_array(sim.X, chunks=(1000, -1))  # 1000 is inside a group here
    y = da.from_array(sim.y, chunks=1000)
    g = da.from_array(sim.groups, chunks=1000)
    assert sim.groups[999] == sim.groups[1000]
    with pytest.raises(ValueError, match=r"group \d+ has rows in Dask chunks 0 and 1"):
        MixtureOfRegressions(2, random_state=0).fit(X, y, groups=g)


def test_parts_sum_to_the_whole():
    """Statistics of two parts (whole groups each) add up to those of one part."""
    sim = _data(5, n=400, n_groups=40)
    scaler = Scaler.from_arrays(sim.X, sim.y, None, True)
    half = int(np.flatnonzero(sim.groups >= 20)[0])
    whole = GroupedData.in_memory(sim.X, sim.y, None, sim.groups, sim.concomitant, scaler)
    parts = [
        load_part(sim.X[sl], sim.y[sl], None, sim.groups[sl], sim.concomitant[sl], scaler)
        for sl in (slice(0, half), slice(half, None))
    ]
    from bayes_mlr.core.components import GaussianComponents
    from bayes_mlr.core.mixing import MultinomialLogit

    comp = GaussianComponents(
        np.zeros(3, bool), variance="component", sigma_fixed=None, sigma_floor=0.0
    )
    beta, sigma = np.array([[0.1, 0.5, 0.2], [-0.1, -0.5, 0.2]]), np.array([0.5, 0.7])
    gate = np.array([[0.0, 0.0], [0.2, 1.0]])
    args = (comp, MultinomialLogit, beta, sigma, None, gate, np.zeros(1), np.ones(1))
    one = part_pass(whole.parts[0], None, *args)
    two = [part_pass(part, None, *args) for part in parts]
    assert one[1] == pytest.approx(two[0][1] + two[1][1], rel=1e-12)
    np.testing.assert_allclose(one[2].gram, (two[0][2] + two[1][2]).gram, rtol=1e-12)
    np.testing.assert_allclose(one[0], np.vstack([two[0][0], two[1][0]]), rtol=1e-12)
    assert whole.n_groups == 40 and whole.sizes.sum() == 400


def test_a_dask_structured_fit_saves_and_loads(tmp_path):
    sim = _data(6, n=1200, n_groups=120)
    sizes = _chunks_at_group_ends(sim.groups, 2)
    model = MixtureOfRegressions(2, random_state=0).fit(
        da.from_array(sim.X, chunks=(sizes, -1)),
        da.from_array(sim.y, chunks=(sizes,)),
        groups=da.from_array(sim.groups, chunks=(sizes,)),
        concomitant=da.from_array(sim.concomitant, chunks=(sizes, -1)),
    )
    loaded = MixtureOfRegressions.load(model.save(tmp_path / "m"))
    for key, value in model.standard_errors_.items():
        np.testing.assert_allclose(loaded.standard_errors_[key], value, rtol=1e-12)
    assert loaded.n_groups_ == 120
