"""Pre-forked worker processes sharing one listening socket, and their supervisor.

Owns: binding the socket, checking the configuration once before forking
(a broken policy stops the server before it listens for long), forking
`workers` processes that each build their own evaluators and decision-log
connection, restarting a worker that dies, and stopping them all on SIGTERM
or SIGINT gracefully: each worker stops accepting, closes its idle
keep-alive connections, lets requests in flight finish (answered with
`Connection: close`), and only then closes its evaluators and its decision log.

Leaves out: HTTP and evaluation. Worker processes rather than threads: the
GIL lets only one thread evaluate at a time, and regorus engines cannot cross
threads anyway; each worker is an independent copy, so a crash takes down one
worker, never the server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trustgate.config import Config
from trustgate.gate import Gate
from trustgate.gate.recorder import Recorder, WriterProcess
from trustgate.model import Mode
from trustgate.server.connections import ConnectionLimits
from trustgate.server.http import AdmissionHTTPServer, HealthHTTPServer, TLSContexts, TLSSettings, WorkerState
from trustgate.server.logwatch import LogWatch
from trustgate.server.metrics import Metrics
from trustgate.server.pool import EvaluatorPool

if TYPE_CHECKING:
    from trustgate.gate.recorder import DecisionLog

DRAIN_MARGIN_SECONDS = 4.0  # beyond the admission deadline: reading the body, writing the answer
KILL_MARGIN_SECONDS = 3.0  # the supervisor's patience beyond a worker's drain, then SIGKILL
RESTART_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)  # seconds between restarts of a crash-looping worker


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config: Config
    tls: TLSSettings
    host: str = "0.0.0.0"
    port: int = 8443
    workers: int = 2
    evaluators: int = 4  # evaluator threads (one Gate each) per worker
    decision_log: Callable[[], DecisionLog | None] | None = None  # opened in each worker after fork
    # one decision-log writer process commits for every worker (records reach it over a Unix socket);
    # False: each worker commits in a thread of its own, waiting for the GIL after each database call
    log_writer: bool = True
    health_port: int | None = None  # plain HTTP /healthz, /readyz, /metrics; None: not served apart
    limits: ConnectionLimits = dataclasses.field(default_factory=ConnectionLimits)
    # who may delete protected kinds, replacing `admission.protectedDeletes.allowedActors`; None: those
    delete_actors: tuple[str, ...] | None = None

    @property
    def drain_seconds(self) -> float:
        """How long a stopping worker waits for requests in flight: each is held to the deadline."""
        return self.config.admission.deadline_seconds + DRAIN_MARGIN_SECONDS


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    # Every worker waits in select() on this socket and all wake for one connection: only one
    # accept() wins. Non-blocking, the others return at once instead of blocking in accept()
    # (where a stop request could not reach them).
    sock.setblocking(False)
    return sock


def serve(
    options: ServeOptions, *, sock: socket.socket | None = None, on_ready: Callable[[int], None] | None = None
) -> int:
    """Run the server until SIGTERM/SIGINT; returns the exit code.

    Raises:
        PolicyError, ConfigError: the configuration does not compile (checked before forking).
        OSError: the address cannot be bound; the TLS files cannot be read.
    """
    Gate(config=options.config).close()  # compile once here: a broken policy fails before any worker
    Recorder.record_options(options.config.decision_log)  # and a redaction path that does not parse
    TLSContexts(options.tls)  # unreadable or mismatched certificate files fail here too
    sock = sock or listen(options.host, options.port)
    health_sock = listen(options.host, options.health_port) if options.health_port is not None else None
    if on_ready is not None:
        on_ready(sock.getsockname()[1])
    metrics = Metrics(options.workers)
    writer = WriterProcess(options.decision_log) if options.log_writer and options.decision_log else None
    if writer is not None:  # before the workers: they connect to it on their first record
        writer.start()
        options = dataclasses.replace(options, decision_log=writer.client)
        print(f"trustgate serve: decision log writer process (pid {writer.pid})", file=sys.stderr, flush=True)
    writer_restarts = 0
    children: dict[int, int] = {}  # pid -> worker index
    stopping = threading.Event()
    restarts = [0] * options.workers

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = _worker(index, sock, health_sock, metrics, options)
            finally:
                os._exit(code)
        children[pid] = index

    stopping_deadline = [float("inf")]

    def stop(signum: int, frame: object) -> None:
        stopping_deadline[0] = time.monotonic() + options.drain_seconds + KILL_MARGIN_SECONDS
        stopping.set()
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(options.workers):
        start(index)
    health = f"; health on http://{options.host}:{health_sock.getsockname()[1]}" if health_sock else ""
    print(
        f"trustgate serve: listening on https://{options.host}:{sock.getsockname()[1]} "
        f"({options.workers} workers, {options.evaluators} evaluators each{health})",
        file=sys.stderr,
        flush=True,
    )
    while children:
        if stopping.is_set() and time.monotonic() > stopping_deadline[0]:
            for pid in list(children):  # a worker that ignores SIGTERM past its drain time
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)  # polled: a stop must not wait on a stuck worker
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.2)
            continue
        if writer is not None and pid == writer.pid:  # workers fail their records until it is back
            print(f"trustgate serve: the decision log writer (pid {pid}) exited; restarting", file=sys.stderr)
            metrics.restarts.value += 1
            if not stopping.is_set():
                time.sleep(RESTART_BACKOFF_SECONDS[min(writer_restarts, len(RESTART_BACKOFF_SECONDS) - 1)])
                writer_restarts += 1
                writer.start()
                print(f"trustgate serve: decision log writer process (pid {writer.pid})", file=sys.stderr)
            continue
        index = children.pop(pid, -1)
        if index < 0 or stopping.is_set():
            continue
        metrics.worker_gone(index)
        code = os.waitstatus_to_exitcode(status)
        print(f"trustgate serve: worker {index} (pid {pid}) exited with {code}; restarting", file=sys.stderr)
        metrics.restarts.value += 1
        time.sleep(RESTART_BACKOFF_SECONDS[min(restarts[index], len(RESTART_BACKOFF_SECONDS) - 1)])
        restarts[index] += 1
        if not stopping.is_set():
            start(index)
    if writer is not None:  # after the workers: it commits what they sent while draining
        writer.stop()
    sock.close()
    if health_sock is not None:
        health_sock.close()
    return 0


def _worker(
    index: int,
    sock: socket.socket,
    health_sock: socket.socket | None,
    metrics: Metrics,
    options: ServeOptions,
) -> int:
    metrics.bind(index)
    config = options.config
    # Registry waits fit inside the deadline, so an evaluator stuck on a registry is free again
    # soon after its request was answered by the failure policy; one registry may hold all
    # evaluators but one (its bulkhead), and one more verification there does not wait for a slot
    # (`queue_seconds` 0: it is answered at once, from a stale result or "unavailable"): waiting, it
    # would hold that last evaluator too, and every policy-only request would queue behind it
    # (bench/slowloris.py with 8 hung-registry clients: p99 975 ms, the 1 s queue wait).
    registries = dataclasses.replace(
        config.images.registries.within(config.admission.deadline_seconds).sharing(options.evaluators),
        queue_seconds=0.0,
    )
    config = dataclasses.replace(config, images=dataclasses.replace(config.images, registries=registries))
    log = options.decision_log() if options.decision_log is not None else None
    cache = Gate.shared_image_cache(config)  # one per worker, shared by its evaluators

    def build() -> Gate:
        return Gate(config=config, image_cache=cache, decision_log=log)

    recorder = Recorder(log, config.decision_log) if log is not None else None
    pool = EvaluatorPool(build, size=options.evaluators, recorder=recorder)
    fail_closed = config.decision_log.fail_closed(Mode(config.mode))
    state = WorkerState(
        config.admission,
        pool,
        metrics,
        TLSContexts(options.tls),
        log,
        recorder,
        mode=Mode(config.mode),
        delete_actors=options.delete_actors,
        admission_policies=bool(config.admission_policies),
        subresources=bool(config.admission_policies or config.gatekeeper.paths),
        limits=options.limits,
        log_fail_closed=fail_closed,
    )
    state.budget.listener = metrics.set_reserved  # the worker's own slice, under the budget's lock
    watch = None
    if log is not None:
        watch = LogWatch(log, metrics, fail_closed=fail_closed, label=f"worker {index}")
        watch.start()
    server = AdmissionHTTPServer(sock, state)
    if health_sock is not None:
        health_server = HealthHTTPServer(health_sock, state)
        threading.Thread(target=health_server.serve_forever, args=(0.5,), daemon=True).start()

    def ready_when_compiled() -> None:
        pool.wait_ready(600)
        # What start-up built lives as long as the worker: keep the collector from scanning it again
        # and again (full collections over compiled schemas cost milliseconds of p99).
        gc.freeze()
        metrics.set_ready(pool.ready)
        if pool.failed:
            print(f"trustgate serve: worker {index}: {pool.failed}", file=sys.stderr, flush=True)

    threading.Thread(target=ready_when_compiled, daemon=True).start()

    def stop(signum: int, frame: object) -> None:
        state.draining = True  # answers from now on say `Connection: close`; /readyz says 503
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    parent = os.getppid()

    def orphaned() -> None:  # the supervisor was killed: nobody would restart or stop this worker
        while os.getppid() == parent:
            time.sleep(1.0)
        state.draining = True
        server.shutdown()

    threading.Thread(target=orphaned, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.5)
        # Stopped accepting: idle connections are closed, requests in flight finish (each within its
        # deadline), and only then do the evaluators and the decision log close.
        state.draining = True
        if not server.drain(options.drain_seconds):
            print(f"trustgate serve: worker {index}: requests still open after the drain", file=sys.stderr)
        end = time.monotonic() + 1.0
        while pool.busy and time.monotonic() < end:  # an evaluation whose answer was already given
            time.sleep(0.05)
    finally:
        pool.close()
        if log is not None:
            log.close()
        if watch is not None:  # after the log's last commit: its failures are reported too
            watch.stop()
            watch.tick(final=True)
    return 0
