"""Acknowledged decisions survive `kill -9` of the writer under load (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trustgate.decisions.chain import Verifier
from trustgate.decisions.log import DecisionLog, open_store

WRITER = textwrap.dedent(
    """
    import sys, threading
    from trustgate.decisions.canonical import timestamp, uuid7
    from trustgate.decisions.log import DecisionLog

    log = DecisionLog.open(sys.argv[1])
    lock = threading.Lock()

    def work(t):
        n = 0
        while True:
            n += 1
            subject = {"objects": [{"namespace": f"ns-{t}", "name": f"pod-{n}"}]}
            record = {"id": uuid7(), "time": timestamp(), "gate": "admission", "verdict": "allow",
                      "subject": subject, "pad": "x" * 500}
            acknowledged = log.append(record)
            with lock:
                sys.stdout.write(acknowledged + "\\n")
                sys.stdout.flush()

    for t in range(8):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()
    """
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'decisions.db'}"
    value: str = request.getfixturevalue("postgres_url")
    return value


def test_every_acknowledged_decision_survives_kill_9(url: str, tmp_path: Path) -> None:
    DecisionLog.open(url).store.close()  # create the tables before the race starts
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE, text=True)
    acknowledged: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while len(acknowledged) < 2000 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acknowledged.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of appending: 8 threads never stop on their own
    rest, _ = proc.communicate()
    acknowledged += [line for line in rest.splitlines() if line]  # printed before the kill
    assert proc.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 2000, "the writer did not get going"

    # "After restart": a new writer opens the same log and carries on.
    with DecisionLog.open(url) as log:
        log.append(
            {"id": "after-restart", "time": "2030-01-01T00:00:00.000000Z", "gate": "ci", "verdict": "allow"}
        )
    store = open_store(url, create=False)
    try:
        with store.snapshot():
            stored = {e.id for e in store.entries()}
            report = Verifier(checkpoints=store.checkpoints()).run(store.entries(), store.index_rows())
    finally:
        store.close()
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged decisions were lost"
    assert "after-restart" in stored
    assert report.ok, report.first_problem


DEFERRED_WRITER = textwrap.dedent(
    """
    import sys, threading
    from trustgate.decisions.canonical import timestamp, uuid7
    from trustgate.decisions.log import DecisionLog

    log = DecisionLog.open(sys.argv[1])
    lock = threading.Lock()

    def work(t):
        n = 0
        while True:
            batch = []
            with log.deferred() as futures:  # as the webhook's evaluators append: without waiting
                for _ in range(4):
                    n += 1
                    subject = {"objects": [{"namespace": f"ns-{t}", "name": f"pod-{n}"}]}
                    record = {"id": uuid7(), "time": timestamp(), "gate": "admission",
                              "verdict": "allow", "subject": subject, "pad": "x" * 500}
                    batch.append(log.append(record))
            for future in futures:  # as the request threads wait: answered once durable
                future.result()
            with lock:
                sys.stdout.write("".join(i + "\\n" for i in batch))
                sys.stdout.flush()

    for t in range(8):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()
    """
)


def test_deferred_appends_from_two_processes_survive_kill_9_in_one_verifiable_log(
    url: str, tmp_path: Path
) -> None:
    """Group commit across the webhook's worker processes: each record acknowledged only once durable."""
    DecisionLog.open(url).store.close()
    script = tmp_path / "writer.py"
    script.write_text(DEFERRED_WRITER)
    procs = [
        subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    acknowledged: list[str] = []
    deadline = time.monotonic() + 120
    for proc in procs:
        assert proc.stdout is not None
        while len(acknowledged) < 1000 * (procs.index(proc) + 1) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged.append(line.strip())
    for proc in procs:
        os.kill(proc.pid, signal.SIGKILL)
    for proc in procs:
        rest, _ = proc.communicate()
        acknowledged += [line for line in rest.splitlines() if line]
        assert proc.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 2000, "the writers did not get going"
    store = open_store(url, create=False)
    try:
        with store.snapshot():
            stored = {e.id for e in store.entries()}
            report = Verifier(checkpoints=store.checkpoints()).run(store.entries(), store.index_rows())
    finally:
        store.close()
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged decisions were lost"
    assert report.ok, report.first_problem
