"""Looking for verification summaries may only ever save work (ADR 12): against a real registry
behind a proxy that adds latency, junk marked as summaries that whoever can push attaches costs a
bounded number of requests and bytes and a share of the deadline, never trips the registry's
breaker, and never turns a verdict into "could not verify" (which a fail-open namespace allows)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_summaries_e2e
from support.faults import FaultProxy
from support.oci_push import EMPTY_CONFIG, Pushed, push_blob_descriptor, push_image
from support.registry import RegistryProcess
from support.sigstore import SigstoreInstance
from support.webhook import CertSet, review, start_server
from test_summaries_e2e import deployment, gate_decision, made, signed

from trustgate.artifacts import summaries
from trustgate.config import load_config
from trustgate.decisions.log import DecisionLog
from trustgate.gate import Gate
from trustgate.oci import mediatypes as mt
from trustgate.oci.client import RegistryClient

client = test_summaries_e2e.client
project = test_summaries_e2e.project
certs = test_summaries_e2e.certs
JUNK = 64  # images.registries.maxArtifacts' default: as many as were read before


@pytest.fixture
def proxy(registry: RegistryProcess) -> Iterator[FaultProxy]:
    p = FaultProxy(registry.host)
    yield p
    p.stop()


def junk(
    client: RegistryClient,
    image: Pushed,
    n: int,
    *,
    size: int = 1024,
    pad: int = 0,
    listed: int | None = None,
) -> list[tuple[str, str]]:
    """`n` unsigned entries marked as summaries (no key needed), each bundle a layer blob of about
    `size` bytes, not embedded; listed in one write of the referrers tag. Their (manifest, blob).
    `pad`: bytes of annotation making each manifest larger; `listed`: the size the index lists
    for each (whoever pushes writes it), default its own."""
    entries, pushed = [], []
    for _ in range(n):
        body = b'{"junk": "' + os.urandom(size // 2).hex().encode() + b'"}'
        layer = push_blob_descriptor(client, image.ref, body, mt.SIGSTORE_BUNDLE)
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": mt.SIGSTORE_BUNDLE,
            "config": push_blob_descriptor(client, image.ref, EMPTY_CONFIG, mt.OCI_EMPTY),
            "layers": [layer],
            "subject": image.descriptor(),
            "annotations": {summaries.PREDICATE_ANNOTATION: summaries.VSA_PREDICATE}
            | ({"pad": "p" * pad} if pad else {}),
        }
        raw = json.dumps(manifest).encode()
        digest = client.push_manifest(image.ref, raw, mt.OCI_MANIFEST)
        pushed.append((digest, str(layer["digest"])))
        entries.append(
            {
                "mediaType": mt.OCI_MANIFEST,
                "size": len(raw) if listed is None else listed,
                "digest": digest,
                "artifactType": mt.SIGSTORE_BUNDLE,
                "annotations": {summaries.PREDICATE_ANNOTATION: summaries.VSA_PREDICATE},
            }
        )
    tag = image.digest.replace(":", "-")
    current = client.manifest(image.ref, tag)
    old = list(current.json.get("manifests", [])) if current is not None else []
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": old + entries}).encode()
    client.push_manifest(image.ref, index, mt.OCI_INDEX, tag)
    return pushed


def via(proxy: FaultProxy, registry: RegistryProcess, config: Path) -> Path:
    config.write_text(config.read_text().replace(registry.host, proxy.host))
    return config


def test_junk_summaries_cost_a_bounded_number_of_requests(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
    proxy: FaultProxy,
) -> None:
    """A cold admission reads at most `MAX_READS` summary referrers, however many are attached
    (the review: 64 junk entries made it 138 requests instead of 10)."""
    config = via(proxy, registry, project("admit", accept=True))
    counts = {}
    for n in (0, JUNK):
        image = signed(client, sigstore, f"{registry.host}/shop/count{n}:v1")
        junk(client, image, n)
        proxy.requests.clear()
        decision, result = gate_decision(
            config, deployment(tmp_path, f"{proxy.host}/shop/count{n}@{image.digest}")
        )
        assert decision.exit_code() == 0 and result.status == "verified", result.to_json()
        assert result.summary is not None and result.summary["path"] == "full"
        counts[n] = len(proxy.requests)
        if n:
            (told,) = [r for r in result.summary["ignored"] if "not looked at" in r]
            assert f"{n - summaries.MAX_READS} VSAs not looked at" in told, told
    # Each junk entry read: its manifest and its blob.
    assert counts[JUNK] <= counts[0] + 2 * summaries.MAX_READS, counts


def test_a_summary_blob_larger_than_a_summary_is_not_read(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
    proxy: FaultProxy,
) -> None:
    image = signed(client, sigstore, f"{registry.host}/shop/bigjunk:v1")
    ((_, blob),) = junk(client, image, 1, size=1_000_000)
    config = via(proxy, registry, project("admit", accept=True))
    proxy.requests.clear()
    decision, result = gate_decision(
        config, deployment(tmp_path, f"{proxy.host}/shop/bigjunk@{image.digest}")
    )
    assert decision.exit_code() == 0, result.to_json()
    assert not any(blob in line for line in proxy.requests), proxy.requests
    assert result.summary is not None
    assert any("not one bundle layer of at most" in r for r in result.summary["ignored"]), result.summary


def test_a_summary_manifest_larger_than_its_listed_size_is_not_read_past_a_summarys_bound(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
    proxy: FaultProxy,
) -> None:
    """The size the referrers index lists is whatever the pusher wrote: manifests of 1.5 MiB
    listed as 300 bytes were each read in full, up to the client's 4 MiB (found in review: 6 such
    reads per cold admission). Each read stops at a summary manifest's bound and does not count."""
    image = signed(client, sigstore, f"{registry.host}/shop/lie:v1")
    junk(client, image, summaries.MAX_READS, pad=1_500_000, listed=300)
    config = via(proxy, registry, project("admit", accept=True))
    decision, result = gate_decision(config, deployment(tmp_path, f"{proxy.host}/shop/lie@{image.digest}"))
    assert decision.exit_code() == 0 and result.status == "verified", result.to_json()
    assert result.summary is not None and result.summary["path"] == "full"
    ignored = result.summary["ignored"]
    # Each read counts what it may have read (a summary manifest's bound): two, and the rest are spent.
    assert sum("its manifest is more than the 524288 bytes left" in r for r in ignored) == 2, ignored
    assert sum("not read: the bytes to read for summaries are spent" in r for r in ignored) == (
        summaries.MAX_READS - 2
    ), ignored


