"""Gatekeeper's K8sNativeValidation code: ConstraintTemplate CEL, evaluated as Gatekeeper's CEL driver does.

A template's `code` entry with `engine: K8sNativeValidation` holds a
ValidatingAdmissionPolicy-like `source` (`variables`, `matchConditions`,
`validations` with `message`/`messageExpression`, `failurePolicy`). Gatekeeper
binds the constraint as the policy's params and adds two variables before the
template's own: `variables.params` (the constraint's `spec.parameters`) and
`variables.anyObject` (the object, or the old object of a DELETE).

The constraint's `match` is applied by `gatekeeper.ConstraintEvaluator`
before this runs, as for Rego. Differences from Gatekeeper: a constraint
without parameters gives `variables.params` as `{}` rather than null (trustgate
does not keep the difference), and `authorizer` is not evaluable offline (the
template fails to compile here, naming it). `namespaceObject` is the request's
Namespace from the change set or the inventory; code that reads it for a
Namespace given in neither cannot be evaluated (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trustgate.errors import PolicyError
from trustgate.policy import vap

if TYPE_CHECKING:
    from trustgate.policy.gatekeeper import Constraint, Template

__all__ = ["compile_template", "review"]

_VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject", "variables", "authorizer")


def compile_template(template: Template, *, kubernetes_version: str | None = None) -> tuple[vap.Code, str]:
    """The template's CEL, compiled once (as the API server of `kubernetes_version` runs it,
    `cel.compile_expression`), and its failurePolicy.

    Raises:
        PolicyError: the source is malformed, an expression does not compile (naming the
            template file, the field such as `spec.targets[0].code[0].source.validations[1]
            .expression`, and the line and column in it), or it calls `authorizer`.
    """
    source = template.cel or {}
    label = f"template {template.name}"
    code = vap.parse_code(
        source,
        label=label,
        where=template.where,
        prefix=template.cel_path,
        variables=_VARIABLES,
        kubernetes_version=kubernetes_version,
    )
    if not code.validations:
        raise PolicyError(f"{label}: {template.cel_path}validations is empty", where=template.where)
    if code.uses_authorizer:
        raise PolicyError(
            f"{label}: its K8sNativeValidation code calls `authorizer`, which cannot be evaluated offline",
            where=template.where,
        )
    failure_policy = source.get("failurePolicy", "Fail")
    if failure_policy not in ("Fail", "Ignore"):
        raise PolicyError(
            f"{label}: {template.cel_path}failurePolicy must be Fail or Ignore, not {failure_policy!r}",
            where=template.where,
        )
    return code, str(failure_policy)


def review(
    compiled: tuple[vap.Code, str],
    constraint: Constraint,
    request: Mapping[str, Any],
    *,
    namespace_object: Mapping[str, Any] | None = None,
) -> list[str]:
    """The messages of the validations that fail for one review (Gatekeeper's `input.review`);
    `namespace_object` is the Namespace of a namespaced request (`namespaceObject`)."""
    code, failure_policy = compiled
    obj = request.get("object")
    old = request.get("oldObject")
    any_object = old if request.get("operation") == "DELETE" and not isinstance(obj, Mapping) else obj
    params = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": constraint.kind,
        "metadata": {"name": constraint.name},
        "spec": {"parameters": dict(constraint.parameters)},
    }
    activation = {
        "object": obj if isinstance(obj, Mapping) else None,
        "oldObject": old if isinstance(old, Mapping) else None,
        "request": dict(request),
        "params": params,
        "namespaceObject": namespace_object,
        "authorizer": None,
    }
    failures = vap.run_code(
        code,
        activation,
        failure_policy=failure_policy,
        variables={"params": dict(constraint.parameters), "anyObject": any_object},
    )
    unevaluable = next((f for f in failures if f.kind == "unevaluable"), None)
    if unevaluable is not None:  # no verdict, under either failurePolicy
        raise PolicyError(f"constraint {constraint.name}: {unevaluable.message}")
    return [f.message for f in failures if f.kind == "violation"]
