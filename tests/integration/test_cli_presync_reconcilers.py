"""`trustgate presync`: a protected object still in the tree, but where a reconciler no longer reads it,
is deleted by that reconciler, and needs an approval like any removal.

The gate reads the union of what Flux and Argo CD apply (for content), but a removal is judged per
reconciler: Flux's source-controller leaves ignored names and links out of its artifact, Flux's
generated kustomization takes only `.yaml`/`.yml`, Argo CD's directory source reads no
subdirectory unless `directory.recurse` is set. Real repositories, commits signed by test keys.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import test_cli_presync as presync_cli
import yaml
from test_cli_presync import GATED, PRIVILEGED_POD, PVC, Keys, Setup

keys = presync_cli.keys  # the fixtures: an allowed SSH signer (alice), a GPG approver (bob)
setup = presync_cli.setup
DELETED = "destructive-change"


def _moved(s: Setup, keys: Keys, to: str) -> str:
    """Move the PVC from deploy/pvc.yaml to `to` in a commit by an allowed signer who approves nothing."""
    (s.repo.path / to).parent.mkdir(parents=True, exist_ok=True)
    s.repo.git("mv", "deploy/pvc.yaml", to)
    return s.repo.commit(f"move the volume to {to}", ssh=keys.alice)


def _config_setting(s: Setup, name: str, setting: str) -> Path:
    """Another config beside the run's (`name`), with `setting` first under `presync:`."""
    config = s.config_with(name)
    config.write_text(config.read_text().replace("presync:\n", f"presync:\n  {setting}\n"))
    return config


@pytest.mark.parametrize(
    ("to", "why"),
    [
        ("deploy/.github/pvc.yaml", "source-controller leaves .github/ out of its artifact"),
        ("deploy/cloudbuild.yaml", "source-controller leaves cloudbuild.yaml out of its artifact"),
        ("deploy/ops/.sops.yaml", "source-controller leaves **/.sops.yaml out of its artifact"),
    ],
)
def test_a_protected_object_moved_to_a_name_flux_ignores_is_deleted(
    setup: Callable[..., Setup], keys: Keys, to: str, why: str
) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    _moved(s, keys, to)
    code, output = s.run()
    assert code == 1, output
    assert DELETED in output and "PersistentVolumeClaim/shop/data would be deleted" in output
    assert f"{to} is not applied by Flux: {why}" in output
    assert s.repo.ref(GATED) == gated

    # The approver's trailer, as the finding prints it, approves the move.
    tip = s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in deploy/pvc.yaml",
        gpg=keys.bob,
    )
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


