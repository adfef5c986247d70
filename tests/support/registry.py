"""A real OCI registry for the tests, and two clearly named HTTP test doubles.

- `RegistryProcess`: Debian's `docker-registry` (CNCF distribution 2.8) started on
  127.0.0.1 with a free port and temp storage; anonymous, htpasswd (bcrypt) basic
  auth, token auth, or TLS with a CA generated here. Stopped afterwards.
- `TokenServer`: a test double for the *auth server only* of token auth: it issues
  ES256 JWTs signed by a test-only key whose certificate the real registry trusts.
- `ScriptedServer`: a deliberately faulty HTTP server for misbehaviours a real
  registry cannot be made to produce (truncated bodies, wrong media types, 429s...).
- `OciApiDouble`: an in-memory test double speaking the distribution-spec API
  including the OCI 1.1 referrers endpoint, which distribution 2.8 lacks.

Fixtures (registered through `pytest_plugins` in tests/conftest.py): `registry`,
`basic_registry`, `token_registry`, `tls_registry` (session-scoped), `oci_api_double`
and `scripted_server` (function-scoped), and `registry_client` to build a
`RegistryClient` for any of them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import secrets
import socket
import socketserver
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from support.components import missing

from trustgate.oci.client import RegistryClient, RegistrySettings

REGISTRY_BINARY = os.environ.get("TRUSTGATE_TEST_REGISTRY", "/usr/bin/docker-registry")
TEST_USER = "alice"
TEST_PASSWORD = "test-only-password"  # a test-only credential, never a real one
TEST_REFRESH_TOKEN = "test-only-refresh-token"  # what the TokenServer accepts as an identity token
TOKEN_SERVICE = "trustgate-test-registry"
TOKEN_ISSUER = "trustgate-test-token-issuer"
START_TIMEOUT = 20.0  # seconds; the registry normally listens within a fraction of a second


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def only_all_proxy(monkeypatch: pytest.MonkeyPatch, proxy: str) -> None:
    """Set ALL_PROXY to `proxy` and unset every other proxy variable (and NO_PROXY)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", proxy)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- certificates -------------------------------------------------------------------------------


@dataclass
class CertAuthority:
    """A test-only certificate authority (generated per session, never committed)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    path: Path  # PEM of the CA certificate

    @classmethod
    def create(cls, directory: Path, name: str = "trustgate test CA (test-only)") -> CertAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        path = directory / "ca.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key=key, cert=cert, path=path)

    def issue(
        self, directory: Path, name: str, *, server: bool = True
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path, Path]:
        """A leaf key and certificate for 127.0.0.1/localhost; returns key, cert, cert path, key path."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return key, cert, cert_path, key_path


# --- raw HTTP server used by the token server and the doubles ----------------------------------


@dataclass
class Request:
    method: str
    target: str  # path and query as sent
    headers: dict[str, str]  # lowercase names
    body: bytes

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query)


