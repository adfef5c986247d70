"""What whoever can push an image controls never reaches the failure policy (ADR 5): the image's
own manifests, how many artifacts and layers it carries, what its signatures' bundles claim. A
real registry, the fixture Sigstore instance, through the command line and `trustgate serve`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.oci_push import (
    EMPTY_CONFIG,
    Pushed,
    _canonical,
    attach_cosign_signatures,
    push_blob_descriptor,
    push_image,
)
from support.registry import RegistryProcess
from support.sigstore import SigstoreInstance
from support.trustgate_config import write_config
from support.webhook import make_certs, review, start_server

from trustgate.cli.main import main
from trustgate.oci import mediatypes as mt
from trustgate.oci.client import RegistryClient
from trustgate.oci.reference import Reference

SLSA_V1 = "https://slsa.dev/provenance/v1"


@pytest.fixture(scope="module")
def client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    c = RegistryClient(registry.settings())
    yield c
    c.close()


def _config(directory: Path, registry: RegistryProcess, sigstore: SigstoreInstance, extra: str = "") -> Path:
    """Rules for this registry: `signed/**` wants the release key's signature, `attested/**` a
    provenance attestation by it too; `sandbox-*` namespaces fail open. `trustgate serve` runs on
    the registry's host, as on a node: the registry is node-local to both."""
    sigstore.write_trusted_root(directory / "trusted_root.json")
    (directory / "release.pub").write_bytes(sigstore.key("ecdsa-p256").public_pem)
    host = registry.host
    path = write_config(
        directory,
        f"""\
        admission:
          failOpen:
            namespaces: [sandbox-*]
        images:
          trustRoots: [{{name: t, trustedRoot: trusted_root.json}}]
          authorities:
            - name: release
              key: {{path: release.pub}}
          rules:
            - name: signed
              images: ["{host}/signed/**"]
              signatures: {{authorities: [release]}}
            - name: attested
              images: ["{host}/attested/**"]
              signatures: {{authorities: [release]}}
              attestations: [{{name: provenance, predicateType: slsaprovenance1, authorities: [release]}}]
          unmatched: deny
          registries: {{insecure: ["{host}"], nodeLocal: ["{host}"], timeoutSeconds: 2{extra}}}
        """,
    )
    return path


def _check(config: Path, images: list[str]) -> tuple[int, str, dict[str, Any]]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "prod"}}
    (config.parent / "pod.yaml").write_text(json.dumps(pod | {"spec": {"containers": containers}}))
    args = ["check", "-c", str(config), str(config.parent / "pod.yaml"), "-o", "json"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.output, json.loads(result.stdout)


def _many_platforms(client: RegistryClient, ref: Reference, count: int = 129) -> str:
    """An unsigned index of `count` platform manifests (one more than trustgate reads)."""
    children = [
        push_image(client, ref, tag=None, platform=("linux", f"junk{i}"), content=os.urandom(8))
        for i in range(count)
    ]
    index = _canonical(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [c.descriptor() for c in children]}
    )
    return client.push_manifest(ref, index, mt.OCI_INDEX, None)


def _nested(client: RegistryClient, ref: Reference, levels: int = 5) -> str:
    """An unsigned image behind `levels` indexes (deeper than trustgate follows; containerd does)."""
    child: Pushed = push_image(client, ref, tag=None, content=os.urandom(8))
    entry = child.descriptor()
    digest = ""
    for _ in range(levels):
        body = _canonical({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [entry]})
        digest = client.push_manifest(ref, body, mt.OCI_INDEX, None)
        entry = {"mediaType": mt.OCI_INDEX, "digest": digest, "size": len(body)}
    return digest


