"""Where a Kubernetes object holds variables that Flux's post-build substitution fills later.

Owns: reading `${...}` references as Flux reads them, and finding the places in an object where
one changes what is applied beyond the value that holds it: any mapping key (a label, annotation or
spec key becomes another key), `metadata.namespace`, `name`, `generateName` and label values
(which decide which policies match), and a reference left open in any string (Flux reads on, past
the end of the string, through the document's text up to the next `}`).

Flux's kustomize-controller runs its fork of drone/envsubst (fluxcd/pkg `envsubst`) over the
whole YAML text of each built object (`kustomize_varsub.go`: `res.AsYAML()`, `envsubst.Eval`,
`yaml.YAMLToJSON`), keys included, unless the object's label or annotation
`kustomize.toolkit.fluxcd.io/substitute` is `disabled`. Its scanner (`parse/scan.go`) opens a
reference only at `${`: a `$NAME` without braces is text. Outside a reference `$$` is an escaped
`$` (so `$${X}` is the text `${X}`); inside one (a default, `${A:=$${B}}`) it is not, and a
nested `${` needs a `}` of its own. Every other form (`${A}`, `${A:=d}`, `${A:-d}`, `${A:+x}`,
`${#A}`, `${A/x/y}`, ...) is a reference, whatever it evaluates to.

Also owns the API server's syntax of the metadata these places hold (`invalid_metadata`: a
namespace, label and annotation keys, label values), which OpenAPI schemas leave out: a `${` there
is never valid as written.

Leaves out: what a reference evaluates to. A default (`${NS:=prod}`) is not what is applied when
the Kustomization's `substitute` or `substituteFrom` sets the variable, so it is never judged as
final. And references inside a value elsewhere (an env value `${HOME}`, a ConfigMap's data): they
change that value only, which the rules that read it judge as written.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from trustgate import yamlio
from trustgate.model import Document, JsonPath

# The API group of Flux's Kustomization: `kinds.is_kind(obj, FLUX_KUSTOMIZE_GROUP, "Kustomization")`.
FLUX_KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
SUBSTITUTE_MARKER = f"{FLUX_KUSTOMIZE_GROUP}/substitute"  # label or annotation; "disabled" skips


@dataclass(frozen=True, slots=True)
class Hit:
    """One place where a variable reference changes what is applied.

    Attributes:
        where: "key" (a mapping key; `path` ends with the key), "metadata" (the value of
            metadata.namespace, name, generateName or a label) or "open" (a reference left open in
            a string value).
        path: the JSON path of the key or value.
        text: the key or value as written.
    """

    where: str
    path: JsonPath
    text: str


def scan(text: str) -> tuple[bool, bool]:
    """Whether `text` holds a variable reference, and whether one is left open, as Flux reads it.

    A reference is left open when the text ends before its `}`: Flux then reads the document's
    text that follows as part of it.
    """
    if "${" not in text:  # `$${` holds it too: a superset, the loop decides
        return False, False
    found = False
    depth = 0
    i = 0
    end = len(text)
    while i < end:
        char = text[i]
        if char == "$" and i + 1 < end:
            follower = text[i + 1]
            if follower == "{":
                found = True
                depth += 1
                i += 2
                continue
            if follower == "$" and depth == 0:  # an escaped `$`, outside a reference only
                i += 2
                continue
        elif char == "}" and depth:
            depth -= 1
        i += 1
    return found, depth > 0


def substitution_disabled(obj: Mapping[str, Any]) -> bool:
    """Whether Flux skips the object: its label or annotation SUBSTITUTE_MARKER is `disabled`."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return False
    for field in ("labels", "annotations"):
        values = metadata.get(field)
        if isinstance(values, Mapping) and values.get(SUBSTITUTE_MARKER) == "disabled":
            return True
    return False


def may_hold(obj: Any) -> bool:
    """Whether any key or string of `obj` may hold `${`: False is certain.

    One `orjson.dumps` (about 2 us for a 1.5 KB object; JSON escapes neither `$` nor `{`) spares
    the walk for the objects without one; an object orjson cannot encode is walked.
    """
    try:
        return b"${" in orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError is one: a key that is not a string, too deep
        return True


