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

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from trustgate.model import JsonPath

SUBSTITUTE_MARKER = "kustomize.toolkit.fluxcd.io/substitute"  # label or annotation; "disabled" skips


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
