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

from collections.abc import Iterable, Mapping, Sequence
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

# Kinds a request has on a subresource only, never an object stored under a resource of its own:
# `kubectl scale`'s autoscaling/v1 Scale (deployments/scale and any resource's scale), a
# policy/v1 Eviction (pods/eviction), a core Binding (pods/binding). No manifest is such a request.
SUBRESOURCE_ONLY_KINDS = frozenset({("autoscaling", "Scale"), ("policy", "Eviction"), ("", "Binding")})

# Subresources whose admission object is the whole Pod, judged as a Pod: `kubectl debug`'s
# pods/ephemeralcontainers (1.22+) and an in-place resize, pods/resize (1.33+).
POD_SUBRESOURCES = frozenset({"ephemeralcontainers", "resize"})


def writes_subresource(operation: object, sub_resource: object) -> bool:
    """An admission CREATE or UPDATE of a subresource whose object is the subresource's own
    (`kubectl scale`: deployments/scale, an autoscaling/v1 Scale), not the resource: every
    subresource but `POD_SUBRESOURCES`. What `serve` plans and what the gate judges read it
    here, from a review's fields or a document's request."""
    return (
        operation in ("CREATE", "UPDATE")
        and isinstance(sub_resource, str)
        and sub_resource != ""
        and sub_resource not in POD_SUBRESOURCES
    )


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


# ---------------------------------------------------------------------------------------------------
# Workloads: the kinds whose objects carry a pod template, which the bundled policy sets judge.

# The built-in workload kinds and the groups serving each (policies/lib/k8s.rego `workload_kinds`
# says the same; tests/unit/gate/test_kind_gate.py compares them).
BUILTIN_WORKLOADS: Mapping[str, frozenset[str]] = {
    "Pod": frozenset({""}),
    "ReplicationController": frozenset({""}),
    "PodTemplate": frozenset({""}),
    "Deployment": frozenset({"apps", "extensions"}),
    "ReplicaSet": frozenset({"apps", "extensions"}),
    "DaemonSet": frozenset({"apps", "extensions"}),
    "StatefulSet": frozenset({"apps"}),
    "Job": frozenset({"batch"}),
    "CronJob": frozenset({"batch"}),
}


@dataclass(frozen=True, slots=True)
class WorkloadKind:
    """A custom kind declared to carry a pod template (`workloads` in trustgate.yaml), or declared
    to carry none (`pod_spec` None: `notWorkload: true`).

    Attributes:
        group: the API group (a CRD's group has a dot).
        kind: the kind.
        pod_spec: the field path of the pod spec from the object's root, e.g.
            ("spec", "template", "spec"); None when declared not a workload.
        pod_metadata: the field path of the pod (template) metadata (labels, AppArmor annotations).
        batch: its pods run to completion (probe rules skip it, as they skip Jobs).
        resource: the plural the API server serves it under, for `webhook-config`.
        where: `file:line` of the declaration; "" for a built-in default.
    """

    group: str
    kind: str
    pod_spec: tuple[str, ...] | None
    pod_metadata: tuple[str, ...] = ()
    batch: bool = False
    resource: str = ""
    where: str = field(default="", compare=False, repr=False)

    @property
    def plural(self) -> str:
        return self.resource or resource_of(self.kind)

    @property
    def anywhere(self) -> bool:
        """Its pod templates sit inside lists or maps (`podSpec: "*"`): no one path to give the
        Rego library, so the gate finds and judges each (`pod_sites`)."""
        return self.pod_spec == ()

    def rego_entry(self) -> dict[str, Any]:
        """The entry `trustgate.lib.k8s.workload` takes for this kind (`data.trustgate.config.workloads`)."""
        return {
            "spec": list(self.pod_spec or ()),
            "metadata": list(self.pod_metadata),
            "groups": [self.group],
            "batch": self.batch,
        }


def _template(group: str, kind: str, at: str = "spec.template", *, batch: bool = False) -> WorkloadKind:
    path = tuple(at.split("."))
    return WorkloadKind(group, kind, (*path, "spec"), (*path, "metadata"), batch=batch)


def _anywhere(group: str, kind: str, *, batch: bool = False) -> WorkloadKind:
    return WorkloadKind(group, kind, (), (), batch=batch)


