"""The overview from the daily summaries says what counting the records says; time-ranged keyset pages."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.postgres import PostgresServer

from trustgate.decisions.canonical import timestamp, uuid7
from trustgate.decisions.log import Store, open_store, prepare
from trustgate.decisions.store import Filters, parse_time
from trustgate.ui import app as ui_app
from trustgate.ui import query as ui_query
from trustgate.ui.app import Settings, create_app
from trustgate.ui.query import page, parse_query

TODAY = dt.date(2026, 3, 20)
NAMESPACES = ["shop", "payments", "legacy"]


def _record(i: int, rng: random.Random) -> dict[str, Any]:
    moment = dt.datetime(2026, 3, 10, tzinfo=dt.UTC) + dt.timedelta(minutes=53 * i + rng.randrange(-60, 60))
    verdict = rng.choice(["allow", "allow", "deny", "warn", "error"])
    findings: list[dict[str, Any]] = []
    exceptions: list[dict[str, Any]] = []
    if verdict == "deny":
        findings.append({"rule": rng.choice(["no-priv", "limits"]), "severity": "error", "message": "m"})
    if rng.random() < 0.25:
        name, expires = rng.choice(
            [("legacy-root", "2026-04-01"), ("gone", "2026-03-01"), ("soon", "2026-03-25")]
        )
        exc = {"name": name, "owner": "o", "expires": expires, "expired": name == "gone"}
        findings.append({"rule": "run-as-root", "severity": "info", "message": "m", "exception": exc})
        exceptions.append({**exc, "reason": f"r{i}", "findings": 1})
    return {
        "schema": "trustgate.dev/decision/v1",
        "id": uuid7(int(moment.timestamp() * 1000)),
        "time": timestamp(moment),
        "gate": rng.choice(["ci", "admission", "presync"]),
        "mode": "enforce",
        "verdict": verdict,
        "subject": {"objects": [{"kind": "Pod", "namespace": rng.choice(NAMESPACES), "name": f"p{i}"}]},
        "findings": findings,
        "exceptions": exceptions,
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One log of 400 records per database, shared by the module's tests (they only read)."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("overview") / "log.db"
        out = f"sqlite:///{path}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        out = server.create_database()
    rng = random.Random(3)
    store = open_store(out)
    try:
        records = [_record(i, rng) for i in range(400)]
        for lo in range(0, len(records), 37):
            store.append([prepare(r) for r in records[lo : lo + 37]])
    finally:
        store.close()
    return out


@pytest.mark.parametrize(
    ("since", "until", "gates", "verdicts", "namespaces"),
    [
        ("2026-03-11", None, (), (), ()),
        ("2026-03-10", "2026-03-13", ("ci",), (), ()),
        ("2026-03-12", None, (), ("deny", "warn"), ()),
        (None, "2026-03-12", ("admission", "presync"), ("allow",), ()),
        ("2026-03-11", None, (), (), ("legacy",)),
        (None, "2026-03-14", ("ci", "admission"), ("deny",), ("shop",)),
    ],
)
def test_summaries_and_records_give_the_same_overview(
    url: str,
    since: str | None,
    until: str | None,
    gates: tuple[str, ...],
    verdicts: tuple[str, ...],
    namespaces: tuple[str, ...],
) -> None:
    filters = Filters(
        since=parse_time(since) if since else None,
        until=parse_time(until, end=True) if until else None,
        gates=gates,
        verdicts=verdicts,
        namespaces=namespaces,
    )
    days = ui_app._day_range(filters)
    assert days is not None  # day-aligned bounds, gate and verdict: the summaries can answer
    store: Store = open_store(url, create=False)
    try:
        summarized = ui_app._summarized(store, days, TODAY)
        counted = ui_app._counted(store, filters, TODAY)
    finally:
        store.close()
    assert summarized.counts and summarized.counts == counted.counts
    assert summarized.namespaces == counted.namespaces
    assert summarized.denied == counted.denied
    assert summarized.waived == counted.waived
    keys = ("name", "owner", "expires", "expired", "findings")
    assert [{k: e[k] for k in keys} for e in summarized.exceptions] == [
        {k: e[k] for k in keys} for e in counted.exceptions
    ]


def test_other_filters_or_a_time_of_day_are_counted_from_the_records() -> None:
    assert ui_app._day_range(Filters(since=parse_time("2026-03-11T10:00"))) is None
    assert ui_app._day_range(Filters(namespaces=("shop", "legacy"))) is None
    assert ui_app._day_range(Filters(namespaces=("sh*",))) is None
    assert ui_app._day_range(Filters(namespaces=("shop",), rules=("no-priv",))) is None
    assert ui_app._day_range(Filters(exceptions=("legacy-*",))) is None
    assert ui_app._day_range(Filters(since=parse_time("2026-03-11"), verdicts=("deny",))) is not None


@pytest.mark.parametrize(
    "params",
    [
        [("since", "2026-03-11"), ("until", "2026-03-12")],
        [("since", "2026-03-11T05:30"), ("verdict", "deny")],
        [("until", "2026-03-11T12:00")],
        [("since", "2026-03-12"), ("exception", "legacy-*")],
        [("namespace", "legacy"), ("verdict", "deny")],
        [("namespace", "sho*"), ("namespace", "payments")],
        [("namespace", "leg*"), ("verdict", "allow")],
        [("namespace", "pay*"), ("exception", "legacy-*")],
        [("exception", "gone")],
        [],
    ],
)
@pytest.mark.parametrize(
    ("window", "probe", "rare"), [(2, 0, 0.05), (2, 40, 0.05), (2, 0, 1.1), (4_096, 16_384, 0.05)]
)
def test_keyset_pages_hold_exactly_the_records_of_the_filters(
    url: str,
    params: list[tuple[str, str]],
    window: int,
    probe: int,
    rare: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ui_query, "FIRST_WINDOW", window)  # 2: many windows, each 4 times wider
    monkeypatch.setattr(ui_query, "PROBE_WIDTH", probe)  # 40: the first windows probe for prefixes
    monkeypatch.setattr(ui_query, "RARE_SHARE", rare)  # 1.1: any verdict filter leads the lookups
    q = parse_query(params)
    store = open_store(url, create=False)
    try:
        expected = [e.seq for e in store.query(q.filters, newest_first=True)]
        seen: list[int] = []
        result = page(store, q, before=None, after=None, limit=7)
        assert result.newer is None  # the first page has nothing newer
        while True:
            seen += [e.seq for e in result.entries]
            if result.older is None:
                break
            result = page(store, q, before=result.older, after=None, limit=7)
        back = page(store, q, before=None, after=seen[-8], limit=7)  # and back towards the newest
        assert [e.seq for e in back.entries] == seen[-15:-8]
    finally:
        store.close()
    assert len(expected) > 7 and seen == expected


def test_the_overview_page_renders_from_the_summaries(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui_app, "_today", lambda: TODAY)
    app = create_app(
        Settings(open_store=lambda: open_store(url, create=False), allowed_hosts=frozenset({"127.0.0.1"}))
    )

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get(path)

    response = asyncio.run(get("/overview?since=2026-03-10"))
    assert response.status_code == 200
    html = response.text
    store = open_store(url, create=False)
    try:
        total = store.count(Filters(since=parse_time("2026-03-10")))
    finally:
        store.close()
    assert f"{total} decisions since 2026-03-10" in html
    assert "legacy-root" in html and "soon" in html  # in force; "soon" expires within 30 days
    assert ">gone<" not in html  # expired: not in force


def test_an_overview_without_summaries_counts_the_newest_matching_records(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui_app, "COUNTED_RECORDS", 30)
    filters = Filters(namespaces=("shop", "legacy"))  # two namespaces: not summarized
    store = open_store(url, create=False)
    try:
        newest = list(store.query(filters, limit=30))
        counted = ui_app._counted(store, filters, TODAY)
        narrow = Filters(namespaces=("legacy",), rules=("limits",))
        matching = store.count(narrow)
        few = ui_app._counted(store, narrow, TODAY)
    finally:
        store.close()
    assert counted.capped and sum(n for *_, n in counted.counts) == 30
    assert {day for day, *_ in counted.counts} == {e.time[:10] for e in newest}
    assert 0 < matching < 30  # fewer match: all of them are counted
    assert not few.capped and sum(n for *_, n in few.counts) == matching
