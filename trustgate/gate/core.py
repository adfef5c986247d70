"""The one orchestrator: documents in, a `Decision` out, the same for every gate.

Owns: building the checks of a configuration once (`ENGINES` and Rego, from
what `trustgate.gate.sources` read), evaluating each document against them
in two phases (schemas and policies, then images), applying lines and
exceptions to every finding alike, and handing each decision to the
recorder. It is the only place that decides what is a finding and what is
fatal. Leaves out: how a request arrives (CLI, webhook, git), how the
decision is rendered, what a finding weighs (`trustgate.gate.verdict`),
engines (`trustgate.gate.checks`) and worker processes
(`trustgate.gate.parallel`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trustgate import kinds
from trustgate.config import Config
from trustgate.errors import Error
from trustgate.gate import checks, parallel
from trustgate.gate.checks import Build, Check, Run
from trustgate.gate.images import ImageStage
from trustgate.gate.rego_check import RegoCheck
from trustgate.gate.sources import compile_rego, load_policy_data, read_crds
from trustgate.gate.verdict import WAIVABLE_SOURCES, Waivers, finding_order, problem_result
from trustgate.manifests import loader, origins, variables
from trustgate.manifests.images import chart_repository, find_images
from trustgate.model import (
    NOT_EVALUATED_SOURCES,
    Decision,
    Document,
    DocumentResult,
    Finding,
    ImageResult,
    ImageUse,
    InputProblem,
    Severity,
    Source,
)

# A SOPS-encrypted object read from a file: not evaluated, unless an exception names this rule itself.
ENCRYPTED_RULE = "input/encrypted"

if TYPE_CHECKING:
    from trustgate.artifacts.cache import VerificationCache
    from trustgate.artifacts.verifier import ImageVerifier
    from trustgate.decisions.log import DecisionLog
    from trustgate.decisions.record import DecisionContext
    from trustgate.gate.recorder import Recorder
    from trustgate.oci.client import Registry

Preread = Mapping[str, tuple[list[Document], list[InputProblem]]]


@dataclass(slots=True)
class Policies:
    """The first phase of an evaluation: every document judged by schemas and policies, images not yet.

    Attributes:
        results: one result per document, problem and extra result, findings sorted.
        started: `time.perf_counter()` when the evaluation began (the decision's duration).
    """

    results: list[DocumentResult]
    started: float

    def denials(self) -> list[str]:
        """`[rule] message` of each blocking finding: what denies whatever the images hold."""
        return [
            f"[{f.rule}] {f.message}"
            for r in self.results
            for f in r.findings
            if f.severity == Severity.ERROR
        ]


class Gate:
    """Evaluates documents against one configuration.

    Build it once (it compiles every policy and reports broken ones up
    front), then call `check` or `evaluate` as often as needed. Its checks
    keep engines per thread and never change during an evaluation, but the
    Gate itself holds registry connections and the summaries of the decision
    being made: use one Gate per thread.
    """

    def __init__(
        self,
        *,
        config: Config,
        today: dt.date | None = None,
        jobs: int = 1,
        combine: bool = False,
        registry: Registry | None = None,
        image_cache: VerificationCache[ImageResult] | None = None,
        decision_log: DecisionLog | None = None,
        substitution: variables.Substitution | None = None,
    ) -> None:
        """Compile the configuration.

        Args:
            config: the configuration (see `Config.default()`).
            today: the date exceptions expire against (tests fix it); None: the day of each
                evaluation, so a long-running gate stops waiving on the day an exception expires.
            jobs: worker processes for large inputs; 1 evaluates in-process.
            combine: conftest's `--combine`: the user's own policies see every document of a
                `check` at once, as a list of `{"path", "contents"}`, instead of each document.
            registry: where images are fetched from; default: a client built from `images.registries`.
            image_cache: where verification results are kept; default: in memory, per Gate.
            decision_log: where every decision is recorded (per `config.decision_log`).
            substitution: `check` judges what it reads as Flux applies it with these variables
                (`variables.substitute`); None: as written.

        Raises:
            PolicyError: a policy does not parse or names a missing package.
            ConfigError: data files, CRDs or the Kubernetes version are unusable.
        """
        self.config = config
        self.jobs = max(1, jobs)
        self.combine = combine
        self.substitution = substitution
        self.waivers = Waivers(tuple(config.exceptions), today)  # None: the day of each evaluation
        self._waive = bool(config.exceptions)  # per finding: a plain bool, not a call
        data = load_policy_data(config)
        crds = read_crds(config)
        # The namespace each object is judged in follows the API server: none for a cluster-scoped kind.
        self.scopes = kinds.Scopes.from_crds(crds)
        build = Build(config, data, combine, crds, self.scopes)
        workloads = config.workload_table()
        self.rego = RegoCheck(
            compile_rego(config.policies, data, mode=config.mode, workloads=workloads),
            combine=combine,
            workloads=workloads,
        )
        self.images = ImageStage(
            config,
            data,
            waivers=self.waivers,
            registry=registry,
            image_cache=image_cache,
            decision_log=decision_log,
        )
        self.checks: tuple[Check, ...] = tuple(c for make in checks.ENGINES if (c := make(build)) is not None)
        self._wants_change_set = any(c.wants_change_set for c in self.checks)
        self.policy_revision = self._revision(data)
        self.decision_log = decision_log
        self.recorder: Recorder | None = None
        if decision_log is not None:
            from trustgate.gate.recorder import Recorder

            self.recorder = Recorder(decision_log, config.decision_log)

    def _revision(self, data: Any) -> str:
        digest = hashlib.sha256()
        digest.update(repr(self.config).encode())
        digest.update(json.dumps(data, sort_keys=True, default=str).encode())
        self.rego.fingerprint(digest)
        if self.images.policy is not None:
            for rule in self.images.policy.rules:
                digest.update(rule.digest.encode())
        for check in self.checks:
            check.fingerprint(digest)
        return "sha256:" + digest.hexdigest()

    @staticmethod
    def shared_image_cache(config: Config) -> VerificationCache[ImageResult]:
        """An in-memory cache of verification results to share between the Gates of one process."""
        from trustgate.artifacts.cache import MemoryCache

        return MemoryCache(config.images.cache.max_entries)

    @property
    def verifier(self) -> ImageVerifier:
        """The image verifier (built on first use; the registry client opens no connection before)."""
        return self.images.verifier

    def close(self) -> None:
        """Close the registry connections the gate opened (not a registry it was given), and drop
        this thread's engines on this thread (the Gate may be collected later on another)."""
        self.images.close()
        self.rego.release()
        for check in self.checks:
            check.release()

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the gates' entry points ----------------------------------------------

    def check(
        self,
        paths: Sequence[str],
        *,
        stdin: bytes | None = None,
        gate: str = "ci",
        context: DecisionContext | None = None,
    ) -> Decision:
        """Read and evaluate files, directories, kustomizations and stdin; record the decision.

        Raises:
            InputError: a named path does not exist (nothing was evaluated).
        """
        started = time.perf_counter()
        skipped = loader.Skipped()
        # Nothing below a named directory goes unjudged: what a kustomization there does not
        # render (another kustomization, a loose manifest) is read too (`loader`'s docstring).
        units = loader.plan(
            paths,
            stdin=stdin,
            exclude=self.config.exclude,
            suffixes=loader.DATA_SUFFIXES,
            skipped=skipped,
            unreferenced=True,
        )
        preread: Preread = {}
        run = Run(self.config.mode)
        if self._wants_change_set or self.combine:
            # Checks that read the inventory see the whole change set: read it first.
            preread = {unit.path: self.read_unit(unit) for unit in units}
            if self._wants_change_set:
                run = Run(
                    self.config.mode, [d.obj for docs, _ in preread.values() for d in docs if d.kubernetes]
                )
        batches = _Batches(self, run, preread)
        results = parallel.run_units(units, batches.run_unit, jobs=self.jobs, prepare=batches.prepare)
        if self.combine:  # conftest's --combine: the user's own policies over every document at once
            # conftest combines whole documents: a `kind: List`, not the items unpacked from it
            value = RegoCheck.combined_input(
                [d for docs, _ in preread.values() for d in docs if d.list_role != "item"]
            )
            keep = self.decision_log is not None
            results.append(
                self.rego.user_result(
                    value, None, Source("Combined"), run, self.waivers, keep=keep, combined=True
                )
            )
        decision = self.decide(Policies(results, started), gate=gate)
        decision.notes.extend(_skipped_notes(skipped))
        return self.record(decision, context)

    def evaluate(
        self,
        documents: Sequence[Document],
        problems: Sequence[InputProblem] = (),
        *,
        gate: str = "ci",
        context: DecisionContext | None = None,
        extra: Sequence[DocumentResult] = (),
        notes: Sequence[str] = (),
        verify_images: bool = True,
        old: Sequence[Mapping[str, Any]] = (),
    ) -> Decision:
        """Evaluate documents already loaded (pre-sync's path), both phases, and record the decision.

        See `evaluate_policies` for `extra`, `verify_images` and `old`.
        """
        policies = self.evaluate_policies(
            documents, problems, extra=extra, verify_images=verify_images, old=old
        )
        decision = self.decide(policies, gate=gate)
        decision.notes.extend(notes)
        return self.record(decision, context)

    def evaluate_policies(
        self,
        documents: Sequence[Document],
        problems: Sequence[InputProblem] = (),
        *,
        extra: Sequence[DocumentResult] = (),
        verify_images: bool = True,
        old: Sequence[Mapping[str, Any]] = (),
    ) -> Policies:
        """Phase one: judge documents that are already loaded by schemas and policies.

        The webhook answers a policy denial from here even when a registry hangs in phase two.
        `extra` are results a gate found itself (pre-sync: commits, deleted objects); exceptions
        apply to their findings as to any other. `verify_images=False` skips image verification
        (an admission UPDATE that keeps its image set). `old` are the objects as they are now
        (pre-sync: the gated tree): a document that is one of them is judged as an UPDATE of it
        (`oldObject`, CRD transition rules); the others, as without `old`, as a CREATE.
        """
        started = time.perf_counter()
        run = Run(
            self.config.mode,
            [d.obj for d in documents] if self._wants_change_set else (),
            checks.index_objects(old, self.scopes),
            self.scopes,
        )
        results = [problem_result(p) for p in problems] + [self._evaluate_document(d, run) for d in documents]
        if not verify_images:
            for result in results:
                result.images = []
        for result in extra:
            if self.waivers:
                # The gate's own results are of manifests (pre-sync's deleted objects), never admitted.
                kind = {"apiVersion": result.api_version, "kind": result.kind}
                scope_unknown = self.scopes.namespaced(kind) is None
                for finding in result.findings:
                    if finding.source not in NOT_EVALUATED_SOURCES:
                        self.waivers.apply(
                            result.namespace, result.kind, result.name, finding, scope_unknown=scope_unknown
                        )
            result.findings.sort(key=finding_order)
            results.append(result)
        return Policies(results, started)

    def decide(self, policies: Policies, *, gate: str = "ci", verify_unmatched: bool = False) -> Decision:
        """Phase two: verify the images the documents use, and make the decision (not yet recorded)."""
        results = policies.results
        images: list[ImageResult] = []
        if self.images.policy is not None or verify_unmatched:
            images = self.images.check(results, gate=gate)
        planned_id = self.images.issue(gate, images)
        notes = self.waivers.expired_notes()
        for check in self.checks:
            notes.extend(check.notes())
            if gate != "admission":
                notes.extend(check.offline_notes())
        if not verify_unmatched:  # `verify image` checks no manifests
            results = [*(r for check in self.checks for r in check.results()), *results]
        return Decision(
            gate=gate,
            mode=self.config.mode,
            results=results,
            policy_revision=self.policy_revision,
            duration_ms=(time.perf_counter() - policies.started) * 1000,
            notes=notes,
            images=images,
            planned_id=planned_id,
        )

    def record(self, decision: Decision, context: DecisionContext | None) -> Decision:
        """Record the decision (when there is a log), then attach the verification summaries it issued."""
        if self.recorder is not None:
            self.recorder.record(decision, context)
        self.images.attach(decision)
        return decision

    def verify_images(self, references: Sequence[str], *, gate: str = "ci") -> Decision:
        """Verify images named directly (`trustgate verify image`): one result per reference."""
        started = time.perf_counter()
        results = [
            DocumentResult(Source(ref), None, "Image", None, ref, [], images=[ImageUse(ref, ())])
            for ref in dict.fromkeys(references)
        ]
        return self.decide(Policies(results, started), gate=gate, verify_unmatched=True)

    # -- one document ------------------------------------------------------------

    def read_unit(self, unit: loader.Unit) -> tuple[list[Document], list[InputProblem]]:
        """Read one unit of `check`, each object as `self.substitution` applies it (if given)."""
        documents, problems = loader.read_unit(unit, self.config.limits, any_data=True)
        if self.substitution is not None:
            documents = [variables.apply(d, self.substitution) for d in documents]
        return documents, problems

    def run_unit(
        self,
        unit: loader.Unit,
        run: Run | None = None,
        preread: Preread | None = None,
        judged: Judged | None = None,
    ) -> list[DocumentResult]:
        """Read one unit (unless `preread` holds it) and evaluate each of its documents, in order
        (with the Rego findings `judged` holds for a document already)."""
        documents, problems = (preread or {}).get(unit.path) or self.read_unit(unit)
        run = run or Run(self.config.mode)
        documents = self._judged_documents(documents)
        results = [problem_result(p) for p in problems] + [
            self._evaluate_document(d, run, _judged(judged, d)) for d in documents
        ]
        results.sort(key=lambda r: (r.source.line, r.source.index))
        return results

    def _judged_documents(self, documents: list[Document]) -> list[Document]:
        """The documents of a unit that are evaluated."""
        if self.rego.has_user:
            return documents
        return [d for d in documents if d.list_role != "list"]  # a whole `kind: List`: for user policies

    def _evaluate_document(
        self, doc: Document, run: Run, rego: list[Finding] | None = None
    ) -> DocumentResult:
        if not doc.kubernetes:
            return self._evaluate_data(doc, run)
        # A cluster-scoped kind's metadata.namespace is cleared by the API server: an exception for a
        # namespace does not cover it, and its result names none.
        namespace = self.scopes.namespace_of(doc.obj) or None
        # A manifest of a kind whose scope is unknown may be cluster-scoped, its namespace cleared:
        # an exception for the namespace it names does not cover it (admission's is the server's).
        scope_unknown = doc.request is None and self.scopes.namespaced(doc.obj) is None
        if doc.encrypted:
            return self._encrypted_result(doc, namespace, scope_unknown)
        findings: list[Finding] = []
        no_object = checks.is_delete_or_connect(doc)
        # A subresource's write (a Scale) goes to admission policies and Gatekeeper only, as the
        # API server and Gatekeeper judge it; schemas, Rego and images judge the objects stored.
        subresource = checks.is_subresource_write(doc)
        for check in self.checks:
            # An admission DELETE (the object deleted) or CONNECT (its options) goes to the engines that
            # judge those only (admission policies); the others, and Rego, judge objects.
            if subresource:
                if checks.judges_subresources(check, doc):
                    findings.extend(check.findings(doc, run))
            elif not no_object or checks.judges_delete_and_connect(check):
                findings.extend(check.findings(doc, run))
        no_object = no_object or subresource
        if not no_object:
            findings.extend(rego if rego is not None else self.rego.findings(doc, run))
        for finding in findings:
            where = ""
            if finding.path:
                finding.line, where = origins.locate(doc, finding.path)
            if (
                self._waive
                and finding.source in WAIVABLE_SOURCES
                and finding.exception is None  # the policy's own conftest `exception` waived it
            ):
                self.waivers.apply(namespace, doc.kind, doc.name, finding, scope_unknown=scope_unknown)
            if where:  # the line is the object's, not the field's: say where the field is
                finding.note = f"{finding.note}; {where}" if finding.note else where
            if doc.applied_as:  # one application of several: say which
                applied = f"as {doc.applied_as} applies it{doc.applied_phrase} (post-build substitution done)"
                finding.note = f"{applied}; {finding.note}" if finding.note else applied
                finding.metadata = {
                    **finding.metadata,
                    "appliedAs": doc.applied_as,
                    **({"appliedWith": doc.applied_with} if doc.applied_with else {}),
                }
        findings.sort(key=finding_order)
        images: list[ImageUse] = []
        charts: str | None = None
        if self.images.policy is not None and not no_object:  # a deletion or a CONNECT runs no image
            images = [
                dataclasses.replace(u, line=origins.locate(doc, u.path)[0]) for u in find_images(doc.obj)
            ]
            charts = chart_repository(doc.obj)
        keep = doc.obj if self.decision_log is not None else None  # the record stores or hashes it
        return DocumentResult(
            doc.source,
            doc.api_version,
            doc.kind,
            namespace,
            doc.name,
            findings,
            keep,
            images=images,
            scope_unknown=scope_unknown,
            chart_repository=charts,
        )

    def _encrypted_result(self, doc: Document, namespace: str | None, scope_unknown: bool) -> DocumentResult:
        """A SOPS-encrypted object: not evaluated (Flux applies the plaintext, which is not here), unless
        an exception names `input/encrypted` itself (a glob such as `*` does not: a waiver meant for
        other findings never stops the plaintext from being judged)."""
        finding = Finding(
            rule=ENCRYPTED_RULE,
            severity=Severity.ERROR,
            message="this object is encrypted with SOPS (it carries sops.mac): Flux decrypts it and "
            "applies the plaintext, which trustgate cannot read, so what is applied would not be checked",
            source="input",
            fix="decrypt it in CI with the key Flux uses and check the plaintext (`sops -d FILE | trustgate "
            f"check -`), or add an exception whose rules name {ENCRYPTED_RULE} to accept it unjudged, "
            "scoped as narrowly as it can be (e.g. `kinds: [Secret]` where only Secrets are encrypted)",
            line=doc.source.line,
        )
        explicit = tuple(e for e in self.waivers.rules if ENCRYPTED_RULE in e.rules)
        if explicit:
            Waivers(explicit, self.waivers.today).apply(
                namespace, doc.kind, doc.name, finding, scope_unknown=scope_unknown
            )
            if finding.exception is not None and not finding.exception.expired:
                finding.source = "trustgate"  # accepted unjudged, as the exception says: no longer an error
        keep = doc.obj if self.decision_log is not None else None
        return DocumentResult(doc.source, doc.api_version, doc.kind, namespace, doc.name, [finding], keep)

    def _evaluate_data(self, doc: Document, run: Run) -> DocumentResult:
        """A document that is not a Kubernetes object: the user's own policies only.

        Schemas, Gatekeeper, the bundled policies and images are about Kubernetes
        objects. When no policy of the user's evaluates the document, an info finding
        says so: nothing is dropped silently.
        """
        keep = self.decision_log is not None  # the record stores or hashes it
        if doc.unsure is not None and self.rego.has_user:  # no policy of the user's: nothing to mislead
            return problem_result(doc.unsure)
        if self.combine and self.rego.has_user:  # checked within the combined input
            return DocumentResult(doc.source, None, None, None, None, [], doc.obj if keep else None)
        return self.rego.user_result(doc.obj, doc.tree, doc.source, run, self.waivers, keep=keep)


Judged = Mapping[int, tuple[Document, list[Finding]]]  # id(document) -> it and its Rego findings


def _judged(judged: Judged | None, doc: Document) -> list[Finding] | None:
    entry = judged.get(id(doc)) if judged else None
    return entry[1] if entry is not None and entry[0] is doc else None


class _Batches:
    """`check`'s units read, then judged by Rego, a batch at a time, then each evaluated.

    Reading a batch of files, then evaluating Rego on all their documents, then the other
    checks, keeps each engine's code and data in the processor's caches: interleaved, a
    workload's Rego evaluation costs ~25 % more (bench/README.md). The answers are the
    same: each step depends on the document alone. Whatever fails here is left to
    `run_unit`, which does it again and reports it for its unit.
    """

    def __init__(self, gate: Gate, run: Run, preread: Preread) -> None:
        self._gate = gate
        self._run = run
        self._preread = preread
        self._read: dict[str, tuple[list[Document], list[InputProblem]]] = {}
        self._judged: dict[int, tuple[Document, list[Finding]]] = {}

    def prepare(self, units: Sequence[loader.Unit]) -> None:
        """Read `units` (unless they were read before) and judge their documents by Rego."""
        gate = self._gate
        self._read, self._judged = {}, {}
        for unit in units:
            entry = self._preread.get(unit.path)
            if entry is None:
                try:
                    entry = self._read[unit.path] = gate.read_unit(unit)
                except Error:
                    continue  # `run_unit` reads it again and reports the error for this unit
            for doc in gate._judged_documents(entry[0]):
                if doc.kubernetes and not (
                    checks.is_delete_or_connect(doc) or checks.is_subresource_write(doc)
                ):
                    try:
                        self._judged[id(doc)] = (doc, gate.rego.findings(doc, self._run))
                    except Error:
                        continue  # the same: raised again where `run_unit` evaluates it

    def run_unit(self, unit: loader.Unit) -> list[DocumentResult]:
        return self._gate.run_unit(unit, self._run, self._preread or self._read, self._judged)


def _skipped_notes(skipped: loader.Skipped) -> list[str]:
    """Notes naming what the directory walk left out (the first few of each kind), so that a
    manifest saved under a hidden or excluded name is never dropped silently."""

    def shown(items: list[tuple[str, int]]) -> str:
        names = [f"{path} ({files} file(s))" if path.endswith("/") else path for path, files in items]
        return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")

    notes = []
    if skipped.hidden:
        total = sum(files for _, files in skipped.hidden)
        notes.append(
            f"skipped {total} hidden file(s) in the directories walked: {shown(skipped.hidden)}; "
            "`kubectl apply -R` and Flux would apply them: name them to check them"
        )
    for pattern, items in skipped.excluded.items():
        total = sum(files for _, files in items)
        notes.append(f"exclude pattern {pattern!r} left out {total} file(s): {shown(items)}")
    for directory, files in skipped.beside.items():
        notes.append(
            f"{len(files)} file(s) beside {directory}/kustomization.yaml that it does not read were not "
            f"judged: {shown([(f, 1) for f in files])}; Flux and Argo CD apply that directory only "
            "through its kustomization"
        )
    if skipped.charts:
        notes.append(
            f"Helm chart(s) below a kustomization, not judged as manifests: {shown(skipped.charts)}; "
            "render each with `helm template` and check the output"
        )
    for directory in skipped.components:
        notes.append(f"{directory}: component not included by any rendered kustomization: not judged alone")
    if skipped.links:
        notes.append(
            f"links to directories not followed (a link may lead out of the checked tree): "
            f"{shown(skipped.links)}; name the target to check it"
        )
    return notes
