"""Modules OPA's compiler refuses: trustgate refuses the same ones at load, and no others.

Each case is a module set (Rego v1, or v0 converted for OPA as the rest of
the suite does) loaded into OPA and into `RegoPolicy`. The outcome must be
the same: both load it, or both refuse it, trustgate with one of OPA's errors
(file, line and error class) at the start of its message. The look-alikes
OPA accepts are here so that the checks of `_compile_checks` do not refuse
more than OPA does (ADR 0008, item 11).
"""

from __future__ import annotations

import pytest
from opa_bindings.engine import OpaError
from support.differential import TALLY, opa_engine

from trustgate.errors import PolicyError
from trustgate.policy import rego

V1 = "package main\nimport rego.v1\n\n"
V0 = "package main\n\n"

# name -> module texts (the first is prefixed with V1 or V0 unless it has a package)
CASES_V1: dict[str, list[str]] = {
    # unsafe head variables
    "unsafe_set_key": ["deny contains msg if { input.a == 5 }"],
    "unsafe_object_key": ["o[k] := v if { input.a == 5; v := 1 }"],
    "unsafe_function_value": ["f(x) := y if { x == 1 }"],
    "unsafe_complete_value": ["p := y if { input.a == 5 }"],
    "unsafe_only_under_not": ["deny contains msg if { not msg }"],
    "unsafe_else_value": ["p := 1 if { input.a } else := y if { input.b }"],
    "safe_assigned": ['deny contains msg if { msg := "x" }'],
    "safe_rule_name": ['msg := "x"\ndeny contains msg if { input.a == 5 }'],
    "safe_rule_in_other_module": ["deny contains msg if { input.a == 5 }", 'package main\nmsg := "x"\n'],
    "safe_calls_and_comprehensions": [
        'p := count(input.x)\nq := [x | some x in input.y]\nr := object.get(input, "a", 1)'
    ],
    "safe_some_in": ["deny contains x if { some x in input.xs }"],
    "safe_function_args": ["f(x) := x\ng([a, b]) := a + b"],
    "safe_bound_by_ref_key": ["deny contains msg if { input.x[msg] }"],
    "safe_destructured": ["deny contains msg if { [msg, _] := input.pair }"],
    "safe_import_alias": [
        'package lib\nmsg := "m"\n',
        "import data.lib.msg\ndeny contains msg if { input.a }",
    ],
    "safe_else_without_value": ["p := x if { x := 1; input.a } else if { true }"],
    "safe_tests_with_input": [
        'deny contains "x" if input.a\ntest_deny if { count(deny) == 1 with input as {"a": true} }'
    ],
    # rule kinds
    "partial_set_and_complete": ['deny contains "d" if { input.a == 5 }\ndeny := {"e"} if { input.a == 5 }'],
    "complete_and_function": ["f := 1\nf(x) := 2"],
    "function_arities": ["f(x) := 1\nf(x, y) := 2"],
    "partial_object_and_complete": ['o[k] := 1 if { k := "a" }\no := {}'],
    "default_and_partial_set": ["default deny := set()\ndeny contains 1"],
    "partial_object_and_set": ['p[x] if { x := "a" }\np contains 1'],
    "complete_over_ref_head": ["a.b := 1\na := 2"],
    "partial_set_over_ref_head": ["deny contains 1\ndeny.x := 1"],
    "rule_over_package": ["a := 2", "package main.a\nb := 1\n"],
    "default_function_ok": ["default f(_) := 1\nf(x) := 2 if x"],
    "default_rule_ok": ["default allow := false\nallow if input.a"],
    "incremental_set_ok": ["deny contains 1\ndeny contains 2 if input.a", "package main\ndeny contains 3\n"],
    "partial_object_and_ref_head_ok": ['o[k] := 1 if { k := "a" }\no.b := 2'],
    "ref_heads_side_by_side_ok": ["a.b := 1\na.c := 2"],
    "ref_head_objects_ok": ['p[x] if { x := "a" }\np[y] := 1 if { y := "b" }'],
    # recursion
    "recursion_two_rules": ["a if b\nb if a"],
    "recursion_self": ["a if { a }"],
    "recursion_functions": ["f(x) if g(x)\ng(x) if f(x)"],
    "recursion_through_data": ["a if data.main.b\nb if a"],
    "recursion_through_comprehension": ["a := [1 | b]\nb if a"],
    "recursion_through_import": [
        "package lib\nimport data.main\nx if main.y\n",
        "import data.lib\ny if lib.x",
    ],
    "no_recursion_chain_ok": ["a if b\nb if c\nc := 1\nd if { a; b }"],
    "with_is_not_a_read_ok": ["a if b\nb := 1\ntest_a if { a with b as true }"],
    "local_shadows_rule_ok": ["b := 1\na if { b := 2; b == 2 }"],
    "comprehension_local_shadows_rule_ok": ["a := [b | some b in [1]]\nb if count(a) > 0"],
    # a namespace that is an import or a rule is not the built-in's (`regex.match`)
    "import_shadows_builtin_namespace": [
        "package lib.regex\nother := 1\n",
        "import data.lib.regex\ndeny contains 1 if regex.match(input.p, input.x)",
    ],
    "rule_shadows_builtin_namespace": ['regex := {"a": 1}\ndeny contains 1 if regex.match(input.p, input.x)'],
    "import_shadows_builtin_namespace_ok": [
        "package lib.regex\nmatch(_, _) := true\n",
        "import data.lib.regex\ndeny contains 1 if regex.match(input.p, input.x)",
    ],
    "import_without_cycle_ok": ["package lib\nx := 1\n", "import data.lib\ny if lib.x"],
    # declared, unused
    "unused_some": ["d if { some x; input.a == 5 }"],
    "unused_every_value": ["ok if { every x in [1] { true } }"],
    "unused_every_key": ["ok if { every k, v in [1] { v } }"],
    "unused_some_in_ok": ["ok if { some x in [1] }"],
    "used_some_ok": ["d if { some x; input.a[x] == 5 }"],
    "used_every_ok": ["ok if { every x in [1] { x > 0 } }"],
    "used_in_nested_every_ok": ['ok if { every k, v in {"a": 1} { every w in [1] { k == "a"; v == w } } }'],
    # redeclared variables
    "assigned_twice": ["d if { x := 1; x := 2 }"],
    "destructured_then_assigned": ["d if { [x, y] := [1, 2]; x := 3 }"],
    "declared_then_assigned": ["d if { some x; x := 1 }"],
    "argument_assigned": ["f(x) := y if { x := 1; y := 2 }"],
    "assigned_in_comprehension_ok": ["d if { x := 1; y := [x | x := 2]; y }"],
    "assigned_in_every_ok": ["d if { x := 1; every y in [1] { x := y } }"],
    "assigned_in_each_body_ok": ["d if { x := 1 } else if { x := 2 }"],
    # undefined references into literals
    "object_literal_number_key": ['d if { x := {"a": 1}; x[0] }'],
    "object_literal_missing_field": ['d if { x := {"a": 1}; x.b }'],
    "array_literal_string_key": ['d if { x := [1, 2]; x["a"] }'],
    "array_literal_out_of_range": ["d if { x := [1, 2]; x[5] }"],
    "literal_refs_ok": ['d if { x := {"a": 1}; x.a; y := [1]; y[0] }'],
    "literal_variable_key_ok": ['d if { x := {"a": 1}; x[input.k] }'],
    # a comprehension or `every` may bind the literal's name anew: the inner one is read there
    "literal_shadowed_in_comprehension_ok": ['d if { x := {"a": 1}; y := [v | x := {"b": 2}; v := x.b]; y }'],
    "literal_shadowed_in_object_comprehension_ok": [
        'd if { x := {"a": 1}; y := {k: v | some k in ["q"]; x := {"q": 2}; v := x.q}; y }'
    ],
    "literal_shadowed_by_some_in_ok": [
        'd if { x := {"a": 1}; y := {v | some x in [{"b": 1}]; v := x.b}; y }'
    ],
    "literal_shadowed_by_every_ok": ['d if { x := {"a": 1}; every x in [{"b": 1}] { x.b } }'],
    "literal_shadowed_in_every_body_ok": ['d if { x := {"a": 1}; every z in [1] { x := {"b": z}; x.b } }'],
}

