"""Every column of every table of a small log, edited to hostile values: no reader crashes.

Each edit is one operator's `UPDATE` of one row (SQLite's columns are
typeless: any value fits any column). Every read-only `trustgate log`
command must exit without a traceback, and every page of `trustgate ui`
must answer without a 500: the project's own error (an altered log), or the
page with the summaries flagged, never a crash.
"""

from __future__ import annotations

import asyncio
import sqlite3
import traceback
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from support.ui_log import Log, build_log, copy_of

from trustgate.cli.main import main
from trustgate.decisions.log import open_store
from trustgate.ui.app import Settings, create_app

TABLES = (
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
HOSTILE = ("'zz'", "x'ff'", "1.5", "NULL", "-1", str(2**63 - 1))
HOSTILE_NUMBER = ("0",)  # a position or count before the first: in the INTEGER columns too


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return build_log(tmp_path_factory.mktemp("fuzz-hostile"))


def _columns(log: Log) -> list[tuple[str, str, str]]:
    """(table, column, declared type) of every column."""
    with closing(sqlite3.connect(log.url.removeprefix("sqlite:///"))) as db:
        return [(t, r[1], r[2]) for t in TABLES for r in db.execute(f"PRAGMA table_info({t})")]


def _edits(log: Log) -> list[tuple[str, str]]:
    """(the edit's name, its SQL): each column of one row of each table (of `decisions`, the first
    decision's; else the row the table's key orders first)."""
    out = []
    for table, column, declared in _columns(log):
        for value in HOSTILE + (HOSTILE_NUMBER if declared == "INTEGER" else ()):
            row = f"({column}) IN (SELECT {column} FROM {table} LIMIT 1)"  # tables WITHOUT ROWID too
            if table == "decisions":
                row = "seq = 1"
            elif table in ("checkpoints", "chain_head", "exceptions_seen"):
                row = f"rowid = (SELECT min(rowid) FROM {table})"
            out.append((f"{table}.{column}={value}", f"UPDATE {table} SET {column} = {value} WHERE {row}"))
    return out


def _cli(*args: str) -> str | None:
    result = CliRunner().invoke(main, list(args))
    if result.exception is None or isinstance(result.exception, SystemExit):
        return None
    return "".join(traceback.format_exception(result.exception))[-1500:]


async def _served(app: object, pages: list[str]) -> list[str]:
    """The pages `app` answers with a 500."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return [page for page in pages if (await client.get(page)).status_code == 500]


def test_no_reader_crashes_on_any_hostile_column(log: Log, tmp_path: Path) -> None:
    crashes: list[str] = []
    day = log.expires[:4]  # a year the log's days are in, for a time range
    ids = [log.ids["good"], log.ids["legacy"]]
    pages = [
        "/overview",
        "/overview?namespace=legacy",
        "/decisions",
        "/decisions?verdict=deny",
        "/decisions?exception=legacy-root",
        f"/decisions?since={day}-01-01",
        "/integrity",
        "/report",
        "/export?name=x",
        f"/decisions/{ids[0]}",
        f"/decisions/{ids[0]}/proof",
        f"/decisions/{ids[1]}",
    ]
    for n, (name, sql) in enumerate(_edits(log)):
        case = tmp_path / str(n)
        case.mkdir()
        try:
            url = copy_of(log, case, sql)
        except sqlite3.Error:
            continue  # the column refuses the value (NOT NULL, a key): no edit to read
        commands = [
            ["log", "verify", "--store", url, "--verifier-key", log.vkey],
            ["log", "query", "--store", url],
            ["log", "query", "--store", url, "--exception", "legacy-root", "-o", "json"],
            ["log", "stats", "--store", url],
            ["log", "export", "--store", url, "--output", str(case / "out.jsonl")],
            ["log", "show", "--store", url, ids[0]],
            ["log", "prove", "--store", url, ids[0]],
            ["log", "show", "--store", url, ids[1]],
        ]
        for command in commands:
            crash = _cli(*command)
            if crash is not None:
                crashes.append(f"{name}: {' '.join(command[:2])}: {crash.splitlines()[-1]}")
        app = create_app(
            Settings(
                open_store=lambda url=url: open_store(url, create=False, read_only=True),  # type: ignore[misc]
                allowed_hosts=frozenset({"testserver"}),
            )
        )
        crashes += [f"{name}: GET {page}: 500" for page in asyncio.run(_served(app, pages))]
    assert not crashes, "\n".join(crashes)
