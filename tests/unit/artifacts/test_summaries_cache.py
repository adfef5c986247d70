"""Summary admissions in the verification cache: kept in memory only, and every hit re-checked, so
a revocation (of the summary, of a digest it lists, of the bundle as stored) or the summary's age
reaches a cached admission as it would a fresh judgement; the bundle read with its manifest."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Collection
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from memory_registry import MemoryRegistry

from trustgate.artifacts import issuing, summaries
from trustgate.artifacts.cache import Entry, Lookup, MemoryCache
from trustgate.artifacts.policy import ImagePolicy
from trustgate.artifacts.verifier import ImageVerifier
from trustgate.config import (
    AuthorityConfig,
    CacheConfig,
    ImageRule,
    ImagesSettings,
    SummaryAcceptance,
    SummaryVerifier,
)
from trustgate.errors import DecisionLogError
from trustgate.model import ImageResult
from trustgate.oci.client import Descriptor
from trustgate.oci.reference import Reference

REPO = Reference.parse("registry.test/shop/api")
VERIFIER = "https://ci.acme.example/trustgate"
START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
KEY = ec.generate_private_key(ec.SECP256R1())
SIGNER = ec.generate_private_key(ec.SECP256R1())  # the image's own signatures: never pushed here
SETTINGS = CacheConfig(ttl_seconds=600, negative_ttl_seconds=5, stale_if_error_seconds=3600)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Registry(MemoryRegistry):
    """The double, with referrers carrying their manifests' annotations (as registries list them)."""

    def __init__(self) -> None:
        super().__init__()
        self.blob_reads = 0

    def referrers(self, ref: Reference, digest: str) -> tuple[list[Descriptor], str]:
        found, source = super().referrers(ref, digest)
        return [
            Descriptor(
                d.media_type,
                d.digest,
                d.size,
                artifact_type=d.artifact_type,
                annotations=json.loads(self.manifests[d.digest][0]).get("annotations", {}),
            )
            for d in found
        ], source

    def blob(self, ref: Reference, digest: str, *, max_bytes: int | None = None) -> bytes:
        self.blob_reads += 1
        return super().blob(ref, digest, max_bytes=max_bytes)


