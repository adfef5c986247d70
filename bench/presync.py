"""Benchmark: one `trustgate presync` decision over a 20-commit range of a 1,000-manifest repository.

One run, on this machine:

1. starts Debian's `docker-registry` on 127.0.0.1 (temp storage) and pushes 50
   small images, each with a keyless Sigstore signature bundle attached as a
   referrer, signed by the private test Sigstore instance in fixtures/;
2. builds a git repository: 1,000 manifests in 1,000 files under
   clusters/prod (50 Deployments, one image each; Services and ConfigMaps;
   Namespaces and PersistentVolumeClaims so the deletion diff has protected
   objects to look at), one SSH-signed base commit, then 20 SSH-signed commits
   that each change a ConfigMap;
3. config: the bundled policy sets, Kubernetes schemas (strict), an image rule
   requiring the keyless signature, an SSH allowed_signers file, a SQLite
   decision log (every decision is recorded, durably);
4. **cold**: a fresh gate (policies compiled, nothing cached) creates the gated
   ref at the base commit, in this process;
5. **first range, fresh gate**: a second fresh gate decides the 20-commit range
   (cold image cache, both trees rendered);
6. **warm**: the gate of step 5 decides the same range again, `--repeat` times
   (the gated ref is reset to the base between runs). "Warm" means what a
   `--watch` process has after its first decision: policies compiled, image
   verification results in the gate's in-memory cache (TTL 10 min), the
   objects of trees already rendered (the gated tree). Every warm decision
   still asks git for the range, verifies the 20 commit signatures (git +
   ssh-keygen), exports and renders the candidate tree, evaluates all 1,000
   documents, diffs, records the decision, moves the ref and writes the note.

Usage: python bench/presync.py [--manifests 1000] [--images 50] [--commits 20] [--repeat 5]
                               [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from _common import IDENTITY, ISSUER, with_registry, write_json  # noqa: E402
from support.gitrepo import Repo, allowed_signers, ssh_key  # noqa: E402
from support.oci_push import attach_referrer, push_image  # noqa: E402

from fixtures.sigstore_instance import SigstoreInstance  # noqa: E402
from trustgate.config import load_config  # noqa: E402
from trustgate.decisions.log import DecisionLog  # noqa: E402
from trustgate.gate import Gate  # noqa: E402
from trustgate.presync.runner import PresyncGate  # noqa: E402

TARGET_S = 3.0
GATED = "refs/heads/trustgate/verified"


def deployment(i: int, image: str) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: app{i}, namespace: team{i % 10}}}
        spec:
          replicas: 2
          selector: {{matchLabels: {{app: app{i}}}}}
          template:
            metadata: {{labels: {{app: app{i}}}}}
            spec:
              securityContext: {{runAsNonRoot: true, seccompProfile: {{type: RuntimeDefault}}}}
              containers:
                - name: app
                  image: {image}
                  resources:
                    limits: {{cpu: 500m, memory: 256Mi}}
                    requests: {{cpu: 100m, memory: 128Mi}}
                  securityContext:
                    allowPrivilegeEscalation: false
                    capabilities: {{drop: [ALL]}}
                  livenessProbe: {{httpGet: {{path: /healthz, port: 8080}}}}
                  readinessProbe: {{httpGet: {{path: /ready, port: 8080}}}}
        """
    )


def service(i: int) -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: svc{i}, namespace: team{i % 10}}}\n"
        f"spec:\n  selector: {{app: app{i % 50}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n"
    )


def configmap(i: int, value: int = 0) -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm{i}, namespace: team{i % 10}}}\n"
        f"data: {{key: 'value-{value}', other: '{i}'}}\n"
    )


def pvc(i: int) -> str:
    return (
        f"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data{i}, namespace: team{i % 10}}}\n"
        "spec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--manifests", type=int, default=1000)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = with_registry("trustgate-bench-presync-", lambda tmp, registry: run(args, tmp, registry.host))
    print_table(figures)
    write_json(args.json, figures)
    return 0