@dataclass
class Reply:
    """A response; `truncate_to` sends fewer body bytes than Content-Length says, then closes."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds before answering (for timeouts)
    truncate_to: int | None = None
    chunks_delay: float = 0.0  # seconds between 1-byte chunks of the body (a trickling server)
    length: bool = True  # False: no Content-Length, the body ends when the connection closes

    @classmethod
    def json(cls, data: Any, status: int = 200, content_type: str = "application/json", **kw: Any) -> Reply:
        return cls(
            status=status, headers={"Content-Type": content_type, **kw}, body=json.dumps(data).encode()
        )


_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 401: "Unauthorized", 404: "Not Found"}


class _Handler(socketserver.StreamRequestHandler):
    server: _RawServer

    def handle(self) -> None:
        while True:
            try:
                line = self.rfile.readline(65537)
            except OSError:
                return
            if not line or not line.strip():
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while True:
                header = self.rfile.readline(65537).decode("latin-1")
                if header in ("\r\n", "\n", ""):
                    break
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = self.rfile.read(int(headers.get("content-length", "0") or 0))
            request = Request(method=method, target=target, headers=headers, body=body)
            self.server.requests.append(request)
            reply = self.server.respond(request)
            if reply.delay:
                time.sleep(reply.delay)
            payload = reply.body
            head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
            fields = {"Content-Length": str(len(payload))} if reply.length else {}
            fields.update(reply.headers)
            closing = reply.truncate_to is not None or not reply.length
            if closing:
                fields["Connection"] = "close"
            head += [f"{k}: {v}" for k, v in fields.items()]
            data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
            send = b"" if method == "HEAD" else payload
            if reply.truncate_to is not None:
                send = send[: reply.truncate_to]
            try:
                if reply.chunks_delay:
                    self.wfile.write(data)
                    for i in range(len(send)):
                        self.wfile.write(send[i : i + 1])
                        self.wfile.flush()
                        time.sleep(reply.chunks_delay)
                else:
                    self.wfile.write(data + send)  # one send: no Nagle/delayed-ACK stall
                self.wfile.flush()
            except OSError:
                return
            if closing:
                return


class _RawServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, respond: Callable[[Request], Reply]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.respond = respond
        self.requests: list[Request] = []


class _Served:
    """Runs a _RawServer in a thread; `host` is 127.0.0.1:<port>."""

    def __init__(self, respond: Callable[[Request], Reply]) -> None:
        self._server = _RawServer(respond)
        self.port = int(self._server.server_address[1])
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- token server ---------------------------------------------------------------------------------


class TokenServer(_Served):
    """Test double of a registry *auth server* (distribution token spec), signing with a test-only key.

    Authenticated users get the actions they ask for; anonymous callers get `pull` on repositories
    under `public/` and nothing else. `issued` counts tokens handed out.
    """

    def __init__(self, ca: CertAuthority, directory: Path, *, expires_in: int = 300) -> None:
        self.key, self.cert, _, _ = ca.issue(directory, "token-signer", server=False)
        self.expires_in = expires_in
        self.issued = 0
        self._lock = threading.Lock()
        super().__init__(self._respond)

    def _respond(self, request: Request) -> Reply:
        if request.path != "/token":
            return Reply(status=404)
        user: str | None = None
        query = request.query
        if request.method == "POST":  # OAuth2 refresh-token grant, as Docker sends with an identitytoken
            form = urllib.parse.parse_qs(request.body.decode())
            if form.get("grant_type") != ["refresh_token"] or form.get("refresh_token") != [
                TEST_REFRESH_TOKEN
            ]:
                return Reply.json({"error": "invalid_grant"}, status=401)
            user, query = TEST_USER, form
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if (name, password) != (TEST_USER, TEST_PASSWORD):
                return Reply.json({"details": "wrong username or password"}, status=401)
            user = name
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            granted = wanted if user else [a for a in wanted if a == "pull" and name.startswith("public/")]
            if kind == "repository" and granted:
                access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": user or "",
            "aud": query.get("service", [""])[0],
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        token = f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
        with self._lock:
            self.issued += 1
        return Reply.json({"token": token, "access_token": token, "expires_in": self.expires_in})


# --- the real registry ---------------------------------------------------------------------------


@dataclass
class RegistryProcess:
    """A running `docker-registry`; `host` is 127.0.0.1:<port>."""

    host: str
    scheme: str
    directory: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    token_server: TokenServer | None = None
    started_in: float = 0.0  # seconds from exec to accepting connections

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def docker_config(self, *, username: str | None = None, password: str | None = None) -> Path:
        """A Docker config.json with this registry's credentials (or the given ones) as base64 `auth`."""
        user = username or self.username or ""
        secret = password or self.password or ""
        auth = base64.b64encode(f"{user}:{secret}".encode()).decode()
        path = self.directory / f"config-{secrets.token_hex(4)}.json"
        path.write_text(json.dumps({"auths": {self.host: {"auth": auth}}}))
        return path

    def settings(self, *, credentials: bool = True, **overrides: Any) -> RegistrySettings:
        """Client settings for this registry: insecure when plain HTTP, its CA when TLS."""
        insecure: tuple[str, ...] = ()
        if self.scheme == "http":
            insecure = (self.host,)
        if self.token_server is not None:
            insecure += (self.token_server.host,)
        values: dict[str, Any] = {
            "insecure": insecure,
            "ca_file": self.ca_file,
            "docker_config": self.docker_config()
            if credentials and self.username
            else self.directory / "no-docker-config.json",
            "retry_backoff_seconds": 0.01,
        }
        values.update(overrides)
        return RegistrySettings(**values)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.token_server is not None:
            self.token_server.stop()


