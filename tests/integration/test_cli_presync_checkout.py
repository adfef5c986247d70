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
