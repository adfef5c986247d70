"""The HTTPS endpoints of one worker process: /validate, /healthz, /readyz, /metrics, /checkpoint.

Owns: TLS (1.2 and later with AEAD suites only, no session tickets, the certificate reloaded when
its files change, client certificates checked when a CA is given), reading
requests within limits (16 MiB bodies: an UPDATE's two objects as JSON; a per-worker memory budget
for bodies and their parse, see `budget`; deadlines for the handshake, the
headers as a whole and the body as a whole; a budget of connections per
client address, shedding idle and slow connections when slots run short, see
`connections`), writing each response in one send, holding every admission
request to its deadline, draining on shutdown (requests in flight finish and
are answered with `Connection: close`), and the plain-HTTP health port
(/healthz, /readyz, /metrics without a client certificate, for kubelet
probes and Prometheus), and `GET /checkpoint` on both ports (the decision
log's latest signed checkpoint, a C2SP signed note, for auditors and
witnesses). An admission answer waits until the decision's record is
durable; a record that cannot be written follows the decision log's
failure policy (closed: the request is denied and `/readyz` says 503 while
the log stays unwritable; open: the answer carries a warning), and is
counted and reported by `logwatch`. Leaves out: what a decision is and
what answers it (`evaluation`, `admission`, the gate) and forking workers
(`workers`).

Every response is written with one `sendall` of headers and body: two sends
on a keep-alive connection meet Nagle's algorithm and the peer's delayed ACK
and stall about 40 ms each.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import socket
import ssl
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import _SocketWriter  # type: ignore[attr-defined]  # the stdlib handlers' own writer
from typing import TYPE_CHECKING, Any

from trustgate.config import AdmissionSettings
from trustgate.errors import CheckpointRolledBackError, DecisionLogError
from trustgate.model import Mode
from trustgate.server import admission, evaluation
from trustgate.server.budget import MemoryBudget, Reservation, estimate
from trustgate.server.connections import Connection, ConnectionLimits, ConnectionTable, Phase
from trustgate.server.metrics import Metrics
from trustgate.server.pool import EvaluatorPool

if TYPE_CHECKING:
    from trustgate.gate.recorder import DecisionLog, Recorder

CERT_CHECK_SECONDS = 2.0  # seconds between checks of the certificate files' modification times
# TLS 1.2 suites with forward secrecy and AEAD only (no CBC, no RSA key exchange); TLS 1.3 has only AEAD.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS"
HEALTH_PATHS = ("/healthz", "/readyz", "/metrics", "/checkpoint")
HEALTH_READ_SECONDS = 5.0  # seconds for a whole request on the health port; kubelet and Prometheus are quick
HEALTH_MAX_CONNECTIONS = 32  # per worker on the health port
READ_CHUNK = 65536  # the most of a body read at once (the reader's buffer): what a reservation runs ahead


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
        context.set_ciphers(TLS12_CIPHERS)
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
        context.load_cert_chain(str(self.settings.cert), str(self.settings.key))
        if self.settings.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self.settings.client_ca))
        context.set_alpn_protocols(["http/1.1"])
        # No session tickets (TLS 1.3's two per handshake, TLS 1.2's): the API server does not resume
        # webhook sessions, and issuing them was a third of the CPU a new connection costs, the price
        # of every connection a slowloris opens again after it was shed (bench/slowloris.py).
        context.num_tickets = 0
        context.options |= ssl.OP_NO_TICKET
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
    decision_log: DecisionLog | None = None  # for GET /checkpoint
    recorder: Recorder | None = None  # records the decisions made without the gate
    mode: Mode = Mode.ENFORCE  # the configuration's mode: protected deletes follow it like any finding
    # may delete protected kinds (`serve --allow-delete-by`); None: the configuration's allowedActors
    delete_actors: tuple[str, ...] | None = None
    # admission policies are loaded: DELETE, CONNECT and subresources' writes are evaluated (they may
    # match them), not skipped
    admission_policies: bool = False
    # admission policies or Gatekeeper constraints are loaded: subresources' writes (a Scale, which a
    # constraint matches by its kind) are evaluated; None: as `admission_policies`
    subresources: bool | None = None
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    draining: bool = False  # stopping: /readyz says 503, responses say `Connection: close`
    # the decision log's failure policy (`decisionLog.failurePolicy` for the configured mode): closed,
    # a decision that cannot be recorded is denied, and /readyz says 503 while the log cannot be written
    log_fail_closed: bool = True
    # what requests in flight may hold in memory (bodies and their parse), reserved before a body is read
    budget: MemoryBudget = field(default_factory=MemoryBudget)


class _DeadlineReader(io.RawIOBase):
    """Reads from a socket, each read bounded by the read timeout and by the current phase's deadline."""

    def __init__(self, sock: socket.socket, read_seconds: float) -> None:
        super().__init__()
        self._sock = sock
        self._read_seconds = read_seconds
        self.deadline = math.inf  # time.monotonic() value; reads after it raise TimeoutError

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the deadline of this phase passed")
        self._sock.settimeout(min(self._read_seconds, remaining))
        return self._sock.recv_into(buffer)


