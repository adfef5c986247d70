"""Glue around sigstore-python's `Verifier`: identities, trust-root time windows, classic cosign parts.

Owns: `TrustgateVerifier`, a `sigstore.verify.Verifier` with the gaps this
project needs closed (each numbered below), the identity policy that records who
signed, and the translation of sigstore's exceptions into `SignatureVerificationError`
codes and words. Leaves out: parsing of bundles and cosign annotations.

Gaps closed (sigstore 4.5):
1. A certificate authority only counts while its `validFor` window in the
   trusted root covers the signing time (sigstore accepts every CA ever listed).
2. Trust-root validity windows are closed intervals: a timestamp exactly at a
   TSA's `validFor.end` is inside it (sigstore treats the end as exclusive).
3. Rekor v1 `intoto` 0.0.2 entries (cosign attestations, bundle v0.2) are
   checked against the envelope: payload hash, signature and certificate.
4. Classic cosign signatures (certificate + signed entry timestamp, no
   inclusion proof) go through the same steps as a bundle: SET, chain at the
   integrated time, SCT, Sigstore X.509 profile, identity, validity window.
5. A transparency log's key only counts while its `validFor` window covers
   the entry's integrated time, and a CT log's key while it covers the
   certificate's issuance (its notBefore, when the SCT was made), as
   sigstore-js's `filterTLogAuthorities` does (sigstore accepts every key
   ever listed: a retired, perhaps compromised, log key signed for any time).
   An entry without an integrated time (only an inclusion proof and signed
   timestamps) is checked against every log key, as before.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import hashlib
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Store
from rfc3161_client import TimeStampResponse
from sigstore._internal.sct import verify_sct
from sigstore._internal.timestamp import TimestampSource, TimestampVerificationResult
from sigstore._internal.trust import CertificateAuthority, CTKeyring, Key, Keyring, KeyringPurpose
from sigstore._utils import KeyID
from sigstore.errors import CertValidationError, VerificationError
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import VerificationPolicy
from sigstore.verify.verifier import (
    _validate_dsse_v001_entry_body,
    _validate_hashedrekord_v002_dsse_entry_body,
)

from trustgate import untrusted_json
from trustgate.verify._material import epoch_time
from trustgate.verify.policy import (
    BAD_SIGNATURE,
    DIGEST_MISMATCH,
    EXPIRED_CERTIFICATE,
    IDENTITY_MISMATCH,
    MALFORMED,
    TIMESTAMP,
    TLOG,
    UNTRUSTED,
    IdentityMatcher,
    SignatureVerificationError,
)

_OIDC_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OIDC_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_OTHERNAME_USERNAME = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")


# ----------------------------------------------------------------------------- identities


def _der_utf8(value: bytes) -> str:
    """The text of a DER UTF8String (tag 0x0c), as Fulcio writes its v2 extensions."""
    if len(value) < 2 or value[0] != 0x0C:
        raise ValueError("not a DER UTF8String")
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    if offset + length != len(value):
        raise ValueError("DER UTF8String length does not match")
    return value[offset:].decode()


def certificate_identity(
    cert: x509.Certificate, identities: Sequence[IdentityMatcher] = ()
) -> tuple[str, str, tuple[str, ...]]:
    """The signer identity recorded for a certificate, its OIDC issuer, and all its identities.

    The identity is the first SAN (URI, email or Sigstore username) one of `identities` matches,
    the SAN the policy trusted (found in review: the first SAN was recorded, one the policy may not
    name at all); the first SAN where none does. Either part is "" when the certificate has none.
    Which identities a policy may match is `certificate_identities`.
    """
    subjects, issuer = certificate_identities(cert)
    matched = next((s for s in subjects if any(m.matches(s, issuer) for m in identities)), None)
    return matched or (subjects[0] if subjects else ""), issuer, subjects


def certificate_identities(cert: x509.Certificate) -> tuple[tuple[str, ...], str]:
    """Every signer identity of a certificate and its OIDC issuer: its URI, email and Sigstore
    username (other name 1.3.6.1.4.1.57264.1.7) SANs, as sigstore-python's `Identity` reads them
    (any of them matches; found in review: only the first was read, and a certificate whose second
    SAN was the wanted signer was refused). A username not in UTF-8 makes sigstore-python fail the
    certificate: no identity then, so nothing matches (errors="replace" gave one a regex took)."""
    subjects: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        subjects += san.get_values_for_type(x509.UniformResourceIdentifier)
        subjects += san.get_values_for_type(x509.RFC822Name)
        try:
            subjects += [
                o.value.decode()
                for o in san.get_values_for_type(x509.OtherName)
                if o.type_id == _OTHERNAME_USERNAME
            ]
        except UnicodeDecodeError:
            subjects = []
    issuer = ""
    for oid in (_OIDC_ISSUER_V2, _OIDC_ISSUER_V1):
        try:
            ext = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
        try:
            issuer = _der_utf8(raw) if oid == _OIDC_ISSUER_V2 else raw.decode()
        except (ValueError, UnicodeDecodeError):
            continue
        break
    return tuple(subjects), issuer


class IdentityMismatchError(VerificationError):
    """The certificate is valid but names a signer the policy does not trust."""

    def __init__(self, subject: str, issuer: str) -> None:
        super().__init__(f"certificate identity {subject!r} (issuer {issuer!r}) is not trusted")
        self.subject = subject
        self.issuer = issuer


class IdentityPolicy(VerificationPolicy):
    """A sigstore verification policy: the certificate matches one of the identity matchers."""

    def __init__(self, identities: tuple[IdentityMatcher, ...]) -> None:
        self._identities = identities

    def verify(self, cert: x509.Certificate) -> None:
        # Any SAN may match, as in sigstore-python and cosign; none when the certificate has none
        # (a regex taking "" passed a certificate without a SAN).
        subjects, issuer = certificate_identities(cert)
        if not any(m.matches(subject, issuer) for m in self._identities for subject in subjects):
            raise IdentityMismatchError(", ".join(subjects), issuer)


# ----------------------------------------------------------------------------- verifier


def _in_window(when: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or start <= when) and (end is None or when <= end)


class WindowedKeyring:
    """The keys of a trusted root's transparency or CT logs, each with its `validFor` window (5):
    `at(when)` is a keyring of those whose window covers `when` (built once per set of keys)."""

    def __init__(self, logs: Sequence[Any], *, what: str) -> None:
        self._what = what
        self._keys: list[tuple[Any, datetime | None, datetime | None]] = []
        for log in logs:
            key = log.public_key
            try:
                Key(key)  # what `Keyring` would skip (with a warning), skipped here too
            except VerificationError:
                continue
            window = key.valid_for
            self._keys.append(
                (key, _aware(window.start) if window else None, _aware(window.end) if window else None)
            )
        self._rings: dict[tuple[int, ...], Keyring] = {}
        self._lock = threading.Lock()

    def at(self, when: datetime | None) -> Keyring:
        """The keys valid at `when`; every key when None (no time to judge by)."""
        chosen = tuple(
            i for i, (_, start, end) in enumerate(self._keys) if when is None or _in_window(when, start, end)
        )
        ring = self._rings.get(chosen)
        if ring is None:
            if not chosen:
                ring = _NoKeys(f"no {self._what} key of the trusted root was valid at {when}")
            else:
                ring = Keyring([self._keys[i][0] for i in chosen])
            with self._lock:
                ring = self._rings.setdefault(chosen, ring)
        return ring


class _NoKeys(Keyring):
    """A keyring that refuses every signature, saying why (no key was valid at the time)."""

    def __init__(self, reason: str) -> None:
        super().__init__([])
        self._reason = reason

    def verify(self, *, key_id: KeyID, signature: bytes, data: bytes) -> None:
        raise VerificationError(self._reason)


def _aware(when: datetime | None) -> datetime | None:
    """A protobuf timestamp as sigstore reads it (naive means UTC); None for an unset one."""
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# The times the log keys of one verification are judged at (5), for sigstore's own steps, which
# ask the verifier's root for its keyrings without a time: (integrated time, certificate's notBefore).
_TIMES: contextvars.ContextVar[tuple[datetime | None, datetime | None]] = contextvars.ContextVar(
    "trustgate_log_key_times", default=(None, None)
)


class _BuiltKeyrings:
    """A `TrustedRoot` whose verification keyrings were built once, windowed by the times of the
    verification in progress (5); everything else is the root's."""

    def __init__(self, root: TrustedRoot, ct: WindowedKeyring, rekor: WindowedKeyring) -> None:
        self._root, self._ct, self._rekor = root, ct, rekor

    def ct_keyring(self, purpose: KeyringPurpose) -> Any:
        if purpose != KeyringPurpose.VERIFY:
            return self._root.ct_keyring(purpose)
        return self._ct.at(_TIMES.get()[1])

    def rekor_keyring(self, purpose: KeyringPurpose) -> Any:
        if purpose != KeyringPurpose.VERIFY:
            return self._root.rekor_keyring(purpose)
        return self._rekor.at(_TIMES.get()[0])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._root, name)


