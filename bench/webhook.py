"""Benchmark: `trustgate serve` under Debian's `wrk`, over HTTPS on 127.0.0.1.

One run, on this machine:

1. starts Debian's `docker-registry` on 127.0.0.1 (temp storage) and pushes
   `--images` small images, each with a keyless Sigstore signature bundle
   attached as an OCI referrer, signed by the private test Sigstore instance
   in fixtures/ (test-only keys);
2. writes a trustgate.yaml: the bundled policies (pss-baseline,
   pss-restricted, supply-chain, schemas) plus an image rule requiring that
   signature for every pushed image;
3. builds realistic AdmissionReviews (Deployments, StatefulSets, CronJobs and
   Pods using those images; most compliant, some not) and checks that the
   server gives the same answers as `trustgate check` on the same objects;
4. warms the caches (every review once), then runs `wrk`:
   - throughput: `--connections` keep-alive connections as fast as they go;
   - fixed rate: wrk has no fixed-rate mode (that is wrk2), so each of
     `--rate-connections` connections waits after each response (wrk's Lua
     `delay()`) for `connections / rate` seconds less the mean latency, which
     two 3 s probes measure first (more connections are used where that
     latency leaves no room); that gives about `--rate` requests per second,
     and the achieved rate is printed beside the latencies;
5. reads the resident and proportional memory of each worker;
6. repeats 4. and 5. with the decision log on (`--decision-log`, default
   all three: off, a SQLite file, a throw-away PostgreSQL server from
   Debian's `postgresql`), every answer waiting for its record to be durable
   (group commit: one transaction for the records of every request in
   flight), and prints req/s and p99 of each, their ratio to the run without
   a log, and the records per commit. `sqlite` and `postgresql` commit in
   one writer process per server (`serve --log-writer process`);
   `sqlite-thread` and `postgresql-thread` in a thread of each worker.

Usage: python bench/webhook.py [--seconds 15] [--workers 2] [--evaluators 4] [--rate 500] [--json out.json]
                               [--decision-log off,sqlite,postgresql,sqlite-thread,postgresql-thread]
Targets (2 cores): >= 1,500 requests/s; p99 <= 10 ms at 500 requests/s (without a log).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.oci_push import attach_referrer, push_image  # noqa: E402
from support.postgres import PostgresServer  # noqa: E402
from support.registry import start_registry  # noqa: E402
from support.webhook import TRUSTGATE, make_certs, review, start_server  # noqa: E402

from fixtures.sigstore_instance import SigstoreInstance  # noqa: E402
from trustgate.oci.client import RegistryClient, RegistrySettings  # noqa: E402

IDENTITY = "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.4.2"
ISSUER = "https://token.actions.githubusercontent.com"
# p99 at the fixed rate: 10 ms without a decision log, 20 ms with one (each answer waits for a
# durable commit); with a log, req/s at least 0.8 of the run without one.
TARGETS = {"throughput_rps": 1500.0, "p99_ms_at_rate": 10.0, "p99_ms_at_rate_logged": 20.0, "ratio": 0.8}

LUA = r"""
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
local pause = %(pause)s
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/validate", {["Content-Type"] = "application/json"}, bodies[i])
end
if pause > 0 then
  delay = function() return pause end
