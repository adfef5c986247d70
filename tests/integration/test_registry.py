"""The registry client against a real registry (Debian's docker-registry, CNCF distribution 2.8)."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.oci_push import (
    CosignAttestation,
    CosignSignature,
    add_to_referrers_tag,
    attach_cosign_attestations,
    attach_cosign_signatures,
    attach_referrer,
    push_image,
    push_index,
    simple_signing_payload,
)
from support.registry import TEST_REFRESH_TOKEN, RegistryProcess

from trustgate.oci import mediatypes as mt
from trustgate.oci.client import RegistryClient, compute_digest
from trustgate.oci.discovery import discover
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference

MakeClient = Callable[..., RegistryClient]


def _repo(process: RegistryProcess, name: str, tag: str = "1.0") -> Reference:
    """A fresh repository per test, so session-scoped registries do not leak state between tests."""
    return Reference.parse(f"{process.host}/{name}-{secrets.token_hex(3)}:{tag}")


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker"])
def test_resolves_image_and_index_tags(
    registry: RegistryProcess, registry_client: MakeClient, docker: bool
) -> None:
    client = registry_client(registry)
    ref = _repo(registry, "app")
    image = push_image(client, ref, docker=docker)
    resolved = client.resolve(ref)
    assert resolved.digest == image.digest
    assert resolved.media_type == (mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST)
    assert resolved.manifest.raw == image.raw
    assert resolved.platforms == ()
    assert resolved.reference == ref.with_digest(image.digest)

    multi = ref.with_tag("multi")
    index = push_index(client, multi, docker=docker)
    resolved = client.resolve(multi)
    assert resolved.digest == index.digest
    assert resolved.media_type == (mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX)
    assert [(p.platform, p.digest) for p in resolved.platforms] == [
        ("linux/amd64", index.children[0].digest),
        ("linux/arm64", index.children[1].digest),
    ]
    by_digest = client.resolve(Reference(ref.registry, ref.repository, digest=index.children[1].digest))
    assert by_digest.digest == index.children[1].digest


def test_missing_tag_and_manifest(registry: RegistryProcess, registry_client: MakeClient) -> None:
    client = registry_client(registry)
    ref = _repo(registry, "absent")
    with pytest.raises(RegistryError) as caught:
        client.resolve(ref)
    assert caught.value.kind == "not-found"
    assert registry.host in caught.value.message and "tag 1.0" in caught.value.message
    assert client.manifest(ref, "nope") is None
    push_image(client, ref)
    assert client.manifest(ref, "other") is None


def test_blobs_are_fetched_bounded_and_checked(
    registry: RegistryProcess, registry_client: MakeClient
) -> None:
    client = registry_client(registry)
    ref = _repo(registry, "blobs")
    data = secrets.token_bytes(100_000)
    digest = client.push_blob(ref, data)
    assert digest == compute_digest(data)
    assert client.push_blob(ref, data) == digest  # already there: no second upload
    assert client.blob(ref, digest) == data
    with pytest.raises(RegistryError) as caught:
        client.blob(ref, digest, max_bytes=1000)
    assert caught.value.kind == "too-large" and "above the limit of 1000 bytes" in caught.value.message
    with pytest.raises(RegistryError) as caught:
        client.blob(ref, compute_digest(b"never pushed"))
    assert caught.value.kind == "not-found"


def test_oversized_manifest_is_refused(registry: RegistryProcess, registry_client: MakeClient) -> None:
    client = registry_client(registry)
    ref = _repo(registry, "big")
    push_index(client, ref)
    small = registry_client(registry, max_manifest_bytes=100)
    with pytest.raises(RegistryError) as caught:
        small.resolve(ref)
    assert caught.value.kind == "too-large"


def _sign_everything(client: RegistryClient, ref: Reference) -> tuple[str, dict[str, bytes]]:
    index = push_index(client, ref)
    payload = simple_signing_payload(ref, index.digest)
    material = {
        "payload": payload,
        "envelope": json.dumps(
            {"payloadType": "application/vnd.in-toto+json", "payload": "", "signatures": []}
        ).encode(),
        "bundle": b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
        "platform-bundle": b'{"for": "amd64"}',
    }
    attach_cosign_signatures(
        client,
        ref,
        index.digest,
        [
            CosignSignature(
                payload,
                base64.b64encode(b"sig").decode(),
                certificate="-----BEGIN CERTIFICATE-----\n...",
                chain="-----BEGIN CERTIFICATE-----\n...",
                bundle='{"SignedEntryTimestamp": "..."}',
            )
        ],
    )
    attach_cosign_attestations(
        client, ref, index.digest, [CosignAttestation(material["envelope"], "https://slsa.dev/provenance/v1")]
    )
    attach_referrer(client, ref, index, material["bundle"])
    attach_referrer(client, ref, index.children[0], material["platform-bundle"])
    return index.digest, material


def test_discovers_signatures_in_every_form(registry: RegistryProcess, registry_client: MakeClient) -> None:
    client = registry_client(registry)
    ref = _repo(registry, "signed")
    digest, material = _sign_everything(client, ref)
    found = discover(client, ref, digest)
    assert found.problems == ()
    kinds = sorted((a.kind, a.source, a.payload) for a in found.signatures)
    assert kinds == [
        ("cosign-simplesigning", "cosign-tag", material["payload"]),
        ("sigstore-bundle", "referrers-tag", material["bundle"]),
    ]
    cosign = next(a for a in found.signatures if a.kind == "cosign-simplesigning")
    assert cosign.annotations[mt.ANNOTATION_SIGNATURE] == base64.b64encode(b"sig").decode()
    assert cosign.annotations[mt.ANNOTATION_BUNDLE] == '{"SignedEntryTimestamp": "..."}'
    assert cosign.subject_digest == digest
    assert [(a.kind, a.payload) for a in found.attestations] == [("cosign-dsse", material["envelope"])]
    assert found.attestations[0].annotations[mt.ANNOTATION_PREDICATE_TYPE] == "https://slsa.dev/provenance/v1"
    referrers, source = client.referrers(ref, digest)
    assert source == "referrers-tag" and len(referrers) == 1
    assert discover(client, ref, digest, parallel=False) == found
    assert referrers[0].artifact_type == mt.SIGSTORE_BUNDLE


def test_discovery_on_an_unsigned_image_finds_nothing(
    registry: RegistryProcess, registry_client: MakeClient
) -> None:
    client = registry_client(registry)
    ref = _repo(registry, "unsigned")
    image = push_image(client, ref)
    found = discover(client, ref, image.digest)
    assert (found.signatures, found.attestations, found.problems) == ((), (), ())


def test_unreadable_artifacts_become_problems_and_the_rest_is_kept(
    registry: RegistryProcess, registry_client: MakeClient
) -> None:
    client = registry_client(registry)
    ref = _repo(registry, "messy")
    image = push_image(client, ref)
    other = push_image(client, ref.with_tag("other"), content=b"other image")
    good = attach_referrer(client, ref, image, b'{"good": true}')
    # a referrer of another image, listed in this image's referrers tag (a confused client)
    stray = attach_referrer(client, ref, other, b'{"stray": true}', update_referrers_tag=False)
    add_to_referrers_tag(
        client,
        ref,
        image.digest,
        {"mediaType": mt.OCI_MANIFEST, "digest": stray, "size": 1, "artifactType": mt.SIGSTORE_BUNDLE},
    )
    # a .sig layer with the wrong media type, and one without a signature annotation
    attach_cosign_signatures(
        client, ref, image.digest, [CosignSignature(b"payload", "", extra_annotations={})]
    )
    attach_cosign_attestations(
        client, ref, image.digest, [CosignAttestation(b'{"envelope": 1}', "https://example.com/p")]
    )
    found = discover(client, ref, image.digest)
    assert [(a.kind, a.manifest_digest) for a in found.signatures] == [("sigstore-bundle", good)]
    assert len(found.attestations) == 1
    text = "\n".join(found.problems)
    assert f"its subject is {other.digest}, not this image" in text
    assert "no dev.cosignproject.cosign/signature annotation" in text
    assert len(found.problems) == 2


def test_basic_auth(basic_registry: RegistryProcess, registry_client: MakeClient) -> None:
    client = registry_client(basic_registry)
    ref = _repo(basic_registry, "private")
    image = push_image(client, ref)
    assert client.resolve(ref).digest == image.digest

    anonymous = registry_client(basic_registry, credentials=False)
    with pytest.raises(RegistryError) as caught:
        anonymous.resolve(ref)
    assert caught.value.kind == "unauthorized"
    assert (
        "anonymously (no credentials)" in caught.value.message and basic_registry.host in caught.value.message
    )

    wrong = registry_client(basic_registry, docker_config=basic_registry.docker_config(password="wrong"))
    with pytest.raises(RegistryError) as caught:
        wrong.resolve(ref)
    assert caught.value.kind == "unauthorized" and "with credentials from" in caught.value.message


def test_token_auth_fetches_and_caches_tokens(
    token_registry: RegistryProcess, registry_client: MakeClient
) -> None:
    assert token_registry.token_server is not None
    client = registry_client(token_registry)
    ref = _repo(token_registry, "team/app")
    index = push_index(client, ref)
    issued = token_registry.token_server.issued
    for _ in range(5):
        assert client.resolve(ref).digest == index.digest
    assert client.blob(ref, json.loads(index.children[0].raw)["layers"][0]["digest"])
    assert token_registry.token_server.issued == issued + 1  # one pull token, reused


def test_token_auth_refusals(token_registry: RegistryProcess, registry_client: MakeClient) -> None:
    owner = registry_client(token_registry)
    ref = _repo(token_registry, "team/secret")
    push_image(owner, ref)
    public = _repo(token_registry, "public/base")
    image = push_image(owner, public)

    anonymous = registry_client(token_registry, credentials=False)
    assert anonymous.resolve(public).digest == image.digest  # anonymous pull token for public/
    with pytest.raises(RegistryError) as caught:
        anonymous.resolve(ref)
    assert caught.value.kind == "unauthorized" and "anonymously" in caught.value.message

    wrong = registry_client(token_registry, docker_config=token_registry.docker_config(password="nope"))
    with pytest.raises(RegistryError) as caught:
        wrong.resolve(ref)
    assert caught.value.kind == "unauthorized"
    assert "token server" in caught.value.message and "refused" in caught.value.message


def test_token_auth_with_an_identity_token(
    token_registry: RegistryProcess, registry_client: MakeClient
) -> None:
    ref = _repo(token_registry, "team/idt")
    image = push_image(registry_client(token_registry), ref)
    config = token_registry.directory / "identity-config.json"
    config.write_text(json.dumps({"auths": {token_registry.host: {"identitytoken": TEST_REFRESH_TOKEN}}}))
    assert registry_client(token_registry, docker_config=config).resolve(ref).digest == image.digest
    config.write_text(json.dumps({"auths": {f"https://{token_registry.host}": {"identitytoken": "revoked"}}}))
    error = registry_client(token_registry, docker_config=config)
    with pytest.raises(RegistryError) as caught:
        error.resolve(ref)
    assert caught.value.kind == "unauthorized" and "refused credentials from" in caught.value.message


def test_plain_http_token_realm_is_refused_unless_insecure(
    token_registry: RegistryProcess, registry_client: MakeClient
) -> None:
    client = registry_client(token_registry, insecure=(token_registry.host,))
    with pytest.raises(RegistryError) as caught:
        client.resolve(_repo(token_registry, "public/x"))
    assert caught.value.kind == "tls" and "plain HTTP" in caught.value.message


def test_tls_with_configured_ca(tls_registry: RegistryProcess, registry_client: MakeClient) -> None:
    client = registry_client(tls_registry)
    ref = _repo(tls_registry, "tls")
    image = push_image(client, ref)
    assert client.resolve(ref).digest == image.digest

    untrusting = registry_client(tls_registry, ca_file=None)
    with pytest.raises(RegistryError) as caught:
        untrusting.resolve(ref)
    assert caught.value.kind == "tls"
    assert "set ca_file" in caught.value.hint


def test_http2_where_the_registry_offers_it_one_connection_for_every_thread(
    tls_registry: RegistryProcess,
) -> None:
    """distribution serves HTTP/2 over TLS (ALPN): the client speaks it, and many threads share it."""
    from trustgate.oci.transport import Exchange, HttpTransport, Response

    seen: list[str] = []

    class Recording(HttpTransport):
        @contextlib.contextmanager
        def fetch(self, exchange: Exchange) -> Iterator[Response]:
            with super().fetch(exchange) as response:
                seen.append(response.http_version)
                yield response

    transport = Recording(ca_file=tls_registry.ca_file)
    client = RegistryClient(tls_registry.settings(), transport=transport)
    try:
        ref = _repo(tls_registry, "h2")
        image = push_image(client, ref)
        with ThreadPoolExecutor(max_workers=8) as pool:
            digests = list(pool.map(lambda _: client.resolve(ref).digest, range(32)))
        assert set(digests) == {image.digest}
        assert seen and set(seen) == {"HTTP/2"}, set(seen)
    finally:
        client.close()
    seen.clear()
    with RegistryClient(
        tls_registry.settings(), transport=Recording(ca_file=tls_registry.ca_file, http2=False)
    ) as plain:
        assert plain.resolve(ref).digest == image.digest
    assert set(seen) == {"HTTP/1.1"}  # http2: false in the settings, for registries that misbehave


def test_plain_http_registry_is_refused_unless_insecure(
    registry: RegistryProcess, registry_client: MakeClient
) -> None:
    ref = _repo(registry, "plain")
    push_image(registry_client(registry), ref)
    strict = registry_client(registry, insecure=())
    with pytest.raises(RegistryError) as caught:
        strict.resolve(ref)
    assert caught.value.kind == "tls"
    assert "plain HTTP" in caught.value.hint and registry.host in caught.value.message


def test_an_insecure_host_is_one_endpoint_however_its_port_is_written(
    registry: RegistryProcess, registry_client: MakeClient
) -> None:
    """`host:05000` is the endpoint the insecure list names as `host:5000` (containerd reads the
    port as a number): plain HTTP is allowed for it too, not tried over TLS."""
    ref = _repo(registry, "spelled")
    image = push_image(registry_client(registry), ref)
    host, _, port = registry.host.rpartition(":")
    client = registry_client(registry, insecure=(registry.host,))
    spelled = Reference.parse(f"{host}:0{port}/{ref.repository}:1.0")
    assert client.resolve(spelled).digest == image.digest
    listed = registry_client(registry, insecure=(f"{host}:00{port}",))  # the list's spelling too
    assert listed.resolve(ref).digest == image.digest


def test_one_client_shared_by_many_threads(
    token_registry: RegistryProcess, registry_client: MakeClient
) -> None:
    assert token_registry.token_server is not None
    client = registry_client(token_registry)
    ref = _repo(token_registry, "shared")
    pushed = [push_image(client, ref.with_tag(f"t{i}"), content=f"layer {i}".encode()) for i in range(8)]
    issued = token_registry.token_server.issued
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(i: int) -> str:
        try:
            return client.resolve(ref.with_tag(f"t{i % 8}")).digest
        except BaseException as e:  # collected and asserted below
            with lock:
                errors.append(e)
            raise

    with ThreadPoolExecutor(max_workers=16) as pool:
        digests = list(pool.map(work, range(200)))
    assert errors == []
    assert digests == [pushed[i % 8].digest for i in range(200)]
    assert token_registry.token_server.issued == issued + 1  # one pull token shared by all threads


def test_pushing_a_manifest_with_missing_blobs_is_refused(
    registry: RegistryProcess, registry_client: MakeClient
) -> None:
    client = registry_client(registry)
    ref = _repo(registry, "broken")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": compute_digest(b"x"), "size": 1},
            "layers": [],
        }
    ).encode()
    with pytest.raises(RegistryError) as caught:
        client.push_manifest(ref, manifest, mt.OCI_MANIFEST, "1.0")
    assert "MANIFEST_BLOB_UNKNOWN" in caught.value.message or "BLOB_UNKNOWN" in caught.value.message
