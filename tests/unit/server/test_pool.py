"""A job's hand-over to the handler: `done` once evaluated and its record resolved (`Job.finish`)."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

from support.webhook import POD, review

from trustgate.errors import Error
from trustgate.gate.verdict import Failure
from trustgate.model import Decision, Mode
from trustgate.server import admission
from trustgate.server.evaluation import _evaluated
from trustgate.server.pool import HEAVY_COST, EvaluatorPool, Job, cost_class, heavy_limit


def _job(seconds: float = 5.0) -> Job:
    return Job(plan=cast(Any, None), context=None, deadline=time.monotonic() + seconds)


def _evaluated_job(*records: concurrent.futures.Future[str], seconds: float = 5.0) -> Job:
    """A job as the evaluator leaves it: decided, claimed (it records the decision), records queued."""
    job = _job(seconds)
    job.decision = Decision(gate="admission", mode=Mode.ENFORCE, results=[])
    assert job.claim()
    job.records = list(records)
    return job


def test_a_job_without_records_is_done_when_evaluated() -> None:
    job = _evaluated_job()
    job.finish()
    assert job.done.is_set()


def test_a_job_is_done_only_once_every_record_is_resolved() -> None:
    first: concurrent.futures.Future[str] = concurrent.futures.Future()
    second: concurrent.futures.Future[str] = concurrent.futures.Future()
    job = _evaluated_job(first, second)
    job.finish()
    assert not job.done.is_set()
    first.set_result("id-1")
    assert not job.done.is_set()
    second.set_exception(RuntimeError("the log failed"))  # failed counts as resolved
    assert job.done.is_set()


def test_a_failed_evaluation_is_done_at_once_whatever_its_records() -> None:
    job = _evaluated_job(concurrent.futures.Future())
    job.fail(Failure.INTERNAL, "boom")
    job.finish()
    assert job.done.is_set()


def test_a_decision_whose_record_is_late_is_answered_as_not_recorded_not_as_timed_out() -> None:
    record: concurrent.futures.Future[str] = concurrent.futures.Future()
    job = _evaluated_job(record, seconds=0.2)
    job.finish()
    evaluated = _evaluated(job, job.deadline)
    assert not evaluated.timed_out and evaluated.decision is job.decision
    assert evaluated.late and "did not commit the record within the deadline" in evaluated.unrecorded
    assert not job.abandoned  # the decision stands; its record may still commit


def test_a_job_not_evaluated_by_the_deadline_times_out_and_is_abandoned() -> None:
    job = _job(seconds=0.1)
    evaluated = _evaluated(job, job.deadline)
    assert evaluated.timed_out and job.abandoned
    job.decision = Decision(gate="admission", mode=Mode.ENFORCE, results=[])  # decided too late:
    assert not job.claim()  # the evaluator does not record it (the handler recorded the timeout)


def test_a_job_claimed_but_not_yet_handed_over_at_the_deadline_is_answered_with_its_decision() -> None:
    """The evaluator decided and is recording (its record not handed over yet) when the deadline
    passes: the handler answers with that decision, its record late, and does not abandon it (which
    would record a second decision for the same request)."""
    job = _job(seconds=0.1)
    job.decision = Decision(gate="admission", mode=Mode.ENFORCE, results=[])
    assert job.claim()
    evaluated = _evaluated(job, job.deadline)
    assert not evaluated.timed_out and evaluated.decision is job.decision and evaluated.late
    assert job.abandon() is None and not job.abandoned


def test_a_claimed_job_that_then_failed_is_answered_as_failed() -> None:
    job = _evaluated_job()
    job.fail(Failure.INTERNAL, "internal error (RuntimeError: x)")
    job.finish()
    evaluated = _evaluated(job, job.deadline)
    assert evaluated.decision is None and evaluated.error == "internal error (RuntimeError: x)"


def test_a_recorded_decision_is_answered_with_its_record_committed() -> None:
    record: concurrent.futures.Future[str] = concurrent.futures.Future()
    job = _evaluated_job(record)
    job.finish()
    record.set_result("id-1")
    evaluated = _evaluated(job, job.deadline)
    assert evaluated.decision is job.decision and not evaluated.unrecorded and not evaluated.late


def _a_real_panic() -> BaseException:
    """pyo3's PanicException, as regorus raises it (it cannot be imported)."""
    import regorus

    engine = regorus.Engine()
    engine.add_policy("p.rego", 'package p\nimport rego.v1\n\nn := strings.count("abc", "")\n')
    try:
        engine.eval_rule_as_json("data.p.n")
    except BaseException as e:  # the panic is the point
        assert type(e).__name__ == "PanicException", e
        panic = e
    else:
        raise AssertionError("regorus no longer panics on strings.count with an empty substring")
    # Its traceback holds this frame, and so the engine, in a cycle that a garbage collection on
    # another thread (an evaluator's) would free there: regorus engines may not be dropped there.
    panic.__traceback__ = None
    del engine
    return panic


