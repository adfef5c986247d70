# Image and workload hygiene: where images come from, whether they are
# pinned and written out (no variable left for a later step), and whether
# containers declare limits and probes.
#
# Image rules look at every container (init and ephemeral included) and at
# every image volume (spec.volumes[].image.reference): an image is pulled
# whatever list it sits in. Resource rules skip ephemeral
# containers, which cannot declare resources; probe rules look only at
# regular containers of long-running workloads.
#
# Configuration, read from data:
#   data.trustgate.allowed_registries  list of image name prefixes, matched
#       against the fully qualified name ("registry.example.com/",
#       "ghcr.io/acme/"). Absent, empty or not a list: every registry passes.
#
# Speed: see the notes in pss_baseline.rego; the same patterns apply here.
# The rules test the cheap facts first (c.image != "", "@" in the image) and
# call the image-parsing functions only for the images that need them.
package trustgate.supplychain

import rego.v1

# Rules of other packages are referenced by their full path
# (data.trustgate.lib.k8s.containers): a reference through a package import
# (k8s.containers) makes regorus evaluate every rule of that package first,
# and one through an import of the rule itself costs a little more per use.
# Functions are fine through the package import.
import data.trustgate.lib.k8s

# Every rule below adds to _deny or _warn; deny and warn pass them on for
# workloads only. A document that is not a workload stops at the workload
# reference, so regorus never evaluates the rules below for it.
deny contains finding if {
	data.trustgate.lib.k8s.workload
	some finding in _deny
}

warn contains finding if {
	data.trustgate.lib.k8s.workload
	some finding in _warn
}

# ---------------------------------------------------------------------------
# Image references.
#
# A reference is [registry/]path[:tag][@digest]. The tag is whatever follows
# the first ":" of the last path component, so "registry:5000/app" has a
# port, not a tag.

# digest(image) is the part after "@", when there is one.
digest(image) := d if {
	contains(image, "@")
	d := substring(image, indexof(image, "@") + 1, -1)
}

# tag(image) is the image's tag, when it has one: the last path component
# of the reference without its digest, from its first ":" on.
tag(image) := t if {
	components := split(split(image, "@")[0], "/")
	last := components[count(components) - 1]
	contains(last, ":")
	t := substring(last, indexof(last, ":") + 1, -1)
}

# pinned(image) holds when the image is pinned by a sha256 digest: it ends
# in "@sha256:" and 64 lowercase hex digits (`@sha256:[a-f0-9]{64}$`).
# Without regex.match: regorus compiles the pattern on every call, which
# costs more than all the other image rules together.
pinned(image) if {
	n := count(image)
	n >= 72 # substring raises on a negative offset; short images stop here
	substring(image, n - 72, 8) == "@sha256:"
	trim(substring(image, n - 64, -1), "0123456789abcdef") == ""
}

# normalized(image) is the fully qualified reference, as a container runtime
# resolves it: the first path component names a registry only when there is
# more than one component and it looks like a host ("." or ":" or
# "localhost", or an upper-case letter); otherwise the image is on Docker Hub, whose official images
# live under "library/". index.docker.io is an alias of docker.io.
#
# An else chain on the string rather than a split into components, with
# the common case (an image on some other registry: already qualified) early:
# every function call and builtin costs about a microsecond in regorus.
normalized(image) := concat("/", ["docker.io", "library", image]) if {
	not contains(image, "/") # one component: an official image
} else := image if {
	registry := substring(image, 0, indexof(image, "/"))
	_is_host(registry)
	not registry in {"docker.io", "index.docker.io"}
} else := name if {
	registry := substring(image, 0, indexof(image, "/"))
	registry in {"docker.io", "index.docker.io"}
	name := _docker_hub(substring(image, count(registry) + 1, -1))
} else := concat("/", ["docker.io", image]) # no registry: Docker Hub

# As distribution's splitDockerDomain: a component with an upper-case letter
# is a host too (a repository path is lower case), so `INTERNAL/app` is not
# Docker Hub's `docker.io/INTERNAL/app` (the runtime asks a registry named
# INTERNAL). Written as "any character outside a repository path's" (the
# other ones make the reference invalid, so it is not Docker Hub's either):
# `lower` would be a Go-semantics extension call (ADR 0008). Last: the one
# builtin call, for Docker Hub names only.
_is_host(component) if component == "localhost"
else if contains(component, ".")
else if contains(component, ":")
else if trim(component, "abcdefghijklmnopqrstuvwxyz0123456789_-") != ""

# _docker_hub(repository) is the full name of repository (the path after
# the registry) on Docker Hub, where one component is an official image.
_docker_hub(repository) := concat("/", ["docker.io", "library", repository]) if {
	not contains(repository, "/")
} else := concat("/", ["docker.io", repository])

