# Kubernetes Pod Security Standards, Baseline level.
#
# One rule id per Baseline control of
# https://kubernetes.io/docs/concepts/security/pod-security-standards/#baseline
# as enforced by Pod Security admission at policy version "latest"
# (k8s.io/pod-security-admission/policy/check_*.go, Kubernetes 1.35).
# Comments number the controls in the order the standard lists them.
#
# "Containers" means containers, initContainers and ephemeralContainers,
# as in the standard's spec.{containers,initContainers,ephemeralContainers}[*].
# Every finding is a deny: Baseline prevents known privilege escalations.
#
# Speed: trustgate evaluates every document against this package, and
# regorus charges about a microsecond per rule body, function call and
# builtin call (policies/README.md, "Writing fast policies"; measured by
# bench/policies.py). So the finding rules are gated on the document
# being a workload; they read the pod and containers that lib computes once
# per evaluation, with security contexts and descriptions precomputed; each
# tests the cheapest, most selective condition first; and helper functions
# are called only once a rule has found something.
package trustgate.pss.baseline

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
# 1. HostProcess: Windows HostProcess containers get privileged access to
# the node. Allowed: undefined/nil, false.

_deny contains finding if {
	data.trustgate.lib.k8s.pod.security_context.windowsOptions.hostProcess == true
	finding := k8s.pod_finding(
		"pss-baseline-host-process",
		array.concat(data.trustgate.lib.k8s.pod.path, ["securityContext", "windowsOptions", "hostProcess"]),
		"the pod runs Windows HostProcess containers (securityContext.windowsOptions.hostProcess: true)",
		"Remove securityContext.windowsOptions.hostProcess or set it to false.",
	)
}

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	c.security_context.windowsOptions.hostProcess == true
	finding := k8s.container_finding(
		"pss-baseline-host-process",
		c,
		["securityContext", "windowsOptions", "hostProcess"],
		sprintf("%s is a Windows HostProcess container (securityContext.windowsOptions.hostProcess: true)", [c.description]),
		"Remove securityContext.windowsOptions.hostProcess or set it to false.",
	)
}

# ---------------------------------------------------------------------------
# 2. Host Namespaces: sharing the host's network, PID or IPC namespace.
# Allowed: undefined/nil, false.

_deny contains finding if {
	spec := data.trustgate.lib.k8s.pod.spec # bound first: a[b][var] costs more than x[var]
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	spec[field] == true
	finding := k8s.pod_finding(
		"pss-baseline-host-namespaces",
		array.concat(data.trustgate.lib.k8s.pod.path, [field]),
		sprintf("the pod shares a host namespace (%s: true)", [field]),
		sprintf("Remove %s or set it to false.", [field]),
	)
}

# ---------------------------------------------------------------------------
# 3. Privileged Containers. Allowed: undefined/nil, false.

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	c.security_context.privileged == true
	finding := k8s.container_finding(
		"pss-baseline-privileged",
		c,
		["securityContext", "privileged"],
		sprintf("%s runs privileged (securityContext.privileged: true)", [c.description]),
		"Remove securityContext.privileged or set it to false.",
	)
}

# ---------------------------------------------------------------------------
# 4. Capabilities: nothing may be added beyond this list.

allowed_capabilities := data.trustgate.lib.k8s.pss_baseline_capabilities

# A field reference through a value of the wrong type (capabilities: "x") is
# undefined, not an error; only the iteration needs the is_array guard.
_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	added := c.security_context.capabilities.add
	is_array(added)
	some i, capability in added
	not capability in allowed_capabilities
	finding := k8s.container_finding(
		"pss-baseline-capabilities",
		c,
		["securityContext", "capabilities", "add", i],
		sprintf("%s adds capability %v, which is outside the Baseline set (securityContext.capabilities.add)", [c.description, capability]),
		"Remove the capability from securityContext.capabilities.add; Baseline allows adding only the runtime's default capabilities.",
	)
}

# ---------------------------------------------------------------------------
# 5. HostPath Volumes. Allowed: undefined/nil.

_deny contains finding if {
	volumes := data.trustgate.lib.k8s.pod.spec.volumes
	volumes >= [] # is_array(volumes), without the call (see "Type tests" in lib) ...
	volumes < {}
	some i, volume in volumes
	host_path := volume.hostPath
	host_path != null
	finding := k8s.pod_finding(
		"pss-baseline-host-path",
		array.concat(data.trustgate.lib.k8s.pod.path, ["volumes", i, "hostPath"]),
		sprintf("volume %q mounts a path from the node (hostPath)", [k8s.string_at(volume, "name")]),
		"Replace the hostPath volume with an emptyDir, configMap, secret or persistentVolumeClaim volume.",
	)
}

