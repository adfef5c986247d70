"""What every report writer needs to know about a decision, whatever its layout.

This module owns the small rules the writers share: how a document is named,
which line a finding points at, when a finding counts as waived, how results
group by file and how untrusted text is made safe to print. It decides no
layout; each writer does that.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping

from trustgate.model import Decision, DocumentResult, Finding, Severity, render_path

STDIN = "-"  # the file name loaders give to documents read from standard input

_SEVERITY_ORDER: Mapping[Severity, int] = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def is_stdin(file: str) -> bool:
    return file == STDIN


def display_file(file: str) -> str:
    """The file name as a person reads it: `<stdin>` for standard input."""
    return "<stdin>" if is_stdin(file) else file


def document_label(result: DocumentResult) -> str:
    """`Kind/namespace/name`, or `document N` when the input had no identity to show."""
    if result.kind is None and result.name is None:
        return f"document {result.source.index + 1}"
    return result.label


def finding_line(finding: Finding, result: DocumentResult) -> int:
    """The line a finding points at: its field's line, else its document's; never below 1."""
    line = finding.line if finding.line is not None else result.source.line
    return max(1, line)


def is_waived(finding: Finding) -> bool:
    """True when an exception that has not expired covers the finding."""
    return finding.exception is not None and not finding.exception.expired


def by_severity(findings: Iterable[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; stable within a severity."""
    return sorted(findings, key=lambda f: _SEVERITY_ORDER.get(f.severity, len(_SEVERITY_ORDER)))


def group_by_file(results: Iterable[DocumentResult]) -> dict[str, list[DocumentResult]]:
    """Results keyed by file, files and documents in the order they came."""
    groups: dict[str, list[DocumentResult]] = {}
    for result in results:
        groups.setdefault(result.source.file, []).append(result)
    return groups


def sub_decision(decision: Decision, results: list[DocumentResult]) -> Decision:
    """The same verdict over a subset of results, so per-file counts follow the model's rules."""
    return Decision(gate=decision.gate, mode=decision.mode, results=results)


def summary_line(decision: Decision) -> str:
    s = decision.summary
    return (
        f"{s.documents} documents: {s.passed} passed, {s.failed} failed, "
        f"{s.warnings} warnings, {s.errors} errors"
    )


def finding_details(finding: Finding, result: DocumentResult) -> list[str]:
    """The lines that follow a finding's headline: where, how to fix, why it is waived.

    Shared by the text and JUnit writers so both tell the same story.
    """
    lines: list[str] = []
    where: list[str] = []
    if finding.line is not None:
        # A line break in a file name would start a line of its own in the report: shown escaped.
        where.append(f"{visible_controls(display_file(result.source.file), keep='')}:{finding.line}")
    if finding.path:
        where.append(render_path(finding.path))
    if where:
        lines.append("at " + "  ".join(where))
    if finding.fix:
        lines.append(f"fix: {finding.fix}")
    exc = finding.exception
    if exc is not None:
        if exc.expired:
            lines.append(
                f"exception {exc.name} (owner {exc.owner}) expired on {exc.expires}; "
                "it no longer waives this finding"
            )
        else:
            reason = f": {exc.reason}" if exc.reason else ""
            lines.append(f"waived by exception {exc.name} (owner {exc.owner}, expires {exc.expires}){reason}")
    if finding.note:
        lines.append(f"note: {finding.note}")
    return lines


