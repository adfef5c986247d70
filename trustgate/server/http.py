"""The HTTPS endpoints of one worker process: /validate, /healthz, /readyz, /metrics.

Owns: TLS (1.2 and later, the certificate reloaded when its files change,
client certificates checked when a CA is given), reading requests within
limits (3 MiB bodies, per-read and whole-request time limits, a cap on open
connections), writing each response in one send, and holding every
admission request to its deadline. Leaves out: what a decision is
(`admission`, the gate) and forking workers (`workers`).

Every response is written with one `sendall` of headers and body: two sends
on a keep-alive connection meet Nagle's algorithm and the peer's delayed ACK
and stall about 40 ms each.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustgate.config import AdmissionSettings
from trustgate.server import admission
from trustgate.server.metrics import Metrics
from trustgate.server.pool import EvaluatorPool, Job, failure_decision, record_failure

if TYPE_CHECKING:
    from trustgate.decisions.log import DecisionLog

READ_TIMEOUT_SECONDS = 10.0  # seconds per read; a client that stalls longer is dropped
REQUEST_TIMEOUT_SECONDS = 15.0  # seconds for a whole request (headers and body) once it started
IDLE_TIMEOUT_SECONDS = 90.0  # seconds a keep-alive connection may idle (the API server reuses them)
MAX_CONNECTIONS = 512  # open connections per worker; beyond, new ones are closed at once
HANDSHAKE_TIMEOUT_SECONDS = 2.0  # seconds per read during the TLS handshake; a real client needs milliseconds
BUSY_IDLE_TIMEOUT_SECONDS = 1.0  # idle keep-alive allowance once 3/4 of the connections are taken
CERT_CHECK_SECONDS = 2.0  # seconds between checks of the certificate files' modification times


@dataclass(frozen=True, slots=True)
class TLSSettings:
    cert: Path
    key: Path
    client_ca: Path | None = None  # set: clients must present a certificate it signed


class TLSContexts:
    """The current server SSLContext, rebuilt when the certificate or key files change."""

    def __init__(self, settings: TLSSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._stamp = self._files_stamp()
        self._context = self._build()
        self._checked = time.monotonic()
        self.reloads = 0
        self.last_error = ""

    def _files_stamp(self) -> tuple[float, ...]:
        paths = [self.settings.cert, self.settings.key]
        if self.settings.client_ca is not None:
            paths.append(self.settings.client_ca)
        stamps: list[float] = []
        for path in paths:
            try:
                st = path.stat()
            except OSError:
                stamps.append(-1.0)
                continue
            stamps += [st.st_mtime, float(st.st_size), float(st.st_ino)]
        return tuple(stamps)

    def _build(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.settings.cert), str(self.settings.key))
        if self.settings.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self.settings.client_ca))
        context.set_alpn_protocols(["http/1.1"])
        return context

    def current(self) -> ssl.SSLContext:
        """The context for a new connection; a changed certificate is loaded first."""
        now = time.monotonic()
        if now - self._checked < CERT_CHECK_SECONDS:
            return self._context
        with self._lock:
            self._checked = now
            stamp = self._files_stamp()
            if stamp != self._stamp:
                try:
                    self._context = self._build()
                    self._stamp = stamp
                    self.reloads += 1
                    self.last_error = ""
                except (OSError, ssl.SSLError) as e:  # half-written files: keep serving the old pair
                    self.last_error = f"certificate reload failed, still serving the previous one: {e}"
                    print(f"trustgate serve: {self.last_error}", file=sys.stderr)
            return self._context


@dataclass(slots=True)
class WorkerState:
    """What the handlers of one worker share."""

    settings: AdmissionSettings
    pool: EvaluatorPool
    metrics: Metrics
    tls: TLSContexts
    decision_log: DecisionLog | None = None


class AdmissionHTTPServer(ThreadingHTTPServer):
    """A threading server on an already listening socket; TLS is set up in each connection's thread."""

    daemon_threads = True
    request_queue_size = 512

    def __init__(self, sock: socket.socket, state: WorkerState) -> None:
        super().__init__(sock.getsockname()[:2], Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.state = state
        self._open = 0
        self._open_lock = threading.Lock()

    @property
    def open_connections(self) -> int:
        return self._open

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            if self._open >= MAX_CONNECTIONS:
                self.shutdown_request(request)
                return
            self._open += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(HANDSHAKE_TIMEOUT_SECONDS)  # a silent peer must not hold a slot
            try:
                tls = self.state.tls.current().wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):  # a failed handshake (no client cert, plain HTTP, a scanner)
                self.shutdown_request(request)
                return
            try:
                self.finish_request(tls, client_address)
            except (OSError, ssl.SSLError):
                pass  # the client went away mid-request
            finally:
                self.shutdown_request(tls)
        finally:
            with self._open_lock:
                self._open -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:  # pragma: no cover - logged only
        print(f"trustgate serve: error on a connection from {client_address[0]}", file=sys.stderr)


