"""The one orchestrator: documents in, a `Decision` out, the same for every gate.

Owns: compiling the configured checks once (schemas, Rego sources, data,
CRDs), evaluating each document against them, applying modes and
exceptions, and spreading large inputs over worker processes. It is the only
place that decides what is a finding and what is fatal. Leaves out: how a
request arrives (CLI, webhook, git) and how the decision is rendered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fnmatch
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustgate import yamlio
from trustgate.artifacts.cache import VerificationCache
from trustgate.config import Config, ExceptionRule, PolicySource, builtin_policy_dir
from trustgate.errors import ConfigError, DecisionLogError, Error, PolicyError
from trustgate.manifests import loader
from trustgate.manifests.images import find_images
from trustgate.model import (
    NOT_EVALUATED_SOURCES,
    AppliedException,
    Decision,
    Document,
    DocumentResult,
    Finding,
    ImageResult,
    ImageUse,
    InputProblem,
    Mode,
    Severity,
    Source,
)
from trustgate.policy import gatekeeper, rego
from trustgate.policy.engine import Engine
from trustgate.policy.schema import SchemaMissing, SchemaSet

if TYPE_CHECKING:
    from trustgate.artifacts.policy import ImagePolicy
    from trustgate.artifacts.verifier import ImageVerifier
    from trustgate.oci.client import Registry
if TYPE_CHECKING:  # the decision log is imported when one is given: start-up time counts
    from trustgate.decisions.log import DecisionLog
    from trustgate.decisions.record import DecisionContext, RecordOptions

_PARALLEL_MIN_BYTES = 512 * 1024  # bytes; below this, starting workers costs more than it saves
_PARALLEL_MIN_UNITS = 8  # files; each worker needs a share worth its start-up


@dataclass(frozen=True, slots=True)
class _RegoGroup:
    policy: rego.RegoPolicy
    modes: Mapping[str, Mode | None]  # package -> the mode of the source that defined it


class Gate:
    """Evaluates documents against one configuration.

    Build it once (it compiles every policy and reports broken ones up
    front), then call `check` or `evaluate` as often as needed. Not
    thread-safe: regorus engines are per thread; use one Gate per thread.
    """

    def __init__(
        self,
        *,
        config: Config,
        today: dt.date | None = None,
        jobs: int = 1,
        registry: Registry | None = None,
        image_cache: VerificationCache[ImageResult] | None = None,
        decision_log: DecisionLog | None = None,
    ) -> None:
        """Compile the configuration.

        Args:
            config: the configuration (see `Config.default()`).
            today: the date exceptions expire against (tests fix it).
            jobs: worker processes for large inputs; 1 evaluates in-process.
            registry: where images are fetched from; default: a client built from `images.registries`.
            image_cache: where verification results are kept; default: in memory, per Gate.
            decision_log: where every decision is recorded (per `config.decision_log`).

        Raises:
            PolicyError: a policy does not parse or names a missing package.
            ConfigError: data files, CRDs or the Kubernetes version are unusable.
        """
        self.config = config
        self.today = today or dt.date.today()
        self.jobs = max(1, jobs)
        self._schemas: SchemaSet | None = None
        if config.kubernetes.schemas:
            self._schemas = SchemaSet(version=config.kubernetes.version, strict=config.kubernetes.strict)
            for crd_path in config.kubernetes.crds:
                self._load_crds(crd_path)
        self._data = load_policy_data(config)
        self._groups = self._compile_groups(config.policies)
        self._evaluators: tuple[int, list[rego.RegoEvaluator]] | None = None
        self._image_policy: ImagePolicy | None = None
        self._verifier: ImageVerifier | None = None
        self._registry = registry
        self._owned_registry = False
        self._image_cache = image_cache
        if config.images.enabled:
            from trustgate.artifacts.policy import ImagePolicy  # sigstore loads only when images are checked

            self._image_policy = ImagePolicy(config.images, data=self._data)
        self._gatekeeper_init(config)
        self.policy_revision = self._revision()
        self.decision_log = decision_log
        self._record_options: RecordOptions | None = None
        if decision_log is not None:
            from trustgate.decisions.record import RecordOptions, RedactionRule

            settings = config.decision_log
            self._record_options = RecordOptions(
                redact=tuple(RedactionRule.parse(path, kinds) for path, kinds in settings.redact),
                store_inputs=settings.store_inputs,
                max_input_bytes=settings.max_input_bytes,
            )

    # -- Gatekeeper --------------------------------------------------------

    def _gatekeeper_init(self, config: Config) -> None:
        self._gk: gatekeeper.ConstraintSet | None = None
        self._gk_evaluator: tuple[int, int, gatekeeper.ConstraintEvaluator] | None = None
        self._gk_static: list[Mapping[str, Any]] = []
        self._gk_change_set: list[Mapping[str, Any]] = []
        self._gk_version = 0  # bumped when the inventory changes
        self._gk_notes: list[str] = []
        self._preread: dict[str, tuple[list[Document], list[InputProblem]]] = {}
        if not config.gatekeeper.paths:
            return
        library = gatekeeper.load_library(config.gatekeeper.paths, limits=config.limits)
        if not library.constraints:
            self._gk_notes.append(
                "no Gatekeeper constraints found in " + ", ".join(str(p) for p in config.gatekeeper.paths)
            )
        self._gk = gatekeeper.ConstraintSet(library.templates.values(), library.constraints)
        for template in library.unsupported:
            users = [c.id for c in self._gk.skipped if c.kind == template.kind]
            self._gk_notes.append(
                f"Gatekeeper template {template.name} ({template.where}) is not supported: "
                + template.unsupported
                + (f"; not evaluated: {', '.join(users)}" if users else "")
            )
        for path in config.gatekeeper.inventory:
            self._gk_static.extend(d.obj for d in gatekeeper.read_objects(path, limits=config.limits))
        self._gatekeeper()  # compile now: a broken template is reported before any document

    def _gk_engine(self) -> Engine:
        settings = self.config.engine
        if settings.opa_url:
            from trustgate.policy.engine import OpaEngine, OpaSettings

            return OpaEngine(OpaSettings(url=settings.opa_url, timeout_seconds=settings.opa_timeout_seconds))
        return gatekeeper.embedded_engine()

    def _gatekeeper(self) -> gatekeeper.ConstraintEvaluator:
        assert self._gk is not None
        pid = os.getpid()
        if self._gk_evaluator is None or self._gk_evaluator[0] != pid:
            self._gk_evaluator = (pid, -1, self._gk.compile(self._gk_engine()))
        if self._gk_evaluator[1] != self._gk_version:
            self._gk_evaluator[2].set_inventory([*self._gk_static, *self._gk_change_set])
            self._gk_evaluator = (pid, self._gk_version, self._gk_evaluator[2])
        return self._gk_evaluator[2]

    def _set_change_set(self, objects: list[Mapping[str, Any]]) -> None:
        self._gk_change_set = objects
        self._gk_version += 1

    def _gatekeeper_findings(self, doc: Document, mode: Mode) -> list[Finding]:
        evaluator = self._gatekeeper()
        review = gatekeeper.review_of(doc.obj)
        matched, unknown = evaluator.matching(review)
        out = [
            Finding(
                rule=constraint.id,
                severity=Severity.WARNING,
                rule_severity=Severity.WARNING,
                message=f"Namespace {namespace!r} is not in the change set or the Gatekeeper inventory, "
                "so the constraint's namespaceSelector cannot be evaluated",
                source="gatekeeper",
                fix="add the Namespace object to manifests.gatekeeper.inventory",
                policy=f"gatekeeper:{constraint.kind.lower()}",
            )
            for constraint, namespace in unknown
        ]
        try:
            violations = evaluator.review(review, matched)
        except PolicyError as e:
            return [
                *out,
                Finding(
                    rule="policy/error",
                    severity=Severity.ERROR,
                    message=e.message,
                    source="engine",
                    fix="fix the Gatekeeper template: it failed on this document",
                ),
            ]
        for violation in violations:
            constraint = violation.constraint
            constraint_mode = constraint.action or self.config.gatekeeper.mode or mode
            out.append(
                Finding(
                    rule=constraint.id,
                    severity=_severity(True, constraint_mode),
                    message=violation.message,
                    source="gatekeeper",
                    policy=f"gatekeeper:{constraint.kind.lower()}",
                    metadata={"details": dict(violation.details)} if violation.details else {},
                )
            )
        return out

    # -- compiling ---------------------------------------------------------

    def _compile_groups(self, sources: Sequence[PolicySource]) -> list[_RegoGroup]:
        lib = rego.load_modules(builtin_policy_dir() / "lib")
        groups: list[_RegoGroup] = []
        for v0 in (False, True):
            chosen = [s for s in sources if (s.rego_version == "v0") == v0]
            if not chosen:
                continue
            modules: list[rego.Module] = [] if v0 else list(lib)
            owners: list[tuple[PolicySource, set[str]]] = []
            for source in chosen:
                try:
                    found = rego.load_modules(source.resolve())
                except PolicyError as e:
                    raise PolicyError(
                        e.message, where=f"{source.label}: {e.where}".rstrip(": "), hint=e.hint
                    ) from e
                if not found:
                    raise PolicyError(
                        "no .rego files found", where=source.label, hint="check the policy path"
                    )
                present = {m.path for m in modules}
                modules.extend(m for m in found if m.path not in present)
                owners.append((source, {m.path for m in found}))
            try:
                compiled = rego.RegoPolicy(modules, data=self._data, rego_v0=v0)
            except PolicyError as e:
                raise PolicyError(e.message, where=", ".join(s.label for s in chosen), hint=e.hint) from e
            # Which source defines each package decides its mode and whether it is evaluated.
            modes: dict[str, Mode | None] = {}
            for source, paths in owners:
                own = [p for p in compiled.rules if compiled.package_files.get(p, set()) & paths]
                missing = set(source.namespaces) - set(own)
                if missing:
                    raise PolicyError(
                        f"no policy package named {', '.join(sorted(missing))}",
                        where=source.label,
                        hint=f"packages with deny/violation/warn rules there: {', '.join(own) or 'none'}",
                    )
                for package in own:
                    if not source.namespaces or package in source.namespaces:
                        modes.setdefault(package, source.mode)
            compiled.restrict(modes)
            groups.append(_RegoGroup(compiled, modes))
        return groups

    def _load_crds(self, path: Path) -> None:
        assert self._schemas is not None
        if not path.exists():
            raise ConfigError("CRD path does not exist", where=str(path))
        units = loader.plan([str(path)])
        count = 0
        for unit in units:
            docs, problems = loader.read_unit(unit, self.config.limits)
            if problems:
                p = problems[0]
                raise ConfigError(f"cannot read CRDs: {p.message}", where=f"{p.source.file}:{p.source.line}")
            for doc in docs:
                if doc.kind == "CustomResourceDefinition":
                    try:
                        count += self._schemas.add_crd(doc.obj)
                    except ConfigError as e:
                        raise ConfigError(e.message, where=f"{doc.source.file}:{doc.source.line}") from e
        if count == 0:
            raise ConfigError("no CustomResourceDefinition with an openAPIV3Schema found", where=str(path))

    def _revision(self) -> str:
        digest = hashlib.sha256()
        digest.update(repr(self.config).encode())
        digest.update(json.dumps(self._data, sort_keys=True, default=str).encode())
        for group in self._groups:
            for module in group.policy.modules:
                digest.update(module.path.encode() + b"\0" + module.text.encode() + b"\0")
        if self._image_policy is not None:
            for rule in self._image_policy.rules:
                digest.update(rule.digest.encode())
        if self._gk is not None:
            for modules in self._gk.template_modules.values():
                for module in modules:
                    digest.update(module.text.encode() + b"\0")
            digest.update(json.dumps(self._gk.parameters, sort_keys=True, default=str).encode())
            digest.update(json.dumps(self._gk_static, sort_keys=True, default=str).encode())
        return "sha256:" + digest.hexdigest()

    @property
    def verifier(self) -> ImageVerifier:
        """The image verifier (built on first use; the registry client opens no connection before)."""
        if self._verifier is None:
            from trustgate.artifacts.verifier import ImageVerifier

            if self._image_policy is None:
                from trustgate.artifacts.policy import ImagePolicy

                self._image_policy = ImagePolicy(self.config.images, data=self._data)
            if self._registry is None:
                self._registry = _registry_client(self.config)
                self._owned_registry = True
            self._verifier = ImageVerifier(self._image_policy, self._registry, cache=self._image_cache)
        return self._verifier

    def close(self) -> None:
        """Close the registry connections the gate opened (not a registry it was given)."""
        if self._owned_registry and self._registry is not None:
            close = getattr(self._registry, "close", None)
            if close is not None:
                close()
            self._registry, self._verifier, self._owned_registry = None, None, False

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rego(self) -> list[rego.RegoEvaluator]:
        # Engines are per process (and thread): a forked worker builds its own.
        pid = os.getpid()
        if self._evaluators is None or self._evaluators[0] != pid:
            self._evaluators = (pid, [g.policy.evaluator() for g in self._groups])
        return self._evaluators[1]

    # -- evaluating --------------------------------------------------------

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
        units = loader.plan(paths, stdin=stdin)
        if self._gk is not None and (self._gk.uses_inventory or self._gk.needs_namespaces):
            # Constraints that read data.inventory see the whole change set: read it first.
            self._preread = {unit.path: loader.read_unit(unit, self.config.limits) for unit in units}
            self._set_change_set([d.obj for docs, _ in self._preread.values() for d in docs])
        results = self._run_units(units)
        self._preread = {}
        return self._record(self._decision(gate, results, started), context)

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
        on_policies: Callable[[Sequence[DocumentResult]], None] | None = None,
        record_if: Callable[[], bool] | None = None,
    ) -> Decision:
        """Evaluate documents that are already loaded (the webhook's and pre-sync's path); record it.

        `extra` are results a gate found itself (pre-sync: commits, deleted objects); exceptions
        apply to their findings as to any other, and they are recorded with the rest, as are `notes`.
        `verify_images=False` skips image verification (an admission UPDATE that keeps its image set).
        `on_policies` sees the results of schemas and policies before images are verified (which
        may wait on registries): the webhook answers a policy denial even when a registry hangs.
        `record_if` is asked before recording: False means the caller already answered and
        recorded otherwise (a deadline), so this decision is returned but not recorded.
        """
        started = time.perf_counter()
        if self._gk is not None and (self._gk.uses_inventory or self._gk.needs_namespaces):
            self._set_change_set([d.obj for d in documents])
        results = [self._problem_result(p) for p in problems] + [
            self._evaluate_document(d) for d in documents
        ]
        if not verify_images:
            for result in results:
                result.images = []
        for result in extra:
            if self.config.exceptions:
                for finding in result.findings:
                    if finding.source not in NOT_EVALUATED_SOURCES:
                        self._apply_exceptions(result.namespace, result.kind, result.name, finding)
            result.findings.sort(key=_finding_order)
            results.append(result)
        if on_policies is not None:
            on_policies(results)
        decision = self._decision(gate, results, started)
        decision.notes.extend(notes)
        if record_if is not None and not record_if():
            return decision
        return self._record(decision, context)

    def _record(self, decision: Decision, context: DecisionContext | None) -> Decision:
        """One record per decision in the decision log; a failure follows the failure policy."""
        if self.decision_log is None:
            return decision
        from trustgate.decisions.canonical import CanonicalError
        from trustgate.decisions.record import build_record

        if decision.images:  # the verified digests and their evidence, for queries by digest
            from trustgate.decisions.record import DecisionContext, ImageEvidence

            verified = tuple(
                ImageEvidence(
                    image.reference,
                    image.digest,
                    "verified" if image.status == "verified" else "resolved" if image.digest else "manifest",
                    image.to_json(),
                )
                for image in decision.images
            )
            base = context or DecisionContext()
            context = dataclasses.replace(base, images=(*base.images, *verified))
        try:
            record = build_record(decision, context, options=self._record_options)
            decision.record_id = self.decision_log.append(record)
        except (DecisionLogError, CanonicalError) as e:
            reason = e.diagnostics() if isinstance(e, Error) else str(e)
            if self.config.decision_log.fail_closed(decision.mode):
                decision.record_error = reason
                decision.notes.append(
                    f"the decision was not recorded in the decision log, so it fails: {reason}"
                )
            else:
                decision.notes.append(
                    f"the decision was NOT recorded in the decision log (failure policy: open): {reason}"
                )
        return decision

    def verify_images(self, references: Sequence[str], *, gate: str = "ci") -> Decision:
        """Verify images named directly (`trustgate verify image`): one result per reference."""
        started = time.perf_counter()
        results = [
            DocumentResult(Source(ref), None, "Image", None, ref, [], images=[ImageUse(ref, ())])
            for ref in dict.fromkeys(references)
        ]
        return self._decision(gate, results, started, verify_unmatched=True)

    def _decision(
        self, gate: str, results: list[DocumentResult], started: float, *, verify_unmatched: bool = False
    ) -> Decision:
        images: list[ImageResult] = []
        if self._image_policy is not None or verify_unmatched:
            images = self._check_images(results)
        notes = [
            f"exception {e.name!r} (owner {e.owner}) expired on {e.expires.isoformat()} and no longer applies"
            for e in self.config.exceptions
            if e.expired(self.today)
        ]
        notes.extend(self._gk_notes)
        return Decision(
            gate=gate,
            mode=self.config.mode,
            results=results,
            policy_revision=self.policy_revision,
            duration_ms=(time.perf_counter() - started) * 1000,
            notes=notes,
            images=images,
        )

    def _check_images(self, results: list[DocumentResult]) -> list[ImageResult]:
        """Verify every distinct image the documents use; add findings where each is used."""
        references = [use.reference for r in results for use in r.images]
        if not references:
            return []
        verified = self.verifier.verify_many(references)
        for result in results:
            for use in result.images:
                self._image_findings(result, use, verified[use.reference])
            result.findings.sort(key=_finding_order)
        return list(verified.values())

    def _image_findings(self, result: DocumentResult, use: ImageUse, image: ImageResult) -> None:
        mode = image.mode or self.config.mode
        for problem in image.problems:
            severity = _severity(problem.blocking, mode)
            not_evaluated = problem.rule == "image-unverifiable" and severity == Severity.ERROR
            metadata: dict[str, Any] = {"image": use.reference}
            if use.container:
                metadata["container"] = use.container
            if image.digest:
                metadata["digest"] = image.digest
            if image.rule:
                metadata["imageRule"] = image.rule
            if problem.attestation:
                metadata["attestation"] = problem.attestation
            finding = Finding(
                rule=problem.rule,
                severity=severity,
                rule_severity=Severity.ERROR if problem.blocking else Severity.WARNING,
                message=problem.message,
                source="registry" if not_evaluated else "supply-chain",
                fix=problem.fix,
                path=use.path,
                line=use.line,
                policy=f"images/{image.rule}" if image.rule else "images",
                metadata=metadata,
            )
            if self.config.exceptions:
                self._apply_exceptions(result.namespace, result.kind, result.name, finding)
            result.findings.append(finding)

    def _run_units(self, units: Sequence[loader.Unit]) -> list[DocumentResult]:
        if self.jobs > 1 and len(units) >= _PARALLEL_MIN_UNITS and _total_bytes(units) >= _PARALLEL_MIN_BYTES:
            import multiprocessing  # only for large inputs: start-up time counts for small ones
            from concurrent.futures.process import BrokenProcessPool

            if "fork" not in multiprocessing.get_all_start_methods():
                return [r for unit in units for r in self.run_unit(unit)]
            try:
                return self._run_parallel(units)
            except BrokenProcessPool:
                pass  # a worker died (killed, out of memory): evaluate here instead; nothing is lost
        results: list[DocumentResult] = []
        for unit in units:
            results.extend(self.run_unit(unit))
        return results

    def _run_parallel(self, units: Sequence[loader.Unit]) -> list[DocumentResult]:
        """Spread units over `jobs - 1` forked workers and this process.

        Small interleaved chunks are queued for the workers; this process
        works from the back of the queue, taking every chunk no worker has
        started yet (a cancelled future), so the shares balance themselves.
        """
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        global _WORKER_GATE
        count = min(len(units), self.jobs * 8)
        chunks = [list(units[i::count]) for i in range(count)]
        parts: list[list[list[DocumentResult]] | None] = [None] * count
        _WORKER_GATE = self
        try:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=self.jobs - 1, mp_context=context) as pool:
                futures = [pool.submit(_work, chunk) for chunk in chunks]
                for i in reversed(range(count)):
                    if futures[i].cancel():
                        parts[i] = _work(chunks[i])
                for i in range(count):
                    if parts[i] is None:
                        parts[i] = futures[i].result()
        finally:
            _WORKER_GATE = None
        by_unit: dict[str, list[DocumentResult]] = {}
        for chunk, part in zip(chunks, parts, strict=True):
            assert part is not None  # every chunk was done here or by a worker
            for unit, unit_results in zip(chunk, part, strict=True):
                by_unit[unit.path] = unit_results
        return [r for unit in units for r in by_unit[unit.path]]

    def run_unit(self, unit: loader.Unit) -> list[DocumentResult]:
        """Read one unit and evaluate each of its documents, in document order."""
        documents, problems = self._preread.get(unit.path) or loader.read_unit(unit, self.config.limits)
        results = [self._problem_result(p) for p in problems] + [
            self._evaluate_document(d) for d in documents
        ]
        results.sort(key=lambda r: (r.source.line, r.source.index))
        return results

    def _problem_result(self, problem: InputProblem) -> DocumentResult:
        finding = Finding(
            rule=problem.rule,
            severity=Severity.ERROR,
            message=problem.message,
            source="input",
            fix=problem.hint,
            line=problem.source.line,
        )
        return DocumentResult(problem.source, None, None, None, None, [finding])

    def _evaluate_document(self, doc: Document) -> DocumentResult:
        findings: list[Finding] = []
        mode = self.config.mode
        if self._schemas is not None:
            findings.extend(self._schema_findings(doc, mode))
        if self._gk is not None and self._gk.constraints:
            findings.extend(self._gatekeeper_findings(doc, mode))
        for evaluator, group in zip(self._rego(), self._groups, strict=True):
            try:
                raw = evaluator.evaluate(doc.obj)
            except PolicyError as e:
                findings.append(
                    Finding(
                        rule="policy/error",
                        severity=Severity.ERROR,
                        message=e.message,
                        source="engine",
                        fix="fix the policy: it failed on this document",
                    )
                )
                continue
            for item in raw:
                source_mode = group.modes.get(item.package) or mode
                findings.append(
                    Finding(
                        rule=item.rule,
                        severity=_severity(item.blocking, source_mode),
                        rule_severity=Severity.ERROR if item.blocking else Severity.WARNING,
                        message=item.message,
                        source="rego",
                        fix=item.fix,
                        path=item.path,
                        policy=item.package,
                        metadata=item.metadata,
                    )
                )
        for finding in findings:
            if finding.path:
                finding.line = yamlio.locate(doc.tree, finding.path)
            if self.config.exceptions and finding.source in ("schema", "rego", "gatekeeper"):
                self._apply_exceptions(doc.namespace, doc.kind, doc.name, finding)
        findings.sort(key=_finding_order)
        images: list[ImageUse] = []
        if self._image_policy is not None:
            images = [
                ImageUse(u.reference, u.path, u.container, yamlio.locate(doc.tree, u.path))
                for u in find_images(doc.obj)
            ]
        keep = doc.obj if self.decision_log is not None else None  # the record stores or hashes it
        return DocumentResult(
            doc.source, doc.api_version, doc.kind, doc.namespace, doc.name, findings, keep, images=images
        )

    def _schema_findings(self, doc: Document, mode: Mode) -> list[Finding]:
        assert self._schemas is not None
        try:
            violations = self._schemas.validate(doc.obj)
        except SchemaMissing:
            fail = self.config.kubernetes.missing_schemas == "fail"
            return [
                Finding(
                    rule="schema-missing",
                    severity=_severity(True, mode) if fail else Severity.INFO,
                    rule_severity=Severity.ERROR if fail else Severity.INFO,
                    message=f"no schema for {doc.api_version} {doc.kind}; schema validation "
                    + ("is required (missingSchemas: fail)" if fail else "skipped"),
                    source="schema",
                    fix="add the CRD with kubernetes.crds in trustgate.yaml (or --crd)",
                )
            ]
        return [
            Finding(
                rule=v.rule,
                severity=_severity(True, mode),
                message=v.message,
                source="schema",
                fix=_schema_fix(v.rule),
                path=v.path,
                policy=f"kubernetes-{self._schemas.version}{'-strict' if self._schemas.strict else ''}",
            )
            for v in violations
        ]

    def _apply_exceptions(
        self, namespace: str | None, kind: str | None, name: str | None, finding: Finding
    ) -> None:
        expired: list[ExceptionRule] = []
        for exc in self.config.exceptions:
            if not _covers(exc, namespace, kind, name, finding):
                continue
            if exc.expired(self.today):
                expired.append(exc)
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


_WORKER_GATE: Gate | None = None


def _work(units: list[loader.Unit]) -> list[list[DocumentResult]]:
    gate = _WORKER_GATE
    assert gate is not None  # set by the parent before forking
    out = []
    for unit in units:
        try:
            out.append(gate.run_unit(unit))
        except Error as e:  # keep the other units' results; this one reports the error
            problem = InputProblem(Source(unit.path), "input/error", e.diagnostics())
            out.append([gate._problem_result(problem)])
    return out


def _total_bytes(units: Sequence[loader.Unit]) -> int:
    total = 0
    for unit in units:
        if unit.kind == "file":
            with contextlib.suppress(OSError):  # unreadable files report themselves later
                total += os.path.getsize(unit.path)
        elif unit.kind == "kustomize":
            total += _PARALLEL_MIN_BYTES // 4  # rendering is slow: worth a worker
        else:
            total += len(unit.data or b"")
    return total


def _severity(blocking: bool, mode: Mode) -> Severity:
    if mode == Mode.AUDIT:
        return Severity.INFO
    if blocking and mode == Mode.ENFORCE:
        return Severity.ERROR
    return Severity.WARNING


def _finding_order(f: Finding) -> tuple[int, int, str]:
    rank = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}[f.severity]
    return (rank, f.line or 0, f.rule)


def _schema_fix(rule: str) -> str:
    if rule == "schema-unknown-field":
        return "remove the field or fix its spelling (see `kubectl explain`)"
    return "correct the value to match the Kubernetes API (see `kubectl explain`)"


def _covers(
    exc: ExceptionRule, namespace: str | None, kind: str | None, name: str | None, finding: Finding
) -> bool:
    if not any(fnmatch.fnmatchcase(finding.rule, pattern) for pattern in exc.rules):
        return False
    checks: list[tuple[tuple[str, ...], str | None]] = [
        (exc.namespaces, namespace or "default"),
        (exc.kinds, kind),
        (exc.names, name),
    ]
    for patterns, value in checks:
        if patterns and (value is None or not any(fnmatch.fnmatchcase(value, p) for p in patterns)):
            return False
    if exc.images:
        image = finding.metadata.get("image")
        if not isinstance(image, str) or not any(fnmatch.fnmatchcase(image, p) for p in exc.images):
            return False
    return True


def _registry_client(config: Config) -> Registry:
    from trustgate.oci.client import RegistryClient, RegistrySettings

    settings = config.images.registries
    return RegistryClient(
        RegistrySettings(
            ca_file=settings.ca_file,
            insecure=settings.insecure,
            docker_config=settings.docker_config,
            timeout_seconds=settings.timeout_seconds,
            max_retries=settings.max_retries,
            max_retry_after_seconds=settings.max_retry_after_seconds,
            transfer_deadline_seconds=settings.transfer_deadline_seconds,
        )
    )


def load_policy_data(config: Config) -> dict[str, Any]:
    """The `data` document: data files in order, then the inline `manifests.data`.

    Raises:
        ConfigError: a data file is unreadable, not YAML/JSON, or not a mapping.
    """
    data: dict[str, Any] = {}
    for path in config.data_files:
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read data file: {e.strerror or e}", where=str(path)) from e
        parsed = list(yamlio.parse_stream(raw, max_nodes=config.limits.max_yaml_nodes))
        for item in parsed:
            if isinstance(item, yamlio.YamlProblem):
                raise ConfigError(item.message, where=f"{path}:{item.line}")
            if not isinstance(item.value, dict):
                raise ConfigError("a data file must hold a mapping", where=f"{path}:{item.line}")
            _deep_merge(data, item.value)
    _deep_merge(data, dict(config.data))
    return data


def _deep_merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value
