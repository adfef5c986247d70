"""A lone surrogate (`"\\ud800"`) in the input: refused with a reason, never a crashed evaluator.

regorus crashed (SIGSEGV) on such a string: `check` died with exit 139, and each
such AdmissionReview killed a webhook worker and the requests it was serving.
Both run as subprocesses here, so a crash fails the test, not the test run.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.webhook import TRUSTGATE, CertSet, Server, make_certs, review, start_server

POLICY = (
    "package main\nimport rego.v1\n\n"
    'deny contains {"msg": "bad pod", "rule": "no-bad"} if input.metadata.name == "bad"\n'
)


def pod(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns1", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.0"}]},
    }


def test_check_reports_the_file_and_path_and_exits_three(tmp_path: Path) -> None:
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "p.rego").write_text(POLICY)
    manifest = tmp_path / "pod.json"
    manifest.write_text(json.dumps(pod("fine", {"a": "\ud800"})))  # written as the escape \ud800
    done = subprocess.run(
        [str(TRUSTGATE), "check", str(manifest), "-p", str(tmp_path / "policy"), "--no-schemas"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 3, f"exit {done.returncode} (139: the evaluator crashed)\n{done.stderr}"
    assert "input/invalid-json" in done.stdout
    assert f"{manifest}:1" in done.stdout
    assert "metadata.annotations.a holds a lone surrogate" in done.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    certs: CertSet = make_certs(tmp_path_factory.mktemp("certs"))
    srv = start_server(certs, workers=2)
    yield srv
    srv.stop()


def _workers(srv: Server) -> list[int]:
    pid = srv.process.pid
    return sorted(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


def test_webhook_answers_400_and_no_worker_dies(server: Server) -> None:
    workers = _workers(server)
    bad_body = json.dumps(review(pod("fine", {"a": "\ud800"}), uid="uid-surrogate")).encode()
    assert b"\\ud800" in bad_body
    denied_body = json.dumps(review(pod("bad", {}), uid="uid-denied")).encode()
    answers: dict[str, tuple[int, Any]] = {}

    def post(name: str, body: bytes) -> None:
        try:
            answers[name] = server.post(body, path="/validate/fail-open")
        except (OSError, http.client.HTTPException) as e:  # a worker died with the connection
            answers[name] = (0, repr(e))

    # Requests that must be denied, sent together with the surrogates (which used to kill
    # the worker serving them and drop these, answered by no one: HTTP 000).
    threads = [threading.Thread(target=post, args=(f"surrogate{i}", bad_body)) for i in range(3)]
    threads += [threading.Thread(target=post, args=(f"denied{i}", denied_body)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for i in range(3):
        status, answer = answers[f"surrogate{i}"]
        assert status == 400, answer
        assert "lone surrogate" in answer["error"]
        assert "request.object.metadata.annotations.a" in answer["error"]
    for i in range(6):
        status, answer = answers[f"denied{i}"]
        assert status == 200 and answer["response"]["allowed"] is False, answer
    key_body = json.dumps(review(pod("fine", {"\udc00": "v"}))).encode()
    status, answer = server.post(key_body)
    assert status == 400 and "annotations.\\udc00" in answer["error"]
    assert server.process.poll() is None
    assert _workers(server) == workers
    _, metrics = server.get("/metrics")
    assert "trustgate_worker_restarts_total 0" in metrics
