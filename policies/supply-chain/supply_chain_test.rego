package trustgate.supplychain_test

import rego.v1

import data.trustgate.supplychain

# ---------------------------------------------------------------------------
# Fixtures.

_digest := "sha256:0f4e3b2a1c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f"

_pinned := concat("", ["registry.example.com/shop/web:1.4.2@", _digest])

_limits := {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}

_probes := {
	"livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
	"readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
}

# _good(name, image) is a container that passes every supply-chain rule.
_good(name, image) := object.union({"name": name, "image": image, "resources": _limits}, _probes)

# _with_image(image) is the good container running image.
_with_image(image) := _good("app", image)

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

_job(spec) := {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"}, "spec": {"template": {"spec": spec}}}

_dp := ["spec", "template", "spec"]

_pp := ["spec"]

_cp := ["spec", "jobTemplate", "spec", "template", "spec"]

_compliant_spec := {
	"initContainers": [_good("migrate", _pinned)],
	"containers": [_good("app", _pinned), _good("sidecar", _pinned)],
}

# ---------------------------------------------------------------------------
# Assertions.

_findings(doc) := fs if {
	deny := supplychain.deny with input as doc
	warn := supplychain.warn with input as doc
	fs := deny | warn
}

_findings_with_registries(doc, registries) := fs if {
	fs := supplychain.deny with input as doc with data.trustgate.allowed_registries as registries
}

_fires(doc, rule, path) if {
	some f in _findings(doc)
	f.rule == rule
	f.path == path
}

_silent(doc, rule) if not _any(doc, rule)

_any(doc, rule) if {
	some f in _findings(doc)
	f.rule == rule
}

_finding(doc, rule, path) := f if {
	some f in _findings(doc)
	f.rule == rule
	f.path == path
}

_denied(doc, rule, path) if {
	some f in supplychain.deny with input as doc
	f.rule == rule
	f.path == path
}

_warned(doc, rule, path) if {
	some f in supplychain.warn with input as doc
	f.rule == rule
	f.path == path
}

_registry_denied(doc, registries, path) if {
	some f in _findings_with_registries(doc, registries)
	f.rule == "images-allowed-registries"
	f.path == path
}

_registry_allowed(doc, registries) if {
	not _some_registry_finding(doc, registries)
}

_some_registry_finding(doc, registries) if {
	some f in _findings_with_registries(doc, registries)
	f.rule == "images-allowed-registries"
}

# ---------------------------------------------------------------------------
# Whole documents.

test_compliant_workloads_have_no_findings if {
	count(_findings(_deployment(_compliant_spec))) == 0
	count(_findings(_pod(_compliant_spec))) == 0
	count(_findings(_cronjob(_compliant_spec))) == 0
	count(_findings_with_registries(_deployment(_compliant_spec), ["registry.example.com/shop/"])) == 0
}

test_non_workloads_have_no_findings if {
	count(_findings({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}})) == 0
	count(_findings({"apiVersion": "v1", "kind": "ConfigMap", "data": {"image": "nginx:latest"}})) == 0
	count(_findings_with_registries({"apiVersion": "v1", "kind": "ConfigMap", "data": {"image": "nginx"}}, ["ghcr.io/"])) == 0
}

test_malformed_documents_do_not_error if {
	every doc in [
		_pod({"containers": [{"name": "a", "image": 5, "resources": "x", "livenessProbe": "x"}]}),
		_pod({"containers": [{"name": "a", "image": "", "resources": {"limits": []}}]}),
		_pod({"containers": [{"name": "a", "image": "@"}, {"name": "b", "image": ":"}, {"name": "c", "image": "/"}]}),
		_pod({"containers": [{"name": "a", "image": "a/b/c:d:e@f@g"}]}),
	] {
		is_set(_findings(doc))
		is_set(_findings_with_registries(doc, ["ghcr.io/"]))
	}
}

