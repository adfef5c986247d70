"""Audit annotation errors and failure messages, as k8s.io/apiserver's validating policy plugin
decides them (admission/plugin/policy/validating: validator.go, dispatcher.go)."""

from __future__ import annotations

from typing import Any

import pytest
from support.vap import binding, rule

from trustgate.policy import vap, vap_suite

_CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "default"}}


def _policies(spec: dict[str, Any], actions: list[str], failure_policy: str = "Fail") -> vap.PolicySet:
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "p"},
        "spec": {
            "failurePolicy": failure_policy,
            "matchConstraints": {"resourceRules": [rule(["CREATE"], ["configmaps"])]},
            **spec,
        },
    }
    return vap.PolicySet(
        policies={"p": vap.parse_policy(policy, file="p.yaml")},
        bindings=[vap.parse_binding(binding("b", policy="p", actions=actions), file="p.yaml")],
    )


# A string-typed valueExpression (a bare `object...` is dyn, which the API server refuses when
# the policy is written) that fails for an object without annotations.
_OWNER = {
    "validations": [{"expression": "true"}],
    "auditAnnotations": [
        {"key": "owner", "valueExpression": "'owner ' + object.metadata.annotations['owner']"}
    ],
}


@pytest.mark.parametrize("actions", [["Warn"], ["Audit"], ["Warn", "Audit"], ["Deny"]])
def test_an_audit_annotation_error_under_fail_denies_whatever_the_validation_actions(
    actions: list[str],
) -> None:
    # dispatcher.go: "When failurePolicy=fail, audit annotation errors result in deny" (the error
    # goes to deniedDecisions, not through the binding's validationActions).
    [outcome] = _policies(_OWNER, actions).review(_CONFIGMAP)
    assert (outcome.kind, outcome.rule, outcome.denies, outcome.blocks) == (
        "violation",
        "p/auditAnnotations/owner",
        True,
        True,
    )
    assert vap_suite.verdict([outcome]) == "deny"


def test_an_audit_annotation_error_under_ignore_is_left_out() -> None:
    [outcome] = _policies(_OWNER, ["Warn"], failure_policy="Ignore").review(_CONFIGMAP)
    assert outcome.kind == "ignored"
    assert not outcome.blocks
    assert vap_suite.verdict([outcome]) == "admit"


def test_a_validation_error_still_follows_the_validation_actions() -> None:
    # Only audit annotation errors bypass the actions: a validation's error under Fail warns.
    spec = {"validations": [{"expression": "object.metadata.annotations['owner'] == 'x'"}]}
    [outcome] = _policies(spec, ["Warn"]).review(_CONFIGMAP)
    assert (outcome.kind, outcome.denies, outcome.blocks) == ("violation", False, False)
    assert vap_suite.verdict([outcome]) == "warn"


def test_audit_annotation_values_are_trimmed_and_empty_ones_left_out() -> None:
    # validator.go: strings.TrimSpace of a string value; an empty one is excluded, as null is.
    spec = {
        "validations": [{"expression": "true"}],
        "auditAnnotations": [
            {"key": "padded", "valueExpression": "'  owner a \\n'"},
            {"key": "blank", "valueExpression": "' \\t '"},
        ],
    }
    annotations: dict[str, str] = {}
    assert _policies(spec, ["Deny"]).review(_CONFIGMAP, annotations=annotations) == []
    assert annotations == {"p/padded": "owner a"}


def _message(validation: dict[str, str]) -> str:
    [outcome] = _policies({"validations": [validation]}, ["Deny"]).review(_CONFIGMAP)
    return outcome.message


@pytest.mark.parametrize(
    ("validation", "message"),
    [
        # messageExpression results are trimmed (strings.TrimSpace) before the checks.
        ({"expression": "false", "messageExpression": "'  padded message  '"}, "padded message"),
        (
            {"expression": "false", "messageExpression": "'trailing newline\\n'", "message": "static"},
            "trailing newline",
        ),
        ({"expression": "false", "messageExpression": "'\\u00a0nbsp\\u3000'"}, "nbsp"),
        # A line break inside, or nothing but spaces: the static message, trimmed.
        ({"expression": "false", "messageExpression": "'two\\nlines'", "message": " static "}, "static"),
        ({"expression": "false", "messageExpression": "'   '", "message": "static"}, "static"),
        # More than 5 KiB: the static message (celconfig.MaxEvaluatedMessageExpressionSizeBytes).
        (
            {
                "expression": "false",
                "messageExpression": "lists.range(5121).map(i, 'x').join()",
                "message": "static",
            },
            "static",
        ),
        ({"expression": "false", "message": "   static with spaces   "}, "static with spaces"),
        # The default: the expression, trimmed.
        ({"expression": "  false  "}, "failed expression: false"),
    ],
)
def test_messages_are_trimmed_as_the_validator_trims_them(validation: dict[str, str], message: str) -> None:
    assert _message(validation) == message


def test_go_trim_space_leaves_what_go_does_not_call_space() -> None:
    # Go's unicode.IsSpace: no \x1c-\x1f, which Python's str.strip() would trim.
    assert _message({"expression": "false", "messageExpression": "'\\x1fsep\\x1f '"}) == "\x1fsep\x1f"
