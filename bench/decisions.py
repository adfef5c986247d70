#!/usr/bin/env python3
"""Benchmark the decision log on SQLite and PostgreSQL, side by side.

This script owns: starting a throw-away PostgreSQL 15 server (initdb in a temp
dir, 127.0.0.1, a free port; as `nobody` when run as root), measuring append
throughput through `DecisionLog` with its durability guarantee (each append
returns only after its transaction is committed: SQLite WAL with
`synchronous=FULL`, PostgreSQL with `synchronous_commit=on`, both fsync on),
bulk-loading a log of N records (default 1,000,000) with a correctly computed
chain, and timing queries by image digest and by commit and a full
`log verify` over it. It prints one table with the targets.

It leaves out the CLI start-up (measured by `bench/run.py`).

    python bench/decisions.py                     # 1,000,000 records, both stores
    python bench/decisions.py --records 100000    # quicker
    python bench/decisions.py --stores sqlite     # SQLite only
    python bench/decisions.py --only verify       # load the log and time `log verify` only
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.postgres import PostgresServer  # noqa: E402

from trustgate.decisions.canonical import canonical, timestamp, uuid7  # noqa: E402
from trustgate.decisions.chain import Verifier, entry_hash  # noqa: E402
from trustgate.decisions.log import DecisionLog, open_store, prepare  # noqa: E402
from trustgate.decisions.record import index_terms  # noqa: E402
from trustgate.decisions.store import Filters  # noqa: E402

TARGET_APPENDS_PER_S = 5_000.0  # decisions/s with group commit on SQLite
TARGET_QUERY_MS = 100.0  # by digest and by commit over 1,000,000 records
TARGET_VERIFY_S = 30.0  # `log verify` over 1,000,000 records
APPEND_THREADS = 64  # concurrent callers, as webhook request threads would be
WINDOW = 512  # decisions in flight from one producer using submit()
APPEND_RECORDS = 30_000
BULK_BATCH = 20_000  # rows per transaction while loading


def admission_record(n: int, *, record_id: str | None = None, time_text: str | None = None) -> dict[str, Any]:
    """A record as the admission webhook will write it: one object, one image, sometimes a finding."""
    deny = n % 10 == 0
    return {
        "schema": "trustgate.dev/decision/v1",
        "id": record_id or uuid7(),
        "time": time_text or timestamp(),
        "gate": "admission",
        "mode": "enforce",
        "verdict": "deny" if deny else "allow",
        "exitCode": 1 if deny else 0,
        "summary": {
            "documents": 1,
            "passed": 0 if deny else 1,
            "failed": 1 if deny else 0,
            "warnings": 0,
            "errors": 0,
        },
        "actor": {
            "user": {
                "username": f"system:serviceaccount:team-{n % 50}:deployer",
                "groups": ["system:authenticated"],
            }
        },
        "subject": {
            "operation": "UPDATE",
            "uid": f"{n:08x}-0000-4000-8000-000000000000",
            "commit": hashlib.sha1(str(n // 4).encode()).hexdigest(),
            "objects": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "namespace": f"team-{n % 50}",
                    "name": f"app-{n % 5000}",
                    "status": "failed" if deny else "passed",
                    "inputHash": "sha256:" + hashlib.sha256(str(n).encode()).hexdigest(),
                }
            ],
            "images": [
                {
                    "reference": f"registry.example.com/team-{n % 50}/app-{n % 5000}:1.{n % 97}",
                    "digest": "sha256:" + hashlib.sha256(b"image" + str(n // 3).encode()).hexdigest(),
                    "source": "manifest",
                }
            ],
        },
        "findings": (
            [
                {
                    "rule": "pss-baseline-privileged",
                    "severity": "error",
                    "ruleSeverity": "error",
                    "message": 'container "app" runs privileged',
                    "source": "rego",
                    "path": "spec.template.spec.containers[0].securityContext.privileged",
                    "object": 0,
                }
            ]
            if deny
            else []
        ),
        "exceptions": [],
        "policyRevision": "sha256:" + "5" * 64,
        "inputHash": "sha256:" + hashlib.sha256(b"in" + str(n).encode()).hexdigest(),
        "durationUs": 130 + n % 50,
        "trustgateVersion": "0.1.0",
        "notes": [],
    }


# -- PostgreSQL ------------------------------------------------------------------------------------


# -- measurements --------------------------------------------------------------------------------


def measure_appends(url: str, count: int) -> tuple[float, float]:
    """Decisions per second, each acknowledged only after its commit, two ways.

    Returns:
        (APPEND_THREADS threads each blocking in `append`, as a threaded
        webhook's request threads would; one producer keeping WINDOW decisions
        in flight with `submit` and waiting on each future, as an async server would).
    """
    records = [admission_record(n) for n in range(count)]
    with DecisionLog.open(url) as log, concurrent.futures.ThreadPoolExecutor(APPEND_THREADS) as pool:
        log.append(admission_record(-1))  # open the store and start the writer outside the timing
        started = time.perf_counter()
        ids = list(pool.map(log.append, records, chunksize=16))
        threaded = count / (time.perf_counter() - started)
    assert len(set(ids)) == count
    records = [admission_record(n) for n in range(count)]
    with DecisionLog.open(url) as log:
        log.append(admission_record(-1))
        started = time.perf_counter()
        window: collections.deque[concurrent.futures.Future[str]] = collections.deque()
        acknowledged = 0
        for record in records:
            window.append(log.submit(record))
            if len(window) >= WINDOW:
                window.popleft().result()
                acknowledged += 1
        for future in window:
            future.result()
            acknowledged += 1
        windowed = count / (time.perf_counter() - started)
    assert acknowledged == count
    return threaded, windowed


def _bulk_rows(count: int, start_seq: int, prev: str) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of decisions and terms, in batches, with the chain computed as `Store.append` does.

    Records are varied by substituting into a canonical template: the values
    replaced are plain ASCII strings, so the bytes stay RFC 8785 canonical.
    """
    base = time.time() - count * 0.01  # spread over the past, 10 ms apart
    seq = start_seq
    batch: list[tuple[Any, ...]] = []
    for n in range(count):
        seq += 1
        moment = timestamp(_utc(base + n * 0.01))
        record = admission_record(n, record_id=uuid7(int((base + n * 0.01) * 1000)), time_text=moment)
        item = prepare(record) if n < 50 else None  # checked against the fast path below
        body = canonical(record)
        if item is not None:
            assert item.body == body
        digest = entry_hash(prev, body, seq)
        batch.append(
            (
                seq,
                record["id"],
                moment,
                record["gate"],
                record["verdict"],
                body,
                prev,
                digest,
                index_terms(record),
            )
        )
        prev = digest
        if len(batch) == BULK_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _utc(seconds: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def bulk_load(url: str, count: int) -> float:
    """Load `count` records after what is there; returns seconds."""
    store = open_store(url)
    started = time.perf_counter()
    seq, prev = store.head()
    last_seq, last_hash = seq, prev
    for batch in _bulk_rows(count, seq, prev):
        decisions = [row[:8] for row in batch]
        terms = [(kind, value, row[0]) for row in batch for kind, value in row[8]]
        if store.dialect == "sqlite":
            with store._write():
                store._executemany(
                    "INSERT INTO decisions (seq, id, time, gate, verdict, record, prev, hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    decisions,
                )
                store._executemany("INSERT INTO terms (kind, value, seq) VALUES (?, ?, ?)", terms)
        else:
            conn = store._conn  # type: ignore[attr-defined]
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(
                    "COPY decisions (seq, id, time, gate, verdict, record, prev, hash) FROM STDIN"
                ) as copy:
                    for row in decisions:
                        copy.write_row(row)
                with cur.copy("COPY terms (kind, value, seq) FROM STDIN") as copy:
                    for row in terms:
                        copy.write_row(row)
        last_seq, last_hash = batch[-1][0], batch[-1][7]
        print(f"  loaded {last_seq:,} records", end="\r", file=sys.stderr, flush=True)
    with store._write():
        store._execute("UPDATE chain_head SET seq = ?, hash = ? WHERE chain = 'main'", (last_seq, last_hash))
    if store.dialect == "postgresql":
        store._execute("ANALYZE")
    else:
        store._execute("ANALYZE")
    store.close()
    print(file=sys.stderr)
    return time.perf_counter() - started


def measure_queries(url: str, count: int) -> tuple[float, float, int]:
    """Median ms of 20 queries by digest and 20 by commit (each returning its records)."""
    store = open_store(url, create=False)
    by_digest, by_commit, found = [], [], 0
    for i in range(20):
        n = (i * 7919 * 37) % count
        digest = "sha256:" + hashlib.sha256(b"image" + str(n // 3).encode()).hexdigest()
        commit = hashlib.sha1(str(n // 4).encode()).hexdigest()
        started = time.perf_counter()
        rows = [e.record() for e in store.query(Filters(images=(digest,)), limit=100)]
        by_digest.append((time.perf_counter() - started) * 1000)
        found += len(rows)
        started = time.perf_counter()
        rows = [e.record() for e in store.query(Filters(commits=(commit[:12],)), limit=100)]
        by_commit.append((time.perf_counter() - started) * 1000)
        found += len(rows)
    store.close()
    return statistics.median(by_digest), statistics.median(by_commit), found


def measure_verify(url: str) -> tuple[float, int, bool]:
    store = open_store(url, create=False)
    started = time.perf_counter()
    with store.snapshot():
        report = Verifier(checkpoints=store.checkpoints()).run(store.entries(), store.index_rows())
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed, report.records, report.ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the query/verify log")
    parser.add_argument("--appends", type=int, default=APPEND_RECORDS, help="records in the append test")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--only",
        choices=["verify"],
        help="measure only this (the log of --records is still loaded first)",
    )
    args = parser.parse_args()

    results: dict[str, dict[str, Any]] = {}
    work = Path(tempfile.mkdtemp(prefix="trustgate-bench-log-"))
    pg = None
    if "postgresql" in args.stores:
        try:
            pg = PostgresServer(
                options="-c synchronous_commit=on -c shared_buffers=256MB -c max_wal_size=4GB",
                prefix="trustgate-bench-pg-",
            )
        except RuntimeError as e:
            sys.exit(str(e))
    try:
        for name in args.stores.split(","):
            if name == "sqlite":
                append_url, big_url = f"sqlite:///{work / 'append.db'}", f"sqlite:///{work / 'big.db'}"
            else:
                assert pg is not None
                append_url, big_url = pg.create_database("append_test"), pg.create_database("big")
            appends = windowed = digest_ms = commit_ms = float("nan")
            found = 0
            if args.only is None:
                print(
                    f"{name}: appending {args.appends:,} decisions from {APPEND_THREADS} threads",
                    file=sys.stderr,
                )
                appends, windowed = measure_appends(append_url, args.appends)
            print(f"{name}: loading {args.records:,} records", file=sys.stderr)
            load_s = bulk_load(big_url, args.records)
            if args.only is None:
                digest_ms, commit_ms, found = measure_queries(big_url, args.records)
            print(f"{name}: verifying", file=sys.stderr)
            verify_s, verified, ok = measure_verify(big_url)
            size = (work / "big.db").stat().st_size if name == "sqlite" else None
            results[name] = {
                "appends_per_s": appends,
                "appends_windowed_per_s": windowed,
                "load_s": load_s,
                "query_digest_ms": digest_ms,
                "query_commit_ms": commit_ms,
                "query_rows": found,
                "verify_s": verify_s,
                "verified_records": verified,
                "verify_ok": ok,
                "db_bytes": size,
            }
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    n = f"{args.records:,}"
    print(f"\n| measure | target | {' | '.join(results)} |")
    print(f"| --- | --- |{' --- |' * len(results)}")
    rows = [
        (
            f"append, durable, 1 producer, {WINDOW} in flight (decisions/s)",
            f">= {TARGET_APPENDS_PER_S:,.0f}",
            "appends_windowed_per_s",
            "{:,.0f}",
        ),
        (
            f"append, durable, {APPEND_THREADS} threads (decisions/s)",
            f">= {TARGET_APPENDS_PER_S:,.0f}",
            "appends_per_s",
            "{:,.0f}",
        ),
        (
            f"query by image digest, {n} records (ms, median of 20)",
            f"<= {TARGET_QUERY_MS:.0f}",
            "query_digest_ms",
            "{:.1f}",
        ),
        (
            f"query by commit (abbreviated), {n} records (ms)",
            f"<= {TARGET_QUERY_MS:.0f}",
            "query_commit_ms",
            "{:.1f}",
        ),
        (f"log verify, {n} records (s)", f"<= {TARGET_VERIFY_S:.0f}", "verify_s", "{:.1f}"),
        (f"bulk load of {n} records with the chain (s)", "-", "load_s", "{:.1f}"),
    ]
    for label, target, key, fmt in rows:
        cells = [fmt.format(r[key]) if r[key] == r[key] else "-" for r in results.values()]  # nan: not run
        print(f"| {label} | {target} | {' | '.join(cells)} |")
    failed = [
        name for name, r in results.items() if not r["verify_ok"] or r["verified_records"] != args.records
    ]
    if failed:
        print(f"verify did not pass on: {', '.join(failed)}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
