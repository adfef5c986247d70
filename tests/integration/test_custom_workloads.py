"""Custom resources that carry a pod template, at the three gates: `check`, `presync` and `serve`
(over real HTTPS), and the webhook configuration that sends them."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from support.gitrepo import Repo, allowed_signers, ssh_key
from support.webhook import CertSet, Server, make_certs, review, start_server

from trustgate.cli.main import main

DIGEST = "registry.example.com/shop/web:1.4.2@sha256:" + "0123456789abcdef" * 4

COMPLIANT_ROLLOUT = textwrap.dedent(
    f"""\
    apiVersion: argoproj.io/v1alpha1
    kind: Rollout
    metadata:
      name: web
      namespace: shop
    spec:
      replicas: 2
      selector:
        matchLabels: {{app: web}}
      strategy:
        canary:
          steps: [{{setWeight: 20}}]
      template:
        metadata:
          labels: {{app: web}}
        spec:
          securityContext:
            runAsNonRoot: true
            seccompProfile: {{type: RuntimeDefault}}
          containers:
            - name: web
              image: {DIGEST}
              resources:
                limits: {{cpu: 500m, memory: 256Mi}}
              securityContext:
                allowPrivilegeEscalation: false
                capabilities: {{drop: [ALL]}}
              livenessProbe: {{httpGet: {{path: /healthz, port: 8080}}}}
              readinessProbe: {{httpGet: {{path: /ready, port: 8080}}}}
    """
)
# The same Rollout, privileged (the line after allowPrivilegeEscalation).
_ESCALATION = next(line for line in COMPLIANT_ROLLOUT.splitlines() if "allowPrivilegeEscalation" in line)
_PRIVILEGED = _ESCALATION.replace("allowPrivilegeEscalation: false", "privileged: true")
PRIVILEGED_ROLLOUT = COMPLIANT_ROLLOUT.replace(_ESCALATION + "\n", f"{_ESCALATION}\n{_PRIVILEGED}\n")
PRIVILEGED_LINE = PRIVILEGED_ROLLOUT.splitlines().index(_PRIVILEGED) + 1
# A custom resource of a group nobody declared, shaped as a Deployment.
LOOK_ALIKE = COMPLIANT_ROLLOUT.replace("argoproj.io/v1alpha1", "deploy.example.com/v1").replace(
    "kind: Rollout", "kind: AppSet"
)
CONTAINERS_LINE = next(
    i for i, line in enumerate(LOOK_ALIKE.splitlines(), 1) if line.strip() == "containers:"
)

# An Argo Workflow whose one template is a privileged container (no pod template path at all).
PRIVILEGED_WORKFLOW = textwrap.dedent(
    f"""\
    apiVersion: argoproj.io/v1alpha1
    kind: Workflow
    metadata:
      name: build
      namespace: ci
    spec:
      entrypoint: main
      templates:
        - name: main
          container:
            image: {DIGEST}
            securityContext:
              privileged: true
    """
)


def _check(*paths: Path, config: Path | None = None) -> tuple[int, dict[str, Any]]:
    args = ["check", *map(str, paths), "-o", "json"] + (["-c", str(config)] if config else [])
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def _findings(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        f for r in report["results"] if r["kind"] == kind for f in r["findings"] if f["severity"] != "info"
    ]


def test_check_denies_a_privileged_rollout_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rollout.yaml"
    path.write_text(PRIVILEGED_ROLLOUT)
    code, report = _check(path)
    assert code == 1
    (finding,) = _findings(report, "Rollout")
    assert finding["rule"] == "pss-baseline-privileged" and finding["severity"] == "error"
    assert finding["path"] == "spec.template.spec.containers[0].securityContext.privileged"
    assert finding["line"] == PRIVILEGED_LINE


def test_check_passes_a_compliant_rollout(tmp_path: Path) -> None:
    path = tmp_path / "rollout.yaml"
    path.write_text(COMPLIANT_ROLLOUT)
    code, report = _check(path)
    assert code == 0, report
    assert _findings(report, "Rollout") == []
    assert [r["kind"] for r in report["results"]] == ["Rollout"]


def test_check_names_an_undeclared_look_alike_and_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "appset.yaml"
    path.write_text(LOOK_ALIKE)
    code, report = _check(path)
    assert code == 1
    (finding,) = _findings(report, "AppSet")
    assert finding["rule"] == "undeclared-workload" and finding["line"] == CONTAINERS_LINE
    assert "AppSet (deploy.example.com)" in finding["message"]
    assert "podSpec: spec.template.spec" in finding["fix"] and "notWorkload: true" in finding["fix"]
    # Declared, it is judged as a workload: compliant, it passes.
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nworkloads:\n"
        "  - {group: deploy.example.com, kind: AppSet, podSpec: spec.template.spec}\n"
    )
    code, report = _check(path, config=config)
    assert code == 0 and _findings(report, "AppSet") == []
    path.write_text(
        PRIVILEGED_ROLLOUT.replace("argoproj.io/v1alpha1", "deploy.example.com/v1").replace(
            "kind: Rollout", "kind: AppSet"
        )
    )
    code, report = _check(path, config=config)
    assert code == 1
    assert "pss-baseline-privileged" in {f["rule"] for f in _findings(report, "AppSet")}


def test_a_bad_workloads_entry_is_a_config_error_naming_the_line(tmp_path: Path) -> None:
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nworkloads:\n"
        "  - {group: apps, kind: Deployment, podSpec: spec.template.spec}\n"
    )
    manifest = tmp_path / "rollout.yaml"
    manifest.write_text(COMPLIANT_ROLLOUT)
    result = CliRunner().invoke(main, ["check", str(manifest), "-c", str(config)], catch_exceptions=False)
    assert result.exit_code == 2 or result.exit_code == 3, result.output
    assert f"{config}:4" in result.output and "built-in workload kind" in result.output
    assert "Traceback" not in result.output


# Your own policy on the library: a container without limits, in any workload.
USER_LIMITS = textwrap.dedent(
    """\
    package main

    import rego.v1

    deny contains f if {
        some c in data.trustgate.lib.k8s.containers
        not c.container.resources.limits
        f := {
            "msg": sprintf("%s has no limits", [c.description]),
            "rule": "need-limits",
            "path": array.concat(c.path, ["resources"]),
        }
    }
    """
)
UNBOUNDED_TRAINING = textwrap.dedent(
    """\
    apiVersion: kubeflow.org/v1
    kind: PyTorchJob
    metadata:
      name: train
      namespace: ml
    spec:
      pytorchReplicaSpecs:
        Master:
          replicas: 1
          template:
            spec:
              containers:
                - name: pytorch
                  image: registry.example.com/train:1
                  resources: {limits: {memory: 8Gi}}
        Worker:
          replicas: 4
          template:
            spec:
              containers:
                - name: pytorch
                  image: registry.example.com/train:1
    ---
    apiVersion: tekton.dev/v1
    kind: Task
    metadata:
      name: build
      namespace: ci
    spec:
      steps:
        - name: compile
          image: registry.example.com/builder:1
          resources: {limits: {memory: 1Gi}}
        - name: test
          image: registry.example.com/builder:1
          script: make test
    """
)


def test_check_runs_your_policy_on_the_library_over_templates_in_lists_and_maps(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "limits.rego").write_text(USER_LIMITS)
    path = tmp_path / "jobs.yaml"
    path.write_text(UNBOUNDED_TRAINING)
    lines = UNBOUNDED_TRAINING.splitlines()
    worker = lines.index("    Worker:")
    worker_line = lines.index("            - name: pytorch", worker) + 1
    step_line = lines.index("    - name: test") + 1
    result = CliRunner().invoke(
        main,
        ["check", str(path), "-p", str(policy), "--no-builtin", "--no-schemas", "-o", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    found = {
        r["kind"]: [(f["rule"], f["severity"], f["path"], f["line"]) for f in r["findings"]]
        for r in report["results"]
    }
    assert found == {
        "PyTorchJob": [
            (
                "need-limits",
                "error",
                "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].resources",
                worker_line,
            )
        ],
        "Task": [("need-limits", "error", "spec.steps[1].resources", step_line)],
    }


# ---------------------------------------------------------------------------------------------------
# presync


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [(COMPLIANT_ROLLOUT, 0), (PRIVILEGED_ROLLOUT, 1), (LOOK_ALIKE, 1), (PRIVILEGED_WORKFLOW, 1)],
    ids=["compliant", "privileged", "look-alike", "workflow-step"],
)
def test_presync_gates_the_ref_on_custom_workloads(tmp_path: Path, manifest: str, expected: int) -> None:
    key = ssh_key(tmp_path, "alice@example.com")
    allowed_signers(tmp_path / "allowed_signers", key)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\ncommits:\n  allowedSigners: allowed_signers\n"
        "presync:\n  paths: [deploy]\n"
    )
    repo = Repo.create(tmp_path / "fleet")
    repo.write("deploy/app.yaml", manifest)
    tip = repo.commit("app", ssh=key)
    result = CliRunner().invoke(
        main,
        ["presync", "--repo", str(repo.path), "--ref", "main", "--gated-ref", "trustgate/verified",
         "-c", str(config), "--no-color"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == expected, result.output
    gated = repo.ref("refs/heads/trustgate/verified")
    if expected == 0:
        assert gated == tip
        return
    assert gated is None  # the gated ref did not move
    rule = "undeclared-workload" if "AppSet" in manifest else "pss-baseline-privileged"
    assert rule in result.output and "deploy/app.yaml:" in result.output


def test_presync_runs_your_policy_on_the_library_over_templates_in_lists_and_maps(tmp_path: Path) -> None:
    key = ssh_key(tmp_path, "alice@example.com")
    allowed_signers(tmp_path / "allowed_signers", key)
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "limits.rego").write_text(USER_LIMITS)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\ncommits:\n  allowedSigners: allowed_signers\n"
        "presync:\n  paths: [deploy]\nkubernetes:\n  schemas: false\n"
        "manifests:\n  policies: [{path: policy}]\n"
    )
    repo = Repo.create(tmp_path / "fleet")
    repo.write("deploy/jobs.yaml", UNBOUNDED_TRAINING)
    repo.commit("jobs", ssh=key)
    result = CliRunner().invoke(
        main,
        ["presync", "--repo", str(repo.path), "--ref", "main", "--gated-ref", "trustgate/verified",
         "-c", str(config), "--no-color"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert repo.ref("refs/heads/trustgate/verified") is None  # the gated ref did not move
    assert "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].resources" in result.output
    assert "spec.steps[1].resources" in result.output


# ---------------------------------------------------------------------------------------------------
# serve, and the webhook configuration


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def server(certs: CertSet) -> Iterator[Server]:
    srv = start_server(certs, workers=1)
    yield srv
    srv.stop()


def test_serve_judges_a_rollout_the_api_server_sends(server: Server) -> None:
    privileged = yaml.safe_load(PRIVILEGED_ROLLOUT)
    status, answer = server.post(review(privileged, uid="rollout-privileged"))
    assert status == 200, answer
    response = answer["response"]
    assert response["uid"] == "rollout-privileged" and response["allowed"] is False
    assert "pss-baseline-privileged" in response["status"]["message"]
    status, answer = server.post(review(yaml.safe_load(COMPLIANT_ROLLOUT), uid="rollout-ok"))
    assert status == 200 and answer["response"]["allowed"] is True, answer


def test_serve_runs_your_policy_on_the_library_over_templates_in_lists_and_maps(
    certs: CertSet, tmp_path: Path
) -> None:
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "limits.rego").write_text(USER_LIMITS)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nkubernetes:\n  schemas: false\n"
        "manifests:\n  policies: [{path: policy}]\n"
    )
    job, task = yaml.safe_load_all(UNBOUNDED_TRAINING)
    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        for obj, container in ((job, "pytorch"), (task, "test")):
            status, answer = srv.post(review(obj, uid=obj["kind"]))
            assert status == 200, answer
            response = answer["response"]
            assert response["allowed"] is False, response
            assert f'[need-limits] container "{container}" has no limits' in response["status"]["message"]
    finally:
        srv.stop()


def test_webhook_config_sends_the_custom_workloads(tmp_path: Path) -> None:
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nworkloads:\n"
        "  - {group: deploy.example.com, kind: AppSet, podSpec: spec.template.spec, resource: appsets}\n"
        "  - {group: argoproj.io, kind: Rollout, notWorkload: true}\n"
    )
    result = CliRunner().invoke(main, ["webhook-config", "-c", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    webhook = yaml.safe_load(result.stdout)["webhooks"][0]  # the fail-closed one
    sent = {(g, r) for rule in webhook["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert {
        ("deploy.example.com", "appsets"),
        ("apps.kruise.io", "clonesets"),
        ("keda.sh", "scaledjobs"),
    } <= sent
    assert ("serving.knative.dev", "services") in sent and ("", "services") not in sent
    assert ("argoproj.io", "rollouts") not in sent  # declared not a workload
    default = CliRunner().invoke(main, ["webhook-config"], catch_exceptions=False)
    rules = yaml.safe_load(default.stdout)["webhooks"][0]["rules"]
    assert any(r["apiGroups"] == ["argoproj.io"] and "rollouts" in r["resources"] for r in rules)


def test_serve_with_the_gatekeeper_port_judges_a_workflow_the_api_server_sends(certs: CertSet) -> None:
    # The port alone: the Workflow's container is handed to its constraints as a pod template.
    srv = start_server(certs, "--no-builtin", "--gatekeeper", "builtin:pss-baseline", workers=1)
    try:
        status, answer = srv.post(review(yaml.safe_load(PRIVILEGED_WORKFLOW), uid="workflow-privileged"))
        assert status == 200, answer
        response = answer["response"]
        assert response["allowed"] is False, answer
        assert "K8sPSSPrivileged/pss-privileged" in response["status"]["message"]
        compliant = yaml.safe_load(PRIVILEGED_WORKFLOW)
        del compliant["spec"]["templates"][0]["container"]["securityContext"]
        status, answer = srv.post(review(compliant, uid="workflow-ok"))
        assert status == 200 and answer["response"]["allowed"] is True, answer
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------------
# the three gates agree


# A PyTorchJob whose Master and Worker both run a privileged `pytorch` container, and a Tekton Task
# with a privileged step: a message that names the container is the same for both replica specs.
PRIVILEGED_TRAINING = textwrap.dedent(
    """\
    apiVersion: kubeflow.org/v1
    kind: PyTorchJob
    metadata:
      name: train
      namespace: ml
    spec:
      pytorchReplicaSpecs:
        Master:
          replicas: 1
          template:
            spec:
              containers:
                - name: pytorch
                  image: registry.example.com/train:1
                  securityContext: {privileged: true}
        Worker:
          replicas: 4
          template:
            spec:
              containers:
                - name: pytorch
                  image: registry.example.com/train:1
                  securityContext: {privileged: true}
    ---
    apiVersion: tekton.dev/v1
    kind: Task
    metadata:
      name: build
      namespace: ci
    spec:
      steps:
        - name: compile
          image: registry.example.com/builder:1
          securityContext: {privileged: true}
    """
)
# Your own policy on the library, a message without a path (conftest's usual form).
USER_PRIVILEGED = textwrap.dedent(
    """\
    package main

    import rego.v1

    deny contains msg if {
        some c in data.trustgate.lib.k8s.containers
        c.container.securityContext.privileged
        msg := sprintf("container %s is privileged", [c.container.name])
    }
    """
)
# The port's template with a constraint of your own that names only these two kinds.
OWN_CONSTRAINT = textwrap.dedent(
    """\
    apiVersion: constraints.gatekeeper.sh/v1beta1
    kind: K8sPSSPrivileged
    metadata:
      name: training
    spec:
      match:
        kinds:
          - {apiGroups: [kubeflow.org], kinds: [PyTorchJob]}
          - {apiGroups: [tekton.dev], kinds: [Task]}
    """
)
_PORT = Path(__file__).resolve().parents[2] / "trustgate" / "policies" / "gatekeeper" / "pss-baseline"


def _setup(tmp_path: Path, how: str) -> Path:
    """A trustgate.yaml judging with your own policy on the library, the port, or your constraint."""
    lines = ["apiVersion: trustgate.dev/v1alpha1", "kind: Config", "kubernetes:", "  schemas: false"]
    lines += ["commits:", "  allowedSigners: allowed_signers", "presync:", "  paths: [deploy]"]
    if how == "library":
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "privileged.rego").write_text(USER_PRIVILEGED)
        lines += ["manifests:", "  policies: [{path: policy}]"]
    else:
        lines += ["manifests:", "  policies: []", "  gatekeeper:"]
        if how == "port":
            lines += ["    paths: [builtin:pss-baseline]"]
        else:
            own = tmp_path / "gk"
            own.mkdir()
            (own / "template.yaml").write_text((_PORT / "privileged" / "template.yaml").read_text())
            (own / "constraint.yaml").write_text(OWN_CONSTRAINT)
            lines += ["    paths: [gk]"]
    config = tmp_path / "trustgate.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _blocking(report: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    return {
        r["kind"]: sorted(
            (f["rule"], f["message"], f.get("path") or "") for f in r["findings"] if f["severity"] == "error"
        )
        for r in report["results"]
        if r.get("kind") in ("PyTorchJob", "Task")
    }


@pytest.mark.parametrize("how", ["library", "port", "own-constraint"])
def test_check_presync_and_serve_agree_on_custom_workloads(tmp_path: Path, certs: CertSet, how: str) -> None:
    config = _setup(tmp_path, how)
    key = ssh_key(tmp_path, "alice@example.com")
    allowed_signers(tmp_path / "allowed_signers", key)
    manifest = tmp_path / "training.yaml"
    manifest.write_text(PRIVILEGED_TRAINING)
    code, checked = _check(manifest, config=config)
    assert code == 1
    at_check = _blocking(checked)
    # One finding each where a privileged container is: both replica specs, and the step.
    assert [len(at_check[k]) for k in ("PyTorchJob", "Task")] == [2, 1], at_check
    paths = {kind: [p for _, _, p in found] for kind, found in at_check.items()}
    assert [p.split(".template")[0] for p in paths["PyTorchJob"]] == [
        "spec.pytorchReplicaSpecs.Master",
        "spec.pytorchReplicaSpecs.Worker",
    ]
    assert paths["Task"][0].startswith("spec.steps")

    repo = Repo.create(tmp_path / "fleet")
    repo.write("deploy/training.yaml", PRIVILEGED_TRAINING)
    repo.commit("training", ssh=key)
    result = CliRunner().invoke(
        main,
        ["presync", "--repo", str(repo.path), "--ref", "main", "--gated-ref", "trustgate/verified",
         "-c", str(config), "-o", "json"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert repo.ref("refs/heads/trustgate/verified") is None
    assert _blocking(json.loads(result.stdout)) == at_check

    srv = start_server(certs, "-c", str(config), workers=1)
    try:
        for obj in yaml.safe_load_all(PRIVILEGED_TRAINING):
            status, answer = srv.post(review(obj, uid=obj["kind"]))
            assert status == 200, answer
            response = answer["response"]
            assert response["allowed"] is False, response
            said = response["status"]["message"]
            # Each part names where it points: the same message at two pod templates is two parts.
            expected = sorted(
                f"[{rule}] {message}" + (f" (at {path})" if path else "")
                for rule, message, path in at_check[obj["kind"]]
            )
            assert sorted(said.split(": ", 1)[1].split("; ")) == expected, said
    finally:
        srv.stop()
