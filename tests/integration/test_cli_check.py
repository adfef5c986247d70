"""`trustgate check` end to end through the CLI, as a pipeline step would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.policies import LATEST_TAG_POLICY

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

POLICY = LATEST_TAG_POLICY

GOOD_POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: good, labels: {team: a}}\nspec:\n  containers:\n"
    "    - {name: app, image: 'nginx:1.27'}\n"
)
BAD_POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n"
    "    - name: app\n      image: nginx:latest\n"
)


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def policy(write: Write) -> str:
    return str(write("policy/main.rego", POLICY))


def check(policy: str, *args: str, input: str | None = None) -> tuple[int, str, str]:
    return run("check", "--no-builtin", "-p", policy, *args, input=input)


def test_pass_exits_zero(policy: str, write: Write) -> None:
    code, out, _ = check(policy, str(write("ok.yaml", GOOD_POD)))
    assert code == 0
    assert "1 documents: 1 passed, 0 failed" in out


def test_failure_exits_one_with_file_line_rule_and_fix(policy: str, write: Write) -> None:
    path = write("bad.yaml", BAD_POD)
    code, out, _ = check(policy, str(path), "--no-color")
    assert code == 1
    assert "no-latest" in out and 'container "app" uses a latest tag' in out
    assert f"{path}:7" in out  # the image line
    assert "fix: pin a version" in out
    assert "team-label" in out  # the warning is shown too


def test_json_output_shape(policy: str, write: Write) -> None:
    write("m/a.yaml", GOOD_POD)
    write("m/b.yaml", BAD_POD + "---\n" + GOOD_POD.replace("good", "good2"))
    code, out, _ = check(policy, str(write("m/a.yaml", GOOD_POD).parent), "-o", "json")
    assert code == 1
    report = json.loads(out)
    assert report["summary"] == {"documents": 3, "passed": 2, "failed": 1, "warnings": 1, "errors": 0}
    bad = next(r for r in report["results"] if r["name"] == "bad")
    assert {k: bad[k] for k in ("apiVersion", "kind", "namespace", "name", "line")} == {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": None,
        "name": "bad",
        "line": 1,
    }
    assert bad["file"].endswith("b.yaml")
    rules = {f["rule"]: f for f in bad["findings"]}
    assert rules["no-latest"]["severity"] == "error" and rules["no-latest"]["line"] == 7
    assert rules["no-latest"]["path"] == "spec.containers[0].image"
    assert rules["team-label"]["severity"] == "warning"


def test_stdin(policy: str) -> None:
    code, out, _ = check(policy, "-", "-o", "json", input=BAD_POD)
    assert code == 1
    assert json.loads(out)["results"][0]["file"] == "-"


def test_sarif_junit_and_github_formats(policy: str, write: Write, tmp_path: Path) -> None:
    path = str(write("bad.yaml", BAD_POD))
    sarif_file = tmp_path / "out.sarif"
    code, _, err = check(policy, path, "-o", "sarif", "--output", str(sarif_file))
    assert code == 1 and "report: " in err
    sarif = json.loads(sarif_file.read_text())
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"no-latest", "team-label"}
    latest = next(r for r in results if r["ruleId"] == "no-latest")
    assert latest["level"] == "error"
    assert latest["locations"][0]["physicalLocation"]["region"]["startLine"] == 7

    code, out, _ = check(policy, path, "-o", "junit")
    suite = ET.fromstring(out)
    assert code == 1 and suite.find(".//failure") is not None

    code, out, _ = check(policy, path, "-o", "github")
    assert f"::error file={path},line=7,title=no-latest::" in out
    assert "::warning " in out


def test_fail_on_warning(policy: str, write: Write) -> None:
    pod = GOOD_POD.replace(", labels: {team: a}", "")
    path = str(write("warn.yaml", pod))
    assert check(policy, path)[0] == 0
    assert check(policy, path, "--fail-on", "warning")[0] == 1


def test_mode_flag(policy: str, write: Write) -> None:
    path = str(write("bad.yaml", BAD_POD))
    assert check(policy, path, "--mode", "warn")[0] == 0
    assert check(policy, path, "--mode", "audit")[0] == 0


def test_bad_documents_exit_three_and_every_good_one_is_still_reported(policy: str, write: Write) -> None:
    write("in/broken.yaml", "a: [unclosed\n")
    write("in/good.yaml", GOOD_POD)
    write("in/bad.yaml", BAD_POD)
    write("in/list.yaml", "- 1\n- 2\n")
    write("in/nokind.yaml", "metadata: {name: x}\n")
    (Path(write("in/good.yaml", GOOD_POD)).parent / "blob.yaml").write_bytes(b"\x00\x01\x02")
    code, out, _ = check(policy, str(Path(write("in/good.yaml", GOOD_POD)).parent), "-o", "json")
    assert code == 3
    report = json.loads(out)
    assert (
        report["summary"]["errors"] == 4
        and report["summary"]["failed"] == 1
        and report["summary"]["passed"] == 1
    )
    problems = {
        Path(r["file"]).name: r["findings"][0]["rule"] for r in report["results"] if r["status"] == "error"
    }
    assert problems == {
        "blob.yaml": "input/binary",
        "broken.yaml": "input/invalid-yaml",
        "list.yaml": "input/not-an-object",
        "nokind.yaml": "input/not-a-kubernetes-object",
    }


def test_alias_bomb_is_refused(policy: str, write: Write) -> None:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=False):
        rows.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    path = write("bomb.yaml", "\n".join(rows) + "\n")
    code, out, _ = check(policy, str(path), "-o", "json")
    assert code == 3
    assert json.loads(out)["results"][0]["findings"][0]["rule"] == "input/yaml-alias"


def test_missing_path_is_a_clear_error(policy: str, tmp_path: Path) -> None:
    code, _, err = check(policy, str(tmp_path / "nope"))
    assert code == 3
    assert "nope: no such file or directory" in err
    assert "Traceback" not in err


def test_usage_error_exits_two(policy: str) -> None:
    code, _, err = run("check", "--format", "yaml", "x")
    assert code == 2 and "Invalid value for '-o' / '--format'" in err


def test_broken_config_names_the_line(write: Write) -> None:
    config = write("trustgate.yaml", "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmode: maybe\n")
    code, _, err = run("check", "-c", str(config), str(config))
    assert code == 3
    assert f"{config}:3: mode:" in err


def test_broken_policy_names_file_line_column(write: Write) -> None:
    bad = write("p/bad.rego", "package main\nimport rego.v1\ndeny contains msg if {\n  msg := \n}\n")
    code, _, err = run("check", "--no-builtin", "-p", str(bad), str(bad))
    assert code == 3
    assert f"{bad}:4:" in err and "backtrace" not in err.lower()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("deny contains msg if { input.a == 5 }", "rego_unsafe_var_error: var msg is unsafe"),
        ('deny contains "d" if { input.a == 5 }\ndeny := {"e"} if { input.a == 5 }', "conflicting rules"),
        ('a if b\nb if a\ndeny contains "d" if { input.a == 5; a }', "rego_recursion_error"),
        ('deny contains "d" if { some x; input.a == 5 }', "declared var x unused"),
    ],
)
def test_policy_opa_refuses_is_not_loaded(write: Write, body: str, error: str) -> None:
    # The rule's body is false on this input: before, trustgate passed (exit 0) where
    # conftest does not load the policy at all.
    policy = write("p/main.rego", f"package main\nimport rego.v1\n\n{body}\n")
    code, _, err = run("check", "--no-builtin", "-p", str(policy), str(write("ok.yaml", GOOD_POD)))
    assert code == 3 and f"{policy}:4: " in err and error in err, err
    code, _, err = run("policy", "test", str(policy.parent))
    assert code == 3 and error in err, err


def test_v0_policy_with_flag(write: Write) -> None:
    policy = write(
        "p/old.rego", 'package main\n\ndeny[msg] {\n  input.kind == "Pod"\n  msg := "no pods"\n}\n'
    )
    pod = str(write("pod.yaml", GOOD_POD))
    code, _, err = run("check", "--no-builtin", "-p", str(policy), pod)
    assert code == 3 and "--rego-version v0" in err
    code, out, _ = run("check", "--no-builtin", "-p", str(policy), "--rego-version", "v0", pod, "-o", "json")
    assert code == 1 and json.loads(out)["results"][0]["findings"][0]["message"] == "no pods"


def test_config_with_exception_and_expired_exception(policy: str, write: Write) -> None:
    config = write(
        "trustgate.yaml",
        f"""\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        manifests:
          policies:
            - path: {policy}
        exceptions:
          - name: legacy-bad-pod
            rules: [no-latest]
            names: [bad]
            owner: app-team@example.com
            reason: migrating off latest this sprint
            expires: "2999-01-01"
          - name: old-waiver
            rules: [team-label]
            owner: app-team@example.com
            reason: long gone
            expires: "2001-01-01"
        """,
    )
    code, out, _ = run("check", "-c", str(config), str(write("bad.yaml", BAD_POD)), "-o", "json")
    assert code == 0
    report = json.loads(out)
    findings = {f["rule"]: f for f in report["results"][0]["findings"]}
    assert findings["no-latest"]["severity"] == "info"
    assert findings["no-latest"]["exception"]["name"] == "legacy-bad-pod"
    assert findings["team-label"]["severity"] == "warning"
    assert findings["team-label"]["exception"]["expired"] is True
    assert any("old-waiver" in note and "expired on 2001-01-01" in note for note in report["notes"])


def test_kustomization_directory_is_rendered(policy: str, write: Write) -> None:
    write("app/kustomization.yaml", "namespace: shop\nresources: [pod.yaml]\n")
    write("app/pod.yaml", BAD_POD)
    code, out, _ = check(policy, str(write("app/pod.yaml", BAD_POD).parent), "-o", "json")
    assert code == 1
    (result,) = json.loads(out)["results"]
    assert (result["namespace"], result["name"], result["renderedFrom"]) == (
        "shop",
        "bad",
        str(write("app/pod.yaml", BAD_POD).parent),
    )


def test_output_to_unwritable_place(policy: str, write: Write, tmp_path: Path) -> None:
    code, _, err = check(
        policy,
        str(write("ok.yaml", GOOD_POD)),
        "-o",
        "json",
        "--output",
        str(tmp_path / "missing-dir" / "out.json"),
    )
    assert code == 3 and "cannot write" in err


def test_versions_and_schema_commands() -> None:
    code, out, _ = run("versions")
    assert code == 0 and "1.33" in out and "pss-baseline" in out
    code, out, _ = run("schema")
    assert code == 0 and json.loads(out)["properties"]["apiVersion"]["const"] == "trustgate.dev/v1alpha1"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.yaml", "apiVersion: v1\nkind: ConfigMap\ndata: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("deep.json", '{"apiVersion": "v1", "kind": "ConfigMap", "data": ' + "[" * 5000 + "]" * 5000 + "}"),
    ],
)
def test_absurd_nesting_is_reported_not_a_crash(policy: str, write: Write, name: str, text: str) -> None:
    code, out, _ = check(policy, str(write(name, text)), "-o", "json")
    assert code == 3
    (finding,) = json.loads(out)["results"][0]["findings"]
    assert finding["rule"] == "input/invalid-yaml" and "nesting depth" in finding["message"]


# -- conftest conventions: rule names, exceptions, namespaces, --combine ----

CONFTEST_POLICY = """\
package main
import rego.v1

