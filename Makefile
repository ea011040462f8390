# Every target sets up .venv itself, so a fresh clone needs only python3 (3.10+), git and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT := build/demo

.PHONY: demo test lint venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/chalicepack build examples/docs-app --stage dev --no-automatic-layer --out $(DEMO_OUT)/single-zip
	$(BIN)/chalicepack build examples/docs-app --stage dev --automatic-layer --out $(DEMO_OUT)/with-layer

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist examples/*/dist
