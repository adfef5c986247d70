"""The interface every policy engine implements for the gate, and the engines of one configuration.

Owns: `Check` (what the gate asks of an engine: findings for one document,
notes, results of its own, a fingerprint for the policy revision), `Run`
(what one evaluation shares across its documents: the change set, and the
objects as they are now, which make a document's review an UPDATE), the
adapters of the schema and ValidatingAdmissionPolicy engines, and
`ENGINES`, the ordered list of factories a `Gate` builds its checks from.
A new engine is one adapter and one line in `ENGINES`; the webhook, pre-sync
and the CLI call the gate and never see the engines.

A check is built once from what `trustgate.gate.sources` read, is never
changed by an evaluation, and may be shared across threads: per-thread
engine state (regorus engines cannot cross threads) lives in a
`threading.local` inside the adapter. Leaves out: reading from disk, modes
of the gate as a whole, exceptions and images.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from trustgate import kinds
from trustgate.config import Config
from trustgate.gate.verdict import severity
from trustgate.manifests import variables
from trustgate.model import Document, DocumentResult, Finding, Mode, Severity, render_path
from trustgate.policy import deprecations, rego
from trustgate.policy.schema import SchemaMissing, SchemaSet

if TYPE_CHECKING:
    from trustgate.policy import vap  # the CEL runtime loads only when admission policies are given


ObjectKey = tuple[str, str, str, str]  # API group, kind, namespace, name: one object in every version


def object_key(obj: Mapping[str, Any], scopes: kinds.Scopes) -> ObjectKey | None:
    """The identity of a Kubernetes object across versions of its API (None: it has no name); a
    cluster-scoped kind's is in no namespace, whatever its metadata.namespace says."""
    api_version, kind, metadata = obj.get("apiVersion"), obj.get("kind"), obj.get("metadata")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not isinstance(metadata, Mapping):
        return None
    name = metadata.get("name")
    if not isinstance(name, str):
        return None
    return (api_version.rpartition("/")[0], kind, scopes.namespace_of(obj), name)


def index_objects(
    objects: Iterable[Mapping[str, Any]], scopes: kinds.Scopes
) -> dict[ObjectKey, Mapping[str, Any]]:
    """Objects by identity; where one appears twice, the first (as a reconciler's scan finds it)."""
    out: dict[ObjectKey, Mapping[str, Any]] = {}
    for obj in objects:
        key = object_key(obj, scopes)
        if key is not None:
            out.setdefault(key, obj)
    return out


def is_delete_or_connect(doc: Document) -> bool:
    """An admission DELETE or CONNECT: no object is created or changed. A DELETE's `doc.obj` is the
    object deleted (`oldObject`, its `object` is null); a CONNECT's is its options (PodExecOptions)."""
    return doc.request is not None and doc.request.get("operation") in ("DELETE", "CONNECT")


def is_subresource_write(doc: Document) -> bool:
    """An admission CREATE or UPDATE of a subresource (`kubectl scale`: deployments/scale, whose
    object is an autoscaling/v1 Scale), other than pods/ephemeralcontainers and pods/resize, whose
    object is the Pod with its spec changed and is judged as one. Its object is the subresource's,
    not the resource's."""
    request = doc.request
    if request is None:
        return False
    return kinds.writes_subresource(request.get("operation"), request.get("subResource"))


def is_own_kind_subresource(doc: Document) -> bool:
    """A subresource write whose object is the resource itself (deployments/status: a Deployment;
    a CSR's approval), not an object of its own kind (a Scale of deployments/scale, an Eviction):
    the API server's status strategies keep the spec of what it writes. A custom resource whose
    plural is not the rule of thumb counts as another kind."""
    request = doc.request or {}
    kind, resource = request.get("kind"), request.get("resource")
    if not isinstance(kind, Mapping) or not isinstance(resource, Mapping):
        return False
    name = kind.get("kind")
    return (
        isinstance(name, str)
        and kind.get("group") == resource.get("group")
        and kinds.resource_of(name) == resource.get("resource")
    )


