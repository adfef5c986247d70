"""Parse YAML and JSON streams into documents that remember their lines.

Owns: splitting a stream into documents, the safe loader (values as
Kubernetes reads them: go-yaml v2's scalars and merge keys, then
sigs.k8s.io/yaml's JSON conversion, so keys are strings and NaN is refused;
timestamps keep their text), the alias-bomb guard, and mapping a JSON path
back to the line it came from. Leaves out: reading files (see
`loader.py`) and everything Kubernetes-specific.

A YAML syntax error ends a YAML stream, so a stream is first cut at its
`---` markers (a marker in column 0 always starts a document) and every
piece is parsed on its own: one broken document never hides the others.
"""

from __future__ import annotations

import base64
import codecs
import itertools
import math
import operator
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from trustgate.model import JsonPath

try:  # the libyaml-backed loader is ~10x faster; fall back where it is missing
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]  # same interface
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _BaseLoader = yaml.SafeLoader


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]  # dynamic base chosen above
    """libyaml's composer with plain scalars typed as Kubernetes' own YAML reader types them.

    Plain scalars repeat endlessly in manifests (`name`, `image`, `true`), so
    their resolved tags are cached: resolving is the slowest Python step of
    composing a document.
    """

    # libyaml's composer calls these around every node, for path resolvers
    # (`add_path_resolver`), which the safe loader has none of. C builtins that
    # take the same arguments and do nothing spare two Python calls per node.
    descend_resolver = staticmethod(operator.is_)  # (parent, index) -> ignored
    ascend_resolver = staticmethod(tuple)  # () -> ignored

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is _SCALAR_NODE:  # a module global: one lookup fewer, a million times a check
            if not implicit[0]:
                return _STR  # quoted: a string, whatever it looks like
            tag = _TAG_CACHE.get(value)
            if tag is None:
                tag = _go_tag(value)
                if len(_TAG_CACHE) < _TAG_CACHE_MAX:
                    _TAG_CACHE[value] = tag
            return tag
        # No path resolvers: a collection without a tag is a plain seq or map.
        return _SEQ if kind is _SEQUENCE_NODE else _MAP


_SCALAR_NODE = yaml.ScalarNode
_SEQUENCE_NODE = yaml.SequenceNode
_TAG_CACHE: dict[str, str] = {}
_TAG_CACHE_MAX = 200_000  # entries; plain scalars seen before (bounded: values are user input)


# -- plain scalars as go-yaml v2 reads them ------------------------------------------
# Kubernetes reads YAML with sigs.k8s.io/yaml, which vendors go-yaml v2
# (`goyaml.v2/resolve.go`): YAML 1.1's words, but not all of YAML 1.1. Where it
# and PyYAML's resolver part ways, a policy must see what the API server will
# see (`privileged: y` is true there), so plain scalars follow `resolve.go`:
#  1. a table of words: y/yes/true/on (each as y, Y or in three cases) are true,
#     n/no/false/off false; "", ~, null/Null/NULL null; .inf/.nan forms; `<<` merges;
#  2. starting with `.`: a float if Go's ParseFloat takes it (`.5`, `.0_1`: `_` between digits);
#  3. starting with a sign or a digit, `_` removed: an integer in Go's syntax
#     (`0x`, `0o`, `0b` in either case, a leading 0 for octal) within int64 or
#     uint64; else a float in the form of `yamlStyleFloat` (`1e3`, `09`) unless it
#     overflows; else (e.g. hex past 64 bits) a string: resolve.go has no big integers;
#  4. anything else is a string: no base 60 (`1:30`), and timestamps stay their
#     text here (Go turns them into RFC 3339 text; this keeps what was written).
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_GO_BOOLS: dict[str, bool] = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
}
_GO_FLOATS: dict[str, float] = {
    **dict.fromkeys((".nan", ".NaN", ".NAN"), float("nan")),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), float("inf")),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), float("-inf")),
}
_GO_WORDS: dict[str, str] = {
    **dict.fromkeys(_GO_BOOLS, _BOOL),
    **dict.fromkeys(_GO_FLOATS, _FLOAT),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), _NULL),
    "<<": "tag:yaml.org,2002:merge",
}
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")  # yamlStyleFloat
# What ParseFloat takes of `.<digits>...`: an `_` only between two digits (strconv's `underscoreOK`).
_GO_DOT_FLOAT = re.compile(r"\.[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+(?:_[0-9]+)*)?")
_INT64 = range(-(2**63), 2**63)
_MAX_INT_TEXT = 67  # characters: `-0b` and 64 binary digits
_UINT64 = range(2**64)