deny_run_as_root contains msg if {
  input.kind == "Pod"
  msg := sprintf("pod %s runs as root", [input.metadata.name])
}

warn_no_team contains "no team label" if {
  input.kind == "Pod"
  not input.metadata.labels.team
}

exception contains rules if {
  input.metadata.name == "legacy"
  rules := ["run_as_root"]
}
"""


def test_named_deny_and_warn_rules_count_as_conftest_does(write: Write) -> None:
    policy = str(write("policy/main.rego", CONFTEST_POLICY))
    code, out, _ = check(policy, str(write("bad.yaml", BAD_POD)), "-o", "json")
    assert code == 1
    findings = {f["rule"]: f["severity"] for f in json.loads(out)["results"][0]["findings"]}
    assert findings == {"main.deny_run_as_root": "error", "main.warn_no_team": "warning"}


def test_named_deny_rule_in_rego_v0_blocks(write: Write) -> None:
    policy = write("v0/main.rego", 'package main\n\ndeny_x[m] {\n  m := "x"\n}\n')
    code, out, _ = check(str(policy), "--rego-version", "v0", str(write("ok.yaml", GOOD_POD)), "-o", "json")
    assert code == 1
    assert json.loads(out)["results"][0]["findings"][0]["rule"] == "main.deny_x"


def test_conftest_exception_waives_its_rule_and_is_recorded(write: Write) -> None:
    policy = str(write("policy/main.rego", CONFTEST_POLICY))
    legacy = BAD_POD.replace("name: bad", "name: legacy, labels: {team: a}")
    code, out, _ = check(policy, str(write("legacy.yaml", legacy)), "-o", "json")
    assert code == 0
    (finding,) = json.loads(out)["results"][0]["findings"]
    assert finding["rule"] == "main.deny_run_as_root" and finding["severity"] == "info"
    assert finding["ruleSeverity"] == "error"
    assert finding["exception"]["name"] == "data.main.exception"
    assert finding["exception"]["reason"] == 'data.main.exception[_][_] == "run_as_root"'


def test_trustgate_exception_waives_a_named_conftest_rule(write: Write) -> None:
    policy = write("policy/main.rego", CONFTEST_POLICY)
    config = write(
        "trustgate.yaml",
        f"""\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        kubernetes: {{schemas: false}}
        manifests:
          policies:
            - path: {policy}
        exceptions:
          - name: root-ok
            rules: [main.deny_run_as_root]
            owner: app-team@example.com
            reason: vendor image
            expires: "2999-01-01"
        """,
    )
    pod = BAD_POD.replace("name: bad", "name: bad, labels: {team: a}")
    code, out, _ = run("check", "-c", str(config), str(write("bad.yaml", pod)), "-o", "json")
    assert code == 0, out
    (finding,) = json.loads(out)["results"][0]["findings"]
    assert finding["exception"]["name"] == "root-ok" and finding["severity"] == "info"


def test_policy_under_a_hidden_or_parent_directory_is_found(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(".github/policy/main.rego", CONFTEST_POLICY)
    write("repo/bad.yaml", BAD_POD)
    monkeypatch.chdir(tmp_path / "repo")
    for policy in ("../.github/policy", str(tmp_path / ".github" / "policy")):
        code, out, _ = check(policy, "bad.yaml", "-o", "json")
        assert code == 1, (policy, out)
    monkeypatch.chdir(tmp_path)
    code, _, _ = check(".github/policy", "repo/bad.yaml")
    assert code == 1


def test_namespace_applies_across_all_policy_sources(write: Write) -> None:
    main = write("policy/main.rego", CONFTEST_POLICY)
    lib = write("lib/helpers.rego", 'package lib\nimport rego.v1\n\ndeny contains "lib" if { false }\n')
    bad = str(write("bad.yaml", BAD_POD))
    code, _, err = run("check", "--no-builtin", "-p", str(main), "-p", str(lib), "-n", "main", bad)
    assert code == 1, err
    code, _, err = run("check", "--no-builtin", "-p", str(main), "-p", str(lib), "-n", "nope", bad)
    assert code == 3 and "no policy package named nope" in err


def test_all_namespaces_overrides_namespace(write: Write) -> None:
    main = write("policy/main.rego", 'package main\nimport rego.v1\n\ndeny contains "main" if { false }\n')
    other = write("policy/other.rego", 'package other\nimport rego.v1\n\ndeny contains "other" if { true }\n')
    ok = str(write("ok.yaml", GOOD_POD))
    code, out, _ = run("check", "--no-builtin", "-p", str(main.parent), "-n", "main", ok, "-o", "json")
    assert code == 0, out
    code, out, _ = run(
        "check", "--no-builtin", "-p", str(other.parent), "-n", "main", "--all-namespaces", ok, "-o", "json"
    )
    assert code == 1
    assert {f["rule"] for f in json.loads(out)["results"][0]["findings"]} == {"other.deny"}


def test_combine_gives_own_policies_every_document_at_once(write: Write) -> None:
    policy = write(
        "policy/unique.rego",
        """\
        package main
        import rego.v1

        deny contains msg if {
          some i, j
          input[i].contents.metadata.name == input[j].contents.metadata.name
          i < j
          name := input[i].contents.metadata.name
          msg := sprintf("%s is defined twice (%s, %s)", [name, input[i].path, input[j].path])
        }
        """,
    )
    a = str(write("a.yaml", GOOD_POD))
    b = str(write("b.yaml", GOOD_POD))
    code, out, _ = check(str(policy), a, b, "-o", "json")
    assert code == 0  # each document alone is fine
    code, out, _ = check(str(policy), a, b, "--combine", "-o", "json")
    assert code == 1
    combined = [r for r in json.loads(out)["results"] if r["file"] == "Combined"]
    assert combined[0]["findings"][0]["message"] == f"good is defined twice ({a}, {b})"


# -- any structured input; exclusions ---------------------------------------

WORKFLOW = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n"
WORKFLOW_POLICY = """\
package workflows
import rego.v1

