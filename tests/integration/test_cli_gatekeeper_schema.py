"""A template's parameter schema through the CLI: a Go pattern works in `check` and `policy test`,
a schema the API server refuses is exit 3 naming the template file, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.gatekeeper import K8SX_SCHEMA_HEAD

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

TEMPLATE = (
    K8SX_SCHEMA_HEAD
    + """\
            a: {a}
            b: {{type: string, pattern: "^\\\\p{{L}}+$"}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8sx
      violation[{{"msg": "x"}}] {{ true }}
"""
)
CONSTRAINT = (
    "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sX\nmetadata: {name: c}\n"
    'spec:\n  parameters: {a: "1", b: "x"}\n'
)
POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\n"
    "spec:\n  containers: [{name: c, image: nginx}]\n"
)
SUITE = """\
kind: Suite
apiVersion: test.gatekeeper.sh/v1alpha1
tests:
- name: t
  template: t.yaml
  constraint: c.yaml
  cases:
  - name: a
    object: pod.yaml
    assertions:
    - violations: yes
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def suite(write: Write, a: str) -> Path:
    write("gk/t.yaml", TEMPLATE.format(a=a))
    write("gk/c.yaml", CONSTRAINT)
    write("gk/pod.yaml", POD)
    return write("gk/suite.yaml", SUITE).parent


def test_a_unicode_class_pattern_is_evaluated_in_check_and_policy_test(write: Write) -> None:
    gk = suite(write, "{type: string}")
    code, out, err = run(
        "check", str(gk / "pod.yaml"), "--no-builtin", "--no-schemas", "--gatekeeper", str(gk)
    )
    assert code == 1 and "K8sX/c" in out and "Traceback" not in err
    code, out, _ = run("policy", "test", str(gk))
    assert code == 0 and "cases: 1 passed, 0 failed" in out


@pytest.mark.parametrize("a", ["{type: foo}", '{type: string, pattern: "(?=x)"}'])
def test_a_schema_the_api_server_refuses_is_exit_3_naming_the_template(write: Write, a: str) -> None:
    gk = suite(write, a)
    code, _, err = run("check", str(gk / "pod.yaml"), "--no-builtin", "--no-schemas", "--gatekeeper", str(gk))
    assert code == 3
    assert f"{gk / 't.yaml'}:1: template k8sx: spec.crd.spec.validation.openAPIV3Schema.properties.a." in err
    assert "the API server refuses a CustomResourceDefinition" in err
    code, out, _ = run("policy", "test", str(gk))
    assert code == 3
    assert "spec.crd.spec.validation.openAPIV3Schema.properties.a." in out and "FAIL\t" in out
