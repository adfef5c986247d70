# A name bound in a body, as an argument, by `every` or `with` where a rule of that name is
# a collection (ADR 0008, item 13): `count` of it may count a string (UTF-16 units in
# regorus, code points in OPA). A rule named like an integer local is not an integer.
package corpus.routing_shadows

import rego.v1

xs contains 1

deny contains sprintf("local %d", [n]) if {
	xs := input.s
	n := count(xs)
}

f(xs) := count(xs)

deny contains sprintf("argument %d", [n]) if n := f(input.s)

deny contains "every: short" if {
	every xs in input.l {
		count(xs) < 3
	}
}

n_xs := count(xs)

deny contains sprintf("with %d", [m]) if {
	m := n_xs with data.corpus.routing_shadows.xs as input.s
}

deny contains sprintf("comprehension %v", [m]) if {
	m := [n | xs := input.l[_]; n := count(xs)]
}

v := input.n

other contains v if {
	v := count(input.l)
}

deny contains "ceil positive" if ceil(v) > 0

off := input.o

other contains off if {
	off := count(input.l)
}

deny contains sprintf("substring %s", [m]) if m := substring(input.t, off, 2)
