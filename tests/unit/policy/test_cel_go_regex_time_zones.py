"""cel-go's time-zone arguments and Go's regexp syntax where the runtime's differ.

Time zones: cel-go's cel/library.go `timeZone` (Kubernetes sets cel.DefaultUTCTimeZone(true);
common/types/timestamp.go's is the same, as vendored in kubernetes/kubernetes): without a `:`,
time.LoadLocation; with one, strconv.Atoi of the text before and of all the text after it.
Regexes: Go's regexp/syntax parse.go (`\\C` ErrInvalidEscape, isValidCaptureName's
[A-Za-z0-9_]+, `(?<name>` from Go 1.22 only), which C++ RE2 all takes.
"""

from __future__ import annotations

from typing import Any

import pytest

from trustgate.policy import cel

ERROR = object()  # an evaluation error (a failurePolicy outcome)
UNEVALUABLE = object()  # "could not evaluate": no verdict
T = "timestamp('2024-01-01T00:00:00Z')"


def outcome(expression: str, obj: Any = None, version: str | None = None) -> Any:
    program = cel.compile_expression(expression, variables=["object"], kubernetes_version=version)
    try:
        return program.evaluate({"object": obj if obj is not None else {}})
    except cel.CelUnevaluableError:
        return UNEVALUABLE
    except cel.CelEvalError:
        return ERROR


def same(got: Any, expected: Any) -> bool:
    return got is expected if expected in (ERROR, UNEVALUABLE) else got == expected and got is not ERROR


TIME_ZONES = [
    (f"{T}.getHours('+05:30:00')", ERROR),  # Atoi("30:00") fails; the runtime gave 11
    (f"{T}.getMinutes('5:-30')", 30),  # 5*60 + -30 minutes; the runtime refused it
    (f"{T}.getHours('5:-30')", 4),
    (f"{T}.getHours('Local')", UNEVALUABLE),  # the API server's own zone
    (f"{T}.getHours(object.tz)", UNEVALUABLE),
    (f"{T}.getHours('+05:30')", 5),
    (f"{T}.getMinutes('+05:30')", 30),
    (f"{T}.getHours('-05:30')", 18),  # -(5*60) - 30
    (f"{T}.getMinutes('-00:30')", 30),
    (f"{T}.getDayOfMonth('-00:30')", 30),  # 2023-12-31, zero-based
    (f"{T}.getHours('+ 5:30')", ERROR),  # Atoi takes no space
    (f"{T}.getHours(':30')", ERROR),  # Atoi("")
    (f"{T}.getHours('+99:00')", 3),  # unbounded before cel-go#1391
    (f"{T}.getDate('+48:00')", 3),
    (f"{T}.getHours('America/New_York')", 19),
    (f"{T}.getDayOfWeek('America/New_York')", 0),  # Sunday 2023-12-31
    (f"{T}.getHours('')", 0),  # LoadLocation("") is UTC
    (f"{T}.getHours('utc')", ERROR),  # unknown time zone utc
    (f"{T}.getHours('../etc/passwd')", ERROR),  # invalid location name
    (f"{T}.getFullYear('-01:00')", 2023),
    (f"{T}.getMonth('-01:00')", 11),
    (f"{T}.getDayOfYear('-01:00')", 364),
    ("timestamp('2024-01-01T00:00:00.250Z').getMilliseconds('+01:00')", 250),
    (f"{T}.getSeconds('+01:00')", 0),
    (f"{T}.getHours()", 0),
]


@pytest.mark.parametrize(("expression", "expected"), TIME_ZONES)
def test_time_zone_arguments_as_cel_go(expression: str, expected: Any) -> None:
    assert same(outcome(expression, {"tz": "Local"}, "1.35"), expected)


def test_out_of_range_offsets_are_not_evaluated_where_cel_go_may_bound_them() -> None:
    # cel-go#1391 (hours in [-23, 23], minutes in [0, 59]) is in no release trustgate checked.
    assert outcome(f"{T}.getHours('+99:00')", version="1.37") is UNEVALUABLE
    assert outcome(f"{T}.getMinutes('5:-30')", version="1.37") is UNEVALUABLE
    assert outcome(f"{T}.getHours('+05:30')", version="1.37") == 5


REGEXES = [
    # (expression, version, expected)
    ("'x'.matches('\\\\C')", "1.35", ERROR),  # Go: invalid escape sequence: `\C`
    ("'x'.matches(object.p)", "1.35", ERROR),
    ("matches('x', '\\\\C')", "1.35", ERROR),
    (".matches('x', '\\\\C')", "1.35", ERROR),
    ("'x'.matches('[\\\\C]')", "1.35", ERROR),
    ("'x'.matches('\\\\Q\\\\C\\\\E')", "1.35", False),  # a literal `\C`
    ("'\\\\C'.matches('\\\\Q\\\\C\\\\E')", "1.35", True),
    ("'a'.matches('(?<n>a)')", "1.30", True),  # Go 1.22
    ("'a'.matches('(?<n>a)')", "1.27", ERROR),  # Go 1.21: invalid or unsupported Perl syntax
    ("'a'.matches('(?<n>a)')", "1.29", UNEVALUABLE),  # Go 1.21 or 1.22 by patch release
    ("'a'.matches(object.n)", "1.28", UNEVALUABLE),
    ("'a'.find('(?<n>a)')", "1.27", ERROR),
    ("'a'.findAll('(?<n>a)')", "1.27", ERROR),
    ("'a'.findAll('(?<n>a)', 1)", "1.27", ERROR),
    ("'a'.findAll('(?<n>a)', 1)", "1.35", ["a"]),
    ("'a'.matches('(?P<n>a)')", "1.27", True),
    ("'a'.matches('(?P<é>a)')", "1.35", ERROR),  # isValidCaptureName: ASCII only
    ("'a'.matches('(?<é>a)')", "1.35", ERROR),
    ("'n'.matches('[(?<n>]')", "1.27", True),  # a class, not a group
    ("'a'.matches('[[:alpha:]](?<n>)')", "1.29", UNEVALUABLE),
    ("'1'.matches('\\\\pN')", "1.27", True),
    ("'a'.matches('(?U)a+')", "1.27", True),
    ("'a'.matches('\\\\Q(?<n>\\\\E')", "1.27", False),
    ("'ab'.matches('^a')", "1.27", True),
]


@pytest.mark.parametrize(("expression", "version", "expected"), REGEXES)
def test_regexes_as_the_target_go_regexp(expression: str, version: str, expected: Any) -> None:
    assert same(outcome(expression, {"p": "\\C", "n": "(?<n>a)"}, version), expected)


@pytest.mark.parametrize(
    ("pattern", "version", "expected"),
    [
        ("\\C", "1.35", "invalid escape sequence: `\\C`"),
        ("(?<n>a)", "1.27", "invalid or unsupported Perl syntax: `(?<`"),
        ("(?<n>a)", "1.29", None),  # evaluation says it cannot tell
        ("(?<n>a)", "1.30", None),
        ("(?P<é>a)", "1.35", "invalid named capture: `(?P<é>`"),
    ],
)
def test_policy_time_regex_check_follows_the_target(pattern: str, version: str, expected: str | None) -> None:
    assert cel.go_regexp_error(pattern, version) == expected
