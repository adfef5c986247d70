"""An in-memory `Registry` for unit tests of the verifier (a test double; the integration
tests use a real registry). It can be told to fail like an unreachable registry."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from trustgate.oci.client import Descriptor, Manifest, PlatformManifest, Resolved
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class MemoryRegistry:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.tags: dict[tuple[str, str], str] = {}
        self.fail: str | None = None  # a RegistryError kind every call raises
        self.calls = 0
        self.manifest_lookups: list[str] = []  # tags and digests asked for through manifest()

    def _check(self, ref: Reference) -> None:
        self.calls += 1
        if self.fail:
            raise RegistryError(self.fail, f"{self.fail} (test double)", registry=ref.registry)

    # -- the Registry protocol ---------------------------------------------------

    def resolve(self, ref: Reference) -> Resolved:
        self._check(ref)
        digest = ref.digest or self.tags.get((ref.name, ref.tag or "latest"))
        if digest is None or digest not in self.manifests:
            raise RegistryError("not-found", f"{ref} not found", registry=ref.registry)
        raw, media_type = self.manifests[digest]
        manifest = Manifest(digest, media_type, raw, json.loads(raw))
        platforms = ()
        if media_type == OCI_INDEX:
            platforms = tuple(
                PlatformManifest(
                    f"{m['platform']['os']}/{m['platform']['architecture']}", m["digest"], m["mediaType"]
                )
                for m in manifest.json["manifests"]
            )
        return Resolved(ref, digest, media_type, manifest, platforms)

    def manifest(self, ref: Reference, tag_or_digest: str) -> Manifest | None:
        self._check(ref)
        self.manifest_lookups.append(tag_or_digest)
        digest = (
            tag_or_digest if tag_or_digest.startswith("sha256:") else self.tags.get((ref.name, tag_or_digest))
        )
        if digest is None or digest not in self.manifests:
            return None
        raw, media_type = self.manifests[digest]
        return Manifest(digest, media_type, raw, json.loads(raw))

    def blob(self, ref: Reference, digest: str, *, max_bytes: int | None = None) -> bytes:
        self._check(ref)
        if digest not in self.blobs:
            raise RegistryError("not-found", f"blob {digest} not found", registry=ref.registry)
        return self.blobs[digest]

    def referrers(self, ref: Reference, digest: str) -> tuple[list[Descriptor], str]:
        self._check(ref)
        found = []
        for d, (raw, media_type) in self.manifests.items():
            body = json.loads(raw)
            if body.get("subject", {}).get("digest") == digest:
                found.append(Descriptor(media_type, d, len(raw), artifact_type=body.get("artifactType")))
        return found, "referrers-api"

    def push_blob(self, ref: Reference, data: bytes) -> str:
        digest = sha256(data)
        self.blobs[digest] = data
        return digest

    def push_manifest(self, ref: Reference, data: bytes, media_type: str, tag: str | None = None) -> str:
        digest = sha256(data)
        self.manifests[digest] = (data, media_type)
        if tag:
            self.tags[(ref.name, tag)] = digest
        return digest

    # -- building test content ----------------------------------------------------

    def push_json_manifest(self, ref: Reference, body: dict[str, Any], tag: str | None = None) -> str:
        return self.push_manifest(ref, json.dumps(body).encode(), body["mediaType"], tag)

    def image(self, ref: Reference, tag: str, *, content: bytes = b"layer") -> str:
        config = self.push_blob(ref, b"{}")
        layer = self.push_blob(ref, content)
        return self.push_json_manifest(
            ref,
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config,
                    "size": 2,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer,
                        "size": len(content),
                    }
                ],
            },
            tag,
        )

    def index(self, ref: Reference, tag: str, platforms: list[tuple[str, str]]) -> tuple[str, list[str]]:
        digests = [self.image(ref, f"{tag}-{arch}", content=arch.encode()) for _, arch in platforms]
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": d,
                    "size": len(self.manifests[d][0]),
                    "platform": {"os": os_, "architecture": arch},
                }
                for d, (os_, arch) in zip(digests, platforms, strict=True)
            ],
        }
        return self.push_json_manifest(ref, body, tag), digests

    def attach_cosign(
        self, ref: Reference, digest: str, suffix: str, layers: list[tuple[bytes, str, dict[str, str]]]
    ) -> None:
        """Append layers to the `sha256-<hex>.<suffix>` manifest, as cosign does."""
        tag = digest.replace(":", "-") + suffix
        existing = self.manifest(ref, tag)
        entries = list(existing.json["layers"]) if existing else []
        for payload, media_type, notes in layers:
            entries.append(
                {
                    "mediaType": media_type,
                    "digest": self.push_blob(ref, payload),
                    "size": len(payload),
                    "annotations": notes,
                }
            )
        config = self.push_blob(ref, b"{}")
        self.push_json_manifest(
            ref,
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config,
                    "size": 2,
                },
                "layers": entries,
            },
            tag,
        )

    def attach_referrer(self, ref: Reference, subject: str, layer: tuple[bytes, str, dict[str, str]]) -> str:
        """An OCI 1.1 referrer of `subject` holding one cosign layer (cosign's referrers mode)."""
        payload, media_type, notes = layer
        config = self.push_blob(ref, b"{}")
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
            "layers": [
                {
                    "mediaType": media_type,
                    "digest": self.push_blob(ref, payload),
                    "size": len(payload),
                    "annotations": notes,
                }
            ],
            "subject": {
                "mediaType": OCI_MANIFEST,
                "digest": subject,
                "size": len(self.manifests[subject][0]),
            },
        }
        return self.push_json_manifest(ref, body)


class CosignKey:
    """A cosign key pair signing simple-signing payloads and DSSE envelopes."""

    def __init__(self, kind: str = "ecdsa") -> None:
        self.private: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = (
            ed25519.Ed25519PrivateKey.generate()
            if kind == "ed25519"
            else ec.generate_private_key(ec.SECP256R1())
        )

    @property
    def pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _sign(self, data: bytes) -> str:
        if isinstance(self.private, ed25519.Ed25519PrivateKey):
            return base64.b64encode(self.private.sign(data)).decode()
        return base64.b64encode(self.private.sign(data, ec.ECDSA(hashes.SHA256()))).decode()

    def signature_layer(self, name: str, digest: str) -> tuple[bytes, str, dict[str, str]]:
        payload = json.dumps(
            {
                "critical": {
                    "identity": {"docker-reference": name},
                    "image": {"docker-manifest-digest": digest},
                    "type": "cosign container image signature",
                },
                "optional": None,
            }
        ).encode()
        return payload, SIMPLESIGNING, {"dev.cosignproject.cosign/signature": self._sign(payload)}

    def attestation_layer(
        self, name: str, digest: str, predicate_type: str, predicate: Any
    ) -> tuple[bytes, str, dict[str, str]]:
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
        payload = json.dumps(statement).encode()
        payload_type = "application/vnd.in-toto+json"
        pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)
        envelope = {
            "payloadType": payload_type,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": self._sign(pae)}],
        }
        return json.dumps(envelope).encode(), DSSE, {"predicateType": predicate_type}
