"""The registry transport seam: headers by any case, the environment's proxies, and the real
client over the in-memory transport double (tests/support/oci_memory.py)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.oci_memory import MemoryTransport

from trustgate.oci.client import RegistryClient, RegistrySettings, compute_digest
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference
from trustgate.oci.transport import Headers, Response, Transport, environment_proxy


def test_headers_are_found_by_any_case_and_repeated_ones_are_joined() -> None:
    headers = Headers.of(
        [("WWW-Authenticate", 'Bearer realm="a"'), ("www-authenticate", "Basic"), ("X", "1")]
    )
    assert headers.get("Www-Authenticate") == 'Bearer realm="a", Basic'
    assert headers["x"] == "1" and "X" in headers and headers.get("missing") is None
    assert headers.get("missing", "") == ""


def test_the_environment_proxy_follows_urllibs_rules() -> None:
    proxies = {"https": "http://proxy:3128", "all": "http://all:3128", "no": "registry.internal,.corp"}
    assert environment_proxy("https://ghcr.io/v2/", proxies) == ("http://proxy:3128", "HTTPS_PROXY")
    assert environment_proxy("http://ghcr.io/v2/", proxies) == ("http://all:3128", "ALL_PROXY")
    assert environment_proxy("https://registry.internal/v2/", proxies) is None
    assert environment_proxy("https://r.corp/v2/", proxies) is None
    assert environment_proxy("https://ghcr.io/v2/", {}) is None


def test_the_client_runs_over_any_transport_and_checks_what_it_serves() -> None:
    transport = MemoryTransport()
    assert isinstance(transport, Transport)
    client = RegistryClient(
        RegistrySettings(docker_config=Path("/nonexistent/config.json")), transport=transport
    )
    ref = Reference.parse("registry.test/shop/api:v1")
    config = client.push_blob(ref, b"{}")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [],
        }
    ).encode()
    digest = client.push_manifest(ref, manifest, "application/vnd.oci.image.manifest.v1+json", "v1")
    assert client.resolve(ref).digest == digest == compute_digest(manifest)
    assert transport.requests[-1] == "GET /v2/shop/api/manifests/v1"
    transport.manifests[digest] = (manifest + b" ", transport.manifests[digest][1])  # bytes altered
    with pytest.raises(RegistryError) as caught:
        client.manifest(ref, digest)
    assert caught.value.kind == "digest-mismatch"


def test_credentials_never_follow_a_link_to_another_host(tmp_path: Path) -> None:
    """A referrers page's `Link` may name any URL: the next page is fetched there (held to the
    redirect rules) but the registry's credentials stay with the registry, and that host's 401
    challenge is not answered (it would choose where credentials go next)."""
    import base64
    from contextlib import contextmanager

    seen: list[tuple[str, str | None]] = []

    class Paging(MemoryTransport):
        @contextmanager
        def fetch(self, exchange):  # type: ignore[no-untyped-def]
            parts = urlsplit(exchange.url)
            authorization = dict(exchange.headers).get("Authorization")
            seen.append((parts.netloc, authorization))
            if parts.netloc == "registry.test" and authorization is None:
                challenge = Headers.of([("WWW-Authenticate", 'Basic realm="registry"')])
                yield Response(401, challenge, iter([]))
                return
            if parts.netloc == "evil.test":
                yield Response(401, Headers.of([("WWW-Authenticate", 'Basic realm="evil"')]), iter([]))
                return
            with super().fetch(exchange) as response:
                if "/referrers/" in parts.path:
                    response.headers = Headers.of(
                        [
                            *response.headers.items(),
                            ("Link", f'<https://evil.test{parts.path}?n=2>; rel="next"'),
                        ]
                    )
                yield response

    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"auths": {"registry.test": {"auth": base64.b64encode(b"ci:s3cret").decode()}}})
    )
    client = RegistryClient(RegistrySettings(docker_config=config), transport=Paging())
    ref = Reference.parse("registry.test/shop/api")
    with pytest.raises(RegistryError) as caught:
        client.referrers(ref, "sha256:" + "a" * 64)
    assert caught.value.kind == "unauthorized"
    assert ("registry.test", "Basic " + base64.b64encode(b"ci:s3cret").decode()) in seen
    assert [auth for host, auth in seen if host == "evil.test"] == [None]
