"""Variable references as Flux's post-build substitution reads them, and where they change an object."""

from __future__ import annotations

from typing import Any

import orjson
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


# -- substitution as one application does it ---------------------------------------------------------


def _meta_pod(**metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {"containers": []}}


def _team_a() -> variables.Substitution:
    return variables.Substitution("Kustomization/flux-system/team-a", {"tenant": "team-a"})


@pytest.mark.parametrize(
    ("written", "values", "applied"),
    [
        ("${tenant}", {"tenant": "team-a"}, "team-a"),
        ("${tenant}-app", {"tenant": "team-a"}, "team-a-app"),
        ("${tenant:=prod}", {"tenant": "team-a"}, "team-a"),
        ("${tenant:=prod}", {}, "prod"),  # complete: unset, so the default
        ("${tenant:-prod}", {"tenant": ""}, "prod"),  # set but empty: the default too
        ("$${tenant}", {"tenant": "team-a"}, "${tenant}"),  # escaped
        ("a$$b ${tenant}", {"tenant": "team-a"}, "a$b team-a"),
        ("$tenant", {"tenant": "team-a"}, "$tenant"),  # no braces: text
        ("${N}", {"N": "3"}, 3),  # a whole plain value is typed again, as Flux's YAML reading does
        ("${ON}", {"ON": "true"}, True),
        ("${L}", {"L": "[a, b]"}, ["a", "b"]),
        ("${N}x", {"N": "3"}, "3x"),
    ],
)
def test_substitute_resolves_as_flux_applies(written: str, values: dict[str, str], applied: Any) -> None:
    substitution = variables.Substitution("K", {"x": "1", **values})
    done = variables.substitute({"kind": "ConfigMap", "data": {"k": written}}, substitution)
    assert done.obj["data"]["k"] == applied and not done.unresolved


def test_substitute_keys_and_metadata() -> None:
    obj = _meta_pod(name="${tenant}-app", namespace="${tenant}", labels={"tenant": "${tenant}"})
    obj["metadata"]["annotations"] = {"${tenant}.example.com/x": "1"}
    done = variables.substitute(obj, _team_a())
    assert done.changed and not done.unresolved
    assert done.obj["metadata"] == {
        "name": "team-a-app",
        "namespace": "team-a",
        "labels": {"tenant": "team-a"},
        "annotations": {"team-a.example.com/x": "1"},
    }
    assert variables.find(done.obj) == []
    assert obj["metadata"]["namespace"] == "${tenant}"  # the object read is not changed


@pytest.mark.parametrize(
    ("written", "complete", "why"),
    [
        ("${region}", True, "does not set the variable region, which has no default"),
        ("${region:=eu}", False, "does not set the variable region, and ConfigMap/x is not in the tree"),
        ("${region}", False, "does not set the variable region, and ConfigMap/x is not in the tree"),
        ("${tenant:+x}", True, "a form trustgate does not evaluate"),
        ("${tenant:=${other}}", True, "a form trustgate does not evaluate"),
        ("${tenant", True, "left open"),
    ],
)
def test_what_cannot_be_resolved_stays_as_written_with_why(written: str, complete: bool, why: str) -> None:
    substitution = variables.Substitution(
        "K", {"tenant": "a"}, complete=complete, unknown="ConfigMap/x is not in the tree"
    )
    done = variables.substitute(_meta_pod(namespace=written), substitution)
    assert done.obj["metadata"]["namespace"] == written, done
    assert any(why in line for line in done.unresolved), done.unresolved
    assert [hit.path for hit in variables.find(done.obj)] == [("metadata", "namespace")]


@pytest.mark.parametrize("value", ["a: b", "- a", "*alias", "a: b #c"])
def test_a_value_flux_cannot_read_once_substituted_is_certain_and_stays_text(value: str) -> None:
    """`namespace: ${tenant}` with `tenant: "a: b"` reads `namespace: a: b`, which Flux's YAMLToJSON
    refuses: it applies nothing. The object stays one the gate can encode (a string, never a
    placeholder) and says why, for certain."""
    substitution = variables.Substitution("K", {"tenant": value})
    for obj in (_meta_pod(namespace="${tenant}"), _meta_pod(annotations={"${tenant}": "x"})):
        done = variables.substitute(obj, substitution)
        assert done.certain and any("Flux fails the build" in line for line in done.unresolved), done
        orjson.dumps(done.obj)  # raises on a value that is not JSON
    assert variables.substitute(_meta_pod(namespace="${tenant}"), substitution).obj["metadata"] == {
        "namespace": value
    }


