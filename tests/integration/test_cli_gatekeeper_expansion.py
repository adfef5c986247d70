"""Gatekeeper as the cluster runs it: ExpansionTemplates, what cannot be evaluated, library directories."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from trustgate.cli.main import main
from trustgate.config import AdmissionSettings, Config, GatekeeperSettings, KubernetesSettings
from trustgate.gate import Gate
from trustgate.server import admission

Write = Callable[[str, str], Path]
LIBRARY = Path(__file__).parent.parent / "conformance" / "gatekeeper-library"

# A Pod-only constraint, as in Gatekeeper's pod-security-policy library.
PRIVILEGED = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8snoprivileged
spec:
  crd:
    spec:
      names:
        kind: K8sNoPrivileged
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8snoprivileged

        violation[{"msg": msg}] {
          c := input.review.object.spec.containers[_]
          c.securityContext.privileged
          msg := sprintf("Privileged container is not allowed: %v, securityContext: %v",
            [c.name, c.securityContext])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sNoPrivileged
metadata:
  name: no-privileged
spec:
  match:
    kinds:
      - apiGroups: [""]
        kinds: ["Pod"]
"""

EXPANSIONS = """\
apiVersion: expansion.gatekeeper.sh/v1beta1
kind: ExpansionTemplate
metadata:
  name: expand-deployments
spec:
  applyTo:
    - groups: ["apps"]
      kinds: ["DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"]
      versions: ["v1"]
    - groups: ["batch"]
      kinds: ["Job"]
      versions: ["v1"]
  templateSource: "spec.template"
  generatedGVK:
    kind: "Pod"
    group: ""
    version: "v1"
---
apiVersion: expansion.gatekeeper.sh/v1alpha1
kind: ExpansionTemplate
metadata:
  name: expand-cronjobs
spec:
  applyTo:
    - groups: ["batch"]
      kinds: ["CronJob"]
      versions: ["v1"]
  templateSource: "spec.jobTemplate"
  generatedGVK:
    kind: "Job"
    group: "batch"
    version: "v1"
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: sidecar
          image: registry.example.com/sidecar:1
        - name: nginx
          image: registry.example.com/nginx:1
          securityContext:
            privileged: true
"""

CRONJOB = """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: shop
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: backup
              image: registry.example.com/backup:1
              securityContext: {privileged: true}
"""

CEL_ONLY = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8scelonly
spec:
  crd:
    spec:
      names:
        kind: K8sCelOnly
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
            validations:
              - expression: "object.spec.replicas <= 3"
                message: "too many replicas"
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sCelOnly
metadata:
  name: few-replicas
spec:
  match:
    kinds:
      - apiGroups: ["apps"]
        kinds: ["{kind}"]
"""

KYVERNO = """\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: disallow-privileged-containers
spec:
  validationFailureAction: Enforce
  rules:
    - name: privileged-containers
      match:
        any:
          - resources: {kinds: [Pod]}
      validate:
        message: Privileged mode is disallowed.
        pattern:
          spec:
            containers:
              - =(securityContext):
                  =(privileged): "false"
