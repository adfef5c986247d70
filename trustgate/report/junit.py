"""The JUnit XML report, for CI systems that show test results.

One `<testsuite>` per file and one `<testcase>` per document. A document with a
blocking finding gets one `<failure>`; one that could not be evaluated gets
one `<error>`; warnings and waived findings go to `<system-out>`. This follows
the common (Jenkins/Surefire) dialect, which GitLab, Jenkins and the usual
GitHub test-report actions read; `file` and `line` on a testcase are the
widely read extension that lets GitLab link to the manifest.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from trustgate.model import NOT_EVALUATED_SOURCES, Decision, DocumentResult, Finding, Severity, Status
from trustgate.report._common import (
    by_severity,
    display_file,
    document_label,
    finding_details,
    group_by_file,
    is_waived,
    sub_decision,
    visible_controls,
)

_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def render(decision: Decision) -> str:
    """Render a decision as JUnit XML.

    Args:
        decision: the verdict to show.

    Returns:
        A UTF-8 XML document (declaration included), without a trailing newline.
    """
    total = decision.summary
    suites = ET.Element(
        "testsuites",
        {
            "name": "trustgate",
            "tests": str(total.documents),
            "failures": str(total.failed),
            "errors": str(total.errors),
            "skipped": "0",
            "time": f"{decision.duration_ms / 1000:.3f}",
        },
    )
    for file, results in group_by_file(decision.results).items():
        counts = sub_decision(decision, results).summary
        suite = ET.SubElement(
            suites,
            "testsuite",
            {
                "name": _xml(display_file(file)),
                "tests": str(counts.documents),
                "failures": str(counts.failed),
                "errors": str(counts.errors),
                "skipped": "0",
            },
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (
            ("gate", decision.gate),
            ("mode", str(decision.mode)),
            ("policyRevision", decision.policy_revision),
        ):
            if value:
                ET.SubElement(properties, "property", {"name": name, "value": _xml(value)})
        for result in results:
            _testcase(suite, file, result)
    ET.indent(suites)
    return _DECLARATION + ET.tostring(suites, encoding="unicode")


def _testcase(suite: ET.Element, file: str, result: DocumentResult) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": _xml(display_file(file)),
            "name": _xml(document_label(result)),
            "file": _xml(display_file(file)),
            "line": str(result.source.line),
        },
    )
    findings = by_severity(result.findings)
    status = result.status
    if status is Status.ERROR:
        causes = [f for f in findings if f.source in NOT_EVALUATED_SOURCES]
        _problem(case, "error", causes, findings, result)
    elif status is Status.FAILED:
        causes = [f for f in findings if f.severity is Severity.ERROR]
        _problem(case, "failure", causes, findings, result)
    quiet = [
        f for f in findings if f.severity is not Severity.ERROR and f.source not in NOT_EVALUATED_SOURCES
    ]
    if quiet:
        out = ET.SubElement(case, "system-out")
        out.text = _xml("\n".join(_describe(f, result) for f in quiet))


def _problem(
    case: ET.Element, tag: str, causes: list[Finding], findings: list[Finding], result: DocumentResult
) -> None:
    first = causes[0]
    message = f"{first.rule}: {first.message}"
    if len(causes) > 1:
        message += f" (and {len(causes) - 1} more)"
    element = ET.SubElement(case, tag, {"message": _xml(message), "type": _xml(first.rule)})
    element.text = _xml("\n".join(_describe(f, result) for f in findings))


def _describe(finding: Finding, result: DocumentResult) -> str:
    word = "waived" if is_waived(finding) else str(finding.severity)
    lines = [f"{word} {finding.rule}: {finding.message}"]
    lines.extend(f"  {detail}" for detail in finding_details(finding, result))
    return "\n".join(lines)


def _xml(text: str) -> str:
    # ElementTree escapes markup but not characters XML 1.0 forbids outright (NUL, ESC, ...).
    return visible_controls(text, keep="\n\t")
