"""The summary tables (schema 3) on real SQLite and PostgreSQL: kept by appends, rebuilt, pruned, queried."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

import pytest
from decision_records import MakeRecord

from trustgate.decisions import summary
from trustgate.decisions.canonical import timestamp
from trustgate.decisions.chain import CheckpointSigner
from trustgate.decisions.log import Store, open_store, prepare
from trustgate.decisions.store import Filters, parse_time
from trustgate.decisions.summary import DayRange

START = dt.datetime(2026, 3, 1, 22, 0, tzinfo=dt.UTC)
EXCEPTIONS = {
    "legacy-root": ("payments", "vendor image", "2026-04-01", False),
    "legacy-hostpath": ("data", "scratch space", "2026-03-20", False),
    "old-scanner": ("security", "migration", "2026-02-01", True),
}


def _records(make_record: MakeRecord, n: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """Records over five days, some out of time order, some applying exceptions (expired or not)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        moment = START + dt.timedelta(minutes=17 * i + rng.randrange(-90, 90))  # writers race: not sorted
        extra: dict[str, Any] = {"time": timestamp(moment), "verdict": rng.choice(["allow", "deny", "warn"])}
        if rng.random() < 0.3:
            name = rng.choice(sorted(EXCEPTIONS))
            owner, reason, expires, expired = EXCEPTIONS[name]
            exception = {"name": name, "owner": owner, "expires": expires, "expired": expired}
            extra["findings"] = [
                {
                    "rule": f"rule-{i % 3}",
                    "severity": "info",
                    "message": "m",
                    "object": 0,
                    "exception": exception,
                }
            ]
            extra["exceptions"] = [{**exception, "reason": f"{reason} #{i}", "findings": 1}]
        out.append(make_record(i, **extra))
    return out


def _append(url: str, records: list[dict[str, Any]], batch: int = 13) -> None:
    store = open_store(url)
    try:
        for lo in range(0, len(records), batch):
            store.append([prepare(r) for r in records[lo : lo + batch]])
    finally:
        store.close()


def _expected(records: list[dict[str, Any]], first_seq: int = 1) -> dict[str, Any]:
    """What the summaries must say, computed from the records alone."""
    days: Counter[tuple[str, str, str]] = Counter()
    namespaces: Counter[str] = Counter()
    applied: dict[str, set[int]] = {}
    waived: Counter[str] = Counter()
    for seq, r in enumerate(records, start=first_seq):
        days[(r["time"][:10], r["gate"], r["verdict"])] += 1
        namespaces.update({o["namespace"] for o in r["subject"]["objects"]})
        for e in r.get("exceptions") or ():
            applied.setdefault(e["name"], set()).add(seq)
        for f in r["findings"]:
            if f.get("exception") and not f["exception"]["expired"]:
                waived[f"{f['rule']}\x1f{f['exception']['name']}"] += 1
    return {"days": days, "namespaces": namespaces, "applied": applied, "waived": waived}


def _actual(store: Store, days: DayRange | None = None) -> dict[str, Any]:
    days = days or DayRange()
    applied = {}
    for e in store.exceptions_seen():
        applied[e["name"]] = {x.seq for x in store.query(Filters(exceptions=(e["name"],)))}
    return {
        "days": Counter({(d, g, v): n for d, g, v, n in store.day_counts(days)}),
        "namespaces": Counter(dict(store.top_values("namespace", days, top=1000))),
        "applied": applied,
        "waived": Counter(dict(store.top_values("waived", days, top=1000))),
    }


def test_appends_keep_the_summaries_equal_to_the_records(store_url: str, make_record: MakeRecord) -> None:
    records = _records(make_record, 300)
    _append(store_url, records)
    store = open_store(store_url, create=False)
    try:
        assert _actual(store) == _expected(records)
        # A day range and a verdict: the same as counting the records in them.
        subset = [
            r for r in records if "2026-03-02" <= r["time"][:10] < "2026-03-04" and r["verdict"] == "deny"
        ]
        asked = DayRange(since="2026-03-02", until="2026-03-04", verdicts=("deny",))
        assert _actual(store, asked)["days"] == _expected(subset)["days"]
        # The newest record applying an exception is the view kept of it.
        seen = {e["name"]: e for e in store.exceptions_seen()}
        for name in seen:
            last = max(
                i for i, r in enumerate(records) if any(e["name"] == name for e in r.get("exceptions") or ())
            )
            assert seen[name]["last_seq"] == last + 1
            assert seen[name]["reason"].endswith(f"#{last}")
            assert seen[name]["expired"] is EXCEPTIONS[name][3]
    finally:
        store.close()


def test_exception_filter_matches_names_and_prefixes(store_url: str, make_record: MakeRecord) -> None:
    records = _records(make_record, 120)
    _append(store_url, records)
    store = open_store(store_url, create=False)
    try:
        legacy = {
            i + 1
            for i, r in enumerate(records)
            if any(e["name"].startswith("legacy-") for e in r.get("exceptions") or ())
        }
        assert legacy and {e.seq for e in store.query(Filters(exceptions=("legacy-*",)))} == legacy
        denied = {e.seq for e in store.query(Filters(exceptions=("legacy-*",), verdicts=("deny",)))}
        assert denied == {s for s in legacy if records[s - 1]["verdict"] == "deny"}
        assert store.count(Filters(exceptions=("nothing",))) == 0
    finally:
        store.close()


