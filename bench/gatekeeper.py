#!/usr/bin/env python3
"""Benchmark Gatekeeper constraints: the whole `general` library over the CI gate's corpus.

This script owns one measurement: every ConstraintTemplate and sample
Constraint of Gatekeeper's `general` library (the conformance copy under
tests/) against the seeded corpus `bench/run.py` generates (2,000 documents by
default). It prints:

- compile time: reading the templates and constraints, validating parameters
  and compiling them into one regorus engine;
- `trustgate check` end to end (a child process: start-up, YAML parsing,
  matching, evaluation, report), documents/second, best of N;
- in-process evaluation only (documents already parsed, one core), with the
  constraints as the library ships them (most match Pods only) and with every
  constraint matching every document (the worst case: all templates active
  on every document).

It leaves out peers: gator needs a Go toolchain and OPA cannot be installed
here. The target is >= 500 documents/second with all templates active.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import run as corpus_bench  # noqa: E402  (bench/run.py: the corpus generator)

from trustgate.config import Config, GatekeeperSettings, KubernetesSettings  # noqa: E402
from trustgate.gate import Gate  # noqa: E402
from trustgate.manifests import loader  # noqa: E402
from trustgate.policy import gatekeeper as gk  # noqa: E402

LIBRARY = REPO / "tests" / "conformance" / "gatekeeper-library" / "general"
TARGET_DOCS_PER_S = 500.0


def best_and_median(samples: list[float]) -> tuple[float, float]:
    return min(samples), statistics.median(samples)


def bundle_library(out: Path) -> Path:
    """Every template, and every sample constraint under a unique name (samples reuse names)."""
    out.mkdir()
    for template_dir in sorted(p for p in LIBRARY.iterdir() if (p / "template.yaml").is_file()):
        (out / f"{template_dir.name}-template.yaml").write_bytes(
            (template_dir / "template.yaml").read_bytes()
        )
        for constraint in sorted(template_dir.glob("samples/*/constraint.yaml")):
            text = constraint.read_text()
            sample = constraint.parent.name
            renamed, count = re.subn(r"(?m)^(metadata:\n  name: )(\S+)", rf"\g<1>{sample}", text, count=1)
            if count != 1:
                raise SystemExit(f"cannot rename the constraint in {constraint}")
            (out / f"{template_dir.name}-{sample}.yaml").write_text(renamed)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=corpus_bench.DEFAULT_SEED)
    parser.add_argument("--trustgate", type=Path, default=REPO / ".venv" / "bin" / "trustgate")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="trustgate-gk-bench-") as tmp:
        root = Path(tmp) / "corpus"
        root.mkdir()
        corpus = corpus_bench.generate_corpus(root, args.docs, args.seed)
        print(f"corpus: {corpus.documents} documents in {corpus.files} files, {corpus.bytes / 1024:.0f} KiB")

        library_dir = bundle_library(Path(tmp) / "library")

        # 1. Compile time of the template set.
        compile_times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            library = gk.load_library([library_dir])
            constraint_set = gk.ConstraintSet(library.templates.values(), library.constraints)
            constraint_set.compile(gk.embedded_engine())
            compile_times.append(time.perf_counter() - started)
        templates = len(library.templates)
        constraints = len(constraint_set.constraints)
        unsupported = len(library.unsupported)
        print(f"library: {templates} templates, {constraints} constraints ({unsupported} unsupported)")

        # 2. End to end, as CI runs it.
        command = [
            str(args.trustgate), "check", str(root), "--no-builtin", "--no-schemas",
            "--gatekeeper", str(library_dir), "--format", "json", "--output", "/dev/null",
        ]  # fmt: skip
        cli_times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            cli_times.append(time.perf_counter() - started)
            if done.returncode not in (0, 1):
                print(f"trustgate check failed ({done.returncode}): {done.stderr}", file=sys.stderr)
                return 1

        # 3. In-process evaluation of parsed documents, one core.
        documents = []
        for unit in loader.plan([str(root)]):
            docs, _ = loader.read_unit(unit, Config().limits)
            documents.extend(docs)
        config = Config(
            policies=(),
            kubernetes=KubernetesSettings(schemas=False),
            gatekeeper=GatekeeperSettings(paths=(library_dir,)),
        )
        gate = Gate(config=config)
        shipped = []
        for _ in range(args.runs):
            started = time.perf_counter()
            decision = gate.evaluate(documents)
            shipped.append(time.perf_counter() - started)
        findings = sum(len(r.findings) for r in decision.results)

        everywhere = [dataclasses.replace(c, match=gk.Match()) for c in library.constraints]
        all_set = gk.ConstraintSet(library.templates.values(), everywhere)
        evaluator = all_set.compile(gk.embedded_engine())
        evaluator.set_inventory([d.obj for d in documents])
        all_active = []
        violations = 0
        for _ in range(args.runs):
            started = time.perf_counter()
            violations = 0
            for doc in documents:
                review = gk.review_of(doc.obj)
                matched, _ = evaluator.matching(review)
                try:
                    violations += len(evaluator.review(review, matched))
                except gk.PolicyError:
                    violations += 0  # a template that fails on a kind it was not written for
            all_active.append(time.perf_counter() - started)

    n = len(documents)
    rows = [
        ("compile the template set", best_and_median(compile_times), None),
        ("trustgate check, end to end (2 jobs)", best_and_median(cli_times), n),
        ("evaluate, constraints as shipped (1 core)", best_and_median(shipped), n),
        ("evaluate, every constraint on every document (1 core)", best_and_median(all_active), n),
    ]
    print()
    print("| what | best s | median s | docs/s (best) |")
    print("| --- | --- | --- | --- |")
    for label, (best, median), docs in rows:
        rate = f"{docs / best:,.0f}" if docs else "-"
        print(f"| {label} | {best:.3f} | {median:.3f} | {rate} |")
    print()
    print(f"findings with constraints as shipped: {findings}; violations with all active: {violations}")
    worst = n / min(all_active)
    verdict = "met" if worst >= TARGET_DOCS_PER_S else "MISSED"
    print(f"target >= {TARGET_DOCS_PER_S:.0f} docs/s with all templates active: {verdict} ({worst:,.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
