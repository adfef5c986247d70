"""End to end: a real kube-apiserver sends DELETE and CONNECT to `trustgate serve`, which judges them by
the ValidatingAdmissionPolicies loaded, as the API server's own admission would.

The kube-apiserver built for the tests is 1.20, without ValidatingAdmissionPolicy: it is the reference
for what the reviews hold (a DELETE's `oldObject`, an exec's PodExecOptions) and for the webhook
configuration `webhook-config` generates routing them; trustgate plays the policies' part.
"""

from __future__ import annotations

import json
import sqlite3
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from support.kube import Cluster, kube_apiserver_binary, start_cluster
from support.vap import denying, rule
from support.webhook import Server, make_certs, start_server

from trustgate.config import AdmissionSettings
from trustgate.policy import vap
from trustgate.server.webhookconfig import AdmissionScope, webhook_configuration

POLICIES = (
    denying(
        "prod-deletes-need-break-glass",
        [rule(["DELETE"], ["namespaces", "configmaps"])],
        [
            {
                "expression": "oldObject.metadata.?labels.?env.orValue('') != 'prod'"
                " || 'break-glass' in request.userInfo.groups",
                "messageExpression": "'deleting ' + oldObject.metadata.name"
                " + ' (env: prod) needs break-glass'",
            }
        ],
        failure_policy="Fail",
    )
    + "---\n"
    + denying(
        "no-shell",
        [rule(["CONNECT"], ["pods/exec"])],
        [
            {
                "expression": "!object.command.exists(c, c in ['sh', 'bash'])",
                "messageExpression": "'no shell in ' + request.namespace + '/' + request.name",
            }
        ],
        failure_policy="Fail",
    )
)
DENIED = 'admission webhook "validate.trustgate.dev" denied the request'


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("kube"), kube_apiserver_binary())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[k8s.ApiClient]:
    with k8s.ApiClient(cluster.client_configuration()) as api_client:
        yield api_client


@pytest.fixture(scope="module")
def served(
    cluster: Cluster, api: k8s.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    directory = tmp_path_factory.mktemp("webhook")
    policy = directory / "policies.yaml"
    policy.write_text(POLICIES)
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
        # Made before the webhook is registered: their CREATE is not what is tested here.
        core.create_namespace({"metadata": {"name": "payments", "labels": {"env": "prod"}}})
        for name in ("settings", "flags"):
            core.create_namespaced_config_map(
                "payments", {"metadata": {"name": name, "labels": {"env": "prod"}}}
            )
        core.create_namespaced_pod(
            "payments",
            {"metadata": {"name": "web-0"}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
        )
        k8s.RbacAuthorizationV1Api(api).create_cluster_role_binding(
            {
                "metadata": {"name": "break-glass"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "break-glass"}
                ],
            }
        )
        loaded = vap.load([policy])
        manifest = webhook_configuration(
            AdmissionSettings(timeout_seconds=5),
            url=f"https://127.0.0.1:{server.port}",
            ca_bundle=certs.ca.read_bytes(),
            kubernetes_version="1.20",
            scope=AdmissionScope(policy_rules=[*loaded.rules_for("DELETE"), *loaded.rules_for("CONNECT")]),
        )
        k8s.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(manifest)
        end = time.monotonic() + 30
        while True:  # until the API server calls the webhook: a dry run changes nothing meanwhile
            try:
                core.delete_namespaced_config_map("flags", "payments", dry_run="All")
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


def _message(error: ApiException) -> str:
    """The Status message the API server returned."""
    message: str = json.loads(error.body)["message"]
    return message


def _as_break_glass(cluster: Cluster) -> k8s.ApiClient:
    """A client acting as a member of the break-glass group (impersonation by the system:masters token)."""
    api = k8s.ApiClient(cluster.client_configuration(), header_name="Impersonate-User", header_value="oncall")
    api.default_headers["Impersonate-Group"] = "break-glass"  # cluster-admin by its binding
    return api


def _records(db: Path) -> list[dict[str, object]]:
    with sqlite3.connect(db) as conn:
        return [json.loads(raw) for (raw,) in conn.execute("SELECT record FROM decisions")]


def test_a_real_delete_is_judged_by_the_policies(
    cluster: Cluster, api: k8s.ApiClient, served: tuple[Server, Path]
) -> None:
    _, db = served
    core = k8s.CoreV1Api(api)
    with pytest.raises(ApiException) as denied:
        core.delete_namespaced_config_map("settings", "payments")
    assert denied.value.status == 403
    assert DENIED in _message(denied.value)
    assert "deleting settings (env: prod) needs break-glass" in _message(denied.value)
    assert core.read_namespaced_config_map("settings", "payments").metadata.name == "settings"
    # A protected kind: approved, it is still the policy's to allow.
    core.patch_namespace("payments", {"metadata": {"annotations": {"trustgate.dev/allow-delete": "true"}}})
    with pytest.raises(ApiException) as namespace:
        core.delete_namespace("payments")
    assert "deleting payments (env: prod) needs break-glass" in _message(namespace.value)
    assert "admission-protected-delete" not in _message(namespace.value)
    with _as_break_glass(cluster) as glass:
        k8s.CoreV1Api(glass).delete_namespaced_config_map("settings", "payments")
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("settings", "payments")
    assert gone.value.status == 404
    deletes = [r for r in _records(db) if r["subject"].get("operation") == "DELETE"]  # type: ignore[attr-defined]
    verdicts = sorted((r["subject"].get("dryRun", False), r["verdict"]) for r in deletes)  # type: ignore[attr-defined]
    assert (False, "deny") in verdicts and (False, "allow") in verdicts and (True, "deny") in verdicts, (
        verdicts
    )


def test_a_real_exec_is_judged_by_the_policies(cluster: Cluster, served: tuple[Server, Path]) -> None:
    _, db = served
    context = ssl.create_default_context(cafile=str(cluster.certs.ca))

    def exec_(command: str) -> tuple[int, str]:
        url = f"{cluster.url}/api/v1/namespaces/payments/pods/web-0/exec?command={command}&stdout=true"
        request = urllib.request.Request(
            url, method="POST", headers={"Authorization": f"Bearer {cluster.token}"}
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    status, body = exec_("sh")
    assert status == 403, (status, body)
    message = json.loads(body)["message"]
    assert DENIED in message and "no shell in payments/web-0" in message, message
    status, body = exec_("ls")  # admitted; then there is no kubelet to connect to
    assert status != 403 and "denied the request" not in body, (status, body)
    connects = [r for r in _records(db) if r["subject"].get("operation") == "CONNECT"]  # type: ignore[attr-defined]
    assert sorted(r["verdict"] for r in connects) == ["allow", "deny"]  # type: ignore[index]
