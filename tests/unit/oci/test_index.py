"""Walking nested indexes with an in-memory fetch: platforms, loops, depth."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from trustgate.oci import mediatypes as mt
from trustgate.oci.client import Descriptor, Manifest, compute_digest, flatten_index, platform_name
from trustgate.oci.errors import RegistryError


def _index(entries: list[dict[str, Any]], digest: str | None = None) -> Manifest:
    data = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    raw = json.dumps(data).encode()
    return Manifest(digest=digest or compute_digest(raw), media_type=mt.OCI_INDEX, raw=raw, json=data)


def _entry(
    digest: str, media_type: str = mt.OCI_MANIFEST, platform: dict[str, str] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": 10}
    if platform:
        data["platform"] = platform
    return data


A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


def test_flattens_nested_indexes_and_skips_artifacts() -> None:
    inner = _index([_entry(B, platform={"os": "linux", "architecture": "arm", "variant": "v7"})], digest=C)
    top = _index(
        [
            _entry(A, platform={"os": "linux", "architecture": "amd64"}),
            _entry(C, media_type=mt.OCI_INDEX),
            _entry(B, media_type="application/vnd.example.sbom+json"),
        ]
    )
    found = flatten_index(top, {C: inner}.__getitem__, max_depth=4, registry="r", reference="r/app:1")
    assert [(p.platform, p.digest) for p in found] == [("linux/amd64", A), ("linux/arm/v7", B)]


def test_an_index_that_refers_to_an_ancestor_is_a_loop() -> None:
    # Content addressing makes real loops impossible unless a registry lies; the walk checks anyway.
    top = _index([_entry(B, media_type=mt.OCI_INDEX)], digest=A)
    child = _index([_entry(A, media_type=mt.OCI_INDEX)], digest=B)
    with pytest.raises(RegistryError) as caught:
        flatten_index(top, {B: child, A: top}.__getitem__, max_depth=8, registry="r", reference="r/app:1")
    assert caught.value.kind == "loop"
    assert f"{A} -> {B} -> {A}" in caught.value.message


def test_too_deep_nesting_is_reported_as_a_loop() -> None:
    chain = {}
    digests = [f"sha256:{i:064x}" for i in range(10)]
    for parent, child in itertools.pairwise(digests):
        chain[parent] = _index([_entry(child, media_type=mt.OCI_INDEX)], digest=parent)
    chain[digests[-1]] = _index([_entry(A)], digest=digests[-1])
    with pytest.raises(RegistryError) as caught:
        flatten_index(chain[digests[0]], chain.__getitem__, max_depth=3, registry="r", reference="r/app:1")
    assert caught.value.kind == "loop" and "deeper than 3 levels" in caught.value.message


def test_malformed_entry() -> None:
    top = _index([{"mediaType": mt.OCI_MANIFEST, "digest": "nope", "size": 1}])
    with pytest.raises(RegistryError) as caught:
        flatten_index(top, {}.__getitem__, max_depth=4, registry="r", reference="r/app:1")
    assert caught.value.kind == "invalid-manifest" and "digest is invalid" in caught.value.message


def test_descriptor_parsing() -> None:
    with pytest.raises(ValueError, match="no valid size"):
        Descriptor.from_json({"mediaType": "x", "digest": A, "size": -1})
    with pytest.raises(ValueError, match="annotations"):
        Descriptor.from_json({"mediaType": "x", "digest": A, "size": 1, "annotations": {"a": 1}})
    d = Descriptor.from_json(
        {"mediaType": "x", "digest": A, "size": 1, "artifactType": "t", "annotations": {"k": "v"}}
    )
    assert Descriptor.from_json(d.to_json()) == d
    assert platform_name(None) == "unknown"
    assert platform_name({"os": "linux", "architecture": "arm64", "variant": "v8"}) == "linux/arm64/v8"
    # What whoever pushed the index chose: text only (a value nested too deep could not be printed).
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert platform_name({"os": deep, "architecture": 64, "variant": deep}) == "unknown/unknown"


def test_an_index_named_many_times_is_read_once_and_its_manifests_listed_once() -> None:
    inner = _index([_entry(A, platform={"os": "linux", "architecture": "amd64"})] * 20, digest=C)
    top = _index([_entry(C, media_type=mt.OCI_INDEX)] * 20)
    fetched: list[str] = []

    def fetch(digest: str) -> Manifest:
        fetched.append(digest)
        return inner

    found = flatten_index(top, fetch, max_depth=4, registry="r", reference="r/app:1")
    assert fetched == [C]
    assert [p.digest for p in found] == [A]


def test_more_platforms_than_any_real_image_is_refused() -> None:
    many = [
        _entry("sha256:" + f"{i:064x}", platform={"os": "linux", "architecture": "amd64"}) for i in range(200)
    ]
    with pytest.raises(RegistryError) as caught:
        flatten_index(_index(many), {}.__getitem__, max_depth=4, registry="r", reference="r/app:1")
    assert caught.value.kind == "invalid-manifest"
    assert "more than 128 image manifests" in caught.value.message


_BUILDKIT = {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": A}


def test_buildkits_attestation_manifests_are_not_platforms() -> None:
    """`docker buildx build` adds one per platform, `unknown/unknown` and annotated (moby/buildkit
    docs/attestations/attestation-storage.md); found in review: each was asked for the rule's
    attestations, and every buildx image failed."""
    top = _index(
        [
            _entry(A, platform={"os": "linux", "architecture": "amd64"}),
            _entry(B, platform={"os": "unknown", "architecture": "unknown"}) | {"annotations": _BUILDKIT},
        ]
    )
    found = flatten_index(top, lambda d: top, max_depth=4, registry="r", reference="r/x")
    assert [(p.platform, p.digest) for p in found] == [("linux/amd64", A)]


@pytest.mark.parametrize("platform", [{"os": "linux", "architecture": "amd64"}, None])
def test_the_annotation_alone_does_not_hide_a_runnable_platform(platform: dict[str, str] | None) -> None:
    """Whoever pushes writes the annotation; a runtime picks a manifest by its platform (one
    without a platform matches any), so such an entry is still a platform to judge."""
    top = _index([_entry(B, platform=platform) | {"annotations": _BUILDKIT}])
    found = flatten_index(top, lambda d: top, max_depth=4, registry="r", reference="r/x")
    assert [p.digest for p in found] == [B]
