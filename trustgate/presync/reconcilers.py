"""What each reconciler applies of a tree: the files Flux and Argo CD read, for finding deletions.

Owns: for a document the gate read from a tree, which of the supported
reconcilers would *not* apply it, and why (`Views.unapplied`): Flux's
source-controller leaves ignored names and links out of its artifact, and
Flux's generated kustomization takes only `.yaml`/`.yml`; Argo CD's directory
source reads no subdirectory unless `directory.recurse` is set, and no file
holding `+argocd:skip-file-rendering`. Which entry of `presync.paths` a file
belongs to (the deepest holding it, `Views.base`), and which kustomizations
a reconciler does not render but applies the raw files of (`Views.unrendered`:
one Flux cannot see; one below a recursing Argo CD directory source). Also
Flux's ignore rules themselves (`.sourceignore` files, source-controller's
exclusions: ExcludeVCS always, the defaults while no pattern is written),
read with go-git's gitignore semantics. Pure: the runner lists the tree and
reads the `.sourceignore` files and the marked files. Leaves out: what the gate reads
(the union of what the reconcilers apply, which content checks judge: the
loader and the runner) and what a removal or a source change is
(`changes.removals`, `changes.sources`, which compare these views of two trees).

Not modelled, because the cluster holds it and the repository does not: a
GitRepository's `spec.ignore` (which also switches source-controller's
defaults off) and an Application's `directory.include`/`exclude`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from trustgate.model import KUSTOMIZATION_FILES, Source
from trustgate.presync.git import TreeEntry, repo_path, within

FLUX = "flux"
ARGOCD = "argocd"
RECONCILERS = (FLUX, ARGOCD)
ANY = "any"  # `presync.reconciler`: either may apply the paths; a deletion by either counts
NAMES = {FLUX: "Flux", ARGOCD: "Argo CD"}
SOURCEIGNORE = ".sourceignore"

# 1. source-controller's exclusions (fluxcd/pkg sourceignore/sourceignore.go). `storage.SourceIgnoreFilter`
# always applies ExcludeVCS, below every other pattern; while no `.sourceignore` in the repository (and no
# `spec.ignore`) holds a pattern, `NewDefaultMatcher` adds ExcludeExt, ExcludeCI and ExcludeExtra. A
# pattern without `/` matches a name at any depth, a directory's too (`deploy/old.zip/pvc.yaml`).
# `**/.golangci.yaml` is not in the fluxcd/pkg version read; it is listed too, since taking a name for
# ignored can only ask for an approval more when a protected object moves there.
FLUX_VCS_IGNORE = (".git/", ".gitignore", ".gitmodules", ".gitattributes")
FLUX_DEFAULT_IGNORE = (
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
    "**/.golangci.yaml",
)
# 2. The kustomization kustomize-controller generates for a path without one takes these only
# (fluxcd/pkg kustomize/kustomize_generator.go: `filepath.Ext` is ".yaml" or ".yml", case and all).
FLUX_SUFFIXES = (".yaml", ".yml")
# Argo CD's directory source leaves out a file whose bytes hold this (argo-cd reposerver/repository
# repository.go, `skipFileRenderingMarker`, read in `getPotentiallyValidManifestFile`); its kustomize
# source does not look for it.
ARGOCD_SKIP_MARKER = b"+argocd:skip-file-rendering"
# bufio.Scanner (fluxcd/pkg `ReadPatterns`) stops at a line longer than its 64 KiB buffer, and the
# rest of the file is not read.
_SCANNER_MAX = 65_536  # bytes


@dataclass(frozen=True, slots=True)
class IgnorePattern:
    """One line of a `.sourceignore` (or a default), as go-git's gitignore package parses it."""

    text: str  # as written
    origin: str  # the `.sourceignore` file it is read from; "" for a default
    domain: tuple[str, ...]  # the directory of that file, as path parts
    parts: tuple[str, ...]
    inclusion: bool  # `!pattern`
    dir_only: bool  # `pattern/`
    is_glob: bool  # holds a `/`: matched part by part from the domain

    @classmethod
    def parse(cls, line: str, domain: tuple[str, ...] = (), origin: str = "") -> IgnorePattern:
        text, pattern = line, line
        inclusion = pattern.startswith("!")
        if inclusion:
            pattern = pattern[1:]
        if not pattern.endswith("\\ "):
            pattern = pattern.rstrip(" ")
        dir_only = pattern.endswith("/")
        if dir_only:
            pattern = pattern[:-1]
        return cls(text, origin, domain, tuple(pattern.split("/")), inclusion, dir_only, "/" in pattern)

    def match(self, path: Sequence[str], is_dir: bool) -> bool | None:
        """True: `path` (parts, from the repository's root) is excluded; False: included again
        (`!`); None: this pattern does not speak of it. go-git's `pattern.Match`."""
        if len(path) <= len(self.domain) or tuple(path[: len(self.domain)]) != self.domain:
            return None
        rest = list(path[len(self.domain) :])
        matched = self._glob(rest, is_dir) if self.is_glob else self._name(rest, is_dir)
        return (not self.inclusion) if matched else None

    def _name(self, path: list[str], is_dir: bool) -> bool:
        for i, name in enumerate(path):
            if not _go_match(self.parts[0], name):
                continue
            return not (self.dir_only and not is_dir and i == len(path) - 1)
        return False

    def _glob(self, path: list[str], is_dir: bool) -> bool:
        matched = traverse = False
        for i, part in enumerate(self.parts):
            if part == "":
                traverse = False
                continue
            if part == "**":
                if i == len(self.parts) - 1:
                    break
                traverse = True
                continue
            if "**" in part or not path:
                return False
            if traverse:
                traverse = False
                while path:
                    name = path.pop(0)
                    if _go_match(part, name):
                        matched = True
                        break
                    if not path:
                        matched = False
            else:
                if not _go_match(part, path[0]):
                    return False
                matched = True
                path = path[1:]
        return not (matched and self.dir_only and not is_dir and not path) and matched


