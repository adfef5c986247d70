"""Rego built-ins with OPA's (Go's) semantics, for the calls where regorus' differ.

Owns: Python implementations of the built-ins whose regorus version answers
otherwise than OPA's (ADR 0008): the regex family (Go's RE2: `\\w \\d \\s \\b`
are ASCII, `[a&&b]` and `x{,2}` are literal, `\\u00e9` is invalid), `upper`
and `lower` (Go's simple case mapping: `ß` stays, `İ` lowers to `i`, no final
sigma) and `strings.count` (`""` counts runes + 1; regorus panics). Each is
registered on every engine as a regorus extension (`register`) that returns
`[true, value]`, or `[false, null]` where OPA's built-in fails (a wrong
operand type, an invalid pattern): the module-local helper that calls it
(`_normalise`) is then undefined, which is what conftest and Gatekeeper (OPA
without StrictBuiltinErrors) make of a built-in error. An exception that
escapes an implementation is a bug here; regorus raises it and trustgate
reports that it could not evaluate (exit 3), never a verdict.

Leaves out: deciding which calls are routed here (`_normalise`, which keeps
regorus' own built-in where the operands cannot tell the two apart, such as
a literal ASCII pattern without Perl classes); the encoding, network and
template built-ins, which live in `_goencoding`, `_gonet` and `_gotext`,
and the time built-ins (`_gotime`), imported at their first call (`_lazy`).
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import itertools
import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import re2

from trustgate import yamlio
from trustgate.manifests.loader import ENGINE_INT_MAX, ENGINE_INT_MIN
from trustgate.policy import _gonumbers
from trustgate.policy._gostrconv import float_syntax
from trustgate.policy._normalise import GO_EXTENSIONS

_UNDEFINED: list[Any] = [False, None]
_PATTERN_CACHE = 512  # compiled patterns kept; OPA keeps every pattern it compiled


class _BuiltinError(Exception):
    """OPA's built-in fails: undefined without StrictBuiltinErrors."""


@dataclass(frozen=True, slots=True)
class Builtin:
    """A built-in implemented here: the extension's name and arity, and the function."""

    extension: str
    arity: int
    fn: Callable[..., Any]
    marshalled: bool = False  # the first operand reaches `fn` as regorus' `json.marshal` text


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _BuiltinError("operand must be string")
    return value


def _integer(value: Any) -> int:
    """OPA's `builtins.IntOperand`: an integral number (a float that is integral is fine)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BuiltinError("operand must be number")
    if isinstance(value, float) and not value.is_integer():
        raise _BuiltinError("operand must be integer number")
    if not -(2**63) <= value < 2**63:  # IntOperand reads the number as an int64
        raise _BuiltinError("operand must be integer number")
    return int(value)


# -- regular expressions: Go's regexp is RE2; google-re2 is RE2 in C++ ---------------------


def _go_syntax_error(pattern: str) -> bool:
    """What Go's regexp/syntax refuses and C++ RE2 accepts: `\\C` (any byte)."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            if pattern[i + 1 : i + 2] == "Q":  # literal up to \E
                end = pattern.find("\\E", i + 2)
                if end < 0:
                    return False
                i = end + 2
                continue
            if pattern[i + 1 : i + 2] == "C":
                return True
            i += 2
            continue
        i += 1
    return False


# RE2's default (8 MiB) refuses patterns Go compiles (`^\p{L}{1,500}$`); Go's own limit is
# on the program's size (regexp/syntax maxSize), not far from what this allows.
_RE2_MAX_MEM = 256 << 20
_TOO_LARGE = object()


class PatternTooLarge(Exception):
    """A pattern RE2 cannot compile within `_RE2_MAX_MEM` that Go might: an evaluation error
    (fail closed), never undefined, which would read as a pattern Go refuses."""


@functools.lru_cache(maxsize=_PATTERN_CACHE)
def _compile_or_marker(pattern: str) -> Any:
    if _go_syntax_error(pattern):
        return None
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _RE2_MAX_MEM
    try:
        return re2.compile(_utf8(pattern), options)
    except re2.error as e:
        if "too large" in str(e):
            return _TOO_LARGE
        if "invalid repetition size" in str(e) and _ZERO_COUNT.search(pattern):
            # RE2 and Go bound nested counted repetitions to 1000 copies alike, except that
            # Go's `repeatIsValid` skips what is under `{0}` and RE2 does not
            # (`(?:(?:a{1000}){0}){2}`): Go's answer is not known here.
            return _TOO_LARGE
        return None


_ZERO_COUNT = re.compile(r"\{0*(?:,0*)?\}")  # `{0}`, `{0,0}`


def _compile(pattern: str) -> Any:
    """Go's `regexp.Compile`: the compiled pattern (over UTF-8 bytes), or None where Go refuses it.

    Raises:
        PatternTooLarge: RE2 cannot compile it within its memory budget.
    """
    compiled = _compile_or_marker(pattern)
    if compiled is _TOO_LARGE:
        raise PatternTooLarge(
            f"regular expression {pattern[:200]!r} is too large for trustgate's RE2 (more than "
            f"{_RE2_MAX_MEM >> 20} MiB compiled, or counted repetitions nested past its bound): "
            "trustgate cannot reproduce OPA's answer"
        )
    return compiled


def go_regexp(pattern: str) -> Any:
    """Go's `regexp.Compile` for callers outside the builtins: the compiled pattern, or None where
    Go refuses it. Match it with `go_search`.

    Raises:
        PatternTooLarge: RE2 cannot compile it within its memory budget.
    """
    return _compile(pattern)


def go_search(compiled: Any, text: str) -> bool:
    """Go's `Regexp.MatchString`: whether `compiled` (from `go_regexp`) matches anywhere in `text`."""
    return _search(compiled, _utf8(text)) is not None


def _utf8(text: str) -> bytes:
    """The UTF-8 Go would hold: an unpaired surrogate is U+FFFD (Go's JSON decoder does that)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8")


def _regexp(pattern: Any) -> Any:
    compiled = _compile(_string(pattern))
    if compiled is None:
        raise _BuiltinError("error parsing regexp")
    return compiled


def _next_rune(data: bytes, pos: int) -> int:
    pos += 1
    while pos < len(data) and 0x80 <= data[pos] < 0xC0:
        pos += 1
    return pos


def _search(compiled: Any, data: bytes, pos: int = 0) -> Any:
    """The leftmost match at or after byte `pos`, as Go's regexp finds it.

    C++ RE2 steps through UTF-8 byte by byte, so an empty-width `\\B` can match
    inside a multi-byte character (both sides are "not a word byte"); Go steps by
    rune and never does. Such a match is empty and starts inside a character:
    skipped, and the search goes on from the next character.
    """
    while True:
        match = compiled.search(data, pos)
        if match is None:
            return None
        start, stop = match.span()
        if start == stop and start < len(data) and 0x80 <= data[start] < 0xC0:
            pos = _next_rune(data, start)
            if pos > len(data):
                return None
            continue
        return match


def _all_matches(compiled: Any, data: bytes, n: int) -> list[Any]:
    """Go's `Regexp.allMatches`: successive matches, an empty one abutting a match left out."""
    out: list[Any] = []
    pos, prev_end, end = 0, -1, len(data)
    while (n < 0 or len(out) < n) and pos <= end:
        match = _search(compiled, data, pos)
        if match is None:
            break
        start, stop = match.span()
        accept = True
        if stop == pos:  # an empty match
            accept = start != prev_end
            pos = _next_rune(data, pos)
        else:
            pos = stop
        prev_end = stop
        if accept:
            out.append(match)
    return out


