"""One gate process's image verifier, for tests that need two processes sharing a cache.

Usage: python image_worker.py <trustgate.yaml> <reference>...; prints one JSON line per
reference: {"reference", "status", "cache", "problems"}.
"""

from __future__ import annotations

import json
import sys

from trustgate.artifacts.policy import ImagePolicy
from trustgate.artifacts.verifier import ImageVerifier
from trustgate.config import load_config
from trustgate.oci.client import RegistryClient, RegistrySettings


def main(argv: list[str]) -> int:
    config = load_config(argv[0])
    registries = config.images.registries
    client = RegistryClient(
        RegistrySettings(
            insecure=registries.insecure,
            docker_config=registries.docker_config,
            timeout_seconds=registries.timeout_seconds,
        )
    )
    verifier = ImageVerifier(ImagePolicy(config.images), client)
    for reference in argv[1:]:
        result = verifier.verify(reference)
        problems = [p.message for p in result.problems]
        print(
            json.dumps(
                {"reference": reference, "status": result.status, "cache": result.cache, "problems": problems}
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
