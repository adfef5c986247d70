"""Verification summaries: SLSA Verification Summary Attestations (VSA v1) made, signed and judged.

Owns: the in-toto Statement (v1) with a `https://slsa.dev/verification_summary/v1`
predicate that a gate issues for an image that passed its rule; signing it
offline as a Sigstore bundle (DSSE) with a configured key; judging a
summary found on an image against a rule's `summaries.accept`: signed by
a key given for the verifier it names (or, keylessly, as the authority
given for it), with this digest as its primary subject, for this image's
repository (its `resourceUri`), PASSED, under this rule's policy digest,
fresh, and not revoked; re-checking an admission judged earlier (`recheck`:
revoked since? expired since?), which is what lets the verification cache
keep it; and reading a bundle embedded in its referrer's manifest
(`embedded_bundle`).
A summary is named by the sha256 of its signed DSSE payload (`summary_digest`),
which re-encoding the bundle cannot change. Pure: bytes and mappings
in, `SummaryError` out for anything wrong with a summary.
Leaves out: finding and attaching summaries in the registry (the verifier
and the gate), reading revocations from the decision log (the gate hands
them in as a set), and how the policy digest is computed
(`trustgate.artifacts.policy`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from trustgate import untrusted_json
from trustgate.config import SummaryAcceptance
from trustgate.errors import ConfigError, Error
from trustgate.oci import mediatypes as mt
from trustgate.oci.reference import InvalidReferenceError, Reference, canonical_name
from trustgate.verify import (
    KeyAuthority,
    KeylessAuthority,
    SignatureVerificationError,
    Statement,
    key_id,
    load_public_key,
    verify_bundle,
)

VSA_PREDICATE: Final = "https://slsa.dev/verification_summary/v1"
STATEMENT_V1: Final = "https://in-toto.io/Statement/v1"
IN_TOTO_PAYLOAD: Final = "application/vnd.in-toto+json"
# Producers may add fields named by URIs (the spec's parsing rules): the decision behind the summary.
DECISION_FIELD: Final = "https://trustgate.dev/verification_summary/decision/v1"
# An extension field (named by a URI, as DECISION_FIELD): the levels a summary claims follow these
# semantics (Build L1 from the built-in provenance policy, higher only as the operator asserts it:
# `summaries.issue.buildLevel`). Summaries without it (issued before) claimed Build L3 for any
# listed builder: they never meet `requireLevels`.
LEVELS_FIELD: Final = "https://trustgate.dev/verification_summary/levels/v2"
LEVELS_SEMANTICS: Final = {"buildLevel": "built-in provenance policy; above L1 as the operator asserts"}
ARTIFACT_TYPE: Final = mt.SIGSTORE_BUNDLE  # stored as cosign stores bundle attestations
PREDICATE_ANNOTATION: Final = "dev.sigstore.bundle.predicateType"  # on the referrer: discovery skips these
CREATED_ANNOTATION: Final = "org.opencontainers.image.created"
MAX_AGE_SECONDS: Final = 315_360_000  # the schema's maximum of maxAgeSeconds: 10 years
MAX_CANDIDATES: Final = 3  # newest summaries that may count verified per image before verifying in full
MAX_READS: Final = 2 * MAX_CANDIDATES  # summary referrers read per image (newest by annotation), junk too
PASSED: Final = "PASSED"

if TYPE_CHECKING:
    from trustgate.oci.client import Descriptor

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class SummaryError(Error):
    """A verification summary that does not count (`who` names the verifier, or where it was found)."""

    def __init__(self, who: str, reason: str) -> None:
        super().__init__(f"VSA from {who} ignored: {reason}")
        self.who = who
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verifier:
    id: str
    authority: KeyAuthority | KeylessAuthority


@dataclass(frozen=True, slots=True)
class Acceptance:
    """A rule's `summaries.accept`, keys loaded."""

    verifiers: tuple[Verifier, ...]
    max_age_seconds: float
    same_policy: bool
    clock_skew_seconds: float
    require_levels: tuple[str, ...] = ()  # verifiedLevels a summary must claim, every one

    @classmethod
    def from_config(
        cls,
        config: SummaryAcceptance,
        *,
        authorities: Mapping[str, KeyAuthority | KeylessAuthority] | None = None,
    ) -> Acceptance:
        """Load the verifiers' public keys, or take the `images.authorities` they name.

        Raises:
            ConfigError: a key does not parse, or a verifier names an authority not defined.
        """
        verifiers = []
        for v in config.verifiers:
            if v.authority is not None:
                found = (authorities or {}).get(v.authority)
                if found is None:
                    raise ConfigError(
                        f"summaries.accept: verifier {v.id!r} names authority {v.authority!r}, which "
                        "images.authorities does not define",
                        hint="define it under images.authorities (defined: "
                        f"{', '.join(sorted(authorities or {})) or 'none'}), or give the verifier's key",
                    )
                verifiers.append(Verifier(v.id, found))
                continue
            if v.key_pem is None:
                raise ConfigError(f"summaries.accept: verifier {v.id!r} has neither key nor authority")
            key = load_public_key(v.key_pem, where=v.key_origin)
            verifiers.append(
                Verifier(v.id, KeyAuthority(name=v.id, key=key, key_id=key_id(key), trust_root=None))
            )
        return cls(
            tuple(verifiers),
            config.max_age_seconds,
            config.same_policy,
            config.clock_skew_seconds,
            config.require_levels,
        )

    def keys_for(self, verifier_id: str) -> tuple[Verifier, ...]:
        """Every signer (key or authority) listed for `verifier_id`, in order: one id may be listed
        several times (rotation)."""
        return tuple(v for v in self.verifiers if v.id == verifier_id)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A summary that stood in for verifying: what the decision records."""

    digest: str  # sha256 of the signed DSSE payload (`summary_digest`: what `summaries revoke` names)
    verifier: str
    time_verified: str
    policy_digest: str
    decision: str | None  # the id of the decision that issued it
    verified_levels: tuple[str, ...]
    source: str = ""  # where it was found (referrers-api / referrers-tag)
    referrer: str = ""  # the referrer manifest digest
    # What a cached admission is re-checked against (`recheck`): the digests it lists (subjects and
    # resourceUri; revoking any revokes it), the bundle as stored (older revocations name it), and
    # when it stops counting (timeVerified + maxAgeSeconds).
    listed: tuple[str, ...] = ()
    bundle_digest: str = ""
    expires: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": "summary",
            "digest": self.digest,
            "verifier": self.verifier,
            "timeVerified": self.time_verified,
            "policyDigest": self.policy_digest,
            "verifiedLevels": list(self.verified_levels),
            "subjects": list(self.listed),
            "bundleDigest": self.bundle_digest,
            "expires": self.expires,
        }
        if self.decision:
            out["decision"] = self.decision
        if self.source:
            out["source"] = self.source
        if self.referrer:
            out["referrer"] = self.referrer
        return out


# -- issuing ----------------------------------------------------------------------------------------


def build_statement(
    *,
    subjects: Sequence[tuple[str, str]],
    resource_uri: str,
    verifier_id: str,
    policy_uri: str,
    policy_digest: str,
    input_attestations: Sequence[Mapping[str, Any]],
    verified_levels: Sequence[str],
    decision_id: str | None,
    time_verified: dt.datetime,
) -> dict[str, Any]:
    """An in-toto Statement v1 carrying a SLSA VSA v1 predicate with `verificationResult: PASSED`.

    Args:
        subjects: (name, "<algorithm>:<hex>") of each digest verified: the image, and the
            platform manifests where the rule looked at them; each under its own algorithm's key.
        resource_uri: the image, e.g. `oci://registry/repo@sha256:...`.
        policy_digest: "sha256:<hex>" of the rule (`CompiledRule.policy_digest`).
        input_attestations: `{"uri", "digest": {"sha256": hex}}` of each bundle verified.
        verified_levels: e.g. ["SLSA_BUILD_LEVEL_3"]; may be empty (the spec requires the array).
        decision_id: the decision-log id of the decision that verified it.
    """
    predicate: dict[str, Any] = {
        "verifier": {"id": verifier_id},
        "timeVerified": time_verified.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resourceUri": resource_uri,
        "policy": {"uri": policy_uri, "digest": {"sha256": _hex(policy_digest)}},
        "inputAttestations": [dict(a) for a in input_attestations],
        "verificationResult": PASSED,
        "verifiedLevels": list(verified_levels),
        "slsaVersion": "1.0",
    }
    predicate[LEVELS_FIELD] = dict(LEVELS_SEMANTICS)
    if decision_id:
        predicate[DECISION_FIELD] = {"id": decision_id}
    return {
        "_type": STATEMENT_V1,
        "subject": [{"name": name, "digest": _digest_set(digest)} for name, digest in subjects],
        "predicateType": VSA_PREDICATE,
        "predicate": predicate,
    }


def sign_statement(statement: Mapping[str, Any], key: PrivateKey) -> bytes:
    """A Sigstore bundle (v0.3) holding `statement` in a DSSE envelope signed with `key`; no log entry."""
    payload = json.dumps(statement, separators=(",", ":"), sort_keys=True).encode()
    t = IN_TOTO_PAYLOAD.encode()
    message = b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(message)
    else:
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    public = key.public_key()
    bundle = {
        "mediaType": mt.SIGSTORE_BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": key_id(public)}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": IN_TOTO_PAYLOAD,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }
    return json.dumps(bundle, separators=(",", ":")).encode()


def load_private_key(path: Path) -> PrivateKey:
    """The PEM private key summaries are signed with.

    Raises:
        ConfigError: unreadable, encrypted, or not an ECDSA, Ed25519 or RSA key.
    """
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as e:
        raise ConfigError(f"cannot read the summary signing key: {e.strerror or e}", where=str(path)) from e
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"the summary signing key is not an unencrypted PEM private key: {e}", where=str(path)
        ) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise ConfigError("the summary signing key must be ECDSA, Ed25519 or RSA", where=str(path))
    return key


# -- judging ----------------------------------------------------------------------------------------


def judge(
    payload: bytes,
    *,
    image_digest: str,
    image_name: str,
    acceptance: Acceptance,
    policy_digest: str,
    now: dt.datetime,
    revoked: Collection[str] = (),
    bundle_digest: str | None = None,
) -> Accepted:
    """Whether one summary found on `image_digest` may stand in for verifying it.

    Args:
        payload: the Sigstore bundle as stored.
        image_digest: the digest being admitted; it must be the summary's primary subject.
        image_name: the image's `registry/repository`: the one `resourceUri` must name.
        revoked: revoked digests: summaries' (`summary_digest`), images' (any subject of a summary
            revokes that summary for all its subjects), and, from before summaries were named by
            their payload, the sha256 of bundles as stored.
        bundle_digest: the sha256 of `payload` (computed when not given).

    Raises:
        SummaryError: it does not count; the reason says why (never anything else for bad bytes).
    """
    stored = bundle_digest or "sha256:" + hashlib.sha256(payload).hexdigest()
    # 1. Which summary and which verifier it claims, read before verifying: the name only to check
    #    revocations, the verifier only to pick the keys (the (signer, verifier) pair is what the
    #    spec says consumers must check).
    signed_bytes, claimed = _envelope(payload, stored)
    digest = "sha256:" + hashlib.sha256(signed_bytes).hexdigest()
    # 2. Revoked: the summary (by what its signature covers: a re-encoded bundle is the same
    #    summary), the bundle as stored (older revocations), or this image. Subjects after step 3.
    which = next((d for d in (digest, stored, image_digest) if d in revoked), None)
    if which is not None:
        raise SummaryError(digest, f"{which} is revoked (trustgate summaries revoke)")
    candidates = acceptance.keys_for(claimed)
    if not candidates:
        trusted = ", ".join(dict.fromkeys(v.id for v in acceptance.verifiers))
        raise SummaryError(claimed, f"verifier {claimed} is not trusted by this rule (trusted: {trusted})")
    # 3. The signature with one of that verifier's keys (every key listed for the id is tried:
    #    key rotation), and a subject naming this digest.
    failures: list[str] = []
    statement: Statement | None = None
    for chosen in candidates:
        try:
            _, statement = verify_bundle(payload, digest=image_digest, authority=chosen.authority)
            break
        except SignatureVerificationError as e:
            reason = f"{e.reason} [{e.code}]"
            if reason not in failures:
                failures.append(reason)
    else:
        raise SummaryError(claimed, "; ".join(failures))
    if statement is None:
        raise SummaryError(claimed, "a message signature, not a DSSE attestation")
    return _check(
        statement,
        claimed,
        digest=digest,
        stored=stored,
        image_digest=image_digest,
        image_name=image_name,
        acceptance=acceptance,
        policy_digest=policy_digest,
        now=now,
        revoked=revoked,
    )


def screen(
    payload: bytes,
    *,
    image_digest: str,
    image_name: str,
    acceptance: Acceptance,
    policy_digest: str,
    now: dt.datetime,
    revoked: Collection[str] = (),
) -> dt.datetime:
    """Every check of `judge` but the signature, on the statement as it stands (unverified): what
    can be told cheaply of a summary found on an image before verifying it. Returns the
    timeVerified it claims (to look at the newest first); never stands in for `judge`.

    Whoever can push can attach any number of summaries: those that cannot count (malformed, of
    another image, predicate or verifier, stale, under another policy) then spend none of the
    signatures admission verifies per image (`MAX_CANDIDATES`).

    Raises:
        SummaryError: it cannot count, signed or not; the reason says why.
    """
    stored = bundle_digest(payload)
    signed_bytes, claimed = _envelope(payload, stored)
    digest = "sha256:" + hashlib.sha256(signed_bytes).hexdigest()
    which = next((d for d in (digest, stored, image_digest) if d in revoked), None)
    if which is not None:
        raise SummaryError(digest, f"{which} is revoked (trustgate summaries revoke)")
    if not acceptance.keys_for(claimed):
        trusted = ", ".join(dict.fromkeys(v.id for v in acceptance.verifiers))
        raise SummaryError(claimed, f"verifier {claimed} is not trusted by this rule (trusted: {trusted})")
    raw = untrusted_json.loads(signed_bytes)  # parsed by `_envelope` already: an object
    subjects = raw.get("subject")
    parsed: list[tuple[str, Mapping[str, str]]] = []
    for subject in subjects if isinstance(subjects, list) else []:
        found = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(found, dict):
            parsed.append((str(subject.get("name", "")), {str(k): str(v) for k, v in found.items()}))
    statement = Statement(
        statement_type=str(raw.get("_type")),
        predicate_type=str(raw.get("predicateType")),
        subjects=tuple(parsed),
        predicate=raw.get("predicate"),
        envelope_sha256=stored,
    )
    accepted = _check(
        statement,
        claimed,
        digest=digest,
        stored=stored,
        image_digest=image_digest,
        image_name=image_name,
        acceptance=acceptance,
        policy_digest=policy_digest,
        now=now,
        revoked=revoked,
    )
    return _parse_time(accepted.time_verified, claimed)


def _check(
    statement: Statement,
    claimed: str,
    *,
    digest: str,
    stored: str,
    image_digest: str,
    image_name: str,
    acceptance: Acceptance,
    policy_digest: str,
    now: dt.datetime,
    revoked: Collection[str],
) -> Accepted:
    """Steps 4 to 6 of `judge`: the statement's predicate, subjects, age and policy."""
    # 4. The predicate.
    if statement.statement_type != STATEMENT_V1:
        raise SummaryError(claimed, f"statement type {statement.statement_type!r}, not {STATEMENT_V1}")
    if statement.predicate_type != VSA_PREDICATE:
        raise SummaryError(claimed, f"predicate type {statement.predicate_type!r}, not {VSA_PREDICATE}")
    predicate = statement.predicate
    if not isinstance(predicate, Mapping):
        raise SummaryError(claimed, "the predicate is not an object")
    verifier = predicate.get("verifier")
    if not isinstance(verifier, Mapping) or verifier.get("id") != claimed:
        raise SummaryError(claimed, "the signed predicate names another verifier")
    result = predicate.get("verificationResult")
    if result != PASSED:
        raise SummaryError(claimed, f"verificationResult is {result!r}, not {PASSED}")
    resource_uri = predicate.get("resourceUri")
    if not isinstance(resource_uri, str):
        raise SummaryError(claimed, "resourceUri is missing or not a string")
    # The digests it lists: a revocation of any of them revokes it for all its subjects.
    listed = [f"sha256:{str(d.get('sha256', '')).lower()}" for _, d in statement.subjects if "sha256" in d]
    _, at, uri_digest = resource_uri.rpartition("@")
    if at:
        listed.append(uri_digest.lower())
    which = next((d for d in listed if d in revoked), None)
    if which is not None:
        raise SummaryError(digest, f"{which}, which it lists, is revoked (trustgate summaries revoke)")
    # Only for its primary subject: the image the issuing rule judged (the first subject, and the
    # digest in resourceUri). A platform manifest it also lists was judged only through that index
    # (the index's signatures, say), which admitting the platform by its own digest would skip.
    primary = statement.subjects[0][1].get("sha256", "").lower() if statement.subjects else ""
    if f"sha256:{primary}" != image_digest.lower() or uri_digest.lower() != image_digest.lower():
        raise SummaryError(
            claimed,
            f"{image_digest} is not its primary subject ({resource_uri}): a summary counts only for "
            "the image it was issued for",
        )
    # And only in the repository it names (the spec: resourceUri must match the resource expected).
    # The same digest copied, with its referrers, into another repository was never judged there:
    # a rule's attestation policies may depend on the repository (`input.image.reference`).
    named = _resource_name(resource_uri)
    if named != _matching_name(image_name):
        raise SummaryError(
            claimed,
            f"it was issued for {named or resource_uri}, not {image_name}: a summary counts only in the "
            "repository it names",
        )
    levels = predicate.get("verifiedLevels", [])
    if not isinstance(levels, list) or not all(isinstance(v, str) for v in levels):
        raise SummaryError(claimed, "verifiedLevels is not a list of strings")
    # The levels this rule requires (the spec: verifiedLevels must contain the expected value):
    # under samePolicy false, what stands in for this rule's own requirements.
    if acceptance.require_levels and not isinstance(predicate.get(LEVELS_FIELD), Mapping):
        # Issued before the levels meant what they mean now (an older trustgate claimed Build L3
        # for any listed builder), or by another verifier: its levels cannot meet requireLevels.
        raise SummaryError(
            claimed,
            f"its verifiedLevels {levels} are not claimed as this rule's requireLevels expects "
            f"(it lacks {LEVELS_FIELD}, which summaries issued by this trustgate carry; older ones "
            "claimed Build L3 for any listed builder): issue it again",
        )
    lacking = [level for level in acceptance.require_levels if not _claims(levels, level)]
    if lacking:
        raise SummaryError(
            claimed,
            f"verifiedLevels {levels} lacks {', '.join(lacking)}, which this rule requires (requireLevels)",
        )
    # 5. Fresh: not older than maxAgeSeconds, not from further in the future than the skew allows.
    when = _parse_time(predicate.get("timeVerified"), claimed)
    age = (now - when).total_seconds()
    if -age > acceptance.clock_skew_seconds:  # before its expiry, which a far-future time cannot have
        raise SummaryError(
            claimed,
            f"timeVerified {predicate['timeVerified']} is {-age:.0f} s in the future, beyond the "
            f"clock skew allowed ({acceptance.clock_skew_seconds:g} s)",
        )
    try:
        if not math.isfinite(acceptance.max_age_seconds):
            raise OverflowError("maxAgeSeconds is not finite")
        expires = when + dt.timedelta(seconds=acceptance.max_age_seconds)
    except OverflowError as e:  # past year 9999: the schema's maximum keeps it from a valid config
        raise SummaryError(
            claimed,
            f"maxAgeSeconds {acceptance.max_age_seconds:g} after {predicate['timeVerified']} is no date "
            f"({e}): set maxAgeSeconds to at most {MAX_AGE_SECONDS} (10 years)",
        ) from e
    if age > acceptance.max_age_seconds:
        raise SummaryError(
            claimed,
            f"verified at {predicate['timeVerified']}, {age:.0f} s ago, beyond maxAgeSeconds "
            f"{acceptance.max_age_seconds:g}",
        )
    # 6. The same policy: the digest of the rule applied, computed the same way at every gate.
    policy = predicate.get("policy")
    digest_set = policy.get("digest") if isinstance(policy, Mapping) else None
    theirs = digest_set.get("sha256") if isinstance(digest_set, Mapping) else None
    if not isinstance(theirs, str):
        raise SummaryError(claimed, "policy.digest.sha256 is missing")
    if acceptance.same_policy and theirs.lower() != _hex(policy_digest):
        raise SummaryError(
            claimed,
            f"policy digest sha256:{theirs} is not this rule's ({policy_digest}): it was verified "
            "under another policy",
        )
    decision = predicate.get(DECISION_FIELD)
    decision_id = decision.get("id") if isinstance(decision, Mapping) else None
    return Accepted(
        digest=digest,
        verifier=claimed,
        time_verified=str(predicate["timeVerified"]),
        policy_digest="sha256:" + theirs.lower(),
        decision=decision_id if isinstance(decision_id, str) else None,
        verified_levels=tuple(levels),
        listed=tuple(dict.fromkeys(listed)),
        bundle_digest=stored,
        expires=expires.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
    )


