"""An in-memory registry at the transport seam: a test double of `trustgate.oci.transport.Transport`.

It answers the distribution API's routes (manifests by tag or digest, blobs, monolithic blob
uploads, manifest pushes, and the OCI 1.1 referrers API) from dictionaries, so unit tests run
the real registry client (`RegistryClient`: media types, digests, referrers, index walking)
above it without a network. Everything HTTP-level that can go wrong is the real registry's and
the fault proxy's to show (tests/support/registry.py, tests/support/faults.py).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

from trustgate.oci.transport import Exchange, Headers, Response

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class MemoryTransport:
    """The routes of one registry (any host) over `blobs`, `manifests` and `tags`.

    Args:
        referrers_api: serve /v2/<name>/referrers/<digest> (False: 404, as distribution 2.8).
    """

    def __init__(self, *, referrers_api: bool = True) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}  # digest -> (bytes, media type)
        self.tags: dict[tuple[str, str], str] = {}  # (host/repository, tag) -> digest
        self.referrers_api = referrers_api
        self.requests: list[str] = []  # "METHOD path" of every exchange
        self._uploads = itertools.count(1)

    @contextmanager
    def fetch(self, exchange: Exchange) -> Iterator[Response]:
        parts = urlsplit(exchange.url)
        self.requests.append(f"{exchange.method} {parts.path}")
        status, headers, body = self._answer(exchange, parts.netloc, parts.path, parse_qs(parts.query))
        headers.setdefault("Content-Length", str(len(body)))
        sent = b"" if exchange.method == "HEAD" else body
        yield Response(status, Headers.of(list(headers.items())), iter([sent] if sent else []))

    def close(self) -> None:
        pass

    def _answer(
        self, exchange: Exchange, host: str, path: str, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, str], bytes]:
        if not path.startswith("/v2/"):
            return 404, {}, b""
        for route in ("/manifests/", "/blobs/uploads/", "/blobs/", "/referrers/"):
            if route in path:
                repository, _, target = path[len("/v2/") :].rpartition(route)
                name = f"{host}/{repository}"
                return self._route(route, exchange, name, target, query)
        return 404, {}, b""

    def _route(
        self, route: str, exchange: Exchange, name: str, target: str, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, str], bytes]:
        method = exchange.method
        if route == "/manifests/" and method in ("GET", "HEAD"):
            digest = target if target.startswith("sha256:") else self.tags.get((name, target))
            if digest is None or digest not in self.manifests:
                return 404, {}, _errors("MANIFEST_UNKNOWN", "manifest unknown")
            raw, media_type = self.manifests[digest]
            return 200, {"Content-Type": media_type, "Docker-Content-Digest": digest}, raw
        if route == "/manifests/" and method == "PUT":
            data = exchange.content or b""
            digest = sha256(data)
            self.manifests[digest] = (data, dict(exchange.headers).get("Content-Type", ""))
            if not target.startswith("sha256:"):
                self.tags[(name, target)] = digest
            return 201, {"Docker-Content-Digest": digest}, b""
        if route == "/blobs/uploads/" and method == "POST":
            return 202, {"Location": f"/v2/{name.split('/', 1)[1]}/blobs/uploads/{next(self._uploads)}"}, b""
        if route == "/blobs/uploads/" and method == "PUT":
            data = exchange.content or b""
            if query.get("digest") != [sha256(data)]:
                return 400, {}, _errors("DIGEST_INVALID", "digest does not match")
            self.blobs[sha256(data)] = data
            return 201, {}, b""
        if route == "/blobs/" and method in ("GET", "HEAD"):
            if target not in self.blobs:
                return 404, {}, _errors("BLOB_UNKNOWN", "blob unknown")
            return 200, {"Content-Type": "application/octet-stream"}, self.blobs[target]
        if route == "/referrers/" and method == "GET" and self.referrers_api:
            wanted = query.get("artifactType", [None])[0]
            found = [d for d in self._referrers(target) if wanted is None or d.get("artifactType") == wanted]
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}
            headers = {"Content-Type": OCI_INDEX}
            if wanted is not None:
                headers["OCI-Filters-Applied"] = "artifactType"
            return 200, headers, json.dumps(index).encode()
        return 404, {}, b""

    def _referrers(self, subject: str) -> list[dict[str, Any]]:
        found = []
        for digest, (raw, media_type) in self.manifests.items():
            body = json.loads(raw)
            if (body.get("subject") or {}).get("digest") != subject:
                continue
            descriptor: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(raw)}
            artifact_type = body.get("artifactType") or (body.get("config") or {}).get("mediaType")
            if artifact_type:
                descriptor["artifactType"] = artifact_type
            if body.get("annotations"):
                descriptor["annotations"] = body["annotations"]
            found.append(descriptor)
        return found


def _errors(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()
