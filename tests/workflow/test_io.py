"""Saving and loading: exact round trips, atomic writes, no pickle, em.json."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayes_mlr
from bayes_mlr import MixtureOfRegressions, simulate
from bayes_mlr.results import EMResult
from bayes_mlr.workflow import io
from tests.conftest import TRUTH_2, TRUTH_3, make_data
from tests.workflow import families


def assert_same(a, b, where="model"):
    """Equal type and value, arrays bit for bit (dtype, shape, write flag), recursively."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, where
        assert a.shape == b.shape, where
        assert a.flags.writeable == b.flags.writeable, where
        assert a.flags.c_contiguous == b.flags.c_contiguous, where
        if a.dtype == object:
            assert a.tolist() == b.tolist(), where
        else:
            assert a.tobytes() == b.tobytes(), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            assert_same(u, v, f"{where}[{i}]")
    elif isinstance(a, EMResult):
        for name in a.__dataclass_fields__:
            assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, np.random.Generator):
        assert a.bit_generator.state == b.bit_generator.state, where
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    elif hasattr(a, "__dataclass_fields__"):  # the formula state
        for name in a.__dataclass_fields__:
            if name in ("model_spec", "response_spec"):  # formulaic specs: what encodes data
                u, v = getattr(a, name), getattr(b, name)
                assert u.formula == v.formula, where
                assert u.encoder_state == v.encoder_state, where
                assert u.transform_state == v.transform_state, where
            else:
                assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_models_identical(a, b):
    assert type(a) is type(b)
    assert list(vars(a)) == list(vars(b))
    for name in vars(a):
        assert_same(getattr(a, name), getattr(b, name), name)


def frame_of(X, names):
    return pd.DataFrame(X, columns=names)


# -- exact round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"variance": "component"},
        {"variance": "shared"},
        {"variance": "fixed", "sigma": 0.6},
        # no intercept, and a Generator as random_state (its state must come back exactly)
        {"fit_intercept": False, "random_state": np.random.default_rng(7)},
    ],
    ids=["component", "shared", "fixed", "no-intercept-generator"],
)
@pytest.mark.parametrize("with_se", [False, True], ids=["se-lazy", "se-computed"])
def test_round_trip_is_exact(tmp_path, kwargs, with_se):
    data = make_data(300, seed=1)
    X = frame_of(data.X, ["size"])  # pandas names flow into feature_names_in_
    model = MixtureOfRegressions(2, **{"random_state": 0, **kwargs}).fit(X, data.y)
    if with_se:
        _ = model.standard_errors_
    model.save(tmp_path / "m")
    loaded = MixtureOfRegressions.load(tmp_path / "m")
    assert_models_identical(model, loaded)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.feature_names == ["size"]


def test_round_trip_three_components_sample_weight_and_nan(tmp_path):
    data = make_data(600, TRUTH_3, seed=2)
    weights = np.random.default_rng(0).integers(1, 3, size=600).astype(float)
    model = MixtureOfRegressions(3, random_state=0).fit(
        frame_of(data.X, ["a", "b"]), data.y, sample_weight=weights
    )
    se = model.standard_errors_  # read-only arrays: edit copies, put back in the cache
    se["coef"] = se["coef"].copy()
    se["coef"][0, 0] = np.nan  # a singular direction is stored as NaN
    se["sigma"] = se["sigma"].copy()
    se["sigma"][1] = -0.0  # and the sign of zero survives too
    model.save(tmp_path)
    loaded = MixtureOfRegressions.load(tmp_path)
    assert_models_identical(model, loaded)
    assert np.signbit(loaded.standard_errors_["sigma"][1])


def test_loaded_model_gives_the_same_standard_errors_and_criteria(tmp_path):
    data = make_data(300)
    model = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)
    model.save(tmp_path)
    loaded = MixtureOfRegressions.load(tmp_path)
    for key, value in model.standard_errors_.items():
        assert loaded.standard_errors_[key].tobytes() == value.tobytes()
    assert loaded.bic(data.X, data.y) == model.bic(data.X, data.y)


def test_round_trip_of_a_formula_fit_encodes_new_data_alike(tmp_path):
    data = make_data(400)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": data.X[:, 0], "g": rng.choice(["a", "b", "c"], 400), "y": data.y})
    model = MixtureOfRegressions.from_formula(
        "y ~ center(x) + C(g, contr.sum) + poly(x, 2)", df, random_state=0
    )
    model.save(tmp_path)
    loaded = MixtureOfRegressions.load(tmp_path)
    assert_models_identical(model, loaded)
    assert loaded.formula_ == model.formula_
    new = df.drop(columns="y").iloc[:7]
    assert loaded.predict(new).tobytes() == model.predict(new).tobytes()


