"""What a finding weighs: severities, modes, exceptions, finding order, failure verdicts.

Owns: the one mapping of (blocking, mode) to a severity that every gate uses
(CI, pre-sync, webhook), exceptions (waivers) and their expiry, the order
findings are reported in, the findings the gate itself makes (input
problems, documents nothing checked), and the decision a gate makes when it
could not evaluate at all (a deadline, an internal failure), told apart by a
typed reason. Leaves out: evaluating anything, and recording (see
`trustgate.gate.recorder`).
"""

from __future__ import annotations

import datetime as dt
import enum
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from trustgate.config import ExceptionRule
from trustgate.model import (
    AppliedException,
    Decision,
    DocumentResult,
    Finding,
    InputProblem,
    Mode,
    Severity,
    Source,
)
from trustgate.oci.reference import (
    InvalidReferenceError,
    Reference,
    canonical_name,
    glob_pattern,
    name_pattern,
)
from trustgate.policy import rego

# Sources whose findings exceptions may waive: what a policy decided, not what could not be evaluated.
WAIVABLE_SOURCES = ("schema", "rego", "gatekeeper", "admission-policy")


def severity(blocking: bool, mode: Mode) -> Severity:
    """The severity of a finding under a mode: audit only records, warn never blocks."""
    if mode == Mode.AUDIT:
        return Severity.INFO
    if blocking and mode == Mode.ENFORCE:
        return Severity.ERROR
    return Severity.WARNING


def finding_order(f: Finding) -> tuple[int, int, str]:
    """Errors first, then warnings, then infos; within each, by line, then rule."""
    rank = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}[f.severity]
    return (rank, f.line or 0, f.rule)


@dataclass(frozen=True, slots=True)
class Waivers:
    """The configured exceptions, judged against a fixed date, or (None) the date of each use: a
    long-running gate (the webhook) must stop waiving on the day an exception expires."""

    rules: tuple[ExceptionRule, ...]
    today: dt.date | None = None

    def date(self) -> dt.date:
        return self.today if self.today is not None else dt.date.today()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def expired_notes(self) -> list[str]:
        return [
            f"exception {e.name!r} (owner {e.owner}) expired on {e.expires.isoformat()} and no longer applies"
            for e in self.rules
            if e.expired(self.date())
        ]

    def apply(
        self,
        namespace: str | None,
        kind: str | None,
        name: str | None,
        finding: Finding,
        *,
        scope_unknown: bool = False,
    ) -> None:
        """Waive the finding (severity info, the exception recorded) if an exception covers it.

        `scope_unknown` says that the object is a manifest of a kind whose scope is unknown (no
        CRD given): if the kind is cluster-scoped, the API server clears the namespace it names,
        so an exception's `namespaces` covers it only if they cover no namespace as well (`*`).
        """
        expired: list[ExceptionRule] = []
        unscoped: list[ExceptionRule] = []
        today = self.date()
        for exc in self.rules:
            if not _covers(exc, namespace, kind, name, finding):
                continue
            if exc.expired(today):
                expired.append(exc)
                continue
            if scope_unknown and namespace and not _covers(exc, None, kind, name, finding):
                unscoped.append(exc)
                continue
            finding.exception = AppliedException(exc.name, exc.owner, exc.reason, exc.expires.isoformat())
            if finding.severity != Severity.INFO:
                finding.note = f"waived by exception {exc.name!r} (was {finding.severity})"
            finding.severity = Severity.INFO
            return
        if expired:
            exc = expired[0]
            finding.exception = AppliedException(
                exc.name, exc.owner, exc.reason, exc.expires.isoformat(), expired=True
            )
            finding.note = (
                f"exception {exc.name!r} (owner {exc.owner}) expired on {exc.expires.isoformat()} "
                "and no longer applies"
            )
        elif unscoped:
            finding.note = (
                f"exception {unscoped[0].name!r} does not apply: the scope of {kind or 'its kind'} is "
                f"unknown, and if it is cluster-scoped the API server clears its namespace "
                f"({namespace}); give its CustomResourceDefinition with --crd (kubernetes.crds)"
            )


def rego_finding(item: rego.RawFinding, mode: Mode) -> Finding:
    """A Rego result as a finding; conftest's `exception` of the package itself waives it."""
    finding = Finding(
        rule=item.rule,
        severity=severity(item.blocking, mode),
        rule_severity=Severity.ERROR if item.blocking else Severity.WARNING,
        message=item.message,
        source="rego",
        fix=item.fix,
        path=item.path,
        policy=item.package,
        metadata=item.metadata,
    )
    if item.exception:  # conftest's `exception`, defined by the policy package itself
        finding.exception = AppliedException(
            f"data.{item.package}.exception", f"Rego package {item.package}", item.exception, "never"
        )
        if finding.severity != Severity.INFO:
            finding.note = f"waived by the policy's own exception (was {finding.severity})"
        finding.severity = Severity.INFO
    return finding


def policy_error(message: str, fix: str) -> Finding:
    """A policy failed on a document: that document could not be evaluated."""
    return Finding(rule="policy/error", severity=Severity.ERROR, message=message, source="engine", fix=fix)


