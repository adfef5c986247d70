"""Auditing the decision log without trusting its database (issue 21), on SQLite and PostgreSQL.

Each attack is done as someone with write access to the database would do
it: rows changed directly, every later hash recomputed (chain and Merkle
tree), checkpoints deleted. What catches it is what the auditor kept: a
checkpoint file and the verifier key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.forge import forge, record_at
from support.ids import uuid7_at

from trustgate.cli.main import main
from trustgate.decisions.canonical import timestamp, uuid7
from trustgate.decisions.log import DecisionLog, open_store
from trustgate.decisions.store import MIGRATIONS


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'decisions.db'}"
    value: str = request.getfixturevalue("postgres_url")
    return value


def _key(path: Path) -> Path:
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return _key(tmp_path / "log-key.pem")


@pytest.fixture
def pub(key: Path, tmp_path: Path) -> Path:
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    path = tmp_path / "pub.pem"
    path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def decision(n: int, verdict: str | None = None, time: str | None = None) -> dict[str, Any]:
    """A record as a gate writes it: verdict, exit code, counts and findings agree."""
    verdict = verdict or ("deny" if n % 5 == 0 else "allow")
    blocking = verdict == "deny"
    return {
        "schema": "trustgate.dev/decision/v1",
        "id": uuid7_at(time) if time else uuid7(),  # dated like its time, as a gate makes them
        "time": time or timestamp(),
        "gate": "ci",
        "mode": "enforce",
        "verdict": verdict,
        "exitCode": 1 if blocking else 0,
        "summary": {"documents": 1, "passed": 0 if blocking else 1, "failed": int(blocking), "warnings": 0,
                    "errors": 0},
        "subject": {"objects": [{"kind": "Pod", "namespace": "shop", "name": f"app-{n}",
                                 "status": "failed" if blocking else "passed"}], "images": []},
        "findings": [{"rule": "no-priv", "severity": "error", "message": "privileged", "object": 0}]
        if blocking else [],
    }  # fmt: skip


def fill(url: str, key: Path | None, start: int, stop: int, **kw: Any) -> None:
    with DecisionLog.open(url, key=key) as log:
        for n in range(start, stop):
            log.append(decision(n, **kw))


def keep_checkpoint(url: str, key: Path, path: Path) -> str:
    """What an auditor does: take a checkpoint now, keep the file and the verifier key."""
    code, out, err = run("log", "checkpoint", "--store", url, "--key", str(key), "--output", str(path),
                         "--print-verifier-key")  # fmt: skip
    assert code == 0, err
    assert path.read_text().startswith("trustgate.dev/decision-log/")
    vkey = out.strip().splitlines()[0]
    assert vkey.startswith("trustgate.dev/decision-log/") and len(vkey.split("+", 2)) == 3
    return vkey


def test_a_rewrite_with_every_hash_recomputed_and_checkpoints_deleted_is_caught(
    url: str, key: Path, pub: Path, tmp_path: Path
) -> None:
    fill(url, key, 1, 9)
    kept = tmp_path / "kept-8.checkpoint"
    vkey = keep_checkpoint(url, key, kept)
    fill(url, key, 9, 13)
    assert run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", vkey)[0] == 0

    forged = record_at(url, 5)  # a deny
    assert forged["verdict"] == "deny"
    forged = decision(5, verdict="allow", time=forged["time"]) | {"id": forged["id"]}
    forge(url, {5: forged})

    # Before: "intact ... 0 checkpoints", exit 0. Now a pinned key with no checkpoint fails.
    code, out, _ = run("log", "verify", "--store", url, "--public-key", str(pub))
    assert code == 1 and "no checkpoint signed by the pinned key" in out
    # And the kept checkpoint shows the rewrite, whatever the database says.
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", vkey)
    assert code == 1 and "rewritten" in out and str(kept) in out
    # The PEM public key works as the verifier key too.
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", str(pub))
    assert code == 1 and "rewritten" in out

    # The next legitimate run signs a fresh checkpoint over the forged head; the kept one still tells.
    fill(url, key, 13, 14)
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", vkey)
    assert code == 1 and "rewritten" in out


def test_a_rewrite_that_leaves_the_tree_is_caught_without_a_kept_checkpoint(url: str, key: Path) -> None:
    fill(url, key, 1, 6)
    store = open_store(url)
    try:
        with store._write():
            store._execute("DELETE FROM tree_nodes WHERE level > 0")
            store._execute("UPDATE tree_nodes SET hash = ? WHERE level = 0 AND idx = 2", (b"\x00" * 32,))
    finally:
        store.close()
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 1 and "Merkle tree" in out


def test_removing_the_newest_records_after_a_kept_checkpoint_is_caught(
    url: str, key: Path, tmp_path: Path
) -> None:
    fill(url, key, 1, 11)
    kept = tmp_path / "kept-10.checkpoint"
    vkey = keep_checkpoint(url, key, kept)
    forge(url, {}, drop_after=7)
    code, out, _ = run("log", "verify", "--store", url)  # the chain alone is intact
    assert code == 0
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", vkey)
    assert code == 1 and "records #8..#10 were removed" in out and str(kept) in out


def test_removing_the_newest_records_but_not_the_head_is_caught_without_a_checkpoint(url: str) -> None:
    fill(url, None, 1, 9)
    store = open_store(url)
    try:
        with store._write():
            store._execute("DELETE FROM terms WHERE seq > 6")
            store._execute("DELETE FROM decisions WHERE seq > 6")
    finally:
        store.close()
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 1 and "records #7..#8 were removed" in out


def test_a_verdict_flipped_while_the_exit_code_stays_is_caught_after_rechaining(url: str, key: Path) -> None:
    fill(url, key, 1, 8)
    flipped = record_at(url, 5) | {"verdict": "allow"}
    assert flipped["exitCode"] == 1
    forge(url, {5: flipped})
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 1 and "record #5" in out and "contradicts itself" in out and "exit code is 1" in out


def test_prune_of_a_signed_log_needs_the_key_and_keeps_earlier_checkpoints_provable(
    url: str, key: Path, tmp_path: Path
) -> None:
    # Written in 2020 (before the key signed a checkpoint: none may precede records dated earlier).
    fill(url, None, 1, 7, time="2020-01-01T00:00:00.000000Z")
    early = tmp_path / "kept-6.checkpoint"
    vkey = keep_checkpoint(url, key, early)
    fill(url, key, 7, 11)

    code, _, err = run("log", "prune", "--store", url, "--before", "2021-01-01")
    assert code == 2 and "this log is signed" in err and "--key" in err
    assert run("log", "query", "--store", url, "--limit", "0", "--format", "json")[1].count('"seq"') == 10

    code, out, err = run("log", "prune", "--store", url, "--before", "2021-01-01", "--key", str(key))
    assert code == 0 and "removed 6 decisions" in out, err
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(early), "--verifier-key", vkey)
    assert code == 0 and f"consistent with the kept checkpoint {early}" in out
    later = tmp_path / "kept-10.checkpoint"
    keep_checkpoint(url, key, later)
    args = ("--checkpoint", str(early), "--checkpoint", str(later), "--verifier-key", vkey)
    assert run("log", "verify", "--store", url, *args)[0] == 0

    # Rewriting a pruned record's leaf breaks consistency with the checkpoint from before the prune.
    store = open_store(url)
    try:
        with store._write():
            store._execute("UPDATE tree_nodes SET hash = ? WHERE level = 0 AND idx = 1", (b"\x01" * 32,))
            store._execute("DELETE FROM tree_nodes WHERE level > 0")
            store._execute("DELETE FROM checkpoints WHERE kind <> 'prune'")
    finally:
        store.close()
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(early), "--verifier-key", vkey)
    assert code == 1


def test_print_verifier_key_prints_the_vkey_alone_as_the_readme_uses_it(
    url: str, key: Path, tmp_path: Path
) -> None:
    # README: `VKEY=$(trustgate log checkpoint --store URL --key K --print-verifier-key)`, then
    # `log verify-proof proof.json --verifier-key "$VKEY"`: stdout is the vkey and nothing else.
    fill(url, key, 1, 4)
    code, vkey, err = run("log", "checkpoint", "--store", url, "--key", str(key), "--print-verifier-key")
    assert code == 0 and "checkpoint at #3" in err
    assert vkey.count("\n") == 1 and vkey.startswith("trustgate.dev/decision-log/")
    code, out, err = run("log", "prove", record_at(url, 2)["id"], "--store", url)
    assert code == 0, err
    (tmp_path / "proof.json").write_text(out)
    code, out, err = run("log", "verify-proof", str(tmp_path / "proof.json"), "--verifier-key", vkey.strip())
    assert code == 0 and "proven" in out, err
    # Without the key (the one stored beside the newest checkpoint): the same, with its warning.
    code, stored, err = run("log", "checkpoint", "--store", url, "--print-verifier-key")
    assert code == 0 and stored == vkey and "no trust anchor" in err and "checkpoint at #3" in err


def test_prove_one_decision_and_check_the_proof_with_nothing_but_the_file(
    url: str, key: Path, tmp_path: Path
) -> None:
    fill(url, key, 1, 12)
    vkey = keep_checkpoint(url, key, tmp_path / "cp")
    decision_id = record_at(url, 5)["id"]
    code, out, err = run("log", "prove", decision_id, "--store", url, "--format", "json")
    assert code == 0, err
    proof = json.loads(out)
    assert proof["index"] == 4 and proof["treeSize"] == 11 and proof["record"]["id"] == decision_id
    assert len(proof["hashes"]) == 4 and proof["checkpoint"].startswith("trustgate.dev/decision-log/")
    path = tmp_path / "proof.json"
    path.write_text(out)
    code, out, _ = run("log", "verify-proof", str(path), "--verifier-key", vkey)
    assert code == 0 and f"decision {decision_id} is #5 of the 11 records" in out

    altered = proof | {"record": proof["record"] | {"verdict": "allow"}}
    path.write_text(json.dumps(altered))
    code, out, _ = run("log", "verify-proof", str(path), "--verifier-key", vkey)
    assert code == 1 and "NOT PROVEN" in out and "altered" in out

    other = tmp_path / "other.pem"
    _key(other)
    path.write_text(json.dumps(proof))
    code, _, err = run("log", "verify-proof", str(path), "--verifier-key", str(other))
    assert code == 3 and str(path) in err and "another log" in err and "Traceback" not in err

    path.write_text(json.dumps(proof | {"treeSize": 12}))
    code, _, err = run("log", "verify-proof", str(path), "--verifier-key", vkey)
    assert code == 3 and "tree of 12 records, its checkpoint is of 11" in err

    path.write_text(json.dumps(proof | {"hashes": proof["hashes"][:-1]}))
    assert run("log", "verify-proof", str(path), "--verifier-key", vkey)[0] == 1
    path.write_text("{not json")
    code, _, err = run("log", "verify-proof", str(path), "--verifier-key", vkey)
    assert code == 3 and "not JSON" in err


def test_bad_kept_checkpoints_are_one_clear_line_naming_the_file(url: str, key: Path, tmp_path: Path) -> None:
    fill(url, key, 1, 4)
    kept = tmp_path / "kept.checkpoint"
    vkey = keep_checkpoint(url, key, kept)
    text = kept.read_text()
    body, _, signature = text.partition("\n\n")
    origin, size, root = body.split("\n")[:3]
    other_key = _key(tmp_path / "other.pem")
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    fill(other_url, other_key, 1, 3)
    foreign = tmp_path / "foreign.checkpoint"
    keep_checkpoint(other_url, other_key, foreign)
    cases = {
        "malformed": ("hello\n", "not a signed note"),
        "unsigned": (body + "\n", "not a signed note"),
        "resized": (f"{origin}\n2\n{root}\n\n{signature}", "does not verify"),
        "foreign": (foreign.read_text(), "another log"),
    }
    for name, case in cases.items():
        path = tmp_path / f"{name}.checkpoint"
        path.write_text(case[0])
        code, _, err = run("log", "verify", "--store", url, "--checkpoint", str(path), "--verifier-key", vkey)
        assert code == 3 and str(path) in err and case[1] in err and "Traceback" not in err, (name, err)
        assert len(err.strip().splitlines()) <= 2
    code, _, err = run("log", "verify", "--store", url, "--checkpoint", str(kept))
    assert code == 2 and "--verifier-key" in err
    code, _, err = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", "a+b+c")
    assert code == 3 and "verifier key" in err
    assert size == "3"


def _undo_migrations_after_1(store: Any) -> None:
    """Drop what every migration after schema 1 created (later ones first), as if never applied."""
    for migration in sorted(MIGRATIONS, key=lambda m: m.version, reverse=True):
        if migration.version < 2:
            continue
        for statement in reversed(getattr(migration, store.dialect)):
            words = statement.split()
            if words[:2] == ["CREATE", "TABLE"]:
                store._execute(f"DROP TABLE {words[2]}")
            elif words[:2] == ["CREATE", "INDEX"]:
                store._execute(f"DROP INDEX {words[2]}")
            elif words[:2] == ["ALTER", "TABLE"] and words[3:5] == ["ADD", "COLUMN"]:
                store._execute(f"ALTER TABLE {words[2]} DROP COLUMN {words[5]}")
            else:
                raise AssertionError(f"cannot undo {statement!r}: teach this test how")
    store._execute("DELETE FROM schema_migrations WHERE version >= 2")


def test_a_log_written_before_the_tree_migrates_on_open(url: str, key: Path, tmp_path: Path) -> None:
    fill(url, key, 1, 4, time="2020-01-01T00:00:00.000000Z")
    fill(url, key, 4, 9)
    assert run("log", "prune", "--store", url, "--before", "2021-01-01", "--key", str(key))[0] == 0
    store = open_store(url)
    root = store.root(8)
    with store._write():  # back to schema 1, as a log of the previous release
        _undo_migrations_after_1(store)
    store.close()
    store = open_store(url)
    try:  # records pruned before the tree existed count as empty leaves: the root differs
        assert store.tree_size() == 8 and store.root(8) != root
        assert store.compact_range(8).root() == store.root(8)
    finally:
        store.close()
    assert run("log", "verify", "--store", url)[0] == 0
    kept = tmp_path / "kept.checkpoint"
    vkey = keep_checkpoint(url, key, kept)
    fill(url, key, 9, 12)
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", vkey)
    assert code == 0 and "consistent with the kept checkpoint" in out


def test_verify_counts_kept_checkpoints_and_does_not_say_none_was_checked(
    url: str, key: Path, tmp_path: Path
) -> None:
    fill(url, key, 1, 6)
    kept = tmp_path / "kept.checkpoint"
    vkey = keep_checkpoint(url, key, kept)
    forged = record_at(url, 5)
    forge(url, {5: decision(5, verdict="allow", time=forged["time"]) | {"id": forged["id"]}})

    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", vkey)
    # Before: "NOT INTACT" but also "0 checkpoints" and "no signed checkpoint: ... cannot be detected".
    assert code == 1 and "rewritten" in out
    assert "0 stored checkpoints; 1 kept checkpoint checked" in out
    assert "no signed checkpoint" not in out and "cannot be detected" not in out
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", vkey,
                       "-o", "json")  # fmt: skip
    assert json.loads(out)["keptCheckpoints"] == 1 and json.loads(out)["warnings"] == []
    # With nothing kept, the warning stands: then nothing could have caught it.
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 0 and "0 stored checkpoints" in out and "no signed checkpoint" in out


def deny_flipped(url: str, seq: int) -> dict[str, Any]:
    """Record `seq` (a deny) turned into an allow that agrees with itself, id and time kept."""
    original = record_at(url, seq)
    assert original["verdict"] == "deny"
    return decision(seq, verdict="allow", time=original["time"]) | {"id": original["id"]}


def test_verify_names_the_records_no_checkpoint_it_can_trust_covers(
    url: str, key: Path, tmp_path: Path
) -> None:
    """Finding 1: #10 rewritten, stored checkpoints from #10 on deleted (#1's stays): without what the
    auditor kept, `verify` passes, and must say that #2..#20 are vouched for by nothing it checked."""
    fill(url, key, 1, 21)  # the writer signs #1 on its first commit
    kept = tmp_path / "kept.checkpoint"
    vkey = keep_checkpoint(url, key, kept)  # #20
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", vkey,
                       "-o", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["warnings"] == []  # everything is covered by what the auditor kept

    forge(url, {10: deny_flipped(url, 10)}, keep_before=10)
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", vkey)
    assert code == 0  # exit 0 stays: nothing it checked shows a problem (ADR 9, item 3)
    assert (
        "records #2..#20 (19 of 20) are covered by no signed checkpoint (the newest checked covers #1)" in out
    )
    assert "a rewrite of them cannot be detected without a checkpoint you kept" in out
    assert "this result only shows the log is self-consistent" in out
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", vkey, "-o", "json")
    assert (json.loads(out)["coveredThrough"], json.loads(out)["uncovered"]) == (1, 19)
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", vkey)
    assert code == 1 and "the log up to #20 was rewritten" in out