end
local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  local out = io.open("%(out)s", "w")
  local e = summary.errors
  out:write(string.format(
    '{"requests": %%d, "seconds": %%.3f, "errors": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "p999_us": %%d, "max_us": %%d}',
    summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
  out:close()
end
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--evaluators", type=int, default=4, help="evaluator threads per worker (`serve --evaluators`)"
    )
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16, help="connections for the throughput run")
    parser.add_argument("--rate", type=int, default=500, help="requests/s for the fixed-rate run")
    parser.add_argument("--rate-connections", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--decision-log",
        default="off,sqlite,postgresql",
        help="comma-separated runs: off (no log), sqlite, postgresql (one writer process per server), "
        "sqlite-thread, postgresql-thread (a writer thread in each worker); off always runs first",
    )
    args = parser.parse_args()
    logs = [name.strip() for name in args.decision_log.split(",") if name.strip()]
    unknown = set(logs) - set(LOG_RUNS)
    if unknown or not logs:
        raise SystemExit(f"--decision-log takes {', '.join(LOG_RUNS)}; not {', '.join(sorted(unknown))}")
    if "off" not in logs:
        logs.insert(0, "off")  # the targets with a log are ratios to the run without one, in the same sitting
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk; `make dev` does it)")
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="trustgate-bench-webhook-") as tmp_name:
        tmp = Path(tmp_name)
        registry = start_registry(tmp / "registry")
        postgres = PostgresServer() if any(name.startswith("postgresql") for name in logs) else None
        try:
            setup = prepare(args, tmp, registry.host)
            for name in logs:
                if name == "off":
                    url = None
                elif name.startswith("sqlite"):
                    url = f"sqlite:///{tmp / f'{name}.db'}"
                else:
                    assert postgres is not None
                    url = postgres.create_database()
                writer = "thread" if name.endswith("-thread") else "process"
                runs[name] = run(
                    args, tmp, setup, decision_log=url, log_writer=writer, check_answers=name == logs[0]
                )
        finally:
            if postgres is not None:
                postgres.stop()
            registry.stop()
    for name, figures in runs.items():
        print(f"\n== decision log: {name} ==")
        print_table(figures)
    if len(runs) > 1:
        print_comparison(runs)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2) + "\n")
    return 0


LOG_RUNS = ("off", "sqlite", "postgresql", "sqlite-thread", "postgresql-thread")


def workloads(refs: list[str]) -> list[dict[str, Any]]:
    """Realistic objects: mostly compliant workloads, a few that break a rule."""
    secure = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod_security = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}

    def container(i: int, image: str) -> dict[str, Any]:
        return {
            "name": f"app{i}",
            "image": image,
            "ports": [{"containerPort": 8080, "name": "http"}],
            "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "REGION", "value": "eu-west-1"}],
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"cpu": "1", "memory": "256Mi"},
            },
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
            "securityContext": secure,
        }

    out: list[dict[str, Any]] = []
    for i, ref in enumerate(refs):
        labels = {"app.kubernetes.io/name": f"app{i}", "app.kubernetes.io/part-of": "shop"}
        pod = {
            "securityContext": pod_security,
            "containers": [container(i, ref)],
            "serviceAccountName": "shop",
        }
        meta = {"name": f"app{i}", "namespace": "shop", "labels": labels}
        template = {"metadata": {"labels": labels}, "spec": pod}
        kind = i % 4
        if kind == 0:
            obj = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": meta,
                "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": template},
            }
        elif kind == 1:
            obj = {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": meta,
                "spec": {"serviceName": f"app{i}", "selector": {"matchLabels": labels}, "template": template},
            }
        elif kind == 2:
            job = {
                "template": {"metadata": {"labels": labels}, "spec": {**pod, "restartPolicy": "OnFailure"}}
            }
            obj = {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": meta,
                "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": job}},
            }
        else:
            obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod}
        out.append(obj)
    # Non-compliant: privileged, root, no limits; and an unsigned image.
    bad = json.loads(json.dumps(out[0]))
    bad["metadata"]["name"] = "privileged"
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    out.append(bad)
    return out


