"""The ValidatingWebhookConfiguration that sends the cluster's requests to `trustgate serve`.

Owns: which resources and operations go to the webhook, and the exclusions
that keep the cluster from locking itself out: kube-system and trustgate's
own namespace are left out by namespaceSelector (the
`kubernetes.io/metadata.name` label, set on every Namespace since 1.21) and
again by matchConditions (CEL, Kubernetes 1.28+, emitted only when the
target version has them: kubectl of older clusters rejects the field), and
the server excludes them a third time. Namespaces labelled for
fail-open go to a second webhook with `failurePolicy: Ignore`.

DELETE is sent for the protected kinds (their approval), and DELETE and
CONNECT for the resources the loaded ValidatingAdmissionPolicies name for
them (`policy_rules`, from `vap.PolicySet.rules_for`: their matchConstraints
rules, a superset of what their bindings select, narrowed again on the
server), since the API server runs those policies on them. Every DELETE and
CONNECT sent is evaluated and recorded, so a policy whose rules name every
resource for DELETE sends every deletion outside the excluded namespaces, and
one naming pods/exec for CONNECT makes `kubectl exec` depend on the webhook.

objectSelector matches every object on purpose: object labels are chosen by
whoever creates the object, so any exclusion by object label would let
anyone skip the policy.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import Any

from trustgate.config import AdmissionSettings

NAME = "trustgate"
MATCH_CONDITIONS_SINCE = (1, 28)  # beta and on by default in 1.28, GA in 1.30
DEFAULT_KUBERNETES_VERSION = "1.28"


def parse_version(text: str) -> tuple[int, int]:
    """`1.27`, `v1.27.3` or `1.27.3-eks-1234` as (major, minor).

    Raises:
        ValueError: the text does not start with a major and a minor number.
    """
    found = re.match(r"v?(\d+)\.(\d+)", text.strip())
    if found is None:
        raise ValueError(f"not a Kubernetes version: {text!r} (expected e.g. 1.28 or v1.27.3)")
    return int(found.group(1)), int(found.group(2))


WORKLOAD_RESOURCES = {
    "": ["pods", "pods/ephemeralcontainers", "replicationcontrollers"],
    "apps": ["deployments", "statefulsets", "daemonsets", "replicasets"],
    "batch": ["jobs", "cronjobs"],
}
PROTECTED_RESOURCES = {  # kind -> (group, resource)
    "Namespace": ("", "namespaces"),
    "CustomResourceDefinition": ("apiextensions.k8s.io", "customresourcedefinitions"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "PersistentVolume": ("", "persistentvolumes"),
}


def webhook_configuration(
    settings: AdmissionSettings,
    *,
    service: str = "trustgate",
    ca_bundle: bytes | None = None,
    url: str | None = None,
    port: int = 443,
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    policy_rules: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The manifest, pointing at the Service (or at `url`, for API servers outside the cluster).

    Args:
        settings: the `admission` section.
        service: the Service's name (in `settings.namespace`).
        ca_bundle: the PEM CA that signed the serving certificate.
        url: an https:// URL to call instead of the Service.
        port: the Service's port.
        kubernetes_version: the oldest API server it is applied to; `matchConditions` is left out
            before 1.28.
        policy_rules: rules of the resources admission policies judge on DELETE and CONNECT
            (`vap.PolicySet.rules_for`, one operation each), sent beside the protected kinds'.

    Raises:
        ValueError: `kubernetes_version` is not a version.
    """
    with_conditions = parse_version(kubernetes_version) >= MATCH_CONDITIONS_SINCE
    excluded = [n for n in settings.excluded if not any(c in n for c in "*?[")]
    rules: list[dict[str, Any]] = [
        {
            "apiGroups": [group],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": resources,
            "scope": "*",
        }
        for group, resources in WORKLOAD_RESOURCES.items()
    ]
    by_group: dict[str, list[str]] = {}
    for kind in settings.protected_kinds:
        if kind in PROTECTED_RESOURCES:
            group, resource = PROTECTED_RESOURCES[kind]
            by_group.setdefault(group, []).append(resource)
    rules += [
        {"apiGroups": [g], "apiVersions": ["*"], "operations": ["DELETE"], "resources": r, "scope": "*"}
        for g, r in by_group.items()
    ]
    for rule in policy_rules:
        entry = dict(rule)
        if entry not in rules:
            rules.append(entry)
    names = ", ".join(f"'{n}'" for n in excluded)
    conditions = [
        {
            "name": "exclude-system-namespaces",
            "expression": f"!(request.namespace in [{names}])",
        },
        {
            "name": "exclude-system-namespace-objects",
            "expression": f"request.kind.kind != 'Namespace' || !(request.name in [{names}])",
        },
    ]
    base_selector: list[dict[str, Any]] = [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}
    ]

    def webhook(name: str, path: str, policy: str, extra: list[dict[str, Any]]) -> dict[str, Any]:
        client: dict[str, Any]
        if url is not None:
            client = {"url": url.rstrip("/") + path}
        else:
            client = {
                "service": {"name": service, "namespace": settings.namespace, "path": path, "port": port}
            }
        if ca_bundle is not None:
            client["caBundle"] = base64.b64encode(ca_bundle).decode()
        hook: dict[str, Any] = {
            "name": name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "NoneOnDryRun",
            "timeoutSeconds": settings.timeout_seconds,
            "failurePolicy": policy,
            "matchPolicy": "Equivalent",
            "clientConfig": client,
            "rules": [dict(r) for r in rules],
            "namespaceSelector": {"matchExpressions": base_selector + extra},
            "objectSelector": {},
        }
        if with_conditions:
            hook["matchConditions"] = conditions
        return hook

    closed = "Ignore" if settings.failure_policy == "open" else "Fail"
    webhooks = []
    if settings.fail_open_label:
        key, _, value = settings.fail_open_label.partition("=")
        webhooks.append(
            webhook(
                "validate.trustgate.dev",
                "/validate",
                closed,
                [{"key": key, "operator": "NotIn", "values": [value]}],
            )
        )
        webhooks.append(
            webhook(
                "validate-fail-open.trustgate.dev",
                "/validate/fail-open",
                "Ignore",
                [{"key": key, "operator": "In", "values": [value]}],
            )
        )
    else:
        webhooks.append(webhook("validate.trustgate.dev", "/validate", closed, []))
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/name": "trustgate"}},
        "webhooks": webhooks,
    }
