"""End to end: a real registry (Debian's docker-registry), real Sigstore verification against
the private test instance in fixtures/, through the `trustgate` command line."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.oci_push import (
    Pushed,
    attach_cosign_attestations,
    attach_cosign_signatures,
    attach_referrer,
    push_image,
    push_index,
)
from support.registry import RegistryProcess
from support.sigstore import GITHUB_ISSUER, KeyPair, Signer, SigstoreInstance, statement
from support.trustgate_config import write_config

from trustgate.cli.main import main
from trustgate.oci.client import RegistryClient

SLSA_V1 = "https://slsa.dev/provenance/v1"
VULN = "https://cosign.sigstore.dev/attestation/vuln/v1"
RELEASE = "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.4.2"
DEV = "https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/dev"
BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"


def provenance(
    digest: str, *, repository: str = "https://github.com/acme/shop", ref: str = "refs/tags/v1.4.2"
) -> dict[str, Any]:
    return statement(
        digest,
        SLSA_V1,
        {
            "buildDefinition": {"externalParameters": {"workflow": {"repository": repository, "ref": ref}}},
            "runDetails": {"builder": {"id": BUILDER}},
        },
    )


def scan(digest: str, vulnerabilities: list[dict[str, str]]) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return statement(
        digest,
        VULN,
        {
            "scanner": {
                "uri": "pkg:github/aquasecurity/trivy@0.50.0",
                "result": {"Results": [{"Vulnerabilities": vulnerabilities}]},
            },
            "metadata": {"scanStartedOn": now, "scanFinishedOn": now},
        },
    )


@pytest.fixture(scope="module")
def client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    c = RegistryClient(registry.settings())
    yield c
    c.close()


@pytest.fixture
def project(tmp_path: Path, registry: RegistryProcess, sigstore: SigstoreInstance) -> Callable[..., Path]:
    """Writes trustgate.yaml (image rules for this registry) and a Deployment using `images`."""
    sigstore.write_trusted_root(tmp_path / "trusted_root.json")
    (tmp_path / "release.pub").write_bytes(sigstore.key("ecdsa-p256").public_pem)

    def write(
        images: list[str], *, extra_rule: str = "", mode: str = "enforce", host: str | None = None
    ) -> Path:
        host = host or registry.host
        (tmp_path / "trustgate.yaml").write_text(
            textwrap.dedent(
                f"""\
                apiVersion: trustgate.dev/v1alpha1
                kind: Config
                mode: {mode}
                manifests:
                  policies: []
                  data:
                    trustgate:
                      slsa:
                        builders: ["{BUILDER}"]
                        sources: ["git+https://github.com/acme/*"]
                        refs: ["refs/tags/v*"]
                      vuln: {{grace_days: 14}}
                kubernetes: {{schemas: false}}
                images:
                  trustRoots: [{{name: test-instance, trustedRoot: trusted_root.json}}]
                  authorities:
                    - name: ci
                      keyless:
                        trustRoot: test-instance
                        identities:
                          - subjectRegExp: 'https://github\\.com/acme/[^@]+@refs/tags/v[^@]+'
                            issuer: {GITHUB_ISSUER}
                    - name: release-key
                      key: {{path: release.pub, trustRoot: test-instance}}  # the log must hold it
                  rules:
                    - name: shop
                      images: ["{host}/shop/**"]
                      signatures: {{authorities: [ci]}}
                      attestations:
                        - name: provenance
                          predicateType: slsaprovenance1
                          policy: "builtin:slsa-provenance"
                    - name: tools
                      images: ["{host}/tools/**"]
                      signatures: {{authorities: [ci, release-key], threshold: 1}}
                      attestations:
                        - {{name: scan, predicateType: vuln, policy: "builtin:vulnerabilities"}}
                {textwrap.indent(extra_rule, "    ")}
                  unmatched: deny
                  registries: {{insecure: ["{host}"], timeoutSeconds: 2}}
                """
            )
        )
        containers = "\n".join(
            f"        - {{name: c{i}, image: '{image}'}}" for i, image in enumerate(images)
        )
        (tmp_path / "deploy.yaml").write_text(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop, namespace: prod}\nspec:\n"
            "  selector: {matchLabels: {app: shop}}\n  template:\n    metadata: {labels: {app: shop}}\n"
            f"    spec:\n      containers:\n{containers}\n"
        )
        return tmp_path

    return write


def run(*args: str) -> tuple[int, str, dict[str, Any] | None]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    payload = None
    if "json" in args:
        payload = json.loads(result.stdout)
    return result.exit_code, result.output, payload


def signed_with_bundles(
    client: RegistryClient, sigstore: SigstoreInstance, repo: str, *, subject: str = RELEASE
) -> Pushed:
    """An image with a keyless signature and a SLSA attestation attached as referrers (Sigstore bundles)."""
    image = push_image(client, repo, content=os.urandom(16))
    signer = sigstore.identity(subject)
    attach_referrer(client, image.ref, image, sigstore.sign_artifact(image.digest, signer))
    attach_referrer(client, image.ref, image, sigstore.attest(provenance(image.digest), signer))
    return image


def test_keyless_bundles_in_referrers_pass_with_evidence(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    image = signed_with_bundles(client, sigstore, f"{registry.host}/shop/api:v1.4.2")
    root = project([f"{registry.host}/shop/api:v1.4.2"])
    code, output, report = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "-o", "json"
    )
    assert code == 0, output
    assert report is not None
    (verified,) = report["images"]
    assert verified["status"] == "verified" and verified["digest"] == image.digest
    assert verified["resolvedFrom"] == "v1.4.2" and verified["cache"] == "miss"
    (signature,) = verified["signatures"]
    assert signature["subject"] == RELEASE and signature["issuer"] == GITHUB_ISSUER
    assert signature["source"] == "referrers-tag"  # distribution 2.8 has no referrers API
    assert isinstance(signature["logIndex"], int) and signature["integratedTime"]
    (attestation,) = verified["attestations"]
    assert attestation["predicateType"] == SLSA_V1 and attestation["verdict"] == "passed"
    assert attestation["digest"] == image.digest and attestation["envelope"]


def test_a_signature_by_a_branch_build_is_denied_in_words(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    signed_with_bundles(client, sigstore, f"{registry.host}/shop/web:dev", subject=DEV)
    root = project([f"{registry.host}/shop/web:dev"])
    code, output, _ = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "--no-color"
    )
    assert code == 1, output
    assert "image-signature" in output
    assert f"signed, but by {DEV}" in output
    assert "refs/tags/v[^@]+" in output  # what the policy wants
    assert "deploy.yaml" in output


def test_provenance_from_another_repository_is_denied(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    image = push_image(client, f"{registry.host}/shop/cart:v2", content=os.urandom(16))
    signer = sigstore.identity(RELEASE)
    attach_referrer(client, image.ref, image, sigstore.sign_artifact(image.digest, signer))
    bad = provenance(image.digest, repository="https://github.com/evil/shop")
    attach_referrer(client, image.ref, image, sigstore.attest(bad, signer))
    root = project([f"{registry.host}/shop/cart:v2"])
    code, output, _ = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "--no-color"
    )
    assert code == 1, output
    assert "image-attestation" in output
    assert (
        "built from git+https://github.com/evil/shop, and the policy wants git+https://github.com/acme/*"
        in output
    )


def test_cosign_tag_scheme_keyless_signature_and_a_failing_scan(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    image = push_image(client, f"{registry.host}/tools/kubectl:1.32", content=os.urandom(16))
    signer = sigstore.identity(RELEASE)
    attach_cosign_signatures(client, image.ref, image.digest, [sigstore.cosign_sign(image.digest, signer)])
    log4shell = {
        "VulnerabilityID": "CVE-2021-44228",
        "Severity": "CRITICAL",
        "PkgName": "log4j-core",
        "PublishedDate": "2021-12-10T10:15:00Z",
    }
    attach_cosign_attestations(
        client, image.ref, image.digest, [sigstore.cosign_attest(scan(image.digest, [log4shell]), signer)]
    )
    root = project([f"{registry.host}/tools/kubectl:1.32"])
    code, output, report = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "-o", "json"
    )
    assert code == 1, output
    assert report is not None
    (image_report,) = report["images"]
    assert image_report["signatures"][0]["source"] == "cosign-tag"
    (finding,) = report["results"][0]["findings"]
    assert finding["rule"] == "image-attestation"
    assert "CRITICAL CVE-2021-44228 in log4j-core, public since 2021-12-10" in finding["message"]
    assert finding["metadata"]["attestation"] == "scan"


def test_a_clean_scan_signed_with_a_key_passes_one_of_two(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    image = push_image(client, f"{registry.host}/tools/jq:1.7", content=os.urandom(16))
    key = sigstore.key("ecdsa-p256")
    attach_cosign_signatures(client, image.ref, image.digest, [sigstore.cosign_sign(image.digest, key)])
    attach_cosign_attestations(
        client, image.ref, image.digest, [sigstore.cosign_attest(scan(image.digest, []), key)]
    )
    root = project([f"{registry.host}/tools/jq:1.7"])
    code, output, report = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "-o", "json"
    )
    assert code == 0, output
    assert report is not None
    assert report["images"][0]["signatures"][0]["authority"] == "release-key"


def test_multi_arch_attestations_on_platform_manifests(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    index = push_index(client, f"{registry.host}/shop/multi:v3")
    signer = sigstore.identity(RELEASE)
    attach_referrer(client, index.ref, index, sigstore.sign_artifact(index.digest, signer))
    for child in index.children:
        attach_referrer(client, index.ref, child, sigstore.attest(provenance(child.digest), signer))
    root = project([f"{registry.host}/shop/multi:v3"])
    code, output, report = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "-o", "json"
    )
    assert code == 0, output
    assert report is not None
    (image_report,) = report["images"]
    assert image_report["digest"] == index.digest
    assert sorted(a["digest"] for a in image_report["attestations"]) == sorted(
        c.digest for c in index.children
    )
    assert [p["platform"] for p in image_report["platforms"]] == ["linux/amd64", "linux/arm64"]


def test_expired_certificates_and_untrusted_roots_are_denied(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    expired = push_image(client, f"{registry.host}/shop/old:v1", content=os.urandom(16))
    attach_referrer(
        client,
        expired.ref,
        expired,
        sigstore.sign_artifact(expired.digest, sigstore.identity(RELEASE, expired=True)),
    )
    stranger = SigstoreInstance.create(tmp_path / "other-keys")
    foreign = push_image(client, f"{registry.host}/shop/foreign:v1", content=os.urandom(16))
    attach_referrer(
        client, foreign.ref, foreign, stranger.sign_artifact(foreign.digest, stranger.identity(RELEASE))
    )
    root = project([f"{registry.host}/shop/old:v1", f"{registry.host}/shop/foreign:v1"])
    code, output, report = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "-o", "json"
    )
    assert code == 1, output
    assert report is not None
    assert [i["status"] for i in report["images"]] == ["failed", "failed"]
    messages = [f["message"] for f in report["results"][0]["findings"] if f["rule"] == "image-signature"]
    assert len(messages) == 2 and all("ci:" in m for m in messages)


def test_an_unreachable_registry_is_could_not_verify(project: Callable[..., Path]) -> None:
    root = project(["127.0.0.1:9/shop/api:v1"], host="127.0.0.1:9")  # port 9: nothing listens
    code, output, _ = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "--no-color"
    )
    assert code == 3, output
    assert "image-unverifiable" in output and "could not verify 127.0.0.1:9/shop/api:v1" in output


def test_unmatched_images_are_denied_when_configured(project: Callable[..., Path]) -> None:
    root = project(["docker.io/library/nginx:1.27"])
    code, output, _ = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "--no-color"
    )
    assert code == 1 and "image-no-policy" in output


def test_verify_image_with_flags(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance
) -> None:
    image = signed_with_bundles(client, sigstore, f"{registry.host}/shop/flags:v1")
    root_file = sigstore.write_trusted_root(tmp_path / "trusted_root.json")
    common = ["verify", "image", f"{registry.host}/shop/flags:v1", "--trusted-root", str(root_file)]
    common += ["--insecure-registry", registry.host, "--certificate-oidc-issuer", GITHUB_ISSUER]
    code, output, report = run(
        *common, "--certificate-identity", RELEASE, "--attestation", "slsaprovenance1", "-o", "json"
    )
    assert code == 0, output
    assert report is not None and report["images"][0]["digest"] == image.digest
    code, output, _ = run(*common, "--certificate-identity", DEV, "--no-color")
    assert code == 1
    assert f"signed, but by {RELEASE}" in output


def test_verify_image_needs_a_signer_or_rules() -> None:
    result = CliRunner().invoke(main, ["verify", "image", "registry.example.com/a:1"])
    assert result.exit_code == 2
    assert "no image rules to verify against" in result.output


def test_basic_auth_registry_with_and_without_credentials(
    tmp_path: Path, basic_registry: RegistryProcess, sigstore: SigstoreInstance
) -> None:
    with RegistryClient(basic_registry.settings()) as authed:
        image = push_image(authed, f"{basic_registry.host}/shop/private:v1", content=os.urandom(16))
        attach_referrer(
            authed, image.ref, image, sigstore.sign_artifact(image.digest, sigstore.identity(RELEASE))
        )
    root_file = sigstore.write_trusted_root(tmp_path / "trusted_root.json")
    args = ["verify", "image", f"{basic_registry.host}/shop/private:v1", "--trusted-root", str(root_file)]
    args += ["--insecure-registry", basic_registry.host, "--certificate-identity", RELEASE]
    args += ["--certificate-oidc-issuer", GITHUB_ISSUER, "--no-color"]
    env = {"DOCKER_CONFIG": str(tmp_path / "empty")}
    (tmp_path / "empty").mkdir()
    result = CliRunner(env=env).invoke(main, args)
    assert result.exit_code == 3, result.output
    assert "(unauthorized)" in result.output
    config_dir = basic_registry.docker_config().parent
    (config_dir / "config.json").write_text(basic_registry.docker_config().read_text())
    result = CliRunner(env={"DOCKER_CONFIG": str(config_dir)}).invoke(main, args)
    assert result.exit_code == 0, result.output


def test_the_installed_command_end_to_end(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    signed_with_bundles(client, sigstore, f"{registry.host}/shop/cli:v9")
    root = project([f"{registry.host}/shop/cli:v9"])
    command = [str(Path(sys.executable).parent / "trustgate")]
    done = subprocess.run(
        [*command, "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "--no-color"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified (rule shop)" in done.stdout


def test_the_decision_log_records_verified_digests_for_auditors(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    image = signed_with_bundles(client, sigstore, f"{registry.host}/shop/audited:v7")
    root = project([f"{registry.host}/shop/audited:v7"])
    store = f"sqlite:///{tmp_path / 'decisions.db'}"
    code, output, _ = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "--decision-log", store
    )
    assert code == 0, output
    code, output, rows = run("log", "query", "--store", store, "--image", image.digest, "--format", "json")
    assert code == 0, output
    assert rows is not None and len(rows) == 1
    code, output, _ = run("log", "show", "--store", store, rows[0]["record"]["id"])
    assert code == 0, output
    assert image.digest in output and RELEASE in output  # the digest and who signed it
    code, output, _ = run("log", "verify", "--store", store)
    assert code == 0, output


CRITICAL = {
    "VulnerabilityID": "CVE-2024-0001",
    "Severity": "CRITICAL",
    "PkgName": "openssl",
    "PublishedDate": "2024-01-01T00:00:00Z",
}


def _reverse_referrers(client: RegistryClient, image: Pushed) -> None:
    """What anyone who can push can do: list the same signed artifacts in the other order."""
    from trustgate.oci import mediatypes as mt

    tag = image.digest.replace(":", "-")
    index = client.manifest(image.ref, tag)
    assert index is not None
    body = dict(index.json)
    body["manifests"] = list(reversed(body["manifests"]))
    client.push_manifest(image.ref, json.dumps(body).encode(), mt.OCI_INDEX, tag)


def test_scans_without_a_log_each_count_however_the_registry_lists_them(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance
) -> None:
    """A scanner key without a transparency log: no trusted time orders its scans, so reordering
    the referrers must not let an older clean scan hide a newer CRITICAL one (nor the reverse)."""
    sigstore.write_trusted_root(tmp_path / "trusted_root.json")
    scanner = sigstore.key("ecdsa-p384")
    (tmp_path / "scanner.pub").write_bytes(scanner.public_pem)
    (tmp_path / "trustgate.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: trustgate.dev/v1alpha1
            kind: Config
            manifests: {{policies: [], data: {{trustgate: {{vuln: {{grace_days: 14}}}}}}}}
            kubernetes: {{schemas: false}}
            images:
              trustRoots: [{{name: test-instance, trustedRoot: trusted_root.json}}]
              authorities:
                - name: ci
                  keyless:
                    trustRoot: test-instance
                    identities: [{{subject: "{RELEASE}", issuer: "{GITHUB_ISSUER}"}}]
                - name: scanner
                  key: {{path: scanner.pub}}  # no trustRoot: no log, no trusted time
              rules:
                - name: scanned
                  images: ["{registry.host}/scanned/**"]
                  signatures: {{authorities: [ci]}}
                  attestations:
                    - name: scan
                      predicateType: vuln
                      policy: "builtin:vulnerabilities"
                      authorities: [scanner]
              registries: {{insecure: ["{registry.host}"], timeoutSeconds: 2}}
            """
        )
    )
    image = push_image(client, f"{registry.host}/scanned/app:1", content=os.urandom(16))
    attach_referrer(
        client, image.ref, image, sigstore.sign_artifact(image.digest, sigstore.identity(RELEASE))
    )
    attach_referrer(client, image.ref, image, sigstore.attest(scan(image.digest, []), scanner))  # older
    attach_referrer(client, image.ref, image, sigstore.attest(scan(image.digest, [CRITICAL]), scanner))
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: app, namespace: prod}\n"
        f"spec: {{containers: [{{name: app, image: '{image.ref}'}}]}}\n"
    )
    for order in ("as attached", "reversed"):
        if order == "reversed":
            _reverse_referrers(client, image)
        code, output, report = run(
            "check", "-c", str(tmp_path / "trustgate.yaml"), str(tmp_path / "pod.yaml"), "-o", "json"
        )
        assert code == 1, f"{order}: {output}"
        assert report is not None
        (finding,) = report["results"][0]["findings"]
        assert "CRITICAL CVE-2024-0001 in openssl" in finding["message"], order
        assert "no trusted time to tell which is newest" in finding["message"], order
        verdicts = sorted(a["verdict"] for a in report["images"][0]["attestations"])
        assert verdicts == ["denied", "passed"], order


