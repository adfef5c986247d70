"""Issuing verification summaries (SLSA VSAs) for images that passed their rule, and attaching them.

Owns: what goes into the summary of one verified `ImageResult` (its digests, the
bundles verified, the rule's policy digest, the levels the rule establishes,
the decision id) and storing the signed bundle as an OCI 1.1 referrer of the
image, embedded in the referrer's manifest as well as its blob (with the
`sha256-<hex>` referrers tag kept up to date where the registry lacks the
referrers API). Leaves out: the format and signing
(`trustgate.artifacts.summaries`) and when to issue (the gate: at `check` and
`presync`, for images verified in full).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustgate.artifacts import summaries
from trustgate.artifacts.policy import CompiledRule, ImagePolicy
from trustgate.config import SummaryAcceptance, SummaryIssuing, builders_listed
from trustgate.model import ImageResult
from trustgate.oci import mediatypes as mt
from trustgate.oci.client import Registry, RegistryError
from trustgate.oci.reference import Reference

_log = logging.getLogger("trustgate.images")
_EMPTY = b"{}"
_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")  # as the verifier writes it
_PROVENANCE = ("https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2")
_BUILTIN_SLSA = "builtin:slsa-provenance"


@dataclass(frozen=True, slots=True)
class Issuer:
    """Signs and attaches summaries with one key; thread-safe (no state beyond the key)."""

    settings: SummaryIssuing
    key: summaries.PrivateKey

    @classmethod
    def from_config(cls, settings: SummaryIssuing) -> Issuer:
        """Load the signing key.

        Raises:
            ConfigError: the key cannot be read or is not a usable private key.
        """
        return cls(settings, summaries.load_private_key(settings.key_path))

    def prepare(
        self,
        policy: ImagePolicy,
        image: ImageResult,
        *,
        decision_id: str | None,
        now: dt.datetime | None = None,
    ) -> Signed | None:
        """Sign a summary of `image` (attached once the decision is recorded: `attach`).

        Returns None for an image that was not verified in full under a rule (nothing to
        summarise: a summary is never issued on the strength of another summary, nor of a
        stale result, which would restart `maxAgeSeconds` on old evidence).
        """
        if image.status != "verified" or image.digest is None or image.rule is None:
            return None
        if image.cache == "stale":  # old evidence served while the registry failed: not re-verified now
            return None
        if image.summary is not None and image.summary.get("path") == "summary":
            return None
        rule = next((r for r in policy.rules if r.rule.name == image.rule), None)
        if rule is None:
            return None
        # Dated when the evidence was verified, not now: a result the cache serves for its TTL would
        # otherwise be vouched for afresh (evidence deleted since, maxAgeSeconds restarted). A
        # cached result without that time (an older trustgate's, in a shared cache) is not issued,
        # nor one whose time is not as the verifier writes it or lies in the future (the shared
        # cache is written by other replicas: found in review, a far-future or out-of-range time
        # was signed as is, or crashed `check`).
        current = now or dt.datetime.now(dt.UTC)
        if image.verified_at is not None:
            skew = rule.acceptance.clock_skew_seconds if rule.acceptance is not None else _SKEW
            verified = _verified_at(image.verified_at, current, skew)
            if verified is None:
                return None
        elif image.cache == "miss":
            verified = current
        else:
            return None
        ref = Reference.parse(image.reference)
        name = f"{ref.registry}/{ref.repository}"
        subjects = [(name, image.digest)]
        for record in image.attestations:  # platform manifests the rule looked at
            digest = record.get("digest")
            if isinstance(digest, str) and all(digest != d for _, d in subjects):
                subjects.append((name, digest))
        try:
            statement = summaries.build_statement(
                subjects=subjects,
                resource_uri=f"oci://{name}@{image.digest}",
                verifier_id=self.settings.verifier_id,
                policy_uri=self.settings.policy_uri or f"trustgate:images/rules/{rule.rule.name}",
                policy_digest=rule.policy_digest,
                input_attestations=_inputs(name, image),
                verified_levels=_levels(rule, image, policy.data),
                decision_id=decision_id,
                time_verified=verified,
            )
        except (OverflowError, ValueError) as e:  # no date or value a statement can hold: none issued
            _log.warning("no verification summary issued for %s: %s", image.reference, e)
            return None
        bundle = summaries.sign_statement(statement, self.key)
        issued: dict[str, Any] = {
            "digest": summaries.summary_digest(bundle),  # what the signature covers: the summary's name
            "verifier": self.settings.verifier_id,
            "timeVerified": statement["predicate"]["timeVerified"],
            "policyDigest": rule.policy_digest,
            "subjects": [d for _, d in subjects],
        }
        return Signed(ref, image.digest, bundle, issued)


@dataclass(frozen=True, slots=True)
class Signed:
    """A signed summary waiting to be attached to its image."""

    ref: Reference
    digest: str  # the image's
    bundle: bytes
    record: dict[str, Any]  # what the decision records (mutable: the referrer is added when attached)

    def attach(self, registry: Registry) -> str | None:
        """Attach it; None, or why it could not be (the image passed all the same)."""
        try:
            referrer, source = attach(
                registry, self.ref, self.digest, self.bundle, self.record["timeVerified"]
            )
        except RegistryError as e:
            return f"could not attach it ({e.kind}): {e.message}"
        self.record.update(referrer=referrer, source=source)
        return None


def attach(registry: Registry, ref: Reference, digest: str, bundle: bytes, created: str) -> tuple[str, str]:
    """Push `bundle` as a referrer of `digest`; returns (referrer digest, "referrers-api" | "referrers-tag").

    Raises:
        RegistryError: the registry refused a push or could not be asked.
    """
    bare = Reference(registry=ref.registry, repository=ref.repository)
    subject = registry.manifest(bare, digest)
    if subject is None:
        raise RegistryError("not-found", f"{bare.name}@{digest} is gone", registry=ref.registry)
    annotations = {
        summaries.PREDICATE_ANNOTATION: summaries.VSA_PREDICATE,
        summaries.CREATED_ANNOTATION: created,
    }
    empty = registry.push_blob(bare, _EMPTY)
    layer = registry.push_blob(bare, bundle)
    # The bundle is embedded too (the descriptor's `data`): admission then reads it with the
    # manifest, one round trip fewer; tools that ignore `data` read the blob.
    embedded = base64.b64encode(bundle).decode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": summaries.ARTIFACT_TYPE,
            "config": {"mediaType": mt.OCI_EMPTY, "digest": empty, "size": len(_EMPTY)},
            "layers": [
                {"mediaType": summaries.ARTIFACT_TYPE, "digest": layer, "size": len(bundle), "data": embedded}
            ],
            "subject": {"mediaType": subject.media_type, "digest": digest, "size": len(subject.raw)},
            "annotations": annotations,
        },
        separators=(",", ":"),
    ).encode()
    pushed = registry.push_manifest(bare, manifest, mt.OCI_MANIFEST)
    _, source = registry.referrers(bare, digest)
    if source == "referrers-tag":  # no referrers API: clients find it through the tag index
        tag = digest.replace(":", "-", 1)
        current = registry.manifest(bare, tag)
        entries: list[Any] = list(current.json.get("manifests", [])) if current is not None else []
        if all(isinstance(e, Mapping) and e.get("digest") != pushed for e in entries):
            entries.append(
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": pushed,
                    "size": len(manifest),
                    "artifactType": summaries.ARTIFACT_TYPE,
                    "annotations": annotations,
                }
            )
        index = json.dumps(
            {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}, separators=(",", ":")
        ).encode()
        registry.push_manifest(bare, index, mt.OCI_INDEX, tag)
    return pushed, source


_SKEW = SummaryAcceptance(verifiers=()).clock_skew_seconds  # where the rule accepts no summaries


def _verified_at(stamp: str, now: dt.datetime, skew: float) -> dt.datetime | None:
    """When the evidence of a result was verified (`ImageResult.verified_at`, RFC 3339 UTC as the
    verifier writes it); None, the reason logged, for anything else or a time in the future
    beyond `skew` seconds."""
    when = None
    if _STAMP.fullmatch(stamp):
        try:
            when = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            when = None
    if when is None:
        _log.warning("no verification summary issued: verifiedAt %r is not a UTC time as written", stamp)
        return None
    if (when - now).total_seconds() > skew:
        _log.warning(
            "no verification summary issued: verifiedAt %s is in the future (now %s, clock skew %g s)",
            stamp,
            now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            skew,
        )
        return None
    return when


def _inputs(name: str, image: ImageResult) -> list[dict[str, Any]]:
    """The bundles (payloads, envelopes) the decision rests on: counted signatures, passing attestations."""
    out: dict[str, dict[str, Any]] = {}
    records = [*image.signatures, *(a for a in image.attestations if a.get("verdict") == "passed")]
    for record in records:
        artifact = record.get("artifact")
        if isinstance(artifact, str) and ":" in artifact:
            algorithm, hexpart = artifact.split(":", 1)
            out.setdefault(artifact, {"uri": f"oci://{name}@{artifact}", "digest": {algorithm: hexpart}})
    return list(out.values())


def _levels(rule: CompiledRule, image: ImageResult, data: Mapping[str, Any]) -> list[str]:
    """The SLSA build level what was verified establishes (`verifiedLevels`: the highest, one per
    track; each implies those below it).

    Only from provenance that passed the built-in SLSA policy, named as such in the rule (policy
    `builtin:slsa-provenance`; a file of the operator's, wherever it lives, is not it): the
    provenance exists and was verified, which is Build L1. A higher level only where the operator
    asserts it for the rule (`summaries.issue.buildLevel`) and `data.trustgate.slsa.builders` is
    not empty: whether the provenance was signed by the builder itself (not by the tenant's
    workflow naming a builder) trustgate cannot tell from a builder id; the assertion is that the
    attestation's authorities are those builders' signing identities (found in review: L3 was
    claimed for provenance any release workflow wrote). A rule with its own provenance policy, or
    none, establishes no level trustgate can name.
    """
    builtin = {
        a.requirement.name
        for a in rule.attestations
        if a.requirement.predicate_type in _PROVENANCE
        and a.requirement.builtin == _BUILTIN_SLSA
        and a.requirement.policy_text is None
    }
    passed = {a.get("name") for a in image.attestations if a.get("verdict") == "passed"}
    missing_elsewhere = any(a.get("verdict") in ("missing", "denied") for a in image.attestations)
    if not builtin or not builtin <= passed or missing_elsewhere:
        return []
    asserted = rule.rule.summary_build_level
    if asserted is None or asserted <= 1:
        return ["SLSA_BUILD_LEVEL_1"]
    if builders_listed(data):
        return [f"SLSA_BUILD_LEVEL_{asserted}"]
    # The gate refuses this at start (trustgate.gate.images); an issuer built otherwise says so once.
    if rule.rule.name not in _WARNED:
        _WARNED.add(rule.rule.name)
        _log.warning(
            "image rule %r asserts summaries.issue.buildLevel %d but data.trustgate.slsa.builders "
            "lists no builders: its summaries claim SLSA_BUILD_LEVEL_1",
            rule.rule.name,
            asserted,
        )
    return ["SLSA_BUILD_LEVEL_1"]


_WARNED: set[str] = set()  # rules warned about (`_levels`), once per process
