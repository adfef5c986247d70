"""A lone surrogate (JSON `"\\ud800"`) is refused everywhere, never handed to regorus (which crashes).

regorus' `set_input` dies with SIGSEGV on such a string, so the engine cases run
in a subprocess: before the fix they crash it, not the test run.
"""

from __future__ import annotations

import json
import marshal
import random
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from trustgate.config import Limits
from trustgate.manifests import loader
from trustgate.server import admission

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ns1", "annotations": {"a": "\ud800"}},
    "spec": {"containers": [{"name": "app", "image": "r.example.com/a:1"}]},
}


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"a": "\ud800"}, ("a",)),
        ({"a": {"\udfff": 1}}, ("a", "\udfff")),
        ({"a": [1, {"b": ["x", "y\udc00"]}]}, ("a", 1, "b", 1)),
        ("\ud800", ()),
        ({"a": ("\ud800",)}, ("a", 0)),  # not marshal's exact types: walked instead
        ({"emoji": "\U0001f600", "bmp": "\uffff\ud7ff\ue000", "n": 0xEDA0, "f": 1.5}, None),
    ],
)
def test_lone_surrogate_finds_the_path(value: object, path: tuple[str | int, ...] | None) -> None:
    assert loader.lone_surrogate(value) == path


def test_lone_surrogate_walks_any_depth() -> None:
    deep: object = "\ud800"
    for _ in range(5000):  # beyond marshal's nesting limit
        deep = [deep]
    assert loader.lone_surrogate(deep) == (0,) * 5000


def test_path_text_escapes_a_bad_key() -> None:
    assert loader.path_text(("metadata", "annotations", "\ud800")) == "metadata.annotations.\\ud800"
    assert loader.path_text(()) == "the top level"


def test_may_hold_surrogate_is_a_cheap_certain_no() -> None:
    assert not loader.may_hold_surrogate(json.dumps({"a": "é😀"}, ensure_ascii=False).encode())
    assert loader.may_hold_surrogate(b'{"a": "\\uD800"}')
    assert loader.may_hold_surrogate(b'a: "\\U0000dfff"')


def test_json_file_with_a_lone_surrogate_is_an_input_problem() -> None:
    data = json.dumps(POD).encode()  # ensure_ascii: the annotation is written as \ud800
    documents, problems = loader.parse_bytes(data, "pod.json", Limits())
    assert documents == []
    [problem] = problems
    assert problem.rule == "input/invalid-json"
    assert problem.source.file == "pod.json"
    assert "metadata.annotations.a" in problem.message and "lone surrogate" in problem.message


def test_surrogate_pairs_and_escaped_backslashes_are_fine() -> None:
    obj = {**POD, "metadata": {"name": "p", "annotations": {"a": "\U0001f600", "b": "\\ud800"}}}
    documents, problems = loader.parse_bytes(json.dumps(obj).encode(), "pod.json", Limits())
    assert problems == [] and documents[0].obj["metadata"]["annotations"] == obj["metadata"]["annotations"]


def test_yaml_with_a_lone_surrogate_is_an_input_problem() -> None:
    documents, problems = loader.parse_bytes(
        b'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: "\\ud800"}\n', "cm.yaml", Limits()
    )
    assert documents == [] and problems[0].rule == "input/invalid-yaml"


def test_admission_review_with_a_lone_surrogate_is_a_bad_review() -> None:
    body: dict[str, Any] = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "u1", "operation": "CREATE", "object": POD},
    }
    with pytest.raises(
        admission.BadReview, match=r"lone surrogate .* request\.object\.metadata\.annotations\.a"
    ):
        admission.parse(json.dumps(body).encode())
    key = {**body, "request": {**body["request"], "userInfo": {"\udc00": "x"}}}
    key["request"]["object"] = {**POD, "metadata": {"name": "p"}}
    with pytest.raises(admission.BadReview, match=r"request\.userInfo\.\\udc00"):
        admission.parse(json.dumps(key).encode())
    fine = {**body, "request": {**body["request"], "object": {**POD, "metadata": {"name": "\U0001f600"}}}}
    assert isinstance(admission.parse(json.dumps(fine).encode()), admission.Review)


ENGINE_CASES = {
    "rego": """
        from trustgate.policy import rego
        text = "package main\\nimport rego.v1\\ndeny contains 1 if input.x\\n"
        policy = rego.RegoPolicy([rego.Module("p.rego", text)])
        policy.evaluator().evaluate(OBJ)
    """,
    "embedded": """
        from trustgate.policy.engine import EmbeddedEngine
        from trustgate.policy.rego import Module
        engine = EmbeddedEngine()
        engine.add_modules([Module("p.rego", "package p\\nimport rego.v1\\nx := input\\n")])
        engine.eval_rule("data.p.x", OBJ)
    """,
    "cel": """
        from trustgate.policy import cel
        program = cel.compile_expression("object.metadata.annotations.size() > 0", variables=["object"])
        try:
            program.evaluate({"object": OBJ})
        except cel.CelEvalError as e:
            raise PolicyError(str(e)) from e
    """,
}


