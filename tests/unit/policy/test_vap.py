"""ValidatingAdmissionPolicies: the Kubernetes documentation's examples, matching, params, bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.vap import binding as binding_dict
from support.vap import binding_yaml
from support.vap import rule as resource_rule

from trustgate import kinds
from trustgate.errors import PolicyError
from trustgate.policy import cel, vap

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
""" + binding_yaml("b", policy="p")


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
    [fail] = vap.load([policy(write, expression="object.spec.nope == 1")]).review(deployment())
    assert fail.kind == "violation"
    assert "expression 'object.spec.nope == 1' resulted in error" in fail.message
    [ignore] = vap.load([policy(write, expression="object.spec.nope == 1", failure="Ignore")]).review(
        deployment()
    )
    assert ignore.kind == "ignored"
    # The API server types `request` (trustgate does not): a value that is no bool at run time
    # is a failure under failurePolicy.
    [not_bool] = vap.load([policy(write, expression="request.name")]).review(deployment())
    assert "not a bool" in not_bool.message


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


# Every built-in kind of the table, with the resource name and scope Kubernetes serves it under
# (the REST storage paths of kube-apiserver through 1.34, and of removed APIs when they were
# served): what `resource_of`'s rule of thumb gets wrong must be stored.
BUILT_IN_TEXT = """\
core Binding bindings Namespaced
core ComponentStatus componentstatuses Cluster
core ConfigMap configmaps Namespaced
core Endpoints endpoints Namespaced
core Event events Namespaced
core LimitRange limitranges Namespaced
core Namespace namespaces Cluster
core Node nodes Cluster
core PersistentVolume persistentvolumes Cluster
core PersistentVolumeClaim persistentvolumeclaims Namespaced
core Pod pods Namespaced
core PodTemplate podtemplates Namespaced
core ReplicationController replicationcontrollers Namespaced
core ResourceQuota resourcequotas Namespaced
core Secret secrets Namespaced
core Service services Namespaced
core ServiceAccount serviceaccounts Namespaced
admissionregistration.k8s.io MutatingAdmissionPolicy mutatingadmissionpolicies Cluster
admissionregistration.k8s.io MutatingAdmissionPolicyBinding mutatingadmissionpolicybindings Cluster
admissionregistration.k8s.io MutatingWebhookConfiguration mutatingwebhookconfigurations Cluster
admissionregistration.k8s.io ValidatingAdmissionPolicy validatingadmissionpolicies Cluster
admissionregistration.k8s.io ValidatingAdmissionPolicyBinding validatingadmissionpolicybindings Cluster
admissionregistration.k8s.io ValidatingWebhookConfiguration validatingwebhookconfigurations Cluster
apiextensions.k8s.io CustomResourceDefinition customresourcedefinitions Cluster
apiregistration.k8s.io APIService apiservices Cluster
apps ControllerRevision controllerrevisions Namespaced
apps DaemonSet daemonsets Namespaced
apps Deployment deployments Namespaced
apps ReplicaSet replicasets Namespaced
apps StatefulSet statefulsets Namespaced
auditregistration.k8s.io AuditSink auditsinks Cluster
authentication.k8s.io SelfSubjectReview selfsubjectreviews Cluster
authentication.k8s.io TokenReview tokenreviews Cluster
authorization.k8s.io LocalSubjectAccessReview localsubjectaccessreviews Namespaced
authorization.k8s.io SelfSubjectAccessReview selfsubjectaccessreviews Cluster
authorization.k8s.io SelfSubjectRulesReview selfsubjectrulesreviews Cluster
authorization.k8s.io SubjectAccessReview subjectaccessreviews Cluster
autoscaling HorizontalPodAutoscaler horizontalpodautoscalers Namespaced
batch CronJob cronjobs Namespaced
batch Job jobs Namespaced
certificates.k8s.io CertificateSigningRequest certificatesigningrequests Cluster
certificates.k8s.io ClusterTrustBundle clustertrustbundles Cluster
certificates.k8s.io PodCertificateRequest podcertificaterequests Namespaced
coordination.k8s.io Lease leases Namespaced
coordination.k8s.io LeaseCandidate leasecandidates Namespaced
discovery.k8s.io EndpointSlice endpointslices Namespaced
events.k8s.io Event events Namespaced
extensions DaemonSet daemonsets Namespaced
extensions Deployment deployments Namespaced
extensions Ingress ingresses Namespaced
extensions NetworkPolicy networkpolicies Namespaced
extensions PodSecurityPolicy podsecuritypolicies Cluster
extensions ReplicaSet replicasets Namespaced
flowcontrol.apiserver.k8s.io FlowSchema flowschemas Cluster
flowcontrol.apiserver.k8s.io PriorityLevelConfiguration prioritylevelconfigurations Cluster
internal.apiserver.k8s.io StorageVersion storageversions Cluster
networking.k8s.io ClusterCIDR clustercidrs Cluster
networking.k8s.io IPAddress ipaddresses Cluster
networking.k8s.io Ingress ingresses Namespaced
networking.k8s.io IngressClass ingressclasses Cluster
networking.k8s.io NetworkPolicy networkpolicies Namespaced
networking.k8s.io ServiceCIDR servicecidrs Cluster
node.k8s.io RuntimeClass runtimeclasses Cluster
policy Eviction evictions Namespaced
policy PodDisruptionBudget poddisruptionbudgets Namespaced
policy PodSecurityPolicy podsecuritypolicies Cluster
rbac.authorization.k8s.io ClusterRole clusterroles Cluster
rbac.authorization.k8s.io ClusterRoleBinding clusterrolebindings Cluster
rbac.authorization.k8s.io Role roles Namespaced
rbac.authorization.k8s.io RoleBinding rolebindings Namespaced
resource.k8s.io DeviceClass deviceclasses Cluster
resource.k8s.io DeviceTaintRule devicetaintrules Cluster
resource.k8s.io PodSchedulingContext podschedulingcontexts Namespaced
resource.k8s.io ResourceClaim resourceclaims Namespaced
resource.k8s.io ResourceClaimParameters resourceclaimparameters Namespaced
resource.k8s.io ResourceClaimTemplate resourceclaimtemplates Namespaced
resource.k8s.io ResourceClass resourceclasses Cluster
resource.k8s.io ResourceClassParameters resourceclassparameters Namespaced
resource.k8s.io ResourceSlice resourceslices Cluster
scheduling.k8s.io PriorityClass priorityclasses Cluster
settings.k8s.io PodPreset podpresets Namespaced
storage.k8s.io CSIDriver csidrivers Cluster
storage.k8s.io CSINode csinodes Cluster
storage.k8s.io CSIStorageCapacity csistoragecapacities Namespaced
storage.k8s.io StorageClass storageclasses Cluster
storage.k8s.io VolumeAttachment volumeattachments Cluster
storage.k8s.io VolumeAttributesClass volumeattributesclasses Cluster
storagemigration.k8s.io StorageVersionMigration storageversionmigrations Cluster
"""
BUILT_IN = {
    ("" if group == "core" else group, kind): (plural, scope == "Namespaced")
    for group, kind, plural, scope in (line.split() for line in BUILT_IN_TEXT.splitlines())
}


