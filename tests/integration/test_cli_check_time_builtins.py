"""`trustgate check -p` with Rego's time built-ins answers as conftest (OPA) does.

regorus computed them with chrono and its own layout reader, and a document OPA denies
passed: a one-digit month read as a date, an unknown zone abbreviation read with its real
offset, Jan 31 + 1 month clamped to Feb 29 (ADR 0008, item 18). Each case is the tester's
reproduction; the expected verdict is OPA's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

CASES = {
    "parse-ns-one-digit-month": (
        """
        package main
        import rego.v1
        deny contains msg if {
          not time.parse_ns("2006-01-02", input.metadata.annotations["example.com/expires"])
          msg := "annotation example.com/expires must be a date in YYYY-MM-DD form"
        }
        """,
        'metadata: {name: x, annotations: {example.com/expires: "2026-3-4"}}',
        "must be a date in YYYY-MM-DD form",
    ),
    "parse-ns-unknown-zone-abbreviation": (
        """
        package main
        import rego.v1
        deny contains "maintenance window starts too early" if {
          start := time.parse_ns("2006-01-02 15:04 MST", input.spec.window)
          start < time.parse_rfc3339_ns("2026-03-04T06:00:00Z")
        }
        """,
        'spec: {window: "2026-03-04 00:00 PST"}',
        "maintenance window starts too early",
    ),
    "add-date-normalises-month-end": (
        """
        package main
        import rego.v1
        deny contains "certificate expires less than one month after issue" if {
          issued := time.parse_rfc3339_ns(input.spec.issued)
          expires := time.parse_rfc3339_ns(input.spec.expires)
          expires < time.add_date(issued, 0, 1, 0)
        }
        """,
        'spec: {issued: "2024-01-31T00:00:00Z", expires: "2024-03-01T00:00:00Z"}',
        "certificate expires less than one month after issue",
    ),
    "format-prints-the-zone-abbreviation": (
        """
        package main
        import rego.v1
        deny contains "must be Eastern time" if {
          not endswith(time.format([input.spec.ts, "America/New_York", "RFC1123"]), "EST")
        }
        """,
        "spec: {ts: 1}",  # OPA: "Wed, 31 Dec 1969 19:00:00 EST", no finding
        "",
    ),
    "parse-duration-in-days": (
        """
        package main
        import rego.v1
        deny contains "retention must be at most 30 days" if {
          time.parse_duration_ns(input.spec.retention) > time.parse_duration_ns("720h")
        }
        """,
        'spec: {retention: "31d"}',
        "retention must be at most 30 days",
    ),
    "parse-duration-fractional-days-as-opa-rounds": (
        """
        package main
        import rego.v1
        deny contains "grace period must be at least 0.3 days (25920 s)" if {
          time.parse_duration_ns(input.spec.grace) < 25920000000000
        }
        """,
        'spec: {grace: "0.3d"}',  # OPA: 7.199999999999999h, one nanosecond short
        "grace period must be at least 0.3 days",
    ),
    "zone-name-with-a-trailing-slash-is-unknown": (
        """
        package main
        import rego.v1
        deny contains msg if {
          not time.clock([0, input.spec.timeZone])
          msg := sprintf("unknown time zone %q", [input.spec.timeZone])
        }
        """,
        'spec: {timeZone: "America/New_York/"}',
        'unknown time zone "America/New_York/"',
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_time_builtins_give_opas_verdict(write: Write, case: str) -> None:
    policy, document, finding = CASES[case]
    write("policy/p.rego", policy)
    doc = write("in.yaml", f"apiVersion: v1\nkind: ConfigMap\n{document}\n")
    result = CliRunner().invoke(
        main,
        ["check", "--no-builtin", "--no-schemas", "-p", str(doc.parent / "policy"), str(doc)],
        catch_exceptions=False,
    )
    if finding:
        assert result.exit_code == 1, result.output
        assert finding in result.stdout
    else:
        assert result.exit_code == 0, result.output
