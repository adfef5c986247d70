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


_FORMATS = {2: "b", 8: "o", 10: "d", 16: "x"}


def format_int(number: Any, base: Any) -> list[Any]:
    """OPA's `format_int`: the number truncated toward zero (a big.Int: no sign for -0.5),
    printed in base 2, 8, 10 or 16; any other base is an operand error."""
    value = _number(number)
    if isinstance(base, bool) or not isinstance(base, int) or base not in _FORMATS:
        raise OperandError("operand 2 must be one of {2, 8, 10, 16}")
    whole = int(value)  # toward zero, as big.Float.Int
    return [True, format(whole, _FORMATS[base])]
