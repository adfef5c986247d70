"""What the database's operator (write access, no signing key) writes is not vouched for, on SQLite and
PostgreSQL: backdated decisions, a chain head set back, a checkpoint signed by a key of their own,
newer checkpoints deleted under a running writer.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
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
from trustgate.decisions.log import _STORED_CHECKED, CheckpointPolicy, DecisionLog, open_store
from trustgate.decisions.note import TreeHead, split_note
from trustgate.decisions.publish import DirectoryPublisher
from trustgate.errors import DecisionLogError
from trustgate.server.http import checkpoint as get_checkpoint
from trustgate.server.metrics import Metrics


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


@pytest.mark.parametrize("manual", [True, False], ids=["kept-checkpoint", "prune-only"])
def test_a_decision_backdated_after_a_prune_is_not_signed_and_fails_verify(
    url: str, key: Path, tmp_path: Path, manual: bool
) -> None:
    """A prune removes the records a checkpoint covers; the operator then appends an allow dated a year
    back: the writer signed it and `verify` said intact (the bound needed the removed records)."""
    fill(url, key, 1, 11)
    kept = tmp_path / "cp10.txt"
    vkey = keep_checkpoint(url, key, kept) if manual else ""
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    code, _, err = run("log", "prune", "--store", url, "--before", tomorrow, "--key", str(key))
    assert code == 0, err
    signed_at = sql(url, "SELECT min(time) FROM checkpoints WHERE seq = 10")[0][0]
    backdated = seconds_before(signed_at, 365 * 86400)
    with DecisionLog.open(url, key=None) as log:
        forged = log.append(decision(11, time=backdated))

    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key))
    assert code == 1, err
    assert f"record #11 ({forged}) is dated {backdated}, before the" in err
    assert sql(url, "SELECT max(seq) FROM checkpoints")[0][0] == 10  # nothing signed over it
    if manual:
        code, out, _ = run("log", "verify", "--store", url, "--checkpoint", str(kept), "--verifier-key", vkey)
        assert code == 1
        assert out.startswith(f"NOT INTACT: misdated: record #11 ({forged}) is dated {backdated}, before the")


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
        self.metrics = Metrics(1)


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


# -- times not in trustgate's form, clocks ahead, the writer's own records ----------------------------


@pytest.mark.parametrize(
    "written",
    ["2025-06-01T12:00:00.000000", "2025-06-02", "2025-06-01T12:00:00.000000-23:59", "2025-06-01T12:00:00Z"],
)
def test_a_time_not_in_trustgates_own_form_is_misdated_and_malformed(
    url: str, key: Path, tmp_path: Path, written: str
) -> None:
    """Without a UTC offset (or a date alone) no bound applied to the time, and with one of -23:59 it
    sorted a day early as text: a backdated allow the writer signed, `verify --deep` called intact and
    `log prove` proved."""
    fill(url, key, 1, 11)
    vkey = keep_checkpoint(url, key, tmp_path / "cp10.txt")
    with DecisionLog.open(url, key=None) as log:
        forged = log.append(decision(11, time=written, record_id=uuid7_at("2025-06-01T12:00:00+00:00")))

    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key))
    assert code == 1 and f"record #11 ({forged}) has the time {written!r}, not one trustgate writes" in err
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", vkey, "--deep",
                       "--checkpoint", str(tmp_path / "cp10.txt"))  # fmt: skip
    assert code == 1 and out.startswith(f"NOT INTACT: misdated: record #11 ({forged}) has the time")
    code, _, err = run("log", "prove", forged, "--store", url, "--verifier-key", vkey)
    assert code == 3 and "is not a UTC time as trustgate writes it" in err
    code, _, err = run("log", "query", "--store", url, "--until", "2025-12-31")
    assert "decision #11: its stored record is malformed" in err


def test_a_checkpoint_signed_by_a_clock_ahead_does_not_misdate_the_records_after_it(
    url: str, key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`log checkpoint` run where the clock was 20 minutes ahead: every honest record after it was
    "misdated", and every later checkpoint refused, until raising the skew for the whole log."""
    fill(url, key, 1, 6)
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    with DecisionLog.open(url, key=key) as log:
        monkeypatch.setattr("trustgate.decisions.log.timestamp", lambda: timestamp(ahead))
        assert log.checkpoint().time == timestamp(ahead)  # #5
        monkeypatch.undo()
    fill(url, None, 6, 9)  # right clocks, at once
    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key))
    assert code == 0, err
    vkey = read_signer(key).note_verifier().vkey()
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", vkey)
    assert code == 0 and out.startswith("intact: 8 records"), out

    # The bound is the newest record #5 covers: one backdated before it is still caught.
    newest = sql(url, "SELECT max(time) FROM decisions WHERE seq <= 8")[0][0]
    backdated = seconds_before(newest, 3600)
    with DecisionLog.open(url, key=None) as log:
        forged = log.append(decision(9, time=backdated))
    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key))
    assert code == 1 and f"record #9 ({forged}) is dated {backdated}, before the manual checkpoint" in err
    assert "(or the newest record it covers, " in err


