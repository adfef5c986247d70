"""The string `format`s a CRD schema declares, checked as the kube-apiserver checks them.

Owns: which `format` names the apiextensions-apiserver validates in a custom resource, and one
checker per name that accepts exactly the strings the API server accepts. Leaves out: walking the
schema (schema.py) and built-in kinds: the API server never runs their OpenAPI `format`s; it
decodes into Go types and runs hand-written validation. (Decoding does refuse some malformed
values, e.g. a Secret's `data` that is not base64 or a `metadata.creationTimestamp` that is not
RFC 3339, with a 400: builtin_formats models that, with its own rules, not these.)

What the API server does (Kubernetes 1.20.2, the version the integration tests run; read in its
source: staging/src/k8s.io/apiextensions-apiserver/pkg/apiserver/validation/{formats,validation}.go,
vendor/github.com/go-openapi/{strfmt v0.19.3,validate v0.19.5},
vendor/github.com/asaskevich/govalidator f61b66f89f4a, Go 1.19 net, net/url, net/mail, time):

1. `StripUnsupportedFormatsPostProcess` drops every `format` whose name, dashes removed
   ("date-time" -> "datetime", "u-u-i-d" -> "uuid"; case kept), is not in a fixed list:
   bsonobjectid uri email hostname ipv4 ipv6 cidr mac uuid uuid3 uuid4 uuid5 isbn isbn10 isbn13
   creditcard ssn hexcolor rgbcolor byte password date duration datetime. Any other name
   (int32, int64, float, double, time, ...) is ignored, on any type.
2. go-openapi/validate's format validator runs only when the value is a JSON string, and calls
   strfmt's `Default` registry's checker for the name (below). Numbers, booleans, null, objects
   and lists are never format-checked, whatever the schema's `type`.
3. A failure is `spec.x in body must be of type date-time: "value"` and the request is refused.

Newer API servers differ: after 1.20 kube-openapi's fork of strfmt replaced the vendored packages
and has since changed some checkers (hostname's pattern now also takes a top-level label with
digits or dashes, e.g. "a.b1"; duration's fallback is anchored; `quantity` was added),
and `formats.go` in recent releases version-gates the list by the compatibility version (adding
`k8s-short-name`/`k8s-long-name` at 1.34), strips string formats from non-string types and keeps
int32/int64 on integers and float/double on numbers. None of that is modelled: trustgate follows
1.20, whose string-format list every later release still checks.

Residual differences (documented, not matched):
- hostname: `\\p{L}` and `\\p{S}` come from Python's Unicode tables, Go 1.19's are Unicode 13: a
  code point assigned since may be classed differently.
- the test API server (1.20.2 built with Go 1.19 by scripts/kube-apiserver.sh) refuses "" in any
  non-nullable string field before formats are looked at (go-openapi/validate's zero-value test
  sees "" as null under Go 1.19's reflect); upstream 1.20 binaries (Go 1.15) should not (not
  verified), and trustgate does not. The format verdict on "" itself (refused for uuid, accepted
  for password, ...) matches.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from trustgate.policy import _gourl

Checker = Callable[[str], bool]

# Go's RE2 classes are ASCII: \s is [\t\n\f\r ], \d is [0-9].
_WS = "\t\n\f\r "


def normalise(name: str) -> str:
    """The registry's name for a format: go-openapi's `DefaultNameNormalizer` removes dashes."""
    return name.replace("-", "")


# ---------------------------------------------------------------- Go's time and date parsing


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_date(value: str) -> bool:
    """strfmt `IsDate`: Go's `time.Parse("2006-01-02", s)`.

    Four ASCII digits, "-", two digits 01-12, "-", two digits from 01 to the month's length in the
    proleptic Gregorian calendar (so 0000-02-29 is valid), nothing after.
    """
    m = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", value)
    if m is None:
        return False
    year, month, day = (int(g) for g in m.groups())
    if not 1 <= month <= 12:
        return False
    days = 29 if month == 2 and _is_leap(year) else _DAYS[month - 1]
    return 1 <= day <= days


# strfmt DateTimePattern, applied to the text after the first "t"; `.` is any rune but "\n".
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[^\n][0-9]+)?(?:[zZ]|[+-][0-9]{2}:[0-9]{2})")


def is_datetime(value: str) -> bool:
    """strfmt `IsDateTime` (format `date-time` or `datetime`).

    The string, lowercased, is split at every "t": the first piece must be a date (`is_date`),
    the second `HH:MM:SS[<any char><digits>](z|±HH:MM)` with HH <= 23, MM and SS <= 59; further
    pieces are not looked at. Offsets are not range-checked, the fraction separator may be any
    character but a newline, a lowercase "t" and "z" are allowed, a space instead of "T" is not.
    """
    if len(value.encode("utf-8", "surrogatepass")) < 4:
        return False
    pieces = re.split("[tT]", value)  # Go lowercases, then splits at "t": only "T" lowers to "t"
    if len(pieces) < 2 or not is_date(pieces[0]):
        return False
    m = _TIME.fullmatch(pieces[1])
    return m is not None and m[1] <= "23" and m[2] <= "59" and m[3] <= "59"


_GO_UNITS = {"ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6}
_GO_UNITS |= {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_MAX = 1 << 63


def _go_parse_duration(s: str) -> bool:
    """Whether Go 1.19's `time.ParseDuration` accepts `s`, e.g. "1h30m", "-1.5s", "0"."""
    orig = s
    if s[:1] in ("-", "+"):
        s = s[1:]
    if s == "0":
        return True
    if s == "" or not orig:
        return False
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            return False
        m = re.match(r"[0-9]*", s)
        assert m is not None
        digits = m.group()
        v = 0
        for c in digits:  # leadingInt: overflow past 1<<63 is an error
            if v > _MAX // 10:
                return False
            v = v * 10 + int(c)
            if v > _MAX:
                return False
        s = s[len(digits) :]
        f, scale, post = 0, 1.0, False
        if s[:1] == ".":
            s = s[1:]
            m = re.match(r"[0-9]*", s)
            assert m is not None
            frac = m.group()
            post = bool(frac)
            overflow = False
            for c in frac:  # leadingFraction: extra digits are dropped, not an error
                if overflow:
                    continue
                if f > (_MAX - 1) // 10:
                    overflow = True
                    continue
                y = f * 10 + int(c)
                if y > _MAX:
                    overflow = True
                    continue
                f = y
                scale *= 10
            s = s[len(frac) :]
        if not digits and not post:
            return False
        m = re.match(r"[^.0-9]*", s)
        assert m is not None
        unit_name = m.group()
        if not unit_name or unit_name not in _GO_UNITS:
            return False
        s = s[len(unit_name) :]
        unit = _GO_UNITS[unit_name]
        if v > _MAX // unit:
            return False
        v *= unit
        if f > 0:
            v += int(float(f) * (float(unit) / scale))
            if v > _MAX:
                return False
        total += v
        if total > _MAX:
            return False
    return orig.startswith("-") or total <= _MAX - 1


