"""The SQLite store: one file, WAL, every commit fsynced.

Owns: opening (`sqlite:///abs/path.db`, `sqlite:rel/path.db`), the pragmas
that make an acknowledged append durable (`journal_mode=WAL`,
`synchronous=FULL`), `BEGIN IMMEDIATE` as the chain lock between processes,
and turning SQLite's errors (locked, corrupt, disk full, read-only, missing)
into `DecisionLogError`s that say what to do.

Writers of one file (the webhook's worker processes) first take an advisory
`flock` on `<file>-lock`, polled every 50 µs at first, backing off to every
millisecond: SQLite's own busy handler, on `BEGIN IMMEDIATE` against another
process's transaction, sleeps 1, 2, 5 ... up to 100 ms between attempts, so
under contention a writer slept long after the lock was free (p99 of a
second and more with two workers). Waiting on the file lock, a writer gets
its turn soon after the other's commit (a commit of a few records takes
well under a millisecond), and everything that queued meanwhile goes into
its one transaction. Where the lock file cannot be opened (a
read-only directory), writers fall back to the busy handler alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from trustgate.decisions.chain import NotUtf8Text, Problem
from trustgate.decisions.store import SCHEMA_VERSION, SqlStore, absent_refused, schema_refused
from trustgate.errors import DecisionLogError, DecisionLogMissingError

BUSY_TIMEOUT_SECONDS = 10.0  # seconds a writer waits for another's transaction before failing
CACHE_KIB = 65_536  # KiB of page cache per connection; index inserts and verify of large logs need it
LOCK_POLL_SECONDS = 0.001  # seconds between tries of another writer's file lock, at most
_LOCK_POLL_FIRST = 0.00005  # seconds: the first pause; doubled up to LOCK_POLL_SECONDS


class SqliteStore(SqlStore):
    """A decision log in one SQLite file.

    Args:
        path: the database file.
        create: create the file (and its tables) when missing; with False a missing or empty
            file is refused (`DecisionLogError`): readers, and writers that must not start a
            new log nobody reads (`summaries revoke`, `log` commands).
        busy_timeout: seconds to wait for another process's write lock.
        read_only: open without writing anything: no switch to WAL, and a log of another
            schema version is refused (`DecisionLogError`) rather than migrated. For
            readers that must not change the log under audit (the UI, `log query`).
    """

    dialect = "sqlite"

    def __init__(
        self,
        *,
        path: Path,
        create: bool = True,
        busy_timeout: float = BUSY_TIMEOUT_SECONDS,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self.url = f"sqlite:///{path}" if path.is_absolute() else f"sqlite:{path}"
        self.busy_timeout = busy_timeout
        self._depth = 0
        self._lock_fd: int | None = None  # the writers' file lock, opened by the first write (-1: none)
        if not create and not path.exists():
            raise DecisionLogMissingError(
                "no decision log here",
                where=self.url,
                hint="check the path (a volume not mounted?); `trustgate log init --store URL` starts "
                "a new log there",
            )
        if create and not path.parent.is_dir():
            raise DecisionLogError(
                f"the directory {path.parent} does not exist", where=self.url, hint="create it first"
            )
        with self._errors("open"):
            self._conn = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            try:
                if read_only:
                    self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                    schema_refused(self._version(), self.url)
                    return
                if not create:  # an empty file (or one just made by `touch`): not a log to write to
                    absent_refused(self._version(), self.url)
                self._use_wal()
                self._conn.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit
                self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                if self._version() != SCHEMA_VERSION:
                    with self._write_tx():
                        self._execute(
                            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                            "description TEXT NOT NULL, applied_at TEXT NOT NULL)"
                        )
                        applied = self._execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
                        self._migrate(int(applied[0][0]))
            except BaseException:
                self._conn.close()
                raise

    def _use_wal(self) -> None:
        """Switch the file to WAL, waiting (up to the busy timeout) for another connection's write lock.

        Switching a new file to WAL writes its header from inside a read
        transaction; when another connection holds the write lock (a second
        writer opening the same new file at the same moment), SQLite answers
        "database is locked" at once, without calling the busy handler, since
        waiting there could deadlock. Nothing is held between attempts, so
        retrying is safe.
        """
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.001
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL").fetchall()
                return
            except sqlite3.OperationalError as e:
                if not _busy(e) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _version(self) -> int:
        tables = self._execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        names = {t[0] for t in tables}
        if "schema_migrations" not in names:
            if names:
                raise DecisionLogError(
                    "this SQLite file is not a trustgate decision log", where=self.url, hint="check the path"
                )
            return 0
        return int(self._execute("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0])

    @contextlib.contextmanager
    def as_stored(self) -> Iterator[None]:
        """See `SqlStore.as_stored`: SQLite stores text of any bytes."""
        previous = self._conn.text_factory
        self._conn.text_factory = _text_as_stored
        try:
            yield
        finally:
            self._conn.text_factory = previous

    # -- errors ---------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise _translate(e, doing, self.url, self.busy_timeout) from e

    # -- the dialect ----------------------------------------------------------

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._errors("read" if sql.lstrip().upper().startswith("SELECT") else "write"):
            return self._conn.execute(sql, params).fetchall()

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._errors("write"):
            self._conn.executemany(sql, rows)

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        with self._errors("read"):
            cursor = self._conn.execute(sql, params)
            while True:
                rows = cursor.fetchmany(2000)
                if not rows:
                    return
                yield from rows

    def _take_file_lock(self) -> bool:
        """The writers' file lock, polled up to the busy timeout; False: go on without it."""
        if self._lock_fd is None:
            try:  # read-only is enough for flock; any user that can read the log can queue
                self._lock_fd = os.open(f"{self.path}-lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:
                self._lock_fd = -1
        if self._lock_fd < 0:
            return False
        deadline = time.monotonic() + self.busy_timeout
        pause = _LOCK_POLL_FIRST  # another writer's commit takes well under a millisecond: look again soon
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False  # BEGIN IMMEDIATE's busy handler decides from here
                time.sleep(pause)
                pause = min(pause * 2, LOCK_POLL_SECONDS)
            except OSError:
                return False

    def _release_file_lock(self) -> None:
        if self._lock_fd is not None and self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _write_tx(self) -> Iterator[None]:
        if self._depth:
            raise RuntimeError("nested write transaction")  # a programming error, never user input
        locked = self._take_file_lock()
        try:
            with self._errors("lock"):
                self._conn.execute("BEGIN IMMEDIATE")  # takes the database's write lock: the chain lock
            self._depth += 1
            try:
                yield
                with self._errors("commit"):
                    self._conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            finally:
                self._depth -= 1
        finally:
            if locked:
                self._release_file_lock()

    def _write(self) -> Any:
        return self._write_tx()

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        if self._depth:
            yield
            return
        with self._errors("read"):
            self._conn.execute("BEGIN")
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("COMMIT")

    def _index_names(self) -> set[str]:
        with self._read():
            return {str(r[0]) for r in self._execute("SELECT name FROM sqlite_master WHERE type = 'index'")}

    def _storage_problems(self) -> list[Problem]:
        """`PRAGMA integrity_check`: each index against its table, and the file's structure.

        `log verify` reads the tables; filters, stats and lookups by id read
        through the indexes. An index out of step with its table (rebuilt as
        a partial index, its SQL put back with `PRAGMA writable_schema`)
        hides records from them while every table checks out. It reads every
        row and index entry once more: 14 s of CPU on 1,000,000 records (5.1
        million index terms), where the rest of `log verify` takes about 40 s
        (ADR 9).
        """
        with self._read():
            lines = [str(r[0]) for r in self._execute("PRAGMA integrity_check")]
            if lines == ["ok"]:
                return []
            tables = dict(self._execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"))
        return integrity_problems(lines, tables)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        if self._lock_fd is not None and self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
        self._lock_fd = None


_INDEX_LINE = re.compile(r" index (\S+)$")
_SHOWN_LINES = 3  # integrity_check's lines quoted per problem


def integrity_problems(lines: Sequence[str], tables: Mapping[str, str]) -> list[Problem]:
    """`PRAGMA integrity_check`'s lines (not "ok") as problems: one per index named, one for the rest.

    Args:
        tables: each index's table (`sqlite_master`).
    """
    by_index: dict[str, list[str]] = {}
    other: list[str] = []
    for line in lines:
        named = _INDEX_LINE.search(line)
        if named is not None:
            by_index.setdefault(named[1], []).append(line)
        else:
            other.append(line)

    def quoted(found: list[str]) -> str:
        more = len(found) - _SHOWN_LINES
        return "; ".join(found[:_SHOWN_LINES]) + (f"; and {more} more" if more > 0 else "")

    problems = [
        Problem(
            "altered",
            0,
            "",
            f"the SQLite index {name} does not match its table {tables.get(name, '?')} "
            f"(PRAGMA integrity_check: {quoted(found)}): filters, stats and lookups read through it, "
            f"so it can hide records from them while the table checks out; it was altered (or the file "
            f"is damaged), and `REINDEX {name}` rebuilds it once you have kept a copy",
        )
        for name, found in sorted(by_index.items())
    ]
    if other:
        problems.append(
            Problem(
                "altered",
                0,
                "",
                f"the SQLite file fails its integrity check (PRAGMA integrity_check: {quoted(other)}): "
                "it was altered or is damaged",
            )
        )
    return problems


def _busy(error: sqlite3.Error) -> bool:
    low = str(error).lower()
    return "locked" in low or "busy" in low


def _text_as_stored(raw: bytes) -> str | NotUtf8Text:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return NotUtf8Text(raw)


def _translate(error: sqlite3.Error, doing: str, url: str, busy_timeout: float) -> DecisionLogError:
    text = str(error)
    low = text.lower()
    if _busy(error):
        return DecisionLogError(
            f"the decision log is locked by another process (waited {busy_timeout:g} s to {doing})",
            where=url,
            hint="another writer holds a long transaction; find it (fuser the file) or retry",
        )
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return DecisionLogError(
            f"the decision log file is corrupt ({text})",
            where=url,
            hint="keep the file for investigation, restore the last backup, then run `trustgate log verify`",
        )
    if "disk is full" in low or "database or disk is full" in low:
        return DecisionLogError(
            "the disk holding the decision log is full; the decision was not recorded",
            where=url,
            hint="free space (or `trustgate log prune --before DATE` after exporting)",
        )
    if "readonly" in low or "read-only" in low:
        return DecisionLogError(
            "the decision log is read-only for this user", where=url, hint="check the file's permissions"
        )
    if "unable to open" in low:
        return DecisionLogError(
            "cannot open the decision log file",
            where=url,
            hint="check that the directory exists and is writable by this user",
        )
    return DecisionLogError(f"cannot {doing} the decision log: {text}", where=url)
