"""trustgate.policy._gobuiltins: Rego built-ins with OPA's (Go's) semantics.

The expected values are OPA's answers (`opa-golib-python-bindings`, checked by
tests/differential/test_builtins_vs_opa.py against the live oracle), copied
here so that the unit tests need no OPA. `[False, None]` is a built-in error
in OPA: undefined under conftest and Gatekeeper.
"""

from __future__ import annotations

from typing import Any

import pytest

from trustgate.policy import _gobuiltins as go
from trustgate.policy._normalise import rewrite_module

UNDEFINED = [False, None]


@pytest.mark.parametrize(
    ("fn", "args", "expected"),
    [
        # regex: Go's RE2, ASCII classes, literal `[a&&b]` and `x{,2}`, no `\u`
        (go.regex_match, (r"^[\w.-]+$", "café"), [True, False]),
        (go.regex_match, (r"^\d+$", "٣٣"), [True, False]),
        (go.regex_match, (r"\s", "a\u00a0b"), [True, False]),
        (go.regex_match, (r"\B", "a\u00a0b"), [True, False]),  # C++ RE2 would match inside the rune
        (go.regex_match, (r"[a&&b]", "&"), [True, True]),
        (go.regex_match, (r"\u00e9", "é"), UNDEFINED),
        (go.regex_match, (r"\C", "a"), UNDEFINED),  # C++ RE2 has \C, Go does not
        (go.regex_match, (1, "a"), UNDEFINED),
        (go.regex_is_valid, (r"a{,2}",), [True, True]),
        (go.regex_is_valid, (r"a++",), [True, False]),
        (go.regex_is_valid, (5,), [True, False]),
        (go.regex_split, ("", "abc"), [True, ["a", "b", "c"]]),
        (go.regex_split, ("x*", "axb"), [True, ["a", "b"]]),
        (go.regex_find_n, ("a*", "baaab", -1), [True, ["", "aaa", ""]]),
        (go.regex_find_n, ("a", "aaa", 1.5), UNDEFINED),
        (go.regex_replace, ("abc ab", "(?P<first>a)(b)", "${first}-$2$$"), [True, "a-b$c a-b$"]),
        (go.regex_replace, ("abc", "x*", "-"), [True, "-a-b-c-"]),
        (
            go.regex_find_all_string_submatch_n,
            ("(a)(x)?", "aa", -1),
            [True, [["a", "a", ""], ["a", "a", ""]]],
        ),
        # case mapping: simple, one rune for one
        (go.upper, ("straße ﬁ ᾳ",), [True, "STRAßE ﬁ ᾼ"]),
        (go.lower, ("ΟΔΟΣ İ",), [True, "οδοσ i"]),
        (go.upper, (1,), UNDEFINED),
        (go.strings_count, ("😀a", ""), [True, 3]),
        # glob: gobwas/glob
        (go.glob_match, ("?", [], "é"), [True, True]),
        (go.glob_match, ("[^a]*", [], "abc"), [True, True]),  # `^` and `a`: not a negation
        (go.glob_match, ("[^a]*", [], "bcd"), [True, False]),
        (go.glob_match, ("[!a]*", [], "bcd"), [True, True]),
        (go.glob_match, ("*.example.com", [], "a.b.example.com"), [True, False]),  # [] means ["."]
        (go.glob_match, ("*.example.com", None, "a.b.example.com"), [True, True]),
        (go.glob_match, ("x?.example.com", ["."], "xé.example.com"), [True, False]),  # gobwas' Row
        (go.glob_match, ("?", None, ""), [True, True]),  # gobwas' Single
        (go.glob_match, ("[a-z0-9]", None, "a"), UNDEFINED),  # one range per class in gobwas
        (go.glob_match, ("a", ["ab"], "a"), UNDEFINED),
        # YAML as sigs.k8s.io/yaml, JSON syntax as Go's json.Valid
        (go.yaml_unmarshal, ("debug: yes\nmode: 0777\n",), [True, {"debug": True, "mode": 511}]),
        (
            go.yaml_unmarshal,
            ("defaults: &d {p: true}\n<<: *d\n",),
            [True, {"defaults": {"p": True}, "p": True}],
        ),
        (go.yaml_unmarshal, ("-.inf",), UNDEFINED),
        (go.yaml_is_valid, ("?",), [True, False]),
        (go.json_is_valid, ("1e400",), [True, True]),
        (go.json_is_valid, ('"\\ud800"',), [True, True]),
        (go.json_is_valid, ("NaN",), [True, False]),
        # semver, units, time, numbers
        (go.semver_is_valid, ("v1.2.3",), [True, True]),
        (go.semver_is_valid, ("1.2.3-01",), [True, True]),
        (go.semver_compare, ("01.2.3", "2.0.0"), [True, -1]),
        (go.semver_compare, ("1.2.3-a.10", "1.2.3-a.2"), [True, 1]),
        (go.units_parse, ("1.",), [True, 1]),
        (go.units_parse, ("1500m",), [True, 1.5]),
        (go.units_parse_bytes, ("1.5",), [True, 1]),
        (go.units_parse_bytes, ("1_000",), UNDEFINED),
        (go.units_parse_bytes, ("1.5Ki",), [True, 1536]),
        (go.time_parse_rfc3339_ns, ("2026-01-01T00:00:00Z",), [True, 1767225600000000000]),
        (go.time_parse_rfc3339_ns, ("2026-01-01t00:00:00z",), UNDEFINED),
        (go.time_parse_rfc3339_ns, ("2026-01-01T00:00:00,5Z",), [True, 1767225600500000000]),
        (go.to_number, (" 1",), UNDEFINED),
        (go.to_number, ("-1.5e-3",), [True, -0.0015]),
        (go.to_number, (None,), [True, 0]),
        (go.indexof, ("abc", ""), UNDEFINED),
        (go.indexof, ("😀ab", "a"), [True, 1]),
        (go.strings_replace_n, ({"a": "b", "b": "a"}, "ab"), [True, "ba"]),
        (go.urlquery_decode, ("%zz",), UNDEFINED),
        (go.urlquery_decode, ("a+b%20c",), [True, "a b c"]),
        (go.net_cidr_expand, ("10.0.0.1/31",), [True, {"10.0.0.0", "10.0.0.1"}]),
    ],
)
def test_builtins_answer_as_opa(fn: Any, args: tuple[Any, ...], expected: list[Any]) -> None:
    registered = next(b.fn for b in go.BUILTINS.values() if b.fn.__wrapped__ is fn)  # type: ignore[attr-defined]
    assert registered(*args) == expected


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (go.BUILTINS["glob.match"].fn, ("*x?", [".", "/"], "éxa")),
        (go.BUILTINS["yaml.unmarshal"].fn, ("!!set {a, b}",)),
        (go.BUILTINS["net.cidr_expand"].fn, ("10.0.0.0/8",)),
        (go.BUILTINS["to_number"].fn, ("+1",)),
    ],
)
def test_what_cannot_be_reproduced_raises(call: Any, args: tuple[Any, ...]) -> None:
    with pytest.raises(Exception, match="reproduce"):
        call(*args)


