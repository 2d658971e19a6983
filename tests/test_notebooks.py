"""The notebooks in notebooks/ run top to bottom (with BAYES_MLR_FAST=1) and are committed clean.

``BAYES_MLR_FAST=0 pytest tests/test_notebooks.py`` runs them in full instead (a few minutes).

Each notebook is executed by nbclient in a fresh kernel of *this* interpreter: a kernel spec
pointing at ``sys.executable`` is written to a temporary Jupyter data directory, so the test does
not depend on which kernels happen to be installed (a clean clone after ``pip install -e .[dev]``
has what it needs: ipykernel, nbclient, nbformat). Cells assert their own results, so a notebook
that runs is a notebook whose checks passed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL_NAME = "bayes-mlr-tests"
# Seconds per cell; generous because the first PyMC model in a fresh environment compiles C code.
CELL_TIMEOUT = 600

# Fast-mode wall times on 2 cores, warm / with an empty PyTensor cache: 3 s, 18 / 40 s,
# 29 / 35 s; 05 (EM only, no PyMC) about 10 s. None takes over a minute, so none is marked
# slow (mark one with pytest.param(..., marks=pytest.mark.slow) if it grows past that).
CASES = [
    pytest.param("01_derivation.ipynb", id="01_derivation"),
    pytest.param("02_em_vs_mcmc.ipynb", id="02_em_vs_mcmc"),
    pytest.param("03_choosing_k.ipynb", id="03_choosing_k"),
    pytest.param("04_hard_posteriors.ipynb", id="04_hard_posteriors"),
    pytest.param("05_families.ipynb", id="05_families"),
]


def all_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A Jupyter data dir holding a kernel spec for this interpreter, and the fast-mode switch."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bayes_mlr tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root))
        mp.setenv("JUPYTER_PLATFORM_DIRS", "1")  # silence jupyter_core's path-migration warning
        # fast mode unless asked otherwise: BAYES_MLR_FAST=0 runs the full notebooks
        mp.setenv("BAYES_MLR_FAST", os.environ.get("BAYES_MLR_FAST", "1"))
        mp.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugger warning on frozen modules
        yield


def test_every_notebook_is_tested():
    names = {p.name for p in all_notebooks()}
    assert names == {c.values[0] for c in CASES}


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.stem)
def test_committed_notebooks_have_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name} cell {i} has outputs: strip them"
        assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.metadata


@pytest.mark.parametrize("name", CASES)
def test_notebook_runs(name, kernel_env):
    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError with the traceback of a failing cell
    elapsed = time.perf_counter() - start
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert errors == []
    print(f"{name}: {elapsed:.1f} s")
