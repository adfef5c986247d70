"""Where trustgate once passed what Gatekeeper or gator denies, through `trustgate check --gatekeeper`.

Each case is a false allow a review found: the same template, constraint and object pass here and
are denied by Gatekeeper (whose source the comments name), or the cluster would not hold the
constraint as written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]


def check(*args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(
        main, ["check", "--no-builtin", "--no-schemas", "--format", "json", *args], catch_exceptions=False
    )
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, report, result.stderr


def denials(report: dict[str, Any]) -> list[str]:
    return [f["message"] for r in report["results"] for f in r["findings"] if f["severity"] == "error"]


def template(kind: str, rego: str = "", *, cel: str = "", schema: str = "", version: str = "v1") -> str:
    code = (
        f"""
      code:
        - engine: K8sNativeValidation
          source:
            validations:
              - expression: "{cel}"
                message: "cel: denied"
"""
        if cel
        else ""
    )
    rego_block = (
        "      rego: |\n" + "".join(f"        {line}\n" for line in rego.strip().splitlines()) if rego else ""
    )
    validation = f"\n      validation:\n        openAPIV3Schema:\n{schema}" if schema else ""
    return f"""\
apiVersion: templates.gatekeeper.sh/{version}
kind: ConstraintTemplate
metadata: {{name: {kind.lower()}}}
spec:
  crd:
    spec:
      names: {{kind: {kind}}}{validation}
  targets:
    - target: admission.k8s.gatekeeper.sh
{rego_block}{code}"""


POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: team-a}
spec:
  containers: [{name: app, image: "nginx:latest"}]
"""

NO_LATEST = """
package k8snolatest
violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  endswith(c.image, ":latest")
  not exempt(c.image)
  msg := sprintf("latest tag: %v", [c.name])
}
exempt(image) { input.parameters.exemptImages[_] == image }
"""


def constraint(kind: str, spec: str = "") -> str:
    return f"""\
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: {kind}
metadata: {{name: c}}
spec:
  match: {{kinds: [{{apiGroups: ["*"], kinds: [Pod, ConfigMap, Ingress]}}]}}
{spec}"""


def test_data_inventory_read_with_brackets_is_given_the_inventory(write: Write) -> None:
    """`data["inventory"]` is the reference `data.inventory` is (OPA's AST has the same Ref)."""
    rego = """
package uniquehost
violation[{"msg": msg}] {
  host := input.review.object.spec.rules[_].host
  other := data["inventory"].namespace[ns][_]["Ingress"][name]
  other.spec.rules[_].host == host
  not itself(ns, name)
  msg := sprintf("host %v is taken by %v/%v", [host, ns, name])
}
itself(ns, name) {
  ns == input.review.object.metadata.namespace
  name == input.review.object.metadata.name
}
"""
    ingresses = "".join(
        f"""---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web, namespace: {ns}}}
spec: {{rules: [{{host: shop.example.com}}]}}
"""
        for ns in ("ns1", "ns2")
    )
    manifests = write("ingresses.yaml", ingresses)
    for form in ('data["inventory"]', 'data[ "inventory" ]', "data.inventory"):
        policy = write(
            "gk.yaml",
            template("UniqueHost", rego.replace('data["inventory"]', form)) + constraint("UniqueHost"),
        )
        code, report, _ = check(str(manifests), "--gatekeeper", str(policy))
        assert code == 1, form
        assert sorted(denials(report)) == [
            "host shop.example.com is taken by ns1/web",
            "host shop.example.com is taken by ns2/web",
        ]


def test_data_read_by_a_computed_name_is_refused_naming_the_line(write: Write) -> None:
    rego = """
package reads
violation[{"msg": "x"}] {
  k := "inventory"
  data[k].cluster
}
"""
    policy = write("gk.yaml", template("Reads", rego) + constraint("Reads"))
    code, _, err = check(str(write("pod.yaml", POD)), "--gatekeeper", str(policy))
    assert code == 3
    assert "reads `data` other than as data.inventory or data.lib" in err
    assert "gk.yaml:14" in err  # the line of `data[k]` in the file


def test_parameters_take_the_schemas_defaults(write: Write) -> None:
    """frameworks' withDefaultParams (gatekeeper #2638, #2811): a constraint without the parameter
    gets the template's default, and gator applies it too."""
    rego = """
package reqlabel
violation[{"msg": msg}] {
  not input.review.object.metadata.labels[input.parameters.label]
  msg := sprintf("missing label %v", [input.parameters.label])
}
"""
    schema = (
        "          type: object\n          properties:\n            label: {type: string, default: owner}\n"
    )
    cm = write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a}\n")
    policy = write("gk.yaml", template("ReqLabel", rego, schema=schema) + constraint("ReqLabel"))
    code, report, _ = check(str(cm), "--gatekeeper", str(policy))
    assert code == 1
    assert denials(report) == ["missing label owner"]
    given = write(
        "gk.yaml",
        template("ReqLabel", rego, schema=schema) + constraint("ReqLabel", "  parameters: {label: team}\n"),
    )
    _, report, _ = check(str(cm), "--gatekeeper", str(given))
    assert denials(report) == ["missing label team"]  # what the constraint gives wins


