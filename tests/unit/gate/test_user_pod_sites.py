"""Your own Rego on the library (`data.trustgate.lib.k8s`) sees every pod template the gate finds.

Pod templates inside lists or maps (`podSpec: "*"`: a PyTorchJob's replica specs, Tekton's steps,
an Argo Workflow's containers) and templates beside a declared pod spec have no one path for the
library's `workload`: the gate walks the object for them (`kinds.pod_sites`) and evaluates the
packages that read the library over each, as the pod of a Job or a PodTemplate, with the
findings' paths put back where the template is. A user package that does not read the library
is not evaluated there: it would judge a synthetic PodTemplate it never wrote rules for.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from trustgate import kinds
from trustgate.config import Config, ExceptionRule, KubernetesSettings, PolicySource
from trustgate.gate import Gate
from trustgate.model import Mode, Severity

# Every container without resources.limits, at the path where they must be set.
LIMITS = """\
package main

import rego.v1

deny contains f if {
	some c in data.trustgate.lib.k8s.containers
	not c.container.resources.limits
	f := {
		"msg": sprintf("%s has no limits", [c.description]),
		"rule": "need-limits",
		"path": array.concat(c.path, ["resources", "limits"]),
		"image": c.image,
	}
}
"""

APP = {"name": "app", "image": "registry.example.com/app:1"}
BOUNDED = {"name": "ok", "image": "registry.example.com/ok:1", "resources": {"limits": {"memory": "1Gi"}}}


def _doc(api_version: str, kind: str, spec: dict[str, Any], name: str = "x") -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": "ml", "labels": {"team": "ml"}},
        "spec": spec,
    }


def _template(*containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [copy.deepcopy(c) for c in containers]},
    }


def _config(tmp_path: Path, *modules: str, mode: Mode | None = None, **settings: Any) -> Config:
    policy = tmp_path / "policy"
    policy.mkdir(exist_ok=True)
    for i, text in enumerate(modules):
        (policy / f"p{i}.rego").write_text(text, "utf-8")
    return Config(
        policies=(PolicySource(path=policy, mode=mode),),
        kubernetes=KubernetesSettings(schemas=False),
        **settings,
    )


def _results(config: Config, tmp_path: Path, *docs: dict[str, Any], combine: bool = False) -> Any:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump_all(docs), "utf-8")
    with Gate(config=config, today=dt.date(2030, 1, 1), combine=combine) as gate:
        return gate.check([str(manifest)])


def _found(config: Config, tmp_path: Path, *docs: dict[str, Any]) -> list[tuple[str, Severity, str]]:
    decision = _results(config, tmp_path, *docs)
    return sorted(
        (f.rule, f.severity, ".".join(map(str, f.path)))
        for r in decision.results
        for f in r.findings
        if f.source in ("rego", "engine")
    )


# (document, where the limits of its container without them must be set)
SITES = {
    "kubeflow-pytorchjob": (
        _doc(
            "kubeflow.org/v1",
            "PyTorchJob",
            {
                "pytorchReplicaSpecs": {
                    "Master": {"replicas": 1, "template": _template(BOUNDED)},
                    "Worker": {"replicas": 4, "template": _template(BOUNDED, APP)},
                }
            },
        ),
        "spec.pytorchReplicaSpecs.Worker.template.spec.containers.1.resources.limits",
    ),
    "tekton-task-step": (
        _doc("tekton.dev/v1", "Task", {"steps": [BOUNDED, {**APP, "script": "make"}]}),
        "spec.steps.1.resources.limits",
    ),
    "argo-workflow-container": (
        _doc("argoproj.io/v1alpha1", "Workflow", {"templates": [{"name": "m", "container": APP}]}),
        "spec.templates.0.container.resources.limits",
    ),
    "ray-worker-group": (
        _doc(
            "ray.io/v1", "RayCluster", {"workerGroupSpecs": [{"groupName": "g", "template": _template(APP)}]}
        ),
        "spec.workerGroupSpecs.0.template.spec.containers.0.resources.limits",
    ),
}


@pytest.mark.parametrize("name", sorted(SITES))
def test_a_user_rule_on_the_library_judges_templates_inside_lists_or_maps(tmp_path: Path, name: str) -> None:
    doc, path = SITES[name]
    assert _found(_config(tmp_path, LIMITS), tmp_path, doc) == [("need-limits", Severity.ERROR, path)]


# The ways a module reads the library: each must be found by reading its text.
READERS = {
    "full-path": LIMITS,
    "import": LIMITS.replace("import rego.v1\n", "import rego.v1\nimport data.trustgate.lib.k8s\n").replace(
        "data.trustgate.lib.k8s.containers", "k8s.containers"
    ),
    "import-as": LIMITS.replace(
        "import rego.v1\n", "import rego.v1\nimport data.trustgate.lib.k8s as lib\n"
    ).replace("data.trustgate.lib.k8s.containers", "lib.containers"),
    "import-parent": LIMITS.replace(
        "import rego.v1\n", "import rego.v1\nimport data.trustgate.lib\n"
    ).replace("data.trustgate.lib.k8s.containers", "lib.k8s.containers"),
    "brackets": LIMITS.replace(
        "data.trustgate.lib.k8s.containers", 'data["trustgate"]["lib"]["k8s"].containers'
    ),
    "bound-parent": LIMITS.replace(
        "some c in data.trustgate.lib.k8s.containers",
        "lib := data.trustgate.lib\n\tsome c in lib.k8s.containers",
    ),
    "computed-key": LIMITS.replace(
        "some c in data.trustgate.lib.k8s.containers",
        'part := "lib"\n\tsome c in data.trustgate[part].k8s.containers',
    ),
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_each_way_of_reading_the_library_is_seen(tmp_path: Path, name: str) -> None:
    doc, path = SITES["kubeflow-pytorchjob"]
    assert _found(_config(tmp_path, READERS[name]), tmp_path, doc) == [("need-limits", Severity.ERROR, path)]


def test_a_package_reading_the_library_through_a_helper_package_is_judged_on_sites(tmp_path: Path) -> None:
    helper = LIMITS.replace("package main", "package helpers").replace(
        "deny contains f", "unbounded contains f"
    )
    main = "package main\n\nimport rego.v1\n\ndeny contains f if some f in data.helpers.unbounded\n"
    doc, path = SITES["tekton-task-step"]
    assert _found(_config(tmp_path, helper, main), tmp_path, doc) == [("need-limits", Severity.ERROR, path)]


def test_only_the_packages_that_read_the_library_are_evaluated_on_sites(tmp_path: Path) -> None:
    # This package judges documents as they are: on a PyTorchJob it must not see a synthetic input.
    plain = (
        "package kinds\n\nimport rego.v1\n\n"
        'deny contains msg if {\n\tinput.kind in {"Job", "PodTemplate"}\n\tmsg := "synthetic input"\n}\n'
        'deny contains msg if {\n\tinput.kind == "PyTorchJob"\n\tnot input.spec.runPolicy\n'
        '\tmsg := "no runPolicy"\n}\n'
    )
    doc, path = SITES["kubeflow-pytorchjob"]
    assert _found(_config(tmp_path, LIMITS, plain), tmp_path, doc) == [
        ("kinds.deny", Severity.ERROR, ""),
        ("need-limits", Severity.ERROR, path),
    ]


def test_a_template_beside_the_declared_pod_spec_is_judged_once_each(tmp_path: Path) -> None:
    trainer = kinds.WorkloadKind(
        "ml.example.com",
        "Trainer",
        ("spec", "roles", "Master", "template", "spec"),
        ("spec", "roles", "Master", "template", "metadata"),
    )
    config = _config(tmp_path, LIMITS, workloads=(trainer,))
    doc = _doc(
        "ml.example.com/v1",
        "Trainer",
        {"roles": {"Master": {"template": _template(APP)}, "Worker": {"template": _template(APP)}}},
    )
    assert _found(config, tmp_path, doc) == [
        ("need-limits", Severity.ERROR, "spec.roles.Master.template.spec.containers.0.resources.limits"),
        ("need-limits", Severity.ERROR, "spec.roles.Worker.template.spec.containers.0.resources.limits"),
    ]


def test_a_kind_declared_with_templates_anywhere_is_judged(tmp_path: Path) -> None:
    sweep = kinds.WorkloadKind("ml.example.com", "Sweep", (), ())
    config = _config(tmp_path, LIMITS, workloads=(sweep,))
    doc = _doc("ml.example.com/v1", "Sweep", {"trials": [{"template": _template(APP)}]})
    assert _found(config, tmp_path, doc) == [
        ("need-limits", Severity.ERROR, "spec.trials.0.template.spec.containers.0.resources.limits")
    ]


def test_the_packages_own_mode_applies_on_sites(tmp_path: Path) -> None:
    doc, path = SITES["argo-workflow-container"]
    assert _found(_config(tmp_path, LIMITS, mode=Mode.WARN), tmp_path, doc) == [
        ("need-limits", Severity.WARNING, path)
    ]


def test_exceptions_waive_findings_on_sites(tmp_path: Path) -> None:
    waiver = ExceptionRule(
        name="legacy-training",
        rules=("need-limits",),
        owner="ml@example.com",
        reason="migrating",
        expires=dt.date(2099, 12, 31),
        kinds=("PyTorchJob",),
        names=("legacy",),
    )
    config = _config(tmp_path, LIMITS, exceptions=(waiver,))
    job, _ = SITES["kubeflow-pytorchjob"]
    legacy = {**job, "metadata": {**job["metadata"], "name": "legacy"}}
    decision = _results(config, tmp_path, legacy, job)
    by_name = {
        r.name: [(f.rule, f.severity, f.exception is not None) for f in r.findings] for r in decision.results
    }
    assert by_name == {
        "legacy": [("need-limits", Severity.INFO, True)],
        "x": [("need-limits", Severity.ERROR, False)],
    }


def test_the_packages_own_conftest_exception_applies_on_sites(tmp_path: Path) -> None:
    exception = (
        "package main\n\nimport rego.v1\n\n"
        'exception contains rules if {\n\tinput.metadata.name == "legacy"\n\trules := ["deny"]\n}\n'
    )
    job, _ = SITES["kubeflow-pytorchjob"]
    legacy = {**job, "metadata": {**job["metadata"], "name": "legacy"}}
    decision = _results(_config(tmp_path, LIMITS, exception), tmp_path, legacy)
    assert [(f.rule, f.severity) for r in decision.results for f in r.findings] == [
        ("need-limits", Severity.INFO)
    ]


def test_a_rule_on_the_owners_metadata_is_reported_once_at_its_path(tmp_path: Path) -> None:
    owner = (
        "package main\n\nimport rego.v1\n\n"
        "deny contains f if {\n\tnot input.metadata.labels.owner\n"
        '\tf := {"msg": "no owner label", "rule": "owner-label", "path": ["metadata", "labels"]}\n}\n'
        'warn contains "no cost centre" if not input.metadata.annotations.cost\n'
    )
    doc, path = SITES["kubeflow-pytorchjob"]
    assert _found(_config(tmp_path, LIMITS, owner), tmp_path, doc) == [
        ("main.warn", Severity.WARNING, ""),
        ("need-limits", Severity.ERROR, path),
        ("owner-label", Severity.ERROR, "metadata.labels"),
    ]


def test_a_message_without_a_path_names_the_template(tmp_path: Path) -> None:
    pathless = LIMITS.replace('\t\t"path": array.concat(c.path, ["resources", "limits"]),\n', "")
    assert pathless != LIMITS
    doc, _ = SITES["ray-worker-group"]
    assert _found(_config(tmp_path, pathless), tmp_path, doc) == [
        ("need-limits", Severity.ERROR, "spec.workerGroupSpecs.0.template.spec")
    ]


def test_combined_packages_are_not_evaluated_on_sites(tmp_path: Path) -> None:
    doc, path = SITES["tekton-task-step"]
    config = _config(tmp_path, LIMITS)
    assert _found(config, tmp_path, doc) == [("need-limits", Severity.ERROR, path)]
    # --combine: the user's packages see the combined input (a list), where the library finds no pod.
    combined = _results(config, tmp_path, doc, combine=True)
    assert [f.rule for r in combined.results for f in r.findings if f.source == "rego"] == []


def test_with_the_bundled_sets_both_judge_the_site(tmp_path: Path) -> None:
    config = _config(tmp_path, LIMITS)
    config = Config(
        policies=(*Config.default().policies, *config.policies), kubernetes=KubernetesSettings(schemas=False)
    )
    doc, path = SITES["argo-workflow-container"]
    found = _found(config, tmp_path, doc)
    assert ("need-limits", Severity.ERROR, path) in found
    assert (
        "resources-memory-limit",
        Severity.ERROR,
        "spec.templates.0.container.resources.limits.memory",
    ) in found


# The same rule in Rego v0 (`regoVersion: v0`): the library is loaded for those sources too.
LIMITS_V0 = """\
package main