@pytest.mark.parametrize("newest", ["clean", "critical"])
def test_logged_scans_are_ranked_by_the_logs_time_not_the_listing_order(
    newest: str,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    image = push_image(client, f"{registry.host}/tools/scanned-{newest}:1", content=os.urandom(16))
    signer = sigstore.identity(RELEASE)
    attach_cosign_signatures(client, image.ref, image.digest, [sigstore.cosign_sign(image.digest, signer)])
    yesterday = SigstoreInstance.load(now=sigstore.now() - dt.timedelta(days=1))
    old_signer = yesterday.identity(RELEASE)
    findings = {"clean": [], "critical": [CRITICAL]}
    older = "critical" if newest == "clean" else "clean"
    # The newest is attached first: listed first, as a reordering would leave it.
    attach_referrer(client, image.ref, image, sigstore.attest(scan(image.digest, findings[newest]), signer))
    attach_referrer(
        client, image.ref, image, yesterday.attest(scan(image.digest, findings[older]), old_signer)
    )
    root = project([str(image.ref)])
    code, output, report = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "-o", "json"
    )
    assert code == (0 if newest == "clean" else 1), output
    assert report is not None
    verdicts = [a["verdict"] for a in report["images"][0]["attestations"]]
    assert verdicts == ["superseded", "passed" if newest == "clean" else "denied"]


