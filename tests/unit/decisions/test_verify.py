"""`Verifier` against rows changed directly in the database: it names the first bad record and how."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from decision_records import MakeRecord

from trustgate.decisions.chain import (
    Checkpoint,
    CheckpointSigner,
    Report,
    Verifier,
    _same_index,
    entry_hash,
    escape_term,
    index_item,
    load_public_key,
    split_index,
    unescape_term,
)
from trustgate.decisions.log import DecisionLog, open_store


def _key(tmp_path: Path, name: str = "key.pem") -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = tmp_path / name
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def _fill(url: str, make_record: MakeRecord, n: int = 20, key: Path | None = None) -> list[str]:
    with DecisionLog.open(url, key=key) as log:
        return [log.append(make_record(i)) for i in range(1, n + 1)]


def _verify(url: str, public_key: Path | None = None) -> Report:
    """Verify as `log verify` does (one stream), and from separate entry and index streams: same report."""
    store = open_store(url, create=False)
    try:
        with store.snapshot():
            pinned = load_public_key(public_key) if public_key else None
            verifier = Verifier(checkpoints=store.checkpoints(), public_key=pinned)
            report = verifier.run(store.entries(), store.index_rows())
            separate = verifier.run((e for e in store.entries()), (t for t in store.index_rows()))
    finally:
        store.close()
    assert separate.to_json() == report.to_json()
    return report


def _tamper(url: str, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Run SQL directly, as someone with write access to the database would."""
    store = open_store(url)
    try:
        with store._write():
            for sql, params in statements:
                store._execute(sql, params)
    finally:
        store.close()


def _row(url: str, seq: int) -> tuple[Any, ...]:
    store = open_store(url)
    try:
        return store._execute("SELECT id, record, prev, hash FROM decisions WHERE seq = ?", (seq,))[0]
    finally:
        store.close()


_INSERT_AT_5 = (
    "INSERT INTO decisions (seq, id, time, gate, verdict, record, prev, hash) VALUES (5, ?, ?, ?, ?, ?, ?, ?)"
)


def _shift(url: str, start: int, by: int) -> list[tuple[str, tuple[Any, ...]]]:
    """Statements renumbering seq >= start by `by`, without breaking uniqueness on the way."""
    return [
        ("UPDATE decisions SET seq = -seq WHERE seq >= ?", (start,)),
        ("UPDATE terms SET seq = -seq WHERE seq >= ?", (start,)),
        ("UPDATE decisions SET seq = -seq + ? WHERE seq < 0", (by,)),
        ("UPDATE terms SET seq = -seq + ? WHERE seq < 0", (by,)),
    ]


def test_an_untouched_log_is_intact(store_url: str, make_record: MakeRecord) -> None:
    _fill(store_url, make_record)
    report = _verify(store_url)
    assert report.ok and report.records == 20 and report.first_seq == 1 and report.last_seq == 20


def test_altered_record(store_url: str, make_record: MakeRecord) -> None:
    ids = _fill(store_url, make_record)
    _, body, _, _ = _row(store_url, 7)
    changed = bytes(body).replace(b'"verdict":"allow"', b'"verdict":"deny"')
    assert changed != bytes(body)
    _tamper(store_url, ("UPDATE decisions SET record = ? WHERE seq = 7", (changed,)))
    problem = _verify(store_url).first_problem
    assert problem is not None and (problem.kind, problem.seq, problem.id) == ("altered", 7, ids[6])
    assert "#7" in problem.message


def test_altered_record_with_its_hash_recomputed(store_url: str, make_record: MakeRecord) -> None:
    ids = _fill(store_url, make_record)
    _, body, prev, _ = _row(store_url, 7)
    changed = bytes(body).replace(b'"verdict":"allow"', b'"verdict":"deny"')
    forged = entry_hash(prev, changed, 7)
    _tamper(store_url, ("UPDATE decisions SET record = ?, hash = ? WHERE seq = 7", (changed, forged)))
    problem = _verify(store_url).first_problem
    assert problem is not None and (problem.kind, problem.seq, problem.id) == ("altered", 7, ids[6])