@pytest.mark.parametrize(("group_kind", "served"), BUILT_IN.items(), ids=[f"{g}/{k}" for g, k in BUILT_IN])
def test_built_in_kinds_have_their_real_resource_name_and_scope(
    group_kind: tuple[str, str], served: tuple[str, bool]
) -> None:
    assert vap.PolicySet().kind_of(*group_kind) == served


def test_the_built_in_table_is_checked_whole() -> None:
    """A kind added to the table needs its real plural here too."""
    assert set(BUILT_IN) == kinds.CLUSTER_SCOPED | kinds.NAMESPACED


def test_a_rule_for_resource_claim_parameters_matches_them(write: Write) -> None:
    """resource.k8s.io/v1alpha2 served `resourceclaimparameters`, not `...parameterses`."""
    rule = {"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["resourceclaimparameters"]}
    obj = {
        "apiVersion": "resource.k8s.io/v1alpha2",
        "kind": "ResourceClaimParameters",
        "metadata": {"name": "x", "namespace": "ns1"},
    }
    [outcome] = _match_policy(write, rule).review(obj)
    assert outcome.kind == "violation"


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


def _policy_with(
    variables: list[dict[str, str]],
    validations: list[dict[str, str]],
    failure_policy: str = "Fail",
    *,
    group: str = "apps",
    resource: str = "deployments",
) -> vap.PolicySet:
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "p"},
        "spec": {
            "failurePolicy": failure_policy,
            "matchConstraints": {"resourceRules": [resource_rule(["CREATE"], [resource], groups=[group])]},
            "variables": variables,
            "validations": validations,
        },
    }
    binding = binding_dict("b", policy="p")
    return vap.PolicySet(
        policies={"p": vap.parse_policy(policy, file="p.yaml")},
        bindings=[vap.parse_binding(binding, file="p.yaml")],
    )


def _deployment(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n"},
        "spec": spec,
    }


def test_optional_variables_work_as_in_the_api_server() -> None:
    # `object.spec.?replicas` is an optional: the runtime cannot hand it to Python, so the
    # expressions that read it get it written out; a variable may read an optional one too.
    policies = _policy_with(
        [
            {"name": "replicas", "expression": "object.spec.?replicas"},
            {"name": "wanted", "expression": "variables.replicas.orValue(1)"},
            {"name": "twice", "expression": "optional.of(variables.wanted * 2)"},
            {
                "name": "more",
                "expression": "variables.twice.value() >= 4 ? variables.replicas : optional.none()",
            },
        ],
        [
            {
                "expression": "variables.wanted >= 2 && variables.more.hasValue()",
                "messageExpression": "'replicas: ' + string(variables.replicas.orValue(0))",
            }
        ],
    )
    assert policies.review(_deployment({"replicas": 3})) == []
    assert [o.message for o in policies.review(_deployment({"replicas": 1}))] == ["replicas: 1"]
    # Offline, the API server's default (replicas 1) is what the policy reads; an object taken
    # as given (at admission) without the field reads optional.none().
    assert [o.message for o in policies.review(_deployment({}))] == ["replicas: 1"]
    assert [o.message for o in policies.review(_deployment({}), admission={})] == ["replicas: 0"]
    [outcome] = policies.review(_deployment({"replicas": 1}))
    assert outcome.rule == "p/0"


TIER = [{"name": "tier", "expression": "object.metadata.?labels.?tier"}]


def _labelled(tier: str, containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    obj = _deployment({"template": {"spec": {"containers": containers or [{"name": "a", "image": "x"}]}}})
    obj["metadata"]["labels"] = {"tier": tier}
    return obj


@pytest.mark.parametrize(
    "expression",
    [
        "variables.tier.orValue('') != 'bad'",
        "variables['tier'].orValue('') != 'bad'",
        'variables["tier"].orValue(\'\') != "bad"',
        "variables [ 'tier' ] .orValue('') != 'bad' && variables . tier.hasValue()",
        "variables.tier.orValue('') != 'bad' || 'variables.tier' == variables['tier'].orValue('')",
        # a comprehension variable named as a top-level one: the optional variable's own
        # expression (object.metadata...) must still read the object, not the loop variable
        "object.spec.template.spec.containers.all(object, variables.tier.orValue('') != 'bad')",
        "cel.bind(object, 1, [2].exists(request, variables.tier.orValue('') != 'bad'))",
        "object.spec.template.spec.containers.all(c, variables.tier.orValue('') != 'bad')",
        "variables.tier.optMap(t, t + '!').orValue('') != 'bad!'",  # the macro reads its target twice
    ],
)
def test_an_optional_variable_is_read_in_any_spelling_as_the_api_server_does(expression: str) -> None:
    # Under failurePolicy Ignore an evaluation error would pass the object: the API server denies it.
    policies = _policy_with(TIER, [{"expression": expression}], failure_policy="Ignore")
    [outcome] = policies.review(_labelled("bad", [{"name": "a", "image": "x", "metadata": {}}]))
    assert (outcome.kind, outcome.rule) == ("violation", "p/0")
    assert outcome.message == f"failed expression: {expression}"
    assert policies.review(_labelled("good", [{"name": "a", "image": "x", "metadata": {}}])) == []


def test_optional_variables_reading_each_other_in_the_index_spelling() -> None:
    variables = [*TIER, {"name": "t2", "expression": "variables['tier'].orValue('x')"}]
    policies = _policy_with(variables, [{"expression": "variables['t2'] != 'bad'"}], failure_policy="Ignore")
    assert [o.kind for o in policies.review(_labelled("bad"))] == ["violation"]
    assert policies.review(_labelled("good")) == []


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("variables.?tier.hasValue()", "reads the optional variable 'tier' other than by its name"),
        ("!has(variables.tier)", "reads the optional variable 'tier' other than by its name"),
        ("'tier' in variables", "reads `variables` whole or by a computed key"),
        ("variables['ti' + 'er'].orValue('') != 'bad'", "reads `variables` whole or by a computed key"),
        ("size(variables) == 1", "reads `variables` whole or by a computed key"),
        (
            "[{'tier': optional.of('a')}].all(variables, variables.tier.orValue('') != 'bad')",
            "reads `variables` where a comprehension or cel.bind variable named 'variables' may hide it",
        ),
        (
            "cel.bind(variables, {'tier': optional.none()}, variables.tier.orValue('') != 'bad')",
            "reads `variables` where a comprehension or cel.bind variable named 'variables' may hide it",
        ),
    ],
)
def test_an_optional_variable_read_where_it_cannot_be_bound_is_not_evaluable(
    expression: str, why: str
) -> None:
    for failure_policy in ("Fail", "Ignore"):
        policies = _policy_with(TIER, [{"expression": expression}], failure_policy=failure_policy)
        for tier in ("bad", "good"):
            [outcome] = policies.review(_labelled(tier))
            assert (outcome.kind, outcome.rule) == ("unevaluable", "p/variables")
            assert f"spec.validations[0].expression {why}" in outcome.message
            assert outcome.message.endswith("so this policy cannot be evaluated offline")
    # Without optional variables the same expression is evaluated (whatever it then makes of them).
    plain = _policy_with([{"name": "tier", "expression": "'bad'"}], [{"expression": expression}])
    assert all(o.kind != "unevaluable" for o in plain.review(_labelled("bad")))
    # The same code from a Gatekeeper template (no per-object report): refused when compiled.
    spec = {"variables": TIER, "validations": [{"expression": expression}]}
    with pytest.raises(PolicyError, match="cannot be evaluated offline"):
        vap.parse_code(spec, label="t", where="t.yaml", prefix="", variables=("object", "variables"))


