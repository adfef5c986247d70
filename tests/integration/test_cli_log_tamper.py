"""Tampering with a decision log's SQLite file directly, as its operator could, through the real CLI.

Each test alters the database with `sqlite3` (no trustgate code), then runs
`trustgate log ...` and checks what it says and its exit code: 1 when the
log is not intact or a proof does not verify, 3 when the input is unusable.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trustgate.cli.main import main
from trustgate.decisions.canonical import canonical, timestamp, uuid7
from trustgate.decisions.chain import GENESIS, entry_hash
from trustgate.decisions.log import DecisionLog, open_store
from trustgate.errors import DecisionLogError


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "decisions.db"


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "log-key.pem"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def url(db: Path) -> str:
    return f"sqlite:///{db}"


def decision(n: int, *, namespace: str = "shop") -> dict[str, Any]:
    """A record as a gate writes it: verdict, exit code, counts and findings agree."""
    blocking = n % 5 == 0
    return {
        "schema": "trustgate.dev/decision/v1",
        "id": uuid7(),
        "time": timestamp(),
        "gate": "ci",
        "mode": "enforce",
        "verdict": "deny" if blocking else "allow",
        "exitCode": 1 if blocking else 0,
        "summary": {"documents": 1, "passed": 0 if blocking else 1, "failed": int(blocking), "warnings": 0,
                    "errors": 0},
        "subject": {"objects": [{"kind": "Pod", "namespace": namespace, "name": f"app-{n}",
                                 "status": "failed" if blocking else "passed"}], "images": []},
        "findings": [{"rule": "no-priv", "severity": "error", "message": "privileged", "object": 0}]
        if blocking else [],
    }  # fmt: skip


def fill(db: Path, key: Path | None, start: int, stop: int, **kw: Any) -> list[str]:
    with DecisionLog.open(url(db), key=key) as log:
        return [log.append(decision(n, **kw)) for n in range(start, stop)]


@contextmanager
def sql(db: Path) -> Iterator[sqlite3.Connection]:
    """The database as its operator sees it: plain sqlite3, committed on exit."""
    with closing(sqlite3.connect(db)) as conn, conn:
        yield conn


def rechain(conn: sqlite3.Connection) -> None:
    """Recompute every entry hash and the head, as a forger who edited records must."""
    prev = GENESIS
    rows = conn.execute("SELECT seq, record FROM decisions ORDER BY seq").fetchall()
    for seq, body in rows:
        digest = entry_hash(prev, bytes(body), seq)
        conn.execute("UPDATE decisions SET prev = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    conn.execute("UPDATE chain_head SET seq = ?, hash = ? WHERE chain = 'main'", (rows[-1][0], prev))


def rebuild_tree(db: Path) -> None:
    store = open_store(url(db))
    try:
        with store._write():
            store._execute("DELETE FROM tree_nodes")
            store._build_tree()
        store.rebuild_summaries()
    finally:
        store.close()


# -- the chain head ------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("UPDATE chain_head SET hash = '" + "a" * 64 + "'", "its hash is not that of record #6"),
        ("UPDATE chain_head SET seq = 4, hash = (SELECT hash FROM decisions WHERE seq = 4)", "says #4"),
    ],
)
def test_a_forged_chain_head_fails_verify_and_no_record_is_appended_onto_it(
    db: Path, key: Path, change: str, says: str
) -> None:
    fill(db, key, 1, 7)
    with sql(db) as conn:
        conn.execute(change)
    code, out, _ = run("log", "verify", "--store", url(db))
    assert code == 1 and "NOT INTACT: altered: the chain head (table chain_head) was altered" in out
    with pytest.raises(DecisionLogError, match=f"refusing to append: the chain head .*{says}"):
        fill(db, key, 7, 8)
    with sql(db) as conn:
        assert conn.execute("SELECT count(*) FROM decisions").fetchone()[0] == 6


# -- decision ids --------------------------------------------------------------


def test_a_forged_record_repeating_another_decisions_id_fails_verify_and_show_says_so(db: Path) -> None:
    ids = fill(db, None, 1, 6)
    with sql(db) as conn:
        # The UNIQUE constraint is the operator's to drop: copy the table without it.
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'decisions'").fetchone()[0]
        conn.execute("ALTER TABLE decisions RENAME TO old")
        conn.execute(ddl.replace("id TEXT NOT NULL UNIQUE", "id TEXT NOT NULL"))
        conn.execute("INSERT INTO decisions SELECT * FROM old")
        conn.execute("DROP TABLE old")
        body = json.loads(conn.execute("SELECT record FROM decisions WHERE seq = 4").fetchone()[0])
        body["id"] = ids[1]
        conn.execute("UPDATE decisions SET id = ?, record = ? WHERE seq = 4", (ids[1], canonical(body)))
        rechain(conn)
    rebuild_tree(db)

    code, out, _ = run("log", "verify", "--store", url(db))
    assert code == 1 and f"record #4 ({ids[1]}) repeats the id of record #2" in out
    code, _, err = run("log", "show", ids[1], "--store", url(db))
    assert code == 3 and f"the log is inconsistent: records #2 and #4 both have the id {ids[1]}" in err


# -- the query index -------------------------------------------------------------

SEPARATORS = "a-team\x1enamespace\x1fkube-system\x1b1"  # RS, US and the escape character


def test_a_record_value_holding_the_index_separators_verifies_and_forged_index_rows_do_not(
    db: Path,
) -> None:
    fill(db, None, 1, 3)
    fill(db, None, 3, 4, namespace=SEPARATORS)
    fill(db, None, 4, 6)
    code, out, _ = run("log", "verify", "--store", url(db))
    assert code == 0, out

    # Read as the old encoding reads it: two namespaces, one of them kube-system.
    with sql(db) as conn:
        conn.execute("DELETE FROM terms WHERE seq = 3 AND kind = 'namespace'")
        for value in ("a-team", "kube-system\x1b1"):
            conn.execute("INSERT INTO terms (kind, value, seq) VALUES ('namespace', ?, 3)", (value,))
    store = open_store(url(db))
    try:
        store.rebuild_summaries()
    finally:
        store.close()
    code, out, _ = run("log", "query", "--store", url(db), "--namespace", "kube-system*", "--format", "json")
    assert code == 0 and len(json.loads(out)) == 1  # what the forger wanted
    code, out, _ = run("log", "verify", "--store", url(db))
    assert code == 1 and "record #3" in out and "the query index" in out


# -- prune anchors ---------------------------------------------------------------


def test_an_unsigned_prune_anchor_on_a_signed_log_fails_verify_without_a_pinned_key(
    db: Path, key: Path
) -> None:
    fill(db, key, 1, 7)
    with sql(db) as conn:
        (hash3,) = conn.execute("SELECT hash FROM decisions WHERE seq = 3").fetchone()
        conn.execute("DELETE FROM terms WHERE seq <= 3")
        conn.execute("DELETE FROM decisions WHERE seq <= 3")
        conn.execute(
            "INSERT INTO checkpoints (seq, hash, time, kind, key_id, public_key, signature) "
            "VALUES (3, ?, '2026-01-01T00:00:00Z', 'prune', '', '', '')",
            (hash3,),
        )
    store = open_store(url(db))
    try:
        store.rebuild_summaries()
    finally:
        store.close()
    code, out, _ = run("log", "verify", "--store", url(db))
    assert code == 1 and "the prune checkpoint of 2026-01-01T00:00:00Z at #3 is not signed" in out
    assert "log prune --key" in out


# -- stored checkpoints are checked before they are vouched for -----------------


def forge_latest_checkpoint(db: Path) -> None:
    """The newest stored checkpoint made up in the database: garbage note, a stranger's key, no signature."""
    stranger = Ed25519PrivateKey.generate().public_key()
    raw = stranger.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    with sql(db) as conn:
        conn.execute(
            "UPDATE checkpoints SET note = ?, public_key = ?, signature = '' "
            "WHERE n = (SELECT max(n) FROM checkpoints)",
            ("trustgate.dev/decision-log/0000\n5\nAAAA\n\n— garbage\n", base64.b64encode(raw).decode()),
        )


