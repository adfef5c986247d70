"""What a kustomization would read, checked before kustomize runs: local files only.

Owns: walking a kustomization and the kustomizations it includes (directories named by
`resources`, `bases`, `components`, `generators`, `transformers`, `validators`), and every
field of them that names something kustomize loads (`crds`, `configurations`, patch files,
generator files and env files, replacement files, Helm charts, the OpenAPI schema); refusing an
entry that is not a local file or directory (an http(s) URL, a git repository such as
`github.com/org/repo//base?ref=v1`, a Helm chart repository), and, given a root, one that
leads outside it. kustomize fetches what is not local when it renders: what was judged would
then be what the URL served at that moment, not what the commit holds, and the host that renders
would fetch addresses of the committer's choosing. Leaves out: rendering (`loader`), and, without
a root (`check`), a file outside a kustomization's own directory, which kustomize's default load
restrictor refuses (with a root, `presync` renders without that restrictor: see
`loader.render_kustomization`).

Kustomization files (and the plugin configurations they name) are read as kustomize reads them
(`types.Kustomization.Unmarshal`: sigs.k8s.io/yaml's YAML-to-JSON, so go-yaml v2's scalars, merge
keys and JSON keys, then Go's JSON decoder): `2024-01-01` and `1:30` are the text written, not a
date or a number, so an entry spelled like one is still the path kustomize reads. An entry that is
not text where kustomize wants a path (a number, a boolean, null) is refused: kustomize fails on it,
and trustgate does not guess what another reader would make of it. `reads` says what a rendering
reads, for the loader's directory walk (what a kustomization renders is not judged again as a
loose file).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from trustgate import yamlio
from trustgate.model import KUSTOMIZATION_FILES, InputProblem, Source

_MAX_NODES = 1_000_000  # YAML nodes a kustomization file may expand to through aliases
_MAX_BYTES = 4 * 1024 * 1024  # bytes; a kustomization file larger than this is left to kustomize
_MAX_KUSTOMIZATIONS = 1_000  # kustomizations one render may include; more is a loop or an attack
# Hosts that kustomize (`github.com/`, any version) or the go-getter of kustomize before v4 (GitHub,
# GitLab, Bitbucket, S3, GCS detectors) takes for a repository when an entry starts with them.
_REMOTE_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "amazonaws.com", "googleapis.com")
# A `?ref=` style query: what selects a repository's revision (`NewRepoSpecFromURL` cuts it first).
_QUERY = re.compile(r"\?(?:.*&)?(?:ref|version|submodules|timeout)=", re.IGNORECASE)


def remote(value: str) -> str:
    """Why kustomize may take `value` for a remote, before any local file of that name; "" if it
    cannot. kustomize decides remote first: `Load` fetches any entry that `url.Parse` gives an http or
    https scheme, and `New` (a base, a component, a directory of resources or plugins) clones any
    entry that `NewRepoSpecFromURL` parses (a scheme `ssh://`, `https://`, `http://`, `file://`,
    after an optional `git::`; an scp-like `user@host:path`; `github.com/` or `github.com:`), so a
    committed file or directory spelled like one does not make it local.

    Refused more widely than the newest kustomize parses, since which version renders is not known
    here (older ones also took `gh:`, `_git/` anywhere, and go-getter's hosts): any colon (every
    scheme and scp-like form has one; a local name seldom does, and where it does it is renamed at
    little cost, while a rule that tells a scheme from a file name would have to follow every
    version's parser), an `@` in the first segment (`git@host/org/repo`: kustomize takes a `git@`
    prefix for a host, colon or not), `//` (go-getter's repository/subdirectory marker), `_git/`, a
    `?ref=`-style query, and a first segment naming a repository host.
    """
    text = value.strip()
    if ":" in text:
        return "it holds a colon, as every URL, scheme and scp-like git address does"
    if "@" in text.split("/", 1)[0]:
        return "it starts with `user@host`, as a git address such as `git@host/org/repo` does"
    first = text.split("/", 1)[0].lower()
    if "/" in text and any(first == host or first.endswith("." + host) for host in _REMOTE_HOSTS):
        return f"it starts with the repository host {first}"
    if "//" in text:
        return "it holds `//`, which separates a repository from a directory in it"
    if "_git/" in text:
        return "it holds `_git/`, which marks a repository (Azure DevOps)"
    if _QUERY.search(text):
        return "it holds a `?ref=`-style query, which selects a repository's revision"
    return ""


# Fields holding lists of kustomizations or files (a directory is a kustomization to walk).
_INCLUDES = ("resources", "bases", "components")
# Lists of plugin configurations: a path (a file, or a kustomization directory) or inline YAML.
_PLUGINS = ("generators", "transformers", "validators")
_FILES = ("crds", "configurations")


@dataclass(frozen=True, slots=True)
class _Entry:
    field: str  # as the user wrote it: `resources`, `patches[0].path`, `configMapGenerator[1].files`
    value: object  # a path (text), or what kustomize cannot read as one (a number, null): refused
    include: bool = False  # a directory here is a kustomization to walk
    plugin: bool = False  # a plugin configuration: inline YAML, or a file of them


def problems(directory: str, *, root: str | None = None) -> list[InputProblem]:
    """Why the kustomization in `directory` cannot be rendered from local files alone; [] if it can.

    Args:
        directory: a directory holding a kustomization file.
        root: when given (`presync`: the export of the paths), every local file or directory
            named must lie inside it, links resolved.

    Returns:
        One problem per entry kustomize would fetch, or that leads outside `root`, or that is not
        text (a number, a boolean, null), naming the kustomization file, the field and the entry
        (rule `input/kustomize-remote`).
    """
    out: list[InputProblem] = []
    top = os.path.realpath(root) if root is not None else None
    seen: set[str] = set()
    stack = [directory]
    while stack:
        here = stack.pop()
        real = os.path.realpath(here)
        if real in seen:
            continue
        if len(seen) >= _MAX_KUSTOMIZATIONS:
            out.append(
                InputProblem(
                    Source(directory),
                    "input/kustomize-remote",
                    f"the kustomization includes more than {_MAX_KUSTOMIZATIONS:,} kustomizations; what "
                    "they name was not checked",
                    "split it, or render it first and check the output",
                )
            )
            break
        seen.add(real)
        file, document, unread = _read(here)
        if unread:  # what kustomize would read is unknown: not rendered (it may name a remote)
            out.append(
                InputProblem(
                    Source(file),
                    "input/kustomize-remote",
                    f"{file}: {unread}, so what it names cannot be checked",
                    "fix the file; `kubectl kustomize` shows how kustomize reads it",
                )
            )
            continue
        for entry in _entries(document):
            if not isinstance(entry.value, str):
                out.append(_not_text(file, entry))
                continue
            if entry.plugin and _inline(entry.value):  # an inline plugin configuration
                out.extend(_check_configs(file, here, entry, entry.value.encode(), top))
                continue
            found = _check(file, here, entry, entry.value, top, out)
            if found is None:
                continue
            target, is_dir = found
            if entry.plugin and is_dir:
                out.append(
                    _problem(
                        file,
                        entry,
                        "a directory of plugin configurations: its kustomization makes the configurations "
                        "(patches and transformers there may rewrite them), so the files they name cannot "
                        "be checked before rendering; list the configuration files themselves",
                    )
                )
            elif entry.plugin:
                data, unread = _read_bytes(target)
                if unread:
                    out.append(_problem(file, entry, f"a plugin configuration that {unread}"))
                else:
                    out.extend(_check_configs(file, here, entry, data, top))
            elif entry.include and is_dir:
                stack.append(os.path.normpath(target))
    return out


def reads(directory: str, *, included: set[str] | None = None) -> set[str]:
    """The local files and directories that rendering the kustomization in `directory` reads: its
    kustomization file, the files and kustomization directories it names (resources, patches,
    generator and replacement files, plugin configurations and the files they name, ...), and
    theirs, transitively. Each is given twice, as its absolute normalised path and as its real path
    (links resolved), so that a directory walk can tell a file it meets from one rendered.

    Only what kustomize reads is counted: of a field written in several cases (`resources:` and
    `Resources:`) the one Go's JSON decoder keeps, and no entry that `problems` refuses (a remote,
    a missing or absolute name, an entry that is not text). Reading stops at a kustomization file
    that cannot be read (`problems` refuses it too).

    `included`, when given, receives the kustomization directories the rendering includes (renders
    as part of it: `directory`, its resources, bases and components, transitively), as absolute and
    real paths: a directory merely read (`helmGlobals.chartHome`, a plugin's directory) is not one.
    """
    out: set[str] = set()

    def add(path: str) -> None:
        out.add(os.path.abspath(path))  # abspath normalises
        out.add(os.path.realpath(path))

    seen: set[str] = set()
    stack = [directory]
    while stack and len(seen) < _MAX_KUSTOMIZATIONS:
        here = stack.pop()
        try:
            real = os.path.realpath(here)
        except (OSError, ValueError):
            continue
        if real in seen:
            continue
        seen.add(real)
        file, document, unread = _read(here)
        if not file:
            continue
        add(here)
        add(file)
        if included is not None:
            included.add(os.path.abspath(here))
            included.add(os.path.realpath(here))
        if unread:
            continue
        for entry in _entries(document, kept=True):
            if not isinstance(entry.value, str):
                continue
            if entry.plugin and _inline(entry.value):
                for path, _ in _config_targets(here, entry, entry.value.encode()):
                    add(path)
                continue
            found = _local(here, entry.value)
            if found is None:
                continue
            target, is_dir = found
            add(target)
            if entry.plugin and not is_dir:
                data, unread = _read_bytes(target)
                if not unread:
                    for path, _ in _config_targets(here, entry, data):
                        add(path)
            elif entry.include and is_dir and not entry.plugin:
                stack.append(os.path.normpath(target))
            elif entry.plugin and is_dir and included is not None:
                # rendered for its plugin configurations, as part of this rendering
                included.add(os.path.abspath(target))
                included.add(os.path.realpath(target))
    return out


def _local(here: str, value: str) -> tuple[str, bool] | None:
    """(The path, whether a directory) of an entry naming an existing local file or directory
    beside the kustomization; None for a remote, an absolute name or one that does not exist."""
    if "\0" in value or remote(value) or os.path.isabs(value):
        return None
    target = os.path.join(here, value)
    try:
        if not os.path.exists(target):
            return None
        return target, os.path.isdir(target)
    except (OSError, ValueError):
        return None


def _config_targets(here: str, entry: _Entry, data: bytes) -> list[tuple[str, bool]]:
    """The local files the plugin configurations in `data` name (see `_check_configs`)."""
    configs, unread = _parse_all(data)
    if unread:
        return []
    out: list[tuple[str, bool]] = []
    for config in configs:
        for inner in _config_entries(config, entry.field, kept=True):
            if isinstance(inner.value, str) and (found := _local(here, inner.value)) is not None:
                out.append(found)
    return out


def local_names(data: bytes, *, kept: bool = False) -> list[tuple[str, bool]]:
    """What the kustomization file `data` names that may be local, as (entry, whether a directory
    there is a kustomization kustomize walks): to find what rendering it reads (`presync` exports
    that from the commit). Inline entries, remotes, entries that are not text and names holding a
    NUL are left out, and a file that cannot be read names nothing: `problems` refuses all of them.

    Every spelling of a field is read (more to export is never less judged); with `kept`, only the
    one kustomize keeps (`_get`): for what a rendering really includes, where more would excuse a
    kustomization from being judged alone.
    """
    document, unread = _document(data)
    if unread:
        return []
    return [
        (entry.value, entry.include)
        for entry in _entries(document, kept=kept)
        if isinstance(entry.value, str)
        and not (entry.plugin and _inline(entry.value))
        and "\0" not in entry.value
        and not remote(entry.value)
    ]


def _check(
    file: str, here: str, entry: _Entry, value: str, top: str | None, out: list[InputProblem]
) -> tuple[str, bool] | None:
    """Add the problem of one entry (`value` is its text) to `out`; (the local path it names,
    whether a directory) if none."""
    if "\0" in value:  # no file has that name, and os calls raise on it (ValueError)
        out.append(_problem(file, entry, "not a file name (it holds a NUL character)"))
        return None
    why = remote(value)
    target = os.path.join(here, value)
    try:
        resolved = os.path.realpath(target)
        exists, is_dir = os.path.exists(target), os.path.isdir(target)
    except (OSError, ValueError) as e:  # a name the file system refuses: not one kustomize reads
        out.append(_problem(file, entry, f"not a name the file system accepts ({e})"))
        return None
    if why or (entry.field.endswith(".repo") and not exists):
        what = (
            "a remote (a URL or a repository) that kustomize would fetch when rendering, even "
            "where a local file or directory of that name exists"
            + (f" ({why})" if why else "")
            + ", so the commit would not pin what is judged, and the renderer would fetch an "
            "address of the committer's choosing"
        )
        out.append(_problem(file, entry, what))
        return None
    if os.path.isabs(value) or not exists:
        what = (
            "an absolute path: what it names is the rendering host's, not the repository's"
            if os.path.isabs(value)
            else "not a file or directory beside the kustomization, so kustomize would try to "
            "fetch it as a remote"
        )
        out.append(_problem(file, entry, what))
        return None
    if top is not None and resolved != top and not resolved.startswith(top + os.sep):
        out.append(_problem(file, entry, "outside the checked paths"))
        return None
    return target, is_dir


def _check_configs(file: str, here: str, entry: _Entry, data: bytes, top: str | None) -> list[InputProblem]:
    """The problems of the plugin configurations in `data` (an inline entry, or the file it names).

    A builtin plugin loads the files its configuration names with the loader of the kustomization
    that lists it (`PluginHelpers.Loader`): `files`, `envs` and `env` (ConfigMapGenerator,
    SecretGenerator), `path` (PatchTransformer, PatchJson6902Transformer), `paths`
    (PatchStrategicMergeTransformer), `replacements[].path` (ReplacementTransformer), and the
    chart's repository, values files and homes (HelmChartInflationGenerator). They are checked as
    the kustomization's own entries are; the kind is not looked at (a field more can only be a
    refusal more).
    """
    out: list[InputProblem] = []
    configs, unread = _parse_all(data)
    if unread:
        return [
            _problem(file, entry, f"a plugin configuration that {unread}, so what it names cannot be checked")
        ]
    for i, config in enumerate(configs):
        value = entry.value if isinstance(entry.value, str) else ""
        label = f"{entry.field}[{value!r}]" if not _inline(value) else entry.field
        label += f"[{i}]" if len(configs) > 1 else ""
        for inner in _config_entries(config, label):
            if isinstance(inner.value, str):
                _check(file, here, inner, inner.value, top, out)
            else:
                out.append(_not_text(file, inner))
    return out


def _config_entries(config: Mapping[str, object], label: str, *, kept: bool = False) -> Iterator[_Entry]:
    for key in (
        "files",
        "envs",
        "env",
        "path",
        "valuesFile",
        "additionalValuesFiles",
        "chartHome",
        "configHome",
    ):
        for value in _values(_get(config, key, kept)):
            if key == "files" and isinstance(value, str) and "=" in value:
                value = value.partition("=")[2]
            yield _Entry(f"{label}.{key}", value)
    for value in _values(_get(config, "paths", kept)):
        if not (isinstance(value, str) and _inline(value)):
            yield _Entry(f"{label}.paths", value)
    for value in _values(_get(config, "repo", kept)):
        yield _Entry(f"{label}.repo", value)
    for i, item in _items(_get(config, "replacements", kept)):
        for value in _values(_get(item, "path", kept)):
            yield _Entry(f"{label}.replacements[{i}].path", value)


def _load(data: bytes) -> tuple[list[object], str]:
    """The documents of a YAML stream as kustomize reads them (`yamlio`: go-yaml v2's scalars, so
    `2024-01-01` and `1:30` stay text; merge keys; keys as JSON makes them), or why they cannot be
    read."""
    documents: list[object] = []
    for item in yamlio.parse_stream(data, max_nodes=_MAX_NODES):
        if isinstance(item, yamlio.YamlProblem):
            return [], f"is not YAML trustgate can read ({item.message})"
        documents.append(item.value)
    return documents, ""


def _document(data: bytes) -> tuple[Mapping[str, object], str]:
    """A kustomization file's mapping, or why it cannot be read."""
    documents, unread = _load(data)
    if unread:
        return {}, unread
    if len(documents) > 1:  # go-yaml reads the first only; which is which is not worth guessing
        return {}, (
            f"holds {len(documents)} YAML documents, and kustomize reads only the first; keep one "
            "document in it"
        )
    document = documents[0] if documents else None
    if document is not None and not isinstance(document, Mapping):
        return {}, "is not a mapping"
    return document or {}, ""


