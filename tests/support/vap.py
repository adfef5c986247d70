"""ValidatingAdmissionPolicies and their bindings for tests, built as the YAML a file would hold.

A policy names its rules and validations; `denying` gives it with the one binding (of its name) that
denies, the shape most tests need.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

API_VERSION = "admissionregistration.k8s.io/v1"


def rule(
    operations: Sequence[str],
    resources: Sequence[str],
    *,
    groups: Sequence[str] = ("",),
    versions: Sequence[str] = ("v1",),
) -> dict[str, Any]:
    """A resourceRule: `operations` on `resources` of `groups` at `versions`."""
    return {
        "apiGroups": list(groups),
        "apiVersions": list(versions),
        "operations": list(operations),
        "resources": list(resources),
    }


def policy(
    name: str,
    rules: Sequence[Mapping[str, Any]],
    validations: Sequence[Mapping[str, str]],
    *,
    failure_policy: str | None = None,
) -> dict[str, Any]:
    """A ValidatingAdmissionPolicy matching `rules`, with `validations` (expression, message...)."""
    spec: dict[str, Any] = {} if failure_policy is None else {"failurePolicy": failure_policy}
    spec["matchConstraints"] = {"resourceRules": copy.deepcopy([dict(r) for r in rules])}
    spec["validations"] = [dict(v) for v in validations]
    return {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def binding(
    name: str,
    *,
    policy: str | None = None,
    match: Mapping[str, Any] | None = None,
    actions: Sequence[str] = ("Deny",),
) -> dict[str, Any]:
    """A binding `name` of `policy` (default: the policy of the same name) with `actions` (default: deny)."""
    spec: dict[str, Any] = {"policyName": policy or name, "validationActions": list(actions)}
    if match is not None:
        spec["matchResources"] = copy.deepcopy(dict(match))
    return {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": spec,
    }


def manifests(*documents: Mapping[str, Any]) -> str:
    """`documents` as one YAML stream (`---` between them)."""
    return yaml.safe_dump_all([dict(d) for d in documents], sort_keys=False, width=1000)


def denying(
    name: str,
    rules: Sequence[Mapping[str, Any]],
    validations: Sequence[Mapping[str, str]],
    *,
    failure_policy: str | None = None,
) -> str:
    """A policy and its one binding of the same name, which denies, as YAML."""
    return manifests(policy(name, rules, validations, failure_policy=failure_policy), binding(name))


def binding_yaml(name: str, *, policy: str, actions: str = "[Deny]") -> str:
    """A binding `name` of `policy` with `actions` (YAML flow list), as the text a file would hold."""
    return (
        f"apiVersion: {API_VERSION}\n"
        "kind: ValidatingAdmissionPolicyBinding\n"
        "metadata:\n"
        f"  name: {name}\n"
        "spec:\n"
        f"  policyName: {policy}\n"
        f"  validationActions: {actions}\n"
    )