def test_altered_column_only(store_url: str, make_record: MakeRecord) -> None:
    ids = _fill(store_url, make_record)
    _tamper(store_url, ("UPDATE decisions SET verdict = 'allow' WHERE seq = 8", ()))  # n=8 was a deny
    problem = _verify(store_url).first_problem
    assert problem is not None and (problem.kind, problem.seq, problem.id) == ("altered", 8, ids[7])
    assert "verdict column" in problem.message


def test_altered_query_index(store_url: str, make_record: MakeRecord) -> None:
    ids = _fill(store_url, make_record)
    _tamper(
        store_url, ("DELETE FROM terms WHERE seq = 12 AND kind = 'rule'", ())
    )  # hide a denial from --rule
    problem = _verify(store_url).first_problem
    assert problem is not None and (problem.kind, problem.seq, problem.id) == ("altered", 12, ids[11])
    assert "query index" in problem.message


def test_removed_record(store_url: str, make_record: MakeRecord) -> None:
    _fill(store_url, make_record)
    _tamper(store_url, ("DELETE FROM decisions WHERE seq = 9", ()), ("DELETE FROM terms WHERE seq = 9", ()))
    problem = _verify(store_url).first_problem
    assert problem is not None and (problem.kind, problem.seq) == ("removed", 9)
    assert "#9 was removed" in problem.message


def test_removed_record_with_later_ones_renumbered(store_url: str, make_record: MakeRecord) -> None:
    _fill(store_url, make_record)
    _tamper(
        store_url,
        ("DELETE FROM decisions WHERE seq = 9", ()),
        ("DELETE FROM terms WHERE seq = 9", ()),
        *_shift(store_url, 10, -1),
    )
    problem = _verify(store_url).first_problem
    assert problem is not None and (problem.kind, problem.seq) == ("removed", 9)


def test_inserted_record(store_url: str, make_record: MakeRecord) -> None:
    ids = _fill(store_url, make_record)
    forged = make_record(99)
    from trustgate.decisions.log import prepare

    item = prepare(forged)
    _tamper(
        store_url,
        *_shift(store_url, 5, 1),
        (
            _INSERT_AT_5,
            (item.id, item.time, item.gate, item.verdict, item.body, "f" * 64, "e" * 64),
        ),
    )
    problem = _verify(store_url).first_problem
    assert problem is not None and (problem.kind, problem.seq, problem.id) == ("inserted", 5, item.id)
    assert ids[4] in problem.message  # the record that belongs there


def test_inserted_record_with_a_correct_hash(store_url: str, make_record: MakeRecord) -> None:
    """Someone who knows the algorithm links a forged record properly; the next record exposes it."""
    _fill(store_url, make_record)
    from trustgate.decisions.log import prepare

    item = prepare(make_record(99))
    _, _, prev5, _ = _row(store_url, 5)
    _tamper(
        store_url,
        *_shift(store_url, 5, 1),
        (
            _INSERT_AT_5,
            (item.id, item.time, item.gate, item.verdict, item.body, prev5, entry_hash(prev5, item.body, 5)),
        ),
        *[("INSERT INTO terms (kind, value, seq) VALUES (?, ?, 5)", t) for t in item.terms],
    )
    problem = _verify(store_url).first_problem
    assert problem is not None and (problem.kind, problem.seq, problem.id) == ("inserted", 5, item.id)


def test_reordered_records(store_url: str, make_record: MakeRecord) -> None:
    ids = _fill(store_url, make_record)
    _tamper(
        store_url,
        ("UPDATE decisions SET seq = -1 WHERE seq = 11", ()),
        ("UPDATE terms SET seq = -1 WHERE seq = 11", ()),
        ("UPDATE decisions SET seq = 11 WHERE seq = 12", ()),
        ("UPDATE terms SET seq = 11 WHERE seq = 12", ()),
        ("UPDATE decisions SET seq = 12 WHERE seq = -1", ()),
        ("UPDATE terms SET seq = 12 WHERE seq = -1", ()),
    )
    problem = _verify(store_url).first_problem
    assert problem is not None and (problem.kind, problem.seq, problem.id) == ("reordered", 11, ids[11])
    assert ids[10] in problem.message


