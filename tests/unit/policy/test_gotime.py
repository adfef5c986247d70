"""trustgate.policy._gotime: OPA's time built-ins with Go's `time` semantics.

The expected values are OPA's answers (OPA 1.20 through `opa-golib-python-bindings`,
checked against the live oracle by tests/differential/test_time_vs_opa.py), copied here
so that the unit tests need no OPA. `[False, None]` is a built-in error in OPA:
undefined under conftest and Gatekeeper.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from trustgate.policy import _gotime
from trustgate.policy._gobuiltins import BUILTINS

UNDEFINED = [False, None]
JAN31 = 1_706_659_200_000_000_000  # 2024-01-31T00:00:00Z


def call(name: str, *args: Any) -> list[Any]:
    result: list[Any] = BUILTINS[name].fn(*args)
    return result


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        # Go wants two digits for 01 and 02
        ("time.parse_ns", ("2006-01-02", "2026-3-4"), UNDEFINED),
        ("time.parse_ns", ("2006-1-2", "2026-3-4"), [True, 1_772_582_400_000_000_000]),
        # an abbreviation unknown in time.Local (UTC) reads as UTC; only the label gets GMT+8
        (
            "time.parse_ns",
            ("2006-01-02 15:04 MST", "2026-03-04 00:00 PST"),
            [True, 1_772_582_400_000_000_000],
        ),
        (
            "time.parse_ns",
            ("2006-01-02 15:04 MST", "2026-03-04 00:00 GMT+8"),
            [True, 1_772_582_400_000_000_000],
        ),
        ("time.parse_ns", ("Monday 2006-01-02", "Wednesday 2026-03-04"), [True, 1_772_582_400_000_000_000]),
        ("time.parse_ns", ("Monday 2006-01-02", "Friday 2026-03-04"), [True, 1_772_582_400_000_000_000]),
        ("time.parse_ns", ("RFC3339", "2026-03-04T00:00:00Z"), [True, 1_772_582_400_000_000_000]),
        ("time.parse_ns", ("2006-01-02", "2023-02-29"), UNDEFINED),
        ("time.parse_ns", ("2006-01-02", "2262-04-12"), UNDEFINED),  # past int64 nanoseconds
        ("time.add_date", (JAN31, 0, 1, 0), [True, 1_709_337_600_000_000_000]),  # Mar 2, not Feb 29
        ("time.add_date", (0, 300, 0, 0), UNDEFINED),
        ("time.add_date", (0, 1.5, 0, 0), UNDEFINED),
        ("time.format", ([0, "UTC", "RFC1123"],), [True, "Thu, 01 Jan 1970 00:00:00 UTC"]),
        ("time.format", ([0, "America/New_York", "MST"],), [True, "EST"]),
        ("time.format", (1000,), [True, "1970-01-01T00:00:00.000001Z"]),
        ("time.format", (1.5,), UNDEFINED),
        ("time.format", ([0, "../zoneinfo/UTC"],), UNDEFINED),
        ("time.date", (-(2**63),), [True, [1677, 9, 21]]),
        ("time.weekday", (0,), [True, "Thursday"]),
        ("time.parse_duration_ns", ("1d",), [True, 86_400_000_000_000]),
        ("time.parse_duration_ns", ("1.5d1.5h",), [True, 135_000_000_000_000]),
        ("time.parse_duration_ns", ("1d1μs",), UNDEFINED),  # Greek mu: Go's only
        ("time.parse_duration_ns", ("1h1μs",), [True, 3_600_000_001_000]),
        ("time.parse_duration_ns", ("293y",), UNDEFINED),
    ],
)
def test_answers_as_opa(name: str, args: tuple[Any, ...], expected: list[Any]) -> None:
    assert call(name, *args) == expected


def test_a_local_zone_other_than_utc_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """OPA reads abbreviations and "Local" in the machine's zone (Go's time.Local): trustgate
    answers only where that is UTC, and otherwise says it cannot."""
    monkeypatch.setattr(_gotime, "_local_is_utc", lambda: False)
    with pytest.raises(_gotime.TimeUnsupportedError, match="local time zone"):
        call("time.parse_ns", "2006-01-02 15:04 MST", "2026-03-04 00:00 PST")
    with pytest.raises(_gotime.TimeUnsupportedError, match="local time zone"):
        call("time.format", [0, "Local"])
    # a numeric offset or UTC does not depend on it
    assert call("time.parse_ns", "2006-01-02 15:04 -0700", "2026-03-04 00:00 -0800")[0] is True
    assert call("time.parse_ns", "2006-01-02 15:04 MST", "2026-03-04 00:00 UTC")[0] is True


def test_add_date_past_go_int_arithmetic_fails_closed() -> None:
    with pytest.raises(_gotime.TimeUnsupportedError, match="reproduce"):
        call("time.add_date", 0, 10**12, 0, 0)


def test_a_run_without_time_builtins_does_not_import_the_module() -> None:
    code = (
        "import sys\n"
        "from trustgate.policy import rego\n"
        "e = rego._new_engine([rego.Module('p.rego', 'package p\\nimport rego.v1\\n"
        "r := regex.match(`\\\\w`, input.x)\\n')], {}, False)\n"
        "e.set_input({'x': 'a'}); e.eval_rule('data.p.r')\n"
        "assert 'trustgate.policy._gobuiltins' in sys.modules\n"
        "assert 'trustgate.policy._gotime' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
