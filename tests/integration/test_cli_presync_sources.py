"""`trustgate presync` and what decides what the reconciler pulls: its sources, Argo CD's parameter
overrides, kustomize's load restrictor, the configured paths and the gated ref's name.

Real git repositories, commits signed by test SSH and GPG keys, through the CLI (the helpers of
`test_cli_presync.py`).
"""

from __future__ import annotations

import sqlite3
import textwrap
from collections.abc import Callable

import pytest
import test_cli_presync
from click.testing import CliRunner
from test_cli_presync import CONFIGMAP, GATED, NAMESPACE, PRIVILEGED_POD, Keys, Setup

from trustgate.cli.main import main

# Its fixtures, by the names the tests ask for.
keys = test_cli_presync.keys
setup = test_cli_presync.setup


def _records(s: Setup) -> list[str]:
    if not s.log.exists():
        return []
    with sqlite3.connect(s.log) as db:
        tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'decisions'")
        if tables.fetchone() is None:
            return []
        return [row[0] for row in db.execute("SELECT record FROM decisions")]


# -- Argo CD's parameter overrides ---------------------------------------------------------------

KUSTOMIZATION = "resources: [namespace.yaml, settings.yaml, pvc.yaml]\n"
OVERRIDE = textwrap.dedent(
    """\
    kustomize:
      namePrefix: renamed-
      images: [busybox=evil.example.com/miner:latest]
    """
)
# An override that is a Kubernetes object too: read as one in a plain directory, and merged by Argo CD.
OVERRIDE_OBJECT = CONFIGMAP.replace("name: settings", "name: override") + OVERRIDE


@pytest.mark.parametrize(
    ("kustomize", "name", "text"),
    [
        (True, "deploy/.argocd-source.yaml", OVERRIDE),
        (True, "deploy/.argocd-source-shop.yaml", OVERRIDE),
        (False, "deploy/.argocd-source.yaml", OVERRIDE_OBJECT),
    ],
    ids=["kustomize-shared", "kustomize-per-app", "plain-directory-valid-object"],
)
def test_an_argocd_override_file_stops_the_run(
    setup: Callable[..., Setup], keys: Keys, kustomize: bool, name: str, text: str
) -> None:
    """Argo CD merges `.argocd-source*.yaml` into the source before rendering (a name prefix,
    patches, images): what it applies is not what the files render to."""
    s = setup()
    if kustomize:
        s.repo.write("deploy/kustomization.yaml", KUSTOMIZATION)
        s.repo.commit("a kustomization", ssh=keys.alice)
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write(name, text)
    s.repo.commit("an image override", ssh=keys.alice)
    code, output = s.run()
    assert code == 3, output
    assert "presync/unread" in output and f"{name} is an Argo CD parameter override" in output, output
    assert s.repo.ref(GATED) == gated


# -- kustomize's load restrictor -----------------------------------------------------------------


def test_a_file_outside_the_kustomization_is_rendered_as_flux_does_and_judged(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Flux builds with LoadRestrictionsNone (within its source), so `resources: [../../common/x.yaml]`
    is applied: the gate renders it from the commit, judges it, and sees it change. Nothing outside
    the repository is read. `check`, which has no repository to confine kustomize to, keeps the
    default restrictor and says why."""
    s = setup()
    config = s.config_with("prod.yaml", paths="[clusters/prod]")
    s.repo.write(
        "clusters/prod/kustomization.yaml", "resources: [../../common/namespace.yaml, settings.yaml]\n"
    )
    s.repo.write("clusters/prod/settings.yaml", CONFIGMAP)
    s.repo.write("common/namespace.yaml", NAMESPACE)
    s.repo.commit("prod, with a shared namespace", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert "common/namespace.yaml" in output, output

    s.repo.write("common/namespace.yaml", NAMESPACE + "---\n" + PRIVILEGED_POD)
    s.repo.commit("a pod in the shared file", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "Pod/shop/debug" in output.replace("debug  ", "debug "), output

    s.repo.write("common/namespace.yaml", NAMESPACE)
    s.repo.write("clusters/prod/kustomization.yaml", "resources: [../../../outside.yaml, settings.yaml]\n")
    s.repo.commit("a file outside the repository", ssh=keys.alice)
    (s.repo.path.parent / "outside.yaml").write_text(PRIVILEGED_POD)
    code, output = s.run(config=config)
    assert code == 3, output

    result = CliRunner().invoke(
        main,
        ["check", str(s.repo.path / "clusters" / "prod"), "-c", str(config), "--no-color"],
        catch_exceptions=False,
    )
    assert result.exit_code == 3, result.output
    assert "load restrictor" in result.output, result.output


# -- the configuration and the gated ref --------------------------------------------------------


def test_empty_paths_are_a_configuration_error(setup: Callable[..., Setup], keys: Keys) -> None:
    """`presync.paths: []` judged nothing and passed every commit."""
    s = setup()
    config = s.config_with("empty.yaml", paths="[]")
    s.repo.write("deploy/pod.yaml", PRIVILEGED_POD)
    s.repo.commit("a privileged pod", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3, output
    assert f"{config}:" in output and "presync.paths: is empty" in output, output
    assert "paths: [clusters/prod]" in output, output
    assert s.repo.ref(GATED) is None and _records(s) == []


@pytest.mark.parametrize("gated_ref", ["refs/heads/a..b", "refs/heads/bad name", "refs/heads/x/", ""])
def test_an_invalid_gated_ref_is_refused_before_anything_is_judged(
    setup: Callable[..., Setup], gated_ref: str
) -> None:
    """Such a name was judged and recorded as "allow", then `git update-ref` failed."""
    s = setup()
    code, output = s.run(gated_ref=gated_ref)
    assert code == 3, output
    assert "--gated-ref" in output and "is not a valid ref name" in output, output
    assert "nothing was judged or recorded" in output, output
    assert _records(s) == []
