"""Gatekeeper templates and constraints: reading, match semantics, evaluation, bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trustgate.errors import PolicyError
from trustgate.policy import gatekeeper as gk

Write = Callable[[str, str], Path]

TEMPLATE = """\
apiVersion: templates.gatekeeper.sh/{version}
kind: ConstraintTemplate
metadata:
  name: k8smaxreplicas
spec:
  crd:
    spec:
      names:
        kind: K8sMaxReplicas
      validation:
        openAPIV3Schema:
          type: object
          properties:
            max:
              type: integer
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8smaxreplicas

        import data.lib.helpers.replicas

        violation[{{"msg": msg, "details": {{"max": input.parameters.max}}}}] {{
          replicas(input.review.object) > input.parameters.max
          n := replicas(input.review.object)
          msg := sprintf("%v has %v replicas", [input.review.object.metadata.name, n])
        }}
      libs:
        - |
          package lib.helpers

          replicas(obj) = n {{
            n := obj.spec.replicas
          }}
"""

CONSTRAINT = """\
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sMaxReplicas
metadata:
  name: at-most-three
spec:
  enforcementAction: {action}
  match:
    kinds:
      - apiGroups: ["apps"]
        kinds: ["Deployment"]
  parameters:
    max: {max}
"""


def deployment(
    name: str = "web", replicas: int = 5, namespace: str = "shop", **labels: str
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"replicas": replicas},
    }


def library(write: Write, *, version: str = "v1", action: str = "deny", max: str = "3") -> gk.Library:
    write("gk/template.yaml", TEMPLATE.format(version=version))
    constraint = write("gk/constraint.yaml", CONSTRAINT.format(action=action, max=max))
    return gk.load_library([constraint.parent])


def evaluate(lib: gk.Library, obj: dict[str, Any], inventory: list[Any] | None = None) -> list[gk.Violation]:
    evaluator = gk.ConstraintSet(lib.templates.values(), lib.constraints).compile(gk.embedded_engine())
    evaluator.set_inventory(inventory or [])
    review = gk.review_of(obj)
    matched, _ = evaluator.matching(review)
    return evaluator.review(review, matched)


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_template_with_libs_and_parameters_reports_violations(write: Write, version: str) -> None:
    lib = library(write, version=version)
    violations = evaluate(lib, deployment(replicas=5))
    assert [(v.constraint.id, v.message, dict(v.details)) for v in violations] == [
        ("K8sMaxReplicas/at-most-three", "web has 5 replicas", {"max": 3})
    ]
    assert evaluate(lib, deployment(replicas=2)) == []


def test_constraint_only_applies_to_its_kinds(write: Write) -> None:
    lib = library(write)
    statefulset = {**deployment(replicas=9), "kind": "StatefulSet"}
    assert evaluate(lib, statefulset) == []


@pytest.mark.parametrize(("action", "mode"), [("deny", "enforce"), ("warn", "warn"), ("dryrun", "audit")])
def test_enforcement_action_maps_to_a_mode(write: Write, action: str, mode: str) -> None:
    lib = library(write, action=action)
    assert lib.constraints[0].action is not None and lib.constraints[0].action.value == mode


def scoped(*entries: tuple[str, list[str]]) -> str:
    return "scoped\n  scopedEnforcementActions:\n" + "".join(
        f"    - action: {action}\n      enforcementPoints: [{', '.join(f'{{name: {p}}}' for p in points)}]\n"
        for action, points in entries
    )


@pytest.mark.parametrize(
    ("action", "mode", "name"),
    [
        (scoped(("deny", ["audit.gatekeeper.sh"])), "audit", "dryrun"),  # the webhook does not act
        (
            scoped(("warn", ["audit.gatekeeper.sh"]), ("deny", ["validation.gatekeeper.sh"])),
            "enforce",
            "deny",
        ),
        (scoped(("warn", ['"*"'])), "warn", "warn"),
        (
            scoped(("warn", ["validation.gatekeeper.sh"]), ("deny", ['"*"'])),
            "enforce",
            "deny",
        ),  # the strictest
    ],
)
def test_scoped_enforcement_action_is_what_the_webhook_would_do(
    write: Write, action: str, mode: str, name: str
) -> None:
    [constraint] = library(write, action=action).constraints
    assert constraint.action is not None and (constraint.action.value, constraint.action_name) == (mode, name)


def test_parameters_violating_the_schema_name_file_and_constraint(write: Write) -> None:
    with pytest.raises(PolicyError) as raised:
        library(write, max='"three"')
    error = raised.value
    assert "constraint K8sMaxReplicas/at-most-three" in error.message
    assert "parameters.max" in error.message and "'three' is not of type 'integer'" in error.message
    assert error.where.endswith("constraint.yaml:1")


def test_constraint_for_an_unknown_template_is_an_error(write: Write) -> None:
    constraint = write("only/constraint.yaml", CONSTRAINT.format(action="deny", max=3))
    with pytest.raises(PolicyError, match="no ConstraintTemplate defines the kind K8sMaxReplicas") as raised:
        gk.load_library([constraint])
    assert raised.value.where == f"{constraint}:1"


def test_template_that_does_not_compile_names_file_template_and_line(write: Write) -> None:
    broken = TEMPLATE.format(version="v1").replace(
        "replicas(input.review.object) >", "replicas(input.review.object) >>"
    )
    template = write("gk/template.yaml", broken)
    write("gk/constraint.yaml", CONSTRAINT.format(action="deny", max=3))
    lib = gk.load_library([template.parent])
    with pytest.raises(PolicyError) as raised:
        gk.ConstraintSet(lib.templates.values(), lib.constraints).compile(gk.embedded_engine())
    # The Rego starts on line 19 of the file; regorus reports the rule whose body does not
    # parse, which is the file's line 23 (the Rego's 5th line).
    assert raised.value.message.startswith(f"template k8smaxreplicas does not compile: {template}:23:")
    assert "violation[" in raised.value.message


def test_template_reading_other_data_is_rejected(write: Write) -> None:
    text = TEMPLATE.format(version="v1").replace("input.parameters.max\n", "data.settings.max\n", 1)
    write("gk/template.yaml", text)
    write("gk/constraint.yaml", CONSTRAINT.format(action="deny", max=3))
    lib = gk.load_library([Path(write("gk/x.txt", "")).parent])
    with pytest.raises(PolicyError, match=r"reads data\.settings"):
        gk.ConstraintSet(lib.templates.values(), lib.constraints)


def test_cel_only_template_is_evaluated_with_cel(write: Write) -> None:
    cel = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8scelonly}
spec:
  crd: {spec: {names: {kind: K8sCelOnly}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
            validations: [{expression: "true"}]
"""
    write("cel/template.yaml", cel)
    write(
        "cel/c.yaml", "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sCelOnly\nmetadata: {name: x}\n"
    )
    lib = gk.load_library([Path(write("cel/y.txt", "")).parent])
    assert lib.unsupported == []
    constraint_set = gk.ConstraintSet(lib.templates.values(), lib.constraints)
    assert constraint_set.skipped == [] and [c.id for c in constraint_set.constraints] == ["K8sCelOnly/x"]
    assert list(constraint_set.cel) == ["K8sCelOnly"] and not constraint_set.rego_kinds

    write("cel/template.yaml", cel.replace("K8sNativeValidation", "Wasm"))  # an engine trustgate lacks
    lib = gk.load_library([Path(write("cel/y.txt", "")).parent])
    assert [t.name for t in lib.unsupported] == ["k8scelonly"]
    assert "only Wasm code" in lib.unsupported[0].unsupported


