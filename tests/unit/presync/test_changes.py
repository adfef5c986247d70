"""Removed protected objects and approvals, on in-memory commits and documents."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import pytest

import trustgate.cli.main  # noqa: F401  (the CLI is imported through main, which registers presync)
from trustgate import kinds
from trustgate.cli.presync import parse_interval
from trustgate.config import DEFAULT_PROTECTED_KINDS, CommitSettings
from trustgate.model import Document, Severity, Source
from trustgate.presync import changes
from trustgate.presync.git import Commit, Signature, full_ref, is_url
from trustgate.presync.signatures import commit_findings, good_signature, signer_identities


def doc(kind: str, name: str, namespace: str | None = None, api: str = "v1") -> Document:
    metadata = {"name": name} | ({"namespace": namespace} if namespace else {})
    return Document(Source(f"{kind.lower()}.yaml"), {"apiVersion": api, "kind": kind, "metadata": metadata})


def commit(
    status: str = "G",
    *,
    kind: str = "ssh",
    signer: str = "bob@example.com",
    approvals: tuple[str, ...] = (),
    sha: str = "a" * 40,
    parents: tuple[str, ...] = (),
) -> Commit:
    key = "SHA256:abc" if kind == "ssh" else "0123456789ABCDEF"
    return Commit(
        sha=sha,
        tree="b" * 40,
        parents=parents,
        author_name="A",
        author_email="a@example.com",
        committer_name="A",
        committer_email="a@example.com",
        subject="s",
        signature=Signature(
            status, signer, key, "" if kind == "ssh" else "F" * 40, kind if status != "N" else ""
        ),
        approvals=approvals,
    )


BEFORE = changes.inventory(
    [
        doc("Namespace", "shop"),
        doc("PersistentVolumeClaim", "data", "shop"),
        doc("ConfigMap", "settings", "shop"),
        doc("StatefulSet", "db", "shop", api="apps/v1"),
    ]
)


def test_only_protected_kinds_that_disappear_are_reported() -> None:
    after = changes.inventory(
        [doc("Namespace", "shop"), doc("StatefulSet", "db", "shop", api="apps/v1beta2")]
    )
    results = changes.removals(
        BEFORE, after, protected_kinds=DEFAULT_PROTECTED_KINDS, granted=[], severity=Severity.ERROR
    )
    # The ConfigMap is not protected; the StatefulSet only changed API version: the same object.
    assert [r.name for r in results] == ["data"]
    (finding,) = results[0].findings
    assert (
        finding.severity == Severity.ERROR
        and "PersistentVolumeClaim/shop/data would be deleted" in finding.message
    )


DATA = changes.ObjectKey("", "PersistentVolumeClaim", "shop", "data")
HELD = {DATA: BEFORE[DATA].digest}  # what the approving commit's first parent holds: its change removes it


def test_an_approval_counts_only_from_an_approver_with_a_good_signature() -> None:
    wanted = ("PersistentVolumeClaim/shop/*",)
    cases = {
        "approver": (commit(approvals=wanted), True),
        "someone else": (commit(signer="alice@example.com", approvals=wanted), False),
        "bad signature": (commit("B", approvals=wanted), False),
        "ssh key not allowed": (commit("U", approvals=wanted), False),
        "gpg, no ownertrust, named by fingerprint": (commit("U", kind="gpg", approvals=wanted), True),
        # a GPG user id is what the key's holder wrote: it names nobody
        "gpg user id": (commit("G", kind="gpg", signer="Mallory <bob@example.com>", approvals=wanted), False),
        "unsigned": (commit("N", approvals=wanted), False),
    }
    for label, (c, approved) in cases.items():
        approvers = ["bob@example.com"] + (["F" * 40] if "fingerprint" in label else [])
        granted = [dataclasses.replace(a, present={}, before=HELD) for a in changes.approvals([c], approvers)]
        results = changes.removals(
            BEFORE, {}, protected_kinds=["PersistentVolumeClaim"], granted=granted, severity=Severity.ERROR
        )
        assert (results[0].findings[0].severity == Severity.INFO) is approved, label


def test_commit_findings() -> None:
    settings = CommitSettings(require_signatures=True, authors=("*@example.com",))
    assert commit_findings(commit(), settings, Severity.ERROR) == []
    (unsigned,) = commit_findings(commit("N"), settings, Severity.ERROR)
    assert unsigned.rule == "commit-unsigned"
    (bad,) = commit_findings(commit("E", kind="gpg"), settings, Severity.WARNING)
    assert bad.rule == "commit-signature" and bad.severity == Severity.WARNING
    assert "not an allowed signer" in bad.message
    assert not good_signature(commit("U")) and good_signature(commit("U", kind="gpg"))
    assert signer_identities(commit("U", kind="gpg", signer="Bob <bob@example.com>")) == [
        "0123456789ABCDEF",
        "F" * 40,
    ]
    assert signer_identities(commit(signer="bob@example.com")) == ["bob@example.com"]


def test_an_approval_counts_only_where_its_commit_no_longer_holds_the_object() -> None:
    """`present` (filled in by the runner) is what the approving commit's tree still holds: an
    approver who never saw the deletion approved nothing; one not looked at yet neither."""
    (approval,) = changes.approvals(
        [commit(approvals=("PersistentVolumeClaim/shop/*",))], ["bob@example.com"]
    )
    data = changes.ObjectKey("", "PersistentVolumeClaim", "shop", "data")

    def severity(granted: changes.Approval) -> Severity:
        (result,) = changes.removals(
            BEFORE, {}, protected_kinds=["PersistentVolumeClaim"], granted=[granted], severity=Severity.ERROR
        )
        return result.findings[0].severity

    assert severity(approval) == Severity.ERROR  # not looked at
    assert severity(dataclasses.replace(approval, present={data: "digest"}, before=HELD)) == Severity.ERROR
    assert severity(dataclasses.replace(approval, present={}, before=HELD)) == Severity.INFO


@pytest.mark.parametrize(
    ("value", "pattern", "scope"),
    [
        ("PersistentVolumeClaim/shop/data", "PersistentVolumeClaim/shop/data", ""),
        (
            "PersistentVolumeClaim/shop/data in prod/pvc.yaml",
            "PersistentVolumeClaim/shop/data",
            "prod/pvc.yaml",
        ),
        ("PersistentVolumeClaim/shop/* in ./prod/", "PersistentVolumeClaim/shop/*", "prod"),
        (
            "PersistentVolumeClaim/shop/data in  my dir/pvc.yaml",
            "PersistentVolumeClaim/shop/data",
            "my dir/pvc.yaml",
        ),
        ("PersistentVolumeClaim/shop/data in .", "PersistentVolumeClaim/shop/data", "."),
        ("PersistentVolumeClaim/shop/data in /", "PersistentVolumeClaim/shop/data", "."),
    ],
)
def test_an_approval_may_name_where_the_object_is(value: str, pattern: str, scope: str) -> None:
    assert changes.parse_approval(value) == (pattern, scope)


def test_an_approval_counts_only_for_the_removal_it_is_for() -> None:
    """One object (PVC shop/data) may be defined under the paths of two gates of one repository, each
    its own cluster. An approval naming no path counts only where its own commit removes the object
    (its first parent held it); one naming a path, where that path holds the object's file."""
    before = changes.inventory(
        [
            Document(
                Source("prod/pvc.yaml"),
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data", "namespace": "shop"},
                },
            )
        ]
    )

    def verdict(value: str, **looked: object) -> tuple[Severity, str]:
        (approval,) = changes.approvals(
            [commit(approvals=(value,), parents=("c" * 40,))], ["bob@example.com"]
        )
        assert approval.parent == "c" * 40
        (result,) = changes.removals(
            before,
            {},
            protected_kinds=["PersistentVolumeClaim"],
            granted=[dataclasses.replace(approval, **looked)],  # type: ignore[arg-type]  # the fields vary
            severity=Severity.ERROR,
        )
        (finding,) = result.findings
        return finding.severity, finding.note

    unscoped = "PersistentVolumeClaim/shop/data"
    # Its first parent no longer held it (another commit removed it): not this commit's removal.
    severity, note = verdict(unscoped, present={}, before={})
    assert severity == Severity.ERROR
    assert "names no path" in note and f"`Trustgate-Approve-Deletion: {unscoped} in prod/pvc.yaml`" in note
    assert verdict(unscoped, present={}, before=None)[0] == Severity.ERROR  # parent not looked at
    assert verdict(unscoped, present={}, before=HELD)[0] == Severity.INFO
    # Named paths: the file, a directory holding it; not another one, nor a prefix of a name.
    for scope, counts in [
        ("prod/pvc.yaml", True),
        ("prod", True),
        ("staging", False),
        ("pro", False),
        (".", False),
    ]:
        assert (verdict(f"{unscoped} in {scope}", present={})[0] == Severity.INFO) is counts, scope
    assert verdict(f"{unscoped} in prod", present=HELD)[0] == Severity.ERROR  # its tree still holds it


