"""`trustgate serve` and its decision log (issue 14 items 4 and 5, issue 21): group commit, nothing
dropped silently, checkpoint problems reported, `GET /checkpoint`, replicas sharing PostgreSQL, and
the log writer process shared by the workers (killed, hung).

Every test runs against a real `trustgate serve` process over real HTTPS on 127.0.0.1, once with a
writer thread in each worker and once with one writer process (`--log-writer`).
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from support.webhook import POD, TRUSTGATE, CertSet, Server, make_certs, review, start_server

from trustgate.decisions.chain import CheckpointSigner
from trustgate.decisions.note import open_checkpoint

NOT_RECORDED = "could not be recorded in the decision log"


@pytest.fixture(autouse=True, params=["thread", "process"])
def log_writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Who commits in the servers this test starts (`serve --log-writer`, through its variable)."""
    mode: str = request.param
    monkeypatch.setenv("TRUSTGATE_LOG_WRITER", mode)
    return mode


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _key(directory: Path) -> Path:
    key = directory / "decision-log.pem"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return key


def _config(directory: Path, decision_log: str) -> Path:
    config = directory / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\ndecisionLog:\n"
        + "".join(f"  {line}\n" for line in decision_log.strip().splitlines())
    )
    return config


def _answer(srv: Server, uid: str) -> dict[str, Any]:
    status, answer = srv.post(review(POD, uid=uid))
    assert status == 200, answer
    response: dict[str, Any] = answer["response"]
    return response


def _metric(srv: Server, name: str) -> float:
    status, text = srv.health("/metrics")
    assert status == 200
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def _eventually(check: Callable[[], bool], seconds: float = 15.0) -> None:
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, "not within the time allowed"
        time.sleep(0.1)


def _lines(srv: Server, text: str) -> list[str]:
    return [line for line in srv.stderr if text in line]