deny contains "the workflow sets no permissions" if {
  input.jobs
  not input.permissions
}
"""


def test_own_policies_check_documents_that_are_not_kubernetes_objects(write: Write) -> None:
    policy = str(write("policy/wf.rego", WORKFLOW_POLICY))
    wf = str(write("ci.yaml", WORKFLOW))
    for extra in ((), ("--no-schemas",)):
        code, out, _ = run("check", "--no-builtin", *extra, "-p", policy, wf, "-o", "json")
        assert code == 1, out
        (finding,) = json.loads(out)["results"][0]["findings"]
        assert (
            finding["rule"] == "workflows.deny" and finding["message"] == "the workflow sets no permissions"
        )
    toml = str(write("conf.toml", "[jobs.build]\nruns-on = 'x'\n"))
    code, _, _ = run("check", "--no-builtin", "-p", policy, toml)
    assert code == 1


def test_data_no_policy_checks_is_reported_not_dropped(write: Write) -> None:
    code, out, _ = run(
        "check", str(write("values.yaml", "replicas: 2\nimage: {tag: latest}\n")), "-o", "json"
    )
    assert code == 0
    (result,) = json.loads(out)["results"]
    assert result["findings"][0]["rule"] == "input/not-kubernetes"
    assert result["findings"][0]["severity"] == "info"


def test_a_document_that_looks_like_a_manifest_stays_an_error(write: Write) -> None:
    for text in ("apiVersion: v1\nmetadata: {name: x}\n", "kind: Pod\nspec: {}\n", "metadata: {name: x}\n"):
        code, out, _ = run("check", str(write("typo.yaml", text)), "-o", "json")
        assert code == 3, text
        assert json.loads(out)["results"][0]["findings"][0]["rule"] == "input/not-a-kubernetes-object"


def test_a_helm_chart_gets_a_hint_and_can_be_excluded(write: Write, tmp_path: Path) -> None:
    write("repo/app/pod.yaml", GOOD_POD)
    write("repo/chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n")
    write("repo/chart/templates/pod.yaml", "kind: {{ .Values.kind }}\n")
    repo = str(tmp_path / "repo")
    code, out, _ = run("check", "--no-builtin", "--no-schemas", repo, "-o", "json")
    assert code == 3
    errors = [r for r in json.loads(out)["results"] if r["status"] == "error"]
    assert len(errors) == 2
    assert all("helm template" in r["findings"][0]["fix"] for r in errors)
    for flags in (
        ("--exclude", "chart"),
        ("--exclude", "chart/"),
        ("--exclude", "**/Chart.yaml", "--exclude", "templates/"),
    ):
        code, out, _ = run("check", "--no-builtin", "--no-schemas", *flags, repo, "-o", "json")
        assert code == 0, (flags, out)
        assert [Path(r["file"]).name for r in json.loads(out)["results"]] == ["pod.yaml"]


def test_a_directory_argocd_renders_as_a_helm_chart_is_not_evaluated(write: Write, tmp_path: Path) -> None:
    """Argo CD's discovery takes the last of the names ending in Chart.yaml and kustomize's names:
    `values-Chart.yaml` after `kustomization.yaml` makes it `helm template` the directory, whose
    template (valid YAML, so judged as a file) becomes a privileged Pod. trustgate rendered the
    kustomization, judged the template as written, and passed."""
    write("app/kustomization.yaml", "resources: [pod.yaml]\n")
    write("app/pod.yaml", GOOD_POD)
    write("app/Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n")
    write("app/values-Chart.yaml", "privileged: true\n")
    write(
        "app/templates/pod.yaml",
        GOOD_POD.replace("good", "web")
        + '      # {{- printf "\\n      securityContext: {privileged: %v}" .Values.privileged }}\n',
    )
    app = str(tmp_path / "app")
    code, out, _ = run("check", "--no-builtin", "--no-schemas", app, "-o", "json")
    assert code == 3, out
    (error,) = [r for r in json.loads(out)["results"] if r["status"] == "error"]
    assert error["file"] == f"{app}/values-Chart.yaml"
    assert error["findings"][0]["rule"] == "input/unrendered"
    assert "is a Helm chart to Argo CD" in error["findings"][0]["message"]
    assert "rename values-Chart.yaml" in error["findings"][0]["fix"]
    # The ways out: leave the name out where no Argo CD Application takes the directory, or rename it
    # so that the kustomization comes last.
    assert run("check", "--no-builtin", "--no-schemas", "--exclude", "values-Chart.yaml", app)[0] == 0
    (tmp_path / "app/values-Chart.yaml").rename(tmp_path / "app/Chart-values.yaml")
    assert run("check", "--no-builtin", "--no-schemas", app)[0] == 0


def test_exclude_in_the_config_file(write: Write, tmp_path: Path) -> None:
    write("repo/app/pod.yaml", GOOD_POD)
    write("repo/app/cassandra.yaml", "cluster_name: test\nkind: [oops]\n")
    config = write(
        "trustgate.yaml",
        """\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        kubernetes: {schemas: false}
        manifests:
          exclude: [app/cassandra.yaml]
        """,
    )
    code, _, _ = run("check", "--no-builtin", str(tmp_path / "repo"))
    assert code == 3
    code, out, err = run("check", "--no-builtin", "-c", str(config), str(tmp_path / "repo"))
    assert code == 0, out + err


def test_malformed_toml_names_file_and_line(write: Write) -> None:
    code, out, _ = run("check", str(write("bad.toml", "a = 1\nb = [\n")), "-o", "json")
    assert code == 3
    finding = json.loads(out)["results"][0]["findings"][0]
    assert finding["rule"] == "input/invalid-toml" and "invalid TOML" in finding["message"]


def test_hidden_files_in_a_walked_directory_are_named_in_a_note(write: Write) -> None:
    """A hidden manifest is not checked by a directory walk, but never skipped silently."""
    write("deploy/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    hidden = write("deploy/.pod.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n")
    code, out, _ = run("check", "--format", "json", str(hidden.parent))
    report = json.loads(out)
    assert code == 0 and report["summary"]["documents"] == 1
    assert any("skipped 1 hidden file" in n and str(hidden) in n for n in report["notes"]), report["notes"]
    code, out, _ = run("check", "--format", "json", str(hidden))  # named: checked
    assert json.loads(out)["summary"]["documents"] == 1 and not json.loads(out)["notes"]


PRIVILEGED_POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers:\n"
    "    - name: c\n      image: nginx:1.27\n      securityContext: {privileged: true}\n"
)


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ('{"trustgate": {"lib": {"k8s": {"workload": null}}}}', "trustgate.lib.k8s.workload"),
        ('{"trustgate": {"pss": {"baseline": {"deny": []}}}}', "trustgate.pss.baseline.deny"),
        ('{"trustgate": {"pss": {"baseline": 1}}}', "trustgate.pss.baseline"),
    ],
)
def test_data_file_cannot_replace_a_bundled_rule(write: Write, data: str, path: str) -> None:
    # OPA: rego_compile_error "conflicting rule for data path ... found"; regorus let the data win.
    data_file = write("data.json", data)
    code, _, err = run("check", "--no-color", "-d", str(data_file), str(write("pod.yaml", PRIVILEGED_POD)))
    assert code == 3
    assert f"{data_file}:1: data `{path}` conflicts with rule" in err


def test_data_cannot_replace_a_user_rule_from_a_file_or_the_config(policy: str, write: Write) -> None:
    bad = str(write("bad.yaml", BAD_POD))
    data_file = write("data.yaml", "main:\n  deny: []\n")
    code, _, err = check(policy, "-d", str(data_file), bad)
    assert code == 3 and f"{data_file}:1: data `main.deny` conflicts with rule `data.main.deny`" in err
    config = write(
        "trustgate.yaml",
        f"apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  policies:\n    - path: {policy}\n"
        "  data: {main: {warn: {}}}\n",
    )
    code, _, err = run("check", "--no-builtin", "-c", str(config), bad)
    assert code == 3 and f"{config}: manifests.data: data `main.warn` conflicts" in err
    beside = write("beside.yaml", "main:\n  settings: {strict: true}\n")  # beside the rules: as OPA
    code, out, _ = check(policy, "-d", str(beside), bad)
    assert code == 1 and "no-latest" in out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_terminal_that_cannot_show_a_character_gets_its_escape_not_a_traceback(
    policy: str, write: Write, fmt: str
) -> None:
    """The text report marks results with ✓ and ✗, which a Latin-1 terminal cannot show; a name may
    hold any character (here é, which it can). (An ASCII terminal click writes UTF-8 to anyway.)"""
    path = write("café.yaml", GOOD_POD.replace("name: good", "name: café"))
    encoding = "latin-1"
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    entry = "from trustgate.cli.main import main; main()"
    argv = [sys.executable, "-c", entry, "check", "--no-builtin", "-p", policy, "-o", fmt, str(path)]
    run = subprocess.run(argv, capture_output=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr.decode(encoding)
    assert b"Traceback" not in run.stderr
    out = run.stdout.decode(encoding)  # every byte is in the terminal's encoding
    if fmt == "text":
        assert "\\u2713" in out and "1 documents: 1 passed" in out
        assert "café" in out
    else:
        assert json.loads(out)["results"][0]["name"] == "café"  # JSON escapes it as \u00e9 anyway


PRIVILEGED_POLICY = """package main

