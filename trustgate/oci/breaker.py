"""A circuit breaker per registry: a registry that keeps failing is asked less, not more.

Owns: counting consecutive failed requests per registry (refused, hung,
5xx and 429 once their retries or the deadline ran out), marking it down for
an interval that grows with every failed probe (`base`, doubled, capped at
`max`), letting exactly one request through as a probe once the interval is
over, and a registry's own "not before" (a 429's Retry-After) so the one
request that could not wait does not make every other one wait too.
Leaves out: what a failure is (the client says) and what to answer while a
registry is down (the verifier serves a stale result or "unverifiable").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from trustgate.oci import deadline
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference

if TYPE_CHECKING:  # the HTTP client (httpx) loads only when a registry is reached
    from trustgate.oci.client import Descriptor, Manifest, Registry, Resolved

T = TypeVar("T")


@dataclass(slots=True)
class _State:
    failures: int = 0  # consecutive
    open_until: float = 0.0  # clock seconds; requests fail at once before this
    interval: float = 0.0  # the last interval it was opened for
    probing: bool = False  # one request is testing recovery right now
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class Down:
    """Why a request was not sent: the registry is marked down for `seconds` more."""

    registry: str
    seconds: float
    failures: int
    last_error: str


class Breakers:
    """The breakers of every registry one client talks to; thread-safe.

    Args:
        threshold: consecutive failed requests that mark a registry down.
        base_seconds: the first interval it stays down.
        max_seconds: the cap of the interval, which doubles with every failed probe.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        *,
        threshold: int = 1,
        base_seconds: float = 2.0,
        max_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = max(1, threshold)
        self.base_seconds = base_seconds
        self.max_seconds = max(base_seconds, max_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def admit(self, registry: str) -> Down | None:
        """None when a request may go to `registry` now (possibly as the one probe), else why not."""
        now = self._clock()
        with self._lock:
            state = self._states.get(registry)
            if state is None or (now >= state.open_until and not state.probing):
                if state is not None and state.failures >= self.threshold:
                    state.probing = True  # the interval is over: this request tests recovery
                return None
            return Down(registry, max(0.0, state.open_until - now), state.failures, state.last_error)

    def succeeded(self, registry: str) -> None:
        with self._lock:
            self._states.pop(registry, None)

    def failed(self, registry: str, error: str, *, retry_after: float | None = None) -> None:
        """Count a failed request; a Retry-After longer than the interval keeps it down that long."""
        now = self._clock()
        with self._lock:
            state = self._states.setdefault(registry, _State())
            state.failures += 1
            state.last_error = error
            was_probe, state.probing = state.probing, False
            if state.failures < self.threshold and retry_after is None:
                return
            if was_probe or state.interval:
                interval = min(self.max_seconds, max(state.interval, self.base_seconds / 2) * 2)
            else:
                interval = self.base_seconds
            state.interval = interval
            state.open_until = max(state.open_until, now + interval, now + (retry_after or 0.0))

    def released(self, registry: str) -> None:
        """A probe ended without an answer either way (the caller gave up): let the next one try."""
        with self._lock:
            state = self._states.get(registry)
            if state is not None:
                state.probing = False


# What says the registry itself is failing (not the request, the credentials or the image).
FAILURES: Final = frozenset({"timeout", "connection", "server-error", "rate-limited"})


class GuardedRegistry:
    """A `Registry` whose requests pass through `Breakers` first: while a registry is down they fail at once.

    A request whose verification's deadline had already run out before it was sent is not the
    registry's fault and does not count against it.
    """

    def __init__(self, registry: Registry, breakers: Breakers) -> None:
        self.registry = registry
        self.breakers = breakers

    def _call(self, ref: Reference, call: Callable[[], T]) -> T:
        host = ref.registry
        down = self.breakers.admit(host)
        if down is not None:
            after = f"; last error: {down.last_error}" if down.last_error else ""
            raise RegistryError(
                "unavailable",
                f"{host} is marked down for {down.seconds:.1f} s more after {down.failures} failed "
                f"request(s) in a row; {ref} was not asked{after}",
                registry=host,
                reference=str(ref),
                hint="a registry outage; trustgate asks again once the interval is over (one probe)",
            )
        budget = deadline.current()
        spent = budget is not None and budget.remaining() <= 0
        try:
            value = call()
        except RegistryError as e:
            if e.kind in FAILURES and not spent:
                self.breakers.failed(host, e.message, retry_after=e.retry_after)
            elif e.kind in FAILURES or e.kind == "unavailable":
                self.breakers.released(host)
            else:
                self.breakers.succeeded(host)  # it answered: up, even if the answer is "no"
            raise
        except BaseException:
            self.breakers.released(host)
            raise
        self.breakers.succeeded(host)
        return value

    def resolve(self, ref: Reference) -> Resolved:
        return self._call(ref, lambda: self.registry.resolve(ref))

    def manifest(self, ref: Reference, tag_or_digest: str) -> Manifest | None:
        return self._call(ref, lambda: self.registry.manifest(ref, tag_or_digest))

    def blob(self, ref: Reference, digest: str, *, max_bytes: int | None = None) -> bytes:
        return self._call(ref, lambda: self.registry.blob(ref, digest, max_bytes=max_bytes))

    def referrers(self, ref: Reference, digest: str) -> tuple[list[Descriptor], str]:
        return self._call(ref, lambda: self.registry.referrers(ref, digest))

    def push_blob(self, ref: Reference, data: bytes) -> str:
        return self.registry.push_blob(ref, data)

    def push_manifest(self, ref: Reference, data: bytes, media_type: str, tag: str | None = None) -> str:
        return self.registry.push_manifest(ref, data, media_type, tag)