def _shut(handle: Any) -> None:
    """Shut a connection down from another thread: its blocked read returns, its thread closes it.

    The plain socket's shutdown, not SSLSocket's (which drops the TLS object the owning thread uses).
    """
    if handle is not None:
        with contextlib.suppress(OSError, ValueError):
            socket.socket.shutdown(handle, socket.SHUT_RDWR)


class AdmissionHTTPServer(ThreadingHTTPServer):
    """A threading server on an already listening socket; TLS is set up in each connection's thread."""

    daemon_threads = True
    request_queue_size = 512

    def __init__(self, sock: socket.socket, state: WorkerState) -> None:
        super().__init__(sock.getsockname()[:2], Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.state = state
        self.connections = ConnectionTable(state.limits)
        self._local = threading.local()

    @property
    def open_connections(self) -> int:
        return len(self.connections)

    @property
    def current(self) -> Connection:
        """The connection the calling handler thread serves."""
        conn: Connection = self._local.conn
        return conn

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.state.draining:
            self.shutdown_request(request)
            return
        decided = self.connections.admit(str(client_address[0]), time.monotonic())
        for victim in decided.shed:
            _shut(victim.handle)
        if decided.shed:
            self.state.metrics.connections("shed", len(decided.shed))
        if decided.connection is None:
            self.state.metrics.connections("refused", 1)
            self.shutdown_request(request)
            return
        decided.connection.handle = request
        try:
            threading.Thread(
                target=self.process_request_thread,
                args=(request, client_address, decided.connection),
                daemon=True,
            ).start()
        except RuntimeError:  # no thread left: give the slot back
            self.connections.release(decided.connection)
            self.shutdown_request(request)

    def process_request_thread(
        self, request: Any, client_address: Any, conn: Connection | None = None
    ) -> None:
        assert conn is not None
        limits = self.state.limits
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(limits.handshake_seconds)  # the whole handshake: see ssl's do_handshake
            try:
                tls = self.state.tls.current().wrap_socket(
                    request, server_side=True, do_handshake_on_connect=False
                )
            except (OSError, ssl.SSLError):
                self.shutdown_request(request)
                return
            conn.handle = tls
            try:
                if conn.closing:  # shed before the handshake started
                    raise ConnectionAbortedError
                tls.do_handshake()
            except (OSError, ssl.SSLError):  # a failed handshake (no client cert, plain HTTP, a scanner)
                self.shutdown_request(tls)
                return
            self._local.conn = conn
            try:
                self.finish_request(tls, client_address)
            except (OSError, ssl.SSLError, ValueError):
                pass  # the client went away mid-request, or the connection was shed
            except Exception:
                self.handle_error(tls, client_address)  # logged; the worker goes on serving
            finally:
                self.shutdown_request(tls)
        finally:
            self.connections.release(conn)

    def drain(self, seconds: float) -> bool:
        """Close idle connections and wait up to `seconds` for those in flight; True when none is left."""
        end = time.monotonic() + seconds
        while True:
            for conn in self.connections.drain():
                _shut(conn.handle)
            if not len(self.connections):
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.05)

    def handle_error(self, request: Any, client_address: Any) -> None:  # pragma: no cover - logged only
        print(f"trustgate serve: error on a connection from {client_address[0]}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)


class Handler(BaseHTTPRequestHandler):
    """One connection: keep-alive HTTP/1.1, one response per request, written in one send."""

    protocol_version = "HTTP/1.1"
    server: AdmissionHTTPServer
    server_version = "trustgate"
    sys_version = ""
    _served = 0
    _reader: _DeadlineReader
    rfile: io.BufferedReader  # ours, with peek and read1 (see setup)

    def setup(self) -> None:
        self.connection = self.request
        limits = self.server.state.limits
        self._reader = _DeadlineReader(self.connection, limits.read_seconds)
        self.rfile = io.BufferedReader(self._reader, 65536)
        self.wfile = _SocketWriter(self.connection)  # sendall: one response, one send

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.wfile.close()
        with contextlib.suppress(OSError, ValueError):
            self.rfile.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # access logs are the decision log and the metrics

    def _enter(self, phase: Phase, seconds: float) -> bool:
        """Start a phase with its deadline; False when the connection is shed or drained."""
        now = time.monotonic()
        if not self.server.connections.enter(self.server.current, phase, now):
            self.close_connection = True
            return False
        self._reader.deadline = now + seconds
        return True

    def handle_one_request(self) -> None:
        limits = self.server.state.limits
        # A new connection gets a read's allowance for its first request; a keep-alive one may idle
        # longer (the API server reuses them). When slots run short, idle ones are shed first.
        idle = limits.idle_seconds if self._served else limits.first_request_seconds
        if not self._enter(Phase.IDLE, idle):
            return
        try:
            first = self.rfile.peek(1)
        except (OSError, ssl.SSLError, ValueError):
            self.close_connection = True
            return
        if not first:
            self.close_connection = True
            return
        # The request line and headers as a whole: a client sending a byte now and then is cut off.
        if not self._enter(Phase.HEADERS, limits.header_seconds):
            return
        self._served += 1
        super().handle_one_request()

    def _busy(self) -> None:
        self._enter(Phase.BUSY, math.inf)  # shed never picks a busy connection, so this cannot fail
        self.connection.settimeout(self.server.state.limits.write_seconds)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        if self.server.state.draining:
            self.close_connection = True  # a stopping worker finishes this request, then closes
        reason = self.responses.get(status, ("",))[0]
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            + extra
            + ("Connection: close\r\n" if self.close_connection else "")
            + "\r\n"
        )
        self.wfile.write(head.encode("latin-1") + body)  # one send: see the module docstring

    def _send_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(value, separators=(",", ":")).encode(), headers=headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The stdlib's own errors (bad request line, headers too long, unknown method): JSON, one send.
        self.close_connection = True
        with contextlib.suppress(OSError, ValueError):
            self._send_json(code, {"error": message or self.responses.get(code, ("",))[0]})

    def _not_allowed(self) -> None:
        """405 with the methods the path has (RFC 9110, 15.5.6): known methods on a path without them."""
        self._busy()
        path = self.path.split("?", 1)[0]
        allow = "GET" if path in HEALTH_PATHS else "POST"
        self.close_connection = True  # any body is left unread
        self._send_json(
            405, {"error": f"{self.command} is not allowed on {path}; use {allow}"}, {"Allow": allow}
        )

    do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = do_HEAD = _not_allowed

    def do_GET(self) -> None:
        self._busy()
        path = self.path.split("?", 1)[0]
        if path in HEALTH_PATHS:
            status, body, content_type = health(self.server.state, path)
            self._send(status, body, content_type)
        else:
            self._send_json(404, {"error": f"no such path {path!r}; POST AdmissionReviews to /validate"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in ("/validate", "/validate/fail-open"):
            self._discard_body()
            self._busy()
            if path in HEALTH_PATHS:
                self._send_json(405, {"error": f"POST is not allowed on {path}; use GET"}, {"Allow": "GET"})
                return
            self._send_json(404, {"error": f"no such path {path!r}; POST AdmissionReviews to /validate"})
            return
        started = time.monotonic()
        state = self.server.state
        reservation: Reservation | None = None
        try:
            body, reservation = self._read_body()
            if body is None:
                state.metrics.observe("bad_request", time.monotonic() - started)
                return
            assert reservation is not None  # a body is read only with its reservation
            # parsing it may cost more than the reservation: a small body sheds slow ones for it too
            if not state.budget.adjust(reservation, estimate(body), shed_slow=not reservation.large):
                self._over_budget()
                return
            try:
                parsed = admission.parse(body)
            except admission.BadReviewError as e:
                state.metrics.observe("bad_request", time.monotonic() - started)
                self._send_json(400, {"error": str(e)})
                return
            if isinstance(parsed, dict):  # the uid is known, the request is not evaluable: a deny
                state.metrics.observe("denied", time.monotonic() - started)
                self._send_json(200, parsed)
                return
            response, verdict = evaluation.decide(
                state, parsed, fail_open_path=path == "/validate/fail-open", started=started
            )
            self._send_json(200, response)
            state.metrics.observe(verdict, time.monotonic() - started)
        finally:
            # every path: answered, refused, the client gone, a timeout, an error (the body and its
            # parse are dropped with this frame)
            state.budget.release(reservation)

    def _over_budget(self) -> None:
        """No memory for this request: close the connection unanswered, as a shed one is (ADR 7).

        The API server sees a failed call and applies the webhook's failure policy: denied with
        `failurePolicy: Fail`, admitted unevaluated with `Ignore` (`/validate/fail-open`).
        """
        self.close_connection = True
        self.server.state.metrics.connections("over_budget", 1)

    def _read_body(self) -> tuple[bytearray | None, Reservation | None]:
        """The request body and its memory reservation; no body after answering 400/408/411/413 or
        refusing for memory (the connection is then closed). The caller releases the reservation."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._send_json(411, {"error": "chunked bodies are not accepted; send Content-Length"})
            return None, None
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw) if raw is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send_json(411, {"error": "a Content-Length header is required"})
            return None, None
        if length > admission.MAX_BODY_BYTES:
            self.close_connection = True
            self._send_json(
                413,
                {
                    "error": f"request body is {length} bytes; the limit is {admission.MAX_BODY_BYTES} "
                    f"({admission.MAX_BODY_TEXT})"
                },
            )
            return None, None
        state = self.server.state
        if not self._enter(Phase.BODY, state.limits.body_seconds):  # the whole body
            return None, None
        # Memory before bytes: a request waits for the budget of its first bytes within its body
        # deadline (in the body phase, so a waiter is shed like a slow sender when slots run short),
        # then is refused; a claim it never sends holds no more than that (see `budget`).
        conn = self.server.current

        def shed() -> None:  # a slow body given up for another's budget (see `budget`): under its lock
            _shut(conn.handle)
            state.metrics.connections("shed_memory", 1)

        reservation = state.budget.reserve(length, self._reader.deadline, shed, conn.address)
        if reservation is None:
            self._over_budget()
            return None, None
        body = bytearray()  # grown as bytes arrive, never to a claimed length first
        got = 0
        try:
            while got < length:
                covered = state.budget.covered(reservation)
                if got >= covered and reservation.large:  # its first bytes came: its whole body,
                    # waiting its turn while it holds nothing (large bodies are read one at a time)
                    covered = length
                    if not state.budget.claim(reservation, length, self._reader.deadline):
                        self._over_budget()
                        return None, reservation
                elif got >= covered:  # all it covers has arrived: cover the next chunk too, taken
                    # without waiting (this request holds budget); not free, refused as over budget
                    covered = got + min(length - got, READ_CHUNK)
                    if not state.budget.grow(reservation, covered):
                        self._over_budget()
                        return None, reservation
                chunk = self.rfile.read1(min(length, covered) - got)  # never more than covered
                if not chunk:
                    break
                body += chunk
                got += len(chunk)
                reservation.got = got  # its pace, for a large body that others wait behind
        except (TimeoutError, OSError, ValueError):
            self.close_connection = True
            self._busy()
            with contextlib.suppress(OSError, ValueError):
                self._send_json(408, {"error": "the request body did not arrive in time"})
            return None, reservation
        if got < length:
            self.close_connection = True
            return None, reservation
        state.budget.received(reservation)  # never shed from now on
        self._busy()
        return body, reservation

    def _discard_body(self) -> None:
        self.close_connection = True


def health(state: WorkerState, path: str) -> tuple[int, bytes, str]:
    """(status, body, content type) of /healthz, /readyz, /metrics or /checkpoint, on either port."""
    if path == "/healthz":
        return 200, b"ok\n", "text/plain"
    if path == "/checkpoint":
        return checkpoint(state)
    if path == "/readyz":
        ready = state.pool.ready and state.metrics.all_ready() and not state.draining
        if state.draining:
            why = "stopping"
        else:
            why = "ready" if ready else state.pool.failed or "policies are still compiling"
        down = state.metrics.log_down() if ready and state.log_fail_closed else ""
        if down:  # every decision would be denied (failure policy closed): out of the Service
            ready = False
            why = f"the decision log cannot be written (failure policy closed): {down}"
        return (200 if ready else 503), (why + "\n").encode(), "text/plain"
    with contextlib.suppress(OSError):
        state.metrics.set_rss(_rss_bytes())
    return 200, state.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8"


def checkpoint(state: WorkerState) -> tuple[int, bytes, str]:
    """`GET /checkpoint`: the log's latest signed checkpoint (a C2SP signed note), or 404 and why."""
    plain = "text/plain; charset=utf-8"
    if state.decision_log is None:
        return 404, b"no decision log is configured (serve --decision-log or decisionLog.url)\n", plain
    try:
        note = state.decision_log.latest_note()
    except CheckpointRolledBackError as e:  # the database lost checkpoints this log signed
        state.metrics.checkpoint_unavailable("rolled_back")
        return 503, f"{e.diagnostics()}\n".encode(), plain
    except DecisionLogError as e:
        state.metrics.checkpoint_unavailable("unreadable")
        return 503, f"the decision log cannot be read: {e.diagnostics()}\n".encode(), plain
    if note is None:
        why = "the decision log has no signed checkpoint yet"
        if state.decision_log.signer is None:
            why += " (no signing key: set decisionLog.checkpoint.key)"
        return 404, (why + "\n").encode(), plain
    return 200, note.encode(), plain


class HealthHTTPServer(ThreadingHTTPServer):
    """Plain HTTP on its own port: /healthz, /readyz, /metrics, no client certificate.

    kubelet probes cannot present a client certificate, and the admission port requires one
    when `--client-ca` is given; nothing here reveals or decides anything about a request.
    """

    daemon_threads = True

    def __init__(self, sock: socket.socket, state: WorkerState) -> None:
        super().__init__(sock.getsockname()[:2], HealthHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.state = state
        self._open: dict[Any, float] = {}  # socket -> when it was accepted
        self._lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        # Every request has HEALTH_READ_SECONDS in all (see HealthHandler); when all slots are taken,
        # the oldest connection gives way, so slow clients cannot starve the kubelet's probes.
        with self._lock:
            oldest = (
                min(self._open, key=self._open.__getitem__)
                if len(self._open) >= HEALTH_MAX_CONNECTIONS
                else None
            )
            self._open[request] = time.monotonic()
        if oldest is not None:
            _shut(oldest)
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open.pop(request, None)


class HealthHandler(BaseHTTPRequestHandler):
    """GET only, one response per connection."""

    protocol_version = "HTTP/1.1"
    server: HealthHTTPServer
    server_version = "trustgate"
    sys_version = ""

    def setup(self) -> None:
        self.connection = self.request
        reader = _DeadlineReader(self.connection, HEALTH_READ_SECONDS)
        reader.deadline = time.monotonic() + HEALTH_READ_SECONDS  # the whole request, not each read
        self.rfile = io.BufferedReader(reader, 8192)
        self.wfile = _SocketWriter(self.connection)
        self.connection.settimeout(HEALTH_READ_SECONDS)

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.rfile.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, content_type: str, allow: str = "") -> None:
        head = (
            f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            + (f"Allow: {allow}\r\n" if allow else "")
            + "Connection: close\r\n\r\n"
        )
        self.close_connection = True
        self.wfile.write(head.encode("latin-1") + body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in HEALTH_PATHS:
            self._reply(*health(self.server.state, path))
        else:
            self._reply(
                404,
                f"no such path {path!r}; this port serves {', '.join(HEALTH_PATHS)}\n".encode(),
                "text/plain",
            )

    def _not_allowed(self) -> None:
        self._reply(405, f"{self.command} is not allowed; use GET\n".encode(), "text/plain", "GET")

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_TRACE = _not_allowed


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm", "rb") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")
