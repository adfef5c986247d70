"""Where `trustgate check -p` passed what conftest (OPA) denies, through `+ - * /` of
fractional numbers: OPA computes with 64-bit big.Floats read from the numbers' decimal text
(`0.7 + 0.1` is `0.8`), regorus with float64 (0.7999999999999999), so a limit reached
exactly was not reached (ADR 0008, item 5). Each case is a tester's policy and input, and
the finding OPA reports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

HEAD = "package main\nimport rego.v1\n\n"
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n"


def check(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["check", "--no-builtin", "--no-schemas", *args], catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


CASES = {
    # 0.7 + 0.1 reaches the limit of 0.8 cores
    "request-plus-sidecar-overhead": (
        """deny contains msg if {
  some c in input.spec.containers
  cores := units.parse(c.resources.requests.cpu) + 0.1
  cores >= 0.8
  msg := sprintf("container %s requests %v cores with the sidecar (limit below 0.8)", [c.name, cores])
}
""",
        POD
        + "  - name: app\n    image: app@sha256:"
        + "a" * 64
        + "\n    resources: {requests: {cpu: 700m}}\n",
        "container app requests 0.8 cores with the sidecar (limit below 0.8)",
    ),
    # 0.29 * 100 is 29, not 28.999999999999996 (floor 28)
    "fraction-as-whole-percent": (
        """deny contains msg if {
  share := floor(to_number(input.metadata.annotations["example.com/cpu-share"]) * 100)
  share >= 29
  msg := sprintf("cpu share %d%% is above 28%%", [share])
}
""",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
        "  annotations: {example.com/cpu-share: '0.29'}\n",
        "cpu share 29% is above 28%",
    ),
    # 0.3 / 0.1 is 3, not 2.9999999999999996
    "ratio-reaches-the-limit": (
        """deny contains msg if {
  ratio := input.spec.limit / input.spec.request
  ratio >= 3
  msg := sprintf("limit is %v times the request (max below 3)", [ratio])
}
""",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nspec: {limit: 0.3, request: 0.1}\n",
        "limit is 3 times the request (max below 3)",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_opa_finding_is_reported(write: Write, name: str) -> None:
    policy, doc, message = CASES[name]
    path = write(f"{name}/policy/p.rego", HEAD + policy)
    code, out, err = check("-p", str(path.parent), str(write(f"{name}/in.yaml", doc)))
    assert (code, err) == (1, ""), out
    assert message in out


def test_set_difference_and_integer_arithmetic_are_unchanged(write: Write) -> None:
    policy = write(
        "policy/p.rego",
        HEAD
        + """deny contains sprintf("missing labels %v, %d of %d", [missing, count(missing), n]) if {
  required := {"app", "team", "tier"}
  missing := required - {k | input.metadata.labels[k]}
  n := count(required) * 1
  count(missing) > 0
}

deny contains "a string is not a number" if input.metadata.name + 1 == 2
""",
    )
    doc = write("in.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {app: a}\n")
    code, out, err = check("-p", str(policy.parent), str(doc))
    assert (code, err) == (1, ""), out
    assert 'missing labels {"team", "tier"}, 2 of 3' in out
    assert "a string is not a number" not in out  # OPA: `+` of a string is undefined


def test_a_result_no_float64_is_compares_as_opas(write: Write) -> None:
    """OPA's 1 - 0.9 is 0.10000000000000000002: above 0.1, not equal to it."""
    policy = write(
        "policy/p.rego",
        HEAD
        + 'deny contains sprintf("headroom %v is not 0.1", [h]) if {\n'
        + "  h := input.spec.limit - input.spec.request\n  h != 0.1\n  h > 0.1\n"
        + "  floor(h) == 0\n  round(h) == 0\n}\n"
        + 'deny contains "headroom is at most 0.1" if input.spec.limit - input.spec.request <= 0.1\n',
    )
    doc = write(
        "in.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nspec: {limit: 1, request: 0.9}\n"
    )
    code, out, err = check("-p", str(policy.parent), str(doc))
    assert (code, err) == (1, ""), out
    assert "headroom 0.1 is not 0.1" in out  # sprintf prints a float64, as OPA's does
    assert "at most" not in out


def test_an_operation_on_such_a_result_could_not_be_evaluated(write: Write) -> None:
    """(1 - 0.9) * 10 is OPA's 1.0000000000000000002 times 10: its digits are not carried."""
    policy = write(
        "policy/p.rego",
        HEAD + 'deny contains "over" if (input.spec.limit - input.spec.request) * 10 > 1\n',
    )
    doc = write(
        "in.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nspec: {limit: 1, request: 0.9}\n"
    )
    code, out, err = check("-p", str(policy.parent), str(doc))
    assert code == 3, out
    assert "p.rego" in out + err and "more digits than trustgate carries" in out + err
