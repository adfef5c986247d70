from __future__ import annotations

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
