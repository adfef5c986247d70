"""ValidatingAdmissionPolicies: the Kubernetes documentation's examples, matching, params, bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from trustgate.errors import PolicyError
from trustgate.policy import vap

Write = Callable[[str, str], Path]
EXAMPLES = Path(__file__).parent.parent.parent / "conformance" / "admission-policies"
NAMESPACES = list(yaml.safe_load_all((EXAMPLES / "objects.yaml").read_text()))


def deployment(replicas: int = 7, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "app", "image": "prod.example.com/app:1"}]}},
        },
    }


def pod(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "a", "image": image}]},
    }


def review(name: str, obj: dict[str, Any], objects: list[Any] | None = None) -> list[vap.Outcome]:
    policies = vap.load([EXAMPLES / name])
    return policies.review(obj, objects=NAMESPACES if objects is None else objects)


def test_demo_policy_denies_too_many_replicas_in_test_namespaces() -> None:
    [outcome] = review("demo-policy.yaml", deployment(7))
    assert (outcome.kind, outcome.rule) == ("violation", "demo-policy.example.com/0")
    assert outcome.message == "failed expression: object.spec.replicas <= 5"
    assert outcome.reason == "Invalid"
    assert outcome.binding.actions == ("Deny",)
    assert review("demo-policy.yaml", deployment(5)) == []
    assert review("demo-policy.yaml", deployment(7, namespace="staging")) == []  # not environment: test


def test_demo_policy_namespace_not_given_fails_closed_when_the_policy_would_deny() -> None:
    [outcome] = review("demo-policy.yaml", deployment(7, namespace="elsewhere"))
    assert (outcome.kind, outcome.rule) == ("unevaluable", "demo-policy.example.com/0")
    assert (
        "namespaceSelector of demo-policy.example.com (binding demo-binding-test.example.com) could "
        "not be decided: Namespace 'elsewhere' is not in the change set" in outcome.message
    )
    assert "failed expression: object.spec.replicas <= 5" in outcome.message
    [note] = review("demo-policy.yaml", deployment(5, namespace="elsewhere"))  # passes either way
    assert (note.kind, note.rule) == ("ignored", "demo-policy.example.com/namespaceSelector")


def test_params_from_the_policy_files_and_message_expression() -> None:
    [outcome] = review("replicalimit.yaml", deployment(4))
    assert outcome.rule == "replicalimit-policy.example.com/Invalid"
    assert outcome.message == "object.spec.replicas must be no greater than 3"
    assert outcome.param == "replica-limit-test.example.com"
    assert review("replicalimit.yaml", deployment(3)) == []


def test_params_from_the_change_set(write: Write) -> None:
    text = (EXAMPLES / "replicalimit.yaml").read_text()
    policy = write("policy.yaml", text[: text.rindex("---")])  # without its ReplicaLimit
    limit = {
        "apiVersion": "rules.example.com/v1",
        "kind": "ReplicaLimit",
        "metadata": {"name": "replica-limit-test.example.com", "namespace": "default"},
        "maxReplicas": 10,
    }
    policies = vap.load([policy])
    assert policies.review(deployment(7), objects=[*NAMESPACES, limit]) == []
    [missing] = policies.review(deployment(7), objects=NAMESPACES)
    assert missing.kind == "unevaluable"
    assert "no ReplicaLimit 'replica-limit-test.example.com'" in missing.message
    assert "parameterNotFoundAction: Deny" in missing.message


def test_parameter_not_found_allow_skips_the_policy(write: Write) -> None:
    text = (EXAMPLES / "replicalimit.yaml").read_text()
    text = text[: text.rindex("---")].replace(
        "parameterNotFoundAction: Deny", "parameterNotFoundAction: Allow"
    )
    [outcome] = vap.load([write("policy.yaml", text)]).review(deployment(7), objects=NAMESPACES)
    assert outcome.kind == "ignored"
    assert "parameterNotFoundAction is Allow" in outcome.message


def test_param_selector_evaluates_each_param(write: Write) -> None:
    text = (EXAMPLES / "replicalimit.yaml").read_text()
    text = text.replace(
        'name: "replica-limit-test.example.com"\n    namespace: "default"\n    parameterNotFoundAction',
        "selector:\n      matchLabels:\n        tier: web\n    parameterNotFoundAction",
    )
    text = text[: text.rindex("---")]
    limits = [
        {
            "apiVersion": "rules.example.com/v1",
            "kind": "ReplicaLimit",
            "metadata": {"name": f"limit-{n}", "namespace": "default", "labels": {"tier": "web"}},
            "maxReplicas": n,
        }
        for n in (2, 6)
    ]
    outcomes = vap.load([write("policy.yaml", text)]).review(deployment(4), objects=[*NAMESPACES, *limits])
    assert [(o.param, o.message) for o in outcomes] == [
        ("limit-2", "object.spec.replicas must be no greater than 2")
    ]


def test_variables_namespace_object_and_warn() -> None:
    ok = deployment(1, namespace="staging", exempt="false")
    ok["spec"]["template"]["spec"]["containers"][0]["image"] = "staging.example.com/app:1"
    assert review("image-matches-namespace.yaml", ok) == []
    [outcome] = review("image-matches-namespace.yaml", deployment(1, namespace="staging", exempt="false"))
    assert outcome.message == "only staging images are allowed in namespace staging"
    assert outcome.binding.actions == ("Warn",)
    assert review("image-matches-namespace.yaml", deployment(1, namespace="staging", exempt="true")) == []


def test_a_failing_variable_is_named_in_the_error() -> None:
    unlabelled = deployment(1, namespace="staging")
    del unlabelled["metadata"]["labels"]
    [outcome] = review("image-matches-namespace.yaml", unlabelled)
    assert outcome.kind == "violation"  # failurePolicy Fail
    assert "variable 'exempt' failed" in outcome.message


def test_match_conditions_and_resource_rules() -> None:
    [outcome] = review("match-conditions.yaml", pod("nginx:latest"))
    assert (outcome.rule, outcome.message, outcome.reason) == (
        "no-latest.example.com/Forbidden",
        "images must not use the latest tag",
        "Forbidden",
    )
    assert outcome.binding.actions == ("Audit", "Warn")
    assert review("match-conditions.yaml", pod("nginx:1.27")) == []
    assert review("match-conditions.yaml", deployment()) == []  # the pods-only matchCondition is false


POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: p
spec:
  failurePolicy: {failure}
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["{operation}"]
      resources: ["deployments"]
    excludeResourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["*"]
      resources: ["deployments"]
      resourceNames: ["excluded"]
    objectSelector:
      matchExpressions:
      - {{key: skip, operator: DoesNotExist}}
  validations:
  - expression: "{expression}"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: b
spec:
  policyName: p
  validationActions: [Deny]
"""


