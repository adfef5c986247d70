"""Checkpoints leave the database, and the writer never vouches for a forged head (issue 21).

The attacks are the ones of test_cli_log_audit: rows rewritten with every hash
recomputed and the stored checkpoints deleted. What stops the next legitimate
writer from signing over them is a checkpoint the database's writers cannot
reach: one published to a directory or a git ref, or the one it signed last.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.forge import forge, record_at
from test_cli_log_audit import decision

from trustgate.cli.main import main
from trustgate.config import load_config
from trustgate.decisions.canonical import canonical
from trustgate.decisions.chain import CheckpointSigner, entry_hash
from trustgate.decisions.log import CheckpointPolicy, CheckpointRefusedError, DecisionLog, open_store
from trustgate.decisions.publish import DirectoryPublisher, GitPublisher, Publisher, PublishError
from trustgate.errors import ConfigError

Write = Callable[[str, str], Path]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'decisions.db'}"


def ed25519_key(path: Path) -> Path:
    """A new Ed25519 private key, PEM (PKCS#8), written to `path`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return ed25519_key(tmp_path / "log-key.pem")


def writer(url: str, key: Path, *publish: Publisher, **policy: float) -> DecisionLog:
    return DecisionLog.open(url, key=key, checkpoints=CheckpointPolicy(publish=tuple(publish), **policy))  # type: ignore[arg-type]  # every_records/every_seconds


def vkey(key: Path) -> str:
    return CheckpointSigner.from_file(key).note_verifier().vkey()


def stored_sizes(url: str) -> list[int]:
    store = open_store(url)
    try:
        return [c.seq for c in store.checkpoints()]
    finally:
        store.close()


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


# -- the writer refuses to sign over a forged head ------------------------------------


def test_a_forged_head_is_not_signed_and_the_published_checkpoint_finds_it(
    url: str, key: Path, tmp_path: Path
) -> None:
    published = tmp_path / "published"
    with writer(url, key, DirectoryPublisher(published)) as log:
        for n in range(10):
            log.append(decision(n))
        log.checkpoint()
        assert log.take_problems() == []
    assert (published / "checkpoint").read_text().splitlines()[1] == "10"
    assert (published / "checkpoint.1").exists() and (published / "checkpoint.10").exists()

    denied = record_at(url, 5)
    forge(url, {5: {**decision(5, "allow"), "id": denied["id"], "time": denied["time"]}})
    assert stored_sizes(url) == []  # the attacker deleted every stored checkpoint

    with writer(url, key, DirectoryPublisher(published), every_seconds=0.0) as log:
        record_id = log.append(decision(11))  # a legitimate decision is still recorded
        assert record_id
        problems = log.take_problems()
        assert log.checkpoints_refused == 1 and log.checkpoints_signed == 0
    assert [type(p) for p in problems] == [CheckpointRefusedError]
    message = problems[0].diagnostics()
    assert "refusing to sign a checkpoint of 11 records" in message
    assert f"published in {published}" in message and "(10 records)" in message
    assert stored_sizes(url) == []  # nothing was signed over the forgery
    assert sorted(p.name for p in published.iterdir() if not p.name.startswith(".")) == [
        "checkpoint",
        "checkpoint.1",
        "checkpoint.10",
    ]

    code, out, _ = run("log", "verify", "--store", url, "--checkpoint-dir", str(published),
                       "--verifier-key", vkey(key))  # fmt: skip
    assert code == 1 and "NOT INTACT" in out
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(published / "checkpoint"),
                       "--verifier-key", vkey(key))  # fmt: skip
    assert code == 1 and "rewritten" in out


