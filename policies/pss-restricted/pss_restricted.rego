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
#
# Speed: see the notes in pss_baseline.rego; the same patterns apply here.
package trustgate.pss.restricted

import rego.v1

# Rules of other packages are referenced by their full path
# (data.trustgate.lib.k8s.containers): a reference through a package import
# (k8s.containers) makes regorus evaluate every rule of that package first,
# and one through an import of the rule itself costs a little more per use.
# Functions are fine through the package import.
import data.trustgate.lib.k8s

# Every rule below adds to _deny; deny passes it on for workloads only. A
# document that is not a workload stops at the workload reference, so
# regorus never evaluates the rules below for it.
deny contains finding if {
	data.trustgate.lib.k8s.workload
	some finding in _deny
}

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

_deny contains finding if {
	volumes := data.trustgate.lib.k8s.pod.spec.volumes
	volumes >= [] # is_array(volumes), without the call (see "Type tests" in lib) ...
	volumes < {}
	some i, volume in volumes
	not _allowed_volume(volume) # before is_object: most volumes stop here
	is_object(volume)
	not _host_path_volume(volume)
	sources := _volume_sources(volume)
	finding := k8s.pod_finding(
		"pss-restricted-volume-types",
		array.concat(data.trustgate.lib.k8s.pod.path, array.concat(["volumes", i], _single(sources))),
		sprintf("volume %q uses a volume type Restricted forbids (%s)", [k8s.string_at(volume, "name"), _describe_sources(sources)]),
		"Use a configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected or secret volume; reach other storage through a PersistentVolumeClaim.",
	)
}

# _allowed_volume(volume) holds when one of allowed_volume_sources is set
# (not null) on volume. A chain of field tests, most common sources first,
# rather than a walk over allowed_volume_sources: each iteration step and
# call costs microseconds in regorus, and most volumes stop at the first
# or second test. pss_restricted_test.rego checks that the chain covers
# allowed_volume_sources.
_allowed_volume(volume) if volume.emptyDir != null
else if volume.configMap != null
else if volume.secret != null
else if volume.persistentVolumeClaim != null
else if volume.projected != null
else if volume.downwardAPI != null
else if volume.csi != null
else if volume.ephemeral != null
else if volume.image != null
else if _defaulted_empty_dir(volume)

# _defaulted_empty_dir(volume) holds when the volume sets no source: the API server
# makes it an emptyDir (SetDefaults_Volume) before admission, and Pod Security
# admission judges that.
_defaulted_empty_dir(volume) if {
	is_object(volume)
	count(_volume_sources(volume)) == 0
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

_describe_sources(sources) := concat(", ", sort(sources)) if count(sources) > 0

# ---------------------------------------------------------------------------
# 2. Privilege Escalation: allowPrivilegeEscalation must be false on every
# container. Linux-only: pods with spec.os.name: windows are exempt.

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	not c.security_context.allowPrivilegeEscalation == false
	not data.trustgate.lib.k8s.pod_windows
	finding := k8s.container_finding(
		"pss-restricted-privilege-escalation",
		c,
		["securityContext", "allowPrivilegeEscalation"],
		sprintf("%s does not set securityContext.allowPrivilegeEscalation to false", [c.description]),
		"Set securityContext.allowPrivilegeEscalation: false on the container.",
	)
}

# ---------------------------------------------------------------------------
# 3. Running as Non-root: runAsNonRoot must be true at pod level, or on every
# container; an explicit false anywhere is forbidden. Since 1.35 pods with
# their own user namespace (hostUsers: false) are exempt.

_deny contains finding if {
	data.trustgate.lib.k8s.pod.security_context.runAsNonRoot == false
	not data.trustgate.lib.k8s.pod_user_namespaced
	finding := k8s.pod_finding(
		"pss-restricted-run-as-non-root",
		array.concat(data.trustgate.lib.k8s.pod.path, ["securityContext", "runAsNonRoot"]),
		"the pod sets securityContext.runAsNonRoot to false",
		"Set securityContext.runAsNonRoot: true in the pod's securityContext.",
	)
}

# An explicit non-true value is always bad; an unset (or null) one only when
# the pod does not set runAsNonRoot: true.
_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	value := c.security_context.runAsNonRoot
	value != true
	value != null
	not data.trustgate.lib.k8s.pod_user_namespaced
	finding := k8s.container_finding(
		"pss-restricted-run-as-non-root",
		c,
		["securityContext", "runAsNonRoot"],
		sprintf("%s sets securityContext.runAsNonRoot to %v", [c.description, value]),
		"Set securityContext.runAsNonRoot: true on the pod or on this container.",
	)
}

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	not _set(c.security_context, "runAsNonRoot") # unset or null
	not data.trustgate.lib.k8s.pod.security_context.runAsNonRoot == true
	not data.trustgate.lib.k8s.pod_user_namespaced
	finding := k8s.container_finding(
		"pss-restricted-run-as-non-root",
		c,
		["securityContext", "runAsNonRoot"],
		sprintf("%s may run as root: neither it nor the pod sets securityContext.runAsNonRoot: true", [c.description]),
		"Set securityContext.runAsNonRoot: true on the pod or on this container.",
	)
}

