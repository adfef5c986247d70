"""A job's hand-over to the handler: `done` once evaluated and its record resolved (`Job.finish`)."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any, cast

from trustgate.gate.verdict import Failure
from trustgate.model import Decision, Mode
from trustgate.server.evaluation import _evaluated
from trustgate.server.pool import Job


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
