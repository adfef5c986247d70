"""`trustgate serve` must keep answering: slow and idle clients, the cluster's own controllers,
legal objects with large numbers, graceful shutdown, and the deployment details (issue 14).

Every test runs against a real `trustgate serve` process over real HTTPS on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.webhook import POD, TRUSTGATE, CertSet, Server, make_certs, review, start_server

PVC: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "data", "namespace": "shop"},
}
NAMESPACE_CONTROLLER = "system:serviceaccount:kube-system:namespace-controller"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def logged(certs: CertSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """A server in enforce mode recording to a SQLite decision log."""
    db = tmp_path_factory.mktemp("log") / "decisions.db"
    srv = start_server(certs, "--decision-log", f"sqlite:///{db}", workers=1)
    yield srv, db
    srv.stop()


def _records(db: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(TRUSTGATE), "log", "query", "--store", f"sqlite:///{db}", "-o", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [e["record"] for e in json.loads(done.stdout)]


def _record(db: Path, uid: str) -> dict[str, Any]:
    found = [r for r in _records(db) if r["subject"].get("uid") == uid]
    assert len(found) == 1, f"{len(found)} records of {uid}"
    return found[0]


def _answer(srv: Server, body: dict[str, Any] | bytes) -> tuple[int, Any]:
    return srv.post(body)


def _delete(username: str, uid: str, *, dry_run: bool = False) -> dict[str, Any]:
    body = review(None, operation="DELETE", old=PVC, uid=uid, dry_run=dry_run)
    body["request"]["userInfo"] = {"username": username, "groups": ["system:serviceaccounts"]}
    return body


# --- 1. slow and idle clients -----------------------------------------------------------------


def test_slow_clients_from_one_address_do_not_lock_out_a_well_behaved_one(certs: CertSet) -> None:
    srv = start_server(certs, "--max-connections-per-client", "40", workers=2)
    context = srv.context()
    slow: list[ssl.SSLSocket] = []
    idle: list[socket.socket] = []
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()
    body = json.dumps(review(POD)).encode()

    def well_behaved() -> None:
        while not stop.is_set():
            try:
                conn = srv.connection(timeout=10)
                conn.request("POST", "/validate", body=body)
                response = conn.getresponse()
                assert json.loads(response.read())["response"]["allowed"] is True
                conn.close()
                answered[0] += 1
            except (OSError, AssertionError, ValueError) as e:
                failures.append(repr(e))
            time.sleep(0.1)

    try:
        for i in range(260):  # one address holding far more than its budget: 200 slow, 60 idle
            raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            if i % 13 == 0:
                idle.append(raw)  # connected, never starts TLS
                continue
            try:
                tls = context.wrap_socket(raw, server_side=False, server_hostname="localhost")
                tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\n")
                slow.append(tls)
            except OSError:
                raw.close()  # shed while we were still opening: as intended
        client = threading.Thread(target=well_behaved)
        client.start()
        started = time.monotonic()
        while time.monotonic() - started < 6:  # a header line now and then keeps each read alive
            for conn in slow:
                with contextlib.suppress(OSError):
                    conn.sendall(b"X-Slow: 1\r\n")
            time.sleep(1.0)
        stop.set()
        client.join(timeout=30)
        assert failures == [] and answered[0] >= 10, (failures[:5], answered[0])
        open_after = 0
        for conn in slow:
            try:
                conn.settimeout(0.5)
                conn.sendall(b"X-Slow: 1\r\n")
                if conn.recv(1) == b"":
                    continue
                open_after += 1
            except (TimeoutError, ssl.SSLWantReadError):
                open_after += 1  # still open: nothing arrived, nothing closed
            except OSError:
                continue
        # The headers deadline (5 s, whole) closed every connection that trickled past it.
        assert open_after == 0
        _, text = srv.get("/metrics")
        assert 'trustgate_connections_total{event="shed"}' in text
    finally:
        stop.set()
        for s in [*slow, *idle]:
            s.close()
        srv.stop()


def test_a_client_over_its_budget_sheds_its_own_connections_not_others(certs: CertSet) -> None:
    srv = start_server(certs, "--max-connections-per-client", "20", workers=1)
    context = srv.context()
    attacker: list[socket.socket] = []
    try:
        keep_alive = srv.connection()  # the API server's pooled connection, from 127.0.0.1
        body = json.dumps(review(POD)).encode()
        keep_alive.request("POST", "/validate", body=body)
        assert keep_alive.getresponse().read()
        for _ in range(80):  # another address (127.0.0.2), idle after TLS: 4 times its budget
            raw = socket.create_connection(("127.0.0.1", srv.port), source_address=("127.0.0.2", 0))
            with contextlib.suppress(OSError):
                attacker.append(context.wrap_socket(raw, server_hostname="localhost"))
        # The idle keep-alive connection of the other address was not shed for them.
        keep_alive.request("POST", "/validate", body=body)
        assert json.loads(keep_alive.getresponse().read())["response"]["allowed"] is True
        keep_alive.close()
        _, text = srv.get("/metrics")
        shed = next(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith('trustgate_connections_total{event="shed"}')
        )
        assert shed >= 60  # the attacker's own, oldest first
    finally:
        for conn in attacker:
            conn.close()
        srv.stop()


def test_headers_are_held_to_one_deadline_not_a_per_read_timeout(certs: CertSet) -> None:
    srv = start_server(certs, workers=1)
    try:
        raw = socket.create_connection(("127.0.0.1", srv.port))
        tls = srv.context().wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"POST /validate HTTP/1.1\r\n")
        started = time.monotonic()
        closed_after = None
        while time.monotonic() - started < 12:
            try:
                tls.sendall(b"X-Slow: 1\r\n")
                tls.settimeout(1.0)
                data = tls.recv(4096)
                if data == b"" or b"408" in data or b"Connection: close" in data:
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
        tls.close()
        assert closed_after is not None and closed_after < 8, closed_after
        assert srv.post(review(POD))[0] == 200
    finally:
        srv.stop()


def test_a_body_is_held_to_one_deadline_not_a_per_read_timeout(certs: CertSet) -> None:
    """A slow-body client (whole headers, then a byte a second) is answered 408 and closed at the
    body's deadline (10 s from the end of the headers), not kept while each read brings a byte."""
    srv = start_server(certs, workers=1)
    try:
        raw = socket.create_connection(("127.0.0.1", srv.port))
        tls = srv.context().wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        started = time.monotonic()
        closed_after = None
        received = b""
        while time.monotonic() - started < 16:
            try:
                tls.sendall(b" ")
                tls.settimeout(1.0)
                data = tls.recv(4096)
                received += data
                if data == b"" or b"408" in data:
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
        tls.close()
        assert closed_after is not None and 8 < closed_after < 14, closed_after
        assert received.startswith(b"HTTP/1.1 408"), received[:200]
        assert srv.post(review(POD))[0] == 200
    finally:
        srv.stop()


