# Everything a fresh machine needs, from Python alone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
WORKERS ?= 2
FLASK := $(BIN)/flask --app api
STAMP := $(VENV)/.installed

.PHONY: install db run dev test lint format spec check-data bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)  ## virtualenv with the pinned dependencies

db: install  ## build (or bring up to date) the SQLite database from data/
	$(FLASK) data load

run: db  ## serve the API with gunicorn on 127.0.0.1:$(PORT)
	PORT=$(PORT) WEB_CONCURRENCY=$(WORKERS) $(BIN)/gunicorn 'api:create_app()'

dev: db  ## serve with Flask's reloading development server
	$(FLASK) run --port $(PORT) --debug

check-data: install  ## the dataset check: verbatim quotes, references, duplicates, coverage
	$(FLASK) data check

test: install  ## dataset check, then the whole suite on SQLite (and PostgreSQL when reachable)
	$(FLASK) data check
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

spec: install  ## regenerate the committed openapi.yaml from the code
	$(FLASK) spec write openapi.yaml

bench: install  ## benchmark under gunicorn at 10k, 100k and 1M synthetic records (see docs/benchmarks.md)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
