"""Time (and cross-check) the bundled policy library as trustgate runs it.

trustgate evaluates every document against all bundled packages in one
regorus Engine, through one generated aggregate rule (see
trustgate/policy/rego.py). This script builds the same engine from the
non-test `.rego` files under a policy directory and times that rule, per
document kind, as `set_input(doc)` + `eval_rule_as_json(...)`: the mean and
median of -n evaluations after a warm-up, best of --rounds rounds (a shared
CPU makes single runs noisy).

    .venv/bin/python bench/policies.py                    # timing table
    .venv/bin/python bench/policies.py -n 5000 --rounds 5
    .venv/bin/python bench/policies.py --floor            # + empty/one-rule engines
    .venv/bin/python bench/policies.py --registries       # with allowed_registries
    .venv/bin/python bench/policies.py --policies DIR     # another copy, e.g. older
    .venv/bin/python bench/policies.py --snapshot f.json  # write findings
    .venv/bin/python bench/policies.py --check f.json     # compare with them
    .venv/bin/python bench/policies.py --compare OLD_DIR  # OLD_DIR vs --policies

--snapshot/--check cover the benchmark documents and the odd ones below
(wrong types, missing fields, string annotations, look-alike kinds), with
and without allowed_registries. --compare evaluates those plus --fuzz N
generated and N mutated documents under four allowed_registries settings,
and prints every difference. Findings are compared as sets of canonical
JSON (key and set order do not matter; everything else does); an error is
a result too. Standard library, regorus and PyYAML only.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import regorus
import yaml

# The rule trustgate generates (trustgate/policy/rego.py), on one line as there.
AGGREGATE = (
    "package trustgate_internal_aggregate\n"
    'findings := {"trustgate.pss.baseline": {"deny": data.trustgate.pss.baseline.deny}, '
    '"trustgate.pss.restricted": {"deny": data.trustgate.pss.restricted.deny}, '
    '"trustgate.supplychain": {"deny": data.trustgate.supplychain.deny, '
    '"warn": data.trustgate.supplychain.warn}}\n'
)
RULE = "data.trustgate_internal_aggregate.findings"
REGISTRIES = {"trustgate": {"allowed_registries": ["registry.example.com/", "ghcr.io/acme/", 5]}}
# More data sets for --compare: Docker Hub prefixes, and a value that is not a list.
DATA_SETS = {
    "": None,
    "registries/": REGISTRIES,
    "hub-registries/": {
        "trustgate": {"allowed_registries": ["docker.io/library/", "docker.io/acme/", "localhost", None]}
    },
    "object-registries/": {"trustgate": {"allowed_registries": {"a": "registry.example.com/"}}},
}

# ---------------------------------------------------------------------------
# Benchmark documents.

BENCH_YAML = {
    "deployment-compliant": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-api
  namespace: shop
  labels: {app.kubernetes.io/name: shop-api, app.kubernetes.io/part-of: shop, team: payments}
  annotations: {argocd.argoproj.io/sync-wave: "2"}
spec:
  replicas: 3
  revisionHistoryLimit: 5
  selector:
    matchLabels: {app.kubernetes.io/name: shop-api}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: shop-api, team: payments}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9090"}
    spec:
      serviceAccountName: shop-api
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: api
          image: registry.example.com/shop/api:1.14.2@DIGEST1
          imagePullPolicy: IfNotPresent
          args: ["--listen=:8080", "--metrics=:9090"]
          ports:
            - {name: http, containerPort: 8080, protocol: TCP}
            - {name: metrics, containerPort: 9090, protocol: TCP}
          env:
            - {name: LOG_LEVEL, value: info}
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: shop-db, key: password}}
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: 500m, memory: 256Mi}
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            initialDelaySeconds: 10
            periodSeconds: 10
          readinessProbe:
            httpGet: {path: /ready, port: http}
            periodSeconds: 5
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities: {drop: [ALL]}
            seccompProfile: {type: RuntimeDefault}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
            - {name: config, mountPath: /etc/shop, readOnly: true}
      volumes:
        - {name: tmp, emptyDir: {}}
        - name: config
          configMap: {name: shop-api}
""",
    "deployment-violating": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: legacy
  labels: {app: legacy}
spec:
  replicas: 1
  selector:
    matchLabels: {app: legacy}
  template:
    metadata:
      labels: {app: legacy}
    spec:
      hostNetwork: true
      containers:
        - name: legacy
          image: nginx:latest
          ports:
            - {containerPort: 80}
          securityContext:
            privileged: true
