"""`trustgate check --flux-substitute NAME=VALUE` and `--flux-kustomization FILE`: the manifests judged
as a Flux Kustomization applies them, its post-build variables substituted; without either, a
variable that decides a namespace, name or label is denied as before, the options named as a way out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

BASE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: ${tenant}
---
apiVersion: v1
kind: Pod
metadata:
  name: ${tenant}-agent
  namespace: ${tenant}
  labels: {tenant: "${tenant}"}
spec:
  containers:
  - name: c
    image: nginx:1.27
    securityContext:
      privileged: ${privileged:=false}
"""
TENANT = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: team-a, namespace: flux-system}
spec:
  interval: 10m
  path: ./tenants/base
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
  postBuild:
    substitute: {tenant: team-a}
    substituteFrom:
    - {kind: ConfigMap, name: tenant-vars}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: tenant-vars, namespace: flux-system}
data: {privileged: "true", tenant: overridden}
"""
# The agent may run privileged in team-a only.
CONFIG = """\
apiVersion: trustgate.dev/v1alpha1
kind: Config
manifests: {policies: [{builtin: pss-baseline}]}
exceptions:
  - {name: team-a-agent, rules: [pss-baseline-privileged], namespaces: [team-a], owner: platform,
     reason: the node agent, expires: "2099-01-01"}
"""


def run(*args: str) -> tuple[int, dict[str, Any] | None, str]:
    result = CliRunner().invoke(main, ["check", *args], catch_exceptions=False)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        report = None
    return result.exit_code, report, result.stdout + result.stderr


def _findings(report: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    assert report is not None
    return {f"{r['kind']}/{r.get('namespace')}/{r['name']}": r["findings"] for r in report["results"]}


def test_without_an_option_the_variables_are_denied_naming_the_options(write: Write) -> None:
    base = write("tenants/base/agent.yaml", BASE)
    config = write("trustgate.yaml", CONFIG)
    code, report, out = run("-c", str(config), "-o", "json", str(base))
    assert code == 1, out
    rules = {f["rule"] for findings in _findings(report).values() for f in findings}
    assert "metadata-unresolved-variable" in rules, out
    assert "--flux-substitute NAME=VALUE" in out and "--flux-kustomization FILE" in out, out


def test_a_kustomization_file_judges_the_base_as_it_applies_it(write: Write) -> None:
    """team-a's values: the substituteFrom ConfigMap's (its `tenant` overridden by `substitute`), so
    the agent is privileged in team-a, where an exception allows it: it passes, each finding naming
    the Kustomization."""
    base = write("tenants/base/agent.yaml", BASE)
    config = write("trustgate.yaml", CONFIG)
    tenant = write("clusters/prod/team-a.yaml", TENANT)
    code, report, out = run("-c", str(config), "-o", "json", "--flux-kustomization", str(tenant), str(base))
    assert code == 0, out
    findings = _findings(report)
    assert set(findings) == {"Namespace/None/team-a", "Pod/team-a/team-a-agent"}, findings
    [privileged] = [f for f in findings["Pod/team-a/team-a-agent"] if f["rule"] == "pss-baseline-privileged"]
    assert privileged["severity"] == "info" and privileged["exception"]["name"] == "team-a-agent"
    assert privileged["metadata"]["appliedAs"].startswith("Kustomization/flux-system/team-a")


def test_a_substituted_value_hits_what_a_literal_would(write: Write) -> None:
    """`tenant: kube-system` lands the privileged agent outside team-a: denied, as a Pod written in
    kube-system is; `--flux-substitute` overrides the Kustomization's values, as its `substitute` would."""
    base = write("tenants/base/agent.yaml", BASE)
    config = write("trustgate.yaml", CONFIG)
    tenant = write("clusters/prod/team-a.yaml", TENANT)
    code, report, out = run(
        "-c", str(config), "-o", "json", "--flux-kustomization", str(tenant),
        "--flux-substitute", "tenant=kube-system", str(base),
    )  # fmt: skip
    assert code == 1, out
    findings = _findings(report)
    assert "pss-baseline-privileged" in {
        f["rule"] for f in findings["Pod/kube-system/kube-system-agent"] if f["severity"] == "error"
    }, out

    code, report, out = run(
        "-c", str(config), "-o", "json", "--flux-substitute", "tenant=kube-system",
        "--flux-substitute", "privileged=true", str(base),
    )  # fmt: skip
    assert code == 1, out
    assert "pss-baseline-privileged" in {
        f["rule"] for f in _findings(report)["Pod/kube-system/kube-system-agent"]
    }


def test_flux_substitute_alone_takes_no_default(write: Write) -> None:
    """The Kustomization may set what the option does not: `${privileged:=false}` is not taken as
    false, it is denied, naming the variable and the way out."""
    base = write("tenants/base/agent.yaml", BASE)
    config = write("trustgate.yaml", CONFIG)
    code, report, out = run("-c", str(config), "-o", "json", "--flux-substitute", "tenant=team-a", str(base))
    assert code == 1, out
    [finding] = [
        f for f in _findings(report)["Pod/team-a/team-a-agent"] if f["rule"] == "value-unresolved-variable"
    ]
    assert "does not set the variable privileged" in finding["message"], finding
    assert "--flux-substitute" in finding["message"], finding
    # Given, it passes.
    code, _, out = run(
        "-c",
        str(config),
        "--flux-substitute",
        "tenant=team-a",
        "--flux-substitute",
        "privileged=false",
        str(base),
    )
    assert code == 0, out


def test_bad_option_values_are_clear_errors(write: Write) -> None:
    base = write("tenants/base/agent.yaml", BASE)
    code, _, out = run("--flux-substitute", "no-equals", str(base))
    assert code == 2 and "--flux-substitute" in out and "NAME=VALUE" in out, out
    code, _, out = run("--flux-substitute", "1st=x", str(base))
    assert code == 2, out
    none = write("clusters/none.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, _, out = run("--flux-kustomization", str(none), str(base))
    assert code == 3 and str(none) in out and "exactly one" in out and "Traceback" not in out, out
    plain = write("clusters/plain.yaml", TENANT.split("  postBuild:")[0])
    code, _, out = run("--flux-kustomization", str(plain), str(base))
    assert code == 3 and "no spec.postBuild" in out, out
    targeted = write("clusters/targeted.yaml", TENANT.replace("  interval: 10m\n", "  targetNamespace: x\n"))
    code, _, out = run("--flux-kustomization", str(targeted), str(base))
    assert code == 3 and "spec.targetNamespace" in out and "flux build kustomization" in out, out
    broken = write("clusters/broken.yaml", TENANT.replace('privileged: "true"', "privileged: 1"))
    code, _, out = run("--flux-kustomization", str(broken), str(base))
    assert code == 3 and "ConfigMap/flux-system/tenant-vars" in out and "data.privileged" in out, out
