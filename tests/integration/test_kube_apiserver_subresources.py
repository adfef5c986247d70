"""End to end: a real kube-apiserver sends `kubectl scale` (an UPDATE of deployments/scale, whose object
is an autoscaling/v1 Scale) to `trustgate serve`, which judges it by the ValidatingAdmissionPolicy
whose rules name that subresource, as the API server's own admission would.

The kube-apiserver built for the tests is 1.20, without ValidatingAdmissionPolicy: it is the reference
for the review of a scale and for the webhook configuration `webhook-config` derives (`read_scope`
of the configuration `serve` loads) routing it; trustgate plays the policy's part.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from support.kube import Cluster, kube_apiserver_binary, start_cluster
from support.vap import denying, rule
from support.webhook import Server, make_certs, start_server

from trustgate.config import AdmissionSettings, load_config
from trustgate.server.webhookconfig import read_scope, webhook_configuration

AT_MOST_FIVE = denying(
    "at-most-five-replicas",
    [rule(["UPDATE"], ["deployments/scale"], groups=["apps"], versions=["*"])],
    [
        {
            "expression": "object.spec.replicas <= 5",
            "messageExpression": "'at most 5 replicas of ' + request.name + ', not '"
            " + string(object.spec.replicas)",
        }
    ],
    failure_policy="Fail",
)
DENIED = 'admission webhook "validate.trustgate.dev" denied the request'
DEPLOYMENT: dict[str, Any] = {
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        },
    },
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("kube"), kube_apiserver_binary())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[k8s.ApiClient]:
    with k8s.ApiClient(cluster.client_configuration()) as api_client:
        yield api_client


def _message(error: ApiException) -> str:
    message: str = json.loads(error.body)["message"]
    return message


def _scale(api: k8s.ApiClient, replicas: int, **kwargs: Any) -> Any:
    """PUT .../deployments/web/scale, as `kubectl scale deploy web --replicas N` does."""
    body = {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": replicas}}
    return k8s.AppsV1Api(api).replace_namespaced_deployment_scale("web", "shop", body, **kwargs)


@pytest.fixture(scope="module")
def served(
    cluster: Cluster, api: k8s.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    directory = tmp_path_factory.mktemp("webhook")
    policy = directory / "scale.yaml"
    policy.write_text(AT_MOST_FIVE)
    config = directory / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        f"manifests:\n  admissionPolicies: [{policy}]\nkubernetes:\n  schemas: false\n"
    )
    db = directory / "decisions.db"
    certs = make_certs(directory / "certs")
    server = start_server(certs, "-c", str(config), "--decision-log", f"sqlite:///{db}", workers=1)
    try:  # stopped even when the setup fails
        core = k8s.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "shop"}})
        # Made before the webhook is registered: its CREATE is not what is tested here.
        k8s.AppsV1Api(api).create_namespaced_deployment("shop", DEPLOYMENT)
        manifest = webhook_configuration(
            AdmissionSettings(timeout_seconds=5),
            url=f"https://127.0.0.1:{server.port}",
            ca_bundle=certs.ca.read_bytes(),
            kubernetes_version="1.20",
            scope=read_scope(load_config(config)),  # what `trustgate webhook-config -c` derives
        )
        k8s.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(manifest)
        end = time.monotonic() + 30
        while True:  # until the API server calls the webhook: a dry run changes nothing meanwhile
            try:
                _scale(api, 100, dry_run="All")
            except ApiException as e:
                if DENIED in _message(e):
                    break
                last = str(e.body)
            else:
                last = "allowed"
            assert time.monotonic() < end, (
                f"the API server never called the webhook: {last}\n{''.join(server.stderr)}"
            )
            time.sleep(0.2)
        yield server, db
    finally:
        server.stop()


def test_a_real_scale_is_judged_by_the_policy_on_deployments_scale(
    api: k8s.ApiClient, served: tuple[Server, Path]
) -> None:
    """`kubectl scale deploy web --replicas 100` passed a policy on deployments/scale: webhook-config
    sent no subresource, and serve answered it allowed unjudged."""
    _, db = served
    with pytest.raises(ApiException) as denied:
        _scale(api, 100)
    assert denied.value.status == 403
    assert DENIED in _message(denied.value)
    assert "at most 5 replicas of web, not 100" in _message(denied.value)
    apps = k8s.AppsV1Api(api)
    assert apps.read_namespaced_deployment("web", "shop").spec.replicas == 2
    assert _scale(api, 4).spec.replicas == 4
    assert apps.read_namespaced_deployment("web", "shop").spec.replicas == 4
    with sqlite3.connect(db) as conn:
        records = [json.loads(raw) for (raw,) in conn.execute("SELECT record FROM decisions")]
    scales = [r for r in records if not r["subject"].get("dryRun")]
    # The API server may call the webhook more than once for one update (it retries the write).
    assert {r["verdict"] for r in scales} == {"allow", "deny"}, scales
    for record in scales:
        assert [o["kind"] for o in record["subject"]["objects"]] == ["Scale"], record["subject"]
        rules = [f["rule"] for f in record["findings"]]
        assert rules == (["at-most-five-replicas/0"] if record["verdict"] == "deny" else []), record
