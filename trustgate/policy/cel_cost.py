"""The estimated cost of CRD validation rules, as the API server checks it when a CRD is written.

Owns: the API server's static cost limits on `x-kubernetes-validations`
(apiextensions-apiserver: `StaticEstimatedCostLimit`, 10,000,000 per rule
times the number of times the rule's value can occur; and
`StaticEstimatedCRDCostLimit`, 100,000,000 for all the rules of a CRD), the
types and sizes the API server derives from a structural schema for CEL
(`maxLength`, `maxItems`, `maxProperties`, or else what fits in a 3 MiB
request), and an estimate of an expression's cost following cel-go's
`checker.Cost` over the checked expression the runtime gives
(`Program.checked()`: its AST and the overloads it resolved).

The estimate is a lower bound of the API server's: every cost and size it
counts is one cel-go counts the same way, and where it lacks what the API
server knows (a size it cannot derive, a Kubernetes library function's own
cost, an overload the typed API server would pick among several that an
untyped check leaves open) it counts the least. So a rule refused here is
refused by the API server; a rule the API server refuses by a small margin
may pass here.

Leaves out: ValidatingAdmissionPolicies (the API server types `object` as
`dyn` and checks no estimated cost when a policy is written; it limits the
cost at run time, see ADR 10), and the run-time limits of CRD rules.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PER_CRD_LIMIT",
    "PER_RULE_LIMIT",
    "DeclType",
    "Expr",
    "budget_message",
    "decl_type",
    "estimate",
    "max_cardinality",
    "parse_checked",
    "primitive_ids",
]

PER_RULE_LIMIT = 10_000_000  # cost units; apiextensions' StaticEstimatedCostLimit
PER_CRD_LIMIT = 100_000_000  # cost units; apiextensions' StaticEstimatedCRDCostLimit
MAX_REQUEST_BYTES = 3 * 1024 * 1024  # the API server's request limit, from which it bounds sizes
_MAX = 2**64 - 1  # cel-go's costs are uint64 and saturate

# cel-go common/cost.go
_SELECT_AND_IDENT = 1
_LIST_CREATE = 10
_MAP_CREATE = 30
_STRUCT_CREATE = 40
_STRING_TRAVERSAL = 0.1
_REGEX_STRING_LENGTH = 0.25


# -- the checked expression (cel.expr.CheckedExpr, read by protobuf) ---------------------------

# The messages of cel-spec's cel/expr/syntax.proto and checked.proto this module reads: their field
# numbers and types as published (fields it does not read are left out: protobuf skips them; the
# messages nested there, such as Expr.Select, are top-level here: names are not on the wire).
# FieldDescriptorProto.Type numbers
_FIELD_TYPES = {"int64": 3, "uint64": 4, "int32": 5, "bool": 8, "string": 9, "bytes": 12, "double": 1}
_CEL_MESSAGES: dict[str, list[tuple[str, int, str]]] = {
    # message: (field, number, type); "repeated X" and "map<int64, X>" as in the .proto
    "Constant": [
        ("null_value", 1, "int32"),
        ("bool_value", 2, "bool"),
        ("int64_value", 3, "int64"),
        ("uint64_value", 4, "uint64"),
        ("double_value", 5, "double"),
        ("string_value", 6, "string"),
        ("bytes_value", 7, "bytes"),
    ],
    "Ident": [("name", 1, "string")],
    "Select": [("operand", 1, "Expr"), ("field", 2, "string"), ("test_only", 3, "bool")],
    "Call": [("target", 1, "Expr"), ("function", 2, "string"), ("args", 3, "repeated Expr")],
    "CreateList": [("elements", 1, "repeated Expr")],
    "Entry": [("map_key", 3, "Expr"), ("value", 4, "Expr")],
    "CreateStruct": [("message_name", 1, "string"), ("entries", 2, "repeated Entry")],
    "Comprehension": [
        ("iter_var", 1, "string"),
        ("iter_range", 2, "Expr"),
        ("accu_var", 3, "string"),
        ("accu_init", 4, "Expr"),
        ("loop_condition", 5, "Expr"),
        ("loop_step", 6, "Expr"),
        ("result", 7, "Expr"),
        ("iter_var2", 8, "string"),
    ],
    "Expr": [
        ("id", 2, "int64"),
        ("const_expr", 3, "Constant"),
        ("ident_expr", 4, "Ident"),
        ("select_expr", 5, "Select"),
        ("call_expr", 6, "Call"),
        ("list_expr", 7, "CreateList"),
        ("struct_expr", 8, "CreateStruct"),
        ("comprehension_expr", 9, "Comprehension"),
    ],
    "Reference": [("overload_id", 3, "repeated string")],
    "Type": [("primitive", 3, "int32"), ("well_known", 5, "int32")],  # enums, read as their numbers
    "CheckedExpr": [
        ("reference_map", 2, "map<int64, Reference>"),
        ("type_map", 3, "map<int64, Type>"),
        ("expr", 4, "Expr"),
    ],
}
_ONEOF = {"Constant": "constant_kind", "Expr": "expr_kind"}  # every field but `id` is in the oneof
_SCALAR_PRIMITIVES = frozenset({1, 2, 3, 4})  # Type.PrimitiveType: BOOL, INT64, UINT64, DOUBLE
_PRIMITIVES = frozenset({1, 2, 3, 4, 5, 6})  # and STRING, BYTES
_SCALAR_WELL_KNOWN = frozenset({2, 3})  # Type.WellKnownType: TIMESTAMP, DURATION


@functools.cache
def _checked_expr_class() -> Any:
    """The CheckedExpr message class, from a descriptor built of `_CEL_MESSAGES` (in a pool of its own)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(name="trustgate/cel_expr_subset.proto", package="cel.expr")
    proto.syntax = "proto3"
    kinds = descriptor_pb2.FieldDescriptorProto
    for name, fields in _CEL_MESSAGES.items():
        message = proto.message_type.add(name=name)
        oneof = _ONEOF.get(name)
        if oneof:
            message.oneof_decl.add(name=oneof)
        for field_name, number, kind in fields:
            spec = message.field.add(name=field_name, number=number, label=kinds.LABEL_OPTIONAL)
            if kind.startswith("map<"):
                value = kind.split(", ")[1].rstrip(">")
                entry = message.nested_type.add(
                    name="".join(p.title() for p in field_name.split("_")) + "Entry"
                )
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, label=kinds.LABEL_OPTIONAL, type=kinds.TYPE_INT64)
                entry.field.add(
                    name="value",
                    number=2,
                    label=kinds.LABEL_OPTIONAL,
                    type=kinds.TYPE_MESSAGE,
                    type_name=f".cel.expr.{value}",
                )
                spec.label, spec.type, spec.type_name = (
                    kinds.LABEL_REPEATED,
                    kinds.TYPE_MESSAGE,
                    f".cel.expr.{name}.{entry.name}",
                )
                continue
            if kind.startswith("repeated "):
                spec.label, kind = kinds.LABEL_REPEATED, kind.removeprefix("repeated ")
            if kind in _FIELD_TYPES:
                spec.type = _FIELD_TYPES[kind]
            else:
                spec.type, spec.type_name = kinds.TYPE_MESSAGE, f".cel.expr.{kind}"
            if oneof and field_name != "id":
                spec.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("cel.expr.CheckedExpr"))


