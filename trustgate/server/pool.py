"""Evaluator threads, each owning one `Gate`, and the deadline every request is held to.

Owns: building one Gate per evaluator thread (regorus engines cannot cross
threads, so a Gate never leaves the thread that built it), sharing one image
cache and one decision log between them, handing requests over with a
deadline, and telling a deadline from an internal failure (a typed `Failure`).

An evaluator does not wait for its decision's record to be durable: it
appends inside `Recorder.deferred()`, hands the record's future to the
handler with the decision and takes the next request, while the handler
thread waits for the commit before answering. One commit then carries the
records of every request in flight (group commit), not one per evaluator.

Which request goes first: the lightest. Evaluating costs about 1.6-1.9 us per
byte of an ordinary review (a Pod of 2,500 containers, 0.6 MiB: ~1 s alone;
5,000: 1.9 s), and more for many small objects (7,700 minimal containers in
250 KiB: seconds), so a client allowed to create objects could send heavy
reviews back to back and keep every evaluator busy, and a small review queued
behind them waited past its deadline (the failure policy then answered it: an
allow on `/validate/fail-open`). Each review is weighed by
`admission.review_cost` (48 bytes per object and array, about what an
ordinary review holds of each, or an eighth of its bytes when more);
requests are taken by cost class (`cost_class`: the API server's reviews of
a few KiB first), in arrival order within a class, and those over
`HEAVY_COST` never hold the last evaluator (`heavy_limit`), as a hung
registry may not (`RegistryConfig.sharing`). A job whose deadline passed
while it waited is taken out at once, heavy or not (its handler has answered
and given its memory back). A heavy review waits while lighter ones keep
coming: under that load it gets the failure policy at its deadline, as any
request does when the server is overloaded.

Leaves out: HTTP (the handler thread waits on a `Job`), recording the
decisions made without the gate (`evaluation`, through the recorder), and
process management. Why threads at all when the GIL serialises Python: evaluation
mostly waits on registries when caches are cold, and a request whose
evaluation hangs must not hold the handler past its deadline.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import heapq
import itertools
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trustgate.errors import Error
from trustgate.gate import Gate
from trustgate.gate.verdict import Failure, finding_order
from trustgate.policy.rego import is_engine_panic, panic_text

if TYPE_CHECKING:
    from trustgate.gate.recorder import DecisionContext, Recorder
    from trustgate.model import Decision, DocumentResult
    from trustgate.server.admission import Plan

# A review costing more than this (`admission.review_cost`) is heavy: it never takes the last free
# evaluator (the API server's reviews are a few KiB, 50 KiB with large objects; 256 KiB is also the
# memory budget's small body).
HEAVY_COST = 256 * 1024


def cost_class(cost: int) -> int:
    """The order in which a review of `cost` is evaluated: 0 up to 8 KiB, then one class per fourfold
    cost (32 KiB, 128 KiB, ...); heavy reviews after every lighter one."""
    return max(0, (max(cost, 1) - 1).bit_length() - 13 + 1) // 2 + (100 if cost > HEAVY_COST else 0)


def heavy_limit(evaluators: int) -> int:
    """How many evaluators heavy reviews may hold at once: all but one (one, with one evaluator)."""
    return max(1, evaluators - 1)


@dataclass(slots=True)
class Job:
    """One evaluation handed to an evaluator thread; the handler waits on `done`."""

    plan: Plan
    context: DecisionContext | None
    deadline: float  # time.monotonic() value after which nobody waits for the answer
    cost: int = 0  # what evaluating it costs (`admission.review_cost`): its order (`cost_class`)
    holds_heavy: bool = False  # taken as a heavy job: counted in `EvaluatorPool.heavy_busy` until done
    done: threading.Event = field(default_factory=threading.Event)
    decision: Decision | None = None
    error: str = ""  # set when evaluation failed: the reason for the failure policy
    failure: Failure | None = None  # set with `error`: what kind of failure it was
    # Schemas and policies are decided before images are verified (which may wait on a registry):
    policy_checked: bool = False
    policy_denials: list[str] = field(default_factory=list)  # "[rule] message" of blocking findings
    abandoned: bool = False  # the handler answered at the deadline: do not record a second decision
    claimed: bool = False  # the evaluator records `decision`: the handler answers with it, however late
    lock: threading.Lock = field(default_factory=threading.Lock)
    # the decision's record, queued in the decision log: answer only once it is committed
    records: list[concurrent.futures.Future[str]] = field(default_factory=list)

    def saw_policies(self, denials: list[str]) -> None:
        with self.lock:
            self.policy_denials = denials
            self.policy_checked = True

    def abandon(self) -> tuple[bool, list[str]] | None:
        """At the deadline: mark the job answered elsewhere; (policies were checked, their denials).

        None when the evaluator has claimed it (`claim`): its decision is being recorded, and the
        handler answers with that decision, its record late, rather than record a second one.
        """
        with self.lock:
            if self.claimed:
                return None
            self.abandoned = True
            return self.policy_checked, list(self.policy_denials)

    def claim(self) -> bool:
        """For the evaluator, with `decision` set: record it, unless the handler gave up on it first."""
        with self.lock:
            self.claimed = not self.abandoned
            return self.claimed

    def fail(self, failure: Failure, reason: str) -> None:
        self.failure, self.error = failure, reason

    def finish(self) -> None:
        """Evaluated: wake the handler now, or (a decision with records) once every record is resolved.

        The handler then sleeps once per request, woken by the thread that resolves the
        record, rather than once by the evaluator and again by that thread.
        """
        pending = [f for f in self.records if not f.done()] if self.failure is None else []
        if not pending:
            self.done.set()
            return
        remaining = [len(pending)]
        lock = threading.Lock()

        def resolved(_: concurrent.futures.Future[str]) -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self.done.set()

        for future in pending:
            future.add_done_callback(resolved)  # at once when it is already resolved


class EvaluatorPool:
    """`size` threads, each with its own Gate built by `build_gate` in that thread."""

    def __init__(
        self, build_gate: Callable[[], Gate], *, size: int, recorder: Recorder | None = None
    ) -> None:
        self._build = build_gate
        self._recorder = recorder  # the Gates' log: their appends are deferred (see the module docstring)
        # waiting jobs by (cost class, arrival); `_jobs` is guarded by `_lock`, waited on with `_wake`
        self._jobs: list[tuple[int, int, Job]] = []
        self._arrivals = itertools.count()
        self._closed = False
        self.heavy_busy = 0  # heavy reviews (costing over HEAVY_COST) being evaluated now
        self._ready = 0
        self._failed: str = ""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._ready_event = threading.Event()
        self.size = max(1, size)
        self.heavy_limit = heavy_limit(self.size)
        self.busy = 0  # evaluations running now
        self.policy_revision = ""
        self._threads = [
            threading.Thread(target=self._run, name=f"trustgate-evaluator-{i}", daemon=True)
            for i in range(self.size)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def ready(self) -> bool:
        """Every evaluator has compiled its policies and loaded its trust roots."""
        return self._ready == self.size

    @property
    def failed(self) -> str:
        """Why an evaluator could not build its Gate ("" when none failed)."""
        return self._failed

    def wait_ready(self, timeout: float) -> bool:
        self._ready_event.wait(timeout)
        return self.ready

    def submit(self, job: Job) -> Job:
        """Queue `job` behind the waiting jobs of its cost class and of lighter ones."""
        with self._wake:
            heapq.heappush(self._jobs, (cost_class(job.cost), next(self._arrivals), job))
            self._wake.notify()
        return job

    def close(self) -> None:
        """The evaluators stop once the jobs waiting now are taken."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()

    def _take(self) -> Job | None:
        """The next job to evaluate (the lightest, the oldest within its class); None once closed and
        none is left. A heavy job waits while heavy ones hold `heavy_limit` evaluators; a job whose
        deadline passed is taken at once, wherever it waits (it is only failed)."""
        with self._wake:
            while True:
                if self._jobs:
                    job = self._jobs[0][2]
                    heavy = job.cost > HEAVY_COST
                    if not heavy or self.heavy_busy < self.heavy_limit:
                        heapq.heappop(self._jobs)
                        self.heavy_busy += heavy
                        job.holds_heavy = heavy
                        return job
                    now = time.monotonic()
                    expired = next((e for e in self._jobs if e[2].deadline <= now), None)
                    if expired is not None:
                        self._jobs.remove(expired)
                        heapq.heapify(self._jobs)
                        return expired[2]  # not counted as heavy: `_run` fails it without evaluating
                    # wake when the first waiting job's deadline passes, to take it out
                    self._wake.wait(max(0.001, min(e[2].deadline for e in self._jobs) - now))
                    continue
                if self._closed:
                    return None
                self._wake.wait()

    def _done(self, job: Job) -> None:
        if job.holds_heavy:
            with self._wake:
                job.holds_heavy = False
                self.heavy_busy -= 1
                self._wake.notify()

    def _run(self) -> None:
        try:
            gate = self._build()
        except Error as e:
            with self._lock:
                self._failed = e.diagnostics()
            self._ready_event.set()
            return
        with self._lock:
            self._ready += 1
            self.policy_revision = gate.policy_revision
            if self._ready == self.size:
                self._ready_event.set()
        try:
            while (job := self._take()) is not None:
                if time.monotonic() >= job.deadline:  # nobody waits for it any more
                    job.fail(Failure.DEADLINE, "the deadline passed while it waited for an evaluator")
                    self._done(job)
                    job.done.set()
                    continue
                with self._lock:
                    self.busy += 1
                try:
                    self._evaluate(gate, job)
                except Error as e:
                    job.fail(Failure.INTERNAL, e.diagnostics())
                except Exception as e:
                    traceback.print_exc(file=sys.stderr)
                    job.fail(Failure.INTERNAL, f"internal error ({type(e).__name__}: {e})")
                except BaseException as e:
                    # A Rust panic (pyo3's PanicException is no Exception) that the policy layer did
                    # not turn into an error: it must neither end this thread (a pool emptied by
                    # crafted objects answers nothing, or allows where fail-open) nor leave the
                    # Gate's broken engines in use.
                    if not is_engine_panic(e):
                        raise
                    traceback.print_exc(file=sys.stderr)
                    job.fail(Failure.INTERNAL, f"internal error ({panic_text(e)})")
                    gate = self._rebuild(gate)
                finally:
                    with self._lock:
                        self.busy -= 1
                    self._done(job)
                    job.finish()
        finally:
            gate.close()

    def _rebuild(self, gate: Gate) -> Gate:
        """A new Gate in place of one a panic went through; the old one if building fails."""
        try:
            fresh = self._build()
        except Error as e:
            print(f"trustgate: could not rebuild an evaluator: {e.diagnostics()}", file=sys.stderr)
            return gate
        gate.close()
        return fresh

    def _evaluate(self, gate: Gate, job: Job) -> None:
        """Both phases: a policy denial is known to the handler before images are verified."""
        deferred = (
            self._recorder.deferred() if self._recorder is not None else contextlib.nullcontext(job.records)
        )
        with deferred as records:
            plan = job.plan
            # An UPDATE is judged against the object as it is (`oldObject`, CRD transition rules).
            old = [plan.old] if plan.old is not None else []
            policies = gate.evaluate_policies(plan.documents, verify_images=plan.verify_images, old=old)
            if plan.protected is not None:  # a protected kind's DELETE: its approval is judged too
                _join_protected(policies.results, plan.protected)
            job.saw_policies(policies.denials())
            decision = gate.decide(policies, gate="admission")
            decision.notes.extend([*plan.notes, *(plan.protected.notes if plan.protected else ())])
            job.decision = decision  # before `claim`: a handler that finds the job claimed answers with it
            if job.claim():  # else the handler answered at the deadline and recorded that
                gate.record(decision, job.context)
        job.records = records


def _join_protected(results: list[DocumentResult], protected: Decision) -> None:
    """Add the protected-delete finding (if any) to the deleted object's result, so that one decision
    holds the approval and the admission policies' findings alike."""
    extra = [f for r in protected.results for f in r.findings]
    if not extra:
        return
    if results:
        results[0].findings.extend(extra)
        results[0].findings.sort(key=finding_order)
    else:
        results.extend(protected.results)