class _PanickingGate:
    """A Gate double whose policies panic: the panic an evaluator thread must survive."""

    built = 0
    closed = 0
    policy_revision = "r"

    def __init__(self, panic: BaseException) -> None:
        type(self).built += 1
        self.panic = panic

    def evaluate_policies(self, *args: Any, **kwargs: Any) -> Any:
        raise self.panic

    def close(self) -> None:
        type(self).closed += 1


def test_a_panic_neither_ends_the_evaluator_thread_nor_keeps_its_gate() -> None:
    panic = _a_real_panic()
    pool = EvaluatorPool(lambda: cast(Any, _PanickingGate(panic)), size=1)
    assert pool.wait_ready(5)
    try:
        for _ in range(3):  # with one thread: every job is answered by the same, surviving thread
            job = pool.submit(
                Job(
                    plan=cast(Any, SimpleNamespace(old=None, documents=[], verify_images=False)),
                    context=None,
                    deadline=time.monotonic() + 5,
                )
            )
            assert job.done.wait(5)
            assert job.failure is Failure.INTERNAL and "regorus) panicked" in job.error
        assert _PanickingGate.built == 4 and _PanickingGate.closed == 3  # a new Gate after each panic
    finally:
        pool.close()


class _RecordingGate:
    """A Gate double that notes the plan it evaluates and holds it until that plan's event is set."""

    policy_revision = "r"

    def __init__(self, seen: list[str], hold: dict[str, threading.Event]) -> None:
        self.seen, self.hold = seen, hold

    def evaluate_policies(self, documents: Any, **kwargs: Any) -> Any:
        (name,) = documents
        self.seen.append(name)
        if name in self.hold:
            assert self.hold[name].wait(10)
        raise Error("evaluated")  # the job fails: what the pool does with decisions is not the point

    def close(self) -> None:
        pass


def _sized(name: str, cost: int, seconds: float = 10) -> Job:
    plan = SimpleNamespace(old=None, documents=[name], verify_images=False)
    return Job(plan=cast(Any, plan), context=None, deadline=time.monotonic() + seconds, cost=cost)


def _until(condition: Callable[[], bool]) -> None:
    end = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < end
        time.sleep(0.005)


def test_cost_classes_put_the_api_servers_reviews_first_and_heavy_ones_last() -> None:
    assert cost_class(900) == cost_class(8 * 1024) == 0 < cost_class(8 * 1024 + 1)
    assert cost_class(50 * 1024) < cost_class(HEAVY_COST) < cost_class(HEAVY_COST + 1)
    assert cost_class(HEAVY_COST + 1) < cost_class(16 * 1024 * 1024)
    assert heavy_limit(4) == 3 and heavy_limit(1) == 1


def test_a_review_of_many_small_objects_weighs_as_much_as_evaluating_it_costs() -> None:
    """Minimal containers (26 bytes each) or empty volumes (3) cost per object, not per byte: 250 KiB
    of them took seconds to evaluate and counted as light, holding every evaluator."""
    for obj in (POD, {"kind": "Deployment", "spec": {"template": {"spec": POD["spec"]}}}):
        ordinary = json.dumps(review(obj, operation="UPDATE", old=obj), separators=(",", ":")).encode()
        assert 0.8 * len(ordinary) < admission.review_cost(ordinary) < 1.5 * len(ordinary)
        assert cost_class(admission.review_cost(ordinary)) == 0
    value = json.dumps(review({"kind": "ConfigMap", "data": {"blob": "x" * (1 << 20)}})).encode()
    assert cost_class(admission.review_cost(value)) < cost_class(HEAVY_COST + 1)  # long strings are cheap
    minimal = json.dumps({"containers": [{"name": "c", "image": "x"}] * 8_000}).encode()
    assert len(minimal) < HEAVY_COST < admission.review_cost(minimal)
    empty = b'{"volumes":[' + b",".join([b"{}"] * 30_000) + b"]}"
    assert admission.review_cost(empty) > HEAVY_COST > 2 * len(empty)


