"""Verification of the whole log in the background, with progress (the Integrity page's button).

Owns: one verification at a time per process, run in a thread on its own
store connection, counting the records it has checked. It only reads: the
same `Verifier` as `trustgate log verify`, over one snapshot of the store.
Leaves out: HTTP.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from trustgate.decisions.chain import Row, Verifier
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

    @property
    def percent(self) -> int:
        return 100 if self.state != "running" else int(100 * self.checked / self.total) if self.total else 0


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Verifications:
    """Runs `Verifier` in a background thread; `start` joins the run in progress rather than start another."""

    def __init__(self, open_store: Callable[[], Store], *, public_key: Any = None) -> None:
        self._open = open_store
        self._public_key = public_key
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
            store = self._open()
            try:
                with store.snapshot():
                    job.total = store.count()
                    verifier = Verifier(
                        checkpoints=store.checkpoints(),
                        public_key=self._public_key,
                        tree=store.stored_tree(),
                        head=store.head(),
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
