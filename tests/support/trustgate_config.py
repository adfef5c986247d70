"""trustgate.yaml for tests that check images or commits and no manifests."""

from __future__ import annotations

import textwrap
from pathlib import Path

# No Rego policies and no Kubernetes schemas: what is checked is what the body configures.
NO_MANIFEST_CHECKS = """\
apiVersion: trustgate.dev/v1alpha1
kind: Config
manifests: {policies: []}
kubernetes: {schemas: false}
"""


def write_config(directory: Path, body: str) -> Path:
    """`directory`/trustgate.yaml: NO_MANIFEST_CHECKS, then `body` dedented; its path."""
    path = directory / "trustgate.yaml"
    path.write_text(NO_MANIFEST_CHECKS + textwrap.dedent(body))
    return path
