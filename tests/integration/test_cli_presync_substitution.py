"""`trustgate presync` judges what a Flux Kustomization of the tree applies with its post-build
substitution done: its `postBuild.substitute` values, and the data of its `substituteFrom`
ConfigMaps and Secrets found under the paths. A base that several Kustomizations apply with
different values (Flux's multi-tenancy layout) is judged once per Kustomization, as each applies it.

Real git repositories, commits signed by test SSH keys, through the CLI (the helpers of
`test_cli_presync.py` and `test_cli_presync_builds.py`).
"""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Callable

import pytest
import test_cli_presync
from test_cli_presync import GATED, SOURCES_WAIVED, Keys, Setup
from test_cli_presync_builds import AGENT, FLUX, LEGACY_WAIVED, WEB, _kustomization

keys = test_cli_presync.keys
setup = test_cli_presync.setup

PATHS = "[clusters/prod, tenants]"
TENANT_WEB = WEB.replace(
    "metadata: {name: web, namespace: shop}",
    'metadata: {name: "${tenant}-web", namespace: "${tenant}", labels: {tenant: "${tenant}"}}',
)
TENANT_AGENT = AGENT.replace(
    "metadata: {name: agent, namespace: legacy}", 'metadata: {name: agent, namespace: "${tenant}"}'
)


def _tenant(name: str, post_build: str) -> str:
    return _kustomization(name, "./tenants/base", "postBuild:\n" + textwrap.indent(post_build, "  "))


def _objects(record: dict[str, object]) -> set[str]:
    subject = record["subject"]
    assert isinstance(subject, dict)
    return {f"{o['kind']}/{o.get('namespace')}/{o['name']}" for o in subject["objects"]}


