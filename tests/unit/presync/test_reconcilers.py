"""What Flux and Argo CD apply of a tree (`reconcilers.Views`), and removals judged per reconciler."""

from __future__ import annotations

import dataclasses

import pytest

from trustgate.model import Document, Severity, Source
from trustgate.presync import changes, reconcilers
from trustgate.presync.git import TreeEntry, repo_path
from trustgate.presync.reconcilers import ARGOCD, FLUX, Ignore, IgnorePattern


def excluded(files: dict[str, str], path: str) -> bool:
    return Ignore.of({name: text.encode() for name, text in files.items()}).excludes(path) is not None


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("deploy/.github/pvc.yaml", True),  # `.github/` names a directory at any depth
        (".github/workflows/ci.yml", True),
        ("deploy/.github", False),  # ... a directory: a file of that name is read
        ("deploy/cloudbuild.yaml", True),
        ("deploy/a/.travis.yml", True),
        ("deploy/x/y/.sops.yaml", True),  # `**/.sops.yaml`
        ("deploy/.golangci.yaml", True),
        ("deploy/pvc.yaml", False),
        ("deploy/.flux.yaml.bak", False),
    ],
)
def test_source_controller_defaults(path: str, ignored: bool) -> None:
    assert excluded({}, path) is ignored


def test_a_sourceignore_with_a_pattern_replaces_the_defaults() -> None:
    # storage.SourceIgnoreFilter: the defaults only for an empty pattern list.
    assert not excluded({".sourceignore": "docs/\n"}, "deploy/.github/pvc.yaml")
    assert excluded({".sourceignore": "# only a comment\n\n"}, "deploy/.github/pvc.yaml")
    assert not excluded({"other/.sourceignore": "x\n"}, "deploy/cloudbuild.yaml")  # any file's pattern


@pytest.mark.parametrize(
    ("files", "path", "ignored"),
    [
        ({".sourceignore": "deploy/pvc.yaml\n"}, "deploy/pvc.yaml", True),  # a `/`: from the domain
        ({".sourceignore": "/deploy/pvc.yaml\n"}, "deploy/pvc.yaml", True),
        ({".sourceignore": "pvc.yaml\n"}, "deploy/sub/pvc.yaml", True),  # no `/`: any part
        ({".sourceignore": "deploy/*.yaml\n"}, "deploy/sub/pvc.yaml", False),  # `*` stays in one part
        ({".sourceignore": "deploy/**/pvc.yaml\n"}, "deploy/a/b/pvc.yaml", True),
        ({".sourceignore": "deploy/\n"}, "deploy/pvc.yaml", True),  # a directory, through its parts
        ({".sourceignore": "deploy\n!deploy/pvc.yaml\n"}, "deploy/pvc.yaml", False),  # the last decides
        ({".sourceignore": "!deploy/pvc.yaml\ndeploy\n"}, "deploy/pvc.yaml", True),
        ({"deploy/.sourceignore": "pvc.yaml\n"}, "deploy/pvc.yaml", True),  # a nested file: its domain
        ({"deploy/.sourceignore": "pvc.yaml\n"}, "other/pvc.yaml", False),
        (
            {".sourceignore": "*\n", "deploy/.sourceignore": "!pvc.yaml\n"},
            "deploy/pvc.yaml",
            False,
        ),  # deeper wins
        ({".sourceignore": "p[^x]c.yaml\n"}, "deploy/pvc.yaml", True),  # Go's class negation is `^`
        ({".sourceignore": "p[!x]c.yaml\n"}, "deploy/pvc.yaml", False),  # `!` is a character in Go
        ({".sourceignore": "p[^z-a]c.yaml\n"}, "deploy/pvc.yaml", True),  # a reversed range matches none
        ({".sourceignore": "p[c.yaml\n"}, "deploy/p[c.yaml", False),  # a malformed pattern matches nothing
        ({".sourceignore": "pvc.yaml   \n"}, "deploy/pvc.yaml", True),  # trailing blanks dropped
        ({".sourceignore": "x" * 70_000 + "\npvc.yaml\n"}, "deploy/pvc.yaml", False),  # Go's scanner stops
    ],
)
def test_sourceignore_patterns_as_go_git_matches_them(
    files: dict[str, str], path: str, ignored: bool
) -> None:
    assert excluded(files, path) is ignored


def test_a_pattern_names_its_file() -> None:
    pattern = Ignore.of({"deploy/.sourceignore": b"pvc.yaml\n"}).excludes("deploy/pvc.yaml")
    assert pattern == IgnorePattern.parse("pvc.yaml", ("deploy",), "deploy/.sourceignore")


def views(
    *files: str, reconciler: str = "any", recurse: bool = False, links: tuple[str, ...] = ()
) -> reconcilers.Views:
    entries = [TreeEntry(f, 1) for f in files] + [TreeEntry(f, 1, "120000") for f in links]
    return reconcilers.views(
        reconciler=reconciler, recurse=recurse, paths=["deploy"], entries=entries, ignore_files={}
    )


