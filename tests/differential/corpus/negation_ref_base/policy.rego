package corpus.negation_ref_base

import rego.v1

# A call or a composite at the base of a reference under `not`: OPA moves the base out
# of the negation (expandExprRef), so an undefined argument makes the body undefined.

registry(img) := parts if {
	is_string(img)
	parts := split(img, "/")
	count(parts) > 1
}

g(x) := {"k": 1} if x == "web"

trusted if not registry(input.spec.image)[0] == "evil.io"

deny contains "untrusted" if not trusted

deny contains "split-base" if not split(input.spec.image, "/")[0] == "evil.io"

deny contains "union-base" if not object.union(input.spec.sc, {"z": 1}).z == 1

deny contains "unmarshal-base" if not json.unmarshal(input.spec.j).a == 1

deny contains "array-base" if not [lower(input.spec.s)][0] == "x"

deny contains "array-ref-base" if not [input.spec.s][0] == "x"

deny contains "object-base" if not {"k": lower(input.spec.s)}.k == "x"

deny contains "concat-base" if not array.concat(input.spec.arr, [1])[0] == 1

deny contains "keys-base" if not object.keys(input.spec.sc)["a"]

deny contains "fn-base" if not g(input.metadata.name).k == 1

deny contains "fn-brack-base" if not g(input.metadata.name)["k"] == 1

deny contains "nested-base" if not startswith(split(input.spec.image, "/")[0], "evil")

deny contains msg if {
	some c in input.spec.containers
	not split(c.image, ":")[1] == "latest"
	msg := sprintf("not latest %v", [c.name])
}

deny contains "with-base" if {
	not split(input.spec.image, "/")[0] == "evil.io" with input.spec.image as "evil.io/x"
}