def policy(
    write: Write, *, expression: str = "false", failure: str = "Fail", operation: str = "CREATE"
) -> Path:
    return write("p.yaml", POLICY.format(expression=expression, failure=failure, operation=operation))


def test_operations_exclusions_and_object_selector(write: Write) -> None:
    assert len(vap.load([policy(write)]).review(deployment())) == 1
    assert vap.load([policy(write, operation="UPDATE")]).review(deployment()) == []  # a check is a CREATE
    excluded = deployment()
    excluded["metadata"]["name"] = "excluded"
    assert vap.load([policy(write)]).review(excluded) == []
    assert vap.load([policy(write)]).review(deployment(skip="yes")) == []


def test_failure_policy_decides_what_an_error_is(write: Write) -> None:
    [fail] = vap.load([policy(write, expression="object.spec.nope")]).review(deployment())
    assert fail.kind == "violation"
    assert "expression 'object.spec.nope' resulted in error" in fail.message
    [ignore] = vap.load([policy(write, expression="object.spec.nope", failure="Ignore")]).review(deployment())
    assert ignore.kind == "ignored"
    [not_bool] = vap.load([policy(write, expression="object.spec.replicas")]).review(deployment())
    assert "returned 7, not a bool" in not_bool.message


def test_authorizer_is_not_evaluable_offline(write: Write) -> None:
    expression = "authorizer.group('apps').resource('deployments').check('create').allowed()"
    [outcome] = vap.load([policy(write, expression=expression)]).review(deployment())
    assert outcome.kind == "unevaluable"
    assert "calls `authorizer`" in outcome.message
    assert "cannot be evaluated offline" in outcome.message


