"""Dataclass methods compiled with the package (`trustgate._precompiled`, ADR 14 "Start-up").

The stand-in may only ever change how long a dataclass takes to make, never what it is: the
tables' keys are the texts the standard library itself compiles (the generator takes them from
its `exec`; a test checks the tables are today's), each table function is compared with what
Python compiles from its key, and every trustgate dataclass is checked to have found its methods
(a stand-in rebuilding a text otherwise than the standard library would find nothing).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import trustgate
from trustgate import _precompiled

DIRECTORY = Path(_precompiled.__file__).parent
TABLES = sorted(p.stem for p in DIRECTORY.glob("m_*.py"))


def _modules() -> list[types.ModuleType]:
    skip = (_precompiled.TABLES, "trustgate.policies")
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(trustgate.__path__, "trustgate.")
        if not info.name.startswith(skip) and info.name != f"{_precompiled.TABLES}.__main__"
    ]


def _dataclasses() -> list[type]:
    return [
        cls
        for module in _modules()
        for cls in vars(module).values()
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
    ]


def _methods(cls: type) -> dict[str, types.FunctionType]:
    """The methods `dataclass` generated for `cls` (their code names the method; a user's would not
    sit in a `__create_fn__`)."""
    out = {}
    for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
        fn = inspect.unwrap(cls.__dict__.get(name)) if name in cls.__dict__ else None
        if isinstance(fn, types.FunctionType) and fn.__code__.co_qualname.startswith("__create_fn__"):
            out[name] = fn
    return out


def test_the_stand_in_is_installed_on_this_python() -> None:
    """CI's Python is the one the tables follow: the speed-up is really in use there."""
    assert sys.version_info[:2] == _precompiled.PYTHON
    assert _precompiled.installed()


def test_the_tables_are_what_the_generator_writes() -> None:
    """A dataclass edited without `python -m trustgate._precompiled --write` fails here."""
    result = subprocess.run(
        [sys.executable, "-m", "trustgate._precompiled", "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("table", TABLES)
def test_each_function_is_what_python_compiles_from_its_key(table: str) -> None:
    functions = _precompiled._load(f"{_precompiled.TABLES}.{table}")
    assert functions, f"{table} did not load"
    for text, fn in functions.items():
        namespace: dict[str, object] = {}
        # As `dataclasses` compiles it: without this test module's `from __future__` flags.
        exec(compile(text, "<string>", "exec", dont_inherit=True), {}, namespace)
        compiled = namespace["__create_fn__"]
        assert isinstance(compiled, types.FunctionType)
        assert _precompiled.code_shape(fn.__code__) == _precompiled.code_shape(compiled.__code__), text


def test_every_trustgate_dataclass_takes_its_methods_from_a_table() -> None:
    """Each generated method's code sits in its module's table file (not compiled at start-up)."""
    classes = _dataclasses()
    assert len(classes) > 150
    for cls in classes:
        methods = _methods(cls)
        assert "__init__" in methods or not dataclasses.fields(cls), cls
        for name, fn in methods.items():
            where = Path(fn.__code__.co_filename)
            assert where.parent == DIRECTORY and where.stem == _precompiled.table_name(cls.__module__), (
                cls,
                name,
            )


def test_a_class_edited_since_the_table_was_made_is_compiled_as_always() -> None:
    """A text the table lacks (here: a class of a trustgate module made now) falls back."""
    namespace = {"__name__": "trustgate.config"}
    exec(
        "import dataclasses\n"
        "@dataclasses.dataclass(frozen=True)\n"
        "class Added:\n    a_field_no_table_has: int = 1\n",
        namespace,
    )
    added = namespace["Added"]
    assert added(2).a_field_no_table_has == 2
    assert added() == added(1) and hash(added()) == hash(added(1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        added().a_field_no_table_has = 3  # type: ignore[misc]
    assert added.__init__.__code__.co_filename == "<string>"  # compiled by the standard library


def test_other_modules_dataclasses_are_left_to_the_standard_library() -> None:
    @dataclasses.dataclass(frozen=True)
    class Local:
        x: int
        y: str = "y"

    assert Local(1) == Local(1, "y") and repr(Local(1)).endswith("<locals>.Local(x=1, y='y')")
    assert Local.__init__.__code__.co_filename == "<string>"


def test_not_installed_over_another_create_fn(monkeypatch: pytest.MonkeyPatch) -> None:
    """A `_create_fn` that is not the one the stand-in rebuilds (another 3.11 patch release that
    changed it) is left alone: the tables' keys would not be its texts."""

    def other(*args: object, **kwargs: object) -> None:  # pragma: no cover - never called
        return None

    monkeypatch.setattr(_precompiled, "_original", None)
    monkeypatch.setattr(dataclasses, "_create_fn", other)
    _precompiled.install()
    assert dataclasses._create_fn is other  # type: ignore[attr-defined]
    assert not _precompiled.installed()


def test_check_names_a_table_that_is_not_what_the_generator_writes(tmp_path: Path) -> None:
    """`--check` on a copy of the package whose config table lost a method: exit 1, naming it."""
    copy = tmp_path / "trustgate"
    shutil.copytree(Path(trustgate.__file__).parent, copy, symlinks=True)
    table = copy / "_precompiled" / "m_config.py"
    text = table.read_text()
    table.write_text(text[: text.rindex(_precompiled.SEPARATOR)] + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "trustgate._precompiled", "--check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "out of date: m_config.py; run `python -m trustgate._precompiled --write`" in result.stderr