def test_code_that_cannot_be_evaluated_offline_is_never_run() -> None:
    spec = {"variables": TIER, "validations": [{"expression": "variables.?tier.hasValue()"}]}
    code = vap.parse_code(spec, label="t", where="t.yaml", prefix="", variables=("object", "variables"),
                          unevaluable_ok=True)  # fmt: skip
    with pytest.raises(PolicyError, match="cannot be evaluated offline"):
        vap.run_code(code, {"object": _labelled("bad")})


def test_the_length_limit_is_on_what_the_policy_wrote_not_on_the_bound_variables() -> None:
    # Each optional variable is bound in the expression that reads it; the API server limits
    # the expression as written (5,000 characters), so the binding must not trip that limit.
    long = " || ".join(["object.metadata.?labels.?tier.orValue('') == 'x'"] * 60)
    variables = [
        {"name": "a", "expression": f"({long}) ? optional.of(1) : optional.none()"},
        {"name": "b", "expression": f"({long}) ? optional.none() : optional.of(2)"},
    ]
    assert all(len(v["expression"]) < cel.MAX_EXPRESSION_LENGTH for v in variables)
    policies = _policy_with(
        variables, [{"expression": "variables.a.orValue(0) + variables.b.orValue(0) == 2"}]
    )
    assert policies.review(_labelled("y")) == []
    assert [o.kind for o in policies.review(_labelled("x"))] == ["violation"]


def test_a_value_that_cannot_leave_the_runtime_is_an_error_not_a_crash() -> None:
    policies = _policy_with([], [{"expression": "[1, 2].first() == optional.of(1) ? true : false"}])
    assert policies.review(_deployment({})) == []
    program = cel.compile_expression("object.?spec", variables=["object"])
    with pytest.raises(cel.CelEvalError, match="optional"):
        program.evaluate({"object": {"spec": 1}})


def test_variables_reading_variables_see_each_value() -> None:
    policies = _policy_with(
        [
            {"name": "a", "expression": "object.spec.replicas"},
            {"name": "b", "expression": "variables.a + 1"},
            {"name": "c", "expression": "variables.b * variables.a"},
        ],
        [{"expression": "variables.c == 12", "messageExpression": "'c is ' + string(variables.c)"}],
    )
    assert policies.review(_deployment({"replicas": 3})) == []
    assert [o.message for o in policies.review(_deployment({"replicas": 2}))] == ["c is 6"]


def _annotated(annotations: list[dict[str, str]], failure_policy: str = "Fail") -> vap.Policy:
    policies = _policy_with([], [{"expression": "true"}])
    policy = policies.policies["p"]
    spec = {
        "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                "operations": ["CREATE"], "resources": ["deployments"]}]},
        "failurePolicy": failure_policy,
        "auditAnnotations": annotations,
    }  # fmt: skip
    obj = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy"}
    return vap.parse_policy({**obj, "metadata": {"name": policy.name}, "spec": spec}, file="p.yaml")


def test_audit_annotations_are_evaluated_and_their_errors_follow_failure_policy() -> None:
    # The Kubernetes documentation's example: an annotation for high replica counts.
    policy = _annotated(
        [
            {
                "key": "high-replica-count",
                "valueExpression": "object.spec.replicas > 50 ? 'Deployment spec.replicas set to ' "
                "+ string(object.spec.replicas) : null",
            }
        ]
    )
    values: dict[str, str] = {}
    activation = {"object": _deployment({"replicas": 60}), "oldObject": None, "request": {}}
    assert vap.run_code(policy.code, activation, annotations=values) == []
    assert values == {"high-replica-count": "Deployment spec.replicas set to 60"}
    values.clear()
    activation = {"object": _deployment({"replicas": 3}), "oldObject": None, "request": {}}
    assert vap.run_code(policy.code, activation, annotations=values) == []
    assert values == {}
    # No replicas: the valueExpression fails; under Fail the API server rejects the request.
    activation = {"object": _deployment({}), "oldObject": None, "request": {}}
    [failure] = vap.run_code(policy.code, activation, failure_policy="Fail")
    assert (failure.kind, failure.rule) == ("violation", "auditAnnotations/high-replica-count")
    assert "resulted in error" in failure.message
    [ignored] = vap.run_code(policy.code, activation, failure_policy="Ignore")
    assert ignored.kind == "ignored"


def test_audit_annotation_values_must_be_strings_and_keys_qualified_names() -> None:
    # The API server types `object.spec.replicas` dyn: no string or null_type, refused when written.
    refused = r"valueExpression: must evaluate to one of \[string null_type\] but got dyn"
    with pytest.raises(PolicyError, match=refused):
        _annotated([{"key": "count", "valueExpression": "object.spec.replicas"}])
    # Code the API server's checks do not refuse (a Gatekeeper source): a value of another type
    # denies under either failurePolicy (validator.Validate: AuditAnnotationActionError).
    code = vap.parse_code(
        {"auditAnnotations": [{"key": "count", "valueExpression": "object.spec.replicas"}]},
        label="p", where="p.yaml", prefix="spec.", variables=["object", "oldObject", "request", "variables"],
    )  # fmt: skip
    activation = {"object": _deployment({"replicas": 3}), "oldObject": None, "request": {}}
    for failure_policy in ("Fail", "Ignore"):
        [failure] = vap.run_code(code, activation, failure_policy=failure_policy)
        assert (failure.kind, failure.denies) == ("violation", True)
        assert "resulted in unsupported return type: int. Return type must be either string or null." in (
            failure.message
        )
    with pytest.raises(PolicyError, match=r"auditAnnotations\[0\].key must be a qualified name part"):
        _annotated([{"key": "bad key", "valueExpression": "'x'"}])
    with pytest.raises(PolicyError, match=r"auditAnnotations\[1\].key 'a' is given twice"):
        _annotated([{"key": "a", "valueExpression": "'x'"}, {"key": "a", "valueExpression": "'y'"}])
    with pytest.raises(PolicyError, match=r"auditAnnotations\[0\].valueExpression \(line 1, column"):
        _annotated([{"key": "a", "valueExpression": "object.spec +"}])