def test_newest_records_removed_are_caught_by_a_signed_checkpoint(
    store_url: str, make_record: MakeRecord, tmp_path: Path
) -> None:
    key = _key(tmp_path)
    _fill(store_url, make_record, 10, key=key)  # the first append checkpoints at once
    with DecisionLog.open(store_url, key=key) as log:
        for i in range(11, 16):
            log.append(make_record(i))
        log.checkpoint()  # on demand, at #15
    _tamper(store_url, ("DELETE FROM decisions WHERE seq > 12", ()), ("DELETE FROM terms WHERE seq > 12", ()))
    report = _verify(store_url, public_key=key)
    problem = report.first_problem
    assert problem is not None and (problem.kind, problem.seq) == ("removed", 13)
    assert "#13..#15" in problem.message


def test_a_rewritten_chain_is_caught_by_a_signed_checkpoint(
    store_url: str, make_record: MakeRecord, tmp_path: Path
) -> None:
    key = _key(tmp_path)
    _fill(store_url, make_record, 5, key=key)
    with DecisionLog.open(store_url, key=key) as log:
        log.checkpoint()
    # Rewrite record 3 and re-hash everything after it: the chain alone is consistent again.
    store = open_store(store_url)
    rows = store._execute("SELECT seq, record, prev FROM decisions ORDER BY seq")
    statements: list[tuple[str, tuple[Any, ...]]] = []
    prev = rows[2][2]
    for seq, body, _ in rows[2:]:
        body = bytes(body).replace(b'"mode":"enforce"', b'"mode":"audit"') if seq == 3 else bytes(body)
        digest = entry_hash(prev, body, seq)
        statements.append(
            ("UPDATE decisions SET record = ?, prev = ?, hash = ? WHERE seq = ?", (body, prev, digest, seq))
        )
        prev = digest
    store.close()
    _tamper(store_url, *statements)
    report = _verify(store_url, public_key=key)
    assert [p.kind for p in report.problems] == ["altered"]
    assert "rewritten" in report.problems[0].message and "#5" in report.problems[0].message


def test_an_intact_report_says_which_records_no_trusted_checkpoint_covers(
    store_url: str, make_record: MakeRecord, tmp_path: Path
) -> None:
    key = _key(tmp_path)
    _fill(store_url, make_record, 12, key=key)  # signed at #1 only
    pinned = _verify(store_url, public_key=key)
    assert pinned.ok and (pinned.covered_through, pinned.uncovered) == (1, 11)
    assert any(
        w.startswith(
            "records #2..#12 (11 of 12) are covered by no signed checkpoint (the newest checked covers #1)"
        )
        for w in pinned.warnings
    )
    assert any("only shows the log is self-consistent" in w for w in pinned.warnings)
    # Unpinned, a stored checkpoint may be signed by whoever wrote the database: it vouches for nothing.
    unpinned = _verify(store_url)
    assert (unpinned.covered_through, unpinned.uncovered) == (0, 12)
    assert any(w.startswith("records #1..#12 (12 of 12)") and "none checked can be trusted" in w
               for w in unpinned.warnings)  # fmt: skip
    with DecisionLog.open(store_url, key=key) as log:
        log.checkpoint()
    covered = _verify(store_url, public_key=key)
    assert (covered.covered_through, covered.uncovered) == (12, 0)
    assert not any("covered by no signed checkpoint" in w for w in covered.warnings)
    assert covered.to_json()["coveredThrough"] == 12 and covered.to_json()["uncovered"] == 0


def test_checkpoints_must_carry_valid_signatures_by_the_pinned_key(
    store_url: str, make_record: MakeRecord, tmp_path: Path
) -> None:
    key = _key(tmp_path)
    _fill(store_url, make_record, 3, key=key)
    assert _verify(store_url, public_key=key).ok
    other = _key(tmp_path, "other.pem")
    report = _verify(store_url, public_key=other)
    assert not report.ok and "not by the pinned key" in report.problems[0].message
    _tamper(store_url, ("UPDATE checkpoints SET seq = seq + 1", ()))
    report = _verify(store_url, public_key=key)
    assert not report.ok and "does not verify" in report.problems[0].message


