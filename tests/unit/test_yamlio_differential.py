"""yamlio against PyYAML's pure-Python SafeLoader: the same values, types included (ADR 13).

yamlio composes with libyaml and builds values itself, with cached tag
resolution and fast paths for plain integers and booleans; the reference is
PyYAML's `SafeLoader`, a YAML 1.1 reader, with the deviations yamlio
documents, all of them what Kubernetes (go-yaml v2, then sigs.k8s.io/yaml's
JSON conversion) reads: timestamps stay strings, `!!binary` is decoded, the
plain scalars go-yaml v2 types otherwise than PyYAML read as go-yaml v2 reads
them (`GO_V2`, written from its `resolve.go`), a scalar with the non-specific
tag `!` is a string, mapping keys become JSON strings (null keys and keys that
collide are refused) and NaN or infinite values are refused. Three corpora:
the benchmark's generated manifests, the conformance copies, and scalars where
YAML readers part ways. (PyYAML lets explicit keys win over `<<` merges wherever
they stand, go-yaml v2 applies entries in order: no case here tells them apart;
`test_yamlio.py` and `test_yamlio_kubectl.py` do.)
"""

from __future__ import annotations

import base64
import importlib.util
import math
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trustgate import yamlio

ROOT = Path(__file__).resolve().parents[2]
BENCH_SAMPLE = 600  # documents from bench/run.py's generator; every kind and every injected error


# Plain scalars of `TRICKY` that go-yaml v2 (sigs.k8s.io/yaml's `goyaml.v2/resolve.go`) types
# otherwise than PyYAML's SafeLoader, and the value it reads: Kubernetes sees these.
GO_V2: dict[str, Any] = {
    # y/Y/n/N are in its table of booleans (PyYAML: strings)
    **{"y": True, "Y": True, "n": False, "N": False},
    # Go's ParseInt(s, 0, 64): 0o and upper-case prefixes (PyYAML: strings)
    **{"0o10": 8, "0X1F": 31, "0B101": 5},
    # no base 60 (PyYAML: 90, 685230, 720, 45045)
    **{"1:30": "1:30", "190:20:30": "190:20:30", "12:00": "12:00", "12:30:45": "12:30:45"},
    # yamlStyleFloat then ParseFloat: no dot or exponent sign needed; a leading 0 is decimal;
    # a signed integer past int64 (ParseUint refuses signs) is a float (PyYAML: strings, an int)
    **{"08": 8.0, "1e3": 1000.0, "1E3": 1000.0, "1.5e3": 1500.0, "-.5": -0.5},
    "-9223372036854775809": -9223372036854775809.0,
    "=": "=",  # not YAML 1.1's `value` type: a string (PyYAML refuses it as a value)
    # ParseFloat of a scalar starting with `.` takes `_` between digits (PyYAML: strings)
    **{".0_1": 0.01, ".5_0": 0.5, ".1_0e1_0": 1e9, ".1_": ".1_", ".1__0": ".1__0"},
}


class _Reference(yaml.SafeLoader):
    """PyYAML's SafeLoader with yamlio's documented deviations."""


_GO = "!go-yaml-v2"
_Reference.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _scalar in GO_V2:  # tried before PyYAML's own resolvers
    _Reference.yaml_implicit_resolvers.setdefault(_scalar[0], []).insert(
        0, (_GO, re.compile(re.escape(_scalar) + r"\Z"))
    )
_Reference.add_constructor(_GO, lambda loader, node: GO_V2[node.value])
_Reference.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: node.value)
_Reference.add_constructor(
    "tag:yaml.org,2002:binary",
    lambda loader, node: base64.b64decode(node.value.replace("\n", ""), validate=True).decode(),
)


def _compose_scalar_node(self: _Reference, anchor: Any) -> yaml.ScalarNode:
    """go-yaml v2 leaves a scalar tagged `!` unresolved, a string; PyYAML resolves it as untagged."""
    event = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML's stubs leave it untyped
    node: yaml.ScalarNode = yaml.SafeLoader.compose_scalar_node(self, anchor)
    if event.tag == "!":
        node.tag = "tag:yaml.org,2002:str"
    return node


def _construct_mapping(self: _Reference, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
    """PyYAML's mapping, with keys as sigs.k8s.io/yaml's `convertToJSONableObject` makes them."""
    self.flatten_mapping(node)
    out: dict[str, Any] = {}
    origins: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = self.construct_object(key_node, deep=deep)
        if isinstance(key, bool):
            text = "true" if key else "false"
        elif isinstance(key, int) and -(2**63) <= key < 2**63:
            text = str(key)
        elif isinstance(key, float):
            text = _FLOAT_KEYS.get(repr(key)) or yamlio._go_float32_text(key)
        elif isinstance(key, str):
            text = key
        else:  # null, uint64, collections: an error in convertToJSONableObject
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r}", key_node.start_mark)
        origin = (type(key).__name__, repr(key))
        prior = origins.setdefault(text, origin)
        if prior is not origin and (prior != origin or origin == ("float", "nan")):  # every NaN differs
            raise yaml.constructor.ConstructorError(None, None, f"{text} twice", key_node.start_mark)
        out[text] = self.construct_object(value_node, deep=deep)
    return out


