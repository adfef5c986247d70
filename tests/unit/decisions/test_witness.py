"""C2SP tlog-cosignature: cosigning, checking, and the witness step's consistency rule."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

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


_CLI = "import sys; from trustgate.cli.main import main; main(sys.argv[1:])"
_SLOW_WITNESS = """
import sys, time
import trustgate.decisions.witness as w
step = w.witness
def slow(*args, **kwargs):
    time.sleep(1.0)  # widen the window between reading the state and replacing it
    return step(*args, **kwargs)
w.witness = slow
from trustgate.cli.main import main
main(sys.argv[1:])
"""


def test_two_witness_runs_at_once_never_cosign_two_forks(tmp_path: Path) -> None:
    """Before the state lock, both runs read the same state and cosigned both forks (a split view)."""
    pem = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    (tmp_path / "log.pem").write_bytes(LOG_KEY.private_bytes(*pem))
    (tmp_path / "witness.pem").write_bytes(WITNESS_KEY.private_bytes(*pem))
    fork_leaves = LEAVES[:3] + [merkle.leaf_hash(b"forked " + bytes([i])) for i in range(2)]

    def fork_node(level: int, index: int) -> bytes:
        if level == 0:
            return fork_leaves[index]
        return merkle.node_hash(fork_node(level - 1, 2 * index), fork_node(level - 1, 2 * index + 1))

    base, _ = checkpoint(3)
    forks = {"A": (checkpoint(4), merkle.consistency_proof(3, 4, node))}
    forks["B"] = (checkpoint(5, merkle.root(5, fork_node)), merkle.consistency_proof(3, 5, fork_node))
    (tmp_path / "base").write_text(base)
    for name, ((note, head), proof) in forks.items():
        (tmp_path / name).write_text(note)
        (tmp_path / f"{name}.proof").write_text(
            json.dumps({"oldSize": 3, "newSize": head.size, "hashes": [h.hex() for h in proof]})
        )
    vkey = NoteVerifier.ed25519(LOG_KEY.public_key()).vkey()

    def args(state: Path, name: str) -> list[str]:
        extra = ["--proof", str(tmp_path / f"{name}.proof")] if name != "base" else []
        return ["log", "witness", "--checkpoint", str(tmp_path / name), "--state", str(state),
                "--key", str(tmp_path / "witness.pem"), "--verifier-key", vkey,
                "--output", str(state.parent / f"{state.name}.{name}"), *extra]  # fmt: skip

    for attempt in range(2):
        state = tmp_path / f"state{attempt}"
        first = subprocess.run([sys.executable, "-c", _CLI, *args(state, "base")], capture_output=True,
                               timeout=60, check=False)  # fmt: skip
        assert first.returncode == 0, first.stderr
        runs = {
            name: subprocess.Popen(
                [sys.executable, "-c", _SLOW_WITNESS, *args(state, name)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for name in ("A", "B")
        }
        codes, errors = {}, {}
        for name, process in runs.items():
            try:
                _, errors[name] = process.communicate(timeout=60)
            finally:
                process.kill()
            codes[name] = process.returncode
        # One cosigns; the other then finds it in the state: A (4) is refused as smaller, B's proof
        # from 3 no longer fits (it needs 4 to 5). Before the lock, both were cosigned.
        assert sorted(codes.values()) in ([0, 1], [0, 3]), (codes, errors)
        cosigned = next(name for name, code in codes.items() if code == 0)
        assert [p.name for p in tmp_path.glob(f"{state.name}.[AB]")] == [f"{state.name}.{cosigned}"]
        state_note = next(state.glob("*.checkpoint")).read_text()
        assert state_note == (tmp_path / cosigned).read_text()  # the state holds what was cosigned
        assert sorted(p.name for p in state.iterdir()) == [".lock", next(state.glob("*.checkpoint")).name]
