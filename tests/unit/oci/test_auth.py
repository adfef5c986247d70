"""Challenge parsing, Docker credentials and the token cache (no network)."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from trustgate.oci.auth import Challenge, DockerConfig, TokenCache, default_docker_config, parse_challenges
from trustgate.oci.errors import RegistryError


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/nginx:pull"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:library/nginx:pull",
                    },
                )
            ],
        ),
        ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
        (
            'Basic realm="a, b", Bearer realm="https://t/token", service=reg',
            [
                Challenge("basic", {"realm": "a, b"}),
                Challenge("bearer", {"realm": "https://t/token", "service": "reg"}),
            ],
        ),
        ('BEARER Realm="x\\"y"', [Challenge("bearer", {"realm": 'x"y'})]),
        (
            'Negotiate abc123==, Basic realm="r"',
            [Challenge("negotiate", {"": "abc123=="}), Challenge("basic", {"realm": "r"})],
        ),
        (
            'Bearer realm="https://t",scope="repository:a:pull,push",error="insufficient_scope"',
            [
                Challenge(
                    "bearer",
                    {"realm": "https://t", "scope": "repository:a:pull,push", "error": "insufficient_scope"},
                )
            ],
        ),
        ("", []),
        ("Basic", [Challenge("basic", {})]),
    ],
)
def test_parse_challenges(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


def _config(tmp_path: Path, data: object) -> DockerConfig:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return DockerConfig(path, helper_timeout_seconds=5)


def test_auths_base64_and_plain_and_identity_token(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw:with:colons").decode()},
                "registry.example.com:5000": {"username": "u", "password": "p"},
                "https://acr.example.com": {"identitytoken": "refresh-me"},
                "empty.example.com": {},
            }
        },
    )
    hub = config.credentials("docker.io")
    assert hub is not None and (hub.username, hub.password) == ("hub", "pw:with:colons")
    plain = config.credentials("registry.example.com:5000")
    assert plain is not None and plain.basic_header() == "Basic " + base64.b64encode(b"u:p").decode()
    token = config.credentials("acr.example.com")
    assert token is not None and token.identity_token == "refresh-me" and token.basic_header() is None
    assert config.credentials("empty.example.com") is None
    assert config.credentials("other.example.com") is None


def test_bad_auth_entry_is_a_clear_error(tmp_path: Path) -> None:
    config = _config(tmp_path, {"auths": {"r.example.com": {"auth": "***not base64***"}}})
    with pytest.raises(RegistryError) as caught:
        config.credentials("r.example.com")
    assert caught.value.kind == "unauthorized"
    assert "not base64" in caught.value.message and "r.example.com" in caught.value.message


def test_unreadable_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{ not json")
    with pytest.raises(RegistryError, match="cannot read the Docker credentials file"):
        DockerConfig(path).credentials("r.example.com")


def test_missing_config_means_anonymous(tmp_path: Path) -> None:
    assert DockerConfig(tmp_path / "absent.json").credentials("r.example.com") is None


def _helper(directory: Path, name: str, script: str) -> None:
    path = directory / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_credential_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Echo back the server URL read on stdin as the username, as a real helper's lookup key.
    _helper(
        bin_dir,
        "echo",
        'read server; printf \'{"ServerURL":"%s","Username":"%s","Secret":"s3"}\' "$server" "$server"\n',
    )
    _helper(bin_dir, "tok", 'read server; echo \'{"ServerURL":"x","Username":"<token>","Secret":"idt"}\'\n')
    _helper(bin_dir, "none", "echo 'credentials not found in native keychain'; exit 1\n")
    _helper(bin_dir, "broken", "echo 'dbus is down' >&2; exit 3\n")
    _helper(bin_dir, "slow", "sleep 5\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = _config(
        tmp_path,
        {
            "credHelpers": {
                "helped.example.com": "echo",
                "tok.example.com": "tok",
                "none.example.com": "none",
                "broken.example.com": "broken",
                "missing.example.com": "does-not-exist",
            },
            "credsStore": "echo",
            "auths": {"filed.example.com": {"username": "f", "password": "g"}},
        },
    )
    helped = config.credentials("helped.example.com")
    assert helped is not None and (helped.username, helped.password) == ("helped.example.com", "s3")
    assert helped.source == "docker-credential-echo"
    hub = config.credentials("docker.io")  # via credsStore, asked with Docker Hub's legacy URL
    assert hub is not None and hub.username == "https://index.docker.io/v1/"
    token = config.credentials("tok.example.com")
    assert token is not None and token.identity_token == "idt" and token.username is None
    assert config.credentials("none.example.com") is None
    filed = config.credentials("filed.example.com")  # an auths entry wins over credsStore
    assert filed is not None and filed.username == "f"
    with pytest.raises(RegistryError, match="dbus is down"):
        config.credentials("broken.example.com")
    with pytest.raises(RegistryError, match=r"docker-credential-does-not-exist.*not installed"):
        config.credentials("missing.example.com")
    slow = DockerConfig(config.path, helper_timeout_seconds=0.2)
    slow._loaded = {"credHelpers": {"slow.example.com": "slow"}}
    with pytest.raises(RegistryError, match=r"did not answer within 0\.2 s"):
        slow.credentials("slow.example.com")


def test_default_docker_config() -> None:
    assert default_docker_config({"DOCKER_CONFIG": "/etc/dc"}) == Path("/etc/dc/config.json")
    assert default_docker_config({}) == Path.home() / ".docker" / "config.json"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_cache_expiry_and_forget() -> None:
    clock = _Clock()
    cache = TokenCache(clock)
    cache.put("r", "repository:a:pull", "t1", 60)
    assert cache.get("r", "repository:a:pull") == "t1"
    assert cache.get("r", "repository:b:pull") is None
    assert cache.get("other", "repository:a:pull") is None
    clock.now += 54  # renewed 5 s before expiry
    assert cache.get("r", "repository:a:pull") == "t1"
    clock.now += 2
    assert cache.get("r", "repository:a:pull") is None
    cache.put("r", "s", "t2", None)  # no expires_in: the spec's 60 s
    cache.forget("r", "s", "someone-else's")
    assert cache.get("r", "s") == "t2"
    cache.forget("r", "s", "t2")
    assert cache.get("r", "s") is None


def test_token_cache_shares_one_fetch_between_threads() -> None:
    cache = TokenCache()
    calls: list[int] = []
    gate = threading.Event()

    def fetch() -> tuple[str, float | None]:
        calls.append(1)
        gate.wait(5)
        return "shared", 300.0

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_fetch("r", "s", fetch))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(5)
    assert results == ["shared"] * 8
    assert len(calls) == 1
