package trustgate.pss.baseline_test

import rego.v1

import data.trustgate.pss.baseline

# ---------------------------------------------------------------------------
# Fixtures.

_image := "registry.example.com/app:1.0"

_app := {"name": "app", "image": _image}

# _c(sc) is the app container with securityContext sc.
_c(sc) := object.union(_app, {"securityContext": sc})

_deployment(spec) := _annotated_deployment({}, spec)

_annotated_deployment(annotations, spec) := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "web", "namespace": "shop"},
	"spec": {
		"selector": {"matchLabels": {"app": "web"}},
		"template": {
			"metadata": {"labels": {"app": "web"}, "annotations": annotations},
			"spec": spec,
		},
	},
}

_pod(spec) := {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": spec}

_annotated_pod(annotations, spec) := {
	"apiVersion": "v1",
	"kind": "Pod",
	"metadata": {"name": "web", "annotations": annotations},
	"spec": spec,
}

_cronjob(spec) := {
	"apiVersion": "batch/v1",
	"kind": "CronJob",
	"metadata": {"name": "nightly"},
	"spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}},
}

# Pod spec paths of the fixtures.
_dp := ["spec", "template", "spec"]

_pp := ["spec"]

_cp := ["spec", "jobTemplate", "spec", "template", "spec"]

# A pod that satisfies every Baseline control while using the fields they
# look at.
_compliant_spec := {
	"hostNetwork": false,
	"hostPID": false,
	"hostIPC": false,
	"securityContext": {
		"runAsNonRoot": true,
		"seccompProfile": {"type": "RuntimeDefault"},
		"appArmorProfile": {"type": "RuntimeDefault"},
		"seLinuxOptions": {"type": "container_t", "level": "s0:c123,c456"},
		"windowsOptions": {"hostProcess": false},
		"sysctls": [
			{"name": "kernel.shm_rmid_forced", "value": "1"},
			{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"},
			{"name": "net.ipv4.tcp_keepalive_time", "value": "600"},
			{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"},
		],
	},
	"volumes": [
		{"name": "cache", "emptyDir": {}},
		{"name": "config", "configMap": {"name": "web"}},
	],
	"initContainers": [{
		"name": "migrate",
		"image": _image,
		"securityContext": {"privileged": false, "procMount": "Default"},
	}],
	"containers": [{
		"name": "app",
		"image": _image,
		"ports": [{"containerPort": 8080}, {"containerPort": 8081, "hostPort": 0}],
		"livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
		"readinessProbe": {"tcpSocket": {"port": 8080, "host": ""}},
		"lifecycle": {"preStop": {"httpGet": {"path": "/drain", "port": 8080}}},
		"securityContext": {
			"allowPrivilegeEscalation": false,
			"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN", "SYS_CHROOT"]},
			"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/app.json"},
			"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-app"},
			"seLinuxOptions": {"type": "container_engine_t"},
		},
	}],
}

# ---------------------------------------------------------------------------
# Assertions.

_deny(doc) := findings if {
	findings := baseline.deny with input as doc
}

# _fires(doc, rule, path): doc yields a finding of rule at path.
_fires(doc, rule, path) if {
	some f in _deny(doc)
	f.rule == rule
	f.path == path
}

# _silent(doc, rule): doc yields no finding of rule.
_silent(doc, rule) if not _any(doc, rule)

_any(doc, rule) if {
	some f in _deny(doc)
	f.rule == rule
}

_finding(doc, rule, path) := f if {
	some f in _deny(doc)
	f.rule == rule
	f.path == path
}

# ---------------------------------------------------------------------------
# Whole documents.

test_compliant_workloads_have_no_findings if {
	count(_deny(_deployment(_compliant_spec))) == 0
	count(_deny(_pod(_compliant_spec))) == 0
	count(_deny(_cronjob(_compliant_spec))) == 0
	count(_deny(_annotated_deployment(
		{
			"container.apparmor.security.beta.kubernetes.io/app": "runtime/default",
			"container.apparmor.security.beta.kubernetes.io/migrate": "localhost/k8s-migrate",
			"example.com/unrelated": "unconfined",
		},
		_compliant_spec,
	))) == 0
}

