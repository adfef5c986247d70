package corpus.conflicts

import rego.v1

single := input.spec.replicas if input.kind

single := 2 if input.kind == "Pod"

deny contains msg if {
	single > 1
	msg := sprintf("single %v", [single])
}

obj[k] := v if {
	some c in input.spec.containers
	k := "image"
	v := c.image
}

warn contains msg if {
	obj.image
	msg := "has image"
}