@dataclass(slots=True)
class Expr:
    """One node of cel.expr.Expr: `kind` is const, ident, select, call, list, map, struct or comprehension."""

    id: int
    kind: str
    name: str = ""  # ident name, select field, call function
    const: Any = None  # a literal's value (str, bytes, int, float, bool or None)
    test_only: bool = False
    target: Expr | None = None  # select operand, call target
    args: list[Expr] = field(default_factory=list)  # call args, list elements, map keys and values
    iter_var: str = ""
    iter_var2: str = ""
    accu_var: str = ""
    iter_range: Expr | None = None
    accu_init: Expr | None = None
    loop_condition: Expr | None = None
    loop_step: Expr | None = None
    result: Expr | None = None


def _constant(message: Any) -> Any:
    kind = message.WhichOneof("constant_kind")
    if kind in (None, "null_value"):
        return None
    return getattr(message, kind)  # bool, int, float, str or bytes


def _expr(message: Any) -> Expr:
    node = Expr(message.id, "const")
    kind = message.WhichOneof("expr_kind")
    if kind == "const_expr":
        node.const = _constant(message.const_expr)
    elif kind == "ident_expr":
        node.kind, node.name = "ident", message.ident_expr.name
    elif kind == "select_expr":
        select = message.select_expr
        node.kind, node.name, node.test_only = "select", select.field, select.test_only
        node.target = _expr(select.operand) if select.HasField("operand") else None
    elif kind == "call_expr":
        call = message.call_expr
        node.kind, node.name = "call", call.function
        node.target = _expr(call.target) if call.HasField("target") else None
        node.args = [_expr(a) for a in call.args]
    elif kind == "list_expr":
        node.kind, node.args = "list", [_expr(e) for e in message.list_expr.elements]
    elif kind == "struct_expr":
        struct = message.struct_expr
        node.kind = "struct" if struct.message_name else "map"
        for entry in struct.entries:
            node.args.extend(_expr(entry.map_key) for _ in range(entry.HasField("map_key")))
            node.args.extend(_expr(entry.value) for _ in range(entry.HasField("value")))
    elif kind == "comprehension_expr":
        loop = message.comprehension_expr
        node.kind = "comprehension"
        node.iter_var, node.iter_var2, node.accu_var = loop.iter_var, loop.iter_var2, loop.accu_var
        for name in ("iter_range", "accu_init", "loop_condition", "loop_step", "result"):
            if loop.HasField(name):
                setattr(node, name, _expr(getattr(loop, name)))
    return node