# ---------------------------------------------------------------------------
# 6. Host Ports. Allowed: undefined/nil, 0. (The standard lets an operator
# allow a known list; this policy, like Pod Security admission, allows none.)
# Pod Security admission judges the pod the API server has defaulted, where a
# host-network pod's container ports are host ports (second rule).

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	ports := c.container.ports
	ports >= [] # is_array(ports), without the call (see "Type tests" in lib) ...
	ports < {}
	some i, port in ports
	host_port := port.hostPort
	not host_port in {0, null}
	finding := k8s.container_finding(
		"pss-baseline-host-ports",
		c,
		["ports", i, "hostPort"],
		sprintf("%s binds node port %v (ports[%d].hostPort)", [c.description, host_port, i]),
		"Remove hostPort and expose the container through a Service instead.",
	)
}

# Under hostNetwork: true the API server sets a port's hostPort to its
# containerPort when hostPort is unset or 0 (SetDefaults_Pod, for containers
# and init containers; for a pod template too before Kubernetes 1.28, and
# after only with the DefaultHostNetworkHostPortsInPodTemplates gate), so Pod
# Security admission fails every Pod made from it on that host port: the
# manifest as written would pass here and the Pods be denied. The finding
# names what was written, containerPort. Only a pod with hostNetwork: true
# gets past the first expression.
_deny contains finding if {
	data.trustgate.lib.k8s.pod.spec.hostNetwork == true
	some c in data.trustgate.lib.k8s.containers
	c.type != "ephemeralContainers" # not defaulted (and ports are invalid there)
	ports := c.container.ports
	ports >= [] # is_array(ports), without the call (see "Type tests" in lib) ...
	ports < {}
	some i, port in ports
	container_port := port.containerPort
	not container_port in {0, null}
	not _sets_host_port(port) # else the rule above reports the hostPort written
	finding := k8s.container_finding(
		"pss-baseline-host-ports",
		c,
		["ports", i, "containerPort"],
		sprintf("%s binds node port %v (ports[%d].containerPort under hostNetwork: true)", [c.description, container_port, i]),
		"Under hostNetwork: true the API server makes containerPort a host port (hostPort: containerPort): remove the ports entry (the container listens on the node anyway), or waive pss-baseline-host-ports with an exception.",
	)
}

# _sets_host_port(port) holds when port sets a hostPort other than 0.
_sets_host_port(port) if {
	host_port := port.hostPort
	not host_port in {0, null}
}

# ---------------------------------------------------------------------------
# 7. Host Probes / Lifecycle Hooks (Kubernetes 1.34+): probes and lifecycle
# handlers must not target another host. Allowed: undefined/nil, "".
# (The field names are inline literals: a constant rule is rebuilt on every
# evaluation. Each level is bound to a variable before it is indexed with the
# next loop variable: regorus evaluates a reference with two variable
# indexes, x[probe][handler], many times slower.)

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	container := c.container
	some probe in ["livenessProbe", "readinessProbe", "startupProbe"]
	handlers := container[probe]
	some handler in ["httpGet", "tcpSocket"]
	host := handlers[handler].host
	not host in {"", null}
	finding := k8s.container_finding(
		"pss-baseline-host-probes",
		c,
		[probe, handler, "host"],
		sprintf("%s points %s.%s at host %v", [c.description, probe, handler, host]),
		sprintf("Remove %s.%s.host so the probe targets the pod's own IP.", [probe, handler]),
	)
}

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	lifecycle := c.container.lifecycle # most containers stop here
	some hook in ["postStart", "preStop"]
	handlers := lifecycle[hook]
	some handler in ["httpGet", "tcpSocket"]
	host := handlers[handler].host
	not host in {"", null}
	finding := k8s.container_finding(
		"pss-baseline-host-probes",
		c,
		["lifecycle", hook, handler, "host"],
		sprintf("%s points lifecycle.%s.%s at host %v", [c.description, hook, handler, host]),
		sprintf("Remove lifecycle.%s.%s.host so the hook targets the pod's own IP.", [hook, handler]),
	)
}

# ---------------------------------------------------------------------------
# 8. AppArmor: the profile may not be overridden with an unconfined one.
# Fields (since 1.30): securityContext.appArmorProfile.type at pod and
# container level; allowed undefined/nil, RuntimeDefault, Localhost.
# Annotations container.apparmor.security.beta.kubernetes.io/<container> on
# the pod (template) metadata; allowed undefined, "", runtime/default,
# localhost/<profile>.

allowed_apparmor_types := {"RuntimeDefault", "Localhost"}

_apparmor_annotation_prefix := "container.apparmor.security.beta.kubernetes.io/"

_allowed_apparmor_annotation(value) if value in {"", "runtime/default"}

_allowed_apparmor_annotation(value) if {
	is_string(value)
	startswith(value, "localhost/")
}

