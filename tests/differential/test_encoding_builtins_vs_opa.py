"""Encoding, network and string built-ins routed to Go's semantics, call by call against OPA.

The built-ins of `_goencoding`, `_gonet` and `_gotext` (ADR 0008, item 17): each case is one
call over generated operands (seeded), through trustgate's production path and through OPA,
compared as `test_builtins_vs_opa` compares them (a built-in error of OPA's is undefined; an
error of trustgate's that says it cannot reproduce OPA fails closed and is counted as such).
The tester's reproductions are among the operands.
"""

from __future__ import annotations

import base64
import itertools
import random
from typing import Any

import pytest
from test_builtins_vs_opa import _check, _compare, _ours

from trustgate.errors import PolicyError

RNG_SEED = 17

# -- net.cidr_* ----------------------------------------------------------------------------

ADDRESSES = [
    "10.1.2.3",
    "::ffff:10.1.2.3",
    "::FFFF:10.1.2.3",
    "::ffff:a01:203",
    "0:0:0:0:0:ffff:10.1.2.3",
    "::10.1.2.3",
    "::ffff:0:10.1.2.3",
    "010.1.2.3",
    "10.1.2.03",
    "10.1.2",
    "10.1.2.3.4",
    "10.1.2.256",
    "1.2.3.4",
    "11.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "::1",
    "::",
    "fd00::1",
    "fd00::ffff:10.1.2.3",
    "2001:db8::1",
    "fe80::1%eth0",
    "fe80::1%25",
    "::ffff:10.1.2.3%eth0",
    " 10.1.2.3",
    "10.1.2.3 ",
    "\u0661\u0660.1.2.3",  # Arabic-Indic digits
    "0x0a.1.2.3",
    "1::2::3",
    "12345::1",
    "x",
    "",
    "::ffff:010.1.2.3",
    "::ffff:1.2.3.4.5",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7::",
    "::1:2:3:4:5:6:7",
    ":1::",
    "1::",
    "0000:0000::1",
    "00000::1",
    "1:2:3:4:5:6:1.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "::1.2.3",
    "[::1]",
    "::ffff:10.1.2.3/",
]
NETWORKS = [
    "10.0.0.0/8",
    "10.0.0.0/08",
    "010.0.0.0/8",
    "10.1.2.3/8",
    "10.0.0.0/33",
    "10.0.0.0/",
    "10.0.0.0",
    "10.0.0.0/-1",
    "10.0.0.0/8/8",
    "10.0.0.0/ 8",
    "10.0.0.0/٨",
    "::ffff:10.0.0.0/104",
    "::ffff:10.0.0.0/96",
    "::ffff:10.0.0.0/95",
    "::ffff:0:0/96",
    "::/0",
    "0.0.0.0/0",
    "::/96",
    "fd00::/8",
    "fe80::/10",
    "fe80::%eth0/10",
    "10.1.0.0/16",
    "10.1.2.3/32",
    "::ffff:10.1.2.3/128",
    "2001:db8::/32",
    "2001:db8::/129",
    "10.0.0.0/000008",
    "10.0.0.0/99999999999",
]


def test_net_cidr_contains_addresses_and_networks() -> None:
    inner = ADDRESSES + NETWORKS
    cases: list[list[Any]] = [[n, x] for n, x in itertools.product(NETWORKS, inner)]
    cases += [[1, "10.0.0.1"], ["10.0.0.0/8", 1], [None, None], [["10.0.0.0/8"], "10.0.0.1"]]
    _check(_compare("net.cidr_contains", 2, cases))


def test_net_cidr_prefix_length_with_many_leading_zeros() -> None:
    """Go's `dtoi` takes any number of leading zeros: `0.0.0.0/000000000` is 0.0.0.0/0."""
    networks = [
        f"{a}/{'0' * z}{n}"
        for a, n in [("0.0.0.0", 0), ("10.1.2.3", 32), ("::", 0), ("::ffff:10.0.0.0", 104)]
        for z in (7, 8, 9, 12, 40)
    ]
    networks += [
        "10.0.0.0/" + "0" * 5000 + "8",
        "10.0.0.0/" + "0" * 9 + "16777216",
        "10.0.0.0/" + "0" * 9 + "33",
    ]
    cases = [[n, x] for n in networks for x in ["8.8.8.8", "10.1.2.3", "::ffff:10.1.2.3", "2001:db8::1"]]
    _check(
        _compare("net.cidr_contains", 2, cases)
        + _compare("net.cidr_is_valid", 1, [[n] for n in networks])
        + _compare("net.cidr_intersects", 2, [[n, "8.8.8.0/24"] for n in networks])
    )


