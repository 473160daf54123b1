# Every target bootstraps .venv itself; `make venv` re-installs only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint format bench demo demo-flows docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check rxflows tests bench examples
	$(BIN)/ruff format --check rxflows tests bench examples
	$(BIN)/mypy --strict rxflows tests examples bench

format: $(STAMP)
	$(BIN)/ruff format rxflows tests bench examples
	$(BIN)/ruff check --fix rxflows tests bench examples

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

# The video pipeline end to end on a sample video (rxflows demo), into ./rxflows-demo.
demo: $(STAMP)
	$(BIN)/python -m rxflows demo

# A tour of the six flows (examples/demo.py).
demo-flows: $(STAMP)
	$(BIN)/python examples/demo.py

# The documentation site (MkDocs Material, API pages from the docstrings) into ./site;
# strict: a broken link, a missing reference or a docstring warning fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