_METADATA_VALUES = ("namespace", "name", "generateName")


def find(obj: Mapping[str, Any]) -> list[Hit]:
    """The places in `obj` where a variable reference changes what is applied (see the module).

    Nothing for an object Flux does not substitute (`substitution_disabled`).
    """
    if not may_hold(obj) or substitution_disabled(obj):
        return []
    hits: list[Hit] = []
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        for field in _METADATA_VALUES:
            value = metadata.get(field)
            if isinstance(value, str) and scan(value)[0]:
                hits.append(Hit("metadata", ("metadata", field), value))
        labels = metadata.get("labels")
        if isinstance(labels, Mapping):
            for key, value in labels.items():
                if isinstance(value, str) and scan(value)[0]:
                    hits.append(Hit("metadata", ("metadata", "labels", str(key)), value))
    seen = {hit.path for hit in hits}
    hits.extend(hit for hit in _walk(obj) if hit.path not in seen)  # a metadata value: once
    return hits


def _walk(root: Any) -> Iterator[Hit]:
    """Keys holding a reference, and strings leaving one open (the gate sorts findings by line);
    no recursion: nesting is as deep as the loader allows."""
    stack: list[tuple[JsonPath, Any]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, Mapping):
            children: list[tuple[JsonPath, Any]] = []
            for key, value in node.items():
                text = key if isinstance(key, str) else str(key)
                if scan(text)[0]:
                    yield Hit("key", (*path, text), text)
                children.append(((*path, text), value))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([((*path, i), value) for i, value in enumerate(node)]))
        elif isinstance(node, str) and scan(node)[1]:
            yield Hit("open", path, node)


# The API server's checks of object metadata (k8s.io/apimachinery/pkg/util/validation), which no
# OpenAPI schema carries: the keys and values below are plain strings there.
_DNS1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_NAMESPACE_RULE = "a lowercase RFC 1123 label: a-z, 0-9 and '-', starting and ending alphanumeric, at most 63"
_KEY_RULE = (
    "a qualified name: an optional DNS subdomain prefix (at most 253, lowercase) and '/', then a name "
    "of at most 63 characters (alphanumerics, '-', '_', '.'; starting and ending alphanumeric)"
)
_ANNOTATIONS_LIMIT = 256 * 1024  # bytes, keys and values together (TotalAnnotationSizeLimitB)
_ANNOTATIONS_RULE = f"at most {_ANNOTATIONS_LIMIT} bytes (256 KiB), keys and values together"
_LABEL_VALUE_RULE = (
    "empty, or at most 63 characters: alphanumerics, '-', '_' and '.', starting and ending alphanumeric"
)


@dataclass(frozen=True, slots=True)
class Invalid:
    """A metadata field the API server refuses: its path, the text, and the rule it breaks."""

    path: JsonPath
    text: str
    what: str
    rule: str
    fix: str = ""  # "" for "correct the <what>"


# Verdicts by text: the same few label keys, values and namespaces recur in every object of a
# repository, so a dictionary look-up replaces most pattern matches. Bounded: cleared when full.
_SEEN_LIMIT = 16_384  # entries per table
_seen_keys: dict[str, bool] = {}
_seen_label_values: dict[str, bool] = {}
_seen_namespaces: dict[str, bool] = {}


def _cached(table: dict[str, bool], text: str, test: Callable[[str], bool]) -> bool:
    """`test(text)`, looked up in `table` first and remembered there."""
    valid = table.get(text)
    if valid is None:
        if len(table) >= _SEEN_LIMIT:
            table.clear()
        valid = table[text] = test(text)
    return valid


def _valid_key(key: str) -> bool:
    return _cached(_seen_keys, key, _qualified_name)


def _valid_label_value(value: str) -> bool:
    return _cached(
        _seen_label_values,
        value,
        lambda v: len(v) <= 63 and (not v or _QUALIFIED_NAME.fullmatch(v) is not None),
    )