def test_checkpoint_output_without_a_key_refuses_a_stored_checkpoint_that_does_not_verify(
    db: Path, key: Path, tmp_path: Path
) -> None:
    fill(db, key, 1, 6)
    assert run("log", "checkpoint", "--store", url(db), "--key", str(key))[0] == 0
    exported = tmp_path / "kept.checkpoint"
    code, out, err = run(
        "log", "checkpoint", "--store", url(db), "--output", str(exported), "--print-verifier-key"
    )
    assert code == 0 and "signed by sha256:" in err and out.startswith("trustgate.dev/decision-log/")

    exported.unlink()
    forge_latest_checkpoint(db)
    code, out, err = run(
        "log", "checkpoint", "--store", url(db), "--output", str(exported), "--print-verifier-key"
    )
    assert code == 3 and out == "" and not exported.exists()
    assert "the latest stored checkpoint (the manual checkpoint of" in err and "is not signed" in err
    assert "signed by" not in err


def test_show_does_not_vouch_for_a_covering_checkpoint_whose_signature_does_not_verify(
    db: Path, key: Path
) -> None:
    fill(db, key, 1, 6)
    assert run("log", "checkpoint", "--store", url(db), "--key", str(key))[0] == 0
    with sql(db) as conn:  # only the manual checkpoint at #5 covers #3
        conn.execute("DELETE FROM checkpoints WHERE kind <> 'manual'")
    code, out, _ = run("log", "show", "#3", "--store", url(db))
    assert code == 0 and "covered by the manual checkpoint at #5" in out and "(signed by sha256:" in out

    with sql(db) as conn:
        conn.execute("UPDATE checkpoints SET signature = ?", (base64.b64encode(b"\x01" * 64).decode(),))
    code, out, _ = run("log", "show", "#3", "--store", url(db))
    assert code == 0 and "covered by the manual checkpoint at #5" in out
    assert "signed by" not in out and "NOT VERIFIED: it has a signature that does not verify" in out


