"""What a reader vouches for: checkpoints whose signatures verify, and records proven under them.

On SQLite and PostgreSQL, with rows changed in the database as its operator
could: `vouch` must skip forged checkpoints (and fall back to one that
verifies) and refuse a record that is not its leaf or whose proof does not
lead to the signed root; a lookup by id must refuse a row that is not its
record's.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from decision_records import MakeRecord

from trustgate.decisions import merkle
from trustgate.decisions.chain import CheckpointSigner, Entry, entry_hash
from trustgate.decisions.log import open_store, prepare
from trustgate.decisions.note import TreeHead, sign_note
from trustgate.decisions.store import InconsistentLogError, SqlStore
from trustgate.decisions.vouch import MAX_REFUSED, Vouched, cover, newest_vouched, read_chain_columns

SIGNER = CheckpointSigner(private_key=Ed25519PrivateKey.generate())


def _log(url: str, make_record: MakeRecord, count: int, signed_at: tuple[int, ...]) -> SqlStore:
    store = open_store(url)
    assert isinstance(store, SqlStore)
    for n in range(1, count + 1):
        store.append([prepare(make_record(n))])
        if n in signed_at:
            seq, digest = store.head()
            store.add_checkpoint(
                SIGNER.sign(seq=seq, hash=digest, time=f"t{n}", kind="manual", root=store.root(seq))
            )
    return store


def _get(store: SqlStore, key: str) -> Entry:
    entry = store.get(key)
    assert entry is not None
    return entry


def _forge_checkpoints(store: SqlStore, count: int) -> None:
    """Checkpoints of the whole log made up without the log's key: a stranger signs the note under the
    log's origin, the row carries the log's real public key and a signature that is junk."""
    stranger = Ed25519PrivateKey.generate()
    seq, digest = store.head()
    note = sign_note(TreeHead(SIGNER.origin, seq, store.root(seq)).text(), SIGNER.origin, stranger)
    genuine = SIGNER.sign(seq=seq, hash=digest, time="x", kind="manual")
    junk = base64.b64encode(b"\x01" * 64).decode()
    with store._write():
        for n in range(count):
            store._execute(
                "INSERT INTO checkpoints (seq, hash, time, kind, key_id, public_key, signature, note) "
                "VALUES (?, ?, ?, 'manual', ?, ?, ?, ?)",
                (seq, digest, f"forged {n}", genuine.key_id, genuine.public_key, junk, note),
            )


def test_forged_newer_checkpoints_are_refused_and_proofs_fall_back_to_one_that_verifies(
    store_url: str, make_record: MakeRecord
) -> None:
    store = _log(store_url, make_record, 20, signed_at=(5, 12))
    try:
        with store.snapshot():
            genuine = cover(store, _get(store, "#3"))
        assert genuine.proven and genuine.refused == []
        assert genuine.vouched is not None and genuine.vouched.checkpoint.seq == 12
        assert genuine.vouched.vkey == SIGNER.note_verifier().vkey() and not genuine.vouched.pinned

        _forge_checkpoints(store, 10)  # more than one page of the newest-first reads
        with store.snapshot():
            entry = store.get("#3")
            assert entry is not None
            coverage = cover(store, entry)
            newest = cover(store, _get(store, "#20"))
        assert coverage.proven and coverage.vouched is not None and coverage.vouched.checkpoint.seq == 12
        assert [r.checkpoint.time for r in coverage.refused] == [f"forged {n}" for n in reversed(range(10))]
        assert all("signature that does not verify" in r.reason for r in coverage.refused)
        proof = coverage.proof()
        merkle.verify_inclusion(
            2, 12, merkle.leaf_hash(entry.body), coverage.hashes, coverage.vouched.head.root
        )
        assert proof["treeSize"] == 12 and proof["checkpoint"] == coverage.vouched.checkpoint.note
        assert (
            newest.vouched is None and not newest.proven and len(newest.refused) == 10
        )  # only forged cover #20

        pinned, _ = newest_vouched(store, pinned=SIGNER.public_key)
        assert isinstance(pinned, Vouched) and pinned.pinned and pinned.checkpoint.seq == 12
        other, refused = newest_vouched(store, pinned=Ed25519PrivateKey.generate().public_key())
        assert other is None and len(refused) == 12  # no checkpoint is the pinned key's
    finally:
        store.close()


def test_many_forged_checkpoints_are_read_only_up_to_a_limit(
    sqlite_url: str, make_record: MakeRecord
) -> None:
    store = _log(sqlite_url, make_record, 3, signed_at=(2,))
    try:
        _forge_checkpoints(store, MAX_REFUSED + 5)
        vouched, refused = newest_vouched(store)
        assert vouched is None and len(refused) == MAX_REFUSED  # gives up: no proof rather than a slow page
    finally:
        store.close()


def test_a_record_that_is_not_its_leaf_is_not_proven(store_url: str, make_record: MakeRecord) -> None:
    store = _log(store_url, make_record, 6, signed_at=(6,))
    try:
        with store._write():
            body = store._execute("SELECT record FROM decisions WHERE seq = 4")[0][0]
            store._execute(
                "UPDATE decisions SET record = ? WHERE seq = 4", (bytes(body).replace(b'"ci"', b'"cd"'),)
            )
        with store.snapshot():
            coverage = cover(store, _get(store, "#4"))
        assert coverage.vouched is not None and not coverage.proven
        assert coverage.problem == (
            "record #4 is not the leaf the Merkle tree holds for it: it was altered after it was appended"
        )
    finally:
        store.close()


def test_an_id_column_that_is_not_the_records_id_is_refused(store_url: str, make_record: MakeRecord) -> None:
    store = _log(store_url, make_record, 3, signed_at=())
    try:
        one, two = (store.get(f"#{n}") for n in (1, 2))
        assert one is not None and two is not None
        with store._write():  # the ids swapped, the records untouched
            store._execute("UPDATE decisions SET id = 'swap' WHERE seq = 1")
            store._execute("UPDATE decisions SET id = ? WHERE seq = 2", (one.id,))
            store._execute("UPDATE decisions SET id = ? WHERE seq = 1", (two.id,))
        for key in (one.id, "#2"):
            with pytest.raises(InconsistentLogError, match=f"record #2 is stored under the id {one.id}, but"):
                store.get(key)
        assert store.get("#3") is not None
    finally:
        store.close()


def test_a_proof_that_reads_a_changed_tree_node_is_not_proven(
    store_url: str, make_record: MakeRecord
) -> None:
    store = _log(store_url, make_record, 13, signed_at=(13,))
    try:
        with store._write():  # #5's proof reads the node over #7 and #8
            store._execute("UPDATE tree_nodes SET hash = ? WHERE level = 1 AND idx = 3", (bytes(32),))
        with store.snapshot():
            coverage = cover(store, _get(store, "#5"))
        assert coverage.vouched is not None and not coverage.proven
        assert coverage.problem == (
            "the stored tree's inclusion proof of #5 does not lead to the root the checkpoint at #13 signs: "
            "the tree table was altered"
        )
    finally:
        store.close()


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"subject": "x"}'])
def test_a_record_that_is_no_decision_record_is_returned_to_be_flagged_and_never_proven(
    store_url: str, make_record: MakeRecord, body: bytes
) -> None:
    """Not a JSON object with an id: it cannot pass for another decision, so `get` returns it (the
    readers flag it) rather than refusing the lookup; and nothing proves it, whatever the tree says."""
    store = _log(store_url, make_record, 4, signed_at=(4,))
    try:
        with store._write():  # the stored leaf rewritten too: only the record's shape is left to catch it
            store._execute("UPDATE decisions SET record = ? WHERE seq = 2", (body,))
            store._execute(
                "UPDATE tree_nodes SET hash = ? WHERE level = 0 AND idx = 1", (merkle.leaf_hash(body),)
            )
        entry = _get(store, "#2")
        assert entry.malformed() is not None
        with store.snapshot():
            coverage = cover(store, entry)
        assert coverage.vouched is not None and not coverage.proven
        assert coverage.problem is not None and "record #2 is not a decision record" in coverage.problem
    finally:
        store.close()


def test_a_checkpoint_that_signs_more_records_than_the_tree_holds_proves_nothing(
    store_url: str, make_record: MakeRecord
) -> None:
    store = _log(store_url, make_record, 6, signed_at=(6,))
    try:
        with store._write():  # the log rolled back under a genuine checkpoint
            store._execute("UPDATE chain_head SET seq = 4, hash = (SELECT hash FROM decisions WHERE seq = 4)")
        with store.snapshot():
            coverage = cover(store, _get(store, "#2"))
        assert coverage.vouched is not None and coverage.vouched.checkpoint.seq == 6 and not coverage.proven
        assert coverage.problem is not None
        assert "claims 6 records, but the log's tree holds 4" in coverage.problem
    finally:
        store.close()


def test_chain_columns_are_recomputed_from_the_records_and_stored_ones_that_differ_flagged(
    store_url: str, make_record: MakeRecord
) -> None:
    store = _log(store_url, make_record, 4, ())
    try:
        genuine = [read_chain_columns(store, _get(store, f"#{n}")) for n in range(1, 5)]
        assert [c.problems for c in genuine] == [[]] * 4
        assert [c.hash for c in genuine] == [_get(store, f"#{n}").hash for n in range(1, 5)]
        with store._write():  # the operator edits #3's chain columns, nothing else
            store._execute("UPDATE decisions SET hash = ?, prev = ? WHERE seq = 3", ("ab" * 32, "cd" * 32))
        third = _get(store, "#3")
        columns = read_chain_columns(store, third)
        assert columns.hash == entry_hash("cd" * 32, third.body, 3) and columns.stored_hash == "ab" * 32
        assert columns.prev == "cd" * 32
        assert columns.prev_problem == (
            f"the stored prev column is not the hash of record #2 recomputed from it ({genuine[1].hash})"
        )
        assert len(columns.problems) == 2
        # #3's hash recomputed (over its altered prev) is not what #4 links to: #4's prev is flagged too
        assert read_chain_columns(store, _get(store, "#4")).prev_problem is not None
        with store._write():
            store._execute("UPDATE decisions SET prev = ? WHERE seq = 1", ("ef" * 32,))
        assert read_chain_columns(store, _get(store, "#1")).prev_problem is not None  # not the genesis
    finally:
        store.close()
