"""`trustgate ui` on PostgreSQL through the read-only role the README documents."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import psycopg
from support.ui_log import build_log, run, serve_ui

# The README's GRANTs, as an operator would run them (trust authentication here: no password).
READ_ONLY_ROLE = """
CREATE ROLE auditor LOGIN;
GRANT CONNECT ON DATABASE {db} TO auditor;
GRANT USAGE ON SCHEMA public TO auditor;
GRANT SELECT ON decisions, terms, checkpoints, chain_head, tree_nodes, schema_migrations,
    daily_counts, daily_seqs, exception_terms, exceptions_seen TO auditor;
ALTER ROLE auditor SET default_transaction_read_only = on;
"""


def test_the_ui_reads_postgresql_as_a_read_only_role(postgres_url: str, tmp_path: Path) -> None:
    log = build_log(tmp_path / "log", url=postgres_url)
    db = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for statement in READ_ONLY_ROLE.format(db=db).split(";"):
            if statement.strip():
                conn.execute(statement)  # type: ignore[call-overload]
    auditor = postgres_url.replace("postgresql://trustgate@", "postgresql://auditor@")
    with psycopg.connect(auditor) as conn, conn.cursor() as cursor:
        try:
            cursor.execute("DELETE FROM decisions")
            raise AssertionError("the auditor role could delete decisions")
        except psycopg.errors.ReadOnlySqlTransaction:
            pass

    with serve_ui(auditor) as server:
        page = httpx.get(server.base + "/decisions?verdict=deny", timeout=30)
        assert page.status_code == 200 and log.ids["bad"] in page.text and log.ids["good"] not in page.text
        proof = httpx.get(f"{server.base}/decisions/{log.ids['bad']}/proof", timeout=30)
        assert proof.status_code == 200
        (tmp_path / "proof.json").write_bytes(proof.content)
        code, out, _ = run("log", "verify-proof", str(tmp_path / "proof.json"), "--verifier-key", log.vkey)
        assert code == 0, out
        assert httpx.get(server.base + "/overview", timeout=30).status_code == 200
        assert httpx.get(server.base + "/export?rule=no-priv", timeout=30).status_code == 200
        job = httpx.post(server.base + "/integrity/verify", timeout=30).headers["location"]
        deadline = time.monotonic() + 30
        while (
            "running" in (text := httpx.get(server.base + job, timeout=30).text)
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        assert 'id="state">intact<' in text


def test_a_lowered_chain_head_on_postgresql_hides_no_record_log_query_shows(
    postgres_url: str, tmp_path: Path
) -> None:
    build_log(tmp_path / "log", url=postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE chain_head SET seq = seq - 1")
    code, out, err = run("log", "query", "--store", postgres_url, "--format", "json")
    assert code == 0, err
    queried = [row["record"]["id"] for row in json.loads(out)]
    with serve_ui(postgres_url) as server:
        listed = httpx.get(server.base + "/decisions", timeout=30).text
        assert [i for i in queried if f"/decisions/{i}" in listed] == queried
        assert 'id="head-disagrees"' in listed and "does not match the records" in listed
