"""What `webhook-config` sends of subresources' CREATEs and UPDATEs, checked as the API server
decides it: a rule covers a request as rules.Matcher does, and every matchCondition is evaluated
with trustgate's CEL engine on the request as the API server builds it (unstructured JSON, without
the empty `omitempty` fields).

- A Gatekeeper constraint on Scales (or Evictions, Bindings) is sent the subresources whose request
  kind that is (`kubectl scale` is an UPDATE of deployments/scale whose kind is autoscaling/v1
  Scale): sending `autoscaling/*`, which is no resource, left it unjudged.
- A subresource of every resource (`*/status`, `*/*`) leaves out what the kubelet and the control
  plane write to keep the cluster running (every Pod's and Node's status, every Pod's token, CSRs'
  approval), unless a rule names it; before Kubernetes 1.28, without matchConditions, a fail-closed
  webhook is refused such a rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main
from trustgate.config import AdmissionSettings
from trustgate.policy.cel import CelEvalError, compile_expression
from trustgate.server.webhookconfig import (
    AdmissionScope,
    UnsafeSubresourcesError,
    scope_notes,
    webhook_configuration,
)


def _covers(rule: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether a webhook rule matches `request`, as rules.Matcher does (scope aside)."""
    resource, sub = request["resource"], request.get("subResource", "")
    groups, operations = rule["apiGroups"], rule["operations"]
    if resource["group"] not in groups and "*" not in groups:
        return False
    if request["operation"] not in operations and "*" not in operations:
        return False
    for entry in rule["resources"]:
        main, _, entry_sub = entry.partition("/")
        if main not in ("*", resource["resource"]):
            continue
        if entry_sub == sub or (entry_sub == "*" and "/" in entry) or (not entry_sub and not sub):
            return True
    return False