def _parse_all(data: bytes) -> tuple[list[Mapping[str, object]], str]:
    """The mappings of a YAML stream (a `*List`'s items too, as kustomize reads resources), or why
    they cannot be read."""
    documents, unread = _load(data)
    if unread:
        return [], unread
    out: list[Mapping[str, object]] = []
    stack: list[object] = list(reversed(documents))
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            out.append(item)
            items = item.get("items")
            if isinstance(items, list):
                stack.extend(reversed(items))
        elif item is not None:
            return [], "is not a mapping"
    return out, ""


def _read_bytes(path: str) -> tuple[bytes, str]:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except OSError as e:
        return b"", f"cannot be read ({e.strerror or e})"
    if len(data) > _MAX_BYTES:
        return b"", f"is over {_MAX_BYTES:,} bytes"
    return data, ""


def _problem(file: str, entry: _Entry, what: str) -> InputProblem:
    return InputProblem(
        Source(file),
        "input/kustomize-remote",
        f"{file}: {entry.field} entry {entry.value!r} is {what}",
        "vendor what it names into the repository and name it by a "
        "relative path, or render the kustomization first and check the output",
    )


def _not_text(file: str, entry: _Entry) -> InputProblem:
    """An entry where kustomize wants a path that is not text: kustomize fails on it (a number, a
    boolean) or reads an empty name (null); trustgate does not guess."""
    what = (
        "null"
        if entry.value is None
        else "a boolean"
        if isinstance(entry.value, bool)
        else "a number"
        if isinstance(entry.value, int | float)
        else "a list or a mapping"
    )
    shown = "null" if entry.value is None else repr(entry.value)
    return InputProblem(
        Source(file),
        "input/kustomize-remote",
        f"{file}: {entry.field} entry {shown} is {what}, not the text of a path: kustomize cannot "
        "read it as a file or directory, so what it names cannot be checked",
        "write the entry as a quoted string naming a file or directory beside the kustomization "
        "(e.g. '2024-01-01' or \"1:30\"), or remove it",
    )


