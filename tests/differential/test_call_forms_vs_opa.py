"""Every spelling of a call of a built-in trustgate guards or routes, against OPA (ADR 0008, item
17): the output-argument form `f(a, b, out)` and the bracketed reference `net["cidr_contains"]`
reached regorus' own built-in (a false allow: `::ffff:10.1.2.3` was not in 10.0.0.0/8)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

import pytest
from opa_bindings.engine import OpaEngine, OpaError, OpaUndefinedError
from support.differential import BUILTIN_ERROR_CODES, TALLY

from trustgate.errors import PolicyError
from trustgate.policy import _gobuiltins, _normalise, rego

# Operands where regorus' built-ins and OPA's part ways, and plain ones.
POOL: list[Any] = [
    "::ffff:10.1.2.3",
    "10.0.0.0/8",
    "YQ==\n",
    "1d",
    "ß",
    "a😀",
    "",
    "a",
    "a b~*",
    "2006-01-02",
    "v1.2.3",
    "^[a-z]+$",
    "{a}",
    1,
    1.5,
    -0.5,
    ["a", "b"],
    {"a": 1},
    None,
]
ARITIES = {**{n: b.arity for n, b in _gobuiltins.BUILTINS.items()}, "count": 1}
ARITIES.update({n: len(t) for n, t in _normalise._GUARDS.items() if n not in ARITIES})
SKIP = {"time.format", "time.date", "time.clock", "time.weekday"}  # local zone: item 18


def _cases(arity: int) -> list[list[Any]]:
    rng = random.Random(arity)
    combos = list(itertools.product(POOL, repeat=arity)) if arity <= 2 else []
    rng.shuffle(combos)
    extra = [[rng.choice(POOL) for _ in range(arity)] for _ in range(20)]
    return [list(c) for c in combos[:40]] + extra


def _engines(text: str) -> tuple[Any, Any]:
    opa = OpaEngine()
    opa.add_policy("p.rego", text)
    opa.print_handler = lambda message, location: None
    try:
        ours = rego._new_engine([rego.Module("p.rego", text)], {}, False)
    except PolicyError as e:
        ours = e
    return opa, ours


def _answers(opa: Any, ours: Any, args: Sequence[Any]) -> tuple[tuple[str, Any], tuple[str, Any]]:
    try:
        reference: tuple[str, Any] = ("value", opa.eval_document("p.r", list(args)))
    except OpaUndefinedError:
        reference = ("undefined", None)
    except OpaError as e:
        error = f"{e.code}: {e.message}"
        reference = ("undefined", None) if any(c in error for c in BUILTIN_ERROR_CODES) else ("error", error)
    if isinstance(ours, PolicyError):
        return reference, ("error", str(ours))
    try:
        ours.set_input(list(args))
        result = ours.eval_rule("data.p.r")
    except (RuntimeError, PolicyError) as e:
        return reference, ("error", str(e).split("Stack backtrace")[0][-300:])
    return reference, (("undefined", None) if result is None else ("value", _sets_as_lists(result)))


def _sets_as_lists(value: Any) -> Any:
    """A set as the bindings give OPA's: a sorted list (`object.keys`)."""
    if isinstance(value, (set, frozenset)):
        return sorted((_sets_as_lists(v) for v in value), key=repr)
    if isinstance(value, list):
        return [_sets_as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _sets_as_lists(v) for k, v in value.items()}
    return value


def _compare(text: str, arity: int) -> list[str]:
    opa, ours = _engines(text)
    problems = []
    for args in _cases(arity):
        reference, got = _answers(opa, ours, args)
        TALLY["call forms"] += 1
        if got[0] == "error" and "reproduce" in str(got[1]):  # fails closed by design
            continue
        if got != reference and not (got[0] == reference[0] == "error"):
            problems.append(f"{text.splitlines()[-1]} with {args!r}: trustgate {got}, OPA {reference}")
    return problems


def _operands(arity: int) -> str:
    return ", ".join(f"input[{i}]" for i in range(arity))


def _bracketed(name: str) -> str:
    ns, _, rest = name.rpartition(".")
    return f'{ns}["{rest}"]'


@pytest.mark.parametrize("name", sorted(set(ARITIES) - SKIP))
def test_output_argument_form(name: str) -> None:
    arity = ARITIES[name]
    head = "package p\nimport rego.v1\n\n"
    problems = _compare(head + f"r := [x] if {{ {name}({_operands(arity)}, x) }}", arity)
    # an output argument already bound is compared, not assigned
    problems += _compare(
        head + f"r := [x] if {{ x := {name}({_operands(arity)}); {name}({_operands(arity)}, x) }}", arity
    )
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("name", sorted(n for n in set(ARITIES) - SKIP if "." in n))
def test_bracketed_reference(name: str) -> None:
    arity = ARITIES[name]
    text = f"package p\nimport rego.v1\n\nr := [{_bracketed(name)}({_operands(arity)})]"
    problems = _compare(text, arity)
    problems += _compare(
        f"package p\nimport rego.v1\n\nr := [x] if {{ {_bracketed(name)}({_operands(arity)}, x) }}", arity
    )
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('yaml["marshal"](input)', r"p.rego:4: `yaml.marshal` cannot be evaluated as OPA does"),
        ('opa["runtime"]()', r"p.rego:4: `opa.runtime` cannot be evaluated as OPA does"),
        ('http["send"]({"method": "get", "url": "x"})', r"p.rego:4: `http.send` cannot be evaluated"),
        ('net["cidr_merge"](["10.0.0.0/8"])', r"p.rego:4: the built-in `net.cidr_merge` is not available"),
        ('io.jwt["decode"]("x")', r"p.rego:4: the built-in `io.jwt.decode` is not available"),
    ],
)
def test_bracketed_refusals(call: str, message: str) -> None:
    """What trustgate refuses at load by name is refused by a bracketed name too."""
    with pytest.raises(PolicyError, match=message):
        rego._new_engine([rego.Module("p.rego", f"package p\nimport rego.v1\n\nr := [{call}]\n")], {}, False)


def test_output_argument_outside_a_statement_is_refused() -> None:
    """`not f(a, out)` is not rewritten: refused at load, never regorus' built-in."""
    text = 'package p\nimport rego.v1\n\nr if not net.cidr_contains("10.0.0.0/8", input, true)\n'
    with pytest.raises(PolicyError, match=r"p.rego:4: `net.cidr_contains` with an output argument"):
        rego._new_engine([rego.Module("p.rego", text)], {}, False)
