"""Registries fail, gates don't: a real registry (Debian's docker-registry) behind a proxy that
refuses, hangs, trickles or rate-limits (tests/support/faults.py), and a real PostgreSQL holding
the verification cache two processes share."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg import sql
from support.faults import FaultProxy
from support.oci_push import CosignSignature, attach_cosign_signatures, push_image, simple_signing_payload
from support.registry import RegistryProcess

from trustgate.artifacts.cache import Entry, MemoryCache
from trustgate.artifacts.policy import ImagePolicy
from trustgate.artifacts.shared import SharedCache
from trustgate.artifacts.verifier import ImageVerifier
from trustgate.config import AuthorityConfig, CacheConfig, ImageRule, ImagesSettings, RegistryConfig
from trustgate.model import ImageProblem, ImageResult
from trustgate.oci import mediatypes as mt
from trustgate.oci.client import RegistryClient, RegistrySettings
from trustgate.oci.reference import Reference

DEADLINE = 2.0  # seconds: images.registries.deadlineSeconds in these tests
MARGIN = 1.5  # seconds allowed past the deadline (thread scheduling on a shared 2-core machine)
FAST = 1.0  # seconds: "at once", generously


class Clock:
    """The cache's clock, moved by hand: TTLs pass without waiting."""

    now = 0.0

    def __call__(self) -> float:
        return self.now


