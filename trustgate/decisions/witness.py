"""C2SP tlog-cosignature: a witness cosigns a checkpoint it has seen extend the last one it cosigned.

Owns: Ed25519 `cosignature/v1` signatures (signature type 0x04: the 4-byte
key id, an 8-byte big-endian timestamp, then the signature over
`cosignature/v1\\ntime <t>\\n` and the checkpoint body), their verifier keys
(`name+hash+base64(0x04 ‖ key)`), checking a cosignature, and the witness
step itself (`witness`): given the last checkpoint the witness cosigned, the
new one and a consistency proof between them, cosign the new one or say why
not. Leaves out: files, the witness's state and where proofs come from (the
CLI). Pure.

Spec: https://c2sp.org/tlog-cosignature. A cosignature states that, as of its
time, this is the largest tree the witness saw for the origin, consistent
with every smaller one it saw: with several witnesses, a log cannot show
different auditors different histories (a split view) unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trustgate.decisions import merkle
from trustgate.decisions.note import NoteError, TreeHead, split_note

_COSIGNATURE_V1 = b"\x04"
_DASH = "\u2014 "
_MAX_TIMESTAMP = 2**63 - 1


class NotConsistentError(NoteError):
    """The new checkpoint does not extend the last one the witness cosigned: it is not cosigned."""


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _COSIGNATURE_V1 + _raw(public_key)).digest()[:4]


def _message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def default_name(public_key: Ed25519PublicKey) -> str:
    """`trustgate.dev/witness/<16 hex of SHA-256 of the raw key>`: a name no other key has."""
    return "trustgate.dev/witness/" + hashlib.sha256(_raw(public_key)).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class CosignerKey:
    """A witness's public key and name, as auditors pin it."""

    name: str
    key: Ed25519PublicKey

    @classmethod
    def parse(cls, vkey: str) -> CosignerKey:
        """A cosigner verifier key `name+hash+base64(0x04 ‖ Ed25519 key)`.

        Raises:
            NoteError: malformed, not a cosignature/v1 key, or the hash does not match.
        """
        name, sep, rest = vkey.strip().partition("+")
        key_id_hex, sep2, encoded = rest.partition("+")
        if not sep or not sep2 or not name or any(c.isspace() for c in name):
            raise NoteError("a witness key has the form name+hash+base64")
        try:
            key_id = bytes.fromhex(key_id_hex)
            data = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error) as e:
            raise NoteError("the witness key's hash is not hex or its key is not base64") from e
        if len(key_id) != 4 or len(data) != 33 or data[:1] != _COSIGNATURE_V1:
            raise NoteError("not an Ed25519 cosignature/v1 key (signature type 0x04)")
        key = Ed25519PublicKey.from_public_bytes(data[1:])
        if _key_id(name, key) != key_id:
            raise NoteError("the witness key's hash does not match its name and key")
        return cls(name, key)

    def vkey(self) -> str:
        return (
            f"{self.name}+{_key_id(self.name, self.key).hex()}+"
            + base64.b64encode(_COSIGNATURE_V1 + _raw(self.key)).decode()
        )

    def check(self, note: str) -> int:
        """The time of this witness's valid cosignature on `note` (seconds since the epoch).

        Raises:
            NoteError: the note is malformed, or carries no valid cosignature of this witness.
        """
        body, signatures = split_note(note)
        key_id = _key_id(self.name, self.key)
        for name, found_id, data in signatures:
            if name != self.name or found_id != key_id or len(data) != 8 + 64:
                continue
            timestamp = int.from_bytes(data[:8], "big")
            try:
                self.key.verify(data[8:], _message(body, timestamp))
            except InvalidSignature:
                continue
            return timestamp
        raise NoteError(f"the checkpoint carries no valid cosignature of witness {self.name}")


@dataclass(frozen=True, slots=True)
class Cosigner:
    """A witness's private key and name."""

    name: str
    key: Ed25519PrivateKey

    @property
    def public(self) -> CosignerKey:
        return CosignerKey(self.name, self.key.public_key())

    def cosign(self, note: str, timestamp: int) -> str:
        """`note` with this witness's cosignature line added (other signature lines are kept).

        Raises:
            NoteError: the note is malformed, or the timestamp is out of range.
        """
        if not 0 <= timestamp <= _MAX_TIMESTAMP:
            raise NoteError(f"a cosignature timestamp must be 0..2^63-1, not {timestamp}")
        body, _ = split_note(note)
        signature = self.key.sign(_message(body, timestamp))
        data = _key_id(self.name, self.key.public_key()) + timestamp.to_bytes(8, "big") + signature
        return f"{note}{_DASH}{self.name} {base64.b64encode(data).decode()}\n"


def witness(
    cosigner: Cosigner,
    *,
    new_note: str,
    new: TreeHead,
    old: TreeHead | None,
    proof: Sequence[bytes],
    timestamp: int,
) -> str:
    """The witness step: cosign `new` if it extends `old`, the last checkpoint this witness cosigned.

    Args:
        new_note: the new checkpoint as the log signed it (its signature already checked).
        new: its tree head.
        old: the last tree head cosigned for the same origin; None on first use (trusted as it is).
        proof: the RFC 6962 consistency proof from `old.size` to `new.size`.

    Raises:
        NotConsistentError: another origin, a smaller tree, another root of the same size, or a proof
            that does not verify.
    """
    if old is not None:
        if old.origin != new.origin:
            raise NotConsistentError(
                f"the checkpoint is of {new.origin!r}; this witness follows {old.origin!r}"
            )
        if new.size < old.size:
            raise NotConsistentError(
                f"the checkpoint has {new.size} records; this witness already cosigned {old.size}"
            )
        try:
            merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
        except merkle.ProofError as e:
            raise NotConsistentError(
                f"the checkpoint of {new.size} records does not extend the one of {old.size} this witness "
                f"cosigned: {e.message}"
            ) from e
    return cosigner.cosign(new_note, timestamp)
