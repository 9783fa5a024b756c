# Every target that runs loopline depends on .venv, which `make setup` builds when missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.loopline-installed

# Telemetry off wherever loopline runs (DESIGN.md §8).
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export ITERATIVE_DO_NOT_TRACK := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# dvc.yaml stages call `loopline`: make the venv's console scripts visible to them.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test lint ui bench clean

setup: $(STAMP)

# torch first, from the local CPU wheel; the constraint keeps every later install on it.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]" -c constraints.txt
	@touch $(STAMP)

demo: setup
	dvc repro validate
	@echo
	@echo "feature table     data/features/   (summary: reports/ingest.json)"
	@echo "validated data    data/validated/  (quarantine: data/quarantine/features.parquet)"
	@echo "validation report reports/validation/features.html"
	@echo "metrics           dvc metrics show"

test: setup
	ruff check .
	pytest -q

lint: setup
	ruff check .
	ruff format --check .

ui: setup
	mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///mlflow/mlflow.db

bench: setup
	python -m bench

clean:
	rm -rf $(VENV)
