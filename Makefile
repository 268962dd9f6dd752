# Cuponera: `make run` serves the app, `make test` runs the tests. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
MSSQL_URL ?= mssql+pyodbc://cuponera@cuponera.database.windows.net/cuponera
# Hypercorn worker processes. Default: one per core on PostgreSQL and Azure SQL; at most two on
# SQLite (the default database), where each process queues its own writers in order but the
# processes' writers meet on SQLite's single lock through its busy handler (see README, Performance).
CORES := $(shell nproc 2>/dev/null || echo 1)
WEB_CONCURRENCY ?= $(if $(filter sqlite%,$(or $(DATABASE_URL),sqlite)),$(shell echo $$(( $(CORES) < 2 ? $(CORES) : 2 ))),$(CORES))

.PHONY: run test migrate seed sqlserver-script bench clean help

help:
	@echo "make run               set up, migrate, seed demo data and serve on http://$(HOST):$(PORT) (docs at /docs)"
	@echo "                       with WEB_CONCURRENCY=$(WEB_CONCURRENCY) worker processes"
	@echo "make test              set up and run the test suite (set TEST_DATABASE_URL for PostgreSQL)"
	@echo "make sqlserver-script  print the T-SQL upgrade script for Azure SQL / SQL Server"
	@echo "make bench             run the benchmarks in bench/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

migrate: $(VENV)/.runtime
	$(BIN)/alembic upgrade head

seed: migrate
	$(BIN)/quart --app app seed-demo

run: seed
	$(BIN)/hypercorn "app:create_app()" --bind $(HOST):$(PORT) --workers $(WEB_CONCURRENCY) --access-logfile -

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

sqlserver-script: $(VENV)/.runtime
	@$(BIN)/alembic -x url=$(MSSQL_URL) upgrade head --sql 2>/dev/null

bench: $(VENV)/.dev
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
