"""The decision-log writer process and its client (`trustgate.decisions.writer`).

The writer runs as a real process on a real Unix socket; the store is a SQLite file.
"""

from __future__ import annotations

import concurrent.futures
import marshal
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trustgate.decisions.canonical import canonical, timestamp, uuid7
from trustgate.decisions.chain import Verifier
from trustgate.decisions.log import open_store
from trustgate.decisions.record import index_terms
from trustgate.decisions.writer import _APPEND, _LENGTH, WriterClient, _staging
from trustgate.errors import DecisionLogError

WRITER = (
    "import sys; from pathlib import Path; from trustgate.decisions.log import DecisionLog; "
    "from trustgate.decisions.writer import serve_writer; "
    "sys.exit(serve_writer(DecisionLog.open(sys.argv[1]), Path(sys.argv[2])))"
)


SIGNING_WRITER = (
    "import sys; from pathlib import Path; from trustgate.decisions.log import DecisionLog; "
    "from trustgate.decisions.writer import serve_writer; "
    "sys.exit(serve_writer(DecisionLog.open(sys.argv[1], key=sys.argv[3]), Path(sys.argv[2])))"
)


class Writer:
    def __init__(self, url: str, path: Path, key: Path | None = None) -> None:
        self.url, self.path, self.key = url, path, key
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.path.unlink(missing_ok=True)  # left by a writer that was killed
        args = [WRITER, self.url, str(self.path)]
        if self.key is not None:
            args = [SIGNING_WRITER, self.url, str(self.path), str(self.key)]
        self.process = subprocess.Popen([sys.executable, "-c", *args])
        end = time.monotonic() + 30
        while not self.path.exists():
            assert time.monotonic() < end and self.process.poll() is None, "the writer did not start"
            time.sleep(0.01)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)
        if signum in (signal.SIGKILL, signal.SIGTERM):
            self.process.wait(timeout=60)

    def client(self, **kwargs: Any) -> WriterClient:
        return WriterClient(path=self.path, url=self.url, **kwargs)


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    w = Writer(f"sqlite:///{tmp_path / 'decisions.db'}", tmp_path / "writer.sock")
    w.start()
    yield w
    if w.process is not None and w.process.poll() is None:
        w.process.send_signal(signal.SIGCONT)
        w.signal(signal.SIGTERM)


def _record(n: int) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "time": timestamp(),
        "gate": "admission",
        "verdict": "allow",
        "subject": {"uid": f"uid-{n}"},
    }


def _verify(url: str) -> int:
    store = open_store(url, create=False)
    try:
        with store.snapshot():
            report = Verifier(checkpoints=store.checkpoints()).run(store.entries(), store.index_rows())
    finally:
        store.close()
    assert report.ok, report.first_problem
    return report.records


def test_records_of_two_clients_are_acknowledged_once_durable_in_one_chain(writer: Writer) -> None:
    clients = [writer.client(), writer.client()]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda n: clients[n % 2].append(_record(n)), range(400)))
    assert len(set(ids)) == 400
    assert sum(c.appended for c in clients) == 400
    commits = sum(c.commits for c in clients)
    assert 1 <= commits < 400  # each commit counted by one client; records share commits
    for client in clients:
        client.close()
    writer.signal(signal.SIGKILL)  # acknowledged means durable: nothing needed a clean stop
    assert _verify(writer.url) == 400
    store = open_store(writer.url)
    try:
        assert {e.id for e in store.entries()} == set(ids)
    finally:
        store.close()


def test_deferred_appends_return_the_id_and_resolve_after_the_commit(writer: Writer) -> None:
    client = writer.client()
    with client.deferred() as futures:
        record = _record(1)
        assert client.append(record) == record["id"]
    assert [f.result(timeout=30) for f in futures] == [record["id"]]
    client.close()


def test_a_writer_that_is_gone_fails_records_counted_and_the_client_reconnects_when_it_is_back(
    writer: Writer,
) -> None:
    client = writer.client()
    client.append(_record(0))
    writer.signal(signal.SIGKILL)
    with pytest.raises(DecisionLogError, match="writer process"):
        client.append(_record(1))
    with pytest.raises(DecisionLogError, match="cannot be reached"):
        client.append(_record(2))
    assert client.write_failures == 2
    assert client.write_error is not None
    assert client.probe(timeout=5) is not None
    writer.start()  # what a supervisor does
    assert client.probe(timeout=30) is None
    assert client.write_error is None
    client.append(_record(3))
    assert client.appended == 2
    client.close()
    assert _verify(writer.url) == 2


