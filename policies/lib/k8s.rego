# Helpers shared by the trustgate rule sets.
#
# This package owns "where are the pods in this document": it maps every
# workload kind to its pod spec and pod metadata, lists every container with
# its JSON path, and builds findings in the message contract (see
# policies/README.md). It knows nothing about what is allowed.
#
# Each manifest is evaluated alone as `input`. Anything that is not a
# workload (Service, ConfigMap, a CRD reusing a kind name in another API
# group) yields no pods, so no rule fires on it.
#
# regorus raises an error, where OPA would be undefined, when a built-in gets
# an argument of the wrong type or `some .. in` walks a non-collection. A
# manifest is untrusted input, so every value taken from it passes through
# object_at / array_at / string_at (or an is_* check) before a built-in or an
# iteration sees it.
package trustgate.lib.k8s

import rego.v1

# Kind -> where its pod spec and pod metadata live, and which API groups
# own the kind ("" is the core group, apiVersion "v1").
workload_kinds := {
	"Pod": {
		"spec": ["spec"],
		"metadata": ["metadata"],
		"groups": {""},
	},
	"ReplicationController": {
		"spec": ["spec", "template", "spec"],
		"metadata": ["spec", "template", "metadata"],
		"groups": {""},
	},
	"PodTemplate": {
		"spec": ["template", "spec"],
		"metadata": ["template", "metadata"],
		"groups": {""},
	},
	"Deployment": {
		"spec": ["spec", "template", "spec"],
		"metadata": ["spec", "template", "metadata"],
		"groups": {"apps", "extensions"},
	},
	"ReplicaSet": {
		"spec": ["spec", "template", "spec"],
		"metadata": ["spec", "template", "metadata"],
		"groups": {"apps", "extensions"},
	},
	"DaemonSet": {
		"spec": ["spec", "template", "spec"],
		"metadata": ["spec", "template", "metadata"],
		"groups": {"apps", "extensions"},
	},
	"StatefulSet": {
		"spec": ["spec", "template", "spec"],
		"metadata": ["spec", "template", "metadata"],
		"groups": {"apps"},
	},
	"Job": {
		"spec": ["spec", "template", "spec"],
		"metadata": ["spec", "template", "metadata"],
		"groups": {"batch"},
	},
	"CronJob": {
		"spec": ["spec", "jobTemplate", "spec", "template", "spec"],
		"metadata": ["spec", "jobTemplate", "spec", "template", "metadata"],
		"groups": {"batch"},
	},
}

# Kinds whose pods run to completion; long-running checks (probes) skip them.
batch_kinds := {"Job", "CronJob"}

# The three container lists of a pod spec, in the order the kubelet starts them.
container_types := ["initContainers", "containers", "ephemeralContainers"]

# How a message names a container of each type.
container_type_labels := {
	"initContainers": "init container",
	"containers": "container",
	"ephemeralContainers": "ephemeral container",
}

# ---------------------------------------------------------------------------
# Safe accessors: a wrong type reads as empty instead of raising in regorus.

# as_object(x) is x when it is an object, else {}.
as_object(x) := x if is_object(x)

as_object(x) := {} if not is_object(x)

# object_at(o, key) is o[key] when that is an object, else {}.
object_at(o, key) := v if {
	v := o[key]
	is_object(v)
} else := {}

# array_at(o, key) is o[key] when that is an array, else [].
array_at(o, key) := v if {
	v := o[key]
	is_array(v)
} else := []

# string_at(o, key) is o[key] when that is a string, else "".
string_at(o, key) := v if {
	v := o[key]
	is_string(v)
} else := ""

# ---------------------------------------------------------------------------
# Which document is a workload.

# api_group(v) is the API group of apiVersion v ("" for the core group).
api_group(api_version) := "" if {
	is_string(api_version)
	not contains(api_version, "/")
}

api_group(api_version) := group if {
	is_string(api_version)
	parts := split(api_version, "/")
	count(parts) == 2
	group := parts[0]
}

# A document without apiVersion is judged by its kind alone, so fragments
# and hand-written fixtures are still checked.
_group_matches(kind_info) if not input.apiVersion

_group_matches(kind_info) if api_group(input.apiVersion) in kind_info.groups

# workload is the entry of workload_kinds for input, when input is one.
workload := kind_info if {
	is_object(input)
	kind_info := workload_kinds[input.kind]
	_group_matches(kind_info)
}

# ---------------------------------------------------------------------------
# Pods and containers.

# Every pod spec in input (zero or one per document), as
#   {"kind", "spec", "path", "metadata", "metadata_path"}
# where path and metadata_path are JSON paths from the document root and
# metadata is the pod (template) metadata, which carries the AppArmor
# annotations, or {} when absent.
pods contains pod if {
	kind_info := workload
	spec := object.get(input, kind_info.spec, null)
	is_object(spec)
	meta := object.get(input, kind_info.metadata, {})
	pod := {
		"kind": input.kind,
		"spec": spec,
		"path": kind_info.spec,
		"metadata": as_object(meta),
		"metadata_path": kind_info.metadata,
	}
}

# Every container of every pod, as
#   {"container", "name", "image", "type", "label", "index", "path", "pod_path"}
# type is "containers", "initContainers" or "ephemeralContainers"; label is
# how messages name it ("init container"); path is the container's JSON path
# (e.g. ["spec","template","spec","containers",0]); pod_path is its pod spec's.
containers contains c if {
	some pod in pods
	some ctype in container_types
	some i, container in array_at(pod.spec, ctype)
	is_object(container)
	c := {
		"container": container,
		"name": string_at(container, "name"),
		"image": string_at(container, "image"),
		"type": ctype,
		"label": container_type_labels[ctype],
		"index": i,
		"path": array.concat(pod.path, [ctype, i]),
		"pod_path": pod.path,
	}
}

# pod_of(c) is the pod that container c belongs to.
pod_of(c) := pod if {
	some pod in pods
	pod.path == c.pod_path
}

# security_context(c) is a container's securityContext, or {}.
security_context(c) := object_at(c.container, "securityContext")

# pod_security_context(pod) is a pod's securityContext, or {}.
pod_security_context(pod) := object_at(pod.spec, "securityContext")

# user_namespaced(pod) holds when the pod runs in its own user namespace
# (hostUsers: false); Pod Security relaxes some checks for such pods.
user_namespaced(pod) if pod.spec.hostUsers == false

# windows_pod(pod) holds when the pod declares spec.os.name: windows; Pod
# Security exempts such pods from the Linux-only restricted controls.
windows_pod(pod) if pod.spec.os.name == "windows"

# quote(x) renders a manifest value for a message: strings quoted, anything
# else as JSON. (regorus's sprintf rejects %q for non-strings.)
quote(x) := sprintf("%q", [x]) if is_string(x)

quote(x) := sprintf("%v", [x]) if not is_string(x)

# describe(c) names a container in a message: `init container "setup"`.
describe(c) := sprintf("%s %q", [c.label, c.name])

# ---------------------------------------------------------------------------
# Findings, in the message contract of policies/README.md.

# container_finding is a finding about one container; rel_path continues
# the container's path down to the offending field.
container_finding(rule, c, rel_path, msg, fix) := {
	"msg": msg,
	"rule": rule,
	"fix": fix,
	"path": array.concat(c.path, rel_path),
	"container": c.name,
	"image": c.image,
}

# pod_finding is a finding about the pod as a whole; path is absolute.
pod_finding(rule, path, msg, fix) := {
	"msg": msg,
	"rule": rule,
	"fix": fix,
	"path": path,
}
