"""trustgate's checkpoints and inclusion proofs, checked by sigstore-python's own verifier code.

This is the only test that imports `sigstore._internal` (its Merkle and
checkpoint verifiers have no public API): when sigstore-python changes those
internals, only this file needs updating. What it shows is that an
independent implementation, written for Rekor, accepts what trustgate writes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sigstore._internal.merkle import verify_merkle_inclusion
from sigstore._internal.rekor.checkpoint import SignedCheckpoint
from sigstore._internal.trust import KeyID, Keyring
from sigstore_models.common import v1 as common_v1

from trustgate.cli.main import main
from trustgate.decisions.canonical import canonical
from trustgate.decisions.log import DecisionLog


def test_sigstore_python_verifies_a_trustgate_checkpoint_and_inclusion_proof(
    tmp_path: Path, make_record: Any
) -> None:
    key = Ed25519PrivateKey.generate()
    key_path = tmp_path / "key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    with DecisionLog.open(url, key=key_path) as log:
        ids = [log.append(make_record(n)) for n in range(1, 14)]
    result = CliRunner().invoke(main, ["log", "checkpoint", "--store", url, "--key", str(key_path)])
    assert result.exit_code == 0
    result = CliRunner().invoke(main, ["log", "prove", ids[6], "--store", url], catch_exceptions=False)
    assert result.exit_code == 0
    proof = json.loads(result.stdout)

    signed = SignedCheckpoint.from_text(proof["checkpoint"])
    assert signed.checkpoint.log_size == proof["treeSize"] == 13
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    keyring = Keyring(
        [
            common_v1.PublicKey(
                raw_bytes=base64.b64encode(der), key_details=common_v1.PublicKeyDetails.PKIX_ED25519
            )
        ]
    )
    # The note's key hash (C2SP) is the hint sigstore matches signatures by; the keyring then checks it.
    note_key_hash = signed.signed_note.signatures[0].sig_hash
    signed.signed_note.verify(keyring, KeyID(note_key_hash + bytes(28)))

    entry = SimpleNamespace(
        _inner=SimpleNamespace(
            canonicalized_body=canonical(proof["record"]),
            inclusion_proof=SimpleNamespace(
                log_index=proof["index"],
                tree_size=proof["treeSize"],
                hashes=[bytes.fromhex(h) for h in proof["hashes"]],
                root_hash=bytes.fromhex(signed.checkpoint.log_hash),
            ),
        )
    )
    verify_merkle_inclusion(entry)  # type: ignore[arg-type]  # duck-typed TransparencyLogEntry
