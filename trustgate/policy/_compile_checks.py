"""Compile checks of OPA's that regorus does not make: modules OPA refuses are refused here.

Owns: refusing, at load time, module sets that OPA's compiler rejects but
regorus evaluates (ADR 0008, item 11), with the file, line and OPA's error
class and wording. A refused policy makes `trustgate check` and `policy test`
exit 3, as conftest refuses to load it. Leaves out: the rewrites and the other
refusals (`_normalise`), loading (`rego.py`, `engine.py`).

Each check reads regorus' AST (`Engine.get_ast_as_json`) and copies one of
OPA's (`ast/compile.go`, `ast/check.go`), narrowed so that it never refuses
what OPA accepts; what OPA refuses beyond it is evaluated (a known
divergence, ADR 0008):

1. Rule kinds (`checkRuleConflicts`): a complete rule, a partial set, a partial
   object and functions of different arities at one path ("conflicting rules
   data.p.r found"), and a complete rule, partial set or function with another
   rule or a package below its path ("rule data.p.r conflicts with").
2. Unsafe head variables (`checkSafetyRuleHeads`): a variable of a rule's head
   (key, value, a ref head's index) that its body never mentions outside
   `not`, comprehensions and `every`, and that is not a function argument,
   a rule of the package or an import. A variable that is mentioned but not
   bound (`msg == input.a`) is not found.
3. Recursion (`checkRecursion`): a cycle among rules and functions through
   bare rule names, import aliases, `data` references (a prefix such as
   `data.p` depends on every rule under it) and calls. A name that the rule
   binds itself (`:=`, `=`, `some`, function arguments) is local. `with`
   targets are not reads.
4. Declared variables never used (`rewriteDeclaredVarsInBody`, "declared var x
   unused"): a `some x` whose `x` the rule never mentions, and an `every k, v`
   whose body never mentions `k` or `v`.
5. Variables introduced twice in one query (`rewriteLocalVars`): `x := 1; x := 2`
   ("var x assigned above"), `some x; x := 1` ("declared above"), `f(x) if { x := 1 }`
   ("arg x redeclared"). A comprehension's or `every`'s body is a scope of its own.
6. Undefined references into a literal (the type checker's "undefined ref"):
   `x := {"a": 1}` then `x.b`, `x[0]`; `x := [1, 2]` then `x["a"]`, `x[5]`,
   where the key is a literal and `x` is assigned once in that body.

One check is not OPA's but trustgate's, for built-ins whose value regorus gives
without saying it differs from OPA's (7): OPA does I/O or reads its runtime
where regorus answers otherwise, so the verdict would differ silently.

7. `http.send` (OPA makes the request; regorus is undefined, so `not http.send(...)`
   is true; Gatekeeper disables it), `net.lookup_ip_addr` (OPA resolves the name;
   regorus fails at run time), `opa.runtime` (`{}` under conftest and Gatekeeper,
   which configure no runtime; regorus gives its own version and built-ins), and
   the value of `trace` (OPA's is `true`, regorus' its argument) and of `print`
   (OPA refuses it as a value and finds `not print(...)` true); a `trace(...)` or
   `print(...)` statement of its own succeeds in both and is accepted. `yaml.marshal`
   (go-yaml's emitter quotes `yes` and `~`, folds long lines; regorus' does not).
   `json.match_schema` and `json.verify_schema` (OPA's gojsonschema and regorus' JSON
   Schema implementation differ in which schemas are valid and in their errors).

8. OPA built-ins that regorus does not have (`net.cidr_intersects`, `crypto.*`,
   `io.jwt.*`, `regex.globs_match`, `strings.render_template`, `array.flatten`,
   `rego.metadata.*`, `rego.parse_module`, `graphql.*`): a call failed only when a
   document reached it ("could not find function"); it is refused at load, naming the
   built-in, unless trustgate implements it (`_gobuiltins.BUILTINS`) or the name's
   first part is an import or a rule of the package (then it is the policy's function).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from trustgate.errors import PolicyError

_HINT = "OPA (conftest, Gatekeeper) rejects the module; fix the rule"
_COMPREHENSIONS = frozenset({"ArrayCompr", "SetCompr", "ObjectCompr"})
_SCOPES = _COMPREHENSIONS | {"Every"}  # nested queries: a name may be bound anew inside them
_LITERAL_ASSIGN = re.compile(rb":=\s*[\[{]")  # before looking for `x := {...}` in the AST
_SCALARS = {"String": "string", "RawString": "string", "Number": "number", "Bool": "boolean", "Null": "null"}
# 7: built-ins whose value regorus gives differently from OPA, and why (see the module docstring).
_UNLIKE_OPA = {
    "http.send": "OPA (conftest) sends the request and Gatekeeper refuses the built-in, where regorus "
    "is undefined (so `not http.send(...)` would be true)",
    "net.lookup_ip_addr": "OPA resolves the name with DNS, which trustgate does not do from a policy",
    "opa.runtime": "OPA's value is {} under conftest and Gatekeeper (no runtime configured), where regorus "
    "gives its own version and built-ins",
    "trace": "its value is true in OPA and the traced text in regorus (a `trace(...)` statement of its own, "
    "or `not trace(...)`, is accepted)",
    "print": "OPA refuses its value (rego_type_error: used as value) and finds `not print(...)` true, "
    "where regorus finds it false (a `print(...)` statement of its own is accepted)",
    "yaml.marshal": 'OPA writes YAML with go-yaml\'s emitter (`"yes"`, `"~"` quoted, long lines folded), '
    "which trustgate does not reproduce: regorus' text differs",
    **dict.fromkeys(
        ("json.match_schema", "json.verify_schema"),
        "OPA validates with gojsonschema, regorus with another JSON Schema implementation: they differ "
        "in which schemas are valid (`true` is one in regorus, not in OPA), in the errors they report and "
        "in being undefined or failing on operands of other types",
    ),
}
_UNLIKE_OPA_HINTS = {
    "yaml.marshal": "compare values, not YAML text (`yaml.unmarshal`, `json.marshal`), or drop the call",
    **dict.fromkeys(
        ("json.match_schema", "json.verify_schema"),
        "check the fields the policy needs in Rego, or validate the documents before trustgate "
        "(e.g. check-jsonschema)",
    ),
}
_ACCEPTED = {"trace": ("Expr", "NotExpr"), "print": ("Expr",)}  # as a statement (negated) of its own
# 8: OPA built-ins regorus lacks (tests/differential checks the list against both engines).
NOT_IN_REGORUS = frozenset(
    {
        *("net.cidr_intersects", "net.cidr_merge", "net.cidr_contains_matches", "net.lookup_ip_addr"),
        *("crypto.sha256", "crypto.sha1", "crypto.md5", "crypto.parse_private_keys"),
        *(f"crypto.hmac.{h}" for h in ("sha256", "sha1", "sha512", "md5", "equal")),
        *(f"crypto.x509.{f}" for f in ("parse_certificates", "parse_and_verify_certificates")),
        *(f"crypto.x509.{f}" for f in ("parse_and_verify_certificates_with_options", "parse_keypair")),
        *(f"crypto.x509.{f}" for f in ("parse_certificate_request", "parse_rsa_private_key")),
        *("io.jwt.decode", "io.jwt.decode_verify", "io.jwt.encode_sign", "io.jwt.encode_sign_raw"),
        *(f"io.jwt.verify_{a}{n}" for a in ("rs", "ps", "es", "hs") for n in (256, 384, 512)),
        "io.jwt.verify_eddsa",
        *("regex.globs_match", "strings.render_template", "array.flatten"),
        *("rego.metadata.chain", "rego.metadata.rule", "rego.parse_module", "providers.aws.sign_req"),
        *(f"graphql.{f}" for f in ("is_valid", "parse", "parse_and_verify", "parse_query", "parse_schema")),
        "graphql.schema_is_valid",
    }
)
_NOT_IN_REGORUS_CALL = re.compile(
    rb"\b(?:net|crypto|io|regex|strings|array|rego|graphql|providers)\s*\.[\w.\s]*\("
)
_UNLIKE_OPA_CALL = re.compile(
    rb"\b(?:http\s*\.\s*send|net\s*\.\s*lookup_ip_addr|opa\s*\.\s*runtime|trace|print|yaml\s*\.\s*marshal"
    rb"|json\s*\.\s*(?:match|verify)_schema)\s*\("
)

_BRACKETED_CALL = re.compile(rb"\]\s*\(")  # `yaml["marshal"](...)`: a built-in by a bracketed ref


@dataclass(frozen=True, slots=True)
class Parsed:
    """One module as the checks need it."""

    path: str
    ast: dict[str, Any]
    source: bytes  # names of `some`/`every` variables are spans only in regorus' AST


@dataclass(frozen=True, slots=True)
class _Rule:
    path: tuple[str, ...]  # package and the static start of the head
    kind: str  # "single", "set", "object" or "function/<arity>"
    where: str  # file:line
    spec: dict[str, Any] | None  # None for `default`
    module: Parsed


def check(modules: Sequence[Parsed]) -> None:
    """Refuse what OPA's compiler refuses among `modules`, loaded together (see the module docstring).

    Args:
        modules: every module of the policy set that parsed.

    Raises:
        PolicyError: the first refusal found, with file, line and OPA's error class.
    """
    for module in modules:
        bracketed = _BRACKETED_CALL.search(module.source) is not None
        if bracketed or _UNLIKE_OPA_CALL.search(module.source):
            _check_unlike_opa(module)
    rules = [r for m in modules for r in _rules(m)]
    _check_conflicts(rules)
    names = _package_names(modules, rules)
    local: dict[int, set[str]] = {}  # id(spec) -> names the rule binds itself
    for module in modules:
        package = _package(module.ast)
        globals_ = names.get(package, frozenset()) | _imports(module)
        has_literals = _LITERAL_ASSIGN.search(module.source) is not None
        if bracketed or _NOT_IN_REGORUS_CALL.search(module.source):
            _check_not_in_regorus(module, globals_)
        for rule in module.ast.get("rules", []):
            spec = rule.get("Spec") if isinstance(rule, dict) else None
            if isinstance(spec, dict):
                nodes = _nodes(spec)
                _check_safe_head(module, spec, globals_)
                _check_declared_used(module, spec, nodes)
                _check_redeclared(module, spec, nodes)
                if has_literals:
                    _check_literal_refs(module, nodes)
                local[id(spec)] = _locals(module, spec, nodes)
    _check_recursion(rules, names, local)


# -- 7. built-ins regorus answers unlike OPA ------------------------------------------


def _check_unlike_opa(module: Parsed) -> None:
    """A call of a built-in in `_UNLIKE_OPA` (a `trace(...)` or `print(...)` statement excepted).

    Raises:
        PolicyError: the first such call, with file, line and why.
    """
    nodes = _nodes(module.ast.get("rules", []))
    # A statement of its own (`trace("x")`, `print(...)`) succeeds in both engines; `not trace(...)`
    # is false in both, `not print(...)` true in OPA only.
    statements: dict[int, str] = {}
    for node in nodes:
        kind, literal = next(iter(node.items())) if len(node) == 1 else ("", None)
        expr = literal.get("expr") if kind in ("Expr", "NotExpr") and isinstance(literal, dict) else None
        if isinstance(expr, dict) and isinstance(expr.get("Call"), dict):
            statements[id(expr["Call"])] = kind
    found = []
    for node in nodes:
        call = node.get("Call") if len(node) == 1 else None
        if not isinstance(call, dict):
            continue
        name = _call_name(call.get("fcn"))
        if name in _UNLIKE_OPA and statements.get(id(call)) not in _ACCEPTED.get(name, ()):
            found.append((first_line(call), name))
    if found:
        line, name = min(found)
        raise PolicyError(
            f"{module.path}:{line}: `{name}` cannot be evaluated as OPA does: {_UNLIKE_OPA[name]}",
            hint=_UNLIKE_OPA_HINTS.get(
                name,
                "trustgate evaluates policies without I/O (ADR 0008): pass what the policy needs as data "
                "(`-d`, the config's `data`), or drop the call",
            ),
        )


# -- 8. OPA built-ins regorus lacks -----------------------------------------------------


def _check_not_in_regorus(module: Parsed, shadowing: frozenset[str]) -> None:
    """A call of a built-in in `NOT_IN_REGORUS` that trustgate does not implement either.

    Raises:
        PolicyError: the first such call, with file, line and what to do.
    """
    found = []
    for node in _nodes(module.ast.get("rules", [])):
        call = node.get("Call") if len(node) == 1 else None
        name = _call_name(call.get("fcn")) if isinstance(call, dict) else ""
        if name in NOT_IN_REGORUS and name.split(".", 1)[0] not in shadowing:
            found.append((first_line(call), name))
    if not found:
        return
    from trustgate.policy import _gobuiltins  # routed to trustgate's implementation: not refused

    found = [(line, name) for line, name in found if name not in _gobuiltins.BUILTINS]
    if found:
        line, name = min(found)
        raise PolicyError(
            f"{module.path}:{line}: the built-in `{name}` is not available in trustgate's Rego engine "
            "(regorus): OPA (conftest, Gatekeeper) evaluates it, trustgate could only fail when a "
            "document reaches the call",
            hint="compute the value outside the policy and pass it as data (`-d`, the config's `data`), "
            "or evaluate this policy with conftest",
        )


def _call_name(fcn: Any) -> str:
    """`http.send` for a call's function (a name, or fields after a name); "" for anything else."""
    parts: list[str] = []
    while isinstance(fcn, dict):
        kind, body = _kind(fcn)
        if kind == "Var":
            return ".".join([str(body.get("value")), *reversed(parts)])
        if kind == "RefDot":
            field = body.get("field")
            key = str(field[1]) if isinstance(field, list) and len(field) == 2 else ""
        else:  # `yaml["marshal"]` names the built-in `yaml.marshal` too
            index = body.get("index") if kind == "RefBrack" else None
            index_kind, index_body = _kind(index) if isinstance(index, dict) else ("", {})
            key = str(index_body.get("value")) if index_kind in ("String", "RawString") else ""
        if not key:
            return ""
        parts.append(key)
        fcn = body.get("refr")
    return ""


