"""Numbers and values as OPA reads them, where regorus cannot hand them to Python as they are.

Owns: `format_int` with OPA's semantics (regorus printed `""` for 1e19 and `-0` for -0.5,
and failed on a base OPA refuses), and the decoding of operands that the rewritten
modules pass to trustgate's extensions in an encoded form (`decode`): regorus cannot
convert a set that holds an array or object (Python's `set` takes only hashable
values) or a number beyond -2^63..2^64-1 (`not an i64`), so `_normalise`'s `pass`
helper sends such an operand as `{MARKER: [[path, type, json] ...]}`, one entry per
node of `walk`, and `decode` rebuilds it: arrays and objects inside sets as tuples and
hashable mappings, numbers from their JSON text (`1e+20` stays a float).

Leaves out: which calls are routed (`_normalise`) and the other built-ins (`_gobuiltins`).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fractions import Fraction  # imported where used: sprintf's `decode` needs none of it

# The key of an encoded operand. `_normalise`'s `pass` encodes any operand holding an object
# with this key too, so a real object with it is never taken for an encoding.
MARKER = "__tg_walked"


class OperandError(Exception):
    """OPA's built-in fails: undefined without StrictBuiltinErrors (`_gobuiltins._guarded`)."""


class DecodeError(Exception):
    """An operand trustgate cannot rebuild for its implementation (an object key that is an
    array, object or set inside a set): an evaluation error, never a value."""


class HashableDict(dict[Any, Any]):
    """An object inside a set (Python's sets hold hashable values only)."""

    def __hash__(self) -> int:  # type: ignore[override]  # immutable by use: built once, only read
        return hash(frozenset(self.items()))


def decode(value: Any) -> Any:
    """`value` itself, or the operand an encoded `value` stands for (see the module docstring).

    Raises:
        DecodeError: the encoding holds what Python cannot rebuild.
    """
    if type(value) is not dict or len(value) != 1 or MARKER not in value:
        return value
    nodes: dict[tuple[str, ...], tuple[str, Any]] = {}
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    root: tuple[str, ...] | None = None
    for path, kind, text in value[MARKER]:
        key = tuple(path)
        nodes[key] = (kind, text)
        if key:
            children.setdefault(key[:-1], []).append(key)
        else:
            root = key
    if root is None:
        raise DecodeError("an encoded operand without its root")
    return _build(root, nodes, children, hashable=False)


def _build(
    key: tuple[str, ...],
    nodes: dict[tuple[str, ...], tuple[str, Any]],
    children: dict[tuple[str, ...], list[tuple[str, ...]]],
    *,
    hashable: bool,
) -> Any:
    kind, text = nodes[key]
    below = children.get(key, [])
    if kind == "array":
        items = sorted(below, key=lambda k: int(json.loads(k[-1])))
        built = [_build(k, nodes, children, hashable=hashable) for k in items]
        return tuple(built) if hashable else built
    if kind == "set":
        return frozenset(_build(k, nodes, children, hashable=True) for k in below)
    if kind == "object":
        out: dict[Any, Any] = HashableDict() if hashable else {}
        for k in below:
            name = json.loads(k[-1])
            if isinstance(name, (list, dict)):
                raise DecodeError("an object key that is an array, object or set")
            out[name] = _build(k, nodes, children, hashable=hashable)
        return out
    return json.loads(text)  # a scalar as regorus' json.marshal wrote it


def _number(value: Any) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OperandError("operand must be number")
    from fractions import Fraction

    if isinstance(value, int):
        return Fraction(value)
    # OPA reads a float by its shortest decimal text (`1.8446744073709552e+19` is
    # 18446744073709552000, not 2^64), then (`NumberToFloat`) as a big.Float of 64 bits.
    return _round_to_bits(Fraction(repr(value)), 64)


def _round_to_bits(value: Fraction, bits: int) -> Fraction:
    """`value` rounded to `bits` significant bits, half to even (big.Float's default)."""
    from fractions import Fraction

    if value == 0:
        return value
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1
    scale = Fraction(2) ** (exponent - bits + 1)
    return sign * round(magnitude / scale) * scale  # round(): half to even


class ArithmeticUnsupportedError(Exception):
    """A result or operand OPA holds that no float64 stands for (ADR 0008, item 5): an
    evaluation error (exit 3), never a value."""


def arithmetic(op: str, a: Any, b: Any) -> int | float:
    """OPA's `plus`, `minus`, `mul` and `div` of two numbers (`+ - * /`).

    OPA reads each operand from its decimal text as a big.Float of 64 bits, computes
    with that precision and keeps the result as the shortest decimal text that reads
    back as it (`builtins.NumberToFloat`, `FloatToNumber`): `0.7 + 0.1` is `0.8` and
    `0.29 * 100` is `29`, where float64 arithmetic gives 0.7999999999999999 and
    28.999999999999996; `1 - 0.9` is `0.10000000000000000002`, which no float64 is
    (`_as_float64`).

    Raises:
        OperandError: an operand is not a number, or the divisor is zero (OPA fails).
        ArithmeticUnsupportedError: the result or an operand is beyond what a float64
            stands for.
    """
    x, y = _operand(a), _operand(b)
    if op == "div" and y == 0:
        raise OperandError("divide by zero")
    exact = x / y if op == "div" else x + y if op == "plus" else x - y if op == "minus" else x * y
    return _as_float64(op, _round_to_bits(exact, 64))