def test_health_port_answers_probes_without_a_client_certificate(certs: CertSet) -> None:
    srv = start_server(certs, workers=1, client_ca=True, wait=False)
    try:
        assert srv.health_port
        end = time.monotonic() + 60
        while srv.health("/readyz")[0] != 200 and time.monotonic() < end:
            time.sleep(0.2)
        assert srv.health("/readyz") == (200, "ready\n")
        assert srv.health("/healthz") == (200, "ok\n")
        status, text = srv.health("/metrics")
        assert status == 200 and "trustgate_admission_requests_total" in text
        assert srv.health("/validate")[0] == 404  # admission is never served here
        with pytest.raises((ssl.SSLError, ConnectionError)):  # the admission port still needs one
            srv.get("/healthz")
    finally:
        srv.stop()


def test_slow_clients_on_the_health_port_do_not_starve_the_probes(certs: CertSet) -> None:
    srv = start_server(certs, workers=1)
    slow = []
    try:
        for _ in range(60):  # more than the health port's slots, each sending a header line now and then
            conn = socket.create_connection(("127.0.0.1", srv.health_port))
            conn.sendall(b"GET /readyz HTTP/1.1\r\n")
            slow.append(conn)
        for _ in range(3):
            for conn in slow:
                with contextlib.suppress(OSError):
                    conn.sendall(b"X-Slow: 1\r\n")
            started = time.monotonic()
            assert srv.health("/readyz") == (200, "ready\n")
            assert time.monotonic() - started < 2
            time.sleep(1.0)
    finally:
        for conn in slow:
            conn.close()
        srv.stop()


