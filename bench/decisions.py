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
    python bench/decisions.py --only appends      # durable appends only (no 1,000,000-record log)
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
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from support.postgres import PostgresServer  # noqa: E402

from trustgate.decisions import merkle  # noqa: E402
from trustgate.decisions.canonical import timestamp, uuid7  # noqa: E402
from trustgate.decisions.chain import CheckpointSigner, Verifier  # noqa: E402
from trustgate.decisions.log import DecisionLog, open_store, prepare  # noqa: E402
from trustgate.decisions.store import Filters, Prepared  # noqa: E402
from trustgate.decisions.vouch import cover  # noqa: E402

SIGNER = CheckpointSigner(private_key=Ed25519PrivateKey.generate())  # a throw-away checkpoint key

TARGET_APPENDS_PER_S = 5_000.0  # decisions/s with group commit on SQLite
TARGET_QUERY_MS = 100.0  # by digest and by commit over 1,000,000 records
TARGET_VERIFY_S = 30.0  # `log verify` over 1,000,000 records
TARGET_PROVE_MS = 5.0  # `log prove` on a log of 1,000,000 records (without the CLI start-up)
TARGET_CONSISTENCY_MS = 50.0  # a consistency check on a log of 1,000,000 records
APPEND_THREADS = 64  # concurrent callers, as webhook request threads would be
WINDOW = 512  # decisions in flight from one producer using submit()
APPEND_RECORDS = 30_000
BULK_BATCH = 20_000  # records per transaction while loading


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


def _log(url: str) -> DecisionLog:
    """A writer as a gate runs it: signed checkpoints at the default interval (every 10,000 records)."""
    return DecisionLog(store=lambda: open_store(url), url=url, signer=SIGNER)