def test_substitute_leaves_disabled_and_empty_substitutions_as_written() -> None:
    marked = _meta_pod(namespace="${tenant}", labels={variables.SUBSTITUTE_MARKER: "disabled"})
    assert variables.substitute(marked, _team_a()).obj is marked
    # No variable at all: kustomize-controller substitutes nothing (`len(vars) > 0`).
    obj = _meta_pod(namespace="${tenant:=prod}")
    assert variables.substitute(obj, variables.Substitution("K", {})).obj is obj


def _kustomization(post_build: Any, namespace: str = "flux-system") -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "team-a", "namespace": namespace},
        "spec": {"path": "./tenants/base", "postBuild": post_build},
    }


def _source(kind: str, name: str, namespace: str = "flux-system", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}, **fields}


def test_a_sops_encrypted_secret_is_unknown_not_a_stop() -> None:
    """A substituteFrom Secret encrypted with SOPS (Flux decrypts it with spec.decryption): its
    `ENC[...]` values are no base64 and not what Flux substitutes, so it counts as a source not
    known here (only `substitute` is certain, no default is taken), naming it; the run goes on."""
    k = _kustomization(
        {"substitute": {"tenant": "team-a"}, "substituteFrom": [{"kind": "Secret", "name": "s"}]}
    )
    secret = _source(
        "Secret", "s", data={"region": "ENC[AES256_GCM,data:abc=,type:str]"}, sops={"version": "3.8.1"}
    )
    substitution, why = variables.flux_substitution(k, [secret], applied_as="K", where="the tree")
    assert why == "" and substitution is not None
    assert substitution.values == {"tenant": "team-a"} and not substitution.complete
    assert "Secret/flux-system/s" in substitution.unknown and "SOPS" in substitution.unknown
    done = variables.substitute(_meta_pod(namespace="${tenant}", name="${region:=eu}"), substitution)
    assert done.obj["metadata"]["namespace"] == "team-a" and done.obj["metadata"]["name"] == "${region:=eu}"
    assert not done.certain and any("SOPS" in line for line in done.unresolved), done.unresolved


def test_flux_substitution_merges_in_fluxs_order() -> None:
    """substituteFrom objects in order (a later one overrides), a Secret decoded with its stringData
    over its data, then `substitute` over all; newlines removed."""
    k = _kustomization(
        {
            "substitute": {"tenant": "team-a"},
            "substituteFrom": [{"kind": "ConfigMap", "name": "one"}, {"kind": "Secret", "name": "two"}],
        }
    )
    objects = [
        _source("ConfigMap", "one", data={"tenant": "cm", "region": "eu", "zone": "z1"}),
        _source("ConfigMap", "one", namespace="other", data={"region": "other-namespace"}),
        _source("Secret", "two", data={"zone": "ejI=", "size": "bGFy\nZ2U="}, stringData={"size": "s\n"}),
    ]
    substitution, why = variables.flux_substitution(k, objects, applied_as="K", where="the tree")
    assert why == "" and substitution is not None and substitution.complete
    assert substitution.values == {"tenant": "team-a", "region": "eu", "zone": "z2", "size": "s"}


def test_flux_substitution_of_an_object_not_found() -> None:
    """Not found (perhaps only in the cluster): it may set any variable and override those read
    before it, so only those after it and `substitute` are certain."""
    k = _kustomization(
        {
            "substitute": {"tenant": "team-a"},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "before"},
                {"kind": "ConfigMap", "name": "cluster-only", "optional": True},
                {"kind": "ConfigMap", "name": "after"},
            ],
        }
    )
    objects = [
        _source("ConfigMap", "before", data={"a": "1"}),
        _source("ConfigMap", "after", data={"b": "2"}),
    ]
    substitution, why = variables.flux_substitution(k, objects, applied_as="K", where="the tree")
    assert why == "" and substitution is not None and not substitution.complete
    assert substitution.values == {"b": "2", "tenant": "team-a"}
    assert (
        "ConfigMap/flux-system/cluster-only" in substitution.unknown
        and "not in the tree" in substitution.unknown
    )


