"""The auditor UI over a log its operator tampered with through `sqlite3`: nothing altered shows as verified.

One log real gates wrote (`support.ui_log`); each test changes a copy of it
as someone with write access to the database could, starts `trustgate ui`
on the copy and reads the pages an auditor reads. The untampered copy must
still show its decisions covered, proven and signed by the auditor's key.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import sqlite3
import time
import zipfile
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.forge import forge, record_at
from support.ui_log import Log, Server, build_log, run, serve_ui

from trustgate.decisions import merkle
from trustgate.decisions.canonical import canonical
from trustgate.decisions.note import TreeHead, sign_note


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return build_log(tmp_path_factory.mktemp("ui-tamper-log"))


@pytest.fixture
def db(log: Log, tmp_path: Path) -> Path:
    """A copy of the log's database for one test to tamper with."""
    target = tmp_path / "decisions.db"
    with (
        closing(sqlite3.connect(log.url.removeprefix("sqlite:///"))) as source,
        closing(sqlite3.connect(target)) as copy,
    ):
        source.backup(copy)
    return target


def tamper(db: Path, sql: str, *params: Any) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(sql, params)


def get(server: Server, path: str) -> httpx.Response:
    return httpx.get(server.base + path, timeout=30)


def cell(page: str, element_id: str) -> str:
    """The text of the element with this id, tags removed."""
    found = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert found, f"no #{element_id} on the page"
    return re.sub(r"<[^>]+>", "", found.group(2))


def row(page: str, header: str) -> str:
    """The text of the table cell after the header cell `header`, tags removed."""
    found = re.search(rf"<th>{re.escape(header)}</th><td[^>]*>(.*?)</td>", page, re.S)
    assert found, f"no {header!r} row on the page"
    return re.sub(r"<[^>]+>", "", found.group(1))


def archive(server: Server, tmp_path: Path) -> Path:
    response = get(server, "/export?name=evidence")
    assert response.status_code == 200
    out = tmp_path / "evidence"
    with zipfile.ZipFile(io.BytesIO(response.content)) as zipped:
        zipped.extractall(out)
    return out


def proven(proof: Path, vkey: str) -> bool:
    code, out, _ = run("log", "verify-proof", str(proof), "--verifier-key", vkey)
    return code == 0 and out.startswith("proven:")


def test_an_untampered_log_is_shown_covered_proven_and_signed_by_the_auditors_key(
    log: Log, db: Path, tmp_path: Path
) -> None:
    with serve_ui(f"sqlite:///{db}") as server:
        integrity = get(server, "/integrity").text
        assert row(integrity, "its signer's vkey") == log.vkey and "NOT VERIFIED" not in integrity
        assert (
            row(integrity, "latest signed tree head").startswith("#4 at ")
            and "the key stored beside it" in integrity
        )
        page = get(server, f"/decisions/{log.ids['bad']}").text
        assert 'id="prove"' in page and "NOT" not in row(page, "checkpoint")
        assert row(page, "checkpoint").startswith("covered by the manual checkpoint at #4")
        assert "the record's inclusion proof verifies" in page
        listed = get(server, "/decisions").text
        assert 'id="differing"' not in listed and "⚠" not in listed
        day = re.search(r'<a class="open" href="[^"]+">(\d{4}-\d\d-\d\d)', listed)
        assert day and 'id="summaries-disagree"' not in get(server, f"/decisions?since={day[1]}").text
        assert "Filters select by indexed columns" in listed
        report = get(server, "/report").text
        assert row(report, "signed tree head").startswith("#4 at ") and "NOT VERIFIED" not in report
        evidence = archive(server, tmp_path)
    assert (evidence / "signer.vkey").read_text().strip() == log.vkey
    assert "NOT " not in (evidence / "README.txt").read_text()
    proofs = sorted((evidence / "proofs").iterdir())
    assert len(proofs) == 4 and all(proven(p, log.vkey) for p in proofs)
    assert {r["differs"] for r in csv.DictReader(io.StringIO((evidence / "records.csv").read_text()))} == {""}
    with serve_ui(f"sqlite:///{db}", "--verifier-key", log.vkey) as server:
        assert "verified with the verifier key given" in row(
            get(server, "/integrity").text, "latest signed tree head"
        )


