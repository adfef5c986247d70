"""Variables that Flux's post-build substitution fills where they change what the gate judges."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from trustgate.config import Config, load_config
from trustgate.gate import Gate
from trustgate.gate.checks import Run, UnresolvedVariableCheck
from trustgate.manifests import loader, variables
from trustgate.model import Document, Mode, Severity

Write = Callable[[str, str], Path]

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: s
  namespace: NAMESPACE
  labels: {tier: TIER}
  annotations:
    ANNOTATION: unconfined
spec:
  SPECKEY: true
  containers:
    - name: c
      image: registry.example.com/web:1.2.3
      env: [{name: H, value: "ENV"}]
"""


def _pod(
    *,
    namespace: str = "shop",
    tier: str = "web",
    annotation: str = "container.apparmor.security.beta.kubernetes.io/c",
    spec_key: str = "hostPID",
    env: str = "${HOME}",
) -> str:
    return (
        POD.replace("NAMESPACE", namespace)
        .replace("TIER", tier)
        .replace("ANNOTATION", annotation)
        .replace("SPECKEY", spec_key)
        .replace("ENV", env)
    )


def _document(write: Write, text: str) -> Document:
    path = write("pod.yaml", text)
    (unit,) = loader.plan([str(path)])
    (document,), problems = loader.read_unit(unit, Config.default().limits)
    assert not problems
    return document


def _rules(write: Write, text: str, *, mode: Mode = Mode.ENFORCE) -> list[tuple[str, str, str]]:
    findings = UnresolvedVariableCheck().findings(_document(write, text), Run(mode))
    return [(f.rule, str(f.severity), ".".join(map(str, f.path))) for f in findings]


def test_a_manifest_without_variables_where_they_matter_passes(write: Write) -> None:
    assert _rules(write, _pod()) == []  # `${HOME}` in an env value is left to the rules reading it


@pytest.mark.parametrize(
    ("change", "rule", "path"),
    [
        (
            {"annotation": "${AA:=container.apparmor.security.beta.kubernetes.io/c}"},
            "key-unresolved-variable",
            "metadata.annotations.${AA:=container.apparmor.security.beta.kubernetes.io/c}",
        ),
        ({"spec_key": "${HOSTPID:=hostPID}"}, "key-unresolved-variable", "spec.${HOSTPID:=hostPID}"),
        ({"namespace": '"${TARGET_NS:=prod}"'}, "metadata-unresolved-variable", "metadata.namespace"),
        ({"tier": '"${TIER:-web}"'}, "metadata-unresolved-variable", "metadata.labels.tier"),
        ({"env": "${ZZ:+"}, "value-unresolved-variable", "spec.containers.0.env.0.value"),
    ],
)
def test_a_variable_that_changes_what_is_judged_is_an_error(
    write: Write, change: dict[str, str], rule: str, path: str
) -> None:
    assert _rules(write, _pod(**change)) == [(rule, "error", path)]


def test_it_follows_the_mode(write: Write) -> None:
    text = _pod(spec_key="${P:=hostPID}")
    assert _rules(write, text, mode=Mode.WARN) == [
        ("key-unresolved-variable", "warning", "spec.${P:=hostPID}")
    ]
    assert _rules(write, text, mode=Mode.AUDIT) == [("key-unresolved-variable", "info", "spec.${P:=hostPID}")]


def test_the_message_says_why_and_what_to_do(write: Write) -> None:
    document = _document(write, _pod(namespace='"${NS:=prod}"'))
    (finding,) = UnresolvedVariableCheck().findings(document, Run(Mode.ENFORCE))
    assert '"${NS:=prod}"' in finding.message and "substituteFrom" in finding.message
    assert "flux envsubst" in finding.fix and "$${" in finding.fix
    assert "kustomize.toolkit.fluxcd.io/substitute: disabled" in finding.fix
    assert "waive metadata-unresolved-variable with an exception" in finding.fix


def test_an_object_marked_for_no_substitution_is_applied_as_written(write: Write) -> None:
    text = _pod(annotation="${AA:=container.apparmor.security.beta.kubernetes.io/c}").replace(
        "  annotations:\n", "  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n"
    )
    assert _rules(write, text) == []


def test_at_admission_the_object_is_the_one_applied(write: Write) -> None:
    document = _document(write, _pod(spec_key="${P:=hostPID}").replace("kind: Pod", "kind: ${K:=Pod}"))
    admitted = dataclasses.replace(document, request={"operation": "CREATE"})
    findings = UnresolvedVariableCheck().findings(admitted, Run(Mode.ENFORCE))
    assert [f.rule for f in findings] == ["kind-unresolved-variable"]  # the kind's rule is unchanged


def test_the_gate_reports_the_line_of_the_key_and_waives_it_by_exception(write: Write) -> None:
    path = write("pod.yaml", _pod(annotation="${AA:=container.apparmor.security.beta.kubernetes.io/c}"))
    with Gate(config=Config.default()) as gate:
        decision = gate.check([str(path)])
    (result,) = decision.results
    [finding] = [f for f in result.findings if f.rule == "key-unresolved-variable"]
    assert finding.line == 8 and finding.severity == Severity.ERROR and not decision.allowed
    waiver = write(
        "trustgate.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nexceptions:\n"
        "  - {name: rendered, rules: [key-unresolved-variable], owner: o, reason: r,\n"
        "     expires: '2099-01-01'}\n",
    )
    with Gate(config=load_config(waiver)) as gate:
        decision = gate.check([str(path)])
    [finding] = [f for f in decision.results[0].findings if f.rule == "key-unresolved-variable"]
    assert finding.exception is not None and finding.severity == Severity.INFO


