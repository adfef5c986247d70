"""Issuing a summary of a multi-platform image verified in full: its subjects are the index and the
platform manifests whose attestations the rule judged, its inputs the bundles verified; attached, it
admits the index by digest and nothing else (ADR 12)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

from memory_registry import CosignKey
from support.keys import write_p256_key
from test_summaries_cache import Registry

from trustgate.artifacts import issuing
from trustgate.artifacts.policy import ImagePolicy
from trustgate.artifacts.verifier import ImageVerifier
from trustgate.config import (
    AttestationRequirement,
    AuthorityConfig,
    ImageRule,
    ImagesSettings,
    SummaryAcceptance,
    SummaryIssuing,
    SummaryVerifier,
)
from trustgate.oci.reference import Reference

REPO = Reference.parse("registry.test/shop/api")
SLSA = "https://slsa.dev/provenance/v1"
VERIFIER = "https://ci.acme.example/trustgate"


def _settings(release: CosignKey, vsa_public: bytes | None) -> ImagesSettings:
    accept = (
        SummaryAcceptance(verifiers=(SummaryVerifier(VERIFIER, vsa_public, "vsa.pub"),))
        if vsa_public is not None
        else None
    )
    return ImagesSettings(
        authorities=(AuthorityConfig(name="release", key_pem=release.pem, key_origin="release.pub"),),
        rules=(
            ImageRule(
                name="shop",
                images=("registry.test/shop/**",),
                authorities=("release",),
                attestations=(AttestationRequirement("provenance", SLSA, ("release",)),),
                summaries=accept,
            ),
        ),
    )


def test_an_index_summary_lists_its_platforms_and_admits_only_the_index(tmp_path: Path) -> None:
    registry = Registry()
    release = CosignKey()
    index, platforms = registry.index(REPO, "v2", [("linux", "amd64"), ("linux", "arm64")])
    registry.attach_cosign(REPO, index, ".sig", [release.signature_layer(REPO.name, index)])
    for digest in platforms:
        predicate = {"runDetails": {"builder": {"id": "https://ci.test/release"}}}
        registry.attach_cosign(
            REPO, digest, ".att", [release.attestation_layer(REPO.name, digest, SLSA, predicate)]
        )
    _, public = write_p256_key(tmp_path / "vsa.pem")

    # CI: verified in full, then a summary signed and attached.
    ci = ImagePolicy(_settings(release, None))
    verified = ImageVerifier(ci, registry).verify(f"{REPO.name}:v2")
    assert verified.status == "verified" and verified.digest == index, verified.problems
    issuer = issuing.Issuer.from_config(SummaryIssuing(verifier_id=VERIFIER, key_path=tmp_path / "vsa.pem"))
    now = dt.datetime.now(dt.UTC)
    signed = issuer.prepare(ci, verified, decision_id="01a249ca-b789-732c-8c3c-a3215fb3e7c6", now=now)
    assert signed is not None
    assert signed.attach(registry) is None and signed.record["source"] == "referrers-api"
    statement = json.loads(base64.b64decode(json.loads(signed.bundle)["dsseEnvelope"]["payload"]))
    assert [s["digest"]["sha256"] for s in statement["subject"]] == [
        d.split(":")[1] for d in (index, *platforms)
    ]
    predicate = statement["predicate"]
    assert predicate["resourceUri"] == f"oci://{REPO.name}@{index}"
    assert predicate["policy"]["digest"]["sha256"] == ci.rules[0].policy_digest.split(":")[1]
    cited = {a["digest"]["sha256"] for a in predicate["inputAttestations"]}
    verified_bundles = {r["artifact"].split(":")[1] for r in (*verified.signatures, *verified.attestations)}
    assert cited == verified_bundles and len(cited) == 3  # the index's signature, each platform's attestation
    assert predicate["verifiedLevels"] == []  # a rule's own provenance check establishes no level
    # Stored with the bundle embedded in the referrer's manifest (and as its blob).
    manifest = json.loads(registry.manifests[signed.record["referrer"]][0])
    layer = manifest["layers"][0]
    assert base64.b64decode(layer["data"]) == signed.bundle == registry.blobs[layer["digest"]]

    # Admission: the index through the summary; a platform by its own digest is verified in full.
    admission = ImageVerifier(ImagePolicy(_settings(release, public)), registry, revocations=frozenset)
    through = admission.verify(f"{REPO.name}@{index}")
    assert through.status == "verified" and through.summary is not None
    assert through.summary["path"] == "summary" and through.summary["subjects"] == [index, *platforms]
    assert through.summary["digest"] == signed.record["digest"]
    # Whoever can push attaches the same signed summary to a platform manifest: it is not its
    # primary subject, so the platform is verified in full (and has no signature of its own).
    issuing.attach(registry, REPO, platforms[0], signed.bundle, now.isoformat())
    platform = admission.verify(f"{REPO.name}@{platforms[0]}")
    assert platform.status == "failed" and platform.summary is not None
    assert platform.summary["path"] == "full"
    assert "primary subject" in platform.summary["ignored"][0]


def test_no_summary_is_issued_for_a_stale_result(tmp_path: Path) -> None:
    """A result served stale while the registry failed is old evidence: signing a fresh summary
    of it would restart the summary's maxAgeSeconds on something nobody re-verified."""
    import dataclasses

    registry = Registry()
    release = CosignKey()
    digest = registry.image(REPO, "v1")
    registry.attach_cosign(REPO, digest, ".sig", [release.signature_layer(REPO.name, digest)])
    predicate = {"runDetails": {"builder": {"id": "https://ci.test/release"}}}
    registry.attach_cosign(
        REPO, digest, ".att", [release.attestation_layer(REPO.name, digest, SLSA, predicate)]
    )
    write_p256_key(tmp_path / "vsa.pem")
    ci = ImagePolicy(_settings(release, None))
    verified = ImageVerifier(ci, registry).verify(f"{REPO.name}@{digest}")
    assert verified.status == "verified", verified.problems
    issuer = issuing.Issuer.from_config(SummaryIssuing(verifier_id=VERIFIER, key_path=tmp_path / "vsa.pem"))
    assert issuer.prepare(ci, verified, decision_id=None) is not None
    stale = dataclasses.replace(verified, cache="stale")
    assert issuer.prepare(ci, stale, decision_id=None) is None