test_findings_follow_the_contract if {
	findings := _findings(_deployment({"containers": [{"name": "app", "image": "nginx"}]}))
	{f.rule | some f in findings} == {
		"images-no-latest",
		"images-digest",
		"resources-memory-limit",
		"resources-cpu-limit",
		"probes-liveness",
		"probes-readiness",
	}
	every f in findings {
		is_string(f.msg)
		is_string(f.fix)
		f.fix != ""
		f.container == "app"
		f.image == "nginx"
		array.slice(f.path, 0, 5) == array.concat(_dp, ["containers", 0])
	}
}

# ---------------------------------------------------------------------------
# Image reference parsing.

test_tag_digest_and_normalized_name if {
	not supplychain.tag("nginx")
	supplychain.tag("nginx:1.25") == "1.25"
	not supplychain.tag("registry:5000/app")
	supplychain.tag("registry:5000/app:2.0") == "2.0"
	not supplychain.tag(concat("", ["app@", _digest]))
	supplychain.tag(_pinned) == "1.4.2"
	supplychain.digest(_pinned) == _digest
	not supplychain.digest("nginx:1.25")
	supplychain.normalized("nginx") == "docker.io/library/nginx"
	supplychain.normalized("nginx:1.25") == "docker.io/library/nginx:1.25"
	supplychain.normalized("library/nginx") == "docker.io/library/nginx"
	supplychain.normalized("acme/app:1") == "docker.io/acme/app:1"
	supplychain.normalized("docker.io/nginx") == "docker.io/library/nginx"
	supplychain.normalized("index.docker.io/acme/app") == "docker.io/acme/app"
	supplychain.normalized("registry:5000/app") == "registry:5000/app"
	supplychain.normalized("localhost/app") == "localhost/app"
	supplychain.normalized("ghcr.io/acme/app:1") == "ghcr.io/acme/app:1"
}

# As distribution's splitDockerDomain: a first component with an upper-case
# letter names a registry, never a Docker Hub user (repositories are lower case).
test_normalized_reads_an_upper_case_first_component_as_a_host if {
	supplychain.normalized("INTERNAL/app:1") == "INTERNAL/app:1"
	supplychain.normalized("LOCALHOST/app") == "LOCALHOST/app"
	supplychain.normalized("Acme/app") == "Acme/app"
	supplychain.normalized("acme/app") == "docker.io/acme/app"
}

test_allowed_registries_does_not_take_an_upper_case_host_for_docker_hub if {
	doc := _pod({"containers": [_good("a", "INTERNAL/app:1"), _good("b", "LOCALHOST/app:1"), _good("c", "acme/app:1")]})
	_registry_denied(doc, ["docker.io/"], array.concat(_pp, ["containers", 0, "image"]))
	_registry_denied(doc, ["docker.io/"], array.concat(_pp, ["containers", 1, "image"]))
	not _registry_denied(doc, ["docker.io/"], array.concat(_pp, ["containers", 2, "image"]))
}

# The fast forms the rules use (see supply_chain.rego) agree with the
# readable definitions: _mutable_tag with tag(), pinned with the regex.
_hex := substring(_digest, count("sha256:"), -1)

_images := [
	"nginx", "nginx:latest", "nginx:1.25", "a/b:latest", "a/b:1:latest", "a:latest/b", "registry:5000/app",
	"registry:5000/app:latest", "localhost:5000/x:", "x/", ":latest", "app:latestx", "é/ü:latest",
	concat("", ["app@", _digest]), _pinned, concat("", ["app@sha256:", upper(_hex)]),
	concat("", ["app@", _digest, "a"]), concat("", ["@", _digest]), substring(concat("", ["@", _digest]), 1, -1),
	concat("", ["é@", _digest]), concat("", ["app@sha256:", substring(_hex, 1, -1)]),
]

# (_mutable_tag is only asked about images without a digest.)
test_mutable_tag_agrees_with_tag if {
	every image in [i | some i in _images; not contains(i, "@")] {
		_mutable(image) == _mutable_by_tag(image)
	}
}

_mutable(image) := true if supplychain._mutable_tag(image) else := false