@pytest.mark.parametrize(
    ("post_build", "objects", "why"),
    [
        ("x", [], "spec.postBuild is not a mapping"),
        ({"substitute": {"n": 3}}, [], "not a mapping of strings to strings"),
        ({"substitute": {"1bad": "x"}}, [], "refused by Flux"),
        ({"substituteFrom": [{"kind": "Pod", "name": "x"}]}, [], "is not a ConfigMap or Secret"),
        (
            {"substituteFrom": [{"kind": "Secret", "name": "s"}]},
            [_source("Secret", "s", data={"a": "%%%"})],
            "does not decode",
        ),
        (  # padding in excess: Python's decoder takes it, Go's (the API server's) does not
            {"substituteFrom": [{"kind": "Secret", "name": "s"}]},
            [_source("Secret", "s", data={"a": "dGVhbS1h="})],
            "does not decode",
        ),
        (
            {"substituteFrom": [{"kind": "ConfigMap", "name": "c"}]},
            [_source("ConfigMap", "c", data={"a": "1"}), _source("ConfigMap", "c", data={"a": "2"})],
            "more than once, with different data",
        ),
    ],
)
def test_flux_substitution_that_cannot_be_worked_out(post_build: Any, objects: list[Any], why: str) -> None:
    substitution, found = variables.flux_substitution(
        _kustomization(post_build), objects, applied_as="K", where="the tree"
    )
    assert substitution is None and why in found, found


def test_flux_substitution_without_post_build() -> None:
    k = _kustomization(None)
    del k["spec"]["postBuild"]
    assert variables.flux_substitution(k, [], applied_as="K", where="the tree") == (None, "")


