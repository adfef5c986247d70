"""What a finding weighs, decided once for every gate: severities, exceptions, failure decisions."""

from __future__ import annotations

import datetime as dt

import pytest

from trustgate.config import ExceptionRule
from trustgate.gate.verdict import Failure, Waivers, failure_decision, finding_order, severity
from trustgate.model import ExitCode, Finding, Mode, Severity

TODAY = dt.date(2026, 6, 1)


@pytest.mark.parametrize(
    ("blocking", "mode", "expected"),
    [
        (True, Mode.ENFORCE, Severity.ERROR),
        (True, Mode.WARN, Severity.WARNING),
        (True, Mode.AUDIT, Severity.INFO),
        (False, Mode.ENFORCE, Severity.WARNING),
        (False, Mode.WARN, Severity.WARNING),
        (False, Mode.AUDIT, Severity.INFO),
    ],
)
def test_severity_of_a_finding_under_each_mode(blocking: bool, mode: Mode, expected: Severity) -> None:
    assert severity(blocking, mode) == expected


def test_findings_are_ordered_by_severity_then_line_then_rule() -> None:
    findings = [
        Finding(rule="b", severity=Severity.INFO, message="", source="rego", line=1),
        Finding(rule="z", severity=Severity.ERROR, message="", source="rego", line=9),
        Finding(rule="a", severity=Severity.ERROR, message="", source="rego", line=9),
        Finding(rule="c", severity=Severity.WARNING, message="", source="rego", line=2),
        Finding(rule="d", severity=Severity.ERROR, message="", source="rego", line=3),
    ]
    assert [f.rule for f in sorted(findings, key=finding_order)] == ["d", "a", "z", "c", "b"]


def _rule(name: str, expires: dt.date, **match: tuple[str, ...]) -> ExceptionRule:
    return ExceptionRule(name=name, owner="team", reason="why", expires=expires, rules=("no-*",), **match)


def test_a_waiver_makes_a_covered_finding_info_and_an_expired_one_only_a_note() -> None:
    waivers = Waivers((_rule("w", TODAY + dt.timedelta(days=1), namespaces=("ops",)),), TODAY)
    covered = Finding(rule="no-privileged", severity=Severity.ERROR, message="", source="rego")
    waivers.apply("ops", "Deployment", "x", covered)
    assert covered.severity == Severity.INFO and covered.exception is not None
    elsewhere = Finding(rule="no-privileged", severity=Severity.ERROR, message="", source="rego")
    waivers.apply("shop", "Deployment", "x", elsewhere)
    assert elsewhere.severity == Severity.ERROR and elsewhere.exception is None

    expired = Waivers((_rule("old", TODAY - dt.timedelta(days=1)),), TODAY)
    finding = Finding(rule="no-privileged", severity=Severity.ERROR, message="", source="rego")
    expired.apply(None, None, None, finding)
    assert finding.severity == Severity.ERROR and finding.exception is not None and finding.exception.expired
    assert expired.expired_notes() and "expired" in expired.expired_notes()[0]
    assert not Waivers((), TODAY)


def test_an_exception_for_a_namespace_does_not_waive_a_kind_of_unknown_scope_and_says_why() -> None:
    """Cluster-scoped, the object would be in no namespace: only `*` covers it for sure."""
    waivers = Waivers((_rule("w", TODAY + dt.timedelta(days=1), namespaces=("ops",)),), TODAY)
    finding = Finding(rule="no-privileged", severity=Severity.ERROR, message="", source="rego")
    waivers.apply("ops", "Widget", "x", finding, scope_unknown=True)
    assert finding.severity == Severity.ERROR and finding.exception is None
    assert "scope of Widget is unknown" in finding.note and "--crd" in finding.note
    anywhere = Waivers((_rule("w", TODAY + dt.timedelta(days=1), namespaces=("*",)),), TODAY)
    finding = Finding(rule="no-privileged", severity=Severity.ERROR, message="", source="rego")
    anywhere.apply("ops", "Widget", "x", finding, scope_unknown=True)
    assert finding.severity == Severity.INFO


def test_a_long_running_gate_stops_waiving_on_the_day_an_exception_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a fixed date (the webhook runs for weeks), each use is judged on its own day."""
    import trustgate.gate.verdict as verdict

    days = iter([TODAY, TODAY + dt.timedelta(days=2)])

    class Clock(dt.date):
        @classmethod
        def today(cls) -> dt.date:
            return next(days)

    monkeypatch.setattr(verdict.dt, "date", Clock)
    waivers = Waivers((_rule("w", TODAY + dt.timedelta(days=1)),))
    before = Finding(rule="no-privileged", severity=Severity.ERROR, message="", source="rego")
    waivers.apply(None, None, None, before)
    assert before.severity == Severity.INFO
    after = Finding(rule="no-privileged", severity=Severity.ERROR, message="", source="rego")
    waivers.apply(None, None, None, after)
    assert after.severity == Severity.ERROR and after.exception is not None and after.exception.expired


@pytest.mark.parametrize(
    ("failure", "source"), [(Failure.DEADLINE, "registry"), (Failure.INTERNAL, "engine")]
)
@pytest.mark.parametrize("fail_open", [True, False])
def test_a_failure_decision_is_told_apart_by_its_typed_reason(
    failure: Failure, source: str, fail_open: bool
) -> None:
    # The reason text no longer decides the kind: "deadline" in an internal error's text does not
    # make it a registry failure.
    decision = failure_decision(
        "Pod/shop/p", "internal error near a deadline", failure=failure, fail_open=fail_open, revision="r",
        notes=["dryRun"],
    )  # fmt: skip
    (result,) = decision.results
    (finding,) = result.findings
    assert finding.source == source and result.kind == "Pod"
    assert finding.severity == (Severity.WARNING if fail_open else Severity.ERROR)
    assert decision.notes == ["dryRun"] and decision.policy_revision == "r"
    assert decision.allowed is fail_open and decision.exit_code() == ExitCode.NOT_EVALUATED
