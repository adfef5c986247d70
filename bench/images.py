"""Benchmark: image verification against a local registry, beside the `sigstore verify` CLI.

One run, on this machine:

1. starts Debian's `docker-registry` on 127.0.0.1 (temp storage) and pushes N
   small images, each with a keyless Sigstore signature bundle and a SLSA v1
   provenance attestation bundle (DSSE) attached as referrers, signed by the
   private test Sigstore instance in fixtures/ (test-only keys);
2. cold: verifies `--cold` distinct images one after another through
   `ImageVerifier` (resolve the tag, find the referrers, verify both bundles,
   run the bundled SLSA policy) -- each image once, so none is cached;
3. warm: verifies one image again and again (served from the cache);
4. concurrent: verifies N distinct images at once (`verify_many`, the
   configured concurrency) with an empty cache;
   Requests are counted at the transport seam, and the CPU seconds of this
   process and of the registry's (/proc) are divided by the images: the
   registry's share bounds what any client can reach on this machine
   ("registry-bound ceiling": cores / registry CPU per image);
5. peer: `sigstore verify identity --offline` (sigstore-python's CLI) on the
   same signature bundles, one process per bundle, as a user scripting it
   would; the ratio against trustgate's cold figure is printed.

Usage: python bench/images.py [--images 500] [--cold 100] [--peer 20] [--json out.json]
The anchors from the issue: a cold cosign verification takes about 2 s in
Connaisseur and 2.2-2.4 s in Ratify (their published figures, real registries).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from _common import (  # noqa: E402
    IDENTITY,
    ISSUER,
    SLSA_DATA,
    ci_authority,
    push_attested_image,
    slsa_rule,
    with_registry,
    write_json,
)

from fixtures.sigstore_instance import SigstoreInstance  # noqa: E402
from trustgate.artifacts.policy import ImagePolicy  # noqa: E402
from trustgate.artifacts.verifier import ImageVerifier  # noqa: E402
from trustgate.config import ImagesSettings, RegistryConfig  # noqa: E402
from trustgate.oci.client import RegistryClient, RegistrySettings  # noqa: E402
from trustgate.oci.transport import Exchange, HttpTransport, Response  # noqa: E402

TARGETS = {"cold_median_ms": 20.0, "warm_median_ms": 0.1, "concurrent_images_per_s": 300.0}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=500, help="distinct images for the concurrent run")
    parser.add_argument("--cold", type=int, default=100, help="images verified one by one, cold")
    parser.add_argument("--warm", type=int, default=20_000, help="warm lookups of one image")
    parser.add_argument("--peer", type=int, default=20, help="bundles verified by the sigstore CLI")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    figures = with_registry(
        "trustgate-bench-images-", lambda tmp, registry: run(args, tmp, registry.host, registry.process.pid)
    )
    print_table(figures)
    write_json(args.json, figures)
    return 0


def run(args: argparse.Namespace, tmp: Path, host: str, registry_pid: int | None = None) -> dict[str, Any]:
    sigstore = SigstoreInstance.load()
    root_file = sigstore.write_trusted_root(tmp / "trusted_root.json")
    signer = sigstore.identity(IDENTITY, ISSUER)
    client = RegistryClient(RegistrySettings(insecure=(host,), docker_config=tmp / "none.json"))

    total = args.images + args.cold + 1
    print(f"pushing {total} images with a signature and a SLSA attestation each ...", file=sys.stderr)
    started = time.perf_counter()
    refs: list[str] = []
    bundles: list[tuple[str, bytes]] = []
    for i in range(total):
        ref = f"{host}/bench/app{i}:v1"
        image, signature = push_attested_image(client, sigstore, signer, ref)
        refs.append(ref)
        bundles.append((image.digest, signature))
    client.close()
    print(f"  pushed in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    settings = ImagesSettings(
        trust_roots={"bench": root_file},
        authorities=(ci_authority(),),
        rules=(slsa_rule(host),),
        registries=RegistryConfig(insecure=(host,), concurrency=args.concurrency),
    )
    policy = ImagePolicy(settings, data=SLSA_DATA)

    def verifier() -> tuple[ImageVerifier, RegistryClient]:
        registry = RegistryClient(RegistrySettings(insecure=(host,), docker_config=tmp / "none.json"))
        return ImageVerifier(policy, registry), registry

    # Cold: distinct images one after another; the client's connection is warm, the cache empty.
    v, registry = verifier()
    assert v.verify(refs[-1]).status == "verified"  # opens the connection, loads the trust root
    cold = []
    for ref in refs[args.images : args.images + args.cold]:
        t = time.perf_counter()
        result = v.verify(ref)
        cold.append((time.perf_counter() - t) * 1000)
        if result.status != "verified":
            raise SystemExit(f"{ref}: {result.status}: {result.problems}")

    # Warm: the same image from the cache.
    warm_ref = refs[args.images]
    warm = []
    for _ in range(args.warm):
        t = time.perf_counter()
        result = v.verify(warm_ref)
        warm.append((time.perf_counter() - t) * 1000)
    assert result.cache == "hit"
    registry.close()

    # Concurrent: N distinct images at once, a new verifier (empty cache); requests counted at the
    # transport seam, CPU seconds of this process and of the registry's.
    counted = CountingTransport(HttpTransport())
    registry = RegistryClient(
        RegistrySettings(insecure=(host,), docker_config=tmp / "none.json"), transport=counted
    )
    v = ImageVerifier(policy, registry)
    registry_cpu = process_cpu_seconds(registry_pid)
    own_cpu = time.process_time()
    t = time.perf_counter()
    results = v.verify_many(refs[: args.images])
    elapsed = time.perf_counter() - t
    own_cpu = time.process_time() - own_cpu
    registry_cpu = process_cpu_seconds(registry_pid) - registry_cpu
    registry.close()
    bad = [r for r in results.values() if r.status != "verified"]
    if bad:
        raise SystemExit(f"{len(bad)} images did not verify: {bad[0].problems}")

    ceiling = registry_ceiling(host, refs[0], args.concurrency)
    peer = run_peer(tmp, sigstore, bundles[: args.peer])
    cold_median = statistics.median(cold)
    return {
        "images": args.images,
        "cold": {
            "n": len(cold),
            "median_ms": round(cold_median, 2),
            "p90_ms": round(statistics.quantiles(cold, n=10)[-1], 2),
        },
        "warm": {"n": len(warm), "median_ms": round(statistics.median(warm), 4)},
        "concurrent": {
            "n": args.images,
            "concurrency": args.concurrency,
            "seconds": round(elapsed, 2),
            "images_per_s": round(args.images / elapsed, 1),
        },
        "registry": {
            "manifest_gets_per_s": round(ceiling),
            "requests_per_image": round(counted.requests / max(1, len(results)), 1),
            "registry_cpu_ms_per_image": round(registry_cpu / len(results) * 1000, 2),
            "trustgate_cpu_ms_per_image": round(own_cpu / len(results) * 1000, 2),
            # what the registry alone could serve with every core of this machine and no verifier
            "registry_bound_images_per_s": round((os.cpu_count() or 1) / (registry_cpu / len(results)))
            if registry_cpu > 0
            else None,
        },
        "peer": peer
        | {"ratio_to_trustgate_cold": round(peer["median_ms"] / cold_median, 1) if peer else None},
    }


class CountingTransport:
    """Counts the HTTP requests at the transport seam (redirects and retries included)."""

    def __init__(self, inner: HttpTransport) -> None:
        self.inner, self.requests = inner, 0
        self._lock = threading.Lock()

    def fetch(self, exchange: Exchange) -> AbstractContextManager[Response]:
        with self._lock:
            self.requests += 1
        return self.inner.fetch(exchange)

    def close(self) -> None:
        self.inner.close()


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc), 0.0 where unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def registry_ceiling(host: str, ref: str, threads: int, seconds: float = 2.0) -> float:
    """What the registry alone serves: manifest GETs per second over raw keep-alive connections."""
    name, tag = ref.split("/", 1)[1].rsplit(":", 1)
    port = int(host.rsplit(":", 1)[1])
    stop = time.perf_counter() + seconds
    counts: list[int] = []

    def work() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        n = 0
        while time.perf_counter() < stop:
            conn.request(
                "GET",
                f"/v2/{name}/manifests/{tag}",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
            conn.getresponse().read()
            n += 1
        counts.append(n)

    workers = [threading.Thread(target=work) for _ in range(min(threads, 8))]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - started)


def run_peer(tmp: Path, sigstore: SigstoreInstance, bundles: list[tuple[str, bytes]]) -> dict[str, Any]:
    """`sigstore verify identity --offline`, one process per bundle, with the same private root."""
    exe = Path(sys.executable).parent / "sigstore"
    if not exe.exists() or not bundles:
        return {}
    trust_config = tmp / "client_trust_config.json"
    trust_config.write_text(
        json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
                "trustedRoot": json.loads(sigstore.trusted_root_json()),
                "signingConfig": {
                    "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                    "caUrls": [],
                    "oidcUrls": [],
                    "rekorTlogUrls": [],
                    "tsaUrls": [],
                    "rekorTlogConfig": {"selector": "ANY"},
                    "tsaConfig": {"selector": "ANY"},
                },
            }
        )
    )
    times = []
    for i, (digest, bundle) in enumerate(bundles):
        path = tmp / f"bundle-{i}.sigstore.json"
        path.write_bytes(bundle)
        command = [str(exe), "--trust-config", str(trust_config), "verify", "identity", "--offline"]
        command += ["--bundle", str(path), "--cert-identity", IDENTITY, "--cert-oidc-issuer", ISSUER, digest]
        t = time.perf_counter()
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, env=os.environ | {"HOME": str(tmp)}
        )
        times.append((time.perf_counter() - t) * 1000)
        if done.returncode != 0:
            return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    return {
        "tool": "sigstore verify identity --offline (one process per bundle)",
        "n": len(times),
        "median_ms": round(statistics.median(times), 1),
    }


def print_table(f: dict[str, Any]) -> None:
    rows = [
        (
            "cold verification, median (signature + SLSA attestation)",
            f"{f['cold']['median_ms']:.2f} ms",
            f"<= {TARGETS['cold_median_ms']} ms",
            f["cold"]["median_ms"] <= TARGETS["cold_median_ms"],
        ),
        ("cold verification, p90", f"{f['cold']['p90_ms']:.2f} ms", "", None),
        (
            "warm (cache hit), median",
            f"{f['warm']['median_ms'] * 1000:.1f} µs",
            f"<= {TARGETS['warm_median_ms']} ms",
            f["warm"]["median_ms"] <= TARGETS["warm_median_ms"],
        ),
        (
            f"{f['concurrent']['n']} distinct images at once ({f['concurrent']['concurrency']} threads)",
            f"{f['concurrent']['images_per_s']:.0f} images/s ({f['concurrent']['seconds']} s)",
            f">= {TARGETS['concurrent_images_per_s']:.0f}/s",
            f["concurrent"]["images_per_s"] >= TARGETS["concurrent_images_per_s"],
        ),
    ]
    reg = f["registry"]
    rows.append(
        (
            "registry alone: manifest GETs/s (distribution 2.8, same machine)",
            f"{reg['manifest_gets_per_s']}/s",
            f"trustgate: {reg['requests_per_image']} requests per image",
            None,
        )
    )
    rows.append(
        (
            "CPU per cold image: trustgate / the registry",
            f"{reg['trustgate_cpu_ms_per_image']:.2f} / {reg['registry_cpu_ms_per_image']:.2f} ms",
            f"registry-bound ceiling: {reg['registry_bound_images_per_s']}/s on {os.cpu_count()} cores",
            None,
        )
    )
    peer = f["peer"]
    if peer.get("median_ms"):
        rows.append(
            (
                f"peer: {peer['tool']}",
                f"{peer['median_ms']:.0f} ms per bundle",
                f"{peer['ratio_to_trustgate_cold']}x trustgate cold",
                None,
            )
        )
    elif peer.get("error"):
        rows.append(("peer: sigstore verify", f"failed: {peer['error']}", "", None))
    width = max(len(r[0]) for r in rows)
    print(f"{'image verification, local registry':<{width}}  {'measured':>28}  target")
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("  met" if ok else "  MISSED")
        print(f"{name:<{width}}  {value:>28}  {target}{mark}")


if __name__ == "__main__":
    sys.exit(main())
