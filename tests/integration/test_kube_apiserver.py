"""End to end: a real kube-apiserver calls `trustgate serve` through a ValidatingWebhookConfiguration.

etcd and kube-apiserver run on 127.0.0.1 in a temp dir; the `kubernetes`
client creates compliant and non-compliant workloads as kubectl would.
"""

from __future__ import annotations

import copy
import json
import re
import sqlite3
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from support.kube import Cluster, kube_apiserver_binary, start_cluster
from support.webhook import Server, make_certs, start_server

from trustgate.cli.main import main
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
    configuration = cluster.client_configuration()
    with k8s.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture(scope="module")
def decision_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The webhook's SQLite decision log."""
    return tmp_path_factory.mktemp("decision-log") / "decisions.db"


@pytest.fixture(scope="module")
def webhook(
    cluster: Cluster, api: k8s.ApiClient, tmp_path_factory: pytest.TempPathFactory, decision_db: Path
) -> Iterator[Server]:
    certs = make_certs(tmp_path_factory.mktemp("webhook-certs"))
    protected = (*AdmissionSettings().protected_kinds, "PersistentVolume")  # one more cluster-scoped
    config = tmp_path_factory.mktemp("webhook-config") / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        f"admission:\n  protectedDeletes:\n    kinds: [{', '.join(protected)}]\n"
    )
    server = start_server(certs, "-c", str(config), "--decision-log", f"sqlite:///{decision_db}", workers=2)
    manifest = webhook_configuration(
        AdmissionSettings(timeout_seconds=5, protected_kinds=protected),
        url=f"https://127.0.0.1:{server.port}",
        ca_bundle=certs.ca.read_bytes(),
        kubernetes_version="1.20",  # the API server built here: no matchConditions
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


def _ephemeral_containers(cluster: Cluster, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    """GET (or PUT `body` to) pods/ephemeralcontainers in the 1.20 form (the typed client sends a Pod)."""
    request = urllib.request.Request(
        cluster.url + path,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "PUT",
        headers={"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(cluster.certs.ca))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_kubectl_debug_on_1_20_is_judged(api: k8s.ApiClient, cluster: Cluster, webhook: Server) -> None:
    """Kubernetes 1.16-1.21 send pods/ephemeralcontainers as an EphemeralContainers object."""
    pod = copy.deepcopy(COMPLIANT_POD)
    pod["metadata"]["name"] = "debugged"
    _create_pod(api, "shop", pod)
    path = "/api/v1/namespaces/shop/pods/debugged/ephemeralcontainers"
    status, ephemeral = _ephemeral_containers(cluster, path)
    assert status == 200 and ephemeral["kind"] == "EphemeralContainers"  # the 1.20 form, not the Pod
    # 1.20 refuses a securityContext on an ephemeral container itself (422, before any webhook).
    evil = {"name": "debugger", "image": "evil:latest", "imagePullPolicy": "Always"}
    evil.update(terminationMessagePolicy="File", targetContainerName="web")
    ephemeral["ephemeralContainers"] = [evil]
    status, denied = _ephemeral_containers(cluster, path, ephemeral)
    assert status == 403, denied.get("message", denied)
    assert '[pss-restricted-capabilities] ephemeral container "debugger"' in denied["message"]
    assert '[images-no-latest] ephemeral container "debugger" uses image "evil:latest"' in denied["message"]
    assert not _ephemeral_containers(cluster, path)[1].get("ephemeralContainers")


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


def test_a_host_network_container_port_is_judged_at_check_as_the_api_server_defaults_it(
    api: k8s.ApiClient, webhook: Server, tmp_path: Path
) -> None:
    """The API server sets a host-network pod's hostPort to its containerPort before admission, so
    `check` of the manifest as written gives the rules admission gives the Pod it defaulted."""
    pod = copy.deepcopy(COMPLIANT_POD)
    pod["metadata"] = {"name": "node-exporter"}
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 9100}]
    daemon_set = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "node-exporter"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": pod["spec"]},
        },
    }
    create = (
        lambda obj: k8s.CoreV1Api(api).create_namespaced_pod("shop", obj, dry_run="All"),
        lambda obj: k8s.AppsV1Api(api).create_namespaced_daemon_set("shop", obj, dry_run="All"),
    )
    for obj, call in zip((pod, daemon_set), create, strict=True):
        path = tmp_path / f"{obj['kind']}.yaml"
        path.write_text(json.dumps(obj))
        result = CliRunner().invoke(main, ["check", str(path), "--format", "json"], catch_exceptions=False)
        findings = json.loads(result.stdout)["results"][0]["findings"]
        at_check = sorted(f["rule"] for f in findings if f["severity"] == "error")
        with pytest.raises(ApiException) as denied:
            call(copy.deepcopy(obj))
        message = _message(denied.value)
        at_admission = sorted(re.findall(r"\[([a-z0-9-]+)\] ", message))
        assert at_check == at_admission == ["pss-baseline-host-namespaces", "pss-baseline-host-ports"], (
            message
        )
        assert "(ports[0].hostPort)" in message  # the API server wrote it
        assert any(f["path"].endswith("ports[0].containerPort") for f in findings)  # the manifest did not