def _text(group: bytes | None) -> str:
    return "" if group is None else group.decode("utf-8")


def regex_match(pattern: Any, value: Any) -> list[Any]:
    compiled = _regexp(pattern)
    return [True, _search(compiled, _utf8(_string(value))) is not None]


def regex_is_valid(pattern: Any) -> list[Any]:
    # OPA: false, not an error, for a non-string.
    return [True, isinstance(pattern, str) and _compile(pattern) is not None]


def regex_find_n(pattern: Any, value: Any, n: Any) -> list[Any]:
    compiled, data, limit = _regexp(pattern), _utf8(_string(value)), _integer(n)
    return [True, [_text(m.group(0)) for m in _all_matches(compiled, data, limit)]]


def regex_find_all_string_submatch_n(pattern: Any, value: Any, n: Any) -> list[Any]:
    compiled, data, limit = _regexp(pattern), _utf8(_string(value)), _integer(n)
    return [
        True,
        [
            [_text(m.group(i)) for i in range(compiled.groups + 1)]
            for m in _all_matches(compiled, data, limit)
        ],
    ]


def regex_split(pattern: Any, value: Any) -> list[Any]:
    """Go's `Regexp.Split(s, -1)`."""
    compiled, data = _regexp(pattern), _utf8(_string(value))
    if compiled.pattern and not data:
        return [True, [""]]
    pieces: list[str] = []
    begin = last = 0
    for match in _all_matches(compiled, data, -1):
        last = match.start()
        if match.end() != 0:
            pieces.append(_text(data[begin:last]))
        begin = match.end()
    if last != len(data):
        pieces.append(_text(data[begin:]))
    return [True, pieces]


def regex_replace(value: Any, pattern: Any, replacement: Any) -> list[Any]:
    """Go's `Regexp.ReplaceAllString`, `$1`/`${name}` expanded as Go expands them."""
    data, compiled, template = _utf8(_string(value)), _regexp(pattern), _string(replacement)
    out: list[str] = []
    last_end = search = 0
    while search <= len(data):
        match = _search(compiled, data, search)
        if match is None:
            break
        start, stop = match.span()
        out.append(_text(data[last_end:start]))
        if stop > last_end or start == 0:
            out.append(_expand(template, match, compiled))
        last_end = stop
        width = _next_rune(data, search) - search
        search = search + width if search + width > stop else stop
    out.append(_text(data[last_end:]))
    return [True, "".join(out)]


def _expand(template: str, match: Any, compiled: Any) -> str:
    """Go's `Regexp.expand`: `$$` is `$`, `$name`/`${name}` a group, anything else literal."""
    out: list[str] = []
    names: dict[str, int] = {}
    for name, index in sorted(compiled.groupindex.items(), key=lambda kv: kv[1]):
        names.setdefault(name.decode("utf-8") if isinstance(name, bytes) else name, index)
    while template:
        before, dollar, after = template.partition("$")
        out.append(before)
        if not dollar:
            break
        template = after
        if template.startswith("$"):
            out.append("$")
            template = template[1:]
            continue
        parsed = _extract(template)
        if parsed is None:
            out.append("$")
            continue
        name, num, template = parsed
        index = num if num >= 0 else names.get(name, -1)
        if 0 <= index <= compiled.groups:
            out.append(_text(match.group(index)))
    return "".join(out)


def _extract(text: str) -> tuple[str, int, str] | None:
    brace = text.startswith("{")
    body = text[1:] if brace else text
    i = 0
    while i < len(body) and (body[i].isalpha() or unicodedata.category(body[i]) == "Nd" or body[i] == "_"):
        i += 1
    if i == 0:
        return None
    name = body[:i]
    if brace:
        if body[i : i + 1] != "}":
            return None
        i += 1
    num = -1
    if name.isascii() and name.isdigit() and not (name[0] == "0" and len(name) > 1) and len(name) <= 8:
        num = int(name)
    return name, num, body[i:]


# -- strings -----------------------------------------------------------------------------


def _simple_upper(ch: str) -> str:
    full = ch.upper()
    if len(full) == 1:
        return full
    title = ch.title()  # the simple mapping where the full one is several characters (ᾳ → ᾼ)
    return title if len(title) == 1 else ch


def _simple_lower(ch: str) -> str:
    full = ch.lower()  # per character: no final sigma
    return full if len(full) == 1 else ("i" if ch == "\u0130" else ch)


def upper(value: Any) -> list[Any]:
    """Go's `strings.ToUpper`: Unicode's simple mapping, one rune for one (`ß` stays)."""
    text = _string(value)
    return [True, text.upper() if text.isascii() else "".join(map(_simple_upper, text))]


def lower(value: Any) -> list[Any]:
    """Go's `strings.ToLower`: simple mapping (no final sigma; U+0130 lowers to `i`)."""
    text = _string(value)
    return [True, text.lower() if text.isascii() else "".join(map(_simple_lower, text))]


def strings_count(value: Any, substring: Any) -> list[Any]:
    """Go's `strings.Count`: non-overlapping; `""` occurs once per rune and once more."""
    text, sub = _string(value), _string(substring)
    return [True, len(text) + 1 if not sub else text.count(sub)]


# -- which literal patterns regorus' regex reads as Go's does --------------------------------

_SAFE_ESCAPES = frozenset("\\.+*?()|[]{}^$-/ntrfAz")


def literal_pattern_agrees(pattern: str) -> bool:
    """regorus' Rust regex and Go's agree on `pattern`, whatever the subject string.

    A pattern of ASCII without Perl classes or word boundaries (Unicode-aware in
    Rust), character-class set operations or nested classes (Rust's syntax, literal
    in Go), `{` that is not a repetition, flag groups other than `(?:` and `(?i)`-style
    flags Go knows, and that Go compiles. Conservative: anything else is routed.
    """
    if not pattern.isascii() or _compile_or_marker(pattern) in (None, _TOO_LARGE):
        return False
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if pattern[i + 1 : i + 2] not in _SAFE_ESCAPES or i + 1 >= len(pattern):
                return False
            i += 2
            continue
        if in_class:
            if ch == "[" or pattern[i : i + 2] in ("&&", "--", "~~"):
                return False
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                i += 1
            if pattern[i + 1 : i + 2] == "]":  # a leading `]` is literal
                i += 1
        elif ch == "{" and not _repetition(pattern, i):
            return False
        elif ch == "(" and pattern[i + 1 : i + 2] == "?":
            close = pattern.find(")", i)
            flags = pattern[i + 2 : close] if close > 0 else ""
            if not (pattern[i + 2 : i + 3] == ":" or (flags and set(flags) <= set("imsU-"))):
                return False
        i += 1
    return not in_class


def _repetition(pattern: str, i: int) -> bool:
    close = pattern.find("}", i)
    if close < 0:
        return False
    low, _, high = pattern[i + 1 : close].partition(",")
    return low.isdigit() and (not high or high.isdigit())


# -- glob.match: github.com/gobwas/glob, as OPA calls it ------------------------------------


class _GlobSyntaxError(Exception):
    pass


