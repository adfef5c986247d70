"""ValidatingAdmissionPolicies through the CLI (`check --admission-policy`, the config) and the Gate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from trustgate.cli.main import main
from trustgate.config import Config, KubernetesSettings
from trustgate.gate import Gate
from trustgate.model import Document, Source

Write = Callable[[str, str], Path]
EXAMPLES = Path(__file__).parent.parent / "conformance" / "admission-policies"
BASE = ("check", "--no-schemas", "--no-builtin", "-o", "json")

DEPLOYMENT = """\
apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels:
    environment: test
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: {replicas}
  template:
    spec:
      containers:
      - name: app
        image: registry.example.com/app:1
"""


def run(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    report = json.loads(result.stdout) if result.stdout.startswith("{") else result.stdout
    return result.exit_code, report, result.stderr


def findings(report: Any) -> list[dict[str, Any]]:
    return [f for r in report["results"] for f in r["findings"]]


def test_check_denies_with_the_policy_rule_message_and_line(write: Write) -> None:
    manifests = write("app.yaml", DEPLOYMENT.format(replicas=7))
    code, report, _ = run(*BASE, "--admission-policy", str(EXAMPLES / "demo-policy.yaml"), str(manifests))
    assert code == 1
    [finding] = findings(report)
    assert finding["rule"] == "demo-policy.example.com/0"
    assert finding["message"] == "failed expression: object.spec.replicas <= 5"
    assert finding["line"] == 8  # the Deployment's first line
    assert finding["source"] == "admission-policy"
    assert finding["metadata"]["binding"] == "demo-binding-test.example.com"


def test_check_passes_within_the_limit(write: Write) -> None:
    manifests = write("app.yaml", DEPLOYMENT.format(replicas=2))
    code, report, _ = run(*BASE, "--admission-policy", str(EXAMPLES / "demo-policy.yaml"), str(manifests))
    assert code == 0, report
    assert findings(report) == []


def test_config_admission_policies_and_exceptions(write: Write) -> None:
    manifests = write("app.yaml", DEPLOYMENT.format(replicas=4))
    config = write(
        "trustgate.yaml",
        f"""\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        manifests:
          admissionPolicies: [{EXAMPLES / "replicalimit.yaml"}]
          policies: []
        kubernetes:
          schemas: false
        exceptions:
          - name: web-scales
            rules: ["replicalimit-policy.example.com/*"]
            names: [web]
            owner: web-team@example.com
            reason: load test until the end of the year
            expires: "2999-12-31"
        """,
    )
    code, report, _ = run("check", "-c", str(config), "-o", "json", str(manifests))
    assert code == 0, report
    [finding] = findings(report)
    assert finding["rule"] == "replicalimit-policy.example.com/Invalid"
    assert finding["message"] == "object.spec.replicas must be no greater than 3"
    assert finding["exception"]["name"] == "web-scales"


def test_warn_and_audit_bindings_do_not_block(write: Write) -> None:
    pod = write(
        "pod.yaml",
        """\
        apiVersion: v1
        kind: Pod
        metadata: {name: p, namespace: default}
        spec:
          containers: [{name: a, image: "nginx:latest"}]
        """,
    )
    code, report, _ = run(*BASE, "--admission-policy", str(EXAMPLES / "match-conditions.yaml"), str(pod))
    assert code == 0
    [finding] = findings(report)
    assert (finding["rule"], finding["severity"]) == ("no-latest.example.com/Forbidden", "warning")


def test_a_cel_syntax_error_names_file_validation_and_column(write: Write) -> None:
    text = (
        (EXAMPLES / "demo-policy.yaml")
        .read_text()
        .replace("object.spec.replicas <= 5", "object.spec.replicas <=")
    )
    policy = write("policy.yaml", text)
    manifests = write("app.yaml", DEPLOYMENT.format(replicas=1))
    code, _, err = run(*BASE, "--admission-policy", str(policy), str(manifests))
    assert code == 3
    assert f"{policy}:2" in err
    assert "spec.validations[0].expression (line 1, column 24): Syntax error" in err


def test_a_binding_to_a_missing_policy_is_exit_3(write: Write) -> None:
    text = (EXAMPLES / "demo-policy.yaml").read_text()
    binding = write("binding.yaml", text[text.index("---") :])
    manifests = write("app.yaml", DEPLOYMENT.format(replicas=1))
    code, _, err = run(*BASE, "--admission-policy", str(binding), str(manifests))
    assert code == 3
    assert "binds policy 'demo-policy.example.com', which is not among the admission policies given" in err


def test_a_missing_param_is_exit_3_not_a_pass(write: Write) -> None:
    text = (EXAMPLES / "replicalimit.yaml").read_text()
    policy = write("policy.yaml", text[: text.rindex("---")])
    manifests = write("app.yaml", DEPLOYMENT.format(replicas=1))
    code, report, _ = run(*BASE, "--admission-policy", str(policy), str(manifests))
    assert code == 3
    [finding] = findings(report)
    assert finding["rule"] == "replicalimit-policy.example.com/params"
    assert "no ReplicaLimit 'replica-limit-test.example.com'" in finding["message"]


def test_authorizer_policies_are_exit_3(write: Write) -> None:
    text = (EXAMPLES / "demo-policy.yaml").read_text()
    text = text.replace(
        '"object.spec.replicas <= 5"',
        "\"authorizer.group('apps').resource('deployments').check('scale').allowed()\"",
    )
    policy = write("policy.yaml", text)
    manifests = write("app.yaml", DEPLOYMENT.format(replicas=1))
    code, report, _ = run(*BASE, "--admission-policy", str(policy), str(manifests))
    assert code == 3
    [finding] = findings(report)
    assert "cannot be evaluated offline" in finding["message"]


def test_the_gate_evaluates_admission_policies_for_presync_and_serve() -> None:
    config = Config(
        policies=(),
        admission_policies=(EXAMPLES / "demo-policy.yaml", EXAMPLES / "objects.yaml"),
        kubernetes=KubernetesSettings(schemas=False),
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 9},
    }
    with Gate(config=config) as gate:
        decision = gate.evaluate([Document(Source("admission"), deployment)], gate="admission")
    [result] = decision.results
    assert [f.rule for f in result.findings] == ["demo-policy.example.com/0"]
    assert not decision.allowed


def test_the_policy_revision_covers_the_admission_policies(write: Write) -> None:
    text = (EXAMPLES / "demo-policy.yaml").read_text()
    policy = write("policy.yaml", text)
    config = Config(policies=(), admission_policies=(policy,), kubernetes=KubernetesSettings(schemas=False))
    with Gate(config=config) as gate:
        before = gate.policy_revision
    policy.write_text(text.replace("<= 5", "<= 6"))
    with Gate(config=config) as gate:
        assert gate.policy_revision != before


def test_admission_policies_in_the_config_must_be_paths(write: Write) -> None:
    config = write(
        "trustgate.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  admissionPolicies: [1]\n",
    )
    code, _, err = run("check", "-c", str(config), str(write("app.yaml", DEPLOYMENT.format(replicas=1))))
    assert code == 3
    assert "manifests.admissionPolicies.0: 1 is not of type 'string'" in err


def test_policy_test_runs_admission_policy_suites() -> None:
    # The documentation's examples with their cases (tests/conformance/admission-policies/suite).
    result = CliRunner().invoke(
        main, ["policy", "test", "-o", "json", str(EXAMPLES / "suite")], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["cases"] == 5
    assert report["summary"]["casesFailed"] == 0


def _suite(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "policy.yaml").write_text((EXAMPLES / "demo-policy.yaml").read_text())
    (tmp_path / "objects.yaml").write_text((EXAMPLES / "objects.yaml").read_text())
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: AdmissionPolicyTest\n"
        "policies: [policy.yaml, objects.yaml]\ntests:\n" + tests
    )
    return suite


def test_a_wrong_expectation_fails_the_case(tmp_path: Path) -> None:
    suite = _suite(
        tmp_path,
        "  - name: wrong\n    expect: admit\n    object:\n      apiVersion: apps/v1\n      kind: Deployment\n"
        "      metadata: {name: w, namespace: default}\n      spec: {replicas: 9}\n"
        "  - name: message\n    expect: deny\n    messages: ['no such message']\n    object:\n"
        "      apiVersion: apps/v1\n      kind: Deployment\n"
        "      metadata: {name: w, namespace: default}\n      spec: {replicas: 9}\n",
    )
    result = CliRunner().invoke(main, ["policy", "test", "-o", "json", str(suite)], catch_exceptions=False)
    assert result.exit_code == 1
    [wrong, message] = json.loads(result.stdout)["suites"][0]["tests"]
    assert "expected admit, got deny" in wrong["cases"][0]["error"]
    assert "no outcome message matches ['no such message']" in message["cases"][0]["error"]


def test_a_broken_admission_suite_could_not_be_evaluated(tmp_path: Path) -> None:
    suite = _suite(tmp_path, "  - name: bad\n    expect: maybe\n    object: {kind: Deployment}\n")
    result = CliRunner().invoke(main, ["policy", "test", "-o", "json", str(suite)], catch_exceptions=False)
    assert result.exit_code == 3
    assert "expect must be one of admit, deny, warn, audit, unevaluable, not 'maybe'" in result.stdout
    suite.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: AdmissionPolicyTest\npolicies: [missing.yaml]\ntests: []\n"
    )
    result = CliRunner().invoke(main, ["policy", "test", str(suite)], catch_exceptions=False)
    assert result.exit_code == 3
    assert "missing.yaml" in result.output


def _deny_all(resource_rule: str) -> str:
    return f"""\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: deny-all}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {resource_rule}
  validations:
  - {{expression: "false", message: denied}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: deny-all-b}}