# ---------------------------------------------------------------------------
# 4. Running as Non-root user: runAsUser must not be 0 at pod or container
# level (undefined is allowed). Since 1.35 pods with their own user
# namespace (hostUsers: false) are exempt.

_deny contains finding if {
	data.trustgate.lib.k8s.pod.security_context.runAsUser == 0
	not data.trustgate.lib.k8s.pod_user_namespaced
	finding := k8s.pod_finding(
		"pss-restricted-run-as-user",
		array.concat(data.trustgate.lib.k8s.pod.path, ["securityContext", "runAsUser"]),
		"the pod runs as root (securityContext.runAsUser: 0)",
		"Set securityContext.runAsUser to a non-zero UID, or remove it and run an image with a non-root USER.",
	)
}

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	c.security_context.runAsUser == 0
	not data.trustgate.lib.k8s.pod_user_namespaced
	finding := k8s.container_finding(
		"pss-restricted-run-as-user",
		c,
		["securityContext", "runAsUser"],
		sprintf("%s runs as root (securityContext.runAsUser: 0)", [c.description]),
		"Set securityContext.runAsUser to a non-zero UID, or remove it and run an image with a non-root USER.",
	)
}

# ---------------------------------------------------------------------------
# 5. Seccomp: RuntimeDefault or Localhost must be set at pod level or on
# every container. Linux-only: pods with spec.os.name: windows are exempt.
# A profile set to another value is Baseline's finding (pss-baseline-seccomp);
# here: containers left without a valid profile.

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	not _set(c.security_context, "seccompProfile") # unset or null
	not _pod_valid_seccomp
	not data.trustgate.lib.k8s.pod_windows
	finding := k8s.container_finding(
		"pss-restricted-seccomp",
		c,
		["securityContext", "seccompProfile", "type"],
		sprintf("%s has no seccomp profile: neither it nor the pod sets securityContext.seccompProfile.type", [c.description]),
		"Set securityContext.seccompProfile.type: RuntimeDefault (or Localhost) on the pod or on this container.",
	)
}

# The pod sets a valid profile (a rule: computed once for all containers).
_pod_valid_seccomp if {
	profile_type := data.trustgate.lib.k8s.pod.security_context.seccompProfile.type
	profile_type in data.trustgate.lib.k8s.pss_seccomp_types
}

# ---------------------------------------------------------------------------
# 6. Capabilities: every container must drop ALL and may add back only
# NET_BIND_SERVICE. Linux-only: pods with spec.os.name: windows are exempt.
# Adding a capability outside the Baseline set is Baseline's finding
# (pss-baseline-capabilities); here: the Baseline ones Restricted forbids.

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	not _drops_all(c)
	not data.trustgate.lib.k8s.pod_windows
	finding := k8s.container_finding(
		"pss-restricted-capabilities",
		c,
		["securityContext", "capabilities", "drop"],
		sprintf("%s does not drop all capabilities (securityContext.capabilities.drop lacks \"ALL\")", [c.description]),
		"Set securityContext.capabilities.drop: [\"ALL\"] and add back only NET_BIND_SERVICE if needed.",
	)
}

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	added := c.security_context.capabilities.add
	is_array(added)
	not data.trustgate.lib.k8s.pod_windows
	some i, capability in added
	capability != "NET_BIND_SERVICE"
	capability in data.trustgate.lib.k8s.pss_baseline_capabilities
	finding := k8s.container_finding(
		"pss-restricted-capabilities",
		c,
		["securityContext", "capabilities", "add", i],
		sprintf("%s adds capability %v; Restricted allows adding only NET_BIND_SERVICE", [c.description, capability]),
		"Remove the capability from securityContext.capabilities.add; only NET_BIND_SERVICE may be added.",
	)
}

# _drops_all(c): c's capabilities.drop is a list with "ALL" (`in` alone would
# also search the values of an object).
_drops_all(c) if {
	drop := c.security_context.capabilities.drop
	drop >= [] # is_array(drop), without the call (see "Type tests" in lib) ...
	drop < {}
	"ALL" in drop
}

# ---------------------------------------------------------------------------
# 7. /proc Mount Type: Restricted requires the default /proc masks even in a
# pod with its own user namespace, where Baseline (since 1.35) allows any
# value. Outside user namespaces Baseline already reports it
# (pss-baseline-proc-mount).

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	proc_mount := c.security_context.procMount
	not proc_mount in {"Default", null}
	data.trustgate.lib.k8s.pod_user_namespaced
	finding := k8s.container_finding(
		"pss-restricted-proc-mount",
		c,
		["securityContext", "procMount"],
		sprintf("%s unmasks /proc (securityContext.procMount: %v)", [c.description, proc_mount]),
		"Remove securityContext.procMount or set it to Default.",
	)
}

# A field that is present and not null. `not obj.field != null` would be undefined in
# OPA when the field is unset (the reference is evaluated outside the negation).
_set(obj, key) if obj[key] != null
