"""The Gatekeeper port of the Pod Security sets (`builtin:pss-baseline`, `builtin:pss-restricted`)
on custom workloads: the kinds whose pod spec sits at a fixed path are matched by the constraints
themselves; the pod templates of the kinds that keep them inside lists or maps, and of the kinds
declared under `workloads`, are handed to the constraints of templates annotated
`trustgate.dev/pod-templates: judge`, at their real paths; a custom resource of a kind nobody
declared that carries containers is named, as the Rego sets name it."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from trustgate import kinds
from trustgate.config import Config, GatekeeperSettings, KubernetesSettings, builtin_policy_dir
from trustgate.gate import Gate
from trustgate.model import Severity

GATEKEEPER = builtin_policy_dir() / "gatekeeper"
PRIVILEGED = {"name": "app", "image": "registry.example.com/app:1", "securityContext": {"privileged": True}}
PRIVILEGED_RULE = "K8sPSSPrivileged/pss-privileged"


def _config(*workloads: kinds.WorkloadKind, paths: tuple[Path, ...] | None = None) -> Config:
    return Config(
        policies=(),
        kubernetes=KubernetesSettings(schemas=False),
        gatekeeper=GatekeeperSettings(paths=paths or (GATEKEEPER / "pss-baseline",)),
        workloads=workloads,
    )


def _template(**metadata: Any) -> dict[str, Any]:
    return {"metadata": dict(metadata), "spec": {"containers": [copy.deepcopy(PRIVILEGED)]}}


def _doc(api_version: str, kind: str, spec: dict[str, Any], namespace: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": namespace},
        "spec": spec,
    }


def _findings(config: Config, tmp_path: Path, *docs: dict[str, Any]) -> list[tuple[str, Severity, str, int]]:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False), "utf-8")
    with Gate(config=config) as gate:
        decision = gate.check([str(manifest)])
    return [
        (f.rule, f.severity, ".".join(map(str, f.path)), f.line or 0)
        for r in decision.results
        for f in r.findings
        if f.source in ("gatekeeper", "engine")
    ]


# (document, the path of its privileged container)
CASES = {
    # pod spec at a fixed path other than spec.template.spec: read by the templates themselves
    "keda-scaledjob": (
        _doc("keda.sh/v1alpha1", "ScaledJob", {"jobTargetRef": {"template": _template()}}),
        "",
    ),
    "knative-revision": (
        _doc("serving.knative.dev/v1", "Revision", {"containers": [copy.deepcopy(PRIVILEGED)]}),
        "",
    ),
    "knative-service": (
        _doc("serving.knative.dev/v1", "Service", {"template": _template()}),
        "",
    ),
    # pod templates inside lists or maps: handed to the port at their paths
    "kubeflow-pytorchjob": (
        _doc("kubeflow.org/v1", "PyTorchJob", {"pytorchReplicaSpecs": {"Worker": {"template": _template()}}}),
        "spec.pytorchReplicaSpecs.Worker.template.spec.containers.0",
    ),
    "tekton-task-step": (
        _doc("tekton.dev/v1", "Task", {"steps": [{"name": "ok", "image": "alpine:3"}, PRIVILEGED]}),
        "spec.steps.1",
    ),
    "argo-workflow-container": (
        _doc("argoproj.io/v1alpha1", "Workflow", {"templates": [{"name": "m", "container": PRIVILEGED}]}),
        "spec.templates.0.container",
    ),
    "ray-worker-group": (
        _doc("ray.io/v1", "RayCluster", {"workerGroupSpecs": [{"groupName": "b", "template": _template()}]}),
        "spec.workerGroupSpecs.0.template.spec.containers.0",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_privileged_custom_workload_is_denied_by_the_port(tmp_path: Path, name: str) -> None:
    doc, path = CASES[name]
    found = _findings(_config(), tmp_path, doc)
    assert [(r, s, p) for r, s, p, _ in found if r == PRIVILEGED_RULE] == [
        (PRIVILEGED_RULE, Severity.ERROR, path)
    ], found
    assert all(not r.endswith("undeclared-workload") for r, _, _, _ in found)


UNNAMED = {"image": "registry.example.com/app:1", "securityContext": {"privileged": True}}


@pytest.mark.parametrize(
    ("doc", "path", "name"),
    [
        (
            _doc("argoproj.io/v1alpha1", "Workflow", {"templates": [{"name": "m", "script": UNNAMED}]}),
            "spec.templates.0.script",
            "main",
        ),
        (
            _doc("tekton.dev/v1", "Task", {"steps": [{"image": "alpine:3"}, UNNAMED]}),
            "spec.steps.1",
            "unnamed-1",
        ),
    ],
    ids=["argo-script", "tekton-step"],
)
def test_a_container_without_a_name_is_judged_under_its_controllers_name(
    tmp_path: Path, doc: dict[str, Any], path: str, name: str
) -> None:
    # Argo and Tekton name such containers themselves; a template's message reads the name.
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump(doc), "utf-8")
    with Gate(config=_config()) as gate:
        (result,) = gate.check([str(manifest)]).results
    (finding,) = [f for f in result.findings if f.rule == PRIVILEGED_RULE]
    assert ".".join(map(str, finding.path)) == path
    assert f"container <{name}> is privileged" in finding.message


def test_a_pod_template_found_elsewhere_points_at_its_line(tmp_path: Path) -> None:
    doc, _ = CASES["kubeflow-pytorchjob"]
    found = _findings(_config(), tmp_path, doc)
    text = (tmp_path / "m.yaml").read_text().splitlines()
    (line,) = [line for rule, _, _, line in found if rule == PRIVILEGED_RULE]
    assert text[line - 1].strip() == "- name: app", (line, text)


def test_pod_metadata_of_a_site_reaches_the_port(tmp_path: Path) -> None:
    key = "container.apparmor.security.beta.kubernetes.io/app"
    template = {
        "metadata": {"annotations": {key: "unconfined"}},
        "spec": {"containers": [{"name": "app", "image": "x"}]},
    }
    doc = _doc("kubeflow.org/v1", "PyTorchJob", {"pytorchReplicaSpecs": {"Master": {"template": template}}})
    rules = {r for r, _, _, _ in _findings(_config(), tmp_path, doc)}
    assert rules == {"K8sPSSAppArmor/pss-apparmor"}


PYTORCHJOB_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: pytorchjobs.kubeflow.org}
spec:
  group: kubeflow.org
  scope: Namespaced
  names: {kind: PyTorchJob, plural: pytorchjobs}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
"""