def test_unfitted_model_round_trips(tmp_path):
    model = MixtureOfRegressions(
        3, variance="shared", n_init=4, init={"coef": [[1.0], [0.0], [-1.0]]}
    )
    model.save(tmp_path)
    loaded = MixtureOfRegressions.load(tmp_path)
    assert_models_identical(model, loaded)
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_saved_files_are_json_and_netcdf(tmp_path):
    data = make_data(200)
    MixtureOfRegressions(2, random_state=0).fit(data.X, data.y).save(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[1] == "model.json"
    assert names[0].startswith(io.DATA_PREFIX) and names[0].endswith(".nc")
    document = json.loads((tmp_path / "model.json").read_text())
    assert document["format"] == "bayes_mlr.model"
    assert document["class"] == "MixtureOfRegressions"
    assert document["data"]["file"] == names[0]
    with xr.open_dataset(tmp_path / names[0]) as ds:
        np.testing.assert_array_equal(ds["X"].values, data.X)
        assert ds["X"].dims == ("obs", "feature")


# -- no pickle ---------------------------------------------------------------------------------


def test_loading_never_unpickles(tmp_path, monkeypatch):
    data = make_data(200)
    model = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)
    model.save(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("pickle / np.load must not be used when loading")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(np, "load", refuse)
    assert_models_identical(model, MixtureOfRegressions.load(tmp_path))


def test_unknown_tags_and_types_are_refused(tmp_path):
    data = make_data(200)
    MixtureOfRegressions(2, random_state=0).fit(data.X, data.y).save(tmp_path)
    document = json.loads((tmp_path / "model.json").read_text())
    document["attributes"]["evil"] = {"__object__": {"type": "os.system", "fields": {}}}
    (tmp_path / "model.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"unknown type 'os\.system'"):
        MixtureOfRegressions.load(tmp_path)


def test_an_attribute_without_json_encoding_is_refused_before_writing(tmp_path):
    model = MixtureOfRegressions(2)
    model.custom_ = object()
    with pytest.raises(TypeError, match="custom_"):
        model.save(tmp_path / "m")
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_mismatched_data_file_is_refused(tmp_path):
    a, b = make_data(200, seed=0), make_data(200, seed=1)
    MixtureOfRegressions(2, random_state=0).fit(a.X, a.y).save(tmp_path / "a")
    MixtureOfRegressions(2, random_state=0).fit(b.X, b.y).save(tmp_path / "b")
    (data_a,) = (tmp_path / "a").glob("data-*.nc")
    (data_b,) = (tmp_path / "b").glob("data-*.nc")
    os.replace(data_b, data_a)  # same name, other content
    with pytest.raises(ValueError, match="does not match"):
        MixtureOfRegressions.load(tmp_path / "a")


def test_saving_again_replaces_the_earlier_save(tmp_path):
    a, b = make_data(200, seed=0), make_data(200, seed=1)
    MixtureOfRegressions(2, random_state=0).fit(a.X, a.y).save(tmp_path)
    second = MixtureOfRegressions(2, random_state=0).fit(b.X, b.y)
    second.save(tmp_path)
    assert len(list(tmp_path.glob("data-*.nc"))) == 1
    assert_models_identical(second, MixtureOfRegressions.load(tmp_path))


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"format": "something else"}', "not a saved bayes_mlr model"),
        ('{"format": "bayes_mlr.model", "schema_version": 99, "class": "X"}', "schema version 99"),
    ],
)
def test_bad_model_files_are_refused(tmp_path, content, message):
    (tmp_path / "model.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        MixtureOfRegressions.load(tmp_path)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model\.json is missing"):
        MixtureOfRegressions.load(tmp_path / "nowhere")


