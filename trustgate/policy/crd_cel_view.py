"""How the API server presents a custom resource's values to CEL rules, and what trustgate cannot.

Owns: the escaping of property names (k8s.io/apiserver/pkg/cel/escaping.go, `Escape` and
`Unescape`), and a check of a rule's checked AST for the operations whose answer, over the
plain values the engine's bindings take, could differ from the API server's, whose values are
typed from the schema (k8s.io/apiserver/pkg/cel/common/values.go: `unstructuredMap`,
`unstructuredList`). `crd_cel` builds the values; a rule this module refuses is reported as not
evaluated, never passed.

What is checked (each a reason the rule cannot be evaluated offline):

- A property of an object with declared `properties` is presented under its escaped name
  (`foo-bar` as `foo__dash__bar`, `namespace` as `__namespace__`), as the API server lists its
  keys. The API server's `Find` unescapes the name it is asked for, so it also finds the
  property under other spellings (`self['foo-bar']`, `self.namespace`): such a spelling, and a
  key computed at run time on such an object, is refused (but for the variable of a loop over an
  object's keys, within that loop's body: the escaped names it lists).
- At a resource's root (and in an embedded resource) `metadata` shows only `name` and
  `generateName` (`WithTypeAndObjectMeta`); an object with declared properties shows only them
  (the API server prunes other fields, or keeps them unshown under
  `x-kubernetes-preserve-unknown-fields`, where `size()` and equality still count them and
  iteration yields a null key for each: such a rule is treated as one reading a null, below).
- A null field of an object with declared properties is absent (`Find`: `has()` false, `?.`
  none), so trustgate leaves it out of the value. The API server still counts it in `size()`,
  lists it when the object is iterated, and its equality of objects is false wherever a field
  is null: a rule doing one of these on an object that can hold a nullable field is reported
  as not evaluated for a value that holds such a null (`Analysis.null_sensitive`).
- A list with `x-kubernetes-list-type: set` or `map` is compared by the API server regardless
  of order (a set as a set, a map list item by item with the same keys), `in` a list of such
  lists follows that equality, and `+` on one is a union (set) or a merge by key (map). The
  engine's lists are ordered and cannot be given other operations, and no one order of the
  items would make indexing, iteration and equality with a list literal all agree: a rule that
  compares, searches or adds such a list (or a value holding one) is refused. A sum with such a
  list on either side may be that list itself (cel-go's `+` of a list the expression built hands
  back the other operand when one is empty, `baseList.Add`: `[] + self.tags` is the set, compared
  as one), and is followed as such. One exception:
  two values of one schema compared (`self == oldSelf`, `self.a != oldSelf.a`), where the rule
  reads the order of such lists nowhere else (no indexing, `map`, `filter`, concatenation or
  other function; `size`, `in`, `all`, `exists` and `exists_one` are blind to it), are
  compared with their items in one order (`canonical_order`: a set's by value, a map list's by
  its keys), which is the API server's equality, for sets of strings, integers and booleans
  and map lists keyed by such fields (a `number` set tells 1 from 1.0 there). Reading one
  otherwise (`size`, indexing, iteration, `in` of an item) is as the API server does.

Leaves out: ValidatingAdmissionPolicies, whose `object` the API server does not type from a
schema (plain maps and lists there: no escaping, no set semantics); and `messageExpression`s,
which are not checked (they change a message, never a decision).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trustgate.policy import cel_cost

__all__ = [
    "Analysis",
    "analyze",
    "canonical_order",
    "escape",
    "holds_hidden_field",
    "presented",
    "unescape",
    "view",
]

# escaping.go's celReservedSymbols: CEL's reserved words ('namespace' is heavily used in Kubernetes).
_RESERVED = frozenset(
    {
        "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function",
        "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while",
    }
)  # fmt: skip
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_ESCAPABLE = re.compile(r"[A-Za-z_./-][A-Za-z0-9_./-]*", re.ASCII)
_EXPAND = re.compile(r"__|[-./]")
_ESCAPES = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}
_UNEXPAND = re.compile(r"__[^_]+__")
_UNESCAPES = {"underscores": "__", "dot": ".", "dash": "-", "slash": "/"}


def escape(name: str) -> str | None:
    """The CEL identifier the API server presents a property as, or None (it cannot be escaped).

    As escaping.go's `Escape`: a reserved word `w` is `__w__`; `__`, `.`, `-` and `/` become
    `__underscores__`, `__dot__`, `__dash__` and `__slash__`; a name that starts with a digit or
    holds any other character cannot be escaped (the API server then lists it as it is).
    """
    if not name or (name[0].isdigit() and name[0].isascii()):
        return None
    if name in _RESERVED:
        return f"__{name}__"
    if _PLAIN_NAME.fullmatch(name) and "__" not in name:
        return name
    if not _ESCAPABLE.fullmatch(name):
        return None
    return _EXPAND.sub(lambda m: _ESCAPES[m.group(0)], name)


def unescape(name: str) -> str | None:
    """The property name the API server looks up for `name`, or None (an invalid escape: no property).

    As escaping.go's `Unescape`: each `__x__` is an escape of `__`, `.`, `-` or `/`, or, making up
    the whole name, of a reserved word; any other `__x__` is invalid.
    """
    ok = True

    def replace(match: re.Match[str]) -> str:
        nonlocal ok
        contents = match.group(0)[2:-2]
        if contents in _UNESCAPES:
            return _UNESCAPES[contents]
        if contents in _RESERVED:
            ok = ok and len(match.group(0)) == len(name)
            return contents
        ok = False
        return ""

    out = _UNEXPAND.sub(replace, name)
    return out if ok else None


def presented(name: str) -> str:
    """The key a property is presented under: its escaped name, or its own if it cannot be escaped."""
    return escape(name) or name


# -- the schema nodes a rule's values can be -------------------------------------------------------


def _is_object(node: Mapping[str, Any]) -> bool:
    """An object with declared properties (`unstructuredMap` with property schemas and escaping)."""
    return isinstance(node.get("properties"), Mapping) or bool(node.get("x-kubernetes-embedded-resource"))


def _properties(node: Mapping[str, Any]) -> Mapping[str, Any]:
    raw = node.get("properties")
    return raw if isinstance(raw, Mapping) else {}


def _children(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for child in _properties(node).values():
        if isinstance(child, Mapping):
            yield child
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), Mapping):
            yield node[key]


def _nullable_object(node: Mapping[str, Any]) -> bool:
    """An object with declared properties of which one is nullable: a null field can be left out."""
    return _is_object(node) and any(
        isinstance(p, Mapping) and p.get("nullable") for p in _properties(node).values()
    )


def _open_object(node: Mapping[str, Any]) -> bool:
    """An object whose value can hold fields it does not declare (`x-kubernetes-preserve-unknown-
    fields`, or a resource's metadata): the API server does not show them (`Find`), but counts them
    in `size()`, yields a null key for each when iterating and compares them in its equality of
    objects. With declared properties, or with neither them nor `additionalProperties` (values.go
    then gives no field a schema: it shows none)."""
    if not node.get("x-kubernetes-preserve-unknown-fields"):
        return False
    return _is_object(node) or (
        node.get("type") == "object" and not isinstance(node.get("additionalProperties"), Mapping)
    )


def _hiding_object(node: Mapping[str, Any]) -> bool:
    return _nullable_object(node) or _open_object(node)


def _set_or_map_list(node: Mapping[str, Any]) -> bool:
    """A list whose equality, `in` and `+` the API server takes as a set's or a map's (values.go's
    `unstructuredSetList` and `unstructuredMapList`), not by position."""
    return node.get("type") == "array" and node.get("x-kubernetes-list-type") in ("set", "map")


_ORDERABLE_SCALARS = ("string", "integer", "boolean")


def _orderable(node: Mapping[str, Any]) -> bool:
    """Whether equality of this set or map list is, with its items in one order, CEL's equality of
    lists: set items are strings, integers or booleans the API server compares as JSON values
    (a `number` set tells 1 from 1.0, a `date-time` one two spellings of a time, which CEL's typed
    values do not); map keys are such fields under their own names (values.go looks them up by
    their escaped names)."""
    items = node.get("items")
    if not isinstance(items, Mapping):
        return False
    if node.get("x-kubernetes-list-type") == "set":
        return _plain_scalar(items)
    keys = node.get("x-kubernetes-list-map-keys")
    props = _properties(items)
    return (
        isinstance(keys, list)
        and bool(keys)
        and all(
            isinstance(k, str)
            and presented(k) == k
            and isinstance(props.get(k), Mapping)
            and _plain_scalar(props[k])
            for k in keys
        )
    )


def _plain_scalar(node: Mapping[str, Any]) -> bool:
    return (
        node.get("type") in _ORDERABLE_SCALARS
        and not node.get("format")
        and not node.get("x-kubernetes-int-or-string")
    )


def _unorderable(node: Mapping[str, Any]) -> bool:
    return _set_or_map_list(node) and not _orderable(node)


def _respelled(node: Mapping[str, Any]) -> bool:
    """Whether an object's properties are presented under names other than their own."""
    return _is_object(node) and any(presented(str(k)) != k for k in _properties(node))


@dataclass(frozen=True, slots=True)
class _Facts:
    """What a value in the expression can be: an instance of these schema nodes (by id); a list or
    map the expression built (`fresh`: a literal, `+`, a macro's result) whose items or values can
    be instances of `elems`; or a value computed from the rule's values whose schema is not
    followed (`opaque`: it can be or hold any part of them)."""

    nodes: frozenset[int] = frozenset()
    elems: frozenset[int] = frozenset()
    opaque: bool = False
    fresh: bool = False

    def join(self, other: _Facts) -> _Facts:
        fresh = (self.fresh or not self.opaque) and (other.fresh or not other.opaque)
        return _Facts(self.nodes | other.nodes, self.elems | other.elems, self.opaque or other.opaque, fresh)

    @property
    def plain(self) -> bool:
        return not self.nodes and not self.elems and not self.opaque

    @property
    def every(self) -> frozenset[int]:
        """The schema nodes the value can be or directly hold."""
        return self.nodes | self.elems


_PLAIN = _Facts()
_LISTED_EQUALITY = (
    "it compares values that are or hold an x-kubernetes-list-type set or map list, which the API "
    "server compares regardless of order (a set as a set, a map list by its keys)"
)
# Functions that hand a value on as it is, and those whose result does not depend on the order of a
# list's items.
_PASSING = frozenset({"orValue", "value", "or", "optional.of", "optional.ofNonZeroValue", "dyn"})
_ORDER_BLIND = frozenset(
    {"size", "_==_", "_!=_", "!_", "_&&_", "_||_", "sets.contains", "sets.equivalent", "sets.intersects"}
)
# Functions that compare values by CEL's equality (Kubernetes' lists and sets libraries).
_COMPARING = frozenset(
    {"indexOf", "lastIndexOf", "distinct", "sets.contains", "sets.equivalent", "sets.intersects"}
)


@dataclass(slots=True)
class Analysis:
    """Why a rule cannot be evaluated offline (`refused`, empty when it can)."""

    refused: list[str] = field(default_factory=list)
    null_sensitive: list[str] = field(default_factory=list)  # not evaluated where a field is null
    # Sets and map lists are compared (only with values of the same schema) and their order is
    # read nowhere: the rule is evaluated with their items in one order (`canonical_order`).
    canonical: bool = False


class _Analyzer:
    def __init__(self, root: Mapping[str, Any], scalars: frozenset[int]) -> None:
        self.nodes: dict[int, Mapping[str, Any]] = {}
        self._index(root)
        self.scalars = scalars
        self.out = Analysis()
        self.any_hiding = any(_hiding_object(n) for n in self.nodes.values())
        self.any_listed = any(_set_or_map_list(n) for n in self.nodes.values())
        self.any_respelled = any(_respelled(n) for n in self.nodes.values())
        self.canonical = False  # sets or map lists compared with their items in one order
        self.order_reads: list[str] = []  # where the rule reads their order
        self._holds: dict[tuple[int, Callable[[Mapping[str, Any]], bool]], bool] = {}

    def _index(self, node: Mapping[str, Any]) -> None:
        if id(node) in self.nodes:
            return
        self.nodes[id(node)] = node
        for child in _children(node):
            self._index(child)

    def refuse(self, reason: str) -> None:
        if reason not in self.out.refused:
            self.out.refused.append(reason)

    def null_sensitive(self, reason: str) -> None:
        if reason not in self.out.null_sensitive:
            self.out.null_sensitive.append(reason)

    # -- what a value may be (an opaque value may be any part of the rule's values)

    def may_be_hiding_object(self, facts: _Facts) -> bool:
        return (facts.opaque and self.any_hiding) or any(_hiding_object(self.nodes[n]) for n in facts.nodes)

    def may_hold_hiding_object(self, facts: _Facts) -> bool:
        return (facts.opaque and self.any_hiding) or any(self.holds(n, _hiding_object) for n in facts.every)

    def may_be_listed(self, facts: _Facts) -> bool:
        """Whether the value may be a set or map list itself (not one it was built from)."""
        opaque = facts.opaque and not facts.fresh and self.any_listed
        return opaque or any(_set_or_map_list(self.nodes[n]) for n in facts.nodes)

    def may_hold_listed(self, facts: _Facts, *, inside: bool = False) -> bool:
        """Whether the value may be or hold a set or map list (`inside`: in its items or fields only)."""
        if facts.opaque and self.any_listed:
            return True
        for n in facts.nodes:
            parts = list(_children(self.nodes[n])) if inside else [self.nodes[n]]
            if any(self.holds(id(p), _set_or_map_list) for p in parts):
                return True
        return any(self.holds(n, _set_or_map_list) for n in facts.elems)

    def holds(self, n: int, test: Callable[[Mapping[str, Any]], bool]) -> bool:
        if (n, test) not in self._holds:
            self._holds[(n, test)] = _any(self.nodes[n], test)
        return self._holds[(n, test)]

    def may_hold_respelled(self, facts: _Facts) -> bool:
        return (facts.opaque and self.any_respelled) or any(self.holds(n, _respelled) for n in facts.every)

    def alike(self, operands: list[_Facts]) -> bool:
        """Whether two values of one schema are compared (`self == oldSelf`, `self.a != oldSelf.a`):
        then, with the items of their sets and map lists in one order, CEL's equality of lists is
        the API server's."""
        if len(operands) != 2 or any(f.opaque or f.elems or not f.nodes for f in operands):
            return False
        schemas = {_fingerprint(self.nodes[n]) for f in operands for n in f.nodes}
        return len(schemas) == 1 and not any(self.holds(n, _unorderable) for f in operands for n in f.nodes)

    def read_order(self, what: str) -> None:
        if what not in self.order_reads:
            self.order_reads.append(what)

    def compared(self, exprs: list[cel_cost.Expr], operands: list[_Facts], *, listed: bool) -> None:
        """Operands compared by CEL's equality (`==`, `!=`, `in` a list, `indexOf`, the sets library).

        `listed`: whether the operands' own equality decides (`==`); else their items' (a list
        searched by `in`), for which the caller checks sets and map lists itself.
        """
        if any(self.may_hold_hiding_object(f) for f in operands):
            self.null_sensitive(
                "it compares objects that can hold a null field or one their schema does not declare, "
                "which the API server's equality of objects counts (trustgate leaves them out)"
            )
        if listed and any(self.may_hold_listed(f) for f in operands):
            if self.alike(operands):
                self.canonical = True
            else:
                self.refuse(_LISTED_EQUALITY)
        if any(self.may_hold_respelled(f) for f in operands) and any(
            f.opaque or f.elems or (not f.nodes and x.kind != "const")
            for x, f in zip(exprs, operands, strict=True)
        ):
            self.refuse(
                "it compares an object whose property names the API server escapes with a value not "
                "typed by the schema, whose keys the API server matches by the unescaped names"
            )

    # -- selecting a part of a value

    def member(self, facts: _Facts, key: cel_cost.Expr | None, name: str | None) -> _Facts:
        """A field (`name`) or an index or key (`key`, an expression) of a value."""
        out = _Facts(nodes=facts.elems, opaque=facts.opaque)
        for n in facts.nodes:
            node = self.nodes[n]
            if node.get("type") == "array":
                if isinstance(node.get("items"), Mapping):
                    out = out.join(_Facts(frozenset({id(node["items"])})))
                continue
            if _is_object(node):
                spelled = name if name is not None else (key.const if key is not None else None)
                if not isinstance(spelled, str):
                    if _respelled(node) and not self.is_key_variable(key):
                        self.refuse(
                            "it reads a property by a key computed at run time, of an object whose property "
                            "names the API server escapes (trustgate presents only the escaped names)"
                        )
                    out = out.join(_Facts(frozenset(id(c) for c in _properties(node).values())))
                    continue
                self.check_spelling(node, spelled)
                child = _properties(node).get(unescape(spelled) or "")
                if isinstance(child, Mapping):
                    out = out.join(_Facts(frozenset({id(child)})))
                continue
            extra = node.get("additionalProperties")
            if isinstance(extra, Mapping):
                out = out.join(_Facts(frozenset({id(extra)})))
        return out

    def check_spelling(self, node: Mapping[str, Any], spelled: str) -> None:
        raw = unescape(spelled)
        if raw is not None and raw in _properties(node) and presented(raw) != spelled:
            self.refuse(
                f"it names the property {raw!r} as {spelled!r}, which the API server also accepts; "
                f"trustgate presents it only under its escaped name {presented(raw)!r}"
            )

    def is_key_variable(self, key: cel_cost.Expr | None) -> bool:
        """Whether `key` is the variable of a comprehension over an object's keys, within its body:
        the escaped names the API server lists, which its `Find` unescapes back to the property."""
        return key is not None and key.kind == "ident" and key.name in self.key_scope

    # -- the walk

    def run(self, expr: cel_cost.Expr, env: dict[str, _Facts]) -> None:
        self.key_scope: frozenset[str] = frozenset()  # the key variables (`is_key_variable`) in scope
        self.visit(expr, env)

    def visit(self, e: cel_cost.Expr | None, env: dict[str, _Facts]) -> _Facts:
        if e is None:
            return _PLAIN
        facts = self._visit(e, env)
        return _PLAIN if e.id in self.scalars else facts

    def _visit(self, e: cel_cost.Expr, env: dict[str, _Facts]) -> _Facts:
        if e.kind == "const":
            return _PLAIN
        if e.kind == "ident":
            return env.get(e.name.lstrip("."), _PLAIN)
        if e.kind == "select":
            operand = self.visit(e.target, env)
            part = self.member(operand, None, e.name)
            return _PLAIN if e.test_only else part
        if e.kind in ("list", "map", "struct"):
            parts = [self.visit(a, env) for a in e.args]
            values = parts if e.kind == "list" else parts[1::2]
            return _Facts(
                elems=frozenset().union(*(p.nodes for p in values)),
                opaque=any(p.opaque or p.elems for p in values)
                or any(not p.plain for p in parts[::2] if e.kind != "list"),
                fresh=True,
            )
        if e.kind == "comprehension":
            return self.comprehension(e, env)
        return self.call(e, env)

    def comprehension(self, e: cel_cost.Expr, env: dict[str, _Facts]) -> _Facts:
        source = self.visit(e.iter_range, env)
        if self.may_be_hiding_object(source):
            # values.go's unstructuredMap.Iterator lists a null field by its name and yields a null
            # key for each field its schema does not declare; trustgate leaves both out.
            self.null_sensitive(
                "it iterates an object that can hold a null field or one its schema does not declare, "
                "which the API server lists (a field it does not declare as a null key; trustgate "
                "leaves them out)"
            )
        if self.may_be_listed(source) and not (
            e.accu_init is not None
            and e.accu_init.kind == "const"
            and isinstance(e.accu_init.const, (bool, int))
        ):
            self.read_order("builds a list from one (map, filter)")  # all, exists, exists_one: any order
        item = _Facts(nodes=source.elems, opaque=source.opaque)
        for n in source.nodes:
            node = self.nodes[n]
            if node.get("type") == "array" and isinstance(node.get("items"), Mapping):
                item = item.join(_Facts(frozenset({id(node["items"])})))
        inner = dict(env)
        inner[e.iter_var] = item
        accu = self.visit(e.accu_init, env)
        # The iteration variable is a key variable in the loop's body only, and only over objects
        # with declared properties whose names the API server's Find gets back from their escaped
        # form (a map's keys are its own: Find would unescape them). The body shadows any outer one
        # of the name (the iteration or the accumulator variable), as CEL scopes them.
        outer = self.key_scope
        body = outer - {e.iter_var, e.accu_var}
        if self.lists_escaped_names(source):
            body |= {e.iter_var}
        try:
            self.key_scope = body
            for _ in range(3):  # the accumulator's facts only grow; three rounds reach a fixed point here
                inner[e.accu_var] = accu
                self.visit(e.loop_condition, inner)
                grown = accu.join(self.visit(e.loop_step, inner))
                if grown == accu:
                    break
                accu = grown
            # The result sees the accumulator, not the iteration variable (CEL's comprehension scope).
            self.key_scope = outer - {e.accu_var}
            after = dict(env)
            after[e.accu_var] = accu
            return self.visit(e.result, after)
        finally:
            self.key_scope = outer

    def lists_escaped_names(self, source: _Facts) -> bool:
        """Whether iterating the value yields only escaped property names that `unescape` maps back."""
        return (
            bool(source.nodes)
            and not source.opaque
            and not source.elems
            and all(
                _is_object(self.nodes[n])
                and all(unescape(presented(str(k))) == k for k in _properties(self.nodes[n]))
                for n in source.nodes
            )
        )

    def call(self, e: cel_cost.Expr, env: dict[str, _Facts]) -> _Facts:
        target = self.visit(e.target, env) if e.target is not None else None
        args = [self.visit(a, env) for a in e.args]
        name = e.name
        if name in ("_[_]", "_[?_]") and len(args) == 2:
            if self.may_be_listed(args[0]):
                self.read_order("indexes one")
            return self.member(args[0], e.args[1], None)
        if name == "_?._" and len(args) == 2 and isinstance(e.args[1].const, str):
            return self.member(args[0], None, e.args[1].const)
        if name == "@in" and len(args) == 2:
            self.contains(args[1], e.args[0])
            if self.may_be_list(args[1]):
                self.compared(list(e.args), args, listed=False)
                if self.may_hold_listed(args[0]) or self.may_hold_listed(args[1], inside=True):
                    self.refuse(_LISTED_EQUALITY)
            return _PLAIN
        if name == "_?_:_" and len(args) == 3:
            return args[1].join(args[2])
        exprs = [*(x for x in [e.target] if x is not None), *e.args]
        everything = [*(a for a in [target] if a is not None), *args]
        if name in ("_==_", "_!=_"):
            self.compared(exprs, everything, listed=True)
        if name in _COMPARING:
            self.compared(exprs, everything, listed=False)
            # The lists searched compare their items; indexOf's argument is compared whole.
            searched = everything[:1] if name in ("indexOf", "lastIndexOf") else everything
            if any(self.may_hold_listed(f, inside=True) for f in searched) or (
                name in ("indexOf", "lastIndexOf") and any(self.may_hold_listed(f) for f in everything[1:])
            ):
                self.refuse(_LISTED_EQUALITY)
        if name == "_+_" and everything and self.may_be_listed(everything[0]):
            self.refuse(
                "it adds to an x-kubernetes-list-type set or map list, which the API server takes as a "
                "union (set) or a merge by key (map), not a concatenation"
            )
        if name == "_+_" and any(self.may_hold_listed(f) for f in everything[1:]):
            self.read_order("adds one to a list")
        if name == "_+_":  # a concatenation of lists (or of strings, bytes: no schema nodes)
            items = frozenset(
                id(self.nodes[n]["items"])
                for p in everything
                for n in p.nodes
                if isinstance(self.nodes[n].get("items"), Mapping)
            )
            elems = frozenset().union(*(p.elems for p in everything)) | items
            # cel-go's `+` of a list the expression built hands back the other operand itself when
            # one is empty (baseList.Add): `[] + self.tags`, `self.x.filter(...) + self.tags` can be
            # the set or map list, which the API server then compares as one. So the sum may be any
            # set or map list added, whatever the other operand (and an opaque one stays opaque).
            listed = frozenset(n for p in everything for n in p.nodes if _set_or_map_list(self.nodes[n]))
            return _Facts(
                nodes=listed,
                elems=elems,
                opaque=any(p.opaque for p in everything),
                fresh=not any(p.opaque and not p.fresh for p in everything),
            )
        if name == "size" and any(self.may_be_hiding_object(f) for f in everything):
            self.null_sensitive(
                "it takes the size() of an object that can hold a null field or one its schema does not "
                "declare, which the API server counts (trustgate leaves them out)"
            )
        if name in _PASSING:
            joined = _PLAIN
            for part in everything:
                joined = joined.join(part)
            return joined
        if name not in _ORDER_BLIND and any(self.may_hold_listed(f) for f in everything):
            self.read_order(f"passes one to {name}()")
        return _Facts(opaque=any(not p.plain for p in everything))

    def may_be_list(self, facts: _Facts) -> bool:
        return facts.opaque or facts.fresh or any(self.nodes[n].get("type") == "array" for n in facts.nodes)

    def contains(self, container: _Facts, item: cel_cost.Expr) -> None:
        """`item in container`: a key lookup in a map or an object (by `Find`), else a search of a list."""
        for n in container.nodes:
            node = self.nodes[n]
            if _is_object(node):
                if isinstance(item.const, str):
                    self.check_spelling(node, item.const)
                elif _respelled(node) and not self.is_key_variable(item):
                    self.refuse(
                        "it looks up a property by a key computed at run time, in an object whose property "
                        "names the API server escapes (trustgate presents only the escaped names)"
                    )


def analyze(program: Any, node: Mapping[str, Any]) -> Analysis:
    """Why a rule at this schema node cannot be evaluated as the API server does (nothing: it can).

    Args:
        program: the compiled rule (`cel.Program`).
        node: the schema node the rule is on (`self` and `oldSelf` are its values).
    """
    try:
        root = cel_cost.parse_checked(program.checked())[0]
        scalars = cel_cost.primitive_ids(program.checked())
    except ValueError:
        out = Analysis()
        if _any(node, _respelled):
            out.refused.append("it was compiled without the type checker, so what it reads is not known")
        if _any(node, _hiding_object):
            out.null_sensitive.append(
                "it was compiled without the type checker, so what it reads is not known"
            )
        if _any(node, _set_or_map_list) and not out.refused:
            out.refused.append("it was compiled without the type checker, so what it reads is not known")
        return out
    analyzer = _Analyzer(node, scalars)
    facts = _Facts(frozenset({id(node)}))
    analyzer.run(root, {"self": facts, "oldSelf": facts})
    out = analyzer.out
    if analyzer.canonical and analyzer.order_reads:
        out.refused.append(
            "it compares x-kubernetes-list-type set or map lists, which trustgate does with their items in "
            f"one order, and it also reads that order (it {', '.join(analyzer.order_reads)})"
        )
    out.canonical = analyzer.canonical and not out.refused
    return out


def canonical_order(node: Mapping[str, Any]) -> Callable[[list[Any]], list[Any]] | None:
    """How to put the items of a set or map list in the one order `Analysis.canonical` rules are
    evaluated with (None: not such a list): a set's by value, a map list's by its keys."""
    if not _set_or_map_list(node):
        return None
    if node.get("x-kubernetes-list-type") == "set":
        return lambda items: sorted(items, key=_order_key)
    keys = [str(k) for k in node.get("x-kubernetes-list-map-keys") or []]
    return lambda items: sorted(
        items, key=lambda i: tuple(_order_key(i.get(k) if isinstance(i, Mapping) else None) for k in keys)
    )


def _order_key(value: Any) -> tuple[Any, ...]:
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, (int, float)):
        return (2, value, type(value).__name__)
    if isinstance(value, str):
        return (3, value)
    return (4, json.dumps(value, sort_keys=True, default=str))


