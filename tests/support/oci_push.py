"""Push small test images and attach signature material, as cosign and oras clients do.

Images are one config and one layer; indexes have one image per platform. Signature material is
attached in both forms a registry can hold it:

- the cosign tag scheme: `sha256-<hex>.sig` (an OCI manifest whose simple-signing layers carry
  `dev.cosignproject.cosign/signature`, `dev.sigstore.cosign/certificate`, `/chain`, `/bundle`)
  and `sha256-<hex>.att` (DSSE layers with a `predicateType` annotation);
- referrers: an OCI manifest with `subject` and `artifactType`
  `application/vnd.dev.sigstore.bundle.v0.3+json` whose layer is the bundle, and the
  `sha256-<hex>` referrers-tag index kept up to date for registries without the referrers API.

Payloads and signatures are opaque bytes here: callers bring them (from fixtures/ or made up).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trustgate.oci import mediatypes as mt
from trustgate.oci.client import Registry, compute_digest
from trustgate.oci.reference import Reference

EMPTY_CONFIG = b"{}"


def _ref(ref: Reference | str) -> Reference:
    return ref if isinstance(ref, Reference) else Reference.parse(ref)


def _canonical(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=False).encode()


@dataclass(frozen=True)
class Pushed:
    """A manifest or index in the registry."""

    ref: Reference  # pinned to the digest
    digest: str
    media_type: str
    raw: bytes
    platform: tuple[str, str] | None = None
    children: tuple[Pushed, ...] = ()

    @property
    def size(self) -> int:
        return len(self.raw)

    def descriptor(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            data["platform"] = {"os": self.platform[0], "architecture": self.platform[1]}
        return data


def push_blob_descriptor(
    registry: Registry, ref: Reference, data: bytes, media_type: str, **extra: Any
) -> dict[str, Any]:
    digest = registry.push_blob(ref, data)
    return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}


def push_image(
    registry: Registry,
    ref: Reference | str,
    *,
    tag: str | None = None,
    content: bytes | None = None,
    platform: tuple[str, str] = ("linux", "amd64"),
    docker: bool = False,
) -> Pushed:
    """Push config + one layer + manifest (OCI, or Docker v2 with `docker=True`) under `tag`."""
    ref = _ref(ref)
    tag = tag if tag is not None else ref.tag
    layer = content if content is not None else f"layer of {ref.repository} for {platform}".encode()
    config = _canonical(
        {
            "architecture": platform[1],
            "os": platform[0],
            "rootfs": {"type": "layers", "diff_ids": [compute_digest(layer)]},
            "config": {},
        }
    )
    config_type = mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG
    layer_type = mt.DOCKER_LAYER if docker else mt.OCI_LAYER
    media_type = mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST
    manifest = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": push_blob_descriptor(registry, ref, config, config_type),
            "layers": [push_blob_descriptor(registry, ref, layer, layer_type)],
        }
    )
    digest = registry.push_manifest(ref, manifest, media_type, tag)
    return Pushed(ref.with_digest(digest), digest, media_type, manifest, platform=platform)


def push_index(
    registry: Registry,
    ref: Reference | str,
    *,
    tag: str | None = None,
    platforms: Sequence[tuple[str, str]] = (("linux", "amd64"), ("linux", "arm64")),
    docker: bool = False,
) -> Pushed:
    """Push one image per platform and an index (OCI, or a Docker manifest list) over them."""
    ref = _ref(ref)
    tag = tag if tag is not None else ref.tag
    children = tuple(
        push_image(registry, ref, tag=None, platform=platform, docker=docker) for platform in platforms
    )
    media_type = mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX
    index = _canonical(
        {"schemaVersion": 2, "mediaType": media_type, "manifests": [c.descriptor() for c in children]}
    )
    digest = registry.push_manifest(ref, index, media_type, tag)
    return Pushed(ref.with_digest(digest), digest, media_type, index, children=children)


def simple_signing_payload(ref: Reference | str, digest: str) -> bytes:
    """A cosign "simple signing" payload claiming `digest` for `ref`'s repository."""
    ref = _ref(ref)
    return _canonical(
        {
            "critical": {
                "identity": {"docker-reference": ref.name},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )


@dataclass(frozen=True)
class CosignSignature:
    """One `.sig` layer: the payload and the annotations cosign writes beside it."""

    payload: bytes
    signature: str  # base64, as in dev.cosignproject.cosign/signature
    certificate: str | None = None  # PEM
    chain: str | None = None  # PEM
    bundle: str | None = None  # the Rekor bundle JSON
    extra_annotations: Mapping[str, str] = field(default_factory=dict)

    def annotations(self) -> dict[str, str]:
        notes = {mt.ANNOTATION_SIGNATURE: self.signature}
        if self.certificate is not None:
            notes[mt.ANNOTATION_CERTIFICATE] = self.certificate
        if self.chain is not None:
            notes[mt.ANNOTATION_CHAIN] = self.chain
        if self.bundle is not None:
            notes[mt.ANNOTATION_BUNDLE] = self.bundle
        return {**notes, **self.extra_annotations}


@dataclass(frozen=True)
class CosignAttestation:
    """One `.att` layer: a DSSE envelope and its predicate type."""

    envelope: bytes
    predicate_type: str
    certificate: str | None = None
    chain: str | None = None
    bundle: str | None = None

    def annotations(self) -> dict[str, str]:
        notes = {mt.ANNOTATION_PREDICATE_TYPE: self.predicate_type}
        if self.certificate is not None:
            notes[mt.ANNOTATION_CERTIFICATE] = self.certificate
        if self.chain is not None:
            notes[mt.ANNOTATION_CHAIN] = self.chain
        if self.bundle is not None:
            notes[mt.ANNOTATION_BUNDLE] = self.bundle
        return notes


def _cosign_manifest(
    registry: Registry, ref: Reference, layers: Sequence[tuple[bytes, str, dict[str, str]]]
) -> bytes:
    descriptors = [
        push_blob_descriptor(registry, ref, data, media_type, annotations=notes)
        for data, media_type, notes in layers
    ]
    config = _canonical(
        {
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
        }
    )
    return _canonical(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": push_blob_descriptor(registry, ref, config, mt.OCI_CONFIG),
            "layers": descriptors,
        }
    )


def _cosign_tag(digest: str, suffix: str) -> str:
    algorithm, hexpart = digest.split(":", 1)
    return f"{algorithm}-{hexpart}{suffix}"


def attach_cosign_signatures(
    registry: Registry, ref: Reference | str, digest: str, signatures: Sequence[CosignSignature]
) -> str:
    """Write the `sha256-<hex>.sig` manifest for `digest` (replacing it); returns its digest."""
    ref = _ref(ref)
    layers = [(s.payload, mt.COSIGN_SIMPLESIGNING, s.annotations()) for s in signatures]
    manifest = _cosign_manifest(registry, ref, layers)
    return registry.push_manifest(ref, manifest, mt.OCI_MANIFEST, _cosign_tag(digest, ".sig"))


def attach_cosign_attestations(
    registry: Registry, ref: Reference | str, digest: str, attestations: Sequence[CosignAttestation]
) -> str:
    """Write the `sha256-<hex>.att` manifest for `digest` (replacing it); returns its digest."""
    ref = _ref(ref)
    layers = [(a.envelope, mt.DSSE_ENVELOPE, a.annotations()) for a in attestations]
    manifest = _cosign_manifest(registry, ref, layers)
    return registry.push_manifest(ref, manifest, mt.OCI_MANIFEST, _cosign_tag(digest, ".att"))


def attach_referrer(
    registry: Registry,
    ref: Reference | str,
    subject: Pushed | Mapping[str, Any],
    payload: bytes,
    *,
    artifact_type: str = mt.SIGSTORE_BUNDLE,
    layer_media_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
    layer_annotations: Mapping[str, str] | None = None,
    update_referrers_tag: bool = True,
) -> str:
    """Attach `payload` to `subject` as an OCI 1.1 referrer; returns the referrer manifest digest.

    With `update_referrers_tag`, also adds it to the `sha256-<hex>` index (as clients do for
    registries without the referrers API).
    """
    ref = _ref(ref)
    subject_descriptor = subject.descriptor() if isinstance(subject, Pushed) else dict(subject)
    subject_descriptor.pop("platform", None)
    notes = dict(annotations or {})
    manifest_data: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": push_blob_descriptor(registry, ref, EMPTY_CONFIG, mt.OCI_EMPTY),
        "layers": [
            push_blob_descriptor(
                registry,
                ref,
                payload,
                layer_media_type or artifact_type,
                **({"annotations": dict(layer_annotations)} if layer_annotations else {}),
            )
        ],
        "subject": subject_descriptor,
    }
    if notes:
        manifest_data["annotations"] = notes
    manifest = _canonical(manifest_data)
    digest = registry.push_manifest(ref, manifest, mt.OCI_MANIFEST)
    if update_referrers_tag:
        entry: dict[str, Any] = {
            "mediaType": mt.OCI_MANIFEST,
            "digest": digest,
            "size": len(manifest),
            "artifactType": artifact_type,
        }
        if notes:
            entry["annotations"] = notes
        add_to_referrers_tag(registry, ref, subject_descriptor["digest"], entry)
    return digest


def add_to_referrers_tag(
    registry: Registry, ref: Reference | str, subject_digest: str, entry: Mapping[str, Any]
) -> str:
    """Add `entry` to the `sha256-<hex>` referrers-tag index of `subject_digest`; returns its digest."""
    ref = _ref(ref)
    tag = _cosign_tag(subject_digest, "")
    current = registry.manifest(ref, tag)
    entries: list[Any] = list(current.json.get("manifests", [])) if current is not None else []
    if all(e.get("digest") != entry["digest"] for e in entries):
        entries.append(dict(entry))
    index = _canonical({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
    return registry.push_manifest(ref, index, mt.OCI_INDEX, tag)
