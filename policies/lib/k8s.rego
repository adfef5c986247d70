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
# object_at / array_at / string_at (or a type test) before a built-in or an
# iteration sees it.
#
# Speed: trustgate evaluates every document of a repository against all the
# bundled packages, thousands of times a second, and in regorus every rule
# evaluation, rule body, function call and builtin call costs about a
# microsecond (policies/README.md, "Writing fast policies"). So:
# - `workload` recognises a workload by comparing input.kind, without
#   building the workload_kinds table (regorus rebuilds constant rules on
#   every evaluation). The finding rules of every package are gated on it,
#   so a Service or a ConfigMap costs a few comparisons.
# - `pod`, `containers` and `image_volumes` are computed once per
#   evaluation (a rule's value is cached within an evaluation) and carry what
#   the rules need precomputed (security contexts, a container's
#   description), so the rules read fields instead of calling helpers for
#   every container and rule.
# - Hot paths test types by comparison, not is_* calls ("Type tests" below).
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
		"batch": true,
	},
	"CronJob": {
		"spec": ["spec", "jobTemplate", "spec", "template", "spec"],
		"metadata": ["spec", "jobTemplate", "spec", "template", "metadata"],
		"groups": {"batch"},
		"batch": true,
	},
}

# Kinds whose pods run to completion; long-running checks (probes) skip them
# (their workload entries say "batch": true).
batch_kinds := {"Job", "CronJob"}

# batch_workload holds when input's pods run to completion: a Job, a CronJob,
# or a custom workload declared with batch: true (a KEDA ScaledJob). Rules
# read workload.batch instead (`not data.trustgate.lib.k8s.workload.batch`):
# one reference, no rule bodies.
batch_workload if workload.batch == true

# The three container lists of a pod spec, in the order the kubelet starts them.
container_types := ["initContainers", "containers", "ephemeralContainers"]

# How a message names a container of each type.
container_type_labels := {
	"initContainers": "init container",
	"containers": "container",
	"ephemeralContainers": "ephemeral container",
}

# ---------------------------------------------------------------------------
# Type tests without builtin calls.
#
# A builtin call (is_object, is_string, ...) costs about a microsecond in
# regorus, a comparison a small fraction of that, and the tests below run for
# every container of every document. Rego orders values of different types
# null < booleans < numbers < strings < arrays < objects, so for values that
# come from a manifest (JSON: no sets):
#   x >= {}          holds exactly when x is an object,
#   x >= ""; x < []  exactly when x is a string,
#   x >= []; x < {}  exactly when x is an array.
# The hot paths of the policies use these forms, with a comment; k8s_test.rego
# checks them against is_object, is_string and is_array.

# ---------------------------------------------------------------------------
# Safe accessors: a wrong type reads as empty instead of raising in regorus.

# as_object(x) is x when it is an object, else {}.
as_object(x) := x if x >= {} else := {} # x >= {}: is_object(x)

# object_at(o, key) is o[key] when that is an object, else {}.
object_at(o, key) := v if {
	v := o[key]
	v >= {} # is_object(v)
} else := {}

# array_at(o, key) is o[key] when that is an array, else [].
array_at(o, key) := v if {
	v := o[key]
	v >= [] # is_array(v) ...
	v < {}
} else := []

# string_at(o, key) is o[key] when that is a string, else "".
string_at(o, key) := v if {
	v := o[key]
	v >= "" # is_string(v) ...
	v < []
} else := ""

# ---------------------------------------------------------------------------
# Which document is a workload.

# api_group(v) is the API group of apiVersion v ("" for the core group):
# "apps/v1" -> "apps", "v1" -> "". Undefined when v is not a string with at
# most one "/". (Written with few builtin calls, the costly part in regorus.)
api_group(api_version) := group if {
	api_version >= "" # is_string(api_version) ...
	api_version < []
	parts := split(api_version, "/")
	not parts[2]
	parts[1] # group/version
	group := parts[0]
} else := "" if {
	api_version >= "" # is_string(api_version) ...
	api_version < []
	not contains(api_version, "/")
}