class TrustgateVerifier(Verifier):
    """`sigstore.verify.Verifier` with the gaps listed in the module docstring closed."""

    def __init__(self, *, trusted_root: TrustedRoot) -> None:
        super().__init__(trusted_root=trusted_root)
        self._authorities = [CertificateAuthority(ca) for ca in trusted_root._inner.certificate_authorities]
        self._stores: dict[tuple[int, ...], Store] = {}
        trusted_root.ct_keyring(KeyringPurpose.VERIFY)  # raises as sigstore does: no CT log keys
        trusted_root.rekor_keyring(KeyringPurpose.VERIFY)  # nor Rekor keys
        self._ct_keyring = WindowedKeyring(trusted_root._inner.ctlogs, what="CT log")
        self._rekor_keyring = WindowedKeyring(trusted_root._inner.tlogs, what="transparency log")
        # sigstore's own steps ask the root for these keyrings on every verification, parsing every
        # key again (~0.1 ms each); the root does not change, so they are built once.
        self._trusted_root = _BuiltKeyrings(trusted_root, self._ct_keyring, self._rekor_keyring)  # type: ignore[assignment]  # a TrustedRoot in all but name

    # (1) only the CAs whose validity window covers the signing time.
    def _verify_chain_at_time(
        self, certificate: x509.Certificate, timestamp_result: TimestampVerificationResult
    ) -> list[x509.Certificate]:
        when = timestamp_result.time
        chosen = tuple(
            i
            for i, ca in enumerate(self._authorities)
            if _in_window(when, ca.validity_period_start, ca.validity_period_end)
        )
        if not chosen:
            raise CertValidationError(
                f"no certificate authority of the trusted root was valid at {when.isoformat()}"
            )
        store = self._stores.get(chosen)
        if store is None:
            certs = [c for i in chosen for c in self._authorities[i].certificates(allow_expired=True)]
            store = self._stores.setdefault(chosen, Store(certs))
        return _chain_with_store(store, certificate, timestamp_result)

    # (2) closed validity interval for timestamp authorities.
    def _verify_signed_timestamp(
        self, timestamp_response: TimeStampResponse, message: bytes
    ) -> TimestampVerificationResult | None:
        from rfc3161_client import VerificationError as Rfc3161VerificationError
        from rfc3161_client import VerifierBuilder

        for authority in self._trusted_root.get_timestamp_authorities():
            certificates = authority.certificates(allow_expired=True)
            if len(certificates) < 2:
                continue
            builder = (
                VerifierBuilder().tsa_certificate(certificates[0]).add_root_certificate(certificates[-1])
            )
            for certificate in certificates[1:-1]:
                builder = builder.add_intermediate_certificate(certificate)
            try:
                builder.build().verify_message(timestamp_response, message)
            except Rfc3161VerificationError:
                continue
            gen_time = timestamp_response.tst_info.gen_time
            if _in_window(gen_time, authority.validity_period_start, authority.validity_period_end):
                return TimestampVerificationResult(source=TimestampSource.TIMESTAMP_AUTHORITY, time=gen_time)
        return None

    # (3) integrated time of Rekor v1 intoto 0.0.2 entries counts like that of dsse/hashedrekord.
    def _establish_time(self, bundle: Bundle) -> list[TimestampVerificationResult]:
        kind_version = bundle.log_entry._inner.kind_version
        if (kind_version.kind, kind_version.version) != ("intoto", "0.0.2"):
            return super()._establish_time(bundle)
        results: list[TimestampVerificationResult] = []
        if bundle.verification_material.timestamp_verification_data:
            if not self._trusted_root.get_timestamp_authorities():
                raise VerificationError("the bundle has a signed timestamp but the root has no TSA")
            results.extend(self._verify_timestamp_authority(bundle))
        entry = bundle.log_entry._inner
        if entry.integrated_time and entry.inclusion_promise:
            when = epoch_time(entry.integrated_time)
            results.append(
                TimestampVerificationResult(source=TimestampSource.TRANSPARENCY_SERVICE, time=when)
            )
        return results

    # (5) sigstore's steps 0-6, with the log keys judged at this bundle's times.
    def _verify_common_signing_cert(self, bundle: Bundle, policy: VerificationPolicy) -> None:
        entry = bundle.log_entry._inner
        logged = epoch_time(entry.integrated_time) if entry.integrated_time else None
        token = _TIMES.set((logged, bundle.signing_certificate.not_valid_before_utc))
        try:
            super()._verify_common_signing_cert(bundle, policy)
        finally:
            _TIMES.reset(token)

    def verify_dsse(self, bundle: Bundle, policy: VerificationPolicy) -> tuple[str, bytes]:
        from sigstore import dsse

        self._verify_common_signing_cert(bundle, policy)
        envelope = bundle._dsse_envelope
        if envelope is None:
            raise VerificationError("the bundle has no DSSE envelope")
        dsse._verify(bundle.signing_certificate.public_key(), envelope)  # type: ignore[arg-type]
        kind_version = bundle.log_entry._inner.kind_version
        body = bundle.log_entry._inner.canonicalized_body
        match (kind_version.kind, kind_version.version):
            case ("hashedrekord", "0.0.2"):
                _validate_hashedrekord_v002_dsse_entry_body(bundle)
            case ("dsse", "0.0.1"):
                _validate_dsse_v001_entry_body(bundle)
            case ("intoto", "0.0.2"):
                check_intoto_v002_body(
                    body,
                    payload=envelope._inner.payload,
                    signatures=[s.sig for s in envelope._inner.signatures],
                    verifier_pem=bundle.signing_certificate.public_bytes(serialization.Encoding.PEM),
                )
            case (kind, version):
                raise VerificationError(f"unsupported DSSE log entry type: {kind}/{version}")
        return envelope._inner.payload_type, envelope._inner.payload

    # (4) classic cosign: certificate + signed entry timestamp, no inclusion proof.
    def verify_certificate_with_set(
        self,
        *,
        certificate: x509.Certificate,
        rekor_payload: dict[str, Any],
        signed_entry_timestamp: bytes,
        policy: VerificationPolicy,
    ) -> datetime:
        """Steps 0-6 of bundle verification for a certificate whose log entry has only a SET.

        Returns the verified integrated time. Raises sigstore's `VerificationError` family.
        """
        when = epoch_time(rekor_payload["integratedTime"])
        check_signed_entry_timestamp(self._rekor_keyring.at(when), rekor_payload, signed_entry_timestamp)
        result = TimestampVerificationResult(source=TimestampSource.TRANSPARENCY_SERVICE, time=when)
        chain = self._verify_chain_at_time(certificate, result)
        try:
            verify_sct(certificate, chain, CTKeyring(self._ct_keyring.at(certificate.not_valid_before_utc)))
        except VerificationError as e:
            raise VerificationError(f"failed to verify SCT on signing certificate: {e}") from e
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise VerificationError("Key usage is not of type `digital signature`")
        extended = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CODE_SIGNING not in extended:
            raise VerificationError("Extended usage does not contain `code signing`")
        policy.verify(certificate)
        if not (certificate.not_valid_before_utc <= when <= certificate.not_valid_after_utc):
            raise VerificationError("invalid signing cert: expired at time of signing")
        return when


