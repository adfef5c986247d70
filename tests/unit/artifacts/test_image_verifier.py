"""The verifier's rules over an in-memory registry, with real cosign key signatures."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest
from memory_registry import DSSE, OCI_INDEX, OCI_MANIFEST, SIMPLESIGNING, CosignKey, MemoryRegistry

from trustgate.artifacts.policy import ImagePolicy
from trustgate.artifacts.verifier import ImageVerifier
from trustgate.config import AttestationRequirement, AuthorityConfig, CacheConfig, ImageRule, ImagesSettings
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference

REPO = Reference.parse("registry.test/shop/api")
SLSA = "https://slsa.dev/provenance/v1"
DENY_DEV_BUILDS = """package slsa
import rego.v1
deny contains msg if {
    input.predicate.runDetails.builder.id != "https://ci.test/release"
    msg := sprintf("built by %s", [input.predicate.runDetails.builder.id])
}
warn contains "no build time" if not input.predicate.runDetails.metadata.finishedOn
"""


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keys() -> dict[str, CosignKey]:
    return {"release": CosignKey(), "qa": CosignKey(), "other": CosignKey()}


def settings(
    keys: dict[str, CosignKey],
    *,
    authorities: tuple[str, ...] = ("release",),
    threshold: int = 1,
    attestations: tuple[AttestationRequirement, ...] = (),
    require_digest: bool = False,
    unmatched: str = "allow",
) -> ImagesSettings:
    return ImagesSettings(
        authorities=tuple(
            AuthorityConfig(name=n, key_pem=k.pem, key_origin=f"{n}.pub") for n, k in keys.items()
        ),
        rules=(
            ImageRule(
                name="shop",
                images=("registry.test/shop/**",),
                authorities=authorities,
                threshold=threshold,
                attestations=attestations,
                require_digest=require_digest,
            ),
        ),
        unmatched=unmatched,
        cache=CacheConfig(ttl_seconds=60, negative_ttl_seconds=5, stale_if_error_seconds=600),
    )


def provenance(authorities: tuple[str, ...] = ("release",)) -> AttestationRequirement:
    return AttestationRequirement("provenance", SLSA, authorities, policy_text=DENY_DEV_BUILDS)


def sign(registry: MemoryRegistry, key: CosignKey, digest: str) -> None:
    registry.attach_cosign(REPO, digest, ".sig", [key.signature_layer(REPO.name, digest)])


def attest(
    registry: MemoryRegistry, key: CosignKey, digest: str, builder: str, *, subject: str | None = None
) -> None:
    predicate = {
        "runDetails": {"builder": {"id": builder}, "metadata": {"finishedOn": "2026-11-01T00:00:00Z"}}
    }
    layer = key.attestation_layer(REPO.name, subject or digest, SLSA, predicate)
    registry.attach_cosign(REPO, digest, ".att", [layer])


def verifier(images: ImagesSettings, registry: MemoryRegistry, clock: Clock | None = None) -> ImageVerifier:
    return ImageVerifier(ImagePolicy(images), registry, clock=clock or Clock())


def test_a_signed_image_verifies_with_evidence_and_then_comes_from_cache(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    v = verifier(settings(keys), registry)
    first = v.verify("registry.test/shop/api:v1")
    assert first.status == "verified", first.problems
    assert first.digest == digest and first.resolved_from == "v1" and first.cache == "miss"
    (evidence,) = first.signatures
    assert evidence["authority"] == "release" and evidence["source"] == "cosign-tag"
    calls = registry.calls
    second = v.verify("registry.test/shop/api:v1")
    assert second.cache == "hit" and second.status == "verified"
    assert registry.calls == calls  # neither the tag nor the signatures were fetched again


def test_every_place_is_looked_at_even_when_the_referrers_satisfy_the_rule(
    keys: dict[str, CosignKey],
) -> None:
    """A signature and a passing attestation in the referrers do not end the search: a denying
    attestation in the `.att` tag (kept there by `cosign attest`) still denies (ADR 5)."""
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    registry.attach_referrer(REPO, digest, keys["release"].signature_layer(REPO.name, digest))
    predicate = {
        "runDetails": {"builder": {"id": "https://ci.test/release"}, "metadata": {"finishedOn": "x"}}
    }
    registry.attach_referrer(
        REPO, digest, keys["release"].attestation_layer(REPO.name, digest, SLSA, predicate)
    )
    images = settings(keys, attestations=(provenance(),))
    result = verifier(images, registry).verify("registry.test/shop/api:v1")
    assert result.status == "verified", result.problems  # nothing in the tags: the referrers suffice
    assert {digest.replace(":", "-") + s for s in (".sig", ".att")} <= set(registry.manifest_lookups)
    attest(registry, keys["release"], digest, "https://ci.test/dev")
    result = verifier(images, registry).verify("registry.test/shop/api:v1")
    assert result.status == "failed"
    assert [a["verdict"] for a in result.attestations] == ["passed", "denied"]
    (problem,) = result.problems
    assert problem.rule == "image-attestation" and "built by https://ci.test/dev" in problem.message


class _Listing(MemoryRegistry):
    """Its referrers listing fails with `kind` (the rest of the registry answers)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def referrers(self, ref: Reference, digest: str, *, artifact_type: str | None = None) -> Any:
        raise RegistryError(self.kind, f"listing failed: {self.kind} (test double)", registry=ref.registry)


@pytest.mark.parametrize(
    ("kind", "blocks"),
    [("loop", True), ("too-large", True), ("invalid-manifest", False), ("bad-media-type", False)],
)
def test_a_referrers_listing_too_long_to_read_fails_the_image(
    keys: dict[str, CosignKey], kind: str, blocks: bool
) -> None:
    """More referrers than the registry pages (`loop`) or than a listing may weigh (`too-large`)
    is what a pusher can cause, hiding a scanner's report among them: the image cannot be
    verified on its cosign tags alone. A listing the registry garbles (a 400/406 or an HTML page
    where it has no referrers API) is its own answer: a note, the cosign signature judged."""
    registry = _Listing(kind)
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    result = verifier(settings(keys), registry).verify("registry.test/shop/api:v1")
    blocking = [p for p in result.problems if p.blocking]
    if blocks:
        assert result.status == "failed"
        (problem,) = blocking
        assert problem.rule == "image-artifact"
        assert f"the referrers of {REPO.name}@{digest} could not be listed" in problem.message
        assert "remove stale or unknown referrers" in problem.fix
    else:
        assert result.status == "verified" and not blocking, result.problems
        assert any(f"listing failed: {kind}" in p.message for p in result.problems)


