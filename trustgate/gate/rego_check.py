"""Rego policies (the bundled library and the user's own) as a gate check.

Owns: evaluating each Rego group on a document with this thread's engines,
which packages count (a package's mode is its source's), conftest's
`--combine` (the user's packages judge every document at once instead), the
pod templates of custom resources that the Rego library cannot reach (judged
by the bundled sets and by the user's packages that read the library), and
the user's policies over documents that are not Kubernetes objects (with
their lines and exceptions, as the gate applies them to objects).
Leaves out: compiling (`trustgate.gate.sources.compile_rego`), and lines and
exceptions of Kubernetes objects' findings (the gate applies them to every
check's findings alike).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trustgate import kinds, yamlio
from trustgate.errors import PolicyError
from trustgate.gate.checks import Run
from trustgate.gate.sources import WORKLOAD_GATED, RegoGroup
from trustgate.gate.verdict import Waivers, finding_order, policy_error, rego_finding, severity, unchecked
from trustgate.model import Document, DocumentResult, Finding, Mode, Severity, Source
from trustgate.policy import rego, rego_text

# The finding for a custom resource that carries a pod template of a kind nobody declared.
UNDECLARED_WORKLOAD = "undeclared-workload"
# The Rego library's package: where the pods of a document are (policies/lib/k8s.rego).
LIBRARY = ("trustgate", "lib", "k8s")
_STRICTNESS = (Mode.ENFORCE, Mode.WARN, Mode.AUDIT)


class _Local(threading.local):
    pid = -1
    evaluators: list[rego.RegoEvaluator] | None = None


class RegoCheck:
    """The compiled Rego groups; share it, each thread (and forked worker) builds its own engines."""

    name = "rego"
    wants_change_set = False
    judges_delete_and_connect = False  # Rego judges objects, not their deletion or a CONNECT

    def __init__(
        self, groups: Sequence[RegoGroup], *, combine: bool = False, workloads: kinds.Workloads | None = None
    ) -> None:
        self.groups = tuple(groups)
        self.combine = combine
        self.has_user = any(g.user for g in self.groups)
        self.workloads = workloads if workloads is not None else kinds.Workloads.of(())
        # The bundled workload sets evaluated, with their modes (None: the gate's): they judge the
        # pods of the kinds they know, and name a pod template of a kind they do not know.
        self._pod_sets: dict[str, Mode | None] = {
            package: group.modes.get(package)
            for group in self.groups
            for package in group.policy.rules
            if package in WORKLOAD_GATED and package not in group.user
        }
        # Per group, the packages evaluated on each pod template the library cannot reach: the
        # bundled sets, and the user's packages that read the library (under --combine those see
        # the combined input instead).
        self._site_packages: tuple[frozenset[str], ...] = tuple(
            frozenset(p for p in group.policy.rules if p in self._pod_sets)
            | (frozenset() if combine else library_readers(group))
            for group in self.groups
        )
        self._local = _Local()

    def _evaluators(self) -> list[rego.RegoEvaluator]:
        local = self._local
        pid = os.getpid()
        if local.evaluators is None or local.pid != pid:  # engines are per process and thread
            local.pid, local.evaluators = pid, [g.policy.evaluator() for g in self.groups]
        return local.evaluators

    def release(self) -> None:
        """Drop this thread's engines here, on their thread (an engine cannot be dropped on another),
        and each policy's compile-time engine if this thread made it and never evaluated with it."""
        vars(self._local).clear()
        for group in self.groups:
            group.policy.drop_spare()

    def notes(self) -> Sequence[str]:
        return ()

    def offline_notes(self) -> Sequence[str]:
        return ()

    def results(self) -> Sequence[DocumentResult]:
        return ()

    def fingerprint(self, digest: hashlib._Hash) -> None:
        for group in self.groups:
            for module in group.policy.modules:
                digest.update(module.path.encode() + b"\0" + module.text.encode() + b"\0")

    def findings(self, doc: Document, run: Run) -> list[Finding]:
        findings: list[Finding] = []
        for evaluator, group in zip(self._evaluators(), self.groups, strict=True):
            keep = _not_in(group.user) if self.combine else None  # --combine: those see the combined input
            raw = _evaluate(evaluator, doc.obj, findings, "this document", keep)
            findings.extend(rego_finding(item, group.modes.get(item.package) or run.mode) for item in raw)
        if any(self._site_packages):
            findings.extend(self._pod_site_findings(doc, run, findings))
        return findings

    def _pod_site_findings(self, doc: Document, run: Run, judged: Sequence[Finding]) -> list[Finding]:
        """For a known or declared custom workload, the findings of the bundled sets and of the
        user's packages that read the library on the containers the library does not reach
        (`kinds.pod_sites`: pod templates inside lists or maps, `podSpec: "*"`, or beside the
        declared pod spec), at their real paths, less those the whole document's evaluation
        (`judged`) made already; for a custom resource of a kind neither known nor declared that
        carries containers anywhere, with the bundled sets, the `undeclared-workload` finding.
        Either way its controller would otherwise run pods nobody judged: a false allow."""
        obj = doc.obj
        # An undeclared kind's finding follows the bundled sets (README): without them, not walked.
        found = self.workloads.sites(obj, undeclared=bool(self._pod_sets))
        if found is None:
            return []
        kind, group, entry, sites = found
        if not sites:
            return []
        if entry is None:
            # Not judged by guessing what its containers are (ADR 1): named, with the ways out.
            return [self._undeclared(kind, group, sites, run)]
        findings: list[Finding] = []
        judged_keys = frozenset(repr(f) for f in judged)
        seen = set(judged_keys)
        for site in sites:
            findings.extend(self._judge_site(obj, site, entry.batch, run, judged_keys, seen))
        return findings

    def _judge_site(
        self,
        obj: Mapping[str, Any],
        site: kinds.PodSite,
        batch: bool,
        run: Run,
        judged: frozenset[str],
        seen: set[str],
    ) -> list[Finding]:
        """The bundled sets and the user's packages that read the library over one site, given to
        them as the pod of a Job (batch: no probe warnings) or a PodTemplate with the owner's
        metadata, with the findings' paths put back where the site is; less (and added to) `seen`
        (their `repr`), what the document and the other sites gave: a rule about the owner rather
        than the pod (its labels) finds the same on every site. A message without a path is placed
        at the site, so the same message of two sites (a container both name `pytorch`) is two
        findings, each where it is; one equal to what the document itself gave (`judged`) is not."""
        template = {"metadata": dict(site.metadata), "spec": dict(site.pod)}
        metadata = obj.get("metadata")
        head = {"metadata": dict(metadata) if isinstance(metadata, Mapping) else {}}
        if batch:
            pod_input = {"apiVersion": "batch/v1", "kind": "Job", **head, "spec": {"template": template}}
            prefix: tuple[str | int, ...] = ("spec", "template")
        else:
            pod_input = {"apiVersion": "v1", "kind": "PodTemplate", **head, "template": template}
            prefix = ("template",)
        findings: list[Finding] = []
        for evaluator, group, packages in zip(
            self._evaluators(), self.groups, self._site_packages, strict=True
        ):
            if not packages:
                continue
            raw = _evaluate(evaluator, pod_input, findings, "this document", packages.__contains__)
            podless: set[tuple[str, str]] | None = None  # what the user's packages find with no pod
            for item in raw:
                finding = rego_finding(item, group.modes.get(item.package) or run.mode)
                if item.path:
                    finding.path = _site_path(site, prefix, item.path)
                elif repr(finding) in judged:
                    continue  # the document itself gave it: a rule about the owner, not the pod
                else:  # a message without a path: at the site it is about, one finding a site
                    finding = dataclasses.replace(finding, path=site.path)
                key = repr(finding)  # its every field
                if key in seen:
                    continue
                seen.add(key)
                if item.package in group.user and not _into_pod(item.path, prefix):
                    if podless is None:
                        podless = _podless(evaluator, pod_input, prefix, group.user)
                    if (item.package, item.message) in podless:  # not about this pod, it seems
                        finding.note = _synthetic_note(site, obj, item.package, pod_input)
                findings.append(finding)
        return findings

    def _undeclared(self, kind: str, group: str, sites: Sequence[kinds.PodSite], run: Run) -> Finding:
        """The finding for a custom resource carrying containers of a kind neither known nor
        declared. It follows the strictest mode of the bundled sets and an exception may waive it."""
        mode = min((m or run.mode for m in self._pod_sets.values()), key=_STRICTNESS.index)
        first = sites[0]
        message, fix = kinds.undeclared_text(
            kind,
            group,
            sites,
            ", ".join(sorted(self._pod_sets)),
            "add batch: true if its pods run to completion",
        )
        return Finding(
            rule=UNDECLARED_WORKLOAD,
            severity=severity(True, mode),
            rule_severity=Severity.ERROR,
            message=message,
            source="rego",
            fix=fix,
            path=first.containers_path,
            policy="trustgate.lib.k8s",
        )

    @staticmethod
    def combined_input(documents: Sequence[Document]) -> list[dict[str, Any]]:
        """conftest's `--combine` input: `[{"path": file, "contents": document}, ...]`, stably by path.

        The result is reported as the file `Combined`, as conftest does.
        """
        return sorted(
            ({"path": d.source.file, "contents": d.obj} for d in documents), key=lambda c: str(c["path"])
        )

    def user_result(
        self,
        value: Any,
        tree: Any,
        source: Source,
        run: Run,
        waivers: Waivers,
        *,
        keep: bool,
        combined: bool = False,
    ) -> DocumentResult:
        """The user's own policies over a value that is not a Kubernetes object (or the combined input).

        Lines come from `tree`; exceptions apply; when the user gave no policy, one info finding
        says that nothing checked it.
        """
        what = "the combined input" if combined else "this document"
        findings = self.user_findings(value, run, what)
        if findings is None:
            findings = [unchecked(combined=combined)]
        for finding in findings:
            if finding.path:
                finding.line = yamlio.locate(tree, finding.path)
            if waivers and finding.source == "rego" and finding.exception is None:
                waivers.apply(None, None, None, finding)
        findings.sort(key=finding_order)
        kept = value if keep and isinstance(value, Mapping) else None
        return DocumentResult(source, None, None, None, None, findings, kept)

    def user_findings(self, value: Any, run: Run, what: str) -> list[Finding] | None:
        """Findings of the user's own packages on any value; None when the user gave none."""
        findings: list[Finding] = []
        evaluated = False
        for evaluator, group in zip(self._evaluators(), self.groups, strict=True):
            if not group.user:
                continue
            evaluated = True
            raw = _evaluate(evaluator, value, findings, what, group.user.__contains__)
            findings.extend(rego_finding(r, group.modes.get(r.package) or run.mode) for r in raw)
        return findings if evaluated else None


