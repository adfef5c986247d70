"""`trustgate check --decision-log` and `trustgate log ...` end to end through the CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

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

deny contains {"msg": "no privileged pods", "rule": "no-priv"} if input.metadata.name == "bad"
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def env(write: Write, tmp_path: Path) -> dict[str, str]:
    return {
        "policy": str(write("policy/main.rego", POLICY)),
        "good": str(write("deploy/good.yaml", POD.replace("NAME", "good").replace("NS", "shop"))),
        "bad": str(write("deploy/bad.yaml", POD.replace("NAME", "bad").replace("NS", "payments"))),
        "secret": str(write("deploy/secret.yaml", SECRET)),
        "url": f"sqlite:///{tmp_path / 'decisions.db'}",
    }


def check(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return run("check", "--no-builtin", "--no-schemas", "-p", env["policy"], *args)


def test_check_records_one_decision_per_run_and_log_commands_find_it(env: dict[str, str]) -> None:
    code, _, err = check(env, env["good"], env["secret"], "--decision-log", env["url"])
    assert code == 0 and "recorded in" in err
    code, _, _ = check(env, env["bad"], "--decision-log", env["url"])
    assert code == 1  # the verdict's exit code is unchanged by logging

    code, out, _ = run("log", "query", "--store", env["url"], "--format", "json")
    rows = json.loads(out)
    assert code == 0 and [r["record"]["verdict"] for r in rows] == ["deny", "allow"]  # newest first
    assert "hunter2" not in out  # Secret values are never stored

    code, out, _ = run("log", "query", "--store", env["url"], "--verdict", "deny", "--namespace", "payments")
    assert code == 0 and "no-priv" in out and "Pod/payments/bad" in out
    code, out, _ = run(
        "log", "query", "--store", env["url"], "--image", "sha256:" + "c" * 64, "--format", "csv"
    )
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == 2 and table[0]["verdict"] == "deny"
    code, out, _ = run("log", "query", "--store", env["url"], "--rule", "no-priv", "--format", "json")
    assert len(json.loads(out)) == 1

    decision_id = rows[0]["record"]["id"]
    # A prefix long enough to hold the counter part: two runs can fall in one millisecond.
    code, out, _ = run("log", "show", decision_id[:18], "--store", env["url"])
    assert code == 0 and f"decision {decision_id}" in out and "DENIED" in out and "no privileged pods" in out

    code, out, _ = run("log", "stats", "--store", env["url"], "--format", "json")
    stats = json.loads(out)
    assert (
        stats["decisions"] == 2
        and stats["verdict"] == {"allow": 1, "deny": 1}
        and stats["rule"] == {"no-priv": 1}
    )

    code, out, _ = run("log", "verify", "--store", env["url"])
    assert code == 0 and out.startswith("intact: 2 records")


def test_export_is_jsonl_whose_lines_recompute_the_chain(env: dict[str, str], tmp_path: Path) -> None:
    for _ in range(3):
        check(env, env["good"], "--decision-log", env["url"])
    target = tmp_path / "export.jsonl"
    code, _, _ = run("log", "export", "--store", env["url"], "--output", str(target))
    assert code == 0
    prev = "0" * 64
    lines = target.read_text().splitlines()
    assert len(lines) == 3
    for n, line in enumerate(lines, start=1):
        entry = json.loads(line)
        assert entry["seq"] == n and entry["prev"] == prev
        without_hash = line.replace(f'"hash":"{entry["hash"]}",', "", 1)
        assert hashlib.sha256(without_hash.encode()).hexdigest() == entry["hash"]  # independent recomputation
        prev = entry["hash"]


def test_verify_names_the_first_altered_record_and_exits_one(env: dict[str, str]) -> None:
    for _ in range(3):
        check(env, env["good"], "--decision-log", env["url"])
    path = env["url"].removeprefix("sqlite://")
    with sqlite3.connect(path) as conn:
        body = conn.execute("SELECT record FROM decisions WHERE seq = 2").fetchone()[0]
        conn.execute(
            "UPDATE decisions SET record = ? WHERE seq = 2", (body.replace(b'"allow"', b'"deny!"', 1),)
        )
    code, out, _ = run("log", "verify", "--store", env["url"])
    assert code == 1 and "NOT INTACT: altered: record #2" in out


def test_config_section_url_redaction_and_checkpoint_key(
    env: dict[str, str], write: Write, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "pub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = write(
        "trustgate.yaml",
        f"""\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        decisionLog:
          url: {env["url"]}
          redact:
            - path: spec.containers[*].image
              kinds: [Pod]
          checkpoint:
            key: key.pem
        """,
    )
    code, _, err = check(env, env["good"], "-c", str(config))
    assert code == 0 and "recorded in" in err
    code, out, _ = run("log", "query", "-c", str(config), "--format", "json")
    stored = json.loads(out)[0]["record"]["subject"]["objects"][0]
    assert stored["object"]["spec"]["containers"][0]["image"] == "[redacted]"
    assert stored["redacted"] == ["spec.containers[*].image"]
    code, out, _ = run("log", "checkpoint", "-c", str(config))
    assert code == 0 and "checkpoint at #1" in out
    code, out, _ = run("log", "verify", "-c", str(config), "--public-key", str(tmp_path / "pub.pem"))
    # the first append's and the manual one
    assert code == 0 and "2 stored checkpoints, signed by sha256:" in out


def test_prune_cli_keeps_the_chain_verifiable(env: dict[str, str]) -> None:
    for _ in range(3):
        check(env, env["good"], "--decision-log", env["url"])
    code, out, _ = run("log", "prune", "--store", env["url"], "--before", "2999-01-01")
    assert code == 0 and "removed 3 decisions up to #3" in out and "UNSIGNED" in out
    check(env, env["good"], "--decision-log", env["url"])
    code, out, _ = run("log", "verify", "--store", env["url"])
    assert code == 0 and "intact: 1 records (#4..#4)" in out and "starts after the prune" in out


def test_an_unwritable_log_fails_closed_in_enforce_mode(env: dict[str, str], tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"garbage" * 1000)
    code, out, err = check(env, env["good"], "--decision-log", f"sqlite:///{corrupt}")
    assert code == 3  # the check passed, but a decision that cannot be recorded does not pass
    assert "1 passed" in out  # the report is still shown
    assert "not recorded" in err and "corrupt" in err


def test_failure_policy_open_keeps_the_verdict_and_says_so_loudly(
    env: dict[str, str], write: Write, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"garbage" * 1000)
    config = write(
        "open.yaml",
        f"apiVersion: trustgate.dev/v1alpha1\nkind: Config\ndecisionLog: {{url: 'sqlite:///{corrupt}', "
        "failurePolicy: open}\n",
    )
    code, _, err = check(env, env["good"], "-c", str(config))
    assert code == 0 and "NOT recorded" in err and "failure policy: open" in err


def test_unreachable_postgresql_fails_the_check_with_a_clear_error(env: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = check(env, env["good"], "--decision-log", f"postgresql://trustgate@127.0.0.1:{port}/x")
    assert code == 3 and "cannot connect to the PostgreSQL decision log" in err


def test_log_commands_on_a_corrupt_or_missing_store_exit_3(env: dict[str, str], tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"garbage" * 1000)
    code, _, err = run("log", "verify", "--store", f"sqlite:///{corrupt}")
    assert code == 3 and "corrupt" in err and "Traceback" not in err
    code, _, err = run("log", "query", "--store", f"sqlite:///{tmp_path}/missing.db")
    assert code == 3 and "no decision log here" in err
    code, _, err = run("log", "query")
    assert code == 3 and "no decision log given" in err


def test_check_with_postgresql(env: dict[str, str], postgres_url: str) -> None:
    code, _, err = check(env, env["bad"], "--decision-log", postgres_url)
    assert code == 1 and "recorded in postgresql://trustgate@127.0.0.1" in err
    code, out, _ = run("log", "query", "--store", postgres_url, "--namespace", "payments", "--format", "json")
    assert [r["record"]["verdict"] for r in json.loads(out)] == ["deny"]
    code, out, _ = run("log", "verify", "--store", postgres_url)
    assert code == 0


@pytest.mark.parametrize(
    "command",
    [
        ("log", "verify"),
        ("log", "prune", "--before", "2020-01-01"),
        ("log", "rebuild-summaries"),
        ("log", "checkpoint", "--key", "KEY"),
    ],
    ids=lambda c: "-".join(c[:2]),
)
@pytest.mark.parametrize("where", ["sqlite-empty-file", "postgresql-without-tables"])
def test_log_commands_that_write_refuse_a_log_that_is_not_there(
    command: tuple[str, ...], where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A mistyped database (or an empty file) was given the log's tables by the `log` commands
    that may write: `log verify` called the new log "intact: 0 records" (exit 0), an auditor
    verifying the wrong database told all was well. A missing SQLite file was refused already."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = tmp_path / "key.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    if where == "sqlite-empty-file":
        (tmp_path / "other.db").touch()
        url = f"sqlite:///{tmp_path / 'other.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    args = [str(key) if part == "KEY" else part for part in command]
    code, out, err = run(*args, "--store", url)
    assert code == 3, out + err
    assert "no decision log here (none of its tables)" in err and url.rpartition("/")[2] in err, err
    assert "intact" not in out
    if where == "sqlite-empty-file":
        assert (tmp_path / "other.db").stat().st_size == 0
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)


def test_export_and_json_query_are_utf8_whatever_the_terminals_encoding(write: Write, tmp_path: Path) -> None:
    """An exported line is the bytes the chain hashes: a Latin-1 or ASCII terminal must not escape
    a character of it (✓ and 😀 in a policy's message), and the run must not fail on it."""
    policy = write("policy/main.rego", POLICY.replace("no privileged pods", "bad pod ✓ 😀 é"))
    bad = write("deploy/bad.yaml", POD.replace("NAME", "bad").replace("NS", "payments"))
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    code, _, _ = run(
        "check", "--no-builtin", "--no-schemas", "-p", str(policy), str(bad), "--decision-log", url
    )
    assert code == 1
    entry = "from trustgate.cli.main import main; main()"
    for encoding in ("latin-1", "ascii"):
        env = {**os.environ, "PYTHONIOENCODING": encoding}
        for args in (
            ["log", "export"],
            ["log", "show", "#1", "--format", "json"],  # the same line as the export
            ["log", "query", "--format", "json"],
            ["log", "query", "--format", "csv"],
        ):
            done = subprocess.run(
                [sys.executable, "-c", entry, *args, "--store", url],
                capture_output=True,
                env=env,
                timeout=120,
            )
            assert done.returncode == 0 and b"Traceback" not in done.stderr, (encoding, args, done.stderr)
            text = done.stdout.decode("utf-8")  # UTF-8, not the terminal's encoding
            if args[-1] == "csv":  # rules, not messages
                assert "no-priv" in text
            elif args[1] in ("export", "show"):
                line = text.splitlines()[0]
                record = json.loads(line)
                without_hash = line.replace(f'"hash":"{record["hash"]}",', "", 1)
                assert hashlib.sha256(without_hash.encode()).hexdigest() == record["hash"]
                assert "bad pod ✓ 😀 é" in line
            else:
                assert json.loads(text)[0]["record"]["findings"][0]["message"] == "bad pod ✓ 😀 é"