def test_parameters_a_v1_templates_schema_does_not_declare_are_refused(write: Write) -> None:
    """The API server prunes them from a v1 template's constraints (and kubectl refuses them): an
    exemption only this copy of the constraint holds would pass what the cluster denies."""
    schema = "          type: object\n          properties:\n            message: {type: string}\n"
    pod = write("pod.yaml", POD)
    exempt = '  parameters: {exemptImages: ["nginx:latest"]}\n'
    policy = write("gk.yaml", template("NoLatest", NO_LATEST, schema=schema) + constraint("NoLatest", exempt))
    code, _, err = check(str(pod), "--gatekeeper", str(policy))
    assert code == 3
    assert "'exemptImages' was unexpected" in err
    assert "pruned" in err
    # A v1beta1 template keeps unknown fields (legacySchema), as Gatekeeper does: the exemption holds.
    legacy = write(
        "gk.yaml",
        template("NoLatest", NO_LATEST, schema=schema, version="v1beta1") + constraint("NoLatest", exempt),
    )
    code, report, _ = check(str(pod), "--gatekeeper", str(legacy))
    assert (code, denials(report)) == (0, [])


def test_a_scoped_deny_for_gator_denies_here(write: Write) -> None:
    """gator.gatekeeper.sh is the enforcement point gator acts for; a deny scoped to it fails CI."""
    scoped = """\
  enforcementAction: scoped
  scopedEnforcementActions:
    - action: deny
      enforcementPoints: [{name: gator.gatekeeper.sh}]
    - action: warn
      enforcementPoints: [{name: audit.gatekeeper.sh}]
"""
    policy = write("gk.yaml", template("NoLatest", NO_LATEST) + constraint("NoLatest", scoped))
    code, report, _ = check(str(write("pod.yaml", POD)), "--gatekeeper", str(policy))
    assert code == 1
    assert denials(report) == ["latest tag: app"]


def test_a_name_pattern_matches_an_object_created_with_generate_name(write: Write) -> None:
    """Gatekeeper's match: Matches(name) || MatchesGenerateName(generateName)."""
    batch = POD.replace("name: web,", "generateName: batch-,")
    policy = write(
        "gk.yaml",
        template("NoLatest", NO_LATEST)
        + constraint("NoLatest").replace(
            "kinds: [Pod, ConfigMap, Ingress]}]}", 'kinds: [Pod]}], name: "batch-*"}'
        ),
    )
    code, report, _ = check(str(write("pod.yaml", batch)), "--gatekeeper", str(policy))
    assert code == 1
    assert denials(report) == ["latest tag: app"]
    other = POD.replace("name: web,", "generateName: web-,")
    code, _, _ = check(str(write("pod.yaml", other)), "--gatekeeper", str(policy))
    assert code == 0  # a generateName outside the pattern does not match


def test_a_template_with_rego_and_cel_runs_its_cel_by_default(write: Write) -> None:
    """Gatekeeper and gator register the K8sNativeValidation driver first: where a template has
    CEL, that is what decides."""
    rego = 'package both\nviolation[{"msg": "rego: denied"}] { false }\n'
    cel = "has(object.metadata.labels) && object.metadata.labels.owner != ''"
    cm = write(
        "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a, labels: {owner: ''}}\n"
    )
    policy = write("gk.yaml", template("Both", rego, cel=cel) + constraint("Both"))
    code, report, _ = check(str(cm), "--gatekeeper", str(policy))
    assert (code, denials(report)) == (1, ["cel: denied"])
    code, report, _ = check(str(cm), "--gatekeeper", str(policy), "--gatekeeper-engine", "rego")
    assert (code, denials(report)) == (0, [])  # still there for whoever asks for it


def test_cel_that_reads_namespace_object_sees_the_namespace(write: Write) -> None:
    cel = (
        "namespaceObject == null || !has(namespaceObject.metadata.labels)"
        " || namespaceObject.metadata.labels.tier != 'frozen'"
    )
    policy = write("gk.yaml", template("NotFrozen", cel=cel) + constraint("NotFrozen"))
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team-a}\n"
    namespace = "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {tier: frozen}}\n"
    code, report, _ = check(str(write("cm.yaml", cm + namespace)), "--gatekeeper", str(policy))
    assert (code, denials(report)) == (1, ["cel: denied"])
    # Without the Namespace, what the code decides is unknown: not evaluated, never a pass.
    code, report, _ = check(str(write("cm.yaml", cm)), "--gatekeeper", str(policy))
    assert code == 3
    assert any("reads namespaceObject" in m for m in denials(report))


