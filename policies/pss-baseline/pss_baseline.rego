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
package trustgate.pss.baseline

import rego.v1

import data.trustgate.lib.k8s

# ---------------------------------------------------------------------------
# 1. HostProcess: Windows HostProcess containers get privileged access to
# the node. Allowed: undefined/nil, false.

deny contains finding if {
	some pod in k8s.pods
	k8s.pod_security_context(pod).windowsOptions.hostProcess == true
	finding := k8s.pod_finding(
		"pss-baseline-host-process",
		array.concat(pod.path, ["securityContext", "windowsOptions", "hostProcess"]),
		"the pod runs Windows HostProcess containers (securityContext.windowsOptions.hostProcess: true)",
		"Remove securityContext.windowsOptions.hostProcess or set it to false.",
	)
}

deny contains finding if {
	some c in k8s.containers
	k8s.security_context(c).windowsOptions.hostProcess == true
	finding := k8s.container_finding(
		"pss-baseline-host-process",
		c,
		["securityContext", "windowsOptions", "hostProcess"],
		sprintf("%s is a Windows HostProcess container (securityContext.windowsOptions.hostProcess: true)", [k8s.describe(c)]),
		"Remove securityContext.windowsOptions.hostProcess or set it to false.",
	)
}

# ---------------------------------------------------------------------------
# 2. Host Namespaces: sharing the host's network, PID or IPC namespace.
# Allowed: undefined/nil, false.

deny contains finding if {
	some pod in k8s.pods
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	pod.spec[field] == true
	finding := k8s.pod_finding(
		"pss-baseline-host-namespaces",
		array.concat(pod.path, [field]),
		sprintf("the pod shares a host namespace (%s: true)", [field]),
		sprintf("Remove %s or set it to false.", [field]),
	)
}

# ---------------------------------------------------------------------------
# 3. Privileged Containers. Allowed: undefined/nil, false.

deny contains finding if {
	some c in k8s.containers
	k8s.security_context(c).privileged == true
	finding := k8s.container_finding(
		"pss-baseline-privileged",
		c,
		["securityContext", "privileged"],
		sprintf("%s runs privileged (securityContext.privileged: true)", [k8s.describe(c)]),
		"Remove securityContext.privileged or set it to false.",
	)
}

# ---------------------------------------------------------------------------
# 4. Capabilities: nothing may be added beyond this list.

allowed_capabilities := {
	"AUDIT_WRITE",
	"CHOWN",
	"DAC_OVERRIDE",
	"FOWNER",
	"FSETID",
	"KILL",
	"MKNOD",
	"NET_BIND_SERVICE",
	"SETFCAP",
	"SETGID",
	"SETPCAP",
	"SETUID",
	"SYS_CHROOT",
}

deny contains finding if {
	some c in k8s.containers
	capabilities := k8s.object_at(k8s.security_context(c), "capabilities")
	some i, capability in k8s.array_at(capabilities, "add")
	not capability in allowed_capabilities
	finding := k8s.container_finding(
		"pss-baseline-capabilities",
		c,
		["securityContext", "capabilities", "add", i],
		sprintf("%s adds capability %v, which is outside the Baseline set (securityContext.capabilities.add)", [k8s.describe(c), capability]),
		"Remove the capability from securityContext.capabilities.add; Baseline allows adding only the runtime's default capabilities.",
	)
}

# ---------------------------------------------------------------------------
# 5. HostPath Volumes. Allowed: undefined/nil.

deny contains finding if {
	some pod in k8s.pods
	some i, volume in k8s.array_at(pod.spec, "volumes")
	host_path := volume.hostPath
	host_path != null
	finding := k8s.pod_finding(
		"pss-baseline-host-path",
		array.concat(pod.path, ["volumes", i, "hostPath"]),
		sprintf("volume %q mounts a path from the node (hostPath)", [k8s.string_at(volume, "name")]),
		"Replace the hostPath volume with an emptyDir, configMap, secret or persistentVolumeClaim volume.",
	)
}

# ---------------------------------------------------------------------------
# 6. Host Ports. Allowed: undefined/nil, 0. (The standard lets an operator
# allow a known list; this policy, like Pod Security admission, allows none.)

deny contains finding if {
	some c in k8s.containers
	some i, port in k8s.array_at(c.container, "ports")
	host_port := port.hostPort
	not host_port in {0, null}
	finding := k8s.container_finding(
		"pss-baseline-host-ports",
		c,
		["ports", i, "hostPort"],
		sprintf("%s binds node port %v (ports[%d].hostPort)", [k8s.describe(c), host_port, i]),
		"Remove hostPort and expose the container through a Service instead.",
	)
}