def test_the_port_respects_its_excluded_namespaces_for_sites(tmp_path: Path) -> None:
    spec = {"pytorchReplicaSpecs": {"W": {"template": _template()}}}
    doc = _doc("kubeflow.org/v1", "PyTorchJob", spec, "kube-system")
    crd = tmp_path / "crd.yaml"
    crd.write_text(PYTORCHJOB_CRD)
    config = dataclasses.replace(_config(), kubernetes=KubernetesSettings(schemas=False, crds=(crd,)))
    assert _findings(config, tmp_path, doc) == []
    # Its scope unknown, it may be cluster-scoped, where no namespace is excluded (fail closed).
    found = _findings(_config(), tmp_path, doc)
    assert [r for r, _, _, _ in found] == [PRIVILEGED_RULE]


def test_a_compliant_pod_template_found_elsewhere_passes(tmp_path: Path) -> None:
    container = {
        "name": "app",
        "image": "x",
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    doc = _doc("tekton.dev/v1", "Task", {"steps": [container]})
    both = _config(paths=(GATEKEEPER / "pss-baseline", GATEKEEPER / "pss-restricted"))
    assert _findings(both, tmp_path, doc) == []


def test_a_declared_workload_is_judged_at_its_pod_spec(tmp_path: Path) -> None:
    declared = kinds.WorkloadKind(
        "ci.example.com", "Runner", ("spec", "runner", "spec"), ("spec", "runner", "metadata"), batch=True
    )
    doc = _doc("ci.example.com/v1", "Runner", {"runner": _template()})
    found = _findings(_config(declared), tmp_path, doc)
    assert [(r, p) for r, _, p, _ in found] == [(PRIVILEGED_RULE, "spec.runner.spec.containers.0")]


def test_a_known_kind_declared_at_its_own_path_is_judged_once(tmp_path: Path) -> None:
    # Declared again (batch: true) at the path the port reads itself: not handed over twice.
    declared = kinds.WorkloadKind(
        "argoproj.io", "Rollout", ("spec", "template", "spec"), ("spec", "template", "metadata"), batch=True
    )
    doc = _doc("argoproj.io/v1alpha1", "Rollout", {"template": _template()})
    found = _findings(_config(declared), tmp_path, doc)
    assert [(r, p) for r, _, p, _ in found] == [(PRIVILEGED_RULE, "")]
    moved = kinds.WorkloadKind("argoproj.io", "Rollout", ("spec", "pod"), ("spec", "podMetadata"))
    doc = _doc("argoproj.io/v1alpha1", "Rollout", {"pod": _template()["spec"]})
    found = _findings(_config(moved), tmp_path, doc)
    assert [(r, p) for r, _, p, _ in found] == [(PRIVILEGED_RULE, "spec.pod.containers.0")]


def test_a_declared_anywhere_workload_is_judged_at_each_site(tmp_path: Path) -> None:
    declared = kinds.WorkloadKind("ci.example.com", "Fleet", ())
    doc = _doc(
        "ci.example.com/v1", "Fleet", {"groups": [{"pod": _template()["spec"]}, {"pod": _template()["spec"]}]}
    )
    found = _findings(_config(declared), tmp_path, doc)
    assert sorted(p for r, _, p, _ in found if r == PRIVILEGED_RULE) == [
        "spec.groups.0.pod.containers.0",
        "spec.groups.1.pod.containers.0",
    ]


def test_an_undeclared_custom_resource_with_containers_is_named_with_the_way_out(tmp_path: Path) -> None:
    doc = _doc("deploy.example.com/v1", "AppSet", {"template": _template()})
    found = _findings(_config(), tmp_path, doc)
    assert [(r, s, p) for r, s, p, _ in found] == [
        ("gatekeeper/undeclared-workload", Severity.ERROR, "spec.template.spec.containers")
    ]
    with Gate(config=_config()) as gate:
        (manifest,) = [tmp_path / "m.yaml"]
        (result,) = gate.check([str(manifest)]).results
    (finding,) = result.findings
    assert "workloads:" in finding.fix and "notWorkload: true" in finding.fix
    assert "AppSet" in finding.message and "Gatekeeper" in finding.message


def test_a_kind_declared_not_a_workload_passes(tmp_path: Path) -> None:
    declared = kinds.WorkloadKind("deploy.example.com", "AppSet", None)
    doc = _doc("deploy.example.com/v1", "AppSet", {"template": _template()})
    assert _findings(_config(declared), tmp_path, doc) == []


def test_constraints_of_templates_not_annotated_are_not_handed_pod_templates(tmp_path: Path) -> None:
    # A user's constraint on Pods judges Pods (and their resultants), not pod templates trustgate finds.
    template = tmp_path / "gk" / "template.yaml"
    template.parent.mkdir()
    template.write_text(
        """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sdenyall}
spec:
  crd: {spec: {names: {kind: K8sDenyAll}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sdenyall
        violation[{"msg": "denied"}] { true }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sDenyAll
metadata: {name: pods}
spec:
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod", "PodTemplate"]}]
"""
    )
    doc, _ = CASES["kubeflow-pytorchjob"]
    assert _findings(_config(paths=(template.parent,)), tmp_path, doc) == []


@pytest.mark.parametrize("value", ["true", "yes", ""])
def test_a_misspelt_pod_templates_annotation_is_refused(value: str) -> None:
    from trustgate.errors import PolicyError
    from trustgate.policy import gatekeeper

    text = (GATEKEEPER / "pss-baseline" / "privileged" / "template.yaml").read_text()
    obj = yaml.safe_load(text)
    obj["metadata"]["annotations"][gatekeeper.POD_TEMPLATES_ANNOTATION] = value
    with pytest.raises(PolicyError, match=r"trustgate\.dev/pod-templates") as raised:
        gatekeeper.parse_template(obj, file="template.yaml")
    assert 'set it to "judge"' in (raised.value.hint or "")
    del obj["metadata"]["annotations"][gatekeeper.POD_TEMPLATES_ANNOTATION]
    assert not gatekeeper.parse_template(obj, file="template.yaml").pod_templates
    obj["metadata"]["annotations"][gatekeeper.POD_TEMPLATES_ANNOTATION] = "judge"
    assert gatekeeper.parse_template(obj, file="template.yaml").pod_templates


def _own_constraint(tmp_path: Path, *kinds_matched: tuple[str, str]) -> Path:
    """The port's privileged template with a constraint of the user's that names only `kinds_matched`."""
    library = tmp_path / "gk-own"
    library.mkdir()
    template = GATEKEEPER / "pss-baseline" / "privileged" / "template.yaml"
    (library / "template.yaml").write_text(template.read_text(), "utf-8")
    match = [{"apiGroups": [group], "kinds": [kind]} for group, kind in kinds_matched]
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "K8sPSSPrivileged",
        "metadata": {"name": "ml-privileged"},
        "spec": {"match": {"kinds": match}},
    }
    (library / "constraint.yaml").write_text(yaml.safe_dump(constraint), "utf-8")
    return library


