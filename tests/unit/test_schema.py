from __future__ import annotations

from typing import Any

import pytest
import yaml
from support.crds import widget_crd

from trustgate.errors import ConfigError
from trustgate.policy.schema import SchemaMissing, SchemaSet, available_versions

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    },
}

CRD = yaml.safe_load(
    widget_crd(
        """\
spec:
  type: object
  required: [size]
  properties:
    size: {type: integer, minimum: 1}
    port: {x-kubernetes-int-or-string: true}
    note: {type: string, nullable: true}
    extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""
    )
)


@pytest.fixture(scope="module")
def strict() -> SchemaSet:
    return SchemaSet(version="1.33", strict=True, crds=[CRD])


def test_versions_cover_the_shipped_range() -> None:
    versions = available_versions()
    assert "1.25" in versions and "1.33" in versions


def test_valid_object_has_no_violations(strict: SchemaSet) -> None:
    assert strict.validate(DEPLOYMENT) == []


def test_unknown_field_is_named_with_its_path(strict: SchemaSet) -> None:
    bad = yaml.safe_load(yaml.safe_dump(DEPLOYMENT))
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    (violation,) = strict.validate(bad)
    assert violation.rule == "schema-unknown-field"
    assert "'imagePullPolicyy'" in violation.message
    assert violation.path == ("spec", "template", "spec", "containers", 0, "imagePullPolicyy")


def test_non_strict_allows_unknown_fields() -> None:
    bad = yaml.safe_load(yaml.safe_dump(DEPLOYMENT))
    bad["spec"]["surprise"] = 1
    assert SchemaSet(version="1.33", strict=False).validate(bad) == []


def test_wrong_type_is_reported(strict: SchemaSet) -> None:
    bad = yaml.safe_load(yaml.safe_dump(DEPLOYMENT))
    bad["spec"]["replicas"] = "two"
    (violation,) = strict.validate(bad)
    assert violation.rule == "schema-invalid" and violation.path == ("spec", "replicas")


def test_unknown_kind_and_lookalike_group_have_no_schema(strict: SchemaSet) -> None:
    with pytest.raises(SchemaMissing):
        strict.validate({"apiVersion": "example.org/v1", "kind": "Gadget"})
    # The file name drops the group's domain; a custom group must not borrow apps/v1's schema.
    with pytest.raises(SchemaMissing):
        strict.validate({**DEPLOYMENT, "apiVersion": "apps.example.org/v1"})


def test_crd_schema_validates_custom_resources(strict: SchemaSet) -> None:
    good = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 2, "port": "http", "note": None, "extra": {"anything": [1]}},
    }
    assert strict.validate(good) == []
    bad = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 0, "colour": "red"},
    }
    rules = sorted((v.rule, v.path) for v in strict.validate(bad))
    assert rules == [("schema-invalid", ("spec", "size")), ("schema-unknown-field", ("spec", "colour"))]


def test_unsupported_version_names_the_supported_ones() -> None:
    with pytest.raises(ConfigError) as err:
        SchemaSet(version="1.99", strict=True)
    assert "1.25" in err.value.diagnostics()


def test_crd_without_group_is_a_config_error(strict: SchemaSet) -> None:
    with pytest.raises(ConfigError):
        strict.add_crd({"spec": {"names": {"kind": "X"}}})


def test_a_crd_for_a_built_in_kind_is_refused(strict: SchemaSet) -> None:
    """The API server keeps serving the built-in kind: a CRD's schema for it (here one that allows
    anything) would turn off the schema check of every Ingress."""
    crd = {
        "spec": {
            "group": "networking.k8s.io",
            "names": {"kind": "Ingress", "plural": "ingresses"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        }
    }
    with pytest.raises(ConfigError, match="a built-in kind"):
        strict.add_crd(crd)
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}, "spek": {}}
    assert [v.rule for v in strict.validate(ingress)] == ["schema-unknown-field"]