def recheck(accepted: Mapping[str, Any], *, revoked: Collection[str], now: dt.datetime) -> str | None:
    """Why a summary admission judged earlier (`Accepted.to_json()`) no longer counts; None if it does.

    What a cached admission is re-checked against on every hit, so that a revocation or the
    summary's age reaches it as it would a fresh judgement: the summary, the bundle as stored and
    every digest it lists are not revoked, and `now` is not past `timeVerified + maxAgeSeconds`.
    Anything unreadable counts as "no longer" (the image is then judged again).
    """
    digest, expires = accepted.get("digest"), accepted.get("expires")
    listed, stored = accepted.get("subjects"), accepted.get("bundleDigest")
    if not isinstance(digest, str) or not isinstance(expires, str) or not isinstance(listed, list):
        return "not a summary admission with its digests and expiry"
    which = next((d for d in (digest, stored, *listed) if d in revoked), None)
    if which is not None:
        return f"{which} is revoked (trustgate summaries revoke)"
    try:
        until = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
    except ValueError:
        return f"expiry {expires!r} unreadable"
    if until.tzinfo is None or now > until:  # as `judge`: an age of exactly maxAgeSeconds counts
        return f"expired at {expires} (maxAgeSeconds)"
    return None


def embedded_bundle(manifest: Mapping[str, Any], layer: Descriptor) -> bytes | None:
    """The bundle embedded in a summary manifest's layer (the OCI descriptor's `data`), if it is there.

    Issued summaries carry their bundle in the manifest as well as in the layer's blob, so that
    admission reads it with the manifest. Embedded bytes count only when they have the layer's
    digest and size (as the image spec requires of `data`); otherwise None: fetch the blob.
    """
    layers = manifest.get("layers")
    first = layers[0] if isinstance(layers, list) and layers else None
    data = first.get("data") if isinstance(first, Mapping) else None
    if not isinstance(data, str) or len(data) > (layer.size + 2) // 3 * 4:
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        return None
    if len(raw) != layer.size or bundle_digest(raw) != layer.digest:
        return None
    return raw


