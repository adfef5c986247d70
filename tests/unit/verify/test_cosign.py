"""Classic cosign signatures and attestations from the private test instance."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support.sigstore import SigstoreInstance, key_authority, keyless_authority, statement, verify_cosign

from trustgate.verify import (
    SignatureVerificationError,
    TrustRoot,
    verify_cosign_attestation,
)

WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0"
IMAGE = "sha256:" + "ab" * 32
OTHER_IMAGE = "sha256:" + "cd" * 32


def failure(call: Any) -> SignatureVerificationError:
    with pytest.raises(SignatureVerificationError) as info:
        call()
    return info.value


def test_keyless_signature_verifies(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    sig = sigstore.cosign_sign(IMAGE, sigstore.identity(WORKFLOW))
    evidence = verify_cosign(sig, keyless_authority(sigstore_root, WORKFLOW), IMAGE)
    assert (evidence.method, evidence.subject, evidence.signed_digest) == ("keyless", WORKFLOW, IMAGE)
    rekor = json.loads(sig.bundle)["Payload"]
    assert (evidence.log_index, evidence.log_id) == (rekor["logIndex"], rekor["logID"])
    assert evidence.certificate_sha256 is not None and evidence.integrated_time is not None


def _verify_sig(sig: Any, authority: Any, digest: str = IMAGE) -> Any:
    return verify_cosign(sig, authority, digest)


def test_signature_of_another_image(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    sig = sigstore.cosign_sign(OTHER_IMAGE, sigstore.identity(WORKFLOW))
    failed = failure(lambda: _verify_sig(sig, keyless_authority(sigstore_root, WORKFLOW)))
    assert failed.code == "digest-mismatch"
    assert OTHER_IMAGE in failed.reason


def test_keyless_identity_mismatch(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    dev = "https://github.com/acme/app/.github/workflows/ci.yml@refs/heads/dev"
    sig = sigstore.cosign_sign(IMAGE, sigstore.identity(dev))
    failed = failure(lambda: _verify_sig(sig, keyless_authority(sigstore_root, WORKFLOW)))
    assert failed.code == "identity-mismatch"
    assert failed.reason.startswith(
        f"signed, but by {dev} (issuer https://token.actions.githubusercontent.com)"
    )
    assert failed.reason.endswith(
        f"and the policy wants {WORKFLOW} (issuer https://token.actions.githubusercontent.com)"
    )


def test_keyless_expired_certificate(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    sig = sigstore.cosign_sign(IMAGE, sigstore.identity(WORKFLOW, expired=True))
    assert (
        failure(lambda: _verify_sig(sig, keyless_authority(sigstore_root, WORKFLOW))).code
        == "expired-certificate"
    )


def test_keyless_untrusted_root(sigstore_root: TrustRoot, tmp_path: Path) -> None:
    stranger = SigstoreInstance.create(tmp_path / "keys")
    sig = stranger.cosign_sign(IMAGE, stranger.identity(WORKFLOW))
    # The stranger's SET does not verify with our log key either, but the reader is sent to the
    # certificate authority (the cause), not to the transparency log.
    failed = failure(lambda: _verify_sig(sig, keyless_authority(sigstore_root, WORKFLOW)))
    assert failed.code == "untrusted"
    assert "transparency-log" not in failed.reason
    assert "not a certificate authority of the trust root test-instance" in failed.reason
    assert "issued by " in failed.reason and "images.trustRoots" in failed.reason


def test_keyless_needs_certificate_and_rekor_bundle(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    sig = sigstore.cosign_sign(IMAGE, sigstore.identity(WORKFLOW))
    authority = keyless_authority(sigstore_root, WORKFLOW)
    assert failure(lambda: _verify_sig(replace(sig, certificate=None), authority)).code == "malformed"
    assert failure(lambda: _verify_sig(replace(sig, bundle=""), authority)).code == "tlog"


def test_tampered_integrated_time_breaks_the_set(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot
) -> None:
    sig = sigstore.cosign_sign(IMAGE, sigstore.identity(WORKFLOW))
    rekor = json.loads(sig.bundle)
    rekor["Payload"]["integratedTime"] += 1
    failed = failure(
        lambda: _verify_sig(
            replace(sig, bundle=json.dumps(rekor)), keyless_authority(sigstore_root, WORKFLOW)
        )
    )
    assert failed.code == "tlog"


def test_rekor_bundle_of_another_signature(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    signer = sigstore.identity(WORKFLOW)
    sig = sigstore.cosign_sign(IMAGE, signer)
    other = sigstore.cosign_sign(OTHER_IMAGE, signer)
    failed = failure(
        lambda: _verify_sig(replace(sig, bundle=other.bundle), keyless_authority(sigstore_root, WORKFLOW))
    )
    assert failed.code == "tlog"


@pytest.mark.parametrize("name", ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa"])
def test_key_signature_verifies_with_and_without_the_log(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot, name: str
) -> None:
    pair = sigstore.key(name)
    sig = sigstore.cosign_sign(IMAGE, pair)
    with_log = _verify_sig(sig, key_authority(pair, sigstore_root))
    assert (with_log.method, with_log.key_id) == ("key", pair.key_id)
    assert with_log.log_index == json.loads(sig.bundle)["Payload"]["logIndex"]
    without = _verify_sig(replace(sig, bundle=""), key_authority(pair))
    assert without.log_index is None
    # with a trust root named, the log is required, not optional
    with pytest.raises(SignatureVerificationError) as caught:
        _verify_sig(replace(sig, bundle=""), key_authority(pair, sigstore_root))
    assert caught.value.code == "tlog"


def test_key_signature_wrong_key(sigstore: SigstoreInstance) -> None:
    sig = sigstore.cosign_sign(IMAGE, sigstore.key("ecdsa-p256"))
    assert failure(lambda: _verify_sig(sig, key_authority(sigstore.key("rsa")))).code == "bad-signature"


def test_key_signature_logged_by_an_untrusted_log(sigstore: SigstoreInstance, tmp_path: Path) -> None:
    stranger = SigstoreInstance.create(tmp_path / "keys")
    pair = sigstore.key("ecdsa-p256")
    sig = sigstore.cosign_sign(IMAGE, pair)
    root = TrustRoot.from_json(stranger.trusted_root_json(), name="stranger")
    failed = failure(lambda: _verify_sig(sig, key_authority(pair, root)))
    assert failed.code == "tlog" and "stranger" in failed.reason


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"payload": b"not json"}, "malformed"),
        ({"payload": b"[1, 2]"}, "malformed"),
        (
            {"payload": b'{"critical": {"image": {}, "type": "cosign container image signature"}}'},
            "digest-mismatch",
        ),
        (
            {"payload": b'{"critical": {"image": {"docker-manifest-digest": "x"}, "type": "other"}}'},
            "unsupported",
        ),
        ({"signature": "***"}, "malformed"),
        ({"signature": base64.b64encode(b"garbage").decode()}, "bad-signature"),
        ({"signature": ""}, "bad-signature"),
        ({"bundle": "{"}, "malformed"),
        ({"bundle": '{"Payload": {"body": 5}}'}, "malformed"),
        (
            {
                "bundle": '{"SignedEntryTimestamp": "AA==", "Payload": {"body": "AA==", "integratedTime": 1, '
                '"logIndex": -1, "logID": "00"}}'
            },
            "malformed",
        ),
    ],
)
def test_garbage_cosign_signature(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot, change: dict[str, Any], code: str
) -> None:
    pair = sigstore.key("ecdsa-p256")
    sig = replace(sigstore.cosign_sign(IMAGE, pair), **change)
    assert failure(lambda: _verify_sig(sig, key_authority(pair, sigstore_root))).code == code


def test_garbage_keyless_certificate(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    sig = sigstore.cosign_sign(IMAGE, sigstore.identity(WORKFLOW))
    authority = keyless_authority(sigstore_root, WORKFLOW)
    assert failure(
        lambda: _verify_sig(replace(sig, certificate="-----BEGIN CERTIFICATE-----\nxx"), authority)
    ).code == ("malformed")
    assert failure(lambda: _verify_sig(replace(sig, chain="not pem"), authority)).code == "malformed"


# ----------------------------------------------------------------------------- attestations


def _verify_att(att: Any, authority: Any, digest: str = IMAGE) -> Any:
    return verify_cosign_attestation(
        envelope=att.envelope,
        digest=digest,
        authority=authority,
        certificate=att.certificate,
        chain=att.chain,
        rekor_bundle=att.bundle,
    )


def test_keyless_attestation(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    predicate = {"scanner": {"result": {"summary": {"CRITICAL": 0}}}}
    att = sigstore.cosign_attest(
        statement(IMAGE, "https://cosign.sigstore.dev/attestation/vuln/v1", predicate),
        sigstore.identity(WORKFLOW),
    )
    evidence, stmt = _verify_att(att, keyless_authority(sigstore_root, WORKFLOW))
    assert evidence.kind == "attestation" and evidence.subject == WORKFLOW
    assert stmt.predicate_type == "https://cosign.sigstore.dev/attestation/vuln/v1"
    assert stmt.predicate == predicate


def test_attestation_for_another_digest(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    att = sigstore.cosign_attest(statement(OTHER_IMAGE), sigstore.identity(WORKFLOW))
    failed = failure(lambda: _verify_att(att, keyless_authority(sigstore_root, WORKFLOW)))
    assert failed.code == "subject-mismatch"
    assert OTHER_IMAGE in failed.reason and IMAGE in failed.reason


def test_attestation_envelope_swapped(sigstore: SigstoreInstance, sigstore_root: TrustRoot) -> None:
    signer = sigstore.identity(WORKFLOW)
    att = sigstore.cosign_attest(statement(IMAGE), signer)
    other = sigstore.cosign_attest(statement(IMAGE, predicate={"x": 1}), signer)
    failed = failure(
        lambda: _verify_att(replace(att, bundle=other.bundle), keyless_authority(sigstore_root, WORKFLOW))
    )
    assert failed.code == "tlog"


@pytest.mark.parametrize("name", ["ecdsa-p256", "ed25519", "rsa"])
def test_key_attestation(sigstore: SigstoreInstance, sigstore_root: TrustRoot, name: str) -> None:
    pair = sigstore.key(name)
    att = sigstore.cosign_attest(statement(IMAGE), pair)
    evidence, stmt = _verify_att(att, key_authority(pair, sigstore_root))
    assert stmt.covers(IMAGE) and evidence.key_id == pair.key_id
    assert (
        failure(lambda: _verify_att(att, key_authority(sigstore.key("ecdsa-p384")))).code == "bad-signature"
    )


@pytest.mark.parametrize(
    "envelope",
    [
        b"",
        b"{",
        b"[]",
        b'{"payloadType": "x"}',
        b'{"payloadType": "x", "payload": "!!", "signatures": [{"sig": "AA=="}]}',
        b'{"payloadType": "x", "payload": "AA==", "signatures": ["nope"]}',
    ],
)
def test_garbage_envelope(sigstore: SigstoreInstance, envelope: bytes) -> None:
    pair = sigstore.key("ecdsa-p256")
    assert failure(
        lambda: verify_cosign_attestation(envelope=envelope, digest=IMAGE, authority=key_authority(pair))
    ).code == ("malformed")


KEY_TYPES = ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa"]


@pytest.mark.parametrize("signer", KEY_TYPES)
@pytest.mark.parametrize("verifier", KEY_TYPES)
def test_image_signature_every_key_type_against_every_key_type(
    sigstore: SigstoreInstance, signer: str, verifier: str
) -> None:
    """Right key: verifies. Wrong key, whatever the two types: "does not verify", never a traceback."""
    sig = sigstore.cosign_sign(IMAGE, sigstore.key(signer))
    authority = key_authority(sigstore.key(verifier))
    if signer == verifier:
        assert _verify_sig(sig, authority).key_id == authority.key_id
        return
    failed = failure(lambda: _verify_sig(sig, authority))
    assert failed.code == "bad-signature" and "does not verify with the key" in failed.reason


@pytest.mark.parametrize("verifier", ["ecdsa-p256", "rsa"])
def test_ed25519_attestation_against_another_key_type(sigstore: SigstoreInstance, verifier: str) -> None:
    att = sigstore.cosign_attest(statement(IMAGE), sigstore.key("ed25519"))
    assert failure(lambda: _verify_att(att, key_authority(sigstore.key(verifier)))).code == "bad-signature"
    other = sigstore.cosign_attest(statement(IMAGE), sigstore.key(verifier))
    assert failure(lambda: _verify_att(other, key_authority(sigstore.key("ed25519")))).code == "bad-signature"


@pytest.mark.parametrize("when", [10**17, -(10**17), 2**63, "1" * 30])
@pytest.mark.parametrize("signer", ["keyless", "key"])
def test_an_integrated_time_out_of_range_is_malformed_not_a_traceback(
    sigstore: SigstoreInstance, sigstore_root: TrustRoot, when: Any, signer: str
) -> None:
    """Found in review: `integratedTime: 10**17` in a pusher's bundle annotation raised OSError
    (`datetime.fromtimestamp`, before the SET was checked), an internal error that failed a
    correctly signed image; it is a signature that does not count, like other bad bytes."""
    if signer == "keyless":
        sig = sigstore.cosign_sign(IMAGE, sigstore.identity(WORKFLOW))
        authority = keyless_authority(sigstore_root, WORKFLOW)
    else:
        pair = sigstore.key("ecdsa-p256")
        sig = sigstore.cosign_sign(IMAGE, pair)
        authority = key_authority(pair, sigstore_root)
    rekor = json.loads(sig.bundle)
    rekor["Payload"]["integratedTime"] = when
    failed = failure(lambda: _verify_sig(replace(sig, bundle=json.dumps(rekor)), authority))
    assert failed.code in ("malformed", "tlog")
