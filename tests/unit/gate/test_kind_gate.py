"""The bundled sets are not evaluated on documents that are not workloads.

`compile_rego` tells the compiled policy that the packages in `WORKLOAD_GATED` find
nothing unless `input.kind` is one of `WORKLOAD_KINDS`, or a custom workload kind in one of
its groups (`data.trustgate.config.workloads`); a Service or a ConfigMap is then
evaluated against the other packages only (the user's), or not at all. That is sound
only while (1) every finding rule of those packages starts from the library's
`workload`, (2) `workload` is defined for no kind outside `WORKLOAD_KINDS` but through
the custom workloads' table, and (3) no module of the user's adds to those packages.
These tests check each, by the policies' text and by evaluating them with and without
the gate.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import regorus
import yaml

from trustgate import kinds as kind_table
from trustgate.config import BUILTIN_SETS, Config, PolicySource, builtin_policy_dir
from trustgate.gate import Gate
from trustgate.gate.sources import WORKLOAD_GATED, WORKLOAD_KINDS, compile_rego
from trustgate.model import Mode, Severity
from trustgate.policy import rego

LIB = builtin_policy_dir() / "lib" / "k8s.rego"


def _bundled_files() -> list[Path]:
    return [
        path
        for name in BUILTIN_SETS
        for path in sorted((builtin_policy_dir() / name).glob("*.rego"))
        if not path.name.endswith("_test.rego")
    ]


def _ast(path: Path) -> tuple[str, dict[str, Any]]:
    engine = regorus.Engine()
    text = path.read_text("utf-8")
    if path != LIB:
        engine.add_policy(str(LIB), LIB.read_text("utf-8"))
    engine.add_policy(str(path), text)
    (module,) = [m for m in json.loads(engine.get_ast_as_json()) if m["source"]["file"] == str(path)]
    return text, module["ast"]


def _statement(text: str, statement: dict[str, Any]) -> str:
    """The source line a statement starts on, from where it starts, without a comment."""
    start = statement["span"]["start"]
    data = text.encode("utf-8")
    end = data.find(b"\n", start)
    return data[start : end if end >= 0 else len(data)].decode("utf-8").split("#")[0].strip()


def _rule_name(rule: dict[str, Any]) -> str:
    (head,) = rule["Spec"]["head"].values()
    return str(next(iter(head["refr"].values()))["value"])


def _packages() -> dict[str, Path]:
    """Package -> the bundled file that declares it."""
    packages = {}
    for path in _bundled_files():
        found = re.search(r"^package (\S+)", path.read_text("utf-8"), re.M)
        assert found is not None
        packages[found.group(1)] = path
    return packages


def test_the_gated_packages_are_the_bundled_sets() -> None:
    assert set(_packages()) == WORKLOAD_GATED


@pytest.mark.parametrize("package", sorted(WORKLOAD_GATED))
def test_every_finding_rule_of_a_gated_package_starts_from_workload(package: str) -> None:
    text, ast = _ast(_packages()[package])
    finding_rules = [r for r in ast["rules"] if "Spec" in r and rego.is_finding_rule(_rule_name(r))]
    assert finding_rules, "a gated package with no finding rule"
    assert not [r for r in ast["rules"] if "Default" in r], "a default finding value would hold for any kind"
    for rule in finding_rules:
        bodies = rule["Spec"]["bodies"]
        assert len(bodies) == 1, f"{_rule_name(rule)}: one body, no else"
        first = bodies[0]["query"]["stmts"][0]
        assert "Expr" in first["literal"], f"{_rule_name(rule)} starts with {first['literal'].keys()}"
        assert not first.get("with_mods"), "a `with` could change what workload sees"
        assert _statement(text, first) == "data.trustgate.lib.k8s.workload"


def test_workload_is_defined_only_for_the_gating_kinds() -> None:
    """Every body of `workload` (and each `else`) first compares input.kind with kinds of the set."""
    text, ast = _ast(LIB)
    rules = [r for r in ast["rules"] if "Spec" in r and _rule_name(r) == "workload"]
    assert rules
    kinds: set[str] = set()
    custom = []
    for rule in rules:
        for i, body in enumerate(rule["Spec"]["bodies"]):
            first = _statement(text, body["query"]["stmts"][0])
            if first == "declared := data.trustgate.config.workloads[input.kind]":
                custom.append((i, len(rule["Spec"]["bodies"])))  # the kinds of the table: gated by group
                continue
            one = re.fullmatch(r'input\.kind == "(\w+)"', first)
            many = re.fullmatch(r"input\.kind in \{(.*)\}", first)
            assert one or many, f"workload's body starts with {first!r}"
            kinds.update([one.group(1)] if one else re.findall(r'"(\w+)"', many.group(1) if many else ""))
    assert kinds == WORKLOAD_KINDS
    (where,) = custom
    assert where[0] == where[1] - 1, "the custom workloads' body is the last of the else chain"


def test_builtin_workloads_table_agrees_with_the_library() -> None:
    evaluator = rego.RegoPolicy(rego.load_modules(LIB.parent)).evaluator()
    evaluator._set_input({})
    table = json.loads(evaluator._engine.eval_rule_as_json("data.trustgate.lib.k8s.workload_kinds"))
    assert {k: frozenset(v["groups"]) for k, v in table.items()} == dict(kind_table.BUILTIN_WORKLOADS)


WORKLOADS = kind_table.Workloads.of(())  # the known custom workloads
WORKLOADS_DATA = {"trustgate": {"config": {"workloads": WORKLOADS.rego_data()}}}


def _policy(*, gated: bool, extra: tuple[rego.Module, ...] = ()) -> rego.RegoPolicy:
    modules = [*rego.load_modules(LIB.parent), *(m for p in _bundled_files() for m in rego.load_modules(p))]
    policy = rego.RegoPolicy([*modules, *extra], data=WORKLOADS_DATA)
    if gated:
        policy.gate_on_kinds(WORKLOAD_GATED, WORKLOAD_KINDS, WORKLOADS.gating())
    return policy


def _workloads() -> list[dict[str, Any]]:
    """Documents that make every bundled package find something, as workloads."""
    container = {
        "name": "app",
        "image": "nginx",
        "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
        "ports": [{"containerPort": 80, "hostPort": 80}],
    }
    spec = {
        "hostNetwork": True,
        "containers": [container],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    }
    template = {"metadata": {"labels": {"a": "b"}}, "spec": spec}
    return [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"template": template},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "spec": {"jobTemplate": {"spec": {"template": template}}},
        },
        {"apiVersion": "v1", "kind": "PodTemplate", "template": template},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "spec": {"template": template}},
        {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "spec": {"template": template}},
        {"apiVersion": "apps.kruise.io/v1beta1", "kind": "StatefulSet", "spec": {"template": template}},
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledJob",
            "spec": {"jobTargetRef": {"template": template}},
        },
    ]


def _other_groups(doc: dict[str, Any]) -> list[Any]:
    """apiVersions under which `doc`'s kind is no workload (another group, or none)."""
    if doc["kind"] in WORKLOAD_KINDS:
        return []
    return ["v1", "example.com/v1", "argoproj.io", "a/b/c", None, 1, "serving.knative.dev.x/v1"]