class _Buggy(MemoryRegistry):
    """Listing the referrers of `broken` raises what no code expects (a bug, or bytes that reach one)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = ""
        self.calls = 0

    def referrers(self, ref: Reference, digest: str, *, artifact_type: str | None = None) -> Any:
        if digest == self.broken:
            self.calls += 1
            raise RecursionError("maximum recursion depth exceeded (test double)")
        return super().referrers(ref, digest, artifact_type=artifact_type)


def test_an_unexpected_exception_fails_that_image_alone_and_is_logged(
    keys: dict[str, CosignKey], caplog: pytest.LogCaptureFixture
) -> None:
    """Escaping, it failed the whole request, which a fail-open namespace answers with an allow: a
    policy failure of that one image instead (fail closed), its traceback logged, nothing cached."""
    registry = _Buggy()
    broken = registry.image(REPO, "v1", content=b"broken")
    good = registry.image(REPO, "v2", content=b"good")
    for digest in (broken, good):
        sign(registry, keys["release"], digest)
    registry.broken = broken
    v = ImageVerifier(ImagePolicy(settings(keys)), registry, clock=Clock(), concurrency=2)
    refs = [f"{REPO.name}@{broken}", f"{REPO.name}@{good}"]
    with caplog.at_level(logging.ERROR, logger="trustgate.images"):
        results = v.verify_many(refs)
    assert results[refs[1]].status == "verified", results[refs[1]].problems
    failed = results[refs[0]]
    assert failed.status == "failed" and failed.rule == "shop"
    (problem,) = failed.problems
    assert problem.rule == "image-internal-error" and problem.blocking
    assert "internal error: RecursionError: maximum recursion depth exceeded" in problem.message
    (record,) = caplog.records
    assert record.getMessage() == f"internal error while verifying {refs[0]}" and record.exc_info
    asked = registry.calls
    assert v.verify(refs[0]).status == "failed" and registry.calls > asked  # asked again: not cached


def test_an_unsigned_image_fails_saying_where_it_looked(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    result = verifier(settings(keys), registry).verify("registry.test/shop/api:v1")
    assert result.status == "failed"
    (problem,) = result.problems
    assert problem.rule == "image-signature" and problem.blocking
    assert "no signatures found" in problem.message and digest.replace(":", "-") + ".sig" in problem.message


def test_a_signature_by_another_key_names_the_authority_it_failed(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["other"], digest)
    result = verifier(settings(keys), registry).verify("registry.test/shop/api:v1")
    assert result.status == "failed"
    (problem,) = result.problems
    assert problem.rule == "image-signature"
    assert "not signed as image rule 'shop' requires (release; 0 verified): release:" in problem.message


def test_a_threshold_counts_distinct_authorities(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    sign(registry, keys["release"], digest)  # the same signer twice is still one of n
    images = settings(keys, authorities=("release", "qa"), threshold=2)
    result = verifier(images, registry).verify("registry.test/shop/api:v1")
    assert result.status == "failed"
    assert "(2 of [release, qa]; 1 verified)" in result.problems[0].message
    sign(registry, keys["qa"], digest)
    result = verifier(images, registry).verify("registry.test/shop/api:v1")
    assert result.status == "verified"
    assert sorted(s["authority"] for s in result.signatures) == ["qa", "release"]


def test_one_signer_counts_once_even_for_two_authorities_that_accept_it(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    images = settings(keys, authorities=("release", "qa"), threshold=2)
    same_key = dataclasses.replace(images.authorities[1], key_pem=keys["release"].pem)  # qa has release's key
    images = dataclasses.replace(images, authorities=(images.authorities[0], same_key, images.authorities[2]))
    result = verifier(images, registry).verify("registry.test/shop/api:v1")
    assert result.status == "failed"
    assert "(2 of [release, qa]; 1 verified)" in result.problems[0].message
    assert "already counted for another authority" in result.problems[0].message
    assert [s["authority"] for s in result.signatures] == ["release"]


def test_attestations_without_a_trusted_time_each_count_whatever_order_they_are_listed_in(
    keys: dict[str, CosignKey],
) -> None:
    """Key attestations without a log have no trusted time: which is "newest" is only the order the
    registry lists them in, which whoever can push chooses. Every one is judged; any denial denies."""
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    attest(registry, keys["release"], digest, "https://laptop.test/dev")  # denied
    attest(registry, keys["release"], digest, "https://ci.test/release")  # passes, listed last
    images = settings(keys, attestations=(provenance(),))
    result = verifier(images, registry).verify(f"{REPO.name}@{digest}")
    assert result.status == "failed"
    assert sorted(a["verdict"] for a in result.attestations) == ["denied", "passed"]
    (problem,) = [p for p in result.problems if p.blocking]
    assert "built by https://laptop.test/dev" in problem.message
    assert "no trusted time to tell which is newest" in problem.message
    assert "remove the stale one from the registry, or sign with a log" in problem.message


def test_an_attestation_passing_its_policy_is_recorded_with_its_warnings(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    attest(registry, keys["release"], digest, "https://ci.test/release")
    result = verifier(settings(keys, attestations=(provenance(),)), registry).verify(f"{REPO.name}@{digest}")
    assert result.status == "verified", result.problems
    (record,) = result.attestations
    assert record["verdict"] == "passed" and record["predicateType"] == SLSA and record["digest"] == digest
    assert record["signer"]["authority"] == "release"


def test_an_attestation_denied_by_its_policy_fails_the_image(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    attest(registry, keys["release"], digest, "https://laptop.test/dev")
    result = verifier(settings(keys, attestations=(provenance(),)), registry).verify(f"{REPO.name}@{digest}")
    assert result.status == "failed"
    (problem,) = result.problems
    assert problem.rule == "image-attestation" and problem.attestation == "provenance"
    assert problem.message.endswith("built by https://laptop.test/dev")


def test_a_statement_about_another_digest_does_not_count(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    other = registry.image(REPO, "v0", content=b"other")
    sign(registry, keys["release"], digest)
    attest(registry, keys["release"], digest, "https://ci.test/release", subject=other)
    result = verifier(settings(keys, attestations=(provenance(),)), registry).verify(f"{REPO.name}@{digest}")
    assert result.status == "failed"
    (problem,) = result.problems
    assert problem.rule == "image-attestation"
    assert problem.message.startswith("no verified provenance attestation (https://slsa.dev/provenance/v1)")
    assert result.attestations == []


def test_multi_arch_attestations_on_every_platform_meet_the_requirement(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    index, platforms = registry.index(REPO, "v2", [("linux", "amd64"), ("linux", "arm64")])
    sign(registry, keys["release"], index)
    for digest in platforms:
        attest(registry, keys["release"], digest, "https://ci.test/release")
    v = verifier(settings(keys, attestations=(provenance(),)), registry)
    result = v.verify("registry.test/shop/api:v2")
    assert result.status == "verified", result.problems
    assert result.digest == index
    assert [p["platform"] for p in result.platforms] == ["linux/amd64", "linux/arm64"]
    assert sorted(a["digest"] for a in result.attestations) == sorted(platforms)


def test_multi_arch_a_missing_or_denied_platform_attestation_fails(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    index, (amd64, arm64) = registry.index(REPO, "v2", [("linux", "amd64"), ("linux", "arm64")])
    sign(registry, keys["release"], index)
    attest(registry, keys["release"], amd64, "https://ci.test/release")
    images = settings(keys, attestations=(provenance(),))
    result = verifier(images, registry).verify("registry.test/shop/api:v2")
    assert result.status == "failed"
    message = result.problems[0].message
    assert f"nor on platform linux/arm64 ({arm64[:19]}...)" in message and "linux/amd64" not in message
    assert "every platform needs it when the index has none" in message
    # the decision's record shows the pass on amd64 and what is missing on arm64, not only "passed"
    assert [(a["digest"], a["verdict"]) for a in result.attestations] == [
        (amd64, "passed"),
        (arm64, "missing"),
    ]
    assert result.attestations[1]["platform"] == "linux/arm64"
    attest(registry, keys["release"], arm64, "https://laptop.test/dev")
    result = verifier(images, registry).verify("registry.test/shop/api:v2")
    assert result.status == "failed"
    assert result.problems[0].message.endswith("built by https://laptop.test/dev")
    assert arm64[:19] in result.problems[0].message


def test_a_registry_outage_is_unverifiable_not_failed(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    registry.fail = "connection"
    result = verifier(settings(keys), registry).verify("registry.test/shop/api:v1")
    assert result.status == "unverifiable"
    (problem,) = result.problems
    assert problem.rule == "image-unverifiable"
    assert problem.message.startswith(
        "could not verify registry.test/shop/api:v1: could not resolve it (connection)"
    )


def test_a_verified_result_is_served_stale_while_the_registry_is_down(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    clock = Clock()
    v = verifier(settings(keys), registry, clock)
    pinned = f"registry.test/shop/api@{digest}"
    assert v.verify("registry.test/shop/api:v1").status == "verified"
    assert v.verify(pinned).status == "verified"
    registry.fail = "server-error"
    clock.now = 120  # past the 60 s TTL, inside the stale window
    stale = v.verify(pinned)
    assert (stale.status, stale.cache, stale.digest) == ("verified", "stale", digest)
    # A tag's old digest is never served: whoever re-pointed the tag could cause the "outage".
    assert v.verify("registry.test/shop/api:v1").status == "unverifiable"
    clock.now = 1000  # past TTL + stale window: the outage shows
    assert v.verify(pinned).status == "unverifiable"


def test_a_moved_tag_is_seen_after_the_tag_ttl_not_the_result_ttl(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    signed = registry.image(REPO, "v1")
    sign(registry, keys["release"], signed)
    clock = Clock()
    v = verifier(settings(keys), registry, clock)  # results live 60 s, tags 30 s (the default)
    assert v.verify("registry.test/shop/api:v1").digest == signed
    unsigned = registry.image(REPO, "v1", content=b"pushed over the tag")
    clock.now = 31
    moved = v.verify("registry.test/shop/api:v1")
    assert (moved.digest, moved.status) == (unsigned, "failed")


def test_a_failure_is_cached_briefly(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    clock = Clock()
    v = verifier(settings(keys), registry, clock)
    assert v.verify(f"{REPO.name}@{digest}").status == "failed"
    sign(registry, keys["release"], digest)
    assert v.verify(f"{REPO.name}@{digest}").cache == "hit"  # still the failure
    clock.now = 6
    assert v.verify(f"{REPO.name}@{digest}").status == "verified"


def test_a_tag_where_a_digest_is_required_fails_but_is_still_verified(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    result = verifier(settings(keys, require_digest=True), registry).verify("registry.test/shop/api:v1")
    assert result.status == "failed"
    assert [p.rule for p in result.problems] == ["image-digest"]
    assert result.signatures  # the signature was checked all the same
    assert "requires a digest" in result.problems[0].message


@pytest.mark.parametrize(("unmatched", "problems"), [("allow", []), ("warn", [False]), ("deny", [True])])
def test_unmatched_images(keys: dict[str, CosignKey], unmatched: str, problems: list[bool]) -> None:
    result = verifier(settings(keys, unmatched=unmatched), MemoryRegistry()).verify(
        "docker.io/library/nginx:1"
    )
    assert result.status == "unmatched"
    assert [p.blocking for p in result.problems] == problems


def test_a_malformed_reference_is_a_finding_not_a_crash(keys: dict[str, CosignKey]) -> None:
    result = verifier(settings(keys), MemoryRegistry()).verify("registry.test/shop/api:bad tag")
    assert result.status == "failed"
    assert result.problems[0].rule == "image-reference"


@pytest.mark.parametrize(
    "image",
    [
        "127.1:5000/shop/api:v1",
        "[::ffff:7f00:1]:5000/shop/api:v1",
        "[::FFFF:127.0.0.1]:5000/shop/api:v1",
        "[0:0:0:0:0:ffff:7f00:1]/shop/api",
        "[64:ff9b::7f00:1]:5000/shop/api:v1",  # NAT64 (RFC 6052)
        "[64:ff9b:1::7f00:1]:5000/shop/api:v1",  # NAT64, local-use prefix (RFC 8215)
        "[::7f00:1]:5000/shop/api:v1",  # IPv4-compatible
        "[::127.0.0.1]:5000/shop/api:v1",
        "[2002:7f00:1::1]:5000/shop/api:v1",  # 6to4
    ],
)
def test_an_ipv4_registry_spelled_otherwise_fails_instead_of_escaping_its_rule(
    keys: dict[str, CosignKey], image: str
) -> None:
    """`[::ffff:7f00:1]` and `127.1` reach 127.0.0.1, whose rule would not match them: unmatched."""
    images = dataclasses.replace(
        settings(keys), rules=(dataclasses.replace(settings(keys).rules[0], images=("127.0.0.1:5000/**",)),)
    )
    v = verifier(images, MemoryRegistry())
    assert v.verify("127.0.0.1:5000/shop/api:v1").rule == "shop"
    result = v.verify(image)
    assert result.status == "failed"
    assert [p.rule for p in result.problems] == ["image-reference"]
    assert "127.0.0.1" in result.problems[0].fix


def test_many_images_concurrently_each_once(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    refs = []
    for i in range(20):
        digest = registry.image(REPO, f"v{i}", content=f"layer {i}".encode())
        sign(registry, keys["release"], digest)
        refs.append(f"registry.test/shop/api:v{i}")
    v = verifier(settings(keys), registry)
    results = v.verify_many(refs + refs)
    assert sorted(results) == sorted(refs)
    assert all(r.status == "verified" for r in results.values())
    assert {r.digest for r in results.values()} == {v.verify(ref).digest for ref in refs}


def test_a_broken_attestation_policy_is_reported_at_load(tmp_path: Path, keys: dict[str, CosignKey]) -> None:
    from trustgate.errors import PolicyError

    broken = AttestationRequirement(
        "provenance", SLSA, ("release",), policy_text="package p\ndeny contains x if {"
    )
    with pytest.raises(PolicyError) as err:
        ImagePolicy(settings(keys, attestations=(broken,)))
    assert "images.rules[shop].attestations[provenance]" in err.value.diagnostics()


def test_a_threshold_over_an_ecdsa_and_an_ed25519_key(keys: dict[str, CosignKey]) -> None:
    """Each signature is tried against each key: a wrong-type key is a non-match, not a crash."""
    keys = {"release": keys["release"], "qa": CosignKey("ed25519")}
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    rule = settings(keys, authorities=("release", "qa"), threshold=2)
    one = verifier(rule, registry).verify("registry.test/shop/api:v1")
    assert one.status == "failed" and "(2 of [release, qa]; 1 verified)" in one.problems[0].message
    sign(registry, keys["qa"], digest)
    both = verifier(rule, registry).verify("registry.test/shop/api:v1")
    assert both.status == "verified", both.problems
    assert sorted(s["authority"] for s in both.signatures) == ["qa", "release"]


VULN = "https://cosign.sigstore.dev/attestation/vuln/v1"


def test_a_missing_attestation_quotes_no_reason_of_another_attestation_type(
    keys: dict[str, CosignKey],
) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    attest(registry, keys["other"], digest, "https://ci.test/release")  # provenance, by a stranger's key
    scan = AttestationRequirement(
        "scan", VULN, ("release",), policy_text='package scan\nimport rego.v1\ndeny contains "x" if false\n'
    )
    result = verifier(settings(keys, attestations=(scan,)), registry).verify(f"{REPO.name}@{digest}")
    assert result.status == "failed"
    (problem,) = result.problems
    assert problem.message.startswith("no verified scan attestation (" + VULN)
    assert "does not verify" not in problem.message  # the provenance's failure is not the scan's


def test_an_index_signed_only_per_platform_says_so(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    index, (amd64, arm64) = registry.index(REPO, "v3", [("linux", "amd64"), ("linux", "arm64")])
    sign(registry, keys["release"], amd64)
    sign(registry, keys["release"], arm64)
    result = verifier(settings(keys), registry).verify(f"{REPO.name}@{index}")
    assert result.status == "failed"
    (problem,) = result.problems
    assert problem.message.startswith("no signatures found")
    assert f"linux/amd64 ({amd64[:19]}...), linux/arm64 ({arm64[:19]}...)" in problem.message
    assert "the manifest pins the index digest" in problem.message
    assert f"@{index}" in problem.fix and "--recursive" in problem.fix


def test_a_registry_marked_down_is_not_asked_again_until_its_interval_is_over(
    keys: dict[str, CosignKey],
) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    unknown = registry.image(REPO, "v2", content=b"never verified")
    clock = Clock()
    v = verifier(settings(keys), registry, clock)
    assert v.verify(f"{REPO.name}@{digest}").status == "verified"
    registry.fail = "timeout"
    clock.now = 120  # past the TTL, inside the stale window
    assert v.verify(f"{REPO.name}@{digest}").cache == "stale"  # this lookup asked, and failed
    calls = registry.calls
    for _ in range(5):
        again = v.verify(f"{REPO.name}@{digest}")
        assert (again.status, again.cache) == ("verified", "stale")
    other = v.verify(f"{REPO.name}@{unknown}")
    assert other.status == "unverifiable"
    assert "marked down" in other.problems[0].message and "(unavailable)" in other.problems[0].message
    assert registry.calls == calls  # nobody waited on the registry while it was down


def test_a_failure_that_is_not_the_registrys_does_not_mark_it_down(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    v = verifier(settings(keys), registry)
    registry.fail = "not-found"
    missing = v.verify(f"{REPO.name}:v1")  # whoever can push could push it after admission: fails
    assert missing.status == "failed" and missing.problems[0].rule == "image-manifest"
    registry.fail = None
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    assert v.verify(f"{REPO.name}@{digest}").status == "verified"


def test_a_batch_holds_one_bulkhead_slot_per_registry_and_waits_for_none_when_warm(
    keys: dict[str, CosignKey],
) -> None:
    """The bulkhead counts callers (an evaluator's Pod), not images: five images of one registry
    take one slot; when another caller holds the only one, the batch is answered "busy" at once."""
    import dataclasses

    from trustgate.config import RegistryConfig

    registry = MemoryRegistry()
    references = []
    for i in range(5):
        digest = registry.image(REPO, f"v{i}", content=f"layer {i}".encode())
        sign(registry, keys["release"], digest)
        references.append(f"registry.test/shop/api:v{i}")
    one_slot = RegistryConfig(max_requests_per_registry=1, queue_seconds=0.05, concurrency=4)
    images = dataclasses.replace(settings(keys), registries=one_slot)
    v = verifier(images, registry)
    assert {r.status for r in v.verify_many(references).values()} == {"verified"}
    breakers = v._breakers
    assert breakers.enter("registry.test", wait=1) is None  # another caller holds the only slot
    try:
        assert {r.status for r in v.verify_many(references).values()} == {"verified"}  # warm: no slot
        cold = f"registry.test/shop/api:v{len(references)}"
        registry.image(REPO, f"v{len(references)}", content=b"new")
        [busy] = v.verify_many([cold]).values()
        assert busy.status == "unverifiable" and "is busy" in busy.problems[0].message
    finally:
        breakers.leave("registry.test")


def test_a_busy_registry_serves_no_tag_mapping_past_its_ttl(
    keys: dict[str, CosignKey],
) -> None:
    """The tag was moved to unsigned content; a busy registry must not answer with the digest the
    tag named before (busy is load, not an outage: only a fresh mapping may be used)."""
    from trustgate.config import RegistryConfig

    registry = MemoryRegistry()
    signed = registry.image(REPO, "v1")
    sign(registry, keys["release"], signed)
    clock = Clock()
    one_slot = RegistryConfig(max_requests_per_registry=1, queue_seconds=0.05, concurrency=1)
    v = verifier(dataclasses.replace(settings(keys), registries=one_slot), registry, clock)
    assert v.verify(f"{REPO.name}:v1").status == "verified"
    registry.image(REPO, "v1", content=b"pushed over the tag, unsigned")
    clock.now = 45  # the tag mapping is past its TTL, still inside its stale-if-error window
    assert v.verify(f"{REPO.name}@{signed}").status == "verified"  # the digest's own result is fresh
    assert v._breakers.enter("registry.test", wait=1) is None  # another caller holds the only slot
    try:
        busy = v.verify(f"{REPO.name}:v1")
    finally:
        v._breakers.leave("registry.test")
    assert busy.status == "unverifiable" and "is busy" in busy.problems[0].message


def test_a_busy_registry_still_applies_require_digest(keys: dict[str, CosignKey]) -> None:
    from trustgate.config import RegistryConfig

    registry = MemoryRegistry()
    signed = registry.image(REPO, "v1")
    sign(registry, keys["release"], signed)
    clock = Clock()
    one_slot = RegistryConfig(max_requests_per_registry=1, queue_seconds=0.05, concurrency=1)
    images = dataclasses.replace(settings(keys, require_digest=True), registries=one_slot)
    images = dataclasses.replace(images, cache=dataclasses.replace(images.cache, tag_ttl_seconds=120))
    v = verifier(images, registry, clock)
    first = v.verify(f"{REPO.name}:v1")
    assert first.status == "failed" and first.problems[0].rule == "image-digest"
    clock.now = 90  # the tag mapping is fresh; the result is past its TTL, inside its stale window
    assert v._breakers.enter("registry.test", wait=1) is None
    try:
        busy = v.verify(f"{REPO.name}:v1")
    finally:
        v._breakers.leave("registry.test")
    assert busy.status == "failed" and busy.problems[0].rule == "image-digest"


def _rules(*rules: ImageRule) -> ImagesSettings:
    return ImagesSettings(rules=rules)


@pytest.mark.parametrize("port", ["443", "80", "0443", "00080"])
def test_a_default_port_does_not_take_an_image_out_of_its_registrys_rule(port: str) -> None:
    policy = ImagePolicy(
        _rules(ImageRule(name="corp", images=("localhost/**",), exclude=("localhost/shop/legacy/**",)))
    )
    rule = policy.rule_for(f"localhost:{port}/shop/app")
    assert rule is not None and rule.rule.name == "corp"
    # the rule's exclusions hold for either name
    assert policy.rule_for(f"localhost:{port}/shop/legacy/x") is None
    assert policy.rule_for("localhost:5000/shop/app") is None  # another port


def test_a_catch_all_listed_after_the_hosts_rule_does_not_take_a_ported_image() -> None:
    policy = ImagePolicy(
        _rules(
            ImageRule(name="acme", images=("registry.acme.io/**",)), ImageRule(name="rest", images=("**",))
        )
    )
    for name in ("registry.acme.io:0443/app", "registry.acme.io:443/app", "registry.acme.io/app"):
        rule = policy.rule_for(name)
        assert rule is not None and rule.rule.name == "acme", name
    other = policy.rule_for("other.io/app")
    assert other is not None and other.rule.name == "rest"


def test_a_rule_naming_the_port_keeps_its_images_wherever_it_is_listed() -> None:
    policy = ImagePolicy(
        _rules(
            ImageRule(name="host", images=("localhost/**",)),
            ImageRule(name="port", images=("localhost:443/**",), exclude=("localhost:443/shop/old/**",)),
        )
    )
    for name, expected in [
        ("localhost:443/shop/app", "port"),
        ("localhost/shop/app", "host"),
        ("localhost:443/shop/old/x", "host"),  # not the port rule's: still its registry's
    ]:
        rule = policy.rule_for(name)
        assert (rule.rule.name if rule else None) == expected, name


def test_a_rule_keeps_a_ported_image_only_through_a_pattern_naming_its_registry() -> None:
    """The pattern that took the image decides, not any pattern of its rule: `**` beside a
    `host:443/sandbox/**` pattern is a catch-all, and does not take `host:443/prod/...` from the
    host's rule listed before it."""
    policy = ImagePolicy(
        _rules(
            ImageRule(name="prod", images=("registry.acme.io/**",)),
            ImageRule(name="sandbox-and-rest", images=("registry.acme.io:443/sandbox/**", "**")),
        )
    )
    for name, expected in [
        ("registry.acme.io:443/prod/api", "prod"),
        ("registry.acme.io:0443/prod/api", "prod"),
        ("registry.acme.io/prod/api", "prod"),
        ("registry.acme.io:443/sandbox/api", "sandbox-and-rest"),  # its pattern names the port
        ("other.io/app", "sandbox-and-rest"),
    ]:
        rule = policy.rule_for(name)
        assert (rule.rule.name if rule else None) == expected, name


@pytest.mark.parametrize(
    "name",
    [
        "registry-1.docker.io:443/library/nginx",
        "index.docker.io:443/library/nginx",
        "docker.io:443/library/nginx",
        "registry-1.docker.io:0443/nginx",  # the repository as Docker Hub names it: library/nginx
        "index.docker.io:80/library/nginx",
    ],
)
def test_docker_hubs_hosts_with_a_default_port_are_judged_by_the_docker_hub_rule(name: str) -> None:
    policy = ImagePolicy(
        _rules(
            ImageRule(name="hub", images=("docker.io/library/**",), exclude=("docker.io/library/busybox",)),
            ImageRule(name="rest", images=("**",)),
        )
    )
    rule = policy.rule_for(Reference.parse(name).name)
    assert rule is not None and rule.rule.name == "hub"
    excluded = policy.rule_for(Reference.parse(name.replace("nginx", "busybox")).name)
    assert excluded is not None and excluded.rule.name == "rest"  # the hub rule's exclusion holds
    other = policy.rule_for(Reference.parse("registry-1.docker.io:5000/library/nginx").name)
    assert other is not None and other.rule.name == "rest"  # another port: another registry


@pytest.mark.parametrize(
    "name",
    [
        "registry.acme.io:443/prod/api",
        "registry.acme.io:0443/prod/api",
        "registry.acme.io:80/prod/api",
        "127.0.0.1:80/prod/api",
        "127.0.0.1:00080/prod/api",
    ],
)
def test_an_earlier_rules_exclusion_holds_for_an_image_written_with_a_default_port(name: str) -> None:
    """Found in review: the catch-all listed first tested its exclusion only against the name as
    written, so `host:443/prod/api` escaped `exclude: host/prod/**` into the lenient baseline."""
    host = Reference.parse(name).registry.rpartition(":")[0]
    policy = ImagePolicy(
        _rules(
            ImageRule(name="baseline", images=("**",), exclude=(f"{host}/prod/**",)),
            ImageRule(name="prod", images=(f"{host}/prod/**",)),
        )
    )
    rule = policy.rule_for(Reference.parse(name.upper().replace("/PROD/API", "/prod/api")).name)
    assert rule is not None and rule.rule.name == "prod"
    other = policy.rule_for(Reference.parse(name.replace("/prod/", "/dev/")).name)
    assert other is not None and other.rule.name == "baseline"


@pytest.mark.parametrize("written", ["registry.acme.io:443/prod/**", "registry.acme.io:0443/prod/**"])
def test_an_exclusion_written_with_a_default_port_holds_for_the_name_without_it(written: str) -> None:
    policy = ImagePolicy(
        _rules(
            ImageRule(name="baseline", images=("**",), exclude=(written,)),
            ImageRule(name="prod", images=("registry.acme.io/prod/**",)),
        )
    )
    for name in (
        "registry.acme.io/prod/api",
        "registry.acme.io:443/prod/api",
        "registry.acme.io:0443/prod/api",
    ):
        rule = policy.rule_for(name)
        assert rule is not None and rule.rule.name == "prod", name


def test_a_pattern_naming_the_port_matches_it_written_with_leading_zeros() -> None:
    policy = ImagePolicy(
        _rules(
            ImageRule(name="host", images=("localhost/**",)),
            ImageRule(name="port", images=("localhost:443/sandbox/**",)),
        )
    )
    rule = policy.rule_for("localhost:0443/sandbox/app")
    assert rule is not None and rule.rule.name == "port"


def test_a_tag_does_not_pick_the_rule(keys: dict[str, CosignKey]) -> None:
    """Rules match `registry/repository`: a tag that ends like an excluded or a lenient repository
    (`v2-debug`, `v2-dev`) leaves the image under its repository's rule."""
    registry = MemoryRegistry()
    unsigned = registry.image(REPO, "v2")
    for tag in ("v2-debug", "v2-dev"):
        registry.push_manifest(REPO, registry.manifests[unsigned][0], registry.manifests[unsigned][1], tag)
    dev_repo, debug_repo = (
        Reference.parse("registry.test/shop/api-dev"),
        Reference.parse("registry.test/shop/api-debug"),
    )
    registry.image(dev_repo, "v1")
    registry.image(debug_repo, "v1")
    images = dataclasses.replace(
        settings(keys),
        rules=(
            ImageRule(name="dev-repos", images=("registry.test/**-dev",)),
            ImageRule(
                name="shop",
                images=("registry.test/shop/**",),
                exclude=("registry.test/**-debug",),
                authorities=("release",),
            ),
        ),
    )
    v = verifier(images, registry)
    for tag in ("v2", "v2-debug", "v2-dev"):
        result = v.verify(f"{REPO.name}:{tag}")
        assert (result.status, result.rule) == ("failed", "shop"), tag
    assert (v.verify(f"{dev_repo.name}:v1").status, v.verify(f"{dev_repo.name}:v1").rule) == (
        "verified",
        "dev-repos",
    )
    assert v.verify(f"{debug_repo.name}:v1").status == "unmatched"  # the exclusion, for repositories
    assert v.verify(f"{REPO.name}@{unsigned}").rule == "shop"


def test_an_image_at_the_https_port_is_verified_there_under_the_hosts_rule(
    keys: dict[str, CosignKey],
) -> None:
    registry = MemoryRegistry()
    ported = Reference.parse("registry.test:443/shop/api")
    signed = registry.image(ported, "v1", content=b"signed, at :443")
    registry.attach_cosign(ported, signed, ".sig", [keys["release"].signature_layer(ported.name, signed)])
    unsigned = registry.image(REPO, "v1", content=b"unsigned, without the port")
    v = verifier(settings(keys), registry)
    at_port = v.verify("registry.test:443/shop/api:v1")
    assert (at_port.status, at_port.rule, at_port.digest) == ("verified", "shop", signed), at_port.problems
    bare = v.verify("registry.test/shop/api:v1")  # another name: its own lookup and cache entry
    assert (bare.status, bare.digest) == ("failed", unsigned)
    unsigned_at_port = registry.image(ported, "v2", content=b"unsigned, at :443")
    late = v.verify("registry.test:443/shop/api:v2")
    assert (late.status, late.rule, late.digest) == ("failed", "shop", unsigned_at_port)


def test_a_result_cached_by_an_older_version_of_verifying_is_not_served(keys: dict[str, CosignKey]) -> None:
    """A shared cache outlives a rolling upgrade: a verdict an old replica reached (say, without
    reading the `.att` tag) must not be served by a new one, fresh or stale."""
    from trustgate.artifacts.cache import Entry, MemoryCache
    from trustgate.model import ImageResult

    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")  # not signed: verifying it fails
    policy = ImagePolicy(settings(keys))
    (rule,) = policy.rules
    name = REPO.name
    forged = ImageResult(f"{name}@{digest}", "verified", rule="shop", digest=digest)

    def verify(*keys: str) -> ImageResult:
        cache: MemoryCache[ImageResult] = MemoryCache()
        for key in keys:
            cache.put(key, Entry(forged, fresh_until=1e9, stale_until=1e9))
        return ImageVerifier(policy, registry, cache=cache, clock=Clock()).verify(f"{name}@{digest}")

    unversioned = verify(f"{rule.digest}|{name}@{digest}")  # keys as written before they had a version
    assert unversioned.status == "failed" and unversioned.cache == "miss", unversioned

    from trustgate.artifacts.verifier import SEMANTICS_VERSION, result_key

    current = result_key(rule, name, digest)
    previous = verify(current.replace(f"v{SEMANTICS_VERSION}|", f"v{SEMANTICS_VERSION - 1}|", 1))
    assert previous.status == "failed" and previous.cache == "miss", previous
    served = verify(current)  # the current version's key is the one used: what it holds is served
    assert served.status == "verified" and served.cache == "hit"


def test_the_policy_digest_carries_the_semantics_version(
    keys: dict[str, CosignKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verification summary names the policy digest it was issued under: one an older release
    issued (which skipped a payload too large to read) must not count under today's semantics,
    as an older release's cached result is not served."""
    from trustgate.artifacts import policy as policy_module

    (now,) = ImagePolicy(settings(keys)).rules
    monkeypatch.setattr(policy_module, "SEMANTICS_VERSION", policy_module.SEMANTICS_VERSION - 1)
    (before,) = ImagePolicy(settings(keys)).rules
    assert now.policy_digest != before.policy_digest


def _nested(registry: MemoryRegistry, levels: int) -> str:
    """An unsigned image behind `levels` indexes, each listing only the next (containerd follows them)."""
    digest = registry.image(REPO, "nested-leaf", content=b"unsigned, nested")
    entry = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(registry.manifests[digest][0])}
    for _ in range(levels):
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
        digest = registry.push_json_manifest(REPO, body)
        entry = {"mediaType": OCI_INDEX, "digest": digest, "size": len(registry.manifests[digest][0])}
    registry.push_manifest(REPO, registry.manifests[digest][0], OCI_INDEX, "v1")
    return digest


@pytest.mark.parametrize("what", ["platforms", "nested", "missing"])
def test_an_image_whoever_pushes_makes_unreadable_fails_and_is_never_unverifiable(
    keys: dict[str, CosignKey], what: str
) -> None:
    """Found in review: an unsigned index listing 129 platforms, or nesting 5 indexes deep, was
    "could not verify", which the failure policy admits in fail-open namespaces; whoever can push
    chose it. What the image's own manifests are (and whether they exist) fails the image."""
    registry = MemoryRegistry()
    if what == "platforms":
        registry.index(REPO, "v1", [("linux", f"a{i}") for i in range(129)])
    elif what == "nested":
        _nested(registry, 5)
    result = verifier(settings(keys, attestations=(provenance(),)), registry).verify(f"{REPO.name}:v1")
    assert result.status == "failed", result.problems
    (problem,) = result.problems
    assert problem.rule == "image-manifest" and problem.blocking
    assert problem.message.startswith(f"{REPO.name}:v1 cannot be verified: ")


@pytest.mark.parametrize("kind", ["connection", "timeout", "server-error", "rate-limited", "unauthorized"])
def test_an_outage_resolving_an_index_stays_unverifiable(keys: dict[str, CosignKey], kind: str) -> None:
    registry = MemoryRegistry()
    registry.index(REPO, "v1", [("linux", "amd64")])
    registry.fail = kind
    result = verifier(settings(keys, attestations=(provenance(),)), registry).verify(f"{REPO.name}:v1")
    assert result.status == "unverifiable" and result.problems[0].rule == "image-unverifiable"


def test_a_rule_without_attestations_never_reads_an_indexs_platforms(keys: dict[str, CosignKey]) -> None:
    """A signature over the index's digest covers everything it names: the platforms (129 of them
    here, or indexes nested deeper than trustgate follows) are not read, and the signed index passes."""
    registry = MemoryRegistry()
    many, _ = registry.index(REPO, "many", [("linux", f"a{i}") for i in range(129)])
    sign(registry, keys["release"], many)
    nested = _nested(registry, 5)
    sign(registry, keys["release"], nested)
    v = verifier(settings(keys), registry)
    for reference in (f"{REPO.name}:many", f"{REPO.name}:v1"):
        result = v.verify(reference)
        assert result.status == "verified", (reference, result.problems)
        assert result.platforms == []
    registry.index(REPO, "unsigned", [("linux", f"b{i}") for i in range(129)])
    result = v.verify(f"{REPO.name}:unsigned")
    assert result.status == "failed" and result.problems[0].rule == "image-signature"


def test_junk_layers_before_a_valid_signature_fail_the_image_past_the_budget(
    keys: dict[str, CosignKey],
) -> None:
    """Found in review: 200 junk layers and one valid signature in one `.sig` manifest were read
    whole, past maxArtifacts (64), and the image passed: the layers not read may deny it."""
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    junk = [(b"junk", SIMPLESIGNING, {"dev.cosignproject.cosign/signature": f"AAAA{i}"}) for i in range(200)]
    registry.attach_cosign(REPO, digest, ".sig", [*junk, keys["release"].signature_layer(REPO.name, digest)])
    result = verifier(settings(keys), registry).verify(f"{REPO.name}:v1")
    assert result.status == "failed"
    (problem,) = [p for p in result.problems if p.rule == "image-artifact"]
    assert problem.blocking and "images.registries.maxArtifacts (64)" in problem.message


def test_payloads_past_the_images_byte_budget_fail_it(keys: dict[str, CosignKey]) -> None:
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    heavy = [
        (b"x" * 4000 + b"%d" % i, SIMPLESIGNING, {"dev.cosignproject.cosign/signature": f"A{i}"})
        for i in range(3)
    ]
    registry.attach_cosign(REPO, digest, ".sig", [keys["release"].signature_layer(REPO.name, digest), *heavy])
    images = settings(keys)
    images = dataclasses.replace(
        images, registries=dataclasses.replace(images.registries, max_total_payload_bytes=9000)
    )
    result = verifier(images, registry).verify(f"{REPO.name}:v1")
    assert result.status == "failed"
    (problem,) = [p for p in result.problems if p.blocking]
    assert problem.rule == "image-artifact"
    assert "images.registries.maxTotalPayloadBytes (9000 bytes)" in problem.message
    assert "1 signature or attestation payload(s)" in problem.message


def test_attestations_cost_nothing_to_a_rule_wanting_signatures_only(keys: dict[str, CosignKey]) -> None:
    """Found in review: a validly signed image failed its signatures-only rule because its SBOMs
    in the `.att` tag spent maxTotalPayloadBytes (or maxArtifacts); that tag is not read for it."""
    registry = MemoryRegistry()
    digest = registry.image(REPO, "v1")
    sign(registry, keys["release"], digest)
    sboms = [
        (b"{%d" % i + b"x" * 4000 + b"}", DSSE, {"predicateType": "https://spdx.dev/Document"})
        for i in range(3)
    ]
    small = [(b"{%d}" % i, DSSE, {"predicateType": "https://spdx.dev/Document"}) for i in range(3, 73)]
    registry.attach_cosign(REPO, digest, ".att", [*sboms, *small])
    images = settings(keys)
    images = dataclasses.replace(
        images, registries=dataclasses.replace(images.registries, max_total_payload_bytes=9000)
    )
    registry.manifest_lookups.clear()
    result = verifier(images, registry).verify(f"{REPO.name}@{digest}")
    assert result.status == "verified", result.problems
    assert digest.replace(":", "-") + ".att" not in registry.manifest_lookups


def _heavy_unsigned_index(registry: MemoryRegistry, platforms: int) -> tuple[str, list[str]]:
    """An unsigned index whose platforms each carry a `.sig` tag of 8 distinct 200 KB layers."""
    index, children = registry.index(REPO, "v9", [("linux", f"arch{i}") for i in range(platforms)])
    for n, child in enumerate(children):
        layers = [
            (
                b"%d-%d" % (n, k) + b"x" * 200_000,
                SIMPLESIGNING,
                {"dev.cosignproject.cosign/signature": "AAAA"},
            )
            for k in range(8)
        ]
        registry.attach_cosign(REPO, child, ".sig", layers)
    return index, children


def test_the_signed_platforms_hint_is_bounded_and_dropped_when_it_runs_out(
    keys: dict[str, CosignKey],
) -> None:
    """Found in review: the hint after "no signatures" read every platform's `.sig` tag with a
    budget of its own each, and a pusher's heavy tags ran out the admission deadline (allowed in a
    fail-open namespace). It reads a few platforms and bytes at most; past them, no hint."""
    registry = MemoryRegistry()
    index, _ = _heavy_unsigned_index(registry, 16)
    registry.calls = 0
    result = verifier(settings(keys), registry).verify(f"{REPO.name}@{index}")
    assert result.status == "failed"
    (problem,) = result.problems
    assert problem.rule == "image-signature" and problem.message.startswith("no signatures found")
    assert "only its platform manifests are signed" not in problem.message
    assert registry.calls < 20  # 16 platforms of 8 layers each were 150+ lookups


def test_the_signed_platforms_hint_never_outlasts_its_share_of_the_deadline(
    keys: dict[str, CosignKey],
) -> None:
    import time

    class Slow(MemoryRegistry):
        def blob(self, ref: Reference, digest: str, *, max_bytes: int | None = None) -> bytes:
            time.sleep(0.15)
            return super().blob(ref, digest, max_bytes=max_bytes)

    registry = Slow()
    index, children = registry.index(REPO, "v9", [("linux", f"arch{i}") for i in range(16)])
    for child in children:
        sign(registry, keys["release"], child)
    images = settings(keys)
    images = dataclasses.replace(
        images, registries=dataclasses.replace(images.registries, deadline_seconds=0.5)
    )
    started = time.monotonic()
    result = verifier(images, registry).verify(f"{REPO.name}@{index}")
    assert time.monotonic() - started < 0.6  # 16 platforms of one slow blob each were 2.4 s
    (problem,) = result.problems
    assert result.status == "failed" and problem.message.startswith("no signatures found")
    assert "only its platform manifests are signed" not in problem.message


def test_a_keyless_signer_is_its_identity_not_its_certificate() -> None:
    """ADR 5, "Thresholds count signers" (found in review: one workflow signing twice, with two
    Fulcio certificates, met a threshold of two): a keyless signer is (issuer, subject)."""
    from trustgate.artifacts.verifier import _signers
    from trustgate.verify import Evidence

    def keyless(subject: str, certificate: str, issuer: str = "https://issuer.test") -> Evidence:
        return Evidence(
            "ci", "keyless", "sha256:s", subject=subject, issuer=issuer, certificate_sha256=certificate
        )

    def one(*evidence: Evidence) -> bool:
        """Whether signatures (each at its own place) with this `evidence` are one signer."""
        return len(set(_signers(list(enumerate(evidence))))) == 1

    assert one(keyless("https://ci.test/a", "c1"), keyless("https://ci.test/a", "c2"))
    assert not one(keyless("https://ci.test/a", "c1"), keyless("https://ci.test/b", "c2"))
    assert not one(keyless("https://ci.test/a", "c1"), keyless("https://ci.test/a", "c2", "https://o.test"))
    assert one(Evidence("k", "key", "sha256:s", key_id="k1"), Evidence("k", "key", "sha256:s", key_id="k1"))
    assert not one(
        Evidence("k", "key", "sha256:s", key_id="k1"), Evidence("k", "key", "sha256:s", key_id="k2")
    )


def test_signatures_sharing_a_signature_key_certificate_or_identity_are_one_signer() -> None:
    """Found in review: the signer was the certificate's first SAN, or the key, per authority;
    certificates [x, alice] and [y, alice], two certificates of one key, and one keyless bundle
    (counted as alice, and as its key by a key authority) each met a threshold of two alone."""
    from trustgate.artifacts.verifier import _signers
    from trustgate.verify import Evidence

    issuer = "https://i.test"

    def cert(name: str, *sans: str, key: str | None = None) -> Evidence:
        return Evidence(
            "ci", "keyless", "sha256:s", subject=sans[-1], issuer=issuer, identities=sans,
            certificate_sha256=name, key_id=key or f"key of {name}",
        )  # fmt: skip

    def signers(*verified: tuple[int, Evidence]) -> int:
        return len(set(_signers(list(verified))))

    # One certificate, each of its SANs matched by another authority: one signer.
    both = cert("c1", "https://ci.test/a", "https://ci.test/b")
    assert signers((0, both), (0, cert("c1", "https://ci.test/a"))) == 1
    # Certificates that share a SAN, whichever comes first: one signer.
    assert signers((0, cert("c1", "x", "alice")), (1, cert("c2", "y", "alice"))) == 1
    assert signers((0, cert("c1", "alice", "team")), (1, cert("c2", "bob", "team"))) == 1
    # Two certificates for one key, and a key signature with the key of a certificate.
    assert signers((0, cert("c1", "alice", key="K")), (1, cert("c2", "bob", key="K"))) == 1
    keyed = Evidence("release-key", "key", "sha256:s", key_id="K")
    assert signers((0, cert("c1", "alice", key="K")), (1, keyed)) == 1
    # One signature, whatever each authority makes of it: one signer.
    assert signers((0, cert("c1", "alice")), (0, Evidence("k", "key", "sha256:s", key_id="other"))) == 1
    # Through another: alice shares a key with bob's certificate, bob a SAN with carol's.
    chain = [
        (0, cert("c1", "alice", key="K")),
        (1, cert("c2", "bob", key="K")),
        (2, cert("c3", "carol", "bob")),
    ]
    assert signers(*chain) == 1
    # Nothing shared: as many signers as signatures.
    assert signers((0, cert("c1", "alice")), (1, cert("c2", "bob")), (2, keyed)) == 3


@pytest.mark.parametrize("registry", ["localhost:5001", "k3d-registry.localhost:5000", "127.0.0.1:5000"])
def test_a_node_local_registry_says_what_a_development_cluster_does(
    keys: dict[str, CosignKey], registry: str
) -> None:
    """A developer's kind, k3d or minikube cluster maps `localhost:5001` (or `*.localhost`) to a
    registry container; the failure says how to reach it, or how to admit it unverified there."""
    images = dataclasses.replace(
        settings(keys), rules=(ImageRule(name="local", images=(f"{registry}/**",), authorities=("release",)),)
    )
    ref = Reference.parse(f"{registry}/app:v1")
    why = "a node-local address"
    result = verifier(images, MemoryRegistry()).node_local(str(ref), ref, why)
    (problem,) = result.problems
    assert result.status == "failed" and problem.rule == "image-registry"
    assert "kind, k3d and minikube" in problem.message
    assert "registry container's name" in problem.fix
    assert f'images name "{registry}/**"' in problem.fix and "images.registries.nodeLocal" in problem.fix