# workload is the entry of workload_kinds for input, when input is one, or
# of data.trustgate.config.workloads for a declared custom workload.
#
# It is computed without building workload_kinds, which regorus would do on
# every evaluation: an else chain with the same entries, most frequent kinds
# first (k8s_test.rego checks that the two agree). Any other kind (Service,
# ConfigMap, ...: half of a repository) falls through after seven
# comparisons.
workload := kind_info if {
	input.kind in {"Deployment", "ReplicaSet", "DaemonSet"}
	kind_info := {
		"spec": ["spec", "template", "spec"],
		"metadata": ["spec", "template", "metadata"],
		"groups": {"apps", "extensions"},
	}
	_api_group_matches(kind_info.groups)
} else := kind_info if {
	input.kind == "StatefulSet"
	kind_info := {
		"spec": ["spec", "template", "spec"],
		"metadata": ["spec", "template", "metadata"],
		"groups": {"apps"},
	}
	_api_group_matches(kind_info.groups)
} else := kind_info if {
	input.kind == "CronJob"
	kind_info := {
		"spec": ["spec", "jobTemplate", "spec", "template", "spec"],
		"metadata": ["spec", "jobTemplate", "spec", "template", "metadata"],
		"groups": {"batch"},
		"batch": true,
	}
	_api_group_matches(kind_info.groups)
} else := kind_info if {
	input.kind == "Job"
	kind_info := {
		"spec": ["spec", "template", "spec"],
		"metadata": ["spec", "template", "metadata"],
		"groups": {"batch"},
		"batch": true,
	}
	_api_group_matches(kind_info.groups)
} else := kind_info if {
	input.kind == "Pod"
	kind_info := {
		"spec": ["spec"],
		"metadata": ["metadata"],
		"groups": {""},
	}
	_api_group_matches(kind_info.groups)
} else := kind_info if {
	input.kind == "ReplicationController"
	kind_info := {
		"spec": ["spec", "template", "spec"],
		"metadata": ["spec", "template", "metadata"],
		"groups": {""},
	}
	_api_group_matches(kind_info.groups)
} else := kind_info if {
	input.kind == "PodTemplate"
	kind_info := {
		"spec": ["template", "spec"],
		"metadata": ["template", "metadata"],
		"groups": {""},
	}
	_api_group_matches(kind_info.groups)
} else := kind_info if {
	# A custom resource that carries a pod template (Argo Rollouts' Rollout,
	# OpenKruise's CloneSet, ...): trustgate gives the known ones and those
	# declared in trustgate.yaml (`workloads`) as
	# data.trustgate.config.workloads[kind][group] = {"spec", "metadata",
	# "groups", "batch"}. Any other kind stops at the first lookup.
	declared := data.trustgate.config.workloads[input.kind]
	kind_info := declared[api_group(input.apiVersion)]
	kind_info >= {} # is_object(kind_info)
}

# _api_group_matches(groups) holds when input's API group is one of groups.
# A document without apiVersion is judged by its kind alone, so fragments
# and hand-written fixtures are still checked.
_api_group_matches(groups) if not input.apiVersion

_api_group_matches(groups) if api_group(input.apiVersion) in groups

# ---------------------------------------------------------------------------
# The pod and its containers.

# pod is the pod spec of input (undefined when input is not a workload), as
#   {"kind", "spec", "path", "metadata", "metadata_path", "security_context"}
# where path and metadata_path are JSON paths from the document root,
# metadata is the pod (template) metadata, which carries the AppArmor
# annotations, or {} when absent, and security_context is the pod's
# securityContext, or {} when absent or not an object.
pod := p if {
	kind_info := workload
	spec := object.get(input, kind_info.spec, null)
	spec >= {} # is_object(spec)
	p := {
		"kind": input.kind,
		"spec": spec,
		"path": kind_info.spec,
		"metadata": as_object(object.get(input, kind_info.metadata, {})),
		"metadata_path": kind_info.metadata,
		"security_context": object_at(spec, "securityContext"),
	}
}

# pods is {pod}, or {} for a document that is not a workload.
pods contains pod

# pod_user_namespaced and pod_windows are user_namespaced(pod) and
# windows_pod(pod) (below), as rules so that they are computed once, and
# without the function call.
pod_user_namespaced if pod.spec.hostUsers == false

pod_windows if pod.spec.os.name == "windows"

