"""OPA's time built-ins with Go's `time` semantics, for `_gobuiltins` (ADR 0008, item 18).

Owns: `time.parse_ns`, `time.format`, `time.date`, `time.clock`, `time.weekday`,
`time.add_date`, `time.diff` and `time.parse_duration_ns` as OPA 1.x computes them
(`v1/topdown/time.go`): Go's layout language (`time.Parse` and `Time.Format`, ported
from `src/time/format.go`, byte by byte), Go's `Date` normalisation (`add_date` of
Jan 31 + 1 month is Mar 2), Go's `LoadLocation` (the files under the system's zoneinfo
directories, read as Go reads them, then the `tzdata` package standing in for the
tzdata Go embeds) and OPA's duration units (Go's plus `d`, `w`, `y`). Instants are
integer nanoseconds since the epoch: no float, no `datetime` arithmetic (microseconds).
Each function answers `[true, value]` or raises `_BuiltinError` where OPA's built-in
fails (undefined under conftest and Gatekeeper).

Leaves out, failing closed (`TimeUnsupportedError`, exit 3) rather than answering
otherwise than OPA: Go's `time.Local` when this process' local zone is not UTC (OPA
reads zone abbreviations in `time.parse_ns` and the zone `"Local"` in it; Gatekeeper's
container and most CI runners are UTC), and `time.add_date` with operands so large that
Go's int64 arithmetic wraps. The `ZONEINFO` variable Go also reads is not consulted.

Imported by `_gobuiltins` at the first call of one of these built-ins only.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import io
import math
import re
import time as _time
import zoneinfo
from importlib import resources
from typing import Any

from trustgate.policy._gobuiltins import _BuiltinError, _days_from_civil, _string, _utf8

_NS = 1_000_000_000
_INT64 = 2**63
_DAY = 86_400


class TimeUnsupportedError(Exception):
    """A time built-in whose OPA answer trustgate cannot reproduce here: exit 3."""


# -- the calendar, in integers -----------------------------------------------------------


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01, proleptic Gregorian, any year."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_DAYS_IN = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in(month: int, year: int) -> int:
    return 29 if month == 2 and _leap(year) else _DAYS_IN[month - 1]


# -- locations: Go's LoadLocation ----------------------------------------------------------

# Go's platformZoneSources (zoneinfo_unix.go), in its order.
_ZONE_SOURCES = ("/usr/share/zoneinfo/", "/usr/share/lib/zoneinfo/", "/usr/lib/locale/TZ/", "/etc/zoneinfo/")
_Location = zoneinfo.ZoneInfo | None  # None is UTC: offset 0, abbreviation "UTC"
_UTC: _Location = None
_MAX_ZONE_FILE = 10 << 20  # Go's loadTzinfoFromDirOrZip reads at most 10 MB


def _local_is_utc() -> bool:
    """This process' local zone is UTC, as Go's `time.Local` would then be."""
    return _time.timezone == 0 and _time.altzone == 0 and not _time.daylight and set(_time.tzname) <= {"UTC"}


def _local() -> _Location:
    if not _local_is_utc():
        raise TimeUnsupportedError(
            "OPA reads the machine's local time zone here (Go's time.Local), which is not UTC on "
            "this machine: trustgate cannot reproduce OPA's answer; use a named zone and a numeric "
            "offset (`-0700`) in layouts"
        )
    return _UTC


@functools.lru_cache(maxsize=256)
def _load_location(name: str) -> _Location:
    """Go's `time.LoadLocation(name)` for a name other than "", "UTC" and "Local".

    Raises:
        _BuiltinError: Go fails (an invalid name, no such zone, not a zone file).
    """
    if ".." in name or name[:1] in ("/", "\\") or "\0" in name:
        raise _BuiltinError("time: invalid location name")
    for source in _ZONE_SOURCES:
        try:
            with open(source + name, "rb") as f:
                data = f.read(_MAX_ZONE_FILE + 1)
        except OSError:
            continue
        if zone := _from_tzdata(name, data):
            return zone
    if any(part in ("", ".") for part in name.split("/")):
        # Go's embedded copy is a zip looked up by the exact name, where the package's path
        # would read `America/New_York/` or `Etc/./UTC` as the zone file (ENOTDIR in Go).
        raise _BuiltinError("unknown time zone")
    try:  # Go's embedded time/tzdata, which OPA imports
        data = resources.files("tzdata.zoneinfo").joinpath(name).read_bytes()
    except (ModuleNotFoundError, OSError, ValueError):
        raise _BuiltinError("unknown time zone") from None
    if zone := _from_tzdata(name, data):
        return zone
    raise _BuiltinError("unknown time zone")


def _from_tzdata(name: str, data: bytes) -> _Location:
    if not data.startswith(b"TZif") or len(data) > _MAX_ZONE_FILE:
        return None
    try:
        return zoneinfo.ZoneInfo.from_file(io.BytesIO(data), key=name)
    except (ValueError, OSError, IndexError):
        return None


def _location(name: str) -> _Location:
    if name in ("", "UTC"):
        return _UTC
    if name == "Local":
        return _local()
    return _load_location(name)


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_MIN_LOOKUP = -62135596800  # 0001-01-01: datetime's range
_MAX_LOOKUP = 253402300799  # 9999-12-31


def _lookup(zone: _Location, sec: int) -> tuple[str, int]:
    """Go's `Location.lookup`: the abbreviation and offset in effect at Unix second `sec`."""
    if zone is None:
        return "UTC", 0
    if not _MIN_LOOKUP <= sec <= _MAX_LOOKUP:
        raise TimeUnsupportedError("a time zone lookup outside years 1-9999: trustgate cannot reproduce it")
    local = (_EPOCH + _dt.timedelta(seconds=sec)).astimezone(zone)
    offset = local.utcoffset()
    return local.tzname() or "", int(offset.total_seconds()) if offset is not None else 0


