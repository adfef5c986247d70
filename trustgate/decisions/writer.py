"""One decision-log writer process per server, shared by the processes that decide (`serve`'s workers).

Owns: the writer's side (`serve_writer`: a Unix socket; every record a
client sends goes into one `DecisionLog`, whose group commit takes the
records of all clients together, waiting `COMMIT_DELAY_SECONDS` for them,
and each is acknowledged only once its transaction is committed, the
acknowledgements of a batch in one write per client), the client's side
(`WriterClient`, a `DecisionLog` for the deciding process: it encodes and
indexes the record in the caller's thread, sends the prepared bytes, and
resolves the record's future when the writer acknowledges it), the wire
format of the two, and `WriterProcess` (forking the writer from a
supervisor, the socket's private directory, stopping it).

Why a process: in a busy server process the writer thread waits for the
GIL after every call into the database, so a commit took 17-23 ms (0.5 ms
alone; ADR 3). In a process of its own the commit thread has the
interpreter to itself.

What it keeps: a record is acknowledged only after its commit (a writer
killed before that acknowledges nothing; what it committed stays). A client
whose connection to the writer breaks fails every record waiting on it
(`DecisionLogError`, counted in `write_failures`, kept in `write_error`
until a record or a probe succeeds again), and every wait is bounded
(`wait_seconds`; `expire()` gives up on a writer that hangs). The next
record or probe connects again, to a writer restarted by whoever started
it. Checkpoints are signed and published by the writer; its refusals and
publish failures reach the clients through `take_problems()` (each to one
client, so the counters summed over clients are the writer's).

Leaves out: when to restart the writer (the server's supervisor), what
goes into a record (`record.py`), the failure policy (the gate's).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import json
import marshal
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from trustgate.decisions.chain import Checkpoint, CheckpointSigner
from trustgate.decisions.log import CheckpointPolicy, CheckpointRefusedError, DecisionLog, open_store
from trustgate.decisions.note import NoteError, open_checkpoint
from trustgate.decisions.publish import PublishError
from trustgate.decisions.store import Prepared
from trustgate.errors import DecisionLogError

# A frame: length of the payload, operation, request number (chosen by the client, echoed back).
_HEADER = struct.Struct(">IBQ")
_LENGTH = struct.Struct(">I")  # of an append's head (id, time, gate, verdict, terms), before the record
_APPEND, _PROBE, _STATS = 1, 2, 3  # client -> writer
_OK, _FAILED = 11, 12  # writer -> client
_MAX_FRAME = 64 * 1024 * 1024  # bytes; records are capped far below (decisionLog.maxInputBytes)
WAIT_SECONDS = 10.0  # seconds a client waits at most for an acknowledgement nobody else bounds
CONNECT_SECONDS = 1.0  # seconds to connect to the writer's socket
STATS_SECONDS = 1.0  # seconds `take_problems` waits for the writer's counters
SEND_SECONDS = 5.0  # seconds the writer waits for a client that does not read its acknowledgements
STOP_SECONDS = 30.0  # seconds a stopping writer waits for its clients to disconnect
# seconds the writer waits after a batch's first record for the records of other requests (when the
# last commit had more than one: a quiet server adds no latency): with two busy workers on 2 cores it
# took 1.8-2.4 records per commit without, 3.5-5 with it, and its CPU per record fell from 0.42-0.45
# to 0.25-0.36 ms (a commit costs ~0.6 ms of CPU whatever its size)
COMMIT_DELAY_SECONDS = 0.002


def _encode(item: Prepared) -> bytes:
    # marshal, not JSON: both ends are this interpreter (the writer and its clients are forked from one
    # supervisor), and it is a fifth of the cost on each side (0.9 against 3.4 us to encode, 2.3 against
    # 5.2 us to decode a bench record); the record's own bytes follow as they are.
    head = marshal.dumps((item.id, item.time, item.gate, item.verdict, item.terms))
    return _LENGTH.pack(len(head)) + head + item.body


def _decode(payload: bytes) -> Prepared:
    """The record `_encode` made.

    Raises:
        ValueError: the payload is not one (the writer answers it with a failure and reads on).
    """
    try:
        (size,) = _LENGTH.unpack_from(payload)
        head = marshal.loads(payload[_LENGTH.size : _LENGTH.size + size])
    except (struct.error, EOFError, TypeError, ValueError) as e:
        raise ValueError(f"a malformed record: {e}") from e
    if type(head) is not tuple or len(head) != 5:
        raise ValueError("a malformed record")
    record_id, when, gate, verdict, terms = head
    if not (type(record_id) is str and type(when) is str and type(gate) is str and type(verdict) is str):
        raise ValueError("a malformed record")
    if type(terms) is not tuple or not all(
        type(t) is tuple and len(t) == 2 and type(t[0]) is str and type(t[1]) is str for t in terms
    ):
        raise ValueError("a malformed record's index terms")
    return Prepared(
        id=record_id,
        time=when,
        gate=gate,
        verdict=verdict,
        body=payload[_LENGTH.size + size :],
        terms=terms,
    )


def _error_payload(error: BaseException) -> bytes:
    if isinstance(error, DecisionLogError):
        return json.dumps([error.message, error.where, error.hint]).encode()
    return json.dumps([f"the decision log writer failed: {error!r}", "", ""]).encode()


def _read_frame(reader: BinaryIO) -> tuple[int, int, bytes]:
    """One frame; raises EOFError at the end of the stream (or a malformed frame)."""
    head = reader.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError
    size, op, number = _HEADER.unpack(head)
    if size > _MAX_FRAME:
        raise EOFError
    payload = reader.read(size)
    if len(payload) < size:
        raise EOFError
    return op, number, payload


# -- the writer ------------------------------------------------------------------


class _Connection:
    """One client: its frames are read by a thread of their own; acknowledgements are sent by the
    commit thread of the log (the callback of each record's future)."""

    def __init__(self, server: _WriterServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.lock = threading.Lock()
        self.alive = True
        self.outbox: list[bytes] = []  # frames not yet sent: one send per batch, not per record

    def send(self, op: int, number: int, payload: bytes) -> None:
        """Queue a frame; `flush` sends it (the writer thread, after the batch it belongs to)."""
        with self.lock:
            self.outbox.append(_HEADER.pack(len(payload), op, number) + payload)
        self.server.dirty(self)

    def flush(self) -> None:
        with self.lock:
            data, self.outbox = b"".join(self.outbox), []
            if not data or not self.alive:
                return
            try:
                self.sock.sendall(data)
            except OSError:  # gone, or not reading: it fails what it waits for when the socket closes
                self.alive = False
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)

    def run(self) -> None:
        log = self.server.log
        reader = self.sock.makefile("rb")
        try:
            while True:
                op, number, payload = _read_frame(reader)
                if op == _STATS:
                    self.send(_OK, number, self.server.stats())
                    self.flush()
                    continue
                try:
                    if op == _APPEND:
                        # Answered by the commit thread, whose flush after the batch sends it.
                        log.queue_prepared(_decode(payload), _Acknowledge(self, number))
                        continue
                    if op == _PROBE:
                        future = log.probe_future()
                    else:
                        raise DecisionLogError(f"unknown request {op} to the decision log writer")
                except (DecisionLogError, ValueError, struct.error) as e:
                    self.send(_FAILED, number, _error_payload(e))
                    self.flush()
                    continue
                future.add_done_callback(self.server.acknowledge(self, number))
                if future.done():  # resolved before the callback was added: the writer's flush may be past
                    self.server.flush()
        except (EOFError, OSError):
            pass
        finally:
            with self.lock:
                self.alive = False
            reader.close()
            self.sock.close()
            self.server.gone(self)


class _Acknowledge:
    """An append's answer to its client, given by the log's commit thread (`Acknowledgement`)."""

    __slots__ = ("connection", "number")

    def __init__(self, connection: _Connection, number: int) -> None:
        self.connection = connection
        self.number = number

    def set_result(self, result: str, /) -> None:
        self.connection.server.committed(self.connection, self.number, result)

    def set_exception(self, error: BaseException, /) -> None:
        self.connection.send(_FAILED, self.number, _error_payload(error))


class _WriterServer:
    def __init__(self, log: DecisionLog) -> None:
        self.log = log
        self.connections: set[_Connection] = set()
        self._lock = threading.Lock()
        self._counted_commit = 0  # the last commit reported to a client (callbacks: the commit thread)
        self._reported = (0, 0)  # checkpoints refused, publish failures: already reported to a client
        self._dirty: set[_Connection] = set()  # connections with frames to send
        self._dirty_lock = threading.Lock()

    def dirty(self, connection: _Connection) -> None:
        with self._dirty_lock:
            self._dirty.add(connection)

    def flush(self) -> None:
        """Send every connection what is queued for it (the log's `after_batch`)."""
        with self._dirty_lock:
            connections, self._dirty = self._dirty, set()
        for connection in connections:
            connection.flush()

    def acknowledge(
        self, connection: _Connection, number: int
    ) -> Callable[[concurrent.futures.Future[str]], None]:
        """The callback answering a probe's future."""

        def done(future: concurrent.futures.Future[str]) -> None:
            error = future.exception()
            if error is not None:
                connection.send(_FAILED, number, _error_payload(error))
                return
            connection.send(_OK, number, future.result().encode())

        return done

    def committed(self, connection: _Connection, number: int, record_id: str) -> None:
        """Acknowledge an append (in the commit thread); the first of a commit also counts it."""
        first = 0
        if self.log.commits != self._counted_commit:  # one client counts each commit
            self._counted_commit = self.log.commits
            first = 1
        connection.send(_OK, number, bytes([first]) + record_id.encode())

    def stats(self) -> bytes:
        """Refusals and publish failures not yet reported to any client, and the problems kept."""
        with self._lock:
            refused, published = self.log.checkpoints_refused, self.log.publish_failures
            new = (refused - self._reported[0], published - self._reported[1])
            self._reported = (refused, published)
            problems = [[type(p).__name__, p.message, p.where, p.hint] for p in self.log.take_problems()]
        signed = self.log.last_signed_note  # what its clients' `latest_note` serves at the least
        return json.dumps(
            {"refused": new[0], "publish_failures": new[1], "problems": problems, "signed": signed}
        ).encode()

    def gone(self, connection: _Connection) -> None:
        with self._lock:
            self.connections.discard(connection)

    def serve(self, listener: socket.socket, stop: threading.Event) -> None:
        listener.settimeout(0.25)
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(None)
            # A client that stops reading must not hold the commit thread (it sends acknowledgements).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(SEND_SECONDS), 0))
            connection = _Connection(self, sock)
            with self._lock:
                self.connections.add(connection)
            threading.Thread(target=connection.run, name="trustgate-log-client", daemon=True).start()


def _staging(path: Path) -> Path:
    """Where the writer binds before it listens: beside `path`, a name of the same length.

    Renamed onto `path` once listening, so a client (or a supervisor waiting for the
    file) that finds `path` can connect; between bind and listen it would be refused.
    No longer than `path`: a Unix socket's path has at most 107 bytes.
    """
    name = path.name
    return path.with_name(name[:-1] + ("~" if name[-1] != "~" else "+"))


def serve_writer(log: DecisionLog, path: Path, *, parent: int | None = None) -> int:
    """Run a writer process on the Unix socket `path` until SIGTERM (or `parent` is gone); exit code.

    Stopping: it stops accepting, waits for its clients to disconnect (at
    most `STOP_SECONDS`), then commits what is queued and closes the log.
    SIGINT is ignored: the supervisor stops the writer after its workers.
    """
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    staging = _staging(path)
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()  # left by a writer that was killed while starting
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(staging))
    listener.listen(128)
    os.replace(staging, path)  # also replaces a socket left by a writer that was killed
    ours = os.stat(path).st_ino
    with contextlib.suppress(DecisionLogError):
        _ = log.store  # migrate now, not on the first decision (a failure is retried by the first)
    log.commit_delay = COMMIT_DELAY_SECONDS
    server = _WriterServer(log)
    log.after_batch = server.flush

    def orphaned(parent: int) -> None:  # the supervisor was killed: stop once the workers are gone too
        while os.getppid() == parent and not stop.is_set():
            time.sleep(1.0)
        stop.set()

    if parent is not None:
        threading.Thread(target=orphaned, args=(parent,), daemon=True).start()
    try:
        server.serve(listener, stop)
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == ours:  # not a socket a newer writer put there
                path.unlink()
        end = time.monotonic() + STOP_SECONDS
        while server.connections and time.monotonic() < end:
            time.sleep(0.05)
        log.close()
    return 0


