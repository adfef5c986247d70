"""The two errors of the registry layer.

Owns: `InvalidReferenceError` (a malformed image reference: the user must act) and
`RegistryError` (a registry could not give what was asked: operations or the
image publisher must act), with the failure kinds callers branch on. Leaves
out: deciding whether a failure denies or merely cannot verify (the gate does).
"""

from __future__ import annotations

from typing import Final

from trustgate.errors import Error, InputError

KINDS: Final = frozenset(
    {
        "unauthorized",  # 401 after trying the credentials we have (or none)
        "forbidden",  # 403: credentials accepted but not allowed
        "not-found",  # 404 for a manifest or blob that must exist
        "rate-limited",  # 429 still after the bounded retries
        "server-error",  # 5xx still after the bounded retries
        "timeout",  # connect/read timeout or overall deadline
        "connection",  # refused, reset, DNS
        "too-large",  # a manifest or blob above its size limit
        "bad-media-type",  # a Content-Type or mediaType we do not accept here
        "digest-mismatch",  # bytes do not hash to the digest asked for or announced
        "invalid-manifest",  # not JSON, or not the shape its media type promises
        "loop",  # an index that refers back to itself or nests too deep
        "tls",  # certificate problems, or plain HTTP where HTTPS is required
        "unexpected-status",  # an HTTP status the registry API does not answer with (a proxy's 407, a 400)
        "unavailable",  # not asked: the registry is marked down after failing (trustgate.oci.breaker)
    }
)


class InvalidReferenceError(InputError):
    """An image reference that does not parse; the message says which part is wrong."""


InvalidReference = InvalidReferenceError  # the name before the naming rule; kept importable


class RegistryError(Error):
    """A registry request failed; `kind` is one of `KINDS`.

    The message names the registry and the reference; `retry_after` is the
    registry's Retry-After (seconds) for "rate-limited", when it gave one.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        registry: str,
        reference: str = "",
        retry_after: float | None = None,
        hint: str = "",
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown RegistryError kind {kind!r}")
        # The message already names the registry and the reference; `where` would repeat them.
        super().__init__(message, hint=hint)
        self.kind = kind
        self.registry = registry
        self.reference = reference
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.diagnostics()
