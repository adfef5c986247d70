from __future__ import annotations

import pytest

from trustgate import yamlio


def parse(text: str, max_nodes: int = 1000) -> list[yamlio.ParsedDocument | yamlio.YamlProblem]:
    return list(yamlio.parse_stream(text.encode(), max_nodes=max_nodes))


def test_documents_carry_their_start_lines() -> None:
    docs = parse("a: 1\n---\nb: 2\n---\n\n# comment\nc: 3\n")
    assert [(d.value, d.line) for d in docs if isinstance(d, yamlio.ParsedDocument)] == [
        ({"a": 1}, 1),
        ({"b": 2}, 3),
        ({"c": 3}, 7),
    ]


def test_a_broken_document_does_not_hide_the_next_one() -> None:
    docs = parse("a: 1\n---\nb: [1, 2\nc: 3\n---\nd: 4\n")
    assert isinstance(docs[0], yamlio.ParsedDocument)
    assert isinstance(docs[1], yamlio.YamlProblem)
    assert docs[1].rule == "input/invalid-yaml"
    assert "line 4" in docs[1].message
    assert isinstance(docs[2], yamlio.ParsedDocument) and docs[2].value == {"d": 4}


def test_timestamps_stay_strings_as_kubernetes_reads_them() -> None:
    (doc,) = parse("date: 2024-01-31\nwhen: 2024-01-31T10:00:00Z\n")
    assert isinstance(doc, yamlio.ParsedDocument)
    assert doc.value == {"date": "2024-01-31", "when": "2024-01-31T10:00:00Z"}


def test_alias_bomb_is_refused_with_its_line() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    (problem,) = parse("\n".join(["---", *levels]) + "\n", max_nodes=100_000)
    assert isinstance(problem, yamlio.YamlProblem)
    assert problem.rule == "input/yaml-alias"
    assert "100,000" in problem.message
    assert problem.line == 2


def test_recursive_alias_is_refused() -> None:
    (problem,) = parse("a: &x [1, *x]\n")
    assert isinstance(problem, yamlio.YamlProblem)
    assert "recursive" in problem.message


def test_modest_aliases_are_fine() -> None:
    (doc,) = parse("base: &b {cpu: 1}\nother: *b\n")
    assert isinstance(doc, yamlio.ParsedDocument)
    assert doc.value["other"] == {"cpu": 1}


def test_locate_finds_the_line_of_a_nested_field() -> None:
    text = "x: 1\n---\nspec:\n  containers:\n    - name: a\n    - name: b\n      image: nginx\n"
    docs = parse(text)
    doc = docs[1]
    assert isinstance(doc, yamlio.ParsedDocument)
    assert yamlio.locate(doc.node, ("spec", "containers", 1, "image")) == 7
    # An unknown tail falls back to the deepest known prefix.
    assert yamlio.locate(doc.node, ("spec", "containers", 1, "missing")) == 6
    assert yamlio.locate(None, ("spec",)) is None


def test_document_end_marker_is_honoured() -> None:
    docs = parse("a: 1\n...\n---\nb: 2\n")
    assert [d.value for d in docs if isinstance(d, yamlio.ParsedDocument)] == [{"a": 1}, {"b": 2}]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    depth = 5000
    docs = parse("a: " + "[" * depth + "]" * depth + "\n", max_nodes=10**9)
    assert len(docs) == 1
    # Either parsed (libyaml is iterative) or reported: never an exception.
    assert isinstance(docs[0], yamlio.ParsedDocument | yamlio.YamlProblem)


def test_merge_keys_and_shared_aliases_match_pyyaml() -> None:
    import yaml

    text = "base: &b {cpu: 1, memory: 2}\nother:\n  <<: *b\n  cpu: 3\nlist: &l [1, 2]\ncopy: *l\n"
    (doc,) = parse(text)
    assert isinstance(doc, yamlio.ParsedDocument)
    assert doc.value == yaml.safe_load(text)
    assert doc.value["other"] == {"cpu": 3, "memory": 2}
    assert doc.value["copy"] is doc.value["list"]  # aliases share one value, as in PyYAML