def test_an_index_whoever_pushes_makes_unreadable_fails_the_image(
    registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance, tmp_path: Path
) -> None:
    """Found in review: 129 platforms, or indexes nested 5 deep, were "could not verify" (exit 3),
    which fail-open namespaces admit. Where the rule wants attestations (read per platform) the
    image fails with `image-manifest`; where it wants signatures only, the platforms are not read
    and the unsigned index fails as unsigned."""
    host = registry.host
    many = Reference.parse(f"{host}/attested/many")
    nested = Reference.parse(f"{host}/attested/nested")
    unsigned_many = Reference.parse(f"{host}/signed/many")
    images = [
        f"{many.name}@{_many_platforms(client, many)}",
        f"{nested.name}@{_nested(client, nested)}",
        f"{unsigned_many.name}@{_many_platforms(client, unsigned_many)}",
        f"{host}/attested/missing@sha256:{'0' * 64}",  # pushed after an admission, it would run
    ]
    code, output, report = _check(_config(tmp_path, registry, sigstore), images)
    assert code == 1, output
    judged = {i["reference"]: (i["status"], [p["rule"] for p in i["problems"]]) for i in report["images"]}
    assert judged == {
        images[0]: ("failed", ["image-manifest"]),
        images[1]: ("failed", ["image-manifest"]),
        images[2]: ("failed", ["image-signature"]),
        images[3]: ("failed", ["image-manifest"]),
    }, output
    messages = {i["reference"]: i["problems"][0]["message"] for i in report["images"]}
    assert "more than 128 image manifests" in messages[images[0]]
    assert "nest deeper than" in messages[images[1]]


def test_an_unreadable_index_is_denied_in_a_fail_open_namespace(
    registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance, tmp_path: Path
) -> None:
    """The tester's reproduction: `trustgate serve` with `sandbox-*` failing open admitted an
    unsigned 129-platform index there."""
    many = Reference.parse(f"{registry.host}/attested/open")
    image = f"{many.name}@{_many_platforms(client, many)}"
    config = _config(tmp_path, registry, sigstore)
    server = start_server(make_certs(tmp_path / "certs"), "-c", str(config), workers=2)
    try:

        def allowed(reference: str, uid: str) -> tuple[bool, str]:
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "namespace": "sandbox-team"},
                "spec": {"containers": [{"name": "c", "image": reference}]},
            }
            _status, answer = server.post(review(pod, uid=uid))
            response = answer["response"]
            return response["allowed"], json.dumps(response)

        admitted, said = allowed(image, "u-many")
        assert not admitted and "image-manifest" in said, said
    finally:
        server.stop()


def test_a_flux_source_on_a_moving_ref_is_denied_in_a_fail_open_namespace(
    registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance, tmp_path: Path
) -> None:
    """Found in review: an OCIRepository with `ref.tag`, `ref.semver` or no ref (Flux resolves them
    at every sync) was "could not verify", which the failure policy answers: `trustgate serve`
    admitted it in a `sandbox-*` namespace, while the same source pinned to an unsigned digest was
    denied there. Whoever writes the object chose the moving reference: a policy failure
    (`image-digest`), and the way out, `ref.digest` of a signed artifact, is admitted."""
    ref = Reference.parse(f"{registry.host}/signed/manifests")
    signed = push_image(client, ref, tag="stable", content=os.urandom(16))
    key = sigstore.key("ecdsa-p256")
    attach_cosign_signatures(client, ref, signed.digest, [sigstore.cosign_sign(signed.digest, key)])
    unsigned = push_image(client, ref, tag="9.9.9", content=os.urandom(16))
    config = _config(tmp_path, registry, sigstore)
    server = start_server(make_certs(tmp_path / "certs"), "-c", str(config), workers=1)
    try:

        def answer(spec_ref: dict[str, str] | None, uid: str) -> dict[str, Any]:
            spec: dict[str, Any] = {"interval": "1m", "url": f"oci://{ref.name}"}
            if spec_ref is not None:
                spec["ref"] = spec_ref
            source = {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "OCIRepository",
                "metadata": {"name": "app", "namespace": "sandbox-team"},
                "spec": spec,
            }
            _status, reply = server.post(review(source, uid=uid))
            response: dict[str, Any] = reply["response"]
            return response

        moving = [{"tag": "stable"}, {"semver": ">=1.0.0"}, {"tag": "stable", "semver": "*"}, None]
        for i, spec_ref in enumerate(moving):
            response = answer(spec_ref, f"u-moving-{i}")
            said = json.dumps(response)
            assert response["allowed"] is False, (spec_ref, said)
            assert "[image-digest]" in response["status"]["message"], said
            assert "failure policy" not in said, said
        pinned = answer({"digest": signed.digest}, "u-pinned-signed")
        assert pinned["allowed"] is True, json.dumps(pinned)
        refused = answer({"digest": unsigned.digest}, "u-pinned-unsigned")
        assert refused["allowed"] is False and "[image-signature]" in refused["status"]["message"]
    finally:
        server.stop()


