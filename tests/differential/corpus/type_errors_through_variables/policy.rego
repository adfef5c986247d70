package corpus.type_errors_through_variables

import rego.v1

# Types that reach a call through a variable or a user function: OPA's type checker
# refuses the module (rego_type_error), trustgate evaluates it (KNOWN_MODULES, ADR 0008).

is_bad(x) if x == "bad"

deny contains "array to a string function" if {
	some c in input.spec.containers
	is_bad([c.image])
}

deny contains "number through a variable" if {
	n := 5
	startswith(n, "a")
}
