"""Stores on real SQLite and PostgreSQL: append, queries with every filter, stats, prune, errors."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from decision_records import DIGEST, MakeRecord, commit_of, digest_of

from trustgate.decisions.chain import CheckpointSigner, Verifier, entry_hash
from trustgate.decisions.log import DecisionLog, open_store, prepare
from trustgate.decisions.record import index_terms
from trustgate.decisions.store import Filters, parse_time
from trustgate.errors import DecisionLogError


def _fill(url: str, make_record: MakeRecord, n: int = 60) -> list[str]:
    with DecisionLog.open(url) as log:
        return [log.append(make_record(i)) for i in range(1, n + 1)]


def _verify(url: str) -> Verifier:
    store = open_store(url, create=False)
    try:
        with store.snapshot():
            verifier = Verifier(checkpoints=store.checkpoints())
            verifier.report = verifier.run(store.entries(), store.index_rows())  # type: ignore[attr-defined]
    finally:
        store.close()
    return verifier


def test_appends_form_a_chain_and_ids_come_back_after_commit(store_url: str, make_record: MakeRecord) -> None:
    ids = _fill(store_url, make_record, 20)
    store = open_store(store_url)
    entries = list(store.entries())
    store.close()
    assert [e.id for e in entries] == ids
    assert [e.seq for e in entries] == list(range(1, 21))
    for before, entry in itertools.pairwise(entries):
        assert entry.prev == before.hash
        assert entry.hash == entry_hash(entry.prev, entry.body, entry.seq)
    assert _verify(store_url).report.ok  # type: ignore[attr-defined]


def test_many_threads_append_through_one_log(store_url: str, make_record: MakeRecord) -> None:
    with DecisionLog.open(store_url) as log, concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: log.append(make_record(i)), range(400)))
    assert len(set(ids)) == 400
    report = _verify(store_url).report  # type: ignore[attr-defined]
    assert report.ok and report.records == 400


def test_two_writers_on_one_database_keep_one_chain(store_url: str, make_record: MakeRecord) -> None:
    """Two logs (as two replicas would) append at once; the chain stays whole."""
    with (
        DecisionLog.open(store_url) as a,
        DecisionLog.open(store_url) as b,
        concurrent.futures.ThreadPoolExecutor(8) as pool,
    ):
        futures = [pool.submit((a if i % 2 else b).append, make_record(i)) for i in range(300)]
        ids = [f.result() for f in futures]
    report = _verify(store_url).report  # type: ignore[attr-defined]
    assert report.ok and report.records == 300 and len(set(ids)) == 300


def test_a_new_sqlite_file_waits_for_another_writer_switching_it_to_wal(tmp_path: Path) -> None:
    """Opening a new file while another connection holds its write lock waits, then opens.

    Switching to WAL asks for the write lock from inside a read transaction;
    SQLite refuses that at once ("database is locked", no busy handler), which
    made two writers opening one new file together fail now and then.
    """
    path = tmp_path / "decisions.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the other writer, in the middle of creating the file
    release = threading.Timer(0.5, holder.execute, ("ROLLBACK",))
    release.start()
    try:
        store = open_store(f"sqlite:///{path}")
        try:
            assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # type: ignore[attr-defined]
            assert store.head() == (0, "0" * 64)
        finally:
            store.close()
    finally:
        release.join()
        holder.close()


def test_verify_rows_carry_each_records_index(store_url: str, make_record: MakeRecord) -> None:
    _fill(store_url, make_record, 12)
    store = open_store(store_url)
    try:
        with store.snapshot():
            rows = list(store.verify_rows())
            entries = list(store.entries())
    finally:
        store.close()
    assert [r[:8] for r in rows] == [
        (e.seq, e.id, e.time, e.gate, e.verdict, e.body, e.prev, e.hash) for e in entries
    ]
    for row, entry in zip(rows, entries, strict=True):
        assert row[8] == "\x1e".join(f"{k}\x1f{v}" for k, v in index_terms(entry.record()))


@pytest.mark.parametrize("change", ["kind = CAST(kind AS BLOB)", "value = CAST(value AS BLOB)"])
def test_sqlite_index_rows_of_another_type_never_read_as_the_records_items(
    sqlite_url: str, make_record: MakeRecord, change: str
) -> None:
    """`||` and `group_concat` read a BLOB back as the same text; the filters' `kind = ?` never match it."""
    _fill(sqlite_url, make_record, 6)
    with closing(sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))) as conn, conn:
        conn.execute(f"UPDATE terms SET {change} WHERE seq = 4 AND kind = 'namespace'")
    store = open_store(sqlite_url)
    try:
        with store.snapshot():
            rows = {r[0]: r for r in store.verify_rows()}
            grouped = {seq: items for seq, items in store.index_rows() if seq == 4}
    finally:
        store.close()
    items = rows[4][8].split("\x1e")
    expected = [f"{k}\x1f{v}" for k, v in index_terms(json.loads(rows[4][5]))]
    assert "namespace\x1fteam-4" in expected and "namespace\x1fteam-4" not in items
    from trustgate.decisions.chain import RETYPED

    assert any(i.startswith(RETYPED) for i in items) and any(i.startswith(RETYPED) for i in grouped[4])
    assert all(RETYPED not in (r[8] or "") for seq, r in rows.items() if seq != 4)