def test_two_templates_with_the_same_lib_package_do_not_clash(write: Write) -> None:
    lib = library(write)
    other = (
        TEMPLATE.format(version="v1")
        .replace("k8smaxreplicas", "k8sminreplicas")
        .replace("K8sMaxReplicas", "K8sMinReplicas")
        .replace("n := obj.spec.replicas", "n := 0 - obj.spec.replicas")
    )
    write("gk2/template.yaml", other)
    constraint = CONSTRAINT.format(action="deny", max=-4).replace("K8sMaxReplicas", "K8sMinReplicas")
    second = gk.load_library([write("gk2/constraint.yaml", constraint).parent])
    both = gk.Library({**lib.templates, **second.templates}, lib.constraints + second.constraints)
    ids = sorted(v.constraint.id for v in evaluate(both, deployment(replicas=5)))
    assert ids == [
        "K8sMaxReplicas/at-most-three"
    ]  # its own lib: -5 > -4 is false; the other lib would give 5 > -4


# -- match semantics ---------------------------------------------------------


def match(**spec: Any) -> gk.Match:
    return gk._parse_match(spec, "constraint X/y", "c.yaml")


NAMESPACES = {
    "prod": {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "prod", "labels": {"env": "prod"}},
    },
    "dev": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev", "labels": {"env": "dev"}}},
}


