"""What the API server refuses when a ValidatingAdmissionPolicy is written, beyond compiling it.

Owns: the checks k8s.io/apiserver makes of each compiled expression of a policy, judged on
trustgate's checked AST:

1. Result types (admission/plugin/cel/compile.go, `CompileCELExpression`): the output type must
   be exactly one of the field's return types (`IsExactType`), so `dyn` is no bool. Validations
   and matchConditions need bool, messageExpression string, auditAnnotations string or
   null_type; variables take anything (their ReturnTypes hold cel.AnyType).
2. Homogeneous aggregate literals (environment/base.go: `cel.HomogeneousAggregateLiterals()` and,
   since 1.29, `cel.ValidateHomogeneousAggregateLiterals()`; cel-go's validator.go): every
   element of a list literal, and every key and every value of a map literal, has the type of
   the first (`IsEquivalentType`: `dyn` matches only `dyn`), except in a `format` call's
   arguments.
3. Declarations (compile.go's createEnvForOpts; validation.go says which per field): `params`
   only where the policy has a paramKind, `authorizer` nowhere in a messageExpression,
   `variables` nowhere in a matchCondition (compiled without composition), and of
   `variables` only the fields of the variables defined before (CompositedCompiler adds each
   variable's field as it compiles it): "undeclared reference to 'params'", "undefined field".
4. Regex literals: `cel.ValidateRegexLiterals()` compiles the first argument of a `matches` call
   (`s.matches(re)`: the pattern; `matches(s, re)`: the string) when it is a literal, and the
   program's regex optimisations (`cel.OptOptimize`: `matches`; Kubernetes' regex library:
   `find`, `findAll`) compile a literal pattern when the program is made, which fails the
   policy ("program instantiation failed"). Go's regexp is RE2's syntax less `\\C`.

trustgate types `request`, `namespaceObject`, `variables` and some library results as `dyn`
where the API server knows their type, so a `dyn` counts only where the API server's is `dyn`
too: `object`, `oldObject`, `params` (declared cel.DynType), what is selected or indexed from
them, `dyn(...)`, a conditional or `orValue` with such a branch (cel-go's checker joins types
to the most general, `dyn`), and a variable whose expression is such. Where trustgate cannot
tell, nothing is refused: these checks never refuse what the API server accepts.

Leaves out: compiling (`trustgate.policy.cel`), the policy's structure and names (`vap`).
Gatekeeper's K8sNativeValidation templates are not checked here: Gatekeeper compiles them with
the same compiler but does not refuse a template for it (its driver cannot see compilation
errors when the template is added); an expression with such an error fails when evaluated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from trustgate.policy import cel, cel_cost

__all__ = [
    "Refusal",
    "aggregate_error",
    "certainly_dyn",
    "declaration_error",
    "regex_error",
    "result_error",
    "root",
]

# compile.go's createEnvForOpts: cel.Variable(ObjectVarName, cel.DynType), the old object and the
# params alike (`request` and `namespaceObject` are declared with object types).
_DYN_ROOTS = frozenset({"object", "oldObject", "params"})
# The names the API server gives a field's return types, as compile.go prints them.
_RETURNS = {"BOOL": "bool", "STRING": "string", "NULL": "null_type"}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the API server refuses an expression, with the position (1-based) where it says."""

    message: str
    line: int = 0
    column: int = 0

    def where(self) -> str:
        return f"line {self.line}, column {self.column}" if self.line else ""


def result_error(
    program: cel.Program, returns: tuple[str, ...], dyn_variables: frozenset[str] = frozenset()
) -> str | None:
    """compile.go's "must evaluate to bool but got dyn", where the API server types the
    expression `dyn` and the field needs `returns` (BOOL, STRING, NULL); None where it does not
    refuse it or trustgate cannot tell. A type other than dyn is `vap`'s to judge."""
    if program.result_type != "DYN":
        return None
    top = root(program)
    if top is None or not certainly_dyn(top, frozenset(), dyn_variables):
        return None
    if len(returns) == 1:
        return f"must evaluate to {_RETURNS[returns[0]]} but got dyn"
    return f"must evaluate to one of [{' '.join(_RETURNS[r] for r in returns)}] but got dyn"