# ---------------------------------------------------------------------------
# 7. Host Probes / Lifecycle Hooks (Kubernetes 1.34+): probes and lifecycle
# handlers must not target another host. Allowed: undefined/nil, "".

_probe_fields := ["livenessProbe", "readinessProbe", "startupProbe"]

_lifecycle_hooks := ["postStart", "preStop"]

_host_handlers := ["httpGet", "tcpSocket"]

deny contains finding if {
	some c in k8s.containers
	some probe in _probe_fields
	some handler in _host_handlers
	host := c.container[probe][handler].host
	not host in {"", null}
	finding := k8s.container_finding(
		"pss-baseline-host-probes",
		c,
		[probe, handler, "host"],
		sprintf("%s points %s.%s at host %v", [k8s.describe(c), probe, handler, host]),
		sprintf("Remove %s.%s.host so the probe targets the pod's own IP.", [probe, handler]),
	)
}

deny contains finding if {
	some c in k8s.containers
	some hook in _lifecycle_hooks
	some handler in _host_handlers
	host := c.container.lifecycle[hook][handler].host
	not host in {"", null}
	finding := k8s.container_finding(
		"pss-baseline-host-probes",
		c,
		["lifecycle", hook, handler, "host"],
		sprintf("%s points lifecycle.%s.%s at host %v", [k8s.describe(c), hook, handler, host]),
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

deny contains finding if {
	some pod in k8s.pods
	profile := k8s.pod_security_context(pod).appArmorProfile
	profile != null
	profile_type := object.get(k8s.as_object(profile), "type", "")
	not profile_type in allowed_apparmor_types
	finding := k8s.pod_finding(
		"pss-baseline-apparmor",
		array.concat(pod.path, ["securityContext", "appArmorProfile", "type"]),
		sprintf("the pod sets AppArmor profile type %s (securityContext.appArmorProfile.type)", [k8s.quote(profile_type)]),
		"Set securityContext.appArmorProfile.type to RuntimeDefault or Localhost, or remove it.",
	)
}

deny contains finding if {
	some c in k8s.containers
	profile := k8s.security_context(c).appArmorProfile
	profile != null
	profile_type := object.get(k8s.as_object(profile), "type", "")
	not profile_type in allowed_apparmor_types
	finding := k8s.container_finding(
		"pss-baseline-apparmor",
		c,
		["securityContext", "appArmorProfile", "type"],
		sprintf("%s sets AppArmor profile type %s (securityContext.appArmorProfile.type)", [k8s.describe(c), k8s.quote(profile_type)]),
		"Set securityContext.appArmorProfile.type to RuntimeDefault or Localhost, or remove it.",
	)
}

# The annotation names its container; report against that container when
# it exists so the finding carries its name and image.
deny contains finding if {
	some pod in k8s.pods
	some key, value in k8s.object_at(pod.metadata, "annotations")
	_bad_apparmor_annotation(key, value)
	name := substring(key, count(_apparmor_annotation_prefix), -1)
	some c in k8s.containers
	c.name == name
	finding := {
		"msg": sprintf("%s has AppArmor profile %v from annotation %s", [k8s.describe(c), value, key]),
		"rule": "pss-baseline-apparmor",
		"fix": _apparmor_annotation_fix(key),
		"path": array.concat(pod.metadata_path, ["annotations", key]),
		"container": c.name,
		"image": c.image,
	}
}

deny contains finding if {
	some pod in k8s.pods
	some key, value in k8s.object_at(pod.metadata, "annotations")
	_bad_apparmor_annotation(key, value)
	name := substring(key, count(_apparmor_annotation_prefix), -1)
	not _has_container_named(name)
	finding := k8s.pod_finding(
		"pss-baseline-apparmor",
		array.concat(pod.metadata_path, ["annotations", key]),
		sprintf("annotation %s sets AppArmor profile %v", [key, value]),
		_apparmor_annotation_fix(key),
	)
}

_bad_apparmor_annotation(key, value) if {
	is_string(key)
	startswith(key, _apparmor_annotation_prefix)
	not _allowed_apparmor_annotation(value)
}

_has_container_named(name) if {
	some c in k8s.containers
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

# _selinux_violations(sc) are [field, value] pairs of seLinuxOptions in the
# security context sc that the standard forbids.
_selinux_violations(sc) := {[field, value] |
	options := k8s.object_at(sc, "seLinuxOptions")
	some field in ["type", "user", "role"]
	value := options[field]
	value != null
	_selinux_forbidden(field, value)
}

_selinux_forbidden("type", value) if not value in allowed_selinux_types

_selinux_forbidden(field, value) if {
	field in {"user", "role"}
	value != ""
}

deny contains finding if {
	some pod in k8s.pods
	some [field, value] in _selinux_violations(k8s.pod_security_context(pod))
	finding := k8s.pod_finding(
		"pss-baseline-selinux",
		array.concat(pod.path, ["securityContext", "seLinuxOptions", field]),
		sprintf("the pod sets forbidden SELinux %s %s (securityContext.seLinuxOptions.%s)", [field, k8s.quote(value), field]),
		_selinux_fix(field),
	)
}

deny contains finding if {
	some c in k8s.containers
	some [field, value] in _selinux_violations(k8s.security_context(c))
	finding := k8s.container_finding(
		"pss-baseline-selinux",
		c,
		["securityContext", "seLinuxOptions", field],
		sprintf("%s sets forbidden SELinux %s %s (securityContext.seLinuxOptions.%s)", [k8s.describe(c), field, k8s.quote(value), field]),
		_selinux_fix(field),
	)
}

_selinux_fix("type") := "Remove securityContext.seLinuxOptions.type or set it to container_t, container_init_t, container_kvm_t or container_engine_t."

_selinux_fix(field) := sprintf("Remove securityContext.seLinuxOptions.%s.", [field]) if field in {"user", "role"}

# ---------------------------------------------------------------------------
# 10. /proc Mount Type: the default /proc masks are required.
# Allowed: undefined/nil, Default. Since 1.35 any value is allowed in a pod
# with its own user namespace (hostUsers: false); Restricted still forbids it
# (see pss-restricted-proc-mount).

deny contains finding if {
	some c in k8s.containers
	proc_mount := k8s.security_context(c).procMount
	not proc_mount in {"Default", null}
	not k8s.user_namespaced(k8s.pod_of(c))
	finding := k8s.container_finding(
		"pss-baseline-proc-mount",
		c,
		["securityContext", "procMount"],
		sprintf("%s unmasks /proc (securityContext.procMount: %v)", [k8s.describe(c), proc_mount]),
		"Remove securityContext.procMount or set it to Default.",
	)
}

# ---------------------------------------------------------------------------
# 11. Seccomp: the profile may not be set to Unconfined, at pod or container
# level. Allowed: undefined/nil, RuntimeDefault, Localhost.

allowed_seccomp_types := {"RuntimeDefault", "Localhost"}

deny contains finding if {
	some pod in k8s.pods
	profile := k8s.pod_security_context(pod).seccompProfile
	profile != null
	profile_type := object.get(k8s.as_object(profile), "type", "")
	not profile_type in allowed_seccomp_types
	finding := k8s.pod_finding(
		"pss-baseline-seccomp",
		array.concat(pod.path, ["securityContext", "seccompProfile", "type"]),
		sprintf("the pod sets seccomp profile type %s (securityContext.seccompProfile.type)", [k8s.quote(profile_type)]),
		"Set securityContext.seccompProfile.type to RuntimeDefault or Localhost.",
	)
}

deny contains finding if {
	some c in k8s.containers
	profile := k8s.security_context(c).seccompProfile
	profile != null
	profile_type := object.get(k8s.as_object(profile), "type", "")
	not profile_type in allowed_seccomp_types
	finding := k8s.container_finding(
		"pss-baseline-seccomp",
		c,
		["securityContext", "seccompProfile", "type"],
		sprintf("%s sets seccomp profile type %s (securityContext.seccompProfile.type)", [k8s.describe(c), k8s.quote(profile_type)]),
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

deny contains finding if {
	some pod in k8s.pods
	some i, sysctl in k8s.array_at(k8s.pod_security_context(pod), "sysctls")
	name := object.get(k8s.as_object(sysctl), "name", "")
	not name in allowed_sysctls
	finding := k8s.pod_finding(
		"pss-baseline-sysctls",
		array.concat(pod.path, ["securityContext", "sysctls", i, "name"]),
		sprintf("the pod sets unsafe sysctl %v (securityContext.sysctls[%d].name)", [name, i]),
		"Remove the sysctl; Baseline allows only the safe, namespaced sysctls listed by the Pod Security Standards.",
	)
}