# ---------------------------------------------------------------------------
# Image volumes (volumes[].image.reference) are judged by the image rules as
# containers are, in bodies of their own (`_volume_deny`). Almost no pod has
# one: this one test stands for all of them, so a pod without pays for it
# alone (each body evaluated costs about a microsecond, an empty loop too).
# The volume rule of images-digest, the one warning, is a single body that
# stops at its first statement.

_deny contains finding if {
	data.trustgate.lib.k8s.image_volumes != set()
	some finding in _volume_deny
}

# ---------------------------------------------------------------------------
# images-unresolved-variable (deny): an image holding "${" is a variable left
# for a later step (Flux's post-build substitution fills ${VAR} and
# ${VAR:=default} when it applies the manifests). Which image runs is not
# written here, so no image rule can judge it: `${IMG:=nginx:latest}` passed
# images-no-latest, whose tag it does not see.

_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	contains(c.image, "${")
	finding := k8s.container_finding(
		"images-unresolved-variable",
		c,
		["image"],
		sprintf("%s uses image %q, which holds a variable substituted later (Flux post-build substitution?): trustgate cannot tell which image runs", [c.description, c.image]),
		"Check the manifests as they are applied: render them first (e.g. `flux envsubst` with the variables, or `flux build kustomization`), or waive images-unresolved-variable with an exception.",
	)
}

_volume_deny contains finding if {
	some v in data.trustgate.lib.k8s.image_volumes
	contains(v.image, "${")
	finding := k8s.image_volume_finding(
		"images-unresolved-variable",
		v,
		sprintf("%s uses image %q, which holds a variable substituted later (Flux post-build substitution?): trustgate cannot tell which image runs", [v.description, v.image]),
		"Check the manifests as they are applied: render them first (e.g. `flux envsubst` with the variables, or `flux build kustomization`), or waive images-unresolved-variable with an exception.",
	)
}

# ---------------------------------------------------------------------------
# images-no-latest (deny): a tag of "latest", or no tag and no digest (which
# means "latest"), is a moving target.

# `not contains(c.image, "@")` is `not digest(c.image)` without the call.
_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	c.image != ""
	not contains(c.image, "@")
	_mutable_tag(c.image)
	finding := k8s.container_finding(
		"images-no-latest",
		c,
		["image"],
		_latest_msg(c),
		"Pin the image to a version tag, or better a digest (image@sha256:...).",
	)
}

_volume_deny contains finding if {
	some v in data.trustgate.lib.k8s.image_volumes
	v.image != ""
	not contains(v.image, "@")
	_mutable_tag(v.image)
	finding := k8s.image_volume_finding(
		"images-no-latest",
		v,
		_latest_msg(v),
		"Pin the image to a version tag, or better a digest (image@sha256:...).",
	)
}

# _mutable_tag(image): image, which has no digest, has no tag or the tag
# "latest" (see tag()), that is, its last path component has no ":" or its
# only ":" starts a final "latest". One regex instead of two tag() calls of
# several builtins each; supply_chain_test.rego checks the two agree.
_mutable_tag(image) if regex.match(`(^|/)[^/:]*(:latest)?$`, image)

# Only for images with no digest and a mutable tag: of those, the ones that
# end in ":latest" are exactly the ones with the tag "latest".
_latest_msg(c) := sprintf("%s uses image %q with the mutable tag :latest", [c.description, c.image]) if {
	endswith(c.image, ":latest")
} else := sprintf("%s uses image %q with no tag, which means :latest", [c.description, c.image])

# ---------------------------------------------------------------------------
# images-digest (warn): a tag can be moved; a digest names exact content.

_warn contains finding if {
	some c in data.trustgate.lib.k8s.containers
	c.image != ""
	not pinned(c.image)
	finding := k8s.container_finding(
		"images-digest",
		c,
		["image"],
		sprintf("%s uses image %q, which is not pinned by digest", [c.description, c.image]),
		"Pin the image by digest: image:tag@sha256:<digest> (resolve it with `crane digest` or `docker buildx imagetools inspect`).",
	)
}

_warn contains finding if {
	some v in data.trustgate.lib.k8s.image_volumes
	v.image != ""
	not pinned(v.image)
	finding := k8s.image_volume_finding(
		"images-digest",
		v,
		sprintf("%s uses image %q, which is not pinned by digest", [v.description, v.image]),
		"Pin the image by digest: image:tag@sha256:<digest> (resolve it with `crane digest` or `docker buildx imagetools inspect`).",
	)
}