class Key:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, client: RegistryClient, registry: RegistryProcess, ref: Reference, digest: str) -> None:
        """Sign `digest` as `ref` (the name through the proxy); pushed to the registry directly."""
        payload = simple_signing_payload(ref, digest)
        signature = base64.b64encode(self.private.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
        stored = Reference.parse(f"{registry.host}/{ref.repository}")
        attach_cosign_signatures(client, stored, digest, [CosignSignature(payload, signature)])


@pytest.fixture
def proxy(registry: RegistryProcess) -> Iterator[FaultProxy]:
    p = FaultProxy(registry.host)
    yield p
    p.stop()


@pytest.fixture
def direct(registry: RegistryProcess) -> Iterator[RegistryClient]:
    client = RegistryClient(registry.settings())
    yield client
    client.close()


def _images(proxy: FaultProxy, key: Key, **cache: Any) -> ImagesSettings:
    return ImagesSettings(
        authorities=(AuthorityConfig(name="release", key_pem=key.pem, key_origin="release.pub"),),
        rules=(ImageRule(name="shop", images=(f"{proxy.host}/shop/**",), authorities=("release",)),),
        registries=RegistryConfig(insecure=(proxy.host,), deadline_seconds=DEADLINE, timeout_seconds=5),
        cache=CacheConfig(ttl_seconds=60, negative_ttl_seconds=5, stale_if_error_seconds=3600, **cache),
    )


def _verifier(proxy: FaultProxy, key: Key, tmp_path: Path, clock: Clock) -> ImageVerifier:
    # The client's own defaults (3 retries, 0.5 s backoff doubling, 30 s Retry-After): only the
    # deadline and the breaker keep a failing registry from costing seconds per lookup.
    client = RegistryClient(
        RegistrySettings(
            insecure=(proxy.host,), docker_config=tmp_path / "no-docker-config.json", timeout_seconds=5
        )
    )
    return ImageVerifier(ImagePolicy(_images(proxy, key)), client, clock=clock)


def _push(
    direct: RegistryClient, registry: RegistryProcess, name: str, content: bytes, tag: str = "1"
) -> str:
    return push_image(direct, Reference.parse(f"{registry.host}/shop/{name}:{tag}"), content=content).digest


def _signed(
    proxy: FaultProxy,
    direct: RegistryClient,
    registry: RegistryProcess,
    tmp_path: Path,
    name: str,
    tag: str = "1",
) -> tuple[ImageVerifier, Clock, str]:
    """`shop/{name}:{tag}` pushed and signed, and a verifier (on the proxy, with its own clock) that
    trusts the key: (verifier, clock, digest)."""
    key = Key()
    digest = _push(direct, registry, name, f"{name} {tag} {time.time()}".encode(), tag)
    key.sign(direct, registry, Reference.parse(f"{proxy.host}/shop/{name}"), digest)
    clock = Clock()
    return _verifier(proxy, key, tmp_path, clock), clock, digest


def _timed(verifier: ImageVerifier, reference: str) -> tuple[ImageResult, float]:
    started = time.monotonic()
    result = verifier.verify(reference)
    return result, time.monotonic() - started


@pytest.mark.parametrize("fault", ["refuse", "hang", "429", "5xx"])
def test_a_verified_image_is_answered_stale_at_once_once_the_breaker_trips(
    fault: str,
    proxy: FaultProxy,
    direct: RegistryClient,
    registry: RegistryProcess,
    tmp_path: Path,
) -> None:
    verifier, clock, digest = _signed(proxy, direct, registry, tmp_path, f"api-{fault}")
    unknown = _push(direct, registry, f"worker-{fault}", f"worker {fault} {time.time()}".encode())
    image = f"{proxy.host}/shop/api-{fault}@{digest}"
    first = verifier.verify(image)
    assert (first.status, first.cache) == ("verified", "miss"), first.problems

    proxy.set(fault)
    clock.now = 120  # past the 60 s TTL, well inside the stale window
    tripped, took = _timed(verifier, image)  # this one finds out: bounded by the deadline
    assert (tripped.status, tripped.cache) == ("verified", "stale")
    assert took < DEADLINE + MARGIN
    asked = len(proxy.requests)
    for _ in range(3):
        again, took = _timed(verifier, image)
        assert (again.status, again.cache, again.digest) == ("verified", "stale", digest)
        assert took < FAST
    other, took = _timed(verifier, f"{proxy.host}/shop/worker-{fault}@{unknown}")
    assert other.status == "unverifiable" and took < FAST
    assert "marked down" in other.problems[0].message and proxy.host in other.problems[0].message
    assert len(proxy.requests) == asked  # the registry was left alone while marked down


@pytest.mark.parametrize("fault", ["hang", "trickle", "429", "refuse"])
def test_an_unknown_image_is_unverifiable_within_the_deadline(
    fault: str,
    proxy: FaultProxy,
    direct: RegistryClient,
    registry: RegistryProcess,
    tmp_path: Path,
) -> None:
    key = Key()
    digest = _push(direct, registry, f"new-{fault}", f"new {fault} {time.time()}".encode())
    verifier = _verifier(proxy, key, tmp_path, Clock())
    proxy.set(fault, retry_after="3600", trickle_interval=0.5)
    result, took = _timed(verifier, f"{proxy.host}/shop/new-{fault}@{digest}")
    assert result.status == "unverifiable"
    assert took < DEADLINE + MARGIN, f"{fault}: {took:.1f} s; {result.problems[0].message}"
    message = result.problems[0].message
    assert proxy.host in message
    if fault == "429":
        assert "retry after" in message


def test_a_slow_registry_is_waited_for_within_the_deadline_only(
    proxy: FaultProxy, direct: RegistryClient, registry: RegistryProcess, tmp_path: Path
) -> None:
    """A trickle slow enough to fail the deadline, but a registry that does answer, is verified later."""
    verifier, _clock, digest = _signed(proxy, direct, registry, tmp_path, "slow")
    proxy.set("trickle", trickle_interval=0.5)
    assert verifier.verify(f"{proxy.host}/shop/slow@{digest}").status == "unverifiable"
    proxy.set("pass")
    time.sleep(2.1)  # the breaker's first interval
    assert verifier.verify(f"{proxy.host}/shop/slow@{digest}").status == "verified"


def _oversized_index(direct: RegistryClient, registry: RegistryProcess, tag: str) -> str:
    """Point `tag` of shop/app at an index of 129 platform manifests (one more than trustgate reads)."""
    ref = Reference.parse(f"{registry.host}/shop/app")
    children = [
        push_image(
            direct, ref, tag=None, content=f"evil {i} {time.time()}".encode(), platform=("linux", f"a{i}")
        )
        for i in range(129)
    ]
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [c.descriptor() for c in children]}
    ).encode()
    return direct.push_manifest(ref, index, mt.OCI_INDEX, tag)


