"""`trustgate log verify` checks the UI's summary tables; `log rebuild-summaries` recomputes them.

Through the CLI, on real SQLite and PostgreSQL: a summary row altered so the
UI would hide a deny makes verification fail naming the table and the day;
rebuilding makes the log intact again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main
from trustgate.decisions.log import open_store

Write = Callable[[str, str], Path]

POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: NAME, namespace: shop}\nspec:\n  containers:\n"
    "    - {name: app, image: 'registry.example.com/app:1.0@sha256:" + "c" * 64 + "'}\n"
)
POLICY = """\
package main
import rego.v1

deny contains {"msg": "no privileged pods", "rule": "no-priv"} if input.metadata.name == "bad"
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, write: Write, tmp_path: Path) -> str:
    """A log of three decisions, the second a deny."""
    store_url: str = (
        f"sqlite:///{tmp_path / 'decisions.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    policy = str(write("policy/main.rego", POLICY))
    for name in ("good", "bad", "good"):
        manifest = str(write(f"deploy/{name}.yaml", POD.replace("NAME", name)))
        run("check", "--no-builtin", "--no-schemas", "-p", policy, manifest, "--decision-log", store_url)
    return store_url


def _tamper(url: str, sql: str) -> None:
    store = open_store(url)
    try:
        with store._write():
            store._execute(sql)
    finally:
        store.close()


def test_verify_names_an_altered_summary_and_rebuild_repairs_it(url: str) -> None:
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 0 and out.startswith("intact: 3 records")
    _tamper(url, "UPDATE daily_seqs SET first_seq = 3")  # the day now "starts" after the deny #2
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 1
    assert out.startswith("NOT INTACT: summary: the summary table daily_seqs disagrees with the records")
    assert ": #3..#3 (the records: #1..#3)" in out and "trustgate log rebuild-summaries" in out
    code, out, _ = run("log", "verify", "--store", url, "--format", "json")
    assert code == 1 and [p["kind"] for p in json.loads(out)["problems"]] == ["summary"]

    code, out, _ = run("log", "rebuild-summaries", "--store", url)
    assert code == 0 and out.startswith("rebuilt the summaries of ") and out.rstrip().endswith("up to #3")
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 0 and out.startswith("intact: 3 records")


def test_rebuild_summaries_needs_a_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUSTGATE_DECISION_LOG", raising=False)
    code, _, err = run("log", "rebuild-summaries")
    assert code != 0 and "no decision log given" in err
