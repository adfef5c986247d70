from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.crds import widget_crd

from trustgate.config import Config, ExceptionRule, KubernetesSettings, PolicySource
from trustgate.errors import ConfigError, PolicyError
from trustgate.gate import Gate
from trustgate.model import ExitCode, Mode, Severity, Status

Write = Callable[[str, str], Path]
TODAY = dt.date(2026, 6, 1)

POLICY = """\
package main
import rego.v1

deny contains {"msg": sprintf("container %q is privileged", [c.name]), "rule": "no-privileged",
               "fix": "drop privileged", "image": c.image,
               "path": ["spec", "template", "spec", "containers", i, "securityContext", "privileged"]} if {
  some i, c in input.spec.template.spec.containers
  c.securityContext.privileged
}

warn contains {"msg": "single replica", "rule": "replicas", "path": ["spec", "replicas"]} if {
  input.spec.replicas == 1
}
"""

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: admin
  namespace: ops
spec:
  replicas: 1
  selector: {matchLabels: {app: admin}}
  template:
    metadata: {labels: {app: admin}}
    spec:
      containers:
        - name: tool
          image: registry.example.com/ops/tool:1.0
          securityContext:
            privileged: true
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: ops}
data: {a: b}
"""


@pytest.fixture
def policy_dir(write: Write) -> Path:
    return write("policy/main.rego", POLICY).parent


def make_gate(policy_dir: Path, **changes: object) -> Gate:
    config = Config(policies=(PolicySource(path=policy_dir),))
    return Gate(config=dataclasses.replace(config, **changes), today=TODAY)  # type: ignore[arg-type]


def test_findings_carry_rule_fix_path_and_line(policy_dir: Path, write: Write) -> None:
    path = write("m.yaml", MANIFESTS)
    decision = make_gate(policy_dir).check([str(path)])
    deploy, cm = decision.results
    assert (deploy.kind, deploy.namespace, deploy.name, deploy.status) == (
        "Deployment",
        "ops",
        "admin",
        Status.FAILED,
    )
    priv, replicas = deploy.findings
    assert (priv.rule, priv.severity, priv.line, priv.fix) == (
        "no-privileged",
        Severity.ERROR,
        16,
        "drop privileged",
    )
    assert priv.metadata["image"] == "registry.example.com/ops/tool:1.0"
    assert (replicas.rule, replicas.severity, replicas.line) == ("replicas", Severity.WARNING, 7)
    assert cm.status == Status.PASSED and cm.source.line == 18
    assert decision.summary.to_json() == {
        "documents": 2,
        "passed": 1,
        "failed": 1,
        "warnings": 1,
        "errors": 0,
    }
    assert decision.exit_code() == ExitCode.POLICY_FAILURE
    assert decision.policy_revision.startswith("sha256:")


@pytest.mark.parametrize(
    ("mode", "deny_severity", "warn_severity", "exit_code"),
    [
        (Mode.ENFORCE, Severity.ERROR, Severity.WARNING, ExitCode.POLICY_FAILURE),
        (Mode.WARN, Severity.WARNING, Severity.WARNING, ExitCode.PASS),
        (Mode.AUDIT, Severity.INFO, Severity.INFO, ExitCode.PASS),
    ],
)
def test_modes(
    policy_dir: Path,
    write: Write,
    mode: Mode,
    deny_severity: Severity,
    warn_severity: Severity,
    exit_code: ExitCode,
) -> None:
    decision = make_gate(policy_dir, mode=mode).check([str(write("m.yaml", MANIFESTS))])
    priv, replicas = sorted(decision.results[0].findings, key=lambda f: f.rule)
    assert priv.severity == deny_severity and priv.rule_severity == Severity.ERROR
    assert replicas.severity == warn_severity
    assert decision.exit_code() == exit_code


def test_fail_on_warning(policy_dir: Path, write: Write) -> None:
    decision = make_gate(policy_dir, mode=Mode.WARN).check([str(write("m.yaml", MANIFESTS))])
    assert decision.exit_code(fail_on_warning=True) == ExitCode.POLICY_FAILURE


def test_source_mode_overrides_the_top_level_mode(policy_dir: Path, write: Write) -> None:
    config = Config(policies=(PolicySource(path=policy_dir, mode=Mode.WARN),))
    decision = Gate(config=config, today=TODAY).check([str(write("m.yaml", MANIFESTS))])
    assert decision.results[0].findings[0].severity == Severity.WARNING
    assert decision.exit_code() == ExitCode.PASS


TRIAL_POLICY = """\
package main
import rego.v1

