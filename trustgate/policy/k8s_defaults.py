"""Built-in objects as the API server holds them when validating admission runs: decoded and defaulted.

The API server decodes a request's body into the kind's Go struct and runs the
scheme's defaulters before any admission plugin sees it, so a
ValidatingAdmissionPolicy reads `spec.replicas: 1` where the manifest had
none, and `has(object.metadata.labels)` is false where it had `labels: null`.
`check` and `presync` read manifests as written; `decoded` gives the policy
engine (`trustgate.policy.vap`) the object the API server would judge. The
webhook (`serve`) is handed objects the API server already decoded and
defaulted, and must not default them again. Rego and Gatekeeper policies keep
the manifests as written (conftest and gator judge those).

Decoding (any built-in kind, `trustgate.kinds`): a `null` field is absent (Go's
decoder leaves a pointer, slice or map nil, which the object's conversion to
the policy's `object` omits), except that a `null` value in a string map
(labels, annotations, nodeSelector, matchLabels, a ReplicationController's or
Service's selector, a ConfigMap's data, a Secret's stringData) is the empty
string, as Go stores the element's zero value. Kinds that carry raw JSON
(CustomResourceDefinition, ControllerRevision, resource.k8s.io) have only
their metadata decoded. A container's `resources` is `{}` where absent: it is
a struct, not a pointer, so the conversion always has it
(`!has(c.resources) || has(c.resources.limits)` denies a container without).

Defaulting follows kubernetes/kubernetes (values read from the Go source; a
field is defaulted where Go's test is true: a nil pointer, or a zero string or
number where the field is not a pointer), for exactly these kinds (`_DEFAULTERS`):
v1 Pod, PodTemplate, ReplicationController, Service, PersistentVolumeClaim,
PersistentVolume, Secret, Namespace; apps/v1 Deployment, ReplicaSet,
StatefulSet, DaemonSet; batch/v1 Job, CronJob; autoscaling/v2
HorizontalPodAutoscaler; networking.k8s.io/v1 NetworkPolicy;
rbac.authorization.k8s.io/v1 RoleBinding, ClusterRoleBinding; storage.k8s.io/v1
StorageClass; scheduling.k8s.io/v1 PriorityClass. Every other built-in kind is
decoded only, including kinds whose Go defaulters are not modelled: among
them v1 LimitRange (limits' default and defaultRequest), Endpoints and
discovery.k8s.io EndpointSlice (ports' protocol), Node, Event,
networking.k8s.io Ingress and IngressClass, storage.k8s.io CSIDriver and
VolumeAttachment, admissionregistration.k8s.io webhook configurations and
admission policies, flowcontrol.apiserver.k8s.io, policy PodDisruptionBudget,
and older versions (autoscaling/v1 and v2beta*, extensions/v1beta1,
apps/v1beta1/2, batch/v1beta1, ...): a rule there sees the field as written.
The Service defaults are all SetDefaults_Service does when the request is
decoded; the registry's allocation is left out (below).

What is defaulted, by Go function (files under pkg/apis/ unless named):

- apps/v1/defaults.go: SetDefaults_Deployment: replicas 1; strategy.type
  RollingUpdate, its rollingUpdate maxUnavailable and maxSurge "25%";
  revisionHistoryLimit 10; progressDeadlineSeconds 600. SetDefaults_ReplicaSet:
  replicas 1. SetDefaults_StatefulSet: podManagementPolicy OrderedReady;
  updateStrategy.type RollingUpdate (with rollingUpdate {} then);
  rollingUpdate.partition 0; persistentVolumeClaimRetentionPolicy whenDeleted and
  whenScaled Retain; replicas 1; revisionHistoryLimit 10. SetDefaults_DaemonSet:
  updateStrategy.type RollingUpdate, rollingUpdate.maxUnavailable 1 and maxSurge
  0; revisionHistoryLimit 10.
- apps/v1/zz_generated.defaults.go: a StatefulSet's volumeClaimTemplates as
  PersistentVolumeClaims; every template's PodSpec as below.
- batch/v1/defaults.go: SetDefaults_Job: completions and parallelism 1 when both
  are unset, else parallelism 1; backoffLimit 6 (2147483647 with
  backoffLimitPerIndex); metadata.labels the template's when the Job has none;
  completionMode NonIndexed; suspend false; podFailurePolicy onPodConditions
  status True; podReplacementPolicy Failed with a podFailurePolicy, else
  TerminatingOrFailed; manualSelector false. SetDefaults_CronJob:
  concurrencyPolicy Allow; suspend false; successfulJobsHistoryLimit 3;
  failedJobsHistoryLimit 1 (and the job template's PodSpec, not SetDefaults_Job).
- core/v1/defaults.go: SetDefaults_ReplicationController: spec.selector and
  metadata.labels the template's labels when empty (replicas 1 is the
  declarative `+default=1`, in zz_generated.defaults.go). SetDefaults_Pod (Pods
  only, not templates): containers' and initContainers' resources.requests from
  their limits where absent; enableServiceLinks true; with hostNetwork, a port's
  hostPort its containerPort. SetDefaults_PodSpec (every PodSpec): dnsPolicy
  ClusterFirst; restartPolicy Always; securityContext {} (a container's
  securityContext and automountServiceAccountToken are not defaulted);
  terminationGracePeriodSeconds 30; schedulerName default-scheduler.
  SetDefaults_Container (init and ephemeral containers too): imagePullPolicy
  Always for the tag `latest` or an image with neither tag nor digest, else
  IfNotPresent, also for an image pkg/util/parsers.ParseImageName refuses
  (github.com/distribution/reference's ParseNormalizedNamed: a name of 64 hex
  characters, an upper-case repository, over 255 characters, a digest
  go-digest refuses);
  terminationMessagePath /dev/termination-log; terminationMessagePolicy File.
  SetDefaults_Probe (liveness, readiness, startup): timeoutSeconds 1,
  periodSeconds 10, successThreshold 1, failureThreshold 3.
  SetDefaults_HTTPGetAction (probes, lifecycle hooks): path "/", scheme HTTP.
  SetDefaults_Volume: a volume with no source an emptyDir {}; an image volume's
  pullPolicy as a container's. SetDefaults_{Secret,ConfigMap,DownwardAPI,
  Projected}VolumeSource: defaultMode 420 (0644). SetDefaults_ObjectFieldSelector:
  fieldRef.apiVersion v1 (env, downwardAPI items). SetDefaults_ServiceAccount-
  TokenProjection: expirationSeconds 3600. SetDefaults_HostPathVolumeSource:
  type "". SetDefaults_PersistentVolumeClaim(Spec): status.phase Pending,
  spec.volumeMode Filesystem (claims, volumeClaimTemplates, ephemeral volumes).
  SetDefaults_Service: sessionAffinity None (and no sessionAffinityConfig),
  ClientIP's timeoutSeconds 10800; type ClusterIP; ports' protocol TCP and
  targetPort the port where absent or 0; externalTrafficPolicy Cluster where
  service.ExternallyAccessible (pkg/api/v1/service/util.go: NodePort,
  LoadBalancer, ClusterIP with externalIPs); internalTrafficPolicy Cluster for
  ClusterIP, NodePort and LoadBalancer; allocateLoadBalancerNodePorts true for
  LoadBalancer. SetDefaults_Secret: type Opaque. SetDefaults_Namespace: label
  kubernetes.io/metadata.name the name. SetDefaults_PersistentVolume:
  status.phase Pending, persistentVolumeReclaimPolicy Retain, volumeMode
  Filesystem (and its sources' defaults, as a Volume's below).
- autoscaling/v2/defaults.go: SetDefaults_HorizontalPodAutoscaler: minReplicas
  1; metrics, when empty, CPU at averageUtilization 80; a given behavior's
  scaleUp (stabilizationWindowSeconds 0, selectPolicy Max, policies Pods 4 and
  Percent 100 per 15 s) and scaleDown (selectPolicy Max, Percent 100 per 15 s;
  no stabilizationWindowSeconds: the controller's flag decides it), field by
  field (copyHPAScalingRules).
- networking/v1/defaults.go: SetDefaults_NetworkPolicy: policyTypes, when
  empty, Ingress, and Egress too where egress rules are given;
  SetDefaults_NetworkPolicyPort: protocol TCP.
- rbac/v1/defaults.go: SetDefaults_(Cluster)RoleBinding: roleRef.apiGroup
  rbac.authorization.k8s.io; SetDefaults_Subject: apiGroup
  rbac.authorization.k8s.io for a User or Group.
- storage/v1/defaults.go: SetDefaults_StorageClass: reclaimPolicy Delete,
  volumeBindingMode Immediate. scheduling/v1/defaults.go:
  SetDefaults_PriorityClass: preemptionPolicy PreemptLowerPriority.
- core/v1/zz_generated.defaults.go (declarative `+default` and the walk into
  PodSpecs): containers' ports protocol TCP; a grpc probe's service "";
  iscsi iscsiInterface default; rbd pool rbd, user admin, keyring
  /etc/ceph/keyring; azureDisk cachingMode ReadWrite, kind Shared, fsType ext4,
  readOnly false; scaleIO storageMode ThinProvisioned, fsType xfs.

The policy's `object` is then what runtime.DefaultUnstructuredConverter.-
ToUnstructured makes of the Go struct (admission CEL's objectToResolveVal): a
field tagged `omitempty` whose value is zero (an empty map or list, "", 0,
false: not a pointer, which is zero only when nil, and not a struct) is left
out, so `labels: {}`, `resources.limits: {}`, `imagePullSecrets: []` or
`serviceAccountName: ""` is absent (`has()` false). The fields are listed by Go
type in `_OMIT_EMPTY_TYPES`, from the struct tags: metadata (ObjectMeta) of
every built-in kind, and the PodSpec and everything under it, Service,
PersistentVolumeClaim, ConfigMap, Secret, Namespace, ServiceAccount and the
workload kinds of apps/v1 and batch/v1. A field the table does not list (a
pointer, a field without omitempty such as PodSpec.containers,
NodeSelector.nodeSelectorTerms or ProjectedVolumeSource.sources, or one of a
type the table does not cover, e.g. other kinds' specs, other volume sources,
a Job's podFailurePolicy) keeps its value as written.

Conversion (pkg/apis/core/v1/conversion.go): the API server holds the internal
object and converts it back to the request's version for admission, so for the
defaulted kinds: a Secret's stringData is written into data, base64-encoded,
over data's own entries, and is gone (Convert_v1_Secret_To_core_Secret); a
PodSpec's deprecated serviceAccount becomes serviceAccountName where that is
empty, and serviceAccount is then serviceAccountName (Convert_v1_PodSpec_To_-
core_PodSpec and back), in a Pod and every pod template.

Left out, and why: what the registry does between decoding and validating
admission (rest.BeforeCreate, and a Service's allocation in BeginCreate, run
before the API server's validating admission): uid, creationTimestamp,
generation, managedFields, status reset by each strategy's PrepareForCreate,
a Pod's qosClass, a Service's clusterIP(s), ipFamilies and ipFamilyPolicy
(they depend on the cluster's configuration), a Job's generated selector and
controller-uid labels (they need the uid). Quantities are not rounded up to
milli or canonicalised (`SetDefaults_ResourceList`: `1000m` stays `1000m`,
where the API server gives `1`); Pod-level resources
(PodLevelResources) are not defaulted; the other zero values a typed round trip
adds (a template's `metadata.creationTimestamp: null`, `status: {}`) are not
added. Feature-gated defaults follow the gates' defaults of Kubernetes 1.34
(ImageVolume's pull policy, JobPodReplacementPolicy,
StatefulSetAutoDeletePVC). Older API versions (extensions/v1beta1,
apps/v1beta1/2, batch/v1beta1), which the API server defaults differently,
are decoded only.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from trustgate import kinds
from trustgate.model import names_registry

__all__ = ["decoded", "generated_names", "is_typed", "nested_deeper"]

_GRACE_PERIOD: Final = 30  # v1.DefaultTerminationGracePeriodSeconds
_FILE_MODE: Final = 0o644  # Secret/ConfigMap/DownwardAPI/ProjectedVolumeSourceDefaultMode (420)
_TOKEN_SECONDS: Final = 3600  # a projected serviceAccountToken's expirationSeconds (one hour)
_CLIENT_IP_SECONDS: Final = 10800  # v1.DefaultClientIPServiceAffinitySeconds (three hours)
_MAX_INT32: Final = 2**31 - 1
# Keys whose value is a map[string]string in every built-in type that has them: a null value
# there decodes to "" (Go stores the element's zero value), not to an absent key.
_STRING_MAPS: Final = frozenset({"labels", "annotations", "nodeSelector", "matchLabels"})
# Kinds with raw JSON (RawExtension, JSONSchemaProps) where a null is data: metadata only.
_RAW_KINDS: Final = frozenset(
    {("apiextensions.k8s.io", "CustomResourceDefinition"), ("apps", "ControllerRevision")}
)
_RAW_GROUPS: Final = frozenset({"resource.k8s.io"})
# String maps under a key other kinds use for something else (a Deployment's selector is a
# LabelSelector), by kind: (apiVersion, kind) -> paths.
_KIND_STRING_MAPS: Final[Mapping[tuple[str, str], tuple[tuple[str, ...], ...]]] = {
    ("v1", "ReplicationController"): (("spec", "selector"),),
    ("v1", "Service"): (("spec", "selector"),),
    ("v1", "ConfigMap"): (("data",),),
    ("v1", "Secret"): (("stringData",),),
}
# names.SimpleNameGenerator: base cut to 63 - 5 characters, then 5 of utilrand's alphabet.
_GENERATED_BASE: Final = 58
_NAME_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"


def is_typed(obj: Mapping[str, Any]) -> bool:
    """Whether the API server decodes the object into a Go struct (a built-in kind)."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return False
    return kinds.builtin_namespaced(api_version.rpartition("/")[0], kind) is not None


