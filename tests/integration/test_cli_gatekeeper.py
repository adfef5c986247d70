"""Gatekeeper through the CLI: `policy test` on gator suites, `check --gatekeeper`, the OPA engine."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from opa_double import OpaDouble

from trustgate.cli.main import main
from trustgate.config import Config, EngineSettings, GatekeeperSettings, KubernetesSettings
from trustgate.errors import PolicyError
from trustgate.gate import Gate
from trustgate.manifests import loader
from trustgate.model import Document, Severity
from trustgate.policy import gatekeeper as gk
from trustgate.policy import gator
from trustgate.policy.engine import OpaEngine, OpaSettings

Write = Callable[[str, str], Path]
LIBRARY = Path(__file__).parent.parent / "conformance" / "gatekeeper-library" / "general"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def copy_suite(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(LIBRARY / name, tmp_path / name))


def test_policy_test_prints_like_gator_verify(tmp_path: Path) -> None:
    suite = copy_suite(tmp_path, "allowedrepos")
    code, out, _ = run("policy", "test", str(suite), "-v")
    assert code == 0
    assert "--- PASS: allowed-repos" in out and "    --- PASS: both-disallowed" in out
    assert f"ok  \t{suite / 'suite.yaml'}\t" in out
    assert "gator suites: 1 of 1 passed; cases: 5 passed, 0 failed" in out


def test_failing_case_says_why_and_exits_one(tmp_path: Path) -> None:
    suite = copy_suite(tmp_path, "allowedrepos")
    text = (suite / "suite.yaml").read_text().replace("violations: 3", "violations: 4")
    (suite / "suite.yaml").write_text(text)
    code, out, _ = run("policy", "test", str(suite))
    assert code == 1
    assert "    --- FAIL: all-disallowed" in out
    assert "assertion 1: got 3 violations but want exactly 4" in out
    assert f"FAIL\t{suite / 'suite.yaml'}" in out


def test_broken_suites_name_the_file_and_the_others_still_run(tmp_path: Path) -> None:
    copy_suite(tmp_path, "disallowedtags")
    missing = copy_suite(tmp_path, "allowedrepos")
    (missing / "samples" / "repo-must-be-openpolicyagent" / "example_allowed.yaml").unlink()
    unknown = copy_suite(tmp_path, "block-nodeport-services")
    constraint = next(unknown.glob("samples/*/constraint.yaml"))
    constraint.write_text(constraint.read_text().replace("kind: K8sBlockNodePort", "kind: K8sNoSuchKind"))
    params = copy_suite(tmp_path, "replicalimits")
    constraint = next(params.glob("samples/*/constraint.yaml"))
    constraint.write_text(constraint.read_text().replace("min_replicas: 3", 'min_replicas: "three"'))
    broken = copy_suite(tmp_path, "externalip")
    (broken / "template.yaml").write_text(
        (broken / "template.yaml").read_text().replace("violation[{", "violation[{{", 1)
    )
    code, out, _ = run("policy", "test", str(tmp_path), "--format", "json")
    assert code == 3
    report = {Path(s["path"]).parent.name: s for s in json.loads(out)["suites"]}
    assert report["disallowedtags"]["passed"]
    case_errors = [c["error"] for t in report["allowedrepos"]["tests"] for c in t["cases"] if c["error"]]
    assert any("example_allowed.yaml" in e and "no such file" in e for e in case_errors)
    assert sum(1 for t in report["allowedrepos"]["tests"] for c in t["cases"] if c["passed"]) == 4
    unknown_error = report["block-nodeport-services"]["tests"][0]["error"]
    assert (
        "no ConstraintTemplate defines the kind K8sNoSuchKind" in unknown_error
        and "constraint.yaml" in unknown_error
    )
    params_error = report["replicalimits"]["tests"][0]["error"]
    assert (
        "parameters.ranges.0.min_replicas" in params_error
        and "'three' is not of type 'integer'" in params_error
    )
    compile_error = report["externalip"]["tests"][0]["error"]
    assert "template k8sexternalips does not compile" in compile_error
    assert f"{broken / 'template.yaml'}:" in compile_error


def test_missing_suite_files_are_reported(write: Write) -> None:
    suite = write(
        "s/suite.yaml",
        "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n"
        "- name: t\n  template: nope.yaml\n  constraint: c.yaml\n  cases: []\n",
    )
    code, out, _ = run("policy", "test", str(suite))
    assert code == 3 and "--- FAIL: t" in out and f"{suite.parent / 'nope.yaml'}: no such file" in out


def test_rego_unit_tests_and_suites_run_together(tmp_path: Path, write: Write) -> None:
    copy_suite(tmp_path, "disallowedtags")
    write("disallowedtags/x_test.rego", "package x_test\nimport rego.v1\ntest_ok if { 1 == 1 }\n")
    code, out, _ = run("policy", "test", str(tmp_path / "disallowedtags"), "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert [r["name"] for r in report["results"]] == ["test_ok"]
    assert report["summary"]["suites"] == 1 and report["summary"]["casesFailed"] == 0


# -- check --------------------------------------------------------------------

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers:
    - name: web
      image: nginx:latest
"""