_DURATION_UNITS = (
    ("ns", "nano"),
    ("us", "\u00b5s", "micro"),
    ("ms", "milli"),
    ("s", "sec"),
    ("m", "min"),
    ("h", "hr", "hour"),
    ("d", "day"),
    ("w", "wk", "week"),
)
_DURATION_PART = re.compile(f"([0-9]+)[{_WS}]*([A-Za-z\u00b5]+)")


def is_duration(value: str) -> bool:
    """strfmt `IsDuration`: Go's `time.ParseDuration`, else a scala-like duration.

    The fallback (strfmt v0.19.3) is not anchored: it finds every `<digits><space*><letters>` in
    the string and accepts when at least one unit is known (the last spelling of a unit also
    matches as a prefix: "3 weeks", "5 seconds", "2 minutes"; "2 hrs" and "1 month" do not), and
    refuses when any of the numbers overflows a Go int. So "1 d", "x 5 days" are valid; "", "5",
    "1 fortnight" are not.
    """
    if _go_parse_duration(value):
        return True
    ok = False
    for m in _DURATION_PART.finditer(value):
        if int(m[1]) > _MAX - 1:  # strconv.Atoi fails: the whole duration is refused
            return False
        unit = m[2].lower()
        for variants in _DURATION_UNITS:
            if unit in variants or unit.startswith(variants[-1]):
                ok = True
    return ok


