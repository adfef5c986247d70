"""The estimated cost of CRD rules, against the API server's own figures.

The reference is Kubernetes: apiextensions-apiserver's `TestCostEstimation`
(pkg/apiserver/schema/cel/compilation_test.go) gives, for each schema and
rule, the estimated maximum cost the API server computes, without and with
maxItems / maxProperties / maxLength set. The schemas below are those of its
generators (`genArrayWithRule`, `genMapWithRule`, ...), written as JSON
schema. Where our estimate leaves out a Kubernetes library function's own
cost it must stay at or below the API server's (a lower bound: never refuse a
rule the API server accepts); everywhere else it must be equal.

(No differential test against a running API server: the only one obtainable
here is 1.20, which has no CRD validation rules.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from support.crds import widget_crd_object

from trustgate.cli.main import main
from trustgate.errors import ConfigError
from trustgate.policy import cel, cel_cost, crd_cel
from trustgate.policy.schema import SchemaSet

Gen = Any


def kind(t: str) -> dict[str, Any]:
    if t in ("duration", "date", "date-time"):
        return {"type": "string", "format": t}
    if t == "int-or-string":
        return {"x-kubernetes-int-or-string": True}
    return {"type": t}


def array(t: str) -> Gen:
    return lambda n: {"type": "array", "items": kind(t), **({"maxItems": n} if n is not None else {})}


def array_of_arrays(t: str) -> Gen:
    return lambda n: {
        "type": "array",
        "items": {"type": "array", "items": kind(t)},
        **({"maxItems": n} if n is not None else {}),
    }


OBJECT = {
    "type": "object",
    "properties": {"required": {"type": "string"}, "optional": {"type": "string"}},
    "required": ["required"],
}


def object_array(n: int | None) -> dict[str, Any]:
    return {"type": "array", "items": OBJECT, **({"maxItems": n} if n is not None else {})}


def map_array(t: str) -> Gen:
    return lambda n: {
        "type": "array",
        "items": {"type": "object", "additionalProperties": kind(t)},
        **({"maxItems": n} if n is not None else {}),
    }


def map_of(item: dict[str, Any]) -> Gen:
    return lambda n: {
        "type": "object",
        "additionalProperties": item,
        **({"maxProperties": n} if n is not None else {}),
    }


def string(n: int | None) -> dict[str, Any]:
    return {"type": "string", **({"maxLength": n} if n is not None else {})}


def byte_string(n: int | None) -> dict[str, Any]:
    return {"type": "string", "format": "byte", **({"maxLength": n} if n is not None else {})}


def nested_spec(n: int | None) -> dict[str, Any]:
    limit = {"maxProperties": n} if n is not None else {}
    return {"type": "object", "additionalProperties": string(n), **limit}


def nested_root(all_max: bool) -> Gen:
    def gen(n: int | None) -> dict[str, Any]:
        limit = {"maxProperties": n} if n is not None else {}
        inner = {**OBJECT, **(limit if all_max else {})}
        items = {"type": "object", "additionalProperties": inner, **limit}
        return {"type": "array", "items": items, **({"maxItems": n} if n is not None and all_max else {})}

    return gen


# name, schema generator, rule, cost without limits, max elements set, cost with them
EXACT: list[tuple[str, Gen, str, int, int, int]] = [
    ("number array with all", array("number"), "self.all(x, true)", 4718591, 10, 32),
    ("string array with all", array("string"), "self.all(x, true)", 3145727, 20, 62),
    ("boolean array with all", array("boolean"), "self.all(x, true)", 1887437, 5, 17),
    ("array of number arrays with all", array_of_arrays("number"), "self.all(x, true)", 3145727, 100, 302),
    ("array of objects with all", object_array, "self.all(x, true)", 555128, 50, 152),
    ("map of numbers with all", map_of(kind("number")), "self.all(x, true)", 1348169, 10, 32),
    ("map of numbers with has", map_of(kind("number")), "has(self.x)", 0, 100, 0),
    ("map of strings with all", map_of(kind("string")), "self.all(x, true)", 1179647, 3, 11),
    ("map of booleans with all", map_of(kind("boolean")), "self.all(x, true)", 943718, 100, 302),
    ("string with contains", string, "self.contains('test')", 314574, 10, 5),
    ("string with startsWith", string, "self.startsWith('test')", 2, 15, 2),
    ("string with endsWith", string, "self.endsWith('test')", 2, 30, 2),
    ("concat string", string, 'size(self + "hello") > size("hello")', 314578, 4, 7),
    ("index of array with numbers", array("number"), "self[1] == 0.0", 2, 5000, 2),
    ("index of array with strings", array("string"), "self[1] == self[1]", 314577, 8, 314577),
    ("O(n^2) loop, set", array("number"), "self.all(x, self.all(y, true))", 0, 10, 352),
    ("O(n^3) loop, set", array("number"), "self.all(x, self.all(y, self.all(z, true)))", 0, 10, 3552),
    ("regex matches simple", string, 'self.matches("x")', 314574, 50, 22),
    ("regex matches empty string", string, '"".matches("(((((((((())))))))))[0-9]")', 7, 10, 7),
    ("regex matches empty regex", string, 'self.matches("")', 1, 100, 1),
    ("map of strings with value length", nested_spec, "self.all(x, x.contains(self[x]))", 2752507, 10, 72),
    ("set array maxLength to zero", array("number"), "self[3] == 0.0", 2, 0, 2),
    ("set map maxLength to zero", map_of(kind("number")), 'self["x"] == 0.0', 2, 0, 2),
    ("set string maxLength to zero", string, 'self == "x"', 2, 0, 1),
    ("set bytes maxLength to zero", byte_string, 'self == b"x"', 2, 0, 1),
    (
        "set maxLength greater than estimated maxLength",
        array("number"),
        "self.all(x, x == 0.0)",
        6291454,
        3 * 1024 * 2048,
        25165826,
    ),
    (
        "nested types with root rule with all supporting maxLength",
        nested_root(True),
        'self.all(x, x["y"].required == "z")',
        7340027,
        10,
        72,
    ),
    (
        "nested types with root rule with one supporting maxLength",
        nested_root(False),
        'self.all(x, x["y"].required == "z")',
        7340027,
        10,
        7340027,
    ),
    ("int-or-string array with all", array("int-or-string"), "self.all(x, true)", 4718591, 10, 32),
    ("index of array with int-or-strings", array("int-or-string"), "self[0] == 5", 3, 10, 3),
    ("index of array with booleans", array("boolean"), "self[0] == false", 2, 25, 2),
    ("index of array of objects", object_array, "self[0] == null", 2, 422, 2),
    ("index of array of arrays", array_of_arrays("number"), "self[0][0] == -1.0", 3, 51, 3),
    ("array of number maps with all", map_array("number"), "self.all(x, x.y == 25.2)", 6291452, 12, 74),
    ("index of array of number maps", map_array("number"), "self[0].x > 2.0", 4, 3000, 4),
    ("duration array with all", array("duration"), "self.all(x, true)", 2359295, 5, 17),
    ("date array with all", array("date"), "self.all(x, true)", 725936, 15, 47),
    ("date-time array with all", array("date-time"), "self.all(x, true)", 428963, 25, 77),
    ("map of int-or-strings with all", map_of(kind("int-or-string")), "self.all(x, true)", 1348169, 15, 47),
    ("map of objects with all", map_of(OBJECT), "self.all(x, true)", 428963, 20, 62),
    ("map of objects with has", map_of(OBJECT), "has(self.x)", 0, 9001, 0),
    (
        "map of number maps with all",
        map_of({"type": "object", "additionalProperties": {"type": "number"}}),
        "self.all(x, true)",
        1179647,
        10,
        32,
    ),
    (
        "map of number arrays with all",
        map_of({"type": "array", "items": {"type": "number"}}),
        "self.all(x, true)",
        1179647,
        25,
        77,
    ),
    ("map of durations with all", map_of(kind("duration")), "self.all(x, true)", 1048577, 5, 17),
    ("map of dates with all", map_of(kind("date")), "self.all(x, true)", 524288, 10, 32),
    ("map of date-times with all", map_of(kind("date-time")), "self.all(x, true)", 349526, 25, 77),
    ("size call", map_of(kind("integer")), "oldSelf.size() == self.size()", 5, 10, 5),
    ("timestamp comparison", map_of(kind("date-time")), 'self["a"] == self["b"]', 8, 7, 8),
    ("duration comparison", map_of(kind("duration")), 'self["c"] == self["d"]', 8, 42, 8),
]

# Kubernetes library functions whose own cost the estimate leaves out: at most the API server's.
AT_MOST: list[tuple[str, Gen, str, int, int, int]] = [
    ("regex find", string, "self.find('[0-9]+') == ''", 629147, 10, 11),
    ("lowerAscii", string, "self.lowerAscii() == 'lower!'", 314575, 10, 6),
    (
        "enum contains",
        lambda n: {"type": "string", "enum": ["A", "B", "C", "LongValue"], **({"maxLength": n} if n else {})},
        "self.contains('A')",
        2,
        1000,
        401,
    ),
]


def cost(schema: dict[str, Any], rule: str) -> int:
    program = cel.compile_expression(rule, variables=("self", "oldSelf"))
    typed = cel_cost.decl_type(schema)
    assert typed is not None
    return cel_cost.estimate(program.checked(), {"self": typed, "oldSelf": typed})


@pytest.mark.parametrize(("name", "gen", "rule", "calc", "n", "set_cost"), EXACT, ids=[c[0] for c in EXACT])
def test_estimate_equals_the_api_servers(
    name: str, gen: Gen, rule: str, calc: int, n: int, set_cost: int
) -> None:
    if calc:  # 0: Kubernetes only says "over the limit" (the O(n^k) loops), checked below
        assert cost(gen(None), rule) == calc
    assert cost(gen(n), rule) == set_cost


@pytest.mark.parametrize(
    ("name", "gen", "rule", "calc", "n", "set_cost"), AT_MOST, ids=[c[0] for c in AT_MOST]
)
def test_estimate_is_at_most_the_api_servers(
    name: str, gen: Gen, rule: str, calc: int, n: int, set_cost: int
) -> None:
    assert 0 < cost(gen(None), rule) <= calc
    assert 0 < cost(gen(n), rule) <= set_cost


@pytest.mark.parametrize(
    "rule", ["self.all(x, self.all(y, true))", "self.all(x, self.all(y, self.all(z, true)))"]
)
def test_nested_loops_over_unbounded_lists_exceed_the_limit(rule: str) -> None:
    assert cost(array("number")(None), rule) > cel_cost.PER_RULE_LIMIT


def test_budget_message_is_the_api_servers() -> None:
    assert cel_cost.budget_message("estimated rule cost", 25_000_000, 10_000_000).startswith(
        "estimated rule cost exceeds budget by factor of 2.5x (try simplifying the rule, or adding maxItems"
    )
    assert "factor of 1.200000x" in cel_cost.budget_message("x", 12, 10)
    assert "factor of more than 100x" in cel_cost.budget_message("x", 10**12, 10)


def test_the_checked_expression_is_read_node_by_node() -> None:
    program = cel.compile_expression(
        "self.items.exists(i, i.name == 'a' && has(i.spec))"
        " ? {'k': [b'xy']} : {'k': [dyn(1), -2, 3u, 2.5, null, true]}",
        variables=["self"],
    )
    root, overloads, scalars = cel_cost.parse_checked(program.checked())
    nodes: list[cel_cost.Expr] = []

    def walk(e: cel_cost.Expr | None) -> None:
        if e is not None:
            nodes.append(e)
            for child in (
                e.target,
                *e.args,
                e.iter_range,
                e.accu_init,
                e.loop_condition,
                e.loop_step,
                e.result,
            ):
                walk(child)

    walk(root)
    assert root.kind == "call" and root.name == "_?_:_" and len(root.args) == 3
    loop = root.args[0]
    assert (loop.kind, loop.iter_var, loop.accu_var) == ("comprehension", "i", "@result")
    assert loop.iter_range is not None and (loop.iter_range.kind, loop.iter_range.name) == ("select", "items")
    assert [n.const for n in nodes if n.kind == "const" and n.const is not False] == [
        "a",
        "k",
        b"xy",
        "k",
        1,
        -2,
        3,
        2.5,
        None,
        True,
    ]
    assert any(n.kind == "select" and n.name == "spec" and n.test_only for n in nodes)
    assert {n.kind for n in nodes} >= {"map", "list", "ident", "select", "call", "comprehension", "const"}
    assert len({n.id for n in nodes}) == len(nodes)  # every node keeps its own id
    assert overloads[root.id] == ("conditional",)
    equals = next(n for n in nodes if n.kind == "call" and n.name == "_==_")
    assert overloads[equals.id] == ("equals",) and equals.id in scalars  # a bool
    assert next(n for n in nodes if n.kind == "list").id not in scalars


@pytest.mark.parametrize("data", [b"\x0a\x05ab", b"\xff\xff", b"", b"\x12\x00"])
def test_a_checked_expression_that_cannot_be_read_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="checked expression"):
        cel_cost.parse_checked(data)


crd = widget_crd_object


NAMES = {
    "type": "array",
    "items": {"type": "string"},
    "x-kubernetes-validations": [{"rule": "self.all(x, self.exists_one(y, x == y))", "message": "unique"}],
}


def test_a_crd_with_an_over_budget_rule_is_refused_naming_the_rule() -> None:
    schema = {"type": "object", "properties": {"names": NAMES}}
    with pytest.raises(crd_cel.RuleError, match=r"x-kubernetes-validations\[0\] at spec.names: rule: "
                       r"estimated rule cost exceeds budget by factor of more than 100x"):  # fmt: skip
        crd_cel.compile_rules({"type": "object", "properties": {"spec": schema}})


def test_maxitems_and_maxlength_bring_the_same_rule_within_budget() -> None:
    bounded = {**NAMES, "maxItems": 100, "items": {"type": "string", "maxLength": 63}}
    schema = {"type": "object", "properties": {"names": bounded}}
    [rule] = crd_cel.compile_rules({"type": "object", "properties": {"spec": schema}})
    assert rule.where == "spec.names"


def test_a_rule_under_an_unbounded_list_is_multiplied_by_how_often_it_can_occur() -> None:
    # 'self.contains("x")' on a string of at most 4,000 bytes costs 1 + 400 * 1 = 401; under an
    # unbounded list of such strings it can run 3 MiB / 3 times: over the limit. With maxItems
    # 1,000 it runs at most 1,000 times: 401,000, within it.
    item = {"type": "string", "maxLength": 1000, "x-kubernetes-validations": [{"rule": "self.contains('x')"}]}
    unbounded = {"type": "object", "properties": {"tags": {"type": "array", "items": item}}}
    with pytest.raises(
        crd_cel.RuleError, match=r"at spec.tags\[\*\]: rule: estimated rule cost exceeds budget"
    ):
        crd_cel.compile_rules({"type": "object", "properties": {"spec": unbounded}})
    bounded = {"type": "object", "properties": {"tags": {"type": "array", "items": item, "maxItems": 1000}}}
    assert len(crd_cel.compile_rules({"type": "object", "properties": {"spec": bounded}})) == 1


def test_transition_rules_are_costed_too() -> None:
    rule = {"rule": "self.all(x, oldSelf.exists(y, x == y))"}
    schema = {"type": "object", "properties": {"names": {**NAMES, "x-kubernetes-validations": [rule]}}}
    with pytest.raises(crd_cel.RuleError, match="estimated rule cost exceeds budget"):
        crd_cel.compile_rules({"type": "object", "properties": {"spec": schema}})


def test_the_total_of_a_crds_rules_has_its_own_limit() -> None:
    # Over a list of at most 1,000,000 items, `self.all(x, x == 'a')` costs 5,000,002 (within
    # 10 M): 21 such rules are 105 M (over the 100 M of a CRD), 19 are 95 M (within).
    rule = {"rule": "self.all(x, x == 'a')"}
    names = {"type": "array", "maxItems": 1_000_000, "items": {"type": "string"}}
    names["x-kubernetes-validations"] = [rule]

    def spec(n: int) -> dict[str, Any]:
        fields = {f"f{i}": names for i in range(n)}
        return {"type": "object", "properties": {"spec": {"type": "object", "properties": fields}}}

    with pytest.raises(crd_cel.RuleError, match="estimated rule cost total for entire OpenAPIv3Schema"):
        crd_cel.compile_rules(spec(21))
    assert len(crd_cel.compile_rules(spec(19))) == 19


def test_the_schema_set_refuses_the_over_budget_crd_as_a_config_error() -> None:
    schema = {"type": "object", "properties": {"names": NAMES}}
    with pytest.raises(ConfigError, match=r"Widget v1: .*estimated rule cost exceeds budget"):
        SchemaSet(version="1.35", strict=True, crds=[crd(schema)])


def test_check_with_an_over_budget_crd_says_so_and_does_not_pass(tmp_path: Path) -> None:
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(yaml.safe_dump(crd({"type": "object", "properties": {"names": NAMES}})))
    manifest = tmp_path / "w.yaml"
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    manifest.write_text(yaml.safe_dump(widget))
    result = CliRunner().invoke(
        main, ["check", "--no-builtin", "--crd", str(crd_file), str(manifest)], catch_exceptions=False
    )
    assert result.exit_code not in (0, 1)
    expected = "x-kubernetes-validations[0] at spec.names: rule: estimated rule cost exceeds budget"
    assert expected in result.output
    assert "Traceback" not in result.output