# Custom resources whose controllers create Pods from a pod template, judged by default; a
# `workloads` entry of the same group and kind replaces the default. The paths follow each
# project's API types: Argo Rollouts' RolloutSpec.Template (a Rollout with spec.workloadRef has no
# template: the Deployment it names is judged itself), OpenKruise's CloneSet, Advanced StatefulSet
# (v1beta1 StatefulSet), Advanced DaemonSet and BroadcastJob (`template`), KEDA's
# ScaledJob.JobTargetRef (a batch JobSpec), Knative Serving's Service and Configuration
# (RevisionTemplateSpec: a pod spec subset) and Revision (RevisionSpec inlines the pod spec),
# Knative Eventing's ContainerSource, and OpenShift's DeploymentConfig.
KNOWN_WORKLOADS: tuple[WorkloadKind, ...] = (
    _template("argoproj.io", "Rollout"),
    _template("apps.kruise.io", "CloneSet"),
    _template("apps.kruise.io", "StatefulSet"),
    _template("apps.kruise.io", "DaemonSet"),
    _template("apps.kruise.io", "BroadcastJob", batch=True),
    _template("keda.sh", "ScaledJob", "spec.jobTargetRef.template", batch=True),
    _template("serving.knative.dev", "Service"),
    _template("serving.knative.dev", "Configuration"),
    WorkloadKind("serving.knative.dev", "Revision", ("spec",), ("metadata",)),
    _template("sources.knative.dev", "ContainerSource"),
    _template("apps.openshift.io", "DeploymentConfig"),
    # Pod templates inside lists or maps: no one path for the Rego library (`podSpec: "*"`); the
    # gate finds and judges each (`pod_sites`). Kubeflow's training jobs
    # (`spec.<framework>ReplicaSpecs.<role>.template`), Ray (`spec.headGroupSpec.template`,
    # `spec.workerGroupSpecs[].template`, RayJob's `spec.rayClusterSpec` and submitter), Volcano's
    # Job (`spec.tasks[].template`), Argo Workflows (`spec.templates[].container`, `script`,
    # `containerSet`; CronWorkflow under `spec.workflowSpec`), Tekton (steps, sidecars,
    # stepTemplate; Pipelines and runs embed Tasks), JobSet (`spec.replicatedJobs[].template`),
    # LeaderWorkerSet (`spec.leaderWorkerTemplate.{leader,worker}Template`), OpenKruise's
    # UnitedDeployment (`spec.template.<kind>Template.spec.template`), AdvancedCronJob
    # (`spec.template.{job,broadcastJob}Template`) and SidecarSet (`spec.containers`, injected).
    *(
        _anywhere("kubeflow.org", kind, batch=True)
        for kind in ("PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "PaddleJob", "JAXJob")
    ),
    _anywhere("ray.io", "RayCluster"),
    _anywhere("ray.io", "RayJob", batch=True),
    _anywhere("ray.io", "RayService"),
    _anywhere("batch.volcano.sh", "Job", batch=True),
    *(
        _anywhere("argoproj.io", kind, batch=True)
        for kind in ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")
    ),
    *(
        _anywhere("tekton.dev", kind, batch=True)
        for kind in ("Task", "ClusterTask", "Pipeline", "TaskRun", "PipelineRun")
    ),
    _anywhere("jobset.x-k8s.io", "JobSet", batch=True),
    _anywhere("leaderworkerset.x-k8s.io", "LeaderWorkerSet"),
    _anywhere("apps.kruise.io", "UnitedDeployment"),
    _anywhere("apps.kruise.io", "AdvancedCronJob", batch=True),
    _anywhere("apps.kruise.io", "SidecarSet"),
)


@dataclass(frozen=True, slots=True)
class Workloads:
    """The custom workload kinds of a configuration: the known defaults, then the declared ones."""

    declared: Mapping[tuple[str, str], WorkloadKind] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[WorkloadKind]) -> Workloads:
        table = {(w.group, w.kind): w for w in KNOWN_WORKLOADS}
        table.update({(w.group, w.kind): w for w in entries})  # a declaration replaces a default
        return cls(table)

    def pod_kinds(self) -> list[WorkloadKind]:
        """The kinds that carry a pod template (not those declared not to)."""
        return [w for w in self.declared.values() if w.pod_spec is not None]

    def _pathed(self) -> list[WorkloadKind]:
        """The kinds whose one pod spec path the Rego library reads (not `podSpec: "*"`)."""
        return [w for w in self.pod_kinds() if not w.anywhere]

    def gating(self) -> dict[str, frozenset[str]]:
        """kind -> the groups in which it is a custom workload the Rego library knows."""
        out: dict[str, set[str]] = {}
        for w in self._pathed():
            out.setdefault(w.kind, set()).add(w.group)
        return {kind: frozenset(groups) for kind, groups in out.items()}

    def rego_data(self) -> dict[str, Any]:
        """`data.trustgate.config.workloads`: kind -> group -> the entry `workload` takes."""
        out: dict[str, dict[str, Any]] = {}
        for w in self._pathed():
            out.setdefault(w.kind, {})[w.group] = w.rego_entry()
        return out

    def get(self, group: str, kind: str) -> WorkloadKind | None:
        return self.declared.get((group, kind))

    def sites(
        self, obj: Mapping[str, Any], *, undeclared: bool = True
    ) -> tuple[str, str, WorkloadKind | None, list[PodSite]] | None:
        """Where a custom resource carries pods (`pod_sites`): its kind, its group, its entry (None:
        a kind neither known nor declared) and the sites found. None where there is nothing to walk:
        no kind or group, a kind of the built-in groups (Kubernetes' own: judged, or not workloads),
        an object that describes other objects, one declared `notWorkload: true`, and, without
        `undeclared`, a kind neither known nor declared."""
        kind, group = obj.get("kind"), api_group(obj.get("apiVersion"))
        if not isinstance(kind, str) or group is None:
            return None
        entry = self.get(group, kind)
        if entry is None:
            if not undeclared or "." not in group or is_builtin_workload(group, kind):
                return None
            if describes_other_objects(group, kind):
                return None
        elif entry.pod_spec is None:
            return None  # declared `notWorkload: true`
        return kind, group, entry, pod_sites(obj, None if entry is None or entry.anywhere else entry.pod_spec)


