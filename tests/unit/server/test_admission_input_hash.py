"""A decision record's `inputHash` of an admission request: the raw bytes' digest only when nothing
was redacted, so that the record never lets anyone test guesses of a redacted value."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from trustgate.decisions.record import RecordOptions, RedactionRule, build_record
from trustgate.model import Decision, DocumentResult, Mode, Source
from trustgate.server import admission
from trustgate.server.evaluation import context_of


def _body(
    obj: dict[str, Any] | None, *, old: dict[str, Any] | None = None, operation: str = "CREATE"
) -> bytes:
    kind = (obj or old or {}).get("kind", "Pod")
    request = {
        "uid": "u-1",
        "kind": {"group": "", "version": "v1", "kind": kind},
        "namespace": "shop",
        "name": "s",
        "operation": operation,
        "userInfo": {"username": "alice"},
        "object": obj,
        "oldObject": old,
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


def _secret(pin: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "shop"},
        "data": {"pin": pin},
    }


def _record(body: bytes, options: RecordOptions | None = None) -> dict[str, Any]:
    review = admission.parse(body)
    assert isinstance(review, admission.Review)
    obj = review.obj if review.obj is not None else review.old
    result = DocumentResult(Source(file="admission"), "v1", review.kind, "shop", "s", [], obj=obj)
    decision = Decision(gate="admission", mode=Mode.ENFORCE, results=[result])
    return build_record(decision, context_of(review), options=options)


def _raw(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def test_a_secret_s_record_hash_does_not_depend_on_its_data() -> None:
    first, second = _body(_secret("MDAwMQ==")), _body(_secret("OTk5OQ=="))
    records = [_record(first), _record(second)]
    assert records[0]["inputHash"] == records[1]["inputHash"]  # no guess of the PIN can be tested
    assert records[0]["inputHash"] not in (_raw(first), _raw(second))
    assert "MDAwMQ==" not in json.dumps(records[0])
    assert any("redacted values replaced" in note for note in records[0]["notes"])


def test_a_deleted_secret_s_old_object_is_redacted_before_hashing() -> None:
    first = _body(None, old=_secret("MDAwMQ=="), operation="DELETE")
    second = _body(None, old=_secret("OTk5OQ=="), operation="DELETE")
    assert _record(first)["inputHash"] == _record(second)["inputHash"]


def test_a_redact_rule_changes_the_hash_to_the_redacted_request() -> None:
    def pod(token: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "s", "annotations": {"token": token}}}

    options = RecordOptions(redact=(RedactionRule.parse('metadata.annotations["token"]'),))
    first, second = _body(pod("1234")), _body(pod("5678"))
    assert _record(first, options)["inputHash"] == _record(second, options)["inputHash"]
    assert _record(first, options)["inputHash"] != _raw(first)


def test_a_secret_nested_in_another_object_is_redacted_before_hashing() -> None:
    def wrapper(pin: str) -> dict[str, Any]:
        return {
            "apiVersion": "kubernetes.crossplane.io/v1alpha2",
            "kind": "Object",
            "metadata": {"name": "s", "namespace": "shop"},
            "spec": {"forProvider": {"manifest": _secret(pin)}},
        }

    first, second = _body(wrapper("MDAwMQ==")), _body(wrapper("OTk5OQ=="))
    assert _record(first)["inputHash"] == _record(second)["inputHash"]


def test_nothing_redacted_keeps_the_raw_bytes_digest() -> None:
    # The raw digest tells an integer from the canonical form's marker string for it (ADR 7).
    big = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "s"}, "spec": {"n": 2**60}}
    marker = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "s"},
        "spec": {"n": f"i-json:int:{2**60}"},
    }
    records = [_record(_body(big)), _record(_body(marker))]
    assert records[0]["inputHash"] == _raw(_body(big))
    assert records[0]["inputHash"] != records[1]["inputHash"]
    assert not any("redacted values" in note for note in records[0]["notes"])


def test_an_object_without_its_kind_is_redacted_as_the_request_s_kind() -> None:
    def untyped(pin: str) -> dict[str, Any]:
        secret = _secret(pin)
        del secret["kind"], secret["apiVersion"]
        return secret

    first, second = _body(untyped("MDAwMQ==")), _body(untyped("OTk5OQ=="))
    first = first.replace(b'"kind": "Pod"', b'"kind": "Secret"')
    second = second.replace(b'"kind": "Pod"', b'"kind": "Secret"')
    assert _record(first)["inputHash"] == _record(second)["inputHash"] != _raw(first)


def test_a_malformed_object_kind_is_recorded_not_raised() -> None:
    body = _body({"apiVersion": "v1", "kind": ["Secret"], "metadata": {"name": "s"}})
    review = admission.parse(body)
    assert isinstance(review, admission.Review)
    decision = Decision(gate="admission", mode=Mode.ENFORCE, results=[])
    assert build_record(decision, context_of(review))["inputHash"] == _raw(body)
