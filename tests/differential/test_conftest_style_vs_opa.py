"""Conftest-style policies: trustgate (`RegoPolicy`/`RegoEvaluator`) against OPA.

Two corpora: the policies trustgate ships (policies/) over every case input
and a sample of the benchmark's generated manifests, and the small modules
under corpus/ written to reach the corners where engines part ways (negation
of undefined, wrong-type built-ins, v0 syntax, partial sets and objects,
`else`, `print`, data files). Every module set is compared on every input:
the same findings (sets compared as sets), or an error on both sides.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import regorus
import yaml
from opa_bindings.engine import OpaEngine, OpaError
from support.differential import TALLY, Outcome, agree, opa_engine, opa_findings, trustgate_findings

from trustgate.errors import PolicyError
from trustgate.gate.sources import WORKLOAD_GATED, WORKLOAD_KINDS
from trustgate.policy import _gobuiltins, rego
from trustgate.policy._compile_checks import NOT_IN_REGORUS

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"
BENCH_SAMPLE = 120  # documents; enough for every kind and injected fault the generator makes

# (module set, input label) -> why the outcomes differ and why that is accepted.
KNOWN: dict[tuple[str, str], str] = {}

# Module sets whose every input may differ; each must still differ somewhere, so that
# the entry goes when the divergence does.
KNOWN_MODULES: dict[str, str] = {
    "corpus:type_errors_through_variables": (
        "OPA's type checker refuses a module where a wrong type reaches a built-in or a user "
        "function through a variable or a function's parameters; trustgate refuses only a literal "
        "operand of a built-in and evaluates the rest (undefined where the type is wrong); ADR 0008"
    ),
}


def _documents(path: Path) -> Iterator[Any]:
    for doc in yaml.safe_load_all(path.read_text("utf-8")):
        if doc is not None:
            yield doc


def case_inputs() -> list[tuple[str, Any]]:
    out = []
    for path in sorted((ROOT / "tests" / "cases").glob("*/*/*.yaml")):
        if path.name in ("expected.yaml", "trustgate.yaml"):
            continue
        for i, doc in enumerate(_documents(path)):
            out.append((f"{path.relative_to(ROOT)}#{i}", doc))
    return out


def bench_inputs() -> list[tuple[str, Any]]:
    """A seeded sample of the benchmark corpus, made by bench/run.py's own generator."""
    spec = importlib.util.spec_from_file_location("trustgate_bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    rng = random.Random(module.DEFAULT_SEED)
    gen = module._Gen(rng, module.Corpus(root=Path("bench-sample")))
    out: list[tuple[str, Any]] = []
    n = 0
    while len(out) < BENCH_SAMPLE:
        team = module.TEAMS[n % len(module.TEAMS)]
        app = f"{rng.choice(module.APP_WORDS)}-{n}"
        n += 1
        for filename, doc, _violations in gen.app_docs(team, app):
            gen.break_schema(doc)  # mutates doc like the benchmark does, wrong types included
            out.append((f"bench:{team}/{app}/{filename}", doc))
    return out[:BENCH_SAMPLE]


def compare(
    label: str, policy: rego.RegoPolicy, engine: Any, inputs: list[tuple[str, Any]], *, data: Any = None
) -> list[str]:
    """Compare every input; a strict built-in error of OPA's is retried on the guarded modules."""
    evaluator = policy.evaluator()
    guarded: Any = None
    problems = []
    for name, value in inputs:
        ours = trustgate_findings(evaluator, value) if isinstance(value, dict) else None
        reference = opa_findings(engine, policy.rules, value)
        if reference.strict:  # conftest would not fail: emulate it (support.differential.opa_engine)
            if guarded is None:
                guarded = opa_engine(policy.modules, v0=policy.rego_v0, data=data, guarded=True)
            reference = opa_findings(guarded, policy.rules, value)
            TALLY["built-in errors emulated"] += 1
        TALLY[label.split(":")[0]] += 1
        if ours is None:  # trustgate evaluates mappings only (a document that is not one is a schema error)
            continue
        if not agree(ours, reference) and (label, name) not in KNOWN:
            problems.append(_describe(label, name, ours, reference))
        elif (label, name) in KNOWN and agree(ours, reference):
            problems.append(f"{label} on {name} now matches OPA: remove it from KNOWN")
    return problems


def _describe(label: str, name: str, ours: Outcome, reference: Outcome) -> str:
    def show(o: Outcome, other: Outcome) -> str:
        if o.is_error:
            return f"error{' (strict built-in)' if o.strict else ''}: {o.error[:300]}"
        only = sorted(set(o.findings) - set(other.findings))
        return "only here: " + ("\n      ".join(only) or "-")

    return f"{label} on {name}:\n   trustgate: {show(ours, reference)}\n   OPA:       {show(reference, ours)}"


@pytest.mark.parametrize(
    ("body", "opa_code", "ours"),
    [
        # A rule reading all of `data` depends on itself.
        (
            'settings := object.get(data, ["p", "x"], {})',
            "rego_recursion_error",
            "rule `settings` reads `data`",
        ),
        # A wildcard inside `not` is unsafe.
        ('deny if not startswith(input.x[_], "a")', "rego_unsafe_var_error", "`_` inside `not`"),
        # A built-in called with a literal of a type it does not take.
        ('deny if startswith(5, "a")', "rego_type_error", "rego_type_error: startswith: invalid argument(s)"),
        ("deny if count(true) > 1", "rego_type_error", "rego_type_error: count: invalid argument(s)"),
        (
            'deny if concat(",", [1, 2]) == ""',
            "rego_type_error",
            "rego_type_error: concat: invalid argument(s)",
        ),
        ('msg := sprintf("%v", "x")', "rego_type_error", "rego_type_error: sprintf: invalid argument(s)"),
        ('deny if { x := input.x; lower({"a": x}) == "" }', "rego_type_error", "rego_type_error: lower:"),
    ],
)
def test_module_opa_refuses_is_refused(body: str, opa_code: str, ours: str) -> None:
    module = rego.Module("p.rego", f"package p\nimport rego.v1\n\n{body}\n")
    with pytest.raises(OpaError) as raised:
        opa_engine([module], v0=False).eval_document("p", {})
    assert opa_code in raised.value.message
    with pytest.raises(PolicyError) as refused:
        rego.RegoPolicy([module])
    assert refused.value.message.startswith(f"p.rego:4: {ours}")
    TALLY["refused modules"] += 1


@pytest.mark.parametrize(
    ("texts", "where"),
    [
        (["package p\n\ndefault allow := true\ndefault allow := false\n"], "p0.rego:4"),
        (["package p\n\ndefault allow := true\n", "package p\n\n\ndefault allow := false\n"], "p1.rego:4"),
    ],
)
def test_multiple_default_rules_are_refused_as_opa_refuses_them(texts: list[str], where: str) -> None:
    modules = [rego.Module(f"p{i}.rego", t) for i, t in enumerate(texts)]
    with pytest.raises(OpaError) as raised:
        opa_engine(modules, v0=False).eval_document("p", {})
    assert "rego_type_error: multiple default rules data.p.allow found" in raised.value.message
    with pytest.raises(PolicyError) as refused:
        rego.RegoPolicy(modules)
    assert refused.value.message.startswith(
        f"{where}: rego_type_error: multiple default rules data.p.allow found"
    )
    TALLY["refused modules"] += 1


_RULES = """\
package p.q
import rego.v1

deny contains "x" if input.a
a.b.c := 1
f(x) := x
o[k] := 1 if some k in ["k"]
default allow := false
"""


@pytest.mark.parametrize(
    "data",
    [
        {"p": {"q": {"deny": []}}},
        {"p": {"q": {"deny": None}}},
        {"p": {"q": {"deny": {}}}},
        {"p": {"q": {"deny": {"x": 1}}}},
        {"p": {"q": {"f": 1}}},
        {"p": {"q": {"o": {"k": 2}}}},
        {"p": {"q": {"allow": True}}},
        {"p": {"q": {"a": {"b": {"c": {}}}}}},
        {"p": {"q": {"a": {"b": 1}}}},
        {"p": {"q": 1}},
        {"p": None},
        {"p": [1]},
        {"trustgate_internal_aggregate": {"findings": {}}},
        # beside the rules: accepted by both
        {"p": {}},
        {"p": {"q": {}}},
        {"p": {"q": {"other": 1}, "r": 2}},
        {"p": {"q": {"a": {"x": 1}}}},
        {"p": {"q": {"a": {"b": {"x": 1}}}}},
        {"q": {"deny": []}},
    ],
)
def test_data_at_or_below_a_rule_is_refused_as_opa_refuses_it(data: dict[str, Any]) -> None:
    module = rego.Module("p.rego", _RULES)
    try:
        opa_engine([module], v0=False, data=data).eval_document("p", {"a": True})
        opa_refuses = False
    except OpaError as e:
        assert "conflicting rule for data path" in e.message, e.message
        opa_refuses = True
    if "trustgate_internal_aggregate" in data:  # trustgate's own rule: OPA has none there
        opa_refuses = True
    try:
        rego.RegoPolicy([module], data=data)
        ours = False
    except PolicyError as e:
        assert "conflicts with rule" in e.message and "rego_compile_error" in e.message, e.message
        ours = True
    assert ours == opa_refuses
    TALLY["refused modules" if ours else "corpus"] += 1


@pytest.mark.parametrize("gated", [False, True], ids=["every-kind", "workload-kinds-only"])
def test_bundled_policies_match_opa(gated: bool) -> None:
    """Also as `check` evaluates them: the bundled sets only on workload kinds (`compile_rego`)."""
    modules = rego.load_modules(ROOT / "policies")
    policy = rego.RegoPolicy(modules)
    if gated:
        policy.gate_on_kinds(WORKLOAD_GATED, WORKLOAD_KINDS)
        assert policy.kind_gated == WORKLOAD_GATED
    engine = opa_engine(modules, v0=False)
    assert policy.rules, "no finding rules found in policies/"
    inputs = case_inputs() + bench_inputs() + registry_inputs() + host_network_inputs()
    assert len(inputs) >= BENCH_SAMPLE + 20
    problems = compare("policies", policy, engine, inputs)
    assert not problems, "\n".join(problems)


# Image references whose registry only the supply-chain set's `normalized` tells apart, in
# containers and in image volumes (spec.volumes[].image.reference).
_REGISTRY_IMAGES = [
    "INTERNAL/app:1",
    "LOCALHOST/app:1",
    "Acme/app:1",
    "acme/app:1",
    "nginx",
    "localhost/app:1",
    "registry.example.com/app:1",
    "registry.example.com:5000/app:latest",
    "[::ffff:7f00:1]:5000/app:1",
    "[64:ff9b::7f00:1]:5000/app:1",
    "[::7f00:1]:5000/app:1",
    "index.docker.io/app:1",
    "evil.attacker.io/tools:latest",
    "${IMAGE}",
    "",
]


def registry_inputs() -> list[tuple[str, Any]]:
    """Pods with each of `_REGISTRY_IMAGES` as a container's image and as an image volume's."""
    out: list[tuple[str, Any]] = []
    for i, image in enumerate(_REGISTRY_IMAGES):
        volumes = [{"name": "cache", "emptyDir": {}}, {"name": "tools", "image": {"reference": image}}]
        for where, spec in (
            ("container", {"containers": [{"name": "app", "image": image}]}),
            (
                "volume",
                {"containers": [{"name": "app", "image": "registry.example.com/app:1"}], "volumes": volumes},
            ),
        ):
            out.append((f"registry:{where}#{i}", {"apiVersion": "v1", "kind": "Pod", "spec": spec}))
    out.append(
        (
            "registry:odd-volumes",
            {"kind": "Pod", "spec": {"volumes": [5, "x", {"image": "x"}, {"image": {}}]}},
        )
    )
    return out


# Container ports of a host-network pod, whose hostPort the API server defaults to the
# containerPort when it is unset or 0: (label, ports, host network, a host port at admission).
_HOST_NETWORK_PORTS: list[tuple[str, Any, Any, bool]] = [
    ("container-port", [{"containerPort": 9100}], True, True),
    ("host-port-0", [{"containerPort": 9100, "hostPort": 0}], True, True),
    ("host-port-null", [{"containerPort": 9100, "hostPort": None}], True, True),
    ("host-port-written", [{"containerPort": 80, "hostPort": 8080}], True, True),
    ("container-port-0", [{"containerPort": 0}, {"containerPort": None}, {"name": "m"}], True, False),
    ("odd-ports", [5, "x", None, [], {"containerPort": []}], True, True),
    ("ports-not-a-list", "9100", True, False),
    ("host-network-string", [{"containerPort": 9100}], "true", False),
    ("no-host-network", [{"containerPort": 9100}], False, False),
]


def host_network_inputs() -> list[tuple[str, Any]]:
    """A Pod and a DaemonSet for each of `_HOST_NETWORK_PORTS`, the ports on a container, an init
    container and an ephemeral container."""
    out: list[tuple[str, Any]] = []
    for label, ports, host_network, _ in _HOST_NETWORK_PORTS:
        spec = {
            "hostNetwork": host_network,
            "containers": [{"name": "app", "image": "registry.example.com/app:1", "ports": ports}],
            "initContainers": [{"name": "init", "image": "registry.example.com/app:1", "ports": ports}],
            "ephemeralContainers": [{"name": "debug", "image": "registry.example.com/app:1", "ports": ports}],
        }
        out.append((f"host-network:pod:{label}", {"apiVersion": "v1", "kind": "Pod", "spec": spec}))
        template = {"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {"template": {"spec": spec}}}
        out.append((f"host-network:daemonset:{label}", template))
    return out


def test_a_container_port_under_host_network_is_a_host_port_as_opa_judges_it() -> None:
    """The bundled sets on host-network pods, against OPA, and the host port the API server makes."""
    modules = rego.load_modules(ROOT / "policies")
    policy = rego.RegoPolicy(modules)
    engine = opa_engine(modules, v0=False)
    problems = compare("policies+host-network", policy, engine, host_network_inputs())
    assert not problems, "\n".join(problems)
    evaluator = policy.evaluator()
    expected = {label: host_port for label, _, _, host_port in _HOST_NETWORK_PORTS}
    for name, value in host_network_inputs():
        found = trustgate_findings(evaluator, value).findings
        ports = [f for f in found if "pss-baseline-host-ports" in f]
        assert bool(ports) is expected[name.rsplit(":", 1)[1]], (name, found)
        # An ephemeral container's ports are not defaulted (and are invalid there): its containerPort
        # is never a host port, a hostPort it writes is.
        assert not any('"ephemeralContainers", 0, "ports", 0, "containerPort"]' in f for f in ports), name
    pod = dict(host_network_inputs())["host-network:pod:container-port"]
    found = trustgate_findings(evaluator, pod).findings
    assert sum("pss-baseline-host-ports" in f for f in found) == 2  # the container's and the init container's


def test_bundled_policies_with_allowed_registries_match_opa() -> None:
    """The registry an image is from, as `normalized` reads it, in containers and image volumes."""
    data = {"trustgate": {"allowed_registries": ["registry.example.com/", "docker.io/", "localhost/"]}}
    modules = rego.load_modules(ROOT / "policies")
    policy = rego.RegoPolicy(modules, data=data)
    engine = opa_engine(modules, v0=False, data=data)
    inputs = registry_inputs() + case_inputs()
    problems = compare("policies+registries", policy, engine, inputs, data=data)
    assert not problems, "\n".join(problems)
    findings = {
        name: trustgate_findings(policy.evaluator(), value).findings for name, value in registry_inputs()
    }
    denied = {
        name for name, found in findings.items() if any("images-allowed-registries" in f for f in found)
    }
    assert {"registry:container#0", "registry:volume#0", "registry:volume#10"} <= denied
    assert "registry:container#3" not in denied


def _corpus_sets() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_dir())


@pytest.mark.parametrize("directory", _corpus_sets(), ids=lambda p: p.name)
def test_corpus_module_matches_opa(directory: Path) -> None:
    files = sorted(directory.glob("*.rego"))
    v0 = any(f.name.endswith(".v0.rego") for f in files)
    modules = [rego.Module(str(f.relative_to(ROOT)), f.read_text("utf-8")) for f in files]
    data_file = directory / "data.yaml"
    data = yaml.safe_load(data_file.read_text("utf-8")) if data_file.exists() else {}
    inputs = [
        (f"inputs.yaml#{i}", v) for i, v in enumerate(yaml.safe_load((CORPUS / "inputs.yaml").read_text()))
    ]
    own = directory / "inputs.yaml"
    if own.exists():
        inputs += [
            (f"{directory.name}/inputs.yaml#{i}", v) for i, v in enumerate(yaml.safe_load(own.read_text()))
        ]
    policy = rego.RegoPolicy(modules, data=data, rego_v0=v0)
    engine = opa_engine(modules, v0=v0, data=data)
    label = f"corpus:{directory.name}"
    problems = compare(label, policy, engine, inputs, data=data)
    if label in KNOWN_MODULES:
        assert problems, f"{label} now matches OPA: remove it from KNOWN_MODULES"
        return
    assert not problems, "\n".join(problems)


_NUMBERS = """\
package p
import rego.v1

deny contains "above u64 max - 1" if input.n > 18446744073709551614
deny contains "exact 2^53 + 1" if input.n == 9007199254740993
deny contains "above the data's limit" if input.n > data.cfg.limit
deny contains "below -(2^63 - 1)" if input.n < -9223372036854775807
deny contains "in a list" if input.n in [9223372036854775809, 18446744073709551615]
"""
_IN_RANGE = [2**53 + 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1, -(2**63), -(2**63) + 1]
_OUT_OF_RANGE = [2**64, 2**64 + 1, -(2**63) - 1, 10**30, -(10**30)]


@pytest.mark.parametrize("n", _IN_RANGE + _OUT_OF_RANGE)
def test_integers_regorus_keeps_exact_match_opa_and_others_are_refused(n: int) -> None:
    """regorus keeps an integer exact from -2^63 to 2^64-1 and rounds any other to a float64, so
    `input.n > 18446744073709551616` was false for ...617 (OPA: true). Outside that range the input,
    or data, is refused (could not evaluate), never evaluated as another number (ADR 0008)."""
    module = rego.Module("p.rego", _NUMBERS)
    data = {"cfg": {"limit": 2**63 + 5}}
    policy = rego.RegoPolicy([module], data=data)
    engine = opa_engine([module], v0=False, data=data)
    for value in ({"n": n}, {"x": [{"n": n}]}, {"n": n, "m": [n]}):
        if n in _IN_RANGE:
            problems = compare("numbers", policy, engine, [(str(value), value)], data=data)
            assert not problems, "\n".join(problems)
            continue
        with pytest.raises(PolicyError, match=r"the integer at \S+ is outside -2\^63\.\.2\^64-1"):
            policy.evaluator().evaluate(value)
        TALLY["refused inputs"] += 1
    if n not in _IN_RANGE:
        with pytest.raises(
            PolicyError, match=r"the policy data cannot be evaluated: the integer at cfg\.limit"
        ):
            rego.RegoPolicy([module], data={"cfg": {"limit": n}})


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (
            'deny contains "up" if http.send({"method": "get", "url": "http://127.0.0.1:9/"}).status_code',
            "http.send",
        ),
        (
            'deny contains "down" if not http.send({"method": "get", "url": "http://127.0.0.1:9/"})',
            "http.send",
        ),
        ('deny contains "x" if net.lookup_ip_addr("localhost")', "net.lookup_ip_addr"),
        ('deny contains "v" if opa.runtime().version', "opa.runtime"),
        ('deny contains "env" if not opa.runtime().env.CI', "opa.runtime"),
        ('deny contains m if m := trace("x")', "trace"),
        ('deny contains "t" if {\n\tnot print(x)\n\tx := 1\n}', "print"),
        ('deny contains m if {\n\tm := sprintf("%v", [print("x")])\n}', "print"),
    ],
)
def test_builtins_regorus_answers_unlike_opa_are_refused_at_load(body: str, name: str) -> None:
    """regorus is undefined for `http.send` (OPA sends the request, Gatekeeper refuses it), fails
    at run time for `net.lookup_ip_addr`, gives its own build for `opa.runtime` (OPA: {}) and the
    text for `trace` (OPA: true), and finds `not print(...)` false (OPA: true): refused at load,
    with file, line and why, rather than a verdict that differs silently."""
    module = rego.Module("p.rego", f"package p\nimport rego.v1\n\n{body}\n")
    with pytest.raises(PolicyError) as refused:
        rego.RegoPolicy([module])
    line = 4 if "{" not in body.split(" if ", 1)[1][:2] else 5
    assert refused.value.message.startswith(f"p.rego:{line}: `{name}` cannot be evaluated as OPA does: ")
    TALLY["refused modules"] += 1