# -- tampered rows are problems, not tracebacks ---------------------------------


def test_text_in_the_record_column_is_reported_as_altered(db: Path) -> None:
    fill(db, None, 1, 5)
    with sql(db) as conn:
        conn.execute("UPDATE decisions SET record = 'not a record' WHERE seq = 2")  # TEXT in a BLOB column
    code, out, _ = run("log", "verify", "--store", url(db))
    assert code == 1 and "NOT INTACT: altered: record #2" in out


def test_a_non_number_in_a_summary_column_is_reported_as_a_summary_problem(db: Path) -> None:
    fill(db, None, 1, 5)
    with sql(db) as conn:
        conn.execute("UPDATE daily_seqs SET first_seq = '1x'")
    code, out, _ = run("log", "verify", "--store", url(db))
    assert (
        code == 1 and "NOT INTACT: summary: the summary table daily_seqs disagrees" in out and "'1x'" in out
    )


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            "UPDATE decisions SET id = CAST(x'ff41' AS TEXT) WHERE seq = 5",
            "NOT INTACT: altered: record #5 (?) was altered: its id column holds bytes that are not UTF-8",
        ),
        (
            "UPDATE decisions SET prev = CAST(x'ff41' AS TEXT) WHERE seq = 5",
            "NOT INTACT: altered: record #5 (",
        ),
        (
            "UPDATE terms SET value = CAST(x'ff41' AS TEXT) WHERE seq = 5 AND kind = 'namespace'",
            "NOT INTACT: altered: record #5 (",
        ),
        (
            "UPDATE checkpoints SET time = CAST(x'ff41' AS TEXT) WHERE seq = 1",
            "NOT INTACT: checkpoint: the periodic checkpoint of ? at #1 is malformed: its time column holds "
            "bytes that are not UTF-8",
        ),
    ],
)
def test_text_that_is_not_utf8_is_reported_as_tampering_of_its_row(
    db: Path, key: Path, change: str, says: str
) -> None:
    """SQLite stores text of any bytes: one that does not decode made `verify` exit 3 ("cannot read
    the decision log") instead of naming the altered record."""
    fill(db, key, 1, 11)
    with sql(db) as conn:
        conn.execute(change)
    code, out, err = run("log", "verify", "--store", url(db), "--public-key", str(key))
    assert code == 1, err
    assert out.startswith(says)
    assert "\\xffA" in out  # the bytes, escaped


# -- proof files: malformed is exit 3 (unusable input), naming the file and field --


