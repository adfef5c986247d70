"""Shared pieces of bundle and cosign verification: digests, in-toto statements, key signatures, log bodies.

Every function raises `SignatureVerificationError` (never another exception) on bad signature material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from trustgate import untrusted_json
from trustgate.verify.policy import (
    BAD_SIGNATURE,
    MALFORMED,
    SUBJECT_MISMATCH,
    TLOG,
    UNSUPPORTED,
    SignatureVerificationError,
    Statement,
)
from trustgate.verify.trust import PublicKey

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_DIGEST = re.compile(r"sha256:[0-9a-fA-F]{64}")


def epoch_time(value: Any) -> datetime:
    """A log entry's integrated time (seconds since the epoch, as the entry says) in UTC.

    Raises:
        ValueError: not an integer, or out of the range a datetime holds (found in review:
            `10**17` in a pusher's bundle annotation raised OSError, a bug's traceback, and failed
            a correctly signed image; it is malformed, like other bad bytes).
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"integrated time {value!r} is not an integer")
    seconds = int(value)
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as e:
        raise ValueError(f"integrated time {seconds} is out of range") from e


def parse_digest(digest: str, *, authority: str) -> bytes:
    """The 32 bytes of a "sha256:<hex>" digest."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise SignatureVerificationError(
            MALFORMED, f"{digest!r} is not a sha256 digest (sha256:<64 hex digits>)", authority=authority
        )
    return bytes.fromhex(digest[7:])


def load_json_object(data: bytes | str, *, what: str, authority: str) -> dict[str, Any]:
    """`data` parsed as a JSON object."""
    try:
        value = untrusted_json.loads(data)
    except (ValueError, TypeError) as e:
        raise SignatureVerificationError(
            MALFORMED, f"the {what} is not valid JSON: {e}", authority=authority
        ) from e
    if not isinstance(value, dict):
        raise SignatureVerificationError(
            MALFORMED, f"the {what} is JSON but not an object ({type(value).__name__})", authority=authority
        )
    return value


def b64decode(value: Any, *, what: str, authority: str) -> bytes:
    """Strict base64 (standard alphabet, padding required)."""
    if not isinstance(value, str | bytes):
        raise SignatureVerificationError(MALFORMED, f"the {what} is not a base64 string", authority=authority)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise SignatureVerificationError(
            MALFORMED, f"the {what} is not valid base64", authority=authority
        ) from e


def parse_statement(payload_type: str, payload: bytes, *, envelope_sha256: str, authority: str) -> Statement:
    """The in-toto Statement carried by a verified DSSE envelope."""
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise SignatureVerificationError(
            UNSUPPORTED,
            f"the envelope carries {payload_type!r}, not an in-toto statement ({IN_TOTO_PAYLOAD_TYPE})",
            authority=authority,
        )
    raw = load_json_object(payload, what="in-toto statement", authority=authority)
    kind, predicate_type, subjects = raw.get("_type"), raw.get("predicateType"), raw.get("subject")
    if not isinstance(kind, str) or not isinstance(predicate_type, str) or not isinstance(subjects, list):
        raise SignatureVerificationError(
            MALFORMED,
            "the in-toto statement lacks _type, predicateType or a subject list",
            authority=authority,
        )
    parsed: list[tuple[str, dict[str, str]]] = []
    for subject in subjects:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        name = subject.get("name", "") if isinstance(subject, dict) else None
        if not isinstance(digests, dict) or not isinstance(name, str):
            raise SignatureVerificationError(
                MALFORMED, "an in-toto subject lacks a name or a digest map", authority=authority
            )
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in digests.items()):
            raise SignatureVerificationError(
                MALFORMED, "an in-toto subject digest is not text", authority=authority
            )
        parsed.append((name, dict(digests)))
    return Statement(
        statement_type=kind,
        predicate_type=predicate_type,
        subjects=tuple(parsed),
        predicate=raw.get("predicate"),
        envelope_sha256=envelope_sha256,
    )


def require_covers(statement: Statement, digest: str, *, authority: str) -> None:
    """The statement names `digest` among its subjects; otherwise "subject-mismatch"."""
    if statement.covers(digest):
        return
    named = (
        ", ".join(f"{n or '(unnamed)'} sha256:{d.get('sha256', '?')}" for n, d in statement.subjects[:3])
        or "no subject"
    )
    more = f" and {len(statement.subjects) - 3} more" if len(statement.subjects) > 3 else ""
    raise SignatureVerificationError(
        SUBJECT_MISMATCH,
        f"the attestation ({statement.predicate_type}) is about {named}{more}, not {digest}",
        authority=authority,
    )


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def verify_with_key(
    key: PublicKey,
    signature: bytes,
    *,
    data: bytes | None = None,
    sha256_digest: bytes | None = None,
    authority: str,
    key_id: str,
) -> None:
    """`signature` verifies with `key` over `data`, or over the prehashed `sha256_digest`.

    ECDSA: SHA-256 (what cosign uses for every curve), or the curve's own hash (SHA-384 for P-384);
    RSA: PKCS#1 v1.5 or PSS with SHA-256; Ed25519: over the data itself (a digest alone is not enough).
    """
    candidates: list[hashes.HashAlgorithm] = [hashes.SHA256()]
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP384R1):
            candidates.append(hashes.SHA384())
        elif isinstance(key.curve, ec.SECP521R1):
            candidates.append(hashes.SHA512())
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            if data is None:
                raise SignatureVerificationError(
                    UNSUPPORTED,
                    "an Ed25519 signature covers the artifact itself; give the file, not only its digest",
                    authority=authority,
                )
            try:
                key.verify(signature, data)
                return
            except InvalidSignature:
                candidates = []  # does not verify: nothing else to try
        for algorithm in candidates:
            if data is not None:
                message, chosen = data, algorithm
            elif isinstance(algorithm, hashes.SHA256) and sha256_digest is not None:
                message, chosen = sha256_digest, Prehashed(algorithm)  # type: ignore[assignment]
            else:
                continue
            try:
                if isinstance(key, ec.EllipticCurvePublicKey):
                    key.verify(signature, message, ec.ECDSA(chosen))
                    return
                if isinstance(key, rsa.RSAPublicKey):
                    for pad in (
                        padding.PKCS1v15(),
                        padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
                    ):
                        try:
                            key.verify(signature, message, pad, chosen)
                            return
                        except InvalidSignature:
                            continue
            except InvalidSignature:
                continue
    except (ValueError, TypeError) as e:
        raise SignatureVerificationError(
            BAD_SIGNATURE, f"the signature is unusable: {e}", authority=authority
        ) from e
    raise SignatureVerificationError(
        BAD_SIGNATURE,
        f"the signature does not verify with the key {key_id} (signed with another key, or the content "
        "was altered)",
        authority=authority,
    )


def spki_der(key: PublicKey) -> bytes:
    """DER SubjectPublicKeyInfo of a public key."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _body_mismatch(authority: str, what: str) -> SignatureVerificationError:
    return SignatureVerificationError(
        TLOG,
        f"the transparency-log entry records {what}, not this signature",
        authority=authority,
    )


