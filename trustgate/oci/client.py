"""The registry client: resolve, fetch manifests and blobs, referrers, push.

Owns: the `Registry` protocol the rest of trustgate codes against, and
`RegistryClient`, its implementation on one shared `httpx.Client` (connection
pool, thread-safe): Accept headers for OCI and Docker manifests and indexes,
digest checks on every byte fetched, size limits enforced while streaming,
timeouts, retries (429 per Retry-After, 5xx and dropped connections a bounded
number of times), anonymous/basic/bearer auth with Docker credentials, HTTPS
with an extra CA and plain HTTP only for registries listed as insecure, the
OCI 1.1 referrers API with the referrers-tag fallback. Leaves out: what
signatures mean (trustgate.verify) and which artifacts are signatures
(discovery.py).

Every failure is a `RegistryError` whose message names the registry and the
reference; `manifest()` returns None for a 404 because "absent" is an answer
there (a cosign tag that does not exist), not a failure.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import urlencode, urljoin, urlsplit

import certifi
import httpx

from trustgate.oci import deadline as _deadline
from trustgate.oci import mediatypes as mt
from trustgate.oci.auth import (
    Challenge,
    Credentials,
    DockerConfig,
    TokenCache,
    default_docker_config,
    parse_challenges,
)
from trustgate.oci.errors import InvalidReference, RegistryError
from trustgate.oci.reference import Reference, validate_digest

__all__ = [
    "Descriptor",
    "InvalidReference",
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
]

MAX_PLATFORMS: Final = 128  # image manifests under one index; real multi-arch images list a dozen
_ERROR_BODY_BYTES: Final = 64 * 1024  # bytes; enough for any registry error document
_MAX_REDIRECTS: Final = 5  # hops; registries redirect blobs to storage once
_RETRY_STATUSES: Final = frozenset({500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """How the client talks to registries; every limit with its unit."""

    ca_file: Path | None = None  # PEM CA bundle trusted in addition to the public roots
    insecure: tuple[str, ...] = ()  # host[:port] allowed over plain HTTP (and only these)
    docker_config: Path | None = None  # None: $DOCKER_CONFIG/config.json or ~/.docker/config.json
    timeout_seconds: float = 10.0  # seconds per connect / read / write
    transfer_deadline_seconds: float = 120.0  # seconds for one whole response; stops trickling servers
    min_transfer_bytes_per_second: float = 1024.0  # below this a body is abandoned (after the grace below)
    slow_transfer_grace_seconds: float = 2.0  # seconds a body may start slowly before its rate is judged
    max_manifest_bytes: int = 4 * 1024 * 1024  # bytes; the distribution spec's manifest limit
    max_blob_bytes: int = 16 * 1024 * 1024  # bytes; signature layers are a few KiB, SBOMs a few MiB
    max_retries: int = 3  # extra attempts after a 429, a 5xx or a dropped connection
    max_retry_after_seconds: float = 30.0  # seconds; a longer Retry-After fails now, to be retried later
    retry_backoff_seconds: float = 0.5  # seconds before the first retry without Retry-After; doubles
    max_index_depth: int = 4  # nested indexes followed; deeper is reported as a loop
    max_referrer_pages: int = 16  # pages of the referrers API followed through Link headers
    credential_helper_timeout_seconds: float = 10.0  # seconds for `docker-credential-<name> get`
    user_agent: str = "trustgate/0.1"


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor (a manifest's layer, an index entry, a referrer)."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Any) -> Descriptor:
        """Read a descriptor object.

        Raises:
            ValueError: a field is missing or has the wrong type (the message says which).
        """
        if not isinstance(data, dict):
            raise ValueError("a descriptor is not a JSON object")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise ValueError("a descriptor has no mediaType")
        if not isinstance(digest, str):
            raise ValueError("a descriptor has no digest")
        try:
            validate_digest(digest)
        except InvalidReference as e:
            raise ValueError(f"a descriptor's digest is invalid: {e.message}") from e
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"descriptor {digest} has no valid size")
        artifact_type = data.get("artifactType")
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise ValueError(f"descriptor {digest} has annotations that are not strings")
        platform = data.get("platform")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            artifact_type=artifact_type if isinstance(artifact_type, str) else None,
            annotations=dict(annotations),
            platform=platform if isinstance(platform, dict) else None,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            data["artifactType"] = self.artifact_type
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        if self.platform:
            data["platform"] = dict(self.platform)
        return data


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest or index exactly as fetched: `raw` hashes to `digest`."""

    digest: str
    media_type: str
    raw: bytes
    json: Mapping[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    @property
    def artifact_type(self) -> str | None:
        """`artifactType`, else the config media type (OCI 1.1's rule for artifacts)."""
        value = self.json.get("artifactType")
        if isinstance(value, str) and value:
            return value
        config = self.json.get("config")
        if isinstance(config, dict) and isinstance(config.get("mediaType"), str):
            return str(config["mediaType"])
        return None

    def descriptors(self, key: str) -> list[Descriptor]:
        """The descriptors under `key` ("layers" or "manifests").

        Raises:
            ValueError: one of them is malformed.
        """
        return [Descriptor.from_json(item) for item in self.json.get(key) or []]

    @property
    def annotations(self) -> Mapping[str, str]:
        value = self.json.get("annotations")
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class PlatformManifest:
    """One image manifest of an index: `platform` as "os/arch[/variant]"."""

    platform: str
    digest: str
    media_type: str


@dataclass(frozen=True, slots=True)
class Resolved:
    """A reference resolved to a digest; `platforms` is empty unless it resolved to an index."""

    reference: Reference
    digest: str
    media_type: str
    manifest: Manifest
    platforms: tuple[PlatformManifest, ...] = ()


@runtime_checkable
class Registry(Protocol):
    """What trustgate asks of a registry. Implementations are thread-safe; one is shared by all threads."""

    def resolve(self, ref: Reference) -> Resolved: ...

    def manifest(self, ref: Reference, tag_or_digest: str) -> Manifest | None: ...

    def blob(self, ref: Reference, digest: str, *, max_bytes: int | None = None) -> bytes: ...

    def referrers(self, ref: Reference, digest: str) -> tuple[list[Descriptor], str]: ...

    def push_blob(self, ref: Reference, data: bytes) -> str: ...

    def push_manifest(self, ref: Reference, data: bytes, media_type: str, tag: str | None = None) -> str: ...


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """`<algorithm>:<hex>` of `data` (sha256 or sha512)."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def platform_name(platform: Mapping[str, Any] | None) -> str:
    """ "os/arch[/variant]" of an index entry's platform, "unknown" when it has none."""
    if not platform:
        return "unknown"
    parts = [str(platform.get("os") or "unknown"), str(platform.get("architecture") or "unknown")]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def flatten_index(
    index: Manifest,
    fetch: Callable[[str], Manifest],
    *,
    max_depth: int,
    registry: str,
    reference: str,
) -> tuple[PlatformManifest, ...]:
    """The image manifests of `index`, following nested indexes up to `max_depth` levels.

    Entries that are neither manifests nor indexes (artifacts in an index) are skipped.

    Raises:
        RegistryError: ("loop") an index refers to one of its ancestors or nests deeper than
            `max_depth`; ("invalid-manifest") an entry is malformed; anything `fetch` raises.
    """
    found: list[PlatformManifest] = []
    seen: set[str] = set()  # each index is read once and each manifest listed once, however often named

    def walk(current: Manifest, ancestors: tuple[str, ...]) -> None:
        try:
            entries = current.descriptors("manifests")
        except ValueError as e:
            raise RegistryError(
                "invalid-manifest",
                f"{registry}: index {current.digest} of {reference} has a malformed entry: {e}",
                registry=registry,
                reference=reference,
            ) from e
        for entry in entries:
            if entry.media_type in mt.INDEXES:
                if entry.digest in ancestors:
                    chain = " -> ".join((*ancestors, entry.digest))
                    raise RegistryError(
                        "loop",
                        f"{registry}: index {current.digest} of {reference} refers back to {entry.digest} "
                        f"(a loop: {chain})",
                        registry=registry,
                        reference=reference,
                    )
                if len(ancestors) >= max_depth:
                    raise RegistryError(
                        "loop",
                        f"{registry}: indexes of {reference} nest deeper than {max_depth} levels "
                        f"(at {entry.digest}); a loop or a malformed image",
                        registry=registry,
                        reference=reference,
                    )
                if entry.digest in seen:
                    continue
                seen.add(entry.digest)
                child = fetch(entry.digest)
                if not child.is_index:
                    raise RegistryError(
                        "bad-media-type",
                        f"{registry}: index {current.digest} of {reference} lists {entry.digest} as "
                        f"{entry.media_type}, but the registry served {child.media_type}",
                        registry=registry,
                        reference=reference,
                    )
                walk(child, (*ancestors, entry.digest))
            elif entry.media_type in mt.IMAGE_MANIFESTS and entry.digest not in seen:
                seen.add(entry.digest)
                if len(found) >= MAX_PLATFORMS:
                    raise RegistryError(
                        "invalid-manifest",
                        f"{registry}: the index of {reference} lists more than {MAX_PLATFORMS} image "
                        "manifests; not a normal multi-platform image",
                        registry=registry,
                        reference=reference,
                    )
                found.append(PlatformManifest(platform_name(entry.platform), entry.digest, entry.media_type))

    walk(index, (index.digest,))
    return tuple(found)


@dataclass(slots=True)
class _Response:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str


class RegistryClient:
    """`Registry` over HTTPS with httpx; one instance is shared by every thread.

    Args:
        settings: limits, TLS and credentials; the defaults suit public registries.
        sleep: how to wait between retries (tests pass a recorder).
    """

    def __init__(
        self, settings: RegistrySettings | None = None, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.settings = settings or RegistrySettings()
        self._sleep = sleep
        self._insecure = frozenset(host.lower() for host in self.settings.insecure)
        context = ssl.create_default_context(cafile=certifi.where())
        if self.settings.ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(self.settings.ca_file))
            except (OSError, ssl.SSLError) as e:
                raise RegistryError(
                    "tls",
                    f"cannot load the registry CA file {self.settings.ca_file}: {e}",
                    registry="(all registries)",
                    hint="point ca_file at a PEM file of CA certificates",
                ) from e
        self._http = httpx.Client(
            verify=context,
            timeout=httpx.Timeout(self.settings.timeout_seconds),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            follow_redirects=False,
            headers={"User-Agent": self.settings.user_agent},
        )
        self._docker_config = DockerConfig(
            self.settings.docker_config or default_docker_config(),
            helper_timeout_seconds=self.settings.credential_helper_timeout_seconds,
        )
        self._tokens = TokenCache()
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}  # the auth scheme each registry asked for last
        self._no_referrers_api: set[str] = set()  # registries whose referrers route does not exist
        self._credentials: dict[str, Credentials | None] = {}
        # httpx uses the environment's proxies (HTTPS_PROXY, ALL_PROXY, NO_PROXY); errors name them.
        self._env_proxies = urllib.request.getproxies()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the Registry protocol -------------------------------------------------------------------

    def resolve(self, ref: Reference) -> Resolved:
        """Resolve `ref` (tag or digest) to the digest of what the registry serves.

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
        platforms: tuple[PlatformManifest, ...] = ()
        if found.is_index:
            platforms = flatten_index(
                found,
                lambda digest: self._require_manifest(ref, digest),
                max_depth=self.settings.max_index_depth,
                registry=ref.registry,
                reference=str(ref),
            )
        return Resolved(
            reference=ref.with_digest(found.digest),
            digest=found.digest,
            media_type=found.media_type,
            manifest=found,
            platforms=platforms,
        )

    def manifest(self, ref: Reference, tag_or_digest: str) -> Manifest | None:
        """The manifest or index at `tag_or_digest` in `ref`'s repository; None when it does not exist.

        Raises:
            RegistryError: "digest-mismatch" when the bytes do not hash to the digest asked for or
                announced in Docker-Content-Digest; "bad-media-type" for anything but an OCI/Docker
                manifest or index; "invalid-manifest" for bytes that are not such a document;
                "too-large" above max_manifest_bytes; and the transport kinds.
        """
        return self._fetch_manifest(ref, tag_or_digest)

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

    def _fetch_manifest(self, ref: Reference, target: str) -> Manifest | None:
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
            max_bytes=self.settings.max_manifest_bytes,
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
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
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
        except InvalidReference as e:
            raise RegistryError(
                "invalid-manifest",
                f"{where}: {e.message}",
                registry=ref.registry,
                reference=where,
            ) from e

    def _base_url(self, ref: Reference) -> str:
        host = ref.api_host
        scheme = "http" if host.lower() in self._insecure or ref.registry in self._insecure else "https"
        return f"{scheme}://{host}"

    def _expect(self, response: _Response, statuses: tuple[int, ...], ref: Reference, what: str) -> None:
        if response.status in statuses:
            return
        detail = _error_detail(response)
        kind = "not-found" if response.status == 404 else "invalid-manifest"
        if response.status == 413:
            kind = "too-large"
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
        max_bytes: int = _ERROR_BODY_BYTES,
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
            authorization = self._authorization(ref, scope)
            request_headers = dict(headers or {})
            if authorization:
                request_headers["Authorization"] = authorization
            try:
                response = self._send(method, url, request_headers, content, max_bytes, ref, what)
            except _Transient as e:
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
                via = self._proxy_note(url)
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
                usable = _pick_challenge(parse_challenges(response.headers.get("WWW-Authenticate", "")))
                if usable is not None and auth_rounds < 2:
                    auth_rounds += 1
                    if authorization and authorization.startswith("Bearer "):
                        self._tokens.forget(registry, scope, authorization[len("Bearer ") :])
                    with self._lock:
                        self._challenges[registry] = usable
                    # Again only when there is something new to send (a fresh token, first credentials).
                    renewed = self._authorization(ref, scope)
                    if renewed is not None and renewed != authorization:
                        continue
                creds = self._creds(registry)
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
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                with self._http.stream(
                    method, url, headers=headers, content=content, timeout=httpx.Timeout(wait)
                ) as response:
                    if response.status_code in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        target = urljoin(url, response.headers["Location"])
                        self._check_redirect(target, ref, what)
                        if urlsplit(target).netloc != origin.netloc:
                            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                        if response.status_code == 303:
                            method, content = "GET", None
                        url = target
                        continue
                    limit = max_bytes if response.status_code < 300 else _ERROR_BODY_BYTES
                    body = b"" if method == "HEAD" else self._read_bounded(response, limit, ref, what)
                    return _Response(response.status_code, response.headers, body, url)
            except httpx.TimeoutException as e:
                raise _Transient("timeout", late) from e
            except httpx.TransportError as e:
                if _is_tls_error(e):
                    host = urlsplit(url).netloc
                    raise RegistryError(
                        "tls",
                        f"{what} of {ref}: TLS with {host}{self._proxy_note(url)} failed ({_root_cause(e)})",
                        registry=ref.registry,
                        reference=str(ref),
                        hint=f"if {host} uses a private CA, set ca_file; if it serves plain HTTP on "
                        "purpose, list it under insecure registries (plain HTTP is refused otherwise)",
                    ) from e
                raise _Transient("connection", f"connection failed ({_root_cause(e)})") from e
        raise RegistryError(
            "connection",
            f"{what} of {ref}: more than {_MAX_REDIRECTS} redirects",
            registry=ref.registry,
            reference=str(ref),
        )

    def _check_redirect(self, target: str, ref: Reference, what: str) -> None:
        parts = urlsplit(target)
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and parts.netloc.lower() in self._insecure:
            return
        raise RegistryError(
            "tls",
            f"{what} of {ref}: the registry redirected to {parts.scheme}://{parts.netloc}, "
            "and plain HTTP is refused for hosts not listed as insecure",
            registry=ref.registry,
            reference=str(ref),
            hint=f"list {parts.netloc} under insecure registries if that is intended",
        )

    def _read_bounded(self, response: httpx.Response, limit: int, ref: Reference, what: str) -> bytes:
        def too_large(size: str) -> RegistryError:
            return RegistryError(
                "too-large",
                f"{what} of {ref} is {size}, above the limit of {limit} bytes",
                registry=ref.registry,
                reference=str(ref),
                hint="a manifest or signature this large is a mistake or an attack; raise the limit only "
                "if the image is known to be fine",
            )

        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            if response.status_code >= 300:
                return b""
            raise too_large(f"{int(declared)} bytes (Content-Length)")
        started = time.monotonic()
        deadline = started + self.settings.transfer_deadline_seconds
        budget = _deadline.current()
        rate = self.settings.min_transfer_bytes_per_second
        grace = self.settings.slow_transfer_grace_seconds
        chunks: list[bytes] = []
        size = 0
        for chunk in _iter_raw(response):
            size += len(chunk)
            if size > limit:
                if response.status_code >= 300:
                    break
                raise too_large("larger")
            chunks.append(chunk)
            # On every read: the transfer's own bound, the verification's deadline, the minimum rate.
            now = time.monotonic()
            if now > deadline:
                raise _Transient(
                    "timeout", f"the response took longer than {self.settings.transfer_deadline_seconds:g} s"
                )
            if budget is not None and now > budget.at:
                raise _Transient(
                    "timeout",
                    f"the response was still arriving when the {budget.seconds:g} s deadline for "
                    f"{budget.what} ran out ({size} bytes so far)",
                )
            elapsed = now - started
            if elapsed > grace and size / elapsed < rate:
                raise _Transient(
                    "timeout",
                    f"the response arrived at {size / elapsed:.0f} bytes/s, below the minimum of "
                    f"{rate:g} bytes/s ({size} bytes in {elapsed:.1f} s)",
                )
        return b"".join(chunks)

    def _budgeted(self) -> httpx.Timeout:
        budget = _deadline.current()
        wait = self.settings.timeout_seconds
        if budget is not None:
            wait = max(0.001, min(wait, budget.remaining()))
        return httpx.Timeout(wait)

    def _proxy_note(self, url: str) -> str:
        """ " via proxy <url> (from <VARIABLE>)" when httpx sends `url` through an environment proxy."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        proxies = self._env_proxies
        if not proxies or urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]  # undocumented but stable since Python 3.0
            return ""
        for key in (parts.scheme, "all"):
            if proxies.get(key):
                return f" via proxy {proxies[key]} (from {key.upper()}_PROXY in the environment)"
        return ""

    # --- auth -------------------------------------------------------------------------------------

    def _creds(self, registry: str) -> Credentials | None:
        with self._lock:
            if registry in self._credentials:
                return self._credentials[registry]
        found = self._docker_config.credentials(registry)
        with self._lock:
            self._credentials[registry] = found
        return found

    def _authorization(self, ref: Reference, scope: str) -> str | None:
        """The Authorization header for a request, once the registry has told us its scheme."""
        with self._lock:
            challenge = self._challenges.get(ref.registry)
        if challenge is None:
            return None
        creds = self._creds(ref.registry)
        if challenge.scheme == "basic":
            return creds.basic_header() if creds else None
        wanted = scope
        token = self._tokens.get_or_fetch(
            ref.registry, wanted, lambda: self._fetch_token(ref, challenge, wanted, creds)
        )
        return f"Bearer {token}"

    def _fetch_token(
        self, ref: Reference, challenge: Challenge, scope: str, creds: Credentials | None
    ) -> tuple[str, float | None]:
        registry = ref.registry
        realm = challenge.realm or ""
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(
                "unauthorized",
                f"{registry}: the registry asks for a bearer token from realm {realm!r}, which is not a URL",
                registry=registry,
                reference=str(ref),
            )
        if parts.scheme == "http" and parts.netloc.lower() not in self._insecure:
            raise RegistryError(
                "tls",
                f"{registry}: the token server {realm} is plain HTTP; refusing to send credentials or "
                "trust tokens over it",
                registry=registry,
                reference=str(ref),
                hint=f"list {parts.netloc} under insecure registries if that is intended",
            )
        params = {"scope": scope}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        what = f"token from {realm}"
        try:
            # Streamed and bounded like every other response: the realm is the registry's to name.
            if creds is not None and creds.identity_token:
                form = {**params, "grant_type": "refresh_token", "refresh_token": creds.identity_token}
                form["client_id"] = "trustgate"
                request = self._http.build_request("POST", realm, data=form, timeout=self._budgeted())
            else:
                headers = {}
                basic = creds.basic_header() if creds else None
                if basic:
                    headers["Authorization"] = basic
                separator = "&" if "?" in realm else "?"
                request = self._http.build_request(
                    "GET", realm + separator + urlencode(params), headers=headers, timeout=self._budgeted()
                )
            response = self._http.send(request, stream=True)
            try:
                body = self._read_bounded(response, _ERROR_BODY_BYTES, ref, f"the {what}")
            finally:
                response.close()
        except _Transient as e:
            raise RegistryError(
                "timeout", f"{registry}: {what}: {e.reason}", registry=registry, reference=str(ref)
            ) from e
        except httpx.TimeoutException as e:
            raise RegistryError(
                "timeout",
                f"{registry}: {what}: no answer within {self.settings.timeout_seconds:g} s",
                registry=registry,
                reference=str(ref),
            ) from e
        except httpx.TransportError as e:
            kind = "tls" if _is_tls_error(e) else "connection"
            raise RegistryError(
                kind, f"{registry}: {what}: {_root_cause(e)}", registry=registry, reference=str(ref)
            ) from e
        if response.status_code in (401, 403):
            source = f"credentials from {creds.source}" if creds else "no credentials (anonymous)"
            raise RegistryError(
                "unauthorized" if response.status_code == 401 else "forbidden",
                f"{registry}: the token server {realm} refused {source} for {scope} "
                f"(HTTP {response.status_code})",
                registry=registry,
                reference=str(ref),
                hint=f"log in to {registry} (docker login) or fix the credentials",
            )
        if response.status_code != 200:
            raise RegistryError(
                "server-error",
                f"{registry}: the token server {realm} answered HTTP {response.status_code}",
                registry=registry,
                reference=str(ref),
            )
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
            expires_in = data.get("expires_in")
        except (ValueError, AttributeError) as e:
            raise RegistryError(
                "unauthorized",
                f"{registry}: the token server {realm} answered something that is not token JSON",
                registry=registry,
                reference=str(ref),
            ) from e
        if not isinstance(token, str) or not token:
            raise RegistryError(
                "unauthorized",
                f"{registry}: the token server {realm} answered without a token",
                registry=registry,
                reference=str(ref),
            )
        return token, float(expires_in) if isinstance(expires_in, int | float) else None


