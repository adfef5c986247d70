"""The PostgreSQL store: one log shared by every webhook replica and CI runner.

Owns: connecting (`postgresql://user@host:port/db`, libpq's `PG*` variables
and `~/.pgpass` apply, so passwords need not sit in URLs), the chain lock
(`SELECT ... FOR UPDATE` on the `chain_head` row: appends from every writer
are serialized, see docs/adr/0003), migrations under an advisory lock so
replicas starting together migrate once, reconnecting after a lost
connection, and translating psycopg's errors into `DecisionLogError`s.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import psycopg.conninfo
import psycopg.errors

from trustgate.decisions.chain import Row
from trustgate.decisions.store import (
    SCHEMA_VERSION,
    SqlStore,
    absent_refused,
    index_item_sql,
    schema_refused,
)
from trustgate.errors import DecisionLogError

CONNECT_TIMEOUT_SECONDS = 5  # seconds; an unreachable server fails the decision fast, per the failure policy
_MIGRATION_LOCK = 0x7472_7573_7467_6174  # advisory lock key, "trustgat"
_COPY_FROM = 64  # rows; from this many, a batch is inserted with COPY (a group commit's terms often are)
_cursor_names = itertools.count()
_VALUES = re.compile(r"VALUES \((\?(?:, \?)*)\)")
# The schemas (sorted) the log's tables resolve to on the session's search_path, and those holding
# a chain head, when they are more than one (NULL otherwise): a table made beside the log, in a
# schema searched first (`"$user"`, by default), would be read and written instead of the log's.
_LOG_TABLES = (
    "schema_migrations",
    "decisions",
    "terms",
    "checkpoints",
    "chain_head",
    "tree_nodes",
    "daily_counts",
    "daily_seqs",
    "exception_terms",
    "exceptions_seen",
)
_SHADOWED = (
    "SELECT CASE WHEN count(DISTINCT s) > 1 THEN array_agg(DISTINCT s) END FROM ("
    "SELECT n.nspname AS s FROM unnest(ARRAY["
    + ", ".join(f"'{t}'" for t in _LOG_TABLES)
    + "]) AS t(name) JOIN pg_class c ON c.oid = to_regclass(t.name) "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "UNION ALL SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = 'chain_head' AND n.nspname = ANY(current_schemas(false))) AS found"
)
# A writer's session waits on the chain lock, and holds its transaction open, as long as an append
# takes: the server's defaults, whatever postgresql.conf, the database or the role say (`_connect`).
_WRITER_SETTINGS = "".join(
    f", set_config('{name}', '0', false)"
    for name in (
        "lock_timeout",
        "statement_timeout",
        "idle_in_transaction_session_timeout",
        "idle_session_timeout",
    )
)
# The same, for the one transaction it runs in (`_write_tx`): behind a pooler in transaction mode
# (PgBouncer's `pool_mode = transaction`) each transaction may run on another server session, one
# that never saw the session's settings; a commit there with `synchronous_commit = off` returned
# before its WAL was flushed, and the decision could be lost with the server.
_TRANSACTION_SETTINGS = (
    "SELECT CASE WHEN current_setting('synchronous_commit') = 'off' "
    "THEN set_config('synchronous_commit', 'on', true) END"
    + "".join(
        f", set_config('{name}', '0', true)"
        for name in ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")
    )
)


class PostgresStore(SqlStore):
    """A decision log in a PostgreSQL database (15 or later).

    Args:
        url: a libpq URL, `postgresql://user@host:5432/db?sslmode=verify-full`.
        read_only: a log of another schema version is refused (`DecisionLogError`) rather
            than migrated: readers (the UI, `log query`) never write to the log under audit.
        create: create the log's tables in a database without them; with False such a
            database is refused (`DecisionLogError`): a wrong URL would start a new log there,
            one nobody reads (`log verify` called it intact, `summaries revoke` revoked into it).
    """

    dialect = "postgresql"

    def __init__(self, *, url: str, read_only: bool = False, create: bool = True) -> None:
        try:
            params = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as e:
            raise DecisionLogError(
                f"not a PostgreSQL URL: {e}", hint="postgresql://user@host:5432/dbname"
            ) from e
        params.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        params.setdefault("application_name", "trustgate")
        self._params = params
        host = params.get("host") or "localhost"
        port = params.get("port") or 5432
        user = f"{params['user']}@" if params.get("user") else ""
        self.url = f"postgresql://{user}{host}:{port}/{params.get('dbname') or ''}"
        self._depth = 0
        self._pipelined = False  # inside `_append_tx`: writes are queued, not waited for one by one
        self._id_bytewise: bool | None = None  # whether `decisions.id` sorts by code point (`_id_range_sql`)
        self._read_only = read_only
        self._conn = self._connect()
        try:
            version = self._version()
            if read_only:
                schema_refused(version, self.url)
            elif not create:
                absent_refused(version, self.url)
        except BaseException:
            self._conn.close()  # refused: no connection is left to the garbage collector
            raise
        if read_only:
            return
        if version == SCHEMA_VERSION:
            return  # nothing to migrate, nothing written: a read-only role (the auditor UI's) can open it
        with self._write_tx(lock=False):
            self._execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            self._execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            applied = int(self._execute("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0])
            if applied != SCHEMA_VERSION:
                self._migrate(applied)

    def _id_range_sql(self) -> str:
        """By code point whatever the database's collation (`decisions.id` has its default): under
        `en_US.UTF-8` and other libc collations, a prefix's upper bound (U+10FFFF) sorts below the
        ids it starts, and `log show PREFIX` found nothing. A column of a byte-wise collation keeps
        its index (`COLLATE "C"` on a column of another collation reads the table instead)."""
        if self._id_bytewise is None:
            rows = self._execute(
                "SELECT coalesce(nullif(c.collname, 'default'), d.datcollate), "
                "c.collname <> 'default' OR d.datlocprovider = 'c' "
                "FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation "
                "JOIN pg_database d ON d.datname = current_database() "
                "WHERE a.attrelid = to_regclass('decisions') AND a.attname = 'id'"
            )
            self._id_bytewise = bool(rows) and rows[0][1] and rows[0][0] in ("C", "POSIX")
        return (
            "d.id >= ? AND d.id < ?"
            if self._id_bytewise
            else 'd.id COLLATE "C" >= ? AND d.id COLLATE "C" < ?'
        )

    def _index_names(self) -> set[str]:
        """The valid indexes of the log's schema (a `CREATE INDEX CONCURRENTLY` that failed leaves
        one that is not: never used)."""
        rows = self._execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND i.indisvalid"
        )
        return {str(r[0]) for r in rows}

    def _version(self) -> int:
        """The applied schema version, read without writing (0 before the first migration)."""
        if not self._execute("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]:
            return 0
        return int(self._execute("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0])

    def _connect(self) -> psycopg.Connection[Any]:
        """A connection whose commits are durable and whose appends queue on the chain lock, whatever
        the server's, database's or role's defaults (postgresql.conf, `ALTER DATABASE/ROLE ... SET`,
        the URL's `options`).

        `synchronous_commit = off` makes COMMIT return before its WAL is flushed: a crash of the
        server then loses decisions the gates were told were recorded. Such a session is set back
        to `on`; `local` and the synchronous-replication levels flush before COMMIT returns, and
        are kept. A `default_transaction_isolation` of `repeatable read` or `serializable` makes an
        append that waited on the chain lock fail ("could not serialize access") instead of reading
        the head the other writer left: sessions are set to `read committed` (readers ask for their
        own level), so replicas sharing a log do not fail each other's decisions. A writer's
        `lock_timeout`, `statement_timeout`, `idle_in_transaction_session_timeout` and
        `idle_session_timeout` are 0 (the server's defaults): a short one failed the decisions of a
        replica that waited on the chain lock, or ended a session mid-append; the writer bounds its
        own waits (`CheckpointPolicy.max_queue_wait`). Readers keep the operator's timeouts.
        One round trip: the settings are changed by `set_config` in the query that reads them.
        Each write transaction sets them again for itself (`_write_tx`), and no statement is
        prepared on the server (`prepare_threshold`): behind a pooler in transaction mode the
        next transaction may run on another server session, which has neither.
        """
        try:
            conn = psycopg.connect(
                psycopg.conninfo.make_conninfo("", **self._params), autocommit=True, prepare_threshold=None
            )
        except psycopg.Error as e:
            raise _translate(e, "connect to", self.url) from e
        conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED  # BEGIN says so: every session
        writer = "" if self._read_only else _WRITER_SETTINGS
        try:
            schemas = conn.execute(
                f"SELECT ({_SHADOWED}), CASE WHEN current_setting('synchronous_commit') = 'off' "
                "THEN set_config('synchronous_commit', 'on', false) END, "
                "set_config('default_transaction_isolation', 'read committed', false)" + writer
            ).fetchall()[0][0]
        except psycopg.Error as e:
            conn.close()
            raise _translate(e, "connect to", self.url) from e
        if schemas:
            conn.close()
            raise DecisionLogError(
                f"the decision log's tables are in more than one schema on the search_path "
                f"({', '.join(schemas)}): each name would be read and written in the first schema "
                "that has it, so tables made beside the log would be read as the log and written "
                "instead of it",
                where=self.url,
                hint="name the log's schema: the URL's options=-csearch_path%3DSCHEMA, or ALTER ROLE "
                "name SET search_path = SCHEMA; drop the other schema's tables if they are not a log",
            )
        return conn

    def _ensure(self) -> None:
        if self._conn.closed or self._conn.broken:
            if self._depth:
                raise DecisionLogError("the connection to the decision log was lost", where=self.url)
            self._conn = self._connect()

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as e:
            raise _translate(e, doing, self.url) from e

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._ensure()
        reading = sql.lstrip().upper().startswith("SELECT")
        with self._errors("read" if reading else "write"):
            cursor = self._conn.execute(sql.replace("?", "%s"), params)
            if self._pipelined:  # a result is waited for only when read (a write's error comes at the sync)
                return cursor.fetchall() if reading else []
            return cursor.fetchall() if cursor.description is not None else []

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._ensure()
        values = _VALUES.search(sql)
        if values is not None and len(rows) > 1:
            # One statement over arrays, one per column, instead of a statement per row; the arrays
            # travel in binary (as text, a bytea array is escaped byte by byte: 7x slower).
            columns = [list(column) for column in zip(*rows, strict=True)]
            arrays = ", ".join(f"%b::{_array_type(column)}" for column in columns)
            sql = sql[: values.start()] + f"SELECT * FROM unnest({arrays})" + sql[values.end() :]
            with self._errors("write"):
                self._conn.execute(sql, columns)
            return
        with self._errors("write"), self._conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        self._ensure()
        with self._read(), self._errors("read"):
            cursor = self._conn.cursor(name=f"trustgate_{next(_cursor_names)}")
            cursor.itersize = 5000
            try:
                cursor.execute(sql.replace("?", "%s"), params)
                yield from cursor
            finally:
                with contextlib.suppress(psycopg.Error):
                    cursor.close()

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Large batches go in by `COPY ... FROM STDIN` (one stream, no statement per row).

        In a pipeline (`_append_tx`) COPY is not allowed: rows go in by `executemany`, queued with the rest.
        """
        if len(rows) < _COPY_FROM or self._pipelined:
            super()._insert(table, columns, rows)
            return
        self._ensure()
        with (
            self._errors("write"),
            self._conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def _select_nodes(self, wanted: Sequence[tuple[int, int]]) -> list[tuple[Any, ...]]:
        """One index lookup per wanted node (a join with the arrays), whatever the planner thinks of ORs."""
        if len(wanted) == 1:
            return super()._select_nodes(wanted)
        return self._execute(
            "SELECT t.level, t.idx, t.hash FROM unnest(?::smallint[], ?::bigint[]) AS w(level, idx) "
            "JOIN tree_nodes t ON t.level = w.level AND t.idx = w.idx",
            ([w[0] for w in wanted], [w[1] for w in wanted]),
        )

    def _grouped_terms_sql(self) -> str:
        return (
            f"SELECT seq, string_agg({index_item_sql('kind', 'value', char='chr')}, chr(30)) "
            "FROM terms GROUP BY seq ORDER BY seq"
        )

    def verify_rows(self) -> Iterator[Row]:
        """Entries with their index in one `COPY ... TO STDOUT (FORMAT BINARY)` stream.

        The server joins each entry with its index items (ordered, so they
        compare as one string) and streams while the client checks: no
        round trip per chunk, no second query.
        """
        item = index_item_sql("kind", "value", char="chr")
        sql = (
            "COPY (SELECT d.seq, d.id, d.time, d.gate, d.verdict, d.record, d.prev, d.hash, t.items "
            f"FROM decisions d LEFT JOIN (SELECT seq, string_agg({item}, chr(30) "
            "ORDER BY kind, value) AS items FROM terms GROUP BY seq) t ON t.seq = d.seq "
            "ORDER BY d.seq) TO STDOUT (FORMAT BINARY)"
        )
        self._ensure()
        # The inner transaction is a savepoint inside a snapshot: a reader that stops early
        # (the first problem found) aborts the COPY, and only the savepoint is rolled back.
        with (
            self._read(),
            self._errors("read"),
            self._conn.transaction(),
            self._conn.cursor() as cursor,
            cursor.copy(sql) as copy,
        ):
            copy.set_types(["int8", "text", "text", "text", "text", "bytea", "text", "text", "text"])
            yield from copy.rows()

    @contextlib.contextmanager
    def _write_tx(self, *, lock: bool = True) -> Iterator[None]:
        if self._depth:
            raise RuntimeError("nested write transaction")  # a programming error, never user input
        self._ensure()
        with self._errors("write"), self._conn.transaction():
            self._depth += 1
            try:
                # This transaction's own settings (`_TRANSACTION_SETTINGS`; its isolation level is
                # named by BEGIN, `_connect`); in a pipeline they travel with BEGIN and the lock.
                self._execute(_TRANSACTION_SETTINGS)
                if lock:  # the chain lock: every writer of this database queues here
                    self._execute("SELECT seq FROM chain_head WHERE chain = 'main' FOR UPDATE")
                yield
            finally:
                self._depth -= 1

    def _write(self) -> Any:
        return self._write_tx()

    @contextlib.contextmanager
    def _append_tx(self) -> Iterator[None]:
        """An append's transaction in pipeline mode: BEGIN travels with the lock, the writes with COMMIT.

        Three round trips per group commit (lock, head, writes plus COMMIT)
        instead of one per statement; an error in a queued write surfaces
        at the sync and rolls the whole transaction back.
        """
        self._ensure()
        with self._errors("write"), self._conn.pipeline():
            self._pipelined = True
            try:
                with self._write_tx():
                    yield
            finally:
                self._pipelined = False

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        if self._depth:
            yield
            return
        self._ensure()
        with self._errors("read"), self._conn.transaction():
            self._execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._conn.close()


def _array_type(column: Sequence[Any]) -> str:
    """The PostgreSQL array type for one column of rows (strings are sent untyped, so say which)."""
    kind = next((type(v) for v in column if v is not None), str)
    return {int: "int8[]", bytes: "bytea[]", bool: "bool[]"}.get(kind, "text[]")


def _translate(error: psycopg.Error, doing: str, url: str) -> DecisionLogError:
    """`error` as what happened and what to do: what the server refused is told apart from a server
    that cannot be reached."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, psycopg.errors.DiskFull):
        return DecisionLogError(
            "the PostgreSQL server's disk is full; the decision was not recorded",
            where=url,
            hint="free space on the database server",
        )
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return DecisionLogError(
            f"permission denied: {text}", where=url, hint="grant the trustgate role access to its tables"
        )
    if isinstance(error, psycopg.errors.ReadOnlySqlTransaction):
        return DecisionLogError(
            f"cannot {doing} the decision log: the PostgreSQL session is read-only ({text}); "
            "nothing was written",
            where=url,
            hint="point the decision log at the primary server, with a role that may write: "
            "default_transaction_read_only is on for the server, database or role (ALTER ROLE name "
            "RESET default_transaction_read_only), or the server is a standby",
        )
    if isinstance(error, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled):
        return DecisionLogError(
            f"the decision log is locked or busy: {text}",
            where=url,
            hint="a lock_timeout or statement_timeout of the server, database, role or URL ended the "
            "wait (trustgate's writers set both to 0); look for a long transaction holding the log "
            "(pg_stat_activity)",
        )
    if isinstance(
        error,
        psycopg.errors.TransactionRollback
        | psycopg.errors.SerializationFailure
        | psycopg.errors.DeadlockDetected,
    ):
        return DecisionLogError(
            f"the PostgreSQL server rolled back the decision log's transaction: {text}; nothing was written",
            where=url,
            hint="another session's transaction conflicted with it: look for sessions writing the "
            "log's tables besides trustgate's (pg_stat_activity); the next decision tries again",
        )
    if isinstance(
        error,
        psycopg.errors.AdminShutdown
        | psycopg.errors.IdleSessionTimeout
        | psycopg.errors.IdleInTransactionSessionTimeout,
    ):
        return DecisionLogError(
            f"the PostgreSQL server ended the decision log's session: {text}",
            where=url,
            hint="the server restarted, or an administrator or a timeout ended the session; the next "
            "decision connects again",
        )
    if isinstance(error, psycopg.OperationalError):
        return DecisionLogError(
            f"cannot {doing} the PostgreSQL decision log: {text}",
            where=url,
            hint="check that the server runs and is reachable, and the credentials (PGPASSWORD, ~/.pgpass)",
        )
    return DecisionLogError(f"cannot {doing} the decision log: {text}", where=url)
