"""What git reports about a signature, vetted against the keyring the config names."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from trustgate.config import CommitSettings
from trustgate.presync.git import Commit, Signature
from trustgate.presync.signatures import Keyring, current_signers, good_signature

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def signed(status: str, fingerprint: str, kind: str = "gpg") -> Commit:
    signature = Signature(status, "Bob <bob@example.com>", fingerprint[-16:], fingerprint, kind)
    return Commit("a" * 40, "b" * 40, (), "A", "a@example.com", "A", "a@example.com", "s", signature)


def test_a_gpg_kind_signature_by_a_key_outside_the_keyring_is_not_good(tmp_path: Path) -> None:
    """git reports a good X.509 signature (gpgsm's own trust list) with the letters of a GPG one."""
    keyring = Keyring(CommitSettings())
    try:
        keyring.fingerprints.add("A" * 40)
        keyring.primaries["A" * 40] = "C" * 40
        vetted = keyring.vet([signed("U", "a" * 40), signed("G", "B" * 40), signed("B", "D" * 40)])
        assert [c.signature.status for c in vetted] == ["U", "E", "B"]
        assert good_signature(vetted[0]) and not good_signature(vetted[1])
        assert vetted[0].signature.primary == "C" * 40
        ssh = signed("G", "", kind="ssh")
        assert keyring.vet([ssh]) == [ssh]  # ssh-keygen checked it against allowed_signers
    finally:
        keyring.close()


def test_entries_whose_valid_before_has_passed_are_left_out() -> None:
    text = (
        "# team keys\n"
        'alice@example.com valid-before="20260601" ssh-ed25519 AAAA1\n'
        'bob@example.com valid-after="20200101",valid-before="20991231" ssh-ed25519 AAAA2\n'
        'carol@example.com valid-before="20261206Z" ssh-ed25519 AAAA3\n'
        'dave@example.com valid-before="20261206" ssh-ed25519 AAAA4\n'
        "frank@example.com ssh-ed25519 AAAA6\n"
    )
    kept = [line for line in current_signers(text, NOW).splitlines() if not line.startswith("#")]
    # alice retired in June; carol at midnight UTC today; dave's (local) date still has a day of
    # margin for the zone.
    assert [line.split()[0] for line in kept] == ["bob@example.com", "dave@example.com", "frank@example.com"]
