"""Registry authentication: challenges, credentials and bearer tokens.

Owns: parsing `WWW-Authenticate` challenges (RFC 7235), finding credentials for
a registry in a Docker `config.json` (`auths`, `credHelpers`, `credsStore`,
identity tokens) and caching bearer tokens per registry and scope until they
expire. Leaves out: the HTTP requests themselves and the flow from a 401 to
a token (authorizer.py, which fetches tokens through `TokenCache.get_or_fetch`).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from trustgate import untrusted_json
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import DOCKER_HUB

_HUB_CONFIG_KEY: Final = "https://index.docker.io/v1/"  # how Docker files credentials for docker.io
_TOKEN_EXPIRY_MARGIN: Final = 5.0  # seconds; a token is renewed this long before it expires
_DEFAULT_TOKEN_SECONDS: Final = 60.0  # the distribution token spec's default `expires_in`


@dataclass(frozen=True, slots=True)
class Challenge:
    """One authentication challenge: `scheme` in lowercase and its parameters (names lowercased)."""

    scheme: str
    params: Mapping[str, str]

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


_TOKEN: Final = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM: Final = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))\s*')
_SCHEME: Final = re.compile(rf"\s*({_TOKEN})(?=\s|,|$)")
_TOKEN68: Final = re.compile(r"\s*([A-Za-z0-9\-._~+/]+=*)\s*(?=,|$)")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a `WWW-Authenticate` value into its challenges, in order.

    Accepts several challenges in one header (`Basic realm="a", Bearer realm="b"`), quoted strings
    with escapes, unquoted values and a token68 (`Negotiate abc==`). Malformed trailing text is
    ignored rather than raising: a registry's odd header must not hide the challenges before it.
    """
    challenges: list[Challenge] = []
    pos, end = 0, len(header)
    while pos < end:
        while pos < end and header[pos] in ", \t":
            pos += 1
        scheme_match = _SCHEME.match(header, pos)
        if scheme_match is None:
            break
        scheme = scheme_match.group(1).lower()
        pos = scheme_match.end()
        params: dict[str, str] = {}
        token68 = _TOKEN68.match(header, pos)
        if token68 is not None and not _PARAM.match(header, pos):
            params[""] = token68.group(1)
            pos = token68.end()
        else:
            while pos < end:
                param = _PARAM.match(header, pos)
                if param is None:
                    break
                value = param.group(2)
                value = re.sub(r"\\(.)", r"\1", value) if value is not None else param.group(3)
                params[param.group(1).lower()] = value
                pos = param.end()
                # a comma then either another parameter or the next challenge's scheme
                if pos < end and header[pos] == ",":
                    lookahead = _PARAM.match(header, pos + 1)
                    if lookahead is None:
                        break
                    pos += 1
        challenges.append(Challenge(scheme=scheme, params=params))
    return challenges


@dataclass(frozen=True, slots=True)
class Credentials:
    """What to authenticate with; `identity_token` is an OAuth2 refresh token (Docker's `identitytoken`)."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    source: str = ""  # "config.json auths", "docker-credential-pass", ... for messages

    def basic_header(self) -> str | None:
        if self.username is None or self.password is None:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def default_docker_config(environ: Mapping[str, str] | None = None) -> Path:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (as the Docker CLI)."""
    env = os.environ if environ is None else environ
    directory = env.get("DOCKER_CONFIG")
    return Path(directory) / "config.json" if directory else Path.home() / ".docker" / "config.json"


def _config_host(key: str) -> str:
    host = key.split("://", 1)[-1].split("/", 1)[0].lower()
    return DOCKER_HUB if host in {"index.docker.io", "registry-1.docker.io", "docker.io"} else host


