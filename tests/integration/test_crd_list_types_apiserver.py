"""Differential: nulls and list-type uniqueness, judged by the real kube-apiserver and by trustgate.

The API server prunes a null field or map value whose schema is neither nullable nor has a default
when it decodes an object (`PruneNonNullableNullsWithoutDefaults`), and refuses duplicate items of
a `set` and duplicate keys of a `map` list (`listtype.ValidateListSetsAndMaps`). Each object is
submitted with a server-side dry run and validated by `SchemaSet`; the verdicts must agree. The API
server here is 1.20 (scripts/kube-apiserver.sh), which has both but no CEL rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from support.crds import server_accepts_widget, wait_widgets_served, widget_crd_object
from support.kube import Cluster, kube_apiserver_binary, start_cluster

from trustgate.policy.schema import SchemaSet, available_versions

_STRING = {"type": "string"}
_SCHEMA = {
    "type": "object",
    "properties": {
        "img": _STRING,
        "opt": {"type": "string", "nullable": True},
        "labels": {"type": "object", "additionalProperties": _STRING},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": _STRING},
        "nums": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "number"}},
        "lists": {
            "type": "array",
            "x-kubernetes-list-type": "set",
            "items": {"type": "array", "x-kubernetes-list-type": "atomic", "items": _STRING},
        },
        "ports": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "protocol"],
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": _STRING,
                    "protocol": {"type": "string", "default": "TCP"},
                    "port": {"type": "integer"},
                },
            },
        },
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"tags": {"type": "array", "x-kubernetes-list-type": "set", "items": _STRING}},
            },
        },
    },
}

CASES: list[dict[str, Any]] = [
    {"img": None, "opt": "x"},
    {"img": "x", "opt": None},
    {"labels": {"a": None, "b": "x"}},
    {"tags": ["a", "b"]},
    {"tags": ["a", "b", "a"]},
    {"tags": ["a", "a", "a", "b", "b"]},
    {"nums": [1, 1.5, 2]},
    {"nums": [1.5, 1.5]},
    {"lists": [["a"], ["a", "b"]]},
    {"lists": [["a", "b"], ["a", "b"]]},
    {"ports": [{"name": "a"}, {"name": "a", "protocol": "UDP"}]},
    {"ports": [{"name": "a"}, {"name": "a", "protocol": "TCP", "port": 1}]},  # TCP is the default
    {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 1}]},
    {"items": [{"tags": ["x", "x"]}, {"tags": ["x"]}]},
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[k8s.ApiClient]:
    cluster: Cluster = start_cluster(tmp_path_factory.mktemp("kube"), kube_apiserver_binary())
    configuration = cluster.client_configuration()
    try:
        with k8s.ApiClient(configuration) as api_client:
            k8s.ApiextensionsV1Api(api_client).create_custom_resource_definition(widget_crd_object(_SCHEMA))
            wait_widgets_served(api_client, _widget({}))
            yield api_client
    finally:
        cluster.stop()


def _widget(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": spec,
    }


def test_trustgate_and_the_api_server_agree_on_nulls_and_list_type_uniqueness(api: k8s.ApiClient) -> None:
    schemas = SchemaSet(version=available_versions()[0], strict=True, crds=[widget_crd_object(_SCHEMA)])
    disagreements = []
    for spec in CASES:
        obj = _widget(spec)
        server, reason = server_accepts_widget(api, obj)
        violations = schemas.validate(obj)
        if server != (not violations):
            ours = "; ".join(v.message for v in violations) or "accepted"
            theirs = "accepted" if server else f"refused ({reason})"
            disagreements.append(f"{json.dumps(spec)}: API server {theirs}, trustgate {ours}")
    assert not disagreements, "\n".join(disagreements)