def test_tls_1_2_offers_only_aead_suites(certs: CertSet) -> None:
    srv = start_server(certs, workers=1)
    try:

        def handshake(ciphers: str) -> str:
            context = srv.context()
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(ciphers)
            with (
                socket.create_connection(("127.0.0.1", srv.port)) as raw,
                context.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                cipher = tls.cipher()
                assert cipher is not None
                return cipher[0]

        with pytest.raises(ssl.SSLError):
            handshake("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384")  # CBC
        assert "GCM" in handshake("ECDHE-ECDSA-AES128-GCM-SHA256")
        # No session tickets, in TLS 1.3 (sent after the handshake) or 1.2: nobody resumes webhook
        # sessions, and issuing them made every connection a slowloris reopens a third dearer.
        for version, name in ((ssl.TLSVersion.TLSv1_3, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")):
            context = srv.context()
            context.maximum_version = version
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=context, timeout=30)
            conn.request("POST", "/validate", body=json.dumps(review(POD)).encode())
            assert conn.getresponse().read()  # a TLS 1.3 ticket would have arrived before the response
            assert isinstance(conn.sock, ssl.SSLSocket) and conn.sock.version() == name
            session = conn.sock.session
            assert session is not None and not session.has_ticket, name
            conn.close()
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("PUT", "/validate", "POST"), ("OPTIONS", "/validate", "POST"), ("DELETE", "/healthz", "GET")],
)
def test_other_methods_get_405_with_allow(
    logged: tuple[Server, Path], method: str, path: str, allow: str
) -> None:
    srv, _ = logged
    conn = srv.connection()
    conn.request(method, path, body=b"{}" if method == "PUT" else None)
    response = conn.getresponse()
    response.read()
    assert response.status == 405
    assert response.getheader("Allow") == allow
    conn.close()


# --- 2. the cluster's own controllers, mode, recording -----------------------------------------


def test_namespace_controller_deletes_pvcs_and_it_is_recorded(logged: tuple[Server, Path]) -> None:
    srv, db = logged
    status, answer = _answer(srv, _delete(NAMESPACE_CONTROLLER, "uid-ns-controller"))
    assert status == 200 and answer["response"]["allowed"] is True
    status, answer = _answer(srv, _delete("alice@example.com", "uid-alice-delete"))
    assert status == 200 and answer["response"]["allowed"] is False
    assert "[admission-protected-delete]" in answer["response"]["status"]["message"]
    assert answer["response"]["auditAnnotations"]["record"]
    allowed = _record(db, "uid-ns-controller")
    assert allowed["verdict"] in ("pass", "passed", "allowed") or allowed["exitCode"] == 0
    assert any(NAMESPACE_CONTROLLER in n for n in allowed["notes"])
    denied = _record(db, "uid-alice-delete")
    assert [f["rule"] for f in denied["findings"]] == ["admission-protected-delete"]
    assert denied["subject"]["operation"] == "DELETE"


def test_protected_deletes_follow_audit_mode(certs: CertSet, tmp_path: Path) -> None:
    config = tmp_path / "trustgate.yaml"
    config.write_text("apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmode: audit\n")
    db = tmp_path / "decisions.db"
    srv = start_server(certs, "-c", str(config), "--decision-log", f"sqlite:///{db}", workers=1)
    try:
        status, answer = _answer(srv, _delete("alice@example.com", "uid-audit-delete"))
        assert status == 200 and answer["response"]["allowed"] is True
    finally:
        srv.stop()
    record = _record(db, "uid-audit-delete")
    assert record["mode"] == "audit"
    assert [(f["rule"], f["severity"]) for f in record["findings"]] == [
        ("admission-protected-delete", "info")
    ]


def test_allowed_deleters_are_set_by_flag(certs: CertSet) -> None:
    srv = start_server(certs, "--allow-delete-by", "system:serviceaccount:argocd:*", workers=1)
    try:
        argo = "system:serviceaccount:argocd:argocd-application-controller"
        assert _answer(srv, _delete(argo, "uid-argo"))[1]["response"]["allowed"] is True
        # The flag replaces the defaults: the namespace controller now needs the annotation too.
        assert _answer(srv, _delete(NAMESPACE_CONTROLLER, "uid-nc"))[1]["response"]["allowed"] is False
    finally:
        srv.stop()


def test_allowed_deleters_are_set_in_the_configuration_and_the_flag_replaces_them(
    certs: CertSet, tmp_path: Path
) -> None:
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nadmission:\n  protectedDeletes:\n"
        "    allowedActors: ['system:serviceaccount:argocd:*']\n"
    )
    argo = "system:serviceaccount:argocd:argocd-application-controller"
    flux = "system:serviceaccount:flux-system:kustomize-controller"
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        assert _answer(srv, _delete(argo, "uid-key-argo"))[1]["response"]["allowed"] is True
        # The key replaces the default controllers.
        assert _answer(srv, _delete(NAMESPACE_CONTROLLER, "uid-key-nc"))[1]["response"]["allowed"] is False
    finally:
        srv.stop()
    srv = start_server(
        certs, "-c", str(config), "--allow-delete-by", "system:serviceaccount:flux-system:*", workers=1
    )
    try:  # the flag replaces the file's list: nothing is merged
        assert _answer(srv, _delete(flux, "uid-flag-flux"))[1]["response"]["allowed"] is True
        assert _answer(srv, _delete(argo, "uid-flag-argo"))[1]["response"]["allowed"] is False
    finally:
        srv.stop()


