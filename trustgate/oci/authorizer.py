"""The auth flow of one registry client: from a 401's challenge to the header of every request.

Owns: `Authorizer` — the scheme each registry asked for last (its
`WWW-Authenticate` challenge, parsed by auth.py), the credentials found for
each registry (read once), the Authorization header for a request's scope
(Basic, or a bearer token), and fetching bearer tokens from the challenge's
realm over the `Transport` (the distribution token spec: GET with Basic
credentials or anonymously; an identity token as the OAuth2 refresh-token
grant), bounded like every other answer and cached per registry and scope
(auth.py's `TokenCache`). Leaves out: the registry requests themselves,
their retries and redirects (client.py), parsing challenges and reading
Docker credentials (auth.py).
"""

from __future__ import annotations

import threading
from urllib.parse import urlencode, urlsplit

from trustgate import untrusted_json
from trustgate.oci import deadline as _deadline
from trustgate.oci.auth import (
    Challenge,
    Credentials,
    DockerConfig,
    TokenCache,
    default_docker_config,
    parse_challenges,
)
from trustgate.oci.body import Transient, read_bounded, root_cause
from trustgate.oci.errors import RegistryError
from trustgate.oci.reference import Reference, plain_registry
from trustgate.oci.settings import RegistrySettings
from trustgate.oci.transport import Exchange, Transport, TransportFailure, TransportTimeout

__all__ = ["Authorizer", "pick_challenge"]

_BEARER = "Bearer "


