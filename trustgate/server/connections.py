"""The open connections of one worker: their limits, their phases, and which to shed when slots run short.

Owns: the time limits of each phase of a connection (TLS handshake, request
line and headers as a whole, body as a whole, idle keep-alive), the budget of
connections per client address, and the choice of the connection to give up
when a new one needs a slot: the oldest idle one first, then the one that has
spent the longest in a phase where it is sending us something (handshake,
headers, body), never one whose request is being decided or answered.
Leaves out: sockets and threads (`trustgate.server.http` shuts a shed
connection down and enforces the deadlines on its reads).

Why a whole-phase deadline and not only a per-read one: a client that sends
one header byte just before each read times out holds its slot for as long
as it likes (slowloris). Why shedding and not only refusing: with a fixed
cap, whoever opens connections first keeps them, and the API server is then
refused; a client that is slow or idle is the one that should wait.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Limits of one worker's connections; the defaults are what `trustgate serve` uses."""

    max_connections: int = 512  # per worker; each open connection holds a thread
    per_client: int = 128  # per client address and worker: one address cannot take every slot
    handshake_seconds: float = 5.0  # the whole TLS handshake; a real client needs milliseconds
    header_seconds: float = 5.0  # request line and headers, whole, from their first byte
    body_seconds: float = 10.0  # the whole body, from the end of the headers (16 MiB at 13.4 Mbit/s)
    read_seconds: float = 10.0  # any one read, within the deadlines above
    first_request_seconds: float = 10.0  # a new connection's wait for its first request
    idle_seconds: float = 90.0  # a keep-alive connection's wait for its next request
    write_seconds: float = 10.0  # writing one response to a client that does not read

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.per_client < 1:
            raise ValueError("max_connections and per_client must be at least 1")


class Phase(enum.Enum):
    HANDSHAKE = "handshake"
    IDLE = "idle"  # between requests, waiting for the next one's first byte
    HEADERS = "headers"
    BODY = "body"
    BUSY = "busy"  # decided and answered: never shed


@dataclass(eq=False, slots=True)
class Connection:
    """One accepted connection, as the table sees it."""

    address: str
    opened: float
    phase: Phase = Phase.HANDSHAKE
    since: float = 0.0  # when the current phase began (time.monotonic())
    closing: bool = False  # shed, or the server is draining: its thread closes it soon
    handle: Any = None  # the socket, for whoever sheds it

    def __post_init__(self) -> None:
        self.since = self.opened


@dataclass(slots=True)
class Admission:
    """What `ConnectionTable.admit` decided: the new connection (None: refused) and those to shed."""

    connection: Connection | None
    shed: list[Connection] = field(default_factory=list)
    reason: str = ""  # why something was shed or refused: "client budget" or "slots"


class ConnectionTable:
    """The connections of one worker, under one lock."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._open: set[Connection] = set()
        self._by_address: dict[str, set[Connection]] = {}
        self.draining = False  # the server stops: requests in flight finish, no new one starts

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, address: str, now: float) -> Admission:
        """Take a slot for a new connection from `address`, shedding others if needed."""
        with self._lock:
            mine = self._by_address.get(address, set())
            reason = ""
            victims: list[Connection] = []
            if _live(mine) >= self.limits.per_client:
                reason = "client budget"
                victim = _victim(mine)  # a client over its budget gives up its own connections only
                if victim is None:
                    return Admission(None, [], reason)
                victims.append(victim)
            elif _live(self._open) >= self.limits.max_connections:
                reason = "slots"
                victim = _victim(self._open)
                if victim is None:
                    return Admission(None, [], reason)
                victims.append(victim)
            for victim in victims:
                victim.closing = True
            conn = Connection(address, now)
            self._open.add(conn)
            self._by_address.setdefault(address, set()).add(conn)
            return Admission(conn, victims, reason)

    def enter(self, conn: Connection, phase: Phase, now: float) -> bool:
        """Move `conn` to `phase`; False when it is being shed, or draining and idle (then close it)."""
        with self._lock:
            if conn.closing or (self.draining and phase == Phase.IDLE):
                conn.closing = True
                return False
            conn.phase = phase
            conn.since = now
            return True

    def release(self, conn: Connection) -> None:
        with self._lock:
            self._open.discard(conn)
            mine = self._by_address.get(conn.address)
            if mine is not None:
                mine.discard(conn)
                if not mine:
                    del self._by_address[conn.address]

    def drain(self) -> list[Connection]:
        """Stop new requests; return the idle connections, marked closing (nothing is in flight there).

        Connections in the middle of a request keep going; their response says `Connection: close`.
        """
        with self._lock:
            self.draining = True
            idle = [c for c in self._open if c.phase == Phase.IDLE and not c.closing]
            for conn in idle:
                conn.closing = True
            return idle

    def idle(self) -> list[Connection]:
        """Connections waiting for a request, not yet closing (a drain closes them as they appear)."""
        with self._lock:
            found = [c for c in self._open if c.phase == Phase.IDLE and not c.closing]
            for conn in found:
                conn.closing = True
            return found


def _live(conns: Iterable[Connection]) -> int:
    return sum(1 for c in conns if not c.closing)


def _victim(conns: Iterable[Connection]) -> Connection | None:
    """The connection to shed: the oldest idle, else the longest in handshake, headers or body."""
    idle: Connection | None = None
    slow: Connection | None = None
    for conn in conns:
        if conn.closing or conn.phase == Phase.BUSY:
            continue
        if conn.phase == Phase.IDLE:
            if idle is None or conn.since < idle.since:
                idle = conn
        elif slow is None or conn.since < slow.since:
            slow = conn
    return idle or slow