def test_checkpoint_output_refuses_a_latest_stored_checkpoint_behind_the_log(
    url: str, key: Path, tmp_path: Path
) -> None:
    """Finding 5: the writer signed #30 over deny #15; #15 flipped, checkpoints from #11 deleted. The
    auditor's "keep the latest stored" step must not hand over #10 as if it covered the log."""
    fill(url, key, 1, 11)
    audit1 = tmp_path / "audit1.txt"
    vkey = keep_checkpoint(url, key, audit1)  # #10
    code, _, err = run("log", "checkpoint", "--store", url, "--output", str(tmp_path / "now.txt"))
    assert code == 0 and "warning" not in err  # the latest stored covers the whole log
    fill(url, key, 11, 31)
    assert run("log", "checkpoint", "--store", url, "--key", str(key))[0] == 0  # #30
    forge(url, {15: deny_flipped(url, 15)}, keep_before=11)

    audit2 = tmp_path / "audit2.txt"
    code, out, err = run("log", "checkpoint", "--store", url, "--output", str(audit2))
    assert code == 3 and not audit2.exists()
    assert "the latest stored checkpoint" in err and "covers 10 records, but the log holds 30" in err
    assert "records #11..#30 are vouched for by no stored checkpoint" in err and "--allow-behind" in err
    code, out, err = run("log", "checkpoint", "--store", url, "--output", str(audit2), "--allow-behind")
    assert code == 0 and audit2.exists() and "warning: the latest stored checkpoint" in err

    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(audit1), "--checkpoint",
                       str(audit2), "--verifier-key", vkey)  # fmt: skip
    assert code == 0
    assert (
        "records #11..#30 (20 of 30) are covered by no signed checkpoint (the newest checked covers #10)"
        in out
    )
    assert "self-consistent" not in out  # kept checkpoints were checked: they vouch for #1..#10
