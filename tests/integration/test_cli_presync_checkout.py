"""`trustgate presync`: what a reconciler's checkout writes, and what it decides a rollback against.

Argo CD checks out with the git command line, which applies the commit's `.gitattributes`: an
attribute that rewrites a file on checkout (`working-tree-encoding`, `ident`, `filter`, `eol=crlf`)
makes Argo CD apply other YAML than the blob the gate judged, so the run stops; so does a file that
an earlier commit of the range (or the gated one) gave such an attribute with the same content, since
Argo CD's work tree keeps it converted. Only files a reconciler reads count. Flux's go-git applies
none. A rollback counts only when what each reconciler applies is a state the gate moved to: Flux's
`.sourceignore` files outside the paths count. A repository in the SHA-256 object format is gated as
one in SHA-1. Real repositories, commits signed by test keys.
"""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import test_cli_presync as presync_cli
from support.gitrepo import Repo
from test_cli_presync import CONFIGMAP, CRD, GATED, PVC, Keys, Setup

from trustgate.gate.recorder import content_hash
from trustgate.presync import git as presync_git
from trustgate.presync.runner import PresyncGate

keys = presync_cli.keys  # the fixtures: an allowed SSH signer (alice), a GPG approver (bob)
setup = presync_cli.setup

# A string whose quotes UTF-7 writes as `+ACI-`: Argo CD's checkout turns the lines inside into fields.
HIDDEN = textwrap.dedent(
    """\
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: pinned, namespace: shop}
    data:
      note: "x
      hostNetwork: true
      y"
    """
)


def _reconciler(s: Setup, name: str) -> Path:
    config = s.config_with(f"{name}.yaml")
    config.write_text(config.read_text().replace("presync:\n", f"presync:\n  reconciler: {name}\n"))
    return config


def _rewrite(s: Setup) -> None:
    """Give every manifest of the setup other bytes, as the way out of a conversion asks."""
    for name, text in (
        ("deploy/namespace.yaml", presync_cli.NAMESPACE),
        ("deploy/settings.yaml", CONFIGMAP),
        ("deploy/pvc.yaml", PVC),
    ):
        s.repo.write(name, "# as applied\n" + text)


def _argocd_work_tree(s: Setup, commit: str) -> Path:
    """Argo CD's repo-server work tree for the repository, moved to `commit` as it moves it (one work
    tree per repository URL: fetch, `git checkout --force`, `git clean -ffdx`)."""
    work = s.tmp / "argocd-work-tree"
    if not work.exists():
        subprocess.run(
            ["git", "clone", "-q", "--no-checkout", str(s.repo.path), str(work)], check=True, timeout=60
        )
    for args in (["fetch", "-q", "origin"], ["checkout", "-q", "--force", commit], ["clean", "-ffdxq"]):
        subprocess.run(["git", "-C", str(work), *args], check=True, timeout=60)
    return work


def _argocd_checkout(s: Setup, commit: str, name: str) -> bytes:
    """The file as `git checkout` (Argo CD's repo-server) writes it."""
    work = s.tmp / f"argocd-{commit[:12]}"
    for args in (
        ["clone", "-q", "--no-checkout", str(s.repo.path), str(work)],
        ["-C", str(work), "checkout", "-q", "--force", commit],
    ):
        subprocess.run(["git", *args], check=True, timeout=60)
    return (work / name).read_bytes()


