"""A job's hand-over to the handler: `done` once evaluated and its record resolved (`Job.finish`)."""

from __future__ import annotations

import concurrent.futures
import time
from types import SimpleNamespace
from typing import Any, cast

from trustgate.gate.verdict import Failure
from trustgate.model import Decision, Mode
from trustgate.server.evaluation import _evaluated
from trustgate.server.pool import EvaluatorPool, Job


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
        return e
    raise AssertionError("regorus no longer panics on strings.count with an empty substring")


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
