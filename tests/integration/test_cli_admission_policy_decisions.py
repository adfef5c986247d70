"""`trustgate check --admission-policy` where the API server's validating policy plugin decides:
audit annotation errors (dispatcher.go) and failure messages (validator.go)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]
BASE = ("check", "--no-schemas", "--no-builtin", "-o", "json")

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app
  namespace: default
  labels: {team: a}
data:
  tier: gold
"""

POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: p
spec:
  failurePolicy: FAILURE
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["configmaps"]
SPEC
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: b
spec:
  policyName: p
  validationActions: ACTIONS
"""


def _policy(write: Write, spec: str, *, actions: str = "[Deny]", failure: str = "Fail") -> Path:
    text = POLICY.replace("SPEC", spec.rstrip("\n")).replace("ACTIONS", actions).replace("FAILURE", failure)
    return write("vap.yaml", text)


def run(write: Write, policy: Path) -> tuple[int, Any, str]:
    manifests = write("cm.yaml", CONFIGMAP)
    args = [*BASE, "--admission-policy", str(policy), str(manifests)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    report = json.loads(result.stdout) if result.stdout.startswith("{") else result.stdout
    return result.exit_code, report, result.stderr


def findings(report: Any) -> list[dict[str, Any]]:
    return [f for r in report["results"] for f in r["findings"]]


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
    code, report, _ = run(write, _policy(write, AUDIT, actions=actions))
    assert code == 1, report
    [finding] = findings(report)
    assert finding["rule"] == "p/auditAnnotations/owner"
    assert finding["severity"] == "error"
    assert "resulted in error" in finding["message"]


def test_an_audit_annotation_error_under_ignore_is_not_enforced(write: Write) -> None:
    code, report, _ = run(write, _policy(write, AUDIT, actions="[Warn]", failure="Ignore"))
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
    code, report, _ = run(write, _policy(write, spec))
    assert code == 1
    assert [f["message"] for f in findings(report)] == [
        "padded message",
        "trailing newline",
        "static with spaces",
        "failed expression: false",
    ]
