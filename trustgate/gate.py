"""The one orchestrator: documents in, a `Decision` out, the same for every gate.

Owns: compiling the configured checks once (schemas, Rego sources, data,
CRDs), evaluating each document against them, applying modes and
exceptions, and spreading large inputs over worker processes. It is the only
place that decides what is a finding and what is fatal. Leaves out: how a
request arrives (CLI, webhook, git) and how the decision is rendered.
"""

from __future__ import annotations

import contextlib
import copy
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
from trustgate.manifests import loader, origins
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
from trustgate.policy import deprecations, gatekeeper, rego
from trustgate.policy.engine import Engine
from trustgate.policy.schema import SchemaMissing, SchemaSet

if TYPE_CHECKING:
    from trustgate.artifacts.issuing import Issuer, Signed
    from trustgate.artifacts.policy import ImagePolicy
    from trustgate.artifacts.verifier import ImageVerifier
    from trustgate.oci.client import Registry
if TYPE_CHECKING:  # the decision log is imported when one is given: start-up time counts
    from trustgate.decisions.log import DecisionLog
    from trustgate.decisions.record import DecisionContext, RecordOptions
    from trustgate.policy import vap  # the CEL runtime loads only when admission policies are given

_PARALLEL_MIN_BYTES = 512 * 1024  # bytes; below this, starting workers costs more than it saves
_PARALLEL_MIN_UNITS = 8  # files; each worker needs a share worth its start-up


