"""`json.dumps(value, indent=2)`, byte for byte, at about twice its speed.

The standard library's C encoder does not indent, so `indent=2` runs the
pure-Python one, whose generators cost more than the strings they make: for a
10,000-document report that is most of the time spent writing it. This writer
walks the value itself and leaves the strings to the C escaper
(`encode_basestring_ascii`, what `json.dumps` uses under the default
`ensure_ascii=True`). Anything outside the JSON types the writers produce
(a non-string key, an unknown type, a cycle) goes to `json.dumps`, so the
output and the errors stay the standard library's.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii  # the C escaper where it is built
from typing import Any

_quote = encode_basestring_ascii
_INFINITY = float("inf")


class _Unhandled(Exception):
    """A value this writer leaves to `json.dumps`."""


def dumps(value: Any) -> str:
    """The same text as `json.dumps(value, indent=2)`."""
    out: list[str] = []
    try:
        _write(value, "", out)
    except (_Unhandled, RecursionError):
        return json.dumps(value, indent=2)
    return "".join(out)


def _write(value: Any, pad: str, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = pad + "  "
        sep = "{\n" + inner
        for key, item in value.items():
            if key.__class__ is not str:
                raise _Unhandled  # json.dumps turns 1, True, None keys into strings
            out.append(sep + _quote(key) + ": ")
            sep = ",\n" + inner
            cls = item.__class__
            if cls is str:  # the common leaves, without a call
                out.append(_quote(item))
            elif cls is int:
                out.append(int.__repr__(item))
            elif cls is bool:
                out.append("true" if item else "false")
            elif item is None:
                out.append("null")
            else:
                _write(item, inner, out)
        out.append("\n" + pad + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = pad + "  "
        sep = "[\n" + inner
        for item in value:
            out.append(sep)
            sep = ",\n" + inner
            if item.__class__ is str:
                out.append(_quote(item))
            else:
                _write(item, inner, out)
        out.append("\n" + pad + "]")
    elif isinstance(value, str):
        out.append(_quote(value))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float(value))
    else:
        raise _Unhandled


def _float(value: float) -> str:
    # json.encoder's floatstr under the default allow_nan=True
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)
