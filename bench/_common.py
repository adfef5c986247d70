"""What the registry benchmarks share (bench/images.py, bench/summaries.py, bench/presync.py).

A local `docker-registry` for one run, images pushed with a keyless signature and a
SLSA v1 provenance attestation signed by the private test Sigstore instance in
fixtures/ (test-only keys), and the image rule that verifies them. Imported by
the scripts as they are run (`python bench/x.py` puts bench/ on the path); the
script sets up `sys.path` for the repository before importing this module.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.oci_push import Pushed, attach_referrer, push_image
from support.registry import RegistryProcess, start_registry

from fixtures.sigstore_instance import Signer, SigstoreInstance, statement
from trustgate.config import AttestationRequirement, AuthorityConfig, IdentityConfig, ImageRule
from trustgate.oci.client import RegistryClient

ROOT = Path(__file__).resolve().parent.parent
IDENTITY = "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.4.2"
ISSUER = "https://token.actions.githubusercontent.com"
BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"
# The data of the bundled SLSA policy: the builder above, sources of acme's repositories.
SLSA_DATA = {"trustgate": {"slsa": {"builders": [BUILDER], "sources": ["git+https://github.com/acme/*"]}}}


def with_registry(prefix: str, run: Callable[[Path, RegistryProcess], dict[str, Any]]) -> dict[str, Any]:
    """Start a registry in a temporary directory, call `run(tmp, registry)`, stop it; the figures."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp_name:
        tmp = Path(tmp_name)
        registry = start_registry(tmp / "registry")
        try:
            return run(tmp, registry)
        finally:
            registry.stop()


def write_json(path: Path | None, figures: dict[str, Any]) -> None:
    """Write the figures to `path` (`--json`), if given."""
    if path:
        path.write_text(json.dumps(figures, indent=2) + "\n")


def push_attested_image(
    client: RegistryClient, sigstore: SigstoreInstance, signer: Signer, ref: str
) -> tuple[Pushed, bytes]:
    """Push a small image to `ref` with a signature and a SLSA provenance bundle as referrers.

    Returns:
        The image and its signature bundle.
    """
    image = push_image(client, ref, content=os.urandom(32))
    signature = sigstore.sign_artifact(image.digest, signer)
    attach_referrer(client, image.ref, image, signature)
    predicate = {
        "buildDefinition": {
            "externalParameters": {
                "workflow": {"repository": "https://github.com/acme/shop", "ref": "refs/tags/v1"}
            }
        },
        "runDetails": {"builder": {"id": BUILDER}},
    }
    attestation = statement(image.digest, "https://slsa.dev/provenance/v1", predicate)
    attach_referrer(client, image.ref, image, sigstore.attest(attestation, signer))
    return image, signature


def ci_authority() -> AuthorityConfig:
    """The keyless authority `ci` (trust root `bench`) of the images' signer."""
    return AuthorityConfig(
        name="ci", trust_root="bench", identities=(IdentityConfig(subject=IDENTITY, issuer=ISSUER),)
    )


def slsa_rule(host: str) -> ImageRule:
    """The rule `bench`: every image under `<host>/bench/` signed by `ci`, with SLSA provenance."""
    return ImageRule(
        name="bench",
        images=(f"{host}/bench/**",),
        authorities=("ci",),
        attestations=(
            AttestationRequirement(
                name="provenance",
                predicate_type="https://slsa.dev/provenance/v1",
                authorities=("ci",),
                policy_path=ROOT / "policies" / "attestations" / "slsa_provenance.rego",
            ),
        ),
    )
