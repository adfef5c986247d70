package corpus.float_arith

import rego.v1

# OPA computes with arbitrary-precision decimals, regorus with binary floats.
warn contains msg if {
	msg := sprintf("sum %v", [0.1 + 0.2])
}

warn contains msg if {
	is_number(input.spec.replicas)
	msg := sprintf("third %v", [input.spec.replicas / 3])
}