def visible_controls(text: str, *, keep: str = "\n\t") -> str:
    """Replace control, format (bidi, zero-width), separator and unpaired-surrogate characters with
    visible escapes.

    Manifests are untrusted: a name or message carrying ESC sequences could
    repaint a terminal or hide a line, an invisible or blank character makes
    two different names look alike (`pro\\u200bd`, `prod` with a no-break
    space, and `prod`), and a lone surrogate cannot be encoded. See
    `_UNSAFE_RANGES`.

    Some of them are part of how other scripts and emoji are written, and
    stay where they do that (`_in_context`): the zero-width non-joiner and
    joiner U+200C/U+200D between two non-ASCII letters, marks or symbols
    (Persian words, Hindi conjuncts, an emoji family: man, ZWJ, woman), a
    variation selector U+FE00-U+FE0F after one (a red heart's U+FE0F), and
    the ideographic space U+3000 between two non-ASCII characters (CJK
    text). Next to ASCII, or at either end, they are escaped: that is where
    they disguise an identifier (`pro\\u200dd`).

    Args:
        text: the text to clean.
        keep: control characters to leave as they are.

    Returns:
        `text` with each unsafe character shown as `\\xNN`, `\\uNNNN` or `\\UNNNNNNNN`.
    """
    unsafe = _unsafe_pattern(keep)
    if unsafe.search(text) is None:  # nearly every text: one scan in C
        return text
    return unsafe.sub(_escape, text)


# What makes a spreadsheet read a cell as a formula (OWASP's "CSV injection"), and the quote that
# marks a cell this escaped, so that a value which itself starts with one stays recoverable.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def spreadsheet_cell(value: str) -> str:
    """`value` as a CSV cell a spreadsheet shows as text, never runs as a formula, and a terminal
    shows as it is; `cell_value` gets the value back.

    A checked manifest's namespace or image can be `=HYPERLINK(...)`. As
    OWASP recommends, a cell starting with `=`, `+`, `-`, `@`, a tab or a
    carriage return gets a single quote in front; so does one that starts
    with a quote. Then, as in a table, every control character (newline, CR
    and ESC too) and invisible character is shown as its escape
    (`visible_controls`): CSV written to a terminal (or `cat`) must not
    repaint it, and a row must not pass for two. So that an escape and the
    same text written in the value (a real U+200B and the six characters
    `\\u200b`) stay two cells, every backslash of the value is doubled first.
    """
    cell = value.replace("\\", "\\\\")
    cell = "'" + cell if cell.startswith(_FORMULA_STARTS) else cell
    return visible_controls(cell, keep="")


_CELL_ESCAPE = re.compile(r"\\(?:\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")


def cell_value(cell: str) -> str:
    """The value `spreadsheet_cell` made `cell` of: the quote a cell starts with dropped, then each
    `\\xNN`, `\\uNNNN` and `\\UNNNNNNNN` the character it names, and each `\\\\` one backslash."""
    text = cell[1:] if cell.startswith("'") else cell
    return _CELL_ESCAPE.sub(lambda m: "\\" if m.group() == "\\\\" else chr(int(m.group()[2:], 16)), text)


# The unsafe characters as ranges: C0 and C1 controls, DEL and surrogates; every format character
# (Unicode category Cf: the bidi overrides and isolates that reorder what a terminal shows, "Trojan
# Source"; zero-width spaces and joiners, word joiners, the soft hyphen, the BOM, the tag characters
# U+E0000-U+E007F) and the line and paragraph separators U+2028/U+2029 (Zl, Zp); and the characters
# that show as nothing though they are not Cf: the combining grapheme joiner U+034F, the Hangul
# fillers U+115F, U+1160, U+3164, U+FFA0, the Khmer vowels U+17B4/5, the Mongolian variation
# selectors and vowel separator U+180B-U+180F, and the variation selectors U+FE00-U+FE0F and
# U+E0100-U+E01EF. With them `pro\u200bd` looks like `prod` (Unicode 14's Cf list, as of Python
# 3.11). Ordinary letters of every script stay: a look-alike from another script (Cyrillic `\u043e` in
# `pr\u043ed`) is not escaped.
_UNSAFE_RANGES = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0xAD, 0xAD),
    (0x34F, 0x34F),
    (0x600, 0x605),
    (0x61C, 0x61C),
    (0x6DD, 0x6DD),
    (0x70F, 0x70F),
    (0x890, 0x891),
    (0x8E2, 0x8E2),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xD800, 0xDFFF),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),  # 0x13439-0x1343F: Cf since Unicode 15 (Python 3.12)
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE007F),
    (0xE0100, 0xE01EF),
    # Blank though not format characters: every space separator but U+0020 (the no-break space
    # U+00A0, U+1680, U+2000-U+200A, U+202F, U+205F, the ideographic space U+3000, which stays
    # between CJK characters: `_in_context`), and the blank Braille pattern U+2800.
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x2800, 0x2800),
    (0x3000, 0x3000),
)
_NONCHARACTERS = "\ufffe\uffff"
_TABLE_UNICODE = "14.0.0"  # the Unicode version `_UNSAFE_RANGES` lists the characters of


