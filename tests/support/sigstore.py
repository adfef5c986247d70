"""pytest helpers around the private Sigstore instance in `fixtures/` (test-only keys).

Import the fixtures into a conftest (`from support.sigstore import sigstore, sigstore_root  # noqa: F401`)
or use the functions directly. `fixtures/` lives at the repository root; this module puts the root
on `sys.path` so `fixtures.sigstore_instance` imports from the checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fixtures.sigstore_instance import (  # noqa: E402
    GITHUB_ISSUER,
    CosignSignature,
    KeyPair,
    Signer,
    SigstoreInstance,
    statement,
)
from trustgate.verify import (  # noqa: E402
    Authority,
    Evidence,
    IdentityMatcher,
    KeyAuthority,
    KeylessAuthority,
    TrustRoot,
    key_id,
    load_public_key,
    verify_cosign_signature,
)

__all__ = [
    "GITHUB_ISSUER",
    "KeyPair",
    "Signer",
    "SigstoreInstance",
    "key_authority",
    "keyless_authority",
    "sigstore",
    "sigstore_root",
    "sigstore_root_file",
    "statement",
    "verify_cosign",
]


@pytest.fixture(scope="session")
def sigstore() -> SigstoreInstance:
    """The private test instance (committed keys, real clock); shared by the session."""
    return SigstoreInstance.load()


@pytest.fixture(scope="session")
def sigstore_root_file(sigstore: SigstoreInstance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The instance's trusted_root.json, written to a temp dir."""
    return sigstore.write_trusted_root(tmp_path_factory.mktemp("sigstore") / "trusted_root.json")


@pytest.fixture(scope="session")
def sigstore_root(sigstore_root_file: Path) -> TrustRoot:
    """The instance's trust root, loaded through trustgate."""
    return TrustRoot.from_file(sigstore_root_file, name="test-instance")


def keyless_authority(
    root: TrustRoot, subject: str, issuer: str = GITHUB_ISSUER, *, regex: bool = False, name: str = "ci"
) -> KeylessAuthority:
    """A keyless authority for one identity (exact, or `subject` as a full-match regex)."""
    matcher = (
        IdentityMatcher(subject_regex=subject, issuer=issuer)
        if regex
        else IdentityMatcher(subject=subject, issuer=issuer)
    )
    return KeylessAuthority(name=name, trust_root=root, identities=(matcher,))


def key_authority(pair: KeyPair, root: TrustRoot | None = None, *, name: str = "release-key") -> KeyAuthority:
    """A key authority for a test key pair; the log entry is checked when `root` is given."""
    key = load_public_key(pair.public_pem, where=pair.name)
    return KeyAuthority(name=name, key=key, key_id=key_id(key), trust_root=root)


def verify_cosign(sig: CosignSignature, authority: Authority, digest: str) -> Evidence:
    """`verify_cosign_signature` of `sig` over `digest`, with its certificate, chain and Rekor bundle."""
    return verify_cosign_signature(
        payload=sig.payload,
        signature=sig.signature,
        digest=digest,
        authority=authority,
        certificate=sig.certificate,
        chain=sig.chain,
        rekor_bundle=sig.bundle,
    )