class Handler(BaseHTTPRequestHandler):
    """One connection: keep-alive HTTP/1.1, one response per request, written in one send."""

    protocol_version = "HTTP/1.1"
    server: AdmissionHTTPServer
    server_version = "trustgate"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # access logs are the decision log and the metrics

    def handle_one_request(self) -> None:
        # Idle keep-alive connections may wait longer than an active read, unless connections run
        # short: then idle ones are shed quickly, so they cannot lock the API server out.
        # A new connection gets a read's allowance for its first request, not an idle one's.
        crowded = self.server.open_connections >= MAX_CONNECTIONS * 3 // 4
        if crowded:
            idle = BUSY_IDLE_TIMEOUT_SECONDS
        elif getattr(self, "_served", 0) == 0:
            idle = READ_TIMEOUT_SECONDS
        else:
            idle = IDLE_TIMEOUT_SECONDS
        self.connection.settimeout(idle)
        try:
            first = self.rfile.peek(1) if hasattr(self.rfile, "peek") else b"x"
        except (OSError, ssl.SSLError):
            self.close_connection = True
            return
        if not first:
            self.close_connection = True
            return
        self.connection.settimeout(READ_TIMEOUT_SECONDS)
        self._started = time.monotonic()
        self._served = getattr(self, "_served", 0) + 1
        super().handle_one_request()

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        reason = self.responses.get(status, ("",))[0]
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            + ("Connection: close\r\n" if self.close_connection else "")
            + "\r\n"
        )
        self.wfile.write(head.encode("latin-1") + body)  # one send: see the module docstring

    def _send_json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, separators=(",", ":")).encode())

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The stdlib's own errors (bad request line, headers too long): JSON, one send.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._send_json(code, {"error": message or self.responses.get(code, ("",))[0]})

    def do_GET(self) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        elif path == "/readyz":
            ready = state.pool.ready and state.metrics.all_ready()
            why = "ready" if ready else state.pool.failed or "policies are still compiling"
            self._send(200 if ready else 503, (why + "\n").encode(), "text/plain")
        elif path == "/metrics":
            with contextlib.suppress(OSError):
                state.metrics.set_rss(_rss_bytes())
            self._send(200, state.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send_json(404, {"error": f"no such path {path!r}; POST AdmissionReviews to /validate"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in ("/validate", "/validate/fail-open"):
            self._discard_body()
            self._send_json(404, {"error": f"no such path {path!r}; POST AdmissionReviews to /validate"})
            return
        started = time.monotonic()
        state = self.server.state
        body = self._read_body()
        if body is None:
            state.metrics.observe("bad_request", time.monotonic() - started)
            return
        try:
            parsed = admission.parse(body)
        except admission.BadReview as e:
            state.metrics.observe("bad_request", time.monotonic() - started)
            self._send_json(400, {"error": str(e)})
            return
        if isinstance(parsed, dict):  # the uid is known, the request is not evaluable: a deny
            state.metrics.observe("denied", time.monotonic() - started)
            self._send_json(200, parsed)
            return
        response, verdict = self._decide(
            parsed, fail_open_path=path == "/validate/fail-open", started=started
        )
        self._send_json(200, response)
        state.metrics.observe(verdict, time.monotonic() - started)

    def _decide(self, review: admission.Review, *, fail_open_path: bool, started: float) -> tuple[Any, str]:
        state = self.server.state
        settings = state.settings
        plan = admission.plan(review, settings)
        if plan.response is not None:
            allowed = plan.response["response"]["allowed"]
            return plan.response, "skipped" if allowed and plan.skipped != "delete" else (
                "allowed" if allowed else "denied"
            )
        fail_open = (
            fail_open_path
            or settings.failure_policy == "open"
            or any(fnmatch.fnmatchcase(review.namespace, p) for p in settings.fail_open_namespaces)
        )
        context = _context(review)
        deadline = started + settings.deadline_seconds
        if not state.pool.ready:
            state.pool.wait_ready(max(0.0, deadline - time.monotonic()))
        if state.pool.failed:
            return self._failure(review, context, "its policies failed to compile", fail_open)
        job = state.pool.submit(Job(plan, context, deadline))
        if not job.done.wait(max(0.0, deadline - time.monotonic())) or (
            job.decision is None and "deadline" in job.error
        ):
            state.metrics.deadline_exceeded()
            checked, denials = job.abandon()
            if denials:  # the policies already deny: no failure policy makes that an allow
                reason = "denied by policy (" + "; ".join(denials[:10]) + "); images not verified within "
                reason += f"the {settings.deadline_seconds:g}s deadline"
                return self._failure(review, context, reason, False)
            if checked:
                reason = "schemas and policies pass, but the images were not verified within the "
                reason += f"{settings.deadline_seconds:g}s deadline (a registry did not answer in time)"
            else:
                reason = f"no decision within the {settings.deadline_seconds:g}s deadline (every evaluator "
                reason += "was busy, or the decision log did not answer in time)"
            return self._failure(review, context, reason, fail_open)
        if job.decision is None:
            return self._failure(review, context, job.error or "evaluation failed", fail_open)
        decision = job.decision
        if decision.images:
            state.metrics.images(
                [i.cache for i in decision.images],
                sum(1 for i in decision.images if i.status == "unverifiable"),
            )
        if decision.record_error:  # the log is closed and could not record: the request fails
            return self._failure(
                review,
                None,
                f"the decision could not be recorded: {decision.record_error}",
                False,
                record=False,
            )
        response = admission.respond(review, decision, fail_open=fail_open)
        allowed = response["response"]["allowed"]
        warned = allowed and bool(response["response"].get("warnings"))
        return response, "denied" if not allowed else "warned" if warned else "allowed"

    def _failure(
        self, review: admission.Review, context: Any, reason: str, fail_open: bool, *, record: bool = True
    ) -> tuple[Any, str]:
        state = self.server.state
        if record and state.decision_log is not None:
            decision = failure_decision(
                review.label, reason, fail_open=fail_open, revision=state.pool.policy_revision
            )
            _, error = record_failure(state.decision_log, decision, context)
            if error:
                reason += f" (and it was not recorded: {error})"
        response = admission.failure(review, reason=reason, fail_open=fail_open)
        return response, "failure_open" if fail_open else "failure_closed"

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 400/411/413 (the connection is then closed)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._send_json(411, {"error": "chunked bodies are not accepted; send Content-Length"})
            return None
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw) if raw is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send_json(411, {"error": "a Content-Length header is required"})
            return None
        if length > admission.MAX_BODY_BYTES:
            self.close_connection = True
            self._send_json(
                413,
                {"error": f"request body is {length} bytes; the limit is {admission.MAX_BODY_BYTES} (3 MiB)"},
            )
            return None
        chunks: list[bytes] = []
        remaining = length
        limit = self._started + REQUEST_TIMEOUT_SECONDS
        try:
            while remaining > 0:
                if time.monotonic() > limit:
                    raise TimeoutError
                chunk = self.rfile.read1(min(remaining, 65536)) if hasattr(self.rfile, "read1") else b""
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        except (TimeoutError, OSError):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send_json(408, {"error": "the request body did not arrive in time"})
            return None
        if remaining > 0:
            self.close_connection = True
            return None
        return b"".join(chunks)

    def _discard_body(self) -> None:
        self.close_connection = True


def _context(review: admission.Review) -> Any:
    from trustgate.decisions.record import Actor, DecisionContext

    return DecisionContext(
        actor=Actor(user=dict(review.user) if review.user else None),
        operation=review.operation,
        uid=review.uid,
        input_hash=review.input_hash,
    )


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm", "rb") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")