def test_a_record_dated_after_the_checkpoint_that_first_covers_it_is_misdated(
    url: str, key: Path, tmp_path: Path
) -> None:
    fill(url, key, 1, 4)
    vkey = keep_checkpoint(url, key, tmp_path / "cp3.txt")
    later = timestamp(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    with DecisionLog.open(url, key=None) as log:
        forged = log.append(decision(4, time=later))
    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key))
    assert code == 1 and f"record #4 ({forged}) is dated {later}, after the manual checkpoint being" in err
    # Signed once with a wider skew (the way past a wrong clock's records): `verify` still names it.
    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key), "--clock-skew", "7200")
    assert code == 0, err
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", vkey)
    assert code == 1 and out.startswith(f"NOT INTACT: misdated: record #4 ({forged}) is dated {later}, after")
    assert run("log", "verify", "--store", url, "--verifier-key", vkey, "--clock-skew", "7200")[0] == 0


def test_a_running_writer_refuses_to_sign_over_its_own_misdated_records(
    url: str, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock stepped back 10 minutes under a running writer: it signed over its own records (it does
    not read them back), which `log verify` then called misdated."""
    policy = CheckpointPolicy(every_records=1)
    with DecisionLog(store=open_store(url), signer=read_signer(key), checkpoints=policy) as log:
        for n in range(1, 4):
            log.append(decision(n))
        assert log.checkpoints_signed == 3
        back = seconds_before(timestamp(), 600)
        monkeypatch.setattr("trustgate.decisions.log.timestamp", lambda: back)
        stepped = log.append(decision(4, time=back, record_id=uuid7()))  # ids never go back
        monkeypatch.undo()
        assert (log.checkpoints_signed, log.checkpoints_refused) == (3, 1)
        problems = [p.message for p in log.take_problems()]
        assert len(problems) == 1 and problems[0].startswith("refusing to sign a checkpoint of 4 records")
        assert f"record #4 ({stepped}) is dated {back}, before the periodic checkpoint" in problems[0]
        log.append(decision(5))  # and it stays refused: the record is still there
        assert log.checkpoints_signed == 3


def test_a_clock_skew_of_zero_accepts_honest_records_and_nan_is_refused(
    url: str, key: Path, tmp_path: Path
) -> None:
    """Ids hold milliseconds and times microseconds: with a skew of 0 every honest record was forged."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=456789) - dt.timedelta(seconds=2)
    with DecisionLog.open(url, key=key) as log:
        for n in range(1, 6):  # the id and the time of one reading of the clock, as a gate makes them
            log.append(decision(n, time=timestamp(start + dt.timedelta(milliseconds=n))))
    vkey = keep_checkpoint(url, key, tmp_path / "cp5.txt")
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", vkey, "--clock-skew", "0")
    assert code == 0 and out.startswith("intact: 5 records"), out
    for bad in ("nan", "inf", "-1"):
        code, _, err = run("log", "verify", "--store", url, "--verifier-key", vkey, "--clock-skew", bad)
        assert code == 2 and "--clock-skew" in err, err
    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(key), "--clock-skew", "nan")
    assert code == 2 and "--clock-skew" in err
    config = tmp_path / "trustgate.yaml"
    for value in (".nan", "1e300"):
        config.write_text(
            "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
            f"decisionLog:\n  checkpoint:\n    clockSkewSeconds: {value}\n"
        )
        code, out, err = run("log", "verify", "--store", url, "--verifier-key", vkey, "-c", str(config))
        assert code == 3 and f"{config}:5" in err and out == "", (out, err)


# -- deleted checkpoint rows, a restart, `--output` against what was published -------------------------


def _publishing(tmp_path: Path, key: Path) -> Path:
    config = tmp_path / "publishing.yaml"
    (tmp_path / "published").mkdir(exist_ok=True)
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        f"decisionLog:\n  checkpoint:\n    key: {key}\n    publish:\n      dir: {tmp_path / 'published'}\n"
    )
    return config


