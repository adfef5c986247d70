"""Discovery's per-image limits (`DiscoveryLimits`) are the ones it applies: payloads above the
byte limit and artifacts beyond the count are listed or counted (the verifier fails the image on
them), never read or trusted."""

from __future__ import annotations

import json
from pathlib import Path

from support.oci_memory import MemoryTransport

from trustgate.oci import mediatypes as mt
from trustgate.oci.client import RegistryClient
from trustgate.oci.discovery import DiscoveryLimits, discover
from trustgate.oci.reference import Reference
from trustgate.oci.settings import RegistrySettings

REF = Reference.parse("registry.test/shop/api:v1")


def _manifest(client: RegistryClient, layers: list[dict[str, object]], **extra: object) -> bytes:
    config = client.push_blob(REF, b"{}")
    body = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": config, "size": 2},
        "layers": layers,
        **extra,
    }
    return json.dumps(body).encode()


def _layer(client: RegistryClient, payload: bytes, signature: str) -> dict[str, object]:
    return {
        "mediaType": mt.COSIGN_SIMPLESIGNING,
        "digest": client.push_blob(REF, payload),
        "size": len(payload),
        "annotations": {mt.ANNOTATION_SIGNATURE: signature},
    }


def _image() -> tuple[RegistryClient, str]:
    client = RegistryClient(
        RegistrySettings(docker_config=Path("/nonexistent/config.json")), transport=MemoryTransport()
    )
    digest = client.push_manifest(REF, _manifest(client, []), mt.OCI_MANIFEST, "v1")
    return client, digest


def test_a_payload_above_the_byte_limit_is_listed_as_oversized_not_read() -> None:
    client, digest = _image()
    layers = [_layer(client, b"x" * 20, "sig-a"), _layer(client, b"y" * 5, "sig-b")]
    tag = digest.replace(":", "-") + ".sig"
    client.push_manifest(REF, _manifest(client, layers), mt.OCI_MANIFEST, tag)

    found = discover(client, REF, digest, limits=DiscoveryLimits(max_payload_bytes=10), parallel=False)
    assert [a.payload for a in found.signatures] == [b"y" * 5]
    assert found.problems == ()  # not a note: the verifier fails the image on it
    (oversized,) = found.oversized
    assert f"{tag}: layer {layers[0]['digest']} (20 bytes)" in oversized
    everything = discover(client, REF, digest, parallel=False)
    assert len(everything.signatures) == 2 and everything.oversized == ()  # the default limit


def test_a_blob_larger_than_its_descriptor_says_is_oversized_too() -> None:
    client, digest = _image()
    layer = _layer(client, b"x" * 20, "sig-a") | {"size": 5}
    tag = digest.replace(":", "-") + ".sig"
    client.push_manifest(REF, _manifest(client, [layer]), mt.OCI_MANIFEST, tag)

    found = discover(client, REF, digest, limits=DiscoveryLimits(max_payload_bytes=10), parallel=False)
    assert found.signatures == () and found.problems == ()
    (oversized,) = found.oversized
    assert f"layer {layer['digest']} (more bytes than its size says)" in oversized


def test_a_referrers_oversized_payload_is_listed_through_the_fanout() -> None:
    client, digest = _image()
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": 1}
    for name, size in (("a", 5), ("b", 20), ("c", 5)):
        body = _manifest(
            client,
            [_layer(client, name.encode() * size, f"sig-{name}")],
            artifactType=mt.COSIGN_ARTIFACT_SIG,
            subject=subject,
        )
        client.push_manifest(REF, body, mt.OCI_MANIFEST)

    limits = DiscoveryLimits(max_payload_bytes=10, referrer_fanout=2)
    found = discover(client, REF, digest, limits=limits, places=("referrers",))
    assert sorted(a.payload for a in found.signatures) == [b"aaaaa", b"ccccc"]
    assert len(found.oversized) == 1 and "(20 bytes)" in found.oversized[0]