def test_checkpoints_whose_signatures_were_overwritten_are_not_vouched_for(log: Log, db: Path) -> None:
    tamper(db, "UPDATE checkpoints SET signature = ?", base64.b64encode(b"\x01" * 64).decode())
    with serve_ui(f"sqlite:///{db}") as server:
        page = get(server, f"/decisions/{log.ids['bad']}").text
        checkpoint = row(page, "checkpoint")
        assert "signed by" not in checkpoint and 'id="prove"' not in page and 'id="not-proven"' in page
        assert "NOT VERIFIED: it has a signature that does not verify" in checkpoint
        integrity = get(server, "/integrity").text
        assert "its signer's vkey" not in integrity and "none that verifies" in integrity
        assert "NOT VERIFIED" in row(integrity, "latest checkpoint")
        report = get(server, "/report").text
        assert "signed tree head</th>" not in report and "NOT VERIFIED" in report
        proof = get(server, f"/decisions/{log.ids['bad']}/proof")
        assert proof.status_code == 409 and "no checkpoint covering it verifies" in proof.text


def _forge_checkpoint_at_5(db: Path) -> None:
    """A checkpoint of all five records made up without the log's key: the note is signed by the
    operator's own key under the log's origin, the row carries the log's real key and a junk signature."""
    with closing(sqlite3.connect(db)) as conn, conn:
        key_id, public_key, note = conn.execute(
            "SELECT key_id, public_key, note FROM checkpoints WHERE note <> '' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        leaves = [
            merkle.leaf_hash(bytes(r[0])) for r in conn.execute("SELECT record FROM decisions ORDER BY seq")
        ]
        origin = note.split("\n")[0]
        root = merkle.root(len(leaves), merkle.memory_nodes(leaves))
        forged = sign_note(TreeHead(origin, len(leaves), root).text(), origin, Ed25519PrivateKey.generate())
        seq, digest = conn.execute("SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
        conn.execute(
            "INSERT INTO checkpoints (seq, hash, time, kind, key_id, public_key, signature, note) "
            "VALUES (?, ?, '2026-12-06T19:00:00.000000Z', 'manual', ?, ?, ?, ?)",
            (seq, digest, key_id, public_key, base64.b64encode(b"\x01" * 64).decode(), forged),
        )


def test_a_checkpoint_made_up_without_the_key_is_flagged_and_proofs_fall_back_to_one_that_verifies(
    log: Log, db: Path, tmp_path: Path
) -> None:
    _forge_checkpoint_at_5(db)
    with serve_ui(f"sqlite:///{db}") as server:
        integrity = get(server, "/integrity").text
        assert (
            row(integrity, "latest signed tree head").startswith("#4 at ")
            and row(integrity, "its signer's vkey") == log.vkey
        )
        assert (
            "NOT VERIFIED, not used for proofs: the manual checkpoint of 2026-12-06T19:00:00.000000Z at #5"
            in (re.sub(r"<[^>]+>", "", integrity))
        )
        newest = get(server, f"/decisions/{log.ids['after']}").text
        assert 'id="not-proven"' in newest and 'id="prove"' not in newest
        assert get(server, f"/decisions/{log.ids['after']}/proof").status_code == 409
        older = get(server, f"/decisions/{log.ids['bad']}").text
        assert (
            row(older, "checkpoint").startswith("covered by the manual checkpoint at #4")
            and 'id="prove"' in older
        )
        report = get(server, "/report").text
        assert row(report, "signed tree head").startswith("#4 at ") and "NOT VERIFIED" in report
        evidence = archive(server, tmp_path)
    assert (evidence / "signer.vkey").read_text().strip() == log.vkey
    assert (evidence / "checkpoint.txt").read_text().split("\n")[1] == "4"
    assert "NOT VERIFIED, not used" in (evidence / "README.txt").read_text()
    proofs = sorted((evidence / "proofs").iterdir())
    assert len(proofs) == 4 and all(proven(p, log.vkey) for p in proofs)

    stranger = Ed25519PrivateKey.generate().public_key()
    from trustgate.decisions.note import NoteVerifier

    with serve_ui(f"sqlite:///{db}", "--verifier-key", NoteVerifier.ed25519(stranger).vkey()) as server:
        assert "none that verifies" in get(server, "/integrity").text  # a pinned key is the only one


def test_a_decision_asked_for_by_id_is_never_another_ones_record(log: Log, db: Path, tmp_path: Path) -> None:
    bad, good = log.ids["bad"], log.ids["good"]
    tamper(db, "UPDATE decisions SET id = 'swap' WHERE id = ?", bad)
    tamper(db, "UPDATE decisions SET id = ? WHERE id = ?", bad, good)
    tamper(db, "UPDATE decisions SET id = ? WHERE id = 'swap'", good)
    with serve_ui(f"sqlite:///{db}") as server:
        for path in (f"/decisions/{bad}", f"/decisions/{bad}/proof", f"/decisions/{good}"):
            response = get(server, path)
            assert response.status_code == 409 and "The decision log is inconsistent" in response.text, path
            assert "is stored under the id" in response.text
        evidence = archive(server, tmp_path)
    for name in (bad, good):  # each proof named by the record it proves, not by the id column
        assert json.loads((evidence / "proofs" / f"{name}.json").read_text())["record"]["id"] == name


def test_a_record_rewritten_in_place_is_not_proven_and_gets_no_proof(log: Log, db: Path) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:  # deny -> allow, agreeing with itself; nothing re-hashed
        body = json.loads(
            conn.execute("SELECT record FROM decisions WHERE id = ?", (log.ids["bad"],)).fetchone()[0]
        )
        body.update(verdict="allow", exitCode=0)
        body["summary"].update(passed=body["summary"]["failed"], failed=0)
        for finding in body["findings"]:
            finding["severity"] = "info"
        for obj in body["subject"]["objects"]:
            obj["status"] = "passed"
        conn.execute(
            "UPDATE decisions SET record = ?, verdict = 'allow' WHERE id = ?",
            (canonical(body), log.ids["bad"]),
        )
    with serve_ui(f"sqlite:///{db}") as server:
        page = get(server, f"/decisions/{log.ids['bad']}").text
        assert 'id="prove"' not in page and "NOT PROVEN" in cell(page, "not-proven")
        checkpoint = row(page, "checkpoint")
        assert (
            checkpoint.startswith("NOT PROVEN under the manual checkpoint at #4")
            and "covered by" not in checkpoint
        )
        assert "record #2 is not the leaf the Merkle tree holds for it" in checkpoint
        proof = get(server, f"/decisions/{log.ids['bad']}/proof")
        assert proof.status_code == 409 and "NOT PROVEN" in proof.text


def test_rows_show_what_the_records_say_and_flag_indexed_columns_that_disagree(
    log: Log, db: Path, tmp_path: Path
) -> None:
    tamper(db, "UPDATE decisions SET verdict = 'allow' WHERE id = ?", log.ids["bad"])
    with serve_ui(f"sqlite:///{db}") as server:
        listed = get(server, "/decisions").text
        (line,) = [r for r in listed.split("<tr") if f"/decisions/{log.ids['bad']}" in r]
        assert '<span class="verdict deny">deny</span>' in line and 'class="row differs"' in line
        assert "⚠ index: verdict" in line and "1 decision(s) on this page" in cell(listed, "differing")
        report = get(server, "/report").text
        assert "deny (index says otherwise: verdict)" in report and "NOT VERIFIED" in cell(
            report, "differing"
        )
        evidence = archive(server, tmp_path)
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO((evidence / "records.csv").read_text()))}
    assert (rows[log.ids["bad"]]["verdict"], rows[log.ids["bad"]]["differs"]) == ("deny", "verdict")
    assert proven(evidence / "proofs" / f"{log.ids['bad']}.json", log.vkey)  # the record itself is genuine


