"""CEL as the Kubernetes API server runs it: one environment, compiled programs, Kubernetes' libraries.

The engine is PyPI `cel-expr-python`, Google's C++ CEL runtime (ADR 10). This
module owns the environment Kubernetes gives ValidatingAdmissionPolicies and
Gatekeeper's K8sNativeValidation: CEL's standard library and macros, the
strings extension at Kubernetes' version 2 (with `format`; `indexOf` and `lastIndexOf` as
the target version's cel-go answers them, `substring` and `split` as cel-go's, no `reverse`
on strings), optionals (`?.`, `orValue`), `cel.bind`,
and Kubernetes' own libraries, written here in Python: lists (`isSorted`,
`sum`, `min`, `max`, `indexOf`, `lastIndexOf`; and cel-go's ext.Lists
`slice`, `flatten`, `distinct`, `reverse`, `sort`, `lists.range`), regex (`find`, `findAll`),
sets (`sets.contains`, `sets.equivalent`, `sets.intersects`), `url`,
`quantity`, `ip`, `cidr`, `semver` and the named formats
(`format.dns1123Label().validate(s)`, `format.named(n)`), whose optional
results support `hasValue()` and `value()` but not `orValue`.

Left out: the estimated-cost limit (the runtime does not expose its cost
estimator; ADR 10 says what is bounded instead), typing against the objects'
OpenAPI schemas (every input is `dyn`, so a type error in a field shows at
evaluation, not at compile time) and `authorizer`, which has no offline
meaning: `Program.reads` finds it so that the caller reports the policy as
not evaluable. Kubernetes' opaque types (URL, Quantity, IP, CIDR, Semver) are
maps with the key `@k8s` here (so are the format library's optionals):
`type(quantity("1"))` is `map`, not `kubernetes.Quantity`. `find` and `findAll` run on RE2
(`google-re2`), as `matches` does in the runtime. The bindings cut a string handed to the
runtime at a NUL character, so an input (or a library result) holding one is not evaluated
(`CelUnevaluableError`); a comparison with a NaN is cel-go's error, not the runtime's false.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import orjson
import re2
from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_optional, ext_strings

from trustgate.config import DEFAULT_KUBERNETES_VERSION
from trustgate.manifests.loader import lone_surrogate, path_text
from trustgate.policy import _gourl, crd_formats, deprecations
from trustgate.policy._gostrconv import go_quote, parse_float

__all__ = [
    "MAX_EXPRESSION_LENGTH",
    "Bindings",
    "CelCompileError",
    "CelEvalError",
    "CelUnevaluableError",
    "Program",
    "compile_expression",
    "substitute_variable",
]

MAX_EXPRESSION_LENGTH = 5_000  # characters; the API server rejects longer expressions (5 KiB)
PER_CALL_COST_LIMIT = 1_000_000  # cost units; the API server stops one evaluation beyond it (PerCallLimit)

_T = cel.Type
_DYN = _T.DYN
_MAP = _T.Map(_T.DYN, _T.DYN)
_LIST = _T.List(_T.DYN)
# The runtime picks an overload by the argument's concrete type (a `dyn` parameter matches
# nothing at run time), so a function over any value has one overload per kind of value.
_ANY = {
    "bool": _T.BOOL,
    "int": _T.INT,
    "uint": _T.UINT,
    "double": _T.DOUBLE,
    "string": _T.STRING,
    "bytes": _T.BYTES,
    "list": _LIST,
    "map": _MAP,
}
_MARK = "@k8s"


class CelCompileError(Exception):
    """An expression does not parse or type-check; `line` and `column` are 1-based."""

    def __init__(self, message: str, *, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def where(self) -> str:
        """`line L, column C` (or nothing when the engine gave no position)."""
        return f"line {self.line}, column {self.column}" if self.line else ""


class CelEvalError(Exception):
    """An expression failed on this input (no such key, no matching overload, a library error)."""


class CelUnevaluableError(CelEvalError):
    """trustgate cannot give this expression's value as the API server would on this input (it
    has one there): not an evaluation error for a failurePolicy to ignore, but no verdict."""


_UNEVALUABLE = "cannot be evaluated as the API server does it"
_UNKNOWN = "unknown"  # which of two answers the API server's cel-go gives is not known


def _minor(kubernetes_version: str | None) -> int:
    """The minor version of `kubernetes_version` (the configuration's default when None)."""
    return deprecations.parse_version(kubernetes_version or DEFAULT_KUBERNETES_VERSION)[1]


_LATEST = _minor(None)  # what a library function called outside the rewriting answers as


class _LibraryError(ValueError):
    """A Kubernetes library function rejects its argument (the runtime reports it as an error value)."""


class _Unevaluable(_LibraryError):
    """trustgate cannot give the value the API server has here; its message holds `_UNEVALUABLE`,
    which `Program.evaluate` turns into `CelUnevaluableError`."""


# -- opaque values -------------------------------------------------------------


def _opaque(kind: str, value: str) -> dict[str, Any]:
    return {_MARK: kind, "value": value}


def _kind_of(value: Any) -> str:
    return str(value.get(_MARK, "")) if isinstance(value, Mapping) else ""


def _need(value: Any, *kinds: str) -> str:
    kind = _kind_of(value)
    if kind not in kinds:
        raise _LibraryError(f"expected {' or '.join(kinds)}, got {type(value).__name__}")
    return str(value["value"])


# -- quantity (k8s.io/apimachinery resource.Quantity) --------------------------

# resource.ParseQuantity: ASCII digits only, the whole text (no trailing newline).
_QUANTITY = re.compile(
    r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1)}
_DECIMAL |= {"k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9)}
_DECIMAL |= {"T": Fraction(10**12), "P": Fraction(10**15), "E": Fraction(10**18)}


_NANO = Fraction(1, 10**9)
_MAX_EXPONENT = 1000  # a quantity's decimal exponent; beyond it the exact value would take minutes
_MAX_BINARY = Fraction(2**63 - 1)  # resource.ParseQuantity caps a binary-suffixed value here


def _parse_quantity(text: str) -> Fraction:
    """The value resource.ParseQuantity gives `text`: exact, except that a value finer than
    1n is rounded away from zero to a whole number of nano-units, and a value with a binary
    suffix (Ki ... Ei) is capped at the int64 range."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise _LibraryError(f"invalid quantity {text!r}: not a number with an optional suffix or exponent")
    number, exponent, suffix = match.groups()
    value = Fraction(number)
    if exponent:
        # suffixHandler.interpret: ParseInt(64 bits), then the exponent is cut to an int32
        power = int(exponent[1:])
        if not -(2**63) <= power < 2**63:
            raise _LibraryError(f"invalid quantity {text!r}: unable to parse quantity's suffix")
        power = (power + 2**31) % 2**32 - 2**31
        if abs(power) > _MAX_EXPONENT:
            raise _Unevaluable(f"quantity {text!r} {_UNEVALUABLE}: trustgate takes exponents up to ±1000")
        value *= Fraction(10) ** power
    else:
        suffix = suffix or ""
        value *= _BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix]
    magnitude = abs(value)
    if (magnitude / _NANO).denominator != 1:
        magnitude = (magnitude / _NANO).__ceil__() * _NANO
    if suffix in _BINARY and magnitude > _MAX_BINARY:
        magnitude = _MAX_BINARY
    return magnitude if value >= 0 else -magnitude


# A Quantity is an int64Amount {value, scale} where resource.ParseQuantity's fast path and
# int64Amount.Add keep it exact in an int64, else an inf.Dec; isInteger and asInteger
# (Quantity.AsInt64) depend on which, not only on the value: 1000m is no integer (scale -3),
# nor is 1.5Gi (an inf.Dec), 1k is. Equality compares values, and the runtime compares maps,
# so the representation rides in the map as a list of zeros whose types (int 0 or double 0.0,
# equal under CEL's equality) are its bits: bit 0 says inf.Dec, the others the scale + 9.
_REPR_BITS = 12
_INT64 = range(-(2**63), 2**63)


def _repr_list(scale: int | None) -> list[int | float]:
    bits = 1 if scale is None else (scale + 9) << 1
    return [0.0 if bits >> i & 1 else 0 for i in range(_REPR_BITS)]


def _repr_scale(zeros: Any) -> int | None:
    if not isinstance(zeros, list) or len(zeros) != _REPR_BITS:
        raise _LibraryError(f"not a quantity: {zeros!r}")
    bits = sum(1 << i for i, zero in enumerate(zeros) if isinstance(zero, float))
    return None if bits & 1 else (bits >> 1) - 9


def _quantity_scale(text: str) -> int | None:
    """The int64Amount scale resource.ParseQuantity gives `text`, or None for an inf.Dec (its
    fast path: at most 18 digits at a scale of 1n or coarser; a binary suffix only on a whole
    number whose value fits an int64 and, digits and suffix together, about 15 digits)."""
    if text == "0":
        return 0
    match = _QUANTITY.fullmatch(text)
    assert match is not None  # parsed already
    number, exponent, suffix = match.groups()
    whole, _, denom = number.lstrip("+-").partition(".")
    num = whole.lstrip("0") or "0"
    if not whole.strip("0") and not denom and not exponent and not suffix:
        return 0  # all zeros: parseQuantityString stops there
    if suffix in _BINARY:
        power = _BINARY[suffix].bit_length() - 1
        if denom or 15 - len(num) - int(power * 3 / 10) - 1 < 0:
            return None
        return 0 if int(num) << power in _INT64 else None
    if exponent:
        power = (int(exponent[1:]) + 2**31) % 2**32 - 2**31
    else:
        power = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}[
            suffix or ""
        ]
    if 18 - (len(num) + len(denom)) < 0 or power - len(denom) < -9:
        return None
    return power - len(denom)


def _to_quantity(text: str) -> dict[str, Any]:
    return _quantity_of(_parse_quantity(text), _quantity_scale(text))  # zero is a quantity too


def _quantity_of(value: Fraction, scale: int | None) -> dict[str, Any]:
    """A quantity holds its value, not its text: CEL's `==` (and `in`, list and map equality)
    compares the maps, and Kubernetes' Quantity.Equal compares values (1Ki == 1024)."""
    if scale is not None and not -9 <= scale < 2 ** (_REPR_BITS - 1) - 9:
        raise _Unevaluable(f"a quantity at scale {scale} {_UNEVALUABLE}")
    return {_MARK: "quantity", "value": str(value), "repr": _repr_list(scale)}


def _quantity(value: Any) -> Fraction:
    text = _need(value, "quantity")
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError) as e:  # a map literal that only looks like a quantity
        raise _LibraryError(f"not a quantity: {value!r}") from e


def _quantity_amount(value: Any) -> tuple[Fraction, int | None]:
    """The quantity's value and its int64Amount scale (None: an inf.Dec)."""
    return _quantity(value), _repr_scale(value.get("repr") if isinstance(value, Mapping) else None)


def _amount_add(a: tuple[Fraction, int | None], b: tuple[Fraction, int | None]) -> dict[str, Any]:
    """Quantity.Add: int64Amount.Add where both are int64Amounts and nothing overflows (the
    scale of a zero operand is the other's; else the finer scale), else an inf.Dec."""
    (x, xs), (y, ys) = a, b
    total = x + y
    if xs is None or ys is None:
        return _quantity_of(total, None)
    if y == 0:
        return _quantity_of(total, xs)
    if x == 0:
        return _quantity_of(total, ys)
    low = min(xs, ys)
    aligned = [int(v / Fraction(10) ** low) for v in (x, y)]
    # each operand scaled to the finer scale, then their sum, must fit an int64
    if all(v in _INT64 for v in aligned) and sum(aligned) in _INT64:
        return _quantity_of(total, low)
    return _quantity_of(total, None)


def _amount_sub(a: tuple[Fraction, int | None], b: tuple[Fraction, int | None]) -> dict[str, Any]:
    """Quantity.Sub: int64Amount.Sub adds the negation, except of the most negative int64."""
    if b[1] is not None and b[0] / Fraction(10) ** b[1] == -(2**63):
        return _quantity_of(a[0] - b[0], None)
    return _amount_add(a, (-b[0], b[1]))


def _as_int64(value: Any) -> int | None:
    """Quantity.AsInt64: an int64Amount at scale 0, or at a positive scale that fits an int64."""
    amount, scale = _quantity_amount(value)
    if scale is None or scale < 0 or amount.denominator != 1 or amount.numerator not in _INT64:
        return None
    return amount.numerator


def _opaque_string(value: Any) -> str:
    """`string()` of an IP or CIDR. The API server has no `string()` of a Quantity, Semver or
    URL (their ConvertToType refuses the string type): an error, never a text to compare."""
    if _kind_of(value) in ("quantity", "semver", "url"):
        raise _LibraryError(f"type conversion error from '{_kind_of(value)}' to 'string'")
    return _need(value, "ip", "cidr")


def _as_integer(value: Any) -> int:
    integer = _as_int64(value)
    if integer is None:
        raise _LibraryError("cannot convert value to integer")
    return integer


# -- semver (blang/semver v4, as Kubernetes' library uses it) ------------------

