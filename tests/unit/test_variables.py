"""Variable references as Flux's post-build substitution reads them, and where they change an object."""

from __future__ import annotations

from typing import Any

import pytest

from trustgate.manifests import variables


@pytest.mark.parametrize(
    ("text", "found", "open_"),
    [
        ("plain", False, False),
        ("$HOME", False, False),  # no braces: text to Flux's scanner
        ("a$b", False, False),
        ("${A}", True, False),
        ("x-${A}-y", True, False),
        ("${A:=prod}", True, False),
        ("${A:-d}", True, False),
        ("${A:+x}", True, False),
        ("${#A}", True, False),
        ("${A/x/y}", True, False),
        ("${A:={b}", True, False),  # a `{` alone is text in a default; the first `}` closes
        ("${A:=${B}}", True, False),
        ("$${A}", False, False),  # an escaped `$`: the text `${A}`
        ("a$${A}b", False, False),
        ("$$${A}", True, False),  # `$$` then a reference
        ("${A:=$${B}}", True, False),  # inside a reference `$$` escapes nothing: `$` then `${B}`
        ("${A:=$${B}", True, True),
        ("${A", True, True),
        ("${A:+", True, True),
        ("${A:=${B}", True, True),
        ("}${A", True, True),  # a `}` before the reference closes nothing
        ("$", False, False),
        ("${", True, True),
    ],
)
def test_scan_reads_references_as_fluxs_scanner_does(text: str, found: bool, open_: bool) -> None:
    assert variables.scan(text) == (found, open_)


def _pod(**metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop", **metadata},
        "spec": {"containers": [{"name": "c", "image": "registry.example.com/web:1.2.3"}]},
    }


def test_a_key_anywhere_holding_a_reference_is_found_with_its_path() -> None:
    pod = _pod(annotations={"${AA:=container.apparmor.security.beta.kubernetes.io/c}": "unconfined"})
    pod["spec"]["${HOSTPID:=hostPID}"] = True
    pod["spec"]["containers"][0]["securityContext"] = {"${PRIV:=privileged}": True}
    hits = variables.find(pod)
    assert {(h.where, h.path) for h in hits} == {
        ("key", ("metadata", "annotations", "${AA:=container.apparmor.security.beta.kubernetes.io/c}")),
        ("key", ("spec", "containers", 0, "securityContext", "${PRIV:=privileged}")),
        ("key", ("spec", "${HOSTPID:=hostPID}")),
    }
    assert len(hits) == 3


@pytest.mark.parametrize("field", ["namespace", "name", "generateName"])
def test_namespace_name_and_generate_name_holding_a_reference_are_found(field: str) -> None:
    hits = variables.find(_pod(**{field: "${TARGET:=prod}"}))
    assert [(h.where, h.path, h.text) for h in hits] == [("metadata", ("metadata", field), "${TARGET:=prod}")]


def test_a_label_value_and_a_label_key_are_found() -> None:
    hits = variables.find(_pod(labels={"tier": "${TIER:=web}", "${K:=team}": "a"}))
    assert {(h.where, h.path) for h in hits} == {
        ("metadata", ("metadata", "labels", "tier")),
        ("key", ("metadata", "labels", "${K:=team}")),
    }


def test_a_reference_left_open_in_any_value_is_found_once() -> None:
    pod = _pod(namespace="${NS:=prod")
    pod["spec"]["containers"][0]["env"] = [{"name": "A", "value": "${ZZ:+"}]
    hits = variables.find(pod)
    assert [(h.where, h.path) for h in hits] == [
        ("metadata", ("metadata", "namespace")),
        ("open", ("spec", "containers", 0, "env", 0, "value")),
    ]


def test_values_elsewhere_are_left_to_the_rules_that_read_them() -> None:
    pod = _pod(annotations={"note": "${NOTE:=x}"})
    pod["spec"]["containers"][0]["env"] = [{"name": "H", "value": "${HOME}"}, {"name": "P", "value": "$PATH"}]
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "${A}"}}
    assert variables.find(pod) == [] and variables.find(configmap) == []


def test_escaped_references_are_text() -> None:
    pod = _pod(namespace="$${NS}", annotations={"$${A}": "x"})
    assert variables.find(pod) == []