"""


def check(*args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(
        main, ["check", *args, "--no-builtin", "--no-schemas", "-o", "json"], catch_exceptions=False
    )
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}, result.stderr


def findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for r in report["results"] for f in r["findings"]]


def test_privileged_deployment_is_denied_through_an_expansion_template(write: Write) -> None:
    deployment = write("deploy/web.yaml", DEPLOYMENT)
    write("gk/privileged.yaml", PRIVILEGED)
    code, report, _ = check(str(deployment), "--gatekeeper", str(write("gk-only/p.yaml", PRIVILEGED)))
    assert code == 0 and not findings(report)  # the constraint matches Pods only
    write("gk/expansion.yaml", EXPANSIONS)
    code, report, _ = check(str(deployment), "--gatekeeper", str(deployment.parent.parent / "gk"))
    assert code == 1
    [result] = report["results"]
    assert result["file"] == str(deployment) and result["kind"] == "Deployment"
    [finding] = result["findings"]
    assert finding["rule"] == "K8sNoPrivileged/no-privileged"
    assert finding["message"].startswith(
        "[Implied by expand-deployments] Privileged container is not allowed: nginx"
    )
    assert finding["path"] == "spec.template.spec.containers[1]"
    assert finding["line"] == DEPLOYMENT.splitlines().index("        - name: nginx") + 1


def test_cronjob_is_judged_through_two_expansion_templates(write: Write) -> None:
    cronjob = write("deploy/nightly.yaml", CRONJOB)
    write("gk/privileged.yaml", PRIVILEGED)
    write("gk/expansion.yaml", EXPANSIONS)
    code, report, _ = check(str(cronjob), "--gatekeeper", str(cronjob.parent.parent / "gk"))
    assert code == 1
    [finding] = findings(report)
    # CronJob -> Job (expand-cronjobs) -> Pod (expand-deployments): the Pod's template reports.
    assert finding["message"].startswith("[Implied by expand-deployments] Privileged container")
    assert finding["path"] == "spec.jobTemplate.spec.template.spec.containers[0]"
    assert finding["line"] == CRONJOB.splitlines().index("            - name: backup") + 1
    assert report["results"][0]["file"] == str(cronjob)


def test_expansion_enforcement_action_overrides_the_constraint(write: Write) -> None:
    cronjob = write("deploy/nightly.yaml", CRONJOB)
    write("gk/privileged.yaml", PRIVILEGED)
    write(
        "gk/expansion.yaml",
        EXPANSIONS.replace(
            '  templateSource: "spec.template"\n',
            '  templateSource: "spec.template"\n  enforcementAction: warn\n',
        ),
    )
    code, report, _ = check(str(cronjob), "--gatekeeper", str(cronjob.parent.parent / "gk"))
    assert code == 0
    [finding] = findings(report)
    assert finding["severity"] == "warning" and finding["message"].startswith(
        "[Implied by expand-deployments]"
    )


# An engine trustgate has no evaluator for (CEL-only templates are evaluated: test_cli_gatekeeper_cel.py).
OTHER_ENGINE = CEL_ONLY.replace("K8sNativeValidation", "Wasm")


def test_template_of_another_engine_whose_constraint_matches_cannot_be_evaluated(write: Write) -> None:
    deployment = write("deploy/web.yaml", DEPLOYMENT)
    gk = write("gk/cel.yaml", OTHER_ENGINE.replace("{kind}", "Deployment"))
    code, report, _ = check(str(deployment), "--gatekeeper", str(gk))
    assert code == 3
    [finding] = findings(report)
    assert finding["rule"] == "K8sCelOnly/few-replicas" and finding["severity"] == "error"
    assert "k8scelonly" in finding["message"] and str(gk) in finding["message"]
    assert "Wasm" in finding["message"]

    code, report, _ = check(str(deployment), "--gatekeeper", str(gk), "--skip-unsupported")
    assert code == 0
    [finding] = findings(report)
    assert finding["severity"] == "info"
    assert any("k8scelonly" in n and "not supported" in n for n in report["notes"])

    # Not matching any checked document, it does not fail the run; a note says it is not evaluated.
    gk.write_text(OTHER_ENGINE.replace("{kind}", "StatefulSet"))
    code, report, _ = check(str(deployment), "--gatekeeper", str(gk))
    assert code == 0 and not findings(report)
    assert any("k8scelonly" in n and "few-replicas" in n and "not evaluated" in n for n in report["notes"])


def test_skip_unsupported_in_the_config_file(write: Write) -> None:
    deployment = write("deploy/web.yaml", DEPLOYMENT)
    write("gk/cel.yaml", OTHER_ENGINE.replace("{kind}", "Deployment"))
    config = write(
        "trustgate.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n"
        "  gatekeeper:\n    paths: [gk/]\n    skipUnsupported: true\n",
    )
    code, _, _ = check(str(deployment), "--config", str(config))
    assert code == 0


def test_kyverno_policy_given_as_gatekeeper_cannot_be_evaluated(write: Write) -> None:
    deployment = write("deploy/web.yaml", DEPLOYMENT)
    policy = write("kyverno/privileged.yaml", KYVERNO)
    code, report, _ = check(str(deployment), "--gatekeeper", str(policy))
    assert code == 3
    unsupported = [r for r in report["results"] if r["kind"] == "ClusterPolicy"]
    assert [(r["file"], r["line"], r["status"]) for r in unsupported] == [(str(policy), 1, "error")]
    assert "Kyverno" in unsupported[0]["findings"][0]["message"]
    assert "disallow-privileged-containers" in unsupported[0]["findings"][0]["message"]

    code, report, _ = check(str(deployment), "--gatekeeper", str(policy), "--skip-unsupported")
    assert code == 0
    assert any("ClusterPolicy" in n and "skipped" in n for n in report["notes"])


def test_no_gatekeeper_policy_at_all_cannot_be_evaluated(write: Write) -> None:
    deployment = write("deploy/web.yaml", DEPLOYMENT)
    code, report, _ = check(str(deployment), "--gatekeeper", str(deployment.parent))
    assert code == 3
    assert any("no Gatekeeper ConstraintTemplates or constraints" in f["message"] for f in findings(report))


def test_library_directory_with_kustomizations_loads(write: Write) -> None:
    assert list((LIBRARY / "pod-security-policy").rglob("kustomization.yaml"))
    pod = write(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  hostPID: true\n"
        "  containers: [{name: c, image: registry.example.com/c:1}]\n",
    )
    code, report, stderr = check(str(pod), "--gatekeeper", str(LIBRARY / "pod-security-policy"))
    assert code == 1, stderr
    rules = {f["rule"] for f in findings(report)}
    assert "K8sPSPHostNamespace/psp-host-namespace" in rules
    assert any("7 non-Kubernetes document" in n for n in report["notes"])  # the kustomization.yaml files


def test_general_library_directory_loads(write: Write) -> None:
    pod = write(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n"
        "  containers: [{name: c, image: registry.example.com/c:1}]\n",
    )
    code, report, stderr = check(str(pod), "--gatekeeper", str(LIBRARY / "general"))
    assert code in (0, 1), stderr
    assert report["results"][0]["findings"]  # the library's sample constraints apply to the Pod
    assert any("is defined more than once" in n for n in report["notes"])


def test_the_webhook_denies_the_deployment_through_the_same_expansion(write: Write) -> None:
    write("gk/privileged.yaml", PRIVILEGED)
    gk_dir = write("gk/expansion.yaml", EXPANSIONS).parent
    config = Config(
        policies=(),
        kubernetes=KubernetesSettings(schemas=False),
        gatekeeper=GatekeeperSettings(paths=(gk_dir,)),
    )
    obj = yaml.safe_load(DEPLOYMENT)
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "namespace": "shop",
            "name": "web",
            "operation": "CREATE",
            "object": obj,
        },
    }
    review = admission.parse(json.dumps(body).encode())
    assert isinstance(review, admission.Review)
    plan = admission.plan(review, AdmissionSettings())
    decision = Gate(config=config).evaluate(plan.documents, gate="admission")
    response = admission.respond(review, decision)["response"]
    assert response["allowed"] is False
    assert "[Implied by expand-deployments] Privileged container is not allowed: nginx" in json.dumps(
        response
    )