def _records(db: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT record FROM decisions").fetchall()
    out = {}
    for (raw,) in rows:
        record = json.loads(raw)
        out[record["subject"]["uid"]] = record
    return out


# --- nothing dropped silently (issue 14 item 5) -------------------------------------------------


def test_unwritable_log_with_failure_policy_open_is_counted_logged_once_and_warned(
    certs: CertSet, tmp_path: Path
) -> None:
    config = _config(tmp_path, "failurePolicy: open")
    url = f"sqlite:///{tmp_path / 'missing' / 'decisions.db'}"  # its directory does not exist
    srv = start_server(certs, "-c", str(config), "--decision-log", url, workers=1)
    try:
        answers = [_answer(srv, f"uid-open-{i}") for i in range(3)]
        for answer in answers:
            assert answer["allowed"] is True
            assert any("NOT recorded in the decision log" in w for w in answer["warnings"]), answer
            assert answer["auditAnnotations"]["record"] == "not recorded"
        _eventually(lambda: _metric(srv, "trustgate_decision_log_write_failures_total") == 3)
        _eventually(lambda: bool(_lines(srv, NOT_RECORDED)))
        time.sleep(1.0)
        lines = _lines(srv, NOT_RECORDED)
        assert len(lines) == 1, lines  # once per interval, not once per request
        assert "failure policy open" in lines[0] and "does not exist" in lines[0]
        status, why = srv.health("/readyz")
        assert status == 200, why  # open: the webhook keeps answering
    finally:
        srv.stop()


def test_unwritable_log_with_failure_policy_closed_denies_turns_unready_and_recovers(
    certs: CertSet, tmp_path: Path
) -> None:
    directory = tmp_path / "later"
    db = directory / "decisions.db"
    srv = start_server(certs, "--decision-log", f"sqlite:///{db}", workers=2)  # enforce: closed
    try:
        answer = _answer(srv, "uid-closed-1")
        assert answer["allowed"] is False
        assert "could not be recorded" in answer["status"]["message"]
        _eventually(lambda: srv.health("/readyz")[0] == 503)
        _status, why = srv.health("/readyz")
        assert "the decision log cannot be written" in why and "does not exist" in why, why
        assert srv.get("/readyz")[0] == 503  # the admission port says the same
        _eventually(lambda: _metric(srv, "trustgate_decision_log_write_failures_total") >= 1)
        assert _metric(srv, "trustgate_decision_log_unwritable_workers") >= 1
        assert any("failure policy closed" in line for line in _lines(srv, NOT_RECORDED))
        directory.mkdir()  # the log can be written again: the probe puts the worker back in service
        _eventually(lambda: srv.health("/readyz")[0] == 200)
        assert _lines(srv, "can be written again")
        for i in range(4):  # whichever worker answers
            assert _answer(srv, f"uid-closed-after-{i}")["allowed"] is True
    finally:
        srv.stop()
    assert {f"uid-closed-after-{i}" for i in range(4)} <= set(_records(db))


@pytest.mark.parametrize(
    ("prepare", "metric", "message"),
    [
        (  # a published checkpoint that is not a signed note: the writer refuses to sign
            lambda d: (d / "checkpoint").write_text("not a checkpoint\n"),
            "trustgate_decision_log_checkpoints_refused_total",
            "refusing to sign a checkpoint",
        ),
        (  # another checkpoint of the same size is already published: a fork, not overwritten
            lambda d: (d / "checkpoint.1").write_text("another tree\n"),
            "trustgate_decision_log_publish_failures_total",
            "a different checkpoint of 1 records",
        ),
    ],
    ids=["refused", "publish-failure"],
)
def test_checkpoint_problems_are_logged_and_counted(
    certs: CertSet, tmp_path: Path, prepare: Callable[[Path], object], metric: str, message: str
) -> None:
    published = tmp_path / "published"
    published.mkdir()
    prepare(published)
    key = _key(tmp_path)
    config = _config(tmp_path, f"checkpoint:\n  key: {key}\n  publish:\n    dir: {published}")
    srv = start_server(
        certs, "-c", str(config), "--decision-log", f"sqlite:///{tmp_path / 'd.db'}", workers=1
    )
    try:
        assert _answer(srv, "uid-checkpoint-problem")["allowed"] is True  # the decision stands
        _eventually(lambda: _metric(srv, metric) == 1)
        _eventually(lambda: bool(_lines(srv, message)))
    finally:
        srv.stop()


# --- GET /checkpoint (issue 21) -------------------------------------------------------------------


def test_checkpoint_endpoint_serves_the_latest_signed_checkpoint_on_both_ports(
    certs: CertSet, tmp_path: Path
) -> None:
    key = _key(tmp_path)
    config = _config(tmp_path, f"checkpoint:\n  key: {key}")
    srv = start_server(
        certs, "-c", str(config), "--decision-log", f"sqlite:///{tmp_path / 'd.db'}", workers=2
    )
    try:
        status, why = srv.health("/checkpoint")
        assert status == 404 and "no signed checkpoint yet" in why  # nothing recorded yet
        assert _answer(srv, "uid-checkpointed")["allowed"] is True  # the first commit signs one
        verifier = CheckpointSigner.from_file(key).note_verifier()
        for status, note in (srv.health("/checkpoint"), srv.get("/checkpoint")):
            assert status == 200, note
            assert open_checkpoint(note, verifier).size == 1
        conn = srv.connection()  # the admission port
        conn.request("GET", "/checkpoint")
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.getheader("Content-Type") == "text/plain; charset=utf-8"
    finally:
        srv.stop()


def _unavailable(srv: Server, reason: str) -> float:
    return _metric(
        srv, re.escape(f'trustgate_decision_log_checkpoint_unavailable_total{{reason="{reason}"}}')
    )


def test_a_checkpoint_endpoint_503_is_counted_in_metrics_by_reason(certs: CertSet, tmp_path: Path) -> None:
    """`GET /checkpoint` answering 503 (newer checkpoints deleted, or the log unreadable) was on stderr
    at most; a monitor of /metrics saw nothing."""
    key = _key(tmp_path)
    db = tmp_path / "d.db"
    config = _config(tmp_path, f"checkpoint:\n  key: {key}")
    srv = start_server(certs, "-c", str(config), "--decision-log", f"sqlite:///{db}", workers=1)
    try:
        assert _answer(srv, "uid-checkpointed")["allowed"] is True  # the first commit signs one
        assert srv.get("/checkpoint")[0] == 200
        assert _unavailable(srv, "rolled_back") == 0 and _unavailable(srv, "unreadable") == 0
        with sqlite3.connect(db) as conn:  # whoever runs the database deletes the checkpoints
            conn.execute("DELETE FROM checkpoints")
        # A worker of a writer process learns what it signed at its next poll (404 until then).
        answers: list[tuple[int, str]] = []
        _eventually(lambda: answers.append(srv.get("/checkpoint")) or answers[-1][0] == 503)
        answers.append(srv.health("/checkpoint"))
        refused = [why for status, why in answers if status == 503]
        assert all("this log's writer signed one of 1" in why for why in refused)
        assert len(refused) >= 2 and {status for status, _ in answers} <= {404, 503}
        assert _unavailable(srv, "rolled_back") == len(refused) and _unavailable(srv, "unreadable") == 0
        with sqlite3.connect(db) as conn:  # and then the table
            conn.execute("DROP TABLE checkpoints")
        status, why = srv.get("/checkpoint")
        assert status == 503 and "the decision log cannot be read" in why
        assert _unavailable(srv, "unreadable") == 1 and _unavailable(srv, "rolled_back") == len(refused)
    finally:
        srv.stop()


def test_checkpoint_endpoint_without_a_log_is_404_with_the_reason(certs: CertSet) -> None:
    srv = start_server(certs, workers=1)
    try:
        for status, why in (srv.health("/checkpoint"), srv.get("/checkpoint")):
            assert status == 404 and "no decision log is configured" in why
    finally:
        srv.stop()


# --- group commit (issue 14 item 4) ----------------------------------------------------------------


def test_records_of_requests_in_flight_share_one_commit(certs: CertSet, tmp_path: Path) -> None:
    db = tmp_path / "decisions.db"
    srv = start_server(certs, "--decision-log", f"sqlite:///{db}", "--evaluators", "1", workers=1)
    try:
        assert _answer(srv, "uid-first")["allowed"] is True  # the log exists, with one record
        _eventually(lambda: _metric(srv, "trustgate_decision_log_commits_total") == 1)
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer's long transaction: commits must wait
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = pool.map(lambda i: _answer(srv, f"uid-batch-{i}"), range(20))
            time.sleep(1.5)
            holder.execute("COMMIT")
            assert all(a["allowed"] is True and a["auditAnnotations"]["record"] for a in answers)
        holder.close()
        _eventually(lambda: _metric(srv, "trustgate_decision_log_records_total") == 21)
        # One evaluator decided them all while the first commit waited; their records did not each
        # wait for a commit of their own.
        assert _metric(srv, "trustgate_decision_log_commits_total") <= 5
    finally:
        srv.stop()
    assert {f"uid-batch-{i}" for i in range(20)} <= set(_records(db))


def test_an_answer_waits_for_its_record_and_a_late_one_follows_the_failure_policy(
    certs: CertSet, tmp_path: Path
) -> None:
    db = tmp_path / "decisions.db"
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        "admission:\n  deadlineSeconds: 2\n  timeoutSeconds: 3\n"
    )
    srv = start_server(certs, "-c", str(config), "--decision-log", f"sqlite:///{db}", workers=1)
    try:
        assert _answer(srv, "uid-before-lock")["allowed"] is True
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            pending = pool.submit(_answer, srv, "uid-late")
            time.sleep(1.0)
            assert not pending.done()  # decided, but not answered before its record is durable
            answer = pending.result(timeout=10)
            waited = time.monotonic() - started
        holder.execute("COMMIT")
        holder.close()
        assert answer["allowed"] is False and 1.9 <= waited < 3, (answer, waited)
        assert "did not commit the record within the deadline" in answer["status"]["message"]
        _eventually(lambda: {"uid-late"} <= set(_records(db)))
    finally:
        srv.stop()
    # The record committed late; the deny that was answered follows it, so the log says both.
    late = [r for r in _records_all(db) if r["subject"].get("uid") == "uid-late"]
    assert len(late) == 2, late
    assert [f["rule"] for f in late[1]["findings"]] == ["admission/not-evaluated"]