@pytest.mark.parametrize(
    ("spec", "obj", "namespace", "expected"),
    [
        ({"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}]}, deployment(), "shop", True),
        ({"kinds": [{"apiGroups": [""], "kinds": ["Deployment"]}]}, deployment(), "shop", False),
        ({"kinds": [{"apiGroups": ["*"], "kinds": ["*"]}]}, deployment(), "shop", True),
        ({"namespaces": ["kube-*"]}, deployment(namespace="kube-system"), "kube-system", True),
        ({"namespaces": ["kube-*"]}, deployment(), "shop", False),
        ({"excludedNamespaces": ["*-system"]}, deployment(namespace="kube-system"), "kube-system", False),
        ({"excludedNamespaces": ["*-system"]}, deployment(), "shop", True),
        ({"scope": "Cluster"}, deployment(), "shop", False),
        ({"scope": "Namespaced"}, deployment(), "shop", True),
        ({"scope": "Cluster"}, NAMESPACES["prod"], "", True),
        ({"name": "web-*"}, deployment(name="web-1"), "shop", True),
        ({"name": "web-*"}, deployment(name="api"), "shop", False),
        ({"labelSelector": {"matchLabels": {"tier": "front"}}}, deployment(tier="front"), "shop", True),
        ({"labelSelector": {"matchLabels": {"tier": "front"}}}, deployment(tier="back"), "shop", False),
        (
            {
                "labelSelector": {
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
                }
            },
            deployment(tier="b"),
            "shop",
            True,
        ),
        (
            {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}},
            deployment(),
            "shop",
            True,
        ),
        (
            {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}},
            deployment(),
            "shop",
            False,
        ),
        (
            {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}},
            deployment(),
            "shop",
            True,
        ),
        ({"namespaceSelector": {"matchLabels": {"env": "prod"}}}, deployment(namespace="prod"), "prod", True),
        ({"namespaceSelector": {"matchLabels": {"env": "prod"}}}, deployment(namespace="dev"), "dev", False),
        ({"namespaceSelector": {"matchLabels": {"env": "prod"}}}, NAMESPACES["prod"], "", True),
    ],
)
def test_match_semantics(spec: dict[str, Any], obj: dict[str, Any], namespace: str, expected: bool) -> None:
    assert match(**spec).matches(obj, namespace, NAMESPACES) is expected


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
ANY, UNKNOWN = gk.Placement.ANY_NAMESPACE, gk.Placement.UNKNOWN_SCOPE


