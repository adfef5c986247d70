"""The verification cache: TTLs, negative caching, stale-if-error, one verification per key."""

from __future__ import annotations

import threading
import time

from trustgate.artifacts.cache import Entry, Lookup, MemoryCache
from trustgate.config import CacheConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SETTINGS = CacheConfig(ttl_seconds=60, negative_ttl_seconds=5, stale_if_error_seconds=300, max_entries=100)


def test_a_verified_result_is_reused_until_its_ttl() -> None:
    clock = Clock()
    lookup: Lookup[str] = Lookup(SETTINGS, clock=clock)
    calls: list[int] = []

    def compute() -> tuple[str, str]:
        calls.append(1)
        return f"v{len(calls)}", "ok"

    assert lookup.fetch("k", compute) == ("v1", "miss")
    clock.now += 59
    assert lookup.fetch("k", compute) == ("v1", "hit")
    clock.now += 2
    assert lookup.fetch("k", compute) == ("v2", "miss")
    assert len(calls) == 2


def test_a_failure_is_kept_only_for_the_negative_ttl() -> None:
    clock = Clock()
    lookup: Lookup[str] = Lookup(SETTINGS, clock=clock)
    outcomes = iter([("bad", "negative"), ("good", "ok")])
    assert lookup.fetch("k", lambda: next(outcomes)) == ("bad", "miss")
    clock.now += 4
    assert lookup.fetch("k", lambda: next(outcomes)) == ("bad", "hit")
    clock.now += 2
    assert lookup.fetch("k", lambda: next(outcomes)) == ("good", "miss")


def test_a_registry_error_serves_the_stale_result_inside_the_window_only() -> None:
    clock = Clock()
    lookup: Lookup[str] = Lookup(SETTINGS, clock=clock)
    assert lookup.fetch("k", lambda: ("verified", "ok")) == ("verified", "miss")
    clock.now += 61  # past the TTL: asks again, the registry is down
    assert lookup.fetch("k", lambda: ("registry down", "error")) == ("verified", "stale")
    clock.now += 300  # past TTL + stale window
    assert lookup.fetch("k", lambda: ("registry down", "error")) == ("registry down", "miss")


def test_a_refusal_serves_nothing_stale_and_forgets_what_was_there() -> None:
    """ "refused": the registry answered with something unusable; the old value is not today's."""
    clock = Clock()
    lookup: Lookup[str] = Lookup(SETTINGS, clock=clock)
    assert lookup.fetch("k", lambda: ("old digest", "ok")) == ("old digest", "miss")
    clock.now += 61
    assert lookup.fetch("k", lambda: ("too large", "refused")) == ("too large", "miss")
    clock.now += 1  # and an outage next does not bring the old value back
    assert lookup.fetch("k", lambda: ("registry down", "error")) == ("registry down", "miss")


def test_an_error_is_never_cached() -> None:
    clock = Clock()
    lookup: Lookup[str] = Lookup(SETTINGS, clock=clock)
    assert lookup.fetch("k", lambda: ("down", "error")) == ("down", "miss")
    assert lookup.fetch("k", lambda: ("up", "ok")) == ("up", "miss")


def test_a_failed_result_is_never_served_stale() -> None:
    clock = Clock()
    lookup: Lookup[str] = Lookup(SETTINGS, clock=clock)
    lookup.fetch("k", lambda: ("bad", "negative"))
    clock.now += 6
    assert lookup.fetch("k", lambda: ("down", "error")) == ("down", "miss")


def test_concurrent_requests_for_one_key_share_one_verification() -> None:
    lookup: Lookup[str] = Lookup(SETTINGS)
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def slow() -> tuple[str, str]:
        calls.append(1)
        started.set()
        release.wait(10)
        return "v", "ok"

    results: list[tuple[str, str]] = []
    first = threading.Thread(target=lambda: results.append(lookup.fetch("k", slow)))
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=lambda: results.append(lookup.fetch("k", slow))) for _ in range(8)]
    for t in others:
        t.start()
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert len(calls) == 1
    assert len(results) == 9
    assert all(value == "v" for value, _ in results)


def test_an_exception_in_the_verification_reaches_every_waiter_and_clears() -> None:
    lookup: Lookup[str] = Lookup(SETTINGS)

    def boom() -> tuple[str, str]:
        raise RuntimeError("bug")

    for _ in range(2):  # the in-flight marker is cleared: the second call computes again
        try:
            lookup.fetch("k", boom)
        except RuntimeError as e:
            assert str(e) == "bug"
        else:
            raise AssertionError("the exception was swallowed")
    assert lookup.fetch("k", lambda: ("v", "ok")) == ("v", "miss")


def test_memory_cache_evicts_the_least_recently_used() -> None:
    cache: MemoryCache[str] = MemoryCache(max_entries=2)
    cache.put("a", Entry("A", 1, 1))
    cache.put("b", Entry("B", 1, 1))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", Entry("C", 1, 1))
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
    assert len(cache) == 2


def test_lookups_over_one_store_share_the_verifications_in_flight() -> None:
    store: MemoryCache[str] = MemoryCache()
    first: Lookup[str] = Lookup(SETTINGS, store)
    second: Lookup[str] = Lookup(SETTINGS, store)  # another evaluator thread's verifier
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> tuple[str, str]:
        calls.append(1)
        started.set()
        release.wait(10)
        return "v", "ok"

    results: list[tuple[str, str]] = []
    a = threading.Thread(target=lambda: results.append(first.fetch("k", slow)))
    a.start()
    assert started.wait(10)
    b = threading.Thread(target=lambda: results.append(second.fetch("k", slow)))
    b.start()
    time.sleep(0.2)  # let b reach the lookup while a is still verifying (else it is a plain cache hit)
    release.set()
    a.join(10)
    b.join(10)
    assert len(calls) == 1 and [v for v, _ in results] == ["v", "v"]
