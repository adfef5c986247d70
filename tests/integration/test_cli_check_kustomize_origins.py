"""`trustgate check` on a kustomization names the source file and line of each finding."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from support.serving import serving

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

POLICY = """\
package main
import rego.v1

deny contains {"msg": "latest tag", "rule": "no-latest", "path": ["spec", "containers", i, "image"]} if {
  some i, c in input.spec.containers
  endswith(c.image, ":latest")
}
"""


def test_json_and_text_name_the_base_file_and_line(write: Write, tmp_path: Path) -> None:
    write("base/kustomization.yaml", "resources: [pod.yaml]\n")
    write(
        "base/pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n"
        "    - name: app\n      image: nginx:latest\n",
    )
    write("prod/kustomization.yaml", "namespace: shop\nresources: [../base]\n")
    policy = str(write("policy/main.rego", POLICY))
    args = ["check", "--no-builtin", "-p", policy, str(tmp_path / "prod")]
    result = CliRunner().invoke(main, [*args, "-o", "json"], catch_exceptions=False)
    assert result.exit_code == 1
    (doc,) = json.loads(result.stdout)["results"]
    assert (doc["file"], doc["line"], doc["renderedFrom"]) == (
        str(tmp_path / "base" / "pod.yaml"),
        1,
        str(tmp_path / "prod"),
    )
    (finding,) = doc["findings"]
    assert (finding["rule"], finding["line"]) == ("no-latest", 7)
    text = CliRunner().invoke(main, args, catch_exceptions=False).stdout
    assert f"at {tmp_path / 'base' / 'pod.yaml'}:7" in text


def test_a_kustomization_naming_a_url_is_refused_before_rendering(write: Write, tmp_path: Path) -> None:
    """`check` reads kustomizations with the loader `presync` uses: what kustomize would fetch (a URL,
    a git repository) is refused, so the verdict is one of the files checked and the CI host fetches
    nothing a pull request names."""
    with serving("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: remote}\n") as (base, asked):
        url = f"{base}/remote.yaml"
        write("app/kustomization.yaml", f"resources: [cm.yaml, '{url}']\n")
        write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: local}\n")
        result = CliRunner().invoke(
            main, ["check", str(tmp_path / "app"), "-o", "json"], catch_exceptions=False
        )
    assert asked == []
    assert result.exit_code == 3, result.output
    (doc,) = json.loads(result.stdout)["results"]
    (finding,) = doc["findings"]
    assert finding["rule"] == "input/kustomize-remote"
    assert f"resources entry '{url}'" in finding["message"] and doc["file"].endswith("app/kustomization.yaml")
