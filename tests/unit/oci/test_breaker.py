"""The per-registry circuit breaker and the per-verification deadline, on a hand-moved clock."""

from __future__ import annotations

import threading

from trustgate.oci import deadline
from trustgate.oci.breaker import Breakers


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_failure_marks_the_registry_down_for_a_growing_interval_with_one_probe() -> None:
    clock = Clock()
    breakers = Breakers(base_seconds=2, max_seconds=5, clock=clock)
    assert breakers.admit("r.example") is None
    breakers.failed("r.example", "connection refused")
    down = breakers.admit("r.example")
    assert down is not None and down.seconds == 2 and down.last_error == "connection refused"
    assert breakers.admit("other.example") is None  # per registry
    clock.now = 2
    assert breakers.admit("r.example") is None  # the probe
    assert breakers.admit("r.example") is not None  # everyone else, while it runs
    breakers.failed("r.example", "still refused")
    clock.now = 5
    assert breakers.admit("r.example") is not None  # 4 s this time
    clock.now = 6
    assert breakers.admit("r.example") is None
    breakers.failed("r.example", "still refused")
    clock.now = 10.9
    assert breakers.admit("r.example") is not None  # capped at 5 s
    clock.now = 11
    assert breakers.admit("r.example") is None
    breakers.succeeded("r.example")
    assert breakers.admit("r.example") is None and breakers.admit("r.example") is None


def test_a_retry_after_keeps_the_registry_down_that_long() -> None:
    clock = Clock()
    breakers = Breakers(base_seconds=2, clock=clock)
    breakers.failed("r.example", "429", retry_after=3600)
    clock.now = 3599
    assert breakers.admit("r.example") is not None
    clock.now = 3600
    assert breakers.admit("r.example") is None


def test_a_probe_that_gives_up_lets_the_next_one_try() -> None:
    clock = Clock()
    breakers = Breakers(base_seconds=1, clock=clock)
    breakers.failed("r.example", "timeout")
    clock.now = 1
    assert breakers.admit("r.example") is None
    breakers.released("r.example")
    assert breakers.admit("r.example") is None


def test_the_earlier_deadline_wins_and_each_thread_has_its_own() -> None:
    assert deadline.current() is None
    with deadline.within(10, "outer") as outer:
        with deadline.within(60, "inner") as inner:
            assert inner is outer  # a caller's shorter deadline is kept
        with deadline.within(1, "inner") as inner:
            assert inner.what == "inner" and inner.at < outer.at
        seen: list[object] = []
        thread = threading.Thread(target=lambda: seen.append(deadline.current()))
        thread.start()
        thread.join()
        assert seen == [None]
    assert deadline.current() is None


def test_the_bulkhead_bounds_verifications_per_registry_and_frees_a_slot_on_leave() -> None:
    breakers = Breakers(max_in_flight=2, queue_seconds=0.05)
    assert breakers.enter("hung.example", wait=10) is None
    assert breakers.enter("hung.example", wait=10) is None
    assert breakers.enter("hung.example", wait=10) == 2  # full: refused after queue_seconds
    assert breakers.enter("other.example", wait=10) is None  # per registry
    breakers.leave("hung.example")
    assert breakers.enter("hung.example", wait=10) is None


def test_a_waiter_gets_the_slot_that_frees_up_and_gives_up_when_the_registry_is_marked_down() -> None:
    breakers = Breakers(max_in_flight=1, queue_seconds=5)
    assert breakers.enter("r.example", wait=10) is None
    got: list[int | None] = []
    waiter = threading.Thread(target=lambda: got.append(breakers.enter("r.example", wait=10)))
    waiter.start()
    breakers.leave("r.example")
    waiter.join(timeout=5)
    assert got == [None]
    # Now the waiter holds it; the next one waits until the registry is marked down, then gives up.
    waiter = threading.Thread(target=lambda: got.append(breakers.enter("r.example", wait=10)))
    waiter.start()
    breakers.failed("r.example", "timed out")
    waiter.join(timeout=2)
    assert not waiter.is_alive() and got == [None, 1]


def test_the_limits_come_from_the_configuration() -> None:
    from trustgate.config import RegistryConfig

    config = RegistryConfig(
        breaker_threshold=3, breaker_base_seconds=1, breaker_max_seconds=9, max_requests_per_registry=16
    ).sharing(4)
    breakers = Breakers.from_config(config)
    assert (breakers.threshold, breakers.base_seconds, breakers.max_seconds) == (3, 1, 9)
    assert breakers.max_in_flight == 3  # all but one of the 4 evaluators