@pytest.mark.parametrize("field", ["labels", "annotations"])
def test_an_object_flux_does_not_substitute_is_applied_as_written(field: str) -> None:
    pod = _pod(namespace="${NS:=prod}", **{field: {variables.SUBSTITUTE_MARKER: "disabled", "${A}": "x"}})
    assert variables.find(pod) == []
    pod["metadata"][field][variables.SUBSTITUTE_MARKER] = "${D:=disabled}"  # Flux reads the marker first
    hits = {h.path[-1] for h in variables.find(pod)}
    assert hits == {"namespace", "${A}"} | ({variables.SUBSTITUTE_MARKER} if field == "labels" else set())


def test_a_key_that_is_not_a_string_is_walked() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {1: "x", "${A}": "y"}}
    assert [h.path for h in variables.find(obj)] == [("data", "${A}")]
    assert variables.may_hold({1: "x"}) is True  # orjson refuses the key: walked, never skipped


def test_deep_nesting_is_walked_without_recursion() -> None:
    node: dict[str, Any] = {"${A}": 1}
    for _ in range(5_000):
        node = {"x": [node]}
    hits = variables.find({"apiVersion": "v1", "kind": "X", "spec": node})
    assert len(hits) == 1 and hits[0].path[-1] == "${A}" and len(hits[0].path) == 10_002


@pytest.mark.parametrize(
    ("metadata", "bad"),
    [
        ({"namespace": "shop"}, []),
        ({"namespace": "Shop"}, [("metadata", "namespace")]),
        ({"namespace": "a" * 64}, [("metadata", "namespace")]),
        ({"namespace": "${TARGET_NS:=prod}"}, []),  # left to `find`: Flux substitutes it
        ({"labels": {"app.kubernetes.io/name": "web", "ok": "", "x": "a.b-c_d"}}, []),
        ({"labels": {"bad key": "x"}}, [("metadata", "labels", "bad key")]),
        ({"labels": {"a/b/c": "x"}}, [("metadata", "labels", "a/b/c")]),
        ({"labels": {"Example.com/x": "y"}}, [("metadata", "labels", "Example.com/x")]),
        ({"labels": {"x": "a b"}}, [("metadata", "labels", "x")]),
        ({"labels": {"x": "-a"}}, [("metadata", "labels", "x")]),
        ({"labels": {"x": "a" * 64}}, [("metadata", "labels", "x")]),
        ({"annotations": {"Example.COM/x": "y", "a": "any value: ${X}"}}, []),  # lowered first
        ({"annotations": {"/x": "y"}}, [("metadata", "annotations", "/x")]),
        ({"annotations": {"x/": "y"}}, [("metadata", "annotations", "x/")]),
        ({"annotations": {"a" * 254 + "/x": "y"}}, [("metadata", "annotations", "a" * 254 + "/x")]),
        # Go's strings.ToLower makes `İ` an `i`, which the API server then takes.
        ({"annotations": {"\u0130": "y", "x/\u0130" + "a" * 62: "y"}}, []),
        ({"labels": {"\u0130": "y"}}, [("metadata", "labels", "\u0130")]),  # labels are not lowered
        ({"annotations": {"\u017f": "y"}}, [("metadata", "annotations", "\u017f")]),
        # At most 256 KiB of keys and values together, counted in UTF-8 bytes.
        ({"annotations": {"a": "x" * (256 * 1024 - 1)}}, []),
        ({"annotations": {"a": "x" * (256 * 1024)}}, [("metadata", "annotations")]),
        (
            {"annotations": {"a": "x" * 65_536, "b": "x" * 65_536, "c": "x" * 131_072}},
            [("metadata", "annotations")],
        ),
        ({"annotations": {"a": "\u00e9" * (128 * 1024)}}, [("metadata", "annotations")]),
        ({"annotations": {"a": "\u00e9" * (64 * 1024)}}, []),
    ],
)
def test_metadata_the_api_server_refuses_is_found(
    metadata: dict[str, Any], bad: list[tuple[str, ...]]
) -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **metadata}}
    assert [b.path for b in variables.invalid_metadata(obj, namespaced=True)] == bad


def test_a_variable_is_invalid_metadata_where_flux_applies_the_object_as_written() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "${NS:=prod}",
            "labels": {variables.SUBSTITUTE_MARKER: "disabled"},
            "annotations": {"${A:=x}": "y"},
        },
    }
    assert [b.what for b in variables.invalid_metadata(obj, namespaced=True)] == [
        "namespace",
        "annotation key",
    ]


@pytest.mark.parametrize("namespaced", [False, None])
def test_the_namespace_of_a_kind_not_known_to_be_namespaced_is_not_checked(namespaced: bool | None) -> None:
    obj = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "p", "namespace": "Not Valid"}}
    assert variables.invalid_metadata(obj, namespaced=namespaced) == []
