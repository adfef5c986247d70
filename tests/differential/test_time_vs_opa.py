"""OPA's time built-ins, call by call: trustgate's Go-semantics port (`_gotime`) against OPA.

Operands come from input, over generated layouts (every element of Go's layout language,
alone and combined, named layouts OPA maps), values made by formatting instants with those
layouts and then mangled (one-digit fields, unknown zone abbreviations, offsets, fractions),
every zone of the machine's tzdata at instants around its transitions, leap days, month ends,
both ends of int64 nanoseconds, and durations with OPA's units. A built-in error counts as
undefined (conftest, Gatekeeper); trustgate failing closed (exit 3) counts apart.
"""

from __future__ import annotations

import itertools
import random
import zoneinfo
from typing import Any

from test_builtins_vs_opa import _check, _compare, _opa

from trustgate.policy import _gotime

NS = 1_000_000_000
INT64 = 2**63

ELEMENTS = [
    "2006", "06", "Jan", "January", "01", "1", "Mon", "Monday", "2", "_2", "02", "__2", "002",
    "15", "3", "03", "4", "04", "5", "05", "PM", "pm", "MST", "Z0700", "Z07:00", "Z07", "Z070000",
    "Z07:00:00", "-0700", "-07:00", "-07", "-070000", "-07:00:00", ".0", ".000", ",000", ".999",
    ",999999999", ".000000000", ".9", "_2006", "Month", "Janet", "Mond",
]  # fmt: skip
NAMED = ["ANSIC", "UnixDate", "RubyDate", "RFC822", "RFC822Z", "RFC850", "RFC1123", "RFC1123Z", "RFC3339",
         "RFC3339Nano"]  # fmt: skip
LAYOUTS = [
    "2006-01-02", "2006-01-02 15:04 MST", "Monday 2006-01-02", "Mon Jan _2 15:04:05 2006",
    "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05.999999999Z07:00", "02/01/06 3:04PM",
    "2006-002", "2006 __2", "Jan 2, 2006 at 3:04pm (MST)", "15:04:05.000 -07:00:00", "20060102150405",
    "2006-01-02 15:04:05,000 Z070000", "2006-1-2", "3:04:05 pm", "2006-01-02T15:04:05-0700", "",
    "literal", "2006-01-02 15:04:05.999 MST", "06 Jan 2 15 MST -07", "January 2, 2006", "1/2/2006",
]  # fmt: skip
INSTANTS = [
    0, 1, -1, 999_999_999, 1_000_000_000, 1_709_251_199_999_999_999, 1_709_164_800_000_000_000,
    951_782_400_000_000_000, 4_107_542_400_000_000_000, -2_208_988_800_000_000_000,
    INT64 - 1, -INT64, 1_772_582_400_123_456_789, 1_136_214_245_000_000_000, 1_711_846_800_000_000_000,
]  # fmt: skip
ZONES = ["", "UTC", "Local", "America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe",
         "Pacific/Chatham", "America/St_Johns", "Africa/Monrovia", "Europe/Amsterdam", "Asia/Kathmandu",
         "EST5EDT", "Etc/GMT+5", "Etc/GMT-14", "posixrules", "Factory", "right/UTC", "America//New_York",
         "./UTC", "../zoneinfo/UTC", "/usr/share/zoneinfo/UTC", "Nowhere/City", "America", "utc",
         "zone.tab", "US/Pacific", "GMT", "Asia/Tehran", "America/Sao_Paulo"]  # fmt: skip


def _rng() -> random.Random:
    return random.Random(20261207)


def _layouts() -> list[str]:
    rng = _rng()
    out = [*LAYOUTS, *NAMED, *ELEMENTS]
    separators = ["-", " ", ":", "/", "T", "", ", ", "."]
    for _ in range(400):
        parts = rng.sample(ELEMENTS, rng.randint(1, 5))
        out.append("".join(p + rng.choice(separators) for p in parts).rstrip())
    return out