def _may_wait(seconds: float, budget: _deadline.Deadline | None) -> bool:
    """Whether a wait of `seconds` still leaves time for the request after it."""
    return budget is None or seconds < budget.remaining()


class _Transient(Exception):
    """A failure worth retrying (timeout, dropped connection); a RegistryError once retries run out."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _iter_raw(response: httpx.Response) -> Iterator[bytes]:
    # as the bytes arrive (a chunk size would buffer them and hide a trickling server from the deadline);
    # Content-Encoding is decoded, and the limit applies to the decoded bytes
    yield from response.iter_bytes()


def _pick_challenge(challenges: list[Challenge]) -> Challenge | None:
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


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
        data = json.loads(response.body)
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code, message = errors[0].get("code", ""), errors[0].get("message", "")
            return f" ({code}: {message})" if code else f" ({message})"
    except (ValueError, UnicodeDecodeError):
        pass
    return ""


def _is_tls_error(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        text = str(seen)
        if "SSL" in text or "CERTIFICATE" in text.upper() or "WRONG_VERSION_NUMBER" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _root_cause(error: BaseException) -> str:
    seen: BaseException = error
    while (seen.__cause__ or seen.__context__) is not None:
        nxt = seen.__cause__ or seen.__context__
        assert nxt is not None
        seen = nxt
    return str(seen) or type(seen).__name__
