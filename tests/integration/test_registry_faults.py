"""Registry misbehaviour: a deliberately faulty HTTP server (ScriptedServer, a test double) for what
a real registry cannot be made to do, and OciApiDouble for the OCI 1.1 referrers API that
distribution 2.8 lacks."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable

import pytest
from support.oci_push import attach_referrer, push_image, simple_signing_payload
from support.registry import OciApiDouble, Reply, ScriptedServer, double_settings, free_port

from trustgate.oci import mediatypes as mt
from trustgate.oci.client import RegistryClient, compute_digest
from trustgate.oci.discovery import discover
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference

MakeClient = Callable[..., RegistryClient]

CONFIG = b'{"architecture":"amd64","os":"linux"}'
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": compute_digest(CONFIG), "size": len(CONFIG)},
        "layers": [],
    }
).encode()
DIGEST = compute_digest(MANIFEST)


def _ok(body: bytes = MANIFEST, media_type: str = mt.OCI_MANIFEST, **headers: str) -> Reply:
    return Reply(headers={"Content-Type": media_type, **headers}, body=body)


class Sleeps(list[float]):
    """Records the waits the client asks for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def faulty(
    scripted_server: ScriptedServer, registry_client: MakeClient
) -> tuple[ScriptedServer, Reference, Callable[..., RegistryClient]]:
    ref = Reference.parse(f"{scripted_server.host}/app:1.0")

    def client(**overrides: object) -> RegistryClient:
        sleep = overrides.pop("sleep", Sleeps())
        return registry_client(double_settings(scripted_server, **overrides), sleep=sleep)

    return scripted_server, ref, client


def _error(call: Callable[[], object]) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call()
    return caught.value