@pytest.mark.parametrize("case", sorted(ENGINE_CASES))
@pytest.mark.parametrize("where", ["value", "key"])
def test_engine_boundary_refuses_a_lone_surrogate_with_an_error(case: str, where: str) -> None:
    obj = (
        dict(POD) if where == "value" else {**POD, "metadata": {"name": "p", "annotations": {"\ud800": "v"}}}
    )
    code = (
        "import json\nfrom trustgate.errors import PolicyError\n"
        f"OBJ = json.loads({json.dumps(json.dumps(obj))})\n"
        "try:\n" + textwrap.indent(textwrap.dedent(ENGINE_CASES[case]).strip(), "    ") + "\n"
        "except PolicyError as e:\n    print('refused:', e.message)\nelse:\n    print('evaluated')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"exit {done.returncode} (-11/139: the engine crashed)\n{done.stderr}"
    assert done.stdout.startswith("refused: input cannot be evaluated"), done.stdout + done.stderr
    assert "metadata.annotations." in done.stdout and "lone surrogate" in done.stdout


# -- integers regorus would round (and surrogates) in one walk: `loader.unevaluable` ----------------

_MIN, _MAX = -(2**63), 2**64 - 1


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ({"a": _MAX, "b": _MIN, "c": 2**53 + 1, "d": 2**63 + 1, "e": True, "f": 1e30}, None),
        ({"a": _MAX + 1}, ("integer", ("a",))),
        ({"a": _MIN - 1}, ("integer", ("a",))),
        ({"a": [1, {"b": -(10**300)}]}, ("integer", ("a", 1, "b"))),
        ({"a": 2**70}, ("integer", ("a",))),
        (2**64, ("integer", ())),
        ({"a": (2**64,)}, ("integer", ("a", 0))),  # not marshal's exact types: walked instead
        ({"a": "\ud800", "b": 1}, ("surrogate", ("a",))),
        # A string ending in "l" just before the number: the headers overlap, both are read.
        ({"a": ["xl", 2**64]}, ("integer", ("a", 1))),
        ({"maxUnavailable": 0, "operator": "Equal", "b": [-(2**64)]}, ("integer", ("b", 0))),
        # Text and structure that look like marshal's big-integer header are walked, and pass:
        ({"ttl": 5, "level": 300, "x": "l\x05\x00\x00\x00", "y": "l\xfb\xff\xff\xff"}, None),
    ],
)
def test_unevaluable_finds_integers_regorus_would_round(
    value: object, found: tuple[str, tuple[str | int, ...]] | None
) -> None:
    assert loader.unevaluable(value) == found


def test_unevaluable_finds_every_size_of_big_integer() -> None:
    """Every marshal size of an out-of-range integer (5 up to thousands of 15-bit digits, both
    signs) is seen by the fast scan (the walk alone would find them: the scan is checked here)."""
    for bits in (64, 65, 75, 76, 120, 3840, 3841, 14000, 2**17):
        for n in (2**bits, -(2**bits), 2**bits + 12345):
            assert loader._holds_big_int(marshal.dumps({"n": n})), bits
            assert loader.unevaluable({"n": [n]}) == ("integer", ("n", 0))
    assert not loader._holds_big_int(marshal.dumps({"n": [2**60 - 1, -(2**60) + 1, 2**31, _MAX, _MIN]}))
    assert loader.unevaluable({"n": [_MAX, _MIN, 2**60]}) is None


def test_unevaluable_walks_any_depth() -> None:
    deep: object = 2**64
    for _ in range(5000):  # beyond marshal's nesting limit
        deep = [deep]
    assert loader.unevaluable(deep) == ("integer", (0,) * 5000)


def test_unevaluable_answers_as_the_walk_does_on_generated_values() -> None:
    """The quick paths (orjson, then marshal's bytes) only decide "nothing here": on values built
    from the edges of both checks, `unevaluable` finds exactly what the plain walk finds."""
    rng = random.Random(20)
    leaves: list[object] = [
        _MAX, _MAX + 1, _MIN, _MIN - 1, 2**53 + 1, -(2**100), 0, True, None, 1.5, float("inf"),
        "ok", "\ud800", "a\udfffb", "\U0001f600", "l\x05\x00\x00\x00", b"bytes", (1, 2**64),
    ]  # fmt: skip

    def build(depth: int) -> object:
        if depth == 0 or rng.random() < 0.3:
            return rng.choice(leaves)
        if rng.random() < 0.5:
            return [build(depth - 1) for _ in range(rng.randint(0, 3))]
        keys: list[object] = ["k", "\ud801", 7, "name"]
        return {rng.choice(keys): build(depth - 1) for _ in range(rng.randint(0, 3))}

    found = 0
    for _ in range(3000):
        value = build(4)
        expected = loader._find_unevaluable(value)
        assert loader.unevaluable(value) == expected, value
        found += expected is not None
    assert 300 < found < 2700  # both answers were exercised
