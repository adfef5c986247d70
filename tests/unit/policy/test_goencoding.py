"""trustgate.policy._goencoding, _gonet and _gotext: encoding, network and string built-ins with
OPA's (Go's) semantics.

The expected values are OPA's answers (checked against the live oracle by
tests/differential/test_encoding_builtins_vs_opa.py), copied here so that the unit tests need no
OPA. `[False, None]` is a built-in error in OPA: undefined under conftest and Gatekeeper.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from trustgate.policy import _goencoding as enc
from trustgate.policy import _gonet as net
from trustgate.policy import _gotext as text
from trustgate.policy._gobuiltins import BUILTINS

UNDEFINED = [False, None]


@pytest.mark.parametrize(
    ("fn", "args", "expected"),
    [
        (net.cidr_contains, ("10.0.0.0/8", "::ffff:10.1.2.3"), [True, True]),
        (net.cidr_contains, ("::ffff:10.0.0.0/104", "10.1.2.3"), [True, True]),
        (net.cidr_contains, ("::ffff:0:0/95", "10.1.2.3"), [True, False]),
        (net.cidr_contains, ("10.0.0.0/8", "10.1.0.0/16"), [True, True]),
        (net.cidr_contains, ("10.0.0.0/8", "::ffff:10.1.0.0/112"), [True, True]),
        (net.cidr_contains, ("10.0.0.0/08", "10.1.2.3"), [True, True]),
        (net.cidr_contains, ("010.0.0.0/8", "10.1.2.3"), UNDEFINED),
        (net.cidr_contains, ("10.0.0.0/8", "x"), UNDEFINED),
        (net.cidr_contains, ("10.0.0.0/8", "fe80::1%eth0"), UNDEFINED),
        (net.cidr_contains, ("0.0.0.0/0", "::1"), [True, False]),
        (net.cidr_intersects, ("10.0.0.0/8", "::ffff:10.0.0.0/104"), [True, True]),
        (net.cidr_is_valid, (1,), [True, False]),
        (net.cidr_is_valid, ("10.0.0.1/8",), [True, True]),
        (enc.base64_is_valid, ("c2VjcmV0LXRva2Vu\n",), [True, True]),
        (enc.base64_is_valid, ("YQ=\n=",), [True, True]),
        (enc.base64_is_valid, ("YQ",), [True, False]),
        (enc.base64_is_valid, (1,), [True, False]),
        (enc.base64_decode, ("YQ==\n",), [True, "a"]),
        (enc.base64_decode, ("YR==",), [True, "a"]),  # Go's StdEncoding is not strict
        (enc.base64_decode, ("YQ",), UNDEFINED),
        (enc.base64_decode, ("YQ==YQ==",), UNDEFINED),
        (enc.base64url_decode, ("YQ",), [True, "a"]),
        (enc.base64url_decode, ("Y",), UNDEFINED),
        (enc.hex_decode, ("zz",), UNDEFINED),
        (enc.hex_decode, ("616",), UNDEFINED),
        (enc.hex_decode, ("6A",), [True, "j"]),
        (enc.urlquery_encode, ("a*b~ c",), [True, "a%2Ab~+c"]),
        (enc.urlquery_encode_object, ({"b": ["x", "y"], "a": "*~"},), [True, "a=%2A~&b=x&b=y"]),
        (enc.urlquery_encode_object, ({"s": {"b", "a"}},), [True, "s=a&s=b"]),
        (enc.urlquery_encode_object, ({"a": 1},), UNDEFINED),
        (enc.urlquery_decode_object, ("a=1&a=2&b",), [True, {"a": ["1", "2"], "b": [""]}]),
        (enc.urlquery_decode_object, ("a=%zz",), UNDEFINED),
        (enc.urlquery_decode_object, ("a=1;b=2",), UNDEFINED),
        (
            enc.json_marshal,
            ('{"a":"<>&\u2028\u2029\\b\\u001f"}',),
            [True, '{"a":"\\u003c\\u003e\\u0026\\u2028\\u2029\\b\\u001f"}'],
        ),
        (enc.json_marshal, ('{"b":1,"a":[2.5,null,true]}',), [True, '{"a":[2.5,null,true],"b":1}']),
        (
            enc.json_marshal_with_options,
            ('{"a":[1]}', {"prefix": "P", "indent": "  "}),
            [True, 'P{\nP  "a": [\nP    1\nP  ]\nP}'],
        ),
        (enc.json_marshal_with_options, ('{"a":1}', {"bad": 1}), UNDEFINED),
        (text.regex_template_match, ("port-{\\d+}", "port-٨٠", "{", "}"), [True, False]),
        (text.regex_template_match, ("port-{\\d+}", "port-80", "{", "}"), [True, True]),
        (text.regex_template_match, ("{a", "a", "{", "}"), UNDEFINED),
        (text.regex_template_match, ("[{a}]", "{a}", "[", "]"), [True, True]),
        (text.glob_quote_meta, ("a?b[c]{d}\\*,!-",), [True, "a\\?b\\[c\\]\\{d\\}\\\\\\*,!-"]),
        (text.indexof_n, ("abc", ""), UNDEFINED),
        (text.indexof_n, ("aaaa", "aa"), [True, [0, 1, 2]]),
        (text.replace, ("abc", "", "x"), [True, "xaxbxcx"]),
    ],
)
def test_builtins_answer_as_opa(fn: Any, args: tuple[Any, ...], expected: list[Any]) -> None:
    name = next(n for n, b in BUILTINS.items() if b.fn.__name__ == fn.__name__)
    assert BUILTINS[name].fn(*args) == expected


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (enc.base64_decode, ("/w==",)),  # bytes that are not UTF-8
        (enc.hex_decode, ("ff",)),
        (enc.json_marshal, ("1e-7",)),  # OPA writes the number's text: 1e-07 from JSON input
        (enc.json_marshal, ('{"1":1,"1":2}',)),  # `{1: 1, "1": 2}`: OPA keeps one, by map order
        (text.replace, ("aé", "", "x")),  # OPA cuts é between its bytes
    ],
)
def test_what_cannot_be_reproduced_raises(fn: Any, args: tuple[Any, ...]) -> None:
    with pytest.raises(Exception, match="reproduce"):
        fn(*args)


def test_a_run_that_routes_none_of_them_does_not_import_them() -> None:
    code = (
        "import sys\nfrom trustgate.policy import rego\n"
        "m = rego.Module('p.rego', 'package p\\nimport rego.v1\\n"
        "deny contains 1 if regex.match(input.p, input.s)\\n"
        'deny contains 2 if base64.decode(input.b) == "a"\\n\')\n'
        "rego.RegoPolicy([m]).evaluator().evaluate({'p': 'a', 's': 'a', 'b': 'YQ=='})\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "trustgate.policy._gobuiltins" in loaded and "trustgate.policy._goencoding" in loaded
    assert not loaded & {"trustgate.policy._gonet", "trustgate.policy._gotext"}