@pytest.mark.parametrize(
    ("file", "rendered_from", "scope", "counts"),
    [
        ("prod/pvc.yaml", "prod", "prod", True),
        ("prod/pvc.yaml", "prod", "prod/pvc.yaml", True),
        # A base that prod's kustomization includes (staging's may too): named by the kustomization.
        ("base/pvc.yaml", "prod", "prod", True),
        ("base/pvc.yaml", "prod", "base/pvc.yaml", False),
        ("base/pvc.yaml", "prod", "base", False),
        ("pvc.yaml", ".", "pvc.yaml", True),
    ],
)
def test_an_approval_names_a_rendered_object_by_its_kustomization(
    file: str, rendered_from: str, scope: str, counts: bool
) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "shop"},
    }
    before = changes.inventory([Document(Source(file, rendered_from=rendered_from), obj)])
    (approval,) = changes.approvals(
        [commit(approvals=(f"PersistentVolumeClaim/shop/data in {scope}",))], ["bob@example.com"]
    )
    (result,) = changes.removals(
        before,
        {},
        protected_kinds=["PersistentVolumeClaim"],
        granted=[dataclasses.replace(approval, present={})],
        severity=Severity.ERROR,
    )
    assert (result.findings[0].severity == Severity.INFO) is counts
    if not counts:
        assert f"in {rendered_from}`" in result.findings[0].fix