def _go_int(plain: str) -> int:
    """The value of an integer in Go's base-0 syntax (`_GO_INT`), underscores removed."""
    body = plain.lstrip("+-")
    sign = -1 if plain.startswith("-") else 1
    prefix = body[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        return sign * int(body[2:], {"0x": 16, "0o": 8, "0b": 2}[prefix])
    return sign * int(body, 8 if len(body) > 1 and body[0] == "0" else 10)


def _significant(plain: str) -> str:
    """An integer's text without the zeros that lead its digits (Go reads any number of them)."""
    sign = plain[:1] if plain[:1] in "+-" else ""
    body = plain[len(sign) :]
    prefix = body[:2] if body[:2].lower() in ("0x", "0o", "0b") else "0" if body[:1] == "0" else ""
    digits = body[len(prefix) :].lstrip("0") or "0"
    return sign + prefix + digits


def _go_float(text: str) -> float | None:
    """Go's ParseFloat of a text in float form: None where it overflows (an error in Go)."""
    try:
        value = float(text)
    except (ValueError, OverflowError):  # pragma: no cover - the callers pass float syntax
        return None
    return None if value in (float("inf"), float("-inf")) else value


def _go_tag(value: str) -> str:
    """The tag go-yaml v2 resolves a plain scalar to (the comment above, steps 1-4)."""
    word = _GO_WORDS.get(value)
    if word is not None:
        return word
    first = value[0]
    if first == ".":
        ok = _GO_DOT_FLOAT.fullmatch(value) and _go_float(value.replace("_", "")) is not None
        return _FLOAT if ok else _STR
    if first not in "+-0123456789":
        return _STR
    plain = value.replace("_", "")
    unsigned = first not in "+-"  # ParseUint refuses a sign
    # No 64-bit integer is longer than `-0b` and 64 digits; longer ones are not converted at all
    # (Python refuses to convert more than 4,300 digits).
    if len(plain) > _MAX_INT_TEXT and plain.lstrip("+-")[:1] == "0":
        plain = _significant(plain)  # `0x000...01`: Go's ParseInt reads past the zeros
    if len(plain) <= _MAX_INT_TEXT and _GO_INT.fullmatch(plain) is not None:
        number = _go_int(plain)
        if number in _INT64 or (unsigned and number in _UINT64):
            return _INT
    if _GO_FLOAT.fullmatch(plain) and _go_float(plain) is not None:
        return _FLOAT  # `1e3`, `09`, and integers past 64 bits written in decimal
    return _STR  # e.g. hex past 64 bits: ParseInt, ParseUint and ParseFloat all fail in go-yaml v2


_DOC_START = re.compile(rb"^---(?=[ \t\r\n]|$)", re.MULTILINE)
_DOC_END = re.compile(rb"^\.\.\.[ \t]*\r?$", re.MULTILINE)


class YamlProblem(Exception):
    """A piece of a stream that is not usable YAML; carries the 1-based line."""

    def __init__(self, rule: str, message: str, line: int, hint: str = "") -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.line = line
        self.hint = hint


@dataclass(slots=True)
class ParsedDocument:
    """One document of a stream: its value, 1-based start line and node tree."""

    value: Any
    line: int
    index: int
    node: yaml.Node | None
    # The first plain scalar tagged `!` that kustomize reads as other than the string go-yaml v2
    # reads (`! true`, `! 0x0`; `_kyaml_retypes`): its 1-based line and text; or None.
    retyped: tuple[int, str] | None = None


def split_stream(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield (0-based first line, bytes) for every `---`-separated piece of a stream."""
    if b"\n---" not in data and not data.startswith(b"---"):
        yield 0, data  # one document: spare the line-by-line regex scan (most files)
        return
    starts = [m.start() for m in _DOC_START.finditer(data)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    starts.append(len(data))
    line = 0
    for begin, end in itertools.pairwise(starts):
        chunk = data[begin:end]
        yield line, chunk
        line += chunk.count(b"\n")


def parse_stream(data: bytes, *, max_nodes: int) -> Iterator[ParsedDocument | YamlProblem]:
    """Parse every document of a YAML (or JSON) stream.

    Yields a `ParsedDocument` per non-empty document, or a `YamlProblem` for a
    piece that cannot be used; parsing goes on with the next piece.

    Args:
        data: the whole stream, UTF-8.
        max_nodes: the most nodes a document may expand to through aliases.
    """
    index = 0
    for first_line, chunk in split_stream(data):
        # A `...` end marker is followed only by directives or the next `---`.
        end = _DOC_END.search(chunk) if b"..." in chunk else None
        if end is not None:
            chunk = chunk[: end.start()]
        try:
            node = _compose(chunk)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = first_line + (mark.line + 1 if mark is not None else 1)
            col = f", column {mark.column + 1}" if mark is not None else ""
            problem = " ".join(p for p in (e.context, e.problem) if p)
            yield YamlProblem(
                "input/invalid-yaml",
                f"invalid YAML at line {line}{col}: {problem}",
                line,
                "fix the syntax; other documents in this file were still checked",
            )
            index += 1
            continue
        except yaml.YAMLError as e:  # reader errors: control characters and the like
            yield YamlProblem("input/invalid-yaml", f"invalid YAML: {e}", first_line + 1)
            index += 1
            continue
        except RecursionError:
            yield _too_deep(first_line + 1)
            index += 1
            continue
        if node is None:
            continue  # an empty document, e.g. after a trailing `---`
        retyped = None
        if b"!" in chunk and _NON_SPECIFIC.search(chunk) is not None:
            retyped = _untag_non_specific(chunk, node)
        start = first_line + node.start_mark.line + 1
        if b"&" in chunk and b"*" in chunk:  # an alias needs an anchor; cron schedules alone have `*`
            try:
                size = _expanded_size(node, max_nodes)
            except _Recursive:
                yield YamlProblem(
                    "input/yaml-alias",
                    "YAML alias refers to its own anchor (a recursive document)",
                    start,
                    "remove the recursive alias",
                )
                index += 1
                continue
            if size > max_nodes:
                yield YamlProblem(
                    "input/yaml-alias",
                    f"YAML aliases expand this document to more than {max_nodes:,} nodes (an alias bomb?)",
                    start,
                    "expand the aliases by hand or split the document",
                )
                index += 1
                continue
        try:
            anchors = b"&" in chunk
            value = _build(node, {} if anchors else None)
        except yaml.MarkedYAMLError as e:  # the builder's errors carry the node's mark
            mark = e.problem_mark
            line = first_line + mark.line + 1 if mark is not None else start
            where = f" at line {line}, column {mark.column + 1}" if mark is not None else ""
            yield YamlProblem("input/invalid-yaml", f"invalid YAML value{where}: {e.problem}", line)
            index += 1
            continue
        except RecursionError:  # nested deeper than the builder's recursion reaches
            yield _too_deep(start)
            index += 1
            continue
        yield ParsedDocument(
            value=value,
            line=start,
            index=index,
            node=_shift(node, first_line),
            retyped=None if retyped is None else (first_line + retyped[0] + 1, retyped[1]),
        )
        index += 1


def _too_deep(line: int) -> YamlProblem:
    return YamlProblem(
        "input/invalid-yaml",
        "YAML nested too deeply to read (hundreds of levels): the document was not checked",
        line,
        "flatten the document; other documents in this file were still checked",
    )


# A `!` that may be YAML's non-specific tag where a node starts (`v: ! 010`, `- !<!> x`, `[&a ! y`,
# a `!` before a NEL); a `!` in text ("hello! world", `if ! cmd` in a script) mostly does not match,
# and one that does costs reading that document's events once more, no more.
_NON_SPECIFIC = re.compile(
    rb"(?:^|[:?,\[{-])[ \t]*(?:&[^ \t\r\n]+[ \t]+)?!(?:<!>|(?=[ \t\r\n,\]}]|\xc2\x85|\Z))", re.MULTILINE
)


def _untag_non_specific(chunk: bytes, root: yaml.Node) -> tuple[int, str] | None:
    """Make every scalar tagged `!` a string, as go-yaml v2 reads it; but a `! <<` key a merge.

    libyaml (and PyYAML) resolve `! 010` as if it were untagged, the integer 8;
    go-yaml v2 leaves a scalar with any tag it does not know unresolved: the
    string "010". A `<<` key tagged `!` still merges there (`isMerge` takes the
    `!` tag for implicit). The composed node does not say it had a tag, so the
    tagged scalars are found in the document's events, by position.

    Returns:
        The 0-based line and the text of the first plain scalar tagged `!` that kustomize reads
        otherwise (`_kyaml_retypes`), or None.
    """
    starts: set[int] = set()
    retyped: tuple[int, str] | None = None
    for event in yaml.parse(chunk, Loader=_BaseLoader):
        if event.__class__ is yaml.ScalarEvent and event.tag == "!" and event.start_mark is not None:
            starts.add(event.start_mark.index)
            if retyped is None and not event.style and _kyaml_retypes(event.value):
                retyped = (event.start_mark.line, event.value)
    if not starts:
        return None
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.__class__ is yaml.ScalarNode:
            if node.start_mark.index in starts:
                node.tag = _STR
        elif node.__class__ is yaml.SequenceNode:
            stack.extend(node.value)
        else:
            for key, value in node.value:
                if key.__class__ is yaml.ScalarNode and key.value == "<<" and key.start_mark.index in starts:
                    key.tag = _MERGE
                    seen.add(id(key))
                stack.extend((key, value))
    return retyped


# How kustomize (kyaml, on go-yaml v3) reads a plain scalar tagged `!`: as if it were untagged, in
# YAML 1.2's words (`kubectl kustomize` of `! true`, `! 0x0`, `! 010`, `! ~`, `! 2001-12-14` writes
# true, 0, 8, null, "2001-12-14T00:00:00Z"; of `! yes`, `! on`, `! y` the strings). go-yaml v2 keeps
# the text as a string.
_KYAML_WORDS = frozenset(
    ("true", "True", "TRUE", "false", "False", "FALSE", "", "~", "null", "Null", "NULL", *_GO_FLOATS)
)
_KYAML_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?![0-9])")


def _kyaml_retypes(plain: str) -> bool:
    """Whether kustomize reads the plain scalar `! <plain>` as other than the string `plain`."""
    if plain in _KYAML_WORDS:
        return True
    return _go_tag(plain) in (_INT, _FLOAT) or _KYAML_TIMESTAMP.match(plain) is not None


def _compose(chunk: bytes) -> yaml.Node | None:
    loader = _Loader(chunk)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


class _ShiftedNode:
    """A node tree with a line offset, walked only when a finding needs a line."""

    __slots__ = ("node", "offset")

    def __init__(self, node: yaml.Node, offset: int) -> None:
        self.node = node
        self.offset = offset


def _shift(node: yaml.Node, offset: int) -> Any:
    return _ShiftedNode(node, offset)


class LazyTree:
    """The node tree of a JSON text, composed only when a line is asked for.

    JSON manifests are parsed with the (much faster) json module; most of
    them pass, so their node tree is built only for a finding's line.
    """

    __slots__ = ("_data", "_tree")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._tree: Any = None

    def tree(self) -> Any:
        if self._tree is None:
            try:
                node = _compose(self._data)
            except (yaml.YAMLError, RecursionError):
                node = None
            self._tree = _ShiftedNode(node, 0) if node is not None else False
        return self._tree or None


def locate(tree: Any, path: JsonPath) -> int | None:
    """The 1-based line of the deepest node along `path`, or None."""
    if isinstance(tree, LazyTree):
        tree = tree.tree()
    if not isinstance(tree, _ShiftedNode):
        return None
    node: yaml.Node = tree.node
    line: int = node.start_mark.line
    for part in path:
        found: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            entry = _entry(node, str(part))
            if entry is not None:
                found, line = entry[1], entry[0].start_mark.line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            found = node.value[part]
            line = found.start_mark.line
        if found is None:
            break
        node = found
    return tree.offset + line + 1


def _entry(node: yaml.MappingNode, name: str, depth: int = 0) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key, value) whose value `name` has in the mapping, as go-yaml v2 reads it: entries in
    document order, a later one (a repeated key, or a `<<` merge) overriding an earlier one, and in
    a merge of several maps the first that has `name`."""
    found = None
    for key, value in node.value:
        if key.__class__ is not yaml.ScalarNode:
            continue
        if key.tag == _MERGE:
            if depth < 64:  # aliases cannot loop (refused when read); this only bounds the walk
                sources = value.value if value.__class__ is yaml.SequenceNode else [value]
                for source in sources:
                    hit = _entry(source, name, depth + 1) if source.__class__ is yaml.MappingNode else None
                    if hit is not None:
                        found = hit
                        break
        elif key.value == name:
            found = (key, value)
    return found


@dataclass(frozen=True, slots=True)
class RepeatedKey:
    """A key one mapping sets twice: the 1-based lines of both settings (a `<<` merge's own line
    for a key it brings)."""

    key: str
    line: int
    earlier_line: int


def repeated_key(tree: Any) -> RepeatedKey | None:
    """The first key that a mapping of the document sets more than once, directly or through a
    `<<` merge, or None.

    Readers part ways over such a mapping (go-yaml v2, and so kubectl, keeps the last setting;
    the YAML merge spec keeps a key written in the mapping over a merged one, wherever it
    stands; a person reading the file may stop at the first), so a file whose meaning must not
    depend on its reader sets each key once. Two exceptions, where every reader agrees: the
    maps of one `<<` may share keys (the first map's wins), and a key written after a `<<` that
    set it overrides it (`<<: *defaults` then `mode: warn`, the usual idiom). Keys compare as
    the JSON keys they become (`_json_key`). Only for a document read without a problem.
    """
    return _repeated(tree, merges_only=False)


def merge_override(tree: Any) -> RepeatedKey | None:
    """The first key that a mapping of the document writes and then sets again by a later `<<`
    merge, or None.

    go-yaml v2 (kubectl, Argo CD, and this loader) merges in document order, so the merged value
    holds; kustomize (kyaml, and so Flux, which builds every path with it) keeps the written one
    (observed with `kubectl kustomize`). What is applied then depends on the reconciler. The other
    settings `repeated_key` names are read alike, or refused by kustomize (a key written twice, two
    `<<` in one mapping).
    """
    return _repeated(tree, merges_only=True)


def _repeated(tree: Any, *, merges_only: bool) -> RepeatedKey | None:
    if isinstance(tree, LazyTree):
        tree = tree.tree()
    if not isinstance(tree, _ShiftedNode):
        return None
    stack, seen = [tree.node], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.__class__ is yaml.SequenceNode:
            stack.extend(reversed(node.value))
        elif node.__class__ is yaml.MappingNode:
            written: dict[str, int] = {}  # key -> line, set directly
            merged: dict[str, int] = {}  # key -> line of the `<<` that set it
            for key_node, value_node in node.value:
                line = tree.offset + key_node.start_mark.line + 1
                if key_node.tag == _MERGE and key_node.value == "<<":
                    for key in dict.fromkeys(k for m in _merged_maps(value_node) for k in _keys(m)):
                        earlier = written.get(key) if merges_only else written.get(key, merged.get(key))
                        if earlier is not None:
                            return RepeatedKey(key, line, earlier)
                        merged[key] = line
                else:
                    key = _json_key(key_node, None)[0]
                    if key in written and not merges_only:
                        return RepeatedKey(key, line, written[key])
                    written[key] = line  # after a `<<` that set it: an override every reader keeps
            stack.extend(v for _, v in reversed(node.value))
    return None


def _keys(node: yaml.MappingNode, depth: int = 0) -> list[str]:
    """The JSON keys a mapping sets, those of its own merges included."""
    keys: list[str] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE and key_node.value == "<<":
            if depth < 64:  # aliases cannot loop (refused when read); this only bounds the walk
                keys.extend(k for merged in _merged_maps(value_node) for k in _keys(merged, depth + 1))
        else:
            keys.append(_json_key(key_node, None)[0])
    return keys


def subtree(tree: Any, path: JsonPath) -> Any:
    """The node tree at `path` (for the items of a `kind: List`), keeping the line offset."""
    if isinstance(tree, LazyTree):
        tree = tree.tree()
    if not isinstance(tree, _ShiftedNode):
        return None
    node: yaml.Node = tree.node
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part]
            if not match:
                return None
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return None
    return _ShiftedNode(node, tree.offset)


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
# A `!!value` key (YAML 1.1's `=`, which go-yaml and this loader read as a string): a string.
_STR_KEYS = frozenset((_STR, "tag:yaml.org,2002:value"))
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _not_a(what: str, node: yaml.ScalarNode) -> yaml.constructor.ConstructorError:
    # An explicit tag on a scalar go-yaml v2 does not read as that type: an error there too.
    return yaml.constructor.ConstructorError(
        None, None, f"cannot read {_clip(node.value)!r} as {what}", node.start_mark
    )


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _int(node: yaml.ScalarNode) -> int:
    text: str = node.value
    # Plain decimals (`replicas: 3`, ports) are nearly all of them; a leading
    # 0 (octal), `0x`, `0o`, `0b`, `_` and signs take Go's path.
    if text.isdigit() and text.isascii() and (text[0] != "0" or text == "0") and len(text) <= _MAX_INT_TEXT:
        return int(text)
    plain = text.replace("_", "")
    if _GO_INT.fullmatch(plain) is None:
        raise _not_a("an integer", node)
    try:
        return _go_int(plain)
    except ValueError:  # more digits than Python converts (`!!int 111…`): not a 64-bit integer anyway
        raise _not_a("an integer", node) from None


def _float(node: yaml.ScalarNode) -> float:
    text: str = node.value
    if text in _GO_FLOATS:
        # go-yaml v2 reads it, but sigs.k8s.io/yaml's JSON conversion fails ("json: unsupported
        # value: NaN"): Kubernetes refuses the document, so it never reaches a policy.
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"{text} is not a number JSON can hold (Kubernetes refuses NaN and infinities: "
            '"json: unsupported value")',
            node.start_mark,
        )
    value = None
    if _go_tag(text) == _INT:  # `!!float 1`: go-yaml v2 turns the integer into a float
        value = float(_int(node))
    elif text.startswith("."):  # ParseFloat of the text as written, underscores between digits
        value = _go_float(text.replace("_", "")) if _GO_DOT_FLOAT.fullmatch(text) else None
    elif _GO_FLOAT.fullmatch(plain := text.replace("_", "")):  # ParseFloat: decimal, even with a leading 0
        value = _go_float(plain)
    if value is None:
        raise _not_a("a float", node)
    return value