def _fingerprint(node: Mapping[str, Any]) -> str:
    """A schema node's content, its rules left out (two properties of one type are alike)."""

    def strip(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: strip(v) for k, v in value.items() if k != "x-kubernetes-validations"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(node), sort_keys=True, default=str)


def _any(node: Mapping[str, Any], test: Callable[[Mapping[str, Any]], bool]) -> bool:
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if test(current):
            return True
        stack.extend(_children(current))
    return False


def holds_hidden_field(value: Any, node: Mapping[str, Any]) -> bool:
    """Whether a value of this (`view`) schema node holds a field the API server does not show: a
    null one in an object with declared properties, or one an open object does not declare."""
    if value is None or not isinstance(node, Mapping):
        return False
    if isinstance(value, Mapping):
        if _is_object(node) or _open_object(node):
            props = _properties(node)
            if _open_object(node) and any(k not in props for k in value):
                return True
            return any(v is None or holds_hidden_field(v, props[k]) for k, v in value.items() if k in props)
        extra = node.get("additionalProperties")
        return isinstance(extra, Mapping) and any(holds_hidden_field(v, extra) for v in value.values())
    if isinstance(value, list) and isinstance(node.get("items"), Mapping):
        return any(holds_hidden_field(v, node["items"]) for v in value)
    return False


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