_mutable_by_tag(image) := true if not supplychain.tag(image)
else := supplychain.tag(image) == "latest"

test_pinned_agrees_with_the_regex if {
	every image in _images {
		_pinned_by_digest(image) == regex.match(`@sha256:[a-f0-9]{64}$`, image)
	}
}

_pinned_by_digest(image) := true if supplychain.pinned(image) else := false

# ---------------------------------------------------------------------------
# images-unresolved-variable

test_unresolved_variable_fires_whatever_the_default if {
	every image in ["${IMG:=nginx:latest}", "${IMG}", "registry.example.com/app:${TAG}", concat("", ["${REPO}@", _digest])] {
		_denied(_pod({"containers": [_with_image(image)]}), "images-unresolved-variable", array.concat(_pp, ["containers", 0, "image"]))
	}
	_denied(
		_deployment({"containers": [_good("app", _pinned)], "initContainers": [_good("init", "${INIT_IMAGE}")]}),
		"images-unresolved-variable",
		array.concat(_dp, ["initContainers", 0, "image"]),
	)
}

test_unresolved_variable_is_silent_for_written_images if {
	_silent(_pod({"containers": [_with_image(_pinned)]}), "images-unresolved-variable")
	_silent(_pod({"containers": [_with_image("registry.example.com/$app:1")]}), "images-unresolved-variable")
}

# ---------------------------------------------------------------------------
# images-no-latest

test_no_latest_fires_on_missing_tag if {
	f := _finding(_deployment({"containers": [_with_image("nginx")]}), "images-no-latest", array.concat(_dp, ["containers", 0, "image"]))
	f.image == "nginx"
	f.container == "app"
	_denied(_deployment({"containers": [_with_image("nginx")]}), "images-no-latest", array.concat(_dp, ["containers", 0, "image"]))
}

test_no_latest_fires_on_latest_tag_of_init_container if {
	_denied(
		_cronjob({"initContainers": [_good("init", "busybox:latest")], "containers": [_good("app", _pinned)]}),
		"images-no-latest",
		array.concat(_cp, ["initContainers", 0, "image"]),
	)
}

test_no_latest_port_is_not_a_tag if {
	_denied(_pod({"containers": [_with_image("registry:5000/app")]}), "images-no-latest", array.concat(_pp, ["containers", 0, "image"]))
	_silent(_pod({"containers": [_with_image("registry:5000/app:1.0")]}), "images-no-latest")
}

test_no_latest_fires_on_ephemeral_container if {
	_denied(
		_pod({"containers": [_good("app", _pinned)], "ephemeralContainers": [{"name": "debug", "image": "busybox"}]}),
		"images-no-latest",
		array.concat(_pp, ["ephemeralContainers", 0, "image"]),
	)
}

test_no_latest_digest_pins_the_image if {
	_silent(_pod({"containers": [_with_image(concat("", ["app@", _digest]))]}), "images-no-latest")
	_silent(_pod({"containers": [_with_image(concat("", ["app:latest@", _digest]))]}), "images-no-latest")
}

test_no_latest_version_tag_is_allowed if {
	_silent(_deployment({"containers": [_with_image("nginx:1.25.3")]}), "images-no-latest")
}

# ---------------------------------------------------------------------------
# images-digest

test_digest_warns_on_tag_only if {
	f := _finding(_deployment({"containers": [_with_image("nginx:1.25.3")]}), "images-digest", array.concat(_dp, ["containers", 0, "image"]))
	f.image == "nginx:1.25.3"
	_warned(_deployment({"containers": [_with_image("nginx:1.25.3")]}), "images-digest", array.concat(_dp, ["containers", 0, "image"]))
	not _denied(_deployment({"containers": [_with_image("nginx:1.25.3")]}), "images-digest", array.concat(_dp, ["containers", 0, "image"]))
}

test_digest_warns_on_malformed_digest if {
	_warned(_pod({"containers": [_with_image("app@sha256:abc")]}), "images-digest", array.concat(_pp, ["containers", 0, "image"]))
}

