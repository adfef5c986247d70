"""The ValidatingWebhookConfiguration that sends the cluster's requests to `trustgate serve`.

Owns: which resources and operations go to the webhook, and the exclusions
that keep the cluster from locking itself out: kube-system and trustgate's
own namespace are left out by namespaceSelector (the
`kubernetes.io/metadata.name` label, set on every Namespace since 1.21) and
again by matchConditions (CEL, Kubernetes 1.28+, emitted only when the
target version has them: kubectl of older clusters rejects the field), and
the server excludes them a third time. Namespaces labelled for
fail-open go to a second webhook with `failurePolicy: Ignore`.

CREATE and UPDATE are sent for what the loaded configuration judges (`Judged`,
read by `judged`): the workloads (PodTemplates included) of the bundled
policies and of image rules; the kinds of every Gatekeeper constraint's `spec.match.kinds` and of
every ExpansionTemplate's `applyTo` (a built-in kind under its resource, a
custom kind of a given CRD under its plural, any other custom kind as every
resource of its group: its plural is not guessed; no kinds, or `*`, is every
resource); the ValidatingAdmissionPolicies' rules for CREATE and UPDATE; and
`admission.resources`. The user's own Rego may judge any kind and cannot be
read for which: a configuration with Rego of its own and no
`admission.resources` is refused (`UnderivedResourcesError`), never sent
workloads only. Kubernetes schemas add nothing: the API server validates every
object against its own. Where a wildcard sends every resource of the core
group or of `coordination.k8s.io` or `events.k8s.io`, the cluster's own
housekeeping (`LEFT_OUT_OF_WILDCARDS`: Leases, Events, Nodes, token and access
reviews) is left out by a matchCondition; before 1.28, which has none, the
kube-node-lease namespace is left out instead, so that kubelets renew their
Leases whether or not the webhook answers.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trustgate import kinds as builtin_kinds
from trustgate.config import AdmissionSettings
from trustgate.errors import ConfigError

if TYPE_CHECKING:
    from trustgate.config import Config

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


WORKLOAD_RESOURCES = {  # what the bundled policies judge (trustgate.lib.k8s workload_kinds)
    "": ["pods", "pods/ephemeralcontainers", "replicationcontrollers", "podtemplates"],
    "apps": ["deployments", "statefulsets", "daemonsets", "replicasets"],
    "batch": ["jobs", "cronjobs"],
}
PROTECTED_RESOURCES = {  # kind -> (group, resource)
    "Namespace": ("", "namespaces"),
    "CustomResourceDefinition": ("apiextensions.k8s.io", "customresourcedefinitions"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "PersistentVolume": ("", "persistentvolumes"),
}


EPHEMERAL = "pods/ephemeralcontainers"  # `kubectl debug`: sent wherever Pods are
# The cluster's housekeeping, left out where a wildcard would send it (never where named): written
# every few seconds by every kubelet and controller (node and leader-election Leases, Events,
# Nodes) or reviews that store nothing, which failurePolicy Fail would stop whenever the webhook
# cannot answer (kubelets whose Leases lapse are marked NotReady and their Pods evicted).
LEFT_OUT_OF_WILDCARDS: tuple[tuple[str, str], ...] = (
    ("coordination.k8s.io", "leases"),
    ("", "events"),
    ("events.k8s.io", "events"),
    ("", "nodes"),
    ("authentication.k8s.io", "tokenreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
    ("authorization.k8s.io", "subjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authorization.k8s.io", "localsubjectaccessreviews"),
)
NODE_LEASE_NAMESPACE = "kube-node-lease"
Kinds = tuple[tuple[str, ...], tuple[str, ...]]  # (apiGroups, kinds), as a Gatekeeper match gives them


class UnderivedResourcesError(ConfigError):
    """The configuration judges kinds `webhook-config` cannot derive, and `admission.resources` is unset."""


@dataclass(frozen=True, slots=True)
class Judged:
    """What the loaded configuration judges on CREATE and UPDATE, as far as it can be read.

    Attributes:
        workloads: the bundled policy sets or image rules are loaded (they judge workloads and
            PodTemplates).
        kinds: (apiGroups, kinds) of Gatekeeper constraints and ExpansionTemplates; no kinds (or
            `*`) is every kind of those groups, no groups (or `*`) any group.
        custom: (group, kind) -> plural of the custom kinds of the CRDs given (`kubernetes.crds`).
        policy_rules: ValidatingAdmissionPolicy rules (`vap.PolicySet.rules_for`), one operation each.
        underived: what judges kinds that cannot be read from it (the user's Rego sources).
        resources: `admission.resources` ((group, resource) pairs); None: not set.
        origin: the configuration file, for the refusal.
    """

    workloads: bool = True
    kinds: tuple[Kinds, ...] = ()
    custom: Mapping[tuple[str, str], str] = field(default_factory=dict)
    policy_rules: Sequence[Mapping[str, Any]] = ()
    underived: tuple[str, ...] = ()
    resources: tuple[tuple[str, str], ...] | None = None
    origin: str = "<embedded default>"


def judged(config: Config) -> Judged:
    """Read what `config` judges from the sources `serve` loads: policy sources, the Gatekeeper
    library (`gate.sources.load_gatekeeper`), admission policies and CRDs.

    Raises:
        ConfigError, PolicyError: a source is unreadable or broken (as `serve` would fail on it).
    """
    from trustgate.gate.sources import load_gatekeeper, read_crds

    crds = read_crds(config)
    custom: dict[tuple[str, str], str] = {}
    for crd in crds:
        spec = crd.get("spec")
        names = spec.get("names") if isinstance(spec, Mapping) else None
        if isinstance(spec, Mapping) and isinstance(names, Mapping):
            group, kind, plural = spec.get("group"), names.get("kind"), names.get("plural")
            if isinstance(group, str) and isinstance(kind, str) and isinstance(plural, str) and plural:
                custom[(group, kind)] = plural
    found: list[Kinds] = []
    library = load_gatekeeper(config)
    if library is not None:
        constraints = list(library.constraints.constraints)
        if not config.gatekeeper.skip_unsupported:  # not evaluable: they deny what they match
            constraints += library.constraints.skipped
        for constraint in constraints:
            found.extend(constraint.match.kinds or [((), ())])
        for expansion in library.constraints.expansions:  # the objects their resultants come from
            found.extend((a.groups, a.kinds) for a in expansion.apply_to)
    rules: list[dict[str, Any]] = []
    if config.admission_policies:
        from trustgate.policy import vap

        policies = vap.load(config.admission_policies, limits=config.limits, crds=crds)
        for operation in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
            rules.extend(policies.rules_for(operation))
    return Judged(
        # Image rules verify the images of workloads whichever policy sets are loaded.
        workloads=any(s.builtin for s in config.policies) or config.images.enabled,
        kinds=tuple(found),
        custom=custom,
        policy_rules=rules,
        underived=tuple(s.label for s in config.policies if s.builtin is None),
        resources=config.admission.resources,
        origin=config.origin,
    )


def _resources_of(
    groups: Sequence[str], kinds: Sequence[str], custom: Mapping[tuple[str, str], str]
) -> set[tuple[str, str]]:
    """(group, resource) pairs a Gatekeeper (apiGroups, kinds) entry matches."""
    any_group = not groups or "*" in groups
    if not kinds or "*" in kinds:
        return {("*", "*")} if any_group else {(g, "*") for g in groups}
    from trustgate.policy.vap import resource_of

    out: set[tuple[str, str]] = set()
    for kind in kinds:
        if any_group:
            # Every group serving the kind: the built-in ones and the given CRDs' under their own
            # plural, and any other under the plural a built-in kind of that name has.
            out.add(("*", resource_of(kind)))
            out.update((g, p) for (g, k), p in custom.items() if k == kind)
            continue
        for group in groups:
            if builtin_kinds.builtin_namespaced(group, kind) is not None:
                out.add((group, resource_of(kind)))
            elif (group, kind) in custom:
                out.add((group, custom[(group, kind)]))
            else:  # a custom kind without its CRD: its plural is not guessed
                out.add((group, "*"))
    return out


def create_update_rules(judged: Judged) -> list[dict[str, Any]]:
    """The CREATE and UPDATE rules for what `judged` says the configuration judges.

    Raises:
        UnderivedResourcesError: something judges kinds that cannot be derived, and
            `admission.resources` does not say what to send for it.
    """
    if judged.underived and judged.resources is None:
        raise UnderivedResourcesError(
            f"the configuration's own Rego policies ({', '.join(judged.underived)}) may judge any kind, "
            "and which resources the admission webhook must be sent for them cannot be read from "
            "them: generating a webhook configuration for the bundled workloads only would let "
            "every other kind they deny in CI through at admission",
            where=judged.origin,
            hint="set admission.resources to what they judge (e.g. resources: [services, "
            'networking.k8s.io/ingresses, namespaces]), or to ["*"] for every resource (README, '
            '"Admission webhook")',
        )
    pairs: set[tuple[str, str]] = set(judged.resources or ())
    order = [(g, r) for g, rs in WORKLOAD_RESOURCES.items() for r in rs] if judged.workloads else []
    pairs.update(order)
    for groups, kinds in judged.kinds:
        pairs |= _resources_of(groups, kinds, judged.custom)
    if pairs & {("", "pods"), ("", "*"), ("*", "pods"), ("*", "*")}:
        pairs.add(("", EPHEMERAL))  # a wildcard names no subresource
    # Housekeeping named as such stays named: a wildcard beside it leaves it out (`left_out`).
    named = [p for p in LEFT_OUT_OF_WILDCARDS if p in pairs]
    if ("*", "*") in pairs:
        return [_rule("*", ["*"]), _rule("", [EPHEMERAL]), *(_rule(g, [r]) for g, r in named)]
    wild = {r for g, r in pairs if g == "*"}  # sent in every group by one rule
    by_group: dict[str, list[str]] = {}
    for group, resource in [*order, *sorted(pairs - set(order))]:
        listed = by_group.setdefault(group, [])
        if (group == "*" or resource not in wild or (group, resource) in named) and resource not in listed:
            listed.append(resource)
    return [
        # "*" is every resource but no subresource: pods/ephemeralcontainers stays beside it.
        _rule(group, ["*", *(r for r in resources if "/" in r)] if "*" in resources else resources)
        for group, resources in by_group.items()
        if resources
    ]


def _rule(group: str, resources: list[str]) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": ["*"],
        "operations": ["CREATE", "UPDATE"],
        "resources": resources,
        "scope": "*",
    }


def _main_resources(resources: Sequence[str]) -> list[str]:
    """What CREATE and UPDATE rules send of `resources`: the server judges no subresource but
    `kubectl debug`'s, so `x/*` (a resource with its subresources) sends `x`, and `*/scale` nothing."""
    out: list[str] = []
    for resource in resources:
        main, slash, sub = resource.partition("/")
        kept = resource if resource == EPHEMERAL else main if not slash or sub == "*" else ""
        if kept and kept not in out:
            out.append(kept)
    return out


def _covers(rule: Mapping[str, Any], group: str, resource: str, *, named: bool) -> bool:
    groups, resources = rule.get("apiGroups", ()), rule.get("resources", ())
    if named:
        return group in groups and resource in resources
    return (group in groups or "*" in groups) and (resource in resources or "*" in resources)


def left_out(rules: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The housekeeping resources (`LEFT_OUT_OF_WILDCARDS`) the rules send through a wildcard only."""
    rules = list(rules)
    return [
        (group, resource)
        for group, resource in LEFT_OUT_OF_WILDCARDS
        if any(_covers(r, group, resource, named=False) for r in rules)
        and not any(_covers(r, group, resource, named=True) for r in rules)
    ]


def webhook_configuration(
    settings: AdmissionSettings,
    *,
    service: str = "trustgate",
    ca_bundle: bytes | None = None,
    url: str | None = None,
    port: int = 443,
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    policy_rules: Sequence[Mapping[str, Any]] = (),
    judged: Judged | None = None,
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
        policy_rules: rules of the resources admission policies judge (`vap.PolicySet.rules_for`,
            one operation each), sent beside the others.
        judged: what the configuration judges on CREATE and UPDATE (`judged`); None: the
            bundled policies alone.

    Raises:
        ValueError: `kubernetes_version` is not a version.
        UnderivedResourcesError: `judged` has sources whose kinds cannot be derived, and no
            `admission.resources`.
    """
    with_conditions = parse_version(kubernetes_version) >= MATCH_CONDITIONS_SINCE
    excluded = [n for n in settings.excluded if not any(c in n for c in "*?[")]
    judged = judged if judged is not None else Judged(resources=settings.resources)
    rules = create_update_rules(judged)
    policy_rules = [*policy_rules, *judged.policy_rules]
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
        if entry["operations"] in (["CREATE"], ["UPDATE"]):
            entry["resources"] = _main_resources(entry["resources"])
            if not entry["resources"]:
                continue
        if entry not in rules:
            rules.append(entry)
    housekeeping = left_out(rules)
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
    if housekeeping:
        listed = ", ".join(f"'{g}/{r}'" for g, r in housekeeping)
        conditions.append(
            {
                "name": "leave-out-cluster-housekeeping",
                "expression": f"!(request.resource.group + '/' + request.resource.resource in [{listed}])",
            }
        )
    selected = list(excluded)
    if not with_conditions and ("coordination.k8s.io", "leases") in housekeeping:
        selected.append(NODE_LEASE_NAMESPACE)  # no matchConditions: the node Leases' namespace instead
    base_selector: list[dict[str, Any]] = [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": selected}
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