@functools.lru_cache(maxsize=1)
def _derived_ranges() -> tuple[tuple[int, int], ...]:
    """The Cf, Zl, Zp and Zs characters (but U+0020) of this Python's Unicode database, as ranges:
    a newer Python knows format characters the table above, of Unicode 14, does not (U+13439-U+1343F
    since Python 3.12). Read once, on first use (the planes that have them: some 35 ms), and only
    where the database is not the table's own version (every one of its characters is in the table:
    `test_visible_controls` checks every code point), so that a run of Python 3.11 never pays for it."""
    if unicodedata.unidata_version == _TABLE_UNICODE:
        return ()
    found: list[tuple[int, int]] = []
    for code in (*range(0x40000), *range(0xE0000, 0xE1000)):
        if code != 0x20 and unicodedata.category(chr(code)) in ("Cf", "Zl", "Zp", "Zs"):
            if found and found[-1][1] == code - 1:
                found[-1] = (found[-1][0], code)
            else:
                found.append((code, code))
    return tuple(found)


@functools.lru_cache(maxsize=8)
def _unsafe_pattern(keep: str) -> re.Pattern[str]:
    """One character class of the unsafe characters, less those in `keep` (never the noncharacters)."""
    kept = sorted({ord(ch) for ch in keep if ch not in _NONCHARACTERS})
    ranges = []
    for low, high in (*_UNSAFE_RANGES, *_derived_ranges()):
        for code in kept:  # cut each kept character out of its range
            if low <= code <= high:
                if low < code:
                    ranges.append((low, code - 1))
                low = code + 1
        if low <= high:
            ranges.append((low, high))
    ranges += [(ord(ch), ord(ch)) for ch in _NONCHARACTERS]
    return re.compile("[" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in ranges) + "]")


# Characters kept where they join or vary non-ASCII text (`_in_context`), else escaped.
_CONTEXTUAL = frozenset({0x200C, 0x200D, 0x3000, *range(0xFE00, 0xFE10)})


def _in_context(text: str, at: int, code: int) -> bool:
    """Whether the contextual character at `at` sits where it joins or varies non-ASCII text."""

    def written(index: int, kinds: str) -> bool:
        if not 0 <= index < len(text):
            return False
        ch = text[index]
        return not ch.isascii() and unicodedata.category(ch)[0] in kinds and ord(ch) not in _CONTEXTUAL

    if 0xFE00 <= code <= 0xFE0F:  # varies the letter or symbol before it
        return written(at - 1, "LMS")
    if code == 0x3000:  # an ideographic space between CJK (or other non-ASCII) characters
        return written(at - 1, "LMNPS") and written(at + 1, "LMNPS")
    # ZWNJ, ZWJ: between letters, marks (a variation selector too) or symbols (emoji, modifiers)
    before = at - 1
    if before >= 1 and 0xFE00 <= ord(text[before]) <= 0xFE0F:  # a red heart, U+FE0F, ZWJ, fire
        before -= 1
    return written(before, "LMS") and written(at + 1, "LMS")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code in _CONTEXTUAL and _in_context(match.string, match.start(), code):
        return match.group()
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
