"""The registry transport: one HTTP exchange, nothing about OCI.

Owns: the seam the registry client stands on, `Transport` (one `fetch`, as
python-tuf's `FetcherInterface` asks for one `_fetch`), the `Exchange` it is
given and the `Response` it yields (status, headers, the body as it arrives),
the two failures a transport raises (`TransportTimeout`, `TransportFailure`),
and `HttpTransport`, the implementation on httpcore (the HTTP engine under
httpx, without httpx's client layer, which costs ~0.2 ms of CPU a request):
pooled keep-alive connections (HTTP/2 where a registry offers it over TLS,
HTTP/1.1 otherwise), TLS with the public roots plus an extra CA,
and the environment's proxies (`HTTP(S)_PROXY`, `ALL_PROXY`, `NO_PROXY`, read
as urllib reads them). Leaves out: redirects, retries and digests (the OCI
operations above the seam, `trustgate.oci.client`), auth (`.authorizer`),
size limits and deadlines while reading (`.body`).
"""

from __future__ import annotations

import importlib.util
import ssl
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol, overload, runtime_checkable
from urllib.parse import urlsplit

import certifi
import httpcore

from trustgate.oci.errors import RegistryError

# httpcore speaks HTTP/2 through `h2` (a dependency); without it, HTTP/1.1 only rather than failing.
_HTTP2: Final = importlib.util.find_spec("h2") is not None

__all__ = [
    "Exchange",
    "Headers",
    "HttpTransport",
    "Response",
    "Transport",
    "TransportFailure",
    "TransportTimeout",
    "environment_proxy",
]


