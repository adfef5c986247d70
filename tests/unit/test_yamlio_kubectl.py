"""yamlio against kubectl itself: what `kubectl label --local` reads is what policies must see.

kubectl reads YAML with sigs.k8s.io/yaml (go-yaml v2, then a conversion to
JSON); `label --local` does that without a cluster. Skipped where kubectl is
not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from trustgate import yamlio

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

# Bodies of ConfigMaps (`v:` and whatever else a case needs) where readers part ways.
READ = {
    "merge-after-key": "v: {privileged: false, <<: {privileged: true}}",
    "merge-before-key": "v: {<<: {privileged: true}, privileged: false}",
    "merge-sequence": "v: {a: 0, <<: [{a: 1, b: 1}, {a: 2, c: 2}], c: 9}",
    "merge-twice": "v: {<<: {a: 1}, <<: {a: 2}}",
    "merge-alias": "x: &p {privileged: true}\nv:\n  privileged: false\n  <<: *p",
    "dot-floats": "v: [.0_1, .5_0, .1_0e1_0, ._1, .1_, .1__0, .1_e1, !!float .0_1]",
    "overflow": "v: [1e400, .1e400]",
    "non-specific-tag": "v: [! 010, ! 1, ! true, ! null, ! .5, ! 0x10, !!str 1]\n! 010: k",
    "keys": (
        "v: {1: a, on: b, 1e3: c, 1.5: d, 0x10: e, 0.1: f, 1e20: g, 1.5e-7: h, 16777217.0: i,"
        " 3.14159265358979: j, .nan: k, .inf: l, -.inf: m, -0.0: z, -0: zero, !!binary aGk=: p,"
        " 9223372036854775807: q, 2001-12-14: r}"
    ),
    "binary": "v: [!!binary aGVsbG8=, !!binary 4oI=, !!binary 7aCA, !!binary PD4m, !!binary '']\n"
    "w: !!binary |\n  aGVs\n  bG8=",
    # a `!`-tagged `<<` key still merges; `!<!>` and `!` before a NEL are the non-specific tag too
    "non-specific-merge": "v: {allowPrivilegeEscalation: false, ! <<: {privileged: true}}",
    "verbatim-non-specific": (
        'v: [!<!> 010, !<!> true, !<!> "Y", &a ! 011, *a]\nw: {!<!> "Y": x}\nz: !\u0085 010'
    ),
    "leading-zeros": f"v: [0x{'0' * 70}1, 0b{'0' * 70}1, {'0' * 70}10, -0x{'0' * 70}2]",
    "bang-in-text": "v: |\n  if ! test -f x; then echo hi! ; fi\nw: [ ! a, b]",
}
REFUSED = {
    "nan": "v: .nan",
    "inf": "v: [1, -.inf]",
    "binary-unpadded": "v: !!binary aGVsbG8",
    "binary-space": "v: !!binary aGVs bG8=",
    "null-key": "v: {~: a}",
    "uint64-key": "v: {18446744073709551615: a}",
}


def _manifest(name: str, body: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{body}\n"


def _kubectl(path: Path) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "label", "--local", "-f", str(path), "checked=yes", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _ours(text: str) -> Any:
    (doc,) = yamlio.parse_stream(text.encode(), max_nodes=10_000)
    return doc.value if isinstance(doc, yamlio.ParsedDocument) else doc


def test_yamlio_reads_what_kubectl_reads(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text("---\n".join(_manifest(name, body) for name, body in READ.items()))
    done = _kubectl(path)
    assert done.returncode == 0, done.stderr
    theirs = {}
    decoder, at = json.JSONDecoder(), 0
    while done.stdout[at:].strip():  # one JSON object per document, one after the other
        item, end = decoder.raw_decode(done.stdout, at)
        at = end + len(done.stdout[end:]) - len(done.stdout[end:].lstrip())
        del item["metadata"]["labels"]
        theirs[item["metadata"]["name"]] = item
    assert len(theirs) == len(READ)
    for name, body in READ.items():
        assert _typed(_ours(_manifest(name, body))) == _typed(theirs[name]), name


def _typed(value: Any) -> Any:
    """`value` with each scalar's kind beside it: True must not equal 1, nor "1" equal 1.

    A whole float and an int are the same number (JSON does not tell them apart).
    """
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, float) and value.is_integer():
        return ("number", int(value))
    return ("number", value)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_yamlio_refuses_what_kubectl_refuses(tmp_path: Path, name: str) -> None:
    text = _manifest(name, REFUSED[name])
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    done = _kubectl(path)
    assert done.returncode != 0 and "error" in done.stderr, done.stdout
    problem = _ours(text)
    assert isinstance(problem, yamlio.YamlProblem) and problem.line == 5, problem