def test_kube_system_is_never_judged(api: k8s.ApiClient, webhook: Server) -> None:
    created, _ = _create_pod(api, "kube-system", _bad_pod("system-bad"))
    assert created.metadata.name == "system-bad"


def test_a_namespace_labelled_as_kube_system_is_judged(api: k8s.ApiClient, webhook: Server) -> None:
    """Before 1.21 the API server keeps whatever `kubernetes.io/metadata.name` a Namespace's creator
    writes: the label that leaves kube-system out of the webhook must not leave this one out too."""
    core = k8s.CoreV1Api(api)
    for name, labels in (
        ("posing", {"kubernetes.io/metadata.name": "kube-system"}),
        (
            "posing-open",
            {"kubernetes.io/metadata.name": "kube-system", "trustgate.dev/failure-policy": "open"},
        ),
    ):
        core.create_namespace(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        )
        with pytest.raises(ApiException) as denied:
            _create_pod(api, name, _bad_pod("bad"))
        assert denied.value.status == 403, name
        assert "[images-no-latest]" in _message(denied.value)
    # The real kube-system is still left out, by the server.
    created, _ = _create_pod(api, "kube-system", _bad_pod("system-bad-again"))
    assert created.metadata.name == "system-bad-again"


def test_protected_namespace_delete_needs_approval(api: k8s.ApiClient, webhook: Server) -> None:
    core = k8s.CoreV1Api(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}})
    with pytest.raises(ApiException) as denied:
        core.delete_namespace("payments")
    assert "[admission-protected-delete]" in _message(denied.value)
    core.patch_namespace("payments", {"metadata": {"annotations": {"trustgate.dev/allow-delete": "true"}}})
    core.delete_namespace("payments")


def _deletes_of(decision_db: Path, name: str) -> list[dict[str, Any]]:
    with sqlite3.connect(decision_db) as db:
        records = [json.loads(raw) for (raw,) in db.execute("SELECT record FROM decisions")]
    return [
        r
        for r in records
        if r["subject"].get("operation") == "DELETE"
        and any(o.get("name") == name for o in r["subject"]["objects"])
    ]


def test_a_cluster_scoped_object_is_judged_and_recorded_once(
    api: k8s.ApiClient, webhook: Server, decision_db: Path
) -> None:
    """Both webhooks (closed, and fail-open) match a cluster-scoped object unless the fail-open one's
    rules are namespaced: the namespaceSelector never skips an object outside every namespace."""
    approved = {"trustgate.dev/allow-delete": "true"}
    core = k8s.CoreV1Api(api)
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "scratch", "annotations": approved},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/x"},
        },
    }
    core.create_persistent_volume(volume)
    core.delete_persistent_volume("scratch")
    assert [r["verdict"] for r in _deletes_of(decision_db, "scratch")] == ["allow"]
    # A Namespace is matched by its own labels: one labelled fail-open is judged by the fail-open
    # webhook, as often as another Namespace is by the main one (the API server may ask twice).
    for name, labels in (("lab", {"trustgate.dev/failure-policy": "open"}), ("lab2", {})):
        labels = {"kubernetes.io/metadata.name": name, **labels}
        meta = {"name": name, "labels": labels, "annotations": approved}
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
        core.delete_namespace(name)
    judged = [[r["verdict"] for r in _deletes_of(decision_db, name)] for name in ("lab", "lab2")]
    assert judged[0] and set(judged[0]) == {"allow"} and judged[0] == judged[1]


