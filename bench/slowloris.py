"""Benchmark: a well-behaved client of `trustgate serve` during a slowloris and a hung registry.

Issue 14's target: "During a slowloris of 1,000 connections (bounded, loopback) and a hung
registry, requests from a well-behaved client still get answers with p99 <= 100 ms."

One run, on this machine, all on loopback:

1. a hung registry: a TCP listener on 127.0.0.1 that accepts every connection and never
   answers; trustgate.yaml requires a (key-based) signature for its images, so every image
   from it is a registry call that hangs;
2. `trustgate serve` (`--workers`, default 2; the bundled policies and schemas) with a test
   certificate;
3. **baseline**: the well-behaved client alone for `--seconds`: `--clients` keep-alive HTTPS
   connections from 127.0.0.1 (as the API server's pooled connections), together about
   `--rate` requests/s of a compliant Pod whose image no rule covers (policy only, no registry),
   each connection opened again every `--reconnect-every` requests (the handshake is then part
   of that request's latency);
4. **attack**: the same client for `--seconds` more, while
   - the slowloris: `--attack` connections (default 1,000) from `--addresses` other loopback
     addresses (127.0.0.2, ...), in a separate process (asyncio), a quarter each: connected and
     never starting TLS; idle after the handshake; a request line then one header line every
     `--trickle` seconds; full headers then one body byte every `--trickle` seconds. A connection
     the server closes is opened again after `--reopen` seconds, so the attacker holds at most
     `--attack` at any time (bounded);
   - the hung registry: `--hung-clients` connections from 127.0.0.250 posting, back to back,
     Pods whose image is on the hung registry (each holds an evaluator until the registry's
     bulkhead, breaker or the deadline answers it);
5. prints p50 / p99 / max of the well-behaved client in both phases beside the target, its
   errors (must be 0), the answers of the hung-registry requests, the attacker's connection
   counts and the server's connection metrics (shed, refused); the server's CPU (cores used, all
   its processes) in each phase, and the attacker's own CPU seconds: they share the same cores.

This is a closed loop (each client waits for its answer): it does not correct for coordinated
omission; the errors and the max are printed for that reason.

Usage: python bench/slowloris.py [--seconds 10] [--attack 1000] [--addresses 1] [--workers 2]
                                 [--rate 50] [--clients 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

TARGET_P99_MS = 100.0


# --- the hung registry ------------------------------------------------------------------------


class HungRegistry:
    """Accepts every connection on 127.0.0.1 and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port: int = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


# --- the slowloris (a separate process: its handshakes must not share our GIL) -----------------


async def _one(
    i: int, args: argparse.Namespace, context: ssl.SSLContext, stats: dict[str, int], stop: asyncio.Event
) -> None:
    source = f"127.0.0.{2 + i % args.addresses}"
    kind = i % 4  # 0: no TLS, 1: idle after TLS, 2: slow headers, 3: slow body
    while not stop.is_set():
        writer: asyncio.StreamWriter | None = None
        try:
            opening = asyncio.open_connection(
                "127.0.0.1",
                args.port,
                ssl=None if kind == 0 else context,
                server_hostname=None if kind == 0 else "localhost",
                local_addr=(source, 0),
                ssl_handshake_timeout=None if kind == 0 else 10.0,
            )
            reader, writer = await asyncio.wait_for(opening, 15.0)
            stats["opened"] += 1
            stats["holding"] += 1
            try:
                if kind == 2:
                    writer.write(b"POST /validate HTTP/1.1\r\nHost: trustgate\r\n")
                elif kind == 3:
                    writer.write(
                        b"POST /validate HTTP/1.1\r\nHost: trustgate\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
                    )
                while not stop.is_set():
                    try:
                        data = await asyncio.wait_for(reader.read(4096), args.trickle)
                    except TimeoutError:
                        if kind == 2:
                            writer.write(b"X-Slow: 1\r\n")
                        elif kind == 3:
                            writer.write(b" ")
                        await writer.drain()
                        continue
                    if not data:
                        stats["closed_by_server"] += 1
                        break
                    stats["answered"] += 1  # a 408 or 400: the server gave up on it, then closes
            finally:
                stats["holding"] -= 1
        except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError):
            stats["failed_to_open"] += 1
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
        await asyncio.sleep(args.reopen)


