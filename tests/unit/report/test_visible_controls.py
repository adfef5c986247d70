"""`visible_controls`: every character the reports print is safe or escaped, whatever the text holds."""

from __future__ import annotations

import unicodedata

import pytest

from trustgate.report._common import visible_controls

# Shown as nothing, or as a space, though not of the categories below: the combining grapheme
# joiner, the Hangul fillers, the Khmer inherent vowels, the Mongolian free variation selectors and
# the variation selectors.
_INVISIBLE = {
    0x034F,
    0x115F,
    0x1160,
    0x3164,
    0xFFA0,
    0x17B4,
    0x17B5,
    *range(0x180B, 0x1810),
    *range(0xFE00, 0xFE10),
    *range(0xE0100, 0xE01F0),
    *range(0xE0000, 0xE0080),  # the tag block, unassigned ones too
    0x2065,  # unassigned, among the invisible operators and bidi isolates
    0x2800,  # the blank Braille pattern
    *range(0x13439, 0x13440),  # Egyptian format controls: Cf since Unicode 15, on every Python
}
# Kept where they join or vary non-ASCII text (see `_kept_here`), else escaped.
_CONTEXTUAL = {0x200C, 0x200D, 0x3000, *range(0xFE00, 0xFE10)}


def _unsafe(code: int) -> bool:
    """Controls, surrogates, format characters (bidi, zero-width, BOM, tags), line and paragraph
    separators, and the invisible fillers and selectors."""
    category = unicodedata.category(chr(code))
    spaces = category == "Zs" and code != 0x20  # blank: a no-break space looks like none
    return category in ("Cc", "Cf", "Cs", "Zl", "Zp") or spaces or code in _INVISIBLE


def _written(text: str, index: int, kinds: str) -> bool:
    """A non-ASCII character of one of these major categories (not a contextual one) at `index`."""
    if index < 0 or index >= len(text):
        return False
    ch = text[index]
    return ord(ch) > 0x7F and unicodedata.category(ch)[0] in kinds and ord(ch) not in _CONTEXTUAL


def _kept_here(text: str, at: int) -> bool:
    """The rule for the contextual characters: ZWNJ and ZWJ between non-ASCII letters, marks or
    symbols (a variation selector before it skipped); a variation selector after one; U+3000
    between non-ASCII letters, marks, numbers, punctuation or symbols."""
    code = ord(text[at])
    if code == 0x3000:
        return _written(text, at - 1, "LMNPS") and _written(text, at + 1, "LMNPS")
    if code in (0x200C, 0x200D):
        before = at - 2 if at >= 2 and ord(text[at - 1]) in range(0xFE00, 0xFE10) else at - 1
        return _written(text, before, "LMS") and _written(text, at + 1, "LMS")
    return _written(text, at - 1, "LMS")


def _expected(text: str, keep: str) -> str:
    """The rule, character by character: what each unsafe character must become."""
    out = []
    for at, ch in enumerate(text):
        code = ord(ch)
        unsafe = (_unsafe(code) and ch not in keep) or code in (0xFFFE, 0xFFFF)
        unsafe = unsafe and not (code in _CONTEXTUAL and ch not in keep and _kept_here(text, at))
        if not unsafe:
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)


@pytest.mark.parametrize("keep", ["\n\t", "\n\t\r", "", "\x1b\ufffe"])
def test_every_code_point_is_kept_or_escaped_as_the_rule_says(keep: str) -> None:
    # The whole Basic Multilingual Plane and the first astral planes, in chunks as texts.
    for start in [*range(0, 0x30000, 4096), 0xE0000]:
        text = "".join(chr(c) for c in range(start, start + 4096))
        assert visible_controls(text, keep=keep) == _expected(text, keep), hex(start)


def test_escapes_read_as_the_characters_they_replace() -> None:
    shown = visible_controls("name\x1b[2J\u202eevil\ud800\t\n", keep="\n")
    assert shown == "name\\x1b[2J\\u202eevil\\ud800\\x09\n"


def test_text_without_controls_is_returned_unchanged() -> None:
    text = "nginx:1.27 — “quoted” ✓ 日本語 🙂"
    assert visible_controls(text) is text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("pro\u200bd", "pro\\u200bd"),  # zero-width space: looks like `prod`
        ("alice@corp.example\u200b", "alice@corp.example\\u200b"),
        ("a\u200c\u200d\u200e\u200fb", "a\\u200c\\u200d\\u200e\\u200fb"),
        ("a\u2060\u2061\u2064b", "a\\u2060\\u2061\\u2064b"),
        ("\ufeffprod", "\\ufeffprod"),
        ("pro\xadd", "pro\\xadd"),  # soft hyphen
        ("pro\u034fd", "pro\\u034fd"),
        ("a\u061cb", "a\\u061cb"),
        ("\u115f\u1160\u3164\uffa0", "\\u115f\\u1160\\u3164\\uffa0"),  # Hangul fillers
        ("a\u17b4\u17b5\u180eb", "a\\u17b4\\u17b5\\u180eb"),
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # line and paragraph separators
        ("prod\xa0", "prod\\xa0"),  # a no-break space: looks like `prod ` in `log stats`
        ("pro\u2800d", "pro\\u2800d"),  # the blank Braille pattern
        ("a\u3000b\u2002c\u202fd\u205fe\u1680f", "a\\u3000b\\u2002c\\u202fd\\u205fe\\u1680f"),
        ("pro\u200dd", "pro\\u200dd"),  # a joiner next to ASCII disguises an identifier
        ("\u200c\u0645", "\\u200c\u0645"),  # at an edge
        ("\u0645\u200c", "\u0645\\u200c"),
        ("\ufe0f\u2764", "\\ufe0f\u2764"),
        ("a\U00013439b", "a\\U00013439b"),  # a format character of Unicode 15, on every Python
        ("prod\U000e0041\U000e007f", "prod\\U000e0041\\U000e007f"),  # tag characters
        ("prod\ufe0f", "prod\\ufe0f"),
    ],
)
def test_invisible_characters_are_shown_as_escapes(text: str, shown: str) -> None:
    """A zero-width or format character makes `pro\u200bd` print as `prod` (in `log stats`, the
    UI's lists and charts): every one is escaped, whatever `keep` says of controls."""
    assert visible_controls(text) == shown
    assert visible_controls(text, keep="") == shown


def test_letters_of_every_script_stay_as_they_are() -> None:
    """A look-alike letter (Cyrillic `\u043e` in `pr\u043ed`) is a letter: not escaped (no
    homoglyph check)."""
    text = "pr\u043ed é ü 日本語 한국어 ㄱ Ελληνικά"
    assert visible_controls(text, keep="") is text


@pytest.mark.parametrize(
    "text",
    [
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, with a zero-width non-joiner
        "\u0915\u094d\u200d\u0937",  # Hindi: a half form by a zero-width joiner
        "\u0915\u094d\u200c\u0937",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # an emoji family
        "\u2764\ufe0f",  # a red heart (emoji presentation)
        "\u2764\ufe0f\u200d\U0001f525",  # a heart on fire
        "\U0001f469\U0001f3fd\u200d\U0001f4bb",  # a skin tone, then a joiner
        "\u6771\u4eac\u3000\u30bf\u30ef\u30fc",  # an ideographic space between CJK words
        "team: \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f468\u200d\U0001f469\u200d\U0001f467",
    ],
)
def test_joiners_and_selectors_that_write_other_scripts_and_emoji_stay(text: str) -> None:
    assert visible_controls(text, keep="") == text
    assert visible_controls(text, keep="") == _expected(text, "")
