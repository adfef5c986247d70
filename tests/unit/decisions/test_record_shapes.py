"""One check of a stored record's shape for every view: `log show`, `log query`, `log prove`, the
UI's decision page, its lists and its evidence archive agree on which records are malformed."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from click.testing import CliRunner
from decision_records import MakeRecord

from trustgate.cli.main import main
from trustgate.decisions.log import DecisionLog, open_store
from trustgate.decisions.store import Filters
from trustgate.ui import evidence, query
from trustgate.ui.explain import list_row, unreadable

USERS: list[Any] = [
    {"username": "mallory", "groups": "system:masters"},  # a string, read letter by letter before
    {"username": "mallory", "groups": [1, 2]},
    {"username": 7},
    {"username": "mallory", "extra": {"scopes": "all"}},
]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


@pytest.mark.parametrize("user", USERS)
def test_every_view_flags_a_record_of_another_shape_alike(
    sqlite_url: str, make_record: MakeRecord, user: Any
) -> None:
    from trustgate.decisions.record import shape_problem

    with DecisionLog.open(sqlite_url) as log:
        log.append(make_record(1))
        bad = make_record(2, actor={"user": user})
        log.append(bad)
    assert shape_problem(bad) is not None
    store = open_store(sqlite_url, read_only=True)
    try:
        entries = {e.seq: e for e in store.query(Filters())}
        assert entries[1].malformed() is None and unreadable(entries[1]) is None
        assert list_row(entries[1])["malformed"] == ""
        entry = entries[2]
        assert entry.malformed() is not None
        assert unreadable(entry) == entry.malformed()  # the decision page
        assert list_row(entry)["malformed"] == entry.malformed()  # the list and the archive
        with store.snapshot():
            archive = evidence.build_archive(store, query.matching(store, Filters()), description="all")
    finally:
        store.close()
    readme = zipfile.ZipFile(io.BytesIO(archive.data)).read("README.txt").decode()
    assert "MALFORMED: not decision records, altered or damaged (1;" in readme
    code, out = _run("log", "show", "--store", sqlite_url, bad["id"])
    assert "malformed" in out.lower(), out
    assert "s, y, s" not in out and "1, 2" not in out
    code, out = _run("log", "query", "--store", sqlite_url, "-o", "csv")
    assert code == 0 and out.count("malformed record") == 1, out
    code, out = _run("log", "prove", "--store", sqlite_url, bad["id"])
    assert code != 0 and "is not a decision record" in out, out


def test_a_decision_records_own_shapes_are_not_malformed(make_record: MakeRecord) -> None:
    from trustgate.decisions.record import shape_problem

    user = {"username": "alice", "uid": "1", "groups": ["dev"], "extra": {"k": ["v"]}}
    assert shape_problem(make_record(1, actor={"user": user})) is None
    assert shape_problem(make_record(4)) is None


@pytest.mark.parametrize(
    "time", ["2025-06-01T12:00:00.000000", "2025-06-02", "2025-06-01T12:00:00.000000-23:59"]
)
def test_a_time_not_in_trustgates_form_is_another_shape(make_record: MakeRecord, time: str) -> None:
    """It sorts elsewhere than its moment as text (`log query --since/--until`): no view shows it as a
    decision of that time."""
    from trustgate.decisions.record import shape_problem

    problem = shape_problem({**make_record(1), "time": time})
    assert problem == f"time {time!r} is not a UTC time as trustgate writes it (2025-01-31T12:00:00.000000Z)"
