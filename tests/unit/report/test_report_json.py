"""The JSON report is `Decision.to_json()`, printed."""

from __future__ import annotations

import json

from report_cases import APP, doc

from trustgate.model import Decision, Finding, Mode, Severity
from trustgate.report import json_report


def test_is_exactly_to_json(sample_decision: Decision) -> None:
    assert json.loads(json_report.render(sample_decision)) == sample_decision.to_json()


def test_shape(sample_decision: Decision) -> None:
    data = json.loads(json_report.render(sample_decision))
    assert data["summary"] == {"documents": 8, "passed": 5, "failed": 2, "warnings": 2, "errors": 1}
    assert data["allowed"] is False
    assert data["notes"] == ["exception agent-root expired on 2024-01-01"]
    first = data["results"][0]
    assert {k: first[k] for k in ("file", "line", "apiVersion", "kind", "namespace", "name", "status")} == {
        "file": APP,
        "line": 1,
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": "prod",
        "name": "web",
        "status": "failed",
    }
    error = first["findings"][0]
    assert error["rule"] == "images/no-latest"
    assert error["severity"] == "error"
    assert error["path"] == "spec.template.spec.containers[0].image"
    assert error["line"] == 21
    assert error["fix"].startswith("pin the image")
    waived = data["results"][3]["findings"][0]
    assert waived["severity"] == "info"
    assert waived["ruleSeverity"] == "error"
    assert waived["exception"]["name"] == "node-agent-privileged"
    assert data["results"][5]["status"] == "error"
    assert data["results"][6]["file"] == "-"


def test_indented_by_two(sample_decision: Decision) -> None:
    assert json_report.render(sample_decision).startswith('{\n  "summary": {\n    "documents": 8,')


def test_non_ascii_and_controls_are_escaped() -> None:
    finding = Finding(rule="r/x", severity=Severity.ERROR, message="naïve \x1b[31m ✗", source="rego")
    out = json_report.render(Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(APP, 1, [finding])]))
    assert out.isascii()
    assert "\x1b" not in out
    assert json.loads(out)["results"][0]["findings"][0]["message"] == "naïve \x1b[31m ✗"
