"""`trustgate presync` and what decides what the reconciler pulls: its sources, Argo CD's parameter
overrides, kustomize's load restrictor, the configured paths and the gated ref's name.

Real git repositories, commits signed by test SSH and GPG keys, through the CLI (the helpers of
`test_cli_presync.py`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import test_cli_presync
from test_cli_presync import GATED, PRIVILEGED_POD, Keys, Setup

# Its fixtures, by the names the tests ask for.
keys = test_cli_presync.keys
setup = test_cli_presync.setup


def _records(s: Setup) -> list[str]:
    if not s.log.exists():
        return []
    with sqlite3.connect(s.log) as db:
        tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'decisions'")
        if tables.fetchone() is None:
            return []
        return [row[0] for row in db.execute("SELECT record FROM decisions")]


# -- the configuration and the gated ref --------------------------------------------------------


def test_empty_paths_are_a_configuration_error(setup: Callable[..., Setup], keys: Keys) -> None:
    """`presync.paths: []` judged nothing and passed every commit."""
    s = setup()
    config = s.config_with("empty.yaml", paths="[]")
    s.repo.write("deploy/pod.yaml", PRIVILEGED_POD)
    s.repo.commit("a privileged pod", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 3, output
    assert f"{config}:" in output and "presync.paths: is empty" in output, output
    assert "paths: [clusters/prod]" in output, output
    assert s.repo.ref(GATED) is None and _records(s) == []
