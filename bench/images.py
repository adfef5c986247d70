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
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.oci_push import attach_referrer, push_image  # noqa: E402
from support.registry import start_registry  # noqa: E402

from fixtures.sigstore_instance import SigstoreInstance, statement  # noqa: E402
from trustgate.artifacts.policy import ImagePolicy  # noqa: E402
from trustgate.artifacts.verifier import ImageVerifier  # noqa: E402
from trustgate.config import (  # noqa: E402
    AttestationRequirement,
    AuthorityConfig,
    IdentityConfig,
    ImageRule,
    ImagesSettings,
    RegistryConfig,
)
from trustgate.oci.client import RegistryClient, RegistrySettings  # noqa: E402

IDENTITY = "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.4.2"
ISSUER = "https://token.actions.githubusercontent.com"
BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"
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

    with tempfile.TemporaryDirectory(prefix="trustgate-bench-images-") as tmp_name:
        tmp = Path(tmp_name)
        registry = start_registry(tmp / "registry")
        try:
            figures = run(args, tmp, registry.host)
        finally:
            registry.stop()
    print_table(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def run(args: argparse.Namespace, tmp: Path, host: str) -> dict[str, Any]:
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
        image = push_image(client, ref, content=os.urandom(32))
        signature = sigstore.sign_artifact(image.digest, signer)
        attach_referrer(client, image.ref, image, signature)
        predicate = {
            "buildDefinition": {
                "externalParameters": {
                    "workflow": {"repository": "https://github.com/acme/shop", "ref": "refs/tags/v1"}
                }
            },
            "runDetails": {"builder": {"id": BUILDER}},
        }
        attach_referrer(
            client,
            image.ref,
            image,
            sigstore.attest(statement(image.digest, "https://slsa.dev/provenance/v1", predicate), signer),
        )
        refs.append(ref)
        bundles.append((image.digest, signature))
    client.close()
    print(f"  pushed in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    settings = ImagesSettings(
        trust_roots={"bench": root_file},
        authorities=(
            AuthorityConfig(
                name="ci", trust_root="bench", identities=(IdentityConfig(subject=IDENTITY, issuer=ISSUER),)
            ),
        ),
        rules=(
            ImageRule(
                name="bench",
                images=(f"{host}/bench/**",),
                authorities=("ci",),
                attestations=(
                    AttestationRequirement(
                        name="provenance",
                        predicate_type="https://slsa.dev/provenance/v1",
                        authorities=("ci",),
                        policy_path=ROOT / "policies" / "attestations" / "slsa_provenance.rego",
                    ),
                ),
            ),
        ),
        registries=RegistryConfig(insecure=(host,), concurrency=args.concurrency),
    )
    data = {"trustgate": {"slsa": {"builders": [BUILDER], "sources": ["git+https://github.com/acme/*"]}}}
    policy = ImagePolicy(settings, data=data)

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

    # Concurrent: N distinct images at once, a new verifier (empty cache).
    v, registry = verifier()
    counted = CountingRegistry(registry)
    v.registry = counted
    t = time.perf_counter()
    results = v.verify_many(refs[: args.images])
    elapsed = time.perf_counter() - t
    counted.images = len(results)
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
            "calls_per_image": round(counted.calls / max(1, counted.images), 1),
        },
        "peer": peer
        | {"ratio_to_trustgate_cold": round(peer["median_ms"] / cold_median, 1) if peer else None},
    }


class CountingRegistry:
    """Counts the registry calls (each one HTTP round trip, or two for a referrers fallback)."""

    def __init__(self, inner: RegistryClient) -> None:
        self.inner, self.calls, self.images = inner, 0, 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
            return method(*args, **kwargs)

        return counted


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
            f"trustgate: {reg['calls_per_image']} calls per image",
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