def test_an_admission_review_is_judged_by_its_request(write: Write) -> None:
    """As gator: an AdmissionReview document is the review of its request (userInfo included)."""
    rego = """
package nocontractors
violation[{"msg": "contractors may not change this"}] {
  input.review.userInfo.groups[_] == "contractors"
}
"""
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "1",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "operation": "CREATE",
            "namespace": "a",
            "userInfo": {"username": "eve", "groups": ["contractors"]},
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}},
        },
    }
    policy = write("gk.yaml", template("NoContractors", rego) + constraint("NoContractors"))
    code, report, _ = check(str(write("ar.json", json.dumps(review))), "--gatekeeper", str(policy))
    assert (code, denials(report)) == (1, ["contractors may not change this"])


def test_a_template_failing_at_run_time_does_not_hide_the_other_constraints_violations(write: Write) -> None:
    """One engine call reviews every matched constraint; when one template fails (a conflict on
    this object), the others' violations must still be reported (fail-open admission answers
    from them)."""
    boom = """
package boom
violation[{"msg": "never"}] { v == "never" }
v = input.review.object.metadata.labels.a
v = input.review.object.metadata.labels.b
"""
    pod = POD.replace("namespace: team-a}", "namespace: team-a, labels: {a: one, b: two}}")
    policy = write(
        "gk.yaml",
        template("NoLatest", NO_LATEST)
        + constraint("NoLatest")
        + "---\n"
        + template("Boom", boom)
        + constraint("Boom").replace("name: c}", "name: b}"),
    )
    code, report, _ = check(str(write("pod.yaml", pod)), "--gatekeeper", str(policy))
    assert code == 3  # not evaluated: one template failed
    found = denials(report)
    assert "latest tag: app" in found
    assert any(m.startswith("constraint Boom/b: ") for m in found), found


ALWAYS = """
package k8salways
violation[{"msg": msg}] {
  msg := sprintf("denied %v", [input.review.kind.kind])
}
"""


def test_a_contains_name_pattern_matches_an_object_created_with_generate_name(write: Write) -> None:
    """wildcard.MatchesGenerateName: `*web*` matches a generateName that contains `web` (only
    `prefix*` did, so the Pod passed)."""
    pod = write("pod.yaml", POD.replace("name: web,", "generateName: batch-web-,"))
    for pattern, expected in (("*web*", 1), ("*api*", 0), ("*-web-", 0)):
        spec = constraint("K8sAlways").replace(
            "kinds: [Pod, ConfigMap, Ingress]}]}", f'kinds: [Pod]}}], name: "{pattern}"}}'
        )
        policy = write("gk.yaml", template("K8sAlways", ALWAYS) + spec)
        code, report, _ = check(str(pod), "--gatekeeper", str(policy))
        assert (code, denials(report)) == (expected, ["denied Pod"] if expected else []), pattern


PRIVILEGED = """
package k8shostpriv
exempt(c) {
  c.name == "istio-proxy"
}
dangerous(c) { # privileged, or in the host PID namespace
  c.securityContext.privileged
} {
  input.review.object.spec.hostPID
}
violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  dangerous(c)
  not exempt(c)
  msg := sprintf("container %v is privileged or uses hostPID", [c.name])
}
"""


def test_a_second_body_after_a_head_with_a_comment_stays_with_its_rule(write: Write) -> None:
    """OPA reads `dangerous(c) { # ... } { hostPID }` as two bodies of `dangerous`; the comment
    kept the rewrite from seeing the head, and the second body went to `exempt`."""
    pod = write("pod.yaml", POD.replace("spec:\n", "spec:\n  hostPID: true\n"))
    policy = write("gk.yaml", template("K8sHostPriv", PRIVILEGED) + constraint("K8sHostPriv"))
    code, report, _ = check(str(pod), "--gatekeeper", str(policy))
    assert (code, denials(report)) == (1, ["container app is privileged or uses hostPID"])


def test_a_second_body_that_cannot_be_rewritten_is_refused_naming_file_and_line(write: Write) -> None:
    rego = PRIVILEGED.replace("} {\n  input.review", "} else = true {\n  false\n} {\n  input.review")
    policy = write("gk.yaml", template("K8sHostPriv", rego) + constraint("K8sHostPriv"))
    code, _, err = check(str(write("pod.yaml", POD)), "--gatekeeper", str(policy))
    assert code == 3
    assert f"{policy}:19:" in err and "a further body after an `else` chain" in err  # its `} {` line