# ---------------------------------------------------------------- Go's net package


def _dtoi(s: str) -> tuple[int, int, bool]:
    """Go net `dtoi`: decimal prefix; (value, length, ok)."""
    n, i = 0, 0
    while i < len(s) and "0" <= s[i] <= "9":
        n = n * 10 + ord(s[i]) - 48
        if n >= 0xFFFFFF:
            return 0xFFFFFF, i, False
        i += 1
    return n, i, i > 0


def _xtoi(s: str) -> tuple[int, int, bool]:
    """Go net `xtoi`: hexadecimal prefix; (value, length, ok)."""
    n, i = 0, 0
    while i < len(s) and s[i] in "0123456789abcdefABCDEF":
        n = n * 16 + int(s[i], 16)
        if n >= 0xFFFFFF:
            return 0, i, False
        i += 1
    return n, i, i > 0


def _parse_ipv4(s: str) -> bool:
    for i in range(4):
        if not s:
            return False
        if i > 0:
            if s[0] != ".":
                return False
            s = s[1:]
        n, c, ok = _dtoi(s)
        if not ok or n > 0xFF or (c > 1 and s[0] == "0"):  # Go 1.17+: no leading zeros
            return False
        s = s[c:]
    return s == ""


def _parse_ipv6(s: str) -> bool:
    ellipsis = -1
    if s.startswith("::"):
        ellipsis = 0
        s = s[2:]
        if not s:
            return True
    i = 0
    while i < 16:
        n, c, ok = _xtoi(s)
        if not ok or n > 0xFFFF:
            return False
        if c < len(s) and s[c] == ".":  # trailing IPv4
            if (ellipsis < 0 and i != 12) or i + 4 > 16 or not _parse_ipv4(s):
                return False
            s = ""
            i += 4
            break
        i += 2
        s = s[c:]
        if not s:
            break
        if s[0] != ":" or len(s) == 1:
            return False
        s = s[1:]
        if s[0] == ":":
            if ellipsis >= 0:
                return False
            ellipsis = i
            s = s[1:]
            if not s:
                break
    if s:
        return False
    if i < 16:
        return ellipsis >= 0
    return ellipsis < 0  # an ellipsis must stand for at least one group


def _parse_ip(s: str) -> bool:
    """Go 1.19 `net.ParseIP(s) != nil`: dotted quad without leading zeros, or IPv6 without zone."""
    for c in s:
        if c == ".":
            return _parse_ipv4(s)
        if c == ":":
            return _parse_ipv6(s)
    return False


def is_ipv4(value: str) -> bool:
    """govalidator `IsIPv4`: `net.ParseIP` accepts it and it contains "." ("::ffff:1.2.3.4" too)."""
    return _parse_ip(value) and "." in value


def is_ipv6(value: str) -> bool:
    """govalidator `IsIPv6`: `net.ParseIP` accepts it and it contains ":" ("::1.2.3.4" too)."""
    return _parse_ip(value) and ":" in value


def is_cidr(value: str) -> bool:
    """Go 1.19 `net.ParseCIDR`: an address, "/", a decimal prefix length up to 32 or 128."""
    addr, slash, mask = value.partition("/")
    if not slash:
        return False
    if _parse_ipv4(addr):
        bits = 32
    elif _parse_ipv6(addr):
        bits = 128
    else:
        return False
    n, i, ok = _dtoi(mask)
    return ok and i == len(mask) and n <= bits


