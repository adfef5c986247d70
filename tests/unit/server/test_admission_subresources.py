"""Admission writes of subresources (`kubectl scale`: an UPDATE of deployments/scale whose object is an
autoscaling/v1 Scale) and ValidatingAdmissionPolicies: the webhook configuration sends the
subresources the policies' rules name, and the server judges such a write with those policies only.

The API server runs a policy whose rules name `deployments/scale` on every `kubectl scale`; a
webhook that is never sent the subresource, or answers it allowed unjudged, would not enforce it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.vap import denying, rule

from trustgate.config import AdmissionSettings, Config, KubernetesSettings
from trustgate.gate import Gate
from trustgate.model import Severity
from trustgate.policy.cel import compile_expression
from trustgate.server import admission
from trustgate.server.webhookconfig import AdmissionScope, scope_notes, webhook_configuration

AT_MOST_FIVE = denying(
    "at-most-five",
    [rule(["UPDATE"], ["deployments/scale"], groups=["apps"])],
    [{"expression": "object.spec.replicas <= 5", "message": "at most 5 replicas"}],
)
SCALE = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
DEPLOYMENTS = {"group": "apps", "version": "v1", "resource": "deployments"}


def _scale(replicas: int, *, typed: bool = True, namespace: str = "shop") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"replicas": replicas},
        "status": {"replicas": 2, "selector": "app=web"},
    }
    return {"apiVersion": "autoscaling/v1", "kind": "Scale", **obj} if typed else obj


def _review(
    replicas: int, *, operation: str = "UPDATE", sub: str = "scale", namespace: str = "shop"
) -> admission.Review:
    """`kubectl scale deploy web --replicas N` as the API server sends it to a webhook."""
    request = {
        "uid": "u-scale",
        "kind": SCALE,
        "resource": DEPLOYMENTS,
        "subResource": sub,
        "requestKind": SCALE,
        "requestResource": DEPLOYMENTS,
        "requestSubResource": sub,
        "namespace": namespace,
        "name": "web",
        "operation": operation,
        "userInfo": {"username": "alice"},
        # typed from request.kind, as the API server types it
        "object": _scale(replicas, typed=False, namespace=namespace),
        "oldObject": _scale(2, namespace=namespace),
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"},
    }
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    parsed = admission.parse(json.dumps(body).encode())
    assert isinstance(parsed, admission.Review)
    return parsed


# -- planning -------------------------------------------------------------------------------------


def test_a_scale_is_planned_for_evaluation_when_admission_policies_are_loaded() -> None:
    plan = admission.plan(_review(100), AdmissionSettings(), admission_policies=True)
    assert plan.response is None and plan.decision is None and not plan.skipped
    assert plan.verify_images is False  # a Scale names no image
    [doc] = plan.documents
    assert (doc.obj["apiVersion"], doc.obj["kind"], doc.obj["spec"]) == (
        "autoscaling/v1",
        "Scale",
        {"replicas": 100},
    )
    assert doc.request is not None and doc.request["subResource"] == "scale"
    assert plan.old is not None and plan.old["spec"] == {"replicas": 2}
    excluded = admission.plan(
        _review(100, namespace="kube-system"), AdmissionSettings(), admission_policies=True
    )
    assert excluded.skipped == "excluded"
    # Without admission policies nothing judges a subresource's write: answered at once, as before.
    skipped = admission.plan(_review(100), AdmissionSettings())
    assert skipped.skipped == "subresource"
    assert skipped.response is not None and skipped.response["response"]["allowed"] is True


# -- the gate -------------------------------------------------------------------------------------


def test_the_gate_judges_a_scale_by_the_admission_policies_only(write: Any) -> None:
    """The bundled policies, schemas and images judge the objects stored, not a Scale (a Scale has
    no containers nor labels they could require); the policy naming deployments/scale does."""
    policy = write("scale.yaml", AT_MOST_FIVE)
    gate = Gate(
        config=Config(kubernetes=KubernetesSettings(schemas=True), admission_policies=(Path(policy),))
    )
    try:
        plan = admission.plan(_review(100), AdmissionSettings(), admission_policies=True)
        old = [plan.old] if plan.old is not None else []
        [result] = gate.evaluate_policies(plan.documents, verify_images=plan.verify_images, old=old).results
        assert [(f.rule, f.severity, f.message) for f in result.findings] == [
            ("at-most-five/0", Severity.ERROR, "at most 5 replicas")
        ]
        assert result.images == []
        plan = admission.plan(_review(5), AdmissionSettings(), admission_policies=True)
        assert gate.evaluate_policies(plan.documents, old=[_scale(2)]).results[0].findings == []
        # Another subresource the policy does not name: judged, and nothing applies.
        plan = admission.plan(_review(100, sub="status"), AdmissionSettings(), admission_policies=True)
        assert gate.evaluate_policies(plan.documents, old=[_scale(2)]).results[0].findings == []
    finally:
        gate.close()


# -- the webhook configuration ---------------------------------------------------------------------


def _policy_rule(operation: str, resources: list[str], groups: tuple[str, ...] = ("apps",)) -> dict[str, Any]:
    return {
        "apiGroups": list(groups),
        "apiVersions": ["*"],
        "operations": [operation],
        "resources": resources,
        "scope": "*",
    }


def _hook(*policy_rules: dict[str, Any]) -> dict[str, Any]:
    settings = AdmissionSettings(fail_open_label=None)
    scope = AdmissionScope(policy_rules=policy_rules)
    hooks: list[dict[str, Any]] = webhook_configuration(settings, kubernetes_version="1.30", scope=scope)[
        "webhooks"
    ]
    return hooks[0]


def _sent(hook: dict[str, Any], operation: str) -> set[tuple[str, str]]:
    return {
        (g, r)
        for rule in hook["rules"]
        if operation in rule["operations"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }


@pytest.mark.parametrize(
    "resources",
    [["deployments/scale"], ["deployments/*"], ["*/scale"], ["*/*"], ["deployments", "replicasets/scale"]],
)
def test_the_subresources_a_policy_names_for_writes_are_sent_as_written(resources: list[str]) -> None:
    """As the API server expands them: a webhook rule of `x/y`, `x/*`, `*/y` or `*/*` sends what the
    same rule of the policy matches, so the rule is sent as it is."""
    for operation in ("CREATE", "UPDATE"):
        hook = _hook(_policy_rule(operation, resources))
        assert {("apps", r) for r in resources} <= _sent(hook, operation)


def _request(group: str, resource: str, sub: str = "") -> dict[str, Any]:
    request: dict[str, Any] = {
        "operation": "UPDATE",
        "resource": {"group": group, "version": "v1", "resource": resource},
        "name": "n1",
        "kind": {"group": group, "version": "v1", "kind": "Node"},
    }
    if sub:
        request["subResource"] = sub
    return request


def _admitted(hook: dict[str, Any], request: dict[str, Any]) -> bool:
    results = [
        compile_expression(c["expression"], variables=["request"]).evaluate({"request": request})
        for c in hook.get("matchConditions", [])
    ]
    return all(r is True for r in results)


def test_housekeeping_subresources_are_left_out_of_a_subresource_of_every_resource() -> None:
    """`*/status` for UPDATE would send every kubelet's Node status: left out, as the housekeeping is
    left out of `*`; the other status writes are sent, and naming the resource sends its own."""
    hook = _hook(_policy_rule("UPDATE", ["*/status"], groups=("*",)))
    assert ("*", "*/status") in _sent(hook, "UPDATE")
    assert not _admitted(hook, _request("", "nodes", "status"))
    assert not _admitted(hook, _request("certificates.k8s.io", "certificatesigningrequests", "status"))
    assert _admitted(hook, _request("apps", "deployments", "status"))
    assert _admitted(hook, _request("", "nodes"))  # the main resource is not sent by */status anyway
    named = _hook(
        _policy_rule("UPDATE", ["*/status"], groups=("*",)),
        _policy_rule("UPDATE", ["nodes/status"], groups=("",)),
    )
    assert _admitted(named, _request("", "nodes", "status"))
    assert not _admitted(named, _request("certificates.k8s.io", "certificatesigningrequests", "status"))
    notes = scope_notes(AdmissionScope(policy_rules=(_policy_rule("UPDATE", ["*/status"], groups=("*",)),)))
    assert any("nodes/status" in n and "nodes" in n for n in notes), notes