def decoded(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object as the API server holds it when validating admission runs (see the module).

    Args:
        obj: a manifest as written. It is not changed.

    Returns:
        A new object for a built-in kind (nulls dropped, defaults set); `obj` itself for any
        other (a custom resource's defaults come from its CRD, `trustgate.policy.crd_cel`).
    """
    if not is_typed(obj):
        return obj
    api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
    group = api_version.rpartition("/")[0]
    if (group, kind) in _RAW_KINDS or group in _RAW_GROUPS:
        out = dict(obj)
        if "metadata" in out:
            out["metadata"] = _decode(out["metadata"], "metadata")
        out = {k: v for k, v in out.items() if v is not None}
        _omit_empty(out, (api_version, kind), metadata_only=True)
        return out
    out = _decode(obj, "")
    assert isinstance(out, dict)
    for path in _KIND_STRING_MAPS.get((api_version, kind), ()):
        written: Any = obj
        for key in path:
            written = written.get(key) if isinstance(written, Mapping) else None
        parent: Any = out
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(written, Mapping) and isinstance(parent, dict):
            parent[path[-1]] = _string_map(written)
    defaulter = _DEFAULTERS.get((api_version, kind))
    if defaulter is not None:
        defaulter(out)
    _omit_empty(out, (api_version, kind))
    return out


def generated_names(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """Two names the API server could generate for an object with `generateName` and no name.

    The API server names such an object (`generateName` cut to 58 characters, then five
    random characters of `bcdfghjklmnpqrstvwxz2456789`) before validating admission runs, and
    `request.name` is that name too. The two differ in every random character, and are of
    letters only and of digits only: a policy that decides differently for them depends on
    the name, which an offline check cannot know.

    Returns:
        None when the object has a name or no generateName.
    """
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or meta.get("name"):
        return None
    base = meta.get("generateName")
    if not isinstance(base, str) or not base:
        return None
    base = base[:_GENERATED_BASE]
    return base + _NAME_ALPHABET[0] * 5, base + _NAME_ALPHABET[-1] * 5


# -- decoding ------------------------------------------------------------------


def _decode(value: Any, key: str) -> Any:
    """A copy with null map entries dropped (or "" in a string map), at any depth.

    Iterative, not recursive: the API server reads bodies nested up to 10000 levels, deeper
    than Python's recursion limit (`review` refuses objects nested deeper than
    `vap.MAX_DEPTH` before they get here; the Namespaces and params it reads are decoded too).
    """
    root: dict[str, Any] = {}
    # (value as written, its key, the copy's container, the slot in it)
    stack: list[tuple[Any, str, Any, Any]] = [(value, key, root, "")]
    while stack:
        value, key, parent, slot = stack.pop()
        if type(value) is dict or isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            strings = key in _STRING_MAPS
            for k, v in value.items():
                if v is None:
                    if strings:
                        out[k] = ""
                    continue
                out[k] = v
                kind = type(v)
                if kind in _NESTED or (kind not in _SCALARS and isinstance(v, (Mapping, list))):
                    stack.append((v, "" if strings else k, out, k))
            parent[slot] = out
        elif isinstance(value, list):
            items = list(value)
            for n, item in enumerate(items):
                kind = type(item)
                if kind in _NESTED or (kind not in _SCALARS and isinstance(item, (Mapping, list))):
                    stack.append((item, key, items, n))
            parent[slot] = items
        else:
            parent[slot] = value
    return root[""]


def nested_deeper(value: Any, limit: int) -> bool:
    """Whether `value` holds objects or lists nested more than `limit` levels deep (iterative)."""
    if limit > _ORJSON_DEPTH:
        # orjson refuses a value nested deeper than it writes, so one it writes is shallower
        # than `limit`: one native pass for the common case. What it refuses for any reason
        # (depth, a key that is not a string, a Mapping that is not a dict) is walked.
        try:
            orjson.dumps(value)
            return False
        except TypeError:  # orjson.JSONEncodeError
            pass
    # Level by level: no (value, depth) pair per node.
    level = [value] if isinstance(value, (Mapping, list)) else []
    depth = 0
    while level:
        if depth >= limit:
            return True
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, Mapping) else item
            for child in children:
                kind = type(child)
                if kind in _NESTED or (kind not in _SCALARS and isinstance(child, (Mapping, list))):
                    below.append(child)
        level = below
        depth += 1
    return False


# A JSON value's exact type is tried before the abstract Mapping check, which costs several times more.
_NESTED: Final = frozenset({dict, list})
_ORJSON_DEPTH: Final = 256  # orjson writes values nested up to 255 levels ("Recursion limit reached")
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def _string_map(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: "" if v is None else v for k, v in value.items()}


# -- defaulting ----------------------------------------------------------------


def _unset(obj: dict[str, Any], key: str) -> bool:
    """A Go string or number field at its zero value (absent, "" or 0), which Go's test treats as unset."""
    value = obj.get(key)
    return value is None or value == "" or (value == 0 and not isinstance(value, bool))


def _map(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def _maps(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = obj.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _ensure(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The map at `key`, created empty when absent (a Go pointer the defaulter allocates); None
    when something else is there (an invalid manifest: left for validation to refuse)."""
    if key not in obj:
        obj[key] = {}
    return _map(obj, key)


def _pull_policy(image: Any) -> str:
    """SetDefaults_Container (and an image volume's): Always where pkg/util/parsers'
    ParseImageName gives the tag `latest` (written, or implied by neither tag nor digest), else
    IfNotPresent; Go ignores the error of an image that does not parse, whose tag is then ""."""
    if not isinstance(image, str):
        return "IfNotPresent"
    # A change set names few images, each in many containers: parsed once (a long text is not
    # kept, so a webhook's cache stays small whatever it is sent).
    tag = _image_tag_cached(image) if len(image) <= _CACHED_IMAGE else _image_tag(image)
    return "Always" if tag == "latest" else "IfNotPresent"


# github.com/distribution/reference's grammar (regexp.go), as ParseNormalizedNamed reads it.
# Go's `\w` and `[[:xdigit:]]` are ASCII: hence re.ASCII.
_PATH_PART: Final = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_PORT: Final = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_REFERENCE: Final = re.compile(
    rf"((?:{_HOST_PORT}/)?{_PATH_PART}(?:/{_PATH_PART})*)"
    r"(?::([\w][\w.-]{0,127}))?"
    r"(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?",
    re.ASCII,
)
_HEX_IDENTIFIER: Final = re.compile(r"[a-f0-9]{64}")
_NAME_MAX: Final = 255  # reference.NameTotalLengthMax
_DIGEST_SIZES: Final = {"sha256": 64, "sha384": 96, "sha512": 128}  # go-digest's available algorithms


def _image_tag(image: str) -> str:
    """The tag parsers.ParseImageName gives (`latest` for neither tag nor digest); "" where it
    fails, as ParseNormalizedNamed does for a 64-hex-character name, an upper-case repository, a
    name over 255 characters or a digest go-digest refuses."""
    if _HEX_IDENTIFIER.fullmatch(image):
        return ""  # "cannot specify 64-byte hexadecimal strings"
    # splitDockerDomain (`names_registry`); else Docker Hub (official images under library/).
    first, slash, rest = image.partition("/")
    if slash and names_registry(first):
        domain, remainder = first, rest
    else:
        domain, remainder = "docker.io", image
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in remainder:
        remainder = "library/" + remainder
    if remainder.partition(":")[0].lower() != remainder.partition(":")[0]:
        return ""  # "repository name must be lowercase"
    match = _REFERENCE.fullmatch(f"{domain}/{remainder}")
    if match is None or len(match.group(1)) > _NAME_MAX:
        return ""
    tag, digest = match.group(2) or "", match.group(3)
    if digest is not None:
        algorithm, _, encoded = digest.partition(":")
        size = _DIGEST_SIZES.get(algorithm)
        if size is None or len(encoded) != size or encoded.lower() != encoded:
            return ""  # unsupported algorithm, wrong length, or not lower-case hex
    return tag or ("" if digest else "latest")


_CACHED_IMAGE: Final = 1024  # characters: more than a reference a parse accepts (name 255, tag, digest)
_image_tag_cached: Final = functools.lru_cache(maxsize=4096)(_image_tag)


def _http_get(handler: dict[str, Any] | None) -> None:
    action = _map(handler, "httpGet") if handler is not None else None
    if action is not None:
        if _unset(action, "path"):
            action["path"] = "/"
        if _unset(action, "scheme"):
            action["scheme"] = "HTTP"


def _probe(probe: dict[str, Any] | None) -> None:
    if probe is None:
        return
    for key, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if _unset(probe, key):
            probe[key] = value
    _http_get(probe)
    grpc = _map(probe, "grpc")
    if grpc is not None and "service" not in grpc:
        grpc["service"] = ""  # GRPCAction.Service: +default=""


def _field_ref(holder: dict[str, Any] | None) -> None:
    ref = _map(holder, "fieldRef") if holder is not None else None
    if ref is not None and _unset(ref, "apiVersion"):
        ref["apiVersion"] = "v1"


def _container(container: dict[str, Any]) -> None:
    if _unset(container, "imagePullPolicy"):
        container["imagePullPolicy"] = _pull_policy(container.get("image"))
    if _unset(container, "terminationMessagePath"):
        container["terminationMessagePath"] = "/dev/termination-log"
    if _unset(container, "terminationMessagePolicy"):
        container["terminationMessagePolicy"] = "File"
    for port in _maps(container, "ports"):
        if _unset(port, "protocol"):
            port["protocol"] = "TCP"
    for env in _maps(container, "env"):
        _field_ref(_map(env, "valueFrom"))
    container.setdefault("resources", {})  # a struct, not a pointer: always in the object
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(_map(container, key))
    lifecycle = _map(container, "lifecycle")
    if lifecycle is not None:
        _http_get(_map(lifecycle, "postStart"))
        _http_get(_map(lifecycle, "preStop"))


def _claim_spec(spec: dict[str, Any] | None) -> None:
    if spec is not None and spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"


def _claim(claim: dict[str, Any]) -> None:
    """SetDefaults_PersistentVolumeClaim and _PersistentVolumeClaimSpec."""
    status = _ensure(claim, "status")
    if status is not None and _unset(status, "phase"):
        status["phase"] = "Pending"
    _claim_spec(_ensure(claim, "spec"))


def _volume(volume: dict[str, Any]) -> None:
    if not any(key != "name" for key in volume):
        volume["emptyDir"] = {}  # SetDefaults_Volume: no source at all
    image = _map(volume, "image")
    if image is not None and _unset(image, "pullPolicy"):
        image["pullPolicy"] = _pull_policy(image.get("reference"))
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = _map(volume, key)
        if source is not None and source.get("defaultMode") is None:
            source["defaultMode"] = _FILE_MODE
    downward = _map(volume, "downwardAPI")
    for item in _maps(downward, "items") if downward is not None else []:
        _field_ref(item)
    projected = _map(volume, "projected")
    for source in _maps(projected, "sources") if projected is not None else []:
        inner = _map(source, "downwardAPI")
        for item in _maps(inner, "items") if inner is not None else []:
            _field_ref(item)
        token = _map(source, "serviceAccountToken")
        if token is not None and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = _TOKEN_SECONDS
    _sources(volume)
    ephemeral = _map(volume, "ephemeral")
    template = _map(ephemeral, "volumeClaimTemplate") if ephemeral is not None else None
    if template is not None:
        _claim_spec(_map(template, "spec"))


def _sources(volume: dict[str, Any]) -> None:
    """The defaulters of the sources a Volume and a PersistentVolumeSpec share."""
    host_path = _map(volume, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""  # HostPathUnset: a pointer to ""
    fixed: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = (
        ("iscsi", (("iscsiInterface", "default"),)),
        ("rbd", (("pool", "rbd"), ("user", "admin"), ("keyring", "/etc/ceph/keyring"))),
        ("scaleIO", (("storageMode", "ThinProvisioned"), ("fsType", "xfs"))),
    )
    for key, defaults in fixed:
        source = _map(volume, key)
        for field, value in defaults if source is not None else ():
            assert source is not None
            if _unset(source, field):
                source[field] = value
    azure = _map(volume, "azureDisk")
    if azure is not None:  # pointers: only a missing one is defaulted
        for field, value in (
            ("cachingMode", "ReadWrite"),
            ("kind", "Shared"),
            ("fsType", "ext4"),
            ("readOnly", False),
        ):
            if azure.get(field) is None:
                azure[field] = value


def _pod_spec(spec: dict[str, Any] | None) -> None:
    """SetDefaults_PodSpec and what the generated defaulters walk into below a PodSpec."""
    if spec is None:
        return
    if _unset(spec, "dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if _unset(spec, "restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = _GRACE_PERIOD
    if _unset(spec, "schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for volume in _maps(spec, "volumes"):
        _volume(volume)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _maps(spec, key):
            _container(container)
    # pkg/apis/core/v1/conversion.go, after defaulting (the API server holds the internal object
    # and converts it back to v1 for admission): Convert_v1_PodSpec_To_core_PodSpec takes the
    # deprecated serviceAccount where serviceAccountName is empty, and
    # Convert_core_PodSpec_To_v1_PodSpec sets serviceAccount to serviceAccountName.
    name, alias = spec.get("serviceAccountName"), spec.get("serviceAccount")
    if isinstance(name, str | None) and isinstance(alias, str | None):
        if not name and alias is not None:
            spec["serviceAccountName"] = alias
        if "serviceAccountName" in spec:
            spec["serviceAccount"] = spec["serviceAccountName"]


def _template(holder: dict[str, Any] | None) -> None:
    """A PodTemplateSpec at `template`."""
    template = _map(holder, "template") if holder is not None else None
    if template is not None:
        _pod_spec(_map(template, "spec"))


def _spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    return _ensure(obj, "spec")  # a struct: defaulters run on it even when the manifest has none


def _pod(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    for key in ("containers", "initContainers"):  # SetDefaults_Pod: requests from limits
        for container in _maps(spec, key):
            resources = _map(container, "resources")
            limits = _map(resources, "limits") if resources is not None else None
            if resources is not None and limits:  # an empty map: Go's empty requests are omitted
                requests = resources.get("requests")
                if requests is None:
                    requests = resources["requests"] = {}
                if isinstance(requests, dict):
                    for name, quantity in limits.items():
                        requests.setdefault(name, quantity)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for container in _maps(spec, key):
                for port in _maps(container, "ports"):
                    if _unset(port, "hostPort") and isinstance(port.get("containerPort"), int):
                        port["hostPort"] = port["containerPort"]
    _pod_spec(spec)


def _pod_template(obj: dict[str, Any]) -> None:
    _template(obj)


def _replicas(spec: dict[str, Any]) -> None:
    if spec.get("replicas") is None:
        spec["replicas"] = 1


def _history(spec: dict[str, Any]) -> None:
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10


def _deployment(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    _replicas(spec)
    strategy = _ensure(spec, "strategy")
    if strategy is not None:
        if _unset(strategy, "type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = _ensure(strategy, "rollingUpdate")
            if rolling is not None:
                for key in ("maxUnavailable", "maxSurge"):
                    if rolling.get(key) is None:
                        rolling[key] = "25%"
    _history(spec)
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _template(spec)


def _replica_set(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is not None:
        _replicas(spec)
        _template(spec)


def _daemon_set(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    strategy = _ensure(spec, "updateStrategy")
    if strategy is not None:
        if _unset(strategy, "type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = _ensure(strategy, "rollingUpdate")
            if rolling is not None:
                if rolling.get("maxUnavailable") is None:
                    rolling["maxUnavailable"] = 1
                if rolling.get("maxSurge") is None:
                    rolling["maxSurge"] = 0
    _history(spec)
    _template(spec)


def _stateful_set(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    if _unset(spec, "podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _ensure(spec, "updateStrategy")
    if strategy is not None:
        if _unset(strategy, "type"):
            strategy["type"] = "RollingUpdate"
            strategy.setdefault("rollingUpdate", {})
        rolling = _map(strategy, "rollingUpdate")
        if strategy["type"] == "RollingUpdate" and rolling is not None and rolling.get("partition") is None:
            rolling["partition"] = 0
    retention = _ensure(spec, "persistentVolumeClaimRetentionPolicy")  # StatefulSetAutoDeletePVC (GA)
    if retention is not None:
        for key in ("whenDeleted", "whenScaled"):
            if _unset(retention, key):
                retention[key] = "Retain"
    _replicas(spec)
    _history(spec)
    _template(spec)
    for claim in _maps(spec, "volumeClaimTemplates"):
        _claim(claim)


def _empty(value: Any) -> bool:
    return not isinstance(value, Mapping) or not value


def _job(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = _MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    _labels_from_template(obj, _map(spec, "template"))
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    failure_policy = _map(spec, "podFailurePolicy")
    for rule in _maps(failure_policy, "rules") if failure_policy is not None else []:
        for pattern in _maps(rule, "onPodConditions"):
            if _unset(pattern, "status"):
                pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:  # JobPodReplacementPolicy (GA in 1.34)
        spec["podReplacementPolicy"] = "Failed" if failure_policy is not None else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    _template(spec)


def _labels_from_template(obj: dict[str, Any], template: dict[str, Any] | None) -> None:
    """A Job's or ReplicationController's labels are its template's when it has none."""
    meta = _map(template, "metadata") if template is not None else None
    labels = meta.get("labels") if meta is not None else None
    if isinstance(labels, dict) and labels:
        own = _ensure(obj, "metadata")
        if own is not None and _empty(own.get("labels")):
            own["labels"] = dict(labels)


def _cron_job(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    if _unset(spec, "concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job = _map(spec, "jobTemplate")
    _template(_map(job, "spec") if job is not None else None)


def _replication_controller(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    template = _map(spec, "template")
    meta = _map(template, "metadata") if template is not None else None
    labels = meta.get("labels") if meta is not None else None
    if isinstance(labels, dict) and labels:
        if _empty(spec.get("selector")):
            spec["selector"] = dict(labels)
        _labels_from_template(obj, template)
    _replicas(spec)
    _template(spec)


def _service(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    if _unset(spec, "sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = _map(spec, "sessionAffinityConfig")
        client = _map(config, "clientIP") if config is not None else None
        if client is None or client.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": _CLIENT_IP_SECONDS}}
    if _unset(spec, "type"):
        spec["type"] = "ClusterIP"
    kind = spec["type"]
    for port in _maps(spec, "ports"):
        if _unset(port, "protocol"):
            port["protocol"] = "TCP"
        if _unset(port, "targetPort") and isinstance(port.get("port"), int):
            port["targetPort"] = port["port"]
    # service.ExternallyAccessible (pkg/api/v1/service/util.go)
    external_ips = spec.get("externalIPs")
    exposed = kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(external_ips))
    if exposed and _unset(spec, "externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True


def _claim_object(obj: dict[str, Any]) -> None:
    _claim(obj)


def _secret(obj: dict[str, Any]) -> None:
    if _unset(obj, "type"):
        obj["type"] = "Opaque"
    # Convert_v1_Secret_To_core_Secret: the internal Secret has no stringData; its entries are
    # written into data (over data's own), which the conversion back to v1 encodes in base64.
    string_data, data = obj.get("stringData"), obj.get("data")
    if isinstance(string_data, dict) and isinstance(data, dict | None):
        if any(not isinstance(value, str) for value in string_data.values()):
            return  # not a map of strings: left for validation to refuse
        del obj["stringData"]
        if string_data:
            merged = dict(data or {})
            for key, value in string_data.items():
                # Go's decoder has replaced a lone surrogate with U+FFFD
                text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
                merged[key] = base64.b64encode(text.encode()).decode()
            obj["data"] = merged


def _persistent_volume(obj: dict[str, Any]) -> None:
    """SetDefaults_PersistentVolume, and the generated walk into its sources."""
    status = _ensure(obj, "status")
    if status is not None and _unset(status, "phase"):
        status["phase"] = "Pending"
    spec = _spec(obj)
    if spec is None:
        return
    if _unset(spec, "persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    _sources(spec)


def _scaling_rules(behavior: dict[str, Any], key: str, defaults: dict[str, Any]) -> None:
    """copyHPAScalingRules: the rules given, each unset one (nil) from the defaults."""
    given = behavior.get(key)
    if given is None:
        behavior[key] = defaults
    elif isinstance(given, dict):
        for field, value in defaults.items():
            if given.get(field) is None:
                given[field] = value


def _horizontal_pod_autoscaler(obj: dict[str, Any]) -> None:
    """autoscaling/v2 SetDefaults_HorizontalPodAutoscaler(Behavior)."""
    spec = _spec(obj)
    if spec is None:
        return
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    metrics = spec.get("metrics")
    if metrics is None or metrics == []:  # len(Metrics) == 0: CPU at 80% utilisation
        target = {"type": "Utilization", "averageUtilization": 80}
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": target}}]
    behavior = _map(spec, "behavior")
    if behavior is not None:  # GenerateHPAScaleUpRules, GenerateHPAScaleDownRules
        up = [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ]
        down = [{"type": "Percent", "value": 100, "periodSeconds": 15}]
        _scaling_rules(
            behavior, "scaleUp", {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": up}
        )
        # scaleDown's stabilizationWindowSeconds stays nil: the controller's flag decides it
        _scaling_rules(behavior, "scaleDown", {"selectPolicy": "Max", "policies": down})


def _network_policy(obj: dict[str, Any]) -> None:
    """networking/v1 SetDefaults_NetworkPolicy and _NetworkPolicyPort."""
    spec = _spec(obj)
    if spec is None:
        return
    for direction in ("ingress", "egress"):
        for rule in _maps(spec, direction):
            for port in _maps(rule, "ports"):
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"
    types = spec.get("policyTypes")
    if types is None or types == []:
        egress = spec.get("egress")
        spec["policyTypes"] = ["Ingress", "Egress"] if isinstance(egress, list) and egress else ["Ingress"]


def _role_binding(obj: dict[str, Any]) -> None:
    """rbac/v1 SetDefaults_(Cluster)RoleBinding and SetDefaults_Subject."""
    ref = _map(obj, "roleRef")
    if ref is not None and _unset(ref, "apiGroup"):
        ref["apiGroup"] = "rbac.authorization.k8s.io"
    for subject in _maps(obj, "subjects"):
        if _unset(subject, "apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = "rbac.authorization.k8s.io"  # a ServiceAccount's stays ""


def _storage_class(obj: dict[str, Any]) -> None:
    """storage/v1 SetDefaults_StorageClass."""
    if obj.get("reclaimPolicy") is None:
        obj["reclaimPolicy"] = "Delete"
    if obj.get("volumeBindingMode") is None:
        obj["volumeBindingMode"] = "Immediate"


def _priority_class(obj: dict[str, Any]) -> None:
    """scheduling/v1 SetDefaults_PriorityClass."""
    if obj.get("preemptionPolicy") is None:
        obj["preemptionPolicy"] = "PreemptLowerPriority"


def _namespace(obj: dict[str, Any]) -> None:
    meta = _map(obj, "metadata")
    name = meta.get("name") if meta is not None else None
    if meta is not None and isinstance(name, str) and name:
        labels = meta.get("labels")
        meta["labels"] = {**(labels if isinstance(labels, dict) else {}), "kubernetes.io/metadata.name": name}


_DEFAULTERS: Final[Mapping[tuple[str, str], Callable[[dict[str, Any]], None]]] = {
    ("v1", "Pod"): _pod,
    ("v1", "PodTemplate"): _pod_template,
    ("v1", "ReplicationController"): _replication_controller,
    ("v1", "Service"): _service,
    ("v1", "PersistentVolumeClaim"): _claim_object,
    ("v1", "Secret"): _secret,
    ("v1", "Namespace"): _namespace,
    ("apps/v1", "Deployment"): _deployment,
    ("apps/v1", "ReplicaSet"): _replica_set,
    ("apps/v1", "StatefulSet"): _stateful_set,
    ("apps/v1", "DaemonSet"): _daemon_set,
    ("batch/v1", "Job"): _job,
    ("batch/v1", "CronJob"): _cron_job,
    ("v1", "PersistentVolume"): _persistent_volume,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): _horizontal_pod_autoscaler,
    ("networking.k8s.io/v1", "NetworkPolicy"): _network_policy,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): _role_binding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): _role_binding,
    ("storage.k8s.io/v1", "StorageClass"): _storage_class,
    ("scheduling.k8s.io/v1", "PriorityClass"): _priority_class,
}


# -- the conversion to the policy's `object` ---------------------------------------------------


def _omit_empty_field(token: str) -> tuple[str, str, str]:
    """`field:kind>Type` as (field, kind, Type); kind or Type "" where not given."""
    field, _, child = token.partition(">")
    field, _, zero = field.partition(":")
    return field, zero, child


def _is_zero(value: Any, zero: str) -> bool:
    """converter.go's isZero for a value of the Go kind `zero` (see `_OMIT_EMPTY_TYPES`); a value
    of another JSON type (an invalid manifest) is not zero."""
    if zero == "m":
        return isinstance(value, dict) and not value
    if zero == "l":
        return isinstance(value, list) and not value
    if zero == "s":
        return value == "" and isinstance(value, str)
    if zero == "i":
        return value == 0 and isinstance(value, int) and not isinstance(value, bool)
    return zero == "b" and value is False


def _omit_empty(obj: dict[str, Any], kind: tuple[str, str], metadata_only: bool = False) -> None:
    """Drop, in place, the omitempty fields ToUnstructured leaves out (`_OMIT_EMPTY_TYPES`)."""
    stack: list[tuple[Any, Any]] = [(obj.get("metadata"), "ObjectMeta")]
    if not metadata_only:
        stack.append((obj, kind))
    while stack:
        value, name = stack.pop()
        fields = _OMIT_EMPTY.get(name)
        if fields is None or not isinstance(value, dict):
            continue
        # The object's own fields among its type's omitempty fields (a set: deleting is safe).
        for field in value.keys() & fields.keys():
            zero, child = fields[field]
            found = value[field]
            if zero and not found and _is_zero(found, zero):  # every zero value is falsy
                del value[field]
            elif child:
                items = found if isinstance(found, list) else [found]
                stack.extend((item, child) for item in items if isinstance(item, dict))


# runtime.DefaultUnstructuredConverter.ToUnstructured (k8s.io/apimachinery/pkg/runtime/
# converter.go), which gives admission CEL its `object`, leaves out a field tagged `omitempty`
# whose value is zero (its isZero: an empty map or slice, "", 0, false); a pointer is zero only
# when nil, and a struct never. The fields below are those, from the Go struct tags of
# k8s.io/api (core/v1, apps/v1, batch/v1) and apimachinery's meta/v1, by type:
# `field:kind` is an omitempty field of a map (m), slice (l), string (s), integer (i) or bool
# (b), not a pointer; `field>Type` (or `field:l>Type`) is a field holding that struct, or a
# slice of them. A field that is not listed (a pointer, one without omitempty such as
# PodSpec.containers or NodeSelector.nodeSelectorTerms, a kind or field the table does not
# cover) is left as it is.
_OMIT_EMPTY_TYPES: Final = {
    "ObjectMeta": "name:s generateName:s namespace:s selfLink:s uid:s resourceVersion:s generation:i "
    "labels:m annotations:m ownerReferences:l finalizers:l managedFields:l",
    "LabelSelector": "matchLabels:m matchExpressions:l>Requirement",
    "Requirement": "values:l",  # LabelSelectorRequirement, NodeSelectorRequirement
    "Named": "name:s",  # LocalObjectReference, inline in the key selectors and env sources
    "PodTemplateSpec": "metadata>ObjectMeta spec>PodSpec",
    "PodSpec": "volumes:l>Volume initContainers:l>Container containers>Container "
    "ephemeralContainers:l>Container restartPolicy:s dnsPolicy:s nodeSelector:m serviceAccountName:s "
    "serviceAccount:s nodeName:s hostNetwork:b hostPID:b hostIPC:b securityContext>PodSecurityContext "
    "imagePullSecrets:l>Named hostname:s subdomain:s affinity>Affinity schedulerName:s "
    "tolerations:l>Toleration hostAliases:l>HostAlias priorityClassName:s dnsConfig>PodDNSConfig "
    "readinessGates:l overhead:m topologySpreadConstraints:l>TopologySpread schedulingGates:l "
    "resourceClaims:l resources>Resources",
    # Container, and EphemeralContainer (EphemeralContainerCommon inline, targetContainerName)
    "Container": "image:s command:l args:l workingDir:s ports:l>ContainerPort envFrom:l>EnvFrom env:l>EnvVar "
    "resources>Resources resizePolicy:l restartPolicyRules:l volumeMounts:l>VolumeMount volumeDevices:l "
    "livenessProbe>Probe readinessProbe>Probe startupProbe>Probe lifecycle>Lifecycle "
    "terminationMessagePath:s terminationMessagePolicy:s imagePullPolicy:s securityContext>SecurityContext "
    "stdin:b stdinOnce:b tty:b targetContainerName:s",
    "ContainerPort": "name:s hostPort:i protocol:s hostIP:s",
    "EnvFrom": "prefix:s configMapRef>Named secretRef>Named",
    "EnvVar": "value:s valueFrom>EnvVarSource",
    "EnvVarSource": "configMapKeyRef>Named secretKeyRef>Named fieldRef>FieldRef "
    "resourceFieldRef>ResourceFieldRef",
    "FieldRef": "apiVersion:s",  # ObjectFieldSelector
    "ResourceFieldRef": "containerName:s",  # ResourceFieldSelector
    "Resources": "limits:m requests:m claims:l>ResourceClaim",  # (Volume)ResourceRequirements
    "ResourceClaim": "request:s",
    "VolumeMount": "readOnly:b subPath:s subPathExpr:s",
    "Probe": "exec>Exec httpGet>HTTPGet tcpSocket>TCPSocket initialDelaySeconds:i timeoutSeconds:i "
    "periodSeconds:i successThreshold:i failureThreshold:i",
    "Exec": "command:l",
    "HTTPGet": "path:s host:s scheme:s httpHeaders:l",
    "TCPSocket": "host:s",
    "Lifecycle": "postStart>Handler preStop>Handler",
    "Handler": "exec>Exec httpGet>HTTPGet tcpSocket>TCPSocket",  # LifecycleHandler
    "SecurityContext": "capabilities>Capabilities seLinuxOptions>SELinux",
    "Capabilities": "add:l drop:l",
    "SELinux": "user:s role:s type:s level:s",
    "PodSecurityContext": "seLinuxOptions>SELinux supplementalGroups:l sysctls:l",
    "Toleration": "key:s operator:s value:s effect:s",
    "HostAlias": "hostnames:l",
    "PodDNSConfig": "nameservers:l searches:l options:l>Named",
    "Affinity": "nodeAffinity>NodeAffinity podAffinity>PodAffinity podAntiAffinity>PodAffinity",
    "NodeAffinity": "requiredDuringSchedulingIgnoredDuringExecution>NodeSelector "
    "preferredDuringSchedulingIgnoredDuringExecution:l>PreferredTerm",
    "NodeSelector": "nodeSelectorTerms>NodeSelectorTerm",
    "NodeSelectorTerm": "matchExpressions:l>Requirement matchFields:l>Requirement",
    "PreferredTerm": "preference>NodeSelectorTerm",
    "PodAffinity": "requiredDuringSchedulingIgnoredDuringExecution:l>PodAffinityTerm "
    "preferredDuringSchedulingIgnoredDuringExecution:l>WeightedTerm",
    "PodAffinityTerm": "labelSelector>LabelSelector namespaces:l namespaceSelector>LabelSelector "
    "matchLabelKeys:l mismatchLabelKeys:l",
    "WeightedTerm": "podAffinityTerm>PodAffinityTerm",
    "TopologySpread": "labelSelector>LabelSelector matchLabelKeys:l",
    "Volume": "secret>SecretVolume configMap>KeysVolume emptyDir>EmptyDir projected>Projected "
    "downwardAPI>DownwardAPI persistentVolumeClaim>ReadOnly nfs>ReadOnly csi>CSI ephemeral>Ephemeral",
    "SecretVolume": "secretName:s items:l",
    "KeysVolume": "name:s items:l",  # ConfigMapVolumeSource, Secret- and ConfigMapProjection
    "EmptyDir": "medium:s",
    "Projected": "sources>Projection",
    "Projection": "secret>KeysVolume configMap>KeysVolume downwardAPI>DownwardAPI serviceAccountToken>Token",
    "DownwardAPI": "items:l>DownwardAPIFile",
    "DownwardAPIFile": "fieldRef>FieldRef resourceFieldRef>ResourceFieldRef",
    "Token": "audience:s",
    "ReadOnly": "readOnly:b",  # PersistentVolumeClaimVolumeSource, NFSVolumeSource
    "CSI": "volumeAttributes:m",
    "Ephemeral": "volumeClaimTemplate>Claim",
    "Claim": "metadata>ObjectMeta spec>ClaimSpec",  # PersistentVolumeClaim(Template)
    "ClaimSpec": "accessModes:l selector>LabelSelector resources>Resources volumeName:s",
    "ServiceSpec": "ports:l>ServicePort selector:m clusterIP:s clusterIPs:l type:s externalIPs:l "
    "sessionAffinity:s loadBalancerIP:s loadBalancerSourceRanges:l externalName:s "
    "externalTrafficPolicy:s healthCheckNodePort:i publishNotReadyAddresses:b ipFamilies:l",
    "ServicePort": "name:s protocol:s nodePort:i",
    "DeploymentSpec": "selector>LabelSelector template>PodTemplateSpec strategy>Strategy minReadySeconds:i "
    "paused:b",
    "Strategy": "type:s",  # Deployment-, StatefulSet- and DaemonSetUpdateStrategy
    "ReplicaSetSpec": "minReadySeconds:i selector>LabelSelector template>PodTemplateSpec",
    "StatefulSetSpec": "selector>LabelSelector template>PodTemplateSpec volumeClaimTemplates:l>Claim "
    "podManagementPolicy:s updateStrategy>Strategy minReadySeconds:i "
    "persistentVolumeClaimRetentionPolicy>Retention",
    "Retention": "whenDeleted:s whenScaled:s",
    "DaemonSetSpec": "selector>LabelSelector template>PodTemplateSpec updateStrategy>Strategy "
    "minReadySeconds:i",
    "JobSpec": "selector>LabelSelector template>PodTemplateSpec",
    "CronJobSpec": "concurrencyPolicy:s jobTemplate>JobTemplate",
    "JobTemplate": "metadata>ObjectMeta spec>JobSpec",
    "ReplicationControllerSpec": "minReadySeconds:i selector:m template>PodTemplateSpec",
    "NamespaceSpec": "finalizers:l",
    # the kinds' own fields (metadata is ObjectMeta in every built-in kind)
    ("v1", "Pod"): "spec>PodSpec",
    ("v1", "PodTemplate"): "template>PodTemplateSpec",
    ("v1", "ReplicationController"): "spec>ReplicationControllerSpec",
    ("v1", "Service"): "spec>ServiceSpec",
    ("v1", "PersistentVolumeClaim"): "spec>ClaimSpec",
    ("v1", "ConfigMap"): "data:m binaryData:m",
    ("v1", "Secret"): "data:m stringData:m type:s",
    ("v1", "Namespace"): "spec>NamespaceSpec",
    ("v1", "ServiceAccount"): "secrets:l imagePullSecrets:l>Named",
    ("apps/v1", "Deployment"): "spec>DeploymentSpec",
    ("apps/v1", "ReplicaSet"): "spec>ReplicaSetSpec",
    ("apps/v1", "StatefulSet"): "spec>StatefulSetSpec",
    ("apps/v1", "DaemonSet"): "spec>DaemonSetSpec",
    ("batch/v1", "Job"): "spec>JobSpec",
    ("batch/v1", "CronJob"): "spec>CronJobSpec",
    ("v1", "PersistentVolume"): "spec>PVSpec",
    "PVSpec": "capacity:m accessModes:l storageClassName:s mountOptions:l",  # a string, not a pointer
    ("networking.k8s.io/v1", "NetworkPolicy"): "spec>NetworkPolicySpec",
    "NetworkPolicySpec": "podSelector>LabelSelector ingress:l>NetworkPolicyRule egress:l>NetworkPolicyRule "
    "policyTypes:l",
    "NetworkPolicyRule": "ports:l from:l>Peer to:l>Peer",
    "Peer": "podSelector>LabelSelector namespaceSelector>LabelSelector ipBlock>IPBlock",
    "IPBlock": "except:l",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "subjects:l>Subject",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "subjects:l>Subject",
    "Subject": "apiGroup:s namespace:s",
    ("storage.k8s.io/v1", "StorageClass"): "parameters:m mountOptions:l allowedTopologies:l",
    ("scheduling.k8s.io/v1", "PriorityClass"): "globalDefault:b description:s",
}
_OMIT_EMPTY: Final[dict[Any, dict[str, tuple[str, str]]]] = {
    name: {
        field: (zero, child) for token in fields.split() for field, zero, child in [_omit_empty_field(token)]
    }
    for name, fields in _OMIT_EMPTY_TYPES.items()
}
