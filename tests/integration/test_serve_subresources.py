"""`trustgate serve` runs ValidatingAdmissionPolicies on the CREATEs and UPDATEs of the subresources
their rules name, as the API server does: `kubectl scale deploy web --replicas 100` is an UPDATE of
apps/v1 deployments/scale whose `object` and `oldObject` are autoscaling/v1 Scales. Over real HTTPS
against a real `trustgate serve`, with a SQLite decision log.

The review is shaped as the API server sends it (`kind` and `requestKind` the Scale's, `resource`
and `requestResource` apps/v1 deployments, `subResource` scale).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from support.vap import denying, rule
from support.webhook import CertSet, make_certs, review, start_server

AT_MOST_FIVE = denying(
    "at-most-five-replicas",
    [rule(["UPDATE"], ["deployments/scale"], groups=["apps"])],
    [
        {
            "expression": "request.subResource == 'scale' && object.kind == 'Scale'"
            " && oldObject.spec.replicas == 2",
            "message": "not the scale request the API server sends",
        },
        {
            "expression": "object.spec.replicas <= 5",
            "messageExpression": "'at most 5 replicas of ' + request.name + ', not '"
            " + string(object.spec.replicas)",
        },
    ],
    failure_policy="Fail",
)
# Gatekeeper reviews a subresource's write as the request's kind (a Scale): a constraint on
# Deployments does not apply to it, one on Scales does.
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
        violation[{"msg": "gatekeeper: needs an owner label"}] {
          not input.review.object.metadata.labels.owner
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: NeedsOwner
metadata: {name: deployments-need-owners}
spec:
  match: {kinds: [{apiGroups: ["apps"], kinds: ["Deployment"]}]}
---
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: nohugescale}
spec:
  crd: {spec: {names: {kind: NoHugeScale}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package nohugescale
        violation[{"msg": "gatekeeper: no more than 50 replicas"}] {
          input.review.kind.kind == "Scale"
          input.review.object.spec.replicas > 50
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: NoHugeScale
metadata: {name: no-huge-scale}
spec:
  match: {kinds: [{apiGroups: ["autoscaling"], kinds: ["Scale"]}]}
"""
# The user's own Rego judges objects: a Scale, which has no labels, is not one of them.
OWNER_REGO = """\
package main

import rego.v1

deny contains "rego: needs an owner label" if not input.metadata.labels.owner
"""
SCALE_KIND = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
DEPLOYMENTS = {"group": "apps", "version": "v1", "resource": "deployments"}


def _scale(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web", "resourceVersion": "412"},
        "spec": {"replicas": replicas},
        "status": {"replicas": 2, "selector": "app=web"},
    }


def _scale_review(replicas: int, uid: str, *, sub: str = "scale", dry_run: bool = False) -> dict[str, Any]:
    """`kubectl scale deploy web --replicas N` as the API server sends it."""
    body = review(_scale(replicas), operation="UPDATE", old=_scale(2), uid=uid, dry_run=dry_run)
    request = body["request"]
    request.update(
        kind=SCALE_KIND,
        requestKind=SCALE_KIND,
        resource=DEPLOYMENTS,
        requestResource=DEPLOYMENTS,
        subResource=sub,
        requestSubResource=sub,
        name="web",
        options={"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"},
    )
    return body


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("certs"))


