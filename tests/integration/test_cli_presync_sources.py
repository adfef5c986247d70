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

# A second reconciler source that follows `main` (never gated) and applies a path the gate does not
# read: once the gated ref holds it, every push to main is applied past the gate.
SIDE_SOURCES = textwrap.dedent(
    """\
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata: {name: side, namespace: flux-system}
    spec:
      interval: 1m
      url: ssh://git@git.example.com/platform/fleet.git
      ref: {branch: main}
    ---
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: side, namespace: flux-system}
    spec:
      interval: 1m
      sourceRef: {kind: GitRepository, name: side}
      path: ./unchecked
      prune: true
    ---
    apiVersion: argoproj.io/v1alpha1
    kind: Application
    metadata: {name: side, namespace: argocd}
    spec:
      project: default
      source: {repoURL: ssh://git@git.example.com/platform/fleet.git, targetRevision: main, path: unchecked}
      destination: {server: https://kubernetes.default.svc, namespace: default}
      syncPolicy: {automated: {prune: true}}
    """
)
SIDE_LABELS = ("GitRepository/flux-system/side", "Kustomization/flux-system/side", "Application/argocd/side")
HELM_RELEASE = textwrap.dedent(
    """\
    apiVersion: helm.toolkit.fluxcd.io/v2
    kind: HelmRelease
    metadata: {name: shop, namespace: shop}
    spec:
      interval: 10m
      chart:
        spec: {chart: ./charts/shop, sourceRef: {kind: GitRepository, name: fleet, namespace: flux-system}}
    """
)


def _records(s: Setup) -> list[str]:
    if not s.log.exists():
        return []
    with sqlite3.connect(s.log) as db:
        tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'decisions'")
        if tables.fetchone() is None:
            return []
        return [row[0] for row in db.execute("SELECT record FROM decisions")]


