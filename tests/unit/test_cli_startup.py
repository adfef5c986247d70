"""The CLI starts fast: `trustgate --version` and `--help` import no engine (issue 20)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from trustgate.cli import main as cli
from trustgate.policy.gatekeeper import ENGINES

HEAVY = ("trustgate.gate", "trustgate.config", "trustgate.policy.gatekeeper", "regorus", "httpcore", "yaml")


def test_importing_the_cli_loads_no_engine() -> None:
    code = "import sys, trustgate.cli.main; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert not loaded & set(HEAVY)


def test_the_engine_choice_is_the_gatekeeper_modules() -> None:
    assert cli.GATEKEEPER_ENGINES == ENGINES


def test_every_command_is_listed_and_loads() -> None:
    ctx = cli.main.make_context("trustgate", ["--help"], resilient_parsing=True)
    names = cli.main.list_commands(ctx)
    assert {"check", "policy", "schema", "versions", *cli._LAZY_COMMANDS} == set(names)
    assert names == sorted(set(names))  # as click lists them: by name, once
    for name in names:
        command = cli.main.get_command(ctx, name)
        assert command is not None and command.name == name
    verify = cli.main.get_command(ctx, "verify")
    assert isinstance(verify, click.Group) and "image" in verify.list_commands(ctx)


def test_help_lists_the_commands_of_other_modules() -> None:
    result = CliRunner().invoke(cli.main, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0
    for name in ("check", "presync", "serve", "webhook-config", "ui", "verify", "log"):
        assert f"  {name}" in result.output


def test_a_plain_check_loads_no_decision_log_images_or_workers(tmp_path: Path) -> None:
    """A pre-commit hook checks one file: what it does not use is not imported (the fixed cost)."""
    manifest = tmp_path / "cm.yaml"
    manifest.write_text('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: "n"}\n')
    code = (
        "import sys\nfrom trustgate.cli.main import main\n"
        "try:\n    main(['check', sys.argv[1], '-o', 'json'])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    # A compile cache of its own: the first run fills it (writing an entry needs tempfile), the
    # second is the run every pre-commit hook makes after the first.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_STATE_HOME": str(tmp_path / "state")}
    runs = [
        subprocess.run([sys.executable, "-c", code, str(manifest)], capture_output=True, text=True, env=env)
        for _ in range(2)
    ]
    cold, warm = (set(run.stderr.split()) for run in runs)
    assert all('"documents": 1' in run.stdout for run in runs)
    unused = (
        "trustgate.cli.log",
        "trustgate.decisions.log",
        "trustgate.artifacts.verifier",
        "multiprocessing",
        "pickle",  # the workers' results: only with --jobs on a large input
        "subprocess",  # kustomizations and git only
        "importlib.resources",  # brings tempfile, shutil, bz2 and lzma; the package's files are beside it
    )
    assert not cold & set(unused)
    # tempfile: only to write a compile cache entry; the rewriting of policies and the Go-semantics
    # built-ins (re2, fractions) only where a policy is rewritten or its rewrite calls them.
    rewriting = (
        "trustgate.policy._compile_checks",
        "trustgate.policy._gobuiltins",
        "trustgate.policy._gofmt",
    )
    assert not warm & {*unused, "tempfile", *rewriting, "re2", "fractions"}
    assert "tempfile" in cold  # the first run did write its entry