_UINT64 = range(2**64)
_SEMVER_ALNUM = frozenset("-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _semver_number(text: str, what: str) -> int:
    """A major, minor or patch number as blang's Parse reads it: ASCII digits without a leading
    zero, then strconv.ParseUint(text, 10, 64) (so "" and 2**64 are errors)."""
    if not all("0" <= c <= "9" for c in text):
        raise _LibraryError(f"Invalid character(s) found in {what} number {go_quote(text)}")
    if len(text) > 1 and text[0] == "0":
        raise _LibraryError(f"{what.capitalize()} number must not contain leading zeroes {go_quote(text)}")
    return _parse_uint64(text)


def _parse_uint64(text: str) -> int:
    """strconv.ParseUint(text, 10, 64) of ASCII digits."""
    if not text:
        raise _LibraryError('strconv.ParseUint: parsing "": invalid syntax')
    value = _decimal(text)
    if value is None or value not in _UINT64:
        raise _LibraryError(f"strconv.ParseUint: parsing {go_quote(text)}: value out of range")
    return value


def _decimal(text: str) -> int | None:
    """The value of a sign and ASCII digits, or None beyond 30 digits (past any 64-bit range;
    Python refuses to convert very long digit strings)."""
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > 30:
        return None
    return -int(digits or "0") if text.startswith("-") else int(digits or "0")


def _semver_parts(text: str) -> tuple[int, int, int, tuple[tuple[int, int | str], ...]]:
    """blang/semver v4's Parse: major.minor.patch, a pre-release and build metadata split at the
    first `+` and then the first `-` of the patch part, each number a uint64."""
    if not text:
        raise _LibraryError("Version string empty")
    parts = text.split(".", 2)
    if len(parts) != 3:
        raise _LibraryError("No Major.Minor.Patch elements found")
    major = _semver_number(parts[0], "major")
    minor = _semver_number(parts[1], "minor")
    patch, plus, build = parts[2].partition("+")
    patch, minus, pre_text = patch.partition("-")
    number = _semver_number(patch, "patch")
    pre: list[tuple[int, int | str]] = []
    for item in pre_text.split(".") if minus else []:
        if not item:
            raise _LibraryError("Prerelease is empty")
        if all("0" <= c <= "9" for c in item):
            if len(item) > 1 and item[0] == "0":
                raise _LibraryError(
                    f"Numeric PreRelease version must not contain leading zeroes {go_quote(item)}"
                )
            pre.append((0, _parse_uint64(item)))
        elif all(c in _SEMVER_ALNUM for c in item):
            pre.append((1, item))
        else:
            raise _LibraryError(f"Invalid character(s) found in prerelease {go_quote(item)}")
    for item in build.split(".") if plus else []:
        if not item:
            raise _LibraryError("Build meta data is empty")
        if not all(c in _SEMVER_ALNUM for c in item):
            raise _LibraryError(f"Invalid character(s) found in build meta data {go_quote(item)}")
    return major, minor, number, tuple(pre)


def _wrap_int64(value: int) -> int:
    return (value + 2**63) % 2**64 - 2**63


def _normalize_semver(text: str) -> str:
    """Kubernetes' normalizeAndParse before semver.Parse: drop one leading `v`, split in at most
    three at `.`, strip leading zeros from each part longer than one character (keeping one
    where nothing or no digit would lead), and fill a short version with `.0` parts, which
    is refused when its last part holds `+` or `-`."""
    parts = text.removeprefix("v").split(".", 2)
    for i, part in enumerate(parts):
        if len(part) > 1:
            part = part.lstrip("0")
            if not part or not "0" <= part[0] <= "9":
                part = "0" + part
            parts[i] = part
    if len(parts) < 3:
        if "+" in parts[-1] or "-" in parts[-1]:
            raise _LibraryError("short version cannot contain PreRelease/Build meta data")
        parts += ["0"] * (3 - len(parts))
    return ".".join(parts)


def _to_semver(text: str, normalize: bool) -> dict[str, Any]:
    """A semver holds its version without build metadata: CEL's `==` compares the maps, and
    blang/semver's EQ (Kubernetes' Semver.Equal) ignores the build (1.2.3+b == 1.2.3)."""
    text = _normalize_semver(text) if normalize else text
    _semver_parts(text)
    return _opaque("semver", text.partition("+")[0])


def _semver_compare(a: Any, b: Any) -> int:
    x, y = _semver_parts(_need(a, "semver")), _semver_parts(_need(b, "semver"))
    if x[:3] != y[:3]:
        return -1 if x[:3] < y[:3] else 1
    if x[3] == y[3]:
        return 0
    if not x[3] or not y[3]:  # a release is greater than its pre-releases
        return 1 if not x[3] else -1
    return -1 if x[3] < y[3] else 1


def _compare(a: Any, b: Any) -> int:
    kind = _kind_of(a)
    if kind == "semver":
        return _semver_compare(a, b)
    if kind == "quantity":
        x, y = _quantity(a), _quantity(b)
        return (x > y) - (x < y)
    raise _LibraryError(f"compareTo needs quantities or semvers, got {kind or type(a).__name__}")


# -- ip and cidr ---------------------------------------------------------------


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if "%" in text:
        raise _LibraryError(f"IP address with zone value is not allowed: {text!r}")
    try:
        address = ipaddress.ip_address(text)
    except ValueError as e:
        raise _LibraryError(f"IP Address {text!r} parse error during conversion from string: {e}") from e
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise _LibraryError(f"IPv4-mapped IPv6 address is not allowed: {text!r}")
    return address


def _parse_cidr(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    if "/" not in text:
        raise _LibraryError(f"network address parse error during conversion from string: {text!r}")
    _parse_ip(text.split("/", 1)[0])
    # netip.ParsePrefix: the prefix length is decimal without a leading zero, never a netmask.
    if not re.fullmatch(r"0|[1-9][0-9]{0,2}", text.split("/", 1)[1]):
        raise _LibraryError(f"network address parse error during conversion from string: {text!r}: bad bits")
    try:
        return ipaddress.ip_interface(text)
    except ValueError as e:
        raise _LibraryError(f"network address parse error during conversion from string: {e}") from e


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return _parse_ip(_need(value, "ip"))


def _cidr(value: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return _parse_cidr(_need(value, "cidr"))


def _valid(parse: Callable[[str], Any], text: str) -> bool:
    try:
        parse(text)
    except _Unevaluable:
        raise  # neither true nor false is known
    except _LibraryError:
        return False
    return True


def _contains_ip(c: Any, ip: Any) -> bool:
    address = _parse_ip(ip) if isinstance(ip, str) else _ip(ip)
    return address in _cidr(c).network


def _contains_cidr(c: Any, other: Any) -> bool:
    inner = (_parse_cidr(other) if isinstance(other, str) else _cidr(other)).network
    outer = _cidr(c).network
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]  # same version


# -- url -----------------------------------------------------------------------


# Go's net/url (`_gourl`): url.ParseRequestURI decides what is a URL (`isURL`, `url()`,
# `format.uri()`), and the value is url.Parse's (the fragment split off), as Kubernetes' library does.


def _parse_request_uri(text: str) -> _gourl.GoURL:
    try:
        return _gourl.parse_request_uri(text)
    except _gourl.AmbiguousHostError as e:
        raise _Unevaluable(f"{_UNEVALUABLE}: parse {go_quote(text)}: {e}") from e
    except _gourl.URLError as e:
        raise _LibraryError(str(e)) from e


def _go_url(text: str) -> _gourl.GoURL:
    """Kubernetes' url(): what url.ParseRequestURI accepts, valued as url.Parse gives it."""
    try:
        return _gourl.parse_url(text)
    except _gourl.AmbiguousHostError as e:
        raise _Unevaluable(f"{_UNEVALUABLE}: parse {go_quote(text)}: {e}") from e
    except _gourl.URLError as e:
        raise _LibraryError(f"URL parse error during conversion from string: parse {text!r}: {e}") from e


def _to_url(text: str) -> dict[str, Any]:
    """A URL holds Go's URL.String() of its value (CEL's `==` compares the maps, and Kubernetes'
    URL.Equal compares String()s: HTTP://a.com == http://a.com) and what its getters give; Go's
    String() cannot always be parsed back to the same URL (`//`, a path of `//` and escapes)."""
    url = _go_url(text)
    hostname, port = url.split_host_port()
    fields = {"scheme": url.scheme, "host": url.host, "hostname": hostname, "port": port}
    fields |= {"escapedPath": url.escaped_path(), "rawQuery": url.raw_query}
    return {_MARK: "url", "value": _text(url.string())} | {k: _text(v) for k, v in fields.items()}


def _url_field(value: Any, field: str) -> str:
    _need(value, "url")
    found = value.get(field)
    if not isinstance(found, str):
        raise _LibraryError(f"not a URL: {value!r}")
    return found


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")  # Go's strings may hold invalid UTF-8; CEL's may not


def _query(value: Any) -> dict[str, list[str]]:
    """Go's URL.Query(): ParseQuery, which drops a pair holding a `;` or a bad escape."""
    found: dict[str, list[str]] = {}
    for pair in _url_field(value, "rawQuery").encode("utf-8").split(b"&"):
        if b";" in pair or not pair:
            continue
        key, _, item = pair.partition(b"=")
        try:
            key, item = _gourl.unescape(key, _gourl.QUERY), _gourl.unescape(item, _gourl.QUERY)
        except _gourl.URLError:
            continue
        found.setdefault(_text(key), []).append(_text(item))
    return found


# -- lists ---------------------------------------------------------------------


# Kubernetes' lists library (lists.go): isSorted, min and max take the comparable types (bool,
# int, uint, double, duration, timestamp, string, bytes), sum the summable ones (int, uint, double,
# duration). On a list the checker cannot type, cel-go picks the overload by the first item's type
# and compares the others with the traits.Comparer of the kept item: a comparison across types
# (but for numbers) is an error value, which min, max and isSorted pass over; an item with no
# comparison at all (a list, map, null or Kubernetes value) is "no such overload". The bindings
# see a duration or timestamp to the microsecond only, and a uint as an int: `_go_time_rewrite`
# hands these functions, beside the list, each item's exact text or its uint-ness
# (`_go_list_tail`), and min and max give back an index, so the runtime returns the item itself.

_NO_OVERLOAD = "no such overload"
_MAX_DURATION_NANOS = 2**63 - 1


@dataclass(frozen=True, slots=True)
class _Exact:
    """A duration or timestamp to the nanosecond (a timestamp's nanoseconds since the epoch)."""

    kind: str
    nanos: int


_COMPARABLE = (bool, int, float, str, bytes, bytearray, _Exact)


def _go_compare(a: Any, b: Any) -> int | None:
    """traits.Comparer's a.Compare(b): -1, 0 or 1, or None for cel-go's error value (other
    types; a NaN)."""
    if isinstance(a, bool) or isinstance(b, bool):
        if not (isinstance(a, bool) and isinstance(b, bool)):
            return None
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a != a or b != b:  # NaN values cannot be ordered
            return None
    elif isinstance(a, (bytes, bytearray)) and isinstance(b, (bytes, bytearray)):
        a, b = bytes(a), bytes(b)
    elif isinstance(a, _Exact) and isinstance(b, _Exact):
        if a.kind != b.kind:
            return None
        a, b = a.nanos, b.nanos
    elif type(a) is not type(b):
        return None
    return int((a > b) - (a < b))


def _timestamp_nanos(text: str) -> int:
    """The nanoseconds since the epoch of a timestamp as the runtime's string() writes it."""
    match = _RUNTIME_TIMESTAMP_TEXT.fullmatch(text)
    if match is None:
        raise _LibraryError(f"internal: unexpected timestamp text {text!r}")
    seconds = dt.datetime.fromisoformat(match[1] + "+00:00") - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    whole = seconds.days * 86_400 + seconds.seconds
    return whole * 10**9 + int((match[2] or "").ljust(9, "0"))


def _exact_items(values: list[Any], tags: list[Any]) -> list[Any]:
    """The items of a list given to a lists function, a duration or timestamp exact (from its
    tag), refused as cel-go's dispatch refuses them."""
    items = [
        _Exact("duration", _runtime_duration_nanos(tag))
        if isinstance(v, dt.timedelta)
        else _Exact("timestamp", _timestamp_nanos(tag))
        if isinstance(v, dt.datetime)
        else v
        for v, tag in zip(values, tags, strict=True)
    ]
    if any(not isinstance(v, _COMPARABLE) for v in items):
        raise _LibraryError(_NO_OVERLOAD)
    return items


def _go_is_sorted(values: list[Any], tags: list[Any]) -> bool:
    items = _exact_items(values, tags)
    return all(_go_compare(items[i], items[i + 1]) != 1 for i in range(len(items) - 1))


def _go_extreme(values: list[Any], tags: list[Any], name: str) -> int:
    """min or max: the index of the first item, replaced by each later one that compares below
    (above) it."""
    items = _exact_items(values, tags)
    if not items:
        raise _LibraryError(f"{name} called on empty list")
    prefer = 1 if name == "min" else -1
    found = 0
    for k in range(1, len(items)):
        if _go_compare(items[found], items[k]) == prefer:
            found = k
    return found


def _go_sum(values: list[Any], tags: list[Any]) -> Any:
    """sum: from the first item's type's zero (int 0 for an empty list), each item added as
    that type's Add does: another type is "no such overload", int64 (and duration) overflow
    "integer overflow", uint64 overflow "unsigned integer overflow"."""
    items = _exact_items(values, tags)
    if not items:
        return 0
    kinds = [
        "uint" if tag == "uint" else v.kind if isinstance(v, _Exact) else type(v).__name__
        for v, tag in zip(items, tags, strict=True)
    ]
    if kinds[0] not in ("int", "uint", "float", "duration") or any(k != kinds[0] for k in kinds):
        raise _LibraryError(_NO_OVERLOAD)
    if kinds[0] == "float":
        return float(sum(items[1:], items[0]))
    total = 0
    for v in items:
        total += v.nanos if isinstance(v, _Exact) else v
        if kinds[0] == "uint" and total > 2**64 - 1:
            raise _LibraryError("unsigned integer overflow")
        if kinds[0] != "uint" and total not in _INT64:
            raise _LibraryError("integer overflow")
    if kinds[0] == "duration":
        return _duration_value(total)
    if kinds[0] == "uint":
        from google.protobuf import wrappers_pb2  # the bindings hand the runtime a uint so

        return wrappers_pb2.UInt64Value(value=total)
    return total


def _duration_value(nanos: int) -> Any:
    """A duration the runtime takes from Python (a protobuf Duration; it refuses timedelta)."""
    from google.protobuf import duration_pb2

    seconds = abs(nanos) // 10**9 * (-1 if nanos < 0 else 1)
    return duration_pb2.Duration(seconds=seconds, nanos=nanos - seconds * 10**9)


def _library_value(value: Any) -> Any:
    """A value handed back to the runtime: a duration or timestamp as protobuf, bytes as bytes."""
    if isinstance(value, dt.timedelta):
        return _duration_value(value // dt.timedelta(microseconds=1) * 1000)
    if isinstance(value, dt.datetime):
        from google.protobuf import timestamp_pb2

        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(value)
        return stamp
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _index_of(values: list[Any], item: Any) -> int:
    """With CEL's equality: `true` is not `1` (Python's `in` says it is)."""
    return next((i for i, v in enumerate(values) if _cel_equal(v, item)), -1)


def _last_index_of(values: list[Any], item: Any) -> int:
    return next((i for i in range(len(values) - 1, -1, -1) if _cel_equal(values[i], item)), -1)


def _cel_in(item: Any, values: list[Any]) -> bool:
    return any(_cel_equal(item, v) for v in values)


def _is_link_local_multicast(value: Any) -> bool:
    """As Go's netip.Addr.IsLinkLocalMulticast: 224.0.0.0/24, and IPv6 ffX2::/16 whatever the
    flags nibble X (`v6u16(0) & 0xff0f == 0xff02`: ff12::1 too); Python has no such test."""
    address = _ip(value)
    if address.version == 4:
        return address in ipaddress.ip_network("224.0.0.0/24")
    return int(address) >> 112 & 0xFF0F == 0xFF02


def _cel_equal(a: Any, b: Any) -> bool:
    """CEL's heterogeneous equality: numbers by value across int and double; a bool is not a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_cel_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_cel_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _slice(values: list[Any], start: int, end: int) -> list[Any]:
    if start < 0 or end < 0:
        raise _LibraryError(f"cannot slice({start}, {end}), negative indexes not supported")
    if start > end:
        raise _LibraryError(
            f"cannot slice({start}, {end}), start index must be less than or equal to end index"
        )
    if end > len(values):
        raise _LibraryError(f"cannot slice({start}, {end}), list is length {len(values)}")
    return values[start:end]


def _flatten(values: list[Any], depth: int = 1) -> list[Any]:
    if depth < 0:
        raise _LibraryError("level must be non-negative")
    out: list[Any] = []
    for value in values:
        if isinstance(value, list) and depth > 0:
            out.extend(_flatten(value, depth - 1))
        else:
            out.append(value)
    return out


def _distinct(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if not any(_cel_equal(value, seen) for seen in out):
            out.append(value)
    return out


def _sort(values: list[Any]) -> list[Any]:
    kinds = {
        ("number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v)) for v in values
    }
    if len(kinds) > 1:
        raise _LibraryError("list elements must have the same type")
    if values and not isinstance(values[0], (bool, int, float, str, bytes)):
        raise _LibraryError(f"list elements must be comparable, not {type(values[0]).__name__}")
    return sorted(values)


def _range(n: int) -> list[int]:
    if n > PER_CALL_COST_LIMIT:  # the API server stops such an evaluation for its cost (and memory)
        raise _LibraryError(f"lists.range({n}) is over the API server's per-expression cost limit")
    return list(range(max(n, 0)))


def _find_all(text: str, pattern: str, limit: int = -1, minor: int = _LATEST) -> list[str]:
    """Go's `Regexp.FindAllString(text, limit)`: leftmost-first matches, an empty match never
    right after the previous match, at most `limit` (all when negative).

    One pass over the text encoded once, in byte offsets: the binding re-encodes a str on every
    call, so a `search(text, pos)` per match was quadratic. Go matches at rune boundaries only;
    RE2's byte-wise search can also find an empty-width match inside a character (`\\B`
    between two bytes of `é`), which is left out.
    """
    found: list[str] = []
    if limit == 0:
        return found
    data = text.encode("utf-8")
    previous_end = -1
    for match in _regex(pattern, minor).finditer(data):
        start, end = match.span()
        if _inside_character(data, start) or _inside_character(data, end):
            continue
        if start == end == previous_end:
            continue  # Go: no empty match right after the previous match
        previous_end = end
        found.append(data[start:end].decode("utf-8"))
        if len(found) == limit:
            break
    return found


def _inside_character(data: bytes, offset: int) -> bool:
    """Whether a byte offset falls between the bytes of one UTF-8 character."""
    return offset < len(data) and 0x80 <= data[offset] < 0xC0


def _find(text: str, pattern: str, minor: int = _LATEST) -> str:
    match = _regex(pattern, minor).search(text)
    return match.group(0) if match else ""


def _matches(text: str, pattern: str, minor: int = _LATEST) -> bool:
    """cel-go's `matches`: Go's regexp.MatchString (an unanchored search), which refuses some
    patterns the runtime's C++ RE2 takes (`_go_regex_refusal`)."""
    return _regex(pattern, minor).search(text) is not None


@functools.lru_cache(maxsize=256)
def _regex(pattern: str, minor: int = _LATEST) -> Any:
    """The pattern compiled by RE2 (Kubernetes compiles it with Go's regexp, RE2 syntax): `$`
    only at the end, ASCII `\\d \\w \\s \\b`, `a{,2}` a literal, no lookaround or backreference.
    `minor` is the target Kubernetes minor version (Go's regexp changed with its Go release)."""
    options = re2.Options()
    options.log_errors = False  # the error is the evaluation's, not a line on stderr
    refusal = _go_regex_refusal(pattern, minor)
    if refusal is not None:
        raise _LibraryError(f"invalid regular expression {pattern!r}: {refusal}")
    try:
        return re2.compile(pattern, options)
    except re2.error as e:
        detail = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else e
        raise _LibraryError(f"invalid regular expression {pattern!r}: {detail}") from e


# Go's regexp/syntax (parse.go) refuses what C++ RE2 takes: `\C` (any byte: ErrInvalidEscape,
# in a class too), a group name outside [A-Za-z0-9_]+ (isValidCaptureName; RE2 takes Unicode
# word characters: ErrInvalidNamedCapture) and, before Go 1.22, `(?<name>` (ErrInvalidPerlOp;
# Go 1.22 added it, and `(?P<name>` is in every release). Kubernetes 1.29 and older were
# released on Go 1.21 or older; their branches moved to Go 1.22 in later patch releases
# (1.28 and 1.29 before their end of life, not 1.27, which ended on Go 1.21), so for 1.28 and
# 1.29 the answer depends on the patch release: `_NAMED_GROUPS`.
_ANY_BYTE = "invalid escape sequence: `\\C`"
_NAMED_GROUPS: tuple[tuple[int, str], ...] = ((0, "error"), (28, _UNKNOWN), (30, "ok"))
_CAPTURE_NAME = re.compile(r"[A-Za-z0-9_]+")


def _go_regex_refusal(pattern: str, minor: int) -> str | None:
    """Go's error (code and expression, as regexp/syntax.Error) for a pattern C++ RE2 takes and
    Go's regexp refuses, or None (RE2 checks the rest). Raises `_Unevaluable` where the answer
    depends on the target's patch release (`_NAMED_GROUPS`)."""
    named = [answer for first, answer in _NAMED_GROUPS if minor >= first][-1]
    i, in_class = 0, False
    while i < len(pattern):
        if pattern.startswith("\\Q", i) and not in_class:
            end = pattern.find("\\E", i + 2)
            if end < 0:
                return None  # a literal to the end
            i = end + 2
        elif pattern[i] == "\\":
            if pattern[i + 1 : i + 2] == "C":
                return _ANY_BYTE
            i += 2
        elif in_class:
            if pattern.startswith("[:", i) and ":]" in pattern[i + 2 :]:
                i = pattern.index(":]", i + 2) + 2  # [:alpha:]
            elif pattern[i] == "]":
                in_class, i = False, i + 1
            else:
                i += 1
        elif pattern[i] == "[":
            i += 1
            i += pattern.startswith("^", i)
            i += pattern.startswith("]", i)  # a `]` first in a class is itself
            in_class = True
        elif pattern.startswith("(?P<", i) or (
            pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!")
        ):
            start = pattern.index("<", i) + 1
            end = pattern.find(">", start)
            if pattern[i + 2] == "<" and named != "ok":
                if named == _UNKNOWN:
                    raise _Unevaluable(
                        f"the regular expression {pattern!r} {_UNEVALUABLE}: Go's regexp takes a "
                        "`(?<name>` group from Go 1.22, and which Go the target Kubernetes patch "
                        "release was built with is not known: write the group as `(?P<name>`, "
                        "or set the target version (1.30 or later, 1.27 or earlier)"
                    )
                return "invalid or unsupported Perl syntax: `(?<`"
            if end >= 0 and not _CAPTURE_NAME.fullmatch(pattern[start:end]):
                return f"invalid named capture: `{pattern[i : end + 1]}`"
            i = max(end, start)
        else:
            i += 1
    return None


def go_regexp_error(pattern: str, kubernetes_version: str | None = None) -> str | None:
    """Why the target's Go regexp.Compile refuses the pattern (RE2's words where Go's differ),
    or None (also where that depends on the target's patch release: evaluation says so)."""
    try:
        _regex(pattern, _minor(kubernetes_version))
    except _Unevaluable:
        return None
    except _LibraryError as e:
        return str(e).removeprefix(f"invalid regular expression {pattern!r}: ")
    return None


# -- format (Kubernetes' named formats) ----------------------------------------

# k8s.io/apiserver/pkg/cel/library/format.go: the DNS names and label values are apimachinery's
# validators (util/validation, api/validate/content) with their messages; `uri` is
# url.ParseRequestURI's error; uuid, byte, date and datetime are strfmt's checks, the same
# ones a CRD's `format` runs (`crd_formats`), with a fixed message each.

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_DNS1035 = "[a-z]([-a-z0-9]*[a-z0-9])?"
_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    """apimachinery's RegexError: the message, its examples and the pattern."""
    shown = "".join(f"{' or ' if i else ''}'{e}', " for i, e in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def _byte_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))  # Go's len() counts bytes


def _dns1123_label(text: str) -> list[str]:
    errors = ["must be no more than 63 characters"] if _byte_length(text) > 63 else []
    if not re.fullmatch(_LABEL, text):
        if re.fullmatch(_SUBDOMAIN, text):
            errors.append("must not contain dots")
        else:
            errors.append(
                _regex_error(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                    "and must start and end with an alphanumeric character",
                    _LABEL,
                    "my-name",
                    "123-abc",
                )
            )
    return errors


def _dns1123_subdomain(text: str) -> list[str]:
    errors = ["must be no more than 253 characters"] if _byte_length(text) > 253 else []
    if not re.fullmatch(_SUBDOMAIN, text):
        errors.append(
            _regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                "'.', and must start and end with an alphanumeric character",
                _SUBDOMAIN,
                "example.com",
            )
        )
    return errors