def prepare(args: argparse.Namespace, tmp: Path, host: str) -> tuple[Path, list[dict[str, Any]]]:
    """Push the images, write the configuration; (the config file, the objects to review)."""
    sigstore = SigstoreInstance.load()
    root_file = sigstore.write_trusted_root(tmp / "trusted_root.json")
    signer = sigstore.identity(IDENTITY, ISSUER)
    client = RegistryClient(RegistrySettings(insecure=(host,), docker_config=tmp / "none.json"))
    refs = []
    for i in range(args.images):
        ref = f"{host}/shop/app{i}:1.{i}.0"
        image = push_image(client, ref, content=os.urandom(32))
        attach_referrer(client, image.ref, image, sigstore.sign_artifact(image.digest, signer))
        refs.append(ref)
    unsigned = push_image(client, f"{host}/shop/unsigned:1.0.0", content=os.urandom(32))
    client.close()
    config = tmp / "trustgate.yaml"
    config.write_text(
        f"""apiVersion: trustgate.dev/v1alpha1
kind: Config
images:
  trustRoots:
    - name: private
      trustedRoot: {root_file}
  authorities:
    - name: ci
      keyless:
        trustRoot: private
        identities:
          - subject: {IDENTITY}
            issuer: {ISSUER}
  rules:
    - name: shop
      images: ["{host}/shop/**"]
      signatures: {{authorities: [ci]}}
  registries:
    insecure: ["{host}"]
    nodeLocal: ["{host}"]  # trustgate shares the registry's host here, as it would run on a node
"""
    )
    objects = workloads(refs)
    unsigned_obj = json.loads(json.dumps(objects[3]))
    unsigned_obj["metadata"]["name"] = "unsigned"
    unsigned_obj["spec"]["containers"][0]["image"] = f"{host}/shop/unsigned:1.0.0"
    objects.append(unsigned_obj)
    assert unsigned.digest
    return config, objects


def run(
    args: argparse.Namespace,
    tmp: Path,
    setup: tuple[Path, list[dict[str, Any]]],
    *,
    decision_log: str | None,
    log_writer: str = "process",
    check_answers: bool,
) -> dict[str, Any]:
    """One server (with `decision_log` or none) under wrk: its figures."""
    config, objects = setup
    certs = make_certs(tmp / "certs")
    extra = ["--decision-log", decision_log, "--log-writer", log_writer] if decision_log else []
    extra += ["--evaluators", str(args.evaluators)]
    server = start_server(certs, "-c", str(config), *extra, workers=args.workers)
    try:
        # Same answers as `trustgate check` for the same objects (this also warms every cache).
        mismatches = []
        allowed = 0
        for i, obj in enumerate(objects):
            status, answer = server.post(review(obj, uid=f"bench-{i}"))
            allowed += answer["response"]["allowed"]
            if not check_answers:
                continue
            path = tmp / f"obj{i}.json"
            path.write_text(json.dumps(obj))
            done = subprocess.run(
                [str(TRUSTGATE), "check", "-c", str(config), "-o", "json", str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            report = json.loads(done.stdout)
            blocking = sorted(
                {f["rule"] for r in report["results"] for f in r["findings"] if f["severity"] == "error"}
            )
            message = answer["response"].get("status", {}).get("message", "")
            # `[rule] message (at path)` parts after "denied <object>: ", separated by "; "
            got = sorted(set(re.findall(r"(?:: |; )\[([^\]]+)\] ", message)))
            if status != 200 or answer["response"]["allowed"] != (done.returncode == 0) or got != blocking:
                mismatches.append((obj["metadata"]["name"], blocking, got))
        bodies = tmp / "bodies.jsonl"
        bodies.write_text(
            "".join(json.dumps(review(o, uid=f"bench-{i}")) + "\n" for i, o in enumerate(objects))
        )
        for _ in range(3):  # every worker sees every image
            for i, obj in enumerate(objects):
                server.post(review(obj, uid=f"warm-{i}"))
        url = f"https://127.0.0.1:{server.port}/validate"
        before = cpu_seconds(server.process.pid)
        throughput = wrk(tmp, bodies, url, args.connections, args.seconds, pause_ms=0)
        spent = cpu_seconds(server.process.pid)
        # CPU per request of each process (workers, and the log writer process where there is one):
        # what the log costs, less sensitive than req/s to other jobs on a shared machine.
        throughput["cpu_ms_per_request"] = {
            str(pid): round((spent[pid] - before.get(pid, 0.0)) * 1000 / max(1, throughput["requests"]), 3)
            for pid in spent
        }
        connections, pause = calibrate(tmp, bodies, url, args.rate_connections, args.rate)
        fixed = wrk(tmp, bodies, url, connections, args.seconds, pause_ms=pause)
        memory = worker_memory(server.process.pid)
        metrics = server.get("/metrics")[1]
    finally:
        server.stop()
    hits = _metric(metrics, 'trustgate_image_cache_total{result="hit"}')
    misses = _metric(metrics, 'trustgate_image_cache_total{result="miss"}')
    records = _metric(metrics, "trustgate_decision_log_records_total")
    commits = _metric(metrics, "trustgate_decision_log_commits_total")
    return {
        "objects": len(objects),
        "allowed": allowed,
        "decision_log": (decision_log or "off").split("://")[0].split(":")[0],
        "log_writer": log_writer if decision_log else None,
        "records": records,
        "records_per_commit": round(records / commits, 1) if commits else None,
        "unrecorded": _metric(metrics, "trustgate_decision_log_write_failures_total"),
        "same_answers_as_check": not mismatches if check_answers else None,
        "mismatches": mismatches,
        "workers": args.workers,
        "throughput": throughput | {"connections": args.connections},
        "fixed_rate": fixed | {"connections": connections, "pause_ms": pause, "target_rps": args.rate},
        "memory": memory,
        "image_cache": {"hit": hits, "miss": misses},
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]},
    }