def test_unsupported_tag_is_a_problem_not_a_crash() -> None:
    (problem,) = parse("a: !Ref other\n")
    assert isinstance(problem, yamlio.YamlProblem)
    assert "unsupported YAML tag '!Ref'" in problem.message


def test_a_scalar_that_is_not_its_explicit_type_is_a_problem_not_a_crash() -> None:
    for text in ("a: !!bool maybe\n", "a: !!int x\n", "a: !!int 1.5\n", "a: !!float x\n"):
        (problem,) = parse(text)
        assert isinstance(problem, yamlio.YamlProblem), text
        assert problem.rule == "input/invalid-yaml" and problem.line == 1


def test_numbers_are_read_as_go_yaml_v2_reads_them() -> None:
    """Kubernetes' reader (sigs.k8s.io/yaml, go-yaml v2's resolve.go), not PyYAML's regexes."""
    (doc,) = parse(
        "uid: 0o0\n"  # Go's ParseInt(s, 0, 64): root, not the string "0o0"
        "mode: 0o755\n"
        "hex: 0XFF\n"
        "neg: -0o17\n"
        "u64: 18446744073709551615\n"  # ParseUint: still an integer
        "over: 18446744073709551616\n"  # past uint64, in decimal: yamlStyleFloat
        "big: 0x1FFFFFFFFFFFFFFFFFF\n"  # past uint64, not float-like: every parse fails, a string
        "wide: 0777777777777777777777777\n"  # past uint64: ParseFloat, which reads it in decimal
        "exp: 1e3\n"
        "huge: 1e400\n"  # ParseFloat overflows: a string
        "time: 12:30\n"  # no base 60
        "ratio: 1:2:3\n"
        "under: 1_000_000\n"
        "flt: !!float 3\n"
    )
    assert isinstance(doc, yamlio.ParsedDocument)
    value = doc.value
    assert value == {
        "uid": 0,
        "mode": 0o755,
        "hex": 255,
        "neg": -15,
        "u64": 2**64 - 1,
        "over": float(2**64),
        "big": "0x1FFFFFFFFFFFFFFFFFF",
        "wide": 7.777777777777778e23,
        "exp": 1000.0,
        "huge": "1e400",
        "time": "12:30",
        "ratio": "1:2:3",
        "under": 1_000_000,
        "flt": 3.0,
    }
    assert [type(value[k]) for k in ("uid", "over", "big", "wide", "exp", "flt")] == [
        int,
        float,
        str,
        float,
        float,
        float,
    ]


def test_numbers_too_long_for_any_integer_are_strings_or_problems_not_crashes() -> None:
    """Python refuses to convert more than 4,300 digits; go-yaml v2 reads such a plain scalar as a
    string (ParseInt, ParseUint and ParseFloat all fail), and an explicit tag is an error there."""
    digits = "1" * 5000
    docs = parse(f"a: {digits}\n---\nb: !!int {digits}\n---\nc: !!float {digits}\n---\nd: 4\n")
    assert isinstance(docs[0], yamlio.ParsedDocument) and docs[0].value == {"a": digits}
    for problem in docs[1:3]:
        assert isinstance(problem, yamlio.YamlProblem) and problem.rule == "input/invalid-yaml"
        assert "(5000 characters)" in problem.message and len(problem.message) < 300
    assert isinstance(docs[3], yamlio.ParsedDocument) and docs[3].value == {"d": 4}


def test_an_integer_past_64_bits_in_hex_is_a_string_as_go_yaml_v2_reads_it() -> None:
    (doc,) = parse("a: 0x1FFFFFFFFFFFFFFFF\nb: 18446744073709551615\nc: 0xFFFFFFFFFFFFFFFF\n")
    assert isinstance(doc, yamlio.ParsedDocument)
    assert doc.value == {"a": "0x1FFFFFFFFFFFFFFFF", "b": 2**64 - 1, "c": 2**64 - 1}


