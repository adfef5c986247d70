"""An in-memory registry for unit tests of the verifier: the real `RegistryClient` over a
transport test double (tests/support/oci_memory.py; the integration tests use a real registry).
It can be told to fail like an unreachable registry, and counts the lookups it was asked for."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from support.oci_memory import MemoryTransport, sha256

from trustgate.oci.client import Descriptor, Manifest, RegistryClient, RegistrySettings, Resolved
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"

__all__ = ["DSSE", "OCI_INDEX", "OCI_MANIFEST", "SIMPLESIGNING", "CosignKey", "MemoryRegistry", "sha256"]


class MemoryRegistry(RegistryClient):
    def __init__(self) -> None:
        self.transport = MemoryTransport()
        super().__init__(
            RegistrySettings(docker_config=Path("/nonexistent/trustgate-test/config.json")),
            transport=self.transport,
        )
        self.blobs, self.manifests, self.tags = (
            self.transport.blobs,
            self.transport.manifests,
            self.transport.tags,
        )
        self.fail: str | None = None  # a RegistryError kind every lookup raises
        self.calls = 0  # lookups asked for (resolve, manifest, blob, referrers)
        self.manifest_lookups: list[str] = []  # tags and digests asked for through manifest()

    def _check(self, ref: Reference) -> None:
        self.calls += 1
        if self.fail:
            raise RegistryError(self.fail, f"{self.fail} (test double)", registry=ref.registry)

    # -- the Registry protocol: counted, then the real client over the in-memory transport --------

    def resolve(self, ref: Reference, *, platforms: bool = True) -> Resolved:
        self._check(ref)
        return super().resolve(ref, platforms=platforms)

    def manifest(
        self, ref: Reference, tag_or_digest: str, *, max_bytes: int | None = None
    ) -> Manifest | None:
        self._check(ref)
        self.manifest_lookups.append(tag_or_digest)
        return super().manifest(ref, tag_or_digest, max_bytes=max_bytes)

    def blob(self, ref: Reference, digest: str, *, max_bytes: int | None = None) -> bytes:
        self._check(ref)
        return super().blob(ref, digest, max_bytes=max_bytes)

    def referrers(
        self, ref: Reference, digest: str, *, artifact_type: str | None = None
    ) -> tuple[list[Descriptor], str]:
        self._check(ref)
        return super().referrers(ref, digest, artifact_type=artifact_type)

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
