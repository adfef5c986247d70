"""The removed/deprecated API table, checked against the schemas that ship for each version."""

from __future__ import annotations

import pytest

from trustgate.policy import deprecations
from trustgate.policy.schema import SchemaMissing, SchemaSet, available_versions


def _served(version: str, api_version: str, kind: str) -> bool:
    try:
        SchemaSet(version=version, strict=False).validate({"apiVersion": api_version, "kind": kind})
    except SchemaMissing:
        return False
    return True


def _minor(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


@pytest.mark.parametrize("api", deprecations.all_entries(), ids=lambda a: f"{a.api_version}-{a.kind}")
def test_table_agrees_with_the_bundled_schemas(api: deprecations.ApiLifecycle) -> None:
    versions = available_versions()
    oldest = deprecations.parse_version(versions[0])
    newest = deprecations.parse_version(versions[-1])
    if api.removed <= oldest:
        assert not _served(versions[0], api.api_version, api.kind)
        return
    before = (api.removed[0], api.removed[1] - 1)
    assert _served(_minor(before), api.api_version, api.kind), "served the release before its removal"
    if api.removed <= newest:
        assert not _served(_minor(api.removed), api.api_version, api.kind), "gone in its removal release"


def test_every_removal_names_a_replacement_or_advice() -> None:
    for api in deprecations.all_entries():
        assert api.instead.startswith("use ") or "Pod Security Admission" in api.instead
        assert api.deprecated is None or api.deprecated < api.removed


def test_lookup_and_versions() -> None:
    ingress = deprecations.lifecycle("extensions/v1beta1", "Ingress")
    assert ingress is not None and ingress.removed_in == "1.22"
    assert ingress.instead == "use networking.k8s.io/v1 Ingress"
    assert deprecations.lifecycle("networking.k8s.io/v1", "Ingress") is None
    assert deprecations.parse_version("v1.33.2") == (1, 33)
    with pytest.raises(ValueError):
        deprecations.parse_version("133")