def _recording_pool(
    held: list[str], *, size: int
) -> tuple[EvaluatorPool, list[str], dict[str, threading.Event]]:
    """A ready pool of `size` evaluators that record each review they take in `seen`; the reviews named
    in `held` wait for their event in `hold` to be set."""
    seen: list[str] = []
    hold = {name: threading.Event() for name in held}
    pool = EvaluatorPool(lambda: cast(Any, _RecordingGate(seen, hold)), size=size)
    assert pool.wait_ready(5)
    return pool, seen, hold


def test_waiting_jobs_are_taken_lightest_first_and_in_arrival_order_within_a_size() -> None:
    """One evaluator busy; a heavy, a medium and two small reviews wait: the small ones go first."""
    pool, seen, hold = _recording_pool(["first"], size=1)
    try:
        first = pool.submit(_sized("first", 1000))
        _until(lambda: seen == ["first"])
        waiting = [("heavy", 2 * HEAVY_COST), ("medium", 60_000), ("small", 2000), ("small-2", 900)]
        jobs = [pool.submit(_sized(name, size)) for name, size in waiting]
        hold["first"].set()
        for job in [first, *jobs]:
            assert job.done.wait(5)
        assert seen == ["first", "small", "small-2", "medium", "heavy"]
    finally:
        pool.close()


def test_heavy_reviews_never_hold_the_last_evaluator() -> None:
    """Heavy reviews take seconds each: sent back to back they held every evaluator, and a small
    review waited behind them past its deadline (on the fail-open path, an allow)."""
    pool, seen, hold = _recording_pool([f"heavy-{i}" for i in range(3)], size=3)
    try:
        heavy = [pool.submit(_sized(f"heavy-{i}", HEAVY_COST + 1)) for i in range(3)]
        _until(lambda: len(seen) == 2)
        time.sleep(0.05)
        assert sorted(seen) == ["heavy-0", "heavy-1"] and pool.heavy_busy == 2  # the third waits
        small = pool.submit(_sized("small", 2000))
        assert small.done.wait(5) and seen[-1] == "small"  # the free evaluator takes it at once
        hold["heavy-0"].set()
        _until(lambda: "heavy-2" in seen)  # a heavy one finished: the waiting one may start
        for event in hold.values():
            event.set()
        for job in heavy:
            assert job.done.wait(5)
        assert pool.heavy_busy == 0
    finally:
        pool.close()


def test_a_closed_pool_evaluates_what_was_waiting_then_its_threads_end() -> None:
    pool, seen, hold = _recording_pool(["first"], size=1)
    first = pool.submit(_sized("first", 1000))
    _until(lambda: seen == ["first"])
    second = pool.submit(_sized("second", 1000))
    pool.close()
    hold["first"].set()
    assert first.done.wait(5) and second.done.wait(5) and seen == ["first", "second"]
    for thread in pool._threads:
        thread.join(5)
        assert not thread.is_alive()


def test_jobs_whose_deadline_passed_are_taken_out_even_past_the_heavy_limit() -> None:
    """Expired heavy jobs waited behind the heavy limit with an evaluator idle, each holding its
    parsed review after its handler had answered and given its memory back."""
    pool, seen, hold = _recording_pool([f"heavy-{i}" for i in range(2)], size=3)
    try:
        busy = [pool.submit(_sized(f"heavy-{i}", HEAVY_COST + 1)) for i in range(2)]
        _until(lambda: len(seen) == 2)
        expiring = [pool.submit(_sized(f"late-{i}", HEAVY_COST + 1, seconds=0.2)) for i in range(5)]
        for job in expiring:
            assert job.done.wait(3)  # failed at their deadline, not when a heavy one finishes
            assert job.failure is Failure.DEADLINE
        assert not any(name.startswith("late") for name in seen) and pool.heavy_busy == 2
        assert not pool._jobs
        for event in hold.values():
            event.set()
        for job in busy:
            assert job.done.wait(5)
        _until(lambda: pool.heavy_busy == 0)
    finally:
        pool.close()
