"""The ValidatingWebhookConfiguration that sends the cluster's requests to `trustgate serve`.

Owns: which resources and operations go to the webhook, and the exclusions
that keep the cluster from locking itself out: kube-system and trustgate's
own namespace are left out by namespaceSelector (the
`kubernetes.io/metadata.name` label, set on every Namespace since 1.21) and
again by matchConditions (CEL, Kubernetes 1.28+, emitted only when the
target version has them: kubectl of older clusters rejects the field), and
the server excludes them a third time. Namespaces labelled for
fail-open go to a second webhook with `failurePolicy: Ignore`, whose rules
have `scope: Namespaced` (and a Namespace's own, `Cluster`, for the labelled
Namespaces themselves): every other cluster-scoped object goes to the main
webhook alone, judged and recorded once. Before 1.21 the name label is
whatever a Namespace's creator writes, so the Namespaces carrying the label
of a left-out one go to a third webhook (`failurePolicy: Ignore`, on
`/validate`): the server leaves out the real ones by name and judges the rest.

CREATE and UPDATE are sent for what the loaded configuration judges
(`AdmissionScope`, read by `read_scope`): the workloads (PodTemplates included)
of the bundled policies and of image rules, and Flux OCIRepositories where
image rules judge their artifacts; the kinds of every Gatekeeper constraint's
`spec.match.kinds` and of every ExpansionTemplate's `applyTo` (a built-in kind
under its resource; a custom kind of a given CRD under its plural; a custom
kind of a named group without its CRD as every resource of that group; a
custom kind of any group without its CRD is refused, `UnderivedResourcesError`,
since its plural is never guessed and every resource would be sent for it; no
kinds, or `*`, is every resource; a kind a request has on a subresource only
is sent those subresources, `SUBRESOURCE_KINDS`: a Scale is `*/scale`); the
ValidatingAdmissionPolicies' rules for
CREATE and UPDATE as they are written, subresources included (`deployments/scale`,
`pods/*`, `*/status`: the server judges such a write with the policies whose
rules name it, and Gatekeeper constraints matching its kind); and
`admission.resources`. The user's own Rego may judge any kind and cannot be
read for which: a configuration with Rego of its own and no
`admission.resources` is refused too, never sent the derived kinds only.
Kubernetes schemas add nothing: the API server validates every object against
its own.

Where a `*` resource (of every group, or of one) sends it, the cluster's own
housekeeping (`LEFT_OUT_OF_WILDCARDS`: Leases, Events, Nodes, CSINodes,
CertificateSigningRequests) is left out of CREATE and UPDATE by a
matchCondition, unless a CREATE or UPDATE rule names it (in its group or in
any, an Event in either of its two groups); the condition never applies to
DELETE, CONNECT or a subresource, which an admission policy's rules send as
they say, except that what kubelets and the control plane write through
subresources (`HOUSEKEEPING_SUBRESOURCES`: every Node's and Pod's status,
every Pod's token, a CSR's approval) is left out of a subresource of any
resource (`*/status`, `*/*`) by a second condition unless a rule names the
subresource (before 1.28, which has none, a fail-closed webhook is refused
such a rule: `UnsafeSubresourcesError`); token and
access reviews (`REVIEWS`) are never sent, named or not. Node heartbeats
(Leases in kube-node-lease) are left out whenever Leases are sent: by a
matchCondition on those Leases alone, or, before 1.28, which has none, by the
namespaceSelector (nothing in kube-node-lease is judged then). Before 1.28 a
wildcard also sends Events, Nodes, CSINodes, CertificateSigningRequests and reviews,
which no rule can leave out; the server answers reviews allowed without
judging them. Endpoints and EndpointSlices are not left out: they are objects
a policy may judge, written by the endpoint controllers on every Pod change.

DELETE is sent for the protected kinds (their approval), and DELETE and
CONNECT for the resources the loaded ValidatingAdmissionPolicies name for
them (`AdmissionScope.policy_rules`, from `vap.PolicySet.rules_for`: their
matchConstraints rules, a superset of what their bindings select, narrowed
again on the server), since the API server runs those policies on them. Every DELETE and
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
NAME_LABEL_SINCE = (1, 21)  # the API server sets `kubernetes.io/metadata.name` on every Namespace
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
    "": ["pods", "pods/ephemeralcontainers", "pods/resize", "replicationcontrollers", "podtemplates"],
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
# In-place resize (Kubernetes 1.33+): its object is the whole Pod, its containers' resources changed;
# judged as the Pod, sent wherever Pods are.
RESIZE = "pods/resize"
# Image rules judge the artifact of a Flux OCIRepository (`manifests.images`), which no Pod pulls.
FLUX_OCI_SOURCES = ("source.toolkit.fluxcd.io", "ocirepositories")
# The cluster's housekeeping, left out of a `*` resource's CREATE and UPDATE (never where named):
# what every kubelet writes to start and stay Ready, and controllers write every few seconds, which
# failurePolicy Fail would stop whenever the webhook cannot answer: its Node, its CSINode (the CSI
# plugin manager creates it at start; without it the node stays NotReady and the kubelet exits),
# node and leader-election Leases (a kubelet whose Lease lapses is marked NotReady and its Pods
# evicted), Events, and the CSRs of bootstrapping and rotating certificates (a kubelet without its
# certificate cannot join). A kubelet creates nothing else cluster-wide at start: its mirror Pods
# are Pods (judged as workloads; the static Pod runs meanwhile), its node status a subresource.
LEFT_OUT_OF_WILDCARDS: tuple[tuple[str, str], ...] = (
    ("coordination.k8s.io", "leases"),
    ("", "events"),
    ("events.k8s.io", "events"),
    ("", "nodes"),
    ("storage.k8s.io", "csinodes"),
    ("certificates.k8s.io", "certificatesigningrequests"),
)
# What the kubelet and the control plane write through subresources for the cluster to run, left
# out of a subresource of any resource (`*/status`, `*/*`) unless a rule names it (`nodes/status`,
# `nodes/*`): every Node's status (a kubelet's Ready condition; a new Node is NotReady until it is
# written), every Pod's status (a kubelet's: the readiness Services' endpoints follow), every Pod's
# service account token (a kubelet's TokenRequest at each start and refresh), and the approval and
# certificate of the CSRs kubelets join and rotate with. (group, resource, subresource, operation)
HOUSEKEEPING_SUBRESOURCES: tuple[tuple[str, str, str, str], ...] = (
    ("", "nodes", "status", "UPDATE"),
    ("", "pods", "status", "UPDATE"),
    ("", "serviceaccounts", "token", "CREATE"),
    ("certificates.k8s.io", "certificatesigningrequests", "approval", "UPDATE"),
    ("certificates.k8s.io", "certificatesigningrequests", "status", "UPDATE"),
)
# Kinds a request has on a subresource only (`request.kind`; `kubectl scale` is an autoscaling/v1
# Scale of deployments/scale), which Gatekeeper's webhook matches constraints' kinds against: the
# subresources that carry them, as far as they are known (a Scale: the scale of any resource, custom
# ones included). (group, kind) -> (group, resource) pairs.
SUBRESOURCE_KINDS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("autoscaling", "Scale"): (("*", "*/scale"),),
    ("policy", "Eviction"): (("", "pods/eviction"),),
    ("", "Binding"): (("", "pods/binding"),),
}
_WRITES = ("CREATE", "UPDATE", "*")  # the operations the housekeeping matchCondition applies to
# One object served in two groups: matchPolicy Equivalent sends a request of either to a rule
# naming the other, so naming one names both.
_EQUIVALENT = {("", "events"): ("events.k8s.io", "events"), ("events.k8s.io", "events"): ("", "events")}
# Token and access reviews store nothing and a TokenReview carries a bearer token: never sent.
REVIEWS: tuple[tuple[str, str], ...] = tuple(
    sorted((group, builtin_kinds.resource_of(kind)) for group, kind in builtin_kinds.REVIEW_KINDS)
)
# The kinds of those reviews, and a TokenRequest (serviceaccounts/token), which a constraint may name.
_REVIEW_KINDS = frozenset({k for _, k in builtin_kinds.REVIEW_KINDS} | {"TokenRequest"})
NODE_LEASE_NAMESPACE = "kube-node-lease"
_NODE_LEASES = ("coordination.k8s.io", "leases")
_CLUSTER_RESOURCES = frozenset((g, builtin_kinds.resource_of(k)) for g, k in builtin_kinds.CLUSTER_SCOPED)
_BUILTIN_KINDS = frozenset(k for _, k in builtin_kinds.CLUSTER_SCOPED | builtin_kinds.NAMESPACED)
Kinds = tuple[tuple[str, ...], tuple[str, ...]]  # (apiGroups, kinds), as a Gatekeeper match gives them


class UnsafeSubresourcesError(ConfigError):
    """Admission policies' rules send the cluster's housekeeping subresources (every Node's status)
    to a fail-closed webhook of a Kubernetes version that has no matchConditions to leave them out."""


class UnderivedResourcesError(ConfigError):
    """The configuration judges kinds `webhook-config` cannot derive the resources of: the user's
    own Rego without `admission.resources`, or a custom kind of any group without its CRD."""


@dataclass(frozen=True, slots=True)
class AdmissionScope:
    """What the loaded configuration judges at admission, as far as it can be read.

    Attributes:
        workloads: the bundled policy sets, image rules or Gatekeeper constraints asking for pod
            templates are loaded (they judge workloads, custom ones too, and PodTemplates).
        images: image rules are loaded (they judge Flux OCIRepositories too).
        kinds: (apiGroups, kinds) of Gatekeeper constraints and ExpansionTemplates; no kinds (or
            `*`) is every kind of those groups, no groups (or `*`) any group.
        custom: (group, kind) -> plural of the custom kinds of the CRDs given (`kubernetes.crds`).
        custom_workloads: (group, resource) of the custom workload kinds (`Config.workload_table`),
            which the bundled sets, image rules and constraints asking for pod templates judge
            beside the built-in workloads.
        policy_rules: ValidatingAdmissionPolicy rules (`vap.PolicySet.rules_for`), one operation each.
        underived: what judges kinds that cannot be read from it (the user's Rego sources).
        resources: `admission.resources` ((group, resource) pairs); None: not set.
        origin: the configuration file, for the refusals; "": none (flags only).
    """

    workloads: bool = True
    images: bool = False
    kinds: tuple[Kinds, ...] = ()
    custom: Mapping[tuple[str, str], str] = field(default_factory=dict)
    custom_workloads: tuple[tuple[str, str], ...] = ()
    policy_rules: Sequence[Mapping[str, Any]] = ()
    underived: tuple[str, ...] = ()
    resources: tuple[tuple[str, str], ...] | None = None
    origin: str = ""


def read_scope(config: Config) -> AdmissionScope:
    """Read what `config` judges from the sources `serve` loads: policy sources, the Gatekeeper
    library (`gate.sources.load_gatekeeper`), admission policies and CRDs.

    Raises:
        ConfigError, PolicyError: a source is unreadable or broken (as `serve` would fail on it).
    """
    from trustgate.config import Config
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
    # Constraints asking for pod templates (the bundled Pod Security port) judge the custom
    # workloads' pods too, which their own kinds do not name (a PyTorchJob, a declared kind).
    pod_templates = library is not None and bool(library.constraints.pod_template_kinds)
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
    return AdmissionScope(
        # Image rules verify the images of workloads whichever policy sets are loaded.
        workloads=any(s.builtin for s in config.policies) or config.images.enabled or pod_templates,
        images=config.images.enabled,
        kinds=tuple(found),
        custom=custom,
        # A declared resource wins, then the plural of the CRD given, then the kind's plural.
        custom_workloads=tuple(
            (w.group, w.resource or custom.get((w.group, w.kind)) or w.plural)
            for w in config.workload_table().pod_kinds()
        ),
        policy_rules=rules,
        underived=tuple(s.label for s in config.policies if s.builtin is None),
        resources=config.admission.resources,
        origin="" if config.origin == Config.default().origin else config.origin,
    )


def _resources_of(
    groups: Sequence[str], kinds: Sequence[str], custom: Mapping[tuple[str, str], str]
) -> tuple[set[tuple[str, str]], list[str]]:
    """(group, resource) pairs a Gatekeeper (apiGroups, kinds) entry matches, and the custom kinds
    of any group whose plural no CRD given says (their resources are unknown)."""
    any_group = not groups or "*" in groups
    if not kinds or "*" in kinds:
        return ({("*", "*")} if any_group else {(g, "*") for g in groups}), []
    out: set[tuple[str, str]] = set()
    unknown: list[str] = []
    for kind in kinds:
        if any_group:
            # Every group serving the kind: the built-in ones under its resource, the given CRDs'
            # under their own plural, and the subresources carrying it. A custom kind without its
            # CRD has no plural to send.
            given = {(g, p) for (g, k), p in custom.items() if k == kind}
            carried = {p for (_, k), pairs in SUBRESOURCE_KINDS.items() if k == kind for p in pairs}
            if kind in _BUILTIN_KINDS:
                out.add(("*", builtin_kinds.resource_of(kind)))
            elif not given and not carried:
                unknown.append(kind)
            out.update(given | carried)
            continue
        for group in groups:
            if (group, kind) in SUBRESOURCE_KINDS:
                out.update(SUBRESOURCE_KINDS[(group, kind)])
                if builtin_kinds.builtin_namespaced(group, kind) is None:
                    continue  # a Scale is no resource of its own
            if builtin_kinds.builtin_namespaced(group, kind) is not None:
                out.add((group, builtin_kinds.resource_of(kind)))
            elif (group, kind) in custom:
                out.add((group, custom[(group, kind)]))
            else:  # a custom kind without its CRD: its plural is not guessed
                out.add((group, "*"))
    return out, unknown


def scope_notes(scope: AdmissionScope) -> list[str]:
    """What `webhook-config` should tell the user about what it does not send (one line each)."""
    notes: list[str] = []
    same_named = sorted(
        {
            kind
            for groups, kinds in scope.kinds
            if not groups or "*" in groups
            for kind in kinds
            if kind in _BUILTIN_KINDS
            and not any(k == kind and builtin_kinds.builtin_namespaced(g, k) is None for g, k in scope.custom)
        }
    )
    if same_named:
        notes.append(
            f'Gatekeeper constraints match {", ".join(same_named)} in any API group (apiGroups: ["*"]): '
            "the built-in resource is sent, but a custom kind of the same name in another group "
            "(a CRD with another plural) is not, unless its CRD is given (kubernetes.crds or --crd) "
            "or admission.resources names its group/plural"
        )
    subresources = left_out_subresources(scope.policy_rules)
    if subresources:
        notes.append(
            "ValidatingAdmissionPolicy rules name a subresource of every resource (*/status, */*) for "
            f"CREATE or UPDATE: the cluster's housekeeping ({_listed(subresources)}) is left out of it "
            "by a matchCondition (a kubelet writes its Node's and its Pods' status every few "
            "seconds), so those policies are not enforced there; name the subresource in a rule "
            "(e.g. nodes/status) to have it judged"
        )
    if scope.underived and scope.resources == ():
        notes.append(
            f"admission.resources is [] beside the configuration's own Rego policies "
            f"({', '.join(scope.underived)}): at admission they judge only the workloads and what the "
            "rest of the configuration sends; list what they judge to have it sent"
        )
    return notes


def unlabelled_namespaces_note(manifest: Mapping[str, Any], kubernetes_version: str) -> str | None:
    """Before 1.21 no Namespace carries `kubernetes.io/metadata.name`, so the namespaceSelector that
    leaves out kube-system and trustgate's own namespace leaves out nothing: trustgate's own Pods
    would wait for trustgate, and kube-system would fail closed with it. None from 1.21 on.

    Raises:
        ValueError: `kubernetes_version` is not a version.
    """
    if parse_version(kubernetes_version) >= NAME_LABEL_SINCE:
        return None
    names: dict[str, None] = {}
    for hook in manifest.get("webhooks", []):
        for expression in hook.get("namespaceSelector", {}).get("matchExpressions", []):
            if (
                expression.get("key") == "kubernetes.io/metadata.name"
                and expression.get("operator") == "NotIn"
            ):
                names.update(dict.fromkeys(expression.get("values", [])))
    commands = "; ".join(f"kubectl label namespace {n} kubernetes.io/metadata.name={n}" for n in names)
    return (
        f"Kubernetes {kubernetes_version} sets no kubernetes.io/metadata.name label on Namespaces (1.21 "
        f"and later do): the namespaceSelector that leaves out {', '.join(names)} selects them until "
        "they carry it, so trustgate's own Pods could not start and kube-system would fail closed with "
        f"it. Label them before applying this configuration: {commands}"
    )


def _listed(subresources: Iterable[tuple[str, str, str]]) -> str:
    return ", ".join(f"{g}/{r}/{sub}" if g else f"{r}/{sub}" for g, r, sub in subresources)


def _is_review(pair: tuple[str, str]) -> bool:
    group, resource = pair
    return group in builtin_kinds.REVIEW_GROUPS or (group == "*" and any(r == resource for _, r in REVIEWS))


def _names_housekeeping(pair: tuple[str, str]) -> bool:
    group, resource = pair
    return any(r == resource and group in (g, "*") for g, r in LEFT_OUT_OF_WILDCARDS)


def create_update_rules(scope: AdmissionScope) -> list[dict[str, Any]]:
    """The CREATE and UPDATE rules for what `scope` says the configuration judges.

    Raises:
        UnderivedResourcesError: something judges kinds whose resources cannot be derived (the
            user's Rego, a custom kind of any group without its CRD), and `admission.resources`
            does not say what to send for them.
    """
    where = scope.origin
    # Where admission.resources is set: `--policy` alone has no file to set it in.
    setting = f"in {scope.origin}" if scope.origin else "in a trustgate.yaml"
    both = "given with -c to both `trustgate serve` and `trustgate webhook-config`"
    if scope.underived and scope.resources is None:
        raise UnderivedResourcesError(
            f"the configuration's own Rego policies ({', '.join(scope.underived)}) may judge any kind, "
            "and which resources the admission webhook must be sent for them cannot be read from "
            "them: sending only the kinds derived from the rest of the configuration would let "
            "every other kind they deny in CI through at admission",
            where=where,
            hint="set admission.resources to what they judge (e.g. resources: [services, "
            'networking.k8s.io/ingresses, namespaces]), or to ["*"] for every resource, '
            f'{setting} {both} (README, "Admission webhook")',
        )
    pairs: set[tuple[str, str]] = set(scope.resources or ())
    order = (
        [(g, r) for g, rs in WORKLOAD_RESOURCES.items() for r in rs] + sorted(scope.custom_workloads)
        if scope.workloads
        else []
    )
    pairs.update(order)
    if scope.images:
        pairs.add(FLUX_OCI_SOURCES)
    reviewed = sorted(
        {
            f"{g}/{k}"
            for groups, kinds in scope.kinds
            for g in groups or ("*",)
            for k in kinds or ("*",)
            if g in builtin_kinds.REVIEW_GROUPS or (g == "*" and k in _REVIEW_KINDS)
        }
    )
    if reviewed:
        raise UnderivedResourcesError(
            f"Gatekeeper constraints (or expansions) match {', '.join(reviewed)}: token and access "
            "reviews and token requests are never sent to the webhook (a TokenReview carries a bearer "
            "token), so these constraints would not be enforced at admission",
            where=where,
            hint="enforce them in the cluster itself (with Gatekeeper, or as a ValidatingAdmissionPolicy), "
            f"or take {', '.join(sorted(builtin_kinds.REVIEW_GROUPS))} out of the constraints' apiGroups",
        )
    unknown: list[str] = []
    for groups, kinds in scope.kinds:
        found, guessed = _resources_of(groups, kinds, scope.custom)
        pairs |= found
        unknown += [k for k in guessed if k not in unknown]
    if unknown and ("*", "*") not in pairs:
        raise UnderivedResourcesError(
            f"Gatekeeper constraints (or expansions) match {', '.join(unknown)} in any API group (apiGroups: "
            '["*"] or none), and no CRD given defines it: the resource the API server serves it '
            "under (its plural) is not guessed, and sending every resource for it would make the "
            "whole cluster depend on the webhook",
            where=where,
            hint="give its CustomResourceDefinition (kubernetes.crds, or --crd), name its group in the "
            f'constraint\'s apiGroups, or set admission.resources to ["*"] {setting}; give the same -c '
            "and --crd to both `trustgate serve` and `trustgate webhook-config`",
        )
    pairs = {p for p in pairs if not _is_review(p)}
    if pairs & {("", "pods"), ("", "*"), ("*", "pods"), ("*", "*")}:
        pairs.update({("", EPHEMERAL), ("", RESIZE)})  # a wildcard names no subresource
    if ("*", "*") in pairs:
        # "*" is every resource but no subresource: those sent (kubectl debug's, a Scale's) stay.
        named = sorted(p for p in pairs if p[1] != "*" and _names_housekeeping(p))
        subresources: dict[str, list[str]] = {"*": ["*"], "": [EPHEMERAL, RESIZE]}
        for group, resource in sorted(pairs):
            if "/" in resource and resource not in (listed := subresources.setdefault(group, [])):
                listed.append(resource)  # a group with no subresource gets no rule: "*" sends it
        return [*(_rule(g, rs) for g, rs in subresources.items()), *(_rule(g, [r]) for g, r in named)]
    wild = {r for g, r in pairs if g == "*"}  # sent in every group by one rule
    by_group: dict[str, list[str]] = {}
    for group, resource in [*order, *sorted(pairs - set(order))]:
        listed = by_group.setdefault(group, [])
        if (group == "*" or resource not in wild) and resource not in listed:
            listed.append(resource)
    rules: list[dict[str, Any]] = []
    for group, resources in by_group.items():
        if "*" not in resources:
            rules += [_rule(group, resources)] if resources else []
            continue
        # "*" is every resource but no subresource: pods/ephemeralcontainers (and resize) stay beside it. The
        # housekeeping named in the group keeps a rule of its own ("*" admits no other resource
        # beside it), which keeps it from being left out.
        rules.append(_rule(group, ["*", *(r for r in resources if "/" in r)]))
        kept = [r for r in resources if r != "*" and _names_housekeeping((group, r))]
        rules += [_rule(group, kept)] if kept else []
    return rules


def _rule(group: str, resources: list[str]) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": ["*"],
        "operations": ["CREATE", "UPDATE"],
        "resources": resources,
        "scope": "*",
    }


def _covers(rule: Mapping[str, Any], group: str, resource: str, *, named: bool) -> bool:
    """Whether the rule sends `resource` of `group`: by naming it (in that group or in `*`), or
    (`named` False) by a `*` resource."""
    groups, resources = rule.get("apiGroups", ()), rule.get("resources", ())
    if group not in groups and "*" not in groups:
        return False
    return resource in resources if named else "*" in resources or "*/*" in resources


def _writes(rules: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rules that send CREATE or UPDATE."""
    return [r for r in rules if any(op in _WRITES for op in r.get("operations", ()))]


def left_out(rules: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """What the matchCondition leaves out of the CREATE and UPDATE of `rules`: the housekeeping
    (`LEFT_OUT_OF_WILDCARDS`) a `*` resource sends and no rule names (an Event named in either group
    names both), and the reviews (`REVIEWS`) any rule sends. DELETE and CONNECT rules (an admission
    policy's) neither name nor are left out: the condition never applies to them."""
    rules = _writes(rules)
    named = {p for p in LEFT_OUT_OF_WILDCARDS if any(_covers(r, *p, named=True) for r in rules)}
    named |= {_EQUIVALENT[p] for p in named if p in _EQUIVALENT}
    return [
        *(
            p
            for p in LEFT_OUT_OF_WILDCARDS
            if p not in named and any(_covers(r, *p, named=False) for r in rules)
        ),
        *(p for p in REVIEWS if any(_covers(r, *p, named=n) for r in rules for n in (True, False))),
    ]


def left_out_subresources(rules: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """The housekeeping subresources (`HOUSEKEEPING_SUBRESOURCES`: a Node's status, a Pod's status,
    a CSR's approval) the matchCondition leaves out, as (group, resource, subresource): those a
    subresource of any resource (`*/status`, `*/*`) sends for their operation and no rule names
    (`nodes/status`, `nodes/*`, in their group or in any)."""
    rules = list(rules)

    def sends(rule: Mapping[str, Any], group: str, resource: str, sub: str, operation: str) -> bool:
        groups, operations = rule.get("apiGroups", ()), rule.get("operations", ())
        if (group not in groups and "*" not in groups) or (
            operation not in operations and "*" not in operations
        ):
            return False
        return any(
            r.partition("/")[0] in (resource, "*") and r.partition("/")[2] in (sub, "*")
            for r in rule.get("resources", ())
        )

    def names(rule: Mapping[str, Any], group: str, resource: str, sub: str, operation: str) -> bool:
        return sends(rule, group, resource, sub, operation) and any(
            r in (f"{resource}/{sub}", f"{resource}/*") for r in rule.get("resources", ())
        )

    return [
        (g, r, sub)
        for g, r, sub, op in HOUSEKEEPING_SUBRESOURCES
        if any(sends(rule, g, r, sub, op) for rule in rules)
        and not any(names(rule, g, r, sub, op) for rule in rules)
    ]


def fail_open_rules(rules: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rules of the fail-open webhook: `rules` for namespaced objects only, and for the
    Namespaces they send.

    A namespaceSelector never skips a cluster-scoped object other than a Namespace, so with the
    same rules both webhooks judged and recorded every ClusterRole twice; cluster-scoped objects
    belong to no fail-open namespace and go to the main webhook alone. A Namespace is matched by its
    own labels: one labelled fail-open is skipped by the main webhook and must reach this one.
    """
    out: list[dict[str, Any]] = []
    for rule in rules:
        groups, resources = rule["apiGroups"], rule["resources"]
        if "*" in groups or not all(
            (g, r.partition("/")[0]) in _CLUSTER_RESOURCES for g in groups for r in resources
        ):
            out.append({**rule, "scope": "Namespaced"})
        if "" not in groups and "*" not in groups:
            continue
        namespaces: list[str] = []
        for resource in resources:
            main, slash, sub = resource.partition("/")
            if main not in ("*", "namespaces"):
                continue
            for kept in ["namespaces", "namespaces/*"] if resource == "*/*" else [f"namespaces{slash}{sub}"]:
                if kept not in namespaces:
                    namespaces.append(kept)
        if namespaces:
            out.append({**rule, "apiGroups": [""], "resources": namespaces, "scope": "Cluster"})
    return out


def webhook_configuration(
    settings: AdmissionSettings,
    *,
    service: str = "trustgate",
    ca_bundle: bytes | None = None,
    url: str | None = None,
    port: int = 443,
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    scope: AdmissionScope | None = None,
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
        scope: what the configuration judges (`read_scope`), admission policies' rules included;
            None: the bundled policies and `settings.resources`.

    Raises:
        ValueError: `kubernetes_version` is not a version.
        UnderivedResourcesError: `scope` has kinds whose resources cannot be derived (see
            `create_update_rules`).
        UnsafeSubresourcesError: before 1.28, a fail-closed webhook would be sent what kubelets
            write through subresources (`left_out_subresources`: a policy rule `*/status`).
    """
    with_conditions = parse_version(kubernetes_version) >= MATCH_CONDITIONS_SINCE
    excluded = [n for n in settings.excluded if not any(c in n for c in "*?[")]
    scope = scope if scope is not None else AdmissionScope(resources=settings.resources)
    rules = create_update_rules(scope)
    by_group: dict[str, list[str]] = {}
    for kind in settings.protected_kinds:
        if kind in PROTECTED_RESOURCES:
            group, resource = PROTECTED_RESOURCES[kind]
            by_group.setdefault(group, []).append(resource)
    rules += [
        {"apiGroups": [g], "apiVersions": ["*"], "operations": ["DELETE"], "resources": r, "scope": "*"}
        for g, r in by_group.items()
    ]
    # An admission policy's rules are sent as they say, subresources included (`deployments/scale`,
    # `pods/*`, `*/status`): the server judges a subresource's write with the policies naming it.
    # The API server validates a policy's rules as a webhook's, so each is a valid webhook rule.
    for rule in scope.policy_rules:
        entry = dict(rule)
        if entry not in rules:
            rules.append(entry)
    housekeeping = left_out(rules)
    housekeeping_subresources = left_out_subresources(rules)
    closed = "Ignore" if settings.failure_policy == "open" else "Fail"
    if housekeeping_subresources and not with_conditions and closed == "Fail":
        # Nothing but a matchCondition leaves them out of `*/status`: every kubelet's Node and Pod
        # statuses would stop whenever the webhook cannot answer.
        raise UnsafeSubresourcesError(
            "ValidatingAdmissionPolicy rules name a subresource of every resource (*/status, */*) for "
            "CREATE or UPDATE, which sends the cluster's housekeeping "
            f"({_listed(housekeeping_subresources)}) to the webhook: before Kubernetes 1.28 there are "
            "no matchConditions to leave it out, and with failurePolicy Fail every kubelet's Node and "
            f"Pod status writes would fail whenever the webhook cannot answer (target: {kubernetes_version})",
            where=scope.origin,
            hint="name the subresources the policies judge in their rules (e.g. apps deployments/status "
            "instead of */status), or, if every API server is 1.28 or later, give --kubernetes-version "
            "1.28 (kubernetes.version); admission.failurePolicy: open also lifts this",
        )
    # Node heartbeats: left out wherever Leases are sent, named or not (a kubelet whose Lease lapses
    # is marked NotReady); the narrowest way a version has.
    heartbeats = _NODE_LEASES not in housekeeping and any(
        _covers(r, *_NODE_LEASES, named=n) for r in _writes(rules) for n in (True, False)
    )
    names = ", ".join(f"'{n}'" for n in excluded)
    # The API server hands matchConditions the request as unstructured JSON, which leaves out the
    # empty `omitempty` fields (`namespace` of a cluster-scoped object, `name` under generateName,
    # `subResource` of a plain write): reading a missing key is an error, and an error applies
    # the failure policy (Fail: the request is refused). Every such field is read after `has()`.
    conditions = [
        {
            "name": "exclude-system-namespaces",
            "expression": f"!(has(request.namespace) && request.namespace in [{names}])",
        },
        {
            "name": "exclude-system-namespace-objects",
            "expression": "request.kind.kind != 'Namespace' || request.kind.group != '' || "
            f"!(has(request.name) && request.name in [{names}])",
        },
    ]
    # Only a write of the main resource: the DELETE and CONNECT an admission policy names (a Node's
    # deletion, nodes/proxy) and subresources are sent as its rules say.
    writes = (
        "request.operation in ['CREATE', 'UPDATE'] && "
        "(!has(request.subResource) || request.subResource == '')"
    )
    if housekeeping:
        listed = ", ".join(f"'{g}/{r}'" for g, r in housekeeping)
        conditions.append(
            {
                "name": "leave-out-cluster-housekeeping",
                "expression": f"!({writes} && "
                f"request.resource.group + '/' + request.resource.resource in [{listed}])",
            }
        )
    if housekeeping_subresources:
        listed = ", ".join(f"'{g}/{r}/{sub}'" for g, r, sub in housekeeping_subresources)
        conditions.append(
            {
                "name": "leave-out-cluster-housekeeping-subresources",
                "expression": "!(request.operation in ['CREATE', 'UPDATE'] && has(request.subResource) && "
                "request.resource.group + '/' + request.resource.resource + '/' + request.subResource "
                f"in [{listed}])",
            }
        )
    if heartbeats:
        conditions.append(
            {
                "name": "leave-out-node-heartbeats",
                "expression": f"!({writes} && has(request.namespace) && "
                f"request.namespace == '{NODE_LEASE_NAMESPACE}' && "
                "request.resource.group == 'coordination.k8s.io' && request.resource.resource == 'leases')",
            }
        )
    selected = list(excluded)
    if not with_conditions and (heartbeats or _NODE_LEASES in housekeeping):
        selected.append(NODE_LEASE_NAMESPACE)  # no matchConditions: the node Leases' namespace instead
    base_selector: list[dict[str, Any]] = [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": selected}
    ]

    def webhook(
        name: str, path: str, policy: str, selector: list[dict[str, Any]], hook_rules: list[dict[str, Any]]
    ) -> dict[str, Any]:
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
            "rules": hook_rules,
            "namespaceSelector": {"matchExpressions": selector},
            "objectSelector": {},
        }
        if with_conditions:
            hook["matchConditions"] = conditions
        return hook

    webhooks = []
    if settings.fail_open_label:
        key, _, value = settings.fail_open_label.partition("=")
        webhooks.append(
            webhook(
                "validate.trustgate.dev",
                "/validate",
                closed,
                [*base_selector, {"key": key, "operator": "NotIn", "values": [value]}],
                [dict(r) for r in rules],
            )
        )
        webhooks.append(
            webhook(
                "validate-fail-open.trustgate.dev",
                "/validate/fail-open",
                "Ignore",
                [*base_selector, {"key": key, "operator": "In", "values": [value]}],
                fail_open_rules(rules),
            )
        )
    else:
        webhooks.append(
            webhook("validate.trustgate.dev", "/validate", closed, base_selector, [dict(r) for r in rules])
        )
    if parse_version(kubernetes_version) < NAME_LABEL_SINCE:
        # Before 1.21 the name label is whatever a Namespace's creator wrote: a Namespace labelled
        # `kubernetes.io/metadata.name: kube-system` was skipped by both webhooks above and nothing
        # in it was ever judged. The Namespaces the selector leaves out go to this one: the server
        # leaves out the real ones by `request.namespace` (and node heartbeats) and judges the rest;
        # `Ignore`, so the real ones never wait for a webhook that cannot answer.
        webhooks.append(
            webhook(
                "validate-unlabelled.trustgate.dev",
                "/validate",
                "Ignore",
                [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": selected}],
                fail_open_rules(rules),
            )
        )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/name": "trustgate"}},
        "webhooks": webhooks,
    }
