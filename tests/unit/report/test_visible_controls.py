"""`visible_controls`: every character the reports print is safe or escaped, whatever the text holds."""

from __future__ import annotations

import pytest

from trustgate.report._common import visible_controls

_BIDI = {*range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def _expected(text: str, keep: str) -> str:
    """The rule, character by character: what each unsafe character must become."""
    out = []
    for ch in text:
        code = ord(ch)
        unsafe = (
            (code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or code in _BIDI)
            and ch not in keep
        ) or code in (0xFFFE, 0xFFFF)
        if not unsafe:
            out.append(ch)
        else:
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
    return "".join(out)


@pytest.mark.parametrize("keep", ["\n\t", "\n\t\r", "", "\x1b\ufffe"])
def test_every_code_point_is_kept_or_escaped_as_the_rule_says(keep: str) -> None:
    # The whole Basic Multilingual Plane and the first astral planes, in chunks as texts.
    for start in range(0, 0x30000, 4096):
        text = "".join(chr(c) for c in range(start, start + 4096))
        assert visible_controls(text, keep=keep) == _expected(text, keep), hex(start)


def test_escapes_read_as_the_characters_they_replace() -> None:
    shown = visible_controls("name\x1b[2J\u202eevil\ud800\t\n", keep="\n")
    assert shown == "name\\x1b[2J\\u202eevil\\ud800\\x09\n"


def test_text_without_controls_is_returned_unchanged() -> None:
    text = "nginx:1.27 — “quoted” ✓ 日本語 🙂"
    assert visible_controls(text) is text
