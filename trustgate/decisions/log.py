"""The writer every gate shares: append a record, get its id once it is durable.

Owns: opening a store by URL (`open_store`), `DecisionLog` (group commit: a
background thread takes whatever records are waiting, appends them in one
transaction with one fsync, and only then releases each caller with its id),
periodic and on-demand signed checkpoints, and the settings that come with
them. Before signing, the writer checks that the tree is consistent with every
checkpoint it can trust (the last one it signed, the ones published outside the
database, the newest stored one its key signed) and refuses otherwise
(`CheckpointRefusedError`); after signing, it publishes the checkpoint
(`publish.py`). Refusals and publish failures never fail a decision: they are
counted and kept in `problems` for the gate's entry point to report. Leaves
out: what goes into a record (`record.py`) and how a gate reacts to a failure
(its failure policy, applied by the gate).

Thread-safe: any number of threads may call `append` at once (the webhook's
request threads, the pre-sync workers). The background thread starts on the
first append, so a gate that forks workers before deciding forks no thread.

A thread inside `deferred()` gets its record's id from `append` at once and
the futures of its records in the list `deferred()` yields: the webhook's
evaluator threads go on to the next request while the records commit, and
the request threads wait for durability before answering, so one commit
carries the records of every request in flight, not of one evaluator each.
Records that could not be committed are counted (`write_failures`), and the
last failure is kept (`write_error`) until a commit or `probe()` succeeds,
for the entry point to report and to turn unready on.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trustgate.config import DEFAULT_CLOCK_SKEW_SECONDS
from trustgate.decisions import merkle
from trustgate.decisions.canonical import CanonicalError, canonical, timestamp, timestamp_micros
from trustgate.decisions.chain import (
    GENESIS,
    Checkpoint,
    CheckpointSigner,
    TimeFloor,
    entry_hash,
    shown_id,
    signature_problem,
    time_problem,
)
from trustgate.decisions.keys import read_signer
from trustgate.decisions.note import NoteError, TreeHead, open_checkpoint
from trustgate.decisions.publish import Publisher, PublishError
from trustgate.decisions.record import index_terms
from trustgate.decisions.store import Prepared, SqlStore
from trustgate.errors import CheckpointRolledBackError, DecisionLogError

Store = SqlStore


class CheckpointRefusedError(DecisionLogError):
    """The writer will not sign: the log is not consistent with a checkpoint it trusts (a forged head)."""


def _check_url(url: str) -> None:
    if not url.startswith(("sqlite:", "postgresql://", "postgres://")):
        raise DecisionLogError(
            f"unknown decision log URL {url!r}",
            hint="use sqlite:///path/to/decisions.db or postgresql://user@host:5432/dbname",
        )


def open_store(url: str, *, create: bool = True, read_only: bool = False) -> Store:
    """The store a URL names.

    `sqlite:///abs/path.db` (or `sqlite:relative.db`) and
    `postgresql://user@host:port/db` (`postgres://` too).

    Args:
        create: create a log that is not there (a SQLite file, or the tables in a PostgreSQL
            database); with False it is refused: readers, and writers that must not start a new
            log nobody reads (`summaries revoke`, the `log` commands), pass False.
        read_only: write nothing, not even a migration: a log of another schema version is
            refused. For readers of the log under audit (the UI, `log query`, `log show`).

    Raises:
        DecisionLogError: unknown scheme, or the store cannot be opened.
    """
    if url.startswith("sqlite:"):
        from trustgate.decisions.sqlite import BUSY_TIMEOUT_SECONDS, SqliteStore

        rest, _, query = url[len("sqlite:") :].partition("?")
        options = dict(part.partition("=")[::2] for part in query.split("&") if part)
        unknown = set(options) - {"timeout"}
        if unknown:
            raise DecisionLogError(
                f"unknown option {', '.join(sorted(unknown))} in {url!r}",
                hint="sqlite URLs take ?timeout=SECONDS",
            )
        try:
            timeout = float(options.get("timeout", BUSY_TIMEOUT_SECONDS))
        except ValueError as e:
            raise DecisionLogError(f"timeout is not a number in {url!r}") from e
        if rest.startswith("//"):
            rest = rest[2:]
            if not rest.startswith("/"):
                raise DecisionLogError(
                    f"a sqlite URL has no host part: {url!r}",
                    hint="sqlite:///abs/path.db (three slashes) or sqlite:relative/path.db",
                )
        if rest.startswith("//"):  # sqlite:////abs/path: the same file as /abs/path on POSIX
            rest = "/" + rest.lstrip("/")
        if not rest or rest.endswith("/"):
            raise DecisionLogError(f"no file in {url!r}", hint="sqlite:///var/lib/trustgate/decisions.db")
        return SqliteStore(path=Path(rest), create=create, busy_timeout=timeout, read_only=read_only)
    if url.startswith(("postgresql://", "postgres://")):
        from trustgate.decisions.postgres import PostgresStore

        return PostgresStore(url=url, read_only=read_only, create=create)
    raise DecisionLogError(
        f"unknown decision log URL {url!r}",
        hint="use sqlite:///path/to/decisions.db or postgresql://user@host:5432/dbname",
    )


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When the writer signs a checkpoint on its own (also on demand: `DecisionLog.checkpoint`)."""

    every_records: int = 10_000  # records; bounds what an undetected tail truncation could hide
    # seconds: records are covered by a signed (and published) checkpoint at most this long after
    # their commit while the writer runs (checked after each commit and by a timer)
    every_seconds: float = 60.0
    publish: tuple[Publisher, ...] = ()  # where each new checkpoint also goes (outside the database)
    # seconds a record may be dated before the bound of the checkpoint signed before it, after the one
    # that first covers it, or away from its UUIDv7 id's time: beyond, the writer refuses to sign over
    # it (`chain.time_problem`)
    clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS

    @property
    def max_queue_wait(self) -> float | None:
        """Seconds a record may wait in the writer's queue (or for the database) before it is
        committed, None for no bound: half the clock skew, so that writers' clocks may differ by the
        other half and no honest record is misdated (ADR 9, item 12: D + W <= skew). With a skew of
        0 nothing is allowed for either, and no wait is bounded."""
        return self.clock_skew / 2 if self.clock_skew > 0 else None


@dataclass(frozen=True, slots=True)
class _Trusted:
    """A checkpoint a new one must extend (`DecisionLog._trusted`)."""

    where: str  # "the checkpoint published in DIR", for messages
    head: TreeHead
    chain: str | None  # the chain head signed with it (None: a published note, or not under this key)
    floor: TimeFloor | None  # the time signed with that chain head (None: none, or a prune checkpoint)
    stored: bool = False  # the newest stored checkpoint this key signed


class _Overtaken(Exception):
    """A trusted checkpoint covers more records than the head being signed, and the log holds them:
    another writer appended and signed after this one read the head (nothing was removed)."""