def test_deleted_checkpoint_rows_are_named_by_verify_and_stop_the_writer(
    url: str, key: Path, tmp_path: Path
) -> None:
    """Deleting the stored checkpoints took their signed times, the only bound on a backdated record:
    a writer without memory signed over one, and `verify` with every kept checkpoint said intact."""
    config = _publishing(tmp_path, key)
    fill(url, key, 1, 11)
    code, _, err = run(
        "log", "checkpoint", "--store", url, "-c", str(config), "--output", str(tmp_path / "cp10")
    )
    assert code == 0, err
    fill(url, key, 11, 21)
    assert (
        run("log", "checkpoint", "--store", url, "-c", str(config), "--output", str(tmp_path / "cp20"))[0]
        == 0
    )
    with DecisionLog.open(url, key=None) as log:
        log.append(decision(21, time="2025-06-01T12:00:00.000000Z"))
    sql(url, "DELETE FROM checkpoints")

    vkey = read_signer(key).note_verifier().vkey()
    kept = ("--checkpoint", str(tmp_path / "cp10"), "--checkpoint", str(tmp_path / "cp20"))
    code, out, _ = run("log", "verify", "--store", url, "--verifier-key", vkey, *kept)
    assert code == 1
    said = f"the kept checkpoint {tmp_path / 'cp10'} (10 records) is not among the stored checkpoints"
    assert out.startswith(f"NOT INTACT: checkpoint: {said}")
    code, _, err = run("log", "checkpoint", "--store", url, "-c", str(config))
    assert code == 1
    assert (
        f"the checkpoint published in {tmp_path / 'published'} covers 20 records, but the newest stored"
        in err
    )
    assert sql(url, "SELECT count(*) FROM checkpoints")[0][0] == 0  # nothing signed


def test_get_checkpoint_after_a_restart_is_never_older_than_the_published_one(
    url: str, key: Path, tmp_path: Path
) -> None:
    from trustgate.decisions.publish import DirectoryPublisher

    (tmp_path / "published").mkdir()
    policy = CheckpointPolicy(publish=(DirectoryPublisher(tmp_path / "published"),))
    with DecisionLog(store=open_store(url), signer=read_signer(key), checkpoints=policy) as log:
        for n in range(1, 31):
            log.append(decision(n))
            if n in (10, 30):
                log.checkpoint()  # published
    sql(url, "DELETE FROM checkpoints WHERE seq > 10")
    with DecisionLog(store=open_store(url), signer=read_signer(key), checkpoints=policy) as log:  # restarted
        status, body, _ = get_checkpoint(_State(log))  # type: ignore[arg-type]
        assert status == 503
        assert "the newest stored checkpoint covers 10 records, but this log's writer signed one of 30" in (
            body.decode()
        )


def test_checkpoint_output_compares_with_the_newest_published_checkpoint(
    url: str, key: Path, tmp_path: Path
) -> None:
    """The chain head, the records and the tree are unsigned rows: cut back together to #10, `--output`
    kept #10 as current, and a rewrite of #15 then verified against it."""
    config = _publishing(tmp_path, key)
    fill(url, key, 1, 11)
    assert run("log", "checkpoint", "--store", url, "-c", str(config))[0] == 0  # #10
    fill(url, key, 11, 31)
    assert run("log", "checkpoint", "--store", url, "-c", str(config))[0] == 0  # #30, published
    sql(url, "DELETE FROM checkpoints WHERE seq > 10")
    sql(url, "DELETE FROM tree_nodes WHERE level = 0 AND idx >= 10")
    sql(url, "DELETE FROM decisions WHERE seq > 10")
    sql(url, "UPDATE chain_head SET seq = 10, hash = (SELECT hash FROM decisions WHERE seq = 10)")

    reader = tmp_path / "reader.yaml"  # the auditor's: where checkpoints are published, no key
    reader.write_text(config.read_text().replace(f"    key: {key}\n", ""))
    kept = tmp_path / "kept.txt"
    code, _, err = run("log", "checkpoint", "--store", url, "-c", str(reader), "--output", str(kept))
    assert code == 3 and not kept.exists()
    assert (
        f"the checkpoint published in {tmp_path / 'published'} covers 30 records, but the newest stored"
        in err
    )
    # Without a published one to compare with, it says what "current" rests on.
    code, _, err = run("log", "checkpoint", "--store", url, "--output", str(kept))
    assert code == 0 and "the newest checkpoint is as the database says" in err, err


