"""The human report: grouped by file, short when everything passes, colour on request."""

from __future__ import annotations

import re

from report_cases import AGENT, APP, BROKEN, CLEAN, doc, latest_tag, no_limits

from trustgate.model import Decision, Finding, Mode, Severity
from trustgate.report import text

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _block(out: str, header_start: str) -> list[str]:
    """The lines of one file's block, from its header to the next blank line."""
    lines = out.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
    return lines[start:end]


def test_groups_by_file_in_input_order(sample_decision: Decision) -> None:
    out = text.render(sample_decision)
    headers = [line for line in out.split("\n") if line and not line.startswith(" ")]
    assert headers[0].startswith(f"{APP}  (3 documents: 2 passed, 1 failed, 1 warning)")
    assert headers[1].startswith(f"{AGENT}  (2 documents: 1 passed, 1 failed)")
    assert headers[2].startswith(f"{BROKEN}  (1 document: 0 passed, 1 not evaluated)")
    assert headers[3].startswith("<stdin>  (1 document: 1 passed, 1 warning)")
    assert headers[4] == f"✓ {CLEAN}: 1 document passed"


def test_failing_document_shows_every_detail(sample_decision: Decision) -> None:
    block = _block(text.render(sample_decision), APP)
    assert block[1] == f"  ✗ Deployment/prod/web  {APP}:1"
    error = block.index('    ✗ error    images/no-latest  container "web" uses image nginx:latest')
    assert block[error + 1].strip() == f"at {APP}:21  spec.template.spec.containers[0].image"
    # the fix hint is on its own, indented line
    assert block[error + 2] == " " * 15 + "fix: pin the image to a digest: nginx@sha256:..."
    warning = block.index('    ! warning  resources/limits  container "web" has no memory limit')
    assert warning > error, "errors are listed before warnings"
    assert block[warning + 2].strip() == "fix: set resources.limits.memory"
    # the two clean documents are counted, not listed
    assert block[-1] == "  ✓ 2 other documents passed"
    assert "Service/prod/web" not in "\n".join(block)
    assert "ConfigMap" not in "\n".join(block)


def test_waived_finding_names_exception_owner_and_expiry(sample_decision: Decision) -> None:
    block = "\n".join(_block(text.render(sample_decision), AGENT))
    assert "  ✓ DaemonSet/kube-system/agent  deploy/agent.yaml:1" in block
    assert '    · waived   pods/no-privileged  container "agent" runs privileged' in block
    assert (
        "waived by exception node-agent-privileged (owner team-observability, expires 2031-01-31): "
        "needs host access for eBPF"
    ) in block


def test_expired_exception_is_shown_and_does_not_waive(sample_decision: Decision) -> None:
    block = "\n".join(_block(text.render(sample_decision), AGENT))
    assert "  ✗ DaemonSet/kube-system/agent-2  deploy/agent.yaml:60" in block
    assert '    ✗ error    pods/run-as-non-root  container "agent" may run as root' in block
    assert "exception agent-root (owner team-observability) expired on 2024-01-01" in block
    # no line known for the field: the path is still shown
    assert "at spec.template.spec.securityContext" in block


def test_input_error_is_marked_not_evaluated(sample_decision: Decision) -> None:
    block = _block(text.render(sample_decision), BROKEN)
    assert block[1] == f"  ✗ document 1  {BROKEN}:1  could not be evaluated"
    assert block[2] == "    ✗ error    input/invalid-yaml  mapping values are not allowed here"
    assert block[3].strip() == f"at {BROKEN}:3"


def test_stdin_is_named_stdin(sample_decision: Decision) -> None:
    block = "\n".join(_block(text.render(sample_decision), "<stdin>"))
    assert "  ! Deployment/piped  <stdin>:4" in block
    assert "at <stdin>:24  spec.template.spec.containers[0].resources" in block
    assert " -:" not in block


