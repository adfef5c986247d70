"""Decisions built by hand for the report writer tests.

`build_sample()` holds one of everything a writer must show: a passing
document, a failing one with field path, line and fix, a warning, a waived
finding, an expired exception, an input error, and a document from stdin.
"""

from __future__ import annotations

from trustgate.model import (
    AppliedException,
    Decision,
    DocumentResult,
    Finding,
    Mode,
    Severity,
    Source,
)

APP = "deploy/app.yaml"
AGENT = "deploy/agent.yaml"
BROKEN = "deploy/broken.yaml"
CLEAN = "deploy/clean.yaml"


def doc(
    file: str,
    line: int,
    findings: list[Finding],
    *,
    kind: str | None = "Deployment",
    namespace: str | None = "prod",
    name: str | None = "web",
    index: int = 0,
    api_version: str | None = "apps/v1",
) -> DocumentResult:
    return DocumentResult(
        source=Source(file=file, line=line, index=index),
        api_version=api_version,
        kind=kind,
        namespace=namespace,
        name=name,
        findings=findings,
    )


def latest_tag() -> Finding:
    return Finding(
        rule="images/no-latest",
        severity=Severity.ERROR,
        message='container "web" uses image nginx:latest',
        source="rego",
        fix="pin the image to a digest: nginx@sha256:...",
        path=("spec", "template", "spec", "containers", 0, "image"),
        line=21,
        policy="trustgate.images",
    )


def no_limits() -> Finding:
    return Finding(
        rule="resources/limits",
        severity=Severity.WARNING,
        rule_severity=Severity.WARNING,
        message='container "web" has no memory limit',
        source="rego",
        fix="set resources.limits.memory",
        path=("spec", "template", "spec", "containers", 0, "resources"),
        line=24,
    )


def waived_privileged() -> Finding:
    return Finding(
        rule="pods/no-privileged",
        severity=Severity.INFO,
        rule_severity=Severity.ERROR,
        message='container "agent" runs privileged',
        source="rego",
        path=("spec", "template", "spec", "containers", 0, "securityContext", "privileged"),
        line=40,
        exception=AppliedException(
            name="node-agent-privileged",
            owner="team-observability",
            reason="needs host access for eBPF",
            expires="2031-01-31",
        ),
    )


def expired_root() -> Finding:
    return Finding(
        rule="pods/run-as-non-root",
        severity=Severity.ERROR,
        message='container "agent" may run as root',
        source="rego",
        path=("spec", "template", "spec", "securityContext"),
        exception=AppliedException(
            name="agent-root",
            owner="team-observability",
            reason="legacy image",
            expires="2024-01-01",
            expired=True,
        ),
    )


def invalid_yaml() -> Finding:
    return Finding(
        rule="input/invalid-yaml",
        severity=Severity.ERROR,
        message="mapping values are not allowed here",
        source="input",
        fix="check the indentation above line 3",
        line=3,
    )


def build_sample() -> Decision:
    return Decision(
        gate="ci",
        mode=Mode.ENFORCE,
        policy_revision="abc123",
        duration_ms=1234.5,
        notes=["exception agent-root expired on 2024-01-01"],
        results=[
            # deploy/app.yaml: one failing document (error + warning), two clean ones
            doc(APP, 1, [latest_tag(), no_limits()], index=0),
            doc(APP, 40, [], kind="Service", name="web", index=1, api_version="v1"),
            doc(APP, 55, [], kind="ConfigMap", name="web-config", index=2, api_version="v1"),
            # deploy/agent.yaml: a waived finding (passes) and an expired exception (fails)
            doc(AGENT, 1, [waived_privileged()], kind="DaemonSet", namespace="kube-system", name="agent"),
            doc(
                AGENT,
                60,
                [expired_root()],
                kind="DaemonSet",
                namespace="kube-system",
                name="agent-2",
                index=1,
            ),
            # deploy/broken.yaml: an input error, no identity
            doc(BROKEN, 1, [invalid_yaml()], kind=None, namespace=None, name=None, api_version=None),
            # stdin: a warning
            doc("-", 4, [no_limits()], kind="Deployment", namespace=None, name="piped"),
            # deploy/clean.yaml: everything passed
            doc(CLEAN, 1, [], kind="Namespace", namespace=None, name="prod", api_version="v1"),
        ],
    )


def build_passing() -> Decision:
    return Decision(
        gate="ci",
        mode=Mode.ENFORCE,
        results=[doc(CLEAN, 1, [], kind="Namespace", namespace=None, name="prod", api_version="v1")],
    )
