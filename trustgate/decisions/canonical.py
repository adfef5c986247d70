"""Canonical JSON (RFC 8785), content hashes and time-ordered ids for decision records.

Owns: the one byte encoding every record is hashed and stored in, `sha256:`
digests, UUIDv7 ids and the fixed-width UTC timestamps records carry. Leaves
out: what a record holds (`record.py`) and how records are chained (`chain.py`).

The encoding is RFC 8785 (the PyPI `rfc8785` implementation). For the common
case (integers within ±2**53, floats that print alike in Python and
ECMAScript, ASCII object keys), `json.dumps` with sorted keys and no
whitespace yields the same bytes about seven times faster, and orjson with
sorted keys (the same escapes for every code point, the same floats in that
range) ten times faster again: a walk over the value decides which path
applies, and tests compare the paths on generated values.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import rfc8785

from trustgate.errors import InputError

_MAX_SAFE_INT = 2**53 - 1  # RFC 8785 numbers are IEEE 754 doubles


class CanonicalError(InputError, ValueError):
    """A value has no RFC 8785 encoding (NaN, infinity, lone surrogates, a non-JSON type).

    An input the user gave (an object in a manifest or a review) cannot be
    recorded as it is, so it is an `InputError`; it stays a `ValueError` for
    callers that caught it as one.
    """


def canonical(value: Any) -> bytes:
    """The RFC 8785 encoding of a JSON-compatible value.

    Raises:
        CanonicalError: the value holds NaN or infinity, a lone surrogate, or
            a type JSON does not have. Integers beyond ±(2**53-1) are encoded
            as marked decimal strings (`BIG_INT_MARKER`), not refused.
    """
    if _plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate, nesting deeper than 255: as before, with the standard library's errors
        try:
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError, UnicodeEncodeError) as e:
            raise CanonicalError(str(e)) from e
    try:
        return rfc8785.dumps(_big_ints_as_strings(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise CanonicalError(str(e)) from e


def plain_canonical(value: Any) -> bytes | None:
    """`canonical(value)` when `value` holds JSON's own types only (exact `dict`, `list`, `tuple`,
    `str`, `int`, `bool`, `float`, None) and takes the fast path, else None (nothing is raised).

    Such a value is its own JSON-only copy: a caller that would copy it before storing it may keep it.
    """
    if not _plain(value):
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None


BIG_INT_MARKER = "i-json:int:"  # an integer beyond ±(2**53-1) is encoded as this prefix + its digits


def _big_ints_as_strings(value: Any) -> Any:
    """Integers outside the I-JSON range (RFC 7493, 2.2) as marked decimal strings; the rest unchanged.

    The API server passes int64 fields up to 2**63-1 (`terminationGracePeriodSeconds`), which RFC 8785
    cannot encode as numbers. The marker keeps them apart from numbers; a string that happens to
    hold the same text encodes alike (ADR 7).
    """
    kind = type(value)
    if kind is int and not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        return f"{BIG_INT_MARKER}{value}"
    if kind is dict:
        return {k: _big_ints_as_strings(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_big_ints_as_strings(v) for v in value]
    return value


def _plain(value: Any) -> bool:
    """True when `json.dumps` gives exactly the RFC 8785 bytes for `value`.

    One pass over the containers; scalars are checked where they sit, so a
    string (most of a Kubernetes object) costs one type test.
    """
    if not _plain_scalar(value):
        kind = type(value)
        if kind is not dict and kind is not list and kind is not tuple:
            return False
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            try:
                # Python sorts by code point, RFC 8785 by UTF-16 unit: equal for ASCII keys.
                if not "".join(item).isascii():
                    return False
            except TypeError:  # a key that is not a string
                return False
            values: Any = item.values()
        elif kind is list or kind is tuple:
            values = item
        else:
            continue
        for v in values:
            t = type(v)
            if t is str or t is bool or v is None:
                continue
            if t is int:
                if not -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
                    return False
            elif t is dict or t is list or t is tuple:
                stack.append(v)
            elif t is float:
                if not _plain_float(v):
                    return False
            else:
                return False  # subclasses, anything else
    return True


def _plain_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is float:
        return _plain_float(value)
    return kind is int and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT


def _plain_float(value: float) -> bool:
    """True when Python's `repr` is the number's RFC 8785 form (ECMAScript's `Number.toString`).

    Both print the shortest digits that read back as the same double; they
    differ only in when they switch to an exponent (ECMAScript below 1e-6 and
    from 1e21, Python below 1e-4 and from 1e16) and in whole numbers ("2.0"
    against "2"). Durations (`0.025`) are the floats records hold.
    """
    magnitude = abs(value)
    return 1e-4 <= magnitude < 1e16 and not value.is_integer()


def sha256(data: bytes) -> str:
    """`sha256:<hex>`, the digest form used across records."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def content_hash(value: Mapping[str, Any] | list[Any]) -> str:
    """The `sha256:` digest of a value's canonical encoding.

    Raises:
        CanonicalError: as `canonical`.
    """
    return sha256(canonical(value))


def timestamp(moment: dt.datetime | None = None) -> str:
    """`2025-01-31T12:00:00.000000Z`: fixed width, so text order is time order.

    The year is formatted here, zero-padded to 4 digits: glibc's `%Y` writes
    year 999 as `999`, which sorts after `2025` as text.
    """
    moment = (moment or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.%fZ")


_uuid_lock = threading.Lock()
_uuid_last = (0, 0)  # (milliseconds, counter) of the last id made in this process
_ENTROPY_BYTES = 10 * 256  # read from the system 256 ids at a time
_entropy = (b"", 0)  # random bytes read and how many are used (10 per id, under the lock)


def _forget_entropy() -> None:
    """In a forked child: read its own random bits (never equal ids in two processes), and a new
    lock (another thread of the parent may have held it, reading a block, as it forked)."""
    global _entropy, _uuid_lock
    _entropy = (b"", 0)
    _uuid_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_entropy)


def uuid7(ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a counter and random bits.

    Ids made by one process are strictly increasing: within one millisecond
    the 12-bit `rand_a` field counts up (RFC 9562, section 6.2, method 1).
    """
    global _uuid_last, _entropy
    # The random bits come from a buffer read from the system 256 ids at a time: a system call per
    # id released the interpreter, and under load each one waited for it again (~15 % of a
    # webhook worker's samples).
    with _uuid_lock:
        pool, used = _entropy
        if used + 10 > len(pool):
            pool, used = os.urandom(_ENTROPY_BYTES), 0
        entropy = int.from_bytes(pool[used : used + 10])
        _entropy = (pool, used + 10)
        now = ms if ms is not None else time.time_ns() // 1_000_000
        last_ms, counter = _uuid_last
        if now <= last_ms:
            now, counter = last_ms, counter + 1
            if counter > 0xFFF:  # 4,096 ids in one millisecond: borrow the next one
                now, counter = now + 1, 0
        else:
            counter = (entropy >> 64) & 0x3FF  # leave room to count up
        _uuid_last = (now, counter)
    rand_b = entropy & ((1 << 62) - 1)
    value = (now << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def uuid7_ms(value: object) -> int | None:
    """The Unix milliseconds a UUIDv7 was made at (RFC 9562: its first 48 bits), None for anything
    else: another version or variant, or not the lower-case 36-character form `uuid7` writes (ids
    are compared as text, so `{...}` or upper case would be another id)."""
    if type(value) is not str or len(value) != 36 or _UUID_FORM.fullmatch(value) is None:
        return None
    if value[14] != "7" or value[19] not in "89ab":  # version 7, variant 0b10 (RFC 9562)
        return None
    return int(value[:8] + value[9:13], 16)


def uuid7_time(value: str) -> dt.datetime | None:
    """The creation time encoded in a UUIDv7, or None for another kind of id (`uuid7_ms`)."""
    ms = uuid7_ms(value)
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


_UUID_FORM = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# What `timestamp` writes, and every release wrote (their `%Y` gave 4 digits for any year a clock
# shows): fixed width, UTC, so text order (`log query --since/--until`, the time index) is time order.
_TIMESTAMP_FORM = re.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{6}Z")


def timestamp_micros(text: object) -> int | None:
    """Unix microseconds of a time exactly in `timestamp`'s form, None for any other text.

    A time with another offset (`-23:59`), none, or a date alone is no time trustgate wrote: as
    text it sorts elsewhere than the moment it names, and as a moment it may be read in any zone.
    `log verify` reads every record's: the day is looked up, the rest is arithmetic.
    """
    if type(text) is not str or len(text) != 27 or _TIMESTAMP_FORM.fullmatch(text) is None:
        return None
    day = _epoch_day(text[:10])
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if day is None or hour > 23 or minute > 59 or second > 59:  # February 30, 24:00, a leap second
        return None
    return (((day * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000 + int(text[20:26])


@functools.lru_cache(maxsize=256)
def _epoch_day(text: str) -> int | None:
    """Days since 1970-01-01 of a `YYYY-MM-DD` date (None: no such date)."""
    try:
        return (dt.date(int(text[0:4]), int(text[5:7]), int(text[8:10])) - _EPOCH_DAY).days
    except ValueError:
        return None


_EPOCH_DAY = dt.date(1970, 1, 1)
