"""`trustgate check --admission-policy` where the API server's validating policy plugin decides:
audit annotation errors (dispatcher.go) and failure messages (validator.go)."""

from __future__ import annotations

import pytest
from support.admission_policy import Write, findings, run, write_policy

AUDIT = """\
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
  auditAnnotations:
  - key: owner
    valueExpression: "'owner ' + object.metadata.annotations['owner']"
"""


@pytest.mark.parametrize("actions", ["[Warn]", "[Audit]"])
def test_an_audit_annotation_error_under_fail_denies_a_warn_or_audit_binding(
    write: Write, actions: str
) -> None:
    code, report, _ = run(write, write_policy(write, AUDIT, actions=actions))
    assert code == 1, report
    [finding] = findings(report)
    assert finding["rule"] == "p/auditAnnotations/owner"
    assert finding["severity"] == "error"
    assert "resulted in error" in finding["message"]


def test_an_audit_annotation_error_under_ignore_is_not_enforced(write: Write) -> None:
    code, report, _ = run(write, write_policy(write, AUDIT, actions="[Warn]", failure="Ignore"))
    assert code == 0, report
    [finding] = findings(report)
    assert finding["severity"] == "info"


def test_failure_messages_are_trimmed_as_the_api_server_trims_them(write: Write) -> None:
    spec = """\
  validations:
  - expression: "false"
    messageExpression: "'  padded message  '"
  - expression: "false"
    messageExpression: "'trailing newline\\\\n'"
    message: "static"
  - expression: "false"
    message: "   static with spaces   "
  - expression: "  false  "
"""
    code, report, _ = run(write, write_policy(write, spec))
    assert code == 1
    assert [f["message"] for f in findings(report)] == [
        "padded message",
        "trailing newline",
        "static with spaces",
        "failed expression: false",
    ]
