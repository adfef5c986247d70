"""`log verify` checks the summary tables, and the UI does not trust summaries that lag the log.

The summaries select records for the auditor (`daily_seqs` bounds time-filtered
lists, `exception_terms` answers `exception=`): a row altered there hides
records, so verification must see it; and a writer of an older trustgate that
appends without them must not make its records vanish from the UI.
Real SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from decision_records import MakeRecord

from trustgate.decisions.canonical import timestamp
from trustgate.decisions.chain import CheckpointSigner, Report, Verifier
from trustgate.decisions.log import Store, open_store, prepare
from trustgate.decisions.store import Filters, parse_time
from trustgate.ui import query

START = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
EXCEPTION = {"name": "legacy-root", "owner": "payments", "expires": "2026-04-01", "expired": False}


def _record(make_record: MakeRecord, i: int, *, exception: bool = False, **extra: Any) -> dict[str, Any]:
    """Record i: three a day (so #4..#6 are 2026-03-02), even ones applying `legacy-root` when asked."""
    moment = START + dt.timedelta(days=i // 3, minutes=i % 3)
    if exception:
        extra["verdict"] = "allow"
        extra["findings"] = [
            {"rule": "r", "severity": "info", "message": "m", "object": 0, "exception": EXCEPTION}
        ]
        extra["exceptions"] = [{**EXCEPTION, "reason": f"vendor #{i}", "findings": 1}]
    return make_record(i, time=timestamp(moment), **extra)


@pytest.fixture
def store(store_url: str, make_record: MakeRecord) -> Iterator[Store]:
    """Nine records over three days; #1, #3, #7, #9 apply `legacy-root`; #5 is the only deny."""
    s = open_store(store_url)
    records = [_record(make_record, i, exception=i % 2 == 0 and i != 4) for i in range(9)]
    s.append([prepare(r) for r in records])
    try:
        yield s
    finally:
        s.close()


def _verify(s: Store) -> Report:
    with s.snapshot():
        return s.verify(Verifier(checkpoints=s.checkpoints(), tree=s.stored_tree()))


def _tamper(s: Store, sql: str, params: tuple[Any, ...] = ()) -> None:
    with s._write():
        s._execute(sql, params)


def _summary_problems(report: Report) -> list[str]:
    return [p.message for p in report.problems if p.kind == "summary"]


def test_summaries_kept_by_appends_and_a_prune_verify_intact(store: Store) -> None:
    signer = CheckpointSigner(private_key=Ed25519PrivateKey.generate())
    assert _verify(store).ok
    store.prune(
        parse_time("2026-03-02T10:01"), lambda s, h: signer.sign(seq=s, hash=h, time="t", kind="prune")
    )
    # #1..#4 go (a day and a half: the prune recounts 2026-03-02 from #5, #6).
    report = _verify(store)
    assert report.ok, report.problems
    assert report.first_seq == 5


def test_a_day_bound_moved_past_a_deny_is_reported(store: Store) -> None:
    """The review's seqbounds.py: daily_seqs says 2026-03-02 starts at #6, hiding the deny #5."""
    assert [e.seq for e in query.matching(store, Filters(verdicts=("deny",)))] == [5]
    _tamper(store, "UPDATE daily_seqs SET first_seq = 6 WHERE day = '2026-03-02'")
    report = _verify(store)
    assert not report.ok
    [message] = _summary_problems(report)
    assert "daily_seqs" in message and "day 2026-03-02: #6..#6 (the records: #4..#6)" in message


def test_a_deleted_exception_terms_row_is_reported(store: Store) -> None:
    """The review's exc.py: without its exception_terms row, #3 drops out of `exception=legacy-root`."""
    _tamper(store, "DELETE FROM exception_terms WHERE seq = 3")
    report = _verify(store)
    assert not report.ok
    [message] = _summary_problems(report)
    assert "exception_terms" in message and "exception 'legacy-root' at #3: no row" in message
    assert report.first_problem is not None and report.first_problem.seq == 3


@pytest.mark.parametrize(
    ("sql", "table", "named"),
    [
        (
            "UPDATE daily_counts SET n = n - 1 WHERE kind = '' AND namespace = '' AND day = '2026-03-02' "
            "AND verdict = 'deny'",
            "daily_counts",
            "day 2026-03-02 decisions (",
        ),
        ("UPDATE exceptions_seen SET owner = 'nobody'", "exceptions_seen", "exception 'legacy-root'"),
        (
            "INSERT INTO exception_terms (name, seq) VALUES ('made-up', 2)",
            "exception_terms",
            "'made-up' at #2",
        ),
    ],
)
def test_other_altered_summaries_are_reported(store: Store, sql: str, table: str, named: str) -> None:
    _tamper(store, sql)
    [message] = _summary_problems(_verify(store))
    assert table in message and named in message


def test_summaries_are_not_compared_when_the_records_fail_first(store: Store) -> None:
    _tamper(store, "DELETE FROM exception_terms WHERE seq = 3")
    _tamper(store, "UPDATE decisions SET verdict = 'warn' WHERE seq = 2")
    report = _verify(store)
    assert [p.kind for p in report.problems] == ["altered"]


def test_an_older_writer_is_reported_and_not_hidden_from_the_ui(
    store_url: str, store: Store, make_record: MakeRecord
) -> None:
    """The review's oldwriter.py: a schema-2 writer keeps appending after another migrated the log."""
    assert not store.summaries_behind()
    old = open_store(store_url)
    try:
        old._save_summary = lambda summary: None  # type: ignore[method-assign]  # knows nothing of them
        old.append([prepare(_record(make_record, i, exception=True)) for i in (3, 4, 5, 9, 10)])
    finally:
        old.close()
    assert store.summaries_behind()
    store.append([prepare(_record(make_record, 11))])  # a current writer again: #15, summarised
    assert store.summaries_behind()  # the older writer's records are still missing from them
    # #10..#14 (days 2026-03-02..04): their days' bounds and the exception index lack them.
    day = query.parse_query([("since", "2026-03-02"), ("until", "2026-03-02")])
    page = query.page(store, day, before=None, after=None, limit=50)
    assert [e.seq for e in page.entries] == [12, 11, 10, 6, 5, 4] and page.behind
    applied = query.parse_query([("exception", "legacy-*")])
    page = query.page(store, applied, before=None, after=None, limit=3)
    assert [e.seq for e in page.entries] == [14, 13, 12] and page.behind
    page = query.page(store, applied, before=page.older, after=None, limit=50)
    assert [e.seq for e in page.entries] == [11, 10, 9, 7, 3, 1]
    assert [e.seq for e in query.matching(store, applied.filters)] == [1, 3, 7, 9, 10, 11, 12, 13, 14]
    report = _verify(store)
    assert {m.split(" disagrees")[0] for m in _summary_problems(report)} == {
        f"the summary table {t}" for t in ("daily_seqs", "exception_terms", "daily_counts", "exceptions_seen")
    }
    store.rebuild_summaries()
    assert not store.summaries_behind() and _verify(store).ok
    page = query.page(store, day, before=None, after=None, limit=50)
    assert [e.seq for e in page.entries] == [12, 11, 10, 6, 5, 4] and not page.behind


@pytest.mark.parametrize(("stored", "shown"), [("CAST(seq AS BLOB)", "b'3'"), ("'3x'", "'3x'")])
def test_an_exception_terms_position_of_another_type_is_reported(
    sqlite_url: str, make_record: MakeRecord, stored: str, shown: str
) -> None:
    """`int(b'3')` is 3, but SQL never finds a BLOB equal to #3: the row hid #3 from `exception=`."""
    s = open_store(sqlite_url)
    try:
        s.append([prepare(_record(make_record, i, exception=i % 2 == 0 and i != 4)) for i in range(9)])
        _tamper(s, f"UPDATE exception_terms SET seq = {stored} WHERE seq = 3")
        assert 3 not in [e.seq for e in query.matching(s, Filters(exceptions=("legacy-root",)))]
        [message] = _summary_problems(_verify(s))
        assert "exception_terms" in message and "exception 'legacy-root' at #3: no row" in message
        assert f"exception 'legacy-root' at #{shown}: a row" in message
    finally:
        s.close()