def _other_kinds(rng: random.Random) -> list[Any]:
    near = (
        [k.lower() for k in WORKLOAD_KINDS]
        + [k + " " for k in WORKLOAD_KINDS]
        + [" " + k for k in WORKLOAD_KINDS]
    )
    words = ["Service", "ConfigMap", "Ingress", "Secret", "Namespace", "", "Deploymen", "Podtemplate"]
    odd: list[Any] = [None, 1, True, ["Pod"], {"Pod": 1}]
    made = ["".join(rng.choice("PodeJbCrnSts") for _ in range(rng.randint(1, 12))) for _ in range(40)]
    return [*near, *words, *odd, *(k for k in made if k not in WORKLOAD_KINDS)]


def test_other_kinds_find_nothing_in_the_gated_packages_when_evaluated() -> None:
    """The property the gate relies on, by evaluation: a workload's body under another kind (or
    with no kind) makes none of the gated packages find anything, while as a workload it does."""
    evaluator = _policy(gated=False).evaluator()
    rng = random.Random(20261207)
    for doc in _workloads():
        found = {f.package for f in evaluator.evaluate(doc)}
        assert found == WORKLOAD_GATED, doc["kind"]  # each package finds something here
        group = doc["apiVersion"].rpartition("/")[0]
        for kind in _other_kinds(rng):
            if isinstance(kind, str) and (group, kind) in WORKLOADS.declared:
                continue  # a workload of that group too (Knative's Service)
            other = copy.deepcopy(doc)
            other["kind"] = kind
            assert [f for f in evaluator.evaluate(other) if f.package in WORKLOAD_GATED] == [], kind
        del other["kind"]
        assert evaluator.evaluate(other) == []
        for api_version in _other_groups(doc):
            other = {**doc, "apiVersion": api_version}
            assert [f for f in evaluator.evaluate(other) if f.package in WORKLOAD_GATED] == [], api_version


