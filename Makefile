# bayes_mlr: set-up and everyday commands. Every target creates .venv/ on first use.
# A Python >= 3.12 is found by .ci/find-python ($PYTHON, python3.12/3.13 on PATH, or pyenv).
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help venv demo test test-fast notebooks docs bench compare-r sbc lint format clean
DOCS_STAMP := $(VENV)/.installed-docs

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(PY):
	@interp=$$(.ci/find-python) || exit 1; \
	echo "Creating $(VENV) with $$interp"; \
	"$$interp" -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the project with the dev extra

demo: $(STAMP)  ## fit models/demo.toml end to end (EM, posterior, report in runs/demo/)
	$(VENV)/bin/bayes-mlr run models/demo.toml

test: $(STAMP)  ## run the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)  ## the test suite without tests marked slow
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

notebooks: $(STAMP)  ## execute the notebooks in full (BAYES_MLR_FAST=0), a few minutes
	BAYES_MLR_FAST=0 $(PY) -m pytest tests/test_notebooks.py $(PYTEST_ARGS)

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e ".[docs]"
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)  ## build the HTML site into docs/_build/html (warnings are errors)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)  ## run the benchmarks: figures, ratios and the commit (BENCH_ARGS="-k em --quick")
	$(PY) -m tests.benchmarks $(BENCH_ARGS)

compare-r: $(STAMP)  ## side by side with R flexmix on real data sets (needs Rscript + flexmix, mixtools)
	$(PY) -m tests.peers.select_k

sbc: $(STAMP)  ## simulation-based calibration of the posterior (200 replicates, ~7 min; sbc.png)
	$(PY) -m tests.calibration.sbc --reps 200 --out sbc.png

lint: $(STAMP)  ## ruff check and format check
	$(PY) -m ruff check bayes_mlr tests
	$(PY) -m ruff format --check bayes_mlr tests

format: $(STAMP)  ## apply ruff's formatting and fixes
	$(PY) -m ruff format bayes_mlr tests
	$(PY) -m ruff check --fix bayes_mlr tests

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info docs/_build docs/generated docs/notebooks docs/jupyter_execute
