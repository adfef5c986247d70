"""The gate's engine interface and its two phases (policies, then images)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from trustgate.config import Config, KubernetesSettings, PolicySource
from trustgate.gate import Gate, checks
from trustgate.gate.checks import Build, Check, Run
from trustgate.gate.verdict import severity
from trustgate.manifests import loader
from trustgate.model import Document, DocumentResult, Finding, Mode, Severity, Source

Write = Callable[[str, str], Path]

POLICY = """\
package main
import rego.v1

deny contains {"msg": "no team label", "rule": "team-label"} if {
  not input.metadata.labels.team
}
"""

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: shop
spec:
  containers:
    - name: c
      image: nginx:1.27
"""


def _documents(write: Write, text: str = POD) -> list[Document]:
    path = write("m.yaml", text)
    (unit,) = loader.plan([str(path)])
    documents, problems = loader.read_unit(unit, Config.default().limits)
    assert not problems
    return documents


class _Kinds:
    """A toy engine: denies the kinds it is given, under the mode it is given; counts the change sets."""

    name = "kinds"
    wants_change_set = True

    def __init__(self, kinds: Sequence[str]) -> None:
        self.kinds = tuple(kinds)
        self.seen: list[int] = []  # the size of the change set each document was judged with
        self.released: list[str] = []

    def findings(self, doc: Document, run: Run) -> list[Finding]:
        self.seen.append(len(run.objects))
        if doc.kind not in self.kinds:
            return []
        return [
            Finding(
                rule="kinds/denied",
                severity=severity(True, run.mode),
                message=f"{doc.kind} is not allowed",
                source="rego",
                path=("kind",),
            )
        ]

    def notes(self) -> Sequence[str]:
        return ["kinds: a toy engine"]

    def offline_notes(self) -> Sequence[str]:
        return ["kinds: on manifests only"]

    def results(self) -> Sequence[DocumentResult]:
        return []

    def fingerprint(self, digest: hashlib._Hash) -> None:
        digest.update(",".join(self.kinds).encode())

    def release(self) -> None:
        self.released.append(threading.current_thread().name)


