package corpus.strings_builtins

import rego.v1

warn contains msg if {
	msg := sprintf("%v|%s|%d", [input.metadata.name, input.kind, count(input.metadata)])
}

warn contains msg if {
	msg := sprintf("labels %v", [input.metadata.labels])
}

warn contains msg if {
	some c in input.spec.containers
	parts := split(c.image, ":")
	msg := sprintf("tag %v of %v", [parts[count(parts) - 1], upper(c.name)])
}

warn contains msg if {
	some c in input.spec.containers
	regex.match(`^[a-z.]+/`, c.image)
	msg := sprintf("registry %v", [trim_suffix(c.image, ":latest")])
}

warn contains msg if {
	glob.match("*.example.com/*", ["/"], input.spec.containers[_].image)
	msg := "glob"
}

warn contains msg if {
	msg := json.marshal({"b": input.kind, "a": [1, 2.5, "x"]})
}

warn contains msg if {
	msg := sprintf("get %v", [object.get(input, ["spec", "template", "spec", "containers", 0, "name"], "none")])
}

warn contains msg if {
	s := {x | some x in ["b", "a", "c"]} | {"d"}
	msg := concat(",", s)
}

warn contains msg if {
	msg := sprintf("union %v", [object.union({"a": 1}, {"b": input.kind})])
}

warn contains msg if {
	msg := sprintf("num %v %v", [1.5, 100000000])
}

warn contains msg if {
	msg := sprintf("sub %v idx %v", [substring("abcdef", 1, 3), indexof("abcdef", "d")])
}

warn contains msg if {
	msg := sprintf("rep %v", [replace(input.kind, "o", "0")])
}