def _opa_has(name: str) -> bool:
    try:
        OpaEngine().add_policy("p.rego", f"package p\n\nr := {name}(input)\n")
    except OpaError as e:
        return "undefined function" not in e.message  # a wrong arity: OPA has it
    return True


def test_opa_builtins_regorus_lacks_are_refused_at_load() -> None:
    """`net.cidr_intersects` and the rest of `NOT_IN_REGORUS` failed only when a document reached
    the call ("could not find function"); each is refused at load, naming it, file and line. The
    list is checked here against both engines: OPA has each, regorus none."""
    for name in sorted(NOT_IN_REGORUS):
        engine = regorus.Engine()
        engine.add_policy("p.rego", f"package p\nr := {name}(input)\n")
        engine.set_input(1)
        with pytest.raises(RuntimeError, match="could not find function"):
            engine.eval_rule("data.p.r")
        assert _opa_has(name), name
        if name == "net.lookup_ip_addr":
            continue  # refused by check 7 first (OPA resolves names)
        if name in _gobuiltins.BUILTINS:
            continue  # trustgate implements it (net.cidr_intersects): routed, not refused
        module = rego.Module(
            "p.rego", f'package p\nimport rego.v1\n\ndeny contains "x" if {{\n\t{name}(input.a)\n}}\n'
        )
        with pytest.raises(PolicyError) as refused:
            rego.RegoPolicy([module])
        assert refused.value.message.startswith(
            f"p.rego:5: the built-in `{name}` is not available in trustgate's Rego engine (regorus)"
        ), refused.value.message
        TALLY["refused modules"] += 1
    # The name's first part is an import or a rule of the package: the policy's own function.
    lib = rego.Module("lib.rego", "package lib.crypto\nimport rego.v1\n\nsha256(x) := x\n")
    own = rego.Module(
        "p.rego",
        'package p\nimport rego.v1\nimport data.lib.crypto\n\ndeny contains "x" if crypto.sha256(input.a)\n',
    )
    policy = rego.RegoPolicy([lib, own])
    assert policy.evaluator().evaluate({"a": 1})


