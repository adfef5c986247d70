package corpus.rules_basic

import rego.v1

deny contains msg if {
	input.kind == "Pod"
	msg := sprintf("pod %v", [input.metadata.name])
}

violation contains {"msg": "no labels", "rule": "labels", "fix": "add labels", "path": "metadata.labels"} if {
	not input.metadata.labels
}

warn contains {"msg": sprintf("kind %v", [input.kind]), "details": {"k": input.kind}} if input.kind

deny_privileged contains msg if {
	some c in input.spec.containers
	c.securityContext.privileged == true
	msg := sprintf("%v is privileged", [c.name])
}

violation_latest contains {"msg": "latest tag", "path": ["spec", "template"]} if {
	some c in input.spec.template.spec.containers
	endswith(c.image, ":latest")
}

warn_service if input.kind == "Service"

deny_never if false
