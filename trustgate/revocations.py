"""Revoking verification summaries: the record `trustgate summaries revoke` appends, and reading them back.

Owns: a revocation as a decision-log record (gate `summaries-revoke`, the revoked
digest as its image evidence, so `trustgate log query --image DIGEST` finds it
beside the decisions it affects), and `Revocations`, which the gate hands to the
image verifier: the revoked digests, read again from the log at most every
`images.summaries.accept.revocationRefreshSeconds`. A digest is either a
summary's (the sha256 of its signed DSSE payload, `summary_digest`, the same
however the bundle is encoded: that summary no longer counts) or an image's
(no summary listing that digest counts, for any of its subjects). Revocations
recorded before summaries were named by their payload name the bundle as
stored; they are still matched. A prune of the log carries the revocations it
would remove over (`to_carry_over`): they are recorded anew. Leaves out: judging summaries
(`trustgate.artifacts.summaries`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from trustgate.errors import DecisionLogError, Error
from trustgate.model import Decision, Mode

if TYPE_CHECKING:
    from trustgate.decisions.chain import Entry
    from trustgate.decisions.log import Store

GATE: Final = "summaries-revoke"
SOURCE: Final = "revoked"


def revocation_record(digest: str, *, reason: str, actor: Any = None) -> dict[str, Any]:
    """The decision-log record revoking every summary for `digest` (an image's or a summary's).

    Raises:
        CanonicalError: not encodable (never for a digest and a reason).
    """
    from trustgate.decisions.record import Actor, DecisionContext, ImageEvidence, build_record

    decision = Decision(
        gate=GATE,
        mode=Mode.ENFORCE,
        results=[],
        notes=[f"verification summaries for {digest} revoked" + (f": {reason}" if reason else "")],
    )
    context = DecisionContext(
        actor=actor if actor is not None else Actor(),
        images=(ImageEvidence(f"revoked:{digest}", digest, SOURCE, {"revoked": digest, "reason": reason}),),
    )
    return build_record(decision, context)


def read_revoked(url: str) -> frozenset[str]:
    """Every digest revoked in the decision log at `url`.

    A log that is not there is not one without revocations: the summaries revoked in the log
    the configuration meant (on a volume not mounted, at another path) would count. So a
    missing SQLite file, or a PostgreSQL database without the log's tables, is an error, and
    the log is read without being created or migrated. Nor do the gates that read revocations
    create it with their first decision (their log is opened without `create`): a new, empty
    log would revoke nothing. `trustgate log init` starts one.

    Raises:
        DecisionLogError: the store is not there, or cannot be opened or read; the message
            names it (the verifier shows the message alone).
    """
    from trustgate.decisions.log import open_store
    from trustgate.decisions.store import Filters

    try:
        store = open_store(url, create=False, read_only=True)
    except DecisionLogError as e:
        raise DecisionLogError(
            f"{e.where or url}: {e.message}",
            hint=(f"{e.hint}; " if e.hint else "") + _UNREAD_HINT,
        ) from e
    try:
        revoked: set[str] = set()
        for entry in store.query(Filters(gates=(GATE,)), newest_first=False):
            revoked.update(_revoked_by(entry))
        return frozenset(revoked)
    finally:
        store.close()


_UNREAD_HINT: Final = (
    "until the log the revocations are recorded in can be read, no verification summary counts "
    "(images are verified in full): check decisionLog.url or --decision-log (a wrong path, a "
    "volume not mounted, another database?); `trustgate log init --store URL` starts a new log"
)


def to_carry_over(store: Store, before: str) -> list[tuple[str, str]]:
    """The revocations a prune of the records before `before` removes and no record it keeps
    repeats: (digest, why), each digest once. Revocations live in the log alone, so a prune that
    removed them would let the summaries they revoked count again (found in review: a summary
    revoked, then pruned with the records of its day, admitted again for its maxAgeSeconds), and
    an image's revocation holds for every summary issued later too: they are recorded anew first.

    `before` is a record timestamp (`parse_time`); the prune removes every record up to the newest
    older than it (`Store.prune`).

    Raises:
        DecisionLogError: the store cannot be read.
    """
    from trustgate.decisions.store import Filters

    revocations = list(store.query(Filters(gates=(GATE,)), newest_first=False))
    if not revocations:  # the usual case: no other record is read
        return []
    last = next(store.query(Filters(until=before), limit=1), None)
    if last is None:
        return []
    removed: dict[str, str] = {}
    kept: set[str] = set()
    for entry in revocations:
        if entry.seq > last.seq:
            kept.update(_revoked_by(entry))
            continue
        for digest, reason in _revoked_by(entry).items():
            removed[digest] = f"carried over from revocation {entry.id} of {entry.time}" + (
                f": {reason}" if reason else ""
            )
    return [(digest, why) for digest, why in removed.items() if digest not in kept]


def _revoked_by(entry: Entry) -> dict[str, str]:
    """The digests a revocation record revokes, with the reason it gives."""
    out: dict[str, str] = {}
    for image in entry.record().get("subject", {}).get("images", ()):
        if image.get("source") == SOURCE and isinstance(image.get("digest"), str):
            details = image.get("details")
            reason = details.get("reason") if isinstance(details, dict) else None
            out[image["digest"]] = reason if isinstance(reason, str) else ""
    return out


RETRY_SECONDS: Final = 5.0  # seconds between reads after a failed one (each would cost a request its wait)


class Revocations:
    """The revoked digests, refreshed at most every `refresh_seconds`; thread-safe.

    A failed refresh raises (the verifier then trusts no summary) until a read succeeds; after a
    failure the log is tried again only every `min(refresh_seconds, RETRY_SECONDS)`, that failure
    raised meanwhile, so that a decision log that is down does not cost every admission a timeout.
    """

    def __init__(
        self,
        url: str,
        *,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        reader: Callable[[str], frozenset[str]] = read_revoked,
    ) -> None:
        self.url = url
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._reader = reader
        self._lock = threading.Lock()
        self._revoked: frozenset[str] = frozenset()
        self._read_at: float | None = None
        self._failed: tuple[float, str] | None = None  # the last failed read: when, and why

    def __call__(self) -> frozenset[str]:
        """The revoked digests.

        Raises:
            DecisionLogError: they are due to be read again and cannot be.
        """
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self.refresh_seconds:
                if self._failed is not None:
                    failed_at, message = self._failed
                    wait = min(self.refresh_seconds, RETRY_SECONDS) - (now - failed_at)
                    if wait > 0:
                        raise DecisionLogError(
                            f"{message} (read {now - failed_at:.0f} s ago; tried again in {wait:.0f} s)"
                        )
                try:
                    self._revoked = self._reader(self.url)
                except Error as e:
                    self._failed = (now, e.message)
                    raise
                self._read_at, self._failed = now, None
            return self._revoked