def test_ends_with_summary_then_notes(sample_decision: Decision) -> None:
    lines = text.render(sample_decision).split("\n")
    assert lines[-2] == "8 documents: 5 passed, 2 failed, 2 warnings, 1 errors"
    assert lines[-1] == "note: exception agent-root expired on 2024-01-01"


def test_all_passing_is_one_line_per_file_plus_summary(passing_decision: Decision) -> None:
    assert text.render(passing_decision) == (
        f"✓ {CLEAN}: 1 document passed\n\n1 documents: 1 passed, 0 failed, 0 warnings, 0 errors"
    )


def test_two_thousand_passing_documents_do_not_flood() -> None:
    results = [
        doc(f"deploy/big-{i % 2}.yaml", 1 + 20 * i, [], name=f"web-{i}", index=i // 2) for i in range(2000)
    ]
    results.append(doc(APP, 1, [latest_tag()], name="bad", index=1000))
    out = text.render(Decision(gate="ci", mode=Mode.ENFORCE, results=results))
    assert len(out.split("\n")) < 20
    assert "✓ deploy/big-0.yaml: 1000 documents passed" in out
    assert "✓ deploy/big-1.yaml: 1000 documents passed" in out
    assert "web-17" not in out
    assert out.split("\n")[-1] == "2001 documents: 2000 passed, 1 failed, 0 warnings, 0 errors"


def test_many_clean_files_fold_into_one_line() -> None:
    count = text.MAX_CLEAN_FILES_LISTED + 1
    results = [doc(f"deploy/f{i}.yaml", 1, [], name=f"n{i}") for i in range(count)]
    results.append(doc("deploy/f0.yaml", 9, [], name="second", index=1))  # same file: still one file
    out = text.render(Decision(gate="ci", mode=Mode.ENFORCE, results=results))
    assert out.split("\n")[0] == f"✓ {count} files passed with no findings ({count + 1} documents)"
    assert "deploy/f3.yaml" not in out


def test_few_clean_files_are_listed_by_name() -> None:
    results = [doc(f"deploy/f{i}.yaml", 1, [], name=f"n{i}") for i in range(3)]
    out = text.render(Decision(gate="ci", mode=Mode.ENFORCE, results=results))
    for i in range(3):
        assert f"✓ deploy/f{i}.yaml: 1 document passed" in out


def test_passing_document_with_info_finding_is_listed() -> None:
    audit = Finding(
        rule="images/no-latest",
        severity=Severity.INFO,
        rule_severity=Severity.ERROR,
        message="image uses :latest",
        source="rego",
        note="audit mode: not enforced",
    )
    out = text.render(Decision(gate="ci", mode=Mode.AUDIT, results=[doc(APP, 1, [audit]), doc(APP, 9, [])]))
    assert "  ✓ Deployment/prod/web  deploy/app.yaml:1" in out
    assert "    · info     images/no-latest  image uses :latest" in out
    assert "note: audit mode: not enforced" in out
    assert "  ✓ 1 other document passed" in out


def test_rendered_documents_name_their_kustomization() -> None:
    from trustgate.model import DocumentResult, Source

    result = DocumentResult(
        source=Source(file="overlays/prod/kustomization.yaml", line=3, rendered_from="overlays/prod"),
        api_version="apps/v1",
        kind="Deployment",
        namespace="prod",
        name="web",
        findings=[latest_tag()],
    )
    out = text.render(Decision(gate="ci", mode=Mode.ENFORCE, results=[result]))
    assert "(rendered from overlays/prod)" in out


def test_no_ansi_without_color(sample_decision: Decision) -> None:
    assert "\x1b" not in text.render(sample_decision)
    assert "\x1b" not in text.render(sample_decision, color=False)


def test_color_marks_errors_warnings_info_and_headers(sample_decision: Decision) -> None:
    out = text.render(sample_decision, color=True)
    assert "\x1b[31m✗ error  \x1b[0m" in out  # red errors
    assert "\x1b[33m! warning\x1b[0m" in out  # yellow warnings
    assert "\x1b[2m· waived \x1b[0m" in out  # dim waived/info
    assert f"\x1b[1m{APP}\x1b[0m" in out  # bold file header
    assert "\x1b[1m\x1b[31m8 documents:" in out  # a failing summary is bold red


def test_color_changes_nothing_but_escape_codes(sample_decision: Decision) -> None:
    coloured = text.render(sample_decision, color=True)
    assert ANSI.sub("", coloured) == text.render(sample_decision)


def test_passing_summary_is_green_when_coloured(passing_decision: Decision) -> None:
    assert "\x1b[1m\x1b[32m1 documents:" in text.render(passing_decision, color=True)


def test_terminal_escapes_from_manifests_are_neutralised() -> None:
    hostile = Finding(
        rule="names/valid",
        severity=Severity.ERROR,
        message="bad name\x1b[2J\x1b]0;pwned\x07 here\u202e",
        source="schema",
    )
    result = doc(APP, 1, [hostile], name="evil\x1b[31m")
    out = text.render(Decision(gate="ci", mode=Mode.ENFORCE, results=[result]))
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\u202e" not in out
    assert "evil\\x1b[31m" in out
    assert "bad name\\x1b[2J\\x1b]0;pwned\\x07 here\\u202e" in out


def test_multiline_message_stays_indented() -> None:
    finding = Finding(rule="r/x", severity=Severity.ERROR, message="first\nsecond", source="rego")
    out = text.render(Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(APP, 1, [finding])]))
    lines = out.split("\n")
    first = next(i for i, line in enumerate(lines) if line.endswith("first"))
    assert lines[first + 1] == " " * 15 + "second"


