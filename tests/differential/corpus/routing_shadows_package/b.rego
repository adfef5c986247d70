package corpus.routing_shadows_package

import rego.v1

v := input.n
