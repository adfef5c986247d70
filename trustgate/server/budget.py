"""The memory one worker's admission requests in flight may hold: their bodies and what parsing makes.

Owns: a per-worker budget of bytes, reserved before a body is read (by its
Content-Length; chunked bodies are refused with 411, so the length is always
known) and held until the request is answered, a wait for budget bounded by
the caller's deadline, and the estimate of what parsing a body costs.
Leaves out: sockets (`trustgate.server.http` refuses a request that gets no
budget by closing its connection, as it sheds one).

Why: the body limit is 16 MiB (a legal UPDATE's review, ADR 7) and a worker
has 512 connection slots, so bodies alone could hold 8 GiB per worker, and a
16 MiB body parses to several times that in Python objects (about 7x for
Kubernetes JSON, 24x for `[{},{},...]`). A client that sends large bodies
quickly got the worker OOM-killed: every change denied under `failurePolicy:
Fail`, every change admitted unevaluated under `Ignore`.

What is counted: for each request, its body, the text it decodes to, the
string contents and `VALUE_BYTES` per JSON value (`estimate`). Before the
body arrives that is unknown, so `upfront` reserves `UPFRONT_FACTOR` times
the Content-Length (waiting for it); once the body is read, `estimate` is
taken and the difference given back or, above, taken without waiting (no
request waits while it holds budget, so waiters cannot deadlock).

Small bodies are never starved by large ones: bodies over `SMALL_BODY_BYTES`
(3 MiB, the API server's own request limit; reviews are a few KiB) draw from
`LARGE_BUDGET_BYTES` inside the budget, so `BUDGET_BYTES - LARGE_BUDGET_BYTES`
is always left for small ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MIB = 1024 * 1024
SMALL_BODY_BYTES = 3 * MIB  # a body up to this is small: the API server's request limit
# Per worker: what requests in flight may hold (bodies, their text, their parsed objects). The
# compiled policies, schemas and image cache (~120 MiB PSS a worker, bench/README.md) come on top:
# the Deployment's 1 GiB limit holds two workers at their budget, the supervisor and the log writer.
# 256 MiB: one legal 16 MiB review at a time (176 MiB reserved; large reviews are rare: two objects
# of over ~1.5 MB each) and 80 MiB always left for small ones: ~740 reviews of 10 KiB at once (more
# than the 512 slots hold busy) or two at the 3 MiB limit, the rest waiting their turn.
BUDGET_BYTES = 256 * MIB
LARGE_BUDGET_BYTES = 176 * MIB  # bodies over SMALL_BODY_BYTES share this part (one of 16 MiB)
# Reserved per body byte before the body is read: the body, its text, the strings' contents and
# ~8 bytes of objects per byte of Kubernetes JSON (a measured 7.1x for Deployments with env lists
# and managedFields; `estimate` gives 10.5x for them).
UPFRONT_FACTOR = 11
VALUE_BYTES = 64  # Python memory per JSON value (a dict with its GC header is 80; a short str 50-60)


def upfront(length: int) -> int:
    """What a body of `length` bytes reserves before it is read."""
    return max(1, length) * UPFRONT_FACTOR


def estimate(body: bytes | bytearray) -> int:
    """What holding and parsing `body` costs, from a few C-speed scans (a bound, not a measure).

    The body, its decoded text (four bytes a character unless ASCII: Python's widest str), the
    strings' contents, and `VALUE_BYTES` per value: every value but the first follows a `,` or a
    `:` or opens an object or array (counted in strings too, which only overestimates).
    """
    length = len(body)
    values = body.count(b",") + body.count(b":") + body.count(b"{") + body.count(b"[") + 1
    text = length if body.isascii() else 4 * length
    return length + text + length + values * VALUE_BYTES


@dataclass(eq=False, slots=True)
class Reservation:
    """Bytes one request holds; give them back with `MemoryBudget.release` (idempotent)."""

    amount: int
    large: bool
    released: bool = False


class MemoryBudget:
    """One worker's budget, under one lock; waiters are woken when bytes are released."""

    def __init__(
        self,
        total: int = BUDGET_BYTES,
        large: int = LARGE_BUDGET_BYTES,
        small_body: int = SMALL_BODY_BYTES,
    ) -> None:
        if not 0 < large <= total:
            raise ValueError("the large bodies' budget must be positive and within the budget")
        self.total = total
        self.large = large
        self.small_body = small_body
        self.used = 0
        self.used_large = 0
        self.peak = 0
        self._cond = threading.Condition()
        # told (used, peak) under the lock after every change, in order (the worker's metrics gauge)
        self.listener: Callable[[int, int], None] | None = None

    def _changed(self) -> None:
        if self.listener is not None:
            self.listener(self.used, self.peak)

    def _fits(self, amount: int, large: bool) -> bool:
        if self.used + amount > self.total:
            return False
        return not large or self.used_large + amount <= self.large

    def _take(self, amount: int, large: bool) -> None:
        self.used += amount
        if large:
            self.used_large += amount
        self.peak = max(self.peak, self.used)
        self._changed()

    def reserve(self, length: int, deadline: float) -> Reservation | None:
        """Reserve `upfront(length)` for a body of `length` bytes, waiting until `deadline`.

        None: the budget could not be had by then (or can never be: more than a whole part).
        """
        large = length > self.small_body
        amount = upfront(length)
        with self._cond:
            while not self._fits(amount, large):
                if amount > (self.large if large else self.total):
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            self._take(amount, large)
            return Reservation(amount, large)

    def adjust(self, reservation: Reservation, amount: int) -> bool:
        """Make `reservation` hold `amount`: less gives back at once; more is taken only if free now.

        Never waits (the caller holds budget). False: the extra could not be had (the reservation is
        unchanged).
        """
        with self._cond:
            if reservation.released:
                return False
            extra = amount - reservation.amount
            if extra > 0:
                if not self._fits(extra, reservation.large):
                    return False
                self._take(extra, reservation.large)
            else:
                self.used += extra
                if reservation.large:
                    self.used_large += extra
                self._changed()
                self._cond.notify_all()
            reservation.amount = amount
            return True

    def release(self, reservation: Reservation | None) -> None:
        """Give the reservation's bytes back (a second call, or None, does nothing)."""
        if reservation is None:
            return
        with self._cond:
            if reservation.released:
                return
            reservation.released = True
            self.used -= reservation.amount
            if reservation.large:
                self.used_large -= reservation.amount
            self._changed()
            self._cond.notify_all()