def _evaluate(
    evaluator: rego.RegoEvaluator,
    value: Any,
    errors: list[Finding],
    what: str,
    keep: Callable[[str], bool] | None,
) -> list[rego.RawFinding]:
    """What the packages `keep` accepts (all when None) find; a rule that fails adds to `errors`.

    A rule failing at run time makes the document "not evaluated", but what the other rules
    found is kept: a real violation still blocks (ADR 7: it denies even where the failure
    policy is open).
    """
    fix = f"fix the policy: it failed on {what}"
    try:
        raw = evaluator.evaluate(value)
    except rego.RuleEvaluationError as e:
        raw = e.findings
        errors.extend(policy_error(f.text(), fix) for f in e.failures if keep is None or keep(f.package))
    except PolicyError as e:  # the input (a lone surrogate, a huge integer): its hint says what to do
        errors.append(policy_error(e.message, e.hint or fix))
        return []
    return raw if keep is None else [r for r in raw if keep(r.package)]


def _site_path(
    site: kinds.PodSite, prefix: tuple[str | int, ...], path: tuple[str | int, ...]
) -> tuple[str | int, ...]:
    """`path`, into the input `_judge_site` built, as a path into the custom resource."""
    if path[:1] == ("metadata",):
        return path  # the owner's metadata, where it is
    n = len(prefix)
    if path[:n] != prefix or len(path) <= n:
        return site.path
    rest = path[n + 1 :]
    if path[n] == "spec":
        return site.real_path(rest)
    if path[n] == "metadata" and site.shape == "pod" and site.path[-1] == "spec":
        return (*site.path[:-1], "metadata", *rest)
    return site.path


