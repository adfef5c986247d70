"""End to end: a real kube-apiserver calls `trustgate serve` through a ValidatingWebhookConfiguration.

etcd and kube-apiserver run on 127.0.0.1 in a temp dir; the `kubernetes`
client creates compliant and non-compliant workloads as kubectl would.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from support.kube import Cluster, kube_apiserver_binary, start_cluster
from support.webhook import Server, make_certs, start_server

from trustgate.config import AdmissionSettings
from trustgate.server.webhookconfig import webhook_configuration

COMPLIANT_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "good"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "web",
                "image": "registry.example.com/web:1.2.3",
                "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
                "livenessProbe": {"httpGet": {"path": "/", "port": 8080}},
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    },
}


def _bad_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx:latest"}]},
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    binary = kube_apiserver_binary()
    running = start_cluster(tmp_path_factory.mktemp("kube"), binary)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[k8s.ApiClient]:
    configuration = k8s.Configuration()
    configuration.host = cluster.url
    configuration.api_key = {"authorization": f"Bearer {cluster.token}"}
    configuration.ssl_ca_cert = str(cluster.certs.ca)
    with k8s.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture(scope="module")
def webhook(
    cluster: Cluster, api: k8s.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    certs = make_certs(tmp_path_factory.mktemp("webhook-certs"))
    server = start_server(certs, workers=2)
    manifest = webhook_configuration(
        AdmissionSettings(timeout_seconds=5),
        url=f"https://127.0.0.1:{server.port}",
        ca_bundle=certs.ca.read_bytes(),
    )
    k8s.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(manifest)
    core = k8s.CoreV1Api(api)
    # Kubernetes 1.21+ sets this label on every Namespace; this 1.20 API server does not yet.
    for name in ("kube-system", "default"):
        core.patch_namespace(name, {"metadata": {"labels": {"kubernetes.io/metadata.name": name}}})
    for name, labels in (("shop", {}), ("sandbox", {"trustgate.dev/failure-policy": "open"})):
        core.create_namespace(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        )
    yield server
    server.stop()


def _message(error: ApiException) -> str:
    """The Status message the API server returned."""
    message: str = json.loads(error.body or "{}").get("message", "")
    return message


def _create_pod(
    api: k8s.ApiClient, namespace: str, pod: dict[str, Any], **kwargs: Any
) -> tuple[Any, list[str]]:
    """Create a Pod; returns the object and the Warning headers the API server relayed."""
    data, _, headers = k8s.CoreV1Api(api).create_namespaced_pod_with_http_info(namespace, pod, **kwargs)
    warnings = [v for k, v in headers.items() if k.lower() == "warning"]
    return data, warnings


def test_compliant_pod_is_created_with_warnings(api: k8s.ApiClient, webhook: Server) -> None:
    created, warnings = _create_pod(api, "shop", copy.deepcopy(COMPLIANT_POD))
    assert created.metadata.name == "good"
    assert any("images-digest" in w for w in warnings), warnings


def test_non_compliant_pod_is_denied_with_the_policy_messages(api: k8s.ApiClient, webhook: Server) -> None:
    with pytest.raises(ApiException) as denied:
        _create_pod(api, "shop", _bad_pod("bad"))
    body = _message(denied.value)
    assert denied.value.status == 403
    assert 'admission webhook "validate.trustgate.dev" denied the request' in body
    assert '[images-no-latest] container "c" uses image "nginx:latest"' in body
    assert "[pss-restricted-run-as-non-root]" in body
    with pytest.raises(ApiException):
        k8s.CoreV1Api(api).read_namespaced_pod("bad", "shop")


def test_deployment_is_denied_and_dry_run_too(api: k8s.ApiClient, webhook: Server) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": _bad_pod("x")["spec"]},
        },
    }
    apps = k8s.AppsV1Api(api)
    for kwargs in ({}, {"dry_run": "All"}):
        with pytest.raises(ApiException) as denied:
            apps.create_namespaced_deployment("shop", copy.deepcopy(deployment), **kwargs)
        assert "[images-no-latest]" in _message(denied.value)
    good = copy.deepcopy(deployment)
    good["spec"]["template"]["spec"] = copy.deepcopy(COMPLIANT_POD["spec"])
    created = apps.create_namespaced_deployment("shop", good)
    assert created.metadata.name == "web"
    # UPDATE: a scale through the main resource is evaluated and passes; a bad image is denied.
    patched = apps.patch_namespaced_deployment("web", "shop", {"spec": {"replicas": 3}})
    assert patched.spec.replicas == 3
    with pytest.raises(ApiException) as denied:
        apps.patch_namespaced_deployment(
            "web",
            "shop",
            {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:latest"}]}}}},
        )
    assert "[images-no-latest]" in _message(denied.value)


def test_kube_system_is_never_judged(api: k8s.ApiClient, webhook: Server) -> None:
    created, _ = _create_pod(api, "kube-system", _bad_pod("system-bad"))
    assert created.metadata.name == "system-bad"


def test_protected_namespace_delete_needs_approval(api: k8s.ApiClient, webhook: Server) -> None:
    core = k8s.CoreV1Api(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}})
    with pytest.raises(ApiException) as denied:
        core.delete_namespace("payments")
    assert "[admission-protected-delete]" in _message(denied.value)
    core.patch_namespace("payments", {"metadata": {"annotations": {"trustgate.dev/allow-delete": "true"}}})
    core.delete_namespace("payments")


def test_webhook_down_fails_closed_except_fail_open_namespaces(api: k8s.ApiClient, webhook: Server) -> None:
    # Runs last in this module: it stops the webhook.
    webhook.stop()
    with pytest.raises(ApiException) as failed:
        _create_pod(api, "shop", copy.deepcopy(COMPLIANT_POD) | {"metadata": {"name": "while-down"}})
    assert "failed calling webhook" in _message(failed.value)
    # The labelled namespace goes to the fail-open webhook (failurePolicy: Ignore).
    created, _ = _create_pod(api, "sandbox", _bad_pod("sandbox-pod"))
    assert created.metadata.name == "sandbox-pod"
    # And the cluster's own namespace keeps working.
    created, _ = _create_pod(api, "kube-system", _bad_pod("system-while-down"))
    assert created.metadata.name == "system-while-down"
