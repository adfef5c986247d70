"""Under CI=true a test that would be skipped (a real component missing) fails instead."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

PROBE = """
import pytest
from support.components import missing

def test_needs_a_tool():
    missing("frobnicator", "apt-get install frobnicator")

def test_plain_skip():
    pytest.skip("not here")

def test_runs():
    assert True
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None) -> pytest.RunResult:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    # The project's own conftest (the rule under test) and support package, in a private tree.
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    monkeypatch.syspath_prepend(str(TESTS))
    pytester.makepyfile(test_probe=PROBE)
    return pytester.runpytest_inprocess("-ra", "-p", "no:cacheprovider")


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_missing_component_or_any_skip_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    result = _run(pytester, monkeypatch, ci)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*frobnicator is not installed (apt-get install frobnicator); under CI=true every test runs*",
            "*skipped under CI=true, where every test must run: Skipped: not here*",
        ]
    )


def test_on_a_laptop_a_missing_component_is_a_skip_with_its_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, None)
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED*frobnicator is not installed (apt-get install frobnicator)"])
