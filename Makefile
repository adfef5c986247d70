# The verbs of the project. `make dev` installs, `make test` runs every check CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: dev system-deps kube-apiserver test lint typecheck unit bench bench-gatekeeper bench-images bench-log bench-presync bench-webhook policy-test clean

dev: system-deps kube-apiserver $(BIN)/trustgate

# Debian packages the tests run as real services (see the script).
system-deps:
	sh scripts/install-system-deps.sh

# kube-apiserver for the end-to-end admission tests, built once from Debian's source
# package and cached outside the repository (~/.cache/trustgate; about 4-7 minutes).
kube-apiserver: system-deps
	sh scripts/kube-apiserver.sh >/dev/null

$(BIN)/trustgate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

lint: dev
	$(BIN)/ruff check trustgate tests bench
	$(BIN)/ruff format --check trustgate tests bench
	$(BIN)/lint-imports

typecheck: dev
	$(BIN)/mypy

policy-test: dev
	$(BIN)/trustgate policy test policies/

unit: dev
	$(BIN)/pytest -q

test: lint typecheck policy-test unit

bench: dev
	$(BIN)/python bench/run.py

# Gatekeeper's general library over the same corpus: compile time and documents/second.
bench-gatekeeper: dev
	$(BIN)/python bench/gatekeeper.py

bench-images: dev
	$(BIN)/python bench/images.py

# The decision log on SQLite and PostgreSQL: appends, queries and verify over 1,000,000 records.
bench-log: dev
	$(BIN)/python bench/decisions.py

# One presync decision: 1,000 manifests, 50 signed images, a 20-commit SSH-signed range.
bench-presync: dev
	$(BIN)/python bench/presync.py

# The admission webhook under wrk: throughput, p50/p99/p99.9, memory per worker.
bench-webhook: dev
	$(BIN)/python bench/webhook.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
