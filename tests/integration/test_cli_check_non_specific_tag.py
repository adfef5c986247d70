"""A plain scalar tagged `!` (YAML's non-specific tag): go-yaml v2 (kubectl, Argo CD's directory
source) keeps its text as a string, kustomize (and so Flux, which builds every path with it) reads
it as it would read it untagged (`! true` is the boolean, `! 0x0` the number 0). Both readers are
the real ones: `kubectl label --local` reads as kubectl applies, `kubectl kustomize` as Flux builds.
trustgate judged kubectl's string, and passed a HelmRelease whose values Flux applies privileged."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from trustgate.cli.main import main

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n"
    "spec:\n  containers: [{name: c, image: x}]\n"
)


def _readers(directory: Path) -> tuple[object, object]:
    """(kubectl's reading, kustomize's reading) of the field `x` of `directory/pod.yaml`."""
    assert KUBECTL is not None
    labelled = subprocess.run(
        [KUBECTL, "label", "--local", "-f", str(directory / "pod.yaml"), "x=y", "-o", "json"],
        capture_output=True,
        check=True,
    )
    build = directory / "flux"  # the kustomization kustomize-controller generates for a plain path
    build.mkdir()
    shutil.copy(directory / "pod.yaml", build / "pod.yaml")
    (build / "kustomization.yaml").write_text("resources: [pod.yaml]\n")
    built = subprocess.run([KUBECTL, "kustomize", str(build)], capture_output=True, check=True)
    shutil.rmtree(build)
    return json.loads(labelled.stdout)["x"], yaml.safe_load(built.stdout)["x"]


@pytest.mark.parametrize(
    "value",
    [
        # kustomize retypes these ...
        *("! true", "! FALSE", "! 0", "! 0x0", "! 010", "! 1_000", "! 1e3", "! ~", "!", "! 2001-12-14"),
        # ... and reads these as the same string as kubectl.
        *("! yes", "! on", "! hello", '! "true"', "! 1:30", "! 1e400"),
    ],
)
def test_a_value_the_readers_type_apart_is_not_evaluated(tmp_path: Path, value: str) -> None:
    (tmp_path / "pod.yaml").write_text(f"{POD}x: {value}\n")
    kubectl, kustomize = _readers(tmp_path)
    apart = kubectl != kustomize

    result = CliRunner().invoke(
        main, ["check", "--no-color", "--no-builtin", "--no-schemas", str(tmp_path)], catch_exceptions=False
    )
    assert result.exit_code == (3 if apart else 0), result.output
    assert ("input/yaml-non-specific-tag" in result.output) is apart
    if apart:
        assert f"{tmp_path}/pod.yaml:6" in result.output


HELM_RELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: web, namespace: shop}
spec:
  interval: 10m
  chart: {spec: {chart: web, sourceRef: {kind: HelmRepository, name: charts}}}
  values:
    securityContext:
      privileged: ! true
"""

POLICY = """\
package main

import rego.v1

deny contains "chart values run a privileged container" if {
    input.kind == "HelmRelease"
    input.spec.values.securityContext.privileged == true
}
"""


def test_a_helmrelease_flux_applies_privileged_is_not_passed(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy/web.yaml").write_text(HELM_RELEASE)
    (tmp_path / "policy.rego").write_text(POLICY)
    result = CliRunner().invoke(
        main,
        [
            "check",
            "--no-color",
            "--no-builtin",
            "-p",
            str(tmp_path / "policy.rego"),
            str(tmp_path / "deploy"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 3, result.output
    assert "input/yaml-non-specific-tag" in result.output and "`! true` at line 9" in result.output

    # Without the tag every reader applies the boolean, and the policy judges it.
    (tmp_path / "deploy/web.yaml").write_text(HELM_RELEASE.replace("! true", "true"))
    result = CliRunner().invoke(
        main,
        [
            "check",
            "--no-color",
            "--no-builtin",
            "-p",
            str(tmp_path / "policy.rego"),
            str(tmp_path / "deploy"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output
