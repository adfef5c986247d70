"""regorus panics (pyo3's PanicException, a BaseException) become evaluation errors, not crashes.

Each built-in call below panics inside regorus 0.x (found by the differential
hunt; OPA answers or raises a built-in error). A panic also leaves the engine
unusable (the rule reads as recursive from then on), so the next evaluation
must run on a fresh engine. If regorus stops panicking on one of them, the
`panicked` assertion fails: pick another trigger.
"""

from __future__ import annotations

import pytest

from trustgate.errors import PolicyError
from trustgate.policy import rego
from trustgate.policy.engine import EmbeddedEngine

# The time built-ins that panicked (`time.parse_duration_ns("1.")`, `time.parse_ns` with a
# non-ASCII layout) go to Go's semantics now (ADR 0008, item 18).
_INT64_MAX = 2**63 - 1  # numbers.range(0, it): "capacity overflow"
PANICS = [  # (expression, a value that panics, one that does not)
    pytest.param("numbers.range(0, input.v)[0] == 0", _INT64_MAX, 2, id="numbers.range-int64-max"),
]


def _policy(expr: str) -> rego.RegoPolicy:
    text = (
        "package main\nimport rego.v1\n\n"
        f'deny contains "panics" if {expr}\n\n'
        'deny contains "other" if input.other\n'
        'warn contains "w" if input.other\n'
    )
    return rego.RegoPolicy([rego.Module("p.rego", text)])


@pytest.mark.parametrize(("expr", "value", "fine"), PANICS)
def test_a_panic_is_a_rule_failure_and_the_evaluator_keeps_working(expr: str, value: str, fine: str) -> None:
    evaluator = _policy(expr).evaluator()
    with pytest.raises(rego.RuleEvaluationError) as raised:
        evaluator.evaluate({"v": value, "other": True})
    [failure] = raised.value.failures
    assert (failure.package, failure.rule) == ("main", "deny")
    assert "the Rego engine (regorus) panicked" in failure.message
    assert [f.message for f in raised.value.findings] == ["w"]  # other rules still answer
    for _ in range(3):  # the broken engine was replaced: the same object fails the same way again
        with pytest.raises(rego.RuleEvaluationError, match="panicked"):
            evaluator.evaluate({"v": value})
    assert {"other", "w"} <= {f.message for f in evaluator.evaluate({"v": fine, "other": True})}


def test_a_panic_in_the_embedded_engine_is_a_policy_error_and_it_keeps_working() -> None:
    engine = EmbeddedEngine()
    engine.add_modules(
        [rego.Module("p.rego", "package p\nimport rego.v1\n\nd := count(numbers.range(1, input.v))\n")]
    )
    engine.set_data("cfg", {"a": 1})
    for _ in range(3):
        with pytest.raises(PolicyError, match=r"data\.p\.d: the Rego engine \(regorus\) panicked"):
            engine.eval_rule("data.p.d", {"v": _INT64_MAX})
    assert engine.eval_rule("data.p.d", {"v": 1}) == 1
    copy = engine.clone()
    with pytest.raises(PolicyError, match="panicked"):
        copy.eval_rule("data.p.d", {"v": _INT64_MAX})
    assert copy.eval_rule("data.p.d", {"v": 2}) == 2


def test_a_panicking_rego_test_fails_and_the_others_still_run() -> None:
    text = (
        "package main_test\nimport rego.v1\n\n"
        "test_a_panics if numbers.range(0, 9223372036854775807)[0] == 0\n"
        "test_b_passes if true\n"
    )
    results = rego.RegoPolicy([rego.Module("p_test.rego", text)]).evaluator().run_tests()
    by_name = {r.name: r for r in results}
    assert not by_name["test_a_panics"].passed
    assert "panicked" in by_name["test_a_panics"].error
    assert by_name["test_b_passes"].passed


def test_keyboard_interrupt_is_not_taken_for_a_panic() -> None:
    assert not rego.is_engine_panic(KeyboardInterrupt())
    assert not rego.is_engine_panic(SystemExit(1))
    assert not rego.is_engine_panic(RuntimeError("x"))


def test_a_panic_costs_a_clone_not_a_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiling the bundled policies takes ~170 ms: crafted inputs must not make each request pay it."""
    evaluator = _policy("numbers.range(0, input.v)[0] == 0").evaluator()

    def compile_again(*args: object) -> None:
        raise AssertionError("the engine was compiled again after a panic")

    monkeypatch.setattr(rego, "_new_engine", compile_again)
    for _ in range(3):
        with pytest.raises(rego.RuleEvaluationError, match="panicked"):
            evaluator.evaluate({"v": _INT64_MAX})
    assert [f.message for f in evaluator.evaluate({"v": 2})] == ["panics"]
