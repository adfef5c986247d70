"""Pod templates inside lists or maps (a Kubeflow PyTorchJob) at the three gates: `check`, `serve`
over real HTTPS, and a real kube-apiserver serving the kind's CRD that calls `serve` through the
ValidatingWebhookConfiguration `webhook-config` generates (the known custom workloads included)."""

from __future__ import annotations

import copy
import json
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
from support.webhook import CertSet, Server, make_certs, review, start_server

from trustgate.cli.main import main

DIGEST = "registry.example.com/ml/train:2.1@sha256:" + "0123456789abcdef" * 4
CONTAINER: dict[str, Any] = {
    "name": "pytorch",
    "image": DIGEST,
    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def _job(name: str, *, privileged_worker: bool) -> dict[str, Any]:
    worker = copy.deepcopy(CONTAINER)
    if privileged_worker:
        worker["securityContext"]["privileged"] = True
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "template": {"spec": {"containers": [copy.deepcopy(CONTAINER)]}}},
                "Worker": {"replicas": 2, "template": {"spec": {"containers": [worker]}}},
            }
        },
    }


PYTORCHJOB_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "pytorchjobs.kubeflow.org"},
    "spec": {
        "group": "kubeflow.org",
        "names": {"kind": "PyTorchJob", "plural": "pytorchjobs", "singular": "pytorchjob"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                        },
                    }
                },
            }
        ],
    },
}


def test_check_denies_a_privileged_worker_at_its_line(tmp_path: Path) -> None:
    manifest = tmp_path / "job.yaml"
    text = yaml.safe_dump(_job("train", privileged_worker=True), sort_keys=False)
    manifest.write_text(text)
    result = CliRunner().invoke(main, ["check", str(manifest), "-o", "json"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    findings = [f for r in json.loads(result.stdout)["results"] for f in r["findings"]]
    (privileged,) = [f for f in findings if f["rule"] == "pss-baseline-privileged"]
    assert (
        privileged["path"]
        == "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].securityContext.privileged"
    )
    assert text.splitlines()[privileged["line"] - 1].strip() == "privileged: true"
    manifest.write_text(yaml.safe_dump(_job("train", privileged_worker=False)))
    ok = CliRunner().invoke(main, ["check", str(manifest)], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def server(certs: CertSet) -> Iterator[Server]:
    srv = start_server(certs, workers=1)
    yield srv
    srv.stop()


def test_serve_judges_the_job_as_check_does(server: Server) -> None:
    status, answer = server.post(review(_job("train", privileged_worker=True), uid="job-privileged"))
    assert status == 200, answer
    assert answer["response"]["allowed"] is False
    assert "pss-baseline-privileged" in answer["response"]["status"]["message"]
    status, answer = server.post(review(_job("train", privileged_worker=False), uid="job-ok"))
    assert status == 200 and answer["response"]["allowed"] is True, answer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("kube"), kube_apiserver_binary())
    yield running
    running.stop()


def _wait_served(api: k8s.ApiClient, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            k8s.CustomObjectsApi(api).list_namespaced_custom_object("kubeflow.org", "v1", "ml", "pytorchjobs")
            return
        except ApiException as e:
            if e.status != 404 or time.monotonic() > end:
                raise
            time.sleep(0.5)


def test_the_api_server_sends_the_job_through_the_generated_configuration(
    cluster: Cluster, server: Server, certs: CertSet
) -> None:
    url = f"https://127.0.0.1:{server.port}"
    args = ["webhook-config", "--url", url, "--ca-bundle", str(certs.ca), "--kubernetes-version", "1.20"]
    generated = CliRunner().invoke(main, args, catch_exceptions=False)
    assert generated.exit_code == 0, generated.output
    manifest = yaml.safe_load(generated.stdout)
    with k8s.ApiClient(cluster.client_configuration()) as api:
        # The API server accepts rules naming resources it does not serve (yet).
        k8s.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(manifest)
        core = k8s.CoreV1Api(api)
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}})
        k8s.ApiextensionsV1Api(api).create_custom_resource_definition(PYTORCHJOB_CRD)
        _wait_served(api)
        jobs = k8s.CustomObjectsApi(api)
        with pytest.raises(ApiException) as denied:
            jobs.create_namespaced_custom_object(
                "kubeflow.org", "v1", "ml", "pytorchjobs", _job("bad", privileged_worker=True)
            )
        assert denied.value.status in (400, 403), denied.value
        assert "pss-baseline-privileged" in (denied.value.body or "")
        created = jobs.create_namespaced_custom_object(
            "kubeflow.org", "v1", "ml", "pytorchjobs", _job("good", privileged_worker=False)
        )
        assert created["metadata"]["name"] == "good"