def certainly_dyn(node: cel_cost.Expr, shadowed: frozenset[str], dyn_variables: frozenset[str]) -> bool:
    """Whether the API server's checker types `node` dyn (see the module docstring); `shadowed`:
    the comprehension variables in scope, `dyn_variables`: the variables whose value is dyn."""
    if node.kind == "ident":
        name = node.name
        return name[1:] in _DYN_ROOTS if name.startswith(".") else name in _DYN_ROOTS - shadowed
    if node.kind == "select":
        if node.test_only or node.target is None:
            return False
        target = node.target
        if target.kind == "ident" and target.name.lstrip(".") == "variables":
            return ("variables" not in shadowed or target.name.startswith(".")) and node.name in dyn_variables
        return certainly_dyn(target, shadowed, dyn_variables)
    if node.kind != "call":
        return False
    args = node.args
    if node.target is None and node.name == "dyn" and len(args) == 1:
        return True
    if node.target is None and node.name == "_[_]" and len(args) == 2:
        return certainly_dyn(args[0], shadowed, dyn_variables)
    if node.target is None and node.name == "_?_:_" and len(args) == 3:
        return any(certainly_dyn(a, shadowed, dyn_variables) for a in args[1:])
    if node.target is not None and node.name == "orValue" and len(args) == 1:
        optional = node.target
        if (
            optional.kind == "call"
            and optional.name in ("_?._", "_[?_]")
            and len(optional.args) == 2
            and certainly_dyn(optional.args[0], shadowed, dyn_variables)
        ):
            return True
        return certainly_dyn(args[0], shadowed, dyn_variables)
    return False


def aggregate_error(program: cel.Program, dyn_variables: frozenset[str] = frozenset()) -> Refusal | None:
    """The first list or map literal whose entries the API server finds of mixed types
    ("expected type 'string' but found 'int'"), or None."""
    parsed = _parse(program)
    if parsed is None:
        return None
    top, types, positions = parsed
    for node, shadowed, exempt in _walk(top):
        if exempt or node.kind not in ("list", "map"):
            continue
        groups = [node.args] if node.kind == "list" else [node.args[0::2], node.args[1::2]]
        for group in groups:
            known = [_known(e, types.get(e.id), shadowed, dyn_variables) for e in group]
            if any(k is _OPTIONAL for k in known):
                continue  # `[?x]`, `{?k: v}`: the entry's type is unwrapped; not told apart here
            # Every entry must have the first's type; with the first unknown, two known types
            # that differ are still a mismatch.
            first = next((k for k in known if k is not None), None)
            for element, kind in zip(group, known, strict=True):
                if first is not None and kind is not None and kind != first:
                    line, column = _position(program.source, positions.get(element.id))
                    return Refusal(
                        f"expected type '{_format(first)}' but found '{_format(kind)}'", line, column
                    )
    return None


def regex_error(program: cel.Program, kubernetes_version: str | None = None) -> Refusal | None:
    """A literal regular expression the target's Go regexp refuses where the API server compiles
    it when the policy is written (see the module docstring), or None."""
    parsed = _parse(program)
    if parsed is None:
        return None
    top, _, positions = parsed
    for node, _, _ in _walk(top):
        if node.kind != "call":
            continue
        checks: list[tuple[cel_cost.Expr, str]] = []
        if node.name == "matches" and node.target is not None and len(node.args) == 1:
            checks.append((node.args[0], "invalid matches argument"))
        elif node.name == "matches" and node.target is None and len(node.args) == 2:
            checks.append((node.args[0], "invalid matches argument"))  # cel-go's validator: Args()[0]
            checks.append((node.args[1], "program instantiation failed"))
        elif node.name in ("find", "findAll") and node.target is not None and node.args:
            checks.append((node.args[0], "program instantiation failed"))
        for argument, what in checks:
            if argument.kind == "const" and isinstance(argument.const, str):
                why = cel.go_regexp_error(argument.const, kubernetes_version)
                if why is not None:
                    line, column = _position(program.source, positions.get(argument.id))
                    return Refusal(f"{what}: error parsing regexp {argument.const!r}: {why}", line, column)
    return None


