"""A test double of an OPA server: the REST endpoints trustgate's OPA engine calls.

No OPA binary can be installed on the build machines, so this small server
answers OPA's documented Data API with regorus behind it, as `opa run --server
--v0-compatible` would: `PUT /v1/policies/<id>` (a module as text),
`PUT /v1/data/<path>` (a JSON document), `POST /v1/data/<path>` with
`{"input": ...}` (`{"result": ...}`, or `{}` when undefined), `GET /health`.
Anything else is a 404, and every request is recorded, so tests can check
that trustgate uses only those endpoints. For tests only.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import regorus


class OpaDouble:
    """Start with `with OpaDouble() as opa:`; `opa.url` is the base URL."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.policies: dict[str, str] = {}
        self.data: dict[str, Any] = {}
        self._engine: Any = None  # built and used on the server thread only
        double = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # one request, one answer, no 40 ms stalls

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any = None) -> None:
                raw = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                double.requests.append(("GET", self.path))
                if self.path == "/health":
                    self._reply(200, {})
                else:
                    self._reply(404, {"code": "resource_not_found", "message": "not found"})

            def do_PUT(self) -> None:
                double.requests.append(("PUT", self.path))
                body = self._body()
                if self.path.startswith("/v1/policies/"):
                    self._reply(*double._put_policy(self.path.removeprefix("/v1/policies/"), body.decode()))
                elif self.path.startswith("/v1/data/"):
                    double._put_data(self.path.removeprefix("/v1/data/"), json.loads(body))
                    self._reply(204)
                else:
                    self._reply(404, {"code": "resource_not_found", "message": "not found"})

            def do_POST(self) -> None:
                double.requests.append(("POST", self.path))
                body = json.loads(self._body() or b"{}")
                if not self.path.startswith("/v1/data/"):
                    self._reply(404, {"code": "resource_not_found", "message": "not found"})
                    return
                self._reply(*double._query(self.path.removeprefix("/v1/data/"), body.get("input")))

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            self._server.serve_forever()
        finally:
            self._engine = None  # a regorus engine must be dropped on the thread that made it

    def __enter__(self) -> OpaDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # The handlers run on the server thread, so the regorus engine stays there.

    def _build(self, policies: dict[str, str]) -> Any:
        engine = regorus.Engine()
        engine.set_rego_v0(True)
        for policy_id, text in policies.items():
            engine.add_policy(policy_id, text)
        engine.add_data_json(json.dumps(self.data))
        return engine

    def _put_policy(self, policy_id: str, text: str) -> tuple[int, Any]:
        candidate = {**self.policies, policy_id: text}
        try:
            engine = self._build(candidate)
        except RuntimeError as e:
            message = str(e).split("Stack backtrace:", 1)[0].strip()
            return 400, {
                "code": "invalid_parameter",
                "message": "error(s) occurred while compiling module(s)",
                "errors": [{"code": "rego_parse_error", "message": message, "location": {"file": policy_id}}],
            }
        self.policies, self._engine = candidate, engine
        return 200, {}

    def _put_data(self, path: str, value: Any) -> None:
        node = self.data
        parts = [p for p in path.split("/") if p]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        self._engine = self._build(self.policies)

    def _query(self, path: str, input: Any) -> tuple[int, Any]:
        if self._engine is None:
            self._engine = self._build(self.policies)
        rule = "data." + ".".join(p for p in path.split("/") if p)
        try:
            self._engine.set_input(input if input is not None else {})
            value = json.loads(self._engine.eval_rule_as_json(rule))
        except RuntimeError as e:
            message = str(e).split("Stack backtrace:", 1)[0].strip()
            return 500, {"code": "internal_error", "message": message}
        return 200, ({} if value == "<undefined>" else {"result": value})