def test_a_forged_prune_anchor_without_the_key_is_refused(
    store_url: str, make_record: MakeRecord, tmp_path: Path
) -> None:
    key = _key(tmp_path)
    _fill(store_url, make_record, 6, key=key)
    _, _, _, hash3 = _row(store_url, 3)
    _tamper(
        store_url,
        ("DELETE FROM decisions WHERE seq <= 3", ()),
        (
            "INSERT INTO checkpoints (seq, hash, time, kind, key_id, public_key, signature) "
            "VALUES (3, ?, 't', 'prune', '', '', '')",
            (hash3,),
        ),
    )
    report = _verify(store_url, public_key=key)
    assert not report.ok and "prune checkpoint" in report.problems[0].message
    assert "is not signed" in report.problems[0].message
    # Without a pinned key too: the log's other checkpoints are signed, so its prune would be.
    report = _verify(store_url)
    assert not report.ok and "prune checkpoint" in report.problems[0].message
    assert "is not signed, but the log's checkpoints are" in report.problems[0].message


def test_checkpoint_payload_binds_every_field() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signer = CheckpointSigner(private_key=Ed25519PrivateKey.generate())
    cp = signer.sign(seq=5, hash="a" * 64, time="2025-01-01T00:00:00.000000Z", kind="manual")
    raw = base64.b64decode(cp.signature)
    signer.public_key.verify(raw, cp.payload())
    changes: list[Callable[[Checkpoint], Checkpoint]] = [
        lambda c: Checkpoint(6, c.hash, c.time, c.kind, c.key_id, c.public_key, c.signature),
        lambda c: Checkpoint(c.seq, "b" * 64, c.time, c.kind, c.key_id, c.public_key, c.signature),
        lambda c: Checkpoint(c.seq, c.hash, "x", c.kind, c.key_id, c.public_key, c.signature),
        lambda c: Checkpoint(c.seq, c.hash, c.time, "prune", c.key_id, c.public_key, c.signature),
    ]
    from cryptography.exceptions import InvalidSignature

    for change in changes:
        with pytest.raises(InvalidSignature):
            signer.public_key.verify(raw, change(cp).payload())


def test_a_verify_stream_stopped_early_leaves_the_snapshot_usable(
    store_url: str, make_record: MakeRecord
) -> None:
    """The first problem stops the reader mid-stream; what the snapshot reads next still works."""
    _fill(store_url, make_record, 1500)  # more than one network buffer of rows
    store = open_store(store_url, create=False)
    try:
        with store.snapshot():
            rows = store.verify_rows()
            first = next(rows)
            rows.close()  # as Verifier.run_rows does when it stops at a problem
            assert first[0] == 1
            assert sum(1 for _ in store.entries()) == 1500
    finally:
        store.close()


def test_the_index_is_compared_in_any_order_and_its_items_escaped() -> None:
    record = {"subject": {"objects": [{"kind": "Pod", "namespace": "b"}, {"kind": "Pod", "namespace": "a"}]}}
    items = [index_item("namespace", "a"), index_item("namespace", "b")]
    assert _same_index("\x1e".join(items), record)
    assert _same_index("\x1e".join(reversed(items)), record)  # PostgreSQL's aggregation order, say
    assert not _same_index("\x1e".join(items[:1]), record)
    tricky = "x\x1ey\x1fz\x1b0\x1b"
    assert "\x1e" not in escape_term(tricky) and "\x1f" not in escape_term(tricky)
    assert unescape_term(escape_term(tricky)) == tricky
    assert split_index(index_item("namespace", tricky) + "\x1e" + index_item("rule", "r")) == [
        ("namespace", tricky),
        ("rule", "r"),
    ]


