"""CRD validation rules (`x-kubernetes-validations`), evaluated as the API server does on create.

Owns: finding every `x-kubernetes-validations` entry in a CRD's
`openAPIV3Schema` (under `properties`, `items` and `additionalProperties`),
compiling each `rule` and `messageExpression` once, and evaluating them with
`self` bound to each value the schema node describes. Leaves out: the
estimated-cost limit (ADR 10) and transition rules: a rule that reads
`oldSelf` applies only to updates, so a check (a create) skips it; with
`optionalOldSelf` the API server would also run it on create, with an empty
`oldSelf`, which is not done here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from trustgate.model import JsonPath
from trustgate.policy import cel

__all__ = ["Rule", "RuleError", "compile_rules", "evaluate"]

_VARIABLES = ("self", "oldSelf")

_Step = str  # a property name, "[]" (every item) or "{}" (every additionalProperties value)


class RuleError(Exception):
    """A rule is malformed or does not compile; the message names its place in the schema."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled `x-kubernetes-validations` entry."""

    steps: tuple[_Step, ...]  # where in the object `self` is
    program: cel.Program
    message: str
    message_program: cel.Program | None
    field_path: str
    reason: str
    where: str  # the schema path, e.g. `spec.replicas` or `spec.items[*]`


def compile_rules(schema: Mapping[str, Any]) -> list[Rule]:
    """Every rule of a structural schema, compiled.

    Raises:
        RuleError: a rule is not a string, or a rule or messageExpression does not compile.
    """
    return list(_walk(schema, ()))


def _walk(node: Mapping[str, Any], steps: tuple[_Step, ...]) -> Iterator[Rule]:
    where = _render(steps)
    for i, raw in enumerate(node.get("x-kubernetes-validations") or []):
        entry = raw if isinstance(raw, Mapping) else {}
        text = entry.get("rule")
        label = f"x-kubernetes-validations[{i}] at {where}"
        if not isinstance(text, str) or not text.strip():
            raise RuleError(f"{label}: rule must be a non-empty string")
        if cel.reads_variable(text, "oldSelf"):
            continue  # a transition rule: run on updates (a check is a create; see the module docstring)
        program = _compile(text, f"{label}: rule")
        message_program = None
        if isinstance(entry.get("messageExpression"), str):
            message_program = _compile(entry["messageExpression"], f"{label}: messageExpression")
        yield Rule(
            steps,
            program,
            str(entry.get("message") or ""),
            message_program,
            str(entry.get("fieldPath") or ""),
            str(entry.get("reason") or "FieldValueInvalid"),
            where,
        )
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        for name, child in properties.items():
            if isinstance(child, Mapping):
                yield from _walk(child, (*steps, str(name)))
    if isinstance(node.get("items"), Mapping):
        yield from _walk(node["items"], (*steps, "[]"))
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from _walk(node["additionalProperties"], (*steps, "{}"))


def _compile(text: str, label: str) -> cel.Program:
    try:
        return cel.compile_expression(text, variables=_VARIABLES)
    except cel.CelCompileError as e:
        position = f" ({e.where()})" if e.where() else ""
        raise RuleError(f"{label}{position}: {e.message}") from e


def _render(steps: tuple[_Step, ...]) -> str:
    out = ""
    for step in steps:
        out += "[*]" if step in ("[]", "{}") else (f".{step}" if out else step)
    return out or "the top level"


def _values(value: Any, steps: tuple[_Step, ...], path: JsonPath) -> Iterator[tuple[JsonPath, Any]]:
    if not steps:
        yield path, value
        return
    step, rest = steps[0], steps[1:]
    if step == "[]":
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from _values(item, rest, (*path, i))
    elif step == "{}":
        if isinstance(value, Mapping):
            for key, item in value.items():
                yield from _values(item, rest, (*path, str(key)))
    elif isinstance(value, Mapping) and step in value:
        yield from _values(value[step], rest, (*path, step))


def evaluate(rules: list[Rule], obj: Mapping[str, Any]) -> list[tuple[JsonPath, str]]:
    """The (path, message) of each rule that fails on each value it applies to.

    A value that is absent is not validated, as in the API server. An evaluation error is
    reported as a failure of the rule, with the error in the message.
    """
    out: list[tuple[JsonPath, str]] = []
    for rule in rules:
        for path, value in _values(obj, rule.steps, ()):
            activation = {"self": value, "oldSelf": None}
            try:
                result = rule.program.evaluate(activation)
            except cel.CelEvalError as e:
                out.append((path, f"{rule.where}: rule '{rule.program.source}' failed: {e}"))
                continue
            if result is True:
                continue
            message = rule.message or f"failed rule: {rule.program.source}"
            if rule.message_program is not None:
                try:
                    text = rule.message_program.evaluate(activation)
                    if isinstance(text, str) and text.strip():
                        message = text
                except cel.CelEvalError:
                    pass  # the static message stands, as in the API server
            target = path
            if rule.field_path:  # `.spec.x` or `.x['y']`, relative to self
                target = (
                    *path,
                    *(p for p in rule.field_path.replace("['", ".").replace("']", "").split(".") if p),
                )
            out.append((target, message))
    return out