@pytest.mark.parametrize("then", ["up", "refuse"])
def test_a_tag_the_registry_cannot_resolve_any_more_is_never_answered_by_its_old_digest(
    then: str, proxy: FaultProxy, direct: RegistryClient, registry: RegistryProcess, tmp_path: Path
) -> None:
    """A tag re-pointed at a manifest trustgate refuses (too many platforms) is not "an outage": the
    registry answered, and the verdict of the digest the tag used to name must not admit it, neither
    now nor when the registry goes down afterwards."""
    verifier, clock, _digest = _signed(proxy, direct, registry, tmp_path, "app")
    image = f"{proxy.host}/shop/app:1"
    assert verifier.verify(image).status == "verified"

    index = _oversized_index(direct, registry, "1")
    clock.now = 40  # past the tag's 30 s, inside the digest's 60 s TTL and the 3600 s stale window
    moved = verifier.verify(image)
    # The registry answered: the tag names an unsigned index now (a rule wanting signatures only
    # verifies the index's digest, and never reads its 129 platforms), not the old digest.
    assert (moved.status, moved.cache, moved.digest) == ("failed", "miss", index), moved
    assert moved.problems[0].rule == "image-signature"
    if then == "refuse":  # an outage after the refusal: the old mapping was forgotten
        proxy.set("refuse")
        clock.now = 45
        down = verifier.verify(image)
        assert (down.status, down.digest) == ("unverifiable", None), down


def test_an_outage_answers_a_digest_stale_but_never_a_tag_by_its_old_digest(
    proxy: FaultProxy, direct: RegistryClient, registry: RegistryProcess, tmp_path: Path
) -> None:
    """Stale-if-error serves what cannot change: a digest's verified result. A tag's old digest
    would let whoever re-pointed the tag run under the old verdict, and an "outage" is theirs to
    cause (one 429 or 5xx on the host trips its breaker)."""
    verifier, clock, digest = _signed(proxy, direct, registry, tmp_path, "app", "2")
    image = f"{proxy.host}/shop/app:2"
    assert verifier.verify(image).status == "verified"
    assert verifier.verify(f"{proxy.host}/shop/app@{digest}").status == "verified"
    proxy.set("refuse")
    clock.now = 40
    tagged = verifier.verify(image)
    assert tagged.status == "unverifiable", tagged
    pinned = verifier.verify(f"{proxy.host}/shop/app@{digest}")  # its result: fresh, or stale past its TTL
    assert (pinned.status, pinned.digest) == ("verified", digest) and pinned.cache in ("hit", "stale")


# --- the shared cache ---------------------------------------------------------------------------