def _ids(url: str, **filters: object) -> set[int]:
    store = open_store(url)
    try:
        return {e.record()["n"] for e in store.query(Filters(**filters))}  # type: ignore[arg-type]
    finally:
        store.close()


def test_actors_match_without_ascii_case(store_url: str, make_record: MakeRecord) -> None:
    """git keeps an e-mail as its author typed it: `alice@example.com` finds `Alice@Example.COM`."""
    emails = ["Alice@Example.COM", "alice@example.com", "ALICE@example.com", "bob@example.com"]
    emails += ["alice@example.org", "Ålice@example.com", "Zed@example.com"]
    with DecisionLog.open(store_url) as log:
        for n, email in enumerate(emails, start=1):
            log.append(make_record(n, actor={"git": {"author": {"name": "A", "email": email}}}))
    alice = {1, 2, 3}
    assert _ids(store_url, actors=("alice@example.com",)) == alice
    assert _ids(store_url, actors=("ALICE@EXAMPLE.COM",)) == alice
    assert _ids(store_url, actors=("alice@*",)) == {*alice, 5}
    assert _ids(store_url, actors=("Alice@Example.*",)) == {*alice, 5}
    assert _ids(store_url, actors=("zed@example.com", "BOB@example.com")) == {4, 7}
    assert _ids(store_url, actors=("Ålice@example.com",)) == {6}
    assert _ids(store_url, actors=("ålice@example.com",)) == set()  # ASCII letters only, as SQL's lower()
    assert _ids(store_url, actors=("*",)) == set(range(1, 8))
    # The UI's page lookups: inside a window of positions, and probed for a leading filter's positions.
    assert _ids(store_url, actors=("alice@example.com",), above=1, below=7) == {2, 3}
    assert _ids(store_url, actors=("alice@EXAMPLE.com",), namespaces=("team-*",), lead=0) == alice
    assert _ids(store_url, actors=("ALICE@*",), namespaces=("team-*",), lead=0) == {*alice, 5}


def test_every_filter(store_url: str, make_record: MakeRecord) -> None:
    _fill(store_url, make_record, 60)
    everything = set(range(1, 61))
    assert _ids(store_url, namespaces=("team-3",)) == {n for n in everything if n % 7 == 3}
    assert _ids(store_url, namespaces=("team-*",)) == everything
    assert _ids(store_url, images=(digest_of(5),)) == {5}
    assert _ids(store_url, images=(digest_of(5)[:20],)) == {5}  # abbreviated digest
    assert _ids(store_url, images=("registry.example.com/app-4:1.15",)) == {15}
    assert _ids(store_url, images=("registry.example.com/app-4:*",)) == {n for n in everything if n % 11 == 4}
    assert _ids(store_url, commits=(commit_of(33)[:7],)) == {33}  # abbreviated
    assert _ids(store_url, commits=(commit_of(33).upper(),)) == {33}  # case does not matter
    assert _ids(store_url, rules=("pss-baseline-privileged",)) == {n for n in everything if n % 4 == 0}
    assert _ids(store_url, rules=("pss-*",)) == {n for n in everything if n % 4 == 0}
    assert _ids(store_url, actors=("dev2@example.com",)) == {n for n in everything if n % 5 == 2}
    assert _ids(store_url, verdicts=("deny",)) == {n for n in everything if n % 4 == 0}
    assert _ids(store_url, gates=("admission",)) == {n for n in everything if n % 3 == 0}
    both = _ids(store_url, verdicts=("deny",), gates=("admission",), namespaces=("team-0", "team-1"))
    assert both == {n for n in everything if n % 12 == 0 and n % 7 in (0, 1)}
    assert _ids(store_url, since="2000-01-01T00:00:00.000000Z", until=parse_time("2999-01-01")) == everything
    assert _ids(store_url, until="2000-01-01T00:00:00.000000Z") == set()
    assert _ids(store_url, images=(DIGEST,)) == set()


