"""`trustgate check --admission-policy` with policies the API server refuses when they are written
(a config error, exit 3, in its words) and ones it accepts (cross-type numeric comparisons)."""

from __future__ import annotations

import pytest
from support.admission_policy import Write, findings, run, write_policy


@pytest.mark.parametrize(
    ("spec", "refusal"),
    [
        (
            "  validations:\n  - expression: \"object.data.?on.orValue('true') == 'true' ? true : "
            'object.data.on"\n',
            "spec.validations[0].expression: must evaluate to bool but got dyn",
        ),
        (
            '  validations:\n  - expression: "true"\n    messageExpression: "object.data.tier"\n',
            "spec.validations[0].messageExpression: must evaluate to string but got dyn",
        ),
        (
            '  validations:\n  - expression: "true"\n  auditAnnotations:\n  - key: tier\n'
            '    valueExpression: "object.data.tier"\n',
            "spec.auditAnnotations[0].valueExpression: "
            "must evaluate to one of [string null_type] but got dyn",
        ),
        (
            '  matchConditions:\n  - name: tiered\n    expression: "object.data.tier"\n'
            '  validations:\n  - expression: "true"\n',
            "spec.matchConditions[0].expression: must evaluate to bool but got dyn",
        ),
        (
            "  validations:\n  - expression: \"object.data.tier in ['gold', 1]\"\n",
            "spec.validations[0].expression (line 1, column 30): expected type 'string' but found 'int'",
        ),
        (
            "  validations:\n  - expression: 'object.data.tier.matches(\"^\\\\C+$\")'\n",
            "spec.validations[0].expression (line 1, column 26): invalid matches argument",
        ),
        (
            "  validations:\n  - expression: \"object.data.tier.find('(') == ''\"\n",
            "spec.validations[0].expression (line 1, column 23): program instantiation failed",
        ),
        (
            '  matchConditions:\n  - name: a\n    expression: "true"\n  - name: a\n    expression: "true"\n'
            '  validations:\n  - expression: "true"\n',
            "spec.matchConditions[1].name: Duplicate value: 'a'",
        ),
        (
            '  matchConditions:\n  - expression: "true"\n  validations:\n  - expression: "true"\n',
            "spec.matchConditions[0].name: Required value",
        ),
        (
            "  validations:\n  - expression: \"params.tier == 'gold'\"\n",
            "spec.validations[0].expression (line 1, column 1): undeclared reference to 'params'",
        ),
    ],
)
def test_a_policy_the_api_server_refuses_is_a_config_error(write: Write, spec: str, refusal: str) -> None:
    code, report, stderr = run(write, write_policy(write, spec))
    assert code == 3, report
    assert "vap.yaml" in stderr
    assert "ValidatingAdmissionPolicy 'p'" in stderr
    assert refusal in stderr


@pytest.mark.parametrize(
    ("expression", "exit_code"),
    [
        ("size(object.data) <= 2.5", 0),  # cel.CrossTypeNumericComparisons: 1 <= 2.5
        ("size(object.data) > 1.5", 1),
        ("1u < 2.5 && -1 < 1u", 0),
    ],
)
def test_cross_type_numeric_comparisons_compile_and_compare(
    write: Write, expression: str, exit_code: int
) -> None:
    code, report, stderr = run(
        write, write_policy(write, f'  validations:\n  - expression: "{expression}"\n')
    )
    assert code == exit_code, (report, stderr)


def test_policies_the_api_server_accepts_stay_accepted(write: Write) -> None:
    spec = """\
  variables:
  - name: tier
    expression: "object.data.tier"
  - name: gold
    expression: "variables.tier == 'gold'"
  matchConditions:
  - name: example.com/has-data
    expression: "has(object.data)"
  validations:
  - expression: "variables.gold && !has(object.data.other)"
  - expression: "object.data.tier in ['gold', 'silver'] && [object.data.tier, object.data.tier].size() == 2"
    messageExpression: "'tier ' + string(object.data.tier) + ': %s'.format([1])"
  - expression: "object.data.tier.matches('^[a-z]+$') && object.data.tier.find('[a-z]+') != ''"
    messageExpression: "'%s %d'.format(['x', 1])"
  auditAnnotations:
  - key: tier
    valueExpression: "has(object.data.tier) ? 'tier ' + object.data.tier : null"
"""
    code, report, stderr = run(write, write_policy(write, spec))
    assert code == 0, (report, stderr)
    assert findings(report) == [
        {
            **findings(report)[0],
            "rule": "p/auditAnnotations",
            "message": 'audit annotations: p/tier="tier gold"',
        }
    ]