def test_trace_and_print_statements_are_evaluated_as_opa_does() -> None:
    module = rego.Module(
        "p.rego",
        "package p\nimport rego.v1\n\n"
        'deny contains "traced" if {\n\ttrace("x")\n\tprint("y", input.missing)\n\tinput.kind\n}\n'
        'deny contains "not traced" if not trace("x")\n'
        'warn contains "printed" if print("z")\n',
    )
    policy = rego.RegoPolicy([module])
    problems = compare(
        "corpus", policy, opa_engine([module], v0=False), [("{}", {}), ("kind", {"kind": "Pod"})]
    )
    assert not problems, "\n".join(problems)


# Custom resources carrying a pod template: the known custom workloads (the table trustgate gives
# as data.trustgate.config.workloads) and the kinds beside them that are not workloads.
_CUSTOM_TEMPLATE = {
    "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}},
    "spec": {
        "hostNetwork": True,
        "containers": [
            {
                "name": "app",
                "image": "registry.example.com/app:latest",
                "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
                "ports": [{"containerPort": 9100}],
            }
        ],
        "volumes": [
            {"name": "h", "hostPath": {"path": "/"}},
            {"name": "t", "image": {"reference": "t:latest"}},
        ],
    },
}


def custom_workload_inputs() -> list[tuple[str, Any]]:
    """Each known custom workload with a failing pod template where its kind keeps it, the same
    under another group, without apiVersion, and with a template of the wrong type."""
    from trustgate import kinds

    out: list[tuple[str, Any]] = []
    for w in kinds.KNOWN_WORKLOADS:
        assert w.pod_spec is not None
        if w.anywhere:
            continue  # no path for Rego: the gate judges each template as a built-in kind's pod
        doc: dict[str, Any] = {"apiVersion": f"{w.group}/v1", "kind": w.kind, "metadata": {"name": "x"}}
        node: dict[str, Any] = doc
        for key in w.pod_spec[:-1]:
            node = node.setdefault(key, {})
        node[w.pod_spec[-1]] = _CUSTOM_TEMPLATE["spec"]
        metadata = doc
        for key in w.pod_metadata[:-1]:
            metadata = metadata.setdefault(key, {})
        metadata.setdefault(w.pod_metadata[-1], {}).update(_CUSTOM_TEMPLATE["metadata"])
        label = f"custom:{w.group}/{w.kind}"
        out.append((label, doc))
        out.append((f"{label}:other-group", {**doc, "apiVersion": "example.com/v1"}))
        out.append((f"{label}:no-api-version", {k: v for k, v in doc.items() if k != "apiVersion"}))
        out.append((f"{label}:three-parts", {**doc, "apiVersion": f"{w.group}/v1/x"}))
        out.append((f"{label}:wrong-type", {**doc, "spec": {"template": "x", "jobTargetRef": []}}))
    out.append(
        (
            "custom:core-service",
            {"apiVersion": "v1", "kind": "Service", "spec": {"template": _CUSTOM_TEMPLATE}},
        )
    )
    return out


