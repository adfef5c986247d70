"""cel-go's time-zone arguments and Go's regexp syntax through `check --admission-policy`.

A ValidatingAdmissionPolicy over one ConfigMap whose `data.v` is the time zone or pattern,
decided as the target API server decides it (see tests/unit/policy/test_cel_go_regex_time_zones.py
for the cel-go and Go sources): an error fails the request under Fail and skips the validation
under Ignore; what trustgate cannot know is "could not evaluate" (exit 3).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from support.admission_policy import BASE, CONFIGMAP_METADATA, Write, configmap_policy

from trustgate.cli.main import main

CONFIGMAP = CONFIGMAP_METADATA + "data:\n  v: {value}\n"
HOURS = "timestamp('2024-01-01T00:00:00Z').getHours(object.data.v)"
MINUTES = "timestamp('2024-01-01T00:00:00Z').getMinutes(object.data.v)"


@pytest.mark.parametrize(
    ("expression", "value", "version", "failure", "code"),
    [
        (f"{HOURS} != 5", "+05:30:00", "1.35", "Fail", 1),  # cel-go: Atoi("30:00") fails
        (f"{HOURS} != 5", "+05:30:00", "1.35", "Ignore", 0),
        (f"{MINUTES} != 30", "5:-30", "1.35", "Ignore", 1),  # cel-go: 4:30, a deny
        (f"{HOURS} < 12", "Local", "1.35", "Fail", 3),  # the API server's own zone
        (f"{HOURS} == 5", "+05:30", "1.35", "Fail", 0),
        ("'x'.matches(object.data.v)", "\\C", "1.35", "Fail", 1),  # Go: invalid escape
        ("!'x'.matches(object.data.v)", "\\C", "1.35", "Ignore", 0),
        ("'a'.matches(object.data.v)", "(?<n>a)", "1.27", "Fail", 1),  # Go 1.21
        ("'a'.find(object.data.v) == 'a'", "(?<n>a)", "1.27", "Fail", 1),
        ("'a'.matches(object.data.v)", "(?<n>a)", "1.29", "Fail", 3),  # by patch release
        ("'a'.matches(object.data.v)", "(?<n>a)", "1.30", "Fail", 0),  # Go 1.22
    ],
)
def test_time_zones_and_regexes_decide_as_the_target_api_server(
    write: Write, expression: str, value: str, version: str, failure: str, code: int
) -> None:
    policy = write(
        "policy.yaml",
        configmap_policy(
            "zones",
            f"  validations:\n  - expression: {json.dumps(expression)}\n",
            binding="zones",
            failure=failure,
        ),
    )
    manifests = write("cm.yaml", CONFIGMAP.format(value=json.dumps(value)))
    args = [*BASE, "--kubernetes-version", version, "--admission-policy", str(policy), str(manifests)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    report: Any = json.loads(result.stdout)
    assert result.exit_code == code, report
    findings = [f for r in report["results"] for f in r["findings"] if f["severity"] != "info"]
    if code == 3:
        assert any("Local" in f["message"] or "(?P<name>" in f["message"] for f in findings), report
    else:
        assert [f["rule"] for f in findings] == (["zones/0"] if code else []), report


def test_a_literal_pattern_go_refuses_refuses_the_policy(write: Write) -> None:
    # Before Go 1.22 the API server refuses the policy when it is written (cel-go's regex validator).
    expression = "'a'.matches('(?<n>a)')"
    policy = write(
        "policy.yaml",
        configmap_policy(
            "zones", f"  validations:\n  - expression: {json.dumps(expression)}\n", binding="zones"
        ),
    )
    manifests = write("cm.yaml", CONFIGMAP.format(value='"a"'))
    args = [*BASE, "--kubernetes-version", "1.27", "--admission-policy", str(policy), str(manifests)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code != 0
    assert "invalid or unsupported Perl syntax" in result.output
