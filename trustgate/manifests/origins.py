"""Map objects rendered from a kustomization back to the files they were written in.

Owns: a second rendering of a kustomization through a throw-away kustomization
(in a temporary directory) that names the user's one as its only resource and
turns on kustomize's `buildMetadata: [originAnnotations]`; reading each
object's `config.kubernetes.io/origin` annotation from it; and mapping a JSON
path in a rendered object to a line of its source file. The user's files are
never written, and the objects evaluated are those of the plain rendering, so
policies never see the annotation unless the user's own kustomization asks
for it. Leaves out: the plain rendering itself (see `loader.py`).

When the field at a path differs between the source file and the rendered
object (a patch, a namespace or label transformer set it), the finding points
at the object in its source file and says where the rendered value is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import yaml

from trustgate import yamlio
from trustgate.model import Document, JsonPath, Origin, Source

if TYPE_CHECKING:
    import subprocess

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
_MISSING = object()
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it
_MAX_SOURCE_BYTES = 4 * 1024 * 1024  # bytes; a source file larger than this is not mapped
_MAX_SOURCE_NODES = 1_000_000  # YAML nodes in one source file, as the alias-bomb guard counts them


class OriginRender:
    """`kubectl kustomize` of a wrapper kustomization with origin annotations, run in the background.

    Start it before the plain rendering so both run at once; `origins()` waits
    for it. Any failure (an old kustomize, a timeout) only means that findings
    keep pointing at the rendered output.
    """

    def __init__(self, directory: str, *, timeout: float, unrestricted: bool = False) -> None:
        # Imported here: every check maps lines (`locate`), only kustomizations render.
        import shutil
        import subprocess
        import tempfile

        self.timeout = timeout
        self._dir: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            return
        try:
            self._dir = os.path.realpath(tempfile.mkdtemp(prefix="trustgate-origins-"))
            # kustomize refuses an absolute path as a resource: name the user's directory relative to ours.
            target = os.path.relpath(os.path.realpath(directory), self._dir)
            with open(os.path.join(self._dir, "kustomization.yaml"), "w", encoding="utf-8") as f:
                yaml.safe_dump(
                    {
                        "apiVersion": "kustomize.config.k8s.io/v1beta1",
                        "kind": "Kustomization",
                        # A Component can only be included as one.
                        ("components" if _is_component(directory) else "resources"): [target],
                        "buildMetadata": ["originAnnotations"],
                    },
                    f,
                )
            self._process = subprocess.Popen(
                [kubectl, "kustomize", *_restrictor(unrestricted), "--", self._dir],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            self.close()

    def origins(self) -> list[Mapping[str, Any] | None] | None:
        """The origin annotation of each rendered object, in output order; None when unavailable."""
        if self._process is None or self._dir is None:
            return None
        import subprocess

        try:
            out, _ = self._process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            return None
        if self._process.returncode != 0:
            return None
        found: list[Mapping[str, Any] | None] = []
        try:
            for value in yaml.load_all(out, Loader=_LOADER):
                if value is None:
                    continue
                found.append(_origin_of(value, self._dir))
        except yaml.YAMLError:
            return None
        return found

    def close(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        if self._dir is not None:
            import shutil

            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> OriginRender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_component(directory: str) -> bool:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        try:
            with open(os.path.join(directory, name), "rb") as f:
                head = yaml.load(f.read(_MAX_SOURCE_BYTES), Loader=_LOADER)
        except (OSError, yaml.YAMLError):
            continue
        return isinstance(head, Mapping) and head.get("kind") == "Component"
    return False


def _origin_of(value: Any, base: str) -> Mapping[str, Any] | None:
    """The parsed origin annotation, with `path` made absolute; None for remote or generated objects."""
    if not isinstance(value, Mapping):
        return None
    metadata = value.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    raw = annotations.get(ORIGIN_ANNOTATION) if isinstance(annotations, Mapping) else None
    if not isinstance(raw, str):
        return None
    try:
        origin = yaml.safe_load(raw)
    except yaml.YAMLError:
        return None
    if not isinstance(origin, Mapping) or not isinstance(origin.get("path"), str) or origin.get("repo"):
        return None  # a remote base (repo + ref) or a generated object: no local file to point at
    return {
        "path": os.path.normpath(os.path.join(base, origin["path"])),
        "kind": value.get("kind"),
        "name": metadata.get("name") if isinstance(metadata, Mapping) else None,
    }


def attach(
    documents: Sequence[Document], origins: Sequence[Mapping[str, Any] | None], directory: str
) -> None:
    """Point each rendered document at its source file, where the origin is known and local.

    `documents` and `origins` come from the plain and the annotated renderings
    of the same kustomization; they must list the same objects in the same
    order, or nothing is changed.
    """
    if len(documents) != len(origins):
        return
    root = os.path.realpath(directory)
    cache: dict[str, list[yamlio.ParsedDocument]] = {}
    for doc, origin in zip(documents, origins, strict=True):
        if origin is None or origin["kind"] != doc.kind or origin["name"] != doc.name:
            continue
        path = str(origin["path"])
        if path not in cache:
            cache[path] = _parse_source(path)
        source = _find(cache[path], doc)
        if source is None:
            continue
        # Name the file the way the user named the kustomization (relative stays relative).
        shown = os.path.normpath(os.path.join(directory, os.path.relpath(path, root)))
        doc.origin = Origin(obj=source.value, tree=source.node, rendered_line=doc.source.line)
        doc.source = Source(shown, source.line, doc.source.index, doc.source.rendered_from or directory)


def _parse_source(path: str) -> list[yamlio.ParsedDocument]:
    try:
        if os.path.getsize(path) > _MAX_SOURCE_BYTES:
            return []
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    if path.endswith(".json"):
        return []  # JSON sources keep pointing at the rendered output
    return [
        item
        for item in yamlio.parse_stream(data, max_nodes=_MAX_SOURCE_NODES)
        if isinstance(item, yamlio.ParsedDocument) and isinstance(item.value, Mapping)
    ]


def _find(candidates: Sequence[yamlio.ParsedDocument], doc: Document) -> yamlio.ParsedDocument | None:
    """The object of the source file that `doc` was rendered from, or None when that is not certain.

    Its name, else the only object of its kind in the file, else the only one whose name is a whole
    part of the rendered name (`namePrefix: prod-` and `nameSuffix: -v2` make `web` `prod-web-v2`):
    `b` is no part of `xb` (a patch may have renamed another object to it), and a rendered object
    that is not certainly one of the file's keeps pointing at the rendered output.
    """
    same_kind = [c for c in candidates if c.value.get("kind") == doc.kind]
    exact = [c for c in same_kind if _name(c.value) == doc.name]
    if len(exact) == 1:
        return exact[0]
    if len(same_kind) == 1:
        return same_kind[0]  # renamed by namePrefix/nameSuffix
    contained = [
        c
        for c in same_kind
        if isinstance(_name(c.value), str) and _name(c.value) and _whole_part(_name(c.value), doc.name or "")
    ]
    return contained[0] if len(contained) == 1 else None


def _whole_part(name: str, rendered: str) -> bool:
    """Whether `name` is in `rendered` between its ends or non-alphanumeric characters (`-`, `.`):
    as a prefix and a suffix that end and start with such a character leave it."""
    start = rendered.find(name)
    while start != -1:
        end = start + len(name)
        if (start == 0 or not rendered[start - 1].isalnum()) and (
            end == len(rendered) or not rendered[end].isalnum()
        ):
            return True
        start = rendered.find(name, start + 1)
    return False


def _name(value: Mapping[str, Any]) -> Any:
    metadata = value.get("metadata")
    return metadata.get("name") if isinstance(metadata, Mapping) else None


def locate(doc: Document, path: JsonPath) -> tuple[int | None, str]:
    """The line of `path` in the file `doc.source` names, and a note when that is not exact.

    For a document without an origin this is the line in the file it was read
    from. For one rendered from a kustomization, it is the line in its source
    file when the value there is the one rendered; otherwise the object's first
    line in its source file, with a note naming the line of the rendered output.
    """
    origin = doc.origin
    if not isinstance(origin, Origin):
        return yamlio.locate(doc.tree, path), ""
    present = _present_prefix(doc.obj, path)
    in_source = _get(origin.obj, present)
    if len(present) < len(path):
        # A field the object lacks: exact when its parent is in the source and lacks it too.
        if in_source is not _MISSING and _step(in_source, path[len(present)]) is _MISSING:
            return yamlio.locate(origin.tree, path), ""
    elif in_source == _get(doc.obj, present):
        return yamlio.locate(origin.tree, path), ""
    rendered = doc.source.rendered_from or "the kustomization"
    line = yamlio.locate(doc.tree, path)
    where = f"line {line} of `kubectl kustomize {rendered}`" if line else f"`kubectl kustomize {rendered}`"
    return doc.source.line, (
        f"the line is the object's: this value is not in {doc.source.file} but set by the "
        f"kustomization in {rendered} (a patch or transformer); it is at {where}"
    )


def _present_prefix(obj: Any, path: JsonPath) -> JsonPath:
    node = obj
    for i, part in enumerate(path):
        child = _step(node, part)
        if child is _MISSING:
            return tuple(path[:i])
        node = child
    return tuple(path)


def _get(obj: Any, path: JsonPath) -> Any:
    node = obj
    for part in path:
        node = _step(node, part)
        if node is _MISSING:
            return _MISSING
    return node


def _step(node: Any, part: Any) -> Any:
    if isinstance(node, Mapping):
        return node.get(str(part), _MISSING)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _MISSING


def _restrictor(unrestricted: bool) -> list[str]:
    """kubectl's flag for kustomize's load restrictor (see `loader.render_kustomization`)."""
    return ["--load-restrictor", "LoadRestrictionsNone"] if unrestricted else []