class _GlobLexer:
    """gobwas/glob's lexer: text, `*`, `**`, `?`, `[!lo-hi]`/`[!chars]`, `{a,b}`, `\\` escapes."""

    _TEXT_BREAKERS = "?*[{"
    _TERMS_BREAKERS = "?*[{},"

    def __init__(self, pattern: str) -> None:
        self.text, self.pos, self.terms = pattern, 0, 0
        self.tokens: list[tuple[str, str]] = []

    def _read(self) -> str:
        if self.pos >= len(self.text):
            self.pos += 1
            return ""
        self.pos += 1
        return self.text[self.pos - 1]

    def _fetch_text(self, breakers: str) -> None:
        data, escaped = [], False
        while True:
            ch = self._read()
            if not ch:
                break
            if not escaped:
                if ch == "\\":
                    escaped = True
                    continue
                if ch in breakers:
                    self.pos -= 1
                    break
            escaped = False
            data.append(ch)
        if data:
            self.tokens.append(("text", "".join(data)))

    def _fetch_range(self) -> None:
        want_hi = want_close = seen_not = False
        while True:
            ch = self._read()
            if not ch:
                raise _GlobSyntaxError("unexpected end of input")
            if want_close:
                if ch != "]":
                    raise _GlobSyntaxError("expected close range character")
                self.tokens.append(("close", ch))
                return
            if want_hi:
                self.tokens.append(("hi", ch))
                want_close = True
                continue
            if not seen_not and ch == "!":
                self.tokens.append(("not", ch))
                seen_not = True
                continue
            if self.text[self.pos : self.pos + 1] == "-":
                self.pos += 1
                self.tokens.append(("lo", ch))
                want_hi = True
                continue
            self.pos -= 1
            self._fetch_text("]")
            want_close = True

    def tokenize(self) -> list[tuple[str, str]]:
        while True:
            ch = self._read()
            if not ch:
                self.tokens.append(("eof", ""))
                return self.tokens
            if ch == "{":
                self.terms += 1
                self.tokens.append(("open", ch))
            elif ch == "," and self.terms:
                self.tokens.append(("sep", ch))
            elif ch == "}" and self.terms:
                self.tokens.append(("close_terms", ch))
                self.terms -= 1
            elif ch == "[":
                self.tokens.append(("range", ch))
                self._fetch_range()
            elif ch == "?":
                self.tokens.append(("single", ch))
            elif ch == "*":
                if self._read() == "*":
                    self.tokens.append(("super", "**"))
                else:
                    self.pos -= 1
                    self.tokens.append(("any", ch))
            else:
                self.pos -= 1
                self._fetch_text(self._TERMS_BREAKERS if self.terms else self._TEXT_BREAKERS)


_GlobNode = tuple[Any, ...]  # ("text", s) ("any",) ("super",) ("single",) ("list", chars, negated)
# ("range", lo, hi, negated) ("anyof", [alternative, ...]), an alternative a list of nodes


def _glob_parse(pattern: str) -> list[_GlobNode]:
    """gobwas/glob's parser: the pattern as a list of nodes (see `_GlobNode`)."""
    stack: list[list[list[_GlobNode]]] = [[[]]]
    tokens = iter(_GlobLexer(pattern).tokenize())
    for kind, raw in tokens:
        current = stack[-1][-1]
        if kind == "eof":
            break
        if kind == "text":
            current.append(("text", raw))
        elif kind in ("any", "super", "single"):
            current.append((kind,))
        elif kind == "open":
            stack.append([[]])
        elif kind == "sep":
            stack[-1].append([])
        elif kind == "close_terms":
            group = stack.pop()
            stack[-1][-1].append(("anyof", group))
        elif kind == "range":
            negate, lo, hi, chars = False, "", "", ""
            for part, value in tokens:
                if part == "not":
                    negate = True
                elif part == "lo":
                    lo = value
                elif part == "hi":
                    hi = value
                    if hi < lo:
                        raise _GlobSyntaxError("hi character should be greater than lo")
                elif part == "text":
                    chars = value
                elif part == "close":
                    break
            if bool(chars) == bool(lo and hi):
                raise _GlobSyntaxError("could not parse range")
            current.append(("range", lo, hi, negate) if lo else ("list", chars, negate))
    while len(stack) > 1:  # an unclosed `{`: gobwas ends its alternatives at the end
        group = stack.pop()
        stack[-1][-1].append(("anyof", group))
    return stack[0][0]


def _glob_regex(nodes: list[_GlobNode], separators: str) -> str:
    """An RE2 pattern that matches (in full) what the glob's nodes describe."""
    not_sep = f"[^{''.join(re2.escape(s) for s in separators)}]" if separators else "(?s:.)"
    out = []
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(re2.escape(node[1]))
        elif kind == "any":
            out.append(not_sep + "*")
        elif kind == "super":
            out.append("(?s:.)*")
        elif kind == "single":
            out.append(not_sep)
        elif kind == "list":
            out.append(f"[{'^' if node[2] else ''}{''.join(re2.escape(c) for c in node[1])}]")
        elif kind == "range":
            out.append(f"[{'^' if node[3] else ''}{re2.escape(node[1])}-{re2.escape(node[2])}]")
        else:
            out.append("(?:" + "|".join(_glob_regex(alt, separators) for alt in node[1]) + ")")
    return "".join(out)


_FIXED = frozenset({"text", "single", "list", "range"})  # gobwas matchers of a fixed length


def _has_row(nodes: list[_GlobNode]) -> bool:
    """Two fixed-length matchers in a row somewhere: gobwas may glue them into a `Row`
    (alternatives of one length have a fixed length too)."""
    for a, b in itertools.pairwise(nodes):
        if a[0] in (*_FIXED, "anyof") and b[0] in (*_FIXED, "anyof"):
            return True
    return any(_has_row(alt) for node in nodes if node[0] == "anyof" for alt in node[1])


def _every_like(node: _GlobNode, separators: str) -> bool:
    """gobwas glues runs of these (same separators) into an `EveryOf` (`glueMatchersAsEvery`)."""
    return node[0] in ("single", "any") or (node[0] == "list" and node[2] and node[1] == separators)


def _has_every(nodes: list[_GlobNode], separators: str) -> bool:
    for a, b in itertools.pairwise(nodes):
        if _every_like(a, separators) and _every_like(b, separators):
            return True
    return any(_has_every(alt, separators) for node in nodes if node[0] == "anyof" for alt in node[1])


def _every_match(nodes: list[_GlobNode], subject: str, separators: str) -> bool:
    """gobwas' `EveryOf(Min(n)[, Max(n)], Contains(separators, not))`: its "no separator"
    test looks for all the separators written one after another, not for any of them."""
    singles = sum(1 for n in nodes if n[0] != "any")
    if singles == 0:
        return not any(c in separators for c in subject)  # glued as `Any`
    if len(subject) < singles or (singles == len(nodes) and len(subject) > singles):
        return False
    return not separators or separators not in subject


def _go_rune(data: bytes, i: int) -> tuple[int, int]:
    """Go's `utf8.DecodeRune` at `i`: (rune, width); an invalid byte is U+FFFD, width 1."""
    if i >= len(data):
        return 0xFFFD, 0
    for width in (1, 2, 3, 4):
        try:
            return ord(data[i : i + width].decode("utf-8")), width
        except UnicodeDecodeError:
            continue
    return 0xFFFD, 1


def _one_rune_match(node: _GlobNode, sub: bytes, separators: str) -> bool:
    """gobwas' Single/List/Range `Match`: one rune (U+FFFD for none or an invalid byte)."""
    rune, width = _go_rune(sub, 0)
    if len(sub) > width:
        return False
    ch = chr(rune)
    if node[0] == "single":
        return ch not in separators
    inside = ch in node[1] if node[0] == "list" else node[1] <= ch <= node[2]
    return bool(inside) != bool(node[-1])