@pytest.fixture
def proof(db: Path, key: Path) -> dict[str, Any]:
    fill(db, key, 1, 9)
    assert run("log", "checkpoint", "--store", url(db), "--key", str(key))[0] == 0
    code, out, err = run("log", "prove", "#3", "--store", url(db))
    assert code == 0, err
    loaded: dict[str, Any] = json.loads(out)
    return loaded


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda p, t: t.replace(p["leafHash"], p["leafHash"].upper()), "leafHash is not a SHA-256 hash"),
        (lambda p, t: t.replace(p["hashes"][1], p["hashes"][1][:10]), "hashes[1] is not a SHA-256 hash"),
        (
            lambda p, t: t.replace('"record":{', f'"record":{{"deep":{_deep(100_000)},', 1),
            "nested too deeply",
        ),
        (lambda p, t: t.replace('"record":{', '"record":{"verdict":"allow",', 1), "'verdict' appears twice"),
        (lambda p, t: t.replace('"record":{', '"record":{"n":NaN,', 1), "NaN is not a JSON number"),
        (lambda p, t: t.replace(f"\\n{p['treeSize']}\\n", "\\n\\u00b2\\n", 1), "tree size is not a number"),
    ],
    ids=["uppercase-hash", "short-hash", "deep", "duplicate-key", "nan", "superscript-size"],
)
def test_a_malformed_proof_is_unusable_input_not_a_proof_that_fails(
    proof: dict[str, Any], key: Path, tmp_path: Path, change: Any, says: str
) -> None:
    from trustgate.decisions.keys import read_signer

    vkey = read_signer(key).note_verifier().vkey()
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof, separators=(",", ":")))
    assert run("log", "verify-proof", str(path), "--verifier-key", vkey)[0] == 0
    text = change(proof, path.read_text())
    assert text != path.read_text()
    path.write_text(text)
    code, out, err = run("log", "verify-proof", str(path), "--verifier-key", vkey)
    assert code == 3 and out == "" and f"{path}: " in err and says in err, err


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda p: p | {"oldSize": True}, "oldSize is not an integer"),
        (lambda p: p | {"hashes": [p["hashes"][0][:8], *p["hashes"][1:]]}, "hashes[0] is not a SHA-256 hash"),
    ],
    ids=["bool-size", "short-hash"],
)
def test_a_malformed_consistency_proof_given_to_the_witness_is_unusable_input(
    db: Path, key: Path, tmp_path: Path, change: Any, says: str
) -> None:
    from trustgate.decisions.keys import read_signer

    vkey = read_signer(key).note_verifier().vkey()
    witness = tmp_path / "witness.pem"
    witness.write_bytes(_new_key_pem())
    state = tmp_path / "state"

    def cosign(n: int, *extra: str) -> tuple[int, str, str]:
        checkpoint = tmp_path / f"cp{n}"
        code, _, err = run(
            "log", "checkpoint", "--store", url(db), "--key", str(key), "--output", str(checkpoint)
        )
        assert code == 0, err
        return run("log", "witness", "--checkpoint", str(checkpoint), "--state", str(state),
                   "--key", str(witness), "--verifier-key", vkey, *extra)  # fmt: skip

    fill(db, key, 1, 2)
    assert cosign(1)[0] == 0
    fill(db, key, 2, 6)
    code, out, _ = run("log", "prove-consistency", "1", "5", "--store", url(db))
    assert code == 0
    path = tmp_path / "consistency.json"
    path.write_text(json.dumps(change(json.loads(out))))
    code, _, err = cosign(5, "--proof", str(path))
    assert code == 3 and f"{path}: " in err and says in err, err


def _new_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# -- show, prove and query vouch only for what verifies --------------------------


def _signed_log(db: Path, key: Path) -> list[str]:
    """Six decisions (#5 a deny), the writer's checkpoint at #1 and a manual one at #6."""
    ids = fill(db, key, 1, 7)
    assert run("log", "checkpoint", "--store", url(db), "--key", str(key))[0] == 0
    return ids


def _vkey(key: Path) -> str:
    from trustgate.decisions.keys import read_signer

    return read_signer(key).note_verifier().vkey()


def test_an_untampered_log_is_shown_covered_and_proven_and_queried_without_warnings(
    db: Path, key: Path, tmp_path: Path
) -> None:
    ids = _signed_log(db, key)
    code, out, _ = run("log", "show", ids[4], "--store", url(db))
    assert code == 0 and "covered by the manual checkpoint at #6" in out and "NOT" not in out
    assert "; the record's inclusion proof verifies)" in out
    code, out, _ = run("log", "prove", ids[4], "--store", url(db))
    assert code == 0
    (tmp_path / "proof.json").write_text(out)
    assert run("log", "verify-proof", str(tmp_path / "proof.json"), "--verifier-key", _vkey(key))[0] == 0
    code, out, err = run("log", "query", "--store", url(db), "--format", "csv")
    assert code == 0 and err == ""
    assert {r["differs"] for r in csv.DictReader(io.StringIO(out))} == {""}