# ---------------------------------------------------------------------------
# images-allowed-registries (deny): only when data.trustgate.allowed_registries
# is a non-empty list.

allowed_registries := prefixes if {
	prefixes := data.trustgate.allowed_registries
	is_array(prefixes)
} else := []

_deny contains finding if {
	# Inline test first: most setups have no allowed_registries at all.
	registries := data.trustgate.allowed_registries
	is_array(registries)
	count(registries) > 0
	some c in data.trustgate.lib.k8s.containers
	c.image != ""
	name := normalized(c.image)
	not _allowed_registry(name, registries)
	finding := k8s.container_finding(
		"images-allowed-registries",
		c,
		["image"],
		sprintf("%s uses image %q, which is not from an allowed registry%s", [c.description, c.image, _resolved_note(c.image, name)]),
		sprintf("Use an image from an allowed registry: %s.", [concat(", ", [k8s.quote(p) | some p in allowed_registries])]),
	)
}

_volume_deny contains finding if {
	some v in data.trustgate.lib.k8s.image_volumes
	v.image != ""
	registries := data.trustgate.allowed_registries
	is_array(registries)
	count(registries) > 0
	name := normalized(v.image)
	not _allowed_registry(name, registries)
	finding := k8s.image_volume_finding(
		"images-allowed-registries",
		v,
		sprintf("%s uses image %q, which is not from an allowed registry%s", [v.description, v.image, _resolved_note(v.image, name)]),
		sprintf("Use an image from an allowed registry: %s.", [concat(", ", [k8s.quote(p) | some p in allowed_registries])]),
	)
}

# Say how a short name was resolved, so "nginx" vs "docker.io/" is clear.
_resolved_note(image, name) := "" if image == name

_resolved_note(image, name) := sprintf(" (resolves to %s)", [name]) if image != name

# _allowed_registry(name, registries): name starts with a prefix from the
# list registries. Non-string entries are ignored.
_allowed_registry(name, registries) if {
	some prefix in registries
	prefix >= "" # is_string(prefix), without the call (see "Type tests" in lib) ...
	prefix < []
	startswith(name, prefix)
}

# ---------------------------------------------------------------------------
# resources-memory-limit (deny) and resources-cpu-limit (warn): containers
# and init containers; ephemeral containers cannot declare resources.

# A limit is missing when resources.limits.<resource> is absent, null or "";
# object.get reads through values of the wrong type as absent.
_deny contains finding if {
	some c in data.trustgate.lib.k8s.containers
	object.get(c.container, ["resources", "limits", "memory"], null) in {null, ""}
	c.type != "ephemeralContainers"
	finding := k8s.container_finding(
		"resources-memory-limit",
		c,
		["resources", "limits", "memory"],
		sprintf("%s has no memory limit (resources.limits.memory)", [c.description]),
		"Set resources.limits.memory, e.g. to the observed peak plus headroom.",
	)
}

_warn contains finding if {
	some c in data.trustgate.lib.k8s.containers
	object.get(c.container, ["resources", "limits", "cpu"], null) in {null, ""}
	c.type != "ephemeralContainers"
	finding := k8s.container_finding(
		"resources-cpu-limit",
		c,
		["resources", "limits", "cpu"],
		sprintf("%s has no CPU limit (resources.limits.cpu)", [c.description]),
		"Set resources.limits.cpu.",
	)
}

# ---------------------------------------------------------------------------
# probes-liveness and probes-readiness (warn): regular containers of
# long-running workloads (not Job or CronJob; a bare Pod counts).

_warn contains finding if {
	some c in data.trustgate.lib.k8s.containers
	not _set(c.container, "livenessProbe") # unset or null
	c.type == "containers"
	not data.trustgate.lib.k8s.workload.batch
	finding := k8s.container_finding(
		"probes-liveness",
		c,
		["livenessProbe"],
		sprintf("%s has no livenessProbe", [c.description]),
		"Add a livenessProbe (httpGet, tcpSocket, grpc or exec) so the kubelet restarts the container when it hangs.",
	)
}

_warn contains finding if {
	some c in data.trustgate.lib.k8s.containers
	not _set(c.container, "readinessProbe") # unset or null
	c.type == "containers"
	not data.trustgate.lib.k8s.workload.batch
	finding := k8s.container_finding(
		"probes-readiness",
		c,
		["readinessProbe"],
		sprintf("%s has no readinessProbe", [c.description]),
		"Add a readinessProbe so traffic reaches the container only when it is ready.",
	)
}

# A field that is present and not null. `not obj.field != null` would be undefined in
# OPA when the field is unset (the reference is evaluated outside the negation).
_set(obj, key) if obj[key] != null
