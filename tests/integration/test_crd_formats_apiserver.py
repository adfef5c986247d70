"""Differential: a CRD's string `format`s, judged by the real kube-apiserver and by trustgate.

One CRD declares a string field per format the API server knows (and a few it ignores); every
value in `support.crd_formats` is submitted as a custom resource with a server-side dry run and
validated by `SchemaSet`. The verdicts (accepted / refused) must agree for every value; a failure
lists each value that differs.

Empty strings go to a nullable twin of each field. The API server here is 1.20.2 built with Go
1.19 (scripts/kube-apiserver.sh), and there go-openapi/validate v0.19.5's type check treats "" as
null (`reflect.DeepEqual(reflect.Zero(t), reflect.ValueOf(data))` compares reflect.Value headers,
and since Go 1.19 `reflect.Zero` and a boxed "" share the runtime's zero buffer): it refuses "" in
every non-nullable string field, whatever its format. Upstream 1.20 binaries are built with Go
1.15, whose `reflect.Zero` allocates, so they should accept it (not verified here); trustgate does
not model the quirk. A nullable field skips the type check and isolates the format's verdict on "".
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from support.crd_formats import EXTRA, INVALID, VALID
from support.crds import server_accepts_widget, wait_widgets_served, widget_crd_object
from support.kube import Cluster, kube_apiserver_binary, start_cluster
from support.string_cases import edits

from trustgate.policy.schema import SchemaSet, available_versions

# Formats the API server ignores: no value may be refused. "Date-Time" is not normalised (the
# registry's names are case-sensitive), int32 is not a string format, time is not in 1.20's list.
IGNORED: dict[str, list[str]] = {
    "Date-Time": ["not a date"],
    "int32": ["x"],
    "time": ["25:99"],
    "uri-reference": ["::"],
}

# field name -> format written in the CRD; "datetime" values go to a field spelled "date-time".
FIELDS = (
    {name: name for name in VALID}
    | {"datetime": "date-time", "datetime2": "datetime"}
    | {f"ignored-{name.lower()}": name for name in IGNORED}
)


def _crd() -> dict[str, Any]:
    properties: dict[str, Any] = {field: {"type": "string", "format": fmt} for field, fmt in FIELDS.items()}
    properties |= {
        f"{field}-nullable": {"type": "string", "format": fmt, "nullable": True}
        for field, fmt in FIELDS.items()
    }
    properties["nullable-date"] = {"type": "string", "format": "date", "nullable": True}
    properties["int-or-string-uuid"] = {"x-kubernetes-int-or-string": True, "format": "uuid"}
    return widget_crd_object({"type": "object", "properties": properties})


def _cases() -> list[tuple[str, Any]]:
    """(field, value) for every value to compare."""
    cases: list[tuple[str, Any]] = []
    for corpus in (VALID, INVALID, EXTRA):
        for name, values in corpus.items():
            cases += [(name, v) for v in values]
    cases += [("datetime2", v) for v in VALID["datetime"][:2] + INVALID["datetime"][:3]]
    for name, values in IGNORED.items():
        cases += [(f"ignored-{name.lower()}", v) for v in values]
    cases += [("nullable-date", None), ("nullable-date", "2024-02-30"), ("nullable-date", "2024-02-29")]
    cases += [("int-or-string-uuid", 5), ("int-or-string-uuid", "nope")]
    cases += [("int-or-string-uuid", "123e4567-e89b-12d3-a456-426614174000")]
    return [(f"{field}-nullable", v) if v == "" else (field, v) for field, v in cases]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[k8s.ApiClient]:
    cluster: Cluster = start_cluster(tmp_path_factory.mktemp("kube"), kube_apiserver_binary())
    configuration = cluster.client_configuration()
    try:
        with k8s.ApiClient(configuration) as api_client:
            k8s.ApiextensionsV1Api(api_client).create_custom_resource_definition(_crd())
            wait_widgets_served(api_client, _widget("password", "x"))
            yield api_client
    finally:
        cluster.stop()


def _widget(field: str, value: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {field: value},
    }


def test_trustgate_and_the_api_server_agree_on_every_format_value(api: k8s.ApiClient) -> None:
    schemas = SchemaSet(version=available_versions()[0], strict=True, crds=[_crd()])
    disagreements = []
    cases = _cases()
    for field, value in cases:
        obj = _widget(field, value)
        server, reason = server_accepts_widget(api, obj)
        violations = schemas.validate(obj)
        if server != (not violations):
            ours = "; ".join(v.message for v in violations) or "accepted"
            theirs = "accepted" if server else f"refused ({reason})"
            disagreements.append(f"{field} {value!r}: API server {theirs}, trustgate {ours}")
    print(f"\ncompared {len(cases)} values: {len(disagreements)} disagreements")
    assert not disagreements, "\n".join(disagreements)


def _refused_fields(api: k8s.ApiClient, obj: dict[str, Any]) -> set[str]:
    """The spec fields the API server names in its refusal (none when it accepts)."""
    try:
        k8s.CustomObjectsApi(api).create_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", obj, dry_run="All"
        )
    except ApiException as e:
        if e.status != 422:
            raise
        causes = json.loads(e.body or "{}").get("details", {}).get("causes", [])
        return {str(c.get("field", "")).removeprefix("spec.") for c in causes}
    return set()


def _mutations(value: str) -> list[str]:
    """Near misses of a value: case, surrounding and inner whitespace, one character more or less."""
    out = [value.upper(), value.lower(), f" {value}", f"{value} ", f"{value}\n", value[:-1], value[1:]]
    out += [value + value[-1:], value.replace("-", ""), value.replace(":", "-"), value.replace(".", ":")]
    out += [value.replace("0", "00", 1), value.replace("1", "9"), value + "%", value.replace("a", "é")]
    return out


def test_every_value_in_every_format_field_gets_the_same_verdict(api: k8s.ApiClient) -> None:
    """Each value, near misses and random edits of it, in every format field: the refusals agree."""
    schemas = SchemaSet(version=available_versions()[0], strict=True, crds=[_crd()])
    strings = {v for _, v in _cases() if isinstance(v, str)}
    valid = sorted(v for values in VALID.values() for v in values if v)
    values = sorted(
        strings | {m for v in strings for m in _mutations(v)} | edits(valid, string.printable + "µμé☃", 1500)
    )
    disagreements = []
    refusals = 0
    for value in values:
        fields = [f"{f}-nullable" if value == "" else f for f in FIELDS]
        obj = _widget(fields[0], value)
        obj["spec"] = dict.fromkeys(fields, value)
        server = _refused_fields(api, obj)
        refusals += len(server)
        ours = {str(v.path[1]) for v in schemas.validate(obj) if len(v.path) > 1}
        for field in sorted(server ^ ours):
            who = "the API server" if field in server else "trustgate"
            disagreements.append(f"{field} {value!r}: only {who} refuses it")
    print(f"\n{len(values)} values x {len(FIELDS)} fields: the API server refused {refusals} of")
    print(f"{len(values) * len(FIELDS)}; {len(disagreements)} disagreements")
    assert refusals > len(values)  # the refusals name their fields (else the comparison is empty)
    assert not disagreements, "\n".join(disagreements)
