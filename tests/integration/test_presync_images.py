"""`trustgate presync` verifies the candidate's images: a local registry, a private Sigstore instance."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.gitrepo import Repo, allowed_signers, ssh_key
from support.oci_push import attach_referrer, push_image
from support.registry import RegistryProcess
from support.sigstore import GITHUB_ISSUER, SigstoreInstance
from support.trustgate_config import write_config

from trustgate.cli.main import main
from trustgate.oci.client import RegistryClient

RELEASE = "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.4.2"
GATED = "refs/heads/trustgate/verified"


@pytest.fixture(scope="module")
def client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    c = RegistryClient(registry.settings())
    yield c
    c.close()


def deployment(image: str) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n"
        "  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n"
        f"    spec:\n      containers:\n        - {{name: api, image: '{image}'}}\n"
    )


def test_only_a_tree_whose_images_verify_advances(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance
) -> None:
    signed = push_image(client, f"{registry.host}/presync/api:v1", content=os.urandom(16))
    attach_referrer(
        client, signed.ref, signed, sigstore.sign_artifact(signed.digest, sigstore.identity(RELEASE))
    )
    push_image(client, f"{registry.host}/presync/api:unsigned", content=os.urandom(16))

    sigstore.write_trusted_root(tmp_path / "trusted_root.json")
    alice = ssh_key(tmp_path / "keys", "alice@example.com")
    allowed_signers(tmp_path / "allowed_signers", alice)
    config = write_config(
        tmp_path,
        f"""\
        commits: {{allowedSigners: allowed_signers}}
        presync: {{paths: [apps]}}
        images:
          trustRoots: [{{name: test-instance, trustedRoot: trusted_root.json}}]
          authorities:
            - name: ci
              keyless:
                trustRoot: test-instance
                identities:
                  - subjectRegExp: 'https://github\\.com/acme/[^@]+@refs/tags/v[^@]+'
                    issuer: {GITHUB_ISSUER}
          rules:
            - {{name: shop, images: ["{registry.host}/presync/**"], signatures: {{authorities: [ci]}}}}
          unmatched: deny
          registries: {{insecure: ["{registry.host}"], timeoutSeconds: 2}}
        """,
    )
    repo = Repo.create(tmp_path / "fleet")
    repo.write("apps/api.yaml", deployment(f"{registry.host}/presync/api:v1"))
    good = repo.commit("api v1", ssh=alice)

    def presync() -> tuple[int, str]:
        result = CliRunner().invoke(
            main,
            ["presync", "--repo", str(repo.path), "-c", str(config), "--no-color"],
            catch_exceptions=False,
        )
        return result.exit_code, result.output

    code, output = presync()
    assert code == 0, output
    assert repo.ref(GATED) == good

    repo.write("apps/api.yaml", deployment(f"{registry.host}/presync/api:unsigned"))
    repo.commit("api unsigned", ssh=alice)
    code, output = presync()
    assert code == 1, output
    assert "image-signature" in output and "presync/api:unsigned" in output
    assert repo.ref(GATED) == good
