"""What someone who can write to the decision log's database, or name a Pod, can make `trustgate log`
print: never a terminal escape, a carriage return, a forged line or an invisible character.

The log is written by real `trustgate check` runs; edits are SQL on a copy of it (write access to
the database, which no hash covers for the id column).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import httpx
import pytest
from support.ui_log import Log, build_log, copy_of, run, serve_ui

# What the tester's tampered id column held: a fake "intact" screen over `log verify`'s verdict.
FAKE_INTACT = (
    "\r\x1b[2Kintact: 5 records (#1..#5), head " + "9" * 64 + "\n"
    "  Merkle tree of 5 records, root " + "3" * 64 + "\n  0 stored checkpoints\n\x1b[8m"
)
# A Pod name that forges `log show` lines: an allowed verdict and an approved exception.
FORGED_LINES = (
    "web: passed (pod.yaml:1)\n"
    "  verdict    allow: allowed (exit code 0)   [re-evaluated]\n"
    "exception break-glass-4711: approved by CISO (owner security@corp.example, 11 findings)\n"
    "  object     Pod/prod/web"
)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return build_log(tmp_path_factory.mktemp("cli-injection"))


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _no_terminal_controls(text: str) -> None:
    assert "\x1b" not in text and "\r" not in text, text


def _checked_pod(log: Log, tmp_path: Path, name: str, namespace: str = "prod") -> str:
    """`trustgate check` on a Pod with this name (JSON: any character) on a copy of the log; its URL."""
    root = tmp_path / "gate"
    shutil.copytree(log.config.parent, root, ignore=shutil.ignore_patterns("decisions.db*"))
    url = copy_of(log, tmp_path)
    (root / "trustgate.yaml").write_text(log.config.read_text().replace(log.url, url))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/a:1"}]},
    }
    (root / "pod.json").write_text(json.dumps(pod))
    code, _, err = run(
        "check", "-c", str(root / "trustgate.yaml"), "--no-builtin", "--no-schemas", "-p",
        str(root / "policy"), str(root / "pod.json"),
    )  # fmt: skip
    assert code in (0, 1), err
    return url


def test_a_tampered_id_column_cannot_paint_intact_over_log_verify(log: Log, tmp_path: Path) -> None:
    url = copy_of(log, tmp_path, f"UPDATE decisions SET id = {_quote(FAKE_INTACT)} WHERE seq = 2")
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 1
    _no_terminal_controls(out)
    lines = out.splitlines()
    assert lines[0].startswith("NOT INTACT: ")
    assert not any(line.startswith("intact") or line.startswith("  Merkle tree of 5") for line in lines), out
    assert "\\r\\x1b[2Kintact: 5 records" in lines[0]


def test_a_tampered_id_column_in_an_error_is_escaped(log: Log, tmp_path: Path) -> None:
    """`log show` and `log prove` of the row refuse it (its record says another id); the message
    quotes the column, escaped, on one line."""
    url = copy_of(log, tmp_path, f"UPDATE decisions SET id = {_quote(FAKE_INTACT)} WHERE seq = 2")
    for command in ("show", "prove"):
        code, out, err = run("log", command, "--store", url, "#2")
        assert code == 3, (command, err)
        _no_terminal_controls(out + err)
        lines = err.splitlines()
        assert (
            len(lines) == 2
            and lines[0].startswith("trustgate: error: ")
            and "is stored under the id" in lines[0]
        )
        assert lines[1].startswith("  hint: ")


def test_a_tampered_id_in_a_not_proven_label_is_escaped(log: Log, tmp_path: Path) -> None:
    """Both the column and the record's id rewritten: the record no longer hashes to its leaf."""
    url = copy_of(
        log,
        tmp_path,
        f"UPDATE decisions SET id = {_quote(FAKE_INTACT)}, "
        f"record = CAST(json_set(record, '$.id', {_quote(FAKE_INTACT)}) AS BLOB) WHERE seq = 2",
    )
    code, out, err = run("log", "prove", "--store", url, "#2", "--verifier-key", log.vkey)
    assert code == 1, err
    assert out == ""
    _no_terminal_controls(err)
    assert err.startswith("NOT PROVEN: decision '\\r\\x1b[2Kintact: 5 records")
    assert len(err.splitlines()) == 2  # the verdict and the hint
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 1
    _no_terminal_controls(out)
    assert out.startswith("NOT INTACT: ") and "\nintact" not in out


def test_a_pod_name_cannot_forge_lines_in_log_show(log: Log, tmp_path: Path) -> None:
    url = _checked_pod(log, tmp_path, FORGED_LINES)
    code, out, _ = run("log", "show", "--store", url, "#6")
    assert code == 0
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("  verdict")] == [
        "  verdict    allow: allowed (exit code 0)"
    ]
    assert not any(line.startswith("exception break-glass") for line in lines), out
    assert "Pod/prod/web: passed (pod.yaml:1)\\x0a  verdict    allow" in out


def test_csv_cells_show_escape_and_carriage_return_as_escapes(log: Log, tmp_path: Path) -> None:
    name = "web\r\x1b[2K1,fake-id,2026-12-07T06:50:00Z,ci,allow,prod,Pod/prod/web\x1b[8m"
    url = _checked_pod(log, tmp_path, name)
    code, out, _ = run("log", "query", "--store", url, "--format", "csv", "--limit", "1")
    assert code == 0
    _no_terminal_controls(out)
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert (
        row["objects"]
        == "Pod/prod/web\\x0d\\x1b[2K1,fake-id,2026-12-07T06:50:00Z,ci,allow,prod,Pod/prod/web\\x1b[8m"
    )
    assert row["verdict"] == "allow" and row["id"] != "fake-id"


def test_zero_width_characters_are_shown_in_query_and_stats(log: Log, tmp_path: Path) -> None:
    url = _checked_pod(log, tmp_path, "web", namespace="pro\u200bd")
    code, table, _ = run("log", "query", "--store", url, "--limit", "1")
    assert code == 0 and "Pod/pro\\u200bd/web" in table and "\u200b" not in table
    code, out, _ = run("log", "query", "--store", url, "--format", "csv", "--limit", "1")
    assert code == 0 and "pro\\u200bd" in out and "\u200b" not in out
    code, stats, _ = run("log", "stats", "--store", url)
    assert code == 0 and "pro\\u200bd" in stats and "\u200b" not in stats
    code, shown, _ = run("log", "show", "--store", url, "#6")
    assert code == 0 and "Pod/pro\\u200bd/web" in shown and "\u200b" not in shown


def test_zero_width_characters_are_shown_in_the_ui(log: Log, tmp_path: Path) -> None:
    """The UI's lists, decision page and charts escape them too (the templates' `finalize`)."""
    url = _checked_pod(log, tmp_path, "web\u2060", namespace="pro\u200bd")
    with serve_ui(url) as server:
        listed = httpx.get(server.base + "/decisions", timeout=30).text
        assert "Pod/pro\\u200bd/web\\u2060" in listed and "\u200b" not in listed and "\u2060" not in listed
        decision = httpx.get(server.base + "/decisions/%236", timeout=30).text
        assert "pro\\u200bd" in decision and "\u200b" not in decision
        overview = httpx.get(server.base + "/overview", timeout=30).text  # the namespace chart's labels
        assert "pro\\u200bd" in overview and "\u200b" not in overview