def test_empty_decision_is_just_the_summary() -> None:
    out = text.render(Decision(gate="ci", mode=Mode.ENFORCE, results=[], notes=["no manifests found"]))
    assert out == "0 documents: 0 passed, 0 failed, 0 warnings, 0 errors\nnote: no manifests found"


def test_warning_only_document_is_listed_with_warning_marker() -> None:
    out = text.render(Decision(gate="ci", mode=Mode.WARN, results=[doc(APP, 5, [no_limits()])]))
    assert "  ! Deployment/prod/web  deploy/app.yaml:5" in out
    assert out.split("\n")[-1] == "1 documents: 1 passed, 0 failed, 1 warnings, 0 errors"


def test_a_line_break_in_a_file_name_never_starts_a_line_of_the_report() -> None:
    """A directory named `x\\n\\n1 documents: 1 passed, ...` must not forge the summary, nor any line
    of its own: names, labels and notes are one line each; messages keep their indented lines."""
    from trustgate.model import DocumentResult, Source

    forged = "x\n\n1 documents: 1 passed, 0 failed, 0 warnings, 0 errors"
    finding = Finding(rule="r/x", severity=Severity.ERROR, message="bad", source="rego", line=3)
    result = DocumentResult(
        source=Source(file=f"{forged}/pod.yaml", line=1, rendered_from=forged),
        api_version="v1",
        kind="Pod",
        namespace=None,
        name="p\nq",
        findings=[finding],
    )
    decision = Decision(
        gate="ci", mode=Mode.ENFORCE, results=[result], notes=[f"skipped {forged}/.hidden.yaml"]
    )
    out = text.render(decision)
    lines = out.split("\n")
    assert [line for line in lines if line.startswith("1 documents")] == [
        "1 documents: 0 passed, 1 failed, 0 warnings, 0 errors"
    ]
    assert "x\\x0a\\x0a1 documents: 1 passed" in lines[0]
    assert "Pod/p\\x0aq" in lines[1] and "(rendered from x\\x0a\\x0a1 documents" in lines[1]
    assert any(line.strip().startswith("at x\\x0a\\x0a1 documents") for line in lines)
    assert lines[-1].startswith("note: skipped x\\x0a\\x0a1 documents")
    assert len(lines) == 7  # header, document, finding, `at`, blank, summary, note