@pytest.mark.parametrize(
    ("spec", "placement", "expected"),
    [
        # gator (and admission): an object reviewed without a namespace is cluster-scoped.
        ({"scope": "Namespaced"}, gk.Placement.AS_REVIEWED, False),
        ({"scope": "Cluster"}, gk.Placement.AS_REVIEWED, True),
        # The gate: a namespaced kind's manifest that names none lands in some namespace.
        ({"scope": "Namespaced"}, ANY, True),
        ({"scope": "Cluster"}, ANY, False),
        ({"namespaces": ["prod"]}, ANY, True),
        ({"excludedNamespaces": ["*"]}, ANY, True),
        ({"namespaceSelector": {"matchLabels": {"env": "prod"}}}, ANY, True),  # no Namespace needed
        # Its kind's scope unknown: it may be namespaced or not.
        ({"scope": "Namespaced"}, UNKNOWN, True),
        ({"scope": "Cluster"}, UNKNOWN, True),
    ],
)
def test_match_of_an_object_without_a_namespace(
    spec: dict[str, Any], placement: gk.Placement, expected: bool
) -> None:
    assert match(**spec).matches(POD, "", {}, placement=placement) is expected


def test_placement_changes_nothing_for_an_object_in_a_namespace_or_a_namespace_itself() -> None:
    for placement in gk.Placement:
        assert match(scope="Cluster").matches(deployment(), "shop", {}, placement=placement) is False
        assert match(namespaces=["prod"]).matches(deployment(), "shop", {}, placement=placement) is False
        assert match(scope="Namespaced").matches(NAMESPACES["prod"], "", {}, placement=placement) is False


def test_namespace_selector_needs_the_namespace_object() -> None:
    with pytest.raises(gk.NamespaceUnknown):
        match(namespaceSelector={"matchLabels": {"env": "prod"}}).matches(deployment(namespace="x"), "x", {})


def test_bad_selector_operator_is_an_error() -> None:
    with pytest.raises(PolicyError, match="operator 'Maybe'"):
        match(labelSelector={"matchExpressions": [{"key": "a", "operator": "Maybe"}]})