test_digest_pinned_is_allowed if {
	_silent(_cronjob({"containers": [_with_image(_pinned)], "initContainers": [_good("i", concat("", ["busybox@", _digest]))]}), "images-digest")
}

# ---------------------------------------------------------------------------
# images-allowed-registries

test_allowed_registries_denies_other_registries if {
	doc := _deployment({
		"initContainers": [_good("init", "quay.io/acme/init:1")],
		"containers": [_good("app", "ghcr.io/acme/app:1"), _good("evil", "ghcr.io/evil/app:1")],
	})
	registries := ["ghcr.io/acme/", "registry.example.com/"]
	_registry_denied(doc, registries, array.concat(_dp, ["initContainers", 0, "image"]))
	_registry_denied(doc, registries, array.concat(_dp, ["containers", 1, "image"]))
	not _registry_denied(doc, registries, array.concat(_dp, ["containers", 0, "image"]))
}

test_allowed_registries_resolves_docker_hub_short_names if {
	doc := _pod({"containers": [_good("a", "nginx:1.25"), _good("b", "library/redis:7"), _good("c", "bitnami/redis:7")]})
	_registry_allowed(_pod({"containers": [_good("a", "nginx:1.25"), _good("b", "library/redis:7")]}), ["docker.io/library/"])
	_registry_denied(doc, ["docker.io/library/"], array.concat(_pp, ["containers", 2, "image"]))
	_registry_allowed(doc, ["docker.io/"])
	_registry_denied(doc, ["ghcr.io/"], array.concat(_pp, ["containers", 0, "image"]))
}

# The set reads no address: an IPv6 spelling of an IPv4 registry (IPv4-mapped,
# NAT64, IPv4-compatible) starts with no prefix written for the IPv4 address,
# so it is denied, never allowed under another name.
test_allowed_registries_takes_no_other_spelling_of_an_ipv4_registry if {
	images := ["[::ffff:a00:5]:5000/app:1", "[64:ff9b::a00:5]:5000/app:1", "[::a00:5]:5000/app:1"]
	doc := _pod({"containers": [_good(sprintf("c%d", [i]), image) | some i, image in images]})
	every i, _ in images {
		_registry_denied(doc, ["10.0.0.5:5000/"], array.concat(_pp, ["containers", i, "image"]))
	}
	_registry_allowed(_pod({"containers": [_good("a", "10.0.0.5:5000/app:1")]}), ["10.0.0.5:5000/"])
}

test_allowed_registries_checks_cronjob_and_ephemeral_containers if {
	_registry_denied(
		_cronjob({"containers": [_good("app", "ghcr.io/acme/app:1")], "ephemeralContainers": [{"name": "debug", "image": "busybox:1"}]}),
		["ghcr.io/acme/"],
		array.concat(_cp, ["ephemeralContainers", 0, "image"]),
	)
}

test_allowed_registries_off_when_absent_or_empty if {
	doc := _deployment({"containers": [_good("app", "quay.io/x/y:1")]})
	_silent(doc, "images-allowed-registries")
	_registry_allowed(doc, [])
	_registry_allowed(doc, "ghcr.io/")
	_registry_allowed(doc, {"not": "a list"})
}

test_allowed_registries_ignores_non_string_prefixes if {
	_registry_denied(_pod({"containers": [_good("app", "ghcr.io/acme/app:1")]}), [5, null], array.concat(_pp, ["containers", 0, "image"]))
}

# ---------------------------------------------------------------------------
# resources-memory-limit

test_memory_limit_denies_when_missing if {
	doc := _deployment({
		"initContainers": [{"name": "init", "image": _pinned, "resources": {"limits": {"cpu": "1"}}}],
		"containers": [object.union(_probes, {"name": "app", "image": _pinned, "resources": {"requests": {"memory": "1Gi"}}})],
	})
	_denied(doc, "resources-memory-limit", array.concat(_dp, ["initContainers", 0, "resources", "limits", "memory"]))
	_denied(doc, "resources-memory-limit", array.concat(_dp, ["containers", 0, "resources", "limits", "memory"]))
}

