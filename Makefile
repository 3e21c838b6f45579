# DataSafe Ledger — the targets a newcomer expects.
#   make up     start the whole node: chain, contracts, custodian, database, API + indexer
#   make status / make down   check / stop the running node
#   make test   bootstrap everything from a fresh clone, then forge tests + gas check + pytest
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := node_modules/.bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: bootstrap up down status test test-contracts test-python lint fmt bench gas-bench clean

bootstrap: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	@# npm ci installs exactly the lock and never rewrites it: a fresh clone stays clean.
	npm ci --no-audit --no-fund
	@touch $@

up: bootstrap
	$(VENV)/bin/datasafe-node up

down: bootstrap
	$(VENV)/bin/datasafe-node down

status: bootstrap
	$(VENV)/bin/datasafe-node status

test: bootstrap test-contracts test-python

test-contracts: node_modules/.installed
	$(BIN)/forge build
	$(BIN)/forge test
	$(BIN)/forge snapshot --check --match-path 'contracts/test/unit/*'

test-python: bootstrap
	$(PY) scripts/gen_artifacts.py --check
	$(PY) -m pytest -q

lint: bootstrap
	$(VENV)/bin/ruff check ledger vault api wallet_cli tests scripts
	$(VENV)/bin/ruff format --check ledger vault api wallet_cli tests scripts
	$(VENV)/bin/mypy

fmt: bootstrap
	$(VENV)/bin/ruff format ledger vault api wallet_cli tests scripts
	$(VENV)/bin/ruff check --fix ledger vault api wallet_cli tests scripts
	$(BIN)/forge fmt

gas-bench: bootstrap
	$(PY) scripts/bench_gas.py

bench: gas-bench
	$(PY) scripts/bench_vault.py

clean:
	rm -rf out cache .pytest_cache .hypothesis

.PHONY: demo
#   make demo   play the demo story (departments, citizen, bank, notary, regulator) on the node `make up` runs
demo: bootstrap
	$(VENV)/bin/datasafe-node demo
