"""`trustgate policy test`: the bundled library's own tests and a user's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]
POLICIES = Path(__file__).parent.parent.parent / "policies"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_bundled_library_tests_pass() -> None:
    code, out, _ = run("policy", "test", str(POLICIES), "--format", "json")
    report = json.loads(out)
    assert code == 0, [r for r in report["results"] if not r["passed"]]
    assert report["summary"]["failed"] == 0
    packages = {r["package"] for r in report["results"]}
    assert {
        "trustgate.pss.baseline_test",
        "trustgate.pss.restricted_test",
        "trustgate.supplychain_test",
        "trustgate.lib.k8s_test",
    } <= packages
    assert report["summary"]["tests"] >= 100


def test_every_bundled_policy_file_has_tests_beside_it() -> None:
    for rego in POLICIES.rglob("*.rego"):
        if not rego.name.endswith("_test.rego"):
            assert rego.with_name(rego.stem + "_test.rego").exists(), rego


def test_failing_test_exits_one_and_says_why(write: Write) -> None:
    write("p/main.rego", 'package main\nimport rego.v1\ndeny contains "pod" if input.kind == "Pod"\n')
    tests = write(
        "p/main_test.rego",
        "package main_test\nimport rego.v1\nimport data.main\n"
        'test_denies if { "pod" in main.deny with input as {"kind": "Pod"} }\n'
        'test_wrong if { count(main.deny) == 2 with input as {"kind": "Pod"} }\n',
    )
    code, out, _ = run("policy", "test", str(tests.parent), "-v")
    assert code == 1
    assert "ok   data.main_test.test_denies" in out
    assert "FAIL data.main_test.test_wrong" in out and "undefined" in out
    assert "1 passed, 1 failed" in out


def test_rego_v0_tests_see_the_library(write: Write) -> None:
    # A v0 source once had no library: a rule on it was undefined, and a test of it failed.
    write(
        "p/main.rego",
        "package main\nimport data.trustgate.lib.k8s\n"
        'deny[msg] { k8s.containers[_].container.securityContext.privileged; msg := "privileged" }\n',
    )
    tests = write(
        "p/main_test.rego",
        "package main_test\nimport data.main\n"
        'test_denies { main.deny["privileged"] with input as {"apiVersion": "v1", "kind": "Pod", '
        '"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i", '
        '"securityContext": {"privileged": true}}]}} }\n',
    )
    code, out, _ = run("policy", "test", "--rego-version", "v0", str(tests.parent), "-v")
    assert "ok   data.main_test.test_denies" in out
    assert code == 0


def test_no_tests_found_exits_three(write: Write) -> None:
    policy = write("p/only.rego", "package only\nimport rego.v1\ndeny contains 1 if false\n")
    code, out, _ = run("policy", "test", str(policy))
    assert code == 3 and "no tests found" in out


def test_broken_policy_exits_three_with_location(write: Write) -> None:
    bad = write("p/bad_test.rego", "package bad_test\ntest_x if {\n")
    code, _, err = run("policy", "test", str(bad.parent))
    assert code == 3 and f"{bad}:" in err


def test_policy_test_finds_tests_under_a_parent_or_hidden_directory(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(".github/policy/main_test.rego", "package main_test\nimport rego.v1\n\ntest_ok if { true }\n")
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    code, out, _ = run("policy", "test", "../.github/policy")
    assert code == 0, out
    assert "1 passed, 0 failed" in out
