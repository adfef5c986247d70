"""trustgate.policy._gofmt: OPA's sprintf (Go's fmt.Sprintf over OPA's argument types).

The expected strings are OPA v1.20's answers (`opa-golib-python-bindings`,
`sprintf(input.f, input.a)`), copied here so that the unit tests need no OPA;
tests/differential compares against the live oracle.
"""

from __future__ import annotations

from typing import Any

import pytest

from trustgate.policy._gofmt import sprintf, term

OPA = [
    ("%v %v", [1], "1 %!v(MISSING)"),
    ("%v", [1, "a", 2.5, True, None], "1%!(EXTRA string=a, float64=2.5, string=true, string=null)"),
    ("%v%", [1], "1%!(NOVERB)"),
    ("%z", [1], "%!z(int64=1)"),
    ("%[2]v %v", [1, 2], "2 %!v(MISSING)"),
    ("%[3]v", [1, 2], "%!v(BADINDEX)"),
    ("%*d|%-*d|", [4, 7, 3, 8], "   7|8  |"),
    ("%*d", ["x", 1], "%!(BADWIDTH)1"),
    ("%.*f", [2, 3.14159], "3.14"),
    ("%d", ["abc"], "%!d(string=abc)"),
    ("%5d", ["abc"], "%!d(string=  abc)"),
    ("%.2f", [1], "%!f(int64=01)"),
    ("%s", [2.5], "%!s(float64=2.5)"),
    ("%x", [-255], "-ff"),
    ("%#o", [8], "010"),
    ("%O", [8], "0o10"),
    ("%b", [5], "101"),
    ("%c|%q|%U|%#U", [65, 65, 128512, 128512], "A|'A'|U+1F600|U+1F600 '😀'"),
    ("%T %T %T %T", ["s", 1, 2.5, 18446744073709551615], "string int64 float64 *big.Int"),
    (
        "%v|%d|%x|%+v|%q",
        [
            18446744073709551615,
            18446744073709551615,
            18446744073709551615,
            18446744073709551615,
            18446744073709551615,
        ],
        "18446744073709551615|18446744073709551615|ffffffffffffffff|+18446744073709551615|%!q(big.Int=18446744073709551615)",
    ),
    (
        "%e|%E|%.3g|%G",
        [123456.789, 123456.789, 123456.789, 123456.789],
        "1.234568e+05|1.234568E+05|1.23e+05|123456.789",
    ),
    ("%v|%v|%v|%v", [1e-07, 1.5e-07, 100000.5, 1234567.5], "1e-07|1.5e-07|100000.5|1.2345675e+06"),
    ("%x|%X|%b", [2.5, 2.5, 2.5], "0x1.4p+01|0X1.4P+01|5629499534213120p-51"),
    ("%#g|%#.3x", [2.5, 2.5], "2.50000|0x1.400p+01"),
    ("%08.3f|%-8.2f|%+.1e|% f", [-3.14159, 2.5, 2.5, 2.5], "-003.142|2.50    |+2.5e+00| 2.500000"),
    ("%q|%+q|%#q|%x|% X", ['é"\n', "é", "a`b", "hi", "hi"], '"é\\"\\n"|"\\u00e9"|"a`b"|6869|68 69'),
    ("%10.3s|%-4s|%04s", ["abcdef", "a", "b"], "       abc|a   |000b"),
    ("%v", [{"b": [1.5, None], "a": {"x": True}}], '{"a": {"x": true}, "b": [1.5, null]}'),
    ("%v", [["tab\t", "\x01", "é"]], '["tab\\t", "\\x01", "é"]'),
    ("%t|%p", [True, "x"], "%!t(string=true)|%!p(string=x)"),
    ("100%%", [], "100%"),
    ("%!", [1], "%!!(int64=1)"),
    ("%.0d|%.3d|%+d|% d", [0, 7, 7, 7], "|007|+7| 7"),
    # The `0` flag pads every string-like verb with zeros (%c, %q, %x of a string), not %U.
    ("%05s|%03c|%06x|%010q|%08U", ["ab", 65, "ab", "a", 65], '000ab|00A|006162|0000000"a"|  U+0041'),
    ("%+05c|%08.1x|%#010.3x", [42, "a", {"a": 1}], "0000*|00000061|000x7b2261"),
    # %x of a float: strconv's fmtX rounds half to even, the leading digit stays 1.
    (
        "%.0x|%.0x|%#.0x|%.1x|%.0X",
        [1.5, 2.5, 0.1, 1.96875, 1.5],
        "0x1p+01|0x1p+01|0x1.p-03|0x1.0p+01|0X1P+01",
    ),
]


@pytest.mark.parametrize(("fmt", "args", "expected"), OPA)
def test_sprintf_prints_what_opa_prints(fmt: str, args: list[Any], expected: str) -> None:
    assert sprintf(fmt, args) == expected


def test_terms_print_as_opa_prints_them() -> None:
    assert term(set()) == "set()"
    assert term({"b", "a", 1, None}) == '{null, 1, "a", "b"}'
    assert term({"k": [1, 2.5], "a": {"x"}}) == '{"a": {"x"}, "k": [1, 2.5]}'
    assert term("\U0001f600\x7f") == '"\U0001f600\\x7f"'