def test_check_reports_constraint_findings_like_any_other(write: Write) -> None:
    pod = write("m/pod.yaml", POD)
    code, out, _ = run(
        "check", str(pod), "--no-builtin", "--no-schemas", "--format", "json",
        "--gatekeeper", str(LIBRARY / "disallowedtags"),
    )  # fmt: skip
    assert code == 1
    findings = json.loads(out)["results"][0]["findings"]
    assert [(f["rule"], f["severity"], f["source"]) for f in findings] == [
        ("K8sDisallowedTags/container-image-must-not-have-latest-tag", "error", "gatekeeper")
    ]
    assert "uses a disallowed tag <nginx:latest>" in findings[0]["message"]


NO_LATEST_IN_PROD = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8snolatest}
spec:
  crd: {spec: {names: {kind: K8sNoLatest}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8snolatest
      violation[{"msg": msg}] {
        c := input.review.object.spec.containers[_]
        endswith(c.image, ":latest")
        msg := sprintf("container %v uses :latest", [c.name])
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sNoLatest
metadata: {name: prod}
spec:
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
    namespaceSelector: {matchLabels: {env: prod}}
"""


@pytest.mark.parametrize(("image", "code", "severity", "source"), [
    ("nginx:latest", 3, "error", "engine"), ("nginx:1.27", 0, "info", "gatekeeper"),
])  # fmt: skip
def test_undecidable_namespace_selector_fails_closed(
    write: Write, image: str, code: int, severity: str, source: str
) -> None:
    pod = write("m/pod.yaml", POD.replace("default", "prod").replace("nginx:latest", image))
    policy = write("gk/t.yaml", NO_LATEST_IN_PROD)
    got, out, _ = run(
        "check", str(pod), "--no-builtin", "--no-schemas", "--format", "json", "--gatekeeper", str(policy)
    )
    assert got == code
    [finding] = json.loads(out)["results"][0]["findings"]
    assert (finding["rule"], finding["severity"], finding["source"]) == ("K8sNoLatest/prod", severity, source)
    assert (
        "namespaceSelector of K8sNoLatest/prod could not be decided: Namespace 'prod'" in finding["message"]
    )
    namespace = write(
        "inv/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {env: dev}}\n"
    )
    decided, _, _ = run(
        "check",
        str(pod),
        "--no-builtin",
        "--no-schemas",
        "--gatekeeper",
        str(policy),
        "--inventory",
        str(namespace),
    )
    assert decided == 0  # given the Namespace, the selector is decided: not prod


def test_bundled_constraint_sets_by_name_on_the_command_line(write: Write) -> None:
    pod = write(
        "m/pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n"
        "spec:\n  containers:\n    - {name: c, image: nginx:1.27, securityContext: {privileged: true}}\n",
    )
    code, out, _ = run(
        "check", str(pod), "--no-builtin", "--no-schemas", "--format", "json",
        "--gatekeeper", "builtin:pss-baseline",
    )  # fmt: skip
    assert code == 1
    rules = [f["rule"] for f in json.loads(out)["results"][0]["findings"]]
    assert rules == ["K8sPSSPrivileged/pss-privileged"]
    code, _, _ = run("check", str(pod), "--gatekeeper", "builtin:no-such-set")
    assert code == 2


def test_the_bundled_sets_suites_and_samples_are_not_named_as_skipped(write: Write) -> None:
    # The README's `paths: [builtin:pss-baseline, platform-policies/gatekeeper/]` printed
    # "skipped ... not templates or constraints: ... 16 v1 Pod" about the set's own samples.
    pod = write("m/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n"
                "spec:\n  containers: [{name: c, image: 'nginx:1.27'}]\n")  # fmt: skip
    args = ("check", str(pod), "--no-builtin", "--no-schemas", "--gatekeeper", "builtin:pss-baseline")
    code, out, _ = run(*args)
    assert code == 0 and "passed" in out and "skipped in the Gatekeeper paths" not in out
    # A sample in a directory of one's own is still named: it may be a constraint mistyped.
    platform = write("platform/gatekeeper/sample.yaml", pod.read_text()).parent
    code, out, _ = run(*args, "--gatekeeper", str(platform))
    assert code == 0 and "not templates or constraints: 1 v1 Pod" in " ".join(out.split())


def test_enforcement_action_exceptions_and_unsupported_templates(write: Write, tmp_path: Path) -> None:
    gk_dir = copy_suite(tmp_path, "disallowedtags")
    constraint = next(gk_dir.glob("samples/*/constraint.yaml"))
    constraint.write_text(constraint.read_text().replace("spec:\n", "spec:\n  enforcementAction: warn\n", 1))
    write(
        "cel/template.yaml",
        "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: k8scel}\n"
        "spec:\n  crd: {spec: {names: {kind: K8sCel}}}\n  targets:\n"
        "    - target: admission.k8s.gatekeeper.sh\n"
        "      code: [{engine: Wasm, source: {}}]\n",  # an engine trustgate does not evaluate
    )
    write(
        "cel/constraint.yaml",
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sCel\nmetadata: {name: c}\n"
        "spec: {match: {kinds: [{apiGroups: [''], kinds: [Namespace]}]}}\n",  # matches no checked document
    )
    config = Config(
        policies=(),
        kubernetes=KubernetesSettings(schemas=False),
        gatekeeper=GatekeeperSettings(paths=(gk_dir, tmp_path / "cel")),
    )
    decision = Gate(config=config).evaluate(docs(POD))
    finding = decision.results[0].findings[0]
    assert finding.severity == Severity.WARNING and decision.allowed
    assert any("k8scel" in n and "not supported" in n and "K8sCel/c" in n for n in decision.notes)


def test_inventory_is_the_change_set_plus_supplied_objects(write: Write) -> None:
    ingress = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: {name}, namespace: {ns}}}
spec:
  rules:
    - host: shop.example.com
"""
    first = write("m/a.yaml", ingress.format(name="a", ns="one"))
    code, _, _ = run(
        "check",
        str(first),
        "--no-builtin",
        "--no-schemas",
        "--gatekeeper",
        str(LIBRARY / "uniqueingresshost"),
    )
    assert code == 0
    write("m/b.yaml", ingress.format(name="b", ns="two"))
    code, out, _ = run(
        "check",
        str(first.parent),
        "--no-builtin",
        "--no-schemas",
        "--gatekeeper",
        str(LIBRARY / "uniqueingresshost"),
    )
    assert code == 1 and out.count("ingress host conflicts with an existing ingress <shop.example.com>") == 2
    other = write("cluster/existing.yaml", ingress.format(name="c", ns="three"))
    code, out, _ = run(
        "check", str(first), "--no-builtin", "--no-schemas",
        "--gatekeeper", str(LIBRARY / "uniqueingresshost"), "--inventory", str(other),
    )  # fmt: skip
    assert code == 1 and "conflicts" in out


def docs(text: str) -> list[Document]:
    documents, problems = loader.parse_bytes(text.encode(), "x.yaml", Config().limits)
    assert not problems
    return documents


# -- the remote OPA engine ----------------------------------------------------


def test_remote_opa_engine_gives_the_embedded_results_through_the_data_api(write: Write) -> None:
    pod = docs(POD)
    base = Config(policies=(), kubernetes=KubernetesSettings(schemas=False))
    gk_settings = GatekeeperSettings(paths=(LIBRARY / "disallowedtags", LIBRARY / "allowedrepos"))
    embedded = Gate(config=Config(policies=(), kubernetes=base.kubernetes, gatekeeper=gk_settings)).evaluate(
        pod
    )
    with OpaDouble() as opa:
        config = Config(
            policies=(),
            kubernetes=base.kubernetes,
            gatekeeper=gk_settings,
            engine=EngineSettings(opa_url=opa.url),
        )
        remote = Gate(config=config).evaluate(pod)
        requests = list(opa.requests)
    assert [f.to_json() for f in remote.results[0].findings] == [
        f.to_json() for f in embedded.results[0].findings
    ]
    assert len(remote.results[0].findings) == 2
    methods = {(m, p.split("/")[1] + "/" + p.split("/")[2]) for m, p in requests}
    assert methods <= {("PUT", "v1/policies"), ("PUT", "v1/data"), ("POST", "v1/data")}
    assert ("POST", "/v1/data/trustgate_gk/findings") in requests
    assert any(m == "PUT" and p.startswith("/v1/policies/trustgate/") for m, p in requests)


@pytest.mark.parametrize("suite", ["uniqueingresshost", "allowedrepos", "requiredlabels"])
def test_gator_suites_pass_on_the_remote_engine(suite: str) -> None:
    with OpaDouble() as opa:
        result = gator.run_suite(
            LIBRARY / suite / "suite.yaml", engine=lambda: OpaEngine(OpaSettings(url=opa.url))
        )
    assert result.passed, result.to_json()
    assert sum(len(t.cases) for t in result.tests) >= 3


def test_remote_engine_errors_are_clear(write: Write) -> None:
    engine = OpaEngine(OpaSettings(url="http://127.0.0.1:9", timeout_seconds=1))
    with pytest.raises(PolicyError) as raised:
        engine.eval_rule("data.x.y", {})
    assert "OPA server unreachable" in str(raised.value)
    with OpaDouble() as opa:
        template = gk.Template("k8sx", "K8sX", "t.yaml", 1, rego="package k8sx\nviolation[{", rego_line=5)
        with pytest.raises(PolicyError, match=r"template k8sx does not compile: .*OPA rejected"):
            gk.ConstraintSet([template], [gk.Constraint("K8sX", "c", "c.yaml", 1)]).compile(
                OpaEngine(OpaSettings(url=opa.url))
            )
