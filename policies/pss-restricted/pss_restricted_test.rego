package trustgate.pss.restricted_test

import rego.v1

import data.trustgate.pss.baseline
import data.trustgate.pss.restricted

# ---------------------------------------------------------------------------
# Fixtures.

_image := "registry.example.com/app:1.0"

# A container that meets every Restricted container control on its own.
_hardened := {
	"name": "app",
	"image": _image,
	"securityContext": {
		"allowPrivilegeEscalation": false,
		"runAsNonRoot": true,
		"runAsUser": 10001,
		"seccompProfile": {"type": "RuntimeDefault"},
		"capabilities": {"drop": ["ALL"]},
	},
}

# _c(patch) is the hardened container with its securityContext merged with patch.
_c(patch) := object.union(_hardened, {"securityContext": patch})

# _bare(name) is a container with no securityContext at all.
_bare(name) := {"name": name, "image": _image}

_deployment(spec) := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "web"},
	"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}},
}

_pod(spec) := {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": spec}

_cronjob(spec) := {
	"apiVersion": "batch/v1",
	"kind": "CronJob",
	"metadata": {"name": "nightly"},
	"spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}},
}

_dp := ["spec", "template", "spec"]

_pp := ["spec"]

_cp := ["spec", "jobTemplate", "spec", "template", "spec"]

# A pod meeting Restricted by setting the pod-level fields once.
_compliant_spec := {
	"securityContext": {
		"runAsNonRoot": true,
		"runAsUser": 10001,
		"runAsGroup": 10001,
		"fsGroup": 10001,
		"seccompProfile": {"type": "RuntimeDefault"},
	},
	"volumes": [
		{"name": "cache", "emptyDir": {}},
		{"name": "config", "configMap": {"name": "web"}},
		{"name": "creds", "secret": {"secretName": "web"}},
		{"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
		{"name": "info", "downwardAPI": {"items": []}},
		{"name": "data", "persistentVolumeClaim": {"claimName": "web"}},
		{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
		{"name": "driver", "csi": {"driver": "secrets-store.csi.k8s.io"}},
		{"name": "models", "image": {"reference": "registry.example.com/models:1"}},
	],
	"initContainers": [{
		"name": "migrate",
		"image": _image,
		"securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
	}],
	"containers": [{
		"name": "app",
		"image": _image,
		"securityContext": {
			"allowPrivilegeEscalation": false,
			"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
			"seccompProfile": {"type": "Localhost", "localhostProfile": "app.json"},
		},
	}],
}

# ---------------------------------------------------------------------------
# Assertions.

_deny(doc) := findings if {
	findings := restricted.deny with input as doc
}

_fires(doc, rule, path) if {
	some f in _deny(doc)
	f.rule == rule
	f.path == path
}

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
}

test_compliant_workload_passes_baseline_too if {
	count(baseline.deny) == 0 with input as _deployment(_compliant_spec)
}

test_container_level_settings_are_enough if {
	count(_deny(_deployment({"containers": [_hardened, object.union(_hardened, {"name": "side"})]}))) == 0
}

test_non_workloads_have_no_findings if {
	count(_deny({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}})) == 0
	count(_deny({"apiVersion": "v1", "kind": "Secret", "data": {}})) == 0
}

test_malformed_documents_do_not_error if {
	every doc in [
		_pod({"securityContext": "x", "volumes": [5, "x", {"name": 1, "nfs": null}], "containers": "x"}),
		_pod({"containers": [{"securityContext": {"capabilities": {"drop": "ALL", "add": [1]}, "runAsNonRoot": "yes"}}]}),
		_pod({"os": "windows", "hostUsers": "no", "containers": [5]}),
	] {
		is_set(_deny(doc))
	}
}

test_findings_follow_the_contract if {
	findings := _deny(_deployment({
		"securityContext": {"runAsUser": 0},
		"volumes": [{"name": "share", "nfs": {"server": "nfs", "path": "/"}}],
		"containers": [_bare("app")],
	}))
	{f.rule | some f in findings} == {
		"pss-restricted-volume-types",
		"pss-restricted-privilege-escalation",
		"pss-restricted-run-as-non-root",
		"pss-restricted-run-as-user",
		"pss-restricted-seccomp",
		"pss-restricted-capabilities",
	}
	every f in findings {
		is_string(f.msg)
		is_string(f.fix)
		f.fix != ""
		count(f.path) > 3
		_container_fields(f)
	}
}

_container_fields(f) if {
	"containers" in f.path
	f.container == "app"
	f.image == _image
}

_container_fields(f) if {
	not "containers" in f.path
	not f.container
}

# ---------------------------------------------------------------------------
# pss-restricted-volume-types

test_volume_types_fire_on_non_core_volume if {
	doc := _deployment(object.union(_compliant_spec, {"volumes": [
		{"name": "cache", "emptyDir": {}},
		{"name": "share", "nfs": {"server": "nfs.example.com", "path": "/exports"}},
		{"name": "ebs", "awsElasticBlockStore": {"volumeID": "vol-1"}},
	]}))
	f := _finding(doc, "pss-restricted-volume-types", array.concat(_dp, ["volumes", 1, "nfs"]))
	contains(f.msg, `"share"`)
	_fires(doc, "pss-restricted-volume-types", array.concat(_dp, ["volumes", 2, "awsElasticBlockStore"]))
	not _fires(doc, "pss-restricted-volume-types", array.concat(_dp, ["volumes", 0, "emptyDir"]))
}

# A volume without a source is defaulted to an emptyDir by the API server (SetDefaults_Volume).
test_volume_types_allow_volume_without_source if {
	_silent(
		_pod(object.union(_compliant_spec, {"volumes": [{"name": "empty"}, {"name": "null", "nfs": null}]})),
		"pss-restricted-volume-types",
	)
}

test_volume_types_leave_host_path_to_baseline if {
	doc := _pod(object.union(_compliant_spec, {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}))
	_silent(doc, "pss-restricted-volume-types")
	some f in baseline.deny with input as doc
	f.rule == "pss-baseline-host-path"
}

test_volume_types_allowed_list if {
	_silent(_cronjob(_compliant_spec), "pss-restricted-volume-types")
}

# _allowed_volume is a chain of field tests (for speed); it must accept every
# source of allowed_volume_sources, and only when the source is not null (a
# null one beside a forbidden source does not make the volume allowed).
test_volume_types_every_allowed_source_passes if {
	every source in restricted.allowed_volume_sources {
		_silent(_pod(object.union(_compliant_spec, {"volumes": [{"name": "v", source: {}}]})), "pss-restricted-volume-types")
		_fires(
			_pod(object.union(_compliant_spec, {"volumes": [{"name": "v", source: null, "nfs": {"server": "s", "path": "/"}}]})),
			"pss-restricted-volume-types",
			array.concat(_pp, ["volumes", 0, "nfs"]),
		)
	}
}

# ---------------------------------------------------------------------------
# pss-restricted-privilege-escalation

test_privilege_escalation_fires_when_unset_or_true if {
	doc := _deployment({
		"initContainers": [_c({"allowPrivilegeEscalation": true})],
		"containers": [_c({"allowPrivilegeEscalation": null})],
		"ephemeralContainers": [object.union(_bare("debug"), {"securityContext": {"runAsNonRoot": true}})],
	})
	_fires(doc, "pss-restricted-privilege-escalation", array.concat(_dp, ["initContainers", 0, "securityContext", "allowPrivilegeEscalation"]))
	_fires(doc, "pss-restricted-privilege-escalation", array.concat(_dp, ["containers", 0, "securityContext", "allowPrivilegeEscalation"]))
	f := _finding(doc, "pss-restricted-privilege-escalation", array.concat(_dp, ["ephemeralContainers", 0, "securityContext", "allowPrivilegeEscalation"]))
	f.container == "debug"
}

test_privilege_escalation_false_is_allowed if {
	_silent(_pod({"containers": [_hardened]}), "pss-restricted-privilege-escalation")
}

test_privilege_escalation_windows_pods_are_exempt if {
	_silent(_pod({"os": {"name": "windows"}, "containers": [_bare("app")]}), "pss-restricted-privilege-escalation")
}

# ---------------------------------------------------------------------------
# pss-restricted-run-as-non-root

test_run_as_non_root_fires_when_nothing_sets_it if {
	f := _finding(
		_cronjob({"containers": [_bare("app")]}),
		"pss-restricted-run-as-non-root",
		array.concat(_cp, ["containers", 0, "securityContext", "runAsNonRoot"]),
	)
	f.container == "app"
	f.image == _image
}

test_run_as_non_root_fires_on_explicit_false if {
	doc := _deployment({
		"securityContext": {"runAsNonRoot": false},
		"containers": [_c({"runAsNonRoot": false})],
	})
	_fires(doc, "pss-restricted-run-as-non-root", array.concat(_dp, ["securityContext", "runAsNonRoot"]))
	_fires(doc, "pss-restricted-run-as-non-root", array.concat(_dp, ["containers", 0, "securityContext", "runAsNonRoot"]))
}

test_run_as_non_root_container_false_overrides_pod_true if {
	_fires(
		_pod({"securityContext": {"runAsNonRoot": true}, "initContainers": [_c({"runAsNonRoot": false})], "containers": [_hardened]}),
		"pss-restricted-run-as-non-root",
		array.concat(_pp, ["initContainers", 0, "securityContext", "runAsNonRoot"]),
	)
}

test_run_as_non_root_pod_level_covers_containers if {
	_silent(_pod({"securityContext": {"runAsNonRoot": true}, "containers": [_bare("a"), _bare("b")]}), "pss-restricted-run-as-non-root")
}

test_run_as_non_root_every_container_level if {
	_silent(_deployment({"initContainers": [_hardened], "containers": [_hardened]}), "pss-restricted-run-as-non-root")
}

test_run_as_non_root_user_namespace_pods_are_exempt if {
	_silent(_pod({"hostUsers": false, "containers": [_bare("app")]}), "pss-restricted-run-as-non-root")
}

# ---------------------------------------------------------------------------
# pss-restricted-run-as-user

test_run_as_user_zero_fires_at_pod_level if {
	f := _finding(
		_deployment({"securityContext": {"runAsUser": 0}, "containers": [_hardened]}),
		"pss-restricted-run-as-user",
		array.concat(_dp, ["securityContext", "runAsUser"]),
	)
	not f.container
}

test_run_as_user_zero_fires_on_init_container if {
	_fires(
		_cronjob({"initContainers": [_c({"runAsUser": 0})], "containers": [_hardened]}),
		"pss-restricted-run-as-user",
		array.concat(_cp, ["initContainers", 0, "securityContext", "runAsUser"]),
	)
}

test_run_as_user_non_zero_or_unset_is_allowed if {
	_silent(_pod({"securityContext": {"runAsUser": 1000}, "containers": [_bare("a"), _c({"runAsUser": 65534})]}), "pss-restricted-run-as-user")
}

test_run_as_user_user_namespace_pods_are_exempt if {
	_silent(_pod({"hostUsers": false, "securityContext": {"runAsUser": 0}, "containers": [_c({"runAsUser": 0})]}), "pss-restricted-run-as-user")
}

# ---------------------------------------------------------------------------
# pss-restricted-seccomp

test_seccomp_fires_when_nothing_sets_it if {
	doc := _deployment({"containers": [_c({"seccompProfile": null}), _hardened]})
	_fires(doc, "pss-restricted-seccomp", array.concat(_dp, ["containers", 0, "securityContext", "seccompProfile", "type"]))
	not _fires(doc, "pss-restricted-seccomp", array.concat(_dp, ["containers", 1, "securityContext", "seccompProfile", "type"]))
}

test_seccomp_fires_on_ephemeral_container_without_profile if {
	_fires(
		_pod({"containers": [_hardened], "ephemeralContainers": [_bare("debug")]}),
		"pss-restricted-seccomp",
		array.concat(_pp, ["ephemeralContainers", 0, "securityContext", "seccompProfile", "type"]),
	)
}

test_seccomp_unconfined_pod_does_not_cover_containers if {
	doc := _pod({"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": [_bare("app")]})
	_fires(doc, "pss-restricted-seccomp", array.concat(_pp, ["containers", 0, "securityContext", "seccompProfile", "type"]))
}

test_seccomp_leaves_bad_values_to_baseline if {
	_silent(_pod({"containers": [_c({"seccompProfile": {"type": "Unconfined"}})]}), "pss-restricted-seccomp")
}

test_seccomp_pod_level_covers_containers if {
	_silent(_deployment({"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}, "containers": [_bare("a")]}), "pss-restricted-seccomp")
}

test_seccomp_windows_pods_are_exempt if {
	_silent(_pod({"os": {"name": "windows"}, "containers": [_bare("app")]}), "pss-restricted-seccomp")
}

# ---------------------------------------------------------------------------
# pss-restricted-capabilities

test_capabilities_fire_when_all_is_not_dropped if {
	doc := _deployment({"initContainers": [_c({"capabilities": {"drop": ["NET_RAW"]}})], "containers": [_bare("app")]})
	_fires(doc, "pss-restricted-capabilities", array.concat(_dp, ["initContainers", 0, "securityContext", "capabilities", "drop"]))
	_fires(doc, "pss-restricted-capabilities", array.concat(_dp, ["containers", 0, "securityContext", "capabilities", "drop"]))
}

test_capabilities_fire_on_baseline_capability_added if {
	doc := _cronjob({"containers": [_c({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN", "SYS_ADMIN"]}})]})
	_fires(doc, "pss-restricted-capabilities", array.concat(_cp, ["containers", 0, "securityContext", "capabilities", "add", 1]))
	not _fires(doc, "pss-restricted-capabilities", array.concat(_cp, ["containers", 0, "securityContext", "capabilities", "add", 0]))
	# SYS_ADMIN is outside the Baseline set: Baseline reports it, not Restricted.
	not _fires(doc, "pss-restricted-capabilities", array.concat(_cp, ["containers", 0, "securityContext", "capabilities", "add", 2]))
}

test_capabilities_drop_all_add_net_bind_service_is_allowed if {
	_silent(_pod({"containers": [_c({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}})]}), "pss-restricted-capabilities")
}

test_capabilities_windows_pods_are_exempt if {
	_silent(_pod({"os": {"name": "windows"}, "containers": [_bare("app")]}), "pss-restricted-capabilities")
}

# ---------------------------------------------------------------------------
# pss-restricted-proc-mount

test_proc_mount_fires_in_user_namespace_pod if {
	_fires(
		_pod({"hostUsers": false, "containers": [_c({"procMount": "Unmasked"})]}),
		"pss-restricted-proc-mount",
		array.concat(_pp, ["containers", 0, "securityContext", "procMount"]),
	)
}

test_proc_mount_leaves_other_pods_to_baseline if {
	_silent(_deployment({"containers": [_c({"procMount": "Unmasked"})]}), "pss-restricted-proc-mount")
}

test_proc_mount_default_is_allowed if {
	_silent(_pod({"hostUsers": false, "containers": [_c({"procMount": "Default"})]}), "pss-restricted-proc-mount")
}