# -- atomic writes ----------------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_failure_inside_atomic_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), io.atomic_write(target) as fh:
        fh.write("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_failure_before_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "em.json"
    io.write_json(target, {"log_likelihood": 1.0})

    def crash(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(io.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        io.write_json(target, {"log_likelihood": 2.0})
    assert json.loads(target.read_text()) == {"log_likelihood": 1.0}
    assert leftovers(tmp_path) == []


def test_interrupted_netcdf_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "posterior.nc"
    old = xr.DataTree.from_dict({"posterior": xr.Dataset({"a": ("x", [1.0, 2.0])})})
    io.write_datatree(old, target)

    def partial(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF\r\n\x1a\n half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", partial)
    with pytest.raises(KeyboardInterrupt):
        io.write_datatree(old.copy(), target)
    monkeypatch.undo()
    np.testing.assert_array_equal(io.read_datatree(target)["posterior"]["a"].values, [1.0, 2.0])
    assert leftovers(tmp_path) == []


def test_interrupted_save_leaves_the_previous_model_loadable(tmp_path, monkeypatch):
    a, b = make_data(200, seed=0), make_data(200, seed=1)
    first = MixtureOfRegressions(2, random_state=0).fit(a.X, a.y)
    first.save(tmp_path)
    second = MixtureOfRegressions(2, random_state=0).fit(b.X, b.y)
    real_replace = os.replace

    def crash_on_json(src, dst):
        if str(dst).endswith("model.json"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", crash_on_json)
    with pytest.raises(KeyboardInterrupt):
        second.save(tmp_path)
    monkeypatch.undo()
    # the new data file is written, model.json is not: the old model.json still names the old
    # data file, which is untouched
    assert_models_identical(first, MixtureOfRegressions.load(tmp_path))
    assert leftovers(tmp_path) == []


def test_written_files_have_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = io.write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# -- em.json -----------------------------------------------------------------------------------


def test_em_summary_keys_and_values(tmp_path):
    data = make_data(300)
    model = MixtureOfRegressions(2, random_state=0).fit(frame_of(data.X, ["x"]), data.y)
    summary = io.em_summary(model, source={"formula": "y ~ x"})
    path = io.write_json(tmp_path / "em.json", summary)
    em = json.loads(path.read_text())  # standard JSON
    for key in (
        "schema_version",
        "parameters",
        "standard_errors",
        "log_likelihood",
        "bic",
        "aic",
        "icl",
        "settings",
        "feature_names",
        "data",
        "converged",
        "n_iter",
        "dims",
        "n_parameters",
        "log_likelihood_trace",
    ):
        assert key in em, key
    assert set(em["parameters"]) == {"weights", "intercept", "coef", "sigma"}
    assert em["dims"]["coef"] == ["component", "feature"]
    assert em["feature_names"] == ["x"]
    assert em["parameters"]["coef"] == model.coef_.tolist()  # floats exact through JSON
    assert em["log_likelihood"] == model.log_likelihood_
    assert em["bic"] == model.bic(data.X, data.y)
    expected = hashlib.sha256(data.X.astype("<f8").tobytes() + data.y.astype("<f8").tobytes())
    assert em["data"]["sha256"] == expected.hexdigest() == io.data_hash(data.X, data.y)
    assert em["data"]["source"] == {"formula": "y ~ x"}
    assert em["settings"]["variance"] == "component"
    optima = em["optima"]
    assert optima[0]["log_likelihood"] == model.log_likelihood_
    assert optima[0]["coef"] == model.coef_.tolist()
    assert sum(o["n_runs"] for o in optima) <= model.result_.n_runs  # degenerate runs left out
    assert {"n_runs", "converged", "degenerate", "spurious", "sigma"} <= set(optima[0])


def test_non_finite_numbers_become_null(tmp_path):
    path = io.write_json(tmp_path / "x.json", {"se": np.array([1.0, np.nan, np.inf])})
    assert json.loads(path.read_text()) == {"se": [1.0, None, None]}


def test_datatree_round_trip_opens_with_xarray(tmp_path):
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(
                {
                    "coef": (
                        ("chain", "draw", "component", "feature"),
                        np.random.default_rng(0).normal(size=(2, 5, 2, 1)),
                    )
                },
                coords={"feature": ["x"]},
            ),
            "em": xr.Dataset({"coef": (("component", "feature"), TRUTH_2["coef"])}),
        }
    )
    tree.attrs["data_sha256"] = "abc"
    path = io.write_datatree(tree, tmp_path / "posterior.nc")
    with xr.open_datatree(path) as opened:
        assert set(opened.children) == {"posterior", "em"}
        np.testing.assert_array_equal(
            opened["posterior"]["coef"].values, tree["posterior"]["coef"].values
        )
    assert io.read_datatree(path).attrs["data_sha256"] == "abc"


# -- fresh_directory: build a folder aside, swap it in --------------------------------------


def test_fresh_directory_holds_only_the_last_build(tmp_path):
    target = tmp_path / "run"
    with io.fresh_directory(target) as build:
        assert build.parent == tmp_path and build != target and not target.exists()
        io.write_text(build / "a.txt", "first")
        io.write_text(build / "sub" / "b.txt", "first")
    with io.fresh_directory(target) as build:
        io.write_text(build / "c.txt", "second")
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == ["c.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing left beside it
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask  # as a plain mkdir


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failed_build_leaves_the_previous_folder(tmp_path, error):
    target = tmp_path / "run"
    with io.fresh_directory(target) as build:
        io.write_text(build / "a.txt", "first")
    with pytest.raises(error), io.fresh_directory(target) as build:
        io.write_text(build / "b.txt", "half")
        raise error
    assert [p.name for p in target.iterdir()] == ["a.txt"]
    assert (target / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_fresh_directory_refuses_a_file_and_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    with pytest.raises(FileExistsError, match="exists and is not a folder"):
        with io.fresh_directory(tmp_path / "f"):
            pass
    (tmp_path / "d" / "e").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "d" / "e")
    for path in (".", tmp_path / "d"):
        with pytest.raises(ValueError, match="current directory"):
            with io.fresh_directory(path):
                pass
    assert (tmp_path / "d" / "e").is_dir()


def test_atomic_writes_never_touch_the_umask(tmp_path, monkeypatch):
    # Changing the umask, even briefly, races with other threads creating files.
    import os

    from bayes_mlr.workflow import io as bio

    current = os.umask(0o022)
    os.umask(current)

    def forbidden(*args):
        raise AssertionError("os.umask was called")

    monkeypatch.setattr(os, "umask", forbidden)
    path = bio.write_text(tmp_path / "a.txt", "hello")
    assert path.read_text() == "hello"
    assert (path.stat().st_mode & 0o777) == (0o666 & ~current)
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left


# -- component families ------------------------------------------------------------------------


@pytest.fixture(scope="module", params=list(families.CASES), ids=list(families.CASES))
def family_case(request):
    build, frame = families.CASES[request.param]
    model = build()
    _ = model.standard_errors_  # cached, so that they are saved too
    return request.param, model, None if frame is None else frame()


def test_family_round_trip_is_exact_and_predicts_alike(tmp_path, family_case):
    _, model, frame = family_case
    model.save(tmp_path / "m")
    loaded = MixtureOfRegressions.load(tmp_path / "m")
    assert_models_identical(model, loaded)
    assert loaded.result_.family == model.result_.family
    structure = model._training_structure()
    X, y = model._fit_X, model._fit_y
    # prediction, scores and criteria on the training rows, bit for bit
    for method in ("predict_components", "predict"):
        kwargs = {k: structure[k] for k in ("offset", "trials")}
        if method == "predict" and structure["concomitant"] is not None:
            kwargs["concomitant"] = structure["concomitant"]
        assert (
            getattr(loaded, method)(X, **kwargs).tobytes()
            == getattr(model, method)(X, **kwargs).tobytes()
        )
    rows = {k: v for k, v in structure.items() if k != "groups"}  # score_samples: per row
    assert (
        loaded.score_samples(X, y, **rows).tobytes() == model.score_samples(X, y, **rows).tobytes()
    )
    assert loaded.bic(X, y, **structure) == model.bic(X, y, **structure)
    for key, value in model.standard_errors_.items():
        assert loaded.standard_errors_[key].tobytes() == value.tobytes()
    if frame is not None:  # a formula fit: its offset / trials expressions work on a frame
        state, kept = loaded._formula_state(), model._formula_state()
        assert (state.offset, state.trials) == (kept.offset, kept.trials)
        assert loaded.predict(frame).tobytes() == model.predict(frame).tobytes()


def test_offset_and_trials_are_data_variables_not_json(tmp_path):
    model = families.seizure()
    model.save(tmp_path)
    document = json.loads((tmp_path / "model.json").read_text())
    assert document["schema_version"] == io.MODEL_SCHEMA_VERSION == 2
    assert "_fit_offset" not in document["attributes"]
    assert document["data"]["attributes"]["_fit_offset"] == "offset"
    assert document["data"]["attributes"]["_fit_trials"] is None
    assert document["params"]["family"] == "poisson"
    assert document["attributes"]["result_"]["__object__"]["fields"]["family"] == {
        "__family__": {"__dict__": {"name": "poisson"}}
    }
    (data_file,) = tmp_path.glob("data-*.nc")
    with xr.open_dataset(data_file) as ds:
        np.testing.assert_array_equal(ds["offset"].values, np.log(families.seizure_frame().Hours))
        assert ds["offset"].dims == ("obs",)


def test_a_family_object_with_options_round_trips(tmp_path):
    model = families.student_t(df=4.0)
    model.save(tmp_path)
    loaded = MixtureOfRegressions.load(tmp_path)
    assert loaded.family == bayes_mlr.StudentT(df=4.0)
    np.testing.assert_array_equal(loaded.df_, [4.0, 4.0])


def test_lazy_offset_is_streamed_and_loaded_lazily(tmp_path):
    da = pytest.importorskip("dask.array")
    data = simulate(600, family="poisson", exposure=(0.5, 2.0), random_state=0)
    X = da.from_array(data.X, chunks=(200, 1))
    y, offset = da.from_array(data.y, chunks=200), da.from_array(data.offset, chunks=200)
    model = MixtureOfRegressions(2, family="poisson", random_state=0, n_init=2)
    model.fit(X, y, offset=offset)
    model.save(tmp_path)
    loaded = MixtureOfRegressions.load(tmp_path)
    assert io.is_dask_collection(loaded._fit_offset)
    assert loaded._fit_offset.chunks == ((200, 200, 200),)
    np.testing.assert_array_equal(loaded._fit_offset.compute(), data.offset)
    assert loaded.log_likelihood(data.X, data.y, offset=data.offset) == model.log_likelihood(
        data.X, data.y, offset=data.offset
    )


def test_a_version_1_file_loads_as_gaussian(tmp_path):
    # a model.json of schema 1 (before families): no family argument, no result_.family
    data = make_data(200)
    model = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)
    model.save(tmp_path)
    document = json.loads((tmp_path / "model.json").read_text())
    document["schema_version"] = 1
    del document["params"]["family"]
    fields = document["attributes"]["result_"]["__object__"]["fields"]
    del fields["family"], fields["df"]
    for key in ("_fit_offset", "_fit_trials"):
        del document["data"]["attributes"][key]
        document["order"].remove(key)
    (tmp_path / "model.json").write_text(json.dumps(document))
    loaded = MixtureOfRegressions.load(tmp_path)
    assert loaded.family == "gaussian" and loaded.result_.family.name == "gaussian"
    assert loaded.predict(data.X).tobytes() == model.predict(data.X).tobytes()
    assert loaded.bic(data.X, data.y) == model.bic(data.X, data.y)


@pytest.mark.parametrize(
    "build, names",
    [
        (families.seizure, ["weights", "intercept", "coef"]),
        (families.betablocker, ["weights", "intercept", "coef"]),
        (families.student_t, ["weights", "intercept", "coef", "sigma", "df"]),
    ],
    ids=["poisson", "binomial", "student_t"],
)
def test_em_summary_of_each_family(tmp_path, build, names):
    model = build()
    em = json.loads(io.write_json(tmp_path / "em.json", io.em_summary(model)).read_text())
    family = model.result_.family
    assert em["schema_version"] == io.EM_SCHEMA_VERSION == 2
    assert em["family"] == family.to_dict()
    assert list(em["parameters"]) == names == list(em["dims"])
    assert set(em["standard_errors"]) == set(names)
    for name in names:
        assert em["parameters"][name] == getattr(model, f"{name}_").tolist()
    assert all(set(o) >= set(names) - {"df"} and "df" not in o for o in em["optima"])
    assert ("sigma" in em["optima"][0]) == family.has_sigma
    structure = model._training_structure()
    assert em["offset"] == (structure["offset"] is not None)
    assert em["trials"] == (structure["trials"] is not None)
    assert em["bic"] == model.bic(model._fit_X, model._fit_y, **structure)
    assert em["n_parameters"] == model.result_.n_parameters
    # the hash covers the offset and the trials: the same X, y with other ones differ
    assert em["data"]["sha256"] == io.training_data_hash(model)
    extra = structure["offset"] if structure["offset"] is not None else structure["trials"]
    assert (em["data"]["sha256"] == io.data_hash(model._fit_X, model._fit_y)) == (extra is None)


def test_em_summary_of_a_fixed_df_records_the_family_option():
    em = io.em_summary(families.student_t(df=4.0))
    assert em["family"] == {"name": "student_t", "df": 4.0}
    assert em["settings"]["family"] == {"name": "student_t", "df": 4.0}
    np.testing.assert_array_equal(em["parameters"]["df"], [4.0, 4.0])