def test_copies_of_one_substitute_from_object_are_one_object() -> None:
    """A ConfigMap a substituting Kustomization applies itself is seen as written and as that
    Kustomization applies it: one object (one origin), not two. A value the copies agree on is
    taken; one they give apart (which the cluster holds depends on who applied it last) stays
    unresolved, named, with no default taken; nothing stops the run."""
    k = _kustomization({"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]})
    written = _source("ConfigMap", "vars", data={"tenant": "team-a", "domain": "${tenant}.example.com"})
    applied = _source("ConfigMap", "vars", data={"tenant": "team-a", "domain": "team-a.example.com"})
    objects = [
        variables.SourceObject(written, "clusters/prod/vars.yaml:1"),
        variables.SourceObject(applied, "clusters/prod/vars.yaml:1"),
    ]
    substitution, why = variables.flux_substitution(k, objects, applied_as="K", where="the tree")
    assert why == "" and substitution is not None and substitution.complete
    assert substitution.values == {"tenant": "team-a"}
    assert set(substitution.uncertain) == {"domain"}
    assert "clusters/prod/vars.yaml:1" in substitution.uncertain["domain"]
    done = variables.substitute(_meta_pod(namespace="${tenant}", name="${domain:=web}"), substitution)
    assert done.obj["metadata"]["namespace"] == "team-a"
    assert done.obj["metadata"]["name"] == "${domain:=web}" and not done.certain
    assert any("variable domain" in line and "vars.yaml:1" in line for line in done.unresolved), (
        done.unresolved
    )

    # The copy as applied alone (the cluster's): every value known.
    substitution, why = variables.flux_substitution(k, objects[1:], applied_as="K", where="the tree")
    assert why == "" and substitution is not None
    assert substitution.values == {"tenant": "team-a", "domain": "team-a.example.com"}
    assert not substitution.uncertain


def test_an_unsettled_copy_leaves_its_values_holding_a_dollar_unknown() -> None:
    """A copy as written that the cluster holds substituted (`settled` False): a value holding `$`
    is not what Flux reads; the others are. Marked `substitute: disabled`, it is applied as written."""
    k = _kustomization({"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]})
    data = {"tenant": "team-a", "password": "pa$$word"}
    substitution, why = variables.flux_substitution(
        k,
        [variables.SourceObject(_source("ConfigMap", "vars", data=data), "a.yaml:1", settled=False)],
        applied_as="K",
        where="the tree",
    )
    assert why == "" and substitution is not None
    assert substitution.values == {"tenant": "team-a"} and set(substitution.uncertain) == {"password"}
    disabled = _source(
        "ConfigMap",
        "vars",
        data=data,
        metadata={
            "name": "vars",
            "namespace": "flux-system",
            "labels": {variables.SUBSTITUTE_MARKER: "disabled"},
        },
    )
    substitution, why = variables.flux_substitution(
        k, [variables.SourceObject(disabled, "a.yaml:1", settled=False)], applied_as="K", where="the tree"
    )
    assert substitution is not None and substitution.values == data and not substitution.uncertain


def test_two_objects_of_one_name_with_different_data_name_both_files() -> None:
    k = _kustomization({"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]})
    objects = [
        variables.SourceObject(
            _source("ConfigMap", "vars", data={"tenant": "a"}), "clusters/prod/vars.yaml:1"
        ),
        variables.SourceObject(
            _source("ConfigMap", "vars", data={"tenant": "b"}), "clusters/prod/more.yaml:4"
        ),
        variables.SourceObject(
            _source("ConfigMap", "vars", data={"tenant": "a"}), "clusters/prod/vars.yaml:1"
        ),
    ]
    substitution, why = variables.flux_substitution(k, objects, applied_as="K", where="presync.paths")
    assert substitution is None and "more than once, with different data" in why, why
    assert "clusters/prod/vars.yaml:1" in why and "clusters/prod/more.yaml:4" in why, why
    # The same data written twice: one value, no conflict.
    objects[1] = variables.SourceObject(objects[0].obj, "clusters/prod/more.yaml:4")
    substitution, why = variables.flux_substitution(k, objects, applied_as="K", where="presync.paths")
    assert why == "" and substitution is not None and substitution.values == {"tenant": "a"}


def test_an_optional_object_known_absent_is_skipped_and_defaults_are_taken() -> None:
    """An object known not to be in the cluster (`absent`) marked `optional: true` is skipped, as
    kustomize-controller skips it: the values read before it stay, the substitution is complete, so
    a default is what is applied. One not optional fails the build (`fails_without`)."""
    k = _kustomization(
        {
            "substitute": {"region": "eu"},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "before"},
                {"kind": "ConfigMap", "name": "vars", "optional": True},
            ],
        }
    )
    objects = [_source("ConfigMap", "before", data={"a": "1"})]
    absent = {("ConfigMap", "flux-system", "vars")}
    substitution, why = variables.flux_substitution(
        k, objects, applied_as="K", where="the tree", absent=absent
    )
    assert why == "" and substitution is not None and substitution.complete, substitution
    assert substitution.values == {"a": "1", "region": "eu"}
    done = variables.substitute(_meta_pod(namespace="${tenant:=kube-system}", name="${tenant}"), substitution)
    assert done.obj["metadata"]["namespace"] == "kube-system", done.obj
    assert done.certain and done.obj["metadata"]["name"] == "${tenant}", (
        done
    )  # unset, no default: applied empty
    assert variables.fails_without(k, absent) == []

    # Not known absent (it may live in the cluster): unknown, as before, optional or not.
    substitution, _ = variables.flux_substitution(k, objects, applied_as="K", where="the tree")
    assert substitution is not None and not substitution.complete and substitution.values == {"region": "eu"}
    # Not optional: Flux fails the build without it.
    required = _kustomization({"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]})
    assert variables.fails_without(required, absent) == ["ConfigMap/flux-system/vars"]
    assert variables.fails_without(required, {("ConfigMap", "other", "vars")}) == []
    assert variables.fails_without(_kustomization(None), absent) == []
