package corpus.negation_ref_base_v0

registry(img) = parts {
	is_string(img)
	parts := split(img, "/")
	count(parts) > 1
}

approved { not split(input.spec.image, "/")[0] == "evil.io" }

deny["image not approved"] { not approved }

trusted { not registry(input.spec.image)[0] == "evil.io" }

deny["untrusted"] { not trusted }

deny[msg] {
	not object.union(input.spec.sc, {"z": 1}).z == 1
	msg := "union-base"
}

deny[msg] {
	not [lower(input.spec.s)][0] == "x"
	msg := "array-base"
}

deny["keys-base"] { not object.keys(input.spec.sc)["a"] }
