"""OPA's `sprintf`: Go's `fmt.Sprintf` over the arguments as OPA converts them.

Owns: formatting a Rego `sprintf` call exactly as OPA (v1.20, conftest,
Gatekeeper) does when regorus' own `sprintf` would answer differently or
raise: a verb/argument count mismatch (`%!v(MISSING)`, `%!(EXTRA int64=1)`),
a verb that does not fit its argument (`%!d(float64=2.5)`, `%!s(int64=1)`),
flags, width, precision, argument indexes, and composite values printed as
OPA prints terms (`set()`, sorted keys, `strconv.Quote`d strings). Leaves out:
deciding when it is needed (`_normalise`, which keeps regorus' `sprintf` on
the plain path) and registering it on an engine (`rego`, `engine`).

OPA hands `fmt.Sprintf` an `int64` for an integer (a `*big.Int` beyond
int64), a `float64` for a number with a fraction, the number's text for one
written with an exponent and no point (`1e-07`), a Go `string` for a string,
and the term's text (`true`, `null`, `[1, "a"]`) for anything else. regorus
gives Python an `int` for every integral number, so a float such as `1e+16`
is an int here and is printed as one (OPA keeps the text it was parsed from).
"""

from __future__ import annotations

import functools
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_INT64 = range(-(2**63), 2**63)
_TOO_LARGE = 1_000_000  # Go's fmt: larger widths, precisions and indexes are malformed


@dataclass(frozen=True, slots=True)
class _Arg:
    kind: str  # the Go type: "int64", "*big.Int", "float64", "string"
    value: Any


def _arg(value: Any) -> _Arg:
    """The Go value OPA's `builtinSprintf` passes for a Rego value."""
    if isinstance(value, str):
        return _Arg("string", value)
    if isinstance(value, bool) or value is None or not isinstance(value, (int, float)):
        return _Arg("string", term(value))
    if isinstance(value, int):
        return _Arg("int64" if value in _INT64 else "*big.Int", value)
    text = repr(value)  # the text OPA parsed: JSON as Python writes it
    if "." in text and math.isfinite(value):
        return _Arg("float64", _opa_float64(value))
    return _Arg("string", text)


def _opa_float64(value: float) -> float:
    """The float64 OPA prints for an arithmetic result trustgate holds as the neighbour of
    that float64 (`_gonumbers._as_float64`: `1 - 0.9` is held as 0.10000000000000002, OPA
    prints 0.1): a neighbour of up to 15 significant digits."""
    if len(repr(value).lstrip("-").split("e")[0].replace(".", "").strip("0")) <= 15:
        return value
    for neighbour in (math.nextafter(value, -math.inf), math.nextafter(value, math.inf)):
        if len(repr(neighbour).lstrip("-").split("e")[0].replace(".", "").strip("0")) <= 15:
            return neighbour
    return value


def term(value: Any) -> str:
    """`value` as OPA prints a term (`ast.Value.String()`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(term(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=_Order)
        return "{" + ", ".join(f"{term(k)}: {term(value[k])}" for k in keys) + "}"
    if isinstance(value, (set, frozenset)):
        if not value:
            return "set()"
        return "{" + ", ".join(term(v) for v in sorted(value, key=_Order)) + "}"
    return str(value)


class _Order:
    """OPA's `ast.Compare`: null < booleans < numbers < strings < arrays < objects < sets."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Order) -> bool:
        return _compare(self.value, other.value) < 0


def _rank(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, (int, float)):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, (list, tuple)):
        return 6
    if isinstance(value, dict):
        return 7
    return 8


def _compare(a: Any, b: Any) -> int:
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra in (1, 2, 3):
        return int(a > b) - int(a < b)
    if ra == 0:
        return 0
    if ra == 7:
        ka, kb = sorted(a, key=_Order), sorted(b, key=_Order)
        for x, y in zip(ka, kb, strict=False):
            c = _compare(x, y) or _compare(a[x], b[y])
            if c:
                return c
        return (len(ka) > len(kb)) - (len(ka) < len(kb))
    xs = list(a) if ra == 6 else sorted(a, key=_Order)
    ys = list(b) if ra == 6 else sorted(b, key=_Order)
    for x, y in zip(xs, ys, strict=False):
        c = _compare(x, y)
        if c:
            return c
    return (len(xs) > len(ys)) - (len(xs) < len(ys))