def test_one_base_applied_for_two_tenants_passes_and_each_is_judged(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Two Kustomizations apply `tenants/base` with `tenant: team-a` and `tenant: team-b`: the base's
    `${tenant}` in a namespace, a name and a label no longer fails the tree; each tenant's objects are
    judged (and recorded) as applied, and a value from a ConfigMap of the tree counts the same."""
    s = setup(FLUX)
    config = s.config_with("tenants.yaml", paths=PATHS)
    s.repo.write("tenants/base/web.yaml", TENANT_WEB)
    s.repo.write(
        "clusters/prod/tenants.yaml",
        _tenant("team-a", "substitute: {tenant: team-a}\n")
        + "---\n"
        + _tenant("team-b", "substitute: {tenant: team-b}\n"),
    )
    s.repo.commit("two tenants", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert s.repo.ref(GATED) == s.repo.head()
    objects = _objects(s.records()[-1])
    assert {"Deployment/team-a/team-a-web", "Deployment/team-b/team-b-web"} <= objects, objects
    assert not any("${" in o for o in objects), objects

    # team-b's value from a ConfigMap of the tree (substituteFrom), in the Kustomization's namespace.
    s.repo.write(
        "clusters/prod/tenants.yaml",
        _tenant("team-a", "substitute: {tenant: team-a}\n")
        + "---\n"
        + _tenant("team-b", "substituteFrom:\n- {kind: ConfigMap, name: team-b-vars}\n")
        + "---\n"
        + "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: team-b-vars, namespace: flux-system}\n"
        + "data: {tenant: team-c}\n",
    )
    s.repo.commit("team-b's values in a ConfigMap", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert "Deployment/team-c/team-c-web" in _objects(s.records()[-1])


def test_a_substituteFrom_object_not_in_the_tree_is_denied_naming_it(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A ConfigMap that lives only in the cluster may set any variable: the namespace stays
    unresolved and is denied, the message naming the Kustomization, the variable and the object."""
    s = setup(FLUX)
    config = s.config_with("tenants.yaml", paths=PATHS)
    s.repo.write("tenants/base/web.yaml", TENANT_WEB)
    s.repo.write(
        "clusters/prod/tenants.yaml",
        _tenant("team-a", "substituteFrom:\n- {kind: ConfigMap, name: cluster-vars}\n"),
    )
    s.repo.commit("a tenant from cluster values", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "metadata-unresolved-variable" in output, output
    assert "Kustomization/flux-system/team-a" in output and "variable tenant" in output, output
    assert "ConfigMap/flux-system/cluster-vars" in output and "not in presync.paths" in output, output
    assert s.repo.ref(GATED) is None


def test_a_variable_the_kustomization_does_not_set_is_denied_naming_both(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup(FLUX)
    config = s.config_with("tenants.yaml", paths=PATHS)
    s.repo.write(
        "tenants/base/web.yaml", TENANT_WEB.replace('namespace: "${tenant}"', 'namespace: "${region}"')
    )
    s.repo.write("clusters/prod/tenants.yaml", _tenant("team-a", "substitute: {tenant: team-a}\n"))
    s.repo.commit("a tenant", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "metadata-unresolved-variable" in output, output
    assert "Kustomization/flux-system/team-a does not set the variable region" in output, output


def test_a_tenant_value_landing_a_privileged_pod_in_another_namespace_is_denied(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """An exception lets the privileged agent run in `legacy`. Substituted into `kube-system`, it is
    judged there, as a Pod written in kube-system would be: denied, the finding naming the
    Kustomization; the gated ref stays."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("tenants.yaml", paths=PATHS)
    s.repo.write("tenants/base/agent.yaml", TENANT_AGENT)
    s.repo.write("clusters/prod/tenants.yaml", _tenant("legacy", "substitute: {tenant: legacy}\n"))
    s.repo.commit("the agent, in legacy", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)
    assert gated == s.repo.head()

    s.repo.write("clusters/prod/tenants.yaml", _tenant("legacy", "substitute: {tenant: kube-system}\n"))
    s.repo.commit("the agent, in kube-system", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "Pod/kube-system/agent" in output and "pss-baseline-privileged" in output, output
    assert "as Kustomization/flux-system/legacy applies it" in output, output
    assert s.repo.ref(GATED) == gated


def test_what_cannot_be_worked_out_stops_the_run(setup: Callable[..., Setup], keys: Keys) -> None:
    """A substituteFrom Secret whose data does not decode: what Flux substitutes cannot be told, so
    the run fails closed, naming the Secret; and a base that a Kustomization without postBuild
    applies too is judged as written (its `${tenant}` denied)."""
    s = setup(FLUX)
    config = s.config_with("tenants.yaml", paths=PATHS)
    s.repo.write("tenants/base/web.yaml", TENANT_WEB)
    good = base64.b64encode(b"team-a").decode()
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: vars, namespace: flux-system}\ndata: {tenant: DATA}\n"
    )
    s.repo.write(
        "clusters/prod/tenants.yaml",
        _tenant("team-a", "substituteFrom:\n- {kind: Secret, name: vars}\n")
        + "---\n"
        + secret.replace("DATA", "'%%%not base64'"),
    )
    s.repo.commit("an undecodable secret", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code not in (0, 1) or "could not be evaluated" in output or code == 3, output
    assert "Secret/flux-system/vars" in output and "does not decode" in output, output
    assert s.repo.ref(GATED) is None

    s.repo.write(
        "clusters/prod/tenants.yaml",
        _tenant("team-a", "substituteFrom:\n- {kind: Secret, name: vars}\n")
        + "---\n"
        + secret.replace("DATA", good),
    )
    s.repo.commit("a good secret", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert "Deployment/team-a/team-a-web" in _objects(s.records()[-1])

    s.repo.write("clusters/prod/raw.yaml", _kustomization("raw", "./tenants/base"))
    s.repo.commit("the base applied as written too", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "metadata-unresolved-variable" in output, output


def test_a_base_reached_through_tenant_overlays_is_judged_only_as_they_apply_it(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Flux's multi-tenancy layout: `tenants/team-a` and `tenants/team-b` are overlays naming
    `../base`, which holds `${tenant}`; each tenant's Kustomization applies its overlay with its
    value. The base is applied by no one as written, so it is judged only as each applies it."""
    s = setup(FLUX)
    config = s.config_with("tenants.yaml", paths=PATHS)
    s.repo.write("tenants/base/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("tenants/base/web.yaml", TENANT_WEB)
    for team in ("team-a", "team-b"):
        s.repo.write(f"tenants/{team}/kustomization.yaml", "resources: [../base]\n")
    s.repo.write(
        "clusters/prod/tenants.yaml",
        _kustomization("team-a", "./tenants/team-a", "postBuild:\n  substitute: {tenant: team-a}\n")
        + "---\n"
        + _kustomization("team-b", "./tenants/team-b", "postBuild:\n  substitute: {tenant: team-b}\n"),
    )
    s.repo.commit("two tenant overlays over one base", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    objects = _objects(s.records()[-1])
    assert {"Deployment/team-a/team-a-web", "Deployment/team-b/team-b-web"} <= objects, objects
    assert not any("${" in o for o in objects), objects

    # A Kustomization that applies the base as written through an overlay of its own (no postBuild):
    # judged as written, denied.
    s.repo.write("tenants/raw/kustomization.yaml", "resources: [../base]\n")
    s.repo.write("clusters/prod/raw.yaml", _kustomization("raw", "./tenants/raw"))
    s.repo.commit("the base applied as written too", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "metadata-unresolved-variable" in output, output


def test_a_kustomization_below_a_substituting_path_that_its_build_leaves_out_is_judged(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`tenants/team-a/extra` holds a kustomization that the one of team-a's path does not name: team-a's
    build leaves it out, and another reconciler may apply it, so it is judged as written (its
    privileged Pod denied), not dropped as if team-a applied it substituted."""
    s = setup(FLUX)
    config = s.config_with("tenants.yaml", paths=PATHS)
    s.repo.write("tenants/team-a/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("tenants/team-a/web.yaml", TENANT_WEB)
    s.repo.write(
        "clusters/prod/tenants.yaml",
        _kustomization("team-a", "./tenants/team-a", "postBuild:\n  substitute: {tenant: team-a}\n"),
    )
    s.repo.commit("a tenant", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    s.repo.write("tenants/team-a/extra/kustomization.yaml", "resources: [agent.yaml]\n")
    s.repo.write(
        "tenants/team-a/extra/agent.yaml", AGENT.replace("namespace: legacy", "namespace: kube-system")
    )
    s.repo.commit("a privileged agent beside the tenant", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "Pod/kube-system/agent" in output and "pss-baseline-privileged" in output, output
    assert s.repo.ref(GATED) == gated


CLUSTER_VARS = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cluster-vars, namespace: flux-system}\n"
    "data: {cluster: prod, tenant: team-a, domain: '${tenant}.example.com', password: 'pa$$word'}\n"
)
FROM_CLUSTER_VARS = "postBuild:\n  substituteFrom:\n  - {kind: ConfigMap, name: cluster-vars}\n"


def test_a_substitute_from_object_the_kustomization_applies_itself_is_one_object(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`clusters/prod/vars.yaml` (ConfigMap cluster-vars) lies under the path of `apps`, which
    substitutes from it, as does the Kustomization `team-a` that `apps` applies (its path
    `./apps/${cluster}`). Flux reads cluster-vars from the cluster, as `apps` applied it: seen as
    written and as applied (values holding `${tenant}` and `$$` differ), it is one object, not a
    conflict. A second ConfigMap of that name with other data is one, naming both files."""
    s = setup(FLUX)
    config = s.config_with("vars.yaml", paths="[clusters/prod, apps]")
    s.repo.write("apps/prod/web.yaml", TENANT_WEB)
    s.repo.write("clusters/prod/vars.yaml", CLUSTER_VARS)
    s.repo.write("clusters/prod/apps.yaml", _kustomization("apps", "./clusters/prod", FROM_CLUSTER_VARS))
    s.repo.write(
        "clusters/prod/team-a.yaml", _kustomization("team-a", "./apps/${cluster}", FROM_CLUSTER_VARS)
    )
    s.repo.commit("cluster values applied by the Kustomization that reads them", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert "Deployment/team-a/team-a-web" in _objects(s.records()[-1])
    gated = s.repo.ref(GATED)
    assert gated == s.repo.head()

    s.repo.write("clusters/prod/more-vars.yaml", CLUSTER_VARS.replace("tenant: team-a", "tenant: team-b"))
    s.repo.commit("cluster-vars written twice", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3, output
    assert "ConfigMap/flux-system/cluster-vars is in presync.paths more than once" in output, output
    assert "clusters/prod/vars.yaml:1" in output and "clusters/prod/more-vars.yaml:1" in output, output
    assert s.repo.ref(GATED) == gated


@pytest.mark.parametrize("reconciler", ["flux", "any"])
def test_under_any_reconciler_what_only_substituting_kustomizations_apply_is_judged_as_written_too(
    setup: Callable[..., Setup], keys: Keys, reconciler: str
) -> None:
    """The agent's namespace is `${tenant}`, which the only Kustomization that applies it sets to
    `legacy` (where an exception lets it run privileged). Under `reconciler: flux` it is judged as
    that Kustomization applies it: passes. Under `any` another reconciler (Argo CD, kubectl) may
    apply the files as written, substituting nothing: judged as written too, its namespace a
    variable left unresolved: denied, naming the file."""
    s = setup(("  reconciler: flux\n" if reconciler == "flux" else "") + SOURCES_WAIVED + LEGACY_WAIVED)
    config = s.config_with("tenants.yaml", paths=PATHS)
    s.repo.write("tenants/base/agent.yaml", TENANT_AGENT)
    s.repo.write("clusters/prod/tenants.yaml", _tenant("legacy", "substitute: {tenant: legacy}\n"))
    s.repo.commit("the agent, in legacy", ssh=keys.alice)
    code, output = s.run(config=config)
    if reconciler == "flux":
        assert code == 0, output
        assert s.repo.ref(GATED) == s.repo.head()
        assert "judged as written too" not in output, output
    else:
        assert code == 1, output
        assert "tenants/base/agent.yaml" in output and "metadata-unresolved-variable" in output, output
        assert s.repo.ref(GATED) is None
        # The way out is said: the file was judged as written because of the setting.
        assert "tenants/base/agent.yaml: only substituting Flux Kustomizations apply it" in output, output
        assert "set presync.reconciler: flux" in output, output
    assert "Pod/legacy/agent" in _objects(s.records()[-1])


# Flux's multi-tenancy layout (fluxcd/flux2-multi-tenancy): a tenant's base holds its namespace and
# RBAC, and its own GitRepository and Kustomization (the tenant's repository, no spec.path); an
# overlay per cluster patches the path. Here the base is templated with `${tenant}`.
TENANT_RBAC = """\
apiVersion: v1
kind: Namespace
metadata:
  name: apps
  labels: {toolkit.fluxcd.io/tenant: "${tenant}"}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: "${tenant}"
  namespace: apps
  labels: {toolkit.fluxcd.io/tenant: "${tenant}"}
"""
TENANT_SYNC = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: dev-team, namespace: apps}
spec:
  interval: 1m
  url: https://github.com/fluxcd/flux2-multi-tenancy
  ref: {branch: dev-team}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: dev-team, namespace: apps}
spec:
  serviceAccountName: dev-team
  interval: 5m
  sourceRef: {kind: GitRepository, name: dev-team}
  prune: true
"""
TENANT_PATCH = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: dev-team, namespace: apps}
spec:
  path: ./staging
"""


@pytest.mark.parametrize("reconciler", ["flux", "any"])
def test_the_multi_tenancy_layout_whose_tenant_kustomization_reads_another_repository_passes_under_flux(
    setup: Callable[..., Setup], keys: Keys, reconciler: str
) -> None:
    """`tenants/base/dev-team/sync.yaml` holds the tenant's own Kustomization, whose GitRepository is
    the tenant's repository: it applies nothing of this tree, so the templated base is applied only by
    the substituting `tenants` Kustomization. Under `reconciler: flux` it is judged as that applies it:
    passes. Under `any` it is judged as written too, denied, and the way out is said."""
    s = setup(("  reconciler: flux\n" if reconciler == "flux" else "") + SOURCES_WAIVED)
    config = s.config_with("tenants.yaml", paths="[clusters/staging, tenants]")
    s.repo.git("remote", "add", "origin", "https://example.com/fleet.git")
    s.repo.write(
        "clusters/staging/tenants.yaml",
        _kustomization("tenants", "./tenants/staging", "postBuild:\n  substitute: {tenant: dev-team}\n"),
    )
    s.repo.write(
        "tenants/base/dev-team/kustomization.yaml", "namespace: apps\nresources: [rbac.yaml, sync.yaml]\n"
    )
    s.repo.write("tenants/base/dev-team/rbac.yaml", TENANT_RBAC)
    s.repo.write("tenants/base/dev-team/sync.yaml", TENANT_SYNC)
    s.repo.write(
        "tenants/staging/kustomization.yaml",
        "resources: [../base/dev-team]\npatches:\n- path: dev-team-patch.yaml\n",
    )
    s.repo.write("tenants/staging/dev-team-patch.yaml", TENANT_PATCH)
    s.repo.commit("the dev-team tenant", ssh=keys.alice)
    code, output = s.run(config=config)
    if reconciler == "flux":
        assert code == 0, output
        assert s.repo.ref(GATED) == s.repo.head()
        assert "ServiceAccount/apps/dev-team" in _objects(s.records()[-1])
    else:
        assert code == 1 and "metadata-unresolved-variable" in output, output
        assert "tenants/base/dev-team/rbac.yaml" in output, output
        assert "set presync.reconciler: flux" in output, output
        assert s.repo.ref(GATED) is None


OTHER_REPOSITORY = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: other, namespace: flux-system}
spec:
  interval: 1m
  url: https://example.com/other.git
  ref: {branch: main}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: other, namespace: flux-system}
spec:
  interval: 5m
  sourceRef: {kind: GitRepository, name: other}
  path: ./clusters
  targetNamespace: team-x
  prune: true
"""


def test_a_substitute_from_object_is_not_taken_to_land_where_another_repository_applies(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`vars` (tenant: legacy, where an exception lets the agent run privileged) is in flux-system. A
    Kustomization of another repository with `targetNamespace: team-x` applies that repository's
    files, not `clusters/prod/vars.yaml`: the `vars` that team-x's Kustomization substitutes from is
    the other repository's, its values not known here. The agent's namespace stays unresolved: denied
    (it was judged in legacy and passed)."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("tenants.yaml", paths="[clusters/prod, apps]")
    s.repo.git("remote", "add", "origin", "https://example.com/fleet.git")
    s.repo.write(
        "clusters/prod/vars.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: vars, namespace: flux-system}\n"
        "data: {tenant: legacy}\n",
    )
    s.repo.write("clusters/prod/other.yaml", OTHER_REPOSITORY)
    s.repo.write("apps/agent.yaml", TENANT_AGENT)
    s.repo.write(
        "clusters/prod/team.yaml",
        _kustomization(
            "team", "./apps", "postBuild:\n  substituteFrom:\n  - {kind: ConfigMap, name: vars}\n"
        ).replace("namespace: flux-system", "namespace: team-x"),
    )
    s.repo.commit("the agent, with team-x's values", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "metadata-unresolved-variable" in output and "ConfigMap/team-x/vars" in output, output
    assert "Pod/legacy/agent" not in output, output
    assert s.repo.ref(GATED) is None


def test_a_substitute_from_object_a_target_namespace_moves_is_not_taken_to_be_in_its_own(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`clusters/prod/vars.yaml` is written in flux-system (tenant: legacy), but `apps`, the only
    Kustomization that applies it, moves it to team-x. Under `reconciler: flux` the `vars` that the
    flux-system Kustomization `team` substitutes from lives only in the cluster: the agent's
    namespace stays unresolved, denied (it was judged in legacy and passed)."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("tenants.yaml", paths="[clusters/prod, apps]")
    s.repo.write(
        "clusters/prod/vars/vars.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: vars, namespace: flux-system}\n"
        "data: {tenant: legacy}\n",
    )
    s.repo.write(
        "clusters/prod/apps.yaml", _kustomization("apps", "./clusters/prod/vars", "targetNamespace: team-x\n")
    )
    s.repo.write("apps/agent.yaml", TENANT_AGENT)
    s.repo.write(
        "clusters/prod/team.yaml",
        _kustomization(
            "team", "./apps", "postBuild:\n  substituteFrom:\n  - {kind: ConfigMap, name: vars}\n"
        ),
    )
    s.repo.commit("the agent, with values moved to team-x", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "metadata-unresolved-variable" in output and "ConfigMap/flux-system/vars" in output, output
    assert "Pod/legacy/agent" not in output, output
    assert s.repo.ref(GATED) is None
