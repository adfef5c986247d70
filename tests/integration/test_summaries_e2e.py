"""End to end: `check` issues a signed SLSA verification summary (VSA), and a gate that accepts
summaries admits the image through it after its signature is gone from the real registry; summaries
for another policy, expired, revoked, from an untrusted key or malformed do not admit (ADR 12)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.keys import write_p256_key
from support.oci_push import (
    EMPTY_CONFIG,
    Pushed,
    add_to_referrers_tag,
    attach_referrer,
    push_blob_descriptor,
    push_image,
)
from support.registry import RegistryProcess
from support.sigstore import GITHUB_ISSUER, SigstoreInstance, statement
from support.webhook import CertSet, make_certs, review, start_server

from trustgate.artifacts import issuing, summaries
from trustgate.cli.main import main
from trustgate.config import load_config
from trustgate.decisions.log import DecisionLog, open_store
from trustgate.gate import Gate
from trustgate.model import Decision, ImageResult
from trustgate.oci import mediatypes as mt
from trustgate.oci.client import RegistryClient
from trustgate.oci.reference import Reference

SLSA_V1 = "https://slsa.dev/provenance/v1"
RELEASE = "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.4.2"
BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"
VERIFIER = "https://ci.acme.example/trustgate"


@pytest.fixture(scope="module")
def client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    c = RegistryClient(registry.settings())
    yield c
    c.close()


def _key(path: Path) -> ec.EllipticCurvePrivateKey:
    key, public = write_p256_key(path)
    path.with_suffix(".pub").write_bytes(public)
    return key


@pytest.fixture
def project(tmp_path: Path, registry: RegistryProcess, sigstore: SigstoreInstance) -> Callable[..., Path]:
    """Writes `<name>.yaml`: the shop rule, issuing summaries (`issue`) or accepting them (`accept`)."""
    sigstore.write_trusted_root(tmp_path / "trusted_root.json")
    if not (tmp_path / "vsa.pem").exists():
        _key(tmp_path / "vsa.pem")
        _key(tmp_path / "stranger.pem")

    def write(
        name: str,
        *,
        issue: bool = False,
        accept: bool = False,
        max_age: int = 3600,
        refresh: float = 30,
        build_level: int | None = None,
        builder: bool | None = None,
    ) -> Path:
        """`builder`: the provenance signed by the builder's own identity (an authority of its
        own, not the rule's signature authority); default where `build_level` is above 1, which
        is refused otherwise."""
        if builder is None:
            builder = build_level is not None and build_level > 1
        generator = (
            f"""
                    - name: generator
                      keyless:
                        trustRoot: test-instance
                        identities:
                          - subject: '{BUILDER}'
                            issuer: {GITHUB_ISSUER}"""
            if builder
            else ""
        )
        provenance_authorities = "\n                          authorities: [generator]" if builder else ""
        issuing = f"issue: {{verifierId: '{VERIFIER}', key: vsa.pem}}, " if issue else ""
        summaries_section = f"summaries: {{{issuing}accept: {{revocationRefreshSeconds: {refresh}}}}}"
        parts = [f"issue: {{buildLevel: {build_level}}}"] if build_level is not None else []
        if accept:
            parts.append(
                f"accept: {{verifiers: [{{id: '{VERIFIER}', key: vsa.pub}}], "
                f"maxAgeSeconds: {max_age}, samePolicy: true}}"
            )
        accepting = f"summaries: {{{', '.join(parts)}}}" if parts else ""
        (tmp_path / f"{name}.yaml").write_text(
            textwrap.dedent(
                f"""\
                apiVersion: trustgate.dev/v1alpha1
                kind: Config
                mode: enforce
                manifests:
                  policies: []
                  data:
                    trustgate:
                      slsa:
                        builders: ["{BUILDER}"]
                        sources: ["git+https://github.com/acme/*"]
                        refs: ["refs/tags/v*"]
                kubernetes: {{schemas: false}}
                images:
                  trustRoots: [{{name: test-instance, trustedRoot: trusted_root.json}}]
                  authorities:
                    - name: ci
                      keyless:
                        trustRoot: test-instance
                        identities:
                          - subjectRegExp: 'https://github\\.com/acme/[^@]+@refs/tags/v[^@]+'
                            issuer: {GITHUB_ISSUER}{generator}
                  rules:
                    - name: shop
                      images: ["{registry.host}/shop/**"]
                      signatures: {{authorities: [ci]}}
                      attestations:
                        - name: provenance
                          predicateType: slsaprovenance1
                          policy: "builtin:slsa-provenance"{provenance_authorities}
                      {accepting}
                  unmatched: deny
                  registries:
                    {{insecure: ["{registry.host}"], nodeLocal: ["{registry.host}"], timeoutSeconds: 2}}
                  {summaries_section}
                """
            )
        )
        return tmp_path / f"{name}.yaml"

    return write


def deployment(tmp_path: Path, image: str) -> Path:
    path = tmp_path / "deploy.yaml"
    path.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop, namespace: prod}\nspec:\n"
        "  selector: {matchLabels: {app: shop}}\n  template:\n    metadata: {labels: {app: shop}}\n"
        f"    spec:\n      containers:\n        - {{name: c0, image: '{image}'}}\n"
    )
    return path


def provenance(digest: str) -> dict[str, Any]:
    return statement(
        digest,
        SLSA_V1,
        {
            "buildDefinition": {
                "externalParameters": {
                    "workflow": {"repository": "https://github.com/acme/shop", "ref": "refs/tags/v1.4.2"}
                }
            },
            "runDetails": {"builder": {"id": BUILDER}},
        },
    )


def signed(client: RegistryClient, sigstore: SigstoreInstance, repo: str) -> Pushed:
    image = push_image(client, repo, content=os.urandom(16))
    signer = sigstore.identity(RELEASE)
    attach_referrer(client, image.ref, image, sigstore.sign_artifact(image.digest, signer))
    attach_referrer(client, image.ref, image, sigstore.attest(provenance(image.digest), signer))
    return image


def built(client: RegistryClient, sigstore: SigstoreInstance, repo: str) -> Pushed:
    """Signed by the release workflow, its provenance by the builder itself (the generator's
    identity): what a rule asserting a Build level above 1 wants."""
    image = push_image(client, repo, content=os.urandom(16))
    attach_referrer(
        client, image.ref, image, sigstore.sign_artifact(image.digest, sigstore.identity(RELEASE))
    )
    attach_referrer(
        client, image.ref, image, sigstore.attest(provenance(image.digest), sigstore.identity(BUILDER))
    )
    return image


def only_summaries_left(client: RegistryClient, image: Pushed) -> None:
    """Delete the signature and the attestation: rewrite the referrers tag with the summaries only."""
    tag = image.digest.replace(":", "-")
    index = client.manifest(image.ref, tag)
    assert index is not None
    kept = [
        e
        for e in index.json["manifests"]
        if e.get("annotations", {}).get(summaries.PREDICATE_ANNOTATION) == summaries.VSA_PREDICATE
    ]
    assert len(kept) < len(index.json["manifests"])
    data = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": kept}).encode()
    client.push_manifest(image.ref, data, mt.OCI_INDEX, tag)


def made(store: str) -> str:
    """`store`, the decision log made there first if it is not (as an operator makes it, or a gate's
    first decision): from a log that is not there, what is revoked is not known, so no summary counts."""
    open_store(store).close()
    return store


def gate_decision(
    config: Path, deploy: Path, *, store: str | None = None, logged: bool = True, make: bool = True
) -> tuple[Decision, ImageResult]:
    """Through the Gate API the webhook uses (gate `admission`), with a decision log (`store`, else
    one beside `deploy`: without a log to read revocations from, no summary counts) unless `logged`
    is False; the log is `made` first unless `make` is False."""
    if store is None and logged:
        store = f"sqlite:///{deploy.parent / 'admission-default.db'}"
    if store and make:
        made(store)
    log = DecisionLog.open(store) if store else None
    try:
        with Gate(config=load_config(config), decision_log=log) as gate:
            decision = gate.check([str(deploy)], gate="admission")
    finally:
        if log is not None:
            log.close()
    (image,) = decision.images
    return decision, image


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_check_issues_a_vsa_and_admission_accepts_it_once_the_signature_is_gone(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    image = built(client, sigstore, f"{registry.host}/shop/api:v1.4.2")
    deploy = deployment(tmp_path, f"{registry.host}/shop/api@{image.digest}")
    ci, admit = project("ci", issue=True, build_level=3), project("admit", accept=True, builder=True)
    store = f"sqlite:///{tmp_path / 'decisions.db'}"

    result = CliRunner().invoke(
        main,
        ["check", "-c", str(ci), str(deploy), "-o", "json", "--decision-log", store],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    (verified,) = json.loads(result.stdout)["images"]
    (issued,) = verified["summariesIssued"]
    assert issued["verifier"] == VERIFIER and issued["source"] == "referrers-tag"
    assert issued["subjects"] == [image.digest]

    # The decision log holds the decision the summary names, with the summary's digest.
    code, output = run("log", "query", "--store", store, "--image", image.digest, "--format", "json")
    assert code == 0, output
    (row,) = json.loads(output)
    record = row["record"]
    (evidence,) = [i for i in record["subject"]["images"] if i.get("digest") == image.digest]
    assert evidence["details"]["summariesIssued"][0]["digest"] == issued["digest"]

    # The summary in the registry: a signed in-toto Statement v1 with a SLSA VSA v1 predicate.
    descriptors, _ = client.referrers(image.ref, image.digest)
    (vsa,) = [d for d in descriptors if d.annotations.get(summaries.PREDICATE_ANNOTATION)]
    manifest = client.manifest(image.ref, vsa.digest)
    assert manifest is not None and manifest.json["subject"]["digest"] == image.digest
    bundle = client.blob(image.ref, manifest.json["layers"][0]["digest"])
    assert base64.b64decode(manifest.json["layers"][0]["data"]) == bundle  # embedded: read with the manifest
    stmt = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == "https://slsa.dev/verification_summary/v1"
    assert stmt["subject"] == [
        {"name": f"{registry.host}/shop/api", "digest": {"sha256": image.digest.split(":")[1]}}
    ]
    predicate = stmt["predicate"]
    assert predicate["verifier"] == {"id": VERIFIER}
    assert predicate["verificationResult"] == "PASSED"
    # The built-in provenance policy passed, a builder listed, and the rule asserts Build L3.
    assert predicate["verifiedLevels"] == ["SLSA_BUILD_LEVEL_3"]
    assert predicate[summaries.LEVELS_FIELD]  # the levels' semantics: what requireLevels needs
    assert predicate["resourceUri"] == f"oci://{registry.host}/shop/api@{image.digest}"
    assert predicate["policy"]["digest"]["sha256"] == issued["policyDigest"].split(":")[1]
    assert len(predicate["inputAttestations"]) == 2  # the signature bundle and the provenance bundle
    assert predicate[summaries.DECISION_FIELD] == {"id": record["id"]}

    only_summaries_left(client, image)
    # Without summaries the image no longer passes ...
    decision, full = gate_decision(project("plain"), deploy)
    assert full.status == "failed" and decision.exit_code() == 1
    # ... and a gate accepting summaries admits it through the VSA, recording which path and which VSA.
    admit_store = f"sqlite:///{tmp_path / 'admission.db'}"
    decision, through = gate_decision(admit, deploy, store=admit_store)
    assert decision.exit_code() == 0, through.to_json()
    assert through.status == "verified"
    assert through.summary is not None and through.summary["path"] == "summary"
    assert through.summary["digest"] == issued["digest"]
    assert through.summary["decision"] == record["id"]
    code, output = run("log", "query", "--store", admit_store, "--image", image.digest, "--format", "json")
    (row,) = json.loads(output)
    (evidence,) = [i for i in row["record"]["subject"]["images"] if i.get("digest") == image.digest]
    assert evidence["details"]["summary"]["path"] == "summary"

    # `verify image --summary` shows it and its verification, with the revocations of the log ...
    logged = tmp_path / "admit-logged.yaml"
    logged.write_text(admit.read_text() + f'decisionLog: {{url: "{admit_store}"}}\n')
    code, output = run(
        "verify", "image", "-c", str(logged), f"{registry.host}/shop/api@{image.digest}", "--summary"
    )
    assert code == 0, output
    assert "counts" in output and VERIFIER in output and "SLSA_BUILD_LEVEL_3" in output
    # ... and without a log it does not count, as at an admission without one.
    code, output = run(
        "verify", "image", "-c", str(admit), f"{registry.host}/shop/api@{image.digest}", "--summary"
    )
    assert code == 1 and "no decision log to read them from" in output, output

    # Revoked: admission ignores it before it expires, and verifies in full (which now fails).
    code, output = run(
        "summaries", "revoke", issued["digest"], "--store", admit_store, "--reason", "key leak"
    )
    assert code == 0, output
    decision, after = gate_decision(admit, deploy, store=admit_store)
    assert after.status == "failed" and decision.exit_code() == 1
    assert after.summary is not None and after.summary["path"] == "full"
    assert any("revoked" in reason for reason in after.summary["ignored"])


def test_a_summary_does_not_count_for_its_digest_copied_into_another_repository(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """CI verified shop/api-copied@D and its summary names that repository (`resourceUri`, which
    the SLSA spec says must match the resource expected). Whoever can push copies D, with the
    summary, into shop/payments-copied, where the rule never judged it (its attestation policies
    may depend on the repository): the summary does not count there, and the copy is verified in
    full (here unsigned, so it fails), while the summary still admits the image it was issued for."""
    image = signed(client, sigstore, f"{registry.host}/shop/api-copied:v1")
    source = f"{registry.host}/shop/api-copied@{image.digest}"
    code, output = run("check", "-c", str(project("ci", issue=True)), str(deployment(tmp_path, source)))
    assert code == 0, output
    only_summaries_left(client, image)
    descriptors, _ = client.referrers(image.ref, image.digest)
    (vsa,) = [d for d in descriptors if d.annotations.get(summaries.PREDICATE_ANNOTATION)]
    manifest = client.manifest(image.ref, vsa.digest)
    assert manifest is not None
    bundle = client.blob(image.ref, manifest.json["layers"][0]["digest"])
    copy = Reference.parse(f"{registry.host}/shop/payments-copied")
    original = client.manifest(image.ref, image.digest)
    assert original is not None
    for blob in [original.json["config"], *original.json["layers"]]:
        client.push_blob(copy, client.blob(image.ref, blob["digest"]))
    assert client.push_manifest(copy, original.raw, original.media_type, "v9") == image.digest
    issuing.attach(client, copy, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())

    admit = project("admit", accept=True)
    decision, result = gate_decision(admit, deployment(tmp_path, f"{copy}@{image.digest}"))
    assert result.status == "failed" and decision.exit_code() == 1, result.to_json()
    assert result.summary is not None and result.summary["path"] == "full"
    (ignored,) = result.summary["ignored"]
    assert f"issued for {registry.host}/shop/api-copied, not {copy}: " in ignored, ignored
    assert any(p.rule == "image-signature" for p in result.problems)
    decision, result = gate_decision(admit, deployment(tmp_path, source))
    assert decision.exit_code() == 0 and result.summary is not None and result.summary["path"] == "summary"


def _policy_digest(config: Path) -> str:
    with Gate(config=load_config(config)) as gate:
        (rule,) = gate.verifier.policy.rules
        return rule.policy_digest


def _bundle(
    key_path: Path,
    image: Pushed,
    *,
    policy_digest: str,
    digest: str | None = None,
    verifier: str = VERIFIER,
    when: dt.datetime | None = None,
    predicate_type: str = summaries.VSA_PREDICATE,
    result: str = "PASSED",
    index: str | None = None,
) -> bytes:
    """A summary of `image` (or of `digest` in its repository), or (`index`) of that index listing
    it as a platform manifest."""
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    name, digest = image.ref.name, digest or image.digest
    stmt = summaries.build_statement(
        subjects=[(name, index), (name, digest)] if index else [(name, digest)],
        resource_uri=f"oci://{name}@{index or digest}",
        verifier_id=verifier,
        policy_uri="trustgate:images/rules/shop",
        policy_digest=policy_digest,
        input_attestations=[],
        verified_levels=[],
        decision_id=None,
        time_verified=when or dt.datetime.now(dt.UTC),
    )
    stmt["predicateType"] = predicate_type
    stmt["predicate"]["verificationResult"] = result
    return summaries.sign_statement(stmt, key)


OTHER = "sha256:" + "ab" * 32
DEEP = b"[" * 100_000 + b"]" * 100_000  # JSON nested far past the depth Python's parser follows
CASES: dict[str, tuple[Callable[[Path, Pushed, str], bytes], str]] = {
    "another-policy": (
        lambda d, image, policy: _bundle(d / "vsa.pem", image, policy_digest=OTHER),
        "verified under another policy",
    ),
    "expired": (
        lambda d, image, policy: _bundle(
            d / "vsa.pem", image, policy_digest=policy, when=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        ),
        "beyond maxAgeSeconds",
    ),
    "from-the-future": (
        lambda d, image, policy: _bundle(
            d / "vsa.pem", image, policy_digest=policy, when=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        ),
        "in the future",
    ),
    "untrusted-key": (
        lambda d, image, policy: _bundle(d / "stranger.pem", image, policy_digest=policy),
        "signature",
    ),
    "untrusted-verifier": (
        lambda d, image, policy: _bundle(
            d / "vsa.pem", image, policy_digest=policy, verifier="https://evil.example"
        ),
        "is not trusted by this rule",
    ),
    "wrong-subject": (
        lambda d, image, policy: _bundle(d / "vsa.pem", image, digest=OTHER, policy_digest=policy),
        OTHER.split(":")[0],
    ),
    "wrong-predicate-type": (
        lambda d, image, policy: _bundle(
            d / "vsa.pem", image, policy_digest=policy, predicate_type="https://slsa.dev/provenance/v1"
        ),
        "predicate type",
    ),
    "failed": (
        lambda d, image, policy: _bundle(d / "vsa.pem", image, policy_digest=policy, result="FAILED"),
        "not PASSED",
    ),
    "malformed": (lambda d, image, policy: b'{"dsseEnvelope": {"payload": "%%%"}}', "malformed"),
    # Nested deeper than the parser follows: bad bytes too, not an error (whoever can push can
    # attach it, no key needed; it raised RecursionError, and a fail-open namespace then allowed).
    "nested-too-deep": (lambda d, image, policy: DEEP, "malformed"),
    "statement-nested-too-deep": (
        lambda d, image, policy: json.dumps(
            {"dsseEnvelope": {"payload": base64.b64encode(DEEP).decode(), "signatures": []}}
        ).encode(),
        "malformed",
    ),
    # Issued for an index, listing this image as one of its platform manifests: it counts only for
    # the index (the rule judged the platform through the index's signatures, not its own).
    "platform-of-an-index": (
        lambda d, image, policy: _bundle(d / "vsa.pem", image, policy_digest=policy, index=OTHER),
        "not its primary subject",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_summaries_that_do_not_count_are_ignored_with_reasons(
    case: str,
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    project: Callable[..., Path],
) -> None:
    admit = project("admit", accept=True, max_age=3600)
    image = push_image(client, f"{registry.host}/shop/{case}:v1", content=os.urandom(16))  # never signed
    make, reason = CASES[case]
    bundle = make(tmp_path, image, _policy_digest(admit))
    issuing.attach(client, image.ref, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())
    decision, result = gate_decision(
        admit, deployment(tmp_path, f"{registry.host}/shop/{case}@{image.digest}")
    )
    assert result.status == "failed" and decision.exit_code() == 1  # full verification ran, and failed
    assert result.summary is not None and result.summary["path"] == "full"
    (ignored,) = result.summary["ignored"]
    assert ignored.startswith("VSA from ") and " ignored: " in ignored
    assert reason in ignored, ignored
    assert any(p.rule == "image-signature" for p in result.problems)


def test_a_valid_crafted_summary_admits_and_the_policy_digest_is_the_same_at_every_gate(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, project: Callable[..., Path]
) -> None:
    admit, ci = project("admit", accept=True), project("ci", issue=True)
    assert _policy_digest(admit) == _policy_digest(ci)  # what each gate accepts / issues under
    image = push_image(client, f"{registry.host}/shop/crafted:v1", content=os.urandom(16))
    bundle = _bundle(tmp_path / "vsa.pem", image, policy_digest=_policy_digest(admit))
    issuing.attach(client, image.ref, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())
    decision, result = gate_decision(
        admit, deployment(tmp_path, f"{registry.host}/shop/crafted@{image.digest}")
    )
    assert decision.exit_code() == 0 and result.summary is not None
    assert result.summary["path"] == "summary" and result.summary["digest"] == summaries.summary_digest(
        bundle
    )


def test_a_revoked_summary_does_not_come_back_re_encoded(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, project: Callable[..., Path]
) -> None:
    admit = project("admit", accept=True)
    store = f"sqlite:///{tmp_path / 'admission.db'}"
    image = push_image(client, f"{registry.host}/shop/respun:v1", content=os.urandom(16))  # never signed
    deploy = deployment(tmp_path, f"{registry.host}/shop/respun@{image.digest}")
    bundle = _bundle(tmp_path / "vsa.pem", image, policy_digest=_policy_digest(admit))
    issuing.attach(client, image.ref, image.digest, bundle, "2026-01-01T00:00:00Z")
    decision, result = gate_decision(admit, deploy, store=store)
    assert decision.exit_code() == 0 and result.summary is not None
    code, output = run("summaries", "revoke", result.summary["digest"], "--store", store)
    assert code == 0, output
    # Whoever can push re-attaches the same signed summary, its JSON re-encoded (new bytes, new
    # referrer, newest first): it is the same summary, and stays revoked.
    respun = json.dumps(json.loads(bundle), indent=2).encode()
    issuing.attach(client, image.ref, image.digest, respun, "2026-01-02T00:00:00Z")
    decision, after = gate_decision(admit, deploy, store=store)
    assert after.status == "failed" and decision.exit_code() == 1
    assert after.summary is not None and after.summary["path"] == "full"
    assert len(after.summary["ignored"]) == 2
    assert all("revoked" in reason for reason in after.summary["ignored"]), after.summary


def test_without_a_decision_log_no_summary_counts_not_even_a_revoked_one(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, project: Callable[..., Path]
) -> None:
    """Revocations live in the decision log: a gate without one cannot tell a revoked summary from
    a good one, so none counts and the image is verified in full (here: unsigned, so it fails)."""
    admit = project("admit", accept=True)
    store = f"sqlite:///{tmp_path / 'admission.db'}"
    image = push_image(client, f"{registry.host}/shop/unlogged:v1", content=os.urandom(16))  # never signed
    deploy = deployment(tmp_path, f"{registry.host}/shop/unlogged@{image.digest}")
    bundle = _bundle(tmp_path / "vsa.pem", image, policy_digest=_policy_digest(admit))
    issuing.attach(client, image.ref, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())
    code, output = run("summaries", "revoke", summaries.summary_digest(bundle), "--store", store, "--create")
    assert code == 0, output
    decision, result = gate_decision(admit, deploy, logged=False)
    assert result.status == "failed" and decision.exit_code() == 1
    assert result.summary is not None and result.summary["path"] == "full"
    (ignored,) = result.summary["ignored"]
    assert "no decision log to read them from" in ignored
    # The CLI's `check` without a log says the same.
    code, output = run("check", "-c", str(admit), str(deploy), "-o", "json")
    assert code == 1, output


VSA_WORKFLOW = "https://github.com/acme/shop/.github/workflows/verify.yml@refs/heads/main"


@pytest.mark.parametrize(
    ("identity", "admitted"),
    [(VSA_WORKFLOW, True), (RELEASE, False)],
    ids=["the-verifiers-identity", "another-identity-of-the-same-ci"],
)
def test_a_keyless_summary_counts_for_the_identity_its_verifier_is_given(
    identity: str,
    admitted: bool,
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """`verifiers: [{id, authority}]`: a summary signed keylessly (a certificate from the trust root,
    in its transparency log) counts only for the certificate identity of that authority."""
    admit = project("admit", accept=True)
    text = admit.read_text()
    text = text.replace("key: vsa.pub", "authority: vsa").replace(
        "  authorities:\n",
        "  authorities:\n    - name: vsa\n      keyless:\n        trustRoot: test-instance\n"
        f"        identities: [{{subject: '{VSA_WORKFLOW}', issuer: '{GITHUB_ISSUER}'}}]\n",
        1,
    )
    admit.write_text(text)
    repo = f"{registry.host}/shop/keyless-{str(admitted).lower()}"
    image = push_image(client, f"{repo}:v1", content=os.urandom(16))
    stmt = summaries.build_statement(
        subjects=[(image.ref.name, image.digest)],
        resource_uri=f"oci://{image.ref.name}@{image.digest}",
        verifier_id=VERIFIER,
        policy_uri="trustgate:images/rules/shop",
        policy_digest=_policy_digest(admit),
        input_attestations=[],
        verified_levels=[],
        decision_id=None,
        time_verified=dt.datetime.now(dt.UTC),
    )
    bundle = sigstore.attest(stmt, sigstore.identity(identity))
    issuing.attach(client, image.ref, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())
    decision, result = gate_decision(admit, deployment(tmp_path, f"{repo}@{image.digest}"))
    assert result.summary is not None
    if admitted:
        assert decision.exit_code() == 0 and result.summary["path"] == "summary", result.summary
        assert result.summary["digest"] == summaries.summary_digest(bundle)
    else:
        assert result.status == "failed" and result.summary["path"] == "full"
        (reason,) = result.summary["ignored"]
        assert reason.startswith(f"VSA from {VERIFIER} ignored: ") and VSA_WORKFLOW in reason, reason


@pytest.mark.parametrize("revoke", ["summary", "image"])
def test_a_revocation_reaches_an_admission_served_from_the_cache(
    revoke: str,
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    project: Callable[..., Path],
) -> None:
    """One gate kept across requests (as each webhook worker keeps one): the second admission comes
    from the verification cache; once the summary, or the image it vouches for, is revoked, the
    cached admission is not served (within revocationRefreshSeconds) and the image is judged again."""
    admit = project("admit", accept=True, refresh=0.5)
    store = f"sqlite:///{tmp_path / 'admission.db'}"
    image = push_image(client, f"{registry.host}/shop/cached-{revoke}:v1", content=os.urandom(16))
    deploy = deployment(tmp_path, f"{registry.host}/shop/cached-{revoke}@{image.digest}")
    bundle = _bundle(tmp_path / "vsa.pem", image, policy_digest=_policy_digest(admit))
    issuing.attach(client, image.ref, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())
    with DecisionLog.open(made(store)) as log, Gate(config=load_config(admit), decision_log=log) as gate:
        results = []
        for _ in range(2):
            (result,) = gate.check([str(deploy)], gate="admission").images
            results.append(result)
        assert [r.cache for r in results] == ["miss", "hit"]
        assert all(r.status == "verified" and (r.summary or {}).get("path") == "summary" for r in results)
        digest = summaries.summary_digest(bundle) if revoke == "summary" else image.digest
        code, output = run("summaries", "revoke", digest, "--store", store)
        assert code == 0, output
        time.sleep(0.6)  # revocationRefreshSeconds
        decision = gate.check([str(deploy)], gate="admission")
    (after,) = decision.images
    assert after.cache == "miss" and after.status == "failed" and decision.exit_code() == 1
    assert after.summary is not None and after.summary["path"] == "full"
    assert any("revoked" in reason for reason in after.summary["ignored"]), after.summary


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("certs"))


def test_trustgate_serve_admits_through_a_vsa_and_learns_of_its_revocation(
    tmp_path: Path,
    certs: CertSet,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    image = signed(client, sigstore, f"{registry.host}/shop/served:v1")
    deploy = deployment(tmp_path, f"{registry.host}/shop/served@{image.digest}")
    ci_store = f"sqlite:///{tmp_path / 'ci.db'}"
    code, output = run("check", "-c", str(project("ci", issue=True)), str(deploy), "--decision-log", ci_store)
    assert code == 0, output
    only_summaries_left(client, image)
    admit = project("admit", accept=True, refresh=0.5)
    store = made(f"sqlite:///{tmp_path / 'webhook.db'}")
    srv = start_server(certs, "-c", str(admit), "--decision-log", store, workers=1)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "served", "namespace": "prod"},
        "spec": {"containers": [{"name": "c0", "image": f"{registry.host}/shop/served@{image.digest}"}]},
    }
    try:
        status, answer = srv.post(review(pod, uid="uid-vsa"))
        assert status == 200 and answer["response"]["allowed"] is True, answer
        code, output = run("log", "query", "--store", store, "--image", image.digest, "--format", "json")
        (row,) = json.loads(output)
        (evidence,) = [i for i in row["record"]["subject"]["images"] if i.get("digest") == image.digest]
        vsa = evidence["details"]["summary"]
        assert vsa["path"] == "summary"
        code, output = run("summaries", "revoke", vsa["digest"], "--store", store)
        assert code == 0, output
        time.sleep(0.6)  # revocationRefreshSeconds
        status, answer = srv.post(review(pod, uid="uid-vsa-revoked"))
        assert status == 200 and answer["response"]["allowed"] is False, answer
        assert "image-signature" in json.dumps(answer["response"])
    finally:
        srv.stop()


def _ready_says(srv: Any, said: str, *, status: int, seconds: float = 30) -> str:
    """/readyz once it answers `status` with `said` in its reason (it compiles policies first)."""
    end = time.monotonic() + seconds
    body = ""
    while time.monotonic() < end:
        code, body = srv.health("/readyz")
        if code == status and said in body:
            return body
        time.sleep(0.1)
    raise AssertionError(f"/readyz never said {status} {said!r}: {body}\n" + "".join(srv.stderr))


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_trustgate_serve_accepting_summaries_does_not_start_a_decision_log_that_is_not_there(
    writer: str,
    tmp_path: Path,
    certs: CertSet,
    registry: RegistryProcess,
    client: RegistryClient,
    project: Callable[..., Path],
) -> None:
    """The webhook with a decisionLog.url where no log is (a volume not mounted) created one with
    its first decision, and from then on a summary revoked in the real log admitted again. Now it
    says so at start-up, is unready (/readyz 503: failure policy closed in enforce mode) and
    denies, creates nothing (not even for GET /checkpoint), and becomes ready by itself once
    `trustgate log init` started the log, recording its decisions there."""
    admit = project("admit", accept=True, refresh=0.5)
    _, reference = _revoked_elsewhere(tmp_path, registry, client, admit, f"served-missing-{writer}")
    (tmp_path / "not-mounted").mkdir()
    missing = tmp_path / "not-mounted" / "decisions.db"
    store = f"sqlite:///{missing}"
    srv = start_server(
        certs, "-c", str(admit), "--decision-log", store, "--log-writer", writer, workers=1, wait=False
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "served", "namespace": "prod"},
        "spec": {"containers": [{"name": "c0", "image": reference}]},
    }
    try:
        body = _ready_says(srv, "no decision log here", status=503)
        assert str(missing) in body, body
        for uid in ("uid-1", "uid-2"):
            status, answer = srv.post(review(pod, uid=uid))
            assert status == 200 and answer["response"]["allowed"] is False, answer
        assert srv.health("/checkpoint")[0] != 200
        assert not missing.exists()
        said = "".join(srv.stderr)
        assert "trustgate serve: error: " in said and "trustgate log init --store " in said, said
        assert "the image rules accept verification summaries" in said, said

        code, output = run("log", "init", "--store", store)
        assert code == 0 and "created a new, empty decision log" in output, output
        _ready_says(srv, "ready", status=200)
        status, answer = srv.post(review(pod, uid="uid-3"))
        assert status == 200 and answer["response"]["auditAnnotations"].get("record"), answer
        code, output = run("log", "query", "--store", store, "--format", "json")
        assert code == 0 and [r["record"]["id"] for r in json.loads(output)] == [
            answer["response"]["auditAnnotations"]["record"]
        ], output
    finally:
        srv.stop()


def presync(tmp_path: Path, config: Path, manifest: str) -> str:
    """Commit `manifest` (signed) to a repository and run `trustgate presync` on it; the decision log."""
    from support.gitrepo import Repo, allowed_signers, ssh_key

    alice = ssh_key(tmp_path / "keys", "alice@example.com")
    allowed_signers(tmp_path / "allowed_signers", alice)
    config.write_text(
        config.read_text() + "commits: {allowedSigners: allowed_signers}\npresync: {paths: [apps]}\n"
    )
    repo = Repo.create(tmp_path / "fleet")
    (repo.path / "apps").mkdir()
    repo.write("apps/api.yaml", manifest)
    repo.commit("api v1", ssh=alice)
    store = made(f"sqlite:///{tmp_path / 'presync.db'}")
    code, output = run("presync", "--repo", str(repo.path), "-c", str(config), "--decision-log", store)
    assert code == 0, output
    return store


def test_presync_issues_a_vsa_naming_its_decision(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    image = signed(client, sigstore, f"{registry.host}/shop/presynced:v1")
    deploy = deployment(tmp_path, f"{registry.host}/shop/presynced@{image.digest}")
    store = presync(tmp_path, project("presync", issue=True), deploy.read_text())
    descriptors, _ = client.referrers(image.ref, image.digest)
    (vsa,) = [d for d in descriptors if d.annotations.get(summaries.PREDICATE_ANNOTATION)]
    manifest = client.manifest(image.ref, vsa.digest)
    assert manifest is not None
    bundle = client.blob(image.ref, manifest.json["layers"][0]["digest"])
    stmt = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
    _, output = run("log", "query", "--store", store, "--image", image.digest, "--format", "json")
    (row,) = json.loads(output)
    assert row["record"]["gate"] == "presync"
    assert stmt["predicate"][summaries.DECISION_FIELD] == {"id": row["record"]["id"]}


def test_presync_admits_an_image_ci_vouched_for_and_does_not_issue_on_its_strength(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """CI issues a summary; pre-sync, accepting summaries (and issuing its own), passes the image
    through it once its signature is gone, and signs no summary of its own for it: a summary is
    issued only after a full verification (ADR 12)."""
    image = signed(client, sigstore, f"{registry.host}/shop/vouched:v1")
    deploy = deployment(tmp_path, f"{registry.host}/shop/vouched@{image.digest}")
    code, output = run("check", "-c", str(project("ci", issue=True)), str(deploy))
    assert code == 0, output
    only_summaries_left(client, image)
    store = presync(tmp_path, project("presync", issue=True, accept=True), deploy.read_text())
    code, output = run("log", "query", "--store", store, "--image", image.digest, "--format", "json")
    (row,) = json.loads(output)
    (evidence,) = [i for i in row["record"]["subject"]["images"] if i.get("digest") == image.digest]
    assert evidence["details"]["summary"]["path"] == "summary"
    assert "summariesIssued" not in evidence["details"]
    descriptors, _ = client.referrers(image.ref, image.digest)
    assert len([d for d in descriptors if d.annotations.get(summaries.PREDICATE_ANNOTATION)]) == 1  # CI's


def attach_deep_junk(client: RegistryClient, image: Pushed) -> None:
    """What anyone who can push can attach, no key needed, each nested deeper than Python's JSON
    parser follows: a summary, a Sigstore bundle, and referrer manifests (a registry takes them:
    Go's parser follows 10000 levels), one of them listed as a summary."""
    issuing.attach(client, image.ref, image.digest, DEEP, dt.datetime.now(dt.UTC).isoformat())
    attach_referrer(client, image.ref, image, DEEP)
    for notes in ({}, {summaries.PREDICATE_ANNOTATION: summaries.VSA_PREDICATE}):
        body = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": mt.SIGSTORE_BUNDLE,
            "config": push_blob_descriptor(client, image.ref, EMPTY_CONFIG, mt.OCI_EMPTY),
            "layers": [push_blob_descriptor(client, image.ref, b"{}", mt.SIGSTORE_BUNDLE)],
            "subject": image.descriptor(),
            "annotations": notes,
        }
        raw = json.dumps(body).encode()[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        entry = {"mediaType": mt.OCI_MANIFEST, "size": len(raw), "artifactType": mt.SIGSTORE_BUNDLE}
        entry |= {"digest": client.push_manifest(image.ref, raw, mt.OCI_MANIFEST), "annotations": notes}
        add_to_referrers_tag(client, image.ref, image.digest, entry)


@pytest.mark.parametrize("accept", [True, False], ids=["summaries", "no-summaries"])
def test_deeply_nested_junk_is_ignored_and_a_signed_image_passes_every_gate(
    accept: bool,
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """Bad bytes are reasons, never errors (ADR 12), however deep they nest: the summaries are
    ignored with a reason, the junk referrers do not count, and the signed image is verified in
    full at admission, `check`, `verify image --summary` and `presync` (each raised RecursionError)."""
    repo = f"{registry.host}/shop/deep-{'summaries' if accept else 'plain'}"
    image = signed(client, sigstore, f"{repo}:v1")
    attach_deep_junk(client, image)
    deploy = deployment(tmp_path, f"{repo}@{image.digest}")
    config = project("admit", accept=accept)
    decision, result = gate_decision(config, deploy)
    assert decision.exit_code() == 0 and result.status == "verified", result.problems
    assert not [p for p in result.problems if p.blocking]
    assert any("not valid JSON (the JSON nests too deeply" in p.message for p in result.problems)
    if accept:
        assert result.summary is not None and result.summary["path"] == "full"
        ignored = result.summary["ignored"]
        bundle, manifest = sorted(ignored, key=lambda reason: "(invalid-manifest)" in reason)
        assert " ignored: malformed: " in bundle and "nests too deeply" in bundle, ignored
        assert " ignored: could not be fetched (invalid-manifest): " in manifest, ignored
    code, output = run("check", "-c", str(config), str(deploy))
    assert code == 0, output
    code, output = run("verify", "image", "-c", str(config), f"{repo}@{image.digest}", "--summary")
    assert code == 1 and output.count("does not count: ") == 2 and "nests too deeply" in output, output
    store = presync(tmp_path, config, deploy.read_text())
    code, output = run("log", "query", "--store", store, "--image", image.digest, "--format", "json")
    (row,) = json.loads(output)
    assert row["record"]["gate"] == "presync" and row["record"]["exitCode"] == 0, row


@pytest.mark.parametrize("accept", [True, False], ids=["summaries", "no-summaries"])
def test_trustgate_serve_denies_an_unsigned_image_with_deep_junk_in_a_fail_open_namespace(
    accept: bool,
    tmp_path: Path,
    certs: CertSet,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """Junk nested too deep to parse used to make verification raise: an internal error, which a
    namespace that fails open answered with an allow, for an unsigned image. It is denied, and a
    signed image with the same junk admitted, whatever the namespace's failure policy."""
    kind = "summaries" if accept else "plain"
    unsigned = push_image(client, f"{registry.host}/shop/deep-unsigned-{kind}:v1", content=os.urandom(16))
    good = signed(client, sigstore, f"{registry.host}/shop/deep-signed-{kind}:v1")
    for image in (unsigned, good):
        attach_deep_junk(client, image)
    config = project("admit", accept=accept)
    config.write_text(config.read_text() + "admission:\n  failOpen:\n    namespaces: ['dev-*']\n")
    store = made(f"sqlite:///{tmp_path / 'webhook.db'}")
    srv = start_server(certs, "-c", str(config), "--decision-log", store, workers=1)

    def pod(image: Pushed, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "deep", "namespace": namespace},
            "spec": {"containers": [{"name": "c0", "image": f"{image.ref.name}@{image.digest}"}]},
        }

    try:
        for namespace in ("dev-team", "prod"):
            status, answer = srv.post(review(pod(unsigned, namespace), uid=f"unsigned-{namespace}"))
            response = answer["response"]
            assert status == 200 and response["allowed"] is False, answer
            assert "image-signature" in json.dumps(response), answer
            assert response.get("auditAnnotations", {}).get("failure-policy") is None, answer
            status, answer = srv.post(review(pod(good, namespace), uid=f"signed-{namespace}"))
            assert status == 200 and answer["response"]["allowed"] is True, answer
    finally:
        srv.stop()
    assert not any("Traceback" in line for line in srv.stderr), "".join(srv.stderr)[-2000:]


class _BuggyRegistry:
    """The real registry, but listing the referrers of `broken` raises what no code expects."""

    def __init__(self, registry: RegistryClient, broken: str) -> None:
        self.registry, self.broken = registry, broken

    def referrers(self, ref: Reference, digest: str, *, artifact_type: str | None = None) -> Any:
        if digest == self.broken:
            raise RuntimeError("a bug (test double)")
        return self.registry.referrers(ref, digest, artifact_type=artifact_type)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.registry, name)


def test_an_unexpected_exception_fails_that_image_not_the_admission(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """Whatever else raises while one image is verified (a bug) fails that image, a policy failure
    (exit 1, never the failure policy's "could not evaluate"), and the others are judged as ever:
    escaping, it failed the whole request, which a fail-open namespace answered with an allow."""
    broken = signed(client, sigstore, f"{registry.host}/shop/buggy:v1")
    good = signed(client, sigstore, f"{registry.host}/shop/fine:v1")
    pod = tmp_path / "pod.yaml"
    pod.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: two, namespace: dev-team}\nspec:\n  containers:\n"
        f"    - {{name: a, image: '{broken.ref.name}@{broken.digest}'}}\n"
        f"    - {{name: b, image: '{good.ref.name}@{good.digest}'}}\n"
    )
    config = project("plain")
    config.write_text(config.read_text() + "admission:\n  failOpen:\n    namespaces: ['dev-*']\n")
    buggy = _BuggyRegistry(client, broken.digest)
    with Gate(config=load_config(config), registry=buggy) as gate:
        decision = gate.check([str(pod)], gate="admission")
    assert decision.exit_code() == 1
    images = {i.reference: i for i in decision.images}
    assert images[f"{good.ref.name}@{good.digest}"].status == "verified"
    failed = images[f"{broken.ref.name}@{broken.digest}"]
    assert failed.status == "failed" and [p.rule for p in failed.problems] == ["image-internal-error"]
    (finding,) = [f for r in decision.results for f in r.findings if f.rule == "image-internal-error"]
    assert finding.source == "supply-chain" and "RuntimeError: a bug (test double)" in finding.message