@pytest.mark.parametrize("reconciler", ["argocd", "any"])
@pytest.mark.parametrize(
    ("attributes", "shown"),
    [
        (
            {"deploy/.gitattributes": "pinned.yaml working-tree-encoding=UTF-7\n"},
            "working-tree-encoding=UTF-7",
        ),
        # A macro of the root `.gitattributes`, assigned by a pattern there.
        ({".gitattributes": "[attr]pin working-tree-encoding=UTF-7\ndeploy/*.yaml pin\n"}, "=UTF-7"),
        ({"deploy/.gitattributes": "*.yaml ident\n"}, "ident"),
        ({"deploy/.gitattributes": "*.yaml filter=lfs\n"}, "filter=lfs"),
        ({".gitattributes": "* text=auto eol=crlf\n"}, "eol=crlf"),
    ],
)
def test_an_attribute_argocds_checkout_converts_by_stops_the_run(
    setup: Callable[..., Setup], keys: Keys, reconciler: str, attributes: dict[str, str], shown: str
) -> None:
    s = setup()
    config = _reconciler(s, reconciler)
    assert s.run(config=config)[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/pinned.yaml", HIDDEN)
    for name, text in attributes.items():
        s.repo.write(name, text)
    tip = s.repo.commit("pin a note", ssh=keys.alice)
    if shown.startswith("working-tree-encoding"):  # what Argo CD would apply: a field the gate never saw
        assert b"\n  hostNetwork: true\n" in _argocd_checkout(s, tip, "deploy/pinned.yaml")
    code, output = s.run(config=config)
    assert code == 3, output
    assert "presync/checkout" in output and "deploy/pinned.yaml has the attribute" in output, output
    assert shown in output and "Argo CD's `git checkout` writes other bytes" in output, output
    assert s.repo.ref(GATED) == gated
    assert s.records()[-1]["verdict"] != "allow"

    # The way out: the attribute removed, the file committed as it is to be applied, with other bytes
    # (a work tree that checked the refused commit out keeps a file whose content stays the same).
    for name in attributes:
        s.repo.remove(name)
    s.repo.write("deploy/pinned.yaml", "# as applied\n" + HIDDEN)
    _rewrite(s)
    tip = s.repo.commit("no checkout conversion", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


@pytest.mark.parametrize(
    "attributes",
    [
        "*.yaml -text\n",
        "* binary\n",
        "* text=auto\n",
        "*.yaml text eol=lf\n",
        "*.yaml -text eol=crlf\n",
        "*.yaml -crlf eol=crlf\n",
        "*.yaml working-tree-encoding=UTF-8\n",
        "*.yaml -working-tree-encoding\n",  # unset: git writes the blob, as when unspecified
        "*.yaml diff merge=union export-subst\n",
    ],
)
def test_an_attribute_that_changes_no_byte_on_checkout_passes(
    setup: Callable[..., Setup], keys: Keys, attributes: str
) -> None:
    s = setup()
    config = _reconciler(s, "argocd")
    assert s.run(config=config)[0] == 0
    s.repo.write(".gitattributes", attributes)
    s.repo.write("deploy/pinned.yaml", CONFIGMAP.replace("settings", "pinned"))
    tip = s.repo.commit("attributes that convert nothing", ssh=keys.alice)
    assert _argocd_checkout(s, tip, "deploy/pinned.yaml") == CONFIGMAP.replace("settings", "pinned").encode()
    code, output = s.run(config=config)
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


def test_flux_applies_no_attribute(setup: Callable[..., Setup], keys: Keys) -> None:
    """go-git writes the blob as committed: under Flux alone, the content judged is the content applied."""
    s = setup()
    config = _reconciler(s, "flux")
    assert s.run(config=config)[0] == 0
    s.repo.write("deploy/.gitattributes", "*.yaml working-tree-encoding=UTF-7 ident filter=lfs\n")
    s.repo.write("deploy/pinned.yaml", CONFIGMAP.replace("settings", "pinned"))
    tip = s.repo.commit("attributes Flux does not apply", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


def test_the_gates_own_attribute_files_do_not_count(
    setup: Callable[..., Setup], keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the commit's `.gitattributes` decide: the gate's machine's (`info/attributes` of the gated
    repository, the user's `core.attributesFile`) are not the reconciler's, and hide nothing either."""
    s = setup()
    config = _reconciler(s, "argocd")
    assert s.run(config=config)[0] == 0
    s.repo.write("deploy/.gitattributes", "*.yaml ident\n")
    s.repo.write("deploy/pinned.yaml", CONFIGMAP.replace("settings", "pinned"))
    s.repo.commit("an ident attribute", ssh=keys.alice)
    (s.repo.path / ".git/info").mkdir(exist_ok=True)
    (s.repo.path / ".git/info/attributes").write_text("* -ident\n")
    xdg = tmp_path / "xdg"
    (xdg / "git").mkdir(parents=True)
    (xdg / "git/attributes").write_text("* -ident\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    code, output = s.run(config=config)
    assert code == 3, output
    assert "deploy/pinned.yaml has the attribute ident" in output

    # And an attribute only they give (here: the gated repository's info/attributes) stops nothing.
    s.repo.remove("deploy/.gitattributes")
    s.repo.write("deploy/pinned.yaml", CONFIGMAP.replace("settings", "pinned") + "# new bytes\n")
    _rewrite(s)
    tip = s.repo.commit("no attribute", ssh=keys.alice)
    (s.repo.path / ".git/info/attributes").write_text("* working-tree-encoding=UTF-7\n")
    code, output = s.run(config=config)
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


def test_a_file_an_earlier_commit_of_the_range_converted_stops_the_run(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Argo CD checked out a commit of the range whose attribute converts a file (an Application
    following the branch); the tip drops the attribute and keeps the file's content: git does not
    rewrite the file, so Argo CD would apply the converted bytes. The way out changes the bytes."""
    s = setup()
    config = _reconciler(s, "argocd")
    assert s.run(config=config)[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/pinned.yaml", HIDDEN)
    s.repo.write("deploy/.gitattributes", "pinned.yaml working-tree-encoding=UTF-7\n")
    converting = s.repo.commit("pin a note (UTF-7)", ssh=keys.alice)
    assert s.run(config=config)[0] == 3
    _argocd_work_tree(s, converting)
    s.repo.remove("deploy/.gitattributes")
    tip = s.repo.commit("drop the attribute", ssh=keys.alice)
    # What Argo CD's work tree holds at the tip: the converted bytes, a field the gate never saw.
    applied = (_argocd_work_tree(s, tip) / "deploy/pinned.yaml").read_bytes()
    assert b"\n  hostNetwork: true\n" in applied and applied != HIDDEN.encode()
    code, output = s.run(config=config)
    assert code == 3, output
    assert "presync/checkout" in output, output
    assert (
        "deploy/pinned.yaml had the attribute working-tree-encoding=UTF-7 (.gitattributes) "
        f"at {converting[:12]}" in output
    )
    assert "change the file's bytes in a new commit" in output, output
    assert s.repo.ref(GATED) == gated

    # The way out: new bytes, which Argo CD's checkout writes anew.
    s.repo.write("deploy/pinned.yaml", "# as applied\n" + HIDDEN)
    tip = s.repo.commit("rewrite the note", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert s.repo.ref(GATED) == tip
    assert (_argocd_work_tree(s, tip) / "deploy/pinned.yaml").read_text() == "# as applied\n" + HIDDEN


def test_a_file_the_gated_tree_converted_stops_the_run_until_its_bytes_change(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A gated tree holding a converting attribute (moved to under Flux, or before the gate looked for
    them) does not stop the run that removes it by itself; a file it converted, kept as it is, does."""
    s = setup()
    s.repo.write("deploy/pinned.yaml", CONFIGMAP.replace("settings", "pinned") + "# $Id$\n")
    s.repo.write("deploy/.gitattributes", "pinned.yaml ident\n")
    s.repo.commit("ident", ssh=keys.alice)
    assert s.run(config=_reconciler(s, "flux"))[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.remove("deploy/.gitattributes")
    s.repo.commit("no ident", ssh=keys.alice)
    code, output = s.run(config=_reconciler(s, "argocd"))
    assert code == 3, output
    assert f"deploy/pinned.yaml had the attribute ident (.gitattributes) at {gated[:12]}" in output, output
    assert "namespace.yaml had" not in output, output  # no attribute there
    assert s.repo.ref(GATED) == gated
    s.repo.write("deploy/pinned.yaml", CONFIGMAP.replace("settings", "pinned"))
    tip = s.repo.commit("no $Id$", ssh=keys.alice)
    code, output = s.run(config=_reconciler(s, "argocd"))
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


def test_a_file_no_reconciler_reads_may_be_converted(setup: Callable[..., Setup], keys: Keys) -> None:
    """Argo CD's directory source reads .yaml, .yml, .json and .jsonnet files, kustomize what its
    kustomizations name: a converted script beside the manifests changes nothing applied (noted)."""
    s = setup()
    config = _reconciler(s, "argocd")
    assert s.run(config=config)[0] == 0
    s.repo.write(".gitattributes", "* text=auto eol=lf\n*.ps1 text eol=crlf\n")
    s.repo.write("deploy/scripts/node-setup.ps1", "Write-Host hi\n")
    tip = s.repo.commit("windows node script", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert s.repo.ref(GATED) == tip
    assert "deploy/scripts/node-setup.ps1: Argo CD's checkout converts it" in output, output
    assert "presync/checkout" not in output, output


@pytest.mark.parametrize(
    ("files", "named"),
    [
        # kustomize puts a generator's file into the ConfigMap it applies, whatever its name.
        (
            {
                "deploy/kustomization.yaml": "configMapGenerator:\n- name: setup\n  namespace: shop\n"
                "  files: [script=scripts/node-setup.ps1]\nresources: [settings.yaml]\n",
            },
            "deploy/scripts/node-setup.ps1",
        ),
        # Helm renders a chart's templates, whatever their suffix.
        (
            {"deploy/chart/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\n"},
            "deploy/chart/templates/x.ps1",
        ),
    ],
)
def test_a_file_a_kustomization_or_chart_reads_is_checked_whatever_its_name(
    setup: Callable[..., Setup], keys: Keys, files: dict[str, str], named: str
) -> None:
    s = setup()
    config = _reconciler(s, "argocd")
    assert s.run(config=config)[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write(named, "Write-Host hi\n")
    for name, text in files.items():
        s.repo.write(name, text)
    s.repo.write(".gitattributes", "*.ps1 text eol=crlf\n")
    s.repo.commit("a script a reconciler reads", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3, output
    assert f"{named} has the attribute eol=crlf" in output, output
    assert s.repo.ref(GATED) == gated


# -- how the attributes are read --------------------------------------------------------------------


def _partial_clone(s: Setup, tmp_path: Path) -> Path:
    """A bare partial clone (`--filter=blob:none`) of the repository, with its gated ref."""
    s.repo.git("config", "uploadpack.allowFilter", "true")
    s.repo.git("config", "uploadpack.allowAnySHA1InWant", "true")
    partial = tmp_path / "partial.git"
    subprocess.run(
        ["git", "clone", "-q", "--bare", "--filter=blob:none", f"file://{s.repo.path}", str(partial)],
        check=True,
        timeout=60,
    )
    gated = s.repo.ref(GATED)
    assert gated is not None
    subprocess.run(
        ["git", "-C", str(partial), "update-ref", f"refs/heads/{GATED}", gated], check=True, timeout=60
    )
    return partial


def test_a_partial_clone_fetches_the_attributes_it_lacks(
    setup: Callable[..., Setup], keys: Keys, tmp_path: Path
) -> None:
    s = setup()
    config = _reconciler(s, "argocd")
    assert s.run(config=config)[0] == 0
    s.repo.write("deploy/pinned.yaml", CONFIGMAP.replace("settings", "pinned") + "# $Id$\n")
    s.repo.write(".gitattributes", "deploy/pinned.yaml ident\n")
    s.repo.commit("ident", ssh=keys.alice)
    partial = _partial_clone(s, tmp_path)
    code, output = s.run(repo=str(partial), config=config)
    assert code == 3, output
    assert "deploy/pinned.yaml has the attribute ident" in output, output


def test_a_partial_clone_that_cannot_fetch_the_attributes_fails_closed(
    setup: Callable[..., Setup], keys: Keys, tmp_path: Path
) -> None:
    """A `.gitattributes` that stays missing is no "no attribute": the run (and the rollback digest,
    which holds the attributes) stops."""
    s = setup()
    config = _reconciler(s, "argocd")
    assert s.run(config=config)[0] == 0
    s.repo.write("deploy/pinned.yaml", CONFIGMAP.replace("settings", "pinned") + "# $Id$\n")
    s.repo.write(".gitattributes", "deploy/pinned.yaml ident\n")
    tip = s.repo.commit("ident", ssh=keys.alice)
    partial = _partial_clone(s, tmp_path)
    # Every other blob fetched; then the promisor remote goes away.
    listed = s.repo.git("ls-tree", "-r", tip).splitlines()
    for line in listed:
        meta, _, name = line.partition("\t")
        if name != ".gitattributes":
            subprocess.run(
                ["git", "-C", str(partial), "cat-file", "-e", meta.split()[2]], check=True, timeout=60
            )
    subprocess.run(
        ["git", "-C", str(partial), "remote", "set-url", "origin", str(tmp_path / "gone")],
        check=True,
        timeout=60,
    )
    gated = subprocess.run(
        ["git", "-C", str(partial), "rev-parse", GATED],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    code, output = s.run(repo=str(partial), config=config)
    assert code == 3, output
    assert "cannot read the .gitattributes files of" in output, output
    assert "partial or shallow clone" in output, output
    assert (
        subprocess.run(
            ["git", "-C", str(partial), "rev-parse", GATED],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        == gated
    )
    with pytest.raises(presync_git.GitError, match=r"cannot read the \.gitattributes"):
        presync_git.Git(partial).checkout_attributes(tip, ["deploy/pinned.yaml"])


def test_a_repository_path_with_a_colon_is_read(
    setup: Callable[..., Setup], keys: Keys, tmp_path: Path
) -> None:
    """The empty repository that reads the attributes borrows the objects by `objects/info/alternates`,
    which takes any path (GIT_ALTERNATE_OBJECT_DIRECTORIES is split on `:`)."""
    s = setup()
    repo = Repo.create(tmp_path / "co:lon" / "fleet")
    repo.write("deploy/namespace.yaml", presync_cli.NAMESPACE)
    first = repo.commit("initial", ssh=keys.alice)
    code, output = s.run(repo=str(repo.path), config=_reconciler(s, "argocd"))
    assert code == 0, output
    assert repo.ref(GATED) == first
    repo.write("deploy/pinned.yaml", CONFIGMAP.replace("settings", "pinned") + "# $Id$\n")
    repo.write("deploy/.gitattributes", "pinned.yaml ident\n")
    repo.commit("ident", ssh=keys.alice)
    code, output = s.run(repo=str(repo.path), config=_reconciler(s, "argocd"))
    assert code == 3 and "deploy/pinned.yaml has the attribute ident" in output, output


def test_an_error_reading_the_attributes_names_the_repository(setup: Callable[..., Setup]) -> None:
    s = setup()
    with pytest.raises(presync_git.GitError) as caught:
        presync_git.Git(s.repo.path).checkout_attributes("0" * 40, ["deploy/pvc.yaml"])
    assert caught.value.where == str(s.repo.path)


def test_what_converts_on_checkout() -> None:
    checkout_conversions = presync_git.checkout_conversions
    assert checkout_conversions({"working-tree-encoding": "UTF-16LE"}) == ["working-tree-encoding=UTF-16LE"]
    assert checkout_conversions({"working-tree-encoding": "unset"}) == []  # -working-tree-encoding
    assert checkout_conversions({"working-tree-encoding": "set"}) == ["working-tree-encoding=set"]  # git dies
    assert checkout_conversions({"working-tree-encoding": "utf8"}) == []
    assert checkout_conversions({"ident": "set"}) == ["ident"]
    assert checkout_conversions({"ident": "unset"}) == []
    assert checkout_conversions({"filter": "lfs", "text": "unset"}) == ["filter=lfs"]
    assert checkout_conversions({"filter": "unset"}) == []
    assert checkout_conversions({"eol": "crlf"}) == ["eol=crlf"]
    assert checkout_conversions({"eol": "crlf", "text": "auto"}) == ["eol=crlf"]
    assert checkout_conversions({"eol": "crlf", "crlf": "unset", "text": "set"}) == ["eol=crlf"]
    assert checkout_conversions({"eol": "crlf", "crlf": "unset"}) == []
    assert checkout_conversions({"eol": "crlf", "text": "unset"}) == []
    assert checkout_conversions({"eol": "lf", "text": "set", "crlf": "input"}) == []


# -- rollback ----------------------------------------------------------------------------------------


def test_a_rollback_to_files_a_sourceignore_outside_the_paths_hides_is_not_one(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """The files under the paths are those of a gated state, but a root `.sourceignore` makes Flux
    leave the PVC out (a deletion the gate refused): not a rollback, and the removal is not waived."""
    s = setup("  reconciler: flux\n", commits="allowRollback: true\n")
    first = s.repo.head()
    assert s.run()[0] == 0
    s.repo.write(".sourceignore", "deploy/pvc.yaml\n")
    hidden = s.repo.commit("tidy the artifact", ssh=keys.alice)
    code, output = s.run()
    assert code == 1 and "destructive-change" in output, output
    s.repo.git("reset", "-q", "--hard", first)
    s.repo.write("README.md", "# fleet, again\n")
    moved = s.repo.commit("readme", ssh=keys.alice)
    assert s.run()[0] == 0 and s.repo.ref(GATED) == moved
    s.repo.git("reset", "-q", "--hard", hidden)  # a force-push back to the refused commit
    code, output = s.run()
    assert code == 1, output
    assert "non-fast-forward" in output and "rolled-back" not in output, output
    assert s.repo.ref(GATED) == moved
    assert "rollbackOf" not in s.records()[-1]["subject"]["presync"]


def test_a_rollback_to_a_state_an_older_release_recorded_is_not_one(
    setup: Callable[..., Setup], keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older release digested the files alone: what it recorded never matches (fail closed)."""
    s = setup(commits="allowRollback: true\n")
    first = s.repo.head()

    def files_alone(self: PresyncGate, git: object, commit: str) -> str:
        return content_hash(sorted([e.mode, e.object, e.path] for e in self._ls_tree(git, commit)))  # type: ignore[arg-type]

    with monkeypatch.context() as older:
        older.setattr(PresyncGate, "_paths_tree", files_alone)
        assert s.run()[0] == 0
        s.repo.write("deploy/crd.yaml", CRD)
        crd = s.repo.commit("add the widget CRD", ssh=keys.alice)
        assert s.run()[0] == 0 and s.repo.ref(GATED) == crd
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    second = s.repo.commit("two", ssh=keys.alice)
    assert s.run()[0] == 0 and s.repo.ref(GATED) == second  # the upgraded gate sees the move
    s.repo.git("reset", "-q", "--hard", first)
    code, output = s.run()
    assert code == 1, output
    assert "non-fast-forward" in output and s.repo.ref(GATED) == second


def test_a_rollback_the_upgraded_gate_recorded_still_counts(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup("  reconciler: flux\n", commits="allowRollback: true\n")
    s.repo.write(".sourceignore", "docs/\n")
    first = s.repo.commit("ignore the docs", ssh=keys.alice)
    assert s.run()[0] == 0
    s.repo.remove("deploy/pvc.yaml")
    s.repo.commit("approved removal\n\nTrustgate-Approve-Deletion: *", gpg=keys.bob)
    assert s.run()[0] == 0
    s.repo.git("reset", "-q", "--hard", first)
    s.repo.write("README.md", "# fleet, rolled back\n")
    tip = s.repo.commit("roll back", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output
    assert "rolled-back" in output and s.repo.ref(GATED) == tip


# -- object format -----------------------------------------------------------------------------------


def test_a_sha256_repository_is_gated(setup: Callable[..., Setup], keys: Keys, tmp_path: Path) -> None:
    s = setup()
    repo = Repo(tmp_path / "fleet256", tmp_path / "fleet256-home")
    repo.path.mkdir()
    repo.home.mkdir()
    repo.git("init", "-q", "-b", "main", "--object-format=sha256")
    repo.write("deploy/namespace.yaml", presync_cli.NAMESPACE)
    repo.write("deploy/pvc.yaml", PVC)
    first = repo.commit("initial", ssh=keys.alice)
    assert len(first) == 64
    code, output = s.run(repo=str(repo.path))
    assert code == 0, output
    assert "created" in output and repo.ref(GATED) == first
    repo.write("deploy/settings.yaml", CONFIGMAP)
    tip = repo.commit("settings", ssh=keys.alice)
    code, output = s.run(repo=str(repo.path))
    assert code == 0, output
    assert repo.ref(GATED) == tip
    repo.remove("deploy/pvc.yaml")
    repo.commit("drop the volume", ssh=keys.alice)
    code, output = s.run(repo=str(repo.path))
    assert code == 1 and "PersistentVolumeClaim/shop/data would be deleted" in output, output
    assert repo.ref(GATED) == tip


def test_the_paths_each_earlier_commit_changes_are_told_apart(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """One `diff-tree --stdin` for the whole range: a path spelled like a commit id does not start
    another commit's answer."""
    s = setup()
    first = s.repo.head()
    s.repo.write(first, "named like the first commit\n")
    second = s.repo.commit("a file named after a commit", ssh=keys.alice)
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    tip = s.repo.commit("two", ssh=keys.alice)
    found = presync_git.Git(s.repo.path).changed_paths(tip, [first, second, tip])
    assert found == {first: {first, "deploy/settings.yaml"}, second: {"deploy/settings.yaml"}, tip: set()}