test_minimal_pod_has_no_findings if {
	count(_deny(_pod({"containers": [_app]}))) == 0
}

test_non_workloads_have_no_findings if {
	count(_deny({"apiVersion": "v1", "kind": "Service", "spec": {"hostNetwork": true, "ports": [{"port": 80}]}})) == 0
	count(_deny({"apiVersion": "v1", "kind": "ConfigMap", "data": {"privileged": "true"}})) == 0
	count(_deny({
		"apiVersion": "example.com/v1",
		"kind": "Deployment",
		"spec": {"template": {"spec": {"hostPID": true}}},
	})) == 0
}

test_malformed_documents_do_not_error if {
	every doc in [
		_pod({"securityContext": "x", "volumes": "x", "containers": [{"securityContext": []}]}),
		_pod({"securityContext": {"sysctls": [5, {"name": 7}], "seLinuxOptions": [], "seccompProfile": "x"}}),
		_pod({"containers": [{"ports": [5, {"hostPort": "x"}], "securityContext": {"capabilities": {"add": "NET_ADMIN"}}}]}),
		_pod({"containers": [{"livenessProbe": "x", "lifecycle": {"preStop": []}, "securityContext": {"seLinuxOptions": {"type": 5}}}]}),
		_annotated_pod({"container.apparmor.security.beta.kubernetes.io/app": 5}, {"containers": [_app]}),
		_annotated_pod("not an object", {"containers": [_app]}),
	] {
		is_set(_deny(doc))
	}
}

