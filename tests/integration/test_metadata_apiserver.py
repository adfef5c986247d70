"""Differential: object metadata judged by the API server and by trustgate.

Label keys and values, annotation keys and the annotations' total size are checked by the API
server's `ValidateObjectMeta`, which no OpenAPI schema carries; `variables.invalid_metadata` does
the same checks. Each case below (and random edits of valid keys and values) is put in a
ConfigMap created with a server-side dry run; the verdicts (accepted / refused) must agree.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from support.kube import Cluster, kube_apiserver_binary, start_cluster
from support.string_cases import edits

from trustgate.manifests import variables

LIMIT = 256 * 1024  # bytes of annotation keys and values together

KEYS = [
    "a",
    "A",
    "a_b",
    "_a",
    "a.b",
    "a" * 63,
    "a" * 64,
    "Example.com/x",
    "example.com/X",
    "kubernetes.io/x",
    "a/b/c",
    "/x",
    "x/",
    "é",
    "\u0130",  # İ: Go lowers it to `i`, Python to `i` and a combining dot
    "x/\u0130",
    "\u212a",  # the Kelvin sign: both lower it to `k`
    "\u017f",  # the long s: lowered to itself
    "EXAMPLE.com/X",
]
LABEL_VALUES = ["", "1", "a" * 63, "a" * 64, "-a", "a-", "é", "A_b.c", " ", "a\n"]
ANNOTATIONS = [
    {"a": "x" * (LIMIT - 1)},
    {"a": "x" * LIMIT},
    {"a": "é" * (LIMIT // 2)},
    {"a": "é" * (LIMIT // 4)},
    {"a": "x" * (LIMIT // 2), "b": "x" * (LIMIT // 2)},
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started: Cluster = start_cluster(tmp_path_factory.mktemp("kube"), kube_apiserver_binary())
    try:
        yield started
    finally:
        started.stop()


def _server_accepts(cluster: Cluster, obj: dict[str, Any]) -> bool:
    request = urllib.request.Request(
        f"{cluster.url}/api/v1/namespaces/default/configmaps?dryRun=All",
        data=json.dumps(obj).encode(),
        headers={"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"},
        method="POST",
    )
    context = ssl.create_default_context(cafile=str(cluster.certs.ca))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30):
            return True
    except urllib.error.HTTPError as e:
        if e.code == 422:
            return False
        raise


def _disagreements(cluster: Cluster, metadatas: list[dict[str, Any]]) -> tuple[list[str], int]:
    out = []
    refused = 0
    for metadata in metadatas:
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", **metadata}}
        server = _server_accepts(cluster, obj)
        ours = variables.invalid_metadata(obj, namespaced=True)
        refused += not server
        if server != (not ours):
            shown = json.dumps(metadata)[:120]
            verdict = "accepted" if server else "refused"
            out.append(f"{shown}: API server {verdict}, trustgate {ours or 'accepted'}")
    return out, refused


def _cases(keys: list[str], values: list[str]) -> list[dict[str, Any]]:
    return [
        *({"labels": {key: "v"}} for key in keys),
        *({"annotations": {key: "v"}} for key in keys),
        *({"labels": {"k": value}} for value in values),
    ]


def test_trustgate_and_the_api_server_agree_on_every_case(cluster: Cluster) -> None:
    cases = [*_cases(KEYS, LABEL_VALUES), *({"annotations": a} for a in ANNOTATIONS)]
    disagreements, refused = _disagreements(cluster, cases)
    assert 0 < refused < len(cases)  # both verdicts occur
    assert not disagreements, "\n".join(disagreements)


def test_random_edits_of_valid_keys_and_values_get_the_same_verdict(cluster: Cluster) -> None:
    alphabet = "abcXYZ019-_./ é\u0130\u212a"
    keys = sorted(edits(["app.kubernetes.io/name", "a.b/C-d_e", "x"], alphabet, 300))
    values = sorted(edits(["web-1.2_3", "v"], alphabet, 200))
    cases = _cases(keys, values)
    disagreements, refused = _disagreements(cluster, cases)
    assert 0 < refused < len(cases)
    assert not disagreements, "\n".join(disagreements)
