# `make test` and `make demo` work on a fresh machine: they create .venv and
# install the package with what it needs, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint demo docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.cfg setup.py pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .

# pytest includes tests/test_docs.py: the code blocks of the README and of docs/, and
# the documentation built with warnings as errors.
test: install lint
	$(BIN)/python -m pytest

# The documentation (Sphinx, numpydoc, MyST; the notebooks rendered, not executed) into
# docs/_build/html, every warning an error; then the Python blocks of the README and of
# every page, each page in order in an empty directory.
docs: install
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html
	$(BIN)/python -m pytest -q tests/test_docs.py -k "not sphinx_build"

demo: install
	$(BIN)/python -m riomucho_dask.demo demo-output

# The bench extra (odc-geo, tifffile, imagecodecs: the COG section's odc-geo route)
# is installed for `make bench` only; `make test` does not need it.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) demo-output benchmarks/out docs/_build docs/api/generated docs/notebooks \
		docs/benchmarks/files