# -- OPA's operands --------------------------------------------------------------------------


def _tz_time(value: Any) -> tuple[int, _Location, str]:
    """OPA's `tzTime`: a number of ns, or [ns], [ns, zone] or [ns, zone, layout]."""
    zone = _UTC
    layout = ""
    if isinstance(value, list):
        if not value:
            raise _BuiltinError("either number (ns) or [number (ns), string (tz)]")
        number = _number(value[0])
        if len(value) > 1:
            zone_name = _string(value[1])
            if len(value) > 2:
                layout = _string(value[2])
            zone = _location(zone_name)
    else:
        number = _number(value)
    if isinstance(number, float) and not number.is_integer():
        raise _BuiltinError("timestamp too big")  # big.Float.Int64 is not exact
    if not -_INT64 <= number < _INT64:
        raise _BuiltinError("timestamp too big")
    return int(number), zone, layout


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BuiltinError("operand 1 must be number")
    return value


def _int_operand(value: Any) -> int:
    """OPA's `IntOperand`: an integral number within int64."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BuiltinError("operand must be number")
    if isinstance(value, float) and not value.is_integer():
        raise _BuiltinError("operand must be integer number")
    if not -_INT64 <= value < _INT64:
        raise _BuiltinError("operand must be integer number")
    return int(value)


def _safe_ns(sec: int, nsec: int) -> list[Any]:
    """OPA's `toSafeUnixNano`: outside int64 nanoseconds an error."""
    ns = sec * _NS + nsec
    if not -_INT64 <= ns < _INT64:
        raise _BuiltinError("time outside of valid range")
    return [True, ns]


_Fields = tuple[int, int, int, int, int, int, int, str, int, int]


@functools.lru_cache(maxsize=1024)
def _fields(ns: int, zone: _Location) -> _Fields:
    """(year, month, day, hour, minute, second, nanosecond, abbreviation, offset, days) at ns."""
    sec, nsec = divmod(ns, _NS)
    name, offset = _lookup(zone, sec)
    days, rem = divmod(sec + offset, _DAY)
    year, month, day = _civil_from_days(days)
    return year, month, day, rem // 3600, rem // 60 % 60, rem % 60, nsec, name, offset, days


def _date_in(
    year: int, month: int, day: int, hour: int, minute: int, sec: int, nsec: int, zone: Any
) -> tuple[int, int]:
    """Go's `time.Date` (fields normalised, a local time in `zone`): (Unix second, nanosecond)."""
    year_carry, month0 = divmod(month - 1, 12)
    year += year_carry
    sec_carry, nsec = divmod(nsec, _NS)
    total = hour * 3600 + minute * 60 + sec + sec_carry
    unix = (_days_from_civil(year, month0 + 1, 1) + day - 1) * _DAY + total
    if zone is not None and -_INT64 // _NS - 2 * _DAY <= unix <= _INT64 // _NS + 2 * _DAY:
        _, offset = _lookup(zone, unix)
        if offset != 0:
            # Go checks that unix - offset is in the same zone period; where it is not, it
            # takes the offset there, which is what looking it up there gives in both cases.
            _, offset = _lookup(zone, unix - offset)
            unix -= offset
    return unix, nsec


# -- Go's layout language (src/time/format.go) ------------------------------------------------

(
    _LONG_MONTH,
    _MONTH,
    _NUM_MONTH,
    _ZERO_MONTH,
    _LONG_WEEKDAY,
    _WEEKDAY,
    _DAY_STD,
    _UNDER_DAY,
    _ZERO_DAY,
    _UNDER_YEAR_DAY,
    _ZERO_YEAR_DAY,
    _HOUR,
    _HOUR12,
    _ZERO_HOUR12,
    _MINUTE,
    _ZERO_MINUTE,
    _SECOND,
    _ZERO_SECOND,
    _LONG_YEAR,
    _YEAR,
    _PM,
    _pm,
    _TZ,
    _ISO_TZ,
    _ISO_SECONDS_TZ,
    _ISO_SHORT_TZ,
    _ISO_COLON_TZ,
    _ISO_COLON_SECONDS_TZ,
    _NUM_TZ,
    _NUM_SECONDS_TZ,
    _NUM_SHORT_TZ,
    _NUM_COLON_TZ,
    _NUM_COLON_SECONDS_TZ,
    _FRAC0,
    _FRAC9,
) = range(1, 36)
_STD0X = (_ZERO_MONTH, _ZERO_DAY, _ZERO_HOUR12, _ZERO_MINUTE, _ZERO_SECOND, _YEAR)
_ISO_TZS = frozenset({_ISO_TZ, _ISO_COLON_TZ, _ISO_SECONDS_TZ, _ISO_SHORT_TZ, _ISO_COLON_SECONDS_TZ})
_NUM_TZS = frozenset({_NUM_TZ, _NUM_SECONDS_TZ, _NUM_SHORT_TZ, _NUM_COLON_TZ, _NUM_COLON_SECONDS_TZ})
# In nextStdChunk's order: the longest first.
_DASH_TZS: tuple[tuple[bytes, int], ...] = (
    (b"-070000", _NUM_SECONDS_TZ),
    (b"-07:00:00", _NUM_COLON_SECONDS_TZ),
    (b"-0700", _NUM_TZ),
    (b"-07:00", _NUM_COLON_TZ),
    (b"-07", _NUM_SHORT_TZ),
)
_Z_TZS: tuple[tuple[bytes, int], ...] = (
    (b"Z070000", _ISO_SECONDS_TZ),
    (b"Z07:00:00", _ISO_COLON_SECONDS_TZ),
    (b"Z0700", _ISO_TZ),
    (b"Z07:00", _ISO_COLON_TZ),
    (b"Z07", _ISO_SHORT_TZ),
)

