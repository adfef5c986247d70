"""Kubernetes ValidatingAdmissionPolicies and their bindings, evaluated as the API server does.

Owns reading `ValidatingAdmissionPolicy` and `ValidatingAdmissionPolicyBinding`
(admissionregistration.k8s.io v1 and v1beta1), compiling every CEL expression
once (`trustgate.policy.cel`), matching (`matchConstraints` and the binding's
`matchResources`: resourceRules with operations, excludeResourceRules,
namespaceSelector, objectSelector; then `matchConditions`), parameters
(`paramKind`, `paramRef` by name or selector, `parameterNotFoundAction`) and
evaluating `variables` and `validations` (`message`, `messageExpression`,
`reason`) under `failurePolicy`. A policy the API server refuses when it is written is
refused (`vap_checks`: result types, mixed literals, regex literals, undeclared
variables, matchCondition names).

What an offline check cannot know it says: a policy that calls `authorizer`, a
namespaceSelector or `namespaceObject` whose Namespace is not in the change set,
a kind whose scope or plural is unknown (no CRD given) where it decides a match or the
outcome (such a kind is evaluated under each scope it may have), a parameter that is
nowhere to be found, an optional-typed variable read other than as
`variables.x` or `variables['x']` (the runtime's bindings cannot hold an
optional, so such a variable is bound with `cel.bind` where it is read). It
reads no files beyond those it is given and talks to no cluster.
`auditAnnotations` are compiled and evaluated: their values change no decision
(`review(annotations=...)` hands them out keyed as the API server's audit
event holds them), but an error in one goes to failurePolicy, as the API
server does (under Fail it denies whatever the binding's validationActions).
An UPDATE whose object as it is now is in another version cannot judge a
policy that reads `oldObject` (no conversions). `matchPolicy: Equivalent` is
not converted: an object whose group and resource a rule names
in another version only cannot be evaluated (the API server would convert it);
a namespaceSelector whose Namespace is not given fails closed.

The request is a CREATE of each checked object (`oldObject` null), or an
UPDATE when the caller gives the object as it is now (`review(old=...)`);
`request.userInfo` names nobody (empty username and groups), except at
admission (`serve`), where the request's own uid, userInfo, dryRun and options
are given, and its kind, resource and subresource (and their `request*` twins),
which decide the match as rules.Matcher does (`kubectl debug` is
pods/ephemeralcontainers; `kubectl scale` is apps deployments/scale, whatever
its object, a Scale, says; offline there is never a subresource, and
`PolicySet.offline_notes` says which rules are therefore not evaluated). Offline, the
object (and `oldObject`, the Namespaces and params) is what the API server's
validating admission would see: a built-in kind decoded and defaulted
(`trustgate.policy.k8s_defaults`), and an object with
`generateName` but no name reviewed under two generated names (a binding that
decides differently under them cannot be evaluated). At admission the API
server has done both; the request's objects are not defaulted again.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustgate import kinds
from trustgate.config import Limits
from trustgate.errors import PolicyError
from trustgate.kinds import resource_of
from trustgate.policy import cel, cel_cost, k8s_defaults, vap_checks
from trustgate.policy.gatekeeper import Selector, parse_selector, read_objects, string_list

__all__ = [
    "Binding",
    "Code",
    "Failure",
    "Outcome",
    "Policy",
    "PolicySet",
    "is_admission_policy",
    "load",
    "parse_binding",
    "parse_code",
    "parse_policy",
    "run_code",
]

_GROUP = "admissionregistration.k8s.io"
_VERSIONS = ("v1", "v1beta1")
_POLICY = "ValidatingAdmissionPolicy"
_BINDING = "ValidatingAdmissionPolicyBinding"
_ACTIONS = ("Deny", "Warn", "Audit")
_VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject", "variables", "authorizer")
# Offline, an object nested deeper than this is not evaluated (`unevaluable`, never a pass):
# the API server reads up to 10000 levels, but the CEL runtime crashes the process far below
# that, and decoding a custom resource by its schema recurses. Real objects stay far below.
MAX_DEPTH = 1000
_MAX_ANNOTATION_BYTES = 10 * 1024  # an audit annotation's value; the API server cuts it there
_ANNOTATION_KEY = re.compile(r"(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


def is_admission_policy(obj: Mapping[str, Any]) -> bool:
    """A ValidatingAdmissionPolicy or a binding of one."""
    api = obj.get("apiVersion")
    return (
        isinstance(api, str)
        and api.rpartition("/")[0] == _GROUP
        and api.rpartition("/")[2] in _VERSIONS
        and obj.get("kind") in (_POLICY, _BINDING)
    )


# -- the model -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    """One NamedRuleWithOperations."""

    groups: tuple[str, ...]
    versions: tuple[str, ...]
    resources: tuple[str, ...]
    operations: tuple[str, ...]
    scope: str
    names: tuple[str, ...]

    def matches(
        self,
        group: str,
        version: str,
        resource: str,
        namespaced: bool,
        name: str,
        operation: str = "CREATE",
        subresource: str = "",
        *,
        any_version: bool = False,
    ) -> bool:
        def any_of(values: tuple[str, ...], value: str) -> bool:
            return "*" in values or value in values

        if not (any_of(self.operations, operation) and any_of(self.groups, group)):
            return False
        if not any_version and not any_of(self.versions, version):
            return False
        if not any(_resource_matches(r, resource, subresource) for r in self.resources):
            return False
        if (self.scope == "Cluster" and namespaced) or (self.scope == "Namespaced" and not namespaced):
            return False
        return not self.names or name in self.names


def _resource_matches(pattern: str, resource: str, subresource: str = "") -> bool:
    """A rule's `resources` entry against a request for `resource` (and its `subresource`, "" for
    the resource itself), as k8s.io/apiserver's rules.Matcher (admission/plugin/webhook/predicates/
    rules, which admission/plugin/policy/matching uses): `res/sub` matches when res is `*` or the
    resource and sub is `*` or the request's subresource; an entry without `/` has sub "". So for
    the resource itself `pods`, `*`, `pods/*` and `*/*` match, `pods/status` and `*/scale` do not;
    for `pods/ephemeralcontainers` (`kubectl debug`, only at admission: a check never asks for a
    subresource) `pods/ephemeralcontainers`, `pods/*`, `*/*` and `*/ephemeralcontainers` match,
    `pods` and `*` do not."""
    res, _, sub = pattern.partition("/")
    return res in ("*", resource) and sub in ("*", subresource)


@dataclass(frozen=True, slots=True)
class _Match:
    """`matchConstraints` of a policy or `matchResources` of a binding."""

    rules: tuple[_Rule, ...] | None  # None: not constrained by resource (a binding without resourceRules)
    exclude: tuple[_Rule, ...] = ()
    namespace_selector: Selector | None = None  # None or empty: every namespace
    object_selector: Selector | None = None
    match_policy: str = "Equivalent"  # the API server's default


@dataclass(frozen=True, slots=True)
class Validation:
    """One entry of `spec.validations`."""

    index: int
    program: cel.Program
    message: str
    message_program: cel.Program | None
    reason: str  # "" when the policy gives none (the API server answers Invalid)


@dataclass(frozen=True, slots=True)
class Code:
    """The CEL of a policy: variables, matchConditions and validations, each compiled once."""

    conditions: tuple[tuple[str, cel.Program], ...]
    variables: tuple[tuple[str, cel.Program], ...]
    validations: tuple[Validation, ...]
    inlined: tuple[tuple[str, cel.Program], ...] = ()  # optional-valued variables, bound where read
    annotations: tuple[tuple[str, cel.Program], ...] = ()  # auditAnnotations: key, valueExpression
    # Why the code cannot be evaluated offline ("" when it can): an optional variable read in a
    # way that cannot be bound faithfully. Only `parse_code(unevaluable_ok=True)` makes such Code.
    unevaluable: str = ""
    # `reads`' answers: asked for every binding of every review, the same for the policy's life.
    _reads: dict[str, bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def uses_authorizer(self) -> bool:
        return self.reads("authorizer")

    def reads(self, variable: str) -> bool:
        """Whether any expression reads the top-level variable (from the checked AST)."""
        found = self._reads.get(variable)
        if found is None:
            found = self._reads[variable] = self._read(variable)
        return found

    def _read(self, variable: str) -> bool:
        programs = [p for _, p in self.variables] + [p for _, p in self.conditions]
        programs += [p for _, p in self.inlined] + [p for _, p in self.annotations]
        programs += [v.program for v in self.validations]
        programs += [v.message_program for v in self.validations if v.message_program is not None]
        return any(p.reads(variable) for p in programs)


@dataclass(frozen=True, slots=True)
class Failure:
    """A validation that did not pass: `violation`, `ignored` (an error under failurePolicy Ignore),
    or `unevaluable` (trustgate cannot give the value the API server has, under either policy).

    `rule` is the validation's reason or index, or `matchCondition`.
    """

    kind: str
    rule: str
    message: str
    reason: str = ""
    # A violation that denies whatever the binding's validationActions: an auditAnnotation's
    # error (the validating dispatcher adds AuditAnnotationActionError to its deniedDecisions).
    denies: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """A compiled ValidatingAdmissionPolicy."""

    name: str
    file: str
    line: int
    failure_policy: str  # Fail | Ignore
    param_kind: tuple[str, str] | None  # (apiVersion, kind)
    match: _Match
    code: Code
    authorizer: bool = False  # reads `authorizer`: no offline meaning

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class ParamRef:
    name: str = ""
    namespace: str = ""
    selector: Selector | None = None
    not_found: str = "Deny"  # parameterNotFoundAction: Allow | Deny


@dataclass(frozen=True, slots=True)
class Binding:
    """A ValidatingAdmissionPolicyBinding."""

    name: str
    file: str
    line: int
    policy: str
    actions: tuple[str, ...]
    param_ref: ParamRef | None = None
    match: _Match | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one binding of a policy made of one object.

    `kind`: `violation` (a validation is false, or failed under failurePolicy Fail),
    `ignored` (an error under failurePolicy Ignore, or a param not found with
    parameterNotFoundAction Allow, or a namespaceSelector that cannot be decided
    but the policy passes anyway), `unevaluable` (cannot be decided offline: this
    includes a namespaceSelector whose Namespace is not given when the policy
    would deny the object).
    """

    kind: str
    policy: Policy
    binding: Binding
    rule: str
    message: str
    reason: str = ""
    param: str = ""  # the param object's name, when the binding has params
    denies: bool = False  # a violation that denies whatever the validationActions (`Failure.denies`)

    @property
    def blocks(self) -> bool:
        """Whether the API server would refuse the request for it (a Deny, not a warning)."""
        return self.kind == "violation" and (self.denies or "Deny" in self.binding.actions)