def test_a_tree_node_changed_below_the_root_is_found_by_verify_and_proves_nothing(log: Log, db: Path) -> None:
    tamper(db, "UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 0")
    with serve_ui(f"sqlite:///{db}") as server:
        page = get(server, f"/decisions/{log.ids['bad']}").text  # #2: its proof reads #1's leaf
        assert 'id="prove"' not in page and "does not lead to the root the checkpoint at #4 signs" in page
        job = httpx.post(server.base + "/integrity/verify", timeout=30).headers["location"]
        deadline = time.monotonic() + 30
        while "running" in (result := get(server, job).text) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert 'id="state">not-intact<' in result and "below its root" in result


def test_a_chain_head_of_another_type_is_an_altered_head_in_verify_not_an_inconsistent_page(
    db: Path,
) -> None:
    """The integrity page read the head through `store.head()`, which refuses a head of the wrong
    type: Verify showed the 409 "inconsistent" page, where `log verify` names the altered head."""
    tamper(db, "UPDATE chain_head SET seq = 'abc'")
    with serve_ui(f"sqlite:///{db}") as server:
        job = httpx.post(server.base + "/integrity/verify", timeout=30).headers["location"]
        deadline = time.monotonic() + 30
        while "running" in (result := get(server, job).text) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert 'id="state">not-intact<' in result and "chain head" in result, result


