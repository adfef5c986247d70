"""Gatekeeper ConstraintTemplates and Constraints (with ExpansionTemplates) as a gate check.

Owns: reviewing a document as Gatekeeper would once the API server has
created it (the object and what its ExpansionTemplates generate; a
cluster-scoped kind without the metadata.namespace the API server clears),
turning violations into findings with the constraint's enforcementAction,
failing closed where a namespaceSelector cannot be decided, a manifest of a
namespaced kind names no namespace (it may be applied in any: the constraint
applies as if in one it selects, unlike gator, which reviews it as written) or
one of a kind of unknown scope names one (it may be cleared: reviewed both ways),
the Gatekeeper processes a `Config` excludes it from (the webhook at admission;
the webhook and audit for a manifest; never a manifest that names no namespace,
nor what the ValidatingAdmissionPolicy Gatekeeper generates enforces), a warning
on a `Config` among the documents judged,
the "could not evaluate" results of Gatekeeper sources that would not be
enforced, and the pod templates of custom workloads handed to the constraints
of templates that ask for them (`trustgate.dev/pod-templates: judge`, as the
bundled Pod Security port does) as PodTemplates, with their findings put back
at the pod template's containers (a custom resource of a kind nobody declared
that carries containers is named instead, as the bundled Rego sets name it).
The compiled constraint set is shared; each thread (and forked worker)
compiles its own engine, and the change set of an evaluation becomes that
engine's inventory. Leaves out: reading the library from disk
(`trustgate.gate.sources`) and Gatekeeper semantics themselves
(`trustgate.policy.gatekeeper`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trustgate import kinds
from trustgate.config import Config
from trustgate.errors import PolicyError
from trustgate.gate.checks import Run
from trustgate.gate.sources import GatekeeperSources, unsupported_message
from trustgate.gate.verdict import policy_error, severity
from trustgate.model import Document, DocumentResult, Finding, Mode, Severity, Source
from trustgate.policy import gatekeeper
from trustgate.policy.engine import Engine


class _Local(threading.local):
    pid = -1
    evaluator: gatekeeper.ConstraintEvaluator | None = None
    objects: Sequence[Mapping[str, Any]] | None = None  # the change set the inventory was built from


# Constraints that match a review, and those whose namespaceSelector could not be decided.
_Matched = tuple[list[gatekeeper.Constraint], list[tuple[gatekeeper.Constraint, str]]]

# The finding for a custom resource of a kind nobody declared that carries containers, which the
# constraints asking for pod templates would judge if it were declared.
UNDECLARED_WORKLOAD = "gatekeeper/undeclared-workload"


@dataclasses.dataclass(frozen=True, slots=True)
class _PodTemplate(gatekeeper.Resultant):
    """A pod template found in a custom workload, reviewed as a PodTemplate (`obj`) in the
    workload's namespace, with the workload's metadata; `site` says where it is."""

    site: kinds.PodSite


class GatekeeperCheck:
    """The constraints of one Gatekeeper library; share it, each thread compiles its own engine."""

    name = "gatekeeper"
    # Gatekeeper's default webhook is sent no DELETE or CONNECT (an opt-in; on DELETE it judges the
    # deleted object as if it were created); trustgate's is sent them for admission policies (and
    # DELETEs of protected kinds) only.
    judges_delete_and_connect = False
    # A subresource's write (a Scale) is reviewed as its own kind, `request.kind`, as Gatekeeper's
    # webhook does: only constraints whose match covers that kind apply.
    judges_subresources = True
    # Not a resource's own writes through a subresource (deployments/status: a Deployment, whose spec
    # the status strategy keeps), sent for admission policies naming `*/status`: a constraint on
    # Deployments would stop their controller's status writes on every Deployment it finds wanting.
    judges_own_kind_subresources = False

    def __init__(self, sources: GatekeeperSources, config: Config, scopes: kinds.Scopes) -> None:
        self.set = sources.constraints
        self.scopes = scopes
        self.inventory = tuple(sources.inventory)
        self._notes = tuple(sources.notes)
        self._offline_notes = tuple(_subresource_notes(self.set.constraints))
        self._unevaluable = tuple(sources.unevaluable)
        self.exclusions = sources.exclusions
        # Constraints the ValidatingAdmissionPolicy Gatekeeper generates enforces: the API server runs
        # it, so the Config's exclusions (Gatekeeper's processes) do not take them away.
        self._vap_enforced = any(c.vap_action_name for c in self.set.constraints)
        self.wants_change_set = self.set.uses_inventory or self.set.needs_namespaces
        self.skip_unsupported = config.gatekeeper.skip_unsupported
        self.mode = config.gatekeeper.mode
        self._opa = (config.engine.opa_url, config.engine.opa_timeout_seconds)
        self._active = bool(self.set.constraints or self.set.skipped)
        self.workloads = config.workload_table()
        self._pod_template_kinds = self.set.pod_template_kinds
        self._local = _Local()
        self._evaluator(Run(Mode.ENFORCE))  # compile now: a broken template is reported before any document

    def _engine(self) -> Engine:
        url, timeout = self._opa
        if url:
            from trustgate.policy.engine import OpaEngine, OpaSettings

            return OpaEngine(OpaSettings(url=url, timeout_seconds=timeout))
        return gatekeeper.embedded_engine()

    def _evaluator(self, run: Run) -> gatekeeper.ConstraintEvaluator:
        local = self._local
        pid = os.getpid()
        if local.evaluator is None or local.pid != pid:  # engines are per process and thread
            local.pid, local.evaluator, local.objects = pid, self.set.compile(self._engine()), None
        objects = run.objects if self.wants_change_set else ()
        if local.objects is not objects:
            # Manifests are filed as the API server would create them (see `inventory_of`).
            local.evaluator.set_inventory([*self.inventory, *objects], namespaced=self.scopes.namespaced)
            local.objects = objects
        return local.evaluator

    def release(self) -> None:
        """Drop this thread's engines here, on their thread (an engine cannot be dropped on another)."""
        vars(self._local).clear()

    def notes(self) -> Sequence[str]:
        return self._notes

    def offline_notes(self) -> Sequence[str]:
        return self._offline_notes

    def results(self) -> Sequence[DocumentResult]:
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
                        message=unsupported_message(item),
                        source="engine",
                        fix="give --gatekeeper only ConstraintTemplates, constraints and ExpansionTemplates, "
                        "or pass --skip-unsupported (manifests.gatekeeper.skipUnsupported) to skip it",
                    )
                ],
            )
            for item in self._unevaluable
        ]

    def fingerprint(self, digest: hashlib._Hash) -> None:
        for modules in self.set.template_modules.values():
            for module in modules:
                digest.update(module.text.encode() + b"\0")
        digest.update(json.dumps(self.set.parameters, sort_keys=True, default=str).encode())
        digest.update(json.dumps(list(self.inventory), sort_keys=True, default=str).encode())
        cel = {k: self.set.templates[k].cel for k in self.set.cel}
        cel_parameters = {c.id: c.parameters for c in self.set.constraints if c.kind in self.set.cel}
        digest.update(json.dumps([cel, cel_parameters], sort_keys=True, default=str).encode())
        exclusions = self.exclusions
        config = [exclusions.name, exclusions.where, exclusions.excluded] if exclusions is not None else []
        digest.update(json.dumps(config, sort_keys=True).encode())
        digest.update(json.dumps(sorted(self._pod_template_kinds)).encode())

    def findings(self, doc: Document, run: Run) -> list[Finding]:
        """Constraint findings for a document and for what its ExpansionTemplates generate.

        As in Gatekeeper, a resultant (the Pod of a Deployment) is reviewed as
        an object of its own, and its violations land on the parent with
        `[Implied by <template>]`, the template's enforcementAction if it sets
        one, and a path into the parent (`spec.template...`). A manifest of a
        kind whose scope is unknown that names a namespace is reviewed both in it
        and, as the API server would create it if the kind is cluster-scoped,
        in none: a constraint either review matches applies.
        """
        config = [self._config_in_manifests(doc, run.mode)] if gatekeeper.is_config(doc.obj) else []
        if not self._active:
            return config
        return config + self._constraint_findings(doc, run)

    def _config_in_manifests(self, doc: Document, mode: Mode) -> Finding:
        """A Gatekeeper Config among the documents judged: once applied, it may take namespaces away
        from Gatekeeper (its excludedNamespaces), which nothing here judges. A warning, never a deny:
        a Config is a legitimate change, but one whoever approves it should see."""
        spec = doc.obj.get("spec")
        return Finding(
            rule="gatekeeper/config-in-manifests",
            severity=severity(False, mode),
            rule_severity=Severity.WARNING,
            message=f"a Gatekeeper Config ({_namespaced_name(doc.obj)}) is among the manifests: once "
            "applied, its excludedNamespaces take namespaces away from Gatekeeper's webhook and audit, "
            "and trustgate applies only a Config given with the Gatekeeper paths (--gatekeeper)",
            source="gatekeeper",
            fix="review its spec.match; keep Gatekeeper's Config with the Gatekeeper policy (and give it "
            "with --gatekeeper) rather than with workloads",
            path=("spec", "match") if isinstance(spec, Mapping) and "match" in spec else (),
            policy="gatekeeper:config",
        )

    def _constraint_findings(self, doc: Document, run: Run) -> list[Finding]:
        """`findings` for an active library: the constraints' findings and the Config's exclusions."""
        evaluator = self._evaluator(run)
        # Pre-sync knows the object as it is now: an UPDATE of it, with oldObject, as Gatekeeper sees.
        old = run.old_of(doc.obj)
        operation = "CREATE" if old is None else "UPDATE"
        review = gatekeeper.review_of(
            self._as_created(doc.obj),
            operation=operation,
            old=self._as_created(old) if old is not None else None,
        )
        placed = doc.request is None  # a manifest, not yet created: where it lands is assumed
        if doc.request is not None:  # admission: the AdmissionRequest itself, as Gatekeeper's webhook
            asked = doc.request.get("kind")
            review = {**review, **doc.request, "object": doc.obj}  # reviews it (userInfo, dryRun, ...)
            if not isinstance(asked, Mapping) or asked.get("kind") != doc.obj.get("kind"):
                # The object judged is not the one the request names (the Pod an EphemeralContainers
                # request of Kubernetes 1.16-1.21 changes): the review says what it is.
                review["kind"] = gatekeeper.review_of(doc.obj)["kind"]
            operation = str(review.get("operation") or operation)
        elif gatekeeper.is_admission_review(doc.obj):  # as gator: the review of its request
            try:
                review = gatekeeper.review_of_admission(doc.obj)
            except ValueError as e:
                return [policy_error(str(e), "give the AdmissionReview a request with an object")]
            operation = str(review.get("operation") or "CREATE")
            placed = False  # the request says where the object is
        subject = review["object"] if isinstance(review.get("object"), Mapping) else doc.obj
        # Gatekeeper's Config: the webhook judges admission; a manifest at the gate is what the
        # webhook will judge and what audit will then report, so both processes count there.
        processes = ("webhook",) if doc.request is not None else ("webhook", "audit")
        # A manifest that names no namespace lands in one the gate does not know, maybe none the
        # Config excludes: it is never excluded by namespace (fail closed), whatever a pattern
        # (`""`, `*`) would say of the empty namespace.
        unplaced = placed and self._placement(review) is not gatekeeper.Placement.AS_REVIEWED
        excluded = {} if unplaced else self._excluded(review, processes)
        if self._skips(excluded, processes):
            out = [self._excluded_note(review, excluded, evaluated=False)]
        else:
            out = self._findings(
                evaluator,
                review,
                subject,
                operation,
                run.mode,
                placed=placed,
                excluded=excluded,
                everything=len(excluded) == len(processes),
            )
            if excluded:
                everything = len(excluded) == len(processes)
                out.append(self._excluded_note(review, excluded, evaluated=not everything))
        if placed and review.get("namespace") and self.scopes.namespaced(subject) is None:
            # Its kind's scope is unknown: if cluster-scoped, the API server clears the namespace it
            # names, and Gatekeeper reviews it (and what it expands to) in none, as reviewed. A
            # constraint applies if either review matches; what only the cluster-scoped one finds
            # says why.
            cluster = {k: _cleared(v) if k in ("object", "oldObject") else v for k, v in review.items()}
            del cluster["namespace"]
            cluster_excluded = self._excluded(cluster, processes)
            if self._skips(cluster_excluded, processes):
                return out
            out += [
                dataclasses.replace(finding, message=finding.message + _UNKNOWN_SCOPE)
                for finding in self._findings(
                    evaluator,
                    cluster,
                    _cleared(subject),
                    operation,
                    run.mode,
                    placed=False,
                    excluded=cluster_excluded,
                    everything=len(cluster_excluded) == len(processes),
                )
                if finding not in out
            ]
        return out

    def _skips(self, excluded: Mapping[str, str], processes: Sequence[str]) -> bool:
        """Whether the Config takes the object away from every process the gate stands in for, and
        no constraint is enforced by the ValidatingAdmissionPolicy Gatekeeper generates (which the
        API server runs whatever the Config says): then nothing is evaluated."""
        return bool(excluded) and len(excluded) == len(processes) and not self._vap_enforced

    def _excluded(self, review: Mapping[str, Any], processes: Sequence[str]) -> dict[str, str]:
        """The processes of `processes` that Gatekeeper's Config excludes the reviewed object from,
        with the excludedNamespaces pattern that does it."""
        if self.exclusions is None:
            return {}
        found = {p: self.exclusions.excluding(p, review) for p in processes}
        return {p: pattern for p, pattern in found.items() if pattern is not None}

    def _excluded_note(
        self, review: Mapping[str, Any], excluded: Mapping[str, str], *, evaluated: bool
    ) -> Finding:
        """The info finding that says a Config took the object away from Gatekeeper processes."""
        assert self.exclusions is not None  # only called when it excluded something
        namespace = review.get("namespace") or ""
        what = f"namespace {namespace!r}"
        if gatekeeper.reviews_namespace(review):
            what = f"the Namespace {_name(review.get('object'))!r}"
        processes = " and ".join(excluded)
        patterns = ", ".join(sorted({repr(p) for p in excluded.values()}))
        text = (
            f"Gatekeeper Config {self.exclusions.name} ({self.exclusions.where}) excludes {what} from "
            f"the {processes} (excludedNamespaces {patterns}): "
        )
        if not evaluated:
            text += "its constraints are not evaluated, as Gatekeeper would not review it"
        elif "webhook" in excluded:
            text += "the webhook admits it, so its violations are only what audit would report"
        else:
            text += "audit would not report it, so dryrun constraints' violations are left out"
        if self._vap_enforced:
            text += (
                "; but constraints enforced by the ValidatingAdmissionPolicy Gatekeeper generates "
                "(vap.k8s.io) keep their action: the API server enforces it, and Gatekeeper copies the "
                "Config's exclusions into it only with --sync-vap-enforcement-scope"
            )
        return Finding(
            rule="gatekeeper/config-excluded",
            severity=Severity.INFO,
            rule_severity=Severity.INFO,
            message=text,
            source="gatekeeper",
            policy="gatekeeper:config",
        )

    def _findings(
        self,
        evaluator: gatekeeper.ConstraintEvaluator,
        review: Mapping[str, Any],
        subject: Mapping[str, Any],
        operation: str,
        mode: Mode,
        *,
        placed: bool,
        excluded: Mapping[str, str],
        everything: bool = False,
    ) -> list[Finding]:
        """The findings of one review and of what its ExpansionTemplates generate from `subject`
        (`excluded`: the Gatekeeper processes a Config takes the object away from; `everything`:
        all the gate stands in for, so only what the generated ValidatingAdmissionPolicy enforces
        is left)."""
        out: list[Finding] = []
        reviews: list[tuple[gatekeeper.Resultant | None, Mapping[str, Any]]] = [(None, review)]
        try:
            reviews += [
                (r, gatekeeper.resultant_review(r, review))
                for r in gatekeeper.expand(subject, evaluator.set.expansions, operation=operation)
            ]
        except gatekeeper.ExpansionError as e:
            if not everything:  # the webhook, which expands, would not review it
                out.append(
                    Finding(
                        rule="gatekeeper/expansion",
                        severity=Severity.ERROR,
                        message=f"unable to expand object: {e}",
                        source="engine",
                        fix="Gatekeeper rejects an object its ExpansionTemplates cannot expand",
                    )
                )
        owner: _Matched = ([], [])
        if self._pod_template_kinds:
            sites, declared = self._pod_templates(subject)
            if sites:
                owner = self._owner_matching(evaluator, review, placed=placed)
            if declared:
                reviews += [(site, gatekeeper.resultant_review(site, review)) for site in sites]
            elif sites:
                out.extend(self._undeclared(evaluator, sites, review, mode, owner, placed=placed))
        own: list[Finding] = []  # the object's own review's and its resultants'
        handed: list[Finding] = []  # the pod templates'
        implied: set[tuple[str, str]] = set()  # (rule, message) of the pod templates' violations
        for resultant, item in reviews:
            placement = self._placement(item) if placed else gatekeeper.Placement.AS_REVIEWED
            found = self._review(
                evaluator, resultant, item, mode, placement, excluded, everything, owner=owner
            )
            if isinstance(resultant, _PodTemplate):
                handed.extend(found)
                prefix = gatekeeper.implied(resultant, "")
                implied.update((f.rule, f.message.removeprefix(prefix)) for f in found)
            else:
                own.extend(found)
        # A template that reads the workload's own pod spec too (the port's reads spec.template.spec of
        # any kind it matches) finds the same there as in the pod template handed to it: reported
        # once, at the pod template, whose path says where.
        return out + [f for f in own if (f.rule, f.message) not in implied] + handed

    def _owner_matching(
        self, evaluator: gatekeeper.ConstraintEvaluator, review: Mapping[str, Any], *, placed: bool
    ) -> _Matched:
        """The constraints asking for pod templates that match the custom workload itself (its own
        kind named in `match.kinds`): they judge its pod templates as well as those matching the
        PodTemplates (a constraint written for PyTorchJobs reads no pod spec in one otherwise)."""
        placement = self._placement(review) if placed else gatekeeper.Placement.AS_REVIEWED
        matched, unknown = evaluator.matching(review, placement=placement)
        return (
            [c for c in matched if c.kind in self._pod_template_kinds],
            [(c, n) for c, n in unknown if c.kind in self._pod_template_kinds],
        )

    def _pod_templates(self, obj: Mapping[str, Any]) -> tuple[list[_PodTemplate], bool]:
        """The pod templates of a custom workload that the constraints do not reach by a path of
        their own, as PodTemplates to review, and whether its kind is known or declared (False:
        a custom resource nobody declared that carries containers). As the bundled Rego sets find
        them (`rego_check`): the templates inside lists or maps (`podSpec: "*"`) and beside the
        pod spec, and the declared pod spec itself unless it is the known kind's own path (which
        the bundled templates read)."""
        found = self.workloads.sites(obj)
        if found is None:
            return [], True
        kind, _, entry, sites = found
        if entry is not None and not entry.anywhere and not _read_by_the_port(entry):
            assert entry.pod_spec is not None  # a declared pod spec path
            spec, metadata = _at(obj, entry.pod_spec), _at(obj, entry.pod_metadata)
            if isinstance(spec, Mapping):
                site = kinds.PodSite(
                    entry.pod_spec, "pod", spec, metadata if isinstance(metadata, Mapping) else {}
                )
                sites.insert(0, site)
        return [_pod_template(obj, kind, site) for site in sites], entry is not None

    def _undeclared(
        self,
        evaluator: gatekeeper.ConstraintEvaluator,
        sites: Sequence[_PodTemplate],
        review: Mapping[str, Any],
        mode: Mode,
        owner: _Matched,
        *,
        placed: bool,
    ) -> list[Finding]:
        """The finding for a custom resource of a kind nobody declared that carries containers,
        when a constraint asking for pod templates would review them, as PodTemplates or matching
        the resource's own kind (`owner`; not, say, in a namespace it excludes): it follows the
        strictest action of those constraints."""
        first = sites[0]
        item = gatekeeper.resultant_review(first, review)
        placement = self._placement(item) if placed else gatekeeper.Placement.AS_REVIEWED
        matched, unknown = evaluator.matching(item, generated=True, placement=placement)
        applying = [
            c
            for c in _unique([*matched, *(c for c, _ in unknown), *owner[0], *(c for c, _ in owner[1])])
            if c.kind in self._pod_template_kinds
        ]
        if not applying:
            return []
        modes = [c.action or self.mode or mode for c in applying]
        strictest = min(modes, key=(Mode.ENFORCE, Mode.WARN, Mode.AUDIT).index)
        obj = review.get("object")
        kind = str(obj.get("kind")) if isinstance(obj, Mapping) else "?"
        group = kinds.api_group(obj.get("apiVersion")) if isinstance(obj, Mapping) else None
        ids = sorted({c.id for c in applying})
        names = ids[0] + (f" and {len(ids) - 1} more" if len(ids) > 1 else "")
        message, fix = kinds.undeclared_text(
            kind,
            group,
            [s.site for s in sites],
            f"the Gatekeeper constraints asking for pod templates ({names})",
            "its pod templates are then handed to those constraints",
        )
        return [
            Finding(
                rule=UNDECLARED_WORKLOAD,
                severity=severity(True, strictest),
                rule_severity=Severity.ERROR,
                message=message,
                source="gatekeeper",
                fix=fix,
                path=first.site.containers_path,
                policy="gatekeeper:pod-templates",
            )
        ]

    def _as_created(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """The object as Gatekeeper reviews it once created: the API server clears the
        metadata.namespace of a cluster-scoped kind (and the review then names no namespace)."""
        return obj if self.scopes.namespaced(obj) is not False else _cleared(obj)

    def _placement(self, review: Mapping[str, Any]) -> gatekeeper.Placement:
        """Where the reviewed manifest may be created: as reviewed when it names its namespace or
        is cluster-scoped, else in any namespace (and, its scope unknown, maybe cluster-scoped)."""
        obj = review.get("object")
        if review.get("namespace") or not isinstance(obj, Mapping):
            return gatekeeper.Placement.AS_REVIEWED
        namespaced = self.scopes.namespaced(obj)
        if namespaced is None:
            return gatekeeper.Placement.UNKNOWN_SCOPE
        return gatekeeper.Placement.ANY_NAMESPACE if namespaced else gatekeeper.Placement.AS_REVIEWED

    def _review(
        self,
        evaluator: gatekeeper.ConstraintEvaluator,
        resultant: gatekeeper.Resultant | None,
        review: Mapping[str, Any],
        mode: Mode,
        placement: gatekeeper.Placement,
        excluded: Mapping[str, str],
        everything: bool = False,
        *,
        owner: _Matched = ([], []),
    ) -> list[Finding]:
        generated = resultant is not None
        path: tuple[str | int, ...] = resultant.path if resultant is not None else ()

        def message(text: str) -> str:
            return gatekeeper.implied(resultant, text) if resultant is not None else text

        matched, unknown = evaluator.matching(review, generated=generated, placement=placement)
        if isinstance(resultant, _PodTemplate):  # only the constraints that ask for pod templates
            matched = [c for c in matched if c.kind in self._pod_template_kinds]
            unknown = [(c, n) for c, n in unknown if c.kind in self._pod_template_kinds]
            # and those matching the workload itself (`_owner_matching`), each once
            decided = {c.id for c in matched}
            matched += [c for c in owner[0] if c.id not in decided]
            decided |= {c.id for c in matched} | {c.id for c, _ in unknown}
            unknown += [(c, n) for c, n in owner[1] if c.id not in decided]
        if everything:  # no Gatekeeper process reviews it: only the generated VAP's bindings act
            matched = [c for c in matched if c.vap_action_name]
            unknown = [(c, n) for c, n in unknown if c.vap_action_name]
        # A namespaceSelector whose Namespace is not given cannot be decided: fail closed. The
        # constraint is evaluated as if it matched; a deny it would give is "could not evaluate".
        undecided = {constraint.id: namespace for constraint, namespace in unknown}
        matched = [*matched, *(constraint for constraint, _ in unknown)]

        def why(constraint_id: str) -> str:
            return (
                f"the namespaceSelector of {constraint_id} could not be decided: Namespace "
                f"{undecided[constraint_id]!r} is not in the change set or the Gatekeeper inventory"
            )

        out = (
            []
            if everything or isinstance(resultant, _PodTemplate)  # those templates are evaluated
            else self._skipped(evaluator, review, generated, path, message, placement)
        )
        try:
            violations = evaluator.review(review, matched, placement=placement)
        except gatekeeper.ReviewError as e:  # the other constraints' violations stand beside the errors
            violations = e.violations
            out.extend(
                policy_error(
                    message(f"constraint {constraint.id}: {error.message}"),
                    error.hint or "fix the Gatekeeper template: it failed on this document",
                )
                for constraint, error in e.failed
            )
        except PolicyError as e:
            return [
                *out,
                policy_error(
                    message(e.message), e.hint or "fix the Gatekeeper template: it failed on this document"
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
            constraint_mode = override or constraint.action or self.mode or mode
            metadata: dict[str, Any] = {"details": dict(violation.details)} if violation.details else {}
            if resultant is not None:
                metadata["impliedBy"] = resultant.template.name
            text = violation.message + _assumed(constraint, placement)
            if excluded:
                # Gatekeeper's own action decides which process would act on the violation: the
                # webhook on deny and warn, audit on all; the gate's mode only maps it. The binding of
                # the ValidatingAdmissionPolicy Gatekeeper generates acts at the API server, which the
                # Config does not reach (unless --sync-vap-enforcement-scope, which is not assumed).
                action = override or gatekeeper.ACTIONS.get(constraint.action_name, Mode.ENFORCE)
                vap = (
                    gatekeeper.ACTIONS.get(constraint.vap_action_name, Mode.ENFORCE)
                    if constraint.vap_action_name
                    else None
                )
                if vap is None and ("webhook" in excluded or action == Mode.AUDIT) and "audit" in excluded:
                    continue  # no Gatekeeper process would act on it
                if "webhook" in excluded and vap is not None:
                    constraint_mode = vap
                    text += (
                        " (the Gatekeeper Config excludes it from the webhook, not from the "
                        "ValidatingAdmissionPolicy Gatekeeper generates (vap.k8s.io), which the API "
                        "server enforces)"
                    )
                elif "webhook" in excluded and constraint_mode != Mode.AUDIT:
                    constraint_mode = Mode.AUDIT
                    text += " (the Gatekeeper Config excludes it from the webhook: only audit reports it)"
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
                    severity=severity(True, constraint_mode),
                    message=message(text),
                    source="gatekeeper",
                    path=_violation_path(resultant, violation.message),
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

    def _skipped(
        self,
        evaluator: gatekeeper.ConstraintEvaluator,
        review: Mapping[str, Any],
        generated: bool,
        path: tuple[str | int, ...],
        message: Callable[[str], str],
        placement: gatekeeper.Placement,
    ) -> list[Finding]:
        """Constraints that apply but whose template is not supported: noted, or not evaluated."""
        out: list[Finding] = []
        skip = self.skip_unsupported
        applies, _ = evaluator.matching(review, generated=generated, skipped=True, placement=placement)
        for constraint in applies:
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
        return out


_UNKNOWN_SCOPE = (
    " (the scope of its kind is unknown: judged as cluster-scoped, where the API server clears its "
    "metadata.namespace; give its CustomResourceDefinition with --crd (kubernetes.crds) to decide)"
)


_POD_TEMPLATE_SOURCE = ("template",)  # where a _PodTemplate's pod template is in its object


def _pod_template(obj: Mapping[str, Any], kind: str, site: kinds.PodSite) -> _PodTemplate:
    """A pod template found in `obj`, as the PodTemplate the constraints review: the workload's
    metadata (its namespace, name and labels decide what matches), the template's metadata and
    pod spec."""
    metadata = obj.get("metadata")
    where = ".".join(map(str, site.path))
    template = gatekeeper.ExpansionTemplate(
        name=f"{kind} pod template at {where}",
        file="",
        line=0,
        apply_to=(),
        source=_POD_TEMPLATE_SOURCE,
        generated=("", "v1", "PodTemplate"),
    )
    pod_template = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": dict(metadata) if isinstance(metadata, Mapping) else {},
        "template": {"metadata": dict(site.metadata), "spec": _named(site)},
    }
    return _PodTemplate(pod_template, template, site.path, site)


def _named(site: kinds.PodSite) -> dict[str, Any]:
    """The site's pod spec with a name for each container that has none, as its controller names
    it (Argo Workflows' lone `container` or `script`: main; Tekton's steps: unnamed-<index>): a
    template's message reads the name, and a message that cannot be made is no violation."""
    pod = dict(site.pod)
    for field_name in gatekeeper.CONTAINER_FIELDS:
        items = pod.get(field_name)
        if not isinstance(items, list):
            continue
        pod[field_name] = [
            {**item, "name": "main" if site.shape == "container" else f"unnamed-{index}"}
            if isinstance(item, Mapping) and not (isinstance(item.get("name"), str) and item.get("name"))
            else item
            for index, item in enumerate(items)
        ]
    return pod


def _violation_path(resultant: gatekeeper.Resultant | None, message: str) -> tuple[str | int, ...]:
    """Where in the document a violation points: nothing for the document's own review; for a
    pod template found in a custom workload, the container the message names (if exactly one),
    else the pod template; for a resultant, as Gatekeeper's `container_path`."""
    if resultant is None:
        return ()
    if not isinstance(resultant, _PodTemplate):
        return gatekeeper.container_path(resultant, message)
    site = resultant.site
    found = gatekeeper.named_container(resultant.obj["template"]["spec"], message)
    return site.real_path(found) if found is not None else site.path


# The known kinds with one pod spec path, which the bundled port's `lib.pss` reads itself.
_ONE_PATH = {(w.group, w.kind): (w.pod_spec, w.pod_metadata) for w in kinds.KNOWN_WORKLOADS if not w.anywhere}


def _read_by_the_port(entry: kinds.WorkloadKind) -> bool:
    """Whether the pod spec of `entry` is where the known kind keeps it (its constraints read it)."""
    return _ONE_PATH.get((entry.group, entry.kind)) == (entry.pod_spec, entry.pod_metadata)


def _at(obj: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _unique(constraints: Sequence[gatekeeper.Constraint]) -> list[gatekeeper.Constraint]:
    by_id: dict[str, gatekeeper.Constraint] = {}
    for constraint in constraints:
        by_id.setdefault(constraint.id, constraint)
    return list(by_id.values())


def _name(obj: Any) -> str:
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else ""


def _namespaced_name(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    return f"{namespace if isinstance(namespace, str) else ''}/{_name(obj)}"


def _cleared(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object as the API server creates it when its kind is cluster-scoped: no namespace."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping) or "namespace" not in metadata:
        return obj
    return {**obj, "metadata": {k: v for k, v in metadata.items() if k != "namespace"}}


def _assumed(constraint: gatekeeper.Constraint, placement: gatekeeper.Placement) -> str:
    """What the gate assumed to apply the constraint to an object that names no namespace ("" when
    nothing): said on its violations, so that whoever reads one knows how to decide it."""
    if placement is gatekeeper.Placement.AS_REVIEWED:
        return ""
    match = constraint.match
    if match.namespaces or match.excluded_namespaces or match.namespace_selector is not None:
        return (
            " (no metadata.namespace: judged as if applied in a namespace the constraint selects; "
            "set metadata.namespace to decide)"
        )
    if placement is gatekeeper.Placement.UNKNOWN_SCOPE and match.scope in ("Cluster", "Namespaced"):
        return (
            f" (the scope of its kind is unknown: judged as if it were "
            f"{'namespaced' if match.scope == 'Namespaced' else 'cluster-scoped'}; give its "
            "CustomResourceDefinition with --crd to decide)"
        )
    return ""


def _subresource_notes(constraints: Sequence[gatekeeper.Constraint]) -> list[str]:
    """A note for each constraint whose match names a kind that only a subresource's request has
    (`kubectl scale`'s Scale, an Eviction, a Binding): no manifest is one, so `check` and `presync`
    never apply it to anything; `serve` does, as Gatekeeper's webhook matches `request.kind`."""
    out = []
    for constraint in constraints:
        named = sorted(
            {
                f"{group or 'core'}/{kind}"
                for groups, kinds_ in constraint.match.kinds
                for group, kind in kinds.SUBRESOURCE_ONLY_KINDS
                if kind in kinds_ and (not groups or "*" in groups or group in groups)
            }
        )
        if named:
            out.append(
                f"Gatekeeper constraint {constraint.id} ({constraint.file}:{constraint.line}) matches "
                f"{', '.join(named)}: no manifest is such a request (a Scale is `kubectl scale`'s, an "
                "Eviction a drain's, a Binding the scheduler's), so it is not evaluated on them here; "
                "`trustgate serve` judges those requests at admission, as Gatekeeper's webhook does"
            )
    return out
