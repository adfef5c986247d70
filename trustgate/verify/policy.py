"""What a signature must satisfy, and what a verification proves.

Owns: `IdentityMatcher` (certificate identity and OIDC issuer, exact or full-match
regex), the two kinds of authority (`KeyAuthority`, `KeylessAuthority`),
`Evidence` (what an auditor needs later), `Statement` (a verified in-toto
statement) and `VerificationFailed` ("verified bad", with a code and a reason in
words). Leaves out: the cryptography (`bundle.py`, `cosign.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trustgate.errors import ConfigError, VerificationError
from trustgate.verify.trust import PublicKey, TrustRoot

# Failure codes. "could not verify" (a registry down) is not here: it never reaches this layer.
IDENTITY_MISMATCH = "identity-mismatch"  # a valid signature by someone the policy does not trust
BAD_SIGNATURE = "bad-signature"  # the signature does not verify (wrong key, altered content)
UNTRUSTED = "untrusted"  # the certificate does not chain to the trust root (or its CT proof fails)
EXPIRED_CERTIFICATE = "expired-certificate"  # the certificate was not valid when the entry was logged
DIGEST_MISMATCH = "digest-mismatch"  # the signature covers another artifact
SUBJECT_MISMATCH = "subject-mismatch"  # an attestation whose subjects do not include the digest
TLOG = "tlog"  # the transparency log entry, its proof or its promise is invalid or inconsistent
TIMESTAMP = "timestamp"  # no trusted time for the signature (TSA or log)
MALFORMED = "malformed"  # not a bundle/signature at all: bad JSON, bad base64, wrong types, truncated
UNSUPPORTED = "unsupported"  # well-formed, but of a kind this verifier cannot check

CODES = (
    IDENTITY_MISMATCH,
    BAD_SIGNATURE,
    UNTRUSTED,
    EXPIRED_CERTIFICATE,
    DIGEST_MISMATCH,
    SUBJECT_MISMATCH,
    TLOG,
    TIMESTAMP,
    MALFORMED,
    UNSUPPORTED,
)


class SignatureVerificationError(VerificationError):
    """Verified bad: the signature material exists and does not satisfy the authority.

    Attributes:
        code: one of `CODES` ("identity-mismatch", "bad-signature", "untrusted", ...).
        reason: what went wrong, in words a release engineer understands.
        detail: the lower-level cause (sigstore's or cryptography's message), for debugging.
    """

    def __init__(self, code: str, reason: str, *, detail: str = "", authority: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.detail = detail
        self.authority = authority

    def __str__(self) -> str:
        return f"{self.reason} [{self.code}]"

    def to_json(self) -> dict[str, Any]:
        """The failure as a JSON object (code, reason, detail, authority)."""
        return {"code": self.code, "reason": self.reason, "detail": self.detail, "authority": self.authority}


VerificationFailed = SignatureVerificationError  # the name before the naming rule; kept importable


def _compile(pattern: str | None, what: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"invalid {what} regular expression {pattern!r}: {e}") from e


@dataclass(frozen=True)
class IdentityMatcher:
    """A trusted signer: certificate identity (SAN) and OIDC issuer, each exact or a full-match regex.

    At least one of `subject`/`subject_regex` and one of `issuer`/`issuer_regex` is required: an
    identity without an issuer would accept the same name from any identity provider.

    Raises:
        ConfigError: a part is missing, given twice, or a regex does not compile.
    """

    subject: str | None = None
    subject_regex: str | None = None
    issuer: str | None = None
    issuer_regex: str | None = None
    _subject_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _issuer_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.subject is None) == (self.subject_regex is None):
            raise ConfigError("an identity needs exactly one of subject or subject_regex")
        if (self.issuer is None) == (self.issuer_regex is None):
            raise ConfigError("an identity needs exactly one of issuer or issuer_regex")
        object.__setattr__(self, "_subject_re", _compile(self.subject_regex, "subject"))
        object.__setattr__(self, "_issuer_re", _compile(self.issuer_regex, "issuer"))

    def matches(self, subject: str, issuer: str) -> bool:
        """True when the certificate's identity and issuer both satisfy this matcher."""
        if self._subject_re is not None:
            subject_ok = self._subject_re.fullmatch(subject) is not None
        else:
            subject_ok = subject == self.subject
        if self._issuer_re is not None:
            issuer_ok = self._issuer_re.fullmatch(issuer) is not None
        else:
            issuer_ok = issuer == self.issuer
        return subject_ok and issuer_ok

    def describe(self) -> str:
        """The matcher in words: "<subject> (issuer <issuer>)", regexes marked as such."""
        subject = self.subject if self.subject is not None else f"an identity matching {self.subject_regex}"
        issuer = self.issuer if self.issuer is not None else f"an issuer matching {self.issuer_regex}"
        return f"{subject} (issuer {issuer})"