def test_401_403_404(faulty: tuple[ScriptedServer, Reference, MakeClient]) -> None:
    server, ref, client = faulty
    route = "GET /v2/app/manifests/1.0"
    server.routes[route] = Reply(status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    error = _error(lambda: client().resolve(ref))
    assert error.kind == "unauthorized" and "anonymously (no credentials)" in error.message
    assert server.host in error.message and "app:1.0" in error.message
    server.routes[route] = Reply(status=401)  # no challenge at all
    assert _error(lambda: client().resolve(ref)).kind == "unauthorized"
    server.routes[route] = Reply.json(
        {"errors": [{"code": "DENIED", "message": "requested access is denied"}]}, status=403
    )
    error = _error(lambda: client().resolve(ref))
    assert error.kind == "forbidden" and "DENIED: requested access is denied" in error.message
    server.routes.pop(route)
    error = _error(lambda: client().resolve(ref))
    assert error.kind == "not-found" and "tag 1.0" in error.message
    assert client().manifest(ref, "1.0") is None


def test_429_honours_retry_after_then_succeeds(faulty: tuple[ScriptedServer, Reference, MakeClient]) -> None:
    server, ref, client = faulty
    server.routes["GET /v2/app/manifests/1.0"] = [
        Reply(status=429, headers={"Retry-After": "2"}),
        Reply(status=429, headers={"Retry-After": "5"}),
        _ok(),
    ]
    sleeps = Sleeps()
    assert client(sleep=sleeps, max_retry_after_seconds=5).resolve(ref).digest == DIGEST
    assert sleeps == [2.0, 5.0]
    assert len(server.requests) == 3


def test_a_retry_after_too_long_to_wait_fails_now_and_is_not_shortened(
    faulty: tuple[ScriptedServer, Reference, MakeClient],
) -> None:
    server, ref, client = faulty
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    server.routes["GET /v2/app/manifests/1.0"] = [
        Reply(status=429, headers={"Retry-After": later}),  # an HTTP date an hour away
        _ok(),
    ]
    sleeps = Sleeps()
    error = _error(lambda: client(sleep=sleeps, max_retry_after_seconds=5).resolve(ref))
    assert error.kind == "rate-limited" and error.retry_after is not None and error.retry_after > 3000
    assert "longer than the 5 s trustgate waits" in error.message
    assert sleeps == [] and len(server.requests) == 1  # asked once, not again five seconds later


def test_429_until_the_retries_run_out(faulty: tuple[ScriptedServer, Reference, MakeClient]) -> None:
    server, ref, client = faulty
    server.routes["GET /v2/app/manifests/1.0"] = Reply(status=429, headers={"Retry-After": "7"})
    sleeps = Sleeps()
    error = _error(lambda: client(sleep=sleeps, max_retries=2).resolve(ref))
    assert error.kind == "rate-limited" and error.retry_after == 7.0
    assert "after 3 attempts, retry after 7 s" in error.message
    assert sleeps == [7.0, 7.0] and len(server.requests) == 3


def test_5xx_is_retried_a_bounded_number_of_times(
    faulty: tuple[ScriptedServer, Reference, MakeClient],
) -> None:
    server, ref, client = faulty
    route = "GET /v2/app/manifests/1.0"
    server.routes[route] = [Reply(status=503), Reply(status=500), _ok()]
    sleeps = Sleeps()
    assert client(sleep=sleeps, retry_backoff_seconds=0.5).resolve(ref).digest == DIGEST
    assert sleeps == [0.5, 1.0]
    server.routes[route] = Reply.json(
        {"errors": [{"code": "UNKNOWN", "message": "storage down"}]}, status=500
    )
    before = len(server.requests)
    error = _error(lambda: client(max_retries=3).resolve(ref))
    assert error.kind == "server-error" and "HTTP 500 after 4 attempts" in error.message
    assert "storage down" in error.message
    assert len(server.requests) - before == 4
    server.routes[route] = Reply(status=501)  # not transient: no retry
    before = len(server.requests)
    assert _error(lambda: client().resolve(ref)).kind == "server-error"
    assert len(server.requests) - before == 1


def test_timeouts(faulty: tuple[ScriptedServer, Reference, MakeClient]) -> None:
    server, ref, client = faulty
    server.routes["GET /v2/app/manifests/1.0"] = Reply(
        headers={"Content-Type": mt.OCI_MANIFEST}, body=MANIFEST, delay=1.0
    )
    error = _error(lambda: client(timeout_seconds=0.1, max_retries=1).resolve(ref))
    assert (
        error.kind == "timeout"
        and "no answer within 0.1 s" in error.message
        and "after 2 attempts" in error.message
    )
    # a server that trickles one byte at a time never trips the read timeout; the deadline stops it
    server.routes["GET /v2/app/manifests/1.0"] = Reply(
        headers={"Content-Type": mt.OCI_MANIFEST}, body=MANIFEST, chunks_delay=0.02
    )
    error = _error(lambda: client(transfer_deadline_seconds=0.1, max_retries=0).resolve(ref))
    assert error.kind == "timeout" and "took longer than 0.1 s" in error.message


def test_connection_refused(registry_client: MakeClient) -> None:
    host = f"127.0.0.1:{free_port()}"
    client = registry_client(double_settings(type("S", (), {"host": host})(), max_retries=1), sleep=Sleeps())
    error = _error(lambda: client.resolve(Reference.parse(f"{host}/app:1")))
    assert error.kind == "connection" and host in error.message


def test_truncated_manifests(faulty: tuple[ScriptedServer, Reference, MakeClient]) -> None:
    server, ref, client = faulty
    route = "GET /v2/app/manifests/1.0"
    server.routes[route] = Reply(headers={"Content-Type": mt.OCI_MANIFEST}, body=MANIFEST, truncate_to=40)
    error = _error(lambda: client(max_retries=1).resolve(ref))
    assert error.kind == "connection" and "after 2 attempts" in error.message
    server.routes[route] = Reply(headers={"Content-Type": mt.OCI_MANIFEST}, body=MANIFEST[:40], length=False)
    error = _error(lambda: client().resolve(ref))
    assert error.kind == "invalid-manifest" and "not valid JSON" in error.message
    server.routes[f"GET /v2/app/manifests/{DIGEST}"] = Reply(
        headers={"Content-Type": mt.OCI_MANIFEST}, body=MANIFEST[:40], length=False
    )
    error = _error(lambda: client().manifest(ref, DIGEST))
    assert error.kind == "digest-mismatch"


def test_oversized_manifests(faulty: tuple[ScriptedServer, Reference, MakeClient]) -> None:
    server, ref, client = faulty
    big = MANIFEST[:-1] + b', "annotations": {"x": "' + b"x" * 5000 + b'"}}'
    server.routes["GET /v2/app/manifests/1.0"] = _ok(big)
    error = _error(lambda: client(max_manifest_bytes=1000).resolve(ref))
    assert error.kind == "too-large" and "Content-Length" in error.message
    server.routes["GET /v2/app/manifests/1.0"] = Reply(
        headers={"Content-Type": mt.OCI_MANIFEST}, body=big, length=False
    )
    error = _error(lambda: client(max_manifest_bytes=1000).resolve(ref))
    assert error.kind == "too-large" and "above the limit of 1000 bytes" in error.message


@pytest.mark.parametrize(
    ("content_type", "body", "words"),
    [
        ("text/html", b"<html>login</html>", "text/html is not an image manifest"),
        (mt.DOCKER_MANIFEST_V1, b"{}", "schema 1"),
        (
            mt.OCI_MANIFEST,
            MANIFEST.replace(mt.OCI_MANIFEST.encode(), mt.OCI_INDEX.encode()),
            "but the manifest says",
        ),
        ("application/vnd.example.thing+json", MANIFEST, "is not an image manifest"),
        (
            mt.OCI_INDEX,
            b'{"schemaVersion": 2, "mediaType": "' + mt.OCI_INDEX.encode() + b'"}',
            "without a manifests list",
        ),
        (mt.OCI_MANIFEST, b'{"schemaVersion": 1}', "schemaVersion is 1"),
        (mt.OCI_MANIFEST, b"[1, 2]", "not a JSON object"),
    ],
)
def test_wrong_media_types_and_shapes(
    faulty: tuple[ScriptedServer, Reference, MakeClient], content_type: str, body: bytes, words: str
) -> None:
    server, ref, client = faulty
    server.routes["GET /v2/app/manifests/1.0"] = _ok(body, content_type)
    error = _error(lambda: client().resolve(ref))
    assert error.kind in ("bad-media-type", "invalid-manifest")
    assert words in error.message


def test_generic_content_type_falls_back_to_the_declared_media_type(
    faulty: tuple[ScriptedServer, Reference, MakeClient],
) -> None:
    server, ref, client = faulty
    server.routes["GET /v2/app/manifests/1.0"] = _ok(MANIFEST, "application/json")
    assert client().resolve(ref).media_type == mt.OCI_MANIFEST


def test_digest_mismatches(faulty: tuple[ScriptedServer, Reference, MakeClient]) -> None:
    server, ref, client = faulty
    wrong = compute_digest(b"something else")
    server.routes["GET /v2/app/manifests/1.0"] = _ok(**{"Docker-Content-Digest": wrong})
    error = _error(lambda: client().resolve(ref))
    assert error.kind == "digest-mismatch" and wrong in error.message and DIGEST in error.message
    server.routes[f"GET /v2/app/manifests/{wrong}"] = _ok()
    error = _error(lambda: client().resolve(ref.with_digest(wrong)))
    assert error.kind == "digest-mismatch" and "do not trust this image" in error.hint
    server.routes[f"GET /v2/app/blobs/{compute_digest(CONFIG)}"] = Reply(body=CONFIG + b" ")
    error = _error(lambda: client().blob(ref, compute_digest(CONFIG)))
    assert error.kind == "digest-mismatch"


def test_nested_indexes_too_deep(faulty: tuple[ScriptedServer, Reference, MakeClient]) -> None:
    server, ref, client = faulty
    child = {"mediaType": mt.OCI_MANIFEST, "digest": DIGEST, "size": len(MANIFEST)}
    body = b""
    for level in range(5):
        body = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [child]}).encode()
        digest = compute_digest(body)
        server.routes[f"GET /v2/app/manifests/{digest}"] = _ok(body, mt.OCI_INDEX)
        child = {"mediaType": mt.OCI_INDEX, "digest": digest, "size": len(body)}
        del level
    server.routes["GET /v2/app/manifests/1.0"] = _ok(body, mt.OCI_INDEX)
    error = _error(lambda: client(max_index_depth=2).resolve(ref))
    assert error.kind == "loop" and "deeper than 2 levels" in error.message
    resolved = client(max_index_depth=8).resolve(ref)
    assert [p.digest for p in resolved.platforms] == [DIGEST]


