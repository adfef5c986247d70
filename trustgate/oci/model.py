"""The OCI model: what a registry serves, as trustgate reads it, and the `Registry` protocol.

Owns: descriptors, manifests and indexes exactly as fetched (`raw` hashes to
`digest`), an index's platform manifests (`flatten_index`, following nested
indexes, bounded), and `Registry`, the operations the rest of trustgate codes
against. Leaves out: how they are fetched (`trustgate.oci.client`, over the
transport seam in `trustgate.oci.transport`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from trustgate.oci import mediatypes as mt
from trustgate.oci.errors import InvalidReferenceError, RegistryError
from trustgate.oci.reference import Reference, validate_digest

__all__ = [
    "MAX_PLATFORMS",
    "Descriptor",
    "Manifest",
    "PlatformManifest",
    "Registry",
    "Resolved",
    "compute_digest",
    "flatten_index",
    "platform_name",
]

MAX_PLATFORMS: Final = 128  # default of RegistrySettings.max_platforms


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
        except InvalidReferenceError as e:
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

    def resolve(self, ref: Reference, *, platforms: bool = True) -> Resolved: ...

    def manifest(
        self, ref: Reference, tag_or_digest: str, *, max_bytes: int | None = None
    ) -> Manifest | None: ...

    def blob(self, ref: Reference, digest: str, *, max_bytes: int | None = None) -> bytes: ...

    def referrers(self, ref: Reference, digest: str) -> tuple[list[Descriptor], str]: ...

    def push_blob(self, ref: Reference, data: bytes) -> str: ...

    def push_manifest(self, ref: Reference, data: bytes, media_type: str, tag: str | None = None) -> str: ...

    def close(self) -> None:
        """Close the connections; the registry is not used afterwards."""


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """`<algorithm>:<hex>` of `data` (sha256 or sha512)."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def platform_name(platform: Mapping[str, Any] | None) -> str:
    """ "os/arch[/variant]" of an index entry's platform, "unknown" when it has none.

    Fields that are not text are unknown: whoever pushed the index chose them, and printing any
    value (one nested too deep to print) could fail.
    """
    if not platform:
        return "unknown"

    def text(key: str) -> str:
        value = platform.get(key)
        return value if isinstance(value, str) else ""

    parts = [text("os") or "unknown", text("architecture") or "unknown"]
    if text("variant"):
        parts.append(text("variant"))
    return "/".join(parts)


_BUILDKIT_REFERENCE_TYPE: Final = "vnd.docker.reference.type"


def _is_buildkit_attestation(entry: Descriptor) -> bool:
    """An attestation manifest BuildKit (`docker buildx build`, provenance on by default) puts in
    the index it pushes: annotated `vnd.docker.reference.type: attestation-manifest`, with the
    platform `unknown/unknown` "to prevent container runtimes from accidentally pulling or running
    the image" (moby/buildkit docs/attestations/attestation-storage.md). Not a platform: found in
    review, each was asked for the rule's attestations, and every buildx image failed.

    Both, never the annotation alone: whoever pushes writes it, and a runtime picks a manifest by
    its platform (containerd's platform matcher; an entry without one matches any), so a runnable
    platform annotated so must still be judged.
    """
    platform = entry.platform
    return (
        entry.annotations.get(_BUILDKIT_REFERENCE_TYPE) == "attestation-manifest"
        and platform is not None
        and platform.get("os") == "unknown"
        and platform.get("architecture") == "unknown"
    )


def flatten_index(
    index: Manifest,
    fetch: Callable[[str], Manifest],
    *,
    max_depth: int,
    registry: str,
    reference: str,
    max_platforms: int = MAX_PLATFORMS,
) -> tuple[PlatformManifest, ...]:
    """The image manifests of `index`, following nested indexes up to `max_depth` levels.

    Entries that are neither manifests nor indexes (artifacts in an index) are skipped, and so are
    BuildKit's attestation manifests (`_is_buildkit_attestation`): no runtime runs them.

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
            elif _is_buildkit_attestation(entry):
                continue
            elif entry.media_type in mt.IMAGE_MANIFESTS and entry.digest not in seen:
                seen.add(entry.digest)
                if len(found) >= max_platforms:
                    raise RegistryError(
                        "invalid-manifest",
                        f"{registry}: the index of {reference} lists more than {max_platforms} image "
                        "manifests; not a normal multi-platform image",
                        registry=registry,
                        reference=reference,
                    )
                found.append(PlatformManifest(platform_name(entry.platform), entry.digest, entry.media_type))

    walk(index, (index.digest,))
    return tuple(found)
