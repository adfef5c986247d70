#!/usr/bin/env python3
"""Benchmark `trustgate check` against check-jsonschema and checkov.

This script owns the whole benchmark run: it generates a seeded GitOps-style
corpus of single-document Kubernetes manifests (or takes a directory of real
ones, ``--corpus``), installs the peer tools into virtualenvs of their own
(cached outside the repo), times every tool as a child process (wall clock and
peak RSS via ``os.wait4``), the tools in alternation, and prints one table with
the targets and the floor: PyYAML's libyaml loader reading the same corpus.

It leaves out installing trustgate itself: it runs ``<repo>/.venv/bin/trustgate``
(or ``--trustgate PATH``) as it finds it.

Standard library only, so ``make bench`` works before anything is installed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# --- Settings -----------------------------------------------------------------

DEFAULT_DOCS = 2_400  # documents; the targets are stated for >= 2,000
DEFAULT_RUNS = 3  # timed runs per tool; we report the best and the median
DEFAULT_SEED = 20_250_101  # any fixed value: the corpus must be the same every run
K8S_VERSION = "1.33"  # the Kubernetes minor version every tool validates against
RUN_TIMEOUT_S = 1_800  # seconds; one tool run, generous for checkov on 2 cores
INSTALL_TIMEOUT_S = 1_800  # seconds; one `pip install` of a peer

# Issue 20's targets (2 cores, the generated corpus, side by side in one run).
TARGET_DOCS_PER_S = 4_000.0  # trustgate throughput, whole process, schemas + bundled policies
TARGET_VS_CHECK_JSONSCHEMA = 10.0  # times faster (best wall clock)
TARGET_VS_CHECKOV = 30.0  # times faster (best wall clock)
TARGET_OVER_FLOOR = 1.0  # trustgate's best time / the floor's, at most (generated corpus)
TARGET_OVER_FLOOR_REAL = 1.5  # the same on a repository of small manifests (--corpus)
TARGET_ONE_FILE_S = 0.15  # seconds at most: `check` of one small file (the fixed cost of a run)
TARGET_VERSION_S = 0.08  # seconds at most: `trustgate --version` (start-up)
TARGET_JOBS_SPEEDUP = 1.8  # `--jobs 1` time / default jobs (one per core) time, at least
JOBS_TARGET_DOCS = 10_000  # documents the --jobs target is stated for

# Pinned so that numbers stay comparable between runs; a changed pin reinstalls.
PEERS: dict[str, list[str]] = {
    "check-jsonschema": ["check-jsonschema==0.39.0", "kubernetes-validate==1.37.0"],
    "checkov": ["checkov==3.3.30"],
}

# Every child runs with this on top of the caller's environment. The proxy points
# at a closed local port, so a tool that tries the network anyway gets
# "connection refused" at once instead of hanging on a dead route.
OFFLINE_ENV: dict[str, str] = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
    # checkov: no platform mapping download, no SCA, no PyPI update check.
    "BC_SKIP_MAPPING": "TRUE",
    "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
    "CKV_VALIDATE_SECRETS": "false",
    "REQUEST_MAX_TRIES": "1",
    "SLEEP_BETWEEN_REQUEST_TRIES": "0",
    "LOG_LEVEL": "WARNING",
    # Everyone: no colour codes in captured output.
    "NO_COLOR": "1",
    "PYTHONWARNINGS": "ignore",
}
UNSET_ENV = ("BC_API_KEY", "PRISMA_API_URL", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")


# --- A tiny YAML emitter --------------------------------------------------------
# Block style, like hand-written manifests. Strings are plain when that is
# unambiguous, else JSON-quoted (a JSON string is a valid YAML double-quoted one).

_PLAIN = re.compile(r"^[A-Za-z/][A-Za-z0-9_./@:+-]*$")
_YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML11_WORDS and not text.endswith(":"):
        return text
    return json.dumps(text)


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, Mapping):
        for key, item in value.items():
            _emit_entry(f"{pad}{_scalar(key)}:", item, indent, out)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping) and item:
                sub: list[str] = []
                _emit(item, indent + 2, sub)
                sub[0] = f"{pad}- " + sub[0][indent + 2 :]
                out.extend(sub)
            else:
                _emit_entry(f"{pad}-", item, indent, out)
    else:
        out.append(pad + _scalar(value))


def _emit_entry(head: str, item: Any, indent: int, out: list[str]) -> None:
    if isinstance(item, Mapping):
        if item:
            out.append(head)
            _emit(item, indent + 2, out)
        else:
            out.append(head + " {}")
    elif isinstance(item, list):
        if item:
            out.append(head)
            _emit(item, indent + 2, out)
        else:
            out.append(head + " []")
    elif isinstance(item, str) and "\n" in item:
        out.append(head + " |")
        body = " " * (indent + 2)
        out.extend((body + line).rstrip() for line in item.rstrip("\n").split("\n"))
    else:
        out.append(f"{head} {_scalar(item)}")


def to_yaml(obj: Mapping[str, Any]) -> str:
    out: list[str] = []
    _emit(obj, 0, out)
    return "\n".join(out) + "\n"


# --- Corpus -------------------------------------------------------------------

TEAMS = [
    "payments",
    "checkout",
    "identity",
    "search",
    "catalog",
    "platform",
    "data",
    "notifications",
    "billing",
    "growth",
    "ml-serving",
    "observability",
]
APP_WORDS = [
    "api",
    "gateway",
    "worker",
    "indexer",
    "ledger",
    "router",
    "scheduler",
    "exporter",
    "frontend",
    "backend",
    "auth",
    "session",
    "cache-warmer",
    "reconciler",
    "ingester",
    "webhook",
    "reporter",
    "sync",
    "mailer",
    "broker",
]
SIDECARS = [
    ("envoy", "envoyproxy/envoy", "v1.31.2", 9901),
    ("otel-agent", "otel/opentelemetry-collector-contrib", "0.112.0", 13133),
    ("oauth2-proxy", "quay.io/oauth2-proxy/oauth2-proxy", "v7.7.1", 4180),
]
REGISTRY = "registry.corp.example"

# Probabilities per workload (Deployment, StatefulSet, CronJob) unless noted.
P_PRIVILEGED = 0.03
P_LATEST = 0.05
P_NO_LIMITS = 0.07
P_NO_PROBES = 0.07  # long-running workloads only
P_HOST_NETWORK = 0.02
P_RUN_AS_ROOT = 0.03
P_UNKNOWN_FIELD = 0.012  # any document: a schema error
P_WRONG_TYPE = 0.012  # any document: a schema error
P_DIGEST = 0.35  # compliant images pinned by digest rather than tag


@dataclass
class Corpus:
    root: Path
    files: int = 0
    documents: int = 0
    bytes: int = 0
    by_kind: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    injected: collections.Counter[str] = field(default_factory=collections.Counter)
    schema_error_files: set[str] = field(default_factory=set)  # relative paths


class _Gen:
    """Builds one realistic app at a time; `rng` makes every choice."""

    def __init__(self, rng: random.Random, corpus: Corpus) -> None:
        self.rng = rng
        self.c = corpus

    # -- pieces --------------------------------------------------------------

    def labels(self, team: str, app: str, component: str) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": team,
            "app.kubernetes.io/managed-by": "argocd",
            "team": team,
        }

    def meta(self, name: str, team: str, app: str, component: str) -> dict[str, Any]:
        m: dict[str, Any] = {
            "name": name,
            "namespace": team,
            "labels": self.labels(team, app, component),
        }
        if self.rng.random() < 0.3:
            m["annotations"] = {
                "argocd.argoproj.io/sync-wave": str(self.rng.randint(-1, 3)),
                "owner": f"{team}@corp.example",
            }
        return m

    def image(self, team: str, app: str, violations: list[str]) -> str:
        repo = f"{REGISTRY}/{team}/{app}"
        if self.rng.random() < P_LATEST:
            violations.append("latest-tag")
            return f"{repo}:latest"
        if self.rng.random() < P_DIGEST:
            digest = hashlib.sha256(f"{repo}{self.rng.random()}".encode()).hexdigest()
            return f"{repo}@sha256:{digest}"
        return f"{repo}:{self.rng.randint(0, 4)}.{self.rng.randint(0, 30)}.{self.rng.randint(0, 12)}"

    def resources(self, violations: list[str], heavy: bool = False) -> dict[str, Any]:
        cpu = self.rng.choice([50, 100, 200, 250, 500]) * (4 if heavy else 1)
        mem = self.rng.choice([64, 128, 256, 512]) * (4 if heavy else 1)
        res: dict[str, Any] = {"requests": {"cpu": f"{cpu}m", "memory": f"{mem}Mi"}}
        if self.rng.random() < P_NO_LIMITS:
            violations.append("missing-limits")
        else:
            lcpu, lmem = cpu * 2, mem * 2
            res["limits"] = {
                "cpu": f"{lcpu // 1000}" if lcpu % 1000 == 0 else f"{lcpu}m",
                "memory": f"{lmem // 1024}Gi" if lmem % 1024 == 0 else f"{lmem}Mi",
            }
        return res

    def container_security(self, violations: list[str]) -> dict[str, Any]:
        sc: dict[str, Any] = {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        if self.rng.random() < P_PRIVILEGED:
            violations.append("privileged")
            sc["privileged"] = True
            sc["allowPrivilegeEscalation"] = True
            sc["capabilities"] = {"add": ["NET_ADMIN", "SYS_ADMIN"]}
        if self.rng.random() < P_RUN_AS_ROOT:
            violations.append("run-as-root")
            sc["runAsNonRoot"] = False
            sc["runAsUser"] = 0
        return sc

    def probes(self, port: int) -> dict[str, Any]:
        probes: dict[str, Any] = {
            "livenessProbe": {
                "httpGet": {"path": "/healthz", "port": "http"},
                "initialDelaySeconds": self.rng.choice([5, 10, 15]),
                "periodSeconds": 10,
                "timeoutSeconds": 2,
                "failureThreshold": 3,
            },
            "readinessProbe": {
                "httpGet": {"path": "/readyz", "port": "http"},
                "periodSeconds": 5,
                "failureThreshold": 3,
            },
        }
        if self.rng.random() < 0.3:
            probes["startupProbe"] = {
                "tcpSocket": {"port": port},
                "periodSeconds": 5,
                "failureThreshold": 30,
            }
        return probes

    def env(self, app: str) -> list[dict[str, Any]]:
        env: list[dict[str, Any]] = [
            {
                "name": "LOG_LEVEL",
                "valueFrom": {"configMapKeyRef": {"name": f"{app}-config", "key": "LOG_LEVEL"}},
            },
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector.observability:4317"},
        ]
        if self.rng.random() < 0.5:
            env.append(
                {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": f"{app}-db", "key": "url"}}}
            )
        if self.rng.random() < 0.3:
            env.append({"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}})
        return env

    def main_container(
        self, team: str, app: str, port: int, violations: list[str], *, probes: bool
    ) -> dict[str, Any]:
        c: dict[str, Any] = {
            "name": app,
            "image": self.image(team, app, violations),
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
            "env": self.env(app),
            "resources": self.resources(violations),
        }
        if self.rng.random() < 0.3:
            c["args"] = ["--config=/etc/app/app.yaml", f"--listen=:{port}"]
        if probes:
            if self.rng.random() < P_NO_PROBES:
                violations.append("missing-probes")
            else:
                c.update(self.probes(port))
        c["securityContext"] = self.container_security(violations)
        c["volumeMounts"] = [
            {"name": "config", "mountPath": "/etc/app", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ]
        return c

    def sidecar(self, violations: list[str]) -> dict[str, Any]:
        name, image, tag, port = self.rng.choice(SIDECARS)
        return {
            "name": name,
            "image": f"{image}:{tag}",
            "ports": [{"name": "admin", "containerPort": port}],
            "resources": self.resources(violations),
            "readinessProbe": {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 10},
            "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 20},
            "securityContext": {
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }

    def pod_spec(
        self, team: str, app: str, port: int, violations: list[str], *, probes: bool, job: bool = False
    ) -> dict[str, Any]:
        containers = [self.main_container(team, app, port, violations, probes=probes)]
        if not job and self.rng.random() < 0.25:
            containers.append(self.sidecar(violations))
        spec: dict[str, Any] = {
            "serviceAccountName": app,
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": containers,
            "volumes": [
                {"name": "config", "configMap": {"name": f"{app}-config"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            ],
        }
        if "run-as-root" in violations:
            spec["securityContext"]["runAsNonRoot"] = False
            spec["securityContext"]["runAsUser"] = 0
        if job:
            spec["restartPolicy"] = "OnFailure"
        if self.rng.random() < P_HOST_NETWORK:
            violations.append("host-network")
            spec["hostNetwork"] = True
            spec["dnsPolicy"] = "ClusterFirstWithHostNet"
        if self.rng.random() < 0.3:
            spec["nodeSelector"] = {
                "kubernetes.io/os": "linux",
                "node.corp.example/pool": self.rng.choice(["general", "compute", "memory"]),
            }
        if self.rng.random() < 0.2:
            spec["tolerations"] = [
                {"key": "dedicated", "operator": "Equal", "value": team, "effect": "NoSchedule"}
            ]
        if not job and self.rng.random() < 0.35:
            spec["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}},
                }
            ]
        if not job and self.rng.random() < 0.25:
            spec["affinity"] = {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}},
                            },
                        }
                    ]
                }
            }
        if self.rng.random() < 0.2:
            spec["terminationGracePeriodSeconds"] = self.rng.choice([30, 60, 120])
        return spec

    def template(self, team: str, app: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "metadata": {
                "labels": {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": team},
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
            },
            "spec": spec,
        }

    # -- documents -------------------------------------------------------------

    def deployment(self, team: str, app: str, port: int, v: list[str]) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self.meta(app, team, app, "server"),
            "spec": {
                "replicas": self.rng.choice([2, 2, 3, 3, 4, 6]),
                "revisionHistoryLimit": 5,
                "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
                },
                "template": self.template(team, app, self.pod_spec(team, app, port, v, probes=True)),
            },
        }

    def statefulset(self, team: str, app: str, port: int, v: list[str]) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": self.meta(app, team, app, "database"),
            "spec": {
                "serviceName": app,
                "replicas": 3,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                "template": self.template(team, app, self.pod_spec(team, app, port, v, probes=True)),
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": "gp3",
                            "resources": {"requests": {"storage": f"{self.rng.choice([10, 20, 50, 100])}Gi"}},
                        },
                    }
                ],
            },
        }

    def cronjob(self, team: str, app: str, job: str, v: list[str]) -> dict[str, Any]:
        name = f"{app}-{job}"
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": self.meta(name, team, app, "job"),
            "spec": {
                "schedule": f"{self.rng.randint(0, 59)} {self.rng.choice(['*', '*/2', '3', '*/6'])} * * *",
                "timeZone": "Etc/UTC",
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 2,
                        "activeDeadlineSeconds": 3600,
                        "ttlSecondsAfterFinished": 86400,
                        "template": self.template(
                            team, app, self.pod_spec(team, app, 8080, v, probes=False, job=True)
                        ),
                    }
                },
            },
        }

    def service(self, team: str, app: str, port: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.meta(app, team, app, "server"),
            "spec": {
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/name": app},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                    {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
                ],
            },
        }

    def configmap(self, team: str, app: str, port: int) -> dict[str, Any]:
        config = "\n".join(
            [
                "server:",
                f'  listen: ":{port}"',
                f"  readTimeout: {self.rng.choice([5, 10, 30])}s",
                "telemetry:",
                "  metrics: true",
                f"  serviceName: {app}",
                "features:",
                f"  newCheckout: {self.rng.choice(['true', 'false'])}",
                "",
            ]
        )
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.meta(f"{app}-config", team, app, "config"),
            "data": {
                "LOG_LEVEL": self.rng.choice(["info", "info", "debug", "warn"]),
                "MAX_CONNECTIONS": str(self.rng.choice([50, 100, 200])),
                "FEATURE_FLAGS": "checkout-v2,fast-search",
                "app.yaml": config,
            },
        }

    def ingress(self, team: str, app: str) -> dict[str, Any]:
        host = f"{app}.{team}.apps.corp.example"
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                **self.meta(app, team, app, "edge"),
                "annotations": {
                    "cert-manager.io/cluster-issuer": "corp-ca",
                    "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
                },
            },
            "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": [host], "secretName": f"{app}-tls"}],
                "rules": [
                    {
                        "host": host,
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": app, "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ],
            },
        }

    # -- schema errors ------------------------------------------------------------

    def break_schema(self, doc: dict[str, Any]) -> str | None:
        """Maybe injects one schema error; returns its name."""
        roll = self.rng.random()
        kind = doc["kind"]
        if roll < P_UNKNOWN_FIELD:
            if kind in ("Deployment", "StatefulSet"):
                doc["spec"]["replica"] = doc["spec"].pop("replicas")  # typo
            elif kind == "CronJob":
                doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0][
                    "imagePullPolicyy"
                ] = "Always"
            elif kind == "Service":
                doc["spec"]["port"] = 80  # belongs under ports[]
            elif kind == "ConfigMap":
                doc["metadata"]["label"] = {"team": doc["metadata"]["namespace"]}
            else:
                doc["spec"]["rules"][0]["http"]["paths"][0]["backend"]["serviceName"] = doc["metadata"][
                    "name"
                ]
            return "unknown-field"
        if roll < P_UNKNOWN_FIELD + P_WRONG_TYPE:
            if kind in ("Deployment", "StatefulSet"):
                doc["spec"]["replicas"] = str(doc["spec"]["replicas"])
            elif kind == "CronJob":
                doc["spec"]["successfulJobsHistoryLimit"] = "three"
            elif kind == "Service":
                doc["spec"]["ports"][0]["port"] = "80"
            elif kind == "ConfigMap":
                doc["data"]["MAX_CONNECTIONS"] = int(doc["data"]["MAX_CONNECTIONS"])
            else:
                doc["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"] = "80"
            return "wrong-type"
        return None

    # -- one app -----------------------------------------------------------------

    def app_docs(self, team: str, app: str) -> list[tuple[str, dict[str, Any], list[str]]]:
        """Returns (filename, document, policy violations) for one app directory."""
        port = self.rng.choice([8080, 8080, 8000, 3000, 9000])
        out: list[tuple[str, dict[str, Any], list[str]]] = []
        shape = self.rng.random()
        if shape < 0.12:  # a batch-only app
            for job in self.rng.sample(["compact", "report", "rotate", "backfill"], self.rng.randint(1, 2)):
                v: list[str] = []
                out.append((f"cronjob-{job}.yaml", self.cronjob(team, app, job, v), v))
            out.append(("configmap.yaml", self.configmap(team, app, port), []))
            return out
        v = []
        if shape < 0.24:
            out.append(("statefulset.yaml", self.statefulset(team, app, port, v), v))
        else:
            out.append(("deployment.yaml", self.deployment(team, app, port, v), v))
        out.append(("service.yaml", self.service(team, app, port), []))
        out.append(("configmap.yaml", self.configmap(team, app, port), []))
        if self.rng.random() < 0.5:
            out.append(("ingress.yaml", self.ingress(team, app), []))
        if self.rng.random() < 0.25:
            v2: list[str] = []
            out.append(("cronjob-cleanup.yaml", self.cronjob(team, app, "cleanup", v2), v2))
        return out


def generate_corpus(root: Path, docs: int, seed: int) -> Corpus:
    """Writes `docs` single-document manifests under root/apps/<team>/<app>/."""
    rng = random.Random(seed)
    corpus = Corpus(root=root)
    gen = _Gen(rng, corpus)
    used: set[tuple[str, str]] = set()
    n = 0
    while corpus.documents < docs:
        team = TEAMS[n % len(TEAMS)]
        n += 1
        base = rng.choice(APP_WORDS)
        app = base
        suffix = 2
        while (team, app) in used:
            app = f"{base}-{suffix}"
            suffix += 1
        used.add((team, app))
        app_dir = root / "apps" / team / app
        app_dir.mkdir(parents=True)
        for filename, doc, violations in gen.app_docs(team, app):
            if corpus.documents >= docs:
                break
            broken = gen.break_schema(doc)
            rel = f"apps/{team}/{app}/{filename}"
            if broken:
                corpus.injected[broken] += 1
                corpus.schema_error_files.add(rel)
            for name in violations:
                corpus.injected[name] += 1
            text = to_yaml(doc)
            (root / rel).write_text(text)
            corpus.files += 1
            corpus.documents += 1
            corpus.bytes += len(text.encode())
            corpus.by_kind[doc["kind"]].append(rel)
    return corpus


def scan_corpus(root: Path) -> Corpus:
    """A directory of real manifests (--corpus): its YAML and JSON files, as trustgate walks them."""
    corpus = Corpus(root=root)
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.endswith((".yaml", ".yml", ".json")):
                corpus.files += 1
                corpus.bytes += os.path.getsize(os.path.join(top, name))
    return corpus


# --- Measuring a child process -----------------------------------------------------


@dataclass
class Sample:
    rc: int
    wall_s: float
    maxrss_kib: int
    cpu_s: float = 0.0  # user + system CPU seconds of the child and the descendants it waited for


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdout: Path | None,
    stderr: Path,
    timeout_s: float = RUN_TIMEOUT_S,
) -> Sample:
    """Runs argv once; returns its exit code, wall seconds and peak RSS.

    Peak RSS is `ru_maxrss` from `wait4` on the child: the largest resident set
    of the child or of any of its descendants it waited for (Linux merges those),
    so a tool that forks workers reports its biggest process, not their sum.
    """
    with open(stdout or os.devnull, "wb") as out_f, open(stderr, "wb") as err_f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out_f,
            stderr=err_f,
            start_new_session=True,
        )
        timer = threading.Timer(timeout_s, _kill_group, args=(proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen won't wait again
    cpu = usage.ru_utime + usage.ru_stime
    return Sample(rc=proc.returncode, wall_s=wall, maxrss_kib=int(usage.ru_maxrss), cpu_s=cpu)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    env.update(OFFLINE_ENV)
    if extra:
        env.update(extra)
    return env


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --- Peer virtualenvs --------------------------------------------------------------


@dataclass
class Install:
    name: str
    venv: Path
    seconds: float | None  # None: reused from a cache that did not record it
    reused: bool


def ensure_venv(cache: Path, name: str, packages: list[str]) -> Install:
    """Creates (or reuses) cache/<name> with exactly `packages` installed."""
    venv = cache / name
    marker = venv / ".bench-packages.json"
    want = {"python": sys.version.split()[0], "packages": packages}
    if marker.exists() and (venv / "bin" / "python").exists():
        try:
            have = json.loads(marker.read_text())
        except ValueError:
            have = {}
        if {k: have.get(k) for k in want} == want:
            return Install(name, venv, have.get("install_seconds"), True)
    if venv.exists():
        shutil.rmtree(venv)
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / f"{name}.install.log"
    print(f"  installing {name} ({' '.join(packages)}) into {venv} ...", flush=True)
    t0 = time.perf_counter()
    with open(log, "wb") as f:
        for argv in (
            [sys.executable, "-m", "venv", str(venv)],
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *packages,
            ],
        ):
            f.write(("$ " + " ".join(argv) + "\n").encode())
            f.flush()
            rc = subprocess.run(
                argv, stdout=f, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S
            ).returncode
            if rc != 0:
                raise SystemExit(f"bench: installing {name} failed (exit {rc}); see {log}:\n{tail(log)}")
    seconds = time.perf_counter() - t0
    marker.write_text(json.dumps(want | {"install_seconds": round(seconds, 1)}))
    return Install(name, venv, seconds, False)


# --- Results ---------------------------------------------------------------------------


@dataclass
class ToolResult:
    tool: str
    checks: str
    documents: int
    samples: list[float] = field(default_factory=list)  # wall seconds of each timed run
    cpu_samples: list[float] = field(default_factory=list)  # CPU seconds (user + system) of each
    maxrss_kib: int = 0  # max over the timed runs
    ok: bool = True
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    floor: bool = False  # not a peer: the floor no checker can go below
    aux: bool = False  # another way of running trustgate (one file, --jobs 1): not a peer

    @property
    def best(self) -> float:
        return min(self.samples) if self.samples else float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.best if self.samples and self.best > 0 else float("nan")

    @property
    def rss_mib(self) -> float:
        return self.maxrss_kib / 1024


@dataclass
class Timed:
    """A tool made ready to time: its result so far and one timed run (None: it is not ready)."""

    result: ToolResult
    run_once: Callable[[], None] | None = None


def _timed(
    result: ToolResult,
    argv: Sequence[str],
    *,
    work: Path,
    env: Mapping[str, str],
    stdout: Path | None,
    stderr: Path,
    codes: tuple[int, ...],
) -> Timed:
    """Timed runs of `argv`: each adds its wall, CPU seconds and peak RSS to `result`; an exit
    code not in `codes` fails the tool instead."""

    def run_once() -> None:
        s = run_measured(argv, cwd=work, env=env, stdout=stdout, stderr=stderr)
        if s.rc not in codes:
            result.ok = False
            result.note += f"exit {s.rc} on a timed run: {tail(stderr, 8)}"
            return
        result.samples.append(s.wall_s)
        result.cpu_samples.append(s.cpu_s)
        result.maxrss_kib = max(result.maxrss_kib, s.maxrss_kib)

    return Timed(result, run_once)


def _failed(result: ToolResult, note: str) -> Timed:
    result.ok = False
    result.note += note
    return Timed(result)


def bytecode_env(work: Path) -> dict[str, str]:
    """An environment in which Python caches bytecode, in the temp dir.

    trustgate runs from an editable install: with PYTHONDONTWRITEBYTECODE set
    (as on some CI machines) it would compile every module on every run, which
    an installed package (and each peer, compiled by pip) never does.
    """
    env = child_env({"PYTHONPYCACHEPREFIX": str(work / "pycache")})
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


# --- The floor: PyYAML's libyaml loader, alone -----------------------------------------------

FLOOR_SCRIPT = """\
import os, sys, yaml
docs = errors = 0
for top, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    for name in sorted(files):
        if name.endswith((".yaml", ".yml", ".json")):
            with open(os.path.join(top, name), "rb") as f:
                data = f.read()
            try:
                docs += sum(d is not None for d in yaml.load_all(data, Loader=yaml.CSafeLoader))
            except yaml.YAMLError:
                errors += 1
