"""`trustgate presync` judges what each Flux Kustomization of the tree builds, as kustomize-controller
builds it: its `spec.path` whether or not a kustomization the gate renders names it, in the namespace
its `targetNamespace` puts everything in, with its `components`. Likewise an Argo CD Application's
source path; and every kustomization under the paths that no rendered one includes.

Real git repositories, commits signed by test SSH keys, through the CLI (the helpers of
`test_cli_presync.py`).
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import test_cli_presync
from test_cli_presync import GATED, NAMESPACE, PRIVILEGED_POD, SOURCES_WAIVED, Keys, Setup

from trustgate.manifests import loader
from trustgate.model import InputProblem, Source
from trustgate.presync import runner

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


def _link(s: Setup, name: str, target: str) -> None:
    path = s.repo.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    os.symlink(target, path)
    s.repo.git("add", "--", name)


def _web_with_tweaks(s: Setup, keys: Keys) -> tuple[Path, str]:
    """apps/web (a Deployment) built by a Kustomization with the component components/tweaks; gated."""
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps, components]")
    s.repo.write("clusters/prod/web.yaml", _kustomization("web", "./apps/web", TWEAKED))
    s.repo.write("apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.write("apps/empty/kustomization.yaml", "resources: []\n")
    s.repo.write("components/tweaks/kustomization.yaml", TWEAKS)
    s.repo.commit("web with tweaks", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    return config, s.repo.ref(GATED)


TWEAKED = "components: [../../components/tweaks]\n"


def test_a_kustomization_file_flux_leaves_out_is_not_what_it_builds(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """source-controller's artifact holds no link and no file a `.sourceignore` names: where the
    path's kustomization file is one, kustomize-controller generates a kustomization (every .yaml
    there) and adds the component to it. The gate builds what Flux builds, not the linked file."""
    s = setup(FLUX)
    config, gated = _web_with_tweaks(s, keys)
    _link(s, "apps/web/kustomization.yaml", "../empty/kustomization.yaml")
    s.repo.write("components/tweaks/kustomization.yaml", EVIL_TWEAKS)
    s.repo.commit("tidy web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "hostPID" in output, output
    assert s.repo.ref(GATED) == gated

    s.repo.remove("apps/web/kustomization.yaml")
    s.repo.write("apps/web/kustomization.yaml", "resources: []\n")
    s.repo.write(".sourceignore", "apps/web/kustomization.yaml\n")
    s.repo.commit("ignore it", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "hostPID" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_subdirectory_whose_kustomization_flux_leaves_out_is_walked(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """The generated kustomization takes a subdirectory holding a kustomization Flux sees as one
    resource; one whose kustomization file is a link is walked instead, its .yaml files each one,
    into the Kustomization's `targetNamespace` (where the exception for `legacy` does not hold)."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps]")
    s.repo.write("clusters/prod/web.yaml", _kustomization("web", "./apps/web", "targetNamespace: prod\n"))
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.write("apps/empty/kustomization.yaml", "resources: []\n")
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    s.repo.write("apps/web/agent/agent.yaml", AGENT)
    _link(s, "apps/web/agent/kustomization.yaml", "../../empty/kustomization.yaml")
    s.repo.commit("agent", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "Pod/prod/agent" in output and "pss-baseline-privileged" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_dangling_link_is_not_written_through(setup: Callable[..., Setup], keys: Keys) -> None:
    """A kustomization file that links to a missing file of another build's path: the generated
    kustomization is not written through it (where the other build would take it for its own)."""
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps, components]")
    s.repo.write(
        "clusters/prod/ks.yaml",
        _kustomization("a", "./apps/a", "targetNamespace: shop\n")
        + "---\n"
        + _kustomization("b", "./apps/b", TWEAKED),
    )
    s.repo.write("apps/a/cm.yaml", test_cli_presync.CONFIGMAP)
    s.repo.write("apps/b/web.yaml", WEB)
    s.repo.write("components/tweaks/kustomization.yaml", TWEAKS)
    s.repo.commit("a and b", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    _link(s, "apps/a/kustomization.yaml", "../b/kustomization.yaml")
    s.repo.write("components/tweaks/kustomization.yaml", EVIL_TWEAKS)
    s.repo.commit("tweak", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "hostPID" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_directory_named_like_a_kustomization_stops_the_run(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A directory `kustomization.yaml` in a built path: no traceback, the run stops naming it."""
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps]")
    s.repo.write("clusters/prod/web.yaml", _kustomization("web", "./apps/web", "targetNamespace: shop\n"))
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.write("apps/web/kustomization.yaml/readme.txt", "x\n")
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3, output
    assert "presync/flux-build" in output and "apps/web/kustomization.yaml is not a regular file" in output


def test_a_kustomizations_images_replace_the_kustomizations_own(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """kustomize-controller replaces the kustomization's entry for an image `spec.images` names, so
    the kustomization's digest does not survive: the build uses the tag written (`:latest`)."""
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps]")
    mirrored = "images:\n- {name: web, newName: registry.internal/web}\n"
    s.repo.write("clusters/prod/web.yaml", _kustomization("web", "./apps/web", mirrored))
    s.repo.write("apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/web/web.yaml", WEB.replace("image: nginx:1.27@", "image: web:1.27@"))
    s.repo.commit("web, mirrored", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    s.repo.write("apps/web/web.yaml", WEB.replace(WEB_IMAGE, "web:latest"))
    digest = "sha256:" + "1" * 64
    s.repo.write(
        "apps/web/kustomization.yaml",
        f"resources: [web.yaml]\nimages:\n- {{name: web, digest: '{digest}'}}\n",
    )
    s.repo.commit("pin web by digest", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "registry.internal/web:latest" in output, output
    assert s.repo.ref(GATED) == gated


WEB_IMAGE = "nginx:1.27@sha256:0000000000000000000000000000000000000000000000000000000000000000"


def test_a_kustomization_key_in_another_case_stops_the_run(setup: Callable[..., Setup], keys: Keys) -> None:
    """kustomize reads `Patches:` as `patches`: what a Kustomization's patches merge into cannot be
    worked out, so the run stops, naming the key."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps]")
    labelled = (
        "targetNamespace: prod\npatches:\n- target: {kind: Pod}\n  patch: |-\n"
        "    - {op: add, path: /metadata/labels, value: {env: prod}}\n"
    )
    s.repo.write("clusters/prod/agent.yaml", _kustomization("agent", "./apps/agent", labelled))
    s.repo.write("apps/agent/agent.yaml", AGENT.replace("privileged: true", "privileged: false"))
    s.repo.write("apps/agent/kustomization.yaml", "resources: [agent.yaml]\n")
    s.repo.commit("agent", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output

    s.repo.write(
        "apps/agent/kustomization.yaml",
        "resources: [agent.yaml]\nPatches:\n- target: {kind: Pod}\n  patch: |-\n"
        "    - {op: replace, path: /spec/containers/0/securityContext/privileged, value: true}\n",
    )
    s.repo.commit("agent patch", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3, output
    assert "presync/flux-build" in output and "spells Patches in another case" in output, output


@pytest.mark.parametrize("key", ["name\u017fpace", "image\u017f", "patche\u017f", "component\u017f"])
def test_a_kustomization_key_go_folds_onto_a_field_stops_the_run(
    setup: Callable[..., Setup], keys: Keys, key: str
) -> None:
    """Go's encoding/json folds the long s (U+017F) to `s`: `namespace: legacy` spelled with a long s
    is kustomize's `namespace`, which kustomize-controller overrides with its targetNamespace (prod).
    The gate cannot tell which of the two kustomize takes, so the run stops, naming the key (judged
    in legacy, applied in prod). Likewise images, patches, components with a long s."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps]")
    s.repo.write(
        "clusters/prod/agent.yaml", _kustomization("agent", "./apps/agent", "targetNamespace: prod\n")
    )
    s.repo.write("apps/agent/agent.yaml", AGENT.replace("privileged: true", "privileged: false"))
    s.repo.write("apps/agent/kustomization.yaml", "resources: [agent.yaml]\n")
    s.repo.commit("agent", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    value = "legacy" if key == "name\u017fpace" else "[]"
    s.repo.write("apps/agent/kustomization.yaml", f"{key}: {value}\nresources: [agent.yaml, evil.yaml]\n")
    s.repo.write("apps/agent/evil.yaml", AGENT.replace("name: agent", "name: evil"))
    s.repo.commit("agent tweaks", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3, output
    assert "presync/flux-build" in output and "in another case" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_path_climbing_above_the_root_is_joined_as_flux_joins_it(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`spec.path: ../apps/web` is `apps/web` to kustomize-controller (securejoin): built and judged
    there, with its component; no warning that it lies outside the paths."""
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps, components]")
    s.repo.write("clusters/prod/web.yaml", _kustomization("web", "../apps/web", TWEAKED))
    s.repo.write("apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.write("components/tweaks/kustomization.yaml", TWEAKS)
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0 and "reconciler-path" not in output, output
    gated = s.repo.ref(GATED)

    s.repo.write("components/tweaks/kustomization.yaml", EVIL_TWEAKS)
    s.repo.commit("tweak", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "hostPID" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_component_reached_only_through_an_unreached_kustomization_is_not_built_alone(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A kustomization no rendered one includes is judged as a root; what it includes (a component
    that needs it, a base) is judged through it, not rendered alone (kustomize fails on it)."""
    s = setup(FLUX)
    config = s.config_with("prod.yaml", paths="[clusters/prod]")
    s.repo.write("clusters/prod/kustomization.yaml", "resources: [ns.yaml, flux-system]\n")
    s.repo.write("clusters/prod/ns.yaml", NAMESPACE)
    s.repo.write("clusters/prod/flux-system/kustomization.yaml", "resources: [sync.yaml]\n")
    s.repo.write("clusters/prod/flux-system/sync.yaml", _kustomization("web", "./clusters/prod/apps/web"))
    s.repo.write(
        "clusters/prod/apps/web/kustomization.yaml",
        "resources: [web.yaml]\nconfigMapGenerator:\n- {name: web-env, literals: [replicas=3]}\n"
        "components: [../../components/replicas]\n",
    )
    s.repo.write("clusters/prod/apps/web/web.yaml", WEB)
    s.repo.write(
        "clusters/prod/components/replicas/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nreplacements:\n"
        "- source: {kind: ConfigMap, name: web-env, fieldPath: data.replicas}\n  targets:\n"
        "  - select: {kind: Deployment, name: web}\n    fieldPaths: [spec.replicas]\n"
        "    options: {create: true}\n",
    )
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0 and "duplicate-object" not in output, output
    (record,) = s.records()
    kinds = [o["kind"] for o in record["subject"]["objects"]]
    assert kinds.count("Deployment") == 1, kinds


def test_an_unreached_kustomization_another_includes_is_still_judged_alone(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """apps/agent is a kustomization no rendered one includes (a bootstrap Kustomization outside the
    tree may apply it): judged alone, even once a new apps/zz includes it with a `$patch: delete` of
    its privileged Pod (judged only through zz, the Pod would go unseen)."""
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[apps]")
    s.repo.write("apps/kustomization.yaml", "resources: [web]\n")
    s.repo.write("apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.write("apps/agent/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/agent/web.yaml", WEB.replace("name: web,", "name: agent,"))
    s.repo.commit("web, agent", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    s.repo.write("apps/agent/kustomization.yaml", "resources: [web.yaml, evil.yaml]\n")
    s.repo.write("apps/agent/evil.yaml", AGENT.replace("name: agent", "name: evil"))
    s.repo.write(
        "apps/zz/kustomization.yaml",
        "resources: [../agent]\npatches:\n- patch: |\n    $patch: delete\n    apiVersion: v1\n"
        "    kind: Pod\n    metadata: {name: evil, namespace: legacy}\n",
    )
    s.repo.commit("agent tweaks", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "Pod/legacy/evil" in output and "pss-baseline-privileged" in output, output
    assert s.repo.ref(GATED) == gated


@pytest.mark.parametrize("included", [True, False])
def test_an_unreached_kustomization_failing_alone_is_excused_only_where_another_includes_it(
    setup: Callable[..., Setup], keys: Keys, monkeypatch: pytest.MonkeyPatch, included: bool
) -> None:
    """apps/base fails to render alone (made to, here). Where apps/overlay, which includes it, renders,
    no reconciler could apply apps/base alone either: the run passes, noting it. Where none includes
    it, its failure stops the run (exit 3), as every render failure does."""
    real = loader.read_unit

    def read_unit(unit: loader.Unit, *args: object, **kwargs: object) -> object:
        if unit.path.endswith("/apps/base"):
            return [], [InputProblem(Source(unit.path), "input/kustomize", "kustomize failed (made to)", "")]
        return real(unit, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "read_unit", read_unit)
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[apps]")
    s.repo.write("apps/kustomization.yaml", "resources: [ns.yaml]\n")
    s.repo.write("apps/ns.yaml", NAMESPACE)
    s.repo.write("apps/base/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/base/web.yaml", WEB)
    overlay = "resources: [../base]\n" if included else "resources: [web.yaml]\n"
    s.repo.write("apps/overlay/kustomization.yaml", overlay + "commonLabels: {tier: web}\n")
    if not included:
        s.repo.write("apps/overlay/web.yaml", WEB.replace("name: web,", "name: other,"))
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    if included:
        assert code == 0, output
        assert "apps/base: no rendered kustomization includes it" in output, output
        assert "judged through apps/overlay" in output, output
    else:
        assert code == 3 and "kustomize failed (made to)" in output, output


def test_a_missing_component_flux_may_ignore_is_left_out_wherever_it_is(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`ignoreMissingComponents`: a component that exists nowhere is left out, as kustomize-controller
    leaves it out, even where presync.paths does not hold it."""
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps]")
    optional = "components: [../../components/optional, ../../../../outside]\nignoreMissingComponents: true\n"
    s.repo.write("clusters/prod/web.yaml", _kustomization("web", "./apps/web", optional))
    s.repo.write("apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.commit("web, optional component", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output


def test_an_application_with_kustomize_images_stops_the_run(setup: Callable[..., Setup], keys: Keys) -> None:
    """An Application's `kustomize.images` (set as `kustomize edit set image` sets them) are not
    applied by the gate: the images it deploys cannot be judged, so the run stops, saying so."""
    s = setup("  reconciler: argocd\n" + SOURCES_WAIVED)
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps]")
    s.repo.write("apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.write(
        "clusters/prod/apps.yaml",
        _application("web", "apps/web", "kustomize:\n  images: ['nginx=nginx:latest']\n"),
    )
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3, output
    assert "presync/argocd-build" in output and "kustomize.images" in output, output


def test_the_runs_kustomize_budget_stops_it(setup: Callable[..., Setup], keys: Keys) -> None:
    """The renders of kustomizations no other includes (each on its own) count against
    `limits.kustomizeBudgetSeconds` for the run: past it, the run stops (exit 3), naming the limit to
    raise and the directory that used it up, and nothing moves."""
    s = setup(FLUX + "limits:\n  kustomizeBudgetSeconds: 0.000001\n")
    config = s.config_with("apps.yaml", paths="[apps]")
    s.repo.write("apps/kustomization.yaml", "resources: [ns.yaml]\n")
    s.repo.write("apps/ns.yaml", NAMESPACE)
    s.repo.write("apps/extra/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/extra/web.yaml", WEB)
    s.repo.commit("a kustomization none includes", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3, output
    assert "limits.kustomizeBudgetSeconds" in output and "used up at apps/extra" in output, output
    assert s.repo.ref(GATED) is None
    assert s.records()[-1]["findings"][0]["rule"] == "presync/render-budget", s.records()[-1]


def test_renders_of_the_paths_and_of_flux_builds_do_not_count_against_the_budget(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """The budget bounds what an allowed signer can add without bound (kustomizations none includes,
    each rendered alone): the kustomizations of the paths and the builds of Flux Kustomizations are
    rendered whatever it says, so a large repository is not refused for its size."""
    s = setup(FLUX + "limits:\n  kustomizeBudgetSeconds: 0.000001\n")
    config = s.config_with("apps.yaml", paths="[clusters/prod, apps]")
    s.repo.write("clusters/prod/web.yaml", _kustomization("web", "./apps/web", "targetNamespace: shop\n"))
    s.repo.write("apps/kustomization.yaml", "resources: [web]\n")
    s.repo.write("apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0 and "render-budget" not in output, output


def test_each_counted_render_gets_at_most_the_budget_left(
    setup: Callable[..., Setup], keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before each counted render the budget left is checked, and each kubectl it runs is given
    min(limits.kustomizeTimeoutSeconds, what is left) as its timeout: the run stops within about the
    budget, not a whole timeout (or two) past it. A clock that each render moves 10 s on: with 15 s,
    the first gets 15 s, the second 5 s and uses the budget up; the third is never started."""
    clock = [0.0]
    given: list[tuple[str, float]] = []
    real = loader.read_unit

    def read_unit(unit: loader.Unit, limits: Any, *args: object, **kwargs: object) -> object:
        name = Path(unit.path).name
        if name.startswith("extra"):
            given.append((name, limits.kustomize_timeout_seconds))
            clock[0] += 10.0
        return real(unit, limits, *args, **kwargs)  # type: ignore[arg-type]

    class Clock:
        def __getattr__(self, name: str) -> object:
            return getattr(time, name)

        def perf_counter(self) -> float:
            return clock[0]

    monkeypatch.setattr(loader, "read_unit", read_unit)
    monkeypatch.setattr(runner, "time", Clock())
    s = setup(FLUX + "limits:\n  kustomizeBudgetSeconds: 15\n  kustomizeTimeoutSeconds: 120\n")
    config = s.config_with("apps.yaml", paths="[apps]")
    s.repo.write("apps/kustomization.yaml", "resources: [ns.yaml]\n")
    s.repo.write("apps/ns.yaml", NAMESPACE)
    for name in ("extra1", "extra2", "extra3"):
        s.repo.write(f"apps/{name}/kustomization.yaml", "resources: [web.yaml]\n")
        s.repo.write(f"apps/{name}/web.yaml", WEB.replace("name: web,", f"name: {name},"))
    s.repo.commit("three kustomizations none includes", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3 and "used up at apps/extra2" in output, output
    assert given == [("extra1", 15.0), ("extra2", 5.0)], given


def test_a_kustomization_flux_finds_under_another_name_is_not_read_raw(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Where `kustomization.yaml` is a link, kustomize-controller takes the directory's `Kustomization`
    file (the next name kustomize recognises), not its raw files: a reconciler the gate does not see
    may build it, with its patch. The gate does not judge the raw files in its place: it renders
    the directory, which kustomize refuses (two kustomization files), so the run stops."""
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[apps]")
    s.repo.write("apps/kustomization.yaml", "resources: [empty]\n")  # names not apps/web
    s.repo.write("apps/empty/kustomization.yaml", "resources: []\n")
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.write("apps/web/Kustomization", "resources: [web.yaml]\n")
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    _link(s, "apps/web/kustomization.yaml", "../empty/kustomization.yaml")
    s.repo.write(
        "apps/web/Kustomization",
        "resources: [web.yaml]\npatches:\n- target: {kind: Deployment}\n  patch: |-\n"
        "    - {op: add, path: /spec/template/spec/hostPID, value: true}\n",
    )
    s.repo.commit("web, patched", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3 and "Found multiple kustomization files under: apps/web" in output, output
    assert s.repo.ref(GATED) == gated


def test_an_unreached_component_is_judged_alone(setup: Callable[..., Setup], keys: Keys) -> None:
    """kustomize builds a `kind: Component` holding resources alone (and so Flux and Argo CD, for a
    path naming it): one nothing includes is judged as any other kustomization no unit renders."""
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[apps]")
    s.repo.write("apps/kustomization.yaml", "resources: [web]\n")
    s.repo.write("apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    s.repo.write(
        "apps/agent/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [evil.yaml]\n",
    )
    s.repo.write("apps/agent/evil.yaml", AGENT.replace("name: agent", "name: evil"))
    s.repo.commit("agent", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1 and "Pod/legacy/evil" in output and "pss-baseline-privileged" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_spelling_kustomize_drops_includes_nothing(setup: Callable[..., Setup], keys: Keys) -> None:
    """apps/zz writes `Resources: [../agent]` beside `resources: [cm.yaml]`: kustomize keeps the
    greatest key (`resources`), so zz does not include apps/agent, and a failure of apps/agent alone
    is not excused through zz (the run stops: kubectl refuses a field Flux's decoder would drop)."""
    s = setup(FLUX)
    config = s.config_with("apps.yaml", paths="[apps]")
    s.repo.write("apps/kustomization.yaml", "resources: [web]\n")
    s.repo.write("apps/web/kustomization.yaml", "resources: [web.yaml]\n")
    s.repo.write("apps/web/web.yaml", WEB)
    s.repo.commit("web", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 0, output
    gated = s.repo.ref(GATED)

    s.repo.write("apps/agent/kustomization.yaml", "resources: [evil.yaml]\nbogusField: true\n")
    s.repo.write("apps/agent/evil.yaml", AGENT.replace("name: agent", "name: evil"))
    s.repo.write("apps/zz/kustomization.yaml", "Resources: [../agent]\nresources: [cm.yaml]\n")
    s.repo.write(
        "apps/zz/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: zz, namespace: legacy}\n"
    )
    s.repo.commit("agent, zz", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code != 0 and "judged through apps/zz" not in output, output
    assert s.repo.ref(GATED) == gated