def test_a_record_rewritten_in_place_is_not_proven_by_show_or_prove(db: Path, key: Path) -> None:
    ids = _signed_log(db, key)
    with sql(db) as conn:  # the deny at #5 rewritten as an allow that agrees with itself; nothing re-hashed
        body = json.loads(conn.execute("SELECT record FROM decisions WHERE seq = 5").fetchone()[0])
        body.update(verdict="allow", exitCode=0, findings=[])
        body["summary"].update(passed=1, failed=0)
        body["subject"]["objects"][0]["status"] = "passed"
        conn.execute("UPDATE decisions SET record = ?, verdict = 'allow' WHERE seq = 5", (canonical(body),))
    code, out, _ = run("log", "show", ids[4], "--store", url(db))
    assert code == 0 and "verdict    allow" in out and "covered by" not in out
    assert (
        "NOT PROVEN under the manual checkpoint at #6" in out
        and "record #5 is not the leaf the Merkle tree holds for it" in out
    )
    code, out, err = run("log", "prove", ids[4], "--store", url(db))
    assert code == 1 and out == "" and f"NOT PROVEN: decision {ids[4]} (#5): record #5 is not the leaf" in err


def test_swapped_id_columns_are_refused_by_show_and_prove(db: Path, key: Path) -> None:
    ids = _signed_log(db, key)
    with sql(db) as conn:  # the deny's and an allow's ids swapped, the records untouched
        conn.execute("UPDATE decisions SET id = 'swap' WHERE seq = 5")
        conn.execute("UPDATE decisions SET id = ? WHERE seq = 4", (ids[4],))
        conn.execute("UPDATE decisions SET id = ? WHERE seq = 5", (ids[3],))
    for command in ("show", "prove"):
        code, out, err = run("log", command, ids[4], "--store", url(db))
        assert code == 3 and out == "", command
        assert f"the log is inconsistent: record #4 is stored under the id {ids[4]}, but its record" in err


def test_a_tree_node_changed_below_the_root_fails_verify_against_a_kept_checkpoint_and_prove(
    db: Path, key: Path, tmp_path: Path
) -> None:
    ids = _signed_log(db, key)
    kept = tmp_path / "kept.checkpoint"
    assert run("log", "checkpoint", "--store", url(db), "--output", str(kept))[0] == 0
    with sql(db) as conn:  # #1's leaf: the root is made of larger subtrees, so it stays as it was
        conn.execute("UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 0")
    code, out, _ = run(
        "log", "verify", "--store", url(db), "--checkpoint", str(kept), "--verifier-key", _vkey(key)
    )
    assert code == 1 and (
        "NOT INTACT: altered: the stored Merkle tree does not match the records below its root: "
        "a record's leaf hash differs" in out
    )
    code, out, err = run("log", "prove", ids[1], "--store", url(db))  # #2's proof reads #1's leaf
    assert code == 1 and out == "" and "does not lead to the root the checkpoint at #6 signs" in err


def test_query_shows_what_the_records_say_and_names_columns_that_disagree(db: Path, key: Path) -> None:
    ids = _signed_log(db, key)
    with sql(db) as conn:
        conn.execute("UPDATE decisions SET verdict = 'allow' WHERE seq = 5")
    code, out, err = run("log", "query", "--store", url(db))
    (row,) = [line for line in out.splitlines() if ids[4] in line]
    assert code == 0 and "  deny  " in row
    assert "warning: decision #5: its verdict column(s) disagree with its record" in err
    code, out, _ = run("log", "query", "--store", url(db), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["verdict"], r["differs"]) for r in rows if r["id"] == ids[4]] == [("deny", "verdict")]
    assert {r["differs"] for r in rows if r["id"] != ids[4]} == {""}
    code, out, _ = run("log", "query", "--store", url(db), "--verdict", "deny")
    assert ids[4] not in out  # filters read the columns (the help says so); `log verify` finds the edit


# -- whose key: show and prove pin it (--verifier-key, else the configured one) --


