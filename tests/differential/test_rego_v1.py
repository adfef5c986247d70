"""support.rego_v1.v0_to_v1: what `opa fmt --v0-v1` does, checked by OPA itself."""

from __future__ import annotations

import pytest
from opa_bindings.engine import OpaEngine
from support.rego_v1 import v0_to_v1

V0 = """package p

import future.keywords.in

deny[msg] {
  msg := "a"
}

s["lit"] { true }

obj[k] = v { k := "a"; v := 1 }

f(x) = y { y := x } else = "other" { true }

g(x) { x == 1 } else { true }

c = 1 { true }

b { true }

t { false } { true }

default d = 1

q := 3

already if { true }
"""


def test_converted_module_means_the_same_to_opa() -> None:
    out = v0_to_v1(V0)
    engine = OpaEngine()
    engine.add_policy("p.rego", out)
    assert engine.eval_document("p", {}) == {
        "already": True,
        "b": True,
        "c": 1,
        "d": 1,
        "deny": ["a"],
        "obj": {"a": 1},
        "q": 3,
        "s": ["lit"],
        "t": True,
    }
    assert engine.eval_query("x := data.p.f(2); y := data.p.g(5)") == [{"x": 2, "y": True}]


def test_lines_are_kept() -> None:
    out = v0_to_v1(V0)
    assert out.count("\n") == V0.count("\n")
    assert out.splitlines()[4] == "deny contains msg if {"
    assert 'f(x) = y if { y := x } else = "other" if { true }' in out
    assert "t if { false } t if { true }" in out


def test_v1_module_is_left_alone() -> None:
    source = 'package p\nimport rego.v1\ndeny contains "x" if { true }\n'
    assert v0_to_v1(source) == source


def test_not_rego_v0_is_an_error() -> None:
    with pytest.raises(ValueError, match="not Rego v0"):
        v0_to_v1("package p\ndeny[ {")
