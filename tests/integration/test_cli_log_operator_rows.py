"""What the database's operator (write access, no signing key) writes is not vouched for, on SQLite and
PostgreSQL: backdated decisions, a chain head set back, a checkpoint signed by a key of their own,
newer checkpoints deleted under a running writer.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.ids import uuid7_at

from trustgate.cli.main import main
from trustgate.decisions.canonical import timestamp, uuid7
from trustgate.decisions.keys import read_signer
from trustgate.decisions.log import CheckpointPolicy, DecisionLog, open_store
from trustgate.decisions.note import TreeHead, split_note
from trustgate.server.http import checkpoint as get_checkpoint


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


def decision(n: int, *, time: str | None = None, record_id: str | None = None) -> dict[str, Any]:
    """An allow as a gate writes it (dated `time`, its id made then, unless given)."""
    return {
        "schema": "trustgate.dev/decision/v1",
        "id": record_id or (uuid7_at(time) if time else uuid7()),
        "time": time or timestamp(),
        "gate": "ci",
        "mode": "enforce",
        "verdict": "allow",
        "exitCode": 0,
        "summary": {"documents": 1, "passed": 1, "failed": 0, "warnings": 0, "errors": 0},
        "subject": {"objects": [{"kind": "Pod", "namespace": "shop", "name": f"app-{n}",
                                 "status": "passed"}], "images": []},
        "findings": [],
    }  # fmt: skip


def fill(url: str, key: Path | None, start: int, stop: int) -> list[str]:
    with DecisionLog.open(url, key=key) as log:
        return [log.append(decision(n)) for n in range(start, stop)]


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The database as its operator reaches it (the store's SQL, no trustgate check)."""
    store = open_store(url)
    try:
        with store._write():
            return store._execute(statement, params)
    finally:
        store.close()


def keep_checkpoint(url: str, key: Path, path: Path) -> str:
    code, out, err = run("log", "checkpoint", "--store", url, "--key", str(key), "--output", str(path),
                         "--print-verifier-key")  # fmt: skip
    assert code == 0, err
    return out.strip().splitlines()[0]


def seconds_before(text: str, seconds: float) -> str:
    moment = dt.datetime.fromisoformat(text) - dt.timedelta(seconds=seconds)
    return timestamp(moment)


# -- records dated before a checkpoint signed earlier -----------------------------------------------


def test_a_decision_backdated_before_a_signed_checkpoint_is_not_signed_and_fails_verify(
    url: str, key: Path, tmp_path: Path
) -> None:
    """The operator appends, with trustgate's own code and no key, an allow dated a year before
    checkpoint #10 (its id made to match): the writer signed it into the log and `verify` said intact."""
    fill(url, key, 1, 11)
    kept = tmp_path / "cp10.txt"
    vkey = keep_checkpoint(url, key, kept)
    signed_at = sql(url, "SELECT max(time) FROM checkpoints WHERE seq = 10")[0][0]
    backdated = seconds_before(signed_at, 365 * 86400)
    with DecisionLog.open(url, key=None) as log:
        forged = log.append(decision(11, time=backdated))

    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key))
    assert code == 1
    assert "refusing to sign a checkpoint of 11 records" in err
    assert f"record #11 ({forged}) is dated {backdated}, before the manual checkpoint" in err
    assert "at #10 that precedes it" in err and "clockSkewSeconds" in err
    assert sql(url, "SELECT max(seq) FROM checkpoints")[0][0] == 10  # nothing signed over it

    # A running writer refuses too, counted and reported like any refusal; the record is still written.
    policy = CheckpointPolicy(every_records=1)
    with DecisionLog(store=open_store(url), signer=read_signer(key), checkpoints=policy) as log:
        log.append(decision(12))
        assert log.checkpoints_refused == 1 and log.checkpoints_signed == 0
        problems = [p.message for p in log.take_problems()]
        assert len(problems) == 1 and problems[0].startswith("refusing to sign a checkpoint of 12 records")

    code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", vkey)
    assert code == 1
    assert out.startswith(f"NOT INTACT: misdated: record #11 ({forged}) is dated {backdated}, before the")
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", vkey, "-o", "json")
    assert code == 1 and '"kind": "misdated"' in out and '"seq": 11' in out
    # The skew is the auditor's to set: a year and a day accepts it.
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", vkey, "--clock-skew", "31622400")
    assert code == 0, out
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        "decisionLog:\n  checkpoint:\n    clockSkewSeconds: 31622400\n"
    )
    assert run("log", "verify", "--store", url, "--verifier-key", vkey, "-c", str(config))[0] == 0


def test_a_record_dated_away_from_its_uuidv7_id_is_misdated(url: str, key: Path) -> None:
    fill(url, None, 1, 4)  # no checkpoint yet: only the id says when the record was made
    dated = seconds_before(timestamp(), 86400)
    with DecisionLog.open(url, key=None) as log:
        forged = log.append(decision(4, time=dated, record_id=uuid7()))
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 1
    assert f"NOT INTACT: misdated: record #4 ({forged}) is dated {dated}, but its id (a UUIDv7)" in out
    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key))
    assert code == 1 and "record #4" in err and "its id (a UUIDv7) was made at" in err


