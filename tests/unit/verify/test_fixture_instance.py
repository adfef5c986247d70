"""The private Sigstore instance in fixtures/ works with sigstore-python itself, and has not drifted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier, policy
from support.sigstore import REPO, SigstoreInstance, statement

from fixtures import generate

WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1"
ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def verifier(sigstore_root_file: Path) -> Verifier:
    return Verifier(trusted_root=TrustedRoot.from_file(str(sigstore_root_file)))


def test_sigstore_python_verifies_a_message_signature(sigstore: SigstoreInstance, verifier: Verifier) -> None:
    bundle = Bundle.from_json(sigstore.sign_artifact(b"hello", sigstore.identity(WORKFLOW, ISSUER)))
    verifier.verify_artifact(b"hello", bundle, policy.Identity(identity=WORKFLOW, issuer=ISSUER))
    assert bundle.log_entry._inner.inclusion_proof.tree_size >= 1


def test_sigstore_python_verifies_an_attestation(sigstore: SigstoreInstance, verifier: Verifier) -> None:
    digest = "sha256:" + hashlib.sha256(b"hello").hexdigest()
    bundle = Bundle.from_json(sigstore.attest(statement(digest), sigstore.identity(WORKFLOW, ISSUER)))
    payload_type, payload = verifier.verify_dsse(bundle, policy.Identity(identity=WORKFLOW, issuer=ISSUER))
    assert payload_type == "application/vnd.in-toto+json"
    assert digest[7:].encode() in payload


def test_sigstore_python_refuses_an_expired_certificate(
    sigstore: SigstoreInstance, verifier: Verifier
) -> None:
    from sigstore.errors import VerificationError

    bundle = Bundle.from_json(
        sigstore.sign_artifact(b"hello", sigstore.identity(WORKFLOW, ISSUER, expired=True))
    )
    with pytest.raises(VerificationError):
        verifier.verify_artifact(b"hello", bundle, policy.Identity(identity=WORKFLOW, issuer=ISSUER))


def test_inclusion_proofs_hold_for_a_growing_log(sigstore: SigstoreInstance, verifier: Verifier) -> None:
    signer = sigstore.identity(WORKFLOW, ISSUER)
    bundles = [(b"%d" % i, sigstore.sign_artifact(b"%d" % i, signer)) for i in range(9)]
    sizes = set()
    for data, raw in bundles:
        bundle = Bundle.from_json(raw)
        verifier.verify_artifact(data, bundle, policy.Identity(identity=WORKFLOW, issuer=ISSUER))
        sizes.add(bundle.log_entry._inner.inclusion_proof.tree_size)
    assert len(sizes) == 9  # every entry proven against a different tree size


def test_committed_fixtures_have_not_drifted(tmp_path: Path) -> None:
    written = generate.generate(tmp_path)
    committed = REPO / "fixtures"
    assert written, "the generator wrote nothing"
    drifted = [
        str(path.relative_to(tmp_path))
        for path in written
        if (committed / path.relative_to(tmp_path)).read_bytes() != path.read_bytes()
    ]
    assert drifted == [], "regenerate with `python fixtures/generate.py` and commit"


def test_keys_are_marked_test_only() -> None:
    keys = sorted((REPO / "fixtures" / "keys").iterdir())
    assert keys and all("TEST-ONLY" in k.name for k in keys)
    assert "TEST ONLY" in (REPO / "fixtures" / "README.md").read_text()
