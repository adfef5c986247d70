"""`trustgate serve` over real HTTPS on 127.0.0.1: decisions, bad input, deadline, TLS."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.webhook import POD, TRUSTGATE, CertSet, Server, make_certs, review, start_server

COMPLIANT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    {
                        "name": "web",
                        "image": "registry.example.com/web:1.2.3",
                        "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
                        "livenessProbe": {"httpGet": {"path": "/", "port": 8080}},
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        },
    },
}
LATEST_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "bad", "namespace": "shop"},
    "spec": {"containers": [{"name": "c", "image": "nginx:latest"}]},
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def server(certs: CertSet) -> Iterator[Server]:
    srv = start_server(certs)
    yield srv
    srv.stop()


def _response(server: Server, body: dict[str, Any], path: str = "/validate") -> dict[str, Any]:
    status, answer = server.post(body, path=path)
    assert status == 200, answer
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == body["request"]["uid"]
    result: dict[str, Any] = answer["response"]
    return result


def test_compliant_deployment_is_allowed_with_warning_for_the_tag(server: Server) -> None:
    response = _response(server, review(COMPLIANT, uid="uid-allowed"))
    assert response["allowed"] is True
    assert any("images-digest" in w for w in response["warnings"])
    assert response["auditAnnotations"]["decision"] == "allowed"
    assert response["auditAnnotations"]["policy-revision"].startswith("sha256:")


def test_non_compliant_pod_is_denied_with_rule_ids_and_reasons(server: Server) -> None:
    response = _response(server, review(LATEST_POD, uid="uid-denied"))
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert message.startswith("trustgate denied Pod/shop/bad: ")
    assert '[images-no-latest] container "c" uses image "nginx:latest"' in message
    assert "[pss-restricted-run-as-non-root]" in message
    assert response["status"]["code"] == 403
    assert "images-no-latest" in response["auditAnnotations"]["rules"].split(",")


def test_same_answers_as_check(server: Server, tmp_path: Path) -> None:
    for obj in (COMPLIANT, LATEST_POD):
        path = tmp_path / f"{obj['metadata']['name']}.yaml"
        path.write_text(json.dumps(obj))
        done = subprocess.run(
            [str(TRUSTGATE), "check", "-o", "json", str(path)], capture_output=True, text=True, check=False
        )
        report = json.loads(done.stdout)
        findings = report["results"][0]["findings"]
        blocking = sorted(f["rule"] for f in findings if f["severity"] == "error")
        warned = sorted(f["rule"] for f in findings if f["severity"] == "warning")
        response = _response(server, review(obj))
        assert response["allowed"] is (done.returncode == 0)
        got_blocking = sorted(
            part.split("]", 1)[0].lstrip("[")
            for part in response.get("status", {}).get("message", "").split(": ", 1)[-1].split("; ")
            if part.startswith("[")
        )
        assert got_blocking == blocking
        got_warned = sorted(w.split("]", 1)[0].lstrip("[") for w in response.get("warnings", []))
        assert got_warned == warned


def test_every_workload_kind_is_evaluated(server: Server) -> None:
    pod_spec = LATEST_POD["spec"]
    template = {"metadata": {"labels": {"a": "b"}}, "spec": pod_spec}
    objects = [
        (
            "apps/v1",
            "StatefulSet",
            {"selector": {"matchLabels": {"a": "b"}}, "serviceName": "s", "template": template},
        ),
        ("apps/v1", "DaemonSet", {"selector": {"matchLabels": {"a": "b"}}, "template": template}),
        ("apps/v1", "ReplicaSet", {"selector": {"matchLabels": {"a": "b"}}, "template": template}),
        ("batch/v1", "Job", {"template": {"spec": {**pod_spec, "restartPolicy": "Never"}}}),
        (
            "batch/v1",
            "CronJob",
            {
                "schedule": "* * * * *",
                "jobTemplate": {"spec": {"template": {"spec": {**pod_spec, "restartPolicy": "Never"}}}},
            },
        ),
        ("v1", "ReplicationController", {"selector": {"a": "b"}, "template": template}),
    ]
    for api_version, kind, spec in objects:
        obj = {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": "w", "namespace": "shop"},
            "spec": spec,
        }
        response = _response(server, review(obj, uid=f"uid-{kind}"))
        assert response["allowed"] is False, kind
        assert "[images-no-latest]" in response["status"]["message"], kind


def test_namespace_is_filled_in_from_the_request(server: Server) -> None:
    obj = {**LATEST_POD, "metadata": {"name": "bad"}}
    response = _response(server, review(obj, namespace="shop"))
    assert "Pod/shop/bad" in response["status"]["message"]


def test_dry_run_is_evaluated_and_marked(server: Server) -> None:
    response = _response(server, review(LATEST_POD, dry_run=True))
    assert response["allowed"] is False
    assert response["auditAnnotations"]["dry-run"] == "true"
    assert response["warnings"][0].startswith("trustgate: dry run")


def test_subresources_and_connect_are_skipped(server: Server) -> None:
    response = _response(
        server, review(LATEST_POD, operation="UPDATE", old=LATEST_POD, sub_resource="status")
    )
    assert response["allowed"] is True
    assert response["auditAnnotations"] == {"skipped": "subresource"}
    response = _response(server, review(LATEST_POD, operation="CONNECT"))
    assert response["allowed"] is True


def test_excluded_namespaces_are_never_evaluated(server: Server) -> None:
    for namespace in ("kube-system", "trustgate"):
        obj = {**LATEST_POD, "metadata": {"name": "bad", "namespace": namespace}}
        response = _response(server, review(obj))
        assert response["allowed"] is True, namespace
        assert "excluded" in response["auditAnnotations"]["skipped"]


def test_delete_of_a_protected_kind_needs_the_approval_annotation(server: Server) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}}
    response = _response(server, review(None, operation="DELETE", old=namespace, namespace=""))
    assert response["allowed"] is False
    assert "[admission-protected-delete]" in response["status"]["message"]
    assert "trustgate.dev/allow-delete" in response["status"]["message"]
    approved = {
        **namespace,
        "metadata": {"name": "payments", "annotations": {"trustgate.dev/allow-delete": "true"}},
    }
    assert _response(server, review(None, operation="DELETE", old=approved, namespace=""))["allowed"] is True
    # Other kinds delete freely, whatever their content.
    assert _response(server, review(None, operation="DELETE", old=LATEST_POD))["allowed"] is True


def test_update_is_evaluated(server: Server) -> None:
    response = _response(server, review(LATEST_POD, operation="UPDATE", old=LATEST_POD))
    assert response["allowed"] is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"[1, 2]", "got a JSON array"),
        (b'"text"', "got a JSON string"),
        (
            json.dumps(
                {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}
            ).encode(),
            "v1",
        ),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}).encode(), "kind AdmissionReview"),
        (
            json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
            "no `request`",
        ),
        (
            json.dumps(
                {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 5}}
            ).encode(),
            "uid",
        ),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_bad_bodies_get_400_with_a_reason(server: Server, body: bytes, expected: str) -> None:
    status, answer = server.post(body)
    assert status == 400
    assert expected in answer["error"]


def test_non_object_object_is_denied_with_a_reason(server: Server) -> None:
    body = review(LATEST_POD, uid="uid-list")
    body["request"]["object"] = [1, 2, 3]
    response = _response(server, body)
    assert response["allowed"] is False
    assert "request.object is a JSON array, not an object" in response["status"]["message"]


def test_unknown_operation_is_denied(server: Server) -> None:
    body = review(LATEST_POD)
    body["request"]["operation"] = "PATCH"
    response = _response(server, body)
    assert response["allowed"] is False and "operation" in response["status"]["message"]


def test_oversized_body_gets_413_without_reading_it(server: Server) -> None:
    conn = server.connection()
    conn.putrequest("POST", "/validate")
    conn.putheader("Content-Length", str(16 * 1024 * 1024 + 1))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    assert "16 MiB" in json.loads(response.read())["error"]
    conn.close()


def _big_deployment(entries: int, *, privileged: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "web",
        "image": "registry.example.com/web:1.2.3",
        "env": [{"name": f"V{i:06d}", "value": "x"} for i in range(entries)],
    }
    if privileged:
        container["securityContext"] = {"privileged": True}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "big", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container]}},
        },
    }


def test_an_update_of_two_large_legal_objects_is_evaluated_not_refused(server: Server) -> None:
    """An UPDATE's review holds object and oldObject as JSON: two objects each under the API
    server's 3 MiB request limit make a review over 3 MiB. Refused with 413, the API server
    would apply the webhook's failure policy: denied unevaluated on /validate, allowed
    unevaluated (a privileged template) on /validate/fail-open."""
    old = _big_deployment(90_000)
    new = _big_deployment(90_000, privileged=True)
    assert len(json.dumps(old, separators=(",", ":"))) < 3 * 1024 * 1024
    body = review(new, operation="UPDATE", old=old)
    data = json.dumps(body, separators=(",", ":")).encode()
    assert len(data) > 5 * 1024 * 1024
    for path in ("/validate", "/validate/fail-open"):
        status, answer = server.post(data, path=path)
        assert status == 200, answer
        response = answer["response"]
        assert response["allowed"] is False, response
        assert "failure-policy" not in response.get("auditAnnotations", {}), response


def test_body_just_under_the_limit_is_answered(server: Server) -> None:
    body = review(
        {
            **LATEST_POD,
            "metadata": {
                "name": "big",
                "namespace": "shop",
                "annotations": {"x": "y" * (3 * 1024 * 1024 - 2000)},
            },
        }
    )
    data = json.dumps(body).encode()
    assert len(data) <= 3 * 1024 * 1024
    status, answer = server.post(data)
    assert status == 200 and answer["response"]["allowed"] is False


def test_missing_content_length_gets_411(server: Server) -> None:
    conn = server.connection()
    conn.putrequest("POST", "/validate")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 411
    conn.close()


def test_slow_client_does_not_hold_up_others(server: Server) -> None:
    # A client that opens a connection, sends half a request and stalls.
    context = server.context()
    stalled = []
    for _ in range(20):
        raw = socket.create_connection(("127.0.0.1", server.port))
        tls = context.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        stalled.append(tls)
    # And some that connect without ever starting TLS.
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    started = time.monotonic()
    response = _response(server, review(COMPLIANT))
    assert response["allowed"] is True
    assert time.monotonic() - started < 10  # far below the per-read timeout the stalled ones wait on
    for s in [*stalled, *silent]:
        s.close()


def test_workers_survive_garbage_and_keep_answering(server: Server) -> None:
    for payload in (b"\x16\x03\x01garbage", b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 1000):
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        raw.sendall(payload)
        raw.close()
    conn = server.connection()
    conn.putrequest("POST", "/validate")
    conn.putheader("Content-Length", "not-a-number")
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()
    assert _response(server, review(COMPLIANT))["allowed"] is True
    assert server.process.poll() is None
    _, text = server.get("/metrics")
    assert "trustgate_worker_restarts_total 0" in text


def test_keep_alive_answers_many_requests_on_one_connection(server: Server) -> None:
    conn = server.connection()
    body = json.dumps(review(COMPLIANT)).encode()
    for _ in range(20):
        conn.request("POST", "/validate", body=body)
        response = conn.getresponse()
        assert json.loads(response.read())["response"]["allowed"] is True
    conn.close()


def test_health_readiness_and_metrics(server: Server) -> None:
    assert server.get("/healthz") == (200, "ok\n")
    assert server.get("/readyz") == (200, "ready\n")
    _response(server, review(LATEST_POD))
    status, text = server.get("/metrics")
    assert status == 200
    assert 'trustgate_admission_requests_total{verdict="denied"}' in text
    denied = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith('trustgate_admission_requests_total{verdict="denied"}')
    )
    assert denied >= 1
    assert 'trustgate_admission_duration_seconds_bucket{le="+Inf"}' in text
    assert "trustgate_workers_ready 2" in text
    assert server.get("/nope")[0] == 404


def test_tls_below_1_2_is_refused(server: Server) -> None:
    context = ssl.create_default_context(cafile=str(server.certs.ca))
    with warnings.catch_warnings():  # the old versions are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", server.port)) as raw:
        context.wrap_socket(raw, server_hostname="localhost")


def test_client_certificate_is_required_when_a_ca_is_given(certs: CertSet, tmp_path: Path) -> None:
    srv = start_server(certs, workers=1, client_ca=True, wait=False)
    try:
        conn = srv.connection()
        with pytest.raises((ssl.SSLError, ConnectionError)):
            conn.request("GET", "/healthz")
            conn.getresponse().read()
        conn.close()
        end = time.monotonic() + 60
        while True:
            conn = srv.connection(client_cert=True)
            conn.request("GET", "/readyz")
            status = conn.getresponse().status
            conn.close()
            if status == 200 or time.monotonic() > end:
                break
            time.sleep(0.2)
        conn = srv.connection(client_cert=True)
        conn.request("POST", "/validate", body=json.dumps(review(COMPLIANT)).encode())
        assert json.loads(conn.getresponse().read())["response"]["allowed"] is True
        conn.close()
    finally:
        srv.stop()


def test_certificate_is_reloaded_when_the_files_change(tmp_path: Path) -> None:
    first = make_certs(tmp_path / "first", cn="first CA")
    second = make_certs(tmp_path / "second", cn="second CA")
    live = tmp_path / "live"
    live.mkdir()
    for name in ("tls.crt", "tls.key"):
        shutil.copy(first.directory / name, live / name)
    served = CertSet(live, first.ca, live / "tls.crt", live / "tls.key", first.client_cert, first.client_key)
    srv = start_server(served, workers=1)
    try:
        assert srv.get("/healthz")[0] == 200
        for name in ("tls.crt", "tls.key"):
            shutil.copy(second.directory / name, live / f".{name}.new")
            (live / f".{name}.new").replace(live / name)
        srv.certs = CertSet(
            live, second.ca, live / "tls.crt", live / "tls.key", second.client_cert, second.client_key
        )
        end = time.monotonic() + 30
        while True:
            try:
                assert srv.get("/healthz")[0] == 200
                break
            except ssl.SSLError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.5)
    finally:
        srv.stop()


def _hanging_registry() -> tuple[socket.socket, list[socket.socket]]:
    """A TCP port that accepts connections and never answers: a registry that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return listener, held