def _sig_tag(client: RegistryClient, ref: Reference, digest: str, layers: list[dict[str, Any]]) -> None:
    config = push_blob_descriptor(client, ref, EMPTY_CONFIG, mt.OCI_EMPTY)
    body = _canonical({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config, "layers": layers})
    client.push_manifest(ref, body, mt.OCI_MANIFEST, digest.replace(":", "-") + ".sig")


@pytest.mark.parametrize("junk", ["many-layers", "one-heavy-blob"])
def test_layers_of_one_signature_manifest_are_within_the_budget(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    tmp_path: Path,
    junk: str,
) -> None:
    """Found in review: a `.sig` tag of 200 junk layers before one valid signature passed (read
    whole, past maxArtifacts), and 3000 layers naming one 4 MiB blob outlasted the deadline
    ("could not verify", which fail-open namespaces admit). Both fail the image now, quickly."""
    ref = Reference.parse(f"{registry.host}/signed/{junk}")
    image = push_image(client, ref, content=os.urandom(16))
    good = sigstore.cosign_sign(image.digest, sigstore.key("ecdsa-p256"), reference=ref.name)
    if junk == "many-layers":
        payload = b'{"critical":{"image":{"docker-manifest-digest":"sha256:' + b"0" * 64 + b'"}}}'
        count = 200
    else:
        payload = os.urandom(4 * 1024 * 1024 - 1024)
        count = 3000
    blob = push_blob_descriptor(client, ref, payload, mt.COSIGN_SIMPLESIGNING)
    layers = [blob | {"annotations": {mt.ANNOTATION_SIGNATURE: f"AAAA{i:04d}"}} for i in range(count)]
    signed = push_blob_descriptor(
        client, ref, good.payload, mt.COSIGN_SIMPLESIGNING, annotations=good.annotations()
    )
    _sig_tag(client, ref, image.digest, [*layers, signed])
    started = time.monotonic()
    code, output, report = _check(_config(tmp_path, registry, sigstore), [f"{ref.name}@{image.digest}"])
    assert code == 1, output
    assert time.monotonic() - started < 8  # within the 10 s deadline: not a timeout
    (judged,) = report["images"]
    assert judged["status"] == "failed"
    (artifact,) = [p for p in judged["problems"] if p["rule"] == "image-artifact"]
    assert f"{count + 1 - 64} signature or attestation artifact(s)" in artifact["message"]
    assert "images.registries.maxArtifacts (64)" in artifact["message"]


