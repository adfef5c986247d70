#!/usr/bin/env python3
"""Benchmark CEL at the gate: one ValidatingAdmissionPolicy per object, and `check` with 10 of them.

This script owns the two figures issue 17 names, and prints each beside its
target and a reference:

- one ValidatingAdmissionPolicy with 5 validations (the Deployment rules of
  a careful team: replicas, labels, limits, probes, no `:latest`), compiled
  once, evaluated against a parsed Deployment: microseconds per object for
  `PolicySet.review` (matching, request, activation and the 5 expressions),
  beside regorus (one reused Engine, as trustgate runs Rego) evaluating an
  equivalent Rego policy on the same object. Target: <= 50 us per object.
- `trustgate check` end to end on the seeded corpus of `bench/run.py`
  (bundled policies and schemas, as CI runs it), without and with 10 VAPs
  (`--admission-policy`): documents/second, best of N. Target: >= 1,500.
  Beside it, the 10 VAPs alone in process (the Gate over parsed documents,
  no schemas or bundled policies): what the VAPs add to a check.

It leaves out the API server (the only one obtainable here is 1.20, which has
no ValidatingAdmissionPolicy) and other CEL engines (ADR 10 measured them).

    .venv/bin/python bench/cel.py                # 2,400 documents, best of 3
    .venv/bin/python bench/cel.py -n 20000 --docs 5000 --runs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import regorus  # noqa: E402
import run as corpus_bench  # noqa: E402  (bench/run.py: the corpus generator)
import yaml  # noqa: E402

from trustgate.policy import vap  # noqa: E402

TARGET_US_PER_OBJECT = 50.0
TARGET_DOCS_PER_S = 1_500.0

# The five validations, in CEL and in Rego, for the same Deployment.
VALIDATIONS = [
    ("object.spec.replicas >= 2", "replicas must be at least 2"),
    ("has(object.metadata.labels) && 'team' in object.metadata.labels", "a team label is required"),
    (
        "object.spec.template.spec.containers.all(c, has(c.resources) && has(c.resources.limits) "
        "&& 'memory' in c.resources.limits)",
        "every container needs a memory limit",
    ),
    (
        "object.spec.template.spec.containers.all(c, has(c.readinessProbe))",
        "every container needs a readiness probe",
    ),
    (
        "!object.spec.template.spec.containers.exists(c, c.image.endsWith(':latest'))",
        "no image may use the latest tag",
    ),
]

REGO = """package bench.deployment

import rego.v1

deny contains "replicas must be at least 2" if input.spec.replicas < 2

deny contains "a team label is required" if not input.metadata.labels.team

deny contains "every container needs a memory limit" if {
    some c in input.spec.template.spec.containers
    not c.resources.limits.memory
}

deny contains "every container needs a readiness probe" if {
    some c in input.spec.template.spec.containers
    not c.readinessProbe
}

deny contains "no image may use the latest tag" if {
    some c in input.spec.template.spec.containers
    endswith(c.image, ":latest")
}
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-api
  namespace: shop
  labels: {app.kubernetes.io/name: shop-api, team: payments}
spec:
  replicas: 3
  selector:
    matchLabels: {app.kubernetes.io/name: shop-api}
  template:
    metadata:
      labels: {app.kubernetes.io/name: shop-api}
    spec:
      containers:
        - name: api
          image: registry.example.com/shop/api:1.4.2
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: 500m, memory: 256Mi}
          readinessProbe: {httpGet: {path: /ready, port: 8080}}
          livenessProbe: {httpGet: {path: /live, port: 8080}}
        - name: proxy
          image: registry.example.com/shop/proxy:2.0.0
          resources:
            limits: {memory: 64Mi}
          readinessProbe: {tcpSocket: {port: 9000}}
