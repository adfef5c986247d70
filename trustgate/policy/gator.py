"""gator `Suite` files (`test.gatekeeper.sh/v1alpha1`), run as `gator verify` runs them.

Owns: finding suites (files, or `suite.yaml` under directories), reading
their tests (template, constraint, cases with object, inventory and
assertions) and judging each case. Each test gets a fresh engine; each case
its own inventory. A broken suite or test (a missing file, a template that
does not compile, a constraint for an unknown kind or with bad parameters)
is an error on that suite or test only: the others still run. Leaves out:
printing (the CLI does that).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from trustgate.errors import PolicyError
from trustgate.policy import gatekeeper as gk

SUITE_API = "test.gatekeeper.sh/v1alpha1"
SUITE_FILE = "suite.yaml"


@dataclass(slots=True)
class CaseResult:
    name: str
    error: str = ""  # "" when the case passed
    skipped: bool = False
    duration_ms: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.error

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "skipped": self.skipped,
            "error": self.error,
            "durationMs": round(self.duration_ms, 3),
        }


@dataclass(slots=True)
class TestResult:
    name: str
    error: str = ""  # the test could not run (template, constraint)
    cases: list[CaseResult] = field(default_factory=list)
    skipped: bool = False
    duration_ms: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.error and all(c.passed for c in self.cases)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "skipped": self.skipped,
            "error": self.error,
            "durationMs": round(self.duration_ms, 3),
            "cases": [c.to_json() for c in self.cases],
        }


@dataclass(slots=True)
class SuiteResult:
    path: str
    error: str = ""  # the suite could not be read
    tests: list[TestResult] = field(default_factory=list)
    skipped: bool = False
    duration_ms: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.error and all(t.passed for t in self.tests)

    @property
    def broken(self) -> bool:
        """The suite or one of its tests could not be evaluated at all."""
        return bool(self.error) or any(t.error for t in self.tests)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "passed": self.passed,
            "skipped": self.skipped,
            "error": self.error,
            "durationMs": round(self.duration_ms, 3),
            "tests": [t.to_json() for t in self.tests],
        }


def find_suites(path: Path) -> list[Path]:
    """The suite files a path names: itself (a file) or every `suite.yaml` below it (a directory)."""
    if path.is_dir():
        return sorted(
            p
            for p in path.rglob(SUITE_FILE)
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    return [path]


def is_suite_file(path: Path) -> bool:
    """Whether a YAML file is a gator Suite (without failing on anything else)."""
    try:
        head = path.read_text("utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return bool(re.search(r"^kind:\s*Suite\s*$", head, re.MULTILINE)) and "test.gatekeeper.sh/" in head


def run_suite(path: Path, *, engine: gk.EngineFactory = gk.embedded_engine, code: str = "cel") -> SuiteResult:
    """Run every test of one suite file; never raises for bad input.

    `code` picks the code of templates with Rego and CEL (`gatekeeper.ENGINES`).
    """
    started = time.perf_counter()
    result = SuiteResult(str(path))
    try:
        suite = _read_suite(path)
    except PolicyError as e:
        result.error = e.diagnostics()
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result
    from trustgate.policy import vap_suite  # (imports this module)

    if vap_suite.is_suite(suite):  # a suite of ValidatingAdmissionPolicy tests
        return vap_suite.run_suite(path, suite)
    if suite.get("skip") is True:
        result.skipped = True
        return result
    for index, test in enumerate(suite.get("tests") or []):
        result.tests.append(_run_test(path, index, test, engine, code))
    result.duration_ms = (time.perf_counter() - started) * 1000
    return result


def _read_suite(path: Path) -> Mapping[str, Any]:
    docs = gk.read_objects(path)
    if len(docs) != 1:
        raise PolicyError(f"a suite file holds one document, found {len(docs)}", where=str(path))
    suite = docs[0].obj
    if suite.get("apiVersion") == "trustgate.dev/v1alpha1" and suite.get("kind") == "AdmissionPolicyTest":
        return suite  # run by vap_suite
    if suite.get("kind") != "Suite" or not str(suite.get("apiVersion", "")).startswith("test.gatekeeper.sh/"):
        raise PolicyError(
            f"not a gator Suite (apiVersion {suite.get('apiVersion')!r}, kind {suite.get('kind')!r})",
            where=str(path),
            hint=f"a suite starts with `apiVersion: {SUITE_API}` and `kind: Suite`",
        )
    if not isinstance(suite.get("tests") or [], list):
        raise PolicyError("tests must be a list", where=str(path))
    return suite


_Result = TypeVar("_Result", TestResult, CaseResult)


def open_entry(
    make: type[_Result], entry: Any, index: int, *, where: str
) -> tuple[_Result, Mapping[str, Any] | None]:
    """The result of entry `index` of a suite's list `where` (a test, a case), named as it is.

    Returns:
        The result, and the entry when it is to run; None when it is not a mapping (the
        result is then an error) or says `skip: true` (the result is then skipped).
    """
    if not isinstance(entry, Mapping):
        return make(f"#{index + 1}", error=f"{where}[{index}] must be a mapping"), None
    result = make(str(entry.get("name") or f"#{index + 1}"))
    if entry.get("skip") is True:
        result.skipped = True
        return result, None
    return result, entry


def _run_test(suite_path: Path, index: int, entry: Any, engine: gk.EngineFactory, code: str) -> TestResult:
    started = time.perf_counter()
    result, test = open_entry(TestResult, entry, index, where=f"{suite_path}: tests")
    if test is None:
        return result
    base = suite_path.parent
    try:
        template_path = _required(test, "template", suite_path, index)
        constraint_path = _required(test, "constraint", suite_path, index)
        templates = _read_templates(base / template_path)
        constraint_docs = [d for d in gk.read_objects(base / constraint_path)]
        if len(constraint_docs) != 1:
            raise PolicyError(
                f"a constraint file holds one object, found {len(constraint_docs)}",
                where=str(base / constraint_path),
            )
        doc = constraint_docs[0]
        try:
            constraint = gk.parse_constraint(doc.obj, templates, file=doc.file, line=doc.line)
        except PolicyError as e:
            if test.get("invalid") is True and "do not match the schema" in e.message:
                result.duration_ms = (time.perf_counter() - started) * 1000
                return result  # an invalid constraint was expected
            raise
        if test.get("invalid") is True:
            raise PolicyError(
                "the test expects the constraint to violate the template's schema, but it is valid",
                where=str(base / constraint_path),
            )
        template = templates[constraint.kind]
        if template.unsupported:
            raise PolicyError(
                f"template {template.name} is not supported: {template.unsupported}", where=template.where
            )
        evaluator = gk.ConstraintSet([template], [constraint], engine=code).compile(engine())
    except PolicyError as e:
        result.error = e.diagnostics()
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result
    for case_index, case in enumerate(test.get("cases") or []):
        result.cases.append(_run_case(base, case_index, case, evaluator))
    result.duration_ms = (time.perf_counter() - started) * 1000
    return result


def _required(test: Mapping[str, Any], key: str, suite_path: Path, index: int) -> str:
    value = test.get(key)
    if not isinstance(value, str) or not value:
        raise PolicyError(f"tests[{index}] ({test.get('name')}): {key} is missing", where=str(suite_path))
    return value


def _read_templates(path: Path) -> dict[str, gk.Template]:
    docs = gk.read_objects(path)
    templates = [
        gk.parse_template(d.obj, file=d.file, line=d.line, tree=d.tree) for d in docs if gk.is_template(d.obj)
    ]
    if not templates:
        raise PolicyError("no ConstraintTemplate in the file", where=str(path))
    return {t.kind: t for t in templates}


def _run_case(base: Path, index: int, entry: Any, evaluator: gk.ConstraintEvaluator) -> CaseResult:
    started = time.perf_counter()
    result, case = open_entry(CaseResult, entry, index, where="cases")
    if case is None:
        return result
    try:
        result.error = _check_case(base, case, evaluator)
    except PolicyError as e:
        result.error = e.diagnostics()
    result.duration_ms = (time.perf_counter() - started) * 1000
    return result


def _check_case(base: Path, case: Mapping[str, Any], evaluator: gk.ConstraintEvaluator) -> str:
    object_path = case.get("object")
    if not isinstance(object_path, str) or not object_path:
        return "invalid case: must define object"
    assertions = case.get("assertions")
    if not isinstance(assertions, list) or not assertions:
        return "invalid case: assertions must be non-empty"
    objects = gk.read_objects(base / object_path)
    if len(objects) != 1:
        return f"{base / object_path} defines {len(objects)} objects; a case reviews exactly one"
    inventory: list[Mapping[str, Any]] = []
    for item in case.get("inventory") or []:
        inventory.extend(d.obj for d in gk.read_objects(base / str(item)))
    evaluator.set_inventory(inventory)
    obj = objects[0].obj
    try:
        review = gk.review_of_admission(obj) if gk.is_admission_review(obj) else gk.review_of(obj)
    except ValueError as e:
        return f"{base / object_path}: {e}"
    matched, unknown = evaluator.matching(review)
    if unknown:
        constraint, namespace = unknown[0]
        return (
            f"constraint {constraint.id} has a namespaceSelector, but Namespace {namespace!r} "
            "is not in the case's inventory"
        )
    violations = evaluator.review(review, matched)
    disagreements = [v.message for v in violations if v.disagreement]
    if disagreements:
        return disagreements[0]
    messages = [v.message for v in violations]
    for number, assertion in enumerate(assertions):
        problem = check_assertion(assertion, messages)
        if problem:
            return f"assertion {number + 1}: {problem}"
    return ""


def check_assertion(assertion: Any, messages: Sequence[str]) -> str:
    """ "" when the assertion holds for the violation messages, else why not (gator's wording)."""
    if not isinstance(assertion, Mapping):
        return "an assertion must be a mapping"
    pattern = assertion.get("message")
    if pattern is not None:
        try:
            regex = re.compile(str(pattern))
        except re.error as e:
            return f"invalid message regex {pattern!r}: {e}"
        matching = sum(1 for m in messages if regex.search(m))
        containing = f" containing {str(pattern)!r}"
    else:
        matching = len(messages)
        containing = ""
    want = assertion.get("violations", "yes")
    if isinstance(want, bool):  # YAML 1.1 reads a bare yes/no as a boolean
        want = "yes" if want else "no"
    got = f"got {matching} violations{containing}"
    if not isinstance(want, int | str):
        return 'violations must be a non-negative integer, "yes" or "no"'
    if isinstance(want, int):
        if want < 0:
            return 'violations must be a non-negative integer, "yes" or "no"'
        if matching != want:
            return f"{got} but want exactly {want}; messages: {list(messages)}"
        return ""
    if want == "yes":
        return "" if matching else f"{got} but want at least 1; messages: {list(messages)}"
    if want == "no":
        return "" if not matching else f"{got} but want none; messages: {list(messages)}"
    return 'violations must be a non-negative integer, "yes" or "no"'