def test_deadline_with_a_hanging_registry_follows_the_failure_policy(certs: CertSet, tmp_path: Path) -> None:
    listener, held = _hanging_registry()
    port = listener.getsockname()[1]
    key = tmp_path / "cosign.pub"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        f"""apiVersion: trustgate.dev/v1alpha1
kind: Config
admission:
  deadlineSeconds: 1.5
  timeoutSeconds: 3
  failOpen:
    namespaces: [sandbox-*]
images:
  authorities:
    - name: release
      key: {{path: cosign.pub}}
  rules:
    - name: all
      images: ["127.0.0.1:{port}/*"]
      signatures: {{authorities: [release]}}
  registries:
    insecure: ["127.0.0.1:{port}"]
    nodeLocal: ["127.0.0.1:{port}"]  # this test's trustgate shares the registry's host, as on a node
    timeoutSeconds: 30
"""
    )
    db = tmp_path / "decisions.db"
    srv = start_server(certs, "-c", str(config), "--decision-log", f"sqlite:///{db}", workers=1)
    try:
        obj = {**COMPLIANT, "metadata": {"name": "web", "namespace": "shop"}}
        obj = json.loads(
            json.dumps(obj).replace("registry.example.com/web:1.2.3", f"127.0.0.1:{port}/web:1.2.3")
        )
        started = time.monotonic()
        response = _response(srv, review(obj, uid="uid-deadline"))
        assert time.monotonic() - started < 2.9  # answered before the webhook's timeoutSeconds
        assert response["allowed"] is False
        assert "images were not verified within the 1.5s deadline" in response["status"]["message"]
        assert "failure policy closed: denied" in response["status"]["message"]
        assert response["auditAnnotations"]["failure-policy"] == "closed"
        # Fail-open by namespace name, and by the fail-open path the labelled namespaces use.
        # The first request marked the registry down (trustgate.oci.breaker): the next ones are
        # answered at once as unverifiable, no longer by the deadline, and follow the policy too.
        sandbox = json.loads(json.dumps(obj).replace('"shop"', '"sandbox-1"'))
        response = _response(srv, review(sandbox, uid="uid-open"))
        assert response["allowed"] is True
        assert "failure policy open: allowed" in response["warnings"][0]
        response = _response(srv, review(obj, uid="uid-open-path"), path="/validate/fail-open")
        assert response["allowed"] is True and response["auditAnnotations"]["failure-policy"] == "open"
        # Fail-open covers only what could not be verified: a policy violation still denies.
        privileged = json.loads(json.dumps(sandbox))
        privileged["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
        response = _response(srv, review(privileged, uid="uid-open-privileged"))
        assert response["allowed"] is False, response
        assert "trustgate denied" in response["status"]["message"]
        assert "pss-baseline-privileged" in response["status"]["message"]
        # Health is unaffected, and the failures are counted and recorded.
        assert srv.get("/healthz")[0] == 200
        text = srv.get("/metrics")[1]
        assert 'trustgate_admission_requests_total{verdict="failure_closed"} 1' in text
        assert 'trustgate_admission_requests_total{verdict="denied"} 1' in text  # decided: a violation
        assert 'trustgate_admission_requests_total{verdict="failure_open"} 2' in text
    finally:
        srv.stop()
        listener.close()
        for conn in held:
            conn.close()
    done = subprocess.run(
        [str(TRUSTGATE), "log", "query", "--store", f"sqlite:///{db}", "-o", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "uid-deadline" in done.stdout and "admission/not-evaluated" in done.stdout
    uids = [e["record"]["subject"].get("uid") for e in json.loads(done.stdout)]
    assert uids.count("uid-deadline") == 1  # the late evaluation does not record a second decision


def test_unreachable_registry_follows_the_failure_policy(certs: CertSet, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        f"""apiVersion: trustgate.dev/v1alpha1
kind: Config
admission:
  failOpen:
    namespaces: [sandbox-*]
images:
  rules:
    - name: all
      images: ["127.0.0.1:{port}/*"]
      requireDigest: false
  unmatched: allow
  registries:
    insecure: ["127.0.0.1:{port}"]
    nodeLocal: ["127.0.0.1:{port}"]  # this test's trustgate shares the registry's host, as on a node
    timeoutSeconds: 2
"""
    )
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        obj = json.loads(
            json.dumps(COMPLIANT).replace("registry.example.com/web:1.2.3", f"127.0.0.1:{port}/web:1")
        )
        response = _response(srv, review(obj, uid="uid-unreachable"))
        assert response["allowed"] is False
        message = response["status"]["message"]
        assert "[image-unverifiable] could not be evaluated" in message
        assert message.endswith("failure policy closed: denied")
        sandbox = json.loads(json.dumps(obj).replace('"shop"', '"sandbox-2"'))
        response = _response(srv, review(sandbox, uid="uid-unreachable-open"))
        assert response["allowed"] is True
        assert response["auditAnnotations"]["failure-policy"] == "open"
        assert any("image-unverifiable" in w for w in response["warnings"])
        text = srv.get("/metrics")[1]
        assert "trustgate_registry_errors_total 2" in text
        # The failure policy's answers are counted as such, not as a warned allow or a denial.
        assert 'trustgate_admission_requests_total{verdict="failure_open"} 1' in text
        assert 'trustgate_admission_requests_total{verdict="failure_closed"} 1' in text
        assert 'trustgate_admission_requests_total{verdict="warned"} 0' in text
        assert 'trustgate_admission_requests_total{verdict="denied"} 0' in text
    finally:
        srv.stop()


def test_an_ipv6_spelling_of_an_ipv4_registry_is_denied_not_left_to_unmatched(
    certs: CertSet, tmp_path: Path
) -> None:
    """`[64:ff9b::7f00:1]` (NAT64) and `[::7f00:1]` (IPv4-compatible) reach 127.0.0.1, whose rule
    did not match them: with `unmatched: allow` the Pod was admitted. Now the image is refused, and
    the answer says which address to write (no registry is asked)."""
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        """apiVersion: trustgate.dev/v1alpha1
kind: Config
images:
  rules:
    - name: local
      images: ["127.0.0.1:5000/**"]
      requireDigest: true
  unmatched: allow
"""
    )
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        for image in ("[64:ff9b::7f00:1]:5000/web:1", "[::7f00:1]:5000/web:1"):
            obj = json.loads(json.dumps(COMPLIANT).replace("registry.example.com/web:1.2.3", image))
            response = _response(srv, review(obj, uid="uid-embedded"))
            assert response["allowed"] is False, image
            message = response["status"]["message"]
            assert "[image-reference]" in message and "127.0.0.1" in message, message
    finally:
        srv.stop()


def test_a_host_network_container_port_gets_the_same_verdict_at_check_and_at_admission(
    certs: CertSet, tmp_path: Path
) -> None:
    """With the host network waived, `ports: [{containerPort: 9100}]` passed `check` while the Pod the
    API server defaulted (hostPort: 9100) was denied at admission. Now both gates deny it as a host
    port, naming what each was given: the containerPort written, the hostPort the API server set."""
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        """apiVersion: trustgate.dev/v1alpha1
kind: Config
exceptions:
  - name: node-exporter-host-network
    rules: [pss-baseline-host-namespaces]
    namespaces: [monitoring]
    owner: sre@example.com
    reason: node-exporter reads the host network stack
    expires: "2999-12-31"
"""
    )
    pod = json.loads(json.dumps(POD))
    pod["metadata"] = {"name": "node-exporter-x1", "namespace": "monitoring"}
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 9100}]
    daemon_set = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "node-exporter", "namespace": "monitoring"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"spec": pod["spec"]}},
    }
    defaulted = json.loads(json.dumps(pod))  # as the API server sends the Pod it created
    defaulted["spec"]["containers"][0]["ports"] = [
        {"containerPort": 9100, "hostPort": 9100, "protocol": "TCP"}
    ]
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        for obj, field in ((pod, "containerPort"), (daemon_set, "containerPort"), (defaulted, "hostPort")):
            path = tmp_path / f"{obj['kind']}-{field}.yaml"
            path.write_text(json.dumps(obj))
            done = subprocess.run(
                [str(TRUSTGATE), "check", "-c", str(config), "-o", "json", str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            findings = json.loads(done.stdout)["results"][0]["findings"]
            blocking = [f for f in findings if f["severity"] == "error"]
            assert done.returncode == 1, findings
            assert [f["rule"] for f in blocking] == ["pss-baseline-host-ports"]
            assert blocking[0]["path"].endswith(f"ports[0].{field}"), blocking[0]
            response = _response(srv, review(obj, uid=f"uid-{obj['kind']}-{field}"))
            assert response["allowed"] is False, (obj["kind"], field)
            message = response["status"]["message"]
            assert message.count("[pss-baseline-host-ports]") == 1 and "binds node port 9100" in message
            assert f"(ports[0].{field}" in message, message
            assert ("under hostNetwork: true" in message) is (field == "containerPort"), message
    finally:
        srv.stop()


def _workers(srv: Server) -> list[int]:
    pid = srv.process.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_killed_worker_is_restarted_and_stop_leaves_no_process(certs: CertSet) -> None:
    srv = start_server(certs, workers=2)
    try:
        first = _workers(srv)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        end = time.monotonic() + 60
        while time.monotonic() < end and not (len(_workers(srv)) == 2 and first[0] not in _workers(srv)):
            time.sleep(0.2)
        assert first[0] not in _workers(srv) and len(_workers(srv)) == 2
        srv.wait_ready()
        for _ in range(10):  # both workers answer
            assert _response(srv, review(COMPLIANT))["allowed"] is True
        assert "trustgate_worker_restarts_total 1" in srv.get("/metrics")[1]
        workers = _workers(srv)
    finally:
        srv.stop()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


IMMUTABLE_TEAM = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: team-label-is-immutable
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["apps"]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE"]
        resources: ["deployments"]
  validations:
    - expression: "oldObject == null || object.metadata.labels.team == oldObject.metadata.labels.team"
      message: the team label cannot change
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: team-label-is-immutable
spec:
  policyName: team-label-is-immutable
  validationActions: [Deny]
"""


def test_an_update_is_judged_against_the_old_object_as_the_api_server_does(
    certs: CertSet, tmp_path: Path
) -> None:
    """An admission UPDATE carries oldObject: a ValidatingAdmissionPolicy that compares with it
    sees it (were it reviewed as a CREATE, oldObject would be null and the change would pass)."""
    policy = tmp_path / "immutable.yaml"
    policy.write_text(IMMUTABLE_TEAM)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        f"manifests:\n  admissionPolicies: [{policy}]\n  policies: []\nkubernetes:\n  schemas: false\n"
    )
    old = json.loads(json.dumps(COMPLIANT))
    old["metadata"]["labels"] = {"team": "shop"}
    new = json.loads(json.dumps(old))
    new["metadata"]["labels"]["team"] = "someone-else"
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        changed = _response(srv, review(new, operation="UPDATE", old=old))
        assert changed["allowed"] is False, changed
        assert "the team label cannot change" in changed["status"]["message"]
        same = _response(srv, review(old, operation="UPDATE", old=old))
        assert same["allowed"] is True, same
        created = _response(srv, review(new))
        assert created["allowed"] is True, created
    finally:
        srv.stop()


def test_an_update_of_untyped_objects_is_judged_as_an_update(certs: CertSet, tmp_path: Path) -> None:
    """oldObject without apiVersion and kind is typed from request.kind like object: else the
    policies would not see the object as it is, and the UPDATE would pass as a CREATE."""
    policy = tmp_path / "immutable.yaml"
    policy.write_text(IMMUTABLE_TEAM)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        f"manifests:\n  admissionPolicies: [{policy}]\n  policies: []\nkubernetes:\n  schemas: false\n"
    )
    old = {k: v for k, v in json.loads(json.dumps(COMPLIANT)).items() if k not in ("apiVersion", "kind")}
    old["metadata"]["labels"] = {"team": "shop"}
    new = json.loads(json.dumps(old))
    new["metadata"]["labels"]["team"] = "someone-else"
    body = review(new, operation="UPDATE", old=old, kind="Deployment")
    body["request"]["kind"] = body["request"]["requestKind"] = {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        changed = _response(srv, body)
        assert changed["allowed"] is False, changed
        assert "the team label cannot change" in changed["status"]["message"]
    finally:
        srv.stop()


def test_an_object_in_another_namespace_than_the_request_is_denied(certs: CertSet, tmp_path: Path) -> None:
    """The API server refuses such a request before webhooks run: were it judged, an exception
    for one namespace would waive what is judged in the other."""
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nkubernetes: {schemas: false}\n"
        "exceptions:\n  - name: legacy\n    rules: ['pss-*', 'images-*', 'resources-*']\n"
        "    namespaces: [legacy]\n    owner: a@example.com\n    reason: test\n"
        "    expires: '2099-01-01'\n"
    )
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "nginx:latest", "securityContext": {"privileged": True}}]
        },
    }
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        for claimed, requested in (("legacy", "prod"), ("prod", "legacy")):
            pod = json.loads(json.dumps(privileged))
            pod["metadata"]["namespace"] = claimed
            answer = _response(srv, review(pod, namespace=requested))
            assert answer["allowed"] is False, answer
            assert answer["status"]["code"] == 400, answer
            assert "but request.namespace is" in answer["status"]["message"]
        waived = _response(srv, review(privileged, namespace="legacy"))
        assert waived["allowed"] is True, waived  # the exception itself still applies
    finally:
        srv.stop()


NO_DEBUG = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-debug}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["UPDATE"]
        resources: ["pods/ephemeralcontainers"]
  validations:
    - expression: "request.subResource != 'ephemeralcontainers'"
      message: "no kubectl debug"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-debug}
spec: {policyName: no-debug, validationActions: [Deny]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: pods-frozen}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["pods"]}
  validations:
    - expression: "false"
      message: "pods are frozen"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: pods-frozen}
spec: {policyName: pods-frozen, validationActions: [Deny]}
"""


def test_kubectl_debug_is_matched_by_admission_policies_as_the_subresource(
    certs: CertSet, tmp_path: Path
) -> None:
    """`kubectl debug` is an UPDATE of pods/ephemeralcontainers whose object is the Pod: a policy
    on `pods/ephemeralcontainers` applies to it (and sees request.subResource), one on `pods`
    does not (rules.go: `pods` matches the main resource only)."""
    policy = tmp_path / "debug.yaml"
    policy.write_text(NO_DEBUG)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        f"manifests:\n  admissionPolicies: [{policy}]\n  policies: []\nkubernetes:\n  schemas: false\n"
    )
    old = json.loads(json.dumps(LATEST_POD))
    old["spec"]["containers"][0]["image"] = "nginx:1.25"
    new = json.loads(json.dumps(old))
    new["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox:1.36"}]
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        debug = review(new, operation="UPDATE", old=old, sub_resource="ephemeralcontainers")
        debug["request"]["requestSubResource"] = "ephemeralcontainers"
        answer = _response(srv, debug)
        assert answer["allowed"] is False, answer
        assert "no kubectl debug" in answer["status"]["message"]
        assert "pods are frozen" not in answer["status"]["message"]
        updated = _response(srv, review(new, operation="UPDATE", old=old))
        assert updated["allowed"] is False, updated
        assert "pods are frozen" in updated["status"]["message"]
        assert "no kubectl debug" not in updated["status"]["message"]
    finally:
        srv.stop()


