"""Built-in Kubernetes API versions that are deprecated or no longer served.

Owns: the table of removed and deprecated built-in apiVersion/kind pairs,
with the release that deprecated and the release that removed each and its
replacement, and the question "what does Kubernetes X.Y say about this
apiVersion/kind?". Leaves out: CRDs (a CRD that defines the same
group/version/kind is not a built-in API; the caller checks that first) and
what a removal means for the verdict.

Sources:
- Kubernetes "Deprecated API Migration Guide",
  https://kubernetes.io/docs/reference/using-api/deprecation-guide/
  (removals in v1.16, v1.22, v1.25, v1.26, v1.27, v1.29 and v1.32, with their
  replacements), and its v1.16 announcement
  (https://kubernetes.io/blog/2019/07/18/api-deprecations-in-1-16/) for
  extensions/v1beta1 PodSecurityPolicy.
- The release that deprecated each API still served by v1.25 or later is the
  one the API server names in its deprecation warning ("... is deprecated in
  v1.23+, unavailable in v1.26+").
- Cross-checked against the schemas shipped in `kubernetes-validate` (1.25 to
  1.37): each pair removed in 1.26 or later is present in the schemas of the
  release before its removal and absent from that release on; every pair
  removed before 1.25 is absent from all of them. Beta APIs removed after
  v1.32 that the guide does not list yet are taken from those schemas and
  marked below.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ApiLifecycle:
    """What happened to one built-in apiVersion/kind."""

    api_version: str
    kind: str
    removed: tuple[int, int]  # the first release that no longer serves it
    replacement: str | None  # "networking.k8s.io/v1 Ingress"; None when the API has no successor
    deprecated: tuple[int, int] | None = None  # the release that started warning, when known
    advice: str = ""  # what to do instead, when there is no replacement

    def describe(self) -> str:
        return f"{self.api_version} {self.kind}"

    @property
    def removed_in(self) -> str:
        return f"{self.removed[0]}.{self.removed[1]}"

    @property
    def deprecated_in(self) -> str | None:
        return f"{self.deprecated[0]}.{self.deprecated[1]}" if self.deprecated else None

    @property
    def instead(self) -> str:
        """ "use networking.k8s.io/v1 Ingress", or the advice for an API without successor."""
        return f"use {self.replacement}" if self.replacement else self.advice


_NO_PSP = (
    "PodSecurityPolicy has no successor API: use Pod Security Admission (namespace labels "
    "pod-security.kubernetes.io/*) or an admission policy"
)


def _v(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def _entries() -> list[ApiLifecycle]:
    out: list[ApiLifecycle] = []

    def add(
        api_version: str,
        kinds: str,
        removed: str,
        replacement: str | None,
        deprecated: str | None = None,
        advice: str = "",
    ) -> None:
        for kind in kinds.split():
            out.append(
                ApiLifecycle(
                    api_version,
                    kind,
                    _v(removed),
                    f"{replacement} {kind}" if replacement else None,
                    _v(deprecated) if deprecated else None,
                    advice,
                )
            )

    # v1.16
    add("extensions/v1beta1", "NetworkPolicy", "1.16", "networking.k8s.io/v1")
    add("extensions/v1beta1", "DaemonSet Deployment ReplicaSet", "1.16", "apps/v1")
    add("apps/v1beta1", "Deployment StatefulSet ReplicaSet", "1.16", "apps/v1")
    add("apps/v1beta2", "DaemonSet Deployment StatefulSet ReplicaSet", "1.16", "apps/v1")
    add("extensions/v1beta1", "PodSecurityPolicy", "1.16", None, advice=_NO_PSP)
    # v1.22
    add(
        "admissionregistration.k8s.io/v1beta1",
        "MutatingWebhookConfiguration ValidatingWebhookConfiguration",
        "1.22",
        "admissionregistration.k8s.io/v1",
    )
    add("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", "1.22", "apiextensions.k8s.io/v1")
    add("apiregistration.k8s.io/v1beta1", "APIService", "1.22", "apiregistration.k8s.io/v1")
    add("authentication.k8s.io/v1beta1", "TokenReview", "1.22", "authentication.k8s.io/v1")
    add(
        "authorization.k8s.io/v1beta1",
        "LocalSubjectAccessReview SelfSubjectAccessReview SubjectAccessReview",
        "1.22",
        "authorization.k8s.io/v1",
    )
    add("certificates.k8s.io/v1beta1", "CertificateSigningRequest", "1.22", "certificates.k8s.io/v1")
    add("coordination.k8s.io/v1beta1", "Lease", "1.22", "coordination.k8s.io/v1")
    add("extensions/v1beta1", "Ingress", "1.22", "networking.k8s.io/v1")
    add("networking.k8s.io/v1beta1", "Ingress IngressClass", "1.22", "networking.k8s.io/v1")
    add(
        "rbac.authorization.k8s.io/v1beta1",
        "ClusterRole ClusterRoleBinding Role RoleBinding",
        "1.22",
        "rbac.authorization.k8s.io/v1",
    )
    add("scheduling.k8s.io/v1beta1", "PriorityClass", "1.22", "scheduling.k8s.io/v1")
    add(
        "storage.k8s.io/v1beta1",
        "CSIDriver CSINode StorageClass VolumeAttachment",
        "1.22",
        "storage.k8s.io/v1",
    )
    # v1.25
    add("batch/v1beta1", "CronJob", "1.25", "batch/v1", "1.21")
    add("discovery.k8s.io/v1beta1", "EndpointSlice", "1.25", "discovery.k8s.io/v1", "1.21")
    add("events.k8s.io/v1beta1", "Event", "1.25", "events.k8s.io/v1", "1.22")
    add("autoscaling/v2beta1", "HorizontalPodAutoscaler", "1.25", "autoscaling/v2", "1.22")
    add("policy/v1beta1", "PodDisruptionBudget", "1.25", "policy/v1", "1.21")
    add("policy/v1beta1", "PodSecurityPolicy", "1.25", None, "1.21", advice=_NO_PSP)
    add("node.k8s.io/v1beta1", "RuntimeClass", "1.25", "node.k8s.io/v1", "1.22")
    # v1.26
    add(
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "FlowSchema PriorityLevelConfiguration",
        "1.26",
        "flowcontrol.apiserver.k8s.io/v1",
        "1.23",
    )
    add("autoscaling/v2beta2", "HorizontalPodAutoscaler", "1.26", "autoscaling/v2", "1.23")
    # v1.27
    add("storage.k8s.io/v1beta1", "CSIStorageCapacity", "1.27", "storage.k8s.io/v1", "1.24")
    # v1.29
    add(
        "flowcontrol.apiserver.k8s.io/v1beta2",
        "FlowSchema PriorityLevelConfiguration",
        "1.29",
        "flowcontrol.apiserver.k8s.io/v1",
        "1.26",
    )
    # v1.32
    add(
        "flowcontrol.apiserver.k8s.io/v1beta3",
        "FlowSchema PriorityLevelConfiguration",
        "1.32",
        "flowcontrol.apiserver.k8s.io/v1",
        "1.29",
    )
    # Beta APIs gone from the bundled schemas of the release named, not (yet) in the guide;
    # no deprecation release is recorded for them.
    add(
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding",
        "1.34",
        "admissionregistration.k8s.io/v1",
    )
    add("networking.k8s.io/v1beta1", "IPAddress ServiceCIDR", "1.37", "networking.k8s.io/v1")
    add("storage.k8s.io/v1beta1", "VolumeAttributesClass", "1.37", "storage.k8s.io/v1")
    return out


_TABLE: dict[tuple[str, str], ApiLifecycle] = {(e.api_version, e.kind): e for e in _entries()}


def lifecycle(api_version: str, kind: str) -> ApiLifecycle | None:
    """The deprecation record of a built-in apiVersion/kind, or None when it has none."""
    return _TABLE.get((api_version, kind))


def all_entries() -> list[ApiLifecycle]:
    """Every record, for tests and documentation."""
    return list(_TABLE.values())


def parse_version(version: str) -> tuple[int, int]:
    """`"1.33"`, `"v1.33"` or `"1.33.2"` as (1, 33).

    Raises:
        ValueError: the text is not MAJOR.MINOR[.PATCH].
    """
    parts = version.strip().lstrip("v").split(".")
    if len(parts) < 2:
        raise ValueError(f"Kubernetes version {version!r} is not MAJOR.MINOR")
    return int(parts[0]), int(parts[1])