def check_key_log_body(
    body: bytes,
    *,
    kind: str,
    version: str,
    key: PublicKey,
    signature: bytes,
    sha256_digest: bytes | None = None,
    dsse_payload: bytes | None = None,
    dsse_signatures: list[bytes] | None = None,
    authority: str,
) -> None:
    """The log entry body records this key, this signature and this content (no CVE-2022-36056 swaps)."""
    from trustgate.verify._sigstore import check_intoto_v002_body, pem_key_der

    try:
        entry = untrusted_json.loads(body)
        spec = entry["spec"]
    except (ValueError, KeyError, TypeError) as e:
        raise SignatureVerificationError(
            TLOG, f"the transparency-log entry body is unreadable: {e}", authority=authority
        ) from e
    der = spki_der(key)
    what = f"{kind} {version}"
    if kind == "hashedrekord" and (dsse_payload is not None or sha256_digest is None):
        # A hashedrekord records a signature of some content, not an attestation: a log entry that
        # holds the attestation's signature over other content does not record the statement (log
        # monitors watching dsse/intoto entries would never see it). As sigstore-python refuses.
        raise _body_mismatch(authority, "a signature of other content, not this attestation")
    content = sha256_digest or b""  # set wherever a hashedrekord gets this far
    try:
        if (kind, version) == ("hashedrekord", "0.0.1"):
            recorded_sig = base64.b64decode(spec["signature"]["content"], validate=True)
            recorded_key = base64.b64decode(spec["signature"]["publicKey"]["content"], validate=True)
            data_hash = spec["data"]["hash"]
            if recorded_sig != signature:
                raise _body_mismatch(authority, "another signature")
            if pem_key_der(recorded_key) != der:
                raise _body_mismatch(authority, "another key")
            if data_hash.get("algorithm") != "sha256" or data_hash.get("value") != content.hex():
                raise _body_mismatch(authority, "another artifact")
        elif (kind, version) == ("hashedrekord", "0.0.2"):
            v2 = spec["hashedRekordV002"]
            if base64.b64decode(v2["signature"]["content"], validate=True) != signature:
                raise _body_mismatch(authority, "another signature")
            verifier = v2["signature"]["verifier"]
            raw = verifier.get("publicKey", {}).get("rawBytes")
            if raw is None or base64.b64decode(raw, validate=True) != der:
                raise _body_mismatch(authority, "another key")
            if base64.b64decode(v2["data"]["digest"], validate=True) != content:
                raise _body_mismatch(authority, "another artifact")
        elif (kind, version) == ("dsse", "0.0.1"):
            if dsse_payload is None or dsse_signatures is None:
                raise _body_mismatch(authority, "an attestation")
            if spec["payloadHash"].get("value") != hashlib.sha256(dsse_payload).hexdigest():
                raise _body_mismatch(authority, "another payload")
            recorded = spec["signatures"]
            sigs = [base64.b64decode(s["signature"], validate=True) for s in recorded]
            keys = [pem_key_der(base64.b64decode(s["verifier"], validate=True)) for s in recorded]
            if sorted(sigs) != sorted(dsse_signatures):
                raise _body_mismatch(authority, "other signatures")
            if any(k != der for k in keys):
                raise _body_mismatch(authority, "another key")
        elif (kind, version) == ("intoto", "0.0.2"):
            if dsse_payload is None or dsse_signatures is None:
                raise _body_mismatch(authority, "an attestation")
            from sigstore.errors import VerificationError

            try:
                check_intoto_v002_body(
                    body, payload=dsse_payload, signatures=dsse_signatures, verifier_pem=None, key_der=der
                )
            except VerificationError as e:
                raise _body_mismatch(authority, f"something else ({e})") from e
        else:
            raise SignatureVerificationError(
                UNSUPPORTED, f"transparency-log entries of type {what} are not supported", authority=authority
            )
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error) as e:
        raise SignatureVerificationError(
            TLOG, f"the transparency-log entry body ({what}) is incomplete: {e!r}", authority=authority
        ) from e


FUTURE_SKEW_SECONDS = 300  # seconds a log's clock may run ahead of ours


def refuse_future_log_time(integrated_time: int, *, authority: str) -> None:
    """A log entry integrated after now is refused (as sigstore-go does): a future time would rank
    its statement newest for as long as its date is ahead.

    Raises:
        SignatureVerificationError: the time is more than `FUTURE_SKEW_SECONDS` ahead.
    """
    import time

    if integrated_time > time.time() + FUTURE_SKEW_SECONDS:
        raise SignatureVerificationError(
            TLOG,
            f"the transparency-log entry says it was integrated in the future (Unix time {integrated_time})",
            authority=authority,
        )
