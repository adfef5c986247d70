"""Sigstore bundles from the private test instance, verified through trustgate.verify."""

from __future__ import annotations

import base64
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.sigstore import SigstoreInstance, key_authority, keyless_authority, statement, verify_cosign

from trustgate.verify import SignatureVerificationError, TrustRoot, verify_blob, verify_bundle

WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0"
DEV_WORKFLOW = "https://github.com/acme/app/.github/workflows/ci.yml@refs/heads/dev"
ISSUER = "https://token.actions.githubusercontent.com"
ARTIFACT = b"release artifact\n"
DIGEST = "sha256:" + hashlib.sha256(ARTIFACT).hexdigest()
OTHER_DIGEST = "sha256:" + "0" * 64


def failure(call: Any) -> SignatureVerificationError:
    with pytest.raises(SignatureVerificationError) as info:
        call()
    return info.value


def test_keyless_message_signature_verifies_with_evidence(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    signer = sigstore.identity(WORKFLOW, ISSUER)
    bundle = sigstore.sign_artifact(ARTIFACT, signer)
    evidence, statement_ = verify_bundle(
        bundle, digest=DIGEST, authority=keyless_authority(sigstore_root, WORKFLOW)
    )
    assert statement_ is None
    assert (evidence.method, evidence.kind, evidence.signed_digest) == ("keyless", "signature", DIGEST)
    assert (evidence.subject, evidence.issuer) == (WORKFLOW, ISSUER)
    entry = json.loads(bundle)["verificationMaterial"]["tlogEntries"][0]
    assert evidence.log_index == int(entry["logIndex"])
    assert evidence.log_id == sigstore.rekor_log_id.hex()
    assert evidence.integrated_time is not None and evidence.integrated_time.endswith("Z")
    der = base64.b64decode(json.loads(bundle)["verificationMaterial"]["certificate"]["rawBytes"])
    assert evidence.certificate_sha256 == "sha256:" + hashlib.sha256(der).hexdigest()
    assert evidence.key_id is not None and evidence.key_id.startswith("sha256:")
    assert evidence.to_json()["subject"] == WORKFLOW


def test_signature_over_a_digest_verifies(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    bundle = sigstore.sign_artifact(DIGEST, sigstore.identity(WORKFLOW, ISSUER))
    authority = keyless_authority(sigstore_root, WORKFLOW)
    assert verify_blob(digest=DIGEST, bundle=bundle, authority=authority).signed_digest == DIGEST
    assert verify_blob(artifact=ARTIFACT, bundle=bundle, authority=authority).subject == WORKFLOW


@pytest.mark.parametrize("issuer_oids", ["v1", "v2", "both"])
def test_email_identity_with_each_issuer_extension(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot, issuer_oids: str
) -> None:
    signer = sigstore.identity("dev@acme.example", "https://accounts.google.com", issuer_oids=issuer_oids)
    bundle = sigstore.sign_artifact(ARTIFACT, signer)
    authority = keyless_authority(sigstore_root, "dev@acme.example", "https://accounts.google.com")
    evidence = verify_blob(artifact=ARTIFACT, bundle=bundle, authority=authority)
    assert (evidence.subject, evidence.issuer) == ("dev@acme.example", "https://accounts.google.com")


def test_identity_regex_is_a_full_match(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    bundle = sigstore.sign_artifact(ARTIFACT, sigstore.identity(WORKFLOW, ISSUER))
    tags = keyless_authority(
        sigstore_root, r"https://github\.com/acme/app/[^@]+@refs/tags/v[^@]*", regex=True
    )
    assert verify_blob(artifact=ARTIFACT, bundle=bundle, authority=tags).subject == WORKFLOW
    prefix_only = keyless_authority(sigstore_root, r"https://github\.com/acme/app", regex=True)
    assert failure(lambda: verify_blob(artifact=ARTIFACT, bundle=bundle, authority=prefix_only)).code == (
        "identity-mismatch"
    )


def test_identity_mismatch_names_who_signed_and_what_is_wanted(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    bundle = sigstore.sign_artifact(ARTIFACT, sigstore.identity(DEV_WORKFLOW, ISSUER))
    authority = keyless_authority(
        sigstore_root, r"https://github\.com/acme/app/[^@]+@refs/tags/v[^@]*", regex=True
    )
    failed = failure(lambda: verify_blob(artifact=ARTIFACT, bundle=bundle, authority=authority))
    assert failed.code == "identity-mismatch"
    assert failed.reason == (
        f"signed, but by {DEV_WORKFLOW} (issuer {ISSUER}), and the policy wants an identity matching "
        rf"https://github\.com/acme/app/[^@]+@refs/tags/v[^@]* (issuer {ISSUER})"
    )


def test_wrong_issuer_is_an_identity_mismatch(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    bundle = sigstore.sign_artifact(ARTIFACT, sigstore.identity(WORKFLOW, "https://gitlab.example"))
    failed = failure(
        lambda: verify_blob(
            artifact=ARTIFACT, bundle=bundle, authority=keyless_authority(sigstore_root, WORKFLOW)
        )
    )
    assert failed.code == "identity-mismatch"
    assert "(issuer https://gitlab.example)" in failed.reason


def test_expired_certificate(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    bundle = sigstore.sign_artifact(ARTIFACT, sigstore.identity(WORKFLOW, ISSUER, expired=True))
    failed = failure(
        lambda: verify_blob(
            artifact=ARTIFACT, bundle=bundle, authority=keyless_authority(sigstore_root, WORKFLOW)
        )
    )
    assert failed.code == "expired-certificate"
    assert "but the signature was logged at" in failed.reason


def test_untrusted_root(sigstore_root: TrustRoot, tmp_path: Path) -> None:
    stranger = SigstoreInstance.create(tmp_path / "keys")
    bundle = stranger.sign_artifact(ARTIFACT, stranger.identity(WORKFLOW, ISSUER))
    failed = failure(
        lambda: verify_blob(
            artifact=ARTIFACT, bundle=bundle, authority=keyless_authority(sigstore_root, WORKFLOW)
        )
    )
    assert failed.code == "untrusted"
    assert "test-instance" in failed.reason


def test_public_good_root_does_not_trust_the_test_instance(sigstore: SigstoreInstance) -> None:
    bundle = sigstore.sign_artifact(ARTIFACT, sigstore.identity(WORKFLOW, ISSUER))
    authority = keyless_authority(TrustRoot.public_good(), WORKFLOW)
    assert (
        failure(lambda: verify_blob(artifact=ARTIFACT, bundle=bundle, authority=authority)).code
        == "untrusted"
    )


def test_signature_for_another_artifact(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    bundle = sigstore.sign_artifact(ARTIFACT, sigstore.identity(WORKFLOW, ISSUER))
    failed = failure(
        lambda: verify_bundle(
            bundle, digest=OTHER_DIGEST, authority=keyless_authority(sigstore_root, WORKFLOW)
        )
    )
    assert failed.code == "digest-mismatch"
    assert DIGEST in failed.reason and OTHER_DIGEST in failed.reason


def test_altered_signature_is_a_bad_signature(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    other = json.loads(sigstore.sign_artifact(b"something else", sigstore.identity(WORKFLOW, ISSUER)))
    bundle = json.loads(sigstore.sign_artifact(ARTIFACT, sigstore.identity(WORKFLOW, ISSUER)))
    bundle["messageSignature"]["signature"] = other["messageSignature"]["signature"]
    failed = failure(
        lambda: verify_blob(
            artifact=ARTIFACT,
            bundle=json.dumps(bundle).encode(),
            authority=keyless_authority(sigstore_root, WORKFLOW),
        )
    )
    assert failed.code == "bad-signature"


def test_tampered_inclusion_proof_is_a_tlog_failure(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    sigstore.sign_artifact(b"pad the log", sigstore.identity(WORKFLOW, ISSUER))
    bundle = json.loads(sigstore.sign_artifact(ARTIFACT, sigstore.identity(WORKFLOW, ISSUER)))
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["rootHash"] = base64.b64encode(b"\x01" * 32).decode()
    failed = failure(
        lambda: verify_blob(
            artifact=ARTIFACT,
            bundle=json.dumps(bundle).encode(),
            authority=keyless_authority(sigstore_root, WORKFLOW),
        )
    )
    assert failed.code == "tlog"


def test_log_entry_of_another_signature_is_refused(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    signer = sigstore.identity(WORKFLOW, ISSUER)
    other = json.loads(sigstore.sign_artifact(b"other", signer))
    bundle = json.loads(sigstore.sign_artifact(ARTIFACT, signer))
    bundle["verificationMaterial"]["tlogEntries"] = other["verificationMaterial"]["tlogEntries"]
    failed = failure(
        lambda: verify_blob(
            artifact=ARTIFACT,
            bundle=json.dumps(bundle).encode(),
            authority=keyless_authority(sigstore_root, WORKFLOW),
        )
    )
    assert failed.code == "tlog"


# ----------------------------------------------------------------------------- DSSE


def test_dsse_attestation_returns_the_statement(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    predicate = {"buildDefinition": {"buildType": "https://example.test/v1"}}
    bundle = sigstore.attest(statement(DIGEST, predicate=predicate), sigstore.identity(WORKFLOW, ISSUER))
    evidence, stmt = verify_bundle(
        bundle, digest=DIGEST, authority=keyless_authority(sigstore_root, WORKFLOW)
    )
    assert stmt is not None and evidence.kind == "attestation"
    assert stmt.predicate_type == "https://slsa.dev/provenance/v1"
    assert stmt.predicate == predicate
    assert stmt.covers(DIGEST) and not stmt.covers(OTHER_DIGEST)
    assert stmt.envelope_sha256.startswith("sha256:")


def test_statement_for_another_digest(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    bundle = sigstore.attest(statement(OTHER_DIGEST, name="other-image"), sigstore.identity(WORKFLOW, ISSUER))
    failed = failure(
        lambda: verify_bundle(bundle, digest=DIGEST, authority=keyless_authority(sigstore_root, WORKFLOW))
    )
    assert failed.code == "subject-mismatch"
    assert f"other-image {OTHER_DIGEST}" in failed.reason and DIGEST in failed.reason


def test_dsse_subject_mismatch_after_envelope_swap(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    signer = sigstore.identity(WORKFLOW, ISSUER)
    good = json.loads(sigstore.attest(statement(DIGEST), signer))
    other = json.loads(sigstore.attest(statement(OTHER_DIGEST), signer))
    good["dsseEnvelope"] = other["dsseEnvelope"]  # a valid envelope, but not the one the log recorded
    failed = failure(
        lambda: verify_bundle(
            json.dumps(good).encode(), digest=DIGEST, authority=keyless_authority(sigstore_root, WORKFLOW)
        )
    )
    assert failed.code in ("tlog", "subject-mismatch")


def test_dsse_with_a_statement_lacking_subjects_is_malformed(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    bundle = sigstore.attest(
        {"_type": "https://in-toto.io/Statement/v1"}, sigstore.identity(WORKFLOW, ISSUER)
    )
    failed = failure(
        lambda: verify_bundle(bundle, digest=DIGEST, authority=keyless_authority(sigstore_root, WORKFLOW))
    )
    assert failed.code == "malformed"


# ----------------------------------------------------------------------------- keys


@pytest.mark.parametrize("name", ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa"])
def test_key_signed_bundle_verifies_with_its_log_entry(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot, name: str
) -> None:
    pair = sigstore.key(name)
    bundle = sigstore.sign_artifact(ARTIFACT, pair)
    evidence = verify_blob(artifact=ARTIFACT, bundle=bundle, authority=key_authority(pair, sigstore_root))
    assert (evidence.method, evidence.key_id) == ("key", pair.key_id)
    assert evidence.log_index is not None and evidence.integrated_time is not None


def test_key_bundle_without_its_log_entry_is_refused_when_a_root_is_named(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    pair = sigstore.key("ecdsa-p256")
    data = json.loads(sigstore.sign_artifact(ARTIFACT, pair))
    data["verificationMaterial"]["tlogEntries"] = []
    stripped = json.dumps(data).encode()
    with pytest.raises(SignatureVerificationError) as caught:
        verify_blob(artifact=ARTIFACT, bundle=stripped, authority=key_authority(pair, sigstore_root))
    assert caught.value.code == "tlog"
    assert "no transparency-log entry" in caught.value.reason
    # without a trust root the key alone is the policy (cosign's --insecure-ignore-tlog)
    assert verify_blob(artifact=ARTIFACT, bundle=stripped, authority=key_authority(pair)).method == "key"


@pytest.mark.parametrize("name", ["ecdsa-p256", "ecdsa-p384", "rsa"])
def test_key_signed_digest_verifies(sigstore: SigstoreInstance, name: str) -> None:
    pair = sigstore.key(name)
    bundle = sigstore.sign_artifact(DIGEST, pair)
    evidence, _ = verify_bundle(bundle, digest=DIGEST, authority=key_authority(pair))
    assert evidence.log_index is None  # no root given: the log is not consulted


def test_ed25519_needs_the_artifact_not_only_its_digest(sigstore: SigstoreInstance) -> None:
    pair = sigstore.key("ed25519")
    bundle = sigstore.sign_artifact(ARTIFACT, pair)
    assert (
        failure(lambda: verify_bundle(bundle, digest=DIGEST, authority=key_authority(pair))).code
        == "unsupported"
    )


def test_wrong_key(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    bundle = sigstore.sign_artifact(ARTIFACT, sigstore.key("ecdsa-p256"))
    authority = key_authority(sigstore.key("ecdsa-p384"), sigstore_root)
    failed = failure(lambda: verify_blob(artifact=ARTIFACT, bundle=bundle, authority=authority))
    assert failed.code == "bad-signature"
    assert sigstore.key("ecdsa-p384").key_id in failed.reason


def test_keyless_bundle_against_a_key(sigstore: SigstoreInstance) -> None:
    bundle = sigstore.sign_artifact(ARTIFACT, sigstore.identity(WORKFLOW, ISSUER))
    authority = key_authority(sigstore.key("ecdsa-p256"))
    assert (
        failure(lambda: verify_blob(artifact=ARTIFACT, bundle=bundle, authority=authority)).code
        == "bad-signature"
    )


def test_key_attestation(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    pair = sigstore.key("ed25519")
    bundle = sigstore.attest(statement(DIGEST), pair)
    evidence, stmt = verify_bundle(bundle, digest=DIGEST, authority=key_authority(pair, sigstore_root))
    assert stmt is not None and stmt.covers(DIGEST) and evidence.method == "key"
    other = sigstore.attest(statement(OTHER_DIGEST), pair)
    failed = failure(
        lambda: verify_bundle(other, digest=DIGEST, authority=key_authority(pair, sigstore_root))
    )
    assert failed.code == "subject-mismatch"


def test_key_bundle_with_the_log_entry_of_another_signature(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    pair = sigstore.key("ecdsa-p256")
    other = json.loads(sigstore.sign_artifact(b"other", pair))
    bundle = json.loads(sigstore.sign_artifact(ARTIFACT, pair))
    bundle["verificationMaterial"]["tlogEntries"] = other["verificationMaterial"]["tlogEntries"]
    failed = failure(
        lambda: verify_blob(
            artifact=ARTIFACT,
            bundle=json.dumps(bundle).encode(),
            authority=key_authority(pair, sigstore_root),
        )
    )
    assert failed.code == "tlog"
    assert "records another" in failed.reason


def test_key_bundle_log_entry_from_an_untrusted_log(sigstore: SigstoreInstance, tmp_path: Path) -> None:
    stranger = SigstoreInstance.create(tmp_path / "keys")
    pair = sigstore.key("ecdsa-p256")
    bundle = sigstore.sign_artifact(ARTIFACT, pair)
    stranger_root = TrustRoot.from_json(stranger.trusted_root_json(), name="stranger")
    failed = failure(
        lambda: verify_blob(artifact=ARTIFACT, bundle=bundle, authority=key_authority(pair, stranger_root))
    )
    assert failed.code == "tlog"


# ----------------------------------------------------------------------------- garbage


_DELETE = object()


def _mutations(bundle: bytes) -> list[tuple[str, bytes]]:
    def mutate(path: list[Any], value: Any) -> bytes:
        copy = json.loads(bundle)
        target = copy
        for part in path[:-1]:
            target = target[part]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return json.dumps(copy).encode()

    material = ["verificationMaterial"]
    entry = [*material, "tlogEntries", 0]
    keyless = "certificate" in json.loads(bundle)["verificationMaterial"]
    return [
        ("empty", b""),
        ("not json", b"this is not json"),
        ("json list", b"[]"),
        ("json string", b'"bundle"'),
        ("empty object", b"{}"),
        ("not utf-8", b"\xff\xfe\x00"),
        ("truncated", bundle[: len(bundle) // 2]),
        ("truncated near the end", bundle[:-3]),
        ("deep nesting", b"[" * 100000 + b"]" * 100000),
        ("bad base64 signature", mutate(["messageSignature", "signature"], "!!!not base64!!!")),
        ("signature of wrong type", mutate(["messageSignature", "signature"], 5)),
        ("no signature content", mutate(["messageSignature"], _DELETE)),
        ("log entries not a list", mutate([*material, "tlogEntries"], {"a": 1})),
        ("log index not a number", mutate([*entry, "logIndex"], "abc")),
        ("negative log index", mutate([*entry, "logIndex"], "-1")),
        ("body not base64", mutate([*entry, "canonicalizedBody"], "%%%")),
        ("verification material null", mutate(material, None)),
        ("digest garbage", mutate(["messageSignature", "messageDigest", "digest"], "@@")),
    ] + (
        [
            ("unknown media type", mutate(["mediaType"], "application/x-nope")),
            ("certificate not DER", mutate([*material, "certificate", "rawBytes"], "AAAA")),
            ("no log entries", mutate([*material, "tlogEntries"], [])),
            ("no inclusion proof", mutate([*entry, "inclusionProof"], _DELETE)),
        ]
        if keyless
        else []
    )


@pytest.mark.parametrize("kind", ["keyless", "key"])
def test_garbage_is_malformed_never_another_exception(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot, kind: str
) -> None:
    authority: Any
    if kind == "keyless":
        bundle = sigstore.sign_artifact(ARTIFACT, sigstore.identity(WORKFLOW, ISSUER))
        authority = keyless_authority(sigstore_root, WORKFLOW)
    else:
        pair = sigstore.key("ecdsa-p256")
        bundle = sigstore.sign_artifact(ARTIFACT, pair)
        authority = key_authority(pair, sigstore_root)
    verify_blob(artifact=ARTIFACT, bundle=bundle, authority=authority)  # the unmutated bundle is good
    outcomes = {}
    for label, data in _mutations(bundle):
        try:
            verify_blob(artifact=ARTIFACT, bundle=data, authority=authority)
            outcomes[label] = "verified"
        except SignatureVerificationError as e:
            outcomes[label] = e.code
    assert {k: v for k, v in outcomes.items() if v != "malformed"} == {}


def test_bad_digest_argument_is_malformed(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    bundle = sigstore.sign_artifact(ARTIFACT, sigstore.identity(WORKFLOW, ISSUER))
    failed = failure(
        lambda: verify_bundle(bundle, digest="md5:abc", authority=keyless_authority(sigstore_root, WORKFLOW))
    )
    assert failed.code == "malformed"


# ----------------------------------------------------------------------------- sharing


def test_concurrent_verifications_share_one_verifier(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    signer = sigstore.identity(WORKFLOW, ISSUER)
    items = [(b"artifact %d" % i, sigstore.sign_artifact(b"artifact %d" % i, signer)) for i in range(40)]
    authority = keyless_authority(sigstore_root, WORKFLOW)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda item: verify_blob(artifact=item[0], bundle=item[1], authority=authority), items)
        )
    assert [r.signed_digest for r in results] == ["sha256:" + hashlib.sha256(a).hexdigest() for a, _ in items]
    assert len({r.log_index for r in results}) == 40
    assert sigstore_root.verifier() is sigstore_root.verifier()


KEY_TYPES = ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa"]


@pytest.mark.parametrize("signer", KEY_TYPES)
@pytest.mark.parametrize("verifier", KEY_TYPES)
def test_every_key_type_against_every_key_type(
    sigstore: SigstoreInstance, signer: str, verifier: str
) -> None:
    """Right key: verifies. Wrong key, whatever the two types: "does not verify", never a traceback."""
    bundle = sigstore.sign_artifact(ARTIFACT, sigstore.key(signer))
    authority = key_authority(sigstore.key(verifier))
    if signer == verifier:
        assert verify_blob(artifact=ARTIFACT, bundle=bundle, authority=authority).key_id == authority.key_id
        return
    failed = failure(lambda: verify_blob(artifact=ARTIFACT, bundle=bundle, authority=authority))
    assert failed.code == "bad-signature" and "does not verify with the key" in failed.reason


def test_a_key_signed_attestation_whose_log_entry_records_a_signature_is_refused(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    """A hashedrekord over other content, holding the attestation's signature, does not record the
    statement (monitors of dsse/intoto entries never see it); sigstore-python refuses it too."""
    pair = sigstore.key("ecdsa-p256")
    image = "sha256:" + "ab" * 32
    bundle = json.loads(sigstore.attest(statement(image, "https://slsa.dev/provenance/v1", {}), pair))
    signature = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    entry = sigstore._hashedrekord(hashlib.sha256(b"unrelated").digest(), signature, pair)
    bundle["verificationMaterial"]["tlogEntries"] = [entry.bundle_entry()]
    error = failure(
        lambda: verify_bundle(
            json.dumps(bundle).encode(), digest=image, authority=key_authority(pair, sigstore_root)
        )
    )
    assert "not this attestation" in error.message


def test_a_message_digest_of_another_algorithm_is_refused(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    pair = sigstore.key("ecdsa-p256")
    bundle = json.loads(sigstore.sign_artifact(ARTIFACT, pair))
    other = base64.b64encode(hashlib.sha512(b"other").digest()).decode()
    bundle["messageSignature"]["messageDigest"] = {"algorithm": "SHA2_512", "digest": other}
    error = failure(
        lambda: verify_blob(
            artifact=ARTIFACT,
            bundle=json.dumps(bundle).encode(),
            authority=key_authority(pair, sigstore_root),
        )
    )
    assert "SHA2_512" in error.message


def test_a_log_time_in_the_future_is_refused(sigstore_root: TrustRoot) -> None:
    """It would rank its statement newest for as long as its date is ahead (sigstore-go refuses it)."""
    ahead = SigstoreInstance.load(now=datetime.now(UTC) + timedelta(days=3650))
    pair = ahead.key("ecdsa-p256")
    bundle = ahead.sign_artifact(ARTIFACT, pair)
    error = failure(
        lambda: verify_blob(artifact=ARTIFACT, bundle=bundle, authority=key_authority(pair, sigstore_root))
    )
    assert "integrated in the future" in error.message


def _retired(sigstore: SigstoreInstance, which: tuple[str, ...], window: dict[str, str]) -> TrustRoot:
    root = json.loads(sigstore.trusted_root_json())
    for logs in which:
        for log in root[logs]:
            log["publicKey"]["validFor"] = window
    return TrustRoot.from_json(json.dumps(root).encode(), name="retired-logs")


_RETIRED = {"start": "2020-01-01T00:00:00Z", "end": "2021-01-01T00:00:00Z"}
_CURRENT = {"start": "2020-01-01T00:00:00Z"}


@pytest.mark.parametrize("which", [("tlogs",), ("ctlogs",)])
@pytest.mark.parametrize("kind", ["bundle", "attestation", "cosign"])
def test_a_log_key_counts_only_within_its_validity_window(
    sigstore: SigstoreInstance, which: tuple[str, ...], kind: str
) -> None:
    """Found in review: log keys retired in 2021 (their `validFor` ended) still verified entries
    integrated today; as for CAs (gap 1), a key counts only where its window covers the entry's
    integrated time (a CT log's: the certificate's issuance), as sigstore-js does."""
    signer = sigstore.identity(WORKFLOW)

    def verify(root: TrustRoot) -> Any:
        authority = keyless_authority(root, WORKFLOW)
        if kind == "cosign":
            return verify_cosign(sigstore.cosign_sign(DIGEST, signer), authority, DIGEST)
        if kind == "attestation":
            bundle = sigstore.attest(statement(DIGEST, "https://slsa.dev/provenance/v1", {}), signer)
        else:
            bundle = sigstore.sign_artifact(DIGEST, signer)
        return verify_bundle(bundle, digest=DIGEST, authority=authority)

    verify(_retired(sigstore, which, _CURRENT))  # an open window: verifies
    with pytest.raises(SignatureVerificationError) as caught:
        verify(_retired(sigstore, which, _RETIRED))
    assert caught.value.code in ("tlog", "untrusted"), caught.value


def test_a_key_signatures_log_entry_needs_a_log_key_valid_at_its_time(sigstore: SigstoreInstance) -> None:
    pair = sigstore.key("ecdsa-p256")
    bundle = sigstore.sign_artifact(DIGEST, pair)
    verify_bundle(
        bundle, digest=DIGEST, authority=key_authority(pair, _retired(sigstore, ("tlogs",), _CURRENT))
    )
    with pytest.raises(SignatureVerificationError) as caught:
        verify_bundle(
            bundle, digest=DIGEST, authority=key_authority(pair, _retired(sigstore, ("tlogs",), _RETIRED))
        )
    assert caught.value.code == "tlog"


def test_a_key_signed_cosign_signatures_set_needs_a_log_key_valid_at_its_time(
    sigstore: SigstoreInstance,
) -> None:
    from trustgate.verify import verify_cosign_signature

    pair = sigstore.key("ecdsa-p256")
    sig = sigstore.cosign_sign(DIGEST, pair)

    def verify(window: dict[str, str]) -> Any:
        return verify_cosign_signature(
            payload=sig.payload,
            signature=sig.signature,
            digest=DIGEST,
            authority=key_authority(pair, _retired(sigstore, ("tlogs",), window)),
            certificate=None,
            chain=None,
            rekor_bundle=sig.bundle,
        )

    verify(_CURRENT)
    with pytest.raises(SignatureVerificationError) as caught:
        verify(_RETIRED)
    assert caught.value.code == "tlog"


@pytest.mark.parametrize(
    ("sans", "wanted"),
    [
        ((DEV_WORKFLOW, WORKFLOW), WORKFLOW),  # a URI SAN after another
        (("builder@acme.example", WORKFLOW), WORKFLOW),  # after an email
        ((WORKFLOW, "release@acme.example"), "release@acme.example"),  # an email after a URI
        ((DEV_WORKFLOW, "builder@acme.example"), WORKFLOW),  # none of them
    ],
)
def test_any_san_of_the_certificate_is_the_signer_as_sigstore_python_reads_it(
    sigstore: SigstoreInstance,
    sigstore_root: TrustRoot,
    sigstore_root_file: Path,
    sans: tuple[str, ...],
    wanted: str,
) -> None:
    """sigstore-python's `Identity` (and cosign) accept a certificate whose identity is any of its
    SANs (emails, URIs, Sigstore usernames); only the first was read here, so a signature whose
    second SAN was the wanted signer was refused. Judged against sigstore-python itself."""
    from sigstore.errors import VerificationError
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier, policy

    signer = sigstore.identity(sans[0], ISSUER, more_sans=sans[1:])
    bundle = sigstore.sign_artifact(ARTIFACT, signer)
    reference = Verifier(trusted_root=TrustedRoot.from_file(str(sigstore_root_file)))
    try:
        reference.verify_artifact(
            ARTIFACT, Bundle.from_json(bundle), policy.Identity(identity=wanted, issuer=ISSUER)
        )
        accepted = True
    except VerificationError:
        accepted = False
    assert accepted == (wanted in sans)  # the oracle itself, on this certificate
    for regex in (False, True):
        authority = keyless_authority(sigstore_root, wanted, regex=regex)
        if accepted:
            evidence, _ = verify_bundle(bundle, digest=DIGEST, authority=authority)
            # The SAN the policy matched is the signer recorded (the first was, whichever matched).
            assert evidence.subject == wanted and evidence.issuer == ISSUER, evidence
            assert set(evidence.identities) == set(sans)
        else:
            problem = failure(lambda a=authority: verify_bundle(bundle, digest=DIGEST, authority=a))
            assert problem.code == "identity-mismatch" and all(s in problem.reason for s in sans), problem
