"""Where `trustgate check -p` once passed what conftest (OPA) refuses: data documents that
conflict, and policies that read what conftest alone fills in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from trustgate.cli.main import main
from trustgate.config import BUILTIN_SETS, builtin_policy_dir
from trustgate.policy import rego_text

Write = Callable[[str, str], Path]

REGISTRIES = """
package main
import rego.v1
deny contains msg if {
  not input.registry in data.allowed_registries
  msg := sprintf("registry %v is not allowed", [input.registry])
}
"""


def check(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", "--no-builtin", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_data_files_that_set_the_same_value_are_refused_as_opa_refuses_them(write: Write) -> None:
    """OPA's loader merges data documents and refuses a value both set (conftest: "merge error"):
    here the later file used to win, and a team's file could allow what the base file did not."""
    policy = write("policy/registries.rego", REGISTRIES)
    base = write("base.json", '{"allowed_registries": ["registry.corp"]}')
    team = write("team.yaml", "allowed_registries: [evil.example]\n")
    doc = write("input.json", '{"registry": "evil.example"}')
    code, _, err = check("-p", str(policy.parent), "-d", str(base), "-d", str(team), str(doc))
    assert code == 3
    assert "data documents conflict at allowed_registries" in err
    assert f"{base}:1 and {team}:1 both set it" in err
    # Documents that only add to each other merge, as in OPA.
    more = write("more.yaml", "other: {x: 1}\n")
    code, out, _ = check("-p", str(policy.parent), "-d", str(base), "-d", str(more), str(doc))
    assert code == 1
    assert "registry evil.example is not allowed" in out


def test_a_nested_conflict_names_its_path(write: Write) -> None:
    policy = write("policy/registries.rego", REGISTRIES)
    one = write("one.yaml", "limits: {cpu: {max: 2}, memory: 1}\n")
    two = write("two.yaml", "limits: {cpu: {max: 4}}\n")
    code, _, err = check("-p", str(policy.parent), "-d", str(one), "-d", str(two), str(write("i.json", "{}")))
    assert code == 3
    assert "data documents conflict at limits.cpu.max" in err


def test_a_policy_that_reads_data_conftest_is_refused(write: Write) -> None:
    """conftest fills data.conftest.file in for each file it checks; trustgate does not, so such a
    rule would be undefined (a silent pass) here."""
    for ref in ("data.conftest.file.name", 'data["conftest"].file.name', 'data[\n\t\t"conftest"].file.name'):
        policy = write(
            "policy/file.rego",
            f'package main\nimport rego.v1\ndeny contains "one replica" if {{\n  {ref} == "input.json"\n'
            "  input.replicas < 2\n}\n",
        )
        code, _, err = check("-p", str(policy.parent), str(write("input.json", '{"replicas": 1}')))
        assert code == 3, ref
        assert "the policy reads data.conftest" in err
    # In a message or a comment it is only text.
    policy = write(
        "policy/file.rego",
        'package main\nimport rego.v1\n# data.conftest is not read\ndeny contains "see data.conftest" if {\n'
        "  input.replicas < 2\n}\n",
    )
    code, out, _ = check("-p", str(policy.parent), str(write("input.json", '{"replicas": 1}')))
    assert code == 1
    assert "see data.conftest" in out


def test_a_policy_that_makes_the_engine_panic_could_not_be_evaluated(write: Write) -> None:
    """regorus panics on `numbers.range(0, 2^63 - 1)` (pyo3's PanicException, no Exception; once
    `time.parse_duration_ns("1.")`): `check` exited 1 with a traceback; it is a rule that could
    not be evaluated, exit 3."""
    policy = write(
        "policy/p.rego",
        "package main\nimport rego.v1\n\n"
        'deny contains "n" if { input.big; numbers.range(0, 9223372036854775807)[0] == 0 }\n',
    )
    doc = write("in.yaml", "big: true\n")
    code, out, _ = check("-p", str(policy.parent), str(doc))
    assert code == 3
    assert "rule data.main.deny: the Rego engine (regorus) panicked" in out


def test_an_integer_regorus_would_round_could_not_be_evaluated(write: Write) -> None:
    """regorus turns an integer beyond 2^64-1 (or below -2^63) into a float64: `input.quota >
    18446744073709551616` was false for ...617 in a JSON input, a silent pass where OPA denies. The
    input is refused instead (exit 3), naming the number's path; 2^64-1 itself is evaluated."""
    policy = write(
        "policy/p.rego",
        "package main\nimport rego.v1\n\n"
        'deny contains "quota above 2^64 - 2" if input.quota > 18446744073709551614\n',
    )
    code, out, _ = check(
        "-p", str(policy.parent), str(write("big.json", '{"a": [{"quota": 18446744073709551617}]}'))
    )
    assert code == 3
    assert "the integer at a[0].quota is outside -2^63..2^64-1" in out
    assert "write the number as a string" in out and "fix the policy" not in out  # the input's way out
    code, out, _ = check("-p", str(policy.parent), str(write("fine.json", '{"quota": 18446744073709551615}')))
    assert code == 1 and "quota above 2^64 - 2" in out


def test_the_bundled_sets_read_no_data_conftest() -> None:
    """`check` does not scan the bundled sets for data.conftest on every run: this test does."""
    files = [f for name in BUILTIN_SETS for f in (builtin_policy_dir() / name).rglob("*.rego")]
    assert len(files) >= len(BUILTIN_SETS)
    for file in files:
        assert "conftest" not in rego_text.data_roots(file.read_text(encoding="utf-8")), file