def test_what_each_reconciler_applies() -> None:
    v = views("deploy/kustomization.yaml", "deploy/sub/kustomization.yaml")
    assert v.unapplied(Source("deploy/pvc.yaml")) == {}
    assert set(v.unapplied(Source("deploy/pvc.json"))) == {FLUX}
    assert set(v.unapplied(Source("deploy/sub/pvc.yaml"))) == {ARGOCD}
    assert set(v.unapplied(Source("deploy/.github/pvc.yaml"))) == {FLUX, ARGOCD}
    assert v.unapplied(Source("deploy/pvc.yaml", rendered_from="deploy")) == {}
    assert set(v.unapplied(Source("deploy/sub/pvc.yaml", rendered_from="deploy/sub"))) == {ARGOCD}
    assert v.unapplied(Source("elsewhere/pvc.yaml")) == {}  # not under the paths: not the views' to say

    linked = views(links=("deploy/pvc.yaml", "deploy/k/kustomization.yaml"))
    assert set(linked.unapplied(Source("deploy/pvc.yaml"))) == {FLUX}
    assert FLUX in linked.unapplied(Source("deploy/k/cm.yaml", rendered_from="deploy/k"))

    assert set(views(recurse=True).unapplied(Source("deploy/sub/pvc.json"))) == {FLUX}
    only_flux = views(reconciler=FLUX).unapplied(Source("deploy/sub/pvc.yaml"))
    assert only_flux == {ARGOCD: "presync.reconciler is flux"}  # the same in every tree: no removal
    assert set(views(reconciler=ARGOCD).unapplied(Source("deploy/pvc.json"))) == {FLUX}


PVC = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "shop"}}


def inventory(file: str, reconciler: str = "any") -> dict[changes.ObjectKey, changes.Seen]:
    v = views(reconciler=reconciler)
    return changes.inventory([Document(Source(file), PVC)], paths=["deploy"], unapplied=v.unapplied)


def removed(gated: str, candidate: str, reconciler: str = "any", **approval: object) -> list[Severity]:
    one = changes.Approval("PersistentVolumeClaim/shop/data", "c" * 40, "lead@example.com")
    granted = [dataclasses.replace(one, **approval)] if approval else []
    results = changes.removals(
        inventory(gated, reconciler),
        inventory(candidate, reconciler),
        protected_kinds=["PersistentVolumeClaim"],
        granted=granted,
        severity=Severity.ERROR,
    )
    return [f.severity for r in results for f in r.findings]


def test_a_removal_is_judged_per_reconciler() -> None:
    assert removed("deploy/pvc.yaml", "deploy/pvc.yaml") == []
    assert removed("deploy/pvc.yaml", "deploy/pvc.json") == [Severity.ERROR]  # Flux prunes it
    assert removed("deploy/pvc.yaml", "deploy/pvc.json", reconciler=ARGOCD) == []
    assert removed("deploy/pvc.yaml", "deploy/sub/pvc.yaml") == [Severity.ERROR]  # Argo CD prunes it
    assert removed("deploy/pvc.yaml", "deploy/sub/pvc.yaml", reconciler=FLUX) == []
    assert removed("deploy/sub/pvc.yaml", "deploy/sub/pvc.yaml") == []  # where one never read it: no change
    assert removed("deploy/sub/pvc.json", "deploy/pvc.yaml") == []  # now read by both: an addition


def test_an_approval_counts_when_its_tree_holds_the_object_only_where_the_reconciler_does_not_read_it() -> (
    None
):
    key = next(iter(inventory("deploy/pvc.json")))
    place = {"scope": "deploy/pvc.yaml"}
    # Its commit holds the object as .json: Flux no longer applies it there.
    assert removed(
        "deploy/pvc.yaml",
        "deploy/pvc.json",
        present={key: "d"},
        present_unapplied={key: frozenset({FLUX})},
        **place,
    ) == [Severity.INFO]
    # Its commit holds it where Flux still applies it: it saw no removal.
    assert removed(
        "deploy/pvc.yaml", "deploy/pvc.json", present={key: "d"}, present_unapplied={}, **place
    ) == [Severity.ERROR]
    # Named no path: its own commit moved it (its parent held it where Flux read it).
    moved = {"present": {key: "d"}, "present_unapplied": {key: frozenset({FLUX})}, "before": {key: "d"}}
    assert removed("deploy/pvc.yaml", "deploy/pvc.json", **moved) == [Severity.INFO]
    assert removed(
        "deploy/pvc.yaml", "deploy/pvc.json", **{**moved, "before_unapplied": {key: frozenset({FLUX})}}
    ) == [Severity.ERROR]