def _bool(node: yaml.ScalarNode) -> bool:
    value = _GO_BOOLS.get(node.value)
    if value is None:
        raise _not_a("a boolean", node)
    return value


_BASE64_CHAR = "[A-Za-z0-9+/]"
_GO_BASE64 = re.compile(f"(?:{_BASE64_CHAR}{{4}})*(?:{_BASE64_CHAR}{{2}}==|{_BASE64_CHAR}{{3}}=)?")


def go_base64(text: str) -> bytes | None:
    """`text` decoded as Go's `base64.StdEncoding.DecodeString` decodes it (Kubernetes' `[]byte`
    fields, a Secret's `data`, go-yaml's `!!binary`); None where Go refuses it.

    The standard alphabet, padded to a multiple of 4 with `=`, `\r` and `\n` skipped anywhere,
    unused low bits need not be zero ("YR==" is `a`), "" is empty. Refused: "aGVsbG8" (unpadded),
    "aGVsbG8==" (padding in excess, which Python's decoder takes), "a-_b" (URL-safe alphabet),
    "aGVs bG8=" (a space), "aGVsbG8=\nx" (data after the padding).
    """
    compact = text.replace("\r", "").replace("\n", "")
    if _GO_BASE64.fullmatch(compact) is None:
        return None
    return base64.b64decode(compact)


