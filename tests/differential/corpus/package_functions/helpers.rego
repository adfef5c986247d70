# A conftest helpers file: functions named like built-ins, for the package's other modules
# (ADR 0008, item 17): `lower` and `count` here are the package's, not the built-ins.
package corpus.package_functions

import rego.v1

lower(s) := "blocked.io" if startswith(s, "evil.io/")

lower(s) := s if not startswith(s, "evil.io/")

k8s.is_pod(x) if x.kind == "Pod"