def api_group(api_version: object) -> str | None:
    """The API group of an apiVersion as policies/lib/k8s.rego's `api_group` reads it: `apps/v1`
    -> `apps`, `v1` -> "" (the core group); None for anything else (not a string, two `/`)."""
    if not isinstance(api_version, str) or api_version.count("/") > 1:
        return None
    return api_version.partition("/")[0] if "/" in api_version else ""


def is_kind(obj: Mapping[str, object], group: str, kind: str) -> bool:
    """Whether `obj` is a `kind` of the API `group`, at any version (`api_group`)."""
    return obj.get("kind") == kind and api_group(obj.get("apiVersion")) == group


def is_builtin_workload(group: str, kind: str) -> bool:
    return group in BUILTIN_WORKLOADS.get(kind, ())


# ---------------------------------------------------------------------------------------------------
# Pod templates wherever a custom resource keeps them.

# Custom resources whose content describes other objects, which the API server admits (and
# `trustgate serve` judges) when they are created: policies whose patterns look like pods
# (Kyverno, Gatekeeper), compositions and templates of whole objects (Crossplane, OpenShift),
# Helm values (Flux's HelmRelease, Argo CD's Application), and Kubernetes' own API groups
# (admission policies, CRDs). Their containers are not pods of theirs: `pod_sites` finds none.
# A group suffix matches the group and its subgroups; a kind of "" every kind of the group.
DESCRIBES_OTHER_OBJECTS: tuple[tuple[str, str], ...] = (
    ("k8s.io", ""),
    ("kubernetes.io", ""),
    ("kyverno.io", ""),
    ("gatekeeper.sh", ""),
    ("apiextensions.crossplane.io", ""),
    ("template.openshift.io", ""),
    ("helm.toolkit.fluxcd.io", ""),
    ("argoproj.io", "Application"),
    ("argoproj.io", "ApplicationSet"),
)

# Lists of containers: a pod spec's, Tekton's steps and sidecars, a SidecarSet's.
_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_STEP_LISTS = frozenset({"steps", "sidecars"})
# A lone container: Argo Workflows' template `container` and `script`, Argo Events' `container`.
_LONE_CONTAINERS = frozenset({"container", "script"})


def describes_other_objects(group: str, kind: str) -> bool:
    """`group`'s `kind` holds other objects' content (DESCRIBES_OTHER_OBJECTS)."""
    for suffix, k in DESCRIBES_OTHER_OBJECTS:
        if (group == suffix or group.endswith("." + suffix)) and (not k or k == kind):
            return True
    return False