_LONG_DAYS = (b"Sunday", b"Monday", b"Tuesday", b"Wednesday", b"Thursday", b"Friday", b"Saturday")
_SHORT_DAYS = tuple(d[:3] for d in _LONG_DAYS)
_LONG_MONTHS: tuple[bytes, ...] = (b"January", b"February", b"March", b"April", b"May", b"June", b"July")
_LONG_MONTHS += (b"August", b"September", b"October", b"November", b"December")
_SHORT_MONTHS = tuple(m[:3] for m in _LONG_MONTHS)

# OPA's acceptedTimeFormats: these names stand for Go's constants.
_NAMED_LAYOUTS = {
    "ANSIC": "Mon Jan _2 15:04:05 2006",
    "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
    "RubyDate": "Mon Jan 02 15:04:05 -0700 2006",
    "RFC822": "02 Jan 06 15:04 MST",
    "RFC822Z": "02 Jan 06 15:04 -0700",
    "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
    "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST",
    "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
    "RFC3339": "2006-01-02T15:04:05Z07:00",
    "RFC3339Nano": "2006-01-02T15:04:05.999999999Z07:00",
}


def _is_digit(s: bytes, i: int) -> bool:
    return i < len(s) and 0x30 <= s[i] <= 0x39


def _lower_start(s: bytes) -> bool:
    return bool(s) and 0x61 <= s[0] <= 0x7A


def _next_std(layout: bytes) -> tuple[bytes, int, int, int, bytes]:
    """Go's `nextStdChunk`: (prefix, std, digits, separator, suffix); std 0 at the end."""
    n = len(layout)
    for i in range(n):
        c = layout[i]
        rest = layout[i:]
        if c == 0x4A:  # J
            if rest.startswith(b"January"):
                return layout[:i], _LONG_MONTH, 0, 0, layout[i + 7 :]
            if rest.startswith(b"Jan") and not _lower_start(layout[i + 3 :]):
                return layout[:i], _MONTH, 0, 0, layout[i + 3 :]
        elif c == 0x4D:  # M
            if rest.startswith(b"Mon"):
                if rest.startswith(b"Monday"):
                    return layout[:i], _LONG_WEEKDAY, 0, 0, layout[i + 6 :]
                if not _lower_start(layout[i + 3 :]):
                    return layout[:i], _WEEKDAY, 0, 0, layout[i + 3 :]
            if rest.startswith(b"MST"):
                return layout[:i], _TZ, 0, 0, layout[i + 3 :]
        elif c == 0x30:  # 0
            if i + 1 < n and 0x31 <= layout[i + 1] <= 0x36:
                return layout[:i], _STD0X[layout[i + 1] - 0x31], 0, 0, layout[i + 2 :]
            if rest.startswith(b"002"):
                return layout[:i], _ZERO_YEAR_DAY, 0, 0, layout[i + 3 :]
        elif c == 0x31:  # 1
            if rest.startswith(b"15"):
                return layout[:i], _HOUR, 0, 0, layout[i + 2 :]
            return layout[:i], _NUM_MONTH, 0, 0, layout[i + 1 :]
        elif c == 0x32:  # 2
            if rest.startswith(b"2006"):
                return layout[:i], _LONG_YEAR, 0, 0, layout[i + 4 :]
            return layout[:i], _DAY_STD, 0, 0, layout[i + 1 :]
        elif c == 0x5F:  # _
            if rest.startswith(b"_2"):
                if rest.startswith(b"_2006"):
                    return layout[: i + 1], _LONG_YEAR, 0, 0, layout[i + 5 :]
                return layout[:i], _UNDER_DAY, 0, 0, layout[i + 2 :]
            if rest.startswith(b"__2"):
                return layout[:i], _UNDER_YEAR_DAY, 0, 0, layout[i + 3 :]
        elif c == 0x33:
            return layout[:i], _HOUR12, 0, 0, layout[i + 1 :]
        elif c == 0x34:
            return layout[:i], _MINUTE, 0, 0, layout[i + 1 :]
        elif c == 0x35:
            return layout[:i], _SECOND, 0, 0, layout[i + 1 :]
        elif c == 0x50:  # P
            if rest.startswith(b"PM"):
                return layout[:i], _PM, 0, 0, layout[i + 2 :]
        elif c == 0x70:  # p
            if rest.startswith(b"pm"):
                return layout[:i], _pm, 0, 0, layout[i + 2 :]
        elif c == 0x2D:  # -
            for text, std in _DASH_TZS:
                if rest.startswith(text):
                    return layout[:i], std, 0, 0, layout[i + len(text) :]
        elif c == 0x5A:  # Z
            for text, std in _Z_TZS:
                if rest.startswith(text):
                    return layout[:i], std, 0, 0, layout[i + len(text) :]
        elif c in (0x2E, 0x2C) and i + 1 < n and layout[i + 1] in (0x30, 0x39):  # . or , then 0 or 9
            ch = layout[i + 1]
            j = i + 1
            while j < n and layout[j] == ch:
                j += 1
            if not _is_digit(layout, j):
                std = _FRAC0 if ch == 0x30 else _FRAC9
                return layout[:i], std, (j - (i + 1)) & 0xFFF, c, layout[j:]
    return layout, 0, 0, 0, b""