_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v"}


def _quote(s: str, *, ascii_only: bool = False) -> str:
    """Go's `strconv.Quote` (`QuoteToASCII` with `ascii_only`)."""
    if s.isascii() and s.isprintable():
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable() and not (ascii_only and ord(ch) >= 0x80):
            out.append(ch)
        else:
            out.append(_escape(ch))
    out.append('"')
    return "".join(out)


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    n = ord(ch)
    if n < 0x20 or n == 0x7F:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


@dataclass(slots=True)
class _Flags:
    plus: bool = False
    minus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    plus_v: bool = False
    sharp_v: bool = False
    wid: int = 0
    wid_present: bool = False
    prec: int = 0
    prec_present: bool = False


class _Printer:
    """A port of the parts of Go's `fmt.pp` that OPA's argument types reach."""

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.f = _Flags()

    # -- padding (fmt/format.go) --

    def padding(self, n: int) -> str:
        if n <= 0:
            return ""
        return ("0" if self.f.zero and not self.f.minus else " ") * n

    def pad(self, s: str) -> None:
        if not self.f.wid_present or self.f.wid == 0:
            self.buf.append(s)
            return
        fill = self.padding(self.f.wid - len(s))
        self.buf.append(s + fill if self.f.minus else fill + s)

    # -- strings --

    def fmt_s(self, s: str) -> None:
        if self.f.prec_present:
            s = s[: self.f.prec]
        self.pad(s)

    def fmt_sx(self, s: str, upper: bool) -> None:
        data = s.encode("utf-8")
        if self.f.prec_present:
            data = data[: self.f.prec]
        digits = "0123456789ABCDEF" if upper else "0123456789abcdef"
        prefix = ("0X" if upper else "0x") if self.f.sharp else ""
        parts = []
        for i, b in enumerate(data):
            if self.f.space and i > 0:
                parts.append(" ")
            if self.f.space or i == 0:
                parts.append(prefix)
            parts.append(digits[b >> 4] + digits[b & 0xF])
        text = "".join(parts)
        if not data:
            text = ""
        self.pad(text)  # Go's fmtSbx pads with writePadding: zeros under the `0` flag

    def fmt_q(self, s: str) -> None:
        if self.f.prec_present:
            s = s[: self.f.prec]
        if self.f.sharp and "`" not in s and all(c == "\t" or (c.isprintable() and c != "\ufeff") for c in s):
            self.pad("`" + s + "`")
            return
        self.pad(_quote(s, ascii_only=self.f.plus))

    def fmt_string(self, arg: _Arg, verb: str) -> None:
        s = str(arg.value)
        if verb == "v":
            if self.f.sharp_v:
                self.fmt_q(s)
            else:
                self.fmt_s(s)
        elif verb == "s":
            self.fmt_s(s)
        elif verb in "xX":
            self.fmt_sx(s, verb == "X")
        elif verb == "q":
            self.fmt_q(s)
        else:
            self.bad_verb(arg, verb)

    # -- integers --

    def fmt_integer(self, u: int, base: int, verb: str, upper: bool = False) -> None:
        f = self.f
        negative = u < 0
        u = abs(u)
        prec = 0
        if f.prec_present:
            prec = f.prec
            if prec == 0 and u == 0:
                zero, f.zero = f.zero, False
                self.buf.append(self.padding(f.wid))
                f.zero = zero
                return
        elif f.zero and not f.minus and f.wid_present:
            prec = f.wid
            if negative or f.plus or f.space:
                prec -= 1
        digits = _to_base(u, base)
        if upper:
            digits = digits.upper()
        digits = "0" * (prec - len(digits)) + digits
        if f.sharp:
            if base == 2:
                digits = "0b" + digits
            elif base == 8 and not digits.startswith("0"):
                digits = "0" + digits
            elif base == 16:
                digits = ("0X" if upper else "0x") + digits
        if verb == "O":
            digits = "0o" + digits
        if negative:
            digits = "-" + digits
        elif f.plus:
            digits = "+" + digits
        elif f.space:
            digits = " " + digits
        zero, f.zero = f.zero, False
        self.pad(digits)
        f.zero = zero

    def fmt_int64(self, arg: _Arg, verb: str) -> None:
        v = int(arg.value)
        if verb in "vd":
            self.fmt_integer(v, 10, verb)
        elif verb == "b":
            self.fmt_integer(v, 2, verb)
        elif verb in "oO":
            self.fmt_integer(v, 8, verb)
        elif verb in "xX":
            self.fmt_integer(v, 16, verb, upper=verb == "X")
        elif verb == "c":
            self.fmt_c(v)
        elif verb == "q":
            self.fmt_qc(v)
        elif verb == "U":
            self.fmt_unicode(v)
        else:
            self.bad_verb(arg, verb)

    def _rune(self, v: int) -> str:
        u = v & 0xFFFFFFFFFFFFFFFF  # Go converts through uint64
        if u > 0x10FFFF or 0xD800 <= u <= 0xDFFF:
            return "\ufffd"
        return chr(u)

    def fmt_c(self, v: int) -> None:
        self.pad(self._rune(v))  # zero-padded, as Go pads every string-like value

    def fmt_qc(self, v: int) -> None:
        r = self._rune(v)
        if self.f.sharp and r.isprintable() and r != "'":
            text = "'" + r + "'"
        elif r == "'":
            text = "'\\''"
        elif r == '"':
            text = "'\"'"
        elif r == "\\":
            text = "'\\\\'"
        elif r.isprintable() and not (self.f.plus and ord(r) >= 0x80):
            text = "'" + r + "'"
        else:
            text = "'" + _escape(r) + "'"
        self.pad(text)

    def fmt_unicode(self, v: int) -> None:
        u = v & 0xFFFFFFFFFFFFFFFF
        prec = 4
        if self.f.prec_present and self.f.prec > 4:
            prec = self.f.prec
        text = "U+" + f"{u:X}".rjust(prec, "0")
        if self.f.sharp and u <= 0x10FFFF and chr(u).isprintable():
            text += " '" + chr(u) + "'"
        zero, self.f.zero = self.f.zero, False
        self.pad(text)
        self.f.zero = zero

    def fmt_big(self, arg: _Arg, verb: str) -> None:
        """math/big's `(*Int).Format`."""
        x = int(arg.value)
        bases = {"b": 2, "o": 8, "O": 8, "d": 10, "s": 10, "v": 10, "x": 16, "X": 16}
        if verb not in bases:
            self.buf.append(f"%!{verb}(big.Int={x})")
            return
        f = self.f
        plus, sharp = f.plus or f.plus_v, f.sharp or f.sharp_v
        sign = "-" if x < 0 else "+" if plus else " " if f.space else ""
        prefix = ""
        if sharp:
            prefix = {"b": "0b", "o": "0", "x": "0x", "X": "0X"}.get(verb, "")
        if verb == "O":
            prefix = "0o"
        digits = _to_base(abs(x), bases[verb])
        if verb == "X":
            digits = digits.upper()
        zeros = left = right = 0
        if f.prec_present:
            if len(digits) < f.prec:
                zeros = f.prec - len(digits)
            elif digits == "0" and f.prec == 0:
                return
        length = len(sign) + len(prefix) + zeros + len(digits)
        if f.wid_present and length < f.wid:
            d = f.wid - length
            if f.minus:
                right = d
            elif f.zero and not f.prec_present:
                zeros = d
            else:
                left = d
        self.buf.append(" " * left + sign + prefix + "0" * zeros + digits + " " * right)

    # -- floats --

    def fmt_float(self, arg: _Arg, verb: str) -> None:
        v = float(arg.value)
        if verb == "v":
            self.fmt_float_as(v, "g", -1)
        elif verb in "bgGxX":
            self.fmt_float_as(v, verb, -1)
        elif verb in "feEF":
            self.fmt_float_as(v, verb, 6)
        else:
            self.bad_verb(arg, verb)

    def fmt_float_as(self, v: float, verb: str, prec: int) -> None:
        f = self.f
        if f.prec_present:
            prec = f.prec
        num = _format_float(v, verb, prec)
        num = num if num[0] in "+-" else "+" + num
        if f.space and num[0] == "+" and not f.plus:
            num = " " + num[1:]
        if f.sharp and verb != "b":
            num = _sharp_float(num, verb, prec)
        if f.plus or num[0] != "+":
            if f.zero and not f.minus and f.wid_present and f.wid > len(num):
                self.buf.append(num[0] + self.padding(f.wid - len(num)) + num[1:])
                return
            self.pad(num)
            return
        self.pad(num[1:])

    # -- dispatch (fmt/print.go) --

    def bad_verb(self, arg: _Arg, verb: str) -> None:
        self.buf.append(f"%!{verb}({arg.kind}=")
        self.print_arg(arg, "v")
        self.buf.append(")")

    def print_arg(self, arg: _Arg, verb: str) -> None:
        if verb == "T":
            self.fmt_s(arg.kind)
            return
        if verb == "p":
            self.bad_verb(arg, verb)
            return
        if arg.kind == "string":
            self.fmt_string(arg, verb)
        elif arg.kind == "int64":
            self.fmt_int64(arg, verb)
        elif arg.kind == "float64":
            self.fmt_float(arg, verb)
        else:
            self.fmt_big(arg, verb)