def test_names() -> None:
    assert full_ref("main") == "refs/heads/main" and full_ref("refs/tags/v1") == "refs/tags/v1"
    assert is_url("https://git.example.com/fleet.git") and is_url("git@github.com:acme/fleet.git")
    assert is_url("file:///srv/fleet.git") and not is_url("/srv/fleet") and not is_url("fleet")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("45", 45), ("1500ms", 1.5)]
)
def test_intervals(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "500ms"])
def test_bad_intervals(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_interval(text)


def test_in_memory_units_follow_the_loaders_walk(tmp_path: Path) -> None:
    from trustgate.manifests import loader
    from trustgate.presync.runner import _units

    names = [
        "a.yaml",
        "a/x.yml",
        "b.json",
        ".hidden/c.yaml",
        "d/.e.yaml",
        "notes.txt",
        "z/y/w.yaml",
        "a-b.yaml",
    ]
    files = {f"deploy/{n}": b"{}" for n in names} | {"other/o.yaml": b"{}", "single.txt": b"{}"}
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(files[name])
    walked = [
        u.path.removeprefix(f"{tmp_path}/")
        for u in loader.plan([str(tmp_path / "deploy"), str(tmp_path / "single.txt")], dot_names=True)
    ]
    assert [u.path for u in _units(files, ["deploy", "single.txt"])] == walked
    assert "deploy/notes.txt" not in walked
    assert "deploy/.hidden/c.yaml" in walked and "deploy/d/.e.yaml" in walked  # a reconciler applies them


def test_a_cluster_scoped_kind_is_keyed_in_no_namespace() -> None:
    """The API server clears a cluster-scoped object's metadata.namespace: one object, whatever it
    names, and approvals and exceptions name it without a namespace."""
    crb = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "admin", "namespace": "sandbox"},
    }
    assert changes.key_of(crb) == changes.ObjectKey(
        "rbac.authorization.k8s.io", "ClusterRoleBinding", "", "admin"
    )
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "a"}}
    assert changes.key_of(widget) == changes.ObjectKey(
        "example.com", "Widget", "a", "w"
    )  # scope unknown: as written
    cluster = kinds.Scopes.from_crds(
        [{"spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Widget"}}}]
    )
    assert changes.key_of(widget, cluster) == changes.ObjectKey("example.com", "Widget", "", "w")


def test_an_object_is_keyed_by_the_path_it_is_under_and_a_second_copy_there_is_refused() -> None:
    def pvc(file: str, rendered_from: str | None = None) -> Document:
        obj = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop"},
        }
        return Document(Source(file, rendered_from=rendered_from), obj)

    assert changes.source_path(Source("prod/a/pvc.yaml"), ["staging", "./prod/"]) == "prod"
    assert changes.source_path(Source("prod/a/pvc.yaml"), ["."]) == "."
    assert changes.source_path(Source("base/pvc.yaml", rendered_from="prod"), ["base", "prod"]) == "prod"
    assert changes.source_path(Source("production/pvc.yaml"), ["prod"]) == ""
    docs = [pvc("prod/pvc.yaml"), pvc("staging/pvc.yaml"), pvc("prod/zz/pvc.yaml")]
    assert sorted(k.path for k in changes.inventory(docs, paths=["prod", "staging"])) == ["prod", "staging"]
    (twice,) = changes.duplicates(docs, ["prod", "staging"], severity=Severity.ERROR)
    assert twice.source.file == "prod/zz/pvc.yaml"
    (finding,) = twice.findings
    assert finding.rule == "duplicate-object" and "prod/pvc.yaml:1" in finding.message
    assert changes.duplicates(docs[:2], ["prod", "staging"], severity=Severity.ERROR) == []