# Every container of pod, as
#   {"container", "name", "image", "type", "label", "index", "path", "pod_path",
#    "security_context", "description"}
# type is "containers", "initContainers" or "ephemeralContainers"; label is
# how messages name it ("init container"); path is the container's JSON path
# (e.g. ["spec","template","spec","containers",0]); pod_path is its pod
# spec's; security_context is its securityContext, or {} when absent or not
# an object; description is describe(c), how a message names it.
containers contains c if {
	spec := pod.spec # bound first: x.y[var] costs more than x[var]
	# container_type_labels, inline: a rule reference costs more than the literal.
	some ctype, label in {"initContainers": "init container", "containers": "container", "ephemeralContainers": "ephemeral container"}
	list := spec[ctype]
	list >= [] # is_array(list) ...
	list < {}
	some i, container in list
	container >= {} # is_object(container)
	name := string_at(container, "name")
	c := {
		"container": container,
		"name": name,
		"image": string_at(container, "image"),
		"type": ctype,
		"label": label,
		"index": i,
		"path": array.concat(pod.path, [ctype, i]),
		"pod_path": pod.path,
		"security_context": object_at(container, "securityContext"),
		"description": sprintf("%s %q", [label, name]),
	}
}

# Every image volume of pod (spec.volumes[].image: an OCI image mounted as a
# read-only volume, Kubernetes 1.31+), as
#   {"volume", "name", "image", "index", "path", "description"}
# volume is the volumes entry; image is its image.reference ("" when absent
# or not a string); path is the JSON path of image.reference (e.g.
# ["spec","volumes",2,"image","reference"]); description is how a message
# names it (`image volume "tools"`). The kubelet pulls these images as it
# pulls a container's, so the image rules judge them too.
#
# Most pods have volumes and none of them an image: a volume without an
# `image` object stops at two comparisons, before any builtin call.
image_volumes contains v if {
	spec := pod.spec # bound first: x.y[var] costs more than x[var]
	volumes := spec.volumes
	volumes >= [] # is_array(volumes) ...
	volumes < {}
	some i, volume in volumes
	volume >= {} # is_object(volume)
	source := volume.image
	source >= {} # is_object(source)
	name := string_at(volume, "name")
	v := {
		"volume": volume,
		"name": name,
		"image": string_at(source, "reference"),
		"index": i,
		"path": array.concat(pod.path, ["volumes", i, "image", "reference"]),
		"description": sprintf("image volume %q", [name]),
	}
}

# pod_of(c) is the pod that container c belongs to (there is one per document).
pod_of(c) := pod if pod.path == c.pod_path

# security_context(c) is a container's securityContext, or {}.
security_context(c) := object_at(c.container, "securityContext")

# pod_security_context(p) is a pod's securityContext, or {}.
pod_security_context(p) := object_at(p.spec, "securityContext")

# user_namespaced(p) holds when pod p runs in its own user namespace
# (hostUsers: false); Pod Security relaxes some checks for such pods.
user_namespaced(p) if p.spec.hostUsers == false

# windows_pod(p) holds when pod p declares spec.os.name: windows; Pod
# Security exempts such pods from the Linux-only restricted controls.
windows_pod(p) if p.spec.os.name == "windows"

# quote(x) renders a manifest value for a message: strings quoted, anything
# else as JSON. (regorus's sprintf rejects %q for non-strings.)
quote(x) := sprintf("%q", [x]) if is_string(x)

quote(x) := sprintf("%v", [x]) if not is_string(x)

# describe(c) names a container in a message: `init container "setup"`.
# Rules read the precomputed c.description instead.
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

# image_volume_finding is a finding about the image of image volume v (an
# element of image_volumes), at its image.reference.
image_volume_finding(rule, v, msg, fix) := {
	"msg": msg,
	"rule": rule,
	"fix": fix,
	"path": v.path,
	"volume": v.name,
	"image": v.image,
}

# pod_finding is a finding about the pod as a whole; path is absolute.
pod_finding(rule, path, msg, fix) := {
	"msg": msg,
	"rule": rule,
	"fix": fix,
	"path": path,
}

# ---------------------------------------------------------------------------
# Pod Security Standards constants shared by pss-baseline and pss-restricted
# (here, so that either set works without the other being loaded).

# Capabilities Baseline lets a container add.
pss_baseline_capabilities := {
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

# Seccomp profile types that are not Unconfined.
pss_seccomp_types := {"RuntimeDefault", "Localhost"}