def _row_match(nodes: list[_GlobNode], data: bytes, separators: str) -> bool:
    """gobwas' `Row.Match` as it is: each matcher gets its rune count of the subject, cut
    after the first byte of its last rune (a multi-byte last rune never matches text)."""
    lengths = [len(n[1]) if n[0] == "text" else 1 for n in nodes]
    if len(data.decode("utf-8")) != sum(lengths):
        return False
    idx = 0
    for node, length in zip(nodes, lengths, strict=True):
        starts: list[int] = []
        i = idx
        while i < len(data) and len(starts) < length:
            starts.append(i - idx)
            i += max(_go_rune(data, i)[1], 1)
        if len(starts) < length:
            return False
        sub = data[idx : idx + starts[-1] + 1]
        matched = (
            sub == node[1].encode("utf-8") if node[0] == "text" else _one_rune_match(node, sub, separators)
        )
        if not matched:
            return False
        idx += starts[-1] + 1
    return True


class GlobUnsupportedError(Exception):
    """A glob and subject where gobwas/glob's matcher answers otherwise than its syntax says,
    in a way not reproduced here: trustgate cannot tell what OPA answers (exit 3)."""


@functools.lru_cache(maxsize=_PATTERN_CACHE)
def _glob(pattern: str, separators: str) -> tuple[list[_GlobNode], Any] | None:
    try:
        nodes = _glob_parse(pattern)
    except _GlobSyntaxError:
        return None
    options = re2.Options()
    options.log_errors = False
    return nodes, re2.compile(_glob_regex(nodes, separators), options)


def glob_match(pattern: Any, delimiters: Any, value: Any) -> list[Any]:
    """OPA's `glob.match`: `null` delimiters are none, `[]` is `["."]`; each must be one rune.

    gobwas/glob answers by its syntax except in two places, reproduced here: a pattern
    of one `?` or class matches `""` (its matcher reads "no rune" as U+FFFD), and a run
    of fixed-length pieces (text, `?`, classes) compiled into a `Row` cuts non-ASCII
    subjects at byte offsets. A `Row` inside a larger pattern with non-ASCII text is not
    reproduced: `GlobUnsupportedError`.
    """
    text = _string(pattern)
    if delimiters is None:
        separators = ""
    elif isinstance(delimiters, list):
        if not all(isinstance(d, str) and len(d) == 1 for d in delimiters):
            raise _BuiltinError("delimiters must be single characters")
        separators = "".join(delimiters) or "."
    else:
        raise _BuiltinError("operand 2 must be array or null")
    subject = _string(value)
    compiled = _glob(text, separators)
    if compiled is None:
        raise _BuiltinError("invalid glob")
    nodes, regex = compiled
    if len(nodes) == 1 and nodes[0][0] in ("single", "list", "range"):
        return [True, _one_rune_match(nodes[0], subject.encode("utf-8"), separators)]
    if len(nodes) > 1 and all(_every_like(n, separators) for n in nodes):
        return [True, _every_match(nodes, subject, separators)]
    if len(separators) > 1 and _has_every(nodes, separators):
        raise GlobUnsupportedError(
            f"glob.match({text!r}, {list(separators)!r}, ...): OPA's glob library (gobwas/glob) "
            "checks several delimiters here as one string; trustgate cannot reproduce its answer"
        )
    if not (subject.isascii() and text.isascii()) and _has_row(nodes):
        if all(n[0] in _FIXED for n in nodes):
            return [True, _row_match(nodes, subject.encode("utf-8"), separators)]
        else:
            raise GlobUnsupportedError(
                f"glob.match({text!r}, ..., {subject!r}): OPA's glob library (gobwas/glob) matches "
                "non-ASCII text in this pattern by byte offsets; trustgate cannot reproduce its answer"
            )
    return [True, regex.fullmatch(subject) is not None]


# -- semver.*: OPA's internal/semver ------------------------------------------------------

_SEMVER_IDENTIFIERS = re.compile(r"[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*")
_INT64 = 2**63


def _go_parse_int(text: str) -> int:
    """strconv.ParseInt(text, 10, 64): an optional sign, decimal digits (leading zeros fine)."""
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        raise _BuiltinError(f"invalid syntax: {text!r}")
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise _BuiltinError(f"value out of range: {text!r}")
    return value


def _semver(text: str) -> tuple[int, int, int, str]:
    """OPA's `semver.Parse`: an optional `v`, major.minor.patch, `-pre`, `+meta`."""
    version = text.removeprefix("v")
    version, _, meta = version.partition("+")
    if meta and not _SEMVER_IDENTIFIERS.fullmatch(meta):
        raise _BuiltinError("invalid metadata identifier")
    version, _, pre = version.partition("-")
    if pre and not _SEMVER_IDENTIFIERS.fullmatch(pre):
        raise _BuiltinError("invalid pre-release identifier")
    if version.count(".") != 2:
        raise _BuiltinError("should contain major, minor, and patch versions")
    major, minor, patch = (_go_parse_int(p) for p in version.split("."))
    return major, minor, patch, pre


def _pre_int(text: str) -> int:
    return min(int(text), _INT64 - 1)  # Go's Atoi saturates on overflow


def _semver_compare(a: tuple[int, int, int, str], b: tuple[int, int, int, str]) -> int:
    if a[:3] != b[:3]:
        return 1 if a[:3] > b[:3] else -1
    pa, pb = a[3], b[3]
    if pa == pb:
        return 0
    if not pa or not pb:
        return 1 if not pa else -1
    xs, ys = pa.split("."), pb.split(".")
    for x, y in zip(xs, ys, strict=False):
        x_int, y_int = x.isdigit() and x.isascii(), y.isdigit() and y.isascii()
        if x_int != y_int:
            return -1 if x_int else 1
        left, right = (_pre_int(x), _pre_int(y)) if x_int else (x, y)
        if left != right:
            return 1 if left > right else -1  # type: ignore[operator]  # both int or both str
    return (len(xs) > len(ys)) - (len(xs) < len(ys))


def semver_is_valid(value: Any) -> list[Any]:
    if not isinstance(value, str):
        return [True, False]
    try:
        _semver(value)
    except _BuiltinError:
        return [True, False]
    return [True, True]


def semver_compare(a: Any, b: Any) -> list[Any]:
    return [True, _semver_compare(_semver(_string(a)), _semver(_string(b)))]


# -- units.parse and units.parse_bytes: OPA's topdown/parse_units.go, parse_bytes.go ------------

_UNITS = {
    "m": Fraction(0.001),
    "": Fraction(1),
    "k": Fraction(1000),
    "K": Fraction(1000),
}  # 0.001 as a float64
_UNITS.update({"M": Fraction(10**6), "g": Fraction(10**9), "G": Fraction(10**9), "t": Fraction(10**12)})
_UNITS.update({"T": Fraction(10**12), "p": Fraction(10**15), "P": Fraction(10**15), "e": Fraction(10**18)})
_UNITS.update({"E": Fraction(10**18)})
for _i, _p in enumerate("kmgtpe", start=1):
    _UNITS[_p + "i"] = _UNITS[_p.upper() + "i"] = Fraction(1 << (10 * _i))
_BYTE_UNITS = {"": 1}
for _i, _p in enumerate("kmgtpe", start=1):
    _BYTE_UNITS[_p] = _BYTE_UNITS[_p + "b"] = 1000**_i
    _BYTE_UNITS[_p + "i"] = _BYTE_UNITS[_p + "ib"] = 1 << (10 * _i)
_GO_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_EXPONENT = 4000  # beyond it Go's big numbers are not reproduced here: fails closed


class UnitsUnsupportedError(Exception):
    """An amount trustgate does not compute as OPA does (an exponent beyond `_MAX_EXPONENT`, a
    result outside -2^63..2^64-1)."""