def test_a_sha512_image_is_issued_under_sha512_not_sha256(tmp_path: Path) -> None:
    """The subject's DigestSet names the digest's own algorithm: a sha512 image digest was issued
    under "sha256" (a claim that the sha256 of the image is a 128-digit number)."""
    from trustgate.model import ImageResult

    release = CosignKey()
    write_p256_key(tmp_path / "vsa.pem")
    policy = ImagePolicy(_settings(release, None))
    digest = "sha512:" + "ab" * 64
    platform = "sha256:" + "cd" * 32
    image = ImageResult(f"{REPO.name}@{digest}", "verified", rule="shop", digest=digest, cache="miss")
    image.attestations = [{"digest": platform, "verdict": "passed", "artifact": "sha512:" + "ef" * 64}]
    issuer = issuing.Issuer.from_config(SummaryIssuing(verifier_id=VERIFIER, key_path=tmp_path / "vsa.pem"))
    signed = issuer.prepare(policy, image, decision_id=None)
    assert signed is not None
    statement = json.loads(base64.b64decode(json.loads(signed.bundle)["dsseEnvelope"]["payload"]))
    assert [s["digest"] for s in statement["subject"]] == [{"sha512": "ab" * 64}, {"sha256": "cd" * 32}]
    assert statement["predicate"]["resourceUri"] == f"oci://{REPO.name}@{digest}"
    assert statement["predicate"]["inputAttestations"] == [
        {"uri": f"oci://{REPO.name}@sha512:{'ef' * 64}", "digest": {"sha512": "ef" * 64}}
    ]
    assert signed.record["subjects"] == [digest, platform]