@pytest.mark.parametrize(
    ("spec", "message"),
    [  # shapes the API server's schema for a constraint refuses: never a crash, never "matches nothing"
        ({"labelSelector": {"matchLabels": "x"}}, "spec.match.labelSelector.matchLabels must be a mapping"),
        ({"namespaceSelector": {"matchLabels": "x"}}, "spec.match.namespaceSelector.matchLabels must be"),
        ({"labelSelector": {"matchLabels": {"a": 1}}}, "matchLabels must be a mapping of strings to strings"),
        (
            {"labelSelector": {"matchExpressions": {"key": "a"}}},
            "labelSelector.matchExpressions must be a list",
        ),
        (
            {"labelSelector": {"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]}},
            "labelSelector.matchExpressions[0].values must be a list of strings",
        ),
        (
            {"labelSelector": {"matchExpressions": [{"operator": "Exists"}]}},
            "matchExpressions[0].key must be a non-empty string",
        ),
        (
            {"kinds": [{"apiGroups": [""], "kinds": "Pod"}]},
            "spec.match.kinds[0].kinds must be a list of strings",
        ),
        ({"kinds": [{"apiGroups": "", "kinds": ["Pod"]}]}, "spec.match.kinds[0].apiGroups must be a list"),
        ({"kinds": {"kinds": ["Pod"]}}, "spec.match.kinds must be a list"),
        ({"namespaces": "prod"}, "spec.match.namespaces must be a list of strings"),
        ({"excludedNamespaces": "kube-system"}, "spec.match.excludedNamespaces must be a list of strings"),
        ({"name": ["a"]}, "spec.match.name must be a string"),
    ],
)
def test_malformed_match_fields_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        match(**spec)
    assert message in raised.value.message
    assert raised.value.where == "c.yaml"


# -- review and inventory ----------------------------------------------------


def test_review_has_the_admission_request_shape() -> None:
    review = gk.review_of(deployment())
    assert review["kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert (review["name"], review["namespace"], review["operation"]) == ("web", "shop", "CREATE")
    assert review["object"]["spec"] == {"replicas": 5} and review["userInfo"] == {}


def test_admission_review_delete_reviews_the_old_object() -> None:
    old = deployment()
    review = gk.review_of_admission(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"operation": "DELETE", "oldObject": old, "userInfo": {"username": "alice"}},
        }
    )
    assert review["object"] is old and review["userInfo"] == {"username": "alice"}
    assert review["kind"]["kind"] == "Deployment" and review["namespace"] == "shop"


def test_inventory_layout_is_gatekeepers() -> None:
    inventory = gk.inventory_of([deployment(), NAMESPACES["prod"]])
    assert inventory["namespace"]["shop"]["apps/v1"]["Deployment"]["web"]["spec"] == {"replicas": 5}
    assert inventory["cluster"]["v1"]["Namespace"]["prod"]["metadata"]["labels"] == {"env": "prod"}


def test_v0_forms_regorus_reads_differently_are_normalised_keeping_lines() -> None:
    text = (
        "p(x) = y {\n  x.a\n  y := 1\n} {\n  x.b\n  y := 2\n}\nq {\n  input.y\n  (input.a - input.b) > 1\n}\n"
    )
    out = gk.v0_compat(text)
    assert out.count("\n") == text.count("\n")
    assert "} p(x) = y {" in out and "input.y;" in out


# -- review fixes: Gatekeeper's source against trustgate ---------------------------------------

GENERATED_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "batch-web-"}}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*web*", True),  # MatchesGenerateName: contains
        ("*api*", False),
        ("batch-*", True),  # prefix
        ("api-*", False),
        ("*", True),
        ("*-web-", False),  # a suffix pattern never matches a name still to be generated
        ("batch-web-", False),  # nor does an exact one
    ],
)
def test_a_name_pattern_matches_a_generate_name_as_gatekeeper_does(pattern: str, expected: bool) -> None:
    """Gatekeeper's namesMatch: Name.Matches(name) || Name.MatchesGenerateName(generateName)."""
    assert match(name=pattern).matches(GENERATED_POD, "shop", {}) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*sys*", "kube-system", True),
        ("kube-*", "kube-system", True),
        ("*-system", "kube-system", True),
        ("kube?*", "kube-system", False),  # `?` is no wildcard in Gatekeeper: a plain character
        ("k*-system", "kube-system", False),  # nor is an inner `*`
        ("k*-system", "k*-system", True),
    ],
)
def test_namespace_patterns_are_gatekeepers_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert match(namespaces=[pattern]).matches(deployment(namespace=value), value, {}) is expected


def v0_eval(text: str, rule: str, data: dict[str, Any]) -> Any:
    engine = gk.embedded_engine()
    engine.add_modules([gk.Module("t.rego", gk.v0_compat(text, file="t.yaml", first_line=1))])
    return engine.eval_rule(rule, data)


MULTI_BODY_WITH_COMMENTS = """\
package t
exempt(c) { # by name, "{" in a comment
  c.name == "a"
} # the second body
{
  c.name == "b"  # a "}" here too
}
is_privileged(c) {
  c.securityContext.privileged
  msg := "not { a body"
  msg != "#"
}
v[c.name] {
  c := input.containers[_]
  is_privileged(c)
  not exempt(c)
}
"""


def test_several_bodies_are_normalised_whatever_comments_and_strings_hold() -> None:
    """A head followed by a comment once kept its further body from being recognised: the body
    went to the previous rule's head (a false allow: `exempt` took `is_privileged`'s body)."""
    containers = [{"name": n, "securityContext": {"privileged": True}} for n in ("a", "b", "c")]
    out = gk.v0_compat(MULTI_BODY_WITH_COMMENTS)
    assert out.count("\n") == MULTI_BODY_WITH_COMMENTS.count("\n")
    assert "\nexempt(c) {\n" in out  # the second body gets its own head, on its own line
    assert v0_eval(MULTI_BODY_WITH_COMMENTS, "data.t.v", {"containers": containers}) == ["c"]