def test_net_cidr_intersects_and_is_valid() -> None:
    cases: list[list[Any]] = [list(p) for p in itertools.product(NETWORKS, NETWORKS)]
    cases += [[1, "10.0.0.0/8"], ["10.0.0.0/8", None]]
    _check(
        _compare("net.cidr_intersects", 2, cases)
        + _compare("net.cidr_is_valid", 1, [[x] for x in NETWORKS + ADDRESSES] + [[1], [None], [["x"]]])
    )


def test_net_cidr_contains_generated() -> None:
    rng = random.Random(RNG_SEED)
    cases = []
    for _ in range(1500):
        a = ".".join(str(rng.choice([0, 10, 127, 192, 255, rng.randrange(256)])) for _ in range(4))
        b = ".".join(str(rng.choice([0, 10, 168, rng.randrange(256)])) for _ in range(4))
        net = rng.choice([a, f"::ffff:{a}", f"fd00::{rng.randrange(65536):x}"]) + f"/{rng.randrange(0, 130)}"
        other = rng.choice(
            [b, f"::ffff:{b}", f"{b}/{rng.randrange(0, 33)}", f"::ffff:{b}/{rng.randrange(90, 129)}"]
        )
        cases.append([net, other])
    _check(_compare("net.cidr_contains", 2, cases) + _compare("net.cidr_intersects", 2, cases[:500]))


# -- base64, hex -------------------------------------------------------------------------------

BASE64 = [
    "c2VjcmV0LXRva2Vu\n",
    "c2VjcmV0\nLXRva2Vu",
    "c2VjcmV0\r\nLXRva2Vu\r\n",
    "\nYQ==",
    "YQ==\n",
    "YQ=\n=",
    "YQ=\n=\n",
    "Y\nQ==",
    "YQ",
    "YQ=",
    "YQ==",
    "YQ===",
    "YQ==YQ==",
    "YWI=",
    "YWI",
    "YR==",
    "YWJ=",
    "=",
    "==",
    "====",
    "",
    "\n",
    "a",
    "ab\tcd",
    "ab cd",
    "YW Jj",
    "YWJj",
    "YWJj\x00",
    "_w==",
    "-_-_",
    "+/+/",
    "/w==",
    "w6k=",
    "8J+YgA==",
    "8J+YgA",
    "é",
]


def _base64_cases(rng: random.Random, n: int) -> list[str]:
    texts = ["", "a", "ab", "abc", "secret-token", "é", "😀", "<a&b>", "line\nline", "x" * 57]
    out = []
    for _ in range(n):
        raw = rng.choice(texts) + "".join(rng.choice("abcé😀\n ") for _ in range(rng.randrange(4)))
        encoded = base64.b64encode(raw.encode("utf-8")).decode("ascii")
        if rng.random() < 0.5:
            encoded = base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii")
        chars = list(encoded)
        for _ in range(rng.randrange(3)):
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(["\n", "\r", "\r\n", "=", " ", "A"]))
        if rng.random() < 0.3:
            chars = [c for c in chars if c != "="]
        out.append("".join(chars))
    return out


def test_base64_family() -> None:
    cases = [[s] for s in BASE64 + _base64_cases(random.Random(RNG_SEED), 600)] + [[1], [None], [["YQ=="]]]
    _check(
        _compare("base64.is_valid", 1, cases)
        + _compare("base64.decode", 1, cases)
        + _compare("base64url.decode", 1, cases)
        + _compare("base64.encode", 1, [["a\n<>é😀"], [""]])
        + _compare("base64url.encode", 1, [["a\n<>é😀?>"], [""]])
        + _compare("base64url.encode_no_pad", 1, [["a\n<>é😀?>"], [""]])
    )


def test_hex() -> None:
    rng = random.Random(RNG_SEED)
    texts = [
        "zz",
        "616",
        "61",
        "6A",
        "6a62",
        "ff",
        "c3a9",
        "C3A9",
        "f09f9880",
        "",
        " 61",
        "61 ",
        "6 1",
        "0x61",
    ]
    texts += [
        "".join(rng.choice("0123456789abcdefABCDEFg \n") for _ in range(rng.randrange(8))) for _ in range(300)
    ]
    _check(
        _compare("hex.decode", 1, [[t] for t in texts] + [[1]])
        + _compare("hex.encode", 1, [["aé😀\n"], [""]])
    )


