"""`Recorder.last_presync`: whether the log holds a pre-sync decision on a repository and gated ref."""

from __future__ import annotations

from decision_records import record

from trustgate.config import DecisionLogSettings
from trustgate.decisions.log import DecisionLog
from trustgate.gate.recorder import Recorder

REF_SCOPE = "sha256:" + "1" * 64
SCOPE = "sha256:" + "2" * 64
OTHER = "sha256:" + "3" * 64


def presync_record(
    n: int, presync: dict[str, object], *, gate: str = "presync", verdict: str = "allow"
) -> dict[str, object]:
    return record(n, gate=gate, verdict=verdict, subject={"commit": f"{n:040x}", "presync": presync})


def test_a_decision_on_the_gated_ref_is_found_by_its_ref_scope_whatever_the_paths(sqlite_url: str) -> None:
    with DecisionLog.open(sqlite_url) as log:
        recorder = Recorder(log, DecisionLogSettings())
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) is None
        log.append(presync_record(1, {"scope": OTHER, "refScope": OTHER, "pathsTree": "t1"}))
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) is None  # another gated ref
        log.append(presync_record(2, {"scope": SCOPE, "refScope": REF_SCOPE}, gate="ci"))
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) is None  # another gate
        first = log.append(presync_record(3, {"scope": OTHER, "refScope": REF_SCOPE, "pathsTree": "t3"}))
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) == first  # other paths, same ref
        newest = log.append(presync_record(4, {"scope": SCOPE, "refScope": REF_SCOPE, "pathsTree": "t4"}))
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) == newest
        # A refusal moved nothing: the newest decision that let the ref move is still the answer.
        log.append(
            presync_record(5, {"scope": SCOPE, "refScope": REF_SCOPE, "pathsTree": "t5"}, verdict="deny")
        )
        log.append(presync_record(6, {"scope": SCOPE, "refScope": REF_SCOPE}, verdict="error"))
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) == newest
        warned = log.append(presync_record(7, {"scope": SCOPE, "refScope": REF_SCOPE}, verdict="warn"))
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) == warned


def test_refusals_alone_are_no_decision_that_moved_the_ref(sqlite_url: str) -> None:
    with DecisionLog.open(sqlite_url) as log:
        recorder = Recorder(log, DecisionLogSettings())
        log.append(presync_record(1, {"scope": SCOPE, "refScope": REF_SCOPE}, verdict="deny"))
        log.append(presync_record(2, {"scope": SCOPE, "pathsTree": "t2"}, verdict="deny"))
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) is None


def test_a_decision_written_before_ref_scopes_is_found_by_its_scope(sqlite_url: str) -> None:
    with DecisionLog.open(sqlite_url) as log:
        recorder = Recorder(log, DecisionLogSettings())
        log.append(presync_record(1, {"scope": SCOPE + "0", "pathsTree": "t1"}))  # a longer scope
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) is None
        older = log.append(presync_record(2, {"scope": SCOPE, "pathsTree": "t2"}))
        assert recorder.last_presync("presync", REF_SCOPE, SCOPE) == older
