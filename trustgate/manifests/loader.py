"""Turn what the user named (files, directories, `-`, kustomizations) into documents.

Owns: walking directories (and the user's exclusions), reading files within
limits, rendering kustomizations with `kubectl kustomize`, unpacking
`kind: List`, and telling Kubernetes objects from other structured data (a
GitHub workflow, Helm values, Terraform JSON, TOML), which only the user's own
policies check. Every problem becomes an `InputProblem` tied to a file and
line; reading goes on with the rest.

What a directory walk judges (`plan(..., unreferenced=True)`, as `check` walks): nothing below a
named directory is skipped without a word; what a reconciler would apply is judged, following Flux
and Argo CD (a directory holding a kustomization is only ever applied through it). A directory
holding a kustomization is rendered as one unit, and the walk goes on below it:
- a kustomization directory below that no rendering above includes (as a resource, base or
  component, transitively: `kustomize_refs.reads(..., included=)`) is a unit of its own; a
  directory merely read (`helmGlobals.chartHome`) is not included;
- a `kind: Component` the walk meets that no kustomization unit includes is not rendered alone
  (`Skipped.components`); one named directly is;
- a file beside a kustomization file that the kustomization does not read is never applied raw:
  not judged (`Skipped.beside`);
- a file with a walked suffix in a directory without a kustomization that no rendering reads is
  judged as a file (`Unit.unread` names the kustomization above, for the hint of its problems);
- a Helm chart directory (`Chart.yaml`) below a kustomization is not judged as files
  (`Skipped.charts`); any other directory Argo CD renders as a chart (`argocd_chart_file`: a
  kustomization directory too, where a name ending in `Chart.yaml` sorts after its kustomization
  file) is reported as not rendered (a `chart` unit);
- what a rendering reads (a resource, a patch, a generator or replacement file, a plugin
  configuration, ...) is not judged again as a file, nor is a kustomization file.
Hidden names and exclusions apply as everywhere (and are named in a note); a link to a directory is
never followed (`Skipped.links`: it may lead out of the tree). Without `unreferenced` (`presync`,
whose reconcilers apply a kustomization's rendering and nothing else of its directory, and CRD
paths), a kustomization directory is one unit and is not walked further.
A kustomization file named directly renders its directory, as `kubectl kustomize DIR` does.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import marshal
import math
import operator
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from trustgate import yamlio
from trustgate.config import Limits
from trustgate.errors import InputError
from trustgate.manifests import origins
from trustgate.model import KUSTOMIZATION_FILES, Document, InputProblem, JsonPath, Source, render_path

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# What a reconciler renders into objects and trustgate cannot read: Argo CD's directory source
# renders `*.jsonnet` (reposerver `manifestFile`). `check` reports such a file; presync stops on it.
RENDERED_UNREAD = (".jsonnet",)
# What `check` reads: TOML only for the user's own policies, Jsonnet only to say it is not judged.
DATA_SUFFIXES = (*MANIFEST_SUFFIXES, ".toml", *RENDERED_UNREAD)
HELM_CHART_FILE = "Chart.yaml"
# A mapping with one of these keys means to be a Kubernetes object: when it is not a valid
# one (a typo'd `kind`), it is an error, never data that no check applies to.
_MANIFEST_KEYS = ("apiVersion", "kind", "metadata")
STDIN = "-"


@dataclass(slots=True)
class Skipped:
    """What a directory walk left out, for the caller to say so: nothing is dropped silently.

    Counts and names are of files with the walk's suffixes (a directory with none is not named).
    """

    # (path, files): a hidden file (1), or a hidden directory (its path ends in `/`) and the files below it
    hidden: list[tuple[str, int]] = field(default_factory=list)
    # exclusion pattern -> (path, files) of each file or directory it left out, in walk order
    excluded: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    # kustomization directory -> the files beside its kustomization file that it does not read:
    # Flux and Argo CD apply such a directory only through its kustomization
    beside: dict[str, list[str]] = field(default_factory=dict)
    # (path, files): a Helm chart directory below a kustomization that no rendering reads
    charts: list[tuple[str, int]] = field(default_factory=list)
    # a `kind: Component` kustomization no rendering includes: never applied alone
    components: list[str] = field(default_factory=list)
    # (path, files): a link to a directory, not followed (it may lead out of the checked tree)
    links: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Unit:
    """One thing to read: a file, a kustomization directory or stdin's bytes; or (`chart`) the file
    that makes a directory a Helm chart to Argo CD, which is not read but reported."""

    path: str
    kind: str  # "file" | "kustomize" | "stdin" | "chart"
    data: bytes | None = None
    chart: str | None = None  # the Helm chart directory the file lies in, for the hint
    unread: str | None = (
        None  # the kustomization directory above a file that no rendering reads, for the hint
    )


def plan(
    paths: Sequence[str],
    *,
    stdin: bytes | None = None,
    exclude: Sequence[str] = (),
    suffixes: tuple[str, ...] = MANIFEST_SUFFIXES,
    skipped: Skipped | None = None,
    dot_names: bool = False,
    unreferenced: bool = False,
) -> list[Unit]:
    """Expand the user's paths into units, in a stable order.

    A directory is walked recursively (hidden names below it skipped, unless `dot_names`); a
    directory holding a kustomization is rendered as one unit, and (with `unreferenced`) the walk
    goes on below it for what that rendering does not read (see the module's docstring). A named
    kustomization file (`kustomization.yaml`, `kustomization.yml`, `Kustomization`) is its
    directory's rendering.

    Args:
        paths: files, directories and `-` (stdin).
        stdin: the bytes read from stdin, when `-` is among `paths`.
        exclude: gitignore-like globs matched against paths relative to each
            named directory (see `excluded`); a named file is matched by its path
            as given and its name.
        suffixes: the file names a directory walk picks up.
        skipped: when given, what a directory walk left out is added to it, so that the
            caller can say so: hidden files and directories (`kubectl apply -R` and Flux
            would apply them; `.git` is not named) and what `exclude` matched.
        dot_names: walk names starting with a dot too (`presync`: Flux's generated
            kustomization applies every `.yaml`/`.yml` below its path, dot names included).
        unreferenced: below a kustomization directory, walk on for kustomizations it does not
            include (units of their own) and files no rendering reads (judged as files), as
            `check` does; False: a kustomization directory ends the walk there (what a reconciler
            applies of a path: `presync`).

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
            walked: list[Unit] = []
            reach = _Reach(frozenset(), frozenset()) if unreferenced else None
            _walk(str(path), "", exclude, suffixes, None, skipped, walked, dot_names, reach)
            if skipped is not None and skipped.components:
                skipped.components[:] = _unincluded(skipped.components, walked)
            for unit in walked:
                add(unit)
            continue
        pattern = (excluded(raw, exclude) or excluded(path.name, exclude)) if exclude else None
        if pattern is None and _is_kustomization_file(str(path.parent), path.name):
            # `kubectl kustomize DIR` of its directory: the file itself is no object to judge.
            add(Unit(str(path.parent), "kustomize"))
        elif pattern is None:
            chart = str(path.parent) if (path.parent / HELM_CHART_FILE).is_file() else None
            add(Unit(raw, "file", chart=chart))
        elif skipped is not None:
            skipped.excluded.setdefault(pattern, []).append((raw, 1))
    return units


def excluded(relative: str, patterns: Sequence[str], *, directory: bool = False) -> str | None:
    """The first exclusion a path (relative to its input root, `/`-separated) matches, or None.

    gitignore-like: a pattern without `/` matches a file or directory name at any
    depth (`Chart.yaml`, `*.md`, `charts`); one with `/` matches the whole relative
    path (`apps/*/values.yaml`, `**/templates/**`; a leading `/` anchors it, which
    it is anyway); a trailing `/` matches directories only. `*` also crosses `/`
    (fnmatch), so `apps/*.yaml` matches `apps/a/b.yaml` too. Everything below an
    excluded directory is excluded.
    """
    name = relative.rsplit("/", 1)[-1]
    for written in patterns:
        pattern = written
        if pattern.endswith("/"):
            if not directory:
                continue
            pattern = pattern.rstrip("/")
        pattern = pattern.lstrip("/")
        if not pattern:
            continue
        if "/" not in pattern:
            if fnmatch.fnmatchcase(name, pattern):
                return written
            continue
        candidates = [pattern]
        while candidates[-1].startswith("**/"):
            candidates.append(candidates[-1][3:])  # `**/x` also matches `x` at the root
        if any(fnmatch.fnmatchcase(relative, c) for c in candidates):
            return written
    return None


@dataclass(frozen=True, slots=True)
class _Reach:
    """What the renderings of the kustomization units above a walked directory take in.

    `included`: the kustomization directories they render (each is part of a rendering: no unit of
    its own). `read`: every file and directory they read (resources, patches, generator files, a
    `helmGlobals.chartHome`, ...): not judged again as a file. Only `included` suppresses a unit: a
    kustomization in a directory merely read (a chart home) is never rendered through the parent.
    """

    included: frozenset[str]
    read: frozenset[str]

    @property
    def below_kustomization(self) -> bool:
        return bool(self.included)


def _walk(
    root: str,
    relative: str,
    exclude: Sequence[str],
    suffixes: tuple[str, ...],
    chart: str | None,
    skipped: Skipped | None,
    out: list[Unit],
    dot_names: bool = False,
    reach: _Reach | None = None,
    above: str | None = None,
) -> None:
    """Add the units below `root` to `out`.

    `reach`: None, a kustomization directory is one unit and ends the walk; else what the
    renderings of the kustomization units above `root` include and read (`_Reach`). `above`: the
    nearest kustomization directory above `root` (for the hint of a file judged below it).
    """
    # Plain strings and the directory's own listing (no Path objects, no stat per
    # kustomization name): discovery runs alone before `--jobs` workers start.
    try:
        entries = sorted(os.scandir(root), key=_NAME)
    except OSError:  # unlistable; a kustomization in it may still be readable by name
        if reach is None or not (_covers(reach.included, root) or _covers(reach.read, root)):
            out.append(Unit(root, "kustomize" if _kustomization_in(Path(root)) else "file"))
        return
    kustomized = _has_kustomization(root, entries)
    if kustomized:
        if reach is None:
            out.append(Unit(root, "kustomize"))
            return
        above = root
        if not _covers(reach.included, root):  # no rendering above includes it: a unit of its own
            from trustgate.manifests import kustomize_refs  # here: only kustomizations need it

            # A Component is only ever applied through a kustomization (alone, it renders against
            # nothing): one the walk meets is not rendered alone; one named directly is, as asked.
            if relative and origins._is_component(root):
                if skipped is not None:
                    skipped.components.append(root)
            else:
                out.append(Unit(root, "kustomize"))
            included: set[str] = set()
            read = kustomize_refs.reads(root, included=included)
            reach = _Reach(reach.included | included, reach.read | read)
    elif (
        reach is not None
        and reach.below_kustomization
        and not _covers(reach.read, root)
        and any(e.name == HELM_CHART_FILE and e.is_file() for e in entries)
    ):
        # A Helm chart's files are templates and values, not manifests: rendered by helm, not applied.
        if skipped is not None:
            count = sum(1 for _, _, files in os.walk(root) for file in files if file.endswith(suffixes))
            skipped.charts.append((root, count))
        return
    if (
        reach is not None
        and (kustomized or not reach.below_kustomization)
        and any(e.name == HELM_CHART_FILE for e in entries)  # most directories: no further look
    ):
        decisive = argocd_chart_file([e.name for e in entries if not _excluded_entry(e, relative, exclude)])
        if decisive is not None:
            out.append(Unit(os.path.join(root, decisive), "chart"))
    if chart is None and any(e.name == HELM_CHART_FILE and e.is_file() for e in entries):
        chart = root
    for entry in entries:
        name = entry.name
        if name.startswith(".") and not dot_names:
            if skipped is not None and name != ".git" and not (reach and _covers(reach.read, entry.path)):
                _note_skipped(skipped.hidden, entry, suffixes)
            continue
        below = f"{relative}/{name}" if relative else name
        is_dir = entry.is_dir(follow_symlinks=False)
        if (
            reach is not None
            and not is_dir
            and name.endswith(suffixes)
            and ((kustomized and _is_kustomization_file(root, name)) or _covers(reach.read, entry.path))
        ):
            continue  # rendered (or read) by a kustomization unit: not judged again, nor left out
        pattern = excluded(below, exclude, directory=is_dir) if exclude else None
        if pattern is not None:
            if skipped is not None:
                _note_skipped(skipped.excluded.setdefault(pattern, []), entry, suffixes)
            continue
        if is_dir:  # as `str(Path(entry.path))`, which drops the `./` that scandir(".") adds
            _walk(
                name if root == "." else entry.path,
                below,
                exclude,
                suffixes,
                chart,
                skipped,
                out,
                dot_names,
                reach,
                above,
            )
        elif entry.is_symlink() and entry.is_dir():
            # Not followed: a link may lead out of the checked tree (or loop); said, not dropped.
            if skipped is not None and not (reach and _covers(reach.read, entry.path)):
                count = sum(
                    1
                    for _, _, files in os.walk(entry.path, followlinks=False)
                    for file in files
                    if file.endswith(suffixes)
                )
                skipped.links.append((entry.path, count))
        elif name.endswith(suffixes) and entry.is_file():
            if reach is not None and kustomized:
                # Beside a kustomization file and not read by it: Flux and Argo CD apply this
                # directory only through its kustomization, so the file is never applied raw.
                if skipped is not None:
                    skipped.beside.setdefault(root, []).append(entry.path)
                continue
            out.append(Unit(entry.path, "file", chart=chart, unread=above if reach is not None else None))


def argocd_chart_file(names: Sequence[str]) -> str | None:
    """The name that makes a directory holding these names a Helm chart to Argo CD, or None.

    Argo CD's source type discovery (`util/app/discovery`, `Discover`), for an Application with no
    source type set: of the names directly in its path that end in `Chart.yaml` (any such name,
    case-sensitive) or are kustomize's, the last its walk meets (byte order) decides, and `helm
    template` renders the directory when it holds `Chart.yaml` (else it fails, and nothing is
    applied). `names` are those of the directory's files (a link counts, as Argo CD's walk does not
    follow it).
    """
    if HELM_CHART_FILE not in names:
        return None
    decisive = [n for n in names if n.endswith(HELM_CHART_FILE) or n in KUSTOMIZATION_FILES]
    last = max(decisive, key=lambda n: n.encode("utf-8", "surrogateescape"))
    return None if last in KUSTOMIZATION_FILES else last


def _excluded_entry(entry: os.DirEntry[str], relative: str, exclude: Sequence[str]) -> bool:
    """Whether the walk leaves `entry` out (`--exclude`); a directory counts as one (no file of Argo
    CD's discovery)."""
    if entry.is_dir(follow_symlinks=False):
        return True
    below = f"{relative}/{entry.name}" if relative else entry.name
    return bool(exclude) and excluded(below, exclude) is not None


def _unincluded(components: list[str], units: Sequence[Unit]) -> list[str]:
    """The components that no kustomization unit's rendering includes (the walk meets a component
    before the overlay beside it that includes it: only all the units tell)."""
    from trustgate.manifests import kustomize_refs

    included: set[str] = set()
    for unit in units:
        if unit.kind == "kustomize":
            kustomize_refs.reads(unit.path, included=included)
    frozen = frozenset(included)
    return [c for c in components if not _covers(frozen, c)]


def _covers(covered: frozenset[str], path: str) -> bool:
    """Whether a rendering above reads `path` (`kustomize_refs.reads` holds absolute and real paths)."""
    if not covered:
        return False
    try:
        return os.path.abspath(path) in covered or os.path.realpath(path) in covered
    except (OSError, ValueError):
        return False


def _note_skipped(into: list[tuple[str, int]], entry: os.DirEntry[str], suffixes: tuple[str, ...]) -> None:
    """Add a skipped file with one of the suffixes, or a skipped directory with the number of such
    files below it (none: not added)."""
    if entry.is_dir(follow_symlinks=False):
        count = sum(1 for _, _, files in os.walk(entry.path) for file in files if file.endswith(suffixes))
        if count:
            into.append((entry.path + "/", count))
    elif entry.name.endswith(suffixes) and entry.is_file():
        into.append((entry.path, 1))


_NAME = operator.attrgetter("name")
_KUSTOMIZATION_LOWER = frozenset(n.lower() for n in KUSTOMIZATION_FILES)


def _has_kustomization(root: str, entries: Sequence[os.DirEntry[str]]) -> bool:
    """`_kustomization_in(root)`, answered from the directory's listing where that is certain."""
    for entry in entries:
        if entry.name in KUSTOMIZATION_FILES:
            if entry.is_file():
                return True
        elif entry.name.lower() in _KUSTOMIZATION_LOWER:
            return _kustomization_in(Path(root))  # a case-insensitive file system may find it by name
    return False


def _kustomization_in(directory: Path) -> bool:
    return any((directory / name).is_file() for name in KUSTOMIZATION_FILES)


def _is_kustomization_file(directory: str, name: str) -> bool:
    """Whether `name` in `directory` is a kustomization file kustomize would read there: one of its
    names, or (a case-insensitive file system) the same file as one of them."""
    if name in KUSTOMIZATION_FILES:
        return os.path.isfile(os.path.join(directory, name))
    if name.lower() not in _KUSTOMIZATION_LOWER:
        return False
    path = os.path.join(directory, name)
    for canonical in KUSTOMIZATION_FILES:
        try:
            if os.path.samefile(path, os.path.join(directory, canonical)):
                return True
        except OSError:
            continue
    return False


def read_unit(
    unit: Unit, limits: Limits, *, any_data: bool = False, root: str | None = None
) -> tuple[list[Document], list[InputProblem]]:
    """Read one unit into documents; problems are returned, never raised.

    A kustomization is rendered only when everything it names is a local file or directory
    (`kustomize_refs`): one naming a URL or a git repository is a problem, not a fetch.

    Args:
        unit: what to read.
        limits: size and count limits.
        any_data: mappings that are not Kubernetes objects (and do not look like
            one) become documents with `kubernetes=False` instead of problems;
            TOML files are read.
        root: a kustomization may name only files and directories inside it (`presync`: the
            export of the checked paths); None: anywhere local.
    """
    documents, problems = _read_unit(unit, limits, any_data, root)
    if unit.chart is not None and problems:
        hint = (
            f"this file is part of the Helm chart {unit.chart}: render the chart with `helm template` "
            "first and check the output, or exclude it (--exclude, or manifests.exclude in trustgate.yaml)"
        )
        problems = [InputProblem(p.source, p.rule, p.message, hint) for p in problems]
    elif unit.unread is not None and problems:
        hint = (
            f"no kustomization reads this file (the one in {unit.unread} does not name it), so it was "
            "judged as a manifest on its own: if it is not one (a patch, a JSON 6902 list, a tool's "
            "configuration), exclude it (--exclude, or manifests.exclude in trustgate.yaml)"
        )
        problems = [
            InputProblem(p.source, p.rule, p.message, hint) if p.rule.startswith("input/") else p
            for p in problems
        ]
    return documents, problems


def _read_unit(
    unit: Unit, limits: Limits, any_data: bool, root: str | None
) -> tuple[list[Document], list[InputProblem]]:
    if unit.kind == "kustomize":
        # Before anything renders (the origin rendering included): kustomize would fetch a remote.
        from trustgate.manifests import kustomize_refs  # here: only kustomizations need it

        refused = kustomize_refs.problems(unit.path, root=root)
        if refused:
            return [], refused
        # A second rendering, with origin annotations, runs beside the plain one; it only
        # maps findings to source files, so policies never see the annotations.
        # Confined to `root` (every name checked above), files outside a kustomization's own
        # directory are loaded, as Flux does (see `render_kustomization`).
        unrestricted = root is not None
        with origins.OriginRender(
            unit.path, timeout=limits.kustomize_timeout_seconds, unrestricted=unrestricted
        ) as annotated:
            try:
                data = render_kustomization(
                    unit.path, timeout=limits.kustomize_timeout_seconds, unrestricted=unrestricted
                )
            except InputError as e:
                return [], [InputProblem(Source(unit.path), "input/kustomize", e.message, e.hint)]
            documents, problems = parse_bytes(data, unit.path, limits, rendered_from=unit.path)
            found = annotated.origins()
            if found is not None:
                origins.attach(documents, found, unit.path)
        return documents, problems
    if unit.kind == "chart":
        chart, _, name = unit.path.rpartition(os.sep)
        return [], [
            InputProblem(
                Source(unit.path),
                "input/unrendered",
                f"{chart or '.'} is a Helm chart to Argo CD: an Application whose path it is (with no "
                f"source type set) renders it with `helm template` ({name} is the last of its names "
                "ending in Chart.yaml or a kustomization's, which decides), as Flux's helm-controller "
                "does for a HelmRelease whose chart is this path, but trustgate does not render Helm "
                "charts, so what either applies would not be checked",
                f"render the chart (`helm template`, with the values the HelmRelease or Application "
                f"gives) and check the output, rename {name} if the directory is no chart, or exclude "
                "it (--exclude, or manifests.exclude in trustgate.yaml) where nothing renders this "
                "directory as a chart",
            )
        ]
    if unit.kind == "stdin":
        data = unit.data or b""
    elif unit.path.endswith(RENDERED_UNREAD):
        return [], [
            InputProblem(
                Source(unit.path),
                "input/unrendered",
                "this is Jsonnet: Argo CD's directory source renders it into objects, but trustgate does "
                "not read Jsonnet, so what it makes would not be checked",
                "render it (`jsonnet FILE`, with the Application's external variables and top-level "
                "arguments) and check the output, commit the rendered YAML instead, or exclude it "
                "(--exclude '*.jsonnet', or manifests.exclude in trustgate.yaml) where no reconciler "
                "renders it",
            )
        ]
    else:
        try:
            data, size = read_file(unit.path, limits.max_file_bytes)
        except OSError as e:
            return [], [
                InputProblem(Source(unit.path), "input/unreadable", f"cannot read: {e.strerror or e}")
            ]
        if size > limits.max_file_bytes:
            return [], [
                InputProblem(
                    Source(unit.path),
                    "input/too-large",
                    f"file is {size:,} bytes; the limit is {limits.max_file_bytes:,}",
                    "split the file or raise limits.maxFileBytes in trustgate.yaml",
                )
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
    return parse_bytes(data, unit.path, limits, any_data=any_data)


_READ_MAX = 1 << 30  # bytes one read asks for at most (Linux gives at most ~2 GiB per read)
_READ_ON = 1 << 20  # bytes one read asks for beyond the size `fstat` gave (a file that grew, a FIFO)


def read_file(path: str | os.PathLike[str], limit: int) -> tuple[bytes, int]:
    """(The bytes of a file, its size when opened); only the first `limit` + 1 bytes when it holds
    more (the caller reports it).

    `open`, `fstat` and one `read` on the descriptor for most files: 6.5 us where a
    buffered `open(...).read(limit + 1)` took 34 (it allocated `limit` bytes each
    time). Reads that return less than asked (a network file system) are read on
    to the size; a file that grew since `fstat`, or one `fstat` does not size (a
    FIFO), is read on to its end or the limit.

    Raises:
        OSError: the file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            return b"", size
        chunks: list[bytes] = []
        read = 0
        while True:
            want = min(size - read + 1, _READ_MAX) if read < size else min(limit + 1 - read, _READ_ON)
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            read += len(chunk)
            if read > limit or (read == size and len(chunk) < want):  # over the limit, or the end
                break
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), size
    finally:
        os.close(fd)


def parse_bytes(
    data: bytes,
    name: str,
    limits: Limits,
    *,
    rendered_from: str | None = None,
    any_data: bool = False,
) -> tuple[list[Document], list[InputProblem]]:
    """Parse a stream of manifests into documents, reporting every bad one.

    With `any_data`, a mapping that is neither a Kubernetes object nor looks like
    one (no apiVersion, kind or metadata) is a document with `kubernetes=False`,
    and a `.toml` file is parsed as TOML (one document).
    """
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
    if any_data and name.endswith(".toml"):
        import tomllib  # here: TOML is rare, and a small check's start-up counts

        try:
            table = tomllib.loads(data.decode("utf-8"))
        except (tomllib.TOMLDecodeError, RecursionError) as e:
            line = getattr(e, "lineno", None) or 1
            message = (
                str(e).split(" (at line", 1)[0]
                if isinstance(e, tomllib.TOMLDecodeError)
                else "nested too deeply"
            )
            return [], [
                InputProblem(
                    Source(name, line), "input/invalid-toml", f"invalid TOML: {message}", "fix the TOML"
                )
            ]
        _add(table, Source(name, 1, 0, rendered_from), None, documents, problems, any_data)
        return documents, problems
    if name.endswith(".json") and data.lstrip()[:1] in (b"{", b"["):
        try:
            value = _json_loads(data)
        except (json.JSONDecodeError, RecursionError):
            pass  # the YAML path below reports the place
        except _NotAJsonNumber as e:
            # The first such number outside strings (an annotation may say "NaN").
            tokens = re.finditer(rb'"(?:\\.|[^"\\])*"|(' + e.pattern.pattern + rb")", data)
            match = next((m for m in tokens if m.group(1)), None)
            line = data[: match.start()].count(b"\n") + 1 if match is not None else 1
            return [], [
                InputProblem(
                    Source(name, line, 0, rendered_from),
                    "input/invalid-json",
                    f"invalid JSON at line {line}: {e.text} is not a JSON number (Kubernetes refuses "
                    "NaN, infinities and numbers past float64)",
                    "write a finite number, or the value as a string",
                )
            ]
        except ValueError as e:  # int() refusing more than sys.get_int_max_str_digits() digits
            return [], [
                InputProblem(
                    Source(name, 1, 0, rendered_from),
                    "input/invalid-json",
                    f"invalid JSON: a number is too long to read ({e}); Kubernetes refuses numbers "
                    "past float64",
                    "write it as a string",
                )
            ]
        else:
            source = Source(name, 1, 0, rendered_from)
            bad = lone_surrogate(value) if may_hold_surrogate(data) else None
            if bad is not None:
                return [], [_surrogate_problem(source, "input/invalid-json", bad)]
            _add(value, source, yamlio.LazyTree(data), documents, problems, any_data)
            return _mark_plain(documents, data), problems
    suspect = may_hold_surrogate(data)  # defence in depth: the YAML parser refuses them today
    # A merge key may override a key written before it, which readers take otherwise (kustomize's
    # output holds no merge key: it read them already).
    merges = rendered_from is None and _may_merge(data)
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
        bad = lone_surrogate(item.value) if suspect else None
        if bad is not None:
            problems.append(_surrogate_problem(source, "input/invalid-yaml", bad))
            continue
        # No reconciler applies a document that is not a Kubernetes object (kubectl and kustomize
        # refuse one without apiVersion and kind, in either reading): only a policy of the user's
        # judges it, and the gate refuses it then (`Document.unsure`).
        data_only = any_data and (item.retyped is not None or merges) and _is_data(item.value)
        unsure = None
        if item.retyped is not None and rendered_from is None:
            unsure = _retyped_problem(Source(name, item.retyped[0], item.index), item.retyped[1], data_only)
        elif merges and (override := yamlio.merge_override(item.node)) is not None:
            unsure = _merge_problem(Source(name, override.line, item.index), override, data_only)
        if unsure is not None and not data_only:
            problems.append(unsure)
            continue
        before = len(documents)
        _add(item.value, source, item.node, documents, problems, any_data)
        if unsure is not None:
            for document in documents[before:]:
                document.unsure = unsure
    return _mark_plain(documents, data), problems


# What a `<<` merge key looks like in the text (`<<: x`, `{<<: x}`, `? <<` before its `:` line or a
# comment, `! "<<":`); a shell here-document in a ConfigMap (`cat <<EOF`) is none. A merge key
# written otherwise (`!!merge "\x3c<"`, a `%TAG` handle) has a tag where a key starts. Only a hit
# walks the documents.
_MERGE_KEY = re.compile(rb"<<['\"]?[ \t]*(?::|#|\r?$)", re.MULTILINE)
_KEY_TAG = re.compile(rb"(?:^|[?,\[{])[ \t]*(?:-[ \t]+)*(?:&[^ \t\r\n]+[ \t]+)?!", re.MULTILINE)


def _may_merge(data: bytes) -> bool:
    """Whether the text may hold a `<<` merge key (false positives cost a walk of its documents)."""
    if b"<<" in data and _MERGE_KEY.search(data) is not None:
        return True
    return b"!" in data and _KEY_TAG.search(data) is not None


def _is_data(value: Any) -> bool:
    """Whether `_add` takes `value` for a document that is not a Kubernetes object, in any reading:
    a mapping without apiVersion, kind, metadata or items (a merge sets no key the other reading
    lacks, so the keys are the same in both)."""
    return isinstance(value, Mapping) and not any(k in value for k in (*_MANIFEST_KEYS, "items"))


# Why a reading the YAML readers part on is not judged, in a document no reconciler applies.
_DATA_READERS = (
    "YAML readers part on it (go-yaml v2, which trustgate reads as, one way; go-yaml v3, PyYAML and "
    "others mostly the other), so your policies might judge what the program reading this file "
    "does not see"
)


def _retyped_problem(source: Source, text: str, data_only: bool = False) -> InputProblem:
    why = (
        _DATA_READERS
        if data_only
        else "kubectl and Argo CD's directory source (go-yaml v2) apply it as a string, kustomize (and so "
        "Flux, which builds every path with it) as the boolean, number, null or timestamp it would be "
        "untagged, so what is applied depends on who applies it"
    )
    return InputProblem(
        source,
        "input/yaml-non-specific-tag",
        f"`! {text}` at line {source.line} carries YAML's non-specific tag: {why}",
        "drop the `!` (every reader then types it alike), or quote the value to keep a string",
    )


def _merge_problem(source: Source, override: yamlio.RepeatedKey, data_only: bool = False) -> InputProblem:
    why = (
        _DATA_READERS
        if data_only
        else "kubectl and Argo CD (go-yaml v2) apply the merged value, kustomize (and so Flux, which "
        "builds every path with it) the written one, so what is applied depends on who applies it"
    )
    return InputProblem(
        source,
        "input/yaml-merge-override",
        f"key {override.key!r} is written at line {override.earlier_line} and set again by the `<<` merge "
        f"at line {override.line}: {why}",
        "set the key once: write it after the `<<` (every reader keeps a key written after the merge), "
        "or drop it from the merged map or from this mapping",
    )


def _mark_plain(documents: list[Document], data: bytes) -> list[Document]:
    """Mark the documents of a text without `$` as holding no variable reference
    (`Document.may_hold_variable`): one byte search a file spares a walk of every object. A `\\`
    escape (`"\\x24{"`) or a `!!binary` scalar can make a `$` the text does not show."""
    if b"$" not in data and b"\\" not in data and b"binary" not in data:
        for document in documents:
            document.may_hold_variable = False
    return documents


class _NotAJsonNumber(Exception):
    """`NaN`, `Infinity` or a number past float64 in a JSON text: Python reads them, Go does not."""

    def __init__(self, text: str, pattern: re.Pattern[bytes]) -> None:
        super().__init__(text)
        self.text = text
        self.pattern = pattern  # finds the first such number, for the line


_JSON_CONSTANT = re.compile(rb"-?(?:NaN|Infinity)")
# An exponent of three digits or more: the only way a JSON number overflows float64 to Python's inf
# (a longer mantissa needs more than 300 digits: checked the same way, only when there is one).
_JSON_HUGE = re.compile(rb"[0-9](?:[eE]\+?0*[1-9][0-9]{2}|[0-9.]{308})")


def _refuse_constant(text: str) -> Any:
    raise _NotAJsonNumber(text, _JSON_CONSTANT)


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise _NotAJsonNumber(text, re.compile(re.escape(text.encode())))
    return value


def _json_loads(data: bytes) -> Any:
    """`json.loads`, refusing what Go's encoding/json (kubectl) refuses and Python reads.

    Python reads `NaN`, `Infinity` and `1e400` (as inf); kubectl fails on them.
    Floats are checked one by one only in a text that may hold a huge one (`_JSON_HUGE`).

    Raises:
        _NotAJsonNumber: such a number.
        json.JSONDecodeError: not JSON.
    """
    if _JSON_HUGE.search(data) is None:
        return json.loads(data, parse_constant=_refuse_constant)
    return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite)


# A `\uD800`-`\uDFFF` escape (JSON; YAML also has `\U0000D800`): the only way text that is valid
# UTF-8 decodes to a lone surrogate. Searching the bytes costs microseconds; the walk
# (`lone_surrogate`) runs only when one is there.
_SURROGATE_ESCAPE = re.compile(rb"\\(?:u|U0000)[dD][89a-fA-F]")
_SURROGATE_UTF8 = re.compile(rb"\xed[\xa0-\xbf]")  # U+D800-DFFF as `surrogatepass` writes them


def may_hold_surrogate(data: bytes | bytearray) -> bool:
    """Whether JSON or YAML text may decode to a lone surrogate: it has a surrogate escape.

    False is certain. True may be a surrogate pair or an escaped backslash: `lone_surrogate` decides.
    """
    return _SURROGATE_ESCAPE.search(data) is not None


def lone_surrogate(value: Any) -> JsonPath | None:
    """Where a string (a key or a value) in `value` holds a lone surrogate, or None.

    JSON's `"\\ud800"` decodes to one in Python. Such a string is not Unicode text: it cannot
    be encoded as UTF-8, and regorus' `set_input` crashes the process on it (SIGSEGV). A bad
    key ends the path.

    Cheap enough for every evaluation (about 20 us for a 12 KB review): `marshal` writes
    strings as UTF-8 with `surrogatepass`, so a lone surrogate shows as the bytes ED A0-BF,
    which valid UTF-8 never holds. Only a hit there (or a value `marshal` refuses: another
    type, too deep) walks the value.
    """
    try:
        packed = marshal.dumps(value)
    except ValueError:  # an unmarshallable type, or nested too deeply: walk instead
        pass
    else:
        if _SURROGATE_UTF8.search(packed) is None:
            return None
    found = _find_unevaluable(value, integers=False)
    return found[1] if found is not None else None


# regorus keeps an integer exact from -2^63 to 2^64-1 (an i64 or a u64) and turns any other into a
# float64, silently (`input.n > 18446744073709551616` is false for ...617; OPA compares exactly).
ENGINE_INT_MIN = -(2**63)
ENGINE_INT_MAX = 2**64 - 1
# marshal writes an int beyond 32 bits as TYPE_LONG (`l`, `\xec` with FLAG_REF), then its size in
# 15-bit digits as an int32 (negative for a negative number), then the digits. Outside the range
# above means at least 5 digits (4 hold 60 bits). These find every such header whose size is below
# 2^24 digits (250 million bits; `int()` refuses to read a tenth of that from text), overlapping ones
# included (a lookahead; a literal first byte keeps the scan at ~0.5 us a KB where a class costs 4).
# Text or structure that merely looks like one (a string ending in "l" before a small int) is told
# apart by reading the number there (`_long_at`).
_LONG_HEADERS = (
    re.compile(rb"l(?=[\x00-\xff]{3}[\x00\xff])"),
    re.compile(rb"\xec(?=[\x00-\xff]{3}[\x00\xff])"),
)


def unevaluable(value: Any) -> tuple[str, JsonPath] | None:
    """What in `value` the Rego engine cannot take as it is: ("surrogate" | "integer", its path), or None.

    A string (key or value) holding a lone surrogate (see `lone_surrogate`: regorus crashes
    on it), or an integer outside `ENGINE_INT_MIN`..`ENGINE_INT_MAX` (regorus rounds it to a
    float). orjson refuses exactly those two (and keys that are not strings, types it does not
    know, deep nesting): where it encodes the value, neither is there (~2.5 us for a 1.5 KB
    document). Otherwise one `marshal` and three scans of its bytes (~12 us) rule both out;
    only a hit walks the value, once, for both.
    """
    try:
        orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one: look closer
        pass
    else:
        return None
    try:
        packed = marshal.dumps(value)
    except ValueError:  # an unmarshallable type, or nested too deeply: walk instead
        return _find_unevaluable(value)
    if _SURROGATE_UTF8.search(packed) is not None or _holds_big_int(packed):
        return _find_unevaluable(value)
    return None


def _holds_big_int(packed: bytes) -> bool:
    """Whether marshal's bytes hold an int outside `ENGINE_INT_MIN`..`ENGINE_INT_MAX`."""
    for pattern in _LONG_HEADERS:
        match = pattern.search(packed)
        while match is not None:
            start = match.start()
            number = _long_at(packed, start)
            if number is not None and not (ENGINE_INT_MIN <= number <= ENGINE_INT_MAX):
                return True
            match = pattern.search(packed, start + 1)
    return False


def _long_at(packed: bytes, start: int) -> int | None:
    """The int marshal wrote at `start`, or None when the bytes there are not one of 5+ digits."""
    size = abs(int.from_bytes(packed[start + 1 : start + 5], "little", signed=True))
    if size < 5 or 2 * size > len(packed) - start - 5:  # in range, or more digits than bytes left
        return None
    try:  # one object is read; the bytes after it are ignored
        number = marshal.loads(memoryview(packed)[start:])
    except (EOFError, ValueError, TypeError):
        return None
    return number if isinstance(number, int) else None


def _find_unevaluable(value: Any, *, integers: bool = True) -> tuple[str, JsonPath] | None:
    """The first lone surrogate, or (with `integers`) integer outside the engine's range, and
    its path; iterative, so any depth is walked."""
    stack: list[tuple[Any, JsonPath]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, Mapping):
            pairs: Any = item.items()
        elif isinstance(item, list | tuple):
            pairs = enumerate(item)
        elif isinstance(item, str):
            if not _utf8(item):
                return "surrogate", path
            continue
        elif integers and isinstance(item, int) and not (ENGINE_INT_MIN <= item <= ENGINE_INT_MAX):
            return "integer", path
        else:
            continue
        for key, child in pairs:
            if isinstance(key, str) and not _utf8(key):
                return "surrogate", (*path, key)
            if integers and isinstance(key, int) and not (ENGINE_INT_MIN <= key <= ENGINE_INT_MAX):
                return "integer", (*path, key)
            if isinstance(child, str):
                if not _utf8(child):
                    return "surrogate", (*path, _path_part(key))
            elif isinstance(child, int):
                if integers and not (ENGINE_INT_MIN <= child <= ENGINE_INT_MAX):
                    return "integer", (*path, _path_part(key))
            elif isinstance(child, Mapping | list | tuple):
                stack.append((child, (*path, _path_part(key))))
    return None


def _utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _path_part(key: Any) -> str | int:
    return key if isinstance(key, str | int) else str(key)


def path_text(path: JsonPath) -> str:
    """`metadata.annotations.a` for messages; a lone surrogate in a key shows as `\\ud800`."""
    text = render_path(path) or "the top level"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _surrogate_problem(source: Source, rule: str, path: JsonPath) -> InputProblem:
    return InputProblem(
        source,
        rule,
        f"the string at {path_text(path)} holds a lone surrogate (a \\ud800-\\udfff escape without "
        "its pair): it is not Unicode text and cannot be evaluated",
        "write the character itself, or both halves of its surrogate pair (e.g. \\ud83d\\ude00)",
    )


def _is_list(value: Mapping[str, Any]) -> bool:
    """Whether kubectl may apply the `items` of `value` instead of `value` itself.

    kubectl (apimachinery's unstructured decoder) reads any object with an `items` list as
    a list, whatever its kind; a plain data document (no apiVersion or kind) counts when an
    item looks like a Kubernetes object. Its items are checked; `value` itself is still
    checked too (`_add`), since other clients (a GitOps controller, the API) read it as the
    object it says it is.
    """
    items = value.get("items")
    if not isinstance(items, list):
        return False
    if any(k in value for k in ("apiVersion", "kind")):
        return True
    return any(isinstance(i, Mapping) and "apiVersion" in i and "kind" in i for i in items)


def _is_kubernetes_list(value: Mapping[str, Any]) -> bool:
    """A real Kubernetes list: `kind: List` or `*List` with an apiVersion (`v1/PodList`)."""
    kind, api_version = value.get("kind"), value.get("apiVersion")
    return (
        isinstance(kind, str) and kind.endswith("List") and isinstance(api_version, str) and bool(api_version)
    )


def _add(
    value: Any,
    source: Source,
    tree: Any,
    documents: list[Document],
    problems: list[InputProblem],
    any_data: bool = False,
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
    sops = value.get("sops")
    if isinstance(sops, Mapping) and "mac" in sops:
        # kustomize-controller decrypts any object carrying `sops.mac` (`isSOPSEncryptedResource`),
        # whatever its kind, and applies the plaintext: the gate judges no ciphertext (`Gate`).
        documents.append(Document(source=source, obj=value, tree=tree, encrypted=True))
        return
    if _is_list(value):
        # kubectl reads any object with an `items` list as a list and applies the items: they are
        # checked as objects of their own.
        for i, item in enumerate(value["items"]):
            item_tree = yamlio.subtree(tree, ("items", i))
            line = yamlio.locate(tree, ("items", i)) or source.line
            before = len(documents)
            _add(
                item,
                Source(source.file, line, source.index, source.rendered_from),
                item_tree,
                documents,
                problems,
                any_data,
            )
            for document in documents[before:]:
                document.list_role = "item"
        if _is_kubernetes_list(value):
            # The list itself is no object to admit, but conftest gives the user's policies the
            # whole document: so does `check` (only where a policy of the user's runs).
            if any_data:
                documents.append(
                    Document(source=source, obj=value, tree=tree, kubernetes=False, list_role="list")
                )
            return
        # Anything else with `items` (a Pod with a stray `items: []`, `{bad: true, items: [...]}`)
        # is also read whole below: what other clients apply, and what conftest evaluates.
    missing = [k for k in ("apiVersion", "kind") if not isinstance(value.get(k), str) or not value.get(k)]
    if missing and any_data and not any(k in value for k in _MANIFEST_KEYS):
        documents.append(Document(source=source, obj=_string_keys(value), tree=tree, kubernetes=False))
        return
    if missing:
        hint = "add apiVersion and kind, or remove the document from the input"
        if source.file.rsplit("/", 1)[-1] == HELM_CHART_FILE:
            hint = (
                "this is a Helm chart: render it with `helm template` first and check the output, "
                "or exclude it (--exclude, or manifests.exclude in trustgate.yaml)"
            )
        problems.append(
            InputProblem(
                source,
                "input/not-a-kubernetes-object",
                f"document is missing {' and '.join(missing)}",
                hint,
            )
        )
        return
    documents.append(Document(source=source, obj=value, tree=tree))


def _string_keys(value: Any) -> Any:
    """Mapping keys as JSON strings, as conftest's YAML-to-JSON parser makes them.

    YAML 1.1 reads a GitHub workflow's `on:` as the boolean true: policies see the
    key `"true"`, as in conftest, and the decision log can store the document.
    TOML's dates and times become their RFC 3339 text.
    """
    if isinstance(value, Mapping):
        return {_key_text(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    if isinstance(value, dt.date | dt.time):  # TOML dates and times: RFC 3339 text, as in JSON
        return value.isoformat()
    return value


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    isoformat = getattr(key, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else str(key)


def _type_name(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


# kubectl (1.27 on) logs a failed command through klog: `E1207 04:57:46.250769 18638 run.go:72]
# "command failed" err=<`, the error's lines indented by a tab, then ` >`. Older ones print `error: ...`.
# A one-line error is quoted on the header line: `... "command failed" err="accumulating resources: ..."`.
_KLOG_HEADER = re.compile(r'^[EWIF]\d{4} [\d:.]+\s+\d+ [^\]]*\] "command failed" err=(.*)$')
# Characters of kustomize's error kept at most. Its errors wrap their cause (`accumulating resources:
# ...: <the reason>`), and a plugin's error quotes its configuration over several lines before the
# reason (`... with config: `<YAML>`: must specify --enable-helm`): a longer one keeps its start and
# its end, where the reason is, and drops the middle.
_KUSTOMIZE_ERROR_CHARS = 1200
_KUSTOMIZE_ERROR_HEAD = 400


def kustomize_error(stderr: str) -> str:
    """The meaningful lines of a failed `kubectl kustomize`'s stderr, joined by "; ": without klog's
    header and closing ` >`, nor a leading `error: `. A long one keeps its start and its end (the
    reason), with ` ... ` for what was dropped between them."""
    lines = []
    for raw in stderr.splitlines():
        line = raw.strip()
        if (header := _KLOG_HEADER.match(line)) is not None:
            line = header.group(1)
            if line.startswith('"'):
                try:
                    line = str(json.loads(line))
                except ValueError:
                    line = line.strip('"')
        if not line or line in ("<", ">"):
            continue
        lines.append(line.removeprefix("error: ").removeprefix("Error: "))
    text = "; ".join(lines)
    if len(text) > _KUSTOMIZE_ERROR_CHARS:
        tail = _KUSTOMIZE_ERROR_CHARS - _KUSTOMIZE_ERROR_HEAD
        text = f"{text[:_KUSTOMIZE_ERROR_HEAD]} ... {text[-tail:]}"
    return text


def _kubectl_dir(directory: str) -> str:
    """`directory` as an argument a person can paste after `kubectl kustomize`: `./-h`, not `-h`."""
    return "./" + directory if directory.startswith("-") else directory


def render_kustomization(directory: str, *, timeout: float, unrestricted: bool = False) -> bytes:
    """Render a kustomization with `kubectl kustomize`.

    kustomize's default load restrictor (LoadRestrictionsRootOnly, also Argo CD's unless
    `kustomize.buildOptions` says otherwise) refuses a *file* outside a kustomization's own
    directory (`resources: [../../common/ns.yaml]`); Flux builds with LoadRestrictionsNone, confined
    to the source's root (fluxcd/pkg `kustomize.SecureBuild`). The restrictor only decides whether a
    build fails, never what a build that succeeds holds, so the looser one judges what Flux applies
    and what Argo CD with the default cannot build (and so does not apply). It is safe only where
    every name kustomize reads is confined first: `presync` (`unrestricted`), whose export holds only
    the commit's files and whose kustomizations may name nothing outside it (`kustomize_refs`, with
    a root). `check` has no such root (the user's directory may name anything on the machine), so
    there a file outside a kustomization's directory stays refused, with a hint.

    Args:
        directory: the kustomization's directory.
        timeout: seconds.
        unrestricted: build with `--load-restrictor LoadRestrictionsNone`.

    Raises:
        InputError: kubectl is missing, times out or fails; the message carries its stderr.
    """
    import shutil  # here: few checks render a kustomization, and a small check's start-up counts
    import subprocess

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise InputError(
            "cannot render the kustomization: kubectl is not installed",
            where=directory,
            hint="install kubectl (it includes `kubectl kustomize`) or render the manifests first",
        )
    try:
        done = subprocess.run(
            [
                kubectl,
                "kustomize",
                *(["--load-restrictor", "LoadRestrictionsNone"] if unrestricted else []),
                "--",  # a directory named `-h` is a directory, not an option
                directory,
            ],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise InputError(f"kubectl kustomize did not finish within {timeout:g} s", where=directory) from e
    if done.returncode != 0:
        message = kustomize_error(done.stderr.decode("utf-8", "replace"))
        hint = "run `kubectl kustomize " + _kubectl_dir(directory) + "` to see the whole error"
        if "--enable-helm" in message:  # helmCharts: kustomize inflates charts only when told to
            hint = (
                "trustgate renders kustomizations without Helm (`--enable-helm` runs the helm binary "
                "and may fetch charts): render the chart first (`helm template`, or `kubectl kustomize "
                "--enable-helm " + _kubectl_dir(directory) + "`) and check the output"
            )
        elif "is not in or below" in message:  # the load restrictor refused a file
            hint = (
                "kustomize's default load restrictor (Argo CD's too) refuses a file outside the "
                "kustomization's directory; give that file's directory a kustomization.yaml listing it "
                "and name the directory instead (`trustgate presync` renders such a file as Flux does, "
                "from the repository's files only)"
            )
        raise InputError(
            "kubectl kustomize failed: " + (message or f"exit {done.returncode}"),
            where=directory,
            hint=hint,
        )
    return done.stdout