CALIBRATE_SECONDS = 3  # each probe of the fixed-rate phase


def calibrate(tmp: Path, bodies: Path, url: str, connections: int, rate: int) -> tuple[int, int]:
    """(connections, pause in ms) that offer about `rate` requests/s in wrk's closed loop.

    Each connection waits `pause` after a response, so it sends one request per
    pause + latency: `rate` needs pause = connections / rate - latency. Two short
    probes measure the latency at about that rate (it grows with the load, and
    the decision log adds to it); where even a 1 ms pause would leave the rate
    short, more connections are used, so the p99 reported is the p99 at `rate`
    rather than at whatever a slower answer let 10 connections send.
    """
    pause = max(1, round(connections / rate * 1000) - 2)
    for _ in range(2):
        probe = wrk(tmp, bodies, url, connections, CALIBRATE_SECONDS, pause_ms=pause)
        cycle_ms = connections / max(probe["rps"], 1.0) * 1000  # pause + mean latency
        latency_ms = max(0.0, cycle_ms - pause)
        wanted_ms = connections / rate * 1000
        if wanted_ms - latency_ms < 1:  # not reachable with these connections
            connections = math.ceil(rate * (latency_ms + 5) / 1000)
            wanted_ms = connections / rate * 1000
        pause = max(1, round(wanted_ms - latency_ms))
    return connections, pause


