"""Benchmark: verification summaries (SLSA VSAs), side by side with full verification, one run.

One run, on this machine (issue 18's table):

1. starts Debian's `docker-registry` on 127.0.0.1 (temp storage) and pushes N
   small images, each with a keyless Sigstore signature bundle and a SLSA v1
   provenance attestation bundle (DSSE) attached as referrers, signed by the
   private test Sigstore instance in fixtures/ (test-only keys), as
   bench/images.py does;
2. full, cold: verifies each image once through `ImageVerifier` under the
   rule (resolve, referrers, both bundles, the bundled SLSA policy), as
   `check` does; full, warm: one image again and again (the cache);
3. issuance: for each verified image, what `check` adds to sign its summary
   (`Issuer.prepare`: the statement, the policy digest, an ECDSA P-256
   signature, the bundle) -- the push (`Signed.attach`, one blob, one
   manifest, the referrers tag) is timed apart and not counted, as the
   issue asks;
4. accepted, cold: a verifier whose rule accepts the summaries (empty
   cache) admits each image through its VSA (one referrers lookup, the
   summary's manifest and bundle, one signature check), with revocations
   read from a SQLite decision log holding `--revoked` unrelated
   revocations; accepted, warm: one image again and again (the cached
   summary admission, re-checked against the revocations and the summary's
   age on every hit).

Usage: python bench/summaries.py [--images 200] [--warm 20000] [--revoked 100] [--json out.json]
Targets (issue 18): accepted cold <= 5 ms median, warm <= 50 µs median; issuance <= 2 ms
per image. The images are pinned by digest, as admission sees them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
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
from support.keys import write_p256_key  # noqa: E402

from fixtures.sigstore_instance import SigstoreInstance  # noqa: E402
from trustgate.artifacts.issuing import Issuer  # noqa: E402
from trustgate.artifacts.policy import ImagePolicy  # noqa: E402
from trustgate.artifacts.verifier import ImageVerifier  # noqa: E402
from trustgate.config import (  # noqa: E402
    ImageRule,
    ImagesSettings,
    RegistryConfig,
    SummaryAcceptance,
    SummaryIssuing,
    SummaryVerifier,
)
from trustgate.decisions.canonical import uuid7  # noqa: E402
from trustgate.decisions.log import DecisionLog, open_store  # noqa: E402
from trustgate.oci.client import RegistryClient, RegistrySettings  # noqa: E402
from trustgate.revocations import Revocations, revocation_record  # noqa: E402

VERIFIER = "https://ci.bench.example/trustgate"
TARGETS = {"accepted_cold_ms": 5.0, "accepted_warm_ms": 0.05, "issuance_ms": 2.0}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200, help="distinct images (cold runs, issuance)")
    parser.add_argument("--warm", type=int, default=20_000, help="warm lookups of one image")
    parser.add_argument("--revoked", type=int, default=100, help="unrelated revocations in the log")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if args.images < 2:
        parser.error("--images must be at least 2")

    figures = with_registry("trustgate-bench-summaries-", lambda tmp, registry: run(args, tmp, registry.host))
    print_table(figures)
    write_json(args.json, figures)
    return 0


def run(args: argparse.Namespace, tmp: Path, host: str) -> dict[str, Any]:
    sigstore = SigstoreInstance.load()
    root_file = sigstore.write_trusted_root(tmp / "trusted_root.json")
    signer = sigstore.identity(IDENTITY, ISSUER)
    settings = RegistrySettings(insecure=(host,), docker_config=tmp / "none.json")
    client = RegistryClient(settings)

    print(f"pushing {args.images} images with a signature and a SLSA attestation each ...", file=sys.stderr)
    refs: list[str] = []
    for i in range(args.images):
        image, _ = push_attested_image(client, sigstore, signer, f"{host}/bench/app{i}:v1")
        refs.append(f"{host}/bench/app{i}@{image.digest}")  # pinned, as admission sees them
    client.close()

    key_path = tmp / "vsa.pem"
    _, public = write_p256_key(key_path)
    rule = slsa_rule(host)
    images = ImagesSettings(
        trust_roots={"bench": root_file},
        authorities=(ci_authority(),),
        rules=(rule,),
        registries=RegistryConfig(insecure=(host,)),
    )
    data = SLSA_DATA
    full_policy = ImagePolicy(images, data=data)
    acceptance = SummaryAcceptance(verifiers=(SummaryVerifier(VERIFIER, public, "bench"),))
    accepting = ImagePolicy(
        ImagesSettings(
            trust_roots=images.trust_roots,
            authorities=images.authorities,
            rules=(ImageRule(**{**_fields(rule), "summaries": acceptance}),),
            registries=images.registries,
        ),
        data=data,
    )
    assert full_policy.rules[0].policy_digest == accepting.rules[0].policy_digest

    print("verifying each in full ...", file=sys.stderr)
    # 1. Full verification, cold (each image once) and warm (one image from the cache).
    registry = RegistryClient(settings)
    verifier = ImageVerifier(full_policy, registry)
    full_cold, verified = [], []
    for ref in refs:
        t = time.perf_counter()
        result = verifier.verify(ref)
        full_cold.append((time.perf_counter() - t) * 1000)
        if result.status != "verified":
            raise SystemExit(f"{ref}: {result.status}: {result.problems}")
        verified.append(result)
    full_cold = full_cold[1:]  # the first opens the connection and loads the trust root
    full_warm = _repeat(verifier, refs[0], args.warm, "hit")

    print("issuing and attaching a summary for each ...", file=sys.stderr)
    # 2. Issuance, as `check` does it per image: sign (timed), then attach (the push, apart).
    issuer = Issuer.from_config(SummaryIssuing(verifier_id=VERIFIER, key_path=key_path))
    issuance, pushes = [], []
    for result in verified:
        t = time.perf_counter()
        signed = issuer.prepare(full_policy, result, decision_id=uuid7())
        issuance.append((time.perf_counter() - t) * 1000)
        assert signed is not None
        t = time.perf_counter()
        problem = signed.attach(registry)
        pushes.append((time.perf_counter() - t) * 1000)
        if problem is not None:
            raise SystemExit(f"{result.reference}: {problem}")
    registry.close()

    print("admitting each through its summary ...", file=sys.stderr)
    # 3. Accepted through the summary: a new verifier (empty cache), revocations from a decision log.
    store = f"sqlite:///{tmp / 'decisions.db'}"
    open_store(store).close()  # made even with --revoked 0: a log that is not there revokes what is not known
    with DecisionLog.open(store) as log:
        for _ in range(args.revoked):
            log.append(revocation_record("sha256:" + os.urandom(32).hex(), reason="bench"))
    revocations = Revocations(store, refresh_seconds=30.0)
    registry = RegistryClient(settings)
    verifier = ImageVerifier(accepting, registry, revocations=revocations)
    accepted_cold, source = [], ""
    for ref in refs:
        t = time.perf_counter()
        result = verifier.verify(ref)
        accepted_cold.append((time.perf_counter() - t) * 1000)
        if result.status != "verified" or not result.summary or result.summary.get("path") != "summary":
            raise SystemExit(f"{ref}: not admitted through its summary: {result.summary} {result.problems}")
        source = str(result.summary.get("source"))
    accepted_cold = accepted_cold[1:]
    accepted_warm = _repeat(verifier, refs[0], args.warm, "hit")
    registry.close()

    def stats(times: list[float]) -> dict[str, float]:
        return {
            "n": len(times),
            "median_ms": round(statistics.median(times), 4),
            "p90_ms": round(statistics.quantiles(times, n=10)[-1], 4),
        }

    return {
        "images": args.images,
        "revocations": args.revoked,
        "referrers": source,
        "full_cold": stats(full_cold),
        "full_warm": stats(full_warm),
        "issuance": stats(issuance),
        "attach": stats(pushes),
        "accepted_cold": stats(accepted_cold),
        "accepted_warm": stats(accepted_warm),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
    }


def _fields(rule: ImageRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in rule.__slots__}


def _repeat(verifier: ImageVerifier, ref: str, n: int, expect: str) -> list[float]:
    times = []
    result = verifier.verify(ref)
    for _ in range(n):
        t = time.perf_counter()
        result = verifier.verify(ref)
        times.append((time.perf_counter() - t) * 1000)
    if result.cache != expect:
        raise SystemExit(f"{ref}: warm lookups answered {result.cache!r}, not {expect!r}")
    return times


def print_table(f: dict[str, Any]) -> None:
    def ms(s: dict[str, float]) -> str:
        return f"{s['median_ms']:.2f} ms (p90 {s['p90_ms']:.2f})"

    def us(s: dict[str, float]) -> str:
        return f"{s['median_ms'] * 1000:.1f} µs (p90 {s['p90_ms'] * 1000:.1f})"

    def target(value: float, limit: float, unit: str) -> str:
        return f"<= {limit:g} {unit}" + ("  met" if value <= limit else "  MISSED")

    cold, warm = f["accepted_cold"], f["accepted_warm"]
    rows = [
        (
            "admission through a VSA, cold, median",
            ms(cold),
            target(cold["median_ms"], TARGETS["accepted_cold_ms"], "ms"),
        ),
        (
            "admission through a VSA, warm, median",
            us(warm),
            target(warm["median_ms"] * 1000, TARGETS["accepted_warm_ms"] * 1000, "µs"),
        ),
        (
            "issuance added to check per image (sign, no push)",
            ms(f["issuance"]),
            target(f["issuance"]["median_ms"], TARGETS["issuance_ms"], "ms"),
        ),
        ("  the push of one VSA (not counted above)", ms(f["attach"]), ""),
        (
            "full verification, cold, median (signature + SLSA attestation)",
            ms(f["full_cold"]),
            f"VSA cold is {f['full_cold']['median_ms'] / cold['median_ms']:.1f}x faster",
        ),
        (
            "full verification, warm (cache hit), median",
            us(f["full_warm"]),
            f"VSA warm / full warm: {warm['median_ms'] / f['full_warm']['median_ms']:.2f}",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    title = f"verification summaries, local registry ({f['images']} images, {f['referrers']})"
    print(f"{title:<{width}}  {'measured':>28}  target")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>28}  {note}")


if __name__ == "__main__":
    sys.exit(main())
