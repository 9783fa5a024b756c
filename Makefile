# Every target that runs loopline depends on .venv, which `make setup` builds when missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.loopline-installed

# Telemetry off wherever loopline runs (docs/operations.md, "Telemetry off").
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export ITERATIVE_DO_NOT_TRACK := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Prefect keeps its runs in the project (the CLI sets the same default).
export PREFECT_HOME := $(abspath .prefect)
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
# dvc.yaml stages call `loopline`: make the venv's console scripts visible to them.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test test-fast lint ui bench clean

setup: $(STAMP)

# torch first, from the local CPU wheel; the constraint keeps every later install on it.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]" -c constraints.txt
	@touch $(STAMP)

# The whole loop on the real 2013 flights: the pipeline trains on January–March (dvc repro),
# then April–December arrive as nightly batches and the loop retrains when it decides to.
demo: setup
	@start=$$(date +%s) && dvc repro && echo "pipeline (dvc repro): $$(( $$(date +%s) - start )) s"
	loopline demo --start 2013-04-01 --end 2013-12-31

# Everything: lint, the import layers, unit and integration tests (what CI runs).
test: setup
	ruff check .
	lint-imports
	pytest -q

# The unit tests alone (pure functions on tiny frames): well under a minute.
test-fast: setup
	pytest -q tests/unit

lint: setup
	ruff check .
	ruff format --check .
	lint-imports

# Both UIs on loopback only; Ctrl-C stops both. Other ports: make ui PREFECT_PORT=4255
# MLFLOW_PORT=5055. The Prefect UI asks its API at PREFECT_UI_API_URL, which defaults to port
# 4200 whatever port the server listens on: set here to the port it does listen on.
PREFECT_PORT ?= 4200
MLFLOW_PORT ?= 5000
ui: setup
	@echo "MLflow → http://127.0.0.1:$(MLFLOW_PORT)    Prefect → http://127.0.0.1:$(PREFECT_PORT)"
	PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api \
	PREFECT_UI_URL=http://127.0.0.1:$(PREFECT_PORT) \
	prefect server start --host 127.0.0.1 --port $(PREFECT_PORT) & server=$$!; \
	trap 'kill $$server' EXIT; \
	mlflow ui --host 127.0.0.1 --port $(MLFLOW_PORT) --backend-store-uri sqlite:///$(abspath mlflow/mlflow.db)

# The benchmarks need the feature table: `dvc repro ingest` builds it (a no-op when current).
bench: setup
	dvc repro ingest
	python -m bench

clean:
	rm -rf $(VENV)