def test_a_copy_without_a_namespace_is_a_copy_in_any_namespace() -> None:
    """Argo CD puts a namespaced object without metadata.namespace into the destination namespace
    before it keeps the last copy: `data` next to `shop/data` may be the same PVC."""

    def pvc(file: str, namespace: str | None) -> Document:
        metadata = {"name": "data"} | ({"namespace": namespace} if namespace else {})
        return Document(
            Source(file), {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata}
        )

    for docs in (
        [pvc("deploy/pvc.yaml", "shop"), pvc("deploy/zz-pvc.yaml", None)],
        [pvc("deploy/pvc.yaml", None), pvc("deploy/zz-pvc.yaml", "shop")],
    ):
        (twice,) = changes.duplicates(docs, ["deploy"], severity=Severity.ERROR)
        assert twice.source.file == "deploy/zz-pvc.yaml"
        (finding,) = twice.findings
        assert finding.rule == "duplicate-object" and "PersistentVolumeClaim/shop/data" in finding.message
        assert "names no namespace" in finding.message and "deploy/pvc.yaml:1" in finding.message
    # Under two entries, or in two named namespaces, they are two objects.
    assert (
        changes.duplicates(
            [pvc("a/p.yaml", "shop"), pvc("b/p.yaml", None)], ["a", "b"], severity=Severity.ERROR
        )
        == []
    )
    assert (
        changes.duplicates(
            [pvc("a/p.yaml", "shop"), pvc("a/q.yaml", "other")], ["a"], severity=Severity.ERROR
        )
        == []
    )
    # A cluster-scoped kind has no namespace to be put in: `namespace:` on it is dropped, one object.
    ns = [doc("Namespace", "shop"), doc("Namespace", "shop", namespace="x")]
    assert (
        len(
            changes.duplicates(
                [dataclasses.replace(d, source=Source(f"a/{i}.yaml")) for i, d in enumerate(ns)],
                ["a"],
                severity=Severity.ERROR,
            )
        )
        == 1
    )


def test_holding_an_object_with_local_config_is_holding_it() -> None:
    """A PVC that carries local-config already (a reconciler that does not build with kustomize
    applies it): an approver's commit that still holds it, unchanged, saw no removal; one that gives
    it the annotation made the removal it approves."""
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "shop"},
    }
    local = {**pvc, "metadata": {**pvc["metadata"], "annotations": {changes.LOCAL_CONFIG: "true"}}}  # type: ignore[dict-item]
    plain_tree = changes.inventory([Document(Source("deploy/pvc.yaml"), pvc)])
    local_tree = changes.inventory([Document(Source("deploy/pvc.yaml"), local)])
    (key,) = local_tree
    (approval,) = changes.approvals(
        [commit(approvals=("PersistentVolumeClaim/shop/data in deploy/pvc.yaml",))], ["bob@example.com"]
    )

    def severity(before: dict[changes.ObjectKey, changes.Seen], held: str) -> Severity:
        (result,) = changes.removals(
            before,
            {},
            protected_kinds=["PersistentVolumeClaim"],
            granted=[dataclasses.replace(approval, present={key: held})],
            severity=Severity.ERROR,
        )
        return result.findings[0].severity

    # Deleted, the gated tree had local-config: the approving commit still holding it saw nothing.
    assert severity(local_tree, local_tree[key].digest) == Severity.ERROR
    # Deleted, the approving commit gave it local-config (its own removal): counts.
    assert severity(plain_tree, local_tree[key].digest) == Severity.INFO


def test_a_base_and_its_overlay_under_one_path_are_two_sources() -> None:
    """`deploy/base` and `deploy/overlays/prod` (which includes `../../base`) under the one entry
    `deploy` are rendered as two kustomizations: each applies its own copy of the base's objects (a
    reconciler points at one of them). Not a duplicate; and each copy is an object of its own, so
    removing the overlay's copy is a removal although the base still holds it."""

    def cm(rendered_from: str) -> Document:
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"}}
        return Document(Source("deploy/base/cm.yaml", rendered_from=rendered_from), obj)

    docs = [cm("deploy/base"), cm("deploy/overlays/prod")]
    assert changes.duplicates(docs, ["deploy"], severity=Severity.ERROR) == []
    assert sorted(k.path for k in changes.inventory(docs, paths=["deploy"])) == [
        "deploy/base",
        "deploy/overlays/prod",
    ]
    assert (
        changes.source_path(Source("deploy/base/cm.yaml", rendered_from="deploy/base"), ["."])
        == "deploy/base"
    )
    # Files read as they are: one source per entry; a second copy there is refused (Argo CD keeps the last).
    plain = [dataclasses.replace(d, source=Source(f"deploy/{i}.yaml")) for i, d in enumerate(docs)]
    assert len(changes.duplicates(plain, ["deploy"], severity=Severity.ERROR)) == 1