test_memory_limit_set_is_allowed if {
	_silent(_cronjob(_compliant_spec), "resources-memory-limit")
}

test_memory_limit_skips_ephemeral_containers if {
	_silent(_pod({"containers": [_good("app", _pinned)], "ephemeralContainers": [{"name": "debug", "image": _pinned}]}), "resources-memory-limit")
}

# ---------------------------------------------------------------------------
# resources-cpu-limit

test_cpu_limit_warns_when_missing if {
	doc := _cronjob({"containers": [object.union(_good("app", _pinned), {"resources": {"limits": {"memory": "1Gi", "cpu": null}}})]})
	_warned(doc, "resources-cpu-limit", array.concat(_cp, ["containers", 0, "resources", "limits", "cpu"]))
	not _denied(doc, "resources-cpu-limit", array.concat(_cp, ["containers", 0, "resources", "limits", "cpu"]))
}

test_cpu_limit_warns_on_init_container if {
	_warned(
		_pod({"initContainers": [{"name": "init", "image": _pinned, "resources": {"limits": {"memory": "64Mi"}}}], "containers": [_good("app", _pinned)]}),
		"resources-cpu-limit",
		array.concat(_pp, ["initContainers", 0, "resources", "limits", "cpu"]),
	)
}

test_cpu_limit_set_is_allowed if {
	_silent(_deployment(_compliant_spec), "resources-cpu-limit")
}

test_cpu_limit_skips_ephemeral_containers if {
	_silent(_pod({"containers": [_good("app", _pinned)], "ephemeralContainers": [{"name": "debug", "image": _pinned}]}), "resources-cpu-limit")
}

# ---------------------------------------------------------------------------
# probes-liveness and probes-readiness

test_probes_warn_when_missing if {
	doc := _deployment({"containers": [_good("app", _pinned), {"name": "side", "image": _pinned, "resources": _limits}]})
	_warned(doc, "probes-liveness", array.concat(_dp, ["containers", 1, "livenessProbe"]))
	_warned(doc, "probes-readiness", array.concat(_dp, ["containers", 1, "readinessProbe"]))
	not _fires(doc, "probes-liveness", array.concat(_dp, ["containers", 0, "livenessProbe"]))
}

test_probes_warn_on_bare_pod if {
	doc := _pod({"containers": [object.union(_good("app", _pinned), {"readinessProbe": null})]})
	_warned(doc, "probes-readiness", array.concat(_pp, ["containers", 0, "readinessProbe"]))
	_silent(doc, "probes-liveness")
}

test_probes_skip_batch_workloads if {
	bare := {"containers": [{"name": "task", "image": _pinned, "resources": _limits}]}
	_silent(_cronjob(bare), "probes-liveness")
	_silent(_cronjob(bare), "probes-readiness")
	_silent(_job(bare), "probes-liveness")
	_silent(_job(bare), "probes-readiness")
}

test_probes_skip_init_and_ephemeral_containers if {
	doc := _deployment({
		"initContainers": [{"name": "init", "image": _pinned, "resources": _limits}],
		"containers": [_good("app", _pinned)],
		"ephemeralContainers": [{"name": "debug", "image": _pinned}],
	})
	_silent(doc, "probes-liveness")
	_silent(doc, "probes-readiness")
}

# ---------------------------------------------------------------------------
# Image volumes (spec.volumes[].image.reference): the kubelet pulls their
# images as it pulls a container's, so every image rule judges them.

_image_volume(name, reference) := {"name": name, "image": {"reference": reference, "pullPolicy": "IfNotPresent"}}

_volume_spec(reference) := object.union(_compliant_spec, {"volumes": [
	{"name": "cache", "emptyDir": {}},
	_image_volume("tools", reference),
]})

_vp(prefix) := array.concat(prefix, ["volumes", 1, "image", "reference"])