NO_CONTRACTORS = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: nocontractors}
spec:
  crd: {spec: {names: {kind: NoContractors}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package nocontractors
        violation[{"msg": "gatekeeper: contractors may not deploy"}] {
          input.review.userInfo.groups[_] == "contractors"
          not input.review.dryRun
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: NoContractors
metadata: {name: no-contractors}
spec:
  match: {kinds: [{apiGroups: ["*"], kinds: ["*"]}]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-contractor-updates}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: ["*"], apiVersions: ["*"], operations: [UPDATE], resources: ["*"]}
  validations:
    - expression: "!('contractors' in request.userInfo.groups)"
      message: "admission policy: contractors may not update"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-contractor-updates}
spec:
  policyName: no-contractor-updates
  validationActions: [Deny]
"""


def test_policies_that_read_who_asks_see_the_requests_user(certs: CertSet, tmp_path: Path) -> None:
    """Gatekeeper reviews the AdmissionRequest itself (`input.review.userInfo`, `dryRun`), and an
    admission policy's `request.userInfo` is who asked: at admission both are the request's."""
    gatekeeper = tmp_path / "gk.yaml"
    admission = tmp_path / "vap.yaml"
    documents = NO_CONTRACTORS.split("---\n")
    gatekeeper.write_text("---\n".join(documents[:2]))
    admission.write_text("---\n".join(documents[2:]))
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  policies: []\n"
        f"  gatekeeper: {{paths: [{gatekeeper}]}}\n  admissionPolicies: [{admission}]\n"
        "kubernetes:\n  schemas: false\n"
    )

    def as_contractor(body: dict[str, Any]) -> dict[str, Any]:
        body["request"]["userInfo"] = {"username": "eve", "groups": ["contractors", "system:authenticated"]}
        return body

    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        created = _response(srv, as_contractor(review(COMPLIANT)))
        assert created["allowed"] is False, created
        assert "gatekeeper: contractors may not deploy" in created["status"]["message"]
        assert "admission policy" not in created["status"]["message"]  # the policy is for UPDATEs
        updated = _response(srv, as_contractor(review(COMPLIANT, operation="UPDATE", old=COMPLIANT)))
        assert updated["allowed"] is False, updated
        assert "admission policy: contractors may not update" in updated["status"]["message"]
        dry = _response(srv, as_contractor(review(COMPLIANT, dry_run=True)))
        assert dry["allowed"] is True, dry  # the template reads dryRun from the request too
        assert _response(srv, review(COMPLIANT))["allowed"] is True  # alice is no contractor
    finally:
        srv.stop()


TEAM_REGO = """\
package team

import rego.v1

# who owns the workload: the owner label, else the team label (conflicts when they differ)
owner := input.metadata.labels.owner

owner := input.metadata.labels.team if not input.metadata.labels.owner == input.metadata.labels.team

warn contains msg if {
\tnot owner
\tmsg := "no owner or team label"
}
"""


def test_a_policy_failing_at_run_time_does_not_turn_a_violation_into_a_fail_open_allow(
    certs: CertSet, tmp_path: Path
) -> None:
    (tmp_path / "team.rego").write_text(TEAM_REGO)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  policies:\n"
        "    - builtin: pss-baseline\n    - builtin: pss-restricted\n    - builtin: supply-chain\n"
        "    - path: team.rego\n"
    )
    labels = {"owner": "a", "team": "b"}  # the two `owner` values conflict: team.warn fails
    privileged = json.loads(json.dumps(LATEST_POD))
    privileged["metadata"]["labels"] = labels
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    compliant = json.loads(json.dumps(COMPLIANT))
    compliant["spec"]["template"]["metadata"]["labels"] = {**labels, "app": "web"}
    compliant["metadata"]["labels"] = labels
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        response = _response(srv, review(privileged, uid="uid-rule-fails"), path="/validate/fail-open")
        assert response["allowed"] is False, response
        message = response["status"]["message"]
        assert "[pss-baseline-privileged]" in message and "[images-no-latest]" in message
        failed = "[policy/error] could not be evaluated: policy evaluation failed: rule data.team.warn: "
        assert failed in message
        assert "failure-policy" not in response["auditAnnotations"]  # a violation, not a failure
        # With nothing else blocking, the failing rule alone follows the failure policy.
        response = _response(srv, review(compliant, uid="uid-rule-fails-only"), path="/validate/fail-open")
        assert response["allowed"] is True, response
        assert response["auditAnnotations"]["failure-policy"] == "open"
        assert any("data.team.warn" in w for w in response["warnings"])
    finally:
        srv.stop()


def _ephemeral_review(containers: list[dict[str, Any]], uid: str) -> dict[str, Any]:
    """`kubectl debug` on Kubernetes 1.16-1.21: the subresource's own kind, EphemeralContainers."""

    def ephemeral(items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "EphemeralContainers",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "uid": "5c2a8f3e-0d7b-4d1e-9a57-3f1c2b6e8d90",
                "resourceVersion": "4711",
                "creationTimestamp": "2026-12-01T10:00:00Z",
            },
            "ephemeralContainers": items,
        }

    body = review(
        ephemeral(containers),
        operation="UPDATE",
        old=ephemeral([]),
        sub_resource="ephemeralcontainers",
        uid=uid,
    )
    body["request"]["resource"] = {"group": "", "version": "v1", "resource": "pods"}
    body["request"]["options"] = {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}
    return body


