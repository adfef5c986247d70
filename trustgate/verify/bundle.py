"""Sigstore bundles (v0.1 to v0.3): message signatures over a digest and DSSE in-toto attestations.

Owns: `verify_bundle` and `verify_blob`. Keyless bundles go through sigstore's
`Verifier` (via `TrustgateVerifier`); key-based bundles (a `publicKey` hint)
are checked here with the key, and their log entry with sigstore's Merkle,
checkpoint and inclusion-promise code. Leaves out: where bundles come from.

Steps (numbered as in sigstore's client spec):
0. parse the bundle (anything unreadable is "malformed");
1-6. certificate chain at the signing time, SCT, X.509 profile, identity, log entry, validity;
7. signature over the digest (message signature) or over the DSSE PAE;
8. the log entry records exactly this signature, key/certificate and content;
9. (DSSE) the in-toto statement names the digest among its subjects.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustgate.verify._material import (
    check_key_log_body,
    epoch_time,
    load_json_object,
    pae,
    parse_digest,
    parse_statement,
    refuse_future_log_time,
    require_covers,
    verify_with_key,
)
from trustgate.verify.policy import (
    DIGEST_MISMATCH,
    MALFORMED,
    TLOG,
    Authority,
    Evidence,
    KeyAuthority,
    KeylessAuthority,
    SignatureVerificationError,
    Statement,
)
from trustgate.verify.trust import key_id as _key_id

# Exceptions that parsing or checking attacker-controlled structures can raise besides sigstore's own.
_GARBAGE = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, binascii.Error)


def verify_bundle(bundle: bytes, *, digest: str, authority: Authority) -> tuple[Evidence, Statement | None]:
    """Verify a Sigstore bundle for the artifact with `digest` ("sha256:<hex>").

    A message-signature bundle must cover `digest` -> (evidence, None). A DSSE bundle must carry an
    in-toto statement whose subjects include `digest` -> (evidence, statement).

    Raises:
        SignatureVerificationError: the bundle is malformed or does not satisfy `authority` (see `code`).
    """
    return _verify(bundle, digest=digest, artifact=None, authority=authority)


def verify_blob(
    *, artifact: bytes | None = None, digest: str | None = None, bundle: bytes, authority: Authority
) -> Evidence:
    """Verify a bundle for a file (its bytes) or for its digest; what `trustgate verify blob` runs.

    Raises:
        SignatureVerificationError: as `verify_bundle`.
        ValueError: neither or both of `artifact` and `digest` given (a programming error).
    """
    if (artifact is None) == (digest is None):
        raise ValueError("give exactly one of artifact and digest")
    if artifact is not None:
        digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    assert digest is not None
    evidence, _ = _verify(bundle, digest=digest, artifact=artifact, authority=authority)
    return evidence


def _verify(
    data: bytes, *, digest: str, artifact: bytes | None, authority: Authority
) -> tuple[Evidence, Statement | None]:
    name = authority.name
    wanted = parse_digest(digest, authority=name)
    raw = load_json_object(data, what="bundle", authority=name)
    _check_base64_fields(raw, authority=name)
    try:
        if isinstance(authority, KeylessAuthority):
            return _keyless(data, raw, digest=digest, wanted=wanted, authority=authority)
        return _keyed(data, raw, digest=digest, wanted=wanted, artifact=artifact, authority=authority)
    except SignatureVerificationError:
        raise
    except _GARBAGE as e:
        raise SignatureVerificationError(
            MALFORMED, f"the bundle is malformed: {_first_line(e)}", authority=name
        ) from e


# Protobuf JSON bytes: standard or URL-safe base64, padding optional. The parser underneath is lenient
# (it drops stray characters), so check first: garbage is "malformed", not a bad signature.
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_BASE64_PATHS: tuple[tuple[str, ...], ...] = (
    ("messageSignature", "signature"),
    ("messageSignature", "messageDigest", "digest"),
    ("dsseEnvelope", "payload"),
    ("dsseEnvelope", "signatures", "*", "sig"),
    ("verificationMaterial", "certificate", "rawBytes"),
    ("verificationMaterial", "x509CertificateChain", "certificates", "*", "rawBytes"),
    ("verificationMaterial", "tlogEntries", "*", "canonicalizedBody"),
    ("verificationMaterial", "tlogEntries", "*", "logId", "keyId"),
    ("verificationMaterial", "tlogEntries", "*", "inclusionPromise", "signedEntryTimestamp"),
    ("verificationMaterial", "tlogEntries", "*", "inclusionProof", "rootHash"),
    ("verificationMaterial", "tlogEntries", "*", "inclusionProof", "hashes", "*"),
    ("verificationMaterial", "timestampVerificationData", "rfc3161Timestamps", "*", "signedTimestamp"),
)


def _check_base64_fields(raw: dict[str, Any], *, authority: str) -> None:
    def walk(node: Any, path: tuple[str, ...], where: str) -> None:
        if not path:
            if isinstance(node, str) and not _BASE64.fullmatch(node):
                raise SignatureVerificationError(
                    MALFORMED, f"the bundle field {where} is not valid base64", authority=authority
                )
            return
        head, rest = path[0], path[1:]
        if head == "*":
            if isinstance(node, list):
                for i, item in enumerate(node):
                    walk(item, rest, f"{where}[{i}]")
        elif isinstance(node, dict) and head in node:
            walk(node[head], rest, f"{where}.{head}" if where else head)

    for path in _BASE64_PATHS:
        walk(raw, path, "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _envelope_sha256(raw: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(rfc8785.dumps(raw.get("dsseEnvelope"))).hexdigest()


def _message_digest(raw: dict[str, Any]) -> tuple[str, bytes] | None:
    message = raw.get("messageSignature")
    if not isinstance(message, dict) or not isinstance(message.get("messageDigest"), dict):
        return None
    md = message["messageDigest"]
    algorithm, value = md.get("algorithm"), md.get("digest")
    if not isinstance(algorithm, str) or not isinstance(value, str):
        return None
    import base64

    return algorithm, base64.b64decode(value, validate=True)


def _check_message_digest(raw: dict[str, Any], *, digest: str, wanted: bytes, authority: str) -> None:
    recorded = _message_digest(raw)
    if recorded is None:
        return
    if recorded[0] != "SHA2_256":  # what is signed is named by its SHA-256 here; another says nothing of it
        raise SignatureVerificationError(
            DIGEST_MISMATCH,
            f"the bundle's message digest is {recorded[0]}, not the SHA2_256 of {digest}",
            authority=authority,
        )
    if recorded[1] != wanted:
        raise SignatureVerificationError(
            DIGEST_MISMATCH,
            f"the signature is for sha256:{recorded[1].hex()}, not {digest}",
            authority=authority,
        )


def _keyless(
    data: bytes, raw: dict[str, Any], *, digest: str, wanted: bytes, authority: KeylessAuthority
) -> tuple[Evidence, Statement | None]:
    from sigstore.errors import Error as SigstoreError
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle, InvalidBundle
    from sigstore_models.common.v1 import HashAlgorithm

    from trustgate.verify._sigstore import IdentityPolicy, certificate_identity, classify

    name = authority.name
    try:
        bundle = Bundle.from_json(data)
    except (InvalidBundle, *_GARBAGE) as e:
        raise SignatureVerificationError(
            MALFORMED, f"the bundle is malformed: {_first_line(e)}", authority=name
        ) from e
    certificate = bundle.signing_certificate
    signed_at = _signing_time(bundle)
    verifier = authority.trust_root.verifier()
    policy = IdentityPolicy(authority.identities)
    statement: Statement | None = None
    try:
        if bundle._dsse_envelope is not None:
            payload_type, payload = verifier.verify_dsse(bundle, policy)
            statement = parse_statement(
                payload_type, payload, envelope_sha256=_envelope_sha256(raw), authority=name
            )
            require_covers(statement, digest, authority=name)
        else:
            _check_message_digest(raw, digest=digest, wanted=wanted, authority=name)
            verifier.verify_artifact(Hashed(algorithm=HashAlgorithm.SHA2_256, digest=wanted), bundle, policy)
    except SignatureVerificationError:
        raise
    except (SigstoreError, *_GARBAGE) as e:
        raise classify(
            e,
            authority=name,
            wanted=authority.describe(),
            certificate=certificate,
            signed_at=signed_at,
            root=authority.trust_root.name,
            cas=authority.trust_root.trusted_root.get_fulcio_certs(),
        ) from e
    subject, issuer, identities = certificate_identity(certificate, authority.identities)
    entry = bundle.log_entry._inner
    return (
        Evidence(
            authority=name,
            method="keyless",
            kind="attestation" if statement is not None else "signature",
            signed_digest=digest,
            subject=subject,
            issuer=issuer,
            identities=identities,
            key_id=_key_id(certificate.public_key()),  # type: ignore[arg-type]
            certificate_sha256=_cert_sha256(certificate),
            log_index=int(entry.log_index),
            log_id=entry.log_id.key_id.hex(),
            integrated_time=_rfc3339(signed_at) if signed_at else None,
            timestamp_source=_time_source(bundle),
        ),
        statement,
    )


def _cert_sha256(certificate: x509.Certificate) -> str:
    return "sha256:" + hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signing_time(bundle: Any) -> datetime | None:
    """The log's integrated time, else the first RFC 3161 timestamp (not yet verified: for words only)."""
    entry = bundle.log_entry._inner
    if entry.integrated_time:
        return epoch_time(entry.integrated_time)
    tvd = bundle.verification_material.timestamp_verification_data
    if tvd is not None and tvd.rfc3161_timestamps:
        gen_time: datetime = tvd.rfc3161_timestamps[0].tst_info.gen_time
        return gen_time
    return None


