"""A fault-injecting HTTP proxy in front of a real registry.

`FaultProxy(upstream)` listens on 127.0.0.1 and forwards every request to the
registry at `upstream` (host:port, plain HTTP) until told to misbehave:

- "refuse": the listening socket is closed (connections are refused) until
  the mode changes; the same port is bound again then.
- "hang": the request is read and never answered (until the proxy stops).
- "trickle": the registry's answer is sent with its headers at once and its
  body one byte every `trickle_interval` seconds.
- "429": HTTP 429 with `Retry-After: <retry_after>`.
- "5xx": HTTP 503.

In any mode, `delay` seconds pass before each request is handled (a registry
far away), and a request whose path is in `hang_paths` hangs as in "hang".

`requests` lists "METHOD path" of every request that reached the proxy, in
any mode; `forwarded` those passed on to the registry.
"""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
import time
from typing import Any

_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"})


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        proxy = self.server.proxy
        line = f"{self.command} {self.path}"
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        with proxy.lock:
            proxy.requests.append(line)
            mode = proxy.mode
            if self.path in proxy.hang_paths:
                mode = "hang"
        if proxy.delay:
            time.sleep(proxy.delay)
        if mode == "hang":
            proxy.released.wait(60)
            self.close_connection = True
            return
        if mode in ("429", "5xx"):
            status = 429 if mode == "429" else 503
            self.send_response(status)
            if mode == "429":
                self.send_header("Retry-After", proxy.retry_after)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return
        with proxy.lock:
            proxy.forwarded.append(line)
        upstream = http.client.HTTPConnection(proxy.upstream, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in _HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command == "HEAD":
                pass
            elif mode == "trickle":
                for i in range(len(data)):
                    if proxy.released.wait(proxy.trickle_interval):
                        break
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
            else:
                self.wfile.write(data)
            self.close_connection = True
        except OSError:
            self.close_connection = True
        finally:
            upstream.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)


class FaultProxy:
    """See the module docstring; `host` is 127.0.0.1:<port>, stable across "refuse"."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.retry_after = "3600"
        self.trickle_interval = 0.5
        self.delay = 0.0  # seconds before each request is handled
        self.hang_paths: set[str] = set()  # requests for these paths hang, whatever the mode
        self.requests: list[str] = []
        self.forwarded: list[str] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self._server: _Server | None = None
        self._port = 0
        self._start()
        self.host = f"127.0.0.1:{self._port}"

    def _start(self) -> None:
        server = _Server(("127.0.0.1", self._port), self)
        self._port = server.server_address[1]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server

    def _close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def set(self, mode: str, **options: Any) -> None:
        """Switch to `mode` ("pass", "refuse", "hang", "trickle", "429", "5xx")."""
        assert mode in ("pass", "refuse", "hang", "trickle", "429", "5xx"), mode
        for key, value in options.items():
            setattr(self, key, value)
        # Requests held by the previous mode end now; a new one may hold again.
        self.released.set()
        time.sleep(0.05)
        self.released = threading.Event()
        with self.lock:
            self.mode = mode
        if mode == "refuse":
            self._close()
            _assert_refused(self._port)
        elif self._server is None:
            self._start()

    def stop(self) -> None:
        self.released.set()
        self._close()


def _assert_refused(port: int) -> None:
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the port still accepts connections"
