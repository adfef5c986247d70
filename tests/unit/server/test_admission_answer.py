"""`admission.answer`: the deadline, the failure policy and the decision log's, as a pure function."""

from __future__ import annotations

import json

import pytest

from trustgate.config import AdmissionSettings
from trustgate.gate.verdict import Failure
from trustgate.model import Decision, DocumentResult, Finding, Mode, Severity, Source
from trustgate.server import admission

BODY = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "u-1",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "namespace": "shop",
        "name": "p",
        "operation": "CREATE",
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
    },
}


def _review() -> admission.Review:
    parsed = admission.parse(json.dumps(BODY).encode())
    assert isinstance(parsed, admission.Review)
    return parsed


def _decision(*findings: Finding) -> Decision:
    result = DocumentResult(Source("admission:Pod/shop/p"), "v1", "Pod", "shop", "p", list(findings))
    return Decision(gate="admission", mode=Mode.ENFORCE, results=[result], record_id="r-1")


def _answer(
    evaluated: admission.Evaluated, *, fail_open: bool = False, closed: bool = True
) -> admission.Answer:
    return admission.answer(
        _review(), evaluated, deadline_seconds=2.5, fail_open=fail_open, log_fail_closed=closed
    )


@pytest.mark.parametrize("fail_open", [True, False])
def test_a_policy_denial_before_the_deadline_denies_whatever_the_failure_policy(fail_open: bool) -> None:
    answer = _answer(
        admission.Evaluated(timed_out=True, policies_checked=True, denials=["[r] bad"]), fail_open=fail_open
    )
    assert answer.deadline_exceeded and answer.response is None and answer.failed is not None
    assert answer.failed.fail_open is False and answer.failed.kind is Failure.DEADLINE
    assert "denied by policy ([r] bad)" in answer.failed.reason and "2.5s deadline" in answer.failed.reason


@pytest.mark.parametrize(
    ("checked", "says"),
    [(True, "images were not verified"), (False, "every evaluator was busy")],
)
def test_nothing_decided_in_time_follows_the_failure_policy(checked: bool, says: str) -> None:
    for fail_open in (True, False):
        answer = _answer(admission.Evaluated(timed_out=True, policies_checked=checked), fail_open=fail_open)
        assert answer.failed is not None and answer.failed.fail_open is fail_open
        assert answer.failed.kind is Failure.DEADLINE and says in answer.failed.reason


def test_an_evaluation_error_is_an_internal_failure_even_if_it_mentions_a_deadline() -> None:
    answer = _answer(admission.Evaluated(error="transfer deadline of a blob"), fail_open=True)
    assert not answer.deadline_exceeded and answer.failed is not None
    assert answer.failed.kind is Failure.INTERNAL and answer.failed.fail_open
    assert answer.failed.reason == "transfer deadline of a blob"


def test_an_evaluated_decision_is_answered() -> None:
    denial = Finding(rule="no-root", severity=Severity.ERROR, message="runs as root", source="rego")
    answer = _answer(admission.Evaluated(decision=_decision(denial)))
    assert answer.failed is None and answer.response is not None
    out = answer.response["response"]
    assert out["allowed"] is False and out["auditAnnotations"]["record"] == "r-1"
    assert admission.verdict(answer.response) == "denied"


def test_an_unrecorded_decision_fails_closed_when_the_log_is_closed() -> None:
    decision = _decision()
    answer = _answer(admission.Evaluated(decision=decision, unrecorded="disk full"), fail_open=True)
    assert answer.failed is not None and not answer.failed.fail_open
    assert not answer.failed.record and answer.failed.kind is Failure.INTERNAL
    assert decision.record_error == "disk full" and "disk full" in answer.failed.reason

    late = _decision()
    answer = _answer(admission.Evaluated(decision=late, unrecorded="no commit yet", late=True))
    assert answer.failed is not None and answer.failed.record and answer.failed.with_context
    assert not answer.failed.wait and answer.failed.kind is Failure.DEADLINE


@pytest.mark.parametrize(("late", "record"), [(False, "not recorded"), (True, "pending")])
def test_an_unrecorded_decision_is_answered_with_a_warning_when_the_log_is_open(
    late: bool, record: str
) -> None:
    decision = _decision()
    answer = _answer(admission.Evaluated(decision=decision, unrecorded="x", late=late), closed=False)
    assert answer.response is not None and decision.record_id == ""
    out = answer.response["response"]
    assert out["allowed"] is True and out["auditAnnotations"]["record"] == record
    assert "decision log" in out["warnings"][0]
    assert admission.verdict(answer.response) == "warned"


def test_the_failure_policy_of_a_request() -> None:
    review = _review()
    assert not admission.fails_open(review, AdmissionSettings())
    assert admission.fails_open(review, AdmissionSettings(), fail_open_path=True)
    assert admission.fails_open(review, AdmissionSettings(fail_open_namespaces=("sh*",)))
    assert not admission.fails_open(review, AdmissionSettings(fail_open_namespaces=("kube-*",)))


def test_a_bad_review_is_an_error_of_the_hierarchy() -> None:
    from trustgate.errors import InputError

    with pytest.raises(InputError, match="not JSON"):
        admission.parse(b"{")