def test_bundled_policies_match_opa_on_custom_workloads() -> None:
    """The custom workloads' table as data: OPA and trustgate find the same, gated or not."""
    from trustgate import kinds

    table = kinds.Workloads.of(())
    data = {"trustgate": {"config": {"workloads": table.rego_data()}}}
    modules = rego.load_modules(ROOT / "policies")
    engine = opa_engine(modules, v0=False, data=data)
    inputs = custom_workload_inputs()
    for gated in (False, True):
        policy = rego.RegoPolicy(modules, data=data)
        if gated:
            policy.gate_on_kinds(WORKLOAD_GATED, WORKLOAD_KINDS, table.gating())
        problems = compare("policies+custom-workloads", policy, engine, inputs, data=data)
        assert not problems, "\n".join(problems)
    evaluator = rego.RegoPolicy(modules, data=data).evaluator()
    for name, value in inputs:
        found = trustgate_findings(evaluator, value).findings
        privileged = [f for f in found if "pss-baseline-privileged" in f]
        # Judged exactly where the kind is a workload of its group, with its template in place (and
        # a built-in kind's name without apiVersion: a fragment is judged by its kind alone).
        fragment = name.endswith(":no-api-version") and value["kind"] in WORKLOAD_KINDS
        expected = (name.count(":") == 1 and name != "custom:core-service") or fragment
        assert bool(privileged) is expected, (name, found)