class Headers(dict[str, str]):
    """Response headers by lower-case name; a repeated header's values joined with ", " (RFC 9110)."""

    @classmethod
    def of(cls, pairs: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> Headers:
        headers = cls()
        for name, value in pairs:
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return headers

    @overload  # type: ignore[override]  # case-insensitive, str keys only
    def get(self, key: str) -> str | None: ...

    @overload
    def get(self, key: str, default: str) -> str: ...

    def get(self, key: str, default: str | None = None) -> str | None:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request; `timeout` (seconds) bounds each connect, read and write."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    timeout: float = 10.0


@dataclass(slots=True)
class Response:
    """A response whose body is read as it arrives (`chunks`), so the caller can bound it."""

    status: int
    headers: Headers
    chunks: Iterator[bytes]
    http_version: str = "HTTP/1.1"  # "HTTP/2" where the registry offered it
    via: str = ""  # " via proxy <url> (from <VARIABLE> in the environment)" when one carried it


class TransportTimeout(Exception):
    """No connection, or no bytes, within the exchange's timeout; `via` names a proxy used."""

    def __init__(self, message: str, *, via: str = "") -> None:
        super().__init__(message)
        self.via = via


class TransportFailure(Exception):
    """The connection failed (refused, reset, TLS, a protocol error); `tls` when TLS was the cause."""

    def __init__(self, message: str, *, tls: bool, via: str = "") -> None:
        super().__init__(message)
        self.tls = tls
        self.via = via


@runtime_checkable
class Transport(Protocol):
    """What the registry client needs of HTTP: one exchange at a time, thread-safe.

    `fetch` yields the response with its body unread; leaving the block releases the
    connection. It raises `TransportTimeout` or `TransportFailure`, nothing else, for
    failures of the exchange; any HTTP status is an answer, not a failure.
    """

    def fetch(self, exchange: Exchange) -> AbstractContextManager[Response]: ...

    def close(self) -> None: ...


def environment_proxy(url: str, proxies: Mapping[str, str]) -> tuple[str, str] | None:
    """(proxy URL, the variable it came from) that `url` goes through under `proxies`, else None.

    `proxies` is what `urllib.request.getproxies()` read from the environment; NO_PROXY is
    honoured as urllib honours it.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not proxies or urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]  # undocumented but stable since Python 3.0
        return None
    for key in (parts.scheme, "all"):
        if proxies.get(key):
            return proxies[key], f"{key.upper()}_PROXY"
    return None


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The public roots (certifi) plus `ca_file`.

    Raises:
        RegistryError: ("tls") `ca_file` cannot be read as PEM certificates.
    """
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as e:
            raise RegistryError(
                "tls",
                f"cannot load the registry CA file {ca_file}: {e}",
                registry="(all registries)",
                hint="point ca_file at a PEM file of CA certificates",
            ) from e
    return context


class HttpTransport:
    """`Transport` on httpcore connection pools: one direct, one per environment proxy used.

    Args:
        ca_file: PEM CA certificates trusted in addition to the public roots.
        user_agent: sent with every request.
        max_connections: open connections per pool (all hosts together).
        max_keepalive: idle connections kept for reuse per pool.
        http2: offer HTTP/2 over TLS (ALPN), where `h2` is installed.
        proxies: scheme -> proxy URL; None reads the environment (urllib's rules).

    Raises:
        RegistryError: ("tls") `ca_file` cannot be loaded.
    """

    def __init__(
        self,
        *,
        ca_file: Path | None = None,
        user_agent: str = "trustgate",
        max_connections: int = 64,
        max_keepalive: int = 32,
        http2: bool = True,
        proxies: Mapping[str, str] | None = None,
    ) -> None:
        self._context = tls_context(ca_file)
        self._user_agent = user_agent.encode("ascii", "replace")
        self._max_connections = max_connections
        self._max_keepalive = max_keepalive
        self._http2 = http2 and _HTTP2
        self.proxies = dict(urllib.request.getproxies() if proxies is None else proxies)
        # HTTP/2 where a registry offers it over TLS (ALPN): one connection carries every thread's
        # requests to that registry; plain-HTTP registries and the rest speak HTTP/1.1.
        self._direct = httpcore.ConnectionPool(
            ssl_context=self._context,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive,
            http2=self._http2,
        )
        self._via: dict[str, httpcore.HTTPProxy] = {}
        self._lock = threading.Lock()

    def _pool(self, url: str) -> tuple[httpcore.ConnectionPool, str]:
        route = environment_proxy(url, self.proxies)
        if route is None:
            return self._direct, ""
        proxy_url, variable = route
        via = f" via proxy {proxy_url} (from {variable} in the environment)"
        with self._lock:
            pool = self._via.get(proxy_url)
            if pool is None:
                if urlsplit(proxy_url).scheme not in ("http", "https"):
                    raise TransportFailure(
                        f"the proxy {proxy_url} (from {variable}) is not an HTTP proxy; trustgate "
                        "speaks to HTTP(S) proxies only",
                        tls=False,
                        via=via,
                    )
                pool = self._via[proxy_url] = httpcore.HTTPProxy(
                    proxy_url=proxy_url,
                    ssl_context=self._context,
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_keepalive,
                    http2=self._http2,
                )
        return pool, via

    @contextmanager
    def fetch(self, exchange: Exchange) -> Iterator[Response]:
        """One exchange; the response's body is read inside the block.

        Raises:
            TransportTimeout: connecting, sending or a read took longer than `exchange.timeout`.
            TransportFailure: the connection failed or the peer broke the protocol.
        """
        pool, via = self._pool(exchange.url)
        parts = urlsplit(exchange.url)
        headers = [(b"Host", _host_header(parts.netloc)), (b"User-Agent", self._user_agent)]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in exchange.headers.items()]
        if exchange.content is not None:
            headers.append((b"Content-Length", str(len(exchange.content)).encode()))
        wait = exchange.timeout
        try:
            with pool.stream(
                exchange.method.encode("ascii"),
                exchange.url,
                headers=headers,
                content=exchange.content,
                extensions={"timeout": {"connect": wait, "read": wait, "write": wait, "pool": wait}},
            ) as raw:
                version = raw.extensions.get("http_version", b"HTTP/1.1")
                yield Response(
                    raw.status,
                    Headers.of([(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw.headers]),
                    _guarded(raw.iter_stream(), via),
                    version.decode("ascii", "replace") if isinstance(version, bytes) else str(version),
                    via,
                )
        except httpcore.TimeoutException as e:
            raise TransportTimeout(str(e) or type(e).__name__, via=via) from e
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError, ssl.SSLError) as e:
            raise TransportFailure(str(e) or type(e).__name__, tls=_is_tls(e), via=via) from e
        except httpcore.UnsupportedProtocol as e:
            raise TransportFailure(str(e), tls=False, via=via) from e

    def close(self) -> None:
        self._direct.close()
        with self._lock:
            for pool in self._via.values():
                pool.close()
            self._via.clear()


def _host_header(netloc: str) -> bytes:
    """The Host header of a URL's host[:port]: ASCII as given, an internationalised name as IDNA."""
    try:
        return netloc.encode("ascii")
    except UnicodeEncodeError:
        host, colon, port = netloc.rpartition(":") if not netloc.endswith("]") else (netloc, "", "")
        if not colon or not port.isdigit():
            host, colon, port = netloc, "", ""
        return host.encode("idna") + (f":{port}".encode() if colon else b"")


def _guarded(chunks: Iterator[bytes], via: str) -> Iterator[bytes]:
    """The body's chunks, with httpcore's read failures turned into the transport's own."""
    try:
        yield from chunks
    except httpcore.TimeoutException as e:
        raise TransportTimeout(str(e) or type(e).__name__, via=via) from e
    except (httpcore.NetworkError, httpcore.ProtocolError, ssl.SSLError) as e:
        raise TransportFailure(str(e) or type(e).__name__, tls=_is_tls(e), via=via) from e


def _is_tls(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        text = str(seen)
        if "SSL" in text or "CERTIFICATE" in text.upper() or "WRONG_VERSION_NUMBER" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