def test_an_update_has_the_old_object_and_matches_update_rules() -> None:
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "no-scale-down"},
        "spec": {
            "matchConstraints": {
                "resourceRules": [
                    {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"],
                     "resources": ["deployments"]}
                ],
                "objectSelector": {"matchLabels": {"guarded": "yes"}},
            },
            "validations": [
                {
                    "expression": "object.spec.replicas >= oldObject.spec.replicas",
                    "messageExpression": "request.operation + ': ' + string(oldObject.spec.replicas) "
                    "+ ' to ' + string(object.spec.replicas)",
                }
            ],
        },
    }  # fmt: skip
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "b"},
        "spec": {"policyName": "no-scale-down", "validationActions": ["Deny"]},
    }
    policies = vap.PolicySet(
        policies={"no-scale-down": vap.parse_policy(policy, file="p.yaml")},
        bindings=[vap.parse_binding(binding, file="p.yaml")],
    )

    def deployment(replicas: int, labels: dict[str, str]) -> dict[str, Any]:
        obj = _deployment({"replicas": replicas})
        obj["metadata"]["labels"] = labels
        return obj

    guarded = {"guarded": "yes"}
    assert policies.review(deployment(1, guarded)) == []  # a create: the rule is for UPDATE
    assert policies.review(deployment(3, guarded), old=deployment(2, guarded)) == []
    [outcome] = policies.review(deployment(1, guarded), old=deployment(2, guarded))
    assert outcome.message == "UPDATE: 2 to 1"
    # The objectSelector matches when either version has the label, as in the API server.
    [outcome] = policies.review(deployment(1, {}), old=deployment(2, guarded))
    assert outcome.kind == "violation"
    assert policies.review(deployment(1, {}), old=deployment(2, {})) == []


def test_whether_a_review_needs_the_change_set() -> None:
    # Params and Namespaces come from the change set; a policy without them does not need it.
    assert not _policy_with([], [{"expression": "object.spec.replicas < 5"}]).needs_change_set
    assert _policy_with([], [{"expression": "namespaceObject.metadata.name != 'x'"}]).needs_change_set
    assert not _policy_with([], [{"expression": "'namespaceObject' != 'x'"}]).needs_change_set
    examples = vap.load([EXAMPLES / "demo-policy.yaml"])  # a namespaceSelector
    assert examples.needs_change_set


@pytest.mark.parametrize(
    ("validation", "error"),
    [
        (
            {"expression": "'yes'"},
            r"validations\[0\].expression: must evaluate to bool but got string",
        ),
        ({"expression": "size([1]) + 1"}, r"must evaluate to bool but got int"),
        (
            {"expression": "true", "messageExpression": "size(object.metadata.name)"},
            r"validations\[0\].messageExpression: must evaluate to string but got int",
        ),
    ],
)
def test_an_expression_of_the_wrong_type_is_refused_as_the_api_server_does(
    validation: dict[str, str], error: str
) -> None:
    with pytest.raises(PolicyError, match=error):
        _policy_with([], [validation])


def test_expressions_of_unknown_type_are_accepted() -> None:
    # Fields of `object` are dyn: the API server accepts an expression of them whose type is
    # the field's (`!` gives a bool, `string()` a string) and judges the value at run time.
    policies = _policy_with(
        [], [{"expression": "!object.spec.paused", "messageExpression": "string(object.spec.why)"}]
    )
    [outcome] = policies.review(_deployment({"paused": True, "why": "paused is true"}))
    assert outcome.message == "paused is true"


def test_review_hands_out_audit_annotations_as_the_api_server_publishes_them() -> None:
    # k8s.io/apiserver admission/plugin/policy/validating: the dispatcher cuts a value at 10 KiB
    # (maxAuditAnnotationValueLength); auditAnnotationCollector keys it `<policy>/<key>`, drops a
    # value another binding of the policy already gave and joins distinct ones with ", ".
    policy = _annotated(
        [
            {"key": "who", "valueExpression": "'replicas ' + string(object.spec.replicas)"},
            {"key": "big", "valueExpression": "string(object.spec.big)"},
            {"key": "none", "valueExpression": "null"},
        ]
    )

    def bound(name: str) -> vap.Binding:
        raw = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": policy.name, "validationActions": ["Deny"]},
        }
        return vap.parse_binding(raw, file="b.yaml")

    policies = vap.PolicySet(policies={policy.name: policy}, bindings=[bound("b1"), bound("b2")])
    annotations: dict[str, str] = {}
    big = "é" * 6000  # 12,000 bytes in UTF-8
    assert policies.review(_deployment({"replicas": 3, "big": big}), annotations=annotations) == []
    assert annotations == {"p/who": "replicas 3", "p/big": "é" * 5120}  # the same value once; null: none
    assert policies.review(_deployment({"replicas": 3, "big": "x"})) == []  # not asked: nothing kept


# -- matching as k8s.io/apiserver's rules.Matcher --------------------------------


def _match_policy(
    write: Write,
    rule: dict[str, Any],
    *,
    exclude: dict[str, Any] | None = None,
    expression: str = "false",
    name: str = "p.yaml",
) -> vap.PolicySet:
    constraints: dict[str, Any] = {"resourceRules": [{"operations": ["CREATE"], **rule}]}
    if exclude is not None:
        constraints["excludeResourceRules"] = [{"operations": ["*"], **exclude}]
    docs = [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "p"},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": constraints,
                "validations": [{"expression": expression}],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "b"},
            "spec": {"policyName": "p", "validationActions": ["Deny"]},
        },
    ]
    return vap.load([write(name, yaml.safe_dump_all(docs))])


CORE = {"apiGroups": [""], "apiVersions": ["v1"]}


@pytest.mark.parametrize(
    ("resources", "matched"),
    [
        (["pods/*"], True),
        (["*/*"], True),
        (["*"], True),
        (["pods"], True),
        (["pods/status"], False),
        (["*/scale"], False),
        (["services/*"], False),
    ],
)
def test_a_subresource_wildcard_matches_the_resource_itself(
    write: Write, resources: list[str], matched: bool
) -> None:
    """rules.go: `subMatch := sub == "*" || sub == opSub`; a request for pods has no
    subresource, so `pods/*` (and `*/*`) match it, `pods/status` does not."""
    outcomes = _match_policy(write, {**CORE, "resources": resources}).review(pod("nginx"))
    assert [o.kind for o in outcomes] == (["violation"] if matched else [])


def test_a_subresource_wildcard_in_exclude_resource_rules_excludes_the_resource(write: Write) -> None:
    """excludeResourceRules use the same rules.Matcher: `pods/*` excludes pods."""
    policies = _match_policy(write, {**CORE, "resources": ["*"]}, exclude={**CORE, "resources": ["pods/*"]})
    assert policies.review(pod("nginx")) == []


