"""The UI's query parameters: the filters of `log query`, checked before they reach SQL."""

from __future__ import annotations

import pytest

from trustgate.decisions.store import Filters
from trustgate.ui.evidence import safe_name
from trustgate.ui.query import BadRequestError, page_bound, parse_query


def test_parameters_fill_the_same_filters_as_log_query() -> None:
    q = parse_query(
        [
            ("verdict", "deny"),
            ("verdict", "error"),
            ("namespace", "shop-*"),
            ("since", "2026-01-01"),
            ("until", "2026-01-31"),
            ("digest", "sha256:abc"),
            ("image", "registry.example.com/app*"),
            ("commit", "1A2B3C4"),
            ("gate", "ci"),
            ("exception", "legacy-*"),
            ("actor", ""),  # an empty form field is no filter
        ]
    )
    f = q.filters
    assert f.verdicts == ("deny", "error") and f.namespaces == ("shop-*",) and f.gates == ("ci",)
    assert f.since == "2026-01-01T00:00:00.000000Z" and f.until == "2026-02-01T00:00:00.000000Z"
    assert f.images == ("sha256:abc", "registry.example.com/app*") and f.commits == ("1A2B3C4",)
    assert f.actors == () and q.exceptions == ("legacy-*",)
    assert q.url("/decisions", before=7).startswith("/decisions?verdict=deny&verdict=error&namespace=shop-")
    assert q.url("/decisions").endswith("exception=legacy-%2A")


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ([("verdict", "maybe")], "unknown verdict 'maybe'"),
        ([("gate", "cd")], "unknown gate 'cd'"),
        ([("since", "yesterday")], "since: not a date or time"),
        ([("until", "2026-13-45")], "until: not a date or time"),
        ([("since", "2026-01-01"), ("since", "2026-02-01")], "since is given twice"),
        ([("commit", "xyz")], "not a commit SHA"),
        ([("digest", "md5:00")], "not a digest"),
        ([("tree", "abc")], "not a git tree hash"),
        ([("colour", "red")], "unknown parameter 'colour'"),
        ([("namespace", "a\x00b")], "control characters"),
        ([("namespace", "n" * 600)], "too long"),
        ([("rule", f"r{n}") for n in range(21)], "too many values"),
    ],
)
def test_bad_parameters_say_why(params: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(BadRequestError, match=None) as caught:
        parse_query(params)
    assert reason in caught.value.message


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"before": "9" * 30}, "out of range"),
        ({"before": "9" * 400}, "whole number"),
        ({"after": "-1"}, "whole number"),
        ({"before": "1", "after": "2"}, "not both"),
        ({"limit": "0"}, "between 1 and"),
        ({"limit": "100000"}, "between 1 and"),
        ({"limit": "ten"}, "whole number"),
    ],
)
def test_bad_page_bounds_say_why(params: dict[str, str], reason: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        page_bound(params)
    assert reason in caught.value.message


def test_page_bounds_add_a_keyset_condition_inside_each_index_lookup() -> None:
    assert page_bound({"before": "12", "limit": "5"}) == (12, None, 5)
    sql, params = Filters(verdicts=("deny",), below=12).where()
    assert sql == "d.seq < ? AND d.verdict || '' IN (?)" and params == [12, "deny"]
    sql, params = Filters(verdicts=("deny",), gates=("ci",), below=12, index_verdicts=True).where()
    lookup = "SELECT seq FROM decisions WHERE gate IN (?) AND verdict IN (?) AND seq < ?"
    assert sql == f"d.seq < ? AND d.seq IN ({lookup})"
    assert params == [12, "ci", "deny", 12]
    sql, params = Filters(namespaces=("shop",), exceptions=("x*",), above=3, below=12).where()
    assert "(kind = ? AND value = ? AND seq > ? AND seq < ?)" in sql
    assert "(name >= ? AND name < ? AND seq > ? AND seq < ?)" in sql
    assert params.count(3) == 3 and params.count(12) == 3
    sql, _ = Filters(namespaces=("shop",), rules=("no-priv",), lead=1).where()
    assert "d.seq IN (SELECT seq FROM terms WHERE (kind = ? AND value = ?))" in sql  # the rule leads
    assert "EXISTS (SELECT 1 FROM terms t WHERE t.seq = d.seq AND ((t.kind = ? AND t.value = ?)))" in sql


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("evidence-2026.zip", True),
        ("audit_Q1", True),
        ("../etc/passwd", False),
        ("a/b", False),
        ("..", False),
        (".hidden", False),
        ("x" * 101, False),
        ("", False),
        ("c:\\x", False),
    ],
)
def test_export_names_are_plain_file_names(name: str, ok: bool) -> None:
    assert (safe_name(name) == name) is ok