def _to_base(u: int, base: int) -> str:
    if base == 10:
        return str(u)
    if base == 16:
        return f"{u:x}"
    if base == 8:
        return f"{u:o}"
    return f"{u:b}"


def _format_float(v: float, verb: str, prec: int) -> str:
    """Go's `strconv.FormatFloat(v, verb, prec, 64)`."""
    if verb in "gG":
        if prec < 0:
            return _shortest_g(v, upper=verb == "G")
        return ("%." + str(max(prec, 1)) + verb) % v if prec else ("%.1" + verb) % v
    if verb in "eEfF":
        return ("%." + str(prec) + verb.lower() if verb == "F" else "%." + str(prec) + verb) % v
    if verb == "b":
        bits = struct.unpack(">Q", struct.pack(">d", v))[0]
        exp = (bits >> 52) & 0x7FF
        mant = bits & ((1 << 52) - 1)
        if exp == 0:
            exp = 1
        else:
            mant |= 1 << 52
        exp += -1023 - 52
        return ("-" if bits >> 63 else "") + f"{mant}p{'+' if exp >= 0 else ''}{exp}"
    return _hex_float(v, prec, upper=verb == "X")


def _shortest_g(v: float, *, upper: bool) -> str:
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    mantissa, _, exponent = repr(abs(v)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    dp = len(whole) + (int(exponent) if exponent else 0)
    if whole == "0":
        dp = -(len(frac) - len(frac.lstrip("0"))) + (int(exponent) if exponent else 0)
    digits = digits.rstrip("0") or "0"
    if v == 0:
        return sign + "0"
    exp = dp - 1
    if exp < -4 or exp >= 6:  # strconv: shortest 'g' switches to %e with eprec 6
        e = "E" if upper else "e"
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}{e}{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return sign + "0." + "0" * (-dp) + digits
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return sign + digits[:dp] + "." + digits[dp:]


def _hex_float(v: float, prec: int, *, upper: bool) -> str:
    """strconv's `fmtX` (`%x` of a float): the leading digit is 1, rounding half to even."""
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    v = abs(v)
    mant, exp = 0, 0
    if v != 0:
        m, e = math.frexp(v)  # v = m * 2**e, 0.5 <= m < 1: the leading 1 is at bit 1<<60
        mant, exp = int(m * (1 << 61)), e - 1
    if 0 <= prec < 15:
        shift = prec * 4
        extra = (mant << shift) & ((1 << 60) - 1)
        mant >>= 60 - shift
        if extra | (mant & 1) > 1 << 59:
            mant += 1
        mant <<= 60 - shift
        if mant & (1 << 61):  # rounded up past the leading digit
            mant >>= 1
            exp += 1
    digits = []
    frac = (mant << 4) & ((1 << 64) - 1)  # without the leading digit
    if prec < 0 and frac:
        while frac:
            digits.append("0123456789abcdef"[(frac >> 60) & 15])
            frac = (frac << 4) & ((1 << 64) - 1)
    elif prec > 0:
        for _ in range(prec):
            digits.append("0123456789abcdef"[(frac >> 60) & 15])
            frac = (frac << 4) & ((1 << 64) - 1)
    body = f"0x{(mant >> 60) & 1}" + ("." + "".join(digits) if digits else "")
    body += f"p{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return sign + (body.upper() if upper else body)


def _sharp_float(num: str, verb: str, prec: int) -> str:
    """Go's `#` flag on floats: always a decimal point; %g keeps trailing zeros."""
    digits = 0
    if verb in "vgGx":
        digits = 6 if prec == -1 else prec
    tail = ""
    body = num
    m = re.search(r"[pP]|[eE](?=[+-])", num[1:]) if verb not in "xX" else re.search(r"[pP]", num[1:])
    if m:
        body, tail = num[: m.start() + 1], num[m.start() + 1 :]
    saw_nonzero = False
    for ch in body[1:]:
        if ch == ".":
            continue
        if ch != "0":
            saw_nonzero = True
        if saw_nonzero:
            digits -= 1
    if "." not in body:
        if len(body) == 2 and body[1] == "0":
            digits -= 1
        body += "."
    return body + "0" * max(digits, 0) + tail


def _parsenum(s: str, start: int, end: int) -> tuple[int, bool, int]:
    num, isnum, i = 0, False, start
    if start >= end:
        return 0, False, end
    while i < end and "0" <= s[i] <= "9":
        if num > _TOO_LARGE:
            return 0, False, end
        num = num * 10 + int(s[i])
        isnum = True
        i += 1
    return num, isnum, i


@functools.lru_cache(maxsize=512)
def _simple_pieces(format: str) -> tuple[str, ...] | None:
    """`format` split into text and verbs when every verb is a bare %s, %v, %q, %d or %%."""
    pieces = _VERB.split(format)  # text, verb, text, verb, ..., text
    if any(v not in "svqd%" for v in pieces[1::2]) or "%" in pieces[-1]:  # a trailing lone %
        return None
    return tuple(pieces)


def _simple(format: str, values: Sequence[Any]) -> str | None:
    """The common case, fast: bare verbs over strings and int64s, one argument each."""
    pieces = _simple_pieces(format)
    if pieces is None or sum(1 for v in pieces[1::2] if v != "%") != len(values):
        return None
    out = [pieces[0]]
    args = iter(values)
    for verb, text in zip(pieces[1::2], pieces[2::2], strict=True):
        if verb == "%":
            out.append("%")
        else:
            value = next(args)
            if isinstance(value, str) and verb != "d":
                out.append(_quote(value) if verb == "q" else value)
            elif type(value) is int and verb in "vd" and value in _INT64:
                out.append(str(value))
            else:
                return None
        out.append(text)
    return "".join(out)


_VERB = re.compile(r"%(.)", re.DOTALL)


def sprintf(format: str, values: Sequence[Any]) -> str:
    """`sprintf(format, values)` as OPA answers it (Go's `fmt.Sprintf`, `fmt/print.go` `doPrintf`).

    Args:
        format: the format string.
        values: the Rego array of arguments, as regorus hands it to Python.

    Returns:
        The formatted string, Go's `%!verb(type=value)`, `%!v(MISSING)`,
        `%!(EXTRA …)`, `%!(NOVERB)`, `%!(BADWIDTH)`, `%!v(BADINDEX)` included.
    """
    fast = _simple(format, values)
    if fast is not None:
        return fast
    args = [_arg(v) for v in values]
    p = _Printer()
    f = p.f
    end = len(format)
    arg_num = 0
    reordered = False
    i = 0

    def arg_number(arg_num: int, i: int) -> tuple[int, int, bool, bool]:
        """(argNum, i, found, good): Go's `argNumber`."""
        nonlocal reordered
        if i >= end or format[i] != "[":
            return arg_num, i, False, True
        reordered = True
        close = format.find("]", i + 1)
        if end - i < 3 or close < 0:
            return arg_num, i + 1, False, False
        n, ok, newi = _parsenum(format, i + 1, close)
        if not ok or newi != close:
            return arg_num, close + 1, False, False
        if 0 <= n - 1 < len(args):
            return n - 1, close + 1, True, True
        return arg_num, close + 1, True, False

    def int_from_arg(arg_num: int) -> tuple[int, bool, int]:
        if arg_num < len(args):
            a = args[arg_num]
            if a.kind == "int64" and -_TOO_LARGE <= a.value <= _TOO_LARGE:
                return int(a.value), True, arg_num + 1
            return 0, False, arg_num + 1
        return 0, False, arg_num

    while i < end:
        good = True
        j = format.find("%", i)
        j = end if j < 0 else j
        p.buf.append(format[i:j])
        i = j
        if i >= end:
            break
        i += 1
        p.f = f = _Flags()
        simple = False
        while i < end:
            c = format[i]
            if c == "#":
                f.sharp = True
            elif c == "0":
                f.zero = not f.minus
            elif c == "+":
                f.plus = True
            elif c == "-":
                f.minus, f.zero = True, False
            elif c == " ":
                f.space = True
            else:
                if "a" <= c <= "z" and arg_num < len(args):
                    if c == "v":
                        f.sharp_v, f.sharp = f.sharp, False
                        f.plus_v, f.plus = f.plus, False
                    p.print_arg(args[arg_num], c)
                    arg_num += 1
                    i += 1
                    simple = True
                break
            i += 1
        if simple:
            continue
        arg_num, i, after_index, ok = arg_number(arg_num, i)
        good = good and ok
        if i < end and format[i] == "*":
            i += 1
            f.wid, f.wid_present, arg_num = int_from_arg(arg_num)
            if not f.wid_present:
                p.buf.append("%!(BADWIDTH)")
            if f.wid < 0:
                f.wid, f.minus, f.zero = -f.wid, True, False
            after_index = False
        else:
            f.wid, f.wid_present, i = _parsenum(format, i, end)
            if after_index and f.wid_present:
                good = False
        if i + 1 < end and format[i] == ".":
            i += 1
            if after_index:
                good = False
            arg_num, i, after_index, ok = arg_number(arg_num, i)
            good = good and ok
            if i < end and format[i] == "*":
                i += 1
                f.prec, f.prec_present, arg_num = int_from_arg(arg_num)
                if f.prec < 0:
                    f.prec, f.prec_present = 0, False
                if not f.prec_present:
                    p.buf.append("%!(BADPREC)")
                after_index = False
            else:
                f.prec, f.prec_present, i = _parsenum(format, i, end)
                if not f.prec_present:
                    f.prec, f.prec_present = 0, True
        if not after_index:
            arg_num, i, after_index, ok = arg_number(arg_num, i)
            good = good and ok
        if i >= end:
            p.buf.append("%!(NOVERB)")
            break
        verb = format[i]
        i += 1
        if verb == "%":
            p.buf.append("%")
        elif not good:
            p.buf.append(f"%!{verb}(BADINDEX)")
        elif arg_num >= len(args):
            p.buf.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":
                f.sharp_v, f.sharp = f.sharp, False
                f.plus_v, f.plus = f.plus, False
            p.print_arg(args[arg_num], verb)
            arg_num += 1
    if not reordered and arg_num < len(args):
        p.f = _Flags()
        p.buf.append("%!(EXTRA ")
        for n, a in enumerate(args[arg_num:]):
            if n:
                p.buf.append(", ")
            p.buf.append(f"{a.kind}=")
            p.print_arg(a, "v")
        p.buf.append(")")
    return "".join(p.buf)