# Every finding follows the message contract of policies/README.md.
test_findings_follow_the_contract if {
	doc := _annotated_deployment(
		{"container.apparmor.security.beta.kubernetes.io/app": "unconfined"},
		{
			"hostNetwork": true,
			"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
			"volumes": [{"name": "root", "hostPath": {"path": "/"}}],
			"containers": [object.union(_c({"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}), {"ports": [{"containerPort": 80, "hostPort": 80}]})],
		},
	)
	findings := _deny(doc)
	count(findings) == 7
	every f in findings {
		is_string(f.msg)
		f.msg != ""
		startswith(f.rule, "pss-baseline-")
		is_string(f.fix)
		f.fix != ""
		count(f.path) > 0
		every step in f.path {
			_path_step(step)
		}
	}
	every f in findings {
		_container_fields_when_about_a_container(f)
	}
}

_path_step(step) if is_string(step)

_path_step(step) if is_number(step)

# Container findings name the container and image; the AppArmor annotation
# finding does too, though its path is in the pod metadata.
_container_fields_when_about_a_container(f) if {
	_about_app(f)
	f.container == "app"
	f.image == _image
}

_container_fields_when_about_a_container(f) if {
	not _about_app(f)
	not f.container
	not f.image
}

_about_app(f) if "containers" in f.path

_about_app(f) if f.rule == "pss-baseline-apparmor"

# ---------------------------------------------------------------------------
# pss-baseline-host-process

test_host_process_fires_at_pod_level if {
	_fires(
		_pod({"securityContext": {"windowsOptions": {"hostProcess": true}}, "containers": [_app]}),
		"pss-baseline-host-process",
		array.concat(_pp, ["securityContext", "windowsOptions", "hostProcess"]),
	)
}

test_host_process_fires_on_ephemeral_container if {
	doc := _deployment({
		"containers": [_app],
		"ephemeralContainers": [object.union(_c({"windowsOptions": {"hostProcess": true}}), {"name": "debug"})],
	})
	f := _finding(doc, "pss-baseline-host-process", array.concat(_dp, ["ephemeralContainers", 0, "securityContext", "windowsOptions", "hostProcess"]))
	f.container == "debug"
	f.image == _image
}

test_host_process_false_is_allowed if {
	_silent(
		_pod({"securityContext": {"windowsOptions": {"hostProcess": false}}, "containers": [_c({"windowsOptions": {"hostProcess": false}})]}),
		"pss-baseline-host-process",
	)
}

# ---------------------------------------------------------------------------
# pss-baseline-host-namespaces

test_host_namespaces_fire_per_field if {
	doc := _cronjob({"hostNetwork": true, "hostPID": true, "hostIPC": true, "containers": [_app]})
	_fires(doc, "pss-baseline-host-namespaces", array.concat(_cp, ["hostNetwork"]))
	_fires(doc, "pss-baseline-host-namespaces", array.concat(_cp, ["hostPID"]))
	_fires(doc, "pss-baseline-host-namespaces", array.concat(_cp, ["hostIPC"]))
}

test_host_namespaces_false_is_allowed if {
	_silent(_cronjob({"hostNetwork": false, "hostPID": false, "containers": [_app]}), "pss-baseline-host-namespaces")
}

# ---------------------------------------------------------------------------
# pss-baseline-privileged

test_privileged_fires_on_init_container if {
	doc := _deployment({"initContainers": [_c({"privileged": true})], "containers": [object.union(_app, {"name": "main"})]})
	f := _finding(doc, "pss-baseline-privileged", array.concat(_dp, ["initContainers", 0, "securityContext", "privileged"]))
	f.container == "app"
	f.image == _image
	contains(f.msg, `init container "app"`)
}

test_privileged_fires_on_ephemeral_container_of_pod if {
	_fires(
		_pod({"containers": [_app], "ephemeralContainers": [_c({"privileged": true})]}),
		"pss-baseline-privileged",
		array.concat(_pp, ["ephemeralContainers", 0, "securityContext", "privileged"]),
	)
}

test_privileged_false_is_allowed if {
	_silent(_deployment({"containers": [_c({"privileged": false})]}), "pss-baseline-privileged")
}

# ---------------------------------------------------------------------------
# pss-baseline-capabilities

test_capabilities_fire_per_added_capability if {
	doc := _deployment({"containers": [_c({"capabilities": {"add": ["CHOWN", "NET_ADMIN", "SYS_ADMIN"]}})]})
	_fires(doc, "pss-baseline-capabilities", array.concat(_dp, ["containers", 0, "securityContext", "capabilities", "add", 1]))
	_fires(doc, "pss-baseline-capabilities", array.concat(_dp, ["containers", 0, "securityContext", "capabilities", "add", 2]))
	not _fires(doc, "pss-baseline-capabilities", array.concat(_dp, ["containers", 0, "securityContext", "capabilities", "add", 0]))
}

test_capabilities_net_raw_is_not_in_the_baseline_set if {
	_fires(
		_cronjob({"containers": [_c({"capabilities": {"add": ["NET_RAW"]}})]}),
		"pss-baseline-capabilities",
		array.concat(_cp, ["containers", 0, "securityContext", "capabilities", "add", 0]),
	)
}

test_capabilities_baseline_set_is_allowed if {
	_silent(
		_pod({"containers": [_c({"capabilities": {"drop": ["ALL"], "add": [
			"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
			"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
		]}})]}),
		"pss-baseline-capabilities",
	)
}

# ---------------------------------------------------------------------------
# pss-baseline-host-path

test_host_path_fires if {
	doc := _deployment({"volumes": [{"name": "cache", "emptyDir": {}}, {"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}], "containers": [_app]})
	f := _finding(doc, "pss-baseline-host-path", array.concat(_dp, ["volumes", 1, "hostPath"]))
	contains(f.msg, `"docker"`)
	not f.container
}

test_host_path_absent_is_allowed if {
	_silent(_deployment({"volumes": [{"name": "cache", "emptyDir": {}}], "containers": [_app]}), "pss-baseline-host-path")
}

# ---------------------------------------------------------------------------
# pss-baseline-host-ports

test_host_ports_fire_on_init_container if {
	_fires(
		_deployment({"initContainers": [object.union(_app, {"ports": [{"containerPort": 53}, {"containerPort": 80, "hostPort": 8080}]})], "containers": [_app]}),
		"pss-baseline-host-ports",
		array.concat(_dp, ["initContainers", 0, "ports", 1, "hostPort"]),
	)
}

test_host_ports_zero_or_unset_is_allowed if {
	_silent(
		_pod({"containers": [object.union(_app, {"ports": [{"containerPort": 80, "hostPort": 0}, {"containerPort": 81}]})]}),
		"pss-baseline-host-ports",
	)
}

# Under hostNetwork: true the API server defaults hostPort to containerPort,
# so Pod Security admission sees a host port the manifest never wrote.
test_host_ports_fire_on_container_port_under_host_network if {
	doc := _pod({
		"hostNetwork": true,
		"initContainers": [object.union(_app, {"name": "init", "ports": [{"containerPort": 53, "hostPort": 0}]})],
		"containers": [object.union(_app, {"ports": [{"containerPort": 9100}, {"containerPort": 9101, "hostPort": null}]})],
	})
	f := _finding(doc, "pss-baseline-host-ports", array.concat(_pp, ["containers", 0, "ports", 0, "containerPort"]))
	f.msg == `container "app" binds node port 9100 (ports[0].containerPort under hostNetwork: true)`
	contains(f.fix, "makes containerPort a host port")
	f.container == "app"
	_fires(doc, "pss-baseline-host-ports", array.concat(_pp, ["containers", 0, "ports", 1, "containerPort"]))
	_fires(doc, "pss-baseline-host-ports", array.concat(_pp, ["initContainers", 0, "ports", 0, "containerPort"]))
	count({p | some g in _deny(doc); g.rule == "pss-baseline-host-ports"; p := g.path}) == 3
}

test_host_ports_fire_on_container_port_of_a_host_network_template if {
	_fires(
		_deployment({"hostNetwork": true, "containers": [object.union(_app, {"ports": [{"containerPort": 9100}]})]}),
		"pss-baseline-host-ports",
		array.concat(_dp, ["containers", 0, "ports", 0, "containerPort"]),
	)
	_fires(
		_cronjob({"hostNetwork": true, "containers": [object.union(_app, {"ports": [{"containerPort": 9100}]})]}),
		"pss-baseline-host-ports",
		array.concat(_cp, ["containers", 0, "ports", 0, "containerPort"]),
	)
}

# A hostPort written is reported as written, once.
test_host_ports_written_under_host_network_are_reported_as_written if {
	doc := _pod({"hostNetwork": true, "containers": [object.union(_app, {"ports": [{"containerPort": 80, "hostPort": 8080}]})]})
	_fires(doc, "pss-baseline-host-ports", array.concat(_pp, ["containers", 0, "ports", 0, "hostPort"]))
	count({f | some f in _deny(doc); f.rule == "pss-baseline-host-ports"}) == 1
}

test_container_ports_without_host_network_are_allowed if {
	every spec in [
		{"containers": [object.union(_app, {"ports": [{"containerPort": 9100}]})]},
		{"hostNetwork": false, "containers": [object.union(_app, {"ports": [{"containerPort": 9100}]})]},
		{"hostNetwork": "true", "containers": [object.union(_app, {"ports": [{"containerPort": 9100}]})]},
		{"hostNetwork": true, "containers": [object.union(_app, {"ports": [{"containerPort": 0}, {"containerPort": null}, {"name": "x"}, 5, "x"]})]},
		{"hostNetwork": true, "containers": [object.union(_app, {"ports": "9100"})]},
		{"hostNetwork": true, "containers": [_app], "ephemeralContainers": [object.union(_app, {"name": "debug", "ports": [{"containerPort": 9100}]})]},
	] {
		_silent(_pod(spec), "pss-baseline-host-ports")
	}
}

# ---------------------------------------------------------------------------
# pss-baseline-host-probes

test_host_probes_fire_on_probe_hosts if {
	doc := _deployment({"containers": [object.union(_app, {
		"livenessProbe": {"httpGet": {"host": "169.254.169.254", "port": 80}},
		"readinessProbe": {"tcpSocket": {"host": "db.internal", "port": 5432}},
		"startupProbe": {"httpGet": {"host": "", "port": 80}},
	})]})
	_fires(doc, "pss-baseline-host-probes", array.concat(_dp, ["containers", 0, "livenessProbe", "httpGet", "host"]))
	_fires(doc, "pss-baseline-host-probes", array.concat(_dp, ["containers", 0, "readinessProbe", "tcpSocket", "host"]))
	not _fires(doc, "pss-baseline-host-probes", array.concat(_dp, ["containers", 0, "startupProbe", "httpGet", "host"]))
}

test_host_probes_fire_on_lifecycle_hosts if {
	doc := _pod({"initContainers": [object.union(_app, {
		"restartPolicy": "Always",
		"lifecycle": {"postStart": {"httpGet": {"host": "10.0.0.1", "port": 80}}, "preStop": {"tcpSocket": {"host": "10.0.0.2", "port": 1}}},
	})]})
	_fires(doc, "pss-baseline-host-probes", array.concat(_pp, ["initContainers", 0, "lifecycle", "postStart", "httpGet", "host"]))
	_fires(doc, "pss-baseline-host-probes", array.concat(_pp, ["initContainers", 0, "lifecycle", "preStop", "tcpSocket", "host"]))
}

test_host_probes_without_host_are_allowed if {
	_silent(
		_deployment({"containers": [object.union(_app, {
			"livenessProbe": {"httpGet": {"path": "/", "port": 80}},
			"readinessProbe": {"exec": {"command": ["true"]}},
			"lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
		})]}),
		"pss-baseline-host-probes",
	)
}

# ---------------------------------------------------------------------------
# pss-baseline-apparmor

test_apparmor_field_unconfined_fires_at_pod_level if {
	_fires(
		_pod({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}, "containers": [_app]}),
		"pss-baseline-apparmor",
		array.concat(_pp, ["securityContext", "appArmorProfile", "type"]),
	)
}

test_apparmor_field_unconfined_fires_on_container if {
	_fires(
		_cronjob({"containers": [_c({"appArmorProfile": {"type": "Unconfined"}})]}),
		"pss-baseline-apparmor",
		array.concat(_cp, ["containers", 0, "securityContext", "appArmorProfile", "type"]),
	)
}

test_apparmor_annotation_unconfined_fires_on_its_container if {
	key := "container.apparmor.security.beta.kubernetes.io/app"
	doc := _annotated_deployment({key: "unconfined"}, {"containers": [_app]})
	f := _finding(doc, "pss-baseline-apparmor", ["spec", "template", "metadata", "annotations", key])
	f.container == "app"
	f.image == _image
}

test_apparmor_annotation_on_bare_pod_fires if {
	key := "container.apparmor.security.beta.kubernetes.io/app"
	_fires(
		_annotated_pod({key: "unconfined"}, {"containers": [_app]}),
		"pss-baseline-apparmor",
		["metadata", "annotations", key],
	)
}

test_apparmor_annotation_for_unknown_container_still_fires if {
	key := "container.apparmor.security.beta.kubernetes.io/ghost"
	f := _finding(
		_annotated_deployment({key: "unconfined"}, {"containers": [_app]}),
		"pss-baseline-apparmor",
		["spec", "template", "metadata", "annotations", key],
	)
	not f.container
}

test_apparmor_allowed_values if {
	_silent(
		_annotated_pod(
			{
				"container.apparmor.security.beta.kubernetes.io/app": "runtime/default",
				"container.apparmor.security.beta.kubernetes.io/init": "localhost/my-profile",
				"container.apparmor.security.beta.kubernetes.io/other": "",
			},
			{
				"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
				"containers": [_c({"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}})],
			},
		),
		"pss-baseline-apparmor",
	)
}

# ---------------------------------------------------------------------------
# pss-baseline-selinux

test_selinux_type_fires_at_pod_level if {
	_fires(
		_pod({"securityContext": {"seLinuxOptions": {"type": "spc_t"}}, "containers": [_app]}),
		"pss-baseline-selinux",
		array.concat(_pp, ["securityContext", "seLinuxOptions", "type"]),
	)
}

test_selinux_user_and_role_fire_on_container if {
	doc := _deployment({"containers": [_c({"seLinuxOptions": {"user": "system_u", "role": "system_r"}})]})
	_fires(doc, "pss-baseline-selinux", array.concat(_dp, ["containers", 0, "securityContext", "seLinuxOptions", "user"]))
	_fires(doc, "pss-baseline-selinux", array.concat(_dp, ["containers", 0, "securityContext", "seLinuxOptions", "role"]))
}

test_selinux_allowed_values if {
	every selinux_type in ["container_t", "container_init_t", "container_kvm_t", "container_engine_t", ""] {
		_silent(
			_deployment({
				"securityContext": {"seLinuxOptions": {"type": selinux_type, "level": "s0:c1,c2"}},
				"containers": [_c({"seLinuxOptions": {"type": selinux_type, "user": "", "role": ""}})],
			}),
			"pss-baseline-selinux",
		)
	}
}

# ---------------------------------------------------------------------------
# pss-baseline-proc-mount

test_proc_mount_unmasked_fires if {
	_fires(
		_deployment({"containers": [_c({"procMount": "Unmasked"})]}),
		"pss-baseline-proc-mount",
		array.concat(_dp, ["containers", 0, "securityContext", "procMount"]),
	)
}

test_proc_mount_default_is_allowed if {
	_silent(_deployment({"containers": [_c({"procMount": "Default"})]}), "pss-baseline-proc-mount")
}

test_proc_mount_unmasked_is_allowed_in_a_user_namespace if {
	_silent(_pod({"hostUsers": false, "containers": [_c({"procMount": "Unmasked"})]}), "pss-baseline-proc-mount")
	_fires(
		_pod({"hostUsers": true, "containers": [_c({"procMount": "Unmasked"})]}),
		"pss-baseline-proc-mount",
		array.concat(_pp, ["containers", 0, "securityContext", "procMount"]),
	)
}

# ---------------------------------------------------------------------------
# pss-baseline-seccomp

test_seccomp_unconfined_fires_at_pod_level if {
	_fires(
		_cronjob({"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": [_app]}),
		"pss-baseline-seccomp",
		array.concat(_cp, ["securityContext", "seccompProfile", "type"]),
	)
}

test_seccomp_unconfined_fires_on_init_container if {
	_fires(
		_deployment({"initContainers": [_c({"seccompProfile": {"type": "Unconfined"}})], "containers": [_app]}),
		"pss-baseline-seccomp",
		array.concat(_dp, ["initContainers", 0, "securityContext", "seccompProfile", "type"]),
	)
}

test_seccomp_profile_without_type_fires if {
	_fires(
		_pod({"containers": [_c({"seccompProfile": {}})]}),
		"pss-baseline-seccomp",
		array.concat(_pp, ["containers", 0, "securityContext", "seccompProfile", "type"]),
	)
}

test_seccomp_allowed_values if {
	_silent(
		_pod({
			"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
			"containers": [_c({"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}), object.union(_app, {"name": "b"})],
		}),
		"pss-baseline-seccomp",
	)
}

# ---------------------------------------------------------------------------
# pss-baseline-sysctls

test_sysctls_unsafe_fires if {
	doc := _deployment({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}, {"name": "net.core.somaxconn", "value": "1024"}]}, "containers": [_app]})
	f := _finding(doc, "pss-baseline-sysctls", array.concat(_dp, ["securityContext", "sysctls", 1, "name"]))
	contains(f.msg, "net.core.somaxconn")
	not _fires(doc, "pss-baseline-sysctls", array.concat(_dp, ["securityContext", "sysctls", 0, "name"]))
}

test_sysctls_safe_set_is_allowed if {
	_silent(
		_pod({"securityContext": {"sysctls": [{"name": name, "value": "1"} | some name in baseline.allowed_sysctls]}, "containers": [_app]}),
		"pss-baseline-sysctls",
	)
	count(baseline.allowed_sysctls) == 12
}

# ---------------------------------------------------------------------------
# Custom workloads are judged at their own paths.

_rollouts := {"Rollout": {"argoproj.io": {"spec": ["spec", "template", "spec"], "metadata": ["spec", "template", "metadata"], "groups": ["argoproj.io"], "batch": false}}}

test_privileged_rollout_denied_at_its_path if {
	doc := {
		"apiVersion": "argoproj.io/v1alpha1",
		"kind": "Rollout",
		"metadata": {"name": "web"},
		"spec": {"template": {"spec": {"containers": [_c({"privileged": true})], "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}},
	}
	found := {[f.rule, f.path] | some f in baseline.deny with input as doc with data.trustgate.config.workloads as _rollouts}
	["pss-baseline-privileged", ["spec", "template", "spec", "containers", 0, "securityContext", "privileged"]] in found
	["pss-baseline-host-path", ["spec", "template", "spec", "volumes", 0, "hostPath"]] in found
	count(baseline.deny) == 0 with input as object.union(doc, {"apiVersion": "example.com/v1"}) with data.trustgate.config.workloads as _rollouts
}