def test_metadata_the_api_server_refuses_is_a_schema_error_and_a_waived_variable_is_not(write: Write) -> None:
    """A namespace is a DNS label, label and annotation keys qualified names: no OpenAPI schema says
    so. A key holding a variable is left to key-unresolved-variable, so that its exception is the
    whole way out."""
    path = write("pod.yaml", _pod(namespace="Shop_1", annotation="${AA:=x/y}"))
    with Gate(config=Config.default()) as gate:
        (result,) = gate.check([str(path)]).results
    rules = sorted((f.rule, f.line) for f in result.findings if f.severity == Severity.ERROR)
    assert ("schema-invalid", 5) in rules and ("key-unresolved-variable", 8) in rules
    assert [m for f in result.findings if f.rule == "schema-invalid" for m in [f.message]] == [
        'metadata.namespace: "Shop_1" is not a valid namespace, which the API server refuses: it must be '
        "a lowercase RFC 1123 label: a-z, 0-9 and '-', starting and ending alphanumeric, at most 63"
    ]


def test_annotations_over_the_api_servers_size_limit_are_a_schema_error(write: Write) -> None:
    path = write("pod.yaml", _pod(annotation="big").replace("unconfined", "x" * (256 * 1024)))
    with Gate(config=Config.default()) as gate:
        (result,) = gate.check([str(path)]).results
    [finding] = [f for f in result.findings if f.rule == "schema-invalid"]
    assert finding.severity == Severity.ERROR and finding.line == 7
    assert finding.message == (
        'metadata.annotations: "262147 bytes" is not a valid total size of the annotations, which the '
        "API server refuses: it must be at most 262144 bytes (256 KiB), keys and values together"
    )
    assert "ConfigMap" in finding.fix


@pytest.mark.parametrize(
    ("key", "holds"),
    [
        ("note", False),  # no `$` in the file: no walk
        ('"\\x24{AA:=x/y}"', True),  # a YAML escape spells `${` without a `$`
        ('"\\u0024{AA:=x/y}"', True),
        ("!!binary JHtBQTo9eC95fQ==", True),  # base64 of `${AA:=x/y}`
    ],
)
def test_a_reference_spelled_without_a_dollar_is_still_found(write: Write, key: str, holds: bool) -> None:
    document = _document(write, _pod(annotation=key, env="plain"))
    assert document.may_hold_variable is holds
    rules = [f.rule for f in UnresolvedVariableCheck().findings(document, Run(Mode.ENFORCE))]
    assert rules == (["key-unresolved-variable"] if holds else [])


def test_as_a_kustomization_applies_it_the_rules_judge_what_stays_unresolved(write: Write) -> None:
    """Substituted as one Kustomization applies it: what resolved passes, what stayed unresolved is
    denied naming the Kustomization and why, wherever it is (Flux applies it empty, or fails)."""
    document = _document(write, _pod(namespace='"${tenant}"', env="${region}"))
    team_a = variables.Substitution("Kustomization/flux-system/team-a", {"tenant": "team-a"})
    applied = variables.apply(document, team_a)
    assert applied.obj["metadata"]["namespace"] == "team-a" and applied.applied_as == team_a.applied_as
    (finding,) = UnresolvedVariableCheck().findings(applied, Run(Mode.ENFORCE))
    assert finding.rule == "value-unresolved-variable" and finding.severity == Severity.ERROR
    assert "Kustomization/flux-system/team-a does not set the variable region" in finding.message
    # Set, nothing is left: no finding; the env value is the value given.
    both = variables.Substitution("K", {"tenant": "team-a", "region": "eu"})
    assert UnresolvedVariableCheck().findings(variables.apply(document, both), Run(Mode.ENFORCE)) == []


def test_a_check_without_values_names_the_options(write: Write) -> None:
    document = _document(write, _pod(namespace='"${NS:=prod}"'))
    (finding,) = UnresolvedVariableCheck().findings(document, Run(Mode.ENFORCE))
    assert "--flux-substitute NAME=VALUE" in finding.fix and "--flux-kustomization FILE" in finding.fix


def test_gate_check_judges_substituted_values_as_written_ones(write: Write) -> None:
    """`Gate(substitution=...)` (`check --flux-substitute`): a namespace from a variable is the
    namespace every rule and exception sees."""
    path = write("p/pod.yaml", _pod(namespace='"${tenant}"'))
    config = Config.default()
    with Gate(
        config=config, substitution=variables.Substitution("--flux-substitute", {"tenant": "kube-system"})
    ) as gate:
        decision = gate.check([str(path)])
    (result,) = decision.results
    assert result.namespace == "kube-system"
    assert "metadata-unresolved-variable" not in {f.rule for f in result.findings}
    assert result.findings and all(
        f.metadata.get("appliedAs") == "--flux-substitute" for f in result.findings
    )
