"""Custom workload kinds: `workloads` in trustgate.yaml, the known defaults, and what the gate makes
of a custom resource carrying a pod template (judged where declared, named where not)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from trustgate import kinds
from trustgate.config import Config, load_config
from trustgate.errors import ConfigError
from trustgate.gate import Gate
from trustgate.gate.sources import load_policy_data
from trustgate.model import Mode, Severity

Write = Callable[[str, str], Path]

HEAD = "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"


def test_workloads_are_read_with_paths_and_defaults(write: Write) -> None:
    path = write(
        "t.yaml",
        HEAD + "workloads:\n"
        "  - {group: example.com, kind: Runner, podSpec: spec.runner.template.spec, batch: true}\n"
        "  - {group: example.com, kind: Pool, podSpec: spec.pod, podMetadata: spec.podMeta,\n"
        "     resource: pools}\n"
        "  - {group: example.com, kind: Widget, notWorkload: true}\n",
    )
    config = load_config(path)
    runner, pool, widget = config.workloads
    assert runner.pod_spec == ("spec", "runner", "template", "spec")
    assert runner.pod_metadata == ("spec", "runner", "template", "metadata")  # beside podSpec
    assert runner.batch is True and runner.where == f"{path}:4"
    assert (pool.pod_spec, pool.pod_metadata, pool.plural) == (("spec", "pod"), ("spec", "podMeta"), "pools")
    assert widget.pod_spec is None
    table = config.workload_table()
    assert table.get("example.com", "Widget") is not None and table.get("argoproj.io", "Rollout") is not None
    assert "Widget" not in table.gating()  # declared not a workload: nothing to judge
    assert table.gating()["Service"] == frozenset({"serving.knative.dev"})
    data = table.rego_data()
    assert data["Runner"]["example.com"] == {
        "spec": ["spec", "runner", "template", "spec"],
        "metadata": ["spec", "runner", "template", "metadata"],
        "groups": ["example.com"],
        "batch": True,
    }
    assert data["ScaledJob"]["keda.sh"]["spec"] == ["spec", "jobTargetRef", "template", "spec"]


def test_a_declaration_replaces_a_known_default(write: Write) -> None:
    config = load_config(
        write("t.yaml", HEAD + "workloads:\n  - {group: argoproj.io, kind: Rollout, notWorkload: true}\n")
    )
    table = config.workload_table()
    assert "Rollout" not in table.rego_data() and table.get("argoproj.io", "Rollout") is not None


@pytest.mark.parametrize(
    ("entry", "line", "expected"),
    [
        ("{group: example.com, kind: '', podSpec: spec.template.spec}", 4, "empty kind"),
        ("{group: example.com, kind: ' ', podSpec: spec.template.spec}", 4, "empty kind"),
        ("{group: example.com, kind: W, podSpec: 'spec.template[0].spec'}", 4, "not a dotted field path"),
        ("{group: example.com, kind: W, podSpec: .spec.template}", 4, "not a dotted field path"),
        ("{group: example.com, kind: W, podSpec: 'spec..template'}", 4, "not a dotted field path"),
        ("{group: example.com, kind: W, podSpec: spec, podMetadata: 'a b'}", 4, "not a dotted field path"),
        ("{group: apps, kind: Deployment, podSpec: spec.template.spec}", 4, "is a built-in workload kind"),
        ("{group: '', kind: Pod, podSpec: spec}", 4, "is a built-in workload kind"),
        ("{group: batch, kind: Runner, podSpec: spec.template.spec}", 4, "not a custom resource's group"),
        ("{group: example.com, kind: W}", 4, "needs either podSpec"),
        ("{group: example.com, kind: W, podSpec: spec, notWorkload: true}", 4, "not both"),
        ("{group: example.com, kind: W, podSpec: spec, resource: Ws.x}", 4, "not a resource name"),
        ("{group: example.com, kind: W, pod: spec}", 4, "workloads.0"),
    ],
)
def test_a_bad_workload_entry_names_file_line_and_the_way_out(
    write: Write, entry: str, line: int, expected: str
) -> None:
    path = write("t.yaml", HEAD + "workloads:\n  - " + entry + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = err.value.diagnostics()
    assert f"{path}:{line}" in message and expected in message, message


def test_a_kind_declared_twice_is_refused_naming_both_lines(write: Write) -> None:
    path = write(
        "t.yaml",
        HEAD + "workloads:\n  - {group: example.com, kind: W, podSpec: spec}\n"
        "  - {group: example.com, kind: W, notWorkload: true}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = err.value.diagnostics()
    assert "declared twice" in message and f"{path}:5" in message and f"{path}:4" in message


def test_the_table_reaches_the_policies_as_data() -> None:
    data = load_policy_data(Config.default())
    assert data["trustgate"]["config"]["workloads"]["Rollout"]["argoproj.io"]["spec"] == [
        "spec",
        "template",
        "spec",
    ]


def test_data_that_sets_the_table_is_a_conflict_naming_both(write: Write) -> None:
    path = write(
        "t.yaml",
        HEAD
        + "manifests:\n  data:\n    trustgate:\n"
        + "      config: {workloads: {Rollout: {argoproj.io: {spec: [x]}}}}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_policy_data(load_config(path))
    assert "trustgate.config.workloads" in err.value.message and "workloads" in str(err.value.where)


# ---------------------------------------------------------------------------------------------------
# The gate over custom resources.

PRIVILEGED = {"name": "app", "image": "registry.example.com/app:1", "securityContext": {"privileged": True}}


def _rollout(group: str = "argoproj.io", kind: str = "Rollout") -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/v1alpha1",
        "kind": kind,
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"metadata": {}, "spec": {"containers": [dict(PRIVILEGED)]}}},
    }


def _findings(config: Config, tmp_path: Path, *docs: dict[str, Any]) -> list[tuple[str, Severity, str]]:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump_all(docs), "utf-8")
    with Gate(config=config) as gate:
        decision = gate.check([str(manifest)])
    return [
        (f.rule, f.severity, ".".join(map(str, f.path)))
        for r in decision.results
        for f in r.findings
        if f.source == "rego"
    ]


def test_a_privileged_rollout_is_denied_at_the_real_path(tmp_path: Path) -> None:
    found = _findings(Config.default(), tmp_path, _rollout())
    assert (
        "pss-baseline-privileged",
        Severity.ERROR,
        "spec.template.spec.containers.0.securityContext.privileged",
    ) in found


def test_a_known_kind_in_another_group_is_not_judged_as_one(tmp_path: Path) -> None:
    """A Rollout of another group is no Argo Rollout: not judged as one, named as a look-alike."""
    found = _findings(Config.default(), tmp_path, _rollout(group="rollouts.example.com"))
    assert [rule for rule, _, _ in found] == ["undeclared-workload"]


@pytest.mark.parametrize(
    ("mode", "severity"),
    [(Mode.ENFORCE, Severity.ERROR), (Mode.WARN, Severity.WARNING), (Mode.AUDIT, Severity.INFO)],
)
def test_an_undeclared_pod_template_follows_the_mode(tmp_path: Path, mode: Mode, severity: Severity) -> None:
    config = Config.default().with_mode(mode)
    found = _findings(config, tmp_path, _rollout(group="example.com", kind="Widget"))
    assert found == [("undeclared-workload", severity, "spec.template.spec.containers")]


def test_a_cronjob_shaped_template_is_named_too(tmp_path: Path) -> None:
    doc = _rollout(group="example.com", kind="Schedule")
    doc["spec"] = {"jobTemplate": {"spec": doc["spec"]}}
    found = _findings(Config.default(), tmp_path, doc)
    assert found == [
        ("undeclared-workload", Severity.ERROR, "spec.jobTemplate.spec.template.spec.containers")
    ]


@pytest.mark.parametrize(
    "spec",
    [
        {"template": {"spec": {"containers": []}}},
        {"template": {"spec": {"containers": [{"name": "a"}]}}},  # no image: not unmistakable
        {"template": {"spec": {"containers": ["nginx"]}}},
        {"template": {"spec": {"containers": {"image": "nginx"}}}},
        {"template": {"spec": {"containers": [{"image": {"repository": "nginx", "tag": "1"}}]}}},
        {"steps": [{"name": "a", "run": "make"}]},  # a CI system's steps, no image
        {"container": {"image": 7}},
    ],
)
def test_what_is_not_unmistakably_a_pod_template_is_not_named(tmp_path: Path, spec: dict[str, Any]) -> None:
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}
    assert kinds.pod_sites(doc) == []
    assert _findings(Config.default(), tmp_path, doc) == []


def test_a_user_policy_set_alone_names_no_look_alike(tmp_path: Path, write: Write) -> None:
    """The finding is about the bundled sets' blind spot: without them there is none."""
    policy = write("p/main.rego", 'package main\nimport rego.v1\ndeny contains "x" if input.kind == "Nope"\n')
    config = load_config(write("t.yaml", HEAD + f"manifests:\n  policies:\n    - path: {policy.parent}\n"))
    assert _findings(config, tmp_path, _rollout(group="example.com", kind="Widget")) == []


def test_a_declared_custom_workload_is_judged_and_its_siblings_are_not(tmp_path: Path, write: Write) -> None:
    config = load_config(
        write(
            "t.yaml",
            HEAD + "workloads:\n  - {group: example.com, kind: Widget, podSpec: spec.template.spec}\n",
        )
    )
    found = _findings(config, tmp_path, _rollout(group="example.com", kind="Widget"))
    assert (
        "pss-baseline-privileged",
        Severity.ERROR,
        "spec.template.spec.containers.0.securityContext.privileged",
    ) in found
    assert "undeclared-workload" not in [rule for rule, _, _ in found]
