"""CRD string `format`s: each checker as the kube-apiserver (1.20) decides, through SchemaSet and the CLI.

The values and verdicts live in `support.crd_formats`; the differential test submits the same
values to a real kube-apiserver (tests/integration/test_crd_formats_apiserver.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.crd_formats import INVALID, VALID
from support.crds import check_with_crd, widget_crd
from support.string_cases import format_params

from trustgate.policy import crd_formats
from trustgate.policy.schema import SchemaSet, crd_to_json_schema

Write = Callable[[str, str], Path]

CHECKED = sorted(set(VALID) - {"password"})


@pytest.mark.parametrize(("name", "value"), format_params(VALID))
def test_valid_values_pass(name: str, value: str) -> None:
    known = crd_formats.checked(name)
    assert known is None or known.check(value)


@pytest.mark.parametrize(("name", "value"), format_params(INVALID))
def test_invalid_values_fail(name: str, value: str) -> None:
    known = crd_formats.checked(name)
    assert known is not None
    assert not known.check(value)


def test_every_format_the_api_server_checks_has_cases() -> None:
    assert set(crd_formats.FORMATS) == set(CHECKED)
    assert all(INVALID[name] for name in CHECKED)


@pytest.mark.parametrize(
    ("name", "registry"),
    [("date-time", "datetime"), ("datetime", "datetime"), ("u-u-i-d", "uuid"), ("ip-v4", "ipv4")],
)
def test_dashes_are_ignored_in_format_names(name: str, registry: str) -> None:
    assert crd_formats.checked(name) is crd_formats.FORMATS[registry]


@pytest.mark.parametrize(
    "name", ["Date-Time", "UUID", "int32", "int64", "double", "time", "uri-reference", "password", ""]
)
def test_formats_the_api_server_ignores_have_no_checker(name: str) -> None:
    assert crd_formats.checked(name) is None


WIDGETS = widget_crd(
    """\
spec:
  type: object
  properties:
    when: {type: string, format: date-time}
    id: {type: string, format: uuid, nullable: true}
    port: {type: integer, format: date}
    anything: {x-kubernetes-preserve-unknown-fields: true, format: ipv4}
    either: {x-kubernetes-int-or-string: true, format: hostname}
    addresses:
      type: array
      items: {type: string, format: ipv4}
    labels:
      type: object
      additionalProperties: {type: string, format: hostname}
    window:
      type: string
      format: duration
      allOf:
      - format: date
    started: {type: string, format: Date-Time}
    clock: {type: string, format: time}
"""
)


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet(version="1.33", strict=True, crds=[yaml.safe_load(WIDGETS)])


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def test_a_bad_value_is_a_schema_violation_naming_path_value_format_and_fix(schemas: SchemaSet) -> None:
    [violation] = schemas.validate(widget(when="2024-02-30T10:00:00Z"))
    assert violation.rule == "schema-invalid"
    assert violation.path == ("spec", "when")
    assert violation.message == (
        'spec.when: "2024-02-30T10:00:00Z" is not a valid date-time (the CRD declares format: '
        "date-time and the API server refuses the object): use an RFC 3339 date-time, e.g. "
        "2024-01-31T12:00:00Z"
    )


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"addresses": ["192.0.2.1", "192.0.2.001"]}, ("spec", "addresses", 1)),
        ({"labels": {"a": "ok.example", "b": "not_a_host"}}, ("spec", "labels", "b")),
        ({"window": "5m"}, ("spec", "window")),  # a duration, but not a date: allOf's format counts
        ({"anything": "1.2.3"}, ("spec", "anything")),
        ({"either": "a_b"}, ("spec", "either")),
        ({"id": "nope"}, ("spec", "id")),
    ],
)
def test_formats_are_checked_wherever_the_schema_puts_them(
    schemas: SchemaSet, spec: dict[str, Any], path: tuple[Any, ...]
) -> None:
    assert [v.path for v in schemas.validate(widget(**spec))] == [path]


@pytest.mark.parametrize(
    "spec",
    [
        {"when": "2024-01-31T12:00:00.5+01:00", "id": "123E4567-E89B-12D3-A456-426614174000"},
        {"id": None},  # null is never format-checked
        {"either": 8080},  # nor is a number
        {"anything": {"nested": "x"}},
        {"started": "whenever", "clock": "25:99"},  # formats the API server ignores
    ],
)
def test_values_the_api_server_accepts_pass(schemas: SchemaSet, spec: dict[str, Any]) -> None:
    assert schemas.validate(widget(**spec)) == []


def test_a_string_in_a_typed_field_gets_its_format_checked_too(schemas: SchemaSet) -> None:
    # go-openapi runs the format check on any string value, whatever the declared type: the API
    # server reports both errors for "x" in `type: integer, format: date`.
    messages = sorted(v.message for v in schemas.validate(widget(port="x")))
    assert len(messages) == 2
    assert "is not of type" in messages[0]
    assert 'spec.port: "x" is not a valid date' in messages[1]


def test_converted_schema_keeps_only_checked_formats() -> None:
    converted = crd_to_json_schema(
        {
            "type": "object",
            "properties": {
                "a": {"type": "string", "format": "date-time"},
                "b": {"type": "integer", "format": "int64"},
                "c": {"type": "string", "format": "password"},
            },
        },
        strict=False,
    )
    props = converted["properties"]
    assert props["a"]["format"] == "k8s:date-time"
    assert "format" not in props["b"]
    assert "format" not in props["c"]


def test_check_reports_a_bad_format_and_fails(write: Write) -> None:
    crd = write("crd.yaml", WIDGETS)
    manifest = write("w.yaml", yaml.safe_dump(widget(addresses=["10.0.0.300"])))
    code, [finding] = check_with_crd(crd, manifest)
    assert code == 1
    assert (finding["rule"], finding["path"]) == ("schema-invalid", "spec.addresses[0]")
    assert '"10.0.0.300" is not a valid ipv4' in finding["message"]


@pytest.mark.parametrize("name", CHECKED)
def test_no_checker_raises_on_a_lone_surrogate(name: str) -> None:
    # The loader refuses such strings first; a direct SchemaSet caller still gets a verdict.
    known = crd_formats.checked(name)
    assert known is not None
    assert known.check("a\ud800b") in (True, False)
