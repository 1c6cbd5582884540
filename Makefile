# FundGuard: two commands from a fresh clone — `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data
SCALE  ?= 1
SEED   ?= 7

.PHONY: install run test test-fast lint bench airflow clean

$(STAMP): setup.cfg requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24" wheel
	$(BIN)/pip install --quiet -c requirements/constraints.txt -e '.[spark,airflow,dev]'
	touch $(STAMP)

install: $(STAMP)

## run: generate a sample district drop and screen it end to end on the embedded engine
run: $(STAMP)
	$(BIN)/fundguard synth --out $(DATA)/landing --scale $(SCALE) --seed $(SEED)
	$(BIN)/fundguard run --landing $(DATA)/landing --lake $(DATA)/lake --engine duckdb

## test: the whole suite (unit, both engines, Spark cluster, Airflow, notebook)
test: $(STAMP)
	$(BIN)/python -m pytest

## test-fast: the unit and engine tiers (no Spark, cluster, Airflow or slow tests; markers: tests/conftest.py)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not spark and not cluster and not airflow and not slow"

## lint: pyflakes checks (unused imports, undefined names)
lint: $(STAMP)
	$(BIN)/ruff check --select F pipelines dags tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/screen.py

airflow: $(STAMP)
	bash dags/run_local_airflow.sh

clean:
	rm -rf $(DATA) .pytest_cache