def declaration_error(
    program: cel.Program, undeclared: frozenset[str], fields: frozenset[str] | None
) -> Refusal | None:
    """The first read of a variable the API server does not declare for this field
    (`undeclared`), or of a field of `variables` that is not among `fields` (None: any)."""
    parsed = _parse(program)
    if parsed is None:
        return None
    top, _, positions = parsed
    for node, shadowed, _ in _walk(top):
        if node.kind == "ident":
            name = node.name
            free = name[1:] if name.startswith(".") else name if name not in shadowed else ""
            if free in undeclared:
                line, column = _position(program.source, positions.get(node.id))
                return Refusal(f"undeclared reference to '{free}' (in container '')", line, column)
        elif node.kind == "select" and fields is not None and node.target is not None:
            target = node.target
            reads_variables = target.kind == "ident" and (
                target.name == ".variables" or (target.name == "variables" and "variables" not in shadowed)
            )
            if reads_variables and node.name not in fields:
                line, column = _position(program.source, positions.get(node.id))
                return Refusal(f"undefined field '{node.name}'", line, column)
    return None


# -- the checked AST with each node's type ----------------------------------------

_OPTIONAL = ("optional",)  # a marker: an optional-typed entry


def root(program: cel.Program) -> cel_cost.Expr | None:
    """The checked AST's root, or None for an expression compiled without the checker."""
    try:
        return cel_cost.parse_checked(program.checked())[0]
    except ValueError:  # compiled without the checker
        return None


def _walk(root: cel_cost.Expr) -> Iterator[tuple[cel_cost.Expr, frozenset[str], bool]]:
    """Every node with the comprehension variables in scope there and whether it is within a
    `format` call's arguments (through lists and maps only, as cel-go's hasStringFormatAncestor)."""
    stack: list[tuple[cel_cost.Expr, frozenset[str], bool]] = [(root, frozenset(), False)]
    while stack:
        node, shadowed, exempt = stack.pop()
        yield node, shadowed, exempt
        if node.kind == "comprehension":
            inner = shadowed | {v for v in (node.iter_var, node.iter_var2, node.accu_var) if v}
            for child in (node.iter_range, node.accu_init):
                if child is not None:
                    stack.append((child, shadowed, False))
            for child in (node.loop_condition, node.loop_step, node.result):
                if child is not None:
                    stack.append((child, inner, False))
            continue
        in_format = node.kind == "call" and node.name == "format"
        if node.target is not None:
            stack.append((node.target, shadowed, False))
        for child in node.args:
            stack.append((child, shadowed, in_format or (exempt and node.kind in ("list", "map"))))


def _known(
    node: cel_cost.Expr,
    kind: tuple[object, ...] | None,
    shadowed: frozenset[str],
    dyn_variables: frozenset[str],
) -> tuple[object, ...] | None:
    """The entry's type where the API server's is certainly the same (None where not known)."""
    if kind is None:
        return None
    if kind[0] == "abstract" and kind[1] == "optional_type":
        return _OPTIONAL
    if kind == ("dyn",):
        return kind if certainly_dyn(node, shadowed, dyn_variables) else None
    return kind if _concrete(kind) else None


def _concrete(kind: tuple[object, ...]) -> bool:
    if kind[0] in ("dyn", "param", "error", "function", "unknown"):
        return False
    return all(_concrete(part) for part in kind[1:] if isinstance(part, tuple))


_PRIMITIVE = {1: "bool", 2: "int", 3: "uint", 4: "double", 5: "string", 6: "bytes"}
_WELL_KNOWN = {1: "google.protobuf.Any", 2: "google.protobuf.Timestamp", 3: "google.protobuf.Duration"}


def _format(kind: tuple[object, ...]) -> str:
    """A type as cel-go's FormatCELType writes it."""
    tag = kind[0]
    if tag == "primitive":
        return _PRIMITIVE.get(int(str(kind[1])), "?")
    if tag == "wrapper":
        return f"wrapper({_PRIMITIVE.get(int(str(kind[1])), '?')})"
    if tag == "well_known":
        return _WELL_KNOWN.get(int(str(kind[1])), "?")
    if tag == "null":
        return "null_type"
    if tag in ("list", "type"):
        return f"{tag}({_format(kind[1])})" if isinstance(kind[1], tuple) else str(tag)
    if tag == "map":
        key, value = kind[1], kind[2]
        return (
            f"map({_format(key)}, {_format(value)})"
            if isinstance(key, tuple) and isinstance(value, tuple)
            else "map"
        )
    if tag in ("message", "param"):
        return str(kind[1])
    if tag == "abstract":
        params = [_format(p) for p in kind[2:] if isinstance(p, tuple)]
        return f"{kind[1]}({', '.join(params)})" if params else str(kind[1])
    return str(tag)


