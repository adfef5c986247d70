"""C2SP signed notes and tlog checkpoints: what auditors keep and check.

Owns: `TreeHead` (a C2SP `tlog-checkpoint`: origin line, tree size, base64
root hash, optional extension lines), signing it as a C2SP `signed-note`
with Ed25519 (the signature line's base64 is the 4-byte key hash then the
signature), verifier keys in the `name+hash+base64` vkey form, and checking a
note against one verifier. ECDSA verifiers (as Rekor signs its checkpoints)
are accepted for checking other logs' checkpoints. Leaves out: which log a
checkpoint belongs to (the caller compares origins) and files. Pure.

Specs: https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trustgate.errors import Error

ORIGIN_PREFIX = "trustgate.dev/decision-log/"
_ED25519 = b"\x01"  # signed-note signature type of Ed25519
_DASH = "\u2014 "  # "— ", which starts every signature line


class NoteError(Error):
    """A checkpoint or signed note is malformed, unsigned or wrongly signed (the input is bad)."""


def origin_for(public_key: Ed25519PublicKey) -> str:
    """The origin (and key name) of the log a key signs: derived from the key, so it names one log."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return ORIGIN_PREFIX + hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A C2SP tlog-checkpoint body."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> TreeHead:
        """The tree head in a note body.

        Raises:
            NoteError: not a tlog-checkpoint.
        """
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("not a checkpoint: it needs an origin, a tree size and a root hash line")
        origin, size, root, *rest = lines[:-1]
        if not origin:
            raise NoteError("the checkpoint has an empty origin line")
        # ASCII digits only ("²" and other Unicode digits are str.isdigit()), at most a uint64's 20.
        if (
            not (size.isascii() and size.isdigit())
            or len(size) > 20
            or (size != "0" and size.startswith("0"))
        ):
            raise NoteError(f"the checkpoint's tree size is not a number: {size!r}")
        try:
            digest = base64.b64decode(root, validate=True)
        except binascii.Error as e:
            raise NoteError(f"the checkpoint's root hash is not base64: {root!r}") from e
        if len(digest) != 32:
            raise NoteError("the checkpoint's root hash is not 32 bytes")
        if any(not line for line in rest):
            raise NoteError("the checkpoint has an empty extension line")
        return cls(origin, int(size), digest, tuple(rest))


def _ed25519_key_hash(name: str, raw: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + raw).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"not a key name (no spaces or '+'): {name!r}")


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """One key that may have signed a note: its name, 4-byte key hash and public key."""

    name: str
    key_hash: bytes
    key: Ed25519PublicKey | EllipticCurvePublicKey

    @classmethod
    def ed25519(cls, public_key: Ed25519PublicKey, name: str | None = None) -> NoteVerifier:
        name = name or origin_for(public_key)
        _check_name(name)
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(name, _ed25519_key_hash(name, raw), public_key)

    @classmethod
    def ecdsa(cls, public_key: EllipticCurvePublicKey, name: str) -> NoteVerifier:
        """An ECDSA key as Sigstore's logs use it: the key hash is SHA-256 of its DER SubjectPublicKeyInfo."""
        _check_name(name.replace(" ", "_"))
        der = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(name, hashlib.sha256(der).digest()[:4], public_key)

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """A verifier key `name+hash+base64(0x01 ‖ Ed25519 key)`.

        Raises:
            NoteError: malformed, not Ed25519, or the hash does not match the key.
        """
        name, sep, rest = vkey.strip().partition("+")
        key_hash_hex, sep2, encoded = rest.partition("+")
        if not sep or not sep2:
            raise NoteError("a verifier key has the form name+hash+base64")
        _check_name(name)
        try:
            key_hash = bytes.fromhex(key_hash_hex)
            data = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error) as e:
            raise NoteError("the verifier key's hash is not hex or its key is not base64") from e
        if len(key_hash) != 4 or len(data) != 33 or data[:1] != _ED25519:
            raise NoteError("the verifier key is not an Ed25519 signed-note key")
        if _ed25519_key_hash(name, data[1:]) != key_hash:
            raise NoteError("the verifier key's hash does not match its name and key")
        return cls(name, key_hash, Ed25519PublicKey.from_public_bytes(data[1:]))

    def vkey(self) -> str:
        if not isinstance(self.key, Ed25519PublicKey):
            raise NoteError("only Ed25519 keys have a signed-note verifier key")
        raw = self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"{self.name}+{self.key_hash.hex()}+{base64.b64encode(_ED25519 + raw).decode()}"

    def check(self, message: bytes, signature: bytes) -> bool:
        try:
            if isinstance(self.key, Ed25519PublicKey):
                self.key.verify(signature, message)
            else:
                self.key.verify(signature, message, ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note: `body`, a blank line, and one Ed25519 signature line by key `name`."""
    if not body.endswith("\n"):
        raise ValueError("a note body ends with a newline")
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signature = _ed25519_key_hash(name, raw) + private_key.sign(body.encode())
    return f"{body}\n{_DASH}{name} {base64.b64encode(signature).decode()}\n"


def split_note(text: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """A note's body and its signatures as (key name, key hash, signature).

    Raises:
        NoteError: not a signed note.
    """
    body, sep, signatures = text.rpartition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise NoteError("not a signed note: no blank line before the signatures, or no final newline")
    out = []
    for line in signatures[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise NoteError(f"not a signature line: {line[:60]!r}")
        name, _, encoded = line[len(_DASH) :].rpartition(" ")
        try:
            data = base64.b64decode(encoded, validate=True)
        except binascii.Error as e:
            raise NoteError(f"the signature of {name!r} is not base64") from e
        if len(data) < 5:
            raise NoteError(f"the signature of {name!r} is too short")
        out.append((name, data[:4], data[4:]))
    return body + "\n", out


def open_checkpoint(text: str, verifier: NoteVerifier) -> TreeHead:
    """The tree head of a checkpoint signed by `verifier`, whose origin is the verifier's name.

    Raises:
        NoteError: malformed, of another log, unsigned by this key, or the signature does not verify.
    """
    body, signatures = split_note(text)
    head = TreeHead.parse(body)
    if head.origin != verifier.name:
        raise NoteError(
            f"the checkpoint is of another log: origin {head.origin!r}, expected {verifier.name!r}"
        )
    mine = [s for name, key_hash, s in signatures if name == verifier.name and key_hash == verifier.key_hash]
    if not mine:
        names = ", ".join(sorted({name for name, _, _ in signatures})) or "nobody"
        raise NoteError(f"the checkpoint is not signed by the verifier key (signed by {names})")
    # Every signature by the known key must verify, as in Go's note.Open: a bad one beside a good
    # one is not noise to skip, it is a note someone altered.
    if not all(verifier.check(body.encode(), s) for s in mine):
        raise NoteError(
            "the checkpoint's signature does not verify: it was altered, or signed by another key"
        )
    return head
