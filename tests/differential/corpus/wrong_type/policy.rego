package corpus.wrong_type

import rego.v1

deny contains "startswith" if startswith(input.spec.x, "a")

deny contains "not-startswith" if not startswith(input.spec.x, "a")

deny contains "lower" if lower(input.metadata.name) == "web"

deny contains "count" if count(input.spec.containers) > 1

deny contains msg if {
	some c in input.spec.containers
	contains(c.image, "sha256")
	msg := sprintf("digest %v", [c.name])
}

deny contains "to-number" if to_number(input.spec.replicas) > 2

deny contains "split" if count(split(input.spec.x, "b")) > 1

deny contains "concat" if concat(",", input.spec.x) == "a,b"

deny contains "plus" if input.spec.replicas + 1 > 3

deny contains "not-endswith-name" if not endswith(input.metadata.name, "x")

warn contains msg if {
	msg := sprintf("replicas %d", [input.spec.replicas])
}
