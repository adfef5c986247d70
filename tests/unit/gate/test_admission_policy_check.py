"""The CEL adapters at the gate: the object as it is now (an UPDATE), audit annotations, the change set.

The API server is the reference: an apply of an object that exists is an UPDATE,
whose `oldObject` (ValidatingAdmissionPolicy) and `oldSelf` (CRD transition
rules) are the stored object; audit annotations are added to the request's
audit event whatever the decision.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from support.crds import IMMUTABLE_SIZE, vap_binding, widget_crd

from trustgate.config import Config, KubernetesSettings
from trustgate.gate import Gate
from trustgate.gate.checks import AdmissionPolicyCheck, Run
from trustgate.model import Document, Finding, Mode, Severity, Source

Write = Callable[[str, str], Path]
EXAMPLES = Path(__file__).parent.parent.parent / "conformance" / "admission-policies"

# The Kubernetes documentation's ValidatingAdmissionPolicy examples use `oldObject` for UPDATEs
# (https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/).
NO_SCALE_DOWN = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-scale-down}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  validations:
  - expression: "oldObject == null || object.spec.replicas >= oldObject.spec.replicas"
    messageExpression: "'scaled down from ' + string(oldObject.spec.replicas)"
  auditAnnotations:
  - key: replicas
    valueExpression: "'replicas: ' + string(object.spec.replicas)"
---
""" + vap_binding("no-scale-down")

CRD = widget_crd(IMMUTABLE_SIZE, versions=("v1", "v2"))


def deployment(replicas: int, *, version: str = "apps/v1", name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": version,
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"replicas": replicas},
    }


def widget(size: str, *, version: str = "example.com/v1") -> dict[str, Any]:
    return {"apiVersion": version, "kind": "Widget", "metadata": {"name": "w", "namespace": "shop"},
            "spec": {"size": size}}  # fmt: skip


def doc(obj: dict[str, Any]) -> Document:
    return Document(obj=obj, source=Source("m.yaml", 1))


def rules(gate: Gate, obj: dict[str, Any], old: list[dict[str, Any]] | None = None) -> list[Finding]:
    decision = gate.evaluate([doc(obj)], old=old or ())
    return [f for r in decision.results for f in r.findings]


def vap_gate(write: Write, text: str = NO_SCALE_DOWN) -> Gate:
    policy = write("vap.yaml", text)
    return Gate(
        config=Config(policies=(), kubernetes=KubernetesSettings(schemas=False), admission_policies=(policy,))
    )


def test_an_object_of_the_gated_tree_is_judged_as_an_update_of_it(write: Write) -> None:
    gate = vap_gate(write)
    # No old object (a check): a CREATE, oldObject is null.
    assert [f.rule for f in rules(gate, deployment(1)) if f.severity == Severity.ERROR] == []
    # The same object in the gated tree with more replicas: the API server's UPDATE denies.
    denied = [f for f in rules(gate, deployment(1), [deployment(3)]) if f.severity == Severity.ERROR]
    assert [(f.rule, f.message) for f in denied] == [("no-scale-down/0", "scaled down from 3")]
    # Another object of the gated tree is not this one's old version.
    assert not [
        f for f in rules(gate, deployment(1), [deployment(3, name="api")]) if f.severity == Severity.ERROR
    ]
    assert not [f for f in rules(gate, deployment(5), [deployment(3)]) if f.severity == Severity.ERROR]


def test_an_old_object_in_another_version_cannot_be_judged_without_a_conversion(write: Write) -> None:
    # The API server converts the stored object to the request's version before the policy sees it.
    gate = vap_gate(write)
    found = rules(gate, deployment(1), [deployment(3, version="apps/v1beta2")])
    [blocking] = [f for f in found if f.severity == Severity.ERROR]
    assert blocking.source == "engine" and blocking.rule == "no-scale-down/oldObject"
    assert "apps/v1beta2" in blocking.message and "no conversions" in blocking.message


def test_audit_annotations_are_an_info_finding_keyed_as_in_the_audit_event(write: Write) -> None:
    # The API server publishes `<policy name>/<key>` whatever the decision (validating dispatcher's
    # auditAnnotationCollector.publish).
    gate = vap_gate(write)
    for old, blocked in (([], False), ([deployment(9)], True)):
        found = rules(gate, deployment(4), old)
        [note] = [f for f in found if f.rule == "no-scale-down/auditAnnotations"]
        assert note.severity == Severity.INFO and note.source == "admission-policy"
        assert note.metadata == {"auditAnnotations": {"no-scale-down/replicas": "replicas: 4"}}
        assert note.message == 'audit annotations: no-scale-down/replicas="replicas: 4"'
        assert any(f.severity == Severity.ERROR for f in found) is blocked
    decision = gate.evaluate([doc(deployment(4))])
    assert decision.allowed  # an annotation decides nothing


