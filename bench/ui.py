#!/usr/bin/env python3
"""Benchmark the auditor UI (`trustgate ui`) on a decision log of 1,000,000 records.

This script owns: making a realistic log quickly (the three gates, every
verdict, 50 namespaces, actors, images with digests and signature evidence,
commits, findings, exceptions with owners and expiries, some expired, some
expiring soon; spread over the last DAYS days; signed tree checkpoints every
CHECKPOINT_EVERY records) through the store's own append path, so the
summary tables are kept exactly as a gate's appends keep them; and timing
the pages issue 19 names, server side (the ASGI application in-process, no
socket): the overview, the first page of each filter, deep pages, a decision
and its proof. It prints one table beside the targets (first page of any
filter <= 200 ms, the overview <= 1 s).

It leaves out the network and the browser (tests/integration/test_ui_browser.py).

    python bench/ui.py                            # 1,000,000 records, SQLite, in a temp dir
    python bench/ui.py --records 100000           # quicker
    python bench/ui.py --db /tmp/ui-1m.db         # keep the log (made once, reused by later runs)
    python bench/ui.py --stores sqlite,postgresql # PostgreSQL too (a throw-away server)

The loader turns SQLite's fsync off while it fills the file (it measures
pages, not appends: bench/decisions.py measures durable appends).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import httpx  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from trustgate.decisions.canonical import timestamp, uuid7  # noqa: E402
from trustgate.decisions.chain import CheckpointSigner  # noqa: E402
from trustgate.decisions.log import Store, open_store, prepare  # noqa: E402
from trustgate.ui.app import Settings, create_app  # noqa: E402

TARGET_FILTER_MS = 200.0  # the first page of any filter, server time
TARGET_OVERVIEW_MS = 1000.0  # the overview
DAYS = 60  # the log spans this many days, up to now
BATCH = 5_000  # records per append transaction while loading
CHECKPOINT_EVERY = 200  # records between signed tree checkpoints (5,000 of them in 1,000,000)
REPEAT = 5  # requests per page; the median is reported, and the slowest
SEED = 19

NAMESPACES = [f"team-{n}" for n in range(50)]
RULES = [
    "pss-baseline-privileged",
    "pss-restricted-run-as-non-root",
    "require-resource-limits",
    "disallow-latest-tag",
    "require-signed-images",
    "slsa-provenance-builder",
    "require-probes",
    "no-host-path",
    "vuln-critical",
    "k8s-schema",
]
EXCEPTIONS = [  # name, owner, reason, expires (days from now), rule it waives
    (
        "legacy-root",
        "payments-team",
        "vendor image runs as root until Q3",
        12,
        "pss-restricted-run-as-non-root",
    ),
    ("batch-hostpath", "data-team", "node-local scratch for batch jobs", 90, "no-host-path"),
    ("canary-latest", "release-team", "canary tracks latest", 25, "disallow-latest-tag"),
    ("old-scanner", "security-team", "scanner migration", -5, "vuln-critical"),  # expired
    ("unsigned-sidecar", "platform-team", "sidecar signing lands next sprint", 200, "require-signed-images"),
]
PEOPLE = [f"dev{n}@example.com" for n in range(200)]
TODAY = dt.datetime.now(dt.UTC).date()


def _weighted_namespace(rng: random.Random) -> str:
    return NAMESPACES[min(int(rng.paretovariate(1.2)) - 1, len(NAMESPACES) - 1)]  # a few busy namespaces


def make_record(n: int, moment: dt.datetime, rng: random.Random) -> dict[str, Any]:
    """One decision as a gate writes it (record schema v1), varied by `n` and `rng`."""
    roll = rng.random()
    gate = "admission" if roll < 0.8 else "ci" if roll < 0.95 else "presync"
    ns = _weighted_namespace(rng)
    app = f"app-{rng.randrange(400)}"
    image = f"registry.example.com/{ns}/{app}:1.{rng.randrange(60)}"
    digest = "sha256:" + hashlib.sha256(f"{image}{n // 50}".encode()).hexdigest()
    commit = hashlib.sha1(f"c{n // 7}".encode()).hexdigest()
    findings: list[dict[str, Any]] = []
    exceptions: dict[str, dict[str, Any]] = {}
    verdict_roll = rng.random()
    if verdict_roll < 0.001:
        verdict = "error"
    elif verdict_roll < 0.1:
        verdict = "deny"
    elif verdict_roll < 0.15:
        verdict = "warn"
    else:
        verdict = "allow"
    if verdict in ("deny", "warn"):
        for rule in rng.sample(RULES, 1 + (rng.random() < 0.3)):
            findings.append(
                {
                    "rule": rule,
                    "severity": "error" if verdict == "deny" else "warning",
                    "ruleSeverity": "error",
                    "message": f"{rule} failed for container app",
                    "source": "rego",
                    "path": "spec.template.spec.containers[0]",
                    "object": 0,
                }
            )
    if rng.random() < 0.03:  # a finding an exception covers
        name, owner, reason, days, rule = EXCEPTIONS[rng.randrange(len(EXCEPTIONS))]
        expires = (TODAY + dt.timedelta(days=days)).isoformat()
        expired = days < 0
        findings.append(
            {
                "rule": rule,
                "severity": "error" if expired else "info",
                "ruleSeverity": "error",
                "message": f"{rule} failed (waived)",
                "source": "rego",
                "path": "spec.template.spec.containers[0]",
                "object": 0,
                "exception": {"name": name, "owner": owner, "expires": expires, "expired": expired},
            }
        )
        exceptions[name] = {
            "name": name,
            "owner": owner,
            "reason": reason,
            "expires": expires,
            "expired": expired,
            "findings": 1,
        }
        if expired and verdict in ("allow", "warn"):
            verdict = "deny"
    subject: dict[str, Any] = {
        "objects": [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "namespace": ns,
                "name": app,
                "status": "failed" if verdict == "deny" else "passed",
                "inputHash": "sha256:" + hashlib.sha256(f"o{n}".encode()).hexdigest(),
                **({"file": f"deploy/{ns}/{app}.yaml", "line": 1} if gate != "admission" else {}),
            }
        ],
        "images": [
            {
                "reference": f"{image}@{digest}",
                "digest": digest,
                "source": "manifest",
                "details": {
                    "signatures": [
                        {
                            "identity": f"https://github.com/example/{ns}/.github/workflows/release.yml@refs/heads/main",
                            "issuer": "https://token.actions.githubusercontent.com",
                            "tlogIndex": 100_000_000 + n,
                        }
                    ]
                },
            }
        ],
    }
    person = PEOPLE[rng.randrange(len(PEOPLE))]
    if gate == "admission":
        actor: dict[str, Any] = {
            "user": {"username": f"system:serviceaccount:{ns}:deployer", "groups": ["system:authenticated"]}
        }
        subject.update(operation="UPDATE", uid=f"{n:08x}-0000-4000-8000-000000000000")
    else:
        actor = {"git": {"author": {"email": person}, "committer": {"email": person}}}
        subject.update(
            repository="https://git.example.com/platform/deploy", commit=commit, ref="refs/heads/main"
        )
    if gate == "presync":
        subject["presync"] = {
            "scope": "clusters/prod",
            "pathsTree": hashlib.sha1(f"t{n}".encode()).hexdigest(),
            "gatedBefore": hashlib.sha1(f"c{n // 7 - 1}".encode()).hexdigest(),
            "commits": [{"sha": commit, "author": {"email": person}, "signer": {"identity": person}}],
        }
    failed = 1 if verdict == "deny" else 0
    return {
        "schema": "trustgate.dev/decision/v1",
        "id": uuid7(int(moment.timestamp() * 1000)),
        "time": timestamp(moment),
        "gate": gate,
        "mode": "enforce",
        "verdict": verdict,
        "exitCode": {"allow": 0, "warn": 0, "deny": 1, "error": 3}[verdict],
        "summary": {"documents": 1, "passed": 1 - failed, "failed": failed, "warnings": 0, "errors": 0},
        "actor": actor,
        "subject": subject,
        "findings": findings,
        "exceptions": list(exceptions.values()),
        "policyRevision": "sha256:" + "5" * 64,
        "inputHash": "sha256:" + hashlib.sha256(f"in{n}".encode()).hexdigest(),
        "durationUs": 130 + n % 50,
        "trustgateVersion": "0.1.0",
        "notes": [],
    }


def load(url: str, count: int) -> float:
    """Append `count` records through `Store.append` with a signed checkpoint every CHECKPOINT_EVERY."""
    store = open_store(url)
    if store.dialect == "sqlite":
        store._conn.execute("PRAGMA synchronous=OFF")  # type: ignore[attr-defined]  # loading, not measuring
    signer = CheckpointSigner(private_key=Ed25519PrivateKey.generate())
    rng = random.Random(SEED)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=DAYS)
    step = dt.timedelta(days=DAYS) / count
    started = time.perf_counter()
    n = 0
    while n < count:
        size = min(BATCH, count - n)
        batch = [prepare(make_record(n + i, start + step * (n + i), rng)) for i in range(size)]
        for lo in range(0, size, CHECKPOINT_EVERY):
            entries = store.append(batch[lo : lo + CHECKPOINT_EVERY])
            last = entries[-1]
            cp = signer.sign(
                seq=last.seq, hash=last.hash, time=last.time, kind="periodic", root=store.root(last.seq)
            )
            store.add_checkpoint(cp)
        n += size
        print(f"  loaded {n:,} records", end="\r", file=sys.stderr, flush=True)
    store._execute("ANALYZE")
    store.close()
    print(file=sys.stderr)
    return time.perf_counter() - started


def pages(store: Store, count: int) -> list[tuple[str, str, float]]:
    """(label, path, target ms) of every page timed, with values taken from the log."""
    old = store.get(f"#{max(1, count // 10)}")
    new = store.get(f"#{count}")
    assert old is not None and new is not None
    middle = (dt.datetime.now(dt.UTC) - dt.timedelta(days=DAYS // 2)).date()
    digest = old.record()["subject"]["images"][0]["digest"]
    commit = next(e for e in store.query(_ci_filter(), limit=1)).record()["subject"]["commit"]
    f, o = TARGET_FILTER_MS, TARGET_OVERVIEW_MS
    return [
        ("overview (last 30 days)", "/overview", o),
        (f"overview (all {DAYS} days)", f"/overview?since={middle - dt.timedelta(days=DAYS)}", o),
        ("overview, gate=admission verdict=deny", "/overview?gate=admission&verdict=deny", o),
        ("overview, namespace=team-3", "/overview?namespace=team-3", o),
        ("overview, actor=dev7@example.com (counted)", "/overview?actor=dev7@example.com", o),
        (
            "overview, image=…/team-0/* (counted, newest 20,000)",
            "/overview?image=registry.example.com/team-0/*",
            o,
        ),
        ("decisions, no filter", "/decisions", f),
        ("verdict=deny", "/decisions?verdict=deny", f),
        ("verdict=error (0.1%)", "/decisions?verdict=error", f),
        ("gate=presync", "/decisions?gate=presync", f),
        ("verdict=deny namespace=team-7", "/decisions?verdict=deny&namespace=team-7", f),
        ("namespace=team-0 (half the log)", "/decisions?namespace=team-0", f),
        ("namespace=team-0 verdict=error", "/decisions?namespace=team-0&verdict=error", f),
        ("namespace=team-49 (rare)", "/decisions?namespace=team-49", f),
        (
            "namespace=team-49 gate=presync verdict=allow",
            "/decisions?namespace=team-49&gate=presync&verdict=allow",
            f,
        ),
        ("namespace=nobody (no match)", "/decisions?namespace=nobody", f),
        ("exception=legacy-root", "/decisions?exception=legacy-root", f),
        ("exception=old-* verdict=deny", "/decisions?exception=old-*&verdict=deny", f),
        ("actor=dev7@example.com", "/decisions?actor=dev7@example.com", f),
        ("actor=system:serviceaccount:team-5:*", "/decisions?actor=system:serviceaccount:team-5:*", f),
        ("image=registry.example.com/team-2/*", "/decisions?image=registry.example.com/team-2/*", f),
        (
            "image=registry.example.com/team-0/* verdict=error",
            "/decisions?image=registry.example.com/team-0/*&verdict=error",
            f,
        ),
        (
            "image=registry.example.com/nothing/* (no match)",
            "/decisions?image=registry.example.com/nothing/*",
            f,
        ),
        ("actor=dev3@example.com verdict=warn", "/decisions?actor=dev3@example.com&verdict=warn", f),
        ("digest (full, an old record's)", f"/decisions?digest={digest}", f),
        ("digest prefix sha256:ab", "/decisions?digest=sha256:ab", f),
        ("commit (abbreviated)", f"/decisions?commit={commit[:10]}", f),
        ("rule=no-host-path", "/decisions?rule=no-host-path", f),
        ("one day in the middle", f"/decisions?since={middle}&until={middle}", f),
        (
            "since 10 days ago, verdict=warn",
            f"/decisions?since={middle + dt.timedelta(days=20)}&verdict=warn",
            f,
        ),
        (f"until {DAYS - 5} days ago", f"/decisions?until={middle - dt.timedelta(days=DAYS // 2 - 5)}", f),
        ("deep page (before=#n/2)", f"/decisions?before={count // 2}", f),
        ("deep page, verdict=deny before=#1000", "/decisions?verdict=deny&before=1000", f),
        ("500 rows", "/decisions?limit=500", f),
        ("decision page (old)", f"/decisions/{old.id}", f),
        ("decision page (newest)", f"/decisions/{new.id}", f),
        ("proof download (old)", f"/decisions/{old.id}/proof", f),
        (
            "report, namespace=team-7 exception=legacy-root",
            "/report?namespace=team-7&exception=legacy-root",
            o,
        ),
    ]


def _ci_filter() -> Any:
    from trustgate.decisions.store import Filters

    return Filters(gates=("ci",))


def measure(url: str, count: int) -> list[tuple[str, str, float, float, float]]:
    """(label, path, target, median ms, slowest ms) of each page."""
    store = open_store(url, create=False)
    try:
        wanted = pages(store, count)
    finally:
        store.close()
    app = create_app(
        Settings(
            open_store=lambda: open_store(url, create=False, read_only=True),
            allowed_hosts=frozenset({"127.0.0.1"}),
        )
    )
    out = []

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)  # the application in-process: server time, no socket
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for label, path, target in wanted:
                times = []
                for _ in range(REPEAT):
                    started = time.perf_counter()
                    response = await client.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        raise SystemExit(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
                out.append((label, path, target, statistics.median(times), max(times)))
                print(f"  {label}: {statistics.median(times):.0f} ms", file=sys.stderr)

    asyncio.run(run())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--stores", default="sqlite", help="sqlite, postgresql, or both (comma-separated)")
    parser.add_argument("--db", type=Path, help="SQLite file to keep and reuse (made when missing)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="trustgate-bench-ui-"))
    results: dict[str, list[tuple[str, str, float, float, float]]] = {}
    loads: dict[str, str] = {}
    pg = None
    try:
        for name in args.stores.split(","):
            if name == "sqlite":
                path = args.db or work / "ui.db"
                url = f"sqlite:///{path.resolve()}"
                if path.exists():
                    loads[name] = "reused"
                else:
                    print(f"sqlite: loading {args.records:,} records", file=sys.stderr)
                    loads[name] = f"{load(url, args.records):.0f} s"
            elif name == "postgresql":
                from support.postgres import PostgresServer

                pg = PostgresServer(options="-c shared_buffers=256MB -c max_wal_size=4GB -c fsync=off")
                url = pg.create_database("ui")
                print(f"postgresql: loading {args.records:,} records", file=sys.stderr)
                loads[name] = f"{load(url, args.records):.0f} s"
            else:
                parser.error(f"unknown store {name!r}")
            print(f"{name}: timing pages", file=sys.stderr)
            results[name] = measure(url, args.records)
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    names = list(results)
    print(f"\n{args.records:,} records over {DAYS} days; ms server time, median of {REPEAT} (slowest)\n")
    print(f"| page | target (ms) | {' | '.join(names)} |")
    print(f"| --- | --- |{' --- |' * len(names)}")
    missed = []
    for i, (label, _, target, _, _) in enumerate(results[names[0]]):
        cells = []
        for name in names:
            _, path, _, median, slowest = results[name][i]
            cells.append(f"{median:.0f} ({slowest:.0f})")
            if median > target:
                missed.append(f"{name}: {label} ({path})")
        print(f"| {label} | <= {target:.0f} | {' | '.join(cells)} |")
    print(f"| loading the log | - | {' | '.join(loads[n] for n in names)} |")
    for line in missed:
        print(f"missed: {line}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