@pytest.mark.parametrize(
    "ref",
    [
        {"tag": "stable", "semver": ">=1.0.0"},
        {"semver": ">=1.0.0"},
        {"tag": "stable", "semver": "*", "semverFilter": ".*"},
        {"tag": "stable"},
    ],
    ids=["tag+semver", "semver", "semverFilter", "tag"],
)
def test_a_flux_source_on_a_moving_ref_fails_not_its_signed_tag_verified(
    ref: dict[str, str],
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """Flux pulls the highest tag matching semver (here the unsigned 9.9.9), not ref.tag: verifying
    the signed `stable` (or `latest`) instead would pass what Flux never deploys. With ref.tag
    alone, Flux re-reads `stable` at every sync: its signed digest now says nothing of what a
    re-pointed tag makes it deploy later."""
    signed = push_image(client, f"{registry.host}/shop/manifests:stable", content=b"signed manifests")
    attach_referrer(
        client, signed.ref, signed, sigstore.sign_artifact(signed.digest, sigstore.identity(RELEASE))
    )
    attach_referrer(
        client, signed.ref, signed, sigstore.attest(provenance(signed.digest), sigstore.identity(RELEASE))
    )
    push_image(client, f"{registry.host}/shop/manifests:latest", content=b"signed manifests")
    push_image(client, f"{registry.host}/shop/manifests:9.9.9", content=b"UNSIGNED")
    root = project([])
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1beta2",
        "kind": "OCIRepository",
        "metadata": {"name": "app", "namespace": "flux-system"},
        "spec": {"interval": "1m", "url": f"oci://{registry.host}/shop/manifests", "ref": ref},
    }
    (root / "source.yaml").write_text(json.dumps(source))
    code, output, report = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "source.yaml"), "-o", "json"
    )
    # A policy failure: the object's author chose the moving reference ("could not evaluate" went
    # to the webhook's failure policy, which admits in fail-open namespaces).
    assert code == 1, output
    assert report is not None
    (image,) = report["images"]
    assert (image["status"], image.get("digest")) == ("failed", None)
    (finding,) = report["results"][0]["findings"]
    assert finding["rule"] == "image-digest" and finding["severity"] == "error"
    if "semver" in ref:
        assert finding["path"] == "spec.ref.semver"
        assert "ref.semver '>=1.0.0'" in finding["message"] or "ref.semver '*'" in finding["message"]
    else:
        assert finding["path"] == "spec.ref.tag" and "ref.tag 'stable'" in finding["message"]
    assert "ref.digest" in finding["fix"]