# regorus clamps an integer outside -2^63..2^64-1 that an extension returns (2^64 + 1 becomes
# 2^64 - 1) and rounds a float, where OPA keeps a number made from a string exactly: a built-in
# that would make one fails (exit 3), as such an integer in the input is refused.
_OUT_OF_RANGE = (
    "the number is outside -2^63..2^64-1, which the Rego engine (regorus) cannot hold exactly "
    "where OPA does: trustgate cannot reproduce OPA's answer"
)


def _split_amount(s: str) -> tuple[str, str]:
    """OPA's `extractNumAndUnit`: digits, `.`, and an exponent, then the unit."""
    data = s.encode("utf-8")
    idx = 0
    while idx < len(data):
        ch = chr(data[idx])
        if not (ch.isdigit() and ch.isascii()) and ch not in ".eE+-":
            break
        if ch in "eE":
            following = chr(data[idx + 1]) if idx + 1 < len(data) else ""
            if not following or (not (following.isascii() and following.isdigit()) and following not in "+-"):
                break
            if following in "+-":
                idx += 1
        idx += 1
    return data[:idx].decode("utf-8"), data[idx:].decode("utf-8", "replace")


def _amount(num: str) -> Fraction:
    """Go's big number parsing of the amount (a decimal, optionally signed, with exponent)."""
    if not _GO_NUMBER.fullmatch(num):
        raise _BuiltinError("could not parse amount to a number")
    mantissa, _, exponent = num.lower().partition("e")
    if exponent and abs(int(exponent)) > _MAX_EXPONENT:
        raise UnitsUnsupportedError(f"units: the amount {num!r} is too large for trustgate to reproduce")
    return Fraction(mantissa if mantissa[-1:] != "." else mantissa[:-1]) * Fraction(10) ** int(exponent or 0)


def _round_float(value: Fraction, bits: int = 64) -> Fraction:
    """`value` rounded to a big.Float of `bits` bits of mantissa (half to even)."""
    if value == 0:
        return value
    sign, mag = (-1 if value < 0 else 1), abs(value)
    exp = mag.numerator.bit_length() - mag.denominator.bit_length()
    if mag < Fraction(2) ** exp:
        exp -= 1
    scale = Fraction(2) ** (bits - 1 - exp)
    return sign * Fraction(round(mag * scale)) / scale


def units_parse(value: Any) -> list[Any]:
    s = _string(value).replace('"', "")
    if " " in s:
        raise _BuiltinError("spaces not allowed in resource strings")
    num, unit = _split_amount(s)
    if not num:
        raise _BuiltinError("no amount provided")
    if len(unit.encode("utf-8")) > 1:
        unit = unit[:1] + unit[1:].lower()
    if unit not in _UNITS:
        raise _BuiltinError("unit not recognized")
    total = _amount(num) * _UNITS[unit]
    if not ENGINE_INT_MIN <= total <= ENGINE_INT_MAX:
        raise UnitsUnsupportedError(f"units.parse({s!r}): {_OUT_OF_RANGE}")
    if total.denominator == 1:
        return [True, int(total)]
    return [True, float(round(total, 10))]  # FloatString(10)


def units_parse_bytes(value: Any) -> list[Any]:
    s = _string(value).lower().replace('"', "")
    if " " in s:
        raise _BuiltinError("spaces not allowed in resource strings")
    num, unit = _split_amount(s)
    if not num:
        raise _BuiltinError("no byte amount provided")
    if unit not in _BYTE_UNITS:
        raise _BuiltinError("byte unit not recognized")
    total = int(_round_float(_round_float(_amount(num)) * _BYTE_UNITS[unit]))  # Int truncates toward 0
    if not ENGINE_INT_MIN <= total <= ENGINE_INT_MAX:
        raise UnitsUnsupportedError(f"units.parse_bytes({s!r}): {_OUT_OF_RANGE}")
    return [True, total]


# -- yaml.* and json.is_valid --------------------------------------------------------------

_YAML_MAX_NODES = 1_000_000  # a document's nodes after aliases; more fails closed (OPA has no limit)


class YamlUnsupportedError(Exception):
    """A YAML document trustgate does not read as OPA does (an alias bomb, `!!set`): exit 3."""


_DIRECTIVE = re.compile(r"(?m)^%")


def _yaml(text: Any) -> Any:
    """sigs.k8s.io/yaml's `Unmarshal` (go-yaml v2, YAML 1.1 scalars and merge keys, then
    JSON): the first document's value; `_BuiltinError` where OPA's fails (syntax, NaN/Inf)."""
    for item in yamlio.parse_stream(_string(text).encode("utf-8"), max_nodes=_YAML_MAX_NODES):
        if isinstance(item, yamlio.YamlProblem):
            # An alias bomb, or a tag go-yaml reads and trustgate's reader refuses (`!!set`,
            # `!!omap`, a bare `<<`): what OPA answers is not known here.
            if "unsupported YAML tag" in item.message or "more than" in item.message:
                raise YamlUnsupportedError(f"yaml: {item.message}: trustgate cannot reproduce OPA's answer")
            if _DIRECTIVE.search(_string(text)):
                # go-yaml v2 reads `%YAML 1.1` and `%TAG` directives, which trustgate's reader
                # refuses: an error, not the undefined of a document OPA cannot read either.
                raise YamlUnsupportedError(
                    f"yaml: {item.message}: the text has a %-directive (`%YAML`, `%TAG`): "
                    "trustgate cannot reproduce OPA's answer"
                )
            raise _BuiltinError(item.message)
        return item.value
    return None  # an empty stream is null


def yaml_unmarshal(text: Any) -> list[Any]:
    """go-yaml makes an integer beyond int64 and uint64 a float64, and OPA compares a float by
    its shortest decimal (1.8446744073709552e19 is above 2^64), regorus by its binary value (it
    is 2^64): a number outside -2^63..2^64-1 fails closed."""
    value = _yaml(text)
    if _beyond_engine(value):
        raise YamlUnsupportedError(f"yaml.unmarshal: {_OUT_OF_RANGE}")
    return [True, value]


def _beyond_engine(value: Any) -> bool:
    """Whether `value` holds a number outside -2^63..2^64-1 (keys of a mapping included); a
    float on a bound counts, since it may be the rounding of a number beyond it."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return False
    if isinstance(value, int):
        return not ENGINE_INT_MIN <= value <= ENGINE_INT_MAX
    if isinstance(value, float):
        return not ENGINE_INT_MIN < value < ENGINE_INT_MAX
    if isinstance(value, dict):
        return any(_beyond_engine(k) or _beyond_engine(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_beyond_engine(v) for v in value)
    return False


def yaml_is_valid(text: Any) -> list[Any]:
    if not isinstance(text, str):
        return [True, False]  # OPA: false, not an error
    try:
        _yaml(text)
    except _BuiltinError:
        return [True, False]
    return [True, True]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_int(text: str) -> int:
    # More than a sign and 20 digits is out of range for sure (and int() refuses beyond 4300).
    number = int(text) if len(text) <= 21 else ENGINE_INT_MAX + 1
    if not ENGINE_INT_MIN <= number <= ENGINE_INT_MAX:
        raise NumberUnsupportedError(f"json.unmarshal: {_OUT_OF_RANGE}")
    return number


def _json_float(text: str) -> float:
    number = float(text)  # `1e400` is inf: out of range too (OPA keeps it exactly)
    # A float strictly within the range is the rounding of a number strictly within it.
    if not ENGINE_INT_MIN < number < ENGINE_INT_MAX:
        raise NumberUnsupportedError(f"json.unmarshal: {_OUT_OF_RANGE}")
    return number


def _replace_surrogates(value: Any) -> Any:
    """Go's decoder turns a `\\ud800` escape without its pair into U+FFFD, as here."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