async def _attack(args: argparse.Namespace) -> dict[str, int]:
    context = ssl.create_default_context(cafile=args.ca)
    stats = {"opened": 0, "holding": 0, "closed_by_server": 0, "answered": 0, "failed_to_open": 0}
    stop = asyncio.Event()
    tasks = []
    for i in range(args.attack):
        tasks.append(asyncio.create_task(_one(i, args, context, stats, stop)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # open them over about a second, not in one burst
    peak = 0
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.2)
        peak = max(peak, stats["holding"])
        print(json.dumps({"holding": stats["holding"]}), flush=True)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats | {"peak_holding": peak, "cpu_seconds": round(time.process_time(), 1)}


def attacker_main(args: argparse.Namespace) -> int:
    stats = asyncio.run(_attack(args))
    print(json.dumps({"done": stats}), flush=True)
    return 0


# --- clients ----------------------------------------------------------------------------------


class WellBehaved:
    """`clients` keep-alive connections from 127.0.0.1 at about `rate` requests/s in all."""

    def __init__(self, port: int, ca: Path, *, clients: int, rate: float, reconnect_every: int) -> None:
        self.port, self.ca = port, ca
        self.clients, self.pause = clients, clients / rate
        self.reconnect_every = reconnect_every
        from support.webhook import POD

        self.body = json.dumps(_review(POD, "well-behaved")).encode()

    def run(self, seconds: float) -> dict[str, Any]:
        latencies: list[float] = []
        fresh: list[float] = []  # of the requests that opened their connection (handshake included)
        errors: list[str] = []
        end = time.monotonic() + seconds
        lock = threading.Lock()

        def client() -> None:
            context = ssl.create_default_context(cafile=str(self.ca))
            conn: http.client.HTTPSConnection | None = None
            sent = 0
            while time.monotonic() < end:
                started = time.monotonic()
                opened = conn is None or sent % self.reconnect_every == 0
                try:
                    if opened:
                        if conn is not None:
                            conn.close()
                        conn = http.client.HTTPSConnection(
                            "127.0.0.1", self.port, context=context, timeout=10
                        )
                    sent += 1
                    conn.request(
                        "POST", "/validate", body=self.body, headers={"Content-Type": "application/json"}
                    )
                    response = conn.getresponse()
                    answer = json.loads(response.read())
                    if response.status != 200 or answer["response"]["allowed"] is not True:
                        raise ValueError(f"HTTP {response.status}: {str(answer)[:200]}")
                    took = time.monotonic() - started
                    with lock:
                        latencies.append(took)
                        if opened:
                            fresh.append(took)
                except (OSError, ValueError, KeyError, http.client.HTTPException) as e:
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}")
                    if conn is not None:
                        conn.close()
                    conn = None
                    sent = 0
                    continue
                time.sleep(max(0.0, self.pause - took))
            if conn is not None:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        summary = _summary(latencies, errors, seconds)
        new = sorted(x * 1000 for x in fresh)
        summary["new_connection"] = {
            "requests": len(new),
            "p50_ms": round(new[len(new) // 2], 2) if new else None,
            "max_ms": round(new[-1], 2) if new else None,
        }
        return summary


def _summary(latencies: list[float], errors: list[str], seconds: float) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(len(ms) * p / 100))] if ms else float("nan")

    return {
        "requests": len(ms),
        "rps": round(len(ms) / seconds, 1),
        "errors": len(errors),
        "first_errors": errors[:5],
        "p50_ms": round(pct(50), 2),
        "p99_ms": round(pct(99), 2),
        "max_ms": round(ms[-1], 2) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


class HungClients:
    """Connections from 127.0.0.250 posting Pods whose image is on the hung registry, back to back."""

    def __init__(self, port: int, ca: Path, registry: str, *, clients: int) -> None:
        self.port, self.ca, self.clients = port, ca, clients
        from support.webhook import POD

        pod = json.loads(json.dumps(POD).replace("registry.example.com/web:1.2.3", f"{registry}/web:1.0"))
        self.body = json.dumps(_review(pod, "hung-registry")).encode()
        self.stop = threading.Event()
        self.answers: dict[str, int] = {}
        self.latencies: list[float] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        context = ssl.create_default_context(cafile=str(self.ca))
        while not self.stop.is_set():
            started = time.monotonic()
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=context, timeout=30, source_address=("127.0.0.250", 0)
            )
            try:
                conn.request(
                    "POST", "/validate", body=self.body, headers={"Content-Type": "application/json"}
                )
                response = conn.getresponse()
                answer = json.loads(response.read())["response"]
                key = "allowed" if answer["allowed"] else "denied"
                policy = answer.get("auditAnnotations", {}).get("failure-policy")
                key += f" (failure policy {policy})" if policy else ""
            except (OSError, ValueError, KeyError, http.client.HTTPException) as e:
                key = f"error: {type(e).__name__}"
            finally:
                conn.close()
            with self._lock:
                self.answers[key] = self.answers.get(key, 0) + 1
                self.latencies.append(time.monotonic() - started)

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        ms = sorted(x * 1000 for x in self.latencies)
        return {
            "requests": len(ms),
            "answers": self.answers,
            "p50_ms": round(ms[len(ms) // 2], 1) if ms else None,
            "max_ms": round(ms[-1], 1) if ms else None,
        }


def _review(obj: dict[str, Any], uid: str) -> dict[str, Any]:
    from support.webhook import review

    return review(obj, uid=uid)


# --- the run ----------------------------------------------------------------------------------


def write_config(tmp: Path, registry: str) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = tmp / "cosign.pub"  # a throw-away key: nothing is ever verified against it
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    config = tmp / "trustgate.yaml"
    config.write_text(
        f"""apiVersion: trustgate.dev/v1alpha1
kind: Config
images:
  authorities:
    - name: release
      key: {{path: cosign.pub}}
  rules:
    - name: hung
      images: ["{registry}/**"]
      signatures: {{authorities: [release]}}
  registries:
    insecure: ["{registry}"]
    nodeLocal: ["{registry}"]  # trustgate shares the registry's host here, as it would run on a node
"""
    )
    return config


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the server: the supervisor and its workers."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [str(pid), *Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for one in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    from support.webhook import make_certs, start_server

    load_before = os.getloadavg()[0]
    hung = HungRegistry()
    registry = f"127.0.0.1:{hung.port}"
    with tempfile.TemporaryDirectory(prefix="trustgate-bench-slowloris-") as tmp_name:
        tmp = Path(tmp_name)
        certs = make_certs(tmp / "certs")
        config = write_config(tmp, registry)
        server = start_server(certs, "-c", str(config), workers=args.workers)
        attacker: subprocess.Popen[str] | None = None
        try:
            client = WellBehaved(
                server.port,
                certs.ca,
                clients=args.clients,
                rate=args.rate,
                reconnect_every=args.reconnect_every,
            )
            client.run(1.0)  # warm: every worker's evaluators compiled, the handshake path hot
            cpu = _cpu_seconds(server.process.pid)
            baseline = client.run(args.seconds)
            baseline["server_cpu_share"] = round((_cpu_seconds(server.process.pid) - cpu) / args.seconds, 2)
            attacker = subprocess.Popen(
                [
                    sys.executable, __file__, "attacker", "--port", str(server.port), "--ca", str(certs.ca),
                    "--attack", str(args.attack), "--addresses", str(args.addresses),
                    "--trickle", str(args.trickle), "--reopen", str(args.reopen),
                    "--seconds", str(args.seconds + args.ramp + 2),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            hung_clients = HungClients(server.port, certs.ca, registry, clients=args.hung_clients)
            hung_clients.start()
            time.sleep(args.ramp)  # the attacker opens its connections; the registry holds evaluators
            cpu = _cpu_seconds(server.process.pid)
            under_attack = client.run(args.seconds)
            under_attack["server_cpu_share"] = round(
                (_cpu_seconds(server.process.pid) - cpu) / args.seconds, 2
            )
            _, metrics = server.health("/metrics")
            hung_figures = hung_clients.finish()
            assert attacker.stdout is not None
            holding = []
            attack_stats: dict[str, Any] = {}
            for line in attacker.stdout:
                message = json.loads(line)
                if "holding" in message:
                    holding.append(message["holding"])
                else:
                    attack_stats = message["done"]
            attacker.wait(timeout=60)
        finally:
            if attacker is not None and attacker.poll() is None:
                attacker.kill()
            server.stop()
            hung.stop()
    return {
        "seconds": args.seconds,
        "workers": args.workers,
        "well_behaved": {
            "clients": args.clients,
            "target_rps": args.rate,
            "reconnect_every": args.reconnect_every,
        },
        "baseline": baseline,
        "under_attack": under_attack,
        "attacker": attack_stats
        | {
            "connections": args.attack,
            "addresses": args.addresses,
            "median_holding": statistics.median(holding) if holding else 0,
        },
        "hung_registry_requests": hung_figures | {"clients": args.hung_clients},
        "server": {
            "shed": _metric(metrics, 'trustgate_connections_total{event="shed"}'),
            "refused": _metric(metrics, 'trustgate_connections_total{event="refused"}'),
            "deadline_exceeded": _metric(metrics, "trustgate_admission_deadline_exceeded_total"),
        },
        "machine": {"cpus": os.cpu_count(), "load_before": load_before},
    }


def print_table(f: dict[str, Any]) -> None:
    b, a = f["baseline"], f["under_attack"]
    ok = a["errors"] == 0 and a["p99_ms"] <= TARGET_P99_MS
    wb = f["well_behaved"]
    print(
        f"\n== well-behaved client: {wb['clients']} keep-alive connections, ~{wb['target_rps']} req/s, "
        f"reconnecting every {wb['reconnect_every']} requests; {f['seconds']} s per phase =="
    )
    print(
        f"{'phase':<34} {'req/s':>7} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'server CPU':>10}  target"
    )
    for name, r, target in (
        ("alone", b, ""),
        (
            f"slowloris {f['attacker']['connections']} + hung registry",
            a,
            f"p99 <= {TARGET_P99_MS:.0f} ms, 0 errors " + ("ok" if ok else "MISSED"),
        ),
    ):
        print(
            f"{name:<34} {r['rps']:>7.1f} {r['errors']:>7} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['max_ms']:>8.2f} {r['server_cpu_share']:>10.2f}  {target}"
        )
    for name, r in (("alone", b), ("under attack", a)):
        n = r["new_connection"]
        print(
            f"  {name}: {n['requests']} requests on a new connection (TCP + TLS handshake included): "
            f"p50 {n['p50_ms']} ms, max {n['max_ms']} ms"
        )
    for error in a["first_errors"]:
        print(f"  error: {error}")
    at = f["attacker"]
    print(
        f"\nattacker ({at['addresses']} address(es)): held {at.get('median_holding', 0):.0f} connections "
        f"(median; peak {at.get('peak_holding', 0)}), opened {at.get('opened', 0)}, closed by the server "
        f"{at.get('closed_by_server', 0)}, could not open {at.get('failed_to_open', 0)}; "
        f"its own CPU {at.get('cpu_seconds', 0)} s"
    )
    h = f["hung_registry_requests"]
    print(
        f"hung-registry requests ({h['clients']} clients): {h['requests']} answered as {h['answers']}; "
        f"p50 {h['p50_ms']} ms, max {h['max_ms']} ms"
    )
    s = f["server"]
    print(
        f"server: connections shed {s['shed']:.0f}, refused {s['refused']:.0f}; "
        f"deadline exceeded {s['deadline_exceeded']:.0f}; "
        f"load average before {f['machine']['load_before']:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("role", nargs="?", default="bench", choices=("bench", "attacker"))
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument("--attack", type=int, default=1000, help="slowloris connections held at most")
    parser.add_argument("--addresses", type=int, default=1, help="loopback addresses the attacker uses")
    parser.add_argument("--trickle", type=float, default=2.0, help="seconds between a slow client's bytes")
    parser.add_argument("--reopen", type=float, default=0.5, help="seconds before a closed one is reopened")
    parser.add_argument("--ramp", type=float, default=3.0, help="seconds of attack before measuring")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2, help="the well-behaved client's connections")
    parser.add_argument("--rate", type=float, default=50.0, help="the well-behaved client's requests/s")
    parser.add_argument("--reconnect-every", type=int, default=20)
    parser.add_argument("--hung-clients", type=int, default=4)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ca", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    if args.role == "attacker":
        return attacker_main(args)
    if not 1 <= args.addresses <= 200:
        raise SystemExit("--addresses takes 1 to 200 (127.0.0.2 and up)")
    figures = run(args)
    print_table(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