def _mangle(rng: random.Random, text: str) -> str:
    choice = rng.randrange(8)
    if choice == 0 and text:
        i = rng.randrange(len(text))
        return text[:i] + text[i + 1 :]
    if choice == 1:
        return text.replace("0", "", 1)
    if choice == 2:
        return text.replace(
            "UTC", rng.choice(["PST", "CEST", "GMT+3", "GMT-11", "ChST", "WITA", "XY", "+03"])
        )
    if choice == 3:
        return text.replace("Z", rng.choice(["+05:30", "-08:00", "+24:00", "+0100", "-00:00:01", "z"]))
    if choice == 4:
        return text + rng.choice([".5", ",123456789012", " ", "x"])
    if choice == 5:
        return text.lower()
    if choice == 6:
        return text.replace("2", "9", 1)
    return text


def test_parse_ns() -> None:
    """Go's time.Parse over layouts x values made by OPA's own time.format, mangled; the tester's."""
    rng = _rng()
    layouts = _layouts()
    formatter = _opa("time.format([input[0], input[1], input[2]])", 3)
    cases: list[list[Any]] = [
        ["2006-01-02", "2026-3-4"],
        ["2006-01-02", "2026-03-04"],
        ["2006-01-02 15:04 MST", "2026-03-04 00:00 PST"],
        ["2006-01-02 15:04 MST", "2026-03-04 00:00 UTC"],
        ["2006-01-02 15:04 MST", "2026-03-04 00:00 GMT+8"],
        ["Monday 2006-01-02", "Wednesday 2026-03-04"],
        ["Monday 2006-01-02", "Friday 2026-03-04"],
        ["2006-01-02", "2024-02-29"],
        ["2006-01-02", "2023-02-29"],
        ["2006-01-02", "1600-02-29"],
        ["2006-01-02", "1677-09-21"],
        ["2006-01-02", "1677-09-22"],
        ["2006-01-02", "2262-04-11"],
        ["2006-01-02", "2262-04-12"],
        ["2006-01-02", "0000-01-01"],
        ["RFC3339", "2026-03-04T00:00:00Z"],
        ["RFC3339", "2026-03-04T00:00:00.123456789123+01:00"],
        ["2006-01-02T15:04:05Z07:00", "2026-03-04T24:00:00Z"],
        ["15:04:05", "23:59:60"],
        ["3PM", "12AM"],
        ["3PM", "12PM"],
        ["3PM", "13PM"],
        ["2006-002", "2024-060"],
        ["2006-002", "2023-366"],
        ["2006-01-02 002", "2024-03-01 061"],
        ["2006.000", "2006.+12"],
        [1, "x"],
        ["2006", 1],
    ]
    for layout in layouts:
        for instant in rng.sample(INSTANTS, 3):
            kind, text = formatter([instant, rng.choice(["UTC", "America/New_York", "Asia/Kolkata"]), layout])
            if kind != "value":
                continue
            cases.append([layout, text])
            cases.append([layout, _mangle(rng, text)])
    _check(_compare("time.parse_ns", 2, cases))


def test_format() -> None:
    """Go's Time.Format over layouts x instants x zones (named zones print their abbreviation)."""
    rng = _rng()
    cases: list[list[Any]] = [
        [[0, "UTC", "RFC1123"]],
        [[0, "America/New_York", "MST"]],
        [[0, "America/New_York"]],
        [0],
        [1.5],
        [1e3],
        [[1.5, "UTC"]],
        [[]],
        [[0, 1]],
        [[0, "UTC", 1]],
        ["0"],
        [INT64 - 1],
        [-INT64],
    ]
    for layout in _layouts():
        cases.append([[rng.choice(INSTANTS), rng.choice(ZONES[:16]), layout]])
    for zone in ZONES:
        for layout in ["MST -07:00:00 Z07:00", "RFC1123", "2006-01-02T15:04:05.999999999Z07:00 MST"]:
            cases.extend([[[i, zone, layout]] for i in INSTANTS])
    _check(_compare("time.format", 1, cases))


def _zone_instants() -> list[list[Any]]:
    """Every zone of the machine's tzdata, at instants across its history and around 2262."""
    rng = _rng()
    base = [
        -INT64,
        INT64 - 1,
        -2_208_988_800 * NS,
        -1_500_000_000 * NS,
        0,
        1_700_000_000 * NS,
        9_000_000_000 * NS,
    ]
    cases = []
    for zone in sorted(zoneinfo.available_timezones()):
        for instant in base + [rng.randrange(-INT64, INT64) for _ in range(3)]:
            cases.append([[instant, zone, "2006-01-02 15:04:05 MST -07:00:00"]])
    return cases