""",
    "cronjob-init": """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly-report
  namespace: reports
spec:
  schedule: "0 3 * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 2
      template:
        metadata:
          labels: {app: nightly-report}
        spec:
          restartPolicy: OnFailure
          securityContext:
            runAsNonRoot: true
            seccompProfile: {type: RuntimeDefault}
          initContainers:
            - name: fetch
              image: ghcr.io/acme/fetcher:2.1.0
              args: ["--out=/work/input"]
              resources:
                limits: {cpu: 200m, memory: 64Mi}
              securityContext:
                allowPrivilegeEscalation: false
                capabilities: {drop: [ALL]}
              volumeMounts:
                - {name: work, mountPath: /work}
          containers:
            - name: report
              image: ghcr.io/acme/report:3.4.1
              resources:
                requests: {cpu: 500m, memory: 512Mi}
                limits: {cpu: "1", memory: 1Gi}
              securityContext:
                allowPrivilegeEscalation: false
                capabilities: {drop: [ALL]}
              volumeMounts:
                - {name: work, mountPath: /work}
          volumes:
            - {name: work, emptyDir: {}}
""",
    "pod-3-containers": """
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  securityContext:
    runAsNonRoot: true
  containers:
    - name: web
      image: docker.io/library/nginx:1.27
      ports:
        - {containerPort: 8080}
      resources:
        limits: {cpu: 250m, memory: 128Mi}
      livenessProbe:
        tcpSocket: {port: 8080}
      readinessProbe:
        httpGet: {path: /, port: 8080}
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
        seccompProfile: {type: RuntimeDefault}
    - name: log-shipper
      image: fluent/fluent-bit:3.0
      resources:
        limits: {memory: 64Mi}
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
    - name: metrics
      image: quay.io/prometheus/nginx-exporter@DIGEST0
      ports:
        - {containerPort: 9113}
      securityContext:
        runAsUser: 0
""",
    "pod-image-volumes": """
apiVersion: v1
kind: Pod
metadata:
  name: model-server
  labels: {app: model-server}
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: server
      image: ghcr.io/acme/model-server:1.2@DIGEST1
      resources:
        limits: {cpu: "2", memory: 4Gi}
      livenessProbe:
        httpGet: {path: /healthz, port: 8080}
      readinessProbe:
        httpGet: {path: /ready, port: 8080}
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
      volumeMounts:
        - {name: model, mountPath: /models}
        - {name: tools, mountPath: /tools}
  volumes:
    - {name: tmp, emptyDir: {}}
    - name: model
      image: {reference: "ghcr.io/acme/models/llm:7b@DIGEST1", pullPolicy: IfNotPresent}
    - name: tools
      image: {reference: "quay.io/tools/debug:latest", pullPolicy: Always}
""",
    "service": """
apiVersion: v1
kind: Service
metadata:
  name: shop-api
  namespace: shop
  labels: {app.kubernetes.io/name: shop-api}
spec:
  type: ClusterIP
  selector: {app.kubernetes.io/name: shop-api}
  ports:
    - {name: http, port: 80, targetPort: http, protocol: TCP}
    - {name: metrics, port: 9090, targetPort: metrics, protocol: TCP}
""",
    "configmap": """
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-api
  namespace: shop
data:
  LOG_LEVEL: info
  FEATURE_FLAGS: "checkout-v2,search-v3"
  config.yaml: |
    server:
      port: 8080
    db:
      host: shop-db.shop.svc
      pool: 20
""",
    "ingress": """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop-api
  namespace: shop
  annotations:
    cert-manager.io/cluster-issuer: letsencrypt
    nginx.ingress.kubernetes.io/proxy-body-size: 8m
spec:
  ingressClassName: nginx
  tls:
    - hosts: [shop.example.com]
      secretName: shop-tls
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: /api
            pathType: Prefix
            backend:
              service: {name: shop-api, port: {name: http}}