def _debug_request(*, requested: bool = True) -> dict[str, Any]:
    """The admission request of `kubectl debug` (pods/ephemeralcontainers), as the API server sends it."""
    request: dict[str, Any] = {
        "uid": "u-debug",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "subResource": "ephemeralcontainers",
        "name": "p",
        "namespace": "default",
        "operation": "UPDATE",
        "userInfo": {"username": "alice"},
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"},
    }
    if requested:
        request["requestKind"] = {"group": "", "version": "v1", "kind": "Pod"}
        request["requestResource"] = {"group": "", "version": "v1", "resource": "pods"}
        request["requestSubResource"] = "ephemeralcontainers"
    return request


@pytest.mark.parametrize(
    ("resources", "matched"),
    [
        (["pods/ephemeralcontainers"], True),
        (["pods/*"], True),
        (["*/*"], True),
        (["*/ephemeralcontainers"], True),
        (["pods"], False),
        (["*"], False),
        (["pods/status"], False),
        (["services/ephemeralcontainers"], False),
    ],
)
def test_at_admission_rules_match_the_requests_subresource(
    write: Write, resources: list[str], matched: bool
) -> None:
    """rules.go resource(): `resMatch && subMatch` against the request's resource and subresource.
    `kubectl debug` is an UPDATE of pods/ephemeralcontainers whose object is the Pod: rules for
    the subresource match it, `pods` and `*` (the main resource only) do not."""
    policies = _match_policy(write, {**CORE, "resources": resources, "operations": ["UPDATE"]})
    old = pod("nginx")
    new = {**old, "spec": {**old["spec"], "ephemeralContainers": [{"name": "d", "image": "busybox"}]}}
    outcomes = policies.review(new, old=old, admission=_debug_request())
    assert [o.kind for o in outcomes] == (["violation"] if matched else [])
    # Offline (no admission request) there is never a subresource: what matches pods matches.
    offline = policies.review(new, old=old)
    on_pods = resources[0] in ("pods", "*", "pods/*", "*/*")
    assert [o.kind for o in offline] == (["violation"] if on_pods else [])


def test_at_admission_exclude_resource_rules_see_the_subresource(write: Write) -> None:
    policies = _match_policy(
        write,
        {**CORE, "resources": ["pods/*"], "operations": ["UPDATE"]},
        exclude={**CORE, "resources": ["pods/ephemeralcontainers"]},
    )
    old = pod("nginx")
    assert policies.review(old, old=old, admission=_debug_request()) == []
    assert [o.kind for o in policies.review(old, old=old, admission={"uid": "u"})] == ["violation"]


@pytest.mark.parametrize("requested", [True, False])
def test_at_admission_cel_sees_the_requests_resource_and_subresource(write: Write, requested: bool) -> None:
    expression = (
        "request.subResource == 'ephemeralcontainers' && request.resource.resource == 'pods' && "
        "request.kind.kind == 'Pod' && request.requestKind.kind == 'Pod' && "
        "request.requestResource.resource == 'pods' && "
        "request.requestSubResource == 'ephemeralcontainers' && request.operation == 'UPDATE'"
    )
    policies = _match_policy(
        write,
        {**CORE, "resources": ["pods/ephemeralcontainers"], "operations": ["UPDATE"]},
        expression=f"!({expression})",
    )
    old = pod("nginx")
    found = policies.review(old, old=old, admission=_debug_request(requested=requested))
    assert [o.kind for o in found] == ["violation"]  # every field is the request's: the negation fails


APPS = {"apiGroups": ["apps"], "apiVersions": ["v1"]}


def _scale(replicas: int) -> dict[str, Any]:
    """The object of deployments/scale: an autoscaling/v1 Scale, as `kubectl scale` sends it."""
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": replicas},
        "status": {"replicas": 2, "selector": "app=web"},
    }


def _scale_request() -> dict[str, Any]:
    """The admission request of `kubectl scale deploy web` as the API server sends it."""
    scale = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    deployments = {"group": "apps", "version": "v1", "resource": "deployments"}
    return {
        "uid": "u-scale",
        "kind": scale,
        "resource": deployments,
        "subResource": "scale",
        "requestKind": scale,
        "requestResource": deployments,
        "requestSubResource": "scale",
        "name": "web",
        "namespace": "default",
        "operation": "UPDATE",
        "userInfo": {"username": "alice"},
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"},
    }