def measure_appends(url: str, count: int) -> tuple[float, float]:
    """Decisions per second, each acknowledged only after its commit, two ways.

    Returns:
        (APPEND_THREADS threads each blocking in `append`, as a threaded
        webhook's request threads would; one producer keeping WINDOW decisions
        in flight with `submit` and waiting on each future, as an async server would).
    """
    records = [admission_record(n) for n in range(count)]
    ids: list[str] = []
    with _log(url) as log:
        log.append(admission_record(-1))  # open the store and start the writer outside the timing

        def request_thread(k: int) -> None:  # appends its share one by one, as a request thread would
            ids.extend([log.append(record) for record in records[k::APPEND_THREADS]])

        threads = [threading.Thread(target=request_thread, args=(k,)) for k in range(APPEND_THREADS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        threaded = count / (time.perf_counter() - started)
    assert len(set(ids)) == count
    records = [admission_record(n) for n in range(count)]
    with _log(url) as log:
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


def bulk_load(url: str, count: int) -> float:
    """Append `count` records through `Store.append` in large batches; returns seconds.

    The store's own append path computes the chain, the Merkle tree (leaves and
    the subtrees they complete) and the index exactly as for live decisions;
    PostgreSQL takes large batches by COPY. Then a checkpoint is signed over
    the head (as `log checkpoint` would), so `log prove` has a tree head to prove against.
    """
    store = open_store(url)
    started = time.perf_counter()
    base = time.time() - count * 0.01  # spread over the past, 10 ms apart
    batch: list[Prepared] = []
    done = 0
    for n in range(count):
        moment = base + n * 0.01
        record = admission_record(n, record_id=uuid7(int(moment * 1000)), time_text=timestamp(_utc(moment)))
        batch.append(prepare(record))
        if len(batch) == BULK_BATCH or n == count - 1:
            store.append(batch)
            done += len(batch)
            batch = []
            print(f"  loaded {done:,} records", end="\r", file=sys.stderr, flush=True)
    seq, digest = store.head()
    store.add_checkpoint(
        SIGNER.sign(seq=seq, hash=digest, time=timestamp(), kind="manual", root=store.root(seq))
    )
    store._execute("ANALYZE")
    store.close()
    print(file=sys.stderr)
    return time.perf_counter() - started


def _utc(seconds: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.UTC)


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


def measure_prove(url: str, count: int) -> float:
    """Median ms of `log prove` without the CLI start-up, over 20 records spread over the log.

    As `prove_cmd` does it (`vouch.cover`): find the record, the newest
    checkpoint covering it whose signatures verify, the stored leaf and the
    inclusion proof, checked against the signed root, so a wrong proof fails
    the run.
    """
    store = open_store(url, create=False)
    times = []
    for i in range(20):
        seq = 1 + (i * 7919 * 37) % count
        started = time.perf_counter()
        with store.snapshot():
            entry = store.get(f"#{seq}")
            assert entry is not None
            coverage = cover(store, entry)
        times.append((time.perf_counter() - started) * 1000)
        assert coverage.proven, coverage
    store.close()
    return statistics.median(times)


def measure_consistency(url: str, count: int) -> float:
    """Median ms of a consistency check from an older tree head to the current one (20 sizes).

    What an auditor's kept checkpoint or a witness costs the log: the proof
    from the stored tree (`log prove-consistency`), both roots, and RFC 9162
    §2.1.4.2 verification.
    """
    store = open_store(url, create=False)
    times = []
    for i in range(20):
        old = 1 + (i * 104_729 * 13) % (count - 1)
        started = time.perf_counter()
        with store.snapshot():
            size = store.tree_size()
            proof, old_root, new_root = store.consistency_proof_and_roots(old, size)
        merkle.verify_consistency(old, size, old_root, new_root, proof)
        times.append((time.perf_counter() - started) * 1000)
    store.close()
    return statistics.median(times)


def measure_verify(url: str) -> tuple[float, int, bool]:
    """`log verify --public-key` as the CLI runs it: chain, columns, index, tree, checkpoints and
    the summary tables the auditor UI selects records through."""
    store = open_store(url, create=False)
    started = time.perf_counter()
    with store.snapshot():
        verifier = Verifier(
            checkpoints=store.checkpoints(),
            public_key=SIGNER.public_key,
            tree=store.stored_tree(),
        )
        report = store.verify(verifier)
    elapsed = time.perf_counter() - started
    store.close()
    if not report.ok:
        first = report.first_problem
        print(f"verify: {first.kind if first else '?'}: {first.message if first else ''}", file=sys.stderr)
    return elapsed, report.records, report.ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the query/verify log")
    parser.add_argument("--appends", type=int, default=APPEND_RECORDS, help="records in the append test")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--only",
        choices=["verify", "appends"],
        help="measure only this (verify: the log of --records is still loaded first)",
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
            appends = windowed = digest_ms = commit_ms = prove_ms = consistency_ms = float("nan")
            found = 0
            if args.only in (None, "appends"):
                print(
                    f"{name}: appending {args.appends:,} decisions from {APPEND_THREADS} threads",
                    file=sys.stderr,
                )
                appends, windowed = measure_appends(append_url, args.appends)
            if args.only == "appends":
                results[name] = {"appends_per_s": appends, "appends_windowed_per_s": windowed}
                continue
            print(f"{name}: loading {args.records:,} records", file=sys.stderr)
            load_s = bulk_load(big_url, args.records)
            if args.only is None:
                digest_ms, commit_ms, found = measure_queries(big_url, args.records)
                prove_ms = measure_prove(big_url, args.records)
                consistency_ms = measure_consistency(big_url, args.records)
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
                "prove_ms": prove_ms,
                "consistency_ms": consistency_ms,
                "verify_s": verify_s,
                "verified_records": verified,
                "verify_ok": ok,
                "db_bytes": size,
            }
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    n, nan = f"{args.records:,}", float("nan")  # nan: not run
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
        (f"log prove, {n} records (ms, median of 20)", f"<= {TARGET_PROVE_MS:.0f}", "prove_ms", "{:.2f}"),
        (
            f"consistency check, {n} records (ms, median of 20)",
            f"<= {TARGET_CONSISTENCY_MS:.0f}",
            "consistency_ms",
            "{:.2f}",
        ),
        (f"log verify, {n} records (s)", f"<= {TARGET_VERIFY_S:.0f}", "verify_s", "{:.1f}"),
        (f"bulk load of {n} records through Store.append (s)", "-", "load_s", "{:.1f}"),
    ]
    for label, target, key, fmt in rows:
        if not any(key in r for r in results.values()):
            continue
        cells = [fmt.format(r[key]) if r.get(key, nan) == r.get(key, nan) else "-" for r in results.values()]
        print(f"| {label} | {target} | {' | '.join(cells)} |")
    failed = [
        name
        for name, r in results.items()
        if "verify_ok" in r and (not r["verify_ok"] or r["verified_records"] != args.records)
    ]
    if failed:
        print(f"verify did not pass on: {', '.join(failed)}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