def _dns1035_label(text: str) -> list[str]:
    errors = ["must be no more than 63 characters"] if _byte_length(text) > 63 else []
    if not re.fullmatch(_DNS1035, text):
        errors.append(
            _regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character",
                _DNS1035,
                "my-name",
                "abc-123",
            )
        )
    return errors


_NAME_ERROR = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)


def _qualified_name(text: str) -> list[str]:
    """content.IsLabelKey (validation.IsQualifiedName)."""
    errors: list[str] = []
    parts = text.split("/")
    if len(parts) > 2:
        return [
            "a valid label key "
            + _regex_error(_NAME_ERROR, _NAME, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            errors.append("prefix part must be non-empty")
        else:
            errors += [f"prefix part {e}" for e in _dns1123_subdomain(parts[0])]
    if not name:
        errors.append("name part must be non-empty")
    elif _byte_length(name) > 63:
        errors.append("name part must be no more than 63 bytes")
    if not re.fullmatch(_NAME, name):
        errors.append("name part " + _regex_error(_NAME_ERROR, _NAME, "MyName", "my.name", "123-abc"))
    return errors


def _label_value(text: str) -> list[str]:
    """content.IsLabelValue (validation.IsValidLabelValue)."""
    errors = ["must be no more than 63 bytes"] if _byte_length(text) > 63 else []
    if not re.fullmatch(f"({_NAME})?", text):
        errors.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                "'.', and must start and end with an alphanumeric character",
                f"({_NAME})?",
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errors


def _port_name(text: str) -> list[str]:
    """validation.IsValidPortName: at most 15 bytes of `[-a-z0-9]`, a letter among them, no
    `--`, no hyphen at either end (each failed rule one message, in Go's order; "at least one
    letter (a-z)" since kubernetes#107212, before the format library)."""
    errors = ["must be no more than 15 characters"] if _byte_length(text) > 15 else []
    if not re.fullmatch(r"[-a-z0-9]+", text):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", text):
        errors.append("must contain at least one letter (a-z)")
    if "--" in text:
        errors.append("must not contain consecutive hyphens")
    if text.startswith("-") or text.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def _prefix(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """apimachinery's NameIs...(name, prefix=true): maskTrailingDash replaces the last *two*
    characters of a name ending in `-` with `a` (`name[:len(name)-2] + "a"`, in bytes); on `-`
    alone the slice is out of range, a panic that cel-go reports as an evaluation error."""

    def masked(text: str) -> list[str]:
        if not text.endswith("-"):
            return check(text)
        raw = text.encode("utf-8", "surrogatepass")
        if len(raw) < 2:
            raise _LibraryError(f"internal error: runtime error: slice bounds out of range [:{len(raw) - 2}]")
        return check((raw[:-2] + b"a").decode("utf-8", "replace"))

    return masked


def _uri(text: str) -> list[str]:
    """url.ParseRequestURI's error, as *url.Error prints it (the same parser as `isURL`)."""
    try:
        _parse_request_uri(text)
    except _Unevaluable:
        raise
    except _LibraryError as e:
        return [f"parse {go_quote(text)}: {e}"]
    return []


def _strfmt(name: str, message: str) -> Callable[[str], list[str]]:
    check = crd_formats.FORMATS[name].check
    return lambda text: [] if check(text) else [message]


_FORMATS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": _dns1123_label,
    "dns1123Subdomain": _dns1123_subdomain,
    "dns1035Label": _dns1035_label,
    "qualifiedName": _qualified_name,
    "portName": _port_name,
    "dns1123LabelPrefix": _prefix(_dns1123_label),
    "dns1123SubdomainPrefix": _prefix(_dns1123_subdomain),
    "dns1035LabelPrefix": _prefix(_dns1035_label),
    "labelValue": _label_value,
    "uri": _uri,
    "uuid": _strfmt("uuid", "does not match the UUID format"),
    "byte": _strfmt("byte", "invalid base64"),
    "date": _strfmt("date", "invalid date"),
    "datetime": _strfmt("datetime", "invalid datetime"),
}


def _optional(value: Any) -> dict[str, Any]:
    """An optional result of the format library (a CEL optional cannot be returned from Python)."""
    return {_MARK: "optional", "value": value, "present": value is not None}


def _optional_value(opt: Any) -> Any:
    if _kind_of(opt) != "optional":
        raise _LibraryError(f"expected an optional, got {type(opt).__name__}")
    if not opt["present"]:
        raise _LibraryError("optional.none() dereference")
    return opt["value"]


def _validate(fmt: Any, text: str) -> dict[str, Any]:
    errors = _FORMATS[_need(fmt, "format")](text)
    return _optional(errors or None)


# -- authorizer ------------------------------------------------------------------

_AUTHZ_STRING: tuple[str, ...] = ("group", "resource", "subresource", "namespace", "name", "check", "path")
_AUTHZ_STRING += ("fieldSelector", "labelSelector")


def _nan_not_ordered() -> bool:
    """cel-go's Compare with a NaN (common/types/double.go, int.go, uint.go)."""
    raise _LibraryError("NaN values cannot be ordered")


def _no_call(*_: Any) -> Any:
    raise _LibraryError("internal: a type-checking overload was called")


def _no_authorizer(*_: Any) -> Any:
    raise _LibraryError("authorizer has no offline meaning")


# -- string.format as Kubernetes has it (cel-go's strings extension, version 2) ----

# The runtime's `format` is the later formatter (cel-spec's): it prints a double for `%d`
# (1.500000) where Kubernetes' version-2 strings library (cel-go ext/formatting.go) errs, and
# writes lists and maps differently. `_go_time_rewrite` routes `.format(` here.
_GO_FORMAT = "__tg_format"


class _Unsupported(_Unevaluable):
    """What trustgate cannot format exactly as cel-go does: the expression cannot be evaluated."""

    def __init__(self, what: str) -> None:
        super().__init__(f"string.format {_UNEVALUABLE}: {what}")


def _cel_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if value is None:
        return "null_type"
    if _kind_of(value):
        return "kubernetes." + _kind_of(value).capitalize()
    names: dict[type, str] = {str: "string", bytes: "bytes", list: "list", dict: "map"}
    names |= {dt.datetime: "google.protobuf.Timestamp", dt.timedelta: "google.protobuf.Duration"}
    return names.get(type(value), type(value).__name__)


def _go_g(value: float) -> str:
    """Go's strconv.FormatFloat(value, 'g', -1, 64): shortest digits, %e form when the exponent
    is below -4 or at least 6 (two exponent digits at least)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if str(value).startswith("-") else ""
    if value == 0:
        return sign + "0"
    mantissa, _, exponent = f"{abs(value)!r}".partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction.rstrip("0")).lstrip("0") or "0"
    point = len(whole.lstrip("0")) + int(exponent or 0)  # the decimal point after this many digits
    if not whole.lstrip("0"):  # 0.000123: the point is before the leading zeros of the fraction
        point = -(len(fraction) - len(fraction.lstrip("0"))) + int(exponent or 0)
    digits = digits.rstrip("0") or "0"
    exp = point - 1
    if exp < -4 or exp >= 6:
        tail = ("." + digits[1:]) if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{tail}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _v1_text(value: Any) -> str:
    """cel-go's FormatString (`%s`): the value converted to a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_g(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _Unsupported("bytes that are not UTF-8 text") from e
    if value is None:
        return "null"
    if isinstance(value, list) and not _kind_of(value):
        return "[" + ", ".join(_v1_member(v) for v in value) + "]"
    if isinstance(value, dict) and not _kind_of(value):
        pairs = sorted((_v1_key(k), _v1_member(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k}:{v}" for k, v in pairs) + "}"
    if isinstance(value, (dt.datetime, dt.timedelta)):
        # the runtime hands Python a timestamp or duration only to the microsecond
        raise _Unsupported("a timestamp or duration (its nanoseconds are not known here)")
    raise _LibraryError(
        "error during formatting: string clause can only be used on strings, bools, bytes, ints, "
        f"doubles, maps, lists, types, durations, and timestamps, was given {_cel_type_name(value)}"
    )


def _v1_member(value: Any) -> str:
    """A list element or map value: clauseForType, then quoteForCEL."""
    if isinstance(value, float) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            raise _Unsupported("a NaN or infinite double inside a list or map")
        return f"{value:.6f}"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bytes):
        return "b" + go_quote(_v1_text(value))
    if isinstance(value, (bool, int, list, dict)) or value is None:
        if _kind_of(value):
            raise _LibraryError(
                f"error during formatting: no formatting function for {_cel_type_name(value)}"
            )
        return _v1_text(value)
    return _v1_text(value)  # refuses what cannot be formatted


def _v1_key(key: Any) -> str:
    if isinstance(key, str):
        return go_quote(key)
    if isinstance(key, (bool, int)):
        return _v1_text(key)
    raise _LibraryError(
        f"error during formatting: no formatting function for map key of type {_cel_type_name(key)}"
    )


def _v1_clause(verb: str, value: Any) -> str:
    name = _cel_type_name(value)
    integer = isinstance(value, int) and not isinstance(value, bool)
    if verb == "s":
        return _v1_text(value)
    if verb == "d":
        if not integer:
            raise _LibraryError(
                f"error during formatting: decimal clause can only be used on integers, was given {name}"
            )
        return str(value)
    if verb in ("f", "e"):
        if not isinstance(value, float) and value not in ("NaN", "Infinity", "-Infinity"):
            what = "fixed-point" if verb == "f" else "scientific"
            raise _LibraryError(
                f"error during formatting: {what} clause can only be used on doubles, was given {name}"
            )
        # cel-go prints these through golang.org/x/text's locale printer (en_US grouping,
        # 1,234.50) and `%e` with the precision as a width: not reproduced here
        raise _Unsupported(f"'%{verb}' (cel-go prints it with golang.org/x/text's locale printer)")
    if verb == "b":
        if isinstance(value, bool):
            return "1" if value else "0"
        if not integer:
            raise _LibraryError(
                "error during formatting: only integers and bools can be formatted as binary, "
                f"was given {name}"
            )
        return format(value, "b")
    if verb in ("x", "X"):
        if integer:
            text = format(value, "x")
        elif isinstance(value, str):
            text = value.encode("utf-8").hex()
        elif isinstance(value, bytes):
            text = value.hex()
        else:
            raise _LibraryError(
                "error during formatting: only integers, byte buffers, and strings can be formatted as hex, "
                f"was given {name}"
            )
        return text.upper() if verb == "X" else text
    if verb == "o":
        if not integer:
            raise _LibraryError(
                f"error during formatting: octal clause can only be used on integers, was given {name}"
            )
        return format(value, "o")
    raise _LibraryError(f'could not parse formatting clause: unrecognized formatting clause "{verb}"')


def _bytes_as_bytes(value: Any) -> Any:
    """The runtime hands bytes inside a list or map to Python as a bytearray."""
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, list):
        return [_bytes_as_bytes(v) for v in value]
    if isinstance(value, dict):
        return {_bytes_as_bytes(k): _bytes_as_bytes(v) for k, v in value.items()}
    return value


def _format_v1(text: str, args: list[Any]) -> str:
    """cel-go's strings.format of version 2 (ext/formatting.go, parseFormatString): `%%`, and
    `%[.precision]verb` taking the next argument; the precision only matters to `%f`/`%e`."""
    args = [_bytes_as_bytes(a) for a in args]
    out: list[str] = []
    i = index = 0
    while i < len(text):
        if text[i] != "%":
            out.append(text[i])
            i += 1
            continue
        if text[i + 1 : i + 2] == "%":
            out.append("%")
            i += 2
            continue
        if index >= len(args):
            raise _LibraryError(f"index {index} out of range")
        if i + 1 >= len(text):
            raise _LibraryError("unexpected end of string")
        j = i + 1
        if text[j] == ".":
            j += 1
            start = j
            while True:
                if j >= len(text):
                    raise _LibraryError(
                        "could not parse formatting clause: error while parsing precision: "
                        "could not find end of precision specifier"
                    )
                if text[j] not in "0123456789":
                    break
                j += 1
            if j == start or int(text[start:j]) >= 2**63:
                raise _LibraryError("could not parse formatting clause: error while parsing precision")
        out.append(_v1_clause(text[j], args[index]))
        index += 1
        i = j + 1
    return "".join(out)


# -- the strings library, as cel-go has it -------------------------------------

# The runtime's `indexOf` and `lastIndexOf` on strings answer out-of-range offsets otherwise
# than cel-go's ext/strings.go, whose answers changed between releases, so the API server's
# depend on its version (`_SEARCHES`): an empty search string gives the offset unchecked; a
# negative offset is an error; an offset at or past the end is an error before cel-go v0.22
# (cel-go#1052; Kubernetes 1.31 and older) and -1 since (`'abc'.lastIndexOf('a', 3)`: 0 here);
# `lastIndexOf` on an empty string searches from offset -1, an error, until cel-go v0.26
# (cel-go#1173; Kubernetes 1.34) made it -1 (here -1). The runtime's `substring(start, end)`
# refuses an end at the string's end (`'abc'.substring(0, 3)`; 'abc' in cel-go) and its
# `split` gives `['']` for `''.split('')` (Go's `strings.Split`: `[]`). The runtime also has
# the strings library's version-3 `reverse` on strings, which Kubernetes' version 2 lacks (a
# string receiver is "no matching overload" there). `_go_time_rewrite` routes these member
# calls here.
_GO_MEMBERS = {
    "indexOf": "__tg_indexOf",
    "lastIndexOf": "__tg_lastIndexOf",
    "reverse": "__tg_reverse",
    "substring": "__tg_substring",
    "split": "__tg_split",
}


@dataclass(frozen=True, slots=True)
class _Searches:
    """How one Kubernetes version's cel-go answers string searches at the edges (`_SEARCHES`).

    `past_end`: a non-empty search from an offset at or past the end, "error" or "-1";
    `empty_last`: `lastIndexOf` of a non-empty string in an empty one, "error" or "-1";
    `empty_offset`: an empty search from an offset out of [0, size], "offset" (given back
    unchecked) or `_UNKNOWN`. `_UNKNOWN` is "could not evaluate" where the answers differ.
    """

    past_end: str
    empty_last: str
    empty_offset: str


# (the first Kubernetes minor version of a regime, its function names' suffix, its answers)
# Kubernetes 1.32 pins cel-go v0.22.0, and cel-go#1052 (an offset past the end: -1) was merged
# two weeks before that release was cut: trustgate has not checked it is in it. cel-go#1335
# (June 2026: an empty search's negative offset an error, one past the end the size) is in no
# release trustgate has checked; Kubernetes 1.36 predates it.
_SEARCHES: tuple[tuple[int, str, _Searches], ...] = (
    (0, "_v21", _Searches(past_end="error", empty_last="error", empty_offset="offset")),
    (32, "_v22", _Searches(past_end=_UNKNOWN, empty_last="error", empty_offset="offset")),
    (33, "_v23", _Searches(past_end="-1", empty_last="error", empty_offset="offset")),
    (34, "_v26", _Searches(past_end="-1", empty_last="-1", empty_offset="offset")),
    (37, "", _Searches(past_end="-1", empty_last="-1", empty_offset=_UNKNOWN)),
)
_SEARCHED = ("indexOf", "lastIndexOf")  # the routed names that differ by version


def _searches_suffix(kubernetes_version: str | None) -> str:
    """The suffix of the search functions the API server of `kubernetes_version` has (the
    configuration's default version when None)."""
    minor = deprecations.parse_version(kubernetes_version or DEFAULT_KUBERNETES_VERSION)[1]
    return [suffix for first, suffix, _ in _SEARCHES if minor >= first][-1]


def _unknown_answer(function: str, answers: str) -> _Unevaluable:
    return _Unevaluable(
        f"{function} {_UNEVALUABLE}: the target Kubernetes version's cel-go gives {answers}, and "
        "trustgate does not know which; a check such as `offset < size(s)` before the call decides it"
    )


def _past_end(searches: _Searches, function: str, offset: int) -> int:
    if searches.past_end == "error":
        raise _LibraryError(f"index out of range: {offset}")
    if searches.past_end == _UNKNOWN:
        raise _unknown_answer(function, f"-1 or an error for an offset past the end ({offset})")
    return -1


def _empty_search(searches: _Searches, function: str, size: int, offset: int) -> int:
    if searches.empty_offset == _UNKNOWN and not 0 <= offset <= size:
        raise _unknown_answer(function, f"the offset or another answer for an empty search from {offset}")
    return offset


def _go_index_of(searches: _Searches, text: str, sub: str, offset: int = 0) -> int:
    """cel-go's `indexOfOffset`, over characters (Go's runes)."""
    if sub == "":
        return _empty_search(searches, "indexOf", len(text), offset)
    if offset < 0:
        raise _LibraryError(f"index out of range: {offset}")
    if offset >= len(text):
        return _past_end(searches, "indexOf", offset)
    return text.find(sub, offset)


def _go_last_index_of(searches: _Searches, text: str, sub: str, offset: int | None = None) -> int:
    """cel-go's `lastIndexOf` and `lastIndexOfOffset`, over characters."""
    if offset is None:
        if sub == "":
            return len(text)
        if text == "" and searches.empty_last == "-1":
            return -1
        offset = len(text) - 1
    if sub == "":
        return _empty_search(searches, "lastIndexOf", len(text), offset)
    if offset < 0:
        raise _LibraryError(f"index out of range: {offset}")
    if offset >= len(text):
        return _past_end(searches, "lastIndexOf", offset)
    start = min(offset, len(text) - len(sub))
    return text.rfind(sub, 0, start + len(sub)) if start >= 0 else -1


def _go_substring(text: str, start: int, end: int | None = None) -> str:
    """cel-go's `substr` and `substrRange`, over characters."""
    if end is not None and start > end:
        raise _LibraryError(f"invalid substring range. start: {start}, end: {end}")
    if not 0 <= start <= len(text):
        raise _LibraryError(f"index out of range: {start}")
    if end is None:
        return text[start:]
    if not 0 <= end <= len(text):
        raise _LibraryError(f"index out of range: {end}")
    return text[start:end]


def _go_split(text: str, sep: str, n: int = -1) -> list[str]:
    """Go's `strings.SplitN` (`Split` with n -1), which cel-go's `split` calls."""
    if n == 0:
        return []
    if sep == "":  # Go's explode: one piece per character, the last holding the rest
        pieces = len(text) if n < 0 or n > len(text) else n
        return [*text[: pieces - 1], text[pieces - 1 :]] if pieces else []
    return text.split(sep, n - 1) if n > 0 else text.split(sep)


# -- Go's time parsing (cel-go's timestamp(), duration() and duration.getMilliseconds()) --

# The runtime's own `timestamp(string)`, `duration(string)` and `getMilliseconds()` cannot be
# replaced (the runtime registers them first), and they differ from cel-go's: they take strings
# Go's time.Parse(RFC3339) and time.ParseDuration refuse (`t` and `z` in lower case, a leap
# second, `+0100`, `2562048h`), and a duration's getMilliseconds() is its millisecond part
# (500 for 1.5s) where cel-go gives the total (1500). `_go_time_rewrite` routes each call
# through the functions below: a string argument is checked and handed to the runtime in a
# form it reads exactly; any other argument goes to the runtime's conversion as it was.

_GO_T = "__tg_go_t"  # the cel.bind variable holding a timestamp()/duration() argument
_GO_CHECK = {"timestamp": "__tg_go_timestamp", "duration": "__tg_go_duration"}
_GO_MILLISECONDS = "__tg_getMilliseconds"
_MIN_UNIX, _MAX_UNIX = -62_135_596_800, 253_402_300_799  # seconds; cel-go: years 1 to 9999


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year, 0 included)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