""",
}

# Documents that are odd on purpose: wrong types, missing fields, string
# annotations, look-alike kinds. They are compared, not timed.
_C = {"name": "c", "image": "app:1"}
ODD_DOCS: dict[str, Any] = {
    "not-an-object": ["kind", "Pod"],
    "null": None,
    "string": "Pod",
    "empty": {},
    "kind-list": {"kind": ["Pod"], "spec": {"containers": [_C]}},
    "kind-int": {"kind": 5, "spec": {"containers": [_C]}},
    "apiversion-int": {"apiVersion": 1, "kind": "Pod", "spec": {"containers": [_C]}},
    "apiversion-3-parts": {"apiVersion": "a/b/c", "kind": "Pod", "spec": {"containers": [_C]}},
    "crd-deployment": {
        "apiVersion": "example.com/v1",
        "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [_C]}}},
    },
    "no-apiversion": {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [_C]}}}},
    "spec-string": {"kind": "Deployment", "spec": "x"},
    "template-spec-list": {"kind": "Deployment", "spec": {"template": {"spec": []}}},
    "metadata-string": {
        "kind": "Deployment",
        "spec": {"template": {"metadata": "x", "spec": {"containers": [_C]}}},
    },
    "annotations-string": {
        "kind": "Deployment",
        "spec": {
            "template": {
                "metadata": {"annotations": "container.apparmor.security.beta.kubernetes.io/c: unconfined"},
                "spec": {"containers": [_C]},
            }
        },
    },
    "annotations-odd-values": {
        "kind": "Pod",
        "metadata": {
            "annotations": {
                "container.apparmor.security.beta.kubernetes.io/c": 5,
                "container.apparmor.security.beta.kubernetes.io/ghost": "unconfined",
                "container.apparmor.security.beta.kubernetes.io/": "unconfined",
                "container.apparmor.security.beta.kubernetes.io/ok": "localhost/x",
            }
        },
        "spec": {"containers": [_C, {"name": "ok", "image": "x:1"}]},
    },
    "annotation-keys-odd": {
        "kind": "Pod",
        "metadata": {
            "annotations": {
                5: "unconfined",
                None: "unconfined",
                True: "unconfined",
                (1, 2): "unconfined",
                1.5: "x",
                "container.apparmor.security.beta.kubernetes.io": "unconfined",
                "container.apparmor.security.beta.kubernetes.io0": "unconfined",
                "container.apparmor.security.beta.kubernetes.io/c": "unconfined",
                "container.apparmor.security.beta.kubernetes.io/c/x": "unconfined",
                "container.apparmor.security.beta.kubernetes.io/\u00e9": "unconfined",
                "container.apparmor.security.beta.kubernetes.iz/c": "unconfined",
                "Container.apparmor.security.beta.kubernetes.io/c": "unconfined",
            }
        },
        "spec": {"containers": [_C]},
    },
    "containers-object": {"kind": "Pod", "spec": {"containers": {"name": "app"}}},
    "volumes-odd": {
        "kind": "Pod",
        "spec": {
            "containers": [_C],
            "volumes": [
                5,
                None,
                "x",
                {"image": "app:1"},
                {"name": 3, "image": {"reference": ["x"]}},
                {"name": "e", "image": {}},
                {"name": "u", "image": {"reference": "INTERNAL/app:1"}},
                {"name": "v", "image": {"reference": "${IMAGE}"}},
            ],
        },
    },
    "volumes-object": {"kind": "Pod", "spec": {"containers": [_C], "volumes": {"image": {"reference": "x"}}}},
    "upper-case-host": {"kind": "Pod", "spec": {"containers": [{"name": "c", "image": "INTERNAL/app:1"}]}},
    "containers-junk": {"kind": "Pod", "spec": {"containers": [5, None, "x", [], {}]}},
    "container-odd-fields": {
        "kind": "Pod",
        "spec": {
            "containers": [
                {
                    "name": 3,
                    "image": ["x"],
                    "securityContext": "x",
                    "ports": {"hostPort": 1},
                    "resources": {"limits": "x"},
                    "livenessProbe": None,
                    "readinessProbe": "x",
                    "lifecycle": [],
                    "startupProbe": {"httpGet": "x"},
                }
            ]
        },
    },
    "securitycontext-odd": {
        "kind": "Pod",
        "spec": {
            "securityContext": {
                "sysctls": "x",
                "seLinuxOptions": [],
                "seccompProfile": "x",
                "appArmorProfile": 5,
                "windowsOptions": "x",
                "runAsNonRoot": "false",
                "runAsUser": "0",
            },
            "containers": [
                {
                    "name": "c",
                    "image": "a",
                    "securityContext": {
                        "capabilities": {"add": "SYS_ADMIN", "drop": "ALL"},
                        "seLinuxOptions": {"type": 5, "user": None, "role": ""},
                        "seccompProfile": {"type": 5},
                        "appArmorProfile": {"type": None},
                        "procMount": 0,
                        "allowPrivilegeEscalation": "false",
                        "runAsNonRoot": 0,
                        "runAsUser": 0.0,
                        "privileged": "true",
                    },
                }
            ],
        },
    },
    "everything-bad": {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
        "spec": {
            "hostNetwork": True,
            "hostPID": True,
            "hostIPC": True,
            "hostUsers": True,
            "securityContext": {
                "windowsOptions": {"hostProcess": True},
                "appArmorProfile": {"type": "Unconfined"},
                "seLinuxOptions": {"type": "spc_t", "user": "u", "role": "r", "level": "s0"},
                "seccompProfile": {"type": "Unconfined"},
                "runAsNonRoot": False,
                "runAsUser": 0,
                "sysctls": [{"name": "kernel.msgmax"}, {"name": "net.ipv4.tcp_syncookies"}, "x", {"name": 5}],
            },
            "volumes": [
                {"name": "h", "hostPath": {"path": "/"}},
                {"name": "n", "nfs": {}},
                {"name": "e"},
                {"name": "m", "nfs": {}, "iscsi": {}},
                {"name": "ok", "secret": {}},
                5,
            ],
            "initContainers": [
                {
                    "name": "i",
                    "image": "localhost:5000/x",
                    "securityContext": {
                        "procMount": "Unmasked",
                        "capabilities": {"add": ["SYS_ADMIN", "CHOWN", "NET_BIND_SERVICE", 7]},
                    },
                }
            ],
            "containers": [
                {
                    "name": "c",
                    "image": "index.docker.io/acme/app:latest",
                    "ports": [{"hostPort": 80}, {"hostPort": 0}, {"hostPort": "x"}, 5],
                    "livenessProbe": {"httpGet": {"host": "evil"}, "tcpSocket": {"host": 5}},
                    "lifecycle": {
                        "postStart": {"httpGet": {"host": "h"}},
                        "preStop": {"tcpSocket": {"host": ""}},
                    },
                    "resources": {"limits": {"memory": "", "cpu": None}},
                    "securityContext": {
                        "windowsOptions": {"hostProcess": True},
                        "privileged": True,
                        "runAsNonRoot": False,
                        "runAsUser": 0,
                        "appArmorProfile": {},
                        "seccompProfile": None,
                        "allowPrivilegeEscalation": True,
                    },
                }
            ],
            "ephemeralContainers": [
                {
                    "name": "d",
                    "image": "busybox",
                    "securityContext": {"seLinuxOptions": {"type": "container_t"}},
                }
            ],
        },
    },
    "userns-windows": {
        "kind": "Pod",
        "spec": {
            "hostUsers": False,
            "os": {"name": "windows"},
            "securityContext": {"runAsNonRoot": False, "runAsUser": 0},
            "containers": [
                {
                    "name": "c",
                    "image": "ghcr.io/acme/x:1",
                    "securityContext": {"procMount": "Unmasked", "runAsUser": 0},
                }
            ],
        },
    },
    "podtemplate": {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "template": {
            "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
            "spec": {"containers": [_C]},
        },
    },
    "job": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": [_C]}}}},
    "statefulset-extensions": {
        "apiVersion": "extensions/v1beta1",
        "kind": "StatefulSet",
        "spec": {"template": {"spec": {"containers": [_C]}}},
    },
    "rc": {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "spec": {"template": {"spec": {"containers": [_C]}}},
    },
    "daemonset-legacy": {
        "apiVersion": "extensions/v1beta1",
        "kind": "DaemonSet",
        "spec": {"template": {"spec": {"containers": [_C]}}},
    },
    "list": {"apiVersion": "v1", "kind": "List", "items": [{"kind": "Pod", "spec": {"containers": [_C]}}]},
    "duplicate-names": {
        "kind": "Pod",
        "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "bad"}},
        "spec": {
            "containers": [_C, {"name": "c", "image": "other:2"}],
            "initContainers": [{"name": "c", "image": "x"}],
        },
    },
}

# ---------------------------------------------------------------------------
# Generated documents for --compare: random pod specs touching every field
# the policies read, with values drawn from good, bad and wrongly typed ones.

_JUNK = [None, 5, 0, -1, 1.5, "", "x", True, False, [], {}, [1, "a"], {"a": 1}]


def _pick(rng: random.Random, good: list[Any], p_junk: float = 0.15) -> Any:
    # deepcopy: documents must not share (and later mutate) pool values
    return copy.deepcopy(rng.choice(_JUNK) if rng.random() < p_junk else rng.choice(good))


def _maybe(rng: random.Random, obj: dict[str, Any], key: str, good: list[Any], p: float = 0.5) -> None:
    if rng.random() < p:
        obj[key] = _pick(rng, good)


def _security_context(rng: random.Random, pod_level: bool) -> Any:
    if rng.random() < 0.05:
        return copy.deepcopy(rng.choice(_JUNK))
    sc: dict[str, Any] = {}
    _maybe(
        rng,
        sc,
        "windowsOptions",
        [{"hostProcess": True}, {"hostProcess": False}, {"hostProcess": "true"}],
        0.1,
    )
    _maybe(
        rng,
        sc,
        "appArmorProfile",
        [{"type": "RuntimeDefault"}, {"type": "Localhost"}, {"type": "Unconfined"}, {}, {"type": 3}, None],
        0.2,
    )
    _maybe(
        rng,
        sc,
        "seLinuxOptions",
        [
            {"type": "container_t"},
            {"type": "spc_t"},
            {"user": "u"},
            {"role": ""},
            {"level": "s0"},
            {"type": "", "user": None},
        ],
        0.2,
    )
    _maybe(
        rng,
        sc,
        "seccompProfile",
        [{"type": "RuntimeDefault"}, {"type": "Localhost"}, {"type": "Unconfined"}, None, {}, {"type": None}],
        0.5,
    )
    _maybe(rng, sc, "runAsNonRoot", [True, False, None, "true"], 0.5)
    _maybe(rng, sc, "runAsUser", [0, 1000, None, "0", 0.0], 0.3)
    if pod_level:
        _maybe(
            rng,
            sc,
            "sysctls",
            [[{"name": "kernel.shm_rmid_forced"}], [{"name": "kernel.msgmax"}, {"name": 5}, "x"], [], [{}]],
            0.15,
        )
    else:
        _maybe(rng, sc, "privileged", [True, False, None], 0.2)
        _maybe(rng, sc, "allowPrivilegeEscalation", [False, True, None, "false"], 0.6)
        _maybe(rng, sc, "procMount", ["Default", "Unmasked", None, 0], 0.15)
        _maybe(
            rng,
            sc,
            "capabilities",
            [
                {"drop": ["ALL"]},
                {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                {"add": ["SYS_ADMIN", "CHOWN"]},
                {"drop": "ALL"},
                {"add": "SYS_ADMIN"},
                {"drop": ["all"], "add": [5, None, "KILL"]},
                {},
            ],
            0.6,
        )
    return sc


def _handler(rng: random.Random) -> Any:
    return _pick(
        rng,
        [
            {"httpGet": {"path": "/", "port": 80}},
            {"httpGet": {"host": "evil.example.com"}},
            {"tcpSocket": {"host": ""}},
            {"tcpSocket": {"host": 5}},
            {"exec": {"command": ["true"]}},
            {"httpGet": {"host": None}},
        ],
        0.1,
    )


_IMAGES = [
    "nginx",
    "nginx:latest",
    "nginx:1.27",
    "library/nginx",
    "acme/app:1",
    "registry.example.com/a/b:2",
    "registry.example.com:5000/app",
    "localhost/app:1",
    "localhost:5000/app",
    "index.docker.io/x",
    "index.docker.io/library/nginx:1",
    "ghcr.io/acme/x@sha256:" + "a" * 64,
    "ghcr.io/acme-evil/x:1",
    "app:latest@sha256:" + "b" * 64,
    "app@sha256:short",
    "docker.io/nginx",
    "",
    "a:b:c",
    "x/y/z:latest",
]


def _container(rng: random.Random, i: int) -> Any:
    if rng.random() < 0.04:
        return copy.deepcopy(rng.choice(_JUNK))
    c: dict[str, Any] = {}
    _maybe(rng, c, "name", [f"c{i}", "app", "c0", ""], 0.95)
    _maybe(rng, c, "image", _IMAGES, 0.95)
    if rng.random() < 0.8:
        c["securityContext"] = _security_context(rng, False)
    _maybe(
        rng,
        c,
        "ports",
        [
            [{"containerPort": 80}],
            [{"containerPort": 80, "hostPort": 8080}, {"hostPort": 0}],
            [{"hostPort": None}, 5],
            "x",
        ],
        0.3,
    )
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if rng.random() < 0.5:
            c[probe] = _handler(rng)
    if rng.random() < 0.15:
        c["lifecycle"] = _pick(
            rng, [{"postStart": _handler(rng)}, {"preStop": _handler(rng), "postStart": _handler(rng)}], 0.1
        )
    _maybe(
        rng,
        c,
        "resources",
        [
            {"limits": {"cpu": "1", "memory": "1Gi"}},
            {"limits": {"memory": ""}},
            {"limits": {"cpu": None}},
            {"requests": {"cpu": "1"}},
            {"limits": "x"},
            {},
        ],
        0.7,
    )
    return c


def _pod_spec(rng: random.Random) -> Any:
    if rng.random() < 0.03:
        return copy.deepcopy(rng.choice(_JUNK))
    spec: dict[str, Any] = {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        _maybe(rng, spec, field, [True, False, "true"], 0.1)
    _maybe(rng, spec, "hostUsers", [False, True, "false"], 0.15)
    _maybe(rng, spec, "os", [{"name": "windows"}, {"name": "linux"}, "windows"], 0.1)
    if rng.random() < 0.7:
        spec["securityContext"] = _security_context(rng, True)
    _maybe(
        rng,
        spec,
        "volumes",
        [
            [{"name": "t", "emptyDir": {}}],
            [{"name": "h", "hostPath": {"path": "/"}}],
            [{"name": "n", "nfs": {}}, {"name": "x"}],
            [{"name": "m", "nfs": {}, "iscsi": {}}, {"name": 5, "secret": None}],
            [5, "x", {"hostPath": None, "configMap": {}}],
            "x",
        ],
        0.4,
    )
    for ctype, p in (("containers", 0.97), ("initContainers", 0.25), ("ephemeralContainers", 0.1)):
        if rng.random() < p:
            spec[ctype] = (
                [_container(rng, i) for i in range(rng.choice([0, 1, 1, 1, 2, 3]))]
                if rng.random() > 0.03
                else copy.deepcopy(rng.choice(_JUNK))
            )
    return spec


_KINDS = [
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("extensions/v1beta1", "ReplicaSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("v1", "PodTemplate"),
    ("v1", "ReplicationController"),
    (None, "Deployment"),
    ("example.com/v1", "Deployment"),
    ("v1", "Service"),
    ("apps/v1", "Pod"),
    ("batch/v1", "StatefulSet"),
]


def generated_doc(rng: random.Random) -> Any:
    api_version, kind = rng.choice(_KINDS)
    doc: dict[str, Any] = {"kind": kind}
    if api_version is not None:
        doc["apiVersion"] = api_version
    spec = _pod_spec(rng)
    meta: Any = {"labels": {"app": "x"}}
    if rng.random() < 0.3:
        names = ["c0", "c1", "app", "ghost", ""]
        meta["annotations"] = _pick(
            rng,
            [
                {
                    f"container.apparmor.security.beta.kubernetes.io/{rng.choice(names)}": rng.choice(
                        ["runtime/default", "localhost/p", "", "unconfined", 5, None]
                    )
                    for _ in range(rng.randint(1, 3))
                },
                {"other": "x"},
            ],
            0.2,
        )
    template = {"metadata": meta, "spec": spec}
    if kind == "Pod":
        doc.update(metadata=meta, spec=spec)
    elif kind == "PodTemplate":
        doc["template"] = template
    elif kind == "CronJob":
        doc["spec"] = {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}
    else:
        doc["spec"] = {"template": template}
    return doc


def mutated_doc(rng: random.Random, base: Any) -> Any:
    """base with a few random subtrees replaced by junk or deleted."""
    doc = copy.deepcopy(base)
    for _ in range(rng.randint(1, 4)):
        parent: Any = None
        key: Any = None
        node = doc
        while isinstance(node, (dict, list)) and node and rng.random() < 0.85:
            parent = node
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            node = node[key]
        if parent is None:
            continue
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[key]
        else:
            parent[key] = copy.deepcopy(rng.choice(_JUNK))
    return doc


# ---------------------------------------------------------------------------
# Engines and evaluation.


def policy_files(policy_dir: Path) -> list[Path]:
    return sorted(p for p in policy_dir.rglob("*.rego") if not p.name.endswith("_test.rego"))


def make_engine(
    policy_dir: Path | None, data: dict[str, Any] | None = None, aggregate: str = AGGREGATE
) -> Any:
    engine = regorus.Engine()
    if policy_dir is not None:
        for f in policy_files(policy_dir):
            engine.add_policy(str(f), f.read_text("utf-8"))
    engine.add_policy("aggregate.rego", aggregate)
    if data:
        engine.add_data_json(json.dumps(data))
    return engine


def findings(engine: Any, doc: Any) -> Any:
    """The aggregate's value with every set of findings sorted, or the error."""
    try:
        engine.set_input(doc)
        value = json.loads(engine.eval_rule_as_json(RULE))
    except Exception as e:  # an error is a result to compare
        return {"error": str(e).split("Stack backtrace:", 1)[0].strip().splitlines()[-1:]}
    if isinstance(value, dict):
        for rules in value.values():
            for name, items in rules.items() if isinstance(rules, dict) else ():
                if isinstance(items, list):
                    rules[name] = sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
    return value


