"""The scope a pre-sync rollback may borrow approvals within."""

from __future__ import annotations

from pathlib import Path

import trustgate.cli.main  # noqa: F401  (imports the CLI modules in their order)
from trustgate.config import Config, PresyncSettings
from trustgate.presync.runner import PresyncGate, _scope_paths


def test_paths_are_one_set_however_they_are_written() -> None:
    assert _scope_paths(["./clusters/prod/", "clusters/prod", "apps"]) == ["apps", "clusters/prod"]
    assert _scope_paths(["", "."]) == ["."]


def test_the_scope_names_repository_gated_ref_and_paths(tmp_path: Path) -> None:
    def scope(paths: tuple[str, ...], repository: str, gated_ref: str) -> str:
        config = Config(presync=PresyncSettings(paths=paths))
        gate = PresyncGate.__new__(PresyncGate)  # no keyring, no cache: only the scope is asked for
        gate.config, gate.settings = config, config.presync
        return gate._scope(repository, gated_ref)

    prod = scope(("clusters/prod",), str(tmp_path), "refs/heads/trustgate/verified")
    assert prod == scope(("./clusters/prod/",), str(tmp_path / "."), "refs/heads/trustgate/verified")
    assert prod != scope(("clusters/staging",), str(tmp_path), "refs/heads/trustgate/verified")
    assert prod != scope(("clusters/prod",), str(tmp_path), "refs/heads/trustgate/staging")
    assert prod != scope(("clusters/prod",), str(tmp_path / "copy"), "refs/heads/trustgate/verified")
    assert scope((".",), "https://token@git.example.com/fleet.git", "refs/heads/x") == scope(
        (".",), "https://git.example.com/fleet.git", "refs/heads/x"
    )