class Authorizer:
    """Authorization headers for one client's requests; thread-safe, shared by its threads.

    Args:
        settings: the client's settings (insecure hosts, Docker config, timeouts, limits).
        transport: how token requests move (the client's own transport).
    """

    def __init__(self, settings: RegistrySettings, transport: Transport) -> None:
        self._settings = settings
        self._transport = transport
        self._insecure = frozenset(plain_registry(host) for host in settings.insecure)
        self._docker_config = DockerConfig(
            settings.docker_config or default_docker_config(),
            helper_timeout_seconds=settings.credential_helper_timeout_seconds,
        )
        self._tokens = TokenCache()
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}  # the auth scheme each registry asked for last
        self._credentials: dict[str, Credentials | None] = {}

    def header(self, ref: Reference, scope: str) -> str | None:
        """The Authorization header for a request in `scope`; None until the registry has asked.

        Raises:
            RegistryError: the credentials cannot be read, or the token server fails or refuses
                (the kinds of `_fetch_token`).
        """
        with self._lock:
            challenge = self._challenges.get(ref.registry)
        if challenge is None:
            return None
        creds = self.credentials(ref.registry)
        if challenge.scheme == "basic":
            return creds.basic_header() if creds else None
        token = self._tokens.get_or_fetch(
            ref.registry, scope, lambda: self._fetch_token(ref, challenge, scope, creds)
        )
        return _BEARER + token

    def challenged(self, ref: Reference, scope: str, sent: str | None, www_authenticate: str) -> bool:
        """After a 401 to a request that carried `sent`: remember the scheme the registry asks for,
        drop a bearer token it refused, and say whether there is something new to send.

        Raises:
            RegistryError: as `header`, for the new header.
        """
        usable = pick_challenge(parse_challenges(www_authenticate))
        if usable is None:
            return False
        if sent and sent.startswith(_BEARER):
            self._tokens.forget(ref.registry, scope, sent[len(_BEARER) :])
        with self._lock:
            self._challenges[ref.registry] = usable
        renewed = self.header(ref, scope)
        return renewed is not None and renewed != sent

    def credentials(self, registry: str) -> Credentials | None:
        """The credentials for `registry` (read once; for messages too), or None.

        Raises:
            RegistryError: ("unauthorized") as `DockerConfig.credentials`.
        """
        with self._lock:
            if registry in self._credentials:
                return self._credentials[registry]
        found = self._docker_config.credentials(registry)
        with self._lock:
            self._credentials[registry] = found
        return found

    def _timeout(self) -> float:
        wait = self._settings.timeout_seconds
        budget = _deadline.current()
        if budget is not None:
            wait = max(0.001, min(wait, budget.remaining()))
        return wait

    def _fetch_token(
        self, ref: Reference, challenge: Challenge, scope: str, creds: Credentials | None
    ) -> tuple[str, float | None]:
        """A token and its `expires_in` from the challenge's realm.

        Raises:
            RegistryError: "unauthorized" for a realm that is not a URL, a refusal (401) or an
                answer without a token; "forbidden" (403); "tls" for a plain-HTTP realm not listed
                as insecure; "server-error" for any other status; "timeout", "connection".
        """
        registry = ref.registry
        realm = challenge.realm or ""
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(
                "unauthorized",
                f"{registry}: the registry asks for a bearer token from realm {realm!r}, which is not a URL",
                registry=registry,
                reference=str(ref),
            )
        if parts.scheme == "http" and plain_registry(parts.netloc) not in self._insecure:
            raise RegistryError(
                "tls",
                f"{registry}: the token server {realm} is plain HTTP; refusing to send credentials or "
                "trust tokens over it",
                registry=registry,
                reference=str(ref),
                hint=f"list {parts.netloc} under insecure registries if that is intended",
            )
        params = {"scope": scope}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        what = f"token from {realm}"
        try:
            # Streamed and bounded like every other response: the realm is the registry's to name.
            if creds is not None and creds.identity_token:
                form = {**params, "grant_type": "refresh_token", "refresh_token": creds.identity_token}
                form["client_id"] = "trustgate"
                exchange = Exchange(
                    "POST",
                    realm,
                    {"Content-Type": "application/x-www-form-urlencoded"},
                    urlencode(form).encode(),
                    self._timeout(),
                )
            else:
                headers = {}
                basic = creds.basic_header() if creds else None
                if basic:
                    headers["Authorization"] = basic
                separator = "&" if "?" in realm else "?"
                url = realm + separator + urlencode(params)
                exchange = Exchange("GET", url, headers, None, self._timeout())
            with self._transport.fetch(exchange) as response:
                status = response.status
                body = read_bounded(
                    response,
                    self._settings.error_body_bytes,
                    settings=self._settings,
                    ref=ref,
                    what=f"the {what}",
                )
        except Transient as e:
            raise RegistryError(
                "timeout", f"{registry}: {what}: {e.reason}", registry=registry, reference=str(ref)
            ) from e
        except TransportTimeout as e:
            raise RegistryError(
                "timeout",
                f"{registry}: {what}: no answer within {self._settings.timeout_seconds:g} s{e.via}",
                registry=registry,
                reference=str(ref),
            ) from e
        except TransportFailure as e:
            raise RegistryError(
                "tls" if e.tls else "connection",
                f"{registry}: {what}: {root_cause(e)}{e.via}",
                registry=registry,
                reference=str(ref),
            ) from e
        if status in (401, 403):
            source = f"credentials from {creds.source}" if creds else "no credentials (anonymous)"
            raise RegistryError(
                "unauthorized" if status == 401 else "forbidden",
                f"{registry}: the token server {realm} refused {source} for {scope} (HTTP {status})",
                registry=registry,
                reference=str(ref),
                hint=f"log in to {registry} (docker login) or fix the credentials",
            )
        if status != 200:
            raise RegistryError(
                "server-error",
                f"{registry}: the token server {realm} answered HTTP {status}",
                registry=registry,
                reference=str(ref),
            )
        try:
            data = untrusted_json.loads(body)
            token = data.get("token") or data.get("access_token")
            expires_in = data.get("expires_in")
        except (ValueError, AttributeError) as e:
            raise RegistryError(
                "unauthorized",
                f"{registry}: the token server {realm} answered something that is not token JSON",
                registry=registry,
                reference=str(ref),
            ) from e
        if not isinstance(token, str) or not token:
            raise RegistryError(
                "unauthorized",
                f"{registry}: the token server {realm} answered without a token",
                registry=registry,
                reference=str(ref),
            )
        return token, float(expires_in) if isinstance(expires_in, int | float) else None


def pick_challenge(challenges: list[Challenge]) -> Challenge | None:
    """The challenge trustgate answers: Bearer where offered, else Basic; None for neither."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None