def _binary(node: yaml.ScalarNode) -> str:
    """A `!!binary` scalar as Kubernetes reads it: the decoded bytes, as text.

    go-yaml v2 decodes it with Go's `base64.StdEncoding` (`go_base64`) into a string of the
    bytes; JSON then writes every byte that is not part of valid UTF-8 as U+FFFD (`encoding/json`).
    """
    data = go_base64(node.value)
    if data is None:  # go-yaml fails the same way
        raise yaml.constructor.ConstructorError(
            None, None, "!!binary value contains invalid base64 data", node.start_mark
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", _GO_REPLACE)


def _replace_each_byte(error: UnicodeError) -> tuple[str, int]:
    # Python's "replace" gives one U+FFFD per invalid sequence (`\xe2\x82` is one); Go's
    # encoding/json one per byte.
    assert isinstance(error, UnicodeDecodeError)
    return "\ufffd" * (error.end - error.start), error.end


_GO_REPLACE = "trustgate-go-json-replace"
codecs.register_error(_GO_REPLACE, _replace_each_byte)


_SCALARS: dict[str, Callable[[yaml.ScalarNode], Any]] = {
    "tag:yaml.org,2002:int": _int,
    "tag:yaml.org,2002:float": _float,
    "tag:yaml.org,2002:bool": _bool,
    "tag:yaml.org,2002:null": _CONSTRUCTOR.construct_yaml_null,
    # JSON has neither: keep the text, as Kubernetes' YAML-to-JSON conversion does.
    "tag:yaml.org,2002:timestamp": lambda node: node.value,
    "tag:yaml.org,2002:binary": _binary,
}


def _build(node: yaml.Node, memo: dict[int, Any] | None) -> Any:
    """Build Python values from a composed node tree.

    Equivalent to SafeConstructor for the JSON-compatible subset manifests
    use, without its per-node generator machinery (several times faster).

    Args:
        node: the root of the tree.
        memo: shared values of aliased nodes, as PyYAML shares them; None
            when the document has no anchors (nothing can be shared).

    Raises:
        yaml.constructor.ConstructorError: an unsupported tag or an unhashable key.
    """
    cls = node.__class__
    if cls is yaml.ScalarNode:
        if node.tag == _STR:
            return node.value
        convert = _SCALARS.get(node.tag)
        if convert is None:
            raise yaml.constructor.ConstructorError(
                None, None, f"unsupported YAML tag {node.tag!r}", node.start_mark
            )
        return convert(node)  # type: ignore[arg-type]  # the class was checked above
    if memo is not None and id(node) in memo:
        return memo[id(node)]
    if cls is yaml.SequenceNode:
        if node.tag != _SEQ:
            raise yaml.constructor.ConstructorError(
                None, None, f"unsupported YAML tag {node.tag!r}", node.start_mark
            )
        items: list[Any] = []
        if memo is not None:
            memo[id(node)] = items
        for item in node.value:
            if item.__class__ is yaml.ScalarNode and item.tag == _STR:
                items.append(item.value)
            else:
                items.append(_build(item, memo))
        return items
    if node.tag != _MAP:
        raise yaml.constructor.ConstructorError(
            None, None, f"unsupported YAML tag {node.tag!r}", node.start_mark
        )
    mapping: dict[str, Any] = {}
    if memo is not None:
        memo[id(node)] = mapping
    for key_node, value_node in node.value:
        # Plain string keys and values are most of a manifest: skip the call.
        if key_node.__class__ is yaml.ScalarNode and key_node.tag in _STR_KEYS:
            k = key_node.value
        else:  # a merge key or a key that is not a string (rare): start again, the slow way
            mapping.clear()
            _in_order(node, memo, mapping)  # type: ignore[arg-type]  # neither scalar nor sequence: a map
            return mapping
        if value_node.__class__ is yaml.ScalarNode and value_node.tag == _STR:
            mapping[k] = value_node.value
        else:
            mapping[k] = _build(value_node, memo)
    return mapping


def _in_order(node: yaml.MappingNode, memo: dict[int, Any] | None, mapping: dict[str, Any]) -> dict[str, Any]:
    """Fill `mapping` from a mapping node as go-yaml v2 and then sigs.k8s.io/yaml do.

    1. Entries apply in document order (go-yaml v2's `d.mapping`): a later key
       overrides an earlier one, and a `<<` merge sets every key of the merged
       map, overriding the keys before it; a sequence of maps is merged last to
       first (`d.merge`), so the first map wins.
    2. Keys become JSON strings as `convertToJSONableObject` makes them (`_json_key`).
       Two different YAML keys that become the same string (`1` and `"1"`)
       are refused: Kubernetes keeps one of them at random (Go's map order).

    Returns:
        The JSON key of every entry and the YAML key it came from, for the merges
        of an enclosing mapping.

    Raises:
        yaml.constructor.ConstructorError: a key Kubernetes refuses, two keys
            that collide, or a merge of something other than maps.
    """
    origins: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE and key_node.value == "<<" and key_node.__class__ is yaml.ScalarNode:
            for merged_node in reversed(_merged_maps(value_node)):
                merged: dict[str, Any] = {}
                for text, origin in _in_order(merged_node, memo, merged).items():
                    _claim(origins, text, origin, key_node)
                mapping.update(merged)
            continue
        text, origin = _json_key(key_node, memo)
        _claim(origins, text, origin, key_node)
        if value_node.__class__ is yaml.ScalarNode and value_node.tag == _STR:
            mapping[text] = value_node.value
        else:
            mapping[text] = _build(value_node, memo)
    return origins


def _merged_maps(node: yaml.Node) -> list[yaml.MappingNode]:
    """The maps a `<<` merges, in document order: a map (or an alias of one) or a sequence of them."""
    nodes: list[yaml.Node] = node.value if node.__class__ is yaml.SequenceNode else [node]
    if any(n.__class__ is not yaml.MappingNode or n.tag != _MAP for n in nodes):
        raise yaml.constructor.ConstructorError(
            None, None, "map merge requires map or seq of maps as the value", node.start_mark
        )
    return nodes  # type: ignore[return-value]  # checked above


def _claim(origins: dict[str, Any], text: str, origin: Any, key_node: yaml.Node) -> None:
    prior = origins.setdefault(text, origin)
    if prior is not origin and prior != origin:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"two different keys ({_describe(prior)} and {_describe(origin)}) both become the JSON key "
            f"{text!r}: Kubernetes would keep one of them at random; quote the keys as strings",
            key_node.start_mark,
        )