@pytest.mark.parametrize("where", ["", "deploy/"])
def test_a_protected_object_a_sourceignore_leaves_out_is_deleted(
    setup: Callable[..., Setup], keys: Keys, where: str
) -> None:
    s = setup()
    assert s.run()[0] == 0
    s.repo.write(
        f"{where}.sourceignore", "# not for the cluster\n" + ("pvc.yaml\n" if where else "deploy/pvc.yaml\n")
    )
    s.repo.commit("ignore the volume", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert f"deploy/pvc.yaml is not applied by Flux: {where}.sourceignore leaves it out" in output


@pytest.mark.parametrize(
    ("dirlink", "link", "refused"),
    [
        ("real", "cfg/ign", True),  # the kernel follows cfg; a lookup of cfg/ign in the tree finds nothing
        ("real/deeper", "cfg/../ign", True),  # cfg/.. is real (the kernel), not the root (the text)
        ("real", "real/ign", False),  # no link on the way: read from the tree
    ],
)
def test_a_sourceignore_linking_through_a_directory_link_stops_the_run(
    setup: Callable[..., Setup], keys: Keys, dirlink: str, link: str, refused: bool
) -> None:
    """source-controller os.Open()s `.sourceignore` in its checkout, the kernel following every link
    on the way: a link whose target passes through a directory link cannot be read from the tree as
    it reads it, so the run stops (exit 3), naming it."""
    s = setup("  reconciler: flux\n")
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("real/ign", "deploy/pvc.yaml\n")
    (s.repo.path / "real/deeper").mkdir(parents=True, exist_ok=True)
    s.repo.write("real/deeper/keep.txt", "")
    os.symlink(dirlink, s.repo.path / "cfg")
    os.symlink(link, s.repo.path / ".sourceignore")
    s.repo.git("add", "-A")
    s.repo.commit("ignore the volume, through links", ssh=keys.alice)
    code, output = s.run()
    if refused:
        assert code == 3, output
        assert f".sourceignore links to {link}: what Flux's source-controller reads" in output, output
        assert s.repo.ref(GATED) == gated
    else:
        assert code == 1, output
        assert "deploy/pvc.yaml is not applied by Flux: .sourceignore leaves it out" in output, output


def test_a_sourceignore_with_a_pattern_switches_flux_defaults_off(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """source-controller's default exclusions hold only while no `.sourceignore` holds a pattern: then
    .github/ is read, and moving a protected object there deletes nothing under Flux."""
    s = setup("  reconciler: flux\n")
    s.repo.write(".sourceignore", "docs/\n")
    s.repo.commit("ignore the docs", ssh=keys.alice)
    assert s.run()[0] == 0
    tip = _moved(s, keys, "deploy/.github/pvc.yaml")
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


def test_a_protected_object_whose_file_becomes_a_link_is_deleted_by_flux(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.git("mv", "deploy/pvc.yaml", "deploy/pvc.data")
    (s.repo.path / "deploy/pvc.yaml").symlink_to("pvc.data")
    s.repo.git("add", "deploy/pvc.yaml")
    s.repo.commit("pvc.yaml becomes a link", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert DELETED in output
    assert "deploy/pvc.yaml is not applied by Flux: it is a symbolic link" in output
    assert s.repo.ref(GATED) == gated

    # An approver who makes the change in a commit of their own may leave out ` in PATH`.
    s.repo.git("reset", "-q", "--hard", gated)
    s.repo.git("mv", "deploy/pvc.yaml", "deploy/pvc.data")
    (s.repo.path / "deploy/pvc.yaml").symlink_to("pvc.data")
    s.repo.git("add", "deploy/pvc.yaml")
    tip = s.repo.commit(
        "pvc.yaml becomes a link\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data", gpg=keys.bob
    )
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


def test_a_protected_object_moved_to_json_is_deleted_by_flux(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.remove("deploy/pvc.yaml")
    s.repo.write("deploy/pvc.json", json.dumps(yaml.safe_load(PVC), indent=1))
    s.repo.commit("the volume as JSON", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert DELETED in output
    assert (
        "deploy/pvc.json is not applied by Flux: the kustomization it generates for deploy takes .yaml"
        in output
    )
    assert s.repo.ref(GATED) == gated
    (deleted,) = [f for f in s.records()[-1]["findings"] if f["rule"] == DELETED]
    assert deleted["metadata"]["notAppliedBy"] == ["flux"]

    # Argo CD reads .json: a gate for Argo CD alone lets it through.
    config = _config_setting(s, "argocd.yaml", "reconciler: argocd")
    code, output = s.run(config=config)
    assert code == 0, output


def test_a_protected_object_moved_to_a_subdirectory_is_deleted_by_argocd(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    _moved(s, keys, "deploy/storage/pvc.yaml")
    code, output = s.run()
    assert code == 1, output
    assert DELETED in output
    assert (
        "deploy/storage/pvc.yaml is not applied by Argo CD: its directory source reads only the files"
        in output
    )
    assert s.repo.ref(GATED) == gated

    # Flux reads subdirectories, and so does an Application with directory.recurse.
    for i, reconciler in enumerate(("reconciler: flux", "argocd: {recurse: true}")):
        config = _config_setting(s, f"config-{i}.yaml", reconciler)
        code, output = s.run(config=config)
        assert code == 0, (reconciler, output)
        s.repo.git("update-ref", GATED, gated)

    # An object that stays where a reconciler does not read it is no change: it was not applied before
    # either (nothing asks for an approval at every run).
    s.run(config=config)
    s.repo.write("deploy/settings.yaml", s.repo.path.joinpath("deploy/settings.yaml").read_text() + "# x\n")
    tip = s.repo.commit("touch the settings", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


# -- what each reconciler reads, as source-controller and Argo CD's repo server do -------------------


@pytest.mark.parametrize(
    ("extra", "sourceignore", "to", "why"),
    [
        ("  reconciler: flux\n", "", "deploy/.gitattributes/pvc.yaml", "leaves .gitattributes out"),
        ("  reconciler: flux\n", "docs/\n", "deploy/.gitignore/pvc.yaml", "leaves .gitignore out"),
        ("  reconciler: flux\n", "", "deploy/old.zip/pvc.yaml", "leaves *.zip out"),
        ("  argocd: {recurse: true}\n", "", "deploy/img.png/pvc.yaml", "leaves *.png out"),
    ],
)
def test_source_controllers_vcs_and_extension_exclusions_match_directories(
    setup: Callable[..., Setup], keys: Keys, extra: str, sourceignore: str, to: str, why: str
) -> None:
    """ExcludeVCS is always in force (a `.sourceignore` with a pattern too), ExcludeExt while no
    `.sourceignore` holds one; a pattern without `/` matches a directory's name at any depth."""
    s = setup(extra)
    if sourceignore:
        s.repo.write(".sourceignore", sourceignore)
        s.repo.commit("ignore the docs", ssh=keys.alice)
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    _moved(s, keys, to)
    code, output = s.run()
    assert code == 1, output
    assert "PersistentVolumeClaim/shop/data would be deleted" in output
    assert f"{to} is not applied by Flux: source-controller {why}" in output
    assert s.repo.ref(GATED) == gated


@pytest.mark.parametrize("reconciler", ["argocd", "any", "flux"])
def test_a_file_holding_argocds_skip_marker_is_not_applied_by_argocd(
    setup: Callable[..., Setup], keys: Keys, reconciler: str
) -> None:
    """Argo CD's directory source leaves out a file whose bytes hold `+argocd:skip-file-rendering`;
    Flux does not look for it."""
    s = setup(f"  reconciler: {reconciler}\n")
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/pvc.yaml", "# +argocd:skip-file-rendering\n" + PVC)
    tip = s.repo.commit("a comment", ssh=keys.alice)
    code, output = s.run()
    if reconciler == "flux":
        assert code == 0, output
        assert s.repo.ref(GATED) == tip
        return
    assert code == 1, output
    assert "deploy/pvc.yaml is not applied by Argo CD: it holds +argocd:skip-file-rendering" in output
    assert s.repo.ref(GATED) == gated


@pytest.mark.parametrize("paths", ["[deploy, deploy/shop]", "[deploy/shop, deploy]"])
def test_nested_paths_are_read_whatever_their_order(
    setup: Callable[..., Setup], keys: Keys, paths: str
) -> None:
    """Two Applications, for deploy and deploy/shop: a file directly in deploy/shop is read by the
    second; moved below it, by neither."""
    s = setup("  reconciler: argocd\n")
    config = s.config_with("nested.yaml", paths=paths)
    (s.repo.path / "deploy/shop").mkdir()
    s.repo.git("mv", "deploy/pvc.yaml", "deploy/shop/pvc.yaml")
    s.repo.commit("the shop's volume", ssh=keys.alice)
    assert s.run(config=config)[0] == 0
    gated = s.repo.ref(GATED)
    (s.repo.path / "deploy/shop/old").mkdir()
    s.repo.git("mv", "deploy/shop/pvc.yaml", "deploy/shop/old/pvc.yaml")
    s.repo.commit("tidy", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert (
        "deploy/shop/old/pvc.yaml is not applied by Argo CD: its directory source reads only the files "
        in output
    )
    assert "directly in deploy/shop" in output
    assert s.repo.ref(GATED) == gated


def test_the_default_reconciler_says_how_to_gate_for_flux_alone(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`reconciler: any` (the default) fails closed on a move Flux applies the same; the finding says
    which setting a Flux-only repository wants."""
    s = setup()
    assert s.run()[0] == 0
    _moved(s, keys, "deploy/shop/pvc.yaml")
    code, output = s.run()
    assert code == 1, output
    assert "if no Argo CD Application applies these paths, set presync.reconciler: flux" in output

    config = _config_setting(s, "flux.yaml", "reconciler: flux")
    code, output = s.run(config=config)
    assert code == 0, output


def test_a_sourceignore_pattern_that_is_not_utf8_is_reported_and_recorded(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup("  reconciler: flux\n")
    assert s.run()[0] == 0
    (s.repo.path / ".sourceignore").write_bytes(b"[o\xff]ld/\n")
    s.repo.git("add", ".sourceignore")
    (s.repo.path / "deploy/old").mkdir()
    s.repo.git("mv", "deploy/pvc.yaml", "deploy/old/pvc.yaml")
    s.repo.commit("tidy", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "leaves it out of source-controller's artifact ([o\\xff]ld/)" in output
    (deleted,) = [f for f in s.records()[-1]["findings"] if f["rule"] == DELETED]
    assert "[o\\xff]ld/" in deleted["message"]


# A chart's template holding a privileged Pod: `helm template` fills the value; the gate never reads it.
_TEMPLATE = PRIVILEGED_POD.replace("{privileged: true}", "{privileged: {{ .Values.privileged }}}")
# A chart whose template parses as YAML, with the privileged setting in a comment that Helm's
# `{{- "..." }}` turns into a line of its own: `#` then `privileged: true` below it.
# Everything else about the Pod passes the bundled policies.
_COMMENTED = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Pod
    metadata: {name: debug, namespace: shop}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: debug
          image: busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
          resources: {limits: {memory: 64Mi, cpu: 100m}}
          livenessProbe: {tcpSocket: {port: 80}}
          readinessProbe: {tcpSocket: {port: 80}}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
            # {{- "\\n            privileged: true" }}
    """
)
# A Chart.yaml that Helm loads (apiVersion, name, version; other fields ignored) and the gate reads
# as an object of an unknown kind.
_DRESSED_CHART = "apiVersion: v2\nkind: Chart\nmetadata: {name: shop}\nname: shop\nversion: 0.1.0\n"


@pytest.mark.parametrize(
    ("files", "decisive"),
    [
        pytest.param(
            {
                "deploy/kustomization.yaml": "resources: [namespace.yaml, settings.yaml, pvc.yaml]\n",
                "deploy/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
                "deploy/values.yaml": "privileged: true\n",
                "deploy/templates/debug.yaml": _TEMPLATE,
                "deploy/values-Chart.yaml": "# after kustomization.yaml: Argo CD takes deploy for a chart\n",
            },
            "deploy/values-Chart.yaml",
            id="kustomization-before-a-chart-name",
        ),
        pytest.param(
            {"deploy/Chart.yaml": _DRESSED_CHART, "deploy/templates/debug.yaml": _COMMENTED},
            "deploy/Chart.yaml",
            id="chart-read-as-files",
        ),
    ],
)
@pytest.mark.parametrize("reconciler", ["argocd", "any", "flux"])
def test_a_directory_argocd_renders_as_a_helm_chart_stops_the_run(
    setup: Callable[..., Setup], keys: Keys, files: dict[str, str], decisive: str, reconciler: str
) -> None:
    """Argo CD's source type discovery (`util/app/discovery`) takes an Application's path for a Helm
    chart when, of its names ending in `Chart.yaml` and kustomize's names, the last in byte order is
    a chart name, and renders it with `helm template`; the gate rendered the kustomization, or read
    the files one by one, and passed the privileged Pod the chart makes. Under Argo CD the run stops;
    Flux builds the kustomization (or fails on the chart's files) and never renders a chart."""
    s = setup(f"  reconciler: {reconciler}\n")
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    for name, text in files.items():
        s.repo.write(name, text)
    tip = s.repo.commit("a chart", ssh=keys.alice)
    code, output = s.run()
    if reconciler == "flux":
        assert code == 0, output
        assert s.repo.ref(GATED) == tip
        return
    assert code == 3, output
    assert "presync/unread" in output and f"at {decisive}" in output, output
    assert "deploy is a Helm chart to Argo CD" in output, output
    assert s.repo.ref(GATED) == gated


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(  # kustomization.yaml comes after Chart.yaml: Argo CD renders the kustomization
            {
                "deploy/kustomization.yaml": "resources: [namespace.yaml, settings.yaml, pvc.yaml]\n",
                "deploy/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
                "deploy/templates/debug.yaml": _TEMPLATE,
            },
            id="kustomization-after-the-chart",
        ),
        pytest.param(  # a HelmRelease's chart below a kustomization directory: no Application's path
            {
                "deploy/kustomization.yaml": "resources: [namespace.yaml, settings.yaml, pvc.yaml]\n",
                "deploy/charts/shop/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
                "deploy/charts/shop/templates/debug.yaml": _TEMPLATE,
            },
            id="chart-below-a-kustomization",
        ),
    ],
)
def test_a_kustomization_argocd_renders_as_one_does_not_stop_the_run(
    setup: Callable[..., Setup], keys: Keys, files: dict[str, str]
) -> None:
    s = setup("  reconciler: argocd\n")
    assert s.run()[0] == 0
    for name, text in files.items():
        s.repo.write(name, text)
    tip = s.repo.commit("a chart beside the kustomization", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output
    assert "Helm chart to Argo CD" not in output
    assert s.repo.ref(GATED) == tip