deny contains {"msg": "trial: a ConfigMap", "rule": "trial"} if input.kind == "ConfigMap"
"""


@pytest.mark.parametrize(
    ("top", "trial", "enforced"),
    [
        (Mode.ENFORCE, Mode.WARN, None),
        (Mode.ENFORCE, Mode.AUDIT, None),
        (Mode.WARN, Mode.WARN, Mode.ENFORCE),
        (Mode.WARN, None, Mode.ENFORCE),
    ],
)
def test_sources_of_different_modes_cannot_share_a_package(
    policy_dir: Path, write: Write, top: Mode, trial: Mode | None, enforced: Mode | None
) -> None:
    """Rego merges a package: the first source's mode used to decide every rule of it, so an
    enforced rule listed after a trial source of the same package only warned."""
    trial_dir = write("trial/new.rego", TRIAL_POLICY).parent
    config = Config(
        mode=top,
        policies=(PolicySource(path=trial_dir, mode=trial), PolicySource(path=policy_dir, mode=enforced)),
    )
    with pytest.raises(PolicyError) as err:
        Gate(config=config, today=TODAY)
    message = err.value.diagnostics()
    assert f"package main is defined in {trial_dir} (mode {trial or top}" in message
    assert f"and in {policy_dir} (mode {enforced or top}" in message
    assert "a package of its own" in message


@pytest.mark.parametrize(
    ("top", "trial", "enforced"),
    [(Mode.ENFORCE, None, None), (Mode.ENFORCE, Mode.WARN, Mode.WARN), (Mode.WARN, Mode.WARN, None)],
)
def test_sources_of_one_mode_share_a_package(
    policy_dir: Path, write: Write, top: Mode, trial: Mode | None, enforced: Mode | None
) -> None:
    trial_dir = write("trial/new.rego", TRIAL_POLICY).parent
    config = Config(
        mode=top,
        policies=(PolicySource(path=trial_dir, mode=trial), PolicySource(path=policy_dir, mode=enforced)),
    )
    decision = Gate(config=config, today=TODAY).check([str(write("m.yaml", MANIFESTS))])
    found = {f.rule: f.severity for r in decision.results for f in r.findings}
    expected = Severity.ERROR if (trial or top) == Mode.ENFORCE else Severity.WARNING
    assert found["trial"] == found["no-privileged"] == expected


def test_with_mode_replaces_every_mode_of_the_configuration(policy_dir: Path, write: Write) -> None:
    config = Config(mode=Mode.AUDIT, policies=(PolicySource(path=policy_dir, mode=Mode.WARN),))
    decision = Gate(config=config.with_mode(Mode.ENFORCE), today=TODAY).check(
        [str(write("m.yaml", MANIFESTS))]
    )
    assert decision.results[0].findings[0].severity == Severity.ERROR
    assert decision.exit_code() == ExitCode.POLICY_FAILURE


def exception(**changes: object) -> ExceptionRule:
    base = ExceptionRule(
        name="ops-tooling",
        rules=("no-*",),
        owner="ops@example.com",
        reason="node debugging tool",
        expires=dt.date(2026, 12, 31),
        namespaces=("ops",),
        kinds=("Deployment",),
        names=("admin",),
        images=("registry.example.com/ops/*",),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_exception_waives_a_matching_finding_and_is_recorded(policy_dir: Path, write: Write) -> None:
    decision = make_gate(policy_dir, exceptions=(exception(),)).check([str(write("m.yaml", MANIFESTS))])
    priv = next(f for f in decision.results[0].findings if f.rule == "no-privileged")
    assert priv.severity == Severity.INFO
    assert priv.exception is not None and priv.exception.name == "ops-tooling" and not priv.exception.expired
    assert "waived by exception 'ops-tooling'" in priv.note
    assert decision.exit_code() == ExitCode.PASS


@pytest.mark.parametrize(
    "changes",
    [
        {"namespaces": ("prod",)},
        {"kinds": ("StatefulSet",)},
        {"names": ("other-*",)},
        {"images": ("docker.io/*",)},
        {"rules": ("replicas",)},
    ],
    ids=["namespace", "kind", "name", "image", "rule"],
)
def test_exception_that_does_not_match_changes_nothing(policy_dir: Path, write: Write, changes: dict) -> None:
    decision = make_gate(policy_dir, exceptions=(exception(**changes),)).check(
        [str(write("m.yaml", MANIFESTS))]
    )
    priv = next(f for f in decision.results[0].findings if f.rule == "no-privileged")
    assert priv.severity == Severity.ERROR and priv.exception is None


@pytest.mark.parametrize(
    ("image", "pattern", "waived"),
    [
        ("registry.example.com/ops/tool:1.0", "*.example.com/ops/*", True),
        ("registry.example.com/ops/tool:1.0", "registry.example.com/**", True),
        ("registry.example.com/ops/tool:1.0", "registry.example.com/ops/tool:1.*", True),
        ("registry.example.com:443/ops/tool:1.0", "registry.example.com/ops/*", True),
        ("nginx:1.27", "docker.io/library/nginx", True),
        ("index.docker.io/library/nginx:1.27", "docker.io/library/*", True),
        # Docker Hub images whose names merely contain the pattern: `*` stays within a segment.
        ("evil/x.example.com/ops/tool:1.0", "*.example.com/ops/*", False),
        ("evil/registry.example.com/ops/tool:1.0", "*/ops/*", False),
        ("registry.example.com/ops/sub/tool:1.0", "registry.example.com/ops/*", False),
        # A tag picks no waiver unless the pattern names one itself.
        ("registry.example.com/ops/tool:v2-debug", "registry.example.com/ops/*-debug", False),
        ("registry.example.com/ops/tool-debug:v2", "registry.example.com/ops/*-debug", True),
        # Docker Hub short names are read as references are.
        ("nginx:latest", "nginx:*", True),
        ("nginx:latest", "nginx", True),
        ("acme/app:1", "acme/app*", True),
        ("evil/nginx:1", "nginx*", False),
        ("registry.example.com/nginx:1", "nginx", False),
        ("docker.io/nginx:1", "index.docker.io/library/nginx", True),
        # What an unresolved variable becomes is unknown: no pattern covers it.
        ("registry.example.com/ops/tool:${TAG}-debug", "registry.example.com/ops/*-debug", False),
        ("${REG}.example.com/ops/tool:1", "*.example.com/ops/*", False),
    ],
)
def test_exception_images_match_as_image_rules_do(
    policy_dir: Path, write: Write, image: str, pattern: str, waived: bool
) -> None:
    """`*.acme.io/legacy/*` under fnmatch covered `evil/x.acme.io/legacy/rootkit`, a Docker Hub image."""
    path = write("m.yaml", MANIFESTS.replace("registry.example.com/ops/tool:1.0", image))
    decision = make_gate(policy_dir, exceptions=(exception(images=(pattern,)),)).check([str(path)])
    priv = next(f for f in decision.results[0].findings if f.rule == "no-privileged")
    assert priv.metadata["image"] == image
    assert (priv.exception is not None) is waived


def test_an_exception_for_namespaces_does_not_cover_an_object_that_names_none(
    policy_dir: Path, write: Write
) -> None:
    """An object without metadata.namespace lands wherever it is applied (kubectl's context, a Flux
    targetNamespace): an exception for `default` must not waive its findings; only `*` does."""
    text = MANIFESTS.replace("  namespace: ops\n", "")
    assert text != MANIFESTS
    path = str(write("m.yaml", text))
    for patterns, waived in ((("default",), False), (("ops",), False), (("*",), True)):
        decision = make_gate(policy_dir, exceptions=(exception(namespaces=patterns),)).check([path])
        priv = next(f for f in decision.results[0].findings if f.rule == "no-privileged")
        assert (priv.exception is not None) is waived, patterns


def test_expired_exception_stops_applying_and_says_so(policy_dir: Path, write: Write) -> None:
    expired = exception(expires=dt.date(2026, 5, 31))
    decision = make_gate(policy_dir, exceptions=(expired,)).check([str(write("m.yaml", MANIFESTS))])
    priv = next(f for f in decision.results[0].findings if f.rule == "no-privileged")
    assert priv.severity == Severity.ERROR
    assert priv.exception is not None and priv.exception.expired
    assert "expired on 2026-05-31" in priv.note
    assert any("'ops-tooling'" in n and "expired" in n for n in decision.notes)
    assert decision.exit_code() == ExitCode.POLICY_FAILURE


def test_policy_runtime_error_in_one_document_keeps_the_others(write: Write) -> None:
    policy = write(
        "p/conflict.rego",
        'package c\nimport rego.v1\nx := 1 if input.a\nx := 2 if input.b\ndeny contains "x" if x > 0\n',
    ).parent
    path = write(
        "m.yaml", "apiVersion: v1\nkind: ConfigMap\na: 1\nb: 1\n---\napiVersion: v1\nkind: ConfigMap\n"
    )
    config = Config(policies=(PolicySource(path=policy),), kubernetes=KubernetesSettings(schemas=False))
    decision = Gate(config=config, today=TODAY).check([str(path)])
    broken, fine = decision.results
    assert broken.status == Status.ERROR and broken.findings[0].rule == "policy/error"
    assert "conflict.rego" in broken.findings[0].message
    assert fine.status == Status.PASSED
    assert decision.exit_code() == ExitCode.NOT_EVALUATED


def test_a_user_rule_failing_at_run_time_keeps_the_bundled_findings(write: Write) -> None:
    policy = write(
        "p/team.rego",
        "package team\nimport rego.v1\n"
        "owner := input.metadata.labels.owner\n"
        "owner := input.metadata.labels.team if not input.metadata.labels.owner == "
        "input.metadata.labels.team\n"
        'warn contains "no owner or team label" if not owner\n',
    ).parent
    path = write(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bad, labels: {owner: a, team: b}}\n"
        "spec: {containers: [{name: c, image: 'nginx:latest', securityContext: {privileged: true}}]}\n",
    )
    sources = (
        PolicySource(builtin="pss-baseline"),
        PolicySource(builtin="supply-chain"),
        PolicySource(path=policy),
    )
    config = Config(policies=sources, kubernetes=KubernetesSettings(schemas=False))
    (result,) = Gate(config=config, today=TODAY).check([str(path)]).results
    rules = {f.rule: f for f in result.findings}
    assert rules["pss-baseline-privileged"].severity == Severity.ERROR
    assert rules["images-no-latest"].severity == Severity.ERROR
    assert "rule data.team.warn: " in rules["policy/error"].message
    assert "team.rego:4:" in rules["policy/error"].message
    assert result.status == Status.ERROR  # not evaluated (exit 3), with the violations reported


def test_broken_policy_fails_at_construction(write: Write) -> None:
    policy = write("p/bad.rego", "package x\ndeny contains m if {\n").parent
    with pytest.raises(PolicyError) as err:
        Gate(config=Config(policies=(PolicySource(path=policy),)))
    assert "bad.rego:" in err.value.diagnostics()


def test_missing_schema_can_fail(policy_dir: Path, write: Write) -> None:
    path = write("w.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    skip = make_gate(policy_dir).check([str(path)])
    assert skip.results[0].findings[0].severity == Severity.INFO and skip.exit_code() == ExitCode.PASS
    fail = make_gate(policy_dir, kubernetes=KubernetesSettings(missing_schemas="fail")).check([str(path)])
    assert fail.results[0].findings[0].rule == "schema-missing"
    assert fail.exit_code() == ExitCode.POLICY_FAILURE


def test_crd_from_config_validates_custom_resources(policy_dir: Path, write: Write) -> None:
    crd = write(
        "crds/widget.yaml",
        widget_crd("spec:\n  type: object\n  properties: {size: {type: integer}}\n"),
    )
    path = write(
        "w.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: big}\n"
    )
    gate = make_gate(policy_dir, kubernetes=KubernetesSettings(crds=(crd.parent,)))
    (finding,) = gate.check([str(path)]).results[0].findings
    assert (finding.rule, finding.line) == ("schema-invalid", 4)


def test_crd_path_without_crds_is_a_config_error(policy_dir: Path, write: Write) -> None:
    empty = write("crds/none.yaml", "apiVersion: v1\nkind: ConfigMap\n")
    with pytest.raises(ConfigError):
        make_gate(policy_dir, kubernetes=KubernetesSettings(crds=(empty,)))


def test_parallel_run_gives_the_same_results_in_the_same_order(policy_dir: Path, write: Write) -> None:
    paths = [write(f"many/{i:03}.yaml", MANIFESTS + "\n" + "#" * 70_000 + "\n") for i in range(12)]
    sequential = make_gate(policy_dir).check([str(p.parent) for p in paths[:1]])
    parallel_gate = Gate(config=Config(policies=(PolicySource(path=policy_dir),)), today=TODAY, jobs=2)
    parallel = parallel_gate.check([str(paths[0].parent)])
    assert [r.to_json() for r in parallel.results] == [r.to_json() for r in sequential.results]
    assert len(parallel.results) == 24


def test_data_files_and_inline_data_are_merged(write: Write) -> None:
    policy = write(
        "p/reg.rego",
        "package r\nimport rego.v1\n"
        "deny contains input.image if { not startswith(input.image, data.settings.registry) }\n"
        'deny contains sprintf("team %s", [data.settings.team]) if input.team != data.settings.team\n',
    ).parent
    data = write("data.yaml", "settings: {registry: registry.example.com/}\n")
    config = Config(
        policies=(PolicySource(path=policy),),
        data_files=(data,),
        data={"settings": {"team": "blue"}},
        kubernetes=KubernetesSettings(schemas=False),
    )
    path = write("m.yaml", "apiVersion: v1\nkind: X\nimage: docker.io/x\nteam: green\n")
    messages = sorted(f.message for f in Gate(config=config).check([str(path)]).results[0].findings)
    assert messages == ["docker.io/x", "team blue"]
    # A value both set is a conflict, as OPA merges data documents: neither wins.
    write("data.yaml", "settings: {registry: registry.example.com/, team: red}\n")
    with pytest.raises(ConfigError, match=r"data documents conflict at settings\.team"):
        Gate(config=config)


def test_a_killed_worker_loses_nothing(
    policy_dir: Path, write: Write, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os
    import signal
    import time

    paths = [write(f"many/{i:03}.yaml", MANIFESTS + "\n" + "#" * 70_000 + "\n") for i in range(10)]
    parent = os.getpid()
    run_unit = Gate.run_unit

    def killed_in_a_worker(self: Gate, *args: Any) -> Any:
        if os.getpid() != parent:
            (tmp_path / "died").touch()
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
        time.sleep(0.05)  # leave the worker time to take a unit
        return run_unit(self, *args)

    monkeypatch.setattr(Gate, "run_unit", killed_in_a_worker)
    gate = Gate(config=Config(policies=(PolicySource(path=policy_dir),)), today=TODAY, jobs=2)
    decision = gate.check([str(paths[0].parent)])
    assert (tmp_path / "died").exists()
    assert len(decision.results) == 20
    assert decision.summary.failed == 10