_RFC3339 = re.compile(  # time.Parse(RFC3339)'s general path; the fast path takes a subset of it
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})T(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?:[.,](?P<f>[0-9]+))?(?:(?P<z>Z)|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))"
)


def _go_timestamp(text: str) -> str:
    """The string cel-go's `timestamp(text)` reads, as the runtime reads it exactly (UTC, to the
    nanosecond), or an error where Go's time.Parse(time.RFC3339, text) fails or the time is
    outside the years 1 to 9999 (cel-go's range)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise _LibraryError(
            f"timestamp conversion error: {text!r} is not an RFC 3339 date-time as Go parses it"
        )
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    hour, minute, second = int(match["h"]), int(match["mi"]), int(match["s"])
    offset = 0
    if match["sign"]:
        # Go's general parser allows an offset of up to 24 hours and 60 minutes.
        if int(match["oh"]) > 24 or int(match["om"]) > 60:
            raise _LibraryError(f"timestamp conversion error: {text!r}: time zone offset out of range")
        offset = (int(match["oh"]) * 60 + int(match["om"])) * 60 * (-1 if match["sign"] == "-" else 1)
    if (
        not 1 <= month <= 12
        or hour > 23
        or minute > 59
        or second > 59
        or not 1 <= day <= _days_in(month, year)
    ):
        raise _LibraryError(f"timestamp conversion error: {text!r}: a field is out of range")
    nanos = int((match["f"] or "")[:9].ljust(9, "0"))  # Go reads 9 digits and ignores the rest
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset
    if not _MIN_UNIX <= seconds <= _MAX_UNIX:
        raise _LibraryError(f"timestamp conversion error: {text!r}: timestamp out of range")
    utc = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}.{nanos:09d}Z"  # %Y does not pad years below 1000


# cel-go's timestamp getters with a time zone (getHours('+05:30')): Kubernetes sets
# cel.DefaultUTCTimeZone(true), so cel/library.go's timeZone (common/types/timestamp.go's is the
# same) reads the argument: without a `:`, Go's time.LoadLocation(name) ("" and "UTC" are UTC,
# "Local" the API server's own zone); with one, strconv.Atoi of the text before the first `:`
# (the hours, sign included) and of all the text after it (the minutes, unchecked: '5:-30' is
# 4:30, '+05:30:00' an error), the minutes subtracted when the text starts with `-`. The
# runtime reads these otherwise ('+05:30:00' is 11 hours there). cel-go#1391 (July 2026: hours
# outside [-23, 23] and minutes outside [0, 59] refused) is in no release trustgate has checked:
# from `_TZ_BOUNDED` on, such an offset is not evaluated. `_go_time_rewrite` routes the calls.
_GO_TZ = "__tg_go_tz_"
_GO_REGEX = {"matches": "__tg_go_matches", "find": "__tg_go_find", "findAll": "__tg_go_findAll"}
_TZ_BOUNDED = 37  # the first Kubernetes minor version that may have cel-go#1391
_TZ_FIELDS: dict[str, Callable[[dt.datetime], int]] = {
    "getFullYear": lambda t: t.year,
    "getMonth": lambda t: t.month - 1,
    "getDayOfYear": lambda t: t.timetuple().tm_yday - 1,
    "getDate": lambda t: t.day,
    "getDayOfMonth": lambda t: t.day - 1,
    "getDayOfWeek": lambda t: t.isoweekday() % 7,  # Go: Sunday is 0
    "getHours": lambda t: t.hour,
    "getMinutes": lambda t: t.minute,
    "getSeconds": lambda t: t.second,
    "getMilliseconds": lambda t: t.microsecond // 1000,
}
_GO_ATOI = re.compile(r"[+-]?[0-9]+")


def _go_atoi(text: str) -> int:
    """strconv.Atoi: an optional sign and ASCII digits, within int64."""
    value = int(text) if _GO_ATOI.fullmatch(text) else None
    if value is None:
        raise _LibraryError(f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    if not -(2**63) <= value < 2**63:
        raise _LibraryError(f"strconv.Atoi: parsing {go_quote(text)}: value out of range")
    return value


def _go_zone(tz: str, minor: int) -> dt.tzinfo:
    """The location cel-go's timeZone makes of `tz` for the API server of Kubernetes 1.`minor`."""
    colon = tz.find(":")
    if colon < 0:
        if tz in ("", "UTC"):
            return dt.UTC
        if tz == "Local":
            raise _Unevaluable(
                f"the time zone 'Local' {_UNEVALUABLE}: it is the API server's own zone, which "
                "trustgate does not know; name the zone ('Europe/Paris') or give its offset ('+01:00')"
            )
        if ".." in tz.split("/") or tz[0] in "/\\":
            raise _LibraryError("time: invalid location name")
        try:
            return zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise _LibraryError(f"unknown time zone {tz}") from None
    hours, minutes = _go_atoi(tz[:colon]), _go_atoi(tz[colon + 1 :])
    if minor >= _TZ_BOUNDED and not (-23 <= hours <= 23 and 0 <= minutes <= 59):
        raise _Unevaluable(
            f"the time zone offset {tz!r} {_UNEVALUABLE}: cel-go refuses hours outside [-23, 23] and "
            "minutes outside [0, 59] since a change trustgate has not found in a release; write the "
            "offset as ±HH:MM within those ranges"
        )
    offset = hours * 60 - minutes if tz.startswith("-") else hours * 60 + minutes
    if abs(offset) >= 10**9:  # Go's int64 arithmetic on it wraps long before this matters
        raise _Unevaluable(f"the time zone offset {tz!r} {_UNEVALUABLE}: it is too large")
    return dt.timezone(dt.timedelta(minutes=offset)) if abs(offset) < 24 * 60 else _FarZone(offset)