deny contains msg if {
  some c in input.spec.containers
  c.securityContext.privileged == true
  msg := sprintf("container %s is privileged", [c.name])
}

deny contains "data key 1 is danger" if input.data["1"] == "danger"
"""
POD_HEAD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
    + "spec:\n  containers:\n    - name: c\n      image: nginx:1.27\n"
)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        # (a `<<` after the key, which kubectl and kustomize read otherwise: test_cli_check_merge_keys.py)
        # kubectl applies the items of any object with `items`, but others create the Pod itself
        (
            "stray-items",
            POD_HEAD + "      securityContext: {privileged: true}\nitems: []\n",
            "container c is privileged",
        ),
        # `1: danger` is the key "1" to Kubernetes
        (
            "integer-key",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  1: danger\n",
            "data key 1 is danger",
        ),
    ],
)
def test_what_kubernetes_reads_is_what_user_policies_see(
    write: Write, name: str, text: str, message: str
) -> None:
    policy = str(write("policy/main.rego", PRIVILEGED_POLICY))
    code, out, _ = check(policy, str(write(f"{name}.yaml", text)), "--no-color")
    assert code == 1, out
    assert message in out


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("nan.yaml", POD_HEAD + "      resources: {limits: {cpu: .nan}}\n", 8),
        ("inf.json", '{"apiVersion": "v1", "kind": "Pod",\n "spec": {"x": Infinity}}', 2),
        ("binary.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  k: !!binary 'a$$'\n", 5),
    ],
)
def test_input_kubernetes_refuses_is_an_input_error_with_its_line(
    write: Write, name: str, text: str, line: int
) -> None:
    """kubectl fails on NaN, infinities and invalid base64: never a pass, never passed to a policy."""
    policy = str(write("policy/main.rego", PRIVILEGED_POLICY))
    path = write(name, text)
    code, out, _ = check(policy, str(path), "--no-color")
    assert code == 3, out
    assert f"{path}:{line}" in out


def test_a_key_set_twice_in_the_config_is_refused_but_manifests_keep_the_last(write: Write) -> None:
    """trustgate.yaml is trustgate's own file: `mode: enforce` followed by `mode: audit` (or a merge
    bringing it) is exit 3 naming the line, not a silent audit. Manifests keep kubectl's reading."""
    head = "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmode: enforce\n"
    pod = str(write("pod.yaml", PRIVILEGED_POD))
    for tail, line in (("kubernetes: {version: '1.33'}\nmode: audit\n", 5), ("<<: {mode: audit}\n", 4)):
        config = write("trustgate.yaml", head + tail)
        code, _, err = run("check", "--no-color", "-c", str(config), pod)
        assert code == 3, err
        assert f"{config}:{line}: key 'mode' is set twice in one mapping (lines 3 and {line})" in err
    twice = PRIVILEGED_POD.replace("{privileged: true}", "{privileged: false, privileged: true}")
    code, out, _ = run("check", "-o", "json", str(write("twice.yaml", twice)))
    assert code == 1
    assert "pss-baseline-privileged" in {f["rule"] for f in json.loads(out)["results"][0]["findings"]}