def _rewrite_with_own_key(db: Path, victim: str, operator_key: Path) -> None:
    """The operator's forgery: the deny rewritten as an allow that agrees with itself, every record
    appended again with trustgate's own code (chain and tree rebuilt), a checkpoint signed with a key
    of the operator's own and stored beside it."""
    old = open_store(url(db), create=False)
    try:
        records = [json.loads(e.body) for e in old.entries()]
    finally:
        old.close()
    db.unlink()
    for r in records:
        if r["id"] == victim:
            r.update(verdict="allow", exitCode=0, findings=[])
            r["summary"].update(passed=1, failed=0)
            r["subject"]["objects"][0]["status"] = "passed"
    with DecisionLog.open(url(db), key=operator_key) as forged:
        for r in records:
            forged.append(r)
    assert run("log", "checkpoint", "--store", url(db), "--key", str(operator_key))[0] == 0


def test_show_and_prove_pin_the_given_or_configured_key_and_refuse_an_operators_own(
    db: Path, key: Path, tmp_path: Path
) -> None:
    ids = _signed_log(db, key)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        f"decisionLog:\n  url: {url(db)}\n  checkpoint:\n    key: {key}\n"
    )
    code, out, _ = run("log", "show", ids[4], "-c", str(config))  # genuine: checked with the configured key
    assert code == 0 and "verdict    deny" in out and "the record's inclusion proof verifies" in out
    assert f"verified with the configured key ({key})" in out
    operator = tmp_path / "operator.pem"
    operator.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    _rewrite_with_own_key(db, ids[4], operator)

    code, out, _ = run("log", "show", ids[4], "--store", url(db))  # no key anywhere: said so
    assert code == 0 and "verdict    allow" in out
    assert "verified with the key stored beside it (not pinned); the record's inclusion proof verifies" in out
    for pin in (["-c", str(config)], ["--store", url(db), "--verifier-key", _vkey(key)]):
        code, out, _ = run("log", "show", ids[4], *pin)
        assert code == 0 and "verdict    allow" in out, pin
        assert "inclusion proof verifies" not in out and "NOT VERIFIED: it is signed by key" in out, pin
        assert "not by the pinned key" in out, pin
        code, out, err = run("log", "prove", ids[4], *pin)
        assert code == 1 and out == "" and "NOT PROVEN" in err and "not by the pinned key" in err, pin
    code, out, err = run("log", "prove", ids[4], "--store", url(db))
    assert code == 0 and "verified with the key stored beside it (not pinned)" in err


def test_prove_names_newer_checkpoints_that_do_not_verify(db: Path, key: Path) -> None:
    ids = _signed_log(db, key)
    fill(db, key, 7, 9)
    assert run("log", "checkpoint", "--store", url(db), "--key", str(key))[0] == 0
    with sql(db) as conn:  # the newest checkpoint (at #8) altered: its signature no longer verifies
        conn.execute("UPDATE checkpoints SET time = '2027-01-01T00:00:00.000000Z' WHERE seq = 8")
    code, out, err = run("log", "prove", ids[4], "--store", url(db))
    assert code == 0 and json.loads(out)["treeSize"] == 6  # proven under the older one that verifies
    assert (
        "warning: NOT VERIFIED, not used: the manual checkpoint of 2027-01-01T00:00:00.000000Z at #8 has a "
        "signature that does not verify" in err
    )


def test_show_recomputes_the_chain_hash_and_flags_stored_hash_and_prev_columns_that_differ(
    db: Path, key: Path
) -> None:
    ids = _signed_log(db, key)
    code, out, err = run("log", "show", ids[4], "--store", url(db))
    assert code == 0 and "ALTERED" not in out
    code, line, err = run("log", "show", ids[4], "--store", url(db), "-o", "json")
    genuine = json.loads(line)["hash"]
    assert code == 0 and err == ""
    with sql(db) as conn:
        conn.execute("UPDATE decisions SET hash = ?, prev = ? WHERE seq = 5", ("ab" * 32, "cd" * 32))
    code, out, _ = run("log", "show", ids[4], "--store", url(db))
    assert code == 0 and "the record's inclusion proof verifies" in out  # the record itself is untouched
    expected = entry_hash("cd" * 32, canonical(json.loads(line)["record"]), 5)
    assert f"  hash       {expected}\n" in out and "ab" * 32 not in out.split("ALTERED")[0]
    assert f"ALTERED    the stored hash column is {'ab' * 32}, not the record's hash" in out
    assert "  prev       " + "cd" * 32 in out
    assert "ALTERED    the stored prev column is not the hash of record #4 recomputed from it" in out
    code, out, err = run("log", "show", ids[4], "--store", url(db), "-o", "json")
    shown = json.loads(out)
    assert code == 0 and shown["hash"] == expected and shown["hash"] != genuine
    assert "warning: ALTERED: the stored hash column is " + "ab" * 32 in err
    assert "warning: ALTERED: the stored prev column is not the hash of record #4" in err