def test_gated_and_ungated_evaluations_agree() -> None:
    user = rego.Module(
        "user.rego",
        'package main\nimport rego.v1\ndeny contains "a Service" if input.kind == "Service"\n'
        'warn contains "a Pod" if input.kind == "Pod"\n',
    )
    plain = _policy(gated=False, extra=(user,)).evaluator()
    gated = _policy(gated=True, extra=(user,)).evaluator()
    rng = random.Random(7)
    for doc in _workloads():
        for kind in [doc["kind"], "Service", *_other_kinds(rng)[:20]]:
            other = {**doc, "kind": kind}
            assert gated.evaluate(other) == plain.evaluate(other), kind
        for api_version in _other_groups(doc):
            other = {**doc, "apiVersion": api_version}
            assert gated.evaluate(other) == plain.evaluate(other), api_version
    assert [f.message for f in gated.evaluate({"kind": "Service"})] == ["a Service"]


def _config(tmp_path: Path, policy: str) -> Config:
    path = tmp_path / "mine.rego"
    path.write_text(policy, "utf-8")
    default = Config.default()
    return dataclasses.replace(default, policies=(*default.policies, PolicySource(path=path)))


SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "LoadBalancer"}}


def test_a_user_module_adding_to_a_bundled_package_turns_the_gate_off(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "package trustgate.pss.baseline\nimport rego.v1\n"
        'deny contains "no load balancers" if input.spec.type == "LoadBalancer"\n',
    )
    (group,) = compile_rego(config.policies, rego.PolicyData(), mode=Mode.ENFORCE)
    assert group.policy.kind_gated == frozenset()
    findings = group.policy.evaluator().evaluate(SERVICE)
    assert [f.message for f in findings] == ["no load balancers"]


def test_a_user_module_redefining_the_library_turns_the_gate_off(tmp_path: Path) -> None:
    config = _config(tmp_path, "package trustgate.lib.k8s.extra\nimport rego.v1\nx := 1\n")
    (group,) = compile_rego(config.policies, rego.PolicyData(), mode=Mode.ENFORCE)
    assert group.policy.kind_gated == frozenset()


def test_the_bundled_sets_are_gated_and_user_packages_still_judge_every_kind(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "package main\nimport rego.v1\n"
        'deny contains "no load balancers" if input.spec.type == "LoadBalancer"\n',
    )
    (group,) = compile_rego(config.policies, rego.PolicyData(), mode=Mode.ENFORCE)
    assert group.policy.kind_gated == WORKLOAD_GATED
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(yaml.safe_dump(SERVICE), "utf-8")
    with Gate(config=config) as gate:
        (result,) = gate.check([str(manifest)]).results
    assert [(f.message, f.severity) for f in result.findings if f.source == "rego"] == [
        ("no load balancers", Severity.ERROR)
    ]
