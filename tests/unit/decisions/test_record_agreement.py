"""`contradiction`: records as gates build them agree with themselves; a lone edit does not."""

from __future__ import annotations

from typing import Any

import pytest

from trustgate.decisions.chain import contradiction
from trustgate.decisions.record import build_record
from trustgate.model import Decision, DocumentResult, Finding, Mode, Severity, Source

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"}}


def _doc(*findings: Finding, kind: str | None = "Pod") -> DocumentResult:
    return DocumentResult(Source("pod.yaml", 1), "v1", kind, "shop", "p", list(findings), POD)


BLOCK = Finding("no-priv", Severity.ERROR, "privileged", "rego")
WARN = Finding("latest-tag", Severity.WARNING, "latest", "rego", rule_severity=Severity.WARNING)
INFO = Finding("audit", Severity.INFO, "audited", "rego")
UNREADABLE = Finding("input", Severity.ERROR, "cannot parse", "input")

DECISIONS = {
    "allow": Decision("ci", Mode.ENFORCE, [_doc(), _doc(INFO)]),
    "warn": Decision("ci", Mode.ENFORCE, [_doc(WARN), _doc()]),
    "deny": Decision("ci", Mode.ENFORCE, [_doc(BLOCK, WARN), _doc()]),
    "error": Decision("ci", Mode.ENFORCE, [_doc(UNREADABLE, kind=None), _doc(BLOCK)]),
    "empty": Decision("presync", Mode.ENFORCE, []),
    "unrecorded": Decision("admission", Mode.ENFORCE, [_doc()], record_error="the log is down"),
}


@pytest.mark.parametrize("name", DECISIONS)
def test_records_built_by_gates_agree_with_themselves(name: str) -> None:
    assert contradiction(build_record(DECISIONS[name])) is None


def _edit(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return record | changes


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        ("deny", {"verdict": "allow"}, "exit code is 1"),
        ("deny", {"verdict": "allow", "exitCode": 0}, "a finding blocks"),
        ("deny", {"findings": []}, "no finding blocks"),
        ("warn", {"verdict": "allow"}, "counts warnings"),
        ("allow", {"verdict": "deny", "exitCode": 1}, "no finding blocks"),
        ("error", {"verdict": "deny", "exitCode": 1}, "could not be evaluated"),
    ],
)
def test_a_lone_edit_contradicts_the_rest(name: str, changes: dict[str, Any], message: str) -> None:
    record = build_record(DECISIONS[name])
    problem = contradiction(_edit(record, **changes))
    assert problem is not None and message in problem


def test_summary_counts_must_match_the_results() -> None:
    record = build_record(DECISIONS["deny"])
    record["summary"] = record["summary"] | {"failed": 0, "passed": 2}
    assert "the summary counts" in (contradiction(record) or "")
