"""EM over Dask arrays: the same answer as in memory, lazily, on threads and on a cluster."""

from __future__ import annotations

import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

from bayes_mlr import MixtureOfRegressions, fit_em, simulate  # noqa: E402
from tests.conftest import TRUTH_3  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return simulate(6000, **TRUTH_3, random_state=3)


@pytest.mark.parametrize(
    ("init", "chunks"),
    [("auto", 1000), ("auto", 6000), ("random", 2500), ("subsets", 1500)],
)
def test_dask_fit_equals_in_memory_fit(data, init, chunks):
    # Every Dask pass has scheduling overhead: few starts and iterations keep this quick,
    # and tol=0 makes both runs do exactly the same number of iterations.
    kw = {"init": init, "n_init": 2, "max_iter": 40, "tol": 0.0, "random_state": 11}
    ref = fit_em(data.X, data.y, 3, **kw)
    res = fit_em(
        da.from_array(data.X, chunks=(chunks, 1)), da.from_array(data.y, chunks=chunks), 3, **kw
    )
    # Only the order of floating-point sums differs: 1e-9 relative is the contract.
    assert res.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-9)
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-6)
    assert res.n_iter == ref.n_iter


@pytest.mark.parametrize("variance", ["shared", "fixed"])
def test_dask_with_sample_weight_and_variance_modes(data, variance):
    w = np.random.default_rng(0).integers(0, 3, size=data.y.size).astype(float)
    kw = {"variance": variance, "sigma": 0.6 if variance == "fixed" else None, "random_state": 2}
    ref = fit_em(data.X, data.y, 3, sample_weight=w, **kw)
    res = fit_em(
        da.from_array(data.X, chunks=1500),
        da.from_array(data.y, chunks=1500),
        3,
        sample_weight=da.from_array(w, chunks=1500),
        **kw,
    )
    assert res.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-9)
    assert res.n_obs == w.sum()


def test_dask_does_not_import_on_plain_import():
    import subprocess

    code = "import sys, bayes_mlr; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dask_bad_input_is_refused_before_fitting(data):
    X = data.X.copy()
    X[17, 1] = np.nan
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        fit_em(da.from_array(X, chunks=1000), da.from_array(data.y, chunks=1000), 3)
    with pytest.raises(ValueError, match="different lengths"):
        fit_em(da.from_array(data.X, chunks=1000), da.from_array(data.y[:-1], chunks=1000), 3)
    with pytest.raises(TypeError, match="must be numeric"):
        fit_em(da.from_array(np.array([["a"]] * 10)), da.from_array(np.ones(10)), 1)


def test_estimator_with_dask_dataframe_keeps_feature_names(data):
    import pandas as pd

    df = pd.DataFrame(data.X, columns=["size", "age"])
    ddf = dd.from_pandas(df, npartitions=4)
    ys = dd.from_pandas(pd.Series(data.y, name="price"), npartitions=4)
    model = MixtureOfRegressions(3, random_state=0).fit(ddf, ys)
    ref = MixtureOfRegressions(3, random_state=0).fit(df, data.y)
    assert list(model.feature_names_in_) == ["size", "age"]
    assert model.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-9)
    # Block sums in another order differ by rounding, which can move the stopping iteration:
    # predictions (of order 1) then agree to about 1e-9 absolute, also where they cross 0.
    np.testing.assert_allclose(model.predict(df), ref.predict(df), rtol=1e-6, atol=1e-7)


def test_lazily_generated_blocks(data):
    """Data produced block by block by map_blocks (never whole in memory) fit as usual."""

    def block(block_id=None, rows=2000):
        d = simulate(rows, **TRUTH_3, random_state=block_id[0])
        return np.column_stack([d.X, d.y])

    Zd = da.map_blocks(block, dtype=float, chunks=((2000,) * 4, (3,)))
    res = fit_em(Zd[:, :2], Zd[:, 2], 3, random_state=0)
    Z = Zd.compute()
    ref = fit_em(Z[:, :2], Z[:, 2], 3, random_state=0)
    assert res.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-9)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # distributed's own start-up notices
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_same_fit_on_a_distributed_local_cluster(data):
    distributed = pytest.importorskip("distributed")
    ref = fit_em(data.X, data.y, 3, random_state=5)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        res = fit_em(
            da.from_array(data.X, chunks=1500),
            da.from_array(data.y, chunks=1500),
            3,
            random_state=5,
        )
    assert res.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-9)


def test_standard_errors_of_a_dask_fit_are_summed_chunk_by_chunk(data):
    w = np.random.default_rng(1).integers(1, 3, size=data.y.size).astype(float)
    ref = MixtureOfRegressions(3, random_state=0).fit(data.X, data.y, sample_weight=w)
    lazy = MixtureOfRegressions(3, random_state=0).fit(
        da.from_array(data.X, chunks=700),
        da.from_array(data.y, chunks=700),
        sample_weight=da.from_array(w, chunks=700),
    )
    assert isinstance(lazy._fit_X, da.Array)  # the training data stay lazy
    for name, se in ref.standard_errors_.items():
        # the information is a sum over rows: only summation order differs
        np.testing.assert_allclose(lazy.standard_errors_[name], se, rtol=1e-9)


@pytest.fixture(scope="module")
def frame(data):
    import pandas as pd

    rng = np.random.default_rng(4)
    return pd.DataFrame(
        {
            "size": data.X[:, 0],
            "age": data.X[:, 1],
            "region": np.where(np.arange(data.y.size) % 3 == 0, "north", "south"),
            "w": rng.integers(1, 3, size=data.y.size).astype(float),
            "price": data.y,
        }
    )