def json_unmarshal(text: Any) -> list[Any]:
    """OPA's `json.unmarshal` (util.UnmarshalJSON: Go's decoder with UseNumber, so numbers are
    exact): an integer or float outside -2^63..2^64-1 fails closed (`_OUT_OF_RANGE`), which
    regorus' own clamped or rounded; invalid JSON is undefined, where regorus' raised."""
    s = _string(text)
    try:
        value = json.loads(s, parse_constant=_no_constant, parse_int=_json_int, parse_float=_json_float)
    except RecursionError as e:  # Go reads up to 10000 levels
        raise NumberUnsupportedError("json.unmarshal: nested too deeply for trustgate to read") from e
    except ValueError as e:
        raise _BuiltinError(f"invalid JSON: {e}") from e
    return [True, _replace_surrogates(value) if "\\u" in s else value]


def json_is_valid(text: Any) -> list[Any]:
    """Go's `json.Valid`: syntax only (`1e400` and a lone `\\ud800` escape are valid)."""
    if not isinstance(text, str):
        return [True, False]
    try:
        json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return [True, False]
    except RecursionError:
        # Go's scanner refuses nesting beyond 10000 (`maxNestingDepth`): invalid whatever
        # follows. Shallower, Python's parser cannot tell: an error (`_guarded`).
        if _nesting(text) > _GO_JSON_MAX_DEPTH:
            return [True, False]
        raise
    return [True, True]


_GO_JSON_MAX_DEPTH = 10000


def _nesting(text: str) -> int:
    """The deepest nesting of `[` and `{` outside strings (an iterative scan)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                return deepest  # unbalanced: Go's scanner stops here
    return deepest


def substring(value: Any, offset: Any, length: Any) -> list[Any]:
    """OPA's `substring`: runes; integral offset and length (1.5 is an error), a negative
    offset an error, a negative length to the end."""
    text, start, size = _string(value), _integer(offset), _integer(length)
    if start >= len(text):
        return [True, ""]
    if start < 0:
        raise _BuiltinError("negative offset")
    return [True, text[start:] if size < 0 else text[start : start + size]]


def array_slice(value: Any, start: Any, stop: Any) -> list[Any]:
    """OPA's `array.slice`: integral indexes (1.5 is an error), clamped to the array."""
    if not isinstance(value, list):
        raise _BuiltinError("operand 1 must be array")
    first, last = max(_integer(start), 0), min(max(_integer(stop), 0), len(value))
    return [True, value[first:last] if first < last else []]


def indexof(value: Any, search: Any) -> list[Any]:
    """OPA's `indexof`: a rune index, -1; an empty search string is an error."""
    text, sub = _string(value), _string(search)
    if not sub:
        raise _BuiltinError("empty search character")
    return [True, text.find(sub)]


def strings_replace_n(patterns: Any, value: Any) -> list[Any]:
    """Go's `strings.NewReplacer` over the pairs in key order: at each position the first
    pattern that matches there is replaced, all at once (`{"a": "b", "b": "a"}` swaps)."""
    if not isinstance(patterns, dict):
        raise _BuiltinError("operand 1 must be object")
    text = _string(value)
    pairs = []
    for old in sorted(patterns):
        if not isinstance(old, str) or not isinstance(patterns[old], str):
            raise _BuiltinError("patterns must be strings")
        pairs.append((old, patterns[old]))
    if any(not old for old, _ in pairs):  # Go's generic replacer with an empty key: not reproduced
        raise ReplacerUnsupportedError(
            "strings.replace_n with an empty pattern: trustgate cannot reproduce OPA"
        )
    out, i = [], 0
    while i < len(text):
        for old, new in pairs:
            if text.startswith(old, i):
                out.append(new)
                i += len(old)
                break
        else:
            out.append(text[i])
            i += 1
    return [True, "".join(out)]


class ReplacerUnsupportedError(Exception):
    """A `strings.replace_n` trustgate does not compute as Go does (an empty pattern): exit 3."""


_HEX = "0123456789abcdefABCDEF"


def urlquery_decode(value: Any) -> list[Any]:
    """Go's `url.QueryUnescape`: `+` is a space, every `%` needs two hex digits."""
    data = _utf8(_string(value))
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x25:  # %
            pair = data[i + 1 : i + 3].decode("latin-1")
            if len(pair) < 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise _BuiltinError("invalid URL escape")
            out.append(int(pair, 16))
            i += 3
            continue
        out.append(0x20 if b == 0x2B else b)
        i += 1
    try:
        return [True, out.decode("utf-8")]
    except UnicodeDecodeError as e:  # Go keeps the bytes; a Rego string here cannot hold them
        raise UrlUnsupportedError(
            "urlquery.decode to bytes that are not UTF-8: trustgate cannot reproduce them"
        ) from e


class UrlUnsupportedError(Exception):
    """`urlquery.decode` to bytes that are not UTF-8, which OPA keeps: exit 3."""


_MAX_CIDR_ADDRESSES = 1 << 16  # more fails closed (OPA expands any range)


def net_cidr_expand(value: Any) -> list[Any]:
    """OPA's `net.cidr_expand`: a *set* of every address of the network (Go's ParseCIDR)."""
    text = _string(value)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise _BuiltinError("invalid CIDR") from e
    if "/" not in text:
        raise _BuiltinError("invalid CIDR")
    if network.num_addresses > _MAX_CIDR_ADDRESSES or (
        isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None
    ):
        raise CidrUnsupportedError(f"net.cidr_expand({text!r}): trustgate cannot reproduce so large a set")
    return [True, {str(a) for a in network}]


class CidrUnsupportedError(Exception):
    """A network trustgate does not expand as OPA does (too large, IPv4-mapped): exit 3."""


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


class NumberUnsupportedError(Exception):
    """A string Go's ParseFloat reads and OPA then fails on (`+1`, `1.`, `0x1p4`): an error in
    OPA too, not a built-in error, so trustgate fails (exit 3) rather than answer. Also a number
    OPA keeps exactly and regorus cannot (`_OUT_OF_RANGE`)."""


def to_number(value: Any) -> list[Any]:
    """OPA's `to_number`: null 0, booleans 1/0, a string in JSON's number syntax (`" 1"`, `inf`
    and `1e400` are undefined)."""
    if value is None:
        return [True, 0]
    if isinstance(value, bool):
        return [True, int(value)]
    if isinstance(value, (int, float)):
        return [True, value]
    if not isinstance(value, str):
        raise _BuiltinError("operand 1 must be one of {null, boolean, number, string}")
    match = _JSON_NUMBER.fullmatch(value)
    if match:
        if match.group(1) or match.group(2):
            number: float = float(value)
            if not math.isfinite(number):
                raise _BuiltinError("value out of range")
            # Strictly within, a float is the rounding of a number strictly within the range.
            if not ENGINE_INT_MIN < number < ENGINE_INT_MAX:
                raise NumberUnsupportedError(f"to_number({value!r}): {_OUT_OF_RANGE}")
            return [True, number]
        if len(value) > 21 or not ENGINE_INT_MIN <= int(value) <= ENGINE_INT_MAX:
            raise NumberUnsupportedError(f"to_number({value!r}): {_OUT_OF_RANGE}")
        return [True, int(value)]
    if float_syntax(value):  # ParseFloat reads it (the special values aside)
        raise NumberUnsupportedError(
            f"to_number({value!r}): OPA fails on this number; trustgate cannot reproduce it"
        )
    raise _BuiltinError("invalid syntax")