def test_format_in_every_zone() -> None:
    _check(_compare("time.format", 1, _zone_instants()))


def test_date_clock_weekday() -> None:
    rng = _rng()
    operands: list[Any] = [0, -1, 1.5, "x", [], [0, 2], INT64 - 1, -INT64, [0, "Nowhere/City"]]
    operands += [[rng.randrange(-INT64, INT64), rng.choice(ZONES[:16])] for _ in range(300)]
    operands += [i for i in INSTANTS]
    cases = [[o] for o in operands]
    _check(
        _compare("time.date", 1, cases)
        + _compare("time.clock", 1, cases)
        + _compare("time.weekday", 1, cases)
    )


def test_zone_names_that_only_a_path_would_read() -> None:
    """Go's zone files are opened by name (`America/New_York/`: ENOTDIR) and its embedded copy
    is looked up by the exact name: a trailing `/` or `/.` is no zone, as in OPA."""
    names = [
        "UTC/",
        "America/New_York/",
        "America/New_York//",
        "Etc/UTC/.",
        "Etc/UTC/",
        "Europe/",
        "America/./New_York",
        "./America/New_York",
        "America//New_York",
        "Asia/Kolkata/",
        "America",
    ]
    cases = [[[1700000000123456789, z]] for z in names]
    _check(_compare("time.clock", 1, cases) + _compare("time.date", 1, cases))


def test_add_date() -> None:
    """Go's AddDate normalises (Jan 31 + 1 month is Mar 2), in the operand's zone."""
    rng = _rng()
    jan31 = 1_706_659_200 * NS  # 2024-01-31T00:00:00Z
    cases: list[list[Any]] = [
        [jan31, 0, 1, 0],
        [jan31, 1, 1, 0],
        [jan31, 0, -1, 0],
        [jan31, 0, 13, -400],
        [1_709_164_800 * NS, 1, 0, 0],  # 2024-02-29 + 1 year
        [0, 300, 0, 0],
        [0, -300, 0, 0],
        [0, 1.5, 0, 0],
        [0, 0, 0.5, 0],
        [0, 0, 0, "1"],
        [0, 2**63, 0, 0],
        [0, 10**12, 0, 0],
        [1.5, 0, 0, 0],
        [[jan31, "America/New_York"], 0, 1, 0],
        [[1_710_054_000 * NS, "America/New_York"], 0, 0, 1],  # across the DST change
        [[1_710_054_000 * NS, "America/New_York"], 0, 0, -1],
        [[1_730_613_600 * NS, "Europe/London"], 0, 0, 1],
        [INT64 - 1, 0, 0, 0],
        [-INT64, 0, 0, 0],
        [INT64 - 1, 0, 0, 1],
        [-INT64, 0, 0, -1],
    ]
    # local times that a DST change skips or repeats (Go's Date picks the offset in a set way)
    changes = [("America/New_York", 1_709_969_400), ("America/New_York", 1_730_525_400),
               ("Europe/London", 1_711_762_200), ("Australia/Lord_Howe", 1_712_415_600),
               ("Pacific/Apia", 1_325_239_200), ("America/Sao_Paulo", 1_541_300_400)]  # fmt: skip
    for (zone, change), quarter, days in itertools.product(changes, range(-12, 13), (-1, 1, 2)):
        cases.append([[(change + quarter * 900) * NS, zone], 0, 0, days])
    for _ in range(400):
        instant = rng.choice([rng.randrange(-INT64, INT64), rng.choice(INSTANTS)])
        zone = rng.choice(ZONES[:16])
        operand: Any = [instant, zone] if rng.random() < 0.5 else instant
        cases.append([operand, rng.randint(-300, 300), rng.randint(-40, 40), rng.randint(-800, 800)])
    _check(_compare("time.add_date", 4, cases))


def test_diff() -> None:
    rng = _rng()
    cases: list[list[Any]] = [[0, 0], [0, 1.5], ["a", 0], [[0, "Nowhere/City"], 0]]
    for _ in range(400):
        a, b = (rng.choice([rng.randrange(-INT64, INT64), rng.choice(INSTANTS)]) for _ in range(2))
        za, zb = rng.choice(ZONES[:16]), rng.choice(ZONES[:16])
        cases.append([[a, za], [b, zb]] if rng.random() < 0.7 else [a, b])
    _check(_compare("time.diff", 2, cases))


