"""Data-driven cases: `tests/cases/{allow,deny}/<name>/` hold a manifest, an
optional `trustgate.yaml` and `expected.yaml` (exit code and the exact sets of
error and warning rule ids). The embedded default applies when no config is
there. Add a case by adding a directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from trustgate.cli.main import main

CASES = sorted(p for p in (Path(__file__).parent.parent / "cases").glob("*/*") if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_case(case: Path) -> None:
    expected = yaml.safe_load((case / "expected.yaml").read_text())
    args = ["check", str(case / "manifest.yaml"), "--format", "json", "--kubernetes-version", "1.33"]
    if (case / "trustgate.yaml").exists():
        args += ["--config", str(case / "trustgate.yaml")]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    report = json.loads(result.stdout)
    findings = [f for r in report["results"] for f in r["findings"]]
    assert sorted({f["rule"] for f in findings if f["severity"] == "error"}) == expected["errors"]
    assert sorted({f["rule"] for f in findings if f["severity"] == "warning"}) == expected["warnings"]
    assert result.exit_code == expected["exit"]
    assert (case.parent.name == "allow") == (expected["exit"] == 0)


def test_every_bundled_deny_rule_has_a_deny_case() -> None:
    covered = set()
    for case in CASES:
        covered.update(yaml.safe_load((case / "expected.yaml").read_text())["errors"])
    for rule in (
        "pss-baseline-privileged",
        "pss-restricted-run-as-user",
        "images-no-latest",
        "resources-memory-limit",
        "schema-unknown-field",
        "schema-removed-api",
    ):
        assert rule in covered
