"""One deadline per verification, seen by every registry request made on its behalf.

Owns: `Deadline` (an instant on the monotonic clock and what it bounds) and
`within()`, which sets it for the calling thread (a context variable) for the
duration of a block; nested blocks keep the earlier of the two instants, so a
caller's own deadline (the webhook's) wins where it is shorter. The registry
client reads it before every connect, retry wait and read. Leaves out: how
long a verification may take (configuration) and what to answer when it runs
out (the verifier).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("trustgate_deadline", default=None)


@dataclass(frozen=True, slots=True)
class Deadline:
    at: float  # time.monotonic() seconds
    seconds: float  # how long it was when set, for messages
    what: str  # what it bounds, e.g. "verifying registry.example/app@sha256:..."

    def remaining(self) -> float:
        return self.at - time.monotonic()


def current() -> Deadline | None:
    """The deadline of the calling context, None when there is none."""
    return _current.get()


@contextmanager
def within(seconds: float, what: str) -> Iterator[Deadline]:
    """Bound every registry request in the block to `seconds` from now (or an earlier outer deadline)."""
    mine = Deadline(time.monotonic() + seconds, seconds, what)
    outer = _current.get()
    if outer is not None and outer.at <= mine.at:
        mine = outer
    token = _current.set(mine)
    try:
        yield mine
    finally:
        _current.reset(token)
