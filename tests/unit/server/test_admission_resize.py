"""An in-place resize (Kubernetes 1.33+: `kubectl patch pod web --subresource resize`) is an UPDATE
of pods/resize whose object is the whole Pod with its containers' resources changed: a change of the
Pod's spec, judged as a Pod UPDATE by everything that judges Pods, and sent wherever Pods are.

It was answered `skipped: subresource` (or, with admission policies loaded, judged by them alone),
so a limit the user's Rego or the bundled sets put on a Pod's resources was passed by resizing it
after creation."""

from __future__ import annotations

import json
from typing import Any

from support.webhook import review

from trustgate import kinds
from trustgate.config import AdmissionSettings, Config, KubernetesSettings, PolicySource
from trustgate.gate import Gate, checks
from trustgate.model import Document, Source
from trustgate.server import admission
from trustgate.server.webhookconfig import AdmissionScope, webhook_configuration

AT_MOST_2GI = """\
package main

import rego.v1

deny contains msg if {
\tsome c in input.spec.containers
\tc.resources.limits.memory == "64Gi"
\tmsg := sprintf("%s: at most 2Gi of memory", [c.name])
}
"""


def _pod(memory: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example/app:1",
                    "resources": {"limits": {"memory": memory}},
                }
            ]
        },
    }


def _resize(memory: str) -> admission.Review:
    body = review(_pod(memory), operation="UPDATE", old=_pod("1Gi"), sub_resource="resize")
    body["request"]["resource"] = {"group": "", "version": "v1", "resource": "pods"}
    parsed = admission.parse(json.dumps(body).encode())
    assert isinstance(parsed, admission.Review)
    return parsed


def test_a_resize_is_judged_as_a_pod_update(write: Any) -> None:
    rego = write("limits.rego", AT_MOST_2GI)
    gate = Gate(
        config=Config(policies=(PolicySource(path=rego),), kubernetes=KubernetesSettings(schemas=False))
    )
    try:
        for policies in (False, True):
            plan = admission.plan(_resize("64Gi"), AdmissionSettings(), admission_policies=policies)
            assert plan.response is None and not plan.skipped, plan.response
            [doc] = plan.documents
            assert doc.obj["kind"] == "Pod"
            old = [plan.old] if plan.old is not None else []
            [result] = gate.evaluate_policies(plan.documents, verify_images=False, old=old).results
            assert [f.message for f in result.findings] == ["app: at most 2Gi of memory"]
        plan = admission.plan(_resize("2Gi"), AdmissionSettings())
        assert gate.evaluate_policies(plan.documents, verify_images=False).results[0].findings == []
    finally:
        gate.close()


def test_a_resize_is_sent_wherever_pods_are() -> None:
    settings = AdmissionSettings(fail_open_label=None)
    for scope in (AdmissionScope(), AdmissionScope(workloads=False, resources=(("", "pods"),))):
        [hook] = webhook_configuration(settings, kubernetes_version="1.33", scope=scope)["webhooks"]
        sent = {
            (g, r)
            for rule in hook["rules"]
            if "UPDATE" in rule["operations"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
        }
        assert ("", "pods/resize") in sent, hook["rules"]


def test_a_create_of_pods_resize_is_judged_as_a_pod() -> None:
    # The API server serves pods/resize for UPDATE only; should a CREATE arrive, its object is the
    # Pod and it is judged as one, as the gate's documents judge it (not as a subresource's object).
    body = review(_pod("64Gi"), operation="CREATE", sub_resource="resize")
    parsed = admission.parse(json.dumps(body).encode())
    assert isinstance(parsed, admission.Review)
    for policies in (False, True):  # without admission policies it was answered `skipped`, unjudged
        plan = admission.plan(parsed, AdmissionSettings(), admission_policies=policies)
        assert plan.response is None and not plan.skipped, plan.response
        [doc] = plan.documents
        assert doc.obj["kind"] == "Pod"
        assert not checks.is_subresource_write(doc)


def test_serve_and_the_gate_tell_subresource_writes_alike() -> None:
    # `serve`'s plan decides what is a write of a subresource's own object from the review; the gate
    # decides it again from the document's request: the two must never part.
    subs = ["", "status", "scale", "eviction", "binding", "ephemeralcontainers", "resize", "exec", "approval"]
    for operation in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        for sub in subs:
            body = review(_pod("1Gi"), operation=operation, old=_pod("1Gi"), sub_resource=sub or None)
            parsed = admission.parse(json.dumps(body).encode())
            assert isinstance(parsed, admission.Review)
            document = Document(Source("admission:x"), _pod("1Gi"), request=parsed.request)
            written = kinds.writes_subresource(parsed.operation, parsed.sub_resource)
            assert checks.is_subresource_write(document) == written, (operation, sub)
            assert written == (
                operation in ("CREATE", "UPDATE") and sub not in ("", "ephemeralcontainers", "resize")
            )
