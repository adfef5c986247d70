from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from trustgate.config import Limits
from trustgate.errors import InputError
from trustgate.manifests import loader

LIMITS = Limits()
Write = Callable[[str, str], Path]


def read(path: Path, limits: Limits = LIMITS) -> tuple[list, list]:
    return loader.read_unit(loader.Unit(str(path), "file"), limits)


def test_plan_walks_directories_in_order_and_skips_hidden_and_other_files(
    write: Write, tmp_path: Path
) -> None:
    write("b/two.yaml", "kind: A\n")
    write("a/one.yml", "kind: A\n")
    write("a/data.json", "{}\n")
    write("a/README.md", "# not a manifest\n")
    write(".git/config.yaml", "kind: A\n")
    units = loader.plan([str(tmp_path)])
    assert [Path(u.path).relative_to(tmp_path).as_posix() for u in units] == [
        "a/data.json",
        "a/one.yml",
        "b/two.yaml",
    ]


def test_a_kustomization_directory_is_one_unit(write: Write, tmp_path: Path) -> None:
    write("app/kustomization.yaml", "resources: [cm.yaml]\n")
    write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    units = loader.plan([str(tmp_path)])
    assert [(u.kind, u.path) for u in units] == [("kustomize", str(tmp_path / "app"))]


def test_unit_paths_are_written_as_pathlib_writes_them(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk builds paths from strings; they stay what `Path` made of them before."""
    write("top.yaml", "kind: A\n")
    write("apps/web/deploy.yaml", "kind: A\n")
    write("apps/kust/kustomization.yml", "resources: []\n")
    monkeypatch.chdir(tmp_path)
    expected = [("apps/kust", "kustomize"), ("apps/web/deploy.yaml", "file"), ("./top.yaml", "file")]
    assert [(u.path, u.kind) for u in loader.plan(["."])] == expected  # scandir(".") adds `./` on top only
    assert [(u.path, u.kind) for u in loader.plan(["./"])] == expected
    assert [u.path for u in loader.plan(["apps/"])] == ["apps/kust", "apps/web/deploy.yaml"]
    assert [u.path for u in loader.plan([f"{tmp_path}//apps"])] == [
        f"{tmp_path}/apps/kust",
        f"{tmp_path}/apps/web/deploy.yaml",
    ]


def test_a_kustomization_is_a_file_of_that_exact_name(write: Write, tmp_path: Path) -> None:
    write("a/kustomization.yaml/x.yaml", "kind: A\n")  # a directory of that name: walked
    write("b/real.yaml", "resources: []\n")
    (tmp_path / "b" / "Kustomization").symlink_to(tmp_path / "b" / "real.yaml")  # a link to a file
    write("c/Kustomization.yaml", "resources: []\n")  # not one (on a case-sensitive file system)
    units = loader.plan([str(tmp_path)])
    case_blind = (tmp_path / "c" / "kustomization.yaml").exists()
    assert [(Path(u.path).relative_to(tmp_path).as_posix(), u.kind) for u in units] == [
        ("a/kustomization.yaml/x.yaml", "file"),
        ("b", "kustomize"),
        *([("c", "kustomize")] if case_blind else [("c/Kustomization.yaml", "file")]),
    ]


POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}]}\n"


def _units(paths: list[str], tmp_path: Path, **kwargs: object) -> list[tuple[str, str]]:
    return [
        (Path(u.path).relative_to(tmp_path).as_posix(), u.kind)
        for u in loader.plan(paths, **kwargs)  # type: ignore[arg-type]
    ]


def test_below_a_kustomization_what_it_does_not_render_is_judged_too(write: Write, tmp_path: Path) -> None:
    """`check DIR`: a kustomization at the top renders what it names; a kustomization below that it
    does not include is a unit of its own, and a manifest nothing renders is judged as a file. What a
    rendering reads (a resource, a patch, a generator file, a base it includes) is not judged again."""
    write("kustomization.yaml", "resources: [ns.yaml, apps/shared]\npatches: [{path: patch.yaml}]\n")
    write("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    write("patch.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {a: b}}\n")
    write("apps/shared/kustomization.yaml", "resources: [cm.yaml, ../base]\n")
    write("apps/shared/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    write("apps/shared/stray.yaml", POD)  # beside a kustomization that does not read it: never applied raw
    write("apps/base/kustomization.yaml", "configMapGenerator: [{name: g, files: [data.yaml]}]\n")
    write("apps/base/data.yaml", "a: b\n")
    write("apps/prod/kustomization.yaml", "resources: [pod.yaml]\n")  # included by nothing
    write("apps/prod/pod.yaml", POD)
    write("loose/priv.yaml", POD)
    root = str(tmp_path)
    skipped = loader.Skipped()
    assert _units([root], tmp_path, unreferenced=True, skipped=skipped) == [
        (".", "kustomize"),
        ("apps/prod", "kustomize"),
        ("loose/priv.yaml", "file"),
    ]
    assert skipped.beside == {str(tmp_path / "apps/shared"): [str(tmp_path / "apps/shared/stray.yaml")]}
    # Without `unreferenced` (presync: what a reconciler applies of a path), as before.
    assert _units([root], tmp_path) == [(".", "kustomize")]


def test_what_a_rendering_reads_is_told_by_what_kustomize_reads(write: Write, tmp_path: Path) -> None:
    """A field written twice in two cases: Go's JSON decoder keeps the greatest key (`resources` over
    `Resources`), so the file only `Resources:` names is not rendered; beside the kustomization it is
    never applied raw either, so it is named in a note rather than judged. In a subdirectory it is
    judged."""
    write("kustomization.yaml", "Resources: [a.yaml]\nresources: [b.yaml, sub/b.yaml]\n")
    write("a.yaml", POD)
    write("b.yaml", POD)
    write("c.yml", POD)
    write("sub/a.yaml", POD)
    write("sub/b.yaml", POD)
    skipped = loader.Skipped()
    assert _units([str(tmp_path)], tmp_path, unreferenced=True, skipped=skipped) == [
        (".", "kustomize"),
        ("sub/a.yaml", "file"),
    ]
    assert skipped.beside == {str(tmp_path): [str(tmp_path / "a.yaml"), str(tmp_path / "c.yml")]}


def test_a_nested_kustomization_a_remote_hides_is_its_own_unit(write: Write, tmp_path: Path) -> None:
    """An entry refused as a remote (`1:30`) renders nothing: the directory of that name is rendered
    (and refused, or judged) on its own."""
    write("kustomization.yaml", "resources:\n- '1:30'\n")
    write("1:30/kustomization.yaml", "resources: [pod.yaml]\n")
    write("1:30/pod.yaml", POD)
    assert _units([str(tmp_path)], tmp_path, unreferenced=True) == [(".", "kustomize"), ("1:30", "kustomize")]


def test_a_hidden_file_a_kustomization_reads_is_not_named_as_skipped(write: Write, tmp_path: Path) -> None:
    write("app/kustomization.yaml", "resources: [.pod.yaml]\n")
    write("app/.pod.yaml", POD)
    write("app/.other.yaml", POD)
    skipped = loader.Skipped()
    assert _units([str(tmp_path)], tmp_path, unreferenced=True, skipped=skipped) == [("app", "kustomize")]
    assert skipped.hidden == [(str(tmp_path / "app" / ".other.yaml"), 1)]


@pytest.mark.parametrize("name", ["kustomization.yaml", "kustomization.yml", "Kustomization"])
def test_a_named_kustomization_file_renders_its_directory(write: Write, tmp_path: Path, name: str) -> None:
    """As `kubectl kustomize DIR`: the kustomization file itself is no object to judge."""
    write(f"app/{name}", "resources: [pod.yaml]\n")
    write("app/pod.yaml", POD)
    assert _units([str(tmp_path / "app" / name)], tmp_path) == [("app", "kustomize")]
    assert _units([str(tmp_path / "app" / "pod.yaml")], tmp_path) == [("app/pod.yaml", "file")]


def test_a_kustomization_in_a_directory_named_like_an_option_renders(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kubectl kustomize -h` prints kubectl's help: the directory is passed after `--`."""
    write("-h/kustomization.yaml", "resources: [pod.yaml]\n")
    write("-h/pod.yaml", POD)
    monkeypatch.chdir(tmp_path)
    (unit,) = loader.plan(["."])
    assert (unit.path, unit.kind) == ("-h", "kustomize")
    docs, problems = loader.read_unit(unit, LIMITS)
    assert problems == [] and [d.kind for d in docs] == ["Pod"]
    assert docs[0].source.file == "-h/pod.yaml"  # the origin rendering found it too


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        loader.plan([str(tmp_path / "nope")])
    assert "nope" in err.value.diagnostics()


