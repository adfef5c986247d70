"""Prometheus metrics shared by every worker process, in the text exposition format 0.0.4.

Owns: counters and a latency histogram kept in one shared-memory array
created before the workers fork (each worker writes only its own slice, under
its own lock), and rendering the sum over all workers, so whichever worker
answers `/metrics` reports the whole server. Leaves out: HTTP.

prometheus_client's multiprocess mode does the same through one mmap file per
process in a directory named by an environment variable; a fixed set of
metrics in one array needs neither the directory (the container's root file
system is read-only) nor the dependency.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Sequence
from typing import Any

# failure_open: allowed without a decision by the open failure policy (deadline, unreachable registry),
# never counted as warned.
VERDICTS = ("allowed", "denied", "warned", "skipped", "failure_open", "failure_closed", "bad_request")
CACHE_RESULTS = ("hit", "miss", "stale")
# shed: given up for a newer one; refused: closed at once, no slot to give; over_budget: a request
# closed unanswered, its memory budget (bodies and their parse, `budget`) could not be had in time;
# shed_memory: given up for another's budget, a small body still arriving after `budget.SLOW_SECONDS`
# or a large one fallen behind its pace
CONNECTION_EVENTS = ("shed", "refused", "over_budget", "shed_memory")
# Why `GET /checkpoint` answered 503: rolled_back, every stored checkpoint is older than one this log
# signed or published (newer rows were deleted); unreadable, the log or a published checkpoint could
# not be read
CHECKPOINT_FAILURES = ("rolled_back", "unreadable")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds

_V = 0  # verdict counters
_C = _V + len(VERDICTS)  # image cache results
_REGISTRY_ERRORS = _C + len(CACHE_RESULTS)
_DEADLINE = _REGISTRY_ERRORS + 1
_HIST = _DEADLINE + 1  # cumulative buckets, then +Inf
_SUM = _HIST + len(BUCKETS) + 1
_COUNT = _SUM + 1
_READY = _COUNT + 1
_RSS = _READY + 1
_CONN = _RSS + 1
_LOG_FAILURES = _CONN + len(CONNECTION_EVENTS)  # records the decision log could not commit
_LOG_REFUSED = _LOG_FAILURES + 1  # checkpoints the writer refused to sign (ADR 9, item 7)
_LOG_PUBLISH = _LOG_REFUSED + 1  # checkpoints that could not be published
_LOG_DOWN = _LOG_PUBLISH + 1  # gauge: 1 while this worker's decision log cannot be written
_LOG_RECORDS = _LOG_DOWN + 1  # records committed
_LOG_COMMITS = _LOG_RECORDS + 1  # transactions that committed them (group commit: fewer)
_MEM = _LOG_COMMITS + 1  # gauge: bytes this worker's requests in flight reserve (`budget`)
_MEM_PEAK = _MEM + 1  # gauge: the most they ever reserved at once (since the worker started)
_CHECKPOINT = _MEM_PEAK + 1  # `GET /checkpoint` answered 503, by CHECKPOINT_FAILURES
_SLOTS = _CHECKPOINT + len(CHECKPOINT_FAILURES)
_REASON_BYTES = 512  # bytes of the reason kept per worker


class Metrics:
    """Shared metrics for `workers` processes; create before forking, then `bind(index)` in each."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._array: Any = multiprocessing.RawArray("d", workers * _SLOTS)
        self._base = 0
        self._lock = threading.Lock()
        self.restarts: Any = multiprocessing.RawValue("d", 0.0)
        # why each worker's decision log cannot be written (UTF-8, cut), for whichever worker answers /readyz
        self._reasons: Any = multiprocessing.RawArray("c", workers * _REASON_BYTES)

    def bind(self, index: int) -> None:
        """This process is worker `index`: it writes to its own slice from now on."""
        self._base = index * _SLOTS
        self._lock = threading.Lock()  # a lock held at fork time would stay held
        # Counters keep what the worker's previous process counted (Prometheus would read a drop
        # as a reset); only the gauges start again.
        self._array[self._base + _READY] = 0.0
        self._array[self._base + _RSS] = 0.0
        self._array[self._base + _LOG_DOWN] = 0.0
        self._array[self._base + _MEM] = 0.0
        self._array[self._base + _MEM_PEAK] = 0.0

    def observe(self, verdict: str, seconds: float) -> None:
        """Count one request with its verdict and latency."""
        a, b = self._array, self._base
        with self._lock:
            a[b + _V + VERDICTS.index(verdict)] += 1
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    a[b + _HIST + i] += 1
            a[b + _HIST + len(BUCKETS)] += 1
            a[b + _SUM] += seconds
            a[b + _COUNT] += 1

    def images(self, cache_results: Sequence[str], registry_errors: int) -> None:
        a, b = self._array, self._base
        with self._lock:
            for how in cache_results:
                if how in CACHE_RESULTS:
                    a[b + _C + CACHE_RESULTS.index(how)] += 1
            a[b + _REGISTRY_ERRORS] += registry_errors

    def connections(self, event: str, count: int) -> None:
        """Count connections shed (idle or slow, for a newer one) or refused (no slot could be freed)."""
        with self._lock:
            self._array[self._base + _CONN + CONNECTION_EVENTS.index(event)] += count

    def decision_log(
        self,
        *,
        records: int = 0,
        commits: int = 0,
        failures: int = 0,
        refused: int = 0,
        publish_failures: int = 0,
    ) -> None:
        """Count records committed, commits, records not written, checkpoints refused and unpublished."""
        a, b = self._array, self._base
        with self._lock:
            a[b + _LOG_RECORDS] += records
            a[b + _LOG_COMMITS] += commits
            a[b + _LOG_FAILURES] += failures
            a[b + _LOG_REFUSED] += refused
            a[b + _LOG_PUBLISH] += publish_failures

    def set_log_down(self, down: bool, reason: str = "") -> None:
        """Whether this worker cannot write the decision log now, and why."""
        index = self._base // _SLOTS
        data = reason.encode()[: _REASON_BYTES - 1] if down else b""
        start = index * _REASON_BYTES
        self._reasons[start : start + _REASON_BYTES] = data.ljust(_REASON_BYTES, b"\0")
        self._array[self._base + _LOG_DOWN] = 1.0 if down else 0.0

    def log_down(self) -> str:
        """Why a worker cannot write the decision log now ("" when every one can)."""
        for i in range(self.workers):
            if self._array[i * _SLOTS + _LOG_DOWN] == 1.0:
                raw = bytes(self._reasons[i * _REASON_BYTES : (i + 1) * _REASON_BYTES]).rstrip(b"\0")
                return raw.decode(errors="replace") or "a worker cannot write it"
        return ""

    def checkpoint_unavailable(self, reason: str) -> None:
        """Count one `GET /checkpoint` answered 503, and why (one of CHECKPOINT_FAILURES)."""
        with self._lock:
            self._array[self._base + _CHECKPOINT + CHECKPOINT_FAILURES.index(reason)] += 1

    def deadline_exceeded(self) -> None:
        with self._lock:
            self._array[self._base + _DEADLINE] += 1

    def worker_gone(self, index: int) -> None:
        """Worker `index` died (the supervisor's call): its gauges no longer stand for anything.

        Without this, /readyz said ready between a worker's death and its successor's `bind`, on
        the dead worker's word.
        """
        self._array[index * _SLOTS + _READY] = 0.0
        self._array[index * _SLOTS + _LOG_DOWN] = 0.0

    def set_ready(self, ready: bool) -> None:
        self._array[self._base + _READY] = 1.0 if ready else 0.0

    def set_reserved(self, used: int, peak: int) -> None:
        """What this worker's requests in flight reserve of its memory budget now, and the most ever."""
        self._array[self._base + _MEM] = float(used)
        self._array[self._base + _MEM_PEAK] = float(peak)

    def set_rss(self, rss_bytes: int) -> None:
        self._array[self._base + _RSS] = float(rss_bytes)

    def all_ready(self) -> bool:
        return all(self._array[i * _SLOTS + _READY] == 1.0 for i in range(self.workers))

    def _sum(self, slot: int) -> float:
        return float(sum(self._array[i * _SLOTS + slot] for i in range(self.workers)))

    def render(self) -> str:
        """The exposition text (Content-Type `text/plain; version=0.0.4`)."""
        out = [
            "# HELP trustgate_admission_requests_total Admission requests by verdict.",
            "# TYPE trustgate_admission_requests_total counter",
        ]
        out += [
            f'trustgate_admission_requests_total{{verdict="{v}"}} {_num(self._sum(_V + i))}'
            for i, v in enumerate(VERDICTS)
        ]
        out += [
            "# HELP trustgate_admission_duration_seconds Time from request read to response written.",
            "# TYPE trustgate_admission_duration_seconds histogram",
        ]
        out += [
            f'trustgate_admission_duration_seconds_bucket{{le="{bound}"}} {_num(self._sum(_HIST + i))}'
            for i, bound in enumerate(BUCKETS)
        ]
        out += [
            f'trustgate_admission_duration_seconds_bucket{{le="+Inf"}} '
            f"{_num(self._sum(_HIST + len(BUCKETS)))}",
            f"trustgate_admission_duration_seconds_sum {self._sum(_SUM)!r}",
            f"trustgate_admission_duration_seconds_count {_num(self._sum(_COUNT))}",
            "# HELP trustgate_image_cache_total Image verification results by cache outcome.",
            "# TYPE trustgate_image_cache_total counter",
        ]
        out += [
            f'trustgate_image_cache_total{{result="{r}"}} {_num(self._sum(_C + i))}'
            for i, r in enumerate(CACHE_RESULTS)
        ]
        out += [
            "# HELP trustgate_registry_errors_total Images that could not be verified: registry unreachable.",
            "# TYPE trustgate_registry_errors_total counter",
            f"trustgate_registry_errors_total {_num(self._sum(_REGISTRY_ERRORS))}",
            "# HELP trustgate_admission_deadline_exceeded_total Requests answered by the failure policy.",
            "# TYPE trustgate_admission_deadline_exceeded_total counter",
            f"trustgate_admission_deadline_exceeded_total {_num(self._sum(_DEADLINE))}",
            "# HELP trustgate_connections_total Connections shed (idle or slow, for a newer one), refused, "
            "closed over the memory budget, or shed as slow senders for another's memory budget.",
            "# TYPE trustgate_connections_total counter",
        ]
        out += [
            f'trustgate_connections_total{{event="{e}"}} {_num(self._sum(_CONN + i))}'
            for i, e in enumerate(CONNECTION_EVENTS)
        ]
        out += [
            "# HELP trustgate_decision_log_records_total Decisions recorded (committed, durable).",
            "# TYPE trustgate_decision_log_records_total counter",
            f"trustgate_decision_log_records_total {_num(self._sum(_LOG_RECORDS))}",
            "# HELP trustgate_decision_log_commits_total Transactions that recorded them (group commit).",
            "# TYPE trustgate_decision_log_commits_total counter",
            f"trustgate_decision_log_commits_total {_num(self._sum(_LOG_COMMITS))}",
            "# HELP trustgate_decision_log_write_failures_total Decisions that could not be recorded.",
            "# TYPE trustgate_decision_log_write_failures_total counter",
            f"trustgate_decision_log_write_failures_total {_num(self._sum(_LOG_FAILURES))}",
            "# HELP trustgate_decision_log_checkpoints_refused_total Checkpoints the writer refused to sign "
            "(the log is not consistent with a checkpoint it trusts).",
            "# TYPE trustgate_decision_log_checkpoints_refused_total counter",
            f"trustgate_decision_log_checkpoints_refused_total {_num(self._sum(_LOG_REFUSED))}",
            "# HELP trustgate_decision_log_publish_failures_total Signed checkpoints not published.",
            "# TYPE trustgate_decision_log_publish_failures_total counter",
            f"trustgate_decision_log_publish_failures_total {_num(self._sum(_LOG_PUBLISH))}",
            "# HELP trustgate_decision_log_checkpoint_unavailable_total GET /checkpoint answered 503, by "
            "reason (rolled_back: newer checkpoints were deleted; unreadable: the log could not be read).",
            "# TYPE trustgate_decision_log_checkpoint_unavailable_total counter",
            *(
                f'trustgate_decision_log_checkpoint_unavailable_total{{reason="{r}"}} '
                f"{_num(self._sum(_CHECKPOINT + i))}"
                for i, r in enumerate(CHECKPOINT_FAILURES)
            ),
            "# HELP trustgate_decision_log_unwritable_workers Workers that cannot write the decision log.",
            "# TYPE trustgate_decision_log_unwritable_workers gauge",
            f"trustgate_decision_log_unwritable_workers {_num(self._sum(_LOG_DOWN))}",
        ]
        out += [
            "# HELP trustgate_workers_ready Worker processes whose policies are compiled.",
            "# TYPE trustgate_workers_ready gauge",
            f"trustgate_workers_ready {_num(self._sum(_READY))}",
            "# HELP trustgate_worker_restarts_total Worker processes restarted after they died.",
            "# TYPE trustgate_worker_restarts_total counter",
            f"trustgate_worker_restarts_total {_num(float(self.restarts.value))}",
            "# HELP trustgate_worker_resident_memory_bytes Resident memory of each worker process.",
            "# TYPE trustgate_worker_resident_memory_bytes gauge",
        ]
        out += [
            f'trustgate_worker_resident_memory_bytes{{worker="{i}"}} {_num(self._array[i * _SLOTS + _RSS])}'
            for i in range(self.workers)
        ]
        out += [
            "# HELP trustgate_request_memory_reserved_bytes Memory budget each worker's requests in flight "
            "hold (bodies and their parse).",
            "# TYPE trustgate_request_memory_reserved_bytes gauge",
        ]
        out += [
            f'trustgate_request_memory_reserved_bytes{{worker="{i}"}} {_num(self._array[i * _SLOTS + _MEM])}'
            for i in range(self.workers)
        ]
        out += [
            "# HELP trustgate_request_memory_reserved_peak_bytes The most each worker's requests ever "
            "held of its memory budget at once.",
            "# TYPE trustgate_request_memory_reserved_peak_bytes gauge",
        ]
        out += [
            f'trustgate_request_memory_reserved_peak_bytes{{worker="{i}"}} '
            f"{_num(self._array[i * _SLOTS + _MEM_PEAK])}"
            for i in range(self.workers)
        ]
        return "\n".join(out) + "\n"


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