def test_formula_over_a_dask_dataframe_equals_the_pandas_fit(frame):
    formula = "price ~ size + age + region"
    ref = MixtureOfRegressions.from_formula(formula, frame, 3, sample_weight="w", random_state=0)
    lazy = MixtureOfRegressions.from_formula(
        formula, dd.from_pandas(frame, npartitions=4), 3, sample_weight="w", random_state=0
    )
    assert isinstance(lazy._fit_X, da.Array)  # encoded partition by partition, never gathered
    assert list(lazy.feature_names_in_) == list(ref.feature_names_in_)
    assert lazy.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-9)
    np.testing.assert_allclose(lazy.predict(frame), ref.predict(frame), rtol=1e-6, atol=1e-8)


def test_formula_over_dask_refuses_what_it_cannot_encode_consistently(frame):
    from bayes_mlr.formula import FormulaError

    late = frame.assign(region=np.where(np.arange(len(frame)) < 3000, "north", "south"))
    with pytest.raises(FormulaError, match="cannot be encoded like the first one"):
        MixtureOfRegressions.from_formula(
            "price ~ size + region", dd.from_pandas(late, npartitions=4), 2
        )
    with pytest.raises(FormulaError, match="na_action='drop' is not supported for Dask"):
        MixtureOfRegressions.from_formula(
            "price ~ size", dd.from_pandas(frame, npartitions=2), 2, na_action="drop"
        )


# --------------------------------------------------------------------------------------------
# Saving a model fitted on Dask arrays: chunk by chunk, and lazy again on loading
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_a_dask_fit_saves_chunk_by_chunk_and_loads_lazily(data, tmp_path, monkeypatch, weighted):
    import json

    from bayes_mlr.workflow.io import data_hash

    w = np.random.default_rng(1).integers(1, 3, size=data.y.size).astype(float)
    sw = w if weighted else None
    X = da.from_array(data.X, chunks=(1500, 1))  # data_hash joins column chunks row by row
    y = da.from_array(data.y, chunks=1500)
    dask_sw = da.from_array(w, chunks=1500) if weighted else None
    model = MixtureOfRegressions(3, n_init=2, random_state=0).fit(X, y, sample_weight=dask_sw)
    in_memory = MixtureOfRegressions(3, n_init=2, random_state=0).fit(
        data.X, data.y, sample_weight=sw
    )
    assert data_hash(X, y) == data_hash(data.X, data.y)
    # Saving must never turn a whole Dask array into one numpy array.
    with monkeypatch.context() as m:
        m.setattr(type(X), "__array__", lambda *a, **k: pytest.fail("materialised a Dask array"))
        model.save(tmp_path / "dask")
    in_memory.save(tmp_path / "numpy")
    saved = json.loads((tmp_path / "dask" / "model.json").read_text())["data"]
    # The same data give the same (content-addressed) data file either way.
    numpy_saved = json.loads((tmp_path / "numpy" / "model.json").read_text())["data"]
    assert saved["file"] == numpy_saved["file"] and saved["sha256"] == numpy_saved["sha256"]
    assert saved["row_chunks"] == [1500] * 4

    loaded = MixtureOfRegressions.load(tmp_path / "dask")
    assert isinstance(loaded._fit_X, da.Array) and loaded._fit_X.chunks[0] == (1500,) * 4
    np.testing.assert_array_equal(loaded._fit_X.compute(), data.X)
    np.testing.assert_array_equal(loaded._fit_y.compute(), data.y)
    if weighted:
        np.testing.assert_array_equal(loaded._fit_sample_weight.compute(), w)
    else:
        assert loaded._fit_sample_weight is None
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    # Everything that needs the training data works on the lazy copy.
    for name, se in model.standard_errors_.items():
        np.testing.assert_allclose(loaded.standard_errors_[name], se, rtol=1e-12)
    assert loaded.bic(loaded._fit_X, loaded._fit_y, sample_weight=loaded._fit_sample_weight) == (
        pytest.approx(model.bic(X, y, sample_weight=dask_sw), rel=1e-12)
    )
    # Saving the loaded model again, over its own data file, keeps it loadable.
    loaded.save(tmp_path / "dask")
    again = MixtureOfRegressions.load(tmp_path / "dask")
    np.testing.assert_array_equal(again._fit_X.compute(), data.X)


def test_a_lazily_saved_data_file_that_was_altered_is_refused(data, tmp_path):
    import h5py

    X = da.from_array(data.X, chunks=(2000, 1))
    y = da.from_array(data.y, chunks=2000)
    MixtureOfRegressions(2, n_init=1, random_state=0).fit(X, y).save(tmp_path)
    (data_file,) = tmp_path.glob("data-*.nc")
    with h5py.File(data_file, "r+") as f:
        f["y"][3] += 1.0
    with pytest.raises(ValueError, match="variable 'y' differs"):
        MixtureOfRegressions.load(tmp_path)


def test_a_dask_fit_reports_progress_pass_by_pass(data):
    reports = []
    res = fit_em(
        da.from_array(data.X, chunks=2000),
        da.from_array(data.y, chunks=2000),
        3,
        init="random",
        n_init=1,
        max_iter=5,
        tol=0.0,
        random_state=0,
        callback=reports.append,
    )
    assert [r.n_iter for r in reports] == [1, 2, 3, 4, 5, 5] and reports[-1].done
    assert reports[-1].log_likelihood == pytest.approx(res.log_likelihood, rel=1e-12)