import data.trustgate.lib.k8s

deny[f] {
	c := k8s.containers[_]
	not c.container.resources.limits
	f := {
		"msg": sprintf("%s has no limits", [c.description]),
		"rule": "need-limits",
		"path": array.concat(c.path, ["resources", "limits"]),
	}
}
"""

DEPLOYMENT = _doc(
    "apps/v1",
    "Deployment",
    {"selector": {"matchLabels": {"a": "b"}}, "template": _template(APP)},
)


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (DEPLOYMENT, "spec.template.spec.containers.0.resources.limits"),
        SITES["kubeflow-pytorchjob"],
        SITES["tekton-task-step"],
    ],
    ids=["deployment", "pytorchjob", "tekton-task"],
)
def test_a_rego_v0_package_on_the_library_judges_pods(tmp_path: Path, doc: dict[str, Any], path: str) -> None:
    # A v0 source once had no library: its rules on the library were undefined, and passed everything.
    config = _config(tmp_path, LIMITS_V0)
    config = dataclasses.replace(
        config, policies=(dataclasses.replace(config.policies[0], rego_version="v0"),)
    )
    assert _found(config, tmp_path, doc) == [("need-limits", Severity.ERROR, path)]


def test_the_same_message_of_two_templates_is_reported_at_each(tmp_path: Path) -> None:
    # Kubeflow names the container `pytorch` in every replica spec: a message naming it is the same
    # for the Master and the Worker. It was reported once, at the Master: the Worker's went unsaid.
    pathless = LIMITS.replace('\t\t"path": array.concat(c.path, ["resources", "limits"]),\n', "")
    doc = _doc(
        "kubeflow.org/v1",
        "PyTorchJob",
        {
            "pytorchReplicaSpecs": {
                "Master": {"template": _template(APP)},
                "Worker": {"template": _template(APP)},
            }
        },
    )
    assert _found(_config(tmp_path, pathless), tmp_path, doc) == [
        ("need-limits", Severity.ERROR, "spec.pytorchReplicaSpecs.Master.template.spec"),
        ("need-limits", Severity.ERROR, "spec.pytorchReplicaSpecs.Worker.template.spec"),
    ]


def test_a_rule_about_real_jobs_found_on_a_template_says_why_and_the_way_out(tmp_path: Path) -> None:
    # A package on the library with a rule about Jobs themselves: a Tekton Task's steps are given to
    # it as the pod of a Job, which that rule judges too. The finding says so, and where such rules go.
    jobs = LIMITS + (
        '\ndeny contains "a Job must set ttlSecondsAfterFinished" if {\n'
        '\tinput.kind == "Job"\n\tnot input.spec.ttlSecondsAfterFinished\n}\n'
    )
    doc, path = SITES["tekton-task-step"]
    decision = _results(_config(tmp_path, jobs), tmp_path, doc)
    notes = {(f.rule, ".".join(map(str, f.path))): f.note for r in decision.results for f in r.findings}
    assert set(notes) == {("need-limits", path), ("main.deny", "spec.steps")}
    assert not notes[("need-limits", path)]  # about the pod: no note
    note = notes[("main.deny", "spec.steps")]
    assert "as the pod of a Job (batch/v1)" in note
    assert "a package that does not refer to data.trustgate.lib.k8s" in note
