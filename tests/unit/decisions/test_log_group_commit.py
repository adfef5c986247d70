"""`DecisionLog` for a server: deferred appends, counted failures, probing, the latest checkpoint."""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from decision_records import MakeRecord

from trustgate.decisions.chain import CheckpointSigner, Entry
from trustgate.decisions.log import DecisionLog, _Pending, _Waiter, prepare
from trustgate.decisions.note import open_checkpoint
from trustgate.decisions.sqlite import SqliteStore
from trustgate.errors import DecisionLogError


def _key(tmp_path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = tmp_path / "key.pem"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def test_deferred_appends_return_ids_at_once_and_commit_together(
    store_url: str, make_record: MakeRecord
) -> None:
    with DecisionLog.open(store_url) as log:
        log.append(make_record(0))  # opened, with its tables
        records = [make_record(i) for i in range(1, 41)]
        with log.deferred() as futures:
            ids = [log.append(r) for r in records]
        assert ids == [r["id"] for r in records]  # the record's own id, before the commit
        assert [f.result(timeout=30) for f in futures] == ids
        assert log.appended == 41 and log.commits <= 20  # queued together, committed together
        assert log.write_failures == 0 and log.write_error is None


def test_outside_deferred_append_still_waits_for_the_commit(sqlite_url: str, make_record: MakeRecord) -> None:
    with DecisionLog.open(sqlite_url) as log:
        with log.deferred():
            pass
        record_id = log.append(make_record(1))
        assert log.appended == 1 and record_id


def test_failed_commits_are_counted_kept_and_cleared_by_a_probe(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    directory = tmp_path / "later"
    with DecisionLog.open(f"sqlite:///{directory / 'decisions.db'}") as log:
        with log.deferred() as futures:
            log.append(make_record(1))
            log.append(make_record(2))
        for future in futures:
            with pytest.raises(DecisionLogError, match="does not exist"):
                future.result(timeout=30)
        assert log.write_failures == 2
        assert log.write_error is not None and "does not exist" in log.write_error.message
        assert log.probe(timeout=30) is not None  # still not writable
        directory.mkdir()
        assert log.probe(timeout=30) is None
        assert log.write_error is None
        log.append(make_record(3))


def test_latest_note_is_the_newest_signed_checkpoint(tmp_path: Path, make_record: MakeRecord) -> None:
    key = _key(tmp_path)
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    log = DecisionLog.open(url, key=key)
    try:
        assert log.latest_note() is None  # no records, no checkpoint
        log.append(make_record(1))  # the first commit signs one
        for i in range(2, 5):
            log.append(make_record(i))
        log.checkpoint()
        note = log.latest_note()
        assert note is not None
        head = open_checkpoint(note, CheckpointSigner.from_file(key).note_verifier())
        assert head.size == 4
    finally:
        log.close()


def test_sqlite_writers_queue_on_the_file_lock(tmp_path: Path, make_record: MakeRecord) -> None:
    """A writer waits on `<file>-lock` and gets its turn within milliseconds of its release."""
    path = tmp_path / "decisions.db"
    SqliteStore(path=path).close()
    lock = open(f"{path}-lock", "a")  # noqa: SIM115  # held across the thread below
    fcntl.flock(lock, fcntl.LOCK_EX)  # another process's writer in the middle of its commit
    done: list[float] = []
    with DecisionLog.open(f"sqlite:///{path}") as log:
        thread = threading.Thread(target=lambda: (log.append(make_record(1)), done.append(time.monotonic())))
        thread.start()
        time.sleep(0.3)
        assert not done  # waiting for the lock
        released = time.monotonic()
        fcntl.flock(lock, fcntl.LOCK_UN)
        thread.join(timeout=10)
        assert done and done[0] - released < 0.25
    lock.close()


def test_a_blocking_append_times_out_fails_or_refuses_with_a_decision_log_error(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    """`append` without `deferred()` waits for the commit: each way it can fail is a DecisionLogError."""
    path = tmp_path / "decisions.db"
    with DecisionLog.open(f"sqlite:///{path}?timeout=1") as log:
        record = make_record(0)
        assert log.append(record) == record["id"]
        with pytest.raises(DecisionLogError, match="cannot be encoded"):  # refused before it is queued
            log.append(make_record(1, bad=float("nan")))
        assert log.write_failures == 1
        holder = SqliteStore(path=path, create=False, busy_timeout=1)
        with holder._write():  # another process's transaction holds the chain lock
            late = make_record(2)
            with pytest.raises(DecisionLogError, match=r"did not commit within 0\.2 s") as raised:
                log.append(late, timeout=0.2)
            assert f"may still be committed: `trustgate log show {late['id']}`" in raised.value.hint
            with pytest.raises(DecisionLogError, match="locked"):  # the busy timeout (1 s) passes
                log.append(make_record(3))
        holder.close()
        assert log.write_failures >= 2  # the timed-out record failed too, when its commit did
        assert isinstance(log.append(make_record(4)), str)  # the lock is free again


class _RecordingStore:
    """A store double: appends in memory, notes each step, and can hold the first commit open."""

    url = "memory:"

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[str, ...]]] = []
        self.first_commit_may_finish = threading.Event()
        self.in_first_commit = threading.Event()
        self._seq = 0

    def append(
        self,
        batch: list[Any],
        *,
        before_commit: Callable[[], None] | None = None,
        admit: Callable[[], list[bool]] | None = None,
    ) -> list[Entry]:
        if admit is not None:  # what the real store does once it holds the chain lock
            batch = [item for item, ok in zip(batch, admit(), strict=True) if ok]
        ids = tuple(item.id for item in batch)
        self.events.append(("statements", ids))
        if before_commit is not None:
            before_commit()
        if not self.in_first_commit.is_set():
            self.in_first_commit.set()
            assert self.first_commit_may_finish.wait(timeout=30)
        entries = []
        for item in batch:
            self._seq += 1
            entries.append(Entry(self._seq, item.id, item.time, item.gate, item.verdict, item.body, "", ""))
        self.events.append(("committed", ids))
        return entries

    def close(self) -> None:
        pass


def test_a_batch_is_acknowledged_after_its_commit_and_before_the_next_one_commits(
    make_record: MakeRecord,
) -> None:
    """The writer sends a commit's acknowledgements while the next batch's statements wait on the
    disk, never before its own commit, and at once when nothing else is queued."""
    store = _RecordingStore()
    log = DecisionLog(store=store)  # type: ignore[arg-type]  # the double has what the writer calls
    acked: list[str] = []

    def note(future: Any) -> None:
        store.events.append(("acknowledged", (future.result(),)))
        acked.append(future.result())

    first = log.submit(make_record(0))
    first.add_done_callback(note)
    assert store.in_first_commit.wait(timeout=30)
    queued = [log.submit(make_record(n)) for n in range(1, 6)]  # wait while the first commit runs
    for future in queued:
        future.add_done_callback(note)
    assert not first.done()
    store.first_commit_may_finish.set()
    ids = [f.result(timeout=30) for f in [first, *queued]]
    log.close()
    assert acked == ids
    steps = [kind for kind, _ in store.events]
    first_batch = ["statements", "committed"]
    assert steps == [*first_batch, "statements", "acknowledged", "committed", *["acknowledged"] * 5]
    assert store.events[0][1] == (ids[0],) and store.events[2][1] == tuple(ids[1:])


def test_many_threads_appending_each_return_only_once_their_record_is_stored(
    sqlite_url: str, make_record: MakeRecord
) -> None:
    reader_path = sqlite_url.removeprefix("sqlite:///")
    failures: list[str] = []
    with DecisionLog.open(sqlite_url) as log:
        log.append(make_record(-1))

        def work(k: int) -> None:
            reader = SqliteStore(path=Path(reader_path), create=False)
            try:
                for n in range(k * 10, k * 10 + 10):
                    record_id = log.append(make_record(n))
                    if reader.get(record_id) is None:  # another connection sees it committed
                        failures.append(record_id)
            finally:
                reader.close()

        threads = [threading.Thread(target=work, args=(k,)) for k in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert log.appended == 321 and log.commits < 321  # grouped
    assert failures == []


def test_a_writer_process_sends_each_commits_acknowledgements_before_the_next_transaction(
    make_record: MakeRecord,
) -> None:
    """With `after_batch` (the writer process), acknowledgements go to other processes: they are sent
    as soon as their commit is done, never from inside the next transaction (its write lock held)."""
    store = _RecordingStore()
    log = DecisionLog(store=store)  # type: ignore[arg-type]  # the double has what the writer calls
    log.after_batch = lambda: store.events.append(("after_batch", ()))
    first = log.submit(make_record(0))
    assert store.in_first_commit.wait(timeout=30)
    queued = [log.submit(make_record(n)) for n in range(1, 4)]
    store.first_commit_may_finish.set()
    for future in [first, *queued]:
        future.result(timeout=30)
    log.close()
    steps = [kind for kind, _ in store.events]
    one_commit = ["statements", "committed", "after_batch"]
    assert steps[:6] == [*one_commit, *one_commit]
    assert set(steps[6:]) <= {"after_batch"}  # closing flushes once more, with nothing to send


def test_a_committed_record_is_acknowledged_while_the_next_commit_waits_for_the_lock(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    """Acknowledgements held for the next commit go out anyway when it waits (another writer holds
    the database): a durable record is never reported late, or failed, because of the next one."""
    path = tmp_path / "decisions.db"
    holder = SqliteStore(path=path, create=True)
    with DecisionLog.open(f"sqlite:///{path}") as log:
        log.append(make_record(0))
        store = log.store
        real_append = store.append
        held = threading.Event()
        release = threading.Event()
        queued: list[Any] = []

        def append_then_lock(batch: list[Any], **kwargs: Any) -> list[Entry]:
            entries = real_append(batch, **kwargs)
            if not held.is_set():  # after the first commit: another writer takes the lock, one more queues
                threading.Thread(target=_hold_write_lock, args=(holder, held, release), daemon=True).start()
                assert held.wait(timeout=30)
                queued.append(log.submit(make_record(2)))
            return entries

        store.append = append_then_lock  # type: ignore[method-assign]
        try:
            assert log.append(make_record(1), timeout=30)  # answered while the lock is still held
            assert not release.is_set() and not queued[0].done()
        finally:
            release.set()
        assert queued[0].result(timeout=30)
    holder.close()


def _hold_write_lock(store: SqliteStore, held: threading.Event, release: threading.Event) -> None:
    with store._write():
        held.set()
        release.wait(timeout=30)


def test_a_record_queued_while_the_log_closes_fails_instead_of_waiting_forever(
    sqlite_url: str, make_record: MakeRecord
) -> None:
    log = DecisionLog.open(sqlite_url)
    log.append(make_record(0))
    late = _Waiter()
    thread = log._thread
    assert thread is not None
    real_join = thread.join

    def join_then_a_late_record(timeout: float | None = None) -> None:
        real_join(timeout)
        # a caller that found the log open just before `close` marked it closed
        log._queue.put(_Pending(prepare(make_record(1)), late, time.monotonic()))

    thread.join = join_then_a_late_record  # type: ignore[method-assign]
    log.close()
    with pytest.raises(DecisionLogError, match="closed before this record was committed"):
        late.result(timeout=30)
    assert log.write_failures == 1