def test_redirect_to_plain_http_is_refused(faulty: tuple[ScriptedServer, Reference, MakeClient]) -> None:
    server, ref, client = faulty
    blob = compute_digest(CONFIG)
    server.routes[f"GET /v2/app/blobs/{blob}"] = Reply(
        status=307, headers={"Location": f"http://storage.invalid/{blob}"}
    )
    error = _error(lambda: client().blob(ref, blob))
    assert error.kind == "tls" and "redirected to http://storage.invalid" in error.message
    server.routes[f"GET /v2/app/blobs/{blob}"] = Reply(status=307, headers={"Location": f"/storage/{blob}"})
    server.routes[f"GET /storage/{blob}"] = Reply(body=CONFIG)
    assert client().blob(ref, blob) == CONFIG


def test_discovery_reports_transport_failures_and_keeps_per_artifact_problems(
    faulty: tuple[ScriptedServer, Reference, MakeClient],
) -> None:
    server, ref, client = faulty
    hexpart = DIGEST.split(":", 1)[1]
    server.routes[f"GET /v2/app/manifests/sha256-{hexpart}.sig"] = Reply(status=503)
    error = _error(lambda: discover(client(max_retries=0), ref, DIGEST))
    assert error.kind == "server-error"  # could not verify: raised, not hidden among problems

    payload = b'{"critical": {}}'
    sig = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": compute_digest(CONFIG), "size": len(CONFIG)},
            "layers": [
                {
                    "mediaType": mt.COSIGN_SIMPLESIGNING,
                    "digest": compute_digest(payload),
                    "size": len(payload),
                    "annotations": {mt.ANNOTATION_SIGNATURE: "c2ln"},
                },
                {"mediaType": "application/octet-stream", "digest": compute_digest(b"x"), "size": 1},
                {
                    "mediaType": mt.COSIGN_SIMPLESIGNING,
                    "digest": compute_digest(b"huge"),
                    "size": 10_000_000,
                    "annotations": {mt.ANNOTATION_SIGNATURE: "c2ln"},
                },
            ],
        }
    ).encode()
    server.routes[f"GET /v2/app/manifests/sha256-{hexpart}.sig"] = _ok(sig)
    server.routes[f"GET /v2/app/blobs/{compute_digest(payload)}"] = Reply(body=payload)
    found = discover(client(), ref, DIGEST)
    assert [a.payload for a in found.signatures] == [payload]
    assert len(found.problems) == 1
    assert "media type application/octet-stream, expected " + mt.COSIGN_SIMPLESIGNING in found.problems[0]
    # too large to read: not a note but listed apart, and the verifier fails the image on it
    assert len(found.oversized) == 1 and "(10000000 bytes)" in found.oversized[0]


