"""CRD `x-kubernetes-validations`: compiled once, evaluated per value, through SchemaSet and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from trustgate.cli.main import main
from trustgate.errors import ConfigError
from trustgate.policy import crd_cel
from trustgate.policy.schema import SchemaSet

Write = Callable[[str, str], Path]

# The Kubernetes documentation's validation-rules example, with a list and a map added.
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
              - rule: "self.minReplicas <= self.replicas"
                message: "replicas should be greater than or equal to minReplicas."
              - rule: "self.replicas <= self.maxReplicas"
                messageExpression: "'replicas must be at most ' + string(self.maxReplicas)"
                fieldPath: ".replicas"
              - rule: "self.replicas == oldSelf.replicas"
                message: "a transition rule: updates only"
            properties:
              replicas: {type: integer}
              minReplicas: {type: integer}
              maxReplicas: {type: integer}
              ports:
                type: array
                items:
                  type: integer
                  x-kubernetes-validations:
                    - rule: "self > 0 && self < 65536"
                      message: "not a port"
              limits:
                type: object
                additionalProperties:
                  type: string
                  x-kubernetes-validations:
                    - rule: "isQuantity(self)"
                      messageExpression: "'not a quantity: ' + self"
"""


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def schemas(text: str = CRD) -> SchemaSet:
    return SchemaSet(version="1.35", strict=True, crds=[yaml.safe_load(text)])


def test_rules_report_each_failing_value_with_its_path() -> None:
    found = schemas().validate(
        widget(replicas=7, minReplicas=8, maxReplicas=5, ports=[80, 0], limits={"a": "x"})
    )
    assert sorted((v.rule, v.path, v.message) for v in found) == [
        ("schema-cel", ("spec",), "replicas should be greater than or equal to minReplicas."),
        ("schema-cel", ("spec", "limits", "a"), "not a quantity: x"),
        ("schema-cel", ("spec", "ports", 1), "not a port"),
        ("schema-cel", ("spec", "replicas"), "replicas must be at most 5"),
    ]
    assert schemas().validate(widget(replicas=3, minReplicas=1, maxReplicas=5, ports=[443])) == []


def test_an_absent_value_is_not_validated_and_errors_are_reported() -> None:
    assert (
        schemas().validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
        == []
    )
    [error] = schemas().validate(widget(replicas=3, maxReplicas=5))  # no minReplicas
    assert "rule 'self.minReplicas <= self.replicas' failed" in error.message


def test_a_rule_that_does_not_compile_is_a_config_error() -> None:
    broken = CRD.replace('rule: "self > 0 && self < 65536"', 'rule: "self >"')
    with pytest.raises(
        ConfigError,
        match=r"Widget v1: x-kubernetes-validations\[0\] at spec.ports\[\*\]: rule "
        r"\(line 1, column 7\): Syntax error",
    ):
        schemas(broken)


DEFAULTED = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "!has(self.exposure) || self.exposure != 'public' || self.tls"
              message: "public widgets need TLS"
            - rule: "self.replicas <= self.maxReplicas"
            properties:
              exposure: {type: string, default: public}
              tls: {type: boolean, default: false}
              replicas: {type: integer}
              maxReplicas: {type: integer, default: 20}
              ports:
                type: array
                items:
                  type: object
                  properties:
                    port: {type: integer, maximum: 100, default: 8080}
          status:
            type: object
            properties:
              phase: {type: string, default: New}
            x-kubernetes-validations:
            - rule: "false"
"""


def test_defaults_are_applied_before_rules_and_schema_as_the_api_server_does() -> None:
    found = schemas(DEFAULTED).validate(widget(replicas=3, maxReplicas=5, tls=False))
    assert [(v.rule, v.message) for v in found] == [("schema-cel", "public widgets need TLS")]
    assert schemas(DEFAULTED).validate(widget(replicas=3, tls=True)) == []  # maxReplicas defaults to 20
    [too_many] = schemas(DEFAULTED).validate(widget(replicas=30, tls=True))
    assert too_many.message == "failed rule: self.replicas <= self.maxReplicas"
    [port] = schemas(DEFAULTED).validate(widget(replicas=1, tls=True, ports=[{}]))  # defaulted in items
    assert (port.rule, port.path) == ("schema-invalid", ("spec", "ports", 0, "port"))


def test_defaulting_creates_no_absent_object_and_leaves_the_input_alone() -> None:
    obj = widget(replicas=3, tls=True)
    assert schemas(DEFAULTED).validate(obj) == []  # no status: its default and rule do not apply
    assert obj["spec"] == {"replicas": 3, "tls": True}


def test_transition_rules_are_skipped_on_create() -> None:
    rules = crd_cel.compile_rules(yaml.safe_load(CRD)["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    assert [r.program.source for r in rules if r.where == "spec"] == [
        "self.minReplicas <= self.replicas",
        "self.replicas <= self.maxReplicas",
    ]


def test_check_with_crd_reports_rule_findings(write: Write) -> None:
    crd = write("crd.yaml", CRD)
    manifest = write("w.yaml", yaml.safe_dump(widget(replicas=9, minReplicas=1, maxReplicas=5)))
    result = CliRunner().invoke(
        main,
        ["check", "--no-builtin", "--crd", str(crd), "-o", "json", str(manifest)],
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    [finding] = [f for r in report["results"] for f in r["findings"]]
    assert (finding["rule"], finding["message"], finding["path"]) == (
        "schema-cel",
        "replicas must be at most 5",
        "spec.replicas",
    )
