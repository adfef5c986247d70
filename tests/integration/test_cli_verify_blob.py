"""`trustgate verify blob`: exit codes, messages and JSON output, with the private test instance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.sigstore import SigstoreInstance

from trustgate.cli.main import main

WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v2.0.0"
ISSUER = "https://token.actions.githubusercontent.com"
DATA = b"a release tarball\n"


@pytest.fixture(scope="module")
def instance() -> SigstoreInstance:
    return SigstoreInstance.load()


@pytest.fixture(scope="module")
def root_file(instance: SigstoreInstance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return instance.write_trusted_root(tmp_path_factory.mktemp("root") / "trusted_root.json")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["verify", "blob", *args], catch_exceptions=False)


@pytest.fixture
def files(instance: SigstoreInstance, tmp_path: Path) -> dict[str, Path]:
    artifact = tmp_path / "app.tar.gz"
    artifact.write_bytes(DATA)
    keyless = tmp_path / "keyless.instance.json"
    keyless.write_bytes(instance.sign_artifact(DATA, instance.identity(WORKFLOW, ISSUER)))
    keyed = tmp_path / "key.instance.json"
    keyed.write_bytes(instance.sign_artifact(DATA, instance.key("ecdsa-p256")))
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(instance.key("ecdsa-p256").public_pem)
    return {"artifact": artifact, "keyless": keyless, "keyed": keyed, "pub": pub}


def keyless_flags(root: Path, identity: str = WORKFLOW) -> list[str]:
    return [
        "--certificate-identity",
        identity,
        "--certificate-oidc-issuer",
        ISSUER,
        "--trusted-root",
        str(root),
    ]


def test_verified_file_exits_0(files: dict[str, Path], root_file: Path) -> None:
    result = run(str(files["artifact"]), "--bundle", str(files["keyless"]), *keyless_flags(root_file))
    assert result.exit_code == 0, result.output
    assert f"signed by {WORKFLOW} (issuer {ISSUER})" in result.output


def test_verified_digest_exits_0(files: dict[str, Path], root_file: Path) -> None:
    digest = "sha256:" + hashlib.sha256(DATA).hexdigest()
    result = run(digest, "--bundle", str(files["keyless"]), *keyless_flags(root_file))
    assert result.exit_code == 0, result.output


def test_identity_mismatch_exits_1_with_the_reason(files: dict[str, Path], root_file: Path) -> None:
    flags = [
        "--certificate-identity-regexp",
        r"https://github\.com/acme/app/[^@]+@refs/heads/main",
        "--certificate-oidc-issuer",
        ISSUER,
        "--trusted-root",
        str(root_file),
    ]
    result = run(str(files["artifact"]), "--bundle", str(files["keyless"]), *flags)
    assert result.exit_code == 1
    assert f"not verified: signed, but by {WORKFLOW} (issuer {ISSUER}), and the policy wants" in result.output
    assert "[identity-mismatch]" in result.output


def test_other_file_exits_1(files: dict[str, Path], root_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_bytes(b"not the release\n")
    result = run(str(other), "--bundle", str(files["keyless"]), *keyless_flags(root_file))
    assert result.exit_code == 1 and "[digest-mismatch]" in result.output


def test_default_root_is_public_good(files: dict[str, Path]) -> None:
    result = run(
        str(files["artifact"]),
        "--bundle",
        str(files["keyless"]),
        "--certificate-identity",
        WORKFLOW,
        "--certificate-oidc-issuer",
        ISSUER,
    )
    assert (
        result.exit_code == 1 and "[untrusted]" in result.output and "sigstore-public-good" in result.output
    )


@pytest.mark.parametrize("content", [b"", b"{", b'{"mediaType": 1}', b"\x00\x01garbage"])
def test_malformed_bundle_exits_1(
    files: dict[str, Path], root_file: Path, tmp_path: Path, content: bytes
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    result = run(str(files["artifact"]), "--bundle", str(bad), *keyless_flags(root_file))
    assert result.exit_code == 1
    assert "[malformed]" in result.output


def test_key_verification(files: dict[str, Path], root_file: Path) -> None:
    result = run(
        str(files["artifact"]),
        "--bundle",
        str(files["keyed"]),
        "--key",
        str(files["pub"]),
        "--trusted-root",
        str(root_file),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["verified"] is True
    assert report["evidence"]["method"] == "key"
    assert report["evidence"]["log_index"] is not None


def test_wrong_key_exits_1_as_json(
    files: dict[str, Path], instance: SigstoreInstance, tmp_path: Path
) -> None:
    pub = tmp_path / "other.pub"
    pub.write_bytes(instance.key("rsa").public_pem)
    result = run(str(files["artifact"]), "--bundle", str(files["keyed"]), "--key", str(pub), "-o", "json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["verified"] is False and report["failure"]["code"] == "bad-signature"


def test_unreadable_key_or_root_exits_3_could_not_evaluate(files: dict[str, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("junk")
    key = run(str(files["artifact"]), "--bundle", str(files["keyed"]), "--key", str(junk))
    assert key.exit_code == 3 and "not a PEM public key" in key.output  # ADR 2: could not evaluate
    root = run(
        str(files["artifact"]),
        "--bundle",
        str(files["keyless"]),
        "--certificate-identity",
        WORKFLOW,
        "--certificate-oidc-issuer",
        ISSUER,
        "--trusted-root",
        str(junk),
    )
    assert root.exit_code == 3 and "not a usable Sigstore trusted root" in root.output


@pytest.mark.parametrize(
    "args",
    [
        [],  # no FILE_OR_DIGEST, no bundle
        ["{artifact}"],  # no --bundle
        ["{artifact}", "--bundle", "{keyless}"],  # neither key nor identity
        ["{artifact}", "--bundle", "{keyless}", "--certificate-identity", WORKFLOW],  # no issuer
        ["{artifact}", "--bundle", "{keyless}", "--certificate-oidc-issuer", ISSUER],  # no identity
        [
            "{artifact}",
            "--bundle",
            "{keyless}",
            "--key",
            "{pub}",
            "--certificate-identity",
            WORKFLOW,
            "--certificate-oidc-issuer",
            ISSUER,
        ],  # both
        [
            "{artifact}",
            "--bundle",
            "{keyless}",
            "--certificate-identity",
            WORKFLOW,
            "--certificate-identity-regexp",
            ".*",
            "--certificate-oidc-issuer",
            ISSUER,
        ],  # identity twice
        ["{artifact}", "--bundle", "/nonexistent/bundle.json", "--key", "{pub}"],  # missing bundle
        ["/nonexistent/file", "--bundle", "{keyless}", "--key", "{pub}"],  # missing artifact
        ["{artifact}", "--bundle", "{keyless}", "--key", "{pub}", "--format", "xml"],
    ],
)
def test_usage_errors_exit_2(files: dict[str, Path], args: list[str]) -> None:
    result = run(*(a.format(**{k: str(v) for k, v in files.items()}) for a in args))
    assert result.exit_code == 2, result.output


def test_bad_regex_is_reported(files: dict[str, Path], root_file: Path) -> None:
    result = run(
        str(files["artifact"]),
        "--bundle",
        str(files["keyless"]),
        "--certificate-identity-regexp",
        "(",
        "--certificate-oidc-issuer",
        ISSUER,
        "--trusted-root",
        str(root_file),
    )
    assert result.exit_code == 2 and "invalid subject regular expression" in result.output