spec: {{policyName: deny-all, validationActions: [Deny]}}
"""


POD = """\
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns1}
spec: {containers: [{name: c, image: nginx}]}
"""


def test_check_matches_a_subresource_wildcard_against_the_resource(write: Write) -> None:
    """rules.go: `pods/*` matches a request for pods (no subresource), so the API server denies."""
    rule = "{apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: ['pods/*']}"
    policy = write("p.yaml", _deny_all(rule))
    code, report, _ = run(*BASE, "--admission-policy", str(policy), str(write("pod.yaml", POD)))
    assert code == 1
    assert [f["rule"] for f in findings(report)] == ["deny-all/0"]


def test_check_says_a_policys_subresource_rules_are_not_evaluated_on_manifests(write: Write) -> None:
    """A policy on deployments/scale judges `kubectl scale`, never a manifest: `check` said nothing,
    and its pass read as if the policy had been evaluated."""
    rule = (
        "{apiGroups: [apps], apiVersions: [v1], operations: [UPDATE], "
        "resources: [deployments/scale, deployments]}"
    )
    policy = write("p.yaml", _deny_all(rule))
    manifests = write("app.yaml", DEPLOYMENT.format(replicas=7))
    code, report, _ = run(*BASE, "--admission-policy", str(policy), str(manifests))
    assert code == 0  # a CREATE of the Deployment: the UPDATE rules do not apply
    [note] = [n for n in report["notes"] if "deny-all" in n]
    assert "names subresources for CREATE or UPDATE (deployments/scale)" in note
    assert "not evaluated here" in note and "trustgate serve" in note
    # Not said of a policy naming no subresource.
    plain = write(
        "q.yaml",
        _deny_all("{apiGroups: [apps], apiVersions: [v1], operations: [UPDATE], resources: [deployments]}"),
    )
    _, report, _ = run(*BASE, "--admission-policy", str(plain), str(manifests))
    assert not [n for n in report["notes"] if "subresources" in n]


ISSUER_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: clusterissuers.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Cluster
  names: {kind: ClusterIssuer, plural: clusterissuers}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def test_check_takes_a_custom_kinds_scope_from_the_crd_given_with_crd(write: Write) -> None:
    """The API server serves a ClusterIssuer cluster-scoped (its CRD's spec.scope), so a rule with
    scope: Cluster matches it and denies; without the CRD the scope is unknown: exit 3."""
    rule = (
        "{apiGroups: [cert-manager.io], apiVersions: [v1], operations: [CREATE], "
        "resources: [clusterissuers], scope: Cluster}"
    )
    policy = write("p.yaml", _deny_all(rule))
    issuer = write("ci.yaml", "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: ci}\n")
    crd = write("crd.yaml", ISSUER_CRD)
    code, report, _ = run(*BASE, "--crd", str(crd), "--admission-policy", str(policy), str(issuer))
    assert code == 1
    assert [f["rule"] for f in findings(report)] == ["deny-all/0"]
    code, _, _ = run(*BASE, "--admission-policy", str(policy), str(issuer))
    assert code == 3


def test_check_cannot_evaluate_namespace_object_of_a_namespace_not_given(write: Write) -> None:
    """namespaceObject is never null for a namespaced request in the API server: a policy that
    reads it for a Namespace the check is not given is exit 3, not a pass on null."""
    rule = "{apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [pods]}"
    text = _deny_all(rule).replace('expression: "false"', 'expression: "namespaceObject == null"')
    policy = write("p.yaml", text)
    code, report, _ = run(*BASE, "--admission-policy", str(policy), str(write("pod.yaml", POD)))
    assert code == 3
    assert [f["rule"] for f in findings(report)] == ["deny-all/namespaceObject"]
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns1}\n---\n"
    code, report, _ = run(*BASE, "--admission-policy", str(policy), str(write("both.yaml", namespace + POD)))
    assert code == 1


WIDGET_CRD = (
    ISSUER_CRD.replace("clusterissuers.cert-manager.io", "widgets.example.com")
    .replace("group: cert-manager.io", "group: example.com")
    .replace("{kind: ClusterIssuer, plural: clusterissuers}", "{kind: Widget, plural: widgets}")
)
WIDGET = """\
apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {env: dev}}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: team-a}
"""


def test_check_evaluates_a_kind_of_unknown_scope_under_both_scopes(write: Write) -> None:
    """A namespace kustomize put on a Widget is cleared by the API server if Widget is cluster-scoped,
    so namespaceObject is null there and the policy denies: without the CRD, exit 3, not a pass."""
    rule = "{apiGroups: [example.com], apiVersions: ['*'], operations: ['*'], resources: ['*']}"
    text = _deny_all(rule).replace('"false"', "\"namespaceObject.metadata.labels['env'] == 'dev'\"")
    policy, widget = write("p.yaml", text), write("w.yaml", WIDGET)
    code, report, _ = run(*BASE, "--admission-policy", str(policy), str(widget))
    assert code == 3, report
    crd = write("crd.yaml", WIDGET_CRD)
    code, report, _ = run(*BASE, "--crd", str(crd), "--admission-policy", str(policy), str(widget))
    assert code == 1, report
    assert [f["rule"] for f in findings(report)] == ["deny-all/0"]
    namespaced = write("ncrd.yaml", WIDGET_CRD.replace("scope: Cluster", "scope: Namespaced"))
    code, report, _ = run(*BASE, "--crd", str(namespaced), "--admission-policy", str(policy), str(widget))
    assert code == 0, report


# The API server decodes and defaults an object before validating admission runs: a check judges
# what it would (a reproducer: /tmp/hunt-cel/vap/dflt, where `check` passed what the API server
# denies three times).
DEFAULTED_POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: pull-always}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  validations:
  - expression: >-
      object.spec.template.spec.containers.all(c, !has(c.imagePullPolicy) || c.imagePullPolicy == 'Always')
    message: "imagePullPolicy must be Always"
  - expression: "!has(object.spec.replicas) || object.spec.replicas >= 2"
    message: "at least 2 replicas"
  - expression: >-
      !has(object.spec.template.spec.automountServiceAccountToken)
      || !object.spec.template.spec.automountServiceAccountToken
    message: "no automount"
  - expression: "has(object.metadata.labels)"
    message: "labels required"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: pull-always-b}
spec: {policyName: pull-always, validationActions: [Deny]}
"""
DEFAULTED_OBJECT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: default, labels: null}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: "nginx:1.25"}]
"""


def test_check_judges_a_deployment_as_the_api_server_defaults_it(write: Write) -> None:
    policy = write("vap.yaml", DEFAULTED_POLICY)
    manifest = write("obj.yaml", DEFAULTED_OBJECT)
    code, report, _ = run(*BASE, "--admission-policy", str(policy), str(manifest))
    assert code == 1
    assert sorted((f["rule"], f["message"]) for f in findings(report)) == [
        ("pull-always/0", "imagePullPolicy must be Always"),
        ("pull-always/1", "at least 2 replicas"),
        ("pull-always/3", "labels required"),
    ]


def test_the_gate_defaults_offline_but_not_the_objects_admission_gives(write: Write) -> None:
    import yaml

    config = Config(
        policies=(),
        admission_policies=(write("vap.yaml", DEFAULTED_POLICY),),
        kubernetes=KubernetesSettings(schemas=False),
    )
    obj = yaml.safe_load(DEFAULTED_OBJECT)
    obj["metadata"]["labels"] = {"a": "b"}
    request = {"uid": "1", "operation": "CREATE", "userInfo": {"username": "u"}}
    with Gate(config=config) as gate:
        offline = gate.evaluate([Document(Source("obj.yaml"), obj)], gate="ci")
        admitted = gate.evaluate([Document(Source("admission"), obj, request=request)], gate="admission")
    assert sorted(f.rule for f in offline.results[0].findings) == ["pull-always/0", "pull-always/1"]
    assert not offline.allowed
    # At admission the API server has defaulted the object already; trustgate takes it as given.
    assert admitted.results[0].findings == []
    assert admitted.allowed


NO_PROD_DELETES = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-prod-deletes}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [''], apiVersions: [v1], operations: [DELETE], resources: [namespaces]}
  validations:
  - expression: "object == null && oldObject.metadata.?labels.?env.orValue('') != 'prod'"
    message: prod namespaces are not deleted
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-prod-deletes}
spec: {policyName: no-prod-deletes, validationActions: [Deny]}
"""


