"""String built-ins as OPA computes them: `regex.template_match`, `glob.quote_meta`,
`indexof_n` and `replace`.

Owns: built-ins whose regorus version answers otherwise than OPA's (ADR 0008, item 17).
`regex.template_match`: OPA's port of gorilla/mux's template (delimiters balanced byte by
byte, text between them quoted with Go's `regexp.QuoteMeta`, each part compiled with Go's
regexp) on Go's RE2, where regorus used Rust's regex (`\\d` matched `٨٠`: a false allow) and
gave a value for unbalanced delimiters. `glob.quote_meta`: gobwas/glob's `QuoteMeta` escapes
`* ? \\ [ ] { }` (regorus left `?`, `[` and `{` as wildcards). `indexof_n`: undefined for an
empty search string. `replace`: an empty pattern on non-ASCII text makes OPA cut the text
between bytes, which trustgate cannot hold: that fails closed (exit 3).

Leaves out: OPA keeps one cache of compiled patterns for `regex.match` and
`regex.template_match`, by the pattern's text, so a template already compiled as a plain
pattern (or the reverse) in the same process is matched as that: not reproduced, trustgate
answers as a fresh OPA does. Imported at the first call of one of these built-ins.
"""

from __future__ import annotations

from typing import Any

from trustgate.policy._gobuiltins import _BuiltinError, _compile, _search, _string, _utf8


class TextUnsupportedError(Exception):
    """A string OPA makes that trustgate cannot hold (bytes that are not UTF-8): exit 3."""


_REGEXP_META = frozenset("\\.+*?()|[]{}^$")
_GLOB_META = frozenset("*?\\[]{}")


def _quote(text: str, meta: frozenset[str]) -> str:
    return "".join("\\" + c if c in meta else c for c in text)


def _delimiters(template: bytes, start: int, end: int) -> list[int]:
    """OPA's `delimiterIndices`: first-level delimiter spans, by byte."""
    level, begin, spans = 0, 0, []
    for i, b in enumerate(template):
        if b == start:
            level += 1
            if level == 1:
                begin = i
        elif b == end:
            level -= 1
            if level == 0:
                spans += [begin, i + 1]
            elif level < 0:
                raise _BuiltinError("unbalanced braces")
    if level:
        raise _BuiltinError("unbalanced braces")
    return spans


def regex_template_match(template: Any, value: Any, start: Any, end: Any) -> list[Any]:
    """OPA's `regex.template_match` (`compileRegexTemplate`), on Go's RE2."""
    raw = _utf8(_string(template))
    subject = _utf8(_string(value))
    first, last = _utf8(_string(start)), _utf8(_string(end))
    if len(first) != 1 or len(last) != 1:
        raise _BuiltinError("delimiter has to be exactly one character long")
    spans = _delimiters(raw, first[0], last[0])
    pattern, done = ["^"], 0
    for i in range(0, len(spans), 2):
        text, inner = raw[done : spans[i]], raw[spans[i] + 1 : spans[i + 1] - 1]
        done = spans[i + 1]
        part = inner.decode("utf-8")  # a one-byte delimiter is ASCII: never inside a character
        if _compile(f"^{part}$") is None:
            raise _BuiltinError("error parsing regexp")
        pattern.append(f"{_quote(text.decode('utf-8'), _REGEXP_META)}({part})")
    pattern.append(_quote(raw[done:].decode("utf-8"), _REGEXP_META) + "$")
    compiled = _compile("".join(pattern))
    if compiled is None:
        raise _BuiltinError("error parsing regexp")
    return [True, _search(compiled, subject) is not None]


def glob_quote_meta(value: Any) -> list[Any]:
    """gobwas/glob's `QuoteMeta`: a backslash before each of `* ? \\ [ ] { }`."""
    return [True, _quote(_string(value), _GLOB_META)]


def indexof_n(value: Any, search: Any) -> list[Any]:
    """OPA's `indexof_n`: every index, in code points, where `search` starts (overlaps included);
    an empty `search` is an error (undefined)."""
    text, needle = _string(value), _string(search)
    if not needle:
        raise _BuiltinError("empty search character")
    return [True, [i for i in range(len(text) - len(needle) + 1) if text.startswith(needle, i)]]


def replace(value: Any, old: Any, new: Any) -> list[Any]:
    """OPA's `replace`: every non-overlapping `old`, left to right (Go's `strings.Replace`)."""
    text, pattern, replacement = _string(value), _string(old), _string(new)
    if not pattern and not text.isascii():
        raise TextUnsupportedError(
            "replace with an empty pattern in non-ASCII text: OPA inserts between the bytes of a "
            "character, which trustgate cannot reproduce"
        )
    return [True, text.replace(pattern, replacement)]