def _describe(origin: Any) -> str:
    kind, value = origin
    return "a NaN" if kind == "nan" else f"the {kind} {value!r}"


def _json_key(key_node: yaml.Node, memo: dict[int, Any] | None) -> tuple[str, Any]:
    """(The JSON key sigs.k8s.io/yaml makes of a YAML key, the typed key it came from).

    `convertToJSONableObject`: strings as they are; Go ints (int64) in decimal;
    booleans `true`/`false`; floats with `strconv.FormatFloat(f, 'g', -1, 32)`
    (`1e3` is "1000"), infinities `.inf`/`-.inf` and NaN `.nan`. Any other key
    (null, an integer past int64, a sequence or a map) is an error there.
    """
    if key_node.__class__ is yaml.ScalarNode:
        if key_node.tag in _STR_KEYS or (key_node.tag == _MERGE and key_node.value != "<<"):
            return key_node.value, ("string", key_node.value)
        special = _GO_FLOATS.get(key_node.value) if key_node.tag == _FLOAT else None
        if special is not None:  # a NaN or infinite key is text to Kubernetes, unlike such a value
            if special != special:
                return ".nan", ("nan", id(key_node))  # every NaN is a key of its own in a Go map
            return (".inf" if special > 0 else "-.inf"), ("float", special)
    key = _build(key_node, memo)
    if key.__class__ is str:
        return key, ("string", key)
    if key.__class__ is bool:
        return ("true" if key else "false"), ("boolean", key)
    if key.__class__ is int and key in _INT64:
        return str(key), ("integer", key)
    if key.__class__ is float:
        return _go_float32_text(key), ("float", key)
    what = "null" if key is None else "an integer past int64" if key.__class__ is int else "a collection"
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"a mapping key cannot be {what} (Kubernetes cannot turn it into a JSON key)",
        key_node.start_mark,
    )