def _sent(hook: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether the API server sends `request` to `hook`: a rule covers it and every matchCondition
    is true (one that fails to evaluate fails the test: a fail-closed webhook refuses the request)."""
    if not any(_covers(rule, request) for rule in hook["rules"]):
        return False
    for condition in hook.get("matchConditions", []):
        try:
            result = compile_expression(condition["expression"], variables=["request"]).evaluate(
                {"request": request}
            )
        except CelEvalError as e:
            pytest.fail(f"matchCondition {condition['name']} fails on {request}: {e}")
        if result is False:
            return False
        assert result is True, (condition, result)
    return True


def _request(
    operation: str,
    group: str,
    resource: str,
    sub: str = "",
    *,
    kind: tuple[str, str] = ("", ""),
    namespace: str = "shop",
    name: str = "n1",
) -> dict[str, Any]:
    """An AdmissionRequest as the API server hands it to matchConditions."""
    request: dict[str, Any] = {
        "uid": "u1",
        "operation": operation,
        "kind": {"group": kind[0], "version": "v1", "kind": kind[1] or "Thing"},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "subResource": sub,
        "namespace": namespace,
        "name": name,
        "userInfo": {"username": "system:node:n1"},
    }
    return {k: v for k, v in request.items() if v != ""}


def _hook(scope: AdmissionScope, version: str = "1.30", **settings: Any) -> dict[str, Any]:
    config = webhook_configuration(
        AdmissionSettings(fail_open_label=None, **settings), kubernetes_version=version, scope=scope
    )
    hook: dict[str, Any] = config["webhooks"][0]
    return hook


SCALE = ("autoscaling", "Scale")
SCALES = [
    _request("UPDATE", "apps", "deployments", "scale", kind=SCALE),
    _request("UPDATE", "apps", "statefulsets", "scale", kind=SCALE),
    _request("UPDATE", "apps", "replicasets", "scale", kind=SCALE),
    _request("UPDATE", "", "replicationcontrollers", "scale", kind=SCALE),
    _request("UPDATE", "example.com", "widgets", "scale", kind=SCALE),  # a CRD's scale subresource
]


@pytest.mark.parametrize("groups", [("autoscaling",), ("*",), ()], ids=["autoscaling", "any", "none"])
def test_a_constraint_on_scales_is_sent_the_scale_of_every_resource(groups: tuple[str, ...]) -> None:
    hook = _hook(AdmissionScope(workloads=False, kinds=((groups, ("Scale",)),)))
    for request in SCALES:
        assert _sent(hook, request), request["resource"]
    # and nothing it does not judge: neither the resources themselves nor their status
    assert not _sent(hook, _request("UPDATE", "apps", "deployments", kind=("apps", "Deployment")))
    assert not _sent(hook, _request("UPDATE", "apps", "deployments", "status", kind=("apps", "Deployment")))
    assert not any(c["name"].startswith("leave-out") for c in hook["matchConditions"])


def test_a_constraint_on_scales_beside_one_on_every_kind_keeps_its_subresource() -> None:
    hook = _hook(AdmissionScope(workloads=False, kinds=((("autoscaling",), ("Scale",)), ((), ()))))
    for request in SCALES:
        assert _sent(hook, request), request["resource"]
    assert _sent(hook, _request("CREATE", "", "configmaps", kind=("", "ConfigMap")))


@pytest.mark.parametrize(
    ("kinds", "request_"),
    [
        (
            (("policy",), ("Eviction",)),
            _request("CREATE", "", "pods", "eviction", kind=("policy", "Eviction")),
        ),
        ((("",), ("Binding",)), _request("CREATE", "", "pods", "binding", kind=("", "Binding"))),
        ((("*",), ("Eviction",)), _request("CREATE", "", "pods", "eviction", kind=("policy", "Eviction"))),
    ],
    ids=["eviction", "binding", "eviction-any-group"],
)
def test_a_constraint_on_a_subresource_s_kind_is_sent_that_subresource(
    kinds: tuple[Any, ...], request_: dict[str, Any]
) -> None:
    assert _sent(_hook(AdmissionScope(workloads=False, kinds=(kinds,))), request_)


def _policy_rule(
    operations: list[str], resources: list[str], groups: tuple[str, ...] = ("*",)
) -> dict[str, Any]:
    return {
        "apiGroups": list(groups),
        "apiVersions": ["*"],
        "operations": operations,
        "resources": resources,
        "scope": "*",
    }


KUBELET_WRITES = [
    _request("UPDATE", "", "pods", "status", kind=("", "Pod")),
    _request("UPDATE", "", "nodes", "status", kind=("", "Node"), namespace=""),
    _request("CREATE", "", "serviceaccounts", "token", kind=("authentication.k8s.io", "TokenRequest")),
    _request(
        "UPDATE",
        "certificates.k8s.io",
        "certificatesigningrequests",
        "approval",
        kind=("certificates.k8s.io", "CertificateSigningRequest"),
        namespace="",
    ),
]


@pytest.mark.parametrize(
    "resources", [["*/status"], ["*/*"], ["*/status", "*/token", "*/approval"]], ids=["status", "all", "each"]
)
def test_a_subresource_of_every_resource_leaves_out_what_kubelets_write(resources: list[str]) -> None:
    """With failurePolicy Fail, a webhook sent every Pod's status would stop every Pod's readiness
    (and every Pod's token, every Node's status) whenever it cannot answer."""
    hook = _hook(
        AdmissionScope(workloads=False, policy_rules=(_policy_rule(["CREATE", "UPDATE"], resources),))
    )
    for request in KUBELET_WRITES:
        sub = request.get("subResource")
        if any(r in (f"*/{sub}", "*/*") for r in resources):
            assert not _sent(hook, request), (request["resource"], sub)
    # what no kubelet writes is sent as the rule says
    assert _sent(hook, _request("UPDATE", "apps", "deployments", "status", kind=("apps", "Deployment")))
    assert _sent(hook, _request("UPDATE", "", "services", "status", kind=("", "Service")))


def test_a_rule_naming_a_housekeeping_subresource_sends_it() -> None:
    hook = _hook(
        AdmissionScope(
            policy_rules=(
                _policy_rule(["UPDATE"], ["*/status"]),
                _policy_rule(["UPDATE"], ["pods/status"], groups=("",)),
            )
        )
    )
    assert _sent(hook, KUBELET_WRITES[0])  # pods/status, named
    assert not _sent(hook, KUBELET_WRITES[1])  # nodes/status, not named
    # The workloads' own rule (`pods`) names the Pod, not its status.
    hook = _hook(AdmissionScope(policy_rules=(_policy_rule(["UPDATE"], ["*/status"]),)))
    assert not _sent(hook, KUBELET_WRITES[0])
    assert _sent(hook, _request("UPDATE", "", "pods", kind=("", "Pod")))


def test_the_note_lists_the_subresources_left_out_and_nothing_without_any() -> None:
    scope = AdmissionScope(policy_rules=(_policy_rule(["UPDATE"], ["*/status"]),))
    [note] = [n for n in scope_notes(scope) if "housekeeping" in n]
    listed = note.partition("housekeeping (")[2].partition(")")[0]
    assert listed.split(", ") == [
        "nodes/status",
        "pods/status",
        "certificates.k8s.io/certificatesigningrequests/status",
    ]
    assert "nodes/status" in note.rpartition("(e.g.")[2]  # the way out
    # Leases, Events and CSINodes have no subresource to leave out.
    for resource in ("leases", "events", "csinodes"):
        assert resource not in note
    # `*/scale` sends nothing the kubelet writes: nothing to say.
    assert not any(
        "housekeeping" in n
        for n in scope_notes(AdmissionScope(policy_rules=(_policy_rule(["UPDATE"], ["*/scale"]),)))
    )


def test_before_1_28_a_fail_closed_subresource_of_every_resource_is_refused() -> None:
    """Without matchConditions nothing leaves every kubelet's Node and Pod status out of `*/status`."""
    scope = AdmissionScope(policy_rules=(_policy_rule(["UPDATE"], ["*/status"]),), origin="trustgate.yaml")
    with pytest.raises(UnsafeSubresourcesError) as refused:
        _hook(scope, version="1.27")
    text = refused.value.diagnostics()
    assert text.startswith("trustgate.yaml: ")
    assert "nodes/status" in text and "pods/status" in text and "1.28" in text
    assert "hint: name the subresources" in text
    # The ways out: a 1.28 target (matchConditions), fail-open, or naming the subresources.
    assert _hook(scope, version="1.28")["failurePolicy"] == "Fail"
    assert _hook(scope, version="1.27", failure_policy="open")["failurePolicy"] == "Ignore"
    named = AdmissionScope(policy_rules=(_policy_rule(["UPDATE"], ["deployments/status"], groups=("apps",)),))
    hook = _hook(named, version="1.27")
    assert "matchConditions" not in hook
    assert _sent(hook, _request("UPDATE", "apps", "deployments", "status", kind=("apps", "Deployment")))
    assert not _sent(hook, KUBELET_WRITES[0])


def test_the_cli_refuses_before_1_28_with_one_clear_error(tmp_path: Path) -> None:
    policy = tmp_path / "status.yaml"
    policy.write_text(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\n"
        "metadata: {name: status-writers}\nspec:\n  failurePolicy: Fail\n  matchConstraints:\n"
        "    resourceRules:\n      - {apiGroups: ['*'], apiVersions: ['*'], operations: [UPDATE], "
        "resources: ['*/status']}\n  validations:\n"
        "    - expression: \"request.userInfo.username != 'mallory'\"\n"
        "---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\n"
        "metadata: {name: status-writers}\nspec: {policyName: status-writers, validationActions: [Deny]}\n"
    )
    runner = CliRunner()
    args = ["webhook-config", "--admission-policy", str(policy)]
    result = runner.invoke(main, [*args, "--kubernetes-version", "1.27"], catch_exceptions=False)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert "before Kubernetes 1.28" in result.output and "hint:" in result.output
    result = runner.invoke(main, [*args, "--kubernetes-version", "1.28"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "pods/status" in result.output  # the matchCondition and the note