@dataclass(frozen=True)
class KeyAuthority:
    """Signatures made with one public key (a cosign key pair, a KMS key).

    The transparency log entry is checked when the signature carries one and `trust_root` is given.
    """

    name: str
    key: PublicKey
    key_id: str
    trust_root: TrustRoot | None = None


@dataclass(frozen=True)
class KeylessAuthority:
    """Sigstore keyless signatures: a certificate from the root's CA for one of `identities`."""

    name: str
    trust_root: TrustRoot
    identities: tuple[IdentityMatcher, ...]

    def __post_init__(self) -> None:
        if not self.identities:
            raise ConfigError(f"keyless authority {self.name!r} names no identity")

    def describe(self) -> str:
        """The identities this authority accepts, in words."""
        return " or ".join(m.describe() for m in self.identities)


Authority = KeyAuthority | KeylessAuthority


@dataclass(frozen=True)
class Evidence:
    """What a verified signature proves, for the decision and the auditor."""

    authority: str
    method: str  # "key" | "keyless"
    signed_digest: str  # "sha256:<hex>" the signature covers
    subject: str | None = None  # certificate identity (SAN)
    issuer: str | None = None  # OIDC issuer
    key_id: str | None = None
    certificate_sha256: str | None = None
    log_index: int | None = None
    log_id: str | None = None
    integrated_time: str | None = None  # RFC 3339, UTC
    kind: str = "signature"  # "signature" | "attestation"
    timestamp_source: str | None = None  # "transparency-log" | "timestamp-authority"
    # every identity (SAN) of the certificate, URIs first (`certificate_identities`): signatures
    # sharing any of them are one signer toward a threshold (`subject` is the one the policy
    # matched); not recorded
    identities: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The evidence as a JSON object; absent parts are null."""
        return {
            "authority": self.authority,
            "method": self.method,
            "kind": self.kind,
            "signed_digest": self.signed_digest,
            "subject": self.subject,
            "issuer": self.issuer,
            "key_id": self.key_id,
            "certificate_sha256": self.certificate_sha256,
            "log_index": self.log_index,
            "log_id": self.log_id,
            "integrated_time": self.integrated_time,
            "timestamp_source": self.timestamp_source,
        }


@dataclass(frozen=True)
class Statement:
    """An in-toto Statement taken from a verified DSSE envelope."""

    statement_type: str
    predicate_type: str
    subjects: tuple[tuple[str, Mapping[str, str]], ...]  # (name, {"sha256": hex})
    predicate: Any
    envelope_sha256: str  # "sha256:<hex>" of the envelope as stored

    def covers(self, digest: str) -> bool:
        """True when one of the subjects has `digest` ("<algorithm>:<hex>", compared case-insensitively)."""
        algorithm, _, value = digest.partition(":")
        if not value:
            return False
        value = value.lower()
        return any(str(d.get(algorithm, "")).lower() == value for _, d in self.subjects)

    def to_json(self) -> dict[str, Any]:
        """The statement as a JSON object (the policy input form)."""
        return {
            "_type": self.statement_type,
            "predicateType": self.predicate_type,
            "subject": [{"name": n, "digest": dict(d)} for n, d in self.subjects],
            "predicate": self.predicate,
            "envelope_sha256": self.envelope_sha256,
        }
