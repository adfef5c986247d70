# Calls resolved to functions of the package defined in another module (helpers.rego): in OPA
# the package's function wins over the built-in, whichever file defines it.
package corpus.package_functions

import rego.v1

deny contains sprintf("image %v is from a blocked registry", [c.image]) if {
	some c in input.spec.containers
	lower(c.image) == "blocked.io"
}

deny contains "pod" if k8s.is_pod(input)
