package trustgate.attestations.slsa_test

import rego.v1

import data.trustgate.attestations.slsa

_builder := "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"

_v1(repository, ref) := {
	"predicateType": "https://slsa.dev/provenance/v1",
	"predicate": {
		"buildDefinition": {
			"buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
			"externalParameters": {"workflow": {"repository": repository, "ref": ref, "path": ".github/workflows/release.yml"}},
		},
		"runDetails": {"builder": {"id": _builder}},
	},
}

_v02(uri) := {
	"predicateType": "https://slsa.dev/provenance/v0.2",
	"predicate": {"builder": {"id": _builder}, "invocation": {"configSource": {"uri": uri, "entryPoint": "release.yml"}}},
}

_settings := {"builders": [_builder], "sources": ["git+https://github.com/acme/*"], "refs": ["refs/tags/v*"]}

test_v1_from_an_allowed_builder_source_and_ref_passes if {
	count(slsa.deny) == 0 with input as _v1("https://github.com/acme/api", "refs/tags/v1.4.2")
		with data.trustgate.slsa as _settings
}

test_v02_from_an_allowed_source_passes if {
	count(slsa.deny) == 0 with input as _v02("git+https://github.com/acme/api@refs/tags/v2.0.0")
		with data.trustgate.slsa as _settings
}

test_another_builder_is_denied if {
	msgs := slsa.deny with input as _v1("https://github.com/acme/api", "refs/tags/v1")
		with data.trustgate.slsa as object.union(_settings, {"builders": ["https://example.com/other"]})
	some msg in msgs
	startswith(msg, sprintf("built by %s, which is not an allowed builder", [_builder]))
}

test_another_repository_is_denied_with_both_named if {
	msgs := slsa.deny with input as _v1("https://github.com/evil/api", "refs/tags/v1")
		with data.trustgate.slsa as _settings
	msgs == {"built from git+https://github.com/evil/api, and the policy wants git+https://github.com/acme/*"}
}

test_a_branch_build_is_denied_when_tags_are_required if {
	msgs := slsa.deny with input as _v02("git+https://github.com/acme/api@refs/heads/dev")
		with data.trustgate.slsa as _settings
	msgs == {"built from ref \"refs/heads/dev\", and the policy wants refs/tags/v*"}
}

test_v1_without_workflow_uses_the_first_resolved_dependency if {
	statement := {
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate": {
			"buildDefinition": {"resolvedDependencies": [{"uri": "git+https://github.com/acme/api@refs/tags/v3"}]},
			"runDetails": {"builder": {"id": _builder}},
		},
	}
	count(slsa.deny) == 0 with input as statement with data.trustgate.slsa as _settings
	slsa.source_ref == "refs/tags/v3" with input as statement
}

test_a_provenance_without_builder_is_denied if {
	msgs := slsa.deny with input as {"predicateType": "https://slsa.dev/provenance/v1", "predicate": {}}
	"the provenance names no builder" in msgs
}

test_another_predicate_type_is_denied if {
	msgs := slsa.deny with input as {"predicateType": "https://spdx.dev/Document", "predicate": {}}
	msgs == {"is https://spdx.dev/Document, not SLSA provenance v0.2 or v1"}
}

test_without_settings_any_builder_and_source_pass if {
	count(slsa.deny) == 0 with input as _v1("https://github.com/anyone/thing", "refs/heads/main")
}