FUZZ_DOCUMENTS = 150  # generated and as many mutated, per data set: ~2 s against OPA


def _bench_policies_module() -> Any:
    spec = importlib.util.spec_from_file_location("trustgate_bench_policies", ROOT / "bench" / "policies.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def fuzz_inputs(module: Any, seed: int) -> list[tuple[str, Any]]:
    """Workloads made by bench/policies.py's generator (odd security contexts, probes, ports,
    AppArmor annotations, wrong types), and as many with random subtrees replaced by junk or
    deleted; only those OPA can be given (JSON: no tuple keys, no NaN)."""
    rng = random.Random(seed)
    bases = list(module.all_named_docs().values())
    out: list[tuple[str, Any]] = []
    for i in range(FUZZ_DOCUMENTS):
        out.append((f"generated#{i}", module.generated_doc(rng)))
        out.append((f"mutated#{i}", module.mutated_doc(rng, rng.choice([*bases, module.generated_doc(rng)]))))
    return [(name, doc) for name, doc in out if _json_only(doc)]


def _json_only(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("data_set", ["", "registries/", "hub-registries/", "object-registries/"])
def test_bundled_policies_match_opa_on_generated_and_mutated_workloads(data_set: str) -> None:
    """The bundled sets, as `check` gates them, on seeded random workloads and their mutations."""
    module = _bench_policies_module()
    data = module.DATA_SETS[data_set]
    inputs = fuzz_inputs(module, seed=20261207 + len(data_set))
    assert len(inputs) >= FUZZ_DOCUMENTS  # most survive the JSON filter
    modules = rego.load_modules(ROOT / "policies")
    policy = rego.RegoPolicy(modules, data=data)
    policy.gate_on_kinds(WORKLOAD_GATED, WORKLOAD_KINDS)
    engine = opa_engine(modules, v0=False, data=data)
    problems = compare("policies+fuzz", policy, engine, inputs, data=data)
    assert not problems, "\n".join(problems[:5])
    # Not a comparison of empty results: the generator makes findings of most rules.
    evaluator = policy.evaluator()
    rules = {json.loads(f)[2] for _, doc in inputs for f in trustgate_findings(evaluator, doc).findings}
    assert len(rules) >= 15, sorted(rules)
