"""JSON from bytes someone else wrote: a registry's manifests, indexes and referrers listings, the
bundles, signatures, attestations and summaries attached to images, a log entry's body.

Owns: `loads`, `json.loads` with one more way of not being JSON. Nesting deeper than the
interpreter's recursion limit (`[` * 100000) makes `json.loads` raise `RecursionError`, which is
not a `ValueError`: handlers written for malformed JSON let it through, and whoever could push a
referrer turned image verification into an internal error (found in review: a fail-open namespace
then admitted an unsigned image). Here it is a `ValueError`, as every other malformed document
is, so each caller's existing handling (an ignored artifact with a reason, an unreadable
manifest) applies. Leaves out: what a document must contain (each caller checks its own shape).
"""

from __future__ import annotations

import json
from typing import Any


class TooDeepError(ValueError):
    """The document nests deeper than the parser can follow."""


def loads(data: bytes | str) -> Any:
    """`data` parsed as JSON.

    Raises:
        ValueError: not JSON: malformed (`json.JSONDecodeError`), not UTF-8 (`UnicodeDecodeError`),
            or nested too deeply to parse (`TooDeepError`).
    """
    try:
        return json.loads(data)
    except RecursionError as e:
        raise TooDeepError("the JSON nests too deeply to be read") from e