OWNER_POLICY = """\
package main
import rego.v1

deny contains "every ConfigMap needs an owner label" if {
  input.kind == "ConfigMap"
  not input.metadata.labels.owner
}
"""
TRIAL_POLICY = """\
package main
import rego.v1

deny contains "trial rule" if {
  input.kind == "ConfigMap"
  input.data.trial == "x"
}
"""
CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\ndata: {k: v}\n"


@pytest.mark.parametrize("trial_mode", ["warn", "audit"])
def test_a_trial_source_sharing_a_package_with_an_enforced_one_is_refused(
    write: Write, tmp_path: Path, trial_mode: str
) -> None:
    """`- {path: trial/, mode: warn}` then `- path: enforced/`, both `package main`: the enforced
    rule used to be only a warning (the first source's mode won). Now exit 3, with the way out."""
    write("trial/new.rego", TRIAL_POLICY)
    write("enforced/core.rego", OWNER_POLICY)
    manifest = str(write("cm/cm.yaml", CONFIG_MAP))
    config = write(
        "trustgate.yaml",
        f"apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmode: enforce\nmanifests:\n  policies:\n"
        f"    - {{path: trial/, mode: {trial_mode}}}\n    - path: enforced/\n",
    )
    code, _, err = run("check", "--no-color", "-c", str(config), manifest)
    assert code == 3, err
    assert f"package main is defined in {tmp_path / 'trial'} (mode {trial_mode})" in err
    assert f"and in {tmp_path / 'enforced'} (mode enforce, the top-level mode)" in err
    assert "a package of its own" in err
    # The same with the enforced policy given on the command line.
    only_trial = write(
        "trial.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  policies:\n"
        f"    - {{path: trial/, mode: {trial_mode}}}\n",
    )
    code, _, err = run("check", "-c", str(only_trial), "-p", str(tmp_path / "enforced"), manifest)
    assert code == 3 and "package main is defined in" in err


