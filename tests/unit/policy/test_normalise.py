"""trustgate.policy._normalise: regorus made to answer as OPA (conftest, Gatekeeper) does.

Each behaviour is checked through the production paths (`RegoPolicy`, and
`EmbeddedEngine` for Gatekeeper templates); the expected answers are OPA's,
as the differential suite (tests/differential) measures them.
"""

from __future__ import annotations

from typing import Any

import pytest

from trustgate.errors import PolicyError
from trustgate.policy import rego
from trustgate.policy._normalise import (
    _COLLECTION_TYPES,
    _GUARDS,
    _PLAIN_SCALARS,
    GO_SPRINTF,
    rewrite_module,
    rewrite_modules,
)
from trustgate.policy.engine import UNDEFINED, EmbeddedEngine


def _deny(source: str, obj: dict[str, Any], *, v0: bool = False) -> list[str]:
    policy = rego.RegoPolicy([rego.Module("p.rego", source)], rego_v0=v0)
    return sorted(f.message for f in policy.evaluator().evaluate(obj))


# -- 1. negated calls: an undefined argument makes the body fail -------------------------


def test_not_call_with_undefined_argument_is_undefined() -> None:
    source = 'package p\nimport rego.v1\ndeny contains "m" if not startswith(input.spec.missing, "x")\n'
    assert _deny(source, {"spec": {}}) == []  # regorus alone: ["m"]
    assert _deny(source, {"spec": {"missing": "y"}}) == ["m"]
    assert _deny(source, {"spec": {"missing": "xy"}}) == []


def test_not_user_function_with_undefined_argument_is_undefined() -> None:
    source = 'package p\nimport rego.v1\ndeny contains "m" if { not ok(input.a.b) }\nok(x) if x == "yes"\n'
    assert _deny(source, {}) == []
    assert _deny(source, {"a": {"b": "no"}}) == ["m"]


def test_not_equality_with_a_bare_reference_keeps_it_in_the_negation() -> None:
    # OPA leaves a reference operand of == in place: `not input.m == "x"` is true when m is unset.
    source = 'package p\nimport rego.v1\ndeny contains "m" if not input.m == "x"\n'
    assert _deny(source, {}) == ["m"]


def test_gatekeeper_template_with_absent_parameter_is_undefined() -> None:
    # The shape of gatekeeper-library's psp `users`: `not accept_value(rule, v, params.ranges)`.
    template = """package users

violation[{"msg": "rejected"}] {
  not accept_value("MustRunAs", input.review.object.uid, input.parameters.ranges)
}

accept_value(rule, value, ranges) {
  rule == "MustRunAs"
  range := ranges[_]
  value >= range.min
  value <= range.max
}
"""
    engine = EmbeddedEngine(rego_v0=True)
    engine.add_modules([rego.Module("users.rego", template)])
    review = {"review": {"object": {"uid": 5}}}
    assert engine.eval_rule("data.users.violation", {**review, "parameters": {}}) in (UNDEFINED, [])
    ranges = {"ranges": [{"min": 1, "max": 3}]}
    assert engine.eval_rule("data.users.violation", {**review, "parameters": ranges}) == [{"msg": "rejected"}]


def test_rewrite_stays_on_the_users_line() -> None:
    source = (
        "package p\nimport rego.v1\n"
        "deny contains m if {\n"
        '\tnot startswith(input.a, "x")\n'
        # a key generated twice: an error in OPA too (eval_conflict_error)
        '\tm := {k: v | some v in input.l; k := "a"}\n'
        "}\n"
    )
    rewritten = rewrite_module("p.rego", source, rego_v0=False)
    assert rewritten.splitlines()[3].strip().startswith("__tg_n1 := input.a;")
    assert rewritten.count("\n") >= source.count("\n")
    policy = rego.RegoPolicy([rego.Module("p.rego", source)])
    with pytest.raises(PolicyError, match=r"p\.rego:5:"):
        policy.evaluator().evaluate({"a": "y", "l": [1, 2]})


def test_single_expression_body_becomes_a_block() -> None:
    source = 'package p\nimport rego.v1\nd if not endswith(lower_(input.m), "x")\nlower_(s) := s\n'
    assert "d if { __tg_n1 := lower_(input.m); not __tg_b" in rewrite_module("p.rego", source, rego_v0=False)
    assert _deny(source.replace("d if", 'deny contains "d" if'), {}) == []


# -- 2. `some x in <scalar>` is undefined, not an error ---------------------------------------


