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


def test_only_the_api_server_reaches_the_webhook_port() -> None:
    policy = yaml.safe_load((WEBHOOK / "base" / "networkpolicy.yaml").read_text())
    webhook = [r for r in policy["spec"]["ingress"] if {p["port"] for p in r["ports"]} & {8443}]
    assert len(webhook) == 1
    peers = webhook[0].get("from")
    assert peers, "an ingress rule without `from` admits every pod"
    assert all(set(peer) == {"ipBlock"} for peer in peers)  # no pod or namespace selector: no pod
    health = [r for r in policy["spec"]["ingress"] if {p["port"] for p in r["ports"]} & {8081}]
    assert health and all(r.get("from") for r in health)


def test_probes_use_the_health_port_and_pods_drain_before_they_stop() -> None:
    docs = list(yaml.safe_load_all((WEBHOOK / "base" / "deployment.yaml").read_text()))
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "--health-port=8081" in container["args"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "health"
        assert container[probe]["httpGet"]["scheme"] == "HTTP"  # kubelet has no client certificate
    delay = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    # The preStop delay, then the drain (deadline 8 s + 4 s), then the supervisor's 3 s, fit the grace.
    assert delay > 0 and delay + 8 + 4 + 3 < pod["terminationGracePeriodSeconds"]
