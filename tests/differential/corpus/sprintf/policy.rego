package corpus.sprintf

import rego.v1

# sprintf as OPA prints it (Go's fmt.Sprintf): trustgate keeps regorus' own sprintf
# only where the two print the same (ADR 0008).

# Verb/argument count mismatches: Go's %!v(MISSING) and %!(EXTRA type=value).
warn contains sprintf("missing %v and %v", [input.kind])

warn contains sprintf("extra %v", [input.kind, input.spec.replicas, input.metadata.labels])

warn contains sprintf("no verbs", [input.spec.x])

warn contains sprintf("%v %d %s", [])

# The Gatekeeper horizontalpodautoscaler template: 6 verbs, 5 arguments.
warn contains msg if {
	msg := sprintf("The %v <%v> minReplicas %v or maxReplicas %v is not allowed: %v. Allowed ranges: %v", [input.kind, input.metadata.name, input.spec.replicas, 3, {"min": 1}])
}

# Verbs that do not fit the argument: %!d(float64=2.5), %!s(int64=3).
warn contains sprintf("d %d", [input.spec.replicas])

warn contains sprintf("s %s", [input.spec.replicas])

warn contains sprintf("d-name %d", [input.metadata.name])

# %v of every type: sets (`set()` when empty), objects with sorted keys, floats.
warn contains sprintf("v %v", [input.spec.x])

warn contains sprintf("v %v", [input.spec])

warn contains sprintf("set %v %v", [{x | some x in ["b", "a"]}, {x | some x in []}])

warn contains sprintf("floats %v %v %v %v", [input.spec.replicas / 3, 1.5e-7, 12345678.5, -0.25])

warn contains sprintf("labels %v", [object.get(input.metadata, "labels", null)])

warn contains sprintf("neg %d %v", [0 - count(input.metadata), 0 - 3])

# Flags, width, precision, other verbs.
warn contains sprintf("[%5s|%-6v|%05d|%.2f|%x|%q|%t|%T]", [input.kind, input.metadata.name, 42, 2.5, "hi", input.kind, true, input.spec.replicas])

warn contains sprintf("%[2]v-%[1]v", [input.kind, input.metadata.name])

warn contains sprintf("%e|%g|%8.3f|%+d", [input.spec.replicas, 0.000012345, 3.14159, 7])

# Percent signs and a format that is not a literal.
warn contains sprintf("100%% of %v", [input.kind])

warn contains sprintf("trailing %", [])

warn contains msg if {
	format := concat("", ["%v", " / ", "%v"])
	msg := sprintf(format, [input.kind])
}

warn contains msg if {
	args := [input.kind, input.spec.replicas]
	msg := sprintf("args %v %v %v", args)
}

# Strings that need quoting inside composite values.
warn contains sprintf("quoted %v", [["tab\there", "quote\"", "é", input.metadata.name]])

# %q: regorus' own for a string of printable ASCII, Go's for any other string (where the
# two Unicode tables differ: code points Go's leaves unassigned) and for other types.
warn contains sprintf("%s %q", [input.kind, input.metadata.name])

warn contains sprintf("q %q", [input.spec.x])

warn contains sprintf("q2 %q and %q", [input.metadata.name, input.spec.replicas])

warn contains sprintf("q3 %q", ["literal ✓"])
