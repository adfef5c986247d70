"""Review of the Gatekeeper support (second round): which Config applies, the ValidatingAdmissionPolicy
Gatekeeper generates against Config exclusions, v0 keywords as rule names, `every` queries, schema
references that must never be fetched, and one core-Namespace test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.gatekeeper import ALWAYS_DENY_TEMPLATE as TEMPLATE
from support.gatekeeper import SCHEMA_BODY
from support.serving import serving

from trustgate.config import ConfigError, load_config
from trustgate.errors import PolicyError
from trustgate.policy import gatekeeper as gk
from trustgate.policy.schema import SchemaSet, crd_schema_problems, parameters_validator

Write = Callable[[str, str], Path]

CONSTRAINT = """\
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sAlwaysDeny
metadata: {name: c}
spec: {match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}}
"""


def config(namespace: str, excluded: str = "prod", name: str = "config") -> str:
    meta = f"{{name: {name}, namespace: {namespace}}}" if namespace else f"{{name: {name}}}"
    return (
        f"apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata: {meta}\n"
        f'spec: {{match: [{{excludedNamespaces: ["{excluded}"], processes: ["*"]}}]}}\n'
    )


def library(write: Write, *configs: str, namespace: str = gk.DEFAULT_NAMESPACE) -> gk.Library:
    write("gk/template.yaml", TEMPLATE)
    write("gk/constraint.yaml", CONSTRAINT)
    for i, text in enumerate(configs):
        write(f"gk/config-{i}.yaml", text)
    return gk.load_library([write("gk/.keep", "").parent], namespace=namespace)


# -- F1: only <gatekeeper namespace>/config ---------------------------------------------------


def test_a_config_named_config_in_another_namespace_is_ignored_with_a_note(write: Write) -> None:
    lib = library(write, config("attacker-ns"))
    assert lib.exclusions is None
    assert any(
        "attacker-ns/config" in n and "is ignored" in n and "gatekeeper-system/config" in n for n in lib.notes
    )


def test_a_later_config_in_another_namespace_does_not_replace_gatekeepers(write: Write) -> None:
    lib = library(write, config("gatekeeper-system", "kube-system"), config("team-a", "prod"))
    assert lib.exclusions is not None and lib.exclusions.name == "gatekeeper-system/config"
    assert lib.exclusions.excluded["webhook"] == ("kube-system",)
    assert not any("as applying them in order would" in n for n in lib.notes)


def test_a_config_without_a_namespace_is_ignored_and_says_to_set_it(write: Write) -> None:
    lib = library(write, config(""))
    assert lib.exclusions is None
    assert any("names no metadata.namespace" in n for n in lib.notes)


def test_gatekeepers_namespace_is_configurable(write: Write) -> None:
    lib = library(write, config("gatekeeper-system"), config("opa-system"), namespace="opa-system")
    assert lib.exclusions is not None and lib.exclusions.name == "opa-system/config"


def test_two_configs_of_one_namespace_and_name_are_refused(write: Write) -> None:
    with pytest.raises(PolicyError) as raised:
        library(write, config("gatekeeper-system", "a"), config("gatekeeper-system", "b"))
    assert "gatekeeper-system/config is given twice" in raised.value.message
    assert "config-0.yaml:1" in raised.value.message and raised.value.where.endswith("config-1.yaml:1")


def test_the_gatekeeper_namespace_setting_is_read(write: Write) -> None:
    path = write(
        "trustgate.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        "manifests: {gatekeeper: {namespace: opa-system}}\n",
    )
    assert load_config(path).gatekeeper.namespace == "opa-system"
    write(
        "bad.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests: {gatekeeper: {namespace: A_B}}\n",
    )
    with pytest.raises(ConfigError):
        load_config(path.parent / "bad.yaml")


# -- F3: Config shape -----------------------------------------------------------------------


@pytest.mark.parametrize("body", ["spec: []", "spec: x", "metadata: [config]"])
def test_a_config_of_the_wrong_shape_is_refused_naming_its_file(body: str) -> None:
    obj: dict[str, Any] = {"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config"}
    key, _, value = body.partition(": ")
    obj[key] = [value.strip("[]")] if value.startswith("[") else value
    with pytest.raises(PolicyError, match="must be a mapping") as raised:
        gk.parse_config(obj, file="c.yaml", line=4)
    assert raised.value.where == "c.yaml:4"


# -- F2: what the generated ValidatingAdmissionPolicy enforces -------------------------------

CEL_TEMPLATE = gk.Template(
    "k8sceldeny", "K8sCelDeny", "t.yaml", 1, cel={"validations": [{"expression": "false"}]}
)


def scoped(*entries: tuple[str, list[str]], template: gk.Template = CEL_TEMPLATE) -> gk.Constraint:
    obj = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": template.kind,
        "metadata": {"name": "c"},
        "spec": {
            "enforcementAction": "scoped",
            "scopedEnforcementActions": [
                {"action": action, "enforcementPoints": [{"name": p} for p in points]}
                for action, points in entries
            ],
        },
    }
    return gk.parse_constraint(obj, {template.kind: template}, file="c.yaml")


def test_the_action_of_the_generated_vap_is_kept_apart() -> None:
    only_vap = scoped(("deny", ["vap.k8s.io"]))
    assert (only_vap.action_name, only_vap.vap_action_name) == ("deny", "deny")
    both = scoped(("dryrun", ["validation.gatekeeper.sh"]), ("warn", ["vap.k8s.io"]))
    assert (both.action_name, both.vap_action_name) == ("warn", "warn")
    star = scoped(("deny", ["*"]))
    assert star.vap_action_name == "deny"
    assert scoped(("deny", ["validation.gatekeeper.sh"])).vap_action_name == ""
    no_vap = gk.Template("k8sx", "K8sX", "t.yaml", 1, cel={"generateVAP": False, "validations": []})
    assert scoped(("deny", ["vap.k8s.io"]), template=no_vap).vap_action_name == ""


# -- F4 and F6: v0 text ----------------------------------------------------------------------

KEYWORD_RULE = """\
package t
exempt(c) {{
  c.name == "a"
}}
{word}(c) {{
  c.x
}} {{
  c.name == "b"
}}
deny[c.name] {{ c := input.cs[_]; not exempt(c) }}
"""


@pytest.mark.parametrize("word", ["if", "in", "contains"])
def test_a_rule_named_as_an_unimported_keyword_is_refused_naming_its_line(word: str) -> None:
    """Without `future.keywords`, `if(c) {...} {...}` defines a rule `if`: its further body went to
    `exempt`, and `b` was exempted (a false allow)."""
    with pytest.raises(PolicyError, match=f"starts with `{word}`") as raised:
        gk.v0_compat(KEYWORD_RULE.format(word=word), file="t.yaml", first_line=10)
    assert raised.value.where == "t.yaml:14"


def test_an_imported_keyword_still_continues_a_head() -> None:
    text = 'package t\nimport future.keywords.if\ndeny["x"]\n  if { input.a }\n'
    assert gk.v0_compat(text) == text
    text = "package t\nimport rego.v1\np contains 1\n  if { input.a }\n"
    assert gk.v0_compat(text) == text


EVERY = """\
package t
import future.keywords.every
import future.keywords.in
deny[msg] {
  xs := input.xs
  every x in xs {
    x.ok
    (x.n + 1) > 2
  }
  every y in {1, 2} {
    y > 0
    (y + 1) > 1
  }
  msg := "all ok and big"
}
"""


def test_a_line_opening_with_a_paren_inside_every_ends_the_previous_expression() -> None:
    out = gk.v0_compat(EVERY)
    assert "    x.ok;\n" in out and "    y > 0;\n" in out and out.count("\n") == EVERY.count("\n")
    engine = gk.embedded_engine()
    engine.add_modules([gk.Module("t.rego", out)])
    assert engine.eval_rule("data.t.deny", {"xs": [{"ok": True, "n": 5}]}) == ["all ok and big"]
    assert engine.eval_rule("data.t.deny", {"xs": [{"ok": True, "n": 0}]}) == []


# -- F5: schema references ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "place"),
    [
        ({"$ref": "http://example.com/x.json"}, "x.$ref"),
        ({"$ref": "#/definitions/x"}, "x.$ref"),
        ({"definitions": {"x": {"type": "string"}}}, "x.definitions"),
        ({"dependencies": {}}, "x.dependencies"),
        ({"type": "array", "items": [{"type": "string"}]}, "x.items"),
        ({"type": "array", "additionalItems": False}, "x.additionalItems"),
        ({"type": "object", "patternProperties": {"^a": {}}}, "x.patternProperties"),
        ({"id": "x"}, "x.id"),
        ({"type": "array", "uniqueItems": True}, "x.uniqueItems"),
        (
            {"type": "object", "properties": {"a": {"allOf": [{"$ref": "#/x"}]}}},
            "x.properties.a.allOf[0].$ref",
        ),
    ],
)
def test_keywords_the_api_server_refuses_are_schema_problems(schema: dict[str, Any], place: str) -> None:
    assert [p for p, _ in crd_schema_problems(schema, "x")] == [place]


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 that records every path asked for."""
    with serving(SCHEMA_BODY, content_type="application/json") as served:
        yield served


