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
	$(BIN)/pip install --quiet -c requirements/constraints.txt -e '.[spark,airflow,serve,dev]'
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

## browser-check: the gate report and an export summary.html opened offline in headless Chromium (tests/test_browser.py,
## also part of `make test` wherever chromium is installed); installs Debian's chromium and a font that draws Chinese
## when missing (apt-get: as root, else with sudo)
.PHONY: browser-check
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser-check: $(STAMP)
	(command -v chromium && fc-list :lang=zh | grep -q .) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; }
	$(BIN)/python -m pytest tests/test_browser.py -rs

clean:
	rm -rf $(DATA) .pytest_cache