def test_a_policy_without_binding_is_noted(write: Write) -> None:
    text = POLICY.format(expression="false", failure="Fail", operation="CREATE")
    policies = vap.load([write("p.yaml", text[: text.index("---")])])
    assert policies.review(deployment()) == []
    assert policies.notes == [
        f"ValidatingAdmissionPolicy p ({policies.policies['p'].where}) has no binding: "
        "the API server does not enforce it"
    ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('"false"', '"object.spec.replicas <"'),
            "ValidatingAdmissionPolicy 'p': spec.validations[0].expression (line 1, column 23): Syntax error",
        ),
        (
            ('"false"', "\"size(object) + 'a'\""),
            "spec.validations[0].expression (line 1, column 14): found no matching overload for '_+_'",
        ),
        (
            ("policyName: p", "policyName: q"),
            "binds policy 'q', which is not among the admission policies given",
        ),
        (("[Deny]", "[Deny, Warn]"), "spec.validationActions cannot hold both Deny and Warn"),
        (("[Deny]", "[Block]"), "spec.validationActions must list Deny, Warn or Audit"),
        (("failurePolicy: Fail", "failurePolicy: Maybe"), "spec.failurePolicy must be Fail or Ignore"),
        (("  matchConstraints:\n", "  matchConstraintz:\n"), "spec.matchConstraints is required"),
        (
            ('operations: ["CREATE"]', 'operations: ["MAKE"]'),
            "'MAKE' is not CREATE, UPDATE, DELETE, CONNECT or *",
        ),
        (("operator: DoesNotExist", "operator: Missing"), "operator 'Missing' is not In, NotIn"),
        (
            ("      - {key: skip, operator: DoesNotExist}\n", "      matchLabels: x\n"),
            "spec.matchConstraints.objectSelector.matchLabels must be a mapping of strings to strings",
        ),
        (
            ("operator: DoesNotExist}", "operator: In, values: x}"),
            "objectSelector.matchExpressions[0].values must be a list of strings",
        ),
        (
            ('resources: ["deployments"]', "resources: deployments"),
            "resourceRules[0].resources must be a list",
        ),
        (
            ("  policyName: p\n", "  policyName: p\n  paramRef: {name: x, parameterNotFoundAction: Deny}\n"),
            "has a paramRef, but policy 'p' has no paramKind",
        ),
        (
            (
                "  failurePolicy: Fail\n",
                "  failurePolicy: Fail\n  paramKind: {apiVersion: v1, kind: ConfigMap}\n",
            ),
            "has no paramRef, but policy 'p' has paramKind ConfigMap (v1)",
        ),
        (
            ("  failurePolicy: Fail\n", "  failurePolicy: Fail\n  paramKind: {kind: ConfigMap}\n"),
            "spec.paramKind needs apiVersion and kind",
        ),
    ],
)
def test_bad_input_is_a_clear_policy_error(write: Write, edit: tuple[str, str], message: str) -> None:
    text = POLICY.format(expression="false", failure="Fail", operation="CREATE")
    assert edit[0] in text
    path = write("p.yaml", text.replace(edit[0], edit[1], 1))
    with pytest.raises(PolicyError) as info:
        vap.load([path])
    assert message in info.value.message
    assert info.value.where.startswith(str(path))


@pytest.mark.parametrize(
    ("kind", "resource"),
    [
        ("Deployment", "deployments"),
        ("Ingress", "ingresses"),
        ("NetworkPolicy", "networkpolicies"),
        ("Endpoints", "endpoints"),
        ("Gateway", "gateways"),
    ],
)
def test_resource_names(kind: str, resource: str) -> None:
    assert vap.resource_of(kind) == resource


CONDITIONS = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: p}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}}
  matchConditions:
  - {{name: errs, expression: "object.spec.missing == 'x'"}}
  - {{name: second, expression: "{second}"}}
  validations:
  - expression: "false"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: b}}
spec: {{policyName: p, validationActions: [Deny]}}
"""


@pytest.mark.parametrize(("second", "expected"), [("false", []), ("true", ["violation"])])
def test_a_false_match_condition_skips_the_policy_whatever_errors_come_before(
    write: Write, second: str, expected: list[str]
) -> None:
    policies = vap.load([write("p.yaml", CONDITIONS.format(second=second))])
    outcomes = policies.review(deployment(), objects=NAMESPACES)
    assert [o.kind for o in outcomes] == expected
    if outcomes:  # none false, one errored: failurePolicy Fail, naming the condition that errored
        assert outcomes[0].message.startswith("matchCondition 'errs' failed")


HPA_POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: hpa-max}}
spec:
  matchConstraints:{match_policy}
    resourceRules:
    - {{apiGroups: [autoscaling], apiVersions: [v2], operations: [CREATE],
       resources: [horizontalpodautoscalers]}}
  validations:
  - {{expression: "object.spec.maxReplicas <= 10", message: "maxReplicas > 10"}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: b}}
spec: {{policyName: hpa-max, validationActions: [Deny]}}
"""


def hpa(version: str) -> dict[str, Any]:
    return {
        "apiVersion": f"autoscaling/{version}",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h", "namespace": "default"},
        "spec": {"maxReplicas": 500},
    }


def test_equivalent_match_policy_without_conversion_is_could_not_evaluate(write: Write) -> None:
    policies = vap.load([write("p.yaml", HPA_POLICY.format(match_policy=""))])  # Equivalent: the default
    [outcome] = policies.review(hpa("v1"), objects=NAMESPACES)
    assert (outcome.kind, outcome.rule) == ("unevaluable", "hpa-max/matchPolicy")
    assert outcome.message.startswith(
        "could not evaluate: matchPolicy Equivalent needs conversion from autoscaling/v1 to autoscaling/v2"
    )
    assert [o.kind for o in policies.review(hpa("v2"), objects=NAMESPACES)] == ["violation"]
    exact = vap.load([write("e.yaml", HPA_POLICY.format(match_policy="\n    matchPolicy: Exact"))])
    assert exact.review(hpa("v1"), objects=NAMESPACES) == []
    with pytest.raises(PolicyError, match="matchPolicy must be Equivalent or Exact, not 'Loose'"):
        vap.load([write("l.yaml", HPA_POLICY.format(match_policy="\n    matchPolicy: Loose"))])
