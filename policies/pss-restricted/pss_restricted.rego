# Kubernetes Pod Security Standards, Restricted level: only the controls it
# adds on top of Baseline.
#
# https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted
# as enforced by Pod Security admission at policy version "latest"
# (k8s.io/pod-security-admission/policy/check_*.go, Kubernetes 1.35).
#
# Restricted is Baseline plus these rules: evaluate trustgate.pss.baseline
# alongside this package. Where Restricted tightens a Baseline control
# (hostPath -> volume types, seccomp, capabilities, /proc mount), this
# package reports only what Baseline lets through, so one field never
# yields two findings.
#
# "Containers" means containers, initContainers and ephemeralContainers.
package trustgate.pss.restricted

import rego.v1

import data.trustgate.lib.k8s

import data.trustgate.pss.baseline

# ---------------------------------------------------------------------------
# 1. Volume Types: every volume must be one of these sources. A hostPath
# volume is Baseline's finding (pss-baseline-host-path).

allowed_volume_sources := {
	"configMap",
	"csi",
	"downwardAPI",
	"emptyDir",
	"ephemeral",
	"image", # read-only OCI image volumes; allowed by Pod Security admission since 1.33
	"persistentVolumeClaim",
	"projected",
	"secret",
}

deny contains finding if {
	some pod in k8s.pods
	some i, volume in k8s.array_at(pod.spec, "volumes")
	is_object(volume)
	not _allowed_volume(volume)
	not _host_path_volume(volume)
	sources := _volume_sources(volume)
	finding := k8s.pod_finding(
		"pss-restricted-volume-types",
		array.concat(pod.path, array.concat(["volumes", i], _single(sources))),
		sprintf("volume %q uses a volume type Restricted forbids (%s)", [k8s.string_at(volume, "name"), _describe_sources(sources)]),
		"Use a configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected or secret volume; reach other storage through a PersistentVolumeClaim.",
	)
}

_allowed_volume(volume) if {
	some source in allowed_volume_sources
	volume[source] != null
}

_host_path_volume(volume) if volume.hostPath != null

# _volume_sources(volume) are the volume source fields set on a volume.
_volume_sources(volume) := {key |
	some key, value in volume
	key != "name"
	value != null
}

# _single(s) is [the element] of a one-element set, else [].
_single(s) := [x | some x in s] if count(s) == 1

_single(s) := [] if count(s) != 1

_describe_sources(sources) := "no volume source" if count(sources) == 0

_describe_sources(sources) := concat(", ", sort(sources)) if count(sources) > 0

# ---------------------------------------------------------------------------
# 2. Privilege Escalation: allowPrivilegeEscalation must be false on every
# container. Linux-only: pods with spec.os.name: windows are exempt.

deny contains finding if {
	some c in k8s.containers
	not k8s.windows_pod(k8s.pod_of(c))
	not k8s.security_context(c).allowPrivilegeEscalation == false
	finding := k8s.container_finding(
		"pss-restricted-privilege-escalation",
		c,
		["securityContext", "allowPrivilegeEscalation"],
		sprintf("%s does not set securityContext.allowPrivilegeEscalation to false", [k8s.describe(c)]),
		"Set securityContext.allowPrivilegeEscalation: false on the container.",
	)
}

# ---------------------------------------------------------------------------
# 3. Running as Non-root: runAsNonRoot must be true at pod level, or on every
# container; an explicit false anywhere is forbidden. Since 1.35 pods with
# their own user namespace (hostUsers: false) are exempt.

deny contains finding if {
	some pod in k8s.pods
	not k8s.user_namespaced(pod)
	k8s.pod_security_context(pod).runAsNonRoot == false
	finding := k8s.pod_finding(
		"pss-restricted-run-as-non-root",
		array.concat(pod.path, ["securityContext", "runAsNonRoot"]),
		"the pod sets securityContext.runAsNonRoot to false",
		"Set securityContext.runAsNonRoot: true in the pod's securityContext.",
	)
}

deny contains finding if {
	some c in k8s.containers
	pod := k8s.pod_of(c)
	not k8s.user_namespaced(pod)
	value := object.get(k8s.security_context(c), "runAsNonRoot", null)
	value != true
	_container_run_as_non_root_bad(value, pod)
	finding := k8s.container_finding(
		"pss-restricted-run-as-non-root",
		c,
		["securityContext", "runAsNonRoot"],
		_run_as_non_root_msg(c, value),
		"Set securityContext.runAsNonRoot: true on the pod or on this container.",
	)
}

# An explicit non-true value is always bad; an unset one only when the pod
# level does not set runAsNonRoot: true.
_container_run_as_non_root_bad(value, pod) if value != null

_container_run_as_non_root_bad(null, pod) if not k8s.pod_security_context(pod).runAsNonRoot == true

_run_as_non_root_msg(c, null) := sprintf(
	"%s may run as root: neither it nor the pod sets securityContext.runAsNonRoot: true",
	[k8s.describe(c)],
)

