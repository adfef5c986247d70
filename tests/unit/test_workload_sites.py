"""Pod templates a custom resource keeps inside lists or maps, beside its declared pod spec, or
deep in a kind nobody declared: judged at their real paths where the kind is known or declared,
named where it is not, and left alone in objects that describe other objects (policies,
compositions, Helm values)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from trustgate import kinds
from trustgate.config import Config, load_config
from trustgate.errors import ConfigError
from trustgate.gate import Gate
from trustgate.model import Severity

Write = Callable[[str, str], Path]

HEAD = "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
PRIVILEGED = {"name": "app", "image": "registry.example.com/app:1", "securityContext": {"privileged": True}}


def _template() -> dict[str, Any]:
    return {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [copy.deepcopy(PRIVILEGED)]}}


def _doc(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ml"},
        "spec": spec,
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


# (document, where its privileged container's `privileged` is)
KNOWN_ELSEWHERE = {
    "kubeflow-pytorchjob": (
        _doc(
            "kubeflow.org/v1",
            "PyTorchJob",
            {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": _template()}}},
        ),
        "spec.pytorchReplicaSpecs.Master.template.spec.containers.0.securityContext.privileged",
    ),
    "kubeflow-tfjob-worker": (
        _doc("kubeflow.org/v1", "TFJob", {"tfReplicaSpecs": {"Worker": {"template": _template()}}}),
        "spec.tfReplicaSpecs.Worker.template.spec.containers.0.securityContext.privileged",
    ),
    "ray-head": (
        _doc("ray.io/v1", "RayCluster", {"headGroupSpec": {"template": _template()}}),
        "spec.headGroupSpec.template.spec.containers.0.securityContext.privileged",
    ),
    "ray-worker-group": (
        _doc(
            "ray.io/v1",
            "RayCluster",
            {
                "workerGroupSpecs": [
                    {"groupName": "a", "template": {"spec": {"containers": []}}},
                    {"groupName": "b", "template": _template()},
                ]
            },
        ),
        "spec.workerGroupSpecs.1.template.spec.containers.0.securityContext.privileged",
    ),
    "volcano-job-task": (
        _doc("batch.volcano.sh/v1alpha1", "Job", {"tasks": [{"name": "t", "template": _template()}]}),
        "spec.tasks.0.template.spec.containers.0.securityContext.privileged",
    ),
    "argo-workflow-container": (
        _doc(
            "argoproj.io/v1alpha1",
            "Workflow",
            {"entrypoint": "m", "templates": [{"name": "m", "container": copy.deepcopy(PRIVILEGED)}]},
        ),
        "spec.templates.0.container.securityContext.privileged",
    ),
    "argo-workflowtemplate-script": (
        _doc(
            "argoproj.io/v1alpha1",
            "WorkflowTemplate",
            {"templates": [{"name": "s", "script": {**PRIVILEGED, "source": "echo"}}]},
        ),
        "spec.templates.0.script.securityContext.privileged",
    ),
    "argo-cronworkflow": (
        _doc(
            "argoproj.io/v1alpha1",
            "CronWorkflow",
            {
                "schedule": "0 * * * *",
                "workflowSpec": {"templates": [{"name": "m", "container": PRIVILEGED}]},
            },
        ),
        "spec.workflowSpec.templates.0.container.securityContext.privileged",
    ),
    "argo-containerset": (
        _doc(
            "argoproj.io/v1alpha1",
            "Workflow",
            {"templates": [{"name": "m", "containerSet": {"containers": [PRIVILEGED]}}]},
        ),
        "spec.templates.0.containerSet.containers.0.securityContext.privileged",
    ),
    "tekton-task-step": (
        _doc("tekton.dev/v1", "Task", {"steps": [{"name": "ok", "image": "alpine:3"}, PRIVILEGED]}),
        "spec.steps.1.securityContext.privileged",
    ),
    "tekton-pipelinerun-embedded-task": (
        _doc(
            "tekton.dev/v1",
            "PipelineRun",
            {"pipelineSpec": {"tasks": [{"name": "a", "taskSpec": {"sidecars": [PRIVILEGED]}}]}},
        ),
        "spec.pipelineSpec.tasks.0.taskSpec.sidecars.0.securityContext.privileged",
    ),
    "kruise-uniteddeployment": (
        _doc(
            "apps.kruise.io/v1alpha1",
            "UnitedDeployment",
            {"template": {"cloneSetTemplate": {"spec": {"template": _template()}}}},
        ),
        "spec.template.cloneSetTemplate.spec.template.spec.containers.0.securityContext.privileged",
    ),
    "kruise-advancedcronjob": (
        _doc(
            "apps.kruise.io/v1alpha1",
            "AdvancedCronJob",
            {"schedule": "* * * * *", "template": {"jobTemplate": {"spec": {"template": _template()}}}},
        ),
        "spec.template.jobTemplate.spec.template.spec.containers.0.securityContext.privileged",
    ),
    "kruise-sidecarset": (
        _doc("apps.kruise.io/v1alpha1", "SidecarSet", {"containers": [PRIVILEGED]}),
        "spec.containers.0.securityContext.privileged",
    ),
    "jobset": (
        _doc(
            "jobset.x-k8s.io/v1alpha2",
            "JobSet",
            {"replicatedJobs": [{"name": "w", "template": {"spec": {"template": _template()}}}]},
        ),
        "spec.replicatedJobs.0.template.spec.template.spec.containers.0.securityContext.privileged",
    ),
}


@pytest.mark.parametrize("name", sorted(KNOWN_ELSEWHERE))
def test_a_privileged_container_inside_lists_or_maps_is_denied_at_its_path(tmp_path: Path, name: str) -> None:
    doc, path = KNOWN_ELSEWHERE[name]
    found = _findings(Config.default(), tmp_path, doc)
    assert ("pss-baseline-privileged", Severity.ERROR, path) in found, found
    assert "undeclared-workload" not in [rule for rule, _, _ in found]  # known


def test_batch_kinds_found_elsewhere_get_no_probe_warnings_and_services_do(tmp_path: Path) -> None:
    job = KNOWN_ELSEWHERE["kubeflow-pytorchjob"][0]
    ray = KNOWN_ELSEWHERE["ray-head"][0]
    rules = {r for r, _, _ in _findings(Config.default(), tmp_path, job)}
    assert "pss-baseline-privileged" in rules and "probes-liveness" not in rules
    found = _findings(Config.default(), tmp_path, ray)
    assert (
        "probes-liveness",
        Severity.WARNING,
        "spec.headGroupSpec.template.spec.containers.0.livenessProbe",
    ) in found


def test_pod_metadata_beside_a_found_template_is_judged_at_its_path(tmp_path: Path) -> None:
    doc = copy.deepcopy(KNOWN_ELSEWHERE["kubeflow-pytorchjob"][0])
    template = doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
    key = "container.apparmor.security.beta.kubernetes.io/app"
    template["metadata"]["annotations"] = {key: "unconfined"}
    found = _findings(Config.default(), tmp_path, doc)
    paths = {path for rule, _, path in found if rule.startswith("pss-baseline-apparmor")}
    assert paths == {f"spec.pytorchReplicaSpecs.Master.template.metadata.annotations.{key}"}, found


def test_a_compliant_job_found_elsewhere_passes(tmp_path: Path) -> None:
    container = {
        "name": "app",
        "image": "registry.example.com/app:1@sha256:" + "0123456789abcdef" * 4,
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    doc = _doc(
        "batch.volcano.sh/v1alpha1", "Job", {"tasks": [{"template": {"spec": {"containers": [container]}}}]}
    )
    assert [f for f in _findings(Config.default(), tmp_path, doc) if f[1] != Severity.INFO] == []


def test_a_template_beside_the_declared_pod_spec_is_judged_too(tmp_path: Path, write: Write) -> None:
    config = load_config(
        write(
            "t.yaml",
            HEAD + "workloads:\n  - {group: ml.example.com, kind: Trainer, "
            "podSpec: spec.roles.Master.template.spec, batch: true}\n",
        )
    )
    doc = _doc(
        "ml.example.com/v1",
        "Trainer",
        {"roles": {"Master": {"template": _template()}, "Worker": {"template": _template()}}},
    )
    found = _findings(config, tmp_path, doc)
    privileged = sorted(path for rule, _, path in found if rule == "pss-baseline-privileged")
    assert privileged == [
        "spec.roles.Master.template.spec.containers.0.securityContext.privileged",
        "spec.roles.Worker.template.spec.containers.0.securityContext.privileged",
    ]


def test_a_kind_declared_with_templates_anywhere_is_judged(tmp_path: Path, write: Write) -> None:
    config = load_config(
        write("t.yaml", HEAD + "workloads:\n  - {group: ml.example.com, kind: Sweep, podSpec: '*'}\n")
    )
    (sweep,) = config.workloads
    assert sweep.anywhere and "Sweep" not in config.workload_table().rego_data()
    doc = _doc("ml.example.com/v1", "Sweep", {"trials": [{"template": _template()}]})
    found = _findings(config, tmp_path, doc)
    assert (
        "pss-baseline-privileged",
        Severity.ERROR,
        "spec.trials.0.template.spec.containers.0.securityContext.privileged",
    ) in found
    assert "undeclared-workload" not in [rule for rule, _, _ in found]


# ---------------------------------------------------------------------------------------------------
# Kinds nobody declared.


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"pools": [{"template": _template()}]}, "spec.pools.0.template.spec.containers"),
        ({"roles": {"Leader": {"template": _template()}}}, "spec.roles.Leader.template.spec.containers"),
        ({"template": {"container": PRIVILEGED}}, "spec.template.container"),  # Argo Events' Sensor
        ({"template": {"containers": [PRIVILEGED]}}, "spec.template.containers"),
        ({"steps": [{"name": "a", "image": "alpine:3"}]}, "spec.steps"),
    ],
)
def test_containers_anywhere_in_an_undeclared_kind_are_named(
    tmp_path: Path, spec: dict[str, Any], path: str
) -> None:
    found = _findings(Config.default(), tmp_path, _doc("example.com/v1", "Widget", spec))
    assert found == [("undeclared-workload", Severity.ERROR, path)]


def test_the_fix_for_templates_in_lists_is_podspec_star(tmp_path: Path) -> None:
    doc = _doc("example.com/v1", "Widget", {"pools": [{"template": _template()}, {"template": _template()}]})
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump(doc), "utf-8")
    with Gate(config=Config.default()) as gate:
        (finding,) = [
            f for r in gate.check([str(manifest)]).results for f in r.findings if f.source == "rego"
        ]
    assert "and 1 more place" in finding.message
    assert 'podSpec: "*"' in finding.fix and "notWorkload: true" in finding.fix


def test_declared_not_a_workload_names_nothing_anywhere(tmp_path: Path, write: Write) -> None:
    config = load_config(
        write("t.yaml", HEAD + "workloads:\n  - {group: ray.io, kind: RayCluster, notWorkload: true}\n")
    )
    assert _findings(config, tmp_path, KNOWN_ELSEWHERE["ray-head"][0]) == []


# Objects that describe other objects: the API server admits those when they are created.
DESCRIBES_OTHERS = {
    "kyverno-clusterpolicy": _doc(
        "kyverno.io/v1",
        "ClusterPolicy",
        {
            "rules": [
                {
                    "name": "no-latest",
                    "match": {"any": [{"resources": {"kinds": ["Deployment"]}}]},
                    "validate": {
                        "message": "no latest",
                        "pattern": {"spec": {"template": {"spec": {"containers": [{"image": "!*:latest"}]}}}},
                    },
                }
            ]
        },
    ),
    "kyverno-root-pattern": _doc(
        "policies.kyverno.io/v1alpha1",
        "ValidatingPolicy",
        {"template": {"spec": {"containers": [{"image": "x"}]}}},
    ),
    "gatekeeper-constraint": _doc(
        "constraints.gatekeeper.sh/v1beta1",
        "K8sRequiredSidecar",
        {"parameters": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy:1"}]}}}},
    ),
    "gatekeeper-assign": _doc(
        "mutations.gatekeeper.sh/v1",
        "Assign",
        {"parameters": {"assign": {"value": {"containers": [{"name": "s", "image": "busybox"}]}}}},
    ),
    "crossplane-composition": _doc(
        "apiextensions.crossplane.io/v1",
        "Composition",
        {
            "resources": [
                {"base": {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": _template()}}}
            ]
        },
    ),
    "openshift-template": {
        "apiVersion": "template.openshift.io/v1",
        "kind": "Template",
        "metadata": {"name": "t"},
        "objects": [{"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": _template()}}],
    },
    "flux-helmrelease-values": _doc(
        "helm.toolkit.fluxcd.io/v2",
        "HelmRelease",
        {"values": {"sidecars": [{"name": "s", "image": "busybox"}]}},
    ),
    "argocd-application-values": _doc(
        "argoproj.io/v1alpha1",
        "Application",
        {"source": {"helm": {"valuesObject": {"spec": {"template": _template()}}}}},
    ),
    "admission-policy": _doc(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        {"template": {"spec": {"containers": [PRIVILEGED]}}},
    ),
}


@pytest.mark.parametrize("name", sorted(DESCRIBES_OTHERS))
def test_objects_that_describe_other_objects_are_not_named(tmp_path: Path, name: str) -> None:
    doc = DESCRIBES_OTHERS[name]
    assert kinds.pod_sites(doc), "the walk itself would find containers here"
    assert _findings(Config.default(), tmp_path, doc) == []


# ---------------------------------------------------------------------------------------------------
# Config.


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{group: argoproj.io/v1alpha1, kind: Rollout, podSpec: spec.template.spec}", "without a version"),
        ("{group: Example.COM, kind: W, podSpec: spec.template.spec}", "not an API group"),
        ("{group: example.com, kind: W, podSpec: 'spec.tasks[].template.spec'}", "podSpec: '*'"),
        ("{group: example.com, kind: W, podSpec: '*', podMetadata: spec.meta}", "remove podMetadata"),
    ],
)
def test_a_bad_workload_entry_is_refused_with_the_way_out(write: Write, entry: str, expected: str) -> None:
    path = write("t.yaml", HEAD + "workloads:\n  - " + entry + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = err.value.diagnostics()
    assert f"{path}:4" in message and expected in message, message


def test_an_exception_for_one_rollout_by_name_waives_only_it(tmp_path: Path, write: Write) -> None:
    config = load_config(
        write(
            "t.yaml",
            HEAD + "exceptions:\n  - name: legacy\n    rules: [pss-baseline-privileged]\n"
            "    kinds: [Rollout]\n    names: [legacy]\n    owner: a@example.com\n"
            "    reason: migrating\n    expires: '2099-12-31'\n",
        )
    )
    legacy, web = (
        {
            **_doc("argoproj.io/v1alpha1", "Rollout", {"template": _template()}),
            "metadata": {"name": n, "namespace": "s"},
        }
        for n in ("legacy", "web")
    )
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump_all([legacy, web]), "utf-8")
    with Gate(config=config) as gate:
        results = gate.check([str(manifest)]).results
    by_name = {r.name: {f.rule: f.severity for f in r.findings} for r in results}
    assert by_name["legacy"]["pss-baseline-privileged"] == Severity.INFO
    assert by_name["web"]["pss-baseline-privileged"] == Severity.ERROR


def test_a_template_however_deep_is_named(tmp_path: Path) -> None:
    node: dict[str, Any] = {"template": _template()}
    for _ in range(300):
        node = {"nested": node}
    found = _findings(Config.default(), tmp_path, _doc("example.com/v1", "Widget", node))
    assert [(rule, path.count("nested")) for rule, _, path in found] == [("undeclared-workload", 300)]
