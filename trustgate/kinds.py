"""The scope of Kubernetes kinds, and the namespace an object is created in.

Owns: which built-in kinds the API server serves namespaced and which
cluster-scoped, what a CustomResourceDefinition says of its kind, and from
that the namespace an object lands in: none for a cluster-scoped kind, whatever
its `metadata.namespace` says (the API server clears it before admission, as
create.go's EnsureObjectNamespaceMatchesRequestNamespace does). The
ValidatingAdmissionPolicy engine and the gate read scopes here, so both judge
an object in the same place. Leaves out: what a policy makes of a namespace,
and where a namespace-less object of a namespaced kind lands (a reconciler or
`kubectl -n` decides; the gate assumes the worst).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The scope of each built-in kind (group, kind), as the API server serves it,
# through Kubernetes 1.34 (alpha and removed APIs included: an older or newer cluster may
# serve them). A kind in neither this table nor a CRD given with --crd has an unknown scope.
# Eviction is served only as the pods/eviction subresource, which a check never requests.
CLUSTER_SCOPED = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("authentication.k8s.io", "TokenReview"),
        ("authentication.k8s.io", "SelfSubjectReview"),
        ("authorization.k8s.io", "SubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectRulesReview"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("internal.apiserver.k8s.io", "StorageVersion"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("networking.k8s.io", "ClusterCIDR"),
        ("node.k8s.io", "RuntimeClass"),
        ("auditregistration.k8s.io", "AuditSink"),
        ("policy", "PodSecurityPolicy"),
        ("extensions", "PodSecurityPolicy"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("resource.k8s.io", "DeviceClass"),
        ("resource.k8s.io", "ResourceSlice"),
        ("resource.k8s.io", "DeviceTaintRule"),
        ("resource.k8s.io", "ResourceClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("storagemigration.k8s.io", "StorageVersionMigration"),
    }
)
NAMESPACED = frozenset(
    {
        *(
            ("", k)
            for k in (
                "Pod", "Service", "ConfigMap", "Secret", "ServiceAccount", "Endpoints", "Event",
                "LimitRange", "ResourceQuota", "PersistentVolumeClaim", "ReplicationController",
                "PodTemplate", "Binding",
            )
        ),
        *(
            ("apps", k)
            for k in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision")
        ),
        *(("extensions", k) for k in ("Deployment", "DaemonSet", "ReplicaSet")),  # removed in 1.16
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("policy", "PodDisruptionBudget"),
        ("policy", "Eviction"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("extensions", "Ingress"),
        ("extensions", "NetworkPolicy"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("coordination.k8s.io", "Lease"),
        ("coordination.k8s.io", "LeaseCandidate"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("events.k8s.io", "Event"),
        ("storage.k8s.io", "CSIStorageCapacity"),
        ("resource.k8s.io", "ResourceClaim"),
        ("resource.k8s.io", "ResourceClaimTemplate"),
        ("resource.k8s.io", "PodSchedulingContext"),
        ("resource.k8s.io", "ResourceClaimParameters"),
        ("resource.k8s.io", "ResourceClassParameters"),
        ("authorization.k8s.io", "LocalSubjectAccessReview"),
        ("certificates.k8s.io", "PodCertificateRequest"),
        ("settings.k8s.io", "PodPreset"),
    }
)  # fmt: skip


# The groups of token and access reviews (TokenReview, SubjectAccessReview and the like): requests
# the API server answers and stores nothing of; a TokenReview carries a bearer token. Admission
# has nothing to judge in them, so they are never sent to the webhook, nor judged if they arrive.
REVIEW_GROUPS = ("authentication.k8s.io", "authorization.k8s.io")
# (group, kind) of the token and access reviews those groups serve.
REVIEW_KINDS = frozenset((g, k) for g, k in CLUSTER_SCOPED | NAMESPACED if g in REVIEW_GROUPS)

# Built-in kinds whose resource name is not the rule of thumb in `resource_of` (their types'
# `+resourceName` or the registry's storage path).
_IRREGULAR = {
    "Endpoints": "endpoints",
    "ResourceClaimParameters": "resourceclaimparameters",
    "ResourceClassParameters": "resourceclassparameters",
}


def resource_of(kind: str) -> str:
    """The plural resource name the API server serves a kind under (`Ingress` -> `ingresses`)."""
    if kind in _IRREGULAR:
        return _IRREGULAR[kind]
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    return lower + "s"


def builtin_resources() -> dict[str, frozenset[str]]:
    """The resources (plurals) each built-in API group serves, from the scope tables: what an
    entry naming a built-in group may name."""
    out: dict[str, set[str]] = {}
    for group, kind in CLUSTER_SCOPED | NAMESPACED:
        out.setdefault(group, set()).add(resource_of(kind))
    return {group: frozenset(resources) for group, resources in out.items()}


def crd_scope(crd: Mapping[str, Any]) -> tuple[tuple[str, str], bool | None] | None:
    """The (group, kind) a CustomResourceDefinition defines and whether it is namespaced (None:
    its spec.scope is neither Namespaced nor Cluster); None when it names no group and kind."""
    spec = crd.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    names = spec.get("names")
    names = names if isinstance(names, Mapping) else {}
    group, kind, scope = spec.get("group"), names.get("kind"), spec.get("scope")
    if not isinstance(group, str) or not isinstance(kind, str) or not kind:
        return None
    return (group, kind), None if scope not in ("Cluster", "Namespaced") else scope == "Namespaced"


def crd_group_error(crd: Mapping[str, Any]) -> str:
    """Why the API server refuses the CustomResourceDefinition's spec.group ("" when it does not):
    a CRD's group is a domain with at least one dot (ValidateCustomResourceDefinitionSpec), so no
    CRD can serve the core group or another dotless built-in one (apps, batch, extensions)."""
    spec = crd.get("spec")
    group = spec.get("group") if isinstance(spec, Mapping) else None
    if not isinstance(group, str) or "." in group:
        return ""
    if not group:
        return "spec.group is empty: the API server refuses a CustomResourceDefinition without a group"
    return (
        f"spec.group {group!r} has no dot: the API server refuses a CustomResourceDefinition whose "
        "group is not a domain with at least one dot"
    )


def builtin_namespaced(group: str, kind: str) -> bool | None:
    """Whether a built-in kind is namespaced; None for a kind not in the table (a custom one)."""
    if (group, kind) in CLUSTER_SCOPED:
        return False
    return True if (group, kind) in NAMESPACED else None


@dataclass(frozen=True, slots=True)
class Scopes:
    """The scope of every kind a run knows: the built-in table and the CRDs given to it (`--crd`)."""

    custom: Mapping[tuple[str, str], bool | None] = field(default_factory=dict)

    @classmethod
    def from_crds(cls, crds: Iterable[Mapping[str, Any]]) -> Scopes:
        return cls(dict(found for crd in crds if (found := crd_scope(crd)) is not None))

    def namespaced(self, obj: Mapping[str, Any]) -> bool | None:
        """Whether the API server serves the object's kind namespaced (None: unknown to this run).

        The table wins over a CRD given to the run: the API server serves a built-in kind from
        its own handler whatever a CRD of the same group and kind says (and refuses a CRD for a
        dotless group, `extensions` or the core group, see `crd_group_error`).
        """
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return None
        group = api_version.rpartition("/")[0]
        builtin = builtin_namespaced(group, kind)
        return builtin if builtin is not None else self.custom.get((group, kind))

    def namespace_of(self, obj: Mapping[str, Any]) -> str:
        """The namespace the object is created in as far as its manifest says: its
        `metadata.namespace`, except for a cluster-scoped kind, which has none ("")."""
        metadata = obj.get("metadata")
        namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
        if not isinstance(namespace, str) or self.namespaced(obj) is False:
            return ""
        return namespace
