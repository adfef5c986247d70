# The verbs of the project. `make dev` installs, `make test` runs every check CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every direct and transitive dependency, with hashes (`make lock` writes it). Empty: the newest
# releases that pyproject.toml allows (what `make test-latest` tries).
LOCK ?= requirements/dev.lock
LOCK_INPUTS := pyproject.toml requirements/build.in
# The test-only reference engine (OPA, in-process) the differential tests compare against; see the file.
ORACLE_LOCK := requirements/oracle.lock
# Everything `make lock` asks uv for: one resolution for every platform, for the oldest Python we support.
UV_COMPILE := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock"

.PHONY: dev system-deps kube-apiserver test test-latest lock precompiled lint typecheck unit bench bench-gatekeeper bench-images bench-log bench-presync bench-ui bench-summaries bench-webhook bench-webhook-slowloris bench-cel policy-test clean

dev: system-deps kube-apiserver $(BIN)/trustgate

# Debian packages the tests run as real services (see the script).
system-deps:
	sh scripts/install-system-deps.sh

# kube-apiserver for the end-to-end admission tests, built once from Debian's source
# package and cached outside the repository (~/.cache/trustgate; about 4-7 minutes).
kube-apiserver: system-deps
	sh scripts/kube-apiserver.sh >/dev/null

# With a lock: exactly the locked files (pip checks every hash), then trustgate itself, built with
# the locked setuptools. Without one: the newest releases pyproject.toml allows. Either way, the
# pinned reference engine for the differential tests.
$(BIN)/trustgate: pyproject.toml $(LOCK) $(ORACLE_LOCK)
	$(PYTHON) -m venv $(VENV)
ifneq ($(LOCK),)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
else
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
endif
	$(BIN)/pip install --quiet --require-hashes --no-deps --ignore-requires-python -r $(ORACLE_LOCK)
	@touch $@

# Re-resolve the lock after a change to the dependencies in pyproject.toml, or to take newer
# releases: `make test-latest` first shows what the newest releases break.
lock: $(BIN)/uv
	$(UV_COMPILE) --extra dev --output-file $(LOCK) $(LOCK_INPUTS)

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'uv>=0.9'

# The whole of `make test` in a separate venv (.venv-latest) with the newest releases, no lock.
test-latest:
	rm -rf .venv-latest
	$(MAKE) VENV=.venv-latest LOCK= test

precompiled: dev
	$(BIN)/python -m trustgate._precompiled --write

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

# CEL: one ValidatingAdmissionPolicy (5 validations) per object beside Rego; check with 10 VAPs.
bench-cel: dev
	$(BIN)/python bench/cel.py

# Gatekeeper's general library over the same corpus: compile time and documents/second.
bench-gatekeeper: dev
	$(BIN)/python bench/gatekeeper.py

bench-images: dev
	$(BIN)/python bench/images.py

# Verification summaries (SLSA VSAs): admission through a VSA cold and warm, issuance, beside full verification.
bench-summaries: dev
	$(BIN)/python bench/summaries.py

# The decision log on SQLite and PostgreSQL: appends, queries and verify over 1,000,000 records.
bench-log: dev
	$(BIN)/python bench/decisions.py

# The auditor UI over a 1,000,000-record log: overview, first page of each filter, deep pages, a decision.
bench-ui: dev
	$(BIN)/python bench/ui.py

# One presync decision: 1,000 manifests, 50 signed images, a 20-commit SSH-signed range.
bench-presync: dev
	$(BIN)/python bench/presync.py

# The admission webhook under wrk: throughput, p50/p99/p99.9, memory per worker.
bench-webhook: dev
	$(BIN)/python bench/webhook.py

# A well-behaved client's p50/p99 alone and during a 1,000-connection slowloris and a hung registry.
bench-webhook-slowloris: dev
	$(BIN)/python bench/slowloris.py

clean:
	rm -rf $(VENV) .venv-latest .mypy_cache .pytest_cache .ruff_cache .import_linter_cache
