"""JUnit XML: a suite per file, a case per document, parsed back to check it."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

from report_cases import AGENT, APP, BROKEN, CLEAN, doc, latest_tag, no_limits

from trustgate.model import Decision, Finding, Mode, Severity
from trustgate.report import junit


def _parse(decision: Decision) -> ET.Element:
    out = junit.render(decision)
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(out.encode("utf-8"))


def _case(root: ET.Element, suite: str, name: str) -> ET.Element:
    for s in root.iter("testsuite"):
        if s.get("name") == suite:
            for case in s.iter("testcase"):
                if case.get("name") == name:
                    return case
    raise AssertionError(f"no testcase {suite} / {name}")


def test_totals_on_testsuites(sample_decision: Decision) -> None:
    root = _parse(sample_decision)
    assert root.tag == "testsuites"
    assert root.attrib == {
        "name": "trustgate",
        "tests": "8",
        "failures": "2",
        "errors": "1",
        "skipped": "0",
        "time": "1.234",
    }


def test_one_suite_per_file_with_its_counts(sample_decision: Decision) -> None:
    suites = {s.get("name"): s for s in _parse(sample_decision).findall("testsuite")}
    assert list(suites) == [APP, AGENT, BROKEN, "<stdin>", CLEAN]
    assert {k: suites[APP].get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "3",
        "failures": "1",
        "errors": "0",
        "skipped": "0",
    }
    assert suites[BROKEN].get("errors") == "1"
    assert suites[CLEAN].get("failures") == "0"
    for suite in suites.values():
        assert int(suite.get("tests", "-1")) == len(suite.findall("testcase"))
        assert int(suite.get("failures", "-1")) == len(suite.findall("testcase/failure"))
        assert int(suite.get("errors", "-1")) == len(suite.findall("testcase/error"))
    props = {p.get("name"): p.get("value") for p in suites[APP].iter("property")}
    assert props == {"gate": "ci", "mode": "enforce", "policyRevision": "abc123"}


def test_one_case_per_document(sample_decision: Decision) -> None:
    root = _parse(sample_decision)
    cases = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert cases == [
        (APP, "Deployment/prod/web"),
        (APP, "Service/prod/web"),
        (APP, "ConfigMap/prod/web-config"),
        (AGENT, "DaemonSet/kube-system/agent"),
        (AGENT, "DaemonSet/kube-system/agent-2"),
        (BROKEN, "document 1"),
        ("<stdin>", "Deployment/piped"),
        (CLEAN, "Namespace/prod"),
    ]
    web = _case(root, APP, "Deployment/prod/web")
    assert web.get("file") == APP
    assert web.get("line") == "1"


def test_failing_document_has_one_failure_with_all_findings(sample_decision: Decision) -> None:
    web = _case(_parse(sample_decision), APP, "Deployment/prod/web")
    failures = web.findall("failure")
    assert len(failures) == 1
    failure = failures[0]
    assert failure.get("message") == 'images/no-latest: container "web" uses image nginx:latest'
    assert failure.get("type") == "images/no-latest"
    body = failure.text or ""
    assert 'error images/no-latest: container "web" uses image nginx:latest' in body
    assert f"at {APP}:21  spec.template.spec.containers[0].image" in body
    assert "fix: pin the image to a digest" in body
    assert "warning resources/limits" in body
    out = web.findtext("system-out") or ""
    assert 'warning resources/limits: container "web" has no memory limit' in out
    assert "images/no-latest" not in out
    assert web.find("error") is None


def test_passing_documents_are_empty_cases(sample_decision: Decision) -> None:
    service = _case(_parse(sample_decision), APP, "Service/prod/web")
    assert list(service) == []


def test_waived_finding_goes_to_system_out(sample_decision: Decision) -> None:
    agent = _case(_parse(sample_decision), AGENT, "DaemonSet/kube-system/agent")
    assert agent.find("failure") is None
    out = agent.findtext("system-out") or ""
    assert "waived pods/no-privileged" in out
    assert "node-agent-privileged (owner team-observability, expires 2031-01-31)" in out


def test_expired_exception_fails_and_says_so(sample_decision: Decision) -> None:
    agent2 = _case(_parse(sample_decision), AGENT, "DaemonSet/kube-system/agent-2")
    failure = agent2.find("failure")
    assert failure is not None
    assert "expired on 2024-01-01" in (failure.text or "")


def test_input_error_is_an_error_element(sample_decision: Decision) -> None:
    broken = _case(_parse(sample_decision), BROKEN, "document 1")
    assert broken.find("failure") is None
    error = broken.find("error")
    assert error is not None
    assert error.get("message") == "input/invalid-yaml: mapping values are not allowed here"
    assert error.get("type") == "input/invalid-yaml"
    assert f"at {BROKEN}:3" in (error.text or "")


def test_warning_only_document_passes_with_system_out(sample_decision: Decision) -> None:
    piped = _case(_parse(sample_decision), "<stdin>", "Deployment/piped")
    assert piped.find("failure") is None
    assert piped.find("error") is None
    assert "at <stdin>:24" in (piped.findtext("system-out") or "")


def test_several_errors_are_counted_in_the_message() -> None:
    second = dataclasses.replace(latest_tag(), rule="images/signed", message="image is not signed")
    root = _parse(Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(APP, 1, [latest_tag(), second])]))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message", "").endswith("(and 1 more)")
    assert "images/signed: image is not signed" in (failure.text or "")


def test_markup_is_escaped_and_round_trips() -> None:
    nasty = "a <b> & \"c\" 'd' ]]> </failure>"
    finding = Finding(rule="r/<x>", severity=Severity.ERROR, message=nasty, source="rego", fix=nasty)
    result = doc('dir/"q"&<f>.yaml', 1, [finding], name="n&<m>")
    root = _parse(Decision(gate="ci", mode=Mode.ENFORCE, results=[result], policy_revision="<rev>"))
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("classname") == 'dir/"q"&<f>.yaml'
    assert case.get("name") == "Deployment/prod/n&<m>"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == f"r/<x>: {nasty}"
    assert f"fix: {nasty}" in (failure.text or "")


def test_characters_xml_forbids_are_made_visible() -> None:
    finding = Finding(
        rule="r/x", severity=Severity.WARNING, message="nul\x00 esc\x1b[31m bell\x07", source="rego"
    )
    out = junit.render(
        Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(APP, 1, [finding], name="a\x0bb")])
    )
    root = ET.fromstring(out.encode("utf-8"))  # would raise on a raw control character
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == "Deployment/prod/a\\x0bb"
    assert "nul\\x00 esc\\x1b[31m bell\\x07" in (case.findtext("system-out") or "")


def test_multiline_attribute_survives() -> None:
    finding = Finding(rule="r/x", severity=Severity.ERROR, message="line one\nline two", source="rego")
    root = _parse(Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(APP, 1, [finding])]))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == "r/x: line one\nline two"


def test_empty_decision_is_an_empty_testsuites() -> None:
    root = _parse(Decision(gate="ci", mode=Mode.ENFORCE, results=[]))
    assert root.get("tests") == "0"
    assert root.findall("testsuite") == []


def test_warning_mode_document() -> None:
    root = _parse(Decision(gate="ci", mode=Mode.WARN, results=[doc(APP, 1, [no_limits()])]))
    assert root.get("failures") == "0"
    assert "resources/limits" in (root.findtext("testsuite/testcase/system-out") or "")