def time_doc(engine: Any, doc: Any, iterations: int, warmup: int) -> tuple[float, float]:
    """Mean and median µs of set_input + eval_rule_as_json."""
    set_input, evaluate = engine.set_input, engine.eval_rule_as_json
    for _ in range(warmup):
        set_input(doc)
        evaluate(RULE)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        t0 = clock()
        set_input(doc)
        evaluate(RULE)
        samples.append(clock() - t0)
    return statistics.fmean(samples) / 1000, statistics.median(samples) / 1000


def time_set_input(engine: Any, doc: Any, iterations: int) -> float:
    set_input = engine.set_input
    t0 = time.perf_counter_ns()
    for _ in range(iterations):
        set_input(doc)
    return (time.perf_counter_ns() - t0) / iterations / 1000


# Digests for the YAML above (kept out of it for the line length).
DIGESTS = {
    "@DIGEST1": "@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "@DIGEST0": "@sha256:" + "0" * 64,
}


def bench_docs() -> dict[str, Any]:
    docs = {}
    for name, text in BENCH_YAML.items():
        for placeholder, digest in DIGESTS.items():
            text = text.replace(placeholder, digest)
        docs[name] = yaml.safe_load(text)
    return docs


def all_named_docs() -> dict[str, Any]:
    docs = dict(bench_docs())
    docs.update({f"odd/{k}": v for k, v in ODD_DOCS.items()})
    return docs