# Float keys as kubectl 1.32 writes them (FormatFloat(f, 'g', -1, 32)), from `kubectl label --local`.
_FLOAT_KEYS = {"nan": ".nan", "inf": ".inf", "-inf": "-.inf", "1000.0": "1000", "1.5e-07": "1.5e-07"}
_Reference.compose_scalar_node = _compose_scalar_node  # type: ignore[method-assign,assignment]  # a deviation
_Reference.construct_mapping = _construct_mapping  # type: ignore[method-assign,assignment]  # a deviation


def typed(value: Any) -> Any:
    """A form that compares types too: 1, 1.0 and True differ; NaN equals NaN."""
    if isinstance(value, dict):  # unordered, as JSON objects are
        return ("map", sorted(((typed(k), typed(v)) for k, v in value.items()), key=lambda kv: repr(kv[0])))
    if isinstance(value, list):
        return ("seq", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)


REFUSED = "refused"  # a document neither reader turns into a value (`v: =`, `v: <<`)


def ours(text: str) -> list[Any] | str:
    out = []
    for item in yamlio.parse_stream(text.encode(), max_nodes=10**7):
        if isinstance(item, yamlio.YamlProblem):
            return REFUSED
        out.append(typed(item.value))
    return [v for v in out if v != ("NoneType", None)]


def reference(text: str) -> list[Any] | str:
    try:
        docs = [typed(d) for d in yaml.load_all(text, Loader=_Reference)]
    except (yaml.YAMLError, ValueError):  # ValueError: invalid base64
        return REFUSED
    if any(not math.isfinite(v) for d in docs for v in _floats(d)):
        return REFUSED  # sigs.k8s.io/yaml: "json: unsupported value: NaN"
    return [v for v in docs if v != ("NoneType", None)]


def _floats(value: Any) -> Iterator[float]:
    if value[0] == "float":
        yield float(value[1])
    elif value[0] in ("map", "seq"):
        for item in value[1]:
            yield from _floats(item[1] if value[0] == "map" else item)