_run_as_non_root_msg(c, value) := sprintf(
	"%s sets securityContext.runAsNonRoot to %v",
	[k8s.describe(c), value],
) if value != null

# ---------------------------------------------------------------------------
# 4. Running as Non-root user: runAsUser must not be 0 at pod or container
# level (undefined is allowed). Since 1.35 pods with their own user
# namespace (hostUsers: false) are exempt.

deny contains finding if {
	some pod in k8s.pods
	not k8s.user_namespaced(pod)
	k8s.pod_security_context(pod).runAsUser == 0
	finding := k8s.pod_finding(
		"pss-restricted-run-as-user",
		array.concat(pod.path, ["securityContext", "runAsUser"]),
		"the pod runs as root (securityContext.runAsUser: 0)",
		"Set securityContext.runAsUser to a non-zero UID, or remove it and run an image with a non-root USER.",
	)
}

deny contains finding if {
	some c in k8s.containers
	not k8s.user_namespaced(k8s.pod_of(c))
	k8s.security_context(c).runAsUser == 0
	finding := k8s.container_finding(
		"pss-restricted-run-as-user",
		c,
		["securityContext", "runAsUser"],
		sprintf("%s runs as root (securityContext.runAsUser: 0)", [k8s.describe(c)]),
		"Set securityContext.runAsUser to a non-zero UID, or remove it and run an image with a non-root USER.",
	)
}

# ---------------------------------------------------------------------------
# 5. Seccomp: RuntimeDefault or Localhost must be set at pod level or on
# every container. Linux-only: pods with spec.os.name: windows are exempt.
# A profile set to another value is Baseline's finding (pss-baseline-seccomp);
# here: containers left without a valid profile.

deny contains finding if {
	some c in k8s.containers
	pod := k8s.pod_of(c)
	not k8s.windows_pod(pod)
	object.get(k8s.security_context(c), "seccompProfile", null) == null
	not _valid_seccomp(k8s.pod_security_context(pod))
	finding := k8s.container_finding(
		"pss-restricted-seccomp",
		c,
		["securityContext", "seccompProfile", "type"],
		sprintf("%s has no seccomp profile: neither it nor the pod sets securityContext.seccompProfile.type", [k8s.describe(c)]),
		"Set securityContext.seccompProfile.type: RuntimeDefault (or Localhost) on the pod or on this container.",
	)
}

_valid_seccomp(security_context) if security_context.seccompProfile.type in baseline.allowed_seccomp_types

# ---------------------------------------------------------------------------
# 6. Capabilities: every container must drop ALL and may add back only
# NET_BIND_SERVICE. Linux-only: pods with spec.os.name: windows are exempt.
# Adding a capability outside the Baseline set is Baseline's finding
# (pss-baseline-capabilities); here: the Baseline ones Restricted forbids.

deny contains finding if {
	some c in k8s.containers
	not k8s.windows_pod(k8s.pod_of(c))
	capabilities := k8s.object_at(k8s.security_context(c), "capabilities")
	not "ALL" in k8s.array_at(capabilities, "drop")
	finding := k8s.container_finding(
		"pss-restricted-capabilities",
		c,
		["securityContext", "capabilities", "drop"],
		sprintf("%s does not drop all capabilities (securityContext.capabilities.drop lacks \"ALL\")", [k8s.describe(c)]),
		"Set securityContext.capabilities.drop: [\"ALL\"] and add back only NET_BIND_SERVICE if needed.",
	)
}

deny contains finding if {
	some c in k8s.containers
	not k8s.windows_pod(k8s.pod_of(c))
	capabilities := k8s.object_at(k8s.security_context(c), "capabilities")
	some i, capability in k8s.array_at(capabilities, "add")
	capability != "NET_BIND_SERVICE"
	capability in baseline.allowed_capabilities
	finding := k8s.container_finding(
		"pss-restricted-capabilities",
		c,
		["securityContext", "capabilities", "add", i],
		sprintf("%s adds capability %v; Restricted allows adding only NET_BIND_SERVICE", [k8s.describe(c), capability]),
		"Remove the capability from securityContext.capabilities.add; only NET_BIND_SERVICE may be added.",
	)
}

# ---------------------------------------------------------------------------
# 7. /proc Mount Type: Restricted requires the default /proc masks even in a
# pod with its own user namespace, where Baseline (since 1.35) allows any
# value. Outside user namespaces Baseline already reports it
# (pss-baseline-proc-mount).

deny contains finding if {
	some c in k8s.containers
	k8s.user_namespaced(k8s.pod_of(c))
	proc_mount := k8s.security_context(c).procMount
	not proc_mount in {"Default", null}
	finding := k8s.container_finding(
		"pss-restricted-proc-mount",
		c,
		["securityContext", "procMount"],
		sprintf("%s unmasks /proc (securityContext.procMount: %v)", [k8s.describe(c), proc_mount]),
		"Remove securityContext.procMount or set it to Default.",
	)
}