@pytest.mark.parametrize(
    ("rule", "matched"),
    [
        ({**APPS, "resources": ["deployments/scale"]}, True),
        ({**APPS, "resources": ["deployments/*"]}, True),
        ({**APPS, "resources": ["*/scale"]}, True),
        ({"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}, True),
        ({**APPS, "resources": ["deployments"]}, False),
        ({**APPS, "resources": ["replicasets/scale"]}, False),
        ({**APPS, "resources": ["deployments/status"]}, False),
        ({"apiGroups": ["autoscaling"], "apiVersions": ["v1"], "resources": ["*/*"]}, False),
        ({**APPS, "resources": ["deployments/scale"], "scope": "Cluster"}, False),
    ],
)
def test_at_admission_a_scale_is_matched_by_the_requests_resource_and_subresource(
    write: Write, rule: dict[str, Any], matched: bool
) -> None:
    """`kubectl scale` is an UPDATE of apps/v1 deployments/scale whose object is an autoscaling/v1
    Scale: rules.Matcher matches the request's resource and subresource, not the object's kind."""
    policies = _match_policy(
        write, {**rule, "operations": ["UPDATE"]}, expression="object.spec.replicas <= 5"
    )
    outcomes = policies.review(_scale(100), old=_scale(2), admission=_scale_request())
    assert [o.kind for o in outcomes] == (["violation"] if matched else [])
    assert policies.review(_scale(5), old=_scale(2), admission=_scale_request()) == []


def test_at_admission_cel_sees_the_scale_and_its_request(write: Write) -> None:
    expression = (
        "request.subResource == 'scale' && request.resource.group == 'apps' && "
        "request.resource.resource == 'deployments' && request.kind.kind == 'Scale' && "
        "request.kind.group == 'autoscaling' && request.name == 'web' && "
        "request.namespace == 'default' && object.kind == 'Scale' && oldObject.spec.replicas == 2"
    )
    policies = _match_policy(
        write,
        {**APPS, "resources": ["deployments/scale"], "operations": ["UPDATE"]},
        expression=f"!({expression})",
    )
    found = policies.review(_scale(3), old=_scale(2), admission=_scale_request())
    assert [o.kind for o in found] == ["violation"]  # every field is the request's: the negation fails


RBAC = {"apiGroups": ["rbac.authorization.k8s.io"], "apiVersions": ["v1"]}


def cluster_role(namespace: str | None = "default") -> dict[str, Any]:
    meta = {"name": "r"} if namespace is None else {"name": "r", "namespace": namespace}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": meta,
        "rules": [],
    }


def test_a_stray_namespace_on_a_cluster_scoped_kind_is_ignored(write: Write) -> None:
    """rules.go scope(): Cluster matches a request whose namespace is empty; for a cluster-scoped
    resource the request namespace comes from the URL (none), and create.go's
    EnsureObjectNamespaceMatchesRequestNamespace clears the object's before admission."""
    rule = {**RBAC, "resources": ["clusterroles"], "scope": "Cluster"}
    [outcome] = _match_policy(write, rule).review(cluster_role())
    assert outcome.kind == "violation"
    namespaced = {**RBAC, "resources": ["clusterroles"], "scope": "Namespaced"}
    assert _match_policy(write, namespaced).review(cluster_role()) == []
    reads = "'namespace' in object.metadata || request.namespace != ''"
    allow = _match_policy(write, {**RBAC, "resources": ["*"]}, expression=f"!({reads})")
    assert allow.review(cluster_role()) == []


@pytest.mark.parametrize(
    ("api_version", "kind", "resource"),
    [
        ("storage.k8s.io/v1beta1", "VolumeAttributesClass", "volumeattributesclasses"),
        ("networking.k8s.io/v1", "IPAddress", "ipaddresses"),
        ("networking.k8s.io/v1", "ServiceCIDR", "servicecidrs"),
        ("certificates.k8s.io/v1beta1", "ClusterTrustBundle", "clustertrustbundles"),
        ("resource.k8s.io/v1", "DeviceClass", "deviceclasses"),
        ("resource.k8s.io/v1", "ResourceSlice", "resourceslices"),
    ],
)
def test_built_in_cluster_scoped_kinds_match_scope_cluster(
    write: Write, api_version: str, kind: str, resource: str
) -> None:
    """These kinds are served cluster-scoped (their registries' NamespaceScoped() is false)."""
    group, _, version = api_version.rpartition("/")
    rule = {"apiGroups": [group], "apiVersions": [version], "resources": [resource], "scope": "Cluster"}
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    [outcome] = _match_policy(write, rule).review(obj)
    assert outcome.kind == "violation"


def crd(group: str, kind: str, plural: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": scope, "names": {"kind": kind, "plural": plural}},
    }


def test_a_crd_does_not_change_a_built_in_kind() -> None:
    """The API server serves networking.k8s.io Ingress from its own handler, whatever a CRD says."""
    policies = vap.PolicySet()
    policies.add_crd(crd("networking.k8s.io", "Ingress", "ingressez", "Cluster"))
    assert policies.kind_of("networking.k8s.io", "Ingress") == ("ingresses", True)


ISSUER = {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "ci"}}
REDIS = {"apiVersion": "redis.example.com/v1", "kind": "Redis", "metadata": {"name": "r", "namespace": "a"}}


def test_a_custom_kind_takes_its_scope_from_its_crd(write: Write) -> None:
    """The API server serves a custom resource with the CRD's spec.scope; scope Cluster matches it."""
    rule = {"apiGroups": ["cert-manager.io"], "apiVersions": ["v1"], "resources": ["clusterissuers"]}
    policy = _match_policy(write, {**rule, "scope": "Cluster"}).policies["p"]
    policies = vap.PolicySet(policies={"p": policy}, bindings=_match_policy(write, rule).bindings)
    policies.add_crd(crd("cert-manager.io", "ClusterIssuer", "clusterissuers", "Cluster"))
    [outcome] = policies.review(ISSUER)
    assert outcome.kind == "violation"
    namespaced = vap.PolicySet(policies={"p": policy}, bindings=policies.bindings)
    namespaced.add_crd(crd("cert-manager.io", "ClusterIssuer", "clusterissuers", "Namespaced"))
    assert namespaced.review({**ISSUER, "metadata": {"name": "ci", "namespace": "a"}}) == []


def test_a_custom_kind_of_unknown_scope_fails_closed_where_its_scope_decides(write: Write) -> None:
    """Without its CRD the scope is unknown: a binding that applies under one scope and not the
    other cannot be decided (could not evaluate when it would deny, never a pass)."""
    rule = {"apiGroups": ["cert-manager.io"], "apiVersions": ["v1"], "resources": ["clusterissuers"]}
    [outcome] = _match_policy(write, {**rule, "scope": "Cluster"}).review(
        {**ISSUER, "metadata": {"name": "ci", "namespace": "a"}}
    )
    assert outcome.kind == "unevaluable"
    assert "scope and resource name are unknown" in outcome.message
    # a rule for every scope and resource decides without the CRD
    [denied] = _match_policy(write, {**rule, "resources": ["*"]}).review(ISSUER)
    assert denied.kind == "violation"


WIDGET = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "team-a"}}
TEAM_A = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"env": "dev"}}}


@pytest.mark.parametrize(
    "expression",
    [
        "namespaceObject.metadata.labels['env'] == 'dev'",
        "request.namespace != ''",
        "has(object.metadata.namespace)",
    ],
)
def test_a_custom_kind_of_unknown_scope_is_evaluated_under_both_scopes(write: Write, expression: str) -> None:
    """A kind of unknown scope matched under both scopes is evaluated under both: cluster-scoped,
    the API server clears the object's namespace (request.namespace '', namespaceObject null),
    so a policy that passes it as namespaced may deny it. Where they differ: exit 3, never a pass."""
    rule = {"apiGroups": ["example.com"], "apiVersions": ["*"], "resources": ["*"]}
    [outcome] = _match_policy(write, rule, expression=expression).review(WIDGET, objects=[TEAM_A])
    assert (outcome.kind, outcome.rule) == ("unevaluable", "p/0")
    assert "differently as a namespaced and as a cluster-scoped kind" in outcome.message
    assert "if it is cluster-scoped the policy denies" in outcome.message
    for scope, expected in (("Cluster", ["violation"]), ("Namespaced", [])):
        policies = _match_policy(write, rule, expression=expression)
        policies.add_crd(crd("example.com", "Widget", "widgets", scope))
        assert [o.kind for o in policies.review(WIDGET, objects=[TEAM_A])] == expected


def test_a_custom_kind_of_unknown_scope_decided_alike_under_both_scopes_is_decided(write: Write) -> None:
    """Where both scopes give the same outcome, the scope does not matter: a pass or a deny."""
    rule = {"apiGroups": ["example.com"], "apiVersions": ["*"], "resources": ["*"]}
    assert _match_policy(write, rule, expression="object.metadata.name == 'w'").review(WIDGET) == []
    [denied] = _match_policy(write, rule, expression="object.metadata.name != 'w'").review(WIDGET)
    assert denied.kind == "violation"


