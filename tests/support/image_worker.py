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
from trustgate.oci.client import registry_client


def main(argv: list[str]) -> int:
    config = load_config(argv[0])
    client = registry_client(config.images.registries)
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
