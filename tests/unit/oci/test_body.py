"""Reading an answer within its bounds (trustgate.oci.body): size by Content-Length and while
streaming, error answers cut rather than refused, content encodings never asked for refused.
(Time bounds, the deadline and the minimum rate, are shown against real slow servers in
tests/integration/test_registry_faults.py.)"""

from __future__ import annotations

import pytest

from trustgate.oci.body import read_bounded, root_cause
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference
from trustgate.oci.settings import RegistrySettings
from trustgate.oci.transport import Headers, Response

REF = Reference.parse("registry.test/shop/api:v1")


def _read(status: int, chunks: list[bytes], limit: int, **headers: str) -> bytes:
    response = Response(status, Headers.of(list(headers.items())), iter(chunks))
    return read_bounded(response, limit, settings=RegistrySettings(), ref=REF, what="manifest v1")


def test_a_body_within_the_limit_is_read_whole() -> None:
    assert _read(200, [b"abc", b"de"], 5) == b"abcde"


@pytest.mark.parametrize(
    ("chunks", "headers", "words"),
    [
        ([b"abcdef"], {"Content-Length": "6"}, "is 6 bytes (Content-Length), above the limit of 5 bytes"),
        ([b"abc", b"def"], {}, "is larger, above the limit of 5 bytes"),  # no or a false Content-Length
        ([b"abc", b"def"], {"Content-Length": "3"}, "is larger, above the limit of 5 bytes"),
    ],
)
def test_a_body_above_the_limit_is_refused(chunks: list[bytes], headers: dict[str, str], words: str) -> None:
    with pytest.raises(RegistryError) as caught:
        _read(200, chunks, 5, **headers)
    assert caught.value.kind == "too-large" and words in caught.value.message
    assert "registry.test/shop/api:v1" in caught.value.message


def test_an_error_answer_is_cut_not_refused() -> None:
    assert _read(404, [b"abc", b"def"], 5) == b"abc"
    assert _read(500, [b"abcdef"], 5, **{"Content-Length": "6"}) == b""
    assert _read(500, [b"\x1f\x8b"], 5, **{"Content-Encoding": "gzip"}) == b""


def test_a_content_encoding_never_asked_for_is_refused() -> None:
    with pytest.raises(RegistryError) as caught:
        _read(200, [b"\x1f\x8b"], 5, **{"Content-Encoding": "gzip"})
    assert caught.value.kind == "invalid-manifest" and "Content-Encoding gzip" in caught.value.message
    assert _read(200, [b"ok"], 5, **{"Content-Encoding": "identity"}) == b"ok"


def test_root_cause_names_the_innermost_failure() -> None:
    try:
        try:
            raise OSError("connection reset by peer")
        except OSError as inner:
            raise RuntimeError("fetch failed") from inner
    except RuntimeError as outer:
        assert root_cause(outer) == "connection reset by peer"
    assert root_cause(TimeoutError()) == "TimeoutError"
