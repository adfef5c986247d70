"""The reports' JSON text is `json.dumps(value, indent=2)`'s, but for the float forms the writer names."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustgate.model import Decision
from trustgate.report import _indented_json, json_report, sarif


class Level(enum.IntEnum):
    LOW = 1


class Name(enum.StrEnum):
    A = "a"


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


VALUES: list[Any] = [
    {},
    [],
    "",
    None,
    True,
    0,
    -1.5,
    1e300,
    0.025,
    {"a": [], "b": {}, "c": [{}], "d": [[1, [2, []]]]},
    {"unicode": "caf\u00e9 \U0001f600 \u2028", "ctrl": '\x00\t\n"\\\x7f'},  # escaped, as json.dumps does
    ("tuple", 1),
    {"enum": Level.LOW, "str enum": Name.A, "nested": [Level.LOW, Name.A]},
    # What orjson refuses goes to json.dumps, with its text:
    {2: "int key", True: "bool key", None: "none key", 1.5: "float key"},
    {"big": 2**70, "negative": -(2**64)},
    {"lone surrogate": "\ud800"},
    _deep(300),  # orjson stops at 255 levels
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_same_text_as_the_standard_library(value: Any) -> None:
    text = _indented_json.dumps(value)
    assert text == json.dumps(value, indent=2)
    assert text.isascii()


def test_every_character_is_written_as_the_standard_library_writes_it() -> None:
    for start in range(0, 0x110000, 0x8000):
        chars = "".join(chr(c) for c in range(start, start + 0x8000) if not 0xD800 <= c <= 0xDFFF)
        value = {"text": chars, chars[:50]: [chars[::-1]]}
        assert _indented_json.dumps(value) == json.dumps(value, indent=2), hex(start)
    ascii_only = {"text": "".join(chr(c) for c in range(128))}  # orjson's own path: controls, quotes
    assert _indented_json.dumps(ascii_only) == json.dumps(ascii_only, indent=2)


def test_nan_and_infinities_are_null_not_the_invalid_json_of_the_standard_library() -> None:
    assert json.loads(_indented_json.dumps([math.nan, math.inf, -math.inf])) == [None, None, None]


def test_small_and_large_floats_read_back_as_the_same_numbers() -> None:
    values = [1e-4, 9.999e-5, 1e-5, 1e-7, 5e-324, 1e16, 1.5e16, 1e21, 1.7976931348623157e308, -2.5e-9]
    assert json.loads(_indented_json.dumps(values)) == values


json_leaves = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text()


def _json(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=30,
    )


@given(_json(json_leaves))
def test_same_text_for_any_json_value_without_floats(value: Any) -> None:
    assert _indented_json.dumps(value) == json.dumps(value, indent=2)


@given(_json(json_leaves | st.floats(allow_nan=False, allow_infinity=False)))
def test_same_value_for_any_json_value(value: Any) -> None:
    assert json.loads(_indented_json.dumps(value)) == json.loads(json.dumps(value, indent=2))


def test_unknown_types_raise_as_the_standard_library_does() -> None:
    with pytest.raises(TypeError):
        _indented_json.dumps({"a": object()})
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference"):
        _indented_json.dumps(cycle)


def test_the_reports_are_the_standard_librarys_text(sample_decision: Decision) -> None:
    assert json_report.render(sample_decision) == json.dumps(sample_decision.to_json(), indent=2)
    assert sarif.render(sample_decision) == json.dumps(sarif.sarif_log(sample_decision), indent=2)
