"""Gatekeeper templates: trustgate (`ConstraintSet` on `EmbeddedEngine`) against OPA.

Every test of every suite in Gatekeeper's library (the `general` and
`pod-security-policy` copies in tests/conformance/gatekeeper-library) and
trustgate's own templates in policies/gatekeeper:
the template's `violation` over each case's object, with the input shaped as
Gatekeeper shapes it (`{"review": …, "parameters": …}`, built by
`trustgate.policy.gatekeeper.review_of`). Templates are Rego v0: OPA gets them
through `support.rego_v1.v0_to_v1`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from support.differential import TALLY, opa_engine, opa_value

from trustgate.errors import PolicyError
from trustgate.policy import gatekeeper as gk
from trustgate.policy import gator

ROOT = Path(__file__).resolve().parents[2]
# Paths inside the repository: a fresh clone (CI) has every one, and a missing one fails.
LIBRARIES = [
    ROOT / "policies" / "gatekeeper",  # trustgate's own templates
    ROOT / "tests" / "conformance" / "gatekeeper-library" / "general",
    ROOT / "tests" / "conformance" / "gatekeeper-library" / "pod-security-policy",
]

# (suite directory, test name, case name) -> why the outcomes differ and why that is accepted.
KNOWN: dict[tuple[str, str, str], str] = {}


def _suites() -> Iterator[Path]:
    for library in LIBRARIES:
        yield from sorted(library.glob("*/suite.yaml"))


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda p: p.name)
def test_library_is_present(library: Path) -> None:
    # A library that is missing or empty would otherwise drop its suites silently; one
    # outside the repository is missing from a fresh clone (CI).
    assert library.is_relative_to(ROOT), f"{library} is not in the repository"
    assert library.is_dir(), f"{library} is missing"
    assert list(library.glob("*/suite.yaml")), f"{library} has no suites"


def _key(item: Any) -> str:
    if isinstance(item, Mapping):
        msg = item.get("msg")
        details = item.get("details")
        return json.dumps(
            [msg if isinstance(msg, str) else json.dumps(item, sort_keys=True), details or {}],
            sort_keys=True,
        )
    return json.dumps([json.dumps(item, sort_keys=True), {}], sort_keys=True)


@pytest.mark.parametrize(
    "suite_path", list(_suites()), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}"
)
def test_suite_matches_opa(suite_path: Path) -> None:
    suite = gator._read_suite(suite_path)
    base = suite_path.parent
    problems = []
    for test in suite.get("tests") or []:
        if test.get("invalid") is True or test.get("skip") is True:
            continue
        templates = gator._read_templates(base / test["template"])
        doc = gk.read_objects(base / test["constraint"])[0]
        constraint = gk.parse_constraint(doc.obj, templates, file=doc.file, line=doc.line)
        template = templates[constraint.kind]
        if template.unsupported:
            continue
        evaluator = gk.ConstraintSet([template], [constraint], engine="rego").compile(gk.embedded_engine())
        modules = template.modules()
        parameters = dict(constraint.parameters)
        for case in test.get("cases") or []:
            objects = gk.read_objects(base / case["object"])
            inventory = [
                d.obj for item in case.get("inventory") or [] for d in gk.read_objects(base / str(item))
            ]
            obj = objects[0].obj
            review = gk.review_of_admission(obj) if gk.is_admission_review(obj) else gk.review_of(obj)
            evaluator.set_inventory(inventory)
            try:
                ours: Any = sorted(
                    _key({"msg": v.message, "details": v.details})
                    for v in evaluator.review(review, [constraint])
                )
            except PolicyError as e:
                ours = f"error: {e.message}"
            engine = opa_engine(modules, v0=True, data={"inventory": gk.inventory_of(inventory)})
            kind, value = opa_value(
                engine, f"{template.package}.violation", {"review": review, "parameters": parameters}
            )
            engine.close()
            reference: Any = f"error: {value}" if kind == "error" else sorted(_key(v) for v in (value or []))
            TALLY["gatekeeper"] += 1
            both_errors = isinstance(ours, str) and isinstance(reference, str)
            key = (base.name, str(test.get("name")), str(case.get("name")))
            if ours != reference and not both_errors and key not in KNOWN:
                problems.append(f"{key}:\n   trustgate: {ours}\n   OPA:       {reference}")
            elif key in KNOWN and (ours == reference or both_errors):
                problems.append(f"{key} now matches OPA: remove it from KNOWN")
    assert not problems, "\n".join(problems)


# Line-based forms `v0_compat` rewrites for regorus, against OPA reading the same v0 text.
V0_FORMS = {
    "paren-line-inside-every": """\
package t
import future.keywords.every
import future.keywords.in
violation[{"msg": "all ok and big"}] {
  xs := input.review.object.xs
  every x in xs {
    x.ok
    (x.n + 1) > 2
  }
  every y in {1, 2} {
    y > 0
    (y + 1) > 1
  }
}
""",
}


@pytest.mark.parametrize("name", sorted(V0_FORMS))
@pytest.mark.parametrize(
    "xs",
    [[{"ok": True, "n": 5}], [{"ok": True, "n": 0}], [{"ok": False, "n": 5}]],
    ids=["big", "small", "not-ok"],
)
def test_v0_forms_match_opa(name: str, xs: list[dict[str, Any]]) -> None:
    text = V0_FORMS[name]
    engine = gk.embedded_engine()
    engine.add_modules([gk.Module("t.rego", gk.v0_compat(text, file="t.rego"))])
    review = {"object": {"xs": xs}}
    ours = engine.eval_rule("data.t.violation", {"review": review})
    opa = opa_engine([gk.Module("t.rego", text)], v0=True)
    kind, value = opa_value(opa, "t.violation", {"review": review})
    opa.close()
    assert kind == "value" and ours == value