@pytest.mark.parametrize(
    ("files", "path", "ignored"),
    [
        ({}, "deploy/.gitattributes/pvc.yaml", True),  # ExcludeVCS: a name at any depth, a directory's too
        ({".sourceignore": "docs/\n"}, "deploy/.gitignore/pvc.yaml", True),  # ... always in force
        ({".sourceignore": "docs/\n"}, "deploy/.gitmodules", True),
        ({}, "deploy/old.zip/pvc.yaml", True),  # ExcludeExt, while no `.sourceignore` holds a pattern
        ({}, "deploy/x.tar.gz/pvc.yaml", True),
        ({}, "deploy/img.png/pvc.yaml", True),
        ({".sourceignore": "docs/\n"}, "deploy/old.zip/pvc.yaml", False),
        ({".sourceignore": "!.gitignore\n"}, "deploy/.gitignore/pvc.yaml", False),  # VCS lowest: `!` wins
    ],
)
def test_source_controllers_vcs_and_extension_exclusions(
    files: dict[str, str], path: str, ignored: bool
) -> None:
    assert excluded(files, path) is ignored


def test_nested_paths_are_read_whatever_their_order() -> None:
    for paths in (["deploy", "deploy/shop"], ["deploy/shop", "deploy"]):
        v = reconcilers.views(reconciler="argocd", recurse=False, paths=paths, entries=[], ignore_files={})
        assert v.base("deploy/shop/pvc.yaml") == "deploy/shop"
        assert v.unapplied(Source("deploy/shop/pvc.yaml")) == {FLUX: "presync.reconciler is argocd"}
        assert set(v.unapplied(Source("deploy/shop/old/pvc.yaml"))) == {FLUX, ARGOCD}
        assert changes.source_path(Source("deploy/shop/pvc.yaml"), paths) == "deploy/shop"


def test_argocds_skip_marker_and_the_hint_for_flux_alone() -> None:
    v = reconcilers.views(
        reconciler="any",
        recurse=False,
        paths=["deploy"],
        entries=[],
        ignore_files={},
        marked=["deploy/a.yaml"],
    )
    why = v.unapplied(Source("deploy/a.yaml"))
    assert set(why) == {ARGOCD} and "+argocd:skip-file-rendering" in why[ARGOCD]
    assert why[ARGOCD].endswith("set presync.reconciler: flux")
    assert v.unapplied(Source("deploy/a.yaml", rendered_from="deploy")) == {}  # kustomize: not looked for


def test_kustomizations_flux_cannot_see() -> None:
    entries = [
        TreeEntry("deploy/a/kustomization.yaml", 1),
        TreeEntry("deploy/b/kustomization.yaml", 1, "120000"),
        TreeEntry("deploy/c/kustomization.yaml", 1),
    ]
    v = reconcilers.views(
        reconciler="flux",
        recurse=False,
        paths=["deploy"],
        entries=entries,
        ignore_files={"deploy/a/.sourceignore": b"kustomization.yaml\n"},
    )
    assert set(v.unrendered()) == {FLUX} and set(v.unrendered()[FLUX]) == {"deploy/a", "deploy/b"}
    assert dataclasses.replace(v, reconciler="argocd").unrendered() == {}
    recursing = dataclasses.replace(v, reconciler="any", recurse=True).unrendered()
    assert set(recursing[ARGOCD]) == {"deploy/a", "deploy/b", "deploy/c"}  # below its path: read raw


def test_printable_escapes_what_is_not_utf8() -> None:
    text = b"[o\xff]ld/".decode("utf-8", "surrogateescape")
    assert reconcilers.printable(text) == "[o\\xff]ld/"
    assert reconcilers.printable("ünïcode") == "ünïcode"


@pytest.mark.parametrize(
    "entry", ["deploy/shop", "./deploy/shop/", "deploy//shop", "deploy/./shop", "deploy/shop/."]
)
def test_a_path_is_normalised_like_every_other(entry: str) -> None:
    """`presync.paths: [deploy, deploy//shop]`: the deepest entry is the same directory however written."""
    assert repo_path(entry) == "deploy/shop"
    reading = reconcilers.views(
        reconciler="argocd", recurse=False, paths=["deploy", entry], entries=[], ignore_files={}
    )
    assert reading.base("deploy/shop/old/pvc.yaml") == "deploy/shop"


def test_flux_takes_the_next_kustomization_name_it_can_see() -> None:
    """A directory whose `kustomization.yaml` is a link but which holds a `Kustomization` file:
    kustomize-controller builds that one, so Flux does not read its raw files."""
    v = views("deploy/a/Kustomization", "deploy/b/pod.yaml", links=("deploy/a/kustomization.yaml",))
    assert v.flux_kustomization("deploy/a") == "deploy/a/Kustomization"
    assert "deploy/a" not in v.unrendered().get(FLUX, {})
    only = views("deploy/b/pod.yaml", links=("deploy/a/kustomization.yaml",))
    assert only.flux_kustomization("deploy/a") is None
    assert "deploy/a" in only.unrendered()[FLUX]