def test_sources_of_one_mode_may_share_a_package(write: Write, tmp_path: Path) -> None:
    write("a/new.rego", TRIAL_POLICY)
    write("b/core.rego", OWNER_POLICY)
    manifest = str(write("cm/cm.yaml", CONFIG_MAP))
    head = "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  policies:\n"
    same = write("same.yaml", head + "    - {path: a/, mode: warn}\n    - {path: b/, mode: warn}\n")
    code, out, err = run("check", "-c", str(same), "-o", "json", manifest)
    assert code == 0, err
    assert [f["severity"] for f in json.loads(out)["results"][0]["findings"]] == ["warning"]
    default = write("default.yaml", head + "    - path: a/\n    - path: b/\n")
    assert run("check", "-c", str(default), manifest)[0] == 1


def test_mode_flag_overrides_the_mode_of_every_source(write: Write) -> None:
    """`--mode enforce` overrides "the configured mode": a source's `mode: warn` too. Without the
    flag, the source keeps its mode."""
    write("enforced/core.rego", OWNER_POLICY)
    manifest = str(write("cm/cm.yaml", CONFIG_MAP))
    config = str(
        write(
            "trustgate.yaml",
            "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmode: enforce\nmanifests:\n  policies:\n"
            "    - {path: enforced/, mode: warn}\n",
        )
    )
    assert run("check", "-c", config, manifest)[0] == 0
    assert run("check", "-c", config, "--mode", "enforce", manifest)[0] == 1
    assert run("check", "-c", config, "--mode", "warn", manifest)[0] == 0
    _, out, _ = run("check", "--help")
    assert "overrides the configured mode and every per-source one" in " ".join(out.split())


ROOT_POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: p, namespace: shop}}
spec:
  securityContext: {{seccompProfile: {{type: RuntimeDefault}}}}
  containers:
    - name: c
      image: {image}
      securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
