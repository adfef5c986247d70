"""Which engines judge an admission write of a subresource.

A status write (deployments/status: its object is the Deployment, whose spec the API server's status
strategy keeps) is sent for an admission policy naming `*/status`, and judged by that policy alone:
a Gatekeeper constraint on Deployments, which no Gatekeeper webhook is sent status writes for, would
stop the deployment controller's status writes on every Deployment it finds wanting. A Scale
(deployments/scale) is an object of its own kind, which Gatekeeper's webhook reviews as such.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.vap import denying, rule

from trustgate import kinds
from trustgate.config import AdmissionSettings, Config, GatekeeperSettings, KubernetesSettings
from trustgate.gate import Gate
from trustgate.server import admission, webhookconfig

NEEDS_OWNER = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: needsowner}
spec:
  crd: {spec: {names: {kind: NeedsOwner}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package needsowner
        violation[{"msg": "needs an owner label"}] {
          not input.review.object.metadata.labels.owner
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: NeedsOwner
metadata: {name: owners}
spec:
  match:
    kinds:
      - {apiGroups: ["apps"], kinds: ["Deployment"]}
      - {apiGroups: ["autoscaling"], kinds: ["Scale"]}
"""
NO_CONTROLLER = denying(
    "status-by-controllers",
    [rule(["UPDATE"], ["*/status"], groups=["*"])],
    [{"expression": "request.userInfo.username != 'mallory'", "message": "not by mallory"}],
)


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {}},
        "status": {"replicas": 1},
    }


def _scale() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 3},
    }


def _review(obj: dict[str, Any], sub: str, user: str) -> admission.Review:
    group, _, version = obj["apiVersion"].rpartition("/")
    request = {
        "uid": f"u-{sub}",
        "kind": {"group": group, "version": version, "kind": obj["kind"]},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "subResource": sub,
        "namespace": "shop",
        "name": "web",
        "operation": "UPDATE",
        "userInfo": {"username": user},
        "object": obj,
        "oldObject": obj,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"},
    }
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    parsed = admission.parse(json.dumps(body).encode())
    assert isinstance(parsed, admission.Review)
    return parsed


def _rules(gate: Gate, review: admission.Review) -> list[str]:
    plan = admission.plan(review, AdmissionSettings(), admission_policies=True)
    assert plan.response is None, plan.response
    old = [plan.old] if plan.old is not None else []
    [result] = gate.evaluate_policies(plan.documents, verify_images=False, old=old).results
    return sorted(f.rule for f in result.findings)


def test_a_status_write_is_judged_by_admission_policies_and_a_scale_by_gatekeeper_too(write: Any) -> None:
    constraints = write("gk.yaml", NEEDS_OWNER)
    policy = write("status.yaml", NO_CONTROLLER)
    gate = Gate(
        config=Config(
            policies=(),
            kubernetes=KubernetesSettings(schemas=False),
            gatekeeper=GatekeeperSettings(paths=(Path(constraints),)),
            admission_policies=(Path(policy),),
        )
    )
    try:
        controller = "system:serviceaccount:kube-system:deployment-controller"
        assert _rules(gate, _review(_deployment(), "status", controller)) == []
        assert _rules(gate, _review(_deployment(), "status", "mallory")) == ["status-by-controllers/0"]
        assert _rules(gate, _review(_scale(), "scale", "alice")) == ["NeedsOwner/owners"]
    finally:
        gate.close()


def test_check_says_a_constraint_on_scales_is_judged_at_admission_only(write: Any) -> None:
    # No manifest is a Scale request: `check` and `presync` never apply such a constraint, and say so;
    # at admission (`serve`), where it is judged, the note would be wrong.
    constraints = write("gk.yaml", NEEDS_OWNER)
    config = Config(
        policies=(),
        kubernetes=KubernetesSettings(schemas=False),
        gatekeeper=GatekeeperSettings(paths=(Path(constraints),)),
    )
    with Gate(config=config) as gate:
        deployment = write("web.yaml", json.dumps(_deployment()))
        decision = gate.check([str(deployment)])
        [note] = [n for n in decision.notes if "NeedsOwner/owners" in n]
        assert "autoscaling/Scale" in note and "gk.yaml:" in note and "trustgate serve" in note
        plan = admission.plan(
            _review(_scale(), "scale", "alice"), AdmissionSettings(), admission_policies=True
        )
        admitted = gate.decide(gate.evaluate_policies(plan.documents, verify_images=False), gate="admission")
        assert not [n for n in admitted.notes if "NeedsOwner/owners" in n]


def test_the_kinds_only_subresources_carry_are_one_list() -> None:
    # webhook-config sends each such kind's subresources; the gate's note names the same kinds.
    assert set(webhookconfig.SUBRESOURCE_KINDS) == kinds.SUBRESOURCE_ONLY_KINDS