def parse_checked(serialized: bytes) -> tuple[Expr, dict[int, tuple[str, ...]], frozenset[int]]:
    """The AST, the overload ids per call, and the ids of scalar-typed nodes of a CheckedExpr.

    A scalar is what cel-go's `isScalar` calls one (bool, int, uint, double, timestamp, duration):
    its size is 1. The serialized form may be wrapped in a protobuf Any.

    Raises:
        ValueError: `serialized` is not a (wrapped) CheckedExpr, or it has no expression.
    """
    from google.protobuf import any_pb2
    from google.protobuf.message import DecodeError

    checked = _checked_expr_class()()
    try:
        wrapper = any_pb2.Any.FromString(serialized)
        if wrapper.type_url.endswith("CheckedExpr"):
            serialized = wrapper.value
        checked.ParseFromString(serialized)
    except DecodeError as e:
        raise ValueError(f"the checked expression cannot be read: {e}") from e
    if not checked.HasField("expr"):
        raise ValueError("the checked expression has no expr")
    overloads = {key: tuple(ref.overload_id) for key, ref in checked.reference_map.items() if ref.overload_id}
    scalars = frozenset(
        key
        for key, kind in checked.type_map.items()
        if kind.primitive in _SCALAR_PRIMITIVES or kind.well_known in _SCALAR_WELL_KNOWN
    )
    return _expr(checked.expr), overloads, scalars