@pytest.mark.parametrize(
    "stmt",
    [
        'not f(input.v) with input.v as "b"',
        "not f(input.v) with input.v as `b`",
        'not f(input.v) with input.w as "x" with input.v as "b"',
        'not lower(input.v) == "a" with input.v as "B"',
    ],
)
@pytest.mark.parametrize("braced", [True, False])
def test_with_ending_in_a_string_literal_is_copied_whole(stmt: str, braced: bool) -> None:
    # regorus ends the statement's span before the closing quote; the hoisted `with` lost it.
    body = f"{{ {stmt} }}" if braced else stmt
    source = f'package p\nimport rego.v1\nf(x) if x == "a"\ndeny contains "m" if {body}\n'
    assert _deny(source, {"v": "a"}) == ["m"]  # OPA: ["m"]


def test_some_in_over_a_scalar_is_undefined() -> None:
    source = (
        "package p\nimport rego.v1\n"
        "deny contains c.name if { some c in input.spec.containers; c.privileged }\n"
        'deny contains "pod" if input.kind == "Pod"\n'
    )
    assert _deny(source, {"kind": "Pod", "spec": {"containers": "none"}}) == ["pod"]  # regorus alone: error
    assert _deny(source, {"spec": {"containers": [{"name": "a", "privileged": True}]}}) == ["a"]


# -- 3. built-ins with a wrong operand type are undefined (no StrictBuiltinErrors) ------------


def test_wrong_type_builtin_is_undefined_not_an_error() -> None:
    source = (
        "package p\nimport rego.v1\n"
        'deny contains "starts" if startswith(input.x, "a")\n'
        'deny contains "not-starts" if not startswith(input.x, "a")\n'
        'deny contains "count" if count(input.x) > 1\n'
    )
    assert _deny(source, {"x": 1}) == ["not-starts"]  # regorus alone: an error (exit 3)
    assert _deny(source, {"x": "abc"}) == ["count", "starts"]


def test_wrong_type_builtin_in_v0_module_is_undefined() -> None:
    source = 'package p\n\ndeny[msg] {\n  lower(input.x) == "a"\n  msg := "lower"\n}\n'
    assert _deny(source, {"x": 1}, v0=True) == []
    assert _deny(source, {"x": "A"}, v0=True) == ["lower"]


def test_builtins_trustgate_cannot_answer_as_opa_fail_closed() -> None:
    # OPA keeps the decoded bytes, which are not UTF-8; trustgate cannot hold them
    source = 'package p\nimport rego.v1\ndeny contains "n" if not base64.decode(input.x)\n'
    policy = rego.RegoPolicy([rego.Module("p.rego", source)])
    with pytest.raises(PolicyError, match="reproduce"):
        policy.evaluator().evaluate({"x": "/w=="})


@pytest.mark.parametrize(
    ("call", "value"),
    [
        ("base64url.encode_no_pad(input.x)", 1),  # a type error: it raised in regorus
        ("numbers.range_step(1, 9, input.x)", 0),  # a value error (step 0): it raised in regorus
        ('strings.any_prefix_match(input.x, "a")', [1]),
        ("sort(input.x)", "ab"),
        ("object.subset(input.x, input.x)", None),  # regorus' was true: `not` denied nothing
    ],
)
def test_builtins_opa_fails_on_are_undefined_so_not_holds(call: str, value: Any) -> None:
    """OPA without StrictBuiltinErrors (conftest, Gatekeeper): undefined, and the deny fires."""
    source = f'package p\nimport rego.v1\ndeny contains "n" if not {call}\n'
    policy = rego.RegoPolicy([rego.Module("p.rego", source)])
    assert [f.message for f in policy.evaluator().evaluate({"x": value})] == ["n"]


@pytest.mark.parametrize(
    "call", ['abs("1")', 'strings.any_prefix_match("a", [1])', "numbers.range(1, [])", "sort(1)"]
)
def test_literal_operands_of_a_type_opa_refuses_are_refused_at_load(call: str) -> None:
    """OPA's type checker refuses the module (rego_type_error), as for the guards of item 3."""
    source = f"package p\nimport rego.v1\nr := {call}\n"
    with pytest.raises(PolicyError, match=r"p\.rego:3: rego_type_error: [\w.]+: invalid argument"):
        rego.RegoPolicy([rego.Module("p.rego", source)])


def test_builtins_with_go_semantics_are_undefined_where_opa_fails() -> None:
    # to_number("abc") is a built-in error in OPA (undefined in conftest); `_gobuiltins` answers so.
    source = 'package p\nimport rego.v1\nbig if to_number(input.x) > 1\ndeny contains "n" if not big\n'
    policy = rego.RegoPolicy([rego.Module("p.rego", source)])
    assert [f.message for f in policy.evaluator().evaluate({"x": "abc"})] == ["n"]
    assert policy.evaluator().evaluate({"x": "5"}) == []