@pytest.mark.parametrize("newest", ["critical", "clean"])
def test_todays_scan_in_the_att_tag_is_judged_though_the_referrers_satisfy_the_rule(
    newest: str,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """The referrers alone satisfy the rule (a signature, yesterday's scan); today's scan was
    attached with `cosign attest`, in the `.att` tag. Every place is looked at (ADR 5), so the
    newest scan is judged wherever it lives: an older clean scan in the referrers does not hide
    today's CRITICAL finding, and an older failing one does not block today's clean pass."""
    image = push_image(client, f"{registry.host}/tools/migrating-{newest}:1", content=os.urandom(16))
    signer = sigstore.identity(RELEASE)
    yesterday = SigstoreInstance.load(now=sigstore.now() - dt.timedelta(days=1))
    findings = {"clean": [], "critical": [CRITICAL]}
    older = "clean" if newest == "critical" else "critical"
    attach_referrer(client, image.ref, image, sigstore.sign_artifact(image.digest, signer))
    attach_referrer(
        client,
        image.ref,
        image,
        yesterday.attest(scan(image.digest, findings[older]), yesterday.identity(RELEASE)),
    )
    attach_cosign_attestations(
        client,
        image.ref,
        image.digest,
        [sigstore.cosign_attest(scan(image.digest, findings[newest]), signer)],
    )
    root = project([str(image.ref)])
    code, output, report = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "-o", "json"
    )
    assert code == (1 if newest == "critical" else 0), output
    assert report is not None
    judged = [(a["verdict"], a["source"]) for a in report["images"][0]["attestations"]]
    today = "denied" if newest == "critical" else "passed"
    assert judged == [("superseded", "referrers-tag"), (today, "cosign-tag")]


