"""Findings in a kustomization point at the source file and line, not the rendered output."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from trustgate.config import Config, PolicySource
from trustgate.gate import Gate
from trustgate.manifests import origins
from trustgate.model import DocumentResult

Write = Callable[[str, str], Path]

POLICY = """\
package main
import rego.v1

deny contains {"msg": "privileged", "rule": "no-privileged",
               "path": ["spec", "template", "spec", "containers", i, "securityContext", "privileged"]} if {
  some i, c in input.spec.template.spec.containers
  c.securityContext.privileged
}

deny contains {"msg": "too many replicas", "rule": "replicas", "path": ["spec", "replicas"]} if {
  input.spec.replicas > 2
}

deny contains {"msg": "origin annotation visible", "rule": "sees-origin"} if {
  input.metadata.annotations["config.kubernetes.io/origin"]
}
"""

BASE_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          securityContext:
            privileged: true
"""
PRIVILEGED_LINE = 16


@pytest.fixture
def app(write: Write, tmp_path: Path) -> Path:
    write("app/base/kustomization.yaml", "resources: [deploy.yaml]\n")
    write("app/base/deploy.yaml", BASE_DEPLOYMENT)
    write(
        "app/overlay/kustomization.yaml",
        "namespace: shop\nnamePrefix: prod-\nresources: [../base, cm.yaml]\npatches:\n  - path: patch.yaml\n",
    )
    write(
        "app/overlay/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"
    )
    write(
        "app/overlay/patch.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 3\n",
    )
    return tmp_path / "app"


def check(write: Write, path: Path) -> list[DocumentResult]:
    policy = write("policy/main.rego", POLICY).parent
    config = Config(policies=(PolicySource(path=policy),))
    return Gate(config=config, today=dt.date(2026, 6, 1)).check([str(path)]).results


def deployment(results: list[DocumentResult]) -> DocumentResult:
    (result,) = [r for r in results if r.kind == "Deployment"]
    return result


def test_a_finding_on_a_base_field_points_at_the_base_file_and_line(write: Write, app: Path) -> None:
    result = deployment(check(write, app / "overlay"))
    assert result.source.file == str(app / "base" / "deploy.yaml")
    assert (result.source.line, result.source.rendered_from) == (1, str(app / "overlay"))
    assert (result.namespace, result.name) == ("shop", "prod-web")  # evaluated as rendered
    finding = next(f for f in result.findings if f.rule == "no-privileged")
    assert finding.line == PRIVILEGED_LINE and finding.note == ""


def test_relative_input_gives_relative_source_paths(
    write: Write, app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(app)
    result = deployment(check(write, Path("overlay")))
    assert (result.source.file, result.source.rendered_from) == (
        os.path.join("base", "deploy.yaml"),
        "overlay",
    )


def test_a_patched_field_points_at_the_object_and_says_where_the_value_is(write: Write, app: Path) -> None:
    result = deployment(check(write, app / "overlay"))
    finding = next(f for f in result.findings if f.rule == "replicas")
    assert finding.line == 1  # the object's first line in base/deploy.yaml: the field is not there
    assert f"not in {app / 'base' / 'deploy.yaml'}" in finding.note
    assert f"kubectl kustomize {app / 'overlay'}" in finding.note
    assert "line " in finding.note


def test_policies_never_see_the_origin_annotation(write: Write, app: Path) -> None:
    results = check(write, app / "overlay")
    assert all(f.rule != "sees-origin" for r in results for f in r.findings)
    assert len(results) == 2 and all(r.source.file != str(app / "overlay") for r in results)


def test_the_users_files_are_left_alone(write: Write, app: Path) -> None:
    before = {p: p.read_bytes() for p in app.rglob("*") if p.is_file()}
    check(write, app / "overlay")
    assert {p: p.read_bytes() for p in app.rglob("*") if p.is_file()} == before


def test_without_origins_findings_point_at_the_rendered_output(
    write: Write, app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(origins.OriginRender, "origins", lambda self: None)
    result = deployment(check(write, app / "overlay"))
    assert result.source.file == str(app / "overlay") and result.source.rendered_from == str(app / "overlay")
    finding = next(f for f in result.findings if f.rule == "no-privileged")
    assert finding.line is not None and finding.line != PRIVILEGED_LINE and finding.note == ""


def test_a_component_directory_is_mapped_too(write: Write, tmp_path: Path) -> None:
    write(
        "comp/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [deploy.yaml]\n",
    )
    write("comp/deploy.yaml", BASE_DEPLOYMENT)
    result = deployment(check(write, tmp_path / "comp"))
    assert result.source.file == str(tmp_path / "comp" / "deploy.yaml")
    assert next(f for f in result.findings if f.rule == "no-privileged").line == PRIVILEGED_LINE


def test_a_missing_field_points_at_its_parent_in_the_source_even_when_a_sibling_was_changed(
    write: Write, app: Path
) -> None:
    write(
        "policy/main.rego",
        'package main\nimport rego.v1\n\ndeny contains {"msg": "no limits", "rule": "limits", '
        '"path": ["spec", "template", "spec", "containers", 0, "resources"]} if {\n'
        "  not input.spec.template.spec.containers[0].resources\n}\n",
    )
    kustomization = app / "overlay" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "images:\n  - {name: nginx, newTag: '1.28'}\n")
    policy = app.parent / "policy"
    config = Config(policies=(PolicySource(path=policy),))
    results = Gate(config=config, today=dt.date(2026, 6, 1)).check([str(app / "overlay")]).results
    finding = next(f for f in deployment(results).findings if f.rule == "limits")
    assert (finding.line, finding.note) == (13, "")  # `- name: web`, the container in base/deploy.yaml


def test_a_renamed_object_is_never_mapped_to_another_whose_name_it_merely_contains(
    write: Write, tmp_path: Path
) -> None:
    """A patch renames `a` to `xb`; `b` is in the same file. `b` is no whole part of `xb`: the renamed
    object keeps pointing at the rendered output, never at `b`'s lines."""
    two = (
        BASE_DEPLOYMENT.replace("name: web\n", "name: a\n", 1)
        + "---\n"
        + BASE_DEPLOYMENT.replace("name: web\n", "name: b\n", 1)
    )
    write("app/deploys.yaml", two)
    write(
        "app/kustomization.yaml",
        "resources: [deploys.yaml]\npatches:\n- target: {kind: Deployment, name: a}\n  patch: |-\n"
        "    - op: replace\n      path: /metadata/name\n      value: xb\n",
    )
    results = check(write, tmp_path / "app")
    by_name = {r.name: r for r in results if r.kind == "Deployment"}
    assert by_name["b"].source.file == str(tmp_path / "app" / "deploys.yaml")
    assert by_name["b"].source.line == BASE_DEPLOYMENT.count("\n") + 2
    assert by_name["xb"].source.file == str(tmp_path / "app")  # the rendered output


@pytest.mark.parametrize(
    ("name", "rendered", "whole"),
    [
        ("web", "prod-web-v2", True),
        ("web", "prod-web", True),
        ("web", "web.v2", True),
        ("b", "xb", False),
        ("web", "webapp", False),
        ("web", "xwebx-web", True),
    ],
)
def test_a_name_is_found_as_a_whole_part_of_a_rendered_name(name: str, rendered: str, whole: bool) -> None:
    assert origins._whole_part(name, rendered) is whole
