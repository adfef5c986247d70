"""Strings for differential and table tests of format checkers: pytest cases and random edits."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

import pytest


def format_params(corpus: Mapping[str, Iterable[str]]) -> list[Any]:
    """One pytest case (format name, value) per value of the corpus, named after both."""
    return [
        pytest.param(name, value, id=f"{name}-{value!r}")
        for name, values in corpus.items()
        for value in values
    ]


def edits(seeds: list[str], alphabet: str, count: int) -> set[str]:
    """`count` random edits (1-3 characters replaced, inserted or deleted) of the seeds; fixed seed."""
    rng = random.Random(20261206)
    out = set()
    for _ in range(count):
        chars = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            i = rng.randint(0, len(chars))
            op = rng.random()
            if op < 0.4 and chars:
                chars[min(i, len(chars) - 1)] = rng.choice(alphabet)
            elif op < 0.7:
                chars.insert(i, rng.choice(alphabet))
            elif chars:
                del chars[min(i, len(chars) - 1)]
        out.add("".join(chars))
    return out
