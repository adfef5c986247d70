"""Trust roots and keys: the embedded public-good root works offline; bad files are config errors."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from support.sigstore import SigstoreInstance, keyless_authority

from trustgate.errors import ConfigError
from trustgate.verify import TrustRoot, key_id, load_public_key, trust, verify_blob

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance" / "sigstore-bundle-verify"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/"
    "extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)


def test_public_good_root_is_embedded_and_never_touches_the_network(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # No TUF cache may be created either: point every cache/data dir at an empty temp dir.
    for var in ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(tmp_path))
    monkeypatch.setattr(trust, "_public_good_root", None)

    root = TrustRoot.public_good()
    assert root is TrustRoot.public_good()
    case = CONFORMANCE / "happy-path-v0.3"
    artifact = (CONFORMANCE / "a.txt").read_bytes()
    evidence = verify_blob(
        artifact=artifact,
        bundle=(case / "bundle.sigstore.json").read_bytes(),
        authority=keyless_authority(root, BEACON),
    )
    assert evidence.subject == BEACON
    assert attempts == []
    assert list(tmp_path.iterdir()) == []


def test_private_root_from_file(sigstore: SigstoreInstance, tmp_path: Path) -> None:
    path = sigstore.write_trusted_root(tmp_path / "corp.json")
    root = TrustRoot.from_file(path)
    assert root.name == "corp"
    assert TrustRoot.from_file(path, name="corporate").name == "corporate"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{", "not a usable Sigstore trusted root"),
        (b"[]", "not a usable Sigstore trusted root"),
        (b'{"mediaType": "application/x-other"}', "not a usable Sigstore trusted root"),
    ],
)
def test_bad_trusted_root_file_is_a_config_error(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "root.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        TrustRoot.from_file(path)
    assert words in info.value.message
    assert info.value.where == str(path)


def test_missing_trusted_root_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the trusted root"):
        TrustRoot.from_file(tmp_path / "absent.json")


def test_root_without_logs_is_refused(sigstore: SigstoreInstance) -> None:
    import json

    doc = sigstore.trusted_root()
    doc["tlogs"] = []
    with pytest.raises(ConfigError, match="no transparency log"):
        TrustRoot.from_json(json.dumps(doc).encode(), name="x")


@pytest.mark.parametrize("name", ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa"])
def test_load_public_key(sigstore: SigstoreInstance, name: str) -> None:
    pair = sigstore.key(name)
    key = load_public_key(pair.public_pem, where="cosign.pub")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib

    assert key_id(key) == "sha256:" + hashlib.sha256(der).hexdigest() == pair.key_id


# A DSA public key (2048 bits), fixed: cryptography 51 deprecates generating one, and a user may
# still hand one in.
DSA_2048_PEM = (
    b"-----BEGIN PUBLIC KEY-----\n"
    b"MIIDRjCCAjkGByqGSM44BAEwggIsAoIBAQCitC331BYCop27q058c2rruUnoTfQR\n"
    b"uXBp4YT6/QDAljYlkdOcSx/TPq2oYK9oBzZGcvYLZdpdv3guDrBh8Gwra7ALn70Y\n"
    b"oE1IuXD8RP9ODuvGo+UZfOxUSOaG8IRkCrYYZyu+NQ1euGicDT6AqUl6VoQf3a+U\n"
    b"JKtmXTY1913q20LmLRb4Y7WZsMY4XlWZaRNsDPbaf/SuBTXkZMa4r1hj7MlcoOVX\n"
    b"oN8a3drzykBcJT0kcsTQ6AfjcbqfpoPBRFxgS3FpPjiwQS9dceL8jYEcrSJujT3h\n"
    b"T6JMCrKNm+nLHmnyibyn8UIla+iX1ippC+uG4ZhPRGsY1lXLIoOY/VznAiEAhJxU\n"
    b"pfcrNHIuY+C0c08YMRnhimjuS88v6Km0h4Q6YmMCggEAaSQGFsDmV/lJGEvqDv3M\n"
    b"uBZ3VVsangdagHE5dnGraAXBptxi9VrweaYUMYeM0k6OlFaj6PnHUpRo7KlhTrEu\n"
    b"ErkA1VzfvqUi7ZGYS1Uk7UR5qLVV2Z6UX0L/4eE10MHsXc8udNV0t+VR1FsqfYDC\n"
    b"5i0hxTXXg5NMtCpY0jJttA6xsfwjkO8vMBwXsZu3J9gOsTGNoqbG7fVZprIO1s9D\n"
    b"tk1g+tYEVWZ/a+KddY8c6ZzF3A/B9/SIG2CfxCqZINHy/BWLrp9zYtatGuG8/XyO\n"
    b"/so4RRco0dJ5dnKsHg7ndqJ/1B+vXxsY20NsIggjeFJV/dnV72TzokDBGdc2u2B6\n"
    b"SQOCAQUAAoIBAEFIEbGFZKIl2HnrGO8sK/Y35wJ3P+jOg5mZKFZONeu7RS4pXcXz\n"
    b"ta856ooAecxNIe8d/Q2S+XZo+e43BxTCrWPZxENeTPlz9XX7s50ERfTVpc43phb2\n"
    b"NTGQ/et5AUjSIi/6mVwtYjC3hja5KXq7zwcsI5u5ulWwHEmOtl2xejSvd9HV1+VQ\n"
    b"lHnYdeDJV8aLqXecyEaQoCFzxRxGOVZq6yxOOtQYWFa8fwa78kJMC58TdPJLOSSU\n"
    b"SaIPWyD35QgZDwelyS31uqOVlaGQDbzrCuEPocJ0KpYuWRtrInvJp0mnmoYkn84Q\n"
    b"iR2sfMXo5a8SmPlWPZJdHDBBDvvkgjD6DZU=\n"
    b"-----END PUBLIC KEY-----\n"
)


def _pem(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("pem", "words"),
    [
        (b"", "not a PEM public key"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
        (_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "too short"),
        (_pem(ec.generate_private_key(ec.SECP256K1())), "unsupported elliptic curve"),
        (DSA_2048_PEM, "unsupported key type"),
    ],
)
def test_bad_public_key_is_a_config_error(pem: bytes, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_public_key(pem, where="keys/cosign.pub")
    assert words in info.value.message and info.value.where == "keys/cosign.pub"