# -- the client ------------------------------------------------------------------


class WriterClient(DecisionLog):
    """A `DecisionLog` whose records are committed by a writer process (`serve_writer`) at `path`.

    Reads (`latest_note`, `store` for queries) open the store here, like
    any reader. Checkpoints are the writer's.

    Args:
        path: the writer's Unix socket.
        url, signer, checkpoints, create: the log's, as the writer has them.
        wait_seconds: the longest wait for an acknowledgement when the caller gives none.
    """

    def __init__(
        self,
        *,
        path: Path,
        url: str,
        signer: CheckpointSigner | None = None,
        checkpoints: CheckpointPolicy | None = None,
        wait_seconds: float = WAIT_SECONDS,
        create: bool = True,
    ) -> None:
        super().__init__(
            store=lambda: open_store(url, create=create),
            url=url,
            signer=signer,
            checkpoints=checkpoints,
            create=create,
        )
        self.path = path
        self.wait_seconds = wait_seconds
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()  # one write at a time, and one connection attempt
        self._pending: list[tuple[int, bytes]] = []  # (request number, frame) not yet written
        self._pending_lock = threading.Lock()
        self._sending = False  # a thread is writing what is pending
        # request number -> (operation, future, monotonic time sent)
        self._waiting: dict[int, tuple[int, concurrent.futures.Future[str], float]] = {}
        self._waiting_lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._dropped: DecisionLogError | None = None  # why `expire` dropped the connection

    @classmethod
    def around(cls, log: DecisionLog, path: Path) -> WriterClient:
        """A client of the writer at `path` for the log `log` describes (its store is never opened)."""
        return cls(path=path, url=log.url, signer=log.signer, checkpoints=log.policy, create=log.create)

    # -- records ----------------------------------------------------------------

    def append(self, record: Mapping[str, Any], *, timeout: float | None = None) -> str:
        """As `DecisionLog.append`; waits at most `wait_seconds` when no timeout is given."""
        return super().append(record, timeout=self.wait_seconds if timeout is None else timeout)

    def _send(self, record: Mapping[str, Any]) -> concurrent.futures.Future[str]:
        return self.submit(record)  # to the writer process, not this process's queue

    def submit_prepared(self, item: Prepared) -> concurrent.futures.Future[str]:
        """Send a record encoded here (`DecisionLog.submit` prepares it) to the writer; the future
        resolves once it is durable."""
        if self._closed:
            raise DecisionLogError("the decision log is closed", where=self.url)
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._request(_APPEND, _encode(item), future)
        return future

    def probe_future(self) -> concurrent.futures.Future[str]:
        """Ask the writer to probe its store (see `DecisionLog.probe`)."""
        if self._closed:
            raise DecisionLogError("the decision log is closed", where=self.url)
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._request(_PROBE, b"", future)
        return future

    def probe(self, *, timeout: float | None = None) -> DecisionLogError | None:
        """As `DecisionLog.probe`, through the writer: also fails when the writer cannot be reached."""
        if self._closed:
            return DecisionLogError("the decision log is closed", where=self.url)
        wait = self.wait_seconds if timeout is None else timeout
        try:
            self.probe_future().result(timeout=wait)
        except concurrent.futures.TimeoutError:
            error = DecisionLogError(
                f"the decision log writer did not answer within {wait:g} s", where=self.url
            )
            self.write_error = error
            return error
        except DecisionLogError as e:
            self.write_error = e
            return e
        self.write_error = None
        return None

    def flush(self) -> None:
        """Wait (at most `wait_seconds`) until every record sent so far is acknowledged or failed."""
        with self._waiting_lock:
            futures = [f for op, f, _ in self._waiting.values() if op == _APPEND]
        concurrent.futures.wait(futures, timeout=self.wait_seconds)

    def take_problems(self) -> list[DecisionLogError]:
        """The writer's checkpoint refusals and publish failures not yet taken by any of its clients."""
        out = super().take_problems()
        if self._closed:
            return out
        self.expire()
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._request(_STATS, b"", future)
        try:
            stats = json.loads(future.result(timeout=STATS_SECONDS))
        except (concurrent.futures.TimeoutError, DecisionLogError, ValueError):
            return out  # asked again at the next tick; the writer keeps them until someone takes them
        self.checkpoints_refused += int(stats["refused"])
        self.publish_failures += int(stats["publish_failures"])
        self._remember_signed(stats.get("signed"))
        kinds: dict[str, type[DecisionLogError]] = {
            "CheckpointRefusedError": CheckpointRefusedError,
            "PublishError": PublishError,
        }
        for kind, message, where, hint in stats["problems"]:
            out.append(kinds.get(kind, DecisionLogError)(message, where=where, hint=hint))
        return out

    def _remember_signed(self, note: object) -> None:
        """Keep the note the writer signed last (`latest_note` serves it), when it is this log's and
        newer than the one kept."""
        if type(note) is not str or self.signer is None or note == self.last_signed_note:
            return
        try:
            size = open_checkpoint(note, self.signer.note_verifier()).size
        except NoteError:
            return
        self.remember_note(note, size)

    def checkpoint(self) -> Checkpoint:
        """Not through a client: the writer signs (`trustgate log checkpoint` signs on demand).

        Raises:
            DecisionLogError: always.
        """
        raise DecisionLogError("checkpoints are signed by the decision log writer process", where=self.url)

    def close(self) -> None:
        """Disconnect (records still waiting fail) and close the readers."""
        if self._closed:
            return
        self.flush()
        with self._send_lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        super().close()

    def expire(self) -> bool:
        """Give up on a writer that has not acknowledged a record for `wait_seconds` (it hangs).

        Drops the connection: everything waiting on it fails (counted, and kept
        in `write_error`: the worker turns unready where the failure policy is
        closed) and the next record connects again. Called by `take_problems`,
        which the server's log watch calls a few times a second.

        Returns:
            True when it gave up.
        """
        limit = time.monotonic() - self.wait_seconds
        with self._waiting_lock:
            late = any(op != _STATS and sent < limit for op, _, sent in self._waiting.values())
        if not late:
            return False
        with self._send_lock:
            sock = self._sock
            self._dropped = DecisionLogError(
                f"the decision log writer process did not acknowledge a record within "
                f"{self.wait_seconds:g} s (it hangs or is stopped)",
                where=self.url,
                hint="decisions follow the failure policy until it acknowledges records again",
            )
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # its reader fails what waits on it
        return True

    # -- the connection ---------------------------------------------------------

    def _request(self, op: int, payload: bytes, future: concurrent.futures.Future[str]) -> None:
        """Queue one frame; the first thread to find nobody sending sends what is queued, in one write.

        No thread waits on a lock held across a system call (which releases
        the interpreter): with dozens of request threads, one sender per
        write kept the others queued behind it.
        """
        number = next(self._numbers)
        with self._waiting_lock:
            self._waiting[number] = (op, future, time.monotonic())
        frame = _HEADER.pack(len(payload), op, number) + payload
        with self._pending_lock:
            self._pending.append((number, frame))
            if self._sending:
                return  # the sending thread takes it in its next write
            self._sending = True
        self._send_pending()

    def _send_pending(self) -> None:
        """Write what is pending until nothing is (each write takes microseconds: the turn is short).

        Whatever happens, `_sending` is cleared on the way out, and frames taken but not written
        fail: a sender stopped by an unexpected error must not leave every later frame queued.
        """
        frames: list[tuple[int, bytes]] = []
        try:
            while True:
                with self._pending_lock:
                    frames, self._pending = self._pending, []
                    if not frames:
                        self._sending = False
                        return
                self._write(frames)
                frames = []
        except BaseException as e:
            with self._pending_lock:
                self._sending = False
            self._fail({n for n, _ in frames}, DecisionLogError(f"the decision log client failed: {e!r}"))
            raise

    def _write(self, frames: list[tuple[int, bytes]]) -> None:
        with self._send_lock:
            with self._waiting_lock:  # one failed meanwhile (the connection was lost) is not sent
                frames = [(n, f) for n, f in frames if n in self._waiting]
            if not frames:
                return
            sock = self._sock
            try:
                if sock is None:
                    sock = self._connect()
                sock.sendall(b"".join(f for _, f in frames))
                return
            except OSError as e:
                error = DecisionLogError(
                    f"the decision log writer process cannot be reached at {self.path}: {e.strerror or e}",
                    where=self.url,
                    hint="the server restarts it; until then decisions follow the failure policy",
                )
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)  # its reader fails what else waits on it
        self._fail({n for n, _ in frames}, error)

    def _connect(self) -> socket.socket:
        """Called with `_send_lock` held."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_SECONDS)
            sock.connect(str(self.path))
            sock.settimeout(None)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        threading.Thread(target=self._read, args=(sock,), name="trustgate-log-acks", daemon=True).start()
        return sock

    def _read(self, sock: socket.socket) -> None:
        reader = sock.makefile("rb")
        try:
            while True:
                op, number, payload = _read_frame(reader)
                with self._waiting_lock:
                    waiting = self._waiting.pop(number, None)
                if waiting is None:
                    continue
                kind, future, _ = waiting
                if op == _OK:
                    if kind == _APPEND:
                        self.appended += 1
                        self.commits += payload[0]
                        self.write_error = None
                        future.set_result(payload[1:].decode())
                    else:
                        future.set_result(payload.decode())
                else:
                    message, where, hint = json.loads(payload)
                    self._fail_one(kind, future, DecisionLogError(message, where=where, hint=hint))
        except (EOFError, OSError, ValueError):
            pass
        finally:
            reader.close()
            with self._send_lock:
                if self._sock is sock:
                    self._sock = None
                sock.close()
                with self._waiting_lock:
                    # Taken out while the send lock is held: a sender after us finds them gone and
                    # drops their frames, so none reaches the restarted writer after failing here.
                    mine, self._waiting = self._waiting, {}
                dropped, self._dropped = self._dropped, None
            self._fail_taken(
                mine,
                dropped
                or DecisionLogError(
                    "the decision log writer process closed the connection before acknowledging "
                    "the record (it exited or was killed)",
                    where=self.url,
                    hint="the server restarts it; until then decisions follow the failure policy",
                ),
            )

    def _fail_taken(
        self, taken: dict[int, tuple[int, concurrent.futures.Future[str], float]], error: DecisionLogError
    ) -> None:
        for kind, future, _ in taken.values():
            self._fail_one(kind, future, error)

    def _fail(self, numbers: set[int], error: DecisionLogError) -> None:
        with self._waiting_lock:
            taken = {n: self._waiting.pop(n) for n in numbers if n in self._waiting}
        self._fail_taken(taken, error)

    def _fail_one(self, kind: int, future: concurrent.futures.Future[str], error: DecisionLogError) -> None:
        if kind == _APPEND:
            self.write_failures += 1
            self.write_error = error
        if not future.done():
            future.set_exception(error)


# -- the process -------------------------------------------------------------------


class WriterProcess:
    """A writer process forked from the caller (a supervisor), and the clients of it for its children.

    Args:
        factory: opens the log (in the writer: its store; in a client: only its URL and key are used).
    """

    def __init__(self, factory: Callable[[], DecisionLog | None]) -> None:
        self.factory = factory
        self.directory = Path(tempfile.mkdtemp(prefix="trustgate-log-"))  # mode 0700: only this user
        self.path = self.directory / "writer.sock"
        self.pid = 0

    def start(self, *, ready_seconds: float = 10.0) -> None:
        """Fork the writer; return once it listens, or it exited (the caller reaps and restarts it), or
        `ready_seconds` passed (clients fail meanwhile)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                # Not the caller's handlers (a supervisor's stops its workers); serve_writer sets its own.
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                log = self.factory()
                if log is not None:
                    code = serve_writer(log, self.path, parent=parent)
            except BaseException as e:
                print(f"trustgate serve: the decision log writer failed: {e!r}", file=sys.stderr, flush=True)
            finally:
                os._exit(code)
        self.pid = pid
        end = time.monotonic() + ready_seconds
        while not self.path.exists() and time.monotonic() < end:
            # Died starting: left to be reaped (WNOWAIT) by the caller, which restarts it.
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
            time.sleep(0.01)

    def client(self) -> DecisionLog | None:
        """In a child process: a client of the writer for the log `factory` describes."""
        log = self.factory()
        return WriterClient.around(log, self.path) if log is not None else None

    def stop(self, *, seconds: float = STOP_SECONDS + 5.0) -> None:
        """SIGTERM the writer, wait for it (SIGKILL after `seconds`), remove its socket's directory."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            end = time.monotonic() + seconds
            while True:
                try:
                    done, _ = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if done:
                    break
                if time.monotonic() > end:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    break
                time.sleep(0.05)
            self.pid = 0
        shutil.rmtree(self.directory, ignore_errors=True)