# --- the OCI 1.1 referrers API (OciApiDouble) ---------------------------------------------------


def _double_client(double: OciApiDouble, registry_client: MakeClient) -> RegistryClient:
    return registry_client(double_settings(double))


def test_referrers_api_is_used_when_present(
    oci_api_double: OciApiDouble, registry_client: MakeClient
) -> None:
    client = _double_client(oci_api_double, registry_client)
    ref = Reference.parse(f"{oci_api_double.host}/team/app:1.0")
    image = push_image(client, ref)
    bundle = attach_referrer(client, ref, image, b'{"bundle": 1}', update_referrers_tag=False)
    sbom = attach_referrer(
        client, ref, image, b'{"sbom": 1}', artifact_type="application/spdx+json", update_referrers_tag=False
    )
    payload = simple_signing_payload(ref, image.digest)
    cosign = attach_referrer(
        client,
        ref,
        image,
        payload,
        artifact_type=mt.COSIGN_ARTIFACT_SIG,
        layer_media_type=mt.COSIGN_SIMPLESIGNING,
        update_referrers_tag=False,
    )
    signed = attach_referrer(
        client,
        ref,
        image,
        payload,
        artifact_type=mt.COSIGN_ARTIFACT_SIG,
        layer_media_type=mt.COSIGN_SIMPLESIGNING,
        layer_annotations={mt.ANNOTATION_SIGNATURE: "c2ln"},
        update_referrers_tag=False,
    )
    descriptors, source = client.referrers(ref, image.digest)
    assert source == "referrers-api"
    assert sorted(d.digest for d in descriptors) == sorted([bundle, sbom, cosign, signed])
    only, _ = client.referrers(ref, image.digest, artifact_type=mt.SIGSTORE_BUNDLE)
    assert [d.digest for d in only] == [bundle]
    assert "artifactType=" in oci_api_double.requests[-1].target

    found = discover(client, ref, image.digest)
    assert sorted((a.kind, a.source, a.manifest_digest) for a in found.signatures) == sorted(
        [("sigstore-bundle", "referrers-api", bundle), ("cosign-simplesigning", "referrers-api", signed)]
    )
    # the cosign referrer's layer has no signature annotation: reported, not dropped
    assert (
        len(found.problems) == 1
        and cosign in found.problems[0]
        and "no dev.cosignproject" in found.problems[0]
    )