def test_artifacts_beyond_the_budget_fail_the_image_and_name_the_setting(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """Whoever can push lists junk referrers before today's CRITICAL scan: past the budget
    (images.registries.maxArtifacts, 64) it would not be read, so the image cannot be verified
    (it used to pass on what was read); with the budget raised, the scan is read and denies."""
    image = push_image(client, f"{registry.host}/tools/crowded:1", content=os.urandom(16))
    signer = sigstore.identity(RELEASE)
    attach_referrer(client, image.ref, image, sigstore.sign_artifact(image.digest, signer))
    attach_referrer(client, image.ref, image, sigstore.attest(scan(image.digest, []), signer))
    for i in range(62):
        attach_referrer(client, image.ref, image, b'{"junk": %d}' % i)
    root = project([str(image.ref)])
    args = ("check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "-o", "json")
    code, output, _ = run(*args)
    assert code == 0, output  # 64 artifacts: within the budget, every one examined
    attach_referrer(client, image.ref, image, sigstore.attest(scan(image.digest, [CRITICAL]), signer))
    code, output, report = run(*args)
    assert code == 1, output
    assert report is not None
    (finding,) = report["results"][0]["findings"]
    assert finding["rule"] == "image-artifact" and finding["severity"] == "error"
    assert (
        f"1 signature or attestation artifact(s) attached to {image.ref.name}@{image.digest}"
        in (finding["message"])
    )
    assert "images.registries.maxArtifacts (64)" in finding["message"]
    assert "raise images.registries.maxArtifacts (at most 1024)" in finding["fix"]
    config = root / "trustgate.yaml"
    config.write_text(
        config.read_text().replace("timeoutSeconds: 2}", "timeoutSeconds: 2, maxArtifacts: 128}")
    )
    code, output, report = run(*args)
    assert code == 1, output
    assert report is not None
    (finding,) = report["results"][0]["findings"]
    assert (
        finding["rule"] == "image-attestation" and "CRITICAL CVE-2024-0001 in openssl" in finding["message"]
    )


def test_a_payload_too_large_to_read_fails_the_image_and_names_the_setting(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """Today's CRITICAL scan of an image with 5 MB of Trivy targets is a 6.6 MB DSSE envelope in
    the `.att` tag, beside yesterday's clean scan. Past images.registries.maxPayloadBytes (4 MiB)
    it is not read, so the image cannot be verified (it used to be skipped as a note, and the
    clean scan passed the image); with the setting raised, the scan is read and denies."""
    image = push_image(client, f"{registry.host}/tools/big-scan:1", content=os.urandom(16))
    signer = sigstore.identity(RELEASE)
    attach_cosign_signatures(client, image.ref, image.digest, [sigstore.cosign_sign(image.digest, signer)])
    clean = sigstore.cosign_attest(scan(image.digest, []), signer)
    attach_cosign_attestations(client, image.ref, image.digest, [clean])
    root = project([str(image.ref)])
    args = ("check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "-o", "json")
    code, output, _ = run(*args)
    assert code == 0, output  # a scan of a normal size is read as before
    critical = scan(image.digest, [CRITICAL])
    critical["predicate"]["scanner"]["result"]["Results"].append(
        {"Target": "x" * 5_000_000, "Vulnerabilities": []}  # a big image's many targets
    )
    big = sigstore.cosign_attest(critical, signer)
    assert len(big.envelope) > 4 * 1024 * 1024
    attach_cosign_attestations(client, image.ref, image.digest, [clean, big])
    code, output, report = run(*args)
    assert code == 1, output
    assert report is not None
    (finding,) = report["results"][0]["findings"]
    assert finding["rule"] == "image-artifact" and finding["severity"] == "error"
    message = finding["message"]
    assert f"1 signature or attestation payload(s) attached to {image.ref.name}@{image.digest}" in message
    assert "images.registries.maxPayloadBytes (4194304 bytes)" in message
    assert f"({len(big.envelope)} bytes)" in message and ".att" in message
    assert "raise images.registries.maxPayloadBytes (at most 67108864)" in finding["fix"]
    config = root / "trustgate.yaml"
    config.write_text(
        config.read_text().replace("timeoutSeconds: 2}", "timeoutSeconds: 2, maxPayloadBytes: 8388608}")
    )
    code, output, report = run(*args)
    assert code == 1, output
    assert report is not None
    (finding,) = report["results"][0]["findings"]
    assert (
        finding["rule"] == "image-attestation" and "CRITICAL CVE-2024-0001 in openssl" in finding["message"]
    )


def _pod(directory: Path, images: list[str]) -> Path:
    """A Pod with one container per image, in `directory`/pod.yaml."""
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "prod"}}
    (directory / "pod.yaml").write_text(json.dumps(pod | {"spec": {"containers": containers}}))
    return directory / "pod.yaml"


def _judged_behind_a_dead_proxy(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sigstore: SigstoreInstance,
    images: str,
    references: list[str],
) -> tuple[int, str, dict[str, tuple[str, str | None]]]:
    """`check -o json` of a Pod of `references` under the config section `images` (release.pub is the
    release key) while every request goes to a proxy where nothing listens: the exit code, the
    output, and each image's status and rule."""
    from support.registry import free_port, only_all_proxy

    only_all_proxy(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    (tmp_path / "release.pub").write_bytes(sigstore.key("ecdsa-p256").public_pem)
    write_config(tmp_path, images)
    code, output, report = run(
        "check", "-c", str(tmp_path / "trustgate.yaml"), str(_pod(tmp_path, references)), "-o", "json"
    )
    assert report is not None
    return code, output, {i["reference"]: (i["status"], i.get("rule")) for i in report["images"]}


def test_a_tag_does_not_pick_the_image_rule(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance
) -> None:
    """Rules match `registry/repository` (README): an unsigned image under tags that end like an
    excluded (`*-debug`) or a lenient (`*-dev`) repository stays under its repository's rule,
    while those repositories themselves are excluded or judged leniently."""
    host = registry.host
    (tmp_path / "release.pub").write_bytes(sigstore.key("ecdsa-p256").public_pem)
    write_config(
        tmp_path,
        f"""\
        images:
          authorities: [{{name: release, key: {{path: release.pub}}}}]
          rules:
            - name: dev-repositories
              images: ["{host}/**-dev"]
            - name: shop
              images: ["{host}/tagged/**"]
              exclude: ["{host}/**-debug"]
              signatures: {{authorities: [release]}}
          unmatched: allow
          registries: {{insecure: ["{host}"], timeoutSeconds: 2}}
        """,
    )
    unsigned = push_image(client, f"{host}/tagged/api:v2", content=os.urandom(16))
    for tag in ("v2-debug", "v2-dev"):
        client.push_manifest(unsigned.ref, unsigned.raw, unsigned.media_type, tag)
    push_image(client, f"{host}/tagged/api-dev:v1", content=os.urandom(16))
    push_image(client, f"{host}/tagged/api-debug:v1", content=os.urandom(16))
    images = [f"{host}/tagged/api:{tag}" for tag in ("v2", "v2-debug", "v2-dev")]
    images += [f"{host}/tagged/api-dev:v1", f"{host}/tagged/api-debug:v1"]
    code, output, report = run(
        "check", "-c", str(tmp_path / "trustgate.yaml"), str(_pod(tmp_path, images)), "-o", "json"
    )
    assert code == 1, output
    assert report is not None
    judged = {i["reference"]: (i["status"], i.get("rule")) for i in report["images"]}
    assert judged == {
        images[0]: ("failed", "shop"),
        images[1]: ("failed", "shop"),
        images[2]: ("failed", "shop"),
        images[3]: ("verified", "dev-repositories"),
        images[4]: ("unmatched", None),
    }


def test_a_default_port_keeps_an_image_in_its_registrys_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigstore: SigstoreInstance
) -> None:
    """Docker Hub's hosts with their default port are Docker Hub, and a catch-all beside a pattern
    naming a port does not take the host's other images (no registry is reached: every request
    goes to a proxy where nothing listens, so each judged image is could-not-verify, under its rule)."""
    images = """\
        images:
          authorities: [{name: release, key: {path: release.pub}}]
          rules:
            - name: docker-hub
              images: ["docker.io/**"]
              signatures: {authorities: [release]}
            - name: acme
              images: ["registry.acme.io/**"]
              signatures: {authorities: [release]}
            - name: sandbox-and-rest
              images: ["registry.acme.io:443/sandbox/**", "**"]
          unmatched: allow
        """
    digest = "sha256:" + "0123456789abcdef" * 4
    expected = {
        f"registry-1.docker.io:443/library/nginx@{digest}": "docker-hub",
        f"index.docker.io:443/nginx@{digest}": "docker-hub",
        f"docker.io:443/library/nginx@{digest}": "docker-hub",
        f"registry.acme.io:443/prod/api@{digest}": "acme",
        f"registry.acme.io:443/sandbox/api@{digest}": "sandbox-and-rest",  # its pattern names the port
    }
    code, output, judged = _judged_behind_a_dead_proxy(
        tmp_path, monkeypatch, sigstore, images, list(expected)
    )
    assert code == 3, output  # could not verify (the proxy), under the rules above: none unmatched
    assert judged == {image: ("unverifiable", rule) for image, rule in expected.items()}


def test_an_earlier_rules_exclusion_holds_for_an_image_written_with_a_default_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigstore: SigstoreInstance
) -> None:
    """Found in review: a catch-all listed first excluding `registry.acme.io/prod/**` tested the
    exclusion only against the name as written, so `registry.acme.io:443/prod/api` (or `:80`,
    `REGISTRY.acme.io:0443`) was judged by the catch-all, which needs no signature, instead of
    the prod rule (no registry is reached: requests go to a proxy where nothing listens)."""
    images = """\
        images:
          authorities: [{name: release, key: {path: release.pub}}]
          rules:
            - name: baseline
              images: ["**"]
              exclude: ["registry.acme.io/prod/**"]
            - name: prod
              images: ["registry.acme.io/prod/**"]
              signatures: {authorities: [release]}
          unmatched: deny
        """
    digest = "sha256:" + "0123456789abcdef" * 4
    expected = {
        f"registry.acme.io:443/prod/api@{digest}": "prod",
        f"registry.acme.io:80/prod/api@{digest}": "prod",
        f"REGISTRY.acme.io:0443/prod/api@{digest}": "prod",
        f"registry.acme.io/prod/api@{digest}": "prod",
        f"registry.acme.io:443/dev/api@{digest}": "baseline",
    }
    code, output, judged = _judged_behind_a_dead_proxy(
        tmp_path, monkeypatch, sigstore, images, list(expected)
    )
    assert code == 3, output
    assert judged == {image: ("unverifiable", rule) for image, rule in expected.items()}


def test_an_image_volume_is_verified_like_a_containers_image(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """KEP-4639's image volumes (`volumes[].image.reference`) are pulled by the kubelet and run by
    the containers mounting them (found in review: never verified, an unsigned tools image was
    admitted beside a signed container). Judged by the same rules, at the field holding them."""
    signed = signed_with_bundles(client, sigstore, f"{registry.host}/shop/api:v1")
    unsigned = push_image(client, f"{registry.host}/shop/tools:v1", content=os.urandom(16))
    root = project([str(signed.ref)])
    deployment = root / "deploy.yaml"
    deployment.write_text(
        deployment.read_text()
        + f"      volumes:\n        - name: tools\n          image: {{reference: '{unsigned.ref}'}}\n"
    )
    code, output, report = run("check", "-c", str(root / "trustgate.yaml"), str(deployment), "-o", "json")
    assert code == 1, output
    assert report is not None
    judged = {i["reference"]: (i["status"], i.get("rule")) for i in report["images"]}
    assert judged == {str(signed.ref): ("verified", "shop"), str(unsigned.ref): ("failed", "shop")}
    rules = {(f["rule"], f["path"]) for f in report["results"][0]["findings"]}
    assert ("image-signature", "spec.template.spec.volumes[0].image.reference") in rules, output


def test_a_threshold_is_not_met_by_one_identity_signing_twice(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found in review: two signatures by one workflow (two Fulcio certificates for one identity,
    a second signing run) met `threshold: 2` over two authorities whose identities overlap.
    Thresholds count signers (ADR 5): a keyless signer is its issuer and subject."""
    from cryptography.hazmat.primitives.asymmetric import ec

    security = "https://github.com/acme/security/.github/workflows/sign.yml@refs/heads/main"
    sigstore.write_trusted_root(tmp_path / "trusted_root.json")
    write_config(
        tmp_path,
        f"""\
        images:
          trustRoots: [{{name: t, trustedRoot: trusted_root.json}}]
          authorities:
            - name: release-ci
              keyless:
                trustRoot: t
                identities: [{{subjectRegExp: 'https://github\\.com/acme/.+', issuer: {GITHUB_ISSUER}}}]
            - name: security-team
              keyless:
                trustRoot: t
                identities:
                  - {{subjectRegExp: 'https://github\\.com/acme/security/.+', issuer: {GITHUB_ISSUER}}}
          rules:
            - name: two
              images: ["{registry.host}/two/**"]
              signatures: {{authorities: [release-ci, security-team], threshold: 2}}
          registries: {{insecure: ["{registry.host}"], timeoutSeconds: 2}}
        """,
    )
    once = sigstore.identity(security)
    # A second signing run: a fresh ephemeral key and a certificate of its own, as Fulcio clients get.
    monkeypatch.setattr(
        sigstore, "_leaf_key", lambda subject, issuer: ec.generate_private_key(ec.SECP256R1())
    )
    again = sigstore._make_leaf(
        security, GITHUB_ISSUER, once.certificate.not_valid_before_utc - dt.timedelta(seconds=60), "both"
    )
    monkeypatch.undo()
    assert once.certificate.public_key() != again.certificate.public_key()
    twice = push_image(client, f"{registry.host}/two/twice:1", content=os.urandom(16))
    attach_cosign_signatures(
        client, twice.ref, twice.digest, [sigstore.cosign_sign(twice.digest, s) for s in (once, again)]
    )
    both = push_image(client, f"{registry.host}/two/both:1", content=os.urandom(16))
    signers = (once, sigstore.identity(RELEASE))  # two identities: security's and the release workflow
    attach_cosign_signatures(
        client, both.ref, both.digest, [sigstore.cosign_sign(both.digest, s) for s in signers]
    )
    config = str(tmp_path / "trustgate.yaml")
    code, output, report = run("verify", "image", "-c", config, str(twice.ref), "-o", "json")
    assert code == 1, output
    assert report is not None
    (judged,) = report["images"]
    assert judged["status"] == "failed" and judged["problems"][0]["rule"] == "image-signature"
    assert "1 verified" in judged["problems"][0]["message"]
    code, output, _ = run("verify", "image", "-c", config, str(both.ref), "-o", "json")
    assert code == 0, output


PEOPLE_ISSUER = "https://accounts.acme.test"
ALICE, BOB = "alice@acme.test", "bob@acme.test"


def _one_signer_config(tmp_path: Path, host: str, sigstore: SigstoreInstance) -> Path:
    """Rules of two authorities each, threshold 2: `two` (release trusts alice, security alice or
    bob), `keyed` (release, and the key of alice's certificate), `people` (release, and bob)."""
    sigstore.write_trusted_root(tmp_path / "trusted_root.json")
    alice_key = KeyPair("alice-key", sigstore._leaf_key(ALICE, PEOPLE_ISSUER))
    (tmp_path / "alice.pub").write_bytes(alice_key.public_pem)
    return write_config(
        tmp_path,
        f"""\
        images:
          trustRoots: [{{name: t, trustedRoot: trusted_root.json}}]
          authorities:
            - name: release
              keyless: {{trustRoot: t, identities: [{{subject: "{ALICE}", issuer: "{PEOPLE_ISSUER}"}}]}}
            - name: security
              keyless:
                trustRoot: t
                identities: [{{subjectRegExp: '(alice|bob)@acme\\.test', issuer: "{PEOPLE_ISSUER}"}}]
            - name: bob
              keyless: {{trustRoot: t, identities: [{{subject: "{BOB}", issuer: "{PEOPLE_ISSUER}"}}]}}
            - name: alice-key
              key: {{path: alice.pub, trustRoot: t}}
          rules:
            - name: two
              images: ["{host}/two/**"]
              signatures: {{authorities: [release, security], threshold: 2}}
            - name: keyed
              images: ["{host}/keyed/**"]
              signatures: {{authorities: [release, alice-key], threshold: 2}}
            - name: people
              images: ["{host}/people/**"]
              signatures: {{authorities: [release, bob], threshold: 2}}
          registries: {{insecure: ["{host}"], timeoutSeconds: 2}}
        """,
    )


def _sign_as(
    case: str,
    client: RegistryClient,
    image: Pushed,
    sigstore: SigstoreInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attach the signatures of `case` (see the parameters below) to `image`."""

    def bundles(*signers: Signer | KeyPair) -> None:
        for signer in signers:
            attach_referrer(client, image.ref, image, sigstore.sign_artifact(image.digest, signer))

    alice = sigstore.identity(ALICE, PEOPLE_ISSUER)
    if case == "two-people":
        bundles(alice, sigstore.identity(BOB, PEOPLE_ISSUER))
    elif case == "certificates-sharing-a-san":  # first SANs x and y; both name alice
        bundles(
            *(sigstore.identity(f, PEOPLE_ISSUER, more_sans=(ALICE,)) for f in ("x@acme.test", "y@acme.test"))
        )
    elif case == "certificates-sharing-a-san-cosign-tag":
        signers = [
            sigstore.identity(f, PEOPLE_ISSUER, more_sans=(ALICE,)) for f in ("x@acme.test", "y@acme.test")
        ]
        attach_cosign_signatures(
            client, image.ref, image.digest, [sigstore.cosign_sign(image.digest, s) for s in signers]
        )
    elif case == "certificates-sharing-a-san-no-rule-names":  # alice's and bob's, both also "team"
        bundles(*(sigstore.identity(w, PEOPLE_ISSUER, more_sans=("team@acme.test",)) for w in (ALICE, BOB)))
    elif case == "one-certificate-twice":
        bundles(alice, alice)
    elif case == "one-keyless-bundle":  # a key authority accepts it by its certificate's key
        bundles(alice)
    elif case == "keyless-and-key-signature-of-one-key":
        bundles(alice, KeyPair("alice-key", sigstore._leaf_key(ALICE, PEOPLE_ISSUER)))
    elif case == "two-certificates-of-one-key":  # alice's and bob's, the private CA certifying one key
        key = sigstore._leaf_key(ALICE, PEOPLE_ISSUER)
        monkeypatch.setattr(sigstore, "_leaf_key", lambda subject, issuer: key)
        start = alice.certificate.not_valid_before_utc
        bob = sigstore._make_leaf(BOB, PEOPLE_ISSUER, start, "both")
        monkeypatch.undo()
        bundles(alice, bob)
    else:
        raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "repository", "code"),
    [
        ("two-people", "two", 0),
        ("certificates-sharing-a-san", "two", 1),
        ("certificates-sharing-a-san-cosign-tag", "two", 1),
        ("certificates-sharing-a-san-no-rule-names", "people", 1),
        ("one-certificate-twice", "two", 1),
        ("one-keyless-bundle", "keyed", 1),
        ("keyless-and-key-signature-of-one-key", "keyed", 1),
        ("two-certificates-of-one-key", "people", 1),
    ],
)
def test_a_threshold_counts_one_signer_once_whatever_it_signed_with(
    case: str,
    repository: str,
    code: int,
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found in review: signers were counted by the certificate's first SAN, or by the key, as
    each authority saw the signature, so one signer met `threshold: 2` alone: certificates
    `[x, alice]` and `[y, alice]`, two certificates of one key, a keyless signature and a key
    signature with its certificate's key, even one keyless bundle (alice to a keyless authority,
    its certificate's key to a key authority). Signatures that share a signature, certificate,
    key or identity are one signer (ADR 5)."""
    config = _one_signer_config(tmp_path, registry.host, sigstore)
    image = push_image(client, f"{registry.host}/{repository}/{case}:1", content=os.urandom(16))
    _sign_as(case, client, image, sigstore, monkeypatch)
    exit_code, output, report = run("verify", "image", "-c", str(config), str(image.ref), "-o", "json")
    assert exit_code == code, output
    assert report is not None
    (judged,) = report["images"]
    if code == 0:
        assert {s["subject"] for s in judged["signatures"]} == {ALICE, BOB}, judged
        return
    (problem,) = judged["problems"]
    assert problem["rule"] == "image-signature" and "1 verified" in problem["message"], problem
    assert "already counted for another authority" in problem["message"], problem
    assert len(judged["signatures"]) == 1, judged


def test_a_junk_signature_with_an_integrated_time_out_of_range_does_not_fail_a_signed_image(
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """Found in review: a layer a pusher added beside a valid signature, its bundle claiming
    `integratedTime: 10**17`, raised OSError while verifying, and the correctly signed image
    failed with image-internal-error. It is a signature that does not count."""
    import dataclasses

    image = push_image(client, f"{registry.host}/shop/timed:1", content=os.urandom(16))
    signer = sigstore.identity(RELEASE)
    good = sigstore.cosign_sign(image.digest, signer, reference=image.ref.name)
    attach_referrer(client, image.ref, image, sigstore.attest(provenance(image.digest), signer))
    rekor = json.loads(good.bundle)
    rekor["Payload"]["integratedTime"] = 10**17
    junk = dataclasses.replace(good, bundle=json.dumps(rekor), signature=good.signature[:-4] + "AAA=")
    attach_cosign_signatures(client, image.ref, image.digest, [good, junk])
    root = project([f"{image.ref.name}@{image.digest}"])
    code, output, report = run(
        "check", "-c", str(root / "trustgate.yaml"), str(root / "deploy.yaml"), "-o", "json"
    )
    assert code == 0, output
    assert report is not None
    (judged,) = report["images"]
    assert judged["status"] == "verified", judged


def test_buildkits_attestation_manifests_in_an_index_are_not_platforms(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, sigstore: SigstoreInstance
) -> None:
    """`docker buildx build` pushes an index with an attestation manifest per platform (platform
    `unknown/unknown`, `vnd.docker.reference.type: attestation-manifest`), which no runtime runs;
    found in review: each was asked for the rule's attestations, and every buildx image failed."""
    from support.oci_push import _canonical

    from trustgate.oci import mediatypes as mt

    ref = f"{registry.host}/buildx/app"
    amd = push_image(client, ref, platform=("linux", "amd64"), content=os.urandom(16))
    arm = push_image(client, ref, platform=("linux", "arm64"), content=os.urandom(16))
    provenance_manifest = push_image(client, ref, platform=("unknown", "unknown"), content=os.urandom(16))
    attestation = provenance_manifest.descriptor() | {
        "annotations": {
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": amd.digest,
        }
    }
    body = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [amd.descriptor(), arm.descriptor(), attestation],
        }
    )
    digest = client.push_manifest(amd.ref, body, mt.OCI_INDEX, "v1")
    key = sigstore.key("ecdsa-p256")
    index = {"mediaType": mt.OCI_INDEX, "digest": digest, "size": len(body)}
    attach_referrer(client, amd.ref, index, sigstore.sign_artifact(digest, key))
    for platform in (amd, arm):
        attach_referrer(client, platform.ref, platform, sigstore.attest(provenance(platform.digest), key))
    sigstore.write_trusted_root(tmp_path / "trusted_root.json")
    (tmp_path / "release.pub").write_bytes(key.public_pem)
    write_config(
        tmp_path,
        f"""\
        images:
          trustRoots: [{{name: t, trustedRoot: trusted_root.json}}]
          authorities: [{{name: release, key: {{path: release.pub, trustRoot: t}}}}]
          rules:
            - name: buildx
              images: ["{registry.host}/buildx/**"]
              signatures: {{authorities: [release]}}
              attestations: [{{name: provenance, predicateType: slsaprovenance1, authorities: [release]}}]
          registries: {{insecure: ["{registry.host}"], timeoutSeconds: 2}}
        """,
    )
    config = str(tmp_path / "trustgate.yaml")
    code, output, report = run("verify", "image", "-c", config, f"{ref}@{digest}", "-o", "json")
    assert code == 0, output
    assert report is not None
    (judged,) = report["images"]
    assert [p["digest"] for p in judged["platforms"]] == [amd.digest, arm.digest]


def test_an_ipv6_registry_embedding_an_ipv4_address_fails_instead_of_falling_to_unmatched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigstore: SigstoreInstance
) -> None:
    """`[64:ff9b::a00:5]:5000` reaches 10.0.0.5:5000 through NAT64 (and `[::a00:5]`, `[2002:a00:5::1]`
    through older ways of putting IPv4 in IPv6), yet the rule for 10.0.0.5:5000 did not match it:
    with `unmatched: allow` it passed. Now it fails, saying which address to write (no registry is
    reached: every request goes to a proxy where nothing listens)."""
    images = """\
        images:
          authorities: [{name: release, key: {path: release.pub}}]
          rules:
            - name: prod
              images: ["10.0.0.5:5000/**"]
              signatures: {authorities: [release]}
          unmatched: allow
        """
    digest = "sha256:" + "0123456789abcdef" * 4
    embedded = [
        f"[64:ff9b::a00:5]:5000/prod/api@{digest}",
        f"[64:ff9b:1::a00:5]:5000/prod/api@{digest}",
        f"[::a00:5]:5000/prod/api@{digest}",
        f"[2002:a00:5::1]:5000/prod/api@{digest}",
    ]
    plain = f"10.0.0.5:5000/prod/api@{digest}"
    code, output, judged = _judged_behind_a_dead_proxy(
        tmp_path, monkeypatch, sigstore, images, [*embedded, plain]
    )
    assert code == 3, output  # could not verify the plain one: nothing passed
    assert judged == {plain: ("unverifiable", "prod")} | {image: ("failed", None) for image in embedded}
    text = run("check", "-c", str(tmp_path / "trustgate.yaml"), str(tmp_path / "pod.yaml"))[1]
    assert text.count("fix: write the registry as 10.0.0.5:5000, as its rules and exceptions name it") == 3
    # 6to4's address is its relay's, not the registry's: named by DNS, not by 10.0.0.5.
    assert "fix: name the registry by its DNS name (10.0.0.5 is the 6to4 relay" in text