@dataclass(frozen=True, slots=True)
class PodSite:
    """Containers found in a custom resource, as a pod the bundled sets can judge.

    Attributes:
        path: where they are: a pod spec (`.../template/spec`), a list of containers or steps
            (`spec/steps`), or one container (`spec/templates/0/container`).
        shape: "pod" (a pod spec at `path`), "list" (containers at `path`), "container".
        pod: the pod spec to judge (for "list" and "container", one holding them as `containers`).
        metadata: the pod template's metadata beside a pod spec (`.../template/metadata`), or {}.
    """

    path: tuple[str | int, ...]
    shape: str
    pod: Mapping[str, Any]
    metadata: Mapping[str, Any]

    @property
    def containers_path(self) -> tuple[str | int, ...]:
        """Where the finding for an undeclared kind points: the containers line."""
        return (*self.path, "containers") if self.shape == "pod" else self.path

    def real_path(self, pod_path: tuple[str | int, ...]) -> tuple[str | int, ...]:
        """The path in the custom resource of `pod_path`, a path into `pod` (as the pod spec's)."""
        if self.shape == "pod":
            return (*self.path, *pod_path)
        if len(pod_path) >= 2 and pod_path[0] == "containers" and isinstance(pod_path[1], int):
            if self.shape == "list":
                return (*self.path, *pod_path[1:])
            return (*self.path, *pod_path[2:])
        return self.path  # a pod-level field the site does not have: the site itself


def _has_image(items: Any) -> bool:
    return (
        isinstance(items, list)
        and bool(items)
        and all(isinstance(c, Mapping) for c in items)
        and any(isinstance(c.get("image"), str) for c in items)
    )


def undeclared_text(
    kind: str, group: str | None, sites: Sequence[PodSite], judges: str, declared: str
) -> tuple[str, str]:
    """The message and the fix of the finding for a custom resource of a kind neither known nor
    declared that carries containers at `sites` (the first one named): `judges` names what cannot
    judge its pods (the bundled sets, the Gatekeeper constraints), `declared` what declaring it gives."""
    first = sites[0]
    where = ".".join(map(str, first.path))
    one_path = len(sites) == 1 and first.shape == "pod" and all(isinstance(k, str) for k in first.path)
    spec = where if one_path else '"*"'
    message = (
        f"{kind} ({group}) carries containers at {where}"
        + (f" and {len(sites) - 1} more place(s)" if len(sites) > 1 else "")
        + f", but its kind is not declared a workload: {judges} cannot judge the pods its controller creates"
    )
    fix = (
        f"declare it in trustgate.yaml: workloads: [{{group: {group}, kind: {kind}, podSpec: {spec}}}] "
        f"({declared}); or, if it runs no pods from them, "
        f"[{{group: {group}, kind: {kind}, notWorkload: true}}]"
    )
    return message, fix


def pod_sites(obj: Mapping[str, Any], skip: tuple[str, ...] | None = None) -> list[PodSite]:
    """Every place in `obj` that holds containers with an image, outside `skip` (the pod spec the
    Rego library judges already), in document order: pod specs (a mapping whose `containers` or
    `initContainers` is a list of objects, one at least with a string `image`), lists of steps or
    sidecars, and lone `container`s or `script`s with an image. The walk does not enter what it
    found, nor `metadata` or `status` at the root."""
    sites: list[PodSite] = []
    stack: list[tuple[tuple[str | int, ...], Any, Mapping[str, Any]]] = [
        ((k,), v, obj)
        for k, v in reversed(list(obj.items()))
        if k not in ("metadata", "status", "apiVersion", "kind")
    ]
    while stack:
        path, node, parent = stack.pop()
        if path == skip:  # an explicit stack: no depth limit to hide a template below
            continue
        if isinstance(node, Mapping):
            if _has_image(node.get("containers")) or _has_image(node.get("initContainers")):
                metadata = parent.get("metadata") if path[-1] == "spec" else None
                sites.append(PodSite(path, "pod", node, metadata if isinstance(metadata, Mapping) else {}))
                continue
            key = path[-1]
            if key in _LONE_CONTAINERS and isinstance(node.get("image"), str):
                sites.append(PodSite(path, "container", {"containers": [node]}, {}))
                continue
            stack.extend(
                ((*path, k), v, node)
                for k, v in reversed(list(node.items()))
                if isinstance(v, (Mapping, list))
            )
        elif isinstance(node, list):
            key = path[-1]
            if isinstance(key, str) and (key in _STEP_LISTS or key in _CONTAINER_LISTS) and _has_image(node):
                sites.append(PodSite(path, "list", {"containers": node}, {}))
                continue
            stack.extend(
                ((*path, i), v, parent)
                for i, v in reversed(list(enumerate(node)))
                if isinstance(v, (Mapping, list))
            )
    return sites