def test_a_template_with_a_remote_ref_is_refused_and_nothing_is_fetched(
    write: Write, http_server: tuple[str, list[str]]
) -> None:
    url, asked = http_server
    crd = (
        "  crd:\n    spec:\n      names: {kind: K8sAlwaysDeny}\n      validation:\n"
        f'        openAPIV3Schema: {{properties: {{a: {{$ref: "{url}/x.json"}}}}}}\n'
    )
    write("gk/template.yaml", TEMPLATE.replace("  crd: {spec: {names: {kind: K8sAlwaysDeny}}}\n", crd))
    write("gk/constraint.yaml", CONSTRAINT.replace("spec: {", "spec: {parameters: {a: zzz}, "))
    with pytest.raises(PolicyError) as raised:
        gk.load_library([write("gk/.keep", "").parent])
    assert "openAPIV3Schema.properties.a.$ref: $ref is not supported" in raised.value.message
    assert raised.value.where.endswith("template.yaml:1")
    assert asked == []


def test_the_parameter_validator_never_fetches_a_reference(http_server: tuple[str, list[str]]) -> None:
    """Defence in depth: should a `$ref` get past `crd_schema_problems`, it is unresolvable."""
    url, asked = http_server
    validator = parameters_validator(
        {"type": "object", "properties": {"a": {"$ref": f"{url}/y.json"}}}, strict=False
    )
    with pytest.raises(Exception, match="Unresolvable"):
        list(validator.iter_errors({"a": "zz"}))
    assert asked == []


