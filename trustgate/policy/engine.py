"""Where Rego runs: one small interface, an embedded and a remote implementation.

Owns: the `Engine` protocol (load modules, set data documents, evaluate one
rule against an input), `EmbeddedEngine` on regorus (the default, in-process)
and `OpaEngine`, which speaks OPA's documented REST Data API through PyPI
`opa-python-client`: `PUT /v1/policies/<id>`, `PUT /v1/data/<path>` and
`POST /v1/data/<path>` with `{"input": ...}`. Also the built-ins regorus
lacks that policy libraries use. Leaves out: what the rules mean (the
callers: Gatekeeper constraints, conftest-style policies).

An `Engine` belongs to one thread; regorus engines cannot cross threads.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import regorus

from trustgate.errors import PolicyError
from trustgate.policy._normalise import add_extensions, normalise
from trustgate.policy.rego import (
    ENGINE_ERRORS,
    Module,
    clean_engine_error,
    is_engine_panic,
    panic_text,
    refuse_lone_surrogate,
    refuse_unevaluable,
)

UNDEFINED: Any = type("Undefined", (), {"__repr__": lambda self: "<undefined>"})()
"""What `eval_rule` returns when the rule has no value."""

_REGORUS_UNDEFINED = "<undefined>"
_ABSENT = object()


class Engine(Protocol):
    """A Rego engine: modules and data in, rule values out."""

    def add_modules(self, modules: Sequence[Module]) -> None:
        """Load (or replace) policy modules.

        Raises:
            PolicyError: a module does not compile; the message names the file and line.
        """

    def set_data(self, path: str, value: Mapping[str, Any]) -> None:
        """Replace the data document at `path` (dot-separated, e.g. `inventory`).

        Raises:
            PolicyError: the engine refused the data.
        """

    def eval_rule(self, rule: str, input: Mapping[str, Any]) -> Any:
        """The value of `rule` (`data.pkg.name`) for `input`, or `UNDEFINED`.

        Raises:
            PolicyError: evaluation failed (a run-time error, an unreachable server),
                or `input` holds a lone surrogate (not Unicode text; regorus crashes on it)
                or, for the embedded engine, an integer regorus would round to a float.
        """


# -- embedded: regorus ---------------------------------------------------------


class EmbeddedEngine:
    """regorus in this process (the default engine)."""

    def __init__(self, *, rego_v0: bool = False) -> None:
        self.rego_v0 = rego_v0
        self._engine = regorus.Engine()
        self._extensions: frozenset[str] = frozenset()  # registered on `_engine` (`add_extensions`)
        if rego_v0:
            self._engine.set_rego_v0(True)
        self._data: dict[str, Any] = {}
        # Never evaluated, taken after each change: what replaces an engine a panic broke.
        self._pristine = self._engine.clone()

    def clone(self) -> EmbeddedEngine:
        """A copy with the same modules and data (cheaper than compiling again)."""
        copy = EmbeddedEngine.__new__(EmbeddedEngine)
        copy.rego_v0 = self.rego_v0
        copy._engine = self._engine.clone()
        copy._extensions = self._extensions
        copy._data = dict(self._data)
        copy._pristine = self._pristine.clone()
        return copy

    def add_modules(self, modules: Sequence[Module]) -> None:
        texts = normalise(tuple((m.path, m.text) for m in modules), self.rego_v0)  # ADR 0008
        added = add_extensions(self._engine, texts, self._extensions)  # the functions they call
        if added != self._extensions:
            self._extensions = added
            self._pristine = self._engine.clone()  # so that an engine renewed after a panic has them
        for module, text in zip(modules, texts, strict=True):
            try:
                self._engine.add_policy(module.path, text)
            except RuntimeError as e:
                raise PolicyError(clean_engine_error(e), hint="fix the Rego") from e
            except BaseException as e:
                if not is_engine_panic(e):
                    raise
                self._renew()
                raise PolicyError(f"{module.path}: {panic_text(e)}", hint="please report this") from e
        self._pristine = self._engine.clone()

    def _renew(self) -> None:
        """The engine as it was before the last evaluation or change, in place of one a panic broke."""
        self._engine = self._pristine.clone()

    def set_data(self, path: str, value: Mapping[str, Any]) -> None:
        refuse_unevaluable(value, what=f"data {path}")
        node = self._data
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        before = node.get(parts[-1], _ABSENT)
        node[parts[-1]] = value
        try:
            self._engine.clear_data()
            self._engine.add_data_json(json.dumps(self._data))
        except ENGINE_ERRORS as e:
            raise PolicyError(f"policy data cannot be loaded: {clean_engine_error(e)}") from e
        except BaseException as e:
            if not is_engine_panic(e):
                raise
            if before is _ABSENT:
                del node[parts[-1]]
            else:
                node[parts[-1]] = before
            self._renew()
            raise PolicyError(f"policy data cannot be loaded: {panic_text(e)}") from e
        self._pristine = self._engine.clone()

    def eval_rule(self, rule: str, input: Mapping[str, Any]) -> Any:
        refuse_unevaluable(input)  # set_input would crash the process, or round a big integer
        try:
            self._engine.set_input(input)
            raw = self._engine.eval_rule_as_json(rule)
        except ENGINE_ERRORS as e:
            raise PolicyError(f"policy evaluation failed: {clean_engine_error(e)}") from e
        except BaseException as e:
            if not is_engine_panic(e):
                raise
            self._renew()
            raise PolicyError(f"policy evaluation failed: {rule}: {panic_text(e)}") from e
        value = json.loads(raw)
        return UNDEFINED if value == _REGORUS_UNDEFINED else value


# -- remote: an OPA server -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpaSettings:
    """Where the OPA server is and how to reach it."""

    url: str  # e.g. http://opa.policy.svc:8181
    token: str | None = None  # sent as `Authorization: Bearer`
    timeout_seconds: float = 5.0  # seconds per request; OPA answers in milliseconds
    policy_prefix: str = "trustgate"  # policy ids are <prefix>/<name>


class OpaEngine:
    """An OPA server, used only through its documented REST API.

    Modules are uploaded with `PUT /v1/policies/<prefix>/<name>`, data with
    `PUT /v1/data/<path>`, and a rule is evaluated with
    `POST /v1/data/<package path>/<rule>` and body `{"input": ...}`; an
    absent `result` means undefined. Gatekeeper templates are Rego v0: the
    server must accept v0 (OPA 0.x, or OPA 1.x run with `--v0-compatible`).
    """

    def __init__(self, settings: OpaSettings) -> None:
        from opa_client.opa import OpaClient  # only when a remote engine is configured

        parsed = urllib.parse.urlsplit(settings.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise PolicyError(
                f"OPA url {settings.url!r} is not an http(s) URL", hint="e.g. engine.opa.url: http://opa:8181"
            )
        if parsed.path not in ("", "/"):
            raise PolicyError(
                f"OPA url {settings.url!r} must not have a path", hint="give scheme, host and port"
            )
        self.settings = settings
        self._client = OpaClient(
            host=parsed.hostname,
            port=parsed.port or (443 if parsed.scheme == "https" else 8181),
            ssl=parsed.scheme == "https",
            token=settings.token,
            timeout=settings.timeout_seconds,
            retries=0,
        )

    def close(self) -> None:
        self._client.close_connection()

    def add_modules(self, modules: Sequence[Module]) -> None:
        from opa_client.errors import RegoParseError

        for module in modules:
            policy_id = f"{self.settings.policy_prefix}/{_policy_id(module.path)}"
            try:
                self._client.update_policy_from_string(module.text, policy_id, rego_compat=False)
            except RegoParseError as e:
                raise PolicyError(
                    f"{module.path}: OPA rejected the module: {_opa_errors(e)}",
                    where=self.settings.url,
                    hint="fix the Rego (the server must accept Rego v0 for Gatekeeper templates)",
                ) from e
            except Exception as e:  # requests' and the client's errors: the server is unreachable
                raise _unreachable(self.settings.url, e) from e

    def set_data(self, path: str, value: Mapping[str, Any]) -> None:
        from opa_client.errors import RegoParseError

        try:
            self._client.update_or_create_data(dict(value), path.replace(".", "/"))
        except RegoParseError as e:
            raise PolicyError(f"OPA rejected data {path}: {_opa_errors(e)}", where=self.settings.url) from e
        except Exception as e:  # requests' and the client's errors
            raise _unreachable(self.settings.url, e) from e

    def eval_rule(self, rule: str, input: Mapping[str, Any]) -> Any:
        path = rule.removeprefix("data.")
        package, _, name = path.rpartition(".")
        refuse_lone_surrogate(input)  # as the embedded engine: OPA would read U+FFFD instead
        try:
            response = self._client.query_rule(dict(input), package, name)
        except Exception as e:  # requests' HTTPError carries OPA's message
            raise _unreachable(self.settings.url, e) from e
        return response.get("result", UNDEFINED)


def _policy_id(path: str) -> str:
    return urllib.parse.quote(path.strip("<>").replace(" ", "-"), safe="")


def _opa_errors(error: Any) -> str:
    details = getattr(error, "errors", None) or []
    parts = []
    for item in details:
        location = item.get("location") or {}
        where = f"line {location.get('row')}: " if location.get("row") else ""
        parts.append(where + str(item.get("message", "")))
    return "; ".join(parts) or str(getattr(error, "message", error))


def _unreachable(url: str, error: Exception) -> PolicyError:
    response = getattr(error, "response", None)
    if response is not None:
        try:
            body = response.json()
            detail = f"HTTP {response.status_code}: {body.get('message', body)}"
        except ValueError:
            detail = f"HTTP {response.status_code}"
        return PolicyError(f"OPA request failed: {detail}", where=url, hint="check the server's log")
    return PolicyError(
        f"OPA server unreachable: {type(error).__name__}: {error}",
        where=url,
        hint="check engine.opa.url and that the server is running",
    )