"""


def policy_documents(name: str, validations: list[tuple[str, str]], kinds: list[str]) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy over apps/v1 `kinds` and its Deny binding."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [vap.resource_of(k) for k in kinds],
                    }
                ]
            },
            "validations": [{"expression": e, "message": m} for e, m in validations],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": f"{name}-binding"},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return [policy, binding]


def ten_policies(out: Path) -> Path:
    """10 VAPs for the corpus's workloads: the five rules, each alone and in pairs, on Deployments
    and StatefulSets, so every workload meets every policy (a worst case for `check`)."""
    out.mkdir()
    sets = [[v] for v in VALIDATIONS] + [VALIDATIONS[i : i + 2] for i in range(4)] + [VALIDATIONS]
    for i, validations in enumerate(sets):
        docs = policy_documents(f"bench-{i}", validations, ["Deployment", "StatefulSet"])
        (out / f"policy-{i}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return out


def per_object(samples: int, rounds: int) -> tuple[float, float, float, int, int]:
    """Best-of-rounds mean us per object: VAP review, the 5 expressions alone, Rego; findings."""
    obj = yaml.safe_load(DEPLOYMENT)
    bad = yaml.safe_load(DEPLOYMENT)
    bad["spec"]["replicas"] = 1
    bad["spec"]["template"]["spec"]["containers"][1]["image"] = "proxy:latest"
    docs = policy_documents("bench", VALIDATIONS, ["Deployment"])
    policy = vap.parse_policy(docs[0], file="bench")
    policies = vap.PolicySet(policies={"bench": policy}, bindings=[vap.parse_binding(docs[1], file="bench")])
    engine = regorus.Engine()
    engine.add_policy("bench.rego", REGO)

    def rego(doc: dict[str, Any]) -> list[str]:
        engine.set_input_json(json.dumps(doc))
        return list(json.loads(engine.eval_rule_as_json("data.bench.deployment.deny")))

    # Both must agree before their times mean anything.
    for doc in (obj, bad):
        cel_messages = sorted(o.message for o in policies.review(doc))
        rego_messages = sorted(rego(doc))
        if cel_messages != rego_messages:
            raise SystemExit(f"CEL and Rego disagree: {cel_messages} vs {rego_messages}")
    cel_findings, rego_findings = len(policies.review(bad)), len(rego(bad))

    def timed(fn: Any) -> float:
        best = float("inf")
        for _ in range(rounds):
            for _ in range(min(samples, 500)):
                fn()
            started = time.perf_counter()
            for _ in range(samples):
                fn()
            best = min(best, (time.perf_counter() - started) / samples)
        return best * 1e6

    review = timed(lambda: policies.review(obj))
    code = timed(lambda: vap.run_code(policy.code, {"object": obj, "oldObject": None, "request": {}}))
    rego_us = timed(lambda: rego(obj))
    return review, code, rego_us, cel_findings, rego_findings


def check_rate(command: list[str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - started)
        # 1 is also Python's exit code for a traceback: only a run that printed its summary counts.
        if done.returncode not in (0, 1) or " documents: " not in done.stderr:
            raise SystemExit(f"trustgate check failed ({done.returncode}): {done.stderr[-2000:]}")
    return min(times), statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--samples", type=int, default=5_000, help="evaluations per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docs", type=int, default=2_400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=corpus_bench.DEFAULT_SEED)
    parser.add_argument("--trustgate", type=Path, default=REPO / ".venv" / "bin" / "trustgate")
    args = parser.parse_args()

    review, code, rego_us, cel_findings, rego_findings = per_object(args.samples, args.rounds)
    print("one ValidatingAdmissionPolicy with 5 validations, one Deployment (2 containers), 1 core")
    print()
    print("| what | us per object (best) | target |")
    print("| --- | --- | --- |")
    verdict = "met" if review <= TARGET_US_PER_OBJECT else "MISSED"
    print(f"| VAP: PolicySet.review (match, request, 5 expressions) | {review:.1f} | <= 50 ({verdict}) |")
    print(f"| VAP: the 5 expressions alone (run_code) | {code:.1f} | |")
    print(f"| Rego, same 5 rules (regorus, one Engine reused) | {rego_us:.1f} | (peer) |")
    print(f"findings on a bad Deployment: CEL {cel_findings}, Rego {rego_findings} (they agree)")

    with tempfile.TemporaryDirectory(prefix="trustgate-cel-bench-") as tmp:
        root = Path(tmp) / "corpus"
        root.mkdir()
        corpus = corpus_bench.generate_corpus(root, args.docs, args.seed)
        policies = ten_policies(Path(tmp) / "vaps")
        base = [str(args.trustgate), "check", str(root), "--format", "json", "--output", "/dev/null"]
        without = check_rate(base, args.runs)
        with_vaps = check_rate([*base, "--admission-policy", str(policies)], args.runs)
        in_process = vap_share(root, policies, args.runs)
    n = corpus.documents
    print()
    print(f"trustgate check, end to end, bundled policies and schemas: {n} documents, best of {args.runs}")
    print()
    print("| what | best s | median s | docs/s (best) | target |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| without VAPs | {without[0]:.2f} | {without[1]:.2f} | {n / without[0]:,.0f} | |")
    rate = n / with_vaps[0]
    verdict = "met" if rate >= TARGET_DOCS_PER_S else "MISSED"
    print(
        f"| with 10 VAPs | {with_vaps[0]:.2f} | {with_vaps[1]:.2f} | {rate:,.0f} | "
        f">= {TARGET_DOCS_PER_S:,.0f} ({verdict}) |"
    )
    print(
        f"| the 10 VAPs alone, in process (parsed documents, 1 core) | {in_process:.3f} | | "
        f"{n / in_process:,.0f} | |"
    )
    return 0


def vap_share(root: Path, policies: Path, runs: int) -> float:
    """Best seconds for the Gate to evaluate the 10 VAPs alone on the parsed corpus."""
    from trustgate.config import Config, KubernetesSettings
    from trustgate.gate import Gate
    from trustgate.manifests import loader

    documents = []
    for unit in loader.plan([str(root)]):
        docs, _ = loader.read_unit(unit, Config().limits)
        documents.extend(docs)
    config = Config(policies=(), kubernetes=KubernetesSettings(schemas=False), admission_policies=(policies,))
    gate = Gate(config=config)
    gate.evaluate(documents)  # warm: compile, index the change set
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        gate.evaluate(documents)
        best = min(best, time.perf_counter() - started)
    return best


if __name__ == "__main__":
    sys.exit(main())