def test_seq_bounds_hold_every_record_of_the_range(store_url: str, make_record: MakeRecord) -> None:
    records = _records(make_record, 300)
    _append(store_url, records)
    store = open_store(store_url, create=False)
    try:
        for since, until in [
            ("2026-03-02", "2026-03-03"),
            ("2026-03-02T12:00", None),
            (None, "2026-03-01T23:30"),
            ("2026-03-03T05:00", "2026-03-03T06:00"),
        ]:
            lo_t = parse_time(since) if since else None
            hi_t = parse_time(until) if until else None
            inside = [
                i + 1
                for i, r in enumerate(records)
                if (lo_t is None or r["time"] >= lo_t) and (hi_t is None or r["time"] < hi_t)
            ]
            bounds = store.seq_bounds(lo_t, hi_t)
            assert bounds is not None
            assert bounds[0] <= min(inside) and max(inside) <= bounds[1]
        assert store.seq_bounds(parse_time("2027-01-01"), None) is None
    finally:
        store.close()


def test_a_log_from_before_the_summaries_gets_them_on_open(sqlite_url: str, make_record: MakeRecord) -> None:
    """Schema 2 -> 3: the migration computes the summaries from the records already there."""
    records = _records(make_record, 200)
    _append(sqlite_url, records)
    store = open_store(sqlite_url)
    try:
        with store._write():  # back to schema 2, as a log written by the previous release is
            for table in ("daily_counts", "daily_seqs", "exception_terms", "exceptions_seen"):
                store._execute(f"DROP TABLE {table}")
            for index in ("decisions_verdict", "decisions_gate", "checkpoints_seq", "terms_image_cased"):
                store._execute(f"DROP INDEX {index}")
            store._execute("DELETE FROM schema_migrations WHERE version >= 3")
    finally:
        store.close()
    store = open_store(sqlite_url, create=False)
    try:
        assert _actual(store) == _expected(records)
        assert store.seq_bounds(None, None) == (1, 200)
    finally:
        store.close()


def test_rebuild_gives_what_the_appends_kept(store_url: str, make_record: MakeRecord) -> None:
    records = _records(make_record, 150)
    _append(store_url, records)
    store = open_store(store_url, create=False)
    try:
        kept = _actual(store), store.exceptions_seen(), store.seq_bounds(None, None)
        store.rebuild_summaries()
        assert (_actual(store), store.exceptions_seen(), store.seq_bounds(None, None)) == kept
    finally:
        store.close()


def test_prune_drops_the_pruned_days_from_the_summaries(store_url: str, make_record: MakeRecord) -> None:
    records = _records(make_record, 300)
    _append(store_url, records)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signer = CheckpointSigner(private_key=Ed25519PrivateKey.generate())
    store = open_store(store_url, create=False)
    try:
        removed = store.prune(
            parse_time("2026-03-03T10:00"), lambda s, h: signer.sign(seq=s, hash=h, time="t", kind="prune")
        )
        remaining = {e.seq for e in store.entries()}
        assert 0 < removed.removed < 300 and len(remaining) == 300 - removed.removed
        first = min(remaining)
        assert _actual(store) == _expected(records[first - 1 :], first_seq=first)
    finally:
        store.close()


