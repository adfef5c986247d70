"""End to end: the webhook configuration `webhook-config` derives sends a real kube-apiserver's requests for
every kind the configuration judges, not only workloads: a Service the user's Rego denies in CI is
denied at admission, and so is a ConfigMap a Gatekeeper constraint denies.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from support.kube import Cluster, kube_apiserver_binary, start_cluster
from support.webhook import Server, make_certs, start_server

from trustgate.cli.main import main

DENY_LOAD_BALANCERS = """package main

deny contains msg if {
\tinput.kind == "Service"
\tinput.spec.type == "LoadBalancer"
\tmsg := sprintf("Service %s: type LoadBalancer is not allowed here", [input.metadata.name])
}

deny contains msg if {
\tinput.metadata.namespace == "frozen"
\tmsg := sprintf("%s %s: namespace frozen takes no new objects", [input.kind, input.metadata.name])
}
"""
GATEKEEPER = """apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8srequiredlabels}
spec:
  crd:
    spec:
      names: {kind: K8sRequiredLabels}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8srequiredlabels
        violation[{"msg": msg}] {
          not input.review.object.metadata.labels.owner
          msg := sprintf("%v needs an owner label", [input.review.object.metadata.name])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata: {name: configmaps-have-owners}
spec:
  match:
    kinds:
      - apiGroups: [""]
        kinds: [ConfigMap]
"""
DENIED = 'admission webhook "validate.trustgate.dev" denied the request'


def _service(name: str, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": kind, "selector": {"app": "web"}, "ports": [{"port": 80}]},
    }


def _message(error: ApiException) -> str:
    message: str = json.loads(error.body or "{}").get("message", "")
    return message


def _webhook_config(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["webhook-config", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    manifest: dict[str, Any] = yaml.safe_load(result.stdout)
    return manifest


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
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("config")
    (directory / "services.rego").write_text(DENY_LOAD_BALANCERS)
    (directory / "gatekeeper.yaml").write_text(GATEKEEPER)
    path = directory / "trustgate.yaml"
    path.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        "kubernetes:\n  schemas: false\n"
        "manifests:\n  policies:\n    - builtin: pss-baseline\n    - path: services.rego\n"
        "  gatekeeper:\n    paths: [gatekeeper.yaml]\n"
        "admission:\n  resources: [services, namespaces]\n"
    )
    return path


@pytest.fixture(scope="module")
def served(
    cluster: Cluster, api: k8s.ApiClient, config: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    certs = make_certs(tmp_path_factory.mktemp("certs"))
    server = start_server(certs, "-c", str(config), workers=1)
    try:  # stopped even when the setup fails
        core = k8s.CoreV1Api(api)
        core.patch_namespace("default", {"metadata": {"labels": {"kubernetes.io/metadata.name": "default"}}})
        core.create_namespace(
            {"metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}}}
        )
        manifest = _webhook_config(
            "-c", str(config), "--url", f"https://127.0.0.1:{server.port}",
            "--ca-bundle", str(certs.ca), "--kubernetes-version", "1.20",
        )  # fmt: skip
        k8s.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(manifest)
        end = time.monotonic() + 30
        while True:  # until the API server calls the webhook: a dry run changes nothing meanwhile
            try:
                core.create_namespaced_service("shop", _service("probe", "LoadBalancer"), dry_run="All")
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
        yield server
    finally:
        server.stop()


def test_a_service_the_users_rego_denies_is_denied_at_admission(api: k8s.ApiClient, served: Server) -> None:
    core = k8s.CoreV1Api(api)
    with pytest.raises(ApiException) as denied:
        core.create_namespaced_service("shop", _service("public", "LoadBalancer"))
    assert denied.value.status == 403
    assert DENIED in _message(denied.value)
    assert "[main.deny] Service public: type LoadBalancer is not allowed here" in _message(denied.value)
    created = core.create_namespaced_service("shop", _service("internal", "ClusterIP"))
    assert created.metadata.name == "internal"
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_service("public", "shop")
    assert gone.value.status == 404
    # UPDATE too: turning the admitted Service into a LoadBalancer is denied.
    with pytest.raises(ApiException) as updated:
        core.patch_namespaced_service("internal", "shop", {"spec": {"type": "LoadBalancer"}})
    assert "type LoadBalancer is not allowed here" in _message(updated.value)


def test_a_namespace_is_judged_as_check_judges_it(api: k8s.ApiClient, served: Server) -> None:
    """The API server sends a Namespace's own name as request.namespace: the Namespace is not an
    object *in* that namespace, as `check` sees it, so a rule on objects in `frozen` spares it."""
    core = k8s.CoreV1Api(api)
    created = core.create_namespace({"metadata": {"name": "frozen"}})
    assert created.metadata.name == "frozen"
    core.patch_namespace("frozen", {"metadata": {"labels": {"team": "a"}}})  # UPDATE: the same
    with pytest.raises(ApiException) as denied:
        core.create_namespaced_service("frozen", _service("late", "ClusterIP"))
    assert "Service late: namespace frozen takes no new objects" in _message(denied.value)


def test_a_configmap_a_gatekeeper_constraint_denies_is_denied(api: k8s.ApiClient, served: Server) -> None:
    core = k8s.CoreV1Api(api)
    with pytest.raises(ApiException) as denied:
        core.create_namespaced_config_map("shop", {"metadata": {"name": "loose"}})
    assert "[K8sRequiredLabels/configmaps-have-owners] loose needs an owner label" in _message(denied.value)
    owned = core.create_namespaced_config_map(
        "shop", {"metadata": {"name": "owned", "labels": {"owner": "a"}}}
    )
    assert owned.metadata.name == "owned"


@pytest.mark.parametrize(
    "resources", ['["*"]', '["*/ingresses", "apps/*", example.com/*, services]', '["*", events, "*/leases"]']
)
def test_the_api_server_accepts_what_wildcards_generate(
    api: k8s.ApiClient, tmp_path: Path, resources: str
) -> None:
    path = tmp_path / "trustgate.yaml"
    path.write_text(
        f"apiVersion: trustgate.dev/v1alpha1\nkind: Config\nadmission:\n  resources: {resources}\n"
    )
    manifest = _webhook_config(
        "-c", str(path), "--url", "https://127.0.0.1:1", "--kubernetes-version", "1.20"
    )
    manifest["metadata"]["name"] = "trustgate-wildcards"
    created = k8s.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(
        manifest, dry_run="All"
    )
    assert created.webhooks[0].rules == [
        k8s.V1RuleWithOperations(**_snake(r)) for r in manifest["webhooks"][0]["rules"]
    ]


def _snake(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "api_groups": rule["apiGroups"],
        "api_versions": rule["apiVersions"],
        "operations": rule["operations"],
        "resources": rule["resources"],
        "scope": rule["scope"],
    }


def _answered(server: Server) -> dict[str, float]:
    """The webhook's answers so far, by verdict (its /metrics)."""
    status, text = server.health("/metrics")
    assert status == 200, text
    found = re.findall(r'trustgate_admission_requests_total\{verdict="(\w+)"\} (\S+)', text)
    return {verdict: float(count) for verdict, count in found}


def test_a_token_review_sent_by_a_wildcard_is_neither_judged_nor_recorded(
    api: k8s.ApiClient, served: Server, tmp_path: Path
) -> None:
    """Before 1.28 no rule can leave token reviews out of `"*"`: the API server sends each (its bearer
    token included) to the webhook, which answers it unjudged and keeps nothing of it."""
    path = tmp_path / "trustgate.yaml"
    log = tmp_path / "log.db"
    path.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nkubernetes:\n  schemas: false\n"
        f"decisionLog:\n  url: sqlite:///{log}\nadmission:\n  resources: ['*']\n"
    )
    certs = make_certs(tmp_path / "certs")
    server = start_server(certs, "-c", str(path), workers=1)
    hooks = k8s.AdmissionregistrationV1Api(api)
    try:
        manifest = _webhook_config(
            "-c", str(path), "--url", f"https://127.0.0.1:{server.port}",
            "--ca-bundle", str(certs.ca), "--kubernetes-version", "1.20",
        )  # fmt: skip
        manifest["metadata"]["name"] = "trustgate-every-resource"
        assert manifest["webhooks"][0]["rules"][0]["resources"] == ["*"]
        hooks.create_validating_webhook_configuration(manifest)
        authn = k8s.AuthenticationV1Api(api)
        token = "tg-bearer-" + "5f3a9c" * 4
        end = time.monotonic() + 30
        while True:  # until the API server calls this webhook (nothing else is created meanwhile)
            before = _answered(server)
            review = authn.create_token_review({"spec": {"token": token}})
            after = _answered(server)
            if sum(after.values()) > sum(before.values()):
                break
            assert time.monotonic() < end, "the API server never sent the TokenReview"
            time.sleep(0.3)
        assert not review.status.authenticated  # answered by the API server: the webhook allowed it
        time.sleep(1)  # a record would be durable before the answer; the WAL is read as it is
        held = [p.name for p in tmp_path.glob("log.db*") if token.encode() in p.read_bytes()]
        assert held == []
        assert after.get("skipped", 0) > before.get("skipped", 0)  # answered, not judged
    finally:
        try:
            hooks.delete_validating_webhook_configuration("trustgate-every-resource")
        finally:
            server.stop()