class _Pool:
    """The objects params and Namespaces are looked up in, indexed by kind and by Namespace name."""

    __slots__ = ("by_kind", "namespaces")

    def __init__(
        self,
        objects: Sequence[Mapping[str, Any]],
        param_kinds: frozenset[tuple[str, str]] = frozenset(),
        decode: Callable[[Mapping[str, Any]], Mapping[str, Any]] = k8s_defaults.decoded,
    ) -> None:
        self.by_kind: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        self.namespaces: dict[str, Mapping[str, Any]] = {}
        for obj in objects:
            api_version, kind = obj.get("apiVersion"), obj.get("kind")
            if not isinstance(api_version, str) or not isinstance(kind, str):
                continue  # malformed (the API server refuses it): no param, no Namespace
            key = (api_version, kind)
            if (key in param_kinds or key == ("v1", "Namespace")) and not k8s_defaults.nested_deeper(
                obj, MAX_DEPTH
            ):
                # As the cluster stores them (a Namespace has its kubernetes.io/metadata.name
                # label); idempotent, so an object the API server already defaulted is unchanged.
                obj = decode(obj)
            self.by_kind.setdefault(key, []).append(obj)
            if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
                name = _mapping(obj.get("metadata")).get("name")
                if isinstance(name, str):
                    self.namespaces.setdefault(name, obj)  # the first, as a scan finds it


