"""Summaries of the decision log kept beside it: daily counts and the exception index (schema 3).

Owns: what the auditor's overview reads instead of scanning records —
`daily_counts` (decisions per UTC day, gate and verdict, and per rule,
namespace, exception and waived finding), `exception_terms` (which records
applied which exception, the index behind the `exception` filter) and
`exceptions_seen` (the newest record's view of each exception: owner,
reason, expiry) and `daily_seqs` (the first and last chain position of each
day's records, which bound a time-filtered list to the positions that can
match) — computed from each appended batch in the append's own
transaction, rebuilt by the migration for logs written before, and trimmed
by a prune; and the reads over them. Leaves out: the SQL of the records
themselves (`store.py`) and what the numbers are shown as (`trustgate.ui`).

These tables are derived data, like an index, but the UI selects records
through them, so `log verify` recomputes them in its one pass over the
records (`SummaryCheck`) and reports any difference as a `summary` problem;
the UI compares their coverage with the log head first (`summaries_behind`)
and counts records instead when they are behind (an older writer appended
without them). A summary that disagrees with the records is rebuilt by
`rebuild_summaries()` (`trustgate log rebuild-summaries`).

Rows of `daily_counts` are (kind, day, namespace, value, gate, verdict) -> n,
kept for all records (namespace `''`) and for each namespace's records.
Kinds: `''` (value `''`: the decisions themselves),
`namespace` and `rule` (the query index's terms of those kinds),
`exception` (value: its name; n: the findings it covered), and `waived`
(value: `rule` U+001F `exception`; n: findings an unexpired exception waived).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from trustgate.decisions.chain import Problem, Row, split_index, stored_type
from trustgate.decisions.record import index_terms
from trustgate.errors import InconsistentLogError

SUMMARY_KINDS = ("namespace", "rule")  # index terms counted per day
_TOP = "\U0010ffff"
# records read before a time span's start and after its end to check its positions (`seq_bounds_problem`),
# doubled while they are out of time order by more than they reach beyond the range, up to the max
SPAN_CHECK_RECORDS = 64
SPAN_CHECK_MAX = 4096
# Positions a summary may name: a span's check reads SPAN_CHECK_MAX beyond it, within a BIGINT.
_MAX_POSITION = 2**63 - 1 - 2 * SPAN_CHECK_MAX
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class SummaryAlteredError(InconsistentLogError):
    """A summary table holds what no append writes there (a value of another type, a day that is
    not a date): it was altered. The UI then reads the records and flags the summaries as
    disagreeing; `log verify` names the difference and `log rebuild-summaries` recomputes them."""


def _altered(table: str, column: str, value: Any, what: str) -> SummaryAlteredError:
    return SummaryAlteredError(
        f"the log's summaries are inconsistent: {table}.{column} holds {stored_type(value)}, not {what}",
        hint="run `trustgate log verify`, then `trustgate log rebuild-summaries`",
    )


def _position(value: Any, table: str, column: str) -> int:
    """A chain position a summary holds, checked (SQLite's columns are typeless).

    Raises:
        SummaryAlteredError: it is not an integer position.
    """
    if type(value) is not int or not 0 <= value <= _MAX_POSITION:
        raise _altered(table, column, value, "a chain position")
    return value


def _day(value: Any, table: str) -> str:
    """A summary's UTC day (YYYY-MM-DD), checked.

    Raises:
        SummaryAlteredError: it is not a date.
    """
    if type(value) is str and _DAY.fullmatch(value):
        try:
            dt.date.fromisoformat(value)
            return value
        except ValueError:
            pass
    raise _altered(table, "day", value, "a date")


def term_match(kind: str, value: str, prefix: bool, *, column: str = "value") -> tuple[str, list[Any]]:
    """SQL matching one index term, `column` holding its value (`kind = ?` is the caller's), and its
    parameters: `value` exactly, or as a prefix.

    Actors match without ASCII case: git records an e-mail as its author typed
    it (`Alice@Example.COM`), and the index holds it so (the index is part of
    the chain's verification, ADR 9: it cannot be rewritten folded). The
    stored spellings are found first, by skipping through the index's
    distinct actor values from the first letter's upper-case form to its
    lower-case one (one seek each); then `column` is matched against them
    with the index, as an exact value is.
    """
    if kind != "actor" or not value:
        if prefix:
            return f"{column} >= ? AND {column} < ?", [value, value + _TOP]
        return f"{column} = ?", [value]
    folded = value.translate(_ASCII_LOWER)
    first = folded[0].upper() if folded[0].isascii() else folded[0]  # upper case sorts first in ASCII
    last = folded[0]
    fold = "lower(v) >= ? AND lower(v) < ?" if prefix else "lower(v) = ?"
    spellings = (
        "SELECT v FROM (WITH RECURSIVE s(v) AS ("
        "SELECT min(value) FROM terms WHERE kind = 'actor' AND value >= ? AND value < ? UNION ALL "
        "SELECT (SELECT min(value) FROM terms WHERE kind = 'actor' AND value > s.v AND value < ?) "
        f"FROM s WHERE s.v IS NOT NULL) SELECT v FROM s) spelled WHERE {fold}"
    )
    return f"{column} IN ({spellings})", [
        first,
        last + _TOP,
        last + _TOP,
        *([folded, folded + _TOP] if prefix else [folded]),
    ]


@dataclass(slots=True)
class Summary:
    """What a batch of records adds to the summary tables.

    Every count is kept twice: over all records (namespace `''`) and over
    the records of each namespace they touch, so an overview of one
    namespace is read from the summaries too.
    """

    # (kind, day, namespace, value, gate, verdict) -> n
    counts: Counter[tuple[str, str, str, str, str, str]] = field(default_factory=Counter)
    exception_terms: list[tuple[str, int]] = field(default_factory=list)  # (name, seq)
    seen: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # name -> exceptions_seen row
    seqs: dict[str, list[int]] = field(default_factory=dict)  # day -> [first seq, last seq]

    def add(
        self, seq: int, time: str, gate: str, verdict: str, body: bytes, terms: Iterable[tuple[str, str]]
    ) -> None:
        """Count one record (its stored columns, canonical bytes and query-index terms)."""
        day = time[:10]
        bounds = self.seqs.setdefault(day, [seq, seq])
        bounds[0], bounds[1] = min(bounds[0], seq), max(bounds[1], seq)
        counted = [(kind, value) for kind, value in terms if kind in SUMMARY_KINDS]
        # Canonical JSON has no spaces: a record without exceptions has no such bytes, and most have none.
        extra = self._exceptions(seq, time, json.loads(body)) if _has_exceptions(body) else []
        self.count(day, gate, verdict, counted, extra)

    def count(
        self,
        day: str,
        gate: str,
        verdict: str,
        counted: Sequence[tuple[str, str]],
        extra: Sequence[tuple[str, str, int]] = (),
        times: int = 1,
    ) -> None:
        """Count `times` records of one day, gate, verdict and counted index terms (and `extra` items)."""
        scopes = ["", *sorted({value for kind, value in counted if kind == "namespace"})]
        items = [("", "", 1), *((kind, value, 1) for kind, value in counted), *extra]
        for scope in scopes:
            for kind, value, n in items:
                self.counts[(kind, day, scope, value, gate, verdict)] += n * times

    def _exceptions(self, seq: int, time: str, record: Any) -> list[tuple[str, str, int]]:
        items = []
        for e in record.get("exceptions") or ():
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                continue
            name = e["name"]
            items.append(("exception", name, _int(e.get("findings"))))
            self.exception_terms.append((name, seq))
            self.seen[name] = (
                name,
                _text(e.get("owner")),
                _text(e.get("reason")),
                _text(e.get("expires")),
                1 if e.get("expired") else 0,
                seq,
                time,
            )
        for f in record.get("findings") or ():
            exc = f.get("exception") if isinstance(f, dict) else None
            if isinstance(exc, dict) and not exc.get("expired"):
                items.append(("waived", f"{f.get('rule')}\x1f{exc.get('name')}", 1))
        return items


def _has_exceptions(body: bytes) -> bool:
    return b'"exceptions":[{' in body or b'"exception":{' in body


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class DayRange:
    """Which summary rows a question is about: UTC days `since` <= day < `until`, gates, verdicts,
    and the records of one namespace (`''`: all records)."""

    since: str | None = None  # YYYY-MM-DD, inclusive
    until: str | None = None  # YYYY-MM-DD, exclusive
    gates: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    namespace: str = ""

    def where(self) -> tuple[str, list[Any]]:
        """A condition with a first placeholder for the kind, and the parameters after it."""
        parts, params = ["kind = ? AND namespace = ?"], [self.namespace]
        if self.since:
            parts.append("day >= ?")
            params.append(self.since)
        if self.until:
            parts.append("day < ?")
            params.append(self.until)
        for column, values in (("gate", self.gates), ("verdict", self.verdicts)):
            if values:
                parts.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        return " AND ".join(parts), params


MIGRATION_SQLITE = (
    """CREATE TABLE daily_counts (kind TEXT NOT NULL, day TEXT NOT NULL, namespace TEXT NOT NULL,
        value TEXT NOT NULL, gate TEXT NOT NULL, verdict TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (kind, namespace, day, value, gate, verdict)) WITHOUT ROWID""",
    """CREATE TABLE exception_terms (name TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (name, seq)) WITHOUT ROWID""",
    """CREATE TABLE exceptions_seen (name TEXT PRIMARY KEY, owner TEXT NOT NULL, reason TEXT NOT NULL,
        expires TEXT NOT NULL, expired INTEGER NOT NULL, last_seq INTEGER NOT NULL,
        last_time TEXT NOT NULL)""",
    """CREATE TABLE daily_seqs (day TEXT PRIMARY KEY, first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL) WITHOUT ROWID""",
    "CREATE INDEX decisions_verdict ON decisions (verdict, seq)",
    "CREATE INDEX decisions_gate ON decisions (gate, verdict, seq)",
    "CREATE INDEX checkpoints_seq ON checkpoints (seq)",
)
MIGRATION_POSTGRESQL = (
    """CREATE TABLE daily_counts (kind TEXT COLLATE "C" NOT NULL, day TEXT COLLATE "C" NOT NULL,
        namespace TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, gate TEXT NOT NULL,
        verdict TEXT NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY (kind, namespace, day, value, gate, verdict))""",
    """CREATE TABLE exception_terms (name TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
        PRIMARY KEY (name, seq))""",
    """CREATE TABLE exceptions_seen (name TEXT PRIMARY KEY, owner TEXT NOT NULL, reason TEXT NOT NULL,
        expires TEXT NOT NULL, expired INTEGER NOT NULL, last_seq BIGINT NOT NULL,
        last_time TEXT NOT NULL)""",
    """CREATE TABLE daily_seqs (day TEXT COLLATE "C" PRIMARY KEY, first_seq BIGINT NOT NULL,
        last_seq BIGINT NOT NULL)""",
    "CREATE INDEX decisions_verdict ON decisions (verdict, seq)",
    "CREATE INDEX decisions_gate ON decisions (gate, verdict, seq)",
    "CREATE INDEX checkpoints_seq ON checkpoints (seq)",
)

_UPSERT_COUNTS = (
    "INSERT INTO daily_counts (kind, day, namespace, value, gate, verdict, n) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (kind, namespace, day, value, gate, verdict) DO UPDATE SET n = daily_counts.n + excluded.n"
)
_UPSERT_SEEN = (
    "INSERT INTO exceptions_seen (name, owner, reason, expires, expired, last_seq, last_time) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
    "reason = excluded.reason, expires = excluded.expires, expired = excluded.expired, "
    "last_seq = excluded.last_seq, last_time = excluded.last_time "
    "WHERE excluded.last_seq > exceptions_seen.last_seq"
)
_UPSERT_SEQS = (
    "INSERT INTO daily_seqs (day, first_seq, last_seq) VALUES (?, ?, ?) ON CONFLICT (day) DO UPDATE SET "
    "first_seq = CASE WHEN excluded.first_seq < daily_seqs.first_seq "
    "THEN excluded.first_seq ELSE daily_seqs.first_seq END, "
    "last_seq = CASE WHEN excluded.last_seq > daily_seqs.last_seq "
    "THEN excluded.last_seq ELSE daily_seqs.last_seq END"
)


@dataclass(frozen=True, slots=True)
class _DayTest:
    """Whether a day (YYYY-MM-DD) is one of the days `seq_bounds` counts for `since` <= time < `until`."""

    since: str | None
    until: str | None

    def far_in_time(self, rows: list[tuple[int, str]], outermost: int) -> bool:
        """Whether `rows[outermost]`, the one furthest from the span, is further from the range in time
        than any two of `rows` (seq, time; in seq order; the span's end and records outside the range)
        are out of order. A record of the range beyond it would have been written by a clock that
        far off its own, more than any of `rows` show."""
        read = [_instant(t) for _, t in rows]
        times = [t for t in read if t is not None]
        if len(times) < len(read):  # an altered time column: nothing to measure by
            return False
        skew = dt.timedelta(0)
        latest = times[0]
        for t in times[1:]:
            skew = max(skew, latest - t)
            latest = max(latest, t)

        def midnight(day: str) -> dt.datetime:
            return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)

        edge = times[outermost]
        if self.since and edge < midnight(self.since[:10]):
            return midnight(self.since[:10]) - edge > skew
        if self.until:  # the range's days end where `holds` says
            end = midnight(self.until[:10])
            if self.until[10:] != "T00:00:00.000000Z":
                end += dt.timedelta(days=1)
            return edge >= end and edge - end > skew
        return False

    def holds(self, day: str) -> bool:
        if self.since and day < self.since[:10]:
            return False
        if self.until:  # exclusive: its own day counts unless it is that day's midnight
            midnight = self.until[10:] == "T00:00:00.000000Z"
            return day < self.until[:10] or (not midnight and day == self.until[:10])
        return True


def _instant(timestamp: str) -> dt.datetime | None:
    """A record's time (`canonical.timestamp` form) as a datetime; None when it is not one."""
    try:
        return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None


class Summaries:
    """The summary tables' upkeep and reads, mixed into `SqlStore` (which provides the SQL primitives)."""

    url: str  # the store's, for messages

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        raise NotImplementedError

    def _read(self) -> Any:
        raise NotImplementedError

    def _write(self) -> Any:
        raise NotImplementedError

    def _head_locked(self) -> tuple[int, str]:
        raise NotImplementedError

    # -- upkeep (inside the caller's write transaction) --------------------------

    def _save_summary(self, summary: Summary) -> None:
        if summary.counts:
            self._executemany(_UPSERT_COUNTS, [(*key, n) for key, n in summary.counts.items() if n])
        if summary.exception_terms:
            self._executemany(
                "INSERT INTO exception_terms (name, seq) VALUES (?, ?) ON CONFLICT DO NOTHING",
                summary.exception_terms,
            )
        if summary.seen:
            self._executemany(_UPSERT_SEEN, list(summary.seen.values()))
        if summary.seqs:
            self._executemany(_UPSERT_SEQS, [(day, lo, hi) for day, (lo, hi) in summary.seqs.items()])

    def _summarize_rows(self, where: str = "1=1", params: Sequence[Any] = ()) -> None:
        """Add the stored records matching `where` (over `decisions`) to the summaries, in chunks."""
        summary = Summary()
        rows = self._stream(
            f"SELECT seq, time, gate, verdict, record FROM decisions WHERE {where} ORDER BY seq", params
        )
        for n, (seq, time, gate, verdict, body) in enumerate(rows, start=1):
            raw = bytes(body)
            summary.add(int(seq), time, gate, verdict, raw, index_terms(json.loads(raw)))
            if n % 20_000 == 0:
                self._save_summary(summary)
                summary = Summary()
        self._save_summary(summary)

    def _prune_summaries(self, seq: int) -> None:
        """Before records up to `seq` are pruned: drop every day they touch, count those days' rest again."""
        newest = self._execute("SELECT max(time) FROM decisions WHERE seq <= ?", (seq,))[0][0]
        self._execute("DELETE FROM exception_terms WHERE seq <= ?", (seq,))
        if newest is None:
            return
        day = str(newest)[:10]  # records are in time order only roughly: the latest day any of them has
        self._execute("DELETE FROM daily_counts WHERE day <= ?", (day,))
        self._execute("DELETE FROM daily_seqs WHERE day <= ?", (day,))
        self._summarize_rows("time < ? AND seq > ?", (f"{day}T{_TOP}", seq))

    def rebuild_summaries(self) -> None:
        """Compute the summary tables again from the records (after a restore, or to repair them)."""
        with self._write():
            for table in ("daily_counts", "daily_seqs", "exception_terms", "exceptions_seen"):
                self._execute(f"DELETE FROM {table}")
            self._summarize_rows()

    # -- reads ----------------------------------------------------------------------

    def summaries_behind(self) -> bool:
        """Whether the summaries fail to account for every record the log holds (a few indexed reads).

        They cover the records when they count as many decisions as the log
        holds (the head's position less the last pruned one) and their last
        day ends at the head. A writer of an older trustgate appending after
        another migrated the log leaves its records out of them: then this is
        True until `rebuild_summaries()`, and the UI counts records instead.

        Raises:
            InconsistentLogError: the chain head or a prune checkpoint's position was altered.
            SummaryAlteredError: a summary holds what no append writes there (a count or
                position that is not an integer).
        """
        with self._read():
            head = self._head_locked()[0]
            pruned = self._execute("SELECT coalesce(max(seq), 0) FROM checkpoints WHERE kind = 'prune'")[0][0]
            counted = self._execute(
                "SELECT coalesce(sum(n), 0) FROM daily_counts WHERE kind = '' AND namespace = ''"
            )[0][0]
            last = self._execute("SELECT coalesce(max(last_seq), 0) FROM daily_seqs")[0][0]
        if type(pruned) is not int:
            raise InconsistentLogError(
                f"the log is inconsistent: a prune checkpoint's seq column holds {stored_type(pruned)}",
                hint="run `trustgate log verify`, which names what was altered",
            )
        # PostgreSQL sums BIGINTs to a NUMERIC; SQLite to a real number when a row holds another type.
        if isinstance(counted, Decimal) and counted == counted.to_integral_value():
            counted = int(counted)
        if type(counted) is not int:
            raise _altered("daily_counts", "n", counted, "a count")
        last = _position(last, "daily_seqs", "last_seq")
        records = head - pruned
        return counted != records or (records > 0 and last != head)

    def day_counts(self, days: DayRange) -> list[tuple[str, str, str, int]]:
        """Decisions per (day, gate, verdict) in the range, by day.

        Raises:
            SummaryAlteredError: a day is not a date.
        """
        where, params = days.where()
        with self._read():
            rows = self._execute(
                f"SELECT day, gate, verdict, sum(n) FROM daily_counts WHERE {where} "
                "GROUP BY day, gate, verdict ORDER BY day, gate, verdict",
                ["", *params],
            )
        return [(_day(r[0], "daily_counts"), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    def top_values(self, kind: str, days: DayRange, *, top: int = 10) -> list[tuple[str, int]]:
        """The `top` values of one summary kind in the range, most frequent first (ties by value)."""
        where, params = days.where()
        with self._read():
            rows = self._execute(
                f"SELECT value, sum(n) AS total FROM daily_counts WHERE {where} "
                f"GROUP BY value ORDER BY total DESC, value LIMIT {int(top)}",
                [kind, *params],
            )
        return [(str(r[0]), int(r[1])) for r in rows]

    def exceptions_seen(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The newest record's view of each exception (or of `names`): owner, reason, expiry, last use.

        Raises:
            SummaryAlteredError: a column holds another type.
        """
        sql = "SELECT name, owner, reason, expires, expired, last_seq, last_time FROM exceptions_seen"
        with self._read():
            rows = self._execute(sql + " ORDER BY name")
        wanted = set(names) if names is not None else None
        out = []
        for r in rows:
            for i, column in enumerate(
                ("name", "owner", "reason", "expires", "expired", "last_seq", "last_time")
            ):
                if type(r[i]) is not (int if i in (4, 5) else str):
                    raise _altered("exceptions_seen", column, r[i], "an integer" if i in (4, 5) else "text")
            if wanted is None or r[0] in wanted:
                out.append(
                    {
                        "name": r[0],
                        "owner": r[1],
                        "reason": r[2],
                        "expires": r[3],
                        "expired": bool(r[4]),
                        "last_seq": r[5],
                        "last_time": r[6],
                    }
                )
        return out

    def seq_bounds(self, since: str | None, until: str | None) -> tuple[int, int] | None:
        """Chain positions that can hold records with `since` <= time < `until` (timestamps), inclusive.

        Exact bounds, not estimates: every record of a day lies between that
        day's first and last position, whatever order records were written in.
        None when no record can match.

        Raises:
            SummaryAlteredError: a bound is not a chain position.
        """
        parts, params = [], []
        if since:
            parts.append("day >= ?")
            params.append(since[:10])
        if until:
            # `until` is exclusive: its own day can hold earlier times, unless it is that day's midnight.
            parts.append("day < ?" if until[10:] == "T00:00:00.000000Z" else "day <= ?")
            params.append(until[:10])
        where = " AND ".join(parts) or "1=1"
        with self._read():
            row = self._execute(f"SELECT min(first_seq), max(last_seq) FROM daily_seqs WHERE {where}", params)
        if not row or row[0][0] is None:
            return None
        return _position(row[0][0], "daily_seqs", "first_seq"), _position(row[0][1], "daily_seqs", "last_seq")

    def seq_bounds_problem(self, since: str | None, until: str | None, span: tuple[int, int]) -> str | None:
        """Why `span` (`seq_bounds`) cannot be the range's positions, by the records at and beside it.

        The summaries carry no signature, and a `daily_seqs` row edited to
        start a day later hides that day's first records from every page
        filtered by time. The records at the span's ends must lie on the
        range's days and the SPAN_CHECK_RECORDS before its start and after
        its end (where there are any) on other days. Records written out of
        time order (writers whose clocks differ near midnight) could put a
        record of the range further out, behind a shifted bound: so the
        outermost record read must be further from the range, in time, than
        the records read are out of order among themselves (their largest
        inversion): a record of the range beyond it would then come from a
        clock more off than any they show. Else twice as many are read, up
        to SPAN_CHECK_MAX, and then the span is refused as not checkable. A
        few reads by position (one per end when the log is in time order),
        where `log verify` checks every row. What it cannot see: a record
        written by a clock more off than any of those read around it show.
        None when the span holds.
        """
        lo, hi = span
        days = _DayTest(since, until)
        width = SPAN_CHECK_RECORDS
        sql = "SELECT seq, time FROM decisions WHERE seq >= ? AND seq <= ? ORDER BY seq"
        while True:
            with self._read():
                before = [(int(r[0]), str(r[1])) for r in self._execute(sql, (lo - width, lo))]
                after = [(int(r[0]), str(r[1])) for r in self._execute(sql, (hi, hi + width))]
            time_at = dict(before + after)
            for seq in (lo, hi):
                if seq not in time_at or not days.holds(time_at[seq][:10]):
                    return f"the summaries say its records span #{lo}..#{hi}, but #{seq} is not one of them"
            beside = [s for s, _ in reversed(before) if s < lo] + [s for s, _ in after if s > hi]
            for seq in beside:  # nearest first
                if days.holds(time_at[seq][:10]):
                    return f"the summaries say its records span #{lo}..#{hi}, but #{seq} is one of them too"
            # All read when fewer came back (the log's start or end): nothing further can hide.
            unsure = [
                rows
                for rows, complete, outermost in (
                    (before, len(before) <= width, 0),
                    (after, len(after) <= width, -1),
                )
                if not complete and not days.far_in_time(rows, outermost)
            ]
            if not unsure:
                return None
            if width >= SPAN_CHECK_MAX:
                rows = unsure[0]
                return (
                    f"records #{rows[0][0]}..#{rows[-1][0]} beside the span #{lo}..#{hi} the summaries "
                    "give are out of time order by more than they reach beyond the range, so it cannot be "
                    "checked from them"
                )
            width *= 2

    def resolved(self, filters: Any) -> Any:
        """A store `Filters` as the store reads it (`SqlStore.resolved`)."""
        return filters

    def terms_upto(self, alternatives: Sequence[tuple[str, str, bool]], cap: int) -> int:
        """Index entries of (kind, value or value prefix) alternatives, counted up to `cap` each."""
        total = 0
        with self._read():
            for kind, value, prefix in alternatives:
                condition, params = term_match(kind, value, prefix)
                entries = f"SELECT 1 FROM terms WHERE kind = ? AND {condition} LIMIT {int(cap)}"
                rows = self._execute(f"SELECT count(*) FROM ({entries}) t", [kind, *params])
                total += int(rows[0][0])
        return total

    def exceptions_upto(self, names: Sequence[str], cap: int) -> int:
        """Records applying each exception (`name*`: a prefix), counted up to `cap` each."""
        total = 0
        with self._read():
            for pattern in names:
                prefix = pattern.endswith("*")
                name = pattern[:-1] if prefix else pattern
                condition = "name >= ? AND name < ?" if prefix else "name = ?"
                some = f"SELECT 1 FROM exception_terms WHERE {condition} LIMIT {int(cap)}"
                rows = self._execute(
                    f"SELECT count(*) FROM ({some}) t",
                    [name, name + _TOP] if prefix else [name],
                )
                total += int(rows[0][0])
        return total

    def live_day_counts(self, filters: Any) -> list[tuple[str, str, str, int]]:
        """`day_counts` counted from the records a store `Filters` selects (for filters not summarized)."""
        where, params = self.resolved(filters).where()
        with self._read():
            rows = self._execute(
                "SELECT substr(d.time, 1, 10) AS day, d.gate, d.verdict, count(*) FROM decisions d "
                f"WHERE {where} GROUP BY day, d.gate, d.verdict ORDER BY day, d.gate, d.verdict",
                params,
            )
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    def nth_newest(self, filters: Any, n: int) -> int | None:
        """The position of the `n`th newest record a store `Filters` selects; None when fewer match."""
        where, params = self.resolved(filters).where()
        with self._read():
            sql = f"SELECT d.seq FROM decisions d WHERE {where} ORDER BY d.seq DESC"
            rows = self._execute(f"{sql} LIMIT 1 OFFSET {int(n) - 1}", params)
        return int(rows[0][0]) if rows else None

    def live_top(self, kind: str, filters: Any, *, top: int = 10) -> list[tuple[str, int]]:
        """The `top` index values of one kind among the records a store `Filters` selects."""
        where, params = self.resolved(filters).where()
        with self._read():
            rows = self._execute(
                f"SELECT t.value, count(*) AS n FROM terms t WHERE t.kind = ? AND t.seq IN "
                f"(SELECT d.seq FROM decisions d WHERE {where}) GROUP BY t.value ORDER BY n DESC, t.value "
                f"LIMIT {int(top)}",
                [kind, *params],
            )
        return [(str(r[0]), int(r[1])) for r in rows]

    def checkpoint_count(self) -> int:
        with self._read():
            return int(self._execute("SELECT count(*) FROM checkpoints")[0][0])


SHOWN_DIFFERENCES = 5  # differences named per summary table; the rest are counted


class SummaryCheck:
    """`log verify`'s check of the summary tables: recomputed from the rows it reads, then compared.

    The UI selects records through the summaries (`daily_seqs` bounds every
    time-filtered list, `exception_terms` answers the `exception` filter), so
    a summary that disagrees with the records can hide records from an
    auditor: verification treats it like an altered index. Counting rides on
    the verifier's one pass (`rows`), a few microseconds per record.
    """

    def __init__(self) -> None:
        self.summary = Summary()
        self.complete = False  # every row was read: only then are the tables compared

    def rows(self, rows: Iterable[Row]) -> Iterator[Row]:
        """Pass `rows` (`SqlStore.verify_rows`) through, counting each into the recomputed summaries."""
        summary, seqs = self.summary, self.summary.seqs
        # Records without exceptions are counted by (day, gate, verdict, counted terms) first and
        # expanded into table rows at the end: most records share those with many others.
        alike: Counter[tuple[str, str, str, tuple[str, ...]]] = Counter()
        source = iter(rows)
        try:
            for row in source:
                seq, time, gate, verdict, body, joined = row[0], row[2], row[3], row[4], row[5], row[8]
                if not (
                    type(time) is type(gate) is type(verdict) is str and type(joined) in (str, type(None))
                ):
                    yield row  # a column of another type: the verifier reports the record as altered
                    continue
                if _has_exceptions(body):
                    summary.add(seq, time, gate, verdict, body, _terms(joined))
                else:
                    day = time[:10]
                    bounds = seqs.get(day)
                    if bounds is None:
                        seqs[day] = [seq, seq]
                    elif seq < bounds[0]:
                        bounds[0] = seq
                    elif seq > bounds[1]:
                        bounds[1] = seq
                    counted = (
                        tuple(i for i in joined.split("\x1e") if i.startswith(_COUNTED)) if joined else ()
                    )
                    alike[(day, gate, verdict, counted)] += 1
                yield row
            for (day, gate, verdict, counted), n in alike.items():
                summary.count(day, gate, verdict, _terms("\x1e".join(counted)), times=n)
            self.complete = True
        finally:
            close = getattr(source, "close", None)
            if callable(close):
                close()

    def problems(self, store: Summaries, *, pruned: int) -> list[Problem]:
        """Differences between the stored summary tables and the recomputed ones, one `Problem` per table.

        Args:
            store: the store whose records were just read (in the same snapshot).
            pruned: the position of the last pruned record (0: none): `exceptions_seen` may still
                describe exceptions only pruned records applied.
        """
        if not self.complete:
            return []
        found = self.summary
        problems: list[Problem] = []
        with store._read():
            seqs = {
                str(r[0]): (_number(r[1]), _number(r[2]))
                for r in store._execute("SELECT day, first_seq, last_seq FROM daily_seqs")
            }
            wanted_seqs = {day: (lo, hi) for day, (lo, hi) in found.seqs.items()}
            problems += _compare(
                "daily_seqs",
                seqs,
                wanted_seqs,
                lambda day, v: f"day {day}: " + (f"#{v[0]}..#{v[1]}" if v else "no row"),
                lambda day, v: f"#{v[0]}..#{v[1]}" if v else "no records",
                lambda day: _seq((wanted_seqs.get(day) or seqs.get(day) or (0, 0))[0]),
            )
            terms = {
                (str(r[0]), _number(r[1])) for r in store._execute("SELECT name, seq FROM exception_terms")
            }
            wanted_terms = set(found.exception_terms)
            problems += _compare(
                "exception_terms",
                {t: True for t in terms},
                {t: True for t in wanted_terms},
                lambda t, v: f"exception {t[0]!r} at #{t[1]}: " + ("a row" if v else "no row"),
                lambda t, v: "applied there" if v else "not applied there",
                lambda t: _seq(t[1]),
            )
            counts = {
                tuple(str(x) for x in r[:6]): _number(r[6])
                for r in store._execute(
                    "SELECT kind, day, namespace, value, gate, verdict, n FROM daily_counts WHERE n <> 0"
                )
            }
            wanted_counts = {k: n for k, n in found.counts.items() if n}
            problems += _compare(
                "daily_counts",
                counts,
                wanted_counts,
                lambda k, v: f"day {k[1]} {_describe_count(k)}: {v or 0}",
                lambda k, v: str(v or 0),
                lambda k: (found.seqs.get(k[1]) or [0])[0],
            )
            seen = {
                str(r[0]): tuple(r)
                for r in store._execute(
                    "SELECT name, owner, reason, expires, expired, last_seq, last_time FROM exceptions_seen"
                )
            }
            # Exceptions only pruned records applied keep the row the last of them left.
            kept = {
                name: row
                for name, row in seen.items()
                if name in found.seen or _seq(_number(row[5])) > pruned
            }
            problems += _compare(
                "exceptions_seen",
                kept,
                found.seen,
                lambda name, v: f"exception {name!r}: " + (_seen(v) if v else "no row"),
                lambda name, v: _seen(v) if v else "no record applying it",
                lambda name: _seq(_number((found.seen.get(name) or kept.get(name) or (0,) * 6)[5])),
            )
        return problems


def _number(value: Any) -> int | str:
    """A stored count or position as an int; anything else as its repr, which then differs from the
    recomputed value and is reported like any altered row (not a crash).

    Only an integer is one (PostgreSQL's columns are BIGINT and INTEGER): SQLite's columns are
    typeless, and `int()` reads a BLOB b'3' as 3, which SQL never finds equal to position 3: an
    `exception_terms` row so stored hid #3 from the `exception` filter and read as its row here.
    """
    return value if type(value) is int else repr(value)


def _seq(value: int | str) -> int:
    return value if isinstance(value, int) else 0


_COUNTED = tuple(f"{kind}\x1f" for kind in SUMMARY_KINDS)


def _terms(joined: str | None) -> list[tuple[str, str]]:
    """A row's index items (`chain.Row`: escaped, joined) as (kind, value) pairs."""
    return split_index(joined)


def _order(key: Any) -> Any:
    """A sort key for a table's keys, whose positions are ints, or reprs where altered (never compared)."""
    if isinstance(key, tuple):
        return tuple(_order(k) for k in key)
    return (0, key, "") if type(key) is int else (1, 0, str(key))


def _seen(row: tuple[Any, ...]) -> str:
    expired = ", expired" if row[4] else ""
    return f"owner {row[1]!r}, reason {row[2]!r}, expires {row[3]!r}{expired}, as of #{row[5]}"


def _describe_count(key: tuple[str, ...]) -> str:
    kind, _, namespace, value, gate, verdict = key
    what = f"{kind} {value!r}" if kind else "decisions"
    return f"{what} ({gate}, {verdict}{', namespace ' + repr(namespace) if namespace else ''})"


def _compare(
    table: str,
    stored: dict[Any, Any],
    wanted: dict[Any, Any],
    says: Any,
    records: Any,
    seq_of: Any,
) -> list[Problem]:
    """One Problem naming up to SHOWN_DIFFERENCES keys where `stored` (the table) differs from `wanted`."""
    differ = sorted((k for k in stored.keys() | wanted.keys() if stored.get(k) != wanted.get(k)), key=_order)
    if not differ:
        return []
    shown = "; ".join(
        f"{says(k, stored.get(k))} (the records: {records(k, wanted.get(k))})"
        for k in differ[:SHOWN_DIFFERENCES]
    )
    more = f"; and {len(differ) - SHOWN_DIFFERENCES} more" if len(differ) > SHOWN_DIFFERENCES else ""
    return [
        Problem(
            "summary",
            min(seq_of(k) for k in differ),
            "",
            f"the summary table {table} disagrees with the records, which the UI would select by it: "
            f"{shown}{more} (altered, or written by an older trustgate; the records themselves are "
            "checked: `trustgate log rebuild-summaries` recomputes the table)",
        )
    ]