def test_a_custom_kind_is_matched_by_its_crd_plural(write: Write) -> None:
    """The request's resource is the CRD's spec.names.plural (`redis`), not a guess (`redises`)."""
    rule = {"apiGroups": ["redis.example.com"], "apiVersions": ["v1"], "resources": ["redis"]}
    guessed = _match_policy(write, rule)
    [unknown] = guessed.review(REDIS)
    assert unknown.kind == "unevaluable"  # the plural is a guess without the CRD: never a pass
    policies = _match_policy(write, rule)
    policies.add_crd(crd("redis.example.com", "Redis", "redis", "Namespaced"))
    [outcome] = policies.review(REDIS)
    assert outcome.kind == "violation"
    policies.add_crd(crd("redis.example.com", "Redis", "redisinstances", "Namespaced"))
    assert policies.review(REDIS) == []


@pytest.mark.parametrize(
    "expression",
    [
        ".authorizer.group('apps').resource('deployments').check('create').allowed()",
        "object.x == 1 // don't\n || authorizer.group('apps').resource('d').check('create').allowed()",
    ],
)
def test_authorizer_is_found_from_the_checked_ast(write: Write, expression: str) -> None:
    """cel-go resolves `.authorizer` to the root variable, and comments are not in the AST: both
    policies call the authorizer in the API server, so offline they cannot be evaluated."""
    [outcome] = _match_policy(write, {"apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["*"]},
                              expression=expression).review(deployment())  # fmt: skip
    assert outcome.kind == "unevaluable"
    assert "calls `authorizer`" in outcome.message


def test_namespace_object_of_a_namespace_not_given_is_not_evaluable(write: Write) -> None:
    """The API server's validating dispatcher reads the request's Namespace (GetNamespace) for
    every namespaced request, so `namespaceObject` is never null there: offline, without the
    Namespace, a policy reading it cannot be evaluated (never a pass on a null)."""
    rule = {"apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"]}
    expression = "namespaceObject == null || namespaceObject.metadata.name != 'elsewhere'"
    policies = _match_policy(write, rule, expression=expression)
    [outcome] = policies.review(deployment(namespace="elsewhere"), objects=NAMESPACES)
    assert (outcome.kind, outcome.rule) == ("unevaluable", "p/namespaceObject")
    assert "Namespace 'elsewhere' is not in the change set" in outcome.message
    [no_namespace] = policies.review(deployment(namespace=""), objects=NAMESPACES)
    assert no_namespace.kind == "unevaluable"  # kubectl's namespace: unknown here
    given = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}}
    [denied] = policies.review(deployment(namespace="elsewhere"), objects=[given])
    assert denied.kind == "violation"
    # cluster-scoped: the API server's namespaceObject is null too
    cluster = _match_policy(write, {**RBAC, "resources": ["*"]}, expression="namespaceObject == null")
    assert cluster.review(cluster_role(None)) == []


@pytest.mark.parametrize("failure", ["Fail", "Ignore"])
def test_duration_and_timestamp_variables_are_read_back(write: Write, failure: str) -> None:
    """The API server's variables hold any CEL value (composition's lazy variables): a duration
    or a timestamp compares as one, to the nanosecond; no evaluation error under either policy."""
    docs = yaml.safe_load_all(
        POLICY.format(expression="variables.d < duration('1h')", failure=failure, operation="CREATE")
    )
    policy, binding = list(docs)
    policy["spec"]["variables"] = [
        {"name": "d", "expression": "duration('1h0m0.000000001s')"},
        {"name": "t", "expression": "timestamp('2020-01-01T00:00:00.000000001Z')"},
        {"name": "ds", "expression": "[duration('90m')]"},
    ]
    policy["spec"]["validations"] += [
        {"expression": "variables.t > timestamp('2020-01-01T00:00:00Z')"},
        {"expression": "variables.ds[0] > duration('1h')"},
    ]
    policies = vap.load([write("p.yaml", yaml.safe_dump_all([policy, binding]))])
    [outcome] = policies.review(deployment())
    assert (outcome.kind, outcome.rule) == ("violation", "p/0")  # the first: d is 1h and 1ns
    assert outcome.message == "failed expression: variables.d < duration('1h')"


# -- the object as the API server's validating admission sees it ---------------

DEFAULTS_POLICY = [
    {
        "expression": "object.spec.template.spec.containers.all(c, !has(c.imagePullPolicy) "
        "|| c.imagePullPolicy == 'Always')",
        "message": "imagePullPolicy must be Always",
    },
    {
        "expression": "!has(object.spec.replicas) || object.spec.replicas >= 2",
        "message": "at least 2 replicas",
    },
    {
        "expression": "!has(object.spec.template.spec.automountServiceAccountToken) "
        "|| !object.spec.template.spec.automountServiceAccountToken",
        "message": "no automount",
    },
    {"expression": "has(object.metadata.labels)", "message": "labels required"},
]


def _as_written() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default", "labels": None},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]},
            },
        },
    }


def test_a_check_judges_the_object_decoded_and_defaulted_as_the_api_server_does() -> None:
    # The API server drops `labels: null` on decoding and defaults imagePullPolicy (IfNotPresent
    # for a tag other than latest) and replicas (1) before validating admission runs.
    policies = _policy_with([], DEFAULTS_POLICY)
    found = policies.review(_as_written())
    assert [o.message for o in found] == [
        "imagePullPolicy must be Always",
        "at least 2 replicas",
        "labels required",
    ]


def test_at_admission_the_request_object_is_not_defaulted_again() -> None:
    # `serve` is given the object the API server decoded and defaulted: it is taken as it is.
    policies = _policy_with([], DEFAULTS_POLICY)
    request = {"uid": "u", "userInfo": {"username": "alice"}}
    found = policies.review(_as_written(), admission=request)
    assert found == []  # no defaults added, and `labels: null` is a key present


def test_an_update_defaults_the_old_object_too() -> None:
    old, new = _as_written(), _as_written()
    new["spec"]["replicas"] = 1
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "u"},
        "spec": {
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["UPDATE"],
                        "resources": ["deployments"],
                    }
                ]
            },
            "validations": [{"expression": "oldObject.spec.replicas == object.spec.replicas"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "ub"},
        "spec": {"policyName": "u", "validationActions": ["Deny"]},
    }
    policies = vap.PolicySet(
        policies={"u": vap.parse_policy(policy, file="u.yaml")},
        bindings=[vap.parse_binding(binding, file="u.yaml")],
    )
    assert policies.review(new, old=old) == []  # the old object's replicas default to 1 too
    new["spec"]["replicas"] = 2
    assert len(policies.review(new, old=old)) == 1


def _generated(name_rule: str) -> tuple[vap.PolicySet, dict[str, Any]]:
    policies = _policy_with([], [{"expression": name_rule, "message": "name"}])
    obj = _as_written()
    obj["metadata"] = {"generateName": "web-", "namespace": "default", "labels": {"a": "b"}}
    return policies, obj


def test_a_generated_name_that_cannot_change_the_decision_passes() -> None:
    policies, obj = _generated(
        "object.metadata.name.startsWith('web-') && request.name == object.metadata.name"
    )
    assert policies.review(obj) == []
    policies, obj = _generated("size(object.metadata.name) == 9")
    assert policies.review(obj) == []