NAMESPACE_CONTROLLER = "system:serviceaccount:kube-system:namespace-controller"
PVC_PROTECTION_CONTROLLER = "system:serviceaccount:kube-system:pvc-protection-controller"


def _as(cluster: Cluster, username: str) -> k8s.ApiClient:
    """A client that acts as `username` (impersonation by the system:masters token)."""
    configuration = cluster.client_configuration()
    return k8s.ApiClient(configuration, header_name="Impersonate-User", header_value=username)


def test_deleting_a_namespace_with_a_pvc_finishes(
    cluster: Cluster, api: k8s.ApiClient, webhook: Server, decision_db: Path
) -> None:
    """The namespace controller's own DELETE of the PVC is admitted and recorded; the namespace goes.

    This test cluster runs no kube-controller-manager, so the test does what the namespace
    controller does after a namespace is deleted, as its user, through the API server (and so
    through the webhook): delete each object in it, then remove the `kubernetes` finalizer. The
    PVC protection controller's part (dropping its finalizer once no pod uses the claim) is
    done as that controller's user too.
    """
    core = k8s.CoreV1Api(api)
    core.create_namespace(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "vault", "annotations": {"trustgate.dev/allow-delete": "true"}},
        }
    )
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    core.create_namespaced_persistent_volume_claim("vault", pvc)
    # Someone without approval of the claim itself cannot delete it...
    with pytest.raises(ApiException) as denied:
        core.delete_namespaced_persistent_volume_claim("data", "vault")
    assert "[admission-protected-delete]" in _message(denied.value)
    # ...but the namespace, approved, can be deleted: it is Terminating until emptied.
    core.delete_namespace("vault")
    assert core.read_namespace("vault").status.phase == "Terminating"

    with _as(cluster, NAMESPACE_CONTROLLER) as controller:
        as_controller = k8s.CoreV1Api(controller)
        as_controller.delete_namespaced_persistent_volume_claim("data", "vault")  # admitted
        with _as(cluster, PVC_PROTECTION_CONTROLLER) as protection:
            claim = core.read_namespaced_persistent_volume_claim("data", "vault")
            if claim.metadata.finalizers:  # StorageObjectInUseProtection added one
                claim.metadata.finalizers = []  # that controller may update claims, not patch them
                k8s.CoreV1Api(protection).replace_namespaced_persistent_volume_claim("data", "vault", claim)
        end = time.monotonic() + 30
        while core.list_namespaced_persistent_volume_claim("vault").items:
            assert time.monotonic() < end, "the PVC was not removed"
            time.sleep(0.2)
        namespace = core.read_namespace("vault")
        namespace.spec.finalizers = []  # the controller's last step, once the namespace is empty
        as_controller.replace_namespace_finalize("vault", namespace)
    end = time.monotonic() + 30
    while True:
        try:
            core.read_namespace("vault")
        except ApiException as gone:
            assert gone.status == 404
            break
        assert time.monotonic() < end, "the namespace did not go"
        time.sleep(0.2)

    with sqlite3.connect(decision_db) as db:
        records = [json.loads(raw) for (raw,) in db.execute("SELECT record FROM decisions")]
    deletes = [
        r
        for r in records
        if r["subject"].get("operation") == "DELETE"
        and (r.get("actor") or {}).get("user", {}).get("username") == NAMESPACE_CONTROLLER
    ]
    assert len(deletes) == 1, [r["subject"] for r in records if r["subject"].get("operation") == "DELETE"]
    assert deletes[0]["verdict"] not in ("deny", "denied")
    assert "PersistentVolumeClaim" in json.dumps(deletes[0]["subject"])


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
    # As does a Namespace that carries its label (on 1.20 it may be anyone's: judged when up).
    created, _ = _create_pod(api, "posing", _bad_pod("posing-while-down"))
    assert created.metadata.name == "posing-while-down"
