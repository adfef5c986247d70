"""Evaluator threads, each owning one `Gate`, and the deadline every request is held to.

Owns: building one Gate per evaluator thread (regorus engines cannot cross
threads, so a Gate never leaves the thread that built it), sharing one image
cache and one decision log between them, handing requests over with a
deadline, and recording the decisions the server had to make without the
gate (deadline passed, internal failure) in the decision log.

An evaluator does not wait for its decision's record to be durable: it
appends inside `DecisionLog.deferred()`, hands the record's future to the
handler with the decision and takes the next request, while the handler
thread waits for the commit before answering. One commit then carries the
records of every request in flight (group commit), not one per evaluator.

Leaves out: HTTP (the handler thread waits on a `Job`), and process
management. Why threads at all when the GIL serialises Python: evaluation
mostly waits on registries when caches are cold, and a request whose
evaluation hangs must not hold the handler past its deadline.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trustgate.errors import Error
from trustgate.gate import Gate
from trustgate.model import Decision, DocumentResult, Finding, Severity, Source

if TYPE_CHECKING:
    from trustgate.decisions.log import DecisionLog
    from trustgate.decisions.record import DecisionContext
    from trustgate.server.admission import Plan


@dataclass(slots=True)
class Job:
    """One evaluation handed to an evaluator thread; the handler waits on `done`."""

    plan: Plan
    context: DecisionContext | None
    deadline: float  # time.monotonic() value after which nobody waits for the answer
    done: threading.Event = field(default_factory=threading.Event)
    decision: Decision | None = None
    error: str = ""  # set when evaluation failed: the reason for the failure policy
    # Schemas and policies are decided before images are verified (which may wait on a registry):
    policy_checked: bool = False
    policy_denials: list[str] = field(default_factory=list)  # "[rule] message" of blocking findings
    abandoned: bool = False  # the handler answered at the deadline: do not record a second decision
    lock: threading.Lock = field(default_factory=threading.Lock)
    # the decision's record, queued in the decision log: answer only once it is committed
    records: list[concurrent.futures.Future[str]] = field(default_factory=list)

    def saw_policies(self, results: Sequence[DocumentResult]) -> None:
        denials = [
            f"[{f.rule}] {f.message}" for r in results for f in r.findings if f.severity == Severity.ERROR
        ]
        with self.lock:
            self.policy_denials = denials
            self.policy_checked = True

    def abandon(self) -> tuple[bool, list[str]]:
        """Mark the job answered elsewhere; (policies were checked, their denials)."""
        with self.lock:
            self.abandoned = True
            return self.policy_checked, list(self.policy_denials)

    def still_wanted(self) -> bool:
        with self.lock:
            return not self.abandoned


class EvaluatorPool:
    """`size` threads, each with its own Gate built by `build_gate` in that thread."""

    def __init__(
        self, build_gate: Callable[[], Gate], *, size: int, decision_log: DecisionLog | None = None
    ) -> None:
        self._build = build_gate
        self._log = decision_log  # the Gates' log: their appends are deferred (see the module docstring)
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._ready = 0
        self._failed: str = ""
        self._lock = threading.Lock()
        self._ready_event = threading.Event()
        self.size = max(1, size)
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
        self._queue.put(job)
        return job

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

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
            while True:
                job = self._queue.get()
                if job is None:
                    return
                if time.monotonic() >= job.deadline:  # nobody waits for it any more
                    job.error = "the deadline passed while it waited for an evaluator"
                    job.done.set()
                    continue
                with self._lock:
                    self.busy += 1
                try:
                    deferred = (
                        self._log.deferred() if self._log is not None else contextlib.nullcontext(job.records)
                    )
                    with deferred as records:
                        job.decision = gate.evaluate(
                            job.plan.documents,
                            gate="admission",
                            context=job.context,
                            verify_images=job.plan.verify_images,
                            notes=job.plan.notes,
                            on_policies=job.saw_policies,
                            record_if=job.still_wanted,
                        )
                    job.records = records
                except Error as e:
                    job.error = e.diagnostics()
                except Exception as e:
                    traceback.print_exc(file=sys.stderr)
                    job.error = f"internal error ({type(e).__name__}: {e})"
                finally:
                    with self._lock:
                        self.busy -= 1
                    job.done.set()
        finally:
            gate.close()


def failure_decision(label: str, reason: str, *, fail_open: bool, revision: str) -> Decision:
    """A decision made without the gate (deadline, internal error), for the decision log."""
    finding = Finding(
        rule="admission/not-evaluated",
        severity=Severity.WARNING if fail_open else Severity.ERROR,
        message=f"{reason}; failure policy {'open: allowed' if fail_open else 'closed: denied'}",
        source="registry" if "deadline" in reason else "engine",
    )
    from trustgate.model import Mode

    result = DocumentResult(Source(f"admission:{label}"), None, label.split("/", 1)[0], None, None, [finding])
    return Decision(gate="admission", mode=Mode.ENFORCE, results=[result], policy_revision=revision)


def record_failure(
    log: DecisionLog, decision: Decision, context: DecisionContext | None, *, wait: bool = True
) -> tuple[str, str]:
    """Append a failure decision; returns (record id, error) — the answer is already fixed.

    `wait=False` queues it without waiting for the commit (the deadline has passed): ("", "").
    """
    from trustgate.decisions.canonical import CanonicalError
    from trustgate.decisions.record import build_record
    from trustgate.errors import DecisionLogError

    try:
        if not wait:
            log.submit(build_record(decision, context))  # a failure is counted by the log
            return "", ""
        return log.append(build_record(decision, context)), ""
    except (DecisionLogError, CanonicalError) as e:
        return "", e.diagnostics() if isinstance(e, Error) else str(e)
