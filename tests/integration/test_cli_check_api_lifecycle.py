"""Removed and deprecated built-in APIs, judged against the target Kubernetes version."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

INGRESS_V1BETA1 = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: web}
spec:
  backend: {serviceName: web, servicePort: 80}
"""
PSP = """\
apiVersion: policy/v1beta1
kind: PodSecurityPolicy
metadata: {name: restricted}
spec:
  privileged: false
  seLinux: {rule: RunAsAny}
  runAsUser: {rule: MustRunAsNonRoot}
  supplementalGroups: {rule: RunAsAny}
  fsGroup: {rule: RunAsAny}
"""
HPA_V2BETA2 = """\
apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 3
"""
FLOWSCHEMA_V1BETA3 = """\
apiVersion: flowcontrol.apiserver.k8s.io/v1beta3
kind: FlowSchema
metadata: {name: fs}
spec:
  priorityLevelConfiguration: {name: global-default}
"""
INGRESS_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: ingresses.extensions}
spec:
  group: extensions
  names: {kind: Ingress, plural: ingresses}
  scope: Namespaced
  versions:
    - name: v1beta1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""


def check(path: Path, version: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        main,
        ["check", "--no-builtin", "--kubernetes-version", version, "-o", "json", *extra, str(path)],
        catch_exceptions=False,
    )
    return result.exit_code, json.loads(result.stdout)


def findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    (result,) = report["results"]
    found: list[dict[str, Any]] = result["findings"]
    return found


def test_removed_ingress_blocks_with_version_and_replacement(write: Write) -> None:
    code, report = check(write("ingress.yaml", INGRESS_V1BETA1), "1.33")
    assert code == 1
    (finding,) = findings(report)
    assert finding["rule"] == "schema-removed-api" and finding["severity"] == "error"
    assert finding["message"].startswith(
        "extensions/v1beta1 Ingress was removed in Kubernetes 1.22; use networking.k8s.io/v1 Ingress"
    )
    assert finding["line"] == 1 and finding["path"] == "apiVersion"


def test_removed_api_in_warn_and_audit_mode(write: Write) -> None:
    path = write("ingress.yaml", INGRESS_V1BETA1)
    code, report = check(path, "1.33", "--mode", "warn")
    assert code == 0 and findings(report)[0]["severity"] == "warning"
    code, report = check(path, "1.33", "--mode", "audit")
    assert code == 0 and findings(report)[0]["severity"] == "info"


def test_psp_is_removed_in_1_25(write: Write) -> None:
    code, report = check(write("psp.yaml", PSP), "1.25")
    assert code == 1
    (finding,) = findings(report)
    assert finding["rule"] == "schema-removed-api"
    assert "policy/v1beta1 PodSecurityPolicy was removed in Kubernetes 1.25" in finding["message"]
    assert "Pod Security Admission" in finding["message"]


def test_deprecated_but_served_api_only_warns(write: Write) -> None:
    code, report = check(write("hpa.yaml", HPA_V2BETA2), "1.25")
    assert code == 0
    (finding,) = findings(report)
    assert (finding["rule"], finding["severity"]) == ("schema-deprecated-api", "warning")
    assert "deprecated since Kubernetes 1.23 and is removed in 1.26" in finding["message"]
    assert "autoscaling/v2 HorizontalPodAutoscaler" in finding["message"]
    code, report = check(write("hpa.yaml", HPA_V2BETA2), "1.26")
    assert code == 1 and findings(report)[0]["rule"] == "schema-removed-api"


def test_api_before_its_deprecation_passes_then_warns_then_blocks(write: Write) -> None:
    path = write("fs.yaml", FLOWSCHEMA_V1BETA3)
    code, report = check(path, "1.28")
    assert code == 0 and findings(report) == []
    code, report = check(path, "1.29")
    assert code == 0 and [f["rule"] for f in findings(report)] == ["schema-deprecated-api"]
    code, report = check(path, "1.32")
    assert code == 1 and "removed in Kubernetes 1.32" in findings(report)[0]["message"]


def test_a_crd_for_a_removed_built_in_group_is_refused(write: Write) -> None:
    """The API server refuses a CRD whose group has no dot: no cluster serves extensions/v1beta1
    Ingress from one, so it cannot make the removed API valid."""
    crd = write("crds/ingress.yaml", INGRESS_CRD)
    result = CliRunner().invoke(
        main,
        [
            "check",
            "--no-builtin",
            "--kubernetes-version",
            "1.33",
            "--crd",
            str(crd),
            str(write("i.yaml", INGRESS_V1BETA1)),
        ],
    )
    assert result.exit_code == 3  # as for any CRD trustgate cannot use
    assert "spec.group 'extensions' has no dot" in result.output and "ingress.yaml" in result.output


def test_unknown_custom_kinds_keep_the_no_schema_note(write: Write) -> None:
    code, report = check(
        write("w.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"), "1.33"
    )
    assert code == 0
    (finding,) = findings(report)
    assert (finding["rule"], finding["severity"]) == ("schema-missing", "info")
    assert "add the CRD" in finding["fix"]
