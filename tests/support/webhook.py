"""Test certificates and a real `trustgate serve` process on 127.0.0.1.

Test-only keys, generated per run with `cryptography`.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUSTGATE = Path(sys.executable).with_name("trustgate")

# A Pod every bundled policy allows (the webhook tests' and benches' well-behaved request).
POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "web",
                "image": "registry.example.com/web:1.2.3",  # no image rule covers it: policy only
                "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    },
}


@dataclass(frozen=True)
class CertSet:
    """A CA and certificates it signed, as files."""

    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    cn: str,
    *,
    server: bool,
    sans: Sequence[str] = ("localhost",),
    ips: Sequence[str] = ("127.0.0.1",),
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        names: list[x509.GeneralName] = [x509.DNSName(s) for s in sans]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def make_certs(directory: Path, *, cn: str = "trustgate test CA") -> CertSet:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key, directory / "ca.key")
    skey, scert = issue(
        ca_key, ca_cert, "trustgate.trustgate.svc", server=True, sans=("localhost", "trustgate.trustgate.svc")
    )
    (directory / "tls.crt").write_bytes(scert.public_bytes(serialization.Encoding.PEM))
    _write_key(skey, directory / "tls.key")
    ckey, ccert = issue(ca_key, ca_cert, "kube-apiserver", server=False)
    (directory / "client.crt").write_bytes(ccert.public_bytes(serialization.Encoding.PEM))
    _write_key(ckey, directory / "client.key")
    return CertSet(
        directory,
        directory / "ca.crt",
        directory / "tls.crt",
        directory / "tls.key",
        directory / "client.crt",
        directory / "client.key",
    )


@dataclass
class Server:
    """A running `trustgate serve`."""

    process: subprocess.Popen[bytes]
    port: int
    certs: CertSet
    stderr: list[str] = field(default_factory=list)
    _drain: threading.Thread | None = None
    health_port: int = 0  # the plain-HTTP /healthz, /readyz, /metrics port

    def health(self, path: str) -> tuple[int, str]:
        """GET over plain HTTP on the health port (no TLS, no client certificate)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.health_port, timeout=30)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def context(self, *, client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.certs.ca))
        if client_cert:
            context.load_cert_chain(str(self.certs.client_cert), str(self.certs.client_key))
        return context

    def connection(self, *, client_cert: bool = False, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.context(client_cert=client_cert), timeout=timeout
        )

    def post(self, body: bytes | dict[str, Any], *, path: str = "/validate") -> tuple[int, Any]:
        conn = self.connection()
        try:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
            try:
                return response.status, json.loads(raw)
            except ValueError:
                return response.status, raw.decode(errors="replace")
        finally:
            conn.close()

    def get(self, path: str) -> tuple[int, str]:
        conn = self.connection()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def wait_ready(self, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError("trustgate serve exited:\n" + "".join(self.stderr))
            try:
                status, _ = self.get("/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("trustgate serve did not become ready:\n" + "".join(self.stderr))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._drain is not None:
            self._drain.join(timeout=10)  # EOF once the process is gone; then the pipe can close
        if self.process.stderr is not None and (self._drain is None or not self._drain.is_alive()):
            self.process.stderr.close()


def start_server(
    certs: CertSet,
    *args: str,
    workers: int = 2,
    env: dict[str, str] | None = None,
    client_ca: bool = False,
    wait: bool = True,
) -> Server:
    """Start `trustgate serve` on 127.0.0.1 and a free port; wait until ready."""
    command = [
        str(TRUSTGATE), "serve", "--host", "127.0.0.1", "--port", "0",
        "--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
        "--workers", str(workers), "--health-port", "0", *args,
    ]  # fmt: skip
    if client_ca:
        command += ["--client-ca", str(certs.ca)]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    assert process.stderr is not None
    lines: list[str] = []
    port = health_port = 0
    end = time.monotonic() + 120
    while time.monotonic() < end:
        raw = process.stderr.readline()
        if not raw:
            break
        line = raw.decode(errors="replace")
        lines.append(line)
        found = re.search(r"listening on https://[^ ]+:(\d+) ", line)
        if found:
            port = int(found.group(1))
            health = re.search(r"health on http://[^ ]+:(\d+)", line)
            health_port = int(health.group(1)) if health else 0
            break
    if not port:
        process.kill()
        rest = process.stderr.read().decode(errors="replace")
        raise RuntimeError("trustgate serve did not start:\n" + "".join(lines) + rest)
    server = Server(process, port, certs, lines, health_port=health_port)

    def drain() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            server.stderr.append(raw.decode(errors="replace"))

    server._drain = threading.Thread(target=drain, daemon=True)
    server._drain.start()
    if wait:
        server.wait_ready()
    return server


def review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    uid: str = "0b6a3c0e-1111-4a5b-9c7d-000000000001",
    namespace: str | None = None,
    old: dict[str, Any] | None = None,
    dry_run: bool = False,
    sub_resource: str | None = None,
    kind: str | None = None,
) -> dict[str, Any]:
    """An AdmissionReview as the API server sends it."""
    source = obj or old or {}
    kind = kind or source.get("kind", "Pod")
    group, _, version = str(source.get("apiVersion", "v1")).rpartition("/")
    namespace = namespace if namespace is not None else source.get("metadata", {}).get("namespace", "default")
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "name": source.get("metadata", {}).get("name", ""),
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "alice@example.com", "groups": ["developers", "system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