def start_registry(
    directory: Path,
    *,
    auth: str | None = None,
    tls: bool = False,
    ca: CertAuthority | None = None,
) -> RegistryProcess:
    """Start `docker-registry` on 127.0.0.1 with storage under `directory`.

    Args:
        auth: None (anonymous), "htpasswd" (bcrypt basic auth for TEST_USER) or "token".
        tls: serve HTTPS with a certificate from `ca` (created when not given).
    """
    if not Path(REGISTRY_BINARY).is_file():
        missing(REGISTRY_BINARY, "run `make dev`: scripts/install-system-deps.sh installs docker-registry")
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(directory / "storage")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"secret": secrets.token_hex(16), "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    token_server = None
    if tls or auth == "token":
        ca = ca or CertAuthority.create(directory)
    if tls:
        assert ca is not None
        _, _, cert_path, key_path = ca.issue(directory, "registry")
        config["http"]["tls"] = {"certificate": str(cert_path), "key": str(key_path)}
    username = password = None
    if auth == "htpasswd":
        import bcrypt

        hashed = bcrypt.hashpw(TEST_PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (directory / "htpasswd").write_text(f"{TEST_USER}:{hashed}\n")
        config["auth"] = {"htpasswd": {"realm": "trustgate-test", "path": str(directory / "htpasswd")}}
        username, password = TEST_USER, TEST_PASSWORD
    elif auth == "token":
        assert ca is not None
        token_server = TokenServer(ca, directory)
        config["auth"] = {
            "token": {
                "realm": f"{token_server.url}/token",
                "service": TOKEN_SERVICE,
                "issuer": TOKEN_ISSUER,
                "rootcertbundle": str(ca.path),
            }
        }
        username, password = TEST_USER, TEST_PASSWORD
    elif auth is not None:
        raise ValueError(f"unknown auth {auth!r}")
    log_path = directory / "registry.log"
    for _ in range(3):  # the free port may be taken between probing and binding
        port = free_port()
        config["http"]["addr"] = f"127.0.0.1:{port}"
        config_path = directory / "config.yml"
        config_path.write_text(json.dumps(config))  # JSON is YAML
        started = time.perf_counter()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if _wait_listening(port, process):
            return RegistryProcess(
                host=f"127.0.0.1:{port}",
                scheme="https" if tls else "http",
                directory=directory,
                process=process,
                log_path=log_path,
                ca_file=ca.path if ca is not None else None,
                username=username,
                password=password,
                token_server=token_server,
                started_in=time.perf_counter() - started,
            )
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)
        if "address already in use" not in log_path.read_text(errors="replace"):
            break
    if token_server is not None:
        token_server.stop()
    raise RuntimeError(f"docker-registry did not start; its log:\n{log_path.read_text(errors='replace')}")


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """An anonymous plain-HTTP registry shared by the session (use a distinct repository per test)."""
    process = start_registry(tmp_path_factory.mktemp("registry"))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """A registry with htpasswd (bcrypt) basic auth for TEST_USER / TEST_PASSWORD."""
    process = start_registry(tmp_path_factory.mktemp("registry-basic"), auth="htpasswd")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """A registry with token auth; its auth server is the TokenServer double (`.token_server`)."""
    process = start_registry(tmp_path_factory.mktemp("registry-token"), auth="token")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """An anonymous registry over HTTPS with a certificate from a CA generated for the session."""
    process = start_registry(tmp_path_factory.mktemp("registry-tls"), tls=True)
    yield process
    process.stop()


@pytest.fixture
def registry_client() -> Iterator[Callable[..., RegistryClient]]:
    """`registry_client(process_or_settings, **overrides)`: a RegistryClient closed after the test."""
    clients: list[RegistryClient] = []

    def make(target: RegistryProcess | RegistrySettings, **overrides: Any) -> RegistryClient:
        sleep = overrides.pop("sleep", time.sleep)
        settings = target.settings(**overrides) if isinstance(target, RegistryProcess) else target
        client = RegistryClient(settings, sleep=sleep)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# --- test doubles ---------------------------------------------------------------------------------