def _time_source(bundle: Any) -> str | None:
    entry = bundle.log_entry._inner
    if entry.integrated_time and entry.inclusion_promise:
        return "transparency-log"
    if bundle.verification_material.timestamp_verification_data is not None:
        return "timestamp-authority"
    return None


def _keyed(
    data: bytes,
    raw: dict[str, Any],
    *,
    digest: str,
    wanted: bytes,
    artifact: bytes | None,
    authority: KeyAuthority,
) -> tuple[Evidence, Statement | None]:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import InvalidBundle, TransparencyLogEntry
    from sigstore_models.bundle.v1 import Bundle as RawBundle

    name = authority.name
    try:
        inner = RawBundle.from_json(data)
    except _GARBAGE as e:
        raise SignatureVerificationError(
            MALFORMED, f"the bundle is malformed: {_first_line(e)}", authority=name
        ) from e
    statement: Statement | None = None
    signature: bytes
    dsse_payload: bytes | None = None
    dsse_signatures: list[bytes] | None = None
    # 7. the signature, with the key.
    if inner.dsse_envelope is not None:
        envelope = inner.dsse_envelope
        if not envelope.signatures:
            raise SignatureVerificationError(MALFORMED, "the DSSE envelope has no signature", authority=name)
        message = pae(envelope.payload_type, envelope.payload)
        dsse_payload, dsse_signatures = envelope.payload, [s.sig for s in envelope.signatures]
        failure: SignatureVerificationError | None = None
        for candidate in dsse_signatures:
            try:
                verify_with_key(
                    authority.key, candidate, data=message, authority=name, key_id=authority.key_id
                )
                signature = candidate
                break
            except SignatureVerificationError as e:
                failure = e
        else:
            assert failure is not None
            raise failure
        statement = parse_statement(
            envelope.payload_type, envelope.payload, envelope_sha256=_envelope_sha256(raw), authority=name
        )
        require_covers(statement, digest, authority=name)
    elif inner.message_signature is not None:
        _check_message_digest(raw, digest=digest, wanted=wanted, authority=name)
        signature = inner.message_signature.signature
        verify_with_key(
            authority.key,
            signature,
            data=artifact,
            sha256_digest=None if artifact is not None else wanted,
            authority=name,
            key_id=authority.key_id,
        )
    else:
        raise SignatureVerificationError(
            MALFORMED, "the bundle has neither a message signature nor a DSSE envelope", authority=name
        )

    # 4-5, 8. the log entry, when the bundle has one and the authority names a root to check it with.
    log_index: int | None = None
    log_id: str | None = None
    integrated: str | None = None
    timed = False
    entries = inner.verification_material.tlog_entries or []
    if authority.trust_root is not None and not entries:
        # A key authority with a trust root requires the log: a signature kept out of it is how a
        # stolen key is used without anyone seeing (cosign's default too).
        raise SignatureVerificationError(
            TLOG,
            f"the bundle has no transparency-log entry, and the trust root {authority.trust_root.name} "
            "requires one for key signatures",
            authority=name,
        )
    if authority.trust_root is not None and entries:
        if len(entries) != 1:
            raise SignatureVerificationError(
                MALFORMED, "the bundle must hold exactly one log entry", authority=name
            )
        try:
            entry = TransparencyLogEntry(entries[0])
            logged = entry._inner.integrated_time
            entry._verify(authority.trust_root.rekor_keyring(at=epoch_time(logged) if logged else None))
        except (SigstoreError, InvalidBundle, *_GARBAGE) as e:
            raise SignatureVerificationError(
                TLOG,
                "the transparency-log entry does not verify against the log keys of the trust root "
                f"{authority.trust_root.name}",
                detail=_first_line(e),
                authority=name,
            ) from e
        kind = entry._inner.kind_version
        check_key_log_body(
            entry._inner.canonicalized_body,
            kind=kind.kind,
            version=kind.version,
            key=authority.key,
            signature=signature,
            sha256_digest=wanted if statement is None else None,
            dsse_payload=dsse_payload,
            dsse_signatures=dsse_signatures,
            authority=name,
        )
        log_index, log_id = int(entry._inner.log_index), entry._inner.log_id.key_id.hex()
        if entry._inner.integrated_time:
            refuse_future_log_time(int(entry._inner.integrated_time), authority=name)
            integrated = _rfc3339(epoch_time(entry._inner.integrated_time))
            # Only the inclusion promise signs the integrated time (an inclusion proof does not).
            timed = entry._inner.inclusion_promise is not None
    return (
        Evidence(
            authority=name,
            method="key",
            kind="attestation" if statement is not None else "signature",
            signed_digest=digest,
            key_id=authority.key_id,
            log_index=log_index,
            log_id=log_id,
            integrated_time=integrated,
            timestamp_source="transparency-log" if timed else None,
        ),
        statement,
    )
