# The two commands of the README. Both work on a fresh machine from a fresh clone.
#   make run   - set up and run the main job on the embedded SQLite database
#   make test  - set up and run ruff, mypy and the whole test suite on SQLite and PostgreSQL
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.stamp-run
DEV_STAMP := $(VENV)/.stamp-dev

.PHONY: run test lint typecheck pytest clean system-deps system-deps-test i18n

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

system-deps:
	bash scripts/system-deps.sh

system-deps-test:
	bash scripts/system-deps.sh --test

run: system-deps $(RUN_STAMP)
	$(BIN)/ispbill init
	$(BIN)/ispbill demo

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy src/ispbill

# Two processes by default (pytest-xdist, one PostgreSQL database and SQLite template per
# process; a test file stays on one process): PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
pytest: $(DEV_STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=15

test: system-deps-test lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis ispbill.db* ispbill-tour.db* ispbill-demo.db*

# Translations (Babel): extract the messages of the web pages, merge them into each language's
# catalog, compile the .mo files (committed; tests/unit/test_i18n.py checks they are current).
LOCALES := src/ispbill/locale
i18n: $(DEV_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext --no-location --sort-output --project ispbill -o $(LOCALES)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALES)/messages.pot -d $(LOCALES) -D messages --no-fuzzy-matching
	$(BIN)/pybabel compile -d $(LOCALES) -D messages --use-fuzzy --statistics
