"""cel-go's answers where the runtime's differ, found in review: leading-dot globals, forged
rewrite markers, exact lists functions over durations, timestamps and uints, ParseFloat's
underscores, NaN, string() of a double, and strings holding a NUL character.

Each case cites where cel-go (or Go's strconv) gives the expected value.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from trustgate.policy import _gostrconv, cel, crd_formats

ERROR = object()  # an evaluation error (a failurePolicy outcome)
UNEVALUABLE = object()  # "could not evaluate": no verdict
REFUSED = object()  # a compile error


def outcome(expression: str, obj: Any = None) -> Any:
    try:
        program = cel.compile_expression(expression, variables=["object"])
    except cel.CelCompileError:
        return REFUSED
    try:
        return program.evaluate({"object": obj if obj is not None else {}})
    except cel.CelUnevaluableError:
        return UNEVALUABLE
    except cel.CelEvalError:
        return ERROR


# 1. `.int(x)` is the root scope's `int` (cel-go resolves a leading `.` to the global
# function): it takes a string through strconv.ParseInt, as `int(x)` does.
LEADING_DOT = [
    (".int(' 5')", ERROR),  # ParseInt refuses the space
    (".int(object.s)", ERROR),
    (".uint(' 5')", ERROR),
    (".uint('+1')", ERROR),  # ParseUint: no sign
    (".double(' 5')", ERROR),
    (".bool('T')", True),  # ParseBool takes T
    (".int('5') + 1", 6),
    ("1 + .int('5')", 6),
    ("[.int('5'), .uint('6')]", [5, 6]),
    (".string(duration('1.5s'))", "1.5s"),  # FormatFloat(d.Seconds(), 'f', -1) + "s"
    (".timestamp('2020-01-01T00:00:00Z') == timestamp('2020-01-01T00:00:00Z')", True),
    (".duration('1.5s').getMilliseconds()", 1500),
    # forged markers: the names trustgate's rewriting adds are refused in what a policy writes
    ("int(cel.bind(__tg_go_t, ' 5', __tg_go_t))", REFUSED),
    (".int(cel.bind(__tg_go_t, ' 5', __tg_go_t))", REFUSED),
    ("__tg_go_int(' 5')", REFUSED),
]


@pytest.mark.parametrize(("expression", "expected"), LEADING_DOT)
def test_leading_dot_globals_and_forged_markers(expression: str, expected: Any) -> None:
    got = outcome(expression, {"s": " 5"})
    assert got is expected if expected is ERROR or expected is REFUSED else got == expected


def test_a_receivers_int_is_a_member_call_not_the_global() -> None:
    # `x.int(...)` names no function (cel-go: "found no matching overload"): refused, not routed
    assert outcome("'5'.int()") is REFUSED


# 2 and 4. Kubernetes' lists library (lists.go) over exact values: a duration or timestamp to
# the nanosecond (the bindings hand Python microseconds), a uint list's result a uint.
NS = "2025-01-01T00:00:00.000000{}Z"
LISTS = [
    ("[duration('500000001ns'), duration('500000001ns')].sum() <= duration('1s')", False),
    ("[duration('500000001ns'), duration('500000001ns')].sum() == duration('1000000002ns')", True),
    (f"[timestamp('{NS.format(900)}'), timestamp('{NS.format(100)}')].isSorted()", False),
    (f"[timestamp('{NS.format(100)}'), timestamp('{NS.format(900)}')].isSorted()", True),
    (
        f"[timestamp('{NS.format(900)}'), timestamp('{NS.format(100)}')].min()"
        f" == timestamp('{NS.format(100)}')",
        True,
    ),
    ("[duration('1ns'), duration('0s')].max() == duration('1ns')", True),
    ("[duration('1ns'), duration('2ns')].min() == duration('1ns')", True),
    ("[5u, 3u].min() + 1u", 4),
    ("[5u, 3u].max() + 1u", 6),
    ("[5u, 3u].sum() + 1u", 9),
    ("type([5u, 3u].sum()) == uint", True),
    ("type([5u, 3u].min()) == uint", True),
    ("[5u, 3].sum()", ERROR),  # Uint.Add(Int): no such overload
    ("[18446744073709551615u, 1u].sum()", ERROR),  # unsigned integer overflow
    ("[9223372036854775807, 1].sum()", ERROR),  # integer overflow
    ("[1, 2, 3].sum()", 6),
    ("[1.5, 2.5].sum()", 4.0),
    ("[].sum()", 0),
    ("['b', 'a'].min()", "a"),
    ("[b'b', b'a'].max()", b"b"),
    ("[true, false].isSorted()", False),
    ("[].min()", ERROR),  # min called on empty list
    ("[[1], [2]].min()", ERROR),  # no such overload
    ("dyn({'a': 1}).min()", ERROR),  # a map is no list
    ("[[1, 2].sum(), [3].max()].max()", 3),
    ("int([1, 2].sum())", 3),
    ("[1, 2].map(x, x * 2).filter(x, x > 2).sum()", 4),
    ("object.l.sum() + [3].sum()", 6),
    ("(([1] + [2])).sum()", 3),
    ("object.?l.orValue([3, 1]).min()", 1),
    ("[1, 2] == [1, 2] && [2, 1].isSorted() == false", True),
    ("2 in [[1, 2].max()]", True),
]


@pytest.mark.parametrize(("expression", "expected"), LISTS)
def test_lists_functions_see_exact_values(expression: str, expected: Any) -> None:
    got = outcome(expression, {"l": [1, 2]})
    assert got is expected if expected is ERROR else got == expected


# 3. strconv.ParseFloat (Go's atof_test.go cases): `_` between digits, base prefix or not.
PARSE_FLOAT = [
    ("1_23.50_0_0e+1_2", 1.235e14),
    ("1_000", 1000.0),
    ("0x_1_2.3_4_5p+1_2", 74565.0),
    ("-0x1_ep-1", -15.0),
    ("-_123.5e+12", None),
    ("+_123.5e+12", None),
    ("_123.5e+12", None),
    ("1__23.5e+12", None),
    ("123_.5e+12", None),
    ("123._5e+12", None),
    ("123.5_e+12", None),
    ("123.5__0e+12", None),
    ("123.5e_+12", None),
    ("123.5e+_12", None),
    ("123.5e+1__2", None),
    ("123.5e+12_", None),
    ("-_0x12.345p+12", None),
    ("0x__12.345p+12", None),
    ("0x12.345p+_12", None),
    ("inf", float("inf")),
    ("-Infinity", float("-inf")),
    ("1e400", None),  # ErrRange
    ("0x10", None),  # a hexadecimal mantissa needs a p exponent
]


@pytest.mark.parametrize(("text", "expected"), PARSE_FLOAT)
def test_parse_float_follows_go(text: str, expected: float | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            _gostrconv.parse_float(text)
        assert outcome(f"double('{text}')") is ERROR
    else:
        assert _gostrconv.parse_float(text) == expected
        assert outcome(f"double('{text}')") == expected


# 5. cel-go orders no NaN: `<`, `<=`, `>`, `>=` with one are an error, "NaN values cannot be
# ordered" (common/types/double.go, int.go, uint.go Compare, since its cross-type comparisons),
# where the runtime's comparisons are false. An expression that can make a NaN (a double
# conversion or arithmetic, a sum) has each comparison guarded; a variable holding one is
# "could not evaluate" (the expressions reading it are not guarded).
NAN = [
    ("double('nan') < 1.0", ERROR),
    ("!(double(object.s) > 100.0)", ERROR),
    ("1 < double('NaN')", ERROR),
    ("double('nan') <= 1u", ERROR),
    ("0.0 / 0.0 < 1.0", ERROR),
    ("!(0.0 / 0.0 > 100.0)", ERROR),
    ("(1.0 / 0.0 - 1.0 / 0.0) >= 1", ERROR),
    ("[1.0 / 0.0, -1.0 / 0.0].sum() < 1.0", ERROR),
    ("double('nan') != double('nan')", True),  # equality is no ordering
    ("string(double('nan'))", "NaN"),
    ("1.0 / 0.0 > 100.0", True),
    ("double('1.5') < 2.0", True),
    ("1.5 - 0.5 <= 1.0", True),
    ("[1.0 - 2.0, 3.0].all(x, x < 5.0)", True),
    ("1.0 - 2.0 < 0.0 && 2 > 1", True),
    ("1.0 - 2.0 < 0.0 ? 'a' : 'b'", "a"),
    ("(1.0 - 2.0 < 0.0) == true", True),
    ("1.0 - 2.0 < 0.0 == true", True),  # relations are one left-associative level
    ("1.0 + 2.0 > 2.5 in [true]", True),
    ("{'a': 1.0 - 2.0 < 0.0}.a", True),
    ("-(1.0 - 2.0) >= 1.0", True),
    ("(1.0 - 2.0 < 0.0) == (2.0 - 1.0 > 0.0)", True),
    ("string(1.0 - 2.0 < 0.0) == 'true'", True),
    ("int(1.0 - 2.0) < 0", True),
    ("1.0 - 2.0 < 0.0 == 2.0 - 1.0 > 0.0", REFUSED),  # ((a < b) == c) > d, as cel-go parses it
    ("object.?n.orValue(1.0) - 1.0 < 2.0", True),
]


@pytest.mark.parametrize(("expression", "expected"), NAN)
def test_a_nan_is_not_ordered(expression: str, expected: Any) -> None:
    got = outcome(expression, {"s": "NaN"})
    assert got is expected if expected is ERROR or expected is REFUSED else got == expected


def test_a_variable_holding_a_nan_is_not_handed_back() -> None:
    program = cel.compile_expression("[0.0 / 0.0]", variables=["object"])
    with pytest.raises(cel.CelUnevaluableError, match="NaN"):
        program.evaluate({"object": {}}, bindable=True)


# 8. string(double) is cel-go's FormatFloat(d, 'g', -1, 64) (fmt %g in older releases).
STRING_DOUBLE = [
    ("string(double('inf'))", "+Inf"),
    ("string(-double('inf'))", "-Inf"),
    (".string(double('-inf'))", "-Inf"),
    ("string(1.5)", "1.5"),
    ("string(2.0)", "2"),
    ("string(1e21)", "1e+21"),
    ("string(1e-5)", "1e-05"),
    ("string(dyn(123456789.0))", "1.23456789e+08"),
    ("string(1)", "1"),
]


@pytest.mark.parametrize(("expression", "expected"), STRING_DOUBLE)
def test_string_of_a_double_is_go_g(expression: str, expected: str) -> None:
    assert outcome(expression) == expected


# 9. The bindings cut a string handed to the runtime at a NUL character: such an input is
# "could not evaluate", never true or false.
NUL = [
    ("object.y.matches('^[0-9]+$')", {"y": "12\x00abc"}, UNEVALUABLE),
    ("int(object.y) == 12", {"y": "12\x00abc"}, UNEVALUABLE),
    ("object.size() == 1", {"y\x00z": "1"}, UNEVALUABLE),
    ("object.l.all(x, x.size() < 3)", {"l": ["ok", "a\x00bcd"]}, UNEVALUABLE),
    ("['a\\x00b'].sort().size() == 1", {}, UNEVALUABLE),  # a library result holding one
    ("'a\\x00b'.size()", {}, 3),  # a literal: the runtime keeps it whole
    ("object.y.matches('^[0-9]+$')", {"y": "12"}, True),
]


@pytest.mark.parametrize(("expression", "obj", "expected"), NUL)
def test_a_nul_character_is_not_evaluated(expression: str, obj: Any, expected: Any) -> None:
    got = outcome(expression, obj)
    assert got is expected if expected is UNEVALUABLE else got == expected


def test_a_nul_character_in_the_source_is_refused() -> None:
    with pytest.raises(cel.CelCompileError, match="NUL"):
        cel.compile_expression("true\x00 && false", variables=["object"])


def test_a_nul_in_shared_bindings_is_not_evaluated() -> None:
    program = cel.compile_expression("object.y == '12'", variables=["object"])
    with pytest.raises(cel.CelUnevaluableError, match="NUL"):
        program.evaluate(cel.Bindings({"object": {"y": "12\x00"}}))


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"a": [{"b": "x"}, {"c": "y\x00"}]}, ("a", 1, "c")),
        ({"a": {"k\x00": None}}, ("a", "k\x00")),
        ({"a": ("t", "u\x00")}, ("a", 1)),  # a tuple: not plain data, walked
        ({1: "n", "a": "b\x00"}, ("a",)),  # a key that is no string
        ({"a": "\\u0000", "b": "\\x00"}, None),  # the escapes' text, no NUL
        ({"a": [1, 2.5, True, None, {"b": "c"}]}, None),
        ({"s": "\ud800", "b": "c\x00"}, ("b",)),  # a lone surrogate: no JSON, walked
        ({"i": 2**70, "b": "c\x00"}, ("b",)),  # beyond 64 bits: no JSON, walked
        ({"m": MappingProxyType({"k": "v\x00"})}, ("m", "k")),  # not a dict: walked
    ],
)
def test_the_nul_scan_finds_every_nul_and_its_path(value: Any, path: Any) -> None:
    # The quick scan over the joined strings must miss none the walk finds.
    assert cel._nul_path(value) == path
    if path is not None:
        assert not cel._nul_free(value)


def test_a_variable_holding_a_nul_is_not_handed_back() -> None:
    program = cel.compile_expression("'a\\x00b'", variables=["object"])
    with pytest.raises(cel.CelUnevaluableError):
        program.evaluate({"object": {}}, bindable=True)


def test_durations_keep_their_nanoseconds_through_a_sum() -> None:
    program = cel.compile_expression("[duration('1ns'), duration('1ns')].sum()", variables=["object"])
    assert program.evaluate({"object": {}}, bindable=True).ToNanoseconds() == 2


# 6. One port of Go's url.ParseRequestURI for `isURL`, `url()`, `format.uri()` and a CRD's
# `format: uri`. A host with a colon before its port's is refused by Go 1.26's default
# (urlstrictcolons, internal/godebugs: changed in 1.26) and accepted before it: which one an API
# server has depends on its build, so it is "could not evaluate" in CEL; a schema takes it (as
# the 1.20 API server of test_crd_formats_apiserver does).
URIS = [
    ("http://a:80/", True),
    ("http://[::1]:80/", True),
    ("http://[fe80::1%25en0]/", True),
    ("/p", True),
    ("mailto:x", True),
    ("*", True),
    ("http://a:x/", False),  # invalid port ":x" after host
    ("http://a b/", False),  # invalid character " " in host name
    ("", False),
    ("p", False),  # invalid URI for request
    ("http://a/%zz", False),  # invalid URL escape
    ("http://a:b:80/", None),
    ("http://::1/", None),
]


@pytest.mark.parametrize(("text", "valid"), URIS)
def test_one_request_uri_parser(text: str, valid: bool | None) -> None:
    assert crd_formats.is_uri(text) is (valid is not False)
    is_url = outcome("isURL(object.u)", {"u": text})
    invalid = outcome("format.uri().validate(object.u).hasValue()", {"u": text})
    if valid is None:
        assert is_url is UNEVALUABLE and invalid is UNEVALUABLE
    else:
        assert is_url is valid and invalid is (not valid)


# 7. format.portName(): validation.IsValidPortName (apimachinery validation.go), in the
# format library's table (library/format.go) beside qualifiedName.
PORT_NAMES = [
    ("http", []),
    ("http-80", []),
    ("a", []),
    ("123", ["must contain at least one letter (a-z)"]),
    ("Http", ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]),
    ("a--b", ["must not contain consecutive hyphens"]),
    ("-a", ["must not begin or end with a hyphen"]),
    ("abcdefghijklmnop", ["must be no more than 15 characters"]),
    (
        "",
        [
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "must contain at least one letter (a-z)",
        ],
    ),
]


@pytest.mark.parametrize(("text", "errors"), PORT_NAMES)
def test_format_port_name(text: str, errors: list[str]) -> None:
    found = outcome("format.portName().validate(object.p)", {"p": text})
    assert (found["value"] if found.get("present") else []) == errors
    assert outcome("format.named('portName').hasValue()") is True
