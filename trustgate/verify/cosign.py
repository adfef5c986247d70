"""Classic cosign signatures and attestations, as stored by `cosign sign` / `cosign attest` in a registry.

Owns: `verify_cosign_signature` (a "simple signing" payload with a base64
signature annotation) and `verify_cosign_attestation` (a DSSE envelope), each
with a key or keyless (certificate + chain + Rekor bundle annotations).
Leaves out: finding these in a registry (`trustgate.oci.discovery`).

Keyless steps, the same as for a Sigstore bundle (sigstore's machinery, via
`TrustgateVerifier.verify_certificate_with_set`):
1. the Rekor bundle's signed entry timestamp verifies with a log key of the root;
2. the certificate chains to a CA of the root at the integrated time, its SCT
   verifies, it is a code-signing leaf, and names a trusted identity;
3. the integrated time lies inside the certificate's validity;
4. the signature verifies with the certificate's key;
5. the log entry records this signature, certificate and content.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustgate.verify._material import (
    b64decode,
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
from trustgate.verify.bundle import _GARBAGE, _first_line
from trustgate.verify.policy import (
    DIGEST_MISMATCH,
    MALFORMED,
    TLOG,
    UNSUPPORTED,
    Authority,
    Evidence,
    KeyAuthority,
    KeylessAuthority,
    SignatureVerificationError,
    Statement,
)
from trustgate.verify.trust import PublicKey
from trustgate.verify.trust import key_id as _key_id

SIMPLE_SIGNING_TYPE = "cosign container image signature"


def verify_cosign_signature(
    *,
    payload: bytes,
    signature: str,
    digest: str,
    authority: Authority,
    certificate: str | None = None,
    chain: str | None = None,
    rekor_bundle: str | None = None,
) -> Evidence:
    """Verify a cosign "simple signing" signature of the image manifest `digest`.

    Args:
        payload: the simple-signing JSON (the signature layer's content).
        signature: base64 signature (annotation `dev.cosignproject.cosign/signature`).
        digest: the image manifest digest, "sha256:<hex>".
        authority: a key, or keyless identities with a trust root.
        certificate: PEM leaf certificate (annotation `dev.sigstore.cosign/certificate`), keyless only.
        chain: PEM chain (annotation `dev.sigstore.cosign/chain`); trust comes from the root, not from it.
        rekor_bundle: Rekor bundle JSON (annotation `dev.sigstore.cosign/bundle`); required keyless.

    Raises:
        SignatureVerificationError: malformed, or not satisfying `authority` (see `code`).
    """
    name = authority.name
    parse_digest(digest, authority=name)
    try:
        document = load_json_object(payload, what="simple-signing payload", authority=name)
        critical = document.get("critical")
        if not isinstance(critical, dict) or not isinstance(critical.get("image"), dict):
            raise SignatureVerificationError(
                MALFORMED, "the simple-signing payload has no critical.image", authority=name
            )
        if critical.get("type") != SIMPLE_SIGNING_TYPE:
            raise SignatureVerificationError(
                UNSUPPORTED,
                f"the payload type is {critical.get('type')!r}, not {SIMPLE_SIGNING_TYPE!r}",
                authority=name,
            )
        signed = critical["image"].get("docker-manifest-digest")
        if not isinstance(signed, str) or signed.lower() != digest.lower():
            raise SignatureVerificationError(
                DIGEST_MISMATCH, f"the signature is for image {signed}, not {digest}", authority=name
            )
        raw_signature = b64decode(signature, what="signature", authority=name)
        evidence = _verify_parts(
            authority,
            message=payload,
            signatures=[raw_signature],
            content_sha256=hashlib.sha256(payload).digest(),
            dsse_payload=None,
            certificate=certificate,
            chain=chain,
            rekor_bundle=rekor_bundle,
        )
    except SignatureVerificationError:
        raise
    except _GARBAGE as e:
        raise SignatureVerificationError(
            MALFORMED, f"the signature is malformed: {_first_line(e)}", authority=name
        ) from e
    return _with(evidence, signed_digest=digest, kind="signature")


def verify_cosign_attestation(
    *,
    envelope: bytes,
    digest: str,
    authority: Authority,
    certificate: str | None = None,
    chain: str | None = None,
    rekor_bundle: str | None = None,
) -> tuple[Evidence, Statement]:
    """Verify a cosign attestation: a DSSE envelope holding an in-toto statement about `digest`.

    Raises:
        SignatureVerificationError: malformed, not satisfying `authority`, or a statement about another
            digest (code "subject-mismatch").
    """
    name = authority.name
    parse_digest(digest, authority=name)
    try:
        document = load_json_object(envelope, what="DSSE envelope", authority=name)
        payload_type = document.get("payloadType")
        signatures = document.get("signatures")
        if not isinstance(payload_type, str) or not isinstance(signatures, list) or not signatures:
            raise SignatureVerificationError(
                MALFORMED, "the DSSE envelope lacks payloadType or signatures", authority=name
            )
        payload = b64decode(document.get("payload"), what="DSSE payload", authority=name)
        sigs = [
            b64decode(s.get("sig") if isinstance(s, dict) else None, what="DSSE signature", authority=name)
            for s in signatures
        ]
        evidence = _verify_parts(
            authority,
            message=pae(payload_type, payload),
            signatures=sigs,
            content_sha256=None,
            dsse_payload=payload,
            certificate=certificate,
            chain=chain,
            rekor_bundle=rekor_bundle,
        )
        statement = parse_statement(
            payload_type,
            payload,
            envelope_sha256="sha256:" + hashlib.sha256(envelope).hexdigest(),
            authority=name,
        )
        require_covers(statement, digest, authority=name)
    except SignatureVerificationError:
        raise
    except _GARBAGE as e:
        raise SignatureVerificationError(
            MALFORMED, f"the attestation is malformed: {_first_line(e)}", authority=name
        ) from e
    return _with(evidence, signed_digest=digest, kind="attestation"), statement


def _with(evidence: Evidence, **changes: Any) -> Evidence:
    import dataclasses

    return dataclasses.replace(evidence, **changes)


def _parse_rekor_bundle(text: str, *, authority: str) -> tuple[dict[str, Any], bytes]:
    document = load_json_object(text, what="Rekor bundle", authority=authority)
    payload = document.get("Payload")
    set_b64 = document.get("SignedEntryTimestamp")
    if not isinstance(payload, dict):
        raise SignatureVerificationError(
            MALFORMED, "the Rekor bundle has no Payload object", authority=authority
        )
    body = payload.get("body")
    ok = (
        isinstance(body, str)
        and isinstance(payload.get("integratedTime"), int)
        and isinstance(payload.get("logIndex"), int)
        and isinstance(payload.get("logID"), str)
        and payload["logIndex"] >= 0
    )
    if not ok:
        raise SignatureVerificationError(
            MALFORMED,
            "the Rekor bundle Payload needs body (base64), integratedTime, logIndex and logID",
            authority=authority,
        )
    bytes.fromhex(payload["logID"])
    b64decode(body, what="Rekor entry body", authority=authority)
    return payload, b64decode(set_b64, what="signed entry timestamp", authority=authority)


def _load_certificate(pem: str, *, what: str, authority: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    except (ValueError, TypeError) as e:
        raise SignatureVerificationError(
            MALFORMED, f"the {what} is not a PEM certificate", authority=authority
        ) from e


def _verify_parts(
    authority: Authority,
    *,
    message: bytes,
    signatures: list[bytes],
    content_sha256: bytes | None,
    dsse_payload: bytes | None,
    certificate: str | None,
    chain: str | None,
    rekor_bundle: str | None,
) -> Evidence:
    name = authority.name
    rekor = _parse_rekor_bundle(rekor_bundle, authority=name) if rekor_bundle else None
    if isinstance(authority, KeyAuthority) and authority.trust_root is not None and rekor is None:
        raise SignatureVerificationError(
            TLOG,
            f"no transparency-log proof (Rekor bundle) was attached, and the trust root "
            f"{authority.trust_root.name} requires one for key signatures",
            authority=name,
        )
    if chain:
        try:
            x509.load_pem_x509_certificates(chain.encode())
        except (ValueError, TypeError) as e:
            raise SignatureVerificationError(
                MALFORMED, "the certificate chain is not PEM", authority=name
            ) from e

    subject = issuer = cert_sha = None
    identities: tuple[str, ...] = ()
    key: PublicKey
    if isinstance(authority, KeylessAuthority):
        from sigstore.errors import Error as SigstoreError

        from trustgate.verify._sigstore import IdentityPolicy, certificate_identity, classify

        if not certificate:
            raise SignatureVerificationError(
                MALFORMED, "a keyless signature needs its certificate (none was attached)", authority=name
            )
        if rekor is None:
            raise SignatureVerificationError(
                TLOG,
                "a keyless signature needs a transparency-log proof (no Rekor bundle was attached)",
                authority=name,
            )
        leaf = _load_certificate(certificate, what="signing certificate", authority=name)
        signed_at = epoch_time(rekor[0]["integratedTime"])
        try:
            authority.trust_root.verifier().verify_certificate_with_set(
                certificate=leaf,
                rekor_payload=rekor[0],
                signed_entry_timestamp=rekor[1],
                policy=IdentityPolicy(authority.identities),
            )
        except (SigstoreError, *_GARBAGE) as e:
            raise classify(
                e,
                authority=name,
                wanted=authority.describe(),
                certificate=leaf,
                signed_at=signed_at,
                root=authority.trust_root.name,
                cas=authority.trust_root.trusted_root.get_fulcio_certs(),
            ) from e
        key = leaf.public_key()  # type: ignore[assignment]
        subject, issuer, identities = certificate_identity(leaf, authority.identities)
        cert_sha = "sha256:" + hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
        key_id = _key_id(key)
        method = "keyless"
    else:
        assert isinstance(authority, KeyAuthority)
        key, key_id, method = authority.key, authority.key_id, "key"

    signature = _verify_any(key, signatures, message=message, authority=name, key_id=key_id)

    log_index = log_id = integrated = None
    check_log = rekor is not None and (
        isinstance(authority, KeylessAuthority) or authority.trust_root is not None
    )
    if rekor is not None and check_log:
        payload, set_signature = rekor
        if isinstance(authority, KeyAuthority):
            from sigstore.errors import VerificationError

            from trustgate.verify._sigstore import check_signed_entry_timestamp

            assert authority.trust_root is not None
            try:
                keyring = authority.trust_root.rekor_keyring(at=epoch_time(payload["integratedTime"]))
                check_signed_entry_timestamp(keyring, payload, set_signature)
            except (VerificationError, *_GARBAGE) as e:
                raise SignatureVerificationError(
                    TLOG,
                    "the Rekor signed entry timestamp does not verify with the log keys of the trust root "
                    f"{authority.trust_root.name}",
                    detail=_first_line(e),
                    authority=name,
                ) from e
        body = b64decode(payload["body"], what="Rekor entry body", authority=name)
        kind_version = load_json_object(body, what="Rekor entry body", authority=name)
        check_key_log_body(
            body,
            kind=str(kind_version.get("kind")),
            version=str(kind_version.get("apiVersion")),
            key=key,
            signature=signature,
            sha256_digest=content_sha256,
            dsse_payload=dsse_payload,
            dsse_signatures=signatures if dsse_payload is not None else None,
            authority=name,
        )
        log_index, log_id = int(payload["logIndex"]), str(payload["logID"])
        refuse_future_log_time(int(payload["integratedTime"]), authority=name)
        integrated = epoch_time(payload["integratedTime"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Evidence(
        authority=name,
        method=method,
        signed_digest="",
        subject=subject,
        issuer=issuer,
        identities=identities,
        key_id=key_id,
        certificate_sha256=cert_sha,
        log_index=log_index,
        log_id=log_id,
        integrated_time=integrated,
        timestamp_source="transparency-log" if integrated else None,
    )


def _verify_any(
    key: PublicKey, signatures: list[bytes], *, message: bytes, authority: str, key_id: str
) -> bytes:
    failure: SignatureVerificationError | None = None
    for signature in signatures:
        try:
            verify_with_key(key, signature, data=message, authority=authority, key_id=key_id)
            return signature
        except SignatureVerificationError as e:
            failure = e
    assert failure is not None
    raise failure