class DockerConfig:
    """Credentials from a Docker `config.json`, read once; thread-safe.

    Precedence follows the Docker CLI: a `credHelpers` entry for the registry, else an `auths` entry
    with credentials, else the `credsStore` helper. Helpers run as `docker-credential-<name> get`
    with a timeout, only when a registry asks for credentials.
    """

    def __init__(self, path: Path | None, *, helper_timeout_seconds: float = 10.0) -> None:
        self.path = path
        self.helper_timeout_seconds = helper_timeout_seconds
        self._loaded: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._helper_cache: dict[str, Credentials | None] = {}

    def _config(self, registry: str) -> dict[str, Any]:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._read(registry)
            return self._loaded

    def _read(self, registry: str) -> dict[str, Any]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = untrusted_json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RegistryError(
                "unauthorized",
                f"cannot read the Docker credentials file {self.path}: {e}",
                registry=registry,
                hint="fix or remove the file, or point docker_config at another one",
            ) from e
        return data if isinstance(data, dict) else {}

    def credentials(self, registry: str) -> Credentials | None:
        """Credentials for `registry` (host[:port], normalised as in `Reference`), or None.

        Raises:
            RegistryError: ("unauthorized") the file is unreadable, an `auth` entry is not valid base64,
                or the credential helper is missing, fails or times out.
        """
        config = self._config(registry)
        helpers = config.get("credHelpers")
        if isinstance(helpers, dict):
            for key, helper in helpers.items():
                if isinstance(helper, str) and _config_host(key) == registry:
                    return self._from_helper(helper, registry)
        auths = config.get("auths")
        if isinstance(auths, dict):
            for key, entry in auths.items():
                if isinstance(entry, dict) and _config_host(key) == registry:
                    found = self._from_entry(entry, registry)
                    if found is not None:
                        return found
        store = config.get("credsStore")
        if isinstance(store, str) and store:
            return self._from_helper(store, registry)
        return None

    def _from_entry(self, entry: Mapping[str, Any], registry: str) -> Credentials | None:
        source = f"{self.path} auths"
        username, password = entry.get("username"), entry.get("password")
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            try:
                decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as e:
                raise RegistryError(
                    "unauthorized",
                    f'the "auth" entry for {registry} in {self.path} is not base64 of "user:password"',
                    registry=registry,
                    hint="log in again (docker login) to rewrite it",
                ) from e
            username, _, password = decoded.partition(":")
        identity = entry.get("identitytoken")
        identity_token = identity if isinstance(identity, str) and identity else None
        if not (isinstance(username, str) and username) and identity_token is None:
            return None
        return Credentials(
            username=username if isinstance(username, str) and username else None,
            password=password if isinstance(password, str) else None,
            identity_token=identity_token,
            source=source,
        )

    def _from_helper(self, helper: str, registry: str) -> Credentials | None:
        with self._lock:
            if registry in self._helper_cache:
                return self._helper_cache[registry]
        program = f"docker-credential-{helper}"
        server = _HUB_CONFIG_KEY if registry == DOCKER_HUB else registry
        try:
            done = subprocess.run(
                [program, "get"],
                input=server.encode(),
                capture_output=True,
                timeout=self.helper_timeout_seconds,
                check=False,
            )
        except FileNotFoundError as e:
            raise RegistryError(
                "unauthorized",
                f"the Docker config {self.path} names the credential helper {program} for {registry}, "
                "and it is not installed (not on PATH)",
                registry=registry,
                hint=f"install {program} or remove it from credHelpers/credsStore",
            ) from e
        except subprocess.TimeoutExpired as e:
            raise RegistryError(
                "unauthorized",
                f"the credential helper {program} did not answer within {self.helper_timeout_seconds:g} s "
                f"for {registry}",
                registry=registry,
            ) from e
        out = done.stdout.decode("utf-8", "replace").strip()
        if done.returncode != 0:
            message = (out or done.stderr.decode("utf-8", "replace")).strip()
            if "credentials not found" in message.lower():
                found = None
            else:
                raise RegistryError(
                    "unauthorized",
                    f"the credential helper {program} failed for {registry}: {message[:300]}",
                    registry=registry,
                )
        else:
            try:
                data = untrusted_json.loads(out)
                username, secret = str(data["Username"]), str(data["Secret"])
            except (ValueError, KeyError, TypeError) as e:
                raise RegistryError(
                    "unauthorized",
                    f"the credential helper {program} gave an answer that is not "
                    '{"Username": ..., "Secret": ...} JSON',
                    registry=registry,
                ) from e
            if username == "<token>":
                found = Credentials(identity_token=secret, source=program)
            else:
                found = Credentials(username=username, password=secret, source=program)
        with self._lock:
            self._helper_cache[registry] = found
        return found


class TokenCache:
    """Bearer tokens per (registry, scope) until shortly before they expire; thread-safe.

    Concurrent requests for the same key share one fetch (one token request, not one per thread).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}

    def get(self, registry: str, scope: str) -> str | None:
        with self._lock:
            entry = self._tokens.get((registry, scope))
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def put(self, registry: str, scope: str, token: str, expires_in: float | None) -> None:
        lifetime = expires_in if expires_in and expires_in > 0 else _DEFAULT_TOKEN_SECONDS
        expiry = self._clock() + max(lifetime - _TOKEN_EXPIRY_MARGIN, lifetime / 2)
        with self._lock:
            self._tokens[(registry, scope)] = (token, expiry)

    def forget(self, registry: str, scope: str, token: str) -> None:
        """Drop `token` (the registry refused it) unless another thread already replaced it."""
        with self._lock:
            entry = self._tokens.get((registry, scope))
            if entry is not None and entry[0] == token:
                del self._tokens[(registry, scope)]

    def get_or_fetch(self, registry: str, scope: str, fetch: Callable[[], tuple[str, float | None]]) -> str:
        """The cached token, or one from `fetch()` (returning token and expires_in), shared by callers."""
        token = self.get(registry, scope)
        if token is not None:
            return token
        with self._lock:
            key_lock = self._key_locks.setdefault((registry, scope), threading.Lock())
        with key_lock:
            token = self.get(registry, scope)
            if token is not None:
                return token
            token, expires_in = fetch()
            self.put(registry, scope, token, expires_in)
            return token
