# `make test` and `make demo` work on a fresh machine: they create .venv and
# install the package with what it needs, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.cfg setup.py pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/python -m pytest

demo: install
	$(BIN)/python -m riomucho_dask.demo demo-output

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) demo-output benchmarks/out
