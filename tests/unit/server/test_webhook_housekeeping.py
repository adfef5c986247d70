"""The housekeeping matchCondition applies to CREATE and UPDATE of a main resource only (an admission
policy's DELETE and CONNECT are sent as its rules say), kubelet bootstrap objects (CSINodes) are
left out of wildcards, and the fail-open webhook never sends a cluster-scoped object a second time."""

from __future__ import annotations

from typing import Any

import pytest

from trustgate.config import AdmissionSettings
from trustgate.policy.cel import CelEvalError, compile_expression
from trustgate.server.webhookconfig import AdmissionScope, left_out, webhook_configuration

EVERYTHING = (("*", "*"),)


def _policy_rule(operation: str, resources: list[str]) -> dict[str, Any]:
    return {
        "apiGroups": ["*"],
        "apiVersions": ["*"],
        "operations": [operation],
        "resources": resources,
        "scope": "*",
    }


def _hooks(scope: AdmissionScope, settings: AdmissionSettings | None = None) -> list[dict[str, Any]]:
    settings = settings or AdmissionSettings(resources=scope.resources, fail_open_label=None)
    hooks: list[dict[str, Any]] = webhook_configuration(settings, kubernetes_version="1.30", scope=scope)[
        "webhooks"
    ]
    return hooks


def _outcome(hook: dict[str, Any], request: dict[str, Any]) -> str:
    """What the API server does with `hook` for `request` by its matchConditions: "skipped" when
    one is false, else "error" when one fails to evaluate (the failure policy applies: Fail
    refuses the request), else "sent"."""
    results: list[Any] = []
    for condition in hook.get("matchConditions", []):
        try:
            results.append(
                compile_expression(condition["expression"], variables=["request"]).evaluate(
                    {"request": request}
                )
            )
        except CelEvalError as e:
            results.append(e)
    if any(r is False for r in results):
        return "skipped"
    return "sent" if all(r is True for r in results) else "error"


