# Image and workload hygiene: where images come from, whether they are
# pinned, and whether containers declare limits and probes.
#
# Image rules look at every container (init and ephemeral included): an
# image is pulled whatever list it sits in. Resource rules skip ephemeral
# containers, which cannot declare resources; probe rules look only at
# regular containers of long-running workloads.
#
# Configuration, read from data:
#   data.trustgate.allowed_registries  list of image name prefixes, matched
#       against the fully qualified name ("registry.example.com/",
#       "ghcr.io/acme/"). Absent, empty or not a list: every registry passes.
package trustgate.supplychain

import rego.v1

import data.trustgate.lib.k8s

# ---------------------------------------------------------------------------
# Image references.
#
# A reference is [registry/]path[:tag][@digest]. The tag is whatever follows
# the last ":" of the last path component, so "registry:5000/app" has a port,
# not a tag.

# _images are the containers that name an image.
_images contains c if {
	some c in k8s.containers
	c.image != ""
}

# digest(image) is the part after "@", when there is one.
digest(image) := d if {
	contains(image, "@")
	d := substring(image, indexof(image, "@") + 1, -1)
}

# _name_and_tag(image) is the reference without its digest.
_name_and_tag(image) := split(image, "@")[0]

# tag(image) is the image's tag, when it has one.
tag(image) := t if {
	components := split(_name_and_tag(image), "/")
	last := components[count(components) - 1]
	contains(last, ":")
	t := substring(last, indexof(last, ":") + 1, -1)
}

# pinned(image) holds when the image is pinned by a sha256 digest.
pinned(image) if regex.match(`@sha256:[a-f0-9]{64}$`, image)

# normalized(image) is the fully qualified reference, as a container runtime
# resolves it: the first path component names a registry only when there is
# more than one component and it looks like a host ("." or ":" or
# "localhost"); otherwise the image is on Docker Hub, whose official images
# live under "library/". index.docker.io is an alias of docker.io.
normalized(image) := name if {
	parts := split(image, "/")
	count(parts) > 1
	_is_host(parts[0])
	name := _qualify(_canonical_registry(parts[0]), array.slice(parts, 1, count(parts)))
}

normalized(image) := name if {
	parts := split(image, "/")
	not _names_registry(parts)
	name := _qualify("docker.io", parts)
}

_names_registry(parts) if {
	count(parts) > 1
	_is_host(parts[0])
}

_is_host(component) if contains(component, ".")

_is_host(component) if contains(component, ":")

_is_host(component) if component == "localhost"

_canonical_registry("index.docker.io") := "docker.io"

_canonical_registry(registry) := registry if registry != "index.docker.io"

_qualify(registry, repository) := concat("/", array.concat(["docker.io", "library"], repository)) if {
	_official_image(registry, repository)
}

_qualify(registry, repository) := concat("/", array.concat([registry], repository)) if {
	not _official_image(registry, repository)
}

_official_image("docker.io", repository) if count(repository) == 1

# ---------------------------------------------------------------------------
# images-no-latest (deny): a tag of "latest", or no tag and no digest (which
# means "latest"), is a moving target.

deny contains finding if {
	some c in _images
	not digest(c.image)
	_mutable_tag(c.image)
	finding := k8s.container_finding(
		"images-no-latest",
		c,
		["image"],
		_latest_msg(c),
		"Pin the image to a version tag, or better a digest (image@sha256:...).",
	)
}

_mutable_tag(image) if not tag(image)

_mutable_tag(image) if tag(image) == "latest"

_latest_msg(c) := sprintf("%s uses image %q with no tag, which means :latest", [k8s.describe(c), c.image]) if {
	not tag(c.image)
}

_latest_msg(c) := sprintf("%s uses image %q with the mutable tag :latest", [k8s.describe(c), c.image]) if {
	tag(c.image) == "latest"
}

# ---------------------------------------------------------------------------
# images-digest (warn): a tag can be moved; a digest names exact content.

warn contains finding if {
	some c in _images
	not pinned(c.image)
	finding := k8s.container_finding(
		"images-digest",
		c,
		["image"],
		sprintf("%s uses image %q, which is not pinned by digest", [k8s.describe(c), c.image]),
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

deny contains finding if {
	count(allowed_registries) > 0
	some c in _images
	name := normalized(c.image)
	not _allowed_registry(name)
	finding := k8s.container_finding(
		"images-allowed-registries",
		c,
		["image"],
		sprintf("%s uses image %q, which is not from an allowed registry%s", [k8s.describe(c), c.image, _resolved_note(c.image, name)]),
		sprintf("Use an image from an allowed registry: %s.", [concat(", ", [k8s.quote(p) | some p in allowed_registries])]),
	)
}

# Say how a short name was resolved, so "nginx" vs "docker.io/" is clear.
_resolved_note(image, name) := "" if image == name

_resolved_note(image, name) := sprintf(" (resolves to %s)", [name]) if image != name

_allowed_registry(name) if {
	some prefix in allowed_registries
	is_string(prefix)
	startswith(name, prefix)
}

# ---------------------------------------------------------------------------
# resources-memory-limit (deny) and resources-cpu-limit (warn): containers
# and init containers; ephemeral containers cannot declare resources.

_resource_containers contains c if {
	some c in k8s.containers
	c.type != "ephemeralContainers"
}

_has_limit(c, resource) if {
	limit := c.container.resources.limits[resource]
	not limit in {null, ""}
}

deny contains finding if {
	some c in _resource_containers
	not _has_limit(c, "memory")
	finding := k8s.container_finding(
		"resources-memory-limit",
		c,
		["resources", "limits", "memory"],
		sprintf("%s has no memory limit (resources.limits.memory)", [k8s.describe(c)]),
		"Set resources.limits.memory, e.g. to the observed peak plus headroom.",
	)
}

warn contains finding if {
	some c in _resource_containers
	not _has_limit(c, "cpu")
	finding := k8s.container_finding(
		"resources-cpu-limit",
		c,
		["resources", "limits", "cpu"],
		sprintf("%s has no CPU limit (resources.limits.cpu)", [k8s.describe(c)]),
		"Set resources.limits.cpu.",
	)
}

# ---------------------------------------------------------------------------
# probes-liveness and probes-readiness (warn): regular containers of
# long-running workloads (not Job or CronJob; a bare Pod counts).

_probed_containers contains c if {
	some c in k8s.containers
	c.type == "containers"
	not input.kind in k8s.batch_kinds
}

_probe_rules := {
	"livenessProbe": {
		"rule": "probes-liveness",
		"fix": "Add a livenessProbe (httpGet, tcpSocket, grpc or exec) so the kubelet restarts the container when it hangs.",
	},
	"readinessProbe": {
		"rule": "probes-readiness",
		"fix": "Add a readinessProbe so traffic reaches the container only when it is ready.",
	},
}

warn contains finding if {
	some c in _probed_containers
	some probe, meta in _probe_rules
	object.get(c.container, probe, null) == null
	finding := k8s.container_finding(
		meta.rule,
		c,
		[probe],
		sprintf("%s has no %s", [k8s.describe(c), probe]),
		meta.fix,
	)
}
