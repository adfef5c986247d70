"""Gatekeeper templates with K8sNativeValidation (CEL) code through `check` and the config."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

TEMPLATE = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8smaxreplicas
spec:
  crd:
    spec:
      names:
        kind: K8sMaxReplicas
      validation:
        openAPIV3Schema:
          type: object
          properties:
            max: {type: integer}
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
            variables:
              - name: replicas
                expression: "has(variables.anyObject.spec.replicas) ? variables.anyObject.spec.replicas : 1"
            matchConditions:
              - name: not-paused
                expression: "!has(variables.anyObject.spec.paused) || !variables.anyObject.spec.paused"
            validations:
              - expression: "{cel}"
                messageExpression: >-
                  'at most ' + string(variables.params.max) + ' replicas, not ' + string(variables.replicas)
{rego}---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sMaxReplicas
metadata:
  name: at-most-three
spec:
  match:
    kinds: [{apiGroups: ["apps"], kinds: ["Deployment"]}]
  parameters:
    max: 3
"""
REGO = """\
        - engine: Rego
          source:
            rego: |
              package k8smaxreplicas
              violation[{"msg": msg}] {
                input.review.object.spec.replicas > input.parameters.max
                msg := sprintf("rego: at most %v replicas", [input.parameters.max])
              }
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 5
"""


def check(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(
        main, ["check", "--no-schemas", "--no-builtin", "-o", "json", *args], catch_exceptions=False
    )
    report = json.loads(result.stdout) if result.stdout.startswith("{") else None
    return result.exit_code, report, result.stderr


def findings(report: Any) -> list[dict[str, Any]]:
    return [f for r in report["results"] for f in r["findings"]]


def template(cel: str = "variables.replicas <= variables.params.max", rego: str = "") -> str:
    return TEMPLATE.replace("{cel}", cel).replace("{rego}", rego)


def test_a_cel_only_template_is_evaluated(write: Write) -> None:
    manifests = write("deploy.yaml", DEPLOYMENT)
    gk = write("gk/template.yaml", template())
    code, report, _ = check(str(manifests), "--gatekeeper", str(gk))
    assert code == 1
    [finding] = findings(report)
    assert finding["rule"] == "K8sMaxReplicas/at-most-three"
    assert finding["message"] == "at most 3 replicas, not 5"
    assert finding["source"] == "gatekeeper"

    paused = write("paused.yaml", DEPLOYMENT + "  paused: true\n")  # the matchCondition is false
    code, report, _ = check(str(paused), "--gatekeeper", str(gk))
    assert code == 0 and findings(report) == []


def test_a_false_match_condition_wins_over_one_that_errors(write: Write) -> None:
    errs = '              - name: errs\n                expression: "variables.anyObject.spec.missing == 1"\n'
    text = template().replace("            matchConditions:\n", "            matchConditions:\n" + errs)
    gk = write("gk/template.yaml", text)
    paused = write("paused.yaml", DEPLOYMENT + "  paused: true\n")  # errs errors, not-paused is false
    code, report, _ = check(str(paused), "--gatekeeper", str(gk))
    assert code == 0 and findings(report) == []
    code, report, _ = check(str(write("deploy.yaml", DEPLOYMENT)), "--gatekeeper", str(gk))
    assert code != 0  # none is false and one errored: the error stands
    assert "matchCondition 'errs' failed" in findings(report)[0]["message"]


def test_engine_choice_for_templates_with_rego_and_cel(write: Write) -> None:
    manifests = write("deploy.yaml", DEPLOYMENT)
    gk = write("gk/template.yaml", template(rego=REGO))
    _, report, _ = check(str(manifests), "--gatekeeper", str(gk))
    assert [f["message"] for f in findings(report)] == ["at most 3 replicas, not 5"]  # CEL, as Gatekeeper
    _, report, _ = check(str(manifests), "--gatekeeper", str(gk), "--gatekeeper-engine", "rego")
    assert [f["message"] for f in findings(report)] == ["rego: at most 3 replicas"]
    code, report, _ = check(str(manifests), "--gatekeeper", str(gk), "--gatekeeper-engine", "both")
    assert code == 1
    assert [f["message"] for f in findings(report)] == ["rego: at most 3 replicas"]  # they agree


def test_both_engines_disagreeing_is_an_error_finding(write: Write) -> None:
    manifests = write("deploy.yaml", DEPLOYMENT)
    gk = write("gk/template.yaml", template(cel="true", rego=REGO))
    code, report, _ = check(str(manifests), "--gatekeeper", str(gk), "--gatekeeper-engine", "both")
    assert code == 3
    disagreement = [f for f in findings(report) if f["rule"].endswith("/engine-disagreement")]
    assert [f["rule"] for f in disagreement] == ["K8sMaxReplicas/at-most-three/engine-disagreement"]
    assert "Rego denies, CEL allows" in disagreement[0]["message"]
    assert disagreement[0]["severity"] == "error"


def test_the_engine_in_the_config_file(write: Write) -> None:
    manifests = write("deploy.yaml", DEPLOYMENT)
    write("gk/template.yaml", template(rego=REGO))
    config = write(
        "trustgate.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n"
        "  gatekeeper:\n    paths: [gk/]\n    engine: cel\n",
    )
    _, report, _ = check(str(manifests), "--config", str(config))
    assert [f["message"] for f in findings(report)] == ["at most 3 replicas, not 5"]


def test_a_cel_error_names_the_template_file_field_and_column(write: Write) -> None:
    manifests = write("deploy.yaml", DEPLOYMENT)
    gk = write("gk/template.yaml", template(cel="variables.replicas <="))
    code, _, err = check(str(manifests), "--gatekeeper", str(gk))
    assert code == 3
    assert f"{gk}:1" in err
    assert "template k8smaxreplicas: spec.targets[0].code[0].source.validations[0].expression" in err
    assert "(line 1, column 22): Syntax error" in err


def test_an_unknown_engine_is_rejected_in_the_config_and_on_the_command_line(write: Write) -> None:
    manifests = write("deploy.yaml", DEPLOYMENT)
    config = write(
        "trustgate.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  gatekeeper:\n    engine: wasm\n",
    )
    code, _, err = check(str(manifests), "--config", str(config))
    assert code == 3
    assert "manifests.gatekeeper.engine: 'wasm' is not one of ['rego', 'cel', 'both']" in err
    code, _, err = check(str(manifests), "--gatekeeper-engine", "wasm")
    assert code == 2
    assert "'wasm' is not one of 'rego', 'cel', 'both'" in err


def test_cel_trustgate_cannot_evaluate_exactly_is_could_not_evaluate_not_a_pass(write: Write) -> None:
    """Under failurePolicy Ignore an evaluation error passes; a value trustgate cannot give as
    the API server does (here `%f`, printed there through a locale printer) must not."""
    cel = "'%.1f'.format([double(variables.replicas)]) == '5.0'"
    text = template(cel).replace(
        "          source:\n", "          source:\n            failurePolicy: Ignore\n", 1
    )
    gk = write("gk/template.yaml", text)
    code, report, _ = check(str(write("deploy.yaml", DEPLOYMENT)), "--gatekeeper", str(gk))
    assert code == 3
    assert any("cannot be evaluated as the API server does it" in f["message"] for f in findings(report))
