package corpus.v0_basic

import future.keywords.in

deny[msg] {
	input.kind == "Pod"
	msg := sprintf("v0 pod %v", [input.metadata.name])
}

warn[msg] {
	some c in input.spec.containers
	not c.securityContext
	msg := sprintf("%v has no securityContext", [c.name])
}

violation[{"msg": msg}] {
	count(labels) == 0
	msg := "empty labels"
}

labels = l {
	l := input.metadata.labels
} else = {} {
	true
}

kind_class(k) = "workload" {
	k in {"Pod", "Deployment"}
} else = "other" {
	true
}

warn[msg] {
	msg := sprintf("class %v", [kind_class(input.kind)])
}

deny_service[msg] {
	input.kind == "Service"
	input.spec.type == "LoadBalancer"
	msg := "load balancer"
}

deny[msg] {
	input.spec.replicas > 2
	msg := "many replicas"
}
