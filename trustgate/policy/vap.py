"""Kubernetes ValidatingAdmissionPolicies and their bindings, evaluated as the API server does.

Owns reading `ValidatingAdmissionPolicy` and `ValidatingAdmissionPolicyBinding`
(admissionregistration.k8s.io v1 and v1beta1), compiling every CEL expression
once (`trustgate.policy.cel`), matching (`matchConstraints` and the binding's
`matchResources`: resourceRules with operations, excludeResourceRules,
namespaceSelector, objectSelector; then `matchConditions`), parameters
(`paramKind`, `paramRef` by name or selector, `parameterNotFoundAction`) and
evaluating `variables` and `validations` (`message`, `messageExpression`,
`reason`) under `failurePolicy`.

What an offline check cannot know it says: a policy that calls `authorizer`,
a namespaceSelector whose Namespace is not in the change set, a parameter that
is nowhere to be found. It reads no files beyond those it is given and talks to
no cluster. `auditAnnotations` are not evaluated (they change no decision).
`matchPolicy: Equivalent` is not converted: an object whose group and resource
a rule names in another version only cannot be evaluated (the API server would
convert it); a namespaceSelector whose Namespace is not given fails closed.

The request is a CREATE of each checked object: `oldObject` is null,
`request.userInfo` names nobody (empty username and groups).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustgate.config import Limits
from trustgate.errors import PolicyError
from trustgate.policy import cel
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
# Kinds the API server serves cluster-scoped (the rest are namespaced), for `scope` in resourceRules.
_CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "RuntimeClass",
        "IngressClass",
        "CSIDriver",
        "CSINode",
        "VolumeAttachment",
        "APIService",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "CertificateSigningRequest",
        "FlowSchema",
        "PriorityLevelConfiguration",
    }
)
_IRREGULAR = {"Endpoints": "endpoints"}


def is_admission_policy(obj: Mapping[str, Any]) -> bool:
    """A ValidatingAdmissionPolicy or a binding of one."""
    api = obj.get("apiVersion")
    return (
        isinstance(api, str)
        and api.rpartition("/")[0] == _GROUP
        and api.rpartition("/")[2] in _VERSIONS
        and obj.get("kind") in (_POLICY, _BINDING)
    )


def resource_of(kind: str) -> str:
    """The plural resource name the API server serves a kind under (`Ingress` -> `ingresses`)."""
    if kind in _IRREGULAR:
        return _IRREGULAR[kind]
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    return lower + "s"


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
        *,
        any_version: bool = False,
    ) -> bool:
        def any_of(values: tuple[str, ...], value: str) -> bool:
            return "*" in values or value in values

        if not (any_of(self.operations, "CREATE") and any_of(self.groups, group)):
            return False
        if not any_version and not any_of(self.versions, version):
            return False
        if not any(r in ("*", "*/*", resource) for r in self.resources):
            return False
        if (self.scope == "Cluster" and namespaced) or (self.scope == "Namespaced" and not namespaced):
            return False
        return not self.names or name in self.names


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

    @property
    def uses_authorizer(self) -> bool:
        programs = [p for _, p in self.variables] + [p for _, p in self.conditions]
        programs += [v.program for v in self.validations]
        programs += [v.message_program for v in self.validations if v.message_program is not None]
        return any(cel.uses_authorizer(p.source) for p in programs)


@dataclass(frozen=True, slots=True)
class Failure:
    """A validation that did not pass: `violation`, or `ignored` (an error under failurePolicy Ignore).

    `rule` is the validation's reason or index, or `matchCondition`.
    """

    kind: str
    rule: str
    message: str
    reason: str = ""


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


@dataclass
class PolicySet:
    """Policies, their bindings and the param objects given beside them."""

    policies: dict[str, Policy] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)
    params: list[Mapping[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    documents: list[Mapping[str, Any]] = field(default_factory=list)  # everything read, for the revision

    def review(self, obj: Mapping[str, Any], *, objects: Sequence[Mapping[str, Any]] = ()) -> list[Outcome]:
        """Every binding's outcome for one object created as it is.

        Args:
            obj: the object.
            objects: the rest of the change set: Namespaces for namespaceSelector and
                `namespaceObject`, and params (beside those read with the policies).

        Returns:
            The outcomes that are not a pass.
        """
        out: list[Outcome] = []
        meta = _mapping(obj.get("metadata"))
        kind = str(obj.get("kind", ""))
        api_version = str(obj.get("apiVersion", ""))
        group, _, version = api_version.rpartition("/")
        namespace = str(meta.get("namespace") or "")
        namespaced = bool(namespace) or kind not in _CLUSTER_SCOPED
        name = str(meta.get("name") or "")
        pool = [*self.params, *objects]
        namespace_obj = _namespace(pool, namespace) if namespace else None
        resource = resource_of(kind)
        request = {
            "uid": "",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "", "uid": "", "groups": [], "extra": {}},  # nobody: offline
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        }
        where = (group, version, resource, namespaced, name)
        for binding in self.bindings:
            policy = self.policies[binding.policy]
            versions: list[str] = []  # under matchPolicy Equivalent: the versions a rule asks for instead
            matched = True
            for match in (policy.match, binding.match):
                if match is None or _matches(match, obj, where, namespace, namespace_obj):
                    continue
                if match.match_policy == "Equivalent" and _matches(
                    match, obj, where, namespace, namespace_obj, any_version=True
                ):
                    versions += _other_versions(match, where)
                    continue
                matched = False
            if not matched:
                continue
            if versions:
                out.append(_needs_conversion(policy, binding, group, version, sorted(set(versions))))
                continue
            found = self._binding(policy, binding, obj, request, pool, namespace, namespace_obj)
            if namespaced and namespace and namespace_obj is None:
                selectors = [policy.match.namespace_selector]
                selectors += [binding.match.namespace_selector] if binding.match is not None else []
                if any(s is not None and (s.labels or s.expressions) for s in selectors):
                    found = _undecided(policy, binding, namespace, found)
            out.extend(found)
        return out

    def _binding(
        self,
        policy: Policy,
        binding: Binding,
        obj: Mapping[str, Any],
        request: Mapping[str, Any],
        pool: Sequence[Mapping[str, Any]],
        namespace: str,
        namespace_obj: Mapping[str, Any] | None,
    ) -> list[Outcome]:
        """The outcomes of one binding that matches `obj`."""
        if policy.authorizer:
            return [
                Outcome(
                    "unevaluable",
                    policy,
                    binding,
                    f"{policy.name}/authorizer",
                    f"ValidatingAdmissionPolicy {policy.name} ({policy.where}) calls `authorizer`, which "
                    "asks the cluster's authorizers: it cannot be evaluated offline",
                )
            ]
        params: list[Mapping[str, Any] | None] = [None]
        if binding.param_ref is not None and policy.param_kind is not None:
            params = list(_find_params(pool, policy.param_kind, binding.param_ref, namespace))
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
                "oldObject": None,
                "request": request,
                "params": param,
                "namespaceObject": namespace_obj,
                "authorizer": None,
            }
            out.extend(_evaluate(policy, binding, activation, param))
        return out


def _undecided(policy: Policy, binding: Binding, namespace: str, found: list[Outcome]) -> list[Outcome]:
    """Fail closed when a namespaceSelector cannot be decided (its Namespace was not given).

    The policy was evaluated as if the selector matched. What would block becomes
    `unevaluable` (could not evaluate, not a pass); what would warn or record keeps
    its kind with the caveat; nothing at all becomes one `ignored` note.
    """
    why = (
        f"the namespaceSelector of {policy.name} (binding {binding.name}) could not be decided: "
        f"Namespace {namespace!r} is not in the change set or the admission policy files"
    )
    if not found:
        return [
            Outcome(
                "ignored",
                policy,
                binding,
                f"{policy.name}/namespaceSelector",
                f"{why}; the policy passes either way",
            )
        ]
    out = []
    for outcome in found:
        blocks = outcome.kind == "unevaluable" or (outcome.kind == "violation" and "Deny" in binding.actions)
        kind = "unevaluable" if blocks else outcome.kind
        message = (
            f"{why}, and if it selects the Namespace the policy denies: {outcome.message} "
            "(give the Namespace in the change set or with --admission-policy)"
            if blocks
            else f"{outcome.message} (if the namespaceSelector selects Namespace {namespace!r}: {why})"
        )
        out.append(Outcome(kind, policy, binding, outcome.rule, message, outcome.reason, outcome.param))
    return out


# -- evaluating ----------------------------------------------------------------


def _evaluate(
    policy: Policy, binding: Binding, activation: dict[str, Any], param: Mapping[str, Any] | None
) -> list[Outcome]:
    param_name = str(_mapping(param.get("metadata") if param else None).get("name") or "")
    return [
        Outcome(f.kind, policy, binding, f"{policy.name}/{f.rule}", f.message, f.reason, param_name)
        for f in run_code(policy.code, activation, failure_policy=policy.failure_policy)
    ]


def run_code(
    code: Code,
    activation: dict[str, Any],
    *,
    failure_policy: str = "Fail",
    variables: Mapping[str, Any] | None = None,
) -> list[Failure]:
    """Evaluate variables, then matchConditions (any false: nothing applies), then validations.

    Args:
        code: the compiled CEL.
        activation: the top-level variables; `variables` is set here.
        failure_policy: `Fail` makes an evaluation error a violation, `Ignore` an ignored failure.
        variables: entries of `variables` given before the code's own (Gatekeeper's `params`).

    Returns:
        The validations that did not pass, in order.
    """

    def failure(rule: str, message: str) -> Failure:
        if failure_policy == "Fail":
            return Failure("violation", rule, message)
        return Failure("ignored", rule, message + " (failurePolicy Ignore: not enforced)")

    values: dict[str, Any] = dict(variables or {})
    broken: dict[str, str] = {}
    activation["variables"] = values
    for name, program in code.variables:
        try:
            values[name] = program.evaluate(activation)
        except cel.CelEvalError as e:
            broken[name] = str(e)
    # As the API server: any condition false skips the policy, whatever errors the others
    # raised; only when none is false does the first error go to failurePolicy.
    error: Failure | None = None
    for name, program in code.conditions:
        try:
            value = program.evaluate(activation)
        except cel.CelEvalError as e:
            error = error or failure("matchCondition", f"matchCondition {name!r} failed: {_why(e, broken)}")
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
            value = validation.program.evaluate(activation)
        except cel.CelEvalError as e:
            out.append(failure(rule, f"expression '{source}' resulted in error: {_why(e, broken)}"))
            continue
        if value is True:
            continue
        if value is not False:
            out.append(failure(rule, f"expression '{source}' returned {value!r}, not a bool"))
            continue
        message = validation.message or f"failed expression: {source}"
        if validation.message_program is not None:
            try:
                text = validation.message_program.evaluate(activation)
                if isinstance(text, str) and text.strip() and "\n" not in text:
                    message = text
            except cel.CelEvalError:
                pass  # as the API server: the static message (or the default) stands
        out.append(Failure("violation", rule, message, validation.reason or "Invalid"))
    return out


def _why(error: cel.CelEvalError, broken: Mapping[str, str]) -> str:
    text = str(error)
    for name, reason in broken.items():
        if f'"{name}"' in text or f"'{name}'" in text:
            return f"variable {name!r} failed: {reason}"
    return text


def _other_versions(match: _Match, where: tuple[str, str, str, bool, str]) -> list[str]:
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
    obj: Mapping[str, Any],
    where: tuple[str, str, str, bool, str],
    namespace: str,
    namespace_obj: Mapping[str, Any] | None,
    *,
    any_version: bool = False,
) -> bool:
    if match.rules is not None and not any(r.matches(*where, any_version=any_version) for r in match.rules):
        return False
    if any(r.matches(*where) for r in match.exclude):
        return False
    labels = _mapping(_mapping(obj.get("metadata")).get("labels"))
    if match.object_selector is not None and not match.object_selector.matches(labels):
        return False
    selector = match.namespace_selector
    if selector is None or not (selector.labels or selector.expressions):
        return True
    if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
        return selector.matches(labels)
    if not namespace:  # cluster-scoped: the namespaceSelector does not apply
        return True
    if namespace_obj is None:
        return True  # reported as namespace-unknown by the caller
    return selector.matches(_mapping(_mapping(namespace_obj.get("metadata")).get("labels")))


def _namespace(objects: Iterable[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    for obj in objects:
        is_namespace = obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1"
        if is_namespace and _mapping(obj.get("metadata")).get("name") == name:
            return obj
    return None


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


def load(paths: Iterable[Path], *, limits: Limits | None = None) -> PolicySet:
    """Policies, bindings and params from files or directories.

    Every other Kubernetes object in the files is a candidate param.

    Raises:
        PolicyError: a file is unreadable; a policy or binding is malformed, its CEL does not
            compile, a binding names a policy that is not given, or two share a name.
    """
    out = PolicySet()
    for path in paths:
        for doc in read_objects(path, limits=limits):
            out.documents.append(doc.obj)
            if not is_admission_policy(doc.obj):
                out.params.append(doc.obj)
            elif doc.obj.get("kind") == _POLICY:
                policy = parse_policy(doc.obj, file=doc.file, line=doc.line)
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
    return out


def parse_policy(obj: Mapping[str, Any], *, file: str, line: int = 1) -> Policy:
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
    code = parse_code(spec, label=label, where=where, prefix="spec.", variables=_VARIABLES)
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
    spec: Mapping[str, Any], *, label: str, where: str, prefix: str, variables: Sequence[str]
) -> Code:
    """`variables`, `matchConditions` and `validations` of a policy (or a Gatekeeper CEL source).

    Raises:
        PolicyError: an entry is malformed or an expression does not compile; the message
            names the field (`spec.validations[0].expression`) and the line and column in it.
    """

    def compile_at(field_path: str, text: Any) -> cel.Program:
        if not isinstance(text, str) or not text.strip():
            raise PolicyError(f"{label}: {prefix}{field_path} must be a non-empty string", where=where)
        try:
            return cel.compile_expression(text, variables=variables)
        except cel.CelCompileError as e:
            position = f" ({e.where()})" if e.where() else ""
            raise PolicyError(f"{label}: {prefix}{field_path}{position}: {e.message}", where=where) from e

    names = []
    for i, raw in enumerate(_list(spec.get("variables"), f"{label}: {prefix}variables", where)):
        entry = _mapping(raw)
        var_name = entry.get("name")
        if not isinstance(var_name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var_name):
            raise PolicyError(f"{label}: {prefix}variables[{i}].name must be a CEL identifier", where=where)
        names.append((var_name, compile_at(f"variables[{i}].expression", entry.get("expression"))))
    conditions = []
    for i, raw in enumerate(_list(spec.get("matchConditions"), f"{label}: {prefix}matchConditions", where)):
        entry = _mapping(raw)
        conditions.append(
            (
                str(entry.get("name", i)),
                compile_at(f"matchConditions[{i}].expression", entry.get("expression")),
            )
        )
    validations = []
    for i, raw in enumerate(_list(spec.get("validations"), f"{label}: {prefix}validations", where)):
        entry = _mapping(raw)
        program = compile_at(f"validations[{i}].expression", entry.get("expression"))
        message = entry.get("message", "")
        if not isinstance(message, str):
            raise PolicyError(f"{label}: {prefix}validations[{i}].message must be a string", where=where)
        message_program = None
        if entry.get("messageExpression") is not None:
            message_program = compile_at(f"validations[{i}].messageExpression", entry["messageExpression"])
        reason = entry.get("reason", "")
        if reason not in ("", "Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge"):
            raise PolicyError(
                f"{label}: {prefix}validations[{i}].reason must be Unauthorized, Forbidden, Invalid or "
                f"RequestEntityTooLarge, not {reason!r}",
                where=where,
            )
        validations.append(Validation(i, program, message, message_program, str(reason)))
    return Code(tuple(conditions), tuple(names), tuple(validations))


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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any, label: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PolicyError(f"{label} must be a list", where=where)
    return value