def test_log_checkpoint_refuses_with_exit_1_and_says_why(
    url: str, key: Path, write: Write, tmp_path: Path
) -> None:
    config = write(
        "trustgate.yaml",
        f"""\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        decisionLog:
          url: {url}
          checkpoint:
            key: {key}
            publish:
              dir: published
        """,
    )
    with writer(url, key, DirectoryPublisher(tmp_path / "published")) as log:
        for n in range(4):
            log.append(decision(n))
    code, _, err = run("log", "checkpoint", "-c", str(config))
    assert code == 0, err
    forge(url, {}, drop_after=2)  # the newest records removed
    code, _, err = run("log", "checkpoint", "-c", str(config))
    assert code == 1
    assert "refusing to sign a checkpoint of 2 records" in err and "records were removed" in err
    assert "Traceback" not in err


def rechain(url: str, seq: int, record: dict[str, Any], *, delete_checkpoints: bool) -> None:
    """Rewrite one record and recompute the chain after it, but leave the genuine Merkle tree."""
    store = open_store(url)
    try:
        with store._write():
            store._execute(
                "UPDATE decisions SET record = ?, verdict = ? WHERE seq = ?",
                (canonical(record), record["verdict"], seq),
            )
            rows = store._execute(
                "SELECT seq, record, prev FROM decisions WHERE seq >= ? ORDER BY seq", (seq,)
            )
            prev = rows[0][2]
            for number, body, _ in rows:
                digest = entry_hash(prev, bytes(body), int(number))
                store._execute(
                    "UPDATE decisions SET prev = ?, hash = ? WHERE seq = ?", (prev, digest, number)
                )
                prev = digest
            store._execute("UPDATE chain_head SET hash = ? WHERE chain = 'main'", (prev,))
            if delete_checkpoints:
                store._execute("DELETE FROM checkpoints")
    finally:
        store.close()


@pytest.mark.parametrize("delete_checkpoints", [True, False])
def test_a_rewrite_that_leaves_the_genuine_tree_is_not_signed(
    url: str, key: Path, write: Write, tmp_path: Path, delete_checkpoints: bool
) -> None:
    """Before, only the stored tree was compared with the trusted checkpoints: it was intact, so the
    writer signed the rewritten chain's head (review repro forge2)."""
    config = write(
        "trustgate.yaml",
        f"""\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        decisionLog:
          url: {url}
          checkpoint:
            key: {key}
            publish:
              dir: published
        """,
    )
    published = tmp_path / "published"
    with writer(url, key, DirectoryPublisher(published)) as log:
        for n in range(3):
            log.append(decision(n))
    assert run("log", "checkpoint", "-c", str(config))[0] == 0
    signed = stored_sizes(url)
    before = {p.name: p.read_text() for p in published.iterdir()}

    denied = record_at(url, 2)
    rechain(url, 2, {**decision(2, "allow"), "id": denied["id"], "time": denied["time"]},
            delete_checkpoints=delete_checkpoints)  # fmt: skip
    code, _, err = run("log", "checkpoint", "-c", str(config))
    assert code == 1 and "refusing to sign a checkpoint of 3 records" in err, err
    if delete_checkpoints:  # nothing but the published root: every record is checked against its leaf
        assert "record #2 is not the Merkle tree's leaf" in err
    else:  # the stored checkpoint's signed chain head: the rewritten chain does not lead to it
        assert "does not lead to the head #3" in err
    assert stored_sizes(url) == ([] if delete_checkpoints else signed)  # nothing signed
    assert {p.name: p.read_text() for p in published.iterdir()} == before  # nothing published

    # Appending goes on; a record appended and then rewritten (tree left) is not signed either.
    with writer(url, key, every_records=1) as log:
        log.append(decision(3))
        assert log.checkpoints_refused == 1