class ScriptedServer(_Served):
    """A deliberately faulty registry (a test double): `routes` maps "METHOD /path" to replies.

    A route's value is a Reply, a list of Replies served in turn (the last one repeats), or a
    callable taking the Request. Unknown routes get 404.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Reply | list[Reply] | Callable[[Request], Reply]] = {}
        self._lock = threading.Lock()
        super().__init__(self._respond)

    def _respond(self, request: Request) -> Reply:
        with self._lock:
            route = self.routes.get(f"{request.method} {request.path}")
            if route is None:
                return Reply.json(
                    {"errors": [{"code": "NAME_UNKNOWN", "message": "not scripted"}]}, status=404
                )
            if isinstance(route, list):
                return route.pop(0) if len(route) > 1 else route[0]
        return route(request) if callable(route) else route


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class OciApiDouble(_Served):
    """An in-memory registry (a test double) with the OCI 1.1 referrers API, over plain HTTP.

    Speaks enough of the distribution spec for the client and the push helpers: manifests by tag
    and digest, blobs, monolithic uploads, and `GET /v2/<name>/referrers/<digest>` with the
    `artifactType` filter (reported in OCI-Filters-Applied unless `apply_filters` is False).
    """

    def __init__(self, *, apply_filters: bool = True) -> None:
        self.apply_filters = apply_filters
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}  # digest -> (media type, bytes)
        self.tags: dict[tuple[str, str], str] = {}  # (repository, tag) -> digest
        self._lock = threading.Lock()
        super().__init__(self._respond)

    def _respond(self, request: Request) -> Reply:
        path = request.path
        if path == "/v2/":
            return Reply.json({})
        with self._lock:
            if "/referrers/" in path:
                return self._referrers(request)
            if "/manifests/" in path:
                repository, _, target = path[len("/v2/") :].partition("/manifests/")
                return self._manifest(request, repository, target)
            if "/blobs/uploads/" in path:
                if request.method == "POST":
                    return Reply(status=202, headers={"Location": f"{path}{secrets.token_hex(4)}"})
                digest = request.query["digest"][0]
                if _digest(request.body) != digest:
                    return Reply.json(
                        {"errors": [{"code": "DIGEST_INVALID", "message": "digest"}]}, status=400
                    )
                self.blobs[digest] = request.body
                return Reply(status=201)
            if "/blobs/" in path:
                digest = path.rsplit("/", 1)[1]
                if digest not in self.blobs:
                    return Reply.json(
                        {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]}, status=404
                    )
                return Reply(headers={"Content-Type": "application/octet-stream"}, body=self.blobs[digest])
        return Reply(status=404)

    def _manifest(self, request: Request, repository: str, target: str) -> Reply:
        if request.method == "PUT":
            digest = _digest(request.body)
            self.manifests[digest] = (request.headers.get("content-type", ""), request.body)
            if not target.startswith("sha256:"):
                self.tags[(repository, target)] = digest
            return Reply(status=201, headers={"Docker-Content-Digest": digest})
        digest = target if target.startswith("sha256:") else self.tags.get((repository, target), "")
        if digest not in self.manifests:
            return Reply.json(
                {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}, status=404
            )
        media_type, body = self.manifests[digest]
        return Reply(headers={"Content-Type": media_type, "Docker-Content-Digest": digest}, body=body)

    def _referrers(self, request: Request) -> Reply:
        subject = request.path.rsplit("/", 1)[1]
        wanted = request.query.get("artifactType", [None])[0]
        entries = []
        for digest, (media_type, body) in sorted(self.manifests.items()):
            data = json.loads(body)
            if (data.get("subject") or {}).get("digest") != subject:
                continue
            artifact_type = data.get("artifactType") or (data.get("config") or {}).get("mediaType")
            if wanted and self.apply_filters and artifact_type != wanted:
                continue
            entry = {
                "mediaType": media_type,
                "digest": digest,
                "size": len(body),
                "artifactType": artifact_type,
            }
            if data.get("annotations"):
                entry["annotations"] = data["annotations"]
            entries.append(entry)
        headers = {"OCI-Filters-Applied": "artifactType"} if wanted and self.apply_filters else {}
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }
        return Reply.json(index, content_type="application/vnd.oci.image.index.v1+json", **headers)


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.stop()


@pytest.fixture
def oci_api_double() -> Iterator[OciApiDouble]:
    server = OciApiDouble()
    yield server
    server.stop()


def double_settings(server: _Served, **overrides: Any) -> RegistrySettings:
    """Settings for a plain-HTTP double: listed as insecure, no Docker credentials, quick retries."""
    values: dict[str, Any] = {
        "insecure": (server.host,),
        "docker_config": Path("/nonexistent/trustgate-test/config.json"),
        "retry_backoff_seconds": 0.01,
    }
    values.update(overrides)
    return RegistrySettings(**values)


__all__ = [
    "TEST_PASSWORD",
    "TEST_REFRESH_TOKEN",
    "TEST_USER",
    "CertAuthority",
    "OciApiDouble",
    "RegistryProcess",
    "Reply",
    "Request",
    "ScriptedServer",
    "TokenServer",
    "double_settings",
    "free_port",
    "start_registry",
]