def _valid_namespace(namespace: str) -> bool:
    return _cached(
        _seen_namespaces, namespace, lambda n: len(n) <= 63 and _DNS1123_LABEL.fullmatch(n) is not None
    )


def _annotation_key(key: str) -> str:
    """The key the API server checks (`strings.ToLower`): Go lowers `İ` (U+0130) to `i`, where
    Python's full case mapping makes `i` and a combining dot; every other letter lowers alike."""
    return key.lower() if key.isascii() else key.replace("\u0130", "i").lower()


def _annotations_size(annotations: Mapping[Any, Any]) -> int:
    """The bytes of the keys and values together, as the API server counts them (UTF-8)."""
    size = 0
    wide = False
    for key, value in annotations.items():
        if isinstance(key, str) and isinstance(value, str):
            size += len(key) + len(value)
            wide = wide or not (key.isascii() and value.isascii())
    if not wide or size > _ANNOTATIONS_LIMIT:  # a character is at least a byte
        return size
    return sum(
        len(key.encode("utf-8", "surrogatepass")) + len(value.encode("utf-8", "surrogatepass"))
        for key, value in annotations.items()
        if isinstance(key, str) and isinstance(value, str)
    )


def _qualified_name(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and (
        not prefix or len(prefix) > 253 or "/" in prefix or not _DNS1123_SUBDOMAIN.fullmatch(prefix)
    ):
        return False
    return len(name) <= 63 and _QUALIFIED_NAME.fullmatch(name) is not None


def invalid_metadata(obj: Mapping[str, Any], *, namespaced: bool | None) -> list[Invalid]:
    """The namespace, label keys and values, annotation keys and the annotations' total size of
    `obj` the API server refuses (`ValidateObjectMeta`): cheap, a few pattern matches an object.

    The namespace is checked only for a kind known to be namespaced (a client drops a cluster-scoped
    object's). A string holding a variable reference Flux substitutes is left to
    `find` (the substituted value is what the API server sees).
    """
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return []
    deferred: bool | None = None  # computed at the first bad text: most objects have none

    def later(text: str) -> bool:
        nonlocal deferred
        if "${" not in text:
            return False
        if deferred is None:
            deferred = not substitution_disabled(obj)
        return deferred and scan(text)[0]

    out: list[Invalid] = []
    namespace = metadata.get("namespace")
    if (
        namespaced
        and isinstance(namespace, str)
        and namespace
        and not _valid_namespace(namespace)
        and not later(namespace)
    ):
        out.append(Invalid(("metadata", "namespace"), namespace, "namespace", _NAMESPACE_RULE))
    labels = metadata.get("labels")
    if isinstance(labels, Mapping):
        for key, value in labels.items():
            if isinstance(key, str) and not _valid_key(key) and not later(key):
                out.append(Invalid(("metadata", "labels", key), key, "label key", _KEY_RULE))
            if isinstance(value, str) and not _valid_label_value(value) and not later(value):
                out.append(Invalid(("metadata", "labels", str(key)), value, "label value", _LABEL_VALUE_RULE))
    annotations = metadata.get("annotations")
    if isinstance(annotations, Mapping):
        for key in annotations:
            # The API server lowers an annotation key before it checks it.
            if isinstance(key, str) and not _valid_key(_annotation_key(key)) and not later(key):
                out.append(Invalid(("metadata", "annotations", key), key, "annotation key", _KEY_RULE))
        size = _annotations_size(annotations)
        if size > _ANNOTATIONS_LIMIT:
            out.append(
                Invalid(
                    ("metadata", "annotations"),
                    f"{size} bytes",
                    "total size of the annotations",
                    _ANNOTATIONS_RULE,
                    fix="move the large values out of the annotations (a ConfigMap, a Secret)",
                )
            )
    return out


# -- what one application substitutes ---------------------------------------------------------------

_VARIABLE_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")  # kustomize_varsub.go varsubRegex
_DEFAULTS = (":=", ":-")  # `${A:=d}`, `${A:-d}`: the default when A is unset or empty


@dataclass(frozen=True, slots=True)
class Substitution:
    """The variables one application of the objects fills in, as Flux merges them.

    kustomize-controller (`kustomize_varsub.go`) reads the data of each `postBuild.substituteFrom`
    object in order (a later one overrides an earlier one), then `postBuild.substitute` over them,
    with every newline removed from the values; with no variable at all it substitutes nothing.

    Attributes:
        applied_as: who applies the objects so, for messages (`Kustomization/flux-system/team-a`,
            or the option that gave the values).
        values: variable -> value.
        complete: every source of values is known, so a variable `values` lacks is unset and its
            default is what is applied. False: a source is not known here (an object that lives only
            in the cluster), so only `values` are certain and a default is never taken.
        unknown: why the values are incomplete, and the way out (for messages).
        uncertain: variables some source sets to a value not known here (`SourceObject.settled`),
            each with why: left unresolved, their default never taken, whatever `complete` says.
    """

    applied_as: str
    values: Mapping[str, str]
    complete: bool = True
    unknown: str = ""
    uncertain: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Whether Flux substitutes at all: it does only when some variable is set (or may be)."""
        return bool(self.values) or not self.complete or bool(self.uncertain)


@dataclass(frozen=True, slots=True)
class Substituted:
    """An object as one application applies it: `obj` with what resolved substituted, and a line
    per variable reference left as written (`unresolved`: why, for the findings on it); `certain`
    when one of them is certainly wrong as applied (a variable no source sets, with no default:
    Flux applies it empty, or fails), not merely unknown here."""

    obj: Mapping[str, Any]
    unresolved: tuple[str, ...] = ()
    changed: bool = False
    certain: bool = False


def invalid_names(values: Mapping[str, str]) -> list[str]:
    """The variable names Flux refuses (it then substitutes nothing, and the build fails)."""
    return sorted(name for name in values if not _VARIABLE_NAME.fullmatch(name))


def substitute(obj: Mapping[str, Any], substitution: Substitution) -> Substituted:
    """`obj` as Flux's post-build substitution leaves it under `substitution`.

    Each string (keys included) is read as Flux's envsubst reads the object's text (`scan`):
    `$$` is a `$`, `${A}`, `${A:=d}` and `${A:-d}` take the value of A (the default where A is
    unset, only when `substitution.complete`, or empty). A reference that cannot be resolved for
    certain (A unknown, another operator, a nested reference, one left open) stays as written and
    is named in `unresolved`; the rules for variables left for later then judge it. A whole value
    that was a plain scalar is typed again as Flux's YAML reading types it (`${N}` set to `3` is
    the number 3, `${ON}` set to `true` a boolean). An object marked `SUBSTITUTE_MARKER: disabled`,
    or a substitution that sets nothing (`Substitution.active`), leaves it as written.
    """
    if not substitution.active or substitution_disabled(obj):
        return Substituted(obj)
    try:
        if b"$" not in orjson.dumps(obj):
            return Substituted(obj)
    except TypeError:
        pass  # walked: an object orjson cannot encode
    unresolved: list[str] = []
    changed = False
    certain = False

    def text(value: str, *, key: bool) -> Any:
        nonlocal changed, certain
        if "$" not in value:
            return value
        out, problems, wrong = _expand(value, substitution)
        unresolved.extend(problems)
        certain = certain or wrong
        if out == value:
            return value
        changed = True
        if problems or "\n" in value or _plain_value(value) != value:
            return out  # a quoted scalar stays a string
        typed = _plain_value(out)
        if typed is _NO_VALUE:  # Flux's YAMLToJSON refuses the substituted text: it applies nothing
            certain = True
            unresolved.append(
                f"substituted, the {'key' if key else 'value'} {json.dumps(value)} reads {json.dumps(out)}, "
                "which is not one YAML value where it stands (a `: `, `- ` or an alias): Flux fails the "
                "build and applies nothing (quote the reference in the manifest, or change the value)"
            )
            return out
        return out if key else typed  # a key stays a string (sigs.k8s.io/yaml)

    def walk(node: Any) -> Any:
        nonlocal certain
        if isinstance(node, Mapping):
            out: dict[str, Any] = {}
            for k, v in node.items():
                new_key = text(k, key=True) if isinstance(k, str) else k
                if new_key in out:
                    certain = True
                    unresolved.append(
                        f"the key {json.dumps(new_key)} appears twice once substituted: which value Flux "
                        "keeps cannot be told"
                    )
                    out[k] = walk(v)
                    continue
                out[new_key] = walk(v)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return text(node, key=False)
        return node

    result = walk(obj)
    return Substituted(result if changed else obj, tuple(dict.fromkeys(unresolved)), changed, certain)


_NO_VALUE = object()
_VALUE_NODES = 100_000  # YAML nodes of one substituted value (a value that is a whole mapping)


def _plain_value(text: str) -> Any:
    """What a YAML reader of Kubernetes (go-yaml, then sigs.k8s.io/yaml) makes of `text` written as
    the plain value of a mapping; `_NO_VALUE` where it is not one value (a syntax error)."""
    if not text.strip():
        return None
    items = list(yamlio.parse_stream(f"v: {text}\n".encode(), max_nodes=_VALUE_NODES))
    if len(items) != 1 or isinstance(items[0], yamlio.YamlProblem):
        return _NO_VALUE
    value = items[0].value
    if not isinstance(value, Mapping) or list(value) != ["v"]:
        return _NO_VALUE
    return value["v"]


def _expand(text: str, substitution: Substitution) -> tuple[str, list[str], bool]:
    """`text` with its references resolved (see `substitute`), why each other one is not, and
    whether one of those is certainly unset (`Substituted.certain`)."""
    out: list[str] = []
    problems: list[str] = []
    certain = False
    i, end = 0, len(text)
    while i < end:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        follower = text[j + 1] if j + 1 < end else ""
        if follower == "$":  # an escaped `$`
            out.append("$")
            i = j + 2
            continue
        if follower != "{":
            out.append("$")
            i = j + 1
            continue
        close = text.find("}", j + 2)
        if close < 0:
            problems.append(
                f"the reference {json.dumps(text[j : j + 40])} is left open (Flux reads on past the value)"
            )
            out.append(text[j:])
            break
        reference = text[j : close + 1]
        body = text[j + 2 : close]
        match = _VARIABLE_NAME.match(body)
        name = match.group() if match else ""
        rest = body[len(name) :]
        default = rest[2:] if rest[:2] in _DEFAULTS else None
        if not name or (rest and default is None) or (default is not None and "$" in default):
            problems.append(
                f"the reference {reference} is a form trustgate does not evaluate (it reads `${{A}}`, "
                "`${A:=default}` and `${A:-default}` with a literal default)"
            )
            out.append(reference)
        elif name in substitution.uncertain:
            problems.append(
                f"{substitution.applied_as} sets the variable {name}, but {substitution.uncertain[name]}"
            )
            out.append(reference)
        elif name in substitution.values and (default is None or substitution.values[name]):
            out.append(substitution.values[name])
        elif default is not None and (name in substitution.values or substitution.complete):
            out.append(default)
        else:
            problems.append(_unset(name, default is not None, substitution))
            certain = certain or substitution.complete
            out.append(reference)
        i = close + 1
    return "".join(out), problems, certain


def _unset(name: str, has_default: bool, substitution: Substitution) -> str:
    if not substitution.complete:
        return f"{substitution.applied_as} does not set the variable {name}, and {substitution.unknown}"
    return (
        f"{substitution.applied_as} does not set the variable {name}"
        + ("" if has_default else ", which has no default")
        + " (Flux applies it empty, or fails under --feature-gates=StrictPostBuildSubstitutions)"
    )


def apply(doc: Document, substitution: Substitution, *, always: bool = False) -> Document:
    """`doc` as `substitution` applies it (`substitute`): a new document naming the application
    (`Document.applied_as`) when anything changed or stayed unresolved, or `always`; else `doc`."""
    if not doc.kubernetes or (not doc.may_hold_variable and not always):
        return doc
    done = substitute(doc.obj, substitution)
    if not (done.changed or done.unresolved or always):
        return doc
    return dataclasses.replace(
        doc,
        obj=done.obj,
        applied_as=substitution.applied_as,
        unresolved=done.unresolved,
        unresolved_certain=done.certain,
    )


_SOURCE_KINDS = ("ConfigMap", "Secret")


@dataclass(frozen=True, slots=True)
class SourceObject:
    """A ConfigMap or Secret a Kustomization may substitute from (`flux_substitution`), with the
    document it is written in.

    kustomize-controller reads a `substituteFrom` object from the cluster, as it was last applied.
    Where a Kustomization that substitutes applies it too, the cluster holds it substituted, not as
    written: one object, seen as written and as applied, is one source, not two.

    Attributes:
        obj: the object, in the namespace it lands in.
        origin: the document it is written in (`file:line`); "" unknown (each object its own).
        settled: False for a copy as written that the cluster holds substituted (only Kustomizations
            that substitute apply it) while no copy as they apply it is known: a value of it holding
            `$` is then not known here.
    """

    obj: Mapping[str, Any]
    origin: str = ""
    settled: bool = True


def flux_substitution(
    kustomization: Mapping[str, Any],
    objects: Iterable[Mapping[str, Any] | SourceObject],
    *,
    applied_as: str,
    where: str,
    absent: Collection[tuple[str, str, str]] = (),
) -> tuple[Substitution | None, str]:
    """What a Flux Kustomization substitutes (`spec.postBuild`), with the data of its
    `substituteFrom` objects found among `objects` (those in its namespace), as
    kustomize-controller merges them: each object in order, a later one overriding; a Secret's
    `data` base64-decoded, its `stringData` over it (the API server merges it so); `substitute`
    over all; newlines removed.

    An object not found may live in the cluster: it may set any variable, and override those of
    the objects before it, so only the values of the objects after it and of `substitute` are
    certain (`Substitution.complete` False, `unknown` naming it and the way out).

    Copies of one object (`SourceObject.origin`: as written, as each Kustomization that applies it
    applies it) are one object: where they give one variable different values, or a copy leaves
    it unknown (`SourceObject.settled`), which value Flux reads is not known, and the variable is
    `Substitution.uncertain`. Two objects written in different places with different data are
    a conflict: which one the cluster holds cannot be told.

    Args:
        kustomization: the Kustomization object.
        objects: where its `substituteFrom` objects are looked for (a mapping: an object of its own).
        applied_as: how messages name it.
        where: how messages name `objects` ("the tree", a file).
        absent: (kind, namespace, name) of objects known not to be in the cluster (the gated tree
            lacks them, the candidate adds them): one of them marked `optional: true` is skipped, as
            kustomize-controller skips it, so the variables it would set take their defaults. One
            not optional fails Flux's build: ask `fails_without` first.

    Returns:
        (None, "") when it substitutes nothing (no `postBuild`); (None, why) when what it
        substitutes cannot be worked out (a field of the wrong type, an object written twice with
        different data, a Secret that does not decode, an invalid variable name: Flux fails
        the build too, or the gate cannot tell what it applies); else (the substitution, "").
    """
    spec = kustomization.get("spec")
    post = spec.get("postBuild") if isinstance(spec, Mapping) else None
    if post is None:
        return None, ""
    if not isinstance(post, Mapping):
        return None, "spec.postBuild is not a mapping"
    inline = post.get("substitute") or {}
    refs = post.get("substituteFrom") or []
    if not isinstance(inline, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in inline.items()
    ):
        return None, "spec.postBuild.substitute is not a mapping of strings to strings (quote the values)"
    if not isinstance(refs, list):
        return None, "spec.postBuild.substituteFrom is not a list"
    metadata = kustomization.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    namespace = namespace if isinstance(namespace, str) else ""
    pool = [
        s
        for s in (o if isinstance(o, SourceObject) else SourceObject(o) for o in objects)
        if s.obj.get("apiVersion") == "v1" and s.obj.get("kind") in _SOURCE_KINDS
    ]
    values: dict[str, str] = {}
    uncertain: dict[str, str] = {}
    missing: list[str] = []
    sealed: list[str] = []  # encrypted with SOPS: what they set is not known here either
    for at, ref in enumerate(refs):
        kind = ref.get("kind") if isinstance(ref, Mapping) else None
        name = ref.get("name") if isinstance(ref, Mapping) else None
        if kind not in _SOURCE_KINDS or not isinstance(name, str) or not name:
            return None, f"spec.postBuild.substituteFrom[{at}] is not a ConfigMap or Secret with a name"
        label = source_label(kind, namespace, name)
        copies: dict[str, list[tuple[dict[str, str], frozenset[str]]]] = {}  # origin -> each copy
        for n, source in enumerate(pool):
            obj = source.obj
            meta = obj.get("metadata")
            if (
                obj.get("kind") == kind
                and isinstance(meta, Mapping)
                and meta.get("name") == name
                and (meta.get("namespace") or "") == namespace
            ):
                if isinstance(
                    obj.get("sops"), Mapping
                ):  # Flux decrypts it (spec.decryption): unreadable here
                    sealed.append(label)
                    continue
                data, why = _source_data(obj)
                if why:
                    return None, f"{label} ({source.origin or where}) {why}"
                unsettled = (
                    frozenset()
                    if source.settled or substitution_disabled(obj)
                    else frozenset(k for k, v in data.items() if "$" in v)
                )
                copies.setdefault(source.origin or f"#{n}", []).append((data, unsettled))
        found: dict[str, tuple[dict[str, str], dict[str, str]]] = {}  # each distinct object once
        named: list[str] = []  # where each is written
        for origin, seen in copies.items():
            known, unsure = _merged(seen, label, origin)
            same = json.dumps([known, sorted(unsure)], sort_keys=True)
            if same not in found:
                found[same] = (known, unsure)
                named.append(origin)
        if len(found) > 1:
            places = [o for o in named if not o.startswith("#")]
            return None, (
                f"{label} is in {where} more than once, with different data"
                + (f" ({', '.join(places)})" if places else "")
                + ": which one Flux reads cannot be told (keep one, or give them other names)"
            )
        if not found:
            if (kind, namespace, name) in absent and isinstance(ref, Mapping) and ref.get("optional") is True:
                continue  # Flux skips an optional object it does not find: nothing is read from it
            if label not in sealed:
                missing.append(label)
            values, uncertain = {}, {}  # it may override every value read before it
            continue
        known, unsure = next(iter(found.values()))
        for key, value in known.items():
            values[key] = value.replace("\n", "")
            uncertain.pop(key, None)
        for key, why in unsure.items():
            values.pop(key, None)
            uncertain[key] = why
    for key, value in inline.items():
        values[key] = value.replace("\n", "")
        uncertain.pop(key, None)
    bad = invalid_names({**values, **uncertain})
    if bad:
        return None, (
            f"the variable name(s) {', '.join(map(json.dumps, bad))} are refused by Flux "
            f"(names match {_VARIABLE_NAME.pattern}): it substitutes nothing and fails the build"
        )
    why_unknown = []
    if missing:
        one = len(missing) == 1
        why_unknown.append(
            f"{', '.join(missing)} (spec.postBuild.substituteFrom) {'is' if one else 'are'} not in {where}: "
            f"living only in the cluster, what {'it sets' if one else 'they set'} cannot be judged "
            f"(put {'it' if one else 'them'} in {where}, or set the variable in spec.postBuild.substitute)"
        )
    if sealed:
        why_unknown.append(
            f"{', '.join(dict.fromkeys(sealed))} (spec.postBuild.substituteFrom) in {where} "
            "is encrypted with SOPS, which Flux decrypts: what it sets cannot be judged (set the variable "
            "in spec.postBuild.substitute, or keep the values that decide where and what is applied in a "
            "ConfigMap)"
        )
    complete = not (missing or sealed)
    return (
        Substitution(
            applied_as, values, complete=complete, unknown="; ".join(why_unknown), uncertain=uncertain
        ),
        "",
    )


def source_label(kind: object, namespace: str, name: object) -> str:
    """How messages name a `substituteFrom` object: `ConfigMap/flux-system/vars` (`ConfigMap/vars`
    where its Kustomization names no namespace)."""
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def fails_without(kustomization: Mapping[str, Any], absent: Collection[tuple[str, str, str]]) -> list[str]:
    """The `substituteFrom` objects of `kustomization` that are in `absent` (known not to be in the
    cluster) and not marked `optional: true`: kustomize-controller fails the build without them,
    applying nothing. Labels (`ConfigMap/flux-system/vars`), in order."""
    spec = kustomization.get("spec")
    post = spec.get("postBuild") if isinstance(spec, Mapping) else None
    refs = post.get("substituteFrom") if isinstance(post, Mapping) else None
    metadata = kustomization.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    namespace = namespace if isinstance(namespace, str) else ""
    out: list[str] = []
    for ref in refs if isinstance(refs, list) else []:
        if not isinstance(ref, Mapping) or ref.get("optional") is True:
            continue
        kind, name = ref.get("kind"), ref.get("name")
        if isinstance(kind, str) and isinstance(name, str) and (kind, namespace, name) in absent:
            out.append(source_label(kind, namespace, name))
    return out


def _merged(
    copies: Sequence[tuple[dict[str, str], frozenset[str]]], label: str, origin: str
) -> tuple[dict[str, str], dict[str, str]]:
    """What the copies of one object (`SourceObject.origin`) set for certain, and the variables
    they leave unknown, each with why: one that a copy does not settle, or that they set apart."""
    keys = dict.fromkeys(k for data, _ in copies for k in data)
    known: dict[str, str] = {}
    unsure: dict[str, str] = {}
    place = f"{label} ({origin})" if not origin.startswith("#") else label
    for key in keys:
        if any(key in unsettled for _, unsettled in copies):
            unsure[key] = (
                f"its value in {place} holds `$`: Flux reads {label} from the cluster, where a "
                "Kustomization that substitutes applied it, so the value it reads is not known here "
                f"(set the variable in spec.postBuild.substitute, or mark {label} "
                f"{SUBSTITUTE_MARKER}: disabled)"
            )
        elif len({data.get(key) for data, _ in copies}) > 1:
            unsure[key] = (
                f"{place} is applied with different values of it (as written, and as each Kustomization "
                "that applies it substitutes it): which one Flux reads cannot be told"
            )
        else:
            known[key] = copies[0][0][key]
    return known, unsure


def _source_data(obj: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """The variables a ConfigMap (`data`) or Secret (`data` decoded as the API server decodes it,
    `yamlio.go_base64`; `stringData` over it) gives, and why they cannot be read ("" when they can)."""
    out: dict[str, str] = {}
    data = obj.get("data") or {}
    if not isinstance(data, Mapping):
        return {}, "has a data field that is not a mapping"
    for key, value in data.items():
        if not isinstance(value, str):
            return {}, f"has data.{key} that is not a string"
        if obj.get("kind") == "Secret":
            text = _utf8(yamlio.go_base64(value))
            if text is None:
                return {}, (
                    f"has data.{key} that does not decode (base64, then UTF-8 text): what Flux substitutes "
                    "cannot be told; fix the value, or use stringData"
                )
            value = text
        out[str(key)] = value
    if obj.get("kind") == "Secret":
        strings = obj.get("stringData") or {}
        if not isinstance(strings, Mapping) or not all(isinstance(v, str) for v in strings.values()):
            return {}, "has a stringData field that is not a mapping of strings"
        out.update({str(k): v for k, v in strings.items()})
    return out, ""


def _utf8(data: bytes | None) -> str | None:
    """`data` as UTF-8 text; None for None, or bytes that are not UTF-8."""
    try:
        return data.decode("utf-8") if data is not None else None
    except UnicodeDecodeError:
        return None