def test_verify_image_summary_shows_an_unverified_statement_of_any_shape(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, project: Callable[..., Path]
) -> None:
    """The statement shown is not verified: whoever pushed it chose its shape (fields of other
    types than the spec's), which is a summary that does not count, not a crash of the command."""
    image = push_image(client, f"{registry.host}/shop/odd-shape:v1", content=os.urandom(16))
    predicate = {
        "verifier": "x",
        "policy": [1],
        "timeVerified": 5,
        "verifiedLevels": [1, "SLSA_BUILD_LEVEL_3"],
    }
    payload = json.dumps({"predicateType": summaries.VSA_PREDICATE, "predicate": predicate}).encode()
    bundle = {"dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "signatures": []}}
    issuing.attach(client, image.ref, image.digest, json.dumps(bundle).encode(), "2026-01-01T00:00:00Z")
    config = project("admit", accept=True)
    code, output = run("verify", "image", "-c", str(config), f"{image.ref.name}@{image.digest}", "--summary")
    assert code == 1 and "does not count: " in output and "levels: SLSA_BUILD_LEVEL_3" in output, output


def test_an_unexpected_exception_judging_a_summary_ignores_that_summary(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A summary can only ever save work (ADR 12): one that a bug cannot judge is ignored with a
    reason, and the image verified in full, not failed."""
    image = signed(client, sigstore, f"{registry.host}/shop/misjudged:v1")
    admit = project("admit", accept=True)
    # One that passes the cheap checks (`summaries.screen`), so that it reaches `judge`.
    bundle = _bundle(tmp_path / "vsa.pem", image, policy_digest=_policy_digest(admit))
    issuing.attach(client, image.ref, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())

    def judge(*args: Any, **kwargs: Any) -> summaries.Accepted:
        raise RuntimeError("a bug (test double)")

    monkeypatch.setattr(summaries, "judge", judge)
    decision, result = gate_decision(admit, deployment(tmp_path, f"{image.ref.name}@{image.digest}"))
    assert decision.exit_code() == 0 and result.status == "verified", result.problems
    assert result.summary is not None and result.summary["path"] == "full"
    (reason,) = result.summary["ignored"]
    assert reason.startswith("VSA from sha256:") and reason.endswith(
        " ignored: internal error (RuntimeError)"
    )


def _signature_only(config: Path) -> Path:
    """The same project, its rule wanting a signature and no provenance (a weaker policy)."""
    text = config.read_text()
    cut = text.index("      attestations:\n")
    end = text.index('policy: "builtin:slsa-provenance"\n') + len('policy: "builtin:slsa-provenance"\n')
    config.write_text(text[:cut] + text[end:])
    return config


def test_with_same_policy_false_a_summary_must_claim_the_levels_the_rule_requires(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """A staging CI with a signature-only rule (same verifier id and key) vouches for an image
    without provenance: its summary claims no level. A gate requiring Build L3 provenance that
    accepts summaries of other policies (samePolicy false) must not admit through it; one from a
    CI that verified provenance from a listed builder, and whose rule asserts they are Build L3
    builders (`summaries.issue.buildLevel`), admits."""
    unbuilt = push_image(client, f"{registry.host}/shop/unbuilt:v1", content=os.urandom(16))
    attach_referrer(
        client, unbuilt.ref, unbuilt, sigstore.sign_artifact(unbuilt.digest, sigstore.identity(RELEASE))
    )
    staging = _signature_only(project("staging", issue=True))
    deploy = deployment(tmp_path, f"{unbuilt.ref.name}@{unbuilt.digest}")
    code, output = run("check", "-c", str(staging), str(deploy))
    assert code == 0, output
    admit = project("admit-other", accept=True)
    text = admit.read_text().replace("samePolicy: true", "samePolicy: false")
    admit.write_text(text)
    code, output = run("check", "-c", str(admit), str(deploy))
    assert code != 0 and "requireLevels" in output, output  # refused at load: say what must be claimed
    admit.write_text(
        text.replace("samePolicy: false", "samePolicy: false, requireLevels: [SLSA_BUILD_LEVEL_3]")
    )
    decision, result = gate_decision(admit, deploy)
    assert result.status == "failed" and decision.exit_code() == 1, result.to_json()
    assert result.summary is not None and result.summary["path"] == "full"
    (ignored,) = result.summary["ignored"]
    assert "lacks SLSA_BUILD_LEVEL_3" in ignored, ignored

    builder_signed = built(client, sigstore, f"{registry.host}/shop/built:v1")
    deploy = deployment(tmp_path, f"{builder_signed.ref.name}@{builder_signed.digest}")
    code, output = run("check", "-c", str(project("ci", issue=True, build_level=3)), str(deploy))
    assert code == 0, output
    only_summaries_left(client, builder_signed)
    decision, result = gate_decision(admit, deploy)
    assert decision.exit_code() == 0 and result.summary is not None and result.summary["path"] == "summary"
    assert result.summary["verifiedLevels"] == ["SLSA_BUILD_LEVEL_3"]


def test_a_summary_issued_from_a_cached_result_is_dated_when_it_was_verified(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """A long-running issuer (presync) serves the second check from its cache after the evidence
    is gone from the registry: the summary it signs then says when the evidence was verified, so
    maxAgeSeconds counts from there, not from the cache hit."""
    image = signed(client, sigstore, f"{registry.host}/shop/cached-issue:v1")
    deploy = deployment(tmp_path, f"{image.ref.name}@{image.digest}")
    log = DecisionLog.open(f"sqlite:///{tmp_path / 'ci.db'}")
    try:
        with Gate(config=load_config(project("ci", issue=True)), decision_log=log) as gate:
            (first,) = gate.check([str(deploy)], gate="presync").images
            assert first.cache == "miss" and first.issued, first.to_json()
            tag = image.digest.replace(":", "-")  # the signature and provenance deleted
            empty = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}).encode()
            client.push_manifest(image.ref, empty, mt.OCI_INDEX, tag)
            time.sleep(1.1)
            (second,) = gate.check([str(deploy)], gate="presync").images
    finally:
        log.close()
    assert second.cache == "hit" and second.issued, second.to_json()
    assert second.issued[0]["timeVerified"] == first.issued[0]["timeVerified"]


def test_junk_marked_as_summaries_does_not_crowd_out_the_one_that_counts(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """Whoever can push (no key) attaches unsigned entries marked as summaries, dated in the future
    by the annotation they write: they spend none of the summaries admission verifies, which
    admits through the valid one, and `verify image --summary` says which one admission uses.
    Each uses up one of the `MAX_READS` reads, though: past them, the valid one is not looked at
    and the image is verified in full (a known limit, ADR 12: junk can force a full verification,
    never admit)."""
    image = signed(client, sigstore, f"{registry.host}/shop/buried:v1")
    deploy = deployment(tmp_path, f"{image.ref.name}@{image.digest}")
    code, output = run("check", "-c", str(project("ci", issue=True)), str(deploy))
    assert code == 0, output
    only_summaries_left(client, image)
    admit = project("admit", accept=True)
    # Signed, but by a key not given for the verifier: it costs one signature check.
    stranger = _bundle(tmp_path / "stranger.pem", image, policy_digest=_policy_digest(admit))
    for i in range(summaries.MAX_CANDIDATES):
        issuing.attach(client, image.ref, image.digest, b'{"junk": %d}' % i, f"9999-01-01T00:00:0{i}Z")
    issuing.attach(
        client,
        image.ref,
        image.digest,
        _bundle(tmp_path / "vsa.pem", image, policy_digest=OTHER),
        "9999-01-02",
    )
    issuing.attach(client, image.ref, image.digest, stranger, "9999-01-04")
    assert summaries.MAX_READS == summaries.MAX_CANDIDATES + 3  # the valid one is the last read
    issuing.attach(  # older by its annotation: not read
        client,
        image.ref,
        image.digest,
        _bundle(tmp_path / "vsa.pem", image, policy_digest=OTHER, verifier="https://evil.example"),
        "2000-01-03",
    )
    store = f"sqlite:///{tmp_path / 'admission.db'}"
    decision, result = gate_decision(admit, deploy, store=store)
    assert decision.exit_code() == 0, result.to_json()
    assert result.summary is not None and result.summary["path"] == "summary"
    assert len(result.summary["ignored"]) == summaries.MAX_CANDIDATES + 3
    assert any("1 VSAs not looked at" in r for r in result.summary["ignored"]), result.summary

    logged = tmp_path / "admit-logged.yaml"
    logged.write_text(admit.read_text() + f'decisionLog: {{url: "{store}"}}\n')
    code, output = run("verify", "image", "-c", str(logged), f"{image.ref.name}@{image.digest}", "--summary")
    assert code == 0, output
    assert f"admission: admits through VSA {result.summary['digest']}" in output, output
    assert f"VSA {result.summary['digest']} (referrers-tag): counts (admission uses it)" in output, output
    code, output = run(
        "verify", "image", "-c", str(logged), f"{image.ref.name}@{image.digest}", "--summary", "-o", "json"
    )
    assert code == 0, output
    (report,) = json.loads(output)
    assert report["admission"] == {
        "path": "summary",
        "referrer": result.summary["referrer"],
        "digest": result.summary["digest"],
    }
    (used,) = [s for s in report["summaries"] if s.get("used")]
    assert used["counts"] and used["digest"] == result.summary["digest"]

    # One more: the valid one is no longer read; the image is verified in full, and its signature
    # is gone.
    issuing.attach(client, image.ref, image.digest, b'{"junk": "more"}', "9999-01-05")
    decision, result = gate_decision(admit, deploy, store=store)
    assert decision.exit_code() == 1 and result.summary is not None and result.summary["path"] == "full"
    assert any("2 VSAs not looked at: at most" in r for r in result.summary["ignored"]), result.summary
    code, output = run(
        "verify", "image", "-c", str(logged), f"{image.ref.name}@{image.digest}", "--summary", "-o", "json"
    )
    (report,) = json.loads(output)
    assert report["admission"] == {"path": "full"}
    (valid,) = [s for s in report["summaries"] if s.get("counts")]
    assert "not looked at by admission" in valid["notUsed"], valid


def test_verify_image_summary_shows_what_a_statement_says_escaped(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, project: Callable[..., Path]
) -> None:
    """The statement shown is whoever pushed it's: a newline or an ESC sequence in a field (or in
    a reason quoting one) would forge a "counts" line or repaint the terminal."""
    image = push_image(client, f"{registry.host}/shop/forged-lines:v1", content=os.urandom(16))
    forged = "\n  VSA sha256:4f00 (referrers-tag): counts\x1b[2K\x1b[3A\u202e"
    predicate = {
        "verifier": {"id": VERIFIER + forged},
        "timeVerified": "2026-12-07T06:00:00Z" + forged,
        "policy": {"uri": "trustgate:images/rules/shop" + forged},
        "verificationResult": "PASSED" + forged,
        "verifiedLevels": ["SLSA_BUILD_LEVEL_3" + forged],
    }
    payload = json.dumps({"predicateType": summaries.VSA_PREDICATE, "predicate": predicate}).encode()
    bundle = {"dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "signatures": []}}
    issuing.attach(client, image.ref, image.digest, json.dumps(bundle).encode(), "2026-01-01T00:00:00Z")
    config = project("admit", accept=True)
    result = CliRunner().invoke(
        main,
        ["verify", "image", "-c", str(config), f"{image.ref.name}@{image.digest}", "--summary"],
        catch_exceptions=False,
        color=True,
    )
    assert result.exit_code == 1, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output, repr(result.output)
    assert not any(line.startswith("  VSA sha256:4f00") for line in result.output.splitlines()), result.output
    assert "does not count: " in result.output and "levels: SLSA_BUILD_LEVEL_3\\x0a  VSA" in result.output


def test_a_max_age_beyond_ten_years_is_refused_not_a_traceback(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, project: Callable[..., Path]
) -> None:
    image = push_image(client, f"{registry.host}/shop/forever:v1", content=os.urandom(16))
    ok = project("admit", accept=True)
    issuing.attach(
        client,
        image.ref,
        image.digest,
        _bundle(tmp_path / "vsa.pem", image, policy_digest=_policy_digest(ok)),
        dt.datetime.now(dt.UTC).isoformat(),
    )
    config = project("forever", accept=True, max_age=10**12)
    code, output = run("verify", "image", "-c", str(config), f"{image.ref.name}@{image.digest}", "--summary")
    # The configuration error (exit 3, one line), not an OverflowError's traceback.
    assert code == 3 and "maxAgeSeconds" in output and "maximum of 315360000" in output, output


# -- the levels a summary claims (the review of requireLevels) -------------------------------------


def _requiring_l3(project: Callable[..., Path]) -> Path:
    """A gate accepting summaries of any policy that claim Build L3, its own rule wanting the
    provenance signed by the builder itself (the generator's identity)."""
    admit = project("prod", accept=True, builder=True)
    admit.write_text(
        admit.read_text().replace(
            "samePolicy: true", "samePolicy: false, requireLevels: [SLSA_BUILD_LEVEL_3]"
        )
    )
    return admit


def _release_built(client: RegistryClient, sigstore: SigstoreInstance, repo: str) -> Pushed:
    """Signed by the release workflow, with provenance that same workflow wrote naming the listed
    builder: no builder signed it."""
    image = push_image(client, repo, content=os.urandom(16))
    signer = sigstore.identity(RELEASE)
    attach_referrer(client, image.ref, image, sigstore.sign_artifact(image.digest, signer))
    attach_referrer(client, image.ref, image, sigstore.attest(provenance(image.digest), signer))
    return image


def test_build_level_3_is_not_claimed_for_provenance_no_builder_signed(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """A CI whose rule takes provenance signed by the release workflow, naming a listed builder,
    used to claim Build L3 for it; a gate requiring L3 (its own rule wanting the builder's
    signature, which the image lacks) then admitted it through the summary. The CI claims L1
    unless its rule asserts the level (`summaries.issue.buildLevel`): the image is denied."""
    image = _release_built(client, sigstore, f"{registry.host}/shop/tenant-built:v1")
    deploy = deployment(tmp_path, f"{image.ref.name}@{image.digest}")
    prod = _requiring_l3(project)
    code, output = run("check", "-c", str(project("staging", issue=True)), str(deploy), "-o", "json")
    assert code == 0, output
    (checked,) = json.loads(output)["images"]
    assert checked.get("summariesIssued"), checked
    decision, result = gate_decision(prod, deploy)
    assert decision.exit_code() == 1 and result.status == "failed", result.to_json()
    assert result.summary is not None and result.summary["path"] == "full"
    assert any("['SLSA_BUILD_LEVEL_1'] lacks SLSA_BUILD_LEVEL_3" in r for r in result.summary["ignored"])


def test_build_level_3_is_refused_where_provenance_takes_the_signature_authorities(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """The README's example used to be this shape (buildLevel 3, the provenance attestation with
    no authorities of its own, so the release workflow's): provenance that workflow signed was
    claimed L3 and a gate requiring L3 admitted it through the summary. Refused at load; with the
    builder's identity as the provenance authority, the CI denies the workflow-signed provenance
    and issues nothing, and the gate requiring L3 denies too."""
    image = _release_built(client, sigstore, f"{registry.host}/shop/inherited:v1")
    deploy = deployment(tmp_path, f"{image.ref.name}@{image.digest}")
    inherited = project("staging", issue=True, build_level=3, builder=False)
    code, output = run("check", "-c", str(inherited), str(deploy))
    assert code != 0 and "lists no authorities of its own" in output, output
    assert "set `authorities` on attestation 'provenance'" in output, output
    code, output = run(
        "check", "-c", str(project("ci", issue=True, build_level=3)), str(deploy), "-o", "json"
    )
    assert code == 1, output
    (checked,) = json.loads(output)["images"]
    assert not checked.get("summariesIssued"), checked
    decision, result = gate_decision(_requiring_l3(project), deploy)
    assert decision.exit_code() == 1 and result.status == "failed", result.to_json()


def test_a_summary_issued_before_the_levels_changed_does_not_meet_require_levels(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """A summary as the previous release issued it (Build L3 for any listed builder, no marker of
    the levels' semantics), signed with the trusted key: it never meets requireLevels."""
    image = _release_built(client, sigstore, f"{registry.host}/shop/old-l3:v1")
    deploy = deployment(tmp_path, f"{image.ref.name}@{image.digest}")
    prod = _requiring_l3(project)
    name = image.ref.name
    stmt = summaries.build_statement(
        subjects=[(name, image.digest)],
        resource_uri=f"oci://{name}@{image.digest}",
        verifier_id=VERIFIER,
        policy_uri="trustgate:images/rules/shop",
        policy_digest="sha256:" + "00" * 32,
        input_attestations=[],
        verified_levels=["SLSA_BUILD_LEVEL_3"],
        decision_id=None,
        time_verified=dt.datetime.now(dt.UTC),
    )
    stmt["predicate"].pop(summaries.LEVELS_FIELD)
    key = serialization.load_pem_private_key((tmp_path / "vsa.pem").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    bundle = summaries.sign_statement(stmt, key)
    issuing.attach(client, image.ref, image.digest, bundle, stmt["predicate"]["timeVerified"])
    decision, result = gate_decision(prod, deploy)
    assert decision.exit_code() == 1 and result.status == "failed", result.to_json()
    assert result.summary is not None and result.summary["path"] == "full"
    assert any(summaries.LEVELS_FIELD in r for r in result.summary["ignored"]), result.summary


def test_verify_image_summary_says_admission_denies_a_tag_its_rule_requires_pinned(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, project: Callable[..., Path]
) -> None:
    """A rule with requireDigest: admission denies the image referenced by tag, summary or not
    (`image-digest`); `verify image --summary` said it admitted it through the summary (exit 0)."""
    plain = project("admit", accept=True)
    pinned = plain.with_name("pinned.yaml")
    text = plain.read_text()
    assert "      signatures: {authorities: [ci]}\n" in text
    pinned.write_text(
        text.replace("      signatures: {", "      requireDigest: true\n      signatures: {", 1)
    )
    image = push_image(client, f"{registry.host}/shop/by-tag:v1", content=os.urandom(16))  # never signed
    bundle = _bundle(tmp_path / "vsa.pem", image, policy_digest=_policy_digest(pinned))
    issuing.attach(client, image.ref, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())
    store = f"sqlite:///{tmp_path / 'admission.db'}"
    tagged = f"{image.ref.name}:v1"
    # The oracle: admission itself, through the Gate the webhook runs.
    decision, result = gate_decision(pinned, deployment(tmp_path, tagged), store=store)
    assert decision.exit_code() == 1 and any(p.rule == "image-digest" for p in result.problems)
    assert result.summary is not None and result.summary["path"] == "summary"  # the summary counted
    config = pinned.with_name("pinned-logged.yaml")
    config.write_text(
        pinned.read_text().replace("mode: enforce\n", f"mode: enforce\ndecisionLog: {{url: '{store}'}}\n", 1)
    )
    code, output = run("verify", "image", "-c", str(config), tagged, "--summary")
    assert code == 1, output
    assert "admits through" not in output and "requires a digest" in output, output
    code, output = run("verify", "image", "-c", str(config), f"{image.ref.name}@{image.digest}", "--summary")
    assert code == 0 and "admits through" in output, output  # pinned, it does


@pytest.mark.parametrize("revoke", ["summary", "image"])
def test_a_revocation_outlives_a_prune_of_the_log_it_is_recorded_in(
    revoke: str,
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    project: Callable[..., Path],
) -> None:
    """`log prune` removes a prefix of the chain, revocations included: the revoked summary (or
    every summary of the revoked image) counted again, for up to maxAgeSeconds (10 years at most).
    A prune carries the revocations it removes over, recorded anew."""
    admit = project("admit", accept=True)
    store = f"sqlite:///{tmp_path / 'admission.db'}"
    image = push_image(client, f"{registry.host}/shop/pruned-{revoke}:v1", content=os.urandom(16))  # unsigned
    deploy = deployment(tmp_path, f"{registry.host}/shop/pruned-{revoke}@{image.digest}")
    bundle = _bundle(tmp_path / "vsa.pem", image, policy_digest=_policy_digest(admit))
    issuing.attach(client, image.ref, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())
    decision, result = gate_decision(admit, deploy, store=store)
    assert decision.exit_code() == 0 and result.summary is not None and result.summary["path"] == "summary"
    digest = summaries.summary_digest(bundle) if revoke == "summary" else image.digest
    code, output = run("summaries", "revoke", digest, "--store", store, "--reason", "found vulnerable")
    assert code == 0, output
    decision, _ = gate_decision(admit, deploy, store=store)
    assert decision.exit_code() == 1  # revoked: verified in full, and unsigned
    time.sleep(0.01)
    cutoff = dt.datetime.now(dt.UTC).isoformat()
    time.sleep(0.01)
    code, output = run("log", "prune", "--store", store, "--before", cutoff)
    assert code == 0 and "removed 3 decisions" in output, output  # two admissions and the revocation
    decision, after = gate_decision(admit, deploy, store=store)
    assert decision.exit_code() == 1 and after.summary is not None and after.summary["path"] == "full"
    assert any("revoked" in reason for reason in after.summary["ignored"]), after.summary
    assert f"carried over the revocation of {digest}" in output, output
    # Everything, by a date still to come: the revocation recorded anew is kept.
    code, output = run("log", "prune", "--store", store, "--before", "2999-01-01")
    assert code == 0 and "removed 2 decisions" in output, output  # the last admission, the old revocation
    assert f"carried over the revocation of {digest}" in output, output
    decision, after = gate_decision(admit, deploy, store=store)
    assert decision.exit_code() == 1 and after.summary is not None and after.summary["path"] == "full"
    code, output = run("log", "verify", "--store", store)
    assert code == 0, output


def _revoked_elsewhere(
    tmp_path: Path, registry: RegistryProcess, client: RegistryClient, admit: Path, name: str
) -> tuple[Path, str]:
    """An unsigned image whose only summary counts and is revoked in the log `revoked.db`;
    (its deployment, its reference by digest)."""
    image = push_image(client, f"{registry.host}/shop/{name}:v1", content=os.urandom(16))  # unsigned
    bundle = _bundle(tmp_path / "vsa.pem", image, policy_digest=_policy_digest(admit))
    issuing.attach(client, image.ref, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())
    revoked = f"sqlite:///{tmp_path / 'revoked.db'}"
    code, output = run(
        "summaries", "revoke", summaries.summary_digest(bundle), "--store", revoked, "--create"
    )
    assert code == 0, output
    reference = f"{registry.host}/shop/{name}@{image.digest}"
    return deployment(tmp_path, reference), reference


@pytest.mark.parametrize(
    "where", ["sqlite-file-missing", "postgresql-without-tables", "postgresql-no-database"]
)
def test_a_decision_log_that_is_not_there_revokes_nothing_it_is_could_not_evaluate(
    where: str,
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    project: Callable[..., Path],
    request: pytest.FixtureRequest,
) -> None:
    """The log configured is not there (a wrong path, a volume not mounted, another database): what
    it revokes is unknown, not nothing. `verify image --summary` said the summary revoked in the real
    log counted (exit 0), and admission admitted the unsigned image through it; an empty PostgreSQL
    database was given the log's tables by the reader, and read as revoking nothing."""
    admit = project("admit", accept=True)
    deploy, reference = _revoked_elsewhere(tmp_path, registry, client, admit, f"log-{where}")
    if where == "sqlite-file-missing":
        (tmp_path / "not-mounted").mkdir()
        url = f"sqlite:///{tmp_path / 'not-mounted' / 'decisions.db'}"
        named = str(tmp_path / "not-mounted" / "decisions.db")
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database() if where == "postgresql-without-tables" else server.url("nowhere")
        named = "/nowhere" if where == "postgresql-no-database" else url.rpartition("/")[2]
    config = admit.with_name("admit-missing.yaml")
    config.write_text(admit.read_text() + f'decisionLog: {{url: "{url}"}}\n')
    code, output = run("verify", "image", "-c", str(config), reference, "--summary")
    assert code == 3, output
    assert "admits through" not in output and "revocations could not be read: " in output, output
    assert named in output, output
    if where == "sqlite-file-missing":
        assert not (tmp_path / "not-mounted" / "decisions.db").exists()  # a reader makes no log
    elif where == "postgresql-without-tables":
        assert "none of its tables" in output, output
        with psycopg.connect(url) as conn:  # nor its tables
            assert conn.execute("SELECT to_regclass('decisions')").fetchone() == (None,)
    if where == "postgresql-no-database":
        return  # a gate cannot record its decision either
    decision, result = gate_decision(admit, deploy, store=url, make=False)
    assert result.status == "failed" and decision.exit_code() == 1, result.to_json()
    assert result.summary is not None and result.summary["path"] == "full"
    (ignored,) = result.summary["ignored"]
    assert "revocations could not be read" in ignored and named in ignored, ignored


@pytest.mark.parametrize("where", ["sqlite-file-mistyped", "sqlite-file-empty", "postgresql-without-tables"])
def test_a_revocation_into_a_log_that_is_not_there_is_refused_not_written_where_no_gate_reads(
    where: str,
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    project: Callable[..., Path],
    request: pytest.FixtureRequest,
) -> None:
    """`summaries revoke --store` with a mistyped path started a new log there and said "revoked"
    (exit 0), while the log the gates read still let the summary count: a false allow the operator
    believed closed. Refused now (exit 3), naming the log and the ways out: -c (the configured
    log), or --create to start one."""
    admit = project("admit", accept=True)
    real = made(f"sqlite:///{tmp_path / 'decisions.db'}")
    config = admit.with_name("admit-logged.yaml")
    config.write_text(admit.read_text() + f'decisionLog: {{url: "{real}"}}\n')
    image = push_image(client, f"{registry.host}/shop/typo-{where}:v1", content=os.urandom(16))  # unsigned
    deploy = deployment(tmp_path, f"{registry.host}/shop/typo-{where}@{image.digest}")
    bundle = _bundle(tmp_path / "vsa.pem", image, policy_digest=_policy_digest(config))
    issuing.attach(client, image.ref, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())
    digest = summaries.summary_digest(bundle)
    if where == "sqlite-file-mistyped":
        wrong, named = f"sqlite:///{tmp_path / 'decisons.db'}", str(tmp_path / "decisons.db")
    elif where == "sqlite-file-empty":
        (tmp_path / "cache.db").touch()
        wrong, named = f"sqlite:///{tmp_path / 'cache.db'}", str(tmp_path / "cache.db")
    else:
        wrong = request.getfixturevalue("postgres_server").create_database()
        named = wrong.rpartition("/")[2]

    code, output = run("summaries", "revoke", digest, "--store", wrong, "--reason", "key leak")
    assert code == 3, output
    assert named in output and "no decision log here" in output and "nothing revoked" in output, output
    assert "-c trustgate.yaml" in output and "--create" in output, output
    if where == "sqlite-file-mistyped":
        assert not (tmp_path / "decisons.db").exists()
    elif where == "sqlite-file-empty":
        assert (tmp_path / "cache.db").stat().st_size == 0
    else:
        with psycopg.connect(wrong) as conn:
            assert conn.execute("SELECT to_regclass('decisions')").fetchone() == (None,)
    decision, result = gate_decision(config, deploy, store=real)
    assert decision.exit_code() == 0 and result.summary is not None, result.to_json()
    assert result.summary["path"] == "summary"  # nothing revoked: the summary still counts

    # The configured log (decisionLog.url of -c): revoked where the gates read.
    code, output = run("summaries", "revoke", digest, "-c", str(config), "--reason", "key leak")
    assert code == 0 and real in output, output
    decision, result = gate_decision(config, deploy, store=real)
    assert decision.exit_code() == 1 and result.summary is not None, result.to_json()
    assert result.summary["path"] == "full"
    assert any("revoked" in reason for reason in result.summary["ignored"]), result.summary
    # Starting a log there is asked for by name.
    code, output = run("summaries", "revoke", digest, "--store", wrong, "--create")
    assert code == 0, output
    code, output = run("log", "verify", "--store", wrong)
    assert code == 0 and "1 records" in output, output


@pytest.mark.parametrize("where", ["sqlite-volume-not-mounted", "postgresql-another-database"])
def test_check_accepting_summaries_does_not_start_a_decision_log_that_is_not_there(
    where: str,
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    project: Callable[..., Path],
    request: pytest.FixtureRequest,
) -> None:
    """A gate whose decisionLog.url points where no log is (a volume not mounted, another
    database) created a new, empty one with its first decision (exit 1: the revocations could not
    be read), and from the second decision on read "nothing revoked" from it: the summary revoked
    in the real log admitted the unsigned image (exit 0). Refused now (exit 3) at every run,
    naming the log and `trustgate log init`, and nothing is created; a gate that only records
    (no rule accepts summaries) still starts its log."""
    admit = project("admit", accept=True)
    real = made(f"sqlite:///{tmp_path / 'decisions.db'}")
    logged = admit.with_name("admit-logged.yaml")
    logged.write_text(admit.read_text() + f'decisionLog: {{url: "{real}"}}\n')
    image = push_image(
        client, f"{registry.host}/shop/unmounted-{where}:v1", content=os.urandom(16)
    )  # unsigned
    deploy = deployment(tmp_path, f"{registry.host}/shop/unmounted-{where}@{image.digest}")
    bundle = _bundle(tmp_path / "vsa.pem", image, policy_digest=_policy_digest(logged))
    issuing.attach(client, image.ref, image.digest, bundle, dt.datetime.now(dt.UTC).isoformat())
    code, output = run("summaries", "revoke", summaries.summary_digest(bundle), "-c", str(logged))
    assert code == 0, output
    code, output = run("check", "-c", str(logged), str(deploy))
    assert code == 1, output  # revoked: verified in full, and unsigned
    if where.startswith("sqlite"):
        (tmp_path / "not-mounted").mkdir()
        wrong = f"sqlite:///{tmp_path / 'not-mounted' / 'decisions.db'}"
        named = str(tmp_path / "not-mounted" / "decisions.db")
    else:
        wrong = request.getfixturevalue("postgres_server").create_database()
        named = wrong.rpartition("/")[2]
    mistaken = admit.with_name("admit-mistaken.yaml")
    mistaken.write_text(admit.read_text() + f'decisionLog: {{url: "{wrong}"}}\n')

    for _ in range(2):  # the second run read the log the first one had started
        code, output = run("check", "-c", str(mistaken), str(deploy))
        assert code == 3, output
        assert "no decision log here" in output and named in output, output
        assert "the image rules accept verification summaries" in output, output
        assert "trustgate log init --store " in output, output
    code, output = run("check", "-c", str(admit), str(deploy), "--decision-log", wrong)
    assert code == 3 and named in output, output
    if where.startswith("sqlite"):
        assert not (tmp_path / "not-mounted" / "decisions.db").exists()
    else:
        with psycopg.connect(wrong) as conn:
            assert conn.execute("SELECT to_regclass('decisions')").fetchone() == (None,)

    # A gate that only records decides nothing from the log: it starts one, as it always did.
    config_map = tmp_path / "settings.yaml"
    config_map.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s, namespace: prod}\n")
    plain = project("plain")
    unused = (
        f"sqlite:///{tmp_path / 'not-mounted' / 'records.db'}"
        if where.startswith("sqlite")
        else (request.getfixturevalue("postgres_server").create_database())
    )
    code, output = run("check", "-c", str(plain), str(config_map), "--decision-log", unused)
    assert code == 0 and "recorded in" in output, output

    # The way out: the log started by name. It is a new log: it revokes nothing the operator
    # revoked elsewhere, which is what starting it means.
    code, output = run("log", "init", "-c", str(mistaken))
    assert code == 0 and "created a new, empty decision log" in output and named in output, output
    code, output = run("check", "-c", str(mistaken), str(deploy))
    assert code == 0, output
    code, output = run("check", "-c", str(logged), str(deploy))
    assert code == 1, output  # the log the gates meant still revokes it


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("clockSkewSeconds", "86400000", "86400000 is greater than the maximum of 3600"),
        ("revocationRefreshSeconds", "86400000", "86400000 is greater than the maximum of 3600"),
    ],
)
def test_summary_durations_past_their_bounds_are_refused_saying_why(
    key: str, value: str, said: str, tmp_path: Path, project: Callable[..., Path]
) -> None:
    """A typo (86400000) made summaries dated years ahead count, or revocations read once in years
    (the YAML loader refuses `.nan` and `.inf` already). Refused, naming the key, the limit and why."""
    config = project("admit", accept=True)
    text = config.read_text()
    if key == "clockSkewSeconds":
        text = text.replace("samePolicy: true}", f"samePolicy: true, clockSkewSeconds: {value}}}", 1)
    else:
        text = text.replace("revocationRefreshSeconds: 30}", f"revocationRefreshSeconds: {value}}}", 1)
    assert value in text
    config.write_text(text)
    code, output = run("check", "-c", str(config), str(deployment(tmp_path, "nginx@sha256:" + "0" * 64)))
    assert code == 3, output
    assert said in output and key in output, output
    assert ("lengthens" if key == "clockSkewSeconds" else "read again") in output, output
    assert "Traceback" not in output


def test_the_signer_recorded_is_the_san_the_rule_matched_not_the_first(
    tmp_path: Path,
    registry: RegistryProcess,
    client: RegistryClient,
    sigstore: SigstoreInstance,
    project: Callable[..., Path],
) -> None:
    """A certificate whose first SAN the rule does not name and whose second it does: the decision
    recorded the first as the signer (an identity the policy never trusted)."""
    image = push_image(client, f"{registry.host}/shop/two-sans:v1", content=os.urandom(16))
    other = "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main"
    signer = sigstore.identity(other, more_sans=(RELEASE,))
    attach_referrer(client, image.ref, image, sigstore.sign_artifact(image.digest, signer))
    attach_referrer(client, image.ref, image, sigstore.attest(provenance(image.digest), signer))
    reference = f"{registry.host}/shop/two-sans@{image.digest}"
    code, output = run(
        "check", "-c", str(project("plain")), str(deployment(tmp_path, reference)), "-o", "json"
    )
    assert code == 0, output
    (verified,) = json.loads(output)["images"]
    assert [s["subject"] for s in verified["signatures"]] == [RELEASE], verified["signatures"]
    assert [a["signer"]["subject"] for a in verified["attestations"]] == [RELEASE], verified
