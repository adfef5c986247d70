"""The CLI starts fast: `trustgate --version` and `--help` import no engine (issue 20)."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from trustgate.cli import main as cli
from trustgate.policy.gatekeeper import ENGINES

HEAVY = ("trustgate.gate", "trustgate.config", "trustgate.policy.gatekeeper", "regorus", "httpx", "yaml")


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
