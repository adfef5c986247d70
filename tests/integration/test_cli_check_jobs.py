"""`trustgate check --jobs N` writes the report of `--jobs 1`, byte for byte, in every format."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.policies import LATEST_TAG_POLICY

from trustgate.cli.main import main
from trustgate.gate import parallel
from trustgate.report import FORMATS

Write = Callable[[str, str], Path]

POLICY = LATEST_TAG_POLICY

POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: shop{labels}}}
spec:
  containers:
    - name: app
      image: {image}
      securityContext: {{privileged: {privileged}}}
"""


@pytest.fixture
def corpus(write: Write) -> Path:
    """Passing, failing, waived, unparseable and non-Kubernetes inputs, some files with several documents."""
    for i in range(40):
        image = "nginx:latest" if i % 3 == 0 else "registry.example.com/shop/app:1.4.2"
        labels = ", labels: {team: a}" if i % 2 else ""
        name = f"legacy-{i}" if i % 5 == 0 else f"pod-{i}"
        doc = POD.format(name=name, labels=labels, image=image, privileged="true" if i % 7 == 0 else "false")
        if i % 4 == 0:  # several documents in one file
            doc += "---\n" + POD.format(name=f"{name}-b", labels="", image="nginx:1.27", privileged="false")
        write(f"apps/a{i // 10}/pod-{i:02}.yaml", doc)
    write("apps/broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x\n")
    write("apps/typo.yaml", "apiVersion: v1\nkind: Podd\nmetadata: {name: typo}\n")
    write("apps/workflow.yaml", "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n")
    write("apps/empty.yaml", "")
    return write("policy/main.rego", POLICY).parent.parent


def config(write: Write, root: Path) -> Path:
    return write(
        "trustgate.yaml",
        f"""\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        manifests:
          policies:
            - builtin: pss-baseline
            - builtin: supply-chain
            - path: {root / "policy"}
        exceptions:
          - name: legacy-pods
            rules: [no-latest]
            names: ["legacy-*"]
            owner: app-team@example.com
            reason: migrating off latest this sprint
            expires: "2999-01-01"
          - name: old-waiver
            rules: [team-label]
            owner: app-team@example.com
            reason: long gone
            expires: "2001-01-01"
        """,
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
@pytest.mark.parametrize("fmt", FORMATS)
def test_jobs_2_writes_the_report_of_jobs_1(
    fmt: str, corpus: Path, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)  # a small corpus, in parallel all the same
    forked: list[int] = []
    run_parallel = parallel._run_parallel

    def counted(*args: Any) -> Any:
        forked.append(1)
        return run_parallel(*args)

    monkeypatch.setattr(parallel, "_run_parallel", counted)
    conf = config(write, corpus)
    outputs = []
    for jobs in ("1", "2", "3"):
        result = CliRunner().invoke(
            main,
            ["check", "-c", str(conf), str(corpus / "apps"), "-o", fmt, "--no-color", "--jobs", jobs],
            catch_exceptions=False,
        )
        # JUnit's testsuites `time` is the decision's duration: the one thing that may differ
        out = re.sub(r'(<testsuites [^>]*)time="[0-9.]+"', r"\1", result.stdout)
        outputs.append((result.exit_code, out, result.stderr))
    assert forked == [1, 1]  # --jobs 2 and 3 did fork
    code, out, _ = outputs[0]
    assert code == 3  # the broken file could not be evaluated
    if fmt == "json":  # the corpus holds what it should: failures, waivers, expired waivers, errors
        for text in ("no-latest", "legacy-pods", "old-waiver", "input/", '"status": "failed"', "Podd"):
            assert text in out
    assert outputs[1] == outputs[0]
    assert outputs[2] == outputs[0]


def test_no_cache_neither_reads_nor_writes_the_compile_cache(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trustgate.policy import _compile_cache

    monkeypatch.setattr(_compile_cache, "_ACTIVE", [])  # this test's choices end with it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    pod = str(write("pod.yaml", POD.format(name="p", labels="", image="nginx:1.27", privileged="false")))
    compiled = tmp_path / "cache" / "trustgate" / "compiled"
    reports = []
    for flags in (["--no-cache"], [], [], ["--no-cache"]):
        result = CliRunner().invoke(main, ["check", pod, "-o", "json", *flags], catch_exceptions=False)
        reports.append((result.exit_code, result.stdout))
        if flags == ["--no-cache"] and not reports[1:]:
            assert not compiled.exists()  # nothing written
            assert _compile_cache.active() is None
    assert any(compiled.glob("*.entry"))  # the runs without --no-cache filled the cache
    assert reports[1:] == reports[:1] * 3  # cold, warm and uncached runs report the same
