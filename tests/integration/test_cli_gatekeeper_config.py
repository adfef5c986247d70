"""Gatekeeper's `Config` (config.gatekeeper.sh): its namespace exclusions per process, applied as
Gatekeeper's `process.Excluder` does, and always said in the result, never silent."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from support.gatekeeper import ALWAYS_DENY_TEMPLATE as TEMPLATE

from trustgate.cli.main import main
from trustgate.config import Config, GatekeeperSettings, KubernetesSettings
from trustgate.gate import Gate
from trustgate.model import Document, Severity, Source

Write = Callable[[str, str], Path]

CONSTRAINT = """\
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sAlwaysDeny
metadata: {{name: {name}}}
spec:
  enforcementAction: {action}
  match:
    kinds: [{{apiGroups: [""], kinds: [Pod, Namespace]}}]
"""
CONFIG = """\
apiVersion: config.gatekeeper.sh/v1alpha1
kind: Config
metadata: {{name: {name}, namespace: gatekeeper-system}}
spec:
  match:
    - excludedNamespaces: {namespaces}
      processes: {processes}
"""


def pod(namespace: str) -> str:
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: {namespace}}}\n"
        "spec:\n  containers: [{name: c, image: nginx}]\n"
    )


def library(
    write: Write,
    processes: str = '["*"]',
    namespaces: str = '["kube-*", "*-system"]',
    action: str = "deny",
    name: str = "config",
) -> Path:
    write("gk/template.yaml", TEMPLATE)
    write("gk/constraint.yaml", CONSTRAINT.format(name="c", action=action))
    write("gk/config.yaml", CONFIG.format(name=name, namespaces=namespaces, processes=processes))
    return write("gk/.keep", "").parent


def check(write: Write, gk: Path, *manifests: str) -> tuple[int, list[dict[str, Any]], list[str]]:
    paths = [str(write(f"m/{i}.yaml", text)) for i, text in enumerate(manifests)]
    result = CliRunner().invoke(
        main,
        [
            "check",
            *paths,
            "--no-builtin",
            "--no-schemas",
            "--no-cache",
            "--format",
            "json",
            "--gatekeeper",
            str(gk),
        ],
        catch_exceptions=False,
    )
    report = json.loads(result.stdout)
    return result.exit_code, report["results"], report.get("notes", [])


def findings(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["rule"], f["severity"]) for f in result["findings"]]


def test_a_config_exclusion_for_every_process_takes_the_namespace_away_and_says_so(write: Write) -> None:
    code, results, notes = check(
        write,
        library(write),
        pod("kube-system"),  # kube-*
        pod("monitoring-system"),  # *-system
        pod("default"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-public}\n",  # judged by its own name
    )
    assert code == 1
    assert [findings(r) for r in results] == [
        [("gatekeeper/config-excluded", "info")],
        [("gatekeeper/config-excluded", "info")],
        [("K8sAlwaysDeny/c", "error")],
        [("gatekeeper/config-excluded", "info")],
    ]
    message = results[0]["findings"][0]["message"]
    assert "Config gatekeeper-system/config" in message and "config.yaml:1" in message
    assert "namespace 'kube-system' from the webhook and audit (excludedNamespaces 'kube-*')" in message
    assert "the Namespace 'kube-public'" in results[3]["findings"][0]["message"]
    assert any("excludes namespaces: audit: kube-*, *-system; webhook:" in n for n in notes)


def test_only_the_webhook_excluded_leaves_what_audit_would_report(write: Write) -> None:
    code, results, _ = check(write, library(write, processes="[webhook]"), pod("kube-system"))
    assert code == 0  # the webhook admits it
    assert findings(results[0]) == [("K8sAlwaysDeny/c", "info"), ("gatekeeper/config-excluded", "info")]
    assert "only audit reports it" in results[0]["findings"][0]["message"]


def test_only_audit_excluded_still_denies_at_admission_and_drops_dryrun(write: Write) -> None:
    code, results, _ = check(write, library(write, processes="[audit]"), pod("kube-system"))
    assert code == 1
    assert findings(results[0]) == [("K8sAlwaysDeny/c", "error"), ("gatekeeper/config-excluded", "info")]
    code, results, _ = check(write, library(write, processes="[audit]", action="dryrun"), pod("kube-system"))
    assert code == 0
    assert findings(results[0]) == [("gatekeeper/config-excluded", "info")]
    assert "dryrun constraints' violations are left out" in results[0]["findings"][0]["message"]


@pytest.mark.parametrize("processes", ["[sync]", "[mutation-webhook]", "[]"])
def test_other_processes_do_not_exclude_from_validation(write: Write, processes: str) -> None:
    code, results, _ = check(write, library(write, processes=processes), pod("kube-system"))
    assert code == 1 and findings(results[0]) == [("K8sAlwaysDeny/c", "error")]


def test_a_config_not_named_config_is_ignored_with_a_note(write: Write) -> None:
    code, results, notes = check(write, library(write, name="other"), pod("kube-system"))
    assert code == 1 and findings(results[0]) == [("K8sAlwaysDeny/c", "error")]
    assert any("Config gatekeeper-system/other" in n and "is ignored" in n for n in notes)


def test_a_malformed_config_is_exit_3_naming_its_file(write: Write) -> None:
    gk = library(write, namespaces='"kube-system"')
    result = CliRunner().invoke(main, ["check", str(write("p.yaml", pod("a"))), "--gatekeeper", str(gk)])
    assert result.exit_code == 3
    assert (
        "config.yaml:1" in result.stderr and "excludedNamespaces must be a list of strings" in result.stderr
    )


@pytest.mark.parametrize(("processes", "allowed"), [('["*"]', True), ("[webhook]", True), ("[audit]", False)])
def test_at_admission_only_the_webhook_exclusion_counts(write: Write, processes: str, allowed: bool) -> None:
    config = Config(
        policies=(),
        kubernetes=KubernetesSettings(schemas=False),
        gatekeeper=GatekeeperSettings(paths=(library(write, processes=processes),)),
    )
    obj = yaml.safe_load(pod("kube-system"))
    request = {"uid": "1", "operation": "CREATE", "namespace": "kube-system", "userInfo": {"username": "u"}}
    with Gate(config=config) as gate:
        decision = gate.evaluate([Document(Source("admission"), obj, request=request)], gate="admission")
    assert decision.allowed is allowed
    rules = [(f.rule, f.severity) for f in decision.results[0].findings]
    if allowed:
        assert rules == [("gatekeeper/config-excluded", Severity.INFO)]
        assert "from the webhook" in decision.results[0].findings[0].message
    else:
        assert rules == [("K8sAlwaysDeny/c", Severity.ERROR)]


def test_a_kind_of_unknown_scope_is_still_judged_as_the_cluster_scoped_object_it_may_be(
    write: Write,
) -> None:
    gk = library(write)
    write(
        "gk/constraint.yaml",
        CONSTRAINT.format(name="c", action="deny").replace("[Pod, Namespace]", "[Widget]"),
    )
    widget = "apiVersion: v1\nkind: Widget\nmetadata: {name: w, namespace: kube-system}\n"
    code, results, _ = check(write, gk, widget)
    # In kube-system it is excluded; if Widget is cluster-scoped, the API server clears the
    # namespace and Gatekeeper reviews it in none, which the Config does not exclude.
    assert code == 1
    assert findings(results[0]) == [("K8sAlwaysDeny/c", "error"), ("gatekeeper/config-excluded", "info")]
    assert "the scope of its kind is unknown" in results[0]["findings"][0]["message"]