def _read(directory: str) -> tuple[str, Mapping[str, object], str]:
    """(the kustomization file, what it holds, why it could not be read): ("", {}, "") for none."""
    for name in KUSTOMIZATION_FILES:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        data, unread = _read_bytes(path)
        if unread:
            return path, {}, unread
        document, unread = _document(data)
        return path, document, unread
    return "", {}, ""


def _inline(value: str) -> bool:
    """An entry that holds YAML rather than naming a file (a patch, a plugin configuration): more than
    one line, or a flow mapping. A URL or a git address is neither, even with a line break at its
    end (checked as a name)."""
    text = value.strip()
    return "\n" in text or text.startswith("{")


def _entries(document: Mapping[str, object], *, kept: bool = False) -> Iterator[_Entry]:
    """Every entry of `document` that names something kustomize loads.

    kustomize decodes a kustomization as JSON does, matching field names whatever their case
    (`Resources:` is `resources:`): every spelling of a field is read (`_get`), or with `kept` only
    the one the decoder keeps.
    """
    for field in _INCLUDES:
        for value in _values(_get(document, field, kept)):
            yield _Entry(field, value, include=True)
    for field in _PLUGINS:
        for value in _values(_get(document, field, kept)):
            yield _Entry(field, value, include=True, plugin=True)
    for field in _FILES:
        for value in _values(_get(document, field, kept)):
            yield _Entry(field, value)
    for value in _values(_get(document, "patchesStrategicMerge", kept)):
        if not (isinstance(value, str) and _inline(value)):
            yield _Entry("patchesStrategicMerge", value)
    for field in ("patches", "patchesJson6902", "replacements"):
        for i, item in _items(_get(document, field, kept)):
            for value in _values(_get(item, "path", kept)):
                yield _Entry(f"{field}[{i}].path", value)
    for field in ("configMapGenerator", "secretGenerator"):
        for i, item in _items(_get(document, field, kept)):
            for value in _values(_get(item, "files", kept)):
                if isinstance(value, str) and "=" in value:
                    value = value.partition("=")[2]
                yield _Entry(f"{field}[{i}].files", value)
            for key in ("envs", "env"):
                for value in _values(_get(item, key, kept)):
                    yield _Entry(f"{field}[{i}].{key}", value)
    for i, item in _items(_get(document, "helmCharts", kept)):
        for key in ("repo", "valuesFile", "additionalValuesFiles"):
            for value in _values(_get(item, key, kept)):
                yield _Entry(f"helmCharts[{i}].{key}", value)
    for field, keys in (("helmGlobals", ("chartHome", "configHome")), ("openapi", ("path",))):
        for _, section in _items(_get(document, field, kept)):
            for key in keys:
                for value in _values(_get(section, key, kept)):
                    yield _Entry(f"{field}.{key}", value)


