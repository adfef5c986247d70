"""Source-level rewrites that make regorus evaluate Rego the way OPA does.

Owns: rewriting Rego module text, before it reaches regorus, where regorus
and OPA (the reference: conftest and Gatekeeper both run OPA) are known to
disagree (ADR 0008), and keeping the rewritten text across runs (through
`_compile_cache`). Leaves out: loading, compiling and evaluating (`rego.py`,
`engine.py`); finding the divergences (`tests/differential/`).

1. Negated calls. OPA's compiler (`rewriteDynamics` in `ast/compile.go`)
   moves every reference and nested call out of a call's arguments into a
   fresh, *non-negated* expression placed before the call. For
   `not f(input.missing)` the body therefore fails (undefined), whereas
   regorus evaluates `f(undefined)` inside the negation and finds `not`
   true. The same hoisting is done here::

       not startswith(input.a.b, "x")
       __tg_n1 := input.a.b; not startswith(__tg_n1, "x")

   A call or a composite at the base of a reference goes out too (`expandExprRef`):
   `not split(input.a, "/")[0] == "x"` becomes `__tg_n1 := split(input.a, "/"); not __tg_n1[0] == "x"`.

2. `some x in E` over a scalar `E`: undefined in OPA, a run-time error in
   regorus. `E` is bound first and must be a collection::

       some c in input.spec.containers
       __tg_n2 := input.spec.containers; contains("array set object", type_name(__tg_n2)); some c in __tg_n2

   (skipped where `E` is a collection by its form, or a rule that always is one).

3. Built-ins with an operand of the wrong type (or value: a step of 0): undefined
   in conftest and Gatekeeper (no StrictBuiltinErrors), a run-time error in regorus.
   Calls to the built-ins in `_GUARDS` get type checks on their operands, in place
   where the operands are variables or references (before the statement, or
   at the end of the body for a call in a rule head)::

       endswith(c.image, ":latest")
       is_string(c.image); endswith(c.image, ":latest")

   and otherwise go through module-local functions, appended after the last
   line, that are undefined on such operands. `a | b` and `a & b` of what may
   not be sets go to such functions too.

4. `sprintf`: OPA prints what Go's fmt.Sprintf prints (`%!v(MISSING)`,
   `%!d(float64=2.5)`); regorus raises or prints otherwise. Calls go to
   `_gofmt.sprintf` (a regorus extension, `add_extensions`) unless regorus'
   own prints the same string.

5. Built-ins whose regorus version answers otherwise (the regex family,
   `count` of a string, `upper`/`lower`, `glob.match`, `semver.*`, `yaml.*`…):
   calls go to module-local helpers that call `_gobuiltins` (regorus
   extensions answering `[true, value]`, or `[false, null]` where OPA's
   built-in fails) unless the operands' form shows regorus' answer is OPA's
   (`_go_helper`)::

       regex.match(`^\\w+$`, input.x)
       __tg_b<hash>_go_regex_match(`^\\w+$`, input.x)

What cannot be rewritten is refused with a `PolicyError` naming file and
line, as OPA refuses it: a rule reading the part of `data` that holds it,
and a wildcard `_` inside `not`; `_compile_checks` refuses what else OPA's
compiler refuses and regorus accepts (conflicting rules, unsafe head
variables, recursion, unused declarations).

The inserted expressions go on the line where the statement starts, so
error locations keep pointing at the user's line (columns after the edit
on that line shift).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regorus

from trustgate.errors import PolicyError
from trustgate.policy import _compile_cache

# `_compile_checks`, `_gobuiltins` and `_gofmt` are imported where a module is rewritten or an
# engine needs their functions, not here: a run whose rewritten modules come from the compile
# cache and call none of them starts ~10 ms sooner (re2, fractions and their tables).

_FRESH = re.compile(rb"__tg_n(\d+)")
_MAX_ROUNDS = 16  # nested negations need one round each; real policies nest 1-2 deep
# `==` and `=` keep a bare reference operand in place (OPA's rewriteDynamicsEqExpr).
_EQUALITY_OPS = frozenset({"Eq"})
_CALL_LIKE = frozenset({"Call", "ArithExpr", "BoolExpr", "BinExpr", "Membership", "UnaryExpr"})
_COMPOSITES = frozenset({"Array", "Set", "Object"})
_COLLECTION_KINDS = frozenset({"array", "set", "object", "strings"})  # `_static_type` results
_REFS = frozenset({"RefDot", "RefBrack"})
# `some x in E` over a scalar: undefined in OPA, an error in regorus. Not `type_name(E)
# in {...}`, which needs future.keywords in v0 modules, and not a lookup in a set literal
# (`{...}[type_name(E)]`), which regorus builds anew on every evaluation (~10 µs): one
# `contains` (~1 µs; sound as no scalar's type name is in the string, see `_type_check`).
_COLLECTION_TYPES = "array set object"
_COLLECTION_GUARD = b'contains("array set object", type_name(%s))'


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int  # byte offsets into the module text
    end: int
    text: bytes


def rewrite_module(
    path: str,
    text: str,
    *,
    rego_v0: bool,
    globals_: frozenset[str] = frozenset(),
    collections: frozenset[str] = frozenset(),
    parsed: dict[str, Any] | None = None,
    mocked: frozenset[str] = frozenset(),
) -> str:
    """`text` rewritten so that regorus answers as OPA without StrictBuiltinErrors.

    Guarded built-ins are renamed to module-local helpers (appended after the
    last line), negated calls get their arguments hoisted, `some x in E` gets
    `E` checked; see the module docstring.

    Args:
        path: the module's name (for messages and the helpers' names).
        text: the module source.
        rego_v0: parse as Rego v0.
        globals_: names that are rules of the module's package in other modules
            (a bare rule name is a reference, which OPA hoists; a local variable is not).
        collections: rules (`data.pkg.name`) that are a collection whenever defined
            (partial sets and objects, comprehensions): `some x in` them needs no check.
        parsed: `text`'s AST when the caller has it (parsing is most of the cost).
        mocked: built-ins some module of the set replaces with `with <name> as`: their
            calls are left to regorus (the mock would not reach trustgate's helper).

    Returns:
        The rewritten text; `text` itself when nothing needs rewriting or the
        module does not parse (the caller's compile then reports the error).

    Raises:
        PolicyError: the module has a rule that reads the part of `data` holding
            it (OPA refuses the module), or a rewrite failed to parse (a bug here:
            failing beats evaluating with other semantics).
    """
    if not _may_need(text):
        return text
    data = text.encode("utf-8")
    ast = parsed if parsed is not None else _parse(path, text, rego_v0=rego_v0)
    if ast is None:
        return text
    _refuse_self_reading_rules(path, ast)
    _refuse_wildcards_in_negation(path, ast)
    _refuse_literal_type_errors(path, ast)
    _refuse_inexact_numbers(path, ast, data)
    keep = mocked | _shadowing_names(ast, data) | globals_ | {n + "." for n in globals_}
    outputs = _output_argument_edits(path, ast, data, keep)
    if outputs:  # `f(a, out)` as OPA reads it: `out = f(a)`
        data, ast = _rewritten(path, data, outputs, rego_v0=rego_v0)
    negations = _unary_minus_edits(ast, data, _helper_prefix(path) + _NEG)
    if negations:  # `-x` as OPA reads it: `minus(0, x)`
        data, ast = _rewritten(path, data, negations, rego_v0=rego_v0)
    divisions: set[str] = set()
    for _ in range(_MAX_ROUNDS):  # innermost first; before arithmetic, whose edits would overlap
        edits = _set_operator_edits(ast, data, _helper_prefix(path))
        if not edits:
            break
        divisions.update(e.text.decode().removeprefix(_helper_prefix(path)).split("(", 1)[0] for e in edits)
        data, ast = _rewritten(path, data, edits, rego_v0=rego_v0)
    for _ in range(_MAX_ROUNDS):  # innermost first: a rewritten division is a call, not nested edits
        edits = _division_edits(ast, data, _helper_prefix(path))
        if not edits:
            break
        divisions.update(e.text.decode().removeprefix(_helper_prefix(path)).split("(", 1)[0] for e in edits)
        data, ast = _rewritten(path, data, edits, rego_v0=rego_v0)
    original = data
    data, used = _guard_builtins(
        ast,
        data,
        _helper_prefix(path),
        rego_v0=rego_v0,
        collections=_collections_of(ast, data, collections),
        # The package's rules in other modules shadow built-ins as well (a conftest helpers.rego
        # defining `contains` or `lower` for the package's other files).
        keep=keep,
        package_rules=globals_,
    )
    current = ast if data == original else None  # changed text: parse it again for the offsets
    for _ in range(_MAX_ROUNDS):
        ast = current if current is not None else _parse(path, data.decode("utf-8"), rego_v0=rego_v0)
        current = None
        if ast is None:
            raise PolicyError(
                f"{path}: trustgate could not rewrite the module for OPA's semantics (ADR 0008)",
                hint="please report this with the module",
            )
        edits, deferred = _plan(
            ast, data, globals_ | _module_globals(ast, data), _collections_of(ast, data, collections)
        )
        for edit in sorted(edits, key=lambda e: e.start, reverse=True):
            data = data[: edit.start] + edit.text + data[edit.end :]
        if not deferred:
            break
    if negations:
        used |= {_NEG}
    used |= divisions
    if used:  # after the user's last line: no line of theirs moves
        data = data.rstrip(b"\n") + b"\n\n" + _helpers(_helper_prefix(path), used, rego_v0=rego_v0)
    return data.decode("utf-8")


def rewrite_modules(texts: Sequence[tuple[str, str]], *, rego_v0: bool) -> list[str]:
    """`rewrite_module` over a set of modules that are loaded together.

    Rules of a package may be spread over several modules; their names are
    collected first so that a bare rule name counts as a reference.
    """
    rules_by_package: dict[str, set[str]] = {}
    heads: set[str] = set()  # pkg.head for every rule head as written, ref heads (`k8s.is_pod`) whole
    collection_rules: dict[str, bool] = {}  # data.pkg.name -> every definition is a collection
    packages: list[str | None] = []
    asts: list[dict[str, Any] | None] = []
    v0s = [rego_v0 and not _imports_rego_v1(text) for _, text in texts]
    for (path, text), v0 in zip(texts, v0s, strict=True):
        ast = _parse(path, text, rego_v0=v0)  # every module: OPA's compile checks read them all
        package = _package(ast) if ast is not None else None
        packages.append(package)
        asts.append(ast)
        if ast is not None and package is not None:
            rules_by_package.setdefault(package, set()).update(_rule_names(ast))
            heads.update(f"{package}.{h}" for h in _head_paths(ast, text.encode("utf-8")))
            for name, is_collection in _rule_collections(ast):
                path = f"data.{package}.{name}"
                collection_rules[path] = collection_rules.get(path, True) and is_collection
    _refuse_multiple_defaults(
        [(path, package, ast) for (path, _), package, ast in zip(texts, packages, asts, strict=True)]
    )
    collections = frozenset(p for p, c in collection_rules.items() if c)
    mocked = _mocked_builtins(texts, asts)
    for (path, text), package, ast in zip(texts, packages, asts, strict=True):
        if ast is not None and package is not None:
            _refuse_undefined_namespaced_calls(
                path, ast, text.encode("utf-8"), package, rules_by_package, heads
            )
    out = [
        rewrite_module(
            path,
            text,
            rego_v0=v0,
            globals_=frozenset(rules_by_package.get(package, set())) if package else frozenset(),
            collections=collections,
            parsed=ast,
            mocked=mocked,
        )
        for (path, text), package, ast, v0 in zip(texts, packages, asts, v0s, strict=True)
    ]
    # After the rewrites, whose own refusals name the cause more precisely (a rule reading
    # `data` is also recursive).
    from trustgate.policy import _compile_checks

    _compile_checks.check(
        [
            _compile_checks.Parsed(path, ast, text.encode("utf-8"))
            for (path, text), ast in zip(texts, asts, strict=True)
            if ast is not None
        ]
    )
    return out


def _mocked_builtins(
    texts: Sequence[tuple[str, str]], asts: Sequence[dict[str, Any] | None]
) -> frozenset[str]:
    """Built-ins that a `with` of some module replaces. A test module (`*_test.rego`, loaded
    by `policy test` only) may mock any; a policy module may not mock one whose calls
    trustgate routes to Go's semantics: the mock would reach regorus' built-in only, and
    leaving every call to regorus would answer otherwise than OPA elsewhere (ADR 0008)."""
    from trustgate.policy import _gobuiltins

    names = {"count", *_GUARDS, *_gobuiltins.BUILTINS}
    out: set[str] = set()
    for (path, text), ast in zip(texts, asts, strict=True):
        if ast is None or "with" not in text:
            continue
        for target, line in with_targets(ast, text.encode("utf-8")):
            if target not in names:
                continue
            out.add(target)
            if not path.endswith("_test.rego") and (target == "count" or target in _gobuiltins.BUILTINS):
                raise PolicyError(
                    f"{path}:{line}: `with {target} as ...` is not supported outside *_test.rego: "
                    f"trustgate evaluates {target} with OPA's semantics, which the mock would not "
                    "replace (ADR 0008)",
                    hint="move the mock to a test module, or mock a rule or function of the policy instead",
                )
    return frozenset(out)


def _refuse_undefined_namespaced_calls(
    path: str,
    ast: dict[str, Any],
    data: bytes,
    package: str,
    rules_by_package: dict[str, set[str]],
    heads: AbstractSet[str] = frozenset(),
) -> None:
    """`ns.f(...)` where `ns` is an import alias or a rule of the package is the function
    `data.<...>.ns.f`, never a built-in: OPA refuses the module when no such function is
    loaded (rego_type_error), where regorus would call the built-in of that name."""
    aliases = {
        alias: target.removeprefix("data.")
        for target, alias, _ in _imports(ast, data)
        if target.startswith("data.")
    }
    own = rules_by_package.get(package, set())
    for call in _calls(ast.get("rules", [])):
        name = _call_name(call.get("fcn"))
        if "." not in name:
            continue
        ns, f = name.split(".", 1)
        if ns in own:
            where = f"{package}.{ns}"
        elif ns in aliases:
            where = aliases[ns]
        else:
            continue
        target = f"{where}.{f}"  # defined as a rule of a package, or by a ref head written whole
        defined = f in rules_by_package.get(where, set()) or target in heads
        if not defined and "." in f:  # `lib.k8s.f` through `import data.lib`: package lib.k8s's f
            inner, _, last = target.rpartition(".")
            defined = last in rules_by_package.get(inner, set())
        if not defined:
            line = _first_line(call.get("fcn"))
            raise PolicyError(
                f"{path}:{line}: rego_type_error: undefined function data.{where}.{f} "
                f"(`{ns}` is {'a rule' if ns in own else 'an import'} here, not the built-in {name})"
            )


def _first_line(node: Any) -> int:
    from trustgate.policy._compile_checks import first_line

    return first_line(node)


def _may_need(text: str) -> bool:
    return (
        any(w in text for w in ("not", "some", "data"))
        or _builtin_names().search(text) is not None
        or _NUMBERS_AND_NEGATIONS.search(text) is not None
        or _BRACKETED_CALL.search(text) is not None
    )


_BRACKETED_CALL = re.compile(r"\]\s*\(")  # `net["cidr_contains"](...)`: the built-in too


def _arity(name: str) -> int | None:
    """The number of operands of a built-in whose calls trustgate guards or routes, or None."""
    from trustgate.policy import _gobuiltins

    if name == "count":
        return 1
    if name in _gobuiltins.BUILTINS:
        return _gobuiltins.BUILTINS[name].arity
    return len(_GUARDS[name]) if name in _GUARDS else None


def _output_argument_edits(path: str, ast: dict[str, Any], data: bytes, keep: frozenset[str]) -> list[_Edit]:
    """`f(a, b, out)` as a statement of its own, OPA's output-argument form of `out = f(a, b)`
    (an `out` already bound is compared), rewritten to that form for a built-in trustgate
    guards or routes, so that the call goes where `f(a, b)` goes (ADR 0008, item 17).

    Raises:
        PolicyError: such a call with one operand too many anywhere else (negated, or inside
            an expression), which trustgate does not rewrite, or with the wrong number of operands
            (OPA refuses the module: rego_type_error).
    """
    statements: set[int] = set()
    for query in _queries(ast.get("rules", [])):
        for stmt in query["stmts"]:
            literal = stmt.get("literal")
            expr = literal.get("Expr") if isinstance(literal, dict) else None
            call = expr.get("expr", {}).get("Call") if isinstance(expr, dict) else None
            if isinstance(call, dict):
                statements.add(id(call))
    edits = []
    for call in _calls(ast.get("rules", [])):
        name = _call_name(call.get("fcn"))
        arity = _arity(name)
        params = call.get("params", [])
        if arity is None or len(params) == arity or _kept(name, keep):
            continue
        line = _first_line(call.get("fcn"))
        if len(params) != arity + 1:
            raise PolicyError(
                f"{path}:{line}: rego_type_error: {name} takes {arity} operand(s), {len(params)} given"
            )
        if id(call) not in statements:
            raise PolicyError(
                f"{path}:{line}: `{name}` with an output argument is supported only as a statement "
                "of its own (trustgate evaluates the built-in with OPA's semantics, ADR 0008)",
                hint=f"write `out := {name}(...)` or `out == {name}(...)`",
            )
        start, end = _span({"Call": call})
        fcn_end = _span(call["fcn"])[1]
        operands = b", ".join(data[slice(*_span(p))] for p in params[:-1])
        out = data[slice(*_span(params[-1]))]
        edits.append(_Edit(start, end, out + b" = " + data[start:fcn_end] + b"(" + operands + b")"))
    return edits


# A long or exponent number (`_refuse_inexact_numbers`), or an arithmetic or set operator (`-x` too).
_NUMBERS_AND_NEGATIONS = re.compile(r"[0-9]{16}|[0-9.][eE][+-]?[0-9]|[-+*/%&|]")


# -- what cannot be rewritten: refused ---------------------------------------------


def _refuse_self_reading_rules(path: str, ast: dict[str, Any]) -> None:
    """A rule that reads a part of `data` holding the rule itself: OPA refuses it.

    OPA's compiler sees `object.get(data, ["a", "b"], {})` or `data.pkg` read from
    inside package `pkg` as the rule depending on itself (rego_recursion_error);
    regorus evaluates it. conftest and Gatekeeper would not load the module, so
    trustgate does not either.

    Raises:
        PolicyError: such a read, with the file, line and the part of `data` read.
    """
    package = (_package(ast) or "").split(".")
    for rule in ast.get("rules", []):
        spec = rule.get("Spec") if isinstance(rule, dict) else None
        if not isinstance(spec, dict):
            continue
        name = next(
            (_head_var(v.get("refr")) for v in spec.get("head", {}).values() if isinstance(v, dict)), None
        )
        own = [*package, name or ""]
        for read, line in _data_reads(spec):
            if own[: len(read)] == read:
                shown = "data" + "".join(f".{p}" for p in read)
                raise PolicyError(
                    f"{path}:{line}: rule `{name}` reads `{shown}`, which holds the rule itself: "
                    "OPA (conftest, Gatekeeper) rejects the module as recursive (rego_recursion_error)",
                    hint="read only the part of data the rule needs (e.g. `data.trustgate.vuln`, "
                    "with a `default` for when it is absent)",
                )


def _refuse_wildcards_in_negation(path: str, ast: dict[str, Any]) -> None:
    """`not p(xs[_])`: OPA refuses the module (the wildcard is unsafe); regorus reads it as "none".

    A wildcard inside a comprehension under the `not` is bound there and fine.

    Raises:
        PolicyError: such a wildcard, with the file and line.
    """
    for query in _queries(ast.get("rules", [])):
        for stmt in query["stmts"]:
            literal = stmt.get("literal")
            negated = literal.get("NotExpr") if isinstance(literal, dict) else None
            if not isinstance(negated, dict):
                continue
            line = _wildcard_line(negated.get("expr"))
            if line:
                raise PolicyError(
                    f"{path}:{line}: `_` inside `not`: OPA (conftest, Gatekeeper) rejects the module "
                    "(rego_unsafe_var_error: var _ is unsafe)",
                    hint="bind the element first (`some x in xs; not p(x)`), or negate a helper rule "
                    "that iterates (`not any_bad` with `any_bad if p(xs[_])`)",
                )


_DEFAULT = "default"


def _refuse_multiple_defaults(modules: Sequence[tuple[str, str | None, dict[str, Any] | None]]) -> None:
    """Two `default` rules for one rule, in one module or across a package's modules.

    OPA's type checker refuses the modules ("multiple default rules ... found");
    regorus evaluated them with one of the values.

    Raises:
        PolicyError: the second default, with file and line, naming every one.
    """
    seen: dict[str, list[str]] = {}
    for path, package, ast in modules:
        if ast is None or package is None:
            continue
        for rule in ast.get("rules", []):
            default = rule.get("Default") if isinstance(rule, dict) else None
            name = _head_text(default.get("refr")) if isinstance(default, dict) else None
            if not name:
                continue
            where = seen.setdefault(f"data.{package}.{name}", [])
            where.append(f"{path}:{_first_line(default)}")
            if len(where) > 1:
                raise PolicyError(
                    f"{where[-1]}: rego_type_error: multiple default rules data.{package}.{name} found at "
                    f"{', '.join(where)}: OPA (conftest, Gatekeeper) rejects the module",
                    hint="keep one `default` for the rule",
                )


def _head_text(ref: Any) -> str | None:
    """A rule head's reference as text (`allow`, `a.b`), or None when it is not all fields."""
    parts: list[str] = []
    while isinstance(ref, dict):
        kind, body = _kind(ref)
        if kind == "Var":
            parts.append(str(body.get("value")))
            return ".".join(reversed(parts))
        if kind != "RefDot" or not isinstance(body.get("field"), list):
            return None
        parts.append(str(body["field"][1]))
        ref = body.get("refr")
    return None


# OPA's signatures of the built-ins in `_GUARDS`, as its type checker prints them.
_SIGNATURES = {
    "startswith": "search: string, base: string, result: boolean",
    "endswith": "search: string, base: string, result: boolean",
    "contains": "haystack: string, needle: string, result: boolean",
    "indexof": "haystack: string, needle: string, output: number",
    "trim": "value: string, cutset: string, output: string",
    "trim_left": "value: string, cutset: string, output: string",
    "trim_right": "value: string, cutset: string, output: string",
    "trim_prefix": "value: string, prefix: string, output: string",
    "trim_suffix": "value: string, suffix: string, output: string",
    "split": "x: string, delimiter: string, ys: array[string]",
    "lower": "x: string, y: string",
    "upper": "x: string, y: string",
    "trim_space": "value: string, output: string",
    "replace": "x: string, old: string, new: string, y: string",
    "substring": "value: string, offset: number, length: number, output: string",
    "sprintf": "format: string, values: array[any], output: string",
    "concat": "delimiter: string, collection: any<array[string], set[string]>, output: string",
    "count": "collection: any<array[any], object[any: any], set[any], string>, n: number",
    "to_number": "value: any<null, boolean, number, string>, num: number",
    "object.get": "object: object[any: any], key: any, default: any, value: any",
    "object.keys": "object: object[any: any], value: set[any]",
    "object.union": "a: object[any: any], b: object[any: any], output: any",
    "array.concat": "x: array[any], y: array[any], z: array[any]",
    "regex.match": "pattern: string, value: string, result: boolean",
    "glob.match": "pattern: string, delimiters: any<null, array[string]>, match: string, result: boolean",
    "abs": "x: number, y: number",
    "round": "x: number, y: number",
    "array.reverse": "arr: array[any], rev: array[any]",
    "base64.encode": "x: string, y: string",
    "base64url.encode": "x: string, y: string",
    "base64url.encode_no_pad": "x: string, y: string",
    "hex.encode": "x: string, y: string",
    "strings.reverse": "x: string, y: string",
    "uuid.parse": "uuid: string, result: object[string: any]",
    "bits.and": "x: number, y: number, z: number",
    "bits.or": "x: number, y: number, z: number",
    "bits.xor": "x: number, y: number, z: number",
    "bits.negate": "x: number, z: number",
    "bits.lsh": "x: number, s: number, z: number",
    "bits.rsh": "x: number, s: number, z: number",
    "graph.reachable": "graph: object[any: any<array[any], set[any]>], initial: any<array[any], set[any]>, "
    "output: set[any]",
    "graph.reachable_paths": "graph: object[any: any<array[any], set[any]>], "
    "initial: any<array[any], set[any]>, output: set[array[any]]",
    "json.patch": "target: any, patches: array[object<op: string, path: any>[any: any]], output: any",
    "max": "collection: any<array[any], set[any]>, n: any",
    "min": "collection: any<array[any], set[any]>, n: any",
    "sort": "collection: any<array[any], set[any]>, n: array[any]",
    "numbers.range": "a: number, b: number, range: array[number]",
    "numbers.range_step": "a: number, b: number, step: number, range: array[number]",
    "object.filter": "object: object[any: any], keys: any<array[any], object[any: any], set[any]>, "
    "filtered: object[any: any]",
    "object.remove": "object: object[any: any], keys: any<array[any], object[any: any], set[any]>, "
    "output: object[any: any]",
    "object.union_n": "objects: array[object[any: any]], output: object[any: any]",
    "intersection": "xs: set[set[any]], y: set[any]",
    "union": "xs: set[set[any]], y: set[any]",
    "object.subset": "super: any<array[any], object[any: any], set[any]>, "
    "sub: any<array[any], object[any: any], set[any]>, result: boolean",
    **dict.fromkeys(
        ("strings.any_prefix_match", "strings.any_suffix_match"),
        "search: any<string, array[string], set[string]>, base: any<string, array[string], set[string]>, "
        "result: boolean",
    ),
}
_LITERALS = {
    "String": "string",
    "RawString": "string",
    "Number": "number",
    "Bool": "boolean",
    "Null": "null",
    "Array": "array",
    "Set": "set",
    "Object": "object",
    "ArrayCompr": "array",
    "SetCompr": "set",
    "ObjectCompr": "object",
}


def _refuse_literal_type_errors(path: str, ast: dict[str, Any]) -> None:
    """A built-in of `_GUARDS` called with a literal of a type it does not take.

    OPA's type checker refuses the module (`startswith(5, "a")`: rego_type_error);
    regorus would evaluate it (and the guards make the call undefined). Only the
    operand's form is looked at: types that flow through variables and functions
    are OPA's alone (ADR 0008, a known divergence).

    Raises:
        PolicyError: such a call, with file, line and OPA's message.
    """
    for call in _calls(ast.get("rules", [])):
        name = _call_name(call.get("fcn"))
        params = call.get("params", [])
        if name not in _GUARDS or len(params) != len(_GUARDS[name]):
            continue
        if any(_literal_mismatch(t, p) for t, p in zip(_GUARDS[name], params, strict=True)):
            have = ", ".join(_literal_type_text(p) for p in params)
            line = _first_line(call.get("fcn"))
            raise PolicyError(
                f"{path}:{line}: rego_type_error: {name}: invalid argument(s)\n"
                f"\thave: ({have})\n\twant: ({_SIGNATURES[name]})",
                hint=f"OPA (conftest, Gatekeeper) rejects the module: give {name} operands of its types",
            )


def _refuse_inexact_numbers(path: str, ast: dict[str, Any], data: bytes) -> None:
    """A number literal regorus does not hold exactly: OPA compares and computes with the
    number as written, regorus with a float64 (`x > 99999999999999999999` was false for 1e20,
    a false allow). Refused as input and data beyond the range are (`rego.refuse_unevaluable`):
    a number outside -2^63..2^64-1, or of magnitude 2^53 or more written with a fraction or
    exponent, that no float64 equals (`1.8446744073709552e19`); 2^64 and 1e20 compare alike."""
    from fractions import Fraction  # here: a run whose rewrites come from the cache skips it

    for node in _nodes_of_kind(ast.get("rules", []), "Number"):
        start, end = _span(node)
        text = data[start:end].decode("utf-8", "replace")
        negative = text.startswith("-") or data[:start].rstrip().endswith(b"-")
        text = text.removeprefix("-")
        try:
            if text.isdigit():
                value = int(text)
                inexact = value > (2**63 if negative else 2**64 - 1) and float(value) != value
            else:
                exact = Fraction(text)
                inexact = abs(exact) >= 2**53 and Fraction(float(text)) != exact
        except (ValueError, OverflowError, ZeroDivisionError):
            inexact = True
        if inexact:
            raise PolicyError(
                f"{path}:{_first_line(node)}: the number {'-' if negative else ''}{text} is beyond what "
                "trustgate's engine holds exactly (beyond -2^63..2^64-1 and 2^53, only numbers a "
                "float64 equals): OPA compares it exactly, regorus would round it (ADR 0008, item 14)",
                hint="write a number within that range, or one a float64 holds exactly (1e20)",
            )


def _nodes_of_kind(node: Any, kind: str) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if len(node) == 1 and isinstance(node.get(kind), dict):
            yield node  # `{kind: body}`, as `_span` takes it
        for key, value in node.items():
            if key != "span" and isinstance(value, (dict, list)):
                yield from _nodes_of_kind(value, kind)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes_of_kind(value, kind)


_OPENERS = {ord("("): ord(")"), ord("["): ord("]"), ord("{"): ord("}")}
_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


_NEG = "neg"  # the helper: `0 - x` where `x` is a number, else undefined (OPA's `minus` fails)
# `/` and `%`: OPA's `div` and `rem` fail (undefined without StrictBuiltinErrors) on a zero
# divisor, an operand that is not a number and, for `%`, one that is not an integer; regorus
# raises (exit 3 where conftest is silent). Helpers: (name, Rego body over a and b).
_DIVISIONS = {
    "Mod": ("mod", "is_number(__a0); is_number(__a1); __a1 != 0; round(__a0) == __a0; round(__a1) == __a1"),
}
# `+ - * /` go to OPA's arithmetic (`_gobuiltins`' `plus`, `minus`, `mul`, `div`): OPA computes
# with 64-bit big.Floats read from the numbers' decimal text (`0.7 + 0.1 >= 0.8` is true),
# regorus with float64 (0.7999999999999999: a deny became an allow). Integers keep regorus'.
_ARITHMETIC = {"Add": "go_plus", "Sub": "go_minus", "Mul": "go_mul", "Div": "go_div"}


def _division_edits(ast: dict[str, Any], data: bytes, prefix: str) -> list[_Edit]:
    """`a + b`, `a - b`, `a * b`, `a / b` and `a % b` without one of them inside, as calls of
    helpers that compute as OPA does and are undefined where OPA's built-in fails; not where
    both operands of `+ - *` are integers by their form, nor for `%` an integer dividend by
    its form and a non-zero integer literal divisor."""
    ops = _DIVISIONS.keys() | _ARITHMETIC.keys()
    nested = {
        id(inner["ArithExpr"])
        for node in _nodes_of_kind(ast.get("rules", []), "ArithExpr")
        for side in ("lhs", "rhs")
        for inner in _nodes_of_kind(node["ArithExpr"].get(side), "ArithExpr")
        if inner["ArithExpr"].get("op") in ops
    }
    integers: frozenset[str] | None = None
    edits = []
    for node in _nodes_of_kind(ast.get("rules", []), "ArithExpr"):
        body = node["ArithExpr"]
        op, lhs, rhs = body.get("op"), body.get("lhs"), body.get("rhs")
        if op not in ops or not isinstance(lhs, dict) or not isinstance(rhs, dict):
            continue
        if any(id(n["ArithExpr"]) in nested for n in _nodes_of_kind([lhs, rhs], "ArithExpr")):
            continue  # one inside: the next round
        if integers is None:
            integers = _integer_vars(ast, data)
        if op == "Mod":
            divisor = _kind(rhs)[1].get("value") if _kind(rhs)[0] == "Number" else None
            if isinstance(divisor, int) and divisor != 0 and _static_integer(lhs, integers):
                continue
        # (a quotient of integers is a fraction where the divisor does not divide: `/` stays)
        elif op != "Div" and _static_integer(lhs, integers) and _static_integer(rhs, integers):
            continue
        start, end = _span(node)
        end = _past_quote(end, data)
        lhs_text = data[_span(lhs)[0] : _past_quote(_span(lhs)[1], data)]
        rhs_text = data[_span(rhs)[0] : _past_quote(_span(rhs)[1], data)]
        helper = prefix + (_DIVISIONS[op][0] if op in _DIVISIONS else _ARITHMETIC[op])
        edits.append(_Edit(start, end, helper.encode() + b"(" + lhs_text + b", " + rhs_text + b")"))
    return edits


# `a | b` and `a & b`: OPA's `or` and `and` fail (undefined without StrictBuiltinErrors) on an
# operand that is not a set; regorus raised. Helper name -> the operator.
_SET_OPERATORS = {"Union": ("set_or", "|"), "Intersection": ("set_and", "&")}


def _set_operator_edits(ast: dict[str, Any], data: bytes, prefix: str) -> list[_Edit]:
    """`a | b` and `a & b` without one of them inside, as calls of helpers that are undefined
    unless both operands are sets; not where both are sets by their form."""
    rules = ast.get("rules", [])
    nested = {
        id(inner["BinExpr"])
        for node in _nodes_of_kind(rules, "BinExpr")
        for side in ("lhs", "rhs")
        for inner in _nodes_of_kind(node["BinExpr"].get(side), "BinExpr")
    }
    edits = []
    for node in _nodes_of_kind(rules, "BinExpr"):
        body = node["BinExpr"]
        op, lhs, rhs = body.get("op"), body.get("lhs"), body.get("rhs")
        if op not in _SET_OPERATORS or not isinstance(lhs, dict) or not isinstance(rhs, dict):
            continue
        if any(id(n["BinExpr"]) in nested for n in _nodes_of_kind([lhs, rhs], "BinExpr")):
            continue  # one inside: the next round
        if all(_static_type(n) == "set" or _kind(n)[0] == "Set" for n in (lhs, rhs)):
            continue
        start, end = _span(node)
        end = _past_quote(end, data)
        lhs_text = data[_span(lhs)[0] : _past_quote(_span(lhs)[1], data)]
        rhs_text = data[_span(rhs)[0] : _past_quote(_span(rhs)[1], data)]
        helper = prefix + _SET_OPERATORS[op][0]
        edits.append(_Edit(start, end, helper.encode() + b"(" + lhs_text + b", " + rhs_text + b")"))
    return edits


def _unary_minus_edits(ast: dict[str, Any], data: bytes, helper: str) -> list[_Edit]:
    """`-t` of a term that is not a number literal, as OPA reads it: `minus(0, t)`, here
    `helper(t)`. regorus refuses it at run time ("unary - can only be used with numeric
    literals") and reads `-input.n < 0` as `-(input.n < 0)`, so the term's end is found in
    the text: a name with `.name`, `[...]` and `(...)` after it, or a bracketed group."""
    edits = []
    for node in _nodes_of_kind(ast.get("rules", []), "UnaryExpr"):
        start = _span(node)[0]
        if data[start : start + 1] != b"-":
            continue
        i = start + 1
        while i < len(data) and data[i] in b" \t":
            i += 1
        if i >= len(data) or data[i] in b"0123456789.":
            continue  # a negative number: regorus reads it as OPA does
        end = _term_end(data, i)
        if end is None:
            continue  # left to regorus, which fails closed (exit 3)
        edits.append(_Edit(start, end, helper.encode() + b"(" + data[i:end] + b")"))
    return edits


def _term_end(data: bytes, i: int) -> int | None:
    if data[i] in _OPENERS:
        closed = _closing(data, i)
        if closed is None:
            return None
        i = closed
    elif match := _NAME.match(data, i):
        i = match.end()
    else:
        return None
    while i < len(data):
        if data[i] == ord(".") and (match := _NAME.match(data, i + 1)):
            i = match.end()
        elif data[i] in (ord("["), ord("(")):
            end = _closing(data, i)
            if end is None:
                return None
            i = end
        else:
            break
    return i


def _closing(data: bytes, i: int) -> int | None:
    """The offset after the bracket that closes the one at `i` (strings skipped), or None."""
    stack = [_OPENERS[data[i]]]
    i += 1
    while i < len(data) and stack:
        c = data[i]
        if c == ord('"'):
            i += 1
            while i < len(data) and data[i] != ord('"'):
                i += 2 if data[i] == ord("\\") else 1
        elif c == ord("`"):
            i = data.find(b"`", i + 1)
            if i < 0:
                return None
        elif c in _OPENERS:
            stack.append(_OPENERS[c])
        elif c == stack[-1]:
            stack.pop()
        elif c in b")]}":
            return None
        i += 1
    return i if not stack else None


def _literal_mismatch(types: str, node: Any) -> bool:
    kind, body = _kind(node) if isinstance(node, dict) else ("", {})
    literal = _LITERALS.get(kind)
    if not types or literal is None:
        return False
    if types == "string strings" and literal != "string":
        types = "strings"
    elif types in _KINDS:
        types = _KINDS[types][1]
    if types == "strings":
        if literal not in ("array", "set"):
            return True
        items = body.get("items", []) if kind in ("Array", "Set") else []
        return any(_LITERALS.get(_kind(i)[0], "string") != "string" for i in items if isinstance(i, dict))
    return literal not in types.split()


def _literal_type_text(node: Any) -> str:
    """The type of an operand as OPA prints it, as far as its form tells (else `any`)."""
    kind, body = _kind(node) if isinstance(node, dict) else ("", {})
    literal = _LITERALS.get(kind)
    if literal is None:
        return "any"
    if kind == "Array":
        return f"array<{', '.join(_literal_type_text(i) for i in body.get('items', []))}>"
    if literal in ("array", "set"):
        return f"{literal}[any]"
    if literal == "object":
        return "object[any: any]"
    return literal


def _wildcard_line(node: Any) -> int:
    if isinstance(node, list):
        return next((line for item in node if (line := _wildcard_line(item))), 0)
    if not isinstance(node, dict):
        return 0
    kind, body = _kind(node) if len(node) == 1 else ("", node)
    if kind.endswith("Compr"):
        return 0
    if kind == "Var" and body.get("value") == "_":
        return int(body.get("span", {}).get("line", 0))
    return _wildcard_line([v for k, v in body.items() if k != "span" and isinstance(v, (dict, list))])


def _data_reads(node: Any) -> Iterator[tuple[list[str], int]]:
    """(static path, line) of every read of `data` under `node`; `with` targets are not reads."""
    if isinstance(node, list):
        for item in node:
            yield from _data_reads(item)
        return
    if not isinstance(node, dict):
        return
    tagged = len(node) == 1 and next(iter(node))[:1].isupper()  # {"Kind": {...}}, not a plain record
    kind, body = _kind(node) if tagged else ("", node)
    if kind in _REFS or (kind == "Var" and body.get("value") == "data"):
        chain: list[dict[str, Any]] = []
        cursor: Any = node
        while isinstance(cursor, dict) and _kind(cursor)[0] in _REFS:
            chain.append(_kind(cursor)[1])
            cursor = _kind(cursor)[1].get("refr")
        base_kind, base = _kind(cursor) if isinstance(cursor, dict) else ("", {})
        if base_kind == "Var" and base.get("value") == "data":
            path: list[str] = []
            for link in reversed(chain):
                if "field" in link and isinstance(link["field"], list) and len(link["field"]) == 2:
                    path.append(str(link["field"][1]))
                    continue
                index = link.get("index")
                index_kind, index_body = _kind(index) if isinstance(index, dict) else ("", {})
                if index_kind != "String":
                    break
                path.append(str(index_body.get("value")))
            yield path, int(base.get("span", {}).get("line", 0))
        for link in chain:  # keys inside the reference may read data too
            if isinstance(link.get("index"), dict):
                yield from _data_reads(link["index"])
        return
    for key, value in body.items():
        if key not in ("with_mods", "span") and isinstance(value, (dict, list)):
            yield from _data_reads(value)


# -- built-in errors -------------------------------------------------------------
#
# conftest and Gatekeeper evaluate without OPA's StrictBuiltinErrors: a built-in
# that fails (a wrong operand type) makes its expression undefined. regorus always
# raises. A call to one of these built-ins goes through a module-local function that
# is undefined exactly when the operand types make the built-in fail; other failures
# (a string `to_number` cannot parse, an invalid regex) and other built-ins still
# raise, and trustgate reports that it could not evaluate (exit 3).

# Each operand's allowed types, as `type_name` names them ("" for any, "strings" for an
# array or set of strings), or one of the kinds of `_KINDS` where OPA asks more than a
# type (an integer, an array of objects). A guard is a call to a module-local function,
# which costs regorus about 2 µs (more inside iteration): a call whose operands are of an
# allowed type by their form (literals, comprehensions, results of built-ins of known
# type) is left alone.
_GUARDS: dict[str, tuple[str, ...]] = {
    "startswith": ("string", "string"),
    "endswith": ("string", "string"),
    "contains": ("string", "string"),
    "indexof": ("string", "string"),
    "trim": ("string", "string"),
    "trim_left": ("string", "string"),
    "trim_right": ("string", "string"),
    "trim_prefix": ("string", "string"),
    "trim_suffix": ("string", "string"),
    "split": ("string", "string"),
    "lower": ("string",),
    "upper": ("string",),
    "trim_space": ("string",),
    "replace": ("string", "string", "string"),
    "substring": ("string", "number", "number"),
    "sprintf": ("string", "array"),
    "concat": ("string", "strings"),
    "count": ("array set object string",),
    "to_number": ("null boolean number string",),
    "object.get": ("object", "", ""),
    "object.keys": ("object",),
    "object.union": ("object", "object"),
    "array.concat": ("array", "array"),
    "regex.match": ("string", "string"),
    "glob.match": ("string", "array null", "string"),
    # The rest of OPA's catalogue that regorus evaluates itself and that raised where OPA's
    # built-in fails (undefined in conftest): found by tests/differential/
    # test_builtin_operands_vs_opa.py (ADR 0008, item 20).
    "abs": ("number",),
    "round": ("number",),
    "array.reverse": ("array",),
    "base64.encode": ("string",),
    "base64url.encode": ("string",),
    "base64url.encode_no_pad": ("string",),
    "hex.encode": ("string",),
    "strings.reverse": ("string",),
    "uuid.parse": ("string",),
    "bits.and": ("integer", "integer"),
    "bits.or": ("integer", "integer"),
    "bits.xor": ("integer", "integer"),
    "bits.negate": ("integer",),
    "bits.lsh": ("integer", "natural"),
    "bits.rsh": ("integer", "natural"),
    "graph.reachable": ("object", "array set"),
    "graph.reachable_paths": ("object", "array set"),
    "json.patch": ("", "objects"),
    "max": ("array set",),
    "min": ("array set",),
    "sort": ("array set",),
    "numbers.range": ("integer", "integer"),
    "numbers.range_step": ("integer", "integer", "positive"),
    "object.filter": ("object", "array set object"),
    "object.remove": ("object", "array set object"),
    "object.union_n": ("objects",),
    "object.subset": ("array set object", "array set object"),
    "intersection": ("sets",),
    "union": ("sets",),
    "strings.any_prefix_match": ("string strings", "string strings"),
    "strings.any_suffix_match": ("string strings", "string strings"),
}
# Operand kinds beyond types: the Rego that holds exactly for such an operand `{0}`, and the
# types a literal of the kind has (for `_refuse_literal_type_errors`, as OPA's type checker
# sees them: an integer is a number).
_KINDS: dict[str, tuple[str, str]] = {
    # OPA's `BigIntOperand`: an integral number (`2.0` too)
    "integer": ("is_number({0}); round({0}) == {0}", "number"),
    # ... not negative (a shift), positive (a step)
    "natural": ("is_number({0}); round({0}) == {0}; {0} >= 0", "number"),
    "positive": ("is_number({0}); round({0}) == {0}; {0} > 0", "number"),
    "objects": ("is_array({0}); count([e | e := {0}[_]; not is_object(e)]) == 0", "array"),
    "sets": ("is_set({0}); count([e | e := {0}[_]; not is_set(e)]) == 0", "set"),
    # a string, or an array or set of strings (the comprehension does not iterate a string)
    "string strings": (
        'contains("string array set", type_name({0})); '
        "count([e | not is_string({0}); e := {0}[_]; not is_string(e)]) == 0",
        "string array set",
    ),
}
_INTEGERS_2 = "is_number(__a0); round(__a0) == __a0; is_number(__a1); round(__a1) == __a1"
# Where the call regorus can make differs from the built-in's on operands OPA takes: Rego
# branches (value, body) over the helper's operands `__a0`...; a body's type checks are its
# own. Calls of these built-ins always go through the helper (no check in place).
_GUARD_BRANCHES: dict[str, tuple[tuple[str, str], ...]] = {
    # regorus panics on an empty array ("window size must be non-zero") and answers for
    # operands OPA refuses (`object.subset(null, null)` was true, so `not` denied nothing)
    "object.subset": (
        ("true", "is_array(__a0); is_array(__a1); count(__a1) == 0"),
        # (OPA's own quirk: an empty array does not hold the empty set)
        ("false", "is_array(__a0); count(__a0) == 0; is_set(__a1)"),
        ("__r", "is_object(__a0); is_object(__a1); __r := object.subset(__a0, __a1)"),
        ("__r", 'is_array(__a0); contains("array set", type_name(__a1)); __r := object.subset(__a0, __a1)'),
        ("__r", "is_set(__a0); is_set(__a1); __r := object.subset(__a0, __a1)"),
    ),
    # OPA ignores a node whose neighbours are not a collection; regorus raised
    "graph.reachable_paths": (
        (
            "__r",
            'is_object(__a0); contains("array set", type_name(__a1)); '
            '__g := object.union(__a0, {k: [] | __v := __a0[k]; not contains("array set", type_name(__v))}); '
            "__r := graph.reachable_paths(__g, __a1)",
        ),
    ),
    # regorus is undefined for an integral float (`2.0`) that OPA reads as an integer, and for
    # a right shift of 2^53 and more (OPA's big.Int shifts every bit out: 0, or -1 below 0)
    **{
        f"bits.{op}": (
            *(
                (
                    (value, f"{_INTEGERS_2}; __a1 >= 64; __a0 {sign} 0")
                    for value, sign in (("0", ">="), ("-1", "<"))
                )
                if op == "rsh"
                else ()
            ),
            (
                "__r",
                _INTEGERS_2
                + ("; __a1 >= 0" if op in ("lsh", "rsh") else "")
                + f"; __r := bits.{op}(round(__a0), round(__a1))",
            ),
        )
        for op in ("and", "or", "xor", "lsh", "rsh")
    },
    "bits.negate": (("__r", "is_number(__a0); round(__a0) == __a0; __r := bits.negate(round(__a0))"),),
}
# What built-ins return when they are defined (for the operands they take), by their form.
_RESULT_TYPES = {
    **dict.fromkeys(
        [
            "lower",
            "upper",
            "trim",
            "trim_left",
            "trim_right",
            "trim_prefix",
            "trim_suffix",
            "trim_space",
            "replace",
            "sprintf",
            "concat",
            "substring",
            "format_int",
            "json.marshal",
            "strings.replace_n",
            "type_name",
        ],
        "string",
    ),
    **dict.fromkeys(["count", "indexof", "to_number", "abs", "round", "ceil", "floor"], "number"),
    **dict.fromkeys(["array.concat", "array.slice", "sort"], "array"),
    **dict.fromkeys(["object.union", "object.remove", "object.filter"], "object"),
    "split": "strings",  # an array of strings
    "object.keys": "set",
}


def _type_check(types: str, arg: str) -> str:
    """Rego that is true exactly when `arg` has one of `types` (see `_GUARDS`)."""
    if not types:
        return ""
    if types in _KINDS:
        return _KINDS[types][0].format(arg)
    if types == "i64":  # a number regorus hands to Python as it is (`_UNSAFE`)
        return f"is_number({arg}); abs({arg}) < 9.223372036854775808e18"
    if types == "strings":
        return f'contains("array set", type_name({arg})); count([x | x := {arg}[_]; not is_string(x)]) == 0'
    if " " not in types:
        return f"is_{types}({arg})"
    # One built-in call: a lookup in a set literal (`{...}[type_name(x)]`) is rebuilt on
    # every evaluation by regorus (about 10 µs), and `in` needs future.keywords in v0.
    # Sound because no other type's name is a substring of `types` (tests/unit/policy).
    return f'contains("{types}", type_name({arg}))'


def _static_type(node: Any) -> str:
    """The type `node` has by its form whenever it is defined ("strings": of strings), or ""."""
    kind, body = _kind(node) if isinstance(node, dict) else ("", {})
    if kind in ("String", "RawString"):
        return "string"
    if kind == "Number":
        return "number"
    if kind == "Bool":
        return "boolean"
    if kind == "Null":
        return "null"
    if kind in ("Array", "Set"):
        items = body.get("items", [])
        if items and all(_static_type(i) == "string" for i in items):
            return "strings"
        return kind.lower()
    if kind.endswith("Compr"):
        return {"ArrayCompr": "array", "SetCompr": "set", "ObjectCompr": "object"}.get(kind, "")
    if kind == "Object":
        return "object"
    if kind == "Call":
        return _RESULT_TYPES.get(_call_name(body.get("fcn")), "")
    return ""


def _proven(types: str, node: Any) -> bool:
    """`node` has one of `types` by its form: the guard is not needed."""
    if not types:
        return True
    static = _static_type(node)
    if types in _KINDS:
        kind, body = _kind(node) if isinstance(node, dict) else ("", {})
        if types == "string strings":
            return static in ("string", "strings")
        if types == "integer":
            return _static_integer(node)
        value = body.get("value") if kind == "Number" else None
        return types in ("natural", "positive") and isinstance(value, int) and value >= (types == "positive")
    if static == "strings":
        return types == "strings" or "array" in types.split() or "set" in types.split()
    return bool(static) and static in types.split()


@functools.cache
def _builtin_names() -> re.Pattern[str]:
    """A call of a built-in that may be guarded or routed."""
    from trustgate.policy import _gobuiltins

    names = sorted({*_GUARDS, *_gobuiltins.BUILTINS}, key=len, reverse=True)
    return re.compile(r"(?<![\w.])(" + "|".join(re.escape(n) for n in names) + r")\s*\(")


def _helper_prefix(path: str) -> str:
    # Per module: two modules of one package must not define the same function twice.
    return "__tg_b" + hashlib.sha256(path.encode("utf-8")).hexdigest()[:8] + "_"


def _guard_builtins(
    ast: dict[str, Any],
    data: bytes,
    prefix: str,
    *,
    rego_v0: bool = False,
    collections: frozenset[str] = frozenset(),
    keep: frozenset[str] = frozenset(),
    package_rules: frozenset[str] = frozenset(),
) -> tuple[bytes, frozenset[str]]:
    """Calls to guarded built-ins made undefined on operands of a wrong type.

    A call in a plain body expression (not negated, no `with`) whose unproven operands
    are variables or references gets type checks inserted before the expression, on its
    line (`is_string(c.image); startswith(c.image, "x")`): an undefined check fails the
    expression as the undefined call would, and costs regorus a built-in call instead of
    a function call. Other calls are renamed to their module-local guarded function.

    Calls whose result may differ from OPA's (`_go_helper`) are renamed to a helper
    that calls Go's semantics (`_gobuiltins`) and are not checked in place.

    Returns the rewritten text and the helpers it calls, by name without `prefix`
    (`startswith`, `object_get`, `sprintf`, `sprintf_vsd`, `go_regex_match`).
    """
    edits: list[_Edit] = []
    integers = _integer_vars(ast, data) - package_rules
    # Calls that are not the built-in's (`import data.lib.regex` then `regex.match`) or that a
    # `with` mocks: left as written, neither routed nor guarded (ADR 0008, item 13).
    kept = {id(c) for c in _calls(ast.get("rules", [])) if _kept(_call_name(c.get("fcn")), keep)}
    routed = {
        id(c): h
        for c in _calls(ast.get("rules", []))
        if id(c) not in kept and (h := _go_helper(c, data, collections, integers))
    }
    inlined: set[int] = set(routed) | kept  # id() of the calls checked in place (or routed: not checked)
    for query in _queries(ast.get("rules", [])):
        q_start = int(query["span"]["start"])
        if data[q_start : q_start + 1] not in (b"{", b"|"):
            continue  # `rule if expr`: left to the functions (a block would overlap their edits)
        seen: set[str] = set()  # a body is a conjunction: one check of an operand is enough
        for stmt in query["stmts"]:
            literal = stmt.get("literal")
            expr = literal.get("Expr") if isinstance(literal, dict) else None
            if not isinstance(expr, dict) or stmt.get("with_mods"):
                continue
            checks = [c for c in _inline_checks(expr, data, inlined) if c not in seen]
            seen.update(checks)
            if checks:
                start = int(stmt["span"]["start"])
                edits.append(_Edit(start, start, "; ".join(checks).encode() + b"; "))
    for rule in ast.get("rules", []):  # calls in a rule's head: checked in its body
        edit = _head_checks(rule, data, inlined, rego_v0=rego_v0)
        if edit is not None:
            edits.append(edit)
    for node in _calls(ast.get("rules", [])):
        name = _call_name(node.get("fcn"))
        params = node.get("params", [])
        if id(node) in routed:
            start, end = _span(node["fcn"])
            edits.append(_Edit(start, end, (prefix + routed[id(node)]).encode()))
            continue
        if id(node) in inlined or name not in _GUARDS or len(params) != len(_GUARDS[name]):
            continue
        helper = name.replace(".", "_")
        if name == "sprintf":
            helper = _sprintf_helper(params)
        elif name not in _GUARD_BRANCHES and all(
            _proven(t, p) for t, p in zip(_GUARDS[name], params, strict=True)
        ):
            continue
        if helper:
            start, end = _span(node["fcn"])
            edits.append(_Edit(start, end, (prefix + helper).encode()))
    used = frozenset(e.text.decode()[len(prefix) :] for e in edits if e.text.startswith(prefix.encode()))
    # Descending; at one offset a rename (end > start) before an insertion, which goes first.
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        data = data[: edit.start] + edit.text + data[edit.end :]
    return data, used


def _kept(name: str, keep: frozenset[str]) -> bool:
    return bool(name) and (name in keep or name.split(".", 1)[0] + "." in keep)


def _shadowing_names(ast: dict[str, Any], data: bytes) -> frozenset[str]:
    """`ns.` for each import alias, rule or function name of the module (`regex.match` is then
    not the built-in), and each rule or function name itself (`upper(x)` defined here)."""
    names = _rule_names(ast)
    names.update(
        alias for target, alias, written in _imports(ast, data) if written or target.startswith("data.")
    )
    return frozenset(names | {n + "." for n in names})


def _imports(ast: dict[str, Any], data: bytes) -> list[tuple[str, str, bool]]:
    """(target as written, the name it is known by, whether that name was written with `as`)
    for each import of the module (`import data.a.b` is known as `b`)."""
    out = []
    for imp in ast.get("imports", []):
        ref = imp.get("refr")
        if not isinstance(ref, dict):
            continue
        target = data[slice(*_span(ref))].decode("utf-8")
        alias_node = imp.get("as")
        if isinstance(alias_node, dict) and "start" in alias_node:
            out.append(
                (target, data[int(alias_node["start"]) : int(alias_node["end"])].decode("utf-8"), True)
            )
        else:
            out.append((target, target.rsplit(".", 1)[-1], False))
    return out


def with_targets(ast: dict[str, Any], data: bytes) -> list[tuple[str, int]]:
    """(target as written, line) of each `with` of the module."""
    out: list[tuple[str, int]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for mod in node.get("with_mods") or []:
                if isinstance(mod, dict) and isinstance(mod.get("refr"), dict):
                    text = data[slice(*_span(mod["refr"]))].decode("utf-8", "replace")
                    out.append((text, _first_line(mod["refr"])))
            for key, value in node.items():
                if key != "span":
                    walk(value)

    walk(ast.get("rules", []))
    return out


# Kinds whose check iterates the operand: a comprehension, left to the helper.
_COMPREHENDING = frozenset({"strings", "objects", "sets", "string strings"})


def _inline_checks(node: Any, data: bytes, inlined: set[int]) -> list[str]:
    """Type checks for the guarded calls in `node` that can be checked in place (see
    `_guard_builtins`); their ids are added to `inlined` (where routed calls are already)."""
    checks: list[str] = []
    for call in _calls_in(node):
        name = _call_name(call.get("fcn"))
        params = call.get("params", [])
        if (
            id(call) in inlined
            or name not in _GUARDS
            or name == "sprintf"
            or len(params) != len(_GUARDS[name])
        ):
            continue
        needed = [(t, p) for t, p in zip(_GUARDS[name], params, strict=True) if not _proven(t, p)]
        if name in _GUARD_BRANCHES:
            continue  # the helper's branches: not a type check
        if needed and all(t not in _COMPREHENDING and _simple(p) for t, p in needed):
            checks.extend(_type_check(t, data[slice(*_span(p))].decode("utf-8")) for t, p in needed)
            inlined.add(id(call))
    return list(dict.fromkeys(checks))


def _head_checks(rule: Any, data: bytes, inlined: set[int], *, rego_v0: bool) -> _Edit | None:
    """Checks for the calls in a rule head, at the end of its only body or as a new body.

    The head's value is computed once the body holds; a check that fails there leaves
    the rule undefined, as the undefined call does. Rules with `else` keep the functions.
    """
    spec = rule.get("Spec") if isinstance(rule, dict) else None
    if not isinstance(spec, dict) or len(spec.get("bodies", [])) > 1:
        return None
    head = spec.get("head")
    # The head's variant, not the head (`{"Compr": ...}` reads as a comprehension).
    pending: set[int] = set(inlined)
    checks = _inline_checks(list(head.values()) if isinstance(head, dict) else [], data, pending)
    if not checks:
        return None
    text = "; ".join(checks)
    if spec["bodies"]:
        query = spec["bodies"][0].get("query", {})
        q_start = int(query.get("span", {}).get("start", -1))
        stmts = query.get("stmts", [])
        if q_start < 0 or data[q_start : q_start + 1] != b"{" or not stmts:
            return None
        end = int(stmts[-1]["span"]["end"])
        edit = _Edit(end, end, f"; {text}".encode())
    else:
        end = int(spec["span"]["end"])
        edit = _Edit(end, end, (f" {{ {text} }}" if rego_v0 else f" if {{ {text} }}").encode())
    inlined.update(pending)
    return edit


def _calls_in(node: Any) -> Iterator[dict[str, Any]]:
    """Calls in an expression, not in its comprehensions (their bodies are queries of their own)."""
    if isinstance(node, list):
        for value in node:
            yield from _calls_in(value)
        return
    if not isinstance(node, dict):
        return
    if len(node) == 1 and next(iter(node)).endswith("Compr"):
        return
    call = node.get("Call")
    if isinstance(call, dict):
        yield call
    for key, value in node.items():
        if key != "span" and isinstance(value, (dict, list)):
            yield from _calls_in(value)


def _simple(node: Any) -> bool:
    """A variable (not `_`), a reference with constant or variable keys, or arithmetic over
    those and numbers: no call, no iteration, so safe to evaluate twice."""
    kind, body = _kind(node) if isinstance(node, dict) else ("", {})
    if kind == "Var":
        return body.get("value") != "_"
    if kind == "ArithExpr":
        return all(_simple(n) or _static_type(n) == "number" for n in (body.get("lhs"), body.get("rhs")))
    if kind == "RefDot":
        return _simple(body.get("refr"))
    if kind == "RefBrack":
        index = body.get("index")
        index_kind = _kind(index)[0] if isinstance(index, dict) else ""
        return (index_kind in ("String", "Number") or (_simple(index) and index_kind == "Var")) and _simple(
            body.get("refr")
        )
    return False


# `sprintf`: OPA prints what Go's fmt.Sprintf prints (`%!v(MISSING)`, `%!d(float64=2.5)`,
# `%!s(int64=1)`, `1e-07`, `set()`); regorus raises on a verb/argument count mismatch
# and prints many other cases differently. regorus' own sprintf is kept where the two
# agree: a literal format of bare `%v`/`%s`/`%d` verbs, a literal array with one
# argument for each, and at run time arguments regorus prints as OPA does (strings,
# booleans, null; integers below 1e15 for `%v`, non-negative ones for `%d`; for `%q`,
# strings of printable ASCII, which regorus quotes as Go's strconv.Quote does: beyond
# ASCII the two differ where their Unicode tables do). Every other call goes to
# `_gofmt.sprintf`, registered on each engine as `GO_SPRINTF`.
GO_SPRINTF = "__tg_gosprintf"
_PLAIN_VERBS = frozenset("vsdq")
_PLAIN_SCALARS = "string boolean null"  # printed alike by regorus and OPA for %v and %s
_PRINTABLE_ASCII = json.dumps("".join(map(chr, range(0x20, 0x7F)))).replace("{", "{{").replace("}", "}}")
_PLAIN_CHECKS = {  # for an argument `{0}`; `v` needs a disjunction, so a function
    "v": "{prefix}sprintf_pv({0})",
    "s": _type_check(_PLAIN_SCALARS, "{0}"),
    "d": "is_number({0}); round({0}) == {0}; {0} >= 0; {0} < 1e15",
    "q": f'is_string({{0}}); trim({{0}}, {_PRINTABLE_ASCII}) == ""',  # one call, where Go's is ~15 us
}
_PLAIN_V = (_type_check(_PLAIN_SCALARS, "x"), "is_number(x); round(x) == x; abs(x) < 1e15")


def _sprintf_helper(params: list[Any]) -> str:
    """`sprintf_<verbs>` for a call regorus may format itself, `sprintf` for Go's, "" for none."""
    fmt_kind, fmt_body = _kind(params[0]) if isinstance(params[0], dict) else ("", {})
    args_kind, args_body = _kind(params[1]) if isinstance(params[1], dict) else ("", {})
    if args_kind != "Array":
        return "sprintf"
    items = args_body.get("items", [])
    verbs = _plain_verbs(str(fmt_body.get("value", ""))) if fmt_kind in ("String", "RawString") else None
    if verbs is None or len(verbs) != len(items):
        # Go's, on a literal array: its items are checked in place, not by a walk (`pass`)
        return f"{_GO_SPRINTF_N}{len(items)}" if len(items) <= _GO_SPRINTF_MAX else "sprintf"
    if all(
        v not in "dq" and _static_type(i) in ("string", "boolean", "null")
        for v, i in zip(verbs, items, strict=True)
    ):
        return ""  # regorus prints these as OPA does: no helper
    return "sprintf_" + verbs


_GO_SPRINTF_N = "gosprintf"  # + the number of arguments: Go's sprintf over a literal array
_GO_SPRINTF_MAX = 16


def _plain_verbs(fmt: str) -> str | None:
    """The verbs of `fmt` when each is a bare `%v`, `%s` or `%d` (`%%` aside), else None."""
    verbs = []
    i = fmt.find("%")
    while i >= 0:
        verb = fmt[i + 1 : i + 2]
        if verb != "%":
            if verb not in _PLAIN_VERBS:
                return None
            verbs.append(verb)
        i = fmt.find("%", i + 2)
    return "".join(verbs)


GO_EXTENSIONS = "__tg_go_"  # what the name of every `_gobuiltins` extension starts with


def _go_sprintf(fmt: Any, args: Any) -> Any:
    """`_gofmt.sprintf`, imported at the first call: the bundled policies name it, few runs call it."""
    from trustgate.policy import _gofmt, _gonumbers

    return _gofmt.sprintf(fmt, _gonumbers.decode(args))


def add_extensions(engine: Any, texts: Iterable[str], added: frozenset[str] = frozenset()) -> frozenset[str]:
    """Register on `engine` the Python functions that `texts` (rewritten modules) call.

    `GO_SPRINTF` when a text names it, every `_gobuiltins` extension when a text names one
    (`GO_EXTENSIONS`); `added` says which of the two an earlier call registered on this
    engine (regorus refuses an extension twice). Returns what is registered now. The
    modules are imported only then. A call of an extension the engine lacks is an
    evaluation error (the rule cannot be evaluated), never a value.
    """
    done = set(added)
    for text in texts:
        if GO_SPRINTF not in done and GO_SPRINTF in text:
            engine.add_extension(GO_SPRINTF, 2, _go_sprintf)
            done.add(GO_SPRINTF)
        if GO_EXTENSIONS not in done and GO_EXTENSIONS in text:
            from trustgate.policy import _gobuiltins

            _gobuiltins.register(engine)
            done.add(GO_EXTENSIONS)
    return frozenset(done)


# -- built-ins whose regorus version answers otherwise than OPA's ----------------------
#
# A call of a built-in in `_gobuiltins.BUILTINS` goes to a module-local helper that calls
# its Go-semantics implementation (a regorus extension returning `[true, value]`, or
# `[false, null]` where OPA's built-in fails: the helper is then undefined). An extension
# call costs more than regorus' built-in, so calls whose operands cannot tell the two
# apart keep regorus': `regex.match` with a literal pattern regorus reads as Go does
# (`_gobuiltins.literal_pattern_agrees`), `upper`/`lower` of a literal, and `count` of
# what is not a string (regorus counts a string in UTF-16 units, OPA in code points: a
# string goes to `count(split(s, ""))`, which regorus counts by code point).
_GO_COUNT = "go_count"


def _go_helper(
    call: dict[str, Any], data: bytes, collections: frozenset[str], integers: frozenset[str] = frozenset()
) -> str:
    """The helper (name without the module's prefix) a call goes to for OPA's semantics, or ""."""
    name = _call_name(call.get("fcn"))
    params = call.get("params", [])
    if name == "count" and len(params) == 1:
        return _GO_COUNT if _may_be_string(params[0], data, collections) else ""
    from trustgate.policy import _gobuiltins

    builtin = _gobuiltins.BUILTINS.get(name)
    if builtin is None or len(params) != builtin.arity:
        return ""
    kind, body = _kind(params[0]) if isinstance(params[0], dict) else ("", {})
    literal = body.get("value") if kind in ("String", "RawString") else None
    if isinstance(literal, str):
        if (
            name == "regex.match"
            and _gobuiltins.literal_pattern_agrees(literal)
            and _regorus_compiles(literal)
        ):
            return ""
        if name in ("upper", "lower") and literal.isascii():
            return ""
    if name in ("substring", "array.slice") and all(_static_integer(p, integers) for p in params[1:]):
        return ""  # differ only for a fractional offset or length
    if name in ("ceil", "floor") and _static_integer(params[0], integers):
        return ""  # differ only between -1 and 0
    if name == "format_int" and _static_integer(params[0], integers) and _base_agrees(params[1]):
        return ""  # differ for fractions, numbers beyond int64 and other bases
    if name == "to_number" and _static_type(params[0]) in ("number", "boolean", "null"):
        return ""  # differs only for strings
    if name in ("indexof", "indexof_n", "replace"):  # differ only for an empty search string
        kind, body = _kind(params[1]) if isinstance(params[1], dict) else ("", {})
        # (and for a text that is not a string: `indexof_n` is not guarded, regorus' raises)
        unguarded = name == "indexof_n" and _static_type(params[0]) != "string"
        if kind in ("String", "RawString") and body.get("value") and not unguarded:
            return ""
    return "go_" + name.replace(".", "_")


def _base_agrees(node: Any) -> bool:
    """A literal base regorus' `format_int` takes as OPA's does (`16`, not `16.0` or `3`)."""
    kind, body = _kind(node) if isinstance(node, dict) else ("", {})
    return kind == "Number" and body.get("value") in (2, 8, 10, 16) and isinstance(body.get("value"), int)


@functools.lru_cache(maxsize=256)
def _regorus_compiles(pattern: str) -> bool:
    """regorus' regex takes `pattern`: a counted repetition (`^.{1,253}$`) may exceed its
    compiled-size limit (102400 bytes), an error on every document where Go's compiles."""
    if "{" not in pattern:
        return True
    engine = regorus.Engine()
    engine.add_policy("p.rego", "package p\nv := regex.is_valid(input.p)\n")
    engine.set_input({"p": pattern})
    try:
        return engine.eval_rule("data.p.v") is True
    except (RuntimeError, ValueError):
        return False


_INTEGER_RESULTS = frozenset(
    {"count", "indexof", "strings.count", "round", "ceil", "floor", "time.now_ns", "time.parse_rfc3339_ns"}
)


def _integer_vars(ast: dict[str, Any], data: bytes = b"") -> frozenset[str]:
    """Variables of the module that only `:=` binds, each time to an integer by its form
    (`n := count(image)`); a name bound anywhere else (`some`, `every`, `=`, an index that
    iterates, a function's argument) is left out."""
    assigned: set[str] = set()
    other: set[str] = set()
    integer_rhs: list[tuple[str, Any]] = []

    def names(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            var = node.get("Var")
            if isinstance(var, dict) and len(node) == 1:
                yield str(var.get("value"))
                return
            for key, value in node.items():
                if key != "span":
                    yield from names(value)
        elif isinstance(node, list):
            for item in node:
                yield from names(item)

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        for kind, body in node.items():
            if isinstance(body, list):
                walk(body)
            if not isinstance(body, dict):
                continue
            if kind == "AssignExpr":
                lhs = body.get("lhs")
                lhs_kind, lhs_body = _kind(lhs) if isinstance(lhs, dict) else ("", {})
                if body.get("op") == "ColEq" and lhs_kind == "Var":
                    integer_rhs.append((str(lhs_body.get("value")), body.get("rhs")))
                    assigned.add(str(lhs_body.get("value")))
                else:
                    other.update(names(lhs))
                    if body.get("op") != "ColEq":
                        other.update(names(body.get("rhs")))
            elif kind in ("SomeVars", "SomeIn", "Every"):
                other.update(names({k: v for k, v in body.items() if k not in ("collection", "query")}))
            elif kind == "Func":
                other.update(names(body.get("args")))
            elif kind == "RefBrack":
                other.update(names(body.get("index")))
            walk(body)

    walk(ast.get("rules", []))
    # A rule's or function's name is not one of these variables where another rule reads
    # it (`v := input.n` and, elsewhere, `v := count(l)`); nor one bound by `every`/`some`.
    integers = assigned - other - _rule_names(ast) - (_bound_names(ast, data)[0] - assigned)
    changed = True
    while changed:  # `n := count(x); m := n - 1`: a chain of integer assignments
        changed = False
        for name, rhs in integer_rhs:
            if name in integers and not _static_integer(rhs, integers):
                integers.discard(name)
                changed = True
    return frozenset(integers)


def _static_integer(node: Any, integers: frozenset[str] | set[str] = frozenset()) -> bool:
    """`node` is an integer whenever it is defined, by its form: an integral literal, a call
    of a built-in that returns integers, a variable of `integers`, `+`, `-` or `*` of those."""
    kind, body = _kind(node) if isinstance(node, dict) else ("", {})
    if kind == "Var":
        return body.get("value") in integers
    if kind == "Number":
        value = body.get("value")
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "Call":
        return _call_name(body.get("fcn")) in _INTEGER_RESULTS
    if kind == "UnaryExpr":
        return _static_integer(body.get("expr"), integers)
    if kind == "ArithExpr":
        return body.get("op") in ("Add", "Sub", "Mul") and all(
            _static_integer(body.get(side), integers) for side in ("lhs", "rhs")
        )
    return False


def _may_be_string(node: Any, data: bytes, collections: frozenset[str]) -> bool:
    static = _static_type(node)
    if static:
        return static == "string"
    kind, _ = _kind(node) if isinstance(node, dict) else ("", {})
    return not (kind in ("Var", "RefDot") and data[slice(*_span(node))].decode("utf-8") in collections)


def _calls(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        call = node.get("Call")
        if isinstance(call, dict):
            yield call
        for key, value in node.items():
            if key != "span" and isinstance(value, (dict, list)):
                yield from _calls(value)
    elif isinstance(node, list):
        for value in node:
            yield from _calls(value)


def _call_name(fcn: Any) -> str:
    if not isinstance(fcn, dict):
        return ""
    kind, body = _kind(fcn)
    if kind == "Var":
        return str(body.get("value", ""))
    if kind in _REFS:  # `net.cidr_contains`, or `net["cidr_contains"]`: the same built-in
        base = body.get("refr", {})
        base_kind, base_body = _kind(base) if isinstance(base, dict) else ("", {})
        field = _field(kind, body)
        if base_kind == "Var" and field:
            return f"{base_body.get('value')}.{field}"
    return ""


def _field(kind: str, body: dict[str, Any]) -> str:
    """The key of a `RefDot` (`.f`) or of a `RefBrack` with a string literal (`["f"]`), or ""."""
    if kind == "RefDot":
        field = body.get("field")
        return str(field[1]) if isinstance(field, list) and len(field) == 2 else ""
    index = body.get("index")
    index_kind, index_body = _kind(index) if isinstance(index, dict) else ("", {})
    value = index_body.get("value")
    return value if index_kind in ("String", "RawString") and isinstance(value, str) else ""


def _helpers(prefix: str, names: frozenset[str], *, rego_v0: bool) -> bytes:
    lines = ["# trustgate: built-ins that are undefined, not an error, on a wrong operand type (ADR 0008)"]

    def rule(head: str, body: str, value: str = "") -> None:
        if rego_v0:
            lines.append(f"{head} = {value} {{ {body} }}" if value else f"{head} {{ {body} }}")
        else:
            lines.append(f"{head} := {value} if {{ {body} }}" if value else f"{head} if {{ {body} }}")

    checks_needed: set[str] = set()
    for helper in sorted(names):
        if helper == _NEG:
            rule(f"{prefix}{_NEG}(x)", "is_number(x)", "0 - x")
            continue
        if operator := next((o for h, o in _SET_OPERATORS.values() if h == helper), None):
            rule(f"{prefix}{helper}(__a0, __a1)", "is_set(__a0); is_set(__a1)", f"__a0 {operator} __a1")
            continue
        if division := next((d for d in _DIVISIONS.values() if d[0] == helper), None):
            rule(
                f"{prefix}{helper}(__a0, __a1)",
                division[1],
                "__a0 % __a1",
            )
            continue
        if helper == _GO_COUNT:  # collections first: they are what policies count most
            head, go = f"{prefix}{helper}(__a0)", 'is_string(__a0); __r := count(split(__a0, ""))'
            regorus_count = f"{_type_check(_COLLECTION_TYPES, '__a0')}; __r := count(__a0)"
            if rego_v0:
                lines.append(f"{head} = __r {{ {regorus_count} }} else = __r {{ {go} }}")
            else:
                lines.append(f"{head} := __r if {{ {regorus_count} }} else := __r if {{ {go} }}")
            continue
        if helper.startswith("go_"):  # Go's semantics, undefined where OPA's built-in fails
            from trustgate.policy import _gobuiltins

            builtin = next(
                b for n, b in _gobuiltins.BUILTINS.items() if f"go_{n.replace('.', '_')}" == helper
            )
            params = [f"__a{i}" for i in range(builtin.arity)]
            operands = ", ".join(params)
            if builtin.marshalled:
                # the extension takes regorus' JSON text of the first operand (any value reaches
                # Python then: a set of arrays, `{true, 1}`, an integral float past int64)
                # (the others through `pass`: a set of arrays as options made regorus fail)
                text = ", ".join(
                    f"json.marshal({a})" if i == 0 else f"{prefix}{_PASS}({a})" for i, a in enumerate(params)
                )
                call = f"{builtin.extension}({text})"
                rule(f"{prefix}{helper}({operands})", f"__x := {call}; __x[0]", "__x[1]")
                checks_needed.update([_PASS] if builtin.arity > 1 else [])
                continue
            passed = ", ".join(f"{prefix}{_PASS}({a})" for a in params)
            head = f"{prefix}{helper}({operands})"
            own = _OWN.get(helper, f"{helper.removeprefix('go_')}({operands})")
            branches = [(own, c) for c in _REGORUS_WHEN.get(helper, ())]
            if helper in _ITSELF_WHEN:
                branches.append(("__a0", _ITSELF_WHEN[helper]))
            # Operands of the type they nearly always have (`_PLAIN_OPERANDS`, else strings) go as
            # they are, checked in place
            # (a function call costs ~2 µs); any other through `pass`, only then: an undefined
            # answer on scalars must not call the extension twice.
            kinds = _PLAIN_OPERANDS.get(helper, ("string",) * builtin.arity)
            scalars = "; ".join(_type_check(t, a) for t, a in zip(kinds, params, strict=True))
            others = f"count([1 | {scalars}]) == 0"  # not all of them
            branches.append(("__x[1]", f"{scalars}; __x := {builtin.extension}({operands}); __x[0]"))
            branches.append(("__x[1]", f"{others}; __x := {builtin.extension}({passed}); __x[0]"))
            lines.append(_else_chain(head, branches, rego_v0=rego_v0))
            checks_needed.add(_PASS)
            continue
        if helper.startswith(_GO_SPRINTF_N):  # Go's sprintf over a literal array of n arguments
            branches = _go_sprintf_branches(prefix, "is_string(__a0)", int(helper[len(_GO_SPRINTF_N) :]))
            lines.append(_else_chain(f"{prefix}{helper}(__a0, __a1)", branches, rego_v0=rego_v0))
            checks_needed.add(_PASS)
            continue
        if helper.startswith("sprintf_"):  # regorus' sprintf where it agrees with OPA, else Go's
            verbs = helper.removeprefix("sprintf_")
            # One function, `else` to Go's: every definition of a function is evaluated,
            # an `else` only when the body before it fails.
            plain = [_PLAIN_CHECKS[v].format(f"__a1[{i}]", prefix=prefix) for i, v in enumerate(verbs)]
            head = f"{prefix}{helper}(__a0, __a1)"
            body = "; ".join([*plain, "__r := sprintf(__a0, __a1)"])
            lines.append(
                _else_chain(
                    head, [("__r", body), *_go_sprintf_branches(prefix, "", len(verbs))], rego_v0=rego_v0
                )
            )
            checks_needed.add(_PASS)
            checks_needed.update(v for v in verbs if v == "v")
            continue
        name = next(n for n in _GUARDS if n.replace(".", "_") == helper)
        guards = _GUARDS[name]
        args = [f"__a{i}" for i in range(len(guards))]
        checks = "; ".join(c for g, a in zip(guards, args, strict=True) if (c := _type_check(g, a)))
        if name == "sprintf":
            branches = _go_sprintf_branches(prefix, checks)
            lines.append(_else_chain(f"{prefix}{helper}(__a0, __a1)", branches, rego_v0=rego_v0))
            checks_needed.add(_PASS)
            continue
        if name in _GUARD_BRANCHES:
            head = f"{prefix}{helper}({', '.join(args)})"
            lines.append(_else_chain(head, _GUARD_BRANCHES[name], rego_v0=rego_v0))
            continue
        call = f"{name}({', '.join(args)})"
        rule(
            f"{prefix}{helper}({', '.join(args)})", "; ".join(filter(None, [checks, f"__r := {call}"])), "__r"
        )
    if "v" in checks_needed:
        for body in _PLAIN_V:
            rule(f"{prefix}sprintf_pv(x)", body)
    if _PASS in checks_needed:
        lines.extend(_pass_helpers(prefix, rego_v0=rego_v0))
    return ("\n".join(lines) + "\n").encode("utf-8")


# Where regorus' own built-in answers as OPA's, tried before the extension (Rego bodies over
# the helper's operands): `ceil`/`floor` differ only strictly between -1 and 0, and regorus
# takes 1e20, which it cannot hand to Python.
# integers a float64 holds exactly (beyond 2^53, `1e20`'s text is not its float64's value)
_INTEGRAL = (
    "is_number(__a0); is_number(__a1); round(__a0) == __a0; round(__a1) == __a1; "
    "abs(__a0) < 9007199254740992; abs(__a1) < 9007199254740992"
)
_INTEGERS = tuple(
    f"{kind}(__a0); count([1 | __e := __a0[_]; is_number(__e); round(__e) == __e; "
    "abs(__e) < 9007199254740992]) == count(__a0)"
    for kind in ("is_array", "is_set")
)
_REGORUS_WHEN = {
    **{
        name: ("is_number(__a0); __a0 >= 0; __a0 < 1e15", "is_number(__a0); __a0 <= -1; __a0 > -1e15")
        for name in ("go_ceil", "go_floor")
    },
    # integers (regorus' are exact within int64, ADR 0008 item 14), and `-` of two sets
    **dict.fromkeys(("go_plus", "go_minus", "go_mul"), (_INTEGRAL,)),
    "go_minus": (_INTEGRAL, "is_set(__a0); is_set(__a1)"),
    # (where the divisor divides: else OPA's quotient is 64-bit, `714212 / 618` no float64)
    "go_div": (f"{_INTEGRAL}; __a1 != 0; __a0 % __a1 == 0",),
    # arrays and sets of integers (OPA's sum of fractions runs at 64 bits, its product at 53)
    **dict.fromkeys(("go_sum", "go_product"), _INTEGERS),
}
# regorus' own where it is kept, for the helpers of operators
_OWN = {"go_plus": "__a0 + __a1", "go_minus": "__a0 - __a1", "go_mul": "__a0 * __a1", "go_div": "__a0 / __a1"}
# ... and where the operand is its own answer: beyond 2^52 a float64 is integral (regorus'
# `ceil` of 2^64 is 2^64 - 1, and an extension can neither take nor return 1e20).
_ITSELF_WHEN = {
    **dict.fromkeys(("go_ceil", "go_floor"), "is_number(__a0); abs(__a0) >= 1e15"),
    "go_to_number": "is_number(__a0)",
}

# The types an operand goes to an extension as it is, by helper (else strings): glob.match's
# delimiters (an array holding a set of arrays would make regorus fail: exit 3, not a value).
_PLAIN_OPERANDS = {
    "go_glob_match": ("string", "array null", "string"),
    **dict.fromkeys(("go_plus", "go_minus", "go_mul", "go_div"), ("i64", "i64")),
    **dict.fromkeys(("go_sum", "go_product"), ("array",)),
}

# What regorus cannot hand to a Python extension: a set holding an array, object or set
# (Python's sets take hashable values only: "unhashable type: 'list'") and a number beyond
# -2^63..2^64-1 ("not an i64"). Such an operand goes as `{MARKER: [[path, type, json] ...]}`
# from `walk`, which `_gonumbers.decode` rebuilds; so does one holding an object with the
# marker key, so that a real one is never read as an encoding. Strings and numbers in range
# (nearly every operand) take the first branches, without a walk.
_PASS = "pass"
_MARKER = "__tg_walked"  # `_gonumbers.MARKER`
_UNSAFE = (
    "is_number(v); v >= 1.8446744073709552e19",
    "is_number(v); v < -9.223372036854775808e18",
    'is_set(v); e := v[_]; contains("array set object", type_name(e))',
    'is_object(v); _ = v[k]; contains("array set object", type_name(k))',
    f'is_object(v); _ = v["{_MARKER}"]',
)


# sprintf's arguments, checked without a function call: an array of strings, booleans and
# nulls (most messages); `pass` takes the rest (numbers in range without a walk).
_PLAIN_ARGS = (
    f'is_array(__a1); count([v | v := __a1[_]; not contains("{_PLAIN_SCALARS}", type_name(v))]) == 0'
)


def _go_sprintf_branches(prefix: str, checks: str, items: int | None = None) -> list[tuple[str, str]]:
    """Go's sprintf (which never fails) on the arguments as they are, else through `pass`;
    `items`: the number of arguments of a literal array, each checked in place."""
    plain = _PLAIN_ARGS
    if items is not None:  # strings, nearly always: any other goes through `pass`
        plain = "; ".join(f"is_string(__a1[{i}])" for i in range(items))
    first = "; ".join(filter(None, [checks, plain, f"__r := {GO_SPRINTF}(__a0, __a1)"]))
    second = "; ".join(filter(None, [checks, f"__r := {GO_SPRINTF}(__a0, {prefix}{_PASS}(__a1))"]))
    return [("__r", first), ("__r", second)]


def _else_chain(head: str, branches: Sequence[tuple[str, str]], *, rego_v0: bool) -> str:
    """One function `head` whose value is each branch's value where its body holds, in order."""
    parts = []
    for i, (value, body) in enumerate(branches):
        if rego_v0:
            parts.append(f"{'' if i == 0 else 'else '}= {value} {{ {body} }}")
        else:
            parts.append(f"{'' if i == 0 else 'else '}:= {value} if {{ {body} }}")
    return f"{head} " + " ".join(parts)


def _pass_helpers(prefix: str, *, rego_v0: bool) -> list[str]:
    encoded = (
        f'{{"{_MARKER}": [[[json.marshal(k) | k := p[_]], type_name(v), json.marshal(v)] | walk(x, [p, v])]}}'
    )
    out = [
        _else_chain(
            f"{prefix}{_PASS}(x)",
            [
                ("x", 'contains("string boolean null", type_name(x))'),
                ("x", "is_number(x); abs(x) < 9.2e18"),
                # sprintf's arguments: an array of scalars, numbers in range (no function call)
                (
                    "x",
                    'is_array(x); count([v | v := x[_]; contains("array set object", type_name(v))]) == 0; '
                    "count([v | v := x[_]; is_number(v); abs(v) >= 9.2e18]) == 0",
                ),
                ("x", f"not {prefix}unpassable(x)"),
                (encoded, "true"),
            ],
            rego_v0=rego_v0,
        ),
        f"{prefix}unpassable(x) {'' if rego_v0 else 'if '}{{ walk(x, [_, v]); {prefix}unpassable_node(v) }}",
    ]
    out.extend(f"{prefix}unpassable_node(v) {'' if rego_v0 else 'if '}{{ {body} }}" for body in _UNSAFE)
    return out


# -- parsing -------------------------------------------------------------------


def _rewritten(path: str, data: bytes, edits: list[_Edit], *, rego_v0: bool) -> tuple[bytes, dict[str, Any]]:
    """`data` with `edits` applied (last first, so earlier offsets hold), and its new AST.

    Raises:
        PolicyError: the rewritten module does not parse (a bug of the rewrite).
    """
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        data = data[: edit.start] + edit.text + data[edit.end :]
    ast = _parse(path, data.decode("utf-8"), rego_v0=rego_v0)
    if ast is None:
        raise PolicyError(
            f"{path}: trustgate could not rewrite the module for OPA's semantics (ADR 0008)",
            hint="please report this with the module",
        )
    return data, ast


# `import rego.v1` in a module loaded as Rego v0: the module is written in v1 (OPA's v0-compatible
# mode reads it so), and what is added to it must be v1 too (`if` before a body).
_IMPORTS_REGO_V1 = re.compile(r"^[ \t]*import[ \t]+rego\.v1[ \t]*(?:#.*)?$", re.MULTILINE)


def _imports_rego_v1(text: str) -> bool:
    return _IMPORTS_REGO_V1.search(text) is not None


def _parse(path: str, text: str, *, rego_v0: bool) -> dict[str, Any] | None:
    engine = regorus.Engine()
    if rego_v0:
        engine.set_rego_v0(True)
    try:
        engine.add_policy(path, text)
        modules = json.loads(engine.get_ast_as_json())
    except (RuntimeError, ValueError):
        return None
    ast = modules[0].get("ast") if modules else None
    return ast if isinstance(ast, dict) else None


def _package(ast: dict[str, Any]) -> str | None:
    parts: list[str] = []
    node = ast.get("package", {}).get("refr")
    while isinstance(node, dict):
        kind, body = _kind(node)
        if kind == "Var":
            parts.append(str(body.get("value")))
            break
        if kind == "RefDot":
            parts.append(str(body.get("field", [None, ""])[1]))
            node = body.get("refr")
        elif kind == "RefBrack":
            index = body.get("index", {})
            parts.append(json.dumps(index, sort_keys=True))
            node = body.get("refr")
        else:
            break
    return ".".join(reversed(parts)) or None


def _rule_names(ast: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for rule in ast.get("rules", []):
        spec = rule.get("Spec") if isinstance(rule, dict) else None
        if not isinstance(spec, dict):
            default = rule.get("Default") if isinstance(rule, dict) else None
            if isinstance(default, dict):
                name = _head_var(default.get("refr"))
                if name:
                    names.add(name)
            continue
        for variant in spec.get("head", {}).values():
            if isinstance(variant, dict):
                name = _head_var(variant.get("refr"))
                if name:
                    names.add(name)
    return names


def _head_paths(ast: dict[str, Any], data: bytes) -> set[str]:
    """Every rule head's reference as written when it is dotted names only (`k8s.is_pod`)."""
    out: set[str] = set()
    for rule in ast.get("rules", []):
        spec = rule.get("Spec") if isinstance(rule, dict) else None
        if not isinstance(spec, dict):
            continue
        for variant in spec.get("head", {}).values():
            ref = variant.get("refr") if isinstance(variant, dict) else None
            if isinstance(ref, dict):
                text = data[slice(*_span(ref))].decode("utf-8")
                if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", text):
                    out.add(text)
    return out


def _head_var(ref: Any) -> str | None:
    while isinstance(ref, dict):
        kind, body = _kind(ref)
        if kind == "Var":
            value = body.get("value")
            return value if isinstance(value, str) else None
        ref = body.get("refr")
    return None


def _module_globals(ast: dict[str, Any], data: bytes) -> frozenset[str]:
    names = {"input", "data"} | _rule_names(ast)
    for imp in ast.get("imports", []):
        alias = imp.get("as")
        if isinstance(alias, dict) and "start" in alias:
            names.add(data[int(alias["start"]) : int(alias["end"])].decode("utf-8"))
            continue
        ref = imp.get("refr")
        kind, body = _kind(ref) if isinstance(ref, dict) else ("", {})
        if kind == "RefDot":
            field = body.get("field")
            if isinstance(field, list) and len(field) == 2 and isinstance(field[1], str):
                names.add(field[1])
        elif kind == "Var" and isinstance(body.get("value"), str):
            names.add(body["value"])
    names -= {"v1", "keywords", "if", "in", "contains", "every"}  # `import rego.v1`, future.keywords
    return frozenset(names)


def _kind(node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for key, value in node.items():
        if isinstance(value, dict):
            return key, value
    return "", {}


def _span(node: dict[str, Any]) -> tuple[int, int]:
    kind, body = _kind(node)
    span = body.get("span", {})
    start, end = int(span.get("start", 0)), int(span.get("end", 0))
    if kind in ("String", "RawString"):  # regorus' span is the contents, without the quotes
        return start - 1, end + 1
    return start, end


def _past_quote(end: int, data: bytes) -> int:
    """The end of a statement, expression or query span, past a closing quote.

    regorus ends the span of something that ends with a string literal before the
    literal's closing quote (`... as "b"` spans up to `b`); nothing else can be
    followed directly by a quote.
    """
    return end + 1 if data[end : end + 1] in (b'"', b"`") else end


# -- planning the edits ----------------------------------------------------------


def _queries(node: Any) -> Iterator[dict[str, Any]]:
    """Every query (rule body, else body, comprehension or `every` body) under `node`."""
    if isinstance(node, dict):
        if "stmts" in node and isinstance(node.get("stmts"), list):
            yield node
        for key, value in node.items():
            if key != "span" and isinstance(value, (dict, list)):
                yield from _queries(value)
    elif isinstance(node, list):
        for value in node:
            yield from _queries(value)


def _plan(
    ast: dict[str, Any], data: bytes, globals_: frozenset[str], collections: frozenset[str] = frozenset()
) -> tuple[list[_Edit], bool]:
    """Edits for the statements to rewrite that do not overlap; True when some had to wait."""
    counter = max((int(m.group(1)) for m in _FRESH.finditer(data)), default=0)
    edits: list[_Edit] = []
    taken: list[tuple[int, int]] = []
    deferred = False
    for query in _queries(ast.get("rules", [])):
        for stmt in query["stmts"]:
            literal = stmt.get("literal", {})
            literal = literal if isinstance(literal, dict) else {}
            s_start, s_end = int(stmt["span"]["start"]), _past_quote(int(stmt["span"]["end"]), data)
            guard = b""
            negated = literal.get("NotExpr")
            some_in = literal.get("SomeIn")
            if isinstance(negated, dict):
                hoist = _hoist_top(negated.get("expr", {}), globals_)
                literal_end = _past_quote(int(negated["span"]["end"]), data)
            elif isinstance(some_in, dict) and _may_be_scalar(some_in.get("collection"), data, collections):
                hoist = [_span(some_in["collection"])]
                literal_end = hoist[0][1]
                guard = _COLLECTION_GUARD
            else:
                continue
            if not hoist:
                continue
            if any(a < s_end and s_start < b for a, b in taken):
                deferred = True  # overlaps an edit of this round: the next round sees it again
                continue
            with_text = b""
            if stmt.get("with_mods"):
                with_text = b" " + data[literal_end:s_end].strip()
            prefix = b""
            inner: list[_Edit] = []
            for start, end in hoist:
                counter += 1
                name = f"__tg_n{counter}".encode()
                prefix += name + b" := " + data[start:end] + with_text + b"; "
                if guard:
                    prefix += guard % name + b"; "
                inner.append(_Edit(start, end, name))
            body = data[s_start:s_end]
            for edit in sorted(inner, key=lambda e: e.start, reverse=True):
                body = body[: edit.start - s_start] + edit.text + body[edit.end - s_start :]
            q_start, q_end = int(query["span"]["start"]), _past_quote(int(query["span"]["end"]), data)
            braced = data[q_start : q_start + 1] in (b"{", b"|")
            if braced:
                edits.append(_Edit(s_start, s_end, prefix + body))
                taken.append((s_start, s_end))
            else:  # `rule if not f(x)`: a single-expression body must become a block
                if any(a < q_end and q_start < b for a, b in taken):
                    deferred = True
                    continue
                new = b"{ " + data[q_start:s_start] + prefix + body + data[s_end:q_end] + b" }"
                edits.append(_Edit(q_start, q_end, new))
                taken.append((q_start, q_end))
    return edits, deferred


def _may_be_scalar(collection: Any, data: bytes = b"", collections: frozenset[str] = frozenset()) -> bool:
    """`some x in <collection>` needs a guard: OPA's is undefined for a scalar, regorus' an error.

    `collections` holds the references (as written in this module: `k8s.containers`,
    `data.lib.k8s.containers`, `containers`) to rules that are always collections.
    """
    if not isinstance(collection, dict):
        return False
    kind, body = _kind(collection)
    if kind in _COMPOSITES or kind.endswith("Compr"):
        return False
    if kind in ("Var", "RefDot") and data[slice(*_span(collection))].decode("utf-8") in collections:
        return False
    return not (kind == "Var" and str(body.get("value", "")).startswith("__tg_n"))


def _rule_collections(ast: dict[str, Any]) -> Iterator[tuple[str, bool]]:
    """(rule name, whether this definition makes it a collection) for each definition."""
    for rule in ast.get("rules", []):
        if not isinstance(rule, dict):
            continue
        default = rule.get("Default")
        if isinstance(default, dict):
            name = _head_var(default.get("refr"))
            if name:
                yield name, _static_type(default.get("value")) in _COLLECTION_KINDS
            continue
        spec = rule.get("Spec")
        head = spec.get("head") if isinstance(spec, dict) else None
        if not isinstance(head, dict) or len(head) != 1:
            continue
        head_kind, variant = next(iter(head.items()))
        if not isinstance(variant, dict):
            continue
        ref_kind, ref = _kind(variant["refr"]) if isinstance(variant.get("refr"), dict) else ("", {})
        name = _head_var(variant.get("refr"))
        if not name or head_kind == "Func":
            continue
        if ref_kind == "Var":
            assign = variant.get("assign")
            value = assign.get("value") if isinstance(assign, dict) else None
            yield name, head_kind == "Set" or _static_type(value) in _COLLECTION_KINDS
        elif ref_kind == "RefBrack" and _kind(ref.get("refr", {}))[0] == "Var":
            yield name, True  # `o[k] := v`: a partial object
        else:
            yield name, False


def _collections_of(ast: dict[str, Any], data: bytes, rules: frozenset[str]) -> frozenset[str]:
    """How this module refers to the rules in `rules` (`data.a.b.c`): its own package's by
    bare name, others through their imports (`import data.a.b` then `b.c`) or in full."""
    if not rules:
        return frozenset()
    package = _package(ast)
    out = set(rules)
    if package:
        prefix = f"data.{package}."
        out.update(
            r.removeprefix(prefix) for r in rules if r.startswith(prefix) and "." not in r[len(prefix) :]
        )
    for target, alias, _ in _imports(ast, data):
        out.update(alias + r[len(target) :] for r in rules if r.startswith(target + "."))
    # A name bound in a body, as an argument or by `with` may hold a string where the rule
    # is a collection (`every xs in input.l { count(xs) }`): not known to be one (ADR 0008).
    bound, mocked = _bound_names(ast, data)
    return frozenset(r for r in out if r.split(".", 1)[0] not in bound and r.rsplit(".", 1)[-1] not in mocked)


def _bound_names(ast: dict[str, Any], data: bytes) -> tuple[frozenset[str], frozenset[str]]:
    """Names the module binds other than as a rule (`:=`, `=`, `some`, `every`, a function's
    argument, an index that iterates) and the last segments of the targets of its `with`s."""
    bound: set[str] = set()
    mocked: set[str] = set()

    def names(node: Any) -> None:
        if isinstance(node, dict):
            var = node.get("Var")
            if isinstance(var, dict) and len(node) == 1:
                bound.add(str(var.get("value")))
                return
            if "start" in node and "end" in node and "line" in node:  # a span: `every x`, `some x`
                bound.add(data[int(node["start"]) : int(node["end"])].decode("utf-8", "replace"))
                return
            for key, value in node.items():
                if key != "span":
                    names(value)
        elif isinstance(node, list):
            for item in node:
                names(item)

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        for mod in node.get("with_mods") or []:
            if isinstance(mod, dict) and isinstance(mod.get("refr"), dict):
                text = data[slice(*_span(mod["refr"]))].decode("utf-8", "replace")
                mocked.add(text.rsplit(".", 1)[-1])
        for kind, body in node.items():
            if kind == "span":
                continue
            if isinstance(body, list):
                walk(body)
            if not isinstance(body, dict):
                continue
            if kind == "AssignExpr":
                names(body.get("lhs"))
                if body.get("op") != "ColEq":
                    names(body.get("rhs"))
            elif kind in ("SomeVars", "SomeIn", "Every"):
                names({k: v for k, v in body.items() if k not in ("collection", "domain", "query")})
            elif kind == "Func":
                names(body.get("args"))
            elif kind == "RefBrack":
                names(body.get("index"))
            walk(body)

    walk(ast.get("rules", []))
    return frozenset(bound), frozenset(mocked)


def _hoist_top(expr: dict[str, Any], globals_: frozenset[str]) -> list[tuple[int, int]]:
    """Spans to hoist out of the negated expression `expr` (OPA: `rewriteDynamics`)."""
    kind, body = _kind(expr)
    if kind == "Call":
        return [s for p in body.get("params", []) for s in _hoist_one(p, globals_)]
    if kind in ("BoolExpr", "AssignExpr") and body.get("op") in _EQUALITY_OPS:
        return [s for side in _operands(kind, body) for s in _hoist_eq_operand(side, globals_)]
    if kind in _CALL_LIKE:
        return [s for operand in _operands(kind, body) for s in _hoist_one(operand, globals_)]
    if kind in _REFS:
        return _ref_keys(expr, globals_)
    return []


def _hoist_eq_operand(term: dict[str, Any], globals_: frozenset[str]) -> list[tuple[int, int]]:
    """An operand of `==`/`=` (OPA's `rewriteDynamicsEqExpr`): a reference stays in place."""
    if _kind(term)[0] in _REFS:
        return _ref_keys(term, globals_)
    return _hoist_one(term, globals_)


def _operands(kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    if kind == "Call":
        return list(body.get("params", []))
    if kind == "Membership":
        return [
            n for n in (body.get("key"), body.get("value"), body.get("collection")) if isinstance(n, dict)
        ]
    if kind == "UnaryExpr":
        return [body["expr"]] if isinstance(body.get("expr"), dict) else []
    return [n for n in (body.get("lhs"), body.get("rhs")) if isinstance(n, dict)]


def _hoist_one(term: dict[str, Any], globals_: frozenset[str]) -> list[tuple[int, int]]:
    """OPA's `rewriteDynamicsOne`: references and calls are hoisted whole."""
    kind, body = _kind(term)
    if kind in _REFS or kind in _CALL_LIKE:
        return [_span(term)]
    if kind == "Var" and body.get("value") in globals_:
        return [_span(term)]
    if kind in _COMPOSITES:
        return [s for item in _items(kind, body) for s in _hoist_one(item, globals_)]
    return []


def _ref_keys(ref: dict[str, Any], globals_: frozenset[str]) -> list[tuple[int, int]]:
    """What to hoist out of a reference left in place: dynamic keys, and a base that is not a name.

    OPA's `expandExprRef` moves a call or a composite at the base of a reference
    (`split(x, "/")[0]`, `[lower(s)][0]`, `{"k": f(x)}.k`) into a fresh, non-negated
    expression (`__local0__ = split(x, "/")`), so `not split(input.missing, "/")[0] == "a"`
    is undefined in OPA; regorus evaluated the whole reference under the `not` (true).
    """
    out: list[tuple[int, int]] = []
    node: Any = ref
    while isinstance(node, dict):
        kind, body = _kind(node)
        if kind == "RefBrack":
            index = body.get("index")
            if isinstance(index, dict):
                out.extend(_hoist_one(index, globals_))
        elif kind != "RefDot":
            if kind in _CALL_LIKE or kind in _COMPOSITES:
                out.append(_span(node))  # the base, whole: whatever it holds is hoisted with it
            break
        node = body.get("refr")
    return out


def _items(kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    if kind == "Object":
        out: list[dict[str, Any]] = []
        for field in body.get("fields", []):
            if isinstance(field, list):
                out.extend(n for n in field if isinstance(n, dict) and _kind(n)[0])
        return out
    return [n for n in body.get("items", []) if isinstance(n, dict)]


@functools.lru_cache(maxsize=256)
def normalise(texts: tuple[tuple[str, str], ...], rego_v0: bool) -> tuple[str, ...]:
    """Every rewrite above, for modules loaded together; cached (engines are rebuilt per thread).

    Rewriting the bundled policies costs about 0.15 s, most of a small
    check's fixed cost, so the result is also kept across runs in the compile
    cache (`_compile_cache`), keyed by the modules' paths and text, the Rego
    version and the code that rewrites (this module, `_gofmt`, regorus). An
    entry that is not intact is ignored and the modules are rewritten again.

    Args:
        texts: (path, source) of each module.
        rego_v0: parse as Rego v0.

    Returns:
        The sources to hand to regorus, in the same order.

    Raises:
        PolicyError: a module cannot be made to evaluate as OPA does (see `rewrite_module`).
    """
    cache = _compile_cache.active()
    if cache is None:
        return tuple(rewrite_modules(texts, rego_v0=rego_v0))
    key = cache.key([b"normalise", code_fingerprint(), b"v0" if rego_v0 else b"v1", *_flat(texts)])
    hit = cache.load(key)
    if isinstance(hit, list) and len(hit) == len(texts) and all(isinstance(t, str) for t in hit):
        return tuple(hit)
    out = tuple(rewrite_modules(texts, rego_v0=rego_v0))
    cache.store(key, list(out))
    return out


def _flat(texts: Sequence[tuple[str, str]]) -> Iterator[str]:
    for path, text in texts:
        yield path
        yield text


@functools.cache
def code_fingerprint() -> bytes:
    """A digest of the code that rewrites modules (this module, `_gofmt`, the regorus build)."""
    engine = Path(regorus.__file__ or "regorus")
    try:
        info = engine.stat()
        built = f"{engine}\0{info.st_size}\0{info.st_mtime_ns}".encode()
    except OSError:  # pragma: no cover - a loaded extension has its file
        built = b"unknown"
    return (
        _compile_cache.code_fingerprint(
            # By path: the modules are imported only where a module is rewritten.
            [
                str(Path(__file__).with_name(f"{name}.py"))
                for name in ("_normalise", "_gofmt", "_gobuiltins", "_gonumbers", "_compile_checks")
            ]
        )
        + built
    )