_GO_PATTERNS: dict[str, re.Pattern[str] | None] = {}


def _go_match(pattern: str, name: str) -> bool:
    """Go's `filepath.Match` for one path part; a malformed pattern matches nothing (ErrBadPattern)."""
    if pattern not in _GO_PATTERNS:
        if len(_GO_PATTERNS) > 4096:
            _GO_PATTERNS.clear()
        _GO_PATTERNS[pattern] = _go_regex(pattern)
    compiled = _GO_PATTERNS[pattern]
    return compiled is not None and compiled.fullmatch(name) is not None


def _go_regex(pattern: str) -> re.Pattern[str] | None:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i == len(pattern):
                return None
            out.append(re.escape(pattern[i]))
        elif c == "[":
            i += 1
            negate = i < len(pattern) and pattern[i] == "^"
            if negate:
                i += 1
            ranges: list[str] = []
            read = 0  # ranges read, a reversed one (which Go accepts and which matches nothing) too
            while True:
                if i == len(pattern):
                    return None
                if pattern[i] == "]" and read:
                    break
                low, i = _class_char(pattern, i)
                if low is None:
                    return None
                high = low
                if i < len(pattern) and pattern[i] == "-":
                    upper, i = _class_char(pattern, i + 1)
                    if upper is None:
                        return None
                    high = upper
                read += 1
                if low <= high:
                    ranges.append(re.escape(low) + ("-" + re.escape(high) if high != low else ""))
            if ranges:
                out.append("[" + ("^" if negate else "") + "".join(ranges) + "]")
            else:
                out.append("." if negate else "(?!)")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _class_char(pattern: str, i: int) -> tuple[str | None, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        return None, i
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            return None, i
    return pattern[i], i + 1


def read_patterns(data: bytes, directory: str) -> list[IgnorePattern]:
    """The patterns of the `.sourceignore` in `directory` ("" for the root), as fluxcd/pkg's
    `ReadPatterns` reads them: a line starting with `#`, or blank, is none."""
    domain = tuple(directory.split("/")) if directory else ()
    origin = posixpath.join(directory, SOURCEIGNORE)
    out = []
    for raw in data.split(b"\n"):
        if len(raw) >= _SCANNER_MAX:
            break
        line = raw.removesuffix(b"\r").decode("utf-8", "surrogateescape")
        if not line.startswith("#") and line.strip():
            out.append(IgnorePattern.parse(line, domain, origin))
    return out


@dataclass(frozen=True, slots=True)
class Ignore:
    """What source-controller leaves out of the artifact of one commit (besides links)."""

    patterns: tuple[IgnorePattern, ...]

    @classmethod
    def of(cls, files: Mapping[str, bytes]) -> Ignore:
        """From the `.sourceignore` files of the repository (path -> content): their patterns above
        ExcludeVCS, or, when none holds one, every default. fluxcd/pkg `LoadIgnorePatterns` reads the
        root's file, then each directory's, depth first and by name: a deeper file's pattern wins."""
        found: list[IgnorePattern] = []
        for path in sorted(files, key=lambda p: p.split("/")[:-1]):
            found.extend(read_patterns(files[path], posixpath.dirname(path)))
        defaults = FLUX_VCS_IGNORE if found else FLUX_VCS_IGNORE + FLUX_DEFAULT_IGNORE
        return cls((*(IgnorePattern.parse(p) for p in defaults), *found))

    def excludes(self, path: str) -> IgnorePattern | None:
        """The pattern that leaves the file `path` out, or None. go-git's `Matcher.Match`: the last
        pattern that speaks of it decides. source-controller's walk does not skip an excluded
        directory, so each file is matched by its own path (a directory pattern matches it
        through its parts)."""
        parts = path.split("/")
        for pattern in reversed(self.patterns):
            verdict = pattern.match(parts, False)
            if verdict is not None:
                return pattern if verdict else None
        return None


def chosen(reconciler: str) -> tuple[str, ...]:
    """The reconcilers whose reading counts under `presync.reconciler`."""
    return RECONCILERS if reconciler == ANY else (reconciler,)


@dataclass(frozen=True, slots=True)
class Views:
    """What each reconciler applies of one tree's documents (see `views`)."""

    reconciler: str  # presync.reconciler
    recurse: bool  # presync.argocd.recurse
    paths: tuple[str, ...]  # presync.paths, normalised ("" the whole tree)
    links: frozenset[str]  # the tree's symbolic links
    kustomizations: Mapping[str, str]  # directory -> its kustomization file
    ignore: Ignore
    marked: frozenset[str] = frozenset()  # files holding ARGOCD_SKIP_MARKER (a link: its target does)
    # every kustomization file (each name kustomize recognises, not only the one it takes)
    kustomization_files: frozenset[str] = frozenset()

    def base(self, path: str) -> str | None:
        """The entry of `presync.paths` whose reconciler source applies `path`: the deepest one that
        holds it, whatever the order of the list (None: none does). An Argo CD Application reads a
        file directly in its path, or below it with `directory.recurse`: if any entry reads it, the
        deepest does; a removal from it is a removal from the Application that read it."""
        where = repo_path(path)
        holding = [p for p in self.paths if within(where, p)]
        return max(holding, key=lambda p: (p.count("/") + bool(p), len(p))) if holding else None

    def unapplied(self, source: Source) -> dict[str, str]:
        """The reconcilers that would not apply the document read from `source`, each with why
        (a sentence naming the file). Every reconciler `presync.reconciler` leaves out is one."""
        out = {
            r: f"presync.reconciler is {self.reconciler}"
            for r in RECONCILERS
            if r not in chosen(self.reconciler)
        }
        rendered = source.rendered_from
        where = repo_path(rendered if rendered is not None else source.file)
        base = self.base(where)
        if base is None:
            return out
        if rendered is None:
            if where == base:  # a file named in presync.paths: the operator points the reconciler at it
                return out
            found = self._file(where, base)
        else:
            found = self._kustomization(where, base)
        if ARGOCD in found and self.reconciler == ANY:
            found[ARGOCD] += "; if no Argo CD Application applies these paths, set presync.reconciler: flux"
        out.update({r: printable(why) for r, why in found.items() if r in chosen(self.reconciler)})
        return out

    def unrendered(self) -> dict[str, dict[str, str]]:
        """The directories under the paths holding a kustomization that a chosen reconciler does not
        render but reads the raw files of, reconciler -> directory -> why. Those raw files are applied,
        so the gate judges them too (the runner reads them). Flux: a kustomization its artifact lacks
        (a link, a name source-controller leaves out), for which kustomize-controller's generated
        kustomization (fluxcd/pkg kustomize/kustomize_generator.go) lists the directory's
        `.yaml`/`.yml` files. Argo CD, with `directory.recurse`: a kustomization below its path,
        whose files its directory source reads as they are (it renders only a kustomization at its
        path: then the loader renders that one, and reads nothing below it as a unit of its own)."""
        out: dict[str, dict[str, str]] = {FLUX: {}, ARGOCD: {}}
        for directory, file in self.kustomizations.items():
            base = self.base(directory)
            if base is None:
                continue
            if FLUX in chosen(self.reconciler) and self.flux_kustomization(directory) is None:
                if file in self.links:
                    out[FLUX][directory] = f"{file} is a symbolic link, which source-controller leaves out"
                elif (pattern := self.ignore.excludes(file)) is not None:
                    out[FLUX][directory] = printable(f"{file} is not read by Flux: {_ignored(pattern)}")
            if ARGOCD in chosen(self.reconciler) and self.recurse and directory != base:
                out[ARGOCD][directory] = (
                    f"Argo CD's directory source for {base or '.'} reads the files of {directory} as they are"
                )
        return {r: found for r, found in out.items() if found}

    def flux_kustomization(self, directory: str) -> str | None:
        """The kustomization file kustomize-controller finds in `directory` (under the paths): the
        first name kustomize recognises that source-controller's artifact holds, or None (it then
        generates one). Another than `kustomizations` names where that one is a link or ignored."""
        for name in KUSTOMIZATION_FILES:
            file = posixpath.join(directory, name) if directory else name
            if file in self.kustomization_files and self.flux_reads(file):
                return file
        return None

    def flux_reads(self, path: str) -> bool:
        """Whether source-controller's artifact holds the file `path` (not a link, not ignored)."""
        return path not in self.links and self.ignore.excludes(path) is None

    def _file(self, file: str, base: str) -> dict[str, str]:
        out = {}
        if file in self.links:
            out[FLUX] = (
                f"{file} is not applied by Flux: it is a symbolic link, and source-controller's "
                "artifact holds regular files only"
            )
        elif (pattern := self.ignore.excludes(file)) is not None:
            out[FLUX] = f"{file} is not applied by Flux: {_ignored(pattern)}"
        elif not file.endswith(FLUX_SUFFIXES):
            out[FLUX] = (
                f"{file} is not applied by Flux: the kustomization it generates for {base or '.'} takes "
                ".yaml and .yml files only"
            )
        if "/" in file[len(base) + 1 if base else 0 :] and not self.recurse:
            out[ARGOCD] = (
                f"{file} is not applied by Argo CD: its directory source reads only the files directly "
                f"in {base or '.'}, unless the Application sets directory.recurse (then set "
                "presync.argocd.recurse)"
            )
        elif file in self.marked:
            out[ARGOCD] = (
                f"{file} is not applied by Argo CD: it holds {ARGOCD_SKIP_MARKER.decode()}, and its "
                "directory source leaves such a file out"
            )
        return out

    def _kustomization(self, directory: str, base: str) -> dict[str, str]:
        out = {}
        file = self.kustomizations.get(directory, "")  # the loader rendered it: it has one
        if file in self.links:
            out[FLUX] = (
                f"{directory or '.'} is not rendered by Flux: its kustomization file is a symbolic link, "
                "and source-controller's artifact holds regular files only"
            )
        elif file and (pattern := self.ignore.excludes(file)) is not None:
            out[FLUX] = f"{file} is not read by Flux: {_ignored(pattern)}"
        if directory != base and not self.recurse:
            out[ARGOCD] = (
                f"{directory} is not applied by Argo CD: its directory source for {base or '.'} renders no "
                "kustomization below it, and reads no subdirectory unless the Application sets "
                "directory.recurse (then set presync.argocd.recurse)"
            )
        elif directory != base:
            out[ARGOCD] = (
                f"{directory} is not rendered by Argo CD: its directory source for {base or '.'} renders no "
                "kustomization below it, and reads the files there as they are (directory.recurse)"
            )
        return out


def printable(text: str) -> str:
    """`text` with the bytes that are not UTF-8 (read with surrogateescape: a file name, a
    `.sourceignore` pattern) written as backslash escapes, so that a message holding them can be
    printed and recorded."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _ignored(pattern: IgnorePattern) -> str:
    if pattern.origin:
        return f"{pattern.origin} leaves it out of source-controller's artifact ({pattern.text})"
    if pattern.text in FLUX_VCS_IGNORE:
        return f"source-controller leaves {pattern.text} out of its artifact (an exclusion always in force)"
    return (
        f"source-controller leaves {pattern.text} out of its artifact (a default exclusion, in force while "
        f"no {SOURCEIGNORE} holds a pattern)"
    )


def views(
    *,
    reconciler: str,
    recurse: bool,
    paths: Sequence[str],
    entries: Iterable[TreeEntry],
    ignore_files: Mapping[str, bytes],
    marked: Iterable[str] = (),
) -> Views:
    """The views of one tree.

    Args:
        reconciler: `presync.reconciler` (`flux`, `argocd` or `any`).
        recurse: `presync.argocd.recurse`.
        paths: `presync.paths`.
        entries: the tree's files under the paths (`git ls-tree`: links have mode 120000).
        ignore_files: every `.sourceignore` of the repository, path -> content (links resolved).
        marked: the files whose bytes (a link's: its target's) hold `ARGOCD_SKIP_MARKER`.
    """
    entries = list(entries)
    kustomizations: dict[str, str] = {}
    for name in KUSTOMIZATION_FILES:  # kustomize's order
        for entry in entries:
            directory, _, base = entry.path.rpartition("/")
            if base == name:
                kustomizations.setdefault(directory, entry.path)
    return Views(
        reconciler=reconciler,
        recurse=recurse,
        paths=tuple(repo_path(p) for p in paths),
        links=frozenset(e.path for e in entries if e.mode == "120000"),
        kustomizations=kustomizations,
        kustomization_files=frozenset(
            e.path for e in entries if e.path.rpartition("/")[2] in KUSTOMIZATION_FILES
        ),
        ignore=Ignore.of(ignore_files),
        marked=frozenset(marked),
    )
