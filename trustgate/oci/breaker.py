"""A circuit breaker and a bulkhead per registry: a registry that fails is asked less, not more.

Owns: counting consecutive failed requests per registry (refused, hung,
5xx and 429 once their retries or the deadline ran out), marking it down for
an interval that grows with every failed probe (`base`, doubled, capped at
`max`), letting exactly one request through as a probe once the interval is
over, and a registry's own "not before" (a 429's Retry-After) so the one
request that could not wait does not make every other one wait too. The
bulkhead: at most `max_in_flight` verifications use one registry at a time
(`enter`/`leave`, taken by the verifier around every verification the cache
cannot answer); one more waits `queue_seconds` for a slot and is then
refused, so a registry that hangs holds a bounded number of threads (the
webhook's evaluators) and the images of other registries keep theirs.
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

if TYPE_CHECKING:
    from trustgate.config import RegistryConfig
    from trustgate.oci.model import Descriptor, Manifest, Registry, Resolved

T = TypeVar("T")


@dataclass(slots=True)
class _State:
    failures: int = 0  # consecutive
    open_until: float = 0.0  # clock seconds; requests fail at once before this
    interval: float = 0.0  # the last interval it was opened for
    probing: bool = False  # one request is testing recovery right now
    last_error: str = ""
    in_flight: int = 0  # verifications using the registry now (the bulkhead's slots)


@dataclass(frozen=True, slots=True)
class Down:
    """Why a request was not sent: the registry is marked down for `seconds` more."""

    registry: str
    seconds: float
    failures: int
    last_error: str


class Breakers:
    """The breakers and bulkheads of every registry one process talks to; thread-safe.

    Args:
        threshold: consecutive failed requests that mark a registry down.
        base_seconds: the first interval it stays down.
        max_seconds: the cap of the interval, which doubles with every failed probe.
        max_in_flight: verifications using one registry at a time (0: no bound).
        queue_seconds: how long one more waits for a slot before it is refused.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        *,
        threshold: int = 1,
        base_seconds: float = 2.0,
        max_seconds: float = 60.0,
        max_in_flight: int = 0,
        queue_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._slots = threading.Condition(self._lock)
        self._states: dict[str, _State] = {}
        self.configure(
            threshold=threshold,
            base_seconds=base_seconds,
            max_seconds=max_seconds,
            max_in_flight=max_in_flight,
            queue_seconds=queue_seconds,
        )

    @classmethod
    def from_config(cls, settings: RegistryConfig) -> Breakers:
        """Breakers with the limits of `images.registries`."""
        breakers = cls()
        breakers.apply(settings)
        return breakers

    def apply(self, settings: RegistryConfig) -> None:
        """Take the limits of `images.registries` (the same for every verifier of one process)."""
        self.configure(
            threshold=settings.breaker_threshold,
            base_seconds=settings.breaker_base_seconds,
            max_seconds=settings.breaker_max_seconds,
            max_in_flight=settings.max_requests_per_registry,
            queue_seconds=settings.queue_seconds,
        )

    def configure(
        self,
        *,
        threshold: int,
        base_seconds: float,
        max_seconds: float,
        max_in_flight: int,
        queue_seconds: float,
    ) -> None:
        with self._lock:
            self.threshold = max(1, threshold)
            self.base_seconds = base_seconds
            self.max_seconds = max(base_seconds, max_seconds)
            self.max_in_flight = max(0, max_in_flight)
            self.queue_seconds = max(0.0, queue_seconds)

    def enter(self, registry: str, *, wait: float) -> int | None:
        """Take a slot for one verification at `registry`, waiting at most `wait` seconds (and no
        longer than `queue_seconds`); None when taken, else how many hold one there.

        A caller that got None must call `leave` once the request is over.
        """
        with self._slots:
            state = self._states.setdefault(registry, _State())
            if self.max_in_flight:
                until = self._clock() + min(wait, self.queue_seconds)
                while state.in_flight >= self.max_in_flight:
                    now = self._clock()
                    if now >= until or now < state.open_until:  # out of time, or marked down meanwhile
                        return state.in_flight
                    left = until - now
                    self._slots.wait(left)
                    state = self._states.setdefault(registry, _State())
            state.in_flight += 1
            return None

    def leave(self, registry: str) -> None:
        with self._slots:
            state = self._states.get(registry)
            if state is not None:
                state.in_flight = max(0, state.in_flight - 1)
                if not state.in_flight and not state.failures:
                    del self._states[registry]
            self._slots.notify_all()

    def admit(self, registry: str) -> Down | None:
        """None when a request may go to `registry` now (possibly as the one probe), else why not."""
        now = self._clock()
        with self._lock:
            state = self._states.get(registry)
            if state is None or (now >= state.open_until and not state.probing):
                if state is not None and state.failures >= self.threshold and state.open_until:
                    state.probing = True  # the interval is over: this request tests recovery
                return None
            return Down(registry, max(0.0, state.open_until - now), state.failures, state.last_error)

    def succeeded(self, registry: str) -> None:
        with self._lock:
            state = self._states.get(registry)
            if state is not None:
                state.failures, state.open_until, state.interval, state.probing = 0, 0.0, 0.0, False
                state.last_error = ""

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
            self._slots.notify_all()  # requests waiting for a slot there give up now

    def released(self, registry: str) -> None:
        """A probe ended without an answer either way (the caller gave up): let the next one try."""
        with self._lock:
            state = self._states.get(registry)
            if state is not None:
                state.probing = False