def test_a_node_local_registry_is_denied_in_a_fail_open_namespace(
    registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance, tmp_path: Path
) -> None:
    """Found in review: an image on `localhost:5000/...` (or `127.0.0.1`, `[::1]`, a link-local
    address) is pulled by the kubelet from the node's own loopback, which trustgate, in its own
    pod, never sees: its connection was refused, the image "could not verify", and `trustgate
    serve` admitted it in a `sandbox-*` namespace. Whoever writes the Pod chose the registry: a
    policy failure (`image-registry`) wherever a rule covers it; the way out is a registry both
    reach, or `images.registries.nodeLocal` where trustgate shares the nodes' network."""
    ref = Reference.parse(f"{registry.host}/signed/local")
    signed = push_image(client, ref, tag="v1", content=os.urandom(16))
    key = sigstore.key("ecdsa-p256")
    attach_cosign_signatures(client, ref, signed.digest, [sigstore.cosign_sign(signed.digest, key)])
    node_local = ["localhost:1", "127.0.0.1:1", "[::1]:1", "169.254.169.254", "0.0.0.0:1", "app.localhost"]
    rules = "".join(
        f'    - {{name: local-{i}, images: ["{host}/**"], signatures: {{authorities: [release]}}}}\n'
        for i, host in enumerate(node_local)
    )
    config = _config(tmp_path, registry, sigstore)
    config.write_text(config.read_text().replace("  unmatched: deny\n", rules + "  unmatched: deny\n"))
    server = start_server(make_certs(tmp_path / "certs"), "-c", str(config), workers=1)
    try:

        def answer(image: str, uid: str) -> dict[str, Any]:
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "namespace": "sandbox-team"},
                "spec": {"containers": [{"name": "c", "image": image}]},
            }
            _status, reply = server.post(review(pod, uid=uid))
            response: dict[str, Any] = reply["response"]
            return response

        for i, host in enumerate(node_local):
            response = answer(f"{host}/shop/app:v1@{signed.digest}", f"u-local-{i}")
            said = json.dumps(response)
            assert response["allowed"] is False, (host, said)
            assert "[image-registry]" in response["status"]["message"], said
            assert "failure policy" not in said and "kubelet pulls it from the node" in said, said
        # Listed under images.registries.nodeLocal (trustgate shares the nodes' network, as here,
        # on one host): verified as any registry.
        shared = answer(f"{ref.name}@{signed.digest}", "u-shared")
        assert shared["allowed"] is True, json.dumps(shared)
    finally:
        server.stop()


def test_a_single_label_registry_name_is_denied_in_a_fail_open_namespace(
    registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance, tmp_path: Path
) -> None:
    """`registry:5000/app` (or `MyReg/app`: a capital makes it a host) names a registry by a
    single-label name, which trustgate's pod resolves through its own search domains and the
    kubelet through the node's (or its runtime's registry configuration): the same name can be
    two registries. trustgate asked its own, could not resolve it, and `serve` admitted the image
    in a fail-open namespace as "could not verify". A policy failure now, as for a node-local
    registry; Docker Hub's short names are not host names and are judged as before."""
    ref = Reference.parse(f"{registry.host}/signed/labels")
    signed = push_image(client, ref, tag="v1", content=os.urandom(16))
    hosts = ["registry:5000", "MyReg", "registry-1:1"]
    rules = "".join(
        f'    - {{name: label-{i}, images: ["{host}/**"], signatures: {{authorities: [release]}}}}\n'
        for i, host in enumerate(hosts)
    )
    config = _config(tmp_path, registry, sigstore)
    config.write_text(config.read_text().replace("  unmatched: deny\n", rules + "  unmatched: deny\n"))
    server = start_server(make_certs(tmp_path / "certs"), "-c", str(config), workers=1)
    try:
        for i, host in enumerate(hosts):
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "namespace": "sandbox-team"},
                "spec": {"containers": [{"name": "c", "image": f"{host}/shop/app@{signed.digest}"}]},
            }
            _status, reply = server.post(review(pod, uid=f"u-label-{i}"))
            response = reply["response"]
            said = json.dumps(response)
            assert response["allowed"] is False, (host, said)
            assert "[image-registry]" in response["status"]["message"], said
            assert "failure policy" not in said and "single-label name" in said, said
    finally:
        server.stop()