def test_kubectl_scale_is_judged_by_the_admission_policy_naming_deployments_scale(
    certs: CertSet, tmp_path: Path
) -> None:
    """`kubectl scale` was answered `skipped: subresource`: a policy the user configured on
    deployments/scale was not enforced. Now it is, by that policy (and Gatekeeper's constraint on
    Scales; not the bundled policy sets, the constraint on Deployments nor the user's Rego), and
    recorded."""
    policy = tmp_path / "scale.yaml"
    policy.write_text(AT_MOST_FIVE)
    gatekeeper = tmp_path / "gk.yaml"
    gatekeeper.write_text(NEEDS_OWNER)
    (tmp_path / "owner.rego").write_text(OWNER_REGO)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  policies:\n"
        "    - builtin: pss-restricted\n    - builtin: supply-chain\n    - path: owner.rego\n"
        f"  gatekeeper: {{paths: [{gatekeeper}]}}\n  admissionPolicies: [{policy}]\n"
    )
    db = tmp_path / "decisions.db"
    srv = start_server(certs, "-c", str(config), "--decision-log", f"sqlite:///{db}", workers=1)
    try:
        answers = {}
        for uid, body in (
            ("uid-scale-100", _scale_review(100, "uid-scale-100")),
            ("uid-scale-3", _scale_review(3, "uid-scale-3")),
            ("uid-status", _scale_review(10, "uid-status", sub="status")),
        ):
            status, answer = srv.post(body)
            assert status == 200, answer
            assert answer["response"]["uid"] == uid
            answers[uid] = answer["response"]
    finally:
        srv.stop()
    denied = answers["uid-scale-100"]
    assert denied["allowed"] is False, denied
    assert denied["status"]["code"] == 403
    message = denied["status"]["message"]
    assert "[at-most-five-replicas/1] at most 5 replicas of web, not 100" in message
    assert "not the scale request" not in message
    assert "[NoHugeScale/no-huge-scale] gatekeeper: no more than 50 replicas" in message  # it matches Scales
    assert "owner" not in message  # neither Gatekeeper's constraint on Deployments nor the Rego
    assert answers["uid-scale-3"]["allowed"] is True, answers["uid-scale-3"]
    # A subresource no policy names: judged (nothing applies) and allowed, never left unrecorded.
    assert answers["uid-status"]["allowed"] is True, answers["uid-status"]
    for answer in answers.values():
        assert "skipped" not in answer.get("auditAnnotations", {}), answer
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT record FROM decisions").fetchall()
    records = {r["subject"]["uid"]: r for r in (json.loads(raw) for (raw,) in rows)}
    assert records["uid-scale-100"]["verdict"] == "deny"
    # A Scale's object does not say what it scales: the record does.
    subject = records["uid-scale-100"]["subject"]
    assert (subject["resource"], subject["subResource"]) == ("apps/deployments", "scale")
    assert records["uid-status"]["subject"]["subResource"] == "status"
    rules = sorted(f["rule"] for f in records["uid-scale-100"]["findings"])
    assert rules == ["NoHugeScale/no-huge-scale", "at-most-five-replicas/1"], rules
    assert records["uid-scale-3"]["verdict"] == "allow"
    assert records["uid-scale-3"]["findings"] == []
    assert records["uid-status"]["verdict"] == "allow"
    # What `check` says of the policy (its subresource rules are not evaluated on manifests) is not
    # said at admission, where they are.
    assert not any("not evaluated here" in n for n in records["uid-scale-100"]["notes"])


# Gatekeeper's webhook reviews a Scale with its old object, as any UPDATE.
NO_BIG_JUMP = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: nobigjump}
spec:
  crd: {spec: {names: {kind: NoBigJump}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package nobigjump
        violation[{"msg": msg}] {
          input.review.object.spec.replicas > 10 * input.review.oldObject.spec.replicas
          msg := sprintf("gatekeeper: %v to %v replicas at once", [
            input.review.oldObject.spec.replicas, input.review.object.spec.replicas])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: NoBigJump
metadata: {name: no-big-jump}
spec:
  match: {kinds: [{apiGroups: ["autoscaling"], kinds: ["Scale"]}]}
"""


def test_a_scale_is_judged_by_gatekeeper_without_admission_policies(certs: CertSet, tmp_path: Path) -> None:
    """`webhook-config` sends `*/scale` for a constraint on Scales; `serve` answered such a request
    `skipped: subresource` unless admission policies were loaded: the constraint never applied.
    Now it is judged (its old object given), recorded once with its subresource, dry runs too."""
    gatekeeper = tmp_path / "gk.yaml"
    gatekeeper.write_text(NO_BIG_JUMP)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n"
        f"  policies: [{{builtin: pss-restricted}}]\n  gatekeeper: {{paths: [{gatekeeper}]}}\n"
    )
    db = tmp_path / "decisions.db"
    srv = start_server(certs, "-c", str(config), "--decision-log", f"sqlite:///{db}", workers=1)
    try:
        answers = {}
        for uid, body in (
            ("uid-jump", _scale_review(100, "uid-jump")),
            ("uid-jump-dry", _scale_review(100, "uid-jump-dry", dry_run=True)),
            ("uid-step", _scale_review(3, "uid-step")),
        ):
            status, answer = srv.post(body)
            assert status == 200, answer
            answers[uid] = answer["response"]
    finally:
        srv.stop()
    for uid in ("uid-jump", "uid-jump-dry"):
        assert answers[uid]["allowed"] is False, answers[uid]
        assert (
            "[NoBigJump/no-big-jump] gatekeeper: 2 to 100 replicas at once"
            in answers[uid]["status"]["message"]
        )
    assert answers["uid-step"]["allowed"] is True, answers["uid-step"]
    assert not any("skipped" in a.get("auditAnnotations", {}) for a in answers.values()), answers
    with sqlite3.connect(db) as conn:
        rows = [json.loads(raw) for (raw,) in conn.execute("SELECT record FROM decisions")]
    uids = [r["subject"]["uid"] for r in rows]
    assert sorted(uids) == ["uid-jump", "uid-jump-dry", "uid-step"]  # each recorded once
    records = {r["subject"]["uid"]: r for r in rows}
    for uid, verdict in (("uid-jump", "deny"), ("uid-jump-dry", "deny"), ("uid-step", "allow")):
        record = records[uid]
        assert record["verdict"] == verdict
        assert (record["subject"]["resource"], record["subject"]["subResource"]) == (
            "apps/deployments",
            "scale",
        )
        assert record["subject"].get("dryRun", False) is (uid == "uid-jump-dry")
        assert [o["kind"] for o in record["subject"]["objects"]] == ["Scale"]
