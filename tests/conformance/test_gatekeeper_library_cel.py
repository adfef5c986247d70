"""The gatekeeper-library templates that carry both Rego and CEL, run with each engine and with both.

The 7 Pod Security templates and `general/requiredlabels` hold K8sNativeValidation
code beside their Rego; their suites must pass whichever code runs, and with
`both` no case may find the two disagreeing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main

LIBRARY = Path(__file__).parent / "gatekeeper-library"
SUITES = [LIBRARY / "pod-security-policy", LIBRARY / "general" / "requiredlabels"]


@pytest.mark.parametrize("engine", ["cel", "both"])
def test_cel_library_suites_pass(engine: str) -> None:
    args = ["policy", "test", *map(str, SUITES), "--gatekeeper-engine", engine, "--format", "json"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    report = json.loads(result.stdout)
    suites = report["suites"]
    assert len(suites) == 8
    failures = [
        (suite["path"], test["name"], case["name"], case["error"])
        for suite in suites
        for test in suite["tests"]
        for case in test["cases"]
        if not case["passed"]
    ]
    assert not [s["error"] for s in suites if s["error"]]
    assert not [t["error"] for s in suites for t in s["tests"] if t["error"]]
    assert not failures
    assert sum(len(t["cases"]) for s in suites for t in s["tests"]) >= 55
    assert result.exit_code == 0