def _approved_then_changed(s: Setup, keys: Keys, path: str, approved: str, changed: str) -> str:
    """`approved` at `path` passes with every source approved; `changed` there, committed by an
    allowed signer who approves nothing, fails (exit 1): that run's output."""
    s.repo.write(path, approved)
    s.repo.commit("approved\n\nTrustgate-Approve-Source: *", gpg=keys.bob)
    code, output = s.run()
    assert code == 0, output
    s.repo.write(path, changed)
    s.repo.commit("unapproved", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    return output


# -- reconciler sources --------------------------------------------------------------------------


def test_an_added_reconciler_source_needs_an_approval_naming_it(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A signed commit adding a GitRepository that follows main (and the Kustomization and Application
    applying it) would hand every later unsigned push to the cluster: refused until an approver signs
    for each source."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/side.yaml", SIDE_SOURCES)
    s.repo.commit("a side source", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    for label in SIDE_LABELS:
        assert f"{label} is added: a reconciler source tells Flux or Argo CD what to pull" in output, output
        assert f"Trustgate-Approve-Source: {label} in deploy/side.yaml" in output, output
    assert s.repo.ref(GATED) == gated

    # A deletion approval is not a source approval, nor is an allowed signer who is no approver.
    deletion = "\n".join(f"Trustgate-Approve-Deletion: {label} in deploy/side.yaml" for label in SIDE_LABELS)
    s.repo.commit(f"approve\n\n{deletion}", gpg=keys.bob)
    sources = "\n".join(f"Trustgate-Approve-Source: {label} in deploy/side.yaml" for label in SIDE_LABELS)
    s.repo.commit(f"approve\n\n{sources}", ssh=keys.alice)
    code, output = s.run()
    assert code == 1 and "reconciler-source" in output, output

    s.repo.commit(f"approve\n\n{sources}", gpg=keys.bob)
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == s.repo.head()


def test_a_changed_or_removed_reconciler_source_needs_an_approval(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Pointing an approved source elsewhere (another path), or removing it (its reconciler prunes what
    it applied), is a change of its own; the approver's commit that itself makes it needs no path."""
    s = setup()
    s.repo.write("deploy/side.yaml", SIDE_SOURCES)
    sources = "\n".join(f"Trustgate-Approve-Source: {label}" for label in SIDE_LABELS)
    s.repo.commit(f"side sources, approved in the commit that adds them\n\n{sources}", gpg=keys.bob)
    code, output = s.run()  # a first run: every source of the tree is an addition, approved here
    assert code == 0, output

    s.repo.write("deploy/side.yaml", SIDE_SOURCES.replace("path: ./unchecked", "path: ./elsewhere"))
    s.repo.commit("move the side path", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "Kustomization/flux-system/side changes" in output, output
    assert output.count(": a reconciler source tells") == 1, output  # the others are as approved

    s.repo.write("deploy/side.yaml", SIDE_SOURCES)
    s.repo.commit("back", ssh=keys.alice)
    assert s.run()[0] == 0  # the range as a whole changes nothing

    s.repo.remove("deploy/side.yaml")
    s.repo.commit("drop the side sources", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "Application/argocd/side is removed (its reconciler prunes what it applied)" in output, output

    s.repo.write("deploy/side.yaml", SIDE_SOURCES)
    s.repo.commit("restore", ssh=keys.alice)
    s.repo.write("deploy/release.yaml", HELM_RELEASE)
    s.repo.commit("a HelmRelease built from the repository", ssh=keys.alice)
    code, output = s.run()
    assert code == 1 and "HelmRelease/shop/shop is added" in output, output


def test_a_reconciler_source_in_the_first_tree_is_judged(setup: Callable[..., Setup], keys: Keys) -> None:
    """A first run takes the history as it is, not the sources: one following main there would never
    change again, and so never be looked at."""
    s = setup()
    s.repo.write("deploy/side.yaml", SIDE_SOURCES)
    s.repo.commit("side sources", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "GitRepository/flux-system/side is added" in output, output
    assert s.repo.ref(GATED) is None


def test_an_exception_waives_a_reconciler_source(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup(
        "exceptions:\n  - {name: side, rules: [reconciler-source], names: [side], owner: platform,"
        " reason: bootstrap, expires: '2099-01-01'}\n"
    )
    assert s.run()[0] == 0
    s.repo.write("deploy/side.yaml", SIDE_SOURCES)
    s.repo.commit("side sources", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output


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


# -- reconciler sources, per reconciler -----------------------------------------------------------

# A Flux Kustomization applying ./apps from the GitRepository named by `%`.
APPS = textwrap.dedent(
    """\
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: apps, namespace: flux-system}
    spec:
      interval: 10m
      path: ./apps
      prune: true
      sourceRef: {kind: GitRepository, name: %s}
    """
)
APPS_KUSTOMIZATION = APPS % "flux-system"
APPS_APPLICATION = textwrap.dedent(
    """\
    apiVersion: argoproj.io/v1alpha1
    kind: Application
    metadata: {name: apps, namespace: argocd}
    spec:
      project: default
      source: {repoURL: 'https://example.com/fleet.git', path: apps, targetRevision: main}
      destination: {server: 'https://kubernetes.default.svc', namespace: shop}
      syncPolicy: {automated: {prune: true}}
    """
)


@pytest.mark.parametrize(
    ("reconciler", "body", "label", "to", "why"),
    [
        (
            "flux",
            APPS_KUSTOMIZATION,
            "Kustomization/flux-system/apps",
            "deploy/.github/apps.yaml",
            "not applied by Flux",
        ),
        (
            "flux",
            APPS_KUSTOMIZATION,
            "Kustomization/flux-system/apps",
            "deploy/apps.json",
            "not applied by Flux",
        ),
        (
            "argocd",
            APPS_APPLICATION,
            "Application/argocd/apps",
            "deploy/old/apps.yaml",
            "not applied by Argo CD",
        ),
    ],
)
def test_a_reconciler_source_moved_where_its_reconciler_does_not_read_it_needs_an_approval(
    setup: Callable[..., Setup], keys: Keys, reconciler: str, body: str, label: str, to: str, why: str
) -> None:
    """Its reconciler prunes it (and what it applied), as if it were removed."""
    s = setup(f"  reconciler: {reconciler}\n")
    s.repo.write("deploy/apps.yaml", body)
    s.repo.commit(f"apps\n\nTrustgate-Approve-Source: {label}", gpg=keys.bob)
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    (s.repo.path / to).parent.mkdir(parents=True, exist_ok=True)
    s.repo.git("mv", "deploy/apps.yaml", to)
    s.repo.commit("tidy", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert f"{label} is no longer applied by its reconciler, which prunes it" in output
    assert f"{to} is {why}" in output
    assert s.repo.ref(GATED) == gated

    tip = s.repo.commit(f"approve\n\nTrustgate-Approve-Source: {label} in {to}", gpg=keys.bob)
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


def test_an_inert_reconciler_source_moved_where_it_is_read_needs_an_approval(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """An example Application no reconciler applies, moved where Argo CD reads it, is added."""
    s = setup("  reconciler: argocd\n")
    s.repo.write("deploy/examples/apps.yaml", APPS_APPLICATION)
    s.repo.commit("an example\n\nTrustgate-Approve-Source: Application/argocd/apps", gpg=keys.bob)
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.git("mv", "deploy/examples/apps.yaml", "deploy/apps.yaml")
    s.repo.commit("enable it", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert (
        "Application/argocd/apps is now applied where it was not (before: deploy/examples/apps.yaml" in output
    )
    assert s.repo.ref(GATED) == gated


SAFE_POD = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Pod
    metadata: {name: debug, namespace: shop}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: debug
          image: busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
          resources: {limits: {memory: 64Mi, cpu: 100m}, requests: {memory: 64Mi, cpu: 100m}}
          livenessProbe: {exec: {command: ["true"]}}
          readinessProbe: {exec: {command: ["true"]}}
          securityContext:
            privileged: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
    """
)
UNPRIVILEGE = textwrap.dedent(
    """\
    resources: [pod.yaml]
    patches:
      - target: {kind: Pod, name: debug}
        patch: |
          - op: replace
            path: /spec/containers/0/securityContext/privileged
            value: false
    """
)


@pytest.mark.parametrize("how", ["sourceignore", "link", "argocd-recurse"])
def test_the_raw_files_of_a_kustomization_a_reconciler_does_not_render_are_judged(
    setup: Callable[..., Setup], keys: Keys, how: str
) -> None:
    """Flux's generated kustomization applies the raw files of a directory whose kustomization its
    artifact lacks (a name a `.sourceignore` leaves out, a link); a recursing Argo CD directory source
    reads a kustomization's directory below its path as it is. Those files are judged, not only the
    patched render."""
    s = setup("  argocd: {recurse: true}\n" if how == "argocd-recurse" else "  reconciler: flux\n")
    s.repo.write("deploy/app/pod.yaml", SAFE_POD)
    s.repo.write(
        "deploy/app/kustomize.txt" if how == "link" else "deploy/app/kustomization.yaml", UNPRIVILEGE
    )
    if how == "link":
        (s.repo.path / "deploy/app/kustomization.yaml").symlink_to("kustomize.txt")
        s.repo.git("add", "deploy/app/kustomization.yaml")
    s.repo.commit("the debug pod, unprivileged by its kustomization", ssh=keys.alice)
    if how == "sourceignore":
        assert s.run()[0] == 0
        s.repo.write("deploy/app/.sourceignore", "kustomization.yaml\n")
        s.repo.commit("hide the kustomization from source-controller", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "pss-baseline-privileged" in output and "deploy/app/pod.yaml" in output


FLEET_VARS = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cluster-vars, namespace: flux-system}\n"
    "data: {branch: %s}\n"
)
SUBSTITUTED = textwrap.dedent(
    """\
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: prod, namespace: flux-system}
    spec:
      interval: 10m
      path: ./deploy
      prune: true
      sourceRef: {kind: GitRepository, name: fleet}
      postBuild:
        substituteFrom: [{kind: ConfigMap, name: cluster-vars}]
    ---
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata: {name: fleet, namespace: flux-system}
    spec:
      interval: 1m
      url: https://example.com/fleet.git
      ref: {branch: "${branch}"}
    """
)


def test_what_a_kustomization_substitutes_from_is_a_reconciler_source(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A ConfigMap named in `postBuild.substituteFrom` re-points `ref.branch: ${branch}` without
    touching the GitRepository: its change needs a source approval."""
    s = setup("  reconciler: flux\n")
    s.repo.write("deploy/prod.yaml", SUBSTITUTED)
    s.repo.write("deploy/vars.yaml", FLEET_VARS % "trustgate/verified")
    approvals = "\n".join(
        f"Trustgate-Approve-Source: {label}"
        for label in (
            "Kustomization/flux-system/prod",
            "GitRepository/flux-system/fleet",
            "ConfigMap/flux-system/cluster-vars",
        )
    )
    s.repo.commit(f"the fleet\n\n{approvals}", gpg=keys.bob)
    code, output = s.run()
    assert code == 0, output
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/vars.yaml", FLEET_VARS % "main")
    s.repo.commit("follow main", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "ConfigMap/flux-system/cluster-vars changes: a reconciler source" in output
    assert s.repo.ref(GATED) == gated


FLUX_INSTANCE = textwrap.dedent(
    """\
    apiVersion: fluxcd.controlplane.io/v1
    kind: FluxInstance
    metadata: {name: flux, namespace: flux-system}
    spec:
      distribution: {version: "2.x", registry: ghcr.io/fluxcd}
      sync:
        {kind: GitRepository, url: 'https://example.com/fleet.git', ref: refs/heads/main, path: clusters/prod}
    """
)


def test_flux_operator_kinds_are_reconciler_sources(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    assert s.run()[0] == 0
    s.repo.write("deploy/flux.yaml", FLUX_INSTANCE)
    s.repo.commit("sync main", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "FluxInstance/flux-system/flux is added: a reconciler source" in output


def test_a_kustomization_gaining_force_changes_no_other_source(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`spec.force: true` has Flux replace what it cannot patch (every protected object of the tree
    counts as marked), but it is no change of another reconciler source."""
    s = setup("  reconciler: flux\n")
    s.repo.write("deploy/apps.yaml", APPS_KUSTOMIZATION)
    s.repo.commit("apps\n\nTrustgate-Approve-Source: Kustomization/flux-system/apps", gpg=keys.bob)
    assert s.run()[0] == 0
    forced = APPS_KUSTOMIZATION.replace("name: apps", "name: infra").replace("./apps", "./infra")
    s.repo.write("deploy/infra.yaml", forced + "  force: true\n")
    s.repo.commit("infra\n\nTrustgate-Approve-Source: Kustomization/flux-system/infra", gpg=keys.bob)
    code, output = s.run()
    assert "Kustomization/flux-system/apps changes" not in output, output
    assert "Kustomization/flux-system/infra is added" in output
    # What the marker protects it still does: the protected objects of the tree may be replaced.
    assert code == 1 and "PersistentVolumeClaim/shop/data would be deleted and created again" in output


# A Kustomization that puts what it applies in flux-system (`targetNamespace`), and the one that
# substitutes from what the first applies.
TARGETED = textwrap.dedent(
    """\
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: vars, namespace: flux-system}
    spec:
      interval: 10m
      path: ./deploy/vars
      prune: true
      targetNamespace: flux-system
      sourceRef: {kind: GitRepository, name: fleet}
    """
)


@pytest.mark.parametrize("namespace", ["", "  namespace: default\n"], ids=["none", "overridden"])
def test_what_a_kustomization_substitutes_from_counts_where_target_namespace_puts_it(
    setup: Callable[..., Setup], keys: Keys, namespace: str
) -> None:
    """The ConfigMap names no namespace, or another one, and lands in flux-system by the applying
    Kustomization's `targetNamespace`: it is what `prod` substitutes from."""
    s = setup("  reconciler: flux\n")
    s.repo.write("deploy/prod.yaml", SUBSTITUTED + "---\n" + TARGETED)
    vars_ = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-vars\n"
        + namespace
        + "data: {branch: %s}\n"
    )
    path = "deploy/vars/vars.yaml"
    output = _approved_then_changed(s, keys, path, vars_ % "trustgate/verified", vars_ % "main")
    label = "ConfigMap/default/cluster-vars" if namespace else "ConfigMap/cluster-vars"
    assert f"{label} changes: a reconciler source" in output


def test_an_optional_substitution_added_without_a_namespace_is_a_reconciler_source(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Where it lands is not known (no namespace, no targetNamespace): kind and name match."""
    s = setup("  reconciler: flux\n")
    s.repo.write(
        "deploy/prod.yaml", SUBSTITUTED.replace("name: cluster-vars}", "name: cluster-vars, optional: true}")
    )
    s.repo.commit("the fleet\n\nTrustgate-Approve-Source: *", gpg=keys.bob)
    assert s.run()[0] == 0
    s.repo.write(
        "deploy/vars.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cluster-vars}\ndata: {branch: main}\n",
    )
    s.repo.commit("follow main", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "ConfigMap/cluster-vars is added: a reconciler source" in output


def test_what_a_helm_release_takes_values_from_is_a_reconciler_source(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    release = HELM_RELEASE + "  valuesFrom: [{kind: ConfigMap, name: shop-values, valuesKey: values.yaml}]\n"
    values = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop-values, namespace: shop}\n"
        "data:\n  values.yaml: '%s'\n"
    )
    s = setup("  reconciler: flux\n")
    s.repo.write("deploy/release.yaml", release)
    output = _approved_then_changed(
        s, keys, "deploy/values.yaml", values % "replicas: 1", values % "securityContext: {privileged: true}"
    )
    assert "ConfigMap/shop/shop-values changes: a reconciler source" in output


@pytest.mark.parametrize(
    "obj",
    [
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-rbac-cm, namespace: argocd}\n"
        "data: {policy.default: '%s'}\n",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: repo\n  namespace: argocd\n"
        "  labels: {argocd.argoproj.io/secret-type: repository}\nstringData: {url: '%s'}\n",
    ],
    ids=["rbac", "repository"],
)
def test_argocd_configuration_is_a_reconciler_source(
    setup: Callable[..., Setup], keys: Keys, obj: str
) -> None:
    s = setup("  reconciler: argocd\n")
    output = _approved_then_changed(s, keys, "deploy/argocd.yaml", obj % "role:readonly", obj % "role:admin")
    assert "changes: a reconciler source" in output


OTHER_REPOSITORY = textwrap.dedent(
    """\
    ---
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata: {name: other, namespace: flux-system}
    spec: {interval: 1m, url: 'https://example.com/other.git', ref: {branch: main}}
    """
)


def test_a_kustomization_applying_a_path_outside_the_paths_is_warned_of(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`flux-system` (Flux's bootstrap GitRepository) is not in the tree: it may be this repository;
    `fleet` has the URL of the repository's remote: it is; `other` has another URL: no warning."""
    s = setup("  reconciler: flux\n")
    s.repo.git("remote", "add", "origin", "https://example.com/Fleet.git")
    s.repo.write("deploy/apps.yaml", APPS % "flux-system")
    ours = (APPS % "fleet").replace("name: apps", "name: ours") + OTHER_REPOSITORY.replace(
        "other", "fleet"
    ).replace("https://example.com/fleet.git", "ssh://git@example.com/fleet")
    s.repo.write("deploy/ours.yaml", ours)
    s.repo.write(
        "deploy/other.yaml", (APPS % "other").replace("name: apps", "name: others") + OTHER_REPOSITORY
    )
    s.repo.commit("apps\n\nTrustgate-Approve-Source: *", gpg=keys.bob)
    code, output = s.run()
    assert code == 0, output
    assert "Kustomization/flux-system/apps may apply (if its GitRepository is this repository) apps" in output
    assert "Kustomization/flux-system/ours applies apps, which presync.paths does not hold" in output
    assert "add apps to presync.paths" in output
    assert "Kustomization/flux-system/others may apply" not in output
    assert "Kustomization/flux-system/others applies" not in output