UNIQUE_HOST = """
package k8suniqueingresshost
identical(obj, review) {
  obj.metadata.namespace == review.object.metadata.namespace
  obj.metadata.name == review.object.metadata.name
}
violation[{"msg": msg}] {
  host := input.review.object.spec.rules[_].host
  other := data.inventory.namespace[_][otherapiversion]["Ingress"][name]
  other.spec.rules[_].host == host
  not identical(other, input.review)
  msg := sprintf("ingress host conflicts with an existing ingress <%v>", [host])
}
"""


def ingress(name: str, namespace: str = "") -> str:
    meta = f"{{name: {name}, namespace: {namespace}}}" if namespace else f"{{name: {name}}}"
    return (
        f"---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {meta}\n"
        "spec: {rules: [{host: shop.example.com}]}\n"
    )


def test_manifests_that_name_no_namespace_are_in_the_inventory_a_uniqueness_template_reads(
    write: Write,
) -> None:
    """They were filed under data.inventory.cluster, so two Ingresses taking one host passed
    (gatekeeper-library's uniqueingresshost); one alone must not conflict with itself."""
    policy = write(
        "gk.yaml", template("K8sUniqueIngressHost", UNIQUE_HOST) + constraint("K8sUniqueIngressHost")
    )
    message = "ingress host conflicts with an existing ingress <shop.example.com>"
    for manifests, expected in (
        (ingress("a") + ingress("b"), 2),
        (ingress("a") + ingress("b", "shop"), 2),  # `a` may be applied anywhere, shop too
        (ingress("a"), 0),
    ):
        code, report, _ = check(str(write("ingresses.yaml", manifests)), "--gatekeeper", str(policy))
        assert (code, denials(report)) == (1 if expected else 0, [message] * expected), manifests


def test_a_scoped_deny_for_the_generated_admission_policy_denies_here(write: Write) -> None:
    """vap.k8s.io: Gatekeeper binds the ValidatingAdmissionPolicy it generates from the
    template's CEL for it (shouldGenerateVAPB), so that deny holds in the cluster."""
    scoped = """\
  enforcementAction: scoped
  scopedEnforcementActions:
    - action: deny
      enforcementPoints: [{name: vap.k8s.io}]
"""
    policy = write("gk.yaml", template("K8sCel", cel="false") + constraint("K8sCel", scoped))
    code, report, _ = check(str(write("pod.yaml", POD)), "--gatekeeper", str(policy))
    assert (code, denials(report)) == (1, ["cel: denied"])


def test_an_expansion_template_operations_field_is_refused(write: Write) -> None:
    """applyTo has groups, versions and kinds (match.ApplyTo): `operations` was honoured and
    skipped the expansion Gatekeeper does on CREATE."""
    expansion = write(
        "exp.yaml",
        """\
apiVersion: expansion.gatekeeper.sh/v1beta1
kind: ExpansionTemplate
metadata: {name: expand-deployments}
spec:
  applyTo:
    - {groups: [apps], kinds: [Deployment], versions: [v1], operations: [UPDATE]}
  templateSource: spec.template
  generatedGVK: {kind: Pod, group: "", version: v1}
""",
    )
    policy = write("gk.yaml", template("NoLatest", NO_LATEST) + constraint("NoLatest"))
    deployment = write(
        "deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a}\n"
        "spec: {template: {spec: {containers: [{name: app, image: 'nginx:latest'}]}}}\n",
    )
    code, _, err = check(str(deployment), "--gatekeeper", str(policy), "--gatekeeper", str(expansion))
    assert code == 3
    assert f"{expansion}:1" in err and "operations is not a field of applyTo" in err


def test_an_empty_enforcement_action_denies(write: Write) -> None:
    """GetEnforcementAction: "" is deny, as when unset (it was refused, exit 3)."""
    policy = write(
        "gk.yaml", template("NoLatest", NO_LATEST) + constraint("NoLatest", '  enforcementAction: ""\n')
    )
    code, report, _ = check(str(write("pod.yaml", POD)), "--gatekeeper", str(policy))
    assert (code, denials(report)) == (1, ["latest tag: app"])


def test_a_null_parameter_the_schema_does_not_allow_is_dropped_as_the_api_server_drops_it(
    write: Write,
) -> None:
    """PruneNonNullableNullsWithoutDefaults: the template sees no `exemptImages` (it was exit 3)."""
    schema = (
        "          type: object\n          properties:\n"
        "            exemptImages: {type: array, items: {type: string}}\n"
    )
    policy = write(
        "gk.yaml",
        template("NoLatest", NO_LATEST, schema=schema)
        + constraint("NoLatest", "  parameters: {exemptImages: null}\n"),
    )
    code, report, _ = check(str(write("pod.yaml", POD)), "--gatekeeper", str(policy))
    assert (code, denials(report)) == (1, ["latest tag: app"])
