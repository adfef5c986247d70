"""Rego policies that several tests run.

`LATEST_TAG_POLICY`: a `deny` (rule `no-latest`, with a fix and a path) for a container
image with the `latest` tag, and a `warn` (rule `team-label`) for a Pod without a team label.
"""

from __future__ import annotations

LATEST_TAG_POLICY = """\
package main
import rego.v1

deny contains {"msg": sprintf("container %q uses a latest tag", [c.name]), "rule": "no-latest",
               "fix": "pin a version", "path": ["spec", "containers", i, "image"]} if {
  some i, c in input.spec.containers
  endswith(c.image, ":latest")
}

warn contains {"msg": "no team label", "rule": "team-label"} if {
  input.kind == "Pod"
  not input.metadata.labels.team
}
"""