def primitive_ids(serialized: bytes) -> frozenset[int]:
    """The ids of the nodes of a CheckedExpr the checker typed as a primitive (bool, int, uint,
    double, string, bytes) or a timestamp or duration: values that hold no list or map.

    Raises:
        ValueError: `serialized` is not a (wrapped) CheckedExpr.
    """
    from google.protobuf import any_pb2
    from google.protobuf.message import DecodeError

    checked = _checked_expr_class()()
    try:
        wrapper = any_pb2.Any.FromString(serialized)
        checked.ParseFromString(wrapper.value if wrapper.type_url.endswith("CheckedExpr") else serialized)
    except DecodeError as e:
        raise ValueError(f"the checked expression cannot be read: {e}") from e
    return frozenset(
        key
        for key, kind in checked.type_map.items()
        if kind.primitive in _PRIMITIVES or kind.well_known in _SCALAR_WELL_KNOWN
    )


# -- types and sizes from a structural schema (k8s.io/apiserver/pkg/cel/common) --------


@dataclass(slots=True)
class DeclType:
    """What the API server declares for a schema node: its kind, its most elements, its least JSON size."""

    kind: str  # object, list, map, string, bytes, int, double, bool, dyn, timestamp, duration
    max_elements: int = 0
    min_size: int = 0
    fields: dict[str, DeclType] = field(default_factory=dict)
    elem: DeclType | None = None


_MIN_STRING = 2  # ""
_STRING_MAX = MAX_REQUEST_BYTES - 2
# The least JSON size of a duration, a date and a date-time string, with their quotes.
_TIME_MIN_SIZE = {"duration": 3, "date": 12, "date-time": 21}
# Their longest string as the API server bounds it: Kubernetes' figures put duration and date-time
# in 31..40 (an equality of two costs 4); a date is "YYYY-MM-DD". The least of each range.
_TIME_MAX_LENGTH = {"duration": 31, "date": 10, "date-time": 31}


def _int(value: Any) -> int | None:
    return max(value, 0) if isinstance(value, int) and not isinstance(value, bool) else None


def decl_type(schema: Mapping[str, Any], *, root: bool = False) -> DeclType | None:
    """The CEL type the API server declares for a structural schema node (None: not typed for CEL)."""
    if schema.get("x-kubernetes-int-or-string"):
        return DeclType("dyn", _STRING_MAX, 1)
    if root or schema.get("x-kubernetes-embedded-resource"):
        schema = _with_type_and_object_meta(schema)
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, Mapping):
            return None
        elem = decl_type(items, root=bool(items.get("x-kubernetes-embedded-resource")))
        if elem is None:
            return None
        most = _int(schema.get("maxItems"))
        if most is None:
            most = (MAX_REQUEST_BYTES - 2) // (elem.min_size + 1)
        return DeclType("list", most, 2, elem=elem)
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            elem = decl_type(extra, root=bool(extra.get("x-kubernetes-embedded-resource")))
            if elem is None:
                return None
            most = _int(schema.get("maxProperties"))
            if most is None:
                most = (MAX_REQUEST_BYTES - 2) // (elem.min_size + 6)
            return DeclType("map", most, 2, elem=elem)
        required = set(schema.get("required") or ())
        out = DeclType("object", 0, 2)
        for name, prop in (schema.get("properties") or {}).items():
            if not isinstance(prop, Mapping):
                continue
            typed = decl_type(prop, root=bool(prop.get("x-kubernetes-embedded-resource")))
            if typed is None:
                continue
            out.fields[str(name)] = typed
            if name in required and prop.get("default") is None:
                out.min_size += len(str(name)) + typed.min_size + 4
        return out
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "byte":
            most = _int(schema.get("maxLength"))
            return DeclType("bytes", _STRING_MAX if most is None else most, _MIN_STRING)
        if fmt in _TIME_MIN_SIZE:
            most = _TIME_MAX_LENGTH[str(fmt)]
            return DeclType("duration" if fmt == "duration" else "timestamp", most, _TIME_MIN_SIZE[str(fmt)])
        most = _int(schema.get("maxLength"))
        if most is not None:
            return DeclType("string", most * 4, _MIN_STRING)  # maxLength counts code points; 4 bytes each
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return DeclType(
                "string", max((len(v) for v in enum if isinstance(v, str)), default=0), _MIN_STRING
            )
        return DeclType("string", _STRING_MAX, _MIN_STRING)
    if kind == "boolean":
        return DeclType("bool", 0, 4)
    if kind == "number":
        return DeclType("double", 0, 1)
    if kind == "integer":
        return DeclType("int", 0, 1)
    return None