# -- 1. rule kinds -----------------------------------------------------------------


def _rules(module: Parsed) -> Iterator[_Rule]:
    package = tuple(_package(module.ast).split("."))
    for rule in module.ast.get("rules", []):
        if not isinstance(rule, dict):
            continue
        default = rule.get("Default")
        if isinstance(default, dict):
            ref_path, _ = _static_path(default.get("refr"))
            args = default.get("args") or []
            kind = f"function/{len(args)}" if args else "single"
            yield _Rule((*package, *ref_path), kind, f"{module.path}:{first_line(default)}", None, module)
            continue
        spec = rule.get("Spec")
        head = spec.get("head") if isinstance(spec, dict) else None
        if not isinstance(head, dict) or len(head) != 1:
            continue
        head_kind, variant = next(iter(head.items()))
        ref_path, dynamic = _static_path(variant.get("refr"))
        if not ref_path:
            continue
        if head_kind == "Func":
            kind = f"function/{len(variant.get('args') or [])}"
        elif head_kind == "Set":
            kind = "set"
        elif dynamic:
            kind = "object"  # `o[k] := v`; v1 `p[x] if ...` is one too (value true)
        else:
            kind = "single"
        assert isinstance(spec, dict)
        yield _Rule((*package, *ref_path), kind, f"{module.path}:{first_line(variant)}", spec, module)