def value_of(text: str) -> object:
    (doc,) = parse(text)
    assert isinstance(doc, yamlio.ParsedDocument), doc
    return doc.value


def problem_of(text: str) -> yamlio.YamlProblem:
    problem = parse(text)[-1]
    assert isinstance(problem, yamlio.YamlProblem), problem
    assert problem.rule == "input/invalid-yaml"
    return problem


def test_a_merge_key_after_an_explicit_key_overrides_it_as_in_go_yaml_v2() -> None:
    """go-yaml v2 applies entries in document order; PyYAML lets explicit keys win wherever they stand."""
    assert value_of("s: {privileged: false, <<: {privileged: true}}\n") == {"s": {"privileged": True}}
    assert value_of("s: {<<: {privileged: true}, privileged: false}\n") == {"s": {"privileged": False}}
    text = "x: &p {privileged: true}\nsc:\n  privileged: false\n  <<: *p\n"
    assert value_of(text) == {"x": {"privileged": True}, "sc": {"privileged": True}}


def test_merging_a_sequence_of_maps_lets_the_first_map_win_and_later_keys_override() -> None:
    assert value_of("s: {<<: [{a: 1, b: 1}, {a: 2, c: 2}]}\n") == {"s": {"a": 1, "b": 1, "c": 2}}
    assert value_of("s: {a: 0, <<: [{a: 1, b: 1}, {a: 2, c: 2}], c: 9}\n") == {"s": {"a": 1, "b": 1, "c": 9}}
    assert value_of("s: {<<: {a: 1}, <<: {a: 2}}\n") == {"s": {"a": 2}}
    assert value_of("b: &b {<<: {a: 1}, a: 2}\ns: {a: 0, <<: *b}\n")["s"] == {"a": 2}  # type: ignore[index]


def _override(text: str) -> tuple[str, int, int] | None:
    (doc,) = parse(text)
    assert isinstance(doc, yamlio.ParsedDocument), doc
    found = yamlio.merge_override(doc.node)
    return None if found is None else (found.key, found.earlier_line, found.line)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # written, then set by a later merge: go-yaml v2 keeps the merged value, kustomize the written one
        ("s:\n  privileged: true\n  <<: {privileged: false}\n", ("privileged", 2, 3)),
        ("x: &p {a: 1}\ns:\n  a: 0\n  b: 2\n  <<: [{c: 3}, *p]\n", ("a", 3, 5)),
        ("- {k: {a: 0, <<: {a: 1}}}\n", ("a", 1, 1)),
        # read alike (a key after the merge overrides it; the first map of a sequence wins), or refused
        # by kustomize (two merges, a key written twice): not this problem
        ("s: {<<: {a: 1}, a: 0}\n", None),
        ("s: {<<: [{a: 1}, {a: 2}], b: 0}\n", None),
        ("s: {<<: {a: 1}, <<: {a: 2}}\n", None),
        ("s: {a: 0, a: 1}\n", None),
        ("s: {a: 0, <<: {b: 1}}\n", None),
    ],
)
def test_a_merge_overriding_a_key_written_before_it_is_found(
    text: str, expected: tuple[str, int, int] | None
) -> None:
    assert _override(text) == expected


def test_merging_something_else_than_maps_is_a_problem_with_its_line() -> None:
    for text in ("a: 1\ns: {<<: 1}\n", "a: 1\ns: {<<: [{a: 1}, 2]}\n", "a: 1\ns: {<<: [[{a: 1}]]}\n"):
        problem = problem_of(text)
        assert problem.line == 2 and "map merge requires map" in problem.message, text