@dataclass(frozen=True, slots=True)
class _Misdated:
    """A record whose time cannot be true (`chain.time_problem`), found where the writer checks records:
    refused with a hint about clocks, unlike a rewritten record."""

    message: str


class Acknowledgement(Protocol):
    """Told, in the writer thread, how a queued record ended (`DecisionLog.queue_prepared`)."""

    def set_result(self, result: str, /) -> None:
        """Committed: `result` is the record's id."""

    def set_exception(self, error: BaseException, /) -> None:
        """Not committed (a DecisionLogError)."""


@dataclass(slots=True)
class _Pending:
    item: Prepared
    future: concurrent.futures.Future[str] | _Waiter | Acknowledgement
    queued: float  # `time.monotonic()` when it was queued: its wait is bounded (`max_queue_wait`)


class _Waiter:
    """What a blocking `append` waits on: one pre-taken lock the writer releases.

    Lighter than a `Future` (no condition variable, no callbacks): with dozens
    of request threads appending at once, each record's hand-off is one lock
    release and one wake-up.
    """

    __slots__ = ("_done", "_error", "_result")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self._result = ""
        self._error: BaseException | None = None

    def set_result(self, result: str) -> None:
        self._result = result
        self._done.release()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._done.release()

    def result(self, timeout: float | None = None) -> str:
        if not self._done.acquire(timeout=-1 if timeout is None else timeout):
            raise concurrent.futures.TimeoutError
        self._done.release()  # a second call answers at once
        if self._error is not None:
            raise self._error
        return self._result


class _Acks:
    """A commit's acknowledgements: each record's id to its waiter, the flush markers, `after_batch`."""

    __slots__ = ("_lock", "_sent", "after_batch", "markers", "results")

    def __init__(self, markers: list[_Marker], after_batch: Callable[[], None] | None) -> None:
        self.results: list[tuple[concurrent.futures.Future[str] | _Waiter | Acknowledgement, str]] = []
        self.markers = markers
        self.after_batch = after_batch
        self._sent = False
        self._lock = threading.Lock()  # the writer and the hold timer may both send: once only

    def send(self) -> None:
        with self._lock:
            if self._sent:
                return
            self._sent = True
        try:
            for waiter, record_id in self.results:
                with contextlib.suppress(concurrent.futures.InvalidStateError):  # a caller cancelled it
                    waiter.set_result(record_id)
            for marker in self.markers:
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    marker.future.set_result("")
        finally:  # a callback that raised must not keep the writer process's clients unanswered
            if self.after_batch is not None:
                self.after_batch()


_STOP = object()
# The longest a commit's acknowledgements wait for the next commit to send them (`DecisionLog._hold`).
ACK_HOLD_SECONDS = 0.005
_STORED_CHECKED = (
    64  # newest stored checkpoints a writer looks at (forged ones do not verify and are skipped)
)
_RETRY_FLOOR_SECONDS = 1.0  # seconds: the least wait before a refused or failed checkpoint is retried
_OVERTAKEN_RETRIES = 5  # times `checkpoint` reads the head again when another writer signed a newer one
_KEPT_PROBLEMS = 100  # refusals and publish failures kept for `take_problems`; the counters count all


