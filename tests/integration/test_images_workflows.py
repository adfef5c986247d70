"""The images an Argo Workflow runs, through `check` with a real registry: a `podSpecPatch` (JSON
or YAML text that Argo merges into each pod it creates, containers by name) replaces the image its
template names, so the image it writes is verified, not only the template's."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.oci_push import attach_cosign_signatures, push_image
from support.registry import RegistryProcess
from support.sigstore import SigstoreInstance
from support.trustgate_config import write_config

from trustgate.cli.main import main
from trustgate.oci.client import RegistryClient


@pytest.fixture(scope="module")
def client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    c = RegistryClient(registry.settings())
    yield c
    c.close()


def _images(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance
) -> tuple[str, str, Path]:
    """A signed and an unsigned image under a rule wanting the release key's signature."""
    host = registry.host
    signed = push_image(client, f"{host}/signed/app:1", content=os.urandom(16))
    key = sigstore.key("ecdsa-p256")
    attach_cosign_signatures(client, signed.ref, signed.digest, [sigstore.cosign_sign(signed.digest, key)])
    unsigned = push_image(client, f"{host}/signed/tool:1", content=os.urandom(16))
    (tmp_path / "release.pub").write_bytes(key.public_pem)
    config = write_config(
        tmp_path,
        f"""\
        images:
          authorities:
            - name: release
              key: {{path: release.pub}}
          rules:
            - name: signed
              images: ["{host}/signed/**"]
              signatures: {{authorities: [release]}}
          unmatched: deny
          registries: {{insecure: ["{host}"], timeoutSeconds: 2}}
        """,
    )
    return f"{signed.ref.name}@{signed.digest}", f"{unsigned.ref.name}@{unsigned.digest}", config


def _check(config: Path, workflow: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    (config.parent / "workflow.yaml").write_text(json.dumps(workflow))
    args = ["check", "-c", str(config), str(config.parent / "workflow.yaml"), "-o", "json"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.output, json.loads(result.stdout)


def _workflow(template: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "release", "namespace": "ci"},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", **template}], **spec},
    }


@pytest.mark.parametrize("where", ["template-json", "template-yaml", "workflow"])
def test_an_image_a_pod_spec_patch_sets_is_verified(
    where: str,
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
) -> None:
    """Found in review: the signed image of the template passed, and Argo ran the unsigned one the
    patch writes over it."""
    signed, unsigned, config = _images(tmp_path, registry, client, sigstore)
    container = {"container": {"image": signed, "command": ["run"]}}
    code, output, _ = _check(config, _workflow(container))
    assert code == 0, output  # the template alone: signed
    patch_json = json.dumps({"containers": [{"name": "main", "image": unsigned}]})
    patch_yaml = f"containers:\n  - name: main\n    image: {unsigned}\n"
    if where == "workflow":
        workflow = _workflow(container, podSpecPatch=patch_yaml)
        at = "spec.podSpecPatch"
    else:
        patch = patch_json if where == "template-json" else patch_yaml
        workflow = _workflow(container | {"podSpecPatch": patch})
        at = "spec.templates[0].podSpecPatch"
    code, output, report = _check(config, workflow)
    assert code == 1, output
    (finding,) = report["results"][0]["findings"]
    assert finding["rule"] == "image-signature" and finding["path"] == at, finding
    assert finding["metadata"]["image"] == unsigned
    statuses = {i["reference"]: i["status"] for i in report["images"]}
    assert statuses == {signed: "verified", unsigned: "failed"}


def test_a_pod_spec_patch_that_sets_no_image_changes_nothing_and_one_unreadable_fails(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance
) -> None:
    """A patch of resources with a parameter inside a value is read, and leaves the template's
    image; a patch that is one parameter cannot be read before Argo substitutes it, and may name
    any image: it fails at its field, with the way out."""
    signed, _unsigned, config = _images(tmp_path, registry, client, sigstore)
    container = {"container": {"image": signed}}
    resources = {
        "containers": [{"name": "main", "resources": {"limits": {"cpu": "{{inputs.parameters.cpu}}"}}}]
    }
    code, output, _ = _check(config, _workflow(container | {"podSpecPatch": json.dumps(resources)}))
    assert code == 0, output
    code, output, report = _check(
        config, _workflow(container | {"podSpecPatch": "{{inputs.parameters.patch}}"})
    )
    assert code == 1, output
    (finding,) = report["results"][0]["findings"]
    assert finding["rule"] == "image-reference" and finding["path"] == "spec.templates[0].podSpecPatch"
    assert "before Argo substitutes its parameters" in finding["message"]
    assert "exception" in finding["fix"]


def test_an_object_nested_deeper_than_images_are_read_fails_at_the_place(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance
) -> None:
    """Found in review: past 200 levels the search for images stopped without a word, so an
    unsigned image in a workload manifest wrapped that deep in a custom resource (whose controller
    creates it) passed. Now the object fails at the first place not read, with the way out; one
    nested less deeply has its image verified."""
    _signed, unsigned, config = _images(tmp_path, registry, client, sigstore)
    deployment = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": unsigned}]}}}}

    def wrapped(levels: int) -> dict[str, Any]:
        node: dict[str, Any] = deployment
        for level in range(levels):
            node = {f"w{level}": node}
        return {
            "apiVersion": "example.com/v1",
            "kind": "Wrapper",
            "metadata": {"name": "deep", "namespace": "ci"},
            "spec": node,
        }

    code, output, report = _check(config, wrapped(150))
    assert code == 1 and [f["rule"] for f in report["results"][0]["findings"]] == ["image-signature"], output
    code, output, report = _check(config, wrapped(260))
    assert code == 1, output
    (finding,) = report["results"][0]["findings"]
    assert finding["rule"] == "image-reference" and finding["severity"] == "error", finding
    assert finding["path"].startswith("spec.w259.w258.") and "deeper than" in finding["message"], finding
    assert "exception" in finding["fix"]