def test_modules_of_one_package_each_get_their_own_helpers() -> None:
    a = 'package p\nimport rego.v1\ndeny contains "a" if startswith(input.x, "a")\n'
    b = 'package p\nimport rego.v1\ndeny contains "b" if startswith(input.x, "b")\n'
    policy = rego.RegoPolicy([rego.Module("a.rego", a), rego.Module("b.rego", b)])
    assert sorted(f.message for f in policy.evaluator().evaluate({"x": "abc"})) == ["a"]
    assert policy.evaluator().evaluate({"x": 1}) == []


def test_syntax_errors_are_reported_on_the_original_text() -> None:
    with pytest.raises(PolicyError, match=r"p\.rego:3"):
        rego.RegoPolicy([rego.Module("p.rego", "package p\nimport rego.v1\ndeny contains if {\n")])


# -- 4. what OPA refuses, trustgate refuses: a rule that reads the data holding it -------------


@pytest.mark.parametrize(
    ("read", "shown"),
    [('object.get(data, ["a"], {})', "data"), ("data.p", "data.p"), ('data["p"]["q"]', "data.p.q")],
)
def test_rule_reading_the_data_that_holds_it_is_refused(read: str, shown: str) -> None:
    source = f"package p.q\nimport rego.v1\n\nsettings := {read}\n"
    with pytest.raises(PolicyError) as raised:
        rego.RegoPolicy([rego.Module("p.rego", source)])
    assert raised.value.message.startswith(f"p.rego:4: rule `settings` reads `{shown}`")
    assert "rego_recursion_error" in raised.value.message


def test_reading_other_data_and_with_targets_is_accepted() -> None:
    source = (
        "package trustgate.attestations.vuln\nimport rego.v1\n\n"
        "default settings := {}\n"
        "settings := data.trustgate.vuln\n"
        'test_x if { settings == {"a": 1} with data.trustgate.vuln as {"a": 1} }\n'
        # a `with` target, not a read:
        "test_y if { data.trustgate.attestations.vuln.settings with data.trustgate as {} }\n"
    )
    policy = rego.RegoPolicy([rego.Module("v.rego", source)])
    assert policy.evaluator().run_tests()[0].passed  # and construction did not refuse test_y


@pytest.mark.parametrize(
    "expr", ['not input.x[_] == "a"', 'not startswith(input.x[_], "a")', "not input.x[_]"]
)
def test_wildcard_inside_not_is_refused(expr: str) -> None:
    source = f"package p\nimport rego.v1\n\ndeny contains 1 if {{\n\t{expr}\n}}\n"
    with pytest.raises(PolicyError, match=r"p\.rego:5: `_` inside `not`.*rego_unsafe_var_error"):
        rego.RegoPolicy([rego.Module("p.rego", source)])


def test_wildcard_in_a_comprehension_under_not_is_accepted() -> None:
    source = 'package p\nimport rego.v1\ndeny contains "few" if not count([y | y := input.x[_]]) > 1\n'
    assert _deny(source, {"x": ["a"]}) == ["few"]


# -- 4. sprintf prints what OPA (Go's fmt.Sprintf) prints ---------------------------------


@pytest.mark.parametrize(
    ("call", "obj", "expected"),
    [
        # Verb/argument count mismatches: regorus alone raises (exit 3).
        ('sprintf("%v and %v", [input.a])', {"a": "x"}, "x and %!v(MISSING)"),
        ('sprintf("%v", [input.a, 2])', {"a": "x"}, "x%!(EXTRA int64=2)"),
        # A verb that does not fit: regorus raises or prints something else.
        ('sprintf("%d", [input.a])', {"a": 2.5}, "%!d(float64=2.5)"),
        ('sprintf("%s", [input.a])', {"a": 3}, "%!s(int64=3)"),
        ('sprintf("%d", [input.a])', {"a": -3}, "-3"),  # regorus alone: "--3"
        ('sprintf("%v", [input.a])', {"a": 12345678.5}, "1.23456785e+07"),
        ('sprintf("%v %v", [{x | some x in input.a}, input.a])', {"a": []}, "set() []"),
        ('sprintf("%5s|%.1f", [input.a, 2.25])', {"a": "x"}, "    x|2.2"),
        # The plain path, regorus' own sprintf.
        ('sprintf("%v %s %d", [input.a, input.a, 7])', {"a": "x"}, "x x 7"),
    ],
)
def test_sprintf_prints_as_opa(call: str, obj: dict[str, Any], expected: str) -> None:
    source = f"package p\nimport rego.v1\ndeny contains msg if msg := {call}\n"
    assert _deny(source, obj) == [expected]