_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _digits(text: str, i: int, fixed: bool) -> tuple[int, int]:
    """Go's `getnum`: one or two digits (exactly two when `fixed`): (value, next index)."""
    if not text[i : i + 1].isdigit() or not text[i : i + 1].isascii():
        raise _BuiltinError("bad number")
    if text[i + 1 : i + 2].isdigit() and text[i + 1 : i + 2].isascii():
        return int(text[i : i + 2]), i + 2
    if fixed:
        raise _BuiltinError("bad number")
    return int(text[i]), i + 1


def _literal(text: str, i: int, expected: str) -> int:
    if text[i : i + len(expected)] != expected:
        raise _BuiltinError(f"cannot parse as {expected!r}")
    return i + len(expected)


def time_parse_rfc3339_ns(value: Any) -> list[Any]:
    """Go's `time.Parse(time.RFC3339, s)` in nanoseconds (T and Z upper case, hours of one digit,
    `,` before fractions, offsets up to +24:00); outside int64 an error, as OPA checks."""
    text = _string(value)
    year_text = text[:4]
    digits = year_text[1:] if year_text[:1] in "+-" else year_text
    if len(year_text) < 4 or not digits.isascii() or not digits.isdigit():
        raise _BuiltinError("bad year")
    year = int(year_text)
    i = _literal(text, 4, "-")
    month, i = _digits(text, i, True)
    i = _literal(text, i, "-")
    day, i = _digits(text, i, True)
    i = _literal(text, i, "T")
    hour, i = _digits(text, i, False)
    i = _literal(text, i, ":")
    minute, i = _digits(text, i, True)
    i = _literal(text, i, ":")
    second, i = _digits(text, i, True)
    nanos = 0
    if text[i : i + 1] in (".", ",") and text[i + 1 : i + 2].isdigit() and text[i + 1 : i + 2].isascii():
        n = i + 1
        while n < len(text) and text[n].isascii() and text[n].isdigit():
            n += 1
        nanos = int(text[i + 1 : min(n, i + 10)].ljust(9, "0"))
        i = n
    if text[i : i + 1] == "Z":
        offset, i = 0, i + 1
    else:
        zone = text[i : i + 6]
        if len(zone) < 6 or zone[3] != ":" or zone[0] not in "+-":
            raise _BuiltinError("bad time zone")
        hours, _ = _digits(zone, 1, True)
        minutes, _ = _digits(zone, 4, True)
        if hours > 24 or minutes > 60:
            raise _BuiltinError("time zone offset out of range")
        offset = (hours * 3600 + minutes * 60) * (1 if zone[0] == "+" else -1)
        i += 6
    if i != len(text):
        raise _BuiltinError("extra text")
    if not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 59:
        raise _BuiltinError("out of range")
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _DAYS[month - 1] + (1 if month == 2 and leap else 0):
        raise _BuiltinError("day out of range")
    days = _days_from_civil(year, month, day)
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    nano = seconds * 1_000_000_000 + nanos
    if not -_INT64 <= nano < _INT64:
        raise _BuiltinError("time outside of int64 nanosecond range")  # OPA checks
    return [True, nano]


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (any year, 0 included)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


# -- json.filter and json.remove: OPA's topdown/json.go ----------------------------------------

_ABSENT = object()


def _json_paths(paths: Any) -> list[list[Any]]:
    """OPA's `getJSONPaths`: an array or set of `/` paths (`~1` is `/`, `~0` is `~`) or of arrays."""
    if isinstance(paths, (set, frozenset)):
        items = sorted(paths, key=lambda p: (not isinstance(p, str), json.dumps(p, sort_keys=True)))
    elif isinstance(paths, list):
        items = paths
    else:
        raise _BuiltinError("operand 2 must be one of {set, array}")
    out: list[list[Any]] = []
    for path in items:
        if isinstance(path, str):
            if not path:
                out.append([])
                continue
            parts = path.lstrip("/").split("/")
            out.append([p.replace("~1", "/").replace("~0", "~") for p in parts])
        elif isinstance(path, (list, tuple)):  # a tuple: an array in a set (`_gonumbers.decode`)
            out.append(list(path))
        else:
            raise _BuiltinError("paths must be strings or arrays")
    return out


def _paths_tree(paths: list[list[Any]]) -> dict[Any, Any]:
    """OPA's `pathsToObject`: nested objects, `None` (null) where a path ends: keep all below."""
    root: dict[Any, Any] = {}
    for path in paths:
        if not path:
            continue
        node: dict[Any, Any] | None = root
        for key in path[:-1]:
            assert node is not None
            child = node.get(key, _ABSENT)
            if child is _ABSENT:
                node[key] = {}
                node = node[key]
            elif child is None:
                node = None
                break
            else:
                node = child
        if node is not None:
            node[path[-1]] = None
    return root


def _filter(value: Any, tree: Any) -> Any:
    if tree is None or not isinstance(value, (dict, list, set, frozenset)):
        return value
    if isinstance(value, list):  # array indexes are the strings "0", "1"… in the tree
        return [_filter(v, tree[str(i)]) for i, v in enumerate(value) if str(i) in tree]
    if isinstance(value, (set, frozenset)):
        return {_filter(v, tree[v]) for v in value if v in tree}
    return {k: _filter(v, tree[k]) for k, v in value.items() if k in tree}


def _remove(value: Any, tree: Any) -> Any:
    if tree is _ABSENT:
        return value  # the paths diverged: keep it
    if tree is None:
        return _ABSENT  # a path ends here: drop it
    if not isinstance(value, (dict, list, set, frozenset)):
        return value  # a path through a scalar removes nothing
    if isinstance(value, list):
        kept = (_remove(v, tree.get(str(i), _ABSENT)) for i, v in enumerate(value))
        return [v for v in kept if v is not _ABSENT]
    if isinstance(value, (set, frozenset)):
        return {r for v in value if (r := _remove(v, tree.get(v, _ABSENT))) is not _ABSENT}
    out = {}
    for key, item in value.items():
        kept = _remove(item, tree.get(key, _ABSENT))
        if kept is not _ABSENT:
            out[key] = kept
    return out


def json_filter(value: Any, paths: Any) -> list[Any]:
    if not isinstance(value, dict):
        raise _BuiltinError("operand 1 must be object")
    return [True, _filter(value, _paths_tree(_json_paths(paths)))]


def json_remove(value: Any, paths: Any) -> list[Any]:
    if not isinstance(value, dict):
        raise _BuiltinError("operand 1 must be object")
    return [True, _remove(value, _paths_tree(_json_paths(paths)))]