def test_a_new_engine_is_one_adapter_and_one_entry_in_engines(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _Kinds(["Pod"])
    check: Check = engine  # the Protocol is all it implements
    built: list[Build] = []

    def factory(build: Build) -> Check | None:
        built.append(build)
        return check

    config = Config(policies=(), kubernetes=KubernetesSettings(schemas=False))
    plain = Gate(config=config)
    monkeypatch.setattr(checks, "ENGINES", (*checks.ENGINES, factory))
    with Gate(config=config) as gate:
        decision = gate.evaluate(_documents(write) * 2)
    assert built and built[0].config is config
    assert gate.policy_revision != plain.policy_revision  # what the engine enforces is in the revision
    assert "kinds: a toy engine" in decision.notes
    assert "kinds: on manifests only" in decision.notes  # `check`: the engine's offline notes too
    assert engine.seen == [2, 2]  # every document was judged with the whole change set
    (result, _) = decision.results
    (finding,) = [f for f in result.findings if f.rule == "kinds/denied"]
    assert finding.severity == Severity.ERROR and finding.line == 2  # the gate located `kind:`
    assert not decision.allowed
    assert engine.released == [threading.current_thread().name]  # closing the gate released it here


def test_exceptions_apply_to_a_new_engines_findings_as_to_any_other(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    from trustgate.config import ExceptionRule

    monkeypatch.setattr(checks, "ENGINES", (lambda build: _Kinds(["Pod"]),))
    waiver = ExceptionRule(
        name="pods-ok", owner="team", reason="a test", expires=dt.date(2099, 1, 1), rules=("kinds/*",)
    )
    config = Config(policies=(), kubernetes=KubernetesSettings(schemas=False), exceptions=(waiver,))
    decision = Gate(config=config).evaluate(_documents(write))
    (finding,) = [f for f in decision.results[0].findings if f.rule == "kinds/denied"]
    assert finding.severity == Severity.INFO and finding.exception is not None
    assert decision.allowed


def test_two_phases_tell_a_policy_denial_before_images_and_record_apart(write: Write) -> None:
    policy = write("policy/main.rego", POLICY).parent
    config = Config(policies=(PolicySource(path=policy),), kubernetes=KubernetesSettings(schemas=False))
    gate = Gate(config=config)
    policies = gate.evaluate_policies(_documents(write))
    assert policies.denials() == ["[team-label] no team label"]
    decision = gate.decide(policies, gate="admission")
    assert decision.gate == "admission" and not decision.allowed and decision.record_id == ""
    assert gate.record(decision, None) is decision  # no log: nothing recorded, nothing fails
    labelled = POD.replace("  namespace: shop\n", "  namespace: shop\n  labels: {team: a}\n")
    assert gate.evaluate_policies(_documents(write, labelled)).denials() == []


def test_extra_results_are_judged_like_documents_in_phase_one(write: Write) -> None:
    config = Config(policies=(), kubernetes=KubernetesSettings(schemas=False), mode=Mode.AUDIT)
    gate = Gate(config=config)
    extra = DocumentResult(
        Source("commit abc"), None, "Commit", None, "abc",
        [
            Finding(rule="z", severity=Severity.INFO, message="", source="presync"),
            Finding(rule="a", severity=Severity.ERROR, message="", source="presync"),
        ],
    )  # fmt: skip
    policies = gate.evaluate_policies([], extra=[extra])
    assert [f.rule for f in policies.results[-1].findings] == ["a", "z"]  # sorted like any result
    assert policies.denials() == ["[a] "]


def test_the_change_set_is_an_argument_not_state_of_a_shared_gatekeeper_check(write: Write) -> None:
    template = write(
        "gk/template.yaml",
        """\
        apiVersion: templates.gatekeeper.sh/v1
        kind: ConstraintTemplate
        metadata:
          name: uniquename
        spec:
          crd:
            spec:
              names:
                kind: UniqueName
          targets:
            - target: admission.k8s.gatekeeper.sh
              rego: |
                package uniquename
                violation[{"msg": msg}] {
                  other := data.inventory.namespace[ns][_][_][name]
                  other.metadata.name == input.review.object.metadata.name
                  ns != input.review.object.metadata.namespace
                  msg := sprintf("name %v is used in namespace %v", [name, ns])
                }
        ---
        apiVersion: constraints.gatekeeper.sh/v1beta1
        kind: UniqueName
        metadata:
          name: unique
        spec:
          match:
            kinds:
              - apiGroups: [""]
                kinds: ["Pod"]
        """,
    )
    from trustgate.config import GatekeeperSettings

    config = Config(
        policies=(),
        kubernetes=KubernetesSettings(schemas=False),
        gatekeeper=GatekeeperSettings(paths=(template.parent,)),
    )
    gate = Gate(config=config)
    alone = _documents(write)
    other = _documents(write, POD.replace("namespace: shop", "namespace: other"))
    assert gate.evaluate_policies(alone).denials() == []
    both = gate.evaluate_policies([*alone, *other]).denials()
    assert both and all("is used in namespace" in d for d in both)
    assert gate.evaluate_policies(alone).denials() == []  # the earlier change set is gone

    # The same compiled check in another thread: its own engine, its own change set.
    results: list[list[str]] = []
    thread = threading.Thread(target=lambda: results.append(gate.evaluate_policies(alone).denials()))
    thread.start()
    thread.join()
    assert results == [[]]
    gate.close()


def test_combine_without_a_policy_of_ones_own_says_nothing_checked_the_combined_input(write: Write) -> None:
    path = write("m.yaml", POD)
    config = Config(policies=(), kubernetes=KubernetesSettings(schemas=False))
    decision = Gate(config=config, combine=True).check([str(path)])
    combined = decision.results[-1]
    assert combined.source.file == "Combined"
    (finding,) = combined.findings
    assert finding.rule == "input/not-kubernetes" and finding.message.startswith("--combine:")
