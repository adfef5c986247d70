"""C2SP tlog-cosignature: cosigning, checking, and the witness step's consistency rule."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trustgate.decisions import merkle
from trustgate.decisions.note import NoteError, NoteVerifier, TreeHead, open_checkpoint, sign_note
from trustgate.decisions.witness import Cosigner, CosignerKey, NotConsistentError, default_name, witness

LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # test-only keys
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
LEAVES = [merkle.leaf_hash(str(i).encode()) for i in range(8)]


def node(level: int, index: int) -> bytes:
    if level == 0:
        return LEAVES[index]
    return merkle.node_hash(node(level - 1, 2 * index), node(level - 1, 2 * index + 1))


def checkpoint(size: int, root: bytes | None = None) -> tuple[str, TreeHead]:
    verifier = NoteVerifier.ed25519(LOG_KEY.public_key())
    head = TreeHead(verifier.name, size, root if root is not None else merkle.root(size, node))
    return sign_note(head.text(), verifier.name, LOG_KEY), head


def test_a_cosignature_is_the_spec_s_timestamped_signature_over_the_spec_s_message() -> None:
    cosigner = Cosigner("witness.example.com/w1", WITNESS_KEY)
    note, head = checkpoint(5)
    cosigned = cosigner.cosign(note, 1679315147)
    line = cosigned.splitlines()[-1]
    assert line.startswith("\u2014 witness.example.com/w1 ")
    data = base64.b64decode(line.rsplit(" ", 1)[1])
    raw = WITNESS_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert data[:4] == hashlib.sha256(b"witness.example.com/w1\n\x04" + raw).digest()[:4]
    assert int.from_bytes(data[4:12], "big") == 1679315147
    WITNESS_KEY.public_key().verify(data[12:], b"cosignature/v1\ntime 1679315147\n" + head.text().encode())
    assert cosigner.public.check(cosigned) == 1679315147
    # The log's own signature is still there and still checks.
    assert open_checkpoint(cosigned, NoteVerifier.ed25519(LOG_KEY.public_key())) == head


def test_a_cosignature_of_another_body_or_key_does_not_check() -> None:
    cosigner = Cosigner(default_name(WITNESS_KEY.public_key()), WITNESS_KEY)
    note, _ = checkpoint(5)
    cosigned = cosigner.cosign(note, 1)
    other_note, _ = checkpoint(6)
    forged = other_note + cosigned.splitlines(keepends=True)[-1]  # the line moved to another checkpoint
    with pytest.raises(NoteError, match="no valid cosignature"):
        cosigner.public.check(forged)
    impostor = CosignerKey(cosigner.name, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(NoteError, match="no valid cosignature"):
        impostor.check(cosigned)


def test_verifier_keys_round_trip_and_refuse_log_keys() -> None:
    key = Cosigner("w.example/1", WITNESS_KEY).public
    assert CosignerKey.parse(key.vkey()) == key
    with pytest.raises(NoteError, match="0x04"):
        CosignerKey.parse(NoteVerifier.ed25519(LOG_KEY.public_key()).vkey())  # a log key (type 0x01)
    _, key_hash, rest = key.vkey().split("+")
    with pytest.raises(NoteError, match="does not match"):
        CosignerKey.parse(f"other+{key_hash}+{rest}")


def test_the_witness_cosigns_only_what_extends_what_it_cosigned() -> None:
    cosigner = Cosigner("w.example/1", WITNESS_KEY)
    old_note, old = checkpoint(3)
    new_note, new = checkpoint(7)
    assert witness(cosigner, new_note=old_note, new=old, old=None, proof=[], timestamp=1)  # first use
    proof = merkle.consistency_proof(3, 7, node)
    cosigned = witness(cosigner, new_note=new_note, new=new, old=old, proof=proof, timestamp=2)
    assert cosigner.public.check(cosigned) == 2
    assert witness(cosigner, new_note=new_note, new=new, old=new, proof=[], timestamp=3)  # the same again

    fork_note, fork = checkpoint(7, root=b"\x07" * 32)
    with pytest.raises(NotConsistentError, match="does not extend the one of 3"):
        witness(cosigner, new_note=fork_note, new=fork, old=old, proof=proof, timestamp=4)
    with pytest.raises(NotConsistentError, match="two different roots"):
        witness(cosigner, new_note=fork_note, new=fork, old=new, proof=[], timestamp=4)
    with pytest.raises(NotConsistentError, match="already cosigned 7"):
        witness(cosigner, new_note=old_note, new=old, old=new, proof=[], timestamp=4)
    stranger = TreeHead("other.example/log", 9, b"\x00" * 32)
    with pytest.raises(NotConsistentError, match="follows"):
        witness(cosigner, new_note=new_note, new=stranger, old=new, proof=[], timestamp=4)
