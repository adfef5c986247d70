"""A PostgreSQL decision log keeps its promises whatever the server's, database's or role's defaults:
a decision `check` says is recorded survives a crash of the server, and writers sharing the log
queue on the chain lock rather than fail each other's decisions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from support.components import missing
from support.postgres import PGBOUNCER, PgBouncer, PostgresServer, postgres_bindir

from trustgate.cli.main import main
from trustgate.decisions.chain import Verifier
from trustgate.decisions.log import DecisionLog, open_store

POLICY = 'package main\nimport rego.v1\n\ndeny contains "never" if input.kind == "Nope"\n'
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec: {containers: [{name: a}]}\n"


def _server(options: str) -> Iterator[PostgresServer]:
    if postgres_bindir() is None:
        missing("PostgreSQL (initdb)", "run `make dev`: scripts/install-system-deps.sh installs postgresql")
    server = PostgresServer(options=f"-c max_connections=20 {options}", prefix="trustgate-pg-defaults-")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def async_postgres() -> Iterator[PostgresServer]:
    """A server whose default is `synchronous_commit = off`, its WAL writer flushing every 10 s: a
    commit returns before its WAL is on disk unless the session asks otherwise."""
    yield from _server("-c synchronous_commit=off -c wal_writer_delay=10000ms")


@pytest.fixture(
    params=[
        "-c default_transaction_isolation='repeatable read'",
        "-c lock_timeout=100ms",
        "-c statement_timeout=100ms",
        "-c idle_in_transaction_session_timeout=1ms",
    ],
    ids=["repeatable-read", "lock-timeout", "statement-timeout", "idle-in-transaction-timeout"],
)
def waiting_postgres(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """A server whose defaults fail a writer that waits on the chain lock, or that holds its
    transaction open while it computes: transactions at `repeatable read`, short lock or statement
    timeouts, a short idle-in-transaction timeout."""
    yield from _server(request.param)


# The test's own sessions (another writer holding the chain lock, the one watching) wait without limit.
_PATIENT = "-c lock_timeout=0 -c statement_timeout=0 -c idle_in_transaction_session_timeout=0"


@pytest.fixture
def en_us_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[PostgresServer]:
    """A server whose databases may sort text by glibc's `en_US.UTF-8` (the default of many
    installations), built from the `locales` sources into a directory the server reads (LOCPATH)."""
    localedef = shutil.which("localedef")
    if localedef is None or not Path("/usr/share/i18n/locales/en_US").is_file():
        missing("glibc's locale sources (localedef)", "run `make dev`: it installs Debian locales")
    locales = Path(tempfile.mkdtemp(prefix="trustgate-locales-"))
    try:
        locales.chmod(0o755)  # the server runs as nobody when the tests run as root
        subprocess.run(
            [localedef, "-i", "en_US", "-f", "UTF-8", str(locales / "en_US.UTF-8")],
            check=True,
            capture_output=True,
        )
        monkeypatch.setenv("LOCPATH", str(locales))
        yield from _server("")
    finally:
        shutil.rmtree(locales, ignore_errors=True)


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    policy, pod = tmp_path / "main.rego", tmp_path / "pod.yaml"
    policy.write_text(POLICY)
    pod.write_text(POD)
    return ["check", "--no-builtin", "--no-schemas", "-p", str(policy), str(pod)]


def recorded_id(stderr: str) -> str:
    """The id in `trustgate: decision ID recorded in URL`."""
    assert "recorded in" in stderr, stderr
    return stderr.split("decision ", 1)[1].split()[0]


def test_a_recorded_decision_survives_a_crash_of_a_server_that_commits_asynchronously(
    async_postgres: PostgresServer, inputs: list[str]
) -> None:
    url = async_postgres.create_database()
    DecisionLog.open(url).store.close()
    with psycopg.connect(async_postgres.url(), autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # the tables on disk: only the decision can be lost
    result = CliRunner().invoke(main, [*inputs, "--decision-log", url], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    recorded = recorded_id(result.stderr)

    async_postgres.crash_and_restart()  # well within the WAL writer's 10 s

    result = CliRunner().invoke(
        main, ["log", "query", "--store", url, "--format", "json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    assert [row["record"]["id"] for row in json.loads(result.stdout)] == [recorded]


def test_a_writer_that_waited_on_the_chain_lock_records_its_decision_whatever_the_server_defaults(
    waiting_postgres: PostgresServer, inputs: list[str]
) -> None:
    """Another writer holds the chain lock and moves the head while `check` waits for it: under the
    server's `repeatable read` default the waiting append failed ("could not serialize access"),
    under a 100 ms lock or statement timeout the wait was cancelled, and under a 1 ms
    idle-in-transaction timeout the server ended the session mid-append: with the default failure
    policy the check could not be evaluated (exit 3)."""
    url = waiting_postgres.create_database()
    with DecisionLog.open(url) as log:
        first = log.append(
            {"id": "first", "time": "2030-01-01T00:00:00.000000Z", "gate": "ci", "verdict": "allow"}
        )
    other = psycopg.connect(
        url, options=_PATIENT
    )  # as another replica mid-append: the chain lock held, the head moved
    other.execute("SELECT seq FROM chain_head WHERE chain = 'main' FOR UPDATE")
    other.execute("UPDATE chain_head SET seq = seq WHERE chain = 'main'")
    cli = "import sys; from trustgate.cli.main import main; sys.exit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", cli, *inputs, "--decision-log", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with psycopg.connect(url, autocommit=True, options=_PATIENT) as watcher:
            deadline = time.monotonic() + 60
            while not watcher.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'trustgate' "
                "AND wait_event_type = 'Lock'"
            ).fetchall():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "check never waited on the chain lock"
                time.sleep(0.05)
        time.sleep(0.5)  # the lock held past the servers' 100 ms timeouts
        other.commit()
        _, err = proc.communicate(timeout=60)
    finally:
        other.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    recorded = recorded_id(err)
    store = open_store(url, create=False)
    try:
        with store.snapshot():
            ids = [e.id for e in store.entries()]
            report = Verifier(checkpoints=store.checkpoints()).run(store.entries(), store.index_rows())
    finally:
        store.close()
    assert ids == [first, recorded]
    assert report.ok, report.first_problem


def test_an_id_prefix_finds_its_decision_whatever_the_databases_collation(
    en_us_postgres: PostgresServer, inputs: list[str]
) -> None:
    """Under `en_US.UTF-8` the prefix's range ended (U+10FFFF) below the ids it starts: `log show
    PREFIX` said "no decision" for every decision the log held, where SQLite found it."""
    with psycopg.connect(en_us_postgres.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE english TEMPLATE template0 LOCALE 'en_US.UTF-8'")
    url = en_us_postgres.url("english")
    with psycopg.connect(url) as conn:  # not code point order: `-` is ignored, U+10FFFF sorts low
        assert conn.execute("SELECT 'ab' < 'a-c', '0a' || chr(1114111) < '0ab'").fetchone() == (True, True)
    recorded = []
    for _ in range(2):
        result = CliRunner().invoke(main, [*inputs, "--decision-log", url], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        recorded.append(recorded_id(result.stderr))
    common = next(n for n in range(36) if recorded[0][n] != recorded[1][n])
    for decision in recorded:
        for prefix in (decision[: common + 1], decision[:24], decision.upper()[:30], decision):
            result = CliRunner().invoke(
                main, ["log", "show", prefix, "--store", url, "--format", "json"], catch_exceptions=False
            )
            assert result.exit_code == 0, (prefix, result.stderr)
            assert json.loads(result.stdout)["record"]["id"] == decision
    result = CliRunner().invoke(
        main, ["log", "show", recorded[0][:common], "--store", url], catch_exceptions=False
    )
    assert result.exit_code != 0 and "more than one decision" in result.stderr


def test_a_read_only_default_fails_the_decision_saying_so_and_what_to_do(
    postgres_url: str, inputs: list[str]
) -> None:
    """`default_transaction_read_only = on` (the auditor role's setting, or a standby) is not
    overridden: the writer refuses, and says why instead of "check that the server runs"."""
    DecisionLog.open(postgres_url).store.close()
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {database} SET default_transaction_read_only = on")
    result = CliRunner().invoke(main, [*inputs, "--decision-log", postgres_url], catch_exceptions=False)
    assert result.exit_code == 3, result.stderr
    assert "the PostgreSQL session is read-only" in result.stderr
    assert "RESET default_transaction_read_only" in result.stderr and "Traceback" not in result.stderr


LOG_TABLES = [
    "schema_migrations",
    "decisions",
    "terms",
    "checkpoints",
    "chain_head",
    "tree_nodes",
    "daily_counts",
    "daily_seqs",
    "exception_terms",
    "exceptions_seen",
]


def test_tables_made_beside_the_log_in_a_schema_searched_first_are_refused_not_read(
    postgres_url: str, inputs: list[str]
) -> None:
    """The default search_path is `"$user", public`: a schema named after the role, holding copies of
    the log's tables without the newest decision, was read by `log query` (and written by `check`)
    instead of the log, and the decision vanished from every reader."""
    recorded = []
    for _ in range(2):
        result = CliRunner().invoke(main, [*inputs, "--decision-log", postgres_url], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        recorded.append(recorded_id(result.stderr))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA trustgate")  # the role's name: first on the default search_path
        for table in LOG_TABLES:
            conn.execute(f"CREATE TABLE trustgate.{table} (LIKE public.{table} INCLUDING ALL)")  # type: ignore[call-overload]
            conn.execute(f"INSERT INTO trustgate.{table} SELECT * FROM public.{table}")  # type: ignore[call-overload]
        conn.execute("DELETE FROM trustgate.decisions WHERE seq = 2")
    for args in (["log", "query", "--store", postgres_url], [*inputs, "--decision-log", postgres_url]):
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 3, result.stdout + result.stderr
        assert "more than one schema on the search_path (public, trustgate)" in result.stderr
    pinned = postgres_url + "?options=-csearch_path%3Dpublic"  # the way out the error names
    result = CliRunner().invoke(
        main, ["log", "query", "--store", pinned, "--format", "json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    assert [row["record"]["id"] for row in json.loads(result.stdout)] == recorded[::-1]


@pytest.fixture
def pooled_postgres(async_postgres: PostgresServer) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode, two server sessions, in front of a server that commits
    asynchronously by default: a client's transactions may run on either session."""
    if not Path(PGBOUNCER).is_file():
        missing("PgBouncer", "run `make dev`: scripts/install-system-deps.sh installs pgbouncer")
    bouncer = PgBouncer(async_postgres, pool_size=2)
    try:
        yield bouncer
    finally:
        bouncer.stop()


def test_decisions_recorded_through_a_pooler_in_transaction_mode_are_durable_and_none_fail(
    pooled_postgres: PgBouncer, inputs: list[str]
) -> None:
    """Behind PgBouncer's transaction mode the session's settings stayed on the server session that
    ran them: appends that landed on the other one committed with `synchronous_commit = off` (lost
    in a crash, though reported recorded), and psycopg's prepared statements were missing there
    ("prepared statement "_pg3_0" does not exist": the decision failed). Each write transaction
    now sets what it needs, and nothing is prepared on the server."""
    server = pooled_postgres.server
    name = server.create_database().rsplit("/", 1)[1]
    url = pooled_postgres.url(name)
    DecisionLog.open(url).store.close()  # the tables, made through the pooler
    direct = server.url(name)
    with psycopg.connect(direct, autocommit=True) as conn:  # what each append really ran with
        conn.execute("CREATE TABLE seen (seq bigint, sync text, isolation text, backend int)")
        conn.execute(
            "CREATE FUNCTION seen() RETURNS trigger AS $$ BEGIN INSERT INTO seen VALUES (NEW.seq, "
            "current_setting('synchronous_commit'), current_setting('transaction_isolation'), "
            "pg_backend_pid()); RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.execute("CREATE TRIGGER seen AFTER INSERT ON decisions FOR EACH ROW EXECUTE FUNCTION seen()")
        conn.execute("CHECKPOINT")  # the tables on disk: only decisions can be lost
    ids = []
    with DecisionLog.open(url) as log:
        for i in range(12):
            if i == 2:  # another client holds a server session: the next appends run on the other
                other = psycopg.connect(url)
                other.execute("SELECT 1")
            if i == 6:
                other.close()
            record = {
                "id": f"r{i}",
                "time": f"2030-01-01T00:00:{i:02d}.000000Z",
                "gate": "ci",
                "verdict": "allow",
            }
            ids.append(log.append(record))
    result = CliRunner().invoke(main, [*inputs, "--decision-log", url], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    ids.append(recorded_id(result.stderr))

    server.crash_and_restart()  # well within the WAL writer's 10 s

    with psycopg.connect(direct, autocommit=True) as conn:
        seen = conn.execute("SELECT sync, isolation, backend FROM seen ORDER BY seq").fetchall()
        stored = [row[0] for row in conn.execute("SELECT id FROM decisions ORDER BY seq")]
    assert len({backend for _, _, backend in seen}) > 1, "the pooler never moved a transaction"
    assert {(sync, isolation) for sync, isolation, _ in seen} == {("on", "read committed")}
    assert stored == ids
    result = CliRunner().invoke(main, ["log", "verify", "--store", url], catch_exceptions=False)
    assert result.exit_code == 0, result.output
