# Everything a fresh machine needs, from Python alone: `make run` and `make test`.
# The first Python 3.12+ found: on PATH, or installed by pyenv without being its global version.
PYTHON ?= $(shell for p in python3.13 python3.12 python3 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null); do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
WORKERS ?= 2
FLASK := $(BIN)/flask --app api
STAMP := $(VENV)/.installed

.PHONY: install db load run dev test lint lint-spec format spec check-data bench clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed: none found (python3.13, python3.12, python3, pyenv). Install one, or pass PYTHON=/path/to/python3.12." >&2; exit 1; }
	@test -x $(BIN)/python && $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 12))' || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)  ## virtualenv with the pinned dependencies

db: install  ## migrate the database; seed it from data/ only if it holds no records yet
	$(FLASK) data load --if-empty

load: install  ## sync the database with data/ (refused over edits made through the API)
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
	$(BIN)/cog --check --diff --check-fail-msg='regenerate: $(BIN)/cog -r README.md' README.md

REDOCLY := @redocly/cli@2.77.0
lint-spec:  ## the committed openapi.yaml against Redocly's recommended rules (needs npx)
	npx --yes $(REDOCLY) lint --format=stylish openapi.yaml

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

spec: install  ## regenerate the committed openapi.yaml from the code
	$(FLASK) spec write openapi.yaml

bench: install  ## benchmark under gunicorn at 10k, 100k and 1M synthetic records (see docs/benchmarks.md)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
