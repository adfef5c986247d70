"""A `<<` merge that sets a key the mapping wrote before it: kubectl and Argo CD (go-yaml v2) apply
the merged value, kustomize (and so Flux, which builds every path with it, generating a
kustomization where there is none) the written one. Both readers are the real ones: `kubectl label
--local` reads as kubectl applies, `kubectl kustomize` as Flux builds. trustgate judged the file as
kubectl reads it, and passed a Pod that Flux applies privileged."""

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

# Passes the bundled policies as kubectl reads it; Flux applies it privileged.
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: web
      image: nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
      resources: {limits: {memory: 64Mi, cpu: 100m}}
      livenessProbe: {tcpSocket: {port: 80}}
      readinessProbe: {tcpSocket: {port: 80}}
      securityContext:
        privileged: true
        <<: {privileged: false, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""


def _privileged(manifest: dict[str, object]) -> object:
    return manifest["spec"]["containers"][0]["securityContext"].get("privileged")  # type: ignore[index]


def _readers(directory: Path) -> tuple[object, object]:
    """(kubectl's reading, kustomize's reading) of `directory/pod.yaml`'s `privileged`."""
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
    return _privileged(json.loads(labelled.stdout)), _privileged(yaml.safe_load(built.stdout))


@pytest.mark.parametrize(("written", "merged"), [("true", "false"), ("false", "true")])
def test_a_merge_overriding_a_written_key_is_not_evaluated(tmp_path: Path, written: str, merged: str) -> None:
    pod = POD.replace("privileged: true", f"privileged: {written}").replace(
        "{privileged: false,", f"{{privileged: {merged},"
    )
    (tmp_path / "pod.yaml").write_text(pod)
    # The readers part ways, whichever the order: neither reading may be judged alone.
    assert _readers(tmp_path) == (merged == "true", written == "true")

    result = CliRunner().invoke(main, ["check", "--no-color", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 3, result.output
    assert "input/yaml-merge-override" in result.output
    assert f"{tmp_path}/pod.yaml:14" in result.output
    assert (
        "key 'privileged' is written at line 13 and set again by the `<<` merge at line 14" in result.output
    )


def test_a_key_written_after_the_merge_is_read_alike_and_judged(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(
        POD.replace(
            "        privileged: true\n        <<: {privileged: false,",
            "        <<: {privileged: false,",
        ).replace(
            "capabilities: {drop: [ALL]}}\n", "capabilities: {drop: [ALL]}}\n        privileged: true\n"
        )
    )
    assert _readers(tmp_path) == (True, True)

    result = CliRunner().invoke(main, ["check", "--no-color", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "pss-baseline-privileged" in result.output
    assert "input/yaml-merge-override" not in result.output


# A merge key need not be written `<<:`: a comment may follow it, and a tagged quoted scalar whose
# value is `<<` merges in go-yaml v2 (kubectl) whatever its escapes or line folds.
@pytest.mark.parametrize(
    "spelling",
    [
        "? << # defaults\n        :",
        '!!merge "<<":',
        "! '<<':",
        '!!merge "\\x3c\\x3c":',
        '? !<tag:yaml.org,2002:merge> "<\\\n          <"\n        :',
    ],
    ids=["comment", "merge-tag-quoted", "non-specific-quoted", "escaped", "verbatim-folded"],
)
def test_a_merge_key_however_spelt_is_found(tmp_path: Path, spelling: str) -> None:
    (tmp_path / "pod.yaml").write_text(POD.replace("<<:", spelling))
    kubectl, kustomize = _readers(tmp_path)
    assert kubectl is False and kustomize is True

    result = CliRunner().invoke(main, ["check", "--no-color", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 3, result.output
    assert "input/yaml-merge-override" in result.output
