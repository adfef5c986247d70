"""The writer every gate shares: append a record, get its id once it is durable.

Owns: opening a store by URL (`open_store`), `DecisionLog` (group commit: a
background thread takes whatever records are waiting, appends them in one
transaction with one fsync, and only then releases each caller with its id),
periodic and on-demand signed checkpoints, and the settings that come with
them. Leaves out: what goes into a record (`record.py`) and how a gate reacts
to a failure (its failure policy, applied by the gate).

Thread-safe: any number of threads may call `append` at once (the webhook's
request threads, the pre-sync workers). The background thread starts on the
first append, so a gate that forks workers before deciding forks no thread.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustgate.decisions.canonical import CanonicalError, canonical, timestamp
from trustgate.decisions.chain import Checkpoint, CheckpointSigner
from trustgate.decisions.record import index_terms
from trustgate.decisions.store import Prepared, SqlStore
from trustgate.errors import DecisionLogError

Store = SqlStore


def _check_url(url: str) -> None:
    if not url.startswith(("sqlite:", "postgresql://", "postgres://")):
        raise DecisionLogError(
            f"unknown decision log URL {url!r}",
            hint="use sqlite:///path/to/decisions.db or postgresql://user@host:5432/dbname",
        )


def open_store(url: str, *, create: bool = True) -> Store:
    """The store a URL names.

    `sqlite:///abs/path.db` (or `sqlite:relative.db`) and
    `postgresql://user@host:port/db` (`postgres://` too).

    Args:
        create: create a missing SQLite file; readers pass False.

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
        if not rest or rest.endswith("/"):
            raise DecisionLogError(f"no file in {url!r}", hint="sqlite:///var/lib/trustgate/decisions.db")
        return SqliteStore(path=Path(rest), create=create, busy_timeout=timeout)
    if url.startswith(("postgresql://", "postgres://")):
        from trustgate.decisions.postgres import PostgresStore

        return PostgresStore(url=url)
    raise DecisionLogError(
        f"unknown decision log URL {url!r}",
        hint="use sqlite:///path/to/decisions.db or postgresql://user@host:5432/dbname",
    )


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When the writer signs a checkpoint on its own (also on demand: `DecisionLog.checkpoint`)."""

    every_records: int = 10_000  # records; bounds what an undetected tail truncation could hide
    every_seconds: float = 3_600.0  # seconds since the last checkpoint, checked after each commit


@dataclass(slots=True)
class _Pending:
    item: Prepared
    future: concurrent.futures.Future[str]


_STOP = object()


class DecisionLog:
    """Appends records to a store with group commit.

    Args:
        store: an open store (the log owns it from now on and closes it).
        signer: signs checkpoints; None writes none (the chain alone still proves order).
        checkpoints: when to checkpoint automatically.
        max_batch: records per transaction at most.
    """

    def __init__(
        self,
        *,
        store: Store | Callable[[], Store],
        url: str = "",
        signer: CheckpointSigner | None = None,
        checkpoints: CheckpointPolicy | None = None,
        max_batch: int = 2_000,
    ) -> None:
        if callable(store) and not isinstance(store, SqlStore):
            self._store: Store | None = None
            self._factory: Callable[[], Store] | None = store
        else:
            self._store, self._factory = store, None
        self.url = url or (self._store.url if self._store is not None else "")
        self.signer = signer
        self.policy = checkpoints or CheckpointPolicy()
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._checkpoint_state_loaded = False
        self.appended = 0
        self.last_checkpoint_error: DecisionLogError | None = None

    @classmethod
    def open(
        cls, url: str, *, key: str | Path | None = None, checkpoints: CheckpointPolicy | None = None
    ) -> DecisionLog:
        """A log writing to the store at `url`, signing checkpoints with `key` when given.

        The store is opened by the first append (and re-opened by the next one
        after a failure), so an unreachable store fails decisions, per the
        gate's failure policy, rather than the start-up of a long-running gate.

        Raises:
            DecisionLogError: the URL is malformed.
            ConfigError: the key is unreadable or not Ed25519.
        """
        _check_url(url)
        signer = CheckpointSigner.from_file(key) if key else None
        return cls(store=lambda: open_store(url), url=url, signer=signer, checkpoints=checkpoints)

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

        Raises:
            DecisionLogError: the record could not be committed (the store is
                unreachable, locked, corrupt or full) or cannot be encoded.
        """
        future = self.submit(record)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError as e:
            raise DecisionLogError(
                f"the decision log did not commit within {timeout:g} s", where=self.url
            ) from e

    def submit(self, record: Mapping[str, Any]) -> concurrent.futures.Future[str]:
        """Queue one record; the future resolves to its id after commit, or raises DecisionLogError."""
        if self._closed:
            raise DecisionLogError("the decision log is closed", where=self.url)
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        try:
            item = prepare(record)
        except DecisionLogError as e:
            future.set_exception(e)
            return future
        self._start()
        self._queue.put(_Pending(item, future))
        return future

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="trustgate-decision-log", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while True:
            batch: list[_Pending] = []
            markers: list[_Marker] = []
            stop = False
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stop = True
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
            if batch:
                self._commit(batch)
            for marker in markers:
                marker.future.set_result("")
            if stop:
                return

    def _commit(self, batch: Sequence[_Pending]) -> None:
        try:
            entries = self.store.append([p.item for p in batch])
        except DecisionLogError as e:  # an unopenable store is opened again for the next batch
            for pending in batch:
                pending.future.set_exception(e)
            return
        except Exception as e:  # a bug must not leave callers waiting forever
            error = DecisionLogError(f"the decision log writer failed: {e!r}", where=self.url)
            for pending in batch:
                pending.future.set_exception(error)
            return
        self.appended += len(entries)
        self._since_checkpoint += len(entries)
        checkpoint_error: DecisionLogError | None = None
        if self.signer is not None and self._checkpoint_due():
            try:
                self._sign_and_store(entries[-1].seq, entries[-1].hash, "periodic")
            except DecisionLogError as e:  # the records are committed; the next batch retries
                checkpoint_error = e
        for pending, entry in zip(batch, entries, strict=True):
            pending.future.set_result(entry.id)
        self.last_checkpoint_error = checkpoint_error

    def _checkpoint_due(self) -> bool:
        if not self._checkpoint_state_loaded:
            self._checkpoint_state_loaded = True
            latest = self._latest_checkpoint()
            if latest is not None:
                head_seq, _ = self.store.head()
                self._since_checkpoint = head_seq - latest.seq
                age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(latest.time.replace("Z", "+00:00"))
                self._last_checkpoint = time.monotonic() - age.total_seconds()
            else:
                return True  # a log that was never checkpointed gets one at once
        return (
            self._since_checkpoint >= self.policy.every_records
            or time.monotonic() - self._last_checkpoint >= self.policy.every_seconds
        )

    def _latest_checkpoint(self) -> Checkpoint | None:
        signed = [c for c in self.store.checkpoints() if c.signature]
        return max(signed, key=lambda c: c.seq) if signed else None

    def _sign_and_store(self, seq: int, digest: str, kind: str) -> Checkpoint:
        assert self.signer is not None
        checkpoint = self.signer.sign(seq=seq, hash=digest, time=timestamp(), kind=kind)
        self.store.add_checkpoint(checkpoint)
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        return checkpoint

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
        seq, digest = self.store.head()
        return self._sign_and_store(seq, digest, "manual")

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
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(slots=True)
class _Marker:
    future: concurrent.futures.Future[str]


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