def test_a_missing_blob_stays_a_note() -> None:
    """Blobs are named by digest: only whoever pushed the artifact can make its own go missing."""
    client, digest = _image()
    layer = _layer(client, b"y" * 5, "sig-b") | {"digest": "sha256:" + "0" * 64}
    tag = digest.replace(":", "-") + ".sig"
    client.push_manifest(REF, _manifest(client, [layer]), mt.OCI_MANIFEST, tag)

    found = discover(client, REF, digest, parallel=False)
    assert found.signatures == () and found.oversized == ()
    assert len(found.problems) == 1 and "sha256:" + "0" * 64 in found.problems[0]


def test_artifacts_beyond_the_count_are_counted_not_examined() -> None:
    client, digest = _image()
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": 1}
    for name in ("a", "b", "c", "d"):
        body = _manifest(
            client,
            [_layer(client, name.encode(), f"sig-{name}")],
            artifactType=mt.COSIGN_ARTIFACT_SIG,
            subject=subject,
        )
        client.push_manifest(REF, body, mt.OCI_MANIFEST)

    limits = DiscoveryLimits(max_artifacts=2, referrer_fanout=1)
    found = discover(client, REF, digest, limits=limits, places=("referrers",))
    assert len(found.signatures) == 2
    assert found.unexamined == 2 and found.problems == ()  # the verifier fails the image on them
    everything = discover(client, REF, digest, places=("referrers",))
    assert len(everything.signatures) == 4 and everything.unexamined == 0


def test_layers_of_one_signature_manifest_count_against_the_artifacts() -> None:
    """Found in review: a `.sig` manifest of 200 junk layers and one valid signature was read whole,
    past maxArtifacts, and passed. Each layer past the first is one more artifact."""
    client, digest = _image()
    layers = [_layer(client, b"junk %d" % i, f"sig-{i}") for i in range(5)]
    tag = digest.replace(":", "-") + ".sig"
    client.push_manifest(REF, _manifest(client, layers), mt.OCI_MANIFEST, tag)

    found = discover(client, REF, digest, limits=DiscoveryLimits(max_artifacts=3), parallel=False)
    assert [a.payload for a in found.signatures] == [b"junk 0", b"junk 1", b"junk 2"]
    assert found.unexamined == 2  # the manifest and its first layer are one; layers 1, 2 fit, 3, 4 do not
    assert discover(client, REF, digest, parallel=False).unexamined == 0


def test_referrers_layers_share_their_places_count_through_the_fanout() -> None:
    client, digest = _image()
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": 1}
    for name in ("a", "b", "c"):
        body = _manifest(
            client,
            [_layer(client, f"{name}{i}".encode(), f"sig-{name}{i}") for i in range(3)],
            artifactType=mt.COSIGN_ARTIFACT_SIG,
            subject=subject,
        )
        client.push_manifest(REF, body, mt.OCI_MANIFEST)

    limits = DiscoveryLimits(max_artifacts=4, referrer_fanout=3)
    found = discover(client, REF, digest, limits=limits, places=("referrers",))
    assert len(found.signatures) + found.unexamined == 9 and found.unexamined == 5


def test_payloads_past_the_images_byte_budget_are_listed_not_read() -> None:
    """Found in review: 3000 layers naming one 4 MiB blob (each another signature) took longer to
    read than the deadline, and a timeout is "could not verify". A blob is read once, however many
    layers name it, and an image's payloads weigh at most `max_total_payload_bytes`."""
    client, digest = _image()
    big = b"x" * 40
    shared = [_layer(client, big, f"sig-{i}") for i in range(3)]  # one blob, three signers
    other = [_layer(client, b"y" * 40, "sig-y"), _layer(client, b"z" * 40, "sig-z")]
    tag = digest.replace(":", "-") + ".sig"
    client.push_manifest(REF, _manifest(client, shared + other), mt.OCI_MANIFEST, tag)

    limits = DiscoveryLimits(max_total_payload_bytes=100)
    found = discover(client, REF, digest, limits=limits, parallel=False)
    assert [a.payload for a in found.signatures] == [big, big, big, b"y" * 40]
    (overspent,) = found.overspent
    assert f"{tag}: layer {other[1]['digest']} (40 bytes)" in overspent
    assert found.problems == () and found.unexamined == 0
