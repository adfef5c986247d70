"""The bundled Gatekeeper sets `builtin:pss-baseline` and `builtin:pss-restricted` against the
bundled Rego sets of the same levels: every control, the same kinds, the same findings.

Each Gatekeeper constraint stands for one Rego rule id (the table below). On every manifest of
the case corpus, the Gatekeeper samples and a few hostile ones, the two give the same controls;
the only intended difference is that the constraints leave `kube-system` out.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from trustgate.cli.main import main
from trustgate.config import Config, GatekeeperSettings, KubernetesSettings, PolicySource, builtin_policy_dir
from trustgate.gate import Gate
from trustgate.manifests import loader
from trustgate.model import Document

Write = Callable[[str, str], Path]
ROOT = Path(__file__).parent.parent
GATEKEEPER = builtin_policy_dir() / "gatekeeper"

# constraint name -> the Rego rule id of the same control
CONTROLS = {
    "pss-host-process": "pss-baseline-host-process",
    "pss-host-namespaces": "pss-baseline-host-namespaces",
    "pss-privileged": "pss-baseline-privileged",
    "pss-capabilities": "pss-baseline-capabilities",
    "pss-host-path": "pss-baseline-host-path",
    "pss-host-ports": "pss-baseline-host-ports",
    "pss-host-probes": "pss-baseline-host-probes",
    "pss-apparmor": "pss-baseline-apparmor",
    "pss-selinux": "pss-baseline-selinux",
    "pss-proc-mount": "pss-baseline-proc-mount",
    "pss-baseline-seccomp": "pss-baseline-seccomp",
    "pss-sysctls": "pss-baseline-sysctls",
    "pss-volume-types": "pss-restricted-volume-types",
    "pss-privilege-escalation": "pss-restricted-privilege-escalation",
    "pss-run-as-non-root": "pss-restricted-run-as-non-root",
    "pss-run-as-user": "pss-restricted-run-as-user",
    "pss-seccomp": "pss-restricted-seccomp",
    "pss-drop-all-capabilities": "pss-restricted-capabilities",
    "pss-restricted-proc-mount": "pss-restricted-proc-mount",
}

# Manifests that reach into odd corners: wrong types, nulls, every pod-holding kind.
HOSTILE = """\
apiVersion: v1
kind: Pod
metadata:
  name: odd
  namespace: default
  annotations: {container.apparmor.security.beta.kubernetes.io/c: unconfined}
spec:
  hostUsers: false
  os: {name: windows}
  securityContext: {runAsNonRoot: false, runAsUser: 0, seccompProfile: {}, appArmorProfile: {}, sysctls: [{}]}
  volumes: [{name: a}, {name: b, hostPath: null}, {name: c, emptyDir: {}, nfs: {server: x, path: /}}]
  containers:
    - name: c
      image: x
      ports: [{containerPort: 1, hostPort: null}, {containerPort: 2}]
      securityContext:
        procMount: Unmasked
        runAsNonRoot: "yes"
        capabilities: {add: [CHOWN, NET_BIND_SERVICE], drop: ALL}
        seLinuxOptions: {role: "", user: null, type: container_init_t}
      readinessProbe: {tcpSocket: {host: node, port: 1}}
  ephemeralContainers:
    - name: debug
      image: x
      securityContext: {windowsOptions: {hostProcess: false}, seccompProfile: {type: Unconfined}}
