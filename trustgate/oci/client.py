"""The registry client: resolve, fetch manifests and blobs, referrers, push.

Owns: `RegistryClient`, the implementation of the `Registry` protocol
(trustgate.oci.model, whose names are re-exported here, as is
`RegistrySettings`) over one shared `Transport` (the seam in transport.py:
one `fetch`; pooled connections, thread-safe): Accept headers for OCI and
Docker manifests and indexes, digest checks on every byte fetched, timeouts,
retries (429 per Retry-After, 5xx and dropped connections a bounded number of
times), redirects, HTTPS with an extra CA and plain HTTP only for registries
listed as insecure, the OCI 1.1 referrers API with the referrers-tag
fallback. Leaves out: what signatures mean (trustgate.verify), which
artifacts are signatures (discovery.py), the auth flow and bearer tokens
(authorizer.py, over auth.py), reading bodies within their limits (body.py)
and the limits themselves (settings.py).

Every failure is a `RegistryError` whose message names the registry and the
reference; `manifest()` returns None for a 404 because "absent" is an answer
there (a cosign tag that does not exist), not a failure.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlencode, urljoin, urlsplit

from trustgate import untrusted_json
from trustgate.oci import deadline as _deadline
from trustgate.oci import mediatypes as mt
from trustgate.oci.authorizer import Authorizer
from trustgate.oci.body import Transient, read_bounded, root_cause
from trustgate.oci.errors import InvalidReferenceError, RegistryError
from trustgate.oci.model import (
    Descriptor,
    Manifest,
    PlatformManifest,
    Registry,
    Resolved,
    compute_digest,
    flatten_index,
    platform_name,
)
from trustgate.oci.reference import Reference, plain_registry, validate_digest
from trustgate.oci.settings import RegistrySettings
from trustgate.oci.transport import (
    Exchange,
    Headers,
    HttpTransport,
    Transport,
    TransportFailure,
    TransportTimeout,
)

if TYPE_CHECKING:
    from trustgate.config import RegistryConfig

__all__ = [
    "Descriptor",
    "InvalidReferenceError",
    "Manifest",
    "PlatformManifest",
    "Registry",
    "RegistryClient",
    "RegistryError",
    "RegistrySettings",
    "Resolved",
    "compute_digest",
    "flatten_index",
    "platform_name",
    "registry_client",
]

_RETRY_STATUSES: Final = frozenset({500, 502, 503, 504})
# What an unexpected status says (`_expect`); any other is "unexpected-status".
_STATUS_KINDS: Final = {
    404: "not-found",
    406: "bad-media-type",  # none of the manifest types we accept
    408: "timeout",
    413: "too-large",
    415: "bad-media-type",
}


def registry_client(config: RegistryConfig, *, transport: Transport | None = None) -> RegistryClient:
    """The registry client for `images.registries` (what every gate builds on first use).

    Raises:
        RegistryError: ("tls") the configured CA file cannot be loaded.
    """
    return RegistryClient(RegistrySettings.from_config(config), transport=transport)


@dataclass(slots=True)
class _Response:
    status: int
    headers: Headers
    body: bytes
    url: str


class RegistryClient:
    """`Registry` over a `Transport` (HTTPS, pooled connections); one instance is shared by every thread.

    Args:
        settings: limits, TLS and credentials; the defaults suit public registries.
        sleep: how to wait between retries (tests pass a recorder).
        transport: how bytes move; None builds an `HttpTransport` from `settings` (tests pass
            a double at this seam).
    """

    def __init__(
        self,
        settings: RegistrySettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings or RegistrySettings()
        self._sleep = sleep
        self._insecure = frozenset(plain_registry(host) for host in self.settings.insecure)
        self._transport: Transport = transport or HttpTransport(
            ca_file=self.settings.ca_file,
            user_agent=self.settings.user_agent,
            max_connections=self.settings.max_connections,
            max_keepalive=self.settings.max_keepalive_connections,
            http2=self.settings.http2,
        )
        self._auth = Authorizer(self.settings, self._transport)
        self._lock = threading.Lock()
        self._no_referrers_api: set[str] = set()  # registries whose referrers route does not exist

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the Registry protocol -------------------------------------------------------------------

    def resolve(self, ref: Reference, *, platforms: bool = True) -> Resolved:
        """Resolve `ref` (tag or digest) to the digest of what the registry serves.

        Args:
            ref: the image; its digest, else its tag, else `latest`.
            platforms: list an index's platform manifests (`flatten_index`); without, only the
                index is read (a signature over its digest covers everything it names).

        Raises:
            RegistryError: "not-found" when the tag or digest does not exist, and every kind of
                `manifest()`; "loop" for nested indexes that loop or nest too deep.
        """
        found = self._fetch_manifest(ref, ref.target)
        if found is None:
            what = f"digest {ref.digest}" if ref.digest else f"tag {ref.target}"
            raise RegistryError(
                "not-found",
                f"{what} of {ref.name} does not exist",
                registry=ref.registry,
                reference=str(ref),
                hint="check the spelling, and that the image was pushed to this registry",
            )
        listed: tuple[PlatformManifest, ...] = ()
        if found.is_index and platforms:
            listed = flatten_index(
                found,
                lambda digest: self._require_manifest(ref, digest),
                max_depth=self.settings.max_index_depth,
                max_platforms=self.settings.max_platforms,
                registry=ref.registry,
                reference=str(ref),
            )
        return Resolved(
            reference=ref.with_digest(found.digest),
            digest=found.digest,
            media_type=found.media_type,
            manifest=found,
            platforms=listed,
        )

    def manifest(
        self, ref: Reference, tag_or_digest: str, *, max_bytes: int | None = None
    ) -> Manifest | None:
        """The manifest or index at `tag_or_digest` in `ref`'s repository; None when it does not exist.

        `max_bytes`: read at most this many bytes (default, and at most, max_manifest_bytes).

        Raises:
            RegistryError: "digest-mismatch" when the bytes do not hash to the digest asked for or
                announced in Docker-Content-Digest; "bad-media-type" for anything but an OCI/Docker
                manifest or index; "invalid-manifest" for bytes that are not such a document;
                "too-large" above `max_bytes`; and the transport kinds.
        """
        return self._fetch_manifest(ref, tag_or_digest, max_bytes=max_bytes)

    def blob(self, ref: Reference, digest: str, *, max_bytes: int | None = None) -> bytes:
        """The blob `digest` from `ref`'s repository, checked against its digest.

        Raises:
            RegistryError: "not-found", "too-large" (above `max_bytes`, default max_blob_bytes),
                "digest-mismatch", and the transport kinds.
        """
        where = f"{ref.name}@{digest}"
        self._check_digest(ref, digest, where)
        limit = self.settings.max_blob_bytes if max_bytes is None else max_bytes
        response = self._request(
            "GET", ref, f"/v2/{ref.repository}/blobs/{digest}", what=f"blob {digest}", max_bytes=limit
        )
        if response.status == 404:
            raise RegistryError(
                "not-found",
                f"blob {digest} of {ref.name} does not exist{_error_detail(response)}",
                registry=ref.registry,
                reference=where,
            )
        self._expect(response, (200,), ref, f"blob {digest}")
        actual = compute_digest(response.body, digest.split(":", 1)[0])
        if actual != digest:
            raise RegistryError(
                "digest-mismatch",
                f"blob {digest} of {ref.name} arrived with digest {actual}",
                registry=ref.registry,
                reference=where,
                hint="the registry or a proxy altered or truncated the content",
            )
        return response.body

    def referrers(
        self, ref: Reference, digest: str, *, artifact_type: str | None = None
    ) -> tuple[list[Descriptor], str]:
        """Descriptors of the artifacts that name `digest` as their subject, and where they came from.

        Uses the OCI 1.1 referrers API ("referrers-api") and, when the registry does not have it
        (404; remembered per registry when the route itself is missing), the `sha256-<hex>` tag
        holding an index ("referrers-tag"). With `artifact_type`, only those artifacts are returned
        (filtered here when the registry did not apply the filter, as its OCI-Filters-Applied
        header says).

        Raises:
            RegistryError: "bad-media-type" when the answer is not an OCI index, "invalid-manifest" for
                malformed descriptors, and the kinds of `manifest()`.
        """
        where = f"{ref.name}@{digest}"
        self._check_digest(ref, digest, where)
        with self._lock:
            known_absent = ref.registry in self._no_referrers_api
        if known_absent:
            return self._referrers_tag(ref, digest, artifact_type)
        path = f"/v2/{ref.repository}/referrers/{digest}"
        if artifact_type:
            path += "?" + urlencode({"artifactType": artifact_type})
        descriptors: list[Descriptor] = []
        filtered = False
        for page in range(self.settings.max_referrer_pages):
            response = self._request(
                "GET",
                ref,
                path,
                what=f"referrers of {digest}",
                headers={"Accept": mt.OCI_INDEX},
                max_bytes=self.settings.max_manifest_bytes,
            )
            if response.status == 404 and page == 0:
                if not _error_detail(response):
                    # No route at all (not a registry error such as NAME_UNKNOWN): remember, and save
                    # every later lookup at this registry one round trip.
                    with self._lock:
                        self._no_referrers_api.add(ref.registry)
                return self._referrers_tag(ref, digest, artifact_type)
            self._expect(response, (200,), ref, f"referrers of {digest}")
            media_type = _content_type(response)
            if media_type != mt.OCI_INDEX:
                raise RegistryError(
                    "bad-media-type",
                    f"{ref.registry}: the referrers API for {where} answered {media_type or 'no type'}, "
                    f"not an OCI image index",
                    registry=ref.registry,
                    reference=where,
                )
            index = self._parse_manifest(
                ref, response.body, mt.OCI_INDEX, compute_digest(response.body), where
            )
            descriptors.extend(self._index_entries(ref, index, where))
            applied = response.headers.get("OCI-Filters-Applied", "")
            filtered = "artifactType" in {part.strip() for part in applied.split(",")}
            next_path = _next_link(response.headers.get("Link", ""))
            if next_path is None:
                break
            path = next_path
        else:
            raise RegistryError(
                "loop",
                f"{ref.registry}: the referrers API for {where} kept paging past "
                f"{self.settings.max_referrer_pages} pages",
                registry=ref.registry,
                reference=where,
            )
        if artifact_type and not filtered:
            descriptors = [d for d in descriptors if d.artifact_type == artifact_type]
        return descriptors, "referrers-api"

    def push_blob(self, ref: Reference, data: bytes) -> str:
        """Upload `data` as a blob (monolithic POST then PUT) unless present; return its digest.

        Raises:
            RegistryError: the registry refused the upload, and the transport kinds.
        """
        digest = compute_digest(data)
        head = self._request(
            "HEAD", ref, f"/v2/{ref.repository}/blobs/{digest}", what=f"blob {digest}", push=True
        )
        if head.status == 200:
            return digest
        start = self._request(
            "POST", ref, f"/v2/{ref.repository}/blobs/uploads/", what="blob upload", push=True
        )
        self._expect(start, (202,), ref, "blob upload")
        location = start.headers.get("Location")
        if not location:
            raise RegistryError(
                "invalid-manifest",
                f"the blob upload for {ref.name} started without a Location",
                registry=ref.registry,
                reference=ref.name,
            )
        separator = "&" if "?" in location else "?"
        done = self._request(
            "PUT",
            ref,
            f"{location}{separator}{urlencode({'digest': digest})}",
            what=f"blob {digest}",
            push=True,
            headers={"Content-Type": "application/octet-stream"},
            content=data,
        )
        self._expect(done, (201,), ref, f"blob {digest}")
        return digest

    def push_manifest(self, ref: Reference, data: bytes, media_type: str, tag: str | None = None) -> str:
        """Upload a manifest or index under `tag` (or its digest); return its digest.

        Raises:
            RegistryError: the registry refused it (missing blobs, invalid document), or transport kinds.
        """
        digest = compute_digest(data)
        target = tag or digest
        response = self._request(
            "PUT",
            ref,
            f"/v2/{ref.repository}/manifests/{target}",
            what=f"manifest {target}",
            push=True,
            headers={"Content-Type": media_type},
            content=data,
        )
        self._expect(response, (201,), ref, f"manifest {target}")
        announced = response.headers.get("Docker-Content-Digest")
        if announced and announced != digest:
            raise RegistryError(
                "digest-mismatch",
                f"stored manifest {target} of {ref.name} as {announced}, but its bytes hash to {digest}",
                registry=ref.registry,
                reference=ref.name,
            )
        return digest

    # --- manifests --------------------------------------------------------------------------------

    def _require_manifest(self, ref: Reference, digest: str) -> Manifest:
        found = self._fetch_manifest(ref, digest)
        if found is None:
            raise RegistryError(
                "not-found",
                f"manifest {digest} listed in an index of {ref} does not exist",
                registry=ref.registry,
                reference=str(ref),
            )
        return found

    def _fetch_manifest(
        self, ref: Reference, target: str, *, max_bytes: int | None = None
    ) -> Manifest | None:
        where = f"{ref.name}@{target}" if ":" in target else f"{ref.name}:{target}"
        pinned = ":" in target
        if pinned:
            self._check_digest(ref, target, where)
        response = self._request(
            "GET",
            ref,
            f"/v2/{ref.repository}/manifests/{target}",
            what=f"manifest {target}",
            headers={"Accept": mt.ACCEPT_MANIFESTS},
            max_bytes=self.settings.max_manifest_bytes
            if max_bytes is None
            else min(max_bytes, self.settings.max_manifest_bytes),
        )
        if response.status == 404:
            return None
        self._expect(response, (200,), ref, f"manifest {target}")
        algorithm = target.split(":", 1)[0] if pinned else "sha256"
        actual = compute_digest(response.body, algorithm)
        if pinned and actual != target:
            raise RegistryError(
                "digest-mismatch",
                f"manifest {target} of {ref.name} arrived with digest {actual}",
                registry=ref.registry,
                reference=where,
                hint="the registry or a proxy altered or truncated the manifest; do not trust this image",
            )
        announced = response.headers.get("Docker-Content-Digest", "").strip()
        announced_algorithm = announced.split(":", 1)[0]
        if announced_algorithm in ("sha256", "sha512"):
            expected = compute_digest(response.body, announced_algorithm)
            if announced != expected:
                raise RegistryError(
                    "digest-mismatch",
                    f"{where} was announced as {announced} (Docker-Content-Digest), "
                    f"but its bytes hash to {expected}",
                    registry=ref.registry,
                    reference=where,
                    hint="the registry or a proxy altered or truncated the manifest; do not trust this image",
                )
        return self._parse_manifest(ref, response.body, _content_type(response), actual, where)

    def _parse_manifest(
        self, ref: Reference, body: bytes, content_type: str, digest: str, where: str
    ) -> Manifest:
        def fail(kind: str, message: str) -> RegistryError:
            return RegistryError(kind, f"{where}: {message}", registry=ref.registry, reference=where)

        if (
            content_type == mt.DOCKER_MANIFEST_V1
            or content_type == "application/vnd.docker.distribution.manifest.v1+json"
        ):
            raise fail("bad-media-type", "Docker schema 1 manifests are not supported (push the image again)")
        generic = ("", "application/json", "application/octet-stream")
        if content_type not in mt.MANIFESTS and content_type not in generic:
            raise fail(
                "bad-media-type",
                f"{content_type} is not an image manifest or index (expected one of {mt.ACCEPT_MANIFESTS})",
            )
        try:
            data = untrusted_json.loads(body)
        except ValueError as e:  # malformed, not UTF-8, or nested past what the parser follows
            raise fail(
                "invalid-manifest", f"the manifest is not valid JSON ({e}); truncated or corrupt?"
            ) from e
        if not isinstance(data, dict):
            raise fail("invalid-manifest", "the manifest is not a JSON object")
        declared = data.get("mediaType")
        if content_type in mt.MANIFESTS:
            media_type = content_type
            if isinstance(declared, str) and declared and declared != content_type:
                raise fail(
                    "bad-media-type",
                    f"the registry serves it as {content_type}, but the manifest says {declared}",
                )
        elif (
            content_type in ("", "application/json", "application/octet-stream") and declared in mt.MANIFESTS
        ):
            media_type = str(declared)
        else:
            shown = content_type or (declared if isinstance(declared, str) else "") or "no media type"
            raise fail(
                "bad-media-type",
                f"{shown} is not an image manifest or index (expected one of {mt.ACCEPT_MANIFESTS})",
            )
        if data.get("schemaVersion") != 2:
            raise fail("invalid-manifest", f"schemaVersion is {data.get('schemaVersion')!r}, expected 2")
        if media_type in mt.INDEXES:
            if not isinstance(data.get("manifests"), list):
                raise fail("invalid-manifest", "an index without a manifests list")
        elif not isinstance(data.get("config"), dict) or not isinstance(data.get("layers", []), list):
            raise fail("invalid-manifest", "an image manifest without config or layers")
        return Manifest(digest=digest, media_type=media_type, raw=body, json=data)

    def _index_entries(self, ref: Reference, index: Manifest, where: str) -> list[Descriptor]:
        try:
            return index.descriptors("manifests")
        except ValueError as e:
            raise RegistryError(
                "invalid-manifest",
                f"{where}: malformed index entry: {e}",
                registry=ref.registry,
                reference=where,
            ) from e

    def _referrers_tag(
        self, ref: Reference, digest: str, artifact_type: str | None
    ) -> tuple[list[Descriptor], str]:
        algorithm, hexpart = digest.split(":", 1)
        tag = f"{algorithm}-{hexpart}"
        index = self._fetch_manifest(ref, tag)
        if index is None:
            return [], "referrers-tag"
        where = f"{ref.name}:{tag}"
        if index.media_type != mt.OCI_INDEX:
            raise RegistryError(
                "bad-media-type",
                f"{ref.registry}: the referrers tag {where} holds {index.media_type}, not an OCI image index",
                registry=ref.registry,
                reference=where,
            )
        descriptors = self._index_entries(ref, index, where)
        if artifact_type:
            descriptors = [d for d in descriptors if d.artifact_type == artifact_type]
        return descriptors, "referrers-tag"

    # --- HTTP -------------------------------------------------------------------------------------

    def _check_digest(self, ref: Reference, digest: str, where: str) -> None:
        try:
            validate_digest(digest)
        except InvalidReferenceError as e:
            raise RegistryError(
                "invalid-manifest",
                f"{where}: {e.message}",
                registry=ref.registry,
                reference=where,
            ) from e

    def _base_url(self, ref: Reference) -> str:
        host = ref.api_host
        insecure = plain_registry(host) in self._insecure or plain_registry(ref.registry) in self._insecure
        scheme = "http" if insecure else "https"
        return f"{scheme}://{host}"

    def _expect(self, response: _Response, statuses: tuple[int, ...], ref: Reference, what: str) -> None:
        if response.status in statuses:
            return
        detail = _error_detail(response)
        # Only statuses about the content are content kinds (a blocking `image-manifest`); any other
        # is the network's or the registry's (found in review: a proxy's 408 or 407 denied as
        # "malformed"), an outage where the image is resolved (ADR 5).
        kind = _STATUS_KINDS.get(response.status, "unexpected-status")
        raise RegistryError(
            kind,
            f"{what} of {ref.name}: unexpected HTTP {response.status}{detail}",
            registry=ref.registry,
            reference=ref.name,
        )

    def _request(
        self,
        method: str,
        ref: Reference,
        path: str,
        *,
        what: str,
        push: bool = False,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        max_bytes: int | None = None,
    ) -> _Response:
        """One logical request with auth, redirects and retries; returns the final response.

        Raises RegistryError for 401, 403, exhausted 429/5xx, timeouts and connection failures;
        returns other statuses to the caller.
        """
        registry = ref.registry
        reference = str(ref)
        scope = f"repository:{ref.repository}:{'pull,push' if push else 'pull'}"
        base = self._base_url(ref)
        url = urljoin(base + "/", path) if not path.startswith("/") else base + path
        # A registry's Link (referrers paging) or Location (blob upload) may name another host:
        # it is held to the redirect rules, and the registry's credentials are not sent there.
        foreign = urlsplit(url).netloc != urlsplit(base).netloc
        if foreign:
            self._check_redirect(url, ref, what)
        attempt = 0
        auth_rounds = 0
        backoff = self.settings.retry_backoff_seconds
        budget = _deadline.current()
        while True:
            if budget is not None and budget.remaining() <= 0:
                raise RegistryError(
                    "timeout",
                    f"{what} of {reference}: not sent, the {budget.seconds:g} s deadline for "
                    f"{budget.what} ran out" + (f" (after {attempt} attempts)" if attempt else ""),
                    registry=registry,
                    reference=reference,
                    hint="the registry is slow or unreachable; images.registries.deadlineSeconds bounds "
                    "each verification",
                )
            authorization = None if foreign else self._auth.header(ref, scope)
            request_headers = dict(headers or {})
            if authorization:
                request_headers["Authorization"] = authorization
            try:
                response = self._send(
                    method,
                    url,
                    request_headers,
                    content,
                    self.settings.error_body_bytes if max_bytes is None else max_bytes,
                    ref,
                    what,
                )
            except Transient as e:
                if attempt < self.settings.max_retries and _may_wait(backoff, budget):
                    attempt += 1
                    self._sleep(backoff)
                    backoff *= 2
                    continue
                cut = (
                    f"; no time left to retry within the {budget.seconds:g} s deadline"
                    if budget is not None and attempt < self.settings.max_retries
                    else ""
                )
                via = e.via
                raise RegistryError(
                    e.kind,
                    f"{what} of {reference}: {e.reason}{via} (after {attempt + 1} attempts{cut})",
                    registry=registry,
                    reference=reference,
                    hint=(
                        "check that the proxy is right for this registry (or list the registry in "
                        "NO_PROXY), and that the registry is up"
                        if via
                        else "check that the registry is up and reachable from here"
                    ),
                ) from e.__cause__
            status = response.status
            if status == 401:
                # Again only when there is something new to send (a fresh token, first credentials).
                challenge = response.headers.get("WWW-Authenticate", "")
                # Never from another host: its challenge would choose where credentials go.
                if (
                    not foreign
                    and auth_rounds < 2
                    and self._auth.challenged(ref, scope, authorization, challenge)
                ):
                    auth_rounds += 1
                    continue
                creds = self._auth.credentials(registry)
                source = (
                    f" with credentials from {creds.source}" if creds else " anonymously (no credentials)"
                )
                raise RegistryError(
                    "unauthorized",
                    f"{what} of {reference}: the registry refused access{source}{_error_detail(response)}",
                    registry=registry,
                    reference=reference,
                    hint="log in (docker login) or set docker_config to a config.json with credentials "
                    f"for {registry}",
                )
            if status == 403:
                raise RegistryError(
                    "forbidden",
                    f"{what} of {reference}: access denied (HTTP 403){_error_detail(response)}",
                    registry=registry,
                    reference=reference,
                    hint="the credentials are valid but lack permission for this repository",
                )
            if status == 429:
                retry_after = _retry_after(response.headers.get("Retry-After"))
                wait = (
                    min(backoff, self.settings.max_retry_after_seconds)
                    if retry_after is None
                    else retry_after
                )
                # A Retry-After is honoured, never shortened: what cannot wait for it fails now (and
                # the verifier's breaker keeps other requests off the registry until then).
                patient = retry_after is None or retry_after <= self.settings.max_retry_after_seconds
                if attempt < self.settings.max_retries and patient and _may_wait(wait, budget):
                    attempt += 1
                    self._sleep(wait)
                    if retry_after is None:
                        backoff *= 2
                    continue
                after = f", retry after {retry_after:g} s" if retry_after is not None else ""
                if retry_after is not None and not patient:
                    after += f" (longer than the {self.settings.max_retry_after_seconds:g} s trustgate waits)"
                elif budget is not None and attempt < self.settings.max_retries:
                    after += f" (beyond the {budget.seconds:g} s deadline for {budget.what})"
                raise RegistryError(
                    "rate-limited",
                    f"{what} of {reference}: rate limited (HTTP 429) after {attempt + 1} attempts{after}",
                    registry=registry,
                    reference=reference,
                    retry_after=retry_after,
                    hint="authenticate to get a higher limit, or retry later",
                )
            if status in _RETRY_STATUSES or status >= 500:
                if (
                    status in _RETRY_STATUSES
                    and attempt < self.settings.max_retries
                    and _may_wait(backoff, budget)
                ):
                    attempt += 1
                    self._sleep(backoff)
                    backoff *= 2
                    continue
                raise RegistryError(
                    "server-error",
                    f"{what} of {reference}: the registry failed with HTTP {status} after "
                    f"{attempt + 1} attempts{_error_detail(response)}",
                    registry=registry,
                    reference=reference,
                    hint="a registry problem; retry later or ask its operators",
                )
            return response

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        max_bytes: int,
        ref: Reference,
        what: str,
    ) -> _Response:
        origin = urlsplit(url)
        budget = _deadline.current()
        wait = self.settings.timeout_seconds
        late = f"no answer within {wait:g} s"
        if budget is not None and budget.remaining() < wait:
            wait = max(0.001, budget.remaining())
            late = f"no answer before the {budget.seconds:g} s deadline for {budget.what} ran out"
        hops = self.settings.max_redirects
        for _ in range(hops + 1):
            exchange = Exchange(method, url, headers, content, wait)
            try:
                with self._transport.fetch(exchange) as response:
                    if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        target = urljoin(url, response.headers["Location"])
                        self._check_redirect(target, ref, what)
                        if urlsplit(target).netloc != origin.netloc:
                            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                        if response.status == 303:
                            method, content = "GET", None
                        url = target
                        continue
                    limit = max_bytes if response.status < 300 else self.settings.error_body_bytes
                    body = (
                        b""
                        if method == "HEAD"
                        else read_bounded(response, limit, settings=self.settings, ref=ref, what=what)
                    )
                    return _Response(response.status, response.headers, body, url)
            except TransportTimeout as e:
                raise Transient("timeout", late, via=e.via) from e
            except TransportFailure as e:
                if e.tls:
                    host = urlsplit(url).netloc
                    raise RegistryError(
                        "tls",
                        f"{what} of {ref}: TLS with {host}{e.via} failed ({root_cause(e)})",
                        registry=ref.registry,
                        reference=str(ref),
                        hint=f"if {host} uses a private CA, set ca_file; if it serves plain HTTP on "
                        "purpose, list it under insecure registries (plain HTTP is refused otherwise)",
                    ) from e
                raise Transient("connection", f"connection failed ({root_cause(e)})", via=e.via) from e
        raise RegistryError(
            "connection",
            f"{what} of {ref}: more than {hops} redirects",
            registry=ref.registry,
            reference=str(ref),
        )

    def _check_redirect(self, target: str, ref: Reference, what: str) -> None:
        parts = urlsplit(target)
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and plain_registry(parts.netloc) in self._insecure:
            return
        raise RegistryError(
            "tls",
            f"{what} of {ref}: the registry redirected to {parts.scheme}://{parts.netloc}, "
            "and plain HTTP is refused for hosts not listed as insecure",
            registry=ref.registry,
            reference=str(ref),
            hint=f"list {parts.netloc} under insecure registries if that is intended",
        )


def _may_wait(seconds: float, budget: _deadline.Deadline | None) -> bool:
    """Whether a wait of `seconds` still leaves time for the request after it."""
    return budget is None or seconds < budget.remaining()


def _content_type(response: _Response) -> str:
    return str(response.headers.get("Content-Type", "")).split(";", 1)[0].strip().lower()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        if 'rel="next"' in part.replace(" ", "") and "<" in part and ">" in part:
            return part[part.index("<") + 1 : part.index(">")]
    return None


def _error_detail(response: _Response) -> str:
    """ ": CODE: message" from a registry's error document, or "" when there is none."""
    try:
        data = untrusted_json.loads(response.body)
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code, message = errors[0].get("code", ""), errors[0].get("message", "")
            if isinstance(code, str) and isinstance(message, str):  # anything else is not quoted
                return f" ({code}: {message})" if code else f" ({message})"
    except ValueError:  # malformed, not UTF-8, or nested past what the parser follows
        pass
    return ""
