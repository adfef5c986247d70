"""`LogWatch`: decision-log problems become metrics and one line per interval, never one per request."""

from __future__ import annotations

import io
from typing import Any

from trustgate.errors import DecisionLogError
from trustgate.server.logwatch import LogWatch
from trustgate.server.metrics import Metrics


class FakeLog:
    """The counters and calls of `DecisionLog` that the watch reads."""

    def __init__(self) -> None:
        self.appended = 0
        self.commits = 0
        self.write_failures = 0
        self.checkpoints_refused = 0
        self.publish_failures = 0
        self.write_error: DecisionLogError | None = None
        self.problems: list[DecisionLogError] = []
        self.probes = 0
        self.writable_on_probe = False

    def take_problems(self) -> list[DecisionLogError]:
        out, self.problems = self.problems, []
        return out

    def probe(self, *, timeout: float | None = None) -> DecisionLogError | None:
        self.probes += 1
        if self.writable_on_probe:
            self.write_error = None
        return self.write_error


def _watch(log: FakeLog, *, fail_closed: bool = True) -> tuple[LogWatch, Metrics, io.StringIO]:
    metrics = Metrics(1)
    metrics.bind(0)
    out = io.StringIO()
    fake: Any = log
    return LogWatch(fake, metrics, fail_closed=fail_closed, label="worker 0", out=out), metrics, out


def _value(metrics: Metrics, name: str) -> str:
    return next(line.split()[-1] for line in metrics.render().splitlines() if line.startswith(name + " "))


def test_failures_are_counted_and_reported_once_per_interval() -> None:
    log = FakeLog()
    watch, metrics, out = _watch(log, fail_closed=False)
    log.write_error = DecisionLogError("the disk is full", where="sqlite:///d.db")
    for _ in range(5):  # five requests fail between ticks, and again, and again
        log.write_failures += 5
        watch.tick()
    assert _value(metrics, "trustgate_decision_log_write_failures_total") == "25"
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "5 decisions could not be recorded" in lines[0] and "the disk is full" in lines[0]
    assert "failure policy open" in lines[0]
    watch.tick(final=True)  # what was held back is reported at the end
    assert "20 decisions" in out.getvalue().splitlines()[-1]


def test_a_log_that_is_down_is_flagged_probed_and_back_in_service() -> None:
    log = FakeLog()
    watch, metrics, out = _watch(log)
    log.write_error = DecisionLogError("cannot open the decision log file")
    log.write_failures = 1
    watch.tick()
    assert "cannot open the decision log file" in metrics.log_down()
    assert "failure policy closed" in out.getvalue()
    watch._last_probe = 0.0  # the probe interval passed
    watch.tick()
    assert log.probes == 1 and metrics.log_down()
    log.writable_on_probe = True
    watch._last_probe = 0.0
    watch.tick()
    assert not metrics.log_down()
    assert "can be written again" in out.getvalue()
    assert _value(metrics, "trustgate_decision_log_unwritable_workers") == "0"


def test_checkpoint_problems_are_logged_and_counted() -> None:
    log = FakeLog()
    watch, metrics, out = _watch(log)
    log.checkpoints_refused = 1
    log.publish_failures = 2
    log.problems = [DecisionLogError("refusing to sign a checkpoint of 9 records")]
    log.appended, log.commits = 40, 3
    watch.tick()
    assert _value(metrics, "trustgate_decision_log_checkpoints_refused_total") == "1"
    assert _value(metrics, "trustgate_decision_log_publish_failures_total") == "2"
    assert _value(metrics, "trustgate_decision_log_records_total") == "40"
    assert _value(metrics, "trustgate_decision_log_commits_total") == "3"
    assert "refusing to sign a checkpoint of 9 records" in out.getvalue()
    assert not metrics.log_down()
