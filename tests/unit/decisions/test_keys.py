"""Key files: read at the edge (`keys.py`), checked by the pure constructors in `chain.py`."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trustgate.decisions.chain import CheckpointSigner, load_public_key, public_key_from_pem
from trustgate.decisions.keys import read_public_key, read_signer
from trustgate.errors import ConfigError

_PKCS8 = serialization.PrivateFormat.PKCS8
_PEM = serialization.Encoding.PEM


def _ed25519_pem() -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.generate()
    return key, key.private_bytes(_PEM, _PKCS8, serialization.NoEncryption())


def test_a_signer_and_its_public_key_come_from_bytes_without_a_file() -> None:
    key, pem = _ed25519_pem()
    signer = CheckpointSigner.from_pem(pem, where="in memory")
    public_pem = key.public_key().public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert public_key_from_pem(public_pem) == signer.public_key
    assert public_key_from_pem(pem) == signer.public_key  # the private key's public half


def test_files_are_read_by_keys_and_the_old_names_still_work(tmp_path: Path) -> None:
    key, pem = _ed25519_pem()
    path = tmp_path / "log.pem"
    path.write_bytes(pem)
    assert read_signer(path).key_id == CheckpointSigner.from_file(path).key_id
    assert read_public_key(path) == load_public_key(path) == key.public_key()


@pytest.mark.parametrize(
    ("content", "says"), [(None, "cannot read"), (b"not a key", "PEM"), (b"ec", "must be an Ed25519 key")]
)
def test_a_bad_key_file_is_a_config_error_naming_the_file(
    tmp_path: Path, content: bytes | None, says: str
) -> None:
    path = tmp_path / "bad.pem"
    if content == b"ec":  # a real key of the wrong kind
        content = generate_private_key(SECP256R1()).private_bytes(_PEM, _PKCS8, serialization.NoEncryption())
    if content is not None:
        path.write_bytes(content)
    for read in (read_signer, read_public_key):
        with pytest.raises(ConfigError) as raised:
            read(path)
        assert raised.value.where == str(path) and says in raised.value.message