REDIS_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: redis.redis.redis.opstreelabs.in}
spec:
  group: redis.redis.opstreelabs.in
  names: {kind: Redis, listKind: RedisList, plural: redis, singular: redis}
  scope: Namespaced
  versions:
    - name: v1beta2
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""
REDIS_CONSTRAINT = """---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata: {name: redis-have-owners}
spec:
  match:
    kinds:
      - apiGroups: ["*"]
        kinds: [Redis]
"""


def test_a_custom_kind_of_any_group_is_sent_under_its_crds_plural_never_a_guess(
    api: k8s.ApiClient, served: Server, tmp_path: Path
) -> None:
    """A constraint on Redis in any group: the CRD's plural is `redis`, not the `redises` a rule of
    thumb gives, which the API server accepts and never matches. Without the CRD, nothing is guessed."""
    library = tmp_path / "gatekeeper.yaml"
    library.write_text(GATEKEEPER.split("---\napiVersion: constraints")[0] + REDIS_CONSTRAINT)
    crd = tmp_path / "crd.yaml"
    crd.write_text(REDIS_CRD)
    refused = CliRunner().invoke(main, ["webhook-config", "--no-builtin", "--gatekeeper", str(library)])
    assert refused.exit_code == 3 and refused.stdout == ""
    assert "Redis" in refused.stderr and "--crd" in refused.stderr and "Traceback" not in refused.stderr
    k8s.ApiextensionsV1Api(api).create_custom_resource_definition(yaml.safe_load(REDIS_CRD))
    certs = make_certs(tmp_path / "certs")
    args = ("--no-builtin", "--gatekeeper", str(library), "--crd", str(crd))
    server = start_server(certs, *args, workers=1)
    hooks = k8s.AdmissionregistrationV1Api(api)
    try:
        manifest = _webhook_config(
            *args, "--url", f"https://127.0.0.1:{server.port}",
            "--ca-bundle", str(certs.ca), "--kubernetes-version", "1.20",
        )  # fmt: skip
        manifest["metadata"]["name"] = "trustgate-redis"
        hooks.create_validating_webhook_configuration(manifest)
        custom = k8s.CustomObjectsApi(api)
        redis = {
            "apiVersion": "redis.redis.opstreelabs.in/v1beta2",
            "kind": "Redis",
            "metadata": {"name": "cache"},
            "spec": {},
        }
        end = time.monotonic() + 60  # until the CRD is served and the API server calls the webhook
        while True:
            try:
                custom.create_namespaced_custom_object(
                    "redis.redis.opstreelabs.in", "v1beta2", "shop", "redis", redis, dry_run="All"
                )
                last = "admitted"
            except ApiException as e:
                last = _message(e) or str(e.status)
                if DENIED in last:
                    break
            assert time.monotonic() < end, f"a Redis without an owner: {last}"
            time.sleep(0.3)
        assert "[K8sRequiredLabels/redis-have-owners] cache needs an owner label" in last
    finally:
        try:
            hooks.delete_validating_webhook_configuration("trustgate-redis")
        finally:
            server.stop()
