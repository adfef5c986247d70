"""trustgate's dataclass methods, compiled once with the package instead of on every start.

Owns: a stand-in for `dataclasses._create_fn` that, for a trustgate module's
dataclass, takes the method from a generated module of this package (compiled
to bytecode by Python's own cache like any module) instead of compiling its
source text again; the generator of those modules (`python -m
trustgate._precompiled --write`, `--check`). Leaves out: everything else about
dataclasses; they are made by the standard library as always.

Why: on Python 3.11 every dataclass compiles each generated method (`__init__`,
`__repr__`, `__eq__`, `__hash__`, a frozen class's `__setattr__` and
`__delattr__`) with `exec`, ~65 us each; `trustgate check` of one file creates 68
dataclasses, ~380 methods, ~40 ms of a ~160 ms run (ADR 14, "Start-up").

Safe by construction: a method is taken from the table only when the source text
the standard library built for it is, character for character, a key of the
table, and the table's function was compiled from that text (a test compiles
every key and compares the code). Anything else (another module, a class edited
since the table was generated, another Python) is compiled as the standard
library would. The stand-in is installed only on the Python the table was made
for, and only when `_create_fn` is the function it was written against.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types
import zlib
from collections.abc import Callable
from typing import Any

PYTHON = (3, 11)  # the dataclasses module the tables and the stand-in follow
# `dataclasses._create_fn`'s bytecode and constants on 3.11.x (crc32): the stand-in rebuilds its
# text the same way, so it must not stand in for any other version of it.
CREATE_FN_FINGERPRINT = 0x913011FA
PACKAGE = "trustgate"
TABLES = __name__  # the generated modules live here: TABLES + "." + table_name(module)

Factory = Callable[..., Any]
_tables: dict[str, dict[str, Factory]] = {}
_original: Callable[..., Any] | None = None


def table_name(module: str) -> str:
    """The generated module holding `module`'s methods: `trustgate.policy.rego` -> `m_policy__rego`."""
    return "m_" + module[len(PACKAGE) + 1 :].replace(".", "__")


def code_shape(code: types.CodeType) -> tuple[Any, ...]:
    """What a code object does, without where it came from (file, lines, addresses of nested code)."""
    consts = tuple(code_shape(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return (
        code.co_code,
        consts,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
        code.co_argcount,
        code.co_kwonlyargcount,
        code.co_posonlyargcount,
        code.co_flags,
        code.co_name,
    )


def fingerprint(fn: Callable[..., Any]) -> int:
    """A checksum of a function's code (`code_shape`), the same in every process."""
    return zlib.crc32(repr(code_shape(fn.__code__)).encode())


def source_text(
    name: str, args: list[str], body: list[str], local_names: list[str], return_annotation: str
) -> str:
    """The text `dataclasses._create_fn` (3.11) compiles for one method, built as it builds it."""
    lines = "\n".join(f"  {b}" for b in body)
    txt = f" def {name}({','.join(args)}){return_annotation}:\n{lines}"
    return f"def __create_fn__({', '.join(local_names)}):\n{txt}\n return {name}"


def _create_fn(
    name: str,
    args: list[str],
    body: list[str],
    *,
    globals: dict[str, Any] | None = None,  # the standard library's own keywords
    locals: dict[str, Any] | None = None,
    return_type: Any = dataclasses.MISSING,
) -> Any:
    """`dataclasses._create_fn`, taking the compiled method from a table where it has it."""
    assert _original is not None
    module = globals.get("__name__") if globals is not None else None
    if globals is None or not isinstance(module, str) or not module.startswith(PACKAGE + "."):
        return _original(name, args, body, globals=globals, locals=locals, return_type=return_type)
    names = [*locals] if locals is not None else []
    return_annotation = ""
    if return_type is not dataclasses.MISSING:
        names.append("_return_type")
        return_annotation = "->_return_type"
    factory = _table(module).get(source_text(name, args, body, names, return_annotation))
    if factory is None:  # a class edited since the table was generated: compile as always
        return _original(name, args, body, globals=globals, locals=locals, return_type=return_type)
    values = dict(locals or {})
    if return_type is not dataclasses.MISSING:
        values["_return_type"] = return_type
    # The method must see the class's module as its globals, as `exec(text, globals)` gives it.
    return types.FunctionType(factory.__code__, globals, "__create_fn__")(**values)


SEPARATOR = "\n# ---\n"  # before each function of a table
APPEND = "\nFUNCTIONS.append(__create_fn__)\n"  # after each: its text is what lies between


def _table(module: str) -> dict[str, Factory]:
    """`module`'s compiled methods by their source text; empty if it has no table here."""
    table = _tables.get(module)
    if table is None:
        table = _tables[module] = _load(f"{TABLES}.{table_name(module)}")
    return table


def _load(name: str) -> dict[str, Factory]:
    """A generated module's functions, each keyed by its own source text (read from its file).

    The text is what Python compiled the function from, so a key can only ever find the
    function compiled from it; a module whose file does not split into as many texts as it
    has functions (edited by hand) is not used at all.
    """
    try:
        generated = importlib.import_module(name)
        with open(str(generated.__file__), encoding="utf-8") as f:
            parts = f.read().split(SEPARATOR)[1:]
    except (ModuleNotFoundError, OSError, TypeError):  # no table, or no source beside the bytecode
        return {}
    functions: list[Factory] = generated.FUNCTIONS
    if (
        generated.PYTHON != PYTHON
        or len(parts) != len(functions)
        or not all(p.endswith(APPEND) for p in parts)
    ):
        return {}
    return {part[: -len(APPEND)]: fn for part, fn in zip(parts, functions, strict=True)}


def install() -> None:
    """Stand in for `dataclasses._create_fn`, where this Python's is the one the tables follow."""
    global _original
    current = getattr(dataclasses, "_create_fn", None)
    if _original is not None or current is None or sys.version_info[:2] != PYTHON:
        return
    if sys.implementation.name != "cpython" or fingerprint(current) != CREATE_FN_FINGERPRINT:
        return
    _original = current
    dataclasses._create_fn = _create_fn  # type: ignore[attr-defined]  # a private function, checked above


def installed() -> bool:
    """Whether the stand-in is in place (tests; `python -m trustgate._precompiled`)."""
    return _original is not None and getattr(dataclasses, "_create_fn", None) is _create_fn