@pytest.mark.parametrize("name", ["kubeflow-pytorchjob", "tekton-task-step"])
def test_a_constraint_naming_the_workloads_own_kind_judges_its_pod_templates(
    tmp_path: Path, name: str
) -> None:
    # It matches the PyTorchJob, not PodTemplates: it read no pod spec in the one, and was never
    # handed the other, so a privileged PyTorchJob passed a constraint written for PyTorchJobs.
    doc, path = CASES[name]
    group = kinds.api_group(doc["apiVersion"])
    assert group is not None
    library = _own_constraint(tmp_path, (group, doc["kind"]))
    found = _findings(_config(paths=(library,)), tmp_path, doc)
    assert [(r, s, p) for r, s, p, _ in found] == [("K8sPSSPrivileged/ml-privileged", Severity.ERROR, path)]


def test_a_constraint_naming_an_undeclared_kind_names_it(tmp_path: Path) -> None:
    doc = _doc("deploy.example.com/v1", "AppSet", {"groups": [{"template": _template()}]})
    library = _own_constraint(tmp_path, ("deploy.example.com", "AppSet"))
    found = _findings(_config(paths=(library,)), tmp_path, doc)
    assert [(r, s, p) for r, s, p, _ in found] == [
        ("gatekeeper/undeclared-workload", Severity.ERROR, "spec.groups.0.template.spec.containers")
    ]


