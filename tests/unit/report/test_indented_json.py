"""The report's JSON writer prints exactly what `json.dumps(value, indent=2)` prints."""

from __future__ import annotations

import enum
import json
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


VALUES: list[Any] = [
    {},
    [],
    "",
    None,
    True,
    0,
    -1.5,
    float("nan"),
    float("inf"),
    -float("inf"),
    1e300,
    {"a": [], "b": {}, "c": [{}], "d": [[1, [2, []]]]},
    {"unicode": "caf\u00e9 \U0001f600 \u2028", "ctrl": '\x00\t\n"\\'},
    ("tuple", 1),
    {"enum": Level.LOW, "str enum": Name.A, "nested": [Level.LOW, Name.A]},
    {2: "int key", True: "bool key", None: "none key", 1.5: "float key"},  # json.dumps' own path
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_same_text_as_the_standard_library(value: Any) -> None:
    assert _indented_json.dumps(value) == json.dumps(value, indent=2)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30,
)


@given(json_values)
def test_same_text_for_any_json_value(value: Any) -> None:
    assert _indented_json.dumps(value) == json.dumps(value, indent=2)


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