def run(args: argparse.Namespace, tmp: Path, host: str) -> dict[str, Any]:
    from trustgate.oci.client import RegistryClient, RegistrySettings

    sigstore = SigstoreInstance.load()
    sigstore.write_trusted_root(tmp / "trusted_root.json")
    signer = sigstore.identity(IDENTITY, ISSUER)
    client = RegistryClient(RegistrySettings(insecure=(host,), docker_config=tmp / "none.json"))
    images = []
    for i in range(args.images):
        pushed = push_image(client, f"{host}/bench/app{i}:v1", content=os.urandom(32))
        attach_referrer(client, pushed.ref, pushed, sigstore.sign_artifact(pushed.digest, signer))
        images.append(f"{host}/bench/app{i}:v1")
    client.close()

    key = ssh_key(tmp / "keys", "release@example.com")
    allowed_signers(tmp / "allowed_signers", key)
    (tmp / "trustgate.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: trustgate.dev/v1alpha1
            kind: Config
            commits: {{allowedSigners: allowed_signers, authors: ["*@example.com"]}}
            presync: {{paths: [clusters/prod]}}
            images:
              trustRoots: [{{name: bench, trustedRoot: trusted_root.json}}]
              authorities:
                - name: ci
                  keyless:
                    trustRoot: bench
                    identities: [{{subject: "{IDENTITY}", issuer: "{ISSUER}"}}]
              rules:
                - {{name: bench, images: ["{host}/bench/**"], signatures: {{authorities: [ci]}}}}
              registries: {{insecure: ["{host}"]}}
            """
        )
    )
    config = load_config(tmp / "trustgate.yaml")

    print(f"building a repository of {args.manifests} manifests ...", file=sys.stderr)
    repo = Repo.create(tmp / "fleet")
    repo.author = ("Release", "release@example.com")
    base = repo.path / "clusters" / "prod"
    count = 0
    for i in range(10):
        write(
            base / f"namespaces/team{i}.yaml",
            f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: team{i}}}\n",
        )
        count += 1
    for i, image in enumerate(images):
        write(base / f"apps/app{i}/deployment.yaml", deployment(i, image))
        count += 1
    n_pvc = 40
    for i in range(n_pvc):
        write(base / f"storage/data{i}.yaml", pvc(i))
        count += 1
    n_svc = (args.manifests - count) // 2
    for i in range(n_svc):
        write(base / f"services/svc{i}.yaml", service(i))
        count += 1
    n_cm = args.manifests - count
    for i in range(n_cm):
        write(base / f"config/cm{i}.yaml", configmap(i))
        count += 1
    repo.git("add", "-A")
    start = repo.commit("base", ssh=key)
    for c in range(args.commits):
        (base / f"config/cm{c}.yaml").write_text(configmap(c, c + 1))
        repo.git("add", "-A")
        repo.commit(f"change {c}", ssh=key)
    tip = repo.head()

    log_url = f"sqlite:///{tmp / 'decisions.db'}"
    figures: dict[str, Any] = {"manifests": count, "images": len(images), "commits": args.commits}

    # 4. Cold: a fresh gate creates the gated ref at the base commit.
    repo.git("update-ref", "refs/heads/main", start)
    t = time.perf_counter()
    with (
        DecisionLog.open(log_url) as log,
        Gate(config=config, decision_log=log) as gate,
        PresyncGate(gate=gate, config=config) as runner,
    ):
        outcome = runner.run(str(repo.path), "main", "trustgate/verified")
    figures["cold_create_s"] = time.perf_counter() - t
    check(outcome.action == "created", outcome)
    repo.git("update-ref", "refs/heads/main", tip)

    # 5. and 6. One gate: the first range decision (cold cache), then warm repeats.
    warm: list[float] = []
    with DecisionLog.open(log_url) as log, Gate(config=config, decision_log=log) as gate:
        t = time.perf_counter()
        with PresyncGate(gate=gate, config=config) as runner:
            outcome = runner.run(str(repo.path), "main", "trustgate/verified")
            figures["first_range_fresh_gate_s"] = time.perf_counter() - t
            check(outcome.action == "advanced", outcome)
            decision = outcome.decision
            assert decision is not None
            figures["documents"] = decision.summary.documents
            figures["images_verified"] = sum(1 for i in decision.images if i.status == "verified")
            for _ in range(args.repeat):
                repo.git("update-ref", GATED, start)
                t = time.perf_counter()
                outcome = runner.run(str(repo.path), "main", "trustgate/verified")
                warm.append(time.perf_counter() - t)
                check(outcome.action == "advanced", outcome)
                assert outcome.decision is not None
                check(all(i.cache == "hit" for i in outcome.decision.images), "images not cached")
    figures["warm_s"] = [round(w, 3) for w in warm]
    figures["warm_median_s"] = statistics.median(warm)
    figures["git_signatures_s"] = time_git_log(repo, start, tip)
    figures["records"] = int(
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sqlite3;print(sqlite3.connect('{tmp / 'decisions.db'}')"
                ".execute('select count(*) from decisions').fetchone()[0])",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    return figures


def time_git_log(repo: Repo, start: str, tip: str) -> float:
    """The signature check alone: one `git log` verifying the range's SSH signatures."""
    t = time.perf_counter()
    repo.git(
        "-c",
        f"gpg.ssh.allowedSignersFile={repo.path.parent / 'allowed_signers'}",
        "log",
        "--format=%H %G?",
        f"{start}..{tip}",
    )
    return time.perf_counter() - t


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def check(ok: bool, what: object) -> None:
    if not ok:
        raise SystemExit(f"benchmark run is not valid: {what}")


def print_table(f: dict[str, Any]) -> None:
    print(
        f"\npresync: {f['manifests']} manifests ({f['documents']} results with the commits), "
        f"{f['images']} images ({f['images_verified']} verified), a {f['commits']}-commit range"
    )
    print("| measure | target | trustgate |")
    print("| --- | --- | --- |")
    print(
        f"| decision over the range, warm (s, median of {len(f['warm_s'])}) | <= {TARGET_S:g} | "
        f"{f['warm_median_s']:.2f} |"
    )
    print(
        "| decision over the range, fresh gate, cold image cache (s) | - | "
        f"{f['first_range_fresh_gate_s']:.2f} |"
    )
    print(f"| first decision, creates the gated ref, cold (s) | - | {f['cold_create_s']:.2f} |")
    print(f"| of which: git verifying {f['commits']} SSH signatures (s) | - | {f['git_signatures_s']:.2f} |")
    print(f"warm runs: {f['warm_s']}; decisions recorded: {f['records']}")


if __name__ == "__main__":
    raise SystemExit(main())
