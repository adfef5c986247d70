"""Turn what the user named (files, directories, `-`, kustomizations) into documents.

Owns: walking directories, reading files within limits, rendering
kustomizations with `kubectl kustomize`, unpacking `kind: List`, and checking
that each document is a Kubernetes object at all. Every problem becomes an
`InputProblem` tied to a file and line; reading goes on with the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustgate import yamlio
from trustgate.config import Limits
from trustgate.errors import InputError
from trustgate.model import Document, InputProblem, Source

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
STDIN = "-"


@dataclass(frozen=True, slots=True)
class Unit:
    """One thing to read: a file, a kustomization directory or stdin's bytes."""

    path: str
    kind: str  # "file" | "kustomize" | "stdin"
    data: bytes | None = None


def plan(paths: Sequence[str], *, stdin: bytes | None = None) -> list[Unit]:
    """Expand the user's paths into units, in a stable order.

    A directory is walked recursively (hidden directories skipped); a directory
    holding a kustomization is rendered as one unit and not walked further.

    Raises:
        InputError: a named path does not exist.
    """
    units: list[Unit] = []
    seen: set[str] = set()

    def add(unit: Unit) -> None:
        if unit.path not in seen:
            seen.add(unit.path)
            units.append(unit)

    for raw in paths:
        if raw == STDIN:
            add(Unit(STDIN, "stdin", stdin if stdin is not None else b""))
            continue
        path = Path(raw)
        if not path.exists() and not path.is_symlink():
            raise InputError("no such file or directory", where=raw, hint="check the path")
        if path.is_dir():
            for unit in _walk(path):
                add(unit)
        else:
            add(Unit(raw, "file"))
    return units


def _walk(root: Path) -> Iterator[Unit]:
    if _kustomization_in(root):
        yield Unit(str(root), "kustomize")
        return
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        yield Unit(str(root), "file")  # reading it reports the error
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path))
        elif entry.name.endswith(MANIFEST_SUFFIXES) and entry.is_file():
            yield Unit(entry.path, "file")


def _kustomization_in(directory: Path) -> bool:
    return any((directory / name).is_file() for name in KUSTOMIZATION_FILES)


def read_unit(unit: Unit, limits: Limits) -> tuple[list[Document], list[InputProblem]]:
    """Read one unit into documents; problems are returned, never raised."""
    if unit.kind == "kustomize":
        try:
            data = render_kustomization(unit.path, timeout=limits.kustomize_timeout_seconds)
        except InputError as e:
            return [], [InputProblem(Source(unit.path), "input/kustomize", e.message, e.hint)]
        return parse_bytes(data, unit.path, limits, rendered_from=unit.path)
    if unit.kind == "stdin":
        data = unit.data or b""
    else:
        try:
            size = os.path.getsize(unit.path)
            if size > limits.max_file_bytes:
                return [], [
                    InputProblem(
                        Source(unit.path),
                        "input/too-large",
                        f"file is {size:,} bytes; the limit is {limits.max_file_bytes:,}",
                        "split the file or raise limits.maxFileBytes in trustgate.yaml",
                    )
                ]
            with open(unit.path, "rb") as f:
                data = f.read(limits.max_file_bytes + 1)
        except OSError as e:
            return [], [
                InputProblem(Source(unit.path), "input/unreadable", f"cannot read: {e.strerror or e}")
            ]
    if len(data) > limits.max_file_bytes:
        return [], [
            InputProblem(
                Source(unit.path),
                "input/too-large",
                f"input is over the limit of {limits.max_file_bytes:,} bytes",
                "split the input or raise limits.maxFileBytes in trustgate.yaml",
            )
        ]
    return parse_bytes(data, unit.path, limits)


def parse_bytes(
    data: bytes, name: str, limits: Limits, *, rendered_from: str | None = None
) -> tuple[list[Document], list[InputProblem]]:
    """Parse a stream of manifests into documents, reporting every bad one."""
    if b"\x00" in data[:8192]:
        return [], [
            InputProblem(
                Source(name),
                "input/binary",
                "this is a binary file, not YAML or JSON",
                "remove it from the input",
            )
        ]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        return [], [
            InputProblem(
                Source(name, line),
                "input/encoding",
                f"not valid UTF-8 at byte {e.start} (line {line})",
                "save the file as UTF-8",
            )
        ]
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]

    documents: list[Document] = []
    problems: list[InputProblem] = []
    if name.endswith(".json") and data.lstrip()[:1] in (b"{", b"["):
        try:
            value = json.loads(data)
        except (json.JSONDecodeError, RecursionError):
            pass  # the YAML path below reports the place
        else:
            _add(value, Source(name, 1, 0, rendered_from), yamlio.LazyTree(data), documents, problems)
            return documents, problems
    count = 0
    for item in yamlio.parse_stream(data, max_nodes=limits.max_yaml_nodes):
        count += 1
        if count > limits.max_documents_per_file:
            problems.append(
                InputProblem(
                    Source(name),
                    "input/too-many-documents",
                    f"more than {limits.max_documents_per_file:,} documents in one input",
                    "split the file or raise limits.maxDocumentsPerFile",
                )
            )
            break
        if isinstance(item, yamlio.YamlProblem):
            problems.append(
                InputProblem(
                    Source(name, item.line, count - 1, rendered_from), item.rule, item.message, item.hint
                )
            )
            continue
        source = Source(name, item.line, item.index, rendered_from)
        _add(item.value, source, item.node, documents, problems)
    return documents, problems


def _add(
    value: Any,
    source: Source,
    tree: Any,
    documents: list[Document],
    problems: list[InputProblem],
) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        problems.append(
            InputProblem(
                source,
                "input/not-an-object",
                f"document is a {_type_name(value)}, not a Kubernetes object (a mapping)",
                "each document must be a mapping with apiVersion and kind",
            )
        )
        return
    kind = value.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(value.get("items"), list):
        for i, item in enumerate(value["items"]):
            item_tree = yamlio.subtree(tree, ("items", i))
            line = yamlio.locate(tree, ("items", i)) or source.line
            _add(
                item,
                Source(source.file, line, source.index, source.rendered_from),
                item_tree,
                documents,
                problems,
            )
        return
    missing = [k for k in ("apiVersion", "kind") if not isinstance(value.get(k), str) or not value.get(k)]
    if missing:
        problems.append(
            InputProblem(
                source,
                "input/not-a-kubernetes-object",
                f"document is missing {' and '.join(missing)}",
                "add apiVersion and kind, or remove the document from the input",
            )
        )
        return
    documents.append(Document(source=source, obj=value, tree=tree))


def _type_name(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def render_kustomization(directory: str, *, timeout: float) -> bytes:
    """Render a kustomization with `kubectl kustomize`.

    Raises:
        InputError: kubectl is missing, times out or fails; the message carries its stderr.
    """
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise InputError(
            "cannot render the kustomization: kubectl is not installed",
            where=directory,
            hint="install kubectl (it includes `kubectl kustomize`) or render the manifests first",
        )
    try:
        done = subprocess.run(
            [kubectl, "kustomize", directory],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise InputError(f"kubectl kustomize did not finish within {timeout:g} s", where=directory) from e
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(
            "kubectl kustomize failed: " + (message[-1] if message else f"exit {done.returncode}"),
            where=directory,
            hint="run `kubectl kustomize " + directory + "` to see the whole error",
        )
    return done.stdout
