"""The pieces of the pre-sync gate's builds: how Flux joins a path, which kustomization keys are
refused, how a build's kustomization is written and put back, which unreached kustomizations are
rendered."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trustgate.manifests import loader, variables
from trustgate.model import Document, Source
from trustgate.presync import changes, reconcilers, runner
from trustgate.presync.git import TreeEntry, secure_path, within


@pytest.mark.parametrize(
    ("path", "joined"),
    [
        ("../apps/web", "apps/web"),
        ("./apps/../apps/web/", "apps/web"),
        ("../../..", ""),
        ("apps/web/../../../x", "x"),
        ("./", ""),
        # The reviewer's table (filepath-securejoin, Go): whitespace is part of a name, never stripped.
        ("/apps/web", "apps/web"),
        ("", ""),
        (".", ""),
        ("apps//web", "apps/web"),
        ("apps/./web", "apps/web"),
        ("apps/web/..", "apps"),
        ("apps/../../web", "web"),
        ("apps%2Fweb", "apps%2Fweb"),
        ("apps\\web", "apps\\web"),
        ("./apps/web/", "apps/web"),
        ("apps/web/...", "apps/web/..."),
        ("apps/web ", "apps/web "),
        (" apps/web", " apps/web"),
        ("apps/web\n", "apps/web\n"),
        ("./apps/agent\n", "apps/agent\n"),
        ("apps/web\t", "apps/web\t"),
        ("apps/web\xa0", "apps/web\xa0"),
        ("apps/web\u3000", "apps/web\u3000"),
        ("apps/web\u2028", "apps/web\u2028"),
        ("apps/\u0301web", "apps/\u0301web"),
        ("apps/ /web", "apps/ /web"),
        ("apps/web/. ", "apps/web/. "),
        ("//apps/web", "apps/web"),
        ("apps/web/./../web", "apps/web"),
    ],
)
def test_a_flux_path_is_joined_as_securejoin_joins_it(path: str, joined: str) -> None:
    assert secure_path(path) == joined


@pytest.mark.parametrize(
    ("path", "directory", "inside"),
    [
        ("apps/web/a.yaml", "", True),  # "" is the whole tree
        ("", "", True),
        ("apps", "apps", True),
        ("apps/web", "apps", True),
        ("apps/web/a.yaml", "apps/web", True),
        ("apps/webx", "apps/web", False),  # a name that starts alike is not below
        ("apps/bc", "apps/b", False),
        ("appsx/web", "apps", False),
        ("apps", "apps/web", False),  # above
        ("", "apps", False),
        ("other/apps/web", "apps/web", False),
    ],
)
def test_within_is_at_or_below_a_directory_by_whole_names(path: str, directory: str, inside: bool) -> None:
    """`within` replaced the inline `not d or p == d or p.startswith(d + "/")` of presync's
    path tests: the same answer for every pair of repository paths."""
    assert within(path, directory) is inside
    assert within(path, directory) is (not directory or path == directory or path.startswith(directory + "/"))


def test_kustomization_keys_in_another_case_are_found() -> None:
    assert changes.case_variant_keys({"resources": [], "Patches": [], "IMAGES": [], "other": 1}) == [
        "Patches",
        "IMAGES",
    ]
    assert changes.case_variant_keys({"resources": [], "patches": [], "images": []}) == []


@pytest.mark.parametrize(
    "key", ["name\u017fpace", "image\u017f", "patche\u017f", "component\u017f", "\u212aind", "Namespace"]
)
def test_a_key_go_folds_onto_a_field_is_found(key: str) -> None:
    """Go's encoding/json folds the long s (U+017F) to `s` and the Kelvin sign (U+212A) to `k`:
    `namespace` with a long s is kustomize's `namespace`, so it is refused as a field spelled otherwise."""
    assert changes.case_variant_keys({key: "x", "resources": []}) == [key]
    assert changes.case_variant_keys({"namespace": "a", "name\u017fpace": "b"}) == ["name\u017fpace"]


def test_a_key_no_go_fold_maps_onto_a_field_is_kept() -> None:
    """Go folds no sharp s into `ss`, nor U+0130 into `i`: those keys are not kustomize's fields."""
    assert changes.case_variant_keys({"claßName": 1, "\u0130mages": [], "re\u017fourcesX": []}) == []


def test_an_image_of_the_same_name_is_replaced_whole() -> None:
    build = changes.FluxBuild("k", "f.yaml", "apps", images=({"name": "web", "newTag": "2"},))
    written = {"images": [{"name": "web", "digest": "sha256:1"}, {"name": "Web", "newTag": "x"}]}
    assert build.kustomization(written)["images"] == [
        {"name": "web", "newTag": "2"},
        {"name": "Web", "newTag": "x"},
    ]


def test_a_link_is_replaced_then_put_back_not_written_through(tmp_path: Path) -> None:
    link = tmp_path / "kustomization.yaml"
    os.symlink("missing/kustomization.yaml", link)
    with runner._written(link, b"resources: []\n"):
        assert not link.is_symlink() and link.read_bytes() == b"resources: []\n"
    assert os.readlink(link) == "missing/kustomization.yaml"
    assert not (tmp_path / "missing").exists()

    file = tmp_path / "kustomization.yml"
    file.write_bytes(b"own\n")
    with runner._written(file, b"built\n"):
        assert file.read_bytes() == b"built\n"
    assert file.read_bytes() == b"own\n"

    new = tmp_path / "sub" / "kustomization.yaml"
    new.parent.mkdir()
    with runner._written(new, b"built\n"):
        assert new.read_bytes() == b"built\n"
    assert not new.exists()