class _FarZone(dt.tzinfo):
    """A fixed zone a day or more from UTC, which Go's time.FixedZone takes and `dt.timezone`
    does not."""

    def __init__(self, minutes: int) -> None:
        self._offset = dt.timedelta(minutes=minutes)

    def utcoffset(self, _: dt.datetime | None) -> dt.timedelta:
        return self._offset

    def dst(self, _: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, _: dt.datetime | None) -> str:
        return ""

    def fromutc(self, t: dt.datetime) -> dt.datetime:
        return (t + self._offset).replace(tzinfo=self)


def _in_zone(field: str, t: dt.datetime, tz: str, minor: int) -> int:
    """cel-go's `t.field(tz)`."""
    zone = _go_zone(tz, minor)
    utc = t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t
    try:
        local = utc.astimezone(zone)
    except OverflowError:
        raise _Unevaluable(
            f"{field}({tz!r}) {_UNEVALUABLE}: the time in that zone is outside years 1 to 9999"
        ) from None
    return _TZ_FIELDS[field](local)


_GO_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9}
_GO_UNITS |= {"m": 60 * 10**9, "h": 3600 * 10**9}


def _go_duration(text: str) -> str:
    """The string cel-go's `duration(text)` reads (in seconds, which the runtime reads exactly),
    or an error where Go's time.ParseDuration fails: as it, the fraction of a part is added
    in float64 and truncated, and a total beyond int64 nanoseconds overflows."""
    invalid = _LibraryError(f"invalid duration {text!r}: not a duration as Go's time.ParseDuration reads it")
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return "0s"
    if not rest:
        raise invalid
    total = 0
    while rest:
        match = re.match(r"([0-9]*)(?:\.([0-9]*))?", rest)
        assert match is not None  # matches the empty string
        whole, fraction = match.group(1), match.group(2)
        if not whole and not fraction:
            raise invalid
        rest = rest[match.end() :]
        unit_end = next((i for i, c in enumerate(rest) if c == "." or "0" <= c <= "9"), len(rest))
        unit = _GO_UNITS.get(rest[:unit_end])
        rest = rest[unit_end:]
        if unit is None:
            raise invalid
        value = int(whole or "0")
        if value > 2**63 // unit:
            raise invalid
        value *= unit
        digits = (fraction or "").lstrip("0")
        if digits:
            # leadingFraction: digits until the value would pass 2**63, the rest ignored
            f, scale = 0, 1.0
            for c in fraction or "":
                if f > (2**63 - 1) // 10 or f * 10 + int(c) > 2**63:
                    break
                f, scale = f * 10 + int(c), scale * 10
            value += int(float(f) * (float(unit) / scale))
            if value > 2**63:
                raise invalid
        total += value
        if total > 2**63:
            raise invalid
    if not negative and total > 2**63 - 1:
        raise invalid
    whole_seconds, nanos = divmod(total, 10**9)
    return f"{'-' if negative else ''}{whole_seconds}.{nanos:09d}s"


def _duration_milliseconds(value: dt.timedelta) -> int:
    """cel-go's duration.getMilliseconds(): the whole duration in milliseconds, truncated toward
    zero (Go's Duration.Milliseconds). The runtime hands Python the duration truncated toward
    zero to the microsecond, which truncates to the same milliseconds."""
    micros = value // dt.timedelta(microseconds=1)
    return micros // 1000 if micros >= 0 else -(-micros // 1000)


# cel-go's conversions from a string (common/types/string.go, String.ConvertToType) are Go's
# strconv.ParseInt(s, 10, 64), ParseUint(s, 10, 64), ParseFloat(s, 64) and ParseBool; the
# runtime's trim whitespace (`int(' 5')`), take `+1` as a uint and an out-of-range double as an
# infinity, and refuse `T` and `F`. Its `string()` of a duration and a timestamp differ too
# (`1.500s` for cel-go's `1.5s`, `.500Z` for `.5Z`), and it has no `int(duration)`, which
# cel-go gives in nanoseconds. `_go_time_rewrite` routes these calls through the functions
# below, each handing the runtime a value its own conversion takes as it is.

_GO_CONVERT = {
    "int": "__tg_go_int",
    "uint": "__tg_go_uint",
    "double": "__tg_go_double",
    "bool": "__tg_go_bool",
}
_GO_CONVERTED = frozenset({*_GO_CONVERT, "string"})  # the conversions `_go_time_rewrite` routes
_GO_DURATION_INT = "__tg_go_duration_int"
_GO_DURATION_STRING = "__tg_go_duration_string"
_GO_TIMESTAMP_STRING = "__tg_go_timestamp_string"
_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True}
_GO_BOOLS |= {"0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def _conversion_error(target: str) -> _LibraryError:
    return _LibraryError(f"type conversion error from 'string' to '{target}'")


def _go_int(text: str) -> int:
    """strconv.ParseInt(text, 10, 64): an optional sign and ASCII digits, nothing else."""
    value = _decimal(text) if re.fullmatch(r"[+-]?[0-9]+", text) else None
    if value is None or value not in _INT64:
        raise _conversion_error("int")
    return value


def _go_uint(text: str) -> str:
    """strconv.ParseUint(text, 10, 64): ASCII digits only (no sign); the digits, which the
    runtime's uint() reads exactly."""
    value = _decimal(text) if re.fullmatch(r"[0-9]+", text) else None
    if value is None or value not in _UINT64:
        raise _conversion_error("uint")
    return str(value)


def _go_double(text: str) -> float:
    """strconv.ParseFloat(text, 64) (`_gostrconv`): decimal or hexadecimal (with a `p` exponent)
    notation, `_` between digits, `inf`/`infinity` with an optional sign, `nan`, any case; a
    value beyond the float64 range is an error (ErrRange), not an infinity. An expression that
    converts so has its comparisons guarded against a NaN (`_NAN_MAKERS`)."""
    try:
        return parse_float(text)
    except ValueError as e:
        raise _conversion_error("double") from e


def _go_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text not in _GO_BOOLS:
        raise _conversion_error("bool")
    return _GO_BOOLS[text]


_RUNTIME_DURATION_TEXT = re.compile(r"(-?)([0-9]+)(?:\.([0-9]{1,9}))?s")
_RUNTIME_TIMESTAMP_TEXT = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?Z"
)


def _runtime_duration_nanos(text: str) -> int:
    """The nanoseconds of a duration as the runtime's string() writes it (`-1.500s`)."""
    match = _RUNTIME_DURATION_TEXT.fullmatch(text)
    if match is None:
        raise _LibraryError(f"internal: unexpected duration text {text!r}")
    nanos = int(match[2]) * 10**9 + int((match[3] or "").ljust(9, "0"))
    return -nanos if match[1] else nanos


def _go_duration_int(text: str) -> int:
    """cel-go's int(duration): the duration in nanoseconds (Go's Duration is an int64 of them)."""
    nanos = _runtime_duration_nanos(text)
    if nanos not in _INT64:
        raise _LibraryError("integer overflow")
    return nanos


def _go_duration_string(text: str) -> str:
    """cel-go's string(duration): strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s", where
    Seconds() adds the whole seconds and the nanoseconds as float64s."""
    from decimal import Decimal

    nanos = _runtime_duration_nanos(text)
    whole = abs(nanos) // 10**9 * (-1 if nanos < 0 else 1)
    seconds = float(whole) + float(nanos - whole * 10**9) / 1e9
    out = format(Decimal(repr(seconds)), "f")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return out + "s"


def _go_timestamp_string(text: str) -> str:
    """cel-go's string(timestamp): Go's Format(time.RFC3339Nano), the fraction without trailing
    zeros (none when zero). The runtime keeps no time zone: the time is written in UTC, where
    cel-go writes a timestamp parsed with an offset in that offset."""
    match = _RUNTIME_TIMESTAMP_TEXT.fullmatch(text)
    if match is None:
        raise _LibraryError(f"internal: unexpected timestamp text {text!r}")
    fraction = (match[2] or "").rstrip("0")
    return match[1] + ("." + fraction if fraction else "") + "Z"


def _lex(source: str) -> list[tuple[str, int, int]]:
    """CEL's tokens as `_go_time_rewrite` needs them, as (text, start, end): identifiers and
    single punctuation characters as written, a literal (string or bytes, raw or
    triple-quoted; a number; a quoted identifier) as `"literal"`; comments are skipped."""
    tokens: list[tuple[str, int, int]] = []
    i, n = 0, len(source)
    while i < n:
        c, start = source[i], i
        if c.isspace():
            i += 1
            continue
        if source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        prefix = re.match(r"[rRbB]{0,2}(?=['\"])", source[i : i + 3])
        if prefix is not None:
            raw = "r" in prefix.group(0).lower()
            i += len(prefix.group(0))
            quote = source[i] * 3 if source.startswith(source[i] * 3, i) else source[i]
            i += len(quote)
            while i < n and not source.startswith(quote, i):
                i += 2 if source[i] == "\\" and not raw else 1
            i += len(quote)
            tokens.append(("literal", start, i))
            continue
        if c == "`":
            end = source.find("`", i + 1)
            i = n if end < 0 else end + 1
            tokens.append(("literal", start, i))
            continue
        word = re.match(r"[A-Za-z_][A-Za-z0-9_]*|[0-9][A-Za-z0-9_]*", source[i:])
        if word is not None:
            text = "literal" if word.group(0)[0].isdigit() else word.group(0)
            tokens.append((text, i, i + word.end()))
            i += word.end()
            continue
        tokens.append((c, i, i + 1))
        i += 1
    return tokens


_GO_L = "__tg_go_l"  # the cel.bind variable holding the receiver of a lists function
_GO_E = "__tg_go_e"  # the variable of the comprehension over it
_GO_LISTS = {"sum": "__tg_go_sum", "min": "__tg_go_min", "max": "__tg_go_max"}
_GO_LISTS["isSorted"] = "__tg_go_is_sorted"
_GO_DOUBLE_STRING = "__tg_go_double_string"
_RESERVED = "__tg_"  # what the names the rewritings add start with; refused in what a policy writes
_OPENERS = {")": "(", "]": "[", "}": "{"}
_WORD_OPERATORS = frozenset({"in"})  # an operator the lexer sees as an identifier


def _operand_end(tokens: list[tuple[str, int, int]], j: int) -> bool:
    """Whether the token at `j` ends an operand (so a `.` after it selects a member of it)."""
    if j < 0:
        return False
    text = tokens[j][0]
    return text in _OPENERS or text == "literal" or (_is_word(text) and text not in _WORD_OPERATORS)


def _is_word(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text))


def _is_member(tokens: list[tuple[str, int, int]], k: int) -> bool:
    """Whether the name at `k` is a member call's (`x.int(...)`), not a global's: a leading `.`
    (`.int(x)`, after an operator, a bracket, a comma or at the start) names the root scope's
    global function, as in cel-go."""
    return k > 0 and tokens[k - 1][0] == "." and _operand_end(tokens, k - 2)


def _receiver_start(tokens: list[tuple[str, int, int]], dot: int) -> int | None:
    """The index of the first token of the receiver of the member call whose `.` is at `dot`:
    the longest chain of selections, calls and indexes before it (CEL's member rule binds
    tighter than any operator), or None where it cannot be told."""
    j = dot - 1
    while j >= 0:
        text = tokens[j][0]
        if text in _OPENERS:
            depth = 0
            for o in range(j, -1, -1):
                depth += {")": 1, "]": 1, "}": 1, "(": -1, "[": -1, "{": -1}.get(tokens[o][0], 0)
                if depth == 0:
                    break
            else:
                return None
            # `f(...)`, `x[...]`, `T{...}`: the call's, index's or message's operand goes on
            before = tokens[o - 1][0] if o > 0 else ""
            if (tokens[o][0] in ("[", "{") and _operand_end(tokens, o - 1)) or (
                tokens[o][0] == "(" and _is_word(before) and before not in _WORD_OPERATORS
            ):
                j = o - 1
                continue
            return o
        if text == "literal" or (_is_word(text) and text not in _WORD_OPERATORS):
            dot_at = j - 2 if j >= 2 and tokens[j - 1][0] == "?" and tokens[j - 2][0] == "." else j - 1
            if dot_at >= 0 and tokens[dot_at][0] == ".":
                if _operand_end(tokens, dot_at - 1):
                    j = dot_at - 1
                    continue
                return dot_at  # a leading `.`: the root scope's name
            return j
        return None
    return None


def _go_list_tail(name: str) -> str:
    """What `.sum()`, `.min()`, `.max()` and `.isSorted()` become, inside the cel.bind of their
    receiver: a Python function given the list and, for each item, the runtime's exact text of
    a duration or timestamp (the bindings hand Python only microseconds) or `uint` for a uint
    (which reaches Python as an int); min and max give the index of the item, so the runtime
    hands back the item itself."""
    e = _GO_E
    durations = f"type({e}) == google.protobuf.Duration || type({e}) == google.protobuf.Timestamp"
    tags = f"{_GO_L}.map({e}, {durations} ? string(dyn({e})) : type({e}) == uint ? 'uint' : '')"
    call = f"{_GO_L}.{_GO_LISTS[name]}({tags})"
    return f", {_GO_L}[{call}])" if name in ("min", "max") else f", {call})"


_GO_NAN = "__tg_go_nan"  # raises cel-go's "NaN values cannot be ordered"
_GO_A, _GO_B = "__tg_go_a", "__tg_go_b"  # the operands of a guarded comparison
_STOPS_LEFT = frozenset({",", ":", "&", "|", "=", "<", ">", "(", "[", "{"})
_STOPS_RIGHT = frozenset({",", ":", "&", "|", "=", "<", ">", ")", "]", "}"})


def _comparison_operands(tokens: list[tuple[str, int, int]], k: int, width: int) -> tuple[int, int] | None:
    """The first and last token of the operands of the `<`, `<=`, `>` or `>=` at `k` (`width`
    tokens long): as far as a token of the same or lower precedence at the same depth (CEL's
    relations are one left-associative level, below arithmetic, above `&&`, `||` and `?:`), or
    None where the left operand is itself a relation (a bool: no NaN to order)."""
    depth, j = 0, k - 1
    while j >= 0:
        text = tokens[j][0]
        if text in _OPENERS:
            depth += 1
        elif text in ("(", "[", "{") and depth:
            depth -= 1
        elif not depth:
            optional = text == "?" and j > 0 and tokens[j - 1][0] == "."  # `.?field`
            if text in ("=", "<", ">", "in") or (text == "!" and tokens[j + 1][0] == "="):
                return None
            if text in _STOPS_LEFT or (text == "?" and not optional):
                break
        j -= 1
    first, depth, j = j + 1, 0, k + width
    while j < len(tokens):
        text = tokens[j][0]
        if text in ("(", "[", "{"):
            depth += 1
        elif text in _OPENERS and depth:
            depth -= 1
        elif not depth:
            optional = text == "?" and tokens[j - 1][0] == "."
            relation = text == "in" or (text == "!" and j + 1 < len(tokens) and tokens[j + 1][0] == "=")
            if relation or text in _STOPS_RIGHT or (text == "?" and not optional):
                break
        j += 1
    last = j - 1
    return (first, last) if first < k and last >= k + width else None