def test_calls_route_only_where_regorus_may_differ() -> None:
    source = """package p
import rego.v1

a if regex.match(`^[a-z0-9.-]+$`, input.x)
b if regex.match(`^\\w+$`, input.x)
c if count(input.xs) > 1
d if count([1, 2]) > 1
e if upper("abc") == input.x
f if upper(input.x) == "A"
g if indexof(input.x, "@") > 0
"""
    out = rewrite_module("p.rego", source, rego_v0=False)
    lines = out.splitlines()
    assert "go_regex_match" not in lines[3] and "go_regex_match" in lines[4]
    assert "go_count" in lines[5] and "go_count" not in lines[6]
    assert "go_upper" not in lines[7] and "go_upper" in lines[8]
    assert "go_indexof" not in lines[9]


def test_literal_patterns_regorus_reads_as_go_does() -> None:
    for pattern in [r"^[a-z0-9.-]+$", r"(^|/)[^/:]*(:latest)?$", r"a{2,3}", r"(?i)abc", r"\.", r"[]a]"]:
        assert go.literal_pattern_agrees(pattern), pattern
    for pattern in [r"\w", r"\d", r"\s", r"\b", r"[a&&b]", r"[[a]]", r"x{,2}", r"é", r"(?x)a", r"\pL", r"\C"]:
        assert not go.literal_pattern_agrees(pattern), pattern


def test_substring_keeps_regorus_where_indexes_are_integers_by_their_form() -> None:
    source = """package p
import rego.v1

a if { n := count(input.s); substring(input.s, n - 2, 1) == "x" }
b if { substring(input.s, input.o, 1) == "x" }
c if { some m in input.xs; substring(input.s, m, 1) == "x" }
d if { m := count(input.s); m > 1 }
"""
    lines = rewrite_module("p.rego", source, rego_v0=False).splitlines()
    assert "go_substring" not in lines[3]
    assert "go_substring" in lines[4]
    assert "go_substring" in lines[5]  # `m` is bound by `some` too: not an integer by its form


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        # OPA's text is the float64's shortest: that float64
        ("plus", (0.7, 0.1), 0.8),
        ("mul", (0.29, 100), 29),
        ("div", (0.3, 0.1), 3),
        ("sum", ([0.7, 0.1],), 0.8),
        ("product", ([0.7, 0.1, 3],), 0.20999999999999996),  # 53 bits: float64's rounding
        # OPA's 0.10000000000000000002: held as 0.1's neighbour above
        ("minus", (1, 0.9), 0.10000000000000002),
        # OPA's 0.6269592476489029... of 20 digits rounds to a float64 of 16: that one
        ("div", (6.2, 9.889), 0.6269592476489029),
        ("div", (1, 0), UNDEFINED),
        ("plus", ("a", 1), UNDEFINED),
        ("sum", ({"a": 1},), UNDEFINED),
    ],
)
def test_arithmetic_as_opa(name: str, args: tuple[Any, ...], expected: Any) -> None:
    got = go.BUILTINS[name].fn(*args)
    assert got == (expected if expected == UNDEFINED else [True, expected])
    if expected != UNDEFINED:
        assert type(got[1]) is type(expected)


@pytest.mark.parametrize(
    "args", [(0.10000000000000002, 10), (1e308, 10), (1e308, 1e308), (0.20999999999999996, 1)]
)
def test_arithmetic_beyond_a_float64_could_not_be_evaluated(args: tuple[Any, ...]) -> None:
    """An operand whose digits may stand for a longer result of OPA's, and a result beyond a
    float64: refused (exit 3), never a value."""
    with pytest.raises(go.OperandUnsupportedError, match="reproduce"):
        go.BUILTINS["mul"].fn(*args)