def test_nan_and_infinite_values_are_refused_with_their_line() -> None:
    """sigs.k8s.io/yaml cannot write them as JSON: kubectl and conftest fail on the document."""
    for scalar in (".nan", ".NaN", ".inf", "-.inf", "+.INF", "!!float .nan"):
        docs = parse(f"a: 1\n---\nkind: Pod\nspec:\n  v: [1, {scalar}]\n")
        assert isinstance(docs[0], yamlio.ParsedDocument)
        problem = docs[1]
        assert isinstance(problem, yamlio.YamlProblem), scalar
        assert problem.line == 5 and "is not a number JSON can hold" in problem.message, scalar
    assert value_of("v: 1e400\n") == {"v": "1e400"}  # go-yaml v2: ParseFloat overflows, a string


def test_floats_with_a_leading_dot_may_hold_underscores_between_digits() -> None:
    """Go's ParseFloat (strconv's underscoreOK): `_` only between two digits."""
    assert value_of("v: [.0_1, .5_0, .1_0e1_0, !!float .0_1]\n") == {"v": [0.01, 0.5, 1e9, 0.01]}
    assert value_of("v: [._1, .1_, .1__0, .1_e1, .1e_1]\n") == {
        "v": ["._1", ".1_", ".1__0", ".1_e1", ".1e_1"]
    }


def test_a_scalar_with_the_non_specific_tag_is_a_string() -> None:
    """go-yaml v2 leaves `! 010` unresolved (the string "010"); libyaml resolves it (8)."""
    text = "v: ! 010\nw: [! 1, ! true, ! null, 010]\n! 1: k\nmsg: hello! world\nnum: 010\n"
    assert value_of(text) == {
        "v": "010",
        "w": ["1", "true", "null", 8],
        "1": "k",
        "msg": "hello! world",
        "num": 8,
    }


def test_keys_become_json_strings_as_sigs_k8s_yaml_makes_them() -> None:
    """convertToJSONableObject: ints in decimal, booleans, floats as FormatFloat(f, 'g', -1, 32)."""
    text = (
        "data: {1: a, on: b, 1e3: c, 1.5: d, 0x10: e, 0.1: f, 1e20: g, 1.5e-7: h, 16777217.0: i,"
        " 3.14159265358979: j, .nan: k, .inf: l, -.inf: m, -0.0: z, -0: zero, y: o, !!binary aGk=: p}\n"
    )
    assert value_of(text) == {
        "data": {
            "1": "a",
            "true": "o",  # `on` and `y` are both the key true: the later one wins, in go-yaml v2 too
            "1000": "c",
            "1.5": "d",
            "16": "e",
            "0.1": "f",
            "1e+20": "g",
            "1.5e-07": "h",
            "1.6777216e+07": "i",
            "3.1415927": "j",
            ".nan": "k",
            ".inf": "l",
            "-.inf": "m",
            "-0": "z",
            "0": "zero",
            "hi": "p",
        }
    }


def test_an_integer_key_and_a_boolean_key_stay_two_keys() -> None:
    """Python's True == 1 collapsed `{1: a, on: e}` into one key."""
    assert value_of("v: {1: a, on: e}\n") == {"v": {"1": "a", "true": "e"}}
    assert value_of("v: {on: a, yes: b, true: c}\n") == {"v": {"true": "c"}}  # one key to go-yaml too


def test_different_keys_that_become_the_same_json_key_are_refused() -> None:
    """Kubernetes keeps one of them at random (Go's map order): refused, never guessed."""
    for text in (
        "v: {1: a, '1': b}\n",
        "v: {'1': a, 1.0: b}\n",
        "v: {true: a, 'true': b}\n",
        "v: {.nan: a, .nan: b}\n",
    ):
        problem = problem_of(text)
        assert "both become the JSON key" in problem.message and problem.line == 1, text
    problem = problem_of("b: &b {1: a}\nv:\n  '1': x\n  <<: *b\n")
    assert "both become the JSON key '1'" in problem.message and problem.line == 4


def test_keys_kubernetes_cannot_turn_into_json_are_refused() -> None:
    for text, what in (
        ("~: a\n", "null"),
        ("18446744073709551615: a\n", "past int64"),
        ("[1]: a\n", "collection"),
    ):
        problem = problem_of(text)
        assert what in problem.message, text