---
apiVersion: v1
kind: PodTemplate
metadata: {name: t, namespace: default}
template:
  metadata: {annotations: {container.apparmor.security.beta.kubernetes.io/app: localhost/x}}
  spec:
    containers:
      - {name: app, image: x, securityContext: {privileged: true, appArmorProfile: {type: Localhost}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: s, namespace: default}
spec:
  template:
    spec:
      securityContext: {seLinuxOptions: {user: u}, sysctls: [{name: net.ipv4.tcp_rmem}]}
      initContainers: [{name: i, image: x, lifecycle: {postStart: {httpGet: {host: h, port: 1}}}}]
      containers: [{name: c, image: x}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: d, namespace: default}
spec:
  template:
    spec:
      containers: "not a list"
      volumes: {not: a list}
---
apiVersion: batch/v1
kind: Job
metadata: {name: j, namespace: default}
spec:
  template:
    spec:
      hostPID: true
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - {name: c, image: x, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: default}
spec: {ports: [{port: 80}]}
"""


def _corpus() -> list[Path]:
    """The cases and samples with an object outside kube-system (which the constraints leave out)."""
    cases = sorted((ROOT / "cases").glob("*/*/manifest.yaml"))
    samples = sorted(GATEKEEPER.glob("pss-*/samples/*.yaml"))
    return [p for p in cases + samples if _documents(p.read_bytes(), str(p))]


def _documents(data: bytes, name: str) -> list[Document]:
    documents, _ = loader.parse_bytes(data, name, Config().limits)
    return [d for d in documents if d.namespace != "kube-system"]


def _controls(config: Config, documents: list[Document], gatekeeper: bool) -> list[set[str]]:
    decision = Gate(config=config).evaluate(documents)
    out = []
    for result in decision.results:
        rules = {f.rule for f in result.findings if f.rule.startswith(("pss-", "K8sPSS"))}
        out.append({CONTROLS[r.partition("/")[2]] for r in rules} if gatekeeper else rules)
    return out


REGO = Config(
    policies=(PolicySource(builtin="pss-baseline"), PolicySource(builtin="pss-restricted")),
    kubernetes=KubernetesSettings(schemas=False),
)
CONSTRAINTS = Config(
    policies=(),
    kubernetes=KubernetesSettings(schemas=False),
    gatekeeper=GatekeeperSettings(paths=(GATEKEEPER / "pss-baseline", GATEKEEPER / "pss-restricted")),
)


def test_every_rego_control_has_a_constraint() -> None:
    rego = set()
    for name in ("pss-baseline/pss_baseline.rego", "pss-restricted/pss_restricted.rego"):
        text = (builtin_policy_dir() / name).read_text()
        rego |= set(re.findall(r'^\t\t"(pss-[a-z-]+)",$', text, re.MULTILINE))
    constraints = {
        line.split(":", 1)[1].strip()
        for path in GATEKEEPER.glob("pss-*/*/constraint.yaml")
        for line in path.read_text().splitlines()
        if line.startswith("  name:")
    }
    assert rego == set(CONTROLS.values())
    assert constraints == set(CONTROLS)


@pytest.mark.parametrize(
    "path", sorted(GATEKEEPER.glob("pss-*/*/constraint.yaml")), ids=lambda p: p.parent.name
)
def test_constraints_match_the_custom_workloads_kept_at_spec_template(path: Path) -> None:
    """The templates read `spec.template.spec` of any kind but Pod, PodTemplate and CronJob: every
    known custom workload kept there is matched, in its own group (a core Service is not)."""
    from trustgate import kinds

    match = yaml.safe_load(path.read_text())["spec"]["match"]["kinds"]
    matched = {(g, k) for entry in match for g in entry["apiGroups"] for k in entry["kinds"]}
    at_template = {
        (w.group, w.kind) for w in kinds.KNOWN_WORKLOADS if w.pod_spec == ("spec", "template", "spec")
    }
    assert at_template and at_template <= matched
    assert ("", "Service") not in matched


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: str(p.relative_to(p.parents[2])))
def test_constraints_agree_with_the_rego_sets(path: Path) -> None:
    documents = _documents(path.read_bytes(), str(path))
    assert _controls(CONSTRAINTS, documents, True) == _controls(REGO, documents, False)


def test_constraints_agree_on_hostile_manifests() -> None:
    documents = _documents(HOSTILE.encode(), "hostile.yaml")
    gatekeeper = _controls(CONSTRAINTS, documents, True)
    assert gatekeeper == _controls(REGO, documents, False)
    assert all(gatekeeper[:3]) and not gatekeeper[-1]


# Under hostNetwork: true the API server sets an unset or 0 hostPort to the containerPort (Pods;
# pod templates before 1.28) and Pod Security admission fails the pod on it: both sets judge the
# port as admission sees it. (hostNetwork, container list, its ports, pss-baseline-host-ports expected)
HOST_NETWORK_PORTS = [
    ("true", "containers", "[{containerPort: 9100}]", True),
    ("true", "containers", "[{containerPort: 9100, hostPort: 0}]", True),
    ("true", "containers", "[{containerPort: 9100, hostPort: null}]", True),
    ("true", "initContainers", "[{containerPort: 53}]", True),
    ("true", "containers", "[{containerPort: 0}, {containerPort: null}, {name: m}, 5]", False),
    ("true", "containers", '"9100"', False),
    ("true", "ephemeralContainers", "[{containerPort: 1}]", False),
    ('"true"', "containers", "[{containerPort: 9100}]", False),
    ("false", "containers", "[{containerPort: 9100}]", False),
]


@pytest.mark.parametrize("kind", ["Pod", "DaemonSet"])
@pytest.mark.parametrize(("host_network", "containers", "ports", "host_port"), HOST_NETWORK_PORTS)
def test_a_container_port_under_host_network_is_a_host_port_in_both_sets(
    kind: str, host_network: str, containers: str, ports: str, host_port: bool
) -> None:
    spec = {
        "hostNetwork": yaml.safe_load(host_network),
        containers: [{"name": "c", "image": "x", "ports": yaml.safe_load(ports)}],
    }
    if kind == "Pod":
        obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": "m"}, "spec": spec}
    else:
        template = {"template": {"spec": spec}}
        obj = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {"name": "x", "namespace": "m"},
            "spec": template,
        }
    documents = _documents(json.dumps(obj).encode(), "host-network.json")
    assert len(documents) == 1
    gatekeeper = _controls(CONSTRAINTS, documents, True)
    assert gatekeeper == _controls(REGO, documents, False)
    assert ("pss-baseline-host-ports" in gatekeeper[0]) is host_port


def test_libs_are_the_same_in_every_template() -> None:
    # Gatekeeper gives each template its own copy of `lib.pss`; the copies must not drift apart.
    libs = {
        path.read_text().split("      libs:\n", 1)[1] for path in GATEKEEPER.glob("pss-*/*/template.yaml")
    }
    assert len(libs) == 1


# -- the command line ------------------------------------------------------------

BAD = """\
apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: default}
spec:
  securityContext:
    seccompProfile: {type: Unconfined}
    sysctls: [{name: kernel.msgmax, value: "65536"}]
    seLinuxOptions: {type: spc_t}
  containers:
    - name: c
      image: nginx
      ports: [{containerPort: 80, hostPort: 80}]
      securityContext:
        procMount: Unmasked
        windowsOptions: {hostProcess: true}
        appArmorProfile: {type: Unconfined}
      livenessProbe: {httpGet: {host: example.com, port: 80}}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc, namespace: default}
