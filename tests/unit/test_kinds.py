"""The scope of kinds, and the namespace an object is judged in."""

from __future__ import annotations

from typing import Any

import pytest

from trustgate import kinds


def obj(api_version: str, kind: str, namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "x"}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def crd(group: str, kind: str, scope: Any) -> dict[str, Any]:
    return {"spec": {"group": group, "scope": scope, "names": {"kind": kind}}}


@pytest.mark.parametrize(
    ("manifest", "namespaced", "namespace"),
    [
        (obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "sandbox"), False, ""),
        (obj("v1", "Namespace", "ignored"), False, ""),
        (obj("rbac.authorization.k8s.io/v1", "RoleBinding", "sandbox"), True, "sandbox"),
        (obj("v1", "Pod"), True, ""),
        (obj("example.com/v1", "Widget", "a"), None, "a"),  # unknown scope: as written
        ({"kind": "Pod"}, None, ""),
    ],
)
def test_built_in_scopes(manifest: dict[str, Any], namespaced: bool | None, namespace: str) -> None:
    scopes = kinds.Scopes()
    assert scopes.namespaced(manifest) is namespaced
    assert scopes.namespace_of(manifest) == namespace


def test_a_crd_given_decides_its_kind() -> None:
    scopes = kinds.Scopes.from_crds(
        [crd("example.com", "Widget", "Cluster"), crd("example.com", "Gadget", "Namespaced")]
    )
    assert scopes.namespace_of(obj("example.com/v1", "Widget", "a")) == ""
    assert scopes.namespace_of(obj("example.com/v1", "Gadget", "a")) == "a"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (crd("example.com", "Widget", "Cluster"), (("example.com", "Widget"), False)),
        (crd("example.com", "Widget", "Elsewhere"), (("example.com", "Widget"), None)),
        (crd("example.com", "", "Cluster"), None),
        ({"spec": "nonsense"}, None),
    ],
)
def test_crd_scope(given: dict[str, Any], expected: Any) -> None:
    assert kinds.crd_scope(given) == expected


def test_a_crd_does_not_decide_a_built_in_kind() -> None:
    """The API server serves a built-in kind from its own handler, whatever a CRD says of it."""
    scopes = kinds.Scopes.from_crds(
        [crd("networking.k8s.io", "Ingress", "Cluster"), crd("", "Pod", "Cluster")]
    )
    assert scopes.namespaced(obj("networking.k8s.io/v1", "Ingress", "a")) is True
    assert scopes.namespace_of(obj("v1", "Pod", "a")) == "a"


@pytest.mark.parametrize(
    ("group", "refused"),
    [("example.com", False), ("networking.k8s.io", False), ("", True), ("extensions", True), ("apps", True)],
)
def test_a_crd_group_without_a_dot_is_refused(group: str, refused: bool) -> None:
    assert bool(kinds.crd_group_error(crd(group, "Widget", "Cluster"))) is refused


@pytest.mark.parametrize(
    ("api_version", "found"),
    [
        ("kustomize.toolkit.fluxcd.io/v1", True),
        ("kustomize.toolkit.fluxcd.io/v1beta2", True),
        ("kustomize.toolkit.fluxcd.io/v1beta1", True),
        ("kustomize.toolkit.fluxcd.io", False),  # no `/`: read as a version of the core group
        ("kustomize.config.k8s.io/v1beta1", False),  # kustomize's own kustomization.yaml
        ("kustomize.toolkit.fluxcd.io.evil/v1", False),  # look-alike groups
        ("evil.kustomize.toolkit.fluxcd.io/v1", False),
        ("kustomize.toolkit.fluxcd.io/v1/x", False),  # two `/`: no apiVersion the API server takes
        ("x/kustomize.toolkit.fluxcd.io/v1", False),
        ("v1", False),
        (None, False),
        (1, False),
    ],
)
def test_is_kind_matches_the_group_at_any_version(api_version: object, found: bool) -> None:
    obj = {"apiVersion": api_version, "kind": "Kustomization"}
    assert kinds.is_kind(obj, "kustomize.toolkit.fluxcd.io", "Kustomization") is found
    assert not kinds.is_kind({**obj, "kind": "kustomization"}, "kustomize.toolkit.fluxcd.io", "Kustomization")
