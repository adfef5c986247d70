"""The strings a built-in kind's `[]byte` and `metav1.Time` fields must hold to be decoded at all.

Owns: one checker per Go type whose JSON decoding refuses malformed strings, accepting exactly
what the kube-apiserver's decoder accepts, and which `format` of the shipped schemas marks each
type. Leaves out: walking the schema (schema.py), CRD formats (crd_formats) and every other
`format` of a built-in schema (int32, int64, double, int-or-string): the API server never checks
those as strings, so trustgate does not either.

The API server decodes a built-in object into Go types (json-iterator, configured as
`CaseSensitiveJSONIterator` in apimachinery's runtime/serializer/json/json.go) and answers 400
when a field cannot be decoded, before any validation. In the shipped schemas (kubernetes-json-
schema, every version) `format: byte` marks exactly the `[]byte` fields (Secret `data`, ConfigMap
`binaryData`, caBundle, CSR request/certificate, ...), and `format: date-time` appears only on the
`io.k8s.apimachinery.pkg.apis.meta.v1.Time` and `.MicroTime` definitions.

What the decoder accepts (Kubernetes 1.20.2 built with Go 1.19, as the integration tests run it;
read in vendor/github.com/json-iterator/go/reflect_native.go, staging/src/k8s.io/apimachinery/
pkg/apis/meta/v1/{time,micro_time}.go and Go 1.19's encoding/base64 and time/format.go):

1. `[]byte`: json-iterator's `base64Codec` decodes a JSON string with
   `base64.StdEncoding.DecodeString`: the standard alphabet (`+`, `/`), padded to a multiple of
   4 with `=`, `\\r` and `\\n` ignored anywhere, unused low bits need not be zero, "" is an empty
   slice. null is a nil slice (and, unmodelled here, a JSON array of numbers decodes too).
2. `metav1.Time.UnmarshalJSON`: null is the zero time; any string goes to
   `time.Parse(time.RFC3339, s)` (so "" is refused). Go 1.19's parser, layout
   "2006-01-02T15:04:05Z07:00": four-digit year; two-digit month 01-12; two-digit day valid for
   the month (proleptic Gregorian); an upper-case "T"; a ONE- or two-digit hour 0-23; two-digit
   minute and second 0-59 (no leap second); an optional fraction of any number of digits after
   "." or "," (a quirk: with a fraction the seconds may be missing, "12:00:.5Z"); then "Z"
   (upper case) or a sign and HH:MM, where each two-byte half is parsed with Go's `atoi` (two
   digits, or a sign and one digit) and never range-checked; nothing after it.
3. `metav1.MicroTime.UnmarshalJSON`: the same with layout "2006-01-02T15:04:05.000000Z07:00":
   the fraction is required and has exactly six bytes after "." or ",", parsed with `atoi`
   (six digits, or a sign and five digits; a negative value is out of range).

Newer API servers differ (not modelled): Go 1.20's `time.Parse` checks RFC 3339 strictly
(two-digit hour, offset hours < 24), and Kubernetes 1.23+ decodes with sigs.k8s.io/json
(encoding/json: same base64 rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trustgate import yamlio
from trustgate.policy import crd_formats


def is_go_base64(value: str) -> bool:
    """Go 1.19 `base64.StdEncoding.DecodeString(value)` succeeds (`yamlio.go_base64`).

    "", "aGVsbG8=", "aGVs\\nbG8=" and "YR==" are valid; "aGVsbG8" (unpadded), "a-_b" (URL-safe
    alphabet), "aGVs bG8=" (a space) and "aGVsbG8=\\nx" (data after the padding) are not.
    """
    return yamlio.go_base64(value) is not None


# Go's layouts over the value's UTF-8 bytes (`time.Parse` indexes bytes). Groups: year, month,
# day, hour, minute, second. Offset halves are two bytes each, parsed by Go's `atoi`.
_ATOI2 = rb"(?:[0-9]{2}|[+-][0-9])"
_ZONE = rb"(?:Z|[+-]" + _ATOI2 + rb":" + _ATOI2 + rb")"
_PREFIX = rb"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):"
# Go 1.19 quirk: when the seconds are missing but a fraction follows, the fraction's parse
# overwrites the seconds' error, so "12:00:.5Z" is 12:00:00.5 (RFC3339 only: with a fraction in
# the layout, as MicroTime's, the error stands).
_RFC3339 = re.compile(_PREFIX + rb"(?:([0-9]{2})(?:[.,][0-9]+)?|[.,][0-9]+)" + _ZONE)
_RFC3339_MICRO = re.compile(_PREFIX + rb"([0-9]{2})[.,]([+-][0-9]{5}|[0-9]{6})" + _ZONE)


def _in_range(m: re.Match[bytes]) -> bool:
    year, month, day, hour, minute, second = (g.decode() if g else "0" for g in m.groups()[:6])
    return (
        crd_formats.is_date(f"{year}-{month}-{day}")  # Go's month and day-of-month checks
        and int(hour) < 24
        and int(minute) < 60
        and int(second) < 60
    )


def is_go_rfc3339(value: str) -> bool:
    """Go 1.19 `time.Parse(time.RFC3339, value)` succeeds (`metav1.Time`).

    "2024-01-31T12:00:00Z", "2024-01-31T12:00:00.5+01:00" and "2024-01-31T1:00:00,5Z" are valid;
    "", "2024-01-31t12:00:00Z", "2024-01-31T12:00:00z", "2024-01-31T12:00:00" (no offset),
    "2024-01-31 12:00:00Z" and "2023-02-29T00:00:00Z" are not.
    """
    m = _RFC3339.fullmatch(value.encode("utf-8", "surrogatepass"))
    return m is not None and _in_range(m)


def is_go_rfc3339_micro(value: str) -> bool:
    """Go 1.19 `time.Parse("2006-01-02T15:04:05.000000Z07:00", value)` succeeds (`metav1.MicroTime`).

    "2024-01-31T12:00:00.000000Z" is valid; "2024-01-31T12:00:00Z" and
    "2024-01-31T12:00:00.123Z" (not six fraction digits) are not.
    """
    m = _RFC3339_MICRO.fullmatch(value.encode("utf-8", "surrogatepass"))
    # Go's atoi takes a sign: ".-00000" is zero, ".-00001" a negative fraction (out of range).
    return m is not None and _in_range(m) and int(m[7]) >= 0


@dataclass(frozen=True, slots=True)
class DecodedFormat:
    """A Go type the API server decodes from a string: its checker and how to say what it wants."""

    check: crd_formats.Checker
    expected: str


# Keyed by the custom format name schema.py writes into a built-in kind's compiled schema.
BYTES = "k8s-decode:byte"
TIME = "k8s-decode:time"
MICRO_TIME = "k8s-decode:micro-time"

DECODED: dict[str, DecodedFormat] = {
    BYTES: DecodedFormat(
        is_go_base64,
        "is not base64: the API server refuses to decode it (use padded standard base64, e.g. aGVsbG8=)",
    ),
    TIME: DecodedFormat(
        is_go_rfc3339,
        "is not an RFC 3339 time: the API server refuses to decode it (use e.g. 2024-01-31T12:00:00Z)",
    ),
    MICRO_TIME: DecodedFormat(
        is_go_rfc3339_micro,
        "is not an RFC 3339 time with six fraction digits: the API server refuses to decode it "
        "(use e.g. 2024-01-31T12:00:00.000000Z)",
    ),
}

MICRO_TIME_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"


def decoded_format(name: str, *, definition: str | None) -> str | None:
    """The custom format for a schema node's `format`, or None when the API server ignores it.

    Args:
        name: the node's `format`.
        definition: the `$defs` entry the node is the root of, if any (MicroTime and Time both
            say `date-time`; only the definition's name tells them apart).
    """
    if name == "byte":
        return BYTES
    if name == "date-time":
        return MICRO_TIME if definition == MICRO_TIME_DEF else TIME
    return None