def _into_pod(path: tuple[str | int, ...], prefix: tuple[str | int, ...]) -> bool:
    """Whether a finding's `path` (into the input `_judge_site` built) leads into the pod template
    or the owner's metadata: what the real object holds."""
    return path[:1] == ("metadata",) or (path[: len(prefix)] == prefix and len(path) > len(prefix))


def _podless(
    evaluator: rego.RegoEvaluator,
    pod_input: Mapping[str, Any],
    prefix: tuple[str | int, ...],
    user: frozenset[str],
) -> set[tuple[str, str]]:
    """(package, message) of what the user's packages find in `pod_input` with an empty pod
    template: a finding there too does not depend on the pod (or asks for something no pod has)."""
    empty: dict[str, Any] = {"metadata": {}, "spec": {}}
    podless = (
        {**pod_input, "spec": {"template": empty}}
        if prefix == ("spec", "template")
        else {
            **pod_input,
            "template": empty,
        }
    )
    return {(r.package, r.message) for r in _evaluate(evaluator, podless, [], "", user.__contains__)}


def _synthetic_note(
    site: kinds.PodSite, obj: Mapping[str, Any], package: str, pod_input: Mapping[str, Any]
) -> str:
    """Why a finding of the user's package that points at no field of the pod template, and that the
    package gives with no pod as well, may be about the Job or PodTemplate the template was given
    as rather than about its pod; and the way out."""
    kind, api_version = pod_input["kind"], pod_input["apiVersion"]
    where = ".".join(map(str, site.path))
    return (
        f"{package} was given the pod template at {where} as the pod of a {kind} ({api_version}) with "
        f"the {obj.get('kind')}'s metadata, and finds this whatever that pod holds: if the rule is about "
        f"real {kind}s, keep it in a package that does not refer to data.trustgate.lib.k8s (such a "
        "package is not given pod templates)"
    )


def _not_in(packages: frozenset[str]) -> Callable[[str], bool]:
    return lambda package: package not in packages


def library_readers(group: RegoGroup) -> frozenset[str]:
    """The user's packages of `group` that may read the Rego library's pods: a module of theirs
    refers to `data.trustgate.lib.k8s` (or to a document above it: `import data.trustgate.lib`,
    `data[x]`), or to a package that does, read from the text (`rego_text.data_paths`). When in
    doubt a package counts: judged twice is better than a pod nobody judged."""
    if not group.user:  # the bundled sets alone: nothing to read (a few ms of every run)
        return frozenset()
    text = {m.path: m.text for m in group.policy.modules}
    refs = {
        package: set().union(*(rego_text.data_paths(text[f]) for f in files if f in text))
        for package, files in group.policy.package_files.items()
    }
    readers = {".".join(LIBRARY)}
    grown = True
    while grown:  # through the packages that read those (a helper package of the user's)
        grown = False
        for package, paths in refs.items():
            if package not in readers and any(rego_text.reads(paths, tuple(r.split("."))) for r in readers):
                readers.add(package)
                grown = True
    return frozenset(readers & group.user)
