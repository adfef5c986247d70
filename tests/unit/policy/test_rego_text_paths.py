"""Which `data` a module's text reads, as far as plain names go: what tells the gate whether a
package of the user's reads the Rego library's pods (`data.trustgate.lib.k8s`)."""

from __future__ import annotations

import pytest

from trustgate.policy import rego_text

LIBRARY = ("trustgate", "lib", "k8s")


@pytest.mark.parametrize(
    ("text", "paths"),
    [
        ("some c in data.trustgate.lib.k8s.containers", {("trustgate", "lib", "k8s", "containers")}),
        ("import data.trustgate.lib.k8s as lib", {LIBRARY}),
        ("x := data.trustgate.config.workloads[k]", {("trustgate", "config", "workloads")}),
        ('x := data["trustgate"].lib.k8s.pod', {("trustgate", "lib", "k8s", "pod")}),
        ('x := data.trustgate["lib"]["k8s"].pods', {("trustgate",)}),  # a string step: read no further
        ("x := data.trustgate[part].k8s", {("trustgate",)}),
        ("x := walk(data)", {()}),
        ('x := data[\n"trustgate"]', {()}),
        ('msg := "data.trustgate.lib.k8s" # data.trustgate.lib.k8s', set()),  # a string and a comment
        ("x := input.data.trustgate.lib; y := mydata.lib", set()),
        ("a := data.one.b\nb := data.two", {("one", "b"), ("two",)}),
    ],
)
def test_data_paths(text: str, paths: set[tuple[str, ...]]) -> None:
    assert rego_text.data_paths(text) == paths


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ({("trustgate", "lib", "k8s", "containers")}, True),  # below it
        ({("trustgate", "lib")}, True),  # a document it is part of
        ({()}, True),  # the whole of data
        ({("trustgate", "config", "workloads"), ("trustgate", "allowed_registries")}, False),
        ({("trustgate", "lib", "k8s2")}, False),
        (set(), False),
    ],
)
def test_reads(paths: set[tuple[str, ...]], expected: bool) -> None:
    assert rego_text.reads(paths, LIBRARY) is expected