spec:
  selector: {app: x}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers: [{name: c, image: nginx, securityContext: {privileged: true}}]
"""

RESTRICTED = """\
apiVersion: v1
kind: Pod
metadata: {name: r, namespace: default}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  volumes:
    - {name: g, gitRepo: {repository: "https://example.com/x.git"}}
    - {name: share, nfs: {server: nfs.example.com, path: /}}
  containers:
    - name: c
      image: nginx
      securityContext:
        runAsUser: 0
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL], add: [CHOWN]}
"""


def _check(path: Path, *sets: str) -> tuple[int, list[list[str]]]:
    args = ["check", str(path), "--no-builtin", "--no-schemas", "--no-cache", "--format", "json"]
    for name in sets:
        args += ["--gatekeeper", f"builtin:{name}"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    report = json.loads(result.stdout)
    return result.exit_code, [sorted(f["rule"] for f in r["findings"]) for r in report["results"]]


def test_check_with_the_baseline_set_denies_every_baseline_control(write: Write) -> None:
    code, rules = _check(write("bad.yaml", BAD), "pss-baseline")
    assert code == 1
    assert rules == [
        [
            "K8sPSSAppArmor/pss-apparmor",
            "K8sPSSBaselineSeccomp/pss-baseline-seccomp",
            "K8sPSSHostPorts/pss-host-ports",
            "K8sPSSHostProbes/pss-host-probes",
            "K8sPSSHostProcess/pss-host-process",
            "K8sPSSProcMount/pss-proc-mount",
            "K8sPSSSELinux/pss-selinux",
            "K8sPSSSysctls/pss-sysctls",
        ],
        ["K8sPSSPrivileged/pss-privileged"],  # a ReplicationController's pods are judged too
    ]


def test_check_with_both_sets_denies_the_restricted_controls(write: Write) -> None:
    code, rules = _check(write("r.yaml", RESTRICTED), "pss-baseline", "pss-restricted")
    assert code == 1
    assert rules == [
        [
            # CHOWN: Baseline allows it, Restricted does not
            "K8sPSSDropAllCapabilities/pss-drop-all-capabilities",
            "K8sPSSRunAsUser/pss-run-as-user",
            "K8sPSSVolumeTypes/pss-volume-types",
            "K8sPSSVolumeTypes/pss-volume-types",
        ]
    ]


def test_policy_test_runs_the_bundled_suites() -> None:
    result = CliRunner().invoke(main, ["policy", "test", str(GATEKEEPER)], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    assert "gator suites: 2 of 2 passed" in result.stdout
    cases = int(result.stdout.split("cases: ", 1)[1].split(" ", 1)[0])
    assert cases >= 90  # every control with allowed and disallowed samples


# -- custom workloads -------------------------------------------------------------


def test_constraints_match_every_known_workload_kept_at_one_path() -> None:
    """KEDA's ScaledJob (spec.jobTargetRef.template) and Knative's Revision (spec) included: the
    templates read their pod spec there, in a real Gatekeeper too."""
    from trustgate import kinds

    one_path = {(w.group, w.kind) for w in kinds.KNOWN_WORKLOADS if not w.anywhere}
    for path in GATEKEEPER.glob("pss-*/*/constraint.yaml"):
        match = yaml.safe_load(path.read_text())["spec"]["match"]["kinds"]
        matched = {(g, k) for entry in match for g in entry["apiGroups"] for k in entry["kinds"]}
        assert one_path - matched == set(), path


def test_every_template_asks_for_the_pod_templates_of_custom_workloads() -> None:
    for path in GATEKEEPER.glob("pss-*/*/template.yaml"):
        annotations = yaml.safe_load(path.read_text())["metadata"]["annotations"]
        assert annotations.get("trustgate.dev/pod-templates") == "judge", path


_BAD_POD = {
    "hostPID": True,
    "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
    "containers": [
        {
            "name": "app",
            "image": "registry.example.com/app:1",
            "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
        }
    ],
}
_BAD_META = {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}}


def _custom(api_version: str, kind: str, spec: dict[str, object]) -> dict[str, object]:
    meta = {"name": "x", "namespace": "ml"}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec}


_TEMPLATE = {"metadata": _BAD_META, "spec": _BAD_POD}
CUSTOM = {
    "keda-scaledjob": _custom("keda.sh/v1alpha1", "ScaledJob", {"jobTargetRef": {"template": _TEMPLATE}}),
    "knative-revision": {
        **_custom("serving.knative.dev/v1", "Revision", dict(_BAD_POD)),
        "metadata": {"name": "x", "namespace": "ml", **_BAD_META},
    },
    "knative-service": _custom("serving.knative.dev/v1", "Service", {"template": _TEMPLATE}),
    "kubeflow-pytorchjob": _custom(
        "kubeflow.org/v1", "PyTorchJob", {"pytorchReplicaSpecs": {"Worker": {"template": _TEMPLATE}}}
    ),
    "volcano-job": _custom(
        "batch.volcano.sh/v1alpha1", "Job", {"tasks": [{"name": "t", "template": _TEMPLATE}]}
    ),
    "tekton-task": _custom("tekton.dev/v1", "Task", {"steps": _BAD_POD["containers"]}),
    "argo-workflow": _custom(
        "argoproj.io/v1alpha1",
        "Workflow",
        {"templates": [{"name": "m", "container": _BAD_POD["containers"][0]}]},
    ),
    "declared": _custom("ci.example.com/v1", "Runner", {"runner": _TEMPLATE}),
    # Knative may leave a container's name out; the messages must still be made.
    "knative-service-unnamed": _custom(
        "serving.knative.dev/v1",
        "Service",
        {
            "template": {
                "spec": {
                    **_BAD_POD,
                    "hostNetwork": True,
                    "containers": [
                        {
                            "image": "registry.example.com/app:1",
                            "ports": [{"containerPort": 8080}],
                            "securityContext": {"privileged": True},
                        }
                    ],
                }
            }
        },
    ),
}
_DECLARED = (
    "workloads: [{group: ci.example.com, kind: Runner, podSpec: spec.runner.spec, "
    "podMetadata: spec.runner.metadata}]"
)


def _with_declared(config: Config) -> Config:
    from trustgate import kinds

    declared = kinds.WorkloadKind(
        "ci.example.com", "Runner", ("spec", "runner", "spec"), ("spec", "runner", "metadata")
    )
    return dataclasses.replace(config, workloads=(declared,))


@pytest.mark.parametrize("name", sorted(CUSTOM))
def test_constraints_agree_with_the_rego_sets_on_custom_workloads(name: str) -> None:
    documents = _documents(yaml.safe_dump(CUSTOM[name]).encode(), f"{name}.yaml")
    gatekeeper = _controls(_with_declared(CONSTRAINTS), documents, True)
    assert gatekeeper == _controls(_with_declared(REGO), documents, False)
    assert "pss-baseline-privileged" in gatekeeper[0], gatekeeper


def test_check_with_the_port_denies_privileged_custom_workloads_at_their_lines(write: Write) -> None:
    directory = write("deploy/workloads.yaml", yaml.safe_dump_all(CUSTOM.values(), sort_keys=False)).parent
    config = write("trustgate.yaml", f"apiVersion: trustgate.dev/v1alpha1\nkind: Config\n{_DECLARED}\n")
    args = ["check", str(directory), "-c", str(config), "--no-builtin", "--no-schemas", "--no-cache"]
    args += ["--gatekeeper", "builtin:pss-baseline", "--format", "json"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 1, result.stdout
    report = json.loads(result.stdout)
    lines = (directory / "workloads.yaml").read_text().splitlines()
    assert len(report["results"]) == len(CUSTOM)
    for name, document in zip(CUSTOM, report["results"], strict=True):
        privileged = [f for f in document["findings"] if f["rule"] == "K8sPSSPrivileged/pss-privileged"]
        assert len(privileged) == 1 and privileged[0]["severity"] == "error", (name, document)
        if privileged[0].get("line"):  # a pod template found by trustgate: at its container
            at = lines[privileged[0]["line"] - 1].strip()
            assert at in ("- name: app", "container:"), (name, privileged[0])
    found_at = {
        f["path"]
        for document in report["results"]
        for f in document["findings"]
        if f["rule"] == "K8sPSSPrivileged/pss-privileged" and f.get("path")
    }
    assert found_at == {
        "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0]",
        "spec.tasks[0].template.spec.containers[0]",
        "spec.steps[0]",
        "spec.templates[0].container",
        "spec.runner.spec.containers[0]",
    }


def test_check_with_the_port_names_an_undeclared_custom_workload(write: Write) -> None:
    doc = _custom("deploy.example.com/v1", "AppSet", {"template": _TEMPLATE})
    code, rules = _check(write("appset.yaml", yaml.safe_dump(doc)), "pss-baseline")
    assert code == 1
    assert rules == [["gatekeeper/undeclared-workload"]]