def _tree_problems(url: str) -> list[str]:
    """What `log verify` finds, with the stored tree (every node of it) and head."""
    store = open_store(url, create=False)
    try:
        with store.snapshot():
            verifier = Verifier(checkpoints=store.checkpoints(), tree=store.stored_tree(), head=store.head())
            return [p.message for p in store.verify(verifier).problems]
    finally:
        store.close()


def _below_the_root(level: int) -> str:
    what = "a record's leaf hash" if level == 0 else f"a node at level {level}"
    return (
        f"the stored Merkle tree does not match the records below its root: {what} differs, so inclusion "
        "proofs of genuine records fail (the tree table was altered)"
    )


@pytest.mark.parametrize(("level", "index"), [(0, 0), (1, 3), (2, 1), (0, 12)])
def test_a_tree_node_changed_below_the_root_is_found(
    store_url: str, make_record: MakeRecord, level: int, index: int
) -> None:
    _fill(store_url, make_record, 13)
    assert _tree_problems(store_url) == []
    store = open_store(store_url, create=False)
    try:
        root = store.root(13)
    finally:
        store.close()
    _tamper(
        store_url, ("UPDATE tree_nodes SET hash = ? WHERE level = ? AND idx = ?", (bytes(32), level, index))
    )
    store = open_store(store_url, create=False)
    try:
        changed_root = store.root(13)
    finally:
        store.close()
    if (level, index) != (0, 12):  # the root is made of (3, 0), (2, 2) and (0, 12): the others lie below
        assert changed_root == root
        assert _tree_problems(store_url) == [_below_the_root(level)]
    else:
        assert _tree_problems(store_url) == [
            "the stored Merkle tree does not match the records: its root of #1..#13 differs"
        ]


def test_after_a_prune_the_nodes_the_kept_records_complete_are_compared(
    store_url: str, make_record: MakeRecord
) -> None:
    with DecisionLog.open(store_url) as log:
        for n in range(1, 14):
            log.append(make_record(n, time=f"2026-01-01T00:00:{n:02d}.000000Z"))
    store = open_store(store_url, create=False)
    try:
        pruned = store.prune("2026-01-01T00:00:06.000000Z", lambda s, h: Checkpoint(s, h, "t", "prune"))
    finally:
        store.close()
    assert pruned.removed == 5 and _tree_problems(store_url) == []
    _tamper(
        store_url, ("UPDATE tree_nodes SET hash = ? WHERE level = 1 AND idx = 4", (bytes(32),))
    )  # #9, #10
    assert _tree_problems(store_url) == [_below_the_root(1)]


def test_a_prune_checkpoint_signed_after_the_records_it_keeps_sets_no_time_floor(
    store_url: str, make_record: MakeRecord, tmp_path: Path
) -> None:
    """A prune is signed long after the records it keeps were written; only the checkpoints signed
    before a record was written bound its time (`log verify` would flag every record kept)."""
    signer = CheckpointSigner.from_file(_key(tmp_path))
    with DecisionLog.open(store_url) as log:
        for n in range(1, 14):
            log.append(make_record(n, time=f"2025-01-01T00:00:{n:02d}.000000Z"))
    store = open_store(store_url, create=False)
    try:
        store.prune(
            "2025-01-01T00:00:06.000000Z",
            lambda s, h: signer.sign(seq=s, hash=h, time="2026-01-01T00:00:00.000000Z", kind="prune"),
        )
    finally:
        store.close()
    report = _verify(store_url)
    assert report.ok, report.first_problem
    # A periodic checkpoint at #8 does bound the records after it: by the newest record it covers,
    # 00:00:08, when it was signed later (a clock ahead, or any signer's after a while).
    periodic = signer.sign(
        seq=8, hash=_row(store_url, 8)[3], time="2026-01-01T00:00:00.000000Z", kind="periodic"
    )
    _tamper(
        store_url,
        (
            "INSERT INTO checkpoints (seq, hash, time, kind, key_id, public_key, signature, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            _checkpoint_row(periodic),
        ),
    )
    report = _verify(store_url)
    assert report.ok, report.first_problem  # 00:00:09..13 are after 00:00:08


