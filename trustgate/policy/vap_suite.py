"""Test suites for ValidatingAdmissionPolicies: objects and the verdict the policies must give each.

Owns one file format, `trustgate.dev/v1alpha1` `AdmissionPolicyTest`, and
running it with the same evaluator as `check` (`vap.PolicySet.review`):

    apiVersion: trustgate.dev/v1alpha1
    kind: AdmissionPolicyTest
    policies: [policy.yaml]        # VAPs, bindings, params, Namespaces (files or dirs)
    tests:
      - name: too-many-replicas
        object: {apiVersion: apps/v1, kind: Deployment, ...}   # or  file: deploy.yaml
        expect: deny               # admit | deny | warn | audit | unevaluable
        messages: ["replicas"]     # optional: regular expressions each outcome list must match
        operation: CREATE          # optional: CREATE (the default), or DELETE of the object:
                                   # `object` null and `oldObject` the object, as the API server
                                   # runs a policy on a DELETE its rules name

The verdict of one object is that of its outcomes together: `unevaluable`
when one could not be decided offline, else `deny` when a validation fails
under a binding with `Deny`, else `warn`, else `audit`, else `admit`. The
format follows the Kyverno CLI's and kaptest's (a list of policy files, a
resource and the result wanted) in trustgate's words. Results use gator's
result types, so `trustgate policy test` prints both kinds of suite alike.
Leaves out: printing, and finding suite files (gator's `find_suites`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trustgate.errors import PolicyError
from trustgate.policy import vap
from trustgate.policy.gatekeeper import read_objects
from trustgate.policy.gator import CaseResult, SuiteResult, TestResult, open_entry

__all__ = ["SUITE_API", "SUITE_KIND", "VERDICTS", "is_suite", "run_suite", "verdict"]

SUITE_API = "trustgate.dev/v1alpha1"
SUITE_KIND = "AdmissionPolicyTest"
VERDICTS = ("admit", "deny", "warn", "audit", "unevaluable")
OPERATIONS = ("CREATE", "DELETE")  # an UPDATE needs the object as it is: not in this format yet


def is_suite(obj: Mapping[str, Any]) -> bool:
    """Whether a document is an AdmissionPolicyTest."""
    return obj.get("apiVersion") == SUITE_API and obj.get("kind") == SUITE_KIND


def verdict(outcomes: list[vap.Outcome]) -> str:
    """What the API server would make of the object, from every binding's outcome."""
    kinds = [(o.kind, o.binding.actions) for o in outcomes]
    if any(kind == "unevaluable" for kind, _ in kinds):
        return "unevaluable"
    if any(o.blocks for o in outcomes):  # Deny, or an error that denies whatever the actions
        return "deny"
    for action, word in (("Deny", "deny"), ("Warn", "warn"), ("Audit", "audit")):
        if any(kind == "violation" and action in actions for kind, actions in kinds):
            return word
    return "admit"


def run_suite(path: Path, suite: Mapping[str, Any]) -> SuiteResult:
    """Run every test of one AdmissionPolicyTest; never raises for bad input.

    A suite whose policies cannot be read (or do not compile) is an error on the suite; a
    test without an object, or with an unknown `expect`, an error on that test.
    """
    started = time.perf_counter()
    result = SuiteResult(str(path))
    if suite.get("skip") is True:
        result.skipped = True
        return result
    base = path.parent
    try:
        names = suite.get("policies")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise PolicyError("policies must be a non-empty list of files or directories", where=str(path))
        policies = vap.load([base / n for n in names])
        tests = suite.get("tests")
        if not isinstance(tests, list):
            raise PolicyError("tests must be a list", where=str(path))
    except PolicyError as e:
        result.error = e.diagnostics()
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result
    for index, test in enumerate(tests):
        result.tests.append(_run_test(path, index, test, policies))
    result.duration_ms = (time.perf_counter() - started) * 1000
    return result


def _run_test(path: Path, index: int, entry: Any, policies: vap.PolicySet) -> TestResult:
    started = time.perf_counter()
    result, test = open_entry(TestResult, entry, index, where=f"{path}: tests")
    if test is None:
        return result
    try:
        objects = _objects(path, index, test)
        expect = test.get("expect")
        if expect not in VERDICTS:
            wanted = ", ".join(VERDICTS)
            raise PolicyError(
                f"tests[{index}] ({result.name}): expect must be one of {wanted}, not {expect!r}",
                where=str(path),
            )
        patterns = [re.compile(str(p)) for p in test.get("messages") or []]
        operation = test.get("operation", "CREATE")
        if operation not in OPERATIONS:
            raise PolicyError(
                f"tests[{index}] ({result.name}): operation must be one of {', '.join(OPERATIONS)}, "
                f"not {operation!r}",
                where=str(path),
            )
    except (PolicyError, re.error) as e:
        result.error = e.diagnostics() if isinstance(e, PolicyError) else f"{path}: tests[{index}]: {e}"
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result
    for number, obj in enumerate(objects):
        case_started = time.perf_counter()
        name = result.name if len(objects) == 1 else f"{result.name}[{number}]"
        case = CaseResult(name)
        outcomes = policies.review(None, old=obj) if operation == "DELETE" else policies.review(obj)
        got = verdict(outcomes)
        messages = [o.message for o in outcomes]
        if got != expect:
            case.error = f"expected {expect}, got {got}; outcomes: {[(o.rule, o.message) for o in outcomes]}"
        else:
            missing = [p.pattern for p in patterns if not any(p.search(m) for m in messages)]
            if missing:
                case.error = f"no outcome message matches {missing}; messages: {messages}"
        case.duration_ms = (time.perf_counter() - case_started) * 1000
        result.cases.append(case)
    result.duration_ms = (time.perf_counter() - started) * 1000
    return result


def _objects(path: Path, index: int, test: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    inline, file = test.get("object"), test.get("file")
    if (inline is None) == (file is None):
        raise PolicyError(f"tests[{index}]: give exactly one of object and file", where=str(path))
    if inline is not None:
        if not isinstance(inline, Mapping):
            raise PolicyError(f"tests[{index}]: object must be a mapping", where=str(path))
        return [inline]
    if not isinstance(file, str) or not file:
        raise PolicyError(f"tests[{index}]: file must be a path", where=str(path))
    objects = [d.obj for d in read_objects(path.parent / file)]
    if not objects:
        raise PolicyError(f"tests[{index}]: {file} holds no object", where=str(path))
    return objects