def test_records_appended_then_rewritten_with_the_tree_left_are_not_signed(url: str, key: Path) -> None:
    with writer(url, key, every_records=3) as log:
        for n in range(5):  # signed at #1 (the first commit) and #4; #5 not yet
            log.append(decision(n))
        assert log.checkpoints_signed == 2
        denied = record_at(url, 5)
        rechain(url, 5, {**decision(5, "allow"), "id": denied["id"], "time": denied["time"]},
                delete_checkpoints=False)  # fmt: skip
        log.append(decision(6))
        log.append(decision(7))  # a checkpoint falls due: #5..#7 are checked against their leaves
        problems = log.take_problems()
        assert log.checkpoints_signed == 2 and log.checkpoints_refused == 1
    assert len(problems) == 1 and "record #5 is not the Merkle tree's leaf" in problems[0].message


def test_a_record_edited_in_place_after_its_commit_is_not_what_the_writer_signs(
    url: str, key: Path, tmp_path: Path
) -> None:
    """Between its own checkpoints a writer signs the tree and chain it appended, not the stored copy:
    a record edited in place (head left alone) is not read back, and the checkpoint exposes the edit."""
    with writer(url, key, every_records=3) as log:
        for n in range(5):  # signed at #1 (the first commit) and #4
            log.append(decision(n))
        denied = record_at(url, 5)
        forged = {**decision(5, "allow"), "id": denied["id"], "time": denied["time"]}
        store = open_store(url)
        try:
            with store._write():
                store._execute(
                    "UPDATE decisions SET record = ?, verdict = ? WHERE seq = 5", (canonical(forged), "allow")
                )
        finally:
            store.close()
        log.append(decision(6))
        log.append(decision(7))  # due at #7: signed from this writer's own tree and chain
        assert log.take_problems() == [] and log.checkpoints_signed == 3
        note = log.latest_note()
    assert note is not None and note.splitlines()[1] == "7"
    kept = tmp_path / "checkpoint.7"
    kept.write_text(note)
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept),
                       "--verifier-key", vkey(key))  # fmt: skip
    assert code == 1 and "NOT INTACT" in out and "#5" in out, out


def test_a_chain_head_rewritten_at_the_writers_last_checkpoint_is_not_signed(url: str, key: Path) -> None:
    """The writer's own run restarts where the head no longer is the one it signed: records are read back."""
    with writer(url, key, every_records=3) as log:
        for n in range(4):  # signed at #1 and #4
            log.append(decision(n))
        assert log.checkpoints_signed == 2
        denied = record_at(url, 4)
        rechain(url, 4, {**decision(4, "allow"), "id": denied["id"], "time": denied["time"]},
                delete_checkpoints=False)  # fmt: skip
        for n in range(5, 8):  # due at #7
            log.append(decision(n))
        problems = log.take_problems()
        assert log.checkpoints_signed == 2 and log.checkpoints_refused == 1
    assert len(problems) == 1 and "refusing to sign a checkpoint of 7 records" in problems[0].message


def test_an_unsigned_tail_removed_under_a_running_writer_is_not_signed_over(url: str, key: Path) -> None:
    """Records acknowledged as durable after the last checkpoint are deleted and the head is set back
    to the signed one: the writer knows what it committed, refuses to sign and says why."""
    with writer(url, key, every_records=1000, every_seconds=3600) as log:
        for n in range(5):
            log.append(decision(n))
        signed = log.checkpoint()
        for n in range(5, 9):  # #6..#9, acknowledged, not yet in a checkpoint
            log.append(decision(n))
        store = open_store(url)
        try:
            with store._write():
                store._execute("DELETE FROM terms WHERE seq > 5")
                store._execute("DELETE FROM decisions WHERE seq > 5")
                store._execute("DELETE FROM tree_nodes WHERE (idx + 1) * (1 << level) > 5")
                store._execute("UPDATE chain_head SET seq = 5, hash = ? WHERE chain = 'main'", (signed.hash,))
        finally:
            store.close()
        assert log.append(decision(20))  # decisions are still recorded
        with pytest.raises(
            CheckpointRefusedError, match=r"committed up to #9, and its next records went in after #5"
        ):
            log.checkpoint()
        assert log.checkpoints_refused == 1
        log.append(decision(21))
        with pytest.raises(CheckpointRefusedError, match="records this writer committed are gone"):
            log.checkpoint()  # and again, until it is restarted
    assert stored_sizes(url) == [1, 5]  # the first commit's and the one asked for, nothing over the removal


