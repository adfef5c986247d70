"""C2SP signed notes and checkpoints against published vectors (Go's sumdb/note, a Rekor v2 checkpoint)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trustgate.decisions import merkle
from trustgate.decisions.note import NoteError, NoteVerifier, TreeHead, open_checkpoint, sign_note, split_note

# golang.org/x/mod/sumdb/note, the package documentation's example.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
REKOR2 = Path(__file__).parents[2] / "conformance" / "sigstore-bundle-verify" / "rekor2-happy-path"


def test_the_go_note_vector_verifies_and_signing_reproduces_it() -> None:
    verifier = NoteVerifier.parse(GO_VKEY)
    assert verifier.name == "PeterNeumann" and verifier.key_hash.hex() == "c74f20a3"
    assert verifier.vkey() == GO_VKEY
    body, signatures = split_note(GO_NOTE)
    assert body == GO_TEXT
    [(name, key_hash, signature)] = signatures
    assert name == "PeterNeumann" and key_hash == verifier.key_hash
    assert verifier.check(body.encode(), signature)
    assert not verifier.check(body.replace("answer", "question").encode(), signature)
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]
    assert sign_note(GO_TEXT, "PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed)) == GO_NOTE


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong hash
        "PeterNeumann+c74f20a3+AhpC2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not Ed25519
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+zz+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_verifier_keys_are_rejected(vkey: str) -> None:
    with pytest.raises(NoteError):
        NoteVerifier.parse(vkey)


def test_a_checkpoint_round_trips_and_every_alteration_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = NoteVerifier.ed25519(key.public_key())
    head = TreeHead(verifier.name, 12, b"\x07" * 32)
    note = sign_note(head.text(), verifier.name, key)
    assert open_checkpoint(note, verifier) == head
    assert NoteVerifier.parse(verifier.vkey()) == verifier
    other = NoteVerifier.ed25519(Ed25519PrivateKey.generate().public_key())
    bad = {
        note.replace("\n12\n", "\n13\n"): "does not verify",
        note.split("\n\n")[0] + "\n": "not a signed note",
        "x\n": "not a signed note",
    }
    for text, message in bad.items():
        with pytest.raises(NoteError, match=message):
            open_checkpoint(text, verifier)
    with pytest.raises(NoteError, match="another log"):
        open_checkpoint(note, other)
    same_name = NoteVerifier.ed25519(Ed25519PrivateKey.generate().public_key(), name=verifier.name)
    with pytest.raises(NoteError, match="not signed by the verifier key"):
        open_checkpoint(note, same_name)


def test_a_published_rekor_v2_checkpoint_and_inclusion_proof_verify() -> None:
    """Sigstore's conformance case `rekor2-happy-path`: an Ed25519 C2SP checkpoint of a real log."""
    root = json.loads((REKOR2 / "trusted_root.json").read_text())
    entry = json.loads((REKOR2 / "bundle.sigstore.json").read_text())["verificationMaterial"]["tlogEntries"][
        0
    ]
    [log] = [t for t in root["tlogs"] if t["publicKey"]["keyDetails"] == "PKIX_ED25519"]
    key = serialization.load_der_public_key(base64.b64decode(log["publicKey"]["rawBytes"]))
    assert isinstance(key, Ed25519PublicKey)
    verifier = NoteVerifier.ed25519(key, name="log2025-alpha1.rekor.sigstage.dev")
    assert verifier.key_hash == base64.b64decode(log["logId"]["keyId"])[:4]
    proof = entry["inclusionProof"]
    head = open_checkpoint(proof["checkpoint"]["envelope"], verifier)
    assert head.size == int(proof["treeSize"]) and head.root == base64.b64decode(proof["rootHash"])
    leaf = merkle.leaf_hash(base64.b64decode(entry["canonicalizedBody"]))
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    merkle.verify_inclusion(int(proof["logIndex"]), head.size, leaf, hashes, head.root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(int(proof["logIndex"]) - 1, head.size, leaf, hashes, head.root)


@pytest.mark.parametrize("size", ["\u00b2", "\u0662\u0660", "1" * 21, "\uff11"])
def test_a_tree_size_is_ascii_digits_of_a_uint64(size: str) -> None:
    root = base64.b64encode(bytes(32)).decode()
    with pytest.raises(NoteError, match="tree size is not a number"):
        TreeHead.parse(f"example.com/log\n{size}\n{root}\n")


def test_a_bad_signature_by_the_known_key_beside_a_good_one_is_refused_as_go_does() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = NoteVerifier.ed25519(key.public_key())
    root = base64.b64encode(bytes(32)).decode()
    note = sign_note(f"{verifier.name}\n3\n{root}\n", verifier.name, key)
    assert open_checkpoint(note, verifier).size == 3
    body, lines = note.split("\n\n")
    good = lines.removesuffix("\n")
    prefix, _, encoded = good.rpartition(" ")
    raw = base64.b64decode(encoded)
    bad = f"{prefix} {base64.b64encode(raw[:4] + bytes(64)).decode()}"
    for order in ([bad, good], [good, bad]):
        with pytest.raises(NoteError, match="signature does not verify"):
            open_checkpoint(body + "\n\n" + "\n".join(order) + "\n", verifier)