def _trunc_div(a: int, b: int) -> int:
    """Go's integer division, which truncates toward zero."""
    q = abs(a) // b
    return -q if a < 0 else q


def _append_int(x: int, width: int) -> bytes:
    digits = str(abs(x)).zfill(width)
    return ("-" + digits if x < 0 else digits).encode()


def _append_nano(nsec: int, std: int, digits: int, sep: int) -> bytes:
    trim = std == _FRAC9
    if trim and (digits == 0 or nsec == 0):
        return b""
    out = bytes([sep]) + str(nsec).zfill(9).encode()
    if digits < 9:
        out = out[: len(out) - 9 + digits]
    if trim:
        out = out.rstrip(b"0")
        if out == bytes([sep]):
            out = b""
    return out


def _format(ns: int, zone: Any, layout: str) -> str:
    """Go's `Time.Format` of the instant `ns` in `zone`."""
    year, month, day, hour, minute, sec, nsec, name, offset, days = _fields(ns, zone)
    yday = days - _days_from_civil(year, 1, 1) + 1
    weekday = (days + 4) % 7
    out = bytearray()
    rest = _utf8(layout)
    while rest:
        prefix, std, digits, sep, suffix = _next_std(rest)
        out += prefix
        if std == 0:
            break
        rest = suffix
        if std == _YEAR:
            out += _append_int(abs(year) % 100, 2)
        elif std == _LONG_YEAR:
            out += _append_int(year, 4)
        elif std == _MONTH:
            out += _SHORT_MONTHS[month - 1]
        elif std == _LONG_MONTH:
            out += _LONG_MONTHS[month - 1]
        elif std == _NUM_MONTH:
            out += _append_int(month, 0)
        elif std == _ZERO_MONTH:
            out += _append_int(month, 2)
        elif std == _WEEKDAY:
            out += _SHORT_DAYS[weekday]
        elif std == _LONG_WEEKDAY:
            out += _LONG_DAYS[weekday]
        elif std == _DAY_STD:
            out += _append_int(day, 0)
        elif std == _UNDER_DAY:
            out += (b" " if day < 10 else b"") + _append_int(day, 0)
        elif std == _ZERO_DAY:
            out += _append_int(day, 2)
        elif std == _UNDER_YEAR_DAY:
            out += b" " * (2 if yday < 10 else 1 if yday < 100 else 0) + _append_int(yday, 0)
        elif std == _ZERO_YEAR_DAY:
            out += _append_int(yday, 3)
        elif std == _HOUR:
            out += _append_int(hour, 2)
        elif std in (_HOUR12, _ZERO_HOUR12):
            out += _append_int(hour % 12 or 12, 0 if std == _HOUR12 else 2)
        elif std == _MINUTE:
            out += _append_int(minute, 0)
        elif std == _ZERO_MINUTE:
            out += _append_int(minute, 2)
        elif std == _SECOND:
            out += _append_int(sec, 0)
        elif std == _ZERO_SECOND:
            out += _append_int(sec, 2)
        elif std == _PM:
            out += b"PM" if hour >= 12 else b"AM"
        elif std == _pm:
            out += b"pm" if hour >= 12 else b"am"
        elif std in _ISO_TZS or std in _NUM_TZS:
            if offset == 0 and std in _ISO_TZS:
                out += b"Z"
                continue
            zone_minutes = _trunc_div(offset, 60)
            absoffset = offset
            if zone_minutes < 0:
                out += b"-"
                zone_minutes, absoffset = -zone_minutes, -absoffset
            else:
                out += b"+"
            out += _append_int(zone_minutes // 60, 2)
            if std in (_ISO_COLON_TZ, _NUM_COLON_TZ, _ISO_COLON_SECONDS_TZ, _NUM_COLON_SECONDS_TZ):
                out += b":"
            if std not in (_NUM_SHORT_TZ, _ISO_SHORT_TZ):
                out += _append_int(zone_minutes % 60, 2)
            if std in (_ISO_SECONDS_TZ, _NUM_SECONDS_TZ, _NUM_COLON_SECONDS_TZ, _ISO_COLON_SECONDS_TZ):
                if std in (_NUM_COLON_SECONDS_TZ, _ISO_COLON_SECONDS_TZ):
                    out += b":"
                out += _append_int(absoffset - _trunc_div(absoffset, 60) * 60, 2)  # Go's %
        elif std == _TZ:
            if name:
                out += name.encode()
                continue
            zone_minutes = _trunc_div(offset, 60)
            if zone_minutes < 0:
                out += b"-"
                zone_minutes = -zone_minutes
            else:
                out += b"+"
            out += _append_int(zone_minutes // 60, 2) + _append_int(zone_minutes % 60, 2)
        elif std in (_FRAC0, _FRAC9):
            out += _append_nano(nsec, std, digits, sep)
    return out.decode("utf-8", "replace")


class _Bad(Exception):
    """Go's errBad inside `_parse`."""


def _leading_int(s: bytes) -> tuple[int, bytes]:
    """Go's `leadingInt`: the leading digits (at most 2^63), and the rest."""
    x = 0
    i = 0
    while i < len(s) and 0x30 <= s[i] <= 0x39:
        if x > (1 << 63) // 10:
            raise _Bad
        x = x * 10 + s[i] - 0x30
        if x > 1 << 63:
            raise _Bad
        i += 1
    return x, s[i:]


def _atoi(s: bytes) -> int:
    neg = False
    if s[:1] in (b"-", b"+"):
        neg = s[:1] == b"-"
        s = s[1:]
    x, rem = _leading_int(s)
    if rem:
        raise _Bad
    x = (x + _INT64) % 2**64 - _INT64  # Go's int(uint64)
    return -x if neg else x


def _getnum(s: bytes, fixed: bool) -> tuple[int, bytes]:
    if not _is_digit(s, 0):
        raise _Bad
    if not _is_digit(s, 1):
        if fixed:
            raise _Bad
        return s[0] - 0x30, s[1:]
    return (s[0] - 0x30) * 10 + s[1] - 0x30, s[2:]


def _getnum3(s: bytes, fixed: bool) -> tuple[int, bytes]:
    n = i = 0
    while i < 3 and _is_digit(s, i):
        n = n * 10 + s[i] - 0x30
        i += 1
    if i == 0 or (fixed and i != 3):
        raise _Bad
    return n, s[i:]


def _skip(value: bytes, prefix: bytes) -> bytes:
    while prefix:
        if prefix[0] == 0x20:
            if value and value[0] != 0x20:
                raise _Bad
            prefix = prefix.lstrip(b" ")
            value = value.lstrip(b" ")
            continue
        if not value or value[0] != prefix[0]:
            raise _Bad
        prefix, value = prefix[1:], value[1:]
    return value


def _lookup_name(table: tuple[bytes, ...], value: bytes) -> tuple[int, bytes]:
    for i, name in enumerate(table):
        if len(value) >= len(name) and all(
            a == b or ((a | 0x20) == (b | 0x20) and 0x61 <= (a | 0x20) <= 0x7A)
            for a, b in zip(value[: len(name)], name, strict=True)
        ):
            return i, value[len(name) :]
    raise _Bad


def _parse_nanoseconds(value: bytes, nbytes: int) -> tuple[int, bool]:
    """Go's `parseNanoseconds`: (ns, out of range)."""
    if value[0] not in (0x2E, 0x2C):
        raise _Bad
    if nbytes > 10:
        value, nbytes = value[:10], 10
    ns = _atoi(value[1:nbytes])
    if ns < 0:
        return ns, True
    return ns * 10 ** (10 - nbytes), False


def _parse_signed_offset(value: bytes) -> int:
    if value[:1] not in (b"-", b"+"):
        return 0
    try:
        x, rem = _leading_int(value[1:])
    except _Bad:
        return 0
    if rem == value[1:] or x > 23:
        return 0
    return len(value) - len(rem)


def _parse_time_zone(value: bytes) -> int:
    """Go's `parseTimeZone`: the length of the zone name at the start of `value`, or 0."""
    if len(value) < 3:
        return 0
    if value[:4] in (b"ChST", b"MeST"):
        return 4
    if value[:3] == b"GMT":
        return 3 if len(value) == 3 else 3 + _parse_signed_offset(value[3:])
    if value[0] in (0x2B, 0x2D):
        return _parse_signed_offset(value)
    upper = 0
    while upper < 6 and upper < len(value) and 0x41 <= value[upper] <= 0x5A:
        upper += 1
    if upper == 5 and value[4] == 0x54:
        return 5
    if upper == 4 and (value[3] == 0x54 or value[:4] == b"WITA"):
        return 4
    return 3 if upper == 3 else 0


def _parse(layout_text: str, value_text: str) -> tuple[int, int]:
    """Go's `time.Parse(layout, value)` with `time.Local` UTC: (Unix second, nanosecond)."""
    layout, value = _utf8(layout_text), _utf8(value_text)
    year, month, day, yday = 0, -1, -1, -1
    hour = minute = sec = nsec = 0
    utc = False
    zone_offset = -1
    zone_name = b""
    am = pm = False
    while True:
        prefix, std, digits, _, suffix = _next_std(layout)
        value = _skip(value, prefix)
        if std == 0:
            if value:
                raise _Bad
            break
        layout = suffix
        out_of_range = False
        if std == _YEAR:
            if len(value) < 2:
                raise _Bad
            p, value = value[:2], value[2:]
            year = _atoi(p)
            year += 1900 if year >= 69 else 2000
        elif std == _LONG_YEAR:
            if len(value) < 4 or not _is_digit(value, 0):
                raise _Bad
            p, value = value[:4], value[4:]
            year = _atoi(p)
        elif std in (_MONTH, _LONG_MONTH):
            month, value = _lookup_name(_SHORT_MONTHS if std == _MONTH else _LONG_MONTHS, value)
            month += 1
        elif std in (_NUM_MONTH, _ZERO_MONTH):
            month, value = _getnum(value, std == _ZERO_MONTH)
            out_of_range = not 0 < month <= 12
        elif std in (_WEEKDAY, _LONG_WEEKDAY):
            _, value = _lookup_name(_SHORT_DAYS if std == _WEEKDAY else _LONG_DAYS, value)
        elif std in (_DAY_STD, _UNDER_DAY, _ZERO_DAY):
            if std == _UNDER_DAY and value[:1] == b" ":
                value = value[1:]
            day, value = _getnum(value, std == _ZERO_DAY)
        elif std in (_UNDER_YEAR_DAY, _ZERO_YEAR_DAY):
            for _ in range(2):
                if std == _UNDER_YEAR_DAY and value[:1] == b" ":
                    value = value[1:]
            yday, value = _getnum3(value, std == _ZERO_YEAR_DAY)
        elif std == _HOUR:
            hour, value = _getnum(value, False)
            out_of_range = hour >= 24
        elif std in (_HOUR12, _ZERO_HOUR12):
            hour, value = _getnum(value, std == _ZERO_HOUR12)
            out_of_range = hour > 12
        elif std in (_MINUTE, _ZERO_MINUTE):
            minute, value = _getnum(value, std == _ZERO_MINUTE)
            out_of_range = minute >= 60
        elif std in (_SECOND, _ZERO_SECOND):
            sec, value = _getnum(value, std == _ZERO_SECOND)
            if sec >= 60:
                raise _Bad
            # a fractional second the layout does not ask for
            if len(value) >= 2 and value[0] in (0x2E, 0x2C) and _is_digit(value, 1):
                next_std = _next_std(layout)[1]
                if next_std not in (_FRAC0, _FRAC9):
                    n = 2
                    while n < len(value) and _is_digit(value, n):
                        n += 1
                    nsec, out_of_range = _parse_nanoseconds(value, n)
                    value = value[n:]
        elif std in (_PM, _pm):
            if len(value) < 2:
                raise _Bad
            p, value = value[:2], value[2:]
            if p == (b"PM" if std == _PM else b"pm"):
                pm = True
            elif p == (b"AM" if std == _PM else b"am"):
                am = True
            else:
                raise _Bad
        elif std in _ISO_TZS and value[:1] == b"Z":
            value = value[1:]
            utc = True
        elif std in _ISO_TZS or std in _NUM_TZS:
            if std in (_ISO_COLON_TZ, _NUM_COLON_TZ):
                if len(value) < 6 or value[3] != 0x3A:
                    raise _Bad
                sign, hh, mm, ss, value = value[:1], value[1:3], value[4:6], b"00", value[6:]
            elif std in (_NUM_SHORT_TZ, _ISO_SHORT_TZ):
                if len(value) < 3:
                    raise _Bad
                sign, hh, mm, ss, value = value[:1], value[1:3], b"00", b"00", value[3:]
            elif std in (_ISO_COLON_SECONDS_TZ, _NUM_COLON_SECONDS_TZ):
                if len(value) < 9 or value[3] != 0x3A or value[6] != 0x3A:
                    raise _Bad
                sign, hh, mm, ss, value = value[:1], value[1:3], value[4:6], value[7:9], value[9:]
            elif std in (_ISO_SECONDS_TZ, _NUM_SECONDS_TZ):
                if len(value) < 7:
                    raise _Bad
                sign, hh, mm, ss, value = value[:1], value[1:3], value[3:5], value[5:7], value[7:]
            else:
                if len(value) < 5:
                    raise _Bad
                sign, hh, mm, ss, value = value[:1], value[1:3], value[3:5], b"00", value[5:]
            hr, _ = _getnum(hh, True)
            mi, _ = _getnum(mm, True)
            se, _ = _getnum(ss, True)
            out_of_range = hr > 24 or mi > 60 or se > 60
            zone_offset = (hr * 60 + mi) * 60 + se
            if sign == b"-":
                zone_offset = -zone_offset
            elif sign != b"+":
                raise _Bad
        elif std == _TZ:
            if value[:3] == b"UTC":
                utc = True
                value = value[3:]
            else:
                n = _parse_time_zone(value)
                if n == 0:
                    raise _Bad
                zone_name, value = value[:n], value[n:]
        elif std == _FRAC0:
            ndigit = 1 + digits
            if len(value) < ndigit:
                raise _Bad
            nsec, out_of_range = _parse_nanoseconds(value, ndigit)
            value = value[ndigit:]
        elif std == _FRAC9 and len(value) >= 2 and value[0] in (0x2E, 0x2C) and _is_digit(value, 1):
            i = 0  # any number of digits, as the seconds' case takes them
            while i + 1 < len(value) and _is_digit(value, i + 1):
                i += 1
            nsec, out_of_range = _parse_nanoseconds(value, 1 + i)
            value = value[1 + i :]
        if out_of_range:
            raise _Bad
    if pm and hour < 12:
        hour += 12
    elif am and hour == 12:
        hour = 0
    if yday >= 0:
        m = d = 0
        if _leap(year):
            if yday == 31 + 29:
                m, d = 2, 29
            elif yday > 31 + 29:
                yday -= 1
        if yday < 1 or yday > 365:
            raise _Bad
        if m == 0:
            m = (yday - 1) // 31 + 1
            if _days_before(m + 1) < yday:
                m += 1
            d = yday - _days_before(m)
        if (month >= 0 and month != m) or (day >= 0 and day != d):
            raise _Bad
        month, day = m, d
    else:
        month = 1 if month < 0 else month
        day = 1 if day < 0 else day
    if day < 1 or day > _days_in(month, year):
        raise _Bad
    unix, nsec = _date_in(year, month, day, hour, minute, sec, nsec, None)
    if utc:
        return unix, nsec
    if zone_offset != -1:
        return unix - zone_offset, nsec
    if zone_name:
        # Go looks the abbreviation up in time.Local (UTC's has none but "UTC", handled above);
        # unknown, it labels the time with a made-up zone and leaves the instant as read in UTC
        # (`GMT+8` too: only the label gets the offset).
        _local()
    return unix, nsec


def _days_before(month: int) -> int:
    """Go's `daysBefore`: days in the months before `month` of a non-leap year."""
    return sum(_DAYS_IN[: month - 1])


# -- the built-ins -----------------------------------------------------------------------------


def parse_ns(layout: Any, value: Any) -> list[Any]:
    """OPA's `time.parse_ns`: Go's `time.Parse` (named layouts as OPA maps them)."""
    layout_text, value_text = _string(layout), _string(value)
    try:
        sec, nsec = _parse(_NAMED_LAYOUTS.get(layout_text, layout_text), value_text)
    except _Bad as e:
        raise _BuiltinError("cannot parse") from e
    return _safe_ns(sec, nsec)


def time_format(value: Any) -> list[Any]:
    """OPA's `time.format`: Go's `Time.Format`, RFC3339Nano by default."""
    ns, zone, layout = _tz_time(value)
    layout = _NAMED_LAYOUTS.get(layout, layout) if layout else _NAMED_LAYOUTS["RFC3339Nano"]
    return [True, _format(ns, zone, layout)]


def date(value: Any) -> list[Any]:
    ns, zone, _ = _tz_time(value)
    year, month, day = _fields(ns, zone)[:3]
    return [True, [year, month, day]]


def clock(value: Any) -> list[Any]:
    ns, zone, _ = _tz_time(value)
    return [True, list(_fields(ns, zone)[3:6])]


def weekday(value: Any) -> list[Any]:
    ns, zone, _ = _tz_time(value)
    return [True, _LONG_DAYS[(_fields(ns, zone)[9] + 4) % 7].decode()]


# Beyond these, Go's int arithmetic in `Date` may wrap; within them it is exact.
_MAX_ADD_YEARS = 10**9
_MAX_ADD_MONTHS = 12 * 10**9
_MAX_ADD_DAYS = 365 * 10**9


def add_date(value: Any, years: Any, months: Any, days: Any) -> list[Any]:
    """OPA's `time.add_date`: Go's `AddDate`, which normalises (Jan 31 + 1 month is Mar 2)."""
    ns, zone, _ = _tz_time(value)
    y, m, d = _int_operand(years), _int_operand(months), _int_operand(days)
    if abs(y) > _MAX_ADD_YEARS or abs(m) > _MAX_ADD_MONTHS or abs(d) > _MAX_ADD_DAYS:
        raise TimeUnsupportedError(
            f"time.add_date by {y} years, {m} months, {d} days: Go's arithmetic overflows; "
            "trustgate cannot reproduce OPA's answer"
        )
    year, month, day, hour, minute, sec, nsec, *_ = _fields(ns, zone)
    return _safe_ns(*_date_in(year + y, month + m, day + d, hour, minute, sec, nsec, zone))


def diff(first: Any, second: Any) -> list[Any]:
    """OPA's `time.diff` (icza/gox): [years, months, days, hours, minutes, seconds], in the
    first operand's zone."""
    ns1, zone, _ = _tz_time(first)
    ns2, _, _ = _tz_time(second)
    if ns1 > ns2:
        ns1, ns2 = ns2, ns1
    y1, m1, d1, h1, mi1, s1, *_ = _fields(ns1, zone)
    y2, m2, d2, h2, mi2, s2, *_ = _fields(ns2, zone)
    year, month, day, hour, minute, sec = y2 - y1, m2 - m1, d2 - d1, h2 - h1, mi2 - mi1, s2 - s1
    if sec < 0:
        sec, minute = sec + 60, minute - 1
    if minute < 0:
        minute, hour = minute + 60, hour - 1
    if hour < 0:
        hour, day = hour + 24, day - 1
    if day < 0:
        day, month = day + _days_in(m1, y1), month - 1
    if month < 0:
        month, year = month + 12, year - 1
    return [True, [year, month, day, hour, minute, sec]]


_GO_UNITS = {
    b"ns": 1,
    b"us": 1_000,
    "µs".encode(): 1_000,  # U+00B5 micro sign
    "μs".encode(): 1_000,  # U+03BC Greek mu
    b"ms": 1_000_000,
    b"s": _NS,
    b"m": 60 * _NS,
    b"h": 3600 * _NS,
}
# What OPA (1.20, topdown/durationparser) tries when Go's ParseDuration fails: a sign, then
# segments of `[0-9.]+` and a unit (`ms`, `us`, `µs`, `ns` or one letter a-z; not the Greek mu).
# A segment in days, weeks or years becomes hours, `ParseFloat(digits) * 24` (168, 8760) written
# by `strconv.FormatFloat(h, 'f', -1, 64)`, and Go's ParseDuration reads the rewritten text:
# `0.3d` is 7.199999999999999h, 25919999999999 ns (measured against OPA over 3,000 texts).
_OPA_SEGMENT = re.compile(r"([0-9.]+)(ms|us|µs|ns|[a-z])")
_OPA_HOURS = {"d": 24, "w": 168, "y": 8760}
_FLOAT = re.compile(r"[0-9]*\.?[0-9]*")


def _leading_fraction(s: bytes) -> tuple[int, float, bytes]:
    x, scale, i, overflow = 0, 1.0, 0, False
    while i < len(s) and 0x30 <= s[i] <= 0x39:
        if not overflow:
            if x > ((1 << 63) - 1) // 10:
                overflow = True
            else:
                y = x * 10 + s[i] - 0x30
                if y > 1 << 63:
                    overflow = True
                else:
                    x, scale = y, scale * 10
        i += 1
    return x, scale, s[i:]


def parse_duration_ns(value: Any) -> list[Any]:
    """OPA's `time.parse_duration_ns`: Go's `time.ParseDuration`, or where that fails the same
    syntax with OPA's units (`d`, `w`, `y` of 365 days)."""
    text = _utf8(_string(value))
    try:
        return [True, _parse_duration(text, _GO_UNITS)]
    except _BuiltinError:
        return [True, _parse_duration(_opa_hours(text.decode("utf-8")), _GO_UNITS)]


def _opa_hours(text: str) -> bytes:
    """`text` with each segment in days, weeks or years rewritten in hours as OPA does."""
    sign, body = (text[0], text[1:]) if text[:1] in ("-", "+") else ("", text)
    pos, out = 0, [sign]
    if not body:
        raise _BuiltinError("invalid duration")
    while pos < len(body):
        match = _OPA_SEGMENT.match(body, pos)
        if match is None:
            raise _BuiltinError("invalid duration")
        digits, unit = match.groups()
        pos = match.end()
        if unit not in _OPA_HOURS:
            out.append(digits + unit)
            continue
        if digits == "." or not _FLOAT.fullmatch(digits):
            raise _BuiltinError("invalid duration")  # Go's ParseFloat
        hours = float(digits) * _OPA_HOURS[unit]
        if not math.isfinite(hours):
            raise _BuiltinError("invalid duration")
        out.append(_format_float(hours) + "h")
    return "".join(out).encode()


def _format_float(x: float) -> str:
    """Go's `strconv.FormatFloat(x, 'f', -1, 64)`: the shortest digits, never an exponent."""
    text = repr(x)
    if "e" in text:
        text = format(decimal.Decimal(text), "f")
    return text.removesuffix(".0")


def _parse_duration(s: bytes, units: dict[bytes, int]) -> int:
    """Go's `time.ParseDuration` over `units`."""
    neg = False
    if s[:1] in (b"-", b"+"):
        neg, s = s[:1] == b"-", s[1:]
    if s == b"0":
        return 0
    if not s:
        raise _BuiltinError("invalid duration")
    total = 0
    while s:
        if not (s[0] == 0x2E or 0x30 <= s[0] <= 0x39):
            raise _BuiltinError("invalid duration")
        before = len(s)
        try:
            v, s = _leading_int(s)
        except _Bad as e:
            raise _BuiltinError("invalid duration") from e
        pre = before != len(s)
        f, scale, post = 0, 1.0, False
        if s[:1] == b".":
            s = s[1:]
            before = len(s)
            f, scale, s = _leading_fraction(s)
            post = before != len(s)
        if not pre and not post:
            raise _BuiltinError("invalid duration")
        i = 0
        while i < len(s) and not (s[i] == 0x2E or 0x30 <= s[i] <= 0x39):
            i += 1
        if i == 0:
            raise _BuiltinError("missing unit in duration")
        unit = units.get(s[:i])
        s = s[i:]
        if unit is None:
            raise _BuiltinError("unknown unit in duration")
        if v > (1 << 63) // unit:
            raise _BuiltinError("invalid duration")
        v *= unit
        if f > 0:
            v += int(float(f) * (float(unit) / scale))
            if v > 1 << 63:
                raise _BuiltinError("invalid duration")
        total += v
        if total > 1 << 63:
            raise _BuiltinError("invalid duration")
    if neg:
        return -total
    if total > (1 << 63) - 1:
        raise _BuiltinError("invalid duration")
    return total
