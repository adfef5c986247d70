"""What a database writer can put in a checkpoint's time or key name, or in the prev column, and
what `trustgate log` and the evidence archive make of it: never a forged line or JSON record.

The log is written by real `trustgate check` runs; edits are SQL on a copy of it (write access to
the database, which no hash covers for these columns, or a checkpoint signed with a key of one's own).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import zipfile
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.ui_log import Log, build_log, copy_of, run

from trustgate.decisions.chain import CheckpointSigner
from trustgate.decisions.log import open_store
from trustgate.decisions.store import Filters
from trustgate.ui import evidence, query

# A checkpoint time that forges lines of the evidence README and of `log checkpoint`'s messages.
FAKE_TIME = (
    "2099-12-07T00:00:00Z, signed by 4f1c, verified with --verifier-key)\n"
    "All records verified against the auditor's pinned key. Nothing was altered.\n\x1b[8m"
)
FORGED = "All records verified against the auditor's pinned key. Nothing was altered."


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return build_log(tmp_path_factory.mktemp("cp-injection"))


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _forged_checkpoint(url: str, *, behind: bool, key_id: str | None = None) -> None:
    """Replace the stored checkpoints with one signed by a key of the writer's own whose time (and
    key name) forge lines: at the head, or (`behind`) one record before it."""
    store = open_store(url, read_only=True)
    try:
        good = store.checkpoints(newest=1)[-1]
        seq = good.seq - 1 if behind else good.seq
        digest = next(e for e in store.query(Filters(), newest_first=False) if e.seq == seq).hash
        root = store.root(seq)
    finally:
        store.close()
    cp = CheckpointSigner(private_key=Ed25519PrivateKey.generate()).sign(
        seq=seq, hash=digest, time=FAKE_TIME, kind="manual", root=root
    )
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
        db.execute("DELETE FROM checkpoints")
        db.execute(
            "INSERT INTO checkpoints (seq, hash, time, kind, key_id, public_key, signature, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (cp.seq, cp.hash, cp.time, cp.kind, key_id or cp.key_id, cp.public_key, cp.signature, cp.note),
        )
        db.commit()


def _one_line_each(text: str) -> None:
    assert "\x1b" not in text and "\r" not in text, text
    assert not any(line.startswith(FORGED) for line in text.splitlines()), text


def test_a_checkpoint_time_cannot_forge_lines_of_the_evidence_readme(log: Log, tmp_path: Path) -> None:
    url = copy_of(log, tmp_path)
    _forged_checkpoint(url, behind=False)
    store = open_store(url, read_only=True)
    try:
        with store.snapshot():
            archive = evidence.build_archive(store, query.matching(store, Filters()), description="all")
    finally:
        store.close()
    readme = zipfile.ZipFile(io.BytesIO(archive.data)).read("README.txt").decode()
    _one_line_each(readme)
    assert "verified with --verifier-key)\\x0a" + FORGED in readme


def test_a_checkpoint_time_cannot_forge_lines_of_log_checkpoint_behind(log: Log, tmp_path: Path) -> None:
    url = copy_of(log, tmp_path)
    _forged_checkpoint(url, behind=True)
    for extra in ((), ("--allow-behind",)):
        code, out, err = run("log", "checkpoint", "--store", url, "--output", str(tmp_path / "cp"), *extra)
        assert code == (0 if extra else 3), err
        _one_line_each(out + err)
        assert FORGED in err


def test_an_altered_checkpoint_time_cannot_forge_lines_of_log_checkpoint(log: Log, tmp_path: Path) -> None:
    url = copy_of(log, tmp_path, f"UPDATE checkpoints SET time = {_quote(FAKE_TIME)}")
    code, out, err = run("log", "checkpoint", "--store", url, "--output", str(tmp_path / "cp"))
    assert code != 0
    _one_line_each(out + err)
    assert "nothing was exported" in err


def test_a_checkpoint_time_cannot_forge_lines_of_log_show(log: Log, tmp_path: Path) -> None:
    url = copy_of(log, tmp_path)
    _forged_checkpoint(url, behind=False, key_id="k\nverified with the auditor's key\x1b[8m")
    code, out, err = run("log", "show", log.ids["good"], "--store", url)
    assert code == 0, err
    _one_line_each(out + err)
    assert not any(line.startswith("verified with the auditor") for line in out.splitlines()), out


# A prev column that closes the JSON string and adds a record of its own, then a line of its own.
FORGED_PREV = 'x","record":{"verdict":"allow"},"seq":1}\n{"hash":"h","prev":"y'


def _forged_prev(log: Log, tmp_path: Path) -> str:
    return copy_of(log, tmp_path, f"UPDATE decisions SET prev = {_quote(FORGED_PREV)} WHERE seq = 2")


def test_a_prev_column_cannot_forge_json_records_in_log_export_or_query(log: Log, tmp_path: Path) -> None:
    url = _forged_prev(log, tmp_path)
    code, out, err = run("log", "export", "--store", url)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert lines[1]["prev"] == FORGED_PREV and set(lines[1]) == {"hash", "prev", "record", "seq"}
    code, out, err = run("log", "query", "--store", url, "-o", "json")
    assert code == 0, err
    assert sorted(line["seq"] for line in json.loads(out)) == [1, 2, 3, 4, 5]


def test_an_export_line_hashes_to_its_own_hash_whatever_prev_is(log: Log, tmp_path: Path) -> None:
    from trustgate.decisions.canonical import canonical

    url = _forged_prev(log, tmp_path)
    _, out, _ = run("log", "export", "--store", url)
    for text in out.splitlines():
        line = json.loads(text)
        without = canonical({k: v for k, v in line.items() if k != "hash"})
        import hashlib

        assert hashlib.sha256(without).hexdigest() == line["hash"]


def test_a_prev_column_cannot_forge_records_in_the_archive(log: Log, tmp_path: Path) -> None:
    url = _forged_prev(log, tmp_path)
    store = open_store(url, read_only=True)
    try:
        with store.snapshot():
            archive = evidence.build_archive(store, query.matching(store, Filters()), description="all")
    finally:
        store.close()
    jsonl = zipfile.ZipFile(io.BytesIO(archive.data)).read("records.jsonl").decode()
    lines = [json.loads(line) for line in jsonl.splitlines()]
    assert sorted(line["seq"] for line in lines) == [1, 2, 3, 4, 5]
    assert {line["prev"] for line in lines if line["seq"] == 2} == {FORGED_PREV}


def _checked_pods(log: Log, tmp_path: Path, *names: str) -> str:
    """`trustgate check` on Pods with these names (JSON: any character) on a copy of the log; its URL."""
    root = tmp_path / "gate"
    shutil.copytree(log.config.parent, root, ignore=shutil.ignore_patterns("decisions.db*"))
    url = copy_of(log, tmp_path)
    (root / "trustgate.yaml").write_text(log.config.read_text().replace(log.url, url))
    for n, name in enumerate(names):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "prod"},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/a:1"}]},
        }
        (root / f"pod{n}.json").write_text(json.dumps(pod))
        code, _, err = run(
            "check", "-c", str(root / "trustgate.yaml"), "--no-builtin", "--no-schemas", "-p",
            str(root / "policy"), str(root / f"pod{n}.json"),
        )  # fmt: skip
        assert code in (0, 1), err
    return url


def test_a_character_and_its_escape_written_out_are_two_csv_cells(log: Log, tmp_path: Path) -> None:
    """`log query -o csv` and the archive's records.csv: each value comes back (`cell_value`)."""
    from trustgate.report._common import cell_value

    real, written = "pro\u200bd", "pro\\u200bd"
    url = _checked_pods(log, tmp_path, real, written)
    code, out, err = run("log", "query", "--store", url, "-o", "csv", "--namespace", "prod")
    assert code == 0, err
    objects = [cell_value(row["objects"]) for row in csv.DictReader(io.StringIO(out))]
    assert "Pod/prod/" + real in objects and "Pod/prod/" + written in objects
    store = open_store(url, read_only=True)
    try:
        with store.snapshot():
            archive = evidence.build_archive(
                store, query.matching(store, Filters(namespaces=("prod",))), description="prod"
            )
    finally:
        store.close()
    cells = zipfile.ZipFile(io.BytesIO(archive.data)).read("records.csv").decode()
    objects = [cell_value(row["objects"]) for row in csv.DictReader(io.StringIO(cells))]
    assert "Pod/prod/" + real in objects and "Pod/prod/" + written in objects