def test_summary_manifests_count_in_the_bytes_read_for_summaries(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
    proxy: FaultProxy,
) -> None:
    """Manifests within a summary's bound (400 KB each) count in what one image's summaries may
    read in all (1 MiB): after two, the others are not read past what is left (before, only the
    bundles counted)."""
    image = signed(client, sigstore, f"{registry.host}/shop/fat:v1")
    junk(client, image, summaries.MAX_READS, pad=400_000)
    config = via(proxy, registry, project("admit", accept=True))
    decision, result = gate_decision(config, deployment(tmp_path, f"{proxy.host}/shop/fat@{image.digest}"))
    assert decision.exit_code() == 0 and result.status == "verified", result.to_json()
    assert result.summary is not None and result.summary["path"] == "full"
    ignored = result.summary["ignored"]
    unread = [r for r in ignored if "bytes left to read for a summary" in r or "are spent" in r]
    assert len(unread) == summaries.MAX_READS - 2, ignored


def test_a_summary_ignored_is_named_by_its_referrer_manifest(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """The reason names the referrer's manifest (what the referrers list shows, and `trustgate
    verify image --summary`), not the digest of the bundle in it (found in review)."""
    image = signed(client, sigstore, f"{registry.host}/shop/named:v1")
    ((manifest, blob),) = junk(client, image, 1)
    decision, result = gate_decision(
        project("admit", accept=True), deployment(tmp_path, f"{image.ref.name}@{image.digest}")
    )
    assert decision.exit_code() == 0 and result.summary is not None, result.to_json()
    (reason,) = result.summary["ignored"]
    assert reason.startswith(f"VSA from {manifest} ignored: malformed"), reason
    assert blob not in reason, reason


def test_a_summary_read_that_hangs_does_not_trip_the_breaker(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
    proxy: FaultProxy,
) -> None:
    """A summary referrer whose manifest never comes: looking stops at its share of the deadline,
    the registry is not marked down for it, and the image is verified in full (admitted)."""
    image = signed(client, sigstore, f"{registry.host}/shop/hang:v1")
    ((manifest, _),) = junk(client, image, 1)
    other = signed(client, sigstore, f"{registry.host}/shop/hang-other:v1")
    proxy.hang_paths = {f"/v2/shop/hang/manifests/{manifest}"}
    config = via(proxy, registry, project("admit", accept=True))
    deploy = deployment(tmp_path, f"{proxy.host}/shop/hang@{image.digest}")
    (tmp_path / "other").mkdir()
    deploy_other = deployment(tmp_path / "other", f"{proxy.host}/shop/hang-other@{other.digest}")
    log = DecisionLog.open(made(f"sqlite:///{tmp_path / 'admission.db'}"))  # revocations: summaries count
    try:
        with Gate(config=load_config(config), decision_log=log) as gate:
            decision = gate.check([str(deploy)], gate="admission")
            (result,) = decision.images
            assert decision.exit_code() == 0 and result.status == "verified", result.to_json()
            assert result.summary is not None and result.summary["path"] == "full"
            assert any("could not be fetched (timeout)" in r for r in result.summary["ignored"]), (
                result.summary
            )
            states = gate.verifier._breakers._states
            assert all(s.failures == 0 and not s.open_until for s in states.values()), states
            decision = gate.check([str(deploy_other)], gate="admission")
            (result,) = decision.images
            assert decision.exit_code() == 0 and result.status == "verified", result.to_json()
    finally:
        log.close()


def test_a_fail_open_namespace_denies_an_unsigned_image_buried_in_junk_summaries(
    tmp_path: Path,
    certs: CertSet,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
    proxy: FaultProxy,
) -> None:
    """The review: 64 junk summaries on an unsigned image, the registry 100 ms away: reading them
    ran out the deadline, "could not verify" followed, and a fail-open namespace admitted the
    image (and the timeout marked the registry down for every other image). Now it is denied for
    its own problem, and a signed image with the same junk is admitted everywhere."""
    unsigned = push_image(client, f"{registry.host}/shop/failopen-unsigned:v1", content=os.urandom(16))
    good = signed(client, sigstore, f"{registry.host}/shop/failopen-signed:v1")
    for image in (unsigned, good):
        junk(client, image, JUNK)
    config = via(proxy, registry, project("admit", accept=True))
    config.write_text(config.read_text() + "admission:\n  failOpen:\n    namespaces: ['dev-*']\n")
    srv = start_server(
        certs, "-c", str(config), "--decision-log", made(f"sqlite:///{tmp_path / 'w.db'}"), workers=1
    )
    proxy.delay = 0.1

    def pod(image: Pushed, namespace: str) -> dict[str, Any]:
        name = f"{proxy.host}/{image.ref.repository}@{image.digest}"
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": namespace},
            "spec": {"containers": [{"name": "c0", "image": name}]},
        }

    try:
        for label, image in (("unsigned", unsigned), ("signed", good)):
            for namespace in ("dev-team", "prod"):
                status, answer = srv.post(review(pod(image, namespace), uid=f"{label}-{namespace}"))
                response = answer["response"]
                assert status == 200, answer
                assert response.get("auditAnnotations", {}).get("failure-policy") is None, answer
                if label == "unsigned":
                    assert response["allowed"] is False, answer
                    assert "image-attestation" in json.dumps(response), answer
                    assert "image-unverifiable" not in json.dumps(response), answer
                else:
                    assert response["allowed"] is True, answer
    finally:
        srv.stop()