class DecisionLog:
    """Appends records to a store with group commit.

    Args:
        store: an open store (the log owns it from now on and closes it).
        signer: signs checkpoints; None writes none (the chain alone still proves order).
        checkpoints: when to checkpoint automatically.
        max_batch: records per transaction at most.
        commit_delay: seconds the writer waits after the first record of a batch for more to join
            it (PostgreSQL's `commit_delay`): fewer, larger commits for a little latency. Only
            after a commit of more than one record (like PostgreSQL's `commit_siblings`): a lone
            record is not delayed. 0 (the default) commits at once; a writer process serving busy
            workers sets it.
        create: whether opening the store here may start a log that is not there (`open_store`);
            what `open` was given, kept for the connections this log opens to read
            (`latest_note`) and a writer process's clients.
    """

    def __init__(
        self,
        *,
        store: Store | Callable[[], Store],
        url: str = "",
        signer: CheckpointSigner | None = None,
        checkpoints: CheckpointPolicy | None = None,
        max_batch: int = 2_000,
        commit_delay: float = 0.0,
        create: bool = True,
    ) -> None:
        self.create = create
        if callable(store) and not isinstance(store, SqlStore):
            self._store: Store | None = None
            self._factory: Callable[[], Store] | None = store
        else:
            self._store, self._factory = store, None
        self.url = url or (self._store.url if self._store is not None else "")
        self.signer = signer
        self.policy = checkpoints or CheckpointPolicy()
        self.max_batch = max_batch
        self.commit_delay = commit_delay
        self._last_batch = 0  # records in the last commit: one alone means no one to wait for
        # called by the writer thread once every future of a batch is resolved (the writer process
        # sends each client the acknowledgements of a batch at once)
        self.after_batch: Callable[[], None] | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._committed: tuple[int, str] | None = None  # (seq, hash) of the last record this writer committed
        self._removed: CheckpointRefusedError | None = None  # records it committed were removed since
        self._held: queue.SimpleQueue[tuple[_Acks, float] | None] = queue.SimpleQueue()
        self._hold_timer: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._checkpoint_state_loaded = False
        self.appended = 0  # records committed by this writer
        self.commits = 0  # transactions they took: appended / commits is the group-commit batch size
        self.last_checkpoint_error: DecisionLogError | None = None
        self._last_signed: TreeHead | None = None  # this writer's own memory: no database can rewrite it
        self._last_head = GENESIS  # the chain head it signed with `_last_signed`
        self._last_floor: TimeFloor | None = None  # and the time it signed it at (with its records' newest)
        # The first record this writer committed since, whose time cannot be true (seq, why), and the
        # newest record time among them ((Unix microseconds, seq, id, time)): `_check_own`.
        self._own_misdated: tuple[int, str] | None = None
        self._own_newest: tuple[int, int, str, str] | None = None
        # and the note itself with its size, verified (what `latest_note` may serve); seeded from the
        # newest published checkpoint by the first `latest_note` (`_seed_note`)
        self._last_note: tuple[str, int] | None = None
        self._note_seeded = False
        self._verified: tuple[str, int] | None = None  # the stored note `latest_note` verified last
        self._last_attempt: float | None = None  # monotonic time of the last refused or failed checkpoint
        self._problems: list[DecisionLogError] = []
        self._problems_lock = threading.Lock()
        self.checkpoints_signed = 0
        self.checkpoints_refused = 0  # not consistent with a trusted checkpoint, or it could not be read
        self.publish_failures = 0
        self.write_failures = 0  # records that could not be committed (or encoded)
        self.write_error: DecisionLogError | None = None  # the last commit's failure; None once one succeeds
        self._deferred = threading.local()
        self._reader: Store | None = None  # for `latest_note`: the writer's connection is its thread's
        self._reader_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        url: str,
        *,
        key: str | Path | None = None,
        checkpoints: CheckpointPolicy | None = None,
        create: bool = True,
    ) -> DecisionLog:
        """A log writing to the store at `url`, signing checkpoints with `key` when given.

        The store is opened by the first append (and re-opened by the next one
        after a failure), so an unreachable store fails decisions, per the
        gate's failure policy, rather than the start-up of a long-running gate.
        `create`: start the log when it is not there (`open_store`). Gates that rely on what
        the log holds (pre-sync, summaries' revocations) pass False: a new, empty log at a
        mistyped URL would know nothing (`trustgate log init` starts one explicitly).

        Raises:
            DecisionLogError: the URL is malformed.
            ConfigError: the key is unreadable or not Ed25519.
        """
        _check_url(url)
        signer = read_signer(key) if key else None
        return cls(
            store=lambda: open_store(url, create=create),
            url=url,
            signer=signer,
            checkpoints=checkpoints,
            create=create,
        )

    @property
    def store(self) -> Store:
        """The store, opened now if it is not yet.

        Raises:
            DecisionLogError: it cannot be opened.
        """
        if self._store is None:
            assert self._factory is not None
            self._store = self._factory()
        return self._store

    # -- appending --------------------------------------------------------------

    def append(self, record: Mapping[str, Any], *, timeout: float | None = None) -> str:
        """Append one record; return its id once it is committed (durable).

        Inside `deferred()`, returns the record's id at once instead, and the
        future joins the list `deferred()` yielded (the caller waits on it).

        Raises:
            DecisionLogError: the record could not be committed (the store is
                unreachable, locked, corrupt or full) or cannot be encoded.
        """
        pending: list[concurrent.futures.Future[str]] | None = getattr(self._deferred, "futures", None)
        if pending is not None:
            item = self._prepare(record)  # not encodable: nothing is queued, the caller handles it now
            # A record that could not even be sent (the writer is unreachable) fails in its future,
            # like one that fails later: whoever waits on the futures answers for it.
            pending.append(self.submit_prepared(item))
            return item.id
        waiting = self._send(record)
        try:
            return waiting.result(timeout=timeout)
        except concurrent.futures.TimeoutError as e:
            raise DecisionLogError(
                f"the decision log did not commit within {timeout:g} s",
                where=self.url,
                hint=f"the record stays queued and may still be committed: `trustgate log show "
                f"{record.get('id', '')}` says whether it was",
            ) from e

    def _send(self, record: Mapping[str, Any]) -> concurrent.futures.Future[str] | _Waiter:
        """Queue one record for a caller that waits on it at once (`append`): `submit`, made lighter."""
        item = self._prepare(record)
        waiter = _Waiter()
        self._start()
        self._queue.put(_Pending(item, waiter, time.monotonic()))
        return waiter

    @contextlib.contextmanager
    def deferred(self) -> Iterator[list[concurrent.futures.Future[str]]]:
        """In this thread, `append` queues and returns the record's id without waiting for the commit.

        Yields:
            The futures of the records appended inside, resolved once each is
            committed (or failed with a DecisionLogError): whoever answers for
            the decision waits on them.
        """
        futures: list[concurrent.futures.Future[str]] = []
        outer = getattr(self._deferred, "futures", None)
        self._deferred.futures = futures
        try:
            yield futures
        finally:
            self._deferred.futures = outer

    def submit(self, record: Mapping[str, Any]) -> concurrent.futures.Future[str]:
        """Queue one record; the future resolves to its id after commit, or raises DecisionLogError."""
        try:
            item = self._prepare(record)
        except DecisionLogError as e:
            if self._closed:
                raise
            future: concurrent.futures.Future[str] = concurrent.futures.Future()
            future.set_exception(e)
            return future
        return self.submit_prepared(item)

    def _prepare(self, record: Mapping[str, Any]) -> Prepared:
        """`prepare`, for this open log; a record that cannot be encoded is counted as a failure.

        Raises:
            DecisionLogError: the log is closed, or the record cannot be encoded.
        """
        if self._closed:
            raise DecisionLogError("the decision log is closed", where=self.url)
        try:
            return prepare(record)
        except DecisionLogError:
            self.write_failures += 1
            raise

    def submit_prepared(self, item: Prepared) -> concurrent.futures.Future[str]:
        """Queue a record already encoded and indexed (`prepare`, in another process); as `submit`.

        Raises:
            DecisionLogError: the log is closed.
        """
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        self.queue_prepared(item, future)
        return future

    def queue_prepared(self, item: Prepared, done: Acknowledgement) -> None:
        """`submit_prepared` without a future: the writer thread calls `done` once the record is
        committed or failed (the writer process answers its clients from there, with no future and
        callback per record).

        Raises:
            DecisionLogError: the log is closed.
        """
        if self._closed:
            raise DecisionLogError("the decision log is closed", where=self.url)
        self._start()
        self._queue.put(_Pending(item, done, time.monotonic()))

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="trustgate-decision-log", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        held: _Acks | None = None  # the last commit's acknowledgements, sent just before the next commit
        while True:
            batch: list[_Pending] = []
            markers: list[_Marker] = []
            stop = False
            if held is not None and self._queue.empty():
                held.send()  # nothing to overlap them with: answer now
                held = None
            try:
                item = self._queue.get(timeout=self._idle_timeout())
            except queue.Empty:  # the interval passed with records not yet covered by a checkpoint
                self._periodic_checkpoint()
                continue
            if self.commit_delay > 0 and isinstance(item, _Pending) and self._last_batch > 1:
                if held is not None:  # whoever was acknowledged may send more to join this commit
                    held.send()
                    held = None
                time.sleep(self.commit_delay)  # records sent meanwhile join this commit
            while True:
                if item is _STOP:
                    stop = True
                elif isinstance(item, _Probe):
                    self._probe(item)
                elif isinstance(item, _Marker):
                    markers.append(item)
                else:
                    batch.append(item)
                if stop or len(batch) >= self.max_batch:
                    break
                try:  # everything that queued while the last commit ran joins this one
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            acks = _Acks(markers, self.after_batch)
            if batch:
                self._last_batch = len(batch)
                self._commit(batch, acks, before_commit=held)
            elif held is not None:
                held.send()
            held = acks
            if not (stop or self.after_batch is not None):
                self._hold(held)
            if stop or self.after_batch is not None:
                # A writer process's acknowledgements go to other processes, which do not compete
                # for this interpreter: nothing to gain by holding them, and sending them inside the
                # next transaction would hold the database's write lock over a slow client's socket.
                held.send()
                held = None
            if stop:
                return

    def _hold(self, acks: _Acks) -> None:
        """Send `acks` at the latest `ACK_HOLD_SECONDS` from now, whatever the next commit waits for.

        The next transaction may wait for the database's lock (another writer, a prune) or a
        connection: records already durable must not wait with it.
        """
        if self._hold_timer is None:
            self._hold_timer = threading.Thread(
                target=self._send_held, name="trustgate-log-acks", daemon=True
            )
            self._hold_timer.start()
        self._held.put((acks, time.monotonic() + ACK_HOLD_SECONDS))

    def _send_held(self) -> None:
        while True:
            item = self._held.get()
            if item is None:
                return
            acks, deadline = item
            wait = deadline - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            acks.send()  # a no-op when the writer sent them already

    def _commit(self, batch: Sequence[_Pending], acks: _Acks, *, before_commit: _Acks | None) -> None:
        """Commit one batch; its acknowledgements go to `acks`, sent by the caller later.

        `before_commit`, the previous commit's acknowledgements, are sent
        once this one's statements are issued, just before its commit: the
        request threads they wake then run while the commit writes and
        syncs, instead of competing with the writer for the interpreter
        while it computes and issues the statements (with 64 threads
        appending, about a fifth more records per second). Each is still
        sent only after its own commit.
        """
        limit = self.policy.max_queue_wait
        kept: Sequence[_Pending] = batch
        stale: list[_Pending] = []

        def admit() -> list[bool]:
            # Called with the chain lock held: a record committed later than `limit` after it was
            # queued may be dated before a checkpoint another writer signed meanwhile (misdated).
            nonlocal kept
            now = time.monotonic()
            fresh = [limit is None or now - p.queued <= limit for p in batch]
            kept = [p for p, ok in zip(batch, fresh, strict=True) if ok]
            stale[:] = [p for p, ok in zip(batch, fresh, strict=True) if not ok]
            return fresh

        try:
            entries = self.store.append(
                [p.item for p in batch],
                before_commit=before_commit.send if before_commit else None,
                admit=admit if limit is not None else None,
            )
        except DecisionLogError as e:  # an unopenable store is opened again for the next batch
            self._failed(batch, e)
            return
        except Exception as e:  # a bug must not leave callers waiting forever
            self._failed(batch, DecisionLogError(f"the decision log writer failed: {e!r}", where=self.url))
            return
        finally:
            if before_commit is not None:
                before_commit.send()  # once only: a no-op when the store already sent them
        if stale:
            self._failed(stale, self._stale_error(stale, limit))
        if not entries:
            acks.results = []
            return
        batch = kept
        self.write_error = None
        last = self._committed
        if last is not None and (
            entries[0].seq <= last[0] or (entries[0].seq == last[0] + 1 and entries[0].prev != last[1])
        ):
            self._removed = CheckpointRefusedError(
                f"records this writer committed are gone: it committed up to #{last[0]}, and its next "
                f"records went in after #{entries[0].seq - 1}"
                + ("" if entries[0].seq <= last[0] else " with another chain head")
                + ". Someone with write access to the database removed or rewrote them; this writer "
                "signs no checkpoint until it is restarted",
                where=self.url,
                hint="compare the log with your kept checkpoints: `trustgate log verify --checkpoint-dir DIR "
                "--verifier-key KEY` (or --checkpoint FILE)",
            )
        self._committed = (entries[-1].seq, entries[-1].hash)
        self.commits += 1
        self.appended += len(entries)
        self._since_checkpoint += len(entries)
        if self.signer is not None:
            self._date_own(batch, entries)
            self._periodic_checkpoint(entries[-1].seq, entries[-1].hash)
        acks.results = [(pending.future, entry.id) for pending, entry in zip(batch, entries, strict=True)]

    def _stale_error(self, stale: Sequence[_Pending], limit: float | None) -> DecisionLogError:
        waited = time.monotonic() - min(p.queued for p in stale)
        return DecisionLogError(
            f"{len(stale)} record(s) waited in the writer's queue (or for the database) {waited:.1f} s, "
            f"longer than {limit or 0:g} s (half the allowed clock skew of {self.policy.clock_skew:g} s), "
            "and were not written: committed this late, a record may be dated before a checkpoint "
            "another writer signed meanwhile, and every later checkpoint would be refused",
            where=self.url,
            hint="the database was unreachable or locked that long: check the connection and other "
            "writers (a long prune, a held lock); the decisions are handled per the gate's failure "
            "policy. A larger decisionLog.checkpoint.clockSkewSeconds allows a longer wait",
        )

    def _failed(self, batch: Sequence[_Pending], error: DecisionLogError) -> None:
        self.write_failures += len(batch)
        self.write_error = error
        for pending in batch:
            with contextlib.suppress(concurrent.futures.InvalidStateError):  # a caller cancelled it
                pending.future.set_exception(error)

    def probe(self, *, timeout: float | None = None) -> DecisionLogError | None:
        """Check, in the writer's turn, that the store can be written now (without writing a record).

        Takes and releases the chain lock in an empty transaction: a store
        that cannot be opened, locked or written (read-only, unreachable)
        fails. A success clears `write_error`; a failure sets it.

        Returns:
            None when writable, else why not.
        """
        if self._closed:
            return DecisionLogError("the decision log is closed", where=self.url)
        future = self.probe_future()
        try:
            future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            return DecisionLogError(f"the decision log did not answer within {timeout:g} s", where=self.url)
        except DecisionLogError as e:
            return e
        return None

    def probe_future(self) -> concurrent.futures.Future[str]:
        """`probe` without waiting: the future resolves to "" when writable, else raises DecisionLogError.

        Raises:
            DecisionLogError: the log is closed.
        """
        if self._closed:
            raise DecisionLogError("the decision log is closed", where=self.url)
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._start()
        self._queue.put(_Probe(future))
        return future

    def _probe(self, probe: _Probe) -> None:
        try:
            self.store.check_writable()
        except DecisionLogError as e:
            self.write_error = e
            probe.future.set_exception(e)
            return
        except Exception as e:  # a bug must not leave the caller waiting
            error = DecisionLogError(f"the decision log writer failed: {e!r}", where=self.url)
            self.write_error = error
            probe.future.set_exception(error)
            return
        self.write_error = None
        probe.future.set_result("")

    @property
    def last_signed_note(self) -> str | None:
        """The note of the checkpoint this writer signed last (None: none yet, or of no tree)."""
        return self._last_note[0] if self._last_note is not None else None

    def remember_note(self, note: str, size: int) -> None:
        """Keep `note` (verified, of `size` records) as the newest this log's key signed, unless the
        one kept is as new."""
        with self._reader_lock:
            if self._last_note is None or self._last_note[1] < size:
                self._last_note = (note, size)

    def _seed_note(self) -> None:
        """Remember the newest published checkpoint (verified with this log's key), once: a process
        that restarted remembers nothing it signed, and the database's rows can be deleted.

        Raises:
            DecisionLogError: a published checkpoint cannot be read or is not this log's.
        """
        if self._note_seeded or self.signer is None:
            return
        verifier = self.signer.note_verifier()
        for publisher in self.policy.publish:
            try:
                text = publisher.latest()
                if text is not None:
                    self.remember_note(text, open_checkpoint(text, verifier).size)
            except (PublishError, NoteError) as e:
                raise DecisionLogError(
                    f"the checkpoint published in {publisher.where} cannot be checked: {e.message}",
                    where=self.url,
                    hint="fix or restore the published checkpoint (a new key starts a new log: publish "
                    "it somewhere new)",
                ) from e
        self._note_seeded = True

    def latest_note(self) -> str | None:
        """The newest signed checkpoint (a C2SP signed note), or None when there is none.

        With a signer, only a note its key signed counts (a forged one does
        not verify). Read over a connection of its own, so any thread may ask.
        The note this writer signed last (`last_signed_note`; a writer
        process's, for its clients), or the newest published one (checked
        with the key; read by the first call), is served when no stored one
        that verifies is as new: stored rows can be deleted or altered, this
        memory cannot. It is a process's: without `publish`, a restarted
        process remembers nothing, and serves what the database holds.

        Raises:
            CheckpointRolledBackError: every stored checkpoint is older than the one this writer
                signed last or the newest published (newer rows were deleted); reported in
                `take_problems` too.
            DecisionLogError: the store, or a published checkpoint, cannot be read.
        """
        self._seed_note()
        known = self._last_note  # before the store: a checkpoint is stored before it is remembered
        with self._reader_lock:
            if self._reader is None:  # created like the writer would: a log with no records yet has none
                self._reader = open_store(self.url, create=self.create)
            try:
                stored = self._reader.checkpoints(newest=_STORED_CHECKED)
            except DecisionLogError:
                self._reader.close()  # opened again by the next call
                self._reader = None
                raise
        verifier = self.signer.note_verifier() if self.signer is not None else None
        noted = sorted((c for c in stored if c.note), key=lambda c: c.seq, reverse=True)
        best: tuple[int, str] | None = None
        for cp in noted:
            if verifier is None:
                best = (cp.seq, cp.note)
                break
            verified = self._verified
            if verified is not None and verified[0] == cp.note:  # checked by an earlier call
                best = (verified[1], cp.note)
                break
            try:
                head = open_checkpoint(cp.note, verifier)
            except NoteError:
                continue
            self._verified = (cp.note, head.size)
            best = (head.size, cp.note)
            break
        if known is None or verifier is None:
            return best[1] if best is not None else None
        note, size = known
        newest = noted[0].seq if noted else 0
        if newest < size:
            error = CheckpointRolledBackError(
                f"the newest stored checkpoint covers {newest} records, but this log's writer signed one "
                f"of {size} records: someone with write access to the database deleted the newer "
                "checkpoints (or restored an older copy of it); serving none",
                where=self.url,
                hint="check the log against your kept checkpoints: `trustgate log verify --checkpoint-dir "
                "DIR --verifier-key KEY`; a writer that signed the newer one stores its next checkpoint "
                "again, a restarted one (which remembers the newest published) refuses to sign until the "
                "deleted rows (table checkpoints) are restored",
            )
            self._report(error)
            raise error
        if best is None or best[0] < size:
            return note  # newer stored rows do not verify: altered or forged
        return best[1]

    def _idle_timeout(self) -> float | None:
        """How long the writer may wait for records before a checkpoint falls due (None: forever)."""
        if self.signer is None or self._since_checkpoint <= 0 or not self._checkpoint_state_loaded:
            return None
        due = self._last_checkpoint + self.policy.every_seconds
        if self._last_attempt is not None:
            due = max(due, self._last_attempt + self._retry_seconds())
        return max(0.0, due - time.monotonic())

    def _retry_seconds(self) -> float:
        """Seconds before a refused or failed checkpoint is tried again: an interval, at least a second
        (with an interval of 0 the writer thread would otherwise spin on refusals)."""
        return max(self.policy.every_seconds, _RETRY_FLOOR_SECONDS)

    def _periodic_checkpoint(self, seq: int | None = None, digest: str | None = None) -> None:
        """Sign a periodic checkpoint when one is due; a refusal or failure is kept, never raised.

        The records are committed whatever happens here; the next commit (or
        the timer, an interval later) tries again.
        """
        error: DecisionLogError | None = None
        try:
            if not self._checkpoint_due():
                return
            if seq is None or digest is None:
                seq, digest = self.store.head()
            self._sign_and_store(seq, digest, "periodic", timestamp())
        except _Overtaken:
            pass  # another writer signed a newer checkpoint meanwhile: the next round goes on from it
        except DecisionLogError as e:
            error = e
            self._last_attempt = time.monotonic()
        except Exception as e:  # a bug must not stop the writer thread
            error = DecisionLogError(f"signing a checkpoint failed: {e!r}", where=self.url)
            self._last_attempt = time.monotonic()
        if error is not None:
            self._report(error)
        self.last_checkpoint_error = error

    def _report(self, error: DecisionLogError) -> None:
        with self._problems_lock:
            self._problems.append(error)
            del self._problems[:-_KEPT_PROBLEMS]  # a writer nobody asks keeps the newest only

    def take_problems(self) -> list[DecisionLogError]:
        """Checkpoint refusals and publish failures since the last call, for the gate to report loudly."""
        with self._problems_lock:
            out, self._problems = self._problems, []
        return out

    def _checkpoint_due(self) -> bool:
        """Whether a periodic checkpoint is due.

        Raises:
            CheckpointRefusedError: the newest stored checkpoint of this key covers more records than
                the log holds (counted; retried an interval later).
        """
        if self._last_attempt is not None and time.monotonic() - self._last_attempt < self._retry_seconds():
            return False  # a refused or failed attempt is retried an interval later, not on every commit
        if not self._checkpoint_state_loaded:
            latest = self._latest_checkpoint()
            if latest is None:
                self._checkpoint_state_loaded = True
                return True  # a log that was never checkpointed gets one at once
            head_seq, _ = self.store.head()
            if latest.seq > head_seq:
                self.checkpoints_refused += 1
                raise CheckpointRefusedError(
                    f"refusing to sign a checkpoint: the stored checkpoint of {shown_id(latest.time)}, "
                    f"signed by this key, covers {latest.seq} records, the log now has {head_seq}: records "
                    "were removed. Someone with write access to the database removed them",
                    where=self.url,
                    hint="the decision is still recorded; find what changed with `trustgate log verify "
                    "--checkpoint-dir DIR --verifier-key KEY` (or --checkpoint FILE)",
                )
            self._checkpoint_state_loaded = True
            self._since_checkpoint = head_seq - latest.seq
            signed = timestamp_micros(latest.time)
            now = time.time_ns() // 1000
            # A time ahead of this clock (a signer's clock ahead) counts as now: the interval still runs.
            age = (now - min(signed, now)) / 1e6 if signed is not None else self.policy.every_seconds
            self._last_checkpoint = time.monotonic() - age
        return (
            self._since_checkpoint >= self.policy.every_records
            or time.monotonic() - self._last_checkpoint >= self.policy.every_seconds
        )

    def _latest_checkpoint(self) -> Checkpoint | None:
        """The newest stored checkpoint this writer's key signed (a forged or foreign row is none)."""
        if self.signer is None:
            return None
        key = self.signer.public_key
        signed = [
            c
            for c in self.store.checkpoints(newest=_STORED_CHECKED)
            if c.signature and signature_problem(c, key) is None
        ]
        return max(signed, key=lambda c: c.seq) if signed else None

    def _sign_and_store(self, seq: int, digest: str, kind: str, signed_at: str) -> Checkpoint:
        """Check the tree against every trusted checkpoint, sign, store, then publish.

        `signed_at` (`timestamp()`) was taken when the head (`seq`, `digest`) was read: every record
        the checkpoint covers was committed by then, whatever the checks below take.

        Raises:
            CheckpointRefusedError: not consistent with a trusted checkpoint (nothing is signed).
            DecisionLogError: the store cannot be read or written.
        """
        assert self.signer is not None
        own = self.store.own_tree(seq, digest)
        root = own[2] if own is not None else self.store.root(seq)
        being = f"the {kind} checkpoint being signed at #{seq}, at {signed_at}"
        ceiling = TimeFloor(seq, timestamp_micros(signed_at) or 0, None, being)
        try:
            newest = self._check_consistent(
                seq, root, digest, own_from=own[:2] if own is not None else None, ceiling=ceiling
            )
            if self._removed is not None:  # the checks above may say more precisely what changed
                raise self._removed
        except CheckpointRefusedError:
            self.checkpoints_refused += 1
            raise
        checkpoint = self.signer.sign(seq=seq, hash=digest, time=signed_at, kind=kind, root=root)
        self.store.add_checkpoint(checkpoint)
        self._last_signed = TreeHead(self.signer.origin, seq, root)
        self._last_head = digest
        self._last_floor = TimeFloor.of(checkpoint, newest)
        if checkpoint.note:
            self.remember_note(checkpoint.note, seq)
        if self._own_misdated is not None and self._own_misdated[0] <= seq:
            self._own_misdated = None  # read back and found right (another writer's checkpoint came first)
        self._own_newest = None
        self._last_attempt = None
        self.checkpoints_signed += 1
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        for publisher in self.policy.publish:
            try:
                publisher.publish(checkpoint.note, seq)
            except PublishError as e:  # the checkpoint is signed and stored; the next one publishes again
                self.publish_failures += 1
                self._report(e)
        return checkpoint

    def _trusted(self) -> list[_Trusted]:
        """The checkpoints a new one must extend: ones the database's writers cannot have forged.

        Each with the chain head signed with it, where there is one (not in a published checkpoint),
        and the time signed with that head (`TimeFloor`; none for a prune checkpoint).

        Raises:
            CheckpointRefusedError: a published checkpoint cannot be read or is not this log's.
        """
        assert self.signer is not None
        verifier = self.signer.note_verifier()
        out: list[_Trusted] = []
        if self._last_signed is not None:
            mine = "the checkpoint this writer signed last"
            out.append(_Trusted(mine, self._last_signed, self._last_head, self._last_floor))
        for publisher in self.policy.publish:
            try:
                text = publisher.latest()
                if text is not None:
                    head = open_checkpoint(text, verifier)
                    out.append(_Trusted(f"the checkpoint published in {publisher.where}", head, None, None))
            except (PublishError, NoteError) as e:
                raise CheckpointRefusedError(
                    f"refusing to sign a checkpoint: the one published in {publisher.where} cannot be "
                    f"checked against: {e.message}",
                    where=self.url,
                    hint="fix or restore the published checkpoint (a new key starts a new log: publish "
                    "it somewhere new); decisions are still recorded",
                ) from e
        recent = self.store.checkpoints(newest=_STORED_CHECKED)
        stored = sorted((c for c in recent if c.note), key=lambda c: c.seq, reverse=True)
        newest: _Trusted | None = None
        for cp in stored:  # the newest one this key signed; forged or foreign ones do not verify
            try:
                head = open_checkpoint(cp.note, verifier)
            except NoteError:
                continue
            # Its chain head counts only under this key's signature (and for the tree head's size).
            signed = head.size == cp.seq and signature_problem(cp, self.signer.public_key) is None
            if newest is not None:
                # The newest is a prune checkpoint, which sets no time bound: the newest signed one
                # before it does. The records it covers were pruned, so its signed time alone bounds.
                floor = TimeFloor.of(cp) if signed else None
                if floor is not None:
                    where = f"the stored checkpoint of {shown_id(cp.time)}"
                    out.append(_Trusted(where, head, None, floor.covering(floor.signed)))
                    break
                continue
            newest = _Trusted(
                f"the stored checkpoint of {shown_id(cp.time)}",
                head,
                cp.hash if signed else None,
                TimeFloor.of(cp) if signed else None,  # the chain signature signs the time
                stored=True,
            )
            out.append(newest)
            if not (signed and cp.kind == "prune"):
                break
        return out

    def _check_not_deleted(self, size: int, trusted: Sequence[_Trusted]) -> None:
        """Stored checkpoints are never deleted (a prune keeps them): one published that is newer than
        every stored one of this key means newer rows were deleted, and with them the signed times that
        bound the records after them (a published note carries no time; what this writer signed, it
        remembers with its time).

        Raises:
            CheckpointRefusedError: one is newer.
        """
        # This writer's own memory keeps the time it signed; a published note has none.
        newest_stored = max((t.head.size for t in trusted if t.stored), default=0)
        timed = [t.head.size for t in trusted if t.floor is not None] + [newest_stored]
        for t in trusted:
            if t.floor is None and t.head.size > max(timed):
                raise CheckpointRefusedError(
                    f"refusing to sign a checkpoint of {size} records: {t.where} covers {t.head.size} "
                    f"records, but the newest stored checkpoint this key signed covers {newest_stored}: "
                    "someone with write access "
                    "to the database deleted the newer checkpoints (or restored an older copy of it), and "
                    "with them the signed times that bound the records after them",
                    where=self.url,
                    hint="check the log against your kept checkpoints: `trustgate log verify "
                    "--checkpoint-dir DIR --verifier-key KEY`; restore the deleted rows (table "
                    "checkpoints) from a backup; decisions are still recorded",
                )

    def _check_consistent(
        self,
        size: int,
        root: bytes,
        digest: str,
        *,
        own_from: tuple[int, str] | None = None,
        ceiling: TimeFloor,
    ) -> int | None:
        """RFC 9162 §2.1.4: every trusted tree must be a prefix of the tree about to be signed, and the
        records after the newest trusted chain head must be the tree's leaves and link to `digest`.

        `own_from`: `root` and `digest` are this writer's own, the tree and
        chain it extended with its own appends from that size and chain head
        on (`Store.own_tree`). When that run began before the checkpoint this
        writer signed last (or at it, from the head it signed), and that
        checkpoint is the newest trusted chain head, the records need no
        reading back: what is signed is what
        this writer appended since what it signed (a later edit to the stored
        records fails verification against it), and the consistency proofs
        above tie it to every trusted checkpoint; their times were checked as
        it committed them (`_date_own`). Otherwise (a new process, another
        writer's records or checkpoint in between) they are read.

        Returns:
            Unix microseconds of the newest record time the checkpoint covers, as far as this writer
            knows it (None: none known); `TimeFloor.newest` of the checkpoint.

        Raises:
            CheckpointRefusedError: one is not (records were rewritten or removed), or a record's time
                cannot be true.
        """
        trusted = self._trusted()
        if any(t.head.size > size for t in trusted) and self.store.head()[0] >= max(
            t.head.size for t in trusted
        ):
            raise _Overtaken  # the head read is stale, not cut back: sign a newer one instead
        for t in trusted:
            where, head = t.where, t.head
            try:
                if head.size > size:
                    raise merkle.ProofError(
                        f"it covers {head.size} records, the log now has {size}: records were removed"
                    )
                proof = self.store.consistency_proof(head.size, size)
                merkle.verify_consistency(head.size, size, head.root, root, proof)
            except merkle.ProofError as e:
                raise CheckpointRefusedError(
                    f"refusing to sign a checkpoint of {size} records: the log is not consistent with "
                    f"{where} ({head.size} records): {e.message}. Someone with write access to the "
                    "database rewrote or removed records",
                    where=self.url,
                    hint="the decision is still recorded; find what changed with `trustgate log verify "
                    "--checkpoint-dir DIR --verifier-key KEY` (or --checkpoint FILE)",
                ) from e
        chained = [t for t in trusted if t.chain is not None]
        anchor = max(chained, key=lambda t: (t.head.size, t.chain or "")) if chained else None
        mine = self._last_signed
        if (
            own_from is not None
            and mine is not None
            and (own_from[0] < mine.size or own_from == (mine.size, self._last_head))
            and anchor is not None
            and (anchor.head.size, anchor.chain) == (mine.size, self._last_head)
        ):
            # Every record since the checkpoint this writer signed last is one it appended.
            newest = self._check_own(size, ceiling)
        else:
            # Each one with a time precedes every record read below (they follow the newest, `anchor`).
            known = [t.floor for t in trusted if t.floor is not None and t.floor.bound is not None]
            newest = self._check_records(size, digest, anchor, known, ceiling)
        self._check_not_deleted(size, trusted)  # after the records: what changed in them is named first
        return newest

    def _check_own(self, size: int, ceiling: TimeFloor) -> int | None:
        """The times of this writer's own records since its last checkpoint, checked as it committed
        them against that checkpoint's bound (`_date_own`), and now against the one being signed.

        Raises:
            CheckpointRefusedError: one cannot be true.
        """
        last = self._last_floor.newest if self._last_floor is not None else None
        misdated = self._own_misdated
        if misdated is None and self._own_newest is not None:
            micros, seq, record_id, when = self._own_newest
            reason = time_problem(when, None, None, self.policy.clock_skew, ceiling, micros=micros)
            if reason is not None:
                misdated = (seq, f"record #{seq} ({shown_id(record_id)}) {reason}")
        if misdated is not None and misdated[0] <= size:
            raise self._misdated_error(size, "the checkpoint this writer signed last", misdated[1])
        own = self._own_newest[0] if self._own_newest is not None else None
        return max((t for t in (last, own) if t is not None), default=None)

    def _date_own(self, batch: Sequence[_Pending], entries: Sequence[Any]) -> None:
        """Check each record this writer committed against the bound of the checkpoint it signed last
        (as `log verify` and `_check_records` do), for a checkpoint it signs without reading them back
        (`_check_own`); and keep the newest time among them."""
        floor, skew = self._last_floor, self.policy.clock_skew
        newest = self._own_newest
        for pending, entry in zip(batch, entries, strict=True):
            item = pending.item
            micros = timestamp_micros(item.time)
            if self._own_misdated is None:
                reason = time_problem(
                    item.time, item.id, floor if floor is not None and entry.seq > floor.seq else None, skew,
                    micros=micros,
                )  # fmt: skip
                if reason is not None:
                    self._own_misdated = (entry.seq, f"record #{entry.seq} ({shown_id(item.id)}) {reason}")
            if micros is not None and (newest is None or micros > newest[0]):
                newest = (micros, entry.seq, item.id, item.time)
        self._own_newest = newest

    def _misdated_error(self, size: int, where: str, message: str) -> CheckpointRefusedError:
        return CheckpointRefusedError(
            f"refusing to sign a checkpoint of {size} records: checking the records since {where}: {message}",
            where=self.url,
            hint="if a writer's clock is wrong, set it right; the records it dated meanwhile stay "
            "misdated: sign past them once with `trustgate log checkpoint --key PATH --clock-skew "
            "SECONDS` (or raise decisionLog.checkpoint.clockSkewSeconds) and tell auditors. Otherwise "
            "someone with write access to the database added the record: `trustgate log verify` names "
            "it. Decisions are still recorded",
        )

    def _check_records(
        self,
        size: int,
        digest: str,
        anchor: _Trusted | None,
        floors: Sequence[TimeFloor],
        ceiling: TimeFloor,
    ) -> int | None:
        """The records the checkpoint would vouch for are the ones the tree and the chain commit to,
        dated within the bounds the trusted checkpoints set.

        The tree's consistency with a trusted root says nothing about the
        records: a rewrite that left `tree_nodes` intact passes it. So every
        record after `anchor` (the newest trusted checkpoint with a chain head:
        O(records since then)) must have the stored leaf SHA-256(0x00 ‖ record)
        and link, hash by hash, from that head to `digest`. Without one (a new
        log, or a process whose stored checkpoints were deleted) every stored
        record is checked, from the start of the chain or its prune anchor.
        Records before `anchor` were checked when it was signed.

        Each record's time must also be possible (`chain.time_problem`, as `log
        verify` checks it): not before the highest bound of `floors` and the
        anchor's (less the clock skew), not after `ceiling` (the checkpoint
        being signed), and near its UUIDv7 id's time. The anchor's bound needs
        the newest record time it covers: where this writer does not know it
        (a stored checkpoint), the anchor's own record, read with the others
        and linked to its signed chain head, stands in (a lower bound).

        Returns:
            Unix microseconds of the newest record time read (and known before the anchor).

        Raises:
            CheckpointRefusedError: a record is not its leaf, the chain does not link, or a record's
                time cannot be true.
        """
        anchor_floor = anchor.floor if anchor is not None else None
        if anchor is not None:
            seq, prev, where = anchor.head.size, anchor.chain or "", anchor.where
        else:
            start = self.store.prune_anchor()  # however many checkpoints were stored since
            seq, prev = (start.seq, start.hash) if start is not None else (0, GENESIS)
            where = "the start of the chain" if start is None else f"the prune of {shown_id(start.time)}"
        newest = anchor_floor.newest if anchor_floor is not None else None
        read_anchor = anchor_floor is not None and newest is None and seq > 0
        floor = max(floors, key=lambda f: f.bound or 0) if floors else None
        problem: str | _Misdated | None = None
        if seq > size:
            problem = f"it covers {seq} records, the log now has {size}: records were removed"
        else:
            rows = self.store.links(seq - 1 if read_anchor else seq, size)
            for number, body, link, hashed, leaf in rows:
                if read_anchor and number > seq:
                    # The anchor's own record was pruned (or rewritten): its signed time alone bounds
                    # it (the records it covered are gone, so a fast signer's time cannot be told from
                    # an honest one).
                    read_anchor = False
                    assert anchor_floor is not None
                    mark = anchor_floor.covering(anchor_floor.signed)
                    if floor is None or (mark.bound or 0) > (floor.bound or 0):
                        floor = mark
                if read_anchor and number == seq:  # the anchor's own record: its time bounds the anchor
                    if entry_hash(link, body, number) != prev:
                        continue  # rewritten: the next record's link (or the head) says so below
                    micros = _record_micros(body)
                    assert anchor_floor is not None
                    mark = anchor_floor.covering(micros if micros is not None else -(2**63))
                    if floor is None or (mark.bound or 0) > (floor.bound or 0):
                        floor = mark
                    newest = micros
                    read_anchor = False
                    continue
                if number != seq + 1:
                    problem = f"records #{seq + 1}..#{number - 1} are missing"
                elif link != prev or entry_hash(link, body, number) != hashed:
                    problem = f"record #{number} does not link to #{seq} (the chain was rewritten)"
                elif leaf != merkle.leaf_hash(body):
                    problem = f"record #{number} is not the Merkle tree's leaf (the record was rewritten)"
                else:
                    problem, micros = self._dated(number, body, floor, ceiling)
                    if micros is not None and (newest is None or micros > newest):
                        newest = micros
                if problem is not None:
                    rows.close()  # the database's stream (a cursor) now, not when it is collected
                    break
                seq, prev = number, hashed
            else:
                if seq != size:
                    problem = f"records #{seq + 1}..#{size} are missing"
                elif prev != digest:
                    problem = f"the chain from it does not lead to the head #{size} (the chain was rewritten)"
        if isinstance(problem, _Misdated):
            raise self._misdated_error(size, where, problem.message)
        if problem is not None:
            raise CheckpointRefusedError(
                f"refusing to sign a checkpoint of {size} records: checking the records since {where}: "
                f"{problem}. Someone with write access to the database rewrote or removed records",
                where=self.url,
                hint="the decision is still recorded; find what changed with `trustgate log verify "
                "--checkpoint-dir DIR --verifier-key KEY` (or --checkpoint FILE)",
            )
        return newest

    def _dated(
        self, number: int, body: bytes, floor: TimeFloor | None, ceiling: TimeFloor
    ) -> tuple[_Misdated | None, int | None]:
        """Whether record `number`'s time cannot be true (`chain.time_problem`), and its time."""
        try:
            record = json.loads(body)
        except ValueError:
            return None, None  # no decision record: `log verify` names it; the chain and tree vouch for bytes
        if not isinstance(record, dict):
            return None, None
        when = record.get("time")
        micros = timestamp_micros(when)
        reason = time_problem(when, record.get("id"), floor, self.policy.clock_skew, ceiling, micros=micros)
        if reason is None:
            return None, micros
        return _Misdated(f"record #{number} ({shown_id(str(record.get('id')))}) {reason}"), micros

    # -- checkpoints and shutdown -------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """Sign the current head now (after everything queued so far is committed).

        Raises:
            DecisionLogError: no key is configured, or the store cannot be written.
        """
        if self.signer is None:
            raise DecisionLogError(
                "a checkpoint needs a signing key",
                where=self.url,
                hint="pass --key or set decisionLog.checkpoint.key (an Ed25519 PEM private key)",
            )
        self.flush()
        for _ in range(_OVERTAKEN_RETRIES):
            seq, digest = self.store.head()
            try:
                return self._sign_and_store(seq, digest, "manual", timestamp())
            except _Overtaken:
                continue  # another writer signed a newer head after this one read it: read it again
        raise DecisionLogError(
            f"another writer signed a newer checkpoint each of {_OVERTAKEN_RETRIES} times this one "
            "read the head; nothing was signed",
            where=self.url,
            hint="try again; the writers' own checkpoints cover the log meanwhile",
        )

    def flush(self) -> None:
        """Wait until every record queued so far is committed (or failed)."""
        if self._thread is None:
            return
        marker: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._queue.put(_Marker(marker))  # resolved after the batch it joins is committed
        marker.result()

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the store."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
        if self._hold_timer is not None:
            self._held.put(None)
            self._hold_timer.join()
        self._fail_left_behind()
        if self._store is not None:
            self._store.close()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def _fail_left_behind(self) -> None:
        """What was queued after the writer stopped (a caller racing `close`) fails: nobody waits forever."""
        closed = DecisionLogError(
            "the decision log was closed before this record was committed", where=self.url
        )
        left: list[_Pending] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Pending):
                left.append(item)
            elif isinstance(item, _Marker | _Probe):
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    item.future.set_exception(closed)
        if left:
            self._failed(left, closed)

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(slots=True)
class _Marker:
    future: concurrent.futures.Future[str]


@dataclass(slots=True)
class _Probe:
    future: concurrent.futures.Future[str]


def _record_micros(body: bytes) -> int | None:
    """Unix microseconds of a stored record's time (None: no decision record, or no such time)."""
    try:
        record = json.loads(body)
    except ValueError:
        return None
    return timestamp_micros(record.get("time")) if isinstance(record, dict) else None


def prepare(record: Mapping[str, Any]) -> Prepared:
    """Encode and index a record for `Store.append`.

    Raises:
        DecisionLogError: the record lacks id, time, gate or verdict, or cannot be encoded.
    """
    try:
        body = canonical(record)
    except CanonicalError as e:
        raise DecisionLogError(f"the decision record cannot be encoded as canonical JSON: {e}") from e
    missing = [k for k in ("id", "time", "gate", "verdict") if not isinstance(record.get(k), str)]
    if missing:
        raise DecisionLogError(f"the decision record lacks {', '.join(missing)}")
    return Prepared(
        id=record["id"],
        time=record["time"],
        gate=record["gate"],
        verdict=record["verdict"],
        body=body,
        terms=tuple(index_terms(record)),
    )