SLOW_LISTEN = (
    "import socket, sys, time; from pathlib import Path; from trustgate.decisions import writer; "
    "from trustgate.decisions.log import DecisionLog\n"
    "class Slow(socket.socket):\n"
    "    def listen(self, *args):\n"
    "        time.sleep(0.5)\n"
    "        super().listen(*args)\n"
    "writer.socket.socket = Slow\n"
    "sys.exit(writer.serve_writer(DecisionLog.open(sys.argv[1]), Path(sys.argv[2])))"
)


def test_the_socket_appears_only_once_the_writer_listens(tmp_path: Path) -> None:
    """A supervisor returns (and clients connect) when the socket file exists; a writer slow between
    bind and listen must not have them refused."""
    path = tmp_path / "writer.sock"
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    process = subprocess.Popen([sys.executable, "-c", SLOW_LISTEN, url, str(path)])
    try:
        end = time.monotonic() + 30
        while not path.exists():
            assert time.monotonic() < end and process.poll() is None, "the writer did not start"
            time.sleep(0.001)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(str(path))  # refused if the file appeared at bind
        client = WriterClient(path=path, url=url)
        assert client.probe(timeout=30) is None
        client.append(_record(0))
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("writer")) == []
    assert _verify(url) == 1


def test_a_socket_path_at_the_length_limit_still_binds(tmp_path: Path) -> None:
    """The writer binds under a staging name before it listens; that name is no longer than the path,
    so a path Unix sockets just allow (107 bytes) still works."""
    directory = tmp_path / ("d" * max(1, 100 - len(str(tmp_path)) - 1))
    directory.mkdir()
    path = directory / "writer.sock"
    path = path.with_name("w" * (107 - len(str(path)) + len("writer.sock") - 5) + ".sock")
    assert len(str(path).encode()) == 107
    assert len(str(_staging(path))) == len(str(path)) and _staging(path) != path
    writer = Writer(f"sqlite:///{tmp_path / 'decisions.db'}", path)
    writer.start()
    try:
        client = writer.client()
        client.append(_record(0))
        client.close()
    finally:
        writer.signal(signal.SIGTERM)
    assert not path.exists() and not _staging(path).exists()


def test_a_stopping_writer_leaves_a_newer_writers_socket_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    old = Writer(url, tmp_path / "writer.sock")
    old.start()
    first = os.stat(old.path).st_ino
    new = subprocess.Popen([sys.executable, "-c", WRITER, url, str(old.path)])  # takes the path over
    try:
        end = time.monotonic() + 30
        while os.stat(old.path).st_ino == first:
            assert time.monotonic() < end and new.poll() is None, "the second writer did not start"
            time.sleep(0.01)
        old.signal(signal.SIGTERM)
        assert old.path.exists()  # the old writer did not remove the new one's socket
        client = old.client()
        client.append(_record(0))  # the new writer answers there
        client.close()
    finally:
        new.send_signal(signal.SIGTERM)
        new.wait(timeout=60)
    assert not old.path.exists()  # the new one removed its own