def test_a_reconciler_source_added_changed_or_removed_needs_a_source_approval() -> None:
    """Any field of a reconciler source counts (its metadata too); a deletion approval never
    approves one, and a source approval names no removal of a protected object."""
    repo = doc("GitRepository", "side", "flux-system", api="source.toolkit.fluxcd.io/v1")
    app = doc("Application", "side", "argocd", api="argoproj.io/v1alpha1")
    before = changes.inventory([repo, doc("ConfigMap", "settings", "shop")])
    relabelled = Document(
        repo.source, {**repo.obj, "metadata": {**repo.obj["metadata"], "labels": {"a": "b"}}}
    )
    after = changes.inventory([relabelled, app, doc("ConfigMap", "other", "shop")])
    results = changes.sources(before, after, granted=[], severity=Severity.ERROR)
    assert [(r.kind, r.findings[0].message.split(":")[0]) for r in results] == [
        ("Application", "Application/argocd/side is added"),
        ("GitRepository", "GitRepository/flux-system/side changes"),
    ]
    assert all(r.findings[0].severity == Severity.ERROR for r in results)
    gone = changes.sources(before, {}, granted=[], severity=Severity.ERROR)
    assert [r.findings[0].message.split(":")[0] for r in gone] == [
        "GitRepository/flux-system/side is removed (its reconciler prunes what it applied)"
    ]

    app_key = next(k for k in after if k.kind == "Application")
    seen = {app_key: after[app_key].digest}
    (deletion,) = changes.approvals([commit(approvals=("Application/argocd/side",))], ["bob@example.com"])
    source = dataclasses.replace(deletion, source=True)
    added = changes.sources(
        {},
        {app_key: after[app_key]},
        granted=[dataclasses.replace(deletion, present=seen, before={})],
        severity=Severity.ERROR,
    )
    assert added[0].findings[0].severity == Severity.ERROR  # a deletion approval
    added = changes.sources(
        {},
        {app_key: after[app_key]},
        granted=[dataclasses.replace(source, present=seen, before={})],
        severity=Severity.ERROR,
    )
    assert added[0].findings[0].severity == Severity.INFO  # its own commit adds it
    added = changes.sources(
        {},
        {app_key: after[app_key]},
        granted=[dataclasses.replace(source, present=seen, before=seen)],
        severity=Severity.ERROR,
    )
    assert added[0].findings[0].severity == Severity.ERROR  # its parent held it already: not its change


def _obj(api: str, kind: str, name: str, namespace: str, spec: dict[str, object]) -> Document:
    return Document(
        Source("deploy/x.yaml"),
        {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec},
    )


def test_flux_operator_kinds_and_substituted_objects_are_reconciler_sources() -> None:
    instance = _obj("fluxcd.controlplane.io/v1", "FluxInstance", "flux", "flux-system", {})
    kustomization = _obj(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        "prod",
        "flux-system",
        {"postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}, {"name": "any-kind"}]}},
    )
    named = doc("ConfigMap", "vars", "flux-system")
    other = doc("ConfigMap", "vars", "shop")
    secret = doc("Secret", "any-kind", "flux-system")
    found = {
        s.key.label: s.directs
        for s in changes.inventory([instance, kustomization, named, other, secret]).values()
    }
    assert found == {
        "FluxInstance/flux-system/flux": True,
        "Kustomization/flux-system/prod": True,
        "ConfigMap/flux-system/vars": True,
        "ConfigMap/shop/vars": False,  # substituteFrom names the Kustomization's namespace
        "Secret/flux-system/any-kind": True,  # no kind: either
    }


def test_a_tree_wide_force_marker_is_not_in_a_sources_digest() -> None:
    apps = _obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "flux-system", {"path": "./apps"})
    infra = _obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "infra", "flux-system", {"force": True})
    pvc = doc("PersistentVolumeClaim", "data", "shop")
    before = changes.inventory([apps, pvc])
    after = changes.inventory([apps, pvc, infra])
    key = next(k for k in before if k.name == "apps")
    assert before[key].digest == after[key].digest
    pvc_key = next(k for k in before if k.name == "data")
    assert before[pvc_key].digest != after[pvc_key].digest and after[pvc_key].recreate


