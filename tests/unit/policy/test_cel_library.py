"""Kubernetes' CEL library functions and cel-go's conversions, against their Go sources and tests.

Cases cite where they come from: k8s.io/apiserver/pkg/cel/library (semverlib.go and
semver_test.go, format.go and format_test.go, lists.go and lists_test.go), apimachinery's
validators, blang/semver v4, and cel-go's common/types (string.go, duration.go, timestamp.go)
and stdlib. An `ERROR` expectation is an evaluation error (a failurePolicy outcome).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from trustgate.policy import cel

VARIABLES = ("object",)
ERROR = object()


def run(expression: str, obj: Any = None) -> Any:
    return cel.compile_expression(expression, variables=VARIABLES).evaluate({"object": obj or {}})


def check(expression: str, expected: Any, obj: Any = None) -> None:
    if expected is ERROR:
        with pytest.raises(cel.CelEvalError):
            run(expression, obj)
        return
    got = run(expression, obj)
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(got, float) and math.isnan(got), (expression, got)
        return
    assert got == expected and type(got) is type(expected), (expression, got)


# -- 1. semver: blang/semver v4's Parse, and Kubernetes' normalizeAndParse -------------------

SEMVER_NORMALIZED = [
    # semver_test.go, version 1
    ("", False),
    (" 1.0.0", False),
    ("1. 0.0", False),
    ("1.0.0 ", False),
    ("v1.0.0", True),
    ("01.01.01", True),
    ("1", True),
    ("1.1", True),
    ("v01.01", True),
    # normalizeAndParse: SplitN(s, ".", 3), an empty part stays empty (ParseUint("") fails)
    ("v", False),
    (".", False),
    ("1.", False),
    ("1..2", False),
    ("v1.2.3.", False),
    ("vv1", False),
    # a short version holding '+' or '-' is refused ("short version cannot contain ...")
    ("1-rc", False),
    ("1.2-rc.1", False),
    ("1.2+b", False),
    ("1.2.3-rc.1+b", True),
    # leading zeros go from each of the three parts, the pre-release keeps its own
    ("01.02.03-rc.1+b.2", True),
    ("1.2.3-rc.01", False),
    # numbers are uint64 (strconv.ParseUint(s, 10, 64))
    ("18446744073709551615.0.0", True),
    ("99999999999999999999.0.0", False),
    ("1.0.0-99999999999999999999", False),
]


@pytest.mark.parametrize(("text", "valid"), SEMVER_NORMALIZED)
def test_is_semver_normalized_as_kubernetes(text: str, valid: bool) -> None:
    assert run(f"isSemver({text!r}, true)") is valid
    if valid:
        run(f"semver({text!r}, true)")
    else:
        with pytest.raises(cel.CelEvalError):
            run(f"semver({text!r}, true)")


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        # semver_test.go, version 0
        ("1.2.3-beta.1+build.1", True),
        ("", False),
        ("v1.0.0", False),
        (" 1.0.0", False),
        ("01.01.01", False),
        ("1", False),
        ("1.1", False),
        # blang/semver v4: uint64 numbers, empty pre-release or build parts refused
        ("18446744073709551615.18446744073709551615.18446744073709551615", True),
        ("18446744073709551616.0.0", False),
        ("1.0.0-18446744073709551616", False),
        ("1.0.0-", False),
        ("1.0.0+", False),
        ("1.0.0-a..b", False),
        ("1.0.0-0a.--", True),
    ],
)
def test_is_semver_as_blang(text: str, valid: bool) -> None:
    assert run(f"isSemver({text!r})") is valid


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("semver('v01.01', true) == semver('1.1.0')", True),  # semver_test.go equality_normalize
        ("semver('1.2.-1', true) == semver('1.2.0-1')", True),  # "-1" is given a leading "0"
        # types.Int(v.Major) of a uint64 wraps as Go's conversion does
        ("semver('18446744073709551615.0.0').major()", -1),
    ],
)
def test_semver_values(expression: str, expected: Any) -> None:
    check(expression, expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("semver('v1.0')", "No Major.Minor.Patch elements found"),  # semver_test.go parseInvalidVersion
        ("semver('1-rc', true)", "short version cannot contain PreRelease/Build meta data"),
        ("semver('', true)", 'strconv.ParseUint: parsing "": invalid syntax'),
    ],
)
def test_semver_errors_are_blangs(expression: str, message: str) -> None:
    with pytest.raises(cel.CelEvalError, match=message):
        run(expression)


# -- 2. format: the Go validators format.go calls, with their messages -----------------------

_LABEL_ERROR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_SUBDOMAIN_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_DNS1035_ERROR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)

FORMAT_ERRORS = [
    # format_test.go
    ("dns1123Label", "contains a space", [_LABEL_ERROR]),
    ("dns1123Subdomain", "contains a space", [_SUBDOMAIN_ERROR]),
    ("dns1035Label", "contains a space", [_DNS1035_ERROR]),
    (
        "qualifiedName",
        "contains a space",
        [
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        ],
    ),
    ("dns1123LabelPrefix", "contains a space-", [_LABEL_ERROR]),
    ("dns1123SubdomainPrefix", "contains a space-", [_SUBDOMAIN_ERROR]),
    ("dns1035LabelPrefix", "contains a space-", [_DNS1035_ERROR]),
    ("byte", "aGVsbG8", ["invalid base64"]),
    ("date", "2020-01-32", ["invalid date"]),
    ("datetime", "2020-01-32T00:00:00Z", ["invalid datetime"]),
    (
        "labelValue",
        "my-cool-label-Value!!\n\n!!!",
        [
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
            "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        ],
    ),
    # format.go: uuid's own message; IsDNS1123Label's dots; ParseRequestURI's *url.Error
    ("uuid", "x", ["does not match the UUID format"]),
    ("dns1123Label", "a.b", ["must not contain dots"]),
    ("uri", "https://example.com/%zz", ['parse "https://example.com/%zz": invalid URL escape "%zz"']),
    ("uri", "http://[::1", ["parse \"http://[::1\": missing ']' in host"]),
    ("dns1123Label", "a" * 64, ["must be no more than 63 characters"]),
]


@pytest.mark.parametrize(("name", "text", "errors"), FORMAT_ERRORS)
def test_format_errors_are_the_validators(name: str, text: str, errors: list[str]) -> None:
    assert run(f"format.{name}().validate(object.v).value()", {"v": text}) == errors


FORMAT_VALID = [
    # format_test.go's examples
    ("dns1123Label", "my-label-name", True),
    ("dns1123Subdomain", "apiextensions.k8s.io", True),
    ("qualifiedName", "apiextensions.k8s.io/v1beta1", True),
    ("dns1123LabelPrefix", "my-label-prefix-", True),
    ("dns1123SubdomainPrefix", "mysubdomain.prefix.-", True),
    ("dns1035LabelPrefix", "my-label-prefix-", True),
    ("uri", "http://example.com", True),
    ("uuid", "123e4567-e89b-12d3-a456-426614174000", True),
    ("byte", "aGVsbG8=", True),
    ("date", "2021-01-01", True),
    ("datetime", "2021-01-01T00:00:00Z", True),
    ("labelValue", "my-cool-label-Value", True),
    # maskTrailingDash: name[:len(name)-2] + "a" (the character before the dash goes too)
    ("dns1123LabelPrefix", "ab_-", True),
    ("dns1123SubdomainPrefix", "a.-", True),  # -> "aa"
    ("dns1035LabelPrefix", "1-", True),  # -> "a"
    ("dns1123LabelPrefix", "a--", True),  # -> "aa"
    ("dns1123LabelPrefix", "A-", True),  # -> "a"
    ("dns1123LabelPrefix", "Ab-", False),  # -> "Aa"
    # uri: url.ParseRequestURI (as isURL)
    ("uri", "/path", True),
    ("uri", "*", True),
    ("uri", "mailto:a@b", True),
    ("uri", "foo", False),
    ("uri", "", False),
    ("uri", "http://a b.com/", False),
    ("uri", "http://example.com:port/", False),
    ("uri", "https://example.com/%zz", False),
    # uuid: strfmt's pattern, each dash optional, either case
    ("uuid", "123e4567e89b12d3a456426614174000", True),
    ("uuid", "123E4567-E89B-12D3-A456-426614174000", True),
    ("uuid", "123e4567-e89b12d3-a456-426614174000", True),
    ("uuid", "123e4567-e89b-12d3-a456-42661417400\uff10", False),
    ("uuid", "", False),
    # byte: govalidator.IsBase64, which refuses the empty string
    ("byte", "", False),
    ("byte", "aGVsbG8", False),
    ("byte", "aGVsbG8=\n", False),
    ("byte", "aGVsbA==QQ==", False),
    # date: time.Parse("2006-01-02"), year 0000 included
    ("date", "0000-01-01", True),
    ("date", "0000-02-29", True),
    ("date", "2021-02-29", False),
    ("date", "2021-1-01", False),
    # datetime: strfmt's IsDateTime
    ("datetime", "2020-01-01t00:00:00z", True),
    ("datetime", "2020-01-01T00:00:00,5Z", True),
    ("datetime", "2020-01-01T00:00:00+99:99", True),
    ("datetime", "2020-01-01 00:00:00Z", False),
    ("datetime", "2020-01-01T24:00:00Z", False),
    ("datetime", "2020-01-01T00:00:00", False),
]


@pytest.mark.parametrize(("name", "text", "valid"), FORMAT_VALID)
def test_format_accepts_what_the_validators_accept(name: str, text: str, valid: bool) -> None:
    assert run(f"format.{name}().validate(object.v).hasValue()", {"v": text}) is not valid


def test_a_prefix_of_a_lone_dash_is_an_error_as_go_panics() -> None:
    # maskTrailingDash("-") slices name[:-1]: a panic, which cel-go's Eval turns into an error
    with pytest.raises(cel.CelEvalError, match="slice bounds out of range"):
        run("format.dns1123LabelPrefix().validate('-')")


# -- 3. conversions from strings: strconv's parsers (cel-go common/types/string.go) ----------

CONVERSIONS = [
    # ParseInt(s, 10, 64): no whitespace, no base prefix, no underscores; a sign is allowed
    ("int(' 5')", ERROR),
    ("int('1 ')", ERROR),
    ("int('\\t1')", ERROR),
    ("int('+5')", 5),
    ("int('-0')", 0),
    ("int('0x10')", ERROR),
    ("int('1_000')", ERROR),
    ("int('9223372036854775807')", 9223372036854775807),
    ("int('9223372036854775808')", ERROR),
    ("int('\\u0661')", ERROR),  # an Arabic-Indic one: not an ASCII digit
    # ParseUint(s, 10, 64): digits only, no sign
    ("uint(' 1')", ERROR),
    ("uint('+1')", ERROR),
    ("uint('-0')", ERROR),
    ("uint('18446744073709551615') == 18446744073709551615u", True),
    ("uint('18446744073709551616')", ERROR),
    # ParseFloat(s, 64)
    ("double(' 1.5')", ERROR),
    ("double('1.5 ')", ERROR),
    ("double('1e3')", 1000.0),
    ("double('.5')", 0.5),
    ("double('5.')", 5.0),
    ("double('0x1p-2')", 0.25),
    ("double('0x1_0p0')", 16.0),
    ("double('0x10')", ERROR),  # a hexadecimal mantissa needs a 'p' exponent
    ("double('1_0.5')", 10.5),  # underscores between digits, base prefix or not (atof_test.go)
    ("double('inf')", math.inf),
    ("double('-Infinity')", -math.inf),
    ("double('infin')", ERROR),
    ("double('NaN')", math.nan),
    ("double('+nan')", ERROR),
    ("double('1e400')", ERROR),  # ErrRange: an error, not +Inf
    ("double('1e-400')", 0.0),
    ("double('.')", ERROR),
    # ParseBool
    ("bool('T')", True),
    ("bool('F')", False),
    ("bool('True')", True),
    ("bool('1')", True),
    ("bool('tRue')", ERROR),
    ("bool(' true')", ERROR),
]


@pytest.mark.parametrize(("expression", "expected"), CONVERSIONS)
def test_string_conversions_are_strconvs(expression: str, expected: Any) -> None:
    check(expression, expected)


def test_conversion_of_a_field_is_checked_too() -> None:
    with pytest.raises(cel.CelEvalError, match="type conversion error from 'string' to 'int'"):
        run("int(object.v) <= 10", {"v": " 5"})
    assert run("int(object.v) <= 10", {"v": "5"}) is True
    assert run("int(dyn(object.v))", {"v": 7}) == 7  # other arguments are the runtime's


# -- 4. string() of durations and timestamps, int(duration) ----------------------------------

TIME_TEXT = [
    # duration.go: strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
    ("string(duration('1500ms'))", "1.5s"),
    ("string(duration('100ms'))", "0.1s"),
    ("string(duration('1ns'))", "0.000000001s"),
    ("string(duration('-1.000000001s'))", "-1.000000001s"),
    ("string(duration('-1h'))", "-3600s"),
    ("string(duration('0s'))", "0s"),
    ("string(duration('2562047h'))", "9223369200s"),
    ("string(duration('1h') + duration('1ms'))", "3600.001s"),
    # timestamp.go: t.Format(time.RFC3339Nano), trailing zeros of the fraction dropped
    ("string(timestamp('2020-01-01T00:00:00Z'))", "2020-01-01T00:00:00Z"),
    ("string(timestamp('2020-01-01T00:00:00.500Z'))", "2020-01-01T00:00:00.5Z"),
    ("string(timestamp('0001-01-01T00:00:00.000000001Z'))", "0001-01-01T00:00:00.000000001Z"),
    ("string(timestamp(0))", "1970-01-01T00:00:00Z"),
    # stdlib: int(duration) is the nanoseconds (duration_to_int64), int(timestamp) Unix seconds
    ("int(duration('1s'))", 1_000_000_000),
    ("int(duration('1.5s'))", 1_500_000_000),
    ("int(duration('-1ns'))", -1),
    ("int(timestamp('2020-01-01T00:00:00Z'))", 1577836800),
    # unchanged
    ("string(1.5)", "1.5"),
    ("string(123456789.0)", "1.23456789e+08"),
    ("string(b'ab')", "ab"),
    ("string(ip('::1'))", "::1"),
]


@pytest.mark.parametrize(("expression", "expected"), TIME_TEXT)
def test_time_conversions_are_cel_gos(expression: str, expected: Any) -> None:
    check(expression, expected)


def test_a_duration_string_read_from_the_object_is_cel_gos() -> None:
    assert run("string(duration(object.v))", {"v": "1500ms"}) == "1.5s"


# -- 5. lists library on durations and timestamps; incomparable items ------------------------

LISTS = [
    # lists_test.go / lists.go: sum over summableTypes (int, uint, double, duration)
    ("[duration('1m'), duration('1s')].sum() == duration('61s')", True),
    ("[duration('1m'), duration('1s')].sum() < duration('1h')", True),
    ("[1, 2].sum()", 3),
    ("[1.0, 3.0].sum()", 4.0),
    ("[].sum()", 0),
    ("[duration('2562047h'), duration('2562047h')].sum()", ERROR),  # Duration.Add overflows
    ("[duration('1s'), 1].sum()", ERROR),
    # min / max / isSorted over comparableTypes, durations and timestamps included
    ("[duration('1m'), duration('1s')].min() == duration('1s')", True),
    ("[duration('1m'), duration('1s')].max() == duration('1m')", True),
    ("[duration('1s'), duration('1m')].isSorted()", True),
    ("[duration('1m'), duration('1s')].isSorted()", False),
    (
        "[timestamp('2020-01-01T00:00:00Z'), timestamp('2019-01-01T00:00:00Z')].min()"
        " == timestamp('2019-01-01T00:00:00Z')",
        True,
    ),
    (
        "[timestamp('2020-01-01T00:00:00Z'), timestamp('2021-01-01T00:00:00Z')].max()"
        " == timestamp('2021-01-01T00:00:00Z')",
        True,
    ),
    ("[timestamp('2020-01-01T00:00:00Z'), timestamp('2019-01-01T00:00:00Z')].isSorted()", False),
    ("[b'b', b'a'].min() == b'a'", True),
    ("['a', 'b', 'b', 'c'].isSorted()", True),
    ("[2.0, 1.0].isSorted()", False),
    ("[].isSorted()", True),
    ("[].min()", ERROR),  # "min called on empty list"
    # no comparison at all (traits.Comparer): "no such overload", whatever the position
    ("[[1], [2]].min()", ERROR),
    ("[{'a': 1}].max()", ERROR),
    ("[null].isSorted()", ERROR),
    ("[1, null].isSorted()", ERROR),
    ("[2, [1]].min()", ERROR),
    ("[quantity('1')].min()", ERROR),
]


@pytest.mark.parametrize(("expression", "expected"), LISTS)
def test_lists_library_on_all_its_types(expression: str, expected: Any) -> None:
    check(expression, expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[[1], [2]].min()", "^no such overload$"),
        ("[null].isSorted()", "^no such overload$"),
        ("[{'a': 1}].max()", "^no such overload$"),
        ("[].max()", "^max called on empty list$"),
        ("['a'].sum()", "^no such overload$"),
    ],
)
def test_lists_errors_are_cel_gos(expression: str, message: str) -> None:
    with pytest.raises(cel.CelEvalError, match=message):
        run(expression)


def test_lists_of_durations_from_the_object() -> None:
    assert run("object.v.map(d, duration(d)).sum() == duration('90s')", {"v": ["1m", "30s"]}) is True
    assert run("object.v.map(d, duration(d)).max()", {"v": ["1m", "30s"]}) == dt.timedelta(minutes=1)


# -- 6. the strings library: cel-go's ext/strings.go as each Kubernetes version has it --

STRING_SEARCHES = [
    # the doc comment's examples ('hello mellow'), which both runtimes answer alike
    ("'hello mellow'.indexOf('')", 0),
    ("'hello mellow'.indexOf('ello')", 1),
    ("'hello mellow'.indexOf('jello')", -1),
    ("'hello mellow'.indexOf('', 2)", 2),
    ("'hello mellow'.indexOf('ello', 2)", 7),
    ("'hello mellow'.indexOf('ello', 20)", -1),
    ("'hello mellow'.indexOf('ello', -1)", ERROR),
    ("'hello mellow'.lastIndexOf('')", 12),
    ("'hello mellow'.lastIndexOf('ello')", 7),
    ("'hello mellow'.lastIndexOf('jello')", -1),
    ("'hello mellow'.lastIndexOf('ello', 6)", 1),
    ("'hello mellow'.lastIndexOf('ello', 20)", -1),
    ("'hello mellow'.lastIndexOf('ello', -1)", ERROR),
    ("'é-é'.lastIndexOf('é')", 2),  # characters (Go's runes), not bytes
    # where the runtime's answer differs: an offset at the end is -1 for a non-empty search
    # string, even where it occurs before (the runtime: 0)...
    ("'abc'.lastIndexOf('a', 3)", -1),
    # ...lastIndexOf in an empty string is -1 since cel-go v0.26 (cel-spec's string_ext
    # conformance: `''.lastIndexOf('@@') == -1`)...
    ("''.lastIndexOf('x')", -1),
    # ...and an empty search string gives the offset, unchecked (the runtime: an error)
    ("'abc'.indexOf('', 5)", 5),
    ("'abc'.indexOf('', -2)", -2),
    ("'abc'.lastIndexOf('', 7)", 7),
    ("'abc'.lastIndexOf('', -2)", -2),
    # the lists library's, beside them
    ("[1, 2, 1].indexOf(1)", 0),
    ("[1, 2, 1].lastIndexOf(1)", 2),
    ("[true].indexOf(1)", -1),
    ("[3, 1].reverse()", [1, 3]),
]


@pytest.mark.parametrize(("expression", "expected"), STRING_SEARCHES)
def test_string_searches_are_cel_gos(expression: str, expected: Any) -> None:
    check(expression, expected)


UNKNOWN = object()  # "could not evaluate": trustgate does not know the version's answer

# By Kubernetes version: cel-go < v0.22 (1.31 and older) errs for an offset at or past the end
# (so `''.indexOf(x)`: offset 0 of an empty string); cel-go#1052 (merged two weeks before v0.22.0,
# which 1.32 pins; not checked to be in it) made it -1, as in v0.23.2 (1.33); cel-go#1173
# (v0.26, 1.34 on) made `''.lastIndexOf(x)` -1; cel-go#1335 (June 2026, in no release checked)
# checks an empty search's offset. Columns: 1.31, 1.32, 1.33, 1.34, 1.37.
VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.37")
SEARCHES_BY_VERSION = [
    ("'abc'.indexOf('c', 3)", (ERROR, UNKNOWN, -1, -1, -1)),
    ("'abc'.lastIndexOf('a', 3)", (ERROR, UNKNOWN, -1, -1, -1)),
    ("''.indexOf('x')", (ERROR, UNKNOWN, -1, -1, -1)),
    ("''.lastIndexOf('x')", (ERROR, ERROR, ERROR, -1, -1)),
    ("'abc'.indexOf('', 5)", (5, 5, 5, 5, UNKNOWN)),
    ("'abc'.lastIndexOf('', -1)", (-1, -1, -1, -1, UNKNOWN)),
    ("'abc'.indexOf('', 3)", (3, 3, 3, 3, 3)),
    ("'abc'.indexOf('c', 2)", (2, 2, 2, 2, 2)),
    ("''.indexOf('')", (0, 0, 0, 0, 0)),
    ("''.lastIndexOf('')", (0, 0, 0, 0, 0)),
]


@pytest.mark.parametrize(("expression", "answers"), SEARCHES_BY_VERSION)
def test_string_searches_follow_the_target_version(expression: str, answers: tuple[Any, ...]) -> None:
    for version, expected in zip(VERSIONS, answers, strict=True):
        program = cel.compile_expression(expression, variables=VARIABLES, kubernetes_version=version)
        if expected is UNKNOWN:
            with pytest.raises(cel.CelUnevaluableError, match="does not know which"):
                program.evaluate({"object": {}})
        elif expected is ERROR:
            with pytest.raises(cel.CelEvalError, match=r"^index out of range: -?\d+$") as raised:
                program.evaluate({"object": {}})
            assert not isinstance(raised.value, cel.CelUnevaluableError)
        else:
            assert program.evaluate({"object": {}}) == expected, (expression, version)


def test_string_searches_on_fields_are_cel_gos() -> None:
    assert run("object.v.lastIndexOf('.') == -1", {"v": ""}) is True
    expression = cel.compile_expression(
        "object.v.lastIndexOf('.') == -1", variables=VARIABLES, kubernetes_version="1.33"
    )
    with pytest.raises(cel.CelEvalError, match=r"^index out of range: -1$"):
        expression.evaluate({"object": {"v": ""}})
    assert run("object.v.lastIndexOf('a', 3)", {"v": "abc"}) == -1
    assert run("object.v.indexOf(object.v) + object.l.indexOf('b')", {"v": "abc", "l": ["a", "b"]}) == 1


# Go's strings.Split and SplitN (genSplit, explode), which cel-go's split calls, and cel-go's
# substr and substrRange: an end at the string's end is in range.
SPLITS_AND_SUBSTRINGS = [
    ("''.split('')", []),
    ("''.split('', 1)", []),
    ("''.split('', -1)", []),
    ("''.split('', 0)", []),
    ("''.split(',')", [""]),
    ("''.split(',', 1)", [""]),
    ("'abc'.split('')", ["a", "b", "c"]),
    ("'aé😀'.split('')", ["a", "é", "😀"]),
    ("'abc'.split('', 1)", ["abc"]),
    ("'abc'.split('', 2)", ["a", "bc"]),
    ("'abc'.split('', 9)", ["a", "b", "c"]),
    ("'a,b,c'.split(',')", ["a", "b", "c"]),
    ("'a,b,c'.split(',', 2)", ["a", "b,c"]),
    ("'a,b,c'.split(',', -1)", ["a", "b", "c"]),
    ("'a,b,c'.split(',', 0)", []),
    ("',a,'.split(',')", ["", "a", ""]),
    ("'abc'.substring(0, 3)", "abc"),
    ("'héllo'.substring(1, 5)", "éllo"),
    ("'abc'.substring(3, 3)", ""),
    ("'abc'.substring(3)", ""),
    ("'abc'.substring(1)", "bc"),
    ("'abc'.substring(0, 4)", ERROR),
    ("'abc'.substring(4)", ERROR),
    ("'abc'.substring(-1)", ERROR),
    ("'abc'.substring(2, 1)", ERROR),
    ("'abc'.substring(-1, 2)", ERROR),
]


@pytest.mark.parametrize(("expression", "expected"), SPLITS_AND_SUBSTRINGS)
def test_split_and_substring_are_cel_gos(expression: str, expected: Any) -> None:
    check(expression, expected)


def test_split_and_substring_on_fields_are_cel_gos() -> None:
    assert run("object.v.split('') == [] && object.v.split(',') == ['']", {"v": ""}) is True
    assert run("object.v.substring(size(object.v) - 4, size(object.v))", {"v": "a.exe"}) == ".exe"
    with pytest.raises(cel.CelEvalError, match=r"^invalid substring range. start: 2, end: 1$"):
        run("object.v.substring(2, 1)", {"v": "abc"})
    # a receiver that is no string finds no overload when it runs, as in the API server
    with pytest.raises(cel.CelEvalError, match="substring"):
        run("object.v.substring(0)", {"v": [1]})


def test_reverse_of_a_string_is_not_kubernetes() -> None:
    # Kubernetes enables the strings library at version 2; `reverse` on strings is version 3.
    with pytest.raises(cel.CelCompileError, match="no matching overload for 'reverse' applied to a string"):
        cel.compile_expression("'abc'.reverse() == 'cba'", variables=VARIABLES)
    # on a dyn receiver the lists library's is picked when the policy is written, and a string
    # finds no overload when it runs: an error for the failurePolicy
    with pytest.raises(cel.CelEvalError, match=r"reverse\(\)"):
        run("size(object.v.reverse()) == 3", {"v": "abc"})
    assert run("object.v.reverse()", {"v": ["a", "b"]}) == ["b", "a"]
