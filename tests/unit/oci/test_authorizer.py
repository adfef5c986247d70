"""The auth flow (trustgate.oci.authorizer) over a transport double: challenges, Basic, bearer
tokens from the realm (anonymous, with credentials, as a refresh-token grant), their cache, and
every way a token server can fail; then through the registry client (a 401, a token, a retry)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from support.oci_memory import MemoryTransport

from trustgate.oci.auth import Challenge
from trustgate.oci.authorizer import Authorizer, pick_challenge
from trustgate.oci.client import RegistryClient
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference
from trustgate.oci.settings import RegistrySettings
from trustgate.oci.transport import Exchange, Headers, Response

REF = Reference.parse("registry.test/shop/api:v1")
SCOPE = "repository:shop/api:pull"
BEARER = 'Bearer realm="https://auth.test/token",service="registry.test"'


class TokenServer:
    """A token server at any realm: answers `answer` (status, body) and records each exchange."""

    def __init__(self, status: int = 200, body: bytes | None = None) -> None:
        self.status = status
        self.body = json.dumps({"token": "t-1", "expires_in": 300}).encode() if body is None else body
        self.exchanges: list[Exchange] = []

    @contextmanager
    def fetch(self, exchange: Exchange) -> Iterator[Response]:
        self.exchanges.append(exchange)
        yield Response(self.status, Headers.of([("Content-Length", str(len(self.body)))]), iter([self.body]))

    def close(self) -> None:
        pass


def _settings(
    tmp_path: Path, auths: dict[str, object] | None = None, *, insecure: tuple[str, ...] = ()
) -> RegistrySettings:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": auths or {}}))
    return RegistrySettings(docker_config=config, insecure=insecure)


def test_pick_challenge_prefers_bearer_then_basic() -> None:
    basic, bearer = Challenge("basic", {}), Challenge("bearer", {"realm": "https://t"})
    assert pick_challenge([basic, bearer]) is bearer
    assert pick_challenge([Challenge("negotiate", {}), basic]) is basic
    assert pick_challenge([Challenge("negotiate", {})]) is None


def test_no_header_until_the_registry_asks(tmp_path: Path) -> None:
    server = TokenServer()
    auth = Authorizer(_settings(tmp_path), server)
    assert auth.header(REF, SCOPE) is None
    assert not auth.challenged(REF, SCOPE, None, "Negotiate abc==")  # nothing trustgate answers
    assert auth.header(REF, SCOPE) is None and server.exchanges == []


def test_an_anonymous_bearer_token_is_fetched_once_per_scope(tmp_path: Path) -> None:
    server = TokenServer()
    auth = Authorizer(_settings(tmp_path), server)
    assert auth.challenged(REF, SCOPE, None, BEARER)
    assert auth.header(REF, SCOPE) == "Bearer t-1"
    assert auth.header(REF, SCOPE) == "Bearer t-1"
    assert len(server.exchanges) == 1  # cached
    sent = server.exchanges[0]
    assert sent.method == "GET" and "Authorization" not in sent.headers
    query = parse_qs(urlsplit(sent.url).query)
    assert query == {"scope": [SCOPE], "service": ["registry.test"]}
    auth.header(REF, "repository:shop/api:pull,push")
    assert len(server.exchanges) == 2  # another scope, another token


def test_a_refused_token_is_dropped_and_a_new_one_fetched(tmp_path: Path) -> None:
    server = TokenServer()
    auth = Authorizer(_settings(tmp_path), server)
    auth.challenged(REF, SCOPE, None, BEARER)
    first = auth.header(REF, SCOPE)
    server.body = json.dumps({"access_token": "t-2"}).encode()
    assert auth.challenged(REF, SCOPE, first, BEARER)  # the registry said 401 to t-1
    assert auth.header(REF, SCOPE) == "Bearer t-2" and len(server.exchanges) == 2
    # The same token again is nothing new to send: the client stops there.
    server.body = json.dumps({"token": "t-2"}).encode()
    assert not auth.challenged(REF, SCOPE, "Bearer t-2", BEARER)


def test_basic_credentials_go_to_the_token_server_and_to_basic_registries(tmp_path: Path) -> None:
    server = TokenServer()
    settings = _settings(tmp_path, {"registry.test": {"username": "u", "password": "p"}})
    basic = "Basic " + base64.b64encode(b"u:p").decode()
    auth = Authorizer(settings, server)
    auth.challenged(REF, SCOPE, None, BEARER)
    assert auth.header(REF, SCOPE) == "Bearer t-1"
    assert server.exchanges[0].headers["Authorization"] == basic
    plain = Authorizer(settings, server)
    assert plain.challenged(REF, SCOPE, None, 'Basic realm="registry"')
    assert plain.header(REF, SCOPE) == basic
    assert not plain.challenged(REF, SCOPE, basic, 'Basic realm="registry"')  # refused: nothing new
    (tmp_path / "anonymous").mkdir()
    anonymous = Authorizer(_settings(tmp_path / "anonymous"), server)
    assert not anonymous.challenged(REF, SCOPE, None, 'Basic realm="registry"')  # nothing to send


def test_an_identity_token_is_a_refresh_token_grant(tmp_path: Path) -> None:
    server = TokenServer()
    auth = Authorizer(_settings(tmp_path, {"registry.test": {"identitytoken": "refresh-me"}}), server)
    auth.challenged(REF, SCOPE, None, BEARER)
    assert auth.header(REF, SCOPE) == "Bearer t-1"
    sent = server.exchanges[0]
    assert sent.method == "POST" and sent.url == "https://auth.test/token"
    form = parse_qs((sent.content or b"").decode())
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["refresh-me"]
    assert form["scope"] == [SCOPE] and form["service"] == ["registry.test"]


@pytest.mark.parametrize(
    ("challenge", "status", "body", "kind", "words"),
    [
        ('Bearer realm="not a url"', 200, None, "unauthorized", "which is not a URL"),
        ('Bearer realm="http://auth.test/token"', 200, None, "tls", "is plain HTTP"),
        (BEARER, 401, b"", "unauthorized", "refused no credentials (anonymous)"),
        (BEARER, 403, b"", "forbidden", "(HTTP 403)"),
        (BEARER, 500, b"", "server-error", "answered HTTP 500"),
        (BEARER, 200, b"<html>", "unauthorized", "not token JSON"),
        (BEARER, 200, b"{}", "unauthorized", "without a token"),
        (BEARER, 200, b"x" * (64 * 1024 + 1), "too-large", "above the limit"),
    ],
)
def test_every_token_server_failure_is_a_registry_error_naming_the_realm(
    tmp_path: Path, challenge: str, status: int, body: bytes | None, kind: str, words: str
) -> None:
    auth = Authorizer(_settings(tmp_path), TokenServer(status, body))
    with pytest.raises(RegistryError) as caught:
        auth.challenged(REF, SCOPE, None, challenge)
    assert caught.value.kind == kind
    assert words in caught.value.message and "registry.test" in caught.value.message


def test_a_plain_http_realm_is_used_when_listed_as_insecure(tmp_path: Path) -> None:
    server = TokenServer()
    auth = Authorizer(_settings(tmp_path, insecure=("auth.test",)), server)
    assert auth.challenged(REF, SCOPE, None, 'Bearer realm="http://auth.test/token"')
    assert server.exchanges[0].url.startswith("http://auth.test/token?")


class _GuardedRegistry(MemoryTransport):
    """The in-memory registry behind bearer auth: 401 with a challenge without the token."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = 0
        self.token = "good"

    @contextmanager
    def fetch(self, exchange: Exchange) -> Iterator[Response]:
        if exchange.url.startswith("https://auth.test/"):
            self.tokens += 1
            self.requests.append(f"{exchange.method} token")
            body = json.dumps({"token": self.token}).encode()
            yield Response(200, Headers.of([("Content-Length", str(len(body)))]), iter([body]))
            return
        if exchange.headers.get("Authorization") != "Bearer good":
            self.requests.append(f"{exchange.method} {urlsplit(exchange.url).path} 401")
            yield Response(401, Headers.of([("WWW-Authenticate", BEARER)]), iter([]))
            return
        with super().fetch(exchange) as response:
            yield response


def test_the_client_answers_a_challenge_once_and_reuses_the_token(tmp_path: Path) -> None:
    transport = _GuardedRegistry()
    client = RegistryClient(_settings(tmp_path), transport=transport)
    digest = "sha256:" + "0" * 64
    with pytest.raises(RegistryError, match="does not exist"):
        client.blob(REF, digest)
    with pytest.raises(RegistryError, match="does not exist"):
        client.blob(REF, digest)
    assert transport.requests == [
        f"GET /v2/shop/api/blobs/{digest} 401",
        "GET token",
        f"GET /v2/shop/api/blobs/{digest}",
        f"GET /v2/shop/api/blobs/{digest}",  # the cached token, sent at once
    ]


def test_the_client_gives_up_when_the_token_is_refused(tmp_path: Path) -> None:
    transport = _GuardedRegistry()
    transport.token = "rejected"
    client = RegistryClient(_settings(tmp_path), transport=transport)
    with pytest.raises(RegistryError) as caught:
        client.resolve(REF)
    assert caught.value.kind == "unauthorized"
    assert "refused access anonymously (no credentials)" in caught.value.message
    # One fresh token after the refusal; the server gave the same one again, nothing new: no loop.
    assert transport.tokens == 2