def test_a_hung_writer_fails_records_within_the_wait_and_expire_drops_it(writer: Writer) -> None:
    client = writer.client(wait_seconds=0.5)
    client.append(_record(0))
    writer.signal(signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(DecisionLogError, match=r"did not commit within 0\.5 s"):
        client.append(_record(1))
    assert time.monotonic() - started < 5
    assert client.write_error is None  # not yet given up on: the next look decides
    assert client.expire() is True
    end = time.monotonic() + 10
    while client.write_error is None:
        assert time.monotonic() < end
        time.sleep(0.01)
    assert "did not acknowledge a record" in client.write_error.message
    assert client.write_failures == 1
    writer.signal(signal.SIGCONT)
    assert client.probe(timeout=30) is None
    client.append(_record(2))
    client.close()
    _verify(writer.url)  # record 1 reached the writer: committed or not, the chain is whole


def test_a_record_that_cannot_be_encoded_fails_in_the_client_and_is_counted(writer: Writer) -> None:
    client = writer.client()
    bad = _record(0) | {"size": float("nan")}  # no JSON number for it
    with pytest.raises(DecisionLogError, match="canonical JSON"):
        client.append(bad)
    assert client.write_failures == 1
    client.close()


def test_index_terms_reach_the_writer_as_the_client_made_them(writer: Writer) -> None:
    """The head of an append (id, time, gate, verdict, terms) travels marshalled, the record's bytes
    as they are: values holding separators, NUL, quotes and non-ASCII arrive unchanged."""
    odd = ["shop\x00\x1b\x1e\x1fx", 'q"u\\o\nte', "caf\u00e9-\U0001f600", ""]
    record = _record(0) | {
        "subject": {"objects": [{"namespace": ns} for ns in odd]},
        "actor": {"user": {"username": "alice\x1f@example.com"}},
    }
    client = writer.client()
    assert client.append(record) == record["id"]
    client.close()
    store = open_store(writer.url, create=False)
    try:
        rows = store._execute("SELECT kind, value FROM terms ORDER BY kind, value")
        (entry,) = list(store.entries())
    finally:
        store.close()
    assert sorted(rows) == sorted(index_terms(record))
    assert entry.body == canonical(record)
    assert _verify(writer.url) == 1


def test_a_malformed_append_is_refused_and_the_connection_serves_on(writer: Writer) -> None:
    client = writer.client()
    client.append(_record(0))
    for payload in (b"", b"\x00\x00\x00\x05junk!", _LENGTH.pack(3) + marshal.dumps((1, 2, 3))[:3]):
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        client._request(_APPEND, payload, future)
        with pytest.raises(DecisionLogError, match="malformed record"):
            future.result(timeout=30)
    head = marshal.dumps(("id", "t", "admission", "allow", (("namespace", 5),)))  # not a string
    future = concurrent.futures.Future()
    client._request(_APPEND, _LENGTH.pack(len(head)) + head + b"{}", future)
    with pytest.raises(DecisionLogError, match="malformed"):
        future.result(timeout=30)
    client.append(_record(1))  # same connection
    client.close()
    assert _verify(writer.url) == 2


def test_checkpoints_are_the_writers(writer: Writer) -> None:
    client = writer.client()
    with pytest.raises(DecisionLogError, match="signed by the decision log writer"):
        client.checkpoint()
    assert client.take_problems() == []
    client.close()
    assert os.path.exists(writer.path)


def test_get_checkpoint_of_a_worker_answers_503_when_the_writers_checkpoints_were_deleted(
    tmp_path: Path,
) -> None:
    """A worker's `GET /checkpoint` reads the database; the writer process signs. Deleting the
    checkpoint rows must not roll the served checkpoint back (or make it vanish) unnoticed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from trustgate.decisions.keys import read_signer
    from trustgate.server.http import checkpoint as get_checkpoint
    from trustgate.server.metrics import Metrics

    key = tmp_path / "log-key.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    signing = Writer(f"sqlite:///{tmp_path / 'decisions.db'}", tmp_path / "writer.sock", key)
    signing.start()
    try:
        client = signing.client(signer=read_signer(key))
        client.append(_record(1))  # the writer's first commit signs a checkpoint of it
        assert client.take_problems() == []  # and the client learns what the writer signed

        class State:
            decision_log = client
            metrics = Metrics(1)

        status, body, _ = get_checkpoint(State)  # type: ignore[arg-type]
        assert status == 200 and body.decode().split("\n")[1] == "1"
        store = open_store(signing.url)
        try:
            with store._write():
                store._execute("DELETE FROM checkpoints")
        finally:
            store.close()
        status, body, _ = get_checkpoint(State)  # type: ignore[arg-type]
        assert status == 503
        assert "the newest stored checkpoint covers 0 records, but this log's writer signed one of 1" in (
            body.decode()
        )
        assert any("deleted the newer checkpoints" in p.message for p in client.take_problems())
        assert 'checkpoint_unavailable_total{reason="rolled_back"} 1\n' in State.metrics.render()
        client.close()
    finally:
        signing.signal(signal.SIGTERM)


def test_a_request_failed_before_its_frame_is_written_is_never_sent(writer: Writer) -> None:
    """Frames queue while another thread writes; one whose request failed meanwhile (its connection
    was lost) is dropped, so the writer never commits a record its caller was told had failed."""
    client = writer.client()
    client.append(_record(0))  # connected
    ours, theirs = socket.socketpair()
    with client._send_lock:
        real, client._sock = client._sock, ours
    try:
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        client._request(_APPEND, b"kept", future)  # waiting: written
        with client._pending_lock:
            client._pending.append((10**9, b"failed"))  # no longer waiting: dropped
            client._sending = False
        client._request(_APPEND, b"also kept", concurrent.futures.Future())
        theirs.settimeout(5)
        received = b""
        while received.count(b"kept") < 2:
            received += theirs.recv(4096)
        assert b"failed" not in received
    finally:
        with client._send_lock:
            client._sock = real
        ours.close()
        theirs.close()
        with client._waiting_lock:
            unanswered = set(client._waiting)  # the two sent to the socket pair, not to the writer
        client._fail(unanswered, DecisionLogError("not sent to the writer"))
    client.close()
