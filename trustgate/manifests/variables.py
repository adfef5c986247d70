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

Leaves out: what a reference evaluates to. A default (`${NS:=prod}`) is not what is applied when
the Kustomization's `substitute` or `substituteFrom` sets the variable, so it is never judged as
final. And references inside a value elsewhere (an env value `${HOME}`, a ConfigMap's data): they
change that value only, which the rules that read it judge as written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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