# -- urlquery ----------------------------------------------------------------------------------

URL_TEXT = [
    "a*b",
    "a~b",
    "a b",
    "a+b",
    "a/b?c=d&e",
    "é",
    "😀",
    "!'()*",
    "-_.~",
    "%",
    "%zz",
    "",
    "a;b",
    "<>&#",
]
ASCII = [chr(c) for c in range(0x20, 0x7F)]


def test_urlquery_encode() -> None:
    rng = random.Random(RNG_SEED)
    texts = (
        URL_TEXT
        + ASCII
        + ["".join(rng.choice([*ASCII, "é", "\n", "😀"]) for _ in range(6)) for _ in range(300)]
    )
    objects: list[Any] = [
        {"a": "*~ ", "b": ["1", "2"]},
        {"b": ["x"], "a": "y"},
        {"a": 1},
        {"a": ["x", 1]},
        {"a": []},
        {"é": "é", "Z": "&=", "a": "+", "": ""},
        {"a": None},
        {"a": {"b": "c"}},
        {t: t for t in texts[:3]},
        [],
        "a=b",
    ]
    _check(
        _compare("urlquery.encode", 1, [[t] for t in texts] + [[1]])
        + _compare("urlquery.encode_object", 1, [[o] for o in objects])
        + _compare(
            "urlquery.encode_object",
            1,
            [["x"], ["*"]],
            expr='urlquery.encode_object({"s": {"b", "a", "*"}, "t": input[0], "u": ["z", "y"]})',
        )
    )


def test_urlquery_decode_object() -> None:
    rng = random.Random(RNG_SEED)
    queries = ["a=%zz", "a=1;b=2", "a=1&a=2&b", "a=1&&b=2", "&", "=", "=x", "a==b", "a=b+c%20d", "%e9=1"]
    queries += ["a=%c3%a9", "a=%", "a%zz=1&b=2", "é=😀", "", "a", "a=1&b=%zz&c=3", "a=%ff&b=%zz", "a=%ff"]
    queries += ["".join(rng.choice("ab=&;%+2c3fz9é") for _ in range(rng.randrange(10))) for _ in range(400)]
    _check(_compare("urlquery.decode_object", 1, [[q] for q in queries] + [[1], [None]]))


# -- json.marshal ------------------------------------------------------------------------------

SPECIAL = [
    "<",
    ">",
    "&",
    "\u2028",
    "\u2029",
    "\b",
    "\f",
    "\n",
    "\r",
    "\t",
    "\x00",
    "\x1f",
    "\x7f",
    '"',
    "\\",
    "/",
]
SPECIAL += ["é", "😀", "\ufeff", "\u0085", "a", " "]


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, 1, -1, 42, 2**53 + 1, -(2**63), 2**64 - 1])
    if kind == 3:
        return rng.choice([0.5, -2.5, 12345678.5, 0.1, 1.25])
    if kind in (4, 5):
        return "".join(rng.choice(SPECIAL) for _ in range(rng.randrange(5)))
    if kind in (6, 7):
        return {
            "".join(rng.choice(SPECIAL) for _ in range(rng.randrange(3))): _value(rng, depth + 1)
            for _ in range(3)
        }
    return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_json_marshal() -> None:
    rng = random.Random(RNG_SEED)
    values: list[Any] = [
        {"note": "<" * 40},
        {"a": "<>&\u2028\u2029"},
        1.5,
        1e21,
        1e-7,
        12345678.5,
        {"b": 1, "a": 2},
    ]
    values += [{"é": 1, "z": 2, "Z": 3, "\u00ff": 4, "😀": 5, "\uffff": 6}, [], {}, [[]], "", None]
    values += [_value(rng, 0) for _ in range(400)]
    options: list[Any] = [{}, {"pretty": True}, {"pretty": False}, {"indent": "  "}, {"prefix": "P"}]
    options += [
        {"prefix": "> ", "indent": "\t", "pretty": True},
        {"indent": "x", "pretty": False},
        {"bad": 1},
    ]
    options += [{"pretty": "yes"}, {"indent": 1}, [], None]
    _check(
        _compare("json.marshal", 1, [[v] for v in values])
        + _compare("json.marshal_with_options", 2, [[v, o] for v in values[:60] for o in options])
        + _compare(
            "json.marshal",
            1,
            [["<"], [1]],
            expr='json.marshal({input[0], 1, true, false, 0, null, "&", {"x": input[0]}, [input[0]]})',
        )
        + _compare(
            "json.marshal", 1, [["<"]], expr='json.marshal({[1]: input[0], 1: "a", true: "b", null: 2})'
        )
    )