def test_parse_duration_ns() -> None:
    """OPA's units (Go's, and d, w, y) and Go's syntax, overflow and fractions."""
    rng = _rng()
    units = ["ns", "us", "µs", "μs", "ms", "s", "m", "h", "d", "w", "y", "D", "H", "x", "", "dd", "e"]
    numbers = ["0", "1", "1.5", ".5", "1.", "10", "106751", "106752", "9223372036854775807", "0.000000001",
               "2562047", "1.0000000001", "15250", "292", "293", "00", "9223372036854775808"]  # fmt: skip
    texts = ["1d", "", "0", "-0", "+0", "-", "+", "d", "1h 2m", "1_0s", "0x10s", "1..5s", "1d1μs", "1h1μs",
             "-9223372036854775808ns", "2562047h47m16.854775807s", "2562047h47m16.854775808s", "1d2h",
             "2h1d", "1d1d", "1w", "1y"]  # fmt: skip
    for _ in range(1500):
        pieces = [rng.choice(numbers) + rng.choice(units) for _ in range(rng.randint(1, 3))]
        texts.append(rng.choice(["", "-", "+"]) + "".join(pieces))
    _check(_compare("time.parse_duration_ns", 1, [[t] for t in texts] + [[1], [None]]))


def test_parse_duration_ns_fractional_days_weeks_years() -> None:
    """OPA rewrites `0.3d` as `7.199999999999999h` (a float64 product, shortest digits) for Go's
    ParseDuration: 25919999999999 ns, not 25920000000000; `106751.99116730064d` overflows."""
    rng = _rng()
    numbers = ["0.3", "0.7", "1.1", "2.3", "0.000001", "0.0000001", "106751.99116730064", "106751.9911673006",
               "106751.1", "106750.9", "15250.2", "292.4", "292.47", "0.33333333333333", "123456.789",
               "5.", ".5", "1e3", "1.2.3", ".", "9" * 400]  # fmt: skip
    texts = [n + u for n in numbers for u in ("d", "w", "y")]
    for _ in range(1500):
        pieces = [
            rng.choice(numbers) + rng.choice(["d", "w", "y", "h", "m", "s", "ms", "µs"]) for _ in range(2)
        ]
        texts.append(rng.choice(["", "-", "+"]) + "".join(pieces))
    _check(_compare("time.parse_duration_ns", 1, [[t] for t in texts]))


def test_layout_language_elements_round_trip_as_go() -> None:
    """Sanity of the port on its own (no OPA): every named layout formats and parses back."""
    for name, instant in itertools.product(NAMED, [i for i in INSTANTS if 0 <= i < 3 * 10**18]):
        text = _gotime.time_format([instant, "UTC", name])[1]
        again = _gotime.time_format([_gotime.parse_ns(name, text)[1], "UTC", name])[1]
        assert again == text, (name, instant)


def test_non_ascii_and_case() -> None:
    """Go compares bytes: month and day names case-insensitively in ASCII only, other scripts'
    digits are not digits, a layout's non-ASCII text is literal."""
    layouts = ["2006年01月02日", "Jan 2006", "Monday", "2006-01-02é", "é 2006", "MST", "Z07:00", ".999",
               "2006-01-02 MST", "05.000", "05,9", "15:04:05.99"]  # fmt: skip
    values = ["2026年03月04日", "JAN 2026", "jan 2026", "Jän 2026", "MONDAY", "monday", "Mondays", "é 2026",
              "2026-03-04é", "ABCDE", "ABCDT", "WITA", "ChST", "GMT+23", "GMT+24", "GMT-0", "+03", "-1", "Z",
              "z", "+24:00", "2026-03-04 ٣", "12:00:00.٣", ".123", "05.1234567891", "05,5",
              "15:04:05.1"]  # fmt: skip
    _check(
        _compare("time.parse_ns", 2, [[layout, v] for layout in layouts for v in values])
        + _compare(
            "time.format", 1, [[[10**18 + 123_456_789, z, f]] for f in layouts for z in ["UTC", "Asia/Tokyo"]]
        )
    )