def _admitted_by_conditions(hook: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether every matchCondition of `hook` is true for `request`, as the API server evaluates them
    (a condition that errs fails the test: the API server would apply the failure policy)."""
    outcome = _outcome(hook, request)
    assert outcome != "error", f"a matchCondition fails to evaluate on {request}"
    return outcome == "sent"


def _request(
    operation: str,
    group: str,
    resource: str,
    sub: str = "",
    namespace: str = "",
    name: str = "n1",
    kind: str = "Node",
) -> dict[str, Any]:
    """An AdmissionRequest as the API server hands it to matchConditions: unstructured JSON, without
    the empty `omitempty` fields (`subResource`, `namespace`, `name`)."""
    request: dict[str, Any] = {
        "operation": operation,
        "resource": {"group": group, "version": "v1", "resource": resource},
        "subResource": sub,
        "namespace": namespace,
        "name": name,
        "kind": {"group": group, "version": "v1", "kind": kind},
    }
    return {k: v for k, v in request.items() if v != ""}


POLICIES = AdmissionScope(
    workloads=False,
    resources=EVERYTHING,
    policy_rules=(_policy_rule("CONNECT", ["*/*"]), _policy_rule("DELETE", ["*"])),
)


@pytest.mark.parametrize(
    "request_",
    [
        _request("CONNECT", "", "nodes", "proxy"),
        _request("DELETE", "", "nodes"),
        _request("DELETE", "storage.k8s.io", "csinodes"),
        _request("DELETE", "coordination.k8s.io", "leases", namespace="kube-node-lease"),
        _request("UPDATE", "", "nodes", "status"),
    ],
    ids=["connect-node-proxy", "delete-node", "delete-csinode", "delete-node-lease", "node-status"],
)
def test_an_admission_policy_s_delete_and_connect_of_housekeeping_are_sent(request_: dict[str, Any]) -> None:
    (hook,) = _hooks(POLICIES)
    assert _admitted_by_conditions(hook, request_)


@pytest.mark.parametrize(
    "request_",
    [
        _request("CREATE", "", "nodes"),
        _request("UPDATE", "", "nodes"),
        _request("CREATE", "storage.k8s.io", "csinodes"),
        _request("UPDATE", "storage.k8s.io", "csinodes"),
        _request("CREATE", "certificates.k8s.io", "certificatesigningrequests"),
        _request("UPDATE", "coordination.k8s.io", "leases", namespace="kube-node-lease"),
    ],
    ids=["create-node", "update-node", "create-csinode", "update-csinode", "create-csr", "update-node-lease"],
)
def test_a_wildcard_s_writes_of_kubelet_bootstrap_objects_are_left_out(request_: dict[str, Any]) -> None:
    (hook,) = _hooks(POLICIES)
    assert not _admitted_by_conditions(hook, request_)


def test_only_create_and_update_rules_name_housekeeping() -> None:
    # A policy that judges the deletion of Nodes does not make every kubelet's Node update depend on
    # the webhook.
    scope = AdmissionScope(
        workloads=False,
        resources=EVERYTHING,
        policy_rules=(
            {**_policy_rule("DELETE", ["nodes", "csinodes"]), "apiGroups": ["", "storage.k8s.io"]},
        ),
    )
    (hook,) = _hooks(scope)
    assert not _admitted_by_conditions(hook, _request("UPDATE", "", "nodes"))
    assert not _admitted_by_conditions(hook, _request("CREATE", "storage.k8s.io", "csinodes"))
    assert _admitted_by_conditions(hook, _request("DELETE", "", "nodes"))
    rules = hook["rules"]
    assert {("", "nodes"), ("storage.k8s.io", "csinodes")} <= set(left_out(rules))


def test_csinodes_named_by_a_create_rule_are_sent() -> None:
    scope = AdmissionScope(workloads=False, resources=(*EVERYTHING, ("storage.k8s.io", "csinodes")))
    (hook,) = _hooks(scope)
    assert _admitted_by_conditions(hook, _request("CREATE", "storage.k8s.io", "csinodes"))
    assert ("storage.k8s.io", "csinodes") not in left_out(hook["rules"])


# -- the fail-open webhook ----------------------------------------------------------------------


def _matches(hook: dict[str, Any], group: str, resource: str, operation: str, namespaced: bool) -> bool:
    """Whether a rule of `hook` sends the request (rules only: the namespaceSelector is checked apart)."""
    for rule in hook["rules"]:
        if not ({group, "*"} & set(rule["apiGroups"])) or not ({operation, "*"} & set(rule["operations"])):
            continue
        if not ({resource, "*", "*/*"} & set(rule["resources"])):
            continue
        if rule["scope"] in ("*", "Namespaced" if namespaced else "Cluster"):
            return True
    return False


def _selected(hook: dict[str, Any], labels: dict[str, str], *, is_namespace: bool, namespaced: bool) -> bool:
    """The namespaceSelector as the API server applies it: a cluster-scoped object other than a
    Namespace is never skipped; a Namespace is matched by its own labels, anything else by its
    namespace's."""
    if not namespaced and not is_namespace:
        return True
    for expression in hook["namespaceSelector"]["matchExpressions"]:
        value = labels.get(expression["key"])
        inside = value in expression["values"]
        if (expression["operator"] == "In") != inside:
            return False
    return True


@pytest.mark.parametrize(
    ("group", "resource", "operation", "namespaced", "is_namespace", "labels", "expected"),
    [
        ("rbac.authorization.k8s.io", "clusterroles", "CREATE", False, False, {}, ["validate.trustgate.dev"]),
        ("", "persistentvolumes", "DELETE", False, False, {}, ["validate.trustgate.dev"]),
        (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "DELETE",
            False,
            False,
            {},
            ["validate.trustgate.dev"],
        ),
        (
            "",
            "namespaces",
            "DELETE",
            False,
            True,
            {"kubernetes.io/metadata.name": "a"},
            ["validate.trustgate.dev"],
        ),
        (
            "",
            "namespaces",
            "DELETE",
            False,
            True,
            {"kubernetes.io/metadata.name": "a", "trustgate.dev/fail-open": "true"},
            ["validate-fail-open.trustgate.dev"],
        ),
        (
            "",
            "configmaps",
            "CREATE",
            True,
            False,
            {"kubernetes.io/metadata.name": "a", "trustgate.dev/fail-open": "true"},
            ["validate-fail-open.trustgate.dev"],
        ),
        (
            "",
            "configmaps",
            "CREATE",
            True,
            False,
            {"kubernetes.io/metadata.name": "a"},
            ["validate.trustgate.dev"],
        ),
    ],
    ids=[
        "clusterrole",
        "persistentvolume-delete",
        "crd-delete",
        "namespace",
        "fail-open-namespace",
        "fail-open-configmap",
        "configmap",
    ],
)
def test_every_object_goes_to_one_webhook(
    group: str,
    resource: str,
    operation: str,
    namespaced: bool,
    is_namespace: bool,
    labels: dict[str, str],
    expected: list[str],
) -> None:
    settings = AdmissionSettings(
        resources=EVERYTHING,
        fail_open_label="trustgate.dev/fail-open=true",
        protected_kinds=("Namespace", "CustomResourceDefinition", "PersistentVolume"),
    )
    hooks = _hooks(AdmissionScope(resources=EVERYTHING), settings)
    sent = [
        h["name"]
        for h in hooks
        if _matches(h, group, resource, operation, namespaced)
        and _selected(h, labels, is_namespace=is_namespace, namespaced=namespaced)
    ]
    assert sent == expected


@pytest.mark.parametrize(
    ("request_", "sent"),
    [
        (_request("UPDATE", "coordination.k8s.io", "leases", namespace="kube-node-lease"), False),
        (_request("CREATE", "", "events", namespace="shop"), False),
        (_request("UPDATE", "", "nodes"), False),
        (_request("CREATE", "", "pods", namespace="shop"), True),
        (_request("CREATE", "", "pods", namespace="kube-system"), False),
        (_request("CREATE", "", "namespaces", name="team-a", kind="Namespace"), True),
        (_request("CREATE", "", "namespaces", name="kube-system", kind="Namespace"), False),
        (_request("CREATE", "tenancy.example.io", "namespaces", name="kube-system", kind="Namespace"), True),
        (_request("CREATE", "", "pods", namespace="shop", name=""), True),
        (
            _request(
                "DELETE", "apiextensions.k8s.io", "customresourcedefinitions", kind="CustomResourceDefinition"
            ),
            True,
        ),
        (_request("CREATE", "rbac.authorization.k8s.io", "clusterroles", kind="ClusterRole"), True),
    ],
    ids=[
        "node-heartbeat",
        "event",
        "node-update",
        "pod",
        "pod-in-kube-system",
        "namespace",
        "kube-system-namespace",
        "custom-kind-named-namespace",
        "pod-under-generate-name",
        "crd-delete",
        "cluster-role",
    ],
)
def test_conditions_never_fail_on_the_fields_the_api_server_leaves_out(
    request_: dict[str, Any], sent: bool
) -> None:
    """The API server omits empty `omitempty` fields (a cluster-scoped object's namespace, a plain
    write's subResource, a generated name): a condition reading one without `has()` errs, and the
    failure policy then refuses node heartbeats, CRD deletions, every cluster-scoped object."""
    scope = AdmissionScope(
        workloads=True,
        resources=(*EVERYTHING, ("coordination.k8s.io", "leases")),
        policy_rules=POLICIES.policy_rules,
    )
    for hook in _hooks(scope):
        assert _outcome(hook, request_) == ("sent" if sent else "skipped"), hook["name"]


# -- Namespaces named by a label their creator writes (before 1.21) -----------------------------


@pytest.mark.parametrize(
    ("version", "labels", "namespaced", "is_namespace", "expected"),
    [
        ("1.20", {"kubernetes.io/metadata.name": "kube-system"}, True, False, ["validate-unlabelled"]),
        ("1.20", {"kubernetes.io/metadata.name": "kube-node-lease"}, True, False, ["validate-unlabelled"]),
        (
            "1.20",
            {"kubernetes.io/metadata.name": "kube-system", "trustgate.dev/failure-policy": "open"},
            True,
            False,
            ["validate-unlabelled"],
        ),
        ("1.20", {"kubernetes.io/metadata.name": "kube-system"}, False, True, ["validate-unlabelled"]),
        ("1.20", {"kubernetes.io/metadata.name": "shop"}, True, False, ["validate"]),
        ("1.20", {"trustgate.dev/failure-policy": "open"}, True, False, ["validate-fail-open"]),
        ("1.20", {}, False, False, ["validate"]),
        ("1.21", {"kubernetes.io/metadata.name": "kube-system"}, True, False, []),
    ],
    ids=[
        "posing-as-kube-system",
        "posing-as-kube-node-lease",
        "posing-and-fail-open",
        "namespace-posing",
        "labelled-namespace",
        "fail-open-namespace",
        "cluster-scoped",
        "1.21-sets-the-label",
    ],
)
def test_a_namespace_name_label_before_1_21_skips_no_judgement(
    version: str, labels: dict[str, str], namespaced: bool, is_namespace: bool, expected: list[str]
) -> None:
    """Before 1.21 `kubernetes.io/metadata.name` is whatever a Namespace's creator writes: one
    labelled as kube-system was left out by every webhook and nothing in it was judged. It goes to
    exactly one webhook, which the server answers for the real kube-system (by `request.namespace`)."""
    settings = AdmissionSettings(resources=EVERYTHING)
    hooks = webhook_configuration(settings, kubernetes_version=version)["webhooks"]
    resource = ("", "namespaces") if is_namespace else ("", "configmaps") if namespaced else ("", "nodes")
    sent = [
        h["name"].removesuffix(".trustgate.dev")
        for h in hooks
        if _matches(h, *resource, "CREATE", namespaced)
        and _selected(h, labels, is_namespace=is_namespace, namespaced=namespaced)
    ]
    assert sent == expected
    unlabelled = [h for h in hooks if h["name"] == "validate-unlabelled.trustgate.dev"]
    if version == "1.20":  # never locks out the real kube-system: it does not wait for the webhook
        assert [(h["failurePolicy"], h["clientConfig"]["service"]["path"]) for h in unlabelled] == [
            ("Ignore", "/validate")
        ]
    else:
        assert not unlabelled