def test_one_object_removed_from_a_file_and_its_kustomization_is_reported_once() -> None:
    """Argo CD reads deploy/app/pvc.yaml as it is (directory.recurse), Flux renders deploy/app: two
    reconciler sources, one PVC. One report, whose trailer approves both removals."""
    obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "shop"},
    }
    before = changes.inventory(
        [
            Document(Source("deploy/app/pvc.yaml"), obj),
            Document(Source("deploy/app/pvc.yaml", rendered_from="deploy/app"), obj),
        ],
        paths=["deploy"],
    )
    assert len(before) == 2
    (result,) = changes.removals(
        before, {}, protected_kinds=["PersistentVolumeClaim"], granted=[], severity=Severity.ERROR
    )
    trailer = result.findings[0].metadata["approvalTrailer"]
    (approval,) = changes.approvals([commit(approvals=(trailer.partition(": ")[2],))], ["bob@example.com"])
    approved = changes.removals(
        before,
        {},
        protected_kinds=["PersistentVolumeClaim"],
        granted=[dataclasses.replace(approval, present={})],
        severity=Severity.ERROR,
    )
    assert [r.findings[0].severity for r in approved] == [Severity.INFO]


def _flux_kustomization(
    name: str, spec: dict[str, object], file: str = "clusters/prod/sync.yaml"
) -> Document:
    obj = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "fleet"}, **spec},
    }
    return Document(Source(file), obj)


def test_flux_builds_are_what_each_kustomization_under_the_paths_builds() -> None:
    """One build per distinct (path, additions); a path outside the paths is `unjudged_paths`'; a
    Kustomization of another repository builds nothing here."""
    other = Document(
        Source("clusters/prod/other.yaml"),
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "other", "namespace": "flux-system"},
            "spec": {"url": "https://example.com/other.git"},
        },
    )
    documents = [
        _flux_kustomization("a", {"path": "./apps/web", "targetNamespace": "prod"}),
        _flux_kustomization("b", {"path": "apps/web/", "targetNamespace": "prod"}),  # the same build
        _flux_kustomization("c", {"path": "./apps/web", "components": ["../../components/x"]}),
        _flux_kustomization("d", {"path": "./elsewhere"}),
        _flux_kustomization(
            "e", {"path": "./apps/web", "sourceRef": {"kind": "GitRepository", "name": "other"}}
        ),
        other,
    ]
    builds, problems = changes.flux_builds(
        documents, ["clusters/prod", "apps"], remotes=["https://example.com/fleet"]
    )
    assert problems == []
    assert [(b.label, b.path, b.namespace, b.components, b.plain) for b in builds] == [
        ("Kustomization/flux-system/a", "apps/web", "prod", (), False),
        ("Kustomization/flux-system/c", "apps/web", None, ("../../components/x",), False),
    ]


def test_a_flux_build_adds_to_the_kustomization_as_kustomize_controller_does() -> None:
    (build,), _ = changes.flux_builds(
        [
            _flux_kustomization(
                "a",
                {
                    "path": "./apps/web",
                    "targetNamespace": "prod",
                    "namePrefix": "p-",
                    "images": [{"name": "nginx", "newTag": "1.27"}, {"name": "redis", "newName": "r"}],
                    "patches": [{"patch": "[]", "target": {"kind": "Pod"}}],
                    "components": ["../../components/x"],
                },
            )
        ],
        ["apps"],
        remotes=[],
    )
    written = {
        "namespace": "legacy",
        "resources": ["pod.yaml"],
        "images": [{"name": "nginx", "newName": "mirror/nginx"}],
        "components": ["../own"],
    }
    assert build.kustomization(written) == {
        "namespace": "prod",
        "namePrefix": "p-",
        "resources": ["pod.yaml"],
        # kustomize_generator.go replaces an entry of the same name whole: newName is gone.
        "images": [
            {"name": "nginx", "newTag": "1.27"},
            {"name": "redis", "newName": "r"},
        ],
        "patches": [{"patch": "[]", "target": {"kind": "Pod"}}],
        "components": ["../own", "../../components/x"],
    }
    assert written["namespace"] == "legacy"  # not changed in place


def test_a_flux_build_that_cannot_be_worked_out_is_a_problem() -> None:
    builds, problems = changes.flux_builds(
        [
            _flux_kustomization("a", {"path": "./apps/web", "targetNamespace": ["prod"]}),
            _flux_kustomization("b", {"path": "./apps/web", "components": ["https://example.com/x"]}),
        ],
        ["apps"],
        remotes=[],
    )
    assert builds == []
    assert [(p.rule, p.source.file) for p in problems] == [
        ("presync/flux-build", "clusters/prod/sync.yaml")
    ] * 2
    assert "Kustomization/flux-system/a applies apps/web" in problems[0].message
    assert "spec.targetNamespace is not a string" in problems[0].message
    assert "local relative paths" in problems[1].message