def _records_all(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        return [json.loads(raw) for (raw,) in conn.execute("SELECT record FROM decisions ORDER BY seq")]


def test_every_answered_decision_survives_kill_9_of_the_server(certs: CertSet, tmp_path: Path) -> None:
    db = tmp_path / "decisions.db"
    srv = start_server(certs, "--decision-log", f"sqlite:///{db}", workers=2)
    answered: list[str] = []
    stop = threading.Event()

    def client(t: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            uid = f"uid-kill-{t}-{n}"
            try:
                answer = _answer(srv, uid)
            except (OSError, AssertionError, ValueError, http.client.HTTPException):
                return  # the server is gone
            if answer["auditAnnotations"].get("record"):
                answered.append(uid)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    try:
        _eventually(lambda: len(answered) >= 150, seconds=60)
        pid = srv.process.pid
        workers = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for worker in workers:  # in the middle of committing: 8 clients never pause
            os.kill(int(worker), signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        srv.stop()
    recorded = set(_records(db))
    missing = set(answered) - recorded
    assert not missing, f"{len(missing)} answered decisions were lost"
    done = subprocess.run(
        [str(TRUSTGATE), "log", "verify", "--store", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- replicas sharing one PostgreSQL log ----------------------------------------------------------


def test_replicas_sharing_a_postgresql_log_keep_one_verifiable_log(
    certs: CertSet, tmp_path: Path, postgres_url: str
) -> None:
    key = _key(tmp_path)
    published = tmp_path / "published"
    config = _config(tmp_path, f"checkpoint:\n  key: {key}\n  publish:\n    dir: {published}")
    replicas = [
        start_server(certs, "-c", str(config), "--decision-log", postgres_url, workers=2) for _ in range(2)
    ]
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda i: _answer(replicas[i % 2], f"uid-replica-{i}"), range(120)))
        assert all(a["allowed"] is True and a["auditAnnotations"]["record"] for a in answers)
    finally:
        for srv in replicas:
            srv.stop()
    public = tmp_path / "decision-log.pub"
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    public.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    done = subprocess.run(
        [
            str(TRUSTGATE),
            "log",
            "verify",
            "--store",
            postgres_url,
            "--verifier-key",
            str(public),
            "--checkpoint-dir",
            str(published),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["records"] == 120, report
    assert report["checkpoints"] >= 1  # signed by whichever writer committed first (and published)


# --- the writer process (`--log-writer process`) ----------------------------------------------------


def _writer_pid(srv: Server) -> int:
    found = re.findall(r"decision log writer process \(pid (\d+)\)", "".join(srv.stderr))
    assert found, srv.stderr
    return int(found[-1])


@pytest.mark.parametrize(
    "log_writer", ["process"], indirect=True
)  # only a writer process can be killed apart from the workers
def test_kill_9_of_the_log_writer_loses_no_answered_decision_and_it_is_restarted(
    certs: CertSet, tmp_path: Path, log_writer: str
) -> None:
    db = tmp_path / "decisions.db"
    srv = start_server(certs, "--decision-log", f"sqlite:///{db}", workers=2)
    answered: list[str] = []
    unrecorded: list[dict[str, Any]] = []
    stop = threading.Event()

    def client(t: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            uid = f"uid-writer-{t}-{n}"
            answer = _answer(srv, uid)
            if answer["auditAnnotations"].get("record", "not recorded") != "not recorded":
                answered.append(uid)
            else:
                unrecorded.append(answer)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    try:
        _eventually(lambda: len(answered) >= 150, seconds=60)
        writer = _writer_pid(srv)
        os.kill(writer, signal.SIGKILL)  # in the middle of committing: 8 clients never pause
        before = len(answered)
        _eventually(lambda: _writer_pid(srv) != writer, seconds=30)  # the supervisor restarts it
        _eventually(lambda: len(answered) >= before + 150, seconds=60)  # and records go on
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        srv.stop()
    for answer in unrecorded:  # enforce mode: the failure policy is closed, never an allow
        assert answer["allowed"] is False and "could not be recorded" in answer["status"]["message"], answer
    missing = set(answered) - set(_records(db))
    assert not missing, f"{len(missing)} answered decisions were lost"
    done = subprocess.run(
        [str(TRUSTGATE), "log", "verify", "--store", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "log_writer", ["process"], indirect=True
)  # a hung writer thread is the locked-store test above
def test_a_hung_log_writer_is_answered_by_the_failure_policy_in_time_turns_unready_and_recovers(
    certs: CertSet, tmp_path: Path, log_writer: str
) -> None:
    db = tmp_path / "decisions.db"
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        "admission:\n  deadlineSeconds: 2\n  timeoutSeconds: 3\n"
    )
    srv = start_server(certs, "-c", str(config), "--decision-log", f"sqlite:///{db}", workers=1)
    writer = _writer_pid(srv)
    try:
        assert _answer(srv, "uid-before-hang")["allowed"] is True
        os.kill(writer, signal.SIGSTOP)
        started = time.monotonic()
        answer = _answer(srv, "uid-hung")
        waited = time.monotonic() - started
        assert answer["allowed"] is False and waited < 3, (answer, waited)
        assert "did not commit the record within the deadline" in answer["status"]["message"]
        # No acknowledgement for longer than the client waits: given up on, the worker is unready.
        _eventually(lambda: srv.health("/readyz")[0] == 503, seconds=30)
        _status, why = srv.health("/readyz")
        assert "did not" in why, why
        os.kill(writer, signal.SIGCONT)
        _eventually(lambda: srv.health("/readyz")[0] == 200, seconds=30)
        assert _answer(srv, "uid-after-hang")["allowed"] is True
    finally:
        os.kill(writer, signal.SIGCONT)
        srv.stop()
    assert {"uid-before-hang", "uid-after-hang"} <= set(_records(db))
