"""Acknowledged decisions survive `kill -9` of the writer under load (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from trustgate.decisions.chain import Verifier
from trustgate.decisions.log import DecisionLog, open_store

# What each writer script starts with: a record of thread `t`'s `n`-th decision, 500 bytes padded.
PRELUDE = textwrap.dedent(
    """
    import sys, threading, time
    from pathlib import Path
    from trustgate.decisions.canonical import timestamp, uuid7

    lock = threading.Lock()

    def record(t, n):
        subject = {"objects": [{"namespace": f"ns-{t}", "name": f"pod-{n}"}]}
        return {"id": uuid7(), "time": timestamp(), "gate": "admission", "verdict": "allow",
                "subject": subject, "pad": "x" * 500}

    def say(lines):
        with lock:
            sys.stdout.write("".join(line + "\\n" for line in lines))
            sys.stdout.flush()

    def run(work):
        for t in range(8):
            threading.Thread(target=work, args=(t,), daemon=True).start()
        threading.Event().wait()
    """
)

WRITER = PRELUDE + textwrap.dedent(
    """
    from trustgate.decisions.log import DecisionLog

    log = DecisionLog.open(sys.argv[1])

    def work(t):
        n = 0
        while True:
            n += 1
            say([log.append(record(t, n))])

    run(work)
    """
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'decisions.db'}"
    value: str = request.getfixturevalue("postgres_url")
    return value


def assert_kept(url: str, acknowledged: list[str]) -> set[str]:
    """Every acknowledged decision is in the log and the log verifies; the ids stored."""
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
    return stored


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
    assert "after-restart" in assert_kept(url, acknowledged)


DEFERRED_WRITER = PRELUDE + textwrap.dedent(
    """
    from trustgate.decisions.log import DecisionLog

    log = DecisionLog.open(sys.argv[1])

    def work(t):
        n = 0
        while True:
            batch = []
            with log.deferred() as futures:  # as the webhook's evaluators append: without waiting
                for _ in range(4):
                    n += 1
                    batch.append(log.append(record(t, n)))
            for future in futures:  # as the request threads wait: answered once durable
                future.result()
            say(batch)

    run(work)
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
    assert_kept(url, acknowledged)


WRITER_PROCESS = (
    "import sys; from pathlib import Path; from trustgate.decisions.log import DecisionLog; "
    "from trustgate.decisions.writer import serve_writer; "
    "sys.exit(serve_writer(DecisionLog.open(sys.argv[1]), Path(sys.argv[2])))"
)

WRITER_CLIENT = PRELUDE + textwrap.dedent(
    """
    from trustgate.decisions.writer import WriterClient
    from trustgate.errors import DecisionLogError

    client = WriterClient(path=Path(sys.argv[2]), url=sys.argv[1], wait_seconds=5)

    def work(t):
        n = 0
        while True:
            n += 1
            try:
                line = client.append(record(t, n))
            except DecisionLogError:
                line = "failed"
                time.sleep(0.01)
            say([line])

    run(work)
    """
)


def test_the_writer_process_and_its_clients_killed_lose_no_acknowledged_decision(
    url: str, tmp_path: Path
) -> None:
    """`serve --log-writer process`: kill -9 of the writer, then of a client (a worker): every record
    a client was told is durable is in the log, the chain verifies, and clients fail rather than hang
    while the writer is gone."""
    DecisionLog.open(url).store.close()
    path = tmp_path / "writer.sock"
    script = tmp_path / "client.py"
    script.write_text(WRITER_CLIENT)

    def start_writer() -> subprocess.Popen[bytes]:
        path.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", WRITER_PROCESS, url, str(path)])
        end = time.monotonic() + 60
        while not path.exists():
            assert time.monotonic() < end and proc.poll() is None, "the writer did not start"
            time.sleep(0.01)
        return proc

    lines: list[str] = []

    def collect(proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())

    def acknowledged() -> list[str]:
        return [line for line in list(lines) if line and line != "failed"]

    def wait_for(check: Callable[[], bool], seconds: float = 120) -> None:
        end = time.monotonic() + seconds
        while not check():
            assert time.monotonic() < end, "not within the time allowed"
            time.sleep(0.05)

    writer = start_writer()
    clients = [
        subprocess.Popen([sys.executable, str(script), url, str(path)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    readers = [threading.Thread(target=collect, args=(c,), daemon=True) for c in clients]
    for reader in readers:
        reader.start()
    try:
        wait_for(lambda: len(acknowledged()) >= 500)
        os.kill(writer.pid, signal.SIGKILL)  # in the middle of committing
        writer.wait()
        wait_for(lambda: "failed" in lines, seconds=30)  # the clients fail their records, never hang
        writer = start_writer()  # what `serve`'s supervisor does
        count = len(acknowledged())
        wait_for(lambda: len(acknowledged()) >= count + 500)  # they connect again by themselves
        os.kill(clients[0].pid, signal.SIGKILL)  # a worker killed with records in flight
        count = len(acknowledged())
        wait_for(lambda: len(acknowledged()) >= count + 300)  # the other one goes on
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    finally:
        for proc in (*clients, writer):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        for reader in readers:
            reader.join(timeout=30)
        for client in clients:
            assert client.stdout is not None
            client.stdout.close()
    assert_kept(url, acknowledged())
