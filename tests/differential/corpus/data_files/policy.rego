package corpus.data_files

import rego.v1

deny contains msg if {
	some c in input.spec.containers
	not allowed(c.image)
	msg := sprintf("%v not from %v", [c.image, data.corpus.registries])
}

allowed(image) if {
	some r in data.corpus.registries
	startswith(image, r)
}

warn contains msg if {
	limit := data.corpus.max_replicas[input.kind]
	input.spec.replicas > limit
	msg := sprintf("%v replicas over %v", [input.kind, limit])
}

deny contains "team-unknown" if {
	input.metadata.labels.team
	not data.corpus.teams[input.metadata.labels.team]
}
