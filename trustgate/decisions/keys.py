"""Reading the decision log's Ed25519 keys from PEM files: the I/O edge of `chain.py`.

Owns: reading a checkpoint signing key (`read_signer`) and a verifier's
public key (`read_public_key`) from files, and turning unreadable files into
`ConfigError`s that name the file. Leaves out: what the keys are checked to be
(Ed25519, unencrypted: `chain.CheckpointSigner.from_pem`,
`chain.public_key_from_pem`) and what they sign.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from trustgate.decisions.chain import CheckpointSigner, public_key_from_pem
from trustgate.errors import ConfigError


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the {what}: {e.strerror or e}", where=str(path)) from e


def read_signer(path: str | Path) -> CheckpointSigner:
    """The checkpoint signer of a PEM (PKCS#8) Ed25519 private key file (`openssl genpkey`).

    Raises:
        ConfigError: the file is unreadable, encrypted, or not an Ed25519 key.
    """
    return CheckpointSigner.from_pem(_read(path, "checkpoint key"), where=str(path))


def read_public_key(path: str | Path) -> Ed25519PublicKey:
    """A PEM Ed25519 public key file (or a private key file, whose public half is taken).

    Raises:
        ConfigError: unreadable or not Ed25519.
    """
    return public_key_from_pem(_read(path, "public key"), where=str(path))