def test_a_lowered_chain_head_hides_no_record_log_query_shows_and_is_flagged(db: Path) -> None:
    """The list's newest page started at the chain head's position, which no hash covers: an
    operator who lowered it hid the newest decisions from the UI while `log query` showed them."""
    tamper(db, "UPDATE chain_head SET seq = seq - 1")
    url = f"sqlite:///{db}"
    code, out, err = run("log", "query", "--store", url, "--format", "json")
    assert code == 0, err
    queried = [row["record"]["id"] for row in json.loads(out)]
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 1 and "chain head" in out, out  # the reference for what the page must say
    with serve_ui(url) as server:
        listed = get(server, "/decisions").text
        assert [i for i in queried if f"/decisions/{i}" in listed] == queried
        assert "does not match the records" in cell(listed, "head-disagrees")
        newer = get(server, f"/decisions?after={len(queried) - 2}").text  # the page of the newest two
        assert f"/decisions/{queried[0]}" in newer and f"/decisions/{queried[1]}" in newer
        assert "NOT VERIFIED" in cell(get(server, "/integrity").text, "head-disagrees")


def test_a_time_filtered_list_does_not_trust_summary_positions_the_records_contradict(
    log: Log, db: Path
) -> None:
    with closing(sqlite3.connect(db)) as conn:
        (day,) = conn.execute("SELECT day FROM daily_seqs").fetchone()
    tamper(db, "UPDATE daily_seqs SET first_seq = 3")  # the deny at #2 moved out of the day's positions
    with serve_ui(f"sqlite:///{db}") as server:
        listed = get(server, f"/decisions?since={day}&verdict=deny").text
        assert f"/decisions/{log.ids['bad']}" in listed
        assert "#2 is one of them too" in cell(listed, "summaries-disagree")