def test_a_decision_that_depends_on_the_generated_name_cannot_be_evaluated() -> None:
    policies, obj = _generated("object.metadata.name.matches('[0-9]$')")
    [outcome] = policies.review(obj)
    assert outcome.kind == "unevaluable"
    assert outcome.rule == "p/generateName"
    assert "generateName 'web-'" in outcome.message


def test_a_generated_name_that_denies_either_way_is_a_violation() -> None:
    policies, obj = _generated("object.metadata.name.startsWith('api-')")
    [outcome] = policies.review(obj)
    assert (outcome.kind, outcome.rule) == ("violation", "p/0")


def test_a_namespace_selector_sees_the_namespace_name_label_the_api_server_adds() -> None:
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "n"},
        "spec": {
            "matchConstraints": {
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}
                    ]
                },
                "resourceRules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["deployments"],
                    }
                ],
            },
            "validations": [{"expression": "false", "message": "never"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "nb"},
        "spec": {"policyName": "n", "validationActions": ["Deny"]},
    }
    policies = vap.PolicySet(
        policies={"n": vap.parse_policy(policy, file="n.yaml")},
        bindings=[vap.parse_binding(binding, file="n.yaml")],
    )
    system = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}
    obj = _as_written()
    obj["metadata"]["namespace"] = "kube-system"
    assert policies.review(obj, objects=[system]) == []  # excluded by the label the cluster has


def test_a_generated_namespace_is_judged_with_the_label_of_its_generated_name() -> None:
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "ns"},
        "spec": {
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["namespaces"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "object.metadata.labels['kubernetes.io/metadata.name'] "
                    "== object.metadata.name"
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "nsb"},
        "spec": {"policyName": "ns", "validationActions": ["Deny"]},
    }
    policies = vap.PolicySet(
        policies={"ns": vap.parse_policy(policy, file="ns.yaml")},
        bindings=[vap.parse_binding(binding, file="ns.yaml")],
    )
    assert (
        policies.review({"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "team-"}})
        == []
    )


@pytest.mark.parametrize("failure_policy", ["Fail", "Ignore"])
@pytest.mark.parametrize(
    ("variables", "expression"),
    [
        ([], "'%.1f'.format([double(object.spec.replicas)]) == '7.0'"),
        ([{"name": "r", "expression": "'%.1f'.format([1.5])"}], "variables.r == '1.5'"),
    ],
)
def test_what_trustgate_cannot_evaluate_exactly_is_no_verdict_under_either_failure_policy(
    failure_policy: str, variables: list[dict[str, str]], expression: str
) -> None:
    """The API server has a value here (cel-go prints `%f` through a locale printer trustgate
    does not reproduce): an evaluation error that failurePolicy Ignore turned into a pass
    would be a false allow, so it is `unevaluable` (exit 3) under both."""
    policies = _policy_with(variables, [{"expression": expression}], failure_policy)
    [outcome] = policies.review(_deployment({"replicas": 7}))
    assert outcome.kind == "unevaluable"
    assert "cannot be evaluated as the API server does it" in outcome.message


def test_an_api_server_error_still_goes_to_failure_policy() -> None:
    """timestamp() of a string Go refuses errs in the API server too: failurePolicy applies.
    (Of a literal it is refused when the policy is written, as the API server's checker does.)"""
    policies = _policy_with([], [{"expression": "timestamp(object.spec.at) > timestamp(0)"}], "Ignore")
    [outcome] = policies.review(_deployment({"at": "2020-01-01t00:00:00Z"}))
    assert outcome.kind == "ignored"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("timestamp('2020-01-01t00:00:00Z') > timestamp(0)", "timestamp validation failed"),
        ("duration('1d') > duration('0s')", "duration validation failed"),
    ],
)
def test_a_bad_time_literal_is_refused_when_the_policy_is_read(expression: str, reason: str) -> None:
    """Kubernetes' CEL environment validates timestamp and duration literals at compile time
    (cel.ValidateTimestampLiterals, ValidateDurationLiterals, since 1.29): the API server
    refuses such a policy, so it is a policy error here, not a runtime error under failurePolicy."""
    with pytest.raises(PolicyError, match=reason):
        _policy_with([], [{"expression": expression}], "Ignore")


def test_a_custom_resource_is_judged_as_its_crd_decodes_it() -> None:
    """The API server prunes a custom resource's non-nullable nulls and sets its CRD's defaults
    on decode, before validating admission: a rule reading a defaulted field sees the default."""
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"size": {"type": "integer", "default": 3}, "owner": {"type": "string"}},
            }
        },
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
            ],
        },
    }
    policies = _policy_with(
        [],
        [
            {"expression": "!has(object.spec.size) || object.spec.size <= 2", "message": "size"},
            {"expression": "has(object.spec.owner)", "message": "no owner"},
        ],
        group="example.com",
        resource="widgets",
    )
    policies.add_crd(crd)
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "n"},
        "spec": {"owner": None},
    }
    # size defaulted to 3; owner: null pruned (absent), where has() of a null had been true
    assert sorted(o.message for o in policies.review(widget)) == ["no owner", "size"]
    assert widget["spec"] == {"owner": None}  # the caller's object is not changed


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_a_deeply_nested_object_is_decoded_without_a_crash() -> None:
    # The API server reads up to 10000 levels; decoding recursed and raised RecursionError at
    # about 500 (a ConfigMap's binaryData nested that deep crashed `check`).
    policies = _policy_with([], [{"expression": "has(object.metadata.labels)"}])
    obj = _as_written()
    obj["metadata"]["annotations"] = {"x": "y"}
    obj["spec"]["template"]["metadata"]["annotations"] = {"deep": _nested(vap.MAX_DEPTH - 10)}
    [outcome] = policies.review(obj)
    assert outcome.kind == "violation"  # decoded: `labels: null` is no labels


def test_an_object_nested_deeper_than_trustgate_evaluates_is_unevaluable_never_a_pass() -> None:
    policies = _policy_with([], [{"expression": "true"}])
    obj = _as_written()
    obj["spec"]["template"]["metadata"]["annotations"] = {"deep": _nested(vap.MAX_DEPTH + 1)}
    [outcome] = policies.review(obj)
    assert (outcome.kind, outcome.rule) == ("unevaluable", "p/object")
    assert f"nested more than {vap.MAX_DEPTH} levels deep" in outcome.message


def test_a_malformed_object_in_the_change_set_is_no_crash() -> None:
    # The index of params and Namespaces hashed (apiVersion, kind): a list there raised TypeError.
    policies = _policy_with([], [{"expression": "true"}])
    bad = {"apiVersion": ["apps/v1"], "kind": "Deployment", "metadata": {"name": "x"}}
    assert policies.review(_as_written(), objects=[bad]) == []
    assert policies.review(bad, objects=[bad]) == []
