"""A decision log made by real gates, and the auditor UI (`trustgate ui`) started on it, for the UI tests.

The log holds what an auditor looks at: allowed and denied `trustgate check`
runs in several namespaces, a finding waived by an exception that expires
soon, a Secret (stored redacted), a signed tree checkpoint, and one decision
newer than it (not provable yet).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from trustgate.cli.main import main

POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: NAME, namespace: NS}\nspec:\n  containers:\n"
    "    - {name: app, image: 'registry.example.com/app:1.0@sha256:" + "c" * 64 + "'}\n"
)
SECRET = (
    "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\nstringData: {password: hunter2}\n"
)
POLICY = """\
package main
import rego.v1

deny contains {"msg": "no privileged pods", "rule": "no-priv"} if startswith(input.metadata.name, "bad")
deny contains {"msg": "legacy pods run as root", "rule": "run-as-root"} if input.metadata.name == "legacy"
"""
TOKEN = "test-only-token-" + "7" * 32


@dataclass(frozen=True)
class Log:
    url: str
    vkey: str  # the verifier key an auditor holds
    config: Path
    expires: str  # the exception's expiry: within 30 days
    ids: dict[str, str]  # name -> decision id


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def build_log(root: Path, url: str | None = None) -> Log:
    """Run real `trustgate check` gates with a decision log: `url`, or SQLite under `root`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    root.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    (root / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (root / "policy").mkdir(exist_ok=True)
    (root / "policy" / "main.rego").write_text(POLICY)
    files = {
        "good": POD.replace("NAME", "good").replace("NS", "shop"),
        "bad": POD.replace("NAME", "bad").replace("NS", "payments"),
        "bad2": POD.replace("NAME", "bad-too").replace("NS", "shop"),
        "legacy": POD.replace("NAME", "legacy").replace("NS", "legacy"),
        "secret": SECRET,
    }
    for name, text in files.items():
        (root / f"{name}.yaml").write_text(text)
    url = url or f"sqlite:///{root / 'decisions.db'}"
    expires = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)).isoformat()
    config = root / "trustgate.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: trustgate.dev/v1alpha1
            kind: Config
            decisionLog:
              url: {url}
              checkpoint:
                key: key.pem
            exceptions:
              - name: legacy-root
                rules: [run-as-root]
                namespaces: [legacy]
                owner: platform@example.com
                reason: vendor image runs as root until the upgrade
                expires: "{expires}"
            """
        )
    )
    ids: dict[str, str] = {}

    def check(name: str, *paths: str) -> None:
        code, _, err = run(
            "check",
            "-c",
            str(config),
            "--no-builtin",
            "--no-schemas",
            "-p",
            str(root / "policy"),
            *(str(root / f"{p}.yaml") for p in paths),
        )
        assert code in (0, 1), err
        found = re.search(r"decision (\S+) recorded", err)
        assert found, err
        ids[name] = found.group(1)

    check("good", "good", "secret")
    check("bad", "bad")
    check("bad2", "bad2")
    check("legacy", "legacy")
    code, out, err = run("log", "checkpoint", "-c", str(config), "--print-verifier-key")
    assert code == 0, err
    vkey = out.splitlines()[0]
    check("after", "good")  # newer than the checkpoint
    return Log(url=url, vkey=vkey, config=config, expires=expires, ids=ids)


@dataclass(frozen=True)
class Server:
    base: str
    process: subprocess.Popen[str]


@contextmanager
def serve_ui(url: str | None, *args: str) -> Iterator[Server]:
    """`trustgate ui --store URL --port 0 ARGS` (no --store when `url` is None) in a subprocess,
    stopped afterwards."""
    command = str(Path(sys.executable).with_name("trustgate"))
    store = ["--store", url] if url is not None else []
    process = subprocess.Popen(
        [command, "ui", *store, "--port", "0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    drain: threading.Thread | None = None
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        line, said = "", []
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            said.append(line)
            found = re.search(r"auditor UI on (\S+?)/ ", line)
            if found:
                # Drain stderr (uvicorn's log) so a chatty server never blocks on a full pipe.
                drain = threading.Thread(target=process.stderr.read, daemon=True)
                drain.start()
                yield Server(found.group(1), process)
                return
            if not line and process.poll() is not None:
                break
        raise AssertionError(f"trustgate ui did not start: {''.join(said)}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if drain is not None:
            drain.join(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


HOSTILE_POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: 'NAME', namespace: 'NS'}\n"
    "spec: {containers: [{name: app, image: 'IMAGE'}]}\n"
)


# What turns a copy of the log into one of schema 2 (before migrations 3 and 4): their tables and
# indexes gone.
OLDER_SCHEMA = (
    "DROP INDEX terms_image_cased",
    "DROP TABLE daily_counts",
    "DROP TABLE daily_seqs",
    "DROP TABLE exception_terms",
    "DROP TABLE exceptions_seen",
    "DROP INDEX decisions_verdict",
    "DROP INDEX decisions_gate",
    "DROP INDEX checkpoints_seq",
    "DELETE FROM schema_migrations WHERE version >= 3",
)


def copy_of(log: Log, tmp_path: Path, *sql: str) -> str:
    """A copy of the log's SQLite file with `sql` applied (an operator's edit); its URL."""
    source = Path(log.url.removeprefix("sqlite:///"))
    target = tmp_path / "decisions.db"
    with closing(sqlite3.connect(source)) as db, closing(sqlite3.connect(target)) as copy:
        db.backup(copy)
        for statement in sql:
            copy.execute(statement)
        copy.commit()  # closed next: the write-ahead log goes into the file, which is then as tested
    return f"sqlite:///{target}"


def checked(
    log: Log, tmp_path: Path, name: str, namespace: str, image: str = "registry.example.com/a:1"
) -> str:
    """Run `trustgate check` on a Pod with these strings on a copy of the log; the copy's URL."""
    root = tmp_path / "gate"
    shutil.copytree(log.config.parent, root, ignore=shutil.ignore_patterns("decisions.db*"))
    url = copy_of(log, tmp_path)
    (root / "trustgate.yaml").write_text(log.config.read_text().replace(log.url, url))
    pod = root / "hostile.yaml"
    pod.write_text(HOSTILE_POD.replace("NAME", name).replace("NS", namespace).replace("IMAGE", image))
    code, _, err = run(
        "check",
        "-c",
        str(root / "trustgate.yaml"),
        "--no-builtin",
        "--no-schemas",
        "-p",
        str(root / "policy"),
        str(pod),
    )
    assert code in (0, 1), err
    return url
