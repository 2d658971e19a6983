"""Saving and loading: JSON and netCDF only (no pickle), every write atomic.

* :func:`atomic_write` and the ``write_*`` helpers write to a temporary file in the target's
  directory, flush and ``fsync`` it, then ``os.replace`` it over the target: a reader (or a
  crash) sees the old file or the new one, never half of one.
* :func:`fresh_directory` builds a whole folder (a run of ``bayes-mlr run``) in a sibling
  temporary folder and swaps it in when the build succeeds: the folder holds exactly what its
  last successful build wrote, and a failed build leaves the previous one untouched.
* :func:`save_model` / :func:`load_model` (``MixtureOfRegressions.save`` / ``.load``) store an
  estimator in a directory: ``model.json`` (constructor arguments and every fitted attribute,
  floats written so that they read back bit for bit) and ``data-<hash>.nc`` (the training
  data, which standard errors and ``sample_posterior`` need: X, y and, where the fit has them,
  sample weights, groups, concomitant variables, the offset and the trials). Loading parses
  JSON and reads netCDF arrays: it cannot run code.
* :func:`em_summary` is the documented, stable ``em.json`` of a fitted estimator.
* :func:`write_datatree` / :func:`read_datatree` store a posterior ``DataTree`` as netCDF
  (``xarray.open_datatree`` opens it).

xarray is imported inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import secrets
import shutil
import tempfile  # noqa: F401  (the docstring examples use it)
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from bayes_mlr._validation import is_dask_collection

__all__ = [
    "DATA_PREFIX",
    "EM_SCHEMA_VERSION",
    "MODEL_FILE",
    "MODEL_SCHEMA_VERSION",
    "atomic_write",
    "data_hash",
    "em_summary",
    "fresh_directory",
    "load_model",
    "parameter_names",
    "read_datatree",
    "read_json",
    "save_model",
    "to_jsonable",
    "training_data_hash",
    "write_bytes",
    "write_dataset",
    "write_datatree",
    "write_json",
    "write_text",
]

MODEL_FILE = "model.json"
#: Training data files are ``data-<first 16 hex digits of their SHA-256>.nc``.
DATA_PREFIX = "data-"
#: 2: component families (``family`` and ``result_.family`` as ``{"__family__": ...}``; the
#: training ``offset`` and ``trials`` in the data file). Version 1 files load unchanged
#: (Gaussian, no offset or trials).
MODEL_SCHEMA_VERSION = 2
#: 2: ``family``; ``parameters``, ``standard_errors``, ``dims`` and ``optima`` hold only the
#: family's parameters (no ``sigma`` for Poisson and binomial, ``df`` for Student-t); the data
#: hash covers ``offset`` and ``trials`` where the fit has them.
EM_SCHEMA_VERSION = 2
_NETCDF_ENGINE = "h5netcdf"
# Training data of the estimator, stored in netCDF rather than in model.json.
_DATA_ATTRS = {
    "_fit_X": "X",
    "_fit_y": "y",
    "_fit_sample_weight": "sample_weight",
    # grouped and concomitant models: group codes (0 .. n_groups - 1) and the (n, r) variables
    "_fit_groups": "groups",
    "_fit_concomitant": "concomitant",
    # Poisson and binomial families: the offset and the number of trials of each row
    "_fit_offset": "offset",
    "_fit_trials": "trials",
}
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_PARAMS = ("weights", "intercept", "coef", "sigma", "df")
_DIMS = {
    "weights": ["component"],
    "intercept": ["component"],
    "coef": ["component", "feature"],
    "sigma": ["component"],
    "df": ["component"],
}


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temporary_path(path: Path) -> Path:
    """A new empty file beside ``path`` with the mode a plain ``open()`` would give it.

    ``os.open(..., 0o666)`` lets the kernel apply the process umask, so the umask is never
    changed (changing it, even briefly, races with every other thread creating files).
    """
    for _ in range(100):
        name = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return name
    raise FileExistsError(f"could not create a temporary file beside {path}")


@contextlib.contextmanager
def _replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and move it over ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_path(target)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(target.parent)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` when the block succeeds.

    Parameters
    ----------
    path : path-like
        The file to write; its directory is created if needed.
    mode : {"w", "wb"}
        Text (UTF-8 unless ``encoding`` is given) or binary.
    **open_kwargs
        Passed to :func:`open`.

    Yields
    ------
    file object

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from bayes_mlr.workflow.io import atomic_write
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_write(target) as fh:
    ...     _ = fh.write("all or nothing")
    >>> target.read_text()
    'all or nothing'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb'; got {mode!r}")
    if mode == "w":
        open_kwargs.setdefault("encoding", "utf-8")
    with _replacing(path) as tmp, open(tmp, mode, **open_kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


@contextlib.contextmanager
def fresh_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Build the folder ``path`` afresh: yield an empty sibling folder, swap it in on success.

    When the block succeeds, an existing ``path`` is renamed aside, the new folder is renamed
    to ``path`` and the old one is removed, so ``path`` holds exactly what the block wrote
    (no file of an earlier build is left beside it). When the block raises (or is
    interrupted), the new folder is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : path-like
        The folder to (re)build; its parent is created if needed.

    Yields
    ------
    pathlib.Path
        The temporary folder to write into (``.<name>.<random>.new`` next to ``path``).

    Raises
    ------
    FileExistsError
        ``path`` exists and is not a folder.
    ValueError
        ``path`` is the current working directory or one of its parents.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from bayes_mlr.workflow.io import fresh_directory, write_text
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with fresh_directory(target) as tmp:
    ...     _ = write_text(tmp / "old.txt", "first")
    >>> with fresh_directory(target) as tmp:
    ...     _ = write_text(tmp / "new.txt", "second")
    >>> sorted(p.name for p in target.iterdir())
    ['new.txt']
    """
    target = Path(path).absolute()
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder; choose another output folder")
    if Path.cwd().resolve().is_relative_to(target.resolve()):
        raise ValueError(
            f"{path} is the current directory or contains it; it cannot be replaced by a "
            "fresh folder: choose a folder below it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = secrets.token_hex(4)
    tmp = target.with_name(f".{target.name}.{tag}.new")
    tmp.mkdir()  # with the mode a plain mkdir gives (tempfile.mkdtemp's would be private)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.{tag}.old")
    if target.exists():
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old.exists():
            os.rename(old, target)  # put the previous folder back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_directory(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, standard JSON (no NaN literals) atomically.

    ``obj`` is first passed through :func:`to_jsonable` (numpy arrays and scalars become lists
    and numbers, non-finite floats become ``null``).
    """
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False, ensure_ascii=False)
    return write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file (plain ``json.loads``: it cannot run code)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_dataset(dataset: Any, path: str | os.PathLike) -> Path:
    """Write an ``xarray.Dataset`` to netCDF (h5netcdf) atomically."""
    with _replacing(path) as tmp:
        dataset.to_netcdf(tmp, engine=_NETCDF_ENGINE)
    return Path(path)


def write_datatree(tree: Any, path: str | os.PathLike) -> Path:
    """Write an ``xarray.DataTree`` (e.g. from ``sample_posterior``) to netCDF atomically.

    The file opens with ``xarray.open_datatree(path)``.
    """
    with _replacing(path) as tmp:
        tree.to_netcdf(tmp, engine=_NETCDF_ENGINE)
    return Path(path)


def read_datatree(path: str | os.PathLike) -> Any:
    """Read a netCDF ``DataTree`` fully into memory and close the file.

    Raises
    ------
    FileNotFoundError
    """
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with xr.open_datatree(path, engine=_NETCDF_ENGINE) as tree:
        return tree.load().copy()


# --------------------------------------------------------------------------------------------
# Plain JSON for reports (em.json, diagnostics.json)
# --------------------------------------------------------------------------------------------


def to_jsonable(obj: Any) -> Any:
    """Convert numpy / pandas values to plain JSON types; non-finite floats become None.

    Floats are kept as Python floats, whose JSON text (``repr``) reads back to the same value.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy/pandas scalar
        return to_jsonable(obj.item())
    raise TypeError(f"cannot write a {type(obj).__name__} to JSON")


def _row_blocks(arr: Any) -> Iterator[np.ndarray]:
    """``arr`` as consecutive C-ordered little-endian float64 blocks of whole rows.

    A numpy (or array-like) input is one block. A Dask array is computed one row chunk at a
    time, with whatever scheduler is active, so memory holds one chunk, never the array.
    """
    if not is_dask_collection(arr):
        yield np.ascontiguousarray(np.asarray(arr, dtype="<f8"))
        return
    import dask

    grid = arr.to_delayed()
    for row in grid.reshape(grid.shape[0], -1):
        parts = dask.compute(*row)
        block = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        yield np.ascontiguousarray(np.asarray(block, dtype="<f8"))


def data_hash(X: Any, y: Any, *extra: Any) -> str:
    """SHA-256 (hex) of the data: ``X`` then ``y`` as little-endian float64 bytes, C order.

    Parameters
    ----------
    X : array-like or dask array of shape (n_samples, n_features)
    y : array-like or dask array of shape (n_samples,)
        Dask arrays are read one row chunk at a time.
    *extra : array-like of shape (n_samples,) or None
        Further per-row data hashed after ``y`` in this order (a fit's ``offset`` and
        ``trials``, :func:`training_data_hash`); None entries are skipped, so data without them
        hash as ``X`` and ``y`` alone.

    Returns
    -------
    str
        64 hexadecimal digits; equal data give equal hashes on every platform, whether they
        are held in numpy or Dask arrays.
    """
    h = hashlib.sha256()
    for arr in (X, y, *(a for a in extra if a is not None)):
        for block in _row_blocks(arr):
            h.update(block.tobytes(order="C"))
    return h.hexdigest()


def training_data_hash(model: Any) -> str:
    """:func:`data_hash` of a fitted estimator's training data: ``X``, ``y``, then its
    ``offset`` and ``trials`` where the fit has them (``em.json``'s ``data.sha256``)."""
    return data_hash(
        model._fit_X,
        model._fit_y,
        getattr(model, "_fit_offset", None),
        getattr(model, "_fit_trials", None),
    )


def _family_of(model: Any) -> Any:
    """The component family of a fitted estimator (Gaussian for a fit without one)."""
    from bayes_mlr.core.components import resolve_family

    family = getattr(model.result_, "family", None)
    return resolve_family("gaussian" if family is None else family)


def parameter_names(model: Any) -> tuple[str, ...]:
    """The component parameters of a fitted estimator's family, as ``em.json`` lists them:
    ``weights``, ``intercept``, ``coef``, then ``sigma`` (Gaussian, Student-t) and ``df``
    (Student-t)."""
    family = _family_of(model)
    return tuple(
        name
        for name in _PARAMS
        if (name != "sigma" or family.has_sigma) and (name != "df" or family.has_df)
    )


def _settings(model: Any) -> dict[str, Any]:
    """Constructor arguments as plain JSON (start values and Generators summarised)."""
    out = {}
    for name, value in model.get_params().items():
        if name == "init" and not isinstance(value, str):
            value = "custom start values"
        elif name == "random_state" and isinstance(value, np.random.Generator):
            value = "numpy Generator"
        elif name == "family" and not isinstance(value, str | type(None)):
            value = value.to_dict()  # a family object: its name and options
        out[name] = value
    return out


def _concomitant_summary(model: Any) -> dict[str, Any] | None:
    """The multinomial-logit mixing model of ``em.json`` (None without one)."""
    if getattr(model, "concomitant_coef_", None) is None:
        return None
    return {
        "names": [str(n) for n in model.concomitant_names_in_],
        "reference_component": 0,
        "intercept": np.asarray(model.concomitant_intercept_),
        "coef": np.asarray(model.concomitant_coef_),
    }


def em_summary(model: Any, *, source: Any = None) -> dict[str, Any]:
    """The EM fit as a plain, documented dictionary (the content of ``em.json``).

    Parameters
    ----------
    model : MixtureOfRegressions
        A fitted estimator (it holds its training data).
    source : mapping, optional
        Where the data came from (e.g. ``{"path": ..., "formula": ...}``), stored under
        ``data``.

    Returns
    -------
    dict
        Keys: ``schema_version``, ``format`` (``"bayes_mlr.core.em"``), ``bayes_mlr_version``,
        ``family`` (``name``, ``"gaussian"``, ``"poisson"``, ``"binomial"`` or
        ``"student_t"``, and its options, e.g. ``df``: null when estimated), ``n_components``,
        ``n_features``, ``n_obs``, ``feature_names``, ``dims`` (of the parameters listed),
        ``parameters`` and ``standard_errors`` (each ``weights`` (K,), ``intercept`` (K,),
        ``coef`` (K, p) as nested lists, ``sigma`` (K,) for the families with a scale
        (Gaussian, Student-t; absent for Poisson and binomial), ``df`` (K,) for Student-t (a fixed
        ``df`` has standard errors 0, as a fixed ``sigma``); the standard errors also
        ``concomitant_intercept`` (K,) and ``concomitant_coef`` (K, r) with concomitant
        variables), ``offset`` and ``trials`` (whether the fit had them), ``shared``
        (``intercept``: bool, ``features``: names), ``n_groups``
        (null without groups), ``concomitant`` (null, or ``names``, ``reference_component``,
        ``intercept`` (K,) and ``coef`` (K, r)), ``log_likelihood``, ``bic``,
        ``aic``, ``icl``, ``n_parameters``, ``converged``, ``n_iter``, ``degenerate``, ``spurious``,
        ``spurious_components``, ``standard_errors_finite``,
        ``log_likelihood_trace``, ``optima`` (the distinct optima EM's restarts reached, best
        first: ``log_likelihood``, ``n_runs``, ``converged``, ``degenerate``, ``spurious`` and
        the parameters but ``df``), ``settings`` (constructor arguments) and ``data``
        (``sha256`` of X and y, then offset and trials where the fit has them, see
        :func:`training_data_hash`, ``n_obs``, plus ``source``).
        Non-finite numbers (a singular standard error) are ``null``.

        Schema version 2 added ``family``, ``offset``, ``trials`` and ``df``, and left ``sigma``
        out for the families without one (version 1 had only Gaussian fits).
    """
    from bayes_mlr._version import __version__

    model._check_fitted()
    X, y, sw = model._fit_X, model._fit_y, model._fit_sample_weight
    structure = model._training_structure()
    names = parameter_names(model)
    params = {name: np.asarray(getattr(model, f"{name}_")) for name in names}
    se = dict(model.standard_errors_)
    finite = bool(all(np.all(np.isfinite(v)) for v in se.values()))
    if "df" in names and "df" not in se:  # fixed degrees of freedom: nothing estimated
        se["df"] = np.full(model.n_components_, np.nan)
    return {
        "schema_version": EM_SCHEMA_VERSION,
        "format": "bayes_mlr.core.em",
        "bayes_mlr_version": __version__,
        "family": _family_of(model).to_dict(),
        "n_components": int(model.n_components_),
        "n_features": int(model.n_features_in_),
        "n_obs": int(X.shape[0]),
        "feature_names": list(model.feature_names),
        "dims": {name: _DIMS[name] for name in names},
        "parameters": params,
        "standard_errors": {name: np.asarray(value) for name, value in se.items()},
        "offset": structure.get("offset") is not None,
        "trials": structure.get("trials") is not None,
        "shared": {
            "intercept": bool(model.result_.shared_intercept),
            "features": [
                str(n) for n, s in zip(model.feature_names, model.shared_, strict=True) if s
            ],
        },
        "n_groups": model.result_.n_groups,
        "concomitant": _concomitant_summary(model),
        "log_likelihood": float(model.log_likelihood_),
        "bic": model.bic(X, y, sample_weight=sw, **structure),
        "aic": model.aic(X, y, sample_weight=sw, **structure),
        "icl": model.icl(X, y, sample_weight=sw, **structure),
        "n_parameters": int(model.result_.n_parameters),
        "converged": bool(model.converged_),
        "n_iter": int(model.n_iter_),
        "degenerate": bool(getattr(model.result_, "degenerate", False)),
        "spurious": bool(getattr(model.result_, "spurious", False)),
        "separated": bool(getattr(model.result_, "separated", False)),
        # False when the observed information is singular in some direction (NaN SEs)
        "standard_errors_finite": finite,
        "spurious_components": np.asarray(
            getattr(model.result_, "spurious_components", np.zeros(model.n_components_, bool))
        ),
        "log_likelihood_trace": np.asarray(model.log_likelihood_trace_),
        "optima": [
            {
                "log_likelihood": float(o.log_likelihood),
                "n_runs": int(o.n_runs),
                "converged": bool(o.converged),
                "degenerate": bool(o.degenerate),
                "spurious": bool(np.any(o.spurious_components)),
                **{name: np.asarray(getattr(o, name)) for name in names if name != "df"},
            }
            for o in (getattr(model.result_, "optima", None) or ())
        ],
        "settings": _settings(model),
        "data": {
            "sha256": training_data_hash(model),
            "hashed": "X then y (then offset, trials where the fit has them), little-endian "
            "float64, C order",
            "n_obs": int(X.shape[0]),
            "sample_weight": sw is not None,
            "source": dict(source) if source is not None else None,
        },
    }


# --------------------------------------------------------------------------------------------
# Exact encoding of estimator state (model.json)
# --------------------------------------------------------------------------------------------

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _encode_float(value: float) -> Any:
    # JSON numbers are written with repr(), the shortest text that reads back to the same
    # double; NaN and infinities are not JSON numbers and get a tagged string.
    if math.isfinite(value):
        return value
    return {"__float__": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _decode_float(value: Any) -> float:
    if isinstance(value, dict):
        return _NONFINITE[value["__float__"]]
    return float(value)


def _encode_array(arr: np.ndarray, where: str) -> dict[str, Any]:
    kind = arr.dtype.kind
    if kind == "O":
        items = arr.ravel(order="K").tolist()
        if not all(isinstance(v, str) for v in items):
            raise TypeError(f"cannot save {where}: an object array that does not hold only str")
        data = list(arr.ravel(order="C").tolist())
    elif kind == "f":
        if arr.dtype.itemsize != 8:
            data = [float.hex(float(v)) for v in arr.ravel(order="C")]
        else:
            data = [_encode_float(v) for v in arr.ravel(order="C").tolist()]
    elif kind in "biuU":
        data = arr.ravel(order="C").tolist()
    else:
        raise TypeError(f"cannot save {where}: arrays of dtype {arr.dtype} are not supported")
    return {
        "__ndarray__": {
            "dtype": "object" if kind == "O" else arr.dtype.str,
            "shape": list(arr.shape),
            "order": "F" if (arr.flags.f_contiguous and not arr.flags.c_contiguous) else "C",
            "writeable": bool(arr.flags.writeable),
            "data": data,
        }
    }


def _decode_array(spec: Mapping[str, Any]) -> np.ndarray:
    dtype = np.dtype(object) if spec["dtype"] == "object" else np.dtype(spec["dtype"])
    data = spec["data"]
    if dtype.kind == "f":
        if dtype.itemsize != 8:
            values = [float.fromhex(v) for v in data]
        else:
            values = [_decode_float(v) for v in data]
        flat = np.array(values, dtype=dtype)
    elif dtype.kind == "O":
        flat = np.empty(len(data), dtype=object)
        flat[:] = [str(v) for v in data]
    else:
        flat = np.array(data, dtype=dtype)
    arr = flat.reshape(spec["shape"])
    arr = np.asfortranarray(arr) if spec.get("order") == "F" else np.ascontiguousarray(arr)
    if dtype.kind == "O":  # np.ascontiguousarray keeps object arrays as they are
        arr = arr.copy()
    arr.setflags(write=bool(spec.get("writeable", True)))
    return arr


def _object_types() -> dict[str, type]:
    """The classes whose instances model.json may hold, by tag (nothing else is decoded)."""
    from bayes_mlr.formula import FormulaState
    from bayes_mlr.results import EMResult, Optimum

    return {
        "bayes_mlr.EMResult": EMResult,
        "bayes_mlr.Optimum": Optimum,
        "bayes_mlr.FormulaState": FormulaState,
    }


def _formulaic_types() -> dict[str, Any]:
    """formulaic's value types found in a ModelSpec's encoder and transform state."""
    import formulaic
    from formulaic.parser.types.factor import Factor
    from formulaic.transforms import contrasts
    from formulaic.utils import sentinels

    types: dict[str, Any] = {
        "formulaic.ModelSpec": formulaic.ModelSpec,
        "formulaic.Factor.Kind": Factor.Kind,
        "formulaic.NAAction": type(formulaic.ModelSpec("y").na_action),
        "formulaic.ClusterBy": type(formulaic.ModelSpec("y").cluster_by),
        "formulaic.UNSET": sentinels.UNSET,
        "formulaic.MISSING": sentinels.MISSING,
    }
    for name in (
        "ContrastsState",
        "TreatmentContrasts",
        "SumContrasts",
        "HelmertContrasts",
        "DiffContrasts",
        "PolyContrasts",
        "SASContrasts",
        "CustomContrasts",
    ):
        if hasattr(contrasts, name):
            types[f"formulaic.{name}"] = getattr(contrasts, name)
    return types


# The ModelSpec arguments that are stored; its structure is rebuilt from the formula.
_MODEL_SPEC_FIELDS = (
    "materializer",
    "materializer_params",
    "ensure_full_rank",
    "na_action",
    "output",
    "cluster_by",
    "transform_state",
    "encoder_state",
)


class _Encoder:
    """Lossless JSON encoding of the values an estimator holds; unknown types raise.

    ``refs`` maps ``id(obj)`` of the estimator's top-level attributes to their names, so that
    an object held twice (``result_`` inside the formula state) is stored once and comes back
    as the same object.
    """

    def __init__(self, refs: dict[int, str] | None = None):
        self.refs = refs or {}
        self._types: dict[type, str] | None = None

    def types(self) -> dict[type, str]:
        if self._types is None:
            self._types = {cls: tag for tag, cls in _object_types().items()}
        return self._types

    def __call__(self, value: Any, where: str, top: bool = False) -> Any:
        if value is None or isinstance(value, bool | str):
            return value
        if type(value) is int:
            return value
        if type(value) is float:
            return _encode_float(value)
        if not top and id(value) in self.refs and not isinstance(value, int | float):
            return {"__ref__": self.refs[id(value)]}
        if isinstance(value, np.generic) and not isinstance(value, np.str_ | np.bytes_):
            item = _encode_array(np.asarray(value).reshape(1), where)["__ndarray__"]["data"][0]
            return {"__scalar__": {"dtype": value.dtype.str, "value": item}}
        if isinstance(value, np.ndarray):
            return _encode_array(value, where)
        if isinstance(value, np.random.Generator):
            bitgen = value.bit_generator
            name = type(bitgen).__name__
            if name not in _BIT_GENERATORS:
                raise TypeError(f"cannot save {where}: unsupported bit generator {name}")
            return {
                "__Generator__": {
                    "bit_generator": name,
                    "state": self(bitgen.state, f"{where}.state"),
                }
            }
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {"__dict__": {k: self(v, f"{where}[{k!r}]") for k, v in value.items()}}
            return {
                "__items__": [
                    [self(k, f"{where} key"), self(v, f"{where}[{k!r}]")] for k, v in value.items()
                ]
            }
        if isinstance(value, list):
            return [self(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        from bayes_mlr.core.components import Family

        if isinstance(value, Family):  # rebuilt from its name and options
            return {"__family__": self(value.to_dict(), f"{where}.family")}
        tag = self.types().get(type(value))
        if tag is not None and dataclasses.is_dataclass(value):
            fields = {
                f.name: self(getattr(value, f.name), f"{where}.{f.name}")
                for f in dataclasses.fields(value)
            }
            return {"__object__": {"type": tag, "fields": fields}}
        if type(value).__module__.startswith("formulaic"):
            return self.formulaic(value, where)
        raise TypeError(
            f"cannot save {where}: values of type {type(value).__name__} have no JSON encoding "
            "(bayes_mlr saves without pickle)"
        )

    def formulaic(self, value: Any, where: str) -> Any:
        import enum

        by_type = {}
        for tag, obj in _formulaic_types().items():
            if isinstance(obj, type):
                by_type[obj] = tag
            elif value is obj:  # a sentinel
                return {"__sentinel__": tag}
        tag = by_type.get(type(value))
        if tag is None:
            raise TypeError(
                f"cannot save {where}: the formula uses {type(value).__module__}."
                f"{type(value).__qualname__}, which bayes_mlr cannot store without pickle"
            )
        if isinstance(value, enum.Enum):
            return {"__enum__": {"type": tag, "name": value.name}}
        if tag == "formulaic.ModelSpec":
            text = str(value.formula)
            if all(str(term) != "1" for term in value.formula):
                text += " - 1"  # else rebuilding adds an intercept (a response's spec has none)
            fields = {"formula": text}
            fields.update({k: self(getattr(value, k), f"{where}.{k}") for k in _MODEL_SPEC_FIELDS})
        else:
            fields = {
                f.name: self(getattr(value, f.name), f"{where}.{f.name}")
                for f in dataclasses.fields(value)
            }
        return {"__object__": {"type": tag, "fields": fields}}


def _encode(value: Any, where: str) -> Any:
    return _Encoder()(value, where)


class _Decoder:
    """Inverse of :class:`_Encoder`; builds only whitelisted types, so it cannot run code."""

    def __init__(self, refs: dict[str, Any] | None = None):
        self.refs = refs if refs is not None else {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            raise ValueError(f"malformed {MODEL_FILE}: unexpected object with keys {sorted(value)}")
        ((tag, body),) = value.items()
        if tag == "__float__":
            return _NONFINITE[body]
        if tag == "__scalar__":
            dtype = np.dtype(body["dtype"])
            arr = _decode_array({"dtype": body["dtype"], "shape": [1], "data": [body["value"]]})
            return dtype.type(arr[0])
        if tag == "__ndarray__":
            return _decode_array(body)
        if tag == "__dict__":
            return {k: self(v) for k, v in body.items()}
        if tag == "__items__":
            return {self(k): self(v) for k, v in body}
        if tag == "__tuple__":
            return tuple(self(v) for v in body)
        if tag == "__family__":
            from bayes_mlr.core.components import resolve_family

            return resolve_family(self(body))
        if tag == "__ref__":
            if body not in self.refs:
                raise ValueError(f"malformed {MODEL_FILE}: reference to unknown {body!r}")
            return self.refs[body]
        if tag == "__Generator__":
            name = body["bit_generator"]
            if name not in _BIT_GENERATORS:
                raise ValueError(f"malformed {MODEL_FILE}: unknown bit generator {name!r}")
            bitgen = getattr(np.random, name)()
            bitgen.state = self(body["state"])
            return np.random.Generator(bitgen)
        if tag in ("__object__", "__enum__", "__sentinel__"):
            kind = body if tag == "__sentinel__" else body["type"]
            types = _formulaic_types() if kind.startswith("formulaic.") else _object_types()
            if kind not in types:
                raise ValueError(f"malformed {MODEL_FILE}: unknown type {kind!r}")
            if tag == "__sentinel__":
                return types[kind]
            if tag == "__enum__":
                return types[kind][body["name"]]
            return types[kind](**{k: self(v) for k, v in body["fields"].items()})
        raise ValueError(f"malformed {MODEL_FILE}: unknown tag {tag!r}")


def _decode(value: Any) -> Any:
    return _Decoder()(value)


# --------------------------------------------------------------------------------------------
# save_model / load_model
# --------------------------------------------------------------------------------------------


def _data_dims(key: str, ndim: int) -> tuple[str, ...]:
    """Dimensions of a training-data variable: rows are ``obs``; the columns of X are
    ``feature``, those of the concomitant variables ``concomitant_variable`` (a dimension may not
    share the variable's name)."""
    return ("obs", "concomitant_variable" if key == "concomitant" else "feature")[:ndim]


def _data_dataset(arrays: dict[str, np.ndarray], feature_names: list[str] | None) -> Any:
    import xarray as xr

    data_vars = {}
    for key, arr in arrays.items():
        dims = _data_dims(key, arr.ndim)
        data_vars[key] = xr.Variable(dims, arr, attrs={"writeable": int(arr.flags.writeable)})
    coords = {}
    if feature_names is not None and "X" in arrays:
        coords["feature"] = np.asarray(feature_names, dtype=str)
    ds = xr.Dataset(data_vars, coords=coords)
    for name in ds.data_vars:
        ds[name].encoding = {"_FillValue": None}
    return ds


def _content_name(digests: Mapping[str, str]) -> str:
    """The data file's name, from the digests of its arrays (content-addressed)."""
    combined = hashlib.sha256("".join(digests.values()).encode()).hexdigest()
    return f"{DATA_PREFIX}{combined[:16]}.nc"


def _write_streamed_data(
    arrays: Mapping[str, Any], feature_names: Any, directory: Path
) -> tuple[str, dict[str, str]]:
    """Write training data held in Dask arrays to netCDF one row chunk at a time.

    Each chunk is computed, hashed and written before the next, so memory holds one chunk
    (a model fitted on more rows than fit in memory can be saved). The file is written under
    a temporary name, then moved to its content-addressed name.

    Returns
    -------
    (file name, {variable: SHA-256 of its float64 bytes})
    """
    import h5netcdf
    import h5py

    directory.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_path(directory / f"{DATA_PREFIX}streaming.nc")
    digests: dict[str, str] = {}
    try:
        with h5netcdf.File(tmp, "w") as f:
            f.dimensions["obs"] = int(arrays["X"].shape[0])
            f.dimensions["feature"] = int(arrays["X"].shape[1])
            if "concomitant" in arrays:
                f.dimensions["concomitant_variable"] = int(arrays["concomitant"].shape[1])
            if feature_names is not None:
                names = np.asarray([str(name) for name in feature_names], dtype=object)
                f.create_variable("feature", ("feature",), dtype=h5py.string_dtype(), data=names)
            for key, arr in arrays.items():
                dims = _data_dims(key, arr.ndim)
                variable = f.create_variable(key, dims, dtype="<f8")
                variable.attrs["writeable"] = 1
                h = hashlib.sha256()
                start = 0
                for block in _row_blocks(arr):
                    variable[start : start + block.shape[0]] = block
                    h.update(block.tobytes(order="C"))
                    start += block.shape[0]
                digests[key] = h.hexdigest()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        name = _content_name(digests)
        os.replace(tmp, directory / name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(directory)
    return name, digests


def _verify_digests(arrays: Mapping[str, Any], digests: Mapping[str, str], data_path, path):
    """Refuse a data file whose arrays do not hash to what ``model.json`` recorded."""
    for key, digest in digests.items():
        if key in arrays:
            h = hashlib.sha256()
            for block in _row_blocks(arrays[key]):
                h.update(block.tobytes(order="C"))
            if h.hexdigest() == digest:
                continue
        raise ValueError(
            f"{data_path} does not match {path} (variable {key!r} differs): the two "
            "files come from different saves"
        )


def save_model(model: Any, directory: str | os.PathLike) -> Path:
    """Save an estimator (fitted or not) to ``directory``: ``model.json`` and a netCDF file.

    ``model.json`` holds the class name, the constructor arguments and every other attribute
    (``weights_``, ``coef_``, ``result_``, ``feature_names_in_``, cached standard errors, ...),
    encoded losslessly: float64 values as JSON numbers (``repr`` round-trips exactly), NaN and
    infinities as tagged strings, array dtypes, shapes and write flags, numpy scalar types and
    Generator states. ``data-<hash>.nc`` holds the training data ``X``, ``y`` (and
    ``sample_weight``, ``groups``, ``concomitant``, ``offset``, ``trials`` where the fit has
    them) as float64 netCDF variables (other dtypes, such as integer group codes, are recorded
    and restored); ``model.json`` names it and records the
    SHA-256 of each array, so that altered data are refused on loading. The data file is
    written first, then ``model.json`` (each atomically), then data files of earlier saves are
    removed: an interrupted save leaves the previous model loadable.

    A model fitted on Dask arrays keeps its training data lazy: they are written one row chunk
    at a time (memory holds one chunk), and :func:`load_model` opens them as Dask arrays with
    the same row chunks.

    Parameters
    ----------
    model : MixtureOfRegressions
    directory : path-like
        Created if needed; an earlier save there is replaced.

    Returns
    -------
    pathlib.Path
        The directory.

    Raises
    ------
    TypeError
        An attribute has a type with no lossless JSON encoding (nothing is written then).
    """
    from bayes_mlr._version import __version__

    directory = Path(directory)
    params = {name: _encode(value, name) for name, value in model.get_params().items()}
    state = {k: v for k, v in vars(model).items() if k not in params}
    encode = _Encoder(
        refs={
            id(v): k
            for k, v in state.items()
            if not isinstance(v, int | float | str | bool | type(None))
        }
    )
    arrays: dict[str, np.ndarray] = {}
    attributes: dict[str, Any] = {}
    data_attrs: dict[str, str | None] = {}
    dtypes: dict[str, str] = {}  # stored as float64; other dtypes (group codes) come back
    for name, value in state.items():
        if name in _DATA_ATTRS:
            if value is None:
                data_attrs[name] = None
            else:
                lazy = is_dask_collection(value)
                dtype = np.dtype(value.dtype if lazy else np.asarray(value).dtype)
                if dtype != np.float64:
                    dtypes[_DATA_ATTRS[name]] = dtype.str
                arrays[_DATA_ATTRS[name]] = value if lazy else np.asarray(value, dtype=np.float64)
                data_attrs[name] = _DATA_ATTRS[name]
        else:
            attributes[name] = encode(value, name, top=True)
    document: dict[str, Any] = {
        "format": "bayes_mlr.model",
        "schema_version": MODEL_SCHEMA_VERSION,
        "class": type(model).__name__,
        "bayes_mlr_version": __version__,
        "params": params,
        "attributes": attributes,
        "order": list(state),
        "data": None,
    }
    data_file = None
    if arrays:
        names = getattr(model, "feature_names", None) if hasattr(model, "result_") else None
        # The data file is named after its content: a new save never overwrites the file the
        # current model.json names, so an interrupted save leaves the previous model loadable.
        row_chunks = None
        if any(is_dask_collection(arr) for arr in arrays.values()):
            data_file, digests = _write_streamed_data(arrays, names, directory)
            row_chunks = [int(c) for c in arrays["X"].chunks[0]]
        else:
            digests = {
                key: hashlib.sha256(arr.tobytes(order="C")).hexdigest()
                for key, arr in arrays.items()
            }
            data_file = _content_name(digests)
            write_dataset(_data_dataset(arrays, names), directory / data_file)
        document["data"] = {"file": data_file, "attributes": data_attrs, "sha256": digests}
        if dtypes:
            document["data"]["dtypes"] = dtypes
        if row_chunks is not None:
            document["data"]["row_chunks"] = row_chunks
    text = json.dumps(document, indent=1, allow_nan=False, ensure_ascii=False)
    write_text(directory / MODEL_FILE, text + "\n")
    for stale in directory.glob(f"{DATA_PREFIX}*.nc"):  # data of earlier saves
        if stale.name != data_file:
            with contextlib.suppress(OSError):
                stale.unlink()
    return directory


def load_model(directory: str | os.PathLike, cls: type) -> Any:
    """Load an estimator saved by :func:`save_model`; the result equals the saved one exactly.

    Parameters
    ----------
    directory : path-like
    cls : type
        The estimator class (:class:`~bayes_mlr.MixtureOfRegressions`); it must match the class
        name recorded in ``model.json``. It is passed in, not imported, so that this module does
        not depend on the estimator that uses it.

    Returns
    -------
    MixtureOfRegressions

    Raises
    ------
    FileNotFoundError
        ``model.json`` (or the data file it names) is missing.
    ValueError
        The files are not a saved bayes_mlr model, have a newer schema, or the data file does
        not match ``model.json``.
    """
    import xarray as xr

    directory = Path(directory)
    path = directory / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no saved model in {directory}: {MODEL_FILE} is missing")
    try:
        document = read_json(path)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != "bayes_mlr.model":
        raise ValueError(f"{path} is not a saved bayes_mlr model")
    version = document.get("schema_version")
    if not isinstance(version, int) or version > MODEL_SCHEMA_VERSION:
        raise ValueError(
            f"{path} has schema version {version!r}; this bayes_mlr reads versions up to "
            f"{MODEL_SCHEMA_VERSION} (upgrade bayes_mlr)"
        )
    if document.get("class") != cls.__name__:
        raise ValueError(f"{path} holds a {document.get('class')}, not a {cls.__name__}")
    model = cls(**{k: _decode(v) for k, v in document["params"].items()})
    decode = _Decoder()
    for name, value in document["attributes"].items():
        decode.refs[name] = decode(value)
        setattr(model, name, decode.refs[name])
    info = document.get("data")
    if info is not None:
        data_path = directory / info["file"]
        if not data_path.is_file():
            raise FileNotFoundError(f"{path} names {info['file']}, which is missing")
        row_chunks = info.get("row_chunks")
        if row_chunks is None:
            with xr.open_dataset(data_path, engine=_NETCDF_ENGINE, mask_and_scale=False) as ds:
                arrays = {k: ds[k].to_numpy().astype(np.float64, copy=True) for k in ds.data_vars}
                writeable = {k: bool(ds[k].attrs.get("writeable", 1)) for k in ds.data_vars}
        else:  # saved from Dask arrays: open lazily, with the row chunks they had
            ds = xr.open_dataset(
                data_path,
                engine=_NETCDF_ENGINE,
                mask_and_scale=False,
                chunks={"obs": max(row_chunks)},
            )
            arrays = {
                k: ds[k].data.rechunk((tuple(row_chunks), *ds[k].data.chunks[1:]))
                for k in ds.data_vars
            }
            writeable = dict.fromkeys(arrays, True)
        _verify_digests(arrays, info["sha256"], data_path, path)
        dtypes = info.get("dtypes", {})
        for attr, key in info["attributes"].items():
            if key is None:
                setattr(model, attr, None)
                continue
            arr = arrays[key]
            if key in dtypes:  # e.g. integer group codes, stored as float64
                dtype = np.dtype(dtypes[key])
                if dtype.kind not in "biuf":
                    raise ValueError(f"malformed {MODEL_FILE}: data dtype {dtypes[key]!r}")
                arr = arr.astype(dtype)
            if not is_dask_collection(arr):
                arr = np.ascontiguousarray(arr)
                arr.setflags(write=writeable[key])
            setattr(model, attr, arr)
    order = [*document["params"], *document.get("order", [])]
    model.__dict__ = {k: model.__dict__[k] for k in order if k in model.__dict__} | {
        k: v for k, v in model.__dict__.items() if k not in order
    }
    return model