class World:
    """An unsigned image with a summary attached; a verifier accepting it, its clocks and revocations."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.digest = self.registry.image(REPO, "v1")
        self.now = START
        self.monotonic = 0.0
        self.revoked: set[str] = set()
        self.unreadable = False
        images = ImagesSettings(
            authorities=(AuthorityConfig(name="release", key_pem=_pem(SIGNER), key_origin="release.pub"),),
            rules=(
                ImageRule(
                    name="shop",
                    images=("registry.test/shop/**",),
                    authorities=("release",),
                    summaries=SummaryAcceptance(
                        verifiers=(SummaryVerifier(VERIFIER, _pem(KEY), "vsa.pub"),), max_age_seconds=3600
                    ),
                ),
            ),
            cache=SETTINGS,
        )
        self.policy = ImagePolicy(images)
        self.verifier = ImageVerifier(
            self.policy,
            self.registry,
            clock=lambda: self.monotonic,
            revocations=self._revocations,
            now=lambda: self.now,
        )
        self.bundle = self.summary()
        issuing.attach(self.registry, REPO, self.digest, self.bundle, START.isoformat())
        self.registry.calls = 0

    def _revocations(self) -> Collection[str]:
        if self.unreadable:
            raise DecisionLogError("the decision log is locked (test)")
        return frozenset(self.revoked)

    def summary(self, *, subjects: tuple[str, ...] = ()) -> bytes:
        statement = summaries.build_statement(
            subjects=[(REPO.name, d) for d in (self.digest, *subjects)],
            resource_uri=f"oci://{REPO.name}@{self.digest}",
            verifier_id=VERIFIER,
            policy_uri="trustgate:images/rules/shop",
            policy_digest=self.policy.rules[0].policy_digest,
            input_attestations=[],
            verified_levels=[],
            decision_id=None,
            time_verified=START,
        )
        return summaries.sign_statement(statement, KEY)

    def verify(self) -> ImageResult:
        return self.verifier.verify(f"{REPO.name}@{self.digest}")


def _path(result: ImageResult) -> str:
    assert result.summary is not None
    return str(result.summary["path"])


def test_a_summary_admission_is_cached_and_read_with_two_registry_calls() -> None:
    world = World()
    first = world.verify()
    assert first.status == "verified" and _path(first) == "summary" and first.cache == "miss"
    # One referrers lookup and the summary's manifest (its bundle embedded): no resolve, no blob.
    assert world.registry.calls == 2 and world.registry.blob_reads == 0
    second = world.verify()
    assert second.cache == "hit" and _path(second) == "summary" and second.status == "verified"
    assert world.registry.calls == 2
    assert second.summary is not None and second.summary["digest"] == summaries.summary_digest(world.bundle)


@pytest.mark.parametrize(
    "which",
    [
        lambda w: summaries.summary_digest(w.bundle),  # the summary
        lambda w: w.digest,  # the image it vouches for
        lambda w: summaries.bundle_digest(w.bundle),  # the bundle as stored (older revocations)
    ],
    ids=["summary", "image", "stored-bundle"],
)
def test_a_revocation_reaches_a_cached_summary_admission(which: Callable[[World], str]) -> None:
    world = World()
    assert world.verify().status == "verified" and world.verify().cache == "hit"
    world.revoked.add(which(world))
    after = world.verify()
    # Judged again (not from the cache): the summary is ignored, and the full verification fails.
    assert after.cache == "miss" and _path(after) == "full" and after.status == "failed"
    assert after.summary is not None and any("revoked" in r for r in after.summary["ignored"])


def test_a_revoked_platform_digest_the_summary_lists_reaches_the_cached_admission() -> None:
    world = World()
    platform = "sha256:" + "3d" * 32
    bundle = world.summary(subjects=(platform,))
    issuing.attach(world.registry, REPO, world.digest, bundle, (START + dt.timedelta(minutes=1)).isoformat())
    first = world.verify()
    assert first.summary is not None and first.summary["digest"] == summaries.summary_digest(bundle)
    assert world.verify().cache == "hit"
    world.revoked.add(platform)
    after = world.verify()
    assert after.cache == "miss" and after.summary is not None
    # The newest summary lists the platform; the older one does not, and still counts.
    assert after.summary["digest"] == summaries.summary_digest(world.bundle)


def test_a_cached_summary_admission_ends_when_the_summary_expires_within_the_ttl() -> None:
    world = World()
    assert world.verify().status == "verified"
    world.now = START + dt.timedelta(seconds=3600)  # maxAgeSeconds: still counts, as `judge` has it
    assert world.verify().cache == "hit"
    world.now = START + dt.timedelta(seconds=3601)  # past it; the cache TTL (600 s) never passed
    after = world.verify()
    assert after.cache == "miss" and after.status == "failed" and _path(after) == "full"
    assert after.summary is not None and "maxAgeSeconds" in after.summary["ignored"][0]


def test_unreadable_revocations_stop_a_cached_summary_admission() -> None:
    world = World()
    assert world.verify().status == "verified"
    world.unreadable = True
    after = world.verify()
    assert after.cache == "miss" and after.status == "failed"
    assert after.summary is not None and "could not be read" in after.summary["ignored"][0]


def test_a_summary_admission_is_never_served_stale_when_the_registry_is_down() -> None:
    world = World()
    assert world.verify().status == "verified"
    world.monotonic += SETTINGS.ttl_seconds + 1  # past the TTL, inside stale-if-error
    world.registry.fail = "connection"
    after = world.verify()
    assert after.status != "verified" and after.cache == "miss"


def test_a_full_verification_is_unaffected_by_the_recheck() -> None:
    lookup: Lookup[str] = Lookup(SETTINGS, clock=lambda: 0.0, recheck=lambda value: value != "revoked")
    assert lookup.fetch("k", lambda: ("verified", "ok")) == ("verified", "miss")
    assert lookup.fetch("k", lambda: ("other", "ok")) == ("verified", "hit")


class SharedStore:
    """A store with an in-process layer (as `SharedCache`): what reaches the shared layer is recorded."""

    def __init__(self) -> None:
        self.local: MemoryCache[str] = MemoryCache()
        self.shared: dict[str, Entry[str]] = {}

    def get(self, key: str) -> Entry[str] | None:
        return self.local.get(key) or self.shared.get(key)

    def put(self, key: str, entry: Entry[str]) -> None:
        self.local.put(key, entry)
        self.shared[key] = entry


def test_summary_outcomes_stay_in_memory_and_are_rechecked_on_every_hit() -> None:
    store = SharedStore()
    counts = {"asked": 0}
    holds = {"yes": True}

    def recheck(value: str) -> bool:
        counts["asked"] += 1
        return holds["yes"]

    lookup: Lookup[str] = Lookup(SETTINGS, store, clock=lambda: 0.0, recheck=recheck)
    assert lookup.fetch("s", lambda: ("through a summary", "summary")) == ("through a summary", "miss")
    # Not in the shared layer, and not where a plain read of the store (a peek, the fallback while
    # a registry is busy) would find it unchecked: only the lookup reads it, re-checking it.
    assert "s" not in store.shared and store.get("s") is None
    assert store.local.revocable is not None and store.local.revocable.get("s") is not None
    assert lookup.peek("s") and counts["asked"] == 1
    assert lookup.fetch("s", lambda: ("again", "summary")) == ("through a summary", "hit")
    holds["yes"] = False
    assert not lookup.peek("s")
    assert lookup.fetch("s", lambda: ("judged again", "negative")) == ("judged again", "miss")
    assert counts["asked"] == 4
    # Another lookup over the same store (another evaluator thread) shares the entry.
    holds["yes"] = True
    other: Lookup[str] = Lookup(SETTINGS, store, clock=lambda: 100.0, recheck=recheck)
    assert other.fetch("s", lambda: ("computed", "summary")) == ("through a summary", "hit")
    # Without a recheck a summary outcome is not kept at all.
    plain: Lookup[str] = Lookup(SETTINGS, MemoryCache(), clock=lambda: 0.0)
    plain.fetch("s", lambda: ("through a summary", "summary"))
    assert plain.fetch("s", lambda: ("again", "summary")) == ("again", "miss")


def test_recheck_reads_what_the_decision_records() -> None:
    world = World()
    record = dict(world.verify().summary or {})
    assert summaries.recheck(record, revoked=(), now=START) is None
    assert "revoked" in (summaries.recheck(record, revoked={world.digest}, now=START) or "")
    later = START + dt.timedelta(hours=1, seconds=1)
    assert "expired" in (summaries.recheck(record, revoked=(), now=later) or "")
    for broken in ({}, record | {"expires": "soon"}, record | {"subjects": "x"}):
        assert summaries.recheck(broken, revoked=(), now=START) is not None


def _manifest(data: Any, bundle: bytes) -> tuple[dict[str, Any], Descriptor]:
    layer = Descriptor(summaries.ARTIFACT_TYPE, summaries.bundle_digest(bundle), len(bundle))
    body = {"layers": [{"digest": layer.digest, "size": layer.size, "data": data}]}
    return body, layer


def test_an_embedded_bundle_counts_only_with_the_layers_digest_and_size() -> None:
    bundle = World().bundle
    good = base64.b64encode(bundle).decode()
    assert summaries.embedded_bundle(*_manifest(good, bundle)) == bundle
    other = base64.b64encode(bundle + b" ").decode()
    for data in (other, good[:-4], "%%%", 7, None, good + "A" * 8):
        assert summaries.embedded_bundle(*_manifest(data, bundle)) is None


def test_a_wrong_embedded_bundle_falls_back_to_the_blob() -> None:
    world = World()
    (descriptor,) = world.registry.referrers(REPO, world.digest)[0]
    raw, media_type = world.registry.manifests[descriptor.digest]
    body = json.loads(raw)
    body["layers"][0]["data"] = base64.b64encode(b"{}").decode()
    # Content-addressed: the changed manifest is another referrer, in place of the first.
    del world.registry.manifests[descriptor.digest]
    world.registry.push_manifest(REPO, json.dumps(body).encode(), media_type)
    result = world.verify()
    assert _path(result) == "summary" and world.registry.blob_reads == 1