def _with_type_and_object_meta(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """`apiVersion`, `kind` and `metadata.name`/`generateName` are readable at a resource's root."""
    properties = dict(schema.get("properties") or {})
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    meta = dict(properties.get("metadata") or {"type": "object"})
    meta_props = dict(meta.get("properties") or {})
    meta_props.setdefault("name", {"type": "string"})
    meta_props.setdefault("generateName", {"type": "string"})
    meta["properties"] = meta_props
    meta.setdefault("type", "object")
    properties["metadata"] = meta
    return {**schema, "type": "object", "properties": properties}


def max_cardinality(min_size: int) -> int:
    """How often a value of this least JSON size can occur in one request (one comma between each)."""
    return MAX_REQUEST_BYTES // (min_size + 1)


def budget_message(what: str, cost: int, limit: int) -> str:
    """The API server's words for an estimate over its limit."""
    factor = cost / limit
    if factor > 100.0:
        text = "more than 100x"
    elif factor < 1.5:
        text = f"{factor:f}x"
    else:
        text = f"{factor:.1f}x"
    return (
        f"{what} exceeds budget by factor of {text} (try simplifying the rule, or adding maxItems, "
        "maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )


# -- the estimate (cel-go checker/cost.go, the maximum only) ----------------------------


def _sat(value: float) -> int:
    return _MAX if value >= _MAX else int(value)


def _factor(size: int, factor: float) -> int:
    return _sat(math.ceil(size * factor)) if size < _MAX else _MAX


@dataclass(slots=True)
class _Local:
    path: tuple[str, ...] | None
    size: int | None


class _Coster:
    def __init__(
        self,
        overloads: Mapping[int, Sequence[str]],
        scalars: frozenset[int],
        roots: Mapping[str, DeclType],
    ) -> None:
        self.overloads = overloads
        self.scalars = scalars
        self.roots = roots
        self.paths: dict[int, tuple[str, ...] | None] = {}
        self.sizes: dict[int, int] = {}
        self.locals: dict[str, list[_Local]] = {}

    # paths and sizes

    def local(self, name: str) -> _Local | None:
        stack = self.locals.get(name)
        return stack[-1] if stack else None

    def path(self, e: Expr) -> tuple[str, ...] | None:
        if e.kind == "ident":
            found = self.local(e.name)
            if found is not None:
                return found.path
        return self.paths.get(e.id)

    def decl(self, e: Expr) -> DeclType | None:
        return self.resolve(e)[0]

    def resolve(self, e: Expr) -> tuple[DeclType | None, bool]:
        """The declared type at e's path, and whether the API server's size estimator finds it.

        Its estimator follows `@items`, `@values`, `@keys` and object fields; a field selected
        from a map (`m.key`) has the map's value type, but no size from the estimator.
        """
        path = self.path(e)
        if not path or path[0] not in self.roots:
            return None, False
        node: DeclType | None = self.roots[path[0]]
        sized = True
        for step in path[1:]:
            if node is None:
                return None, False
            if step in ("@items", "@values"):
                node = node.elem
            elif step in ("@keys", "@indices"):
                node = DeclType("string", 0, 2) if node.kind == "map" else DeclType("int")
                sized = node.kind == "string" and sized
            elif node.kind == "map":
                node, sized = node.elem, False
            else:
                node = node.fields.get(step)
        return node, sized

    def size(self, e: Expr) -> int:
        """The most elements (characters, items, entries) of e's value; 0 where not known."""
        if e.id in self.sizes:
            return self.sizes[e.id]
        if e.kind == "const":
            if isinstance(e.const, str):
                return len(e.const)
            if isinstance(e.const, bytes):
                return len(e.const)
            return 1
        if e.kind in ("list", "map"):
            return len(e.args) if e.kind == "list" else len(e.args) // 2
        typed, sized = self.resolve(e)
        if typed is not None and sized:
            return typed.max_elements
        if e.id in self.scalars or (typed is not None and typed.kind in _SCALARS):
            return 1
        if e.kind == "ident":
            found = self.local(e.name)
            if found is not None and found.size is not None:
                return found.size
        return 0

    # costs

    def cost(self, e: Expr | None) -> int:
        if e is None or e.kind == "const":
            return 0
        if e.kind == "ident":
            found = self.local(e.name)
            self.paths[e.id] = found.path if found is not None else (e.name,)
            return _SELECT_AND_IDENT
        if e.kind == "select":
            assert e.target is not None
            total = self.cost(e.target)
            operand = self.path(e.target)
            self.paths[e.id] = (*operand, e.name) if operand else None
            if e.test_only:
                return 0  # a presence test costs nothing (Kubernetes: nor its operand)
            typed = self.decl(e.target)
            if typed is not None and typed.kind in ("object", "map"):
                total += _SELECT_AND_IDENT
            return total
        if e.kind == "call":
            return self.call(e)
        if e.kind == "list":
            return _sat(sum(self.cost(a) for a in e.args) + _LIST_CREATE)
        if e.kind == "map":
            return _sat(sum(self.cost(a) for a in e.args) + _MAP_CREATE)
        if e.kind == "struct":
            return _sat(sum(self.cost(a) for a in e.args) + _STRUCT_CREATE)
        if e.kind == "comprehension":
            return self.comprehension(e)
        return 0

    def push(self, name: str, path: tuple[str, ...] | None, size: int | None) -> None:
        self.locals.setdefault(name, []).append(_Local(path, size))

    def pop(self, name: str) -> None:
        self.locals[name].pop()

    def comprehension(self, e: Expr) -> int:
        assert e.iter_range is not None and e.accu_init is not None
        bind = (
            e.iter_range.kind == "list"
            and not e.iter_range.args
            and e.loop_condition is not None
            and e.loop_condition.kind == "const"
            and e.loop_condition.const is False
            and e.accu_var not in ("@result", "__result__")
        )
        total = self.cost(e.iter_range) + self.cost(e.accu_init)
        self.push(e.accu_var, self.path(e.accu_init), self.size(e.accu_init))
        if bind:
            total += self.cost(e.result)
            self.pop(e.accu_var)
            if e.result is not None:
                self.sizes[e.id] = self.size(e.result)
            return _sat(total)
        range_path = self.path(e.iter_range)
        typed = self.decl(e.iter_range)
        is_map = (typed is not None and typed.kind == "map") or e.iter_range.kind == "map"
        if e.iter_var2:
            key = (*range_path, "@keys" if is_map else "@indices") if range_path else None
            value = (*range_path, "@values" if is_map else "@items") if range_path else None
            self.push(e.iter_var, key, None)
            self.push(e.iter_var2, value, None)
        else:
            step = "@keys" if is_map else "@items"
            self.push(e.iter_var, (*range_path, step) if range_path else None, None)
        per_item = self.cost(e.loop_condition) + self.cost(e.loop_step)
        self.pop(e.iter_var)
        if e.iter_var2:
            self.pop(e.iter_var2)
        total += self.cost(e.result)
        self.pop(e.accu_var)
        count = self.size(e.iter_range)
        total = _sat(total + count * per_item)
        if e.accu_init.kind == "const":
            self.sizes[e.id] = self.size(e.accu_init)
        elif e.accu_init.kind in ("list", "map"):
            self.sizes[e.id] = count
        return total

    def call(self, e: Expr) -> int:
        if e.name == "dyn" and e.args:
            cost = 1 + self.cost(e.args[0])
            self.sizes[e.id] = self.size(e.args[0])
            self.paths[e.id] = self.path(e.args[0])
            return cost
        arg_costs = [self.cost(a) for a in e.args]
        ids = self.overloads.get(e.id, ())
        if not ids:
            return 0
        total = self.cost(e.target) if e.target is not None else 0
        # An untyped check may leave several overloads where the typed API server resolves one:
        # the cheapest of them keeps the estimate a lower bound.
        estimates = [self.function(e, overload, arg_costs) for overload in ids]
        fn = min(c for c, _ in estimates)
        sizes = [s for _, s in estimates if s is not None]
        if sizes:
            self.sizes[e.id] = min(sizes)
        if e.args and any(i in ("index_list", "index_map") for i in ids):
            typed = self.decl(e.args[0])
            base = self.path(e.args[0])
            if typed is not None and base:
                self.paths[e.id] = (*base, "@values" if typed.kind == "map" else "@items")
        return _sat(total + fn)

    def function(self, e: Expr, overload: str, arg_costs: list[int]) -> tuple[int, int | None]:
        """The cost of one overload (with its arguments') and its result's size, when known."""
        args = e.args
        argsum = _sat(sum(arg_costs))
        if overload in ("starts_with_string", "ends_with_string") and len(args) == 1:
            return _sat(_factor(self.size(args[0]), _STRING_TRAVERSAL) + argsum), None
        if overload == "in_list" and len(args) == 2:
            return _sat(self.size(args[1]) + argsum), None
        if overload == "matches_string" and len(args) in (1, 2):
            text, pattern = (e.target, args[0]) if e.target is not None else (args[0], args[1])
            assert text is not None
            cost = _factor(self.size(text) + 1, _STRING_TRAVERSAL) * _factor(
                self.size(pattern), _REGEX_STRING_LENGTH
            )
            return _sat(cost + argsum), None
        if overload == "contains_string" and e.target is not None and len(args) == 1:
            cost = _factor(self.size(e.target), _STRING_TRAVERSAL) * _factor(
                self.size(args[0]), _STRING_TRAVERSAL
            )
            return _sat(cost + argsum), None
        if overload in ("logical_or", "logical_and"):
            return argsum, None
        if overload == "conditional" and len(args) == 3:
            size = max(self.size(args[1]), self.size(args[2]))
            return _sat(arg_costs[0] + max(arg_costs[1], arg_costs[2])), size
        if overload in ("add_string", "add_bytes", "add_list") and len(args) == 2:
            size = _sat(self.size(args[0]) + self.size(args[1]))
            if overload == "add_list":
                return _sat(1 + argsum), size
            return _sat(_factor(size, _STRING_TRAVERSAL) + argsum), size
        if overload in _COMPARE_SIZED and len(args) == 2:
            smallest = min(self.size(args[0]), self.size(args[1]))
            return _sat(_factor(smallest, _STRING_TRAVERSAL) + argsum), None
        return _sat(1 + argsum), None


_SCALARS = frozenset({"bool", "int", "double", "timestamp", "duration"})
_COMPARE_SIZED = frozenset(
    {
        "less_string",
        "greater_string",
        "less_equals_string",
        "greater_equals_string",
        "less_bytes",
        "greater_bytes",
        "less_equals_bytes",
        "greater_equals_bytes",
        "equals",
        "not_equals",
    }
)


def estimate(serialized: bytes, roots: Mapping[str, DeclType]) -> int:
    """A lower bound of the API server's estimated maximum cost of one checked expression.

    Args:
        serialized: the runtime's serialized CheckedExpr (`cel.Program.checked()`).
        roots: the declared type of each top-level variable the API server types (`self`).

    Raises:
        ValueError: the serialized expression cannot be read.
    """
    root, overloads, scalars = parse_checked(serialized)
    return _Coster(overloads, scalars, roots).cost(root)