def is_mac(value: str) -> bool:
    """Go 1.19 `net.ParseMAC`: 6, 8 or 20 octets as aa:bb:.., aa-bb-.. or aabb.ccdd...

    Lengths are Go's, in bytes.
    """
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) < 14 or any(b >= 0x80 for b in raw):  # non-ASCII never parses
        return False
    s = value
    hexd = "0123456789abcdefABCDEF"

    def pair(text: str, sep: str | None) -> bool:
        if len(text) > 2 and text[2] != sep:
            return False
        return len(text) >= 2 and text[0] in hexd and text[1] in hexd

    if s[2] in ":-":
        if (len(s) + 1) % 3 != 0 or (len(s) + 1) // 3 not in (6, 8, 20):
            return False
        return all(pair(s[x:], s[2]) for x in range(0, len(s), 3))
    if s[4] == ".":
        if (len(s) + 1) % 5 != 0 or 2 * (len(s) + 1) // 5 not in (6, 8, 20):
            return False
        return all(pair(s[x : x + 2], None) and pair(s[x + 2 :], ".") for x in range(0, len(s), 5))
    return False


# ---------------------------------------------------------------- Go's net/url


def is_uri(value: str) -> bool:
    """govalidator `IsRequestURI`: Go's `url.ParseRequestURI` accepts it (`_gourl`, the parser
    of the CEL library's `isURL`).

    An absolute URI ("https://h/p", "mailto:x", "urn:a:b") or an absolute path ("/p"), no control
    bytes; the host may not hold spaces or most ASCII punctuation, a port is digits only, and every
    "%" must be followed by two hex digits. "*" is valid, "" and relative references are not. A
    host with a colon before its port's (`http://::1/`), which Go 1.26's default refuses, is
    valid, as in every API server built with Go 1.25 or earlier defaults (the one
    tests/integration/test_crd_formats_apiserver.py runs): the API server would refuse what a
    stricter one refuses, so taking it cannot let a bad object into a cluster.
    """
    try:
        _gourl.parse_request_uri(value)
    except _gourl.AmbiguousHostError:
        return True
    except _gourl.URLError:
        return False
    return True


# ---------------------------------------------------------------- Go's net/mail


class _MailError(Exception):
    pass


def _is_vchar(c: str) -> bool:
    return "!" <= c <= "~" or ord(c) >= 0x80


def _is_atext(c: str, dot: bool, permissive: bool) -> bool:
    if c == ".":
        return dot
    if c in "()[];@\\,":
        return permissive
    if c in '<>":':
        return False
    return _is_vchar(c)


_KNOWN_CHARSETS = ("utf-8", "iso-8859-1", "us-ascii")


