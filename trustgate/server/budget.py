"""The memory one worker's admission requests in flight may hold: their bodies and what parsing makes.

Owns: a per-worker budget of bytes, reserved as a body is read (its part
chosen by its Content-Length; chunked bodies are refused with 411, so the
length is always known) and held until the request is answered, a wait for
budget bounded by the caller's deadline, and the estimate of what parsing a
body costs.
Leaves out: sockets (`trustgate.server.http` refuses a request that gets no
budget by closing its connection, as it sheds one).

Why: the body limit is 16 MiB (a legal UPDATE's review, ADR 7) and a worker
has 512 connection slots, so bodies alone could hold 8 GiB per worker, and a
16 MiB body parses to several times that in Python objects (about 7x for
Kubernetes JSON, 24x for `[{},{},...]`). A client that sends large bodies
quickly got the worker OOM-killed: every change denied under `failurePolicy:
Fail`, every change admitted unevaluated under `Ignore`.

What is counted: for each request, its body, the text it decodes to, the
string contents, `VALUE_BYTES` per JSON value and `CONTAINER_BYTES` more per
object or array (`estimate`). Before the body arrives that is unknown, and a client
may claim a length it never sends, so a connection holds budget only for
what it has sent plus a small share: `reserve` takes `UPFRONT_FACTOR` times
the first `min(length, FIRST_BYTES)` bytes (waiting for it while the
connection holds nothing), `grow` takes `UPFRONT_FACTOR` times more as bytes
arrive, without waiting (a connection that holds budget never waits, so
waiters cannot deadlock; not free: it is refused), and once the body is read
`estimate` is taken the same way or the difference given back. A large body
(below), once its first bytes came, `claim`s its whole length instead of
growing: it gives back what it holds and waits for it all, so large bodies
are read one at a time as their part allows and waiters still hold nothing.

Small reviews are never starved by larger ones or by clients that send
nothing: bodies claimed over `SMALL_BODY_BYTES` (256 KiB; the API server's
reviews are a few KiB, 50 KiB with large objects) draw on
`LARGE_BUDGET_BYTES` inside the budget, so `BUDGET_BYTES -
LARGE_BUDGET_BYTES` (80 MiB) is only ever held by bodies claimed at 256 KiB
or less. A connection that sends headers only holds `upfront(FIRST_BYTES)` =
11 x 32 KiB = 352 KiB, so filling the small part takes 233 of them (more
than the 128 one address may open to a worker), and a client that sends its
bodies and stalls holds 11 bytes per byte it sent (80 MiB takes ~30
connections of 256 KiB). Neither starves a small review: when a small body
cannot get its budget, or a small body outgrows what is free, the oldest
small bodies still arriving after `SLOW_SECONDS` are shed for it (their
bytes given back, their connections shut down by the `shed` callback they
were reserved with), oldest first and only as many as make it fit; the API
server sends a review in milliseconds, so only a slow sender is ever shed.
Before, two addresses (or one sending and stalling) held the small part for
their whole body deadline, and a privileged Pod's review waited past its own
deadline and was admitted unevaluated on the fail-open path. Large bodies
wait their turn for the large part, in the order they claimed it; the one
whose turn it is sheds large bodies that claimed and then fell behind half
the pace that ends them by their deadline (`_behind`: a body that sends its
first bytes, claims 11x its length and stalls held the large part for its
whole deadline, and a client claiming again and again kept a legal 1 MiB
UPDATE out until its own). A legal large body arrives at network speed;
large bodies never shed small ones, nor small ones large ones.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MIB = 1024 * 1024
# A body claimed at up to this is small: the API server's reviews (a few KiB, 50 KiB with large
# objects) draw on a part that medium and large bodies, and headers-only claims of them, cannot touch.
SMALL_BODY_BYTES = 256 * 1024
# What a connection reserves before any body byte arrives: 11 x 32 KiB = 352 KiB (most reviews fit
# and reserve once); more is taken as bytes arrive (`MemoryBudget.grow`).
FIRST_BYTES = 32 * 1024
# Per worker: what requests in flight may hold (bodies, their text, their parsed objects). The
# compiled policies, schemas and image cache (~120 MiB PSS a worker, bench/README.md) come on top:
# the Deployment's 1 GiB limit holds two workers at their budget, the supervisor and the log writer.
# 256 MiB: one legal 16 MiB review at a time (176 MiB when read; large reviews are rare: two objects
# of over ~1.5 MB each) and 80 MiB always left for small ones: ~740 reviews of 10 KiB at once (more
# than the 512 slots hold busy), the rest waiting their turn.
BUDGET_BYTES = 256 * MIB
LARGE_BUDGET_BYTES = 176 * MIB  # bodies claimed over SMALL_BODY_BYTES share this part (one of 16 MiB)
# Reserved per body byte while the body is read: the body, its text, the strings' contents and
# ~8 bytes of objects per byte of Kubernetes JSON (a measured 7.1x for Deployments with env lists
# and managedFields; `estimate` gives 14x for them, taken after the read if free).
UPFRONT_FACTOR = 11
VALUE_BYTES = 64  # Python memory per JSON value (an empty dict with its GC header is 80; a short str 50-60)
# More per object or array: a dict with keys holds a table (~200 bytes for up to 5 keys) and its
# keys are strings of their own, a list its item array; `[{"k":null},...]` cost 1.33x what 64 a
# value counted, 0.86x with this.
CONTAINER_BYTES = 128
# A small body (at most SMALL_BODY_BYTES) still arriving after this long is a slow sender: it may be
# shed to make room for another small body (the API server sends a review in one write: milliseconds).
SLOW_SECONDS = 1.0
# How often the first large body waiting its turn looks for large bodies fallen behind their pace.
CLAIM_LOOK_SECONDS = 0.25


def upfront(length: int) -> int:
    """What `length` bytes of a body reserve while they are read."""
    return max(1, length) * UPFRONT_FACTOR


def estimate(body: bytes | bytearray) -> int:
    """What holding and parsing `body` costs, from a few C-speed scans (a bound, not a measure).

    The body, its decoded text (four bytes a character unless ASCII: Python's widest str), the
    strings' contents, `VALUE_BYTES` per value: every value but the first follows a `,` or a
    `:` or opens an object or array (counted in strings too, which only overestimates), and
    `CONTAINER_BYTES` more per object or array (a key table and key strings, an item array).
    """
    length = len(body)
    containers = body.count(b"{") + body.count(b"[")
    values = body.count(b",") + body.count(b":") + containers + 1
    text = length if body.isascii() else 4 * length
    return length + text + length + values * VALUE_BYTES + containers * CONTAINER_BYTES


@dataclass(eq=False, slots=True)
class Reservation:
    """Bytes one request holds; give them back with `MemoryBudget.release` (idempotent)."""

    amount: int
    large: bool
    released: bool = False
    started: float = 0.0  # when it was reserved (time.monotonic()): its body has been arriving since
    length: int = 0  # the body's claimed length
    deadline: float = 0.0  # when its body must have arrived (time.monotonic())
    got: int = 0  # bytes of its body arrived so far (set by its reader, without the lock)
    claimed: float = 0.0  # when a large body claimed its whole length (its pace is measured from then)
    got_at_claim: int = 0  # bytes of it that had arrived by then
    address: str = ""  # its client's: large bodies take turns by address (`MemoryBudget.claim`)
    holds_claim: bool = False  # it holds its whole large body (counted in the address's turns)
    # shuts its connection down when it is shed for a small body (None: never shed); it must not block
    # nor take the budget's lock (it is called under it)
    shed: Callable[[], None] | None = None


class MemoryBudget:
    """One worker's budget, under one lock; waiters are woken when bytes are released."""

    def __init__(
        self,
        total: int = BUDGET_BYTES,
        large: int = LARGE_BUDGET_BYTES,
        small_body: int = SMALL_BODY_BYTES,
        first_bytes: int = FIRST_BYTES,
    ) -> None:
        if not 0 < large <= total:
            raise ValueError("the large bodies' budget must be positive and within the budget")
        self.total = total
        self.large = large
        self.small_body = small_body
        self.first_bytes = first_bytes
        self.slow_seconds = SLOW_SECONDS
        self.used = 0
        self.used_large = 0
        self.peak = 0
        self.shed_count = 0  # reservations shed for a small body since the budget was made
        # small bodies still arriving that may be shed (reserved with a `shed` callback), in order
        self._arriving: dict[Reservation, None] = {}
        # large bodies waiting to `claim` their whole length, in the order they came: served in turn
        self._claims: collections.deque[Reservation] = collections.deque()
        # large bodies that claimed it and are still arriving (reserved with a `shed` callback)
        self._arriving_large: dict[Reservation, None] = {}
        self._claims_held: collections.Counter[str] = collections.Counter()  # large bodies held, by address
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

    def reserve(
        self, length: int, deadline: float, shed: Callable[[], None] | None = None, address: str = ""
    ) -> Reservation | None:
        """Reserve `upfront` of the first `min(length, first_bytes)` bytes of a body claimed at
        `length`, waiting until `deadline`; the part is the claim's (large: over `small_body`).

        A small claim that does not fit sheds small bodies arriving for `slow_seconds` or more (oldest
        first) if that makes it fit, a large one large bodies behind their pace (`_behind`), else
        waits. `shed` is how to shed this one in turn while its body
        arrives (`received` ends that); `address` is its client's, for the turns of large bodies.

        None: the budget could not be had by then, or the whole claim can never fit its part.
        """
        large = length > self.small_body
        amount = upfront(min(length, self.first_bytes))
        with self._cond:
            if upfront(length) > (self.large if large else self.total):
                return None
            while not self._fits(amount, large):
                now = time.monotonic()
                if self._shed_behind(amount, now) if large else self._shed_slow(amount, large, now, None):
                    break
                remaining = deadline - now
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, CLAIM_LOOK_SECONDS if large else self._next_slow(now)))
            self._take(amount, large)
            reservation = Reservation(
                amount,
                large,
                started=time.monotonic(),
                length=length,
                deadline=deadline,
                shed=shed,
                address=address,
            )
            if shed is not None and not large:
                self._arriving[reservation] = None
            return reservation

    def received(self, reservation: Reservation) -> None:
        """Its whole body has arrived: it is never shed from now on."""
        with self._cond:
            self._arriving.pop(reservation, None)
            self._arriving_large.pop(reservation, None)

    def _behind(self, r: Reservation, now: float) -> bool:
        """A large body arriving, since it claimed its length, at less than half the pace that ends it
        by its deadline, for `slow_seconds` or more (one that sends its first bytes, claims, and
        stalls). A body that waited its turn is judged from its turn, not from its first byte."""
        elapsed = now - r.claimed
        if elapsed < self.slow_seconds:
            return False
        if r.deadline <= r.claimed:
            return True  # its deadline passed while it waited: it cannot end in time
        done = (r.got - r.got_at_claim) / max(1, r.length - r.got_at_claim)
        return done < 0.5 * elapsed / (r.deadline - r.claimed)

    def _shed_behind(self, amount: int, now: float) -> bool:
        """Shed large bodies behind their pace (`_behind`), oldest first, until `amount` fits the large
        part; True when it does. Sheds nothing when all of them would not make it fit. Under the lock."""
        return self._shed_oldest(
            [r for r in self._arriving_large if self._behind(r, now)],
            self._arriving_large,
            amount,
            True,
            lambda freed: (
                self.used_large - freed + amount <= self.large and self.used - freed + amount <= self.total
            ),
        )

    def _shed_slow(self, amount: int, large: bool, now: float, keep: Reservation | None) -> bool:
        """Shed slow small bodies (not `keep`), oldest first, until `amount` fits; True when it does.

        Sheds nothing when all of them together would not make it fit. Under the lock.
        """
        return self._shed_oldest(
            [r for r in self._arriving if r is not keep and now - r.started >= self.slow_seconds],
            self._arriving,
            amount,
            large,
            lambda freed: self.used - freed + amount <= self.total,
        )

    def _shed_oldest(
        self,
        candidates: list[Reservation],
        arriving: dict[Reservation, None],
        amount: int,
        large: bool,
        room: Callable[[int], bool],
    ) -> bool:
        """Shed `candidates` (in `arriving`, oldest first) until `amount` fits; True when it does.

        Sheds nothing unless `room(freed)` says shedding them all would make `amount` fit. Under the lock.
        """
        if not candidates or not room(sum(r.amount for r in candidates)):
            return False
        for victim in candidates:
            if self._fits(amount, large):
                break
            del arriving[victim]
            victim.released = True
            self._give(victim)
            self.shed_count += 1
            if victim.shed is not None:
                victim.shed()
        return self._fits(amount, large)

    def _next_slow(self, now: float) -> float:
        """Seconds until the next small body arriving becomes slow (a waiter looks again then, or when
        budget is given back); a day when every one already is (shedding them was not enough)."""
        for r in self._arriving:  # the oldest first
            if r.started + self.slow_seconds > now:
                return r.started + self.slow_seconds - now
        return 86400.0

    @staticmethod
    def covered(reservation: Reservation) -> int:
        """How many bytes of its body `reservation` covers while they are read."""
        return reservation.amount // UPFRONT_FACTOR

    def grow(self, reservation: Reservation, received: int) -> bool:
        """Make `reservation` cover `received` bytes of its body (`upfront(received)`) if it does not
        yet; never waits, but a small body sheds slow ones (not itself) to make room. False: the extra
        is not free now (or the reservation was released)."""
        amount = upfront(received)
        if amount <= reservation.amount:
            return not reservation.released
        return self.adjust(reservation, amount, shed_slow=not reservation.large)

    def claim(self, reservation: Reservation, length: int, deadline: float) -> bool:
        """Make `reservation` hold `upfront(length)`, its whole body, waiting until `deadline` while it
        holds nothing (what it held is given back first, so waiters cannot deadlock).

        For a large body once its first bytes have come: large bodies are read one at a time, as many
        as the large part holds, in the order they claimed (a client that keeps claiming cannot
        overtake one waiting before it). False: not by the deadline, or released (the reservation then
        holds nothing).
        """
        amount = upfront(length)
        with self._cond:
            if reservation.released:
                return False
            if reservation.amount >= amount:
                return True
            self._give(reservation)
            reservation.amount = 0
            self._claims.append(reservation)
            try:
                while True:
                    now = time.monotonic()
                    turn = self._next_claim() is reservation
                    if turn and (self._fits(amount, reservation.large) or self._shed_behind(amount, now)):
                        break
                    remaining = deadline - now
                    if remaining <= 0 or reservation.released:
                        return False
                    # the one whose turn it is looks again as bodies fall behind their pace
                    self._cond.wait(min(remaining, CLAIM_LOOK_SECONDS) if turn else remaining)
                self._take(amount, reservation.large)
                reservation.amount = amount
                reservation.holds_claim = True
                reservation.claimed, reservation.got_at_claim = time.monotonic(), reservation.got
                self._claims_held[reservation.address] += 1
                if reservation.shed is not None:
                    self._arriving_large[reservation] = None
                return True
            finally:
                self._claims.remove(reservation)
                self._cond.notify_all()  # the next in turn may fit now

    def _next_claim(self) -> Reservation:
        """Whose turn it is: the first waiting claim of the address holding the fewest large bodies,
        then of the one with the fewest claims waiting (a client that opens many connections takes
        one turn, not all of them, before another client's). Under the lock, with claims waiting."""
        held = self._claims_held
        waiting = collections.Counter(r.address for r in self._claims)
        return min(self._claims, key=lambda r: (held[r.address], waiting[r.address]))  # first of equals

    def _give(self, reservation: Reservation) -> None:
        if reservation.holds_claim:
            reservation.holds_claim = False
            self._claims_held[reservation.address] -= 1
            if not self._claims_held[reservation.address]:
                del self._claims_held[reservation.address]
        self.used -= reservation.amount
        if reservation.large:
            self.used_large -= reservation.amount
        self._changed()
        self._cond.notify_all()

    def adjust(self, reservation: Reservation, amount: int, *, shed_slow: bool = False) -> bool:
        """Make `reservation` hold `amount`: less gives back at once; more is taken only if free now
        (with `shed_slow`, after shedding slow small bodies other than this one if that makes it fit).

        Never waits (the caller holds budget). False: the extra could not be had (the reservation is
        unchanged).
        """
        with self._cond:
            if reservation.released:
                return False
            extra = amount - reservation.amount
            if extra > 0:
                if not self._fits(extra, reservation.large) and not (
                    shed_slow and self._shed_slow(extra, reservation.large, time.monotonic(), reservation)
                ):
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
            self._arriving.pop(reservation, None)
            self._arriving_large.pop(reservation, None)
            if reservation.released:
                return
            reservation.released = True
            self._give(reservation)
