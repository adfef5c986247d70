"""`trustgate presync`: what a reconciler's checkout writes, and what it decides a rollback against.

Argo CD checks out with the git command line, which applies the commit's `.gitattributes`: an
attribute that rewrites a file on checkout (`working-tree-encoding`, `ident`, `filter`, `eol=crlf`)
makes Argo CD apply other YAML than the blob the gate judged, so the run stops. Flux's go-git applies
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

    # The way out: the attribute removed, the file committed as it is to be applied.
    for name in attributes:
        s.repo.remove(name)
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
    tip = s.repo.commit("no attribute", ssh=keys.alice)
    (s.repo.path / ".git/info/attributes").write_text("* working-tree-encoding=UTF-7\n")
    code, output = s.run(config=config)
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


def test_a_converting_attribute_in_the_gated_tree_does_not_block_its_removal(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A gated tree holding such an attribute (moved to under Flux, or before the gate looked for them)
    does not stop the run that removes it."""
    s = setup()
    s.repo.write("deploy/.gitattributes", "*.yaml ident\n")
    s.repo.commit("ident", ssh=keys.alice)
    assert s.run(config=_reconciler(s, "flux"))[0] == 0
    s.repo.remove("deploy/.gitattributes")
    tip = s.repo.commit("no ident", ssh=keys.alice)
    code, output = s.run(config=_reconciler(s, "argocd"))
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


def test_what_converts_on_checkout() -> None:
    checkout_conversions = presync_git.checkout_conversions
    assert checkout_conversions({"working-tree-encoding": "UTF-16LE"}) == ["working-tree-encoding=UTF-16LE"]
    assert checkout_conversions({"working-tree-encoding": "unset"}) == ["working-tree-encoding=unset"]
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