def _worker(config: Path, *references: str) -> list[dict[str, Any]]:
    worker = Path(__file__).parents[1] / "support" / "image_worker.py"
    done = subprocess.run(
        [sys.executable, str(worker), str(config), *references],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def shared_config(tmp_path: Path, proxy: FaultProxy, postgres_url: str) -> tuple[Path, Key]:
    key = Key()
    (tmp_path / "release.pub").write_bytes(key.pem)
    (tmp_path / "cache.key").write_bytes(b"k" * 16 + b"test-only HMAC key, 48 bytes long!")
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: trustgate.dev/v1alpha1
            kind: Config
            images:
              authorities:
                - name: release
                  key: {{path: release.pub}}
              rules:
                - name: shop
                  images: ["{proxy.host}/shop/**"]
                  signatures: {{authorities: [release]}}
              registries:
                insecure: ["{proxy.host}"]
                dockerConfig: no-docker-config.json
                deadlineSeconds: {DEADLINE}
              cache:
                url: "{postgres_url}"
                hmacKeyFile: cache.key
            """
        )
    )
    return config, key


def test_a_second_process_uses_what_the_first_verified_without_asking_the_registry(
    shared_config: tuple[Path, Key], proxy: FaultProxy, direct: RegistryClient, registry: RegistryProcess
) -> None:
    config, key = shared_config
    digest = _push(direct, registry, "shared", f"shared {time.time()}".encode())
    key.sign(direct, registry, Reference.parse(f"{proxy.host}/shop/shared"), digest)
    image = f"{proxy.host}/shop/shared@{digest}"
    [first] = _worker(config, image)
    assert (first["status"], first["cache"]) == ("verified", "miss"), first
    asked = len(proxy.requests)
    assert asked > 0
    [second] = _worker(config, image)
    assert (second["status"], second["cache"]) == ("verified", "hit"), second
    assert len(proxy.requests) == asked  # not one registry request


def test_a_tampered_cache_row_is_not_trusted(
    shared_config: tuple[Path, Key],
    proxy: FaultProxy,
    direct: RegistryClient,
    registry: RegistryProcess,
    postgres_url: str,
) -> None:
    config, _ = shared_config
    digest = _push(direct, registry, "unsigned", f"unsigned {time.time()}".encode())
    image = f"{proxy.host}/shop/unsigned@{digest}"
    [first] = _worker(config, image)
    assert first["status"] == "failed"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        [(body,)] = conn.execute("SELECT body FROM trustgate_image_cache").fetchall()
        forged = json.loads(body)
        forged["value"]["status"] = "verified"
        forged["value"]["problems"] = []
        conn.execute("UPDATE trustgate_image_cache SET body = %s", (json.dumps(forged),))
    asked = len(proxy.requests)
    [second] = _worker(config, image)
    assert (second["status"], second["cache"]) == ("failed", "miss"), second
    assert len(proxy.requests) > asked  # verified again at the registry
    # A row forged from scratch, with a MAC made without the key, is not trusted either.
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE trustgate_image_cache SET body = %s, mac = %s", (json.dumps(forged), "0" * 64))
    [third] = _worker(config, image)
    assert third["status"] == "failed"


CACHE_KEY = b"k" * 16 + b"test-only HMAC key, 48 bytes long!"
CACHED = "sha256:rule|registry.example/shop/api@sha256:" + "a" * 64


def _cached(status: str, wall: list[float], *, fresh: float, stale: float) -> Entry[ImageResult]:
    """An entry as a replica whose monotonic clock reads `wall[0]` writes it."""
    problems = [] if status == "verified" else [ImageProblem("image-signature", "signature revoked", "")]
    result = ImageResult(
        CACHED.split("|")[1], status, rule="shop", digest="sha256:" + "a" * 64, problems=problems
    )
    return Entry(result, wall[0] + fresh, wall[0] + stale)


@pytest.fixture
def replica(postgres_url: str) -> Iterator[Callable[[list[float]], SharedCache]]:
    """Replicas of the shared cache whose clocks (monotonic and wall) read `wall[0]`."""
    made: list[SharedCache] = []

    def make(wall: list[float]) -> SharedCache:
        made.append(
            SharedCache(
                url=postgres_url,
                key=CACHE_KEY,
                local=MemoryCache(100),
                clock=lambda: wall[0],
                wall=lambda: wall[0],
            )
        )
        return made[-1]

    yield make
    for cache in made:
        cache.close()


def _row(postgres_url: str) -> dict[str, Any]:
    """The one cache row, every column."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        cursor = conn.execute("SELECT * FROM trustgate_image_cache")
        [row] = cursor.fetchall()
        assert cursor.description is not None
        return {column.name: value for column, value in zip(cursor.description, row, strict=True)}


def test_an_older_genuine_cache_row_restored_over_a_newer_one_is_not_trusted(
    postgres_url: str, replica: Callable[[list[float]], SharedCache]
) -> None:
    wall = [1_000_000.0]
    writer = replica(wall)
    writer.put(CACHED, _cached("verified", wall, fresh=300, stale=900))  # R1, fresh until +300 s
    old = _row(postgres_url)
    wall[0] += 10  # the signature is revoked; a replica verifies again: R2, failed
    writer.put(CACHED, _cached("failed", wall, fresh=60, stale=60))
    reader = replica(wall)
    seen = reader.get(CACHED)
    assert seen is not None and seen.value.status == "failed"
    # Whoever can write the table puts back R1, every column of it: a genuine MAC, still fresh.
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        columns = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in old)
        conn.execute(sql.SQL("UPDATE trustgate_image_cache SET {}").format(columns), list(old.values()))
    wall[0] += 61  # R2 has expired here, R1 would still be fresh
    again = reader.get(CACHED)
    assert again is None or again.value.status == "failed"
    assert (reader.rolled_back, reader.rejected) == (1, 1)
    # The writer, which saw R2 (it wrote it), will not take R1 either.
    writer.local = MemoryCache(100)
    assert writer.get(CACHED) is None and writer.rolled_back == 1