def test_format_int_of_a_large_or_fractional_number_answers_as_opa(write: Write) -> None:
    """regorus' `format_int(1.0e+19, 16)` was "" and `format_int(-0.5, 10)` "-0" (OPA:
    "8ac7230489e80000", "0"): both rules passed where conftest denies."""
    policy = write(
        "policy/p.rego",
        "package main\nimport rego.v1\n\n"
        'deny contains "wide mask" if count(format_int(input.spec.mask, 16)) > 8\n'
        'deny contains "zero offset" if format_int(input.spec.offset, 10) == "0"\n'
        'deny contains "huge" if format_int(input.spec.huge, 16) == "56bc75e2d63100000"\n',
    )
    doc = write("in.yaml", "spec:\n  mask: 1.0e+19\n  offset: -0.5\n  huge: 1.0e+20\n")
    code, out, _ = check("-p", str(policy.parent), str(doc))
    assert code == 1
    assert "wide mask" in out and "zero offset" in out and "huge" in out


def test_a_policy_number_regorus_would_round_is_refused(write: Write) -> None:
    """regorus reads 99999999999999999999 as the float64 1e20: `input.spec.quota >
    99999999999999999999` was false for 1e20 (OPA: true), directly or through `round`."""
    for condition in (
        "input.spec.quota > 99999999999999999999",
        "round(input.spec.quota) > 99999999999999999999",
    ):
        policy = write(
            "policy/p.rego", f'package main\nimport rego.v1\n\ndeny contains "quota" if {condition}\n'
        )
        code, out, err = check("-p", str(policy.parent), str(write("in.yaml", "spec:\n  quota: 1.0e+20\n")))
        assert code == 3, condition
        assert (
            "p.rego:4: the number 99999999999999999999 is beyond what trustgate's engine holds exactly" in err
        )
    # A number a float64 holds exactly compares as in OPA.
    policy = write(
        "policy/p.rego", 'package main\nimport rego.v1\n\ndeny contains "quota" if input.spec.quota > 1e19\n'
    )
    code, out, _ = check("-p", str(policy.parent), str(write("in.yaml", "spec:\n  quota: 1.0e+20\n")))
    assert code == 1 and "quota" in out


def test_values_regorus_cannot_hand_to_python_are_formatted_as_opa_formats_them(write: Write) -> None:
    """A set of arrays (`unhashable type: 'list'`) and a float beyond 2^64 (`not an i64`) made
    `sprintf`, and `ceil` of 1e20, fail (exit 3) where OPA answers; `-x` of a reference too."""
    policy = write(
        "policy/p.rego",
        "package main\nimport rego.v1\n\n"
        "warn contains msg if {\n"
        "\tports := {[p.containerPort, p.protocol] | some c in input.spec.containers; some p in c.ports}\n"
        '\tmsg := sprintf("exposed ports: %v", [ports])\n'
        "}\n"
        'warn contains sprintf("size %v too large", [input.spec.size]) if ceil(input.spec.size) > 100\n'
        'warn contains "negative" if -input.spec.replicas < 0\n',
    )
    doc = write(
        "in.yaml",
        "spec:\n  size: 1.0e+20\n  replicas: 3\n"
        "  containers:\n  - ports: [{containerPort: 80, protocol: TCP}]\n",
    )
    code, out, _ = check("-p", str(policy.parent), str(doc))
    assert code == 0, out
    assert 'exposed ports: {[80, "TCP"]}' in out
    assert "size 1e+20 too large" in out
    assert "negative" in out


def test_an_opa_builtin_regorus_lacks_is_refused_when_the_policy_loads(write: Write) -> None:
    """`net.cidr_merge` failed only when a document reached it ("could not find function"), so a
    document without the field passed a policy conftest evaluates; refused at load now."""
    policy = write(
        "policy/p.rego",
        "package main\nimport rego.v1\n\n"
        'deny contains "ranges must not overlap" if {\n'
        "\tranges := input.spec.loadBalancerSourceRanges\n"
        "\tcount(net.cidr_merge(ranges)) < count(ranges)\n"
        "}\n",
    )
    code, _, err = check("-p", str(policy.parent), str(write("in.yaml", "spec: {}\n")))
    assert code == 3
    assert "p.rego:6: the built-in `net.cidr_merge` is not available in trustgate's Rego engine" in err


def test_division_by_zero_is_undefined_as_in_conftest(write: Write) -> None:
    """OPA's `div` fails on a zero divisor, which conftest makes undefined; regorus raised, so
    `check` exited 3 where conftest is silent. Under `not` the division is hoisted, as OPA does."""
    policy = write(
        "policy/p.rego",
        "package main\nimport rego.v1\n\n"
        'warn contains "more than 2 CPUs per replica" if input.spec.cpus / input.spec.replicas > 2\n'
        'deny contains "at most 2 CPUs per replica" if not input.spec.cpus / input.spec.replicas > 2\n'
        'deny contains "odd replicas" if input.spec.replicas % 2 == 1\n',
    )
    code, out, _ = check("-p", str(policy.parent), str(write("in.yaml", "spec: {cpus: 4, replicas: 0}\n")))
    assert code == 0, out
    code, out, _ = check("-p", str(policy.parent), str(write("in.yaml", "spec: {cpus: 4, replicas: 1}\n")))
    assert code == 1 and "more than 2 CPUs per replica" in out and "odd replicas" in out
    code, out, _ = check("-p", str(policy.parent), str(write("in.yaml", "spec: {cpus: 4, replicas: 2.5}\n")))
    assert code == 1 and "at most 2 CPUs per replica" in out and "odd" not in out
