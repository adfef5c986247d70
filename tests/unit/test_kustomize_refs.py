"""A kustomization is rendered only from local files: what kustomize would fetch is refused first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from trustgate.config import Limits
from trustgate.manifests import kustomize_refs, loader

Write = Callable[[str, str], Path]
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1'}\n"


@pytest.mark.parametrize(
    ("kustomization", "field", "entry"),
    [
        (
            "resources: [cm.yaml, 'https://example.com/pod.yaml']\n",
            "resources",
            "https://example.com/pod.yaml",
        ),
        (
            "resources: ['github.com/acme/fleet//base?ref=v1']\n",
            "resources",
            "github.com/acme/fleet//base?ref=v1",
        ),
        ("bases: ['git@github.com:acme/fleet.git/base']\n", "bases", "git@github.com:acme/fleet.git/base"),
        ("components: ['https://example.com/c']\n", "components", "https://example.com/c"),
        ("resources: [cm.yaml]\npatches: [{path: 'http://example.com/p.yaml'}]\n", "patches[0].path", None),
        ("resources: [cm.yaml]\npatchesStrategicMerge: ['https://example.com/p.yaml']\n", None, None),
        ("resources: [cm.yaml]\npatchesJson6902: [{path: 'https://example.com/p.json'}]\n", None, None),
        (
            "configMapGenerator: [{name: x, files: ['k=https://example.com/f']}]\n",
            "configMapGenerator[0].files",
            None,
        ),
        (
            "secretGenerator: [{name: x, envs: ['https://example.com/e.env']}]\n",
            "secretGenerator[0].envs",
            None,
        ),
        (
            "configMapGenerator: [{name: x, env: 'https://example.com/e.env'}]\n",
            "configMapGenerator[0].env",
            None,
        ),
        ("helmCharts: [{name: x, repo: 'https://charts.example.com'}]\n", "helmCharts[0].repo", None),
        ("resources: [cm.yaml]\nreplacements: [{path: 'https://example.com/r.yaml'}]\n", None, None),
        ("resources: [cm.yaml]\ncrds: ['https://example.com/crd.json']\n", "crds", None),
        ("resources: [cm.yaml]\nconfigurations: ['https://example.com/c.yaml']\n", "configurations", None),
        ("resources: [cm.yaml]\ntransformers: ['https://example.com/t.yaml']\n", "transformers", None),
        ("resources: [cm.yaml]\nopenapi: {path: 'https://example.com/s.json'}\n", "openapi.path", None),
        ("resources: [missing.yaml]\n", "resources", "missing.yaml"),
        ("resources: ['example.com/acme/fleet']\n", "resources", "example.com/acme/fleet"),
        # kustomize matches field names as Go's JSON does: whatever their case.
        ("Resources: ['https://example.com/pod.yaml']\n", "resources", "https://example.com/pod.yaml"),
        ("re\u017fources: ['https://example.com/pod.yaml']\n", "resources", None),
        ("resources: [cm.yaml]\nPatches: [{Path: 'https://example.com/p.yaml'}]\n", "patches[0].path", None),
        # A line break at the end does not make a URL an inline patch.
        ('resources: [cm.yaml]\npatchesStrategicMerge: ["https://example.com/p.yaml\\n"]\n', None, None),
        ("resources: [/etc/passwd]\n", "resources", "/etc/passwd"),
    ],
)
def test_what_kustomize_would_fetch_is_refused_before_rendering(
    write: Write, tmp_path: Path, kustomization: str, field: str | None, entry: str | None
) -> None:
    write("app/cm.yaml", CM)
    write("app/kustomization.yaml", kustomization)
    (problem,) = kustomize_refs.problems(str(tmp_path / "app"))
    assert problem.rule == "input/kustomize-remote"
    assert problem.source.file == str(tmp_path / "app" / "kustomization.yaml")
    if field:
        assert f": {field} entry " in problem.message, problem.message
    if entry:
        assert repr(entry) in problem.message


def test_a_base_is_walked_and_local_entries_pass(write: Write, tmp_path: Path) -> None:
    write("base/cm.yaml", CM)
    write("base/p.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {b: '2'}\n")
    write("base/f.txt", "x")
    write(
        "base/kustomization.yaml",
        "resources: [cm.yaml]\npatches: [{path: p.yaml}, {patch: '[]', target: {kind: ConfigMap}}]\n"
        "configMapGenerator: [{name: g, files: [k=f.txt, f.txt]}]\n"
        "patchesStrategicMerge:\n- |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: settings}\n",
    )
    write("prod/kustomization.yaml", "resources: [../base]\n")
    assert kustomize_refs.problems(str(tmp_path / "prod")) == []
    # A remote in the base is found from the overlay.
    write("base/kustomization.yaml", "resources: [cm.yaml, 'https://example.com/x.yaml']\n")
    (problem,) = kustomize_refs.problems(str(tmp_path / "prod"))
    assert problem.source.file == str(tmp_path / "base" / "kustomization.yaml")
    # Given a root (pre-sync's export), a base outside it is refused too.
    write("base/kustomization.yaml", "resources: [cm.yaml]\n")
    assert kustomize_refs.problems(str(tmp_path / "prod"), root=str(tmp_path)) == []
    (outside,) = kustomize_refs.problems(str(tmp_path / "prod"), root=str(tmp_path / "prod"))
    assert "'../base' is outside the checked paths" in outside.message


def test_the_loader_refuses_without_running_kustomize(write: Write, tmp_path: Path) -> None:
    write("app/kustomization.yaml", "resources: ['http://127.0.0.1:9/never.yaml']\n")
    documents, problems = loader.read_unit(loader.Unit(str(tmp_path / "app"), "kustomize"), Limits())
    assert documents == [] and [p.rule for p in problems] == ["input/kustomize-remote"]


def test_a_kustomization_that_cannot_be_read_is_not_rendered(write: Write, tmp_path: Path) -> None:
    """What kustomize would read is then unknown: it may name a remote."""
    write("app/kustomization.yaml", "resources: [cm.yaml\n")
    (problem,) = kustomize_refs.problems(str(tmp_path / "app"))
    assert "is not YAML trustgate can read" in problem.message
    write("app/kustomization.yaml", "- resources\n")
    (problem,) = kustomize_refs.problems(str(tmp_path / "app"))
    assert "is not a mapping" in problem.message
    write("app/kustomization.yaml", "")
    assert kustomize_refs.problems(str(tmp_path / "app")) == []


@pytest.mark.parametrize("field", ["resources", "crds", "components"])
def test_a_nul_in_an_entry_is_a_problem_not_a_crash(write: Write, tmp_path: Path, field: str) -> None:
    """`os.path.realpath` raises ValueError on a NUL: the entry is refused, naming file, field, entry."""
    write("app/cm.yaml", CM)
    write("app/kustomization.yaml", f'resources: [cm.yaml]\n{field}: ["a\\0b"]\n')
    (problem,) = kustomize_refs.problems(str(tmp_path / "app"), root=str(tmp_path))
    assert problem.rule == "input/kustomize-remote"
    assert problem.source.file == str(tmp_path / "app" / "kustomization.yaml")
    assert f": {field} entry 'a\\x00b' " in problem.message, problem.message


@pytest.mark.parametrize(
    ("entry", "local"),
    [
        # `Load` fetches what `url.Parse` gives an http(s) scheme before it looks for a file ...
        ("http://127.0.0.1:9/x.yaml", "http:/127.0.0.1:9/x.yaml"),
        ("HTTPS://example.com/x.yaml", "HTTPS:/example.com/x.yaml"),
        # ... and `New` clones what `NewRepoSpecFromURL` parses before it looks for a directory.
        ("github.com/o/r", "github.com/o/r/kustomization.yaml"),
        ("GitHub.com/o/r/base", "GitHub.com/o/r/base/kustomization.yaml"),
        ("git@127.0.0.1:o/r", "git@127.0.0.1:o/r/kustomization.yaml"),
        ("file:///srv/repo", "file:/srv/repo/kustomization.yaml"),
        ("git::https://example.com/o/r", "git::https:/example.com/o/r/kustomization.yaml"),
        ("gh:o/r", "gh:o/r/kustomization.yaml"),
        # Older kustomize (go-getter) and its markers: refused whatever version renders.
        ("gitlab.com/o/r", "gitlab.com/o/r/kustomization.yaml"),
        ("o/_git/r", "o/_git/r/kustomization.yaml"),
        ("base//sub", "base/sub/kustomization.yaml"),
        ("base?ref=v1", "base?ref=v1/kustomization.yaml"),
    ],
)
def test_a_remote_is_refused_even_where_a_local_path_of_that_name_exists(
    write: Write, tmp_path: Path, entry: str, local: str
) -> None:
    """kustomize decides remote before local: a committed file or directory spelled like a URL or a
    repository does not make the entry local (kustomize would fetch it all the same)."""
    write(
        f"app/{local}", CM if local.endswith(".yaml") and "kustomization" not in local else "resources: []\n"
    )
    write("app/kustomization.yaml", f"resources: ['{entry}']\n")
    assert (tmp_path / "app" / local).exists()
    (problem,) = kustomize_refs.problems(str(tmp_path / "app"), root=str(tmp_path))
    assert problem.rule == "input/kustomize-remote"
    assert f"resources entry {entry!r} is a remote" in problem.message, problem.message
    assert "even where a local file or directory of that name exists" in problem.message


def test_local_names_that_only_resemble_remotes_pass(write: Write, tmp_path: Path) -> None:
    write("app/github.com.yaml", CM)
    write("app/repo.git/base/kustomization.yaml", "resources: []\n")
    write("app/kustomization.yaml", "resources: [github.com.yaml, repo.git/base]\n")
    assert kustomize_refs.problems(str(tmp_path / "app"), root=str(tmp_path)) == []


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("kustomization", "field"),
    [
        (f"resources:\n- cm.yaml\n- !!binary {_b64('http://127.0.0.1:9/x.yaml')}\n", "resources"),
        (f"? !!binary {_b64('resources')}\n: ['http://127.0.0.1:9/x.yaml']\n", "resources"),
        (
            f"resources: [cm.yaml]\npatches:\n- path: !!binary {_b64('http://127.0.0.1:9/p.yaml')}\n",
            "patches[0].path",
        ),
    ],
)
def test_a_binary_key_or_value_is_read_as_the_text_it_encodes(
    write: Write, tmp_path: Path, kustomization: str, field: str
) -> None:
    """Go's YAML (and so kustomize) reads a !!binary as the text it encodes, which kustomize fetches:
    so does trustgate, and the remote is refused."""
    write("app/cm.yaml", CM)
    write("app/kustomization.yaml", kustomization)
    (problem,) = kustomize_refs.problems(str(tmp_path / "app"), root=str(tmp_path))
    assert problem.rule == "input/kustomize-remote"
    assert f"{field} entry 'http://127.0.0.1:9/" in problem.message, problem.message
    write("app/kustomization.yaml", f"resources: [cm.yaml]\ncommonLabels: {{a: !!binary {_b64('b')}}}\n")
    assert kustomize_refs.problems(str(tmp_path / "app"), root=str(tmp_path)) == []


_URL = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("files", "field"),
    [
        (
            {
                "kustomization.yaml": "generators: [gen.yaml]\n",
                "gen.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: g}\n"
                f"files: ['k={_URL}/f.yaml']\n",
            },
            "generators['gen.yaml'].files",
        ),
        (
            {
                "kustomization.yaml": "generators: [gen.yaml]\n",
                "gen.yaml": "apiVersion: builtin\nkind: SecretGenerator\nmetadata: {name: g}\n"
                f"envs: ['{_URL}/e.env']\n",
            },
            "generators['gen.yaml'].envs",
        ),
        (
            {
                "kustomization.yaml": "resources: [cm.yaml]\ntransformers:\n- |\n  apiVersion: builtin\n"
                f"  kind: PatchTransformer\n  metadata: {{name: p}}\n  path: {_URL}/p.yaml\n",
            },
            "transformers.path",
        ),
        (
            {
                "kustomization.yaml": "resources: [cm.yaml]\ntransformers: [t.yaml]\n",
                "t.yaml": "apiVersion: builtin\nkind: PatchStrategicMergeTransformer\nmetadata: {name: p}\n"
                f"paths: ['{_URL}/p.yaml']\n---\napiVersion: builtin\nkind: ReplacementTransformer\n"
                "metadata: {name: r}\nreplacements: [{path: r.yaml}]\n",
                "r.yaml": "[]\n",
            },
            "transformers['t.yaml'][0].paths",
        ),
        (
            {
                "kustomization.yaml": "resources: [cm.yaml]\ntransformers: [t.yaml]\n",
                "t.yaml": "apiVersion: v1\nkind: List\nitems:\n- apiVersion: builtin\n"
                "  kind: ReplacementTransformer\n  metadata: {name: r}\n"
                f"  replacements: [{{path: '{_URL}/r.yaml'}}]\n",
            },
            "transformers['t.yaml'][1].replacements[0].path",
        ),
        (
            {
                "kustomization.yaml": "resources: [cm.yaml]\nvalidators: [v.yaml]\n",
                "v.yaml": "apiVersion: builtin\nkind: PatchJson6902Transformer\nmetadata: {name: j}\n"
                f"Path: {_URL}/j\n",
            },
            "validators['v.yaml'].path",
        ),
    ],
)
def test_builtin_plugin_configurations_are_looked_inside(
    write: Write, tmp_path: Path, files: dict[str, str], field: str
) -> None:
    """A builtin plugin loads the files its configuration names with the kustomization's loader:
    kustomize fetches a URL there as it does in the kustomization itself."""
    write("app/cm.yaml", CM)
    for name, text in files.items():
        write(f"app/{name}", text)
    problems = kustomize_refs.problems(str(tmp_path / "app"), root=str(tmp_path))
    assert [p.rule for p in problems] == ["input/kustomize-remote"], problems
    assert f": {field} entry " in problems[0].message and "is a remote" in problems[0].message, problems[
        0
    ].message


def test_plugin_configurations_naming_local_files_pass(write: Write, tmp_path: Path) -> None:
    write("app/cm.yaml", CM)
    write("app/p.yaml", CM)
    write("app/f.txt", "x")
    write(
        "app/gen.yaml",
        "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: g}\nfiles: [k=f.txt]\n",
    )
    write(
        "app/kustomization.yaml",
        "resources: [cm.yaml]\ngenerators: [gen.yaml]\ntransformers:\n- |\n  apiVersion: builtin\n"
        "  kind: PatchTransformer\n  metadata: {name: p}\n  path: p.yaml\n",
    )
    assert kustomize_refs.problems(str(tmp_path / "app"), root=str(tmp_path)) == []
    # What a kustomization directory of configurations makes is not known before rendering: refused.
    write("app/gens/kustomization.yaml", "resources: [../gen.yaml]\n")
    write("app/kustomization.yaml", "resources: [cm.yaml]\ngenerators: [gens]\n")
    (problem,) = kustomize_refs.problems(str(tmp_path / "app"), root=str(tmp_path))
    assert "a directory of plugin configurations" in problem.message


@pytest.mark.parametrize("entry", ["2024-01-01", "1:30", "2024-01-01 10:00:00"])
def test_an_entry_is_the_text_kustomize_reads(write: Write, tmp_path: Path, entry: str) -> None:
    """kustomize reads a kustomization through go-yaml v2 into JSON: a date or a base-60 number stays
    the text written (YAML 1.1 typing made them a date or an int, and the entry was dropped, so what
    that directory names went unchecked)."""
    write(f"app/{entry}/kustomization.yaml", "resources: ['https://example.com/x.yaml']\n")
    write("app/kustomization.yaml", f"resources:\n- {entry}\n")
    found = kustomize_refs.problems(str(tmp_path / "app"))
    assert found, entry
    assert all(p.rule == "input/kustomize-remote" for p in found)
    if ":" not in entry:  # `1:30` is refused itself (a colon); the others lead to the remote in them
        (problem,) = found
        assert problem.source.file == str(tmp_path / "app" / entry / "kustomization.yaml")
        assert "'https://example.com/x.yaml' is a remote" in problem.message
    assert (entry, True) in kustomize_refs.local_names(f"resources:\n- {entry}\n".encode()) or ":" in entry


@pytest.mark.parametrize(
    ("kustomization", "shown", "what"),
    [
        ("resources:\n- 12\n", "12", "a number"),
        ("resources:\n- 1.5\n", "1.5", "a number"),
        ("resources:\n- true\n", "True", "a boolean"),
        ("resources:\n- ~\n", "null", "null"),
        ("resources:\n- !!int 7\n", "7", "a number"),
        ("resources:\n- 0o17\n", "15", "a number"),  # go-yaml v2's integer; kustomize fails on it
        ("patches:\n- path: 12\n", "12", "a number"),
        ("configMapGenerator:\n- name: x\n  files: [3]\n", "3", "a number"),
        ("resources:\n- [a.yaml]\n", "['a.yaml']", "a list or a mapping"),
    ],
)
def test_an_entry_that_is_not_text_is_refused(
    write: Write, tmp_path: Path, kustomization: str, shown: str, what: str
) -> None:
    """kustomize fails on it, or (null) reads an empty name: trustgate does not guess, and says what
    to write instead."""
    write("app/kustomization.yaml", kustomization)
    (problem,) = kustomize_refs.problems(str(tmp_path / "app"))
    assert problem.rule == "input/kustomize-remote"
    assert f"entry {shown} is {what}, not the text of a path" in problem.message, problem.message
    assert "quoted string" in problem.hint


def test_a_merge_key_brings_its_fields_as_kustomize_reads_them(write: Write, tmp_path: Path) -> None:
    write(
        "app/kustomization.yaml",
        "helmCharts:\n- name: x\n  valuesInline: &v {resources: ['https://example.com/x.yaml']}\n<<: *v\n",
    )
    problems = kustomize_refs.problems(str(tmp_path / "app"))
    assert any("resources entry 'https://example.com/x.yaml' is a remote" in p.message for p in problems)


def test_a_kustomization_file_of_several_documents_is_refused(write: Write, tmp_path: Path) -> None:
    write("app/cm.yaml", CM)
    write("app/kustomization.yaml", "resources: [cm.yaml]\n---\nresources: ['https://example.com/x']\n")
    (problem,) = kustomize_refs.problems(str(tmp_path / "app"))
    assert "holds 2 YAML documents" in problem.message and "keep one" in problem.message


@pytest.mark.parametrize("entry", ["git@example.com/org/repo", "GIT@example.com/org/repo", "me@host/o/r"])
def test_a_git_at_address_is_a_remote_even_without_a_colon(write: Write, tmp_path: Path, entry: str) -> None:
    """kustomize takes a `git@` prefix for a host (`git@host/org/repo`) and clones it."""
    write(f"app/{entry}/kustomization.yaml", "resources: []\n")
    write("app/kustomization.yaml", f"resources: ['{entry}']\n")
    (problem,) = kustomize_refs.problems(str(tmp_path / "app"))
    assert f"resources entry {entry!r} is a remote" in problem.message
    assert "user@host" in problem.message
    assert kustomize_refs.local_names(f"resources: ['{entry}']\n".encode()) == []


def test_reads_names_what_a_rendering_reads(write: Write, tmp_path: Path) -> None:
    write("base/kustomization.yaml", "resources: [cm.yaml]\nconfigMapGenerator: [{name: g, envs: [e.env]}]\n")
    write("base/cm.yaml", CM)
    write("base/e.env", "A=1\n")
    write("base/unused.yaml", CM)
    write(
        "app/kustomization.yaml", "resources: [../base]\npatches: [{path: p.yaml}]\ntransformers: [t.yaml]\n"
    )
    write("app/p.yaml", CM)
    write("app/t.yaml", "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: t}\npath: q.yaml\n")
    write("app/q.yaml", CM)
    read = kustomize_refs.reads(str(tmp_path / "app"))
    for name in ("app", "app/kustomization.yaml", "app/p.yaml", "app/t.yaml", "app/q.yaml", "base"):
        assert str(tmp_path / name) in read, name
    for name in ("base/kustomization.yaml", "base/cm.yaml", "base/e.env"):
        assert str(tmp_path / name) in read, name
    assert str(tmp_path / "base" / "unused.yaml") not in read