CASES_V0: dict[str, list[str]] = {
    "v0_unsafe_set_key": ["deny[msg] { input.a == 5 }"],
    "v0_safe": ['deny[msg] { msg := "x" }\nviolation[{"msg": msg}] { msg := sprintf("%v", [input.a]) }'],
    "v0_recursion": ["a { b }\nb { a }"],
    "v0_unused_some": ["d { some x; input.a == 5 }"],
    "v0_partial_set_and_complete": ["deny[x] { x := 1 }\ndeny = {1} { true }"],
    "v0_complete_and_function": ["f = 1\nf(x) = 2 { true }"],
    "v0_function_arities": ["f(x) = 1 { true }\nf(x, y) = 2 { true }"],
    "v0_partial_objects_ok": ['o[k] = 1 { k := "a" }\no[k] = 2 { k := "b" }'],
    "v0_literal_missing_field": ['d { x := {"a": 1}; x.b }'],
    "v0_assigned_twice": ["d { x := 1; x := 2 }"],
}


def _modules(texts: list[str], prefix: str) -> list[rego.Module]:
    return [
        rego.Module(f"m{i}.rego", text + "\n" if text.startswith("package") else prefix + text + "\n")
        for i, text in enumerate(texts)
    ]


def _opa_errors(modules: list[rego.Module], *, v0: bool) -> set[str]:
    """OPA's compile errors as `file:line: code` (their order varies), empty when it loads the modules."""
    try:
        opa_engine(modules, v0=v0).eval_document("main", {})
    except OpaError as e:
        lines = e.message.split("occurred:", 1)[-1].strip().splitlines()
        return {": ".join(line.split(": ", 2)[:2]) for line in lines if ": rego_" in line}
    return set()


@pytest.mark.parametrize(
    ("texts", "v0"),
    [pytest.param(t, False, id=n) for n, t in CASES_V1.items()]
    + [pytest.param(t, True, id=n) for n, t in CASES_V0.items()],
)
def test_module_is_refused_exactly_when_opa_refuses_it(texts: list[str], v0: bool) -> None:
    modules = _modules(texts, V0 if v0 else V1)
    opa_errors = _opa_errors(modules, v0=v0)
    try:
        rego.RegoPolicy(modules, rego_v0=v0)
        ours = ""
    except PolicyError as e:
        ours = e.message
    if opa_errors:
        assert ": ".join(ours.split(": ", 2)[:2]) in opa_errors, (
            f"OPA: {opa_errors}\ntrustgate: {ours or 'accepted'}"
        )
        TALLY["refused modules"] += 1
    else:
        assert not ours, f"OPA accepts it; trustgate: {ours}"
        TALLY["corpus"] += 1
