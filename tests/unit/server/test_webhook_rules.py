"""What `trustgate webhook-config` sends for CREATE and UPDATE: derived from what the configuration judges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from trustgate.cli.main import main
from trustgate.config import AdmissionSettings, Config, load_config
from trustgate.errors import ConfigError
from trustgate.server.webhookconfig import (
    AdmissionScope,
    UnderivedResourcesError,
    create_update_rules,
    read_scope,
    webhook_configuration,
)

DENY_LOAD_BALANCERS = """package main

deny contains msg if {
\tinput.kind == "Service"
\tinput.spec.type == "LoadBalancer"
\tmsg := "no LoadBalancer Services"
}
"""
CONSTRAINT_TEMPLATE = """apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8srequiredlabels}
spec:
  crd:
    spec:
      names: {kind: K8sRequiredLabels}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8srequiredlabels
        violation[{"msg": "needs an owner label"}] {
          not input.review.object.metadata.labels.owner
        }
"""


def _sent(rules: list[dict[str, Any]], operation: str = "CREATE") -> set[tuple[str, str]]:
    return {
        (g, r)
        for rule in rules
        if operation in rule["operations"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }


def _constraint(name: str, match: str) -> str:
    head = "---\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sRequiredLabels\n"
    return f"{head}metadata: {{name: {name}}}\nspec:\n{match}"


def _config(tmp_path: Path, body: str) -> Config:
    path = tmp_path / "trustgate.yaml"
    path.write_text("apiVersion: trustgate.dev/v1alpha1\nkind: Config\n" + body)
    return load_config(path)


def test_the_bundled_policies_send_their_workloads_and_pod_templates() -> None:
    sent = _sent(create_update_rules(AdmissionScope()))
    assert ("", "podtemplates") in sent and ("", "pods/ephemeralcontainers") in sent
    assert {("apps", "deployments"), ("batch", "cronjobs"), ("", "replicationcontrollers")} <= sent
    assert ("", "services") not in sent
    assert create_update_rules(AdmissionScope(workloads=False)) == []


def test_gatekeeper_kinds_are_sent_under_their_resources() -> None:
    kinds = (
        (("",), ("Service", "Namespace")),
        (("networking.k8s.io",), ("Ingress",)),
        (("rbac.authorization.k8s.io",), ("ClusterRoleBinding",)),
    )
    sent = _sent(create_update_rules(AdmissionScope(workloads=False, kinds=kinds)))
    assert sent == {
        ("", "services"),
        ("", "namespaces"),
        ("networking.k8s.io", "ingresses"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
    }


def test_a_custom_kind_is_sent_under_its_crds_plural_or_as_every_resource_of_its_group() -> None:
    kinds = ((("example.com",), ("Widget",)), (("acme.io",), ("Gadget",)))
    sent = _sent(
        create_update_rules(
            AdmissionScope(workloads=False, kinds=kinds, custom={("acme.io", "Gadget"): "gizmos"})
        )
    )
    assert sent == {("example.com", "*"), ("acme.io", "gizmos")}  # the plural is not guessed


@pytest.mark.parametrize("kinds", [((("*",), ("*",)),), (((), ()),), ((("",), ()),)])
def test_a_constraint_on_every_kind_sends_every_resource(kinds: tuple[Any, ...]) -> None:
    rules = create_update_rules(AdmissionScope(kinds=kinds))
    sent = _sent(rules)
    if kinds[0][0] == ("",):  # every kind of the core group
        assert ("", "*") in sent and ("", "pods/ephemeralcontainers") in sent
        assert ("apps", "deployments") in sent
    else:
        assert sent == {("*", "*"), ("", "pods/ephemeralcontainers"), ("", "pods/resize")}


def test_any_group_sends_the_kind_in_every_group() -> None:
    sent = _sent(create_update_rules(AdmissionScope(workloads=False, kinds=((("*",), ("Ingress",)),))))
    assert sent == {("*", "ingresses")}


def test_user_rego_without_admission_resources_is_refused(tmp_path: Path) -> None:
    (tmp_path / "svc.rego").write_text(DENY_LOAD_BALANCERS)
    config = _config(tmp_path, "manifests:\n  policies:\n    - builtin: pss-baseline\n    - path: svc.rego\n")
    with pytest.raises(UnderivedResourcesError) as refused:
        webhook_configuration(config.admission, scope=read_scope(config))
    text = refused.value.diagnostics()
    assert str(tmp_path / "trustgate.yaml") in text and str(tmp_path / "svc.rego") in text
    assert "admission.resources" in text and '["*"]' in text


def test_user_rego_sends_what_admission_resources_lists(tmp_path: Path) -> None:
    (tmp_path / "svc.rego").write_text(DENY_LOAD_BALANCERS)
    config = _config(
        tmp_path,
        "manifests:\n  policies:\n    - builtin: pss-baseline\n    - path: svc.rego\n"
        "admission:\n  resources: [services, networking.k8s.io/ingresses, example.com/*]\n",
    )
    sent = _sent(webhook_configuration(config.admission, scope=read_scope(config))["webhooks"][0]["rules"])
    assert {("", "services"), ("networking.k8s.io", "ingresses"), ("example.com", "*")} <= sent
    assert ("apps", "deployments") in sent  # the bundled policies' workloads stay


def test_the_cli_refuses_and_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "svc.rego").write_text(DENY_LOAD_BALANCERS)
    result = CliRunner().invoke(main, ["webhook-config", "-p", str(tmp_path / "svc.rego")])
    assert result.exit_code == 3
    assert "admission.resources" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_cli_reads_gatekeeper_and_admission_policies_as_serve_does(tmp_path: Path) -> None:
    library = tmp_path / "gk"
    library.mkdir()
    (library / "template.yaml").write_text(CONSTRAINT_TEMPLATE)
    (library / "constraints.yaml").write_text(
        _constraint("ns-owner", "  match:\n    kinds:\n      - apiGroups: ['']\n        kinds: [Namespace]\n")
        + _constraint(
            "svc-owner",
            "  match:\n    kinds:\n      - apiGroups: [stable.example.com]\n        kinds: [CronTab]\n",
        )
    )
    vap = tmp_path / "vap.yaml"
    vap.write_text(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\n"
        "metadata: {name: cm}\nspec:\n  matchConstraints:\n    resourceRules:\n"
        "      - apiGroups: ['']\n        apiVersions: ['*']\n        operations: [CREATE, UPDATE]\n"
        "        resources: [configmaps, pods/status, secrets/*]\n"
        "  validations:\n    - expression: 'true'\n---\n"
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\n"
        "metadata: {name: cm}\nspec:\n  policyName: cm\n  validationActions: [Deny]\n"
    )
    args = ["webhook-config", "--gatekeeper", str(library), "--admission-policy", str(vap)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    rules = yaml.safe_load(result.stdout)["webhooks"][0]["rules"]
    sent = _sent(rules)
    assert {("", "namespaces"), ("stable.example.com", "*"), ("", "configmaps")} <= sent
    assert ("", "configmaps") in _sent(rules, "UPDATE")
    # The policy's subresources are sent as its rules say: the server judges them with it.
    assert ("", "pods/status") in sent and ("", "pods/status") in _sent(rules, "UPDATE")
    assert ("", "secrets/*") in sent  # secrets and every subresource of secrets


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("Services", "lower-case plurals"),
        ("pods/exec", "'pods' is not an API group"),
        ("a/b/c", "more than one '/'"),
        ("/services", "no group before"),
        ("Example.com/widgets", "not an API group"),
    ],
)
def test_admission_resources_are_validated_with_file_and_line(tmp_path: Path, entry: str, says: str) -> None:
    with pytest.raises(ConfigError) as bad:
        _config(tmp_path, f"admission:\n  resources:\n    - services\n    - {entry!r}\n")
    text = bad.value.diagnostics()
    assert f"{tmp_path / 'trustgate.yaml'}:6" in text and "admission.resources[1]" in text and says in text


def test_a_wildcard_leaves_out_the_clusters_housekeeping() -> None:
    settings = AdmissionSettings(resources=(("*", "*"),))
    new = webhook_configuration(settings, kubernetes_version="1.30")["webhooks"][0]
    condition = next(c for c in new["matchConditions"] if c["name"] == "leave-out-cluster-housekeeping")
    assert (
        "'coordination.k8s.io/leases'" in condition["expression"] and "'/events'" in condition["expression"]
    )
    assert new["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system", "trustgate"]
    old = webhook_configuration(settings, kubernetes_version="1.27")["webhooks"][0]
    assert "matchConditions" not in old
    assert "kube-node-lease" in old["namespaceSelector"]["matchExpressions"][0]["values"]
    # Named, a resource is sent; without a wildcard nothing is left out.
    named = AdmissionSettings(resources=(("*", "*"), ("coordination.k8s.io", "leases")))
    hook = webhook_configuration(named, kubernetes_version="1.30")["webhooks"][0]
    condition = next(c for c in hook["matchConditions"] if c["name"] == "leave-out-cluster-housekeeping")
    assert "leases" not in condition["expression"]
    plain = webhook_configuration(AdmissionSettings(resources=(("", "services"),)), kubernetes_version="1.27")
    assert "kube-node-lease" not in plain["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"]


def test_image_rules_send_the_workloads_without_the_bundled_policies(tmp_path: Path) -> None:
    bare = _config(tmp_path, "manifests:\n  policies: []\n")
    bare_rules = webhook_configuration(bare.admission, scope=read_scope(bare))["webhooks"][0]["rules"]
    assert _sent(bare_rules) == set() and _sent(bare_rules, "DELETE")  # the protected kinds' DELETEs only
    images = _config(tmp_path, "manifests:\n  policies: []\nimages:\n  unmatched: deny\n")
    rules = webhook_configuration(images.admission, scope=read_scope(images))["webhooks"][0]["rules"]
    assert {("", "pods"), ("apps", "deployments"), ("", "podtemplates")} <= _sent(rules)


def test_the_gatekeeper_port_alone_sends_the_custom_workloads(tmp_path: Path) -> None:
    # Its constraints are handed the pod templates of a PyTorchJob, a Tekton Task or a declared
    # kind, which no match of theirs names: the API server must send those too.
    config = _config(
        tmp_path,
        "manifests:\n  policies: []\n  gatekeeper:\n    paths: [builtin:pss-baseline]\n"
        "workloads:\n"
        "  - {group: ci.example.com, kind: Runner, podSpec: spec.runner.spec, resource: runners}\n",
    )
    rules = webhook_configuration(config.admission, scope=read_scope(config))["webhooks"][0]["rules"]
    sent = _sent(rules)
    assert {("kubeflow.org", "pytorchjobs"), ("tekton.dev", "tasks"), ("ci.example.com", "runners")} <= sent
    # Named by the constraints without their CRDs: every resource of the group.
    assert {("keda.sh", "*"), ("serving.knative.dev", "*")} <= sent


@pytest.mark.parametrize(
    ("kinds", "named"),
    [
        (((("authentication.k8s.io",), ("TokenRequest",)),), "authentication.k8s.io/TokenRequest"),
        (((("authorization.k8s.io",), ()),), "authorization.k8s.io/*"),
        (
            ((("apps", "authentication.k8s.io"), ("Deployment", "TokenReview")),),
            "authentication.k8s.io/TokenReview",
        ),
    ],
)
def test_a_constraint_naming_a_review_group_is_refused_not_left_unenforced(
    kinds: tuple[Any, ...], named: str
) -> None:
    with pytest.raises(UnderivedResourcesError) as refused:
        create_update_rules(AdmissionScope(workloads=False, kinds=kinds))
    text = refused.value.diagnostics()
    assert named in text and "would not be enforced at admission" in text
    assert "ValidatingAdmissionPolicy" in text


def test_a_constraint_on_every_group_is_not_refused_for_the_reviews_it_cannot_reach() -> None:
    sent = _sent(create_update_rules(AdmissionScope(workloads=False, kinds=((("*",), ("*",)),))))
    assert ("*", "*") in sent
    assert not any(g in ("authentication.k8s.io", "authorization.k8s.io") for g, _ in sent)


@pytest.mark.parametrize(
    "resources",
    [
        (("*", "*"),),
        (("*", "*"), ("", "events"), ("*", "*/leases")),
        (("*", "*"), ("apps", "deployments/scale")),
    ],
)
def test_every_rule_names_a_resource_beside_a_wildcard(resources: tuple[tuple[str, str], ...]) -> None:
    """The API server refuses a rule without resources (`webhooks[0].rules[2].resources: Required
    value`): a group the wildcard already sends gets no rule of its own."""
    rules = create_update_rules(AdmissionScope(resources=resources, workloads=True, images=True))
    assert rules and all(rule["resources"] for rule in rules)
    assert ("*", "*") in _sent(rules) and ("", "pods/ephemeralcontainers") in _sent(rules)