test_image_volumes_are_judged_by_every_image_rule if {
	_denied(_deployment(_volume_spec("evil.example/tools:latest")), "images-no-latest", _vp(_dp))
	_denied(_pod(_volume_spec("busybox")), "images-no-latest", _vp(_pp))
	_warned(_cronjob(_volume_spec("registry.example.com/shop/tools:1")), "images-digest", _vp(_cp))
	_denied(_pod(_volume_spec("registry.example.com/tools:${TAG}")), "images-unresolved-variable", _vp(_pp))
	_registry_denied(_deployment(_volume_spec("evil.example/tools:1")), ["registry.example.com/"], _vp(_dp))
	_registry_denied(_pod(_volume_spec("INTERNAL/tools:1")), ["docker.io/"], _vp(_pp))
	_registry_denied(_pod(_volume_spec("tools:1")), ["registry.example.com/"], _vp(_pp))
}

test_image_volume_findings_follow_the_contract if {
	f := _finding(_pod(_volume_spec("evil.example/tools:latest")), "images-no-latest", _vp(_pp))
	f.volume == "tools"
	f.image == "evil.example/tools:latest"
	f.msg == "image volume \"tools\" uses image \"evil.example/tools:latest\" with the mutable tag :latest"
	not f.container
	g := _finding(_pod(_volume_spec("tools:1")), "images-digest", _vp(_pp))
	g.msg == "image volume \"tools\" uses image \"tools:1\", which is not pinned by digest"
}

test_pinned_image_volumes_from_allowed_registries_pass if {
	doc := _deployment(_volume_spec(_pinned))
	count(_findings(doc)) == 0
	count(_findings_with_registries(doc, ["registry.example.com/shop/"])) == 0
}

test_odd_volumes_do_not_error_or_fire if {
	every volumes in [
		[{"name": "a", "image": {}}, {"name": "b", "image": {"reference": ""}}],
		[{"name": "a", "image": {"reference": 5}}, {"name": "b", "image": "nginx"}, "x", 5, null],
		[{"image": {"reference": _pinned}}],
		{"name": "a", "image": {"reference": "nginx"}},
	] {
		doc := _pod(object.union(_compliant_spec, {"volumes": volumes}))
		count(_findings(doc)) == 0
		count(_findings_with_registries(doc, ["registry.example.com/shop/"])) == 0
	}
}

# ---------------------------------------------------------------------------
# Custom workloads: image rules at their paths; declared batch kinds skip probes.

_custom := {
	"CloneSet": {"apps.kruise.io": {"spec": ["spec", "template", "spec"], "metadata": ["spec", "template", "metadata"], "groups": ["apps.kruise.io"], "batch": false}},
	"ScaledJob": {"keda.sh": {"spec": ["spec", "jobTargetRef", "template", "spec"], "metadata": ["spec", "jobTargetRef", "template", "metadata"], "groups": ["keda.sh"], "batch": true}},
}

test_latest_image_in_a_cloneset_denied_at_its_path if {
	doc := {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet", "spec": {"template": {"spec": {"containers": [_good("app", "registry.example.com/app:latest")]}}}}
	_denied(doc, "images-no-latest", ["spec", "template", "spec", "containers", 0, "image"]) with data.trustgate.config.workloads as _custom
}

test_probes_skip_declared_batch_workloads if {
	doc := {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "spec": {"jobTargetRef": {"template": {"spec": {"containers": [{"name": "task", "image": _pinned, "resources": _limits}]}}}}}
	_silent(doc, "probes-liveness") with data.trustgate.config.workloads as _custom
	_silent(doc, "probes-readiness") with data.trustgate.config.workloads as _custom
	latest := json.patch(doc, [{"op": "replace", "path": "/spec/jobTargetRef/template/spec/containers/0/image", "value": "app:latest"}])
	_denied(latest, "images-no-latest", ["spec", "jobTargetRef", "template", "spec", "containers", 0, "image"]) with data.trustgate.config.workloads as _custom
	_silent(latest, "probes-liveness") with data.trustgate.config.workloads as _custom
}