# A routed member's name in an error, with its `_SEARCHES` suffix, as the policy wrote it.
_ROUTED_MEMBER = re.compile(r"__tg_(" + "|".join(_GO_MEMBERS) + r")(?:_v\d+)?(?!\w)")
_ROUTED: tuple[str, ...] = ("timestamp", "duration", "getMilliseconds", "format", "int", "double")
_ROUTED += ("bool", "string", *_GO_MEMBERS, *_GO_REGEX, *_TZ_FIELDS)
# A routed regex function or time-zone getter's name in an error, as the policy wrote it.
_ROUTED_CALL = re.compile(r"__tg_go_(?:tz_)?(" + "|".join((*_GO_REGEX, *_TZ_FIELDS)) + r")(?:_of)?(?!\w)")


def _may_route(source: str) -> bool:
    """Whether the expression may call what `_go_time_rewrite` routes (its name is in the text)."""
    return any(name in source for name in (*_ROUTED, *_GO_LISTS))


def _go_time_rewrite(
    source: str, *, nan_guard: bool = False, searches: str = "", minor: int = _LATEST
) -> str | None:
    """The expression with cel-go's conversions in place of the runtime's, or None when it
    calls none: `timestamp(x)` and `duration(x)` take a string argument through `_go_timestamp`
    and `_go_duration` (others as they were), and a member `getMilliseconds()` without a time
    zone becomes `_GO_MILLISECONDS` (the whole duration; a timestamp's millisecond part).
    `int(x)`, `uint(x)`, `double(x)` and `bool(x)` take a string through strconv's parsers,
    `int(x)` a duration as its nanoseconds, and `string(x)` a duration, timestamp or double as
    cel-go writes it (`_go_conversion_tail`); a leading `.` (`.int(x)`, the root scope's `int`)
    changes none of this. The lists library's `sum()`, `min()`, `max()` and `isSorted()` bind
    their receiver and see its items' exact values (`_go_list_tail`). With `nan_guard`, each
    `<`, `<=`, `>` and `>=` binds its operands and is cel-go's error ("NaN values cannot be
    ordered") where one is a NaN, which the runtime's comparisons call false. Member
    `indexOf` and `lastIndexOf` call the functions of the `_SEARCHES` regime `searches` names.
    `matches`, member `find` and `findAll`, and the timestamp getters given a time zone call
    cel-go's (`_matches`, `_in_zone`) with the target's minor version `minor` as a last argument.

    In CEL a function is only ever called as its name followed by `(`, so every call is found
    in the tokens; the caller checks the result holds no call to the runtime's functions left.
    """
    if not (_may_route(source) or (nan_guard and ("<" in source or ">" in source))):
        return None
    tokens = _lex(source)
    edits: list[tuple[int, int, int, str]] = []  # start, end, -(where it closes), replacement
    for k, (text, start, end) in enumerate(tokens):
        following = [t[0] for t in tokens[k + 1 : k + 3]]
        member = _is_member(tokens, k)
        if nan_guard and text in ("<", ">"):
            width = 2 if following[:1] == ["="] and tokens[k + 1][1] == end else 1
            operands = _comparison_operands(tokens, k, width)
            if operands is not None:
                left, right = tokens[operands[0]][1], tokens[operands[1]][2]
                operator = source[start : tokens[k + width - 1][2]]
                a, b = _GO_A, _GO_B
                edits.append((left, left, -right, f"cel.bind({a}, "))
                edits.append((start, tokens[k + width - 1][2], 0, f", cel.bind({b}, "))
                tail = f", {a} != {a} || {b} != {b} ? {_GO_NAN}() : {a} {operator} {b}))"
                edits.append((right, right, -left, tail))
        elif text == "getMilliseconds" and following == ["(", ")"]:
            edits.append((start, end, 0, _GO_MILLISECONDS))
        elif text == "format" and following[:1] == ["("] and member:
            edits.append((start, end, 0, _GO_FORMAT))
        elif (
            following[:1] == ["("]
            and following[1:] != [")"]
            and ((text in _TZ_FIELDS and member) or (text in _GO_REGEX and (member or text == "matches")))
        ):
            close = _call_close(tokens, k + 1)
            if close is None:
                return None  # unbalanced: the expression did not compile
            name = _GO_TZ + text if text in _TZ_FIELDS else _GO_REGEX[text] + ("" if member else "_of")
            edits.append((start, end, 0, name))
            edits.append((tokens[close][1], tokens[close][1], -tokens[k + 1][2], f", {minor}"))
        elif text in _GO_MEMBERS and following[:1] == ["("] and member:
            edits.append((start, end, 0, _GO_MEMBERS[text] + (searches if text in _SEARCHED else "")))
        elif text in _GO_LISTS and following == ["(", ")"] and member:
            first = _receiver_start(tokens, k - 1)
            if first is None:
                return None  # left to the caller's check, which refuses it
            close = tokens[k + 2][2]
            edits.append((tokens[first][1], tokens[first][1], -close, f"cel.bind({_GO_L}, "))
            edits.append((tokens[k - 1][1], close, 0, _go_list_tail(text)))
        elif (text in _GO_CHECK or (text in _GO_CONVERTED and not member)) and following[:1] == ["("]:
            depth = 0
            for text2, start2, _ in tokens[k + 1 :]:
                depth += {"(": 1, ")": -1}.get(text2, 0)
                if depth == 0:  # the call's `)`: close the cel.bind before it
                    edits.append((start2, start2, -tokens[k + 1][2], _go_conversion_tail(text)))
                    break
            else:
                return None  # unbalanced: the expression did not compile
            open_end = tokens[k + 1][2]
            edits.append((open_end, open_end, -(start2 + 1), f"cel.bind({_GO_T}, "))
    if not edits:
        return None
    out = source
    # Applied from the end. Of two openings at one place the one closing later goes first, of
    # two closings the one opened later (the third field: minus where it closes, or opened).
    for start, end, _, text in sorted(edits, key=lambda e: (e[0], e[1], e[2]), reverse=True):
        out = out[:start] + text + out[end:]
    return out


def _call_close(tokens: list[tuple[str, int, int]], opening: int) -> int | None:
    """The index of the `)` closing the `(` at `opening`, or None."""
    depth = 0
    for j in range(opening, len(tokens)):
        depth += {"(": 1, ")": -1}.get(tokens[j][0], 0)
        if depth == 0:
            return j
    return None


def _go_conversion_tail(name: str) -> str:
    """The end of the cel.bind `_go_time_rewrite` puts around the argument of `name(...)`: the
    value the runtime's conversion then takes as cel-go's would (`dyn`, so that a branch the
    argument's type never takes type-checks)."""
    t, dyn_t = _GO_T, f"dyn({_GO_T})"
    duration, timestamp = f"type({t}) == google.protobuf.Duration", f"type({t}) == google.protobuf.Timestamp"
    if name in _GO_CHECK:
        return f", type({t}) == string ? {_GO_CHECK[name]}({t}) : {t})"
    if name == "string":
        return (
            f", {duration} ? {_GO_DURATION_STRING}(string({dyn_t})) : "
            f"{timestamp} ? {_GO_TIMESTAMP_STRING}(string({dyn_t})) : "
            f"type({t}) == double ? {_GO_DOUBLE_STRING}({dyn_t}) : {t})"
        )
    check = f", type({t}) == string ? {_GO_CONVERT[name]}({dyn_t}) : "
    if name == "int":
        return check + f"{duration} ? {_GO_DURATION_INT}(string({dyn_t})) : {t})"
    return check + f"{t})"


def _checked_nodes(program: Any) -> Iterator[tuple[Any, tuple[str, ...]]]:
    """Each node of a compiled expression's checked AST with its call's overload ids (none
    when it was compiled without the checker)."""
    from trustgate.policy import cel_cost  # protobuf, loaded only for such expressions

    try:
        root, overloads, _ = cel_cost.parse_checked(bytes(program.serialize()))
    except ValueError:  # compiled without the checker
        return
    stack: list[cel_cost.Expr | None] = [root]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        yield node, overloads.get(node.id, ())
        stack += [node.target, *node.args, node.iter_range, node.accu_init]
        stack += [node.loop_condition, node.loop_step, node.result]


def _bad_time_literal(program: Any) -> str | None:
    """Why a timestamp() or duration() of a string literal fails, as the API server's checker
    says when the policy is written (cel.ValidateTimestampLiterals, ValidateDurationLiterals,
    in Kubernetes' environment since 1.29)."""
    for node, _ in _checked_nodes(program):
        if node.kind == "call" and node.name in _GO_CHECK and node.target is None and len(node.args) == 1:
            argument = node.args[0]
            if argument.kind == "const" and isinstance(argument.const, str):
                try:
                    (_go_timestamp if node.name == "timestamp" else _go_duration)(argument.const)
                except _LibraryError as e:
                    return f"{node.name} validation failed. Reason: {e}"
    return None


def _string_reverse(program: Any) -> str | None:
    """The API server's compile error for `reverse()` on what can only be a string: Kubernetes'
    strings library (version 2) has none, and the lists library's takes only lists."""
    for node, ids in _checked_nodes(program):
        if node.kind == "call" and ids == ("string_reverse",):
            return (
                "found no matching overload for 'reverse' applied to a string: Kubernetes' strings "
                "library (version 2) has no reverse, and the lists library's takes a list"
            )
    return None


def _left_runtime_time_calls(program: Any) -> bool:
    """Whether a (rewritten) expression still calls the runtime's timestamp(string),
    duration(string), duration.getMilliseconds(), string.format, a conversion that differs
    from cel-go's or a lists function other than through the rewrite (an expression compiled
    without the checker: the tokens are all there is)."""
    for node, ids in _checked_nodes(program):
        if node.kind != "call":
            continue
        if {"duration_to_milliseconds", "string_format"} & set(ids) or _LIST_FUNCTIONS & set(ids):
            return True
        argument = node.args[0] if len(node.args) == 1 else None
        if _RUNTIME_CONVERSIONS & set(ids) and not _rewritten(argument):
            return True
        if {"duration_to_string", "timestamp_to_string", "double_to_string"} & set(ids):
            inner = argument.args[0] if argument is not None and len(argument.args) == 1 else None
            written = argument is not None and argument.kind == "call" and argument.name == "dyn"
            ours = written and inner is not None and inner.kind == "ident" and inner.name in (_GO_T, _GO_E)
            if not _rewritten(argument) and not ours:
                return True
    return False


# The runtime's conversions that differ from cel-go's, each called only on a `_go_time_rewrite` bind.
_RUNTIME_CONVERSIONS = frozenset(
    {"string_to_timestamp", "string_to_duration", "string_to_int64", "string_to_uint64"}
    | {"string_to_double", "string_to_bool", "duration_to_int64"}
)
# The lists functions a policy writes, and the runtime's string searches and `reverse`, each
# run as `_go_time_rewrite`'s call instead.
_LIST_FUNCTIONS = frozenset({"list_sum", "list_min", "list_max", "list_is_sorted"}) | frozenset(
    {"string_index_of_string", "string_index_of_string_int", "string_reverse"}
    | {"string_last_index_of_string", "string_last_index_of_string_int"}
    | {"string_substring_int", "string_substring_int_int", "string_split_string", "string_split_string_int"}
    | {"matches", "matches_string", "string_find", "string_find_all", "string_find_all_n"}
    | {"timestamp_to_year_with_tz", "timestamp_to_month_with_tz", "timestamp_to_day_of_year_with_tz"}
    | {"timestamp_to_day_of_month_1_based_with_tz", "timestamp_to_day_of_month_with_tz"}
    | {"timestamp_to_day_of_week_with_tz", "timestamp_to_hours_with_tz", "timestamp_to_minutes_with_tz"}
    | {"timestamp_to_seconds_tz", "timestamp_to_milliseconds_with_tz"}
)


def _rewritten(argument: Any) -> bool:
    return argument is not None and argument.kind == "comprehension" and argument.accu_var == _GO_T


# -- the environment -----------------------------------------------------------


def _fn(name: str, *overloads: cel.Overload) -> cel.FunctionDecl:
    return cel.FunctionDecl(name, list(overloads))


def _ov(
    oid: str, result: Any, params: Sequence[Any], impl: Callable[..., Any], *, member: bool = False
) -> Any:
    def run(*args: Any) -> Any:
        value = impl(*args)
        if _nul_path(value) is not None:  # the bindings would cut the string there
            raise _Unevaluable(f"{oid} gives a string with a NUL character, which {_NUL_CUT}: {_UNEVALUABLE}")
        return value

    return cel.Overload(oid, result, list(params), is_member=member, impl=run)


_NUL_CUT = "the CEL runtime trustgate uses cuts a string at"


def _nul_free(value: Any) -> bool:
    """True when no string or key in `value` holds a NUL character; False when one may
    (`_nul_path` then walks it for the path).

    orjson writes JSON in one native pass and escapes every NUL, in keys and strings alike,
    as the six characters backslash-u-0000; a string holding that text itself only costs the
    walk. What orjson refuses (a key that is not a string, a Mapping that is not a dict, a
    lone surrogate, a value nested too deep) is walked. An input is scanned once per review;
    walked, the object's scan was half of what the bench's five expressions cost.
    """
    try:
        return b"\\u0000" not in orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return False


def _nul_path(value: Any) -> tuple[str | int, ...] | None:
    """The path of a string (or a map key) holding a NUL character in `value`, if any: the
    bindings cut a string handed to the runtime there (`"12\\x00abc"` is `"12"` to it)."""
    if isinstance(value, str):
        return () if "\x00" in value else None
    if value is None or isinstance(value, (bool, int, float)):
        return None
    if _nul_free(value):
        return None
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path
        elif isinstance(item, Mapping):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    return (*path, key)
                stack.append((child, (*path, key)))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, (*path, n)) for n, child in enumerate(item))
    return None


def _member(name: str, result: Any, impl: Callable[..., Any], *args: Any) -> cel.FunctionDecl:
    """A member function of the opaque types (maps marked with `@k8s`)."""
    return _fn(name, _ov(f"k8s_{name}_{len(args)}", result, [_MAP, *args], impl, member=True))


def _go_strings(any_items: list[tuple[str, Any]]) -> Iterator[cel.FunctionDecl]:
    """What member `indexOf` and `lastIndexOf` become, one pair per `_SEARCHES` regime:
    cel-go's on strings, the lists library's on lists."""
    s, i = _T.STRING, _T.INT
    for _, suffix, searches in _SEARCHES:
        index_of = functools.partial(_go_index_of, searches)
        last_index_of = functools.partial(_go_last_index_of, searches)
        yield _fn(
            _GO_MEMBERS["indexOf"] + suffix,
            _ov(f"tg_string_index_of{suffix}", i, [s, s], index_of, member=True),
            _ov(f"tg_string_index_of_int{suffix}", i, [s, s, i], index_of, member=True),
            *(
                _ov(f"tg_list_index_of_{k}{suffix}", i, [_LIST, t], _index_of, member=True)
                for k, t in any_items
            ),
        )
        yield _fn(
            _GO_MEMBERS["lastIndexOf"] + suffix,
            _ov(f"tg_string_last_index_of{suffix}", i, [s, s], last_index_of, member=True),
            _ov(f"tg_string_last_index_of_int{suffix}", i, [s, s, i], last_index_of, member=True),
            *(
                _ov(f"tg_list_last_index_of_{k}{suffix}", i, [_LIST, t], _last_index_of, member=True)
                for k, t in any_items
            ),
        )