@dataclass
class PolicySet:
    """Policies, their bindings and the param objects given beside them."""

    policies: dict[str, Policy] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)
    params: list[Mapping[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # What a check of manifests (`check`, `presync`) does not evaluate: the subresources bound
    # policies name for CREATE and UPDATE (a manifest is the resource itself, never a subresource).
    offline_notes: list[str] = field(default_factory=list)
    documents: list[Mapping[str, Any]] = field(default_factory=list)  # everything read, for the revision
    # custom kinds from CRDs (`add_crd`): (group, kind) -> (plural, namespaced; None if unknown)
    crd_kinds: dict[tuple[str, str], tuple[str, bool | None]] = field(default_factory=dict)
    # custom kinds' structural schemas by (apiVersion, kind), for `decoded` (their defaults)
    crd_schemas: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    # The params and Namespaces of the last `objects` reviewed against, indexed: every object of
    # a change set is reviewed against the same `objects`, so they are indexed once, not per object.
    _indexed: tuple[Sequence[Mapping[str, Any]], int, _Pool] | None = field(
        default=None, repr=False, compare=False
    )

    def _pool(self, objects: Sequence[Mapping[str, Any]]) -> _Pool:
        cached = self._indexed
        if cached is not None and cached[0] is objects and cached[1] == len(objects):
            return cached[2]
        param_kinds = frozenset(p.param_kind for p in self.policies.values() if p.param_kind is not None)
        pool = _Pool([*self.params, *objects], param_kinds, self.decoded)
        self._indexed = (objects, len(objects), pool)  # holds `objects`, so its id is not reused
        return pool

    def add_crd(self, crd: Mapping[str, Any]) -> None:
        """Learn a custom kind's plural and scope from its CustomResourceDefinition (`--crd`).

        Without it, a custom kind's scope is unknown and its plural a guess: a binding whose
        match depends on them cannot be decided (see `review`).
        """
        found = kinds.crd_scope(crd)
        if found is not None:
            (group, kind), namespaced = found
            plural = _mapping(_mapping(crd.get("spec")).get("names")).get("plural")
            resource = plural if isinstance(plural, str) and plural else resource_of(kind)
            self.crd_kinds[(group, kind)] = (resource, namespaced)
            for version in _mapping(crd.get("spec")).get("versions") or []:
                schema = _mapping(_mapping(_mapping(version).get("schema")).get("openAPIV3Schema"))
                name = _mapping(version).get("name")
                if schema and isinstance(name, str):
                    self.crd_schemas[(f"{group}/{name}", kind)] = schema

    def decoded(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """`obj` as the API server holds it when validating admission runs: a built-in kind
        decoded and defaulted (`k8s_defaults.decoded`), a custom kind whose CRD was given with
        its non-nullable nulls pruned and its schema's defaults set (`schema.apply_defaults`, as
        apiextensions-apiserver decodes it); `obj` itself for any other."""
        api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
        schema = self.crd_schemas.get((api_version, kind))
        if schema is None or kinds.builtin_namespaced(api_version.rpartition("/")[0], kind) is not None:
            return k8s_defaults.decoded(obj)
        from trustgate.policy.schema import apply_defaults  # only where CRDs are given

        return apply_defaults(obj, schema, prune_nulls=True)

    def kind_of(self, group: str, kind: str) -> tuple[str, bool | None]:
        """The resource a kind is served as, and whether it is namespaced (None: unknown). A
        built-in kind is served by the API server's own handler, whatever a CRD says of it."""
        builtin = kinds.builtin_namespaced(group, kind)
        found = self.crd_kinds.get((group, kind))
        if found is not None and builtin is None:
            return found
        return resource_of(kind), builtin

    @property
    def needs_change_set(self) -> bool:
        """Whether a review can read other objects than the one reviewed: params, or the
        Namespaces a namespaceSelector or `namespaceObject` needs. When not, `objects` can be
        left out (a caller need not read the whole change set before the first review)."""
        for binding in self.bindings:
            policy = self.policies[binding.policy]
            if binding.param_ref is not None or policy.code.reads("namespaceObject"):
                return True
            for match in (policy.match, binding.match):
                selector = match.namespace_selector if match is not None else None
                if selector is not None and (selector.labels or selector.expressions):
                    return True
        return False

    def rules_for(self, operation: str) -> list[dict[str, Any]]:
        """The resource rules under which some bound policy can apply to `operation` (rules of its
        `matchConstraints` naming it or `*`), as ValidatingWebhookConfiguration rules for that
        operation alone: what a webhook must be sent for trustgate to run those policies on it.
        A superset of what the policies select (bindings, exclusions, selectors and resourceNames
        narrow it further, on the server), in the order the policies were read, without repeats."""
        bound = {b.policy for b in self.bindings}
        out: list[dict[str, Any]] = []
        for policy in self.policies.values():
            if policy.name not in bound:
                continue  # the API server does not enforce a policy without a binding
            for rule in policy.match.rules or ():
                if operation not in rule.operations and "*" not in rule.operations:
                    continue
                entry = {
                    "apiGroups": list(rule.groups),
                    "apiVersions": list(rule.versions),
                    "operations": [operation],
                    "resources": list(rule.resources),
                    "scope": rule.scope,
                }
                if entry not in out:
                    out.append(entry)
        return out

    def review(
        self,
        obj: Mapping[str, Any] | None,
        *,
        objects: Sequence[Mapping[str, Any]] = (),
        old: Mapping[str, Any] | None = None,
        annotations: dict[str, str] | None = None,
        admission: Mapping[str, Any] | None = None,
    ) -> list[Outcome]:
        """Every binding's outcome for one object created as it is (or, given `old`, updated; or,
        with `obj` None and `old` given, deleted).

        Offline (no `admission`), `obj` and `old` are first made what the API server's
        validating admission sees: a built-in kind decoded and defaulted
        (`k8s_defaults.decoded`), and an object with `generateName` and no name named. Its name
        is random, so it is reviewed under two names (`k8s_defaults.generated_names`); a binding
        that decides differently under them depends on the name and is `unevaluable`. At
        admission (`serve`) the API server has done both, and the objects are taken as given.

        Args:
            obj: the object (a manifest as written; at admission, the request's object); None: the
                request is a DELETE of `old` (`object` null, `oldObject` the object deleted, rules
                for DELETE match, an objectSelector selects by `old`'s labels, and the
                namespaceSelector of a Namespace's own deletion reads its labels), as the API
                server runs policies on a DELETE.
            objects: the rest of the change set: Namespaces for namespaceSelector and
                `namespaceObject`, and params (beside those read with the policies).
            old: the object as it is now (pre-sync: in the gated tree): the request is an
                UPDATE with `oldObject`, matched by rules for UPDATE, and an objectSelector
                matches when it selects either version, as in the API server.
            annotations: filled with the audit annotations the API server would add to the
                request's audit event, whatever the decision: `<policy>/<key>` to the value (a
                policy's bindings' distinct values joined with ", ", each cut at 10 KiB).
            admission: the admission request the object came in (`serve`): its uid, userInfo,
                dryRun and options are the `request`'s; offline, nobody asks.

        Returns:
            The outcomes that are not a pass.
        """
        if obj is None and old is None:
            raise ValueError("review needs the object, the object as it is (old), or both")
        if admission is None:
            problem = (_undecodable(obj) if obj is not None else "") or (
                _undecodable(old) if old is not None else ""
            )
            if not problem:
                try:
                    obj = self.decoded(obj) if obj is not None else None
                    old = self.decoded(old) if old is not None else None
                except RecursionError:  # a custom resource's schema defaults (recursive) on a deep value
                    problem = "it is nested too deeply to be decoded as the API server decodes it"
            if problem:
                return self._review(
                    obj, objects=objects, old=old, annotations=annotations, undecodable=problem
                )
            names = k8s_defaults.generated_names(obj) if old is None and obj is not None else None
            if names is not None:
                assert obj is not None
                return self._generated(obj, names, objects, annotations)
        return self._review(obj, objects=objects, old=old, annotations=annotations, admission=admission)

    def _generated(
        self,
        obj: Mapping[str, Any],
        names: tuple[str, str],
        objects: Sequence[Mapping[str, Any]],
        annotations: dict[str, str] | None,
    ) -> list[Outcome]:
        """Review an object the API server will name from its generateName, under two names; a
        binding whose outcomes differ between them cannot be decided offline."""
        runs: list[tuple[list[Outcome], dict[str, str]]] = []
        for name in names:
            # Decoded again: a Namespace's kubernetes.io/metadata.name label follows its name.
            named = self.decoded({**obj, "metadata": {**_mapping(obj.get("metadata")), "name": name}})
            published: dict[str, str] = {}
            runs.append((self._review(named, objects=objects, old=None, annotations=published), published))
        (first, published), (second, _) = runs

        def by_binding(found: list[Outcome]) -> dict[tuple[str, str], list[Outcome]]:
            out: dict[tuple[str, str], list[Outcome]] = {}
            for outcome in found:
                out.setdefault((outcome.policy.name, outcome.binding.name), []).append(outcome)
            return out

        def decision(found: list[Outcome]) -> list[tuple[str, str, str]]:
            return sorted((o.kind, o.rule, o.param) for o in found)

        ones, others = by_binding(first), by_binding(second)
        out: list[Outcome] = []
        for key in dict.fromkeys([*ones, *others]):
            one, other = ones.get(key, []), others.get(key, [])
            if decision(one) == decision(other):
                out.extend(one)
                continue
            policy, binding = (one or other)[0].policy, (one or other)[0].binding
            generate = _mapping(obj.get("metadata")).get("generateName")
            out.append(
                Outcome(
                    "unevaluable",
                    policy,
                    binding,
                    f"{policy.name}/generateName",
                    f"ValidatingAdmissionPolicy {policy.name} (binding {binding.name}) decides differently "
                    f"depending on the name the API server generates from generateName {generate!r} "
                    f"(tried {names[0]!r} and {names[1]!r}), which a check cannot know",
                )
            )
        if annotations is not None:
            annotations.update(published)  # the first name's, as a placeholder
        return out

    def _review(
        self,
        obj: Mapping[str, Any] | None,
        *,
        objects: Sequence[Mapping[str, Any]],
        old: Mapping[str, Any] | None,
        annotations: dict[str, str] | None,
        admission: Mapping[str, Any] | None = None,
        undecodable: str = "",
    ) -> list[Outcome]:
        """`review` of an object as validating admission sees it (decoded, defaulted, named).

        With `undecodable` (why `obj` could not be made that object), every binding that
        applies to it is `unevaluable`, never a pass.
        """
        out: list[Outcome] = []
        # A DELETE (`obj` None) names the object it deletes: `old`, what the API server matches on.
        subject = obj if obj is not None else old
        assert subject is not None
        meta = _mapping(subject.get("metadata"))
        kind = str(subject.get("kind", ""))
        api_version = str(subject.get("apiVersion", ""))
        group, _, version = api_version.rpartition("/")
        resource, scope = self.kind_of(group, kind)
        namespace = str(meta.get("namespace") or "")
        if admission is not None and (group, kind) == ("", "Namespace"):
            # A Namespace's request names itself as its namespace when its URL does (a DELETE or
            # UPDATE of /api/v1/namespaces/<name>), and none on CREATE; its metadata holds none.
            given_namespace = admission.get("namespace")
            namespace = given_namespace if isinstance(given_namespace, str) else namespace
        name = str(meta.get("name") or "")
        pool = self._pool(objects)
        operation = "DELETE" if obj is None else "CREATE" if old is None else "UPDATE"
        if (
            admission is not None
            and admission.get("operation") == "CONNECT"
            and obj is not None
            and old is None
        ):
            # `kubectl exec` and the like: the object is the request's options (PodExecOptions), which
            # name no object; the request names it, and its scope is whether it has a namespace.
            operation = "CONNECT"
            given_name, given_namespace = admission.get("name"), admission.get("namespace")
            name = given_name if isinstance(given_name, str) else name
            namespace = given_namespace if isinstance(given_namespace, str) else namespace
            scope = bool(namespace)
        # Offline there is never a subresource; at admission, the request's (`kubectl debug`
        # sends pods/ephemeralcontainers with the Pod as its object).
        subresource = _admission_subresource(admission)
        if admission is not None:
            given_resource = _gvr(admission.get("resource"), "resource")
            if given_resource is not None and given_resource[:2] == (group, version):
                resource = given_resource[2]  # the API server's own plural, not a guess
            elif given_resource is not None and subresource:
                # A subresource whose object is of another kind (`kubectl scale`: an autoscaling/v1
                # Scale of apps/v1 deployments/scale): rules match the request's resource, as
                # rules.Matcher does, and its scope is whether the request names a namespace.
                group, version, resource = given_resource
                given_name, given_namespace = admission.get("name"), admission.get("namespace")
                name = given_name if isinstance(given_name, str) else name
                namespace = given_namespace if isinstance(given_namespace, str) else namespace
                scope = bool(namespace)
        request: dict[str, Any] = {
            "uid": "",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": name,
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "", "uid": "", "groups": [], "extra": {}},  # nobody: offline
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        }
        if old is not None:
            kind_of_options = "DeleteOptions" if obj is None else "UpdateOptions"
            request["options"] = {"apiVersion": "meta.k8s.io/v1", "kind": kind_of_options}
        if operation == "CONNECT":
            request["options"] = None  # the API server sends none: the options are the object
        if admission is not None:  # who asked, and for what, as the API server sent it
            given: tuple[tuple[str, type], ...] = (
                ("uid", str),
                ("userInfo", Mapping),
                ("dryRun", bool),
                ("options", Mapping),
            )
            for key, expected in given:
                if isinstance(admission.get(key), expected):
                    request[key] = admission[key]
            # kind/resource/subResource and their request* twins (the API server's
            # admission/plugin/webhook/request CreateAdmissionRequest): what was asked, which for
            # a subresource is not what the object alone says (`pods/ephemeralcontainers`).
            for key, part in (("kind", "kind"), ("requestKind", "kind")):
                if _gvr(admission.get(key), part) is not None:
                    request[key] = dict(admission[key])
            for key in ("resource", "requestResource"):
                if _gvr(admission.get(key), "resource") is not None:
                    request[key] = dict(admission[key])
            if subresource:
                request["subResource"] = subresource
            requested_sub = admission.get("requestSubResource")
            if isinstance(requested_sub, str) and requested_sub:
                request["requestSubResource"] = requested_sub
            elif subresource and "requestSubResource" not in admission:
                request["requestSubResource"] = subresource
        # What the request looks like under each scope the kind may have: one when it is known.
        # An unknown kind is namespaced when it names a namespace, else cluster-scoped, first.
        scenarios: list[_Scenario] = []
        for namespaced in (True, False) if scope is None else (scope,):
            ns = namespace if namespaced or (group, kind) == ("", "Namespace") else ""
            seen = subject
            if not namespaced and (group, kind) != ("", "Namespace") and "namespace" in meta:
                # The API server's request namespace comes from the URL, which has none for a
                # cluster-scoped resource, and it clears the object's (create.go:
                # EnsureObjectNamespaceMatchesRequestNamespace) before admission.
                seen = {**subject, "metadata": {k: v for k, v in meta.items() if k != "namespace"}}
            scenarios.append(
                _Scenario(
                    (group, version, resource, namespaced, name, operation, subresource),
                    ns,
                    pool.namespaces.get(ns) if ns and namespaced else None,
                    {**request, "namespace": ns},
                    seen if obj is not None else None,
                    old if obj is not None else seen,
                )
            )
        if scope is None and not namespace:
            scenarios.reverse()
        shared: dict[int, dict[str, cel.Bindings]] = {}  # one conversion of the object per scenario
        collected: dict[str, list[str]] | None = {} if annotations is not None else None
        for binding in self.bindings:
            policy = self.policies[binding.policy]
            results = []
            for scenario in scenarios:
                # An unknown kind's plural is a guess: any other name the rules give could be its own.
                for guess in _candidates(policy, binding, resource) if scope is None else (resource,):
                    results.append(
                        (scenario, guess, _binding_matches(policy, binding, obj, old, scenario, guess))
                    )
            # Every scope under which the binding applies is evaluated: the API server clears a
            # cluster-scoped object's namespace, so `request.namespace`, `namespaceObject` and
            # the object itself differ, and so can the decision.
            per_scope: list[tuple[_Scenario, list[Outcome]]] = []
            for scenario in scenarios:
                first = next((m for sc, _, m in results if sc is scenario and m[0]), None)
                if first is None:
                    continue
                if first[1]:  # under matchPolicy Equivalent, only after a conversion
                    versions = sorted(set(first[1]))
                    per_scope.append(
                        (scenario, [_needs_conversion(policy, binding, group, version, versions)])
                    )
                elif undecodable:
                    why = f"ValidatingAdmissionPolicy {policy.name} ({policy.where}) cannot be evaluated: "
                    rule = f"{policy.name}/object"
                    unevaluable = Outcome("unevaluable", policy, binding, rule, why + undecodable)
                    per_scope.append((scenario, [unevaluable]))
                else:
                    # Audit annotations from the first scope only, as before a second was run.
                    annotated = collected if not per_scope else None
                    found = self._scenario(policy, binding, scenario.old, scenario, pool, shared, annotated)
                    per_scope.append((scenario, found))
            if not per_scope:
                continue
            scenario, found = per_scope[0]
            namespaced = scenario.where[3]
            match_differs = any(m[0] != results[0][2][0] for _, _, m in results)
            if len({_decision(f) for _, f in per_scope}) > 1:
                why = (
                    f"{policy.name} (binding {binding.name}) decides {kind} ({api_version}) differently "
                    "as a namespaced and as a cluster-scoped kind, and its scope is unknown to trustgate"
                )
                if match_differs:
                    why += " (so is its resource name, which decides whether the policy applies)"
                merged: dict[tuple[str, str, str], Outcome] = {}
                hint = "give its CustomResourceDefinition with --crd"
                for scenario, found in per_scope:
                    if not found:
                        continue  # a pass under this scope: the other's outcomes carry the caveat
                    condition = "if it is namespaced" if scenario.where[3] else "if it is cluster-scoped"
                    for outcome in _undecided(
                        policy, binding, why, found, rule="scope", condition=condition, hint=hint
                    ):
                        merged.setdefault((outcome.kind, outcome.rule, outcome.param), outcome)
                found = list(merged.values())
            elif match_differs:
                why = (
                    f"whether {policy.name} (binding {binding.name}) applies to {kind} ({api_version}) could "
                    f"not be decided: its scope and resource name are unknown to trustgate (it guesses "
                    f"{resource!r}, {'namespaced' if namespaced else 'cluster-scoped'})"
                )
                found = _undecided(
                    policy,
                    binding,
                    why,
                    found,
                    rule="match",
                    condition="if it applies",
                    hint="give its CustomResourceDefinition with --crd",
                )
            out.extend(found)
        if annotations is not None and collected:
            # The API server's auditAnnotationCollector.publish (admission/plugin/policy/validating).
            annotations.update({key: ", ".join(values) for key, values in collected.items()})
        return out

    def _scenario(
        self,
        policy: Policy,
        binding: Binding,
        old: Mapping[str, Any] | None,
        scenario: _Scenario,
        pool: _Pool,
        shared: dict[int, dict[str, cel.Bindings]],
        collected: dict[str, list[str]] | None,
    ) -> list[Outcome]:
        """The outcomes of a binding that applies to the request under one scope (`scenario`)."""
        where = scenario.where
        found = self._binding(
            policy,
            binding,
            scenario.obj,
            old,
            scenario.request,
            pool,
            scenario.namespace,
            scenario.namespace_obj,
            shared.setdefault(id(scenario), {}),
            collected,
            namespaced=where[3],
        )
        if where[3] and scenario.namespace and scenario.namespace_obj is None:
            selectors = [policy.match.namespace_selector]
            selectors += [binding.match.namespace_selector] if binding.match is not None else []
            if any(s is not None and (s.labels or s.expressions) for s in selectors):
                why = _namespace_unknown(policy, binding, scenario.namespace)
                hint = (
                    f"list Namespace {scenario.namespace!r} in the admission policy files "
                    "(--admission-policy, manifests.admissionPolicies) or give it in the change set"
                )
                if policy.failure_policy == "Ignore":
                    # The API server reads the Namespace's labels from its informer; trustgate
                    # cannot look it up. An error in matching goes to the policy's failurePolicy
                    # (validating dispatcher: addConfigError), so under Ignore the policy does
                    # not apply. Under Fail it stays fail-closed (`_undecided`).
                    return [
                        Outcome(
                            "ignored",
                            policy,
                            binding,
                            f"{policy.name}/namespaceSelector",
                            f"{why}; failurePolicy Ignore: the policy is not applied ({hint})",
                        )
                    ]
                found = _undecided(
                    policy,
                    binding,
                    why,
                    found,
                    rule="namespaceSelector",
                    condition="if it selects the Namespace",
                    hint=hint,
                )
        return found

    def _binding(
        self,
        policy: Policy,
        binding: Binding,
        obj: Mapping[str, Any] | None,
        old: Mapping[str, Any] | None,
        request: Mapping[str, Any],
        pool: _Pool,
        namespace: str,
        namespace_obj: Mapping[str, Any] | None,
        shared: dict[str, cel.Bindings],
        collected: dict[str, list[str]] | None = None,
        *,
        namespaced: bool = True,
    ) -> list[Outcome]:
        """The outcomes of one binding that matches `obj`.

        `shared` keeps the Bindings that every policy without variables or params evaluates
        the object with: their activations are equal, so the object is converted once.
        """
        blocked = self._unevaluable(policy, binding, obj, old, namespace, namespace_obj, namespaced)
        if blocked is not None and not _gates(policy.code, blocked[1]):
            return [blocked[0]]
        params: list[Mapping[str, Any] | None] = [None]
        if binding.param_ref is not None and policy.param_kind is not None:
            candidates = pool.by_kind.get(policy.param_kind, [])
            params = list(_find_params(candidates, policy.param_kind, binding.param_ref, namespace))
            if not params:
                ref = binding.param_ref
                what = f"{policy.param_kind[1]} " + (
                    repr(ref.name) if ref.name else "objects matching the paramRef selector"
                )
                if ref.not_found == "Allow":
                    return [
                        Outcome(
                            "ignored",
                            policy,
                            binding,
                            f"{policy.name}/params",
                            f"no {what} found for binding {binding.name}; "
                            "parameterNotFoundAction is Allow, so the policy is skipped",
                        )
                    ]
                return [
                    Outcome(
                        "unevaluable",
                        policy,
                        binding,
                        f"{policy.name}/params",
                        f"no {what} ({policy.param_kind[0]}) found for binding {binding.name} "
                        "in the change set or the admission policy files; the API server denies "
                        "the request (parameterNotFoundAction: Deny) unless the cluster has it",
                    )
                ]
        out: list[Outcome] = []
        for param in params:
            activation = {
                "object": obj,
                "oldObject": old,
                "request": request,
                "params": param,
                "namespaceObject": namespace_obj,
                "authorizer": None,
            }
            if blocked is not None:
                # As the API server (validating validator.Validate): matchConditions first; only
                # a policy they let apply reaches the validations trustgate cannot evaluate.
                gate = match_conditions(policy.code, activation, failure_policy=policy.failure_policy)
                if gate is None:
                    if blocked[0] not in out:
                        out.append(blocked[0])
                    continue
                param_name = str(_mapping(param.get("metadata") if param else None).get("name") or "")
                out.extend(
                    Outcome(
                        f.kind, policy, binding, f"{policy.name}/{f.rule}", f.message, f.reason, param_name
                    )
                    for f in gate
                )
                continue
            bindings = None
            if param is None and not policy.code.variables:
                bindings = shared.get("")
                if bindings is None:
                    bindings = shared[""] = cel.Bindings(dict(activation, variables={}))
            out.extend(_evaluate(policy, binding, activation, param, bindings, collected))
        return out

    @staticmethod
    def _unevaluable(
        policy: Policy,
        binding: Binding,
        obj: Mapping[str, Any] | None,
        old: Mapping[str, Any] | None,
        namespace: str,
        namespace_obj: Mapping[str, Any] | None,
        namespaced: bool,
    ) -> tuple[Outcome, frozenset[str]] | None:
        """Why the policy's code cannot be evaluated here, if it cannot: the outcome, and the
        top-level variables trustgate cannot give (what its matchConditions must not read to be
        evaluated first, see `_gates`)."""
        # Never given: `authorizer` asks the cluster; `variables` may read what cannot be given.
        missing = {"authorizer", "variables"}
        if namespaced and namespace_obj is None:
            missing.add("namespaceObject")
        converted = old is not None and obj is not None and old.get("apiVersion") != obj.get("apiVersion")
        if converted:
            missing.add("oldObject")
        why = ""
        rule = ""
        if policy.authorizer:
            rule = "authorizer"
            why = (
                f"ValidatingAdmissionPolicy {policy.name} ({policy.where}) calls `authorizer`, which "
                "asks the cluster's authorizers: it cannot be evaluated offline"
            )
        elif policy.code.unevaluable:
            rule = "variables"
            why = f"ValidatingAdmissionPolicy {policy.name} ({policy.where}): {policy.code.unevaluable}"
        elif "namespaceObject" in missing and policy.code.reads("namespaceObject"):
            # The API server reads the request's Namespace for every namespaced request
            # (validating dispatcher: GetNamespace), so namespaceObject is never null there.
            which = f"Namespace {namespace!r}" if namespace else "the Namespace (the object names none)"
            rule = "namespaceObject"
            why = (
                f"ValidatingAdmissionPolicy {policy.name} ({policy.where}) reads `namespaceObject`, "
                f"which the API server always has for a namespaced request; {which} is not in the "
                "change set or the admission policy files, so it cannot be evaluated"
            )
        elif converted and policy.code.reads("oldObject"):
            assert old is not None and obj is not None
            # The API server converts the stored object to the request's version; trustgate has
            # no conversions, so `oldObject` would be in the wrong shape: not a pass, not a deny.
            rule = "oldObject"
            why = (
                f"ValidatingAdmissionPolicy {policy.name} ({policy.where}) reads `oldObject`, which "
                f"the API server converts to {obj.get('apiVersion')}; the object as it is now is "
                f"{old.get('apiVersion')} and trustgate has no conversions, so it cannot be evaluated"
            )
        if not why:
            return None
        return Outcome("unevaluable", policy, binding, f"{policy.name}/{rule}", why), frozenset(missing)


def _namespace_unknown(policy: Policy, binding: Binding, namespace: str) -> str:
    return (
        f"the namespaceSelector of {policy.name} (binding {binding.name}) could not be decided: "
        f"Namespace {namespace!r} is not in the change set or the admission policy files"
    )


def _undecided(
    policy: Policy,
    binding: Binding,
    why: str,
    found: list[Outcome],
    *,
    rule: str,
    condition: str,
    hint: str,
) -> list[Outcome]:
    """Fail closed when whether the binding applies cannot be decided (`why`): a
    namespaceSelector whose Namespace was not given, or a kind of unknown scope or plural.

    The policy was evaluated as if it applied (`condition`). What would block becomes
    `unevaluable` (could not evaluate, not a pass); what would warn or record keeps its
    kind with the caveat; nothing at all becomes one `ignored` note (rule `<policy>/<rule>`).
    """
    if not found:
        return [
            Outcome(
                "ignored", policy, binding, f"{policy.name}/{rule}", f"{why}; the policy passes either way"
            )
        ]
    out = []
    for outcome in found:
        blocks = outcome.kind == "unevaluable" or outcome.blocks
        kind = "unevaluable" if blocks else outcome.kind
        message = (
            f"{why}, and {condition} the policy denies: {outcome.message} ({hint})"
            if blocks
            else f"{outcome.message} ({condition}: {why})"
        )
        out.append(
            Outcome(
                kind, policy, binding, outcome.rule, message, outcome.reason, outcome.param, outcome.denies
            )
        )
    return out


# -- evaluating ----------------------------------------------------------------


def _evaluate(
    policy: Policy,
    binding: Binding,
    activation: dict[str, Any],
    param: Mapping[str, Any] | None,
    bindings: cel.Bindings | None,
    collected: dict[str, list[str]] | None = None,
) -> list[Outcome]:
    param_name = str(_mapping(param.get("metadata") if param else None).get("name") or "")
    values: dict[str, str] | None = {} if collected is not None and policy.code.annotations else None
    failures = run_code(
        policy.code, activation, failure_policy=policy.failure_policy, annotations=values, bindings=bindings
    )
    for key, value in (values or {}).items():
        # As the API server's dispatcher: a value is cut at 10 KiB (maxAuditAnnotationValueLength),
        # and a value another binding of the policy already gave is not repeated.
        cut = value.encode("utf-8")[:_MAX_ANNOTATION_BYTES].decode("utf-8", "ignore")
        assert collected is not None
        seen = collected.setdefault(f"{policy.name}/{key}", [])
        if cut not in seen:
            seen.append(cut)
    return [
        Outcome(f.kind, policy, binding, f"{policy.name}/{f.rule}", f.message, f.reason, param_name, f.denies)
        for f in failures
    ]


def _gates(code: Code, missing: frozenset[str]) -> bool:
    """Whether the code's matchConditions can be evaluated without the variables trustgate
    cannot give (`missing`), to decide whether the policy applies before saying its validations
    cannot be evaluated."""
    return bool(code.conditions) and not any(
        program.reads(name) for _, program in code.conditions for name in missing
    )


def match_conditions(
    code: Code, activation: Mapping[str, Any], *, failure_policy: str = "Fail"
) -> list[Failure] | None:
    """Evaluate only the matchConditions, which read no `variables`: None when the policy applies
    (all true), [] when it does not (one false), else the first error under `failure_policy`.

    The API server's matchconditions Matcher.Match: any false skips the policy, whatever errors
    the others raised; only when none is false does the first error go to failurePolicy.
    """
    bound = cel.Bindings(dict(activation, variables={}))
    error: Failure | None = None
    for name, program in code.conditions:
        try:
            value = program.evaluate(bound)
        except cel.CelEvalError as e:
            if error is None:
                message = f"matchCondition {name!r} failed: {e}"
                if isinstance(e, cel.CelUnevaluableError):
                    error = Failure("unevaluable", "matchCondition", message)
                elif failure_policy == "Fail":
                    error = Failure("violation", "matchCondition", message)
                else:
                    error = Failure(
                        "ignored", "matchCondition", message + " (failurePolicy Ignore: not enforced)"
                    )
            continue
        if value is False:
            return []
        if value is not True and error is None:
            message = f"matchCondition {name!r} returned {value!r}"
            kind = "violation" if failure_policy == "Fail" else "ignored"
            suffix = "" if failure_policy == "Fail" else " (failurePolicy Ignore: not enforced)"
            error = Failure(kind, "matchCondition", message + suffix)
    return None if error is None else [error]


def run_code(
    code: Code,
    activation: dict[str, Any],
    *,
    failure_policy: str = "Fail",
    variables: Mapping[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    bindings: cel.Bindings | None = None,
) -> list[Failure]:
    """Evaluate variables, then matchConditions (any false: nothing applies), then validations
    and auditAnnotations.

    Args:
        code: the compiled CEL.
        activation: the top-level variables; `variables` is set here.
        failure_policy: `Fail` makes an evaluation error a violation, `Ignore` an ignored failure.
        variables: entries of `variables` given before the code's own (Gatekeeper's `params`).
        annotations: filled with the audit annotations' values (key: value; a null value is
            left out), as the API server records them in the audit event.
        bindings: the same activation, already converted (with `variables` empty), shared with
            other code; used when this code has no variables and none are given.

    Returns:
        The validations that did not pass, in order.

    Raises:
        PolicyError: the code cannot be evaluated offline (`code.unevaluable`); the caller
            should have reported that instead of running it.
    """
    if code.unevaluable:
        raise PolicyError(code.unevaluable)

    unevaluable: set[str] = set()  # variables whose value trustgate cannot give

    def failure(
        rule: str, message: str, error: cel.CelEvalError | None = None, *, denies: bool = False
    ) -> Failure:
        # What trustgate cannot evaluate as the API server does is no evaluation error: the API
        # server has a value there, so neither failurePolicy applies.
        if isinstance(error, cel.CelUnevaluableError) or (
            error is not None and _culprit(error, broken) in unevaluable
        ):
            return Failure("unevaluable", rule, message)
        if failure_policy == "Fail":
            return Failure("violation", rule, message, denies=denies)
        return Failure("ignored", rule, message + " (failurePolicy Ignore: not enforced)")

    values: dict[str, Any] = dict(variables or {})
    broken: dict[str, str] = {}
    activation["variables"] = values
    # One conversion of the input for all the expressions (cel.Bindings). The runtime keeps a
    # map it converted, so a variable that reads `variables` gets Bindings made after the
    # variables before it were added.
    if bindings is not None and not code.variables and not values:
        bound = bindings
    else:
        bound = cel.Bindings(dict(activation, variables=dict(values)))
    fresh = True
    for name, program in code.variables:
        if not fresh and "variables" in program.source:
            bound = cel.Bindings(dict(activation, variables=dict(values)))
        try:
            values[name] = program.evaluate(bound, bindable=True)
            fresh = False
        except cel.CelEvalError as e:
            broken[name] = str(e)
            if isinstance(e, cel.CelUnevaluableError) or _culprit(e, broken) in unevaluable:
                unevaluable.add(name)
    if code.variables:
        bound = cel.Bindings(activation)
    # As the API server: any condition false skips the policy, whatever errors the others
    # raised; only when none is false does the first error go to failurePolicy.
    error: Failure | None = None
    for name, program in code.conditions:
        try:
            value = program.evaluate(bound)
        except cel.CelEvalError as e:
            error = error or failure(
                "matchCondition", f"matchCondition {name!r} failed: {_why(e, broken)}", e
            )
            continue
        if value is False:
            return []
        if value is not True:
            error = error or failure("matchCondition", f"matchCondition {name!r} returned {value!r}")
    if error is not None:
        return [error]
    out: list[Failure] = []
    for validation in code.validations:
        rule = validation.reason or str(validation.index)
        source = validation.program.source
        try:
            value = validation.program.evaluate(bound)
        except cel.CelEvalError as e:
            out.append(failure(rule, f"expression '{source}' resulted in error: {_why(e, broken)}", e))
            continue
        if value is True:
            continue
        if value is not False:
            out.append(failure(rule, f"expression '{source}' returned {value!r}, not a bool"))
            continue
        out.append(Failure("violation", rule, _message(validation, bound), validation.reason or "Invalid"))
    # An audit annotation changes no decision, but an error in it goes to failurePolicy: under
    # Fail the request is denied whatever the binding's validationActions (the validating
    # dispatcher adds AuditAnnotationActionError to deniedDecisions: "When failurePolicy=fail,
    # audit annotation errors result in deny"); under Ignore it is left out.
    for key, program in code.annotations:
        rule = f"auditAnnotations/{key}"
        try:
            value = program.evaluate(bound)
        except cel.CelEvalError as e:
            out.append(failure(rule, f"auditAnnotation {key!r}: valueExpression '{program.source}' "
                               f"resulted in error: {_why(e, broken)}", e, denies=True))  # fmt: skip
            continue
        if value is not None and not isinstance(value, str):
            # validator.Validate: AuditAnnotationActionError under either failurePolicy.
            out.append(Failure("violation", rule, f"auditAnnotation {key!r}: valueExpression "
                               f"'{program.source}' resulted in unsupported return type: "
                               f"{_type_name(value)}. Return type must be either string or null.",
                               denies=True))  # fmt: skip
            continue
        # validator.Validate trims a value; an empty one is left out, as null is.
        value = _trim_space(value) if value is not None else ""
        if value and annotations is not None:
            annotations[key] = value
    return out


# Go's unicode.IsSpace, which strings.TrimSpace trims (Python's str.strip also trims \x1c-\x1f).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_GO_SPACE += "\u2028\u2029\u202f\u205f\u3000"
_MAX_MESSAGE_BYTES = 5 * 1024  # celconfig.MaxEvaluatedMessageExpressionSizeBytes


def _type_name(value: Any) -> str:
    """The CEL type of a non-string, non-null value, as the API server prints it."""
    names: tuple[tuple[type, str], ...] = ((bool, "bool"), (int, "int"), (float, "double"), (bytes, "bytes"))
    names += ((list, "list"), (Mapping, "map"))
    return next((name for kind, name in names if isinstance(value, kind)), type(value).__name__)


def _trim_space(text: str) -> str:
    """Go's strings.TrimSpace."""
    return text.strip(_GO_SPACE)


def _message(validation: Validation, bound: cel.Bindings) -> str:
    """A failed validation's message, as validator.Validate decides it: the messageExpression's
    string, trimmed, unless it failed, is empty, longer than 5 KiB or holds a line break; else
    the static message, trimmed; else `failed expression: ` and the expression, trimmed."""
    message = ""
    if validation.message_program is not None:
        try:
            text = validation.message_program.evaluate(bound)
        except cel.CelEvalError:
            text = None  # as the API server: the static message (or the default) stands
        if isinstance(text, str):
            message = _trim_space(text)
            if len(message.encode("utf-8", "surrogatepass")) > _MAX_MESSAGE_BYTES or "\n" in message:
                message = ""
    if not message and validation.message:
        message = _trim_space(validation.message)
    return message or f"failed expression: {_trim_space(validation.program.source)}"


def _why(error: cel.CelEvalError, broken: Mapping[str, str]) -> str:
    name = _culprit(error, broken)
    return f"variable {name!r} failed: {broken[name]}" if name is not None else str(error)


def _culprit(error: cel.CelEvalError, broken: Mapping[str, str]) -> str | None:
    """The failed variable an expression's error names (reading it fails), if any."""
    text = str(error)
    return next((name for name in broken if f'"{name}"' in text or f"'{name}'" in text), None)


@dataclass(frozen=True, slots=True)
class _Scenario:
    """The request for one object under one assumption about its kind's scope."""

    # group, version, resource, namespaced, name, operation, subresource ("" but at admission)
    where: tuple[str, str, str, bool, str, str, str]
    namespace: str
    namespace_obj: Mapping[str, Any] | None
    request: Mapping[str, Any]
    # as admission sees it: a cluster-scoped object's namespace cleared; None for a DELETE
    obj: Mapping[str, Any] | None
    old: Mapping[str, Any] | None = None  # `oldObject` (for a DELETE, the object deleted, cleared so)


def _admission_subresource(admission: Mapping[str, Any] | None) -> str:
    """The subresource an admission request is for ("": the resource itself; always offline)."""
    sub = admission.get("subResource") if admission is not None else None
    return sub if isinstance(sub, str) else ""


def _gvr(value: Any, part: str) -> tuple[str, str, str] | None:
    """(group, version, `part`) of a GroupVersionKind/Resource mapping, None when malformed."""
    if not isinstance(value, Mapping):
        return None
    group, version, name = value.get("group", ""), value.get("version"), value.get(part)
    if not (isinstance(group, str) and isinstance(version, str) and isinstance(name, str) and name):
        return None
    return group, version, name


def _decision(found: Sequence[Outcome]) -> frozenset[tuple[str, str, str]]:
    """What outcomes decide (kind, rule and param of each), not how their messages read."""
    return frozenset((o.kind, o.rule, o.param) for o in found)


_FRESH = "\x00"  # a resource name no rule gives: what an unknown kind's plural may be, if not the guess


def _candidates(policy: Policy, binding: Binding, guess: str) -> list[str]:
    """The resource names that can decide whether rules match a kind whose plural is a guess:
    the guess, any name the rules give, and one they do not."""
    names = {guess, _FRESH}
    for match in (policy.match, binding.match):
        if match is not None:
            for r in (*(match.rules or ()), *match.exclude):
                names.update(n.partition("/")[0] for n in r.resources)
    names.discard("*")
    return [guess, *sorted(names - {guess})]


def _binding_matches(
    policy: Policy,
    binding: Binding,
    obj: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    scenario: _Scenario,
    resource: str,
) -> tuple[bool, list[str]]:
    """Whether the policy's and the binding's match criteria select the request, and (under
    matchPolicy Equivalent) the versions it would have to be converted to first."""
    where = (*scenario.where[:2], resource, *scenario.where[3:])
    versions: list[str] = []
    for match in (policy.match, binding.match):
        if match is None or _matches(match, obj, old, where, scenario.namespace, scenario.namespace_obj):
            continue
        if match.match_policy == "Equivalent" and _matches(
            match, obj, old, where, scenario.namespace, scenario.namespace_obj, any_version=True
        ):
            versions += _other_versions(match, where)
            continue
        return False, []
    return True, versions


def _other_versions(match: _Match, where: tuple[str, str, str, bool, str, str, str]) -> list[str]:
    rules = [r for r in match.rules or () if r.matches(*where, any_version=True)]
    return sorted({v for r in rules for v in r.versions})


def _needs_conversion(
    policy: Policy, binding: Binding, group: str, version: str, versions: list[str]
) -> Outcome:
    """An object whose group and resource a rule names in other versions only, under Equivalent.

    The API server would convert it to one of those versions and evaluate the policy on
    that; without the conversion there is no honest answer, so: could not evaluate.
    """
    prefix = f"{group}/" if group else ""
    targets = " or ".join(f"{prefix}{v}" for v in versions)
    return Outcome(
        "unevaluable",
        policy,
        binding,
        f"{policy.name}/matchPolicy",
        f"could not evaluate: matchPolicy Equivalent needs conversion from {prefix}{version} to {targets} "
        f"(ValidatingAdmissionPolicy {policy.name}, binding {binding.name}); give the object as "
        f"{targets}, or set matchPolicy: Exact if the policy is not meant for {prefix}{version}",
    )


def _matches(
    match: _Match,
    obj: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    where: tuple[str, str, str, bool, str, str, str],
    namespace: str,
    namespace_obj: Mapping[str, Any] | None,
    *,
    any_version: bool = False,
) -> bool:
    if match.rules is not None and not any(r.matches(*where, any_version=any_version) for r in match.rules):
        return False
    if any(r.matches(*where) for r in match.exclude):
        return False
    # The API server's matchObject: an object that is not there (a DELETE's), or one without object
    # metadata (a CONNECT's options), selects nothing.
    labels = (
        _mapping(_mapping(obj.get("metadata")).get("labels"))
        if obj is not None and where[5] != "CONNECT"
        else None
    )
    if match.object_selector is not None and (labels is None or not match.object_selector.matches(labels)):
        old_labels = _mapping(_mapping(old.get("metadata")).get("labels")) if old is not None else None
        if old_labels is None or not match.object_selector.matches(old_labels):
            return False
    selector = match.namespace_selector
    if selector is None or not (selector.labels or selector.expressions):
        return True
    subject = obj if obj is not None else old
    if subject is not None and subject.get("kind") == "Namespace" and subject.get("apiVersion") == "v1":
        # A Namespace's own CREATE or UPDATE is matched by its new labels; its DELETE by the
        # Namespace as the API server's lister has it (namespace Matcher.GetNamespaceLabels):
        # the object being deleted, `old`.
        return selector.matches(
            labels if labels is not None else _mapping(_mapping(subject.get("metadata")).get("labels"))
        )
    if not namespace:  # cluster-scoped: the namespaceSelector does not apply
        return True
    if namespace_obj is None:
        return True  # reported as namespace-unknown by the caller
    return selector.matches(_mapping(_mapping(namespace_obj.get("metadata")).get("labels")))


def _find_params(
    objects: Iterable[Mapping[str, Any]], kind: tuple[str, str], ref: ParamRef, namespace: str
) -> Iterable[Mapping[str, Any]]:
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        if (obj.get("apiVersion"), obj.get("kind")) != kind:
            continue
        meta = _mapping(obj.get("metadata"))
        obj_ns = str(meta.get("namespace") or "")
        want_ns = ref.namespace or (namespace if obj_ns else "")
        if obj_ns != want_ns:
            continue
        if ref.name and meta.get("name") != ref.name:
            continue
        if ref.selector is not None and not ref.selector.matches(_mapping(meta.get("labels"))):
            continue
        key = (obj_ns, str(meta.get("name")))
        if key not in seen:
            seen.add(key)
            yield obj


# -- reading -------------------------------------------------------------------


def load(
    paths: Iterable[Path],
    *,
    limits: Limits | None = None,
    crds: Iterable[Mapping[str, Any]] = (),
    kubernetes_version: str | None = None,
) -> PolicySet:
    """Policies, bindings and params from files or directories.

    Every other Kubernetes object in the files is a candidate param. `crds` (those given
    with --crd) tell custom kinds' plurals and scopes, which matching needs. CEL is compiled
    as the API server of `kubernetes_version` runs it (`cel.compile_expression`).

    Raises:
        PolicyError: a file is unreadable; a policy or binding is malformed, its CEL does not
            compile, a binding names a policy that is not given, or two share a name.
    """
    out = PolicySet()
    for crd in crds:
        out.add_crd(crd)
    for path in paths:
        for doc in read_objects(path, limits=limits):
            out.documents.append(doc.obj)
            if not is_admission_policy(doc.obj):
                out.params.append(doc.obj)
            elif doc.obj.get("kind") == _POLICY:
                policy = parse_policy(
                    doc.obj, file=doc.file, line=doc.line, kubernetes_version=kubernetes_version
                )
                if policy.name in out.policies:
                    raise PolicyError(
                        f"ValidatingAdmissionPolicy {policy.name!r} is defined twice "
                        f"(also at {out.policies[policy.name].where})",
                        where=policy.where,
                    )
                out.policies[policy.name] = policy
            else:
                out.bindings.append(parse_binding(doc.obj, file=doc.file, line=doc.line))
    for binding in out.bindings:
        found = out.policies.get(binding.policy)
        if found is None:
            raise PolicyError(
                f"ValidatingAdmissionPolicyBinding {binding.name!r} binds policy {binding.policy!r}, "
                "which is not among the admission policies given",
                where=binding.where,
                hint="add the file of that ValidatingAdmissionPolicy with --admission-policy",
            )
        policy = found
        if binding.param_ref is not None and policy.param_kind is None:
            raise PolicyError(
                f"ValidatingAdmissionPolicyBinding {binding.name!r} has a paramRef, but policy "
                f"{policy.name!r} has no paramKind",
                where=binding.where,
            )
        if binding.param_ref is None and policy.param_kind is not None:
            raise PolicyError(
                f"ValidatingAdmissionPolicyBinding {binding.name!r} has no paramRef, but policy "
                f"{policy.name!r} has paramKind {policy.param_kind[1]} ({policy.param_kind[0]})",
                where=binding.where,
                hint="the API server fails every request this binding matches; add spec.paramRef",
            )
    bound = {b.policy for b in out.bindings}
    out.notes.extend(
        f"ValidatingAdmissionPolicy {p.name} ({p.where}) has no binding: the API server does not enforce it"
        for p in out.policies.values()
        if p.name not in bound
    )
    for p in out.policies.values():
        named = _subresources_written(p) if p.name in bound else []
        if named:
            out.offline_notes.append(
                f"ValidatingAdmissionPolicy {p.name} ({p.where}) names subresources for CREATE or UPDATE "
                f"({', '.join(named)}): a manifest is never a subresource's request (a Scale of "
                "`kubectl scale`), so those rules are not evaluated here; `trustgate serve` judges "
                "them at admission, as the API server does"
            )
    return out


def _subresources_written(policy: Policy) -> list[str]:
    """The subresources (`deployments/scale`, `pods/*`) a policy's rules name for CREATE or UPDATE."""
    out: list[str] = []
    for rule in policy.match.rules or ():
        if not {"CREATE", "UPDATE", "*"} & set(rule.operations):
            continue
        out += [r for r in rule.resources if r.partition("/")[2] and r not in out]
    return out


def parse_policy(
    obj: Mapping[str, Any], *, file: str, line: int = 1, kubernetes_version: str | None = None
) -> Policy:
    """A ValidatingAdmissionPolicy, with every expression compiled.

    Raises:
        PolicyError: a required field is missing or of the wrong type, or an expression does not
            compile (the message names the field, e.g. `spec.validations[0].expression`, and the
            line and column within the expression).
    """
    where = f"{file}:{line}"
    name = _name(obj, where)
    label = f"ValidatingAdmissionPolicy {name!r}"
    spec = _mapping(obj.get("spec"))
    if not isinstance(obj.get("spec"), Mapping):
        raise PolicyError(f"{label}: spec is missing", where=where)
    failure_policy = spec.get("failurePolicy", "Fail")
    if failure_policy not in ("Fail", "Ignore"):
        raise PolicyError(
            f"{label}: spec.failurePolicy must be Fail or Ignore, not {failure_policy!r}", where=where
        )
    param_kind: tuple[str, str] | None = None
    if spec.get("paramKind") is not None:
        raw = _mapping(spec.get("paramKind"))
        api, kind = raw.get("apiVersion"), raw.get("kind")
        if not isinstance(api, str) or not api or not isinstance(kind, str) or not kind:
            raise PolicyError(f"{label}: spec.paramKind needs apiVersion and kind", where=where)
        param_kind = (api, kind)
    if not isinstance(spec.get("matchConstraints"), Mapping):
        raise PolicyError(f"{label}: spec.matchConstraints is required", where=where)
    match = _parse_match(spec["matchConstraints"], f"{label}: spec.matchConstraints", where, required=True)
    if not _list(spec.get("validations"), f"{label}: spec.validations", where) and not spec.get(
        "auditAnnotations"
    ):
        raise PolicyError(
            f"{label}: spec.validations is empty (and there are no auditAnnotations)", where=where
        )
    code = parse_code(
        spec,
        label=label,
        where=where,
        prefix="spec.",
        variables=_VARIABLES,
        unevaluable_ok=True,
        strict=True,
        has_params=param_kind is not None,
        kubernetes_version=kubernetes_version,
    )
    return Policy(
        name=name,
        file=file,
        line=line,
        failure_policy=str(failure_policy),
        param_kind=param_kind,
        match=match,
        code=code,
        authorizer=code.uses_authorizer,
    )


def parse_code(
    spec: Mapping[str, Any],
    *,
    label: str,
    where: str,
    prefix: str,
    variables: Sequence[str],
    unevaluable_ok: bool = False,
    strict: bool = False,
    has_params: bool = True,
    kubernetes_version: str | None = None,
) -> Code:
    """`variables`, `matchConditions` and `validations` of a policy (or a Gatekeeper CEL source).

    Args:
        unevaluable_ok: code that cannot be evaluated offline (an optional variable read
            where it cannot be bound faithfully, a variable defined twice and read before its
            last definition) is returned with `Code.unevaluable` set, for the caller to report
            per object; by default it is a PolicyError.
        strict: refuse what the API server refuses when a ValidatingAdmissionPolicy is written
            (`vap_checks`: result types, mixed literals, regex literals; matchCondition names).
            Gatekeeper compiles a template's code with the same compiler but does not refuse
            the template for it, so its code is not strict.
        has_params: whether `params` is declared (strict: the policy has a paramKind).
        kubernetes_version: the target API server's, whose cel-go answers some calls as its
            release does (`cel.compile_expression`).

    Raises:
        PolicyError: an entry is malformed or an expression does not compile (or, `strict`,
            the API server refuses it); the message names the field
            (`spec.validations[0].expression`) and the line and column in it, and says why in
            the API server's words. Without `unevaluable_ok`, also code that cannot be
            evaluated offline.
    """

    # A variable whose value is an optional cannot be handed to or from the runtime (the
    # bindings convert neither way, nor take a variable declared optional_type). An expression
    # that reads one (`variables.x` or `variables['x']`) gets it bound at its top,
    # `cel.bind(__tg_var_x, <x's expression>, ...)`, with the reads renamed: CEL has no side
    # effects and cel.bind is lazy, so the value is the API server's (whose variables are lazy
    # too), and at the top no comprehension variable can capture a name in x's expression.
    # Any read the renaming cannot follow makes the code unevaluable (`_refusal`).
    inlined: dict[str, str] = {}  # name: its expression, with the optional variables it reads bound
    inlined_programs: list[tuple[str, cel.Program]] = []
    reads: list[tuple[str, _Reads | None]] = []  # field path, how it reads `variables`
    mismatched: list[str] = []  # field paths whose reads the renaming did not all find
    rewritten_sources: dict[str, str] = {}  # field path: the source compiled, where rewritten
    inlined_strings: dict[str, tuple[str, ...]] = {}  # name: the string literals its expression holds

    dyn_variables: set[str] = set()  # variables the API server types dyn (`vap_checks`)
    defined_names: set[str] = set()  # the variables defined so far (the fields of `variables`)

    def refuse(field_path: str, message: str, position: str = "") -> PolicyError:
        position = f" ({position})" if position else ""
        return PolicyError(f"{label}: {prefix}{field_path}{position}: {message}", where=where)

    def compile_at(
        field_path: str, text: Any, returns: tuple[str, ...] = (), undeclared: frozenset[str] = frozenset()
    ) -> cel.Program:
        if not isinstance(text, str) or not text.strip():
            raise PolicyError(f"{label}: {prefix}{field_path} must be a non-empty string", where=where)
        try:
            program = cel.compile_expression(text, variables=variables, kubernetes_version=kubernetes_version)
        except cel.CelCompileError as e:
            raise refuse(field_path, e.message, e.where()) from e
        if strict:
            # As the API server's compiler (plugin/cel/compile.go): the environment's AST
            # validators and the program's regex compilation, then the return type.
            missing = undeclared | (frozenset() if has_params else {"params"})
            fields = None if "variables" in missing else frozenset(defined_names)
            refused = (
                vap_checks.declaration_error(program, missing, fields)
                or vap_checks.regex_error(program, kubernetes_version)
                or vap_checks.aggregate_error(program, frozenset(dyn_variables))
            )
            if refused is not None:
                raise refuse(field_path, refused.message, refused.where())
        kind = program.result_type
        # As the API server: an expression whose type is not what the field needs is refused
        # when the policy is written ("must evaluate to bool but got int"): IsExactType, so
        # dyn too where the API server types it dyn (strict; trustgate types some values dyn
        # that the API server knows, see `vap_checks`).
        if returns and kind not in (*returns, "DYN"):
            raise refuse(field_path, _must_evaluate(returns, _cel_type_name(kind)))
        if returns and strict:
            dyn = vap_checks.result_error(program, returns, frozenset(dyn_variables))
            if dyn is not None:
                raise refuse(field_path, dyn)
        if not program.reads("variables"):
            return program
        found = _variable_reads(program)
        reads.append((field_path, found))
        body, bound = text, []
        for name in inlined:
            body, count = cel.substitute_variable(body, name, _BOUND + name)
            # A macro may copy a read (`optMap` reads its target twice), never drop one.
            if count > (found.named.get(name, 0) if found is not None else 0):
                mismatched.append(field_path)  # refused: never run, so compiled as written
                return program
            if count:
                bound.append(name)
        if not bound or found is None:
            return program
        for name in reversed(bound):
            body = f"cel.bind({_BOUND}{name}, ({inlined[name]}), {body})"
        try:
            rewritten = cel.compile_expression(
                body,
                variables=variables,
                length=len(text),
                allow_reserved=True,
                kubernetes_version=kubernetes_version,
            )
        except cel.CelCompileError as e:
            position = " (in it, with the optional variables it reads bound)"
            raise PolicyError(f"{label}: {prefix}{field_path}{position}: {e.message}", where=where) from e
        # The renaming is text; the rewritten AST must read no optional variable through
        # `variables` and hold the same string literals (plus the bound expressions' own): no
        # read was missed and none was renamed inside a literal.
        after = _variable_reads(rewritten)
        strings = Counter(found.strings)
        for name in bound:
            strings.update(inlined_strings[name])
        if after is None or any(n in after.named for n in inlined) or Counter(after.strings) != strings:
            mismatched.append(field_path)
            return program
        rewritten_sources[field_path] = body
        return cel.Program(text, rewritten.variables, rewritten._expression, rewritten._written)

    names = []
    defined: list[tuple[str, cel.Program]] = []  # every variable, in order
    for i, raw in enumerate(_list(spec.get("variables"), f"{label}: {prefix}variables", where)):
        entry = _mapping(raw)
        var_name = entry.get("name")
        if not isinstance(var_name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var_name):
            raise PolicyError(f"{label}: {prefix}variables[{i}].name must be a CEL identifier", where=where)
        if strict and var_name in _CEL_RESERVED:  # validation.go's isCELIdentifier
            raise PolicyError(
                f"{label}: {prefix}variables[{i}].name: Invalid value: {var_name!r}: name is not a valid "
                "CEL identifier",
                where=where,
            )
        field_path = f"variables[{i}].expression"
        program = compile_at(field_path, entry.get("expression"))
        defined.append((var_name, program))
        defined_names.add(var_name)
        # The API server declares `variables.<name>` with the type its expression has
        # (CompositedCompiler.CompileAndStoreVariable), the last definition's.
        root = vap_checks.root(program) if program.result_type == "DYN" else None
        if root is not None and vap_checks.certainly_dyn(root, frozenset(), frozenset(dyn_variables)):
            dyn_variables.add(var_name)
        else:
            dyn_variables.discard(var_name)
        if program.is_optional:
            inlined[var_name] = rewritten_sources.get(field_path, program.source)
            own = _variable_reads(program)
            inlined_strings[var_name] = own.strings if own is not None else ()
            inlined_programs.append((var_name, program))
        else:
            names.append((var_name, program))
    twice = _defined_twice(defined, frozenset(inlined), prefix)
    if twice is None:
        # Each read gets the last definition (see `_defined_twice`); the others are not run.
        last = {name: n for n, (name, _) in enumerate(names)}
        names = [entry for n, entry in enumerate(names) if last[entry[0]] == n]
    conditions: list[tuple[str, cel.Program]] = []
    for i, raw in enumerate(_list(spec.get("matchConditions"), f"{label}: {prefix}matchConditions", where)):
        entry = _mapping(raw)
        condition_name = entry.get("name")
        if strict:
            _check_condition_name(condition_name, [n for n, _ in conditions], f"{label}: {prefix}", i, where)
        conditions.append(
            (
                str(entry.get("name", i)),
                # validateMatchConditions compiles without composition: no `variables`.
                compile_at(
                    f"matchConditions[{i}].expression",
                    entry.get("expression"),
                    ("BOOL",),
                    frozenset({"variables"}),
                ),
            )
        )
    validations = []
    for i, raw in enumerate(_list(spec.get("validations"), f"{label}: {prefix}validations", where)):
        entry = _mapping(raw)
        program = compile_at(f"validations[{i}].expression", entry.get("expression"), ("BOOL",))
        message = entry.get("message", "")
        if not isinstance(message, str):
            raise PolicyError(f"{label}: {prefix}validations[{i}].message must be a string", where=where)
        if strict and message and not _trim_space(message):  # validateValidation
            raise PolicyError(
                f"{label}: {prefix}validations[{i}].message: Invalid value: {message!r}: message must be "
                "non-empty if specified",
                where=where,
            )
        if strict and re.search(r"[\n\r]", _trim_space(message)):
            raise PolicyError(
                f"{label}: {prefix}validations[{i}].message: Invalid value: {message!r}: message must not "
                "contain line breaks",
                where=where,
            )
        message_program = None
        if entry.get("messageExpression") is not None:
            # validateMessageExpression: no authorizer (HasAuthorizer: false).
            message_program = compile_at(
                f"validations[{i}].messageExpression",
                entry["messageExpression"],
                ("STRING",),
                frozenset({"authorizer"}),
            )
        reason = entry.get("reason", "")
        if reason not in ("", "Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge"):
            raise PolicyError(
                f"{label}: {prefix}validations[{i}].reason must be Unauthorized, Forbidden, Invalid or "
                f"RequestEntityTooLarge, not {reason!r}",
                where=where,
            )
        validations.append(Validation(i, program, message, message_program, str(reason)))
    annotations: list[tuple[str, cel.Program]] = []
    for i, raw in enumerate(_list(spec.get("auditAnnotations"), f"{label}: {prefix}auditAnnotations", where)):
        entry = _mapping(raw)
        key = entry.get("key")
        if not isinstance(key, str) or not _ANNOTATION_KEY.fullmatch(key):
            raise PolicyError(
                f"{label}: {prefix}auditAnnotations[{i}].key must be a qualified name part (at most 63 "
                "alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric), "
                f"not {key!r}",
                where=where,
            )
        if any(k == key for k, _ in annotations):
            raise PolicyError(
                f"{label}: {prefix}auditAnnotations[{i}].key {key!r} is given twice", where=where
            )
        annotations.append(
            (
                key,
                compile_at(
                    f"auditAnnotations[{i}].valueExpression", entry.get("valueExpression"), ("STRING", "NULL")
                ),
            )
        )
    refusal = _refusal(reads, mismatched, tuple(inlined), prefix) or (twice or "")
    if refusal and not unevaluable_ok:
        raise PolicyError(f"{label}: {refusal}", where=where)
    return Code(
        tuple(conditions),
        tuple(names),
        tuple(validations),
        tuple(inlined_programs),
        tuple(annotations),
        unevaluable=refusal,
    )


_BOUND = "__tg_var_"  # prefix of the names optional variables are bound to where read
# validation.go's celReserved: words a variable may not be named.
_CEL_RESERVED = frozenset(
    {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if"}
    | {"import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}
)
# apimachinery's IsQualifiedName: an optional DNS-1123 subdomain prefix and `/`, then a name part.
_QUALIFIED_NAME = re.compile(
    r"((?=[^/]{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(?=[^/]{1,63}$)([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
)


def _must_evaluate(returns: tuple[str, ...], got: str) -> str:
    """compile.go's words for an expression of the wrong type."""
    wanted = [_cel_type_name(r) for r in returns]
    if len(wanted) == 1:
        return f"must evaluate to {wanted[0]} but got {got}"
    return f"must evaluate to one of [{' '.join(wanted)}] but got {got}"


def _cel_type_name(kind: str) -> str:
    """A checked type's name (`LIST<INT>`, `NULL`) as cel-go prints it (`list(int)`, `null_type`)."""
    names = {
        "NULL": "null_type",
        "TIMESTAMP": "google.protobuf.Timestamp",
        "DURATION": "google.protobuf.Duration",
    }
    return re.sub(
        r"[A-Z_]+",
        lambda m: names.get(m.group(0), m.group(0).lower()),
        kind.replace("<", "(").replace(">", ")"),
    )


def _check_condition_name(name: Any, seen: Sequence[str], label: str, i: int, where: str) -> None:
    """A matchCondition's name as the API server's validateMatchConditions checks it: given, a
    qualified name, not given twice (the checks apply to the policy's, not to Gatekeeper's)."""
    field_path = f"{label}matchConditions[{i}].name"
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{field_path}: Required value", where=where)
    if not _QUALIFIED_NAME.fullmatch(name):
        raise PolicyError(
            f"{field_path}: Invalid value: {name!r}: must be a qualified name: a name part of at most 63 "
            "alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric, with "
            "an optional DNS subdomain prefix and '/'",
            where=where,
        )
    if name in seen:
        raise PolicyError(f"{field_path}: Duplicate value: {name!r}", where=where)


def _defined_twice(
    defined: Sequence[tuple[str, cel.Program]], optional: frozenset[str], prefix: str
) -> str | None:
    """Why variables defined more than once cannot be evaluated offline, or None.

    The API server accepts it (validateVariable checks no duplicates) and its CompositedCompiler
    keeps the last definition per name: every read of `variables.x`, evaluated lazily, gets the
    last one's value, wherever it is. trustgate evaluates variables in order, so that holds
    only where no variable before the last definition reads the name, and none is optional.
    """
    last = {name: n for n, (name, _) in enumerate(defined)}
    twice = {name for name, _ in defined if sum(1 for other, _ in defined if other == name) > 1}
    if not twice:
        return None
    why = (
        "; the API server gives every read the last definition's value, lazily, and trustgate "
        "evaluates variables in order, so this policy cannot be evaluated offline"
    )
    if twice & optional:
        return f"{prefix}variables defines {sorted(twice & optional)[0]!r} twice, as an optional{why}"
    for n, (_, program) in enumerate(defined):
        if not program.reads("variables"):
            continue
        found = _variable_reads(program)
        for name in sorted(twice):
            if n < last[name] and (
                found is None or found.whole or name in found.named or name in found.other
            ):
                return f"{prefix}variables[{n}] reads {name!r} before its last definition{why}"
    return None


@dataclass(frozen=True, slots=True)
class _Reads:
    """How an expression reads `variables`, from its AST."""

    named: dict[str, int]  # `variables.x` and `variables['x']`: how many times each name
    other: frozenset[str]  # names read otherwise (`variables.?x`, `has(variables.x)`)
    whole: bool  # `variables` read as a whole or by a computed key
    scopes: frozenset[str]  # the comprehension and cel.bind variables it declares
    strings: tuple[str, ...]  # its string literals (with what macros copy)


def _variable_reads(program: cel.Program) -> _Reads | None:
    """How the expression reads `variables`; None when its AST cannot be read (unchecked)."""
    try:
        root = cel_cost.parse_checked(program.checked())[0]
    except ValueError:
        return None
    named: dict[str, int] = {}
    other: set[str] = set()
    whole = False
    scopes: set[str] = set()
    strings: list[str] = []
    stack: list[tuple[cel_cost.Expr, cel_cost.Expr | None]] = [(root, None)]
    while stack:
        node, parent = stack.pop()
        if node.kind == "const" and isinstance(node.const, str):
            strings.append(node.const)
        elif node.kind == "comprehension":
            scopes.update(v for v in (node.iter_var, node.iter_var2, node.accu_var) if v)
        elif node.kind == "ident" and node.name == "variables":
            if parent is None:
                whole = True
            elif parent.kind == "select" and parent.target is node:
                if parent.test_only:
                    other.add(parent.name)
                else:
                    named[parent.name] = named.get(parent.name, 0) + 1
            elif (
                parent.kind == "call"
                and parent.name in ("_[_]", "_[?_]", "_?._")
                and parent.target is None
                and len(parent.args) == 2
                and parent.args[0] is node
                and isinstance(parent.args[1].const, str)
                and parent.args[1].kind == "const"
            ):
                key = parent.args[1].const
                if parent.name == "_[_]":
                    named[key] = named.get(key, 0) + 1
                else:
                    other.add(key)
            else:
                whole = True
        args = node.args
        if (
            node.kind == "call"
            and node.name in ("_[_]", "_[?_]", "_?._")
            and len(args) == 2
            and args[0].kind == "ident"
            and args[0].name == "variables"
            and isinstance(args[1].const, str)
        ):
            args = args[:1]  # the key of `variables['x']` goes with the renaming
        children = [node.target, *args, node.iter_range, node.accu_init]
        children += [node.loop_condition, node.loop_step, node.result]
        stack.extend((child, node) for child in children if child is not None)
    return _Reads(named, frozenset(other), whole, frozenset(scopes), tuple(strings))


def _refusal(
    reads: Sequence[tuple[str, _Reads | None]], mismatched: Sequence[str], inlined: Sequence[str], prefix: str
) -> str:
    """Why the code cannot be evaluated offline ("" when it can): an optional variable read
    where it cannot be bound as `compile_at` binds it."""
    if not inlined:
        return ""
    why = (
        "; trustgate binds an optional variable only where it is read as variables.<name> or "
        "variables['<name>'] (the runtime's Python bindings cannot hold an optional value), so this "
        "policy cannot be evaluated offline"
    )
    optional = ", ".join(repr(n) for n in inlined)
    for field_path, found in reads:
        where = f"{prefix}{field_path}"
        if found is None:
            return f"{where} reads `variables` in a way trustgate cannot follow ({optional} optional){why}"
        shadows = sorted(v for v in found.scopes if v == "variables" or v.startswith(_BOUND))
        if shadows:
            return (
                f"{where} reads `variables` where a comprehension or cel.bind variable named "
                f"{shadows[0]!r} may hide it ({optional} optional){why}"
            )
        odd = sorted(found.other & set(inlined))
        if odd:
            return f"{where} reads the optional variable {odd[0]!r} other than by its name{why}"
        if found.whole:
            return f"{where} reads `variables` whole or by a computed key ({optional} optional){why}"
        if field_path in mismatched:
            return f"{where} reads `variables` in a way trustgate cannot follow ({optional} optional){why}"
    return ""


def parse_binding(obj: Mapping[str, Any], *, file: str, line: int = 1) -> Binding:
    """A ValidatingAdmissionPolicyBinding.

    Raises:
        PolicyError: policyName or validationActions are missing or invalid, or the
            paramRef or matchResources are malformed.
    """
    where = f"{file}:{line}"
    name = _name(obj, where)
    label = f"ValidatingAdmissionPolicyBinding {name!r}"
    spec = _mapping(obj.get("spec"))
    policy = spec.get("policyName")
    if not isinstance(policy, str) or not policy:
        raise PolicyError(f"{label}: spec.policyName is required", where=where)
    actions = tuple(_list(spec.get("validationActions"), f"{label}: spec.validationActions", where))
    if not actions or any(a not in _ACTIONS for a in actions) or len(set(actions)) != len(actions):
        raise PolicyError(
            f"{label}: spec.validationActions must list Deny, Warn or Audit, each once (got {list(actions)})",
            where=where,
        )
    if "Deny" in actions and "Warn" in actions:
        raise PolicyError(f"{label}: spec.validationActions cannot hold both Deny and Warn", where=where)
    param_ref = None
    if spec.get("paramRef") is not None:
        raw = _mapping(spec.get("paramRef"))
        ref_name, selector = raw.get("name"), raw.get("selector")
        if bool(ref_name) == (selector is not None):
            raise PolicyError(f"{label}: spec.paramRef needs exactly one of name and selector", where=where)
        not_found = raw.get("parameterNotFoundAction", "Deny")
        if not_found not in ("Allow", "Deny"):
            raise PolicyError(
                f"{label}: spec.paramRef.parameterNotFoundAction must be Allow or Deny, not {not_found!r}",
                where=where,
            )
        param_ref = ParamRef(
            name=str(ref_name or ""),
            namespace=str(raw.get("namespace") or ""),
            selector=_selector(selector, f"{label}: spec.paramRef.selector", where)
            if selector is not None
            else None,
            not_found=str(not_found),
        )
    match = None
    if spec.get("matchResources") is not None:
        match = _parse_match(spec["matchResources"], f"{label}: spec.matchResources", where, required=False)
    return Binding(name, file, line, policy, actions, param_ref, match)


def _parse_match(value: Any, label: str, where: str, *, required: bool) -> _Match:
    if value is not None and not isinstance(value, Mapping):
        raise PolicyError(f"{label} must be a mapping", where=where)
    raw = _mapping(value)
    rules = raw.get("resourceRules")
    if required and not rules:
        raise PolicyError(f"{label}.resourceRules is required", where=where)
    return _Match(
        rules=tuple(_rule(r, f"{label}.resourceRules[{i}]", where) for i, r in enumerate(rules))
        if rules
        else None,
        exclude=tuple(
            _rule(r, f"{label}.excludeResourceRules[{i}]", where)
            for i, r in enumerate(
                _list(raw.get("excludeResourceRules"), f"{label}.excludeResourceRules", where)
            )
        ),
        namespace_selector=_selector(raw.get("namespaceSelector"), f"{label}.namespaceSelector", where),
        object_selector=_selector(raw.get("objectSelector"), f"{label}.objectSelector", where),
        match_policy=_match_policy(raw.get("matchPolicy"), f"{label}.matchPolicy", where),
    )


def _match_policy(value: Any, label: str, where: str) -> str:
    if value is None:
        return "Equivalent"
    if value not in ("Equivalent", "Exact"):
        raise PolicyError(f"{label} must be Equivalent or Exact, not {value!r}", where=where)
    return str(value)


def _rule(value: Any, label: str, where: str) -> _Rule:
    raw = _mapping(value)

    def strings(key: str) -> tuple[str, ...]:
        return string_list(raw.get(key), f"{label}.{key}", where)

    operations = strings("operations")
    for op in operations:
        if op not in ("*", "CREATE", "UPDATE", "DELETE", "CONNECT"):
            raise PolicyError(
                f"{label}.operations: {op!r} is not CREATE, UPDATE, DELETE, CONNECT or *", where=where
            )
    scope = raw.get("scope", "*")
    if scope not in ("*", "Cluster", "Namespaced"):
        raise PolicyError(f"{label}.scope must be *, Cluster or Namespaced, not {scope!r}", where=where)
    return _Rule(
        strings("apiGroups"),
        strings("apiVersions"),
        strings("resources"),
        operations,
        str(scope),
        strings("resourceNames"),
    )


def _selector(value: Any, label: str, where: str) -> Selector | None:
    return parse_selector(value, label, where)


def _name(obj: Mapping[str, Any], where: str) -> str:
    name = _mapping(obj.get("metadata")).get("name")
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{obj.get('kind')} without metadata.name", where=where)
    return name


def _undecodable(obj: Mapping[str, Any]) -> str:
    """Why an object cannot be made what the API server's validating admission sees (offline),
    or ""."""
    if not isinstance(obj.get("apiVersion"), str) or not isinstance(obj.get("kind"), str):
        return "its apiVersion and kind are not both strings (the API server refuses such a request)"
    if k8s_defaults.nested_deeper(obj, MAX_DEPTH):
        return (
            f"it is nested more than {MAX_DEPTH} levels deep, deeper than trustgate evaluates "
            "(the API server reads up to 10000)"
        )
    return ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any, label: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PolicyError(f"{label} must be a list", where=where)
    return value
