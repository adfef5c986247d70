"""What git reports about a signature, vetted against the keyring the config names."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from trustgate.config import CommitSettings
from trustgate.errors import ConfigError
from trustgate.presync.git import Commit, Signature
from trustgate.presync.signatures import Keyring, good_signature


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


def test_ssh_keys_are_checked_at_the_present_moment(tmp_path: Path) -> None:
    """git passes ssh-keygen the commit's own time; the keyring's program checks the present one, so
    a retired key (or an expired certificate) signs no backdated commit."""
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    message = tmp_path / "msg"
    message.write_text("tree 0\n")
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", "git", str(message)], check=True)
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y%m%d")
    signers = tmp_path / "allowed_signers"
    signers.write_text(f'me@example.com valid-before="{yesterday}Z" {(tmp_path / "k.pub").read_text()}')
    keyring = Keyring(CommitSettings(allowed_signers=signers))
    try:
        args = ["-Y", "verify", "-f", str(signers), "-I", "me@example.com", "-n", "git"]
        args += ["-s", f"{message}.sig", "-Overify-time=20200101"]  # what git passes: the commit's time
        with message.open("rb") as stdin:
            plain = subprocess.run(["ssh-keygen", *args], stdin=stdin, capture_output=True, check=False)
        with message.open("rb") as stdin:
            ours = subprocess.run(
                [keyring.git_config["gpg.ssh.program"], *args], stdin=stdin, capture_output=True, check=False
            )
        assert plain.returncode == 0  # at the time the commit claims, the key was valid
        assert ours.returncode != 0 and b"expired" in ours.stderr
    finally:
        keyring.close()


def test_approvers_that_can_match_nothing_are_named(tmp_path: Path) -> None:
    signers = tmp_path / "allowed_signers"
    signers.write_text('# team\nalice@example.com,"ops@example.com" ssh-ed25519 AAAA1\n')
    keyring = Keyring(CommitSettings(allowed_signers=signers))
    try:
        approvers = ["alice@example.com", "ops@*", "bob@example.com", "0123456789ABCDEF", "A" * 40]
        assert keyring.unbound_approvers(approvers) == ["bob@example.com"]
    finally:
        keyring.close()


def test_a_revoked_signers_file_that_goes_missing_allows_no_ssh_signature(tmp_path: Path) -> None:
    """git leaves out a revocation file it does not find (with a warning) and verifies without it;
    the keyring's program refuses to verify then, so a key revoked there stays revoked."""
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    message = tmp_path / "msg"
    message.write_text("tree 0\n")
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", "git", str(message)], check=True)
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"me@example.com {(tmp_path / 'k.pub').read_text()}")
    revoked = tmp_path / "revoked"
    revoked.write_text("")
    keyring = Keyring(CommitSettings(allowed_signers=signers, revoked_signers=revoked))
    try:
        assert keyring.git_config["gpg.ssh.revocationFile"] == str(revoked.resolve())
        args = ["-Y", "verify", "-f", str(signers), "-I", "me@example.com", "-n", "git"]
        args += ["-s", f"{message}.sig"]

        def verify(*extra: str) -> subprocess.CompletedProcess[bytes]:
            program = keyring.git_config["gpg.ssh.program"]
            with message.open("rb") as stdin:
                return subprocess.run([program, *args, *extra], stdin=stdin, capture_output=True, check=False)

        assert verify("-r", str(revoked)).returncode == 0  # nothing revoked
        revoked.write_text((tmp_path / "k.pub").read_text())
        assert verify("-r", str(revoked)).returncode != 0  # what git passes while the file exists
        revoked.unlink()
        missing = verify()  # git passes no -r for a file it does not find
        assert missing.returncode != 0 and b"cannot be read" in missing.stderr
    finally:
        keyring.close()


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"", ""),
        (b"# nothing revoked yet\n\n", ""),
        (b"{key}\n", ""),
        (b"  {key}\r\n# a comment\n", ""),
        (b"{key}\nAAAA-not-a-key\n", "line 2 of the SSH revoked signers file is no public key"),
        (b"serial: 1\n", "line 1 of the SSH revoked signers file is no public key"),  # a KRL spec, not a KRL
        (b"cert-authority {key}\n", "line 1 "),
        (None, "cannot be read"),
    ],
    ids=["empty", "comments", "key", "crlf", "garbage", "krl-spec", "options", "gone"],
)
def test_a_revoked_signers_file_ssh_keygen_cannot_use_is_named(
    tmp_path: Path, content: bytes | None, found: str
) -> None:
    """ssh-keygen takes every SSH signature for a bad one while the revoked signers file cannot be
    read or has a line that is no public key: the run stops there, naming the file and the line,
    rather than refusing good commits as altered."""
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = (tmp_path / "k.pub").read_bytes().strip()
    signers = tmp_path / "allowed_signers"
    signers.write_bytes(b"me@example.com " + public + b"\n")
    revoked = tmp_path / "revoked"
    revoked.write_text("")
    keyring = Keyring(CommitSettings(allowed_signers=signers, revoked_signers=revoked))
    try:
        if content is None:
            revoked.unlink()
        else:
            revoked.write_bytes(content.replace(b"{key}", public))
        if found:
            with pytest.raises(ConfigError) as raised:
                keyring.check()
            assert found in raised.value.message and raised.value.where == str(revoked.resolve())
        else:
            keyring.check()
    finally:
        keyring.close()


def test_a_krl_is_taken_as_it_is(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    revoked = tmp_path / "revoked.krl"
    subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(revoked), str(tmp_path / "k.pub")], check=True)
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"me@example.com {(tmp_path / 'k.pub').read_text()}")
    keyring = Keyring(CommitSettings(allowed_signers=signers, revoked_signers=revoked))
    try:
        keyring.check()
    finally:
        keyring.close()