def test_checkpoint_lookups_match_a_scan_of_every_checkpoint(
    sqlite_url: str, make_record: MakeRecord
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signer = CheckpointSigner(private_key=Ed25519PrivateKey.generate())
    store = open_store(sqlite_url)
    try:
        for i in range(6):
            (entry,) = store.append([prepare(make_record(i))])
            root = store.root(entry.seq) if i % 2 else None  # every other one signs a tree head
            store.add_checkpoint(
                signer.sign(seq=entry.seq, hash=entry.hash, time=entry.time, kind="periodic", root=root)
            )
        every = store.checkpoints()
        for seq in range(8):  # those with a tree head of at least seq records, the largest tree first
            expected = sorted((c for c in every if c.note and c.seq >= seq), key=lambda c: -c.seq)
            assert list(store.tree_checkpoints(seq)) == expected
        assert store.checkpoint_count() == 6
    finally:
        store.close()


def test_capped_counts_of_index_entries(store_url: str, make_record: MakeRecord) -> None:
    records = _records(make_record, 140)
    _append(store_url, records)
    store = open_store(store_url, create=False)
    try:
        team1 = sum(1 for r in records if r["subject"]["objects"][0]["namespace"] == "team-1")
        assert store.terms_upto([("namespace", "team-1", False)], 1000) == team1
        assert store.terms_upto([("namespace", "team-1", False)], 3) == 3
        assert store.terms_upto([("namespace", "team-", True)], 1000) == 140  # every record has one
        assert store.terms_upto([("namespace", "team-1", False), ("namespace", "team-2", False)], 2) == 4
        legacy = sum(1 for r in records for e in r.get("exceptions") or () if e["name"].startswith("legacy-"))
        assert store.exceptions_upto(["legacy-*"], 1000) == legacy > 3
        assert store.exceptions_upto(["legacy-*"], 3) == 3
        assert store.exceptions_upto(["nothing"], 1000) == 0
    finally:
        store.close()


def test_a_time_ranges_positions_are_checked_against_the_records_at_and_beside_them(
    store_url: str, make_record: MakeRecord
) -> None:
    records = _records(make_record, 500)  # several days, some records out of time order
    _append(store_url, records)
    store = open_store(store_url, create=False)
    try:
        days = sorted({r["time"][:10] for r in records})
        bounds = [None, *(f"{d}T00:00:00.000000Z" for d in days), f"{days[2]}T12:00:00.000000Z"]
        for since in bounds:
            for until in bounds:
                span = store.seq_bounds(since, until)
                if span is not None:  # the genuine summaries always hold
                    assert store.seq_bounds_problem(since, until, span) is None, (since, until)
        since = f"{days[2]}T00:00:00.000000Z"
        span = store.seq_bounds(since, None)
        assert span is not None
        with store._write():  # the range's first record hidden from every page filtered by time
            store._execute("UPDATE daily_seqs SET first_seq = first_seq + 1 WHERE first_seq = ?", (span[0],))
        narrowed = store.seq_bounds(since, None)
        assert narrowed == (span[0] + 1, span[1])
        problem = store.seq_bounds_problem(since, None, narrowed)
        assert problem is not None and problem.startswith(
            f"the summaries say its records span #{span[0] + 1}..#{span[1]}, but #"
        )
    finally:
        store.close()


def _written(url: str, make_record: MakeRecord, times: list[str]) -> Store:
    store = open_store(url)
    store.append([prepare(make_record(n, time=t)) for n, t in enumerate(times)])
    return store


def _moved(store: Store, day: str, first_seq: int) -> tuple[int, int]:
    with store._write():  # the operator edits the summary row
        store._execute("UPDATE daily_seqs SET first_seq = ? WHERE day = ?", (first_seq, day))
    span = store.seq_bounds(parse_time(day), None)
    assert span is not None and span[0] == first_seq
    return span


def test_a_bound_moved_past_records_written_out_of_time_order_near_midnight_is_found(
    store_url: str, make_record: MakeRecord
) -> None:
    # D-1, D-1, D (the one to hide), D-1 (a writer a few seconds behind), D, D
    times = ["2026-11-09T23:59:40", "2026-11-09T23:59:50", "2026-11-10T00:00:02", "2026-11-09T23:59:58"]
    times += ["2026-11-10T00:00:05", "2026-11-10T00:01:00"]
    store = _written(store_url, make_record, [f"{t}.000000Z" for t in times])
    try:
        since = parse_time("2026-11-10")
        span = store.seq_bounds(since, None)
        assert span == (3, 6) and store.seq_bounds_problem(since, None, span) is None
        problem = store.seq_bounds_problem(since, None, _moved(store, "2026-11-10", 5))
        assert problem == "the summaries say its records span #5..#6, but #3 is one of them too"
    finally:
        store.close()


def _skewed(*, hidden: bool) -> list[str]:
    """A record of D-1, (`hidden`: one of D,) 300 of D-1 by writers whose clocks differ by 9.9 s, 5 of D."""
    midnight = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
    times = [midnight - dt.timedelta(hours=1)] + ([midnight + dt.timedelta(seconds=2)] if hidden else [])
    times += [midnight - dt.timedelta(seconds=0.1 if i % 2 else 10 - (i % 7) / 10) for i in range(300)]
    times += [midnight + dt.timedelta(seconds=10 + i) for i in range(5)]
    return [timestamp(t) for t in times]


def test_records_out_of_time_order_are_read_further_until_they_reach_beyond_the_range(
    store_url: str, make_record: MakeRecord
) -> None:
    since = parse_time("2026-11-10")
    store = _written(store_url, make_record, _skewed(hidden=False))
    try:  # the 64 records before #302 are out of order by 9.9 s, all within 10 s of D: read further
        span = store.seq_bounds(since, None)
        assert span == (302, 306) and store.seq_bounds_problem(since, None, span) is None
    finally:
        store.close()


def test_a_bound_moved_far_past_records_out_of_time_order_is_found_or_refused(
    store_url: str, make_record: MakeRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    since = parse_time("2026-11-10")
    store = _written(store_url, make_record, _skewed(hidden=True))
    try:
        span = _moved(store, "2026-11-10", 303)  # #2 hidden behind 300 records of D-1
        problem = store.seq_bounds_problem(since, None, span)
        assert problem == "the summaries say its records span #303..#307, but #2 is one of them too"
        monkeypatch.setattr(summary, "SPAN_CHECK_MAX", summary.SPAN_CHECK_RECORDS)  # not read that far
        problem = store.seq_bounds_problem(since, None, span)
        assert problem is not None and problem.startswith("records #239..#303 beside the span #303..#307")
        assert problem.endswith("are out of time order by more than they reach beyond the range, so it "
                                "cannot be checked from them")  # fmt: skip
    finally:
        store.close()