def test_dry_run_requests_are_recorded_as_dry_runs(logged: tuple[Server, Path]) -> None:
    srv, db = logged
    status, answer = _answer(srv, review(POD, uid="uid-dry-run", dry_run=True))
    assert status == 200 and answer["response"]["auditAnnotations"]["dry-run"] == "true"
    status, _ = _answer(srv, _delete("alice@example.com", "uid-dry-run-delete", dry_run=True))
    assert status == 200
    _answer(srv, review(POD, uid="uid-real"))
    for uid in ("uid-dry-run", "uid-dry-run-delete"):
        record = _record(db, uid)
        assert record["subject"]["dryRun"] is True  # a field a query can use, and the note for readers
        assert any("dryRun" in n for n in record["notes"])
    real = _record(db, "uid-real")
    assert "dryRun" not in real["subject"] and not any("dryRun" in n for n in real["notes"])
    verified = subprocess.run(
        [str(TRUSTGATE), "log", "verify", "--store", f"sqlite:///{db}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


# --- 3. a hung registry ------------------------------------------------------------------------


def test_a_hung_registry_never_holds_the_last_evaluator(certs: CertSet, tmp_path: Path) -> None:
    """Pods with images from a registry that never answers, more of them at once than there are
    evaluators: a policy-only Pod is answered at once, not after the hung ones' slot waits."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: _hold(listener, held), daemon=True).start()
    registry = f"127.0.0.1:{listener.getsockname()[1]}"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    (tmp_path / "cosign.pub").write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        f"""apiVersion: trustgate.dev/v1alpha1
kind: Config
images:
  authorities: [{{name: release, key: {{path: cosign.pub}}}}]
  rules: [{{name: hung, images: ["{registry}/**"], signatures: {{authorities: [release]}}}}]
  registries:
    insecure: ["{registry}"]
    queueSeconds: 6  # a verification waiting this long for a slot would hold the last evaluator
"""
    )
    srv = start_server(certs, "-c", str(config), "--evaluators", "4", workers=1)
    hung_pod = json.loads(json.dumps(POD).replace("registry.example.com/web:1.2.3", f"{registry}/web:1.0"))
    answers: list[Any] = []
    try:
        hung = [
            threading.Thread(
                target=lambda i=i: answers.append(_answer(srv, review(hung_pod, uid=f"uid-hung-{i}")))
            )
            for i in range(8)  # twice the evaluators
        ]
        for thread in hung:
            thread.start()
        time.sleep(0.5)  # they are in the evaluators now: 3 at the registry, the others turned away
        started = time.monotonic()
        status, answer = _answer(srv, review(POD, uid="uid-policy-only"))
        took = time.monotonic() - started
        assert status == 200 and answer["response"]["allowed"] is True, answer
        # Before: the 4th hung verification waited queueSeconds for a slot, holding the last evaluator,
        # and this request waited behind it (> 2.6 s, the registry's read timeout).
        assert took < 2.0, took
        for thread in hung:
            thread.join(timeout=30)
        assert len(answers) == 8
        for status, answer in answers:  # each answered, closed: not verified is not allowed
            assert status == 200 and answer["response"]["allowed"] is False, answer
    finally:
        srv.stop()
        listener.close()
        for conn in held:
            conn.close()


def _hold(listener: socket.socket, held: list[socket.socket]) -> None:
    while True:
        try:
            held.append(listener.accept()[0])
        except OSError:
            return


# --- 6. legal objects with large numbers; limits answered with a reason ------------------------


def test_large_integers_the_api_server_passes_are_allowed_and_recorded(logged: tuple[Server, Path]) -> None:
    srv, db = logged
    pod = json.loads(json.dumps(POD))
    pod["spec"]["terminationGracePeriodSeconds"] = 9007199254740993
    status, answer = _answer(srv, review(pod, uid="uid-big-int"))
    assert status == 200 and answer["response"]["allowed"] is True, answer
    record = _record(db, "uid-big-int")
    stored = record["subject"]["objects"][0]["object"]  # the canonical form: a marked decimal string
    assert stored["spec"]["terminationGracePeriodSeconds"] == "i-json:int:9007199254740993"


def test_limits_answer_400_with_a_reason(logged: tuple[Server, Path]) -> None:
    srv, _ = logged
    huge = json.dumps(review(POD, uid="uid-digits")).replace(
        '"name": "web"', '"name": "web", "n": ' + "9" * 5000, 1
    )
    status, answer = _answer(srv, huge.encode())
    assert status == 400 and "5000 digits" in answer["error"]
    deep = json.dumps(review(POD)).replace('"spec": {', '"spec": {"x": ' + "[" * 400 + "]" * 400 + ", ", 1)
    status, answer = _answer(srv, deep.encode())
    assert status == 400 and "levels deep" in answer["error"]
    body = review(POD, uid="uid-metadata")
    body["request"]["object"] = {**POD, "metadata": "web"}
    status, answer = _answer(srv, body)
    assert status == 200 and answer["response"]["allowed"] is False
    assert answer["response"]["status"]["code"] == 400
    assert "metadata is a JSON string, not an object" in answer["response"]["status"]["message"]
    assert "internal error" not in answer["response"]["status"]["message"]


# --- 5. graceful shutdown -----------------------------------------------------------------------


def test_sigterm_lets_requests_in_flight_finish_and_records_them(certs: CertSet, tmp_path: Path) -> None:
    db = tmp_path / "decisions.db"
    srv = start_server(certs, "--decision-log", f"sqlite:///{db}", workers=1)
    body = json.dumps(review(POD, uid="uid-in-flight")).encode()
    idle = srv.connection()
    idle.request("POST", "/validate", body=json.dumps(review(POD, uid="uid-before")).encode())
    assert idle.getresponse().read()
    raw = socket.create_connection(("127.0.0.1", srv.port))
    tls = srv.context().wrap_socket(raw, server_hostname="localhost")
    try:
        head = f"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        tls.sendall(head + body[:100])  # in flight: headers and part of the body
        time.sleep(0.3)
        srv.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        tls.sendall(body[100:])
        tls.settimeout(20)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = tls.recv(65536)
            if not chunk:
                break
            reply += chunk
        head_text, _, payload = reply.partition(b"\r\n\r\n")
        assert head_text.startswith(b"HTTP/1.1 200"), reply[:200]
        assert b"Connection: close" in head_text
        assert json.loads(payload)["response"]["uid"] == "uid-in-flight"
        # The idle keep-alive connection was closed, not left to be reset mid-request later.
        with pytest.raises((OSError, http.client.HTTPException)):
            idle.request("POST", "/validate", body=body)
            idle.getresponse().read()
        assert srv.process.wait(timeout=30) == 0
    finally:
        tls.close()
        idle.close()
        srv.stop()
    assert _record(db, "uid-in-flight")  # recorded before the log closed


def test_heavy_reviews_never_hold_every_evaluator_and_small_ones_go_first(certs: CertSet) -> None:
    """Pods of thousands of containers take seconds each to evaluate. Sent back to back, more at
    once than there are evaluators, they held all of them and queued ahead of a small review: a
    privileged Pod's review on /validate/fail-open waited past its deadline and was admitted
    unevaluated. Now small reviews are taken first and heavy ones never hold the last evaluator."""
    srv = start_server(certs, "--evaluators", "4", workers=1)
    heavy_pod: dict[str, Any] = json.loads(json.dumps(POD))
    container = heavy_pod["spec"]["containers"][0]
    heavy_pod["spec"]["containers"] = [dict(container, name=f"c{i}") for i in range(2500)]
    heavy = json.dumps(review(heavy_pod)).encode()
    assert len(heavy) > 256 * 1024
    privileged_pod: dict[str, Any] = json.loads(json.dumps(POD))
    privileged_pod["spec"]["containers"][0]["securityContext"]["privileged"] = True
    stop = threading.Event()
    heavy_answers: list[int] = []

    def flood() -> None:
        while not stop.is_set():
            conn = srv.connection(timeout=60)
            try:
                conn.request("POST", "/validate/fail-open", body=heavy)
                heavy_answers.append(conn.getresponse().status)
            except OSError:
                pass
            finally:
                conn.close()

    senders = [threading.Thread(target=flood) for _ in range(16)]  # four times the evaluators
    try:
        for thread in senders:
            thread.start()
        time.sleep(3)  # every evaluator has had heavy ones to take, and more are queued
        started = time.monotonic()
        status, answer = srv.post(review(privileged_pod, uid="uid-small"), path="/validate/fail-open")
        took = time.monotonic() - started
        print(f"the small review was answered in {took:.2f} s; heavy answers so far {len(heavy_answers)}")
        assert status == 200 and answer["response"]["allowed"] is False, answer
        assert "pss-baseline-privileged" in answer["response"]["status"]["message"], answer
        assert took < 4.0, took  # before: past the 8 s deadline, then admitted unevaluated
    finally:
        stop.set()
        for thread in senders:
            thread.join(timeout=120)
        srv.stop()