def test_a_long_running_writer_remembers_what_it_signed(url: str, key: Path) -> None:
    with writer(url, key, every_records=1) as log:  # no publishing: only its own memory is left
        for n in range(6):
            log.append(decision(n))
        denied = record_at(url, 5)
        forge(url, {5: {**decision(5, "allow"), "id": denied["id"], "time": denied["time"]}})
        log.append(decision(7))
        problems = log.take_problems()
    assert len(problems) == 1 and "the checkpoint this writer signed last" in problems[0].message
    assert stored_sizes(url) == []


def test_a_legitimate_log_keeps_being_signed_and_published(url: str, key: Path, tmp_path: Path) -> None:
    published = tmp_path / "published"
    for start in (0, 5, 10):  # three writer runs, each checked against the last published checkpoint
        with writer(url, key, DirectoryPublisher(published), every_seconds=0.0) as log:
            for n in range(start, start + 5):
                log.append(decision(n))
            assert log.take_problems() == [] and log.checkpoints_refused == 0
    assert stored_sizes(url) == list(range(1, 16))
    code, out, _ = run("log", "verify", "--store", url, "--checkpoint-dir", str(published),
                       "--verifier-key", vkey(key))  # fmt: skip
    assert code == 0, out
    assert (
        out.count(f"consistent with the kept checkpoint {published}/") == 16
    )  # checkpoint.1 .. checkpoint.15 and checkpoint


# -- publishing to a directory ------------------------------------------------------------


def test_a_numbered_checkpoint_is_never_overwritten_and_the_latest_only_moves_forward(
    url: str, key: Path, tmp_path: Path
) -> None:
    published = tmp_path / "published"
    published.mkdir()
    (published / "checkpoint.1").write_text("someone else's\n")
    with writer(url, key, DirectoryPublisher(published)) as log:
        assert log.append(decision(0))  # recorded, though publishing fails
        problems = log.take_problems()
        assert log.publish_failures == 1
    assert len(problems) == 1 and isinstance(problems[0], PublishError)
    assert problems[0].where == str(published / "checkpoint.1")
    assert "not overwritten" in problems[0].message
    assert (published / "checkpoint.1").read_text() == "someone else's\n"

    publisher = DirectoryPublisher(tmp_path / "other")
    signer = CheckpointSigner.from_file(key)
    big = signer.sign(seq=3, hash="0" * 64, time="t", kind="manual", root=b"\x01" * 32).note
    small = signer.sign(seq=2, hash="0" * 64, time="t", kind="manual", root=b"\x02" * 32).note
    publisher.publish(big, 3)
    publisher.publish(small, 2)
    publisher.publish(big, 3)  # the same again is fine
    assert publisher.latest() == big
    assert (tmp_path / "other" / "checkpoint.2").read_text() == small


def test_an_unwritable_directory_is_reported_and_the_decision_recorded(
    url: str, key: Path, tmp_path: Path
) -> None:
    published = tmp_path / "published"
    (published / ".lock").mkdir(parents=True)  # tests run as root: a mode would not stop the write
    with writer(url, key, DirectoryPublisher(published)) as log:
        assert log.append(decision(0))
        problems = log.take_problems()
        assert log.publish_failures == 1
    assert len(problems) == 1 and isinstance(problems[0], PublishError)
    assert str(published) in problems[0].diagnostics()
    assert "cannot publish the checkpoint of 1 records" in problems[0].message
    assert stored_sizes(url) == [1]  # signed and stored all the same

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with writer(url, key, DirectoryPublisher(blocker / "published"), every_seconds=0.0) as log:
        assert log.append(decision(1))  # recorded; what cannot be checked against is not signed
        problems = log.take_problems()
    assert len(problems) == 1 and isinstance(problems[0], CheckpointRefusedError)
    assert f"published in {blocker / 'published'} cannot be checked against" in problems[0].message
    assert stored_sizes(url) == [1]


