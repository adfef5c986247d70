"""Readings YAML readers part on (a `<<` merge overriding a key written before it, a plain value
tagged `!`) in a document that is no Kubernetes object: a docker compose file, Helm values, a CI
workflow. No reconciler applies such a document (kubectl and kustomize refuse one without apiVersion
and kind), so with no policy of the user's nothing judges it and it is not refused; a policy of the
user's would judge one reading of it, so then it is."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

# The compose idiom: `image` written, then defaults merged over it (go-yaml v2 takes busybox,
# compose's go-yaml v3 nginx).
COMPOSE = """\
x-defaults: &defaults
  restart: always
  image: busybox
services:
  web:
    image: nginx
    <<: *defaults
"""
VALUES = "featureFlag: ! true\nreplicas: 2\n"
POLICY = """\
package main

import rego.v1

deny contains msg if {
    input.services.web.image == "nginx"
    msg := "web must not run nginx"
}
"""


def run(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(main, ["check", *args, "-o", "json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def _findings(report: dict[str, object]) -> list[dict[str, object]]:
    return [f for r in report["results"] for f in r["findings"]]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "text", "rule"),
    [
        ("docker-compose.yaml", COMPOSE, "input/yaml-merge-override"),
        ("values.yaml", VALUES, "input/yaml-non-specific-tag"),
    ],
)
def test_a_document_no_policy_reads_is_not_refused(write: Write, name: str, text: str, rule: str) -> None:
    path = write(f"repo/{name}", text)
    code, report = run(str(path.parent))
    assert code == 0, report
    assert [f["rule"] for f in _findings(report)] == ["input/not-kubernetes"]


@pytest.mark.parametrize(
    ("name", "text", "rule", "line"),
    [
        ("docker-compose.yaml", COMPOSE, "input/yaml-merge-override", 7),
        ("values.yaml", VALUES, "input/yaml-non-specific-tag", 1),
    ],
)
def test_a_document_a_policy_of_the_users_reads_is_not_evaluated(
    write: Write, name: str, text: str, rule: str, line: int
) -> None:
    path = write(f"repo/{name}", text)
    policy = write("policy/main.rego", POLICY)
    code, report = run("-p", str(policy), str(path.parent))
    assert code == 3, report
    (finding,) = _findings(report)
    assert finding["rule"] == rule and finding["line"] == line and finding["severity"] == "error"
    assert "your policies might judge" in str(finding["message"]) and "kustomize" not in str(
        finding["message"]
    )


def test_a_policy_still_judges_a_document_read_alike(write: Write) -> None:
    # The merge first, then the key: every reader keeps nginx.
    path = write(
        "repo/docker-compose.yaml",
        COMPOSE.replace("    image: nginx\n    <<: *defaults", "    <<: *defaults\n    image: nginx"),
    )
    policy = write("policy/main.rego", POLICY)
    code, report = run("-p", str(policy), str(path.parent))
    assert code == 1, report
    assert [f["rule"] for f in _findings(report)] == ["main.deny"]


@pytest.mark.parametrize(
    "text",
    [
        # apiVersion and kind brought by the merge itself: a Kubernetes object in either reading.
        "<<: {apiVersion: v1, kind: ConfigMap}\nmetadata: {name: a}\ndata: {mode: safe}\n"
        "x: &m {mode: debug}\nother:\n  mode: safe\n  <<: *m\n",
        # only metadata: kubectl refuses it, but it reads as a manifest, not as data
        "metadata: {name: a, labels: {team: a}}\nspec:\n  mode: safe\n  <<: {mode: debug}\n",
        # an object with `items`, which kubectl applies as a list
        "items:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: a}\n    data:\n"
        "      mode: safe\n      <<: {mode: debug}\n",
    ],
)
def test_what_may_be_applied_is_still_refused_without_a_policy(write: Write, text: str) -> None:
    path = write("repo/thing.yaml", text)
    code, report = run(str(path.parent))
    assert code == 3, report
    assert "input/yaml-merge-override" in [f["rule"] for f in _findings(report)]
