from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from trustgate.config import DEFAULT_POLICIES, Config, load_config
from trustgate.errors import ConfigError
from trustgate.model import Mode

Write = Callable[[str, str], Path]

FULL = """\
apiVersion: trustgate.dev/v1alpha1
kind: Config
mode: warn
kubernetes:
  version: "1.31"
  strict: false
  missingSchemas: fail
  crds: [crds/]
manifests:
  policies:
    - builtin: pss-baseline
    - path: policy/
      mode: enforce
      namespaces: [main]
      regoVersion: v0
  data:
    trustgate: {allowed_registries: [registry.example.com/]}
  dataFiles: [data.yaml]
exceptions:
  - name: legacy-root
    rules: [pss-restricted-*]
    namespaces: [legacy]
    kinds: [StatefulSet]
    names: [db-*]
    images: [registry.example.com/legacy/*]
    owner: dba@example.com
    reason: vendor image runs as root until the 2027 upgrade
    expires: "2027-03-31"
limits:
  maxFileBytes: 1024
"""


def test_default_is_the_bundled_sets_in_enforce_mode() -> None:
    config = Config.default()
    assert config.mode is Mode.ENFORCE
    assert [p.builtin for p in config.policies] == ["pss-baseline", "pss-restricted", "supply-chain"]
    assert config.kubernetes.strict is True


def test_full_config_is_read_with_paths_relative_to_the_file(write: Write, tmp_path: Path) -> None:
    config = load_config(write("conf/trustgate.yaml", FULL))
    assert config.mode is Mode.WARN
    assert config.kubernetes.version == "1.31"
    assert config.kubernetes.missing_schemas == "fail"
    assert config.kubernetes.crds == (tmp_path / "conf" / "crds/",)
    builtin, local = config.policies
    assert builtin.builtin == "pss-baseline" and builtin.mode is None
    assert local.path == tmp_path / "conf" / "policy/"
    assert local.mode is Mode.ENFORCE and local.namespaces == ("main",) and local.rego_version == "v0"
    assert config.data == {"trustgate": {"allowed_registries": ["registry.example.com/"]}}
    (exc,) = config.exceptions
    assert exc.expires == dt.date(2027, 3, 31)
    assert exc.expired(dt.date(2027, 3, 31)) is False  # the expiry day still applies
    assert exc.expired(dt.date(2027, 4, 1)) is True
    assert config.limits.max_file_bytes == 1024


def test_no_policies_key_means_the_defaults(write: Write) -> None:
    config = load_config(write("t.yaml", "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"))
    assert config.policies == DEFAULT_POLICIES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmode: block\n",
            ["t.yaml:3: mode: 'block' is not one of"],
        ),
        (
            "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nkubernetes:\n  strcit: true\n",
            ["t.yaml:3: kubernetes: Additional properties", "check the spelling"],
        ),
        (
            "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nexceptions:\n  - name: x\n    rules: [a]\n",
            ["t.yaml:4: exceptions.0: 'owner' is a required property"],
        ),
        (
            "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  policies:\n"
            "    - {builtin: pss-baseline, path: x}\n",
            ["exactly one of `builtin` or `path`"],
        ),
        ("apiVersion: v1\nkind: Config\n", ["apiVersion: 'trustgate.dev/v1alpha1' was expected"]),
        ("mode: [unclosed\n", ["t.yaml:2", "invalid YAML"]),
        ("a: 1\n---\nb: 2\n", ["expected one YAML document, found 2"]),
        (
            "apiVersion: trustgate.dev/v1alpha1\nkind: Config\ncommits:\n  requireSignatures: true\n",
            ["t.yaml:4", "no signer is allowed"],
        ),
        (
            "apiVersion: trustgate.dev/v1alpha1\nkind: Config\ncommits:\n  gpgKeys: [k.asc]\n"
            "  revokedSigners: revoked.krl\n",
            ["t.yaml:5", "commits.allowedSigners allows none"],
        ),
        (
            "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nexceptions:\n"
            "  - {name: x, rules: [a], owner: o, reason: r, expires: '2027-02-30'}\n",
            ["'2027-02-30' is not a date"],
        ),
    ],
    ids=[
        "bad-mode",
        "typo",
        "exception-missing-owner",
        "builtin-and-path",
        "wrong-api",
        "yaml",
        "two-docs",
        "signatures-without-signers",
        "revoked-without-allowed-signers",
        "bad-date",
    ],
)
def test_broken_config_names_file_and_line(write: Write, text: str, expected: list[str]) -> None:
    path = write("t.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = err.value.diagnostics()
    for fragment in expected:
        assert fragment in message


def test_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "missing.yaml")
    assert "cannot read the config" in err.value.diagnostics()