def test_a_line_opening_with_a_paren_ends_the_expression_before_a_comment() -> None:
    text = 'package t\nq {\n  input.y # note (with a "quote\n  (input.a - input.b) > 1\n}\n'
    assert "input.y; # note" in gk.v0_compat(text)
    assert v0_eval(text, "data.t.q", {"y": True, "a": 3, "b": 1}) is True


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("package t\np {\n  input.a\n} else = 2 {\n  input.b\n} {\n  input.c\n}\n", 6, "after an `else`"),
        ("package t\np[x]\n  = 1 {\n  x := input.a\n} {\n  x := input.b\n}\n", 5, "head spans lines"),
    ],
)
def test_a_further_body_that_cannot_be_rewritten_with_certainty_is_refused(
    text: str, line: int, why: str
) -> None:
    with pytest.raises(PolicyError, match="cannot normalise") as raised:
        gk.v0_compat(text, file="t.yaml", first_line=10)
    assert raised.value.where == f"t.yaml:{9 + line}"
    assert why in raised.value.message


def test_text_that_is_no_rego_is_left_to_the_engine_to_refuse() -> None:
    for text in ('package t\np { x := "open\n}\n', "package t\np { input.a ]\n"):
        assert gk.v0_compat(text) == text


INGRESS = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "a"}}
BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "b", "namespace": "stray"},
}
WIDGET = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}


def scope(obj: Any) -> bool | None:
    return {"Ingress": True, "ClusterRoleBinding": False}.get(obj["kind"])


def test_the_gates_inventory_files_manifests_where_the_api_server_would_create_them() -> None:
    inventory = gk.inventory_of([INGRESS, BINDING, WIDGET, deployment()], namespaced=scope)
    unplaced = inventory["namespace"][gk.UNPLACED_NAMESPACE]
    ingress = unplaced["networking.k8s.io/v1"]["Ingress"]["a"]
    assert ingress["metadata"] == {"name": "a", "namespace": gk.UNPLACED_NAMESPACE}
    binding = inventory["cluster"]["rbac.authorization.k8s.io/v1"]["ClusterRoleBinding"]["b"]
    assert binding["metadata"] == {"name": "b"}  # the API server clears a cluster-scoped kind's namespace
    assert "stray" not in inventory["namespace"]
    # A kind of unknown scope is filed both ways; one in a namespace stays there.
    assert inventory["cluster"]["example.com/v1"]["Widget"]["w"] == WIDGET
    assert unplaced["example.com/v1"]["Widget"]["w"]["metadata"]["namespace"] == gk.UNPLACED_NAMESPACE
    assert inventory["namespace"]["shop"]["apps/v1"]["Deployment"]["web"] == deployment()
    # gator (no scopes): as written, one without a namespace under cluster.
    assert gk.inventory_of([INGRESS])["cluster"]["networking.k8s.io/v1"]["Ingress"]["a"] == INGRESS


