"""`trustgate.report.render`: the one entry point the CLI calls."""

from __future__ import annotations

import pytest

from trustgate.model import Decision, Mode
from trustgate.report import FORMATS, github, json_report, junit, render, sarif, text


def test_formats_are_the_documented_five() -> None:
    assert FORMATS == ("text", "json", "sarif", "junit", "github")


def test_each_format_goes_to_its_writer(sample_decision: Decision) -> None:
    assert render(sample_decision, "text") == text.render(sample_decision)
    assert render(sample_decision, "text", color=True) == text.render(sample_decision, color=True)
    assert render(sample_decision, "json") == json_report.render(sample_decision)
    assert render(sample_decision, "sarif") == sarif.render(sample_decision)
    assert render(sample_decision, "junit") == junit.render(sample_decision)
    assert render(sample_decision, "github") == github.render(sample_decision)


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "github"])
def test_color_only_changes_text(sample_decision: Decision, fmt: str) -> None:
    assert render(sample_decision, fmt, color=True) == render(sample_decision, fmt)
    assert "\x1b[" not in render(sample_decision, fmt, color=True)


@pytest.mark.parametrize("fmt", ["", "TEXT", "yaml", "sarif2", "html"])
def test_unknown_format_raises_value_error(sample_decision: Decision, fmt: str) -> None:
    with pytest.raises(ValueError, match="unknown report format") as info:
        render(sample_decision, fmt)
    for known in FORMATS:
        assert known in str(info.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_trailing_newline_and_nonempty(sample_decision: Decision, fmt: str) -> None:
    out = render(sample_decision, fmt)
    assert out
    assert not out.endswith("\n")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_handles_an_empty_decision(fmt: str) -> None:
    out = render(Decision(gate="ci", mode=Mode.ENFORCE, results=[]), fmt)
    assert out
