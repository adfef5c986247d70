"""One admission request through the evaluators, held to its deadline, and its decision recorded.

Owns: planning a review (`admission.plan`), handing it to the evaluator pool
with its deadline, waiting for the decision's record to be durable, asking
`admission.answer` what that makes the answer, and recording the decisions
made without the gate (a protected delete; a failure answered by the
failure policy) through the gate's recorder. Leaves out: HTTP (the handler
in `http` calls `decide` and writes what it returns), what the answer is
(`admission`, pure) and evaluating (`pool`, the gate).
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trustgate.errors import DecisionLogError
from trustgate.gate.verdict import Failure, failure_decision
from trustgate.model import Decision
from trustgate.server import admission
from trustgate.server.pool import Job

if TYPE_CHECKING:
    from trustgate.gate.recorder import DecisionContext
    from trustgate.server.http import WorkerState


LATE_RECORD = "the decision log did not commit the record within the deadline"


def decide(
    state: WorkerState, review: admission.Review, *, fail_open_path: bool, started: float
) -> tuple[dict[str, Any], str]:
    """The AdmissionReview response to a parsed review, and its metrics verdict."""
    settings = state.settings
    plan = admission.plan(
        review,
        settings,
        mode=state.mode,
        delete_actors=state.delete_actors,
        admission_policies=state.admission_policies,
        subresources=state.subresources,
    )
    if plan.decision is not None:
        return _record_and_respond(state, review, plan.decision)
    if plan.response is not None:
        allowed = plan.response["response"]["allowed"]
        return plan.response, "skipped" if allowed and plan.skipped != "delete" else (
            "allowed" if allowed else "denied"
        )
    fail_open = admission.fails_open(review, settings, fail_open_path=fail_open_path)
    context = context_of(review)
    deadline = started + settings.deadline_seconds
    if not state.pool.ready:
        state.pool.wait_ready(max(0.0, deadline - time.monotonic()))
    if state.pool.failed:
        failed = admission.Failed("its policies failed to compile", fail_open)
        return _failure(state, review, context, failed, plan.notes)
    job = state.pool.submit(Job(plan, context, deadline, cost=review.cost))
    evaluated = _evaluated(job, deadline)
    if evaluated.decision is not None and evaluated.decision.images:
        images = evaluated.decision.images
        state.metrics.images([i.cache for i in images], sum(1 for i in images if i.status == "unverifiable"))
    answer = admission.answer(
        review,
        evaluated,
        deadline_seconds=settings.deadline_seconds,
        fail_open=fail_open,
        log_fail_closed=state.log_fail_closed,
    )
    if answer.deadline_exceeded:
        state.metrics.deadline_exceeded()
    if answer.failed is not None:
        return _failure(state, review, context, answer.failed, plan.notes)
    assert answer.response is not None  # an answer is a response or a failure
    return answer.response, admission.verdict(answer.response)


def _evaluated(job: Job, deadline: float) -> admission.Evaluated:
    """What the evaluator gave by the deadline; the job is abandoned when it gave nothing in time.

    `done` is set once the decision's record is committed too (`Job.finish`). At the deadline, a
    job the evaluator has claimed (`Job.claim`: it records its decision) is answered with that
    decision as not (yet) recorded; one it has not is abandoned and answered as timed out, so a
    request never gets two records.
    """
    if not job.done.wait(max(0.0, deadline - time.monotonic())) or job.failure is Failure.DEADLINE:
        abandoned = job.abandon()
        if abandoned is not None:
            checked, denials = abandoned
            return admission.Evaluated(timed_out=True, policies_checked=checked, denials=denials)
        # Claimed: the evaluator records its decision (perhaps still appending it): answer with it.
        if not job.done.is_set():
            return admission.Evaluated(
                decision=job.decision,
                unrecorded=LATE_RECORD,
                late=True,
            )
    if job.failure is not None or job.decision is None:  # failed, perhaps after deciding
        return admission.Evaluated(error=job.error)
    unrecorded, late = _durable(job.records, deadline)  # answered only once its record is committed
    return admission.Evaluated(decision=job.decision, unrecorded=unrecorded, late=late)


def _record_and_respond(state: WorkerState, review: admission.Review, decision: Decision) -> tuple[Any, str]:
    """Record a decision made without the gate (a protected delete), then answer it."""
    decision.policy_revision = state.pool.policy_revision
    if state.recorder is not None:
        record_id, error = state.recorder.record_failure(decision, context_of(review))
        if error:  # like any decision that cannot be recorded: the request fails, closed
            failed = admission.Failed(f"the decision could not be recorded: {error}", False, record=False)
            return _failure(state, review, None, failed)
        decision.record_id = record_id
    response = admission.respond(review, decision)
    return response, admission.verdict(response)


def _failure(
    state: WorkerState,
    review: admission.Review,
    context: DecisionContext | None,
    failed: admission.Failed,
    notes: list[str] | None = None,
) -> tuple[Any, str]:
    reason = failed.reason
    if failed.record and state.recorder is not None:
        decision = failure_decision(
            review.label,
            reason,
            failure=failed.kind,
            fail_open=failed.fail_open,
            revision=state.pool.policy_revision,
            notes=notes or (),
        )
        _, error = state.recorder.record_failure(
            decision, context if failed.with_context else None, wait=failed.wait
        )
        if error:
            reason += f" (and it was not recorded: {error})"
    response = admission.failure(review, reason=reason, fail_open=failed.fail_open)
    return response, "failure_open" if failed.fail_open else "failure_closed"


def _durable(records: list[concurrent.futures.Future[str]], deadline: float) -> tuple[str, bool]:
    """Wait (up to the deadline) until every record is committed: ("", False), or why one is not and
    whether it is only late (it may still commit)."""
    for future in records:
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            return LATE_RECORD, True
        except DecisionLogError as e:
            return e.diagnostics(), False
    return "", False


def context_of(review: admission.Review) -> DecisionContext:
    """Who asked for what, for the record."""
    from trustgate.gate.recorder import Actor, DecisionContext

    return DecisionContext(
        actor=Actor(user=dict(review.user) if review.user else None),
        operation=review.operation,
        uid=review.uid,
        sub_resource=_sub_resource(review),
        dry_run=review.dry_run,
        input_hash=review.input_hash,
        request={**review.request, "object": review.obj, "oldObject": review.old},
    )


def _sub_resource(review: admission.Review) -> tuple[str, str] | None:
    """(group/resource, subresource) of a request on a subresource, for the record."""
    if not review.sub_resource:
        return None
    resource = review.request.get("resource")
    group, plural = "", ""
    if isinstance(resource, Mapping):
        group, plural = str(resource.get("group") or ""), str(resource.get("resource") or "")
    return (f"{group}/{plural}" if group else plural), review.sub_resource