def test_stdin_unit_carries_its_bytes() -> None:
    (unit,) = loader.plan(["-"], stdin=b"kind: A\n")
    assert unit.kind == "stdin" and unit.data == b"kind: A\n"


def test_multi_document_file_with_every_kind_of_bad_document(write: Write) -> None:
    path = write(
        "mixed.yaml",
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: good}
        ---
        - a list
        ---
        just a string
        ---
        metadata: {name: no-kind}
        ---
        a: [broken
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: also-good}
        """,
    )
    docs, problems = read(path)
    assert [d.name for d in docs] == ["good", "also-good"]
    assert [d.source.line for d in docs] == [1, 13]
    assert [(p.rule, p.source.line) for p in problems] == [
        ("input/not-an-object", 5),
        ("input/not-an-object", 7),
        ("input/not-a-kubernetes-object", 9),
        ("input/invalid-yaml", 12),
    ]
    assert "missing apiVersion and kind" in problems[2].message


def test_kind_list_is_unpacked_with_item_lines(write: Write) -> None:
    path = write(
        "list.yaml",
        """\
        apiVersion: v1
        kind: List
        items:
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: one}
          - apiVersion: v1
            kind: Secret
            metadata: {name: two}
        """,
    )
    docs, problems = read(path)
    assert problems == []
    assert [(d.kind, d.name, d.source.line) for d in docs] == [("ConfigMap", "one", 4), ("Secret", "two", 7)]


@pytest.mark.parametrize(
    "outer",
    [
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",  # any kind, not only *List
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        "note: plain data whose items are objects\n",
    ],
)
def test_any_object_with_an_items_list_is_unpacked_as_kubectl_does(write: Write, outer: str) -> None:
    """kubectl applies the items of any object with an `items` list: they cannot hide from the checks.

    The object itself is read too: other clients (a GitOps controller, the API) take it as the
    object it says it is, and conftest evaluates the whole document.
    """
    path = write(
        "hidden.yaml",
        outer
        + "items:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: p}\n"
        + "    spec: {containers: [{name: c, image: x, securityContext: {privileged: true}}]}\n",
    )
    docs, problems = loader.read_unit(loader.Unit(str(path), "file"), LIMITS, any_data=True)
    assert problems == []
    assert [(d.kind, d.name, d.list_role) for d in docs if d.kind == "Pod"] == [("Pod", "p", "item")]
    (whole,) = [d for d in docs if d.kind != "Pod"]
    assert whole.list_role == "" and "items" in whole.obj and whole.kubernetes == ("apiVersion" in outer)


def test_a_pod_with_a_stray_items_key_is_read_as_a_pod(write: Write) -> None:
    """Before, any object with an `items` list was replaced by its items: this Pod gave 0 documents."""
    path = write(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {containers: [{name: c, image: x, securityContext: {privileged: true}}]}\nitems: []\n",
    )
    docs, problems = read(path)
    assert problems == []
    assert [(d.kind, d.name, d.obj["spec"]["containers"][0]["securityContext"]) for d in docs] == [
        ("Pod", "p", {"privileged": True})
    ]


@pytest.mark.parametrize("kind", ["List", "PodList"])
def test_a_kubernetes_list_gives_its_items_and_the_whole_list_for_the_users_policies(
    write: Write, kind: str
) -> None:
    path = write(
        "list.yaml",
        f"apiVersion: v1\nkind: {kind}\nitems:\n"
        "  - apiVersion: v1\n    kind: Pod\n    metadata: {name: p}\n",
    )
    docs, problems = loader.read_unit(loader.Unit(str(path), "file"), LIMITS, any_data=True)
    assert problems == []
    assert [(d.kind, d.kubernetes, d.list_role) for d in docs] == [
        ("Pod", True, "item"),
        (kind, False, "list"),
    ]
    docs, _ = read(path)  # without data documents (CRDs, pre-sync): the items only
    assert [d.kind for d in docs] == ["Pod"]


def test_a_data_document_with_items_is_read_whole_too(write: Write) -> None:
    path = write(
        "data.yaml", "bad: true\nitems:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: a}\n"
    )
    docs, problems = loader.read_unit(loader.Unit(str(path), "file"), LIMITS, any_data=True)
    assert problems == []
    assert [d.obj.get("bad") for d in docs] == [None, True]


def test_a_data_document_with_an_items_list_of_plain_values_is_not_a_list(write: Write) -> None:
    path = write("data.yaml", "items: [1, 2]\n")
    docs, problems = loader.read_unit(loader.Unit(str(path), "file"), LIMITS, any_data=True)
    assert problems == [] and [d.obj for d in docs] == [{"items": [1, 2]}]


def test_json_file_and_json_list(write: Write) -> None:
    path = write(
        "objs.json",
        '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Namespace",'
        ' "metadata": {"name": "ns"}}]}',
    )
    docs, problems = read(path)
    assert problems == [] and [d.name for d in docs] == ["ns"]


def test_binary_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "image.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    docs, problems = read(path)
    assert docs == [] and problems[0].rule == "input/binary"


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    _, problems = read(path)
    assert problems[0].rule == "input/encoding" and "line 2" in problems[0].message


def test_file_over_the_size_limit(write: Write) -> None:
    path = write("big.yaml", "a: " + "x" * 200 + "\n")
    _, problems = read(path, Limits(max_file_bytes=100))
    assert problems[0].rule == "input/too-large"
    assert "maxFileBytes" in problems[0].hint


def test_read_file_gives_the_bytes_and_the_size(write: Write, tmp_path: Path) -> None:
    path = write("one.yaml", "a: 1\n")
    assert loader.read_file(path, 100) == (b"a: 1\n", 5)
    assert loader.read_file(path, 5) == (b"a: 1\n", 5)  # exactly the limit is allowed
    assert loader.read_file(path, 4) == (b"", 5)  # over it: only the size, for the message
    _, problems = read(path, Limits(max_file_bytes=4))
    assert problems[0].message == "file is 5 bytes; the limit is 4"
    with pytest.raises(IsADirectoryError):
        loader.read_file(tmp_path, 10**9)


def test_read_file_reads_what_fstat_does_not_size_up_to_the_limit(tmp_path: Path) -> None:
    """A file whose size `fstat` does not know (a FIFO: 0) or that grew is read on to the limit."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n" * 10

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as f:
            f.write(body)  # the reader may stop at the limit and close

    for limit, expected in ((10_000, body), (100, body[:101])):
        feeder = threading.Thread(target=feed)
        feeder.start()
        assert loader.read_file(fifo, limit) == (expected, 0)
        feeder.join(timeout=10)
    feeder = threading.Thread(target=feed)
    feeder.start()
    docs, problems = read(fifo, Limits(max_file_bytes=100))
    feeder.join(timeout=10)
    assert docs == [] and problems[0].rule == "input/too-large"