_deny contains finding if {
	profile := data.trustgate.lib.k8s.pod.security_context.appArmorProfile
	profile != null
	not profile.type in allowed_apparmor_types # a valid profile stops here, without a call
	profile_type := object.get(k8s.as_object(profile), "type", "")
	not profile_type in allowed_apparmor_types
	finding := k8s.pod_finding(
		"pss-baseline-apparmor",
		array.concat(data.trustgate.lib.k8s.pod.path, ["securityContext", "appArmorProfile", "type"]),
		sprintf("the pod sets AppArmor profile type %s (securityContext.appArmorProfile.type)", [k8s.quote(profile_type)]),
		"Set securityContext.appArmorProfile.type to RuntimeDefault or Localhost, or remove it.",
	)
}

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	profile := c.security_context.appArmorProfile
	profile != null
	not profile.type in allowed_apparmor_types # a valid profile stops here, without a call
	profile_type := object.get(k8s.as_object(profile), "type", "")
	not profile_type in allowed_apparmor_types
	finding := k8s.container_finding(
		"pss-baseline-apparmor",
		c,
		["securityContext", "appArmorProfile", "type"],
		sprintf("%s sets AppArmor profile type %s (securityContext.appArmorProfile.type)", [c.description, k8s.quote(profile_type)]),
		"Set securityContext.appArmorProfile.type to RuntimeDefault or Localhost, or remove it.",
	)
}

# _bad_apparmor_annotations are the [key, value, container name] of the pod's
# AppArmor annotations that set a forbidden profile; computed once for the
# two rules below.
_bad_apparmor_annotations contains [key, value, name] if {
	annotations := data.trustgate.lib.k8s.pod.metadata.annotations
	annotations >= {} # is_object(annotations), without the call (see "Type tests" in lib)
	some key, value in annotations
	# startswith(key, _apparmor_annotation_prefix) without the builtin calls
	# (is_string, startswith) that would cost a microsecond each for every
	# annotation: the keys with that prefix are the strings from the prefix
	# up to, not including, the prefix with its final "/" raised to "0". Keys
	# that are not strings fall outside: Rego orders null, booleans and
	# numbers before all strings, arrays and objects after.
	key >= "container.apparmor.security.beta.kubernetes.io/"
	key < "container.apparmor.security.beta.kubernetes.io0"
	not _allowed_apparmor_annotation(value)
	name := substring(key, count(_apparmor_annotation_prefix), -1)
}

# The annotation names its container; report against that container when
# it exists so the finding carries its name and image.
_deny contains finding if {
	some [key, value, name] in _bad_apparmor_annotations
	some c in data.trustgate.lib.k8s.containers
	c.name == name
	finding := {
		"msg": sprintf("%s has AppArmor profile %v from annotation %s", [c.description, value, key]),
		"rule": "pss-baseline-apparmor",
		"fix": _apparmor_annotation_fix(key),
		"path": array.concat(data.trustgate.lib.k8s.pod.metadata_path, ["annotations", key]),
		"container": c.name,
		"image": c.image,
	}
}

_deny contains finding if {
	some [key, value, name] in _bad_apparmor_annotations
	not _has_container_named(name)
	finding := k8s.pod_finding(
		"pss-baseline-apparmor",
		array.concat(data.trustgate.lib.k8s.pod.metadata_path, ["annotations", key]),
		sprintf("annotation %s sets AppArmor profile %v", [key, value]),
		_apparmor_annotation_fix(key),
	)
}

_has_container_named(name) if {
	some c in data.trustgate.lib.k8s.containers
	c.name == name
}

_apparmor_annotation_fix(key) := sprintf(
	"Set annotation %s to runtime/default or localhost/<profile>, or better use securityContext.appArmorProfile.",
	[key],
)

# ---------------------------------------------------------------------------
# 9. SELinux: the type is limited to the container types below and a custom
# user or role is forbidden, at pod and container level.
# Allowed type: undefined/"", container_t, container_init_t, container_kvm_t,
# container_engine_t (since 1.31). Allowed user and role: undefined/"".

allowed_selinux_types := {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

# A seLinuxOptions that is not an object has no fields: options[field] is
# undefined then, as when the field is absent.
_deny contains finding if {
	options := data.trustgate.lib.k8s.pod.security_context.seLinuxOptions
	some field in ["type", "user", "role"]
	value := options[field]
	value != null
	_selinux_forbidden(field, value)
	finding := k8s.pod_finding(
		"pss-baseline-selinux",
		array.concat(data.trustgate.lib.k8s.pod.path, ["securityContext", "seLinuxOptions", field]),
		sprintf("the pod sets forbidden SELinux %s %s (securityContext.seLinuxOptions.%s)", [field, k8s.quote(value), field]),
		_selinux_fix(field),
	)
}

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	options := c.security_context.seLinuxOptions
	some field in ["type", "user", "role"]
	value := options[field]
	value != null
	_selinux_forbidden(field, value)
	finding := k8s.container_finding(
		"pss-baseline-selinux",
		c,
		["securityContext", "seLinuxOptions", field],
		sprintf("%s sets forbidden SELinux %s %s (securityContext.seLinuxOptions.%s)", [c.description, field, k8s.quote(value), field]),
		_selinux_fix(field),
	)
}

