# SLSA provenance (v0.2 and v1): who built the image, from which source.
#
# Input: one verified in-toto statement (see the README's "Attestation
# policies"): input.predicateType, input.predicate, input.subject,
# input.signer, input.image.
#
# Data (all optional; an absent list allows anything):
#   data.trustgate.slsa.builders  exact builder ids, e.g.
#       "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"
#   data.trustgate.slsa.sources   globs over the source URI ("*" stays within a path segment), e.g. "git+https://github.com/acme/*"
#   data.trustgate.slsa.refs      globs over the source ref, e.g. "refs/tags/v*"
package trustgate.attestations.slsa

import rego.v1

_v1 := "https://slsa.dev/provenance/v1"

_v02 := "https://slsa.dev/provenance/v0.2"

# Only data.trustgate.slsa: a rule that reads all of `data` depends on itself, which
# OPA rejects (rego_recursion_error) and trustgate refuses (ADR 0008).
default _settings := {}

_settings := data.trustgate.slsa

_builders := object.get(_settings, "builders", [])

_sources := object.get(_settings, "sources", [])

_refs := object.get(_settings, "refs", [])

# The builder id, by provenance version.
builder_id := input.predicate.runDetails.builder.id if input.predicateType == _v1

builder_id := input.predicate.builder.id if input.predicateType == _v02

# The source repository and ref. v1 from GitHub Actions builds names the
# workflow's repository and ref; otherwise the first resolved dependency
# ("git+https://host/org/repo@refs/tags/v1") carries both.
source_uri := concat("", ["git+", _workflow.repository]) if {
	input.predicateType == _v1
	_workflow.repository
}

source_ref := _workflow.ref if {
	input.predicateType == _v1
	_workflow.ref
}

source_uri := _split_uri(_first_dependency)[0] if {
	input.predicateType == _v1
	not _workflow.repository
}

source_ref := _split_uri(_first_dependency)[1] if {
	input.predicateType == _v1
	not _workflow.ref
}

source_uri := _split_uri(input.predicate.invocation.configSource.uri)[0] if input.predicateType == _v02

source_ref := _split_uri(input.predicate.invocation.configSource.uri)[1] if input.predicateType == _v02

_workflow := object.get(input.predicate, ["buildDefinition", "externalParameters", "workflow"], {})

_first_dependency := input.predicate.buildDefinition.resolvedDependencies[0].uri

_split_uri(uri) := [uri, ""] if not contains(uri, "@")

_split_uri(uri) := [substring(uri, 0, i), substring(uri, i + 1, -1)] if {
	contains(uri, "@")
	i := indexof(uri, "@")
}

deny contains msg if {
	not input.predicateType in {_v1, _v02}
	msg := sprintf("is %s, not SLSA provenance v0.2 or v1", [input.predicateType])
}

deny contains "the provenance names no builder" if {
	input.predicateType in {_v1, _v02}
	not builder_id
}

deny contains msg if {
	count(_builders) > 0
	builder_id
	not builder_id in _builders
	msg := sprintf("built by %s, which is not an allowed builder (allowed: %s)", [builder_id, concat(", ", _builders)])
}

deny contains "the provenance names no source repository" if {
	count(_sources) > 0
	not source_uri
}

deny contains msg if {
	count(_sources) > 0
	source_uri
	not _any_glob(_sources, source_uri)
	msg := sprintf("built from %s, and the policy wants %s", [source_uri, concat(" or ", _sources)])
}

deny contains msg if {
	count(_refs) > 0
	source_uri
	not _any_glob(_refs, object.get({"r": source_ref}, "r", ""))
	msg := sprintf("built from ref %q, and the policy wants %s", [object.get({"r": source_ref}, "r", ""), concat(" or ", _refs)])
}

_any_glob(patterns, value) if {
	some pattern in patterns
	glob.match(pattern, ["/"], value)
}