def test_stats_count_by_verdict_gate_rule_namespace_and_day(store_url: str, make_record: MakeRecord) -> None:
    _fill(store_url, make_record, 60)
    store = open_store(store_url)
    stats = store.stats(Filters())
    assert store.count(Filters(verdicts=("deny",))) == 15
    store.close()
    assert dict(stats["verdict"]) == {"allow": 45, "deny": 15}
    assert dict(stats["gate"]) == {"admission": 20, "ci": 40}
    assert dict(stats["rule"]) == {"pss-baseline-privileged": 15}
    assert sum(dict(stats["namespace"]).values()) == 60
    assert sum(count for _, count in stats["day"]) == 60


def test_prune_keeps_the_rest_verifiable(store_url: str, make_record: MakeRecord, tmp_path: Path) -> None:
    old = [make_record(i, time=f"2020-01-0{1 + i % 3}T00:00:00.000000Z") for i in range(1, 11)]
    with DecisionLog.open(store_url) as log:
        for r in old:
            log.append(r)
        for i in range(11, 21):
            log.append(make_record(i))
    signer = CheckpointSigner.from_file(_key(tmp_path))
    store = open_store(store_url)
    result = store.prune(
        parse_time("2021-01-01"), lambda s, h: signer.sign(seq=s, hash=h, time="t", kind="prune")
    )
    assert result.removed == 10 and result.anchor is not None and result.anchor.seq == 10
    assert store.prune(parse_time("2021-01-01"), None).removed == 0  # nothing older any more
    store.close()
    report = _verify(store_url).report  # type: ignore[attr-defined]
    assert report.ok and report.records == 10 and report.first_seq == 11
    with DecisionLog.open(store_url) as log:  # appends continue from the pruned chain
        log.append(make_record(21))
    assert _verify(store_url).report.ok  # type: ignore[attr-defined]