def test_read_file_reads_on_after_short_reads(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read may return less than asked (network file systems; Linux gives at most ~2 GiB per
    read): the rest is read, never dropped (the documents after a cut would go unchecked)."""
    body = "".join(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n---\n" for i in range(50))
    path = write("many.yaml", body)
    real = os.read
    asked: list[int] = []

    def short(fd: int, n: int) -> bytes:
        asked.append(n)
        return real(fd, min(n, 100))

    monkeypatch.setattr(os, "read", short)
    assert loader.read_file(path, 10**6) == (body.encode(), len(body))
    docs, problems = read(path)
    assert problems == [] and len(docs) == 50
    monkeypatch.setattr(os, "read", real)
    asked.clear()
    monkeypatch.setattr(os, "read", lambda fd, n: asked.append(n) or real(fd, n))
    assert loader.read_file(path, 10**6)[0] == body.encode()
    assert asked == [len(body) + 1]  # a whole file in one read: no second read for the end


def test_too_many_documents(write: Write) -> None:
    path = write("many.yaml", "---\n".join("apiVersion: v1\nkind: ConfigMap\n" for _ in range(5)))
    docs, problems = read(path, Limits(max_documents_per_file=3))
    assert len(docs) == 3 and problems[0].rule == "input/too-many-documents"


def test_unreadable_path_is_reported_not_raised(tmp_path: Path) -> None:
    link = tmp_path / "dangling.yaml"
    os.symlink(tmp_path / "missing-target", link)
    (unit,) = loader.plan([str(link)])
    docs, problems = loader.read_unit(unit, LIMITS)
    assert docs == [] and problems[0].rule == "input/unreadable"


def test_kustomization_is_rendered_with_kubectl(write: Write, tmp_path: Path) -> None:
    write("app/kustomization.yaml", "namespace: shop\nresources: [cm.yaml]\n")
    write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n")
    (unit,) = loader.plan([str(tmp_path / "app")])
    docs, problems = loader.read_unit(unit, LIMITS)
    assert problems == []
    assert [(d.kind, d.namespace, d.name) for d in docs] == [("ConfigMap", "shop", "settings")]
    assert docs[0].source.rendered_from == str(tmp_path / "app")


def test_broken_kustomization_gives_kubectls_reason(write: Write, tmp_path: Path) -> None:
    write("app/kustomization.yaml", "resources: [base]\n")
    write("app/base/README.md", "no kustomization here\n")
    (unit,) = loader.plan([str(tmp_path / "app")])
    docs, problems = loader.read_unit(unit, LIMITS)
    assert docs == []
    assert problems[0].rule == "input/kustomize"
    assert "base" in problems[0].message
    # A name that is no local file is refused before kustomize runs: it would take it for a remote.
    write("app/kustomization.yaml", "resources: [missing.yaml]\n")
    docs, problems = loader.read_unit(unit, LIMITS)
    assert docs == [] and problems[0].rule == "input/kustomize-remote"
    assert "'missing.yaml' is not a file or directory" in problems[0].message


def test_missing_kubectl_is_a_clear_error(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("app/kustomization.yaml", "resources: []\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    (unit,) = loader.plan([str(tmp_path / "app")])
    _, problems = loader.read_unit(unit, LIMITS)
    assert "kubectl is not installed" in problems[0].message


def test_json_findings_still_get_field_lines(write: Write) -> None:
    from trustgate import yamlio

    path = write(
        "obj.json",
        '{\n  "apiVersion": "v1",\n  "kind": "Pod",\n  "spec": {\n    "hostNetwork": true\n  }\n}\n',
    )
    (doc,), _ = read(path)
    assert yamlio.locate(doc.tree, ("spec", "hostNetwork")) == 5


@pytest.mark.parametrize(
    ("relative", "directory", "patterns", "expected"),
    [
        ("chart/Chart.yaml", False, ["Chart.yaml"], True),
        ("a/b/values.yaml", False, ["values.yaml"], True),
        ("chart", True, ["chart/"], True),
        ("chart", False, ["chart/"], False),
        ("apps/web/values.yaml", False, ["apps/*/values.yaml"], True),
        ("values.yaml", False, ["**/values.yaml"], True),
        ("x/templates/d.yaml", False, ["**/templates/**"], True),
        ("app/cassandra.yaml", False, ["/app/cassandra.yaml"], True),
        ("app/pod.yaml", False, ["app/cassandra.yaml", "*.json"], False),
    ],
)
def test_exclusion_globs(relative: str, directory: bool, patterns: list[str], expected: bool) -> None:
    assert (loader.excluded(relative, patterns, directory=directory) is not None) is expected


def test_plan_excludes_relative_to_each_root_and_marks_helm_charts(write: Write, tmp_path: Path) -> None:
    write("repo/app/pod.yaml", "kind: A\n")
    write("repo/app/values.yaml", "a: 1\n")
    write("repo/chart/Chart.yaml", "apiVersion: v2\n")
    write("repo/chart/templates/d.yaml", "kind: A\n")
    units = loader.plan([str(tmp_path / "repo")], exclude=["app/values.yaml", "templates/"])
    names = {Path(u.path).relative_to(tmp_path / "repo").as_posix(): u.chart for u in units}
    assert names == {"app/pod.yaml": None, "chart/Chart.yaml": str(tmp_path / "repo" / "chart")}


def test_plan_tells_what_it_left_out(write: Write, tmp_path: Path) -> None:
    """Hidden files and directories (not `.git`) and what each exclusion matched are told to the
    caller, with the number of files a directory held: a privileged Pod saved as values.yaml or
    under `.secret/` was dropped without a word."""
    write("repo/app/pod.yaml", "kind: A\n")
    write("repo/app/values.yaml", "a: 1\n")
    write("repo/app/charts/a/pod.yaml", "kind: A\n")
    write("repo/app/charts/b.yml", "kind: A\n")
    write("repo/app/charts/README.md", "# not counted\n")
    write("repo/.secret/pod.yaml", "kind: A\n")
    write("repo/.secret/deeper/.cm.json", "{}\n")
    write("repo/.docs/README.md", "# no manifest: not named\n")
    write("repo/.git/config.yaml", "kind: A\n")
    write("repo/.pod.yaml", "kind: A\n")
    repo = tmp_path / "repo"
    skipped = loader.Skipped()
    units = loader.plan([str(repo)], exclude=["values.yaml", "charts"], skipped=skipped)
    assert [Path(u.path).relative_to(repo).as_posix() for u in units] == ["app/pod.yaml"]
    assert skipped.hidden == [(f"{repo}/.pod.yaml", 1), (f"{repo}/.secret/", 2)]
    assert skipped.excluded == {
        "charts": [(f"{repo}/app/charts/", 2)],
        "values.yaml": [(f"{repo}/app/values.yaml", 1)],
    }
    named = loader.Skipped()
    assert loader.plan([str(repo / "app" / "values.yaml")], exclude=["values.yaml"], skipped=named) == []
    assert named.excluded == {"values.yaml": [(str(repo / "app" / "values.yaml"), 1)]}


def test_any_data_keeps_plain_mappings_and_refuses_broken_manifests(write: Write) -> None:
    path = write("mixed.yaml", "on: push\n---\nmetadata: {name: x}\n---\napiVersion: v1\nkind: A\n")
    docs, problems = loader.read_unit(loader.Unit(str(path), "file"), LIMITS, any_data=True)
    assert [(d.kubernetes, d.source.line) for d in docs] == [(False, 1), (True, 5)]
    assert [(p.rule, p.source.line) for p in problems] == [("input/not-a-kubernetes-object", 3)]
    docs, problems = read(path)  # other callers (CRDs, Gatekeeper, pre-sync) see manifests only
    assert [d.kubernetes for d in docs] == [True] and len(problems) == 2
    toml = write("c.toml", "[a]\nb = 1\n")
    docs, _ = loader.read_unit(loader.Unit(str(toml), "file"), LIMITS, any_data=True)
    assert docs[0].obj == {"a": {"b": 1}} and not docs[0].kubernetes


def test_data_documents_get_json_keys_as_conftest_reads_yaml(write: Write) -> None:
    path = write("ci.yaml", "on: push\n2: two\njobs: {}\n")
    docs, _ = loader.read_unit(loader.Unit(str(path), "file"), LIMITS, any_data=True)
    assert docs[0].obj == {"true": "push", "2": "two", "jobs": {}}


@pytest.mark.parametrize(
    ("text", "line", "number"),
    [
        ('{"apiVersion": "v1", "kind": "ConfigMap",\n "data": {"a": NaN}}', 2, "NaN"),
        ('{"apiVersion": "v1",\n\n "kind": "ConfigMap", "v": [1, -Infinity]}', 3, "-Infinity"),
        ('{"apiVersion": "v1", "kind": "ConfigMap",\n "v": 1e400}', 2, "1e400"),
        ('{"apiVersion": "v1", "kind": "ConfigMap",\n "v": -1.5E+999}', 2, "-1.5E+999"),
        # the same text inside a string earlier is no number: the line is the number's
        (
            '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"annotations": {"a": "NaN 1e999"}},\n'
            ' "data": {"b": "x\\"NaN"},\n "v": NaN}',
            3,
            "NaN",
        ),
        ('{"apiVersion": "v1", "kind": "ConfigMap", "note": "1e999",\n "v": 1e999}', 2, "1e999"),
    ],
)
def test_json_nan_and_infinities_are_refused_with_their_line(
    write: Write, text: str, line: int, number: str
) -> None:
    """Python's json module reads them; Go's (kubectl, conftest) does not: never pass them to a policy."""
    docs, problems = read(write("nan.json", text))
    assert docs == []
    (problem,) = problems
    assert problem.rule == "input/invalid-json" and problem.source.line == line
    assert f"{number} is not a JSON number" in problem.message


def test_a_json_integer_too_long_to_read_is_an_input_problem(write: Write) -> None:
    """Python refuses to read an integer of more than 4,300 digits; Go refuses it past float64."""
    docs, problems = read(
        write("long.json", '{"apiVersion": "v1", "kind": "ConfigMap", "v": ' + "1" * 5000 + "}")
    )
    assert docs == []
    (problem,) = problems
    assert problem.rule == "input/invalid-json" and "a number is too long to read" in problem.message


def test_json_with_large_but_finite_numbers_is_read(write: Write) -> None:
    docs, problems = read(write("ok.json", '{"apiVersion": "v1", "kind": "ConfigMap", "v": [1e300, 1.5, 7]}'))
    assert problems == [] and docs[0].obj["v"] == [1e300, 1.5, 7]


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            'E1207 04:57:46.250769   18638 run.go:72] "command failed" err=<\n'
            "\tFound multiple kustomization files under: /x/deploy/app\n >\n",
            "Found multiple kustomization files under: /x/deploy/app",
        ),
        (
            'E1207 04:57:46.250769   18638 run.go:72] "command failed" '
            'err="accumulating resources: \\"x\\""\n',
            'accumulating resources: "x"',
        ),
        ("error: a\nb\nc\nd\n", "a; b; c; d"),
        (
            # A plugin's error quotes its configuration before the reason: the reason is kept.
            'E1207 07:00:32.410837   10248 run.go:72] "command failed" err=<\n'
            "\ttrouble configuring builtin HelmChartInflationGenerator with config: `\n"
            "\tname: foo\n\tversion: 1.0.0\n\t`: must specify --enable-helm\n >\n",
            "trouble configuring builtin HelmChartInflationGenerator with config: `; name: foo; "
            "version: 1.0.0; `: must specify --enable-helm",
        ),
    ],
    ids=["klog-block", "klog-quoted", "plain", "helm"],
)
def test_a_kustomize_failure_shows_kustomizes_own_error(stderr: str, expected: str) -> None:
    assert loader.kustomize_error(stderr) == expected


def test_a_long_kustomize_failure_keeps_its_start_and_its_reason() -> None:
    stderr = "error: accumulating resources: " + "x" * 5000 + ": the reason\n"
    message = loader.kustomize_error(stderr)
    assert message.startswith("accumulating resources: xxx") and message.endswith(": the reason")
    assert " ... " in message and len(message) < 1300


def test_kubebuilder_patches_beside_config_default_are_not_judged(write: Write, tmp_path: Path) -> None:
    """kubebuilder's config/default holds patches its kustomization leaves commented out (a JSON 6902
    list, a partial Deployment): Flux and Argo CD apply that directory only through its
    kustomization, so they are never applied raw; they are named in a note, not judged."""
    write(
        "config/default/kustomization.yaml",
        "resources: [../manager]\npatches: [{path: metrics_patch.yaml}]\n",
    )
    write("config/default/metrics_patch.yaml", "- op: add\n  path: /spec/x\n  value: 1\n")
    write("config/default/cert_metrics_manager_patch.yaml", "- op: add\n  path: /spec/y\n  value: 1\n")
    write(
        "config/default/manager_webhook_patch.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: m}\n",
    )
    write("config/manager/kustomization.yaml", "resources: [manager.yaml]\n")
    write("config/manager/manager.yaml", POD)
    skipped = loader.Skipped()
    assert _units([str(tmp_path / "config")], tmp_path, unreferenced=True, skipped=skipped) == [
        ("config/default", "kustomize"),
        ("config/manager", "kustomize"),  # a sibling: the walk renders it too (as before)
    ]
    assert skipped.beside == {
        str(tmp_path / "config/default"): [
            str(tmp_path / "config/default/cert_metrics_manager_patch.yaml"),
            str(tmp_path / "config/default/manager_webhook_patch.yaml"),
        ]
    }


def test_a_helm_chart_below_a_kustomization_is_noted_not_judged(write: Write, tmp_path: Path) -> None:
    """A directory holding Chart.yaml below a kustomization is a chart (templates, values), rendered by
    helm and not applied as manifests: named in a note; a plain subdirectory is still judged."""
    write("kustomization.yaml", "resources: [deploy/app.yaml]\n")
    write("deploy/app.yaml", POD)
    write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
    write("charts/web/values.yaml", "replicas: 1\n")
    write("charts/web/templates/deployment.yaml", "replicas: {{ .Values.replicas }}\n")
    write("loose/priv.yaml", POD)
    skipped = loader.Skipped()
    assert _units([str(tmp_path)], tmp_path, unreferenced=True, skipped=skipped) == [
        (".", "kustomize"),
        ("loose/priv.yaml", "file"),
    ]
    assert skipped.charts == [(str(tmp_path / "charts/web"), 3)]


def test_a_component_no_rendering_includes_is_not_rendered_alone(write: Write, tmp_path: Path) -> None:
    """A `kind: Component` is only applied through a kustomization that includes it; one nothing
    includes is named in a note rather than rendered alone (which fails); a kustomization no rendering
    includes is still a unit of its own, and a component named directly is rendered as asked."""
    write("kustomization.yaml", "resources: [base]\n")
    write("base/kustomization.yaml", "resources: [web.yaml]\n")
    write("base/web.yaml", POD)
    write("components/debug/kustomization.yaml", "kind: Component\npatches: [{path: patch.yaml}]\n")
    write("components/debug/patch.yaml", POD)
    write(
        "overlays/dev/kustomization.yaml", "resources: [../../base]\ncomponents: [../../components/debug]\n"
    )
    write("overlays/prod/kustomization.yaml", "resources: [../../base]\n")
    write("components/unused/kustomization.yaml", "kind: Component\npatches: [{path: patch.yaml}]\n")
    write("components/unused/patch.yaml", POD)
    skipped = loader.Skipped()
    assert _units([str(tmp_path)], tmp_path, unreferenced=True, skipped=skipped) == [
        (".", "kustomize"),
        ("overlays/dev", "kustomize"),
        ("overlays/prod", "kustomize"),
    ]
    assert skipped.components == [str(tmp_path / "components/unused")]
    assert _units([str(tmp_path / "components/unused")], tmp_path, unreferenced=True) == [
        ("components/unused", "kustomize")
    ]


def test_a_kustomization_in_a_directory_only_read_is_its_own_unit(write: Write, tmp_path: Path) -> None:
    """`helmGlobals.chartHome` (or `configHome`) names a directory kustomize reads charts from, never
    one it renders: a kustomization there is not included, so it is a unit of its own (a false allow
    when every local target counted as included)."""
    write("kustomization.yaml", "resources: [top.yaml]\nhelmGlobals: {chartHome: sub, configHome: cfg}\n")
    write("top.yaml", POD)
    write("sub/kustomization.yaml", "resources: [cm.yaml]\n")
    write("sub/cm.yaml", POD)
    write("cfg/kustomization.yaml", "resources: [cm.yaml]\n")
    write("cfg/cm.yaml", POD)
    assert _units([str(tmp_path)], tmp_path, unreferenced=True) == [
        (".", "kustomize"),
        ("cfg", "kustomize"),
        ("sub", "kustomize"),
    ]


def test_a_linked_directory_is_named_not_followed(write: Write, tmp_path: Path) -> None:
    """A link to a directory is not followed (it may lead out of the checked tree), and is named in a
    note instead of being passed over silently."""
    write("repo/k/kustomization.yaml", "resources: [a.yaml]\n")
    write("repo/k/a.yaml", POD)
    write("repo/plain/b.yaml", POD)
    write("elsewhere/evil.yaml", POD)
    (tmp_path / "repo/k/linkdir").symlink_to("../../elsewhere")
    (tmp_path / "repo/plain/linkdir").symlink_to("../../elsewhere")
    skipped = loader.Skipped()
    assert _units([str(tmp_path / "repo")], tmp_path, unreferenced=True, skipped=skipped) == [
        ("repo/k", "kustomize"),
        ("repo/plain/b.yaml", "file"),
    ]
    assert skipped.links == [(str(tmp_path / "repo/k/linkdir"), 1), (str(tmp_path / "repo/plain/linkdir"), 1)]


def test_a_file_no_kustomization_reads_says_so_when_it_is_no_object(write: Write, tmp_path: Path) -> None:
    """A JSON 6902 list in a subdirectory no rendering reads is judged as a file: its problem says no
    kustomization reads it and that --exclude leaves it out."""
    write("kustomization.yaml", "resources: []\n")
    write("patches/ops.yaml", "- op: add\n  path: /x\n  value: 1\n")
    (unit,) = [u for u in loader.plan([str(tmp_path)], unreferenced=True) if u.kind == "file"]
    _, problems = loader.read_unit(unit, Limits())
    assert problems
    assert all("no kustomization reads this file" in (p.hint or "") for p in problems)
    assert all("--exclude" in (p.hint or "") for p in problems)


def test_jsonnet_that_a_reconciler_renders_is_reported_not_dropped(write: Write, tmp_path: Path) -> None:
    """Argo CD's directory source renders `*.jsonnet` into objects; `check` cannot read Jsonnet, and a
    privileged Pod written as Jsonnet used to pass as "0 documents". The walk `check` makes picks the
    file up and reading it reports why it is not judged; presync's walk (manifest suffixes) does not."""
    write("apps/web/app.jsonnet", '{ kind: "Pod", spec: { containers: [] } }\n')
    write("apps/web/lib.libsonnet", "{}\n")
    write("apps/web/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    units = loader.plan([str(tmp_path)], suffixes=loader.DATA_SUFFIXES, unreferenced=True)
    assert [Path(u.path).relative_to(tmp_path).as_posix() for u in units] == [
        "apps/web/app.jsonnet",
        "apps/web/cm.yaml",
    ]
    documents, problems = loader.read_unit(units[0], LIMITS)
    assert documents == []
    assert [(p.rule, p.source.file) for p in problems] == [("input/unrendered", units[0].path)]
    assert "Jsonnet" in problems[0].message and "--exclude '*.jsonnet'" in (problems[0].hint or "")
    assert [u.path for u in loader.plan([str(tmp_path)])] == [units[1].path]
    # Beside a kustomization the directory is rendered by kustomize, not as a directory source.
    write("apps/web/kustomization.yaml", "resources: [cm.yaml]\n")
    skipped = loader.Skipped()
    units = loader.plan([str(tmp_path)], suffixes=loader.DATA_SUFFIXES, unreferenced=True, skipped=skipped)
    assert [(Path(u.path).relative_to(tmp_path).as_posix(), u.kind) for u in units] == [
        ("apps/web", "kustomize")
    ]
    assert skipped.beside == {str(tmp_path / "apps/web"): [str(tmp_path / "apps/web/app.jsonnet")]}


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Chart.yaml", "kustomization.yaml", "values-Chart.yaml"], "values-Chart.yaml"),
        (["Chart.yaml", "kustomization.yaml"], None),  # the kustomization comes last: kustomize
        (["Chart.yaml", "Kustomization"], None),  # `K` sorts after `C`
        (["Chart.yaml", "Kustomization", "a-Chart.yaml"], "a-Chart.yaml"),
        (["Chart.yaml", "values.yaml"], "Chart.yaml"),
        (["kustomization.yaml", "values-Chart.yaml"], None),  # no Chart.yaml: helm renders nothing
        (["Chart.yaml", "kustomization.yml", "x-chart.yaml"], None),  # the suffix is case-sensitive
    ],
)
def test_argocd_chart_file_follows_argocd_discovery(names: list[str], expected: str | None) -> None:
    assert loader.argocd_chart_file(names) == expected
