"""Decision ids made at a given time, for records dated in the past."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid


def uuid7_at(time: str) -> str:
    """A UUIDv7 made at `time` (a record's timestamp), as a gate whose clock said so would make it.

    `uuid7(ms=...)` never goes back before the ids this process made already, so a record dated in
    the past needs its id made here: `log verify` and the writer compare the two.
    """
    ms = int(dt.datetime.fromisoformat(time).timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (secrets.randbits(12) << 64) | (0b10 << 62) | secrets.randbits(62)
    return str(uuid.UUID(int=value))
