package corpus.with_strings

import rego.v1

# A `with` whose value is a string literal ends the statement: regorus' span of the
# statement stops before the closing quote, which the rewrite of `not f(ref)` copies.

is_a(x) if x == "a"

deny contains "with-string" if {
	not is_a(input.kind) with input.kind as "b"
}

deny contains "with-raw-string" if {
	not is_a(input.kind) with input.kind as `b`
}

deny contains "with-two" if {
	not is_a(input.kind) with input.other as "x" with input.kind as "b"
	true
}

deny contains "eq-string" if {
	not lower(input.kind) == "b" with input.kind as "A"
}

deny contains "bare-with-string" if not is_a(input.kind) with input.kind as "b"

deny contains "bare-eq-string" if not lower(input.kind) == "pod"