# -- values of another type: SQLite's columns are typeless -----------------------


def _kept(db: Path, key: Path, tmp_path: Path, *, sign: bool = True) -> list[str]:
    """`log verify` with everything an auditor keeps: a checkpoint of the head (signed now unless the
    latest already is) as a file, and the verifier key."""
    kept = tmp_path / "kept.checkpoint"
    if sign:
        assert run("log", "checkpoint", "--store", url(db), "--key", str(key))[0] == 0
    assert run("log", "checkpoint", "--store", url(db), "--output", str(kept))[0] == 0
    return ["log", "verify", "--store", url(db), "--checkpoint", str(kept), "--verifier-key", _vkey(key)]


def _listed(db: Path, *filters: str) -> list[int]:
    code, out, _ = run("log", "query", "--store", url(db), *filters, "--format", "csv", "--limit", "0")
    assert code == 0
    return sorted(int(r["seq"]) for r in csv.DictReader(io.StringIO(out)))


@pytest.mark.parametrize(
    "change",
    [
        "kind = CAST(kind AS BLOB), value = CAST(value AS BLOB)",  # the tester's finding 6
        "value = CAST(value AS BLOB)",
        "kind = CAST(kind AS BLOB)",
    ],
)
def test_index_rows_retyped_in_place_are_found_by_verify(
    db: Path, key: Path, tmp_path: Path, change: str
) -> None:
    """Same bytes as a BLOB: `group_concat` reads them back as the same text, every filter misses them."""
    fill(db, key, 1, 21)
    verify = _kept(db, key, tmp_path)
    with sql(db) as conn:
        conn.execute(f"UPDATE terms SET {change} WHERE seq = 15")
    assert 15 not in _listed(db, "--rule", "no-priv") and 15 in _listed(db, "--verdict", "deny")
    code, out, _ = run(*verify)
    assert code == 1 and "NOT INTACT: altered: record #15 (" in out
    assert "the query index (namespaces, images, rules, commits, actors) does not match" in out
    assert "index rows of it were altered to hold values that are not text" in out


def test_an_index_out_of_step_with_its_table_fails_verify_naming_the_index(
    db: Path, key: Path, tmp_path: Path
) -> None:
    """The tester's finding 7: indexes rebuilt without #15, their SQL put back as it was."""
    fill(db, key, 1, 21)
    verify = _kept(db, key, tmp_path)
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for name, columns in (
            ("decisions_verdict", "decisions (verdict, seq)"),
            ("terms_lookup", "terms (kind, value, seq)"),
        ):
            schema = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
            conn.execute(f"DROP INDEX {name}")
            conn.execute(f"CREATE INDEX {name} ON {columns} WHERE seq <> 15")
            conn.execute("PRAGMA writable_schema = ON")
            conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = ?", (schema, name))
            conn.execute("PRAGMA writable_schema = OFF")
    assert 15 not in _listed(db, "--verdict", "deny") and 15 not in _listed(db, "--rule", "no-priv")
    code, out, _ = run(*verify)
    assert (
        code == 1
        and "NOT INTACT: altered: the SQLite index decisions_verdict does not match its table "
        "decisions (PRAGMA integrity_check: row 15 missing from index decisions_verdict"
        in out
    )
    assert "also: altered: the SQLite index terms_lookup does not match its table terms" in out
    assert "REINDEX decisions_verdict" in out


@pytest.mark.parametrize(
    ("change", "holds"),
    [
        ("prev = X'00'", "its prev column holds a BLOB (b'\\x00'), not text"),  # the tester's finding 2
        ("hash = CAST(hash AS BLOB)", "its hash column holds a BLOB"),
        ("verdict = CAST(verdict AS BLOB)", "its verdict column holds a BLOB (b'allow'), not text"),
        ("time = CAST(time AS BLOB)", "its time column holds a BLOB"),
        ("id = CAST(id AS BLOB)", "its id column holds a BLOB"),
    ],
)
def test_a_decisions_column_of_another_type_is_altered_for_verify_and_refused_by_readers(
    db: Path, key: Path, tmp_path: Path, change: str, holds: str
) -> None:
    ids = fill(db, key, 1, 7)
    verify = _kept(db, key, tmp_path)
    with sql(db) as conn:
        conn.execute(f"UPDATE decisions SET {change} WHERE seq = 3")
    code, out, _ = run(*verify)
    assert code == 1 and "NOT INTACT: altered: record #3 (" in out and holds in out
    for command in (["show", "#3"], ["show", ids[3]], ["export"], ["query"], ["prove", "#3"]):
        code, out, err = run("log", *command, "--store", url(db))
        assert code == 3 and f"the log is inconsistent: record #3 was altered: {holds}" in err, command


