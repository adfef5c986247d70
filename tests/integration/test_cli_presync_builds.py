"""`trustgate presync` judges what each Flux Kustomization of the tree builds, as kustomize-controller
builds it: its `spec.path` whether or not a kustomization the gate renders names it, in the namespace
its `targetNamespace` puts everything in, with its `components`. Likewise an Argo CD Application's
source path; and every kustomization under the paths that no rendered one includes.

Real git repositories, commits signed by test SSH keys, through the CLI (the helpers of
`test_cli_presync.py`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import test_cli_presync
from test_cli_presync import GATED, NAMESPACE, PRIVILEGED_POD, SOURCES_WAIVED, Keys, Setup

# Its fixtures, by the names the tests ask for.
keys = test_cli_presync.keys
setup = test_cli_presync.setup

FLUX = "  reconciler: flux\n" + SOURCES_WAIVED
KUSTOMIZATION = textwrap.dedent(
    """\
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: NAME, namespace: flux-system}
    spec:
      interval: 10m
      sourceRef: {kind: GitRepository, name: fleet}
      path: PATH
      prune: true
    """
)
# Passes every bundled check but one: it runs privileged.
AGENT = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Pod
    metadata: {name: agent, namespace: legacy}
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: c
        image: nginx:1.27@sha256:0000000000000000000000000000000000000000000000000000000000000000
        resources: {limits: {cpu: 100m, memory: 64Mi}}
        livenessProbe: {tcpSocket: {port: 80}}
        readinessProbe: {tcpSocket: {port: 80}}
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
          privileged: true
    """
)
LEGACY_WAIVED = (
    "  - {name: legacy-privileged, rules: [pss-baseline-privileged], namespaces: [legacy], owner: platform,"
    " reason: the legacy node agent, expires: '2099-01-01'}\n"
)
# Passes every bundled check.
WEB = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop}
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          securityContext:
            runAsNonRoot: true
            seccompProfile: {type: RuntimeDefault}
          containers:
          - name: c
            image: nginx:1.27@sha256:0000000000000000000000000000000000000000000000000000000000000000
            resources: {limits: {cpu: 100m, memory: 64Mi}}
            livenessProbe: {tcpSocket: {port: 80}}
            readinessProbe: {tcpSocket: {port: 80}}
            securityContext:
              allowPrivilegeEscalation: false
              capabilities: {drop: [ALL]}
    """
)
TWEAKS = textwrap.dedent(
    """\
    apiVersion: kustomize.config.k8s.io/v1alpha1
    kind: Component
    commonAnnotations: {team: web}
    """
)
EVIL_TWEAKS = TWEAKS + textwrap.dedent(
    """\
    patches:
    - target: {kind: Deployment}
      patch: |-
        - op: add
          path: /spec/template/spec/hostPID
          value: true
        - op: replace
          path: /spec/template/spec/containers/0/securityContext
          value: {privileged: true}
    """
)


def _kustomization(name: str, path: str, extra: str = "") -> str:
    return KUSTOMIZATION.replace("NAME", name).replace("PATH", path) + textwrap.indent(extra, "  ")


def test_a_kustomization_path_no_rendered_kustomization_names_is_judged(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`presync.paths: [clusters/prod]`, whose kustomization does not name `apps/web`; a Flux
    Kustomization of the tree applies `./clusters/prod/apps/web` (inside the paths, so no
    `reconciler-path` warning): kustomize-controller builds it, so the gate judges it too."""
    s = setup(FLUX)
    config = s.config_with("prod.yaml", paths="[clusters/prod]")
    s.repo.write("clusters/prod/kustomization.yaml", "resources: [ns.yaml, flux-system]\n")
    s.repo.write("clusters/prod/ns.yaml", NAMESPACE)
    s.repo.write("clusters/prod/flux-system/kustomization.yaml", "resources: [sync.yaml]\n")
    s.repo.write("clusters/prod/flux-system/sync.yaml", _kustomization("web", "./clusters/prod/apps/web"))
    s.repo.write("clusters/prod/apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("clusters/prod/apps/web/web.yaml", WEB)
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    (record,) = s.records()
    assert "Deployment/shop/web" in {
        f"{o['kind']}/{o.get('namespace')}/{o['name']}" for o in record["subject"]["objects"]
    }, record["subject"]["objects"]
    gated = s.repo.ref(GATED)

    s.repo.write("clusters/prod/apps/web/pod.yaml", PRIVILEGED_POD)
    s.repo.write("clusters/prod/apps/web/kustomization.yaml", "resources: [web.yaml, pod.yaml]\n")
    s.repo.commit("a debug pod", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "clusters/prod/apps/web/pod.yaml" in output and "pss-baseline-privileged" in output, output
    assert s.repo.ref(GATED) == gated

    # Without a kustomization of its own, kustomize-controller generates one: every .yaml below it.
    s.repo.remove("clusters/prod/apps/web/kustomization.yaml")
    s.repo.commit("no kustomization", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "pss-baseline-privileged" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_kustomization_path_of_its_own_is_judged_once(setup: Callable[..., Setup], keys: Keys) -> None:
    """A Kustomization that applies a path the gate renders anyway, adding nothing, is not judged
    twice: no second copy of its objects, no duplicate."""
    s = setup(FLUX)
    s.repo.write("deploy/kustomization.yaml", "resources: [namespace.yaml, settings.yaml, pvc.yaml]\n")
    s.repo.write("deploy/sync.yaml", _kustomization("deploy", "./deploy"))
    s.repo.write(
        "deploy/kustomization.yaml", "resources: [namespace.yaml, settings.yaml, pvc.yaml, sync.yaml]\n"
    )
    s.repo.commit("sync", ssh=keys.alice)
    code, output = s.run()
    assert code == 0 and "duplicate-object" not in output, output
    (record,) = s.records()
    kinds = [o["kind"] for o in record["subject"]["objects"]]
    assert kinds.count("PersistentVolumeClaim") == 1, kinds


def test_objects_under_a_target_namespace_are_judged_in_it(setup: Callable[..., Setup], keys: Keys) -> None:
    """An exception for `legacy` does not waive a Pod written in `legacy` that a Kustomization with
    `targetNamespace: prod` applies: it lands in prod, and is judged (and recorded) there. Where two
    Kustomizations apply the path into two namespaces, it is judged in each."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps]")
    s.repo.write("apps/agent/kustomization.yaml", "resources: [agent.yaml]\n")
    s.repo.write("apps/agent/agent.yaml", AGENT)
    s.repo.write(
        "clusters/prod/agent.yaml", _kustomization("agent", "./apps/agent", "targetNamespace: legacy\n")
    )
    s.repo.commit("the agent, in legacy", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    s.repo.write(
        "clusters/prod/agent.yaml", _kustomization("agent", "./apps/agent", "targetNamespace: prod\n")
    )
    s.repo.commit("the agent, in prod", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "Pod/prod/agent" in output and "pss-baseline-privileged" in output, output
    assert s.repo.ref(GATED) == gated
    record = s.records()[-1]
    assert "Pod/prod/agent" in {
        f"{o['kind']}/{o.get('namespace')}/{o['name']}" for o in record["subject"]["objects"]
    }, record["subject"]["objects"]

    s.repo.write(
        "clusters/prod/agent.yaml",
        _kustomization("agent", "./apps/agent", "targetNamespace: legacy\n")
        + "---\n"
        + _kustomization("agent-prod", "./apps/agent", "targetNamespace: prod\n"),
    )
    s.repo.commit("the agent, in both", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "Pod/prod/agent" in output, output
    assert s.repo.ref(GATED) == gated

    # No kustomization anywhere (the files are read in memory): the generated one, in prod.
    s.repo.remove("apps/agent/kustomization.yaml")
    s.repo.commit("no kustomization", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "Pod/prod/agent" in output and "pss-baseline-privileged" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_change_of_a_kustomizations_component_is_judged(setup: Callable[..., Setup], keys: Keys) -> None:
    """kustomize-controller adds a Kustomization's `spec.components` to what it builds: a commit that
    changes only a component (a patch making every Deployment privileged) is judged."""
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps, components]")
    s.repo.write("apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.write("components/tweaks/kustomization.yaml", TWEAKS)
    s.repo.write(
        "clusters/prod/web.yaml",
        _kustomization("web", "./apps/web", "components: [../../components/tweaks]\n"),
    )
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    s.repo.write("components/tweaks/kustomization.yaml", EVIL_TWEAKS)
    s.repo.commit("tweak", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "pss-baseline-privileged" in output and "hostPID" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_component_outside_the_paths_stops_the_run(setup: Callable[..., Setup], keys: Keys) -> None:
    """A component the gate does not read cannot be judged: the run stops, naming it and the fix."""
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps]")
    s.repo.write("apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.write("components/tweaks/kustomization.yaml", EVIL_TWEAKS)
    s.repo.write(
        "clusters/prod/web.yaml",
        _kustomization("web", "./apps/web", "components: [../../components/tweaks]\n"),
    )
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3, output
    assert "presync/flux-build" in output and "Kustomization/flux-system/web" in output, output
    assert "add components/tweaks to presync.paths" in output, output


APPLICATION = textwrap.dedent(
    """\
    apiVersion: argoproj.io/v1alpha1
    kind: Application
    metadata: {name: NAME, namespace: argocd}
    spec:
      project: default
      source:
        repoURL: https://git.example/fleet.git
        targetRevision: trustgate/verified
        path: PATH
        SOURCE
      destination: {server: https://kubernetes.default.svc, namespace: shop}
    """
)


def _application(name: str, path: str, source: str = "") -> str:
    return (
        APPLICATION.replace("NAME", name)
        .replace("PATH", path)
        .replace("    SOURCE\n", textwrap.indent(source, "    "))
    )


def test_an_application_path_no_rendered_kustomization_names_is_judged(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """An Argo CD Application of the tree whose path lies below a rendered kustomization that does
    not name it: Argo CD builds its kustomization (with what its `kustomize` adds), or reads the files
    of its directory source, so the gate judges them."""
    s = setup("  reconciler: argocd\n" + SOURCES_WAIVED + LEGACY_WAIVED)
    config = s.config_with("prod.yaml", paths="[clusters/prod]")
    s.repo.write("clusters/prod/kustomization.yaml", "resources: [ns.yaml, apps.yaml]\n")
    s.repo.write("clusters/prod/ns.yaml", NAMESPACE)
    s.repo.write("clusters/prod/apps.yaml", _application("agent", "clusters/prod/apps/agent"))
    s.repo.write("clusters/prod/apps/agent/kustomization.yaml", "resources: [agent.yaml]\n")
    s.repo.write("clusters/prod/apps/agent/agent.yaml", AGENT)
    s.repo.commit("the agent, in legacy", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    assert "Pod/legacy/agent" in output, output
    gated = s.repo.ref(GATED)

    s.repo.write(
        "clusters/prod/apps.yaml",
        _application("agent", "clusters/prod/apps/agent", "kustomize: {namespace: prod}\n"),
    )
    s.repo.commit("the agent, in prod", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "Pod/prod/agent" in output and "pss-baseline-privileged" in output, output
    assert s.repo.ref(GATED) == gated

    # A directory source (no kustomization): its files.
    s.repo.write("clusters/prod/apps.yaml", _application("agent", "clusters/prod/apps/agent"))
    s.repo.remove("clusters/prod/apps/agent/kustomization.yaml")
    s.repo.write("clusters/prod/apps/agent/pod.yaml", PRIVILEGED_POD)
    s.repo.commit("a debug pod", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "clusters/prod/apps/agent/pod.yaml" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_kustomization_below_a_rendered_one_that_does_not_name_it_is_judged(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """No reconciler source of the tree names `clusters/prod/apps/web`, but one the gate does not see
    (in the cluster) may: a kustomization under the paths that no rendered one includes is judged as
    one of its own. One that a rendered kustomization includes is judged once, through it."""
    s = setup("  reconciler: flux\n")
    config = s.config_with("prod.yaml", paths="[clusters/prod]")
    s.repo.write("clusters/prod/kustomization.yaml", "resources: [ns.yaml, apps/web]\n")
    s.repo.write("clusters/prod/ns.yaml", NAMESPACE)
    s.repo.write("clusters/prod/apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("clusters/prod/apps/web/web.yaml", WEB)
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0 and "duplicate-object" not in output, output
    (record,) = s.records()
    kinds = [o["kind"] for o in record["subject"]["objects"]]
    assert kinds.count("Deployment") == 1, kinds
    gated = s.repo.ref(GATED)

    s.repo.write("clusters/prod/kustomization.yaml", "resources: [ns.yaml]\n")
    s.repo.write("clusters/prod/apps/debug/kustomization.yaml", "resources: [pod.yaml]\n")
    s.repo.write("clusters/prod/apps/debug/pod.yaml", PRIVILEGED_POD)
    s.repo.commit("web and a debug pod, applied by a Kustomization in the cluster", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "clusters/prod/apps/debug/pod.yaml" in output and "pss-baseline-privileged" in output, output
    assert s.repo.ref(GATED) == gated