def snapshot(policy_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, data in (("", None), ("registries/", REGISTRIES)):
        engine = make_engine(policy_dir, data)
        for name, doc in all_named_docs().items():
            out[label + name] = findings(engine, doc)
    return out


def compare(old_dir: Path, new_dir: Path, fuzz: int, seed: int) -> int:
    """Findings of old_dir vs new_dir; returns the number of differences."""
    rng = random.Random(seed)
    docs = list(all_named_docs().items())
    bases = [d for _, d in docs]
    for i in range(fuzz):
        docs.append((f"gen/{i}", generated_doc(rng)))
        docs.append((f"mut/{i}", mutated_doc(rng, rng.choice([*bases, generated_doc(rng)]))))
    diffs = errors = nonempty = 0
    per_rule: dict[str, int] = {}
    for label, data in DATA_SETS.items():
        old, new = make_engine(old_dir, data), make_engine(new_dir, data)
        for name, doc in docs:
            a, b = findings(old, doc), findings(new, doc)
            errors += "error" in a if isinstance(a, dict) else 0
            if isinstance(a, dict) and "error" not in a:
                nonempty += any(v for r in a.values() for v in r.values())
                for r in a.values():
                    for items in r.values():
                        for f in items if isinstance(items, list) else []:
                            per_rule[f.get("rule")] = per_rule.get(f.get("rule"), 0) + 1
            if a != b:
                diffs += 1
                if diffs <= 5:
                    print(f"DIFF {label}{name}\n  doc: {json.dumps(doc)[:2000]}")
                    print(f"  old: {json.dumps(a)[:3000]}\n  new: {json.dumps(b)[:3000]}")
    print(
        f"compared {len(DATA_SETS) * len(docs)} evaluations "
        f"({len(docs)} documents x {len(DATA_SETS)} data sets): "
        f"{diffs} differ; {nonempty} with findings, {errors} errors in the old policies"
    )
    print("findings per rule (old):", ", ".join(f"{k} {v}" for k, v in sorted(per_rule.items())))
    return diffs


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent.parent / "policies"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--policies", type=Path, default=here, help="policy directory (default: the bundled policies/)"
    )
    ap.add_argument(
        "-n", "--iterations", type=int, default=2000, help="timed evaluations per document and round"
    )
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds; each document keeps its best")
    ap.add_argument(
        "--registries", action="store_true", help="time with data.trustgate.allowed_registries set"
    )
    ap.add_argument("--floor", action="store_true", help="also time an empty-policy and a one-rule engine")
    ap.add_argument("--snapshot", type=Path, help="write the findings of every benchmark and odd document")
    ap.add_argument(
        "--check", type=Path, help="compare findings with a --snapshot file; exit 1 on a difference"
    )
    ap.add_argument(
        "--compare", type=Path, metavar="OLD_DIR", help="compare findings of OLD_DIR and --policies"
    )
    ap.add_argument("--fuzz", type=int, default=3000, help="generated documents for --compare")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write the timings as JSON")
    args = ap.parse_args(argv)

    if args.snapshot:
        args.snapshot.write_text(json.dumps(snapshot(args.policies), indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.snapshot}")
        return 0
    if args.check:
        want, got = json.loads(args.check.read_text()), snapshot(args.policies)
        bad = sorted(k for k in want if want[k] != got.get(k))
        for k in bad:
            print(f"DIFF {k}\n  want: {json.dumps(want[k])}\n  got:  {json.dumps(got.get(k))}")
        new = sorted(got.keys() - want.keys())
        print(
            f"{len(want) - len(bad)}/{len(want)} snapshot documents give the snapshot's findings"
            + (f"; {len(new)} documents not in the snapshot: {', '.join(new)}" if new else "")
        )
        return 1 if bad else 0
    if args.compare:
        return 1 if compare(args.compare, args.policies, args.fuzz, args.seed) else 0

    engine = make_engine(args.policies, REGISTRIES if args.registries else None)
    docs = bench_docs()
    cases = [(name, engine, doc) for name, doc in docs.items()]
    if args.floor:
        # What any evaluation costs: an engine holding only a constant rule,
        # and one whose rule looks at input once.
        floors = {
            "empty engine, constant rule": "package trustgate_internal_aggregate\nfindings := {}\n",
            "one-rule package, kind guard": "package trustgate_internal_aggregate\nimport rego.v1\n"
            'findings := {"x": deny}\ndeny contains 1 if input.kind == "Pod"\n',
        }
        for label, agg in floors.items():
            e = make_engine(None, None, agg)
            cases += [(f"[{label}] {name}", e, docs[name]) for name in ("deployment-compliant", "service")]
    # Rounds go over every document in turn and each document keeps its
    # fastest round: a noisy neighbour (shared CPU) then slows down one round
    # of every document instead of all the rounds of one.
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for name, e, doc in cases:
            mean, median = time_doc(e, doc, args.iterations, args.warmup)
            if name not in best or mean < best[name][0]:
                best[name] = (mean, median)
    rows: list[dict[str, Any]] = []
    for name, e, doc in cases:
        value = findings(e, doc)
        count = (
            sum(len(v) for r in value.values() if isinstance(r, dict) for v in r.values())
            if isinstance(value, dict)
            else 0
        )
        rows.append(
            {
                "doc": name,
                "mean_us": best[name][0],
                "median_us": best[name][1],
                "set_input_us": time_set_input(e, doc, args.iterations),
                "findings": count,
            }
        )
    print(
        f"{len(policy_files(args.policies))} policy files from {args.policies}; mean and median of "
        f"{args.iterations} evaluations (set_input + eval) after {args.warmup} warm-up, best of "
        f"{args.rounds} rounds{'; allowed_registries set' if args.registries else ''}"
    )
    width = max(len(r["doc"]) for r in rows)
    print(f"{'document':<{width}}  {'mean µs':>9}  {'median µs':>9}  {'set_input µs':>12}  {'findings':>8}")
    for r in rows:
        print(
            f"{r['doc']:<{width}}  {r['mean_us']:9.1f}  {r['median_us']:9.1f}  "
            f"{r['set_input_us']:12.1f}  {r['findings']:8d}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
