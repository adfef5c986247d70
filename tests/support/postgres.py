"""A throw-away PostgreSQL server on 127.0.0.1, for the decision log tests and its benchmark.

Debian's `postgresql` (installed by `make dev`) provides the binaries. initdb refuses to run as
root, so as root the cluster belongs to `nobody` (the temp dir is chowned to it) and the server
binaries run through `setpriv`; as any other user they run as that user. Stopped and removed by
`stop()`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def postgres_bindir() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    return candidates[-1].parent if candidates else None


class PostgresServer:
    """A cluster on a free port with its socket in a temp dir; `options` are extra server settings."""

    def __init__(self, *, options: str = "-c max_connections=60", prefix: str = "trustgate-pg-") -> None:
        """Raises RuntimeError when the server binaries are missing."""
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError(
                "PostgreSQL server binaries not found: run `make dev` (installs Debian postgresql)"
            )
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
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
        self._run(
            "initdb", "-D", str(self.data), "-U", "trustgate", "--auth=trust", "-E", "UTF8", "--no-locale"
        )
        self._listen = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=on {options}"
        self._start()
        self._databases = 0

    def _start(self) -> None:
        log = str(self.dir / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", self._listen, "-l", log, "-w", "-t", "60", "start")

    def crash_and_restart(self) -> None:
        """Stop the server as a crash does (`pg_ctl stop -m immediate`: no shutdown checkpoint, WAL
        not yet flushed is lost), then start it again (it recovers from the WAL on disk)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self._start()

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self.prefix, str(self.bindir / tool), *args], check=check, capture_output=True, cwd=self.dir
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://trustgate@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        import psycopg

        self._databases += 1
        name = name or f"t{self._databases}"
        # Whatever the server's defaults a test gives it (a 100 ms statement_timeout): CREATE
        # DATABASE takes longer on a busy machine, and is not what such a test is about.
        with psycopg.connect(self.url(), autocommit=True, options="-c statement_timeout=0") as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


PGBOUNCER = "/usr/sbin/pgbouncer"


class PgBouncer:
    """Debian's PgBouncer on 127.0.0.1 in front of `server`, in transaction mode with `pool_size`
    server sessions per database: consecutive transactions of one client may run on different
    server sessions, as behind a production pooler. Stopped by `stop()`."""

    def __init__(self, server: PostgresServer, *, pool_size: int = 2) -> None:
        """Raises RuntimeError when PgBouncer is missing or does not start."""
        if not Path(PGBOUNCER).is_file():
            raise RuntimeError("PgBouncer not found: run `make dev` (installs Debian pgbouncer)")
        self.server = server
        self.dir = Path(tempfile.mkdtemp(prefix="trustgate-pgbouncer-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        (self.dir / "users.txt").write_text('"trustgate" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            f"[databases]\n* = host=127.0.0.1 port={server.port}\n\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'users.txt'}\npool_mode = transaction\n"
            f"default_pool_size = {pool_size}\nmax_client_conn = 100\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\npidfile = {self.dir / 'pgbouncer.pid'}\n"
        )
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            nobody = pwd.getpwnam("nobody")
            for path in (self.dir, *self.dir.iterdir()):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
        subprocess.run(
            [*server.prefix, PGBOUNCER, "-d", str(self.dir / "pgbouncer.ini")],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("PgBouncer did not start") from None
                time.sleep(0.05)

    def url(self, database: str) -> str:
        """The URL of `database` (created on the server) through the pooler."""
        return f"postgresql://trustgate@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        pid = self.dir / "pgbouncer.pid"
        if pid.is_file():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid.read_text().strip()), signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)
