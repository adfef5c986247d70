"""`decisions.gated`: where the newest pre-sync record of a gated ref left it, and carrying that
over a prune."""

from __future__ import annotations

from decision_records import record

from trustgate.config import DecisionLogSettings
from trustgate.decisions.gated import to_carry_over, vouched_by
from trustgate.decisions.log import DecisionLog
from trustgate.decisions.store import Filters
from trustgate.gate.recorder import Recorder

REF_SCOPE = "sha256:" + "1" * 64
SCOPE = "sha256:" + "2" * 64
OTHER = "sha256:" + "3" * 64
C1, C2, C3 = "a" * 40, "b" * 40, "c" * 40


def presync_record(
    n: int, presync: dict[str, object], *, commit: str = C2, verdict: str = "allow"
) -> dict[str, object]:
    return record(n, gate="presync", verdict=verdict, subject={"commit": commit, "presync": presync})


def test_a_move_vouches_for_where_it_moved_and_where_it_found_the_ref() -> None:
    found = {"refScope": REF_SCOPE, "gatedBefore": C1}
    assert vouched_by(presync_record(1, found)) == ((C1, C2), C2)
    assert vouched_by(presync_record(1, found, verdict="warn")) == ((C1, C2), C2)
    # A refusal or an error moved nothing: only where it found the ref.
    assert vouched_by(presync_record(1, found, verdict="deny")) == ((C1,), None)
    assert vouched_by(presync_record(1, found, verdict="error")) == ((C1,), None)
    # A first run found nothing; a refused one vouches for nothing.
    assert vouched_by(presync_record(1, {"refScope": REF_SCOPE})) == ((C2,), C2)
    assert vouched_by(presync_record(1, {"refScope": REF_SCOPE}, verdict="deny")) == ((), None)
    # A record naming them (a stop, a carry-over) vouches for those alone, whatever its verdict.
    named = {"refScope": REF_SCOPE, "gatedBefore": C3, "vouched": [C1.upper()]}
    assert vouched_by(presync_record(1, named, verdict="error")) == ((C1,), None)
    assert vouched_by(record(1, gate="presync", subject={"commit": C2})) == ((), None)


def test_only_the_newest_record_of_the_gated_ref_counts(sqlite_url: str) -> None:
    with DecisionLog.open(sqlite_url) as log:
        recorder = Recorder(log, DecisionLogSettings())
        assert recorder.gated_vouched(REF_SCOPE, SCOPE) is None
        log.append(presync_record(1, {"refScope": OTHER, "gatedBefore": C3}))  # another gated ref
        assert recorder.gated_vouched(REF_SCOPE, SCOPE) is None
        moved = log.append(presync_record(2, {"refScope": REF_SCOPE, "gatedBefore": C1}))
        left = recorder.gated_vouched(REF_SCOPE, SCOPE)
        assert left is not None and left.commits == (C1, C2) and left.origin == moved
        stop = {"refScope": REF_SCOPE, "vouched": [C2], "expectedBy": moved}
        stopped = log.append(presync_record(3, stop, commit=C3, verdict="error"))
        left = recorder.gated_vouched(REF_SCOPE, SCOPE)
        assert left is not None and left.commits == (C2,) and left.record_id == stopped
        assert left.origin == moved  # the stop repeats where the move left it


def test_a_record_from_before_ref_scopes_is_found_by_its_scope(sqlite_url: str) -> None:
    with DecisionLog.open(sqlite_url) as log:
        recorder = Recorder(log, DecisionLogSettings())
        log.append(presync_record(1, {"scope": SCOPE, "pathsTree": "t1", "gatedBefore": C1}, verdict="deny"))
        left = recorder.gated_vouched(REF_SCOPE, SCOPE)
        assert left is not None and left.commits == (C1,) and left.moved_to is None


def test_a_prune_carries_over_the_newest_record_of_each_gated_ref_it_removes(store_url: str) -> None:
    with DecisionLog.open(store_url) as log:
        log.append(presync_record(1, {"refScope": REF_SCOPE, "gatedBefore": C3}))
        newest = log.append(presync_record(2, {"refScope": REF_SCOPE, "gatedBefore": C1}))
        refused = log.append(presync_record(3, {"refScope": OTHER}, verdict="deny"))  # vouches for nothing
        store = log.store
        never, carried = to_carry_over(store, "2999-01-01T00:00:00.000000Z")  # newest first
        presync = carried["subject"]["presync"]
        assert presync["refScope"] == REF_SCOPE and presync["vouched"] == [C1, C2]
        assert presync["carriedOver"]["decision"] == newest and "commit" not in carried["subject"]
        assert vouched_by(carried) == ((C1, C2), None)
        # A refused first run is carried as what it is: the gate never created that ref.
        presync = never["subject"]["presync"]
        assert presync["refScope"] == OTHER and presync["vouched"] == []
        assert presync["carriedOver"]["decision"] == refused and vouched_by(never) == ((), None)
        assert "never created it" in never["notes"][0]
        # A record the prune keeps says where the ref was left: nothing to carry.
        log.append(presync_record(4, {"refScope": REF_SCOPE, "gatedBefore": C2}))
        kept = next(store.query(Filters(), limit=1))
        (again,) = to_carry_over(store, kept.time)  # removes records 1 to 3
        assert again["subject"]["presync"]["refScope"] == OTHER


def test_a_carried_refusal_is_no_move_of_the_gated_ref(store_url: str) -> None:
    """A carry-over is an allow that judged nothing: one vouching for no commit (a refused first
    run) must not make a missing gated ref look deleted."""
    with DecisionLog.open(store_url) as log:
        recorder = Recorder(log, DecisionLogSettings())
        log.append(presync_record(1, {"refScope": REF_SCOPE}, verdict="deny"))
        (never,) = to_carry_over(log.store, "2999-01-01T00:00:00.000000Z")
        log.append(never)
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) is None
        left = recorder.gated_vouched(REF_SCOPE, SCOPE)
        assert left is not None and left.commits == ()
        moved = log.append(presync_record(2, {"refScope": REF_SCOPE}))  # a first run that created it
        log.append(presync_record(3, {"refScope": REF_SCOPE, "vouched": []}))  # a carried refusal, say
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) == moved
