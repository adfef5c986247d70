"""The text of the JSON reports (JSON, SARIF): `json.dumps(value, indent=2)`, written by orjson.

The standard library's C encoder does not indent, so `json.dumps(value,
indent=2)` runs its pure-Python encoder, most of the time it takes to write a
large report. orjson (Rust) writes the same text several times faster once
the characters it leaves as they are (beyond ASCII, and DEL) are escaped as
`json.dumps` escapes them, `\\u00e9`, so that a report is safe in any terminal's
encoding (checked over every code point and generated values by
`tests/unit/report/test_indented_json.py`). It differs only in:

- floats below 1e-4 or from 1e16 on, which orjson writes with its own
  exponents (`0.00001`, `1e-7`; Python `1e-05`, `1e-07`): the same numbers to
  a JSON reader; durations are rounded to milliseconds and never get there;
- NaN and infinities, which orjson writes as `null` where `json.dumps` writes
  `NaN`, which is not JSON.

A value orjson refuses (a string that is not Unicode text, an integer beyond
64 bits, a key that is not a string, nesting deeper than 255) is written by
`json.dumps` itself, with its text and its errors.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# What orjson leaves as it is and json.dumps escapes: U+007F and up. Written as a negated
# ASCII class, which compiles in microseconds where `[\x7f-\U0010ffff]` takes ~5 ms at start-up.
_UNESCAPED = re.compile("[^\x00-\x7e]")


def dumps(value: Any) -> str:
    """`value` as indented, ASCII-only JSON text (the module's docstring says where it may differ)."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, indent=2)
    if text.isascii() and "\x7f" not in text:  # two scans in C, where the pattern's is ~4 ms a MB
        return text
    return _UNESCAPED.sub(_escape, text)  # outside strings JSON is ASCII: only strings change


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # as a UTF-16 surrogate pair, as json.dumps writes it
    return f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}"