def test_sprintf_mismatch_in_gatekeeper_template_prints_as_opa() -> None:
    # gatekeeper-library general/horizontalpodautoscaler: 6 verbs, 5 arguments.
    source = (
        'package hpa\n\nviolation[{"msg": msg}] {\n'
        '  msg := sprintf("%v <%v> %v %v: %v. Allowed: %v", [input.kind, "n", 1, 2, {"a": 1}])\n}\n'
    )
    engine = EmbeddedEngine(rego_v0=True)
    engine.add_modules([rego.Module("t.rego", source)])
    assert engine.clone().eval_rule("data.hpa.violation", {"kind": "HPA"}) == [
        {"msg": 'HPA <n> 1 2: {"a": 1}. Allowed: %!v(MISSING)'}
    ]


def test_sprintf_keeps_regorus_where_it_prints_as_opa() -> None:
    source = (
        "package p\nimport rego.v1\n"
        'a := sprintf("%v-%d", [input.x, 1])\n'
        'b := sprintf("%v-%v", [input.x])\n'
        "c := sprintf(input.f, [1])\n"
    )
    out = rewrite_module("p.rego", source, rego_v0=False)
    plain = next(ln for ln in out.splitlines() if ln.startswith("a := "))
    helper = plain.removeprefix("a := ").split("(")[0]
    assert helper.endswith("_sprintf_vd")
    # regorus' sprintf when the arguments print the same, else Go's
    prefix = helper.removesuffix("sprintf_vd")
    assert (
        f"{helper}(__a0, __a1) := __r if {{ {prefix}sprintf_pv(__a1[0]); is_number(__a1[1]); "
        f"round(__a1[1]) == __a1[1]; __a1[1] >= 0; __a1[1] < 1e15; __r := sprintf(__a0, __a1) }} "
        f"else := __r if {{ is_string(__a1[0]); is_string(__a1[1]); __r := {GO_SPRINTF}(__a0, __a1) }} "
        f"else := __r if {{ __r := {GO_SPRINTF}(__a0, {prefix}pass(__a1)) }}"
    ) in out
    for name, go in (("b", "_gosprintf1"), ("c", "_gosprintf1")):  # a count mismatch, a format
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{name} := "))  # not a literal: Go's
        assert line.split("(")[0].endswith(go)


def test_type_lists_name_no_other_type() -> None:
    # `contains("array set object", type_name(x))` is a type check only if no other type's
    # name is a substring of the list.
    lists = {t for guard in _GUARDS.values() for t in guard if " " in t}
    for types in lists | {_COLLECTION_TYPES, _PLAIN_SCALARS}:
        others = {"null", "boolean", "number", "string", "array", "object", "set"} - set(types.split())
        assert not [n for n in others if n in types], types


def test_calls_with_operands_of_the_right_type_by_form_are_not_guarded() -> None:
    source = (
        "package p\nimport rego.v1\n"
        'a := startswith(lower("X"), "x")\n'
        'b := concat(",", split("a,b", ","))\n'
        'c := sprintf("%s %v", ["x", upper("y")])\n'
        'e := count([y | some y in ["a"]])\n'
    )
    assert rewrite_module("p.rego", source, rego_v0=False) == source


def test_guards_are_checks_in_place_where_they_can_be() -> None:
    source = (
        "package p\nimport rego.v1\n"
        'd := startswith(input.x, "x")\n'
        'deny contains "e" if { some c in input.cs; endswith(c.image, ":latest") }\n'
        'deny contains "f" if { not startswith(input.x, "a") }\n'
        "g := 1 if { input.a } else := lower(input.b)\n"
    )
    out = rewrite_module("p.rego", source, rego_v0=False).splitlines()
    # on the statement's line, or in the body for a call in the head
    assert out[2] == 'd := startswith(input.x, "x") if { is_string(input.x) }'
    assert "is_string(c.image); endswith(c.image, " in out[3]
    # under `not` and with `else`, a function: undefined there, not false
    assert "not __tg_b" in out[4] and "_startswith(__tg_n" in out[4]
    assert "else := __tg_b" in out[5]
    assert _deny(source, {"x": 1, "cs": [{"image": 2}, {"image": "a:latest"}]}) == ["e", "f"]