def _checkpoint_row(cp: Checkpoint) -> tuple[Any, ...]:
    return (cp.seq, cp.hash, cp.time, cp.kind, cp.key_id, cp.public_key, cp.signature, cp.note)


# -- values of another type (SQLite's columns are typeless) ---------------------


def _rows(url: str, make_record: MakeRecord) -> list[Any]:
    _fill(url, make_record, 5)
    store = open_store(url, create=False)
    try:
        with store.snapshot():
            return list(store.verify_rows())
    finally:
        store.close()


@pytest.mark.parametrize("value", [b"x", 7, 7.5, None])
@pytest.mark.parametrize(
    ("column", "name"), [(1, "id"), (2, "time"), (3, "gate"), (4, "verdict"), (6, "prev"), (7, "hash")]
)
def test_a_column_of_another_type_is_an_altered_record_not_a_crash(
    sqlite_url: str, make_record: MakeRecord, column: int, name: str, value: Any
) -> None:
    rows = _rows(sqlite_url, make_record)
    changed = list(rows[2])
    changed[column] = value
    rows[2] = tuple(changed)
    problem = Verifier(checkpoints=[]).run_rows(rows).first_problem
    assert problem is not None and (problem.kind, problem.seq) == ("altered", 3)
    assert "record #3 (" in problem.message and f"was altered: its {name} column holds " in problem.message


@pytest.mark.parametrize(
    ("head", "holds"),
    [
        (("abc", "0" * 64), "its seq column holds text ('abc')"),
        ((5, b"h"), "its hash column holds a BLOB (b'h')"),
    ],
)
def test_a_chain_head_of_another_type_is_altered(
    sqlite_url: str, make_record: MakeRecord, head: tuple[Any, Any], holds: str
) -> None:
    report = Verifier(checkpoints=[], head=head).run_rows(_rows(sqlite_url, make_record))
    [problem] = report.problems
    assert (
        problem.kind == "altered"
        and f"the chain head (table chain_head) was altered: {holds}" in problem.message
    )


def test_a_checkpoint_row_of_another_type_is_malformed_and_never_verifies() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from trustgate.decisions.chain import signature_problem, stored_checkpoint_problem
    from trustgate.errors import DecisionLogError

    signer = CheckpointSigner(private_key=Ed25519PrivateKey.generate())
    cp = signer.sign(seq=5, hash="a" * 64, time="t", kind="manual", root=bytes(32))
    row = [cp.seq, cp.hash, cp.time, cp.kind, cp.key_id, cp.public_key, cp.signature, cp.note]
    assert Checkpoint.from_row(row, where="db") == cp and stored_checkpoint_problem(cp) is None
    blob = Checkpoint.from_row([*row[:7], cp.note.encode()], where="db")
    assert blob.note == "?" and blob.malformed is not None
    assert blob.malformed.startswith("is malformed: its note column holds a BLOB")
    assert signature_problem(blob, None) == stored_checkpoint_problem(blob) == blob.malformed
    for seq in (5.0, "5", b"5"):
        with pytest.raises(DecisionLogError, match="chain position is not a number"):
            Checkpoint.from_row([seq, *row[1:]], where="db")


def test_integrity_check_lines_are_one_problem_per_index() -> None:
    from trustgate.decisions.sqlite import integrity_problems

    lines = [
        "row 15 missing from index decisions_verdict",
        "wrong # of entries in index decisions_verdict",
        "NULL value in decisions.verdict",
    ]
    problems = integrity_problems(lines, {"decisions_verdict": "decisions"})
    assert [p.kind for p in problems] == ["altered", "altered"]
    assert problems[0].message.startswith(
        "the SQLite index decisions_verdict does not match its table decisions (PRAGMA integrity_check: "
        "row 15 missing from index decisions_verdict; wrong # of entries in index decisions_verdict)"
    )
    assert (
        "fails its integrity check (PRAGMA integrity_check: NULL value in decisions.verdict)"
        in problems[1].message
    )