def test_an_admission_suite_tests_a_policy_on_delete(tmp_path: Path) -> None:
    """`operation: DELETE` reviews the object as deleted: without it a policy on DELETE could only be
    tested as never applying (a CREATE does not match its rules)."""
    (tmp_path / "policy.yaml").write_text(NO_PROD_DELETES)
    suite = tmp_path / "suite.yaml"
    namespace = (
        "    object: {apiVersion: v1, kind: Namespace, metadata: {name: payments, labels: {env: %s}}}\n"
    )
    suite.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: AdmissionPolicyTest\npolicies: [policy.yaml]\ntests:\n"
        "  - name: prod\n    operation: DELETE\n    expect: deny\n    messages: ['not deleted']\n"
        + namespace % "prod"
        + "  - name: dev\n    operation: DELETE\n    expect: admit\n"
        + namespace % "dev"
        + "  - name: created\n    expect: admit\n"
        + namespace % "prod"
    )
    result = CliRunner().invoke(main, ["policy", "test", "-o", "json", str(suite)], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    tests = json.loads(result.stdout)["suites"][0]["tests"]
    assert [t["name"] for t in tests] == ["prod", "dev", "created"]
    assert all(not c.get("error") for t in tests for c in t["cases"]), tests
    suite.write_text(suite.read_text().replace("operation: DELETE", "operation: PATCH", 1))
    result = CliRunner().invoke(main, ["policy", "test", "-o", "json", str(suite)], catch_exceptions=False)
    assert result.exit_code == 3
    assert "operation must be one of CREATE, DELETE, not 'PATCH'" in result.stdout


# -- cel-go's answers where the CEL runtime's differ (review findings) ---------------------

_REVIEW_POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: review
spec:
  failurePolicy: {failure}
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  validations:
  - expression: {expression}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: review
spec:
  policyName: review
  validationActions: [Deny]
"""

_ANNOTATED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  annotations:
    a: {value}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"""


def _review(write: Write, expression: str, value: str, failure: str = "Fail") -> tuple[int, Any, str]:
    policy = write("policy.yaml", _REVIEW_POLICY.format(failure=failure, expression=json.dumps(expression)))
    manifests = write("app.yaml", _ANNOTATED.format(value=json.dumps(value)))
    return run(*BASE, "--admission-policy", str(policy), str(manifests))


def test_a_leading_dot_int_parses_as_go_does(write: Write) -> None:
    # `.int(' 3')` is the global int: ParseInt refuses the space, so Fail denies (it passed)
    code, _, _ = _review(write, ".int(object.metadata.annotations['a']) <= 5", " 3")
    assert code == 1


def test_a_forged_rewrite_marker_is_refused(write: Write) -> None:
    code, _, err = _review(
        write, "int(cel.bind(__tg_go_t, object.metadata.annotations['a'], __tg_go_t)) <= 5", " 3"
    )
    assert code == 3 and "reserved" in err


def test_a_sum_of_durations_keeps_its_nanoseconds(write: Write) -> None:
    expression = "object.metadata.annotations['a'].split(',').map(t, duration(t)).sum() <= duration('1s')"
    code, _, _ = _review(write, expression, "500000001ns,500000001ns")
    assert code == 1  # 1.000000002s is over 1s (it passed, summed to the microsecond)


def test_timestamps_sorted_to_the_nanosecond(write: Write) -> None:
    expression = "object.metadata.annotations['a'].split(',').map(t, timestamp(t)).isSorted()"
    code, _, _ = _review(write, expression, "2025-01-01T00:00:00.000000900Z,2025-01-01T00:00:00.000000100Z")
    assert code == 1


def test_a_double_with_underscores_is_read_as_go_reads_it(write: Write) -> None:
    # ParseFloat reads 1_000 as 1000: over 10, a deny even under Ignore (the error was ignored)
    code, _, _ = _review(write, "double(object.metadata.annotations['a']) <= 10.0", "1_000", failure="Ignore")
    assert code == 1


def test_a_nan_comparison_is_not_a_pass(write: Write) -> None:
    # cel-go: "NaN values cannot be ordered", which Fail denies; the runtime said false, so the
    # negation passed
    code, report, _ = _review(write, "!(double(object.metadata.annotations['a']) > 100.0)", "NaN")
    assert code == 1
    assert "NaN values cannot be ordered" in findings(report)[0]["message"]


def test_a_string_holding_a_nul_is_not_a_pass(write: Write) -> None:
    # the engine would see "12" of "12\x00abc"; the API server sees the whole string
    code, _, _ = _review(write, "object.metadata.annotations['a'].matches('^[0-9]+$')", "12\x00abc")
    assert code == 3


def test_string_of_an_infinity_is_gos(write: Write) -> None:
    # cel-go writes +Inf (FormatFloat 'g'); the runtime wrote inf, so the policy passed
    code, _, _ = _review(write, "string(double(object.metadata.annotations['a'])) != '+Inf'", "inf")
    assert code == 1


def test_a_url_whose_verdict_depends_on_the_go_version_is_not_a_pass(write: Write) -> None:
    # Go 1.26's default refuses a colon before the port's; earlier Go takes it
    code, _, _ = _review(write, "!isURL(object.metadata.annotations['a'])", "http://a:b:80/")
    assert code == 3