_STRING = {"type": "string"}
# What WithTypeAndObjectMeta declares: kind, apiVersion, and of metadata only name and generateName.
# The metadata is open: its other fields are in the value, not shown.
_META = {
    "type": "object",
    "properties": {"name": _STRING, "generateName": _STRING},
    "x-kubernetes-preserve-unknown-fields": True,
}


def view(
    node: Mapping[str, Any], *, root: bool = False, memo: dict[int, Mapping[str, Any]] | None = None
) -> Mapping[str, Any]:
    """The schema as the API server types a rule's values from it: at a resource's root and in an
    embedded resource, `kind` and `apiVersion` are strings and `metadata` shows only `name` and
    `generateName` (k8s.io/apiserver's `WithTypeAndObjectMeta`, which the CRD validator applies at
    the root and `UnstructuredToVal` in embedded resources). `memo` shares the work between rules.
    """
    memo = {} if memo is None else memo
    key = id(node) if not root else -id(node)
    if key in memo:
        return memo[key]
    out = dict(node)
    memo[key] = out  # a schema is a tree; this also ends a cycle should one be given
    props = node.get("properties")
    if isinstance(props, Mapping):
        out["properties"] = {k: view(v, memo=memo) if isinstance(v, Mapping) else v for k, v in props.items()}
    for name in ("items", "additionalProperties"):
        if isinstance(node.get(name), Mapping):
            out[name] = view(node[name], memo=memo)
    if root or node.get("x-kubernetes-embedded-resource"):
        current = _properties(out)
        meta = _mapping(current.get("metadata"))
        meta_props = _properties(meta)
        declared = (
            _mapping(current.get("kind")).get("type") == "string"
            and _mapping(current.get("apiVersion")).get("type") == "string"
            and meta.get("type") == "object"
            and "properties" in meta
            and all(_mapping(meta_props.get(n)).get("type") == "string" for n in ("name", "generateName"))
        )
        if not declared:
            out["properties"] = {**current, "kind": _STRING, "apiVersion": _STRING, "metadata": _META}
    return out
