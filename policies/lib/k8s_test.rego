package trustgate.lib.k8s_test

import rego.v1

import data.trustgate.lib.k8s

_spec := {"containers": [{"name": "app", "image": "app:1"}]}

_template := {"metadata": {"annotations": {"a": "b"}}, "spec": _spec}

# _pods(doc) is k8s.pods evaluated with doc as input.
_pods(doc) := pods if {
	pods := k8s.pods with input as doc
}

_containers(doc) := cs if {
	cs := k8s.containers with input as doc
}

# _only_pod(doc) is the single pod of doc.
_only_pod(doc) := pod if {
	pods := _pods(doc)
	count(pods) == 1
	some pod in pods
}

# ---------------------------------------------------------------------------
# Every workload kind yields its pod spec at the right path.

test_pod_spec_path_pod if {
	pod := _only_pod({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": _spec})
	pod.path == ["spec"]
	pod.metadata_path == ["metadata"]
	pod.metadata == {"name": "p"}
	pod.kind == "Pod"
}

test_pod_spec_path_template_kinds if {
	every kind, api_version in {
		"Deployment": "apps/v1",
		"ReplicaSet": "apps/v1",
		"StatefulSet": "apps/v1",
		"DaemonSet": "apps/v1",
		"Job": "batch/v1",
		"ReplicationController": "v1",
	} {
		pod := _only_pod({"apiVersion": api_version, "kind": kind, "spec": {"template": _template}})
		pod.path == ["spec", "template", "spec"]
		pod.metadata_path == ["spec", "template", "metadata"]
		pod.metadata.annotations == {"a": "b"}
		pod.spec == _spec
	}
}

test_pod_spec_path_pod_template if {
	pod := _only_pod({"apiVersion": "v1", "kind": "PodTemplate", "template": _template})
	pod.path == ["template", "spec"]
	pod.metadata_path == ["template", "metadata"]
}

test_pod_spec_path_cronjob if {
	pod := _only_pod({
		"apiVersion": "batch/v1",
		"kind": "CronJob",
		"spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": _template}}},
	})
	pod.path == ["spec", "jobTemplate", "spec", "template", "spec"]
	pod.metadata_path == ["spec", "jobTemplate", "spec", "template", "metadata"]
	pod.metadata.annotations == {"a": "b"}
}

test_legacy_api_groups_are_workloads if {
	count(_pods({"apiVersion": "extensions/v1beta1", "kind": "Deployment", "spec": {"template": _template}})) == 1
	count(_pods({"apiVersion": "batch/v1beta1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": _template}}}})) == 1
}

test_missing_api_version_is_judged_by_kind if {
	count(_pods({"kind": "Deployment", "spec": {"template": _template}})) == 1
}

