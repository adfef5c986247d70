"""`trustgate presync` judges what a Flux Kustomization substitutes with the values the cluster
holds when it first reconciles the candidate, as well as with the candidate's: kustomize-controller
reads a `substituteFrom` object from the cluster, where it is as the gated tree left it until a
Kustomization applies the new one (the same one, or another: in what order Flux reconciles them is
not fixed). Where the object changes, each object built with it is judged under both value sets.

Real git repositories, commits signed by test SSH keys, through the CLI (the helpers of
`test_cli_presync.py`, `test_cli_presync_builds.py` and `test_cli_presync_substitution.py`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
import test_cli_presync
from click.testing import CliRunner
from test_cli_presync import GATED, Keys, Setup
from test_cli_presync_builds import AGENT, FLUX, LEGACY_WAIVED, _kustomization
from test_cli_presync_substitution import PATHS, TENANT_AGENT, TENANT_WEB, _objects

from trustgate.cli.main import main
from trustgate.manifests import variables
from trustgate.presync import runner

keys = test_cli_presync.keys
setup = test_cli_presync.setup

BEFORE = "with the values the cluster holds before this change"
FROM_VARS = "postBuild:\n  substituteFrom:\n  - {kind: ConfigMap, name: vars}\n"


def _vars(tenant: str, *, name: str = "vars") -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: flux-system}}\n"
        f"data: {{tenant: {tenant}}}\n"
    )


@pytest.mark.parametrize("layout", ["self", "other"])
def test_a_changed_substitute_from_object_is_judged_with_the_values_the_cluster_still_holds(
    setup: Callable[..., Setup], keys: Keys, layout: str
) -> None:
    """Commit 1: `vars` says `tenant: kube-system`. Commit 2: `vars` says `tenant: legacy` (where an
    exception lets the agent run privileged) and adds the privileged agent at `namespace: ${tenant}`.
    Flux's first reconcile of commit 2 reads the `vars` the cluster holds (kube-system): the agent is
    judged there too, and denied, the finding saying which values; the gated ref stays.
    `self`: the Kustomization that substitutes from `vars` applies it; `other`: another one does."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("vars.yaml", paths=PATHS)
    s.repo.write("clusters/prod/vars.yaml", _vars("kube-system"))
    s.repo.write("tenants/README.md", "the tenants' objects\n")
    if layout == "self":
        s.repo.write("clusters/prod/cluster.yaml", _kustomization("cluster", "./clusters/prod", FROM_VARS))
        agent = "clusters/prod/agent.yaml"
    else:
        s.repo.write("clusters/prod/cluster.yaml", _kustomization("cluster", "./clusters/prod"))
        s.repo.write("clusters/prod/team.yaml", _kustomization("team", "./tenants/base", FROM_VARS))
        agent = "tenants/base/agent.yaml"
    s.repo.commit("cluster values", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)
    assert gated == s.repo.head()

    s.repo.write("clusters/prod/vars.yaml", _vars("legacy"))
    s.repo.write(agent, TENANT_AGENT)
    s.repo.commit("the agent, in legacy", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert s.repo.ref(GATED) == gated
    applier = "Kustomization/flux-system/" + ("cluster" if layout == "self" else "team")
    assert "Pod/kube-system/agent" in output and "pss-baseline-privileged" in output, output
    assert f"as {applier} applies it {BEFORE}" in output, output
    record = s.records()[-1]
    assert record["verdict"] == "deny"
    assert {"Pod/kube-system/agent", "Pod/legacy/agent"} <= _objects(record), _objects(record)
    privileged = [f for f in record["findings"] if f["rule"] == "pss-baseline-privileged"]
    blocking = [f for f in privileged if f["severity"] == "error"]
    assert len(blocking) == 1 and blocking[0]["metadata"]["appliedWith"] == BEFORE, privileged
    assert [f["metadata"].get("appliedWith") for f in privileged if f not in blocking] == [None], privileged


def test_values_that_change_benignly_pass_both_ways_and_both_are_recorded(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`vars` moves the tenant's web from team-a to team-b, and back: every variant passes, and the
    decision records the objects as both value sets apply them."""
    s = setup(FLUX)
    config = s.config_with("vars.yaml", paths=PATHS)
    s.repo.write("clusters/prod/vars.yaml", _vars("team-a"))
    s.repo.write("clusters/prod/team.yaml", _kustomization("team", "./tenants/base", FROM_VARS))
    s.repo.write("tenants/base/web.yaml", TENANT_WEB)
    s.repo.commit("team-a", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert BEFORE not in output, output

    for now, was in (("team-b", "team-a"), ("team-a", "team-b")):
        s.repo.write("clusters/prod/vars.yaml", _vars(now))
        s.repo.commit(f"{now}, from {was}", ssh=keys.alice)
        code, output = s.run(config=config)
        assert code == 0, output
        assert s.repo.ref(GATED) == s.repo.head()
        objects = _objects(s.records()[-1])
        assert {f"Deployment/{now}/{now}-web", f"Deployment/{was}/{was}-web"} <= objects, objects


def test_an_unchanged_substitute_from_object_is_judged_once(
    setup: Callable[..., Setup], keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another file changes, `vars` does not: each object is substituted once, with one value set, and
    the renders are those of a tree without the check (no build twice)."""
    s = setup(FLUX)
    config = s.config_with("vars.yaml", paths=PATHS)
    s.repo.write("clusters/prod/vars.yaml", _vars("team-a"))
    s.repo.write("clusters/prod/team.yaml", _kustomization("team", "./tenants/base", FROM_VARS))
    s.repo.write("tenants/base/web.yaml", TENANT_WEB)
    s.repo.commit("team-a", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output

    applied: list[str] = []
    renders: list[str] = []
    apply, read_unit = variables.apply, runner.loader.read_unit

    def counting_apply(doc: object, substitution: variables.Substitution, **kw: bool) -> object:
        applied.append(substitution.applied_as)
        return apply(doc, substitution, **kw)  # type: ignore[arg-type]

    def counting_read(unit: runner.loader.Unit, *a: object, **kw: object) -> object:
        renders.append(unit.path)
        return read_unit(unit, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(variables, "apply", counting_apply)
    monkeypatch.setattr(runner.loader, "read_unit", counting_read)
    s.repo.write("tenants/base/web.yaml", TENANT_WEB.replace("app: web", "app: web2"))
    s.repo.commit("another label", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert BEFORE not in output, output
    # One web, built twice (the candidate's tree and the gated tree), each substituted once.
    assert applied == ["Kustomization/flux-system/team"] * 2, applied
    kustomize = [r for r in renders if r.endswith("tenants/base")]
    assert len(kustomize) == 2, renders
    assert _objects(s.records()[-1]) >= {"Deployment/team-a/team-a-web"}


def test_a_substitute_from_object_added_with_its_use_is_judged_with_its_values(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`vars` and the Kustomization reading it arrive together: the cluster holds no `vars` yet, so
    Flux's first reconcile fails (it is not optional) or, with `optional: true`, applies the
    defaults. The candidate's values pass; where the first reconcile takes a default (`kube-system`), it
    is judged there, and denied."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("vars.yaml", paths=PATHS)
    s.repo.write("clusters/prod/cluster.yaml", _kustomization("cluster", "./clusters/prod"))
    s.repo.write("tenants/README.md", "the tenants' objects\n")
    s.repo.commit("the cluster", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output

    s.repo.write("clusters/prod/vars.yaml", _vars("legacy"))
    s.repo.write("clusters/prod/team.yaml", _kustomization("team", "./tenants/base", FROM_VARS))
    s.repo.write("tenants/base/agent.yaml", TENANT_AGENT)
    s.repo.commit("the agent, in legacy", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert "Pod/legacy/agent" in _objects(s.records()[-1])

    optional = (
        "postBuild:\n  substitute: {region: eu}\n"
        "  substituteFrom:\n  - {kind: ConfigMap, name: vars2, optional: true}\n"
    )
    s.repo.write("clusters/prod/vars2.yaml", _vars("legacy", name="vars2"))
    s.repo.write("clusters/prod/team2.yaml", _kustomization("team2", "./tenants/two", optional))
    s.repo.write("tenants/two/agent.yaml", TENANT_AGENT.replace('"${tenant}"', '"${tenant:=kube-system}"'))
    s.repo.commit("a second agent, with a default", ssh=keys.alice)
    gated = s.repo.ref(GATED)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "Pod/kube-system/agent" in output and BEFORE in output, output
    assert s.repo.ref(GATED) == gated


def test_on_a_first_run_the_candidates_values_are_judged_and_a_note_says_so(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup(FLUX)
    config = s.config_with("vars.yaml", paths=PATHS)
    s.repo.write("clusters/prod/vars.yaml", _vars("team-a"))
    s.repo.write("clusters/prod/team.yaml", _kustomization("team", "./tenants/base", FROM_VARS))
    s.repo.write("tenants/base/web.yaml", TENANT_WEB)
    s.repo.commit("team-a", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert "what the cluster holds of ConfigMap/flux-system/vars is not known" in output, output


@pytest.mark.parametrize("layout", ["self", "other"])
def test_a_kustomization_whose_own_substitute_changes_is_judged_with_its_old_spec_too(
    setup: Callable[..., Setup], keys: Keys, layout: str
) -> None:
    """The Kustomization's own `postBuild.substitute` moves from `kube-system` to `legacy` in the commit
    that adds the privileged agent at `${tenant}`: the cluster holds the old Kustomization until a
    reconcile applies the new one, and that Kustomization may reconcile the commit first (`self`: it
    always does, applying its new spec as it goes). The agent is judged in kube-system too, and
    denied, the finding saying with which spec; the gated ref stays."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("vars.yaml", paths=PATHS)
    s.repo.write("tenants/README.md", "the tenants' objects\n")
    old = "postBuild:\n  substitute: {tenant: kube-system}\n"
    name, path, agent = (
        ("cluster", "./clusters/prod", "clusters/prod/agent.yaml")
        if layout == "self"
        else ("team", "./tenants/base", "tenants/base/agent.yaml")
    )
    if layout == "other":
        s.repo.write("clusters/prod/cluster.yaml", _kustomization("cluster", "./clusters/prod"))
    s.repo.write(f"clusters/prod/{name}.yaml", _kustomization(name, path, old))
    s.repo.commit("kube-system", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    s.repo.write(
        f"clusters/prod/{name}.yaml", _kustomization(name, path, old.replace("kube-system", "legacy"))
    )
    s.repo.write(agent, TENANT_AGENT)
    s.repo.commit("the agent, in legacy", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert s.repo.ref(GATED) == gated
    assert "Pod/kube-system/agent" in output, output
    assert f"as Kustomization/flux-system/{name} applies it {runner._STALE}" in output, output
    record = s.records()[-1]
    assert {"Pod/kube-system/agent", "Pod/legacy/agent"} <= _objects(record), _objects(record)
    (blocking,) = [f for f in record["findings"] if f["severity"] == "error"]
    assert (
        blocking["rule"] == "pss-baseline-privileged" and blocking["metadata"]["appliedWith"] == runner._STALE
    )
    # The auditor's view tells the two agents apart, and says with which spec the denied one is judged.
    shown = CliRunner().invoke(main, ["log", "show", "--store", f"sqlite:///{s.log}", record["id"]])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    (denied,) = [i for i, line in enumerate(lines) if line.lstrip().startswith("error ")]
    assert "[Pod/kube-system/agent at " in lines[denied], shown.output
    assert lines[denied + 1].strip() == f"as Kustomization/flux-system/{name} applies it {runner._STALE}"

    # Nothing else changes in the next commit: nothing is judged with an old spec.
    s.repo.write(
        f"clusters/prod/{name}.yaml", _kustomization(name, path, old.replace("kube-system", "legacy"))
    )
    s.repo.remove(agent)
    s.repo.commit("no agent", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    s.repo.write("tenants/README.md", "the tenants' objects, again\n")
    s.repo.commit("readme", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0 and runner._STALE not in output, output


@pytest.mark.parametrize("field", ["data", "stringData"])
def test_a_changed_secret_is_judged_with_the_values_the_cluster_still_holds(
    setup: Callable[..., Setup], keys: Keys, field: str
) -> None:
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("vars.yaml", paths=PATHS)

    def secret(tenant: str) -> str:
        value = base64.b64encode(tenant.encode()).decode() if field == "data" else tenant
        return (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: vars, namespace: flux-system}\n"
            f"{field}: {{tenant: {value}}}\n"
        )

    s.repo.write("clusters/prod/vars.yaml", secret("kube-system"))
    s.repo.write("tenants/README.md", "the tenants' objects\n")
    s.repo.write("clusters/prod/cluster.yaml", _kustomization("cluster", "./clusters/prod"))
    s.repo.write(
        "clusters/prod/team.yaml",
        _kustomization("team", "./tenants/base", FROM_VARS.replace("ConfigMap", "Secret")),
    )
    s.repo.commit("cluster values", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    s.repo.write("clusters/prod/vars.yaml", secret("legacy"))
    s.repo.write("tenants/base/agent.yaml", TENANT_AGENT)
    s.repo.commit("the agent, in legacy", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "Pod/kube-system/agent" in output and BEFORE in output, output


def test_a_protected_object_the_new_values_remove_still_needs_approval(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`vars` moves the tenant from team-a to team-b: Flux applies Namespace/team-b and prunes
    Namespace/team-a, a protected deletion. The copy of Namespace/team-a judged as the first reconcile
    applies it (with the old values) is no object the tree holds once applied: the deletion is found,
    and refused without an approval."""
    s = setup(FLUX)
    config = s.config_with("vars.yaml", paths=PATHS)
    s.repo.write("clusters/prod/vars.yaml", _vars("team-a"))
    s.repo.write("clusters/prod/cluster.yaml", _kustomization("cluster", "./clusters/prod"))
    s.repo.write("clusters/prod/team.yaml", _kustomization("team", "./tenants/base", FROM_VARS))
    s.repo.write("tenants/base/ns.yaml", 'apiVersion: v1\nkind: Namespace\nmetadata: {name: "${tenant}"}\n')
    s.repo.write("tenants/base/web.yaml", TENANT_WEB)
    s.repo.commit("team-a", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    s.repo.write("clusters/prod/vars.yaml", _vars("team-b"))
    s.repo.commit("team-b", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert s.repo.ref(GATED) == gated
    removal = [f for f in s.records()[-1]["findings"] if f["severity"] == "error"]
    assert [f["rule"] for f in removal] == ["destructive-change"], removal
    assert "Namespace/team-a" in removal[0]["message"], removal


@pytest.mark.parametrize("change", ["target-namespace", "replaced"])
def test_a_kustomization_the_change_moves_or_replaces_is_judged_with_its_old_spec_too(
    setup: Callable[..., Setup], keys: Keys, change: str
) -> None:
    """`target-namespace`: team's `targetNamespace` moves from kube-system to legacy in the commit that
    adds the privileged agent; `replaced`: team (`tenant: kube-system`) is removed and team2
    (`tenant: legacy`) builds the same path, with the agent. Until a reconcile applies the change, the
    cluster's team may build the commit with its old spec: the agent is judged in kube-system too."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("vars.yaml", paths=PATHS)
    s.repo.write("tenants/README.md", "the tenants' objects\n")
    s.repo.write("clusters/prod/cluster.yaml", _kustomization("cluster", "./clusters/prod"))
    old = (
        "targetNamespace: kube-system\n"
        if change == "target-namespace"
        else "postBuild:\n  substitute: {tenant: kube-system}\n"
    )
    s.repo.write("clusters/prod/team.yaml", _kustomization("team", "./tenants/base", old))
    s.repo.commit("kube-system", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    if change == "target-namespace":
        s.repo.write(
            "clusters/prod/team.yaml", _kustomization("team", "./tenants/base", "targetNamespace: legacy\n")
        )
        s.repo.write("tenants/base/agent.yaml", AGENT)
    else:
        s.repo.remove("clusters/prod/team.yaml")
        new = "postBuild:\n  substitute: {tenant: legacy}\n"
        s.repo.write("clusters/prod/team2.yaml", _kustomization("team2", "./tenants/base", new))
        s.repo.write("tenants/base/agent.yaml", TENANT_AGENT)
    s.repo.commit("the agent, in legacy", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert s.repo.ref(GATED) == gated
    assert f"as Kustomization/flux-system/team applies it {runner._STALE}" in output, output
    assert "Pod/kube-system/agent" in _objects(s.records()[-1])