def test_a_checkpoints_time_is_taken_when_the_head_is_read(
    url: str, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the records back took about 10 µs each before the time was taken: on a large log, the
    records other writers committed meanwhile were dated before the checkpoint that did not cover them."""
    fill(url, None, 1, 4)
    read = timestamp()
    clock = [read]
    monkeypatch.setattr("trustgate.decisions.log.timestamp", lambda: clock[0])
    checked = DecisionLog._check_records

    def slow(self: DecisionLog, *args: Any, **kwargs: Any) -> Any:
        result = checked(self, *args, **kwargs)
        clock[0] = seconds_before(read, -3600)  # the check took an hour
        return result

    monkeypatch.setattr(DecisionLog, "_check_records", slow)
    with DecisionLog.open(url, key=key) as log:
        assert log.checkpoint().time == read


def test_a_record_that_waited_longer_than_half_the_skew_is_not_written(url: str, key: Path) -> None:
    """A replica cut off from the database committed, when it came back, records it had dated and queued
    long before: after another replica's checkpoint they were misdated, and every writer refused every
    later checkpoint for good. Now a record that waited longer than half the skew fails (not written)."""
    policy = CheckpointPolicy(clock_skew=2.0)  # a record may wait 1 s
    holder = open_store(url)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:  # another session holds the chain lock (an unreachable path, a long prune)
        with holder._write():
            locked.set()
            release.wait()

    with DecisionLog(store=open_store(url), signer=read_signer(key), checkpoints=policy) as log:
        log.append(decision(1))
        thread = threading.Thread(target=hold)
        thread.start()
        try:
            assert locked.wait(10)
            waiting = log.submit(decision(2))
            time.sleep(1.5)  # longer than the bound: the outcome does not depend on the machine's speed
        finally:
            release.set()
            thread.join()
            holder.close()
        with pytest.raises(DecisionLogError, match="waited in the writer's queue") as caught:
            waiting.result(timeout=30)
        assert "half the allowed clock skew of 2 s" in caught.value.message
        assert log.write_failures == 1
    assert sql(url, "SELECT count(*) FROM decisions")[0][0] == 1  # not written


def _store_checkpoint(url: str, checkpoint: Any) -> None:
    store = open_store(url)
    try:
        store.add_checkpoint(checkpoint)
    finally:
        store.close()


def test_a_forged_checkpoint_row_does_not_stop_a_restarted_writers_checkpoints(url: str, key: Path) -> None:
    """One row with a bogus signature, a huge seq and a far-future time: a restarted writer signed no
    periodic checkpoint and said nothing (it took the row, unverified, as its last checkpoint)."""
    fill(url, key, 1, 6)
    sql(url, "INSERT INTO checkpoints (seq, hash, time, kind, key_id, public_key, signature, note) VALUES "
             "(1000000000, 'x', '9999-12-31T23:59:59.999999Z', 'periodic', 'x', 'x', 'x', '')")  # fmt: skip
    policy = CheckpointPolicy(every_records=3, every_seconds=3600)
    with DecisionLog(store=open_store(url), signer=read_signer(key), checkpoints=policy) as log:
        for n in range(6, 12):
            log.append(decision(n))
        assert log.checkpoints_signed >= 1 and log.checkpoints_refused == 0


def test_a_checkpoint_signed_by_a_clock_ahead_does_not_stop_a_restarted_writers_checkpoints(
    url: str, key: Path
) -> None:
    """A `log checkpoint` signed by a clock a day ahead: a restarted writer counted the interval from a
    day ahead and signed no periodic checkpoint for a day. Its time now counts as now."""
    fill(url, key, 1, 6)
    signer = read_signer(key)
    store = open_store(url)
    seq, digest = store.head()
    root = store.root(seq)
    store.close()
    ahead = timestamp(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    _store_checkpoint(url, signer.sign(seq=seq, hash=digest, time=ahead, kind="manual", root=root))
    policy = CheckpointPolicy(every_records=1_000_000, every_seconds=0)
    with DecisionLog(store=open_store(url), signer=signer, checkpoints=policy) as log:
        log.append(decision(6))
        assert log.checkpoints_signed == 1 and log.checkpoints_refused == 0


def test_a_trusted_checkpoint_past_the_head_is_a_counted_refusal(url: str, key: Path) -> None:
    """A checkpoint of this key covering more records than the log holds (records removed): the restarted
    writer signed nothing and said nothing."""
    fill(url, key, 1, 6)
    signer = read_signer(key)
    _store_checkpoint(url, signer.sign(seq=100, hash="0" * 64, time=timestamp(), kind="manual"))
    policy = CheckpointPolicy(every_records=1, every_seconds=3600)
    with DecisionLog(store=open_store(url), signer=signer, checkpoints=policy) as log:
        log.append(decision(6))
        assert log.checkpoints_refused == 1 and log.checkpoints_signed == 0
        problems = [p.message for p in log.take_problems()]
        assert len(problems) == 1 and "covers 100 records, the log now has 6" in problems[0]


def test_checkpoint_output_while_a_writer_signs_does_not_report_a_cut_back_log(
    url: str, key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--output` read the stored checkpoints, then the published one: a checkpoint a running writer
    stored and published in between read as "someone ... cut the log back". A writer stores before it
    publishes, so the published one is read first."""
    config = _publishing(tmp_path, key)
    fill(url, key, 1, 11)
    assert run("log", "checkpoint", "--store", url, "-c", str(config))[0] == 0  # #10, published
    fill(url, None, 11, 16)
    real_latest = DirectoryPublisher.latest
    signed: list[int] = []

    def latest_while_a_writer_signs(self: DirectoryPublisher) -> str | None:
        if not signed:  # the writer signs (stores, then publishes) #15 at this moment
            signed.append(1)
            assert run("log", "checkpoint", "--store", url, "-c", str(config))[0] == 0
        return real_latest(self)

    monkeypatch.setattr(DirectoryPublisher, "latest", latest_while_a_writer_signs)
    reader = tmp_path / "reader.yaml"
    reader.write_text(config.read_text().replace(f"    key: {key}\n", ""))
    kept = tmp_path / "kept.txt"
    code, _, err = run("log", "checkpoint", "--store", url, "-c", str(reader), "--output", str(kept))
    assert code == 0, err
    assert "cut the log back" not in err and "checkpoint at #15" in err


def test_checkpoint_output_refuses_a_published_checkpoint_that_does_not_verify(
    url: str, key: Path, tmp_path: Path
) -> None:
    """A published note signed by another key said nothing about the log, yet its size was compared."""
    config = _publishing(tmp_path, key)
    fill(url, key, 1, 11)
    assert run("log", "checkpoint", "--store", url, "-c", str(config))[0] == 0
    other = _key(tmp_path / "other.pem")
    published = tmp_path / "published"
    store = open_store(url)
    root = store.root(5)
    store.close()
    foreign = read_signer(other).sign(seq=5, hash="0" * 64, time=timestamp(), kind="manual", root=root)
    (published / "checkpoint").write_text(foreign.note)
    reader = tmp_path / "reader.yaml"
    reader.write_text(config.read_text().replace(f"    key: {key}\n", ""))
    kept = tmp_path / "kept.txt"
    code, _, err = run("log", "checkpoint", "--store", url, "-c", str(reader), "--output", str(kept))
    assert code == 3 and not kept.exists()
    assert "does not verify with the key of the latest stored one" in err


def test_a_new_key_signs_a_pruned_log_with_many_checkpoints_since_the_prune(url: str, key: Path) -> None:
    """Key rotation on a pruned log: the new key's writer looked for the prune anchor only among the
    newest stored checkpoints, and with more since the prune it read the chain from the genesis:
    "records #1..#10 are missing ... someone rewrote"."""
    fill(url, key, 1, 11)
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    assert run("log", "prune", "--store", url, "--before", tomorrow, "--key", str(key))[0] == 0
    with DecisionLog.open(url, key=key) as log:
        for n in range(11, 11 + _STORED_CHECKED + 2):
            log.append(decision(n))
            log.checkpoint()
    new_key = _key(key.with_name("new-key.pem"))
    code, _, err = run("log", "checkpoint", "--store", url, "--key", str(new_key))
    assert code == 0, err


def test_a_newer_checkpoint_another_writer_signed_meanwhile_is_no_removal(
    url: str, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two honest replicas: one read the head, the other appended and signed a newer checkpoint before
    the first checked it; the first refused: "records were removed. Someone with write access..."."""
    fill(url, key, 1, 6)
    signer = read_signer(key)
    policy = CheckpointPolicy(every_records=1, every_seconds=3600)
    always = CheckpointPolicy(every_records=1, every_seconds=0)  # a checkpoint is due at every try
    with DecisionLog(store=open_store(url), signer=signer, checkpoints=always) as first:
        first.append(decision(6))
        stale = first.store.head()
        with DecisionLog(store=open_store(url), signer=signer, checkpoints=policy) as other:
            other.append(decision(7))
            other.append(decision(8))
            other.checkpoint()  # #8
        refused = first.checkpoints_refused
        first._last_attempt = None
        first._periodic_checkpoint(*stale)  # the head it read before the other signed
        assert first.checkpoints_refused == refused and first.take_problems() == []

        real_head = first.store.head
        heads = iter([stale])
        monkeypatch.setattr(first.store, "head", lambda: next(heads, None) or real_head())
        assert first.checkpoint().seq == 8  # read again