def test_a_record_made_just_before_a_checkpoint_and_committed_after_it_is_not_misdated(
    url: str, key: Path, tmp_path: Path
) -> None:
    """Replicas date records by their own clocks, and a record may wait for the writer while
    another signs: within the clock skew, nothing is wrong."""
    fill(url, key, 1, 6)
    vkey = keep_checkpoint(url, key, tmp_path / "cp5.txt")
    signed_at = sql(url, "SELECT max(time) FROM checkpoints WHERE seq = 5")[0][0]
    with DecisionLog.open(url, key=key) as log:
        log.append(decision(6, time=seconds_before(signed_at, 120)))
    assert run("log", "checkpoint", "--store", url, "--key", str(key))[0] == 0
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", vkey)
    assert code == 0 and out.startswith("intact: 6 records"), out
    # A tighter skew than the wait: the auditor is told, naming the record.
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", vkey, "--clock-skew", "60")
    assert code == 1 and out.startswith("NOT INTACT: misdated: record #6")


# -- `log checkpoint --output` and a chain head set back ----------------------------------------------


def test_checkpoint_output_takes_the_logs_size_from_the_records_not_the_chain_head(
    url: str, key: Path, tmp_path: Path
) -> None:
    fill(url, key, 1, 11)
    assert run("log", "checkpoint", "--store", url, "--key", str(key))[0] == 0  # #10
    fill(url, key, 11, 31)
    assert run("log", "checkpoint", "--store", url, "--key", str(key))[0] == 0  # #30
    sql(url, "DELETE FROM checkpoints WHERE seq > 10")
    sql(url, "UPDATE chain_head SET seq = 10, hash = (SELECT hash FROM decisions WHERE seq = 10)")

    out_file = tmp_path / "cp.txt"
    for extra in ((), ("--allow-behind",)):
        code, _, err = run("log", "checkpoint", "--store", url, "--output", str(out_file), *extra)
        assert code == 3 and not out_file.exists()
        assert "the log does not agree on its size: its chain head (table chain_head) says #10" in err
        assert "its records end at #30, its Merkle tree holds 30 leaves" in err


# -- `log checkpoint --print-verifier-key` without the key ---------------------------------------------


def test_a_verifier_key_read_from_the_database_is_no_trust_anchor(
    url: str, key: Path, tmp_path: Path
) -> None:
    fill(url, key, 1, 11)
    code, out, err = run("log", "checkpoint", "--store", url, "--print-verifier-key")
    assert code == 0 and out.startswith(read_signer(key).note_verifier().vkey())
    assert "read from the database" in err and "no trust anchor" in err

    # The operator signs the head with a key of their own, as a newer row.
    own = read_signer(_key(tmp_path / "operator.pem"))
    store = open_store(url)
    try:
        seq, digest = store.head()
        forged = own.sign(seq=seq, hash=digest, time="2099-01-01T00:00:00.000000Z", kind="manual",
                          root=store.root(seq))  # fmt: skip
        store.add_checkpoint(forged)
    finally:
        store.close()
    code, out, err = run("log", "checkpoint", "--store", url, "--print-verifier-key")
    assert code == 3 and out == ""
    assert "the stored checkpoints are signed by 2 different keys" in err and "--key PATH" in err
    # From the key's holder it still works.
    code, out, _ = run("log", "checkpoint", "--store", url, "--key", str(key), "--print-verifier-key")
    assert code == 0 and out.startswith(read_signer(key).note_verifier().vkey())


# -- `GET /checkpoint` after newer checkpoints are deleted or altered ------------------------------------


class _State:
    def __init__(self, log: DecisionLog) -> None:
        self.decision_log = log


def _size(body: bytes) -> int:
    return TreeHead.parse(split_note(body.decode())[0]).size


def test_get_checkpoint_never_serves_an_older_checkpoint_than_the_writer_signed(url: str, key: Path) -> None:
    fill(url, key, 1, 11)
    assert run("log", "checkpoint", "--store", url, "--key", str(key))[0] == 0  # #10
    with DecisionLog.open(url, key=key) as log:
        for n in range(11, 31):
            log.append(decision(n))
        log.checkpoint()  # #30
        log.take_problems()
        status, body, _ = get_checkpoint(_State(log))  # type: ignore[arg-type]
        assert status == 200 and _size(body) == 30

        # The newest row altered (an older genuine note in it): this writer's own note is served.
        note10 = sql(url, "SELECT note FROM checkpoints WHERE seq = 10")[0][0]
        sql(url, "UPDATE checkpoints SET note = ? WHERE seq = 30", (note10,))
        status, body, _ = get_checkpoint(_State(log))  # type: ignore[arg-type]
        assert status == 200 and _size(body) == 30

        # Deleted: the database's newest is older than what this writer signed.
        sql(url, "DELETE FROM checkpoints WHERE seq > 10")
        status, body, _ = get_checkpoint(_State(log))  # type: ignore[arg-type]
        assert status == 503
        text = body.decode()
        assert (
            "the newest stored checkpoint covers 10 records, but this log's writer signed one of 30" in text
        )
        problems = [p.message for p in log.take_problems()]
        assert len(problems) == 1 and "deleted the newer checkpoints" in problems[0]