def test_a_crd_with_a_remote_ref_is_refused_and_nothing_is_fetched(
    http_server: tuple[str, list[str]],
) -> None:
    url, asked = http_server
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "properties": {"a": {"$ref": f"{url}/z.json"}}}
                    },
                }
            ],
        },
    }
    schemas = SchemaSet(version="1.30", strict=True)
    with pytest.raises(ConfigError, match=r"\$ref is not supported"):
        schemas.add_crd(crd)
    assert asked == []


# -- F9: one core-Namespace test -----------------------------------------------------------


def test_one_test_says_what_a_core_namespace_is() -> None:
    assert gk.reviews_namespace({"kind": {"group": "", "version": "v1", "kind": "Namespace"}})
    assert not gk.reviews_namespace({"kind": {"group": "example.com", "kind": "Namespace"}})
    assert not gk.reviews_namespace({"kind": "Namespace"})
    assert gk.is_namespace_kind("", "Namespace") and not gk.is_namespace_kind("x.io", "Namespace")


def test_the_same_config_given_twice_is_noted_not_refused(write: Write) -> None:
    """gatekeeper-library's checkout has a sync.yaml (a Config with no exclusions) per template."""
    lib = library(write, config("gatekeeper-system", "a"), config("gatekeeper-system", "a"))
    assert lib.exclusions is not None and lib.exclusions.where.endswith("config-0.yaml:1")
    assert any("given more than once" in n and "same namespace exclusions" in n for n in lib.notes)


def test_a_field_named_every_opens_no_query() -> None:
    text = 'package t\np {\n  x := input.every\n  y := {\n    "a": 1,\n    ("b"): 2}\n  y.a == x\n}\n'
    assert gk.v0_compat(text) == text
