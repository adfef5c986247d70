"""What an unexpected HTTP status on a manifest GET is: only a status about the content is a
content kind (a blocking `image-manifest`, whoever can push caused it); a proxy's 407, a 408 or
a 400 is the network's or the registry's, an outage (`image-unverifiable`, ADR 5). Found in
review: every status but 404 and 413 was "invalid-manifest"."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.oci_memory import MemoryTransport

from trustgate.artifacts.verifier import CONTENT_KINDS
from trustgate.oci.client import RegistryClient, RegistrySettings
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference
from trustgate.oci.transport import Exchange, Headers, Response


class _Status(MemoryTransport):
    """Answers every manifest GET with one status and an HTML page, as a proxy would."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    @contextmanager
    def fetch(self, exchange: Exchange) -> Iterator[Response]:
        if "/manifests/" not in urlsplit(exchange.url).path:
            with super().fetch(exchange) as response:
                yield response
            return
        body = b"<html>no</html>"
        headers = Headers.of([("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
        yield Response(self.status, headers, iter([body]))


def _manifest_error(status: int) -> RegistryError:
    client = RegistryClient(
        RegistrySettings(docker_config=Path("/nonexistent/config.json"), max_retries=0),
        transport=_Status(status),
    )
    with pytest.raises(RegistryError) as caught:
        client.manifest(Reference.parse("registry.test/shop/api"), "v1")
    return caught.value


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (408, "timeout"),
        (407, "unexpected-status"),
        (400, "unexpected-status"),
        (405, "unexpected-status"),
        (302, "unexpected-status"),
    ],
)
def test_a_status_not_about_the_content_is_an_outage(status: int, kind: str) -> None:
    error = _manifest_error(status)
    assert error.kind == kind
    assert error.kind not in CONTENT_KINDS
    assert f"HTTP {status}" in error.message


@pytest.mark.parametrize(
    ("status", "kind"), [(413, "too-large"), (415, "bad-media-type"), (406, "bad-media-type")]
)
def test_a_status_about_the_content_is_the_contents(status: int, kind: str) -> None:
    error = _manifest_error(status)
    assert error.kind == kind
    assert error.kind in CONTENT_KINDS
