package corpus.negation_v0

# The shape of Gatekeeper's psp `users` template: a parameter that may be absent.
violation[{"msg": msg}] {
	rule := "MustRunAs"
	value := input.spec.replicas
	not accept_value(rule, value, input.parameters.ranges)
	msg := sprintf("%v not accepted", [value])
}

accept_value(rule, value, ranges) {
	rule == "MustRunAs"
	range := ranges[_]
	value >= range.min
	value <= range.max
}

deny[msg] {
	not startswith(input.spec.missing, "x")
	msg := "v0 missing"
}