test_missing_template_metadata_reads_as_empty if {
	pod := _only_pod({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": _spec}}})
	pod.metadata == {}
}

# ---------------------------------------------------------------------------
# Non-workloads and look-alikes yield nothing.

test_non_workloads_have_no_pods if {
	every doc in [
		{"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}},
		{"apiVersion": "v1", "kind": "ConfigMap", "data": {"spec": "x"}},
		{"apiVersion": "v1", "kind": "List", "items": [{"kind": "Pod", "spec": _spec}]},
		{"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"template": _template}},
		{"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "spec": {"template": _template}},
		{"kind": "Deployment"},
		{},
	] {
		count(_pods(doc)) == 0
		count(_containers(doc)) == 0
	}
}

test_malformed_documents_do_not_error if {
	every doc in [
		{"kind": "Deployment", "spec": "not an object"},
		{"kind": "Deployment", "spec": {"template": {"spec": []}}},
		{"kind": "Deployment", "spec": {"template": {"metadata": "x", "spec": {"containers": "x"}}}},
		{"kind": "Pod", "spec": {"containers": {"name": "app"}}},
		{"kind": "Pod", "spec": {"containers": [5, null, "x", []]}},
		{"kind": ["Pod"], "spec": _spec},
		{"apiVersion": 1, "kind": "Pod", "spec": _spec},
	] {
		count(_containers(doc)) == 0
	}
}

test_input_that_is_not_an_object_has_no_pods if {
	every doc in [[], "Pod", 7, null] {
		count(_pods(doc)) == 0
	}
}

# ---------------------------------------------------------------------------
# Containers carry their path, type and pod.

_deployment := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"spec": {"template": {"spec": {
		"initContainers": [{"name": "init", "image": "busybox:1"}],
		"containers": [{"name": "app", "image": "app:1"}, {"name": "side", "image": "side:1"}],
		"ephemeralContainers": [{"name": "debug", "image": "debug:1"}],
	}}},
}

test_containers_of_every_type_with_paths if {
	cs := _containers(_deployment)
	{[c.name, c.type, c.path] | some c in cs} == {
		["init", "initContainers", ["spec", "template", "spec", "initContainers", 0]],
		["app", "containers", ["spec", "template", "spec", "containers", 0]],
		["side", "containers", ["spec", "template", "spec", "containers", 1]],
		["debug", "ephemeralContainers", ["spec", "template", "spec", "ephemeralContainers", 0]],
	}
	every c in cs {
		c.pod_path == ["spec", "template", "spec"]
	}
	{c.type: c.label | some c in cs} == k8s.container_type_labels
}

test_container_fields if {
	some c in _containers(_deployment)
	c.name == "init"
	c.image == "busybox:1"
	c.label == "init container"
	c.index == 0
	c.container == {"name": "init", "image": "busybox:1"}
}

test_container_with_odd_name_and_image_reads_as_empty_strings if {
	some c in _containers({"kind": "Pod", "spec": {"containers": [{"name": 3, "image": ["x"]}]}})
	c.name == ""
	c.image == ""
}

test_cronjob_container_path if {
	some c in _containers({
		"apiVersion": "batch/v1",
		"kind": "CronJob",
		"spec": {"jobTemplate": {"spec": {"template": {"spec": _spec}}}},
	})
	c.path == ["spec", "jobTemplate", "spec", "template", "spec", "containers", 0]
}

test_pod_of_container if {
	some c in _containers(_deployment)
	pod := k8s.pod_of(c) with input as _deployment
	pod.path == c.pod_path
}

# ---------------------------------------------------------------------------
# Accessors, predicates and finding builders.

test_accessors_tolerate_wrong_types if {
	k8s.object_at({"a": "x"}, "a") == {}
	k8s.object_at({"a": {"b": 1}}, "a") == {"b": 1}
	k8s.object_at("not an object", "a") == {}
	k8s.array_at({"a": {"b": 1}}, "a") == []
	k8s.array_at({"a": [1]}, "a") == [1]
	k8s.array_at({}, "a") == []
	k8s.string_at({"a": 1}, "a") == ""
	k8s.string_at({"a": "s"}, "a") == "s"
	k8s.as_object(null) == {}
	k8s.as_object({"x": 1}) == {"x": 1}
}

test_api_group if {
	k8s.api_group("v1") == ""
	k8s.api_group("apps/v1") == "apps"
	not k8s.api_group(1)
}

test_user_namespaced_and_windows_pod if {
	k8s.user_namespaced({"spec": {"hostUsers": false}})
	not k8s.user_namespaced({"spec": {"hostUsers": true}})
	not k8s.user_namespaced({"spec": {}})
	k8s.windows_pod({"spec": {"os": {"name": "windows"}}})
	not k8s.windows_pod({"spec": {"os": {"name": "linux"}}})
	not k8s.windows_pod({"spec": {}})
}

test_quote_and_describe if {
	k8s.quote("a") == `"a"`
	k8s.quote(5) == "5"
	k8s.describe({"label": "init container", "name": "setup"}) == `init container "setup"`
}

test_container_finding_has_the_contract_fields if {
	c := {"name": "app", "image": "app:1", "path": ["spec", "containers", 0]}
	k8s.container_finding("r", c, ["securityContext", "privileged"], "m", "f") == {
		"msg": "m",
		"rule": "r",
		"fix": "f",
		"path": ["spec", "containers", 0, "securityContext", "privileged"],
		"container": "app",
		"image": "app:1",
	}
}

_image_volumes(doc) := vs if {
	vs := k8s.image_volumes with input as doc
}

test_image_volumes_with_paths_and_descriptions if {
	doc := {
		"apiVersion": "apps/v1",
		"kind": "Deployment",
		"spec": {"template": {"spec": object.union(_spec, {"volumes": [
			{"name": "data", "emptyDir": {}},
			{"name": "tools", "image": {"reference": "ghcr.io/acme/tools:1", "pullPolicy": "Always"}},
			{"name": "models", "image": {}},
		]})}},
	}
	{[v.name, v.image, v.index, v.path, v.description] | some v in _image_volumes(doc)} == {
		["tools", "ghcr.io/acme/tools:1", 1, ["spec", "template", "spec", "volumes", 1, "image", "reference"], `image volume "tools"`],
		["models", "", 2, ["spec", "template", "spec", "volumes", 2, "image", "reference"], `image volume "models"`],
	}
}

test_image_volumes_of_cronjob_and_none_elsewhere if {
	vs := _image_volumes({
		"apiVersion": "batch/v1",
		"kind": "CronJob",
		"spec": {"jobTemplate": {"spec": {"template": {"spec": {"volumes": [{"name": "t", "image": {"reference": "t:1"}}]}}}}},
	})
	{v.path | some v in vs} == {["spec", "jobTemplate", "spec", "template", "spec", "volumes", 0, "image", "reference"]}
	count(_image_volumes({"kind": "ConfigMap", "spec": {"volumes": [{"name": "t", "image": {"reference": "t:1"}}]}})) == 0
	every volumes in ["x", {"name": "t", "image": {"reference": "t:1"}}, [5, null, "x", {"image": "t:1"}, {"image": ["t"]}]] {
		count(_image_volumes({"kind": "Pod", "spec": {"volumes": volumes}})) == 0
	}
	some odd in _image_volumes({"kind": "Pod", "spec": {"volumes": [{"name": 3, "image": {"reference": ["x"]}}]}})
	[odd.name, odd.image] == ["", ""]
}

test_image_volume_finding_has_the_contract_fields if {
	v := {"name": "tools", "image": "t:1", "path": ["spec", "volumes", 0, "image", "reference"]}
	k8s.image_volume_finding("r", v, "m", "f") == {
		"msg": "m",
		"rule": "r",
		"fix": "f",
		"path": ["spec", "volumes", 0, "image", "reference"],
		"volume": "tools",
		"image": "t:1",
	}
}

test_pod_finding_has_the_contract_fields if {
	k8s.pod_finding("r", ["spec", "hostPID"], "m", "f") == {"msg": "m", "rule": "r", "fix": "f", "path": ["spec", "hostPID"]}
}

# ---------------------------------------------------------------------------
# workload is computed without building workload_kinds (see k8s.rego); the
# two must agree.

test_workload_agrees_with_workload_kinds if {
	every kind, info in k8s.workload_kinds {
		k8s.workload == info with input as {"kind": kind}
	}
	every kind in ["Service", "ConfigMap", "Ingress", "List", "Namespace", "pod", ""] {
		not k8s.workload with input as {"kind": kind}
	}
}

# The type tests by comparison that the hot paths use instead of builtin
# calls (see "Type tests" in k8s.rego) agree with the builtins on every JSON
# type.
test_type_tests_by_comparison if {
	every x in [null, false, true, -1, 0, 2.5, "", "a", "Ω", [], [1], [{}], {}, {"a": 1}, {"": null}] {
		is_object(x) == (x >= {})
		is_string(x) == ([x >= "", x < []] == [true, true])
		is_array(x) == ([x >= [], x < {}] == [true, true])
	}
	k8s.as_object("x") == {}
	k8s.string_at({"a": ["s"]}, "a") == ""
	k8s.array_at({"a": {"b": 1}}, "a") == []
}

# ---------------------------------------------------------------------------
# Custom workloads: data.trustgate.config.workloads[kind][group] (trustgate
# gives the known ones and those declared in trustgate.yaml).

_custom := {
	"Rollout": {"argoproj.io": {"spec": ["spec", "template", "spec"], "metadata": ["spec", "template", "metadata"], "groups": ["argoproj.io"], "batch": false}},
	"Service": {"serving.knative.dev": {"spec": ["spec", "template", "spec"], "metadata": ["spec", "template", "metadata"], "groups": ["serving.knative.dev"], "batch": false}},
	"ScaledJob": {"keda.sh": {"spec": ["spec", "jobTargetRef", "template", "spec"], "metadata": ["spec", "jobTargetRef", "template", "metadata"], "groups": ["keda.sh"], "batch": true}},
	"DaemonSet": {"apps.kruise.io": {"spec": ["spec", "template", "spec"], "metadata": ["spec", "template", "metadata"], "groups": ["apps.kruise.io"], "batch": false}},
}

test_custom_workload_pod_spec_path if {
	doc := {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "spec": {"template": _template}}
	pod := _only_pod(doc) with data.trustgate.config.workloads as _custom
	pod.path == ["spec", "template", "spec"]
	pod.metadata_path == ["spec", "template", "metadata"]
	pod.metadata == {"annotations": {"a": "b"}}
	some c in _containers(doc) with data.trustgate.config.workloads as _custom
	c.path == ["spec", "template", "spec", "containers", 0]
}

test_custom_workload_nested_pod_spec_path if {
	doc := {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "spec": {"jobTargetRef": {"template": _template}}}
	pod := _only_pod(doc) with data.trustgate.config.workloads as _custom
	pod.path == ["spec", "jobTargetRef", "template", "spec"]
	k8s.batch_workload with input as doc with data.trustgate.config.workloads as _custom
}

test_custom_workload_only_in_its_group if {
	# A core Service is no Knative Service; a Rollout of another group is no Argo Rollout.
	every doc in [
		{"apiVersion": "v1", "kind": "Service", "spec": {"template": _template}},
		{"apiVersion": "example.com/v1", "kind": "Rollout", "spec": {"template": _template}},
		{"kind": "Rollout", "spec": {"template": _template}},
		{"apiVersion": "argoproj.io/v1/x", "kind": "Rollout", "spec": {"template": _template}},
		{"apiVersion": 1, "kind": "Rollout", "spec": {"template": _template}},
	] {
		not k8s.workload with input as doc with data.trustgate.config.workloads as _custom
	}
	k8s.workload with input as {"apiVersion": "serving.knative.dev/v1", "kind": "Service"} with data.trustgate.config.workloads as _custom
}

test_builtin_kind_name_in_a_custom_group_takes_the_custom_entry if {
	# OpenKruise's Advanced DaemonSet shares the built-in kind name.
	kinfo := k8s.workload with input as {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "DaemonSet"} with data.trustgate.config.workloads as _custom
	kinfo.groups == ["apps.kruise.io"]
	builtin := k8s.workload with input as {"apiVersion": "apps/v1", "kind": "DaemonSet"} with data.trustgate.config.workloads as _custom
	builtin.groups == {"apps", "extensions"}
}

test_custom_workload_without_its_template_has_no_pod if {
	# A Rollout with spec.workloadRef names a Deployment, judged itself.
	doc := {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "spec": {"workloadRef": {"kind": "Deployment", "name": "web"}}}
	count(_pods(doc)) == 0 with data.trustgate.config.workloads as _custom
}

test_no_custom_workloads_without_the_table if {
	not k8s.workload with input as {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout"} with data.trustgate.config as {}
	not k8s.batch_workload with input as {"apiVersion": "apps/v1", "kind": "Deployment"}
	k8s.batch_workload with input as {"apiVersion": "batch/v1", "kind": "Job"}
}
