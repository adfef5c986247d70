package corpus.refs_with

import rego.v1

kind_is_pod if input.kind == "Pod"

deny contains "with-input" if {
	kind_is_pod with input as {"kind": "Pod"}
	not kind_is_pod
}

deny contains "with-data" if {
	limits.max == 3 with data.corpus.refs as {"max": 3}
}

limits := data.corpus.refs

deny contains msg if {
	some k
	input.metadata.labels[k]
	msg := sprintf("label key %v", [k])
}

deny contains msg if {
	x := input.spec.containers[i].name
	msg := sprintf("name %v at %v", [x, i])
}
