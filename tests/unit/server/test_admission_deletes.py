"""Admission DELETEs and ValidatingAdmissionPolicies: planning, the gate, the webhook configuration.

The API server runs a policy whose rules name DELETE on a DELETE with `object` null and `oldObject`
the object deleted; a webhook that answers every DELETE allowed would not enforce it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.vap import denying, rule

from trustgate.config import AdmissionSettings, Config, KubernetesSettings
from trustgate.gate import Gate
from trustgate.model import Severity
from trustgate.server import admission
from trustgate.server.webhookconfig import AdmissionScope, webhook_configuration

NO_PROD_DELETES = denying(
    "no-prod-deletes",
    [rule(["DELETE"], ["pods", "namespaces"], versions=["*"])],
    [
        {
            "expression": "oldObject.metadata.?labels.?env.orValue('') != 'prod'",
            "message": "prod objects are not deleted",
        }
    ],
)
POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"env": "prod"}},
    "spec": {"containers": [{"name": "c", "image": "nginx:latest", "securityContext": {"privileged": True}}]},
}
NAMESPACE: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}}


def _review(old: dict[str, Any] | None, *, kind: str = "Pod", namespace: str = "shop") -> admission.Review:
    request = {
        "uid": "u-1",
        "kind": {"group": "", "version": "v1", "kind": kind},
        "resource": {"group": "", "version": "v1", "resource": kind.lower() + "s"},
        "namespace": namespace,
        "name": (old or {}).get("metadata", {}).get("name", "p"),
        "operation": "DELETE",
        "userInfo": {"username": "alice"},
        "object": None,
        "oldObject": old,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"},
    }
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    parsed = admission.parse(json.dumps(body).encode())
    assert isinstance(parsed, admission.Review)
    return parsed


def test_a_delete_is_planned_for_evaluation_when_admission_policies_are_loaded() -> None:
    untyped = {k: v for k, v in POD.items() if k not in ("apiVersion", "kind")}
    plan = admission.plan(_review(untyped), AdmissionSettings(), admission_policies=True)
    assert plan.response is None and plan.decision is None and plan.protected is None
    assert not plan.skipped and plan.verify_images is False
    [doc] = plan.documents
    # The object deleted, typed from request.kind and placed in the request's namespace.
    assert (doc.obj["apiVersion"], doc.obj["kind"], doc.obj["metadata"]["namespace"]) == ("v1", "Pod", "shop")
    assert doc.request is not None and doc.request["operation"] == "DELETE"
    assert "object" not in doc.request and "oldObject" not in doc.request
    # Without admission policies nothing judges a deletion: answered at once, as before.
    skipped = admission.plan(_review(POD), AdmissionSettings(), admission_policies=False)
    assert skipped.response is not None and skipped.response["response"]["allowed"] is True


def test_a_protected_delete_keeps_its_approval_beside_the_policies() -> None:
    settings = AdmissionSettings()
    plan = admission.plan(
        _review(NAMESPACE, kind="Namespace", namespace="payments"), settings, admission_policies=True
    )
    assert plan.decision is None and plan.response is None
    assert plan.protected is not None
    assert [f.rule for r in plan.protected.results for f in r.findings] == [admission.PROTECTED_DELETE_RULE]
    [doc] = plan.documents
    assert "namespace" not in doc.obj["metadata"]  # a Namespace's request.namespace is its own name
    controller = admission.plan(
        _review(NAMESPACE, kind="Namespace", namespace="payments"),
        settings,
        delete_actors=("alice",),
        admission_policies=True,
    )
    assert controller.protected is not None
    assert not [f for r in controller.protected.results for f in r.findings]
    assert any("allowed controller" in n for n in controller.protected.notes)


def test_a_delete_without_the_object_deleted_is_refused_not_allowed() -> None:
    plan = admission.plan(_review(None), AdmissionSettings(), admission_policies=True)
    assert plan.response is not None
    out = plan.response["response"]
    assert out["allowed"] is False and out["status"]["code"] == 400
    assert "request.oldObject" in out["status"]["message"]


def test_the_gate_judges_a_deletion_by_the_admission_policies_only(write: Any) -> None:
    """The bundled policies (privileged, latest tag) judge objects: the deleted Pod is not theirs to
    judge; the admission policy matching DELETE is, with `object` null."""
    from trustgate.server.pool import _join_protected

    policy = write("deletes.yaml", NO_PROD_DELETES)
    gate = Gate(
        config=Config(kubernetes=KubernetesSettings(schemas=False), admission_policies=(Path(policy),))
    )
    try:
        plan = admission.plan(_review(POD), AdmissionSettings(), admission_policies=True)
        policies = gate.evaluate_policies(plan.documents, verify_images=plan.verify_images)
        [result] = policies.results
        assert [(f.rule, f.severity) for f in result.findings] == [("no-prod-deletes/0", Severity.ERROR)]
        assert result.images == []
        dev = {**POD, "metadata": {"name": "p", "labels": {"env": "dev"}}}
        plan = admission.plan(_review(dev), AdmissionSettings(), admission_policies=True)
        assert gate.evaluate_policies(plan.documents).results[0].findings == []
        # A protected kind: the approval's finding joins the policy's, in one result.
        ns = {**NAMESPACE, "metadata": {"name": "payments", "labels": {"env": "prod"}}}
        plan = admission.plan(
            _review(ns, kind="Namespace", namespace="payments"), AdmissionSettings(), admission_policies=True
        )
        policies = gate.evaluate_policies(plan.documents)
        assert plan.protected is not None
        _join_protected(policies.results, plan.protected)
        assert sorted(f.rule for f in policies.results[0].findings) == [
            admission.PROTECTED_DELETE_RULE,
            "no-prod-deletes/0",
        ]
    finally:
        gate.close()


def test_the_webhook_configuration_sends_the_deletes_admission_policies_judge() -> None:
    rule = {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["DELETE"],
        "resources": ["configmaps"],
        "scope": "*",
    }
    manifest = webhook_configuration(AdmissionSettings(), scope=AdmissionScope(policy_rules=[rule]))
    for hook in manifest["webhooks"]:
        # The fail-open webhook sends namespaced objects only (cluster-scoped ones go to the main one).
        fail_open = hook["name"].startswith("validate-fail-open")
        assert ({**rule, "scope": "Namespaced"} if fail_open else rule) in hook["rules"]
        protected = [r for r in hook["rules"] if r["operations"] == ["DELETE"] and r is not rule]
        assert any("namespaces" in r["resources"] for r in protected)  # the protected kinds' stay


def _connect(obj: dict[str, Any] | None, *, namespace: str = "shop") -> admission.Review:
    kind = {"group": "", "version": "v1", "kind": "PodExecOptions"}
    request = {
        "uid": "u-2",
        "kind": kind,
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "subResource": "exec",
        "requestKind": kind,
        "namespace": namespace,
        "name": "p",
        "operation": "CONNECT",
        "userInfo": {"username": "alice"},
        "object": obj,
        "oldObject": None,
        "options": None,
    }
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    parsed = admission.parse(json.dumps(body).encode())
    assert isinstance(parsed, admission.Review)
    return parsed


def test_a_connect_is_planned_for_evaluation_when_admission_policies_are_loaded() -> None:
    options = {"stdout": True, "command": ["sh"]}  # typed from request.kind, as the API server types it
    plan = admission.plan(_connect(options), AdmissionSettings(), admission_policies=True)
    assert plan.response is None and plan.decision is None and not plan.skipped
    [doc] = plan.documents
    assert (doc.obj["apiVersion"], doc.obj["kind"], doc.obj["command"]) == ("v1", "PodExecOptions", ["sh"])
    assert doc.request is not None and doc.request["operation"] == "CONNECT"
    assert doc.request["subResource"] == "exec"
    refused = admission.plan(_connect(None), AdmissionSettings(), admission_policies=True)
    assert refused.response is not None and refused.response["response"]["allowed"] is False
    excluded = admission.plan(
        _connect(options, namespace="kube-system"), AdmissionSettings(), admission_policies=True
    )
    assert excluded.skipped == "excluded"
    # Without admission policies nothing judges a CONNECT: answered at once, as before.
    skipped = admission.plan(_connect(options), AdmissionSettings())
    assert skipped.response is not None and skipped.response["response"]["allowed"] is True
