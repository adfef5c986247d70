"""The verification cache: results keyed by image digest and policy hash.

Owns: how long a result is reused (a TTL for verified results, a shorter one
for failures), how long a verified result may still be served past its TTL
while the registry cannot be reached (stale-if-error), the bound on entries,
making concurrent requests for the same key share one verification, and
keeping results that stand on something revocable (a verification summary)
apart, re-checked on every hit.
Leaves out: what a result means (the verifier decides) and where replicas
share results (a store behind `VerificationCache`; in memory by default).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from trustgate.config import CacheConfig
from trustgate.oci.breaker import Breakers

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    value: T
    fresh_until: float  # clock seconds; reuse without asking the registry until then
    stale_until: float  # past fresh_until and before this, serve it only when re-verifying fails


class VerificationCache(Protocol[T]):
    """Where results live; shared by every thread of one process."""

    def get(self, key: str) -> Entry[T] | None: ...

    def put(self, key: str, entry: Entry[T]) -> None: ...


class MemoryCache(Generic[T]):
    """A bounded, least-recently-used in-memory cache."""

    def __init__(self, max_entries: int = 10_000, *, revocable: bool = True) -> None:
        self._max = max(1, max_entries)
        self._items: OrderedDict[str, Entry[T]] = OrderedDict()
        self._lock = threading.Lock()
        # Results that stand on something revocable (a verification summary), kept apart: only
        # `Lookup.fetch` and `Lookup.peek` read them, re-checking each hit, so a plain `get` (a
        # peek at the store, a fallback while a registry is busy) can never serve one unchecked.
        self.revocable: MemoryCache[T] | None = (
            MemoryCache(max_entries, revocable=False) if revocable else None
        )
        # Verifications in flight, shared by every Lookup over this store (the webhook's evaluator
        # threads each have their own verifier): one verification per key across all of them.
        self.inflight: dict[str, Future[Any]] = {}
        self.inflight_lock = threading.Lock()
        # Which registries are down, shared the same way: one failure spares every evaluator the wait.
        self.breakers = Breakers()

    def get(self, key: str) -> Entry[T] | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._items.move_to_end(key)
            return entry

    def put(self, key: str, entry: Entry[T]) -> None:
        with self._lock:
            self._items[key] = entry
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class Lookup(Generic[T]):
    """A cache in front of a slow computation, with the policy of `CacheConfig`.

    `fetch(key, compute)` returns `(value, how)` where `how` is "hit", "miss"
    or "stale". `compute` returns `(value, outcome)`: outcome "ok" is kept for
    the TTL, "negative" for the negative TTL, "error" (the registry could not
    be asked) is not kept, and a stale "ok" entry is served instead when one
    is still inside its stale-if-error window. Outcome "refused" (the registry
    answered, with something that cannot be used) is not kept either, and
    nothing stale is served for it: the answer is today's, and what was true
    before it no longer holds.

    Outcome "summary" (admitted on a signed summary, which can be revoked or
    expire before the TTL ends) is kept for the TTL in memory only, apart
    from the store's entries (the `revocable` table of its in-process layer,
    `store.local` where it has one: a shared store would neither keep what
    the summary was nor re-check it; and a plain `store.get` never returns
    it), never served stale, and served on a hit only while
    `recheck(value)` says it still holds. Without `recheck` it is not kept.
    `recheck` runs on every hit of such an entry, so it must be cheap (the
    revoked set in memory, a clock).
    """

    def __init__(
        self,
        settings: CacheConfig,
        store: VerificationCache[T] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        recheck: Callable[[T], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.store: VerificationCache[T] = store if store is not None else MemoryCache(settings.max_entries)
        self.clock = clock
        self.recheck = recheck
        memory = getattr(self.store, "local", self.store)
        table = getattr(memory, "revocable", None)  # shared with other lookups over the same store
        self._revocable: MemoryCache[T] = (
            table if isinstance(table, MemoryCache) else MemoryCache(settings.max_entries, revocable=False)
        )
        # In flight: the store's own table when it has one (shared with other lookups over it).
        self._inflight: dict[str, Future[tuple[T, str]]] = getattr(self.store, "inflight", {})
        self._lock: threading.Lock = getattr(self.store, "inflight_lock", threading.Lock())

    def fetch(self, key: str, compute: Callable[[], tuple[T, str]]) -> tuple[T, str]:
        now = self.clock()
        entry = self.store.get(key)
        if entry is not None and now < entry.fresh_until:
            return entry.value, "hit"
        held = self._held(key, now)
        if held is not None:
            return held, "hit"
        with self._lock:
            running = self._inflight.get(key)
            if running is None:
                mine: Future[tuple[T, str]] = Future()
                self._inflight[key] = mine
        if running is not None:  # someone is verifying this key right now: share the result
            return running.result()
        try:
            result = self._compute(key, entry, compute)
            mine.set_result(result)
            return result
        except BaseException as e:
            mine.set_exception(e)
            raise
        finally:
            with self._lock:
                del self._inflight[key]

    def peek(self, key: str) -> bool:
        """Whether `fetch(key)` would answer from the cache now, without computing anything.

        A key being computed by another caller is not warm: waiting for it holds a thread as long
        as the registry does (the webhook's bulkhead counts such waiters against the registry)."""
        now = self.clock()
        entry = self.store.get(key)
        return (entry is not None and now < entry.fresh_until) or self._held(key, now) is not None

    def _held(self, key: str, now: float) -> T | None:
        """A revocable entry for `key` that is fresh and still holds (`recheck`), else None."""
        if self.recheck is None:
            return None
        held = self._revocable.get(key)
        if held is None or now >= held.fresh_until or not self.recheck(held.value):
            return None
        return held.value

    def _compute(
        self, key: str, entry: Entry[T] | None, compute: Callable[[], tuple[T, str]]
    ) -> tuple[T, str]:
        value, outcome = compute()
        now = self.clock()
        if outcome == "ok":
            ttl = self.settings.ttl_seconds
            self.store.put(key, Entry(value, now + ttl, now + ttl + self.settings.stale_if_error_seconds))
        elif outcome == "negative":
            ttl = self.settings.negative_ttl_seconds
            self.store.put(key, Entry(value, now + ttl, now + ttl))
        elif outcome == "refused":
            if entry is not None:  # what was true before is not served later either (an outage next)
                self.store.put(key, Entry(value, now, now))
        elif outcome == "summary":
            if self.recheck is not None:  # kept only where every hit is re-checked
                ttl = self.settings.ttl_seconds
                self._revocable.put(key, Entry(value, now + ttl, now + ttl))
        elif outcome == "error" and entry is not None and now < entry.stale_until:
            return entry.value, "stale"
        return value, "miss"
