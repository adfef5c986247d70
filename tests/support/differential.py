"""Differential testing against OPA: the oracle side and the comparison keys.

The reference engine is OPA itself (Go, in-process through PyPI
`opa-golib-python-bindings`), which parses Rego v1 only: v0 modules go
through `support.rego_v1.v0_to_v1` first. The bindings evaluate with
`StrictBuiltinErrors`, so a built-in error is an error here, where conftest
and Gatekeeper (non-strict) make the expression undefined; `Outcome.strict`
marks those outcomes (ADR 0008).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opa_bindings.engine import OpaEngine, OpaError, OpaUndefinedError
from support.rego_v1 import v0_to_v1

from trustgate.errors import PolicyError
from trustgate.policy import rego
from trustgate.policy._gobuiltins import BUILTINS
from trustgate.policy._normalise import GO_SPRINTF, normalise

# Comparisons made, by corpus: printed by tests/differential/conftest.py.
TALLY: collections.Counter[str] = collections.Counter()

# Codes OPA gives built-in errors under StrictBuiltinErrors; without it they are undefined.
BUILTIN_ERROR_CODES = ("eval_type_error", "eval_builtin_error")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one side made of one module set and one input."""

    findings: tuple[str, ...] = ()  # sorted canonical keys
    error: str = ""  # "" when evaluation succeeded
    strict: bool = False  # OPA raised a built-in error (the reference would not)

    @property
    def is_error(self) -> bool:
        return bool(self.error)


def finding_key(f: rego.RawFinding) -> str:
    return json.dumps(
        [f.package, f.rule_name, f.rule, f.message, f.fix, list(f.path), dict(f.metadata)],
        sort_keys=True,
        default=str,
    )


def opa_engine(
    modules: Iterable[rego.Module], *, v0: bool, data: Mapping[str, Any] | None = None, guarded: bool = False
) -> OpaEngine:
    """OPA loaded with `modules` (v0 converted to v1).

    `guarded`: load trustgate's rewrite of the modules instead (`_normalise`). With
    it, a built-in whose operand type is wrong is undefined rather than an error, as
    in OPA without StrictBuiltinErrors: the emulation of the reference that the
    bindings cannot run directly.
    """
    engine = OpaEngine()
    modules = list(modules)
    texts = [m.text for m in modules]
    if guarded:
        texts = list(normalise(tuple((m.path, m.text) for m in modules), v0))
        # The rewrite's Go-compatible sprintf is a regorus extension: OPA has the real one.
        texts = [t.replace(f"{GO_SPRINTF}(", "sprintf(") for t in texts]
    for module, text in zip(modules, texts, strict=True):
        engine.add_policy(module.path, v0_to_v1(text, path=module.path) if v0 else text)
    if guarded:  # the rewrite's Go-semantics built-ins: OPA's own, an error made undefined
        for name, builtin in BUILTINS.items():
            fn = _nonstrict(name, builtin.arity)
            if builtin.marshalled:  # the rewrite passes regorus' json.marshal text of the first operand
                fn = _unmarshalled(fn)
            engine.register_function(builtin.extension, fn, arity=builtin.arity)
    if data:
        engine.add_data(dict(data))
    engine.print_handler = lambda message, location: None
    return engine


def _nonstrict(name: str, arity: int) -> Any:
    """`name` as OPA's built-in without StrictBuiltinErrors, in the extensions' `[defined, value]` form."""
    oracle = OpaEngine()
    args = ", ".join(f"input[{i}]" for i in range(arity))
    oracle.add_policy("nonstrict.rego", f"package nonstrict\n\nr := {name}({args})\n")

    def call(*values: Any) -> list[Any]:
        try:
            return [True, oracle.eval_document("nonstrict.r", list(values))]
        except OpaError as e:
            if any(c in f"{e.code}: {e.message}" for c in BUILTIN_ERROR_CODES):
                return [False, None]
            raise

    return call


def _unmarshalled(fn: Any) -> Any:
    def call(text: str, *rest: Any) -> list[Any]:
        return fn(json.loads(text), *rest)

    return call


def opa_value(engine: OpaEngine, path: str, input: Any) -> tuple[str, Any]:
    """("value", v), ("undefined", None) or ("error", message) for `data.<path>`."""
    try:
        return "value", engine.eval_document(path, input)
    except OpaUndefinedError:
        return "undefined", None
    except OpaError as e:
        return "error", f"{e.code}: {e.message}"


def opa_findings(engine: OpaEngine, rules: Mapping[str, Sequence[str]], input: Any) -> Outcome:
    """The findings conftest would report, from OPA, normalised as `RegoEvaluator` does."""
    found: list[rego.RawFinding] = []
    for package, names in rules.items():
        for name in names:
            kind, value = opa_value(engine, f"{package}.{name}", input)
            if kind == "error":
                return Outcome(error=value, strict=any(c in value for c in BUILTIN_ERROR_CODES))
            if kind == "undefined":
                continue
            if isinstance(value, bool):
                value = [f"{package}.{name}"] if value else []
            elif not isinstance(value, list):
                value = [value]
            found.extend(rego._normalise(package, name, m) for m in value)
    return Outcome(findings=tuple(sorted(finding_key(f) for f in found)))


def trustgate_findings(evaluator: rego.RegoEvaluator, input: Mapping[str, Any]) -> Outcome:
    try:
        return Outcome(findings=tuple(sorted(finding_key(f) for f in evaluator.evaluate(input))))
    except PolicyError as e:
        return Outcome(error=e.message)


def agree(ours: Outcome, reference: Outcome) -> bool:
    """Same findings, or both failed."""
    if reference.is_error or ours.is_error:
        return reference.is_error and ours.is_error
    return ours.findings == reference.findings