def judges_subresources(check: object, doc: Document | None = None) -> bool:
    """Whether an engine judges admission writes of subresources (`is_subresource_write`), `doc`'s
    if given: the admission policies whose rules name the subresource (the API server runs them),
    and Gatekeeper, whose webhook reviews such a request as an object of `request.kind` (a Scale),
    matched by the constraints whose kinds cover it, but not the resource's own writes through a
    subresource (a Deployment's status, which its controller writes and no Gatekeeper webhook is
    sent: `judges_own_kind_subresources = False`). Schemas and Rego judge the objects stored."""
    if getattr(check, "judges_subresources", False) is not True:
        return False
    own = doc is not None and is_own_kind_subresource(doc)
    return not own or getattr(check, "judges_own_kind_subresources", True) is True


def judges_delete_and_connect(check: object) -> bool:
    """Whether an engine judges admission DELETEs and CONNECTs (`is_delete_or_connect`). Only
    ValidatingAdmissionPolicies do: the API server runs them on the DELETEs and CONNECTs their rules
    name. Schemas, Gatekeeper (whose default webhook is sent neither; where it is sent DELETE, it
    judges the deleted object as if it were created) and Rego judge objects, not their deletion."""
    return getattr(check, "judges_delete_and_connect", False) is True


@dataclass(frozen=True, slots=True)
class Run:
    """What every document of one evaluation is judged with.

    Attributes:
        mode: the gate's mode (a check may override it per rule).
        objects: the change set, every Kubernetes object of the evaluation (Gatekeeper's
            inventory, Namespaces and params for admission policies); empty when no check wants it.
        old: the objects as they are now (pre-sync: the gated tree), by `object_key`. A document
            found here is an UPDATE of it: admission policies see it as `oldObject` (and match
            UPDATE rules), CRD transition rules as `oldSelf`. Empty (a `check`): every document
            is a CREATE.
        scopes: the scopes of kinds `old` was indexed with (`index_objects`).
    """

    mode: Mode
    objects: Sequence[Mapping[str, Any]] = ()
    old: Mapping[ObjectKey, Mapping[str, Any]] = field(default_factory=dict)
    scopes: kinds.Scopes = field(default_factory=kinds.Scopes)

    def old_of(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The object `obj` updates, or None (a create)."""
        if not self.old:
            return None
        key = object_key(obj, self.scopes)
        return self.old.get(key) if key is not None else None


@dataclass(frozen=True, slots=True)
class Build:
    """What a check is built from: the configuration and what was read from disk for it (the `data`
    document, the CRDs of `--crd` and the scopes of kinds they and the built-in table give)."""

    config: Config
    data: rego.PolicyData
    combine: bool = False  # conftest's --combine (the user's Rego sees all documents at once)
    crds: Sequence[Mapping[str, Any]] = ()
    scopes: kinds.Scopes = field(default_factory=kinds.Scopes)


class Check(Protocol):
    """One engine's compiled checks: built once, immutable, safe to share across threads."""

    name: str
    wants_change_set: bool  # read every document before evaluating any (inventory, Namespaces)
    # An engine that judges admission DELETEs and CONNECTs sets `judges_delete_and_connect = True`
    # (see `judges_delete_and_connect`); the others are never asked about them.
    # One that judges admission writes of subresources sets `judges_subresources = True`.

    def findings(self, doc: Document, run: Run) -> list[Finding]:
        """Findings of one Kubernetes object; `line` and exceptions are the gate's business.

        A failure of the engine on this document is a finding (source "engine"), not an exception.
        """
        ...

    def notes(self) -> Sequence[str]:
        """Notes for every decision (what was skipped when the check was built)."""
        ...

    def offline_notes(self) -> Sequence[str]:
        """Notes for a decision on manifests (`check`, `presync`), not at admission: what the check
        judges only in an admission request (a subresource's, such as `kubectl scale`'s Scale)."""
        ...

    def results(self) -> Sequence[DocumentResult]:
        """Results of the check's own (a source that cannot be enforced), added to every decision."""
        ...

    def fingerprint(self, digest: hashlib._Hash) -> None:
        """Add what the check enforces to the policy revision."""
        ...

    def release(self) -> None:
        """Drop what this thread built (engines), on this thread; the check stays usable."""
        ...


class SchemaCheck:
    """Kubernetes OpenAPI and CRD schemas, and the API lifecycle (removed, deprecated APIs)."""

    name = "schema"
    wants_change_set = False
    judges_delete_and_connect = False

    def __init__(
        self, schemas: SchemaSet, *, missing_schemas: str, scopes: kinds.Scopes | None = None
    ) -> None:
        self.schemas = schemas
        self.missing_fail = missing_schemas == "fail"
        self.scopes = scopes if scopes is not None else kinds.Scopes()
        self._policy = f"kubernetes-{schemas.version}{'-strict' if schemas.strict else ''}"

    def notes(self) -> Sequence[str]:
        return ()

    def offline_notes(self) -> Sequence[str]:
        return ()

    def results(self) -> Sequence[DocumentResult]:
        return ()

    def fingerprint(self, digest: hashlib._Hash) -> None:
        return None  # the configuration (its version, strictness, CRD paths) is in the revision

    def release(self) -> None:
        return None

    def findings(self, doc: Document, run: Run) -> list[Finding]:
        mode = run.mode
        lifecycle_findings: list[Finding] = []
        if doc.api_version and doc.kind and not self.schemas.has_crd(doc.api_version, doc.kind):
            api = deprecations.lifecycle(doc.api_version, doc.kind)
            if api is not None:
                lifecycle_findings = self._lifecycle_findings(api, mode)
                if lifecycle_findings and lifecycle_findings[0].rule == "schema-removed-api":
                    return lifecycle_findings  # no schema to validate against: the target does not serve it
        metadata_findings = self._metadata_findings(doc, mode)
        try:
            violations = self.schemas.validate(doc.obj, old=run.old_of(doc.obj))
        except SchemaMissing:
            fail = self.missing_fail
            return [
                *metadata_findings,
                Finding(
                    rule="schema-missing",
                    severity=severity(True, mode) if fail else Severity.INFO,
                    rule_severity=Severity.ERROR if fail else Severity.INFO,
                    message=f"no schema for {doc.api_version} {doc.kind}; schema validation "
                    + ("is required (missingSchemas: fail)" if fail else "skipped"),
                    source="schema",
                    fix="add the CRD with kubernetes.crds in trustgate.yaml (or --crd)",
                ),
            ]
        found = [
            Finding(
                rule=v.rule,
                severity=severity(True, mode),
                message=v.message,
                source="schema",
                fix=_schema_fix(v.rule),
                path=v.path,
                policy=self._policy,
            )
            for v in violations
        ]
        return [*found, *metadata_findings, *lifecycle_findings]

    def _metadata_findings(self, doc: Document, mode: Mode) -> list[Finding]:
        """What the API server's metadata validation refuses, which no schema says (a namespace
        is a DNS label, label and annotation keys are qualified names)."""
        return [
            Finding(
                rule="schema-invalid",
                severity=severity(True, mode),
                message=f"{render_path(bad.path)}: {json.dumps(bad.text)} is not a valid {bad.what}, "
                f"which the API server refuses: it must be {bad.rule}",
                source="schema",
                fix=bad.fix or f"correct the {bad.what}",
                path=bad.path,
                policy=self._policy,
            )
            for bad in variables.invalid_metadata(doc.obj, namespaced=self.scopes.namespaced(doc.obj))
        ]

    def _lifecycle_findings(self, api: deprecations.ApiLifecycle, mode: Mode) -> list[Finding]:
        """A removed API blocks; a deprecated one still served by the target version warns."""
        target = deprecations.parse_version(self.schemas.version)
        policy = f"kubernetes-{target[0]}.{target[1]}"
        if target >= api.removed:
            return [
                Finding(
                    rule="schema-removed-api",
                    severity=severity(True, mode),
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
                    severity=severity(False, mode),
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


class AdmissionPolicyCheck:
    """ValidatingAdmissionPolicies and their bindings (CEL), each document reviewed as a CREATE, or
    as an UPDATE of the object `Run.old` holds for it (pre-sync: in the gated tree), or, for an
    admission DELETE (`is_delete_or_connect`), as the DELETE of the object it holds (a CONNECT, with
    its options as the object, as the request says)."""

    name = "admission-policy"
    judges_delete_and_connect = (
        True  # the API server runs a policy on the DELETEs and CONNECTs its rules name
    )
    judges_subresources = True  # and on the subresources (deployments/scale) its rules name

    def __init__(self, policies: vap.PolicySet) -> None:
        self.policies = policies
        # Params and Namespaces come from the change set; without them a document is reviewed alone,
        # so the change set need not be read before the first review.
        self.wants_change_set = policies.needs_change_set

    def notes(self) -> Sequence[str]:
        return self.policies.notes

    def offline_notes(self) -> Sequence[str]:
        return self.policies.offline_notes  # at admission, the subresources they name are judged

    def results(self) -> Sequence[DocumentResult]:
        return ()

    def fingerprint(self, digest: hashlib._Hash) -> None:
        digest.update(json.dumps(self.policies.documents, sort_keys=True, default=str).encode())

    def release(self) -> None:
        return None

    def findings(self, doc: Document, run: Run) -> list[Finding]:
        """The binding's validationActions decide the effect, as enforcementAction does for
        Gatekeeper: Deny blocks, Warn warns, Audit only records. The audit annotations the API
        server would add to the request's audit event are an info finding per policy."""
        out: list[Finding] = []
        annotations: dict[str, str] = {}
        if doc.request is not None and doc.request.get("operation") == "DELETE":
            # `object` null, `oldObject` the object deleted (a CONNECT is reviewed as the request says)
            outcomes = self.policies.review(
                None, objects=run.objects, old=doc.obj, annotations=annotations, admission=doc.request
            )
        else:
            outcomes = self.policies.review(
                doc.obj,
                objects=run.objects,
                old=run.old_of(doc.obj),
                annotations=annotations,
                admission=doc.request,
            )
        for outcome in outcomes:
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
                finding.fix = (
                    "evaluate it in the cluster: trustgate cannot reproduce this CEL there exactly"
                    if "cannot be evaluated as the API server does it" in outcome.message
                    else "give the missing object with --admission-policy, or evaluate it in the cluster"
                )
            elif outcome.kind == "ignored":
                finding.severity = finding.rule_severity = Severity.INFO
            elif outcome.kind == "namespace-unknown":
                finding.severity = finding.rule_severity = Severity.WARNING
                finding.fix = "add the Namespace object to manifests.admissionPolicies"
            else:
                # An auditAnnotation's error under Fail denies whatever the actions (`Outcome.denies`).
                mode = Mode.ENFORCE if outcome.blocks else Mode.WARN if "Warn" in actions else Mode.AUDIT
                finding.severity = severity(True, mode)
            out.append(finding)
        out.extend(_annotation_findings(annotations, doc))
        return out


def _annotation_findings(annotations: Mapping[str, str], doc: Document) -> list[Finding]:
    """One info finding per policy that published audit annotations (`<policy>/<key>`: value, as
    the API server adds them to the audit event, whatever the decision); the values are in
    `metadata.auditAnnotations`, the record keeps them."""
    by_policy: dict[str, dict[str, str]] = {}
    for key, value in annotations.items():
        by_policy.setdefault(key.partition("/")[0], {})[key] = value
    return [
        Finding(
            rule=f"{name}/auditAnnotations",
            severity=Severity.INFO,
            rule_severity=Severity.INFO,
            message="audit annotations: "
            + "; ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in values.items()),
            source="admission-policy",
            line=doc.source.line,
            policy=f"admission-policy:{name}",
            metadata={"auditAnnotations": values},
        )
        for name, values in by_policy.items()
    ]


def _schema_fix(rule: str) -> str:
    if rule == "schema-unknown-field":
        return "remove the field or fix its spelling (see `kubectl explain`)"
    return "correct the value to match the Kubernetes API (see `kubectl explain`)"


def schema_check(build: Build) -> Check | None:
    from trustgate.gate.sources import load_schemas

    schemas = load_schemas(build.config)
    if schemas is None:
        return None
    return SchemaCheck(schemas, missing_schemas=build.config.kubernetes.missing_schemas, scopes=build.scopes)


def gatekeeper_check(build: Build) -> Check | None:
    from trustgate.gate.sources import load_gatekeeper

    sources = load_gatekeeper(build.config)
    if sources is None:
        return None
    from trustgate.gate.gatekeeper_check import GatekeeperCheck  # the engine loads only when used

    return GatekeeperCheck(sources, build.config, build.scopes)


UNRESOLVED_KIND_RULE = "kind-unresolved-variable"
UNRESOLVED_KEY_RULE = "key-unresolved-variable"
UNRESOLVED_METADATA_RULE = "metadata-unresolved-variable"
UNRESOLVED_VALUE_RULE = "value-unresolved-variable"

_RENDER_FIRST = (
    "check the manifests as they are applied: render them first (e.g. `flux envsubst --strict` "
    "with the variables, or `flux build kustomization`)"
)


class UnresolvedVariableCheck:
    """An object holding a variable left for a later step where it changes what is judged.

    Flux's post-build substitution fills `${VAR}` and `${VAR:=default}` in the whole text of each
    object when it applies it (`trustgate.manifests.variables`). Where the variable is in a value,
    the rules that read the value judge it as written (`images-unresolved-variable` for images).
    Elsewhere no rule can:

    - `apiVersion` or `kind` (`kind-unresolved-variable`): `kind: ${KIND:=Pod}` is a Pod then,
      but no check here knows it for one (no schema, no policy matches its kind). A `$` alone counts
      too: no Kubernetes kind or API version holds one.
    - a mapping key anywhere (`key-unresolved-variable`): an annotation key
      `${A:=container.apparmor.security.beta.kubernetes.io/c}` or a spec key
      `${P:=privileged}` becomes a key no rule looked for.
    - `metadata.namespace`, `name`, `generateName` or a label value
      (`metadata-unresolved-variable`): `namespace: ${NS:=prod}` lands in a namespace that
      namespace-scoped constraints and exceptions did not match.
    - a reference left open in a value (`value-unresolved-variable`): Flux reads on through the
      document's text up to the next `}`, which can remove or rewrite the fields in between.

    A default is not judged as what is applied: the Kustomization's `substitute` or
    `substituteFrom` may set the variable. None of these is valid Kubernetes as written (a
    namespace is a DNS label, label and annotation keys are qualified names), so failing them in
    `check`, which cannot know whether Flux substitutes, passes nothing the API server would take.
    Always on, whatever the policies: blocking findings that follow the mode, waivable with an
    exception. An object marked `kustomize.toolkit.fluxcd.io/substitute: disabled`, which Flux
    applies as written, passes the key, metadata and value rules. At admission the object is the
    one applied, substituted already: only the kind rule runs there.
    """

    name = "unresolved-variable"
    wants_change_set = False
    judges_delete_and_connect = False

    def notes(self) -> Sequence[str]:
        return ()

    def offline_notes(self) -> Sequence[str]:
        return ()

    def results(self) -> Sequence[DocumentResult]:
        return ()

    def fingerprint(self, digest: hashlib._Hash) -> None:
        return None  # trustgate's own rules: no configuration

    def release(self) -> None:
        return None

    def findings(self, doc: Document, run: Run) -> list[Finding]:
        out: list[Finding] = []
        blocking = severity(True, run.mode)
        for key in ("apiVersion", "kind"):
            value = doc.obj.get(key)
            if not isinstance(value, str) or "$" not in value:
                continue
            out.append(
                Finding(
                    rule=UNRESOLVED_KIND_RULE,
                    severity=blocking,
                    message=f"{key} {json.dumps(value)} holds a variable substituted later (Flux "
                    "post-build substitution?): which kind of object is applied cannot be told, so "
                    "no schema or policy judged it as what it becomes",
                    source="schema",
                    fix=f"write the {key} out, or {_RENDER_FIRST}; or waive {UNRESOLVED_KIND_RULE} "
                    "with an exception",
                    path=(key,),
                )
            )
        if doc.request is not None or doc.list_role == "list" or not doc.may_hold_variable:
            return out  # admission: applied as it is; a whole List: its items are judged
        hits = [_variable_finding(hit, blocking, doc) for hit in variables.find(doc.obj)]
        if doc.applied_as and doc.unresolved and not hits:
            # Judged as one application substitutes it: a variable no source sets, without a default,
            # is applied empty (or refused) anywhere, so it blocks; one a source outside the tree may
            # set is judged as written where it is only a value (as without the application), noted.
            hits.append(
                Finding(
                    rule=UNRESOLVED_VALUE_RULE,
                    severity=blocking if doc.unresolved_certain else Severity.INFO,
                    rule_severity=Severity.ERROR if doc.unresolved_certain else Severity.INFO,
                    message=f"as {doc.applied_as} applies it{doc.applied_phrase}, "
                    "its substitution is not resolved"
                    + ("" if doc.unresolved_certain else " (its value is judged as written)")
                    + ": "
                    + "; ".join(doc.unresolved),
                    source="schema",
                    fix="set the variable (the Kustomization's spec.postBuild.substitute, an object it "
                    "substitutes from, or --flux-substitute), give it a default, or write `$${` for a "
                    f"literal `${{`; or waive {UNRESOLVED_VALUE_RULE} with an exception",
                )
            )
        out.extend(hits)
        return out


def _variable_finding(hit: variables.Hit, blocking: Severity, doc: Document) -> Finding:
    where = render_path(hit.path[:-1]) or "the top level"
    text = json.dumps(hit.text if len(hit.text) <= 200 else hit.text[:200] + "...")  # a script may be long
    later = "holds a variable that Flux's post-build substitution replaces when it applies the object"
    unknown = "the Kustomization's `substitute` or `substituteFrom` may set it, whatever the default"
    if doc.applied_as:  # judged as one application substitutes it: say why this stayed unresolved
        later = "keeps a variable reference the substitution leaves unresolved"
        unknown = "; ".join(doc.unresolved) or f"{doc.applied_as} substitutes no variable"
    literal = (
        f"if the `${{` is meant literally, write `$${{` (Flux reads it as `${{`) or mark the object "
        f"`{variables.SUBSTITUTE_MARKER}: disabled`"
    )
    if hit.where == "key":
        rule = UNRESOLVED_KEY_RULE
        message = (
            f"the key {text} at {where} {later}: the key it becomes (an annotation, "
            f"a label, a field) was judged by no rule, and {unknown}"
        )
        fix = f"write the key out, or {_RENDER_FIRST}; {literal}; or waive {rule} with an exception"
    elif hit.where == "metadata":
        rule = UNRESOLVED_METADATA_RULE
        field = render_path(hit.path)
        message = (
            f"{field} {text} {later}: which namespace, name or labels the object "
            f"gets, and so which constraints, policies and exceptions match it, cannot be told "
            f"({unknown})"
        )
        fix = f"write {field} out, or {_RENDER_FIRST}; {literal}; or waive {rule} with an exception"
    else:
        rule = UNRESOLVED_VALUE_RULE
        field = render_path(hit.path) or "the value"
        message = (
            f"{field} {text} leaves a variable reference open (a `${{` without its "
            "`}`): Flux's post-build substitution reads on through the document's text up to the "
            "next `}`, so the fields in between may be removed or rewritten unseen"
        )
        fix = f"close the reference, or {_RENDER_FIRST}; {literal}; or waive {rule} with an exception"
    if doc.applied_as:
        message = f"as {doc.applied_as} applies it{doc.applied_phrase}, {message}"
        fix = (
            "set the variable in the Kustomization's postBuild.substitute, or keep the object it substitutes "
            f"from in the repository (under presync.paths); {literal}; or waive {rule} with an exception"
        )
    else:
        fix = fix.replace(
            _RENDER_FIRST,
            f"{_RENDER_FIRST}, or give the values Flux substitutes (`trustgate check "
            "--flux-substitute NAME=VALUE` or `--flux-kustomization FILE`; `presync` takes them from the "
            "Flux Kustomizations of the tree whose path holds the file)",
        )
    return Finding(
        rule=rule,
        severity=blocking,
        message=message,
        source="schema",
        fix=fix,
        path=hit.path,
    )


def unresolved_variable_check(build: Build) -> Check | None:
    return UnresolvedVariableCheck()


def admission_policy_check(build: Build) -> Check | None:
    if not build.config.admission_policies:
        return None
    from trustgate.policy import vap

    return AdmissionPolicyCheck(
        vap.load(
            build.config.admission_policies,
            limits=build.config.limits,
            crds=build.crds,  # custom kinds' plurals and scopes, for matching
            kubernetes_version=build.config.kubernetes.version,
        )
    )


# The engines, in the order their findings are listed (before sorting). Rego (the user's and the
# bundled policies) is built apart: it also judges documents that are not Kubernetes objects.
ENGINES: tuple[Callable[[Build], Check | None], ...] = (
    unresolved_variable_check,
    schema_check,
    gatekeeper_check,
    admission_policy_check,
)