def _check_conflicts(rules: Sequence[_Rule]) -> None:
    by_path: dict[tuple[str, ...], list[_Rule]] = {}
    for rule in rules:
        by_path.setdefault(rule.path, []).append(rule)
    for path, group in by_path.items():
        if len({r.kind for r in group}) > 1:
            raise PolicyError(
                f"{group[0].where}: rego_type_error: conflicting rules {_data(path)} found "
                f"({_kinds(group)}): OPA (conftest, Gatekeeper) rejects the module",
                hint="one rule name is one kind of rule: rename one of them",
            )
    for path, group in by_path.items():
        if group[0].kind == "object":  # `o[k] := 1` beside `o.b := 2`: OPA merges them
            continue
        below = [r for p, g in by_path.items() if len(p) > len(path) and p[: len(path)] == path for r in g]
        if below:
            raise PolicyError(
                f"{group[0].where}: rego_type_error: rule {_data(path)} conflicts with: rule "
                f"{_data(below[0].path)} at {below[0].where}: OPA (conftest, Gatekeeper) rejects the module",
                hint="a rule's value cannot also hold other rules (or a package): rename one of them",
            )


def _kinds(group: Sequence[_Rule]) -> str:
    shown = {"single": "complete rule", "set": "partial set", "object": "partial object"}
    seen: dict[str, str] = {}
    for r in group:
        text = shown.get(r.kind) or f"function of {r.kind.split('/')[1]} argument(s)"
        seen.setdefault(text, f"{text} at {r.where}")
    return ", ".join(seen.values())