def test_referrers_filter_applied_by_the_client_when_the_registry_does_not(
    registry_client: MakeClient,
) -> None:
    double = OciApiDouble(apply_filters=False)
    try:
        client = _double_client(double, registry_client)
        ref = Reference.parse(f"{double.host}/app:1")
        image = push_image(client, ref)
        bundle = attach_referrer(client, ref, image, b"b", update_referrers_tag=False)
        attach_referrer(
            client, ref, image, b"s", artifact_type="application/spdx+json", update_referrers_tag=False
        )
        only, source = client.referrers(ref, image.digest, artifact_type=mt.SIGSTORE_BUNDLE)
        assert source == "referrers-api" and [d.digest for d in only] == [bundle]
    finally:
        double.stop()


def test_referrers_api_bad_answers(faulty: tuple[ScriptedServer, Reference, MakeClient]) -> None:
    server, ref, client = faulty
    route = f"GET /v2/app/referrers/{DIGEST}"
    server.routes[route] = Reply.json({"manifests": []})  # application/json, not an index
    error = _error(lambda: client().referrers(ref, DIGEST))
    assert error.kind == "bad-media-type" and "not an OCI image index" in error.message
    page = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
    server.routes[route] = Reply.json(
        page, content_type=mt.OCI_INDEX, Link=f'</v2/app/referrers/{DIGEST}>; rel="next"'
    )
    error = _error(lambda: client(max_referrer_pages=3).referrers(ref, DIGEST))
    assert error.kind == "loop" and "3 pages" in error.message
    hexpart = DIGEST.split(":", 1)[1]
    server.routes.pop(route)  # no API: the referrers tag, which here holds an image manifest
    server.routes[f"GET /v2/app/manifests/sha256-{hexpart}"] = _ok()
    error = _error(lambda: client().referrers(ref, DIGEST))
    assert error.kind == "bad-media-type" and "referrers tag" in error.message


def test_a_missing_referrers_route_is_remembered_per_registry(
    faulty: tuple[ScriptedServer, Reference, MakeClient],
) -> None:
    server, ref, client = faulty
    other = compute_digest(b"another image")

    def referrer_calls() -> int:
        return sum("/referrers/" in r.path for r in server.requests)

    # a registry error document (the repository is unknown) says nothing about the route: asked again
    server.routes[f"GET /v2/app/referrers/{DIGEST}"] = Reply.json(
        {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}, status=404
    )
    asking = client()
    assert asking.referrers(ref, DIGEST) == ([], "referrers-tag")
    assert asking.referrers(ref, DIGEST) == ([], "referrers-tag")
    assert referrer_calls() == 2
    # distribution 2.8 has no such route at all: a plain 404, remembered by this client
    server.routes[f"GET /v2/app/referrers/{DIGEST}"] = Reply(status=404, body=b"404 page not found\n")
    remembering = client()
    assert remembering.referrers(ref, DIGEST) == ([], "referrers-tag")
    assert remembering.referrers(ref, other) == ([], "referrers-tag")
    assert referrer_calls() == 3