"""


def test_an_exception_image_glob_stays_within_path_segments(write: Write) -> None:
    """`images: ["*.acme.io/legacy/*"]` waived run-as-root for `evil/x.acme.io/legacy/rootkit:1`, a
    Docker Hub image (fnmatch's `*` crossed `/`); it still waives `registry.acme.io/legacy/app:1`."""
    config = str(
        write(
            "trustgate.yaml",
            """\
            apiVersion: trustgate.dev/v1alpha1
            kind: Config
            manifests:
              policies: [{builtin: pss-restricted}]
            exceptions:
              - name: our-registries-root
                rules: [pss-restricted-run-as-non-root]
                images: ["*.acme.io/legacy/*"]
                owner: platform@acme.io
                reason: legacy images run as root
                expires: "2099-01-01"
            """,
        )
    )
    evil = write("evil/pod.yaml", ROOT_POD.format(image="evil/x.acme.io/legacy/rootkit:1"))
    code, out, _ = run("check", "-c", config, "-o", "json", str(evil))
    assert code == 1
    finding = json.loads(out)["results"][0]["findings"][0]
    assert finding["rule"] == "pss-restricted-run-as-non-root" and "exception" not in finding
    ours = write("ours/pod.yaml", ROOT_POD.format(image="registry.acme.io/legacy/app:1"))
    code, out, _ = run("check", "-c", config, "-o", "json", str(ours))
    assert code == 0, out
    assert json.loads(out)["results"][0]["findings"][0]["exception"]["name"] == "our-registries-root"


def test_a_hidden_directory_in_a_walked_directory_is_named_in_a_note(write: Write, tmp_path: Path) -> None:
    """A privileged Pod under `deploy/.secret/` was skipped with "0 documents" and no note."""
    write("deploy/.secret/pod.yaml", PRIVILEGED_POD)
    write("deploy/.secret/more/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n")
    write("deploy/.git/config.yaml", "kind: A\n")
    deploy = tmp_path / "deploy"
    code, out, _ = run("check", "--format", "json", str(deploy))
    report = json.loads(out)
    assert code == 0 and report["summary"]["documents"] == 0
    assert report["notes"] == [
        f"skipped 2 hidden file(s) in the directories walked: {deploy}/.secret/ (2 file(s)); "
        "`kubectl apply -R` and Flux would apply them: name them to check them"
    ]
    assert run("check", str(deploy / ".secret"))[0] == 1  # named: checked


def test_what_exclude_patterns_left_out_is_named_in_a_note(write: Write, tmp_path: Path) -> None:
    """The README's patterns `[Chart.yaml, values.yaml, charts]` skipped a privileged Pod saved as
    values.yaml or under charts/ with "0 documents" and no note."""
    write("apps/shop/values.yaml", PRIVILEGED_POD)
    write("apps/shop/charts/pod.yaml", PRIVILEGED_POD)
    write("apps/shop/charts/sub/pod.yaml", PRIVILEGED_POD)
    config = write(
        "trustgate.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        "manifests:\n  exclude: [Chart.yaml, values.yaml, charts]\n",
    )
    apps = tmp_path / "apps"
    code, out, _ = run("check", "-c", str(config), "--format", "json", str(apps))
    report = json.loads(out)
    assert code == 0 and report["summary"]["documents"] == 0
    assert report["notes"] == [
        f"exclude pattern 'charts' left out 2 file(s): {apps}/shop/charts/ (2 file(s))",
        f"exclude pattern 'values.yaml' left out 1 file(s): {apps}/shop/values.yaml",
    ]


def test_an_image_with_an_unresolved_variable_is_denied(write: Write) -> None:
    """Flux post-build substitution: `image: ${IMG:=nginx:latest}` passed with only the digest
    warning (images-no-latest does not see the tag); which image runs cannot be told here."""
    pod = PRIVILEGED_POD.replace("image: nginx:1.27", "image: ${IMG:=nginx:latest}").replace(
        "securityContext: {privileged: true}", "resources: {limits: {memory: 100Mi}}"
    )
    assert "${IMG" in pod
    path = str(write("subst/pod.yaml", pod))
    code, out, _ = run("check", "-o", "json", path)
    assert code == 1
    findings = json.loads(out)["results"][0]["findings"]
    [finding] = [f for f in findings if f["rule"] == "images-unresolved-variable"]
    assert finding["severity"] == "error" and finding["line"] == 7
    assert "cannot tell which image runs" in finding["message"] and "flux envsubst" in finding["fix"]
    waiver = write(
        "trustgate.yaml",
        """\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        exceptions:
          - {name: rendered-by-flux, rules: [images-unresolved-variable], owner: o, reason: r,
             expires: "2099-01-01"}
        """,
    )
    code, out, _ = run("check", "-c", str(waiver), "-o", "json", path)
    findings = json.loads(out)["results"][0]["findings"]
    [finding] = [f for f in findings if f["rule"] == "images-unresolved-variable"]
    assert finding["exception"]["name"] == "rendered-by-flux" and finding["severity"] == "info"


def test_nothing_below_a_checked_kustomization_goes_unjudged(write: Write) -> None:
    """`check DIR` where DIR holds a kustomization: it rendered DIR and never looked below. A
    kustomization below that DIR's does not include, and a loose manifest, passed unread."""
    write("fleet/kustomization.yaml", "resources: [ns.yaml]\n")
    write("fleet/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    write("fleet/apps/prod/kustomization.yaml", "resources: [pod.yaml]\n")
    write("fleet/apps/prod/pod.yaml", PRIVILEGED_POD)
    loose = write("fleet/loose/priv.yaml", PRIVILEGED_POD.replace("name: p,", "name: q,"))
    root = loose.parent.parent
    code, out, _ = run("check", "-o", "json", str(root))
    assert code == 1, out
    report = json.loads(out)
    privileged = {
        (r["file"], r.get("renderedFrom"))
        for r in report["results"]
        if any(f["rule"] == "pss-baseline-privileged" for f in r["findings"])
    }
    assert privileged == {
        (str(root / "apps/prod/pod.yaml"), str(root / "apps/prod")),
        (str(loose), None),
    }
    assert report["summary"]["documents"] == 3  # the Namespace, the rendered Pod, the loose Pod


def test_a_named_kustomization_file_renders_its_directory(write: Write) -> None:
    kfile = write(
        "app/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [pod.yaml]\n",
    )
    write("app/pod.yaml", PRIVILEGED_POD)
    code, out, _ = run("check", "-o", "json", str(kfile))
    assert code == 1, out
    (result,) = json.loads(out)["results"]
    assert result["kind"] == "Pod" and result["renderedFrom"] == str(kfile.parent)
    assert any(f["rule"] == "pss-baseline-privileged" for f in result["findings"])


@pytest.mark.parametrize(
    ("field", "value"), [("kind", "${KIND:=Pod}"), ("apiVersion", "${API:=v1}"), ("kind", "$KIND")]
)
def test_a_variable_in_the_kind_or_api_version_is_denied(write: Write, field: str, value: str) -> None:
    """Flux post-build substitution makes `kind: ${KIND:=Pod}` a Pod when it applies it; here no schema
    or policy knew it for one, and a privileged Pod passed every rule."""
    pod = PRIVILEGED_POD.replace("kind: Pod" if field == "kind" else "apiVersion: v1", f"{field}: '{value}'")
    path = str(write("subst/pod.yaml", pod))
    code, out, _ = run("check", "-o", "json", path)
    assert code == 1, out
    findings = json.loads(out)["results"][0]["findings"]
    [finding] = [f for f in findings if f["rule"] == "kind-unresolved-variable"]
    assert finding["severity"] == "error" and finding["line"] == (2 if field == "kind" else 1)
    assert "holds a variable substituted later" in finding["message"] and "flux envsubst" in finding["fix"]
    # Even with no policy at all, it never passes silently.
    code, out, _ = run("check", "--no-builtin", "-o", "json", path)
    assert code == 1, out
    waiver = write(
        "trustgate.yaml",
        """\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        manifests: {policies: []}
        exceptions:
          - {name: rendered-by-flux, rules: [kind-unresolved-variable], owner: o, reason: r,
             expires: "2099-01-01"}
        """,
    )
    code, out, _ = run("check", "-c", str(waiver), "-o", "json", path)
    findings = json.loads(out)["results"][0]["findings"]
    [finding] = [f for f in findings if f["rule"] == "kind-unresolved-variable"]
    assert finding["exception"]["name"] == "rendered-by-flux" and finding["severity"] == "info"
    assert code == 0, out


def test_files_beside_a_kustomization_it_does_not_read_are_noted_not_judged(write: Write) -> None:
    """kubebuilder's config/default holds patches its kustomization does not use (a JSON 6902 list, a
    partial Deployment): Flux and Argo CD apply that directory only through its kustomization, so
    they were failing `check` for files never applied. They are named in a note; a chart below is
    noted too, and a loose manifest in a subdirectory is still judged."""
    write("config/default/kustomization.yaml", "resources: [ns.yaml]\n")
    write("config/default/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    write("config/default/cert_metrics_manager_patch.yaml", "- op: add\n  path: /spec/x\n  value: 1\n")
    kfile = write(
        "config/default/manager_webhook_patch.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: m, namespace: system}\nspec: {}\n",
    )
    write("config/default/charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
    write("config/default/charts/web/templates/d.yaml", "replicas: {{ .Values.replicas }}\n")
    root = kfile.parent
    code, out, _ = run("check", "-o", "json", str(root))
    assert code == 0, out
    report = json.loads(out)
    assert report["summary"]["documents"] == 1
    notes = "\n".join(report["notes"])
    assert f"2 file(s) beside {root}/kustomization.yaml that it does not read were not judged" in notes
    assert "Flux and Argo CD apply that directory only through its kustomization" in notes
    assert f"{root}/charts/web" in notes and "helm template" in notes
    loose = write("config/default/extra/priv.yaml", PRIVILEGED_POD)
    code, out, _ = run("check", "-o", "json", str(root))
    assert code == 1, out
    assert {r["file"] for r in json.loads(out)["results"] if r["findings"]} >= {str(loose)}


def test_jsonnet_is_not_judged_and_says_so(write: Write, tmp_path: Path) -> None:
    """A repository whose Argo CD Application renders Jsonnet: `check` of its directory was a pass
    ("0 documents", exit 0) with a privileged Pod inside; it is now "not evaluated" (exit 3), and
    excluding the file is the explicit way out."""
    write(
        "repo/apps/app.jsonnet",
        '{ apiVersion: "v1", kind: "Pod", metadata: { name: "p" },\n'
        '  spec: { containers: [{ name: "c", image: "nginx", securityContext: { privileged: true } }] } }\n',
    )
    repo = str(tmp_path / "repo")
    code, out, _ = run("check", repo, "--no-color")
    assert code == 3, out
    assert "input/unrendered" in out and "apps/app.jsonnet" in out
    code, out, _ = run("check", repo, "--no-color", "--exclude", "*.jsonnet")
    assert code == 0, out
    assert "*.jsonnet" in out  # the exclusion is named in a note
