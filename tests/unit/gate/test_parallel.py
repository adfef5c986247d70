"""`--jobs`: forked workers and this process share the units; the results are those of one process."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from trustgate.errors import InputError
from trustgate.gate import parallel
from trustgate.manifests.loader import Unit
from trustgate.model import DocumentResult, Finding, Severity, Source

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")


@pytest.fixture(autouse=True)
def _parallel_for_any_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)  # in-memory units: no bytes on disk


def units(n: int) -> list[Unit]:
    return [Unit(f"u{i:03}.yaml", "stdin", f"{i}".encode()) for i in range(n)]


def evaluate(unit: Unit) -> list[DocumentResult]:
    """Two results per unit, the second with a finding; u013 cannot be evaluated."""
    if unit.path == "u013.yaml":
        raise InputError("cannot render", where=unit.path)
    finding = Finding(rule="r", severity=Severity.WARNING, message=f"in {unit.path}", source="policy")
    return [
        DocumentResult(Source(unit.path, 0, 1), "v1", "ConfigMap", "ns", unit.path, []),
        DocumentResult(Source(unit.path, 1, 5), "v1", "Secret", "ns", unit.path, [finding]),
    ]


def as_json(results: list[DocumentResult]) -> list[object]:
    return [r.to_json() for r in results]


@pytest.mark.parametrize("jobs", [2, 3])
def test_results_are_those_of_one_process_in_unit_order(jobs: int) -> None:
    given = units(300)
    sequential = parallel.run_units(given, evaluate, jobs=1)
    assert len(sequential) == 2 * 299 + 1
    (error,) = [r for r in sequential if r.source.file == "u013.yaml"]  # reported, the others go on
    assert [(f.rule, f.source) for f in error.findings] == [("input/error", "input")]
    assert as_json(parallel.run_units(given, evaluate, jobs=jobs)) == as_json(sequential)


def test_workers_do_their_share(tmp_path: Path) -> None:
    parent = os.getpid()

    def slow(unit: Unit) -> list[DocumentResult]:
        time.sleep(0.002)
        (tmp_path / str(os.getpid())).touch()
        return evaluate(unit)

    results = parallel.run_units(units(200), slow, jobs=3)
    assert len(results) == 399
    assert len({p.name for p in tmp_path.iterdir()} - {str(parent)}) == 2


def test_a_killed_worker_loses_nothing(tmp_path: Path) -> None:
    parent = os.getpid()

    def dies_in_a_worker(unit: Unit) -> list[DocumentResult]:
        if os.getpid() != parent:
            (tmp_path / "died").touch()
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
        time.sleep(0.002)  # leave the worker time to take a chunk
        return evaluate(unit)

    results = parallel.run_units(units(120), dies_in_a_worker, jobs=2)
    assert (tmp_path / "died").exists()  # the worker did take a chunk, and died in it
    assert as_json(results) == as_json(parallel.run_units(units(120), evaluate, jobs=1))


def test_a_bug_raises_in_the_parent_as_with_one_process() -> None:
    def bug(unit: Unit) -> list[DocumentResult]:
        if unit.path == "u100.yaml":
            raise KeyError("a bug, not an Error")
        time.sleep(0.001)
        return evaluate(unit)

    with pytest.raises(KeyError, match="a bug"):
        parallel.run_units(units(150), bug, jobs=1)
    with pytest.raises(KeyError, match="a bug"):
        parallel.run_units(units(150), bug, jobs=2)


def test_small_inputs_stay_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 1 << 30)

    def forbidden(*args: object) -> list[DocumentResult]:
        raise AssertionError("no workers for a small input")

    monkeypatch.setattr(parallel, "_run_parallel", forbidden)
    assert len(parallel.run_units(units(50), evaluate, jobs=2)) == 99


def test_more_jobs_than_units_forks_one_worker_per_chunk_at_most(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    started: list[int] = []
    start = multiprocessing.get_context("fork").Process.start

    def counted(self: multiprocessing.Process) -> None:
        started.append(1)
        start(self)

    monkeypatch.setattr(multiprocessing.get_context("fork").Process, "start", counted)
    given = units(10)
    assert as_json(parallel.run_units(given, evaluate, jobs=32)) == as_json(
        parallel.run_units(given, evaluate, jobs=1)
    )
    assert len(started) == 9  # ten chunks of one unit: this process and nine workers