@dataclass(frozen=True, slots=True)
class _RegoGroup:
    policy: rego.RegoPolicy
    modes: Mapping[str, Mode | None]  # package -> the mode of the source that defined it
    user: frozenset[str] = frozenset()  # packages of the user's own sources (not bundled): any input


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
        combine: bool = False,
        registry: Registry | None = None,
        image_cache: VerificationCache[ImageResult] | None = None,
        decision_log: DecisionLog | None = None,
    ) -> None:
        """Compile the configuration.

        Args:
            config: the configuration (see `Config.default()`).
            today: the date exceptions expire against (tests fix it).
            jobs: worker processes for large inputs; 1 evaluates in-process.
            combine: conftest's `--combine`: the user's own policies see every document of a
                `check` at once, as a list of `{"path", "contents"}`, instead of each document.
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
        self.combine = combine
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
        self._issuer: Issuer | None = None
        self._signed: list[tuple[ImageResult, Signed]] = []  # summaries of the decision being made
        if config.images.enabled:
            from trustgate.artifacts.policy import ImagePolicy  # sigstore loads only when images are checked

            self._image_policy = ImagePolicy(config.images, data=self._data)
            if config.images.summaries.issue is not None:
                from trustgate.artifacts.issuing import Issuer

                self._issuer = Issuer.from_config(config.images.summaries.issue)
        self._gatekeeper_init(config)
        self._vap: vap.PolicySet | None = None
        if config.admission_policies:
            from trustgate.policy import vap

            self._vap = vap.load(config.admission_policies, limits=config.limits)
        self._vap_objects: list[Mapping[str, Any]] = []  # the change set: params and Namespaces for policies
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
        self._gk_unevaluable: list[gatekeeper.Unsupported] = []  # each one a "could not evaluate" result
        self._preread: dict[str, tuple[list[Document], list[InputProblem]]] = {}
        if not config.gatekeeper.paths:
            return
        settings = config.gatekeeper
        library = gatekeeper.load_library(settings.paths, limits=config.limits)
        where = ", ".join(str(p) for p in settings.paths)
        unevaluable = list(library.foreign)
        if not library.constraints and not library.templates and not library.foreign:
            unevaluable.append(
                gatekeeper.Unsupported(
                    where, 1, "", "", "", "no Gatekeeper ConstraintTemplates or constraints there"
                )
            )
        elif not library.constraints:
            self._gk_notes.append(f"no Gatekeeper constraints found in {where}")
        for item in unevaluable:
            if settings.skip_unsupported:
                self._gk_notes.append(f"{_unsupported_message(item)}; skipped (skipUnsupported)")
            else:
                self._gk_unevaluable.append(item)
        self._gk_notes.extend(library.notes)
        if library.skipped:
            self._gk_notes.append(
                f"skipped in the Gatekeeper paths ({where}), not templates or constraints: "
                + ", ".join(f"{n} {key}" for key, n in sorted(library.skipped.items()))
            )
        self._gk = gatekeeper.ConstraintSet(
            library.templates.values(), library.constraints, library.expansions, engine=settings.engine
        )
        for template in library.unsupported:
            users = [c.id for c in self._gk.skipped if c.kind == template.kind]
            self._gk_notes.append(
                f"Gatekeeper template {template.name} ({template.where}) is not supported: "
                + template.unsupported
                + (
                    f"; its constraints ({', '.join(users)}) are not evaluated, and a document they match "
                    + ("is noted (skipUnsupported)" if settings.skip_unsupported else "cannot be evaluated")
                    if users
                    else "; no constraint uses it"
                )
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
        """Constraint findings for a document and for what its ExpansionTemplates generate.

        As in Gatekeeper, a resultant (the Pod of a Deployment) is reviewed as
        an object of its own, and its violations land on the parent with
        `[Implied by <template>]`, the template's enforcementAction if it sets
        one, and a path into the parent (`spec.template...`).
        """
        evaluator = self._gatekeeper()
        review = gatekeeper.review_of(doc.obj)
        out: list[Finding] = []
        reviews: list[tuple[gatekeeper.Resultant | None, Mapping[str, Any]]] = [(None, review)]
        try:
            reviews += [
                (r, gatekeeper.resultant_review(r, review))
                for r in gatekeeper.expand(doc.obj, evaluator.set.expansions)
            ]
        except gatekeeper.ExpansionError as e:
            out.append(
                Finding(
                    rule="gatekeeper/expansion",
                    severity=Severity.ERROR,
                    message=f"unable to expand object: {e}",
                    source="engine",
                    fix="Gatekeeper rejects an object its ExpansionTemplates cannot expand",
                )
            )
        for resultant, item in reviews:
            out.extend(self._gatekeeper_review(resultant, item, mode))
        return out

    def _gk_unevaluable_results(self) -> list[DocumentResult]:
        """One "could not evaluate" result per Gatekeeper source that would not be enforced."""
        return [
            DocumentResult(
                Source(item.file, item.line),
                item.api_version or None,
                item.kind or None,
                None,
                item.name or None,
                [
                    Finding(
                        rule="gatekeeper/unsupported",
                        severity=Severity.ERROR,
                        message=_unsupported_message(item),
                        source="engine",
                        fix="give --gatekeeper only ConstraintTemplates, constraints and ExpansionTemplates, "
                        "or pass --skip-unsupported (manifests.gatekeeper.skipUnsupported) to skip it",
                    )
                ],
            )
            for item in self._gk_unevaluable
        ]

    def _gatekeeper_review(
        self, resultant: gatekeeper.Resultant | None, review: Mapping[str, Any], mode: Mode
    ) -> list[Finding]:
        evaluator = self._gatekeeper()
        generated = resultant is not None
        path: tuple[str | int, ...] = resultant.path if resultant is not None else ()

        def message(text: str) -> str:
            return gatekeeper.implied(resultant, text) if resultant is not None else text

        matched, unknown = evaluator.matching(review, generated=generated)
        # A namespaceSelector whose Namespace is not given cannot be decided: fail closed. The
        # constraint is evaluated as if it matched; a deny it would give is "could not evaluate".
        undecided = {constraint.id: namespace for constraint, namespace in unknown}
        matched = [*matched, *(constraint for constraint, _ in unknown)]

        def why(constraint_id: str) -> str:
            return (
                f"the namespaceSelector of {constraint_id} could not be decided: Namespace "
                f"{undecided[constraint_id]!r} is not in the change set or the Gatekeeper inventory"
            )

        out: list[Finding] = []
        skip = self.config.gatekeeper.skip_unsupported
        for constraint in evaluator.matching(review, generated=generated, skipped=True)[0]:
            template = evaluator.set.templates[constraint.kind]
            out.append(
                Finding(
                    rule=constraint.id,
                    severity=Severity.INFO if skip else Severity.ERROR,
                    rule_severity=Severity.INFO if skip else Severity.ERROR,
                    message=message(
                        f"constraint {constraint.id} applies but is not evaluated: its template "
                        f"{template.name} ({template.where}) has {template.unsupported}"
                        + (" (skipped: skipUnsupported)" if skip else "")
                    ),
                    source="gatekeeper" if skip else "engine",
                    fix=""
                    if skip
                    else "evaluate it in the cluster, or pass --skip-unsupported "
                    "(manifests.gatekeeper.skipUnsupported) to accept that it is not checked here",
                    path=path,
                    policy=f"gatekeeper:{constraint.kind.lower()}",
                )
            )
        try:
            violations = evaluator.review(review, matched)
        except PolicyError as e:
            return [
                *out,
                Finding(
                    rule="policy/error",
                    severity=Severity.ERROR,
                    message=message(e.message),
                    source="engine",
                    fix="fix the Gatekeeper template: it failed on this document",
                ),
            ]
        undecided_hit: set[str] = set()
        for violation in violations:
            constraint = violation.constraint
            if violation.disagreement:  # --gatekeeper-engine both: which verdict holds is unknown
                out.append(
                    Finding(
                        rule=f"{constraint.id}/engine-disagreement",
                        severity=Severity.ERROR,
                        message=message(violation.message),
                        source="engine",
                        fix="make the template's Rego and CEL agree, or pick one with --gatekeeper-engine",
                        policy=f"gatekeeper:{constraint.kind.lower()}",
                    )
                )
                continue
            override = resultant.template.action if resultant is not None else None
            constraint_mode = override or constraint.action or self.config.gatekeeper.mode or mode
            metadata: dict[str, Any] = {"details": dict(violation.details)} if violation.details else {}
            if resultant is not None:
                metadata["impliedBy"] = resultant.template.name
            text = violation.message
            if constraint.id in undecided:
                undecided_hit.add(constraint.id)
                if constraint_mode == Mode.ENFORCE:
                    out.append(
                        Finding(
                            rule=constraint.id,
                            severity=Severity.ERROR,
                            message=message(
                                f"{why(constraint.id)}, and if it selects the Namespace the constraint "
                                f"denies: {text}"
                            ),
                            source="engine",
                            fix="give the Namespace via --inventory (manifests.gatekeeper.inventory) "
                            "or the change set",
                            path=path,
                            policy=f"gatekeeper:{constraint.kind.lower()}",
                            metadata=metadata,
                        )
                    )
                    continue
                text = f"{text} (if the namespaceSelector selects it: {why(constraint.id)})"
            out.append(
                Finding(
                    rule=constraint.id,
                    severity=_severity(True, constraint_mode),
                    message=message(text),
                    source="gatekeeper",
                    path=gatekeeper.container_path(resultant, violation.message)
                    if resultant is not None
                    else (),
                    policy=f"gatekeeper:{constraint.kind.lower()}",
                    metadata=metadata,
                )
            )
        out.extend(
            Finding(
                rule=constraint.id,
                severity=Severity.INFO,
                rule_severity=Severity.INFO,
                message=message(f"{why(constraint.id)}; the constraint passes either way"),
                source="gatekeeper",
                path=path,
                policy=f"gatekeeper:{constraint.kind.lower()}",
            )
            for constraint, _ in unknown
            if constraint.id not in undecided_hit
        )
        return out

    # -- ValidatingAdmissionPolicies -----------------------------------------

    def _admission_policy_findings(self, doc: Document) -> list[Finding]:
        """Findings of the ValidatingAdmissionPolicies bound to a document (reviewed as a CREATE).

        The binding's validationActions decide the effect, as enforcementAction does for
        Gatekeeper: Deny blocks, Warn warns, Audit only records.
        """
        assert self._vap is not None
        out: list[Finding] = []
        for outcome in self._vap.review(doc.obj, objects=self._vap_objects):
            actions = outcome.binding.actions
            metadata: dict[str, Any] = {"binding": outcome.binding.name, "validationActions": list(actions)}
            if outcome.reason:
                metadata["reason"] = outcome.reason
            if outcome.param:
                metadata["param"] = outcome.param
            finding = Finding(
                rule=outcome.rule,
                severity=Severity.ERROR,
                message=outcome.message,
                source="admission-policy",
                line=doc.source.line,
                policy=f"admission-policy:{outcome.policy.name}",
                metadata=metadata,
            )
            if outcome.kind == "unevaluable":
                finding.source = "engine"
                finding.fix = "give the missing object with --admission-policy, or evaluate it in the cluster"
            elif outcome.kind == "ignored":
                finding.severity = finding.rule_severity = Severity.INFO
            elif outcome.kind == "namespace-unknown":
                finding.severity = finding.rule_severity = Severity.WARNING
                finding.fix = "add the Namespace object to manifests.admissionPolicies"
            else:
                mode = Mode.ENFORCE if "Deny" in actions else Mode.WARN if "Warn" in actions else Mode.AUDIT
                finding.severity = _severity(True, mode)
            out.append(finding)
        return out

    # -- compiling ---------------------------------------------------------

    def _compile_groups(self, sources: Sequence[PolicySource]) -> list[_RegoGroup]:
        lib = rego.load_modules(builtin_policy_dir() / "lib")
        groups: list[_RegoGroup] = []
        # conftest's `-n` (shared_namespaces): a name only some of the sources define is fine.
        shared_wanted: set[str] = set()
        shared_found: set[str] = set()
        shared_labels: list[str] = []
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
            user: set[str] = set()
            for source, paths in owners:
                own = [p for p in compiled.rules if compiled.package_files.get(p, set()) & paths]
                missing = set(source.namespaces) - set(own)
                if source.shared_namespaces:
                    shared_wanted.update(source.namespaces)
                    shared_found.update(own)
                    shared_labels.append(source.label)
                elif missing:
                    raise PolicyError(
                        f"no policy package named {', '.join(sorted(missing))}",
                        where=source.label,
                        hint=f"packages with deny/violation/warn rules there: {', '.join(own) or 'none'}",
                    )
                for package in own:
                    if not source.namespaces or package in source.namespaces:
                        modes.setdefault(package, source.mode)
                        if source.builtin is None:
                            user.add(package)
            compiled.restrict(modes)
            groups.append(_RegoGroup(compiled, modes, frozenset(user)))
        missing = shared_wanted - shared_found
        if missing:
            raise PolicyError(
                f"no policy package named {', '.join(sorted(missing))}",
                where=", ".join(shared_labels),
                hint="packages with deny/violation/warn rules there: "
                + (", ".join(sorted(shared_found)) or "none"),
            )
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
            cel = {k: self._gk.templates[k].cel for k in self._gk.cel}
            cel_parameters = {c.id: c.parameters for c in self._gk.constraints if c.kind in self._gk.cel}
            digest.update(json.dumps([cel, cel_parameters], sort_keys=True, default=str).encode())
        if self._vap is not None:
            digest.update(json.dumps(self._vap.documents, sort_keys=True, default=str).encode())
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
            revocations = None
            if self.decision_log is not None and any(r.acceptance for r in self._image_policy.rules):
                from trustgate.revocations import Revocations

                revocations = Revocations(
                    self.decision_log.url,
                    refresh_seconds=self.config.images.summaries.revocation_refresh_seconds,
                )
            self._verifier = ImageVerifier(
                self._image_policy, self._registry, cache=self._image_cache, revocations=revocations
            )
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
        hidden: list[str] = []
        units = loader.plan(
            paths, stdin=stdin, exclude=self.config.exclude, suffixes=loader.DATA_SUFFIXES, hidden=hidden
        )
        gk_inventory = self._gk is not None and (self._gk.uses_inventory or self._gk.needs_namespaces)
        if gk_inventory or self.combine or self._vap is not None:
            # Constraints that read data.inventory see the whole change set: read it first.
            self._preread = {
                unit.path: loader.read_unit(unit, self.config.limits, any_data=True) for unit in units
            }
        if gk_inventory:
            self._set_change_set([d.obj for docs, _ in self._preread.values() for d in docs if d.kubernetes])
        if self._vap is not None:
            self._vap_objects = [d.obj for docs, _ in self._preread.values() for d in docs if d.kubernetes]
        results = self._run_units(units)
        if self.combine:
            results.append(self._evaluate_combined([d for docs, _ in self._preread.values() for d in docs]))
        self._preread = {}
        decision = self._decision(gate, results, started)
        if hidden:
            shown = ", ".join(hidden[:5]) + (f" and {len(hidden) - 5} more" if len(hidden) > 5 else "")
            decision.notes.append(
                f"skipped {len(hidden)} hidden file(s) in the directories walked: {shown}; "
                "`kubectl apply -R` would apply them: name them to check them"
            )
        return self._record(decision, context)

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
        if self._vap is not None:
            self._vap_objects = [d.obj for d in documents]
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
        """Record the decision, then attach the verification summaries it issued."""
        self._append(decision, context)
        self._attach_summaries(decision)
        return decision

    def _append(self, decision: Decision, context: DecisionContext | None) -> Decision:
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
            record = build_record(
                decision, context, options=self._record_options, record_id=decision.planned_id or None
            )
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
        planned_id, issue_notes = self._issue_summaries(gate, images)
        notes = [
            f"exception {e.name!r} (owner {e.owner}) expired on {e.expires.isoformat()} and no longer applies"
            for e in self.config.exceptions
            if e.expired(self.today)
        ]
        notes.extend(self._gk_notes)
        notes.extend(self._vap.notes if self._vap is not None else ())
        if not verify_unmatched:  # `verify image` checks no manifests
            results = [*self._gk_unevaluable_results(), *results]
        return Decision(
            gate=gate,
            mode=self.config.mode,
            results=results,
            policy_revision=self.policy_revision,
            duration_ms=(time.perf_counter() - started) * 1000,
            notes=[*notes, *issue_notes],
            images=images,
            planned_id=planned_id,
        )

    def _issue_summaries(self, gate: str, images: Sequence[ImageResult]) -> tuple[str, list[str]]:
        """Sign and attach a verification summary for each image verified in full (`check`, `presync`).

        Returns the id the decision's record will have (each summary names it) and notes on the
        summaries that could not be attached.
        """
        if self._issuer is None or gate not in ("ci", "presync") or self._image_policy is None:
            return "", []
        from trustgate.decisions.canonical import uuid7

        # The summaries name the decision; they are attached once it is recorded (`_record`), so
        # none points at a decision the log does not hold.
        planned_id = uuid7() if self.decision_log is not None else ""
        self._signed = []
        for image in images:
            signed = self._issuer.prepare(self._image_policy, image, decision_id=planned_id or None)
            if signed is not None:
                image.issued = [signed.record]
                self._signed.append((image, signed))
        return planned_id, []

    def _attach_summaries(self, decision: Decision) -> None:
        signed, self._signed = self._signed, []
        if not signed:
            return
        if self.decision_log is not None and not decision.record_id:
            decision.notes.append("no verification summary was attached: the decision was not recorded")
            for image, _ in signed:
                image.issued = []
            return
        for image, summary in signed:
            problem = summary.attach(self.verifier.registry)
            if problem is not None:
                image.issued = []
                decision.notes.append(
                    f"the verification summary of {image.reference} was not attached: {problem}"
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
        documents, problems = self._preread.get(unit.path) or loader.read_unit(
            unit, self.config.limits, any_data=True
        )
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
        if not doc.kubernetes:
            return self._evaluate_data(doc)
        findings: list[Finding] = []
        mode = self.config.mode
        if self._schemas is not None:
            findings.extend(self._schema_findings(doc, mode))
        if self._gk is not None and (self._gk.constraints or self._gk.skipped):
            findings.extend(self._gatekeeper_findings(doc, mode))
        if self._vap is not None:
            findings.extend(self._admission_policy_findings(doc))
        for evaluator, group in zip(self._rego(), self._groups, strict=True):
            try:
                raw = evaluator.evaluate(doc.obj)
                if self.combine:  # the user's own policies see the combined input instead
                    raw = [r for r in raw if r.package not in group.user]
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
            findings.extend(_rego_finding(item, group.modes.get(item.package) or mode) for item in raw)
        for finding in findings:
            where = ""
            if finding.path:
                finding.line, where = origins.locate(doc, finding.path)
            if (
                self.config.exceptions
                and finding.source in ("schema", "rego", "gatekeeper", "admission-policy")
                and finding.exception is None  # the policy's own conftest `exception` waived it
            ):
                self._apply_exceptions(doc.namespace, doc.kind, doc.name, finding)
            if where:  # the line is the object's, not the field's: say where the field is
                finding.note = f"{finding.note}; {where}" if finding.note else where
        findings.sort(key=_finding_order)
        images: list[ImageUse] = []
        if self._image_policy is not None:
            images = [
                ImageUse(u.reference, u.path, u.container, origins.locate(doc, u.path)[0])
                for u in find_images(doc.obj)
            ]
        keep = doc.obj if self.decision_log is not None else None  # the record stores or hashes it
        return DocumentResult(
            doc.source, doc.api_version, doc.kind, doc.namespace, doc.name, findings, keep, images=images
        )

    def _evaluate_data(self, doc: Document) -> DocumentResult:
        """A document that is not a Kubernetes object: the user's own policies only.

        Schemas, Gatekeeper, the bundled policies and images are about Kubernetes
        objects. When no policy of the user's evaluates the document, an info finding
        says so: nothing is dropped silently.
        """
        if self.combine and any(g.user for g in self._groups):  # checked within the combined input
            keep = doc.obj if self.decision_log is not None else None
            return DocumentResult(doc.source, None, None, None, None, [], keep)
        return self._evaluate_user(doc.obj, doc.tree, doc.source, "this document")

    def _evaluate_combined(self, documents: Sequence[Document]) -> DocumentResult:
        """conftest's `--combine`: the user's own policies over every document at once.

        The input is conftest's: `[{"path": file, "contents": document}, ...]`, sorted
        (stably) by path. The result is reported as the file `Combined`, as conftest does.
        """
        combined = sorted(
            ({"path": d.source.file, "contents": d.obj} for d in documents), key=lambda c: str(c["path"])
        )
        return self._evaluate_user(combined, None, Source("Combined"), "the combined input")

    def _evaluate_user(self, value: Any, tree: Any, source: Source, what: str) -> DocumentResult:
        findings: list[Finding] = []
        evaluated = False
        for evaluator, group in zip(self._rego(), self._groups, strict=True):
            if not group.user:
                continue
            evaluated = True
            try:
                raw = [r for r in evaluator.evaluate(value) if r.package in group.user]
            except PolicyError as e:
                findings.append(
                    Finding(
                        rule="policy/error",
                        severity=Severity.ERROR,
                        message=e.message,
                        source="engine",
                        fix=f"fix the policy: it failed on {what}",
                    )
                )
                continue
            findings.extend(_rego_finding(r, group.modes.get(r.package) or self.config.mode) for r in raw)
        if not evaluated:
            findings.append(_unchecked(combined=what == "the combined input"))
        for finding in findings:
            if finding.path:
                finding.line = yamlio.locate(tree, finding.path)
            if self.config.exceptions and finding.source == "rego" and finding.exception is None:
                self._apply_exceptions(None, None, None, finding)
        findings.sort(key=_finding_order)
        keep = value if self.decision_log is not None and isinstance(value, Mapping) else None
        return DocumentResult(source, None, None, None, None, findings, keep)

    def _schema_findings(self, doc: Document, mode: Mode) -> list[Finding]:
        assert self._schemas is not None
        lifecycle_findings: list[Finding] = []
        if doc.api_version and doc.kind and not self._schemas.has_crd(doc.api_version, doc.kind):
            api = deprecations.lifecycle(doc.api_version, doc.kind)
            if api is not None:
                lifecycle_findings = self._lifecycle_findings(api, mode)
                if lifecycle_findings and lifecycle_findings[0].rule == "schema-removed-api":
                    return lifecycle_findings  # no schema to validate against: the target does not serve it
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
        ] + lifecycle_findings

    def _lifecycle_findings(self, api: deprecations.ApiLifecycle, mode: Mode) -> list[Finding]:
        """A removed API blocks; a deprecated one still served by the target version warns."""
        assert self._schemas is not None
        target = deprecations.parse_version(self._schemas.version)
        policy = f"kubernetes-{target[0]}.{target[1]}"
        if target >= api.removed:
            return [
                Finding(
                    rule="schema-removed-api",
                    severity=_severity(True, mode),
                    message=f"{api.describe()} was removed in Kubernetes {api.removed_in}; {api.instead} "
                    f"(the target, Kubernetes {target[0]}.{target[1]}, rejects it)",
                    source="schema",
                    fix=f"migrate the manifest: {api.instead} "
                    "(https://kubernetes.io/docs/reference/using-api/deprecation-guide/)",
                    path=("apiVersion",),
                    policy=policy,
                )
            ]
        if api.deprecated is not None and target >= api.deprecated:
            return [
                Finding(
                    rule="schema-deprecated-api",
                    severity=_severity(False, mode),
                    rule_severity=Severity.WARNING,
                    message=f"{api.describe()} is deprecated since Kubernetes {api.deprecated_in} and "
                    f"is removed in {api.removed_in}; {api.instead}",
                    source="schema",
                    fix=f"before upgrading to Kubernetes {api.removed_in}: {api.instead}",
                    path=("apiVersion",),
                    policy=policy,
                )
            ]
        return []

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


def _unsupported_message(item: gatekeeper.Unsupported) -> str:
    if not item.kind:
        return f"{item.file}: {item.reason}, so nothing given as Gatekeeper policy is enforced"
    what = f"{item.kind} {item.name}" if item.name else item.kind
    return (
        f"{what} ({item.api_version}, {item.where}) is {item.reason}: "
        "trustgate evaluates only Gatekeeper policies"
    )


def _rego_finding(item: rego.RawFinding, mode: Mode) -> Finding:
    finding = Finding(
        rule=item.rule,
        severity=_severity(item.blocking, mode),
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


def _unchecked(*, combined: bool) -> Finding:
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


def load_policy_data(config: Config) -> rego.PolicyData:
    """The `data` document: data files in order, then the inline `manifests.data`.

    Each document is kept as a source (`<file>:<line>`), so that data which
    `RegoPolicy` refuses (a value at or below a rule's path) is named by file.

    Raises:
        ConfigError: a data file is unreadable, not YAML/JSON, or not a mapping.
    """
    data: dict[str, Any] = {}
    sources: list[tuple[str, Mapping[str, Any]]] = []
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
            sources.append((f"{path}:{item.line}", copy.deepcopy(item.value)))  # merging mutates
            _deep_merge(data, item.value)
    if config.data:
        sources.append((f"{config.origin}: manifests.data", copy.deepcopy(dict(config.data))))
    _deep_merge(data, copy.deepcopy(dict(config.data)))
    return rego.PolicyData(data, sources=sources)


def _deep_merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value
