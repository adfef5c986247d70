"""Differential: built-in fields the API server decodes from strings, judged by it and by trustgate.

A built-in object is decoded into Go types before anything else, and a string a `[]byte` field
(base64) or a `metav1.Time`/`MicroTime` field (RFC 3339) cannot be decoded from is refused with
a 400. Every value in `support.builtin_formats` (plus null, and random edits of the valid ones)
is put in each field of its Go type below and the object created with a server-side dry run;
`SchemaSet` validates the same object. The verdicts (accepted / refused) must agree for every
value; a failure lists each value that differs.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.builtin_formats import INVALID, VALID, configmap, created_at, event, lease, secret, webhook
from support.kube import Cluster, kube_apiserver_binary, start_cluster
from support.string_cases import edits

from trustgate.policy.schema import SchemaSet, available_versions

Make = Callable[[Any], dict[str, Any]]


# field -> (Go type, the object with the value in that field, the collection it is created in)
FIELDS: dict[str, tuple[str, Make, str]] = {
    "Secret data": ("byte", secret, "/api/v1/namespaces/default/secrets"),
    "ConfigMap binaryData": ("byte", configmap, "/api/v1/namespaces/default/configmaps"),
    "ValidatingWebhookConfiguration caBundle": (
        "byte",
        webhook,
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
    ),
    "metadata.creationTimestamp": ("time", created_at, "/api/v1/namespaces/default/configmaps"),
    "Event eventTime": ("micro-time", event, "/api/v1/namespaces/default/events"),
    "Lease renewTime": ("micro-time", lease, "/apis/coordination.k8s.io/v1/namespaces/default/leases"),
}

# Characters random edits draw from, per Go type: its own alphabet (digits weighted for times),
# the separators Go treats specially, and characters no decoder takes.
_ALPHABETS = {
    "byte": "ABCXYZabcxyz0189+/=\n\r-_\t é",
    "time": "0123456789" * 3 + "+-:.,TtZz \né",
}
_ALPHABETS["micro-time"] = _ALPHABETS["time"]


def _values(go_type: str) -> list[Any]:
    return [None, *VALID[go_type], *INVALID[go_type]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started: Cluster = start_cluster(tmp_path_factory.mktemp("kube"), kube_apiserver_binary())
    try:
        yield started
    finally:
        started.stop()


def _server_accepts(cluster: Cluster, collection: str, obj: dict[str, Any]) -> tuple[bool, str]:
    """The API server's verdict on creating `obj` (dry run): decoding fails with 400, validation 422.

    Raw HTTPS: the generated client checks (and refuses) the times in a body itself.
    """
    request = urllib.request.Request(
        f"{cluster.url}{collection}?dryRun=All",
        data=json.dumps(obj).encode(),
        headers={"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"},
        method="POST",
    )
    context = ssl.create_default_context(cafile=str(cluster.certs.ca))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30):
            return True, ""
    except urllib.error.HTTPError as e:
        if e.code in (400, 422):
            return False, json.loads(e.read() or b"{}").get("message", "")
        raise


def _disagreements(cluster: Cluster, schemas: SchemaSet, field: str, values: list[Any]) -> list[str]:
    _, make, collection = FIELDS[field]
    out = []
    for value in values:
        obj = make(value)
        server, reason = _server_accepts(cluster, collection, obj)
        violations = schemas.validate(obj)
        if server != (not violations):
            ours = "; ".join(v.message for v in violations) or "accepted"
            theirs = "accepted" if server else f"refused ({reason})"
            out.append(f"{field} {value!r}: API server {theirs}, trustgate {ours}")
    return out


def test_trustgate_and_the_api_server_agree_on_every_value(cluster: Cluster) -> None:
    schemas = SchemaSet(version=available_versions()[0], strict=True)
    disagreements = []
    compared = 0
    for field, (go_type, _, _) in FIELDS.items():
        values = _values(go_type)
        disagreements += _disagreements(cluster, schemas, field, values)
        compared += len(values)
    print(f"\ncompared {compared} values: {len(disagreements)} disagreements")
    assert not disagreements, "\n".join(disagreements)


@pytest.mark.parametrize("go_type", ["byte", "time", "micro-time"])
def test_random_edits_of_valid_values_get_the_same_verdict(cluster: Cluster, go_type: str) -> None:
    schemas = SchemaSet(version=available_versions()[0], strict=True)
    field = next(f for f, (t, _, _) in FIELDS.items() if t == go_type)
    values = sorted(edits([v for v in VALID[go_type] if v.strip()], _ALPHABETS[go_type], 600))
    disagreements = _disagreements(cluster, schemas, field, values)
    # Both verdicts must occur, or the comparison says little.
    accepted = sum(1 for v in values if not schemas.validate(FIELDS[field][1](v)))
    print(
        f"\n{field}: {len(values)} edits, trustgate accepted {accepted}; {len(disagreements)} disagreements"
    )
    assert 0 < accepted < len(values)
    assert not disagreements, "\n".join(disagreements)