def test_an_oversized_token_answer_is_refused_without_reading_it_all(
    faulty: tuple[ScriptedServer, Reference, MakeClient],
) -> None:
    server, ref, client = faulty
    realm = f"http://{server.host}/token"
    server.routes["GET /v2/app/manifests/1.0"] = Reply(
        status=401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="test"'}
    )
    server.routes["GET /token"] = Reply(
        headers={"Content-Type": "application/json"}, body=b'{"token": "' + b"x" * (1024 * 1024) + b'"}'
    )
    error = _error(lambda: client().resolve(ref))
    assert error.kind == "too-large"
    assert "the token from" in error.message


def test_an_environment_proxy_is_named_when_it_fails(
    faulty: tuple[ScriptedServer, Reference, MakeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ref, client = faulty
    server.routes["GET /v2/app/manifests/1.0"] = _ok()
    proxy = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", proxy)
    error = _error(lambda: client(max_retries=0).resolve(ref))
    assert error.kind == "connection"
    assert f"via proxy {proxy} (from ALL_PROXY in the environment)" in error.message
    assert "NO_PROXY" in error.hint
    assert server.requests == []  # the registry itself was never reached
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # listed: straight to the registry, no proxy named
    assert client(max_retries=0).resolve(ref).digest == DIGEST


def test_a_compressed_answer_nobody_asked_for_is_refused(
    faulty: tuple[ScriptedServer, Reference, MakeClient],
) -> None:
    import gzip

    server, ref, client = faulty
    server.routes["GET /v2/app/manifests/1.0"] = _ok(gzip.compress(MANIFEST), **{"Content-Encoding": "gzip"})
    error = _error(lambda: client().resolve(ref))
    assert error.kind == "invalid-manifest" and "Content-Encoding gzip" in error.message
    assert "accept-encoding" not in {k.lower() for k in server.requests[0].headers}  # never asked for


def test_a_proxy_that_is_not_http_is_named_and_refused(
    faulty: tuple[ScriptedServer, Reference, MakeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ref, client = faulty
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    error = _error(lambda: client(max_retries=0).resolve(ref))
    assert error.kind == "connection" and "not an HTTP proxy" in error.message
    assert "ALL_PROXY" in error.message and server.requests == []


# JSON nested far past the depth Python's parser follows, and small enough for an error answer.
DEEP = b"[" * 10_000 + b"]" * 10_000


def test_json_nested_too_deep_to_parse_is_a_malformed_answer(
    faulty: tuple[ScriptedServer, Reference, MakeClient],
) -> None:
    """A manifest, a referrers listing, an error document or a token nested deeper than the parser
    follows is malformed, as any bad bytes are (it raised RecursionError, which verification did
    not catch: a fail-open namespace then admitted the image)."""
    server, ref, client = faulty
    route = "GET /v2/app/manifests/1.0"
    server.routes[route] = _ok(DEEP)
    error = _error(lambda: client().resolve(ref))
    assert error.kind == "invalid-manifest" and "nests too deeply" in error.message
    server.routes[route] = Reply(status=403, headers={"Content-Type": "application/json"}, body=DEEP)
    assert _error(lambda: client().resolve(ref)).kind == "forbidden"
    realm = f"http://{server.host}/token"
    server.routes[route] = Reply(status=401, headers={"WWW-Authenticate": f'Bearer realm="{realm}"'})
    server.routes["GET /token"] = _ok(DEEP, "application/json")
    error = _error(lambda: client().resolve(ref))
    assert error.kind == "unauthorized" and "not token JSON" in error.message
    listing = f"GET /v2/app/referrers/{DIGEST}"
    server.routes[listing] = _ok(DEEP, mt.OCI_INDEX)
    error = _error(lambda: client().referrers(ref, DIGEST))
    assert error.kind == "invalid-manifest" and "nests too deeply" in error.message
    # A 404 whose error document cannot be read: no referrers API, as for a 404 without one.
    server.routes[listing] = Reply(status=404, headers={"Content-Type": "application/json"}, body=DEEP)
    hexpart = DIGEST.split(":", 1)[1]
    server.routes[f"GET /v2/app/manifests/sha256-{hexpart}"] = _ok(DEEP, mt.OCI_INDEX)
    error = _error(lambda: client().referrers(ref, DIGEST))
    assert error.kind == "invalid-manifest" and f"sha256-{hexpart}: " in error.message
