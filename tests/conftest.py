"""Shared fixtures: small manifests written into a temp dir."""

from __future__ import annotations

import gc
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.components import in_ci, missing
from support.postgres import PostgresServer, postgres_bindir

COMPLIANT_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: web
          image: registry.example.com/shop/web:1.4.2@sha256:{digest}
          resources:
            limits: {cpu: 500m, memory: 256Mi}
            requests: {cpu: 100m, memory: 128Mi}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
          livenessProbe:
            httpGet: {path: /healthz, port: 8080}
          readinessProbe:
            httpGet: {path: /ready, port: 8080}
""".replace("{digest}", "0123456789abcdef" * 4)

PRIVILEGED_DEPLOYMENT = COMPLIANT_DEPLOYMENT.replace(
    "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: false\n            privileged: true"
).replace("name: web\n  namespace", "name: admin\n  namespace")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write `text` (dedented) to `tmp_path/name` and return the path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return _write


# The registry fixtures (a real docker-registry, a token server, HTTP test doubles); pytester
# for the test of the CI rule below.
pytest_plugins = ["support.registry", "pytester"]


@pytest.fixture(autouse=True, scope="module")
def _collect_engines_on_the_main_thread() -> Iterator[None]:
    """Collect each module's garbage before the next module runs.

    A regorus engine may only be dropped on the thread that made it. An engine left in a
    reference cycle by one test would otherwise be collected whenever the garbage collector
    next runs, perhaps in a worker thread of a later test, which then fails with an
    unraisable "Engine is unsendable" error that is not its own.
    """
    yield
    gc.collect()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI=true nothing is skipped: a skip (a missing tool, an `importorskip`) fails the test.

    Elsewhere a skip stays a skip, and `-ra` lists it with its reason.
    """
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"


# -- a real PostgreSQL server for the decision log tests -----------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if postgres_bindir() is None:
        missing("PostgreSQL (initdb)", "run `make dev`: scripts/install-system-deps.sh installs postgresql")
    try:
        server = PostgresServer()
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database()