def _bench_module() -> Any:
    spec = importlib.util.spec_from_file_location("trustgate_bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def bench_texts() -> Iterator[tuple[str, str]]:
    """A seeded sample of the benchmark corpus, emitted as the benchmark writes it."""
    bench = _bench_module()
    rng = random.Random(bench.DEFAULT_SEED)
    gen = bench._Gen(rng, bench.Corpus(root=Path("bench-sample")))
    n = count = 0
    while count < BENCH_SAMPLE:
        team = bench.TEAMS[n % len(bench.TEAMS)]
        app = f"{rng.choice(bench.APP_WORDS)}-{n}"
        n += 1
        for filename, doc, _violations in gen.app_docs(team, app):
            gen.break_schema(doc)  # wrong types too, as the benchmark writes them
            count += 1
            yield f"bench:{team}/{app}/{filename}", bench.to_yaml(doc)


def conformance_texts() -> Iterator[tuple[str, str]]:
    for path in sorted((ROOT / "tests" / "conformance").rglob("*.yaml")):
        yield str(path.relative_to(ROOT)), path.read_text("utf-8")


# Plain scalars where YAML 1.1, YAML 1.2 and Go's go-yaml v2 (Kubernetes'
# reader, through sigs.k8s.io/yaml) disagree; ADR 13 lists what each makes of them.
TRICKY = [
    *("y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"),
    *("true", "True", "TRUE", "false", "False", "FALSE", "tRUE", "oN"),
    *("null", "Null", "NULL", "~", "nUll"),
    *("0", "00", "010", "08", "0o10", "0x1F", "0X1F", "0b101", "0B101", "1_000", "+1", "-1", "-0", "+0"),
    *("1:30", "190:20:30", "12:00", "9223372036854775808", "-9223372036854775809", "1e3", "1E3"),
    *("1.0", "1.", ".5", "-.5", "1.5e3", "1.5E+3", "1.5e-3", "6.8523015e+5", "685.230_15e+03", "1_0.5"),
    *(".inf", ".Inf", ".INF", "-.inf", "+.inf", ".nan", ".NaN", ".NAN", "inf", "nan", "NaN"),
    *("2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2002-12-14T00:00:00Z"),
    *("2024-1-1", "12:30:45", "1.2.3", "v1", "1Gi", "500m", "0.5", "'quoted'", "=", "<<"),
    *(".0_1", ".5_0", ".1_0e1_0", "._1", ".1_", ".1__0", ".1_e1", "1e400"),
]


def tricky_texts() -> Iterator[tuple[str, str]]:
    for scalar in TRICKY:
        yield f"plain {scalar}", f"value: {scalar}\n"
        yield f"key {scalar}", f"{scalar}: x\n"
        yield f"flow {scalar}", f"list: [{scalar}, {scalar}]\n"
        yield f"block seq {scalar}", f"list:\n  - {scalar}\n  - a\n"
        yield f"double-quoted {scalar}", f'value: "{scalar}"\n'
        yield f"single-quoted {scalar}", "value: '" + scalar.replace("'", "''") + "'\n"
        yield f"tagged str {scalar}", f"value: !!str {scalar}\n"
        yield f"non-specific tag {scalar}", f"value: ! {scalar}\nlist: [! {scalar}]\n"
    yield (
        "merge keys",
        (
            "base: &base {cpu: 1, memory: 2}\n"
            "more: &more {gpu: 0}\n"
            "one:\n  <<: *base\n  cpu: 3\n"
            "many:\n  <<: [*base, *more]\n  memory: 4\n"
            "inline:\n  <<: {a: 1}\n  b: 2\n"
        ),
    )
    yield (
        "anchors and aliases",
        ("a: &a [1, two, {three: 3}]\nb: *a\nc: &c {x: *a}\nd: [*c, *c]\ne: &s plain\nf: *s\n"),
    )
    yield (
        "explicit tags",
        (
            "i: !!int '42'\nf: !!float '1'\nb: !!bool 'yes'\nn: !!null ''\ns: !!str 42\n"
            "t: !!timestamp 2001-12-14\nbin: !!binary |\n  aGVsbG8g\n  d29ybGQ=\n"
            "seq: !!seq [1]\nmap: !!map {a: 1}\n"
        ),
    )
    yield "non-string keys", "1: int\n1.5: float\ntrue: bool\n0x10: hex\n1e3: exp\n.inf: inf\n"
    yield "null key", "null: none\n"  # refused by both, as by kubectl
    yield "keys that collide", "1: int\n'1': str\n"
    yield "binary", "bin: !!binary |\n  aGVs\n  bG8=\n"
    yield (
        "block scalars",
        "a: |\n  line\n   indented\nb: >\n  folded\n  text\n\nc: |-\n  strip\nd: >+\n  keep\n\n",
    )
    yield "duplicate keys", "a: 1\na: on\nb: {c: 1, c: 2}\n"  # the last one wins, in both
    yield "empty values", "a:\nb: ''\nc: []\nd: {}\ne: ~\n"
    yield "multi-document", "a: 1\n---\nb: on\n...\n---\n- y\n- 010\n---\n\n# comment only\n---\nlast: .5\n"
    yield "unicode", 'name: caf\u00e9\nemoji: "\\U0001F600"\nnbsp: a\u00a0b\n'
    yield "flow mapping", "{a: 1, b: [on, off], c: {d: null}}\n"


def _cases() -> list[Any]:
    out = []
    for corpus, texts in (
        ("bench", bench_texts),
        ("conformance", conformance_texts),
        ("tricky", tricky_texts),
    ):
        out.extend(pytest.param(text, id=f"{corpus}:{name}") for name, text in texts())
    return out


CASES = _cases()


def test_the_corpora_are_not_empty() -> None:
    ids = [c.id for c in CASES]
    assert sum(i.startswith("bench:") for i in ids) >= BENCH_SAMPLE
    assert sum(i.startswith("conformance:") for i in ids) > 100
    assert sum(i.startswith("tricky:") for i in ids) > 7 * len(TRICKY)


@pytest.mark.parametrize("text", CASES)
def test_yamlio_reads_the_same_values_as_pyyaml(text: str) -> None:
    assert ours(text) == reference(text)


# Why a tricky case may be refused: a null or uint64 key (no JSON key in sigs.k8s.io/yaml), NaN or
# an infinity as a value ("json: unsupported value"), `<<` as a plain value or merging a string.
REFUSED_KEYS = ("null", "Null", "NULL", "~", "9223372036854775808")
REFUSED_VALUES = (".inf", ".Inf", ".INF", "-.inf", "+.inf", ".nan", ".NaN", ".NAN", "<<")


def test_most_of_the_corpora_is_read() -> None:
    refused = [c.id for c in CASES if reference(c.values[0]) == REFUSED]
    assert all(i.startswith("tricky:") for i in refused), refused
    explained = {f"tricky:key {k}" for k in REFUSED_KEYS} | {
        "tricky:null key",
        "tricky:keys that collide",
        "tricky:key <<",
    }
    explained |= {f"tricky:{where} {v}" for v in REFUSED_VALUES for where in ("plain", "flow", "block seq")}
    assert set(refused) == explained


def test_the_go_v2_deviations_are_exercised() -> None:
    assert set(GO_V2) <= set(TRICKY)
    for scalar, value in GO_V2.items():
        assert ours(f"value: {scalar}\n") == [typed({"value": value})], scalar


def test_yaml_11_booleans_stay_booleans() -> None:
    """The reason for a YAML 1.1 reader: `privileged: on` (and `y`) is true to Kubernetes."""
    assert ours("privileged: on\nhostNetwork: yes\nhostPID: y\nhostIPC: N\n") == [
        typed({"privileged": True, "hostNetwork": True, "hostPID": True, "hostIPC": False})
    ]
