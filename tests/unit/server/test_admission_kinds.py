"""The webhook judges any kind it is sent as `trustgate check` judges the same object: non-workload
kinds (Service, Ingress, Namespace, a custom resource) reach every policy, with the same findings."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from trustgate.config import load_config
from trustgate.gate import Gate
from trustgate.server import admission

POLICY = """package main

deny contains msg if {
\tinput.kind == "Service"
\tinput.spec.type == "LoadBalancer"
\tmsg := sprintf("Service %s: no LoadBalancer", [input.metadata.name])
}

deny contains msg if {
\tinput.kind == "Ingress"
\tnot input.spec.tls
\tmsg := sprintf("Ingress %s: TLS only", [input.metadata.name])
}

deny contains msg if {
\tinput.kind == "Namespace"
\tnot input.metadata.labels.owner
\tmsg := sprintf("Namespace %s: needs an owner", [input.metadata.name])
}

deny contains msg if {
\tinput.kind == "Widget"
\tinput.spec.size > 3
\tmsg := sprintf("Widget %s: too big", [input.metadata.name])
}

deny contains msg if {
\tinput.metadata.namespace == "frozen"
\tmsg := sprintf("%s %s: namespace frozen takes no new objects", [input.kind, input.metadata.name])
}
"""

# What `check` decides of each: allowed or not (the webhook must agree).
ALLOWED = {
    "service": False,
    "ingress": False,
    "namespace": False,
    "namespace-owned": True,  # not an object *in* frozen: check judges it without metadata.namespace
    "custom": False,
    "in-frozen": False,
}
OBJECTS: dict[str, tuple[dict[str, Any], str]] = {  # name -> (object, its request.namespace)
    "service": (
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
        "shop",
    ),
    "ingress": (
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}},
        },
        "shop",
    ),
    # The API server sends a Namespace's own name as request.namespace.
    "namespace": ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "frozen"}}, "frozen"),
    "namespace-owned": (
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "frozen", "labels": {"owner": "a"}}},
        "frozen",
    ),
    "custom": (
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": "shop"},
            "spec": {"size": 5},
        },
        "shop",
    ),
    "in-frozen": (
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "frozen"}},
        "frozen",
    ),
}


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    directory = tmp_path_factory.mktemp("config")
    (directory / "policy.rego").write_text(POLICY)
    path = directory / "trustgate.yaml"
    path.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        "manifests:\n  policies:\n    - builtin: pss-baseline\n    - path: policy.rego\n"
    )
    return Gate(config=load_config(path))


def _review(obj: dict[str, Any], namespace: str, operation: str) -> admission.Review:
    group, _, version = obj["apiVersion"].rpartition("/")
    sent = copy.deepcopy(obj)
    if obj["kind"] != "Namespace":
        sent["metadata"].pop("namespace")  # kubectl -n: the API server fills it in after admission
    request: dict[str, Any] = {
        "uid": "u-1",
        "kind": {"group": group, "version": version, "kind": obj["kind"]},
        "namespace": namespace,
        "name": obj["metadata"]["name"],
        "operation": operation,
        "object": sent,
        "userInfo": {"username": "alice"},
    }
    if operation == "UPDATE":
        request["oldObject"] = sent
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    parsed = admission.parse(json.dumps(body).encode())
    assert isinstance(parsed, admission.Review)
    return parsed


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
@pytest.mark.parametrize("name", list(OBJECTS))
def test_serve_judges_any_kind_as_check_does(gate: Gate, tmp_path: Path, name: str, operation: str) -> None:
    obj, namespace = OBJECTS[name]
    manifest = tmp_path / "object.yaml"
    manifest.write_text(yaml.safe_dump(obj))
    checked = gate.check([str(manifest)])
    assert checked.allowed is ALLOWED[name]
    review = _review(obj, namespace, operation)
    plan = admission.plan(review, gate.config.admission)
    assert plan.response is None and plan.documents, plan.skipped
    served = gate.evaluate(plan.documents, gate="admission")

    def findings(decision: Any) -> list[tuple[str, str, str]]:
        return sorted((f.rule, f.severity.value, f.message) for r in decision.results for f in r.findings)

    assert findings(served) == findings(checked)
    assert served.allowed == checked.allowed
    answer = admission.respond(review, served)["response"]
    assert answer["allowed"] is checked.allowed
