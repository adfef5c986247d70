"""A real etcd and kube-apiserver on 127.0.0.1, in a temp dir, for end-to-end admission tests.

kube-apiserver comes from `scripts/kube-apiserver.sh` (built from Debian's
`kubernetes` source package, cached outside the repository); etcd from Debian's
`etcd-server`. No controller-manager or kubelet: objects are stored, never run.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes import client as k8s
from support.components import missing
from support.webhook import CertSet, make_certs

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def kube_apiserver_binary() -> Path:
    """The cached binary; builds it first when missing (several minutes)."""
    done = subprocess.run(
        ["sh", str(ROOT / "scripts" / "kube-apiserver.sh")],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError("scripts/kube-apiserver.sh failed:\n" + done.stderr[-4000:])
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass
class Cluster:
    """etcd + kube-apiserver; `token` is a system:masters bearer token."""

    directory: Path
    port: int
    token: str
    certs: CertSet
    etcd: subprocess.Popen[bytes]
    apiserver: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return (self.directory / "kube-apiserver.log").read_text(errors="replace")[-6000:]

    def client_configuration(self) -> k8s.Configuration:
        """A kubernetes client configuration for this API server, with the system:masters token."""
        configuration = k8s.Configuration()
        configuration.host = self.url
        configuration.api_key = {"authorization": f"Bearer {self.token}"}
        configuration.ssl_ca_cert = str(self.certs.ca)
        return configuration

    def stop(self) -> None:
        for process in (self.apiserver, self.etcd):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _popen(command: list[str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def start_cluster(directory: Path, binary: Path) -> Cluster:
    etcd_bin = shutil.which("etcd") or "/usr/bin/etcd"
    if not Path(etcd_bin).is_file():
        missing("etcd", "run `make dev`: scripts/install-system-deps.sh installs etcd-server")
    client_port, peer_port, port = _free_port(), _free_port(), _free_port()
    (directory / "etcd").mkdir(parents=True)
    with (directory / "etcd.log").open("wb") as etcd_log:  # the child keeps its own descriptor
        etcd = _popen(
        [
            etcd_bin, "--name", "default", "--data-dir", str(directory / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{client_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{client_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
            "--log-level", "warn",
        ],
        etcd_log,
        )  # fmt: skip
    certs = make_certs(directory / "pki", cn="kube test CA")
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (directory / "sa.key").write_bytes(
        sa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    token = secrets.token_hex(16)
    (directory / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
    with (directory / "kube-apiserver.log").open("wb") as log:
        apiserver = _popen(
        [
            str(binary),
            f"--etcd-servers=http://127.0.0.1:{client_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={port}", "--insecure-port=0",
            f"--tls-cert-file={certs.server_cert}", f"--tls-private-key-file={certs.server_key}",
            f"--cert-dir={directory / 'certs'}",
            f"--token-auth-file={directory / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={directory / 'sa.key'}",
            f"--service-account-signing-key-file={directory / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--disable-admission-plugins=ServiceAccount",
            "--enable-priority-and-fairness=false",
            "--feature-gates=EphemeralContainers=true",  # alpha in 1.20: pods/ephemeralcontainers
            "--profiling=false",
            "--v=1",
        ],
        log,
        )  # fmt: skip
    cluster = Cluster(directory, port, token, certs, etcd, apiserver)
    _wait_ready(cluster)
    return cluster


def _wait_ready(cluster: Cluster, timeout: float = 180) -> None:
    import ssl
    import urllib.request

    context = ssl.create_default_context(cafile=str(cluster.certs.ca))
    end = time.monotonic() + timeout
    last = ""
    while time.monotonic() < end:
        if cluster.apiserver.poll() is not None:
            raise RuntimeError("kube-apiserver exited:\n" + cluster.logs())
        request = urllib.request.Request(
            cluster.url + "/readyz", headers={"Authorization": f"Bearer {cluster.token}"}
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError as e:
            last = str(e)
        time.sleep(0.5)
    cluster.stop()
    raise RuntimeError(f"kube-apiserver not ready after {timeout}s ({last}):\n" + cluster.logs())
