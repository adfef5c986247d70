"""Reading Rego source as text: what is code, and which `data` it names.

Owns: telling code from strings and comments (so that a reference inside a
message or a comment is not taken for one), and writing `data["name"]` as
`data.name` (the same reference in OPA's AST) so that one pattern finds both.
Leaves out: parsing Rego (the engines do), and what a reference means to a
caller (Gatekeeper's allowed roots, conftest's `data.conftest`).
"""

from __future__ import annotations

import re

# A Rego string, raw string or comment; before them, `data["name"]` (the same reference as `data.name`).
_LEXEME = re.compile(
    r'(?P<ref>(?<![\w.])data[ \t]*\[[ \t]*"(?P<name>[A-Za-z_]\w*)"[ \t]*\])'
    r'|"(?:\\.|[^"\\\n])*"|`[^`]*`|#[^\n]*'
)
DATA_REF = re.compile(r"(?<![\w.])data\.(?P<name>[A-Za-z_]\w*)")
DATA_ROOT = re.compile(r"(?<![\w.])data\b(?![ \t]*\.[ \t]*[A-Za-z_])")  # `data` not followed by `.name`


def dotted(text: str) -> str:
    """`text` with every `data["name"]` outside strings and comments written `data.name` (same meaning)."""
    return _LEXEME.sub(lambda m: f"data.{m.group('name')}" if m.group("ref") else m.group(), text)


def code(text: str) -> str:
    """`text` with its strings and comments blanked out (lines kept): what references are read from."""
    return _LEXEME.sub(lambda m: m.group() if m.group("ref") else re.sub(r"[^\n]", " ", m.group()), text)


def data_roots(text: str) -> set[str]:
    """The names under `data` that `text` reads (`data.x`, `data["x"]`), outside strings and comments."""
    return {m.group("name") for m in DATA_REF.finditer(code(dotted(text)))}