def test_crd_transition_rules_judge_a_change_to_the_gated_tree_as_an_update(write: Write) -> None:
    crd = write("crd.yaml", CRD)
    gate = Gate(config=Config(policies=(), kubernetes=KubernetesSettings(crds=(crd,))))
    assert [f for f in rules(gate, widget("big")) if f.rule == "schema-cel"] == []  # a create
    [finding] = [f for f in rules(gate, widget("big"), [widget("small")]) if f.rule == "schema-cel"]
    assert (finding.message, finding.path) == ("size is immutable", ("spec", "size"))
    assert [f for f in rules(gate, widget("big"), [widget("big")]) if f.rule == "schema-cel"] == []
    # The default conversion strategy (None) only sets apiVersion: the rule still judges the update.
    found = rules(gate, widget("big", version="example.com/v2"), [widget("small")])
    assert [f.message for f in found if f.rule == "schema-cel"] == ["size is immutable"]


def test_a_crd_converted_by_a_webhook_refuses_its_transition_rules_across_versions(write: Write) -> None:
    webhook = yaml.safe_load(CRD)
    webhook["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"]}}
    crd = write("crd.yaml", yaml.safe_dump(webhook))
    gate = Gate(config=Config(policies=(), kubernetes=KubernetesSettings(crds=(crd,))))
    [finding] = [
        f
        for f in rules(gate, widget("big", version="example.com/v2"), [widget("big")])
        if f.rule == "schema-cel"
    ]
    assert finding.severity == Severity.ERROR and "conversion webhook" in finding.message
    # Same version: no conversion needed, judged as usual.
    assert [f for f in rules(gate, widget("big"), [widget("big")]) if f.rule == "schema-cel"] == []


def test_a_policy_set_without_params_or_namespaces_does_not_need_the_change_set(write: Write) -> None:
    # Neither params, a namespaceSelector nor namespaceObject: a review reads only the object, so
    # the gate need not read every document before the first (AdmissionPolicyCheck.wants_change_set).
    path = EXAMPLES / "match-conditions.yaml"
    gate = Gate(
        config=Config(policies=(), kubernetes=KubernetesSettings(schemas=False), admission_policies=(path,))
    )
    [check] = [c for c in gate.checks if isinstance(c, AdmissionPolicyCheck)]
    assert not check.wants_change_set and not check.policies.needs_change_set
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}
    objects = [namespace, *yaml.safe_load_all((EXAMPLES / "objects.yaml").read_text())]
    subjects = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n, "namespace": "default"},
         "spec": {"containers": [{"name": "a", "image": i}]}}
        for n, i in (("a", "nginx:latest"), ("b", "registry.example.com/a:1"), ("c", "x:latest"))
    ]  # fmt: skip
    # The findings with the whole change set given and with none are the same.
    for subject in subjects:
        alone = check.findings(doc(copy.deepcopy(subject)), Run(Mode.ENFORCE))
        with_all = check.findings(doc(copy.deepcopy(subject)), Run(Mode.ENFORCE, [*objects, *subjects]))
        assert [(f.rule, f.message, f.severity) for f in alone] == [
            (f.rule, f.message, f.severity) for f in with_all
        ]
    decided = gate.evaluate([doc(s) for s in subjects])
    assert [len(r.findings) for r in decided.results] == [1, 0, 1]  # the policy does judge them
    # A namespaceSelector needs the Namespaces: that set wants the change set.
    selecting = Gate(
        config=Config(
            policies=(),
            kubernetes=KubernetesSettings(schemas=False),
            admission_policies=(EXAMPLES / "demo-policy.yaml",),
        )
    )
    assert any(c.wants_change_set for c in selecting.checks)


TEMPLATE_TEXT = (
    Path(__file__).parents[2] / "conformance/gatekeeper-library/general/noupdateserviceaccount/template.yaml"
).read_text()


def test_a_gatekeeper_template_sees_the_gated_tree_object_as_oldobject(write: Write) -> None:
    """Gatekeeper reviews an UPDATE with `input.review.oldObject` (the library's
    noupdateserviceaccount reads it): at pre-sync the gated tree's object is that old object."""
    template = write("template.yaml", TEMPLATE_TEXT)
    constraint = write(
        "constraint.yaml",
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: NoUpdateServiceAccount\n"
        "metadata: {name: no-sa-change}\nspec:\n  match:\n"
        "    kinds: [{apiGroups: [apps], kinds: [Deployment]}]\n",
    )
    from trustgate.config import GatekeeperSettings

    gate = Gate(
        config=Config(
            policies=(),
            kubernetes=KubernetesSettings(schemas=False),
            gatekeeper=GatekeeperSettings(paths=(template, constraint)),
        )
    )

    def with_sa(name: str) -> dict[str, Any]:
        obj = deployment(1)
        obj["spec"]["template"] = {"spec": {"serviceAccountName": name, "containers": []}}
        return obj

    def denials(old: list[dict[str, Any]] | None) -> list[str]:
        return [f.message for f in rules(gate, with_sa("new"), old) if f.severity == Severity.ERROR]

    assert denials(None) == []  # a CREATE: the template only judges UPDATEs
    assert denials([with_sa("new")]) == []  # unchanged
    assert denials([with_sa("old")]) == ["user does not have permission to modify serviceAccountName"]
