package corpus.print_stmt

import rego.v1

deny contains msg if {
	print("kind", input.kind, "missing", input.missing)
	input.kind == "Pod"
	msg := "pod"
	print("found", msg)
}

warn contains "always" if print("hello")