def wrk(
    tmp: Path, bodies: Path, url: str, connections: int, seconds: int, *, pause_ms: int
) -> dict[str, Any]:
    out = tmp / f"wrk-{connections}-{pause_ms}.json"
    script = tmp / f"wrk-{connections}-{pause_ms}.lua"
    script.write_text(LUA % {"bodies": bodies, "pause": pause_ms, "out": out})
    threads = min(2, connections)
    subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        timeout=seconds + 60,
    )
    raw = json.loads(out.read_text())
    return {
        "requests": raw["requests"],
        "errors": raw["errors"],
        "rps": round(raw["requests"] / raw["seconds"], 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "p999_ms": raw["p999_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }


def cpu_seconds(parent: int) -> dict[int, float]:
    """User + system CPU seconds of each child of `parent` (the workers and the log writer)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        out[int(pid)] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return out


def worker_memory(parent: int) -> list[dict[str, float]]:
    """RSS and PSS (shared pages split between the processes) of each worker, in MiB."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    out = []
    for pid in children:
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss"):
                fields[name.lower() + "_mib"] = round(int(rest.split()[0]) / 1024, 1)
        out.append({"pid": int(pid), **fields})
    return out


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def print_table(f: dict[str, Any]) -> None:
    t, r = f["throughput"], f["fixed_rate"]
    p99_target = TARGETS["p99_ms_at_rate" if f["decision_log"] == "off" else "p99_ms_at_rate_logged"]
    rows = [
        ("objects (allowed)", f"{f['objects']} ({f['allowed']})", "", None),
        (
            "same answers as `trustgate check`",
            "not compared"
            if f["same_answers_as_check"] is None
            else "yes"
            if f["same_answers_as_check"]
            else f"NO: {f['mismatches']}",
            "yes",
            f["same_answers_as_check"],
        ),
        (
            f"throughput, {t['connections']} connections",
            f"{t['rps']:.0f} req/s ({t['errors']} errors)",
            f">= {TARGETS['throughput_rps']:.0f}",
            t["rps"] >= TARGETS["throughput_rps"],
        ),
        (
            "  latency p50 / p99 / p99.9",
            f"{t['p50_ms']:.2f} / {t['p99_ms']:.2f} / {t['p999_ms']:.2f} ms",
            "",
            None,
        ),
        (
            "  server CPU per request, each process",
            " + ".join(f"{v:.2f}" for v in t.get("cpu_ms_per_request", {}).values())
            + f" = {sum(t.get('cpu_ms_per_request', {}).values()):.2f} ms",
            "",
            None,
        ),
        (
            f"fixed rate ~{r['target_rps']} req/s ({r['connections']} conns, {r['pause_ms']} ms pause)",
            f"{r['rps']:.0f} req/s achieved",
            f"~{r['target_rps']} (within 5 %)",
            abs(r["rps"] - r["target_rps"]) <= 0.05 * r["target_rps"],
        ),
        (
            "  latency p50 / p99 / p99.9",
            f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} / {r['p999_ms']:.2f} ms",
            f"p99 <= {p99_target:.0f} ms",
            r["p99_ms"] <= p99_target,
        ),
        (
            "image cache hits / misses",
            f"{f['image_cache']['hit']:.0f} / {f['image_cache']['miss']:.0f}",
            "",
            None,
        ),
    ]
    if f["decision_log"] != "off":
        rows.append(
            (
                "decision log: records (per commit) / not recorded",
                f"{f['records']:.0f} ({f['records_per_commit']}) / {f['unrecorded']:.0f}",
                "0 not recorded",
                f["unrecorded"] == 0,
            )
        )
    for m in f["memory"]:
        rows.append((f"worker {m['pid']} memory RSS / PSS", f"{m['rss_mib']} / {m['pss_mib']} MiB", "", None))
    width = max(len(row[0]) for row in rows)
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        print(f"{name:<{width}}  {value:<40} {target}{mark}")


def print_comparison(runs: dict[str, dict[str, Any]]) -> None:
    """req/s and p99 of every run side by side, and each one's ratio to the run without a log."""
    base = runs.get("off")
    print("\n== decision log: on vs off ==")
    print(
        f"{'log':<12} {'req/s':>8} {'ratio':>7} {'p99 ms':>8} {'ratio':>7} {'p99 ms @rate':>13} {'ratio':>7}"
    )
    for name, f in runs.items():
        t, r = f["throughput"], f["fixed_rate"]
        cells = [f"{name:<12}", f"{t['rps']:>8.0f}"]
        if base is not None:
            bt, br = base["throughput"], base["fixed_rate"]
            cells.append(f"{t['rps'] / bt['rps']:>7.2f}" if bt["rps"] else f"{'-':>7}")
            cells.append(f"{t['p99_ms']:>8.2f}")
            cells.append(f"{t['p99_ms'] / bt['p99_ms']:>7.2f}" if bt["p99_ms"] else f"{'-':>7}")
            cells.append(f"{r['p99_ms']:>13.2f}")
            cells.append(f"{r['p99_ms'] / br['p99_ms']:>7.2f}" if br["p99_ms"] else f"{'-':>7}")
        else:
            cells += [f"{'-':>7}", f"{t['p99_ms']:>8.2f}", f"{'-':>7}", f"{r['p99_ms']:>13.2f}", f"{'-':>7}"]
        print(" ".join(cells))
    print(
        f"targets with a log: req/s >= {TARGETS['throughput_rps']:.0f}, ratio >= {TARGETS['ratio']}, "
        f"p99 at the fixed rate <= {TARGETS['p99_ms_at_rate_logged']:.0f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
