"""`trustgate check --admission-policy` over one ConfigMap, for the CLI tests of ValidatingAdmissionPolicies.

A policy here matches CREATE and UPDATE of ConfigMaps and comes with one binding; the test gives the
rest of its spec (validations, variables, audit annotations...) as YAML indented under `spec:`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from support.vap import API_VERSION, binding_yaml

from trustgate.cli.main import main

Write = Callable[[str, str], Path]
BASE = ("check", "--no-schemas", "--no-builtin", "-o", "json")

CONFIGMAP_METADATA = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app
  namespace: default
"""
CONFIGMAP = CONFIGMAP_METADATA + "  labels: {team: a}\ndata:\n  tier: gold\n"


def configmap_policy(
    name: str, spec: str, *, binding: str = "b", actions: str = "[Deny]", failure: str = "Fail"
) -> str:
    """Policy `name` (failurePolicy `failure`) over ConfigMaps with `spec`, and binding `binding` of it."""
    head = f"""\
apiVersion: {API_VERSION}
kind: ValidatingAdmissionPolicy
metadata:
  name: {name}
spec:
  failurePolicy: {failure}
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["configmaps"]
"""
    return head + spec.rstrip("\n") + "\n---\n" + binding_yaml(binding, policy=name, actions=actions)


def write_policy(write: Write, spec: str, *, actions: str = "[Deny]", failure: str = "Fail") -> Path:
    """Policy `p` with `spec` and its binding `b` with `actions`, written to vap.yaml."""
    return write("vap.yaml", configmap_policy("p", spec, actions=actions, failure=failure))


def run(write: Write, policy: Path) -> tuple[int, Any, str]:
    """`check --admission-policy policy` of CONFIGMAP: exit code, JSON report (or stdout), stderr."""
    manifests = write("cm.yaml", CONFIGMAP)
    args = [*BASE, "--admission-policy", str(policy), str(manifests)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    report = json.loads(result.stdout) if result.stdout.startswith("{") else result.stdout
    return result.exit_code, report, result.stderr


def findings(report: Any) -> list[dict[str, Any]]:
    """Every finding of every result in `report`."""
    return [f for r in report["results"] for f in r["findings"]]
