"""What `trustgate webhook-config` says it does not send: same-named custom kinds of other groups,
`admission.resources: []` beside the user's own Rego; and `admission.resources` entries that would
send nothing are refused with a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from trustgate.cli.main import main
from trustgate.config import load_config
from trustgate.errors import ConfigError

TEMPLATE = """apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8srequiredowner}
spec:
  crd:
    spec:
      names: {kind: K8sRequiredOwner}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8srequiredowner
        violation[{"msg": "needs an owner"}] {
          not input.review.object.metadata.labels.owner
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredOwner
metadata: {name: owners}
spec:
  match:
    kinds: [{apiGroups: ["*"], kinds: [Deployment]}]
"""
DEPLOYS_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: deploys.example.com}
spec:
  group: example.com
  names: {kind: Deployment, plural: deploys, singular: deploy}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true}]
"""
OWN_REGO = """package main

deny contains msg if {
\tinput.kind == "Service"
\tmsg := "no Services"
}
"""


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["webhook-config", *args])


def _sent(result: Result) -> set[tuple[str, str]]:
    assert result.exit_code == 0, result.stderr
    hook: dict[str, Any] = yaml.safe_load(result.stdout)["webhooks"][0]
    return {
        (g, r)
        for rule in hook["rules"]
        if "CREATE" in rule["operations"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }


def _file(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def test_a_built_in_kind_in_any_group_sends_the_given_crds_of_that_kind_too(tmp_path: Path) -> None:
    library = _file(tmp_path, "gatekeeper.yaml", TEMPLATE)
    crd = _file(tmp_path, "crd.yaml", DEPLOYS_CRD)
    result = _run("--no-builtin", "--gatekeeper", library, "--crd", crd)
    assert _sent(result) == {("*", "deployments"), ("example.com", "deploys")}
    assert "note:" not in result.stderr


def test_without_crds_the_same_named_kinds_of_other_groups_are_said_not_sent(tmp_path: Path) -> None:
    library = _file(tmp_path, "gatekeeper.yaml", TEMPLATE)
    result = _run("--no-builtin", "--gatekeeper", library)
    assert _sent(result) == {("*", "deployments")}  # not refused: every constraint on Deployments would be
    text = " ".join(result.stderr.split())
    assert "trustgate: note:" in text and "Deployment" in text and "--crd" in text
    assert "admission.resources" in text


def test_an_empty_admission_resources_beside_own_rego_is_taken_with_a_note(tmp_path: Path) -> None:
    rego = _file(tmp_path, "own.rego", OWN_REGO)
    config = _file(
        tmp_path,
        "trustgate.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nadmission:\n  resources: []\n",
    )
    result = _run("-c", config, "-p", rego)
    assert ("", "services") not in _sent(result)
    text = " ".join(result.stderr.split())
    assert "trustgate: note:" in text and "admission.resources is []" in text and rego in text
    assert "only the workloads" in text
    plain = _run("-c", config)  # no Rego of its own: nothing to say
    assert _sent(plain) and "note:" not in plain.stderr


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("policy/evictions", "pods/eviction subresource"),
        ("*/evictions", "pods/eviction subresource"),
        ("metrics.k8s.io/pods", "aggregated API server"),
        ("metrics.k8s.io/*", "aggregated API server"),
        ("custom.metrics.k8s.io/*", "aggregated API server"),
        ("pods.metrics.k8s.io", "aggregated API server"),
        ("*/tokenreviews", "never sent"),
        ("*/subjectaccessreviews", "never sent"),
        ("componentstatuses", "read-only"),
        ("Deployment.apps", "apps/deployments"),
    ],
)
def test_admission_resources_that_send_nothing_are_refused_with_the_reason(
    tmp_path: Path, entry: str, says: str
) -> None:
    path = _file(
        tmp_path,
        "trustgate.yaml",
        f"apiVersion: trustgate.dev/v1alpha1\nkind: Config\nadmission:\n  resources:\n    - {entry!r}\n",
    )
    with pytest.raises(ConfigError) as bad:
        load_config(Path(path))
    text = bad.value.diagnostics()
    assert f"{path}:5" in text and "admission.resources[0]" in text and says in text
    assert "apps/Deployment" not in text


def test_before_1_21_the_namespaces_to_label_are_named_with_the_commands(tmp_path: Path) -> None:
    # A 1.20 API server sets no kubernetes.io/metadata.name label: trustgate's own Deployment was
    # sent to the (not yet running) webhook and refused, and kube-system failed closed with it.
    result = _run("--kubernetes-version", "1.20")
    assert result.exit_code == 0, result.stderr
    selector = yaml.safe_load(result.stdout)["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]
    assert selector["values"][:2] == ["kube-system", "trustgate"]
    text = " ".join(result.stderr.split())
    assert "trustgate: warning: Kubernetes 1.20 sets no kubernetes.io/metadata.name label" in text
    for name in selector["values"]:
        assert f"kubectl label namespace {name} kubernetes.io/metadata.name={name}" in text
    for version in ("1.21", "1.28"):
        later = _run("--kubernetes-version", version)
        assert later.exit_code == 0 and "warning" not in later.stderr
