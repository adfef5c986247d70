"""Verification of the whole log in the background, with progress (the Integrity page's button).

Owns: one verification at a time per process, run in a thread on its own
store connection, counting the records it has checked. It only reads: the
same `Verifier` as `trustgate log verify`, over one snapshot of the store,
with the checkpoints the auditor kept (read again at each run), each of
which it reports as consistent or not.
Leaves out: HTTP.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from trustgate.config import DEFAULT_CLOCK_SKEW_SECONDS
from trustgate.decisions.chain import Kept, Report, Row, Verifier
from trustgate.decisions.log import Store
from trustgate.errors import Error

KEEP_JOBS = 20  # finished runs kept for their result page


@dataclass
class Job:
    """One verification run; `state` is running, intact, not-intact or failed."""

    id: str
    started: str
    total: int = 0
    checked: int = 0
    state: str = "running"
    finished: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    # Each kept checkpoint checked: {"label", "size", "result"}, result consistent, NOT CONSISTENT
    # or "not checked" (the records failed before the tree was compared).
    kept: list[dict[str, Any]] = field(default_factory=list)

    @property
    def percent(self) -> int:
        return 100 if self.state != "running" else int(100 * self.checked / self.total) if self.total else 0


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Verifications:
    """Runs `Verifier` in a background thread; `start` joins the run in progress rather than start another."""

    def __init__(
        self,
        open_store: Callable[[], Store],
        *,
        public_key: Any = None,
        kept: Callable[[], list[Kept]] | None = None,
        clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS,
    ) -> None:
        self._open = open_store
        self._clock_skew = clock_skew  # seconds, as `log verify --clock-skew`
        self._public_key = public_key
        self._kept = kept
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self.latest: Job | None = None

    def start(self) -> Job:
        with self._lock:
            running = [j for j in self._jobs.values() if j.state == "running"]
            if running:
                return running[0]
            job = Job(id=uuid.uuid4().hex, started=_now())
            self._jobs[job.id] = job
            for old in list(self._jobs)[:-KEEP_JOBS]:
                del self._jobs[old]
            self.latest = job
        threading.Thread(target=self._run, args=(job,), name=f"verify-{job.id[:8]}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job: Job) -> None:
        try:
            kept = self._kept() if self._kept is not None else []  # a published directory grows
            store = self._open()
            try:
                with store.snapshot():
                    job.total = store.count()
                    verifier = Verifier(
                        checkpoints=store.checkpoints(),
                        public_key=self._public_key,
                        tree=store.stored_tree(),
                        head=store.stored_head(),  # as stored: the verifier reports one of the wrong types
                        kept=kept,
                        clock_skew=self._clock_skew,
                    )
                    report = store.verify(verifier, through=lambda rows: self._counted(job, rows))
            finally:
                store.close()
        except Error as e:
            job.error = e.diagnostics()
            job.state = "failed"
        except Exception as e:  # a bug: the run must still end; the thread's traceback goes to stderr
            job.error = f"internal error ({type(e).__name__})"
            job.state = "failed"
            raise
        else:
            job.report = report.to_json()
            job.kept = [{"label": k.label, "size": k.head.size, "result": _result(k, report)} for k in kept]
            job.state = "intact" if report.ok else "not-intact"
        finally:
            job.finished = _now()

    @staticmethod
    def _counted(job: Job, rows: Iterator[Row]) -> Iterator[Row]:
        try:
            for row in rows:
                job.checked += 1
                yield row
        finally:
            close = getattr(rows, "close", None)
            if callable(close):
                close()


def _result(kept: Kept, report: Report) -> str:
    """Whether the run found the log consistent with one kept checkpoint (`Verifier` names it so)."""
    where = f"the kept checkpoint {kept.label}"
    if where in report.consistent:
        return "consistent"
    for p in report.problems:  # "... differs from WHERE", "WHERE covers ...", "... with WHERE: ..."
        if p.message.endswith(where) or f"{where} " in p.message or f"{where}:" in p.message:
            return "NOT CONSISTENT"
    return "not checked (the records failed first)"