class _AddrParser:
    """A port of Go 1.19 net/mail's addrParser, for `ParseAddress` (one address)."""

    def __init__(self, s: str) -> None:
        self.s = s

    def skip_space(self) -> None:
        self.s = self.s.lstrip(" \t")

    def consume(self, c: str) -> bool:
        if self.s[:1] != c:
            return False
        self.s = self.s[1:]
        return True

    def parse_single(self) -> None:
        count = self.parse_address(handle_group=True)
        if not self.skip_cfws():
            raise _MailError("misformatted parenthetical comment")
        if self.s:
            raise _MailError("expected single address")
        if count != 1:
            raise _MailError("empty group or group with multiple addresses")

    def parse_address(self, *, handle_group: bool) -> int:
        self.skip_space()
        if not self.s:
            raise _MailError("no address")
        saved = self.s
        try:
            self.consume_addr_spec()
        except _MailError:
            self.s = saved
        else:
            self.skip_space()
            if self.s[:1] == "(":
                self.consume_display_name_comment()
            return 1
        display = ""
        if self.s[:1] != "<":
            display = self.consume_phrase()
        self.skip_space()
        if handle_group and self.consume(":"):
            return self.consume_group_list()
        if not self.consume("<"):
            raise _MailError("no angle-addr")
        del display
        saved = self.s
        try:
            self.consume_addr_spec()
        except _MailError:
            self.s = saved
            raise
        if not self.consume(">"):
            raise _MailError("unclosed angle-addr")
        return 1

    def consume_group_list(self) -> int:
        count = 0
        self.skip_space()
        if self.consume(";"):
            self.skip_cfws()
            return 0
        while True:
            self.skip_space()
            count += self.parse_address(handle_group=False)
            if not self.skip_cfws():
                raise _MailError("misformatted parenthetical comment")
            if self.consume(";"):
                self.skip_cfws()
                return count
            if not self.consume(","):
                raise _MailError("expected comma")

    def consume_addr_spec(self) -> None:
        self.skip_space()
        if not self.s:
            raise _MailError("no addr-spec")
        if self.s[0] == '"':
            if self.consume_quoted_string() == "":
                raise _MailError("empty quoted-string in addr-spec")
        else:
            self.consume_atom(dot=True, permissive=False)
        if not self.consume("@"):
            raise _MailError("missing @ in addr-spec")
        self.skip_space()
        if not self.s:
            raise _MailError("no domain in addr-spec")
        self.consume_atom(dot=True, permissive=False)  # Go 1.19: no domain-literal

    def consume_phrase(self) -> str:
        words: list[str] = []
        while True:
            self.skip_space()
            if not self.s:
                break
            try:
                if self.s[0] == '"':
                    word = self.consume_quoted_string()
                else:
                    word = self.consume_atom(dot=True, permissive=True)
                    self.decode_word(word)
            except _MailError:
                if not words:
                    raise
                break
            words.append(word)
        if not words:
            raise _MailError("missing word in phrase")
        return " ".join(words)

    def consume_quoted_string(self) -> str:
        i, out, escaped = 1, [], False
        while True:
            if i >= len(self.s):
                raise _MailError("unclosed quoted-string")
            c = self.s[i]
            if escaped:
                if not _is_vchar(c) and c not in " \t":
                    raise _MailError("bad character in quoted-string")
                out.append(c)
                escaped = False
            elif (_is_vchar(c) and c not in '"\\') or c in " \t":
                out.append(c)
            elif c == '"':
                break
            elif c == "\\":
                escaped = True
            else:
                raise _MailError("bad character in quoted-string")
            i += 1
        self.s = self.s[i + 1 :]
        return "".join(out)

    def consume_atom(self, *, dot: bool, permissive: bool) -> str:
        i = 0
        while i < len(self.s) and _is_atext(self.s[i], dot, permissive):
            i += 1
        if i == 0:
            raise _MailError("invalid string")
        atom, self.s = self.s[:i], self.s[i:]
        if not permissive and (atom.startswith(".") or ".." in atom or atom.endswith(".")):
            raise _MailError("dot in the wrong place in atom")
        return atom

    def consume_comment(self) -> tuple[str, bool]:
        depth, out = 1, []
        while self.s and depth:
            if self.s[0] == "\\" and len(self.s) > 1:
                self.s = self.s[1:]
            elif self.s[0] == "(":
                depth += 1
            elif self.s[0] == ")":
                depth -= 1
            if depth:
                out.append(self.s[0])
            self.s = self.s[1:]
        return "".join(out), depth == 0

    def consume_display_name_comment(self) -> None:
        self.consume("(")
        comment, ok = self.consume_comment()
        if not ok:
            raise _MailError("misformatted parenthetical comment")
        for word in re.split("[ \t]+", comment):
            self.decode_word(word)

    def skip_cfws(self) -> bool:
        self.skip_space()
        while self.consume("("):
            _, ok = self.consume_comment()
            if not ok:
                return False
            self.skip_space()
        return True

    @staticmethod
    def decode_word(word: str) -> None:
        """RFC 2047: only a well-formed encoded word with an unknown charset is an error in Go."""
        if (
            len(word.encode("utf-8", "surrogatepass")) < 8
            or not (word.startswith("=?") and word.endswith("?="))
            or word.count("?") != 4
        ):
            return
        charset, _, text = word[2:-2].partition("?")
        encoding, _, text = text.partition("?")
        if not charset or len(encoding) != 1:
            return
        if encoding in "Bb":
            try:
                base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
            except (binascii.Error, ValueError):
                return
        elif encoding in "Qq":
            if not re.fullmatch(r"(?:=[0-9A-Fa-f]{2}|[ -<>-~\r\n\t])*", text):
                return
        else:
            return
        if charset.casefold() not in _KNOWN_CHARSETS:
            raise _MailError(f"unhandled charset {charset!r}")