def test_some_in_over_a_rule_that_is_always_a_collection_is_not_checked() -> None:
    lib = "package lib\nimport rego.v1\nnames contains n if some n in input.names\none := input.one\n"
    user = (
        "package p\nimport rego.v1\nimport data.lib\n"
        'deny contains n if { some n in lib.names; n == "x" }\n'
        'deny contains n if { some n in lib.one; n == "y" }\n'
    )
    _, out = rewrite_modules([("lib.rego", lib), ("p.rego", user)], rego_v0=False)
    assert out.splitlines()[3] == 'deny contains n if { some n in lib.names; n == "x" }'
    assert 'contains("array set object", type_name(__tg_n1)); some n in __tg_n1' in out.splitlines()[4]
    policy = rego.RegoPolicy([rego.Module("lib.rego", lib), rego.Module("p.rego", user)])
    assert sorted(f.message for f in policy.evaluator().evaluate({"names": ["x"], "one": "y"})) == ["x"]


# -- compile errors OPA reports: refused at load -------------------------------------------


@pytest.mark.parametrize(
    ("call", "have"),
    [
        ('startswith(5, "a")', "(number, string)"),
        ('endswith(input.x, ["a"])', "(any, array<string>)"),
        ("count(null) > 0", "(null)"),
        ('array.concat({"a"}, [])', "(set[any], array<>)"),
        ('concat(",", [1])', "(string, array<number>)"),
    ],
)
def test_builtin_called_with_a_literal_of_a_wrong_type_is_refused(call: str, have: str) -> None:
    source = f'package p\nimport rego.v1\n\ndeny contains "m" if {{\n  {call}\n}}\n'
    with pytest.raises(PolicyError) as refused:
        rego.RegoPolicy([rego.Module("p.rego", source)])
    name = call.split("(", 1)[0]
    assert refused.value.message.startswith(f"p.rego:5: rego_type_error: {name}: invalid argument(s)")
    assert f"have: {have}" in refused.value.message
    with pytest.raises(PolicyError, match="rego_type_error"):  # Gatekeeper templates too
        EmbeddedEngine(rego_v0=True).add_modules(
            [rego.Module("t.rego", f'package t\nviolation[{{"msg": "m"}}] {{\n  {call}\n}}\n')]
        )


def test_builtin_called_with_literals_of_the_right_types_is_accepted() -> None:
    calls = [
        "count([1]) > 0",
        'object.get({}, "a", 1) == 1',
        'concat(",", {"a"}) == "a"',
        'glob.match("a", null, "a")',
        "to_number(true) == 1",
        'sprintf("%v", [input.x]) != ""',
    ]
    source = "package p\nimport rego.v1\n\n" + "".join(
        f'deny contains "{i}" if {c}\n' for i, c in enumerate(calls)
    )
    assert _deny(source, {"x": 1}) == [str(i) for i in range(len(calls))]


@pytest.mark.parametrize("second", ["default allow := false", "default allow := true"])
def test_two_default_rules_are_refused(second: str) -> None:
    first = rego.Module("a.rego", "package p\nimport rego.v1\ndefault allow := true\n")
    other = rego.Module("b.rego", f"package p\nimport rego.v1\n\n{second}\n")
    with pytest.raises(PolicyError) as refused:
        rego.RegoPolicy([first, other])
    assert refused.value.message.startswith(
        "b.rego:4: rego_type_error: multiple default rules data.p.allow found at a.rego:3, b.rego:4"
    )
    rego.RegoPolicy([first, rego.Module("c.rego", "package q\nimport rego.v1\ndefault allow := false\n")])


def test_an_engine_gets_the_go_functions_when_a_later_module_calls_them() -> None:
    """`add_extensions` registers what the modules added name, once per engine; an engine renewed
    after a panic and a clone keep them."""
    engine = EmbeddedEngine()
    engine.add_modules([rego.Module("a.rego", "package a\nimport rego.v1\n\nx := 1\n")])
    engine.add_modules(
        [
            rego.Module(
                "b.rego",
                "package b\nimport rego.v1\n\n"
                "d := regex.match(input.p, input.v)\n"
                "t := count(numbers.range(1, input.t))\n"
                'c := regex.match(input.p, "7")\n',
            )
        ]
    )
    digit = {"p": "^\\d$", "v": "\u0663"}  # Go's \d is ASCII; regorus' matches any Unicode digit
    assert engine.eval_rule("data.b.d", digit) is False
    with pytest.raises(PolicyError, match="panicked"):
        engine.eval_rule("data.b.t", {"t": 2**63 - 1})  # regorus panics
    assert engine.eval_rule("data.b.d", digit) is False  # the renewed engine
    assert engine.clone().eval_rule("data.b.c", digit) is True
    assert engine.eval_rule("data.a.x", {}) == 1