def test_stored_hash_and_prev_columns_are_not_shown_as_the_records_but_flagged(
    log: Log, db: Path, tmp_path: Path
) -> None:
    with closing(sqlite3.connect(db)) as conn:
        seq, genuine_hash = conn.execute(
            "SELECT seq, hash FROM decisions WHERE id = ?", (log.ids["bad"],)
        ).fetchone()
    with serve_ui(f"sqlite:///{db}") as server:
        page = get(server, f"/decisions/{log.ids['bad']}").text
    assert cell(page, "chain-hash") == genuine_hash and "ALTERED" not in page
    tamper(db, "UPDATE decisions SET hash = ?, prev = ? WHERE seq = ?", "ab" * 32, "cd" * 32, seq)
    with serve_ui(f"sqlite:///{db}") as server:
        page = get(server, f"/decisions/{log.ids['bad']}").text
        evidence = archive(server, tmp_path)
    assert row(page, "checkpoint").startswith("covered by")  # the record and its proof are untouched
    shown = cell(page, "chain-hash")
    assert not shown.startswith("ab" * 32) and f"ALTERED: the stored hash column is {'ab' * 32}" in shown
    prev = cell(page, "chain-prev")
    assert (
        prev.startswith("cd" * 32)
        and f"ALTERED: the stored prev column is not the hash of record #{seq - 1}" in prev
    )
    lines = [json.loads(line) for line in (evidence / "records.jsonl").read_text().splitlines()]
    (line,) = [x for x in lines if x["seq"] == seq]
    assert line["hash"] == shown.split()[0] and line["hash"] != "ab" * 32  # the hash of the line itself


def _rewrite(db: Path, seq: int, change: dict[str, Any], *, keep_before: int) -> None:
    """Change record `seq` and recompute everything after it (chain, index, tree, summaries), then
    delete the stored checkpoints of `keep_before` records and more: a self-consistent rewrite."""
    url = f"sqlite:///{db}"
    forge(url, {seq: record_at(url, seq) | change}, keep_before=keep_before)


def verified(server: Server) -> str:
    """Press Verify and wait for the result page."""
    job = httpx.post(server.base + "/integrity/verify", timeout=30).headers["location"]
    deadline = time.monotonic() + 30
    while "running" in (page := get(server, job).text) and time.monotonic() < deadline:
        time.sleep(0.2)
    return page


def _kept(log: Log, db: Path, tmp_path: Path) -> tuple[Path, Path]:
    """What the auditor kept of the untampered copy: a checkpoint file of #5, the whole log, and a
    published directory holding the same checkpoint."""
    kept = tmp_path / "kept.txt"
    code, _, err = run("log", "checkpoint", "--store", f"sqlite:///{db}", "--key",
                       str(log.config.parent / "key.pem"), "--output", str(kept))  # fmt: skip
    assert code == 0, err
    published = tmp_path / "published"
    published.mkdir()
    (published / "checkpoint.5").write_text(kept.read_text())
    return kept, published


def test_verify_without_kept_checkpoints_says_it_shows_only_a_self_consistent_log(
    log: Log, db: Path, tmp_path: Path
) -> None:
    """Finding 1: a record rewritten, every hash recomputed, the stored checkpoints covering it deleted
    (#1's stays). Verify with only the pinned key cannot see it, and must say what it did not check."""
    _kept(log, db, tmp_path)
    _rewrite(db, 2, {"subject": {"objects": [], "images": []}}, keep_before=2)  # #2's denied Pod gone
    with serve_ui(f"sqlite:///{db}", "--verifier-key", log.vkey) as server:
        page = verified(server)
        assert 'id="state">intact<' in page  # nothing it could check shows the rewrite
        assert (
            "records #2..#5 (4 of 5) are covered by no signed checkpoint (the newest checked covers #1)"
            in page
        )
        assert "only shows the log is self-consistent" in page
        assert row(page, "kept checkpoints").startswith("none given: this run can only show that the log is")
        assert "No kept checkpoint was given" in cell(get(server, "/integrity").text, "kept-sources")