def _flux(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    group = "helm.toolkit.fluxcd.io/v2" if kind == "HelmRelease" else "source.toolkit.fluxcd.io/v1"
    return {
        "apiVersion": group,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _check_documents(config: Path, documents: list[dict[str, Any]]) -> tuple[int, str, dict[str, Any]]:
    (config.parent / "flux.yaml").write_text("\n---\n".join(json.dumps(d) for d in documents))
    args = ["check", "-c", str(config), str(config.parent / "flux.yaml"), "-o", "json"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.output, json.loads(result.stdout)


def _findings(report: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Each object's findings (`Kind/name`) as (rule, field)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for result in report["results"]:
        out[f"{result['kind']}/{result['name']}"] = sorted(
            (f["rule"], f.get("path", "")) for f in result["findings"]
        )
    return out


def test_a_flux_helm_chart_from_an_oci_registry_is_judged_by_the_image_rules(
    registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance, tmp_path: Path
) -> None:
    """Found in review: a HelmChart (or a HelmRelease's chart template) pulling `app` from an OCI
    HelmRepository was never judged, so `check` passed an unsigned chart on a rule that wants
    signatures, with `unmatched: deny`. Flux pulls `<url>/<chart>:<version>`, resolving the version
    at each reconcile, and a HelmChart names no digest: an `image-digest` failure where a rule
    covers it, even for a signed tag; a chart whose HelmRepository is not checked with it fails
    closed (`image-reference`); the way out, a chartRef to an OCIRepository pinned to the signed
    digest, passes, and charts of an HTTP repository or a GitRepository are no artifacts."""
    host = registry.host
    ref = Reference.parse(f"{host}/signed/charts/app")
    push_image(client, ref, tag="1.0.0", content=os.urandom(16))  # unsigned
    signed = push_image(client, ref, tag="1.1.0", content=os.urandom(16))
    key = sigstore.key("ecdsa-p256")
    attach_cosign_signatures(client, ref, signed.digest, [sigstore.cosign_sign(signed.digest, key)])
    oci_repo = {"type": "oci", "interval": "5m", "url": f"oci://{host}/signed/charts"}
    source = {"kind": "HelmRepository", "name": "charts"}
    documents = [
        _flux("HelmRepository", "charts", "flux-system", oci_repo),
        _flux("HelmChart", "range", "flux-system", {"chart": "app", "version": "1.x", "sourceRef": source}),
        _flux("HelmChart", "exact", "flux-system", {"chart": "app", "version": "1.0.0", "sourceRef": source}),
        _flux("HelmChart", "latest", "flux-system", {"chart": "app", "sourceRef": source}),
        _flux(
            "HelmRelease",
            "app",
            "apps",
            {
                "chart": {
                    "spec": {
                        "chart": "app",
                        "version": "1.1.0",
                        "sourceRef": source | {"namespace": "flux-system"},
                    }
                }
            },
        ),
        _flux(
            "HelmRelease",
            "lost",
            "apps",
            {"chart": {"spec": {"chart": "app", "sourceRef": source | {"name": "elsewhere"}}}},
        ),
        _flux("HelmRepository", "web", "flux-system", {"url": "https://charts.example.com"}),
        _flux("HelmChart", "web", "flux-system", {"chart": "app", "sourceRef": source | {"name": "web"}}),
        _flux(
            "HelmChart",
            "git",
            "flux-system",
            {"chart": "./charts/app", "sourceRef": {"kind": "GitRepository", "name": "charts"}},
        ),
    ]
    config = _config(tmp_path, registry, sigstore)
    code, output, report = _check_documents(config, documents)
    assert code == 1, output
    assert _findings(report) == {
        "HelmRepository/charts": [],
        "HelmChart/range": [("image-digest", "spec.version")],
        "HelmChart/exact": [("image-digest", "spec.version")],
        "HelmChart/latest": [("image-digest", "spec.chart")],
        "HelmRelease/app": [("image-digest", "spec.chart.spec.version")],
        "HelmRelease/lost": [("image-reference", "spec.chart.spec.sourceRef")],
        "HelmRepository/web": [],
        "HelmChart/web": [],
        "HelmChart/git": [],
    }, output
    judged = {i["reference"]: i["problems"][0]["message"] for i in report["images"]}
    assert f"{ref.name}:1.1.0 cannot be verified" in judged[f"{ref.name}:1.1.0"], output
    assert "HelmRepository apps/elsewhere is not among the documents checked" in output, output
    # Alone, the chart's HelmRepository is not known: fail closed, never skipped.
    code, output, report = _check_documents(config, documents[1:2])
    assert code == 1 and _findings(report) == {"HelmChart/range": [("image-reference", "spec.sourceRef")]}, (
        output
    )
    # The way out: the signed digest through an OCIRepository; an unsigned one is still refused.
    for digest, expected in ((signed.digest, 0), (push_image(client, ref, tag=None, content=b"x").digest, 1)):
        pinned = _flux(
            "OCIRepository", "app", "apps", {"url": f"oci://{ref.name}", "ref": {"digest": digest}}
        )
        release = _flux("HelmRelease", "app", "apps", {"chartRef": {"kind": "OCIRepository", "name": "app"}})
        code, output, _report = _check_documents(config, [pinned, release])
        assert code == expected, output


def test_a_flux_helm_chart_alone_at_admission_is_denied_in_a_fail_open_namespace(
    registry: RegistryProcess, sigstore: SigstoreInstance, tmp_path: Path
) -> None:
    """A HelmRelease pulling its chart through a HelmRepository is one object in its request: the
    HelmRepository, and so whether the chart is an OCI artifact, cannot be known there. It is
    denied (`image-reference`), never answered by the failure policy; one whose chart comes from a
    GitRepository names no artifact and is admitted."""
    config = _config(tmp_path, registry, sigstore)
    server = start_server(make_certs(tmp_path / "certs"), "-c", str(config), workers=1)
    try:
        for kind, uid, allowed in (("HelmRepository", "u-helm", False), ("GitRepository", "u-git", True)):
            source = {"kind": kind, "name": "charts", "namespace": "flux-system"}
            spec = {"chart": {"spec": {"chart": "app", "version": "1.x", "sourceRef": source}}}
            _status, reply = server.post(review(_flux("HelmRelease", "app", "sandbox-team", spec), uid=uid))
            response: dict[str, Any] = reply["response"]
            said = json.dumps(response)
            assert response["allowed"] is allowed, said
            if not allowed:
                assert "[image-reference]" in response["status"]["message"], said
                assert "HelmRepository flux-system/charts" in said and "failure policy" not in said, said
    finally:
        server.stop()


def test_a_flux_chart_whose_helm_repository_is_elsewhere_names_the_ones_checked(
    registry: RegistryProcess, sigstore: SigstoreInstance, tmp_path: Path
) -> None:
    """A HelmRelease naming no sourceRef.namespace looks for its HelmRepository in its own
    namespace: one of that name checked in another namespace is named in the failure, with the way
    out, so the slip is seen; with the namespace written, the chart is judged as the artifact."""
    oci_repo = {"type": "oci", "interval": "5m", "url": f"oci://{registry.host}/signed/charts"}
    repository = _flux("HelmRepository", "charts", "flux-system", oci_repo)
    source: dict[str, Any] = {"kind": "HelmRepository", "name": "charts"}
    spec = {"chart": {"spec": {"chart": "app", "version": "1.0.0", "sourceRef": source}}}
    config = _config(tmp_path, registry, sigstore)
    code, output, report = _check_documents(config, [repository, _flux("HelmRelease", "app", "apps", spec)])
    assert code == 1 and _findings(report)["HelmRelease/app"] == [
        ("image-reference", "spec.chart.spec.sourceRef")
    ], output
    (result,) = [r for r in report["results"] if r["kind"] == "HelmRelease"]
    message, fix = result["findings"][0]["message"], result["findings"][0]["fix"]
    assert "HelmRepository apps/charts is not among the documents checked" in message, output
    assert "; the HelmRepositories checked were flux-system/charts" in message, output
    assert "sourceRef.namespace" in fix and "spec.chartRef" in fix, output
    source["namespace"] = "flux-system"
    code, output, report = _check_documents(config, [repository, _flux("HelmRelease", "app", "apps", spec)])
    judged = _findings(report)["HelmRelease/app"]
    assert code == 1 and judged == [("image-digest", "spec.chart.spec.version")], output