def test_argocd_builds_are_what_each_application_source_under_the_paths_builds() -> None:
    """Each source (`source`, each of `sources`) of this repository that is no chart or plugin."""

    def application(name: str, spec: dict[str, object]) -> Document:
        obj = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": spec,
        }
        return Document(Source("clusters/prod/apps.yaml"), obj)

    url = "https://example.com/fleet.git"
    documents = [
        application(
            "a",
            {
                "sources": [
                    {"repoURL": url, "path": "apps/web", "kustomize": {"namespace": "prod"}},
                    {"repoURL": "https://example.com/other.git", "path": "apps/web"},
                    {"repoURL": url, "path": "apps/chart", "helm": {"releaseName": "x"}},
                ]
            },
        ),
        application("b", {"source": {"repoURL": url, "path": "apps/raw", "directory": {"recurse": True}}}),
        application("c", {"source": {"repoURL": url, "path": "elsewhere"}}),
    ]
    builds, problems = changes.argocd_builds(documents, ["apps"], remotes=["ssh://git@example.com/fleet"])
    assert problems == []
    assert [(b.label, b.path, b.namespace, b.recurse, b.reconciler) for b in builds] == [
        ("Application/argocd/a", "apps/web", "prod", False, "argocd"),
        ("Application/argocd/b", "apps/raw", None, True, "argocd"),
    ]


def test_a_kustomization_path_is_joined_as_flux_joins_it_before_it_is_judged() -> None:
    """`../apps/web` is `apps/web` to kustomize-controller (securejoin): under `apps` it is built, and
    outside the paths the warning names the path to add, without `..`."""
    climbing = _flux_kustomization("web", {"path": "../apps/web"})
    (build,), _ = changes.flux_builds([climbing], ["apps"], remotes=[])
    assert build.path == "apps/web"
    assert changes.unjudged_paths([climbing], ["apps"], remotes=[], severity=Severity.WARNING) == []
    (result,) = changes.unjudged_paths([climbing], ["clusters"], remotes=[], severity=Severity.WARNING)
    assert result.findings[0].fix == "add apps/web to presync.paths"


def _config_map(data: dict[str, str], *, rendered_from: str | None = None) -> Document:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "vars", "namespace": "flux-system"},
        "data": data,
    }
    return Document(Source("clusters/prod/vars.yaml", rendered_from=rendered_from), obj)


@pytest.mark.parametrize("flux_only", [True, False])
def test_substitution_sources_take_a_copy_as_written_the_cluster_holds_substituted_as_one(
    flux_only: bool,
) -> None:
    """A ConfigMap that only a substituting Kustomization applies: in the cluster it is as that
    Kustomization applies it. Under `reconciler: flux` the copy as written is left out once the build's
    copy is known (until then it stands, its values holding `$` unknown); under `any` it stays (another
    reconciler may apply it as written), unsettled. Every copy names the one document it is written in."""
    written = _config_map({"domain": "${tenant}.example.com"})
    built = _config_map({"domain": "team-a.example.com"}, rendered_from="clusters/prod")
    only = lambda d: d is written  # noqa: E731

    (alone,) = changes.substitution_sources([written], substituted=only, flux_only=flux_only)
    assert alone.origin == "clusters/prod/vars.yaml:1" and not alone.settled

    found = changes.substitution_sources([written], [built], substituted=only, flux_only=flux_only)
    assert {s.origin for s in found} == {"clusters/prod/vars.yaml:1"}
    assert [(s.obj["data"], s.settled) for s in found] == (
        [({"domain": "team-a.example.com"}, True)]
        if flux_only
        else [({"domain": "${tenant}.example.com"}, False), ({"domain": "team-a.example.com"}, True)]
    )

    # Applied as written too (by a Kustomization that does not substitute): settled.
    (kept, _) = changes.substitution_sources(
        [written], [built], substituted=lambda d: False, flux_only=flux_only
    )
    assert kept.settled and kept.obj["data"] == {"domain": "${tenant}.example.com"}


_OTHER_REPOSITORY = Document(
    Source("clusters/prod/other.yaml"),
    {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "other", "namespace": "flux-system"},
        "spec": {"url": "https://example.com/other.git"},
    },
)
_FROM_OTHER = {"sourceRef": {"kind": "GitRepository", "name": "other"}}


