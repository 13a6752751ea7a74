# Audotics: every entry point a person needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV_VERSION := 0.13.8
VENV := .venv
BIN := $(VENV)/bin
STATE := .audotics
# The JS/CSS the GX Data Docs load, pinned npm tarballs (name version sha256), so the docs work
# offline: expectations/validation.py copies them into each built site.
VENDOR := $(STATE)/vendor
NPM := https://registry.npmjs.org
VENDORED := \
  jquery 3.7.1 68a9f787516da47c680e09c187bcbac4536b6f85d90eb882844e12919e583f53 \
  bootstrap 4.3.1 b109c069bbb7cee57c3ddffb65d8481db5fe7e428b6d9b1ca502119a0429bd16 \
  bootstrap-table 1.19.1 80f84cbf2f8f92e0d5444a82fb99495ab8a286b5cdb0594102e568eb9d9fa69a \
  @fortawesome/fontawesome-free 6.6.0 cf0b890ab2b68d3c4ea0f93ceb81cc24b956cccf9db36c63be044a672bd3b4dd \
  popper.js 1.12.9 4233fad2da34a2a6bc982e7e02c85c14180af075853d97d7e3bfa7124c853cbf \
  bootstrap-datepicker 1.9.0 342bd95b65db796e0ac35ad9296edbe6733daefc9869b2e5b27286d423e38146 \
  @forevolve/bootstrap-dark 1.1.0 20b089d52bc2ae80424fc43e5263023e96bd8479e7c5d346b8766c1b792a1cfd \
  vega 5.33.1 1b8504b6731c5311be3269c4d84ca996a5cc293bc772283293ede20c490e16c3 \
  vega-lite 5.23.0 e4cbfdd8f6f1abe381c59cd558fd6a559c12b1496bfdf2e0c3295263a40fe4da \
  vega-embed 6.29.0 ecf1ee709c2bac9e0a4ead6908114b05b62c71493e10a8a4308109bb070f8eb1
# The dbt graph the warehouse DAG renders (see the target below) and what it is built from.
DBT_MANIFEST := dbt/target/manifest.json
DBT_SOURCES := $(shell find dbt \( -path dbt/target -o -path dbt/logs \) -prune -o -type f \( -name '*.sql' -o -name '*.yml' \) -print)
# Airflow reads its configuration from the environment; keep it inside the project.
export AIRFLOW_HOME := $(CURDIR)/$(STATE)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export OPENBLAS_NUM_THREADS := 1
# Plain `dbt` finds the project's profile (it reads the AUDOTICS settings from the environment).
export DBT_PROFILES_DIR := $(CURDIR)/dbt
# Airflow, dbt and spark-submit are called by name from tasks and tools: the venv comes first.
export PATH := $(CURDIR)/$(BIN):$(PATH)


.PHONY: help setup check-java check-chromium dashboards dbt-build test test-unit lint format run services-up services-down airflow api docs \
        dbt-build dashboards bench lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

setup: check-java check-chromium $(VENV)/.installed $(STATE)/.airflow-db $(DBT_MANIFEST) $(VENDOR)/.installed ## create .venv, install pinned deps, prepare local state (idempotent)
	@echo "setup complete: run 'make test', then 'make run'"

check-java:
	@command -v java >/dev/null || { echo "ERROR: Java not found. Spark needs a JDK 17 or newer on PATH (e.g. apt-get install openjdk-17-jdk-headless, brew install openjdk@17)." >&2; exit 1; }
	@major=$$(java -version 2>&1 | awk -F'"' '/version/ {split($$2, v, "."); print (v[1] == "1" ? v[2] : v[1])}'); \
	 if [ -z "$$major" ] || [ "$$major" -lt 17 ]; then echo "ERROR: Java $$major found; Spark 4 needs a JDK 17 or newer." >&2; exit 1; fi