print(docs, errors)
"""


def bench_floor(python: Path, corpus: Corpus, work: Path) -> Timed:
    """`yaml.load_all(data, Loader=yaml.CSafeLoader)` over every file: the cost of reading it at all.

    A child process like the tools (interpreter start, import, walk, read, parse),
    with the Python of trustgate's venv, which has PyYAML built with libyaml.
    """
    result = ToolResult("floor: PyYAML CSafeLoader", "parse only", corpus.documents, floor=True)
    if not os.access(python, os.X_OK):
        return _failed(result, f"{python} not found; the floor needs trustgate's venv")
    env = bytecode_env(work)
    argv = [str(python), "-c", FLOOR_SCRIPT, str(corpus.root)]
    out, err = work / "floor.out", work / "floor.stderr"
    check = subprocess.run(
        [str(python), "-c", "import yaml; yaml.CSafeLoader"], env=env, capture_output=True, timeout=60
    )
    if check.returncode != 0:
        return _failed(result, "PyYAML without libyaml (no CSafeLoader) in trustgate's venv")
    warm = run_measured(argv, cwd=work, env=env, stdout=out, stderr=err)  # untimed: warm-up, and counts
    if warm.rc != 0:
        return _failed(result, f"exit {warm.rc}: {tail(err, 8)}")
    docs, errors = (int(x) for x in out.read_text().split())
    result.extra.update(documents=docs, files_not_parsed=errors)

    return _timed(result, argv, work=work, env=env, stdout=None, stderr=err, codes=(0,))


# --- trustgate ----------------------------------------------------------------------------


def bench_trustgate(
    binary: Path,
    corpus: Corpus,
    work: Path,
    *,
    real_corpus: bool = False,
    jobs: int | None = None,
) -> Timed:
    """trustgate ready to time; with `real_corpus`, exit 3 (a document it could not evaluate) counts too.

    `jobs`: pass `--jobs N` (an auxiliary row, for the --jobs target); default: trustgate's own
    default (one worker per core).
    """
    name = "trustgate" if jobs is None else f"trustgate --jobs {jobs}"
    result = ToolResult(name, "schemas + policies", corpus.documents, aux=jobs is not None)
    codes = (0, 1, 3) if real_corpus else (0, 1)
    if not os.access(binary, os.X_OK):
        return _failed(
            result, f"{binary} not found or not executable (run `make install`, or pass --trustgate PATH)"
        )
    env = trustgate_env(work)
    help_out = subprocess.run(
        [str(binary), "check", "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    help_text = help_out.stdout + help_out.stderr
    base = [str(binary), "check", str(corpus.root)]
    if jobs is not None:
        if "--jobs" not in help_text:
            return _failed(result, "no --jobs option")
        base += ["--jobs", str(jobs)]
    if "--format" in help_text:
        base += ["--format", "json"]
    else:
        result.note += "no --format option; "
    if "--kubernetes-version" in help_text:
        base += ["--kubernetes-version", K8S_VERSION]
    else:
        result.note += "no --kubernetes-version option; "
    has_output = "--output" in help_text

    def argv_to(path: Path) -> tuple[list[str], Path | None]:
        # With --output the report goes to the file and stdout is discarded;
        # without it the report is stdout itself.
        return ([*base, "--output", str(path)], None) if has_output else (base, path)

    # Untimed run: a warm-up (bytecode, page cache, compile cache) that also gives us the report.
    report = work / "trustgate.report.json"
    err = work / "trustgate.stderr"
    argv, stdout = argv_to(report)
    sanity = run_measured(argv, cwd=work, env=env, stdout=stdout, stderr=err)
    result.extra["argv"] = [*argv[:1], "check", "<corpus>", *argv[3:]]
    if sanity.rc not in codes:
        return _failed(result, f"exit {sanity.rc}: {tail(err, 8)}")
    if sanity.rc == 3:
        result.note += "exit 3: some input could not be evaluated; "
    summary = _trustgate_summary(report)
    if summary is None:
        size = report.stat().st_size if report.exists() else 0
        return _failed(result, f"could not read a JSON summary from its report ({size} bytes)")
    result.extra.update(summary)
    if summary.get("documents") != corpus.documents:
        result.note += f"reports {summary.get('documents')} documents, corpus has {corpus.documents}; "

    argv, stdout = argv_to(Path(os.devnull))

    return _timed(result, argv, work=work, env=env, stdout=stdout, stderr=err, codes=codes)


def trustgate_env(work: Path) -> dict[str, str]:
    """`bytecode_env`, with trustgate's compile cache in the temp dir too.

    trustgate keeps its rewritten policies and assembled schemas in the user's
    cache directory between runs (as any user's second run finds them); the
    untimed warm-up run fills this one, so every timed run starts warm and no
    run reads or writes the cache of whoever runs the benchmark.
    """
    return bytecode_env(work) | {"XDG_CACHE_HOME": str(work.parent / "trustgate-cache")}


def bench_startup(binary: Path, corpus: Corpus, work: Path, *, version: bool) -> Timed:
    """`trustgate --version`, or `trustgate check` of one small file: start-up and the fixed cost."""
    if version:
        result = ToolResult("trustgate --version", "start-up only", 0, aux=True)
        argv = [str(binary), "--version"]
        codes: tuple[int, ...] = (0,)
    else:
        result = ToolResult("trustgate, one file", "schemas + policies", 1, aux=True)
        # The smallest Deployment or StatefulSet of the corpus; in a real one (--corpus), whose
        # files may be named otherwise, the smallest YAML file.
        yamls = [p for p in corpus.root.rglob("*.y*ml") if p.is_file() and not _hidden(p, corpus.root)]
        workloads = [p for p in yamls if p.name in ("deployment.yaml", "statefulset.yaml")]
        small = min(workloads or yamls, key=lambda p: (p.stat().st_size, str(p)), default=None)
        if small is None:
            result.note += "no YAML file in the corpus; "
            return Timed(result)  # nothing to time: not a failure of trustgate
        argv = [str(binary), "check", str(small), "--format", "json", "--kubernetes-version", K8S_VERSION]
        argv += ["--output", os.devnull]
        codes = (0, 1, 3)
        result.extra["file"] = str(small.relative_to(corpus.root))
    if not os.access(binary, os.X_OK):
        return _failed(result, f"{binary} not found or not executable")
    env = trustgate_env(work)
    err = work / ("version.stderr" if version else "one-file.stderr")
    warm = run_measured(argv, cwd=work, env=env, stdout=None, stderr=err)
    if warm.rc not in codes:
        return _failed(result, f"exit {warm.rc}: {tail(err, 8)}")

    return _timed(result, argv, work=work, env=env, stdout=None, stderr=err, codes=codes)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _trustgate_summary(report: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("summary"), dict):
        return None
    s = data["summary"]
    out = {k: s.get(k) for k in ("documents", "passed", "failed", "warnings", "errors")}
    out["findings"] = _count_findings(data)
    return out


def _count_findings(data: Mapping[str, Any]) -> int | None:
    """Counts findings whether the report lists them flat or per document."""
    if isinstance(data.get("findings"), list):
        return len(data["findings"])
    for key in ("documents", "results"):
        docs = data.get(key)
        if isinstance(docs, list):
            return sum(len(d.get("findings", [])) for d in docs if isinstance(d, dict))
    if isinstance(data["summary"].get("findings"), int):
        return int(data["summary"]["findings"])
    return None


# --- check-jsonschema ------------------------------------------------------------------------


def _schema_file(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    group = group.removesuffix(".k8s.io")
    return f"{kind.lower()}-{group}-{version}.json" if group else f"{kind.lower()}-{version}.json"


API_VERSIONS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "CronJob": "batch/v1",
    "Service": "v1",
    "ConfigMap": "v1",
    "Ingress": "networking.k8s.io/v1",
}


def prepare_schemas(venv: Path, kinds: Iterable[str], out: Path) -> dict[str, Path]:
    """Copies the kind schemas and their definitions so that every $ref is a local file.

    The kubernetes-validate schemas carry `$id: https://kubernetes.io/...` and
    refer to `/api/_definitions.json#/$defs/...`, which a validator resolves
    against the `$id` -- i.e. to kubernetes.io. We drop the `$id`s and point
    every such ref at the file URI of a local copy of `_definitions.json`.
    """
    pkg = (
        _site_packages(venv)
        / "kubernetes_validate"
        / "kubernetes-json-schema"
        / f"v{K8S_VERSION}.0-local-strict"
    )
    if not pkg.is_dir():
        raise SystemExit(f"bench: {pkg} is missing; kubernetes-validate has no schemas for {K8S_VERSION}")
    out.mkdir(parents=True, exist_ok=True)
    defs = json.loads((pkg / "_definitions.json").read_text())
    defs.pop("$id", None)
    defs_path = out / "_definitions.json"
    defs_path.write_text(json.dumps(defs))
    defs_uri = defs_path.as_uri()

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (
                    defs_uri + v.removeprefix("/api/_definitions.json")
                    if k == "$ref" and isinstance(v, str) and v.startswith("/api/_definitions.json")
                    else rewrite(v)
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [rewrite(x) for x in node]
        return node

    paths: dict[str, Path] = {}
    for kind in kinds:
        name = _schema_file(API_VERSIONS[kind], kind)
        schema = json.loads((pkg / name).read_text())
        schema.pop("$id", None)
        schema = rewrite(schema)
        leftovers = re.findall(r'"\$ref": "(?!file:|#)[^"]*"', json.dumps(schema))
        if leftovers:
            raise SystemExit(f"bench: {name} still has non-local refs: {leftovers[:3]}")
        paths[kind] = out / name
        paths[kind].write_text(json.dumps(schema))
    return paths


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if not found:
        raise SystemExit(f"bench: no site-packages under {venv}")
    return found[0]


SELFTEST_GOOD = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: good
spec:
  replicas: 1
  selector:
    matchLabels: {app: good}
  template:
    metadata:
      labels: {app: good}
    spec:
      containers:
        - name: good
          image: registry.corp.example/good:1.0.0
"""
SELFTEST_BAD = SELFTEST_GOOD.replace("replicas: 1", 'replicas: "one"').replace(
    "          image:", "          imagePullPolicyy: Always\n          image:"
)


def bench_check_jsonschema(venv: Path, corpus: Corpus, work: Path) -> Timed:
    result = ToolResult("check-jsonschema", "schemas only", corpus.documents)
    if not corpus.by_kind:  # not a failure: nothing to time
        result.note = "skipped: with --corpus there is no one schema per file to give it"
        return Timed(result)
    exe = venv / "bin" / "check-jsonschema"
    env = child_env()
    kinds = sorted(corpus.by_kind)
    schemas = prepare_schemas(venv, set(kinds) | {"Deployment"}, work / "schemas")

    # Self-test: a good document passes and a broken one fails on both errors,
    # so we know the refs resolved offline and validation really ran.
    st = work / "selftest"
    st.mkdir()
    (st / "good.yaml").write_text(SELFTEST_GOOD)
    (st / "bad.yaml").write_text(SELFTEST_BAD)
    for name, want_rc in (("good.yaml", 0), ("bad.yaml", 1)):
        proc = subprocess.run(
            [str(exe), "--schemafile", str(schemas["Deployment"]), name],
            cwd=st,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        text = proc.stdout + proc.stderr
        if proc.returncode != want_rc or (
            name == "bad.yaml" and not ("imagePullPolicyy" in text and "'one'" in text)
        ):
            return _failed(
                result, f"self-test on {name}: exit {proc.returncode}, want {want_rc}: {text.strip()[-600:]}"
            )

    def run_once() -> None:
        first = not result.samples
        failed_files: set[str] = set()
        total = cpu = 0.0
        for kind in kinds:
            out = work / f"cjs.{kind}.out"
            err = work / f"cjs.{kind}.err"
            argv = [str(exe), "--schemafile", str(schemas[kind]), "-o", "json", *corpus.by_kind[kind]]
            s = run_measured(argv, cwd=corpus.root, env=env, stdout=out, stderr=err)
            if s.rc not in (0, 1):
                result.ok = False
                result.note = f"{kind}: exit {s.rc}: {tail(err, 8)}"
                return
            total += s.wall_s
            cpu += s.cpu_s
            result.maxrss_kib = max(result.maxrss_kib, s.maxrss_kib)
            if first:
                failed_files |= _cjs_failed_files(out)
        result.samples.append(total)
        result.cpu_samples.append(cpu)
        if first:
            result.extra["invocations_per_run"] = len(kinds)
            result.extra["files_with_errors"] = len(failed_files)
            result.extra["injected_schema_errors"] = len(corpus.schema_error_files)
            if failed_files != corpus.schema_error_files:
                missed = sorted(corpus.schema_error_files - failed_files)[:3]
                extra = sorted(failed_files - corpus.schema_error_files)[:3]
                result.note = (
                    f"schema errors differ from the injected ones: missed {missed}, unexpected {extra}"
                )

    return Timed(result, run_once)


def _cjs_failed_files(out: Path) -> set[str]:
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError):
        return set()
    return {e["filename"] for e in data.get("errors", []) if isinstance(e, dict) and "filename" in e}


# --- checkov ------------------------------------------------------------------------------------


def bench_checkov(venv: Path, corpus: Corpus, work: Path) -> Timed:
    result = ToolResult("checkov", "policies (built-in)", corpus.documents)
    exe = venv / "bin" / "checkov"
    env = child_env()
    argv = [
        str(exe),
        "--framework",
        "kubernetes",
        "-d",
        str(corpus.root),
        "--quiet",
        "--compact",
        "-o",
        "json",
        "--skip-download",
    ]

    def run_once() -> None:
        out = work / "checkov.out.json"
        err = work / "checkov.stderr"
        s = run_measured(argv, cwd=work, env=env, stdout=out, stderr=err)
        if s.rc not in (0, 1):  # 1 = failed checks
            result.ok = False
            result.note = f"exit {s.rc}: {tail(err, 8)}"
            return
        if not result.samples:
            summary = _checkov_summary(out)
            if summary is None or not summary.get("failed"):
                result.ok = False
                result.note = f"no failed checks in its output; did it scan? {tail(err, 8)}"
                return
            result.extra.update(summary)
        result.samples.append(s.wall_s)
        result.cpu_samples.append(s.cpu_s)
        result.maxrss_kib = max(result.maxrss_kib, s.maxrss_kib)

    return Timed(result, run_once)


def _checkov_summary(out: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError):
        return None
    reports = data if isinstance(data, list) else [data]
    total: collections.Counter[str] = collections.Counter()
    failed_files: set[str] = set()
    for r in reports:
        s = r.get("summary", {})
        for k in ("passed", "failed", "parsing_errors", "resource_count"):
            total[k] += int(s.get(k, 0) or 0)
        for check in r.get("results", {}).get("failed_checks", []):
            failed_files.add(check.get("file_path", ""))
    out_d: dict[str, Any] = dict(total)
    out_d["files_with_failures"] = len(failed_files)
    return out_d


# --- Report ---------------------------------------------------------------------------------------


def fmt(x: float, spec: str = ".2f") -> str:
    return "-" if x != x else format(x, spec)  # NaN -> "-"


def print_table(results: list[ToolResult]) -> None:
    tg = results[0]
    head = [
        "tool",
        "checks",
        "docs",
        "best s",
        "median s",
        "CPU s",
        "docs/s",
        "peak RSS MiB",
        "speedup (peer s / tg s)",
        "RSS ratio (peer / tg)",
    ]
    rows = []
    for r in results:
        both = bool(r.samples and tg.samples) and r is not tg and not r.floor and not r.aux
        rows.append(
            [
                r.tool,
                r.checks,
                str(r.documents) if r.documents else "-",
                fmt(r.best, ".3f"),
                fmt(r.median, ".3f"),
                fmt(min(r.cpu_samples), ".2f") if r.cpu_samples else "-",
                fmt(r.docs_per_s, ",.0f") if r.documents > 1 else "-",
                fmt(r.rss_mib, ".1f") if r.samples else "-",
                f"{r.best / tg.best:.1f}x" if both else "-",
                f"{r.maxrss_kib / max(tg.maxrss_kib, 1):.1f}x" if both else "-",
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(head))
    print("-" * len(line(head)))
    for row in rows:
        print(line(row))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--docs", type=int, default=DEFAULT_DOCS, help="documents in the corpus (default %(default)s)"
    )
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="timed runs per tool (default %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="corpus seed (default %(default)s)")
    p.add_argument("--keep", action="store_true", help="keep the corpus and tool outputs; print where")
    p.add_argument("--skip-peers", action="store_true", help="time trustgate only")
    p.add_argument(
        "--skip-aux",
        action="store_true",
        help="leave out trustgate's other runs (--jobs 1, one file, --version) and their targets",
    )
    p.add_argument(
        "--trustgate",
        type=Path,
        default=REPO / ".venv" / "bin" / "trustgate",
        help="trustgate executable (default <repo>/.venv/bin/trustgate)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "trustgate-bench",
        help="where the peer virtualenvs live (default %(default)s)",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    p.add_argument(
        "--corpus",
        type=Path,
        metavar="DIR",
        help="time a directory of real manifests instead of the generated corpus (check-jsonschema is "
        "then left out: it takes one schema per invocation)",
    )
    p.add_argument("--fail-on-miss", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    if args.docs < 1 or args.runs < 1:
        p.error("--docs and --runs must be positive")
    if args.corpus is not None:
        if not args.corpus.is_dir():
            p.error(f"--corpus {args.corpus}: not a directory")
        args.corpus = args.corpus.resolve()

    work = Path(tempfile.mkdtemp(prefix="trustgate-bench-"))
    try:
        return _run(args, work)
    finally:
        if args.keep:
            print(f"\nkept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> int:
    print(
        f"trustgate benchmark - {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"Kubernetes {K8S_VERSION}, best of {args.runs}\n"
    )

    # 1. Corpus.
    t0 = time.perf_counter()
    if args.corpus is not None:
        corpus = scan_corpus(args.corpus)
        print(
            f"corpus: {corpus.root}, {corpus.files} YAML/JSON files, {corpus.bytes:,} bytes "
            f"({corpus.bytes / 1024 / 1024:.1f} MiB); documents counted by the floor's run"
        )
    else:
        corpus = generate_corpus(work / "corpus", args.docs, args.seed)
        kinds = ", ".join(f"{k} {len(v)}" for k, v in sorted(corpus.by_kind.items()))
        print(
            f"corpus: {corpus.files} files, {corpus.documents} documents, {corpus.bytes:,} bytes "
            f"({corpus.bytes / 1024 / 1024:.1f} MiB) in {time.perf_counter() - t0:.1f} s"
        )
        print(f"  kinds: {kinds}")
        print("  injected: " + ", ".join(f"{k} {v}" for k, v in sorted(corpus.injected.items())))
    print()

    # 2. Peers.
    installs: list[Install] = []
    if not args.skip_peers:
        print(f"peers: cached in {args.cache_dir}")
        for name, pkgs in PEERS.items():
            inst = ensure_venv(args.cache_dir, name, pkgs)
            installs.append(inst)
            if not inst.reused:
                print(f"  {name}: installed in {inst.seconds:.1f} s")
            elif inst.seconds is not None:
                print(f"  {name}: reused (its install took {inst.seconds:.1f} s)")
            else:
                print(f"  {name}: reused")
        print()

    # 3. Ready every tool (warm-up, self-tests), then time them in alternation: round i
    # runs each tool once, starting one further along, so that a slow spell of this
    # shared machine falls on all of them rather than on whichever ran then.
    floor_python = args.trustgate.parent / "python"
    real = args.corpus is not None
    steps: list[tuple[str, Callable[[], Timed]]] = [
        ("the floor", lambda: bench_floor(floor_python, corpus, _sub(work, "floor"))),  # counts a real corpus
        (
            "trustgate",
            lambda: bench_trustgate(args.trustgate, corpus, _sub(work, "trustgate"), real_corpus=real),
        ),
    ]
    if not args.skip_aux:
        steps += [
            (
                "trustgate --jobs 1",
                lambda: bench_trustgate(
                    args.trustgate, corpus, _sub(work, "jobs1"), real_corpus=real, jobs=1
                ),
            ),
            (
                "trustgate, one file",
                lambda: bench_startup(args.trustgate, corpus, _sub(work, "one"), version=False),
            ),
            (
                "trustgate --version",
                lambda: bench_startup(args.trustgate, corpus, _sub(work, "ver"), version=True),
            ),
        ]
    if not args.skip_peers:
        venvs = {i.name: i.venv for i in installs}
        steps += [
            (
                "check-jsonschema",
                lambda: bench_check_jsonschema(venvs["check-jsonschema"], corpus, _sub(work, "cjs")),
            ),
            ("checkov", lambda: bench_checkov(venvs["checkov"], corpus, _sub(work, "checkov"))),
        ]
    timed: list[Timed] = []
    for name, step in steps:
        print(f"preparing {name} ...", flush=True)
        timed.append(step())
        if name == "the floor" and args.corpus is not None and timed[-1].result.extra:
            corpus.documents = timed[-1].result.extra["documents"]  # a real corpus: count what parses
            timed[-1].result.documents = corpus.documents
        if timed[-1].result.tool == "trustgate --jobs 1":
            timed[-1].result.documents = corpus.documents
    # trustgate first, then the peers, trustgate's other runs, the floor last (stable)
    timed.sort(key=lambda t: (t.result.floor, t.result.aux))
    for i in range(args.runs):
        print(f"round {i + 1} of {args.runs} ...", flush=True)
        for t in timed[i % len(timed) :] + timed[: i % len(timed)]:
            if t.run_once is not None and t.result.ok:
                t.run_once()
    results = [t.result for t in timed]
    for r in results:
        status = f"{', '.join(f'{s:.2f}' for s in r.samples)} s" if r.samples else "no timing"
        print(
            f"  {r.tool}: {status}"
            + ("" if r.ok else "  FAILED")
            + (f"  [{r.note.strip()}]" if r.note else "")
        )
    print()

    # 4. Report.
    print_table(results)
    print()
    tg = results[0]
    if tg.extra:
        print(
            "trustgate report: "
            + ", ".join(
                f"{k} {tg.extra.get(k)}"
                for k in ("documents", "passed", "failed", "warnings", "errors", "findings")
            )
        )
    for r in results[1:]:
        if r.tool == "check-jsonschema" and r.extra.get("invocations_per_run"):
            print(
                f"check-jsonschema: {r.extra['files_with_errors']} files with schema errors "
                f"(injected {r.extra['injected_schema_errors']}), "
                f"{r.extra['invocations_per_run']} invocations per run"
            )
        if r.tool == "checkov" and r.extra:
            print(
                f"checkov: {r.extra.get('failed')} failed checks, {r.extra.get('passed')} passed, "
                f"{r.extra.get('resource_count')} resources, "
                f"{r.extra.get('files_with_failures')} files with failures, "
                f"{r.extra.get('parsing_errors')} parsing errors"
            )
    print()

    floor = next((r for r in results if r.floor and r.samples), None)
    floor_ratio = tg.best / floor.best if floor is not None and tg.samples else None
    if floor is not None and floor_ratio is not None:
        print(
            f"trustgate vs the floor: {floor_ratio:.2f}x the time PyYAML's CSafeLoader takes to parse the "
            f"corpus alone ({tg.best:.3f} s against {floor.best:.3f} s, best of each)"
        )
        if floor.extra.get("files_not_parsed"):
            print(f"  the floor could not parse {floor.extra['files_not_parsed']} files")
    ratios: dict[str, dict[str, float]] = {}
    for r in results[1:]:
        if tg.samples and r.samples and not r.floor and not r.aux:
            ratios[r.tool] = {
                "speedup": r.best / tg.best,
                "memory_ratio": r.maxrss_kib / max(tg.maxrss_kib, 1),
            }
            print(
                f"trustgate vs {r.tool}: {ratios[r.tool]['speedup']:.1f}x as fast; "
                f"{r.tool} peak RSS is {ratios[r.tool]['memory_ratio']:.1f}x trustgate's"
            )
    print()

    def verdict(value: float | None, target: float, higher: bool) -> str:
        if value is None or value != value:
            return "n/a"
        return "PASS" if (value >= target if higher else value <= target) else "MISS"

    def aux(tool: str) -> ToolResult | None:
        return next((r for r in results if r.tool == tool and r.samples), None)

    jobs1, one_file, version = (
        aux("trustgate --jobs 1"),
        aux("trustgate, one file"),
        aux("trustgate --version"),
    )
    jobs_speedup = jobs1.best / tg.best if jobs1 is not None and tg.samples else None
    over_floor_target = TARGET_OVER_FLOOR_REAL if args.corpus is not None else TARGET_OVER_FLOOR
    jobs_note = (
        f" ({corpus.documents:,} docs; stated for {JOBS_TARGET_DOCS:,})"
        if corpus.documents < JOBS_TARGET_DOCS
        else ""
    )
    # (label, value, target, value as shown, higher is better)
    targets: list[tuple[str, float | None, float, str, bool]] = [
        (
            f"trustgate >= {TARGET_DOCS_PER_S:,.0f} docs/s",
            tg.docs_per_s if tg.samples else None,
            TARGET_DOCS_PER_S,
            f"{tg.docs_per_s:,.0f} docs/s" if tg.samples else "-",
            True,
        ),
        (
            f">= {TARGET_VS_CHECK_JSONSCHEMA:.0f}x check-jsonschema",
            ratios.get("check-jsonschema", {}).get("speedup"),
            TARGET_VS_CHECK_JSONSCHEMA,
            f"{ratios['check-jsonschema']['speedup']:.1f}x" if "check-jsonschema" in ratios else "-",
            True,
        ),
        (
            f">= {TARGET_VS_CHECKOV:.0f}x checkov",
            ratios.get("checkov", {}).get("speedup"),
            TARGET_VS_CHECKOV,
            f"{ratios['checkov']['speedup']:.1f}x" if "checkov" in ratios else "-",
            True,
        ),
        (
            f"<= {over_floor_target:.2f}x the floor's time",
            floor_ratio,
            over_floor_target,
            f"{floor_ratio:.2f}x" if floor_ratio is not None else "-",
            False,
        ),
        (
            f"one file <= {TARGET_ONE_FILE_S:.2f} s",
            one_file.best if one_file is not None else None,
            TARGET_ONE_FILE_S,
            f"{one_file.best:.3f} s" if one_file is not None else "-",
            False,
        ),
        (
            f"--version <= {TARGET_VERSION_S:.2f} s",
            version.best if version is not None else None,
            TARGET_VERSION_S,
            f"{version.best:.3f} s" if version is not None else "-",
            False,
        ),
        (
            f"--jobs {os.cpu_count()} >= {TARGET_JOBS_SPEEDUP:.1f}x --jobs 1{jobs_note}",
            jobs_speedup,
            TARGET_JOBS_SPEEDUP,
            f"{jobs_speedup:.2f}x" if jobs_speedup is not None else "-",
            True,
        ),
    ]
    print("targets:")
    verdicts = []
    width = max(len(t[0]) for t in targets)
    for label, value, target, shown, higher in targets:
        v = verdict(value, target, higher)
        verdicts.append(v)
        print(f"  {label:<{width}}  {shown:>14}  {v}")

    if args.json:
        payload = {
            "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
            "kubernetes_version": K8S_VERSION,
            "runs": args.runs,
            "corpus": {
                "files": corpus.files,
                "documents": corpus.documents,
                "bytes": corpus.bytes,
                "seed": args.seed,
                "kinds": {k: len(v) for k, v in corpus.by_kind.items()},
                "injected": dict(corpus.injected),
            },
            "installs": [asdict(i) | {"venv": str(i.venv)} for i in installs],
            "tools": [
                {
                    "tool": r.tool,
                    "checks": r.checks,
                    "documents": r.documents,
                    "ok": r.ok,
                    "note": r.note.strip(),
                    "wall_s": r.samples,
                    "best_s": r.best if r.samples else None,
                    "median_s": r.median if r.samples else None,
                    "docs_per_s": r.docs_per_s if r.samples else None,
                    "peak_rss_mib": r.rss_mib if r.samples else None,
                    "cpu_s": r.cpu_samples,
                    "details": r.extra,
                }
                for r in results
            ],
            "ratios": ratios,
            "trustgate_over_floor": floor_ratio,
            "targets": [
                {"target": t[0], "value": t[1], "verdict": v} for t, v in zip(targets, verdicts, strict=True)
            ],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")

    if not all(r.ok for r in results):
        print("\nbench: at least one tool failed; see above", file=sys.stderr)
        return 1
    if args.fail_on_miss and "MISS" in verdicts:
        return 1
    return 0


def _sub(work: Path, name: str) -> Path:
    d = work / name
    d.mkdir(exist_ok=True)
    return d


if __name__ == "__main__":
    sys.exit(main())