def test_a_substitute_from_object_lands_only_where_a_kustomization_of_this_repository_puts_it() -> None:
    """A Kustomization whose GitRepository is another repository applies none of the tree's files:
    its `targetNamespace` is not one a ConfigMap of the tree lands in (a Kustomization of team-x that
    substitutes from `vars` reads the one the other repository puts there, not this one). Nor is an
    OCI source's. One of this repository (or whose repository is not known) still widens it."""
    written = _config_map({"tenant": "legacy"})
    fleet = ["https://example.com/fleet"]
    elsewhere = [
        _flux_kustomization("other", {"path": "./clusters", "targetNamespace": "team-x", **_FROM_OTHER}),
        _flux_kustomization(
            "oci",
            {"path": "./", "targetNamespace": "team-y", "sourceRef": {"kind": "OCIRepository", "name": "o"}},
        ),
        _OTHER_REPOSITORY,
    ]
    found = changes.substitution_sources([written, *elsewhere], remotes=fleet)
    assert {s.obj["metadata"]["namespace"] for s in found} == {"flux-system"}

    ours = _flux_kustomization("ours", {"path": "./clusters", "targetNamespace": "team-z"})
    found = changes.substitution_sources([written, ours, *elsewhere], remotes=fleet)
    assert {s.obj["metadata"]["namespace"] for s in found} == {"flux-system", "team-z"}


def test_a_kustomization_of_another_repository_applies_no_file_of_the_tree_as_written() -> None:
    """Flux's multi-tenancy layout: `tenants/base/dev-team/sync.yaml` holds the tenant's own
    Kustomization, whose GitRepository is the tenant's repository (no `spec.path`: its root). It
    applies nothing of this tree, so a file only the substituting `tenants` Kustomization applies is
    not held as written by it; with the gated repository's URLs not known, it may be this one."""
    rbac = Document(
        Source("tenants/base/dev-team/rbac.yaml"),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps", "labels": {"t": "${tenant}"}}},
    )
    tenants = _flux_kustomization(
        "tenants", {"path": "./tenants", "postBuild": {"substitute": {"tenant": "a"}}}
    )
    tenant = _flux_kustomization("dev-team", _FROM_OTHER, file="tenants/base/dev-team/sync.yaml")
    documents = [rbac, tenants, tenant, _OTHER_REPOSITORY]
    only = changes.substituted_only(documents, ["clusters", "tenants"], remotes=["https://example.com/fleet"])
    assert only(rbac)
    assert not changes.substituted_only(documents, ["clusters", "tenants"], remotes=[])(rbac)


@pytest.mark.parametrize("flux_only", [True, False])
def test_under_reconciler_flux_an_object_every_kustomization_moves_is_not_in_its_own_namespace(
    flux_only: bool,
) -> None:
    """`vars` is written in flux-system, but the only Kustomization that applies it sets
    `targetNamespace: team-x`: under `reconciler: flux` nothing puts it in flux-system (a `vars` there
    lives only in the cluster); under `any` another reconciler may apply it as written."""
    written = _config_map({"tenant": "legacy"})
    apps = _flux_kustomization("apps", {"path": "./clusters", "targetNamespace": "team-x"})
    found = changes.substitution_sources([written, apps], flux_only=flux_only)
    expected = {"team-x"} if flux_only else {"flux-system", "team-x"}
    assert {s.obj["metadata"]["namespace"] for s in found} == expected

    # One that applies it without moving it: in flux-system too.
    raw = _flux_kustomization("raw", {"path": "./clusters/prod"})
    found = changes.substitution_sources([written, apps, raw], flux_only=flux_only)
    assert {s.obj["metadata"]["namespace"] for s in found} == {"flux-system", "team-x"}


def test_substitute_from_names_the_objects_of_the_tree_a_kustomization_reads() -> None:
    """Only what a Flux Kustomization's `substituteFrom` names in its own namespace, and the tree
    holds: not an object living only in the cluster, not one of another namespace."""
    kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "team", "namespace": "flux-system"},
        "spec": {
            "path": "./tenants",
            "postBuild": {
                "substituteFrom": [
                    {"kind": "ConfigMap", "name": "vars"},
                    {"kind": "Secret", "name": "cluster-only"},
                    {"kind": "ConfigMap", "name": "elsewhere"},
                ]
            },
        },
    }

    def config_map(name: str, namespace: str) -> Document:
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}
        return Document(Source(f"{name}.yaml"), obj)

    documents = [
        Document(Source("team.yaml"), kustomization),
        config_map("vars", "flux-system"),
        config_map("elsewhere", "shop"),
    ]
    assert changes.substitute_from(documents) == ["ConfigMap/flux-system/vars"]
    assert changes.substitute_from(documents[1:]) == []