def aggregate(op: str, values: Any) -> int | float:
    """OPA's `sum` (a running big.Float of 64 bits from 0, as `+`) and `product` (a running
    big.Float of 53 bits from 1: `big.NewFloat(1)`'s precision, so a float64's rounding)
    of an array or set of numbers."""
    from fractions import Fraction

    if not isinstance(values, (list, tuple, set, frozenset)):
        raise OperandError("operand must be one of {set, array}")
    total = Fraction(0 if op == "sum" else 1)
    for value in values:
        number = _operand(value)
        total = _round_to_bits(total + number, 64) if op == "sum" else _round_to_bits(total * number, 53)
    return _as_float64(op, total, 64 if op == "sum" else 53)


def _operand(value: Any) -> Fraction:
    """An operand as OPA holds it; a fraction of more than 15 significant digits may be
    the float64 that stands for a longer result of OPA's (`_as_float64`), whose digits
    are lost: refused, never computed on."""
    number = _number(value)
    if isinstance(value, float) and number.denominator != 1 and _digits(repr(value)) > _EXACT_DIGITS:
        raise ArithmeticUnsupportedError(
            f"the operand {value!r} has more digits than trustgate carries between operations "
            "(OPA's result of an operation on fractions, 0.10000000000000000002 for 1 - 0.9); "
            "compute in whole units (millicores: 700 + 100, not 0.7 + 0.1), or compare such a "
            "result without operating on it again"
        )
    return number


# Decimals of up to 15 significant digits are each read as a float64 of their own, in order.
_EXACT_DIGITS = 15


def _digits(text: str) -> int:
    """The significant digits of a decimal text (`repr` of a float)."""
    mantissa = text.lower().split("e")[0].lstrip("-").replace(".", "").strip("0")
    return len(mantissa) or 1


def _as_float64(op: str, value: Fraction, bits: int = 64) -> int | float:
    """The float64 (an int where integral) that decides every comparison with a number of
    up to 15 significant digits as OPA's `value` does.

    Where OPA's text of `value` is the shortest of a float64 (`0.8`), that float64: equal
    to `value` in every use. Where it is not (`0.10000000000000000002`), `value` lies
    strictly between the float64 `f` it rounds to and a neighbour of `f`; no number of up
    to 15 digits lies there, so the neighbour on `value`'s side answers every comparison
    with such a number as `value` does, and so do `floor`, `ceil` and `round` of it (a
    number of up to 15 digits that reads as `f` is `f`'s shortest text, and two of them
    never read as neighbouring float64s). Sprintf then prints the neighbour's text, and an
    operation on it is refused (`_operand`).
    """
    if value.denominator == 1:
        whole = int(value)
        if -(2**63) <= whole < 2**64:
            return whole
        if abs(whole) < 2**1024 and float(whole) == whole:
            return float(whole)
        raise ArithmeticUnsupportedError(f"{op}: the result {whole} is beyond what trustgate's engine holds")
    text = _shortest(value, bits)
    number = float(text)
    if math.isinf(number) or number == 0:
        raise ArithmeticUnsupportedError(f"{op}: the result {text} is beyond a float64's range")
    opa, shortest = _fraction(text), _fraction(repr(number))
    if shortest == opa:
        return number
    if _digits(repr(number)) > _EXACT_DIGITS:
        return number  # no number of up to 15 digits reads as `number`: it orders as OPA's
    return math.nextafter(number, math.inf if opa > shortest else -math.inf)


def _shortest(value: Fraction, bits: int) -> str:
    """The shortest decimal text that reads back as `value` at `bits` bits (big.Float's `Text('g', -1)`)."""
    from fractions import Fraction

    exponent = len(str(abs(value.numerator) // value.denominator)) - 1 if abs(value) >= 1 else 0
    while abs(value) < Fraction(10) ** exponent:
        exponent -= 1
    for digits in range(1, 40):
        shift = digits - 1 - exponent
        scale = Fraction(10) ** shift
        mantissa = round(value * scale)  # half to even
        if _round_to_bits(mantissa / scale, bits) == value:
            return f"{mantissa}e{-shift}"
    return f"{value.numerator}/{value.denominator}"  # not reached: 20 digits always read back


def _fraction(text: str) -> Fraction:
    from fractions import Fraction

    return Fraction(text)


_FORMATS = {2: "b", 8: "o", 10: "d", 16: "x"}


def format_int(number: Any, base: Any) -> list[Any]:
    """OPA's `format_int`: the number truncated toward zero (a big.Int: no sign for -0.5),
    printed in base 2, 8, 10 or 16; any other base is an operand error."""
    value = _number(number)
    if isinstance(base, bool) or not isinstance(base, int) or base not in _FORMATS:
        raise OperandError("operand 2 must be one of {2, 8, 10, 16}")
    whole = int(value)  # toward zero, as big.Float.Int
    return [True, format(whole, _FORMATS[base])]
