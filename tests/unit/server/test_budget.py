"""The per-worker memory budget of requests in flight: reservation, release, waiting, refusal."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import tracemalloc

import pytest

from trustgate.server import admission, budget
from trustgate.server.budget import FIRST_BYTES, UPFRONT_FACTOR, MemoryBudget, estimate, upfront
from trustgate.server.connections import ConnectionLimits

MIB = budget.MIB


def _budget(
    total: int = 100 * MIB, large: int = 60 * MIB, small_body: int = 3 * MIB, first_bytes: int = 16 * MIB
) -> MemoryBudget:
    """A budget whose first reservation is the whole claim unless `first_bytes` says otherwise."""
    return MemoryBudget(total, large, small_body, first_bytes)


def _soon(seconds: float = 0.0) -> float:
    return time.monotonic() + seconds


def test_the_defaults_admit_a_legal_16_mib_review_and_leave_room_for_small_ones() -> None:
    assert upfront(admission.MAX_BODY_BYTES) <= budget.LARGE_BUDGET_BYTES
    assert 2 * upfront(budget.SMALL_BODY_BYTES) <= budget.BUDGET_BYTES - budget.LARGE_BUDGET_BYTES
    assert budget.BUDGET_BYTES <= 256 * MIB  # was 512 slots x 16 MiB = 8 GiB of bodies alone


def test_one_address_cannot_fill_the_small_part_with_claims_it_never_sends() -> None:
    """A headers-only connection holds upfront(FIRST_BYTES); the small part needs more of them than
    one address may open to a worker (the module docstring's 233 against 128)."""
    small_part = budget.BUDGET_BYTES - budget.LARGE_BUDGET_BYTES
    needed = -(-small_part // upfront(FIRST_BYTES))
    assert needed == 233 and needed > ConnectionLimits().per_client
    assert budget.SMALL_BODY_BYTES >= 256 * 1024  # the API server's reviews are small
    b = MemoryBudget()
    claims = [b.reserve(n, _soon()) for n in [budget.SMALL_BODY_BYTES] * ConnectionLimits().per_client]
    assert all(r is not None and r.amount == upfront(FIRST_BYTES) for r in claims)
    review = b.reserve(50 * 1024, _soon())  # a large Deployment's review: at once
    assert review is not None and not review.large


def test_a_claim_holds_only_its_first_bytes_share_until_they_arrive() -> None:
    b = MemoryBudget()
    for length in (budget.SMALL_BODY_BYTES, 3 * MIB - 1, admission.MAX_BODY_BYTES):
        r = b.reserve(length, _soon())
        assert r is not None and r.amount == upfront(FIRST_BYTES) and b.covered(r) == FIRST_BYTES
        assert r.large == (length > budget.SMALL_BODY_BYTES)
        b.release(r)
    r = b.reserve(5000, _soon())  # a typical review reserves once, for all of it
    assert r is not None and r.amount == upfront(5000) and b.used == r.amount
    assert b.reserve(admission.MAX_BODY_BYTES + MIB, _soon(5)) is None  # can never fit: at once


def test_growth_takes_what_is_free_without_waiting_and_refusal_releases_everything() -> None:
    b = _budget(total=3 * MIB, large=MIB, first_bytes=64 * 1024)
    r = b.reserve(MIB // 4, _soon())
    assert r is not None and r.amount == upfront(64 * 1024)
    assert b.grow(r, 128 * 1024) and r.amount == upfront(128 * 1024)
    assert b.grow(r, 100 * 1024) and r.amount == upfront(128 * 1024)  # covered already: unchanged
    other = b.reserve(64 * 1024, _soon())
    assert other is not None
    started = time.monotonic()
    assert not b.grow(r, 256 * 1024)  # 3.4 MiB would be needed of 3: no wait, no change
    assert time.monotonic() - started < 0.1 and r.amount == upfront(128 * 1024)
    b.release(r)  # refused: the handler gives all of it back
    assert b.used == other.amount and not b.grow(r, 1)
    b.release(other)
    assert b.used == 0


def test_a_large_claim_waits_for_its_whole_body_holding_nothing_so_claims_cannot_deadlock() -> None:
    b = _budget(total=40 * MIB, large=24 * MIB, small_body=MIB // 4, first_bytes=64 * 1024)
    first, second = b.reserve(2 * MIB, _soon()), b.reserve(2 * MIB, _soon())
    assert first is not None and second is not None and b.used_large == 2 * upfront(64 * 1024)
    assert b.claim(first, 2 * MIB, _soon())  # 22 MiB of 24: the second's share still fits
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(b.claim(second, 2 * MIB, _soon(5))))
    waiter.start()
    time.sleep(0.2)
    assert got == [] and second.amount == 0 and b.used_large == 22 * MIB  # waits holding nothing
    b.release(first)
    waiter.join(timeout=5)
    assert got == [True] and b.used_large == b.used == 22 * MIB
    assert not b.claim(second, 3 * MIB, _soon(0.2)) and b.used == 0  # 33 MiB never fits 24
    b.release(second)
    assert b.used == 0


def test_a_reservation_is_held_until_released_and_released_once() -> None:
    b = _budget()
    r = b.reserve(1000, _soon())
    assert r is not None and r.amount == 1000 * UPFRONT_FACTOR and not r.large
    assert b.used == r.amount and b.used_large == 0
    b.release(r)
    b.release(r)  # a second release (every path of a handler calls it) gives nothing back twice
    b.release(None)  # nothing was reserved (the body was refused before)
    assert b.used == 0 and b.peak == r.amount


def test_a_large_body_draws_on_the_large_part_too() -> None:
    b = _budget()
    r = b.reserve(4 * MIB, _soon())
    assert r is not None and r.large and b.used_large == b.used == 44 * MIB
    b.release(r)
    assert b.used == b.used_large == 0


def test_a_request_waits_for_budget_and_gets_it_when_another_releases() -> None:
    b = _budget(total=20 * MIB, large=20 * MIB)
    first = b.reserve(MIB, _soon())
    assert first is not None  # 11 MiB of 20
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(b.reserve(MIB, _soon(5))))
    waiter.start()
    time.sleep(0.2)
    assert got == []  # waiting, not refused
    b.release(first)
    waiter.join(timeout=5)
    assert got and got[0] is not None and b.used == 11 * MIB


def test_a_request_that_gets_no_budget_by_its_deadline_is_refused() -> None:
    b = _budget(total=20 * MIB, large=20 * MIB)
    held = b.reserve(MIB, _soon())
    started = time.monotonic()
    assert b.reserve(MIB, _soon(0.3)) is None
    assert 0.25 < time.monotonic() - started < 2
    assert held is not None and b.used == held.amount  # the refused one holds nothing


def test_a_body_larger_than_its_part_is_refused_at_once() -> None:
    b = _budget(total=100 * MIB, large=40 * MIB)
    started = time.monotonic()
    assert b.reserve(4 * MIB, _soon(5)) is None  # 44 MiB can never fit in 40
    assert time.monotonic() - started < 1 and b.used == 0


def test_small_bodies_are_never_starved_by_large_ones() -> None:
    b = _budget(total=100 * MIB, large=60 * MIB)
    large = [b.reserve(5 * MIB, _soon()) for _ in range(2)]  # 2 x 55 MiB: the second does not fit
    assert large[0] is not None and large[1] is None
    assert b.reserve(5 * MIB, _soon(0.1)) is None  # the large part is full
    small = [b.reserve(MIB, _soon()) for _ in range(4)]  # 4 x 11 MiB in the 45 MiB left
    assert all(r is not None for r in small) and b.used == 55 * MIB + 44 * MIB


def test_adjust_gives_back_at_once_and_takes_more_only_if_free() -> None:
    b = _budget(total=30 * MIB, large=30 * MIB)
    r = b.reserve(MIB, _soon())
    assert r is not None
    assert b.adjust(r, 2 * MIB) and b.used == 2 * MIB
    other = b.reserve(MIB, _soon())
    assert other is not None  # 13 MiB
    started = time.monotonic()
    assert not b.adjust(r, 20 * MIB)  # 31 MiB would be needed: no wait, no change
    assert time.monotonic() - started < 0.1 and r.amount == 2 * MIB and b.used == 13 * MIB
    b.release(r)
    b.release(other)
    assert b.used == 0
    assert not b.adjust(r, MIB)  # released: nothing is taken again


def test_a_waiter_is_woken_when_a_reservation_shrinks() -> None:
    b = _budget(total=12 * MIB, large=12 * MIB)
    r = b.reserve(MIB, _soon())  # 11 MiB
    assert r is not None
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(b.reserve(100 * 1024, _soon(5))))  # 1.1 MB
    waiter.start()
    time.sleep(0.2)
    assert b.adjust(r, 3 * MIB)
    waiter.join(timeout=5)
    assert got and got[0] is not None


def test_the_listener_sees_every_change() -> None:
    b = _budget()
    seen: list[tuple[int, int]] = []
    b.listener = lambda used, peak: seen.append((used, peak))
    r = b.reserve(10, _soon())
    assert r is not None
    b.adjust(r, 50)
    b.release(r)
    assert seen == [(110, 110), (50, 110), (0, 110)]


def test_waiters_and_releases_from_many_threads_balance() -> None:
    b = _budget(total=40 * MIB, large=20 * MIB)
    refused = [0]

    def client(length: int) -> None:
        for _ in range(20):
            r = b.reserve(length, _soon(2))
            if r is None:
                refused[0] += 1
                continue
            try:
                assert b.used <= b.total and b.used_large <= b.large
                b.adjust(r, r.amount // 2)
                time.sleep(0.001)
            finally:
                b.release(r)

    threads = [threading.Thread(target=client, args=(n,)) for n in (MIB, 1024, 1024 * 1024 + 1, 4 * 1024)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert b.used == 0 and b.used_large == 0 and b.peak <= b.total


def _arriving(
    b: MemoryBudget, count: int, shed: list[int], age: float = 0.0, first: int = 1000
) -> list[budget.Reservation]:
    """`count` small bodies of 10 bytes arriving, numbered from `first`, each shut down into `shed`
    by its number; aged `age` seconds."""
    out = []
    for i in range(first, first + count):
        r = b.reserve(10, _soon(), lambda i=i: shed.append(i))
        assert r is not None
        r.started -= age
        out.append(r)
    return out


def _tiny(total: int = 1100) -> MemoryBudget:
    """A budget of `total` bytes whose small bodies (up to 50 bytes) reserve 11x what they claim (at
    first, 11x their first 20 bytes)."""
    b = MemoryBudget(total, 440, 50, 20)
    b.slow_seconds = 0.2
    return b


def test_slow_small_bodies_are_shed_oldest_first_for_a_small_review() -> None:
    """Headers-only claims (or bodies sent and stalled) from several addresses filled the small part
    for their body deadline; a small review waited past its own and was admitted unevaluated on the
    fail-open path. Now the oldest slow ones are shed for it, only as many as make it fit."""
    b = _tiny()
    shed: list[int] = []
    old = _arriving(b, 5, shed, age=2.0)
    young = _arriving(b, 5, shed, first=2000)
    assert b.used == 1100
    started = time.monotonic()
    review = b.reserve(20, _soon(5), lambda: shed.append(-1))  # 220 bytes: two slow bodies shed
    assert review is not None and time.monotonic() - started < 1
    assert [r.released for r in old] == [True, True, False, False, False]
    assert shed == [1000, 1001] and b.shed_count == 2 and b.used == 1100
    assert not any(r.released for r in young)
    b.release(old[0])  # the shed connection's thread releases it again: nothing more is given back
    assert b.used == 1100


def test_small_bodies_still_arriving_quickly_are_not_shed_and_a_waiter_takes_them_once_slow() -> None:
    b = _tiny()
    shed: list[int] = []
    _arriving(b, 10, shed)
    assert b.reserve(10, _soon(0.05)) is None and shed == []  # none slow yet: it waits, then is refused
    started = time.monotonic()
    review = b.reserve(10, _soon(5))  # woken when the oldest becomes slow (0.2 s), without a release
    assert review is not None and shed == [1000]
    assert 0.1 < time.monotonic() - started < 2


def test_a_body_that_has_arrived_is_never_shed() -> None:
    b = _tiny()
    shed: list[int] = []
    bodies = _arriving(b, 10, shed, age=2.0)
    for r in bodies:
        b.received(r)
    assert b.reserve(10, _soon(0.05)) is None and shed == [] and b.shed_count == 0


def test_nothing_is_shed_when_shedding_every_slow_body_would_not_make_room() -> None:
    b = _tiny()
    shed: list[int] = []
    slow = _arriving(b, 1, shed, age=2.0)  # 110 bytes
    for r in _arriving(b, 9, shed, first=2000):
        b.received(r)
    assert b.reserve(20, _soon(0.05)) is None  # needs 220: shedding the one slow body gives 110
    assert shed == [] and not slow[0].released


def test_a_small_body_growing_sheds_slow_ones_but_never_itself_and_large_bodies_shed_nobody() -> None:
    b = _tiny()
    shed: list[int] = []
    (grower,) = _arriving(b, 1, shed, age=2.0)
    slow = _arriving(b, 9, shed, age=1.0, first=1001)
    assert b.grow(grower, 30)  # 330 bytes: two of the others shed, not the grower (the oldest)
    assert shed == [1001, 1002] and not grower.released and grower.amount == 330
    assert [r.released for r in slow[:3]] == [True, True, False]
    c = MemoryBudget(1100 + 880, 880, 50, 20)  # a large part of 880 beside 1,100 of small bodies
    c.slow_seconds = 0.2
    _arriving(c, 10, shed, age=2.0)
    first = c.reserve(80, _soon())
    assert first is not None and first.large and c.claim(first, 80, _soon())  # the large part, whole
    assert c.reserve(60, _soon(0.05)) is None  # a large claim waits its turn: it sheds nobody
    c.release(first)
    second = c.reserve(60, _soon())
    assert second is not None and not c.claim(second, 200, _soon(0.05))
    assert c.shed_count == 0


def test_a_reservation_without_a_shed_callback_is_never_shed() -> None:
    b = _tiny()
    for _ in range(10):
        r = b.reserve(10, _soon())
        assert r is not None
        r.started -= 5
    assert b.reserve(10, _soon(0.05)) is None and b.shed_count == 0


@pytest.mark.parametrize(
    ("body", "low", "high"),
    [
        (json.dumps({"a": "x" * 100_000}).encode(), 3.0, 3.1),  # one long string: the body, text, str
        (b"[" + b",".join([b"{}"] * 100_000) + b"]", 80, 90),  # 3 bytes a dict: ~24x measured
        # not ASCII: the text may be a 4-byte-wide str (counted as 4 per byte: an overestimate)
        (json.dumps({"a": "\U0001f600" * 1000}, ensure_ascii=False).encode(), 5.5, 6.5),
    ],
)
def test_estimate_bounds_what_parsing_costs(body: bytes, low: float, high: float) -> None:
    assert low <= estimate(body) / len(body) <= high


def test_estimate_of_kubernetes_json_is_within_the_upfront_reservation() -> None:
    container = {
        "name": "web",
        "image": "registry.example.com/web:1.2.3",
        "env": [{"name": f"VAR_{k}", "value": f"value-{k}"} for k in range(40)],
        "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
    }
    body = json.dumps({"items": [{"spec": {"containers": [container] * 10}}] * 50}).encode()
    assert 7.1 * len(body) < estimate(body) <= 15 * len(body)  # measured 7.1x; taken after the read


@pytest.mark.parametrize("item", [b'{"%x":null}', b'{"%x":{}}', b'{"%x":1}', b'["%x"]'])
def test_estimate_bounds_one_key_objects(item: bytes) -> None:
    """`[{"k":null},...]` cost 1.33x what counting values alone estimated: objects count more."""
    body = b"[" + b",".join(item % i for i in range(20_000)) + b"]"
    tracemalloc.start()
    with contextlib.suppress(admission.BadReviewError):
        admission.parse(body)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(body) + peak <= estimate(body)


def test_depth_of_a_wide_array_keeps_one_iterator_per_level() -> None:
    wide = [{} for _ in range(200_000)]
    assert admission._depth(wide) == 2
    assert admission._depth({"a": [[{"b": [1]}]], "c": {}}) == 5
    deep: list[object] = []
    cur = deep
    for _ in range(300):
        nxt: list[object] = []
        cur.append(nxt)
        cur = nxt
    assert admission._depth(deep) > admission.MAX_DEPTH
    assert admission._depth(7) == 0


def test_a_small_body_that_has_arrived_sheds_slow_ones_for_its_parse_estimate() -> None:
    """Shedding made room for a review's first reservation only; its parse estimate (more than 11x
    its length for compact Kubernetes JSON) then did not fit and it was closed unanswered."""
    b = _tiny()
    shed: list[int] = []
    _arriving(b, 9, shed, age=2.0)
    review = b.reserve(10, _soon())
    assert review is not None and shed == []
    b.received(review)
    assert b.adjust(review, 330, shed_slow=True)  # 220 more: two slow bodies shed, not itself
    assert shed == [1000, 1001] and not review.released and b.used == 1100 - 2 * 110 + 220
    assert not b.adjust(review, 2000, shed_slow=True)  # cannot fit even with every slow one shed
    assert shed == [1000, 1001] and review.amount == 330


def test_large_bodies_claim_their_turn_in_the_order_they_came() -> None:
    """Each release woke every waiting claim and the quickest took it: a client that kept claiming
    16 MiB bodies overtook a legal 1 MiB UPDATE until its deadline (admitted on the fail-open path)."""
    b = MemoryBudget(1100 + 1100, 1100, 50, 20)
    holder = b.reserve(80, _soon())
    assert holder is not None and b.claim(holder, 80, _soon())  # 880 of the large part's 1,100
    won: list[int] = []
    waiters = []
    for i in range(5):
        r = b.reserve(60, _soon())  # first bytes' share, given back while it waits to claim
        assert r is not None
        t = threading.Thread(target=lambda r=r, i=i: won.append(i) if b.claim(r, 60, _soon(1.0)) else None)
        t.start()
        waiters.append(t)
        time.sleep(0.02)  # in order
    b.release(holder)
    for t in waiters:
        t.join(5)
    assert won == [0]  # 660 each: one at a time, the first that came


def test_waiters_do_not_spin_when_every_slow_body_is_too_little_to_shed() -> None:
    """When the oldest arriving body was already slow but shedding all of them would not make room,
    every waiter woke each millisecond and scanned the arriving bodies (2.5 s of CPU in 3 s)."""
    b = _tiny()
    shed: list[int] = []
    _arriving(b, 1, shed, age=2.0)  # slow, but 110 bytes: not enough for a 220-byte claim
    for r in _arriving(b, 9, shed, first=2000):
        b.received(r)
    calls = [0]
    original = b._next_slow

    def counted(now: float) -> float:
        calls[0] += 1
        return original(now)

    b._next_slow = counted  # type: ignore[method-assign]
    waiters = [threading.Thread(target=b.reserve, args=(20, _soon(0.3))) for _ in range(20)]
    for t in waiters:
        t.start()
    for t in waiters:
        t.join(5)
    assert shed == [] and calls[0] <= 3 * len(waiters), calls


def _large_budget() -> MemoryBudget:
    """A large part of 1,100 beside 1,100 more; bodies over 50 bytes are large; claims of 80 hold 880."""
    b = MemoryBudget(1100 + 1100, 1100, 50, 20)
    b.slow_seconds = 0.2
    return b


def _stalled_claim(b: MemoryBudget, shed: list[str], address: str, got: int) -> budget.Reservation:
    """A large body of 80 bytes that claimed its whole length a second ago and has `got` bytes."""
    r = b.reserve(80, time.monotonic() + 10, lambda: shed.append(address), address)
    assert r is not None and b.claim(r, 80, _soon())
    r.got = got
    r.claimed -= 1.0  # claimed a tenth of its 10 s deadline ago
    return r


def test_a_large_body_fallen_behind_its_pace_is_shed_for_the_next_claim() -> None:
    """A body that sent its first bytes, claimed 11x its length and stalled held the large part for
    its whole deadline; a legal large UPDATE behind it waited until its own (then, on the fail-open
    path, admitted unevaluated)."""
    b = _large_budget()
    shed: list[str] = []
    stalled = _stalled_claim(b, shed, "attacker", got=1)  # 1 of 80 after a tenth of its time
    legal = b.reserve(60, _soon(), lambda: shed.append("legal"), "api-server")
    assert legal is not None and b.claim(legal, 60, _soon(2))
    assert shed == ["attacker"] and stalled.released and b.shed_count == 1


def test_a_large_body_on_its_pace_is_not_shed() -> None:
    b = _large_budget()
    shed: list[str] = []
    arriving = _stalled_claim(b, shed, "client", got=30)  # 3/8 of it after a tenth of its time
    other = b.reserve(60, _soon(), lambda: shed.append("other"), "api-server")
    assert other is not None and not b.claim(other, 60, _soon(0.3))
    assert shed == [] and not arriving.released


def test_large_bodies_take_turns_by_address() -> None:
    """A client holding a large body, with more claims waiting, takes its turn after another
    client's claim, even one that came later: many connections give one address one turn."""
    b = MemoryBudget(1800 + 1100, 1800, 50, 20)  # large bodies: over 50 bytes, in a part of 1,800
    holders = {}
    for address in ("attacker", "other"):  # 660 each
        r = b.reserve(60, _soon(), None, address)
        assert r is not None and r.large and b.claim(r, 60, _soon())
        holders[address] = r
    won: list[str] = []
    waiting = []
    for address in ("attacker", "api-server"):  # 880 each: one fits once "other" is done
        r = b.reserve(80, _soon(), None, address)
        assert r is not None

        def claim(r: budget.Reservation = r, address: str = address) -> None:
            if b.claim(r, 80, _soon(1.0)):
                won.append(address)

        t = threading.Thread(target=claim)
        t.start()
        waiting.append(t)
        time.sleep(0.05)  # the attacker's claim came first
    b.release(holders["other"])
    for t in waiting:
        t.join(5)
    assert won == ["api-server"] and b.shed_count == 0