def _rounding_operand(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BuiltinError("operand must be number")
    return value


def ceil(value: Any) -> list[Any]:
    """OPA's `ceil`: a number strictly between -1 and 0 loses its sign (`ceil(-0.5)` is 1, as
    OPA answers: the reference), elsewhere Go's `math.Ceil`."""
    number = _rounding_operand(value)
    return [True, 1 if -1 < number < 0 else math.ceil(number)]


def floor(value: Any) -> list[Any]:
    """OPA's `floor`: a number strictly between -1 and 0 loses its sign (`floor(-0.5)` is 0, as
    OPA answers), elsewhere Go's `math.Floor`."""
    number = _rounding_operand(value)
    return [True, 0 if -1 < number < 0 else math.floor(number)]


def _arithmetic(op: str) -> Callable[..., list[Any]]:
    """OPA's `+ - * /` of numbers (`_gonumbers.arithmetic`); any other operand is an operand
    error (`-` of two sets stays regorus': `_normalise` routes only what is not)."""

    def call(a: Any, b: Any) -> list[Any]:
        try:
            return [True, _gonumbers.arithmetic(op, a, b)]
        except _gonumbers.ArithmeticUnsupportedError as e:
            raise OperandUnsupportedError(f"{e}: trustgate cannot reproduce OPA's answer") from e

    call.__name__ = op
    return call


def _aggregate(op: str) -> Callable[..., list[Any]]:
    """OPA's `sum` and `product` (`_gonumbers.aggregate`) of what is not integers alone."""

    def call(values: Any) -> list[Any]:
        try:
            return [True, _gonumbers.aggregate(op, values)]
        except _gonumbers.ArithmeticUnsupportedError as e:
            raise OperandUnsupportedError(f"{e}: trustgate cannot reproduce OPA's answer") from e

    call.__name__ = op
    return call


class OperandUnsupportedError(Exception):
    """An operand trustgate's implementation cannot take (nested deeper than Python's
    recursion limit, an integer of more than 4300 digits) where OPA's answers: exit 3."""


def _guarded(fn: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    @functools.wraps(fn)
    def call(*args: Any) -> list[Any]:
        try:
            return fn(*map(_gonumbers.decode, args))
        except (_BuiltinError, _gonumbers.OperandError):
            return _UNDEFINED
        except RecursionError as e:
            raise OperandUnsupportedError(
                f"{fn.__name__}: the operand is nested too deep for trustgate's implementation: "
                "trustgate cannot reproduce OPA's answer"
            ) from e
        except ValueError as e:
            if "digits" not in str(e):
                raise
            raise OperandUnsupportedError(
                f"{fn.__name__}: a number of more digits than trustgate's implementation reads "
                f"({e}): trustgate cannot reproduce OPA's answer"
            ) from e

    return call


def _lazy(module: str, name: str) -> Callable[..., list[Any]]:
    """`trustgate.policy.<module>.<name>`, imported at the first call: a run whose policies call
    none of that module's built-ins never loads it."""

    def call(*args: Any) -> list[Any]:
        fn: Callable[..., list[Any]] = getattr(importlib.import_module(f"trustgate.policy.{module}"), name)
        return fn(*args)

    call.__name__ = name
    return call


_IMPLEMENTATIONS: dict[str, Callable[..., list[Any]]] = {
    "regex.match": regex_match,
    "regex.is_valid": regex_is_valid,
    "regex.find_n": regex_find_n,
    "regex.find_all_string_submatch_n": regex_find_all_string_submatch_n,
    "regex.split": regex_split,
    "regex.replace": regex_replace,
    "upper": upper,
    "lower": lower,
    "strings.count": strings_count,
    "glob.match": glob_match,
    "yaml.unmarshal": yaml_unmarshal,
    "yaml.is_valid": yaml_is_valid,
    "json.is_valid": json_is_valid,
    "json.unmarshal": json_unmarshal,
    "semver.is_valid": semver_is_valid,
    "semver.compare": semver_compare,
    "units.parse": units_parse,
    "units.parse_bytes": units_parse_bytes,
    "indexof": indexof,
    "strings.replace_n": strings_replace_n,
    "urlquery.decode": urlquery_decode,
    "net.cidr_expand": net_cidr_expand,
    "time.parse_rfc3339_ns": time_parse_rfc3339_ns,
    "time.parse_ns": _lazy("_gotime", "parse_ns"),
    "time.format": _lazy("_gotime", "time_format"),
    "time.date": _lazy("_gotime", "date"),
    "time.clock": _lazy("_gotime", "clock"),
    "time.weekday": _lazy("_gotime", "weekday"),
    "time.add_date": _lazy("_gotime", "add_date"),
    "time.diff": _lazy("_gotime", "diff"),
    "time.parse_duration_ns": _lazy("_gotime", "parse_duration_ns"),
    "to_number": to_number,
    "json.filter": json_filter,
    "json.remove": json_remove,
    "substring": substring,
    "array.slice": array_slice,
    "ceil": ceil,
    "floor": floor,
    "net.cidr_contains": _lazy("_gonet", "cidr_contains"),
    "net.cidr_intersects": _lazy("_gonet", "cidr_intersects"),
    "net.cidr_is_valid": _lazy("_gonet", "cidr_is_valid"),
    "base64.decode": _lazy("_goencoding", "base64_decode"),
    "base64.is_valid": _lazy("_goencoding", "base64_is_valid"),
    "base64url.decode": _lazy("_goencoding", "base64url_decode"),
    "hex.decode": _lazy("_goencoding", "hex_decode"),
    "urlquery.encode": _lazy("_goencoding", "urlquery_encode"),
    "urlquery.encode_object": _lazy("_goencoding", "urlquery_encode_object"),
    "urlquery.decode_object": _lazy("_goencoding", "urlquery_decode_object"),
    "json.marshal": _lazy("_goencoding", "json_marshal"),
    "json.marshal_with_options": _lazy("_goencoding", "json_marshal_with_options"),
    "regex.template_match": _lazy("_gotext", "regex_template_match"),
    "glob.quote_meta": _lazy("_gotext", "glob_quote_meta"),
    "indexof_n": _lazy("_gotext", "indexof_n"),
    "replace": _lazy("_gotext", "replace"),
    "format_int": _gonumbers.format_int,
    **{op: _arithmetic(op) for op in ("plus", "minus", "mul", "div")},
    **{op: _aggregate(op) for op in ("sum", "product")},
}
_ARITIES = {
    "regex.match": 2,
    "regex.is_valid": 1,
    "regex.find_n": 3,
    "regex.find_all_string_submatch_n": 3,
    "regex.split": 2,
    "regex.replace": 3,
    "upper": 1,
    "lower": 1,
    "strings.count": 2,
    "glob.match": 3,
    "yaml.unmarshal": 1,
    "yaml.is_valid": 1,
    "json.is_valid": 1,
    "json.unmarshal": 1,
    "semver.is_valid": 1,
    "semver.compare": 2,
    "units.parse": 1,
    "units.parse_bytes": 1,
    "indexof": 2,
    "strings.replace_n": 2,
    "urlquery.decode": 1,
    "net.cidr_expand": 1,
    "time.parse_rfc3339_ns": 1,
    "time.parse_ns": 2,
    "time.format": 1,
    "time.date": 1,
    "time.clock": 1,
    "time.weekday": 1,
    "time.add_date": 4,
    "time.diff": 2,
    "time.parse_duration_ns": 1,
    "to_number": 1,
    "json.filter": 2,
    "json.remove": 2,
    "substring": 3,
    "array.slice": 3,
    "ceil": 1,
    "floor": 1,
    "net.cidr_contains": 2,
    "net.cidr_intersects": 2,
    "net.cidr_is_valid": 1,
    "base64.decode": 1,
    "base64.is_valid": 1,
    "base64url.decode": 1,
    "hex.decode": 1,
    "urlquery.encode": 1,
    "urlquery.encode_object": 1,
    "urlquery.decode_object": 1,
    "json.marshal": 1,
    "json.marshal_with_options": 2,
    "regex.template_match": 4,
    "glob.quote_meta": 1,
    "indexof_n": 2,
    "replace": 3,
    "format_int": 2,
    **dict.fromkeys(("plus", "minus", "mul", "div"), 2),
    **dict.fromkeys(("sum", "product"), 1),
}
_MARSHALLED = frozenset({"json.marshal", "json.marshal_with_options"})
# Rego built-in name -> its Go-semantics implementation, as a regorus extension.
BUILTINS: dict[str, Builtin] = {
    name: Builtin(GO_EXTENSIONS + name.replace(".", "_"), _ARITIES[name], _guarded(fn), name in _MARSHALLED)
    for name, fn in _IMPLEMENTATIONS.items()
}


def register(engine: Any) -> None:
    """Add every implementation to a regorus engine as an extension."""
    for builtin in BUILTINS.values():
        engine.add_extension(builtin.extension, builtin.arity, builtin.fn)