@pytest.mark.parametrize(
    ("change", "holds"),
    [
        ("seq = 'abc'", "its seq column holds text ('abc'), not an integer"),  # the tester's finding 3
        ("seq = X'00'", "its seq column holds a BLOB (b'\\x00'), not an integer"),
        ("seq = 5.5", "its seq column holds a real number (5.5), not an integer"),
        ("hash = CAST(hash AS BLOB)", "its hash column holds a BLOB"),
    ],
)
def test_a_chain_head_of_another_type_is_altered_for_verify_and_refused_by_readers_and_writers(
    db: Path, key: Path, tmp_path: Path, change: str, holds: str
) -> None:
    _signed_log(db, key)  # `show` reads the head before it vouches for #3 by the checkpoint at #6
    verify = _kept(db, key, tmp_path, sign=False)
    with sql(db) as conn:
        conn.execute(f"UPDATE chain_head SET {change}")
    code, out, _ = run(*verify)
    assert code == 1 and f"NOT INTACT: altered: the chain head (table chain_head) was altered: {holds}" in out
    for command in (["show", "#3"], ["prove", "#3"], ["prove-consistency", "2", "5"]):
        code, out, err = run("log", *command, "--store", url(db))
        assert code == 3 and f"the chain head (table chain_head) was altered: {holds}" in err, command
    with pytest.raises(DecisionLogError, match=f"refusing to append: the chain head .*{re.escape(holds)}"):
        fill(db, key, 7, 8)


@pytest.mark.parametrize("column", ["note", "time", "signature"])
def test_a_checkpoint_column_of_another_type_is_a_malformed_checkpoint_never_vouched_for(
    db: Path, key: Path, tmp_path: Path, column: str
) -> None:
    """The tester's finding 4 (the note as a BLOB of the same bytes) and its siblings."""
    ids = _signed_log(db, key)
    verify = _kept(db, key, tmp_path, sign=False)
    with sql(db) as conn:  # the manual checkpoint at #6, the newest
        newest = "(SELECT max(n) FROM checkpoints)"
        conn.execute(f"UPDATE checkpoints SET {column} = CAST({column} AS BLOB) WHERE n = {newest}")
    malformed = f"is malformed: its {column} column holds a BLOB"
    code, out, _ = run(*verify)
    assert code == 1 and "NOT INTACT: checkpoint: the manual checkpoint of " in out and malformed in out
    assert out.count(" at #6 ") == 1  # reported once, not again as a tree checkpoint that does not verify
    code, out, _ = run("log", "show", ids[4], "--store", url(db), "--verifier-key", _vkey(key))
    assert code == 0 and f"(NOT VERIFIED: it {malformed}" in out and "signed by" not in out
    code, out, err = run("log", "prove", ids[4], "--store", url(db), "--verifier-key", _vkey(key))
    assert code == 1 and out == "" and malformed in err
    code, out, err = run("log", "checkpoint", "--store", url(db), "--output", str(tmp_path / "again"))
    assert code == 3 and malformed in err and not (tmp_path / "again").exists()


def test_prune_refuses_to_anchor_at_a_hash_column_that_is_not_text(db: Path, key: Path) -> None:
    fill(db, key, 1, 7)
    with sql(db) as conn:
        conn.execute("UPDATE decisions SET hash = CAST(hash AS BLOB) WHERE seq = 6")
    code, _, err = run("log", "prune", "--store", url(db), "--before", "2100-01-01", "--key", str(key))
    # Refused before anything is removed or appended: the carry-overs (revocations, where presync
    # left its gated refs) read the records the prune would remove first, and stop at this one.
    assert code == 3 and "record #6 was altered: its hash column holds a BLOB" in err, err
    with sql(db) as conn:
        assert conn.execute("SELECT count(*) FROM decisions").fetchone()[0] == 6