def test_a_directory_is_not_written(tmp_path: Path) -> None:
    directory = tmp_path / "kustomization.yaml"
    directory.mkdir()
    with pytest.raises(OSError), runner._written(directory, b"x"):
        pass
    assert directory.is_dir()


def test_every_unreached_kustomization_is_rendered_alone(tmp_path: Path) -> None:
    """Each kustomization no unit renders is rendered alone, a base an overlay includes too (a
    reconciler may apply it alone, and the overlay may delete what it holds), a component too
    (kustomize builds one holding resources alone). Which of them include each is told, to excuse a
    failure alone."""
    files = {
        "top/kustomization.yaml": "resources: []\n",
        "top/overlay/kustomization.yaml": "resources: [../base]\ncomponents: [../component]\n",
        "top/base/kustomization.yaml": "resources: []\n",
        "top/component/kustomization.yaml": "kind: Component\n",
        "top/a/kustomization.yaml": "resources: [../b]\n",
        "top/b/kustomization.yaml": "resources: [../a]\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    reading = reconcilers.views(
        reconciler="flux",
        recurse=False,
        paths=["top"],
        entries=[TreeEntry(name, 1) for name in files],
        ignore_files={},
    )
    units, includers = runner._unreached(reading, [loader.Unit(str(tmp_path / "top"), "kustomize")], tmp_path)
    assert [Path(u.path).relative_to(tmp_path).as_posix() for u in units] == [
        "top/a",
        "top/b",
        "top/base",
        "top/component",
        "top/overlay",
    ]
    named = {
        Path(k).relative_to(tmp_path).as_posix(): sorted(Path(v).relative_to(tmp_path).as_posix() for v in vs)
        for k, vs in includers.items()
    }
    assert named == {
        "top/a": ["top/b"],
        "top/b": ["top/a"],
        "top/base": ["top/overlay"],
        "top/component": ["top/overlay"],
    }


def _vars(tenant: str | None) -> list[variables.SourceObject]:
    if tenant is None:
        return []
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "vars", "namespace": "flux-system"},
        "data": {"tenant": tenant},
    }
    return [variables.SourceObject(obj, "clusters/prod/vars.yaml:1")]


def _team(optional: bool = False) -> changes.FluxBuild:
    ref: dict[str, object] = {"kind": "ConfigMap", "name": "vars", **({"optional": True} if optional else {})}
    kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "team", "namespace": "flux-system"},
        "spec": {"path": "./tenants/base", "postBuild": {"substitute": {"x": "1"}, "substituteFrom": [ref]}},
    }
    return changes.FluxBuild(
        label="Kustomization/flux-system/team",
        file="clusters/prod/team.yaml",
        path="tenants/base",
        substitutes=kustomization,
    )


def _built(
    build: changes.FluxBuild, objects: list[variables.SourceObject]
) -> tuple[list[Document], list[Document], variables.Substitution]:
    written = [
        Document(
            Source("tenants/base/agent.yaml"),
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "agent", "namespace": "${tenant:=legacy}"},
            },
        ),
        Document(
            Source("tenants/base/cm.yaml"),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain", "namespace": "shop"}},
        ),
    ]
    assert build.substitutes is not None
    substitution, why = variables.flux_substitution(
        build.substitutes, objects, applied_as=build.label, where="t"
    )
    assert substitution is not None and not why
    return written, [variables.apply(d, substitution, always=True) for d in written], substitution


@pytest.mark.parametrize(
    ("now", "was", "optional", "namespaces"),
    [
        ("legacy", "legacy", False, []),  # unchanged: judged once
        ("legacy", "kube-system", False, ["kube-system"]),  # changed: the values the cluster holds too
        ("legacy", None, False, []),  # added, not optional: Flux's first reconcile fails, applies nothing
        ("kube-system", None, True, ["legacy"]),  # added, optional: skipped, the default taken
    ],
)
def test_the_first_reconcile_is_judged_where_the_values_the_cluster_holds_differ(
    now: str, was: str | None, optional: bool, namespaces: list[str]
) -> None:
    """What a Kustomization applies on Flux's first reconcile of the candidate, with the
    `substituteFrom` objects the gated tree left in the cluster: only the objects that come out
    otherwise than with the candidate's values (the ConfigMap without variables is never twice),
    each named as applied with the values the cluster holds before this change."""
    build = _team(optional)
    objects = _vars(now)
    written, applied, substitution = _built(build, objects)
    firsts, problem = runner._first_reconcile(build, objects, _vars(was), substitution, written, applied)
    assert problem is None
    assert [d.namespace for d in firsts] == namespaces
    assert all(
        d.applied_as == build.label and d.applied_with == runner._BEFORE and d.kind == "Pod" for d in firsts
    )


def test_a_first_reconcile_that_cannot_be_worked_out_is_a_problem() -> None:
    """The gated tree's `vars` holds data Flux cannot read: the first reconcile's values are not
    known, so the run stops (fail closed), naming the Kustomization and saying which values."""
    build = _team()
    objects = _vars("legacy")
    written, applied, substitution = _built(build, objects)
    broken = [variables.SourceObject({**objects[0].obj, "data": {"tenant": 1}}, "clusters/prod/vars.yaml:1")]
    firsts, problem = runner._first_reconcile(build, objects, broken, substitution, written, applied)
    assert firsts == [] and problem is not None
    assert "Kustomization/flux-system/team" in problem.message and runner._BEFORE in problem.message
    assert "data.tenant that is not a string" in problem.message
