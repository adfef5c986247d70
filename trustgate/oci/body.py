"""Reading a registry's answer within bounds.

Owns: `read_bounded` (a response body read as it arrives, checked on every
read against its size limit, the transfer's own deadline, the verification's
deadline and a minimum rate; bodies compressed unasked refused), `Transient`
(a failure worth retrying) and `root_cause` (the innermost exception's words,
for messages). Leaves out: what is asked and what the answer means (client.py
for the OCI operations, authorizer.py for tokens), and moving the bytes
(transport.py).
"""

from __future__ import annotations

import time

from trustgate.oci import deadline as _deadline
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference
from trustgate.oci.settings import RegistrySettings
from trustgate.oci.transport import Response

__all__ = ["Transient", "read_bounded", "root_cause"]


class Transient(Exception):
    """A failure worth retrying (timeout, dropped connection); a RegistryError once retries run out.

    `via` names the environment proxy the request went through, if any.
    """

    def __init__(self, kind: str, reason: str, *, via: str = "") -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.via = via


def read_bounded(
    response: Response, limit: int, *, settings: RegistrySettings, ref: Reference, what: str
) -> bytes:
    """The body of `response`, at most `limit` bytes, read within the transfer's bounds.

    An error answer (status 300 and above) is cut at `limit` (or dropped when compressed or
    announced larger): its details are optional, its status says enough.

    Raises:
        RegistryError: "too-large" above `limit`; "invalid-manifest" for a Content-Encoding
            trustgate did not ask for.
        Transient: ("timeout") past `settings.transfer_deadline_seconds`, past the verification's
            deadline (trustgate.oci.deadline), or slower than `min_transfer_bytes_per_second` after
            the grace.
    """

    def too_large(size: str) -> RegistryError:
        return RegistryError(
            "too-large",
            f"{what} of {ref} is {size}, above the limit of {limit} bytes",
            registry=ref.registry,
            reference=str(ref),
            hint="a manifest or signature this large is a mistake or an attack; raise the limit only "
            "if the image is known to be fine",
        )

    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        if response.status >= 300:
            return b""
        raise too_large(f"{int(declared)} bytes (Content-Length)")
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity" and response.status >= 300:
        return b""  # an error's details are optional; its status says enough
    if encoding != "identity":
        # Never asked for (no Accept-Encoding is sent): bytes that are not the content cannot be
        # hashed against a digest, nor bounded before they are inflated.
        raise RegistryError(
            "invalid-manifest",
            f"{what} of {ref} arrived with Content-Encoding {encoding}, which trustgate does not ask for",
            registry=ref.registry,
            reference=str(ref),
            hint="a proxy or the registry compresses responses unasked; configure it to serve them as is",
        )
    started = time.monotonic()
    deadline = started + settings.transfer_deadline_seconds
    budget = _deadline.current()
    rate = settings.min_transfer_bytes_per_second
    grace = settings.slow_transfer_grace_seconds
    chunks: list[bytes] = []
    size = 0
    for chunk in response.chunks:
        size += len(chunk)
        if size > limit:
            if response.status >= 300:
                break
            raise too_large("larger")
        chunks.append(chunk)
        # On every read: the transfer's own bound, the verification's deadline, the minimum rate.
        now = time.monotonic()
        if now > deadline:
            raise Transient(
                "timeout",
                f"the response took longer than {settings.transfer_deadline_seconds:g} s",
                via=response.via,
            )
        if budget is not None and now > budget.at:
            raise Transient(
                "timeout",
                f"the response was still arriving when the {budget.seconds:g} s deadline for "
                f"{budget.what} ran out ({size} bytes so far)",
                via=response.via,
            )
        elapsed = now - started
        if elapsed > grace and size / elapsed < rate:
            raise Transient(
                "timeout",
                f"the response arrived at {size / elapsed:.0f} bytes/s, below the minimum of "
                f"{rate:g} bytes/s ({size} bytes in {elapsed:.1f} s)",
                via=response.via,
            )
    return b"".join(chunks)


def root_cause(error: BaseException) -> str:
    """The words of the innermost exception `error` was raised from (its type when it has none)."""
    seen: BaseException = error
    while (seen.__cause__ or seen.__context__) is not None:
        nxt = seen.__cause__ or seen.__context__
        assert nxt is not None
        seen = nxt
    return str(seen) or type(seen).__name__