def test_json_marshal_is_what_opa_counts_and_compares() -> None:
    """The tester's policy: the length of the marshalled annotations decides the verdict."""
    cases = [[{"note": "<" * n}] for n in range(0, 60, 7)] + [[{"note": "\u2028" * 20}], [{"n": "&" * 30}]]
    _check(_compare("json.marshal", 1, cases, expr="count(json.marshal(input[0]))"))


# -- regex.template_match, glob.quote_meta, indexof_n, replace ------------------------------------

TEMPLATES = ["port-{\\d+}", "{a", "a}", "}{", "{}", "{{a}}", "a{b}c{d}", "{[a-z]+}.{\\w+}", "x.y{.*}", "{(}"]
TEMPLATES += ["{a{1,2}}", "[{a}]", "<\\d+>", "{\\pL+}", "{é}", "é{.}", "{\\C}", "{a++}", "", "{}{}", "a.b"]
TEMPLATE_SUBJECTS = ["port-80", "port-٨٠", "port-", "a", "a}", "{a", "aa", "abcd", "ab.c", "x.y", "xzy"]
TEMPLATE_SUBJECTS += ["x.yz", "é", "éé", "", "[a]", "a{b}c{d}", "<12>", "aa.b_c"]


def test_regex_template_match() -> None:
    delimiters = [("{", "}"), ("[", "]"), ("<", ">"), ("{", "{"), ("ab", "}"), ("é", "}"), ("", "}")]
    # OPA caches a compiled template by its text alone, in the cache regex.match fills too (for the
    # process): a template seen with other delimiters would be matched as then. A tag per pair keeps
    # each template's text to one pair and away from regex.match's patterns.
    cases = [
        [t + "~" * (k + 1), s + "~" * (k + 1), a, b]
        for k, (a, b) in enumerate(delimiters)
        for t, s in itertools.product(TEMPLATES, TEMPLATE_SUBJECTS)
    ]
    cases += [[1, "a", "{", "}"], ["{a}", 1, "{", "}"], ["{a}", "a", 1, "}"]]
    _check(_compare("regex.template_match", 4, cases))


def test_glob_quote_meta_and_matching_what_it_quotes() -> None:
    texts = [*ASCII, "registry.example.com/app:v1.?", "a?b[c]{d}\\*", "é*", "", "\\\\", "[!a]", "{a,b}"]
    _check(
        _compare("glob.quote_meta", 1, [[t] for t in texts] + [[1]])
        + _compare(
            "glob.quote_meta",
            2,
            [
                [t, s]
                for t in texts[-7:]
                for s in ["registry.example.com/app:v1.9", "a?b[c]{d}\\*", "ab", "é*"]
            ],
            expr="glob.match(glob.quote_meta(input[0]), [], input[1])",
        )
    )


def test_indexof_n_and_replace() -> None:
    texts = ["abc", "aaaa", "éaéb", "😀aa", "", "a\u0301a"]
    searches: list[Any] = ["", "a", "aa", "é", "😀", "x", 1]
    _check(
        _compare("indexof_n", 2, [[t, s] for t in texts for s in searches] + [[1, "a"]])
        + _compare("replace", 3, [[t, s, n] for t in texts for s in searches for n in ["", "x", "é"]])
        # a literal search: regorus' own is kept only for a text that is a string by its form
        + _compare(
            "indexof_n", 1, [[t] for t in [*texts, 5, None, ["a"], {"a": 1}]], 'indexof_n(input[0], "a")'
        )
    )


def test_yaml_marshal_is_refused_at_load() -> None:
    """go-yaml's emitter is not reproduced (`"yes"` quoted there, not here): refused, never a value."""
    with pytest.raises(PolicyError, match=r"p.rego:4: `yaml.marshal` cannot be evaluated as OPA does"):
        _ours("yaml.marshal(input[0])")