def test_binary_is_decoded_as_kubernetes_decodes_it() -> None:
    """go-yaml v2: Go's base64.StdEncoding (newlines skipped); JSON writes U+FFFD per invalid byte."""
    text = "a: !!binary aGVsbG8=\nb: !!binary |\n  aGVs\n  bG8=\n"
    text += "c: [!!binary 4oI=, !!binary 7aCA, !!binary '']\n"  # E2 82: cut short; ED A0 80: a surrogate
    assert value_of(text) == {"a": "hello", "b": "hello", "c": ["\ufffd\ufffd", "\ufffd" * 3, ""]}


def test_invalid_base64_is_a_problem_with_its_line() -> None:
    for bad in ("aGVsbG8", "aGVs bG8=", "'a$$'", "aGk=aGk="):
        docs = parse(f"a: 1\n---\nkind: Secret\ndata:\n  v: !!binary {bad}\n")
        problem = docs[1]
        assert isinstance(problem, yamlio.YamlProblem), bad
        assert problem.line == 5 and "invalid base64" in problem.message, bad


def test_go_base64_takes_what_gos_std_encoding_takes() -> None:
    """Every string of a few base64 characters, `=` and line breaks up to 8 long: decoded exactly
    where the Rego builtins' port of Go's decoder decodes it, to the same bytes; Python's own
    decoder takes padding in excess (`aGk==`), Go does not."""
    import itertools

    from trustgate.policy._gobuiltins import _BuiltinError
    from trustgate.policy._goencoding import _STD, _b64decode

    for n in range(9):
        for chars in itertools.product("AQ+=\n", repeat=n):
            text = "".join(chars)
            try:
                expected: bytes | None = _b64decode(text.encode(), _STD)
            except _BuiltinError:
                expected = None
            assert yamlio.go_base64(text) == expected, repr(text)
    assert yamlio.go_base64("aGk==") is None and yamlio.go_base64("YR==") == b"a"


def test_locate_points_at_the_entry_whose_value_is_read() -> None:
    """A later `<<` or a repeated key gives the value: its line is the one a finding names."""
    text = b"""x: &priv
  privileged: true
spec:
  containers:
    - name: a
      securityContext:
        privileged: false
        <<: *priv
    - name: b
      securityContext:
        <<: [{runAsUser: 0}, {runAsUser: 5}]
    - name: c
      securityContext:
        runAsUser: 7
        runAsUser: 9
"""
    (doc,) = yamlio.parse_stream(text, max_nodes=1_000)
    assert isinstance(doc, yamlio.ParsedDocument)
    containers = doc.value["spec"]["containers"]
    assert [c["securityContext"] for c in containers] == [
        {"privileged": True},
        {"runAsUser": 0},
        {"runAsUser": 9},
    ]
    context = ["spec", "containers"]
    assert yamlio.locate(doc.node, [*context, 0, "securityContext", "privileged"]) == 2  # the anchor's line
    assert yamlio.locate(doc.node, [*context, 1, "securityContext", "runAsUser"]) == 11  # the merge's line
    assert yamlio.locate(doc.node, [*context, 2, "securityContext", "runAsUser"]) == 15  # the last one


@pytest.mark.parametrize("depth", [980, 995])  # libyaml itself refuses 1,000 levels
def test_a_document_nested_too_deeply_is_a_problem_and_the_next_is_read(depth: int) -> None:
    """Block mappings nested past what the builder's recursion reaches: that document is an
    invalid-YAML problem (it had escaped as a RecursionError traceback), the next one is read."""
    deep = "x:\n" + "".join("  " * (i + 1) + "k:\n" for i in range(depth)) + "  " * (depth + 1) + "v\n"
    first, second = parse(deep + "---\na: 1\n", max_nodes=100_000)
    assert isinstance(first, yamlio.YamlProblem)
    assert first.rule == "input/invalid-yaml" and "nested too deeply" in first.message
    assert isinstance(second, yamlio.ParsedDocument) and second.value == {"a": 1}