def is_email(value: str) -> bool:
    """strfmt `IsEmail`: Go 1.19 `mail.ParseAddress` accepts it (and it has an address).

    "a@b", "a.b+c@example.com", "Name <a@b.c>", "\\"q s\\"@x", "a@b (comment)" and
    "group: a@b;" are valid; "", "a", "a@", "@b", "a..b@c", "a@[1.2.3.4]" are not.
    """
    parser = _AddrParser(value)
    try:
        parser.parse_single()
    except _MailError:
        return False
    return True


# ---------------------------------------------------------------- govalidator and strfmt regexes


_UUID = {
    "uuid": re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"),
    "uuid3": re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?3[0-9a-fA-F]{3}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"),
    "uuid4": re.compile(
        r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?4[0-9a-fA-F]{3}-?[89abAB][0-9a-fA-F]{3}-?[0-9a-fA-F]{12}"
    ),
    "uuid5": re.compile(
        r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?5[0-9a-fA-F]{3}-?[89abAB][0-9a-fA-F]{3}-?[0-9a-fA-F]{12}"
    ),
}


def _hostname_class(c: str) -> str:
    """Map one rune to the hostname pattern's classes: "a" letter, "0" other label rune."""
    if c.isascii():
        if c.isalpha():
            return "a"
        if c.isdigit() or unicodedata.category(c).startswith("S"):
            return "0"
        return c if c in "-." else "!"
    category = unicodedata.category(c)
    return "a" if category.startswith("L") else "0" if category.startswith("S") else "!"


# strfmt v0.19.3 HostnamePattern with [a-zA-Z0-9\p{S}\p{L}] as [a0] and [a-zA-Z\p{L}] as a.
_HOSTNAME = re.compile(r"[a0](?:-?[a0]{0,62})?|(?:[a0](?:[a0-]{0,61}[a0])?\.)+a{2,63}")


def is_hostname(value: str) -> bool:
    """strfmt `IsHostname`: one label, or labels ending in a 2-63 letter top-level label.

    Labels hold ASCII letters and digits, Unicode letters and symbols (so "a+b" is valid, as "+"
    is a symbol) and inner dashes; at most 255 bytes, 63 bytes a label. "" and "a_b" are invalid;
    a one-label name may end with a dash after its first rune ("a-").
    """
    shape = "".join(_hostname_class(c) for c in value)
    if _HOSTNAME.fullmatch(shape) is None or len(value.encode("utf-8", "surrogatepass")) > 255:
        return False
    return all(len(p.encode("utf-8", "surrogatepass")) <= 63 for p in value.split("."))


def is_bsonobjectid(value: str) -> bool:
    """mongo-driver `ObjectIDFromHex`: exactly 24 hex digits, either case."""
    return re.fullmatch("[0-9a-fA-F]{24}", value) is not None


def _isbn10(s: str) -> bool:
    s = re.sub(f"[{_WS}-]+", "", s)
    if re.fullmatch("[0-9]{9}X|[0-9]{10}", s) is None:
        return False
    total = sum((i + 1) * int(s[i]) for i in range(9)) + (100 if s[9] == "X" else 10 * int(s[9]))
    return total % 11 == 0


def _isbn13(s: str) -> bool:
    s = re.sub(f"[{_WS}-]+", "", s)
    if re.fullmatch("[0-9]{13}", s) is None:
        return False
    total = sum((1, 3)[i % 2] * int(s[i]) for i in range(12))
    return int(s[12]) == (10 - total % 10) % 10


# Patterns are compiled where first used (`re`'s own cache keeps them): compiling this one
# alone costs ~2 ms, which every run would pay at start-up for a format few schemas name.
_CREDIT_CARD = (
    r"4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}"
    r"|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35[0-9]{3})[0-9]{11}"
)