def test_gatekeeper_and_engine_sections(tmp_path: Path) -> None:
    path = tmp_path / "trustgate.yaml"
    path.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        "manifests:\n  gatekeeper:\n    paths: [gk/, builtin:pss-baseline]\n"
        "    inventory: [cluster/]\n    mode: warn\n"
        "engine:\n  opa: {url: 'http://opa:8181', timeoutSeconds: 2}\n"
    )
    config = load_config(path)
    assert config.gatekeeper.paths[0] == tmp_path / "gk"
    assert (config.gatekeeper.paths[1] / "suite.yaml").is_file()
    assert config.gatekeeper.inventory == (tmp_path / "cluster",)
    assert config.gatekeeper.mode == Mode.WARN
    assert (config.engine.opa_url, config.engine.opa_timeout_seconds) == ("http://opa:8181", 2)


def test_manifests_exclude_is_read_and_validated(write: Write) -> None:
    head = "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
    config = load_config(write("t.yaml", head + "manifests:\n  exclude: [Chart.yaml, 'charts/']\n"))
    assert config.exclude == ("Chart.yaml", "charts/")
    with pytest.raises(ConfigError, match="exclude"):
        load_config(write("bad.yaml", head + "manifests:\n  exclude: Chart.yaml\n"))


@pytest.mark.parametrize(
    ("body", "key", "lines"),
    [
        ("mode: enforce\nkubernetes: {version: '1.33'}\nmode: audit\n", "mode", (3, 5)),
        ("mode: enforce\n<<: {mode: audit}\n", "mode", (3, 4)),
        ("<<: {mode: audit}\n<<: {mode: enforce}\n", "mode", (3, 4)),
        ("manifests:\n  policies:\n    - path: p/\n      mode: warn\n      mode: enforce\n", "mode", (6, 7)),
        ("x: &d {mode: audit}\nmode: warn\n<<: [*d]\n", "mode", (4, 5)),
    ],
    ids=["top-level", "merge-after", "two-merges", "nested-in-a-list", "merge-of-an-alias"],
)
def test_a_key_set_twice_in_the_config_is_refused(
    write: Write, body: str, key: str, lines: tuple[int, int]
) -> None:
    """kubectl's YAML keeps the last setting; in trustgate's own file a second `mode: audit` would
    silently weaken the first `mode: enforce`, so the file is refused, naming the line."""
    path = write("t.yaml", "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n" + body)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = err.value.diagnostics()
    assert f"{path}:{lines[1]}:" in message
    assert f"key {key!r} is set twice in one mapping (lines {lines[0]} and {lines[1]})" in message


def test_merges_that_set_each_key_once_are_read(write: Write) -> None:
    """A merge is fine where it sets keys nothing else in the mapping sets; the maps of one merge
    may share a key (every reader takes the first map's)."""
    text = """\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        manifests:
          policies:
            - path: a/
              mode: &warn warn
            - {<<: [{mode: *warn}, {mode: audit, regoVersion: v0}], path: b/}
        """
    config = load_config(write("t.yaml", text))
    assert [(p.mode, p.rego_version) for p in config.policies] == [(Mode.WARN, "v1"), (Mode.WARN, "v0")]


def test_a_key_after_a_merge_that_set_it_overrides_it(write: Write) -> None:
    """`<<: *defaults` then the key: every reader keeps the key written after the merge."""
    text = """\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        manifests:
          policies:
            - &defaults {path: a/, mode: warn, regoVersion: v0}
            - {<<: *defaults, mode: enforce}
        """
    config = load_config(write("t.yaml", text))
    assert [(p.mode, p.rego_version) for p in config.policies] == [(Mode.WARN, "v0"), (Mode.ENFORCE, "v0")]


def test_with_mode_replaces_the_mode_of_every_source(write: Write) -> None:
    """`--mode` is the whole run's mode: no policy source, image rule or Gatekeeper default keeps its own."""
    text = """\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        mode: audit
        manifests:
          policies: [{builtin: pss-baseline, mode: warn}, {path: p/}]
          gatekeeper: {paths: [gk/], mode: warn}
        images:
          rules: [{name: all, images: ["**"], mode: audit}]
        """
    config = load_config(write("t.yaml", text)).with_mode(Mode.ENFORCE)
    assert config.mode == Mode.ENFORCE
    assert [p.mode for p in config.policies] == [None, None]  # None: the top-level mode
    assert [r.mode for r in config.images.rules] == [None]
    assert config.gatekeeper.mode is None
