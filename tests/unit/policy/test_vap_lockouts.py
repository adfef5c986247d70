"""ValidatingAdmissionPolicies that must not lock out the cluster's own controllers at admission.

matchConditions come first (the API server's validating validator.Validate: a false one skips the
policy before any validation runs), so a validation trustgate cannot evaluate (`authorizer`, an
unknown `namespaceObject`) makes the policy "cannot be evaluated" only when the policy applies.
A namespaceSelector on a Namespace trustgate has not been given is an error of matching, which the
API server hands to the policy's failurePolicy: under Ignore the policy does not apply; under Fail
it stays fail-closed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from trustgate.policy import vap

Write = Callable[[str, str], Path]

CONTROLLER = "system:serviceaccount:kube-system:namespace-controller"
NOT_SYSTEM = (
    "  matchConditions:\n"
    "    - name: not-system\n"
    "      expression: \"!request.userInfo.username.startsWith('system:serviceaccount:kube-system:')\"\n"
)


def _policy(name: str, validation: str, *, extra: str = "", failure: str = "Fail", params: str = "") -> str:
    return f"""\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: {failure}
{params}  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["DELETE"]
        resources: ["secrets", "services"]
{extra}  validations:
    - expression: {validation!r}
      message: {name}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
"""


AUTHZ = "authorizer.group('').resource('secrets').check('purge').allowed()"
NSOBJ = "namespaceObject.metadata.?labels.?env.orValue('') != 'prod'"


def _secret(namespace: str = "team-a") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": namespace}}


def _delete(user: str, namespace: str = "team-a") -> dict[str, Any]:
    return {
        "uid": "u-1",
        "operation": "DELETE",
        "namespace": namespace,
        "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"},
    }


def _kinds(outcomes: list[vap.Outcome]) -> list[tuple[str, str]]:
    return sorted((o.kind, o.rule) for o in outcomes)


def test_a_false_match_condition_skips_a_policy_that_calls_the_authorizer(write: Write) -> None:
    policies = vap.load([write("p.yaml", _policy("authz", AUTHZ, extra=NOT_SYSTEM))])
    assert policies.review(None, old=_secret(), admission=_delete(CONTROLLER)) == []
    # A user the conditions let through: the policy applies, and calls the authorizer.
    outcomes = policies.review(None, old=_secret(), admission=_delete("alice"))
    assert _kinds(outcomes) == [("unevaluable", "authz/authorizer")]


def test_a_false_match_condition_skips_a_policy_that_reads_an_unknown_namespace(write: Write) -> None:
    policies = vap.load([write("p.yaml", _policy("nsobj", NSOBJ, extra=NOT_SYSTEM))])
    assert policies.review(None, old=_secret(), admission=_delete(CONTROLLER)) == []
    outcomes = policies.review(None, old=_secret(), admission=_delete("alice"))
    assert _kinds(outcomes) == [("unevaluable", "nsobj/namespaceObject")]


def test_a_match_condition_that_calls_the_authorizer_cannot_decide_first(write: Write) -> None:
    calls = (
        "  matchConditions:\n"
        "    - name: no-breakglass\n"
        "      expression: \"!authorizer.group('').resource('secrets').check('breakglass').allowed()\"\n"
    )
    policies = vap.load([write("p.yaml", _policy("authz", AUTHZ, extra=calls))])
    outcomes = policies.review(None, old=_secret(), admission=_delete(CONTROLLER))
    assert _kinds(outcomes) == [("unevaluable", "authz/authorizer")]


def test_an_erring_match_condition_goes_to_the_failure_policy(write: Write) -> None:
    errs = (
        "  matchConditions:\n"
        "    - name: errs\n"
        "      expression: \"request.userInfo.extra['none'][0] == 'x'\"\n"
    )
    fail = vap.load([write("f.yaml", _policy("authz", AUTHZ, extra=errs))])
    [outcome] = fail.review(None, old=_secret(), admission=_delete(CONTROLLER))
    assert (outcome.kind, outcome.rule) == ("violation", "authz/matchCondition")
    ignore = vap.load([write("i.yaml", _policy("authz", AUTHZ, extra=errs, failure="Ignore"))])
    [outcome] = ignore.review(None, old=_secret(), admission=_delete(CONTROLLER))
    assert (outcome.kind, outcome.rule) == ("ignored", "authz/matchCondition")


def test_match_conditions_reading_params_decide_per_param(write: Write) -> None:
    params = "  paramKind: {apiVersion: v1, kind: ConfigMap}\n"
    reads = (
        "  matchConditions:\n"
        "    - name: exempt\n"
        '      expression: "request.userInfo.username != params.data.exempt"\n'
    )
    text = _policy("authz", AUTHZ, extra=reads, params=params).replace(
        "  validationActions: [Deny]\n",
        "  validationActions: [Deny]\n"
        "  paramRef: {name: exempt, namespace: default, parameterNotFoundAction: Deny}\n",
    )
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "exempt", "namespace": "default"},
        "data": {"exempt": CONTROLLER},
    }
    policies = vap.load([write("p.yaml", text)])
    assert policies.review(None, old=_secret(), admission=_delete(CONTROLLER), objects=[config]) == []
    outcomes = policies.review(None, old=_secret(), admission=_delete("alice"), objects=[config])
    assert _kinds(outcomes) == [("unevaluable", "authz/authorizer")]


SELECTOR = "    namespaceSelector: {matchLabels: {env: prod}}\n"


def _service(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": namespace}}


def _namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def test_an_unknown_namespace_under_failure_policy_ignore_does_not_apply_the_policy(write: Write) -> None:
    policies = vap.load([write("p.yaml", _policy("nssel", "false", extra=SELECTOR, failure="Ignore"))])
    [outcome] = policies.review(None, old=_service("scratch"), admission=_delete(CONTROLLER, "scratch"))
    assert (outcome.kind, outcome.rule) == ("ignored", "nssel/namespaceSelector")
    assert "failurePolicy Ignore: the policy is not applied" in outcome.message
    assert "list Namespace 'scratch' in the admission policy files" in outcome.message
    # A Namespace trustgate is given is decided as the API server would.
    prod = [_namespace("scratch", env="prod")]
    outcomes = policies.review(
        None, old=_service("scratch"), admission=_delete(CONTROLLER, "scratch"), objects=prod
    )
    assert _kinds(outcomes) == [("violation", "nssel/0")]
    other = [_namespace("scratch", env="dev")]
    assert (
        policies.review(
            None, old=_service("scratch"), admission=_delete(CONTROLLER, "scratch"), objects=other
        )
        == []
    )


def test_an_unknown_namespace_under_failure_policy_fail_stays_fail_closed(write: Write) -> None:
    policies = vap.load([write("p.yaml", _policy("nssel", "false", extra=SELECTOR))])
    [outcome] = policies.review(None, old=_service("scratch"), admission=_delete(CONTROLLER, "scratch"))
    assert (outcome.kind, outcome.rule) == ("unevaluable", "nssel/0")
    assert "Namespace 'scratch' is not in the change set or the admission policy files" in outcome.message
    assert "list Namespace 'scratch' in the admission policy files" in outcome.message
