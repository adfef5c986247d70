"""Rego v0 to v1, as `opa fmt --v0-v1` does it, for feeding v0 modules to OPA 1.x.

Test support only: the OPA bindings used as the differential oracle parse
Rego v1 alone, while Gatekeeper templates and some conftest policies are v0.
The conversion reads regorus' AST (which carries byte spans) and edits the
text in place, so line numbers stay the same:

- `if` before every rule body (`p { … }` → `p if { … }`, `else = x { … }` →
  `else = x if { … }`, functions too);
- a partial-set head gets `contains` (`deny[msg] { … }` → `deny contains msg if { … }`);
- a rule with several bodies (`p { a } { b }`) is repeated per body (`p if { a } p if { b }`);
- imports (`future.keywords…`, `rego.v1`) are kept: OPA 1.x accepts them.
"""

from __future__ import annotations

import json
from typing import Any

import regorus


def v0_to_v1(text: str, *, path: str = "module.rego") -> str:
    """The v1 form of the v0 module `text`.

    Raises:
        ValueError: regorus cannot parse `text` as Rego v0.
    """
    engine = regorus.Engine()
    engine.set_rego_v0(True)
    try:
        engine.add_policy(path, text)
    except RuntimeError as e:
        raise ValueError(f"not Rego v0: {str(e).split('Stack backtrace:')[0].strip()}") from e
    ast = json.loads(engine.get_ast_as_json())[0]["ast"]
    data = text.encode("utf-8")
    edits: list[tuple[int, int, bytes]] = []
    for rule in ast.get("rules", []):
        spec = rule.get("Spec")
        if not isinstance(spec, dict):
            continue
        (kind, head), *_ = spec["head"].items()
        head_start, head_end = _span(head)
        if kind == "Set":
            ref_end = _span(head["refr"])[1]
            inner = data[ref_end:head_end].strip()
            if inner.startswith(b"[") and inner.endswith(b"]"):
                edits.append((ref_end, head_end, b" contains " + inner[1:-1].strip()))
        head_text = _head_for_repeat(data, kind, head, head_start, head_end)
        first = True
        for body in spec.get("bodies", []):
            query_start = int(body["query"]["span"]["start"])
            if body.get("is_else"):  # regorus' span starts at `else`; the block after `= value`
                assign = body.get("assign") or {}
                query_start = int(assign["span"]["end"]) if assign.get("span") else query_start + len(b"else")
                if data[query_start : query_start + 1] in (b'"', b"`"):  # a string's span stops inside it
                    query_start += 1
                while data[query_start : query_start + 1].isspace():
                    query_start += 1
            if data[query_start : query_start + 1] != b"{":
                continue  # already `if <expr>` (v0 with future.keywords.if)
            before = data[:query_start].rstrip()
            if before.endswith(b"if") and not before[-3:-2].isalnum():
                continue
            if not first and not body.get("is_else"):
                edits.append((query_start, query_start, head_text + b" if "))
            else:
                edits.append((query_start, query_start, b"if "))
            first = False
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        data = data[:start] + new + data[end:]
    return data.decode("utf-8")


def _span(node: dict[str, Any]) -> tuple[int, int]:
    span = node.get("span")
    if span is None:
        (_, inner), *_ = node.items()
        span = inner["span"]
    return int(span["start"]), int(span["end"])


def _head_for_repeat(data: bytes, kind: str, head: dict[str, Any], start: int, end: int) -> bytes:
    """The head to write before a second body (`p { a } { b }`), already in v1 form."""
    text = data[start:end]
    if kind == "Set":
        ref_end = _span(head["refr"])[1]
        inner = data[ref_end:end].strip()
        text = data[start:ref_end] + b" contains " + inner[1:-1].strip()
    return text
