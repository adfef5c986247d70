# The same divergences in Rego v0 (hunt-rego c12).
package corpus.go_builtins_v0

deny[msg] {
	not regex.match("^[\\w-]+$", input.name)
	msg := sprintf("bad name %v", [input.name])
}

deny["too short"] {
	count(input.name) < 2
}

deny["reserved"] {
	upper(input.name) == "STRASSE"
}

warn[x] {
	x := regex.find_n(`\d+`, input.name, -1)[_]
}
