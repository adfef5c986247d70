"""GitHub Actions workflow commands: one per finding, escaped as the runner expects."""

from __future__ import annotations

import dataclasses
import re

import pytest
from report_cases import APP, doc, latest_tag

from trustgate.model import Decision, Finding, Mode, Severity
from trustgate.report import github

COMMAND = re.compile(r"^::(?P<name>[a-z]+)(?: (?P<props>[^:]*))?::(?P<data>.*)$")


def _unescape(value: str) -> str:
    # the runner's order: everything but %25 first, %25 last
    for code, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        value = value.replace(code, char)
    return value


def _parse(line: str) -> tuple[str, dict[str, str], str]:
    """Read a command back the way the Actions runner does."""
    match = COMMAND.match(line)
    assert match, f"not a workflow command: {line!r}"
    props: dict[str, str] = {}
    if match["props"]:
        for pair in match["props"].split(","):
            key, _, value = pair.partition("=")
            props[key] = _unescape(value)
    return match["name"], props, _unescape(match["data"])


@pytest.mark.parametrize(
    ("raw", "data", "prop"),
    [
        ("plain", "plain", "plain"),
        ("50%", "50%25", "50%25"),
        ("%0A literal", "%250A literal", "%250A literal"),
        ("a\nb", "a%0Ab", "a%0Ab"),
        ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
        ("img:latest", "img:latest", "img%3Alatest"),
        ("a,b", "a,b", "a%2Cb"),
        ("%:,\r\n", "%25:,%0D%0A", "%25%3A%2C%0D%0A"),
    ],
)
def test_escaping_rules(raw: str, data: str, prop: str) -> None:
    assert github.escape_data(raw) == data
    assert github.escape_property(raw) == prop
    assert _unescape(prop) == raw


def test_one_command_per_finding_then_notes_then_summary(sample_decision: Decision) -> None:
    lines = github.render(sample_decision).split("\n")
    findings = sum(len(r.findings) for r in sample_decision.results)
    assert len(lines) == findings + len(sample_decision.notes) + 1
    assert all(line.startswith("::") for line in lines[:-1])
    assert lines[-1] == "trustgate: 8 documents: 5 passed, 2 failed, 2 warnings, 1 errors"
    assert not lines[-1].startswith("::")


def test_error_annotation(sample_decision: Decision) -> None:
    first = github.render(sample_decision).split("\n")[0]
    assert first.startswith("::error file=deploy/app.yaml,line=21,title=images/no-latest::")
    name, props, message = _parse(first)
    assert name == "error"
    assert props == {"file": APP, "line": "21", "title": "images/no-latest"}
    assert message.split("\n") == [
        'Deployment/prod/web: container "web" uses image nginx:latest',
        "field: spec.template.spec.containers[0].image",
        "fix: pin the image to a digest: nginx@sha256:...",
    ]


def test_levels(sample_decision: Decision) -> None:
    parsed = [_parse(line) for line in github.render(sample_decision).split("\n")[:-1]]
    by_title = {(props.get("title"), props.get("file")): name for name, props, _ in parsed}
    assert by_title[("resources/limits", APP)] == "warning"
    assert by_title[("pods/no-privileged", "deploy/agent.yaml")] == "notice"
    assert by_title[("pods/run-as-non-root", "deploy/agent.yaml")] == "error"
    assert by_title[("input/invalid-yaml", "deploy/broken.yaml")] == "error"


def test_waived_and_expired_exceptions_are_explained(sample_decision: Decision) -> None:
    parsed = [_parse(line) for line in github.render(sample_decision).split("\n")[:-1]]
    waived = next(m for _, p, m in parsed if p.get("title") == "pods/no-privileged")
    assert (
        "waived by exception node-agent-privileged (owner team-observability, expires 2031-01-31)" in waived
    )
    expired = next(m for _, p, m in parsed if p.get("title") == "pods/run-as-non-root")
    assert "exception agent-root (owner team-observability) expired on 2024-01-01" in expired


def test_without_a_field_line_the_document_line_is_used(sample_decision: Decision) -> None:
    parsed = [_parse(line) for line in github.render(sample_decision).split("\n")[:-1]]
    expired = next(p for _, p, _ in parsed if p.get("title") == "pods/run-as-non-root")
    assert expired["line"] == "60"


def test_stdin_findings_have_no_file(sample_decision: Decision) -> None:
    parsed = [_parse(line) for line in github.render(sample_decision).split("\n")[:-1]]
    piped = [(p, m) for _, p, m in parsed if m.startswith("Deployment/piped")]
    assert len(piped) == 1
    props, message = piped[0]
    assert props == {"title": "resources/limits"}
    assert "at <stdin>:24" in message


def test_notes_are_notices(sample_decision: Decision) -> None:
    lines = github.render(sample_decision).split("\n")
    assert _parse(lines[-2]) == (
        "notice",
        {"title": "trustgate"},
        "exception agent-root expired on 2024-01-01",
    )


def test_hostile_text_cannot_end_or_start_a_command() -> None:
    finding = Finding(
        rule="rule,with:odd=chars",
        severity=Severity.ERROR,
        message="bad\n::add-mask::secret\r\n::error::fake 100%",
        source="rego",
        fix="x,y: z",
        line=7,
    )
    result = doc("dir,with/colon:s.yaml", 1, [finding])
    out = github.render(
        Decision(gate="ci", mode=Mode.ENFORCE, results=[result], notes=["n\n::stop-commands::x"])
    )
    lines = out.split("\n")
    assert len(lines) == 3
    name, props, message = _parse(lines[0])
    assert name == "error"
    assert props == {"file": "dir,with/colon:s.yaml", "line": "7", "title": "rule,with:odd=chars"}
    assert message.startswith("Deployment/prod/web: bad\n::add-mask::secret\r\n::error::fake 100%")
    assert "fix: x,y: z" in message
    assert _parse(lines[1])[2] == "n\n::stop-commands::x"


def test_windows_paths_use_forward_slashes() -> None:
    result = doc("deploy\\app.yaml", 1, [latest_tag()])
    _, props, _ = _parse(
        github.render(Decision(gate="ci", mode=Mode.ENFORCE, results=[result])).split("\n")[0]
    )
    assert props["file"] == "deploy/app.yaml"


def test_line_is_at_least_one() -> None:
    result = doc(APP, 0, [dataclasses.replace(latest_tag(), line=None)])
    _, props, _ = _parse(
        github.render(Decision(gate="ci", mode=Mode.ENFORCE, results=[result])).split("\n")[0]
    )
    assert props["line"] == "1"


def test_ansi_in_messages_is_made_visible() -> None:
    finding = Finding(rule="r/x", severity=Severity.WARNING, message="\x1b[31mred", source="rego")
    out = github.render(Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(APP, 1, [finding])]))
    assert "\x1b" not in out
    assert "\\x1b[31mred" in out


def test_passing_run_is_only_the_summary(passing_decision: Decision) -> None:
    assert (
        github.render(passing_decision) == "trustgate: 1 documents: 1 passed, 0 failed, 0 warnings, 0 errors"
    )