# The dashboard tests render pages in Debian's chromium (a downloaded browser build cannot work
# offline). As root it is installed with apt-get; otherwise a clear message says what to do.
check-chromium:
	@command -v chromium >/dev/null || [ -n "$$CHROMIUM_PATH" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (apt-get) for the dashboard tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "ERROR: chromium not found; the dashboard tests render pages in it. Install it (e.g. sudo apt-get install chromium) or set CHROMIUM_PATH to a Chromium/Chrome binary." >&2; exit 1; \
	  fi; }

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "ERROR: $(PYTHON) not found; Audotics needs Python 3.11 (set PYTHON=/path/to/python3.11)." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Re-synced only when the lock or the project metadata change: a second `make setup` is a no-op.
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/uv
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip sync --quiet requirements.lock
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip install --quiet --no-deps -e .
	@touch $@

# The warehouse DAG reads the dbt graph from this manifest, so parsing it runs no dbt. `dbt parse`
# needs the profile (its defaults) but no database connection. Rebuilt when a dbt file changes.
$(DBT_MANIFEST): $(VENV)/.installed $(DBT_SOURCES)
	$(BIN)/dbt parse --quiet --project-dir dbt --profiles-dir dbt --target-path target
	@touch $@

# Each package unpacked into $(VENDOR)/<name>/ once its tarball's sha256 matches the pin; redone
# only when the pins (this Makefile) change.
$(VENDOR)/.installed: Makefile
	@set -e; set -- $(VENDORED); while [ $$# -gt 0 ]; do \
	  name=$$1 version=$$2 sha=$$3; shift 3; tgz=$(VENDOR)/$${name##*/}-$$version.tgz; \
	  mkdir -p $(VENDOR); \
	  curl -fsSL -o $$tgz "$(NPM)/$$name/-/$${name##*/}-$$version.tgz" \
	    || { echo "ERROR: could not download $$name@$$version from $(NPM)" >&2; exit 1; }; \
	  echo "$$sha  $$tgz" | sha256sum --check --quiet - \
	    || { echo "ERROR: $$name@$$version: sha256 differs from the pin in the Makefile" >&2; exit 1; }; \
	  rm -rf $(VENDOR)/$$name && mkdir -p $(VENDOR)/$$name; \
	  tar -xzf $$tgz -C $(VENDOR)/$$name --strip-components=1 && rm $$tgz; \
	done
	@touch $@

$(STATE)/.airflow-db: $(VENV)/.installed
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || { tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1; }
	@touch $@

lock: | $(BIN)/uv ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --all-extras --override constraints-overrides.txt \
	  --python-version 3.11 --no-header -o requirements.lock

test: ## run the whole test suite against real PostgreSQL, Redis, Spark, Delta and Airflow
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/pytest

test-unit: ## only the fast pure tests (no PostgreSQL, Redis, Spark or Airflow): seconds
	$(BIN)/pytest -m "not integration"

# lint-imports checks the one-way architecture ([tool.importlinter] in pyproject.toml).
lint: ## ruff, the import contracts and sqlfluff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/sqlfluff lint dbt/models dbt/tests

format: ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

run: ## run the nightly pipeline on the embedded default
	$(BIN)/audotics run

airflow: ## start the Airflow UI with every DAG on AUDOTICS_AIRFLOW_PORT (8080; Ctrl-C stops)
	$(BIN)/audotics services up
	$(BIN)/audotics airflow

api: ## serve the read API on http://127.0.0.1:8000 (docs at /docs)
	$(BIN)/audotics services up
	$(BIN)/audotics serve

dbt-build: ## load the lake into the warehouse (raw) and run dbt build
	$(BIN)/audotics warehouse build

docs: ## serve the dbt docs and the GX Data Docs on http://127.0.0.1 (ports: `audotics settings`)
	$(BIN)/audotics docs

dashboards: ## serve the analytics dashboards on http://127.0.0.1:8501 (run `make run` first)
	$(BIN)/audotics dashboards

services-up: ## start embedded PostgreSQL and Redis
	$(BIN)/audotics services up

services-down: ## stop embedded PostgreSQL and Redis
	$(BIN)/audotics services down

bench: ## run every benchmark in bench/ (slow; prints tables)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean: ## stop services and delete local state (.audotics); keeps .venv
	-$(BIN)/audotics services down
	rm -rf $(STATE)