_selinux_forbidden("type", value) if not value in allowed_selinux_types

_selinux_forbidden(field, value) if {
	field in {"user", "role"}
	value != ""
}

_selinux_fix("type") := "Remove securityContext.seLinuxOptions.type or set it to container_t, container_init_t, container_kvm_t or container_engine_t."

_selinux_fix(field) := sprintf("Remove securityContext.seLinuxOptions.%s.", [field]) if field in {"user", "role"}

# ---------------------------------------------------------------------------
# 10. /proc Mount Type: the default /proc masks are required.
# Allowed: undefined/nil, Default. Since 1.35 any value is allowed in a pod
# with its own user namespace (hostUsers: false); Restricted still forbids it
# (see pss-restricted-proc-mount).

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	proc_mount := c.security_context.procMount
	not proc_mount in {"Default", null}
	not data.trustgate.lib.k8s.pod_user_namespaced
	finding := k8s.container_finding(
		"pss-baseline-proc-mount",
		c,
		["securityContext", "procMount"],
		sprintf("%s unmasks /proc (securityContext.procMount: %v)", [c.description, proc_mount]),
		"Remove securityContext.procMount or set it to Default.",
	)
}

# ---------------------------------------------------------------------------
# 11. Seccomp: the profile may not be set to Unconfined, at pod or container
# level. Allowed: undefined/nil, RuntimeDefault, Localhost.

allowed_seccomp_types := data.trustgate.lib.k8s.pss_seccomp_types

_deny contains finding if {
	profile := data.trustgate.lib.k8s.pod.security_context.seccompProfile
	profile != null
	not _allowed_seccomp_type(profile) # a valid profile stops here
	profile_type := object.get(k8s.as_object(profile), "type", "")
	not profile_type in allowed_seccomp_types
	finding := k8s.pod_finding(
		"pss-baseline-seccomp",
		array.concat(data.trustgate.lib.k8s.pod.path, ["securityContext", "seccompProfile", "type"]),
		sprintf("the pod sets seccomp profile type %s (securityContext.seccompProfile.type)", [k8s.quote(profile_type)]),
		"Set securityContext.seccompProfile.type to RuntimeDefault or Localhost.",
	)
}

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	profile := c.security_context.seccompProfile
	profile != null
	not _allowed_seccomp_type(profile) # a valid profile stops here
	profile_type := object.get(k8s.as_object(profile), "type", "")
	not profile_type in allowed_seccomp_types
	finding := k8s.container_finding(
		"pss-baseline-seccomp",
		c,
		["securityContext", "seccompProfile", "type"],
		sprintf("%s sets seccomp profile type %s (securityContext.seccompProfile.type)", [c.description, k8s.quote(profile_type)]),
		"Set securityContext.seccompProfile.type to RuntimeDefault or Localhost.",
	)
}

# ---------------------------------------------------------------------------
# 12. Sysctls: only the namespaced, isolated "safe" set, pod level only.

allowed_sysctls := {
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_local_reserved_ports", # since 1.27
	"net.ipv4.tcp_keepalive_time", # since 1.29
	"net.ipv4.tcp_fin_timeout", # since 1.29
	"net.ipv4.tcp_keepalive_intvl", # since 1.29
	"net.ipv4.tcp_keepalive_probes", # since 1.29
	"net.ipv4.tcp_rmem", # since 1.32
	"net.ipv4.tcp_wmem", # since 1.32
}

_deny contains finding if {
	sysctls := data.trustgate.lib.k8s.pod.security_context.sysctls
	is_array(sysctls)
	some i, sysctl in sysctls
	name := object.get(k8s.as_object(sysctl), "name", "")
	not name in allowed_sysctls
	finding := k8s.pod_finding(
		"pss-baseline-sysctls",
		array.concat(data.trustgate.lib.k8s.pod.path, ["securityContext", "sysctls", i, "name"]),
		sprintf("the pod sets unsafe sysctl %v (securityContext.sysctls[%d].name)", [name, i]),
		"Remove the sysctl; Baseline allows only the safe, namespaced sysctls listed by the Pod Security Standards.",
	)
}

# `not profile.type in allowed` would be undefined in OPA when `type` is unset (a
# reference in a negated call is evaluated outside the negation): ask a function.
_allowed_seccomp_type(profile) if profile.type in allowed_seccomp_types
