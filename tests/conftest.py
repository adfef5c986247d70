"""Shared fixtures: small manifests written into a temp dir."""

from __future__ import annotations

import functools
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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


# The registry fixtures (a real docker-registry, a token server, HTTP test doubles).
pytest_plugins = ["support.registry"]


# -- a real PostgreSQL server for the decision log tests -----------------------------------------


def _postgres_bindir() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    return candidates[-1].parent if candidates else None


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (a free port) with its socket in a temp dir.

    initdb refuses to run as root, so as root the cluster belongs to `nobody`
    (the temp dir is chowned to it) and the server binaries run through
    `setpriv`; as any other user they run as that user.
    """

    def __init__(self) -> None:
        import pwd
        import socket
        import subprocess
        import tempfile

        bindir = _postgres_bindir()
        if bindir is None:
            pytest.fail("PostgreSQL server binaries not found: run `make dev` (installs Debian postgresql)")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="trustgate-pg-"))
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
            self.prefix = [
                "setpriv",
                f"--reuid={nobody.pw_uid}",
                f"--regid={nobody.pw_gid}",
                "--clear-groups",
            ]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.data = self.dir / "data"
        run = functools.partial(subprocess.run, check=True, capture_output=True, cwd=self.dir)
        run(
            [
                *self.prefix,
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "trustgate",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=on -c max_connections=60"
        )
        run(
            [
                *self.prefix,
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.dir / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        self._databases = 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://trustgate@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        self._databases += 1
        name = f"t{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        import shutil
        import subprocess

        subprocess.run(
            [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
            cwd=self.dir,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database()
