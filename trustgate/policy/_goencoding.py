"""Encoding built-ins as OPA computes them: Go's `encoding/base64`, `encoding/hex`, `net/url`
and `encoding/json`.

Owns: the encoding built-ins whose regorus version answers otherwise than OPA's (ADR 0008,
item 17). `base64.decode`/`is_valid` and `base64url.decode`: Go's decoder skips `\\n` and `\\r`
anywhere and takes non-zero trailing bits (`"YR=="` is `"a"`), where regorus refused both (a
base64 value written over lines was "not base64": a false allow). `hex.decode`: an odd length
or a non-hex digit is undefined, not an error. `urlquery.encode` and `encode_object`: Go's
`QueryEscape` escapes `*` and keeps `~` (regorus the reverse); `urlquery.decode_object`: Go's
`ParseQuery` refuses `;` and a bad escape (undefined), where regorus gave a value.
`json.marshal` and `json.marshal_with_options`: Go escapes `<`, `>`, `&`, U+2028 and U+2029,
sorts keys, writes a set in OPA's order (objects before sets) and a number by its text.
A built-in error is undefined (conftest and Gatekeeper run OPA without StrictBuiltinErrors).

Fails closed (`EncodingUnsupportedError`, exit 3) where trustgate cannot hold OPA's value:
decoded bytes that are not UTF-8 (Go keeps them in a string that compares byte by byte), and a
fractional number `json.marshal` would write with an exponent (OPA writes the number's text,
which depends on how the input was read: `1e-07` from JSON, `1e-7` as regorus prints it).

Leaves out: the encoders regorus computes as Go does (`base64.encode`, `base64url.encode`,
`base64url.encode_no_pad`, `hex.encode`); `yaml.marshal` (go-yaml's emitter is not reproduced:
refused at load, `_compile_checks`). Imported at the first call of one of these built-ins.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

from trustgate.policy._gobuiltins import UrlUnsupportedError, _BuiltinError, _string, urlquery_decode


class EncodingUnsupportedError(Exception):
    """A value trustgate cannot hold as OPA does (bytes that are not UTF-8, a number's text): exit 3."""


_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_URL = _STD[:62] + "-_"
_DECODE = {alphabet: {ord(c): i for i, c in enumerate(alphabet)} for alphabet in (_STD, _URL)}
_NEWLINES = (0x0A, 0x0D)
_PAD = 0x3D  # =


def _b64decode(src: bytes, alphabet: str) -> bytes:
    """Go's `Encoding.DecodeString` for a padded, non-strict encoding (`decodeQuantum`)."""
    table, out, si, n = _DECODE[alphabet], bytearray(), 0, len(src)
    while True:
        quantum, j, end = [0, 0, 0, 0], 0, False
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                raise _BuiltinError("illegal base64 data")  # a partial quantum needs padding
            c = src[si]
            si += 1
            if c in table:
                quantum[j] = table[c]
                j += 1
                continue
            if c in _NEWLINES:
                continue
            if c != _PAD or j < 2:
                raise _BuiltinError("illegal base64 data")
            if j == 2:  # "==": the second one may come after newlines
                while si < n and src[si] in _NEWLINES:
                    si += 1
                if si == n or src[si] != _PAD:
                    raise _BuiltinError("illegal base64 data")
                si += 1
            while si < n and src[si] in _NEWLINES:
                si += 1
            if si < n:
                raise _BuiltinError("illegal base64 data")
            end = True
            break
        value = quantum[0] << 18 | quantum[1] << 12 | quantum[2] << 6 | quantum[3]
        out += value.to_bytes(3, "big")[: j - 1]
        if end:
            return bytes(out)


def _text(data: bytes, builtin: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EncodingUnsupportedError(
            f"{builtin} decodes to bytes that are not UTF-8, which OPA keeps and compares byte by "
            "byte: trustgate cannot reproduce them"
        ) from e


def base64_decode(value: Any) -> list[Any]:
    """OPA's `base64.decode`: Go's `StdEncoding.DecodeString`."""
    return [True, _text(_b64decode(_string(value).encode("utf-8"), _STD), "base64.decode")]


def base64_is_valid(value: Any) -> list[Any]:
    """OPA's `base64.is_valid`: Go's decoder succeeds (false for a non-string)."""
    if not isinstance(value, str):
        return [True, False]
    try:
        _b64decode(value.encode("utf-8"), _STD)
    except _BuiltinError:
        return [True, False]
    return [True, True]


def base64url_decode(value: Any) -> list[Any]:
    """OPA's `base64url.decode`: padding added by the length (RFC 7515 appendix C), then Go's
    `URLEncoding.DecodeString`."""
    data = _string(value).encode("utf-8")
    if not data.endswith(b"="):
        rest = len(data) % 4
        if rest == 1:
            raise _BuiltinError("illegal base64url string")
        data += b"=" * ((4 - rest) % 4)
    return [True, _text(_b64decode(data, _URL), "base64url.decode")]


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def hex_decode(value: Any) -> list[Any]:
    """OPA's `hex.decode`: Go's `hex.DecodeString` (an even number of hex digits, nothing else)."""
    data = _string(value).encode("utf-8")
    if len(data) % 2 or not _HEX_DIGITS.issuperset(data):
        raise _BuiltinError("invalid hex")
    return [True, _text(bytes.fromhex(data.decode("ascii")), "hex.decode")]


def _query_escape(text: str) -> str:
    # Go's shouldEscape(c, encodeQueryComponent) keeps only ASCII letters, digits and `-_.~`,
    # Python's quote's always-safe set; a space is `+`.
    return quote_plus(text, safe="")


def urlquery_encode(value: Any) -> list[Any]:
    """OPA's `urlquery.encode`: Go's `url.QueryEscape`."""
    return [True, _query_escape(_string(value))]


def urlquery_encode_object(value: Any) -> list[Any]:
    """OPA's `urlquery.encode_object`: Go's `url.Values.Encode` (keys sorted, values of a string,
    an array or a set of strings, in their order)."""
    if not isinstance(value, dict):
        raise _BuiltinError("operand 1 must be object")
    pairs: list[tuple[str, list[str]]] = []
    for key, item in value.items():
        values = [item] if isinstance(item, str) else item
        if not isinstance(values, (list, set, frozenset)) or not all(isinstance(v, str) for v in values):
            raise _BuiltinError("values must be string, array[string], or set[string]")
        if not isinstance(key, str):  # OPA writes it as Rego does; Python may have merged `true` and `1`
            raise EncodingUnsupportedError(
                "urlquery.encode_object of an object with a key that is not a string: trustgate cannot "
                "reproduce OPA"
            )
        pairs.append((key, sorted(values, key=_go_order) if isinstance(values, (set, frozenset)) else values))
    pairs.sort(key=lambda p: _go_order(p[0]))
    return [True, "&".join(f"{_query_escape(k)}={_query_escape(v)}" for k, vs in pairs for v in vs)]


_MAX_QUERY_PARAMS = 10_000  # Go's url.ParseQuery refuses more (urlmaxqueryparams) in newer releases


def urlquery_decode_object(value: Any) -> list[Any]:
    """OPA's `urlquery.decode_object`: Go's `url.ParseQuery` (`&` separates, `;` is an error,
    every escape must be valid)."""
    query = _string(value)
    if query.count("&") >= _MAX_QUERY_PARAMS:
        raise EncodingUnsupportedError(
            "urlquery.decode_object of more than 10000 parameters: Go's limit depends on its "
            "release, trustgate cannot reproduce OPA's answer"
        )
    out: dict[str, list[str]] = {}
    failed = False  # any invalid part makes OPA's answer undefined
    unsupported: UrlUnsupportedError | None = None
    for part in query.split("&"):
        if ";" in part:
            failed = True
            continue
        if not part:
            continue
        raw_key, _, raw_value = part.partition("=")
        try:
            key, item = urlquery_decode(raw_key), urlquery_decode(raw_value)
        except _BuiltinError:
            failed = True
            continue
        except UrlUnsupportedError as e:
            unsupported = unsupported or e
            continue
        out.setdefault(key[1], []).append(item[1])
    if failed:
        raise _BuiltinError("invalid query")
    if unsupported is not None:
        raise unsupported
    return [True, out]


# -- json.marshal ------------------------------------------------------------------------
#
# The value arrives as regorus' own `json.marshal` text (`_gobuiltins.Builtin.marshalled`): regorus
# writes every value (a set of arrays, `{true, 1}`, an object with array keys, as OPA writes the
# key) and sorts keys and sets; what differs from Go is the escaping, which is redone here, and
# the text of a number with an exponent, which fails closed.

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_TRANSLATE = str.maketrans({**{chr(c): f"\\u{c:04x}" for c in range(0x20)}, **_SHORT, **_HTML})


class _Number(str):
    """A number's text as regorus wrote it."""


def _float_text(text: str) -> _Number:
    if "e" in text or "E" in text:
        raise EncodingUnsupportedError(
            f"json.marshal of the number {text}: OPA writes the number's text, which depends on how "
            "the input was read (1e-07 from JSON); trustgate cannot reproduce it"
        )
    return _Number(text)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        _put(out, key, value)
    return out


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if key in out:  # `{1: .., "1": ..}`: OPA keeps one of the two, by its map's order
        raise EncodingUnsupportedError(
            f"two object keys both written {key!r}: trustgate cannot reproduce OPA"
        )
    out[key] = value


def _parse(text: Any) -> Any:
    if not isinstance(text, str):  # pragma: no cover - the helper passes json.marshal's text
        raise TypeError("json.marshal text expected")
    return json.loads(text, object_pairs_hook=_pairs, parse_float=_float_text, parse_int=_Number)


def _string_json(text: str) -> str:
    """Go's `encodeState.string` with HTML escaping (what `json.Marshal` does)."""
    return '"' + text.translate(_TRANSLATE) + '"'


def _go_order(key: str) -> bytes:
    return key.encode("utf-8")  # Go sorts map keys by their bytes


def _marshal(value: Any, indent: str | None, prefix: str, depth: int) -> str:
    """Go's `json.Marshal` (indent None) or `json.MarshalIndent` of a parsed JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, str):
        return _string_json(value)
    items: list[str]
    if isinstance(value, dict):
        sep = ":" if indent is None else ": "
        items = [
            f"{_string_json(k)}{sep}{_marshal(value[k], indent, prefix, depth + 1)}"
            for k in sorted(value, key=_go_order)
        ]
        open_, close = "{", "}"
    else:
        items = [_marshal(v, indent, prefix, depth + 1) for v in value]
        open_, close = "[", "]"
    if not items:
        return open_ + close
    if indent is None:
        return open_ + ",".join(items) + close
    inner = "\n" + prefix + indent * (depth + 1)
    return open_ + inner + ("," + inner).join(items) + "\n" + prefix + indent * depth + close


def json_marshal(text: Any) -> list[Any]:
    """OPA's `json.marshal`: Go's `json.Marshal` (HTML-safe escapes, sorted keys)."""
    return [True, _marshal(_parse(text), None, "", 0)]


def json_marshal_with_options(text: Any, options: Any) -> list[Any]:
    """OPA's `json.marshal_with_options`: `prefix` and `indent` (strings) imply `pretty`
    unless `pretty` (a boolean) says otherwise; any other key is an operand error."""
    if not isinstance(options, dict):
        raise _BuiltinError("operand 2 must be object")
    indent, prefix, implicit, pretty = "\t", "", False, None
    for key, option in options.items():
        if key in ("prefix", "indent"):
            if not isinstance(option, str):
                raise _BuiltinError(f"key {key} failed cast to string")
            prefix, indent = (option, indent) if key == "prefix" else (prefix, option)
            implicit = True
        elif key == "pretty":
            if not isinstance(option, bool):
                raise _BuiltinError("key pretty failed cast to bool")
            pretty = option
        else:
            raise _BuiltinError(f"object contained unknown key {key}")
    value = _parse(text)
    if not (implicit if pretty is None else pretty):
        return [True, _marshal(value, None, "", 0)]
    return [True, prefix + _marshal(value, indent, prefix, 0)]
