package corpus.arith

import rego.v1

deny contains "gt-mixed" if input.spec.replicas > 2

deny contains "lt-string" if input.spec.x < "b"

deny contains "eq-float" if input.spec.replicas == 3.0

deny contains msg if {
	n := input.spec.replicas * 2
	msg := sprintf("double %v", [n])
}

deny contains msg if {
	n := input.spec.replicas / 2
	msg := sprintf("half %v", [n])
}

warn contains msg if {
	is_number(input.spec.replicas)
	n := input.spec.replicas % 2
	msg := sprintf("mod %v", [n])
}

warn contains msg if {
	is_number(input.spec.replicas)
	msg := sprintf("round %v abs %v", [round(input.spec.replicas), abs(input.spec.replicas - 10)])
}

warn contains "sorted" if {
	sort([3, "a", null, true, [1], {"a": 1}]) == [null, true, 3, "a", [1], {"a": 1}]
}
