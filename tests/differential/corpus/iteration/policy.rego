package corpus.iteration

import rego.v1

images contains img if {
	some c in input.spec.containers
	img := c.image
}

by_name[c.name] := c.image if {
	some c in input.spec.containers
}

deny contains msg if {
	some img in images
	not contains(img, "@sha256:")
	msg := sprintf("unpinned %v", [img])
}

deny contains msg if {
	some name, img in by_name
	startswith(img, "b")
	msg := sprintf("b image in %v", [name])
}

deny contains "all-named" if {
	every c in input.spec.containers {
		c.name
	}
}

warn contains msg if {
	ports := {p | some c in input.spec.containers; some p in c.ports; p.containerPort}
	count(ports) > 0
	msg := sprintf("%d container ports", [count(ports)])
}

warn contains msg if {
	kinds := {k: v | some k, v in input.metadata.labels}
	some k, v in kinds
	msg := sprintf("label %v=%v", [k, v])
}

warn contains msg if {
	some i, c in input.spec.containers
	i > 0
	msg := sprintf("container %v at %v", [c.name, i])
}

default replicas := 1

replicas := input.spec.replicas if is_number(input.spec.replicas)

warn contains msg if {
	replicas > 1
	msg := sprintf("replicas %v", [replicas])
}

level := "high" if {
	input.spec.replicas > 2
} else := "low" if {
	input.spec.replicas
} else := "none"

warn contains sprintf("level %v", [level])

deny contains msg if {
	xs := [x | some x in input.spec.x]
	count(xs) > 1
	msg := concat("+", [sprintf("%v", [x]) | some x in xs])
}