def test_verify_checks_the_checkpoints_the_auditor_kept(log: Log, db: Path, tmp_path: Path) -> None:
    """`--checkpoint` and `--checkpoint-dir` mean what they mean to `log verify`: the rewrite shows."""
    url = f"sqlite:///{db}"
    kept, published = _kept(log, db, tmp_path)
    kept_args = ("--verifier-key", log.vkey, "--checkpoint", str(kept), "--checkpoint-dir", str(published))
    with serve_ui(url, *kept_args) as server:
        assert str(kept) in cell(get(server, "/integrity").text, "kept-sources")
        page = verified(server)
        assert 'id="state">intact<' in page and row(page, "kept checkpoints") == "2 checked"
        assert row(page, str(kept)) == "5 records: consistent"
        assert row(page, str(published / "checkpoint.5")) == "5 records: consistent"
        assert row(page, "covered by a trusted checkpoint") == "#5" and "warning:" not in page

    _rewrite(db, 2, {"subject": {"objects": [], "images": []}}, keep_before=2)
    with serve_ui(url, *kept_args) as server:
        page = verified(server)
        assert 'id="state">not-intact<' in page and "the log up to #5 was rewritten" in page
        assert row(page, str(kept)) == "5 records: NOT CONSISTENT"
        assert row(page, str(published / "checkpoint.5")) == "5 records: NOT CONSISTENT"
    code, _, err = run("ui", "--store", url, "--checkpoint", str(kept))
    assert code == 2 and "--verifier-key" in err
    code, _, err = run(
        "ui", "--store", url, "--verifier-key", log.vkey, "--checkpoint", str(tmp_path / "none")
    )
    assert code == 3 and "cannot read the checkpoint" in err


def test_verify_allows_the_clock_skew_log_verify_is_given(tmp_path: Path) -> None:
    """A replica's clock ran 400 s behind; the operator signed past its record with a skew of 600 s and
    set clockSkewSeconds to 600. `log verify -c` said intact, the UI's Verify NOT INTACT (it had no
    skew but the default)."""
    import datetime as dt

    from cryptography.hazmat.primitives import serialization
    from support.ids import uuid7_at

    from trustgate.decisions.canonical import timestamp
    from trustgate.decisions.keys import read_signer
    from trustgate.decisions.log import DecisionLog

    key = tmp_path / "key.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    url = f"sqlite:///{tmp_path / 'decisions.db'}"

    def decision(n: int, when: str) -> dict[str, Any]:
        return {"schema": "trustgate.dev/decision/v1", "id": uuid7_at(when), "time": when, "gate": "ci",
                "mode": "enforce", "verdict": "allow", "exitCode": 0,
                "summary": {"documents": 1, "passed": 1, "failed": 0, "warnings": 0, "errors": 0},
                "subject": {"objects": [{"kind": "Pod", "namespace": "shop", "name": f"app-{n}",
                                         "status": "passed"}], "images": []},
                "findings": []}  # fmt: skip

    with DecisionLog.open(url, key=key) as writer:
        for n in range(1, 4):
            writer.append(decision(n, timestamp()))
    behind = timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=400))
    with DecisionLog.open(url, key=None) as writer:
        writer.append(decision(4, behind))
    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key), "--clock-skew", "600")
    assert code == 0, err
    vkey = read_signer(key).note_verifier().vkey()
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        "decisionLog:\n  checkpoint:\n    clockSkewSeconds: 600\n"
    )
    assert run("log", "verify", "--store", url, "--verifier-key", vkey, "-c", str(config))[0] == 0

    with serve_ui(url, "--verifier-key", vkey) as server:
        assert 'id="state">not-intact<' in verified(server)  # the default skew, 300 s
    with serve_ui(url, "--verifier-key", vkey, "--clock-skew", "600") as server:
        assert 'id="state">intact<' in verified(server)
    with serve_ui(url, "--verifier-key", vkey, "-c", str(config)) as server:
        assert 'id="state">intact<' in verified(server)
    code, _, err = run("ui", "--store", url, "--clock-skew", "nan")
    assert code == 2 and "not a number of seconds" in err
