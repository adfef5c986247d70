"""Signatures and attestations: trust roots, Sigstore bundles, cosign payloads, DSSE and in-toto.

Crypto on bytes: nothing here reads registries or configuration files. Every
verification function raises only `SignatureVerificationError` for bad signature
material; configuration problems (an unreadable trusted root, a bad key file)
raise `trustgate.errors.ConfigError`.
"""

from trustgate.verify.bundle import verify_blob, verify_bundle
from trustgate.verify.cosign import verify_cosign_attestation, verify_cosign_signature
from trustgate.verify.policy import (
    CODES,
    Authority,
    Evidence,
    IdentityMatcher,
    KeyAuthority,
    KeylessAuthority,
    SignatureVerificationError,
    Statement,
    VerificationFailed,
)
from trustgate.verify.trust import PublicKey, TrustRoot, key_id, load_public_key

__all__ = [
    "CODES",
    "Authority",
    "Evidence",
    "IdentityMatcher",
    "KeyAuthority",
    "KeylessAuthority",
    "PublicKey",
    "SignatureVerificationError",
    "Statement",
    "TrustRoot",
    "VerificationFailed",
    "key_id",
    "load_public_key",
    "verify_blob",
    "verify_bundle",
    "verify_cosign_attestation",
    "verify_cosign_signature",
]
