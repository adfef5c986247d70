"""Go's strconv.ParseFloat(s, 64), shared by the CEL conversions (`cel`) and the Rego built-ins
(`_gobuiltins`), which both ask whether Go reads a string as a float; and strconv.Quote.

A port of Go's strconv/atof.go (`special`, `readFloat`) and atoi.go (`underscoreOK`): decimal
or hexadecimal (`0x`, a `p` exponent required) notation, an optional sign, `_` between digits
(or after a base prefix) anywhere in the number (atof_test.go: `1_23.50_0_0e+1_2` is
`1.235e+14`), and `inf`, `infinity` (signed) and `nan` in any case. Left out: the other bit
size (ParseFloat(s, 32)), which neither caller uses.
"""

from __future__ import annotations

import re

__all__ = ["float_syntax", "go_quote", "parse_float", "underscore_ok"]

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEXADECIMAL = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")


def underscore_ok(text: str) -> bool:
    """strconv's underscoreOK: each `_` between digits, or between a base prefix and a digit."""
    saw, i = "^", 0  # the last class seen: ^ start, 0 digit or base prefix, _ underscore, ! other
    if text[:1] in ("+", "-") and text:
        text = text[1:]
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        i, saw, hexadecimal = 2, "0", text[1].lower() == "x"
    for c in text[i:]:
        if "0" <= c <= "9" or (hexadecimal and "a" <= c.lower() <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def _special(text: str) -> float | None:
    """atof.go's special: `inf`, `infinity` with an optional sign, `nan` without one; any case."""
    lowered = text.lower()
    body = lowered[1:] if lowered[:1] in ("+", "-") else lowered
    if body in ("inf", "infinity"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == "nan":
        return float("nan")
    return None


def float_syntax(text: str) -> bool:
    """Whether readFloat reads all of `text` as a number (the special values aside), whatever
    its range."""
    plain = text.replace("_", "")
    if not (_DECIMAL.fullmatch(plain) or _HEXADECIMAL.fullmatch(plain)):
        return False
    return "_" not in text or underscore_ok(text)


def parse_float(text: str) -> float:
    """strconv.ParseFloat(text, 64).

    Raises:
        ValueError: Go's ErrSyntax, or ErrRange (a finite number beyond the float64 range,
            which Go rounds to an infinity and reports).
    """
    special = _special(text)
    if special is not None:
        return special
    if not float_syntax(text):
        raise ValueError(f"strconv.ParseFloat: parsing {text!r}: invalid syntax")
    plain = text.replace("_", "")
    try:
        value = float(plain) if _DECIMAL.fullmatch(plain) else float.fromhex(plain)
    except OverflowError:
        value = float("inf")
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"strconv.ParseFloat: parsing {text!r}: value out of range")
    return value


def go_quote(text: str) -> str:
    """Go's strconv.Quote (`%q`)."""
    out = ['"']
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in named:
            out.append(named[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out) + '"'