def test_a_writer_never_replaces_a_newer_cache_row_and_a_failure_wins_a_tie(
    postgres_url: str, replica: Callable[[list[float]], SharedCache]
) -> None:
    wall = [2_000_000.0]
    late, early = replica(wall), replica([wall[0] - 5])
    late.put(CACHED, _cached("failed", wall, fresh=60, stale=60))
    # A slower replica finishes an older verification after it: the newer failure stays.
    early.put(CACHED, _cached("verified", [wall[0] - 5], fresh=300, stale=900))
    assert json.loads(_row(postgres_url)["body"])["value"]["status"] == "failed"
    # Written at the same time, a failure wins over a success, in whichever order they arrive.
    tied = [wall[0] + 100]
    for first, second in (("verified", "failed"), ("failed", "verified")):
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("DELETE FROM trustgate_image_cache")
        a, b = replica(tied), replica(tied)
        a.put(CACHED, _cached(first, tied, fresh=60, stale=60))
        b.put(CACHED, _cached(second, tied, fresh=60, stale=60))
        assert json.loads(_row(postgres_url)["body"])["value"]["status"] == "failed"
        reader = replica(tied)
        got = reader.get(CACHED)
        assert got is not None and got.value.status == "failed"


def test_a_hung_registry_holds_a_bounded_number_of_evaluators(
    registry: RegistryProcess, direct: RegistryClient, tmp_path: Path
) -> None:
    """Issue 14's bulkhead: the webhook's evaluators (threads, one verifier each over one shared
    cache) meet a registry that hangs; it holds all but one of them, and a Pod whose images come
    from another registry is answered at once, long before the hung requests time out."""
    hung, healthy = FaultProxy(registry.host), FaultProxy(registry.host)
    try:
        key = Key()
        digest = _push(direct, registry, "bulkhead", f"bulkhead {time.time()}".encode())
        for proxy in (hung, healthy):
            key.sign(direct, registry, Reference.parse(f"{proxy.host}/shop/bulkhead"), digest)
        evaluators = 4
        settings = ImagesSettings(
            authorities=(AuthorityConfig(name="release", key_pem=key.pem, key_origin="release.pub"),),
            rules=(
                ImageRule(
                    name="shop",
                    images=(f"{hung.host}/shop/**", f"{healthy.host}/shop/**"),
                    authorities=("release",),
                ),
            ),
            # a long timeout and deadline: without the bulkhead every evaluator would wait them out
            registries=RegistryConfig(
                insecure=(hung.host, healthy.host), timeout_seconds=8, deadline_seconds=9
            ).sharing(evaluators),
        )
        assert settings.registries.max_requests_per_registry == evaluators - 1
        policy = ImagePolicy(settings)
        shared: MemoryCache[ImageResult] = MemoryCache()
        clients = [
            RegistryClient(RegistrySettings.from_config(settings.registries)) for _ in range(evaluators)
        ]
        verifiers = iter([ImageVerifier(policy, client, cache=shared) for client in clients])
        local = threading.local()

        def evaluate(reference: str) -> tuple[ImageResult, float]:
            if not hasattr(local, "verifier"):
                local.verifier = next(verifiers)
            started = time.monotonic()
            return local.verifier.verify(reference), time.monotonic() - started

        hung.set("hang")
        with ThreadPoolExecutor(max_workers=evaluators) as pool:
            stuck = [pool.submit(evaluate, f"{hung.host}/shop/bulkhead@{digest}") for _ in range(evaluators)]
            submitted = time.monotonic()
            other = pool.submit(evaluate, f"{healthy.host}/shop/bulkhead@{digest}")
            result, _ = other.result(timeout=30)
            answered_in = time.monotonic() - submitted
            assert result.status == "verified", result.problems
            # the 4th hung lookup waited queueSeconds (1 s) for a slot, then freed its evaluator
            assert answered_in < 1.0 + FAST + MARGIN
            hung.set("pass")  # let the held requests end (each would have waited its 8 s)
            outcomes = [future.result(timeout=30)[0] for future in stuck]
        refused = [r for r in outcomes if r.status == "unverifiable" and "is busy" in r.problems[0].message]
        assert len(refused) >= 1, [r.problems for r in outcomes]
        assert "maxRequestsPerRegistry" in refused[0].problems[0].message
        assert hung.host in refused[0].problems[0].message
        for client in clients:
            client.close()
    finally:
        hung.stop()
        healthy.stop()