def bundle_digest(payload: bytes) -> str:
    """The sha256 of a bundle as stored; not a summary's name (re-encoding changes it): `summary_digest`."""
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def summary_digest(payload: bytes) -> str:
    """A summary's name: the sha256 of the DSSE payload (the statement bytes) its signature covers.

    What decisions record and `trustgate summaries revoke` takes; the same for every encoding of
    the bundle.

    Raises:
        SummaryError: not a bundle with a base64 DSSE payload.
    """
    try:
        bundle = untrusted_json.loads(payload)
        signed = base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True)
    except (ValueError, KeyError, TypeError) as e:
        raise SummaryError(bundle_digest(payload), f"malformed: not a DSSE bundle ({e!r})") from e
    return "sha256:" + hashlib.sha256(signed).hexdigest()


def unverified_statement(payload: bytes) -> dict[str, Any] | None:
    """The statement in a bundle's DSSE envelope, not verified (to show it); None when unreadable."""
    try:
        bundle = untrusted_json.loads(payload)
        statement = untrusted_json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True))
    except (ValueError, KeyError, TypeError):
        return None
    return statement if isinstance(statement, dict) else None


def _envelope(payload: bytes, where: str) -> tuple[bytes, str]:
    """The DSSE payload bytes (unverified) and the verifier id its statement claims."""
    try:
        bundle = untrusted_json.loads(payload)
        signed = base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True)
        statement = untrusted_json.loads(signed)
        claimed = statement["predicate"]["verifier"]["id"]
    except (ValueError, KeyError, TypeError) as e:
        raise SummaryError(where, f"malformed: not a DSSE bundle with a predicate.verifier.id ({e!r})") from e
    if not isinstance(claimed, str) or not claimed:
        raise SummaryError(where, "malformed: predicate.verifier.id is not a string")
    return signed, claimed