@pytest.mark.parametrize("matched", [("deploy.example.com", "AppSet"), None], ids=["its-kind", "every-kind"])
def test_a_declared_pod_spec_the_template_reads_itself_is_reported_once_at_its_container(
    tmp_path: Path, matched: tuple[str, str] | None
) -> None:
    # The port's templates read spec.template.spec of any kind their constraint matches: the
    # constraint found the privileged container there in the AppSet and again in the pod template
    # handed to it, two findings for one container (the first at no path).
    declared = kinds.WorkloadKind(
        "deploy.example.com", "AppSet", ("spec", "template", "spec"), ("spec", "template", "metadata")
    )
    library = _own_constraint(tmp_path, *([matched] if matched else []))
    if matched is None:  # a constraint without kinds matches every kind
        constraint = yaml.safe_load((library / "constraint.yaml").read_text())
        del constraint["spec"]["match"]
        (library / "constraint.yaml").write_text(yaml.safe_dump(constraint), "utf-8")
    doc = _doc("deploy.example.com/v1", "AppSet", {"template": _template()})
    found = _findings(_config(declared, paths=(library,)), tmp_path, doc)
    assert [(r, s, p) for r, s, p, _ in found] == [
        ("K8sPSSPrivileged/ml-privileged", Severity.ERROR, "spec.template.spec.containers.0")
    ]


def test_a_constraint_naming_another_kind_is_not_handed_the_pod_templates(tmp_path: Path) -> None:
    doc, _ = CASES["kubeflow-pytorchjob"]
    library = _own_constraint(tmp_path, ("tekton.dev", "Task"))
    assert _findings(_config(paths=(library,)), tmp_path, doc) == []