def _go_float32_text(value: float) -> str:
    """Go's `strconv.FormatFloat(value, 'g', -1, 32)`: the shortest text of the float32 nearest to `value`."""
    try:
        single: float = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:  # Go's float32() of a larger value is an infinity
        return ".inf" if value > 0 else "-.inf"
    if single in (math.inf, -math.inf):
        return ".inf" if single > 0 else "-.inf"
    if single == 0:
        return "-0" if math.copysign(1.0, single) < 0 else "0"
    for places in range(9):  # the fewest digits that read back as the same float32
        text = f"{single:.{places}e}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == single:
            break
    mantissa, exponent_text = text.split("e")
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    exponent = int(exponent_text)
    if exponent < -4 or exponent >= 6:  # %e: Go uses 6 as the precision for shortest 'g'
        fraction = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{fraction}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    whole, fraction = digits[: exponent + 1], digits[exponent + 1 :]
    return f"{sign}{whole.ljust(exponent + 1, '0')}{'.' + fraction if fraction else ''}"


class _Recursive(Exception):
    pass


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Count the nodes a document expands to, counting every alias use again.

    Memoised by node identity, so shared subtrees cost one visit; a cycle raises.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        known = sizes.get(key)
        if known is not None:
            return known
        if key in active:
            raise _Recursive
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > limit:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if total > limit:
                    break
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)