# -- 2. unsafe head variables ------------------------------------------------------


def _check_safe_head(module: Parsed, spec: dict[str, Any], globals_: frozenset[str]) -> None:
    head = spec.get("head")
    if not isinstance(head, dict) or len(head) != 1:
        return
    head_kind, variant = next(iter(head.items()))
    bound = set(globals_) | {"input", "data", "_"}
    if head_kind == "Func":
        bound.update(name for name, _ in _vars(variant.get("args")))
    main: list[tuple[str, int]] = []
    refr = variant.get("refr")
    while isinstance(refr, dict) and _kind(refr)[0] in ("RefDot", "RefBrack"):
        body = _kind(refr)[1]
        main.extend(_vars(body.get("index"), outer_only=True))
        refr = body.get("refr")
    main.extend(_vars(variant.get("key"), outer_only=True))
    assign = variant.get("assign")
    main.extend(_vars(assign.get("value") if isinstance(assign, dict) else None, outer_only=True))
    bodies = [b for b in spec.get("bodies", []) if isinstance(b, dict)]
    checks: list[tuple[list[tuple[str, int]], Any]] = []
    if not bodies:
        checks.append((main, None))
    for body in bodies:
        if body.get("is_else"):
            value = body["assign"].get("value") if isinstance(body.get("assign"), dict) else None
            checks.append((list(_vars(value, outer_only=True)), body.get("query")))  # no value: true
        else:
            checks.append((main, body.get("query")))
    for head_vars, query in checks:
        free = [(name, line) for name, line in head_vars if name not in bound]
        seen = {name for name, _ in _vars(query, outer_only=True)} if free else set()
        for name, line in free:
            if name not in seen:
                raise PolicyError(
                    f"{module.path}:{line}: rego_unsafe_var_error: var {name} is unsafe "
                    f"(the rule's head uses it, its body never assigns it)",
                    hint=f"{_HINT}: assign `{name}` in the body (e.g. `{name} := ...`)",
                )


