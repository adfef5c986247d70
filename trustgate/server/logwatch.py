"""Watching one worker's decision log: nothing it fails to do goes unnoticed.

Owns: turning the log's counters into metrics (records not written,
checkpoints refused, checkpoints not published), one stderr line per
interval with the reason for each kind of problem (never one per request:
a log that is down would otherwise flood the output), the worker's "log is
down" flag that `/readyz` reads, and probing a log that is down, so a worker
taken out of service by an unwritable log comes back by itself once the log
can be written again (an unready pod gets no requests to try with).

Leaves out: what a failed record does to the request (the handler applies
the decision log's failure policy) and HTTP.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

from trustgate.server.metrics import Metrics

if TYPE_CHECKING:
    from trustgate.gate.recorder import DecisionLog

REPORT_SECONDS = 10.0  # seconds between two lines about the same kind of problem
TICK_SECONDS = 0.25  # seconds between looks at the log's counters
PROBE_SECONDS = 2.0  # seconds between probes of a log that cannot be written
PROBE_TIMEOUT_SECONDS = 5.0  # seconds a probe may wait for the writer's turn


class LogWatch:
    """Reports one worker's decision-log problems; `tick()` once in a while, or `start()` a thread.

    Args:
        log: the worker's decision log.
        metrics: the shared metrics, bound to this worker.
        fail_closed: the decision log's failure policy is closed (a decision not recorded fails).
        label: how lines name this worker ("worker 0").
        out: where the lines go.
    """

    def __init__(
        self,
        log: DecisionLog,
        metrics: Metrics,
        *,
        fail_closed: bool,
        label: str = "",
        out: TextIO | None = None,
        report_seconds: float = REPORT_SECONDS,
    ) -> None:
        self.log = log
        self.metrics = metrics
        self.fail_closed = fail_closed
        self.label = label
        self.out = out
        self.report_seconds = report_seconds
        self._seen = (
            0,
            0,
            0,
            0,
            0,
        )  # records, commits, write failures, checkpoints refused, publish failures
        self._unreported_failures = 0
        self._last_line: dict[str, float] = {}  # kind of problem -> monotonic time of its last line
        self._held: dict[str, tuple[int, str]] = {}  # kind -> (count since its last line, newest reason)
        self._last_probe = 0.0
        # A log this gate must not start (`DecisionLog.create` False: it relies on what the log
        # holds) is probed at once: one that is not there turns the worker unready before any
        # decision fails, and ready again once `trustgate log init` made it.
        self._probe_first = not getattr(log, "create", True)
        self._was_down = False
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="trustgate-log-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.tick()
        self.tick(final=True)  # what happened while the worker drained is still reported

    def tick(self, *, final: bool = False) -> None:
        """Count what happened since the last tick, probe a log that is down, report what is due."""
        with self._lock:
            now = time.monotonic()
            log = self.log
            counts = (
                log.appended,
                log.commits,
                log.write_failures,
                log.checkpoints_refused,
                log.publish_failures,
            )
            records, commits, failures, refused, published = (
                c - s for c, s in zip(counts, self._seen, strict=True)
            )
            self._seen = counts
            if any((records, commits, failures, refused, published)):
                self.metrics.decision_log(
                    records=records,
                    commits=commits,
                    failures=failures,
                    refused=refused,
                    publish_failures=published,
                )
            error = log.write_error
            if error is not None and failures:
                self._hold("write", failures, error.diagnostics())
            for problem in log.take_problems():
                self._hold("checkpoint", 1, problem.diagnostics())
            due = error is not None and not failures and now - self._last_probe >= PROBE_SECONDS
            if (due or self._probe_first) and not final:
                self._probe_first = False
                self._last_probe = now
                error = log.probe(timeout=PROBE_TIMEOUT_SECONDS)
                if error is not None and not self._was_down:  # why it is down, once, not per probe
                    self._hold("probe", 1, error.diagnostics())
            down = error is not None
            self.metrics.set_log_down(down, error.diagnostics() if error is not None else "")
            if self._was_down and not down:
                self._line("the decision log can be written again")
            self._was_down = down
            for kind in list(self._held):
                if final or now - self._last_line.get(kind, -1e9) >= self.report_seconds:
                    count, reason = self._held.pop(kind)
                    self._last_line[kind] = now
                    if kind == "write":
                        self._line(self._failure_line(count, reason))
                    elif kind == "probe":
                        self._line(f"the decision log cannot be written ({self._policy()}): {reason}")
                    else:
                        more = f" (and {count - 1} more since the last line)" if count > 1 else ""
                        self._line(reason + more)

    def _policy(self) -> str:
        """What happens to a decision that cannot be recorded."""
        return (
            "failure policy closed: denied, and /readyz says 503 until it can be written"
            if self.fail_closed
            else "failure policy open: answered without a record"
        )

    def _failure_line(self, count: int, reason: str) -> str:
        what = "1 decision" if count == 1 else f"{count} decisions"
        return f"{what} could not be recorded in the decision log ({self._policy()}): {reason}"

    def _hold(self, kind: str, count: int, reason: str) -> None:
        held, _ = self._held.get(kind, (0, ""))
        self._held[kind] = (held + count, reason)

    def _line(self, text: str) -> None:
        where = f"{self.label}: " if self.label else ""
        print(f"trustgate serve: {where}{text}", file=self.out or sys.stderr, flush=True)

    def down(self) -> str:
        """Why this worker's log cannot be written now ("" when it can)."""
        error = self.log.write_error
        return error.diagnostics() if error is not None else ""
