"""Where the decision log says a pre-sync gate left its gated ref: the commits it vouches for.

Owns: reading, from one pre-sync record, the commits the gated ref may point at after that
run (`vouched_by`), finding the newest such record of a gated ref (`newest`), and carrying
that record over a prune (`to_carry_over`, `carried_record`): removed, the gate would no
longer know where it left the ref, and a ref someone else moved would be judged onward from.

The gate writes its record *before* it moves the ref, and a move may then fail (a lost
compare-and-swap, a rejected push). So a record that let the ref move (`allow` or `warn`)
vouches for the commit it moved to and for the one it found (`gatedBefore`, checked by that
run); one that did not (a refusal, an error) vouches for the one it found only. A record that
names the commits itself (`subject.presync.vouched`: the gate's stop on a ref moved by
someone else, a carry-over) vouches for those. Only the newest record of a gated ref counts:
a commit vouched for once and since moved on from is no place the gate left the ref.

Leaves out: what the gate does with them (`trustgate.presync.runner`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from trustgate.errors import DecisionLogError
from trustgate.model import Decision, Mode

if TYPE_CHECKING:
    from trustgate.decisions.chain import Entry
    from trustgate.decisions.log import Store

GATE: Final = "presync"
MOVED: Final = ("allow", "warn")  # verdicts under which the gate moves its ref (exit 0)


@dataclass(frozen=True, slots=True)
class Vouched:
    """The newest record of a gated ref, and the commits it vouches for (maybe none)."""

    record_id: str
    time: str
    commits: tuple[str, ...]
    moved_to: str | None  # the commit the record let the ref move to, if it did
    # Where a change is judged from while the ref is at another commit the record vouches for: the
    # commit the record moved it on to (the cluster may hold it; the move may have failed, or the
    # ref been put back one step), or the one it judged from itself for that reason (`judge_from`).
    judge_from: str | None
    origin: str  # the decision that left the ref there (a stop or a carry-over names the one it repeats)


def vouched_by(record: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None]:
    """The commits a pre-sync record vouches its gated ref may point at after its run, and the
    commit it let the ref move to (None when it moved nothing).

    `subject.presync.vouched`, when the record names them; else the commit found
    (`gatedBefore`) and, under `allow`/`warn`, the commit moved to (`subject.commit`).
    """
    subject = record.get("subject") or {}
    presync = subject.get("presync") if isinstance(subject, Mapping) else None
    if not isinstance(presync, Mapping):
        return (), None
    named = presync.get("vouched")
    if isinstance(named, list):
        return tuple(c.lower() for c in named if isinstance(c, str) and c), None
    out: list[str] = []
    before = presync.get("gatedBefore")
    if isinstance(before, str) and before:
        out.append(before.lower())
    moved_to = subject.get("commit") if record.get("verdict") in MOVED else None
    if isinstance(moved_to, str) and moved_to:
        out.append(moved_to.lower())
        return tuple(dict.fromkeys(out)), moved_to.lower()
    return tuple(out), None


def judge_from(record: Mapping[str, Any]) -> str | None:
    """The commit a change is judged from when the gated ref is at another commit `record` vouches
    for: the one it let the ref move to, else the one it judged from itself
    (`subject.presync.judgedFrom`: it found the ref one step back from a move, as a stop or a
    carry-over repeats it); None when neither."""
    moved_to = vouched_by(record)[1]
    if moved_to is not None:
        return moved_to
    presync = (record.get("subject") or {}).get("presync")
    judged = presync.get("judgedFrom") if isinstance(presync, Mapping) else None
    return judged.lower() if isinstance(judged, str) and judged else None


def newest(store: Store, ref_scope: str, scope: str) -> Vouched | None:
    """The newest pre-sync record of this gated ref (`refScope`; records written before it was
    kept are found by `scope`), with what it vouches for; None when the log holds none.

    Raises:
        DecisionLogError: the log cannot be read, or that record is not one (an altered row): where
            the gate left its ref is then unknown.
    """
    from trustgate.decisions.store import Filters

    for filters in (
        Filters(gates=(GATE,), presync_ref=(ref_scope,)),
        Filters(gates=(GATE,), presync_scope=(scope,)),
    ):
        for entry in store.query(filters, limit=1):
            return _vouched(entry)
    return None


def _vouched(entry: Entry) -> Vouched:
    why = entry.malformed()
    if why is not None:
        raise DecisionLogError(
            f"decision #{entry.seq} ({entry.id}), the newest of this gated ref, is no decision record: {why}",
            hint="run `trustgate log verify`: where the gate left its gated ref is unknown until it passes",
        )
    record = entry.record()
    commits, moved_to = vouched_by(record)
    presync = (record.get("subject") or {}).get("presync") or {}
    carried = presync.get("carriedOver")
    origin = presync.get("expectedBy") or (carried.get("decision") if isinstance(carried, Mapping) else None)
    return Vouched(
        entry.id,
        entry.time,
        commits,
        moved_to,
        judge_from(record),
        origin if isinstance(origin, str) else entry.id,
    )


def to_carry_over(store: Store, before: str) -> list[dict[str, Any]]:
    """Records to append before a prune of the records before `before`: for each gated ref whose
    newest record the prune removes (and no record it keeps is of), that record carried over
    (`carried_record`), when it vouches for a commit.

    Without them the gate would find no record of where it left the ref: a ref someone else moved
    would be judged onward from, unflagged, and a deleted one taken for a first run. A record
    vouching for nothing (a refused first run, which never created the ref) is carried too, as
    vouching for nothing: without it a gated ref made by hand after the prune would be taken as
    found (judged onward from, its commits never judged) where before the prune it was flagged.
    Records written before `refScope` was kept are not carried.

    Raises:
        DecisionLogError: the store cannot be read.
    """
    from trustgate.decisions.store import Filters

    last = next(store.query(Filters(until=before), limit=1), None)
    if last is None:
        return []
    newest_removed: dict[str, Entry] = {}
    for entry in store.query(Filters(gates=(GATE,), below=last.seq + 1)):  # newest first
        if entry.malformed() is not None:
            continue  # an altered row: prune refuses the log (`Store.prune`) before it matters
        presync = (entry.record().get("subject") or {}).get("presync")
        ref_scope = presync.get("refScope") if isinstance(presync, Mapping) else None
        if isinstance(ref_scope, str) and ref_scope and ref_scope.lower() not in newest_removed:
            newest_removed[ref_scope.lower()] = entry
    out = []
    for ref_scope, entry in newest_removed.items():
        if next(store.query(Filters(gates=(GATE,), presync_ref=(ref_scope,), above=last.seq), limit=1), None):
            continue  # a record the prune keeps says where the ref was left
        record = entry.record()
        out.append(carried_record(record, entry, vouched_by(record)[0]))
    return out


def carried_record(record: Mapping[str, Any], entry: Entry, commits: tuple[str, ...]) -> dict[str, Any]:
    """A record repeating where the pre-sync record `record` (stored as `entry`) left its gated ref:
    `subject.presync.vouched` names the commits (none: the gate never created the ref),
    `carriedOver` the record and its time. It is of the
    same repository, ref and gated ref (`refScope`), and judges nothing (verdict allow, no results,
    no commit: no rollback borrows it, no query by commit finds it)."""
    from trustgate.decisions.record import Actor, DecisionContext, build_record

    subject = record.get("subject") or {}
    presync = subject.get("presync") or {}
    gated_ref = presync.get("gatedRef") if isinstance(presync.get("gatedRef"), str) else "?"
    left = (
        f"{gated_ref} at {', '.join(c[:12] for c in commits)} (the commits it vouches for); a later run "
        "that finds the ref elsewhere stops"
        if commits
        else f"{gated_ref} nowhere (it never created it); a later run that finds the ref stops"
    )
    decision = Decision(
        gate=GATE,
        mode=Mode.ENFORCE,
        results=[],
        notes=[f"carried over by `log prune` from decision {entry.id} of {entry.time}: the gate left {left}"],
    )
    context = DecisionContext(
        actor=Actor(),
        repository=subject.get("repository") if isinstance(subject.get("repository"), str) else None,
        ref=subject.get("ref") if isinstance(subject.get("ref"), str) else None,
        presync={
            "gatedRef": gated_ref,
            "refScope": presync["refScope"],
            "vouched": list(commits),
            "carriedOver": {"decision": entry.id, "time": entry.time},
            **({"judgedFrom": judged} if (judged := judge_from(record)) else {}),
        },
    )
    return build_record(decision, context)