# -- 3. recursion ------------------------------------------------------------------


def _check_recursion(
    rules: Sequence[_Rule], names: dict[str, frozenset[str]], local: dict[int, set[str]]
) -> None:
    paths = sorted({r.path for r in rules})
    where: dict[tuple[str, ...], str] = {}
    for rule in rules:
        where.setdefault(rule.path, rule.where)
    deps: dict[tuple[str, ...], set[tuple[str, ...]]] = {p: set() for p in paths}
    under = _under(paths)
    for rule in rules:
        if rule.spec is None:
            continue
        package_name = _package(rule.module.ast)
        package = tuple(package_name.split("."))
        own = set(names.get(package_name, frozenset())) - local.get(id(rule.spec), set())
        head = [
            {k: v for k, v in variant.items() if k != "refr"}
            for variant in (rule.spec.get("head") or {}).values()
            if isinstance(variant, dict)
        ]
        read_from = [head, rule.spec.get("bodies")]
        for read in _reads(read_from, package, own, _import_paths(rule.module)):
            deps[rule.path].update(under.get(read, ()))  # rules at or below what is read
            deps[rule.path].update(read[:n] for n in range(1, len(read)) if read[:n] in deps)  # above
    # Depth-first search for a cycle; the path printed as OPA prints it.
    state: dict[tuple[str, ...], int] = {}  # 1 on the stack, 2 done
    stack: list[tuple[str, ...]] = []

    def visit(node: tuple[str, ...]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(deps[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise PolicyError(
                    f"{where[nxt]}: rego_recursion_error: rule {_data(nxt)} is recursive: "
                    f"{' -> '.join(_data(p) for p in cycle)}",
                    hint=f"{_HINT}: Rego rules cannot depend on themselves",
                )
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for path in paths:
        if path not in state:
            visit(path)


def _reads(
    node: Any, package: tuple[str, ...], names: set[str], aliases: dict[str, tuple[str, ...]]
) -> Iterator[tuple[str, ...]]:
    """Static paths (under `data`) that `node` reads: rule names, import aliases, `data` refs."""
    if isinstance(node, list):
        for item in node:
            yield from _reads(item, package, names, aliases)
        return
    if not isinstance(node, dict):
        return
    tagged = len(node) == 1 and next(iter(node))[:1].isupper()
    kind, body = _kind(node) if tagged else ("", node)
    if kind in ("RefDot", "RefBrack", "Var"):
        chain: list[dict[str, Any]] = []
        cursor: Any = node
        while isinstance(cursor, dict) and _kind(cursor)[0] in ("RefDot", "RefBrack"):
            chain.append(_kind(cursor)[1])
            cursor = _kind(cursor)[1].get("refr")
        base_kind, base = _kind(cursor) if isinstance(cursor, dict) else ("", {})
        name = base.get("value") if base_kind == "Var" else None
        root: tuple[str, ...] | None = None
        if name == "data":
            root = ()
        elif name in names:
            root = (*package, str(name))
        elif isinstance(name, str) and name in aliases:
            root = aliases[name]
        if root is not None:
            yield (*root, *_fields(reversed(chain)))
        for link in chain:
            yield from _reads(link.get("index"), package, names, aliases)
        return
    for key, value in body.items():
        if key not in ("with_mods", "span") and isinstance(value, (dict, list)):
            yield from _reads(value, package, names, aliases)


def _fields(chain: Iterator[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for link in chain:
        field = link.get("field")
        if isinstance(field, list) and len(field) == 2:
            out.append(str(field[1]))
            continue
        index_kind, index = _kind(link["index"]) if isinstance(link.get("index"), dict) else ("", {})
        if index_kind not in ("String", "RawString"):
            break
        out.append(str(index.get("value")))
    return out


def _under(paths: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], list[tuple[str, ...]]]:
    """Each prefix of a path -> the paths that start with it (itself included)."""
    out: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for path in paths:
        for n in range(len(path) + 1):
            out.setdefault(path[:n], []).append(path)
    return out


def _locals(module: Parsed, spec: dict[str, Any], nodes: list[dict[str, Any]]) -> set[str]:
    """Names a rule binds itself: they shadow rules of the same name."""
    out: set[str] = set()
    for variant in (spec.get("head") or {}).values():
        if isinstance(variant, dict):
            out.update(name for name, _ in _vars(variant.get("args")))
    for node in nodes:
        kind, body = _kind(node) if len(node) == 1 else ("", {})
        if kind == "AssignExpr":
            out.update(name for name, _ in _vars(body.get("lhs")))
        elif kind == "SomeIn":
            out.update(name for name, _ in _vars([body.get("key"), body.get("value")]))
        elif kind in ("SomeVars", "Every"):
            spans = body.get("vars") or [body.get("key"), body.get("value")]
            out.update(_text(module, s) for s in spans if isinstance(s, dict))
    return out


# -- 4. declared but unused --------------------------------------------------------


def _check_declared_used(module: Parsed, spec: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
    used: set[str] | None = None
    for node in nodes:
        kind, body = _kind(node) if len(node) == 1 else ("", {})
        if kind == "SomeVars":
            used = used if used is not None else {name for name, _ in _vars(spec)}
            for span in body.get("vars") or []:
                name = _text(module, span)
                if name != "_" and name not in used:
                    _unused(module, span, name)
        elif kind == "Every":
            inner = {name for name, _ in _vars(body.get("query"))}
            for span in (body.get("key"), body.get("value")):
                if isinstance(span, dict) and (name := _text(module, span)) != "_" and name not in inner:
                    _unused(module, span, name)


def _unused(module: Parsed, span: dict[str, Any], name: str) -> None:
    raise PolicyError(
        f"{module.path}:{span.get('line', 0)}: rego_compile_error: declared var {name} unused",
        hint=f"{_HINT}: use `{name}` or remove its declaration",
    )


# -- 5. introduced twice ------------------------------------------------------------


def _check_redeclared(module: Parsed, spec: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
    """`x := 1; x := 2`, `some x; x := 1`, `f(x) if { x := 1 }` in one query (a comprehension's
    or `every`'s body is a scope of its own, as in OPA)."""
    args: set[str] = set()
    for variant in (spec.get("head") or {}).values():
        if isinstance(variant, dict):
            args.update(name for name, _ in _vars(variant.get("args")))
    tops = {id(b.get("query")) for b in spec.get("bodies", []) if isinstance(b, dict)}
    for query in _nodes_with(nodes, "stmts"):
        seen: dict[str, str] = dict.fromkeys(args, "arg") if id(query) in tops else {}
        for stmt in query["stmts"]:
            literal = stmt.get("literal")
            kind, body = _kind(literal) if isinstance(literal, dict) else ("", {})
            if kind == "SomeVars":
                for span in body.get("vars") or []:
                    _declare(module, seen, _text(module, span), int(span.get("line", 0)), "declared")
            elif kind == "SomeIn":
                for name, line in _vars([body.get("key"), body.get("value")]):
                    _declare(module, seen, name, line, "declared")
            elif kind == "Expr":
                assign = (
                    body.get("expr", {}).get("AssignExpr") if isinstance(body.get("expr"), dict) else None
                )
                if isinstance(assign, dict) and assign.get("op") == "ColEq":
                    for name, line in _vars(assign.get("lhs"), outer_only=True):
                        _declare(module, seen, name, line, "assigned")


def _declare(module: Parsed, seen: dict[str, str], name: str, line: int, how: str) -> None:
    if name == "_":
        return
    before = seen.get(name)
    if before is not None:
        what = f"arg {name} redeclared" if before == "arg" else f"var {name} {before} above"
        raise PolicyError(
            f"{module.path}:{line}: rego_compile_error: {what}",
            hint=f"{_HINT}: `:=` and `some` introduce a new variable; use a new name, or `==` to compare",
        )
    seen[name] = how


# -- 6. undefined references into a literal ----------------------------------------


def _check_literal_refs(module: Parsed, nodes: list[dict[str, Any]]) -> None:
    if not any(_literal_assignment(n) for n in nodes):
        return
    for query in _nodes_with(nodes, "stmts"):
        literals: dict[str, dict[str, Any] | None] = {}  # var -> its literal; None: assigned twice
        for stmt in query["stmts"]:
            expr = (stmt.get("literal") or {}).get("Expr") if isinstance(stmt.get("literal"), dict) else None
            assign = expr.get("expr", {}).get("AssignExpr") if isinstance(expr, dict) else None
            if isinstance(assign, dict) and assign.get("op") == "ColEq":
                lhs_kind, lhs = _kind(assign["lhs"]) if isinstance(assign.get("lhs"), dict) else ("", {})
                value_kind, _ = _kind(assign["rhs"]) if isinstance(assign.get("rhs"), dict) else ("", {})
                if lhs_kind == "Var" and value_kind in ("Object", "Array"):
                    name = str(lhs.get("value"))
                    literals[name] = None if name in literals else assign["rhs"]
        for stmt in query["stmts"]:
            for ref, name, key in _literal_indexes(stmt, literals):
                bad = _missing(literals[name], key)
                if bad:
                    where = f"{module.path}:{first_line(ref)}"
                    raise PolicyError(
                        f"{where}: rego_type_error: undefined ref: {_text(module, ref)}\n"
                        f"\thave: {_show(key)}\n\twant {bad}",
                        hint=f"{_HINT}: `{name}` is a literal without that key",
                    )


def _literal_assignment(node: dict[str, Any]) -> bool:
    assign = node.get("AssignExpr") if len(node) == 1 else None
    rhs = assign.get("rhs") if isinstance(assign, dict) else None
    return isinstance(rhs, dict) and _kind(rhs)[0] in ("Object", "Array")


def _literal_indexes(
    node: Any, literals: dict[str, dict[str, Any] | None]
) -> Iterator[tuple[dict[str, Any], str, Any]]:
    """(ref, var, literal key) for `var.key` / `var[key]` with `var` a literal of the body.

    Comprehensions and `every` are left out: they may bind the same name to something else
    (OPA reads the inner one there), and their own queries are checked on their own.
    """
    for ref in _nodes(node, stop=_SCOPES):
        kind, body = _kind(ref) if len(ref) == 1 else ("", {})
        if kind not in ("RefDot", "RefBrack"):
            continue
        base_kind, base = _kind(body["refr"]) if isinstance(body.get("refr"), dict) else ("", {})
        name = base.get("value")
        if base_kind != "Var" or not isinstance(name, str) or literals.get(name) is None:
            continue
        if kind == "RefDot" and isinstance(body.get("field"), list):
            yield ref, name, str(body["field"][1])
            continue
        index_kind, index = _kind(body["index"]) if isinstance(body.get("index"), dict) else ("", {})
        if index_kind in _SCALARS:
            yield ref, name, index.get("value")


def _missing(literal: Any, key: Any) -> str:
    """How OPA says what it wanted when `key` is not in the literal; "" when it is (or may be)."""
    kind, body = _kind(literal)
    if kind == "Array":
        n = len(body.get("items", []))
        if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < n:
            return "(type): number"
        return ""
    keys = []
    for field in body.get("fields", []):
        nodes = [n for n in field if isinstance(n, dict) and _kind(n)[0]] if isinstance(field, list) else []
        if not nodes or _kind(nodes[0])[0] not in _SCALARS:
            return ""  # a computed key: may be any
        keys.append(_kind(nodes[0])[1].get("value"))
    if any(type(k) is type(key) and k == key for k in keys):
        return ""
    return "(one of): [" + ", ".join(_show(k) for k in keys) + "]"


def _show(value: Any) -> str:
    return json.dumps(value)


# -- the AST -------------------------------------------------------------------------


def _kind(node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for key, value in node.items():
        if isinstance(value, dict):
            return key, value
    return "", {}


def _nodes(node: Any, *, stop: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Every dict under `node` (a rule has a few hundred; a generator costs 3x); not below a node
    of a kind in `stop`."""
    out: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            out.append(item)
            if stop and len(item) == 1 and next(iter(item)) in stop:
                continue
            stack.extend(v for k, v in item.items() if k != "span" and isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend(item)
    return out


def _nodes_with(nodes: list[dict[str, Any]], key: str) -> Iterator[dict[str, Any]]:
    return (n for n in nodes if isinstance(n.get(key), list))


def _vars(node: Any, *, outer_only: bool = False) -> Iterator[tuple[str, int]]:
    """(name, line) of the variables under `node`; `outer_only` leaves out those of `not`,
    comprehensions and `every` (they bind nothing outside)."""
    if isinstance(node, list):
        for item in node:
            yield from _vars(item, outer_only=outer_only)
        return
    if not isinstance(node, dict):
        return
    tagged = len(node) == 1 and next(iter(node))[:1].isupper()
    kind, body = _kind(node) if tagged else ("", node)
    if kind == "Var":
        yield str(body.get("value")), int(body.get("span", {}).get("line", 0))
        return
    if outer_only and (kind in _COMPREHENSIONS or kind in ("NotExpr", "Every")):
        return
    for key, value in body.items():  # a call's function is a name, not a variable
        if key not in ("span", "fcn") and isinstance(value, (dict, list)):
            yield from _vars(value, outer_only=outer_only)


def _static_path(ref: Any) -> tuple[list[str], bool]:
    """A head's static path (`a.b["c"]` -> a, b, c) and whether a non-string key follows."""
    chain: list[dict[str, Any]] = []
    while isinstance(ref, dict) and _kind(ref)[0] in ("RefDot", "RefBrack"):
        chain.append(_kind(ref)[1])
        ref = _kind(ref)[1].get("refr")
    kind, body = _kind(ref) if isinstance(ref, dict) else ("", {})
    if kind != "Var":
        return [], False
    fields = _fields(reversed(chain))
    return [str(body.get("value")), *fields], len(fields) < len(chain)


def _package(ast: dict[str, Any]) -> str:
    node = ast.get("package", {}).get("refr")
    path, _ = _static_path(node)
    return ".".join(path)


def _package_names(modules: Sequence[Parsed], rules: Sequence[_Rule]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for rule in rules:
        package = _package(rule.module.ast)
        depth = len(package.split("."))
        out.setdefault(package, set()).add(rule.path[depth])
    return {p: frozenset(n) for p, n in out.items()}


def _import_paths(module: Parsed) -> dict[str, tuple[str, ...]]:
    """Alias -> the path under `data` it names (imports of `input` are left out)."""
    out: dict[str, tuple[str, ...]] = {}
    for imp in module.ast.get("imports", []):
        path, _ = _static_path(imp.get("refr"))
        if len(path) < 2 or path[0] != "data":
            continue
        alias = imp.get("as")
        name = _text(module, alias) if isinstance(alias, dict) and "start" in alias else path[-1]
        out[name] = tuple(path[1:])
    return out


def _imports(module: Parsed) -> frozenset[str]:
    names = set()
    for imp in module.ast.get("imports", []):
        path, _ = _static_path(imp.get("refr"))
        alias = imp.get("as")
        names.add(
            _text(module, alias) if isinstance(alias, dict) and "start" in alias else path[-1] if path else ""
        )
    return frozenset(names)


def _text(module: Parsed, node: dict[str, Any]) -> str:
    span = node.get("span") if "span" in node else (_kind(node)[1].get("span") if len(node) == 1 else node)
    if not isinstance(span, dict) or "start" not in span:
        span = node
    return module.source[int(span.get("start", 0)) : int(span.get("end", 0))].decode("utf-8")


def first_line(node: Any) -> int:
    """The line of the first span under `node` (0: none); `_normalise` names places with it too."""
    if isinstance(node, dict):
        span = node.get("span")
        if isinstance(span, dict) and "line" in span:
            return int(span["line"])
        for key, value in node.items():
            if key != "span" and (line := first_line(value)):
                return line
    elif isinstance(node, list):
        for value in node:
            if line := first_line(value):
                return line
    return 0


def _data(path: Sequence[str]) -> str:
    return "data." + ".".join(path)