def _parse(
    program: cel.Program,
) -> tuple[cel_cost.Expr, dict[int, tuple[object, ...]], dict[int, int]] | None:
    """The checked AST, each node's type and each node's offset in the source, or None for an
    expression compiled without the checker."""
    top = root(program)
    if top is None:
        return None
    types: dict[int, tuple[object, ...]] = {}
    positions: dict[int, int] = {}
    data = program.checked()
    fields = dict(_fields(data))
    if 2 in fields and 1 in fields and isinstance(fields[1], bytes) and fields[1].endswith(b"CheckedExpr"):
        data = fields[2] if isinstance(fields[2], bytes) else data  # a protobuf Any
    for number, value in _fields(data):
        if number == 3 and isinstance(value, bytes):  # type_map entry: key (1), Type (2)
            entry = dict(_fields(value))
            key, kind = entry.get(1, 0), entry.get(2, b"")
            if isinstance(key, int) and isinstance(kind, bytes):
                types[key] = _type(kind)
        elif number == 5 and isinstance(value, bytes):  # source_info: positions (4)
            for inner, item in _fields(value):
                if inner == 4 and isinstance(item, bytes):
                    entry = dict(_fields(item))
                    key, offset = entry.get(1, 0), entry.get(2, 0)
                    if isinstance(key, int) and isinstance(offset, int):
                        positions[key] = offset
    return top, types, positions


def _type(data: bytes) -> tuple[object, ...]:
    """A cel.expr.Type as a tuple: ("primitive", n), ("list", elem), ("map", key, value), ..."""
    for number, value in _fields(data):
        if number == 1:
            return ("dyn",)
        if number == 2:
            return ("null",)
        if number in (3, 4, 5) and isinstance(value, int):
            return ({3: "primitive", 4: "wrapper", 5: "well_known"}[number], value)
        if number == 6 and isinstance(value, bytes):
            elem = dict(_fields(value)).get(1, b"")
            return ("list", _type(elem) if isinstance(elem, bytes) else ("unknown",))
        if number == 7 and isinstance(value, bytes):
            parts = dict(_fields(value))
            key, val = parts.get(1, b""), parts.get(2, b"")
            return (
                "map",
                _type(key) if isinstance(key, bytes) else ("unknown",),
                _type(val) if isinstance(val, bytes) else ("unknown",),
            )
        if number == 8:
            return ("function",)
        if number in (9, 10) and isinstance(value, bytes):
            return ("message" if number == 9 else "param", value.decode("utf-8", "replace"))
        if number == 11 and isinstance(value, bytes):
            return ("type", _type(value))
        if number == 12:
            return ("error",)
        if number == 14 and isinstance(value, bytes):
            name = ""
            params: list[tuple[object, ...]] = []
            for inner, item in _fields(value):
                if inner == 1 and isinstance(item, bytes):
                    name = item.decode("utf-8", "replace")
                elif inner == 2 and isinstance(item, bytes):
                    params.append(_type(item))
            return ("abstract", name, *params)
    return ("unknown",)


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """The fields of a protobuf message on the wire: (number, varint or length-delimited bytes);
    fixed-width values are skipped."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            yield number, value
        elif wire == 2:
            size, i = _varint(data, i)
            yield number, data[i : i + size]
            i += size
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            return  # groups: not in these messages


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while i < len(data):
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return value, i


def _position(source: str, offset: int | None) -> tuple[int, int]:
    """1-based line and column of a code point offset (0, 0 when there is none)."""
    if offset is None or not 0 <= offset <= len(source):
        return 0, 0
    line_start = source.rfind("\n", 0, offset) + 1
    return source.count("\n", 0, offset) + 1, offset - line_start + 1
