"""The deployment manifests in webhook/ pass trustgate's own bundled policies, and stay generated."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from trustgate.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK = ROOT / "webhook"


def test_manifests_pass_the_bundled_policies() -> None:
    result = CliRunner().invoke(main, ["check", "-o", "json", str(WEBHOOK)], catch_exceptions=False)
    report = json.loads(result.stdout)
    assert result.exit_code == 0, result.stdout
    kinds = {r["kind"] for r in report["results"]}
    assert {
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ValidatingWebhookConfiguration",
        "NetworkPolicy",
    } <= kinds
    assert report["summary"]["failed"] == 0 and report["summary"]["errors"] == 0
    blocking = [f for r in report["results"] for f in r["findings"] if f["severity"] == "error"]
    assert blocking == []


def test_deployment_is_highly_available_and_locked_down() -> None:
    docs = list(yaml.safe_load_all((WEBHOOK / "base" / "deployment.yaml").read_text()))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False
    assert any(d["kind"] == "PodDisruptionBudget" for d in docs)


def test_webhook_configuration_is_the_generated_one() -> None:
    result = CliRunner().invoke(main, ["webhook-config"], catch_exceptions=False)
    assert result.exit_code == 0
    committed = (WEBHOOK / "base" / "validatingwebhookconfiguration.yaml").read_text()
    assert committed == result.stdout, (
        "regenerate: trustgate webhook-config > webhook/base/validatingwebhookconfiguration.yaml"
    )
