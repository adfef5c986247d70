"""A ConstraintTemplate's parameter schema as the API server takes it: Go's RE2 `pattern`s, only
OpenAPI `type`s, and a schema the API server refuses is the template's error, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.gatekeeper import K8SX_SCHEMA_HEAD

from trustgate.errors import PolicyError
from trustgate.policy import gatekeeper as gk

Write = Callable[[str, str], Path]

TEMPLATE = (
    K8SX_SCHEMA_HEAD
    + """\
            a: {{type: string}}
            b: {b}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sx
        violation[{{"msg": "x"}}] {{ true }}
"""
)

CONSTRAINT = """\
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sX
metadata: {{name: c}}
spec:
  parameters: {{a: "1", b: {value}}}
"""


def load(write: Write, schema: str, value: str = '"x"') -> gk.Library:
    write("gk/template.yaml", TEMPLATE.format(b=schema))
    write("gk/constraint.yaml", CONSTRAINT.format(value=value))
    return gk.load_library([write("gk/.keep", "").parent])


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        (r'"^\\p{L}+$"', '"Grüße"'),  # a Unicode class: RE2 has it, Python's re does not
        (r'"^\\pL\\d+$"', '"é1"'),
        (r'"[[:alpha:]]"', '"1a"'),  # a POSIX class, matched anywhere in the value as Go does
        (r'"\\Qa.b\\E"', '"xa.by"'),
    ],
)
def test_patterns_are_go_regular_expressions(write: Write, pattern: str, value: str) -> None:
    [constraint] = load(write, f"{{type: string, pattern: {pattern}}}", value).constraints
    assert constraint.parameters["a"] == "1"


@pytest.mark.parametrize(("pattern", "value"), [(r'"^\\p{L}+$"', '"x1"'), (r'"^\\pN$"', '"a"')])
def test_a_value_the_pattern_refuses_names_the_parameter(write: Write, pattern: str, value: str) -> None:
    with pytest.raises(PolicyError) as raised:
        load(write, f"{{type: string, pattern: {pattern}}}", value)
    assert "parameters.b:" in raised.value.message and "does not match" in raised.value.message
    assert raised.value.where.endswith("constraint.yaml:1")


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ("{type: foo}", 'properties.b.type: type "foo" is not one of array, boolean'),
        ("{type: 'null'}", "properties.b.type: type null is refused: use nullable: true"),
        ("{type: [string, integer]}", 'properties.b.type: type ["string", "integer"] is not one of'),
        ('{type: string, pattern: "(?=x)"}', 'properties.b.pattern: "(?=x)" is not a regular'),
        ('{type: string, pattern: "\\\\C"}', "properties.b.pattern"),  # C++ RE2 takes it; Go does not
        ('{type: array, items: {type: string, pattern: "("}}', "properties.b.items.pattern"),
    ],
)
def test_a_schema_the_api_server_refuses_is_the_templates_error(
    write: Write, schema: str, expected: str
) -> None:
    with pytest.raises(PolicyError) as raised:
        load(write, schema)
    error = raised.value
    assert error.message.startswith("template k8sx: spec.crd.spec.validation.openAPIV3Schema.")
    assert expected in error.message
    assert error.where.endswith("template.yaml:1")
    assert "the API server refuses a CustomResourceDefinition" in (error.hint or "")


def test_a_keyword_of_the_wrong_type_is_the_templates_error(write: Write) -> None:
    with pytest.raises(PolicyError) as raised:
        load(write, '{type: integer, minimum: "a"}', "3")
    error = raised.value
    assert "template k8sx has a parameter schema that cannot be used" in error.message
    assert "openAPIV3Schema.properties.b.minimum" in error.message
    assert error.where.endswith("template.yaml:1")
