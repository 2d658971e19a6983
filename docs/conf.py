"""Sphinx configuration of the bayes_mlr documentation (``make docs``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import bayes_mlr

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

project = "bayes_mlr"
author = "bayes_mlr developers"
copyright = "2026, bayes_mlr developers"
version = release = bayes_mlr.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
]

# -- the notebooks: copied in at build time (notebooks/ stays the one source), executed in
# fast mode (small draws) so that every figure shows
NOTEBOOK_DIR = HERE / "notebooks"
if NOTEBOOK_DIR.exists():
    shutil.rmtree(NOTEBOOK_DIR)
NOTEBOOK_DIR.mkdir()
_notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
for path in _notebooks:
    shutil.copy2(path, NOTEBOOK_DIR / path.name)
(NOTEBOOK_DIR / "index.md").write_text(
    "# Notebooks\n\nExecuted at build time (fast mode: small draws), with their figures. Each "
    "cell checks its own claims.\n\n```{toctree}\n:maxdepth: 1\n\n"
    + "\n".join(p.stem for p in _notebooks)
    + "\n```\n"
)
os.environ.setdefault("BAYES_MLR_FAST", "1")
nb_execution_mode = "force"
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

myst_enable_extensions = ["dollarmath", "colon_fence"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc sections carry the types
autodoc_default_options = {"inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = "bayes_mlr"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_end": ["navbar-icon-links"],
}
html_static_path: list[str] = []
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute"]
suppress_warnings = ["config.cache"]