def unchecked(*, combined: bool) -> Finding:
    """Nothing of the user's checked a document that is not a Kubernetes object (or --combine's input)."""
    if combined:
        message = "--combine: no policy of your own (-p) evaluated the combined input"
    else:
        message = (
            "not a Kubernetes object (no apiVersion and kind): only your own policies check such "
            "documents, and none was given, so nothing checked this one"
        )
    return Finding(
        rule="input/not-kubernetes",
        severity=Severity.INFO,
        rule_severity=Severity.INFO,
        message=message,
        source="trustgate",
        fix="give a policy of your own for it (-p, or manifests.policies in trustgate.yaml), or exclude "
        "the file (--exclude, or manifests.exclude)",
    )


def problem_result(problem: InputProblem) -> DocumentResult:
    """An input that could not be read, as a result that could not be evaluated."""
    finding = Finding(
        rule=problem.rule,
        severity=Severity.ERROR,
        message=problem.message,
        source="input",
        fix=problem.hint,
        line=problem.source.line,
    )
    return DocumentResult(problem.source, None, None, None, None, [finding])


class Failure(enum.Enum):
    """Why a gate decided without evaluating: each kind names who must act."""

    DEADLINE = "registry"  # the deadline passed (a registry or the log did not answer in time)
    INTERNAL = "engine"  # evaluation failed, or the policies did not compile


def failure_decision(
    label: str, reason: str, *, failure: Failure, fail_open: bool, revision: str, notes: Sequence[str] = ()
) -> Decision:
    """A decision made without evaluating (the webhook's deadline, an internal error), for the log.

    Args:
        label: what was under review, `Kind/namespace/name`; its kind names the result.
        reason: why nothing was evaluated, for the record and the answer.
        failure: the kind of failure; it decides the finding's source.
        fail_open: the failure policy allows the request (a warning) or denies it (an error).
        revision: the policy revision that would have evaluated it.
        notes: notes of the request (why an UPDATE skipped images, ...).
    """
    finding = Finding(
        rule="admission/not-evaluated",
        severity=Severity.WARNING if fail_open else Severity.ERROR,
        message=f"{reason}; failure policy {'open: allowed' if fail_open else 'closed: denied'}",
        source=failure.value,
    )
    result = DocumentResult(Source(f"admission:{label}"), None, label.split("/", 1)[0], None, None, [finding])
    return Decision(
        gate="admission", mode=Mode.ENFORCE, results=[result], policy_revision=revision, notes=list(notes)
    )


def _covers(
    exc: ExceptionRule, namespace: str | None, kind: str | None, name: str | None, finding: Finding
) -> bool:
    if not any(fnmatch.fnmatchcase(finding.rule, pattern) for pattern in exc.rules):
        return False
    checks: list[tuple[tuple[str, ...], str | None]] = [
        # An object that names no namespace is not in `default`: kubectl, a Flux targetNamespace or
        # an Argo CD destination may put it anywhere (or it is cluster-scoped: the gate gives a
        # cluster-scoped kind no namespace, whatever its metadata says). Only `*` covers it.
        (exc.namespaces, namespace or ""),
        (exc.kinds, kind),
        (exc.names, name),
    ]
    for patterns, value in checks:
        if patterns and (value is None or not any(fnmatch.fnmatchcase(value, p) for p in patterns)):
            return False
    if exc.images:
        image = finding.metadata.get("image")
        if not isinstance(image, str) or not _image_covered(exc.images, image):
            return False
    return True


def _image_covered(patterns: Sequence[str], image: str) -> bool:
    """Whether an image falls under an exception's `images`, as under an image rule's: a glob over
    `registry/repository` after normalisation (`nginx` is `docker.io/library/nginx`), `*` within
    one path segment, a registry's default port left out. fnmatch's `*` crossed `/`, so
    `*.acme.io/legacy/*` covered the Docker Hub image `evil/x.acme.io/legacy/rootkit`. Only a
    pattern that names a tag or digest itself (`shop/proxy:1.*`) is matched against the whole
    reference: otherwise a pusher's tag (`prod:v2-debug`) would pick the waiver meant for
    `*-debug` repositories. A reference that does not parse (an unresolved `${TAG}`) is covered by
    no pattern: what it becomes is unknown (`prod:${TAG}-debug` matched `*-debug`, and a `*`
    over `${REG}` covered whatever registry it would name); an exception without `images` can
    still waive its findings.
    """
    try:
        ref = Reference.parse(image)
    except InvalidReferenceError:
        return False
    names, whole = [ref.name], [str(ref)]
    names += [bare for name in names if (bare := canonical_name(name)) is not None]
    whole += [bare for name in whole if (bare := canonical_name(name)) is not None]
    for pattern in map(name_pattern, patterns):
        last = pattern.rpartition("/")[2]
        against = whole if ":" in last or "@" in last else names
        if any(glob_pattern(pattern).fullmatch(name) for name in against):
            return True
    return False
