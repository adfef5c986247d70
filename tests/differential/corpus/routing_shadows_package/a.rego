# A rule of another module of the package named like an integer local of this one.
package corpus.routing_shadows_package

import rego.v1

other contains v if {
	v := count(input.l)
}

deny contains "ceil positive" if ceil(v) > 0
