"""Signing keys that tests and benchmarks make on the fly (test-only, never committed)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def write_p256_key(path: Path) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A new ECDSA P-256 key, written to `path` (PEM, PKCS #8, unencrypted).

    Returns:
        The key and its public key (PEM, SubjectPublicKeyInfo).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public