UNIQUE_HOST = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8suniquehost}
spec:
  crd: {spec: {names: {kind: K8sUniqueHost}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8suniquehost
        identical(obj, review) {
          obj.metadata.namespace == review.object.metadata.namespace
          obj.metadata.name == review.object.metadata.name
        }
        violation[{"msg": msg}] {
          host := input.review.object.spec.rules[_].host
          other := data.inventory.namespace[_][_]["Ingress"][_]
          other.spec.rules[_].host == host
          not identical(other, input.review)
          msg := sprintf("host %v is taken by %v", [host, other.metadata.name])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sUniqueHost
metadata: {name: unique}
"""


def ingress(name: str, namespace: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {**INGRESS, "metadata": meta, "spec": {"rules": [{"host": "shop.example.com"}]}}


def test_a_uniqueness_template_sees_manifests_that_name_no_namespace(write: Write) -> None:
    """They were filed under data.inventory.cluster, where no namespaced template looks."""
    lib = gk.load_library([write("gk/unique.yaml", UNIQUE_HOST)])
    evaluator = gk.ConstraintSet(lib.templates.values(), lib.constraints).compile(gk.embedded_engine())

    def found(obj: dict[str, Any], change_set: list[dict[str, Any]]) -> list[str]:
        evaluator.set_inventory(change_set, namespaced=scope)
        review = gk.review_of(obj)
        placement = gk.Placement.AS_REVIEWED if review.get("namespace") else gk.Placement.ANY_NAMESPACE
        matched, _ = evaluator.matching(review, placement=placement)
        return [v.message for v in evaluator.review(review, matched, placement=placement)]

    a, b, c = ingress("a"), ingress("b"), ingress("c", "shop")
    assert found(a, [a, b]) == ["host shop.example.com is taken by b"]
    assert found(b, [a, b]) == ["host shop.example.com is taken by a"]
    assert found(a, [a]) == []  # not a conflict with itself
    assert found(c, [a, c]) == ["host shop.example.com is taken by a"]  # a may be applied anywhere
    assert found(a, [a, c]) == ["host shop.example.com is taken by c"]


def cel_template(write: Write, generate_vap: str) -> None:
    source = f"            generateVAP: {generate_vap}\n" if generate_vap else ""
    write(
        "gk/template.yaml",
        f"""\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {{name: k8smaxreplicas}}
spec:
  crd: {{spec: {{names: {{kind: K8sMaxReplicas}}}}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
{source}            validations: [{{expression: "false"}}]
""",
    )


@pytest.mark.parametrize(
    ("generate_vap", "mode"),
    [
        ("true", "enforce"),
        ("", "enforce"),  # --default-create-vap-for-templates decides: fail closed
        ("false", "audit"),  # no policy is generated: the binding enforces nothing
    ],
)
def test_a_scoped_deny_for_the_generated_validating_admission_policy_denies_here(
    write: Write, generate_vap: str, mode: str
) -> None:
    """The constraint controller binds the generated VAP for `vap.k8s.io` whatever its flags say
    (shouldGenerateVAPB with ScopedActionForEP) when the template has K8sNativeValidation code."""
    cel_template(write, generate_vap)
    write("gk/constraint.yaml", CONSTRAINT.format(action=scoped(("deny", ["vap.k8s.io"])), max=3))
    [constraint] = gk.load_library([write("gk/x.txt", "").parent]).constraints
    assert constraint.action is not None and constraint.action.value == mode


def test_a_scoped_deny_for_vap_of_a_rego_only_template_is_dryrun(write: Write) -> None:
    """HasVAPCel: without K8sNativeValidation code no binding is generated, so nothing acts."""
    [constraint] = library(write, action=scoped(("deny", ["vap.k8s.io"]))).constraints
    assert constraint.action is not None and constraint.action.value == "audit"


def test_an_empty_enforcement_action_is_deny(write: Write) -> None:
    """GetEnforcementAction: "" is the default, deny (it was refused, exit 3)."""
    [constraint] = library(write, action='""').constraints
    assert (constraint.action, constraint.action_name) == (None, "deny")


NULLS_SCHEMA = {
    "type": "object",
    "properties": {
        "repos": {"type": "array", "items": {"type": "string"}},
        "note": {"type": "string", "nullable": True},
        "max": {"type": "integer", "default": 3},
        "limits": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}


@pytest.mark.parametrize("prunes", [True, False])
def test_null_parameters_are_pruned_or_defaulted_as_the_api_server_decodes_them(prunes: bool) -> None:
    """apiextensions-apiserver drops a null the schema neither allows nor defaults
    (PruneNonNullableNullsWithoutDefaults), and defaults one it defaults, before validating."""
    template = gk.Template("k8sx", "K8sX", "t.yaml", 1, schema=NULLS_SCHEMA, prunes=prunes)
    parameters = {"repos": None, "note": None, "max": None, "limits": {"cpu": None, "mem": 2}}
    assert gk.validate_parameters(template, parameters, label="c", where="c.yaml:1") == {
        "note": None,
        "max": 3,
        "limits": {"mem": 2},
    }