def _library() -> list[cel.FunctionDecl]:
    s, b, i, d = _T.STRING, _T.BOOL, _T.INT, _T.DOUBLE
    any_items = list(_ANY.items())
    return [
        # lists
        # (these type-check what a policy writes; it runs `_go_time_rewrite`'s calls below)
        _fn("isSorted", _ov("list_is_sorted", b, [_LIST], _no_call, member=True)),
        _fn("sum", _ov("list_sum", _DYN, [_LIST], _no_call, member=True)),
        _fn("min", _ov("list_min", _DYN, [_LIST], _no_call, member=True)),
        _fn("max", _ov("list_max", _DYN, [_LIST], _no_call, member=True)),
        _fn(_GO_LISTS["isSorted"], _ov("tg_list_is_sorted", b, [_LIST, _LIST], _go_is_sorted, member=True)),
        _fn(_GO_LISTS["sum"], _ov("tg_list_sum", _DYN, [_LIST, _LIST], _go_sum, member=True)),
        _fn(
            _GO_LISTS["min"],
            _ov("tg_list_min", i, [_LIST, _LIST], lambda v, t: _go_extreme(v, t, "min"), member=True),
        ),
        _fn(
            _GO_LISTS["max"],
            _ov("tg_list_max", i, [_LIST, _LIST], lambda v, t: _go_extreme(v, t, "max"), member=True),
        ),
        _fn(
            "indexOf",
            *(_ov(f"list_index_of_{k}", i, [_LIST, t], _index_of, member=True) for k, t in any_items),
        ),
        _fn(
            "lastIndexOf",
            *(
                _ov(f"list_last_index_of_{k}", i, [_LIST, t], _last_index_of, member=True)
                for k, t in any_items
            ),
        ),
        # cel-go's ext.Lists, as Kubernetes enables it (sortBy and the two-variable
        # comprehensions are macros, which the bindings cannot add)
        _fn(
            "slice",
            _ov("list_slice", _LIST, [_LIST, i, i], _slice, member=True),
        ),
        _fn(
            "flatten",
            _ov("list_flatten", _LIST, [_LIST], _flatten, member=True),
            _ov("list_flatten_int", _LIST, [_LIST, i], _flatten, member=True),
        ),
        _fn("distinct", _ov("list_distinct", _LIST, [_LIST], _distinct, member=True)),
        _fn("reverse", _ov("list_reverse", _LIST, [_LIST], lambda v: v[::-1], member=True)),
        _fn("sort", _ov("list_sort", _LIST, [_LIST], _sort, member=True)),
        _fn("lists.range", _ov("lists_range", _T.List(i), [i], _range)),
        # regex
        _fn("find", _ov("string_find", s, [s, s], _find, member=True)),
        _fn(
            "findAll",
            _ov("string_find_all", _T.List(s), [s, s], _find_all, member=True),
            _ov("string_find_all_n", _T.List(s), [s, s, i], _find_all, member=True),
        ),
        # sets
        _fn(
            "sets.contains",
            _ov("sets_contains", b, [_LIST, _LIST], lambda a, c: all(_cel_in(x, a) for x in c)),
        ),
        _fn(
            "sets.equivalent",
            _ov(
                "sets_equivalent",
                b,
                [_LIST, _LIST],
                lambda a, c: all(_cel_in(x, c) for x in a) and all(_cel_in(x, a) for x in c),
            ),
        ),
        _fn(
            "sets.intersects",
            _ov("sets_intersects", b, [_LIST, _LIST], lambda a, c: any(_cel_in(x, c) for x in a)),
        ),
        # url
        _fn("url", _ov("string_to_url", _DYN, [s], _to_url)),
        _fn(
            "isURL",
            _ov("is_url_string", b, [s], lambda t: _valid(_parse_request_uri, t)),
        ),
        *(
            _member(f"get{name[0].upper()}{name[1:]}", s, lambda u, name=name: _url_field(u, name))
            for name in ("scheme", "host", "hostname", "port", "escapedPath")
        ),
        _member("getQuery", _T.Map(s, _T.List(s)), _query),
        # quantity
        _fn(
            "quantity",
            _ov("string_to_quantity", _DYN, [s], _to_quantity),
        ),
        _fn("isQuantity", _ov("is_quantity_string", b, [s], lambda t: _valid(_parse_quantity, t))),
        _member("sign", i, lambda q: (_quantity(q) > 0) - (_quantity(q) < 0)),
        _member("isInteger", b, lambda q: _as_int64(q) is not None),
        _member("asInteger", i, _as_integer),
        _member("asApproximateFloat", d, lambda q: float(_quantity(q))),
        _fn(
            "add",
            _ov(
                "quantity_add",
                _DYN,
                [_MAP, _MAP],
                lambda a, c: _amount_add(_quantity_amount(a), _quantity_amount(c)),
                member=True,
            ),
            _ov(
                "quantity_add_int",
                _DYN,
                [_MAP, i],
                lambda a, c: _amount_add(_quantity_amount(a), (Fraction(c), 0)),
                member=True,
            ),
        ),
        _fn(
            "sub",
            _ov(
                "quantity_sub",
                _DYN,
                [_MAP, _MAP],
                lambda a, c: _amount_sub(_quantity_amount(a), _quantity_amount(c)),
                member=True,
            ),
            _ov(
                "quantity_sub_int",
                _DYN,
                [_MAP, i],
                lambda a, c: _amount_sub(_quantity_amount(a), (Fraction(c), 0)),
                member=True,
            ),
        ),
        # quantity and semver
        _member("isGreaterThan", b, lambda a, c: _compare(a, c) > 0, _MAP),
        _member("isLessThan", b, lambda a, c: _compare(a, c) < 0, _MAP),
        _member("compareTo", i, _compare, _MAP),
        # semver
        _fn(
            "semver",
            _ov("string_to_semver", _DYN, [s], lambda t: _to_semver(t, False)),
            _ov("string_bool_to_semver", _DYN, [s, b], _to_semver),
        ),
        _fn(
            "isSemver",
            _ov("is_semver_string", b, [s], lambda t: _valid(_semver_parts, t)),
            _ov(
                "is_semver_string_bool",
                b,
                [s, b],
                lambda t, n: _valid(lambda x: _semver_parts(_normalize_semver(x) if n else x), t),
            ),
        ),
        # types.Int(v.Major) of a uint64: beyond the int64 range it wraps, as Go's conversion does
        _member("major", i, lambda v: _wrap_int64(_semver_parts(_need(v, "semver"))[0])),
        _member("minor", i, lambda v: _wrap_int64(_semver_parts(_need(v, "semver"))[1])),
        _member("patch", i, lambda v: _wrap_int64(_semver_parts(_need(v, "semver"))[2])),
        # ip and cidr
        _fn(
            "ip",
            _ov("string_to_ip", _DYN, [s], lambda t: _opaque("ip", str(_parse_ip(t)) if _parse_ip(t) else t)),
            _ov("cidr_ip", _DYN, [_MAP], lambda c: _opaque("ip", str(_cidr(c).ip)), member=True),
        ),
        _fn("isIP", _ov("is_ip_string", b, [s], lambda t: _valid(_parse_ip, t))),
        _fn("ip.isCanonical", _ov("ip_is_canonical", b, [s], lambda t: str(_parse_ip(t)) == t)),
        _member("family", i, lambda v: _ip(v).version),
        _member("isUnspecified", b, lambda v: _ip(v).is_unspecified),
        _member("isLoopback", b, lambda v: _ip(v).is_loopback),
        _member("isLinkLocalMulticast", b, _is_link_local_multicast),
        _member("isLinkLocalUnicast", b, lambda v: _ip(v).is_link_local and not _ip(v).is_multicast),
        _member(
            "isGlobalUnicast",
            b,
            lambda v: (
                not (
                    _ip(v).is_unspecified
                    or _ip(v).is_loopback
                    or _ip(v).is_multicast
                    or _ip(v).is_link_local
                    or str(_ip(v)) == "255.255.255.255"
                )
            ),
        ),
        _fn("cidr", _ov("string_to_cidr", _DYN, [s], lambda t: _opaque("cidr", str(_parse_cidr(t))))),
        _fn("isCIDR", _ov("is_cidr_string", b, [s], lambda t: _valid(_parse_cidr, t))),
        _fn(
            "containsIP",
            _ov("cidr_contains_ip_string", b, [_MAP, s], _contains_ip, member=True),
            _ov("cidr_contains_ip_ip", b, [_MAP, _MAP], _contains_ip, member=True),
        ),
        _fn(
            "containsCIDR",
            _ov("cidr_contains_cidr_string", b, [_MAP, s], _contains_cidr, member=True),
            _ov("cidr_contains_cidr", b, [_MAP, _MAP], _contains_cidr, member=True),
        ),
        _member("masked", _DYN, lambda c: _opaque("cidr", str(_cidr(c).network))),
        _member("prefixLength", i, lambda c: _cidr(c).network.prefixlen),
        # authorizer: declared so that policies compile; `Program.reads` keeps them from running
        *(_member(n, _DYN, _no_authorizer, s) for n in _AUTHZ_STRING),
        _member("serviceAccount", _DYN, _no_authorizer, s, s),
        _member("allowed", b, _no_authorizer),
        _member("errored", b, _no_authorizer),
        _member("reason", s, _no_authorizer),
        _member("error", s, _no_authorizer),
        # format: `format.dns1123Label().validate(s)` is an optional list of errors
        *(
            _fn(f"format.{n}", _ov(f"format_{n}", _DYN, [], lambda n=n: _opaque("format", n)))
            for n in _FORMATS
        ),
        _fn(
            "format.named",
            _ov(
                "format_named",
                _DYN,
                [s],
                lambda n: _optional(_opaque("format", n) if n in _FORMATS else None),
            ),
        ),
        _member("validate", _DYN, _validate, s),
        # the optional results of the format library (CEL's own optionals keep their functions);
        # `orValue` on them is not supported: the runtime does not dispatch it to other overloads
        _member("hasValue", b, lambda o: _kind_of(o) == "optional" and bool(o["present"])),
        _member("value", _DYN, _optional_value),
        # cel-go's time conversions (see `_go_time_rewrite`): the string overloads check and
        # rewrite; the others exist so that the rewritten expression type-checks, and are never
        # called (the rewrite hands the runtime any argument but a string as it was)
        *(
            _fn(
                name,
                _ov(f"{name}_string", _DYN, [s], check),
                *(
                    _ov(f"{name}_{k}", _DYN, [t], _no_call)
                    for k, t in (("int", i), ("timestamp", _T.TIMESTAMP), ("duration", _T.DURATION))
                ),
            )
            for name, check in (
                (_GO_CHECK["timestamp"], _go_timestamp),
                (_GO_CHECK["duration"], _go_duration),
            )
        ),
        # cel-go's conversions from strings, int(duration) and string() of durations and
        # timestamps (see `_go_time_rewrite`)
        *(
            _fn(name, _ov(name, _DYN, [s], convert))
            for name, convert in (
                (_GO_CONVERT["int"], _go_int),
                (_GO_CONVERT["uint"], _go_uint),
                (_GO_CONVERT["double"], _go_double),
                (_GO_CONVERT["bool"], _go_bool),
                (_GO_DURATION_INT, _go_duration_int),
                (_GO_DURATION_STRING, _go_duration_string),
                (_GO_TIMESTAMP_STRING, _go_timestamp_string),
            )
        ),
        _fn(_GO_DOUBLE_STRING, _ov(_GO_DOUBLE_STRING, _DYN, [d], _go_g)),
        _fn(_GO_NAN, _ov(_GO_NAN, b, [], _nan_not_ordered)),
        _fn(_GO_FORMAT, _ov("tg_string_format", s, [s, _LIST], _format_v1, member=True)),
        *_go_strings(any_items),
        # cel-go's regexes and time zones (see `_go_time_rewrite`): the last argument is the
        # target's Kubernetes minor version
        _fn(_GO_REGEX["matches"], _ov("tg_string_matches", b, [s, s, i], _matches, member=True)),
        _fn(_GO_REGEX["matches"] + "_of", _ov("tg_matches", b, [s, s, i], _matches)),
        _fn(_GO_REGEX["find"], _ov("tg_string_find", s, [s, s, i], _find, member=True)),
        _fn(
            _GO_REGEX["findAll"],
            _ov(
                "tg_string_find_all",
                _T.List(s),
                [s, s, i],
                lambda t, p, m: _find_all(t, p, -1, m),
                member=True,
            ),
            _ov("tg_string_find_all_n", _T.List(s), [s, s, i, i], _find_all, member=True),
        ),
        *(
            _fn(
                _GO_TZ + field,
                _ov(
                    f"tg_{field}_tz", i, [_T.TIMESTAMP, s, i], functools.partial(_in_zone, field), member=True
                ),
            )
            for field in _TZ_FIELDS
        ),
        _fn(_GO_MEMBERS["reverse"], _ov("tg_list_reverse", _LIST, [_LIST], lambda v: v[::-1], member=True)),
        _fn(
            _GO_MEMBERS["substring"],
            _ov("tg_string_substring", s, [s, i], _go_substring, member=True),
            _ov("tg_string_substring_int", s, [s, i, i], _go_substring, member=True),
        ),
        _fn(
            _GO_MEMBERS["split"],
            _ov("tg_string_split", _T.List(s), [s, s], _go_split, member=True),
            _ov("tg_string_split_int", _T.List(s), [s, s, i], _go_split, member=True),
        ),
        _fn(
            _GO_MILLISECONDS,
            _ov("tg_duration_milliseconds", i, [_T.DURATION], _duration_milliseconds, member=True),
            _ov("tg_timestamp_milliseconds", i, [_T.TIMESTAMP], lambda t: t.microsecond // 1000, member=True),
        ),
        # string(x) of an opaque value: its canonical text
        _fn(
            "string",
            _ov(
                "k8s_opaque_to_string",
                s,
                [_MAP],
                _opaque_string,
            ),
        ),
    ]


def _new_environment(variables: tuple[str, ...], *more: Any) -> Any:
    return cel.NewEnv(
        variables={name: _DYN for name in variables},
        # As an extension after the strings one, the library's overloads join those of the same
        # name there (`indexOf` on lists beside `indexOf` on strings, `string` of opaque values).
        extensions=[
            ext_strings.ExtStrings(),
            ext_optional.ExtOptional(),
            ext_bindings.ExtBindings(),
            cel.CelExtension("trustgate.kubernetes", _library()),
            *more,
        ],
    )


@functools.lru_cache(maxsize=16)
def _environment(variables: tuple[str, ...]) -> Any:
    return _new_environment(variables)


# Kubernetes' environment enables cel.CrossTypeNumericComparisons (environment/base.go, since
# 1.28): `<`, `<=`, `>` and `>=` between int, uint and double (`size(x) <= 2.5`); `==` stays
# typed. The runtime has these overloads (it registers them with heterogeneous equality, and
# `dyn(1) < 2.5` runs), but its checker is not told and the bindings expose no checker option.
# So they are declared in an environment that only checks (the runtime refuses them there,
# ALREADY_EXISTS), whose checked expression `_checked` hands to `_environment` to run.
_CROSS_NUMERIC = [
    cel.FunctionDecl(
        operator,
        [
            cel.Overload(f"{stem}_{left}_{right}", _T.BOOL, [left_type, right_type])
            for left, left_type in (("int64", _T.INT), ("uint64", _T.UINT), ("double", _T.DOUBLE))
            for right, right_type in (("int64", _T.INT), ("uint64", _T.UINT), ("double", _T.DOUBLE))
            if left != right
        ],
    )
    for operator, stem in (
        ("_<_", "less"),
        ("_<=_", "less_equals"),
        ("_>_", "greater"),
        ("_>=_", "greater_equals"),
    )
]


@functools.lru_cache(maxsize=16)
def _checker_environment(variables: tuple[str, ...]) -> Any:
    """`_environment` with the cross-type numeric comparisons declared: for checking only."""
    return _new_environment(variables, cel.CelExtension("trustgate.cross_numeric", _CROSS_NUMERIC))


def _checked(names: tuple[str, ...], text: str, *, disable_check: bool = False) -> Any:
    """The expression compiled in `_environment(names)`; one the checker refuses is checked again
    with the cross-type numeric comparisons declared and, if that passes, run from that check.

    Raises:
        RuntimeError: the engine's compile error (the second check's, which knows more).
    """
    environment = _environment(names)
    if disable_check:
        return environment.compile(text, disable_check=True)
    try:
        return environment.compile(text)
    except RuntimeError:
        checked = _checker_environment(names).compile(text)
    return environment.deserialize(checked.serialize())


_ERROR = _T.ERROR
_STATUS = re.compile(r"^[A-Z_]+: ")  # absl's status code, which says nothing to a policy author
_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")


def _compile_error(text: str) -> CelCompileError:
    """The engine's first error, with its position, and the rest as it gave them."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for n, ln in enumerate(lines):
        match = _POSITION.search(ln)
        if match:
            detail = match.group(3).removesuffix(" [INVALID_ARGUMENT]")
            context = [
                x.removesuffix(" [INVALID_ARGUMENT]") for x in lines[n + 1 : n + 3] if x.startswith(" |")
            ]
            message = detail + ("\n" + "\n".join(context) if context else "")
            return CelCompileError(message, line=int(match.group(1)), column=int(match.group(2)))
    return CelCompileError(text)


def _holds_nan(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and item != item:
            return True
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def _refuse_nul_input(data: Mapping[str, Any]) -> None:
    """The bindings cut a string at a NUL character when they hand it to the runtime, so
    `"12\\x00abc".matches('^[0-9]+$')` would be true where the API server sees the whole string:
    an input holding one is "could not evaluate", never true or false.

    Raises:
        CelUnevaluableError: a string (or map key) in `data` holds a NUL character.
    """
    for name, value in data.items():
        bad = _nul_path(value)
        if bad is not None:
            raise CelUnevaluableError(
                f"input {_UNEVALUABLE}: the string at {path_text((name, *bad))} holds a NUL character, "
                f"which {_NUL_CUT}"
            )


class Bindings:
    """The top-level variables of one evaluation, shared by every program that reads them.

    Giving each program the same `Bindings` converts the input to the runtime's values once
    (the runtime converts a mapping lazily, on access, and keeps what it converted), not once
    per expression: for a policy of five expressions over one object this is the larger part
    of the time. The runtime reads `data` by reference, so a value added to a mapping inside
    it (a policy's `variables`, evaluated in order) is seen by the programs evaluated after.
    """

    __slots__ = ("_native", "_scanned", "data")

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self._native: dict[tuple[str, ...], Any] = {}
        self._scanned: set[str] = set()  # the variables `_refuse_nul` looked through

    def _refuse_nul(self) -> None:
        """`_refuse_nul_input` for each variable once (those added later are values the
        runtime gave, checked where they were made: `Program.evaluate(bindable=True)`)."""
        if len(self._scanned) == len(self.data):
            return  # names are only added (`variables`' entries are added inside its mapping)
        for name in self.data.keys() - self._scanned:
            _refuse_nul_input({name: self.data[name]})
            self._scanned.add(name)

    def native(self, variables: tuple[str, ...]) -> Any:
        found = self._native.get(variables)
        if found is None:
            found = self._native[variables] = _environment(variables).Activation(data=self.data)
        return found


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled expression; evaluate it as often as needed."""

    source: str
    variables: tuple[str, ...]
    _expression: Any
    # The expression as written, compiled, where `_expression` is a rewriting of it (cel-go's
    # time conversions, `_go_time_rewrite`): its type and checked AST are the policy's.
    _written: Any = None

    def evaluate(self, activation: Mapping[str, Any] | Bindings, *, bindable: bool = False) -> Any:
        """The value of the expression as plain Python (None, bool, int, float, str, list, dict).

        Args:
            activation: the top-level variables; `Bindings` to share one conversion of them
                among several programs.
            bindable: a value the runtime takes back as input (a policy's `variables`): a
                duration or timestamp is a protobuf Duration or Timestamp (the runtime refuses
                Python's timedelta and datetime), to the nanosecond at the top level (within a
                list or map, to the microsecond: the bindings give no more).

        Raises:
            CelEvalError: the expression fails on this input (one holding a lone
                surrogate, not Unicode text, among the reasons).
            CelUnevaluableError: trustgate cannot give the API server's value (an input
                string holding a NUL character, among the reasons).
        """
        if isinstance(activation, Bindings):
            activation._refuse_nul()
        else:
            _refuse_nul_input(activation)
        try:
            if isinstance(activation, Bindings):
                native = activation._native.get(self.variables) or activation.native(self.variables)
                value = self._expression.eval(activation=native)
            else:
                value = self._expression.eval(data=dict(activation))
        except RuntimeError as e:  # the runtime raises for some failures and returns errors for others
            # A lone surrogate fails the conversion to C++ ("basic_string: construction from
            # null"); looked for only here, so a good input pays nothing.
            bad = lone_surrogate(activation.data if isinstance(activation, Bindings) else activation)
            if bad is not None:
                raise CelEvalError(
                    f"input cannot be evaluated: the string at {path_text(bad)} holds a lone surrogate "
                    "(a \\ud800-\\udfff escape without its pair), which is not Unicode text"
                ) from e
            raise CelEvalError(str(e)) from e
        try:
            if value.type() == _ERROR:
                text = _STATUS.sub("", str(value.value())).removesuffix(" [UNKNOWN]")
                text = text.replace(_GO_MILLISECONDS, "getMilliseconds").replace(_GO_FORMAT, "format")
                text = _ROUTED_MEMBER.sub(lambda m: m.group(1), text)
                text = _ROUTED_CALL.sub(lambda m: m.group(1), text)
                raise (CelUnevaluableError if _UNEVALUABLE in text else CelEvalError)(text)
            if bindable:
                bound = _bindable(value)
                if _nul_path(bound) is not None:  # handed back to the runtime, it would be cut
                    raise CelUnevaluableError(
                        f"the value {_UNEVALUABLE}: it holds a string with a NUL character, which {_NUL_CUT}"
                    )
                if _holds_nan(bound):  # the expressions reading it compare it unguarded
                    raise CelUnevaluableError(
                        f"the value {_UNEVALUABLE}: it holds a NaN, which cel-go does not order "
                        "where the runtime's comparisons give false"
                    )
                return bound
            return value.plain_value()
        except TypeError as e:  # the bindings cannot hand an optional (or other opaque value) to Python
            raise CelEvalError(
                "the expression's value is an optional (or another value that cannot leave the CEL "
                "runtime); trustgate needs a plain value here: end it with .orValue(...) or .hasValue()"
            ) from e

    @property
    def result_type(self) -> str:
        """The checked type of the value: BOOL, INT, STRING, DYN, LIST<INT>, optional_type<DYN>, ..."""
        return str((self._written or self._expression).return_type().name())

    @property
    def is_optional(self) -> bool:
        """Whether the expression's value is an optional (which cannot be handed to Python)."""
        return self.result_type.startswith("optional_type")

    def reads(self, name: str) -> bool:
        """Whether the expression reads the top-level variable `name`, from its checked AST.

        Any identifier of that name counts, also a comprehension or `cel.bind` variable that
        shadows it: the checker resolves `.name` (the root's, even where a local shadows it)
        to the same identifier, so telling them apart could miss a read. Comments and string
        literals are not in the AST. An expression compiled without the checker (see
        `compile_expression`) is judged by its text: any word `name`, even in a string.
        """
        return name in _identifiers(self)

    def checked(self) -> bytes:
        """The checked expression (a serialized cel.expr.CheckedExpr in a protobuf Any), for `cel_cost`."""
        return bytes((self._written or self._expression).serialize())


_ABSL_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us|ns)")
_ABSL_UNIT_NANOS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def _bindable(value: Any) -> Any:
    """A runtime value as data the runtime takes back (see `Program.evaluate`)."""
    from google.protobuf import duration_pb2, timestamp_pb2

    if value.type() == _T.DURATION:  # str(): absl::FormatDuration, to the nanosecond ("1h0.5s")
        text = str(value)
        if text == "0":
            return duration_pb2.Duration()
        parts = _ABSL_DURATION_PART.findall(text.lstrip("-"))
        if "".join(n + u for n, u in parts) != text.lstrip("-"):
            raise CelEvalError(f"a duration trustgate cannot read back: {text}")
        nanos = int(sum((Fraction(n) * _ABSL_UNIT_NANOS[u] for n, u in parts), Fraction(0)))
        return _duration_value(-nanos if text.startswith("-") else nanos)
    if value.type() == _T.TIMESTAMP:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromJsonString(str(value))
        return stamp

    def convert(plain: Any) -> Any:
        if isinstance(plain, dt.timedelta):
            out: Any = duration_pb2.Duration()
            out.FromTimedelta(plain)
            return out
        if isinstance(plain, dt.datetime):
            out = timestamp_pb2.Timestamp()
            out.FromDatetime(plain)
            return out
        if isinstance(plain, list):
            return [convert(v) for v in plain]
        if isinstance(plain, dict):
            return {k: convert(v) for k, v in plain.items()}
        return plain

    return convert(value.plain_value())


@functools.lru_cache(maxsize=4096)
def _identifiers(program: Program) -> frozenset[str]:
    from trustgate.policy import cel_cost  # protobuf, loaded where an expression's reads are asked

    try:
        root = cel_cost.parse_checked(program.checked())[0]
    except ValueError:  # compiled without the checker: no checked AST
        return frozenset(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", program.source))
    found: set[str] = set()
    stack: list[cel_cost.Expr | None] = [root]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if node.kind == "ident":
            found.add(node.name.lstrip("."))
        stack += [node.target, *node.args, node.iter_range, node.accu_init]
        stack += [node.loop_condition, node.loop_step, node.result]
    return frozenset(found)


# The calls that can make a NaN within an expression (`double('nan')`, `inf - inf`, `0.0 / 0.0`,
# a sum of infinities); a NaN handed back as a variable's value is refused there.
_NAN_MAKERS = frozenset({"add_double", "subtract_double", "multiply_double", "divide_double", "list_sum"})
_NAN_MAKERS |= {"string_to_double"}


def _may_make_nan(program: Any, unchecked: bool) -> bool:
    """Whether an expression's comparisons need the NaN guard (`_go_time_rewrite`)."""
    if unchecked:  # no checked AST: any comparison may see one
        return True
    return any(_NAN_MAKERS & set(ids) for node, ids in _checked_nodes(program) if node.kind == "call")


def compile_expression(
    expression: str,
    *,
    variables: Sequence[str],
    length: int | None = None,
    allow_reserved: bool = False,
    kubernetes_version: str | None = None,
) -> Program:
    """Parse and type-check an expression once.

    Args:
        expression: the CEL source.
        variables: the names of the top-level variables (each is `dyn`).
        length: the length the API server sees, when `expression` is a rewriting of what the
            policy wrote (its optional variables bound in it); by default, its own.
        allow_reserved: `expression` is trustgate's own rewriting, which may name `__tg_`
            identifiers (a policy's own expression may not).
        kubernetes_version: the target API server's (`"1.33"`), where cel-go's answers changed
            between releases (`_SEARCHES`); the configuration's default when None.

    Returns:
        The compiled program.

    Raises:
        CelCompileError: a syntax or type error (with its line and column), too long, a NUL
            character, or an identifier trustgate reserves.
        ValueError: `kubernetes_version` is not MAJOR.MINOR[.PATCH].
    """
    searches = _searches_suffix(kubernetes_version)
    minor = _minor(kubernetes_version)
    length = len(expression) if length is None else length
    if length > MAX_EXPRESSION_LENGTH:
        raise CelCompileError(
            f"the expression is {length} characters long; the API server allows {MAX_EXPRESSION_LENGTH}"
        )
    if "\x00" in expression:  # the bindings would cut the source there
        raise CelCompileError(
            "the expression holds a NUL character, which the CEL runtime trustgate uses cuts the text at; "
            "write it as an escape (\\x00) in a string literal"
        )
    if not allow_reserved:
        # trustgate's rewritings mark what they add with these names (`_go_time_rewrite`): one
        # the policy wrote could pass for a rewritten call.
        for text, start, _ in _lex(expression):
            if text.startswith(_RESERVED):
                line = expression.count("\n", 0, start) + 1
                column = start - (expression.rfind("\n", 0, start) + 1) + 1
                raise CelCompileError(
                    f"identifiers starting with {_RESERVED} are reserved by trustgate: {text}",
                    line=line,
                    column=column,
                )
    names = tuple(sorted(set(variables)))
    environment = _environment(names)
    unchecked = False
    try:
        compiled = _checked(names, expression)
    except RuntimeError as e:
        error = _compile_error(str(e))
        if not _NULL_BRANCH.match(error.message):
            raise error from e
        # cel-go (the API server) types `c ? 'text' : null` as a nullable string; cel-cpp's
        # checker refuses the null branch. Such an expression (the Kubernetes documentation's
        # auditAnnotations example) is parsed without the checker: its calls dispatch at run time.
        try:
            compiled = environment.compile(expression, disable_check=True)
        except RuntimeError:
            raise error from e
        unchecked = True
    rewritten = _go_time_rewrite(
        expression, nan_guard=_may_make_nan(compiled, unchecked), searches=searches, minor=minor
    )
    if rewritten is None:
        # Nothing to route, or a call the rewriting could not follow: the checked AST says which.
        if _may_route(expression) and _left_runtime_time_calls(compiled):
            raise CelCompileError(
                "trustgate cannot evaluate this expression as the API server does: it could not route "
                "its conversions, timestamp(), duration(), getMilliseconds(), format, string searches or "
                "lists calls to cel-go's semantics"
            )
        return Program(expression, names, compiled)
    bad = _bad_time_literal(compiled) or _string_reverse(compiled)
    if bad is not None:
        raise CelCompileError(bad)
    # cel-go's timestamp(), duration(), getMilliseconds() and format in place of the runtime's;
    # what the rewriting cannot cover is refused, never run with the runtime's other answers.
    refusal = CelCompileError(
        "trustgate cannot evaluate this expression as the API server does: it could not route its "
        "conversions, timestamp(), duration(), getMilliseconds(), format, string searches or lists calls to "
        "cel-go's semantics"
    )
    try:
        run = _checked(names, rewritten, disable_check=unchecked)
    except RuntimeError as e:
        raise refusal from e
    if _left_runtime_time_calls(run):
        raise refusal
    return Program(expression, names, run, compiled)


_NULL_BRANCH = re.compile(
    r"found no matching overload for '_\?_:_' applied to '\(bool, (\w+, null_type|null_type, \w+)\)'"
)


_STRINGS = re.compile(
    r"""(?:[rRbB]{0,2})("{3}[\s\S]*?"{3}|'{3}[\s\S]*?'{3}|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')"""
)


def substitute_variable(expression: str, name: str, replacement: str) -> tuple[str, int]:
    """The expression with each `variables.name`, `variables['name']` and `variables["name"]`
    outside string literals replaced, and how many were.

    Whitespace may stand around the `.` and inside the brackets, as CEL allows; any other
    spelling (`variables.?name`, `has(variables.name)`, a computed index) is left as written,
    for the caller to compare the count with the references the parsed expression holds.
    """
    key = re.escape(name)
    pattern = re.compile(
        rf"(?P<literal>{_STRINGS.pattern})"
        rf"|(?<![\w.])variables\s*(?:\.\s*{key}(?!\w)|\[\s*(?:'{key}'|\"{key}\")\s*\])"
    )
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if match.group("literal") is not None:
            return match.group(0)
        count += 1
        return replacement

    return pattern.sub(replace, expression), count