def test_checkpoint_dir_errors_name_the_directory(url: str, key: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with writer(url, key) as log:
        log.append(decision(0))
    for directory, words in (
        (tmp_path / "empty", "no published checkpoint"),
        (tmp_path / "missing", "cannot read"),
    ):
        code, _, err = run("log", "verify", "--store", url, "--checkpoint-dir", str(directory),
                           "--verifier-key", vkey(key))  # fmt: skip
        assert code == 3 and str(directory) in err and words in err


# -- publishing to a git ref --------------------------------------------------------------


def test_checkpoints_are_committed_to_a_git_ref_of_another_repository(
    url: str, key: Path, tmp_path: Path
) -> None:
    local = tmp_path / "local.git"
    remote = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", str(local))
    git("init", "--quiet", "--bare", str(remote))
    publishers = (GitPublisher(str(local)), GitPublisher(f"file://{remote}", "refs/heads/audit"))
    with writer(url, key, *publishers, every_seconds=0.0) as log:
        for n in range(3):
            log.append(decision(n))
        assert log.take_problems() == []
    for repo, ref in ((local, "refs/heads/checkpoints"), (remote, "refs/heads/audit")):
        assert git("-C", str(repo), "rev-list", "--count", ref).strip() == "3"  # one commit per checkpoint
        latest = git("-C", str(repo), "cat-file", "blob", f"{ref}:checkpoint")
        assert latest.splitlines()[1] == "3" and latest.startswith("trustgate.dev/decision-log/")
    assert publishers[1].latest() == publishers[0].latest()

    forge(url, {}, drop_after=1)
    with writer(url, key, *publishers, every_seconds=0.0) as log:
        log.append(decision(9))
        problems = log.take_problems()
    assert len(problems) == 1 and "local.git refs/heads/checkpoints" in problems[0].message


def test_a_git_failure_is_reported_with_the_repository(url: str, key: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with writer(url, key, GitPublisher(str(tmp_path / "plain"))) as log:
        assert log.append(decision(0))
        problems = log.take_problems()
    # the published checkpoint cannot be read, so the writer cannot check the log and signs nothing
    assert len(problems) == 1 and isinstance(problems[0], CheckpointRefusedError)
    assert str(tmp_path / "plain") in problems[0].message and "not a git repository" in problems[0].message
    with pytest.raises(PublishError, match=r"cannot push|failed") as raised:
        GitPublisher(f"file://{tmp_path}/missing.git").publish("x\n", 1)
    assert "missing.git" in raised.value.diagnostics()


# -- intervals and configuration ------------------------------------------------------------


def test_new_records_get_a_checkpoint_within_the_interval_without_more_traffic(url: str, key: Path) -> None:
    with writer(url, key, every_seconds=0.3) as log:
        log.append(decision(0))  # a never-checkpointed log gets one at once
        log.append(decision(1))
        assert stored_sizes(url) == [1]
        deadline = time.monotonic() + 5
        while stored_sizes(url) == [1] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored_sizes(url) == [1, 2]
        assert log.checkpoints_signed == 2


def test_publish_config_is_read_and_checked(write: Write, tmp_path: Path) -> None:
    config = write(
        "trustgate.yaml",
        """\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        decisionLog:
          checkpoint:
            key: key.pem
            intervalSeconds: 30
            publish:
              dir: published
              git: {repository: ../audit.git, ref: refs/heads/cp}
        """,
    )
    settings = load_config(config).decision_log
    assert settings.checkpoint_every_seconds == 30
    assert settings.checkpoint_publish_dir == tmp_path / "published"
    assert settings.checkpoint_publish_git == (str(tmp_path / "../audit.git"), "refs/heads/cp")
    url_config = write(
        "url.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\ndecisionLog:\n  checkpoint:\n"
        "    publish: {git: {repository: 'ssh://git@git.example.com/audit.git'}}\n",
    )
    assert load_config(url_config).decision_log.checkpoint_publish_git == (
        "ssh://git@git.example.com/audit.git",
        "refs/heads/checkpoints",
    )
    assert (
        load_config(
            write("d.yaml", "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n")
        ).decision_log.checkpoint_every_seconds
        == 60
    )
    for bad in (
        "publish: {dirs: x}",
        "publish: {git: {ref: refs/heads/x}}",
        "publish: {git: {repository: r, ref: main}}",
    ):
        path = write(
            "bad.yaml",
            f"apiVersion: trustgate.dev/v1alpha1\nkind: Config\ndecisionLog:\n  checkpoint:\n    {bad}\n",
        )
        with pytest.raises(ConfigError) as raised:
            load_config(path)
        assert "publish" in raised.value.diagnostics()


def test_publishing_without_a_key_is_a_config_error(write: Write, url: str) -> None:
    config = write(
        "trustgate.yaml",
        f"""\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        decisionLog:
          url: {url}
          checkpoint:
            publish: {{dir: published}}
        """,
    )
    manifest = write(
        "deploy/pod.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: b}\n"
    )
    code, _, err = run("check", "--no-builtin", "--no-schemas", "-c", str(config), str(manifest))
    assert code == 3 and "decisionLog.checkpoint.publish needs decisionLog.checkpoint.key" in err


def test_check_surfaces_a_refused_checkpoint(write: Write, url: str, key: Path, tmp_path: Path) -> None:
    config = write(
        "trustgate.yaml",
        f"""\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        decisionLog:
          url: {url}
          checkpoint:
            key: {key}
            intervalSeconds: 0.001
            publish: {{dir: published}}
        """,
    )
    manifest = write("deploy/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: b}\n")
    for _ in range(3):
        code, _, err = run("check", "--no-builtin", "--no-schemas", "-c", str(config), str(manifest))
        assert code == 0 and "error" not in err, err
    forge(url, {}, drop_after=1)
    code, _, err = run("check", "--no-builtin", "--no-schemas", "-c", str(config), str(manifest))
    assert code == 0  # the decision stands and is recorded; the refusal is an error line of its own
    assert "recorded in" in err
    assert "trustgate: error:" in err and "refusing to sign a checkpoint" in err
    assert (tmp_path / "published" / "checkpoint").read_text().splitlines()[1] == "3"


# -- a witness (C2SP tlog-cosignature) ------------------------------------------------------


def test_a_cosigned_checkpoint_on_a_latin1_terminal_is_the_signed_note_itself(
    url: str, key: Path, tmp_path: Path
) -> None:
    """Every signature line of a note starts with an em dash, which a Latin-1 terminal cannot show:
    the cosigned note goes out as UTF-8 anyway, and verifies (escaped, it did not, with exit 0)."""
    import json
    import os
    import sys

    witness_key = ed25519_key(tmp_path / "witness.pem")
    with writer(url, key) as log:
        for n in range(3):
            log.append(decision(n))
    checkpoint = tmp_path / "cp3"
    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key), "--output", str(checkpoint))
    assert code == 0, err
    done = subprocess.run(
        [sys.executable, "-c", "from trustgate.cli.main import main; main()", "log", "witness",
         "--checkpoint", str(checkpoint), "--state", str(tmp_path / "state"), "--key", str(witness_key),
         "--verifier-key", vkey(key), "--print-verifier-key"],
        capture_output=True, env={**os.environ, "PYTHONIOENCODING": "latin-1"}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cosigned = done.stdout.decode("utf-8")
    signatures = [line for line in cosigned.splitlines() if line.startswith("\u2014 ")]
    assert len(signatures) == 2 and "\\u2014" not in cosigned  # the log's and the witness's
    witness_vkey = done.stderr.decode().splitlines()[0]
    code, out, _ = run("log", "prove", "#2", "--store", url)
    proof = tmp_path / "decision.json"
    proof.write_text(json.dumps({**json.loads(out), "checkpoint": cosigned}))
    code, out, _ = run(
        "log", "verify-proof", str(proof), "--verifier-key", vkey(key), "--witness-key", witness_vkey
    )
    assert code == 0 and "proven" in out


def test_a_witness_cosigns_consistent_checkpoints_and_refuses_a_forged_one(
    url: str, key: Path, tmp_path: Path
) -> None:
    import json

    witness_key = ed25519_key(tmp_path / "witness.pem")
    state = tmp_path / "witness-state"

    def take(n: int) -> Path:
        path = tmp_path / f"cp{n}"
        code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key), "--output", str(path))
        assert code == 0, err
        return path

    def cosign(checkpoint: Path, *extra: str) -> tuple[int, str, str]:
        return run("log", "witness", "--checkpoint", str(checkpoint), "--state", str(state),
                   "--key", str(witness_key), "--verifier-key", vkey(key), *extra)  # fmt: skip

    with writer(url, key) as log:
        for n in range(3):
            log.append(decision(n))
    code, _, err = cosign(take(3), "--print-verifier-key")
    assert code == 0 and "first checkpoint of this log, trusted" in err, err
    witness_vkey = err.splitlines()[0]
    assert witness_vkey.startswith("trustgate.dev/witness/")

    with writer(url, key) as log:
        for n in range(3, 5):
            log.append(decision(n))
    second = take(5)
    code, out, err = run("log", "prove-consistency", "3", "5", "--store", url)
    assert code == 0, err
    (tmp_path / "proof.json").write_text(out)
    assert json.loads(out)["oldSize"] == 3
    code, cosigned, err = cosign(second, "--proof", str(tmp_path / "proof.json"))  # apart from the log
    assert code == 0 and "extends the 3 records cosigned before" in err, err
    code, _, err = cosign(
        second, "--proof", str(tmp_path / "proof.json")
    )  # the same one again: no proof needed
    assert code == 0, err

    # A proof of one decision, its checkpoint cosigned: checkable with the log's and the witness's key.
    code, out, _ = run("log", "prove", "#2", "--store", url)
    proof = json.loads(out)
    assert proof["treeSize"] == 5
    path = tmp_path / "decision.json"
    path.write_text(json.dumps({**proof, "checkpoint": cosigned}))
    code, out, _ = run(
        "log", "verify-proof", str(path), "--verifier-key", vkey(key), "--witness-key", witness_vkey
    )
    assert code == 0 and "proven" in out
    path.write_text(json.dumps(proof))  # not cosigned
    code, out, _ = run(
        "log", "verify-proof", str(path), "--verifier-key", vkey(key), "--witness-key", witness_vkey
    )
    assert code == 1 and "no valid cosignature" in out

    # Rewritten and extended: the log (no published checkpoint) signs the forged head; the witness does not.
    denied = record_at(url, 2)
    forge(url, {2: {**decision(2, "deny"), "id": denied["id"], "time": denied["time"]}})
    with writer(url, key) as log:
        for n in range(5, 7):
            log.append(decision(n))
    code, out, _ = cosign(take(7), "--store", url)
    assert code == 1 and "NOT COSIGNED" in out and "does not extend the one of 5" in out
    code, out, err = cosign(second, "--proof", str(tmp_path / "nope.json"))
    assert code == 0  # no proof needed for the size it already cosigned
    code, _, err = cosign(tmp_path / "cp7", "--proof", str(tmp_path / "proof.json"))
    assert code == 3 and "the proof is from 3 to 5 records; the witness needs 5 to 7" in err