def _key(tmp_path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = tmp_path / "key.pem"
    if not path.exists():
        path.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return path


def test_sqlite_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "decisions.db"
    path.write_bytes(b"this is not a database" * 300)
    with pytest.raises(DecisionLogError) as e:
        open_store(f"sqlite:///{path}")
    assert "corrupt" in e.value.message and "restore" in e.value.hint


def test_sqlite_locked_database_is_a_clear_error(tmp_path: Path, make_record: MakeRecord) -> None:
    path = tmp_path / "decisions.db"
    open_store(f"sqlite:///{path}").close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a long write
    try:
        with DecisionLog.open(f"sqlite:///{path}?timeout=0.2") as log, pytest.raises(DecisionLogError) as e:
            log.append(make_record(1))
        assert "locked" in e.value.message
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_sqlite_full_disk_is_a_clear_error_and_nothing_half_written(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    store = open_store(url)
    store.append([prepare(make_record(1))])
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[attr-defined]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # type: ignore[attr-defined]  # the disk is "full"
    with pytest.raises(DecisionLogError) as e:
        store.append([prepare(make_record(i, padding="x" * 20000)) for i in range(2, 40)])
    assert "full" in e.value.message
    store.close()
    report = _verify(url).report  # type: ignore[attr-defined]
    assert report.ok and report.records == 1


def test_sqlite_missing_directory_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DecisionLogError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/nope/decisions.db")
    with pytest.raises(DecisionLogError, match="no decision log"):
        open_store(f"sqlite:///{tmp_path}/decisions.db", create=False)


def test_a_sqlite_url_with_four_slashes_names_the_file_as_written(tmp_path: Path) -> None:
    """`sqlite:////abs/path` (as deploy/presync spells it) is `/abs/path`, and messages say so, not
    `sqlite://///abs/path`."""
    four = f"sqlite:////{str(tmp_path).lstrip('/')}/decisions.db"
    store = open_store(four)
    try:
        assert store.url == four  # was sqlite://///...: the path kept its two leading slashes
    finally:
        store.close()
    assert (tmp_path / "decisions.db").is_file()


def test_a_sqlite_file_of_another_application_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(DecisionLogError, match="not a trustgate decision log"):
        open_store(f"sqlite:///{path}")


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://host/x.db", "sqlite:", "sqlite:x.db?cache=1"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(DecisionLogError):
        open_store(url)


def test_unreachable_postgresql_is_a_clear_error_and_the_log_recovers(
    postgres_server: object, make_record: MakeRecord
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    with DecisionLog.open(f"postgresql://trustgate@127.0.0.1:{port}/postgres") as log:
        with pytest.raises(DecisionLogError) as e:
            log.append(make_record(1))
        assert "cannot connect" in e.value.message and f"127.0.0.1:{port}" in e.value.where
        assert "PGPASSWORD" in e.value.hint


def test_newer_schema_versions_are_refused(sqlite_url: str) -> None:
    open_store(sqlite_url).close()
    path = sqlite_url.removeprefix("sqlite://")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'now')")
    with pytest.raises(DecisionLogError, match="schema version 99"):
        open_store(sqlite_url)


def test_alternating_writers_and_large_batches_keep_the_tree_right(
    store_url: str, make_record: MakeRecord
) -> None:
    """A store reuses the tree's right edge of its own last append only while no other writer appended.

    Batches beyond one multi-row INSERT (SQLite) and beyond the COPY threshold
    (PostgreSQL) go in whole.
    """
    from trustgate.decisions import merkle

    a, b = open_store(store_url), open_store(store_url)
    bodies: list[bytes] = []
    try:
        for n, (store, size) in enumerate([(a, 3), (a, 1), (b, 2), (a, 1_200), (b, 1), (b, 70), (a, 5)]):
            batch = [prepare(make_record(1_000 * n + i)) for i in range(size)]
            store.append(batch)
            bodies.extend(item.body for item in batch)
        expected = merkle.root(len(bodies), merkle.memory_nodes([merkle.leaf_hash(x) for x in bodies]))
        assert a.root(len(bodies)) == b.root(len(bodies)) == expected
        with a.snapshot():
            report = Verifier(checkpoints=a.checkpoints(), tree=a.stored_tree()).run(
                a.entries(), a.index_rows()
            )
        assert report.ok and report.records == len(bodies) == 1_282
        assert [e.body for e in a.entries()] == bodies
        assert a.count(Filters(commits=(commit_of(3_005),))) == 1  # the index of the big batch is whole
    finally:
        a.close()
        b.close()


def test_prove_reads_the_covering_checkpoint_and_one_query_of_nodes(
    store_url: str, make_record: MakeRecord
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from trustgate.decisions import merkle

    signer = CheckpointSigner(private_key=Ed25519PrivateKey.generate())
    store = open_store(store_url)
    try:
        for n in range(1, 21):
            store.append([prepare(make_record(n))])
            if n in (5, 12):
                seq, digest = store.head()
                store.add_checkpoint(
                    signer.sign(seq=seq, hash=digest, time=f"t{n}", kind="manual", root=store.root(seq))
                )
        seq, digest = store.head()
        store.add_checkpoint(
            signer.sign(seq=seq, hash=digest, time="unsigned tree", kind="manual")
        )  # no note
        for seq in (1, 5, 6, 12):  # the largest tree first, then the smaller ones
            assert [c.seq for c in store.tree_checkpoints(seq)] == [s for s in (12, 5) if s >= seq]
        assert list(store.tree_checkpoints(13)) == []  # only a checkpoint without a tree head covers it

        leaf, hashes = store.leaf_and_inclusion_proof(3, 12)
        assert hashes == store.inclusion_proof(3, 12) and leaf == store.leaf(3)
        entry = store.get("#4")
        assert entry is not None and leaf == merkle.leaf_hash(entry.body)
        merkle.verify_inclusion(3, 12, leaf, hashes, store.root(12))

        proof, old_root, new_root = store.consistency_proof_and_roots(5, 20)
        assert proof == store.consistency_proof(5, 20) and (old_root, new_root) == (
            store.root(5),
            store.root(20),
        )
        merkle.verify_consistency(5, 20, old_root, new_root, proof)
    finally:
        store.close()


@pytest.mark.parametrize("namespace", ["équipe-😀", "with\x00nul"])
def test_a_batch_keeps_every_byte(sqlite_url: str, make_record: MakeRecord, namespace: str) -> None:
    """The stored bytes, the tree and the index of a batch are exactly the records', escapes,
    non-ASCII and a NUL in an indexed value included."""
    from trustgate.decisions import merkle

    store = open_store(sqlite_url)
    odd = 'quote " backslash \\ newline \n escaped \x00 \u2028 é 😀'
    records = []
    for n in range(1, 40):
        record = make_record(n, notes=[odd], big=-(2**53) + 1)
        record["subject"]["objects"][0]["namespace"] = namespace
        records.append(record)
    batch = [prepare(r) for r in records]
    try:
        store.append(batch)
        entries = list(store.entries())
        assert [e.body for e in entries] == [item.body for item in batch]
        expected = merkle.root(39, merkle.memory_nodes([merkle.leaf_hash(i.body) for i in batch]))
        assert store.root(39) == expected
        assert store.count(Filters(namespaces=(namespace,))) == 39
        with store.snapshot():
            verifier = Verifier(checkpoints=store.checkpoints(), tree=store.stored_tree())
            report = verifier.run(store.entries(), store.index_rows())
        assert report.ok and report.records == 39
    finally:
        store.close()