def test_refused_rows_are_counted_and_reported_once_per_interval(
    postgres_url: str, replica: Callable[[list[float]], SharedCache], caplog: pytest.LogCaptureFixture
) -> None:
    wall = [2_000_000.0]
    writer = replica(wall)
    writer.put(CACHED, _cached("failed", wall, fresh=300, stale=300))
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # forged: a MAC made without the key
        conn.execute("UPDATE trustgate_image_cache SET mac = %s", ("0" * 64,))
    reader = replica(wall)
    caplog.set_level("WARNING", logger="trustgate.cache")
    for _ in range(3):
        assert reader.get(CACHED) is None
    assert (reader.bad_mac, reader.rejected) == (3, 3)
    [record] = [r for r in caplog.records if r.name == "trustgate.cache"]  # one warning, not three
    message = record.getMessage()
    assert "1 with a bad MAC" in message and CACHED in message and "hmacKeyFile" in message
    assert "password" not in message and "@" not in message.split(" ")[2]
    wall[0] += 61  # the next interval: the two refused since are reported
    assert reader.get(CACHED) is None
    assert "3 with a bad MAC" in caplog.records[-1].getMessage()


def test_each_process_deletes_expired_rows_on_a_schedule(
    postgres_url: str, replica: Callable[[list[float]], SharedCache]
) -> None:
    wall = [3_000_000.0]
    cache = replica(wall)
    expired = "sha256:rule|registry.example/shop/old@sha256:" + "b" * 64
    cache.put(expired, _cached("verified", wall, fresh=10, stale=20))  # the first write sweeps (nothing)
    assert cache.swept == 0
    wall[0] += 30  # past its stale window
    cache.put(CACHED, _cached("verified", wall, fresh=300, stale=900))
    assert cache.swept == 0  # the next sweep is not due yet

    def keys() -> set[str]:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            return {k for (k,) in conn.execute("SELECT key FROM trustgate_image_cache").fetchall()}

    assert expired in keys()
    wall[0] += 3600
    cache.put(CACHED, _cached("verified", wall, fresh=300, stale=900))
    assert cache.swept >= 1 and keys() == {CACHED}
