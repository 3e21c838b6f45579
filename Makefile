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
# forge through its platform binary: the npm wrapper in $(BIN) exits 0 even when forge fails.
FORGE := $(CURDIR)/scripts/foundry.sh forge
# What each gate looks at; tests/test_gates.py points them at broken trees to show each can fail.
FORGE_ROOT := .
PY_PATHS := ledger vault api wallet_cli node tests scripts
MYPY_ARGS :=
IMPORTS_CONFIG := pyproject.toml

.PHONY: bootstrap chromium up down status test test-contracts test-python lint lint-ruff lint-format \
	typecheck imports slither fmt bench gas-bench clean

bootstrap: $(VENV)/.installed node_modules/.installed chromium

# Debian's Chromium for the browser tests (Playwright cannot download browsers here). Installed
# when missing and we may (root with apt-get); otherwise the browser tests skip and say how.
chromium:
	@if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian chromium for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
		|| echo "warning: apt-get install chromium failed: browser tests will skip"; \
	else echo "note: no chromium (apt-get install -y chromium): browser tests will skip"; fi

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

# Every gate stops the run on failure: lint, types, import contracts, forge, artifacts, pytest.
test: bootstrap lint test-contracts slither test-python

test-contracts: node_modules/.installed
	cd $(FORGE_ROOT) && $(FORGE) build
	cd $(FORGE_ROOT) && $(FORGE) test
	cd $(FORGE_ROOT) && $(FORGE) snapshot --check --match-path 'contracts/test/unit/*'

# Slither on contracts/src with the triage of slither.config.json (docs/contracts.md, "Static
# analysis"); it runs from its own .venv-slither (it needs web3<8), created on first use.
slither: bootstrap
	$(PY) scripts/slither.py

test-python: bootstrap
	$(PY) scripts/gen_artifacts.py --check
	$(PY) -m pytest -q

lint: lint-ruff lint-format typecheck imports

lint-ruff: bootstrap
	$(VENV)/bin/ruff check $(PY_PATHS)

lint-format: bootstrap
	$(VENV)/bin/ruff format --check $(PY_PATHS)

typecheck: bootstrap
	$(VENV)/bin/mypy $(MYPY_ARGS)

# Layer rules of docs/architecture.md ([tool.importlinter] in pyproject.toml); imports inside
# functions count.
imports: bootstrap
	$(VENV)/bin/lint-imports --no-cache $(IMPORTS_CONFIG)

fmt: bootstrap
	$(VENV)/bin/ruff format ledger vault api wallet_cli node tests scripts
	$(VENV)/bin/ruff check --fix ledger vault api wallet_cli node tests scripts
	$(FORGE) fmt

gas-bench: bootstrap
	cd $(FORGE_ROOT) && $(FORGE) build --quiet
	$(PY) scripts/bench_gas.py

# Every benchmark in short modes (a few minutes), one table of same-run figures against their
# targets (scripts/bench_all.py; BENCH_ARGS="--wallet" adds the wallet CLI, "--full" the long modes).
bench: bootstrap
	cd $(FORGE_ROOT) && $(FORGE) build --quiet
	$(PY) scripts/bench_all.py $(BENCH_ARGS)

clean:
	rm -rf out cache .pytest_cache .hypothesis

.PHONY: demo
#   make demo   play the demo story (departments, citizen, bank, notary, regulator) on the node `make up` runs
demo: bootstrap
	$(VENV)/bin/datasafe-node demo
