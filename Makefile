# The two commands of the README quickstart: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKSPACE ?= sentinel-data
# setuptools prints an advisory box on every editable install ("folders with the same
# name as your package"); it is meant for its own developers, not for ours.
PIP := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip

.PHONY: screenshots run test lint typecheck install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(PIP) install --quiet -e .

install-test: $(BIN)/python
	$(PIP) install --quiet -e '.[test]'

run: install
	$(BIN)/sentinel --workspace $(WORKSPACE) demo
	@if [ -t 0 ] && [ -t 1 ]; then $(BIN)/sentinel --workspace $(WORKSPACE) tui; fi
	@echo "(sentinel is installed in $(VENV)/bin: run '. $(VENV)/bin/activate' to use the commands above)"

lint: install-test
	$(BIN)/ruff check sentinel tests bench sigma
	$(BIN)/lint-imports  # the layer contracts in pyproject.toml (README, Development)

typecheck: install-test
	$(BIN)/mypy

test: install-test lint typecheck
	$(BIN)/python -m pytest -p no:cacheprovider --durations=10

clean:
	rm -rf $(VENV) $(WORKSPACE)

# The README's pictures of the dashboard, taken from the demo workspace (run `make run` first).
screenshots: install-test
	$(BIN)/python docs/screenshots.py --workspace $(WORKSPACE) --out docs/screens
