package corpus.negation

import rego.v1

deny contains "missing-startswith" if not startswith(input.spec.missing, "x")

deny contains "x-not-a" if not startswith(input.spec.x, "a")

deny contains "not-f" if not is_web(input.metadata.name)

deny contains "not-lower" if {
	not lower(input.metadata.labels.app) == "web"
}

deny contains "not-count" if not count(input.spec.containers) > 1

deny contains "not-ref" if not input.spec.template

deny contains "not-eq-ref" if not input.spec.x == "abc"

deny contains "not-in" if not input.kind in {"Pod", "Service"}

deny contains "not-in-ref" if not "web" in input.metadata.labels

deny contains "not-rule-arg" if not is_web(name)

deny contains msg if {
	some c in input.spec.containers
	not startswith(c.image, "registry.example.com/")
	msg := sprintf("untrusted %v", [c.name])
}

deny contains msg if {
	some c in input.spec.containers
	not c.securityContext.privileged == false
	msg := sprintf("not unprivileged %v", [c.name])
}

deny contains "every-not" if {
	every c in input.spec.containers {
		not startswith(c.image, "evil")
	}
}

deny contains "compr-not" if {
	names := [n | some c in input.spec.containers; n := c.name; not endswith(n, input.spec.suffix)]
	count(names) > 0
}

deny contains "not-nested-call" if not startswith(trim_space(input.spec.missing), "x")

deny contains "not-key" if not input.metadata.labels[input.spec.key]

is_web(n) if n == "web"

name := input.metadata.name
