"""Kubernetes' CEL library and cel-go's conversions through `check --admission-policy`.

Each case is a ValidatingAdmissionPolicy (failurePolicy Fail, action Deny) over one ConfigMap,
decided as the API server decides it: a false allow of the old library is now a deny (exit 1),
a false deny a pass (exit 0).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from support.admission_policy import BASE, CONFIGMAP_METADATA, Write, configmap_policy

from trustgate.cli.main import main

POLICY = configmap_policy("library", "  validations:\n  - expression: {expression}\n", binding="library")
CONFIGMAP = CONFIGMAP_METADATA + "data:\n  v: {value}\n"


@pytest.mark.parametrize(
    ("expression", "value", "code"),
    [
        # false allows: Kubernetes refuses these values
        ("isSemver(object.data.v, true)", "1-rc", 1),
        ("isSemver(object.data.v, true)", "1.2+b", 1),
        ("isSemver(object.data.v, true)", "v", 1),
        ("isSemver(object.data.v, true)", "99999999999999999999.0.0", 1),
        ("int(object.data.v) <= 10", " 5", 1),
        ("uint(object.data.v) <= 10u", "+5", 1),
        ("double(object.data.v) < 2.0", " 1.5", 1),
        ("!format.uri().validate(object.data.v).hasValue()", "https://example.com/%zz", 1),
        ("!format.byte().validate(object.data.v).hasValue()", "", 1),
        ("!format.datetime().validate(object.data.v).hasValue()", "2024-01-01 10:00:00Z", 1),
        ("string(duration(object.data.v)) != '1.5s'", "1500ms", 1),
        ("object.data.v.lastIndexOf('a', 3) != -1", "abc", 1),  # cel-go: -1 at the end
        ("size(object.data.v.reverse()) == 3", "abc", 1),  # strings v2: no reverse on strings
        # false denies: Kubernetes accepts these
        ("!format.uuid().validate(object.data.v).hasValue()", "123e4567e89b12d3a456426614174000", 0),
        ("!format.dns1123LabelPrefix().validate(object.data.v).hasValue()", "ab_-", 0),
        ("[duration(object.data.v), duration('1s')].sum() < duration('1h')", "1m", 0),
        ("[duration(object.data.v), duration('1h')].min() == duration(object.data.v)", "1m", 0),
        ("int(duration(object.data.v)) == 1000000000", "1s", 0),
        ("bool(object.data.v)", "T", 0),
        ("object.data.v.indexOf('', 5) == 5", "abc", 0),
        ("object.data.v.lastIndexOf('', 7) == 7", "abc", 0),
        # unchanged
        ("isSemver(object.data.v, true)", "v1.2", 0),
        ("int(object.data.v) <= 10", "5", 0),
    ],
)
def test_admission_policy_decides_as_the_api_server(
    write: Write, expression: str, value: str, code: int
) -> None:
    policy = write("policy.yaml", POLICY.format(expression=json.dumps(expression)))
    manifests = write("cm.yaml", CONFIGMAP.format(value=json.dumps(value)))
    result = CliRunner().invoke(
        main, [*BASE, "--admission-policy", str(policy), str(manifests)], catch_exceptions=False
    )
    report: Any = json.loads(result.stdout)
    assert result.exit_code == code, report
    rules = [f["rule"] for r in report["results"] for f in r["findings"]]
    assert rules == (["library/0"] if code else []), report


# The strings library's answers that changed between cel-go releases, by the target version
# (`--kubernetes-version`; cel-go's ext/strings.go: #1052 in v0.22, Kubernetes 1.32 pins v0.22.0;
# #1173 in v0.26, Kubernetes 1.34 on) and the runtime's own that cel-go never gave (substring
# to the end, split of an empty string). Ignore shows a false allow where an error was ignored.
@pytest.mark.parametrize(
    ("expression", "value", "version", "failure", "code"),
    [
        # lastIndexOf in an empty string: an error until cel-go v0.26, -1 since (cel-spec's
        # string_ext conformance: `''.lastIndexOf('@@') == -1`)
        ("object.data.v.lastIndexOf('.') != -1", "", "1.35", "Ignore", 1),
        ("object.data.v.lastIndexOf('.') == -1", "", "1.35", "Fail", 0),
        ("object.data.v.lastIndexOf('.') == -1", "", "1.33", "Fail", 1),
        ("object.data.v.lastIndexOf('.') != -1", "", "1.33", "Ignore", 0),
        # an offset at or past the end: an error before cel-go v0.22, -1 since
        ("object.data.v.indexOf('a', 3) == -1", "abc", "1.31", "Fail", 1),
        ("object.data.v.indexOf('x') == -1", "", "1.31", "Fail", 1),
        ("object.data.v.lastIndexOf('a', 3) == -1", "abc", "1.31", "Fail", 1),
        ("object.data.v.indexOf('a', 3) == -1", "abc", "1.32", "Fail", 3),  # not known which
        ("object.data.v.indexOf('a', 3) == -1", "abc", "1.33", "Fail", 0),
        ("object.data.v.indexOf('a', 1) == -1", "abc", "1.31", "Fail", 0),
        # substring to the end of the string (Go's runes[start:end], end <= size)
        (
            "object.data.v.substring(size(object.data.v) - 4, size(object.data.v)) != '.exe'",
            "a.exe",
            "1.35",
            "Ignore",
            1,
        ),
        ("object.data.v.substring(0, 3) == 'abc'", "abc", "1.35", "Fail", 0),
        ("object.data.v.substring(0, 4) == 'abc'", "abc", "1.35", "Fail", 1),
        # Go's strings.Split("", ""): no pieces
        ("size(object.data.v.split('')) > 0", "", "1.35", "Fail", 1),
        ("object.data.v.split('') == []", "", "1.35", "Fail", 0),
    ],
)
def test_strings_library_decides_as_the_target_api_server(
    write: Write, expression: str, value: str, version: str, failure: str, code: int
) -> None:
    policy = write(
        "policy.yaml",
        configmap_policy(
            "library",
            f"  validations:\n  - expression: {json.dumps(expression)}\n",
            binding="library",
            failure=failure,
        ),
    )
    manifests = write("cm.yaml", CONFIGMAP.format(value=json.dumps(value)))
    args = [*BASE, "--kubernetes-version", version, "--admission-policy", str(policy), str(manifests)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    report: Any = json.loads(result.stdout)
    assert result.exit_code == code, report
    findings = [f for r in report["results"] for f in r["findings"] if f["severity"] != "info"]
    if code == 3:
        assert any("does not know which" in f["message"] for f in findings), report
    else:
        assert [f["rule"] for f in findings] == (["library/0"] if code else []), report