def is_creditcard(value: str) -> bool:
    """govalidator `IsCreditCard`: the digits (all else removed) match a card pattern and Luhn."""
    digits = re.sub("[^0-9]+", "", value)
    if re.fullmatch(_CREDIT_CARD, digits) is None:
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = int(c) * (2 if i % 2 else 1)
        total += n - 9 if n >= 10 else n
    return total % 10 == 0


_BYTE = "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})"
_OCTET = "(?:0|[1-9][0-9]?|1[0-9][0-9]?|2[0-4][0-9]|25[0-5])"
_RGB = f"rgb\\([{_WS}]*{_OCTET}[{_WS}]*,[{_WS}]*{_OCTET}[{_WS}]*,[{_WS}]*{_OCTET}[{_WS}]*\\)"


def _match(pattern: str | re.Pattern[str]) -> Checker:
    return lambda value: re.fullmatch(pattern, value) is not None


@dataclass(frozen=True, slots=True)
class Format:
    """One checked format: its checker and what a valid value looks like (for the message)."""

    check: Checker
    example: str


# Keyed by the normalised name. `password` accepts every string: not listed.
FORMATS: dict[str, Format] = {
    "bsonobjectid": Format(is_bsonobjectid, "24 hexadecimal digits, e.g. 507f1f77bcf86cd799439011"),
    "uri": Format(is_uri, "an absolute URI or path, e.g. https://example.com/x"),
    "email": Format(is_email, "an email address, e.g. ops@example.com"),
    "hostname": Format(is_hostname, "a host name, e.g. api.example.com"),
    "ipv4": Format(is_ipv4, "an IPv4 address without leading zeros, e.g. 192.0.2.10"),
    "ipv6": Format(is_ipv6, "an IPv6 address without zone, e.g. 2001:db8::1"),
    "cidr": Format(is_cidr, "an address and prefix length, e.g. 10.0.0.0/16"),
    "mac": Format(is_mac, "a MAC address, e.g. 00:1a:2b:3c:4d:5e"),
    "uuid": Format(_match(_UUID["uuid"]), "a UUID, e.g. 123e4567-e89b-12d3-a456-426614174000"),
    "uuid3": Format(_match(_UUID["uuid3"]), "a version-3 UUID, e.g. a3bb189e-8bf9-3888-9912-ace4e6543002"),
    "uuid4": Format(_match(_UUID["uuid4"]), "a version-4 UUID, e.g. 9b2f7e0c-3c1d-4f6a-8b2e-1d5c6a7b8c9d"),
    "uuid5": Format(_match(_UUID["uuid5"]), "a version-5 UUID, e.g. 74738ff5-5367-5958-9aee-98fffdcd1876"),
    "isbn": Format(lambda v: _isbn10(v) or _isbn13(v), "an ISBN-10 or ISBN-13, e.g. 978-0321751041"),
    "isbn10": Format(_isbn10, "an ISBN-10 with a valid check digit, e.g. 0321751043"),
    "isbn13": Format(_isbn13, "an ISBN-13 with a valid check digit, e.g. 978-0321751041"),
    "creditcard": Format(is_creditcard, "a card number that passes the Luhn check"),
    "ssn": Format(
        lambda v: (
            len(v.encode("utf-8", "surrogatepass")) == 11
            and re.fullmatch("[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}", v) is not None
        ),
        "a US SSN, e.g. 123-45-6789",
    ),
    "hexcolor": Format(_match("#?(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})"), "a hex colour, e.g. #1f2e3d"),
    "rgbcolor": Format(_match(_RGB), "rgb(R,G,B) with 0-255 each, e.g. rgb(10,20,30)"),
    "byte": Format(_match(_BYTE), "padded standard base64, e.g. aGVsbG8="),
    "date": Format(is_date, "an RFC 3339 full-date, e.g. 2024-02-29"),
    "duration": Format(is_duration, "a Go duration such as 1h30m, or e.g. 5 days"),
    "datetime": Format(is_datetime, "an RFC 3339 date-time, e.g. 2024-01-31T12:00:00Z"),
}


def checked(name: str) -> Format | None:
    """The checker the API server uses for a schema's `format` name, or None when it checks none."""
    return FORMATS.get(normalise(name))