def _chain_with_store(
    store: Store,
    certificate: x509.Certificate,
    timestamp_result: TimestampVerificationResult,
) -> list[x509.Certificate]:
    from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder
    from cryptography.x509.verification import VerificationError as X509VerificationError

    # The same policy sigstore builds in `_verify_chain_at_time`, with the windowed store.
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    client = (
        PolicyBuilder()
        .store(store)
        .time(timestamp_result.time)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        return client.verify(certificate, []).chain[1:]
    except (X509VerificationError, x509.UnsupportedGeneralNameType) as e:
        raise CertValidationError(f"failed to build timestamp certificate chain: {e}") from e


def check_signed_entry_timestamp(keyring: Any, payload: dict[str, Any], signature: bytes) -> None:
    """Verify a Rekor signed entry timestamp (inclusion promise) over the canonical entry payload."""
    canonical = rfc8785.dumps(
        {
            "body": payload["body"],
            "integratedTime": int(payload["integratedTime"]),
            "logID": payload["logID"],
            "logIndex": int(payload["logIndex"]),
        }
    )
    try:
        keyring.verify(key_id=KeyID(bytes.fromhex(payload["logID"])), signature=signature, data=canonical)
    except VerificationError as e:
        raise VerificationError(f"SET: invalid inclusion promise: {e}") from e


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise VerificationError("log entry field is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise VerificationError("log entry field is not valid base64") from e


def _b64_layers(value: Any) -> list[bytes]:
    """`value` base64-decoded once and, when that is base64 text again, twice."""
    once = _b64(value)
    try:
        return [once, _b64(once.decode("ascii"))]
    except (VerificationError, UnicodeDecodeError):
        return [once]


def check_intoto_v002_body(
    body: bytes,
    *,
    payload: bytes,
    signatures: list[bytes],
    verifier_pem: bytes | None,
    key_der: bytes | None = None,
) -> None:
    """The Rekor `intoto` 0.0.2 entry records this envelope: payload hash, signatures and verifier.

    The stored envelope hash cannot be checked (the envelope JSON is not canonical), as with `dsse`.
    """
    try:
        entry = untrusted_json.loads(body)
        content = entry["spec"]["content"]
        payload_hash = content["payloadHash"]
        recorded = content["envelope"]["signatures"]
    except (ValueError, KeyError, TypeError) as e:
        raise VerificationError(f"invalid intoto log entry: {e}") from e
    if (
        payload_hash.get("algorithm") != "sha256"
        or payload_hash.get("value") != hashlib.sha256(payload).hexdigest()
    ):
        raise VerificationError("log entry payload hash does not match bundle")
    if not isinstance(recorded, list) or len(recorded) != len(signatures):
        raise VerificationError("log entry signatures do not match bundle")
    for sig, entry_sig in zip(signatures, recorded, strict=True):
        if not isinstance(entry_sig, dict):
            raise VerificationError("log entry signatures do not match bundle")
        # Rekor stores the envelope's base64 text base64-encoded again; accept one or two layers.
        if sig not in _b64_layers(entry_sig.get("sig")):
            raise VerificationError("log entry signatures do not match bundle")
        recorded_verifier = next(
            (v for v in _b64_layers(entry_sig.get("publicKey")) if v.startswith(b"-----BEGIN")), b""
        )
        if verifier_pem is not None and not _same_certificate(recorded_verifier, verifier_pem):
            raise VerificationError("log entry verifier does not match the signing certificate")
        if key_der is not None and pem_key_der(recorded_verifier) != key_der:
            raise VerificationError("log entry verifier does not match the key")


def _same_certificate(recorded: bytes, expected_pem: bytes) -> bool:
    """Both PEM texts hold the same certificate (compared as DER: PEM line breaks vary)."""
    try:
        left = x509.load_pem_x509_certificate(recorded)
        right = x509.load_pem_x509_certificate(expected_pem)
    except ValueError:
        return False
    return left == right


def pem_key_der(pem: bytes) -> bytes | None:
    """The DER SubjectPublicKeyInfo of a PEM public key or certificate; None when it is neither."""
    try:
        if b"CERTIFICATE" in pem:
            key = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)  # type: ignore[assignment]
    except ValueError:
        return None
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# ----------------------------------------------------------------------------- errors in words


def classify(
    error: Exception,
    *,
    authority: str,
    wanted: str = "",
    certificate: x509.Certificate | None = None,
    signed_at: datetime | None = None,
    root: str = "",
    cas: Sequence[x509.Certificate] = (),
) -> SignatureVerificationError:
    """A sigstore/cryptography failure as a `SignatureVerificationError` with a code and a reason in words.

    With the trust root's certificate authorities (`cas`), a certificate none of them issued is
    reported as such first, whatever sigstore tripped over first (its log entry, from the same
    foreign instance, is checked before the chain and would send the reader to the log).
    """
    detail = " ".join(str(error).split()) or type(error).__name__
    low = detail.lower()
    if certificate is not None and cas and not _issued_by_any(certificate, cas):
        known = "; ".join(dict.fromkeys(ca.subject.rfc4514_string() for ca in cas))
        issuer = certificate.issuer.rfc4514_string() or "an unnamed CA"
        return SignatureVerificationError(
            UNTRUSTED,
            f"the signing certificate was issued by {issuer}, "
            f"which is not a certificate authority of the trust root {root or authority} (expected one of: "
            f"{known}); it was signed with another Sigstore instance: add that instance's "
            "trusted_root.json under images.trustRoots, or sign with this one",
            detail=detail,
            authority=authority,
        )
    if isinstance(error, IdentityMismatchError):
        by = error.subject or "a certificate without an identity"
        return SignatureVerificationError(
            IDENTITY_MISMATCH,
            f"signed, but by {by} (issuer {error.issuer or 'unknown'}), and the policy wants {wanted}",
            detail=detail,
            authority=authority,
        )
    if (
        certificate is not None
        and signed_at is not None
        and ("not valid at validation time" in low or "expired at time of signing" in low)
    ):
        before, after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        if not (before <= signed_at <= after):
            return SignatureVerificationError(
                EXPIRED_CERTIFICATE,
                f"the signing certificate was valid from {_rfc3339(before)} to {_rfc3339(after)}, "
                f"but the signature was logged at {_rfc3339(signed_at)}",
                detail=detail,
                authority=authority,
            )
    if "expired at time of signing" in low:
        return SignatureVerificationError(
            EXPIRED_CERTIFICATE,
            "the signing certificate was not valid when the signature was made",
            detail=detail,
            authority=authority,
        )
    if isinstance(error, CertValidationError) or "sct" in low or "certificate authority" in low:
        return SignatureVerificationError(
            UNTRUSTED,
            "the signing certificate does not chain to a certificate authority of the trust root "
            f"{root or authority} (or its certificate-transparency proof is invalid)",
            detail=detail,
            authority=authority,
        )
    if low.startswith("invalid log entry") or "inconsistent with other materials" in low:
        return SignatureVerificationError(
            TLOG,
            "the transparency-log entry does not verify or does not match the signature",
            detail=detail,
            authority=authority,
        )
    if "verified time" in low or "timestamp" in low:
        return SignatureVerificationError(
            TIMESTAMP,
            "no trusted time for the signature: its timestamps do not verify against the trust root",
            detail=detail,
            authority=authority,
        )
    if "message digest mismatch" in low:
        return SignatureVerificationError(
            DIGEST_MISMATCH,
            "the signature is for another artifact (its message digest differs)",
            detail=detail,
            authority=authority,
        )
    if any(w in low for w in ("log entry", "inclusion", "checkpoint", "set:", "transparency log", "merkle")):
        return SignatureVerificationError(
            TLOG,
            "the transparency-log entry does not verify or does not match the signature",
            detail=detail,
            authority=authority,
        )
    if "invalid bundle" in low or "malformed" in low:
        return SignatureVerificationError(
            MALFORMED, f"the signature material is malformed: {detail}", authority=authority
        )
    return SignatureVerificationError(
        BAD_SIGNATURE, "the signature does not verify", detail=detail, authority=authority
    )


def _issued_by_any(certificate: x509.Certificate, cas: Sequence[x509.Certificate]) -> bool:
    """Whether one of `cas` names itself as `certificate`'s issuer (by key identifier, else by name)."""
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    for ca in cas:
        if aki is not None:
            try:
                ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                ski = None
            if ski is not None:
                if ski == aki:
                    return True
                continue
        if ca.subject == certificate.issuer:
            return True
    return False


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339(when: datetime) -> str:
    """`when` as RFC 3339 in UTC ("2026-01-02T03:04:05Z")."""
    return _rfc3339(when)