def _get(mapping: Mapping[str, object], field: str, kept: bool = False) -> list[object]:
    """The values of every key of `mapping` that is `field` in any case (Go's JSON field matching;
    `casefold` also folds the long s (U+017F) and the Kelvin sign (U+212A), as Go does).

    With `kept`, only the value Go's decoder keeps: sigs.k8s.io/yaml hands it the keys sorted (a Go
    map marshalled), each matching key overwrites the field, so the greatest key wins; and a key
    matches only letter for letter (Go folds no letter into two, as `casefold` folds `ß`).
    """
    if not kept:
        wanted = field.casefold()
        return [value for key, value in mapping.items() if isinstance(key, str) and key.casefold() == wanted]
    matching = [key for key in mapping if isinstance(key, str) and _same_field(key, field)]
    return [mapping[max(matching)]] if matching else []


def _same_field(key: str, field: str) -> bool:
    """`key` names `field` to Go's JSON decoder (simple case folding, letter for letter)."""
    if len(key) != len(field):
        return False
    return all(
        a == b or (len(a.casefold()) == 1 and a.casefold() == b.casefold())
        for a, b in zip(key, field, strict=True)
    )


def _values(values: list[object]) -> list[object]:
    """The entries of a field's values: the text of each path, and whatever kustomize would have to
    read as a path but is not text (refused by `problems`). A missing or null field, and empty
    text, name nothing; a mapping is left to kustomize, which refuses it."""
    out: list[object] = []
    for value in values:
        if isinstance(value, list):
            out.extend(v for v in value if v != "")
        elif isinstance(value, str):
            if value:
                out.append(value)
        elif value is not None and not isinstance(value, Mapping):
            out.append(value)
    return out


def _items(values: list[object]) -> list[tuple[int, Mapping[str, object]]]:
    """The mappings among `values` (a mapping, or lists of them), numbered as kustomize lists them."""
    out: list[tuple[int, Mapping[str, object]]] = []
    for value in values:
        items = value if isinstance(value, list) else [value]
        out.extend((i, v) for i, v in enumerate(items) if isinstance(v, Mapping))
    return out