def _resource_name(resource_uri: str) -> str | None:
    """The `registry/repository` an `oci://registry/repository@digest` resourceUri names, as
    `_matching_name` writes it; None when it names none."""
    scheme, _, rest = resource_uri.partition("://")
    name = rest.rpartition("@")[0]
    if scheme != "oci" or not name:
        return None
    try:
        ref = Reference.parse(name)
    except InvalidReferenceError:
        return None
    return _matching_name(ref.name)


def _matching_name(name: str) -> str:
    """`name` (`registry/repository`, as `Reference` prints it) as summaries compare it: Docker
    Hub's forms and a registry's default port are one name (`canonical_name`), on both sides."""
    return canonical_name(name) or name


def _parse_time(value: Any, who: str) -> dt.datetime:
    if not isinstance(value, str):
        raise SummaryError(who, "timeVerified is missing")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise SummaryError(who, f"timeVerified {value!r} is not an RFC 3339 timestamp") from e
    if when.tzinfo is None:
        raise SummaryError(who, f"timeVerified {value!r} has no time zone")
    return when


# Levels are small numbers: more digits are no level (int() of thousands of digits raises, found in
# review: an unsigned summary claiming one logged a traceback per admission).
_LEVEL = re.compile(r"(SLSA_[A-Z]+_LEVEL_)([0-9]{1,3})")


def _claims(levels: Sequence[str], required: str) -> bool:
    """Whether `levels` (a summary's verifiedLevels) claim `required`: that very value, or a higher
    level of the same track (the spec: each SLSA level implies all levels below it)."""
    if required in levels:
        return True
    want = _LEVEL.fullmatch(required)
    if want is None:
        return False
    for level in levels:
        have = _LEVEL.fullmatch(level)
        if have is not None and have[1] == want[1] and int(have[2]) >= int(want[2]):
            return True
    return False


def _digest_set(digest: str) -> dict[str, str]:
    """An in-toto DigestSet of an OCI digest: `{algorithm: hex}` (`sha512:...` under "sha512": found
    in review, a sha512 digest was issued under "sha256", which names another hash of other bytes).

    Raises:
        ValueError: `digest` is not `<algorithm>:<hex>`.
    """
    algorithm, colon, hexpart = digest.partition(":")
    if not colon or not algorithm or not hexpart:
        raise ValueError(f"{digest!r} is not an <algorithm>:<hex> digest")
    return {algorithm.lower(): hexpart.lower()}


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1].lower() if ":" in digest else digest.lower()
