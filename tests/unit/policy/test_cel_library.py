"""Kubernetes' CEL library functions and cel-go's conversions, against their Go sources and tests.

Cases cite where they come from: k8s.io/apiserver/pkg/cel/library (semverlib.go and
semver_test.go, format.go and format_test.go, lists.go and lists_test.go), apimachinery's
validators, blang/semver v4, and cel-go's common/types (string.go, duration.go, timestamp.go)
and stdlib. An `ERROR` expectation is an evaluation error (a failurePolicy outcome).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from trustgate.policy import cel

VARIABLES = ("object",)
ERROR = object()


def run(expression: str, obj: Any = None) -> Any:
    return cel.compile_expression(expression, variables=VARIABLES).evaluate({"object": obj or {}})


def check(expression: str, expected: Any, obj: Any = None) -> None:
    if expected is ERROR:
        with pytest.raises(cel.CelEvalError):
            run(expression, obj)
        return
    got = run(expression, obj)
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(got, float) and math.isnan(got), (expression, got)
        return
    assert got == expected and type(got) is type(expected), (expression, got)


# -- 1. semver: blang/semver v4's Parse, and Kubernetes' normalizeAndParse -------------------

SEMVER_NORMALIZED = [
    # semver_test.go, version 1
    ("", False),
    (" 1.0.0", False),
    ("1. 0.0", False),
    ("1.0.0 ", False),
    ("v1.0.0", True),
    ("01.01.01", True),
    ("1", True),
    ("1.1", True),
    ("v01.01", True),
    # normalizeAndParse: SplitN(s, ".", 3), an empty part stays empty (ParseUint("") fails)
    ("v", False),
    (".", False),
    ("1.", False),
    ("1..2", False),
    ("v1.2.3.", False),
    ("vv1", False),
    # a short version holding '+' or '-' is refused ("short version cannot contain ...")
    ("1-rc", False),
    ("1.2-rc.1", False),
    ("1.2+b", False),
    ("1.2.3-rc.1+b", True),
    # leading zeros go from each of the three parts, the pre-release keeps its own
    ("01.02.03-rc.1+b.2", True),
    ("1.2.3-rc.01", False),
    # numbers are uint64 (strconv.ParseUint(s, 10, 64))
    ("18446744073709551615.0.0", True),
    ("99999999999999999999.0.0", False),
    ("1.0.0-99999999999999999999", False),
]


@pytest.mark.parametrize(("text", "valid"), SEMVER_NORMALIZED)
def test_is_semver_normalized_as_kubernetes(text: str, valid: bool) -> None:
    assert run(f"isSemver({text!r}, true)") is valid
    if valid:
        run(f"semver({text!r}, true)")
    else:
        with pytest.raises(cel.CelEvalError):
            run(f"semver({text!r}, true)")


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        # semver_test.go, version 0
        ("1.2.3-beta.1+build.1", True),
        ("", False),
        ("v1.0.0", False),
        (" 1.0.0", False),
        ("01.01.01", False),
        ("1", False),
        ("1.1", False),
        # blang/semver v4: uint64 numbers, empty pre-release or build parts refused
        ("18446744073709551615.18446744073709551615.18446744073709551615", True),
        ("18446744073709551616.0.0", False),
        ("1.0.0-18446744073709551616", False),
        ("1.0.0-", False),
        ("1.0.0+", False),
        ("1.0.0-a..b", False),
        ("1.0.0-0a.--", True),
    ],
)
def test_is_semver_as_blang(text: str, valid: bool) -> None:
    assert run(f"isSemver({text!r})") is valid


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("semver('v01.01', true) == semver('1.1.0')", True),  # semver_test.go equality_normalize
        ("semver('1.2.-1', true) == semver('1.2.0-1')", True),  # "-1" is given a leading "0"
        # types.Int(v.Major) of a uint64 wraps as Go's conversion does
        ("semver('18446744073709551615.0.0').major()", -1),
    ],
)
def test_semver_values(expression: str, expected: Any) -> None:
    check(expression, expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("semver('v1.0')", "No Major.Minor.Patch elements found"),  # semver_test.go parseInvalidVersion
        ("semver('1-rc', true)", "short version cannot contain PreRelease/Build meta data"),
        ("semver('', true)", 'strconv.ParseUint: parsing "": invalid syntax'),
    ],
)
def test_semver_errors_are_blangs(expression: str, message: str) -> None:
    with pytest.raises(cel.CelEvalError, match=message):
        run(expression)


# -- 5. lists library on durations and timestamps; incomparable items ------------------------

LISTS = [
    # lists_test.go / lists.go: sum over summableTypes (int, uint, double, duration)
    ("[duration('1m'), duration('1s')].sum() == duration('61s')", True),
    ("[duration('1m'), duration('1s')].sum() < duration('1h')", True),
    ("[1, 2].sum()", 3),
    ("[1.0, 3.0].sum()", 4.0),
    ("[].sum()", 0),
    ("[duration('2562047h'), duration('2562047h')].sum()", ERROR),  # Duration.Add overflows
    ("[duration('1s'), 1].sum()", ERROR),
    # min / max / isSorted over comparableTypes, durations and timestamps included
    ("[duration('1m'), duration('1s')].min() == duration('1s')", True),
    ("[duration('1m'), duration('1s')].max() == duration('1m')", True),
    ("[duration('1s'), duration('1m')].isSorted()", True),
    ("[duration('1m'), duration('1s')].isSorted()", False),
    (
        "[timestamp('2020-01-01T00:00:00Z'), timestamp('2019-01-01T00:00:00Z')].min()"
        " == timestamp('2019-01-01T00:00:00Z')",
        True,
    ),
    (
        "[timestamp('2020-01-01T00:00:00Z'), timestamp('2021-01-01T00:00:00Z')].max()"
        " == timestamp('2021-01-01T00:00:00Z')",
        True,
    ),
    ("[timestamp('2020-01-01T00:00:00Z'), timestamp('2019-01-01T00:00:00Z')].isSorted()", False),
    ("[b'b', b'a'].min() == b'a'", True),
    ("['a', 'b', 'b', 'c'].isSorted()", True),
    ("[2.0, 1.0].isSorted()", False),
    ("[].isSorted()", True),
    ("[].min()", ERROR),  # "min called on empty list"
    # no comparison at all (traits.Comparer): "no such overload", whatever the position
    ("[[1], [2]].min()", ERROR),
    ("[{'a': 1}].max()", ERROR),
    ("[null].isSorted()", ERROR),
    ("[1, null].isSorted()", ERROR),
    ("[2, [1]].min()", ERROR),
    ("[quantity('1')].min()", ERROR),
]


@pytest.mark.parametrize(("expression", "expected"), LISTS)
def test_lists_library_on_all_its_types(expression: str, expected: Any) -> None:
    check(expression, expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[[1], [2]].min()", "^no such overload$"),
        ("[null].isSorted()", "^no such overload$"),
        ("[{'a': 1}].max()", "^no such overload$"),
        ("[].max()", "^max called on empty list$"),
        ("['a'].sum()", "^no such overload$"),
    ],
)
def test_lists_errors_are_cel_gos(expression: str, message: str) -> None:
    with pytest.raises(cel.CelEvalError, match=message):
        run(expression)


def test_lists_of_durations_from_the_object() -> None:
    assert run("object.v.map(d, duration(d)).sum() == duration('90s')", {"v": ["1m", "30s"]}) is True
    assert run("object.v.map(d, duration(d)).max()", {"v": ["1m", "30s"]}) == dt.timedelta(minutes=1)
