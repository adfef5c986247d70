"""Recording decisions in the decision log, under its failure policy, for every gate.

Owns: building the record of a decision (with the evidence of the images it
verified), appending it, and applying the decision log's failure policy
(closed: a decision not recorded fails; open: it is noted); recording the
decisions a gate made without evaluating (the webhook's deadline and
internal failures); and the queries a gate asks of the log (pre-sync: an
earlier approval of the same files, where it left its gated ref). Gates (`trustgate.server`,
`trustgate.presync`) reach the decision log only through this module, and
the names of the log they need (`DecisionContext`, `Actor`,
`WriterProcess` for `serve`'s shared writer, ...) are re-exported here.
Leaves out: the log itself (`trustgate.decisions`) and what a failed
record does to an answer already fixed (the webhook's).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
from collections.abc import Iterator

from trustgate.config import DecisionLogSettings
from trustgate.decisions.canonical import CanonicalError
from trustgate.decisions.canonical import content_hash as content_hash
from trustgate.decisions.gated import Vouched as Vouched
from trustgate.decisions.gated import vouched_by
from trustgate.decisions.log import DecisionLog as DecisionLog
from trustgate.decisions.record import Actor as Actor
from trustgate.decisions.record import DecisionContext as DecisionContext
from trustgate.decisions.record import GitIdentity as GitIdentity
from trustgate.decisions.record import ImageEvidence, RecordOptions, RedactionRule, build_record
from trustgate.decisions.writer import WriterProcess as WriterProcess
from trustgate.errors import DecisionLogError, Error
from trustgate.model import Decision, Mode


class Recorder:
    """Appends the decisions of one gate to one decision log.

    Args:
        log: the decision log.
        settings: `decision_log` of the configuration: redaction, inputs kept, failure policy.
    """

    def __init__(self, log: DecisionLog, settings: DecisionLogSettings) -> None:
        self.log = log
        self.settings = settings
        self.options = self.record_options(settings)

    @staticmethod
    def record_options(settings: DecisionLogSettings) -> RecordOptions:
        """How records are built (redaction, inputs kept).

        Raises:
            ConfigError: a redaction path does not parse.
        """
        return RecordOptions(
            redact=tuple(RedactionRule.parse(path, kinds) for path, kinds in settings.redact),
            store_inputs=settings.store_inputs,
            max_input_bytes=settings.max_input_bytes,
        )

    def record(self, decision: Decision, context: DecisionContext | None) -> Decision:
        """One record per decision; a failure follows the failure policy (notes, `record_error`)."""
        if decision.images:  # the verified digests and their evidence, for queries by digest
            verified = tuple(
                ImageEvidence(
                    image.reference,
                    image.digest,
                    "verified" if image.status == "verified" else "resolved" if image.digest else "manifest",
                    image.to_json(),
                )
                for image in decision.images
            )
            base = context or DecisionContext()
            context = dataclasses.replace(base, images=(*base.images, *verified))
        try:
            record = build_record(
                decision, context, options=self.options, record_id=decision.planned_id or None
            )
            decision.record_id = self.log.append(record)
        except (DecisionLogError, CanonicalError) as e:
            reason = e.diagnostics() if isinstance(e, Error) else str(e)
            if self.settings.fail_closed(decision.mode):
                decision.record_error = reason
                decision.notes.append(
                    f"the decision was not recorded in the decision log, so it fails: {reason}"
                )
            else:
                decision.notes.append(
                    f"the decision was NOT recorded in the decision log (failure policy: open): {reason}"
                )
        return decision

    def record_failure(
        self, decision: Decision, context: DecisionContext | None, *, wait: bool = True
    ) -> tuple[str, str]:
        """Append a decision made without evaluating; returns (record id, error): the answer is fixed.

        `wait=False` queues it without waiting for the commit (the deadline has passed): ("", "").
        """
        try:
            if not wait:
                self.log.submit(
                    build_record(decision, context, options=self.options)
                )  # a failure is counted by the log
                return "", ""
            return self.log.append(build_record(decision, context, options=self.options)), ""
        except (DecisionLogError, CanonicalError) as e:
            return "", e.diagnostics() if isinstance(e, Error) else str(e)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[list[concurrent.futures.Future[str]]]:
        """Appends inside do not wait for their commit; the futures of their records are collected."""
        with self.log.deferred() as records:
            yield records

    def last_presync(self, gate: str, ref_scope: str, scope: str) -> str | None:
        """The id of the newest decision of `gate` that let this repository's gated ref be moved (an
        allow or a warn), or None: refusals alone never created the ref, so its absence after them
        is still a first run. A `log prune` carry-over of a refusal (an allow that vouches for no
        commit: `decisions.gated.vouched_by`) let nothing move either.

        `ref_scope` is `subject.presync.refScope`; records written before it was kept are found
        by `scope` (the same repository, gated ref, paths and protected kinds).

        Raises:
            DecisionLogError: the log cannot be read, so whether the gate decided before is unknown.
        """
        from trustgate.decisions.store import Filters

        store = self.log.store
        moved = ("allow", "warn")
        for filters in (
            Filters(gates=(gate,), verdicts=moved, presync_ref=(ref_scope,)),
            Filters(gates=(gate,), verdicts=moved, presync_scope=(scope,)),
        ):
            for entry in store.query(filters):  # newest first; past a carried refusal or two
                if entry.malformed() is None and not vouched_by(entry.record())[0]:
                    continue
                return entry.id
        return None

    def gated_vouched(self, ref_scope: str, scope: str) -> Vouched | None:
        """Where the newest pre-sync record of this gated ref left it (`decisions.gated.newest`):
        the commits the gate vouches the ref may point at, or None when the log holds no record.

        Raises:
            DecisionLogError: the log cannot be read, or that record is altered: where the gate
                left its ref is unknown (the gate fails closed).
        """
        from trustgate.decisions.gated import newest

        return newest(self.log.store, ref_scope, scope)

    def earlier_approval(self, gate: str, scope: str, paths_tree: str, gated: str) -> str | None:
        """The id of a decision of `gate` that approved moving `scope` to `paths_tree` before, or None.

        Counts only a record of this scope that allowed (allow or warn) in enforce mode, whose
        move is confirmed: the gated ref is there now (`gated`), or a later run of this scope
        found it there (the record is written before the move, which may then fail). Records
        without `subject.presync` (older ones) have no index terms for this: they never count.
        A log that cannot be read approves nothing.
        """
        from trustgate.decisions.store import Filters

        try:
            store = self.log.store
            for entry in store.query(
                Filters(gates=(gate,), verdicts=("allow", "warn"), presync_to=(f"{scope}:{paths_tree}",)),
                limit=100,
            ):
                record = entry.record()
                subject = record.get("subject") or {}
                moved_to = subject.get("commit")
                if record.get("mode") != Mode.ENFORCE or not isinstance(moved_to, str):
                    continue  # allowed only because of audit or warn mode: not an approval
                if moved_to == gated:
                    return entry.id
                for later in store.query(
                    Filters(gates=(gate,), presync_from=(f"{scope}:{moved_to}",)), limit=1
                ):
                    if later.seq > entry.seq:
                        return entry.id
        except Error:
            return None
        return None