# What says the registry itself is failing (not the request, the credentials or the image).
FAILURES: Final = frozenset({"timeout", "connection", "server-error", "rate-limited"})
# The registry could not be asked: what it answered before may stand in (stale-if-error). Every
# other kind is an answer (401/403/404, TLS, a manifest that is too large, malformed or loops).
OUTAGES: Final = FAILURES | {"unavailable"}


class GuardedRegistry:
    """A `Registry` whose requests pass through `Breakers` first: while a registry is down they fail at once.

    A request whose verification's deadline had already run out before it was sent is not the
    registry's fault and does not count against it.
    """

    def __init__(self, registry: Registry, breakers: Breakers, *, counted: bool = True) -> None:
        self.registry = registry
        self.breakers = breakers
        self.counted = counted

    def tentative(self) -> GuardedRegistry:
        """The same registry for work that may only ever save work (looking for verification
        summaries): still refused while the registry is down, but its failures and timeouts never
        count against the breaker (whoever can push chooses how slow that work is)."""
        return GuardedRegistry(self.registry, self.breakers, counted=False)

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
        return self._guarded(host, deadline.current(), call)

    def _guarded(self, host: str, budget: deadline.Deadline | None, call: Callable[[], T]) -> T:
        spent = budget is not None and budget.remaining() <= 0
        try:
            value = call()
        except RegistryError as e:
            if e.kind in FAILURES and not spent and self.counted:
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

    def resolve(self, ref: Reference, *, platforms: bool = True) -> Resolved:
        return self._call(ref, lambda: self.registry.resolve(ref, platforms=platforms))

    def manifest(
        self, ref: Reference, tag_or_digest: str, *, max_bytes: int | None = None
    ) -> Manifest | None:
        return self._call(ref, lambda: self.registry.manifest(ref, tag_or_digest, max_bytes=max_bytes))

    def blob(self, ref: Reference, digest: str, *, max_bytes: int | None = None) -> bytes:
        return self._call(ref, lambda: self.registry.blob(ref, digest, max_bytes=max_bytes))

    def referrers(self, ref: Reference, digest: str) -> tuple[list[Descriptor], str]:
        return self._call(ref, lambda: self.registry.referrers(ref, digest))

    def close(self) -> None:
        self.registry.close()

    def push_blob(self, ref: Reference, data: bytes) -> str:
        return self.registry.push_blob(ref, data)

    def push_manifest(self, ref: Reference, data: bytes, media_type: str, tag: str | None = None) -> str:
        return self.registry.push_manifest(ref, data, media_type, tag)