def test_ephemeral_containers_of_kubernetes_1_20_are_judged(certs: CertSet, tmp_path: Path) -> None:
    config = tmp_path / "trustgate.yaml"
    config.write_text("apiVersion: trustgate.dev/v1alpha1\nkind: Config\nimages:\n  unmatched: warn\n")
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        evil = {"name": "debugger", "image": "evil:latest", "securityContext": {"privileged": True}}
        response = _response(srv, _ephemeral_review([evil], "uid-debug-evil"))
        assert response["allowed"] is False, response
        message = response["status"]["message"]
        assert message.startswith("trustgate denied EphemeralContainers/shop/web: ")
        for rule in ("pss-baseline-privileged", "pss-restricted-run-as-non-root", "images-no-latest"):
            assert f"[{rule}] " in message
        assert any(
            w.startswith("[image-no-policy] no image rule matches evil:latest") for w in response["warnings"]
        )
        # A debugger the policies accept passes: the Pod built around it is not refused by the schemas.
        fine = {
            "name": "debugger",
            "image": "registry.example.com/debug:1.0",
            "targetContainerName": "web",
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePolicy": "File",
            "stdin": True,
            "tty": True,
            "securityContext": {
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }
        response = _response(srv, _ephemeral_review([fine], "uid-debug-fine"))
        assert response["allowed"] is True, response
        assert response["auditAnnotations"]["decision"] == "allowed"
        assert any("registry.example.com/debug:1.0" in w for w in response["warnings"])
    finally:
        srv.stop()


def test_an_object_without_kind_is_judged_as_request_kind_says(server: Server) -> None:
    untyped = {k: v for k, v in LATEST_POD.items() if k not in ("apiVersion", "kind")}
    body = review(untyped, uid="uid-untyped", kind="Pod")  # request.kind: v1 Pod, as the API server sends
    response = _response(server, body)
    assert response["allowed"] is False, response
    assert "[images-no-latest]" in response["status"]["message"]
    configmap = review({**LATEST_POD, "kind": "ConfigMap"}, uid="uid-mistyped", kind="Pod")
    response = _response(server, configmap)
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert "request.object.kind is 'ConfigMap', but request.kind says 'Pod'" in response["status"]["message"]


POD_KIND_ONLY = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: nolatestinpods}
spec:
  crd: {spec: {names: {kind: NoLatestInPods}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package nolatestinpods
        violation[{"msg": msg}] {
          input.review.kind.kind == "Pod"
          c := input.review.object.spec.ephemeralContainers[_]
          endswith(c.image, ":latest")
          msg := sprintf("gatekeeper: %v uses a latest tag", [c.name])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: NoLatestInPods
metadata: {name: no-latest}
spec:
  match: {kinds: [{apiGroups: [""], kinds: ["Pod"]}]}
"""


def test_a_template_sees_the_pod_an_ephemeral_containers_request_changes(
    certs: CertSet, tmp_path: Path
) -> None:
    """On 1.16-1.21 the request names EphemeralContainers while the object judged is the Pod built
    around them: `input.review.kind` says Pod, as the object does."""
    gatekeeper = tmp_path / "gk.yaml"
    gatekeeper.write_text(POD_KIND_ONLY)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  policies: []\n"
        f"  gatekeeper: {{paths: [{gatekeeper}]}}\nkubernetes:\n  schemas: false\n"
    )
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        response = _response(srv, _ephemeral_review([{"name": "debugger", "image": "evil:latest"}], "uid-gk"))
        assert response["allowed"] is False, response
        assert "gatekeeper: debugger uses a latest tag" in response["status"]["message"]
    finally:
        srv.stop()


NOT_WEB = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: noweb}
spec:
  crd: {spec: {names: {kind: NoWeb}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package noweb
        violation[{"msg": "gatekeeper: no web pods here"}] {
          input.review.kind.kind == "Pod"
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: NoWeb
metadata: {name: no-web}
spec:
  match: {kinds: [{apiGroups: [""], kinds: ["Pod"]}], name: "*web*"}
"""


def test_a_contains_name_pattern_matches_a_pod_created_with_generate_name(
    certs: CertSet, tmp_path: Path
) -> None:
    """At admission a Pod created with generateName has no name yet; Gatekeeper's namesMatch also
    reads its generateName (wildcard.MatchesGenerateName), so `*web*` denies `batch-web-`."""
    gatekeeper = tmp_path / "gk.yaml"
    gatekeeper.write_text(NOT_WEB)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  policies: []\n"
        f"  gatekeeper: {{paths: [{gatekeeper}]}}\nkubernetes:\n  schemas: false\n"
    )

    def pod(**metadata: str) -> dict[str, Any]:
        return {**POD, "metadata": {"namespace": "shop", **metadata}}

    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        denied = _response(srv, review(pod(generateName="batch-web-"), uid="uid-generated"))
        assert denied["allowed"] is False, denied
        assert "gatekeeper: no web pods here" in denied["status"]["message"]
        allowed = _response(srv, review(pod(generateName="batch-api-"), uid="uid-other"))
        assert allowed["allowed"] is True, allowed
    finally:
        srv.stop()
