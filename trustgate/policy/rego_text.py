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
    r'(?P<ref>(?<![\w.])data\s*\[\s*"(?P<name>[A-Za-z_]\w*)"\s*\])'
    r'|"(?:\\.|[^"\\\n])*"|`[^`]*`|#[^\n]*'
)
DATA_REF = re.compile(r"(?<![\w.])data\.(?P<name>[A-Za-z_]\w*)")
DATA_ROOT = re.compile(r"(?<![\w.])data\b(?![ \t]*\.[ \t]*[A-Za-z_])")  # `data` not followed by `.name`
# `data` and the names it goes down through (`data.a.b`), up to the first step that is not a plain name.
_DATA_PATH = re.compile(r"(?<![\w.])data\b(?P<steps>(?:[ \t]*\.[ \t]*[A-Za-z_]\w*)*)")


def dotted(text: str) -> str:
    """`text` with every one-line `data["name"]` outside strings and comments written `data.name`
    (the same meaning). One that spans lines is left as it is (lines must stay where they are):
    `DATA_ROOT` finds it in `code`, and `data_roots` names it."""

    def one(m: re.Match[str]) -> str:
        return f"data.{m.group('name')}" if m.group("ref") and "\n" not in m.group() else m.group()

    return _LEXEME.sub(one, text)


def code(text: str) -> str:
    """`text` with its strings and comments blanked out (lines kept): what references are read from."""
    return _LEXEME.sub(lambda m: m.group() if m.group("ref") else re.sub(r"[^\n]", " ", m.group()), text)


def data_roots(text: str) -> set[str]:
    """The names under `data` that `text` reads (`data.x`, `data["x"]`), outside strings and comments."""
    spanning = {m.group("name") for m in _LEXEME.finditer(text) if m.group("ref")}
    return spanning | {m.group("name") for m in DATA_REF.finditer(code(dotted(text)))}


def data_paths(text: str) -> set[tuple[str, ...]]:
    """Every reference to `data` in `text` outside strings and comments, as the plain names it goes
    down through: `data.a.b[x].c` and `import data.a.b` are `("a", "b")`; `data` alone, `data[x]`
    and `data["a"][k]` (a step read as a blank string) stop early, down to `()`, the whole of `data`.
    A reference reads a path when either is a prefix of the other (`reads`)."""
    return {
        tuple(step.strip(" \t.") for step in re.findall(r"[ \t]*\.[ \t]*[A-Za-z_]\w*", m.group("steps")))
        for m in _DATA_PATH.finditer(code(dotted(text)))
    }


def reads(paths: set[tuple[str, ...]], target: tuple[str, ...]) -> bool:
    """Whether references at `paths` (`data_paths`) may read `target` or something below it: one
    of them leads to it, or reads a document it is part of."""
    return any(p[: len(target)] == target or target[: len(p)] == p for p in paths)
